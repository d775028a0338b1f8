/* base64_test.c - RFC 4648 vectors, strict decoding, alphabets, round trips. */
#include "proto/base64.h"
#include "core/wsd.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

struct b64_vector {
    const char *plain;
    const char *padded;
    const char *unpadded;
};

/* RFC 4648 section 10. */
static const struct b64_vector rfc_vectors[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static void check_decode(const char *in, enum base64_alphabet a, enum base64_padding pad,
                         const char *want)
{
    uint8_t out[64];
    long n = base64_decode(out, sizeof(out), in, strlen(in), a, pad);
    cr_assert_eq(n, (long)strlen(want), "decoding \"%s\" gave %ld", in, n);
    cr_assert(memcmp(out, want, (size_t)n) == 0, "decoding \"%s\"", in);
}

static void check_reject(const char *in, enum base64_alphabet a, enum base64_padding pad)
{
    uint8_t out[64];
    long n = base64_decode(out, sizeof(out), in, strlen(in), a, pad);
    cr_assert_eq(n, WSD_EINVAL, "\"%s\" was accepted (%ld)", in, n);
}

Test(base64, encodes_rfc4648_vectors_padded_and_unpadded)
{
    for (size_t i = 0; i < WSD_ARRAY_LEN(rfc_vectors); i++) {
        const struct b64_vector *v = &rfc_vectors[i];
        char out[32];
        size_t len = strlen(v->plain);
        size_t n = base64_encode(out, (const uint8_t *)v->plain, len, BASE64_STD, true);
        cr_assert_eq(n, strlen(v->padded));
        cr_assert_eq(n, base64_encoded_len(len, true));
        cr_assert(memcmp(out, v->padded, n) == 0, "encoding %s", v->plain);
        n = base64_encode(out, (const uint8_t *)v->plain, len, BASE64_URL, false);
        cr_assert_eq(n, strlen(v->unpadded));
        cr_assert_eq(n, base64_encoded_len(len, false));
        cr_assert(memcmp(out, v->unpadded, n) == 0, "encoding %s", v->plain);
    }
}

Test(base64, decodes_rfc4648_vectors_in_every_padding_mode)
{
    for (size_t i = 0; i < WSD_ARRAY_LEN(rfc_vectors); i++) {
        const struct b64_vector *v = &rfc_vectors[i];
        check_decode(v->padded, BASE64_STD, BASE64_PAD_REQUIRED, v->plain);
        check_decode(v->padded, BASE64_STD, BASE64_PAD_OPTIONAL, v->plain);
        check_decode(v->unpadded, BASE64_STD, BASE64_PAD_OPTIONAL, v->plain);
        check_decode(v->unpadded, BASE64_URL, BASE64_PAD_NONE, v->plain);
    }
}

Test(base64, uses_the_right_alphabet)
{
    const uint8_t bytes[] = {0xfb, 0xff, 0xbf};
    char out[8];
    cr_assert_eq(base64_encode(out, bytes, 3, BASE64_STD, true), 4);
    cr_assert(memcmp(out, "+/+/", 4) == 0);
    cr_assert_eq(base64_encode(out, bytes, 3, BASE64_URL, true), 4);
    cr_assert(memcmp(out, "-_-_", 4) == 0);
    check_decode("+/+/", BASE64_STD, BASE64_PAD_NONE, "\xfb\xff\xbf");
    check_decode("-_-_", BASE64_URL, BASE64_PAD_NONE, "\xfb\xff\xbf");
    check_reject("-_-_", BASE64_STD, BASE64_PAD_NONE);
    check_reject("+/+/", BASE64_URL, BASE64_PAD_NONE);
}

Test(base64, rejects_padding_the_mode_forbids_or_requires)
{
    check_reject("Zg==", BASE64_URL, BASE64_PAD_NONE);
    check_reject("Zm8=", BASE64_URL, BASE64_PAD_NONE);
    check_reject("Zg", BASE64_STD, BASE64_PAD_REQUIRED);
    check_reject("Zm8", BASE64_STD, BASE64_PAD_REQUIRED);
    check_reject("Zg=", BASE64_STD, BASE64_PAD_OPTIONAL);
    check_reject("Zg===", BASE64_STD, BASE64_PAD_OPTIONAL);
    check_reject("Z===", BASE64_STD, BASE64_PAD_OPTIONAL);
    check_reject("====", BASE64_STD, BASE64_PAD_OPTIONAL);
    check_reject("Zg==Zg==", BASE64_STD, BASE64_PAD_OPTIONAL);
    check_reject("Zm=v", BASE64_STD, BASE64_PAD_OPTIONAL);
}

Test(base64, rejects_characters_outside_the_alphabet)
{
    check_reject("Zm9v YmFy", BASE64_STD, BASE64_PAD_OPTIONAL);
    check_reject("Zm9v\nYmFy", BASE64_STD, BASE64_PAD_OPTIONAL);
    check_reject("Zm9v*mFy", BASE64_STD, BASE64_PAD_OPTIONAL);
    check_reject("Zm9v\x80mFy", BASE64_STD, BASE64_PAD_OPTIONAL);
    uint8_t out[8];
    cr_assert_eq(base64_decode(out, sizeof(out), "Zm\0v", 4, BASE64_STD, BASE64_PAD_NONE),
                 WSD_EINVAL);
}

Test(base64, rejects_a_single_character_final_group)
{
    check_reject("Z", BASE64_STD, BASE64_PAD_OPTIONAL);
    check_reject("Zm9vZ", BASE64_URL, BASE64_PAD_NONE);
}

Test(base64, rejects_non_zero_unused_bits)
{
    check_decode("Zg", BASE64_URL, BASE64_PAD_NONE, "f");
    check_reject("Zh", BASE64_URL, BASE64_PAD_NONE);
    check_reject("Zh==", BASE64_STD, BASE64_PAD_REQUIRED);
    check_decode("Zm8", BASE64_URL, BASE64_PAD_NONE, "fo");
    check_reject("Zm9", BASE64_URL, BASE64_PAD_NONE);
}

Test(base64, reports_too_big_when_the_output_does_not_fit)
{
    uint8_t out[6];
    cr_assert_eq(base64_decode(out, 5, "Zm9vYmFy", 8, BASE64_STD,
                               BASE64_PAD_OPTIONAL),
                 WSD_ETOOBIG);
    cr_assert_eq(base64_decode(out, 6, "Zm9vYmFy", 8, BASE64_STD, BASE64_PAD_OPTIONAL), 6);
    cr_assert_geq(base64_decoded_max(8), 6);
}

Test(base64, decodes_in_place)
{
    char text[] = "aGVsbG8sIHdvcmxkIQ";
    long n = base64_decode((uint8_t *)text, sizeof(text), text, strlen(text), BASE64_URL,
                           BASE64_PAD_NONE);
    cr_assert_eq(n, 13);
    cr_assert(memcmp(text, "hello, world!", 13) == 0);
}

Test(base64, round_trips_every_length_in_both_alphabets)
{
    uint8_t in[300], back[300];
    char enc[404];
    srand(7);
    for (size_t len = 0; len < sizeof(in); len++) {
        for (size_t i = 0; i < len; i++)
            in[i] = (uint8_t)rand();
        for (int a = BASE64_STD; a <= BASE64_URL; a++) {
            for (int pad = 0; pad <= 1; pad++) {
                size_t n = base64_encode(enc, in, len, (enum base64_alphabet)a, pad);
                cr_assert_eq(n, base64_encoded_len(len, pad));
                cr_assert_leq(len, base64_decoded_max(n));
                long m = base64_decode(back, sizeof(back), enc, n, (enum base64_alphabet)a,
                                       pad ? BASE64_PAD_REQUIRED : BASE64_PAD_NONE);
                cr_assert_eq(m, (long)len);
                cr_assert(memcmp(in, back, len) == 0);
            }
        }
    }
}
