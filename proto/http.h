/*
 * http.h - HTTP/1.1 request-head parser (RFC 9112) for the upgrade handshake and the
 * small plain endpoints. No allocation: the parsed request is views into the caller's
 * buffer. Re-called on the growing buffer until it returns the head length; the caller
 * enforces its own size limit on the bytes it buffers (anything at or over max_head_len
 * without a complete head is WSD_ETOOBIG).
 */
#ifndef WSD_PROTO_HTTP_H
#define WSD_PROTO_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 64

struct http_view {
    const char *p;
    size_t len;
};

struct http_header {
    struct http_view name;
    struct http_view value; /* leading and trailing blanks removed */
};

struct http_request {
    struct http_view method;
    struct http_view target; /* request-target as sent: path and optional ?query */
    struct http_view path;   /* target up to '?' */
    struct http_view query;  /* after '?', without it; empty when none */
    int version_major;
    int version_minor;
    size_t num_headers;
    struct http_header headers[HTTP_MAX_HEADERS];
};

/*
 * Parses the request head in buf[0..len).
 * Returns the head length (through the blank line) when complete;
 * WSD_EAGAIN when more bytes are needed (and len < max_head_len);
 * WSD_ETOOBIG when the head reaches max_head_len bytes or has more than max_headers
 *   (capped at HTTP_MAX_HEADERS) header fields: answer 431;
 * WSD_EINVAL for a malformed head (bad request line, bare CR, obsolete line folding,
 *   control characters, no colon, blank or non-token header name): answer 400;
 * WSD_EPROTO for an HTTP version other than 1.x: answer 505.
 * Accepts bare LF line endings as RFC 9112 permits; rejects bare CR.
 */
int http_parse_request(const char *buf, size_t len, size_t max_head_len, size_t max_headers,
                       struct http_request *req);

/* First header with this name (case-insensitive), or NULL. */
const struct http_header *http_find_header(const struct http_request *req, const char *name);

/* Number of headers with this name (case-insensitive). */
size_t http_count_headers(const struct http_request *req, const char *name);

/*
 * True when some header called name holds token (case-insensitive) as one element of its
 * comma-separated list (e.g. "Connection: keep-alive, Upgrade" holds "upgrade").
 */
bool http_header_has_token(const struct http_request *req, const char *name,
                           const char *token);

/*
 * Steps through the comma-separated list value[0..len) (RFC 9110 section 5.6.1): from *pos
 * (0 to start), stores the next element, blanks around it removed, in *elem and advances
 * *pos. Empty elements are skipped. Returns false when no element is left.
 */
bool http_list_next(const char *value, size_t len, size_t *pos, struct http_view *elem);

/*
 * Finds query parameter key in req->query and percent-decodes its value into out (at most
 * cap bytes, NUL-terminated). The key is matched exactly, undecoded; the first occurrence
 * counts; '+' stays '+'. Returns the decoded length, WSD_ENOENT when absent,
 * WSD_ETOOBIG when it does not fit, WSD_EINVAL for a bad %-escape (including %00).
 */
int http_query_param(const struct http_request *req, const char *key, char *out, size_t cap);

/* Reason phrase for a status code ("Not Found"), "Unknown" when not known. */
const char *http_status_text(int status);

/*
 * Writes the head of a response into out: the status line, Server, Content-Type (when
 * not NULL), X-Content-Type-Options: nosniff, Content-Length: body_len, Connection:
 * close, extra_headers (each line ending in CRLF, may be NULL) and the empty line.
 * Returns its length, or WSD_ETOOBIG when cap is too small.
 */
int http_write_head(char *out, size_t cap, int status, const char *extra_headers,
                    const char *content_type, size_t body_len);

/* The same head followed by body: a complete response. */
int http_write_response(char *out, size_t cap, int status, const char *extra_headers,
                        const char *content_type, const void *body, size_t body_len);

#endif
