/*
 * http_test.c - the request-head parser (RFC 9112), header lists, query parameters and
 * plain responses. Every parse runs on a copy that ends at an unmapped page, so a read
 * past the given length faults.
 */
#include "proto/http.h"

#include "core/wsd.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GUARD_PAGES 20
#define BIG 8192

#include "tests/unit/upgrade_requests.h"

static char *guard_area;
static size_t guard_len;

/* Copies p[0..n) so that it ends right before an unmapped page. */
static const char *at_guard(const void *p, size_t n)
{
    if (guard_area == NULL) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        guard_len = page * GUARD_PAGES;
        guard_area = mmap(NULL, guard_len + page, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        cr_assert_neq(guard_area, MAP_FAILED);
        cr_assert_eq(mprotect(guard_area + guard_len, page, PROT_NONE), 0);
    }
    cr_assert_leq(n, guard_len);
    char *dst = guard_area + guard_len - n;
    if (n > 0)
        memcpy(dst, p, n);
    return dst;
}

static int parse_lim(const char *s, size_t n, size_t max_head, size_t max_headers,
                     struct http_request *req)
{
    return http_parse_request(at_guard(s, n), n, max_head, max_headers, req);
}

static int parse(const char *s, struct http_request *req)
{
    return parse_lim(s, strlen(s), BIG, HTTP_MAX_HEADERS, req);
}

static int parse_n(const char *s, size_t n, struct http_request *req)
{
    return parse_lim(s, n, BIG, HTTP_MAX_HEADERS, req);
}

static bool view_is(struct http_view v, const char *s)
{
    return v.len == strlen(s) && memcmp(v.p, s, v.len) == 0;
}

static bool views_equal(struct http_view a, struct http_view b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static bool requests_equal(const struct http_request *a, const struct http_request *b)
{
    if (!views_equal(a->method, b->method) || !views_equal(a->target, b->target) ||
        !views_equal(a->path, b->path) || !views_equal(a->query, b->query) ||
        a->version_major != b->version_major || a->version_minor != b->version_minor ||
        a->num_headers != b->num_headers)
        return false;
    for (size_t i = 0; i < a->num_headers; i++) {
        if (!views_equal(a->headers[i].name, b->headers[i].name) ||
            !views_equal(a->headers[i].value, b->headers[i].value))
            return false;
    }
    return true;
}

/* Deterministic xorshift64 for the random splits. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/*
 * Feeds in[0..n) as a growing buffer, ending at the prefix lengths in cuts (ascending, the
 * last one n). Asserts WSD_EAGAIN until the result is decided, then the same result as the
 * whole input on every longer prefix; a parsed head is decided exactly at its last byte.
 */
static void feed_cuts(const char *in, size_t n, const size_t *cuts, size_t ncuts,
                      size_t max_head)
{
    static struct http_request whole_req, req;
    /* Parsed in place, so its views stay valid while the guard copy changes. */
    int whole = http_parse_request(in, n, max_head, HTTP_MAX_HEADERS, &whole_req);
    bool decided = false;

    cr_assert_eq(cuts[ncuts - 1], n);
    for (size_t i = 0; i < ncuts; i++) {
        size_t k = cuts[i];
        int rc = parse_lim(in, k, max_head, HTTP_MAX_HEADERS, &req);
        if (!decided && rc == WSD_EAGAIN)
            continue;
        if (!decided && whole >= 0) {
            /* decided by the chunk that holds the head's last byte */
            cr_assert_geq(k, (size_t)whole, "decided at %zu before head end %d", k, whole);
            cr_assert(i == 0 || cuts[i - 1] < (size_t)whole, "late at %zu", k);
        }
        decided = true;
        cr_assert_eq(rc, whole, "prefix %zu: %d, whole input: %d", k, rc, whole);
        if (rc >= 0)
            cr_assert(requests_equal(&req, &whole_req), "prefix %zu parsed differently", k);
    }
    cr_assert(decided || whole == WSD_EAGAIN);
}

/* Feeds whole, byte by byte and in 200 random chunkings; returns the whole-input result. */
static int feed_all_ways(const char *in, size_t n, size_t max_head)
{
    static size_t cuts[GUARD_PAGES * 4096];
    struct http_request req;
    int whole = parse_lim(in, n, max_head, HTTP_MAX_HEADERS, &req);

    cuts[0] = n;
    feed_cuts(in, n, cuts, 1, max_head);
    for (size_t i = 0; i < n; i++)
        cuts[i] = i + 1;
    feed_cuts(in, n, cuts, n, max_head);
    for (int round = 0; round < 200; round++) {
        size_t k = 0;
        size_t pos = 0;
        while (pos < n) {
            pos += 1 + (size_t)(rng_next() % 64);
            cuts[k++] = pos < n ? pos : n;
        }
        feed_cuts(in, n, cuts, k, max_head);
    }
    return whole;
}

/* Writes a complete head of exactly total bytes (total >= 40) into out. */
static size_t make_head(char *out, size_t total)
{
    const char *pre = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
    size_t n = strlen(pre);

    cr_assert_geq(total, n + 5);
    memcpy(out, pre, n);
    memset(out + n, 'p', total - n - 4);
    memcpy(out + total - 4, "\r\n\r\n", 4);
    return total;
}

/* ---- request line ---- */

Test(http, parses_simple_get)
{
    struct http_request req;
    const char *s = "GET /ws?token=abc&x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n";

    cr_assert_eq(parse(s, &req), (int)strlen(s));
    cr_assert(view_is(req.method, "GET"));
    cr_assert(view_is(req.target, "/ws?token=abc&x=1"));
    cr_assert(view_is(req.path, "/ws"));
    cr_assert(view_is(req.query, "token=abc&x=1"));
    cr_assert_eq(req.version_major, 1);
    cr_assert_eq(req.version_minor, 1);
    cr_assert_eq(req.num_headers, 1);
    cr_assert(view_is(req.headers[0].name, "Host"));
    cr_assert(view_is(req.headers[0].value, "example.com"));
}

Test(http, query_is_empty_without_question_mark)
{
    struct http_request req;

    cr_assert_gt(parse("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", &req), 0);
    cr_assert(view_is(req.path, "/healthz"));
    cr_assert_eq(req.query.len, 0);
    cr_assert_gt(parse("GET /ws? HTTP/1.1\r\nHost: a\r\n\r\n", &req), 0);
    cr_assert(view_is(req.path, "/ws"));
    cr_assert_eq(req.query.len, 0);
}

Test(http, splits_at_first_question_mark)
{
    struct http_request req;

    cr_assert_gt(parse("GET /a?b=c?d HTTP/1.1\r\n\r\n", &req), 0);
    cr_assert(view_is(req.path, "/a"));
    cr_assert(view_is(req.query, "b=c?d"));
}

Test(http, accepts_request_without_headers)
{
    struct http_request req;

    cr_assert_eq(parse("GET / HTTP/1.1\r\n\r\n", &req), 18);
    cr_assert_eq(req.num_headers, 0);
}

Test(http, accepts_bare_lf_line_endings)
{
    struct http_request req;
    const char *s = "GET /x HTTP/1.1\nHost: a\nUpgrade: websocket\n\n";

    cr_assert_eq(parse(s, &req), (int)strlen(s));
    cr_assert_eq(req.num_headers, 2);
    cr_assert(view_is(req.headers[1].value, "websocket"));
}

Test(http, accepts_mixed_line_endings)
{
    struct http_request req;
    const char *s = "GET /x HTTP/1.1\r\nHost: a\nX: b\r\n\n";

    cr_assert_eq(parse(s, &req), (int)strlen(s));
    cr_assert(view_is(req.headers[0].value, "a"));
    cr_assert(view_is(req.headers[1].value, "b"));
}

Test(http, ignores_one_empty_line_before_request_line)
{
    struct http_request req;

    cr_assert_eq(parse("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", &req), 29);
    cr_assert(view_is(req.method, "GET"));
    cr_assert_eq(parse("\nGET / HTTP/1.1\nHost: a\n\n", &req), 25);
    cr_assert_eq(parse("\r\n\r\nGET / HTTP/1.1\r\n\r\n", &req), WSD_EINVAL);
}

Test(http, accepts_other_methods_and_versions_1x)
{
    struct http_request req;

    cr_assert_gt(parse("POST /x HTTP/1.0\r\n\r\n", &req), 0);
    cr_assert(view_is(req.method, "POST"));
    cr_assert_eq(req.version_minor, 0);
    cr_assert_gt(parse("M-SEARCH * HTTP/1.9\r\n\r\n", &req), 0);
    cr_assert(view_is(req.target, "*"));
    cr_assert_eq(req.version_minor, 9);
}

Test(http, rejects_version_other_than_1x_with_eproto)
{
    struct http_request req;

    cr_assert_eq(parse("GET / HTTP/2.0\r\nHost: a\r\n\r\n", &req), WSD_EPROTO);
    cr_assert_eq(parse("GET / HTTP/0.9\r\nHost: a\r\n\r\n", &req), WSD_EPROTO);
    cr_assert_eq(parse("GET / HTTP/3.0\r\n\r\n", &req), WSD_EPROTO);
}

Test(http, rejects_malformed_versions)
{
    const char *bad[] = {
        "GET / HTTP/1.10\r\n\r\n", "GET / HTTP/1\r\n\r\n",    "GET / http/1.1\r\n\r\n",
        "GET / HTTP/1.1 \r\n\r\n", "GET / HTTP/1.x\r\n\r\n",  "GET / HTTP/11\r\n\r\n",
        "GET / HTTPS/1.1\r\n\r\n", "GET / HTTP/1,1\r\n\r\n",  "GET /\r\n\r\n",
    };
    struct http_request req;

    for (size_t i = 0; i < WSD_ARRAY_LEN(bad); i++)
        cr_assert_eq(parse(bad[i], &req), WSD_EINVAL, "%s", bad[i]);
}

Test(http, rejects_malformed_request_lines)
{
    const char *bad[] = {
        "GET  / HTTP/1.1\r\n\r\n",   "GET /  HTTP/1.1\r\n\r\n",  " GET / HTTP/1.1\r\n\r\n",
        "GET\t/ HTTP/1.1\r\n\r\n",   "GET /\tHTTP/1.1\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n",
        "GET /a b HTTP/1.1\r\n\r\n", "GET /\x01 HTTP/1.1\r\n\r\n", "GET /\x7f HTTP/1.1\r\n\r\n",
        "GET /\xc3\xa9 HTTP/1.1\r\n\r\n", "/ HTTP/1.1\r\n\r\n", "GET HTTP/1.1\r\n\r\n",
        "\r\n\r\n", "\n\n", "GET\r\n\r\n",
    };
    struct http_request req;

    for (size_t i = 0; i < WSD_ARRAY_LEN(bad); i++)
        cr_assert_eq(parse(bad[i], &req), WSD_EINVAL, "case %zu", i);
}

/* ---- bare CR ---- */

Test(http, rejects_bare_cr_anywhere)
{
    const char *bad[] = {
        "GET /\r HTTP/1.1\r\n\r\n",          "GET / HTTP/1.1\r\r\n\r\n",
        "GET / HTTP/1.1\rHost: a\r\n\r\n",   "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
        "GET / HTTP/1.1\r\nHo\rst: a\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\r\n\r\n",
        "GET / HTTP/1.1\r\n\rHost: a\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n\r\n",
        "GE\rT / HTTP/1.1\r\n\r\n",
    };
    struct http_request req;

    for (size_t i = 0; i < WSD_ARRAY_LEN(bad); i++)
        cr_assert_eq(parse(bad[i], &req), WSD_EINVAL, "case %zu", i);
}

/* ---- header fields ---- */

Test(http, rejects_obs_fold)
{
    struct http_request req;

    cr_assert_eq(parse("GET / HTTP/1.1\r\nX: a\r\n  folded\r\n\r\n", &req), WSD_EINVAL);
    cr_assert_eq(parse("GET / HTTP/1.1\r\nX: a\r\n\tfolded\r\n\r\n", &req), WSD_EINVAL);
}

Test(http, rejects_whitespace_after_request_line)
{
    struct http_request req;

    cr_assert_eq(parse("GET / HTTP/1.1\r\n Host: a\r\n\r\n", &req), WSD_EINVAL);
}

Test(http, rejects_whitespace_between_name_and_colon)
{
    struct http_request req;

    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost : a\r\n\r\n", &req), WSD_EINVAL);
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", &req), WSD_EINVAL);
}

Test(http, rejects_header_without_colon)
{
    struct http_request req;

    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost a\r\n\r\n", &req), WSD_EINVAL);
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost\r\n\r\n", &req), WSD_EINVAL);
}

Test(http, rejects_empty_or_non_token_header_name)
{
    const char *bad[] = {
        "GET / HTTP/1.1\r\n: a\r\n\r\n",       "GET / HTTP/1.1\r\nHo@st: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHo(st: a\r\n\r\n",  "GET / HTTP/1.1\r\nH\xc3\xb3st: a\r\n\r\n",
        "GET / HTTP/1.1\r\nX\x01: a\r\n\r\n",  "GET / HTTP/1.1\r\n\"X\": a\r\n\r\n",
        "GET / HTTP/1.1\r\nX/Y: a\r\n\r\n",
    };
    struct http_request req;

    for (size_t i = 0; i < WSD_ARRAY_LEN(bad); i++)
        cr_assert_eq(parse(bad[i], &req), WSD_EINVAL, "case %zu", i);
}

Test(http, accepts_every_tchar_in_header_name)
{
    struct http_request req;

    cr_assert_gt(parse("GET / HTTP/1.1\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n", &req), 0);
    cr_assert(view_is(req.headers[0].name, "!#$%&'*+-.^_`|~09azAZ"));
}

Test(http, rejects_control_characters_in_value)
{
    const char *bad[] = {
        "GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n", "GET / HTTP/1.1\r\nX: a\x7fz\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\x1b\r\n\r\n",  "GET / HTTP/1.1\r\nX: \x0b\r\n\r\n",
    };
    struct http_request req;

    for (size_t i = 0; i < WSD_ARRAY_LEN(bad); i++)
        cr_assert_eq(parse(bad[i], &req), WSD_EINVAL, "case %zu", i);
    static const char nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    cr_assert_eq(parse_n(nul, sizeof(nul) - 1, &req), WSD_EINVAL);
}

Test(http, accepts_htab_and_obs_text_in_value)
{
    struct http_request req;

    cr_assert_gt(parse("GET / HTTP/1.1\r\nX: a\tb \xc3\xa9\xff\r\n\r\n", &req), 0);
    cr_assert(view_is(req.headers[0].value, "a\tb \xc3\xa9\xff"));
}

Test(http, trims_blanks_around_value)
{
    struct http_request req;

    cr_assert_gt(parse("GET / HTTP/1.1\r\nA: \t x y \t \r\nB:z\r\nC:\r\nD:  \r\n\r\n", &req),
                 0);
    cr_assert_eq(req.num_headers, 4);
    cr_assert(view_is(req.headers[0].value, "x y"));
    cr_assert(view_is(req.headers[1].value, "z"));
    cr_assert(view_is(req.headers[2].value, ""));
    cr_assert(view_is(req.headers[3].value, ""));
}

/* ---- limits ---- */

Test(http, head_one_below_max_head_len_is_accepted)
{
    static char buf[1024];
    struct http_request req;
    size_t n = make_head(buf, 100);

    cr_assert_eq(parse_lim(buf, n, 101, HTTP_MAX_HEADERS, &req), 100);
}

Test(http, head_at_max_head_len_is_too_big)
{
    static char buf[1024];
    struct http_request req;
    size_t n = make_head(buf, 100);

    cr_assert_eq(parse_lim(buf, n, 100, HTTP_MAX_HEADERS, &req), WSD_ETOOBIG);
    cr_assert_eq(parse_lim(buf, n, 99, HTTP_MAX_HEADERS, &req), WSD_ETOOBIG);
}

Test(http, incomplete_head_is_too_big_only_at_max_head_len)
{
    static char buf[1024];
    struct http_request req;

    make_head(buf, 200);
    cr_assert_eq(parse_lim(buf, 99, 100, HTTP_MAX_HEADERS, &req), WSD_EAGAIN);
    cr_assert_eq(parse_lim(buf, 100, 100, HTTP_MAX_HEADERS, &req), WSD_ETOOBIG);
    cr_assert_eq(parse_lim(buf, 150, 100, HTTP_MAX_HEADERS, &req), WSD_ETOOBIG);
    cr_assert_eq(parse_lim(buf, 0, 100, HTTP_MAX_HEADERS, &req), WSD_EAGAIN);
    cr_assert_eq(parse_lim(buf, 0, 0, HTTP_MAX_HEADERS, &req), WSD_ETOOBIG);
}

Test(http, head_at_limit_with_pipelined_bytes_is_accepted)
{
    static char buf[1024];
    struct http_request req;
    size_t n = make_head(buf, 100);

    memcpy(buf + n, "\x81\x85\x01\x02\x03\x04", 6);
    cr_assert_eq(parse_lim(buf, n + 6, 101, HTTP_MAX_HEADERS, &req), 100);
    cr_assert_eq(parse_lim(buf, n + 6, 100, HTTP_MAX_HEADERS, &req), WSD_ETOOBIG);
}

Test(http, head_limit_holds_at_default_size)
{
    static char buf[BIG + 16];
    struct http_request req;

    make_head(buf, BIG - 1);
    cr_assert_eq(parse_lim(buf, BIG - 1, BIG, HTTP_MAX_HEADERS, &req), BIG - 1);
    make_head(buf, BIG);
    cr_assert_eq(parse_lim(buf, BIG, BIG, HTTP_MAX_HEADERS, &req), WSD_ETOOBIG);
    cr_assert_eq(parse_lim(buf, BIG - 1, BIG, HTTP_MAX_HEADERS, &req), WSD_EAGAIN);
}

/* Writes a head with count headers "Hn: v". */
static size_t make_headers(char *out, size_t cap, size_t count)
{
    size_t n = (size_t)snprintf(out, cap, "GET / HTTP/1.1\r\n");

    for (size_t i = 0; i < count; i++)
        n += (size_t)snprintf(out + n, cap - n, "H%zu: v\r\n", i);
    n += (size_t)snprintf(out + n, cap - n, "\r\n");
    return n;
}

Test(http, header_count_limit_is_exact)
{
    static char buf[4096];
    struct http_request req;
    size_t n = make_headers(buf, sizeof(buf), 10);

    cr_assert_eq(parse_lim(buf, n, BIG, 10, &req), (int)n);
    cr_assert_eq(req.num_headers, 10);
    cr_assert_eq(parse_lim(buf, n, BIG, 9, &req), WSD_ETOOBIG);
    cr_assert_eq(parse_lim(buf, n, BIG, 0, &req), WSD_ETOOBIG);
    n = make_headers(buf, sizeof(buf), 0);
    cr_assert_eq(parse_lim(buf, n, BIG, 0, &req), (int)n);
}

Test(http, header_count_is_capped_at_http_max_headers)
{
    static char buf[4096];
    struct http_request req;
    size_t n = make_headers(buf, sizeof(buf), HTTP_MAX_HEADERS);

    cr_assert_eq(parse_lim(buf, n, BIG, 1000, &req), (int)n);
    cr_assert_eq(req.num_headers, HTTP_MAX_HEADERS);
    n = make_headers(buf, sizeof(buf), HTTP_MAX_HEADERS + 1);
    cr_assert_eq(parse_lim(buf, n, BIG, 1000, &req), WSD_ETOOBIG);
}

/* ---- incremental feeding ---- */

Test(http, pipelined_bytes_after_head_are_not_consumed)
{
    static const char in[] = "GET /ws HTTP/1.1\r\nHost: a\r\n\r\n\x81\x80\x01\x02\x03\x04"
                             "GET / HTTP/1.1\r\n\r\n";
    struct http_request req;

    cr_assert_eq(parse_n(in, sizeof(in) - 1, &req), 29);
    cr_assert_eq(feed_all_ways(in, sizeof(in) - 1, BIG), 29);
}

Test(http, feeding_real_client_heads_in_pieces_gives_the_same_result)
{
    const char *in[] = {chrome_upgrade, firefox_upgrade, python_upgrade};

    for (size_t i = 0; i < WSD_ARRAY_LEN(in); i++)
        cr_assert_eq(feed_all_ways(in[i], strlen(in[i]), BIG), (int)strlen(in[i]));
}

Test(http, feeding_bad_heads_in_pieces_gives_the_same_error)
{
    const struct {
        const char *in;
        int rc;
    } cases[] = {
        {"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", WSD_EINVAL},
        {"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", WSD_EINVAL},
        {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", WSD_EINVAL},
        {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", WSD_EPROTO},
        {"\r\nGET / HTTP/1.1\nHost: a\n\nrest", 26},
        {"GET / HTTP/1.1\nHost: a\n\r\n", 25},
    };

    for (size_t i = 0; i < WSD_ARRAY_LEN(cases); i++) {
        size_t n = strlen(cases[i].in);
        cr_assert_eq(feed_all_ways(cases[i].in, n, BIG), cases[i].rc, "case %zu", i);
    }
}

Test(http, feeding_an_oversized_head_is_again_until_the_limit)
{
    static char buf[1024];
    size_t n = make_head(buf, 300);

    cr_assert_eq(feed_all_ways(buf, n, 256), WSD_ETOOBIG);
    cr_assert_eq(feed_all_ways(buf, n, 301), 300);
}

/* ---- header lookups and lists ---- */

Test(http, finds_and_counts_headers_case_insensitively)
{
    struct http_request req;

    cr_assert_gt(parse("GET / HTTP/1.1\r\nhost: a\r\nX-A: 1\r\nx-a: 2\r\n\r\n", &req), 0);
    const struct http_header *h = http_find_header(&req, "HOST");
    cr_assert_not_null(h);
    cr_assert(view_is(h->value, "a"));
    cr_assert(view_is(http_find_header(&req, "X-a")->value, "1"));
    cr_assert_eq(http_count_headers(&req, "x-A"), 2);
    cr_assert_eq(http_count_headers(&req, "Host"), 1);
    cr_assert_null(http_find_header(&req, "Hos"));
    cr_assert_eq(http_count_headers(&req, "Upgrade"), 0);
}

Test(http, header_has_token_reads_comma_separated_lists)
{
    struct http_request req;

    cr_assert_gt(parse("GET / HTTP/1.1\r\nConnection: keep-alive ,\tUPGRADE , x\r\n\r\n",
                       &req),
                 0);
    cr_assert(http_header_has_token(&req, "connection", "upgrade"));
    cr_assert(http_header_has_token(&req, "Connection", "Keep-Alive"));
    cr_assert(http_header_has_token(&req, "Connection", "x"));
    cr_assert_not(http_header_has_token(&req, "Connection", "close"));
    cr_assert_not(http_header_has_token(&req, "Upgrade", "upgrade"));
}

Test(http, header_has_token_counts_every_line_with_the_name)
{
    struct http_request req;

    cr_assert_gt(parse("GET / HTTP/1.1\r\nConnection: keep-alive\r\nHost: a\r\n"
                       "connection: Upgrade\r\n\r\n",
                       &req),
                 0);
    cr_assert(http_header_has_token(&req, "Connection", "upgrade"));
    cr_assert(http_header_has_token(&req, "Connection", "keep-alive"));
}

Test(http, header_has_token_matches_whole_elements_only)
{
    struct http_request req;

    cr_assert_gt(parse("GET / HTTP/1.1\r\nConnection: upgrade2, keep-alive-upgrade, "
                       "\"upgrade\", up grade\r\nUpgrade: websocket/13\r\n\r\n",
                       &req),
                 0);
    cr_assert_not(http_header_has_token(&req, "Connection", "upgrade"));
    cr_assert_not(http_header_has_token(&req, "Upgrade", "websocket"));
}

Test(http, header_has_token_ignores_empty_elements)
{
    struct http_request req;

    cr_assert_gt(parse("GET / HTTP/1.1\r\nConnection: ,, ,\r\nUpgrade: ,websocket,\r\n\r\n",
                       &req),
                 0);
    cr_assert_not(http_header_has_token(&req, "Connection", ""));
    cr_assert(http_header_has_token(&req, "Upgrade", "websocket"));
}

Test(http, list_next_yields_trimmed_non_empty_elements)
{
    const char *v = " a ,, b\t,c,  ";
    size_t pos = 0;
    struct http_view e;
    const char *want[] = {"a", "b", "c"};

    for (size_t i = 0; i < WSD_ARRAY_LEN(want); i++) {
        cr_assert(http_list_next(v, strlen(v), &pos, &e));
        cr_assert(view_is(e, want[i]), "element %zu", i);
    }
    cr_assert_not(http_list_next(v, strlen(v), &pos, &e));
    pos = 0;
    cr_assert_not(http_list_next("", 0, &pos, &e));
}

/* ---- query parameters ---- */

static int query(const char *target, const char *key, char *out, size_t cap)
{
    static char head[512];
    struct http_request req;

    snprintf(head, sizeof(head), "GET %s HTTP/1.1\r\n\r\n", target);
    cr_assert_gt(parse(head, &req), 0);
    return http_query_param(&req, key, out, cap);
}

Test(http, query_param_finds_exact_key)
{
    char out[64];

    cr_assert_eq(query("/ws?tok=1&xtoken=2&token=abc&token=zzz", "token", out, sizeof(out)), 3);
    cr_assert_str_eq(out, "abc");
    cr_assert_eq(query("/ws?token=abc", "tok", out, sizeof(out)), WSD_ENOENT);
    cr_assert_eq(query("/ws?token=abc", "Token", out, sizeof(out)), WSD_ENOENT);
    cr_assert_eq(query("/ws", "token", out, sizeof(out)), WSD_ENOENT);
    cr_assert_eq(query("/ws?", "token", out, sizeof(out)), WSD_ENOENT);
}

Test(http, query_param_percent_decodes_and_keeps_plus)
{
    char out[64];

    cr_assert_eq(query("/?t=a%2Fb%2fc+d%20e&s=1", "t", out, sizeof(out)), 9);
    cr_assert_str_eq(out, "a/b/c+d e");
    cr_assert_eq(query("/?t=%7e%7E%25", "t", out, sizeof(out)), 3);
    cr_assert_str_eq(out, "~~%");
}

Test(http, query_param_returns_empty_value)
{
    char out[8];

    cr_assert_eq(query("/?a=&b", "a", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "");
    cr_assert_eq(query("/?a=&b", "b", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "");
}

Test(http, query_param_rejects_bad_escapes)
{
    char out[64];
    const char *bad[] = {"/?t=%", "/?t=%2", "/?t=%zz", "/?t=%2g", "/?t=a%00b", "/?t=%%41"};

    for (size_t i = 0; i < WSD_ARRAY_LEN(bad); i++)
        cr_assert_eq(query(bad[i], "t", out, sizeof(out)), WSD_EINVAL, "%s", bad[i]);
    cr_assert_eq(query("/?t=%zz", "t", out, 1), WSD_EINVAL);
}

Test(http, query_param_needs_room_for_value_and_nul)
{
    char out[8];

    cr_assert_eq(query("/?t=abcdefg", "t", out, 8), 7);
    cr_assert_str_eq(out, "abcdefg");
    cr_assert_eq(query("/?t=abcdefgh", "t", out, 8), WSD_ETOOBIG);
    cr_assert_eq(query("/?t=%41%42%43", "t", out, 4), 3);
    cr_assert_eq(query("/?t=%41%42%43", "t", out, 3), WSD_ETOOBIG);
    cr_assert_eq(query("/?t=", "t", out, 0), WSD_ETOOBIG);
}

/* ---- responses ---- */

Test(http, status_text_knows_the_statuses_we_send)
{
    cr_assert_str_eq(http_status_text(101), "Switching Protocols");
    cr_assert_str_eq(http_status_text(200), "OK");
    cr_assert_str_eq(http_status_text(400), "Bad Request");
    cr_assert_str_eq(http_status_text(403), "Forbidden");
    cr_assert_str_eq(http_status_text(404), "Not Found");
    cr_assert_str_eq(http_status_text(405), "Method Not Allowed");
    cr_assert_str_eq(http_status_text(426), "Upgrade Required");
    cr_assert_str_eq(http_status_text(431), "Request Header Fields Too Large");
    cr_assert_str_eq(http_status_text(503), "Service Unavailable");
    cr_assert_str_eq(http_status_text(505), "HTTP Version Not Supported");
    cr_assert_str_eq(http_status_text(299), "Unknown");
}

Test(http, write_response_emits_status_headers_and_body)
{
    static const char want[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Server: wsd\r\n"
                               "Content-Type: text/plain\r\n"
                               "X-Content-Type-Options: nosniff\r\n"
                               "Content-Length: 9\r\n"
                               "Connection: close\r\n"
                               "Retry-After: 5\r\n"
                               "\r\n"
                               "draining\n";
    char out[256];
    int n = http_write_response(out, sizeof(out), 503, "Retry-After: 5\r\n", "text/plain",
                                "draining\n", 9);

    cr_assert_eq(n, (int)sizeof(want) - 1);
    cr_assert_eq(memcmp(out, want, sizeof(want) - 1), 0);
}

Test(http, write_response_without_type_headers_or_body)
{
    static const char want[] = "HTTP/1.1 404 Not Found\r\n"
                               "Server: wsd\r\n"
                               "X-Content-Type-Options: nosniff\r\n"
                               "Content-Length: 0\r\n"
                               "Connection: close\r\n"
                               "\r\n";
    char out[256];
    int n = http_write_response(out, sizeof(out), 404, NULL, NULL, NULL, 0);

    cr_assert_eq(n, (int)sizeof(want) - 1);
    cr_assert_eq(memcmp(out, want, sizeof(want) - 1), 0);
}

Test(http, write_response_keeps_binary_body)
{
    static const char body[] = {'a', '\0', 'b', '\r', '\n'};
    char out[256];
    int n = http_write_response(out, sizeof(out), 200, NULL, "application/octet-stream",
                                body, sizeof(body));

    cr_assert_gt(n, 0);
    cr_assert_eq(memcmp(out + n - 5, body, 5), 0);
    cr_assert_not_null(memmem(out, (size_t)n, "Content-Length: 5\r\n", 19));
}

Test(http, write_response_fails_when_cap_is_short_by_one)
{
    char out[256];
    int n = http_write_response(out, sizeof(out), 200, "X-A: b\r\n", "text/plain", "ok\n", 3);

    cr_assert_gt(n, 0);
    cr_assert_eq(http_write_response(out, (size_t)n, 200, "X-A: b\r\n", "text/plain", "ok\n",
                                     3),
                 n);
    for (size_t cap = 0; cap < (size_t)n; cap++)
        cr_assert_eq(http_write_response(out, cap, 200, "X-A: b\r\n", "text/plain", "ok\n", 3),
                     WSD_ETOOBIG, "cap %zu", cap);
}

Test(http, write_response_output_parses_as_http)
{
    char out[256];
    int n = http_write_response(out, sizeof(out), 431, NULL, "text/plain", "too big\n", 8);

    cr_assert_eq(memcmp(out, "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46), 0);
    cr_assert_not_null(memmem(out, (size_t)n, "\r\n\r\ntoo big\n", 12));
}
