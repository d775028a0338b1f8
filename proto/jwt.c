/* jwt.c - compact JWS verification (HS256, EdDSA), claims, patterns, minting. */
#include "proto/jwt.h"
#include "core/wsd.h"
#include "proto/base64.h"
#include "proto/json.h"

#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <string.h>

#define JWT_HEADER_MAX 512 /* decoded header bytes */

enum jwt_alg {
    JWT_ALG_HS256,
    JWT_ALG_EDDSA,
};

/* The three dot-separated parts of a token. */
struct jwt_parts {
    const char *h, *p, *s;
    size_t h_len, p_len, s_len;
};

static bool jwt_split(const char *t, size_t len, struct jwt_parts *parts)
{
    const char *d1 = memchr(t, '.', len);
    if (d1 == NULL)
        return false;
    const char *rest = d1 + 1;
    size_t rest_len = len - (size_t)(rest - t);
    const char *d2 = memchr(rest, '.', rest_len);
    if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - t)) != NULL)
        return false;
    parts->h = t;
    parts->h_len = (size_t)(d1 - t);
    parts->p = rest;
    parts->p_len = (size_t)(d2 - rest);
    parts->s = d2 + 1;
    parts->s_len = len - (size_t)(d2 + 1 - t);
    return parts->h_len > 0 && parts->p_len > 0; /* an empty signature is judged by alg */
}

/* Reads the header's "alg"/"typ"/"crit"; *alg gets the algorithm name's content view. */
static enum jwt_status jwt_header_member(const struct json_value *key,
                                         const struct json_value *val, unsigned *seen,
                                         struct json_value *alg)
{
    bool esc = key->flags & JSON_F_ESCAPED;
    const uint8_t *k = key->p + 1;
    size_t klen = key->len - 2;
    if (json_str_equal_lit(k, klen, esc, "crit", 4))
        return JWT_MALFORMED;
    if (json_str_equal_lit(k, klen, esc, "alg", 3)) {
        if ((*seen & 1) || val->type != JSON_STRING)
            return JWT_MALFORMED;
        *seen |= 1;
        *alg = *val;
    } else if (json_str_equal_lit(k, klen, esc, "typ", 3)) {
        if ((*seen & 2) || val->type != JSON_STRING ||
            !json_str_equal_lit(val->p + 1, val->len - 2, val->flags & JSON_F_ESCAPED, "JWT",
                                3))
            return JWT_MALFORMED;
        *seen |= 2;
    }
    return JWT_OK;
}

/* Decodes and checks the header; picks the algorithm from the configured keys. */
static enum jwt_status jwt_header(const struct jwt_parts *parts, const struct jwt_keys *keys,
                                  enum jwt_alg *alg)
{
    uint8_t hdr[JWT_HEADER_MAX];
    long n = base64_decode(hdr, sizeof(hdr), parts->h, parts->h_len, BASE64_URL,
                           BASE64_PAD_NONE);
    struct json_value root, key, val, name = {0};
    if (n < 0 || json_validate(hdr, (size_t)n, &root) < 0 || root.type != JSON_OBJECT)
        return JWT_MALFORMED;
    struct json_iter it;
    unsigned seen = 0;
    int rc;
    json_iter_init(&it, hdr, (size_t)n, &root, 1);
    while ((rc = json_iter_next(&it, &key, &val)) == 1) {
        enum jwt_status st = jwt_header_member(&key, &val, &seen, &name);
        if (st != JWT_OK)
            return st;
    }
    if (rc < 0)
        return JWT_MALFORMED;
    if (!(seen & 1))
        return JWT_WRONG_ALG;
    bool esc = name.flags & JSON_F_ESCAPED;
    if (json_str_equal_lit(name.p + 1, name.len - 2, esc, "HS256", 5) &&
        keys->hs256_secret != NULL) {
        *alg = JWT_ALG_HS256;
        return JWT_OK;
    }
    if (json_str_equal_lit(name.p + 1, name.len - 2, esc, "EdDSA", 5) &&
        keys->ed25519_public_key != NULL) {
        *alg = JWT_ALG_EDDSA;
        return JWT_OK;
    }
    return JWT_WRONG_ALG;
}

static bool jwt_hmac(const uint8_t *key, size_t key_len, const void *msg, size_t len,
                     uint8_t mac[32])
{
    unsigned int mac_len = 0;
    static const uint8_t empty = 0;
    if (key_len > INT32_MAX)
        return false;
    if (HMAC(EVP_sha256(), key_len ? key : &empty, (int)key_len, msg, len, mac, &mac_len) ==
        NULL)
        return false;
    return mac_len == 32;
}

static enum jwt_status jwt_check_signature(const struct jwt_parts *parts,
                                           const struct jwt_keys *keys, enum jwt_alg alg)
{
    uint8_t sig[64];
    long n = base64_decode(sig, sizeof(sig), parts->s, parts->s_len, BASE64_URL,
                           BASE64_PAD_NONE);
    size_t signed_len = parts->h_len + 1 + parts->p_len;
    if (n == WSD_ETOOBIG)
        return JWT_BAD_SIGNATURE;
    if (n < 0)
        return JWT_MALFORMED;
    if (alg == JWT_ALG_HS256) {
        uint8_t mac[32];
        if (n != 32)
            return JWT_BAD_SIGNATURE;
        if (!jwt_hmac(keys->hs256_secret, keys->hs256_secret_len, parts->h, signed_len, mac))
            return JWT_BAD_SIGNATURE;
        return CRYPTO_memcmp(mac, sig, 32) == 0 ? JWT_OK : JWT_BAD_SIGNATURE;
    }
    if (n != 64 || sodium_init() < 0)
        return JWT_BAD_SIGNATURE;
    if (crypto_sign_verify_detached(sig, (const unsigned char *)parts->h, signed_len,
                                    keys->ed25519_public_key) != 0)
        return JWT_BAD_SIGNATURE;
    return JWT_OK;
}

/* ---- claims ---------------------------------------------------------------------------- */

/* The state of the claim walk: strings are packed at buf[used..) as they are read. */
struct jwt_walk {
    uint8_t *buf;
    size_t len;
    size_t used;
    unsigned seen;
};

/* Unescapes string v to buf[used..) and returns its span there (len check by caller). */
static bool jwt_keep_string(struct jwt_walk *w, const struct json_value *v, size_t max,
                            struct jwt_span *out)
{
    if (v->type != JSON_STRING || v->str_len > max)
        return false;
    long n = json_unescape(v->p + 1, v->len - 2, w->buf + w->used, v->str_len);
    if (n < 0)
        return false;
    out->off = (uint16_t)w->used;
    out->len = (uint16_t)n;
    w->used += (size_t)n;
    return true;
}

static bool jwt_claim_patterns(struct jwt_walk *w, const struct json_value *v,
                               struct jwt_patterns *list)
{
    list->present = true;
    list->count = 0;
    if (v->type == JSON_STRING)
        return jwt_keep_string(w, v, JWT_MAX_PATTERN_LEN, &list->pat[list->count++]);
    if (v->type != JSON_ARRAY)
        return false;
    struct json_iter it;
    struct json_value el;
    int rc;
    json_iter_init(&it, w->buf, w->len, v, 2);
    while ((rc = json_iter_next(&it, NULL, &el)) == 1) {
        if (list->count >= JWT_MAX_PATTERNS)
            return false;
        if (!jwt_keep_string(w, &el, JWT_MAX_PATTERN_LEN, &list->pat[list->count++]))
            return false;
    }
    return rc == 0;
}

/* A time claim as whole seconds: fractions rounded down (up when round_up). */
static bool jwt_claim_time(const struct json_value *v, bool round_up, int64_t *out)
{
    double d;
    if (v->type != JSON_NUMBER)
        return false;
    if (json_number_i64(v, out) == 0)
        return true;
    if (json_number_double(v, &d) < 0 || isnan(d))
        return false;
    if (d >= 9.2e18) {
        *out = INT64_MAX;
    } else if (d <= -9.2e18) {
        *out = INT64_MIN;
    } else {
        int64_t t = (int64_t)d; /* toward zero */
        if (round_up && (double)t < d)
            t++;
        else if (!round_up && (double)t > d)
            t--;
        *out = t;
    }
    return true;
}

static bool jwt_claim_sub(struct jwt_walk *w, const struct json_value *v,
                          struct jwt_claims *claims)
{
    if (v->type != JSON_STRING)
        return false;
    if (v->str_len == 0)
        return true; /* reported as JWT_MISSING_SUB */
    if (!jwt_keep_string(w, v, JWT_MAX_SUB_LEN, &claims->sub))
        return false;
    return memchr(w->buf + claims->sub.off, 0, claims->sub.len) == NULL;
}

/* One claim; returns false for a malformed one. */
static bool jwt_claim(struct jwt_walk *w, const struct json_value *key,
                      const struct json_value *v, struct jwt_claims *claims)
{
    static const char *const names[] = {"sub", "exp", "nbf", "join", "pub", "send", "admin"};
    bool esc = key->flags & JSON_F_ESCAPED;
    size_t k;
    for (k = 0; k < WSD_ARRAY_LEN(names); k++) {
        if (json_str_equal_lit(key->p + 1, key->len - 2, esc, names[k], strlen(names[k])))
            break;
    }
    if (k == WSD_ARRAY_LEN(names))
        return true;
    if (w->seen & (1u << k))
        return false;
    w->seen |= 1u << k;
    switch (k) {
    case 0: return jwt_claim_sub(w, v, claims);
    case 1: return (claims->has_exp = jwt_claim_time(v, false, &claims->exp));
    case 2: return (claims->has_nbf = jwt_claim_time(v, true, &claims->nbf));
    case 3: return jwt_claim_patterns(w, v, &claims->list[JWT_LIST_JOIN]);
    case 4: return jwt_claim_patterns(w, v, &claims->list[JWT_LIST_PUB]);
    case 5: return jwt_claim_patterns(w, v, &claims->list[JWT_LIST_SEND]);
    default:
        if (v->type != JSON_TRUE && v->type != JSON_FALSE)
            return false;
        claims->admin = v->type == JSON_TRUE;
        return true;
    }
}

/* Decodes the payload into buf and reads the claims, packing their strings in place. */
static enum jwt_status jwt_payload(const struct jwt_parts *parts, struct jwt_claims *claims,
                                   uint8_t *buf, size_t cap)
{
    long n = base64_decode(buf, cap, parts->p, parts->p_len, BASE64_URL, BASE64_PAD_NONE);
    struct json_value root, key, val;
    if (n < 0 || n > UINT16_MAX || json_validate(buf, (size_t)n, &root) < 0 ||
        root.type != JSON_OBJECT)
        return JWT_MALFORMED;
    struct jwt_walk w = {.buf = buf, .len = (size_t)n, .used = 0, .seen = 0};
    struct json_iter it;
    int rc;
    json_iter_init(&it, buf, (size_t)n, &root, 1);
    while ((rc = json_iter_next(&it, &key, &val)) == 1) {
        if (!jwt_claim(&w, &key, &val, claims))
            return JWT_MALFORMED;
    }
    if (rc < 0)
        return JWT_MALFORMED;
    claims->used = (uint16_t)w.used;
    return JWT_OK;
}

static enum jwt_status jwt_check_times(const struct jwt_claims *c, const struct jwt_policy *pol)
{
    if (c->sub.len == 0)
        return JWT_MISSING_SUB;
    if (pol->require_exp && !c->has_exp)
        return JWT_MALFORMED;
    if (c->has_exp && c->exp < INT64_MAX - pol->leeway && pol->now > c->exp + pol->leeway)
        return JWT_EXPIRED;
    if (c->has_nbf && c->nbf > INT64_MIN + pol->leeway && pol->now < c->nbf - pol->leeway)
        return JWT_NOT_YET_VALID;
    return JWT_OK;
}

enum jwt_status jwt_verify(const char *token, size_t len, const struct jwt_keys *keys,
                           const struct jwt_policy *policy, struct jwt_claims *claims,
                           uint8_t *buf, size_t cap)
{
    struct jwt_parts parts;
    enum jwt_alg alg;
    enum jwt_status st;
    memset(claims, 0, sizeof(*claims));
    if (len > JWT_MAX_TOKEN_LEN || !jwt_split(token, len, &parts))
        return JWT_MALFORMED;
    st = jwt_header(&parts, keys, &alg);
    if (st == JWT_OK)
        st = jwt_check_signature(&parts, keys, alg);
    if (st == JWT_OK)
        st = jwt_payload(&parts, claims, buf, cap);
    if (st == JWT_OK)
        st = jwt_check_times(claims, policy);
    if (st != JWT_OK)
        memset(claims, 0, sizeof(*claims));
    return st;
}

const char *jwt_status_name(enum jwt_status st)
{
    switch (st) {
    case JWT_OK: return "ok";
    case JWT_MALFORMED: return "malformed token";
    case JWT_BAD_SIGNATURE: return "bad signature";
    case JWT_WRONG_ALG: return "algorithm not accepted";
    case JWT_EXPIRED: return "token expired";
    case JWT_NOT_YET_VALID: return "token not yet valid";
    case JWT_MISSING_SUB: return "token has no sub";
    }
    return "unknown";
}

bool jwt_pattern_match(const char *pattern, size_t pattern_len, const char *name,
                       size_t name_len)
{
    if (pattern_len > 0 && pattern[pattern_len - 1] == '*') {
        size_t prefix = pattern_len - 1;
        return name_len >= prefix && memcmp(pattern, name, prefix) == 0;
    }
    return pattern_len == name_len && memcmp(pattern, name, name_len) == 0;
}

bool jwt_claims_allow(const struct jwt_claims *claims, const uint8_t *buf, enum jwt_list list,
                      const char *name, size_t name_len)
{
    const struct jwt_patterns *l = &claims->list[list];
    if (!l->present)
        return list == JWT_LIST_SEND;
    for (uint16_t k = 0; k < l->count; k++) {
        const char *pat = (const char *)buf + l->pat[k].off;
        if (jwt_pattern_match(pat, l->pat[k].len, name, name_len))
            return true;
    }
    return false;
}

/* Writes base64url(header) "." base64url(payload) into out; returns its length or <0. */
static long jwt_signing_input(char *out, size_t cap, const char *header, const void *payload,
                              size_t payload_len, size_t sig_len)
{
    size_t h = base64_encoded_len(strlen(header), false);
    size_t p = base64_encoded_len(payload_len, false);
    size_t s = base64_encoded_len(sig_len, false);
    if (payload_len > JWT_MAX_TOKEN_LEN || h + p + s + 2 > JWT_MAX_TOKEN_LEN ||
        h + p + s + 3 > cap)
        return WSD_ETOOBIG;
    base64_encode(out, (const uint8_t *)header, strlen(header), BASE64_URL, false);
    out[h] = '.';
    base64_encode(out + h + 1, payload, payload_len, BASE64_URL, false);
    return (long)(h + 1 + p);
}

/* Appends "." base64url(sig) and the NUL; returns the token length. */
static long jwt_finish_token(char *out, size_t at, const uint8_t *sig, size_t sig_len)
{
    out[at] = '.';
    size_t s = base64_encode(out + at + 1, sig, sig_len, BASE64_URL, false);
    out[at + 1 + s] = '\0';
    return (long)(at + 1 + s);
}

long jwt_sign_hs256(char *out, size_t cap, const void *payload, size_t payload_len,
                    const uint8_t *secret, size_t secret_len)
{
    uint8_t mac[32];
    long n = jwt_signing_input(out, cap, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload,
                               payload_len, sizeof(mac));
    if (n < 0)
        return n;
    if (!jwt_hmac(secret, secret_len, out, (size_t)n, mac))
        return WSD_EINVAL;
    return jwt_finish_token(out, (size_t)n, mac, sizeof(mac));
}

long jwt_sign_ed25519(char *out, size_t cap, const void *payload, size_t payload_len,
                      const uint8_t secret_key[64])
{
    uint8_t sig[64];
    long n = jwt_signing_input(out, cap, "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}", payload,
                               payload_len, sizeof(sig));
    if (n < 0)
        return n;
    if (sodium_init() < 0 ||
        crypto_sign_detached(sig, NULL, (const unsigned char *)out, (size_t)n, secret_key) != 0)
        return WSD_EINVAL;
    return jwt_finish_token(out, (size_t)n, sig, sizeof(sig));
}
