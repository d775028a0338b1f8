/*
 * inflate.c - fuzz target for proto/deflate.c streams.
 *
 * The first byte picks the parameters: bit 0 client_no_context_takeover, bits 1-3 the
 * client window (8 + n), bits 4-5 the message limit, bits 6-7 how the payload is split into
 * chunks. The rest is inflated twice as two messages of one connection, checking the
 * status and the output bound; then it is compressed as two messages (server parameters
 * from the same byte) and inflated back, which must give it unchanged.
 */
#include "proto/deflate.h"
#include "core/buf.h"
#include "core/wsd.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const size_t fuzz_limits[4] = {0, 100, 4096, 1u << 20};

/* Size of the next chunk: whole, single bytes, 7 bytes, or 1..23 bytes as the data says. */
static size_t fuzz_chunk(unsigned mode, const uint8_t *p, size_t left)
{
    size_t n = left;
    if (left == 0)
        return 0;
    if (mode == 1)
        n = 1;
    else if (mode == 2)
        n = 7;
    else if (mode == 3)
        n = 1 + (size_t)(p[0] % 23);
    return WSD_MIN(n, left);
}

static int fuzz_inflate_msg(struct pmd_stream *s, const uint8_t *p, size_t len,
                            unsigned mode, struct buf *out, size_t limit)
{
    size_t off = 0;
    for (;;) {
        size_t n = fuzz_chunk(mode, p + off, len - off);
        bool fin = off + n == len;
        int rc = pmd_inflate(s, p + off, n, fin, out, limit);
        if (rc < 0 || fin)
            return rc;
        off += n;
    }
}

/* Arbitrary data as compressed payload: any status but a bounded buffer. */
static void fuzz_arbitrary(uint8_t cfg, const uint8_t *p, size_t len)
{
    struct pmd_params params = {
        .client_no_context_takeover = cfg & 1,
        .client_max_window_bits = 8 + ((cfg >> 1) & 7),
        .server_max_window_bits = 15,
    };
    size_t limit = fuzz_limits[(cfg >> 4) & 3];
    struct pmd_stream s;
    pmd_stream_init(&s, &params, 1, 8);
    for (int msg = 0; msg < 2; msg++) {
        struct buf out;
        buf_init(&out);
        int rc = fuzz_inflate_msg(&s, p, len, cfg >> 6, &out, limit);
        if (rc != 0 && rc != WSD_EINVAL && rc != WSD_ETOOBIG)
            abort();
        if (out.cap > limit + 1 || out.len > limit + (rc == WSD_ETOOBIG))
            abort();
        buf_fini(&out);
    }
    pmd_stream_fini(&s);
}

/* The data as a message: deflated then inflated back, twice on the same streams. */
static void fuzz_round_trip(uint8_t cfg, const uint8_t *p, size_t len)
{
    struct pmd_params params = {
        .server_no_context_takeover = cfg & 1,
        .server_max_window_bits = 9 + ((cfg >> 1) & 7) % 7,
        .client_max_window_bits = 15,
    };
    struct pmd_params peer = {
        .client_no_context_takeover = params.server_no_context_takeover,
        .client_max_window_bits = params.server_max_window_bits,
        .server_max_window_bits = 15,
    };
    struct pmd_stream tx, rx;
    pmd_stream_init(&tx, &params, (cfg >> 4) % 10, 1 + (cfg >> 5));
    pmd_stream_init(&rx, &peer, 1, 8);
    for (int msg = 0; msg < 2; msg++) {
        struct buf z, out;
        buf_init(&z);
        buf_init(&out);
        if (pmd_deflate(&tx, p, len, &z) != 0 || z.len == 0)
            abort();
        if (fuzz_inflate_msg(&rx, z.data, z.len, cfg >> 6, &out, len) != 0)
            abort();
        if (out.len != len || (len > 0 && memcmp(out.data, p, len) != 0))
            abort();
        buf_fini(&z);
        buf_fini(&out);
    }
    pmd_stream_fini(&tx);
    pmd_stream_fini(&rx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    fuzz_arbitrary(data[0], data + 1, size - 1);
    fuzz_round_trip(data[0], data + 1, size - 1);
    return 0;
}
