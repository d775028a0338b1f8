/*
 * envelope.h - the application envelope (PROTOCOL.md): parsing a client message in JSON
 * (text frames) or MessagePack (binary frames), and encoding server messages in either.
 *
 * Parsing never allocates: the parsed envelope holds views into the caller's message
 * buffer (valid while that buffer is), plus a copy of the request id (so a reply can be
 * sent after the buffer is gone). Unknown top-level keys are ignored; duplicate keys are
 * bad_envelope; fields that the op does not use are ignored without type checks.
 *
 * `data` is validated so that it can be carried in both encodings:
 * - JSON: any value; a number whose magnitude is beyond a double's range (1e400) is
 *   bad_field, since it could not be transcoded.
 * - MessagePack: nil, bool, integers, float32/64 (finite only: NaN and infinities have no
 *   JSON form), str (valid UTF-8), bin, arrays, and maps whose keys are str. ext values
 *   (timestamps included) and other map keys are bad_field.
 * Across encodings data is transcoded: JSON integers become MessagePack int/uint (beyond
 * 64 bits: float64), other numbers float64, strings are unescaped; MessagePack bin
 * becomes a standard padded base64 string, floats are printed to the shortest form that
 * reads back to the same value. Within one encoding the sender's bytes go out unchanged.
 *
 * Encoding writes into a struct buf (growing it; nothing else is allocated) through a
 * struct envelope_writer, which produces the same structure in either encoding.
 */
#ifndef WSD_PROTO_ENVELOPE_H
#define WSD_PROTO_ENVELOPE_H

#include "core/buf.h"
#include "proto/json.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENVELOPE_MAX_ID_LEN 64       /* a string id, bytes */
#define ENVELOPE_MAX_NAME_LEN 128    /* group, user: longer is too_large */
#define ENVELOPE_MAX_MID_LEN 128     /* mid: longer is too_large */
#define ENVELOPE_MAX_SESSION_LEN 128 /* session: longer is too_large */
#define ENVELOPE_MAX_EPOCH_LEN 64    /* the epoch string of a since: longer is bad_field */
#define ENVELOPE_MAX_DEPTH 64        /* nesting, the envelope itself counting as 1 */
#define ENVELOPE_MAX_KEYS 64         /* top-level members: more is bad_envelope */

enum envelope_encoding {
    ENVELOPE_JSON = 0,
    ENVELOPE_MSGPACK = 1,
};

enum envelope_op {
    ENVELOPE_OP_UNKNOWN = 0, /* only seen with ENVELOPE_ERR_UNKNOWN_OP */
    ENVELOPE_OP_AUTH,
    ENVELOPE_OP_JOIN,
    ENVELOPE_OP_LEAVE,
    ENVELOPE_OP_PUBLISH,
    ENVELOPE_OP_SEND,
    ENVELOPE_OP_BROADCAST,
    ENVELOPE_OP_ACK,
    ENVELOPE_OP_PRESENCE,
    ENVELOPE_OP_PING,
};

/* Parse verdicts; envelope_error_code() gives the protocol's error code string. */
enum envelope_error {
    ENVELOPE_OK = 0,
    ENVELOPE_ERR_BAD_JSON,
    ENVELOPE_ERR_BAD_MSGPACK,
    ENVELOPE_ERR_BAD_ENVELOPE,
    ENVELOPE_ERR_UNKNOWN_OP,
    ENVELOPE_ERR_MISSING_FIELD,
    ENVELOPE_ERR_BAD_FIELD,
    ENVELOPE_ERR_TOO_LARGE,
};

/* The type of a value (data, since). */
enum envelope_type {
    ENVELOPE_T_NONE = 0, /* absent */
    ENVELOPE_T_NULL,
    ENVELOPE_T_BOOL,
    ENVELOPE_T_NUMBER,   /* any number (integer or float) */
    ENVELOPE_T_STRING,
    ENVELOPE_T_BINARY,   /* MessagePack bin */
    ENVELOPE_T_ARRAY,
    ENVELOPE_T_OBJECT,
};

/*
 * A string field as received. raw is NULL when absent. For JSON, raw is the content
 * between the quotes and may hold escapes (escaped true); otherwise raw[0..len) is the
 * value itself. Use envelope_str_copy() or envelope_str_view() to read it.
 */
struct envelope_str {
    const uint8_t *raw;
    uint32_t raw_len;
    uint32_t len; /* decoded length in bytes */
    bool escaped;
};

/* An encoded value as received (a view into the message). p is NULL when absent. */
struct envelope_value {
    const uint8_t *p;
    uint32_t len;
    enum envelope_type type;
    enum envelope_encoding enc;
};

enum envelope_id_kind {
    ENVELOPE_ID_NONE = 0,
    ENVELOPE_ID_STRING,
    ENVELOPE_ID_INT,
};

/* The request id, copied (decoded) so it outlives the message buffer. */
struct envelope_id {
    enum envelope_id_kind kind;
    uint8_t len;                      /* STRING: bytes in str */
    int64_t num;                      /* INT */
    char str[ENVELOPE_MAX_ID_LEN];    /* STRING: not NUL-terminated */
};

struct envelope {
    enum envelope_encoding enc;
    enum envelope_op op;
    struct envelope_str op_name;  /* the op string as sent */
    struct envelope_id id;
    struct envelope_str token;    /* auth */
    struct envelope_str session;  /* auth, optional */
    struct envelope_str group;    /* join, leave, publish, presence */
    struct envelope_str user;     /* send */
    struct envelope_str mid;      /* publish, send, optional */
    bool has_offset;
    uint64_t offset;              /* ack */
    struct envelope_value since;  /* auth: OBJECT; join: NUMBER or OBJECT; optional */
    struct envelope_value data;   /* publish, send, broadcast */

    enum envelope_error error;    /* ENVELOPE_OK after a successful parse */
    char message[96];             /* human-readable reason when error != ENVELOPE_OK */
};

/*
 * Parses one message msg[0..len) in encoding enc into env (fully overwritten).
 * Checks, in order: syntax (bad_json / bad_msgpack, also for trailing bytes and nesting
 * over ENVELOPE_MAX_DEPTH); a top-level object/map with string keys (bad_envelope); the
 * id (bad_field, and then env->id stays NONE); at most ENVELOPE_MAX_KEYS members and no
 * key twice, escapes decoded (bad_envelope); the op (missing_field, bad_field when not a
 * string, unknown_op); then the op's fields in the order of the table in PROTOCOL.md,
 * each one: missing_field, bad_field (wrong type, a MessagePack str that is not UTF-8,
 * empty group/user/mid, negative or fractional offset, malformed since or data),
 * too_large (group/user/mid/session over their limits, data longer than max_data_size
 * bytes as received; 0 means no data limit).
 * A valid id is kept in env->id even when a later check fails.
 * Returns 0, or WSD_EINVAL with env->error and env->message set. Never allocates.
 */
int envelope_parse(struct envelope *env, enum envelope_encoding enc, const uint8_t *msg,
                   size_t len, uint64_t max_data_size);

/* The protocol error code for e ("bad_json", ...; "ok" for ENVELOPE_OK). Never NULL. */
const char *envelope_error_code(enum envelope_error e);

/* The op's name ("auth", ...; "unknown" for ENVELOPE_OP_UNKNOWN). Never NULL. */
const char *envelope_op_name(enum envelope_op op);

/*
 * Copies the decoded string s into out[0..cap) (no NUL added) and stores its length in
 * *out_len. Returns 0, WSD_ENOENT when s is absent, or WSD_ETOOBIG when s->len > cap.
 */
int envelope_str_copy(const struct envelope_str *s, void *out, size_t cap, size_t *out_len);

/*
 * When s is present and holds no escapes, points *p at its bytes, sets *len and returns
 * true (no copy needed); otherwise returns false and the caller uses envelope_str_copy().
 */
bool envelope_str_view(const struct envelope_str *s, const uint8_t **p, size_t *len);

/* True when s is present and decodes to exactly lit[0..lit_len). */
bool envelope_str_equal(const struct envelope_str *s, const void *lit, size_t lit_len);

/*
 * One position: a non-negative integer, or {"offset": N, "epoch": "E"} where offset is
 * required, epoch optional (a string of at most ENVELOPE_MAX_EPOCH_LEN bytes), other
 * keys ignored and neither key given twice.
 */
struct envelope_since {
    uint64_t offset;
    struct envelope_str epoch; /* raw NULL when not given */
};

/*
 * Reads a since position from v (join's since, or one value of auth's since map; the
 * parse has validated it). Returns 0, or WSD_EINVAL when v is not a valid position.
 */
int envelope_since_read(const struct envelope_value *v, struct envelope_since *out);

/* A walk over auth's since map: channel name -> position. */
struct envelope_since_iter {
    enum envelope_encoding enc;
    struct json_iter json; /* JSON */
    const uint8_t *p;      /* MessagePack: the map's bytes */
    size_t len;
    size_t pos;
    uint32_t left;         /* MessagePack: entries still to read */
    bool failed;
};

/* Starts a walk over the since map v (an ENVELOPE_T_OBJECT value). */
void envelope_since_iter_init(struct envelope_since_iter *it, const struct envelope_value *v);

/*
 * Returns 1 with the next channel and its position, 0 at the end, WSD_EINVAL when the
 * map is malformed (cannot happen for a map that envelope_parse() accepted).
 */
int envelope_since_iter_next(struct envelope_since_iter *it, struct envelope_str *channel,
                             struct envelope_since *pos);

/*
 * The writer. Maps and arrays take their entry count up front (MessagePack needs it);
 * a map of n entries is n envelope_w_key() calls each followed by one value. Errors are
 * sticky: every call after the first failure does nothing, and envelope_writer_finish()
 * returns the first error. A writer holds no memory of its own; it refers to itself
 * (the packer's context), so it is used where it was initialised and never copied.
 */
#define ENVELOPE_WRITER_DEPTH 16

struct envelope_writer {
    struct buf *out;
    enum envelope_encoding enc;
    int err;
    unsigned depth;
    bool need_comma[ENVELOPE_WRITER_DEPTH + 1]; /* JSON: an entry was written at depth */
    bool after_key;                             /* JSON: a value follows a key */
    msgpack_packer pk;
};

/* Prepares w to append to out (which it does not own) in encoding enc. */
void envelope_writer_init(struct envelope_writer *w, struct buf *out,
                          enum envelope_encoding enc);

/* Returns 0 or the first error: WSD_ENOMEM, WSD_EUTF8 (a string that is not UTF-8),
 * WSD_EINVAL (misuse, a data value that cannot be transcoded, a NaN). */
int envelope_writer_finish(const struct envelope_writer *w);

void envelope_w_map(struct envelope_writer *w, uint32_t count);
void envelope_w_map_end(struct envelope_writer *w);
void envelope_w_array(struct envelope_writer *w, uint32_t count);
void envelope_w_array_end(struct envelope_writer *w);
/* A key: NUL-terminated, written as is (callers pass ASCII literals). */
void envelope_w_key(struct envelope_writer *w, const char *key);
/* Any byte string (a key's value or an array element); it must be valid UTF-8. */
void envelope_w_str(struct envelope_writer *w, const void *p, size_t len);
void envelope_w_cstr(struct envelope_writer *w, const char *s);
/* A received string field, decoded into the writer's encoding. */
void envelope_w_env_str(struct envelope_writer *w, const struct envelope_str *s);
void envelope_w_uint(struct envelope_writer *w, uint64_t v);
void envelope_w_int(struct envelope_writer *w, int64_t v);
void envelope_w_bool(struct envelope_writer *w, bool v);
void envelope_w_null(struct envelope_writer *w);
/* The id as a value: a string or an integer (writes null for ENVELOPE_ID_NONE). */
void envelope_w_id(struct envelope_writer *w, const struct envelope_id *id);
/* {"offset": offset, "epoch": epoch} */
void envelope_w_position(struct envelope_writer *w, uint64_t offset, const void *epoch,
                         size_t epoch_len);
/*
 * A data value received in encoding src (validated by envelope_parse(), or bytes stored
 * from such a value): copied verbatim when src is the writer's encoding, else
 * transcoded. Input that does not validate makes the writer fail with WSD_EINVAL.
 */
void envelope_w_data(struct envelope_writer *w, enum envelope_encoding src,
                     const uint8_t *p, size_t len);

/*
 * Starts {"op":"reply","id":...,"ok":true, ...} (id only when present) with extra more
 * entries that the caller writes (key then value each), then calls envelope_w_map_end().
 */
void envelope_w_reply_begin(struct envelope_writer *w, const struct envelope_id *id,
                            uint32_t extra);

/*
 * Whole messages appended to out in encoding enc. Each returns 0, WSD_ENOMEM, or
 * WSD_EUTF8 when a caller string is not valid UTF-8; out may then hold a partial
 * message, which the caller truncates back to its previous length.
 */

/* {"op":"reply","id":...,"ok":true} */
int envelope_encode_reply(struct buf *out, enum envelope_encoding enc,
                          const struct envelope_id *id);

/* {"op":"error","code":code,"message":message,"id":...}; id may be NULL. */
int envelope_encode_error(struct buf *out, enum envelope_encoding enc,
                          const struct envelope_id *id, const char *code, const char *message);

/* {"op":"pong","id":...} */
int envelope_encode_pong(struct buf *out, enum envelope_encoding enc,
                         const struct envelope_id *id);

/* One channel position in a welcome's "groups". */
struct envelope_group_pos {
    const char *name;
    size_t name_len;
    uint64_t offset;
    const char *epoch;
    size_t epoch_len;
};

struct envelope_welcome {
    uint64_t conn;            /* connection id (keep under 2^53 for JavaScript) */
    const char *user;         /* "" for anonymous */
    size_t user_len;
    const char *session;
    size_t session_len;
    uint32_t heartbeat;       /* seconds */
    bool resumed;
    uint64_t personal_offset;
    const char *personal_epoch;
    size_t personal_epoch_len;
    bool recovered;           /* written only when resumed */
    const struct envelope_group_pos *groups; /* written only when resumed */
    size_t num_groups;
};

/*
 * {"op":"welcome","id":...,"conn":..,"user":..,"session":..,"heartbeat":..,"resumed":..,
 *  "personal":{"offset":..,"epoch":..}[,"recovered":..,"groups":{name:{...},...}]}
 * id may be NULL or NONE (a welcome not answering an auth).
 */
int envelope_encode_welcome(struct buf *out, enum envelope_encoding enc,
                            const struct envelope_id *id, const struct envelope_welcome *wl);

/* The fields of a msg other than data. Strings must be valid UTF-8. */
struct envelope_msg {
    const char *ch;       /* group name, "@" personal, "*" broadcast */
    size_t ch_len;
    bool has_off;         /* false for broadcast */
    uint64_t off;
    const char *mid;
    size_t mid_len;
    const char *from;     /* "" for the system */
    size_t from_len;
    uint64_t ts_ms;
    bool sys;             /* adds "sys":true */
};

/*
 * A msg is prefix + data + suffix, so a fan-out builds one frame per target encoding:
 * envelope_encode_msg_prefix() writes {"op":"msg","ch":..,["off":..,]"mid":..,"from":..,
 * "ts":..,["sys":true,]"data": (data comes last); envelope_encode_data() writes the
 * data in the target encoding; envelope_encode_msg_suffix() closes the map ("}" in JSON,
 * nothing in MessagePack). envelope_encode_msg() does all three.
 * Returns 0, WSD_ENOMEM, WSD_EUTF8 (a field string), or WSD_EINVAL (data that does not
 * validate in src).
 */
int envelope_encode_msg_prefix(struct buf *out, enum envelope_encoding enc,
                               const struct envelope_msg *m);
int envelope_encode_msg_suffix(struct buf *out, enum envelope_encoding enc);
int envelope_encode_data(struct buf *out, enum envelope_encoding enc,
                         enum envelope_encoding src, const uint8_t *data, size_t len);
int envelope_encode_msg(struct buf *out, enum envelope_encoding enc,
                        const struct envelope_msg *m, enum envelope_encoding src,
                        const uint8_t *data, size_t len);

#endif
