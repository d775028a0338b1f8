/* store.c - opens the backend named by the uri and dispatches to it; shared helpers. */
#include "store/store.h"

#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/wsd.h"
#include "store/store_lmdb.h"
#include "store/store_redis.h"

/*
 * Packed message (all integers little-endian):
 *
 *   0      1      2         3        4         5..7   8           16
 *   +------+------+---------+--------+---------+------+-----------+-----+------+------+
 *   | ver  | flags| encoding| mid_len| from_len| 0    | ts_ms i64 | mid\0| from\0| data |
 *   +------+------+---------+--------+---------+------+-----------+-----+------+------+
 */
#define PACK_VERSION 1

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static const char *or_empty(const char *s)
{
    return s != NULL ? s : "";
}

size_t store_pack_len(const struct store_msg *msg)
{
    return STORE_PACK_HEADER_LEN + strlen(or_empty(msg->mid)) + 1 +
           strlen(or_empty(msg->from)) + 1 + msg->data_len;
}

void store_pack(const struct store_msg *msg, uint8_t *out)
{
    const char *mid = or_empty(msg->mid);
    const char *from = or_empty(msg->from);
    size_t mid_len = strlen(mid);
    size_t from_len = strlen(from);
    uint8_t *p = out + STORE_PACK_HEADER_LEN;

    memset(out, 0, STORE_PACK_HEADER_LEN);
    out[0] = PACK_VERSION;
    out[1] = msg->flags;
    out[2] = msg->encoding;
    out[3] = (uint8_t)mid_len;
    out[4] = (uint8_t)from_len;
    put_le64(out + 8, (uint64_t)msg->ts_ms);
    memcpy(p, mid, mid_len + 1);
    p += mid_len + 1;
    memcpy(p, from, from_len + 1);
    p += from_len + 1;
    if (msg->data_len > 0)
        memcpy(p, msg->data, msg->data_len);
}

int store_unpack(const uint8_t *p, size_t len, uint64_t offset, struct store_msg *out)
{
    size_t mid_len, from_len, head;

    if (len < STORE_PACK_HEADER_LEN || p[0] != PACK_VERSION)
        return WSD_EPROTO;
    mid_len = p[3];
    from_len = p[4];
    head = STORE_PACK_HEADER_LEN + mid_len + 1 + from_len + 1;
    if (len < head || p[STORE_PACK_HEADER_LEN + mid_len] != '\0' || p[head - 1] != '\0')
        return WSD_EPROTO;
    out->offset = offset;
    out->flags = p[1];
    out->encoding = p[2];
    out->ts_ms = (int64_t)get_le64(p + 8);
    out->mid = (const char *)p + STORE_PACK_HEADER_LEN;
    out->from = (const char *)p + STORE_PACK_HEADER_LEN + mid_len + 1;
    out->data = p + head;
    out->data_len = len - head;
    return 0;
}

void store_epoch_derive(const uint8_t key[STORE_KEY_LEN], const char *channel,
                        char out[STORE_EPOCH_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char h[crypto_shorthash_BYTES];

    _Static_assert(crypto_shorthash_KEYBYTES == STORE_KEY_LEN, "siphash key size");
    _Static_assert(crypto_shorthash_BYTES * 2 == STORE_EPOCH_LEN, "epoch size");
    crypto_shorthash(h, (const unsigned char *)channel, strlen(channel), key);
    for (size_t i = 0; i < sizeof(h); i++) {
        out[2 * i] = hex[h[i] >> 4];
        out[2 * i + 1] = hex[h[i] & 15];
    }
    out[STORE_EPOCH_LEN] = '\0';
}

size_t store_channel_len(const char *channel)
{
    size_t n;

    if (channel == NULL)
        return 0;
    n = strnlen(channel, STORE_CHANNEL_MAX + 1);
    return n <= STORE_CHANNEL_MAX ? n : 0;
}

size_t store_session_id_len(const char *session_id)
{
    size_t n;

    if (session_id == NULL)
        return 0;
    n = strnlen(session_id, STORE_SESSION_ID_MAX + 1);
    return n <= STORE_SESSION_ID_MAX ? n : 0;
}

int store_check_append(const char *channel, const char *dedup_key,
                       const struct store_msg *msg)
{
    size_t n;

    if (store_channel_len(channel) == 0)
        return WSD_EINVAL;
    if (strnlen(or_empty(msg->mid), STORE_MID_MAX + 1) > STORE_MID_MAX)
        return WSD_EINVAL;
    if (strnlen(or_empty(msg->from), STORE_USER_MAX + 1) > STORE_USER_MAX)
        return WSD_EINVAL;
    if (msg->data == NULL && msg->data_len > 0)
        return WSD_EINVAL;
    if (dedup_key != NULL) {
        n = strnlen(dedup_key, STORE_DEDUP_KEY_MAX + 1);
        if (n == 0 || n > STORE_DEDUP_KEY_MAX)
            return WSD_EINVAL;
    }
    return 0;
}

bool store_retention_keeps(const struct store_retention *ret)
{
    return ret->max_messages > 0 && ret->ttl_ms > 0;
}

int64_t store_expiry_ms(int64_t ts_ms, int64_t ttl_ms)
{
    if (ttl_ms < 0)
        ttl_ms = 0;
    if (ts_ms > INT64_MAX - ttl_ms - 1)
        return INT64_MAX;
    return ts_ms + ttl_ms + 1;
}

bool store_is_expired(int64_t ts_ms, int64_t ttl_ms, int64_t now_ms)
{
    return now_ms >= store_expiry_ms(ts_ms, ttl_ms);
}

int store_dedup_key(char *buf, size_t cap, const char *user, const char *mid)
{
    int n = snprintf(buf, cap, "%zu:%s%s", strlen(user), user, mid);

    if (n < 0 || (size_t)n >= cap || n > STORE_DEDUP_KEY_MAX)
        return WSD_ETOOBIG;
    return 0;
}

size_t store_dedup_key_user_len(const char *key, size_t len)
{
    size_t n = 0, i = 0;

    while (i < len && i < 4 && key[i] >= '0' && key[i] <= '9')
        n = n * 10 + (size_t)(key[i++] - '0');
    if (i == 0 || i == len || key[i] != ':' || n > len - i - 1)
        return 0;
    return i + 1 + n;
}

void store_set_dedup_max(struct store *s, uint32_t n)
{
    s->dedup_max = n;
}

int store_open(const struct store_options *opt, struct store **out, char *err, size_t cap)
{
    const char *uri = opt->uri != NULL ? opt->uri : "";

    *out = NULL;
    if (sodium_init() < 0) {
        snprintf(err, cap, "libsodium initialisation failed");
        return WSD_EIO;
    }
    if (strncmp(uri, "lmdb:", 5) == 0)
        return store_lmdb_open(uri + 5, opt, out, err, cap);
    if (strncmp(uri, "redis://", 8) == 0)
        return store_redis_open(uri + 8, opt, out, err, cap);
    snprintf(err, cap, "store \"%s\": expected lmdb:DIR or redis://HOST:PORT[/DB]", uri);
    return WSD_EINVAL;
}

void store_close(struct store *s)
{
    if (s != NULL)
        s->ops->close(s);
}

bool store_is_available(struct store *s)
{
    return s->ops->is_available(s);
}

int store_batch_begin(struct store *s)
{
    return s->ops->batch_begin(s);
}

int store_append(struct store *s, const char *channel, const struct store_retention *ret,
                 const char *dedup_key, int64_t dedup_window_ms, struct store_msg *msg,
                 uint64_t *offset, bool *duplicate)
{
    int rc = store_check_append(channel, dedup_key, msg);

    if (rc < 0)
        return rc;
    return s->ops->append(s, channel, ret, dedup_key, dedup_window_ms, msg, offset, duplicate);
}

int store_ack(struct store *s, const char *channel, uint64_t offset)
{
    if (store_channel_len(channel) == 0)
        return WSD_EINVAL;
    return s->ops->ack(s, channel, offset);
}

int store_batch_commit(struct store *s)
{
    return s->ops->batch_commit(s);
}

void store_batch_abort(struct store *s)
{
    s->ops->batch_abort(s);
}

int store_channel_info(struct store *s, const char *channel, struct store_channel_info *out)
{
    if (store_channel_len(channel) == 0)
        return WSD_EINVAL;
    return s->ops->channel_info(s, channel, out);
}

int store_read(struct store *s, const char *channel, uint64_t after, size_t max,
               int64_t now_ms, store_msg_fn fn, void *ctx)
{
    if (store_channel_len(channel) == 0)
        return WSD_EINVAL;
    if (max == 0)
        return 0;
    return s->ops->read(s, channel, after, max, now_ms, fn, ctx);
}

int store_session_put(struct store *s, const char *session_id, const uint8_t *blob,
                      size_t len, int64_t expires_ms)
{
    if (store_session_id_len(session_id) == 0 || (blob == NULL && len > 0))
        return WSD_EINVAL;
    if (len > STORE_SESSION_BLOB_MAX)
        return WSD_ETOOBIG;
    return s->ops->session_put(s, session_id, blob, len, expires_ms);
}

int store_session_get(struct store *s, const char *session_id, uint8_t *buf, size_t cap,
                      int64_t now_ms)
{
    if (store_session_id_len(session_id) == 0)
        return WSD_ENOENT; /* no such session can exist */
    return s->ops->session_get(s, session_id, buf, cap, now_ms);
}

int store_session_del(struct store *s, const char *session_id)
{
    if (store_session_id_len(session_id) == 0)
        return WSD_EINVAL;
    return s->ops->session_del(s, session_id);
}

int store_expire(struct store *s, int64_t now_ms, size_t budget)
{
    if (budget == 0)
        return 0;
    if (budget > INT_MAX)
        budget = INT_MAX;
    return s->ops->expire(s, now_ms, budget);
}
