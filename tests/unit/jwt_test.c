/*
 * jwt_test.c - JWT verification: the RFC 7515 A.1 example, minted HS256 and EdDSA tokens,
 * algorithm confusion, signatures, time claims with leeway edges, claim types and limits,
 * malformed tokens, and the permission patterns.
 */
#include "proto/jwt.h"
#include "core/wsd.h"
#include "proto/base64.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1700000000

static const uint8_t secret[] = "a test secret of some length";
static uint8_t ed_pk[32], ed_sk[64];

static void make_ed_keys(void)
{
    cr_assert_geq(sodium_init(), 0);
    uint8_t seed[32];
    memset(seed, 7, sizeof(seed));
    crypto_sign_seed_keypair(ed_pk, ed_sk, seed);
}

static struct jwt_keys hs_keys(void)
{
    return (struct jwt_keys){.hs256_secret = secret, .hs256_secret_len = sizeof(secret) - 1};
}

static struct jwt_keys ed_keys(void)
{
    return (struct jwt_keys){.ed25519_public_key = ed_pk};
}

static struct jwt_policy policy(void)
{
    return (struct jwt_policy){.now = NOW, .leeway = 5, .require_exp = false};
}

/* A token whose claims are payload, HS256 with the test secret. */
static char *mint(const char *payload)
{
    static char tok[JWT_MAX_TOKEN_LEN + 1];
    long n = jwt_sign_hs256(tok, sizeof(tok), payload, strlen(payload), secret,
                            sizeof(secret) - 1);
    cr_assert_gt(n, 0, "minting %s", payload);
    cr_assert_eq((size_t)n, strlen(tok));
    return tok;
}

static enum jwt_status verify_with(const char *tok, const struct jwt_keys *keys,
                                   const struct jwt_policy *pol, struct jwt_claims *c,
                                   uint8_t *buf)
{
    return jwt_verify(tok, strlen(tok), keys, pol, c, buf, JWT_PAYLOAD_BUF);
}

static enum jwt_status verify_hs(const char *payload)
{
    struct jwt_keys k = hs_keys();
    struct jwt_policy p = policy();
    struct jwt_claims c;
    uint8_t buf[JWT_PAYLOAD_BUF];
    return verify_with(mint(payload), &k, &p, &c, buf);
}

/* A token from raw header and payload JSON, signed with HMAC over what is given. */
static char *forge(const char *header, const char *payload, const char *sig_b64)
{
    static char tok[JWT_MAX_TOKEN_LEN * 2];
    size_t o = base64_encode(tok, (const uint8_t *)header, strlen(header), BASE64_URL, false);
    tok[o++] = '.';
    o += base64_encode(tok + o, (const uint8_t *)payload, strlen(payload), BASE64_URL, false);
    tok[o++] = '.';
    strcpy(tok + o, sig_b64);
    return tok;
}

/* forge() with a valid HS256 signature over the given header. */
static char *forge_hs(const char *header, const char *payload)
{
    char *tok = forge(header, payload, "");
    uint8_t mac[32];
    size_t n = strlen(tok) - 1;
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, secret, sizeof(secret) - 1);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)tok, n);
    crypto_auth_hmacsha256_final(&st, mac);
    base64_encode(tok + n + 1, mac, 32, BASE64_URL, false);
    tok[n + 1 + 43] = '\0';
    return tok;
}

Test(jwt, verifies_the_rfc7515_a1_example)
{
    static const uint8_t key[] = {
        3,   35,  53,  75,  43,  15,  165, 188, 131, 126, 6,   101, 119, 123, 166, 143,
        90,  179, 40,  230, 240, 84,  201, 40,  169, 15,  132, 178, 210, 80,  46,  191,
        211, 251, 90,  146, 210, 6,   71,  239, 150, 138, 180, 195, 119, 98,  61,  34,
        61,  46,  33,  114, 5,   46,  79,  8,   192, 205, 154, 245, 103, 208, 128, 163};
    const char *tok = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
                      "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLm"
                      "NvbS9pc19yb290Ijp0cnVlfQ."
                      "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    struct jwt_keys k = {.hs256_secret = key, .hs256_secret_len = sizeof(key)};
    struct jwt_policy p = {.now = 1300819000, .leeway = 0};
    struct jwt_claims c;
    uint8_t buf[JWT_PAYLOAD_BUF];
    /* The signature holds; the example has no sub, which wsd requires. */
    cr_assert_eq(verify_with(tok, &k, &p, &c, buf), JWT_MISSING_SUB);
    uint8_t other[sizeof(key)];
    memcpy(other, key, sizeof(key));
    other[0] ^= 1;
    k.hs256_secret = other;
    cr_assert_eq(verify_with(tok, &k, &p, &c, buf), JWT_BAD_SIGNATURE);
}

Test(jwt, accepts_a_minted_hs256_token_and_reads_its_claims)
{
    struct jwt_keys k = hs_keys();
    struct jwt_policy p = policy();
    struct jwt_claims c;
    uint8_t buf[JWT_PAYLOAD_BUF];
    const char *tok = mint("{\"sub\":\"al\\u00efce\",\"exp\":1700000100,\"nbf\":1699999000,"
                           "\"join\":[\"room:*\",\"lobby\"],\"pub\":\"room:1\",\"admin\":true,"
                           "\"iat\":1,\"other\":{\"x\":[1]}}");
    cr_assert_eq(verify_with(tok, &k, &p, &c, buf), JWT_OK);
    cr_assert_eq(c.sub.len, 6);
    cr_assert(memcmp(buf + c.sub.off, "al\xc3\xaf" "ce", 6) == 0);
    cr_assert(c.has_exp && c.exp == 1700000100);
    cr_assert(c.has_nbf && c.nbf == 1699999000);
    cr_assert(c.admin);
    cr_assert_eq(c.list[JWT_LIST_JOIN].count, 2);
    cr_assert_eq(c.list[JWT_LIST_PUB].count, 1);
    cr_assert(!c.list[JWT_LIST_SEND].present);
    cr_assert(jwt_claims_allow(&c, buf, JWT_LIST_JOIN, "room:9", 6));
    cr_assert(jwt_claims_allow(&c, buf, JWT_LIST_JOIN, "lobby", 5));
    cr_assert(!jwt_claims_allow(&c, buf, JWT_LIST_JOIN, "lobby2", 6));
    cr_assert(jwt_claims_allow(&c, buf, JWT_LIST_PUB, "room:1", 6));
    cr_assert(!jwt_claims_allow(&c, buf, JWT_LIST_PUB, "room:2", 6));
    cr_assert(jwt_claims_allow(&c, buf, JWT_LIST_SEND, "anyone", 6));
}

Test(jwt, packs_claim_strings_so_a_copy_of_used_bytes_suffices)
{
    struct jwt_keys k = hs_keys();
    struct jwt_policy p = policy();
    struct jwt_claims c;
    uint8_t buf[JWT_PAYLOAD_BUF];
    const char *tok = mint("{\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",\"sub\":\"u1\","
                           "\"send\":[\"u2\",\"team:*\"],\"join\":[]}");
    cr_assert_eq(verify_with(tok, &k, &p, &c, buf), JWT_OK);
    cr_assert_eq(c.used, 2 + 2 + 6);
    uint8_t *copy = malloc(c.used);
    memcpy(copy, buf, c.used);
    memset(buf, 0, sizeof(buf));
    cr_assert(memcmp(copy + c.sub.off, "u1", 2) == 0);
    cr_assert(jwt_claims_allow(&c, copy, JWT_LIST_SEND, "u2", 2));
    cr_assert(jwt_claims_allow(&c, copy, JWT_LIST_SEND, "team:x", 6));
    cr_assert(!jwt_claims_allow(&c, copy, JWT_LIST_SEND, "u3", 2));
    cr_assert(c.list[JWT_LIST_JOIN].present);
    cr_assert(!jwt_claims_allow(&c, copy, JWT_LIST_JOIN, "g", 1));
    cr_assert(!jwt_claims_allow(&c, copy, JWT_LIST_PUB, "g", 1));
    free(copy);
}

Test(jwt, accepts_eddsa_tokens_with_an_ed25519_key)
{
    make_ed_keys();
    char tok[1024];
    const char *payload = "{\"sub\":\"ed\",\"exp\":1700000100}";
    cr_assert_gt(jwt_sign_ed25519(tok, sizeof(tok), payload, strlen(payload), ed_sk), 0);
    struct jwt_keys k = ed_keys();
    struct jwt_policy p = policy();
    struct jwt_claims c;
    uint8_t buf[JWT_PAYLOAD_BUF];
    cr_assert_eq(verify_with(tok, &k, &p, &c, buf), JWT_OK);
    cr_assert(c.sub.len == 2 && memcmp(buf + c.sub.off, "ed", 2) == 0);
    /* built independently with libsodium */
    char *forged = forge("{\"alg\":\"EdDSA\"}", "{\"sub\":\"x\"}", "");
    size_t n = strlen(forged) - 1;
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, (const uint8_t *)forged, n, ed_sk);
    base64_encode(forged + n + 1, sig, 64, BASE64_URL, false);
    forged[n + 1 + 86] = '\0';
    cr_assert_eq(verify_with(forged, &k, &p, &c, buf), JWT_OK);
    forged[n + 1] = forged[n + 1] == 'A' ? 'B' : 'A';
    cr_assert_eq(verify_with(forged, &k, &p, &c, buf), JWT_BAD_SIGNATURE);
    uint8_t other_pk[32], other_sk[64];
    crypto_sign_keypair(other_pk, other_sk);
    k.ed25519_public_key = other_pk;
    cr_assert_eq(verify_with(tok, &k, &p, &c, buf), JWT_BAD_SIGNATURE);
}

Test(jwt, takes_the_algorithm_from_the_configured_keys)
{
    make_ed_keys();
    char ed_tok[1024];
    const char *payload = "{\"sub\":\"u\"}";
    cr_assert_gt(jwt_sign_ed25519(ed_tok, sizeof(ed_tok), payload, strlen(payload), ed_sk), 0);
    char hs_tok[1024];
    strcpy(hs_tok, mint(payload));
    struct jwt_keys hs = hs_keys(), ed = ed_keys(), both = hs_keys();
    both.ed25519_public_key = ed_pk;
    struct jwt_policy p = policy();
    struct jwt_claims c;
    uint8_t buf[JWT_PAYLOAD_BUF];
    cr_assert_eq(verify_with(hs_tok, &ed, &p, &c, buf), JWT_WRONG_ALG);
    cr_assert_eq(verify_with(ed_tok, &hs, &p, &c, buf), JWT_WRONG_ALG);
    cr_assert_eq(verify_with(hs_tok, &both, &p, &c, buf), JWT_OK);
    cr_assert_eq(verify_with(ed_tok, &both, &p, &c, buf), JWT_OK);
    struct jwt_keys none = {0};
    cr_assert_eq(verify_with(hs_tok, &none, &p, &c, buf), JWT_WRONG_ALG);
}

Test(jwt, rejects_alg_none_and_other_algorithms)
{
    struct jwt_keys k = hs_keys();
    k.ed25519_public_key = ed_pk;
    struct jwt_policy p = policy();
    struct jwt_claims c;
    uint8_t buf[JWT_PAYLOAD_BUF];
    const char *pl = "{\"sub\":\"u\"}";
    cr_assert_eq(verify_with(forge("{\"alg\":\"none\"}", pl, ""), &k, &p, &c, buf),
                 JWT_WRONG_ALG);
    cr_assert_eq(verify_with(forge_hs("{\"alg\":\"none\"}", pl), &k, &p, &c, buf),
                 JWT_WRONG_ALG);
    cr_assert_eq(verify_with(forge_hs("{\"alg\":\"HS512\"}", pl), &k, &p, &c, buf),
                 JWT_WRONG_ALG);
    cr_assert_eq(verify_with(forge_hs("{\"alg\":\"hs256\"}", pl), &k, &p, &c, buf),
                 JWT_WRONG_ALG);
    cr_assert_eq(verify_with(forge_hs("{\"alg\":\"RS256\"}", pl), &k, &p, &c, buf),
                 JWT_WRONG_ALG);
    cr_assert_eq(verify_with(forge_hs("{\"typ\":\"JWT\"}", pl), &k, &p, &c, buf),
                 JWT_WRONG_ALG);
    cr_assert_eq(verify_with(forge_hs("{\"alg\":\"HS256\"}", pl), &k, &p, &c, buf), JWT_OK);
    cr_assert_eq(verify_with(forge_hs("{\"alg\":\"HS\\u0032\\u0035\\u0036\"}", pl), &k, &p, &c,
                             buf),
                 JWT_OK);
    cr_assert_eq(verify_with(forge("{\"alg\":\"HS256\"}", pl, ""), &k, &p, &c, buf),
                 JWT_BAD_SIGNATURE);
}

Test(jwt, checks_the_header_members)
{
    struct jwt_keys k = hs_keys();
    struct jwt_policy p = policy();
    struct jwt_claims c;
    uint8_t buf[JWT_PAYLOAD_BUF];
    const char *pl = "{\"sub\":\"u\"}";
    static const char *const bad[] = {
        "{\"alg\":\"HS256\",\"typ\":\"JWS\"}",
        "{\"alg\":\"HS256\",\"typ\":5}",
        "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
        "{\"alg\":5}",
        "{\"alg\":\"HS256\",\"alg\":\"HS256\"}",
        "[\"HS256\"]",
        "{\"alg\":\"HS256\"",
        "not json",
    };
    for (size_t i = 0; i < WSD_ARRAY_LEN(bad); i++)
        cr_assert_eq(verify_with(forge_hs(bad[i], pl), &k, &p, &c, buf), JWT_MALFORMED, "%s",
                     bad[i]);
    cr_assert_eq(verify_with(forge_hs("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}", pl),
                             &k, &p, &c, buf),
                 JWT_OK);
}

Test(jwt, rejects_a_bad_signature)
{
    struct jwt_keys k = hs_keys();
    struct jwt_policy p = policy();
    struct jwt_claims c;
    uint8_t buf[JWT_PAYLOAD_BUF];
    char tok[1024];
    strcpy(tok, mint("{\"sub\":\"u\"}"));
    char *sig = strrchr(tok, '.') + 1;
    sig[0] = sig[0] == 'A' ? 'B' : 'A';
    cr_assert_eq(verify_with(tok, &k, &p, &c, buf), JWT_BAD_SIGNATURE);
    strcpy(tok, mint("{\"sub\":\"u\"}"));
    sig = strrchr(tok, '.') + 1;
    sig[8] = '\0'; /* short signature */
    cr_assert_eq(verify_with(tok, &k, &p, &c, buf), JWT_BAD_SIGNATURE);
    /* payload changed after signing */
    strcpy(tok, mint("{\"sub\":\"u\"}"));
    char *good_sig = strdup(strrchr(tok, '.') + 1);
    char *t2 = forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"sub\":\"v\"}", good_sig);
    cr_assert_eq(verify_with(t2, &k, &p, &c, buf), JWT_BAD_SIGNATURE);
    free(good_sig);
}

Test(jwt, checks_exp_with_leeway_edges)
{
    char payload[128];
    snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"exp\":%d}", NOW - 5);
    cr_assert_eq(verify_hs(payload), JWT_OK);
    snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"exp\":%d}", NOW - 6);
    cr_assert_eq(verify_hs(payload), JWT_EXPIRED);
    snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"exp\":%d.5}", NOW - 5);
    cr_assert_eq(verify_hs(payload), JWT_OK);
    snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"exp\":%d.99}", NOW - 6);
    cr_assert_eq(verify_hs(payload), JWT_EXPIRED);
    snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"exp\":1.6e9}");
    cr_assert_eq(verify_hs(payload), JWT_EXPIRED);
    snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"exp\":1e300}");
    cr_assert_eq(verify_hs(payload), JWT_OK);
}

Test(jwt, checks_nbf_with_leeway_edges)
{
    char payload[128];
    snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"nbf\":%d}", NOW + 5);
    cr_assert_eq(verify_hs(payload), JWT_OK);
    snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"nbf\":%d}", NOW + 6);
    cr_assert_eq(verify_hs(payload), JWT_NOT_YET_VALID);
    snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"nbf\":%d.01}", NOW + 5);
    cr_assert_eq(verify_hs(payload), JWT_NOT_YET_VALID);
    snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"nbf\":-1e300}");
    cr_assert_eq(verify_hs(payload), JWT_OK);
}

Test(jwt, applies_leeway_zero_exactly)
{
    struct jwt_keys k = hs_keys();
    struct jwt_policy p = {.now = NOW, .leeway = 0};
    struct jwt_claims c;
    uint8_t buf[JWT_PAYLOAD_BUF];
    char payload[128];
    snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"exp\":%d,\"nbf\":%d}", NOW, NOW);
    cr_assert_eq(verify_with(mint(payload), &k, &p, &c, buf), JWT_OK);
    p.now = NOW + 1;
    cr_assert_eq(verify_with(mint(payload), &k, &p, &c, buf), JWT_EXPIRED);
    p.now = NOW - 1;
    cr_assert_eq(verify_with(mint(payload), &k, &p, &c, buf), JWT_NOT_YET_VALID);
}

Test(jwt, requires_exp_when_configured)
{
    struct jwt_keys k = hs_keys();
    struct jwt_policy p = policy();
    struct jwt_claims c;
    uint8_t buf[JWT_PAYLOAD_BUF];
    p.require_exp = true;
    cr_assert_eq(verify_with(mint("{\"sub\":\"u\"}"), &k, &p, &c, buf), JWT_MALFORMED);
    cr_assert_eq(verify_with(mint("{\"sub\":\"u\",\"exp\":1800000000}"), &k, &p, &c, buf),
                 JWT_OK);
}

Test(jwt, requires_sub_of_1_to_128_bytes)
{
    char payload[300];
    cr_assert_eq(verify_hs("{\"exp\":1800000000}"), JWT_MISSING_SUB);
    cr_assert_eq(verify_hs("{\"sub\":\"\"}"), JWT_MISSING_SUB);
    cr_assert_eq(verify_hs("{\"sub\":5}"), JWT_MALFORMED);
    cr_assert_eq(verify_hs("{\"sub\":null}"), JWT_MALFORMED);
    cr_assert_eq(verify_hs("{\"sub\":\"a\\u0000b\"}"), JWT_MALFORMED);
    cr_assert_eq(verify_hs("{\"sub\":\"a\",\"sub\":\"b\"}"), JWT_MALFORMED);
    snprintf(payload, sizeof(payload), "{\"sub\":\"%0128d\"}", 0);
    cr_assert_eq(verify_hs(payload), JWT_OK);
    snprintf(payload, sizeof(payload), "{\"sub\":\"%0129d\"}", 0);
    cr_assert_eq(verify_hs(payload), JWT_MALFORMED);
}

Test(jwt, rejects_claims_of_the_wrong_type)
{
    cr_assert_eq(verify_hs("{\"sub\":\"u\",\"exp\":\"1800000000\"}"), JWT_MALFORMED);
    cr_assert_eq(verify_hs("{\"sub\":\"u\",\"nbf\":true}"), JWT_MALFORMED);
    cr_assert_eq(verify_hs("{\"sub\":\"u\",\"join\":[1]}"), JWT_MALFORMED);
    cr_assert_eq(verify_hs("{\"sub\":\"u\",\"join\":{\"a\":1}}"), JWT_MALFORMED);
    cr_assert_eq(verify_hs("{\"sub\":\"u\",\"pub\":5}"), JWT_MALFORMED);
    cr_assert_eq(verify_hs("{\"sub\":\"u\",\"send\":[[\"x\"]]}"), JWT_MALFORMED);
    cr_assert_eq(verify_hs("{\"sub\":\"u\",\"admin\":\"yes\"}"), JWT_MALFORMED);
    cr_assert_eq(verify_hs("{\"sub\":\"u\",\"admin\":1}"), JWT_MALFORMED);
    cr_assert_eq(verify_hs("[\"sub\"]"), JWT_MALFORMED);
    cr_assert_eq(verify_hs("{\"sub\":\"u\""), JWT_MALFORMED);
    cr_assert_eq(verify_hs("{\"sub\":\"u\",\"admin\":false}"), JWT_OK);
}

Test(jwt, limits_pattern_lists)
{
    char payload[4096];
    size_t o = (size_t)sprintf(payload, "{\"sub\":\"u\",\"join\":[");
    for (int i = 0; i < JWT_MAX_PATTERNS; i++)
        o += (size_t)sprintf(payload + o, "%s\"g%d\"", i ? "," : "", i);
    strcpy(payload + o, "]}");
    cr_assert_eq(verify_hs(payload), JWT_OK);
    strcpy(payload + o, ",\"one-more\"]}");
    cr_assert_eq(verify_hs(payload), JWT_MALFORMED);
}

Test(jwt, rejects_malformed_tokens)
{
    struct jwt_keys k = hs_keys();
    struct jwt_policy p = policy();
    struct jwt_claims c;
    uint8_t buf[JWT_PAYLOAD_BUF];
    char tok[1024];
    strcpy(tok, mint("{\"sub\":\"u\"}"));
    char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    static const char *const garbage[] = {
        "", ".", "..", "...", "abc", "abc.def", "a.b.c.d", "*.*.*", "eyJ.eyJ.", "=.=.=",
    };
    for (size_t i = 0; i < WSD_ARRAY_LEN(garbage); i++)
        cr_assert_eq(verify_with(garbage[i], &k, &p, &c, buf), JWT_MALFORMED, "%s",
                     garbage[i]);
    char t[1100];
    snprintf(t, sizeof(t), "%s.x", tok); /* four parts */
    cr_assert_eq(verify_with(t, &k, &p, &c, buf), JWT_MALFORMED);
    snprintf(t, sizeof(t), "%.*s", (int)(d2 - tok), tok); /* two parts */
    cr_assert_eq(verify_with(t, &k, &p, &c, buf), JWT_MALFORMED);
    snprintf(t, sizeof(t), "%.*s=%s", (int)(d1 - tok), tok, d1); /* padded header */
    cr_assert_eq(verify_with(t, &k, &p, &c, buf), JWT_MALFORMED);
    snprintf(t, sizeof(t), "%s=", tok); /* padded signature */
    cr_assert_eq(verify_with(t, &k, &p, &c, buf), JWT_MALFORMED);
    snprintf(t, sizeof(t), "%.*s+%s", (int)(d2 - tok + 1), tok, d2 + 2); /* std alphabet */
    cr_assert_eq(verify_with(t, &k, &p, &c, buf), JWT_MALFORMED);
}

Test(jwt, rejects_tokens_over_8_kib)
{
    struct jwt_keys k = hs_keys();
    struct jwt_policy p = policy();
    struct jwt_claims c;
    uint8_t buf[JWT_PAYLOAD_BUF];
    char payload[8192];
    char tok[JWT_MAX_TOKEN_LEN + 64];
    int pad = 5900;
    snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"x\":\"%0*d\"}", pad, 0);
    long n = jwt_sign_hs256(tok, sizeof(tok), payload, strlen(payload), secret, 10);
    cr_assert_gt(n, 0);
    cr_assert_leq(n, JWT_MAX_TOKEN_LEN);
    snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"x\":\"%0*d\"}", pad + 200, 0);
    cr_assert_eq(jwt_sign_hs256(tok, sizeof(tok), payload, strlen(payload), secret, 10),
                 WSD_ETOOBIG);
    char *big = malloc(JWT_MAX_TOKEN_LEN + 2);
    memset(big, 'A', JWT_MAX_TOKEN_LEN + 1);
    big[10] = '.';
    big[20] = '.';
    big[JWT_MAX_TOKEN_LEN + 1] = '\0';
    cr_assert_eq(verify_with(big, &k, &p, &c, buf), JWT_MALFORMED);
    free(big);
}

Test(jwt, a_small_payload_buffer_makes_long_tokens_malformed)
{
    struct jwt_keys k = hs_keys();
    struct jwt_policy p = policy();
    struct jwt_claims c;
    uint8_t buf[16];
    const char *tok = mint("{\"sub\":\"a-longer-user-name\"}");
    cr_assert_eq(jwt_verify(tok, strlen(tok), &k, &p, &c, buf, sizeof(buf)), JWT_MALFORMED);
}

Test(jwt, minting_reports_a_small_output_buffer)
{
    char tok[40];
    cr_assert_eq(jwt_sign_hs256(tok, sizeof(tok), "{\"sub\":\"u\"}", 11, secret, 5),
                 WSD_ETOOBIG);
}

Test(jwt, matches_patterns)
{
    cr_assert(jwt_pattern_match("*", 1, "anything", 8));
    cr_assert(jwt_pattern_match("*", 1, "", 0));
    cr_assert(jwt_pattern_match("room:*", 6, "room:", 5));
    cr_assert(jwt_pattern_match("room:*", 6, "room:abc", 8));
    cr_assert(!jwt_pattern_match("room:*", 6, "room", 4));
    cr_assert(!jwt_pattern_match("room:*", 6, "rooms:a", 7));
    cr_assert(jwt_pattern_match("lobby", 5, "lobby", 5));
    cr_assert(!jwt_pattern_match("lobby", 5, "lobby1", 6));
    cr_assert(!jwt_pattern_match("lobby", 5, "lobb", 4));
    cr_assert(!jwt_pattern_match("a*b", 3, "axb", 3));
    cr_assert(jwt_pattern_match("a*b", 3, "a*b", 3));
    cr_assert(!jwt_pattern_match("", 0, "x", 1));
}

Test(jwt, names_statuses)
{
    cr_assert_str_eq(jwt_status_name(JWT_OK), "ok");
    cr_assert_str_eq(jwt_status_name(JWT_EXPIRED), "token expired");
    cr_assert_str_eq(jwt_status_name(JWT_WRONG_ALG), "algorithm not accepted");
}
