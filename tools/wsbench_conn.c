/* wsbench_conn.c - one wsbench client connection: connect, upgrade, mode protocol, close. */
#include "tools/wsbench_conn.h"

#include "tools/wsbench_sys.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define READ_ROUNDS 4
#define ACK_EVERY 64
#define REQUEST_MAX 4096
#define TOKEN_MAX 1024
#define OP_TEXT 0x1
#define OP_CLOSE 0x8
#define OP_PING 0x9
#define OP_PONG 0xA

static bool is_counting(const struct wsbench_w *w)
{
    return w->running && w->now >= w->start_ns && w->now < w->end_ns;
}

static bool has_socket(const struct wsbench_c *c)
{
    return c->fd != -1;
}

/* send() or, on wss, SSL_write(): bytes sent, or -1 with errno (EAGAIN: try later with
   the same bytes). */
static ssize_t c_send(struct wsbench_c *c, const void *p, size_t len)
{
    if (c->ssl == NULL)
        return send(c->fd, p, len, MSG_NOSIGNAL);
    size_t n = 0;
    ERR_clear_error();
    if (SSL_write_ex(c->ssl, p, len, &n) == 1)
        return (ssize_t)n;
    int e = SSL_get_error(c->ssl, 0);
    errno = e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? EAGAIN : EIO;
    return -1;
}

/* recv() or SSL_read(): bytes, 0 at the end, -1 with errno. */
static ssize_t c_recv(struct wsbench_c *c, void *p, size_t len)
{
    if (c->ssl == NULL)
        return recv(c->fd, p, len, 0);
    size_t n = 0;
    ERR_clear_error();
    if (SSL_read_ex(c->ssl, p, len, &n) == 1)
        return (ssize_t)n;
    int e = SSL_get_error(c->ssl, 0);
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    errno = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? EAGAIN : EIO;
    return -1;
}

static void record_error(struct wsbench_w *w, const char *why)
{
    w->res->errors++;
    if (w->res->error[0] == '\0')
        snprintf(w->res->error, sizeof(w->res->error), "%s", why);
}

void wsbench_conn_error(struct wsbench_w *w, const char *fmt, ...)
{
    char why[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    record_error(w, why);
}

/* Settles a connection that was being set up: ready or failed. */
static void settle(struct wsbench_w *w, struct wsbench_c *c, bool ok)
{
    if (c->settled || w->o->mode == WSBENCH_CONNECT)
        return;
    c->settled = true;
    w->settled++;
    w->pending--;
    if (ok && c->role == WSBENCH_ROLE_SUB)
        w->res->subs_ok++;
    if (ok)
        w->res->conns_ok++;
    else
        w->res->conns_failed++;
}

/* Resets what a connection holds so its slot can be used again. */
static void reset_conn(struct wsbench_w *w, struct wsbench_c *c)
{
    bool keep = c->rx.keep;
    wsbench_rx_fini(&c->rx);
    wsbench_rx_init(&c->rx, keep);
    buf_fini(&c->out);
    buf_fini(&c->hs);
    c->stream_bytes = 0;
    c->stream_pos = 0;
    c->raw_have = 0;
    c->ring_head = 0;
    c->ring_len = 0;
    c->outstanding = 0;
    c->out_armed = false;
    c->state = w->o->mode == WSBENCH_CONNECT ? WSBENCH_CS_IDLE : WSBENCH_CS_DEAD;
}

void wsbench_conn_finish(struct wsbench_w *w, struct wsbench_c *c, bool rst)
{
    if (has_socket(c)) {
        if (rst) {
            struct linger lg = {1, 0};
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        close(c->fd);
        c->fd = -1;
        w->live--;
    }
    SSL_free(c->ssl);
    c->ssl = NULL;
    reset_conn(w, c);
}

void wsbench_conn_drop(struct wsbench_w *w, struct wsbench_c *c, const char *fmt, ...)
{
    char why[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    record_error(w, why);
    if (w->o->mode == WSBENCH_CONNECT)
        w->res->conns_failed++;
    settle(w, c, false);
    wsbench_conn_finish(w, c, true);
}

static void ready(struct wsbench_w *w, struct wsbench_c *c)
{
    c->state = WSBENCH_CS_READY;
    settle(w, c, true);
}

static void want_out(struct wsbench_w *w, struct wsbench_c *c, bool want)
{
    if (c->out_armed == want)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev) == -1) {
        wsbench_conn_drop(w, c, "epoll_ctl(MOD, fd=%d) failed: %s", c->fd, strerror(errno));
        return;
    }
    c->out_armed = want;
}

/* Sends up to limit bytes of the echo stream. Returns 1 when all went, 0 if it would block,
   -1 on error. */
static int stream_write(struct wsbench_w *w, struct wsbench_c *c, uint64_t limit)
{
    while (limit > 0) {
        size_t chunk = (size_t)WSD_MIN(limit, (uint64_t)(w->stream_len - c->stream_pos));
        ssize_t n = c_send(c, w->stream + c->stream_pos, chunk);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -1;
        }
        c->stream_bytes -= (uint64_t)n;
        limit -= (uint64_t)n;
        c->stream_pos = (uint32_t)((c->stream_pos + (size_t)n) % w->flen);
    }
    return 1;
}

/* Sends the queued frames in c->out. Same returns as stream_write(). */
static int out_write(struct wsbench_c *c)
{
    size_t off = 0;
    int rc = 1;
    while (off < c->out.len) {
        ssize_t n = c_send(c, c->out.data + off, c->out.len - off);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            rc = errno == EAGAIN ? 0 : -1;
            break;
        }
        off += (size_t)n;
    }
    buf_consume(&c->out, off);
    return rc;
}

void wsbench_conn_flush(struct wsbench_w *w, struct wsbench_c *c)
{
    if (!has_socket(c) || c->state == WSBENCH_CS_CONNECTING || c->state == WSBENCH_CS_TLS)
        return;
    int rc = 1;
    /* finish the echo frame in progress before any other frame goes out */
    if (c->stream_bytes > 0 && c->stream_pos != 0)
        rc = stream_write(w, c, WSD_MIN(c->stream_bytes, (uint64_t)(w->flen - c->stream_pos)));
    if (rc == 1 && c->out.len > 0)
        rc = out_write(c);
    if (rc == 1 && c->stream_bytes > 0)
        rc = stream_write(w, c, c->stream_bytes);
    if (rc < 0) {
        if (c->state == WSBENCH_CS_CLOSING)
            wsbench_conn_finish(w, c, true);
        else
            wsbench_conn_drop(w, c, "send: %s", strerror(errno));
        return;
    }
    want_out(w, c, rc == 0);
}

static void queue_frame(struct wsbench_w *w, struct wsbench_c *c, uint8_t opcode,
                        const void *payload, size_t len)
{
    if (wsbench_ws_append(&c->out, opcode, payload, len, w->mask) != 0)
        wsbench_conn_drop(w, c, "out of memory");
}

void wsbench_conn_echo_queue(struct wsbench_w *w, struct wsbench_c *c, uint32_t n)
{
    uint32_t cap = w->o->inflight;
    for (uint32_t i = 0; i < n && c->ring_len < cap; i++) {
        c->ring[(c->ring_head + c->ring_len) % cap] = w->now;
        c->ring_len++;
        c->stream_bytes += w->flen;
        if (is_counting(w))
            w->res->sent++;
    }
}

/* Writes the publish (or send) envelope for c into w->jbuf; returns its length. */
static size_t publish_json(struct wsbench_w *w, struct wsbench_c *c, int64_t t)
{
    const struct wsbench_opts *o = w->o;
    char target[160];
    int n;
    if (o->mode == WSBENCH_FANOUT) {
        n = snprintf(w->jbuf, w->jcap, "{\"op\":\"publish\",\"group\":\"%s\",", o->group);
    } else {
        if (o->jwt_secret)
            snprintf(target, sizeof(target), "%s%llu", o->user_prefix,
                     (unsigned long long)((c->pub_idx + c->seq * o->publishers) %
                                          WSD_MAX(o->conns, 1u)));
        else
            snprintf(target, sizeof(target), "%s", o->direct_user);
        n = snprintf(w->jbuf, w->jcap, "{\"op\":\"send\",\"user\":\"%s\",", target);
    }
    n += snprintf(w->jbuf + n, w->jcap - (size_t)n, "\"data\":{\"t\":%lld,\"s\":%llu",
                  (long long)t, (unsigned long long)c->seq);
    int pad = (int)o->size - n - 9; /* ,"p":"" and }} */
    if (pad > 0)
        n += snprintf(w->jbuf + n, w->jcap - (size_t)n, ",\"p\":\"%.*s\"}}", pad, w->pad);
    else
        n += snprintf(w->jbuf + n, w->jcap - (size_t)n, "}}");
    return (size_t)n;
}

void wsbench_conn_publish(struct wsbench_w *w, struct wsbench_c *c)
{
    size_t len = publish_json(w, c, wsbench_sys_now_ns());
    queue_frame(w, c, OP_TEXT, w->jbuf, len);
    if (!has_socket(c))
        return;
    c->outstanding++;
    c->seq++;
    if (is_counting(w))
        w->res->sent++;
}

/* Token for c: a minted one per user, the shared one, or none. */
static const char *conn_token(struct wsbench_w *w, struct wsbench_c *c, char *buf, size_t cap)
{
    const struct wsbench_opts *o = w->o;
    char sub[96];
    if (!o->jwt_secret)
        return o->token;
    if (c->role == WSBENCH_ROLE_PUB)
        snprintf(sub, sizeof(sub), "%spub%u", o->user_prefix, c->pub_idx);
    else
        snprintf(sub, sizeof(sub), "%s%u", o->user_prefix, c->gidx);
    return wsbench_ws_jwt(buf, cap, o->jwt_secret, sub, (int64_t)time(NULL) + 3600) > 0 ? buf
                                                                                     : NULL;
}

void wsbench_conn_open(struct wsbench_w *w, struct wsbench_c *c, uint32_t src_idx)
{
    const struct wsbench_opts *o = w->o;
    int one = 1;
    c->t0 = w->now;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd == -1) {
        wsbench_conn_drop(w, c, "socket: %s", strerror(errno));
        return;
    }
    w->live++;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (o->nsrc > 0) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = o->src[src_idx % o->nsrc]};
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
            wsbench_conn_drop(w, c, "bind(%s): %s", inet_ntoa(sa.sin_addr), strerror(errno));
            return;
        }
    }
    if (connect(c->fd, (const struct sockaddr *)&o->dst, sizeof(o->dst)) == -1 &&
        errno != EINPROGRESS) {
        wsbench_conn_drop(w, c, "connect: %s", strerror(errno));
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) == -1) {
        wsbench_conn_drop(w, c, "epoll_ctl(ADD, fd=%d) failed: %s", c->fd, strerror(errno));
        return;
    }
    c->out_armed = true;
    c->state = WSBENCH_CS_CONNECTING;
}

/* Connect mode: a handshake completed; count it and start the close. */
static void cycle_done(struct wsbench_w *w, struct wsbench_c *c)
{
    if (is_counting(w)) {
        w->res->messages++;
        wsbench_hist_add(&w->res->hist, (uint64_t)(w->now - c->t0));
    }
    w->res->conns_ok++;
    if (w->o->raw)
        wsbench_conn_finish(w, c, true);
    else
        wsbench_conn_close(w, c);
}

/* The upgrade succeeded (or a raw connect did): start the mode's protocol. */
static void on_open(struct wsbench_w *w, struct wsbench_c *c)
{
    static const char join_fmt[] = "{\"op\":\"join\",\"group\":\"%s\"}";
    static const char ping[] = "{\"op\":\"ping\"}";
    if (w->o->mode == WSBENCH_CONNECT) {
        cycle_done(w, c);
        return;
    }
    if (c->role != WSBENCH_ROLE_SUB) {
        ready(w, c);
        return;
    }
    c->state = WSBENCH_CS_JOINING;
    if (w->o->mode == WSBENCH_FANOUT) {
        int n = snprintf(w->jbuf, w->jcap, join_fmt, w->o->group);
        queue_frame(w, c, OP_TEXT, w->jbuf, (size_t)n);
    } else {
        queue_frame(w, c, OP_TEXT, ping, sizeof(ping) - 1);
    }
}

static void on_connected(struct wsbench_w *w, struct wsbench_c *c);

/* Moves the TLS handshake on; once done, the connection goes on as a plain one would. */
static void tls_handshake(struct wsbench_w *w, struct wsbench_c *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        on_connected(w, c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        want_out(w, c, e == SSL_ERROR_WANT_WRITE);
        return;
    }
    unsigned long why = ERR_peek_last_error();
    wsbench_conn_drop(w, c, "TLS handshake: %s",
                      why ? ERR_reason_error_string(why) : "connection closed");
}

static void on_connected(struct wsbench_w *w, struct wsbench_c *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    char token[TOKEN_MAX];
    char req[REQUEST_MAX];
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
        err = errno;
    if (err != 0) {
        wsbench_conn_drop(w, c, "connect: %s", strerror(err));
        return;
    }
    if (w->tls != NULL && c->ssl == NULL) {
        if ((c->ssl = SSL_new(w->tls)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
            wsbench_conn_drop(w, c, "TLS session: out of memory");
            return;
        }
        SSL_set_tlsext_host_name(c->ssl, w->o->url.host);
        SSL_set_connect_state(c->ssl);
        c->state = WSBENCH_CS_TLS;
        tls_handshake(w, c);
        return;
    }
    if (w->o->raw) {
        on_open(w, c);
    } else {
        const char *tok = conn_token(w, c, token, sizeof(token));
        int n = wsbench_ws_request(req, sizeof(req), &w->o->url, w->key, tok);
        if (n < 0 || buf_append(&c->out, req, (size_t)n) != 0) {
            wsbench_conn_drop(w, c, "upgrade request does not fit");
            return;
        }
        c->state = WSBENCH_CS_HANDSHAKE;
    }
    if (has_socket(c))
        wsbench_conn_flush(w, c);
}

void wsbench_conn_close(struct wsbench_w *w, struct wsbench_c *c)
{
    static const uint8_t normal[2] = {0x03, 0xe8};
    if (!has_socket(c) || c->state == WSBENCH_CS_CLOSING)
        return;
    if (w->o->raw || c->state < WSBENCH_CS_JOINING) {
        wsbench_conn_finish(w, c, c->state != WSBENCH_CS_READY);
        return;
    }
    /* no echo frame may follow the close: keep only the rest of the one in progress */
    c->stream_bytes = c->stream_pos ? (uint64_t)(w->flen - c->stream_pos) : 0;
    queue_frame(w, c, OP_CLOSE, normal, sizeof(normal));
    if (!has_socket(c))
        return;
    c->state = WSBENCH_CS_CLOSING;
    c->t0 = w->now;
    wsbench_conn_flush(w, c);
}

/* How much of a message an error text quotes. */
static int shown(size_t len)
{
    return (int)WSD_MIN(len, (size_t)100);
}

/* An echo reply is complete: note its latency and send the next. */
static void echo_done(struct wsbench_w *w, struct wsbench_c *c)
{
    if (c->ring_len == 0)
        return;
    int64_t t = c->ring[c->ring_head];
    c->ring_head = (c->ring_head + 1) % w->o->inflight;
    c->ring_len--;
    if (is_counting(w)) {
        w->res->messages++;
        wsbench_hist_add(&w->res->hist, (uint64_t)WSD_MAX(w->now - t, (int64_t)0));
    }
    if (w->running && w->now < w->end_ns)
        wsbench_conn_echo_queue(w, c, 1);
}

/* A delivery reached a subscriber: latency from the publisher's stamp; direct acks. */
static void delivery(struct wsbench_w *w, struct wsbench_c *c, const uint8_t *p, size_t len)
{
    int64_t t;
    if (wsbench_ws_json_int(p, len, "t", true, &t) != 0) {
        wsbench_conn_error(w, "delivery without a timestamp: %.*s", shown(len), (const char *)p);
        return;
    }
    if (is_counting(w)) {
        w->res->messages++;
        wsbench_hist_add(&w->res->hist, (uint64_t)WSD_MAX(w->now - t, (int64_t)0));
    }
    if (w->o->mode != WSBENCH_DIRECT)
        return;
    int64_t off;
    if (wsbench_ws_json_int(p, len, "off", false, &off) == 0)
        c->last_off = off;
    if (++c->delivered % ACK_EVERY == 0 && c->last_off > 0) {
        int n = snprintf(w->jbuf, w->jcap, "{\"op\":\"ack\",\"offset\":%lld}",
                         (long long)c->last_off);
        queue_frame(w, c, OP_TEXT, w->jbuf, (size_t)n);
    }
}

static void sub_message(struct wsbench_w *w, struct wsbench_c *c, const uint8_t *p, size_t len)
{
    enum wsbench_op op = wsbench_ws_json_op(p, len);
    if (c->state == WSBENCH_CS_JOINING) {
        if (op == WSBENCH_OP_ERROR)
            wsbench_conn_drop(w, c, "join refused: %.*s", shown(len), (const char *)p);
        else if ((w->o->mode == WSBENCH_FANOUT && op == WSBENCH_OP_REPLY) ||
                 (w->o->mode == WSBENCH_DIRECT && op == WSBENCH_OP_PONG))
            ready(w, c);
        return;
    }
    if (op == WSBENCH_OP_MSG)
        delivery(w, c, p, len);
    else if (op == WSBENCH_OP_ERROR)
        wsbench_conn_error(w, "server error: %.*s", shown(len), (const char *)p);
}

static void pub_message(struct wsbench_w *w, struct wsbench_c *c, const uint8_t *p, size_t len)
{
    enum wsbench_op op = wsbench_ws_json_op(p, len);
    if (op != WSBENCH_OP_REPLY && op != WSBENCH_OP_ERROR)
        return;
    if (c->outstanding > 0)
        c->outstanding--;
    if (op == WSBENCH_OP_ERROR)
        wsbench_conn_error(w, "publish refused: %.*s", shown(len), (const char *)p);
    else if (is_counting(w))
        w->res->replies++;
    if (w->interval_ns == 0 && w->running && w->now < w->end_ns)
        wsbench_conn_publish(w, c);
}

static void on_message(struct wsbench_w *w, struct wsbench_c *c, const struct wsbench_rx_event *ev)
{
    if (c->state == WSBENCH_CS_CLOSING)
        return;
    if (c->role == WSBENCH_ROLE_SUB)
        sub_message(w, c, ev->data, ev->len);
    else if (c->role == WSBENCH_ROLE_PUB)
        pub_message(w, c, ev->data, ev->len);
    else if (w->o->mode == WSBENCH_ECHO)
        echo_done(w, c);
}

static void on_control(struct wsbench_w *w, struct wsbench_c *c, const struct wsbench_rx_event *ev)
{
    if (ev->opcode == OP_PING) {
        queue_frame(w, c, OP_PONG, ev->data, ev->len);
        return;
    }
    if (ev->opcode != OP_CLOSE || c->state == WSBENCH_CS_CLOSING)
        return;
    unsigned code = ev->len >= 2 ? (unsigned)ev->data[0] << 8 | ev->data[1] : 1005;
    wsbench_conn_error(w, "server closed the connection with %u", code);
    settle(w, c, false);
    wsbench_conn_close(w, c);
}

static void ws_input(struct wsbench_w *w, struct wsbench_c *c, const uint8_t *p, size_t len)
{
    while (len > 0 && has_socket(c)) {
        struct wsbench_rx_event ev;
        size_t used = wsbench_rx_feed(&c->rx, p, len, &ev);
        p += used;
        len -= used;
        if (ev.type == WSBENCH_RX_MESSAGE)
            on_message(w, c, &ev);
        else if (ev.type == WSBENCH_RX_CONTROL)
            on_control(w, c, &ev);
        else if (ev.type == WSBENCH_RX_ERROR)
            wsbench_conn_drop(w, c, "bad frame from the server: %s", ev.error);
    }
}

static void raw_input(struct wsbench_w *w, struct wsbench_c *c, size_t len)
{
    if (w->o->mode != WSBENCH_ECHO)
        return;
    uint64_t have = c->raw_have + (uint64_t)len;
    while (have >= w->o->size) {
        have -= w->o->size;
        echo_done(w, c);
    }
    c->raw_have = (uint32_t)have;
}

static void handshake_input(struct wsbench_w *w, struct wsbench_c *c, const uint8_t *p,
                            size_t len)
{
    int status = 0;
    if (buf_append(&c->hs, p, len) != 0) {
        wsbench_conn_drop(w, c, "out of memory");
        return;
    }
    int rc = wsbench_ws_check_response((const char *)c->hs.data, c->hs.len, w->accept, &status);
    if (rc == WSD_EAGAIN)
        return;
    if (rc < 0) {
        if (status != 0)
            wsbench_conn_drop(w, c, "upgrade answered with HTTP %d", status);
        else
            wsbench_conn_drop(w, c, "bad upgrade response (%s)", wsd_strerror(rc));
        return;
    }
    struct buf rest = c->hs;
    buf_init(&c->hs);
    on_open(w, c);
    if (has_socket(c) && rest.len > (size_t)rc)
        ws_input(w, c, rest.data + rc, rest.len - (size_t)rc);
    buf_fini(&rest);
}

static void conn_input(struct wsbench_w *w, struct wsbench_c *c, const uint8_t *p, size_t len)
{
    if (c->state == WSBENCH_CS_HANDSHAKE)
        handshake_input(w, c, p, len);
    else if (w->o->raw)
        raw_input(w, c, len);
    else
        ws_input(w, c, p, len);
}

/* The server closed or the socket failed: normal while closing, an error otherwise. */
static void conn_ended(struct wsbench_w *w, struct wsbench_c *c, int err)
{
    if (c->state == WSBENCH_CS_CLOSING)
        wsbench_conn_finish(w, c, err != 0);
    else if (err != 0)
        wsbench_conn_drop(w, c, "recv: %s", strerror(err));
    else
        wsbench_conn_drop(w, c, "server closed the connection");
}

static void conn_read(struct wsbench_w *w, struct wsbench_c *c)
{
    for (int round = 0; round < READ_ROUNDS && has_socket(c); round++) {
        ssize_t n = c_recv(c, w->rbuf, WSBENCH_RBUF_LEN);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1 && errno == EAGAIN)
            break;
        if (n <= 0) {
            conn_ended(w, c, n == 0 ? 0 : errno);
            return;
        }
        w->now = wsbench_sys_now_ns();
        conn_input(w, c, w->rbuf, (size_t)n);
        if (n < WSBENCH_RBUF_LEN && c->ssl == NULL) /* TLS: a record at a time, to EAGAIN */
            break;
    }
    if (has_socket(c))
        wsbench_conn_flush(w, c);
}

void wsbench_conn_event(struct wsbench_w *w, struct wsbench_c *c, uint32_t events)
{
    if (!has_socket(c))
        return;
    if (c->state == WSBENCH_CS_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            on_connected(w, c);
        return;
    }
    if (c->state == WSBENCH_CS_TLS) {
        tls_handshake(w, c);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_read(w, c);
    if (has_socket(c) && (events & EPOLLOUT))
        wsbench_conn_flush(w, c);
}
