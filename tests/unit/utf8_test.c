/*
 * utf8_test.c - the streaming UTF-8 validator: Markus Kuhn's decoder stress cases, every
 * split point, fail-fast positions, and exhaustive comparison with a reference decoder.
 */
#include "proto/utf8.h"

#include "core/wsd.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#define FAIL_NONE ((size_t)-1)

/* Expected outcome: fail_at is the index of the first impossible byte, or FAIL_NONE. */
struct u8_case {
    const char *name;
    const char *bytes;
    size_t len;
    bool valid;
    size_t fail_at;
};

#define OK(name, s) { name, s, sizeof(s) - 1, true, FAIL_NONE }
#define PART(name, s) { name, s, sizeof(s) - 1, false, FAIL_NONE }
#define BAD(name, s, at) { name, s, sizeof(s) - 1, false, at }

/* Markus Kuhn, "UTF-8 decoder capability and stress test", sections 1 to 5. */
static const struct u8_case kuhn_cases[] = {
    OK("1 kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"),
    /* 2.1 first possible sequence of a certain length */
    OK("2.1.1 U+0000", "\x00"),
    OK("2.1.2 U+0080", "\xc2\x80"),
    OK("2.1.3 U+0800", "\xe0\xa0\x80"),
    OK("2.1.4 U+10000", "\xf0\x90\x80\x80"),
    BAD("2.1.5 5 bytes", "\xf8\x88\x80\x80\x80", 0),
    BAD("2.1.6 6 bytes", "\xfc\x84\x80\x80\x80\x80", 0),
    /* 2.2 last possible sequence of a certain length */
    OK("2.2.1 U+007F", "\x7f"),
    OK("2.2.2 U+07FF", "\xdf\xbf"),
    OK("2.2.3 U+FFFF", "\xef\xbf\xbf"),
    BAD("2.2.4 U+1FFFFF", "\xf7\xbf\xbf\xbf", 0),
    BAD("2.2.5 5 bytes", "\xfb\xbf\xbf\xbf\xbf", 0),
    BAD("2.2.6 6 bytes", "\xfd\xbf\xbf\xbf\xbf\xbf", 0),
    /* 2.3 other boundary conditions */
    OK("2.3.1 U+D7FF", "\xed\x9f\xbf"),
    OK("2.3.2 U+E000", "\xee\x80\x80"),
    OK("2.3.3 U+FFFD", "\xef\xbf\xbd"),
    OK("2.3.4 U+10FFFF", "\xf4\x8f\xbf\xbf"),
    BAD("2.3.5 U+110000", "\xf4\x90\x80\x80", 1),
    /* 3.1 unexpected continuation bytes */
    BAD("3.1.1 80", "\x80", 0),
    BAD("3.1.2 bf", "\xbf", 0),
    BAD("3.1.3 2 continuations", "\x80\xbf", 0),
    BAD("3.1.4 3 continuations", "\x80\xbf\x80", 0),
    BAD("3.1.8 7 continuations", "\x80\xbf\x80\xbf\x80\xbf\x80", 0),
    BAD("3.1 after ascii", "abc\x80", 3),
    BAD("3.1 after a character", "\xc2\x80\x80", 2),
    /* 3.2 lonely start characters followed by a space */
    BAD("3.2.1 c0 space", "\xc0\x20", 0),
    BAD("3.2.1 c2 space", "\xc2\x20", 1),
    BAD("3.2.1 df space", "\xdf\x20", 1),
    BAD("3.2.2 e0 space", "\xe0\x20", 1),
    BAD("3.2.2 ef space", "\xef\x20", 1),
    BAD("3.2.3 f0 space", "\xf0\x20", 1),
    BAD("3.2.3 f7 space", "\xf7\x20", 0),
    BAD("3.2.4 f8 space", "\xf8\x20", 0),
    BAD("3.2.5 fc space", "\xfc\x20", 0),
    /* 3.3 sequences with the last continuation byte missing (input ends there) */
    BAD("3.3.1 c0", "\xc0", 0),
    BAD("3.3.2 e0 80", "\xe0\x80", 1),
    BAD("3.3.3 f0 80 80", "\xf0\x80\x80", 1),
    BAD("3.3.4 f8 80 80 80", "\xf8\x80\x80\x80", 0),
    BAD("3.3.5 fc 80 80 80 80", "\xfc\x80\x80\x80\x80", 0),
    PART("3.3.6 df", "\xdf"),
    PART("3.3.7 ef bf", "\xef\xbf"),
    BAD("3.3.8 f7 bf bf", "\xf7\xbf\xbf", 0),
    PART("3.3 f4 8f bf", "\xf4\x8f\xbf"),
    PART("3.3 e0 a0", "\xe0\xa0"),
    PART("3.3 f0 90", "\xf0\x90"),
    /* 3.4 concatenation of incomplete sequences */
    BAD("3.4 concatenated", "\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80", 0),
    BAD("3.4 df ef bf", "\xdf\xef\xbf", 1),
    /* 3.5 impossible bytes */
    BAD("3.5.1 fe", "\xfe", 0),
    BAD("3.5.2 ff", "\xff", 0),
    BAD("3.5.3 fe fe ff ff", "\xfe\xfe\xff\xff", 0),
    /* 4.1 overlong slash */
    BAD("4.1.1 c0 af", "\xc0\xaf", 0),
    BAD("4.1.2 e0 80 af", "\xe0\x80\xaf", 1),
    BAD("4.1.3 f0 80 80 af", "\xf0\x80\x80\xaf", 1),
    BAD("4.1.4 f8 80 80 80 af", "\xf8\x80\x80\x80\xaf", 0),
    BAD("4.1.5 fc 80 80 80 80 af", "\xfc\x80\x80\x80\x80\xaf", 0),
    /* 4.2 maximum overlong sequences */
    BAD("4.2.1 c1 bf", "\xc1\xbf", 0),
    BAD("4.2.2 e0 9f bf", "\xe0\x9f\xbf", 1),
    BAD("4.2.3 f0 8f bf bf", "\xf0\x8f\xbf\xbf", 1),
    BAD("4.2.4 f8 87 bf bf bf", "\xf8\x87\xbf\xbf\xbf", 0),
    /* 4.3 overlong NUL */
    BAD("4.3.1 c0 80", "\xc0\x80", 0),
    BAD("4.3.2 e0 80 80", "\xe0\x80\x80", 1),
    BAD("4.3.3 f0 80 80 80", "\xf0\x80\x80\x80", 1),
    /* 5.1 single UTF-16 surrogates */
    BAD("5.1.1 U+D800", "\xed\xa0\x80", 1),
    BAD("5.1.2 U+DB7F", "\xed\xad\xbf", 1),
    BAD("5.1.3 U+DB80", "\xed\xae\x80", 1),
    BAD("5.1.4 U+DBFF", "\xed\xaf\xbf", 1),
    BAD("5.1.5 U+DC00", "\xed\xb0\x80", 1),
    BAD("5.1.6 U+DF80", "\xed\xbe\x80", 1),
    BAD("5.1.7 U+DFFF", "\xed\xbf\xbf", 1),
    /* 5.2 paired UTF-16 surrogates */
    BAD("5.2.1 U+D800 U+DC00", "\xed\xa0\x80\xed\xb0\x80", 1),
    BAD("5.2.8 U+DBFF U+DFFF", "\xed\xaf\xbf\xed\xbf\xbf", 1),
    BAD("5.2 after text", "ok \xed\xa0\x80", 4),
    /* 5.3 noncharacters are valid UTF-8 */
    OK("5.3.1 U+FFFE", "\xef\xbf\xbe"),
    OK("5.3.2 U+FFFF", "\xef\xbf\xbf"),
    OK("5.3.4 U+FDD0", "\xef\xb7\x90"),
    OK("5.3.4 U+10FFFE", "\xf4\x8f\xbf\xbe"),
    /* the fail-fast positions named by the contract */
    BAD("f4 90 fails at the 90", "\xf4\x90", 1),
    BAD("ed a0 fails at the a0", "\xed\xa0", 1),
    BAD("f5 fails at once", "\xf5", 0),
    OK("mixed text", "Hello, \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x98\x80 \xc3\xa9t\xc3\xa9"),
};

/* Feeds c in the chunks given by cuts (ascending offsets) and returns the first failing chunk
 * result; *complete receives utf8_is_complete at the end. */
static int feed_cuts(const struct u8_case *c, const size_t *cuts, size_t ncuts, bool *complete)
{
    struct utf8_state s;
    size_t start = 0;
    int rc = 0;

    utf8_init(&s);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : c->len;
        int r = utf8_feed(&s, (const uint8_t *)c->bytes + start, end - start);

        if (r != 0 && rc == 0)
            rc = r;
        start = end;
    }
    *complete = utf8_is_complete(&s);
    return rc;
}

static void check_outcome(const struct u8_case *c, int rc, bool complete, const char *how)
{
    bool failed = c->fail_at != FAIL_NONE;

    cr_assert_eq(rc, failed ? WSD_EUTF8 : 0, "%s (%s): rc %d", c->name, how, rc);
    cr_assert_eq(complete, c->valid, "%s (%s): complete %d", c->name, how, complete);
}

Test(utf8, kuhn_cases_whole_buffer)
{
    for (size_t i = 0; i < WSD_ARRAY_LEN(kuhn_cases); i++) {
        const struct u8_case *c = &kuhn_cases[i];

        cr_assert_eq(utf8_is_valid((const uint8_t *)c->bytes, c->len), c->valid, "%s", c->name);
    }
}

Test(utf8, kuhn_cases_fail_at_first_impossible_byte)
{
    for (size_t i = 0; i < WSD_ARRAY_LEN(kuhn_cases); i++) {
        const struct u8_case *c = &kuhn_cases[i];
        struct utf8_state s;
        size_t at = FAIL_NONE;

        utf8_init(&s);
        for (size_t j = 0; j < c->len && at == FAIL_NONE; j++) {
            if (utf8_feed(&s, (const uint8_t *)c->bytes + j, 1) != 0)
                at = j;
        }
        cr_assert_eq(at, c->fail_at, "%s: failed at %zd, expected %zd", c->name, (ssize_t)at,
                     (ssize_t)c->fail_at);
    }
}

Test(utf8, kuhn_cases_every_split_point)
{
    for (size_t i = 0; i < WSD_ARRAY_LEN(kuhn_cases); i++) {
        const struct u8_case *c = &kuhn_cases[i];
        bool complete = false;
        size_t cuts[2];
        int rc;

        for (cuts[0] = 0; cuts[0] <= c->len; cuts[0]++) {
            rc = feed_cuts(c, cuts, 1, &complete);
            check_outcome(c, rc, complete, "one cut");
            for (cuts[1] = cuts[0]; cuts[1] <= c->len; cuts[1]++) {
                rc = feed_cuts(c, cuts, 2, &complete);
                check_outcome(c, rc, complete, "two cuts");
            }
        }
    }
}

Test(utf8, failure_is_sticky)
{
    struct utf8_state s;

    utf8_init(&s);
    cr_assert_eq(utf8_feed(&s, (const uint8_t *)"\xc0", 1), WSD_EUTF8);
    cr_assert_eq(utf8_feed(&s, (const uint8_t *)"abc", 3), WSD_EUTF8);
    cr_assert_eq(utf8_feed(&s, (const uint8_t *)"", 0), WSD_EUTF8);
    cr_assert(!utf8_is_complete(&s));
    utf8_init(&s);
    cr_assert_eq(utf8_feed(&s, (const uint8_t *)"abc", 3), 0);
    cr_assert(utf8_is_complete(&s));
}

Test(utf8, empty_input_is_valid_and_complete)
{
    struct utf8_state s;

    utf8_init(&s);
    cr_assert_eq(utf8_feed(&s, NULL, 0), 0);
    cr_assert(utf8_is_complete(&s));
    cr_assert(utf8_is_valid((const uint8_t *)"", 0));
}

/* Encodes cp (no range checks) as UTF-8 into out; returns the length. */
static size_t encode(uint32_t cp, uint8_t out[4])
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xc0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xe0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (uint8_t)(0xf0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

Test(utf8, every_scalar_value_is_valid_at_every_split_point)
{
    for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
        uint8_t b[4];
        size_t n;

        if (cp >= 0xd800 && cp <= 0xdfff)
            continue;
        n = encode(cp, b);
        for (size_t cut = 0; cut <= n; cut++) {
            struct utf8_state s;

            utf8_init(&s);
            cr_assert_eq(utf8_feed(&s, b, cut), 0, "U+%04X cut %zu", cp, cut);
            cr_assert_eq(utf8_is_complete(&s), cut == 0 || cut == n, "U+%04X cut %zu", cp, cut);
            cr_assert_eq(utf8_feed(&s, b + cut, n - cut), 0, "U+%04X cut %zu", cp, cut);
            cr_assert(utf8_is_complete(&s), "U+%04X cut %zu", cp, cut);
        }
    }
}

Test(utf8, every_surrogate_fails_at_second_byte)
{
    for (uint32_t cp = 0xd800; cp <= 0xdfff; cp++) {
        uint8_t b[4];
        struct utf8_state s;

        encode(cp, b);
        utf8_init(&s);
        cr_assert_eq(utf8_feed(&s, b, 1), 0, "U+%04X", cp);
        cr_assert_eq(utf8_feed(&s, b + 1, 1), WSD_EUTF8, "U+%04X", cp);
    }
}

Test(utf8, every_overlong_form_fails_fast)
{
    /* Two-byte overlongs fail at the lead byte, longer ones at the second byte. */
    for (uint32_t cp = 0; cp < 0x10000; cp++) {
        uint8_t b[4];
        struct utf8_state s;

        if (cp < 0x80) {
            b[0] = (uint8_t)(0xc0 | cp >> 6);
            utf8_init(&s);
            cr_assert_eq(utf8_feed(&s, b, 1), WSD_EUTF8, "2-byte U+%04X", cp);
        }
        if (cp < 0x800) {
            b[0] = 0xe0;
            b[1] = (uint8_t)(0x80 | cp >> 6);
            utf8_init(&s);
            cr_assert_eq(utf8_feed(&s, b, 1), 0);
            cr_assert_eq(utf8_feed(&s, b + 1, 1), WSD_EUTF8, "3-byte U+%04X", cp);
        }
        b[0] = 0xf0;
        b[1] = (uint8_t)(0x80 | cp >> 12);
        utf8_init(&s);
        cr_assert_eq(utf8_feed(&s, b, 1), 0);
        cr_assert_eq(utf8_feed(&s, b + 1, 1), WSD_EUTF8, "4-byte U+%04X", cp);
    }
}

Test(utf8, above_max_code_point_fails_fast)
{
    static const uint8_t f4_90[] = {0xf4, 0x90, 0x80, 0x80};
    struct utf8_state s;

    utf8_init(&s);
    cr_assert_eq(utf8_feed(&s, f4_90, 1), 0);
    cr_assert_eq(utf8_feed(&s, f4_90 + 1, 1), WSD_EUTF8);
    for (unsigned lead = 0xf5; lead <= 0xff; lead++) {
        uint8_t b = (uint8_t)lead;

        utf8_init(&s);
        cr_assert_eq(utf8_feed(&s, &b, 1), WSD_EUTF8, "lead %02x", lead);
    }
}

/*
 * Reference: a prefix of a sequence is viable when some code point it could still become
 * is a scalar value encoded in the minimal length. Returns the index of the first byte that
 * leaves no viable completion, or FAIL_NONE; *complete tells whether the input ends on a
 * character boundary.
 */
static size_t ref_fail_at(const uint8_t *p, size_t n, bool *complete)
{
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t need = 0, seq_len = 0, have = 0;
    uint32_t bits = 0;

    for (size_t i = 0; i < n; i++) {
        uint8_t b = p[i];
        uint32_t lo, hi;

        if (need == 0) {
            if (b < 0x80)
                continue;
            if ((b & 0xe0) == 0xc0)
                seq_len = 2, bits = b & 0x1f;
            else if ((b & 0xf0) == 0xe0)
                seq_len = 3, bits = b & 0x0f;
            else if ((b & 0xf8) == 0xf0)
                seq_len = 4, bits = b & 0x07;
            else
                return i;
            have = 1;
            need = seq_len - 1;
        } else {
            if ((b & 0xc0) != 0x80)
                return i;
            bits = bits << 6 | (b & 0x3f);
            have++;
            need--;
        }
        lo = bits << (6 * (seq_len - have));
        hi = lo | ((1u << (6 * (seq_len - have))) - 1);
        if (lo < min_cp[seq_len])
            lo = min_cp[seq_len];
        if (hi > 0x10ffff)
            hi = 0x10ffff;
        if (lo > hi || (lo >= 0xd800 && hi <= 0xdfff))
            return i;
    }
    *complete = need == 0;
    return FAIL_NONE;
}

static void compare_with_reference(const uint8_t *b, size_t n)
{
    bool ref_complete = false;
    size_t ref_at = ref_fail_at(b, n, &ref_complete);
    struct utf8_state s;
    size_t at = FAIL_NONE;

    cr_assert_eq(utf8_is_valid(b, n), ref_at == FAIL_NONE && ref_complete);
    utf8_init(&s);
    for (size_t i = 0; i < n && at == FAIL_NONE; i++) {
        if (utf8_feed(&s, b + i, 1) != 0)
            at = i;
    }
    cr_assert_eq(at, ref_at, "%02x %02x %02x %02x (n=%zu)", b[0], n > 1 ? b[1] : 0,
                 n > 2 ? b[2] : 0, n > 3 ? b[3] : 0, n);
    if (at == FAIL_NONE)
        cr_assert_eq(utf8_is_complete(&s), ref_complete);
}

Test(utf8, all_three_byte_inputs_match_reference)
{
    uint8_t b[3];

    for (unsigned x = 0; x < 256; x++) {
        b[0] = (uint8_t)x;
        compare_with_reference(b, 1);
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (uint8_t)y;
            compare_with_reference(b, 2);
            for (unsigned z = 0; z < 256; z++) {
                b[2] = (uint8_t)z;
                if (x >= 0xc0 || y >= 0x80)
                    compare_with_reference(b, 3);
            }
        }
    }
}

Test(utf8, four_byte_inputs_match_reference)
{
    uint8_t b[4];

    for (unsigned x = 0xe0; x < 0x100; x++) {
        for (unsigned y = 0x70; y < 0xd0; y++) {
            for (unsigned z = 0x70; z < 0xd0; z++) {
                for (unsigned w = 0x78; w < 0xc8; w += 3) {
                    b[0] = (uint8_t)x;
                    b[1] = (uint8_t)y;
                    b[2] = (uint8_t)z;
                    b[3] = (uint8_t)w;
                    compare_with_reference(b, 4);
                }
            }
        }
    }
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

Test(utf8, random_text_matches_reference_in_random_chunks)
{
    static const uint8_t pool[] = {'a', ' ', 0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
                                   0xc0, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xef, 0xf0, 0xf3, 0xf4,
                                   0xf5, 0xff};
    uint8_t b[64];

    for (uint64_t seed = 1; seed <= 20000; seed++) {
        uint64_t r = seed * 0x9e3779b97f4a7c15ull;
        size_t n = rng_next(&r) % sizeof(b);
        bool ref_complete = false;
        size_t ref_at;
        struct utf8_state s;
        int rc = 0;

        for (size_t i = 0; i < n; i++)
            b[i] = rng_next(&r) % 4 ? pool[rng_next(&r) % sizeof(pool)] : (uint8_t)rng_next(&r);
        ref_at = ref_fail_at(b, n, &ref_complete);
        utf8_init(&s);
        for (size_t off = 0; off < n;) {
            size_t k = (size_t)(rng_next(&r) % 9);
            int x;

            k = WSD_MIN(k, n - off);
            x = utf8_feed(&s, b + off, k);

            rc = rc != 0 ? rc : x;
            off += k;
        }
        cr_assert_eq(rc != 0, ref_at != FAIL_NONE, "seed %llu", (unsigned long long)seed);
        cr_assert_eq(utf8_is_complete(&s), ref_at == FAIL_NONE && ref_complete);
    }
}

Test(utf8, ascii_fast_path_finds_bad_byte_at_any_offset_and_alignment)
{
    uint8_t *buf = malloc(96);

    cr_assert_not_null(buf);
    for (size_t align = 0; align < 8; align++) {
        for (size_t len = 1; len + align <= 96; len++) {
            uint8_t *p = buf + align;

            memset(p, 'x', len);
            cr_assert(utf8_is_valid(p, len));
            for (size_t at = 0; at < len; at++) {
                p[at] = 0x80;
                cr_assert(!utf8_is_valid(p, len), "align %zu len %zu at %zu", align, len, at);
                p[at] = 0xc3;
                cr_assert(!utf8_is_valid(p, len), "lone lead at %zu", at);
                if (at + 1 < len) {
                    p[at + 1] = 0xa9;
                    cr_assert(utf8_is_valid(p, len), "align %zu len %zu at %zu", align, len, at);
                    p[at + 1] = 'x';
                }
                p[at] = 'x';
            }
        }
    }
    free(buf);
}

Test(utf8, long_text_with_multibyte_characters_is_valid)
{
    static const char *piece = "The quick brown fox \xe2\x80\x94 \xce\xba\xe1\xbd\xb9\xcf\x83\xce"
                               "\xbc\xce\xb5 \xf0\x9f\xa6\x8a\n";
    size_t plen = strlen(piece);
    size_t n = plen * 1000;
    uint8_t *buf = malloc(n);

    cr_assert_not_null(buf);
    for (size_t i = 0; i < 1000; i++)
        memcpy(buf + i * plen, piece, plen);
    cr_assert(utf8_is_valid(buf, n));
    cr_assert(!utf8_is_valid(buf, n - 2), "ends inside the 4-byte character");
    buf[n / 2] = 0xff;
    cr_assert(!utf8_is_valid(buf, n));
    free(buf);
}
