/*
 * handshake_test.c - RFC 6455 section 4.2 server handshake: every refusal status, the
 * order of the checks, Sec-WebSocket-Accept, Origin patterns, subprotocol choice, the 101
 * and error responses, and requests captured from real clients. Tests whose names start
 * with negotiates_permessage_deflate run the real negotiation of proto/deflate.c.
 */
#include "proto/handshake.h"

#include "core/wsd.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define HOST "Host: server.example.com\r\n"
#define UPG "Upgrade: websocket\r\n"
#define CONN "Connection: Upgrade\r\n"
#define KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define VER "Sec-WebSocket-Version: 13\r\n"
#define GET "GET /ws HTTP/1.1\r\n"
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#include "tests/unit/upgrade_requests.h"

/* Node ws 8 (captured): Host comes last. */
static const char node_upgrade[] =
    "GET /echo HTTP/1.1\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: WYreK0IR2fWyun0VWtf5DQ==\r\n"
    "Connection: Upgrade\r\n"
    "Upgrade: websocket\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "Sec-WebSocket-Protocol: wsd.v1.json\r\n"
    "Origin: https://app.example.com\r\n"
    "Host: 127.0.0.1:35531\r\n"
    "\r\n";

static const char *const protocols[] = {"wsd.v1.msgpack", "wsd.v1.json"};

static const struct pmd_config deflate_on = {
    .enabled = true,
    .level = 6,
    .min_size = 0,
    .max_window_bits = 15,
    .mem_level = 8,
};

static struct hs_options opts(void)
{
    return (struct hs_options){
        .subprotocols = protocols,
        .num_subprotocols = WSD_ARRAY_LEN(protocols),
    };
}

static struct http_request req;

/* Parses head (which must parse) and runs hs_check on it. */
static int check(const char *head, const struct hs_options *opt, struct hs_result *res)
{
    int n = http_parse_request(head, strlen(head), 8192, HTTP_MAX_HEADERS, &req);

    cr_assert_eq(n, (int)strlen(head), "head does not parse: %d", n);
    return hs_check(&req, opt, res);
}

static int status_of(const char *head)
{
    struct hs_options opt = opts();
    struct hs_result res;
    int rc = check(head, &opt, &res);

    cr_assert_eq(rc, res.status == 101 ? 0 : WSD_EINVAL);
    if (res.status != 101)
        cr_assert_not_null(res.error);
    return res.status;
}

/* Writes the response for res into out (NUL-terminated) and returns its length. */
static int response(const struct hs_result *res, const struct hs_options *opt, char *out,
                    size_t cap)
{
    char body[128];
    int n = res->status == 101
                ? hs_write_response(res, opt, out, cap - 1)
                : http_write_response(out, cap - 1, res->status, hs_error_headers(res),
                                      "text/plain; charset=utf-8", body,
                                      hs_error_body(res, body, sizeof(body)));

    cr_assert_gt(n, 0);
    out[n] = '\0';
    return n;
}

/* ---- Sec-WebSocket-Accept ---- */

Test(handshake, accept_key_matches_rfc6455_example)
{
    char out[HS_ACCEPT_LEN + 1];

    hs_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out);
    cr_assert_str_eq(out, RFC_ACCEPT);
}

Test(handshake, accept_key_hashes_keys_of_any_length)
{
    static char key[101];
    char out[HS_ACCEPT_LEN + 1];

    hs_accept_key("", 0, out);
    cr_assert_str_eq(out, "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w=");
    memset(key, 'a', 65);
    hs_accept_key(key, 64, out);
    cr_assert_str_eq(out, "jGdebzmm20QI0DmM5dGETWg7dwQ=");
    hs_accept_key(key, 65, out);
    cr_assert_str_eq(out, "swm90f4niJhdNaVNodQ0yVmfVfM=");
    memset(key, 'x', 100);
    hs_accept_key(key, 100, out);
    cr_assert_str_eq(out, "DJTE+uYDnPxiT+W6VvIG/iPUxv8=");
}

/* ---- success ---- */

Test(handshake, accepts_rfc6455_sample_handshake)
{
    static const char head[] = "GET /chat HTTP/1.1\r\n" HOST UPG CONN KEY
                               "Origin: http://example.com\r\n"
                               "Sec-WebSocket-Protocol: chat, superchat\r\n" VER "\r\n";
    static const char want[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                               "Sec-WebSocket-Protocol: chat\r\n"
                               "\r\n";
    const char *const mine[] = {"chat"};
    struct hs_options opt = {.subprotocols = mine, .num_subprotocols = 1};
    struct hs_result res;
    char out[512];

    cr_assert_eq(check(head, &opt, &res), 0);
    cr_assert_eq(res.status, 101);
    cr_assert_null(res.error);
    cr_assert_str_eq(res.accept, RFC_ACCEPT);
    cr_assert_eq(res.subprotocol, 0);
    cr_assert_not(res.deflate);
    cr_assert_eq(response(&res, &opt, out, sizeof(out)), (int)strlen(want));
    cr_assert_str_eq(out, want);
}

Test(handshake, accepts_requests_from_real_clients)
{
    const struct {
        const char *head;
        const char *accept;
        int subprotocol;
    } cases[] = {
        {chrome_upgrade, "8zdjogyOHKp1uj3s5UtoyATzxpI=", 0},
        {firefox_upgrade, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=", 1},
        {python_upgrade, "qkKrlAn5EBVdUf1RhSLknmWZoIo=", 1},
        {node_upgrade, "sCo9E6XKjojvUsLmJCeB9hdRp8g=", 1},
    };
    struct hs_options opt = opts();
    struct hs_result res;
    char out[512];

    for (size_t i = 0; i < WSD_ARRAY_LEN(cases); i++) {
        cr_assert_eq(check(cases[i].head, &opt, &res), 0, "client %zu", i);
        cr_assert_eq(res.status, 101);
        cr_assert_str_eq(res.accept, cases[i].accept);
        cr_assert_eq(res.subprotocol, cases[i].subprotocol);
        cr_assert_not(res.deflate, "deflate is off in these options");
        response(&res, &opt, out, sizeof(out));
        cr_assert_not_null(strstr(out, cases[i].accept));
        cr_assert_null(strstr(out, "Sec-WebSocket-Extensions"));
    }
}

Test(handshake, is_upgrade_looks_at_the_upgrade_header)
{
    static const char plain[] = "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\r\n";
    static const char up[] = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: foo, WebSocket\r\n\r\n";

    cr_assert_gt(http_parse_request(up, strlen(up), 8192, 64, &req), 0);
    cr_assert(hs_is_upgrade(&req));
    cr_assert_gt(http_parse_request(plain, strlen(plain), 8192, 64, &req), 0);
    cr_assert_not(hs_is_upgrade(&req));
}

/* ---- refusals, one per rule ---- */

Test(handshake, rejects_other_methods_with_405)
{
    struct hs_options opt = opts();
    struct hs_result res;
    char out[512];

    cr_assert_eq(status_of("POST /ws HTTP/1.1\r\n" HOST UPG CONN KEY VER "\r\n"), 405);
    cr_assert_eq(status_of("get /ws HTTP/1.1\r\n" HOST UPG CONN KEY VER "\r\n"), 405);
    check("PUT /ws HTTP/1.1\r\n" HOST UPG CONN KEY VER "\r\n", &opt, &res);
    response(&res, &opt, out, sizeof(out));
    cr_assert_not_null(strstr(out, "HTTP/1.1 405 Method Not Allowed\r\n"));
    cr_assert_not_null(strstr(out, "\r\nAllow: GET, HEAD\r\n"));
}

Test(handshake, head_is_answered_as_a_get_without_upgrade_and_never_upgrades)
{
    cr_assert_eq(status_of("HEAD /ws HTTP/1.1\r\n" HOST UPG CONN KEY VER "\r\n"), 426);
    cr_assert_eq(status_of("HEAD /ws HTTP/1.1\r\n" HOST "\r\n"), 426);
}

Test(handshake, rejects_http_1_0_with_400)
{
    cr_assert_eq(status_of("GET /ws HTTP/1.0\r\n" HOST UPG CONN KEY VER "\r\n"), 400);
    cr_assert_eq(status_of("GET /ws HTTP/1.9\r\n" HOST UPG CONN KEY VER "\r\n"), 101);
}

Test(handshake, rejects_missing_or_duplicate_host_with_400)
{
    cr_assert_eq(status_of(GET UPG CONN KEY VER "\r\n"), 400);
    cr_assert_eq(status_of(GET HOST UPG CONN KEY VER HOST "\r\n"), 400);
    cr_assert_eq(status_of(GET "Host: a\r\nhost: b\r\n" UPG CONN KEY VER "\r\n"), 400);
}

Test(handshake, answers_plain_request_with_426_naming_websocket)
{
    struct hs_options opt = opts();
    struct hs_result res;
    char out[512];

    cr_assert_eq(status_of(GET HOST "\r\n"), 426);
    cr_assert_eq(status_of(GET HOST "Connection: keep-alive\r\nUpgrade: h2c\r\n" VER KEY "\r\n"),
                 426);
    check(GET HOST "\r\n", &opt, &res);
    response(&res, &opt, out, sizeof(out));
    cr_assert_not_null(strstr(out, "HTTP/1.1 426 Upgrade Required\r\n"));
    cr_assert_not_null(strstr(out, "\r\nUpgrade: websocket\r\n"));
    cr_assert_not_null(strstr(out, "\r\nSec-WebSocket-Version: 13\r\n"));
}

Test(handshake, rejects_half_an_upgrade_with_400)
{
    cr_assert_eq(status_of(GET HOST UPG KEY VER "\r\n"), 400);
    cr_assert_eq(status_of(GET HOST UPG "Connection: keep-alive\r\n" KEY VER "\r\n"), 400);
    cr_assert_eq(status_of(GET HOST CONN KEY VER "\r\n"), 400);
    cr_assert_eq(status_of(GET HOST CONN "Upgrade: h2c\r\n" KEY VER "\r\n"), 400);
}

Test(handshake, accepts_upgrade_tokens_in_any_case_and_in_lists)
{
    cr_assert_eq(status_of(GET HOST "Upgrade: WebSocket\r\nConnection: UPGRADE\r\n" KEY VER
                                    "\r\n"),
                 101);
    cr_assert_eq(status_of(GET HOST "Upgrade: h2c, websocket\r\nConnection: keep-alive, "
                                    "Upgrade\r\n" KEY VER "\r\n"),
                 101);
    cr_assert_eq(status_of(GET HOST UPG "Connection: keep-alive\r\nConnection: upgrade\r\n" KEY
                               VER "\r\n"),
                 101);
}

Test(handshake, rejects_any_version_but_13_with_426)
{
    const char *heads[] = {
        GET HOST UPG CONN KEY "\r\n",
        GET HOST UPG CONN KEY "Sec-WebSocket-Version: 8\r\n\r\n",
        GET HOST UPG CONN KEY "Sec-WebSocket-Version: 13, 8\r\n\r\n",
        GET HOST UPG CONN KEY "Sec-WebSocket-Version: 013\r\n\r\n",
        GET HOST UPG CONN KEY "Sec-WebSocket-Version: 14\r\n\r\n",
        GET HOST UPG CONN KEY "Sec-WebSocket-Version:\r\n\r\n",
        GET HOST UPG CONN KEY VER VER "\r\n",
    };
    struct hs_options opt = opts();
    struct hs_result res;
    char out[512];

    for (size_t i = 0; i < WSD_ARRAY_LEN(heads); i++) {
        cr_assert_eq(check(heads[i], &opt, &res), WSD_EINVAL, "case %zu", i);
        cr_assert_eq(res.status, 426, "case %zu", i);
        cr_assert_str_eq(res.error, "unsupported websocket version");
        response(&res, &opt, out, sizeof(out));
        cr_assert_not_null(strstr(out, "\r\nSec-WebSocket-Version: 13\r\n"));
    }
    cr_assert_eq(status_of(GET HOST UPG CONN KEY "Sec-WebSocket-Version:  13 \r\n\r\n"), 101);
}

Test(handshake, rejects_missing_or_duplicate_key_with_400)
{
    cr_assert_eq(status_of(GET HOST UPG CONN VER "\r\n"), 400);
    cr_assert_eq(status_of(GET HOST UPG CONN KEY VER KEY "\r\n"), 400);
    cr_assert_eq(status_of(GET HOST UPG CONN KEY VER
                           "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n"),
                 400);
}

Test(handshake, rejects_key_that_is_not_16_bytes_of_base64)
{
    const char *keys[] = {
        "AAAAAAAAAAAAAAAAAAAA",         /* 15 bytes */
        "AAAAAAAAAAAAAAAAAAAAAAA=",     /* 17 bytes */
        "AAAAAAAAAAAAAAAAAAAAAAAA",     /* 18 bytes */
        "AAAAAAAAAAAAAAAAAAAAAA",       /* 16 bytes, padding missing */
        "AAAAAAAAAAAAAAAAAAAAAA=",      /* padding short */
        "AAAAAAAAAAAAAAAAAAAAAA===",    /* padding long */
        "AAAAAAAAAAAAAAAAAAAA-_==",     /* base64url alphabet */
        "AAAAAAAAAA AAAAAAAAAAA==",     /* blank inside */
        "AAAAAAAAAAAAAAAAAAAA=A==",     /* '=' inside */
        "AAAAAAAAAAAAAAAAAAAA.A==",     /* not base64 */
        "",
    };
    char head[256];

    for (size_t i = 0; i < WSD_ARRAY_LEN(keys); i++) {
        snprintf(head, sizeof(head), GET HOST UPG CONN VER "Sec-WebSocket-Key: %s\r\n\r\n",
                 keys[i]);
        cr_assert_eq(status_of(head), 400, "key %s", keys[i]);
    }
    snprintf(head, sizeof(head), GET HOST UPG CONN VER "Sec-WebSocket-Key: %s\r\n\r\n",
             "+/+/+/+/+/09azAZ09azAZ==");
    cr_assert_eq(status_of(head), 101);
}

/* ---- Origin ---- */

static int origin_status(const char *const *allowed, size_t n, const char *origin_lines)
{
    struct hs_options opt = opts();
    struct hs_result res;
    char head[512];

    opt.allowed_origins = allowed;
    opt.num_allowed_origins = n;
    snprintf(head, sizeof(head), GET HOST UPG CONN KEY VER "%s\r\n", origin_lines);
    check(head, &opt, &res);
    return res.status;
}

Test(handshake, allows_any_origin_without_a_list)
{
    const char *const list[] = {"https://app.example.com"};

    cr_assert_eq(origin_status(NULL, 0, "Origin: https://evil.test\r\n"), 101);
    cr_assert_eq(origin_status(list, 0, "Origin: https://evil.test\r\n"), 101);
}

Test(handshake, allows_request_without_origin)
{
    const char *const list[] = {"https://app.example.com"};

    cr_assert_eq(origin_status(list, 1, ""), 101);
}

Test(handshake, matches_exact_origins_case_insensitively)
{
    const char *const list[] = {"https://app.example.com", "http://localhost:8080"};

    cr_assert_eq(origin_status(list, 2, "Origin: https://app.example.com\r\n"), 101);
    cr_assert_eq(origin_status(list, 2, "Origin: HTTPS://App.Example.COM\r\n"), 101);
    cr_assert_eq(origin_status(list, 2, "Origin: http://localhost:8080\r\n"), 101);
}

Test(handshake, rejects_origin_not_in_list_with_403)
{
    const char *const list[] = {"https://app.example.com", "http://localhost:8080"};
    const char *bad[] = {
        "Origin: https://evil.test\r\n",
        "Origin: http://app.example.com\r\n",
        "Origin: https://app.example.com:8443\r\n",
        "Origin: https://app.example.co\r\n",
        "Origin: https://app.example.com.evil.test\r\n",
        "Origin: http://localhost\r\n",
        "Origin: null\r\n",
        "Origin:\r\n",
        "Origin: https://app.example.com\r\nOrigin: https://evil.test\r\n",
    };

    for (size_t i = 0; i < WSD_ARRAY_LEN(bad); i++)
        cr_assert_eq(origin_status(list, 2, bad[i]), 403, "%s", bad[i]);
}

Test(handshake, star_allows_any_origin)
{
    const char *const list[] = {"https://app.example.com", "*"};

    cr_assert_eq(origin_status(list, 2, "Origin: https://anything.test\r\n"), 101);
    cr_assert_eq(origin_status(list, 2, "Origin: null\r\n"), 101);
}

Test(handshake, wildcard_origin_allows_subdomains_only)
{
    const char *const list[] = {"https://*.example.com"};
    const char *good[] = {
        "Origin: https://a.example.com\r\n",
        "Origin: https://a.b-c.example.com\r\n",
        "Origin: HTTPS://X.EXAMPLE.COM\r\n",
    };
    const char *bad[] = {
        "Origin: https://example.com\r\n",
        "Origin: https://.example.com\r\n",
        "Origin: https://..example.com\r\n",
        "Origin: https://evilexample.com\r\n",
        "Origin: http://a.example.com\r\n",
        "Origin: https://a.example.com:8443\r\n",
        "Origin: https://a.example.com.evil.test\r\n",
        "Origin: https://evil.test/.example.com\r\n",
        "Origin: https://evil.test:1@a.example.com\r\n",
        "Origin: https://*.example.com.x\r\n",
    };

    for (size_t i = 0; i < WSD_ARRAY_LEN(good); i++)
        cr_assert_eq(origin_status(list, 1, good[i]), 101, "%s", good[i]);
    for (size_t i = 0; i < WSD_ARRAY_LEN(bad); i++)
        cr_assert_eq(origin_status(list, 1, bad[i]), 403, "%s", bad[i]);
}

Test(handshake, wildcard_origin_can_name_a_port)
{
    const char *const list[] = {"https://*.example.com:8443"};

    cr_assert_eq(origin_status(list, 1, "Origin: https://a.example.com:8443\r\n"), 101);
    cr_assert_eq(origin_status(list, 1, "Origin: https://a.example.com\r\n"), 403);
}

Test(handshake, writes_403_for_refused_origin)
{
    const char *const list[] = {"https://app.example.com"};
    struct hs_options opt = opts();
    struct hs_result res;
    char out[512];

    opt.allowed_origins = list;
    opt.num_allowed_origins = 1;
    check(GET HOST UPG CONN KEY VER "Origin: https://evil.test\r\n\r\n", &opt, &res);
    response(&res, &opt, out, sizeof(out));
    cr_assert_not_null(strstr(out, "HTTP/1.1 403 Forbidden\r\n"));
    cr_assert_not_null(strstr(out, "\r\n\r\norigin not allowed\n"));
}

/* ---- order of the checks ---- */

Test(handshake, checks_in_the_documented_order)
{
    const char *const list[] = {"https://app.example.com"};
    const struct {
        const char *head;
        int status;
        const char *error;
    } steps[] = {
        {"POST /ws HTTP/1.0\r\nOrigin: https://evil.test\r\n\r\n", 405, "method not allowed"},
        {"GET /ws HTTP/1.0\r\nOrigin: https://evil.test\r\n\r\n", 400, "http/1.1 required"},
        {GET "Origin: https://evil.test\r\n" UPG "\r\n", 400, "missing host"},
        {GET "Origin: https://evil.test\r\n" HOST "\r\n", 426, "websocket upgrade required"},
        {GET "Origin: https://evil.test\r\n" HOST UPG "\r\n", 400,
         "connection header lacks upgrade"},
        {GET "Origin: https://evil.test\r\n" HOST UPG CONN "\r\n", 426,
         "unsupported websocket version"},
        {GET "Origin: https://evil.test\r\n" HOST UPG CONN VER "\r\n", 400,
         "missing sec-websocket-key"},
        {GET "Origin: https://evil.test\r\n" HOST UPG CONN VER KEY "\r\n", 403,
         "origin not allowed"},
        {GET "Origin: https://app.example.com\r\n" HOST UPG CONN VER KEY "\r\n", 101, NULL},
    };
    struct hs_options opt = opts();
    struct hs_result res;

    opt.allowed_origins = list;
    opt.num_allowed_origins = 1;
    for (size_t i = 0; i < WSD_ARRAY_LEN(steps); i++) {
        check(steps[i].head, &opt, &res);
        cr_assert_eq(res.status, steps[i].status, "step %zu", i);
        if (steps[i].error != NULL)
            cr_assert_str_eq(res.error, steps[i].error, "step %zu", i);
    }
}

Test(handshake, failed_result_has_no_subprotocol_or_deflate)
{
    struct hs_options opt = opts();
    struct hs_result res;

    opt.deflate = &deflate_on;
    memset(&res, 0x5a, sizeof(res));
    check(GET HOST UPG CONN KEY "Sec-WebSocket-Protocol: wsd.v1.json\r\n"
                                "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
          &opt, &res);
    cr_assert_eq(res.status, 426);
    cr_assert_eq(res.subprotocol, -1);
    cr_assert_not(res.deflate);
}

/* ---- subprotocols ---- */

static int chosen(const char *protocol_lines)
{
    struct hs_options opt = opts();
    struct hs_result res;
    char head[512];

    snprintf(head, sizeof(head), GET HOST UPG CONN KEY VER "%s\r\n", protocol_lines);
    cr_assert_eq(check(head, &opt, &res), 0);
    return res.subprotocol;
}

Test(handshake, picks_subprotocol_in_server_order)
{
    cr_assert_eq(chosen("Sec-WebSocket-Protocol: wsd.v1.json, wsd.v1.msgpack\r\n"), 0);
    cr_assert_eq(chosen("Sec-WebSocket-Protocol: wsd.v1.json\r\n"), 1);
    cr_assert_eq(chosen("Sec-WebSocket-Protocol: other, wsd.v1.json\r\n"), 1);
}

Test(handshake, searches_every_protocol_header)
{
    cr_assert_eq(chosen("Sec-WebSocket-Protocol: wsd.v1.json\r\n"
                        "sec-websocket-protocol: wsd.v1.msgpack\r\n"),
                 0);
    cr_assert_eq(chosen("Sec-WebSocket-Protocol: x\r\nSec-WebSocket-Protocol: wsd.v1.json\r\n"),
                 1);
}

Test(handshake, ignores_empty_protocol_elements)
{
    cr_assert_eq(chosen("Sec-WebSocket-Protocol: , ,wsd.v1.json,\r\n"), 1);
    cr_assert_eq(chosen("Sec-WebSocket-Protocol:\r\n"), -1);
    cr_assert_eq(chosen("Sec-WebSocket-Protocol: ,,\r\n"), -1);
}

Test(handshake, protocol_names_match_exactly)
{
    cr_assert_eq(chosen("Sec-WebSocket-Protocol: WSD.V1.JSON\r\n"), -1);
    cr_assert_eq(chosen("Sec-WebSocket-Protocol: wsd.v1.jsonx, wsd.v1\r\n"), -1);
    cr_assert_eq(chosen("Sec-WebSocket-Protocol: \"wsd.v1.json\"\r\n"), -1);
    cr_assert_eq(chosen(""), -1);
}

Test(handshake, chooses_nothing_when_server_has_no_subprotocols)
{
    struct hs_options opt = {0};
    struct hs_result res;
    char out[512];

    cr_assert_eq(check(GET HOST UPG CONN KEY VER "Sec-WebSocket-Protocol: wsd.v1.json\r\n\r\n",
                       &opt, &res),
                 0);
    cr_assert_eq(res.subprotocol, -1);
    response(&res, &opt, out, sizeof(out));
    cr_assert_null(strstr(out, "Sec-WebSocket-Protocol"));
}

/* ---- responses ---- */

Test(handshake, response_without_protocol_or_extension)
{
    static const char want[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                               "\r\n";
    struct hs_options opt = opts();
    struct hs_result res;
    char out[512];

    cr_assert_eq(check(GET HOST UPG CONN KEY VER "\r\n", &opt, &res), 0);
    cr_assert_eq(response(&res, &opt, out, sizeof(out)), (int)strlen(want));
    cr_assert_str_eq(out, want);
}

Test(handshake, response_fails_when_cap_is_short)
{
    struct hs_options opt = opts();
    struct hs_result res;
    char out[512];

    cr_assert_eq(check(GET HOST UPG CONN KEY VER "Sec-WebSocket-Protocol: wsd.v1.json\r\n\r\n",
                       &opt, &res),
                 0);
    int n = hs_write_response(&res, &opt, out, sizeof(out));
    cr_assert_gt(n, 0);
    cr_assert_eq(hs_write_response(&res, &opt, out, (size_t)n), n);
    for (size_t cap = 0; cap < (size_t)n; cap++)
        cr_assert_eq(hs_write_response(&res, &opt, out, cap), WSD_ETOOBIG, "cap %zu", cap);
}

Test(handshake, error_response_carries_reason_in_body)
{
    struct hs_options opt = opts();
    struct hs_result res;
    char out[512];

    check(GET HOST UPG CONN VER "Sec-WebSocket-Key: short\r\n\r\n", &opt, &res);
    cr_assert_eq(res.status, 400);
    response(&res, &opt, out, sizeof(out));
    const char *body = strstr(out, "\r\n\r\n");
    cr_assert_not_null(body);
    cr_assert_str_eq(body + 4, "invalid sec-websocket-key\n");
    cr_assert_not_null(strstr(out, "HTTP/1.1 400 Bad Request\r\n"));
    cr_assert_not_null(strstr(out, "\r\nContent-Length: 26\r\n"));
    cr_assert_not_null(strstr(out, "\r\nConnection: close\r\n"));
}

/* ---- permessage-deflate ---- */

Test(handshake, never_negotiates_deflate_when_disabled)
{
    struct pmd_config off = deflate_on;
    struct hs_options opt = opts();
    struct hs_result res;
    char out[512];

    off.enabled = false;
    cr_assert_eq(check(chrome_upgrade, &opt, &res), 0);
    cr_assert_not(res.deflate);
    opt.deflate = &off;
    cr_assert_eq(check(chrome_upgrade, &opt, &res), 0);
    cr_assert_not(res.deflate);
    response(&res, &opt, out, sizeof(out));
    cr_assert_null(strstr(out, "Sec-WebSocket-Extensions"));
}

Test(handshake, negotiates_permessage_deflate_with_real_client_offers)
{
    const char *heads[] = {chrome_upgrade, firefox_upgrade, python_upgrade, node_upgrade};
    struct hs_options opt = opts();
    struct hs_result res;
    char out[512];

    opt.deflate = &deflate_on;
    for (size_t i = 0; i < WSD_ARRAY_LEN(heads); i++) {
        cr_assert_eq(check(heads[i], &opt, &res), 0, "client %zu", i);
        cr_assert(res.deflate, "client %zu", i);
        response(&res, &opt, out, sizeof(out));
        cr_assert_not_null(strstr(out, "\r\nSec-WebSocket-Extensions: permessage-deflate"));
        cr_assert_eq(strncmp(out + strlen(out) - 4, "\r\n\r\n", 4), 0);
    }
}

Test(handshake, negotiates_permessage_deflate_not_for_other_extensions)
{
    struct hs_options opt = opts();
    struct hs_result res;
    char out[512];

    opt.deflate = &deflate_on;
    cr_assert_eq(check(GET HOST UPG CONN KEY VER "Sec-WebSocket-Extensions: x-webkit-deflate-"
                                                 "frame\r\n\r\n",
                       &opt, &res),
                 0);
    cr_assert_not(res.deflate);
    response(&res, &opt, out, sizeof(out));
    cr_assert_null(strstr(out, "Sec-WebSocket-Extensions"));
}

Test(handshake, negotiates_permessage_deflate_rejects_unparseable_header_with_400)
{
    struct hs_options opt = opts();
    struct hs_result res;

    opt.deflate = &deflate_on;
    cr_assert_eq(check(GET HOST UPG CONN KEY VER "Sec-WebSocket-Protocol: wsd.v1.json\r\n"
                                                 "Sec-WebSocket-Extensions: permessage-deflate; "
                                                 "client_max_window_bits=\"15\r\n\r\n",
                       &opt, &res),
                 WSD_EINVAL);
    cr_assert_eq(res.status, 400);
    cr_assert_str_eq(res.error, "invalid sec-websocket-extensions");
    cr_assert_eq(res.subprotocol, -1);
    cr_assert_not(res.deflate);
}
