/*
 * http.c - libFuzzer target for the request-head parser and the handshake: parses the
 * input with small and with default limits and, when a head parses, runs hs_check() with
 * fixed options (allowed origins, two subprotocols, permessage-deflate on) and writes the
 * response. Besides memory errors it checks the parser's own promises and aborts on a
 * broken one: a head is never longer than the input or the limit, is decided exactly at
 * its last byte, and every view lies inside it.
 */
#include "proto/handshake.h"
#include "proto/http.h"

#include "core/wsd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fuzz_origins[] = {"https://app.example.com", "https://*.example.org",
                                           "http://localhost:8080"};
static const char *const fuzz_protocols[] = {"wsd.v1.msgpack", "wsd.v1.json"};
static const struct pmd_config fuzz_deflate = {
    .enabled = true,
    .level = 6,
    .min_size = 64,
    .max_window_bits = 15,
    .server_no_context_takeover = false,
    .client_no_context_takeover = true,
    .mem_level = 8,
};

static void fuzz_require(bool ok)
{
    if (!ok)
        abort();
}

static void fuzz_view_inside(struct http_view v, const char *buf, int head_len)
{
    fuzz_require(v.p >= buf && v.p + v.len <= buf + head_len);
}

static void fuzz_check_views(const struct http_request *req, const char *buf, int head_len)
{
    fuzz_view_inside(req->method, buf, head_len);
    fuzz_view_inside(req->target, buf, head_len);
    fuzz_view_inside(req->path, buf, head_len);
    fuzz_view_inside(req->query, buf, head_len);
    fuzz_require(req->num_headers <= HTTP_MAX_HEADERS);
    for (size_t i = 0; i < req->num_headers; i++) {
        fuzz_view_inside(req->headers[i].name, buf, head_len);
        fuzz_view_inside(req->headers[i].value, buf, head_len);
        fuzz_require(req->headers[i].name.len > 0);
    }
}

/* The head must be undecided one byte short of its end (checked on an exact-size copy). */
static void fuzz_check_prefix(const char *buf, int head_len, size_t max_head, size_t max_hdrs)
{
    struct http_request req;
    char *copy = malloc((size_t)head_len);

    if (copy == NULL)
        return;
    memcpy(copy, buf, (size_t)head_len);
    fuzz_require(http_parse_request(copy, (size_t)head_len - 1, max_head, max_hdrs, &req) ==
                 WSD_EAGAIN);
    fuzz_require(http_parse_request(copy, (size_t)head_len, max_head, max_hdrs, &req) ==
                 head_len);
    free(copy);
}

static void fuzz_handshake(const struct http_request *req)
{
    struct hs_options opt = {
        .allowed_origins = fuzz_origins,
        .num_allowed_origins = WSD_ARRAY_LEN(fuzz_origins),
        .subprotocols = fuzz_protocols,
        .num_subprotocols = WSD_ARRAY_LEN(fuzz_protocols),
        .deflate = &fuzz_deflate,
    };
    struct hs_result res;
    char out[1024];
    char value[64];
    int n;

    (void)hs_is_upgrade(req);
    (void)http_header_has_token(req, "Connection", "upgrade");
    (void)http_query_param(req, "token", value, sizeof(value));
    (void)http_query_param(req, "session", value, 4);
    if (hs_check(req, &opt, &res) == 0) {
        fuzz_require(res.status == 101 && strlen(res.accept) == HS_ACCEPT_LEN);
        n = hs_write_response(&res, &opt, out, sizeof(out));
        fuzz_require(n > 0 && memcmp(out, "HTTP/1.1 101 ", 13) == 0);
    } else {
        fuzz_require(res.status >= 400 && res.status < 500 && res.error != NULL);
        char body[128];
        size_t len = hs_error_body(&res, body, sizeof(body));
        fuzz_require(len >= 1 && len <= sizeof(body) && body[len - 1] == '\n');
        n = http_write_response(out, sizeof(out), res.status, hs_error_headers(&res),
                                "text/plain; charset=utf-8", body, len);
        fuzz_require(n > 0);
    }
}

static void fuzz_parse(const char *buf, size_t size, size_t max_head, size_t max_hdrs)
{
    static struct http_request req;
    int rc = http_parse_request(buf, size, max_head, max_hdrs, &req);

    if (rc == WSD_EAGAIN)
        fuzz_require(size < max_head);
    if (rc <= 0)
        return;
    fuzz_require((size_t)rc <= size && (size_t)rc < max_head);
    fuzz_require(req.num_headers <= max_hdrs);
    fuzz_check_views(&req, buf, rc);
    fuzz_check_prefix(buf, rc, max_head, max_hdrs);
    fuzz_handshake(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;

    fuzz_parse(buf, size, 256, 4);
    fuzz_parse(buf, size, 8192, HTTP_MAX_HEADERS);
    return 0;
}
