/*
 * jwt.h - JSON Web Token verification (RFC 7519) for compact JWS (RFC 7515) tokens
 * signed with HS256 (HMAC-SHA256, OpenSSL) or EdDSA (Ed25519, libsodium), and the
 * permission patterns of the claims.
 *
 * The algorithm is fixed by the configured keys, never taken from the token: a token
 * whose "alg" has no configured key ("none", "HS512", "HS256" with only an Ed25519 key,
 * ...) is JWT_WRONG_ALG. With both keys configured either algorithm is accepted and
 * verified with its own key. The header must be a JSON object; "typ", when present,
 * must be "JWT"; a "crit" member is JWT_MALFORMED (no extension is understood).
 *
 * No allocation: the claims are views into a caller buffer that receives the decoded
 * payload, and the strings the claims keep (sub and the patterns, unescaped) are packed
 * at its start, so the caller can keep just buf[0..claims.used).
 */
#ifndef WSD_PROTO_JWT_H
#define WSD_PROTO_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JWT_MAX_TOKEN_LEN 8192 /* longer tokens are JWT_MALFORMED */
#define JWT_PAYLOAD_BUF 6144   /* a payload buffer of this size fits any accepted token */
#define JWT_MAX_SUB_LEN 128
#define JWT_MAX_PATTERNS 64    /* per list; more is JWT_MALFORMED */
#define JWT_MAX_PATTERN_LEN 256

enum jwt_status {
    JWT_OK = 0,
    JWT_MALFORMED,     /* not three base64url parts, bad JSON, bad claim types, too long,
                          exp absent when required */
    JWT_BAD_SIGNATURE,
    JWT_WRONG_ALG,     /* alg missing, "none", or without a configured key */
    JWT_EXPIRED,       /* now > exp + leeway */
    JWT_NOT_YET_VALID, /* now < nbf - leeway */
    JWT_MISSING_SUB,   /* sub absent or empty */
};

/* The configured keys: a NULL pointer means "not configured". */
struct jwt_keys {
    const uint8_t *hs256_secret;
    size_t hs256_secret_len;
    const uint8_t *ed25519_public_key; /* 32 bytes */
};

/* Validation policy. */
struct jwt_policy {
    int64_t now;      /* seconds since the epoch */
    int64_t leeway;   /* seconds, >= 0 */
    bool require_exp; /* a token without exp is JWT_MALFORMED */
};

enum jwt_list {
    JWT_LIST_JOIN = 0,
    JWT_LIST_PUB,
    JWT_LIST_SEND,
    JWT_NUM_LISTS,
};

/* A string in the payload buffer. */
struct jwt_span {
    uint16_t off;
    uint16_t len;
};

struct jwt_patterns {
    bool present;         /* the claim was in the token */
    uint16_t count;
    struct jwt_span pat[JWT_MAX_PATTERNS];
};

struct jwt_claims {
    struct jwt_span sub;  /* 1..JWT_MAX_SUB_LEN bytes of valid UTF-8 */
    bool has_exp;
    int64_t exp;          /* a fractional exp is rounded down */
    bool has_nbf;
    int64_t nbf;          /* a fractional nbf is rounded up */
    bool admin;
    struct jwt_patterns list[JWT_NUM_LISTS];
    uint16_t used;        /* bytes of the payload buffer that the spans refer to */
};

/*
 * Verifies token[0..len) and fills claims, with strings in buf[0..cap) (cap at least
 * JWT_PAYLOAD_BUF; a smaller buffer makes long tokens JWT_MALFORMED). The signature is
 * checked before the payload is read; exp/nbf are checked against policy. Claims:
 * "sub" a string of 1..128 bytes (absent/empty: JWT_MISSING_SUB; another type or longer:
 * JWT_MALFORMED); "exp"/"nbf" numbers; "join"/"pub"/"send" an array of strings or one
 * string (anything else JWT_MALFORMED; at most JWT_MAX_PATTERNS of at most
 * JWT_MAX_PATTERN_LEN bytes); "admin" a boolean. Other claims are ignored; one of these
 * given twice is JWT_MALFORMED. A header over 512 bytes (decoded) is JWT_MALFORMED.
 * A sub holding a NUL byte is JWT_MALFORMED.
 * Returns a jwt_status; claims and buf are meaningful only for JWT_OK.
 */
enum jwt_status jwt_verify(const char *token, size_t len, const struct jwt_keys *keys,
                           const struct jwt_policy *policy, struct jwt_claims *claims,
                           uint8_t *buf, size_t cap);

/* Short name of a status for logs and error messages ("expired", ...). Never NULL. */
const char *jwt_status_name(enum jwt_status st);

/*
 * True when name[0..name_len) matches pattern[0..pattern_len): "*" matches everything,
 * a pattern ending in '*' matches every name that starts with what precedes it
 * ("room:*" matches "room:" and "room:a"), anything else matches only itself.
 */
bool jwt_pattern_match(const char *pattern, size_t pattern_len, const char *name,
                       size_t name_len);

/*
 * True when some pattern of list matches name. An absent "send" list allows everyone;
 * an absent "join" or "pub" list allows nothing. buf is the payload buffer that
 * jwt_verify() filled (or a copy of its first claims->used bytes).
 */
bool jwt_claims_allow(const struct jwt_claims *claims, const uint8_t *buf, enum jwt_list list,
                      const char *name, size_t name_len);

/*
 * Mints a token: base64url({"alg":"HS256","typ":"JWT"}) . base64url(payload) .
 * base64url(HMAC-SHA256). payload is the claims JSON, used as given (the caller makes it
 * valid). Writes a NUL-terminated token into out[0..cap). Returns its length, or
 * WSD_ETOOBIG when it does not fit (or would exceed JWT_MAX_TOKEN_LEN), WSD_EINVAL when
 * the HMAC fails.
 */
long jwt_sign_hs256(char *out, size_t cap, const void *payload, size_t payload_len,
                    const uint8_t *secret, size_t secret_len);

/* The same with {"alg":"EdDSA","typ":"JWT"} and an Ed25519 secret key (64 bytes, libsodium
 * layout). Same returns. */
long jwt_sign_ed25519(char *out, size_t cap, const void *payload, size_t payload_len,
                      const uint8_t secret_key[64]);

#endif
