/*
 * envelope.c - client envelopes in JSON and MessagePack, and server messages in both.
 *
 * MessagePack is read by a small non-allocating walker (mp_*) that validates structure
 * and records spans, the way the JSON scanner does; server messages are packed with
 * msgpack-c's packer writing into a struct buf.
 */
#include "proto/envelope.h"
#include "core/wsd.h"
#include "proto/base64.h"
#include "proto/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* ---- MessagePack reading ---------------------------------------------------------- */

enum mp_kind {
    MP_NIL,
    MP_BOOL,
    MP_UINT,
    MP_INT,
    MP_F32,
    MP_F64,
    MP_STR,
    MP_BIN,
    MP_ARRAY,
    MP_MAP,
    MP_EXT,
};

struct mp_item {
    enum mp_kind kind;
    bool b;
    uint64_t u;          /* UINT */
    int64_t i;           /* INT (may be >= 0 when sent in a signed format) */
    double d;            /* F64, and F32 widened */
    float f;             /* F32 */
    const uint8_t *body; /* STR, BIN, EXT */
    uint32_t n;          /* STR, BIN, EXT: bytes; ARRAY: elements; MAP: entries */
};

static uint64_t mp_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned k = 0; k < n; k++)
        v = v << 8 | p[k];
    return v;
}

/* Sets it->body/n from an n-byte body at p[*i]; checks it is there. */
static int mp_body(const uint8_t *p, size_t len, size_t *i, uint64_t n, struct mp_item *it)
{
    if (n > len - *i)
        return WSD_EINVAL;
    it->body = p + *i;
    it->n = (uint32_t)n;
    *i += n;
    return 0;
}

/* Reads a length field of w bytes at p[*i]. */
static int mp_len(const uint8_t *p, size_t len, size_t *i, unsigned w, uint64_t *n)
{
    if (w > len - *i)
        return WSD_EINVAL;
    *n = mp_be(p + *i, w);
    *i += w;
    return 0;
}

/* Element count of an array or map: each element takes at least one byte. */
static int mp_count(size_t len, size_t i, uint64_t n, struct mp_item *it)
{
    uint64_t need = it->kind == MP_MAP ? n * 2 : n;
    if (need > len - i)
        return WSD_EINVAL;
    it->n = (uint32_t)n;
    return 0;
}

/* Formats 0xc4..0xdf except numbers: bin, ext, str, array, map. */
static int mp_read_sized(const uint8_t *p, size_t len, size_t *i, uint8_t c, struct mp_item *it)
{
    uint64_t n;
    static const uint8_t fixext[] = {1, 2, 4, 8, 16};
    if (c >= 0xd4 && c <= 0xd8) {
        it->kind = MP_EXT;
        if (len - *i < 1)
            return WSD_EINVAL;
        (*i)++;
        return mp_body(p, len, i, fixext[c - 0xd4], it);
    }
    switch (c) {
    case 0xc4: case 0xc5: case 0xc6:
        it->kind = MP_BIN;
        return mp_len(p, len, i, 1u << (c - 0xc4), &n) < 0 ? WSD_EINVAL
                                                           : mp_body(p, len, i, n, it);
    case 0xc7: case 0xc8: case 0xc9:
        it->kind = MP_EXT;
        if (mp_len(p, len, i, 1u << (c - 0xc7), &n) < 0 || len - *i < 1)
            return WSD_EINVAL;
        (*i)++;
        return mp_body(p, len, i, n, it);
    case 0xd9: case 0xda: case 0xdb:
        it->kind = MP_STR;
        return mp_len(p, len, i, 1u << (c - 0xd9), &n) < 0 ? WSD_EINVAL
                                                           : mp_body(p, len, i, n, it);
    case 0xdc: case 0xdd:
        it->kind = MP_ARRAY;
        return mp_len(p, len, i, c == 0xdc ? 2 : 4, &n) < 0 ? WSD_EINVAL
                                                            : mp_count(len, *i, n, it);
    case 0xde: case 0xdf:
        it->kind = MP_MAP;
        return mp_len(p, len, i, c == 0xde ? 2 : 4, &n) < 0 ? WSD_EINVAL
                                                            : mp_count(len, *i, n, it);
    default:
        return WSD_EINVAL;
    }
}

/* Formats 0xc0..0xd3: nil, bool, floats, integers. */
static int mp_read_scalar(const uint8_t *p, size_t len, size_t *i, uint8_t c,
                          struct mp_item *it)
{
    static const uint8_t width[] = {1, 2, 4, 8};
    uint64_t v;
    if (c == 0xc0) {
        it->kind = MP_NIL;
    } else if (c == 0xc2 || c == 0xc3) {
        it->kind = MP_BOOL;
        it->b = c == 0xc3;
    } else if (c == 0xca || c == 0xcb) {
        if (mp_len(p, len, i, c == 0xca ? 4 : 8, &v) < 0)
            return WSD_EINVAL;
        if (c == 0xca) {
            uint32_t u32 = (uint32_t)v;
            it->kind = MP_F32;
            memcpy(&it->f, &u32, 4);
            it->d = it->f;
        } else {
            it->kind = MP_F64;
            memcpy(&it->d, &v, 8);
        }
    } else if (c >= 0xcc && c <= 0xcf) {
        if (mp_len(p, len, i, width[c - 0xcc], &it->u) < 0)
            return WSD_EINVAL;
        it->kind = MP_UINT;
    } else if (c >= 0xd0 && c <= 0xd3) {
        unsigned w = width[c - 0xd0];
        if (mp_len(p, len, i, w, &v) < 0)
            return WSD_EINVAL;
        it->kind = MP_INT;
        if (w < 8 && (v >> (w * 8 - 1)) & 1)
            v |= ~(uint64_t)0 << (w * 8); /* sign-extend */
        memcpy(&it->i, &v, 8);
    } else {
        return WSD_EINVAL; /* 0xc1: never used */
    }
    return 0;
}

/* Reads one item header at p[*pos] (with the body of str/bin/ext). */
static int mp_read(const uint8_t *p, size_t len, size_t *pos, struct mp_item *it)
{
    if (*pos >= len)
        return WSD_EINVAL;
    uint8_t c = p[*pos];
    size_t i = *pos + 1;
    int rc = 0;
    it->n = 0;
    it->body = NULL;
    if (c <= 0x7f) {
        it->kind = MP_UINT;
        it->u = c;
    } else if (c <= 0x9f) {
        it->kind = c <= 0x8f ? MP_MAP : MP_ARRAY;
        rc = mp_count(len, i, c & 0x0f, it);
    } else if (c <= 0xbf) {
        it->kind = MP_STR;
        rc = mp_body(p, len, &i, c & 0x1f, it);
    } else if (c >= 0xe0) {
        it->kind = MP_INT;
        it->i = (int8_t)c;
    } else if (c <= 0xd3 && !(c >= 0xc4 && c <= 0xc9)) {
        rc = mp_read_scalar(p, len, &i, c, it);
    } else {
        rc = mp_read_sized(p, len, &i, c, it);
    }
    if (rc < 0)
        return WSD_EINVAL;
    *pos = i;
    return 0;
}

/*
 * Validates the value at p[*pos] and everything in it; depth is its container's depth.
 * Returns WSD_EINVAL for malformed or too deeply nested input. With strict, values that
 * cannot be carried as data (ext, NaN/infinite floats, str that is not UTF-8, map keys
 * that are not str) set *bad and the walk goes on.
 */
static int mp_skip(const uint8_t *p, size_t len, size_t *pos, unsigned depth, bool strict,
                   bool *bad, struct mp_item *head)
{
    struct mp_item it;
    if (mp_read(p, len, pos, &it) < 0)
        return WSD_EINVAL;
    if (head != NULL)
        *head = it;
    switch (it.kind) {
    case MP_EXT:
        *bad |= strict;
        return 0;
    case MP_F32:
    case MP_F64:
        *bad |= strict && !isfinite(it.d);
        return 0;
    case MP_STR:
        *bad |= strict && !json_utf8_is_valid(it.body, it.n);
        return 0;
    case MP_ARRAY:
    case MP_MAP:
        break;
    default:
        return 0;
    }
    if (depth + 1 > ENVELOPE_MAX_DEPTH)
        return WSD_EINVAL;
    for (uint32_t k = 0; k < it.n; k++) {
        if (it.kind == MP_MAP) {
            struct mp_item key;
            if (mp_skip(p, len, pos, depth + 1, strict, bad, &key) < 0)
                return WSD_EINVAL;
            *bad |= strict && key.kind != MP_STR;
        }
        if (mp_skip(p, len, pos, depth + 1, strict, bad, NULL) < 0)
            return WSD_EINVAL;
    }
    return 0;
}

/* Validates p[0..len) as exactly one value (structure only). */
static bool mp_is_valid(const uint8_t *p, size_t len)
{
    size_t pos = 0;
    bool bad = false;
    return mp_skip(p, len, &pos, 0, false, &bad, NULL) == 0 && pos == len;
}

/* ---- parsing: the walk over the top-level map --------------------------------------- */

enum env_key {
    ENV_K_OP,
    ENV_K_ID,
    ENV_K_TOKEN,
    ENV_K_SESSION,
    ENV_K_GROUP,
    ENV_K_USER,
    ENV_K_MID,
    ENV_K_OFFSET,
    ENV_K_SINCE,
    ENV_K_DATA,
    ENV_K_COUNT,
};

static const char *const env_key_names[ENV_K_COUNT] = {
    "op", "id", "token", "session", "group", "user", "mid", "offset", "since", "data",
};

/* A received value, in either encoding. */
struct env_field {
    bool present;
    enum envelope_type type;
    const uint8_t *p; /* the encoded value */
    size_t len;
    struct envelope_str str; /* STRING */
    bool utf8_ok;            /* STRING */
    bool bad_data;           /* violates the data rules (see envelope.h) */
    struct json_value jv;    /* JSON */
    struct mp_item mi;       /* MessagePack */
};

struct env_walk {
    struct env_field f[ENV_K_COUNT];
    struct envelope_str unknown[ENVELOPE_MAX_KEYS];
    size_t num_unknown;
    size_t num_keys;
    bool duplicate;
    bool non_string_key;
};

static int env_fail(struct envelope *env, enum envelope_error e, const char *fmt, ...)
    WSD_PRINTF(3, 4);

static int env_fail(struct envelope *env, enum envelope_error e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(env->message, sizeof(env->message), fmt, ap);
    va_end(ap);
    env->error = e;
    return WSD_EINVAL;
}

static const uint8_t env_key_lens[ENV_K_COUNT] = {2, 2, 5, 7, 5, 4, 3, 6, 5, 4};

/* Index of a known key given its decoded bytes, or -1. */
static int env_key_lookup(const uint8_t *k, size_t len)
{
    if (len < 2 || len > 7)
        return -1;
    for (int i = 0; i < ENV_K_COUNT; i++) {
        if (env_key_lens[i] == len && memcmp(env_key_names[i], k, len) == 0)
            return i;
    }
    return -1;
}

static bool env_str_same(const struct envelope_str *a, const struct envelope_str *b)
{
    if (!a->escaped && !b->escaped)
        return a->raw_len == b->raw_len && memcmp(a->raw, b->raw, a->raw_len) == 0;
    return json_str_equal(a->raw, a->raw_len, b->raw, b->raw_len);
}

/* Records a member's key; returns the known key index or -1 (unknown or repeated). */
static int env_walk_key(struct env_walk *w, const struct envelope_str *key)
{
    int k = -1;
    if (++w->num_keys > ENVELOPE_MAX_KEYS)
        return -1;
    if (!key->escaped) {
        k = env_key_lookup(key->raw, key->raw_len);
    } else if (key->len <= 16) {
        uint8_t tmp[16];
        long n = json_unescape(key->raw, key->raw_len, tmp, sizeof(tmp));
        k = n < 0 ? -1 : env_key_lookup(tmp, (size_t)n);
    }
    if (k >= 0) {
        w->duplicate |= w->f[k].present;
        return w->f[k].present ? -1 : k;
    }
    for (size_t i = 0; i < w->num_unknown; i++)
        w->duplicate |= env_str_same(&w->unknown[i], key);
    w->unknown[w->num_unknown++] = *key;
    return -1;
}

static void env_field_from_json(struct env_field *f, const struct json_value *v)
{
    static const enum envelope_type types[] = {
        [JSON_NONE] = ENVELOPE_T_NONE,     [JSON_NULL] = ENVELOPE_T_NULL,
        [JSON_FALSE] = ENVELOPE_T_BOOL,    [JSON_TRUE] = ENVELOPE_T_BOOL,
        [JSON_NUMBER] = ENVELOPE_T_NUMBER, [JSON_STRING] = ENVELOPE_T_STRING,
        [JSON_ARRAY] = ENVELOPE_T_ARRAY,   [JSON_OBJECT] = ENVELOPE_T_OBJECT,
    };
    f->present = true;
    f->bad_data = false;
    f->utf8_ok = true;
    f->type = types[v->type];
    f->p = v->p;
    f->len = v->len;
    f->jv = *v;
    if (v->type == JSON_STRING) {
        f->str.raw = v->p + 1;
        f->str.raw_len = (uint32_t)(v->len - 2);
        f->str.len = (uint32_t)v->str_len;
        f->str.escaped = v->flags & JSON_F_ESCAPED;
    }
}

/* True when every number in the JSON value v is within a double's range. */
static bool env_json_numbers_fit(const uint8_t *buf, size_t len, const struct json_value *v,
                                 unsigned depth)
{
    if (!(v->flags & JSON_F_BIG))
        return true;
    if (v->type == JSON_NUMBER) {
        double d;
        return json_number_double(v, &d) == 0 && isfinite(d);
    }
    struct json_iter it;
    struct json_value val;
    json_iter_init(&it, buf, len, v, depth + 1);
    while (json_iter_next(&it, NULL, &val) == 1) {
        if (!env_json_numbers_fit(buf, len, &val, depth + 1))
            return false;
    }
    return true;
}

static int env_walk_json(struct envelope *env, const uint8_t *msg, size_t len,
                         struct env_walk *w)
{
    size_t pos = json_skip_ws(msg, len, 0);
    if (pos >= len || msg[pos] != '{') {
        if (json_validate(msg, len, NULL) == 0)
            return env_fail(env, ENVELOPE_ERR_BAD_ENVELOPE, "envelope is not an object");
        return env_fail(env, ENVELOPE_ERR_BAD_JSON, "malformed JSON");
    }
    struct json_value obj = {.p = msg + pos, .len = 1, .type = JSON_OBJECT};
    struct json_iter it;
    struct json_value key, val;
    int rc;
    json_iter_init(&it, msg, len, &obj, 1);
    while ((rc = json_iter_next(&it, &key, &val)) == 1) {
        struct envelope_str ks = {
            .raw = key.p + 1,
            .raw_len = (uint32_t)(key.len - 2),
            .len = (uint32_t)key.str_len,
            .escaped = key.flags & JSON_F_ESCAPED,
        };
        int k = env_walk_key(w, &ks);
        if (k >= 0)
            env_field_from_json(&w->f[k], &val);
    }
    if (rc < 0 || json_skip_ws(msg, len, it.pos) != len)
        return env_fail(env, ENVELOPE_ERR_BAD_JSON, "malformed JSON");
    struct env_field *d = &w->f[ENV_K_DATA];
    if (d->present)
        d->bad_data = !env_json_numbers_fit(msg, len, &d->jv, 1);
    return 0;
}

static void env_field_from_mp(struct env_field *f, const uint8_t *p, size_t len,
                              const struct mp_item *it, bool bad)
{
    static const enum envelope_type types[] = {
        [MP_NIL] = ENVELOPE_T_NULL,    [MP_BOOL] = ENVELOPE_T_BOOL,
        [MP_UINT] = ENVELOPE_T_NUMBER, [MP_INT] = ENVELOPE_T_NUMBER,
        [MP_F32] = ENVELOPE_T_NUMBER,  [MP_F64] = ENVELOPE_T_NUMBER,
        [MP_STR] = ENVELOPE_T_STRING,  [MP_BIN] = ENVELOPE_T_BINARY,
        [MP_ARRAY] = ENVELOPE_T_ARRAY, [MP_MAP] = ENVELOPE_T_OBJECT,
        [MP_EXT] = ENVELOPE_T_NONE,
    };
    f->present = true;
    f->utf8_ok = true;
    f->type = types[it->kind];
    f->p = p;
    f->len = len;
    f->mi = *it;
    f->bad_data = bad;
    if (it->kind == MP_STR) {
        f->str.raw = it->body;
        f->str.raw_len = it->n;
        f->str.len = it->n;
        f->str.escaped = false;
        f->utf8_ok = json_utf8_is_valid(it->body, it->n);
    }
}

/* One member of the top-level map at msg[*pos]. */
static int env_walk_mp_member(const uint8_t *msg, size_t len, size_t *pos, struct env_walk *w)
{
    struct mp_item key, head;
    bool bad = false;
    if (mp_skip(msg, len, pos, 1, false, &bad, &key) < 0)
        return WSD_EINVAL;
    int k = -1;
    if (key.kind == MP_STR) {
        struct envelope_str ks = {.raw = key.body, .raw_len = key.n, .len = key.n};
        k = env_walk_key(w, &ks);
    } else {
        w->non_string_key = true;
    }
    size_t vpos = *pos;
    if (mp_skip(msg, len, pos, 1, k == ENV_K_DATA, &bad, &head) < 0)
        return WSD_EINVAL;
    if (k >= 0)
        env_field_from_mp(&w->f[k], msg + vpos, *pos - vpos, &head, bad);
    return 0;
}

static int env_walk_mp(struct envelope *env, const uint8_t *msg, size_t len, struct env_walk *w)
{
    size_t pos = 0;
    struct mp_item top;
    if (mp_read(msg, len, &pos, &top) < 0)
        return env_fail(env, ENVELOPE_ERR_BAD_MSGPACK, "malformed MessagePack");
    if (top.kind != MP_MAP) {
        if (mp_is_valid(msg, len))
            return env_fail(env, ENVELOPE_ERR_BAD_ENVELOPE, "envelope is not a map");
        return env_fail(env, ENVELOPE_ERR_BAD_MSGPACK, "malformed MessagePack");
    }
    for (uint32_t i = 0; i < top.n; i++) {
        if (env_walk_mp_member(msg, len, &pos, w) < 0)
            return env_fail(env, ENVELOPE_ERR_BAD_MSGPACK, "malformed MessagePack");
    }
    if (pos != len)
        return env_fail(env, ENVELOPE_ERR_BAD_MSGPACK, "trailing bytes after the envelope");
    if (w->non_string_key)
        return env_fail(env, ENVELOPE_ERR_BAD_ENVELOPE, "envelope key is not a string");
    return 0;
}

/* ---- parsing: fields ---------------------------------------------------------------- */

/* Integer value of a number field: 1 non-negative (*u), 2 negative (*i), 0 not integer. */
static int env_field_int(const struct env_field *f, enum envelope_encoding enc, uint64_t *u,
                         int64_t *i)
{
    if (!f->present || f->type != ENVELOPE_T_NUMBER)
        return 0;
    if (enc == ENVELOPE_JSON) {
        if (json_number_u64(&f->jv, u) == 0)
            return 1;
        return json_number_i64(&f->jv, i) == 0 ? 2 : 0;
    }
    if (f->mi.kind == MP_UINT) {
        *u = f->mi.u;
        return 1;
    }
    if (f->mi.kind == MP_INT) {
        if (f->mi.i >= 0) {
            *u = (uint64_t)f->mi.i;
            return 1;
        }
        *i = f->mi.i;
        return 2;
    }
    return 0;
}

static int env_parse_id(struct envelope *env, const struct env_field *f)
{
    uint64_t u = 0;
    int64_t i = 0;
    if (!f->present)
        return 0;
    if (f->type == ENVELOPE_T_STRING && f->utf8_ok && f->str.len <= ENVELOPE_MAX_ID_LEN) {
        size_t n;
        envelope_str_copy(&f->str, env->id.str, sizeof(env->id.str), &n);
        env->id.kind = ENVELOPE_ID_STRING;
        env->id.len = (uint8_t)n;
        return 0;
    }
    int kind = env_field_int(f, env->enc, &u, &i);
    if (kind == 1 && u <= INT64_MAX) {
        env->id.kind = ENVELOPE_ID_INT;
        env->id.num = (int64_t)u;
        return 0;
    }
    if (kind == 2) {
        env->id.kind = ENVELOPE_ID_INT;
        env->id.num = i;
        return 0;
    }
    return env_fail(env, ENVELOPE_ERR_BAD_FIELD,
                    "id must be a string of at most 64 bytes or an integer");
}

static int env_parse_op(struct envelope *env, const struct env_field *f)
{
    static const char *const names[] = {
        [ENVELOPE_OP_AUTH] = "auth",       [ENVELOPE_OP_JOIN] = "join",
        [ENVELOPE_OP_LEAVE] = "leave",     [ENVELOPE_OP_PUBLISH] = "publish",
        [ENVELOPE_OP_SEND] = "send",       [ENVELOPE_OP_BROADCAST] = "broadcast",
        [ENVELOPE_OP_ACK] = "ack",         [ENVELOPE_OP_PRESENCE] = "presence",
        [ENVELOPE_OP_PING] = "ping",
    };
    if (!f->present)
        return env_fail(env, ENVELOPE_ERR_MISSING_FIELD, "missing field: op");
    if (f->type != ENVELOPE_T_STRING)
        return env_fail(env, ENVELOPE_ERR_BAD_FIELD, "op must be a string");
    env->op_name = f->str;
    for (size_t k = ENVELOPE_OP_AUTH; k < WSD_ARRAY_LEN(names); k++) {
        if (envelope_str_equal(&f->str, names[k], strlen(names[k]))) {
            env->op = (enum envelope_op)k;
            return 0;
        }
    }
    return env_fail(env, ENVELOPE_ERR_UNKNOWN_OP, "unknown op");
}

/* A string field: required or not, a byte limit (too_large), non-empty or not. */
static int env_parse_str(struct envelope *env, const struct env_walk *w, enum env_key k,
                         bool required, uint32_t max, bool nonempty, struct envelope_str *out)
{
    const struct env_field *f = &w->f[k];
    const char *name = env_key_names[k];
    if (!f->present) {
        if (required)
            return env_fail(env, ENVELOPE_ERR_MISSING_FIELD, "missing field: %s", name);
        return 0;
    }
    if (f->type != ENVELOPE_T_STRING || !f->utf8_ok)
        return env_fail(env, ENVELOPE_ERR_BAD_FIELD, "%s must be a string", name);
    if (nonempty && f->str.len == 0)
        return env_fail(env, ENVELOPE_ERR_BAD_FIELD, "%s must not be empty", name);
    if (max > 0 && f->str.len > max)
        return env_fail(env, ENVELOPE_ERR_TOO_LARGE, "%s is over %u bytes", name, max);
    *out = f->str;
    return 0;
}

static int env_parse_offset(struct envelope *env, const struct env_walk *w)
{
    const struct env_field *f = &w->f[ENV_K_OFFSET];
    uint64_t u;
    int64_t i;
    if (!f->present)
        return env_fail(env, ENVELOPE_ERR_MISSING_FIELD, "missing field: offset");
    if (env_field_int(f, env->enc, &u, &i) != 1)
        return env_fail(env, ENVELOPE_ERR_BAD_FIELD, "offset must be a non-negative integer");
    env->has_offset = true;
    env->offset = u;
    return 0;
}

static void env_value_of(const struct envelope *env, const struct env_field *f,
                         struct envelope_value *v)
{
    v->p = f->p;
    v->len = (uint32_t)f->len;
    v->type = f->type;
    v->enc = env->enc;
}

static int env_parse_data(struct envelope *env, const struct env_walk *w, uint64_t max)
{
    const struct env_field *f = &w->f[ENV_K_DATA];
    if (!f->present)
        return env_fail(env, ENVELOPE_ERR_MISSING_FIELD, "missing field: data");
    if (f->bad_data)
        return env_fail(env, ENVELOPE_ERR_BAD_FIELD,
                        "data holds a value that cannot be carried in JSON and MessagePack");
    if (max > 0 && f->len > max)
        return env_fail(env, ENVELOPE_ERR_TOO_LARGE, "data is over %" PRIu64 " bytes", max);
    env_value_of(env, f, &env->data);
    return 0;
}

/* Checks a since map (auth): every key a channel name, every value a position. */
static bool env_since_map_ok(const struct envelope_value *v)
{
    struct envelope_since_iter it;
    struct envelope_str ch;
    struct envelope_since pos;
    int rc;
    envelope_since_iter_init(&it, v);
    while ((rc = envelope_since_iter_next(&it, &ch, &pos)) == 1) {
        if (ch.len > ENVELOPE_MAX_NAME_LEN || ch.len == 0)
            return false;
        if (v->enc == ENVELOPE_MSGPACK && !json_utf8_is_valid(ch.raw, ch.raw_len))
            return false;
    }
    return rc == 0;
}

static int env_parse_since(struct envelope *env, const struct env_walk *w, bool is_map)
{
    const struct env_field *f = &w->f[ENV_K_SINCE];
    struct envelope_value v;
    struct envelope_since pos;
    if (!f->present)
        return 0;
    env_value_of(env, f, &v);
    if (is_map) {
        if (v.type != ENVELOPE_T_OBJECT || !env_since_map_ok(&v))
            return env_fail(env, ENVELOPE_ERR_BAD_FIELD,
                            "since must map channel names to positions");
    } else if (envelope_since_read(&v, &pos) < 0) {
        return env_fail(env, ENVELOPE_ERR_BAD_FIELD,
                        "since must be an offset or {\"offset\":N,\"epoch\":\"E\"}");
    }
    env->since = v;
    return 0;
}

static int env_parse_auth(struct envelope *env, const struct env_walk *w)
{
    if (env_parse_str(env, w, ENV_K_TOKEN, true, 0, false, &env->token) < 0 ||
        env_parse_str(env, w, ENV_K_SESSION, false, ENVELOPE_MAX_SESSION_LEN, false,
                      &env->session) < 0)
        return WSD_EINVAL;
    return env_parse_since(env, w, true);
}

/* The fields of each op, in the order of the table in PROTOCOL.md. */
static int env_parse_fields(struct envelope *env, const struct env_walk *w, uint64_t max_data)
{
    const uint32_t name_max = ENVELOPE_MAX_NAME_LEN;
    switch (env->op) {
    case ENVELOPE_OP_AUTH:
        return env_parse_auth(env, w);
    case ENVELOPE_OP_JOIN:
        if (env_parse_str(env, w, ENV_K_GROUP, true, name_max, true, &env->group) < 0)
            return WSD_EINVAL;
        return env_parse_since(env, w, false);
    case ENVELOPE_OP_LEAVE:
    case ENVELOPE_OP_PRESENCE:
        return env_parse_str(env, w, ENV_K_GROUP, true, name_max, true, &env->group);
    case ENVELOPE_OP_PUBLISH:
    case ENVELOPE_OP_SEND: {
        bool pub = env->op == ENVELOPE_OP_PUBLISH;
        enum env_key k = pub ? ENV_K_GROUP : ENV_K_USER;
        if (env_parse_str(env, w, k, true, name_max, true, pub ? &env->group : &env->user) < 0)
            return WSD_EINVAL;
        if (env_parse_data(env, w, max_data) < 0)
            return WSD_EINVAL;
        return env_parse_str(env, w, ENV_K_MID, false, ENVELOPE_MAX_MID_LEN, true, &env->mid);
    }
    case ENVELOPE_OP_BROADCAST:
        return env_parse_data(env, w, max_data);
    case ENVELOPE_OP_ACK:
        return env_parse_offset(env, w);
    case ENVELOPE_OP_PING:
    default:
        return 0;
    }
}

int envelope_parse(struct envelope *env, enum envelope_encoding enc, const uint8_t *msg,
                   size_t len, uint64_t max_data_size)
{
    struct env_walk w;
    memset(env, 0, offsetof(struct envelope, message));
    env->message[0] = '\0';
    for (int k = 0; k < ENV_K_COUNT; k++)
        w.f[k].present = false;
    w.num_unknown = 0;
    w.num_keys = 0;
    w.duplicate = false;
    w.non_string_key = false;
    env->enc = enc;
    int rc = enc == ENVELOPE_JSON ? env_walk_json(env, msg, len, &w)
                                  : env_walk_mp(env, msg, len, &w);
    if (rc < 0)
        return rc;
    if (env_parse_id(env, &w.f[ENV_K_ID]) < 0)
        return WSD_EINVAL;
    if (w.num_keys > ENVELOPE_MAX_KEYS)
        return env_fail(env, ENVELOPE_ERR_BAD_ENVELOPE, "envelope has over %d keys",
                        ENVELOPE_MAX_KEYS);
    if (w.duplicate)
        return env_fail(env, ENVELOPE_ERR_BAD_ENVELOPE, "duplicate key in envelope");
    if (env_parse_op(env, &w.f[ENV_K_OP]) < 0 || env_parse_fields(env, &w, max_data_size) < 0)
        return WSD_EINVAL;
    env->error = ENVELOPE_OK;
    return 0;
}

const char *envelope_error_code(enum envelope_error e)
{
    switch (e) {
    case ENVELOPE_OK: return "ok";
    case ENVELOPE_ERR_BAD_JSON: return "bad_json";
    case ENVELOPE_ERR_BAD_MSGPACK: return "bad_msgpack";
    case ENVELOPE_ERR_BAD_ENVELOPE: return "bad_envelope";
    case ENVELOPE_ERR_UNKNOWN_OP: return "unknown_op";
    case ENVELOPE_ERR_MISSING_FIELD: return "missing_field";
    case ENVELOPE_ERR_BAD_FIELD: return "bad_field";
    case ENVELOPE_ERR_TOO_LARGE: return "too_large";
    }
    return "internal";
}

const char *envelope_op_name(enum envelope_op op)
{
    switch (op) {
    case ENVELOPE_OP_AUTH: return "auth";
    case ENVELOPE_OP_JOIN: return "join";
    case ENVELOPE_OP_LEAVE: return "leave";
    case ENVELOPE_OP_PUBLISH: return "publish";
    case ENVELOPE_OP_SEND: return "send";
    case ENVELOPE_OP_BROADCAST: return "broadcast";
    case ENVELOPE_OP_ACK: return "ack";
    case ENVELOPE_OP_PRESENCE: return "presence";
    case ENVELOPE_OP_PING: return "ping";
    case ENVELOPE_OP_UNKNOWN: break;
    }
    return "unknown";
}

int envelope_str_copy(const struct envelope_str *s, void *out, size_t cap, size_t *out_len)
{
    if (s->raw == NULL)
        return WSD_ENOENT;
    if (s->len > cap)
        return WSD_ETOOBIG;
    if (!s->escaped) {
        memcpy(out, s->raw, s->len);
        *out_len = s->len;
        return 0;
    }
    long n = json_unescape(s->raw, s->raw_len, out, cap);
    if (n < 0)
        return (int)n;
    *out_len = (size_t)n;
    return 0;
}

bool envelope_str_view(const struct envelope_str *s, const uint8_t **p, size_t *len)
{
    if (s->raw == NULL || s->escaped)
        return false;
    *p = s->raw;
    *len = s->len;
    return true;
}

bool envelope_str_equal(const struct envelope_str *s, const void *lit, size_t lit_len)
{
    if (s->raw == NULL)
        return false;
    return json_str_equal_lit(s->raw, s->raw_len, s->escaped, lit, lit_len);
}

/* ---- since -------------------------------------------------------------------------- */

/* One member of a JSON {"offset":N,"epoch":"E"}; *seen tracks offset (1) and epoch (2). */
static int env_since_json_member(const struct json_value *key, const struct json_value *val,
                                 struct envelope_since *out, unsigned *seen)
{
    bool esc = key->flags & JSON_F_ESCAPED;
    const uint8_t *k = key->p + 1;
    size_t klen = key->len - 2;
    if (json_str_equal_lit(k, klen, esc, "offset", 6)) {
        if ((*seen & 1) || json_number_u64(val, &out->offset) < 0)
            return WSD_EINVAL;
        *seen |= 1;
    } else if (json_str_equal_lit(k, klen, esc, "epoch", 5)) {
        if ((*seen & 2) || val->type != JSON_STRING || val->str_len > ENVELOPE_MAX_EPOCH_LEN)
            return WSD_EINVAL;
        out->epoch.raw = val->p + 1;
        out->epoch.raw_len = (uint32_t)(val->len - 2);
        out->epoch.len = (uint32_t)val->str_len;
        out->epoch.escaped = val->flags & JSON_F_ESCAPED;
        *seen |= 2;
    }
    return 0;
}

static int env_since_json(const struct envelope_value *v, struct envelope_since *out)
{
    struct json_value jv, key, val;
    size_t pos = 0;
    if (json_scan(v->p, v->len, &pos, 1, &jv) < 0)
        return WSD_EINVAL;
    if (jv.type == JSON_NUMBER)
        return json_number_u64(&jv, &out->offset);
    if (jv.type != JSON_OBJECT)
        return WSD_EINVAL;
    struct json_iter it;
    unsigned seen = 0;
    int rc;
    json_iter_init(&it, v->p, v->len, &jv, 2);
    while ((rc = json_iter_next(&it, &key, &val)) == 1) {
        if (env_since_json_member(&key, &val, out, &seen) < 0)
            return WSD_EINVAL;
    }
    return rc == 0 && (seen & 1) ? 0 : WSD_EINVAL;
}

static int env_since_mp_member(const uint8_t *p, size_t len, size_t *pos,
                               struct envelope_since *out, unsigned *seen)
{
    struct mp_item key, val;
    bool bad = false;
    if (mp_read(p, len, pos, &key) < 0 || key.kind != MP_STR)
        return WSD_EINVAL;
    if (mp_skip(p, len, pos, 2, false, &bad, &val) < 0)
        return WSD_EINVAL;
    if (key.n == 6 && memcmp(key.body, "offset", 6) == 0) {
        if ((*seen & 1) || (val.kind != MP_UINT && !(val.kind == MP_INT && val.i >= 0)))
            return WSD_EINVAL;
        out->offset = val.kind == MP_UINT ? val.u : (uint64_t)val.i;
        *seen |= 1;
    } else if (key.n == 5 && memcmp(key.body, "epoch", 5) == 0) {
        if ((*seen & 2) || val.kind != MP_STR || val.n > ENVELOPE_MAX_EPOCH_LEN ||
            !json_utf8_is_valid(val.body, val.n))
            return WSD_EINVAL;
        out->epoch.raw = val.body;
        out->epoch.raw_len = val.n;
        out->epoch.len = val.n;
        out->epoch.escaped = false;
        *seen |= 2;
    }
    return 0;
}

static int env_since_mp(const struct envelope_value *v, struct envelope_since *out)
{
    struct mp_item top;
    size_t pos = 0;
    unsigned seen = 0;
    if (mp_read(v->p, v->len, &pos, &top) < 0)
        return WSD_EINVAL;
    if (top.kind == MP_UINT || (top.kind == MP_INT && top.i >= 0)) {
        out->offset = top.kind == MP_UINT ? top.u : (uint64_t)top.i;
        return pos == v->len ? 0 : WSD_EINVAL;
    }
    if (top.kind != MP_MAP)
        return WSD_EINVAL;
    for (uint32_t k = 0; k < top.n; k++) {
        if (env_since_mp_member(v->p, v->len, &pos, out, &seen) < 0)
            return WSD_EINVAL;
    }
    return pos == v->len && (seen & 1) ? 0 : WSD_EINVAL;
}

int envelope_since_read(const struct envelope_value *v, struct envelope_since *out)
{
    memset(out, 0, sizeof(*out));
    if (v->p == NULL)
        return WSD_EINVAL;
    return v->enc == ENVELOPE_JSON ? env_since_json(v, out) : env_since_mp(v, out);
}

void envelope_since_iter_init(struct envelope_since_iter *it, const struct envelope_value *v)
{
    memset(it, 0, sizeof(*it));
    it->enc = v->enc;
    it->p = v->p;
    it->len = v->len;
    it->failed = v->p == NULL || v->type != ENVELOPE_T_OBJECT;
    if (it->failed)
        return;
    if (v->enc == ENVELOPE_JSON) {
        struct json_value jv = {.p = v->p, .len = v->len, .type = JSON_OBJECT};
        json_iter_init(&it->json, v->p, v->len, &jv, 2);
        return;
    }
    struct mp_item top;
    it->failed = mp_read(v->p, v->len, &it->pos, &top) < 0 || top.kind != MP_MAP;
    it->left = top.n;
}

static int env_since_next_mp(struct envelope_since_iter *it, struct envelope_str *channel,
                             struct envelope_value *val)
{
    struct mp_item key, head;
    bool bad = false;
    if (it->left == 0)
        return it->pos == it->len ? 0 : WSD_EINVAL;
    if (mp_read(it->p, it->len, &it->pos, &key) < 0 || key.kind != MP_STR)
        return WSD_EINVAL;
    size_t vpos = it->pos;
    if (mp_skip(it->p, it->len, &it->pos, 2, false, &bad, &head) < 0)
        return WSD_EINVAL;
    it->left--;
    *channel = (struct envelope_str){.raw = key.body, .raw_len = key.n, .len = key.n};
    *val = (struct envelope_value){.p = it->p + vpos, .len = (uint32_t)(it->pos - vpos),
                                   .type = ENVELOPE_T_NUMBER, .enc = ENVELOPE_MSGPACK};
    return 1;
}

int envelope_since_iter_next(struct envelope_since_iter *it, struct envelope_str *channel,
                             struct envelope_since *pos)
{
    struct envelope_value val;
    int rc;
    if (it->failed)
        return WSD_EINVAL;
    if (it->enc == ENVELOPE_JSON) {
        struct json_value key, jv;
        rc = json_iter_next(&it->json, &key, &jv);
        if (rc == 1) {
            *channel = (struct envelope_str){.raw = key.p + 1,
                                             .raw_len = (uint32_t)(key.len - 2),
                                             .len = (uint32_t)key.str_len,
                                             .escaped = key.flags & JSON_F_ESCAPED};
            val = (struct envelope_value){.p = jv.p, .len = (uint32_t)jv.len,
                                          .type = ENVELOPE_T_NUMBER, .enc = ENVELOPE_JSON};
        }
    } else {
        rc = env_since_next_mp(it, channel, &val);
    }
    if (rc == 1 && envelope_since_read(&val, pos) < 0)
        rc = WSD_EINVAL;
    it->failed = rc < 0;
    return rc;
}

/* ---- the writer --------------------------------------------------------------------- */

static void w_set_err(struct envelope_writer *w, int err)
{
    if (w->err == 0)
        w->err = err;
}

static int w_pack_write(void *data, const char *p, size_t len)
{
    struct envelope_writer *w = data;
    if (buf_append(w->out, p, len) < 0) {
        w_set_err(w, WSD_ENOMEM);
        return -1;
    }
    return 0;
}

void envelope_writer_init(struct envelope_writer *w, struct buf *out,
                          enum envelope_encoding enc)
{
    memset(w, 0, sizeof(*w));
    w->out = out;
    w->enc = enc;
    msgpack_packer_init(&w->pk, w, w_pack_write);
}

int envelope_writer_finish(const struct envelope_writer *w)
{
    if (w->err == 0 && (w->depth != 0 || w->after_key))
        return WSD_EINVAL;
    return w->err;
}

static void w_raw(struct envelope_writer *w, const void *p, size_t len)
{
    struct buf *b = w->out;
    if (w->err != 0 || len == 0)
        return;
    if (WSD_LIKELY(b->cap - b->len >= len)) {
        memcpy(b->data + b->len, p, len);
        b->len += len;
        return;
    }
    if (buf_append(b, p, len) < 0)
        w_set_err(w, WSD_ENOMEM);
}

/* Writes v in decimal into out (room for 20 digits); returns the length. */
static size_t w_fmt_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

static size_t w_fmt_i64(char *out, int64_t v)
{
    if (v >= 0)
        return w_fmt_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + w_fmt_u64(out + 1, (uint64_t)0 - (uint64_t)v);
}

/* Before a value: JSON separators. Returns false when the writer has failed. */
static bool w_value(struct envelope_writer *w)
{
    if (w->err != 0)
        return false;
    if (w->enc != ENVELOPE_JSON)
        return true;
    if (w->after_key) {
        w->after_key = false;
        return true;
    }
    if (w->depth > 0) {
        if (w->need_comma[w->depth])
            w_raw(w, ",", 1);
        w->need_comma[w->depth] = true;
    }
    return w->err == 0;
}

static void w_open(struct envelope_writer *w, bool map, uint32_t count)
{
    if (!w_value(w))
        return;
    if (w->depth >= ENVELOPE_WRITER_DEPTH) {
        w_set_err(w, WSD_EINVAL);
        return;
    }
    if (w->enc == ENVELOPE_JSON)
        w_raw(w, map ? "{" : "[", 1);
    else if (map)
        msgpack_pack_map(&w->pk, count);
    else
        msgpack_pack_array(&w->pk, count);
    w->depth++;
    w->need_comma[w->depth] = false;
}

static void w_close(struct envelope_writer *w, bool map)
{
    if (w->err != 0)
        return;
    if (w->depth == 0 || w->after_key) {
        w_set_err(w, WSD_EINVAL);
        return;
    }
    w->depth--;
    if (w->enc == ENVELOPE_JSON)
        w_raw(w, map ? "}" : "]", 1);
}

void envelope_w_map(struct envelope_writer *w, uint32_t count)
{
    w_open(w, true, count);
}

void envelope_w_map_end(struct envelope_writer *w)
{
    w_close(w, true);
}

void envelope_w_array(struct envelope_writer *w, uint32_t count)
{
    w_open(w, false, count);
}

void envelope_w_array_end(struct envelope_writer *w)
{
    w_close(w, false);
}

void envelope_w_key(struct envelope_writer *w, const char *key)
{
    if (w->err != 0)
        return;
    size_t len = strlen(key);
    if (w->enc == ENVELOPE_MSGPACK) {
        msgpack_pack_str_with_body(&w->pk, key, len);
        return;
    }
    if (w->depth == 0 || w->after_key) {
        w_set_err(w, WSD_EINVAL);
        return;
    }
    if (w->need_comma[w->depth])
        w_raw(w, ",", 1);
    w->need_comma[w->depth] = true;
    w_raw(w, "\"", 1);
    w_raw(w, key, len);
    w_raw(w, "\":", 2);
    w->after_key = true;
}

void envelope_w_str(struct envelope_writer *w, const void *p, size_t len)
{
    if (!w_value(w))
        return;
    if (w->enc == ENVELOPE_JSON) {
        int rc = json_write_string(w->out, p, len);
        if (rc < 0)
            w_set_err(w, rc);
        return;
    }
    if (!json_utf8_is_valid(p, len)) {
        w_set_err(w, WSD_EUTF8);
        return;
    }
    msgpack_pack_str_with_body(&w->pk, p, len);
}

void envelope_w_cstr(struct envelope_writer *w, const char *s)
{
    envelope_w_str(w, s, strlen(s));
}

void envelope_w_env_str(struct envelope_writer *w, const struct envelope_str *s)
{
    if (s->raw == NULL) {
        envelope_w_null(w);
        return;
    }
    if (!s->escaped) {
        envelope_w_str(w, s->raw, s->len);
        return;
    }
    if (!w_value(w))
        return;
    if (w->enc == ENVELOPE_JSON) {
        w_raw(w, "\"", 1); /* escaped JSON content is already a valid JSON string body */
        w_raw(w, s->raw, s->raw_len);
        w_raw(w, "\"", 1);
        return;
    }
    msgpack_pack_str(&w->pk, s->len);
    if (w->err == 0 && buf_reserve(w->out, s->len) < 0)
        w_set_err(w, WSD_ENOMEM);
    if (w->err != 0)
        return;
    long n = json_unescape(s->raw, s->raw_len, w->out->data + w->out->len, s->len);
    if (n != (long)s->len) {
        w_set_err(w, WSD_EINVAL);
        return;
    }
    w->out->len += (size_t)n;
}

void envelope_w_uint(struct envelope_writer *w, uint64_t v)
{
    if (!w_value(w))
        return;
    if (w->enc == ENVELOPE_MSGPACK) {
        msgpack_pack_uint64(&w->pk, v);
        return;
    }
    char tmp[24];
    w_raw(w, tmp, w_fmt_u64(tmp, v));
}

void envelope_w_int(struct envelope_writer *w, int64_t v)
{
    if (!w_value(w))
        return;
    if (w->enc == ENVELOPE_MSGPACK) {
        msgpack_pack_int64(&w->pk, v);
        return;
    }
    char tmp[24];
    w_raw(w, tmp, w_fmt_i64(tmp, v));
}

void envelope_w_bool(struct envelope_writer *w, bool v)
{
    if (!w_value(w))
        return;
    if (w->enc == ENVELOPE_JSON)
        w_raw(w, v ? "true" : "false", v ? 4 : 5);
    else if (v)
        msgpack_pack_true(&w->pk);
    else
        msgpack_pack_false(&w->pk);
}

void envelope_w_null(struct envelope_writer *w)
{
    if (!w_value(w))
        return;
    if (w->enc == ENVELOPE_JSON)
        w_raw(w, "null", 4);
    else
        msgpack_pack_nil(&w->pk);
}

void envelope_w_id(struct envelope_writer *w, const struct envelope_id *id)
{
    if (id == NULL || id->kind == ENVELOPE_ID_NONE)
        envelope_w_null(w);
    else if (id->kind == ENVELOPE_ID_INT)
        envelope_w_int(w, id->num);
    else
        envelope_w_str(w, id->str, id->len);
}

void envelope_w_position(struct envelope_writer *w, uint64_t offset, const void *epoch,
                         size_t epoch_len)
{
    envelope_w_map(w, 2);
    envelope_w_key(w, "offset");
    envelope_w_uint(w, offset);
    envelope_w_key(w, "epoch");
    envelope_w_str(w, epoch, epoch_len);
    envelope_w_map_end(w);
}

/* ---- transcoding ---------------------------------------------------------------------- */

static int tc_json_value(struct envelope_writer *w, const uint8_t *buf, size_t len,
                         const struct json_value *v, unsigned depth);

static void tc_json_number(struct envelope_writer *w, const struct json_value *v)
{
    uint64_t u;
    int64_t i;
    double d;
    if (json_number_u64(v, &u) == 0) {
        msgpack_pack_uint64(&w->pk, u);
    } else if (json_number_i64(v, &i) == 0) {
        msgpack_pack_int64(&w->pk, i);
    } else if (json_number_double(v, &d) == 0 && isfinite(d)) {
        msgpack_pack_double(&w->pk, d);
    } else {
        w_set_err(w, WSD_EINVAL);
    }
}

static void tc_json_string(struct envelope_writer *w, const struct json_value *v)
{
    msgpack_pack_str(&w->pk, v->str_len);
    if (w->err == 0 && buf_reserve(w->out, v->str_len) < 0)
        w_set_err(w, WSD_ENOMEM);
    if (w->err != 0)
        return;
    long n = json_string_decode(v, w->out->data + w->out->len, v->str_len);
    if (n != (long)v->str_len) {
        w_set_err(w, WSD_EINVAL);
        return;
    }
    w->out->len += (size_t)n;
}

/*
 * Writes the header of a container whose count is known only afterwards: a 5-byte
 * placeholder, then shrunk to the shortest form once the count is known.
 */
static void tc_patch_header(struct envelope_writer *w, size_t at, bool map, uint32_t count)
{
    uint8_t hdr[5];
    size_t n;
    if (count <= 15) {
        hdr[0] = (uint8_t)((map ? 0x80 : 0x90) | count);
        n = 1;
    } else if (count <= 0xFFFF) {
        hdr[0] = map ? 0xde : 0xdc;
        hdr[1] = (uint8_t)(count >> 8);
        hdr[2] = (uint8_t)count;
        n = 3;
    } else {
        hdr[0] = map ? 0xdf : 0xdd;
        for (int k = 0; k < 4; k++)
            hdr[1 + k] = (uint8_t)(count >> (24 - 8 * k));
        n = 5;
    }
    uint8_t *base = w->out->data + at;
    size_t body = w->out->len - at - 5;
    memmove(base + n, base + 5, body);
    memcpy(base, hdr, n);
    w->out->len -= 5 - n;
}

static void tc_json_container(struct envelope_writer *w, const uint8_t *buf, size_t len,
                              const struct json_value *v, unsigned depth)
{
    static const uint8_t placeholder[5] = {0};
    size_t at = w->out->len;
    bool map = v->type == JSON_OBJECT;
    struct json_iter it;
    struct json_value key, val;
    uint32_t count = 0;
    int rc = 0;
    w_raw(w, placeholder, sizeof(placeholder));
    json_iter_init(&it, buf, len, v, depth + 1);
    while (w->err == 0 && (rc = json_iter_next(&it, &key, &val)) == 1) {
        if (map)
            tc_json_string(w, &key);
        tc_json_value(w, buf, len, &val, depth + 1);
        count++;
    }
    if (w->err == 0 && rc < 0)
        w_set_err(w, WSD_EINVAL);
    if (w->err == 0)
        tc_patch_header(w, at, map, count);
}

static int tc_json_value(struct envelope_writer *w, const uint8_t *buf, size_t len,
                         const struct json_value *v, unsigned depth)
{
    switch (v->type) {
    case JSON_NULL: msgpack_pack_nil(&w->pk); break;
    case JSON_TRUE: msgpack_pack_true(&w->pk); break;
    case JSON_FALSE: msgpack_pack_false(&w->pk); break;
    case JSON_NUMBER: tc_json_number(w, v); break;
    case JSON_STRING: tc_json_string(w, v); break;
    case JSON_ARRAY:
    case JSON_OBJECT: tc_json_container(w, buf, len, v, depth); break;
    default: w_set_err(w, WSD_EINVAL); break;
    }
    return w->err;
}

static void tc_mp_value(struct envelope_writer *w, const uint8_t *p, size_t len, size_t *pos);

static void tc_mp_bin(struct envelope_writer *w, const struct mp_item *it)
{
    size_t n = base64_encoded_len(it->n, true);
    if (buf_reserve(w->out, n + 2) < 0) {
        w_set_err(w, WSD_ENOMEM);
        return;
    }
    uint8_t *o = w->out->data + w->out->len;
    o[0] = '"';
    base64_encode((char *)o + 1, it->body, it->n, BASE64_STD, true);
    o[n + 1] = '"';
    w->out->len += n + 2;
}

static void tc_mp_container(struct envelope_writer *w, const uint8_t *p, size_t len,
                            size_t *pos, const struct mp_item *it)
{
    bool map = it->kind == MP_MAP;
    w_raw(w, map ? "{" : "[", 1);
    for (uint32_t k = 0; k < it->n && w->err == 0; k++) {
        if (k > 0)
            w_raw(w, ",", 1);
        if (map) {
            struct mp_item key;
            if (mp_read(p, len, pos, &key) < 0 || key.kind != MP_STR) {
                w_set_err(w, WSD_EINVAL);
                return;
            }
            int rc = json_write_string(w->out, key.body, key.n);
            if (rc < 0)
                w_set_err(w, rc);
            w_raw(w, ":", 1);
        }
        tc_mp_value(w, p, len, pos);
    }
    w_raw(w, map ? "}" : "]", 1);
}

static void tc_mp_value(struct envelope_writer *w, const uint8_t *p, size_t len, size_t *pos)
{
    struct mp_item it;
    char tmp[24];
    int rc = 0;
    if (w->err != 0)
        return;
    if (mp_read(p, len, pos, &it) < 0) {
        w_set_err(w, WSD_EINVAL);
        return;
    }
    switch (it.kind) {
    case MP_NIL: w_raw(w, "null", 4); break;
    case MP_BOOL: w_raw(w, it.b ? "true" : "false", it.b ? 4 : 5); break;
    case MP_UINT: w_raw(w, tmp, w_fmt_u64(tmp, it.u)); break;
    case MP_INT: w_raw(w, tmp, w_fmt_i64(tmp, it.i)); break;
    case MP_F32: rc = json_write_float(w->out, it.f); break;
    case MP_F64: rc = json_write_double(w->out, it.d); break;
    case MP_STR: rc = json_write_string(w->out, it.body, it.n); break;
    case MP_BIN: tc_mp_bin(w, &it); break;
    case MP_ARRAY:
    case MP_MAP: tc_mp_container(w, p, len, pos, &it); break;
    default: rc = WSD_EINVAL; break;
    }
    if (rc < 0)
        w_set_err(w, rc);
}

void envelope_w_data(struct envelope_writer *w, enum envelope_encoding src,
                     const uint8_t *p, size_t len)
{
    if (!w_value(w))
        return;
    if (src == w->enc) {
        w_raw(w, p, len);
        return;
    }
    if (src == ENVELOPE_JSON) {
        struct json_value v;
        if (json_validate(p, len, &v) < 0) {
            w_set_err(w, WSD_EINVAL);
            return;
        }
        tc_json_value(w, p, len, &v, 1);
        return;
    }
    size_t pos = 0;
    bool bad = false;
    if (mp_skip(p, len, &pos, 1, true, &bad, NULL) < 0 || bad || pos != len) {
        w_set_err(w, WSD_EINVAL);
        return;
    }
    pos = 0;
    tc_mp_value(w, p, len, &pos);
}

/* ---- whole messages ----------------------------------------------------------------- */

static bool has_id(const struct envelope_id *id)
{
    return id != NULL && id->kind != ENVELOPE_ID_NONE;
}

void envelope_w_reply_begin(struct envelope_writer *w, const struct envelope_id *id,
                            uint32_t extra)
{
    envelope_w_map(w, 2 + (has_id(id) ? 1 : 0) + extra);
    envelope_w_key(w, "op");
    envelope_w_cstr(w, "reply");
    if (has_id(id)) {
        envelope_w_key(w, "id");
        envelope_w_id(w, id);
    }
    envelope_w_key(w, "ok");
    envelope_w_bool(w, true);
}

int envelope_encode_reply(struct buf *out, enum envelope_encoding enc,
                          const struct envelope_id *id)
{
    struct envelope_writer w;
    envelope_writer_init(&w, out, enc);
    envelope_w_reply_begin(&w, id, 0);
    envelope_w_map_end(&w);
    return envelope_writer_finish(&w);
}

int envelope_encode_error(struct buf *out, enum envelope_encoding enc,
                          const struct envelope_id *id, const char *code, const char *message)
{
    struct envelope_writer w;
    envelope_writer_init(&w, out, enc);
    envelope_w_map(&w, 3 + (has_id(id) ? 1 : 0));
    envelope_w_key(&w, "op");
    envelope_w_cstr(&w, "error");
    envelope_w_key(&w, "code");
    envelope_w_cstr(&w, code);
    envelope_w_key(&w, "message");
    envelope_w_cstr(&w, message);
    if (has_id(id)) {
        envelope_w_key(&w, "id");
        envelope_w_id(&w, id);
    }
    envelope_w_map_end(&w);
    return envelope_writer_finish(&w);
}

int envelope_encode_pong(struct buf *out, enum envelope_encoding enc,
                         const struct envelope_id *id)
{
    struct envelope_writer w;
    envelope_writer_init(&w, out, enc);
    envelope_w_map(&w, 1 + (has_id(id) ? 1 : 0));
    envelope_w_key(&w, "op");
    envelope_w_cstr(&w, "pong");
    if (has_id(id)) {
        envelope_w_key(&w, "id");
        envelope_w_id(&w, id);
    }
    envelope_w_map_end(&w);
    return envelope_writer_finish(&w);
}

static void w_welcome_groups(struct envelope_writer *w, const struct envelope_welcome *wl)
{
    envelope_w_key(w, "recovered");
    envelope_w_bool(w, wl->recovered);
    envelope_w_key(w, "groups");
    envelope_w_map(w, (uint32_t)wl->num_groups);
    for (size_t k = 0; k < wl->num_groups && w->err == 0; k++) {
        const struct envelope_group_pos *g = &wl->groups[k];
        if (w->enc == ENVELOPE_JSON) {
            /* a group name as a key: escaped like any string */
            if (w->need_comma[w->depth])
                w_raw(w, ",", 1);
            w->need_comma[w->depth] = true;
            int rc = json_write_string(w->out, g->name, g->name_len);
            if (rc < 0)
                w_set_err(w, rc);
            w_raw(w, ":", 1);
            w->after_key = true;
        } else {
            envelope_w_str(w, g->name, g->name_len);
        }
        envelope_w_position(w, g->offset, g->epoch, g->epoch_len);
    }
    envelope_w_map_end(w);
}

int envelope_encode_welcome(struct buf *out, enum envelope_encoding enc,
                            const struct envelope_id *id, const struct envelope_welcome *wl)
{
    struct envelope_writer w;
    envelope_writer_init(&w, out, enc);
    envelope_w_map(&w, 7 + (has_id(id) ? 1 : 0) + (wl->resumed ? 2 : 0));
    envelope_w_key(&w, "op");
    envelope_w_cstr(&w, "welcome");
    if (has_id(id)) {
        envelope_w_key(&w, "id");
        envelope_w_id(&w, id);
    }
    envelope_w_key(&w, "conn");
    envelope_w_uint(&w, wl->conn);
    envelope_w_key(&w, "user");
    envelope_w_str(&w, wl->user, wl->user_len);
    envelope_w_key(&w, "session");
    envelope_w_str(&w, wl->session, wl->session_len);
    envelope_w_key(&w, "heartbeat");
    envelope_w_uint(&w, wl->heartbeat);
    envelope_w_key(&w, "resumed");
    envelope_w_bool(&w, wl->resumed);
    envelope_w_key(&w, "personal");
    envelope_w_position(&w, wl->personal_offset, wl->personal_epoch, wl->personal_epoch_len);
    if (wl->resumed)
        w_welcome_groups(&w, wl);
    envelope_w_map_end(&w);
    return envelope_writer_finish(&w);
}

int envelope_encode_msg_prefix(struct buf *out, enum envelope_encoding enc,
                               const struct envelope_msg *m)
{
    struct envelope_writer w;
    envelope_writer_init(&w, out, enc);
    envelope_w_map(&w, 6 + (m->has_off ? 1 : 0) + (m->sys ? 1 : 0));
    envelope_w_key(&w, "op");
    envelope_w_cstr(&w, "msg");
    envelope_w_key(&w, "ch");
    envelope_w_str(&w, m->ch, m->ch_len);
    if (m->has_off) {
        envelope_w_key(&w, "off");
        envelope_w_uint(&w, m->off);
    }
    envelope_w_key(&w, "mid");
    envelope_w_str(&w, m->mid, m->mid_len);
    envelope_w_key(&w, "from");
    envelope_w_str(&w, m->from, m->from_len);
    envelope_w_key(&w, "ts");
    envelope_w_uint(&w, m->ts_ms);
    if (m->sys) {
        envelope_w_key(&w, "sys");
        envelope_w_bool(&w, true);
    }
    envelope_w_key(&w, "data");
    return w.err;
}

int envelope_encode_msg_suffix(struct buf *out, enum envelope_encoding enc)
{
    if (enc == ENVELOPE_MSGPACK)
        return 0;
    return buf_append(out, "}", 1);
}

int envelope_encode_data(struct buf *out, enum envelope_encoding enc,
                         enum envelope_encoding src, const uint8_t *data, size_t len)
{
    struct envelope_writer w;
    envelope_writer_init(&w, out, enc);
    envelope_w_data(&w, src, data, len);
    return w.err;
}

int envelope_encode_msg(struct buf *out, enum envelope_encoding enc,
                        const struct envelope_msg *m, enum envelope_encoding src,
                        const uint8_t *data, size_t len)
{
    int rc = envelope_encode_msg_prefix(out, enc, m);
    if (rc == 0)
        rc = envelope_encode_data(out, enc, src, data, len);
    if (rc == 0)
        rc = envelope_encode_msg_suffix(out, enc);
    return rc;
}
