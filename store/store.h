/*
 * store.h - the durable side of messaging: channels (group histories and personal
 * channels), their offsets and epochs, the de-duplication window, and sessions.
 *
 * A channel is named by a string: a group name, or "@" followed by a user id for that
 * user's personal channel. Offsets start at 1 and grow by exactly 1 per appended message,
 * whether or not the message is kept (history_size 0 keeps none, but offsets still
 * advance). An epoch is an opaque string of at most STORE_EPOCH_LEN characters that
 * changes whenever a channel's history is lost (store wiped, channel expired), so an old
 * offset is never mistaken for a new one.
 *
 * Writes are batched: store_batch_begin(), any number of appends, acks and session
 * writes, then store_batch_commit() makes all of them durable at once (one transaction;
 * group commit per event-loop iteration). Reads see committed data and, inside an open
 * batch, that batch's appends (LMDB reads through the batch's transaction; Redis applies
 * each append at once).
 *
 * Two backends implement this interface: LMDB (store lmdb:DIR, embedded, shared by every
 * process of the instance) and Redis Streams (store redis://HOST:PORT[/DB]). Every
 * process opens its own handle after fork; a handle inherited across fork() must be
 * neither used nor closed by the child.
 *
 * Epochs: the store keeps one random 128-bit key, made when the store is created (LMDB:
 * a new directory; Redis: a missing "wsd:store" hash). A channel's epoch is the SipHash
 * of its name under that key, in 16 hex digits, recorded in the channel's meta record
 * at its first append. So a channel read before its first write already reports the
 * epoch it will keep, and a wiped store gives every channel a new epoch. The meta record
 * (last offset, epoch, retention) is small and kept forever, also after every message
 * of the channel expired or was acknowledged: offsets are never reused and the epoch of
 * a channel changes only when the store is wiped.
 *
 * Writes outside a batch: store_append, store_ack, store_session_put and
 * store_session_del called with no batch open run as a batch of their own (begin, the
 * write, commit).
 *
 * Redis differences: every store_append is one atomic server-side script (assign the
 * offset, dedup, XADD, trim) and is applied when it returns 0, so it cannot be withdrawn
 * by store_batch_abort and is visible to reads before the commit; a retry with the same
 * dedup key then finds it. Acks and session writes of a batch are queued and sent as
 * one pipeline at store_batch_commit (store_batch_abort drops them). Durability is that
 * of the Redis server (run it with appendonly yes); it must not evict keys (maxmemory-
 * policy noeviction). The process must ignore SIGPIPE.
 */
#ifndef WSD_STORE_STORE_H
#define WSD_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_EPOCH_LEN 16
#define STORE_CHANNEL_MAX 130 /* "@" + 128-byte user id, or a 128-byte group name */
#define STORE_MID_MAX 128
#define STORE_USER_MAX 128        /* longest sender ("from") */
#define STORE_DEDUP_KEY_MAX 272   /* longest dedup key, without the NUL */
#define STORE_SESSION_ID_MAX 128  /* longest session id, without the NUL */
#define STORE_SESSION_BLOB_MAX (1u << 20)

struct store;

enum store_sync {
    STORE_SYNC_BATCH = 0, /* fsync once per committed batch (default) */
    STORE_SYNC_ALWAYS,    /* same as batch for LMDB: every commit is synced */
    STORE_SYNC_NONE,      /* leave flushing to the OS: fast, loses the last batches on
                             power failure (never on a process crash) */
};

struct store_options {
    const char *uri;        /* "lmdb:DIR" or "redis://HOST:PORT[/DB]" */
    enum store_sync sync;
    uint64_t map_size;      /* LMDB map size in bytes (0 = 1 GiB) */
    bool lmdb_writemap;     /* LMDB: MDB_WRITEMAP, 2-4x faster commits with sync none, but
                               the map is then writable: a stray write corrupts the store
                               instead of faulting; the file is map_size long (sparse) */
    bool lazy_connect;      /* Redis: open succeeds while the server is unreachable, and
                               the handle connects on a later call */
};

/*
 * Retention of a channel, given with every append (from the group rules or offline_*).
 * The latest one given is the channel's retention (store_read and store_expire use it).
 * A message is kept while its offset is among the last max_messages offsets of the
 * channel and now_ms - ts_ms <= ttl_ms.
 */
struct store_retention {
    uint64_t max_messages;  /* history_size / offline_max; 0 = keep none */
    int64_t ttl_ms;         /* history_ttl / offline_ttl; 0 (or less) = keep none */
};

/* One message as stored and as read back. Views point into the store's memory (read)
 * or the caller's (append) and are valid until the next call on the same handle. */
struct store_msg {
    uint64_t offset;
    int64_t ts_ms;          /* wall time of acceptance */
    const char *mid;        /* message id, NUL-terminated, <= STORE_MID_MAX */
    const char *from;       /* sender's user id ("" for the system), NUL-terminated */
    uint8_t encoding;       /* 0 = JSON, 1 = MessagePack: the encoding of data */
    uint8_t flags;          /* STORE_MSG_SYS, ... */
    const uint8_t *data;
    size_t data_len;
};

#define STORE_MSG_SYS 0x01

struct store_channel_info {
    uint64_t last_offset;   /* latest assigned offset, 0 if none */
    uint64_t first_offset;  /* oldest offset still kept, 0 if none kept */
    char epoch[STORE_EPOCH_LEN + 1];
};

/*
 * Opens the store named by opt->uri (creating LMDB's directory, mode 0700, and files when
 * absent). Returns 0 and sets *out, WSD_EINVAL for a bad uri (with the reason in err),
 * WSD_EIO when it cannot be opened or reached (reason in err), WSD_ENOMEM.
 */
int store_open(const struct store_options *opt, struct store **out, char *err, size_t cap);
/* Aborts an open batch and frees the handle. NULL is ignored. */
void store_close(struct store *s);

/* True while the backend is reachable (Redis: connected; LMDB: always). A disconnected
 * Redis handle tries to reconnect here, at most once per 500 ms. */
bool store_is_available(struct store *s);

/* Starts a batch of writes. Returns 0, WSD_EIO (backend unavailable), or WSD_EINVAL
 * when a batch is already open. */
int store_batch_begin(struct store *s);

/*
 * Appends msg to channel within the open batch, assigning the next offset (written to
 * msg->offset as well as returned through *offset). When dedup_key is not NULL and
 * the same key was used within dedup_window_ms, nothing is appended: *offset is the
 * offset the first one got and *duplicate is set. The channel's kept messages are then
 * trimmed to the retention. Returns 0, WSD_EIO (the batch must be aborted),
 * WSD_ENOSPC (store full).
 *
 * msg->ts_ms is also "now" for the dedup window: a key is a duplicate while
 * msg->ts_ms - (ts_ms of the first use) < dedup_window_ms; dedup_window_ms <= 0 or a
 * NULL dedup_key disables de-duplication. The dedup key is a NUL-terminated string of at
 * most STORE_DEDUP_KEY_MAX bytes; its scope is the whole store, so the caller makes it
 * unambiguous (store_dedup_key() builds one from a user id and a mid). msg->mid and
 * msg->from may be NULL (stored as ""). Rejects with WSD_EINVAL (nothing written, the
 * batch stays usable): a channel that is empty or longer than STORE_CHANNEL_MAX, a mid
 * over STORE_MID_MAX, a from over STORE_USER_MAX, a dedup key that is empty or over
 * STORE_DEDUP_KEY_MAX, data NULL with data_len > 0.
 */
int store_append(struct store *s, const char *channel, const struct store_retention *ret,
                 const char *dedup_key, int64_t dedup_window_ms, struct store_msg *msg,
                 uint64_t *offset, bool *duplicate);

/* Acknowledges a personal channel up to offset: deletes messages <= offset.
 * Returns 0, WSD_EINVAL (bad channel), WSD_EIO, WSD_ENOSPC. */
int store_ack(struct store *s, const char *channel, uint64_t offset);

/* Makes the batch durable. Returns 0 or WSD_EIO (nothing of the batch is kept; Redis:
 * see above). Either way the batch is over. */
int store_batch_commit(struct store *s);
/* Discards the open batch (Redis: see above). Without an open batch it does nothing. */
void store_batch_abort(struct store *s);

/*
 * Reads channel info (creating nothing). A channel never written has last_offset 0 and
 * an epoch assigned on first use; the same epoch is reported until its history is lost.
 * Returns 0 or WSD_EIO.
 */
int store_channel_info(struct store *s, const char *channel, struct store_channel_info *out);

/*
 * Calls fn for each kept message of channel with offset > after, in offset order, at
 * most max messages; fn returns 0 to go on, anything else to stop (returned as is).
 * Messages older than now_ms - their channel's ttl are skipped. Returns 0, fn's stop
 * value, or WSD_EIO (WSD_EINVAL for a bad channel).
 * The message given to fn and its views are valid only until fn returns.
 */
typedef int (*store_msg_fn)(void *ctx, const struct store_msg *msg);
int store_read(struct store *s, const char *channel, uint64_t after, size_t max,
               int64_t now_ms, store_msg_fn fn, void *ctx);

/* Sessions: an opaque blob per session id, with an expiry (wall ms). Put replaces the
 * session's blob and expiry. Returns 0, WSD_EINVAL (id empty or over
 * STORE_SESSION_ID_MAX), WSD_ETOOBIG (blob over STORE_SESSION_BLOB_MAX), WSD_EIO,
 * WSD_ENOSPC. A session is expired once now_ms >= expires_ms. */
int store_session_put(struct store *s, const char *session_id, const uint8_t *blob,
                      size_t len, int64_t expires_ms);
/* Copies the blob into buf (cap bytes). Returns its length, WSD_ENOENT when absent or
 * expired, WSD_ETOOBIG when it does not fit, WSD_EIO. */
int store_session_get(struct store *s, const char *session_id, uint8_t *buf, size_t cap,
                      int64_t now_ms);
/* Deletes a session (absent is not an error). Returns 0, WSD_EINVAL, WSD_EIO. */
int store_session_del(struct store *s, const char *session_id);

/* Deletes expired messages, dedup entries and sessions; at most budget items per call.
 * Returns how many were removed, or WSD_EIO. Run by the master about once a second.
 * Redis expires dedup entries and sessions by itself; there only messages count. */
int store_expire(struct store *s, int64_t now_ms, size_t budget);

/*
 * Writes into buf the dedup key for a mid used by a user: the user id's length in
 * decimal, ':', the user id, the mid (unambiguous for any user id). Returns 0 or
 * WSD_ETOOBIG when buf (cap bytes) cannot hold it or it is over STORE_DEDUP_KEY_MAX.
 */
int store_dedup_key(char *buf, size_t cap, const char *user, const char *mid);

/* The length of the user part ("<len>:<user>") of a store_dedup_key() key of len bytes;
 * 0 when the key is not of that form. */
size_t store_dedup_key_user_len(const char *key, size_t len);

/*
 * Caps the dedup keys remembered per user at n (0, the default: no cap). An append that
 * would remember one more key than n for its user forgets that user's oldest key first,
 * so a retry of the oldest message is then no longer recognised as one. Keys made by
 * store_dedup_key() are grouped by their user; other keys are not capped. Applies from
 * the next append on (keys over a lowered cap go one per append, or when they expire).
 */
void store_set_dedup_max(struct store *s, uint32_t n);

/*
 * Backend interface: store.c dispatches every call above through s->ops. Not for
 * callers; a backend embeds struct store as the first member of its handle.
 */
struct store_ops {
    void (*close)(struct store *s);
    bool (*is_available)(struct store *s);
    int (*batch_begin)(struct store *s);
    int (*append)(struct store *s, const char *channel, const struct store_retention *ret,
                  const char *dedup_key, int64_t dedup_window_ms, struct store_msg *msg,
                  uint64_t *offset, bool *duplicate);
    int (*ack)(struct store *s, const char *channel, uint64_t offset);
    int (*batch_commit)(struct store *s);
    void (*batch_abort)(struct store *s);
    int (*channel_info)(struct store *s, const char *channel,
                        struct store_channel_info *out);
    int (*read)(struct store *s, const char *channel, uint64_t after, size_t max,
                int64_t now_ms, store_msg_fn fn, void *ctx);
    int (*session_put)(struct store *s, const char *session_id, const uint8_t *blob,
                       size_t len, int64_t expires_ms);
    int (*session_get)(struct store *s, const char *session_id, uint8_t *buf, size_t cap,
                       int64_t now_ms);
    int (*session_del)(struct store *s, const char *session_id);
    int (*expire)(struct store *s, int64_t now_ms, size_t budget);
};

struct store {
    const struct store_ops *ops;
    uint32_t dedup_max; /* store_set_dedup_max(); 0 = no cap */
};

#define STORE_KEY_LEN 16         /* the store's epoch key */
#define STORE_PACK_HEADER_LEN 16 /* packed message: header before mid, from and data */

/* Bytes of msg packed: the header, mid and from with their NULs, then data. */
size_t store_pack_len(const struct store_msg *msg);
/* Packs msg into out (store_pack_len(msg) bytes); NULL mid/from are packed as "". */
void store_pack(const struct store_msg *msg, uint8_t *out);
/* Sets *out to views into p (len bytes) and out->offset to offset. Returns 0 or
 * WSD_EPROTO when p is not a packed message. */
int store_unpack(const uint8_t *p, size_t len, uint64_t offset, struct store_msg *out);
/* Writes the epoch of channel under key: 16 lowercase hex digits and a NUL. */
void store_epoch_derive(const uint8_t key[STORE_KEY_LEN], const char *channel,
                        char out[STORE_EPOCH_LEN + 1]);
/* Checks store_append's arguments as documented there. Returns 0 or WSD_EINVAL. */
int store_check_append(const char *channel, const char *dedup_key,
                       const struct store_msg *msg);
/* Length of a valid channel name, or 0 when empty or over STORE_CHANNEL_MAX. */
size_t store_channel_len(const char *channel);
/* Length of a valid session id, or 0 when empty or over STORE_SESSION_ID_MAX. */
size_t store_session_id_len(const char *session_id);
/* True when ret keeps messages at all (max_messages > 0 and ttl_ms > 0). */
bool store_retention_keeps(const struct store_retention *ret);
/* True when a message of ts_ms is past ttl_ms at now_ms (now_ms - ts_ms > ttl_ms). */
bool store_is_expired(int64_t ts_ms, int64_t ttl_ms, int64_t now_ms);
/* First wall ms at which a message of ts_ms is past ttl_ms (saturating). */
int64_t store_expiry_ms(int64_t ts_ms, int64_t ttl_ms);

#endif
