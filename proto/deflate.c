/*
 * deflate.c - permessage-deflate (RFC 7692): the Sec-WebSocket-Extensions parser and offer
 * negotiation, and bounded per-message inflate and deflate over raw zlib streams.
 *
 * The extension list grammar is RFC 6455 section 9.1 with the list rule of RFC 7230
 * section 7 (empty elements are skipped) and optional whitespace around every separator:
 *
 *   extension-list = 1#extension
 *   extension      = token *( OWS ";" OWS token [ OWS "=" OWS ( token / quoted-string ) ] )
 *
 * Names are matched exactly (RFC 7692 spells them in lower case). A quoted value whose
 * unescaped text is not a token is no error of syntax: it makes a permessage-deflate offer
 * unacceptable and is ignored in other extensions.
 *
 * Window policy. The server compresses with min(offered server_max_window_bits,
 * cfg->max_window_bits), announcing it only when the client offered the parameter; an
 * offer of 8 is declined because zlib cannot produce an 8-bit raw DEFLATE window (it uses 9,
 * which a peer inflating with 256 bytes of history could not follow). The same
 * cfg->max_window_bits bounds the client's window when the client offered
 * client_max_window_bits: the answer names min(offered or 15, cfg) when that is 9..14, so
 * the inflater allocates no more history than needed. It never names 8, which zlib-based
 * clients cannot honour (some fail the connection, some compress with 9); the inflater then
 * keeps 15 bits, which reads any smaller window.
 */
#include "proto/deflate.h"
#include "core/wsd.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PMD_NAME "permessage-deflate"
#define PMD_VALUE_CAP 4            /* longest parameter value kept (window bits are 1..2) */
#define PMD_INFLATE_STEP (16u * 1024u) /* output produced per inflate() call, at most */
#define PMD_DEFLATE_STEP (64u * 1024u) /* output room reserved per deflate() call, at most */
#define PMD_ZCHUNK (1u << 30)      /* input per zlib call: avail_in is 32 bits */
#define PMD_MIN_BITS 9             /* smallest raw window zlib really uses */

static const uint8_t pmd_tail[4] = {0x00, 0x00, 0xff, 0xff};

/* ---- extension list parser ---- */

enum pmd_param_id {
    PMD_P_SERVER_NCT,
    PMD_P_CLIENT_NCT,
    PMD_P_SERVER_BITS,
    PMD_P_CLIENT_BITS,
    PMD_P_COUNT,
    PMD_P_UNKNOWN = PMD_P_COUNT,
};

static const char *const pmd_param_names[PMD_P_COUNT] = {
    [PMD_P_SERVER_NCT] = "server_no_context_takeover",
    [PMD_P_CLIENT_NCT] = "client_no_context_takeover",
    [PMD_P_SERVER_BITS] = "server_max_window_bits",
    [PMD_P_CLIENT_BITS] = "client_max_window_bits",
};

struct pmd_cursor {
    const char *p;
    const char *end;
};

/* A parameter value, unescaped; only the first PMD_VALUE_CAP bytes are kept. */
struct pmd_value {
    bool present;
    bool too_long;
    size_t len;
    char text[PMD_VALUE_CAP];
};

/* One offer as parsed so far. bits[] is 0 for a window parameter given without value. */
struct pmd_offer {
    bool is_pmd;
    bool unacceptable;
    bool seen[PMD_P_COUNT];
    int bits[PMD_P_COUNT];
};

static bool pmd_is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool pmd_at_end(const struct pmd_cursor *c)
{
    return c->p == c->end;
}

static bool pmd_peek_is(const struct pmd_cursor *c, char ch)
{
    return c->p < c->end && *c->p == ch;
}

static void pmd_skip_ows(struct pmd_cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

/* Reads a non-empty token. Returns 0 or WSD_EINVAL. */
static int pmd_read_token(struct pmd_cursor *c, const char **tok, size_t *len)
{
    const char *start = c->p;
    while (c->p < c->end && pmd_is_tchar((unsigned char)*c->p))
        c->p++;
    if (c->p == start)
        return WSD_EINVAL;
    *tok = start;
    *len = (size_t)(c->p - start);
    return 0;
}

static void pmd_value_push(struct pmd_value *v, char ch)
{
    if (v->len < PMD_VALUE_CAP)
        v->text[v->len] = ch;
    else
        v->too_long = true;
    v->len++;
}

/* qdtext: HTAB, SP, 0x21, 0x23-0x5B, 0x5D-0x7E, obs-text; quoted-pair adds VCHAR. */
static bool pmd_is_qdtext(unsigned char c)
{
    return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
           (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}

/* Reads a quoted-string (the cursor is on its opening quote) into v, unescaped. */
static int pmd_read_quoted(struct pmd_cursor *c, struct pmd_value *v)
{
    c->p++;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"')
            return 0;
        if (ch == '\\') {
            if (c->p == c->end)
                return WSD_EINVAL;
            ch = (unsigned char)*c->p++;
            if (ch != '\t' && (ch < 0x20 || ch == 0x7f))
                return WSD_EINVAL;
        } else if (!pmd_is_qdtext(ch)) {
            return WSD_EINVAL;
        }
        pmd_value_push(v, (char)ch);
    }
    return WSD_EINVAL;
}

/* Reads a parameter value: a token or a quoted-string. */
static int pmd_read_value(struct pmd_cursor *c, struct pmd_value *v)
{
    v->present = true;
    if (pmd_peek_is(c, '"'))
        return pmd_read_quoted(c, v);
    const char *tok;
    size_t len;
    int rc = pmd_read_token(c, &tok, &len);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < len; i++)
        pmd_value_push(v, tok[i]);
    return 0;
}

/* A window size: decimal 8..15 without leading zeros. Returns it, or -1. */
static int pmd_parse_bits(const struct pmd_value *v)
{
    if (v->too_long || v->len == 0 || v->len > 2 || v->text[0] == '0')
        return -1;
    int bits = 0;
    for (size_t i = 0; i < v->len; i++) {
        if (v->text[i] < '0' || v->text[i] > '9')
            return -1;
        bits = bits * 10 + (v->text[i] - '0');
    }
    return bits >= 8 && bits <= 15 ? bits : -1;
}

static enum pmd_param_id pmd_param_lookup(const char *name, size_t len)
{
    for (int i = 0; i < PMD_P_COUNT; i++) {
        if (strlen(pmd_param_names[i]) == len && memcmp(pmd_param_names[i], name, len) == 0)
            return (enum pmd_param_id)i;
    }
    return PMD_P_UNKNOWN;
}

/* Records one parameter of a permessage-deflate offer (RFC 7692 section 7.1). */
static void pmd_offer_param(struct pmd_offer *o, const char *name, size_t len,
                            const struct pmd_value *v)
{
    enum pmd_param_id id = pmd_param_lookup(name, len);
    if (id == PMD_P_UNKNOWN || o->seen[id]) {
        o->unacceptable = true;
        return;
    }
    o->seen[id] = true;
    switch (id) {
    case PMD_P_SERVER_NCT:
    case PMD_P_CLIENT_NCT:
        if (v->present)
            o->unacceptable = true;
        break;
    case PMD_P_SERVER_BITS:
    case PMD_P_CLIENT_BITS:
        if (!v->present && id == PMD_P_CLIENT_BITS)
            break;
        o->bits[id] = v->present ? pmd_parse_bits(v) : -1;
        if (o->bits[id] < 0)
            o->unacceptable = true;
        break;
    default:
        break;
    }
}

/* Reads "name [= value]" after a ';'. */
static int pmd_read_param(struct pmd_cursor *c, struct pmd_offer *o)
{
    const char *name;
    size_t len;
    struct pmd_value v = {0};
    int rc = pmd_read_token(c, &name, &len);
    if (rc < 0)
        return rc;
    pmd_skip_ows(c);
    if (pmd_peek_is(c, '=')) {
        c->p++;
        pmd_skip_ows(c);
        rc = pmd_read_value(c, &v);
        if (rc < 0)
            return rc;
    }
    if (o->is_pmd)
        pmd_offer_param(o, name, len, &v);
    return 0;
}

/* Reads one non-empty list element: the extension token and its parameters. */
static int pmd_read_extension(struct pmd_cursor *c, struct pmd_offer *o)
{
    const char *name;
    size_t len;
    int rc = pmd_read_token(c, &name, &len);
    if (rc < 0)
        return rc;
    *o = (struct pmd_offer){0};
    o->is_pmd = len == strlen(PMD_NAME) && memcmp(name, PMD_NAME, len) == 0;
    for (;;) {
        pmd_skip_ows(c);
        if (!pmd_peek_is(c, ';'))
            return 0;
        c->p++;
        pmd_skip_ows(c);
        rc = pmd_read_param(c, o);
        if (rc < 0)
            return rc;
    }
}

/* ---- negotiation ---- */

static int pmd_clamp(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Turns an acceptable offer into agreed parameters under cfg; false declines it. */
static bool pmd_offer_accept(const struct pmd_offer *o, const struct pmd_config *cfg,
                             struct pmd_params *out)
{
    int cfg_bits = pmd_clamp(cfg->max_window_bits, PMD_MIN_BITS, 15);
    if (o->unacceptable)
        return false;
    if (o->seen[PMD_P_SERVER_BITS] && o->bits[PMD_P_SERVER_BITS] < PMD_MIN_BITS)
        return false;
    *out = (struct pmd_params){
        .server_no_context_takeover =
            o->seen[PMD_P_SERVER_NCT] || cfg->server_no_context_takeover,
        .client_no_context_takeover =
            o->seen[PMD_P_CLIENT_NCT] || cfg->client_no_context_takeover,
        .server_max_window_bits = cfg_bits,
        .client_max_window_bits = 15,
    };
    if (o->seen[PMD_P_SERVER_BITS]) {
        out->server_max_window_bits = WSD_MIN(o->bits[PMD_P_SERVER_BITS], cfg_bits);
        out->server_max_window_bits_sent = true;
    }
    if (o->seen[PMD_P_CLIENT_BITS]) {
        int offered = o->bits[PMD_P_CLIENT_BITS] ? o->bits[PMD_P_CLIENT_BITS] : 15;
        int bits = WSD_MIN(offered, cfg_bits);
        if (bits >= PMD_MIN_BITS && bits < 15) {
            out->client_max_window_bits = bits;
            out->client_max_window_bits_sent = true;
        }
    }
    return true;
}

/* Parses one header value, taking the first acceptable offer while *accepted is 0. */
static int pmd_negotiate_value(const char *value, size_t len, const struct pmd_config *cfg,
                               struct pmd_params *out, int *accepted)
{
    struct pmd_cursor c = {value, value + len};
    for (;;) {
        pmd_skip_ows(&c);
        if (pmd_at_end(&c))
            return 0;
        if (!pmd_peek_is(&c, ',')) {
            struct pmd_offer o;
            int rc = pmd_read_extension(&c, &o);
            if (rc < 0)
                return rc;
            if (o.is_pmd && !*accepted && pmd_offer_accept(&o, cfg, out))
                *accepted = 1;
            pmd_skip_ows(&c);
            if (pmd_at_end(&c))
                return 0;
            if (!pmd_peek_is(&c, ','))
                return WSD_EINVAL;
        }
        c.p++;
    }
}

int pmd_negotiate(const char *const *values, const size_t *lens, size_t n,
                  const struct pmd_config *cfg, struct pmd_params *out)
{
    struct pmd_params agreed;
    int accepted = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] == 0)
            continue;
        int rc = pmd_negotiate_value(values[i], lens[i], cfg, &agreed, &accepted);
        if (rc < 0)
            return rc;
    }
    if (!accepted || !cfg->enabled)
        return 0;
    *out = agreed;
    return 1;
}

int pmd_response_value(const struct pmd_params *p, char *out, size_t cap)
{
    char sbits[40] = "";
    char cbits[40] = "";
    if (p->server_max_window_bits_sent)
        snprintf(sbits, sizeof(sbits), "; server_max_window_bits=%d",
                 pmd_clamp(p->server_max_window_bits, 8, 15));
    if (p->client_max_window_bits_sent)
        snprintf(cbits, sizeof(cbits), "; client_max_window_bits=%d",
                 pmd_clamp(p->client_max_window_bits, 8, 15));
    int n = snprintf(out, cap, "%s%s%s%s%s", PMD_NAME,
                     p->server_no_context_takeover ? "; server_no_context_takeover" : "",
                     p->client_no_context_takeover ? "; client_no_context_takeover" : "",
                     sbits, cbits);
    if (n < 0 || (size_t)n >= cap)
        return WSD_ETOOBIG;
    return n;
}

/* ---- streams ---- */

void pmd_stream_init(struct pmd_stream *s, const struct pmd_params *p, int level,
                     int mem_level)
{
    memset(s, 0, sizeof(*s));
    s->params = *p;
    s->level = level < 0 ? Z_DEFAULT_COMPRESSION : WSD_MIN(level, 9);
    s->mem_level = pmd_clamp(mem_level, 1, 9);
}

void pmd_stream_fini(struct pmd_stream *s)
{
    if (s->inflate_ready)
        inflateEnd(&s->inflater);
    if (s->deflate_ready)
        deflateEnd(&s->deflater);
    s->inflate_ready = false;
    s->deflate_ready = false;
    s->inflate_ended = false;
    s->msg_len = 0;
}

static int pmd_zerr(int zrc)
{
    return zrc == Z_MEM_ERROR ? WSD_ENOMEM : WSD_EINVAL;
}

static int pmd_inflater_start(struct pmd_stream *s)
{
    if (s->inflate_ready)
        return 0;
    int bits = s->params.client_max_window_bits;
    bits = bits < 8 || bits > 15 ? 15 : WSD_MAX(bits, PMD_MIN_BITS);
    memset(&s->inflater, 0, sizeof(s->inflater));
    int zrc = inflateInit2(&s->inflater, -bits);
    if (zrc != Z_OK)
        return pmd_zerr(zrc);
    s->inflate_ready = true;
    return 0;
}

static int pmd_deflater_start(struct pmd_stream *s)
{
    if (s->deflate_ready)
        return 0;
    int bits = pmd_clamp(s->params.server_max_window_bits, PMD_MIN_BITS, 15);
    memset(&s->deflater, 0, sizeof(s->deflater));
    int zrc = deflateInit2(&s->deflater, s->level, Z_DEFLATED, -bits, s->mem_level,
                           Z_DEFAULT_STRATEGY);
    if (zrc != Z_OK)
        return pmd_zerr(zrc);
    s->deflate_ready = true;
    return 0;
}

static size_t pmd_sat_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/*
 * Makes room for want more bytes in out, growing its capacity geometrically but never past
 * out->len + max_extra (want <= max_extra). buf_reserve() rounds up to a power of two, which
 * could double a buffer that only needs one more step, so this resizes directly, with the
 * same allocator as core/buf.c.
 */
static int pmd_out_room(struct buf *out, size_t want, size_t max_extra)
{
    if (out->cap - out->len >= want)
        return 0;
    size_t cap = pmd_sat_add(out->len, want);
    size_t grown = WSD_MIN(out->cap > SIZE_MAX / 2 ? SIZE_MAX : out->cap * 2,
                           pmd_sat_add(out->len, max_extra));
    cap = WSD_MAX(cap, grown);
    uint8_t *p = realloc(out->data, cap);
    if (p == NULL)
        return WSD_ENOMEM;
    out->data = p;
    out->cap = cap;
    return 0;
}

/*
 * Starts a new raw stream after the peer's ended with a BFINAL block (RFC 7692 7.2.3.4).
 * The history goes with it, as in other implementations (a zlib sender that finishes a
 * stream resets its own); keeping it would copy up to 32 KiB per two-byte empty block.
 */
static int pmd_inflate_restart(struct pmd_stream *s)
{
    s->inflate_ended = false;
    int zrc = inflateReset(&s->inflater);
    return zrc == Z_OK ? 0 : pmd_zerr(zrc);
}

/*
 * Runs inflate() until the pending input is consumed and all output flushed, in steps of
 * at most PMD_INFLATE_STEP bytes, allowing the message limit + 1 bytes in all. *boundary
 * tells whether the data seen so far ends between two DEFLATE blocks. Data that follows
 * the end of a stream starts a new one.
 */
static int pmd_inflate_run(struct pmd_stream *s, struct buf *out, size_t limit,
                           bool *boundary)
{
    z_stream *z = &s->inflater;
    for (;;) {
        if (s->inflate_ended) {
            int rc = z->avail_in > 0 ? pmd_inflate_restart(s) : 0;
            if (rc < 0 || z->avail_in == 0)
                return rc;
        }
        size_t allowed = pmd_sat_add(limit - WSD_MIN(s->msg_len, limit), 1);
        size_t step = WSD_MIN(allowed, (size_t)PMD_INFLATE_STEP);
        int rc = pmd_out_room(out, step, allowed);
        if (rc < 0)
            return rc;
        z->next_out = out->data + out->len;
        z->avail_out = (uInt)step;
        int zrc = inflate(z, Z_SYNC_FLUSH);
        size_t got = step - z->avail_out;
        out->len += got;
        s->msg_len += got;
        if (s->msg_len > limit)
            return WSD_ETOOBIG;
        if (zrc == Z_STREAM_END) {
            s->inflate_ended = true;
            *boundary = true;
            continue;
        }
        if (zrc != Z_OK && zrc != Z_BUF_ERROR)
            return pmd_zerr(zrc);
        if (z->avail_in == 0 && z->avail_out > 0) {
            *boundary = (z->data_type & 128) != 0;
            return 0;
        }
        if (zrc == Z_BUF_ERROR && z->avail_out > 0)
            return WSD_EINVAL; /* no progress with input and room left */
    }
}

static int pmd_inflate_feed(struct pmd_stream *s, const uint8_t *in, size_t len,
                            struct buf *out, size_t limit, bool *boundary)
{
    while (len > 0) {
        size_t n = WSD_MIN(len, (size_t)PMD_ZCHUNK);
        s->inflater.next_in = (Bytef *)in;
        s->inflater.avail_in = (uInt)n;
        int rc = pmd_inflate_run(s, out, limit, boundary);
        if (rc < 0)
            return rc;
        in += n;
        len -= n;
    }
    return 0;
}

/*
 * Ends a message: inflates the 00 00 ff ff tail, which a stream ended by a BFINAL block
 * does not need (the tail would only be trailing garbage), and checks that the message
 * stops between two blocks.
 */
static int pmd_inflate_finish(struct pmd_stream *s, struct buf *out, size_t limit,
                              bool boundary)
{
    if (s->inflate_ended)
        return pmd_inflate_restart(s);
    int rc = pmd_inflate_feed(s, pmd_tail, sizeof(pmd_tail), out, limit, &boundary);
    if (rc == 0 && !boundary)
        rc = WSD_EINVAL; /* the message stops inside a block */
    return rc;
}

int pmd_inflate(struct pmd_stream *s, const uint8_t *in, size_t len, bool fin,
                struct buf *out, size_t limit)
{
    int rc = pmd_inflater_start(s);
    if (rc < 0)
        return rc;
    bool boundary = false;
    rc = pmd_inflate_feed(s, in, len, out, limit, &boundary);
    if (rc == 0 && fin)
        rc = pmd_inflate_finish(s, out, limit, boundary);
    s->inflater.next_in = NULL;
    s->inflater.avail_in = 0;
    s->inflater.next_out = NULL;
    s->inflater.avail_out = 0;
    if (rc < 0 || fin)
        s->msg_len = 0;
    if (rc < 0 || (fin && s->params.client_no_context_takeover)) {
        s->inflate_ended = false;
        inflateReset(&s->inflater);
    }
    return rc;
}

/* Runs deflate() with flush until the pending input is consumed (and flushed). */
static int pmd_deflate_run(z_stream *z, struct buf *out, int flush)
{
    for (;;) {
        size_t want = WSD_MIN((size_t)deflateBound(z, z->avail_in) + 16,
                              (size_t)PMD_DEFLATE_STEP);
        int rc = buf_reserve(out, want);
        if (rc < 0)
            return rc;
        size_t room = WSD_MIN(out->cap - out->len, (size_t)UINT_MAX);
        z->next_out = out->data + out->len;
        z->avail_out = (uInt)room;
        int zrc = deflate(z, flush);
        out->len += room - z->avail_out;
        if (zrc != Z_OK && zrc != Z_BUF_ERROR)
            return pmd_zerr(zrc);
        if (z->avail_in == 0 && z->avail_out > 0)
            return 0;
    }
}

/* Removes the sync flush's 00 00 ff ff; a message that produced nothing becomes 0x00. */
static int pmd_deflate_trim(struct buf *out, size_t start)
{
    size_t n = out->len - start;
    if (n == 0)
        return buf_append(out, pmd_tail, 1);
    WSD_BUG_ON(n < sizeof(pmd_tail) ||
               memcmp(out->data + out->len - sizeof(pmd_tail), pmd_tail, sizeof(pmd_tail)));
    out->len -= sizeof(pmd_tail);
    return 0;
}

int pmd_deflate(struct pmd_stream *s, const uint8_t *in, size_t len, struct buf *out)
{
    int rc = pmd_deflater_start(s);
    if (rc < 0)
        return rc;
    static const uint8_t nothing[1];
    z_stream *z = &s->deflater;
    size_t start = out->len;
    if (len == 0)
        in = nothing; /* zlib wants a pointer even for no input */
    do {
        size_t n = WSD_MIN(len, (size_t)PMD_ZCHUNK);
        z->next_in = (Bytef *)in;
        z->avail_in = (uInt)n;
        rc = pmd_deflate_run(z, out, n == len ? Z_SYNC_FLUSH : Z_NO_FLUSH);
        in += n;
        len -= n;
    } while (rc == 0 && len > 0);
    if (rc == 0)
        rc = pmd_deflate_trim(out, start);
    z->next_in = NULL;
    z->next_out = NULL;
    z->avail_out = 0;
    if (rc < 0)
        out->len = start;
    if (rc < 0 || s->params.server_no_context_takeover)
        deflateReset(z);
    return rc;
}
