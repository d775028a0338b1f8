/*
 * utf8.c - streaming UTF-8 validation as a shift-based DFA.
 *
 * Every byte maps to one 64-bit row; a state is a bit offset (a multiple of 6) into the row,
 * and the 6 bits found there are the next state: next = (row[byte] >> state) & 63. One table
 * load and one shift per byte. The states accept exactly the well-formed sequences of
 * RFC 3629 table 3-7, so a sequence fails at its first impossible byte: C0 and C1 at once,
 * E0 80 (overlong) at the 80, ED A0 (surrogate) at the A0, F4 90 (above U+10FFFF) at the 90.
 *
 * At a character boundary, runs of ASCII are skipped 16 and 8 bytes at a time.
 */
#include "proto/utf8.h"

#include "core/wsd.h"

#include <string.h>

/* DFA states: bit offsets into a row. */
#define U8_ACC 0u  /* at a character boundary */
#define U8_REJ 6u  /* failed (absorbing) */
#define U8_C1 12u  /* one more continuation byte 80..BF */
#define U8_C2 18u  /* two more, the next one 80..BF */
#define U8_C3 24u  /* three more, the next one 80..BF */
#define U8_E0 30u  /* after E0: A0..BF (no overlong 3-byte forms) */
#define U8_ED 36u  /* after ED: 80..9F (no surrogates) */
#define U8_F0 42u  /* after F0: 90..BF (no overlong 4-byte forms) */
#define U8_F4 48u  /* after F4: 80..8F (nothing above U+10FFFF) */

#define U8_T(from, to) ((uint64_t)(to) << (from))

/* A row: the next state from each state, in the order of the state list above. */
#define U8_ROW(acc, c1, c2, c3, e0, ed, f0, f4)                                                \
    (U8_T(U8_ACC, acc) | U8_T(U8_REJ, U8_REJ) | U8_T(U8_C1, c1) | U8_T(U8_C2, c2) |          \
     U8_T(U8_C3, c3) | U8_T(U8_E0, e0) | U8_T(U8_ED, ed) | U8_T(U8_F0, f0) | U8_T(U8_F4, f4))

#define U8_R U8_REJ
/* 00..7F */
#define AS U8_ROW(U8_ACC, U8_R, U8_R, U8_R, U8_R, U8_R, U8_R, U8_R)
/* continuation bytes 80..8F, 90..9F, A0..BF */
#define K8 U8_ROW(U8_R, U8_ACC, U8_C1, U8_C2, U8_R, U8_C1, U8_R, U8_C2)
#define K9 U8_ROW(U8_R, U8_ACC, U8_C1, U8_C2, U8_R, U8_C1, U8_C2, U8_R)
#define KA U8_ROW(U8_R, U8_ACC, U8_C1, U8_C2, U8_C1, U8_R, U8_C2, U8_R)
/* never valid: C0, C1, F5..FF */
#define XX U8_ROW(U8_R, U8_R, U8_R, U8_R, U8_R, U8_R, U8_R, U8_R)
/* lead bytes */
#define L2 U8_ROW(U8_C1, U8_R, U8_R, U8_R, U8_R, U8_R, U8_R, U8_R) /* C2..DF */
#define LE U8_ROW(U8_E0, U8_R, U8_R, U8_R, U8_R, U8_R, U8_R, U8_R) /* E0 */
#define L3 U8_ROW(U8_C2, U8_R, U8_R, U8_R, U8_R, U8_R, U8_R, U8_R) /* E1..EC, EE, EF */
#define LD U8_ROW(U8_ED, U8_R, U8_R, U8_R, U8_R, U8_R, U8_R, U8_R) /* ED */
#define LF U8_ROW(U8_F0, U8_R, U8_R, U8_R, U8_R, U8_R, U8_R, U8_R) /* F0 */
#define L4 U8_ROW(U8_C3, U8_R, U8_R, U8_R, U8_R, U8_R, U8_R, U8_R) /* F1..F3 */
#define LG U8_ROW(U8_F4, U8_R, U8_R, U8_R, U8_R, U8_R, U8_R, U8_R) /* F4 */

#define U8_X16(r) r, r, r, r, r, r, r, r, r, r, r, r, r, r, r, r

static const uint64_t utf8_dfa[256] = {
    U8_X16(AS), U8_X16(AS), U8_X16(AS), U8_X16(AS), /* 00..3F */
    U8_X16(AS), U8_X16(AS), U8_X16(AS), U8_X16(AS), /* 40..7F */
    U8_X16(K8),                                     /* 80..8F */
    U8_X16(K9),                                     /* 90..9F */
    U8_X16(KA), U8_X16(KA),                         /* A0..BF */
    XX, XX, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, /* C0..CF */
    L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, /* D0..DF */
    LE, L3, L3, L3, L3, L3, L3, L3, L3, L3, L3, L3, L3, LD, L3, L3, /* E0..EF */
    LF, L4, L4, L4, LG, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* F0..FF */
};

#undef AS
#undef K8
#undef K9
#undef KA
#undef XX
#undef L2
#undef LE
#undef L3
#undef LD
#undef LF
#undef L4
#undef LG

#define U8_HIGH_BITS 0x8080808080808080ull
#define U8_BLOCK 16

/* Returns the length of the leading run of ASCII bytes in p[0..len). */
static size_t utf8_ascii_run(const uint8_t *p, size_t len)
{
    size_t i = 0;
    uint64_t a, b;

    while (i + 16 <= len) {
        memcpy(&a, p + i, 8);
        memcpy(&b, p + i + 8, 8);
        if ((a | b) & U8_HIGH_BITS)
            break;
        i += 16;
    }
    while (i + 8 <= len) {
        memcpy(&a, p + i, 8);
        if (a & U8_HIGH_BITS)
            break;
        i += 8;
    }
    while (i < len && p[i] < 0x80)
        i++;
    return i;
}

void utf8_init(struct utf8_state *s)
{
    s->state = U8_ACC;
}

int utf8_feed(struct utf8_state *s, const uint8_t *p, size_t len)
{
    uint64_t st = s->state;
    size_t i = 0;

    if (st == U8_REJ)
        return WSD_EUTF8;
    while (i < len) {
        size_t end;

        if (st == U8_ACC) {
            i += utf8_ascii_run(p + i, len - i);
            if (i == len)
                break;
        }
        /* Up to U8_BLOCK bytes without branches: the shift only uses the low 6 bits of
         * st, and the reject state absorbs, so checking once per block is enough. */
        end = i + WSD_MIN(len - i, (size_t)U8_BLOCK);
        for (; i < end; i++)
            st = utf8_dfa[p[i]] >> (st & 63);
        st &= 63;
        if (WSD_UNLIKELY(st == U8_REJ)) {
            s->state = U8_REJ;
            return WSD_EUTF8;
        }
    }
    s->state = (uint32_t)st;
    return 0;
}

bool utf8_is_complete(const struct utf8_state *s)
{
    return s->state == U8_ACC;
}

bool utf8_is_valid(const uint8_t *p, size_t len)
{
    struct utf8_state s;

    utf8_init(&s);
    return utf8_feed(&s, p, len) == 0 && utf8_is_complete(&s);
}
