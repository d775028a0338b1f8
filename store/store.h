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
 * group commit per event-loop iteration). Reads see committed data only.
 *
 * Two backends implement this interface: LMDB (store lmdb:DIR, embedded, shared by every
 * process of the instance) and Redis Streams (store redis://HOST:PORT[/DB]). Every
 * process opens its own handle after fork.
 */
#ifndef WSD_STORE_STORE_H
#define WSD_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_EPOCH_LEN 16
#define STORE_CHANNEL_MAX 130 /* "@" + 128-byte user id, or a 128-byte group name */
#define STORE_MID_MAX 64

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
};

/* Retention of a channel, given with every append (from the group rules or offline_*). */
struct store_retention {
    uint64_t max_messages;  /* history_size / offline_max; 0 = keep none */
    int64_t ttl_ms;         /* history_ttl / offline_ttl; 0 = keep none */
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
 * Opens the store named by opt->uri (creating LMDB's directory and files when absent).
 * Returns 0 and sets *out, WSD_EINVAL for a bad uri (with the reason in err),
 * WSD_EIO when it cannot be opened or reached (reason in err).
 */
int store_open(const struct store_options *opt, struct store **out, char *err, size_t cap);
void store_close(struct store *s);

/* True while the backend is reachable (Redis: connected; LMDB: always). */
bool store_is_available(struct store *s);

/* Starts a batch of writes. Returns 0 or WSD_EIO (backend unavailable). */
int store_batch_begin(struct store *s);

/*
 * Appends msg to channel within the open batch, assigning the next offset (written to
 * msg->offset as well as returned through *offset). When dedup_key is not NULL and
 * the same key was used within dedup_window_ms, nothing is appended: *offset is the
 * offset the first one got and *duplicate is set. The channel's kept messages are then
 * trimmed to the retention. Returns 0, WSD_EIO (the batch must be aborted),
 * WSD_ENOSPC (store full).
 */
int store_append(struct store *s, const char *channel, const struct store_retention *ret,
                 const char *dedup_key, int64_t dedup_window_ms, struct store_msg *msg,
                 uint64_t *offset, bool *duplicate);

/* Acknowledges a personal channel up to offset: deletes messages <= offset. */
int store_ack(struct store *s, const char *channel, uint64_t offset);

/* Makes the batch durable. Returns 0 or WSD_EIO (nothing of the batch is kept). */
int store_batch_commit(struct store *s);
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
 * value, or WSD_EIO.
 */
typedef int (*store_msg_fn)(void *ctx, const struct store_msg *msg);
int store_read(struct store *s, const char *channel, uint64_t after, size_t max,
               int64_t now_ms, store_msg_fn fn, void *ctx);

/* Sessions: an opaque blob per session id, with an expiry (wall ms). */
int store_session_put(struct store *s, const char *session_id, const uint8_t *blob,
                      size_t len, int64_t expires_ms);
/* Copies the blob into buf (cap bytes). Returns its length, WSD_ENOENT when absent or
 * expired, WSD_ETOOBIG when it does not fit, WSD_EIO. */
int store_session_get(struct store *s, const char *session_id, uint8_t *buf, size_t cap,
                      int64_t now_ms);
int store_session_del(struct store *s, const char *session_id);

/* Deletes expired messages, dedup entries and sessions; at most budget items per call.
 * Returns how many were removed, or WSD_EIO. Run by the master about once a second. */
int store_expire(struct store *s, int64_t now_ms, size_t budget);

#endif
