/*
 * json.h - a strict RFC 8259 scanner that never allocates.
 *
 * It validates and returns views (pointer + length) into the caller's buffer: UTF-8 is
 * checked everywhere (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF);
 * no trailing commas, leading zeros, NaN/Infinity, comments or single quotes; control
 * characters in strings are rejected; escapes are checked, \u surrogates must come in
 * high-low pairs; nesting is limited to JSON_MAX_DEPTH. Whitespace is the four RFC
 * characters only. Duplicate keys are the caller's business (see json_str_equal()).
 *
 * A value is scanned with json_scan() (nested values validated and skipped), a
 * container is walked member by member with a struct json_iter, so a caller can record
 * the exact byte span of each value it cares about without a tree.
 */
#ifndef WSD_PROTO_JSON_H
#define WSD_PROTO_JSON_H

#include "core/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 64

enum json_type {
    JSON_NONE = 0, /* no value (end of a container, or absent) */
    JSON_NULL,
    JSON_FALSE,
    JSON_TRUE,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
};

/* json_value.flags */
#define JSON_F_ESCAPED 0x1u /* STRING: holds at least one backslash escape */
#define JSON_F_INT 0x2u     /* NUMBER: no fraction and no exponent */
#define JSON_F_NEG 0x4u     /* NUMBER: starts with '-' */
#define JSON_F_BIG 0x8u     /* NUMBER: has an exponent or over 308 integer digits, so its
                               magnitude may be beyond a double's range;
                               ARRAY, OBJECT: some number inside has it */

/* A view of one value in the caller's buffer. */
struct json_value {
    const uint8_t *p;    /* first byte of the value (the opening quote of a string) */
    size_t len;          /* bytes through the last one (the closing quote) */
    enum json_type type;
    uint32_t flags;      /* JSON_F_* */
    size_t str_len;      /* STRING: length in bytes once unescaped */
};

/* A walk over the members of an object or the elements of an array. */
struct json_iter {
    const uint8_t *p;  /* the whole buffer */
    size_t len;
    size_t pos;        /* next byte to read */
    unsigned depth;    /* nesting depth of the container (top level = 1) */
    bool object;
    bool started;      /* a member was returned */
    bool done;
};

/*
 * Scans one value starting at p[*pos] after optional whitespace, validating everything
 * nested in it; depth is the nesting depth of the value's container (0 at the top
 * level). On success fills v, moves *pos past the value (not past trailing whitespace)
 * and returns 0. Returns WSD_EINVAL for malformed JSON or nesting deeper than
 * JSON_MAX_DEPTH; *pos is then unspecified.
 */
int json_scan(const uint8_t *p, size_t len, size_t *pos, unsigned depth, struct json_value *v);

/*
 * Validates that p[0..len) is exactly one JSON text (a value with optional surrounding
 * whitespace). Fills v when it is not NULL. Returns 0 or WSD_EINVAL.
 */
int json_validate(const uint8_t *p, size_t len, struct json_value *v);

/*
 * Starts a walk over the members of the object or array v found in buf[0..len) (v must
 * point into that buffer), at nesting depth depth (the container's own depth, 1 for
 * the top level). The container's contents are validated as the walk goes.
 */
void json_iter_init(struct json_iter *it, const uint8_t *buf, size_t len,
                    const struct json_value *v, unsigned depth);

/*
 * Returns the next member: 1 with *key (objects only; may be NULL for arrays) and *val
 * filled; 0 at the closing bracket (it->pos is then just past it); WSD_EINVAL for
 * malformed input (missing or trailing comma, missing colon, bad value).
 */
int json_iter_next(struct json_iter *it, struct json_value *key, struct json_value *val);

/* Skips JSON whitespace from p[pos]; returns the first position that is not. */
size_t json_skip_ws(const uint8_t *p, size_t len, size_t pos);

/*
 * Unescapes the content of a scanned string (raw = v->p + 1, raw_len = v->len - 2) into
 * out[0..cap). \u escapes become UTF-8 (pairs joined). out may alias raw at the same or a
 * lower address (unescaping in place). Returns the decoded length or WSD_ETOOBIG when it
 * does not fit (out is then partly written). The input must have been validated.
 */
long json_unescape(const uint8_t *raw, size_t raw_len, uint8_t *out, size_t cap);

/* Unescapes string value v into out; same returns as json_unescape(). */
long json_string_decode(const struct json_value *v, uint8_t *out, size_t cap);

/*
 * True when the validated string content raw[0..raw_len) (escaped or not) decodes to
 * exactly lit[0..lit_len).
 */
bool json_str_equal_lit(const uint8_t *raw, size_t raw_len, bool escaped, const char *lit,
                        size_t lit_len);

/* True when two validated string contents decode to the same bytes. */
bool json_str_equal(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len);

/*
 * Integer value of a scanned number. Returns 0, or WSD_EINVAL when v is not a number
 * without fraction and exponent, or is out of range (negative for the unsigned form).
 */
int json_number_u64(const struct json_value *v, uint64_t *out);
int json_number_i64(const struct json_value *v, int64_t *out);

/*
 * Nearest double to a scanned number (correctly rounded for up to 40 significant
 * digits; later digits are dropped). Overflow gives +-HUGE_VAL, underflow 0.
 * Returns 0, or WSD_EINVAL when v is not a number.
 */
int json_number_double(const struct json_value *v, double *out);

/* True when p[0..len) is valid UTF-8 (RFC 3629). */
bool json_utf8_is_valid(const uint8_t *p, size_t len);

/*
 * Appends p[0..len) as a JSON string: quoted, '"' '\\' and control characters escaped
 * (\b \f \n \r \t, else \u00XX), everything else verbatim. Returns 0, WSD_EUTF8 when
 * p is not valid UTF-8 (nothing appended), or WSD_ENOMEM (out may hold part of it).
 */
int json_write_string(struct buf *out, const void *p, size_t len);

/*
 * Appends a double as a JSON number: the shortest of %.15g..%.17g that reads back to
 * the same value, with ".0" added when that looks like an integer. Returns 0,
 * WSD_EINVAL for NaN and infinities (not representable in JSON), or WSD_ENOMEM.
 */
int json_write_double(struct buf *out, double d);

/* The same for a float (shortest of %.6g..%.9g that reads back as the same float). */
int json_write_float(struct buf *out, float f);

#endif
