/*
 * handshake.c - the server's side of the RFC 6455 opening handshake (section 4.2.1 checks,
 * section 4.2.2 answer): status for every refusal, Sec-WebSocket-Accept, subprotocol and
 * permessage-deflate selection, and the 101 and error responses.
 */
#include "proto/handshake.h"

#include "core/wsd.h"

#include <assert.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <string.h>

#define HS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define HS_GUID_LEN (sizeof(HS_GUID) - 1)
#define HS_KEY_LEN 24     /* base64 of 16 bytes: 22 characters and "==" */
#define HS_KEY_STACK_MAX 64 /* longer keys (never valid) are hashed in two steps */

/* Fills a fixed output buffer; len keeps counting past cap so overflow is seen once. */
struct hs_out {
    char *p;
    size_t cap;
    size_t len;
};

static void hs_put(struct hs_out *o, const char *s)
{
    size_t n = strlen(s);

    if (n <= o->cap && o->len <= o->cap - n)
        memcpy(o->p + o->len, s, n);
    o->len += n;
}

static unsigned char hs_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c | 0x20) : c;
}

static bool hs_ci_equal(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (hs_lower((unsigned char)a[i]) != hs_lower((unsigned char)b[i]))
            return false;
    }
    return true;
}

static bool hs_view_is(const struct http_view *v, const char *s)
{
    size_t n = strlen(s);
    return v->len == n && memcmp(v->p, s, n) == 0;
}

static int hs_fail(struct hs_result *res, int status, const char *why)
{
    res->status = status;
    res->error = why;
    return WSD_EINVAL;
}

static bool hs_is_base64(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

/* Standard base64 with padding that decodes to exactly 16 bytes. */
static bool hs_key_is_valid(const struct http_view *key)
{
    if (key->len != HS_KEY_LEN || key->p[22] != '=' || key->p[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++) {
        if (!hs_is_base64((unsigned char)key->p[i]))
            return false;
    }
    return true;
}

/* SHA-1 of key + GUID through an EVP context, for keys too long for the stack buffer. */
static bool hs_sha1_long(const char *key, size_t key_len, unsigned char md[SHA_DIGEST_LENGTH])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, key, key_len) == 1 &&
              EVP_DigestUpdate(ctx, HS_GUID, HS_GUID_LEN) == 1 &&
              EVP_DigestFinal_ex(ctx, md, NULL) == 1;

    EVP_MD_CTX_free(ctx);
    return ok;
}

void hs_accept_key(const char *key, size_t key_len, char out[HS_ACCEPT_LEN + 1])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    unsigned char in[HS_KEY_STACK_MAX + HS_GUID_LEN];

    if (key_len <= HS_KEY_STACK_MAX) {
        memcpy(in, key, key_len);
        memcpy(in + key_len, HS_GUID, HS_GUID_LEN);
        SHA1(in, key_len + HS_GUID_LEN, md);
    } else if (!hs_sha1_long(key, key_len, md)) {
        out[0] = '\0';
        return;
    }
    EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH);
}

bool hs_is_upgrade(const struct http_request *req)
{
    return http_header_has_token(req, "Upgrade", "websocket");
}

/* Method, version, Host, Upgrade and Connection (405, 400, 426). */
static int hs_check_request_line(const struct http_request *req, struct hs_result *res)
{
    /* HEAD is answered as a GET without an upgrade would be (RFC 9110 9.3.2), and
       cannot upgrade: the response has no content for the switch to follow. */
    if (hs_view_is(&req->method, "HEAD"))
        return hs_fail(res, 426, "websocket upgrade required");
    if (!hs_view_is(&req->method, "GET"))
        return hs_fail(res, 405, "method not allowed");
    if (req->version_major < 1 || (req->version_major == 1 && req->version_minor < 1))
        return hs_fail(res, 400, "http/1.1 required");
    size_t hosts = http_count_headers(req, "Host");
    if (hosts == 0)
        return hs_fail(res, 400, "missing host");
    if (hosts > 1)
        return hs_fail(res, 400, "duplicate host");

    bool upgrade = hs_is_upgrade(req);
    bool connection = http_header_has_token(req, "Connection", "upgrade");
    if (!upgrade && !connection)
        return hs_fail(res, 426, "websocket upgrade required");
    if (!upgrade)
        return hs_fail(res, 400, "upgrade header lacks websocket");
    if (!connection)
        return hs_fail(res, 400, "connection header lacks upgrade");
    return 0;
}

/* Sec-WebSocket-Version (426) and Sec-WebSocket-Key (400); computes the accept value. */
static int hs_check_ws_headers(const struct http_request *req, struct hs_result *res)
{
    const struct http_header *h = http_find_header(req, "Sec-WebSocket-Version");

    if (h == NULL || http_count_headers(req, "Sec-WebSocket-Version") != 1 ||
        !hs_view_is(&h->value, "13"))
        return hs_fail(res, 426, "unsupported websocket version");

    size_t keys = http_count_headers(req, "Sec-WebSocket-Key");
    if (keys == 0)
        return hs_fail(res, 400, "missing sec-websocket-key");
    if (keys > 1)
        return hs_fail(res, 400, "duplicate sec-websocket-key");
    h = http_find_header(req, "Sec-WebSocket-Key");
    if (!hs_key_is_valid(&h->value))
        return hs_fail(res, 400, "invalid sec-websocket-key");
    hs_accept_key(h->value.p, h->value.len, res->accept);
    return 0;
}

/* Characters of the labels that "*." may stand for. */
static bool hs_is_host_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.';
}

/* "*" matches any origin; scheme, "*." and domain any subdomain; else only itself. */
static bool hs_origin_matches(const char *pattern, const struct http_view *origin)
{
    size_t plen = strlen(pattern);
    const char *star = strstr(pattern, "*.");

    if (plen == 1 && pattern[0] == '*')
        return true;
    if (star == NULL)
        return origin->len == plen && hs_ci_equal(origin->p, pattern, plen);

    size_t pre = (size_t)(star - pattern);
    size_t suf = plen - pre - 1; /* ".domain", from the dot */
    if (origin->len <= pre + suf || !hs_ci_equal(origin->p, pattern, pre) ||
        !hs_ci_equal(origin->p + origin->len - suf, star + 1, suf))
        return false;
    if (origin->p[pre] == '.')
        return false;
    for (size_t i = pre; i < origin->len - suf; i++) {
        if (!hs_is_host_char((unsigned char)origin->p[i]))
            return false;
    }
    return true;
}

/* True when every Origin header matches an allowed pattern (or no list is set). */
static bool hs_origin_allowed(const struct http_request *req, const struct hs_options *opt)
{
    if (opt->allowed_origins == NULL || opt->num_allowed_origins == 0)
        return true;
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http_header *h = &req->headers[i];
        if (h->name.len != 6 || !hs_ci_equal(h->name.p, "Origin", 6))
            continue;
        bool ok = false;
        for (size_t k = 0; k < opt->num_allowed_origins && !ok; k++)
            ok = hs_origin_matches(opt->allowed_origins[k], &h->value);
        if (!ok)
            return false;
    }
    return true;
}

/* True when some Sec-WebSocket-Protocol list names proto (case-sensitive). */
static bool hs_client_offers(const struct http_request *req, const char *proto)
{
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http_header *h = &req->headers[i];
        if (h->name.len != 22 || !hs_ci_equal(h->name.p, "Sec-WebSocket-Protocol", 22))
            continue;
        size_t pos = 0;
        struct http_view e;
        while (http_list_next(h->value.p, h->value.len, &pos, &e)) {
            if (hs_view_is(&e, proto))
                return true;
        }
    }
    return false;
}

/* The first of the server's subprotocols that the client offers, or -1. */
static int hs_pick_subprotocol(const struct http_request *req, const struct hs_options *opt)
{
    for (size_t s = 0; s < opt->num_subprotocols && s < INT_MAX; s++) {
        if (hs_client_offers(req, opt->subprotocols[s]))
            return (int)s;
    }
    return -1;
}

/* Hands every Sec-WebSocket-Extensions value to pmd_negotiate() (400 when unparseable). */
static int hs_negotiate_deflate(const struct http_request *req, const struct hs_options *opt,
                                struct hs_result *res)
{
    const char *values[HTTP_MAX_HEADERS];
    size_t lens[HTTP_MAX_HEADERS];
    size_t n = 0;

    if (opt->deflate == NULL || !opt->deflate->enabled)
        return 0;
    for (size_t i = 0; i < req->num_headers && n < HTTP_MAX_HEADERS; i++) {
        const struct http_header *h = &req->headers[i];
        if (h->name.len != 24 || !hs_ci_equal(h->name.p, "Sec-WebSocket-Extensions", 24))
            continue;
        values[n] = h->value.p;
        lens[n++] = h->value.len;
    }
    if (n == 0)
        return 0;
    int rc = pmd_negotiate(values, lens, n, opt->deflate, &res->pmd);
    if (rc < 0)
        return hs_fail(res, 400, "invalid sec-websocket-extensions");
    res->deflate = rc == 1;
    return 0;
}

int hs_check(const struct http_request *req, const struct hs_options *opt,
             struct hs_result *res)
{
    memset(res, 0, sizeof(*res));
    res->subprotocol = -1;

    int rc = hs_check_request_line(req, res);
    if (rc == 0)
        rc = hs_check_ws_headers(req, res);
    if (rc < 0)
        return rc;
    if (!hs_origin_allowed(req, opt))
        return hs_fail(res, 403, "origin not allowed");
    res->subprotocol = hs_pick_subprotocol(req, opt);
    rc = hs_negotiate_deflate(req, opt, res);
    if (rc < 0) {
        res->subprotocol = -1;
        return rc;
    }
    res->status = 101;
    return 0;
}

int hs_write_response(const struct hs_result *res, const struct hs_options *opt, char *out,
                      size_t cap)
{
    struct hs_out o = {out, cap, 0};
    char ext[PMD_RESPONSE_MAX];

    assert(res->status == 101);
    hs_put(&o, "HTTP/1.1 101 Switching Protocols\r\n"
               "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               "Sec-WebSocket-Accept: ");
    hs_put(&o, res->accept);
    hs_put(&o, "\r\n");
    if (res->subprotocol >= 0) {
        assert((size_t)res->subprotocol < opt->num_subprotocols);
        hs_put(&o, "Sec-WebSocket-Protocol: ");
        hs_put(&o, opt->subprotocols[res->subprotocol]);
        hs_put(&o, "\r\n");
    }
    if (res->deflate) {
        int rc = pmd_response_value(&res->pmd, ext, sizeof(ext));
        if (rc < 0)
            return rc;
        hs_put(&o, "Sec-WebSocket-Extensions: ");
        hs_put(&o, ext);
        hs_put(&o, "\r\n");
    }
    hs_put(&o, "\r\n");
    if (o.len > cap || o.len > INT_MAX)
        return WSD_ETOOBIG;
    return (int)o.len;
}

/*
 * 426 names what to upgrade to (RFC 9110 section 15.5.22) and the one version spoken
 * (RFC 6455 section 4.4); the Upgrade field goes with its Connection option (7.8).
 */
const char *hs_error_headers(const struct hs_result *res)
{
    if (res->status == 426)
        return "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n";
    if (res->status == 405)
        return "Allow: GET, HEAD\r\n";
    return NULL;
}

size_t hs_error_body(const struct hs_result *res, char *body, size_t cap)
{
    const char *why = res->error != NULL ? res->error : http_status_text(res->status);
    size_t n = WSD_MIN(strlen(why), cap - 1);

    memcpy(body, why, n);
    body[n++] = '\n';
    return n;
}
