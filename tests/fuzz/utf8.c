/*
 * utf8.c - libFuzzer target for the streaming UTF-8 validator.
 *
 * The input is the text. Two references written here, independent of the DFA, decide it:
 * a plain code point decoder (is the whole input valid?) and a prefix check (at which
 * byte does the input stop being the start of any valid text?). The validator must agree
 * with both when fed whole (utf8_is_valid), byte by byte, and in several pseudo-random
 * splits: it fails in the chunk that holds the first impossible byte and not before, and
 * ends complete exactly when the input is valid.
 */
#include "proto/utf8.h"

#include "core/wsd.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(cond)                                                                   \
    do {                                                                                 \
        if (!(cond))                                                                     \
            abort();                                                                     \
    } while (0)

#define FZ_NONE ((size_t)-1)

/* Decodes code point by code point; true when p[0..n) is valid, complete UTF-8. */
static bool ref_decode(const uint8_t *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t b = p[i];
        size_t len;
        uint32_t cp;

        if (b < 0x80) {
            i++;
            continue;
        }
        if (b >= 0xc0 && b < 0xe0)
            len = 2, cp = b & 0x1fu;
        else if (b >= 0xe0 && b < 0xf0)
            len = 3, cp = b & 0x0fu;
        else if (b >= 0xf0 && b < 0xf8)
            len = 4, cp = b & 0x07u;
        else
            return false;
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3fu);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
            return false; /* overlong */
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

/*
 * Index of the first byte after which no completion is valid: the code points an open
 * sequence can still become form an interval, which must meet the scalar values of its
 * length. FZ_NONE when there is none; *open tells whether a sequence is left open.
 */
static size_t ref_fail_at(const uint8_t *p, size_t n, bool *open)
{
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t need = 0, len = 0, have = 0;
    uint32_t bits = 0;

    for (size_t i = 0; i < n; i++) {
        uint8_t b = p[i];
        uint32_t lo, hi, free_bits;

        if (need == 0) {
            if (b < 0x80)
                continue;
            if ((b & 0xe0) == 0xc0)
                len = 2, bits = b & 0x1fu;
            else if ((b & 0xf0) == 0xe0)
                len = 3, bits = b & 0x0fu;
            else if ((b & 0xf8) == 0xf0)
                len = 4, bits = b & 0x07u;
            else
                return i;
            have = 1;
            need = len - 1;
        } else {
            if ((b & 0xc0) != 0x80)
                return i;
            bits = bits << 6 | (b & 0x3fu);
            have++;
            need--;
        }
        free_bits = (uint32_t)(6 * (len - have));
        lo = bits << free_bits;
        hi = lo | ((1u << free_bits) - 1);
        lo = lo < min_cp[len] ? min_cp[len] : lo;
        hi = hi > 0x10ffff ? 0x10ffff : hi;
        if (lo > hi || (lo >= 0xd800 && hi <= 0xdfff))
            return i;
    }
    *open = need != 0;
    return FZ_NONE;
}

static uint64_t fz_rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Feeds p in chunks from the seed (seed 0: one byte at a time) and checks the outcome. */
static void fz_check_split(const uint8_t *p, size_t n, uint64_t seed, size_t fail_at, bool valid)
{
    struct utf8_state s;
    size_t off = 0;

    utf8_init(&s);
    while (off < n) {
        size_t k = seed == 0 ? 1 : (size_t)(fz_rng(&seed) % 17);
        int rc;

        k = WSD_MIN(k, n - off);
        rc = utf8_feed(&s, p + off, k);
        if (fail_at != FZ_NONE && fail_at < off + k) {
            FZ_CHECK(rc == WSD_EUTF8 && fail_at >= off);
            FZ_CHECK(utf8_feed(&s, (const uint8_t *)"a", 1) == WSD_EUTF8);
            FZ_CHECK(!utf8_is_complete(&s));
            return;
        }
        FZ_CHECK(rc == 0);
        off += k;
    }
    FZ_CHECK(utf8_is_complete(&s) == valid);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool open = false;
    size_t fail_at = ref_fail_at(data, size, &open);
    bool valid = ref_decode(data, size);
    uint64_t seed = 0x9e3779b97f4a7c15ull ^ size;

    FZ_CHECK(valid == (fail_at == FZ_NONE && !open));
    FZ_CHECK(utf8_is_valid(data, size) == valid);
    for (size_t i = 0; i < size && i < 16; i++)
        seed = (seed ^ data[i]) * 0x100000001b3ull;
    fz_check_split(data, size, 0, fail_at, valid);
    for (int round = 0; round < 4; round++) {
        fz_rng(&seed);
        fz_check_split(data, size, seed | 1, fail_at, valid);
    }
    return 0;
}
