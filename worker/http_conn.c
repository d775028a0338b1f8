/* http_conn.c - request head, plain endpoints and the WebSocket upgrade. */
#include "worker/http_conn.h"
#include "core/audit.h"
#include "core/log.h"
#include "core/wsd.h"
#include "proto/handshake.h"
#include "proto/http.h"
#include "shm/conn_table.h"
#include "worker/conn.h"
#include "worker/metrics.h"
#include "worker/table.h"
#include "worker/worker.h"
#include "worker/ws_conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define HTTP_RESPONSE_MAX 1024
#define PLAIN_ON_TLS "plain HTTP request sent to a TLS port"

/* Writes a complete response and lingers until the peer closes. */
static void http_respond(struct worker *w, struct conn *c, int status, const char *headers,
                         const char *type, const void *body, size_t body_len)
{
    char head[HTTP_RESPONSE_MAX];
    int n = http_write_head(head, sizeof(head), status, headers, type, body_len);
    if (n < 0) {
        conn_kill(w, c);
        return;
    }
    if (w->http_head)
        body_len = 0; /* HEAD: the same head, no content (RFC 9110 9.3.2) */
    struct iovec iov[2] = {{head, (size_t)n}, {(void *)body, body_len}};
    if (conn_write(w, c, iov, body_len ? 2 : 1) < 0)
        return;
    conn_linger(w, c);
}

static void http_audit_error(const struct conn *c, int status, const char *why)
{
    if (audit_begin("http_error")) {
        char remote[INET6_ADDRSTRLEN + 8];
        audit_str("remote", http_conn_remote(c, remote, sizeof(remote)));
        audit_u64("status", (uint64_t)status);
        audit_str("reason", why);
        audit_bool("tls", c->tls);
        audit_end();
    }
}

void http_conn_plain_on_tls(struct worker *w, struct conn *c)
{
    static const char why[] = PLAIN_ON_TLS, body[] = PLAIN_ON_TLS "\n";
    char resp[256];
    int n = http_write_response(resp, sizeof(resp), 400, NULL, "text/plain", body,
                                sizeof(body) - 1);
    metrics_count_handshake_failure(w, 400);
    http_audit_error(c, 400, why);
    if (n > 0 && send(c->fd, resp, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        log_msg(LOG_DEBUG, "fd=%d send(400) failed: %s", c->fd, strerror(errno));
}

const char *http_conn_remote(const struct conn *c, char *out, size_t cap)
{
    struct conn_table_addr a = {0};
    if (c->ext)
        table_peer_addr(&c->ext->peer, &a);
    return conn_table_addr_format(&a, out, cap);
}

void http_conn_fail(struct worker *w, struct conn *c, int status, const char *why)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "%d %s: %s\n", status, http_status_text(status), why);
    metrics_count_handshake_failure(w, status);
    http_audit_error(c, status, why);
    http_respond(w, c, status, status == 405 ? "Allow: GET, HEAD\r\n" : NULL,
                 "text/plain; charset=utf-8", body, (size_t)n);
}

static bool view_eq(struct http_view v, const char *s)
{
    size_t len = strlen(s);
    return v.len == len && memcmp(v.p, s, len) == 0;
}

static void http_serve_health(struct worker *w, struct conn *c)
{
    if (w->draining)
        http_respond(w, c, 503, "Retry-After: 5\r\n", "text/plain", "draining\n", 9);
    else
        http_respond(w, c, 200, NULL, "text/plain", "ok\n", 3);
}

static void http_serve_metrics(struct worker *w, struct conn *c)
{
    if (!config_cidr_match(w->cfg->metrics_allow, w->cfg->num_metrics_allow,
                           (const struct sockaddr *)&c->ext->peer)) {
        http_conn_fail(w, c, 403, "metrics are not served to this address");
        return;
    }
    struct buf out;
    buf_init(&out);
    if (metrics_render(w, &out) < 0) {
        buf_fini(&out);
        http_conn_fail(w, c, 500, "out of memory");
        return;
    }
    http_respond(w, c, 200, NULL, "text/plain; version=0.0.4", out.data, out.len);
    buf_fini(&out);
}

/* Upgrades c per res; bytes pipelined after the head (rest[0..rest_len)) go to the frame
 * reader. */
static void http_upgrade(struct worker *w, struct conn *c, const struct hs_result *res,
                         const struct http_request *req, uint8_t *rest, size_t rest_len,
                         enum conn_route route)
{
    int rc = table_conn_acquire(w, c);
    if (rc == WSD_ETOOBIG) {
        http_conn_fail(w, c, 429, "too many connections from this address");
        return;
    }
    if (rc < 0) {
        http_conn_fail(w, c, 503, "connection table full");
        return;
    }
    char resp[HTTP_RESPONSE_MAX];
    int n = hs_write_response(res, &w->hs, resp, sizeof(resp));
    if (n < 0) {
        http_conn_fail(w, c, 500, "response too large");
        return;
    }
    struct iovec iov = {resp, (size_t)n};
    if (conn_write(w, c, &iov, 1) < 0)
        return;
    c->route = (uint8_t)route;
    c->msgpack = res->subprotocol == 1;
    metrics_count_handshake(w);
    if (audit_begin("connect")) {
        char remote[INET6_ADDRSTRLEN + 8];
        audit_u64("conn", c->id);
        audit_str("remote", http_conn_remote(c, remote, sizeof(remote)));
        audit_strn("path", req->path.p, req->path.len);
        audit_bool("tls", c->tls);
        audit_u64("worker", (uint64_t)w->id);
        audit_end();
    }
    ws_conn_start(w, c, res, req);
    if (c->phase != CONN_WS)
        return;
    table_conn_add_flags(w, c, (c->tls ? CONN_TABLE_F_TLS : 0) |
                                   (c->pmd ? CONN_TABLE_F_DEFLATE : 0));
    if (rest_len > 0)
        ws_conn_feed(w, c, rest, rest_len); /* trims c's conn_ext itself */
    else
        conn_ext_trim(c); /* the peer address is in the table now */
}

static void http_dispatch(struct worker *w, struct conn *c, const struct http_request *req,
                              uint8_t *rest, size_t rest_len);

static void http_route(struct worker *w, struct conn *c, const struct http_request *req,
                       uint8_t *rest, size_t rest_len)
{
    w->http_head = view_eq(req->method, "HEAD"); /* what is answered now goes without content */
    http_dispatch(w, c, req, rest, rest_len);
    w->http_head = false;
}

static void http_dispatch(struct worker *w, struct conn *c, const struct http_request *req,
                              uint8_t *rest, size_t rest_len)
{
    const struct config *cfg = w->cfg;
    enum conn_route route = CONN_ROUTE_NONE;
    if (cfg->echo_path && cfg->echo_path[0] && view_eq(req->path, cfg->echo_path))
        route = CONN_ROUTE_ECHO;
    else if (view_eq(req->path, cfg->ws_path))
        route = CONN_ROUTE_APP;

    if (route == CONN_ROUTE_NONE) {
        if (!view_eq(req->method, "GET") && !w->http_head) {
            http_conn_fail(w, c, 405, "only GET and HEAD are served");
        } else if (view_eq(req->path, cfg->health_path)) {
            http_serve_health(w, c);
        } else if (view_eq(req->path, cfg->metrics_path)) {
            http_serve_metrics(w, c);
        } else if (view_eq(req->path, cfg->client_path) && w->client_js) {
            http_respond(w, c, 200, "Cache-Control: no-cache\r\n",
                         "application/javascript; charset=utf-8", w->client_js,
                         w->client_js_len);
        } else {
            http_conn_fail(w, c, 404, "no such endpoint");
        }
        return;
    }
    if (w->draining) {
        metrics_count_handshake_failure(w, 503);
        http_respond(w, c, 503, "Retry-After: 5\r\n", "text/plain", "draining\n", 9);
        return;
    }
    struct hs_result res;
    if (hs_check(req, &w->hs, &res) < 0) {
        char body[128];
        size_t n = hs_error_body(&res, body, sizeof(body));
        log_msg(LOG_DEBUG, "fd=%d handshake refused: %d %s", c->fd, res.status, res.error);
        metrics_count_handshake_failure(w, res.status);
        http_respond(w, c, res.status, hs_error_headers(&res), "text/plain; charset=utf-8", body,
                     n);
        return;
    }
    http_upgrade(w, c, &res, req, rest, rest_len, route);
}

/* Parses the request head in p[0..len) and acts on it (p may be the worker's read
 * buffer or the connection's own; what follows the head is handed on in place).
 * Returns true when the head is still incomplete: then nothing was done. */
static bool http_conn_parse(struct worker *w, struct conn *c, uint8_t *p, size_t len)
{
    size_t max = w->cfg->max_header_size;
    struct http_request req;
    int rc = http_parse_request((const char *)p, len, max, w->cfg->max_headers, &req);
    if (rc == WSD_EAGAIN)
        return true;
    if (rc == WSD_ETOOBIG)
        http_conn_fail(w, c, 431, "request header fields too large");
    else if (rc == WSD_EPROTO)
        http_conn_fail(w, c, 505, "HTTP version not supported");
    else if (rc < 0)
        http_conn_fail(w, c, 400, "malformed request");
    else
        http_route(w, c, &req, p + rc, len - (size_t)rc);
    return false;
}

/*
 * A request head that arrives in one read is parsed in the worker's read buffer; only a
 * head split over reads is gathered in the connection's conn_ext (up to max_header_size
 * + 1 bytes, enough to tell that it is too large).
 */
void http_conn_on_readable(struct worker *w, struct conn *c)
{
    struct conn_ext *x = c->ext;
    size_t max = w->cfg->max_header_size;
    uint8_t *dst = w->rbuf;
    size_t room = WORKER_RBUF_LEN;
    if (x->in.len > 0 && !c->tls) { /* TLS reads whole records: into rbuf, then appended */
        if (buf_reserve(&x->in, max + 1 - WSD_MIN(x->in.len, max)) < 0) {
            conn_kill(w, c);
            return;
        }
        dst = x->in.data + x->in.len;
        room = x->in.cap - x->in.len;
    }
    ssize_t n = conn_recv(w, c, dst, room);
    if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR && errno != EWOULDBLOCK)) {
        conn_kill(w, c);
        return;
    }
    if (n < 0)
        return;
    if (dst == w->rbuf && x->in.len == 0) {
        bool partial = http_conn_parse(w, c, w->rbuf, (size_t)n);
        if (partial && buf_append(&x->in, w->rbuf, (size_t)n) < 0)
            conn_kill(w, c);
        return;
    }
    if (dst == w->rbuf) {
        if (buf_append(&x->in, w->rbuf, (size_t)n) < 0) {
            conn_kill(w, c);
            return;
        }
    } else {
        x->in.len += (size_t)n;
    }
    /* The pipelined tail is framed from the buffer: it must not move or go meanwhile. */
    struct buf head = x->in;
    buf_init(&x->in);
    if (http_conn_parse(w, c, head.data, head.len))
        x->in = head; /* still partial: keep gathering */
    else
        buf_fini(&head);
}
