/* json.c - strict RFC 8259 scanner, string unescaping, numbers, and a string writer. */
#include "proto/json.h"
#include "core/wsd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_SIG_DIGITS 40
#define JSON_EXP_CLAMP 100000

static inline bool json_is_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline bool json_is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

size_t json_skip_ws(const uint8_t *p, size_t len, size_t pos)
{
    while (pos < len && json_is_ws(p[pos]))
        pos++;
    return pos;
}

/*
 * Length of the valid UTF-8 sequence (2..4 bytes) that starts with the non-ASCII byte
 * p[i], or 0 when there is none (RFC 3629 table 3-7 of Unicode).
 */
static size_t json_utf8_seq(const uint8_t *p, size_t len, size_t i)
{
    uint8_t c = p[i];
    size_t n;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (len - i < n)
        return 0;
    if (p[i + 1] < lo || p[i + 1] > hi)
        return 0;
    for (size_t k = 2; k < n; k++) {
        if ((p[i + k] & 0xC0) != 0x80)
            return 0;
    }
    return n;
}

bool json_utf8_is_valid(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = json_utf8_seq(p, len, i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

static int json_hex(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads 4 hex digits at p[i]; returns the value or -1. */
static long json_hex4(const uint8_t *p, size_t len, size_t i)
{
    if (i > len || len - i < 4)
        return -1;
    long v = 0;
    for (size_t k = 0; k < 4; k++) {
        int h = json_hex(p[i + k]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

static size_t json_cp_utf8_len(uint32_t cp)
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/*
 * Validates the \u escape at p[*i] (pointing at the 'u'), joining a surrogate pair.
 * Stores the code point; advances *i past the escape(s). Returns 0 or WSD_EINVAL.
 */
static int json_scan_u_escape(const uint8_t *p, size_t len, size_t *i, uint32_t *cp)
{
    long hi = json_hex4(p, len, *i + 1);
    if (hi < 0)
        return WSD_EINVAL;
    *i += 5;
    if (hi >= 0xDC00 && hi <= 0xDFFF)
        return WSD_EINVAL; /* a low surrogate alone */
    if (hi < 0xD800 || hi > 0xDBFF) {
        *cp = (uint32_t)hi;
        return 0;
    }
    if (len - *i < 6 || p[*i] != '\\' || p[*i + 1] != 'u')
        return WSD_EINVAL; /* a high surrogate alone */
    long lo = json_hex4(p, len, *i + 2);
    if (lo < 0xDC00 || lo > 0xDFFF)
        return WSD_EINVAL;
    *i += 6;
    *cp = 0x10000 + (((uint32_t)hi - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
    return 0;
}

/* Validates the escape whose backslash is at p[*i]; adds its decoded length to *dlen. */
static int json_scan_escape(const uint8_t *p, size_t len, size_t *i, size_t *dlen)
{
    if (*i + 1 >= len)
        return WSD_EINVAL;
    uint8_t e = p[*i + 1];
    if (e == 'u') {
        uint32_t cp;
        *i += 1;
        if (json_scan_u_escape(p, len, i, &cp) < 0)
            return WSD_EINVAL;
        *dlen += json_cp_utf8_len(cp);
        return 0;
    }
    if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' &&
        e != 't')
        return WSD_EINVAL;
    *i += 2;
    *dlen += 1;
    return 0;
}

/* Scans a string whose opening quote is at p[*pos]. */
static int json_scan_string(const uint8_t *p, size_t len, size_t *pos, struct json_value *v)
{
    size_t i = *pos + 1;
    size_t dlen = 0;
    uint32_t flags = 0;
    for (;;) {
        size_t run = i;
        while (i < len && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\')
            i++;
        dlen += i - run;
        if (i >= len)
            return WSD_EINVAL;
        uint8_t c = p[i];
        if (c == '"')
            break;
        if (c < 0x20)
            return WSD_EINVAL;
        if (c == '\\') {
            flags |= JSON_F_ESCAPED;
            if (json_scan_escape(p, len, &i, &dlen) < 0)
                return WSD_EINVAL;
            continue;
        }
        size_t n = json_utf8_seq(p, len, i);
        if (n == 0)
            return WSD_EINVAL;
        i += n;
        dlen += n;
    }
    v->p = p + *pos;
    v->len = i + 1 - *pos;
    v->type = JSON_STRING;
    v->flags = flags;
    v->str_len = dlen;
    *pos = i + 1;
    return 0;
}

/* Scans digits from p[*i]; returns how many. */
static size_t json_digits(const uint8_t *p, size_t len, size_t *i)
{
    size_t start = *i;
    while (*i < len && json_is_digit(p[*i]))
        (*i)++;
    return *i - start;
}

static int json_scan_number(const uint8_t *p, size_t len, size_t *pos, struct json_value *v)
{
    size_t i = *pos;
    uint32_t flags = JSON_F_INT;
    if (p[i] == '-') {
        flags |= JSON_F_NEG;
        i++;
    }
    if (i >= len || !json_is_digit(p[i]))
        return WSD_EINVAL;
    size_t int_digits = 1;
    if (p[i] == '0')
        i++;
    else
        int_digits = json_digits(p, len, &i);
    if (i < len && json_is_digit(p[i]))
        return WSD_EINVAL; /* leading zero */
    if (i < len && p[i] == '.') {
        i++;
        flags &= ~JSON_F_INT;
        if (json_digits(p, len, &i) == 0)
            return WSD_EINVAL;
    }
    if (i < len && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        flags &= ~JSON_F_INT;
        flags |= JSON_F_BIG;
        if (i < len && (p[i] == '+' || p[i] == '-'))
            i++;
        if (json_digits(p, len, &i) == 0)
            return WSD_EINVAL;
    }
    if (int_digits > 308)
        flags |= JSON_F_BIG;
    v->p = p + *pos;
    v->len = i - *pos;
    v->type = JSON_NUMBER;
    v->flags = flags;
    v->str_len = 0;
    *pos = i;
    return 0;
}

static int json_scan_literal(const uint8_t *p, size_t len, size_t *pos, const char *lit,
                             enum json_type type, struct json_value *v)
{
    size_t n = strlen(lit);
    if (len - *pos < n || memcmp(p + *pos, lit, n) != 0)
        return WSD_EINVAL;
    v->p = p + *pos;
    v->len = n;
    v->type = type;
    v->flags = 0;
    v->str_len = 0;
    *pos += n;
    return 0;
}

static int json_scan_container(const uint8_t *p, size_t len, size_t *pos, unsigned depth,
                               struct json_value *v)
{
    if (depth + 1 > JSON_MAX_DEPTH)
        return WSD_EINVAL;
    v->p = p + *pos;
    v->len = 1;
    v->type = p[*pos] == '{' ? JSON_OBJECT : JSON_ARRAY;
    v->flags = 0;
    v->str_len = 0;
    struct json_iter it;
    json_iter_init(&it, p, len, v, depth + 1);
    struct json_value key, val;
    int rc;
    while ((rc = json_iter_next(&it, &key, &val)) == 1)
        v->flags |= val.flags & JSON_F_BIG;
    if (rc < 0)
        return rc;
    v->len = it.pos - *pos;
    *pos = it.pos;
    return 0;
}

int json_scan(const uint8_t *p, size_t len, size_t *pos, unsigned depth, struct json_value *v)
{
    *pos = json_skip_ws(p, len, *pos);
    if (*pos >= len)
        return WSD_EINVAL;
    switch (p[*pos]) {
    case '"':
        return json_scan_string(p, len, pos, v);
    case '{':
    case '[':
        return json_scan_container(p, len, pos, depth, v);
    case 't':
        return json_scan_literal(p, len, pos, "true", JSON_TRUE, v);
    case 'f':
        return json_scan_literal(p, len, pos, "false", JSON_FALSE, v);
    case 'n':
        return json_scan_literal(p, len, pos, "null", JSON_NULL, v);
    default:
        if (p[*pos] == '-' || json_is_digit(p[*pos]))
            return json_scan_number(p, len, pos, v);
        return WSD_EINVAL;
    }
}

int json_validate(const uint8_t *p, size_t len, struct json_value *v)
{
    struct json_value tmp;
    size_t pos = 0;
    if (v == NULL)
        v = &tmp;
    if (json_scan(p, len, &pos, 0, v) < 0)
        return WSD_EINVAL;
    if (json_skip_ws(p, len, pos) != len)
        return WSD_EINVAL;
    return 0;
}

void json_iter_init(struct json_iter *it, const uint8_t *buf, size_t len,
                    const struct json_value *v, unsigned depth)
{
    it->p = buf;
    it->len = len;
    it->pos = (size_t)(v->p - buf) + 1;
    it->depth = depth;
    it->object = v->type == JSON_OBJECT;
    it->started = false;
    it->done = false;
}

/* Reads `"key" :` of an object member at it->pos. */
static int json_iter_key(struct json_iter *it, struct json_value *key)
{
    struct json_value tmp;
    if (key == NULL)
        key = &tmp;
    if (it->pos >= it->len || it->p[it->pos] != '"')
        return WSD_EINVAL;
    if (json_scan_string(it->p, it->len, &it->pos, key) < 0)
        return WSD_EINVAL;
    it->pos = json_skip_ws(it->p, it->len, it->pos);
    if (it->pos >= it->len || it->p[it->pos] != ':')
        return WSD_EINVAL;
    it->pos++;
    return 0;
}

int json_iter_next(struct json_iter *it, struct json_value *key, struct json_value *val)
{
    if (it->done)
        return 0;
    it->pos = json_skip_ws(it->p, it->len, it->pos);
    if (it->pos >= it->len)
        return WSD_EINVAL;
    uint8_t close = it->object ? '}' : ']';
    if (it->p[it->pos] == close) {
        it->pos++;
        it->done = true;
        return 0;
    }
    if (it->started) {
        if (it->p[it->pos] != ',')
            return WSD_EINVAL;
        it->pos = json_skip_ws(it->p, it->len, it->pos + 1);
    }
    if (it->object && json_iter_key(it, key) < 0)
        return WSD_EINVAL;
    if (json_scan(it->p, it->len, &it->pos, it->depth, val) < 0)
        return WSD_EINVAL;
    it->started = true;
    return 1;
}

/* Encodes cp as UTF-8 into out (room for 4); returns the length. */
static size_t json_put_utf8(uint8_t *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/*
 * Decodes the escape at raw[*i] (a backslash) of validated content into out (room for
 * 4 bytes); advances *i; returns the number of bytes produced.
 */
static size_t json_decode_escape(const uint8_t *raw, size_t raw_len, size_t *i, uint8_t *out)
{
    uint8_t e = raw[*i + 1];
    if (e == 'u') {
        uint32_t cp = 0xFFFD;
        *i += 1;
        if (json_scan_u_escape(raw, raw_len, i, &cp) < 0)
            *i = raw_len; /* not validated input: stop */
        return json_put_utf8(out, cp);
    }
    *i += 2;
    switch (e) {
    case 'b': out[0] = '\b'; break;
    case 'f': out[0] = '\f'; break;
    case 'n': out[0] = '\n'; break;
    case 'r': out[0] = '\r'; break;
    case 't': out[0] = '\t'; break;
    default: out[0] = e; break;
    }
    return 1;
}

long json_unescape(const uint8_t *raw, size_t raw_len, uint8_t *out, size_t cap)
{
    size_t i = 0, o = 0;
    while (i < raw_len) {
        const uint8_t *bs = memchr(raw + i, '\\', raw_len - i);
        size_t run = bs ? (size_t)(bs - raw) - i : raw_len - i;
        if (run > cap - o)
            return WSD_ETOOBIG;
        memmove(out + o, raw + i, run);
        o += run;
        i += run;
        if (i >= raw_len)
            break;
        if (i + 1 >= raw_len)
            return WSD_EINVAL;
        uint8_t tmp[4];
        size_t n = json_decode_escape(raw, raw_len, &i, tmp);
        if (n > cap - o)
            return WSD_ETOOBIG;
        memcpy(out + o, tmp, n);
        o += n;
    }
    return (long)o;
}

long json_string_decode(const struct json_value *v, uint8_t *out, size_t cap)
{
    if (v->type != JSON_STRING || v->len < 2)
        return WSD_EINVAL;
    return json_unescape(v->p + 1, v->len - 2, out, cap);
}

/* Next decoded byte-chunk of validated content: up to 4 bytes of one character. */
static size_t json_next_chunk(const uint8_t *raw, size_t raw_len, size_t *i, uint8_t *out)
{
    if (raw[*i] == '\\' && *i + 1 < raw_len)
        return json_decode_escape(raw, raw_len, i, out);
    out[0] = raw[(*i)++];
    return 1;
}

bool json_str_equal_lit(const uint8_t *raw, size_t raw_len, bool escaped, const char *lit,
                        size_t lit_len)
{
    if (!escaped)
        return raw_len == lit_len && memcmp(raw, lit, lit_len) == 0;
    size_t i = 0, o = 0;
    while (i < raw_len) {
        uint8_t tmp[4];
        size_t n = json_next_chunk(raw, raw_len, &i, tmp);
        if (n > lit_len - o || memcmp(tmp, lit + o, n) != 0)
            return false;
        o += n;
    }
    return o == lit_len;
}

/* Decoded bytes of validated string content, one at a time. */
struct json_bytes {
    const uint8_t *raw;
    size_t len;
    size_t i;
    uint8_t tmp[4];
    size_t tmp_len;
    size_t tmp_pos;
};

/* The next decoded byte, or -1 at the end. */
static int json_bytes_next(struct json_bytes *r)
{
    if (r->tmp_pos == r->tmp_len) {
        if (r->i >= r->len)
            return -1;
        r->tmp_len = json_next_chunk(r->raw, r->len, &r->i, r->tmp);
        r->tmp_pos = 0;
    }
    return r->tmp[r->tmp_pos++];
}

bool json_str_equal(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    struct json_bytes ra = {.raw = a, .len = a_len};
    struct json_bytes rb = {.raw = b, .len = b_len};
    for (;;) {
        int ca = json_bytes_next(&ra);
        int cb = json_bytes_next(&rb);
        if (ca != cb)
            return false;
        if (ca < 0)
            return true;
    }
}

int json_number_u64(const struct json_value *v, uint64_t *out)
{
    if (v->type != JSON_NUMBER || !(v->flags & JSON_F_INT))
        return WSD_EINVAL;
    size_t i = 0;
    if (v->flags & JSON_F_NEG) {
        if (v->len != 2 || v->p[1] != '0')
            return WSD_EINVAL; /* only -0 */
        *out = 0;
        return 0;
    }
    uint64_t r = 0;
    for (; i < v->len; i++) {
        uint64_t d = (uint64_t)(v->p[i] - '0');
        if (r > (UINT64_MAX - d) / 10)
            return WSD_EINVAL;
        r = r * 10 + d;
    }
    *out = r;
    return 0;
}

int json_number_i64(const struct json_value *v, int64_t *out)
{
    if (v->type != JSON_NUMBER || !(v->flags & JSON_F_INT))
        return WSD_EINVAL;
    bool neg = v->flags & JSON_F_NEG;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t r = 0;
    for (size_t i = neg ? 1 : 0; i < v->len; i++) {
        uint64_t d = (uint64_t)(v->p[i] - '0');
        if (r > (limit - d) / 10)
            return WSD_EINVAL;
        r = r * 10 + d;
    }
    if (neg)
        *out = r == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)r;
    else
        *out = (int64_t)r;
    return 0;
}

/* Reads the exponent part at p[i..len) (after 'e'), saturating. */
static long json_exp_value(const uint8_t *p, size_t len, size_t i)
{
    bool neg = false;
    if (i < len && (p[i] == '+' || p[i] == '-'))
        neg = p[i++] == '-';
    long e = 0;
    for (; i < len; i++) {
        if (e < JSON_EXP_CLAMP)
            e = e * 10 + (p[i] - '0');
    }
    return neg ? -e : e;
}

/* Significant digits of a number into digits[], and the decimal exponent of 0.DIGITS. */
static size_t json_mantissa(const struct json_value *v, char *digits, long *dexp, size_t *end)
{
    size_t i = (v->flags & JSON_F_NEG) ? 1 : 0;
    size_t n = 0;
    long e = 0;
    bool in_frac = false;
    for (; i < v->len; i++) {
        uint8_t c = v->p[i];
        if (c == '.') {
            in_frac = true;
            continue;
        }
        if (!json_is_digit(c))
            break;
        if (n == 0 && c == '0') {
            if (in_frac)
                e--;
            continue;
        }
        if (!in_frac)
            e++;
        if (n < JSON_MAX_SIG_DIGITS)
            digits[n++] = (char)c;
    }
    *dexp = e;
    *end = i;
    return n;
}

int json_number_double(const struct json_value *v, double *out)
{
    if (v->type != JSON_NUMBER)
        return WSD_EINVAL;
    char digits[JSON_MAX_SIG_DIGITS];
    long dexp;
    size_t end;
    size_t n = json_mantissa(v, digits, &dexp, &end);
    bool neg = v->flags & JSON_F_NEG;
    if (n == 0) {
        *out = neg ? -0.0 : 0.0;
        return 0;
    }
    if (end < v->len)
        dexp += json_exp_value(v->p, v->len, end + 1);
    if (dexp > JSON_EXP_CLAMP)
        dexp = JSON_EXP_CLAMP;
    if (dexp < -JSON_EXP_CLAMP)
        dexp = -JSON_EXP_CLAMP;
    char text[JSON_MAX_SIG_DIGITS + 32];
    snprintf(text, sizeof(text), "%s0.%.*se%ld", neg ? "-" : "", (int)n, digits, dexp);
    *out = strtod(text, NULL);
    return 0;
}

/* Appends the JSON escape of control or special byte c. */
static int json_write_escape(struct buf *out, uint8_t c)
{
    char tmp[8];
    const char *s = NULL;
    switch (c) {
    case '"': s = "\\\""; break;
    case '\\': s = "\\\\"; break;
    case '\b': s = "\\b"; break;
    case '\f': s = "\\f"; break;
    case '\n': s = "\\n"; break;
    case '\r': s = "\\r"; break;
    case '\t': s = "\\t"; break;
    default:
        snprintf(tmp, sizeof(tmp), "\\u%04x", c);
        s = tmp;
        break;
    }
    return buf_append(out, s, strlen(s));
}

int json_write_string(struct buf *out, const void *str, size_t len)
{
    const uint8_t *p = str;
    if (!json_utf8_is_valid(p, len))
        return WSD_EUTF8;
    if (buf_reserve(out, len + 2) < 0)
        return WSD_ENOMEM;
    out->data[out->len++] = '"';
    size_t i = 0;
    while (i < len) {
        size_t run = i;
        while (i < len && p[i] >= 0x20 && p[i] != '"' && p[i] != '\\')
            i++;
        if (buf_append(out, p + run, i - run) < 0)
            return WSD_ENOMEM;
        if (i < len && json_write_escape(out, p[i++]) < 0)
            return WSD_ENOMEM;
    }
    return buf_append(out, "\"", 1);
}

/* Appends text, adding ".0" when it would read as an integer. */
static int json_write_number_text(struct buf *out, const char *text)
{
    if (buf_append(out, text, strlen(text)) < 0)
        return WSD_ENOMEM;
    if (strpbrk(text, ".eE") == NULL)
        return buf_append(out, ".0", 2);
    return 0;
}

int json_write_double(struct buf *out, double d)
{
    if (!isfinite(d))
        return WSD_EINVAL;
    char text[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(text, sizeof(text), "%.*g", prec, d);
        if (strtod(text, NULL) == d)
            break;
    }
    return json_write_number_text(out, text);
}

int json_write_float(struct buf *out, float f)
{
    if (!isfinite(f))
        return WSD_EINVAL;
    char text[40];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(text, sizeof(text), "%.*g", prec, (double)f);
        if (strtof(text, NULL) == f)
            break;
    }
    return json_write_number_text(out, text);
}
