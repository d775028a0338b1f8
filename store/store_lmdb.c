/* store_lmdb.c - the LMDB backend: one environment shared by every process of the instance. */
#include "store/store_lmdb.h"

#include <errno.h>
#include <lmdb.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/wsd.h"

#define LM_FORMAT 1
#define LM_DEFAULT_MAP_SIZE (1ull << 30)
#define LM_MSG_KEY_MAX (STORE_CHANNEL_MAX + 1 + 8)
#define LM_IDX_KEY_MAX (8 + STORE_DEDUP_KEY_MAX)

enum lm_db { LM_META, LM_MSG, LM_CHAN_EXP, LM_DEDUP, LM_DEDUP_EXP, LM_SESS, LM_SESS_EXP,
             LM_GLOBAL, LM_DEDUP_USER, LM_NUM_DBS };

static const char *const lm_db_names[LM_NUM_DBS] = {
    "meta", "msg", "chan_exp", "dedup", "dedup_exp", "sess", "sess_exp", "global",
    "dedup_user",
};

struct store_lmdb {
    struct store base;     /* first: struct store * converts to this */
    MDB_env *env;
    MDB_dbi dbi[LM_NUM_DBS];
    MDB_txn *wtxn;         /* the open batch, or NULL */
    MDB_txn *rtxn;         /* read transaction, reset between calls */
    uint8_t key[STORE_KEY_LEN];
    unsigned expire_turn;  /* which kind store_expire serves first */
};

/* The meta record of a channel (host byte order: the file never leaves the host). */
struct lm_meta {
    uint64_t last_offset;
    uint64_t first_offset;  /* oldest kept, 0 = none */
    uint64_t max_messages;
    int64_t ttl_ms;
    int64_t exp_at;         /* time of the channel's chan_exp entry, 0 = none */
    char epoch[STORE_EPOCH_LEN];
};
_Static_assert(sizeof(struct lm_meta) == 56, "lm_meta has no padding");

/* A dedup record. */
struct lm_dedup {
    uint64_t offset;
    int64_t ts_ms;
};

/* The same query on both sides of an expiring record (dedup, session). */
struct lm_ekv {
    enum lm_db db, idx;
};

static const struct store_ops lm_ops;

static struct store_lmdb *lm_of(struct store *s)
{
    return (struct store_lmdb *)s;
}

static int lm_err(int rc)
{
    if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL)
        return WSD_ENOSPC;
    return rc == 0 ? 0 : WSD_EIO;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static uint64_t time_key(int64_t t)
{
    return t < 0 ? 0 : (uint64_t)t;
}

/* msg key: channel, NUL, big-endian offset. Returns its length. */
static size_t msg_key(uint8_t *buf, const char *ch, size_t chlen, uint64_t off)
{
    memcpy(buf, ch, chlen);
    buf[chlen] = '\0';
    put_be64(buf + chlen + 1, off);
    return chlen + 9;
}

/* The offset of a msg key when it belongs to channel ch, else 0. */
static uint64_t msg_key_offset(const MDB_val *k, const char *ch, size_t chlen)
{
    const uint8_t *p = k->mv_data;

    if (k->mv_size != chlen + 9 || memcmp(p, ch, chlen) != 0 || p[chlen] != '\0')
        return 0;
    return get_be64(p + chlen + 1);
}

static size_t idx_key(uint8_t *buf, int64_t t, const void *name, size_t len)
{
    put_be64(buf, time_key(t));
    memcpy(buf + 8, name, len);
    return len + 8;
}

/* Begins a transaction, adopting a map size grown by another process. */
static int lm_txn_begin(struct store_lmdb *l, unsigned flags, MDB_txn **txn)
{
    int rc = mdb_txn_begin(l->env, NULL, flags, txn);

    if (rc == MDB_MAP_RESIZED && l->wtxn == NULL) {
        rc = mdb_env_set_mapsize(l->env, 0);
        if (rc == 0)
            rc = mdb_txn_begin(l->env, NULL, flags, txn);
    }
    return lm_err(rc);
}

/* Reads inside an open batch go through its write transaction, so they see the batch's
 * own appends (a login in the middle of a batch must replay what the batch appended
 * before it: those records went to the rings before this worker had the member). */
static int lm_read_begin(struct store_lmdb *l, MDB_txn **txn)
{
    int rc;

    if (l->wtxn != NULL) {
        *txn = l->wtxn;
        return 0;
    }
    if (l->rtxn == NULL) {
        rc = lm_txn_begin(l, MDB_RDONLY, &l->rtxn);
        if (rc < 0)
            return WSD_EIO;
    } else {
        rc = mdb_txn_renew(l->rtxn);
        if (rc != 0) {
            mdb_txn_abort(l->rtxn);
            l->rtxn = NULL;
            if (lm_txn_begin(l, MDB_RDONLY, &l->rtxn) < 0)
                return WSD_EIO;
        }
    }
    *txn = l->rtxn;
    return 0;
}

static void lm_read_end(struct store_lmdb *l, MDB_txn *txn)
{
    if (txn != l->wtxn)
        mdb_txn_reset(txn);
}

/* The batch's transaction, or a new one of the caller's own (*own set). */
static int lm_write_begin(struct store_lmdb *l, MDB_txn **txn, bool *own)
{
    *own = l->wtxn == NULL;
    if (!*own) {
        *txn = l->wtxn;
        return 0;
    }
    return lm_txn_begin(l, 0, txn) < 0 ? WSD_EIO : 0;
}

/* Ends what lm_write_begin began: commits an own transaction after success. */
static int lm_write_end(MDB_txn *txn, bool own, int rc)
{
    if (!own)
        return rc;
    if (rc < 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = mdb_txn_commit(txn);
    return rc == 0 ? 0 : lm_err(rc);
}

static int lm_get(struct store_lmdb *l, MDB_txn *txn, enum lm_db db, const void *k, size_t klen,
                  MDB_val *v)
{
    MDB_val key = {.mv_size = klen, .mv_data = (void *)k};
    int rc = mdb_get(txn, l->dbi[db], &key, v);

    if (rc == MDB_NOTFOUND)
        return WSD_ENOENT;
    return lm_err(rc);
}

static int lm_put(struct store_lmdb *l, MDB_txn *txn, enum lm_db db, const void *k, size_t klen,
                  const void *v, size_t vlen)
{
    MDB_val key = {.mv_size = klen, .mv_data = (void *)k};
    MDB_val val = {.mv_size = vlen, .mv_data = (void *)v};

    return lm_err(mdb_put(txn, l->dbi[db], &key, &val, 0));
}

static int lm_del(struct store_lmdb *l, MDB_txn *txn, enum lm_db db, const void *k, size_t klen)
{
    MDB_val key = {.mv_size = klen, .mv_data = (void *)k};
    int rc = mdb_del(txn, l->dbi[db], &key, NULL);

    return rc == MDB_NOTFOUND ? 0 : lm_err(rc);
}

static int lm_idx_put(struct store_lmdb *l, MDB_txn *txn, enum lm_db idx, int64_t t,
                      const void *name, size_t len)
{
    uint8_t k[LM_IDX_KEY_MAX];

    return lm_put(l, txn, idx, k, idx_key(k, t, name, len), "", 0);
}

static int lm_idx_del(struct store_lmdb *l, MDB_txn *txn, enum lm_db idx, int64_t t,
                      const void *name, size_t len)
{
    uint8_t k[LM_IDX_KEY_MAX];

    return lm_del(l, txn, idx, k, idx_key(k, t, name, len));
}

/* Reads the meta record of ch. Returns 0, WSD_ENOENT, WSD_EIO. */
static int lm_meta_get(struct store_lmdb *l, MDB_txn *txn, const char *ch, size_t chlen,
                       struct lm_meta *m)
{
    MDB_val v;
    int rc = lm_get(l, txn, LM_META, ch, chlen, &v);

    if (rc < 0)
        return rc;
    if (v.mv_size != sizeof(*m))
        return WSD_EIO;
    memcpy(m, v.mv_data, sizeof(*m));
    return 0;
}

static int lm_meta_put(struct store_lmdb *l, MDB_txn *txn, const char *ch, size_t chlen,
                       const struct lm_meta *m)
{
    return lm_put(l, txn, LM_META, ch, chlen, m, sizeof(*m));
}

/* The meta record of ch, or a fresh one (offset 0, the derived epoch). */
static int lm_meta_load(struct store_lmdb *l, MDB_txn *txn, const char *ch, size_t chlen,
                        struct lm_meta *m)
{
    char epoch[STORE_EPOCH_LEN + 1];
    int rc = lm_meta_get(l, txn, ch, chlen, m);

    if (rc != WSD_ENOENT)
        return rc;
    memset(m, 0, sizeof(*m));
    store_epoch_derive(l->key, ch, epoch);
    memcpy(m->epoch, epoch, STORE_EPOCH_LEN);
    return 0;
}

/* ---- expiring records (dedup, sessions): value = int64 expiry ms, then payload ---- */

static int lm_ekv_del(struct store_lmdb *l, MDB_txn *txn, const struct lm_ekv *e,
                      const void *k, size_t klen)
{
    MDB_val v;
    int64_t exp;
    int rc = lm_get(l, txn, e->db, k, klen, &v);

    if (rc == WSD_ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    if (v.mv_size < sizeof(exp))
        return WSD_EIO;
    memcpy(&exp, v.mv_data, sizeof(exp));
    rc = lm_idx_del(l, txn, e->idx, exp, k, klen);
    return rc < 0 ? rc : lm_del(l, txn, e->db, k, klen);
}

static int lm_ekv_put(struct store_lmdb *l, MDB_txn *txn, const struct lm_ekv *e,
                      const void *k, size_t klen, int64_t exp, const void *p, size_t plen)
{
    MDB_val key = {.mv_size = klen, .mv_data = (void *)k};
    MDB_val val = {.mv_size = sizeof(exp) + plen, .mv_data = NULL};
    int rc = lm_ekv_del(l, txn, e, k, klen);

    if (rc < 0)
        return rc;
    rc = mdb_put(txn, l->dbi[e->db], &key, &val, MDB_RESERVE);
    if (rc != 0)
        return lm_err(rc);
    memcpy(val.mv_data, &exp, sizeof(exp));
    if (plen > 0)
        memcpy((uint8_t *)val.mv_data + sizeof(exp), p, plen);
    return lm_idx_put(l, txn, e->idx, exp, k, klen);
}

/*
 * Dedup keys per user (dedup_max), in dedup_user: the key U (the user part of a dedup
 * key, store_dedup_key_user_len) holds the user's count (u32), and U + be64(ts) + mid
 * one entry per remembered key, so a cursor at U finds the count and then the oldest.
 */
#define LM_DU_KEY_MAX (STORE_DEDUP_KEY_MAX + 8)

static size_t du_key(uint8_t *buf, const char *key, size_t ulen, size_t klen, int64_t ts)
{
    memcpy(buf, key, ulen);
    put_be64(buf + ulen, (uint64_t)ts);
    memcpy(buf + ulen + 8, key + ulen, klen - ulen);
    return klen + 8;
}

static int lm_du_count(struct store_lmdb *l, MDB_txn *txn, const char *key, size_t ulen,
                       uint32_t *n)
{
    MDB_val v;
    int rc = lm_get(l, txn, LM_DEDUP_USER, key, ulen, &v);

    *n = 0;
    if (rc == WSD_ENOENT)
        return 0;
    if (rc < 0 || v.mv_size != sizeof(*n))
        return rc < 0 ? rc : WSD_EIO;
    memcpy(n, v.mv_data, sizeof(*n));
    return 0;
}

static int lm_du_add(struct store_lmdb *l, MDB_txn *txn, const char *key, size_t ulen,
                     int delta)
{
    uint32_t n;
    int rc = lm_du_count(l, txn, key, ulen, &n);

    if (rc < 0)
        return rc;
    n = delta < 0 && n == 0 ? 0 : n + (uint32_t)delta;
    if (n == 0)
        return lm_del(l, txn, LM_DEDUP_USER, key, ulen);
    return lm_put(l, txn, LM_DEDUP_USER, key, ulen, &n, sizeof(n));
}

/* Drops the per-user entry of dedup key (klen bytes) remembered at ts, if it has one. */
static int lm_du_unlink(struct store_lmdb *l, MDB_txn *txn, const char *key, size_t klen,
                        int64_t ts)
{
    uint8_t k[LM_DU_KEY_MAX];
    size_t ulen = store_dedup_key_user_len(key, klen);
    MDB_val mk, mv;
    int rc;

    if (ulen == 0)
        return 0;
    mk.mv_size = du_key(k, key, ulen, klen, ts);
    mk.mv_data = k;
    rc = mdb_del(txn, l->dbi[LM_DEDUP_USER], &mk, &mv);
    if (rc == MDB_NOTFOUND)
        return 0; /* remembered before the cap existed */
    if (rc != 0)
        return lm_err(rc);
    return lm_du_add(l, txn, key, ulen, -1);
}

/* Reads the dedup record of key into *d: 1, 0 when there is none, or a negative code. */
static int lm_dedup_get(struct store_lmdb *l, MDB_txn *txn, const char *key, size_t klen,
                        struct lm_dedup *d)
{
    MDB_val v;
    int rc = lm_get(l, txn, LM_DEDUP, key, klen, &v);

    if (rc == WSD_ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    if (v.mv_size != sizeof(int64_t) + sizeof(*d))
        return WSD_EIO;
    memcpy(d, (uint8_t *)v.mv_data + sizeof(int64_t), sizeof(*d));
    return 1;
}

/* Forgets dedup key (its record, expiry entry and per-user entry), if remembered. */
static int lm_dedup_forget(struct store_lmdb *l, MDB_txn *txn, const char *key, size_t klen)
{
    static const struct lm_ekv dedup = {LM_DEDUP, LM_DEDUP_EXP};
    struct lm_dedup d;
    int rc = lm_dedup_get(l, txn, key, klen, &d);

    if (rc <= 0)
        return rc;
    rc = lm_du_unlink(l, txn, key, klen, d.ts_ms);
    return rc < 0 ? rc : lm_ekv_del(l, txn, &dedup, key, klen);
}

/* With a cap set: counts key (remembered at ts) for its user, then forgets the user's
 * oldest keys while there are more than dedup_max. */
static int lm_du_remember(struct store_lmdb *l, MDB_txn *txn, const char *key, size_t klen,
                          int64_t ts)
{
    uint8_t k[LM_DU_KEY_MAX], oldest[STORE_DEDUP_KEY_MAX];
    size_t ulen = store_dedup_key_user_len(key, klen);
    uint32_t n;
    int rc;

    if (ulen == 0 || l->base.dedup_max == 0)
        return 0;
    rc = lm_put(l, txn, LM_DEDUP_USER, k, du_key(k, key, ulen, klen, ts), "", 0);
    if (rc == 0)
        rc = lm_du_add(l, txn, key, ulen, 1);
    if (rc == 0)
        rc = lm_du_count(l, txn, key, ulen, &n);
    while (rc == 0 && l->base.dedup_max > 0 && n > l->base.dedup_max) {
        MDB_cursor *cur;
        MDB_val ck = {.mv_size = ulen, .mv_data = (void *)key}, cv;
        size_t olen;

        rc = lm_err(mdb_cursor_open(txn, l->dbi[LM_DEDUP_USER], &cur));
        if (rc < 0)
            break;
        rc = mdb_cursor_get(cur, &ck, &cv, MDB_SET_KEY); /* the count, then the oldest */
        if (rc == 0)
            rc = mdb_cursor_get(cur, &ck, &cv, MDB_NEXT);
        if (rc != 0 || ck.mv_size <= ulen + 8 || memcmp(ck.mv_data, key, ulen) != 0) {
            mdb_cursor_close(cur);
            rc = WSD_EIO;
            break;
        }
        olen = ck.mv_size - 8;
        memcpy(oldest, key, ulen);
        memcpy(oldest + ulen, (uint8_t *)ck.mv_data + ulen + 8, olen - ulen);
        mdb_cursor_close(cur);
        rc = lm_dedup_forget(l, txn, (const char *)oldest, olen);
        if (rc == 0)
            rc = lm_du_count(l, txn, key, ulen, &n);
    }
    return rc;
}

/* The next index entry of cur due at now_ms, deleted: 1 with its name, 0 if none. */
static int lm_next_due_name(MDB_cursor *cur, int64_t now_ms, uint8_t *name, size_t *len,
                            int64_t *t)
{
    MDB_val k, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);

    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0 || k.mv_size <= 8 || k.mv_size > 8 + STORE_DEDUP_KEY_MAX)
        return WSD_EIO;
    *t = (int64_t)get_be64(k.mv_data);
    if (*t > now_ms)
        return 0;
    *len = k.mv_size - 8;
    memcpy(name, (uint8_t *)k.mv_data + 8, *len);
    return mdb_cursor_del(cur, 0) == 0 ? 1 : WSD_EIO;
}

/* Removes records of e whose expiry is <= now_ms; at most budget index entries. */
static int lm_ekv_expire(struct store_lmdb *l, MDB_txn *txn, const struct lm_ekv *e,
                         int64_t now_ms, size_t budget, size_t *removed)
{
    uint8_t name[STORE_DEDUP_KEY_MAX];
    MDB_cursor *cur;
    MDB_val v;
    size_t len;
    int64_t t;
    int rc = mdb_cursor_open(txn, l->dbi[e->idx], &cur);

    if (rc != 0)
        return lm_err(rc);
    for (size_t n = 0; n < budget; n++) {
        rc = lm_next_due_name(cur, now_ms, name, &len, &t);
        if (rc <= 0)
            break;
        rc = lm_get(l, txn, e->db, name, len, &v);
        if (rc == 0 && v.mv_size >= sizeof(t) && memcmp(v.mv_data, &t, sizeof(t)) == 0) {
            struct lm_dedup d;
            if (e->db == LM_DEDUP && v.mv_size == sizeof(t) + sizeof(d)) {
                memcpy(&d, (uint8_t *)v.mv_data + sizeof(t), sizeof(d));
                rc = lm_du_unlink(l, txn, (const char *)name, len, d.ts_ms);
            }
            if (rc == 0)
                rc = lm_del(l, txn, e->db, name, len);
            (*removed)++;
        }
        if (rc < 0 && rc != WSD_ENOENT)
            break;
    }
    mdb_cursor_close(cur);
    return rc < 0 && rc != WSD_ENOENT ? rc : 0;
}

/* ---- channels ---- */

/*
 * Deletes the channel's kept messages from the oldest on, while their offset is <= upto
 * and (when now_ms >= 0) they are past the channel's ttl, at most budget of them. Sets
 * m->first_offset to the oldest one left (0 if none). Adds the count to *removed.
 */
static int lm_trim_front(struct store_lmdb *l, MDB_txn *txn, const char *ch, size_t chlen,
                         struct lm_meta *m, uint64_t upto, int64_t now_ms, size_t budget,
                         size_t *removed)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t kb[LM_MSG_KEY_MAX];
    struct store_msg msg;
    uint64_t off = m->first_offset;
    int rc;

    if (off == 0)
        return 0;
    rc = mdb_cursor_open(txn, l->dbi[LM_MSG], &cur);
    if (rc != 0)
        return lm_err(rc);
    for (size_t n = 0;; n++) {
        k.mv_data = kb;
        k.mv_size = msg_key(kb, ch, chlen, off);
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        off = rc == 0 ? msg_key_offset(&k, ch, chlen) : 0;
        if (off == 0 || off > upto || n >= budget)
            break;
        if (now_ms >= 0 && (store_unpack(v.mv_data, v.mv_size, off, &msg) < 0 ||
                            !store_is_expired(msg.ts_ms, m->ttl_ms, now_ms)))
            break;
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0)
            break;
        (*removed)++;
        off++;
    }
    mdb_cursor_close(cur);
    m->first_offset = off;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : lm_err(rc);
}

/*
 * Files the channel in chan_exp at the expiry of its oldest kept message when that is
 * earlier than its current entry (or it has none). A later entry is left for
 * store_expire to re-file.
 */
static int lm_chan_exp_update(struct store_lmdb *l, MDB_txn *txn, const char *ch,
                              size_t chlen, struct lm_meta *m)
{
    uint8_t kb[LM_MSG_KEY_MAX];
    struct store_msg msg;
    MDB_val v;
    int64_t want;
    int rc;

    if (m->first_offset == 0)
        return 0;
    rc = lm_get(l, txn, LM_MSG, kb, msg_key(kb, ch, chlen, m->first_offset), &v);
    if (rc < 0)
        return rc == WSD_ENOENT ? WSD_EIO : rc;
    if (store_unpack(v.mv_data, v.mv_size, m->first_offset, &msg) < 0)
        return WSD_EIO;
    want = store_expiry_ms(msg.ts_ms, m->ttl_ms);
    if (m->exp_at != 0 && m->exp_at <= want)
        return 0;
    if (m->exp_at != 0) {
        rc = lm_idx_del(l, txn, LM_CHAN_EXP, m->exp_at, ch, chlen);
        if (rc < 0)
            return rc;
    }
    m->exp_at = want;
    return lm_idx_put(l, txn, LM_CHAN_EXP, want, ch, chlen);
}

/* Looks dedup_key up: 1 and *offset when it is a duplicate at now_ms, else 0. */
static int lm_dedup_find(struct store_lmdb *l, MDB_txn *txn, const char *dedup_key,
                         int64_t window_ms, int64_t now_ms, uint64_t *offset)
{
    struct lm_dedup d;
    int rc = lm_dedup_get(l, txn, dedup_key, strlen(dedup_key), &d);

    if (rc <= 0)
        return rc;
    if (now_ms - d.ts_ms >= window_ms)
        return 0;
    *offset = d.offset;
    return 1;
}

static int lm_store_msg(struct store_lmdb *l, MDB_txn *txn, const char *ch, size_t chlen,
                        const struct store_msg *msg)
{
    uint8_t kb[LM_MSG_KEY_MAX];
    MDB_val k = {.mv_size = msg_key(kb, ch, chlen, msg->offset), .mv_data = kb};
    MDB_val v = {.mv_size = store_pack_len(msg), .mv_data = NULL};
    int rc = mdb_put(txn, l->dbi[LM_MSG], &k, &v, MDB_RESERVE);

    if (rc != 0)
        return lm_err(rc);
    store_pack(msg, v.mv_data);
    return 0;
}

static int lm_append_txn(struct store_lmdb *l, MDB_txn *txn, const char *ch,
                         const struct store_retention *ret, const char *dedup_key,
                         int64_t window_ms, struct store_msg *msg)
{
    static const struct lm_ekv dedup = {LM_DEDUP, LM_DEDUP_EXP};
    size_t chlen = strlen(ch), removed = 0;
    struct lm_meta m;
    struct lm_dedup d;
    int rc = lm_meta_load(l, txn, ch, chlen, &m);

    if (rc < 0)
        return rc;
    msg->offset = ++m.last_offset;
    m.max_messages = ret->max_messages;
    m.ttl_ms = ret->ttl_ms;
    if (store_retention_keeps(ret)) {
        rc = lm_store_msg(l, txn, ch, chlen, msg);
        if (rc < 0)
            return rc;
        if (m.first_offset == 0)
            m.first_offset = msg->offset;
    }
    if (m.last_offset > m.max_messages)
        rc = lm_trim_front(l, txn, ch, chlen, &m, m.last_offset - m.max_messages, -1,
                           SIZE_MAX, &removed);
    if (rc == 0)
        rc = lm_chan_exp_update(l, txn, ch, chlen, &m);
    if (rc == 0 && dedup_key != NULL && window_ms > 0) {
        size_t klen = strlen(dedup_key);
        d.offset = msg->offset;
        d.ts_ms = msg->ts_ms;
        rc = lm_dedup_forget(l, txn, dedup_key, klen); /* one past its window */
        if (rc == 0)
            rc = lm_ekv_put(l, txn, &dedup, dedup_key, klen,
                            store_expiry_ms(msg->ts_ms, window_ms - 1), &d, sizeof(d));
        if (rc == 0)
            rc = lm_du_remember(l, txn, dedup_key, klen, msg->ts_ms);
    }
    return rc < 0 ? rc : lm_meta_put(l, txn, ch, chlen, &m);
}

static int lm_append(struct store *s, const char *channel, const struct store_retention *ret,
                     const char *dedup_key, int64_t dedup_window_ms, struct store_msg *msg,
                     uint64_t *offset, bool *duplicate)
{
    struct store_lmdb *l = lm_of(s);
    MDB_txn *txn;
    bool own;
    int rc = lm_write_begin(l, &txn, &own);

    if (rc < 0)
        return rc;
    *duplicate = false;
    if (dedup_key != NULL && dedup_window_ms > 0)
        rc = lm_dedup_find(l, txn, dedup_key, dedup_window_ms, msg->ts_ms, offset);
    if (rc == 1) {
        *duplicate = true;
        msg->offset = *offset;
        rc = 0;
    } else if (rc == 0) {
        rc = lm_append_txn(l, txn, channel, ret, dedup_key, dedup_window_ms, msg);
        *offset = msg->offset;
    }
    return lm_write_end(txn, own, rc);
}

static int lm_ack(struct store *s, const char *channel, uint64_t offset)
{
    struct store_lmdb *l = lm_of(s);
    size_t chlen = strlen(channel), removed = 0;
    struct lm_meta m;
    MDB_txn *txn;
    bool own;
    int rc = lm_write_begin(l, &txn, &own);

    if (rc < 0)
        return rc;
    rc = lm_meta_get(l, txn, channel, chlen, &m);
    if (rc == 0 && m.first_offset != 0 && m.first_offset <= offset) {
        rc = lm_trim_front(l, txn, channel, chlen, &m, offset, -1, SIZE_MAX, &removed);
        if (rc == 0)
            rc = lm_meta_put(l, txn, channel, chlen, &m);
    }
    if (rc == WSD_ENOENT)
        rc = 0;
    return lm_write_end(txn, own, rc);
}

/* ---- batches ---- */

static int lm_batch_begin(struct store *s)
{
    struct store_lmdb *l = lm_of(s);

    if (l->wtxn != NULL)
        return WSD_EINVAL;
    return lm_txn_begin(l, 0, &l->wtxn) < 0 ? WSD_EIO : 0;
}

static int lm_batch_commit(struct store *s)
{
    struct store_lmdb *l = lm_of(s);
    int rc;

    if (l->wtxn == NULL)
        return 0;
    rc = mdb_txn_commit(l->wtxn);
    l->wtxn = NULL;
    return rc == 0 ? 0 : WSD_EIO;
}

static void lm_batch_abort(struct store *s)
{
    struct store_lmdb *l = lm_of(s);

    if (l->wtxn != NULL)
        mdb_txn_abort(l->wtxn);
    l->wtxn = NULL;
}

/* ---- reads ---- */

static int lm_channel_info(struct store *s, const char *channel, struct store_channel_info *out)
{
    struct store_lmdb *l = lm_of(s);
    struct lm_meta m;
    MDB_txn *txn;
    int rc = lm_read_begin(l, &txn);

    if (rc < 0)
        return rc;
    rc = lm_meta_load(l, txn, channel, strlen(channel), &m);
    lm_read_end(l, txn);
    if (rc < 0)
        return WSD_EIO;
    out->last_offset = m.last_offset;
    out->first_offset = m.first_offset;
    memcpy(out->epoch, m.epoch, STORE_EPOCH_LEN);
    out->epoch[STORE_EPOCH_LEN] = '\0';
    return 0;
}

static int lm_read_cursor(MDB_cursor *cur, const char *ch,
                          const struct lm_meta *m, uint64_t after, size_t max, int64_t now_ms,
                          store_msg_fn fn, void *ctx)
{
    size_t chlen = strlen(ch), n = 0;
    uint8_t kb[LM_MSG_KEY_MAX];
    MDB_val k = {.mv_size = msg_key(kb, ch, chlen, after + 1), .mv_data = kb}, v;
    struct store_msg msg;
    MDB_cursor_op op = MDB_SET_RANGE;
    uint64_t off;
    int rc;

    while (n < max) {
        rc = mdb_cursor_get(cur, &k, &v, op);
        op = MDB_NEXT;
        if (rc == MDB_NOTFOUND)
            return 0;
        if (rc != 0)
            return WSD_EIO;
        off = msg_key_offset(&k, ch, chlen);
        if (off == 0)
            return 0;
        if (store_unpack(v.mv_data, v.mv_size, off, &msg) < 0)
            return WSD_EIO;
        if (store_is_expired(msg.ts_ms, m->ttl_ms, now_ms))
            continue;
        n++;
        rc = fn(ctx, &msg);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int lm_read(struct store *s, const char *channel, uint64_t after, size_t max,
                   int64_t now_ms, store_msg_fn fn, void *ctx)
{
    struct store_lmdb *l = lm_of(s);
    MDB_cursor *cur;
    struct lm_meta m;
    MDB_txn *txn;
    int rc = lm_read_begin(l, &txn);

    if (rc < 0)
        return rc;
    rc = lm_meta_get(l, txn, channel, strlen(channel), &m);
    if (rc == 0 && m.first_offset != 0 && after < m.last_offset) {
        if (mdb_cursor_open(txn, l->dbi[LM_MSG], &cur) != 0) {
            rc = WSD_EIO;
        } else {
            rc = lm_read_cursor(cur, channel, &m, after, max, now_ms, fn, ctx);
            mdb_cursor_close(cur);
        }
    }
    lm_read_end(l, txn);
    return rc == WSD_ENOENT ? 0 : rc;
}

/* ---- sessions ---- */

static const struct lm_ekv lm_sessions = {LM_SESS, LM_SESS_EXP};

static int lm_session_put(struct store *s, const char *session_id, const uint8_t *blob,
                          size_t len, int64_t expires_ms)
{
    struct store_lmdb *l = lm_of(s);
    MDB_txn *txn;
    bool own;
    int rc = lm_write_begin(l, &txn, &own);

    if (rc < 0)
        return rc;
    rc = lm_ekv_put(l, txn, &lm_sessions, session_id, strlen(session_id), expires_ms, blob,
                    len);
    return lm_write_end(txn, own, rc);
}

static int lm_session_get(struct store *s, const char *session_id, uint8_t *buf, size_t cap,
                          int64_t now_ms)
{
    struct store_lmdb *l = lm_of(s);
    MDB_txn *txn;
    MDB_val v;
    int64_t exp;
    size_t len;
    int rc = lm_read_begin(l, &txn);

    if (rc < 0)
        return rc;
    rc = lm_get(l, txn, LM_SESS, session_id, strlen(session_id), &v);
    if (rc == 0 && v.mv_size < sizeof(exp))
        rc = WSD_EIO;
    if (rc == 0) {
        memcpy(&exp, v.mv_data, sizeof(exp));
        len = v.mv_size - sizeof(exp);
        if (now_ms >= exp)
            rc = WSD_ENOENT;
        else if (len > cap)
            rc = WSD_ETOOBIG;
        else if (len > 0)
            memcpy(buf, (uint8_t *)v.mv_data + sizeof(exp), len);
        if (rc == 0)
            rc = (int)len;
    }
    lm_read_end(l, txn);
    return rc;
}

static int lm_session_del(struct store *s, const char *session_id)
{
    struct store_lmdb *l = lm_of(s);
    MDB_txn *txn;
    bool own;
    int rc = lm_write_begin(l, &txn, &own);

    if (rc < 0)
        return rc;
    rc = lm_ekv_del(l, txn, &lm_sessions, session_id, strlen(session_id));
    return lm_write_end(txn, own, rc);
}

/* ---- expiry ---- */

/* Expires the messages of one channel taken from chan_exp at time t. */
static int lm_expire_channel(struct store_lmdb *l, MDB_txn *txn, const char *ch, int64_t t,
                             int64_t now_ms, size_t budget, size_t *removed)
{
    size_t chlen = strlen(ch);
    struct lm_meta m;
    int rc = lm_meta_get(l, txn, ch, chlen, &m);

    if (rc == WSD_ENOENT || (rc == 0 && m.exp_at != t))
        return 0; /* a stale entry: the channel is filed elsewhere */
    if (rc < 0)
        return rc;
    m.exp_at = 0;
    rc = lm_trim_front(l, txn, ch, chlen, &m, UINT64_MAX, now_ms, budget, removed);
    if (rc == 0)
        rc = lm_chan_exp_update(l, txn, ch, chlen, &m);
    return rc < 0 ? rc : lm_meta_put(l, txn, ch, chlen, &m);
}

/* The next chan_exp entry due at now_ms: 1 with its channel and time, 0 if none. */
static int lm_next_due(MDB_cursor *cur, int64_t now_ms, char *ch, int64_t *t)
{
    MDB_val k, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);

    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0 || k.mv_size <= 8 || k.mv_size > 8 + STORE_CHANNEL_MAX)
        return WSD_EIO;
    *t = (int64_t)get_be64(k.mv_data);
    if (*t > now_ms)
        return 0;
    memcpy(ch, (uint8_t *)k.mv_data + 8, k.mv_size - 8);
    ch[k.mv_size - 8] = '\0';
    return mdb_cursor_del(cur, 0) == 0 ? 1 : WSD_EIO;
}

static int lm_expire_channels(struct store_lmdb *l, MDB_txn *txn, int64_t now_ms,
                              size_t budget, size_t *removed)
{
    char ch[STORE_CHANNEL_MAX + 1];
    size_t start = *removed;
    MDB_cursor *cur;
    int64_t t;
    int rc = mdb_cursor_open(txn, l->dbi[LM_CHAN_EXP], &cur);

    if (rc != 0)
        return lm_err(rc);
    for (size_t n = 0; n < budget && *removed - start < budget; n++) {
        rc = lm_next_due(cur, now_ms, ch, &t);
        if (rc <= 0)
            break;
        rc = lm_expire_channel(l, txn, ch, t, now_ms, budget - (*removed - start), removed);
        if (rc < 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc < 0 ? rc : 0;
}

static int lm_expire_kind(struct store_lmdb *l, MDB_txn *txn, unsigned kind, int64_t now_ms,
                          size_t budget, size_t *removed)
{
    static const struct lm_ekv dedup = {LM_DEDUP, LM_DEDUP_EXP};

    if (kind == 0)
        return lm_expire_channels(l, txn, now_ms, budget, removed);
    return lm_ekv_expire(l, txn, kind == 1 ? &dedup : &lm_sessions, now_ms, budget, removed);
}

static int lm_expire(struct store *s, int64_t now_ms, size_t budget)
{
    struct store_lmdb *l = lm_of(s);
    size_t removed = 0;
    unsigned turn = l->expire_turn++;
    MDB_txn *txn;
    bool own;
    int dead, rc = lm_write_begin(l, &txn, &own);

    if (rc < 0)
        return rc;
    for (unsigned i = 0; i < 3 && rc == 0 && removed < budget; i++)
        rc = lm_expire_kind(l, txn, (turn + i) % 3, now_ms, budget - removed, &removed);
    rc = lm_write_end(txn, own, rc);
    mdb_reader_check(l->env, &dead);
    return rc < 0 ? rc : (int)removed;
}

/* ---- open and close ---- */

static bool lm_is_available(struct store *s)
{
    (void)s;
    return true;
}

static void lm_close(struct store *s)
{
    struct store_lmdb *l = lm_of(s);

    lm_batch_abort(s);
    if (l->rtxn != NULL)
        mdb_txn_abort(l->rtxn);
    mdb_env_close(l->env);
    free(l);
}

/* Checks the format record and loads (or, in a new store, makes) the epoch key. */
static int lm_init_global(struct store_lmdb *l, MDB_txn *txn, char *err, size_t cap)
{
    uint8_t format = LM_FORMAT;
    MDB_val v;
    int rc = lm_get(l, txn, LM_GLOBAL, "format", 6, &v);

    if (rc == WSD_ENOENT) {
        randombytes_buf(l->key, sizeof(l->key));
        rc = lm_put(l, txn, LM_GLOBAL, "format", 6, &format, 1);
        if (rc == 0)
            rc = lm_put(l, txn, LM_GLOBAL, "key", 3, l->key, sizeof(l->key));
        return rc;
    }
    if (rc == 0 && (v.mv_size != 1 || *(uint8_t *)v.mv_data != LM_FORMAT)) {
        snprintf(err, cap, "store format is not %d", LM_FORMAT);
        return WSD_EIO;
    }
    if (rc == 0)
        rc = lm_get(l, txn, LM_GLOBAL, "key", 3, &v);
    if (rc == 0 && v.mv_size != sizeof(l->key))
        rc = WSD_EIO;
    if (rc == 0)
        memcpy(l->key, v.mv_data, sizeof(l->key));
    return rc;
}

static int lm_init_dbs(struct store_lmdb *l, char *err, size_t cap)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(l->env, NULL, 0, &txn);

    for (int i = 0; i < LM_NUM_DBS && rc == 0; i++)
        rc = mdb_dbi_open(txn, lm_db_names[i], MDB_CREATE, &l->dbi[i]);
    if (rc != 0) {
        snprintf(err, cap, "mdb_dbi_open failed: %s", mdb_strerror(rc));
        if (txn != NULL)
            mdb_txn_abort(txn);
        return WSD_EIO;
    }
    rc = lm_init_global(l, txn, err, cap);
    if (rc < 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        snprintf(err, cap, "mdb_txn_commit failed: %s", mdb_strerror(rc));
        return WSD_EIO;
    }
    return 0;
}

static int lm_make_dir(const char *dir, char *err, size_t cap)
{
    struct stat st;

    if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
        snprintf(err, cap, "mkdir(%s) failed: %s", dir, strerror(errno));
        return WSD_EIO;
    }
    if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
        snprintf(err, cap, "%s is not a directory", dir);
        return WSD_EIO;
    }
    return 0;
}

static int lm_open_env(struct store_lmdb *l, const char *dir, const struct store_options *opt,
                       char *err, size_t cap)
{
    unsigned flags = MDB_NOTLS;
    int rc = mdb_env_create(&l->env);

    if (rc != 0) {
        snprintf(err, cap, "mdb_env_create failed: %s", mdb_strerror(rc));
        return WSD_EIO;
    }
    if (opt->sync == STORE_SYNC_NONE)
        flags |= MDB_NOSYNC | MDB_NOMETASYNC;
    if (opt->lmdb_writemap)
        flags |= MDB_WRITEMAP;
    rc = mdb_env_set_maxdbs(l->env, LM_NUM_DBS);
    if (rc == 0)
        rc = mdb_env_set_mapsize(l->env,
                                 opt->map_size != 0 ? opt->map_size : LM_DEFAULT_MAP_SIZE);
    if (rc == 0)
        rc = mdb_env_open(l->env, dir, flags, 0600);
    if (rc != 0) {
        snprintf(err, cap, "mdb_env_open(%s) failed: %s", dir, mdb_strerror(rc));
        mdb_env_close(l->env);
        l->env = NULL;
        return WSD_EIO;
    }
    return 0;
}

int store_lmdb_open(const char *dir, const struct store_options *opt, struct store **out,
                    char *err, size_t cap)
{
    struct store_lmdb *l;
    int dead, rc;

    *out = NULL;
    if (*dir == '\0') {
        snprintf(err, cap, "store lmdb: needs a directory");
        return WSD_EINVAL;
    }
    rc = lm_make_dir(dir, err, cap);
    if (rc < 0)
        return rc;
    l = calloc(1, sizeof(*l));
    if (l == NULL)
        return WSD_ENOMEM;
    l->base.ops = &lm_ops;
    rc = lm_open_env(l, dir, opt, err, cap);
    if (rc < 0)
        goto out_free;
    mdb_reader_check(l->env, &dead);
    rc = lm_init_dbs(l, err, cap);
    if (rc < 0)
        goto out_close_env;
    *out = &l->base;
    return 0;

out_close_env:
    mdb_env_close(l->env);
out_free:
    free(l);
    return rc;
}

static const struct store_ops lm_ops = {
    .close = lm_close,
    .is_available = lm_is_available,
    .batch_begin = lm_batch_begin,
    .append = lm_append,
    .ack = lm_ack,
    .batch_commit = lm_batch_commit,
    .batch_abort = lm_batch_abort,
    .channel_info = lm_channel_info,
    .read = lm_read,
    .session_put = lm_session_put,
    .session_get = lm_session_get,
    .session_del = lm_session_del,
    .expire = lm_expire,
};
