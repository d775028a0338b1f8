/*
 * jwt.c - libFuzzer target for JWT verification.
 *
 * The first byte picks the mode. Bit 0 clear: the rest is a token, verified against fixed
 * HS256 and Ed25519 keys (bits 1-2 choose which are configured); it must never crash and
 * a bad signature can only come with a configured algorithm. Bit 0 set: the rest is a
 * claims payload that is signed with the HS256 key and verified, so the claim parser is
 * reached; an accepted token's claims must lie inside the payload buffer and its sub must
 * be 1..128 bytes.
 */
#include "proto/jwt.h"
#include "core/wsd.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(cond)                                                                   \
    do {                                                                                 \
        if (!(cond))                                                                     \
            abort();                                                                     \
    } while (0)

static const uint8_t fz_secret[] = "fuzz secret";

/* An Ed25519 public key (RFC 8032 test 1). */
static const uint8_t fz_ed_pk[32] = {
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe,
    0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6,
    0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
};

static void fz_check_claims(const struct jwt_claims *c, const uint8_t *buf)
{
    FZ_CHECK(c->sub.len >= 1 && c->sub.len <= JWT_MAX_SUB_LEN);
    FZ_CHECK((size_t)c->sub.off + c->sub.len <= c->used);
    for (int l = 0; l < JWT_NUM_LISTS; l++) {
        const struct jwt_patterns *p = &c->list[l];
        FZ_CHECK(p->count <= JWT_MAX_PATTERNS);
        for (uint16_t k = 0; k < p->count; k++)
            FZ_CHECK((size_t)p->pat[k].off + p->pat[k].len <= c->used);
        jwt_claims_allow(c, buf, (enum jwt_list)l, "room:1", 6);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[JWT_PAYLOAD_BUF];
    static char tok[JWT_MAX_TOKEN_LEN + 1];
    struct jwt_keys keys = {0};
    struct jwt_policy pol = {.now = 1700000000, .leeway = 5, .require_exp = false};
    struct jwt_claims claims;
    enum jwt_status st;
    if (size < 1)
        return 0;
    if (data[0] & 1) {
        long n = jwt_sign_hs256(tok, sizeof(tok), data + 1, size - 1, fz_secret,
                                sizeof(fz_secret) - 1);
        if (n < 0)
            return 0;
        keys.hs256_secret = fz_secret;
        keys.hs256_secret_len = sizeof(fz_secret) - 1;
        pol.require_exp = data[0] & 2;
        st = jwt_verify(tok, (size_t)n, &keys, &pol, &claims, buf, sizeof(buf));
        FZ_CHECK(st != JWT_BAD_SIGNATURE && st != JWT_WRONG_ALG);
    } else {
        if (data[0] & 2) {
            keys.hs256_secret = fz_secret;
            keys.hs256_secret_len = sizeof(fz_secret) - 1;
        }
        if (data[0] & 4)
            keys.ed25519_public_key = fz_ed_pk;
        st = jwt_verify((const char *)data + 1, size - 1, &keys, &pol, &claims, buf,
                        sizeof(buf));
        FZ_CHECK(st != JWT_BAD_SIGNATURE || (data[0] & 6) != 0);
    }
    if (st == JWT_OK)
        fz_check_claims(&claims, buf);
    return 0;
}
