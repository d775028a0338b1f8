/*
 * store_lmdb.h - the LMDB backend of store.h ("store lmdb:DIR").
 *
 * One environment in DIR, opened by every process of the instance after fork with
 * MDB_NOTLS (each process its own handle); LMDB's write lock serialises the batches of
 * all processes, so offsets stay unique and gap-free. A batch is one write transaction
 * (it holds that lock from store_batch_begin to the commit: keep batches short); reads
 * use one read transaction per handle, reset between calls.
 *
 * Sub-databases:
 *   meta      channel -> last/first offset, retention, expiry-index time, epoch
 *   msg       channel '\0' offset(BE u64) -> packed message (store_pack)
 *   chan_exp  expiry ms(BE u64) channel -> "" : when the oldest kept message expires
 *   dedup     dedup key -> expiry ms, offset, ts_ms
 *   dedup_exp expiry ms(BE u64) dedup key -> ""
 *   sess      session id -> expiry ms, blob
 *   sess_exp  expiry ms(BE u64) session id -> ""
 *   global    "format" -> 1, "key" -> the store's epoch key
 * An expiry index entry may be earlier than the record it names (store_expire then just
 * re-files it), never later.
 */
#ifndef WSD_STORE_STORE_LMDB_H
#define WSD_STORE_STORE_LMDB_H

#include <stddef.h>

#include "store/store.h"

/*
 * Opens (creating when absent: directory mode 0700, files 0600) the environment in dir
 * with opt->sync and opt->map_size. Returns 0 and sets *out, WSD_EINVAL for an empty
 * dir, WSD_EIO when it cannot be created or opened or holds a foreign format (reason in
 * err), WSD_ENOMEM.
 */
int store_lmdb_open(const char *dir, const struct store_options *opt, struct store **out,
                    char *err, size_t cap);

#endif
