/*
 * store_redis.h - the Redis Streams backend of store.h ("store redis://HOST:PORT[/DB]").
 *
 * Keys (every process of every instance sharing the server sees the same ones):
 *   wsd:store          hash: "key" -> the store's epoch key (made when missing)
 *   wsd:meta:<channel> hash: last (offset), epoch, max, ttl (the latest retention)
 *   wsd:ch:<channel>   stream of the kept messages: id "<offset>-0", fields t (ts_ms)
 *                      and v (the packed message, store_pack)
 *   wsd:exp            sorted set: channel -> when its oldest kept message expires
 *                      (earlier than the truth is allowed, never later)
 *   wsd:dd:<dedup key> "<offset>:<ts_ms>" with PX the dedup window
 *   wsd:sess:<id>      expiry (8 bytes, little-endian) then the blob, with PXAT expiry
 *
 * An append is one Lua script (EVALSHA, loaded at connect) that checks the dedup key,
 * assigns the offset, adds and trims the stream, files the expiry and sets the dedup
 * key, atomically across processes. Calls use hiredis' blocking API with a 1 s connect
 * and command timeout; after an I/O error the handle is unavailable (WSD_EIO at once)
 * and reconnects on a later call, at most once per 500 ms.
 */
#ifndef WSD_STORE_STORE_REDIS_H
#define WSD_STORE_STORE_REDIS_H

#include <stddef.h>

#include "store/store.h"

/*
 * Opens a handle on addr ("HOST:PORT[/DB]", HOST may be "[IPv6]") and connects to it.
 * Returns 0 and sets *out; WSD_EINVAL for a bad address, WSD_EIO when the server cannot
 * be reached (unless opt->lazy_connect: then the handle starts unavailable), with the
 * reason in err; WSD_ENOMEM.
 */
int store_redis_open(const char *addr, const struct store_options *opt, struct store **out,
                     char *err, size_t cap);

#endif
