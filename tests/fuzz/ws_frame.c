/*
 * ws_frame.c - libFuzzer target for the RFC 6455 frame reader.
 *
 * The first input byte picks a split point; the rest is the client's byte stream. For
 * each of two reader configurations (a server with no size limit, and a lenient reader
 * with permessage-deflate and a 300-byte limit) the stream is fed whole and then as two
 * separately allocated chunks. Both feedings must produce the same digest of events
 * (DATA joined per message, so chunking does not matter; errors with their stream
 * position), and every event must keep the reader's promises: progress on each call,
 * views inside the buffer, first/fin bracketing, control payloads of at most 125 bytes,
 * valid UTF-8 in close reasons and complete uncompressed text messages, sticky errors.
 */
#include "proto/ws_frame.h"

#include "proto/utf8.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(cond)                                                                   \
    do {                                                                                 \
        if (!(cond))                                                                     \
            abort();                                                                     \
    } while (0)

struct fz_cfg {
    uint64_t max;
    bool rsv1;
    bool mask;
};

struct fz_run {
    struct ws_reader r;
    uint64_t digest;
    uint8_t *msg; /* the open message's bytes so far */
    size_t msg_len;
    size_t msg_cap;
    bool in_msg;
    uint8_t op;
    bool compressed;
    bool failed;
    size_t pos;
};

static void fz_mix(struct fz_run *x, const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < n; i++)
        x->digest = (x->digest ^ b[i]) * 0x100000001b3ull;
}

static void fz_mix_u64(struct fz_run *x, uint64_t v)
{
    fz_mix(x, &v, sizeof(v));
}

static void fz_msg_add(struct fz_run *x, const uint8_t *p, size_t n)
{
    if (x->msg_len + n > x->msg_cap) {
        size_t cap = x->msg_cap * 2 + n + 64;

        x->msg = realloc(x->msg, cap);
        FZ_CHECK(x->msg != NULL);
        x->msg_cap = cap;
    }
    if (n > 0)
        memcpy(x->msg + x->msg_len, p, n);
    x->msg_len += n;
}

/* Folds the open message into the digest; kind tells how it ended. */
static void fz_msg_end(struct fz_run *x, uint8_t kind)
{
    fz_mix_u64(x, kind);
    fz_mix_u64(x, x->op);
    fz_mix_u64(x, x->compressed);
    fz_mix_u64(x, x->msg_len);
    fz_mix(x, x->msg, x->msg_len);
    x->in_msg = false;
    x->msg_len = 0;
}

static void fz_data(struct fz_run *x, const struct ws_event *ev)
{
    FZ_CHECK(ev->first == !x->in_msg);
    FZ_CHECK(ev->opcode == WS_OP_TEXT || ev->opcode == WS_OP_BINARY);
    if (ev->first) {
        x->in_msg = true;
        x->op = ev->opcode;
        x->compressed = ev->compressed;
    }
    FZ_CHECK(ev->opcode == x->op && ev->compressed == x->compressed);
    FZ_CHECK(!ev->compressed || x->r.allow_rsv1);
    fz_msg_add(x, ev->data, ev->len);
    if (x->r.max_message_size != 0)
        FZ_CHECK(x->msg_len <= x->r.max_message_size);
    if (!ev->fin)
        return;
    if (x->op == WS_OP_TEXT && !x->compressed)
        FZ_CHECK(utf8_is_valid(x->msg, x->msg_len));
    fz_msg_end(x, 'M');
}

static void fz_control(struct fz_run *x, const struct ws_event *ev)
{
    FZ_CHECK(ev->len <= 125);
    FZ_CHECK(ev->opcode == WS_OP_PING || ev->opcode == WS_OP_PONG ||
             ev->opcode == WS_OP_CLOSE);
    fz_mix_u64(x, 'C');
    fz_mix_u64(x, ev->opcode);
    fz_mix_u64(x, ev->len);
    fz_mix(x, ev->data, ev->len);
    if (ev->opcode != WS_OP_CLOSE)
        return;
    FZ_CHECK(ev->len != 1);
    if (ev->len == 0) {
        FZ_CHECK(ev->close_code == WS_CLOSE_NO_STATUS && ev->reason_len == 0);
        return;
    }
    FZ_CHECK(ws_close_code_is_valid(ev->close_code));
    FZ_CHECK(ev->close_code == (ev->data[0] << 8 | ev->data[1]));
    FZ_CHECK(ev->reason == ev->data + 2 && ev->reason_len == ev->len - 2);
    FZ_CHECK(utf8_is_valid(ev->reason, ev->reason_len));
}

static void fz_error(struct fz_run *x, const struct ws_event *ev)
{
    struct ws_event again;
    uint8_t more[2] = {0x82, 0x80};

    FZ_CHECK(ev->error != NULL);
    FZ_CHECK(ev->close_code == WS_CLOSE_PROTOCOL || ev->close_code == WS_CLOSE_INVALID_DATA ||
             ev->close_code == WS_CLOSE_TOO_BIG);
    if (x->in_msg)
        fz_msg_end(x, 'P');
    fz_mix_u64(x, 'E');
    fz_mix_u64(x, ev->close_code);
    fz_mix_u64(x, x->pos);
    x->failed = true;
    FZ_CHECK(ws_reader_feed(&x->r, more, sizeof(more), &again) == 0);
    FZ_CHECK(again.type == WS_EV_ERROR && again.close_code == ev->close_code);
}

/* Feeds src[0..n) as one separately allocated chunk. */
static void fz_chunk(struct fz_run *x, const uint8_t *src, size_t n)
{
    uint8_t *chunk = malloc(n ? n : 1);
    size_t off = 0;

    FZ_CHECK(chunk != NULL);
    memcpy(chunk, src, n);
    while (off < n && !x->failed) {
        struct ws_event ev;
        size_t used = ws_reader_feed(&x->r, chunk + off, n - off, &ev);

        FZ_CHECK(used >= 1 && used <= n - off);
        off += used;
        x->pos += used;
        if (ev.type == WS_EV_DATA) {
            FZ_CHECK(ev.data >= chunk && ev.data + ev.len <= chunk + off);
            fz_data(x, &ev);
        } else if (ev.type == WS_EV_CONTROL) {
            fz_control(x, &ev);
        } else if (ev.type == WS_EV_ERROR) {
            fz_error(x, &ev);
        } else {
            FZ_CHECK(ev.type == WS_EV_NONE && off == n);
        }
    }
    free(chunk);
}

/* Feeds the stream cut at split (split == n: whole) and returns the event digest. */
static uint64_t fz_feed(const struct fz_cfg *c, const uint8_t *in, size_t n, size_t split)
{
    struct fz_run x;

    memset(&x, 0, sizeof(x));
    x.digest = 0xcbf29ce484222325ull;
    ws_reader_init(&x.r, c->max, c->rsv1, c->mask);
    fz_chunk(&x, in, split);
    if (!x.failed)
        fz_chunk(&x, in + split, n - split);
    if (x.in_msg)
        fz_msg_end(&x, 'O');
    free(x.msg);
    return x.digest;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct fz_cfg cfgs[] = {{0, false, true}, {300, true, false}};
    size_t n, split;

    if (size == 0)
        return 0;
    n = size - 1;
    split = (size_t)data[0] * n / 255;
    for (size_t i = 0; i < sizeof(cfgs) / sizeof(cfgs[0]); i++)
        FZ_CHECK(fz_feed(&cfgs[i], data + 1, n, n) == fz_feed(&cfgs[i], data + 1, n, split));
    return 0;
}
