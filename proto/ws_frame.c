/*
 * ws_frame.c - RFC 6455 section 5 frame reader (server side) and header encoder.
 *
 * The reader is a byte-stream state machine with one function per state:
 *
 *   B0 -> B1 -> [LEN (2 or 8 bytes)] -> [MASK (4 bytes)] -> DATA | CTL -> B0
 *
 * Each check runs at the byte that makes it decidable (opcode and reserved bits at the
 * first header byte, mask and control length at the second, minimal length encoding and
 * max_message_size when the length is complete), so an error lands on the same stream
 * position however the input is split, and always before any payload is accepted.
 */
#include "proto/ws_frame.h"

#include "core/wsd.h"

#include <assert.h>
#include <string.h>

enum {
    WS_RD_B0 = 0, /* first header byte: FIN, RSV, opcode */
    WS_RD_B1,     /* second header byte: MASK, 7-bit length */
    WS_RD_LEN,    /* 16- or 64-bit extended length */
    WS_RD_MASK,   /* masking key */
    WS_RD_DATA,   /* data frame payload, handed out in place */
    WS_RD_CTL,    /* control frame payload, gathered into r->ctl */
    WS_RD_FAILED,
};

#define WS_CTL_MAX 125

static bool ws_is_control(uint8_t opcode)
{
    return (opcode & 0x8) != 0;
}

static bool ws_is_known_opcode(uint8_t opcode)
{
    switch (opcode) {
    case WS_OP_CONT:
    case WS_OP_TEXT:
    case WS_OP_BINARY:
    case WS_OP_CLOSE:
    case WS_OP_PING:
    case WS_OP_PONG:
        return true;
    default:
        return false;
    }
}

/* Marks the reader failed and reports the error in ev. Returns consumed, for chaining. */
static size_t ws_fail(struct ws_reader *r, struct ws_event *ev, uint16_t code, const char *why,
                      size_t consumed)
{
    r->failed = true;
    r->state = WS_RD_FAILED;
    r->fail_code = code;
    r->fail_error = why;
    ev->type = WS_EV_ERROR;
    ev->close_code = code;
    ev->error = why;
    return consumed;
}

void ws_reader_init(struct ws_reader *r, uint64_t max_message_size, bool allow_rsv1,
                    bool require_mask)
{
    memset(r, 0, sizeof(*r));
    r->max_message_size = max_message_size;
    r->allow_rsv1 = allow_rsv1;
    r->require_mask = require_mask;
    r->state = WS_RD_B0;
    utf8_init(&r->utf8);
}

bool ws_reader_is_idle(const struct ws_reader *r)
{
    return r->state == WS_RD_B0 && !r->in_message && !r->failed;
}

/* True for an uncompressed text message, whose UTF-8 the reader validates. */
static bool ws_checks_utf8(const struct ws_reader *r)
{
    return r->msg_opcode == WS_OP_TEXT && !r->msg_compressed;
}

static void ws_emit_data(struct ws_reader *r, struct ws_event *ev, const uint8_t *p, size_t n,
                         bool last)
{
    ev->type = WS_EV_DATA;
    ev->opcode = r->msg_opcode;
    ev->compressed = r->msg_compressed;
    ev->first = r->msg_first_pending;
    ev->fin = last;
    ev->data = p;
    ev->len = n;
    r->msg_first_pending = false;
}

/* Checks the first header byte against the open message. Returns an error or NULL. */
static const char *ws_check_b0(const struct ws_reader *r, uint8_t b0)
{
    uint8_t opcode = b0 & 0x0F;
    bool fin = (b0 & 0x80) != 0;
    bool rsv1 = (b0 & 0x40) != 0;

    if (b0 & 0x30)
        return "reserved bit rsv2/rsv3 set";
    if (!ws_is_known_opcode(opcode))
        return "reserved opcode";
    if (ws_is_control(opcode)) {
        if (!fin)
            return "fragmented control frame";
        return rsv1 ? "rsv1 set on a control frame" : NULL;
    }
    if (opcode == WS_OP_CONT) {
        if (!r->in_message)
            return "continuation frame without a message";
        return rsv1 ? "rsv1 set on a continuation frame" : NULL;
    }
    if (r->in_message)
        return "new data message inside a fragmented message";
    if (rsv1 && !r->allow_rsv1)
        return "rsv1 set without permessage-deflate";
    return NULL;
}

static size_t ws_step_b0(struct ws_reader *r, struct ws_event *ev, uint8_t b0)
{
    const char *why = ws_check_b0(r, b0);

    if (why != NULL)
        return ws_fail(r, ev, WS_CLOSE_PROTOCOL, why, 1);
    r->frame_fin = (b0 & 0x80) != 0;
    r->frame_rsv1 = (b0 & 0x40) != 0;
    r->frame_opcode = b0 & 0x0F;
    r->hdr[0] = b0;
    r->hdr_have = 1;
    r->state = WS_RD_B1;
    return 1;
}

/* Starts the payload of a frame whose header is complete; p is where the payload begins. */
static void ws_begin_payload(struct ws_reader *r, struct ws_event *ev, const uint8_t *p);

/* Checks a data frame's declared length against max_message_size. */
static bool ws_length_fits(const struct ws_reader *r, uint64_t len)
{
    uint64_t max = r->max_message_size;
    uint64_t have = r->frame_opcode == WS_OP_CONT ? r->msg_len : 0;

    if (max == 0 || ws_is_control(r->frame_opcode))
        return true;
    return len <= max && have <= max - len;
}

/* The frame length is known: enforce the size limit, then go on to the mask or payload. */
static size_t ws_length_done(struct ws_reader *r, struct ws_event *ev, uint8_t *p, size_t used)
{
    if (!ws_length_fits(r, r->frame_left))
        return ws_fail(r, ev, WS_CLOSE_TOO_BIG, "message too big", used);
    if (r->masked) {
        r->hdr_need = r->hdr_have + 4;
        r->state = WS_RD_MASK;
        return used;
    }
    ws_begin_payload(r, ev, p + used);
    return used;
}

static size_t ws_step_b1(struct ws_reader *r, struct ws_event *ev, uint8_t *p)
{
    uint8_t b1 = p[0];
    uint8_t len7 = b1 & 0x7F;

    r->hdr[1] = b1;
    r->hdr_have = 2;
    r->masked = (b1 & 0x80) != 0;
    if (r->require_mask && !r->masked)
        return ws_fail(r, ev, WS_CLOSE_PROTOCOL, "unmasked client frame", 1);
    if (ws_is_control(r->frame_opcode)) {
        if (len7 > WS_CTL_MAX)
            return ws_fail(r, ev, WS_CLOSE_PROTOCOL, "control frame over 125 bytes", 1);
        if (r->frame_opcode == WS_OP_CLOSE && len7 == 1)
            return ws_fail(r, ev, WS_CLOSE_PROTOCOL, "close payload of 1 byte", 1);
    }
    if (len7 < 126) {
        r->frame_left = len7;
        return ws_length_done(r, ev, p, 1);
    }
    r->hdr_need = len7 == 126 ? 4 : 10;
    r->state = WS_RD_LEN;
    return 1;
}

/* Copies header bytes into r->hdr until hdr_need; returns how many were taken. */
static size_t ws_gather(struct ws_reader *r, const uint8_t *p, size_t avail)
{
    size_t n = WSD_MIN(avail, (size_t)(r->hdr_need - r->hdr_have));

    memcpy(r->hdr + r->hdr_have, p, n);
    r->hdr_have = (uint8_t)(r->hdr_have + n);
    return n;
}

static uint64_t ws_load_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static size_t ws_step_len(struct ws_reader *r, struct ws_event *ev, uint8_t *p, size_t avail)
{
    size_t used = ws_gather(r, p, avail);
    uint64_t len;

    if (r->hdr_have < r->hdr_need)
        return used;
    len = ws_load_be(r->hdr + 2, (size_t)r->hdr_need - 2);
    if (r->hdr_need == 4 && len < 126)
        return ws_fail(r, ev, WS_CLOSE_PROTOCOL, "non-minimal 16-bit length", used);
    if (r->hdr_need == 10 && (len >> 63) != 0)
        return ws_fail(r, ev, WS_CLOSE_PROTOCOL, "64-bit length with the high bit set", used);
    if (r->hdr_need == 10 && len <= 0xFFFF)
        return ws_fail(r, ev, WS_CLOSE_PROTOCOL, "non-minimal 64-bit length", used);
    r->frame_left = len;
    return ws_length_done(r, ev, p, used);
}

static size_t ws_step_mask(struct ws_reader *r, struct ws_event *ev, uint8_t *p, size_t avail)
{
    size_t used = ws_gather(r, p, avail);

    if (r->hdr_have < r->hdr_need)
        return used;
    memcpy(r->mask, r->hdr + r->hdr_have - 4, 4);
    ws_begin_payload(r, ev, p + used);
    return used;
}

/* A control frame is whole: validate a close payload and report it. */
static void ws_finish_control(struct ws_reader *r, struct ws_event *ev)
{
    r->state = WS_RD_B0;
    if (r->frame_opcode == WS_OP_CLOSE && r->ctl_len >= 2) {
        uint16_t code = (uint16_t)(r->ctl[0] << 8 | r->ctl[1]);

        if (!ws_close_code_is_valid(code)) {
            ws_fail(r, ev, WS_CLOSE_PROTOCOL, "invalid close code", 0);
            return;
        }
        if (!utf8_is_valid(r->ctl + 2, (size_t)r->ctl_len - 2)) {
            ws_fail(r, ev, WS_CLOSE_INVALID_DATA, "close reason is not valid utf-8", 0);
            return;
        }
        ev->close_code = code;
        ev->reason = r->ctl + 2;
        ev->reason_len = (size_t)r->ctl_len - 2;
    } else if (r->frame_opcode == WS_OP_CLOSE) {
        ev->close_code = WS_CLOSE_NO_STATUS;
        ev->reason = r->ctl;
        ev->reason_len = 0;
    }
    ev->type = WS_EV_CONTROL;
    ev->opcode = r->frame_opcode;
    ev->data = r->ctl;
    ev->len = r->ctl_len;
}

/* Ends a data frame whose payload is all delivered; closes the message after FIN. */
static void ws_end_data_frame(struct ws_reader *r)
{
    r->state = WS_RD_B0;
    if (r->frame_fin)
        r->in_message = false;
}

static void ws_begin_payload(struct ws_reader *r, struct ws_event *ev, const uint8_t *p)
{
    r->frame_pos = 0;
    r->hdr_have = 0;
    if (ws_is_control(r->frame_opcode)) {
        r->ctl_len = 0;
        r->state = WS_RD_CTL;
        if (r->frame_left == 0)
            ws_finish_control(r, ev);
        return;
    }
    if (r->frame_opcode != WS_OP_CONT) {
        r->in_message = true;
        r->msg_opcode = r->frame_opcode;
        r->msg_compressed = r->frame_rsv1;
        r->msg_first_pending = true;
        r->msg_len = 0;
        utf8_init(&r->utf8);
    }
    r->msg_len = r->frame_left > UINT64_MAX - r->msg_len ? UINT64_MAX : r->msg_len + r->frame_left;
    r->state = WS_RD_DATA;
    if (r->frame_left != 0)
        return;
    if (r->frame_fin && ws_checks_utf8(r) && !utf8_is_complete(&r->utf8)) {
        ws_fail(r, ev, WS_CLOSE_INVALID_DATA, "text message ends inside a utf-8 sequence", 0);
        return;
    }
    ws_emit_data(r, ev, p, 0, r->frame_fin);
    ws_end_data_frame(r);
}

/*
 * Validates n unmasked text bytes and returns how many of them may be delivered: all of
 * them, or the prefix before the first byte at which the message becomes invalid (on the
 * last chunk of the message, the last byte when the text ends inside a sequence).
 * r->utf8 is left after the accepted prefix.
 */
static size_t ws_accept_text(struct ws_reader *r, const uint8_t *p, size_t n, bool last)
{
    struct utf8_state saved = r->utf8;
    size_t k;

    if (utf8_feed(&r->utf8, p, n) == 0 && (!last || utf8_is_complete(&r->utf8)))
        return n;
    r->utf8 = saved;
    for (k = 0; k < n; k++) {
        struct utf8_state t = r->utf8;

        if (utf8_feed(&t, p + k, 1) != 0)
            break;
        if (last && k + 1 == n && !utf8_is_complete(&t))
            break;
        r->utf8 = t;
    }
    return k;
}

static size_t ws_step_data(struct ws_reader *r, struct ws_event *ev, uint8_t *p, size_t avail)
{
    size_t n = (size_t)WSD_MIN((uint64_t)avail, r->frame_left);
    bool last = r->frame_fin && n == r->frame_left;

    if (r->masked)
        ws_mask(p, n, r->mask, r->frame_pos);
    if (ws_checks_utf8(r)) {
        size_t ok = ws_accept_text(r, p, n, last);

        if (ok < n) {
            if (r->masked)
                ws_mask(p + ok, n - ok, r->mask, r->frame_pos + ok);
            if (ok == 0)
                return ws_fail(r, ev, WS_CLOSE_INVALID_DATA, "invalid utf-8 in text message", 1);
            n = ok;
            last = false;
        }
    }
    ws_emit_data(r, ev, p, n, last);
    r->frame_pos += n;
    r->frame_left -= n;
    if (r->frame_left == 0)
        ws_end_data_frame(r);
    return n;
}

static size_t ws_step_ctl(struct ws_reader *r, struct ws_event *ev, const uint8_t *p,
                          size_t avail)
{
    size_t n = (size_t)WSD_MIN((uint64_t)avail, r->frame_left);
    uint8_t *dst = r->ctl + r->ctl_len;

    memcpy(dst, p, n);
    if (r->masked)
        ws_mask(dst, n, r->mask, r->frame_pos);
    r->ctl_len = (uint8_t)(r->ctl_len + n);
    r->frame_pos += n;
    r->frame_left -= n;
    if (r->frame_left == 0)
        ws_finish_control(r, ev);
    return n;
}

/* Runs the current state on p[0..avail), avail > 0. Returns the bytes consumed (>= 1). */
static size_t ws_step(struct ws_reader *r, struct ws_event *ev, uint8_t *p, size_t avail)
{
    switch (r->state) {
    case WS_RD_B0:
        return ws_step_b0(r, ev, p[0]);
    case WS_RD_B1:
        return ws_step_b1(r, ev, p);
    case WS_RD_LEN:
        return ws_step_len(r, ev, p, avail);
    case WS_RD_MASK:
        return ws_step_mask(r, ev, p, avail);
    case WS_RD_DATA:
        return ws_step_data(r, ev, p, avail);
    case WS_RD_CTL:
        return ws_step_ctl(r, ev, p, avail);
    default:
        WSD_BUG_ON(true);
        return 0;
    }
}

size_t ws_reader_feed(struct ws_reader *r, uint8_t *buf, size_t len, struct ws_event *ev)
{
    size_t off = 0;

    memset(ev, 0, sizeof(*ev));
    ev->type = WS_EV_NONE;
    if (r->failed) {
        ev->type = WS_EV_ERROR;
        ev->close_code = r->fail_code;
        ev->error = r->fail_error;
        return 0;
    }
    while (off < len && ev->type == WS_EV_NONE)
        off += ws_step(r, ev, buf + off, len - off);
    return off;
}

/* 16 bytes for the compiler's vector registers (SSE2 on x86-64, NEON on arm64). */
typedef uint8_t ws_v16 __attribute__((vector_size(16)));

void ws_mask(uint8_t *p, size_t len, const uint8_t key[4], uint64_t offset)
{
    size_t i = 0;

    if (len >= 16) {
        /* The key repeats every 4 bytes, so one 16-byte pattern serves every block. */
        uint8_t rot[16];
        ws_v16 k, a, b, c, d;

        for (size_t j = 0; j < 16; j++)
            rot[j] = key[(offset + j) & 3];
        memcpy(&k, rot, 16);
        for (; len - i >= 64; i += 64) {
            memcpy(&a, p + i, 16);
            memcpy(&b, p + i + 16, 16);
            memcpy(&c, p + i + 32, 16);
            memcpy(&d, p + i + 48, 16);
            a ^= k;
            b ^= k;
            c ^= k;
            d ^= k;
            memcpy(p + i, &a, 16);
            memcpy(p + i + 16, &b, 16);
            memcpy(p + i + 32, &c, 16);
            memcpy(p + i + 48, &d, 16);
        }
        for (; len - i >= 16; i += 16) {
            memcpy(&a, p + i, 16);
            a ^= k;
            memcpy(p + i, &a, 16);
        }
    }
    for (; i < len; i++)
        p[i] ^= key[(offset + i) & 3];
}

size_t ws_frame_header(uint8_t out[14], uint8_t opcode, bool fin, bool rsv1, uint64_t len,
                       const uint8_t *mask)
{
    size_t n = 2;

    assert((len >> 63) == 0);
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0F));
    out[1] = mask != NULL ? 0x80 : 0;
    if (len < 126) {
        out[1] |= (uint8_t)len;
    } else if (len <= 0xFFFF) {
        out[1] |= 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        out[1] |= 127;
        for (size_t i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    if (mask != NULL) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

bool ws_close_code_is_valid(uint32_t code)
{
    if (code >= 1000 && code <= 1003)
        return true;
    if (code >= 1007 && code <= 1014)
        return true;
    return code >= 3000 && code <= 4999;
}

/* Length of the longest prefix of s, at most max bytes, that is complete, valid UTF-8. */
static size_t ws_utf8_prefix(const char *s, size_t max)
{
    struct utf8_state st;
    size_t good = 0;

    utf8_init(&st);
    for (size_t i = 0; i < max && s[i] != '\0'; i++) {
        if (utf8_feed(&st, (const uint8_t *)s + i, 1) != 0)
            break;
        if (utf8_is_complete(&st))
            good = i + 1;
    }
    return good;
}

size_t ws_close_payload(uint8_t out[125], uint16_t code, const char *reason)
{
    size_t n;

    if (code == 0 || code == WS_CLOSE_NO_STATUS)
        return 0;
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    if (reason == NULL)
        return 2;
    n = ws_utf8_prefix(reason, WS_CTL_MAX - 2);
    memcpy(out + 2, reason, n);
    return 2 + n;
}
