/*
 * http.c - strict HTTP/1.1 request-head parser (RFC 9112 sections 2 to 5) and the plain
 * responses of the small endpoints.
 *
 * The caller re-parses a growing buffer, so a call first looks for the end of the head
 * with memchr() and parses nothing until the head is complete: an incomplete head costs
 * one scan for line feeds. Everything returned is a view into the caller's buffer.
 */
#include "proto/http.h"

#include "core/wsd.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* Fills a fixed output buffer; len keeps counting past cap so overflow is seen once. */
struct http_out {
    char *p;
    size_t cap;
    size_t len;
};

static bool http_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static unsigned char http_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c | 0x20) : c;
}

/* tchar (RFC 9110 section 5.6.2). */
static bool http_is_tchar(unsigned char c)
{
    if (http_is_digit(c) || (http_lower(c) >= 'a' && http_lower(c) <= 'z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool http_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* True when a[0..n) equals b[0..n) ignoring ASCII case. */
static bool http_ci_equal(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (http_lower((unsigned char)a[i]) != http_lower((unsigned char)b[i]))
            return false;
    }
    return true;
}

static bool http_name_is(const struct http_view *v, const char *name)
{
    size_t n = strlen(name);
    return v->len == n && http_ci_equal(v->p, name, n);
}

/*
 * Returns where the head's content starts: after one empty line sent before the request
 * line, which RFC 9112 section 2.2 says a server should ignore.
 */
static size_t http_head_start(const char *buf, size_t lim)
{
    if (lim >= 1 && buf[0] == '\n')
        return 1;
    if (lim >= 2 && buf[0] == '\r' && buf[1] == '\n')
        return 2;
    return 0;
}

/*
 * Finds the end of the head in buf[start..lim): the byte after the first empty line (LF or
 * CR LF). An empty request line ends it too, and is then rejected by the parser.
 * Returns 0 when the head is not complete yet.
 */
static size_t http_head_end(const char *buf, size_t start, size_t lim)
{
    size_t pos = start; /* start of the current line */

    for (;;) {
        if (pos < lim && buf[pos] == '\n')
            return pos + 1;
        if (pos + 1 < lim && buf[pos] == '\r' && buf[pos + 1] == '\n')
            return pos + 2;
        const char *nl = pos < lim ? memchr(buf + pos, '\n', lim - pos) : NULL;
        if (nl == NULL)
            return 0;
        pos = (size_t)(nl - buf) + 1;
    }
}

/*
 * Returns the length of the line at p without its LF and one CR before it, and sets *next
 * past the LF. The head always ends with a LF, so there is one before stop.
 */
static size_t http_line(const char *p, const char *stop, const char **next)
{
    const char *nl = memchr(p, '\n', (size_t)(stop - p));
    size_t n = (size_t)(nl - p);

    *next = nl + 1;
    if (n > 0 && p[n - 1] == '\r')
        n--;
    return n;
}

static void http_set_target(struct http_request *req, const char *p, size_t n)
{
    const char *q = memchr(p, '?', n);

    req->target = (struct http_view){p, n};
    if (q == NULL) {
        req->path = req->target;
        req->query = (struct http_view){p + n, 0};
        return;
    }
    req->path = (struct http_view){p, (size_t)(q - p)};
    req->query = (struct http_view){q + 1, n - (size_t)(q - p) - 1};
}

/* HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive, and nothing after it. */
static int http_parse_version(const char *p, size_t n, struct http_request *req)
{
    if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || !http_is_digit((unsigned char)p[5]) ||
        p[6] != '.' || !http_is_digit((unsigned char)p[7]))
        return WSD_EINVAL;
    req->version_major = p[5] - '0';
    req->version_minor = p[7] - '0';
    return req->version_major == 1 ? 0 : WSD_EPROTO;
}

/* request-line = method SP request-target SP HTTP-version, single spaces only. */
static int http_parse_request_line(const char *p, size_t n, struct http_request *req)
{
    size_t i = 0;

    while (i < n && http_is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i == n || p[i] != ' ')
        return WSD_EINVAL;
    req->method = (struct http_view){p, i};

    size_t t = ++i;
    while (i < n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f)
        i++;
    if (i == t || i == n || p[i] != ' ')
        return WSD_EINVAL;
    http_set_target(req, p + t, i - t);
    i++;
    return http_parse_version(p + i, n - i, req);
}

/*
 * field-line = field-name ":" OWS field-value OWS. A line that starts with a blank is
 * obsolete line folding (or whitespace after the request line): rejected.
 */
static int http_parse_header(const char *p, size_t n, struct http_header *h)
{
    size_t i = 0;

    while (i < n && http_is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i == n || p[i] != ':')
        return WSD_EINVAL;
    h->name = (struct http_view){p, i};

    size_t v = i + 1;
    size_t e = n;
    while (v < e && http_is_blank(p[v]))
        v++;
    while (e > v && http_is_blank(p[e - 1]))
        e--;
    for (size_t k = v; k < e; k++) {
        unsigned char c = (unsigned char)p[k];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return WSD_EINVAL;
    }
    h->value = (struct http_view){p + v, e - v};
    return 0;
}

/* Parses the complete head buf[start..end), which ends with its empty line. */
static int http_parse_head(const char *buf, size_t start, size_t end, size_t max_headers,
                           struct http_request *req)
{
    const char *stop = buf + end;
    const char *next;
    size_t n = http_line(buf + start, stop, &next);
    int rc = http_parse_request_line(buf + start, n, req);

    if (rc < 0)
        return rc;
    for (const char *p = next;; p = next) {
        n = http_line(p, stop, &next);
        if (n == 0)
            return 0; /* the empty line: only the last line of the head can be empty */
        if (req->num_headers == max_headers)
            return WSD_ETOOBIG;
        rc = http_parse_header(p, n, &req->headers[req->num_headers]);
        if (rc < 0)
            return rc;
        req->num_headers++;
    }
}

int http_parse_request(const char *buf, size_t len, size_t max_head_len, size_t max_headers,
                       struct http_request *req)
{
    /* The head, with its empty line, must be shorter than max_head_len. */
    size_t lim = WSD_MIN(len, max_head_len > 0 ? max_head_len - 1 : 0);

    lim = WSD_MIN(lim, (size_t)INT_MAX);
    req->num_headers = 0;
    size_t start = http_head_start(buf, lim);
    size_t end = lim > 0 ? http_head_end(buf, start, lim) : 0;
    if (end == 0)
        return len >= max_head_len ? WSD_ETOOBIG : WSD_EAGAIN;

    int rc = http_parse_head(buf, start, end, WSD_MIN(max_headers, HTTP_MAX_HEADERS), req);
    return rc < 0 ? rc : (int)end;
}

const struct http_header *http_find_header(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->num_headers; i++) {
        if (http_name_is(&req->headers[i].name, name))
            return &req->headers[i];
    }
    return NULL;
}

size_t http_count_headers(const struct http_request *req, const char *name)
{
    size_t n = 0;

    for (size_t i = 0; i < req->num_headers; i++)
        n += http_name_is(&req->headers[i].name, name);
    return n;
}

bool http_list_next(const char *value, size_t len, size_t *pos, struct http_view *elem)
{
    size_t i = *pos;

    while (i < len) {
        const char *comma = memchr(value + i, ',', len - i);
        size_t e = comma != NULL ? (size_t)(comma - value) : len;
        size_t a = i;
        size_t b = e;
        while (a < b && http_is_blank(value[a]))
            a++;
        while (b > a && http_is_blank(value[b - 1]))
            b--;
        i = e < len ? e + 1 : len;
        if (b > a) {
            *pos = i;
            *elem = (struct http_view){value + a, b - a};
            return true;
        }
    }
    *pos = i;
    return false;
}

bool http_header_has_token(const struct http_request *req, const char *name,
                           const char *token)
{
    size_t tlen = strlen(token);

    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http_header *h = &req->headers[i];
        if (!http_name_is(&h->name, name))
            continue;
        size_t pos = 0;
        struct http_view e;
        while (http_list_next(h->value.p, h->value.len, &pos, &e)) {
            if (e.len == tlen && http_ci_equal(e.p, token, tlen))
                return true;
        }
    }
    return false;
}

static int http_hex(unsigned char c)
{
    if (http_is_digit(c))
        return c - '0';
    c = http_lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes p[0..n) into out; a bad escape wins over a short buffer. */
static int http_pct_decode(const char *p, size_t n, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)p[i];
        if (c == '%') {
            int hi = n - i >= 3 ? http_hex((unsigned char)p[i + 1]) : -1;
            int lo = n - i >= 3 ? http_hex((unsigned char)p[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi | lo) == 0)
                return WSD_EINVAL;
            c = hi << 4 | lo;
            i += 2;
        }
        if (o + 1 < cap)
            out[o] = (char)c;
        o++;
    }
    if (o >= cap || o > INT_MAX)
        return WSD_ETOOBIG;
    out[o] = '\0';
    return (int)o;
}

int http_query_param(const struct http_request *req, const char *key, char *out, size_t cap)
{
    const char *q = req->query.p;
    size_t n = req->query.len;
    size_t klen = strlen(key);

    for (size_t i = 0; i < n;) {
        const char *amp = memchr(q + i, '&', n - i);
        size_t e = amp != NULL ? (size_t)(amp - q) : n;
        const char *eq = memchr(q + i, '=', e - i);
        size_t kend = eq != NULL ? (size_t)(eq - q) : e;
        if (kend - i == klen && memcmp(q + i, key, klen) == 0) {
            size_t v = eq != NULL ? kend + 1 : e;
            return http_pct_decode(q + v, e - v, out, cap);
        }
        i = e + 1;
    }
    return WSD_ENOENT;
}

const char *http_status_text(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

static void http_put(struct http_out *o, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (n <= o->cap && o->len <= o->cap - n)
        memcpy(o->p + o->len, p, n);
    o->len = n <= SIZE_MAX - o->len ? o->len + n : SIZE_MAX;
}

static void http_puts(struct http_out *o, const char *s)
{
    http_put(o, s, strlen(s));
}

static void http_put_head(struct http_out *o, int status, const char *extra_headers,
                          const char *content_type, size_t body_len)
{
    char line[96];
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %03d %s\r\nServer: wsd\r\n", status,
                     http_status_text(status));

    http_put(o, line, (size_t)n);
    if (content_type != NULL) {
        http_puts(o, "Content-Type: ");
        http_puts(o, content_type);
        http_puts(o, "\r\n");
    }
    n = snprintf(line, sizeof(line),
                 "X-Content-Type-Options: nosniff\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n",
                 body_len);
    http_put(o, line, (size_t)n);
    if (extra_headers != NULL)
        http_puts(o, extra_headers);
    http_puts(o, "\r\n");
}

int http_write_head(char *out, size_t cap, int status, const char *extra_headers,
                    const char *content_type, size_t body_len)
{
    struct http_out o = {out, cap, 0};

    http_put_head(&o, status, extra_headers, content_type, body_len);
    if (o.len > cap || o.len > INT_MAX)
        return WSD_ETOOBIG;
    return (int)o.len;
}

int http_write_response(char *out, size_t cap, int status, const char *extra_headers,
                        const char *content_type, const void *body, size_t body_len)
{
    struct http_out o = {out, cap, 0};

    http_put_head(&o, status, extra_headers, content_type, body_len);
    http_put(&o, body, body_len);
    if (o.len > cap || o.len > INT_MAX)
        return WSD_ETOOBIG;
    return (int)o.len;
}
