/*
 * ws_frame_test.c - the RFC 6455 frame reader and encoder.
 *
 * Every reader case is a byte stream and the transcript it must produce. The stream is fed
 * whole, byte by byte and in many random splits (seeded), each chunk in its own exact-size
 * allocation so a read past the chunk is caught; every feeding must give the same
 * transcript, including the stream position of an error. The transcript joins the DATA
 * chunks of each message, so it does not depend on how the payload was cut.
 */
#include "proto/ws_frame.h"

#include "core/wsd.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIN 0x80
#define RSV1 0x40
#define RSV2 0x20
#define RSV3 0x10
#define SEEDS 64

/* ---- growable byte and text buffers ---- */

struct bytes {
    uint8_t *p;
    size_t len;
    size_t cap;
};

static void bytes_add(struct bytes *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = WSD_MAX(b->cap * 2, b->len + n + 64);

        b->p = realloc(b->p, cap);
        cr_assert_not_null(b->p);
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void bytes_printf(struct bytes *b, const char *fmt, ...) WSD_PRINTF(2, 3);
static void bytes_printf(struct bytes *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < sizeof(tmp));
    bytes_add(b, tmp, (size_t)n);
}

static void bytes_free(struct bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

static const char *bytes_str(struct bytes *b)
{
    if (b->p == NULL)
        bytes_add(b, "", 0);
    return (const char *)b->p;
}

/* ---- transcript format ---- */

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* Payload text: printable ASCII as is, other bytes as \xHH; long payloads as length+hash. */
static void tr_payload(struct bytes *t, const uint8_t *p, size_t n)
{
    if (n > 200) {
        bytes_printf(t, "#%zu/%08x", n, fnv1a(p, n));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' && p[i] != ';')
            bytes_add(t, &p[i], 1);
        else
            bytes_printf(t, "\\x%02x", p[i]);
    }
}

/* A data message: kind is "" (complete), "~" (cut by an error) or "+" (input ended). */
static void tr_message(struct bytes *t, uint8_t op, bool compressed, const char *kind,
                       const uint8_t *p, size_t n)
{
    bytes_printf(t, "%s%s%s:", op == WS_OP_TEXT ? "T" : op == WS_OP_BINARY ? "B" : "?",
                 compressed ? "z" : "", kind);
    tr_payload(t, p, n);
    bytes_add(t, ";", 1);
}

static void tr_control(struct bytes *t, uint8_t op, const uint8_t *p, size_t n)
{
    bytes_printf(t, "%s:", op == WS_OP_PING ? "PING" : op == WS_OP_PONG ? "PONG" : "?");
    tr_payload(t, p, n);
    bytes_add(t, ";", 1);
}

static void tr_close(struct bytes *t, unsigned code, const uint8_t *reason, size_t n)
{
    bytes_printf(t, "CLOSE:%u:", code);
    tr_payload(t, reason, n);
    bytes_add(t, ";", 1);
}

static void tr_error(struct bytes *t, unsigned code, size_t pos)
{
    bytes_printf(t, "E%u@%zu;", code, pos);
}

/* ---- the runner ---- */

struct cfg {
    uint64_t max;
    bool rsv1;
    bool mask;
};

static const struct cfg server = {0, false, true};

struct run {
    struct ws_reader r;
    struct bytes out;
    struct bytes msg;
    bool in_msg;
    uint8_t op;
    bool compressed;
    bool failed;
    size_t pos; /* stream offset of the next byte to feed */
};

static void run_data(struct run *x, const struct ws_event *ev)
{
    cr_assert_eq(ev->first, !x->in_msg, "first flag at %zu", x->pos);
    cr_assert(ev->opcode == WS_OP_TEXT || ev->opcode == WS_OP_BINARY);
    if (ev->first) {
        x->in_msg = true;
        x->op = ev->opcode;
        x->compressed = ev->compressed;
        x->msg.len = 0;
    }
    cr_assert_eq(ev->opcode, x->op);
    cr_assert_eq(ev->compressed, x->compressed);
    bytes_add(&x->msg, ev->data, ev->len);
    if (ev->fin) {
        tr_message(&x->out, x->op, x->compressed, "", x->msg.p, x->msg.len);
        x->in_msg = false;
    }
}

static void run_control(struct run *x, const struct ws_event *ev)
{
    cr_assert(ev->len <= 125);
    if (ev->opcode != WS_OP_CLOSE) {
        cr_assert(ev->opcode == WS_OP_PING || ev->opcode == WS_OP_PONG);
        tr_control(&x->out, ev->opcode, ev->data, ev->len);
        return;
    }
    if (ev->len == 0) {
        cr_assert_eq(ev->close_code, WS_CLOSE_NO_STATUS);
        cr_assert_eq(ev->reason_len, 0);
    } else {
        cr_assert_eq(ev->close_code, ev->data[0] << 8 | ev->data[1]);
        cr_assert_eq(ev->reason, ev->data + 2);
        cr_assert_eq(ev->reason_len, ev->len - 2);
    }
    tr_close(&x->out, ev->close_code, ev->reason, ev->reason_len);
}

static void run_error(struct run *x, const struct ws_event *ev)
{
    struct ws_event again;
    uint8_t junk[4] = {0x81, 0x80, 0, 0};

    cr_assert_not_null(ev->error);
    if (x->in_msg)
        tr_message(&x->out, x->op, x->compressed, "~", x->msg.p, x->msg.len);
    x->in_msg = false;
    tr_error(&x->out, ev->close_code, x->pos);
    x->failed = true;
    cr_assert_eq(ws_reader_feed(&x->r, junk, sizeof(junk), &again), 0, "error is sticky");
    cr_assert_eq(again.type, WS_EV_ERROR);
    cr_assert_eq(again.close_code, ev->close_code);
}

/* Feeds one chunk (its own allocation) until it is used up or the reader fails. */
static void run_chunk(struct run *x, const uint8_t *src, size_t n)
{
    uint8_t *chunk = malloc(n ? n : 1);
    size_t off = 0;

    cr_assert_not_null(chunk);
    memcpy(chunk, src, n);
    while (off < n && !x->failed) {
        struct ws_event ev;
        size_t used = ws_reader_feed(&x->r, chunk + off, n - off, &ev);

        cr_assert(used >= 1 && used <= n - off, "feed consumed %zu of %zu", used, n - off);
        x->pos += used;
        off += used;
        if (ev.type == WS_EV_DATA) {
            cr_assert(ev.data >= chunk && ev.data + ev.len <= chunk + off, "view into buffer");
            run_data(x, &ev);
        } else if (ev.type == WS_EV_CONTROL) {
            run_control(x, &ev);
        } else if (ev.type == WS_EV_ERROR) {
            run_error(x, &ev);
        } else {
            cr_assert_eq(ev.type, WS_EV_NONE);
            cr_assert_eq(off, n, "no event only when the chunk is used up");
        }
    }
    free(chunk);
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Chunk sizes: mode 0 whole, 1 byte by byte, else random from the seed mode. */
static size_t next_chunk(uint64_t *rng, int mode, size_t left)
{
    uint64_t v;

    if (mode == 0)
        return left;
    if (mode == 1)
        return 1;
    v = rng_next(rng);
    switch (v % 4) {
    case 0:
    case 1:
        return WSD_MIN(left, (size_t)(v >> 8) % 4 + 1);
    case 2:
        return WSD_MIN(left, (size_t)(v >> 8) % 32 + 1);
    default:
        return (size_t)(v >> 8) % left + 1;
    }
}

/* Returns the transcript of feeding in[0..len) split by mode (caller frees). */
static char *run_feed(const struct cfg *c, const uint8_t *in, size_t len, int mode)
{
    struct run x;
    uint64_t rng = 0x9e3779b97f4a7c15ull * (uint64_t)(mode + 1);
    char *s;

    memset(&x, 0, sizeof(x));
    ws_reader_init(&x.r, c->max, c->rsv1, c->mask);
    while (x.pos < len && !x.failed)
        run_chunk(&x, in + x.pos, next_chunk(&rng, mode, len - x.pos));
    if (x.in_msg)
        tr_message(&x.out, x.op, x.compressed, "+", x.msg.p, x.msg.len);
    s = strdup(bytes_str(&x.out));
    cr_assert_not_null(s);
    bytes_free(&x.out);
    bytes_free(&x.msg);
    return s;
}

/* Feeds whole, byte by byte and in `seeds` random splits; all must give `expect`. */
static void expect_feeds(const struct cfg *c, const struct bytes *in, const char *expect,
                         int seeds)
{
    for (int mode = 0; mode < 2 + seeds; mode++) {
        char *got = run_feed(c, in->p, in->len, mode);

        cr_assert_str_eq(got, expect, "split mode %d", mode);
        free(got);
    }
}

static void expect_all(const struct cfg *c, struct bytes *in, const char *expect)
{
    expect_feeds(c, in, expect, SEEDS);
    bytes_free(in);
}

/* ---- frame builders ---- */

static const uint8_t key0[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Appends a frame with first byte b0, payload p, masked with key when key != NULL. */
static void add_frame_key(struct bytes *w, uint8_t b0, const void *p, size_t n,
                          const uint8_t *key)
{
    uint8_t hdr[14];
    size_t hl = ws_frame_header(hdr, b0 & 0x0F, false, false, n, key);
    size_t at;

    hdr[0] = b0;
    bytes_add(w, hdr, hl);
    at = w->len;
    bytes_add(w, p, n);
    for (size_t i = 0; key != NULL && i < n; i++)
        w->p[at + i] ^= key[i % 4];
}

static void add_frame(struct bytes *w, uint8_t b0, const void *p, size_t n)
{
    add_frame_key(w, b0, p, n, key0);
}

static void add_str(struct bytes *w, uint8_t b0, const char *s)
{
    add_frame(w, b0, s, strlen(s));
}

/* Appends a masked header with an explicit length form: 7, 16 or 64 bits. */
static void add_raw_header(struct bytes *w, uint8_t b0, int form, uint64_t len)
{
    uint8_t h[14];
    size_t n = 2;

    h[0] = b0;
    if (form == 7) {
        h[1] = (uint8_t)(0x80 | len);
    } else if (form == 16) {
        h[1] = 0x80 | 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        n = 4;
    } else {
        h[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    memcpy(h + n, key0, 4);
    bytes_add(w, h, n + 4);
}

static void add_close(struct bytes *w, unsigned code, const char *reason)
{
    uint8_t p[125];
    size_t n = strlen(reason);

    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    memcpy(p + 2, reason, n);
    add_frame(w, FIN | WS_OP_CLOSE, p, n + 2);
}

static size_t hdr_len(size_t n)
{
    return (n < 126 ? 2 : n <= 0xffff ? 4 : 10) + 4;
}

/* ---- 5.1 masking ---- */

Test(ws_frame, rejects_unmasked_client_frame)
{
    struct bytes in = {0};

    add_frame_key(&in, FIN | WS_OP_TEXT, "hello", 5, NULL);
    expect_all(&server, &in, "E1002@2;");
}

Test(ws_frame, rejects_unmasked_frame_after_masked_ones)
{
    struct bytes in = {0};

    add_str(&in, FIN | WS_OP_TEXT, "a");
    add_frame_key(&in, FIN | WS_OP_PING, "p", 1, NULL);
    expect_all(&server, &in, "T:a;E1002@9;");
}

Test(ws_frame, accepts_unmasked_frames_when_mask_not_required)
{
    struct cfg c = {0, false, false};
    struct bytes in = {0};

    add_frame_key(&in, FIN | WS_OP_TEXT, "hello", 5, NULL);
    add_frame_key(&in, FIN | WS_OP_BINARY, "\x01\x02", 2, key0);
    expect_all(&c, &in, "T:hello;B:\\x01\\x02;");
}

Test(ws_frame, unmasks_payload_with_each_key_and_length)
{
    uint8_t payload[300];

    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)('a' + i % 26);
    for (size_t n = 0; n < sizeof(payload); n += 37) {
        uint8_t key[4] = {(uint8_t)n, (uint8_t)(n * 7), 0xff, 0x80};
        struct bytes in = {0}, ex = {0};

        add_frame_key(&in, FIN | WS_OP_BINARY, payload, n, key);
        tr_message(&ex, WS_OP_BINARY, false, "", payload, n);
        expect_feeds(&server, &in, bytes_str(&ex), 8);
        bytes_free(&in);
        bytes_free(&ex);
    }
}

/* ---- 5.2 reserved bits, opcodes, lengths ---- */

Test(ws_frame, rejects_rsv2_and_rsv3)
{
    struct cfg deflate = {0, true, true};
    struct bytes in = {0};

    add_str(&in, FIN | RSV2 | WS_OP_TEXT, "x");
    expect_all(&deflate, &in, "E1002@1;");
    add_str(&in, FIN | RSV3 | WS_OP_BINARY, "x");
    expect_all(&deflate, &in, "E1002@1;");
    add_str(&in, FIN | RSV2 | WS_OP_PING, "x");
    expect_all(&server, &in, "E1002@1;");
}

Test(ws_frame, rejects_rsv1_without_permessage_deflate)
{
    struct bytes in = {0};

    add_str(&in, FIN | RSV1 | WS_OP_TEXT, "x");
    expect_all(&server, &in, "E1002@1;");
}

Test(ws_frame, accepts_rsv1_on_first_frame_with_permessage_deflate)
{
    struct cfg deflate = {0, true, true};
    struct bytes in = {0};

    add_str(&in, RSV1 | WS_OP_TEXT, "\xff\xfe");
    add_str(&in, FIN | WS_OP_CONT, "\x80");
    add_str(&in, FIN | WS_OP_BINARY, "plain");
    expect_all(&deflate, &in, "Tz:\\xff\\xfe\\x80;B:plain;");
}

Test(ws_frame, rejects_rsv1_on_continuation_frame)
{
    struct cfg deflate = {0, true, true};
    struct bytes in = {0};

    add_str(&in, RSV1 | WS_OP_TEXT, "ab");
    add_str(&in, FIN | RSV1 | WS_OP_CONT, "cd");
    expect_all(&deflate, &in, "Tz~:ab;E1002@9;");
}

Test(ws_frame, rejects_rsv1_on_control_frame)
{
    struct cfg deflate = {0, true, true};
    struct bytes in = {0};

    add_str(&in, FIN | RSV1 | WS_OP_PING, "");
    expect_all(&deflate, &in, "E1002@1;");
}

Test(ws_frame, rejects_each_reserved_opcode)
{
    static const uint8_t reserved[] = {3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf};

    for (size_t i = 0; i < WSD_ARRAY_LEN(reserved); i++) {
        struct bytes in = {0};

        add_str(&in, FIN | WS_OP_TEXT, "ok");
        add_str(&in, FIN | reserved[i], "");
        expect_all(&server, &in, "T:ok;E1002@9;");
    }
}

Test(ws_frame, rejects_non_minimal_16_bit_length)
{
    struct bytes in = {0};

    add_raw_header(&in, FIN | WS_OP_BINARY, 16, 125);
    expect_all(&server, &in, "E1002@4;");
    add_raw_header(&in, FIN | WS_OP_BINARY, 16, 0);
    expect_all(&server, &in, "E1002@4;");
}

Test(ws_frame, rejects_non_minimal_64_bit_length)
{
    struct bytes in = {0};

    add_raw_header(&in, FIN | WS_OP_BINARY, 64, 65535);
    expect_all(&server, &in, "E1002@10;");
    add_raw_header(&in, FIN | WS_OP_BINARY, 64, 5);
    expect_all(&server, &in, "E1002@10;");
}

Test(ws_frame, rejects_64_bit_length_with_high_bit_set)
{
    struct bytes in = {0};

    add_raw_header(&in, FIN | WS_OP_BINARY, 64, 1ull << 63);
    expect_all(&server, &in, "E1002@10;");
    add_raw_header(&in, FIN | WS_OP_BINARY, 64, UINT64_MAX);
    expect_all(&server, &in, "E1002@10;");
}

Test(ws_frame, accepts_each_length_form_at_its_boundaries)
{
    static const size_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 70000};

    for (size_t i = 0; i < WSD_ARRAY_LEN(lens); i++) {
        uint8_t *p = malloc(lens[i] + 1);
        struct bytes in = {0}, ex = {0};

        cr_assert_not_null(p);
        for (size_t j = 0; j < lens[i]; j++)
            p[j] = (uint8_t)(j * 31 + 7);
        add_frame(&in, FIN | WS_OP_BINARY, p, lens[i]);
        cr_assert_eq(in.len, hdr_len(lens[i]) + lens[i]);
        tr_message(&ex, WS_OP_BINARY, false, "", p, lens[i]);
        expect_feeds(&server, &in, bytes_str(&ex), lens[i] > 1000 ? 4 : SEEDS);
        bytes_free(&in);
        bytes_free(&ex);
        free(p);
    }
}

/* ---- 5.4 fragmentation ---- */

Test(ws_frame, reassembles_fragmented_text_message)
{
    struct bytes in = {0};

    add_str(&in, WS_OP_TEXT, "Hel");
    add_str(&in, WS_OP_CONT, "lo, ");
    add_str(&in, FIN | WS_OP_CONT, "world");
    expect_all(&server, &in, "T:Hello, world;");
}

Test(ws_frame, control_frames_interleave_inside_fragmented_message)
{
    struct bytes in = {0};

    add_str(&in, WS_OP_BINARY, "one");
    add_str(&in, FIN | WS_OP_PING, "p1");
    add_str(&in, WS_OP_CONT, "two");
    add_str(&in, FIN | WS_OP_PONG, "");
    add_str(&in, FIN | WS_OP_PING, "p2");
    add_str(&in, FIN | WS_OP_CONT, "three");
    expect_all(&server, &in, "PING:p1;PONG:;PING:p2;B:onetwothree;");
}

Test(ws_frame, rejects_continuation_without_open_message)
{
    struct bytes in = {0};

    add_str(&in, FIN | WS_OP_CONT, "x");
    expect_all(&server, &in, "E1002@1;");
    add_str(&in, FIN | WS_OP_TEXT, "done");
    add_str(&in, FIN | WS_OP_CONT, "x");
    expect_all(&server, &in, "T:done;E1002@11;");
}

Test(ws_frame, rejects_new_data_message_while_one_is_open)
{
    struct bytes in = {0};

    add_str(&in, WS_OP_TEXT, "a");
    add_str(&in, FIN | WS_OP_TEXT, "b");
    expect_all(&server, &in, "T~:a;E1002@8;");
    add_str(&in, WS_OP_BINARY, "a");
    add_str(&in, FIN | WS_OP_PING, "");
    add_str(&in, FIN | WS_OP_BINARY, "b");
    expect_all(&server, &in, "PING:;B~:a;E1002@14;");
}

Test(ws_frame, empty_text_message_gives_one_data_event)
{
    uint8_t buf[6];
    struct ws_reader r;
    struct ws_event ev;
    struct bytes in = {0};

    add_str(&in, FIN | WS_OP_TEXT, "");
    cr_assert_eq(in.len, 6);
    memcpy(buf, in.p, 6);
    ws_reader_init(&r, 0, false, true);
    cr_assert_eq(ws_reader_feed(&r, buf, 6, &ev), 6);
    cr_assert_eq(ev.type, WS_EV_DATA);
    cr_assert_eq(ev.opcode, WS_OP_TEXT);
    cr_assert(ev.first && ev.fin && ev.len == 0);
    expect_all(&server, &in, "T:;");
}

Test(ws_frame, every_empty_fragment_gives_a_data_event)
{
    uint8_t buf[64];
    struct ws_reader r;
    struct ws_event ev;
    struct bytes in = {0};
    size_t off = 0;
    int events = 0;

    add_str(&in, WS_OP_BINARY, "");
    add_str(&in, WS_OP_CONT, "");
    add_str(&in, FIN | WS_OP_CONT, "");
    memcpy(buf, in.p, in.len);
    ws_reader_init(&r, 0, false, true);
    while (off < in.len) {
        off += ws_reader_feed(&r, buf + off, in.len - off, &ev);
        cr_assert_eq(ev.type, WS_EV_DATA);
        cr_assert_eq(ev.len, 0);
        cr_assert_eq(ev.first, events == 0);
        cr_assert_eq(ev.fin, off == in.len);
        events++;
    }
    cr_assert_eq(events, 3);
    expect_all(&server, &in, "B:;");
}

Test(ws_frame, data_events_point_into_caller_buffer_unmasked)
{
    struct bytes in = {0};
    struct ws_reader r;
    struct ws_event ev;
    size_t used;

    add_str(&in, FIN | WS_OP_BINARY, "payload");
    ws_reader_init(&r, 0, false, true);
    used = ws_reader_feed(&r, in.p, 8, &ev); /* header and two payload bytes */
    cr_assert_eq(used, 8);
    cr_assert_eq(ev.type, WS_EV_DATA);
    cr_assert(ev.first && !ev.fin);
    cr_assert_eq(ev.data, in.p + 6);
    cr_assert_eq(memcmp(ev.data, "pa", 2), 0);
    used = ws_reader_feed(&r, in.p + 8, in.len - 8, &ev);
    cr_assert_eq(used, 5);
    cr_assert(!ev.first && ev.fin);
    cr_assert_eq(ev.data, in.p + 8);
    cr_assert_eq(memcmp(ev.data, "yload", 5), 0);
    bytes_free(&in);
}

Test(ws_frame, partial_header_is_held_so_bytes_may_be_discarded)
{
    struct bytes in = {0};
    struct ws_reader r;
    struct ws_event ev;
    uint8_t one;

    add_str(&in, FIN | WS_OP_PING, "abc");
    ws_reader_init(&r, 0, false, true);
    for (size_t i = 0; i < in.len; i++) {
        one = in.p[i];
        cr_assert_eq(ws_reader_feed(&r, &one, 1, &ev), 1);
        one = 0xAA; /* the reader must not look at it again */
        cr_assert_eq(ev.type, i + 1 == in.len ? WS_EV_CONTROL : WS_EV_NONE);
    }
    cr_assert_eq(ev.len, 3);
    cr_assert_eq(memcmp(ev.data, "abc", 3), 0);
    bytes_free(&in);
}

Test(ws_frame, feeding_nothing_consumes_nothing)
{
    struct ws_reader r;
    struct ws_event ev;
    uint8_t b = 0;

    ws_reader_init(&r, 0, false, true);
    cr_assert_eq(ws_reader_feed(&r, &b, 0, &ev), 0);
    cr_assert_eq(ev.type, WS_EV_NONE);
}

Test(ws_frame, error_is_sticky_and_init_resets)
{
    struct ws_reader r;
    struct ws_event ev;
    struct bytes in = {0};
    uint8_t bad[2] = {0x83, 0x80};

    ws_reader_init(&r, 0, false, true);
    cr_assert_eq(ws_reader_feed(&r, bad, 2, &ev), 1);
    cr_assert_eq(ev.type, WS_EV_ERROR);
    cr_assert_eq(ev.close_code, WS_CLOSE_PROTOCOL);
    cr_assert_eq(ws_reader_feed(&r, bad + 1, 1, &ev), 0);
    cr_assert_eq(ev.type, WS_EV_ERROR);
    cr_assert_eq(ev.close_code, WS_CLOSE_PROTOCOL);
    ws_reader_init(&r, 0, false, true);
    add_str(&in, FIN | WS_OP_TEXT, "ok");
    cr_assert_eq(ws_reader_feed(&r, in.p, in.len, &ev), in.len);
    cr_assert_eq(ev.type, WS_EV_DATA);
    bytes_free(&in);
}

/* ---- 5.5 control frames ---- */

Test(ws_frame, rejects_control_frame_over_125_bytes)
{
    char big[126];
    struct bytes in = {0};

    memset(big, 'x', sizeof(big));
    add_frame(&in, FIN | WS_OP_PING, big, 126);
    expect_all(&server, &in, "E1002@2;");
    add_raw_header(&in, FIN | WS_OP_PONG, 7, 127);
    expect_all(&server, &in, "E1002@2;");
    add_raw_header(&in, FIN | WS_OP_CLOSE, 16, 126);
    expect_all(&server, &in, "E1002@2;");
}

Test(ws_frame, rejects_fragmented_control_frame)
{
    struct bytes in = {0};

    add_str(&in, WS_OP_PING, "x");
    expect_all(&server, &in, "E1002@1;");
    add_str(&in, WS_OP_CLOSE, "");
    expect_all(&server, &in, "E1002@1;");
}

Test(ws_frame, gathers_125_byte_ping_across_feeds)
{
    char p[125];
    struct bytes in = {0}, ex = {0};

    for (size_t i = 0; i < sizeof(p); i++)
        p[i] = (char)('A' + i % 50);
    add_frame(&in, FIN | WS_OP_PING, p, 125);
    add_frame(&in, FIN | WS_OP_PONG, p, 125);
    tr_control(&ex, WS_OP_PING, (const uint8_t *)p, 125);
    tr_control(&ex, WS_OP_PONG, (const uint8_t *)p, 125);
    expect_all(&server, &in, bytes_str(&ex));
    bytes_free(&ex);
}

Test(ws_frame, close_without_payload_reports_1005)
{
    struct bytes in = {0};

    add_str(&in, FIN | WS_OP_CLOSE, "");
    expect_all(&server, &in, "CLOSE:1005:;");
}

Test(ws_frame, rejects_close_payload_of_one_byte)
{
    struct bytes in = {0};

    add_str(&in, FIN | WS_OP_CLOSE, "\x03");
    expect_all(&server, &in, "E1002@2;");
}

Test(ws_frame, accepts_each_valid_close_code_with_reason)
{
    static const unsigned codes[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                     1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};

    for (size_t i = 0; i < WSD_ARRAY_LEN(codes); i++) {
        struct bytes in = {0};
        char ex[64];

        add_close(&in, codes[i], "bye \xe2\x82\xac");
        snprintf(ex, sizeof(ex), "CLOSE:%u:bye \\xe2\\x82\\xac;", codes[i]);
        expect_feeds(&server, &in, ex, 8);
        bytes_free(&in);
    }
}

Test(ws_frame, rejects_each_invalid_close_code)
{
    static const unsigned codes[] = {0,    1,    999,  1004, 1005, 1006, 1015,
                                     1016, 1100, 2000, 2999, 5000, 65535};

    for (size_t i = 0; i < WSD_ARRAY_LEN(codes); i++) {
        struct bytes in = {0};

        add_close(&in, codes[i], "r");
        expect_feeds(&server, &in, "E1002@9;", 8);
        bytes_free(&in);
    }
}

Test(ws_frame, rejects_close_reason_that_is_not_utf8)
{
    struct bytes in = {0};

    add_close(&in, 1000, "ok\xc0\xaf");
    expect_all(&server, &in, "E1007@12;");
    add_close(&in, 1000, "\xe2\x82");
    expect_all(&server, &in, "E1007@10;");
}

/* ---- 5.6 data frames: UTF-8 of text messages ---- */

Test(ws_frame, rejects_invalid_utf8_at_the_offending_byte)
{
    struct bytes in = {0};

    add_str(&in, FIN | WS_OP_TEXT, "abc\xed\xa0\x80xyz");
    expect_all(&server, &in, "T~:abc\\xed;E1007@11;");
}

Test(ws_frame, rejects_invalid_utf8_inside_first_fragment)
{
    struct bytes in = {0};

    add_str(&in, WS_OP_TEXT, "ok\xf4\x90\x80\x80 then more");
    add_str(&in, FIN | WS_OP_CONT, "never seen");
    expect_all(&server, &in, "T~:ok\\xf4;E1007@10;");
}

Test(ws_frame, rejects_invalid_utf8_in_a_later_fragment)
{
    struct bytes in = {0};

    add_str(&in, WS_OP_TEXT, "\xce\xba\xe1\xbd");
    add_str(&in, WS_OP_CONT, "\xb9");
    add_str(&in, FIN | WS_OP_CONT, "\xc0\x80");
    expect_all(&server, &in, "T~:\\xce\\xba\\xe1\\xbd\\xb9;E1007@24;");
}

Test(ws_frame, accepts_code_point_split_across_fragments)
{
    struct bytes in = {0};

    add_str(&in, WS_OP_TEXT, "\xe2");
    add_str(&in, FIN | WS_OP_PING, "");
    add_str(&in, WS_OP_CONT, "\x82");
    add_str(&in, WS_OP_CONT, "");
    add_str(&in, FIN | WS_OP_CONT, "\xac!");
    expect_all(&server, &in, "PING:;T:\\xe2\\x82\\xac!;");
}

Test(ws_frame, rejects_text_ending_inside_a_sequence_at_its_last_byte)
{
    struct bytes in = {0};

    add_str(&in, FIN | WS_OP_TEXT, "ab\xf0\x9f\x98");
    expect_all(&server, &in, "T~:ab\\xf0\\x9f;E1007@11;");
    add_str(&in, FIN | WS_OP_TEXT, "\xc3");
    expect_all(&server, &in, "E1007@7;");
}

Test(ws_frame, rejects_text_ending_inside_a_sequence_with_empty_last_frame)
{
    struct bytes in = {0};

    add_str(&in, WS_OP_TEXT, "a\xc3");
    add_str(&in, FIN | WS_OP_CONT, "");
    expect_all(&server, &in, "T~:a\\xc3;E1007@14;");
}

Test(ws_frame, binary_and_compressed_text_are_not_utf8_checked)
{
    struct cfg deflate = {0, true, true};
    struct bytes in = {0};

    add_str(&in, FIN | WS_OP_BINARY, "\xff\xc0");
    add_str(&in, FIN | RSV1 | WS_OP_TEXT, "\xed\xa0\x80\xc3");
    expect_all(&deflate, &in, "B:\\xff\\xc0;Tz:\\xed\\xa0\\x80\\xc3;");
}

Test(ws_frame, bytes_after_an_accepted_prefix_stay_masked)
{
    struct bytes in = {0};
    struct ws_reader r;
    struct ws_event ev;
    uint8_t *copy;

    add_str(&in, FIN | WS_OP_TEXT, "abc\xff" "def");
    copy = malloc(in.len);
    cr_assert_not_null(copy);
    memcpy(copy, in.p, in.len);
    ws_reader_init(&r, 0, false, true);
    cr_assert_eq(ws_reader_feed(&r, in.p, in.len, &ev), 6 + 3);
    cr_assert_eq(ev.type, WS_EV_DATA);
    cr_assert_eq(ev.len, 3);
    cr_assert(ev.first && !ev.fin);
    cr_assert_eq(memcmp(in.p + 9, copy + 9, in.len - 9), 0, "unconsumed bytes untouched");
    cr_assert_eq(ws_reader_feed(&r, in.p + 9, in.len - 9, &ev), 1);
    cr_assert_eq(ev.type, WS_EV_ERROR);
    cr_assert_eq(ev.close_code, WS_CLOSE_INVALID_DATA);
    free(copy);
    bytes_free(&in);
}

/* ---- limits ---- */

Test(ws_frame, rejects_frame_over_max_message_size_before_payload)
{
    struct cfg c = {10, false, true};
    struct bytes in = {0};

    add_str(&in, FIN | WS_OP_BINARY, "0123456789");
    add_str(&in, FIN | WS_OP_TEXT, "0123456789A");
    expect_all(&c, &in, "B:0123456789;E1009@18;");
}

Test(ws_frame, rejects_message_whose_fragments_add_up_over_the_limit)
{
    struct cfg c = {10, false, true};
    struct bytes in = {0};

    add_str(&in, WS_OP_TEXT, "01234");
    add_str(&in, FIN | WS_OP_PING, "control frames do not count");
    add_str(&in, WS_OP_CONT, "5678");
    add_str(&in, WS_OP_CONT, "9");
    add_str(&in, FIN | WS_OP_CONT, "A");
    expect_all(&c, &in, "PING:control frames do not count;T~:0123456789;E1009@63;");
}

Test(ws_frame, message_limit_restarts_with_each_message)
{
    struct cfg c = {4, false, true};
    struct bytes in = {0};

    add_str(&in, WS_OP_BINARY, "ab");
    add_str(&in, FIN | WS_OP_CONT, "cd");
    add_str(&in, WS_OP_BINARY, "ef");
    add_str(&in, FIN | WS_OP_CONT, "gh");
    expect_all(&c, &in, "B:abcd;B:efgh;");
}

#define MIB16 (16u << 20)

Test(ws_frame, declared_16_mib_length_is_checked_against_the_limit)
{
    struct cfg c = {MIB16, false, true};
    struct bytes in = {0};

    add_raw_header(&in, FIN | WS_OP_BINARY, 64, MIB16 + 1);
    expect_all(&c, &in, "E1009@10;");
    add_raw_header(&in, WS_OP_BINARY, 64, UINT64_MAX >> 1);
    expect_all(&c, &in, "E1009@10;");
    add_raw_header(&in, FIN | WS_OP_BINARY, 64, MIB16);
    expect_all(&c, &in, ""); /* the whole header, no payload yet: no event, no error */
    add_raw_header(&in, WS_OP_TEXT, 64, MIB16);
    bytes_add(&in, "\x56", 1); /* 'a' masked with key0[0] */
    expect_all(&c, &in, "T+:a;");
}

Test(ws_frame, accepts_16_mib_message_and_rejects_one_byte_more)
{
    struct cfg c = {MIB16, false, true};
    uint8_t *p = malloc(MIB16 + 1);
    struct bytes in = {0}, ex = {0};

    cr_assert_not_null(p);
    for (size_t i = 0; i <= MIB16; i++)
        p[i] = (uint8_t)(i ^ (i >> 8));
    add_frame(&in, WS_OP_BINARY, p, MIB16 / 2);
    add_frame(&in, FIN | WS_OP_CONT, p + MIB16 / 2, MIB16 / 2);
    tr_message(&ex, WS_OP_BINARY, false, "", p, MIB16);
    for (int mode = 0; mode < 4; mode += mode == 0 ? 2 : 1) {
        char *got = run_feed(&c, in.p, in.len, mode);

        cr_assert_str_eq(got, bytes_str(&ex));
        free(got);
    }
    bytes_free(&in);
    add_frame(&in, WS_OP_BINARY, p, MIB16 / 2);
    add_frame(&in, FIN | WS_OP_CONT, p + MIB16 / 2, MIB16 / 2 + 1);
    ex.len = 0;
    tr_message(&ex, WS_OP_BINARY, false, "~", p, MIB16 / 2);
    tr_error(&ex, WS_CLOSE_TOO_BIG, hdr_len(MIB16 / 2) + MIB16 / 2 + 10);
    for (int mode = 0; mode < 4; mode += mode == 0 ? 2 : 1) {
        char *got = run_feed(&c, in.p, in.len, mode);

        cr_assert_str_eq(got, bytes_str(&ex));
        free(got);
    }
    bytes_free(&in);
    bytes_free(&ex);
    free(p);
}

Test(ws_frame, unlimited_reader_accepts_huge_declared_length)
{
    struct bytes in = {0};

    add_raw_header(&in, FIN | WS_OP_BINARY, 64, (1ull << 63) - 1);
    bytes_add(&in, "abc", 3);
    expect_all(&server, &in, "B+:V\\x98B;");
}

/* ---- encoder ---- */

Test(ws_frame, header_encoder_uses_shortest_length_form)
{
    static const struct {
        uint64_t len;
        size_t hl;
        uint8_t b1;
    } cases[] = {
        {0, 2, 0}, {125, 2, 125}, {126, 4, 126}, {65535, 4, 126}, {65536, 10, 127},
        {1ull << 32, 10, 127},
    };

    for (size_t i = 0; i < WSD_ARRAY_LEN(cases); i++) {
        uint8_t h[14];
        size_t n = ws_frame_header(h, WS_OP_BINARY, true, false, cases[i].len, NULL);

        cr_assert_eq(n, cases[i].hl, "len %llu", (unsigned long long)cases[i].len);
        cr_assert_eq(h[0], 0x82);
        cr_assert_eq(h[1], cases[i].b1);
        if (n == 4)
            cr_assert_eq((uint64_t)(h[2] << 8 | h[3]), cases[i].len);
        for (size_t j = 0; n == 10 && j < 8; j++)
            cr_assert_eq(h[2 + j], (uint8_t)(cases[i].len >> (56 - 8 * j)));
    }
}

/* Encodes a masked header for len, feeds it and up to 300 payload bytes to a reader. */
static void round_trip(uint64_t len, uint8_t opcode, bool fin, bool rsv1)
{
    uint8_t key[4] = {0x01, 0x80, 0xfe, 0x7f};
    uint8_t frame[14 + 300];
    size_t have = (size_t)WSD_MIN(len, 300);
    size_t hl = ws_frame_header(frame, opcode, fin, rsv1, len, key);
    struct ws_reader r;
    struct ws_event ev;

    cr_assert_eq(hl, hdr_len(len < 65536 ? (size_t)len : 65536));
    cr_assert_eq(frame[0], (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode);
    for (size_t i = 0; i < have; i++)
        frame[hl + i] = (uint8_t)('a' + i % 26);
    ws_mask(frame + hl, have, key, 0);
    ws_reader_init(&r, 0, true, true);
    cr_assert_eq(ws_reader_feed(&r, frame, hl + have, &ev), hl + have);
    cr_assert_eq(ev.type, WS_EV_DATA, "len %llu", (unsigned long long)len);
    cr_assert_eq(ev.opcode, opcode);
    cr_assert_eq(ev.compressed, rsv1);
    cr_assert(ev.first);
    cr_assert_eq(ev.fin, fin && have == len);
    cr_assert_eq(ev.len, have);
    for (size_t i = 0; i < have; i++)
        cr_assert_eq(ev.data[i], (uint8_t)('a' + i % 26));
}

Test(ws_frame, header_encoder_round_trips_through_the_reader)
{
    static const uint64_t lens[] = {0, 125, 126, 65535, 65536, 1ull << 32};

    for (size_t i = 0; i < WSD_ARRAY_LEN(lens); i++) {
        round_trip(lens[i], WS_OP_TEXT, true, false);
        round_trip(lens[i], WS_OP_BINARY, false, true);
        round_trip(lens[i], WS_OP_BINARY, true, true);
    }
}

Test(ws_frame, server_header_has_no_mask)
{
    uint8_t h[14];
    uint8_t key[4] = {1, 2, 3, 4};

    cr_assert_eq(ws_frame_header(h, WS_OP_CLOSE, true, false, 2, NULL), 2);
    cr_assert_eq(h[0], 0x88);
    cr_assert_eq(h[1], 0x02);
    cr_assert_eq(ws_frame_header(h, WS_OP_PING, true, false, 2, key), 6);
    cr_assert_eq(h[1], 0x82);
    cr_assert_eq(memcmp(h + 2, key, 4), 0);
}

Test(ws_frame, mask_matches_bytewise_xor_at_every_alignment_and_offset)
{
    uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};
    uint8_t base[128], a[136], b[136];

    for (size_t i = 0; i < sizeof(base); i++)
        base[i] = (uint8_t)(i * 13 + 5);
    for (size_t align = 0; align < 8; align++) {
        for (size_t len = 0; len <= 120; len++) {
            for (uint64_t off = 0; off < 8; off++) {
                memcpy(a + align, base, len);
                memcpy(b + align, base, len);
                ws_mask(a + align, len, key, off + (1ull << 40));
                for (size_t i = 0; i < len; i++)
                    b[align + i] ^= key[(off + i) % 4];
                cr_assert_eq(memcmp(a + align, b + align, len), 0, "align %zu len %zu off %llu",
                             align, len, (unsigned long long)off);
                ws_mask(a + align, len, key, off);
                cr_assert_eq(memcmp(a + align, base, len), 0, "masking twice is identity");
            }
        }
    }
}

Test(ws_frame, close_code_validity_over_the_whole_range)
{
    for (uint32_t code = 0; code <= 70000; code++) {
        bool want = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                    (code >= 3000 && code <= 4999);

        cr_assert_eq(ws_close_code_is_valid(code), want, "code %u", code);
    }
}

Test(ws_frame, close_payload_holds_code_and_reason)
{
    uint8_t out[125];
    size_t n = ws_close_payload(out, 1001, "going away");

    cr_assert_eq(n, 12);
    cr_assert_eq(out[0], 0x03);
    cr_assert_eq(out[1], 0xe9);
    cr_assert_eq(memcmp(out + 2, "going away", 10), 0);
    cr_assert_eq(ws_close_payload(out, 4000, NULL), 2);
    cr_assert_eq(ws_close_payload(out, 4000, ""), 2);
    cr_assert_eq(ws_close_payload(out, WS_CLOSE_NO_STATUS, "ignored"), 0);
}

Test(ws_frame, close_payload_truncates_reason_on_utf8_boundary)
{
    char reason[200];
    uint8_t out[125];

    memset(reason, 'r', 122);
    strcpy(reason + 122, "\xe2\x82\xac tail"); /* the euro sign straddles byte 123 */
    cr_assert_eq(ws_close_payload(out, 1000, reason), 2 + 122);
    cr_assert(utf8_is_valid(out + 2, 122));
    memset(reason, 'r', 123);
    strcpy(reason + 123, "more");
    cr_assert_eq(ws_close_payload(out, 1000, reason), 125);
    memset(reason, 'r', 120);
    strcpy(reason + 120, "\xe2\x82\xac" "abc");
    cr_assert_eq(ws_close_payload(out, 1000, reason), 125, "ends exactly after the euro sign");
    cr_assert(utf8_is_valid(out + 2, 123));
    strcpy(reason, "ok\xff\xfe");
    cr_assert_eq(ws_close_payload(out, 1000, reason), 4, "cut before invalid bytes");
}

Test(ws_frame, close_payload_round_trips_through_the_reader)
{
    char reason[160];
    uint8_t payload[125];
    struct bytes in = {0}, ex = {0};
    size_t n;

    for (size_t i = 0; i < 50; i++)
        memcpy(reason + 3 * i, "\xe6\x97\xa5", 3);
    reason[150] = 0;
    n = ws_close_payload(payload, 4001, reason);
    cr_assert_eq(n, 2 + 123, "41 whole characters");
    cr_assert_eq(memcmp(payload + 2, reason, 123), 0);
    add_frame(&in, FIN | WS_OP_CLOSE, payload, n);
    tr_close(&ex, 4001, (const uint8_t *)reason, 123);
    expect_all(&server, &in, bytes_str(&ex));
    bytes_free(&ex);
}

/*
 * The worker shares one reader between its connections and copies it into a connection
 * only when a read ends inside a frame: that is sound only if ws_reader_is_idle() is true
 * exactly at message boundaries, where a fresh reader would behave the same.
 */
Test(ws_frame, reader_is_idle_exactly_between_messages)
{
    struct bytes in = {0};
    struct ws_reader r;
    struct ws_event ev;
    /* idle only after a frame that ends outside a message */
    add_str(&in, FIN | WS_OP_TEXT, "ab"); /* 8 bytes: idle after the last */
    add_str(&in, WS_OP_BINARY, "c");      /* 7: opens a message, never idle */
    add_str(&in, FIN | WS_OP_PING, "");   /* 6: a control frame inside the message */
    add_str(&in, FIN | WS_OP_CONT, "d");  /* 7: idle after the last */
    add_str(&in, FIN | WS_OP_PONG, "");   /* 6: idle after the last */
    size_t ends[] = {8, 8 + 7 + 6 + 7, 8 + 7 + 6 + 7 + 6};
    ws_reader_init(&r, 0, false, true);
    cr_assert(ws_reader_is_idle(&r));
    size_t e = 0;
    for (size_t i = 0; i < in.len; i++) {
        size_t used = ws_reader_feed(&r, in.p + i, 1, &ev);
        cr_assert_eq(used, 1);
        bool at_end = e < sizeof(ends) / sizeof(ends[0]) && i + 1 == ends[e];
        cr_assert_eq(ws_reader_is_idle(&r), at_end, "after byte %zu", i);
        e += at_end;
    }
    cr_assert_eq(e, 3);
    uint8_t bad[2] = {0x83, 0x80};
    cr_assert_eq(ws_reader_feed(&r, bad, 2, &ev), 1);
    cr_assert_eq(ev.type, WS_EV_ERROR);
    cr_assert_not(ws_reader_is_idle(&r), "a failed reader is not idle");
    bytes_free(&in);
}

/* What the worker does: a fresh reader at every boundary, a copy carried across reads
   that end inside a frame. The transcript must be the one reader's. */
Test(ws_frame, fresh_reader_at_boundaries_and_copies_inside_frames_match_one_reader)
{
    struct bytes in = {0};
    add_str(&in, FIN | WS_OP_TEXT, "hello");
    add_str(&in, WS_OP_TEXT, "fra");
    add_str(&in, FIN | WS_OP_PING, "p");
    add_str(&in, FIN | WS_OP_CONT, "gment");
    add_str(&in, FIN | WS_OP_BINARY, "");
    add_close(&in, 1000, "bye");
    char *one = run_feed(&server, in.p, in.len, 0);
    for (size_t step = 1; step <= 9; step++) {
        struct bytes t = {0}, buf = {0};
        struct ws_reader shared, own;
        bool live = false;
        bytes_add(&buf, in.p, in.len); /* the reader unmasks in place */
        ws_reader_init(&shared, 0, false, true);
        for (size_t off = 0; off < in.len;) {
            size_t n = WSD_MIN(step, in.len - off);
            struct ws_reader *r = live ? &own : &shared;
            size_t pos = off;
            while (pos < off + n) {
                struct ws_event ev;
                pos += ws_reader_feed(r, buf.p + pos, off + n - pos, &ev);
                if (ev.type == WS_EV_DATA && ev.fin)
                    bytes_printf(&t, "D%u;", ev.opcode);
                else if (ev.type == WS_EV_CONTROL)
                    bytes_printf(&t, "C%u;", ev.opcode);
                cr_assert_neq(ev.type, WS_EV_ERROR, "step %zu pos %zu: %s", step, pos, ev.error);
            }
            off += n;
            if (live && ws_reader_is_idle(&own)) {
                live = false;
            } else if (!live && !ws_reader_is_idle(&shared)) {
                own = shared;
                live = true;
                ws_reader_init(&shared, 0, false, true);
            }
        }
        cr_assert_str_eq(bytes_str(&t), "D1;C9;D1;D2;C8;", "step %zu", step);
        bytes_free(&t);
        bytes_free(&buf);
    }
    cr_assert_str_eq(one, "T:hello;PING:p;T:fragment;B:;CLOSE:1000:bye;");
    free(one);
    bytes_free(&in);
}
