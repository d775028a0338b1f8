/* conn.c - connection lifecycle, output and the close handshake. */
#include "worker/conn.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/wsd.h"
#include "worker/app.h"
#include "worker/http_conn.h"
#include "worker/table.h"
#include "worker/tls.h"
#include "worker/worker.h"
#include "worker/ws_conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* Writes larger than this bypass the cork (no extra copy of big messages). */
#define CONN_CORK_MAX (64 * 1024)

/* How long a lingering close waits for the peer's EOF. */
#define CONN_LINGER_MS 2000
/* Full read buffers taken per event before other connections get their turn. */
#define CONN_READS_PER_EVENT 4
/* Bytes written per EPOLLOUT event before other connections get their turn. */
#define CONN_WRITE_BUDGET (1024 * 1024)

struct conn_ext *conn_ext(struct conn *c)
{
    if (c->ext == NULL)
        c->ext = calloc(1, sizeof(*c->ext)); /* all zero: empty buffers, utf8 at a start */
    return c->ext;
}

static void conn_ext_free(struct conn *c)
{
    if (c->ext == NULL)
        return;
    buf_fini(&c->ext->in);
    buf_fini(&c->ext->msg);
    if (c->ext->ssl)
        tls_session_free(c->ext->ssl);
    free(c->ext);
    c->ext = NULL;
}

void conn_ext_trim(struct conn *c)
{
    struct conn_ext *x = c->ext;
    if (x && c->phase != CONN_HTTP && !x->rd_live && x->in.cap == 0 && x->msg.cap == 0 &&
        x->ssl == NULL)
        conn_ext_free(c);
}

struct conn *conn_new(struct worker *w, int fd, const struct sockaddr_storage *peer,
                      struct ssl_ctx_st *tls_ctx)
{
    struct conn *c = pool_alloc(&w->conn_pool);
    if (c == NULL)
        return NULL;
    if (conn_ext(c) == NULL ||
        (tls_ctx != NULL && (c->ext->ssl = tls_session_new(tls_ctx, fd)) == NULL)) {
        free(c->ext);
        pool_free(&w->conn_pool, c);
        return NULL;
    }
    c->tls = tls_ctx != NULL;
    c->ext->peer = *peer;
    c->kind = EV_CONN;
    c->phase = CONN_HTTP;
    c->fd = fd;
    c->slot = UINT32_MAX;
    c->deadline_ms = w->now_ms + (int64_t)w->cfg->header_timeout * 1000;
    outq_init(&c->out);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->num_conns++;
    return c;
}

void conn_kill(struct worker *w, struct conn *c)
{
    if (c->phase == CONN_DEAD)
        return;
    c->phase = CONN_DEAD;
    if (w->corked == c) {
        w->corked = NULL;
        w->cork.len = 0;
    }
    if (c->fd >= 0) {
        close(c->fd); /* also removes it from the epoll set */
        c->fd = -1;
    }
    table_conn_release(w, c);
    if (w->tick_next == c)
        w->tick_next = c->next;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->num_conns--;
    c->next_dead = w->dead;
    w->dead = c;
}

void conn_free(struct worker *w, struct conn *c)
{
    /* Leaving groups and users waits until here: a connection may die in the middle of
       a fan-out over the very group it would leave. */
    if (c->app)
        app_on_close(w, c);
    conn_ext_free(c);
    outq_fini(&c->out);
    if (c->pmd) {
        pmd_stream_fini(c->pmd);
        free(c->pmd);
    }
    pool_free(&w->conn_pool, c);
}

/* Ends our sending side (after TLS's close_notify). */
static void conn_shut_wr(struct conn *c)
{
    if (c->tls)
        tls_close_notify(c->ext->ssl);
    shutdown(c->fd, SHUT_WR);
}

/* After output progress: finish a linger/close step that waited for the queue. */
static void conn_after_output(struct worker *w, struct conn *c)
{
    if (!outq_is_empty(&c->out))
        return;
    if (c->phase == CONN_LINGER) {
        conn_shut_wr(c);
    } else if (c->phase == CONN_CLOSING && c->close_received) {
        conn_linger(w, c);
        return;
    }
    if (c->paused && c->out.bytes == 0) {
        c->paused = false;
        worker_update_events(w, c);
    }
}

static void conn_check_output(struct worker *w, struct conn *c)
{
    bool want = !outq_is_empty(&c->out);
    if (want != c->want_out) {
        c->want_out = want;
        worker_update_events(w, c);
    }
    if (!want)
        conn_after_output(w, c);
}

void conn_cork(struct worker *w, struct conn *c)
{
    if (w->corked && w->corked != c)
        conn_uncork(w);
    w->corked = c;
}

void conn_uncork(struct worker *w)
{
    struct conn *c = w->corked;
    w->corked = NULL;
    if (c != NULL && w->cork.len > 0 && c->phase != CONN_DEAD) {
        struct iovec iov = {w->cork.data, w->cork.len};
        w->cork.len = 0;
        conn_write(w, c, &iov, 1);
    }
    w->cork.len = 0;
    if (w->cork.cap > 4 * CONN_CORK_MAX)
        buf_fini(&w->cork); /* a burst made it big: do not keep it */
}

/* Appends a small write to the cork. Returns 1 when taken, 0 when it must go out now. */
static int conn_cork_take(struct worker *w, const struct iovec *iov, int iovcnt)
{
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (total > CONN_CORK_MAX || buf_reserve(&w->cork, total) < 0) {
        conn_uncork(w); /* keep the order: what is corked goes first */
        return 0;
    }
    for (int i = 0; i < iovcnt; i++)
        buf_append(&w->cork, iov[i].iov_base, iov[i].iov_len);
    return 1;
}

int conn_write(struct worker *w, struct conn *c, const struct iovec *iov, int iovcnt)
{
    if (c->phase == CONN_DEAD)
        return WSD_ECLOSED;
    if (w->corked == c && conn_cork_take(w, iov, iovcnt))
        return 0;
    int64_t n = outq_send(&c->out, c->fd, conn_tls(c), iov, iovcnt);
    if (n < 0) {
        if (n == WSD_EIO)
            log_msg(LOG_DEBUG, "conn=%llx write failed: %s", (unsigned long long)c->id,
                    strerror(errno));
        else
            log_msg(LOG_WARN, "conn=%llx out of memory queueing output",
                    (unsigned long long)c->id);
        conn_kill(w, c);
        return (int)n;
    }
    table_conn_count_out(w, c, (uint64_t)n);
    conn_check_output(w, c);
    return 0;
}

int conn_send_block(struct worker *w, struct conn *c, struct block *blk)
{
    if (c->phase == CONN_DEAD)
        return WSD_ECLOSED;
    if (w->corked == c)
        conn_uncork(w);
    int rc = outq_push_block(&c->out, blk);
    if (rc < 0) {
        conn_kill(w, c);
        return rc;
    }
    if (!c->dirty) {
        c->dirty = true;
        c->next_dirty = w->dirty;
        w->dirty = c;
    }
    return 0;
}

/* Writes queued output; with the budget spent and the socket still writable, re-arms
 * (edge-triggered: no event would come by itself). */
static void conn_flush(struct worker *w, struct conn *c)
{
    int64_t n = outq_flush(&c->out, c->fd, conn_tls(c), CONN_WRITE_BUDGET);
    if (n < 0) {
        conn_kill(w, c);
        return;
    }
    table_conn_count_out(w, c, (uint64_t)n);
    bool rearm = c->want_out && (uint64_t)n >= CONN_WRITE_BUDGET && !outq_is_empty(&c->out);
    conn_check_output(w, c); /* arms EPOLLOUT itself when it was off */
    if (rearm && c->phase != CONN_DEAD)
        worker_update_events(w, c);
}

void conn_flush_dirty(struct worker *w)
{
    while (w->dirty) {
        struct conn *c = w->dirty;
        w->dirty = c->next_dirty;
        c->dirty = false;
        if (c->phase != CONN_DEAD)
            conn_flush(w, c);
    }
}

int conn_send_frame(struct worker *w, struct conn *c, uint8_t opcode, const uint8_t *p,
                    size_t len)
{
    uint8_t hdr[14];
    bool rsv1 = false;
    if (c->pmd && opcode < WS_OP_CLOSE && len >= w->pmd.min_size) {
        w->scratch.len = 0;
        int rc = pmd_deflate(c->pmd, p, len, &w->scratch);
        if (rc < 0) {
            conn_kill(w, c);
            return rc;
        }
        p = w->scratch.data;
        len = w->scratch.len;
        rsv1 = true;
    }
    size_t hlen = ws_frame_header(hdr, opcode, true, rsv1, len, NULL);
    struct iovec iov[2] = {{hdr, hlen}, {(void *)p, len}};
    return conn_write(w, c, iov, len ? 2 : 1);
}

void conn_ws_close(struct worker *w, struct conn *c, uint16_t code, const char *reason)
{
    if (c->close_sent || c->phase == CONN_DEAD)
        return;
    uint8_t payload[125];
    size_t len = code ? ws_close_payload(payload, code, reason ? reason : "") : 0;
    c->close_sent = true;
    c->close_code = code;
    if (c->phase == CONN_WS)
        c->phase = CONN_CLOSING;
    c->deadline_ms = w->now_ms + (int64_t)w->cfg->close_timeout * 1000;
    table_conn_state(w, c, TABLE_STATE_CLOSING);
    conn_send_frame(w, c, WS_OP_CLOSE, payload, len);
}

void conn_linger(struct worker *w, struct conn *c)
{
    if (c->phase == CONN_DEAD || c->phase == CONN_LINGER)
        return;
    if (w->corked == c)
        conn_uncork(w); /* what was corked goes out before our side shuts down */
    if (c->phase == CONN_DEAD || c->phase == CONN_LINGER)
        return;
    c->phase = CONN_LINGER;
    c->deadline_ms = w->now_ms + CONN_LINGER_MS;
    if (c->ext) { /* nothing more is read: drop partial input (the struct goes later) */
        buf_fini(&c->ext->in);
        buf_fini(&c->ext->msg);
        c->ext->rd_live = false;
    }
    if (c->paused) {
        c->paused = false;
        worker_update_events(w, c);
    }
    if (outq_is_empty(&c->out))
        conn_shut_wr(c);
}

ssize_t conn_recv(struct worker *w, struct conn *c, uint8_t *dst, size_t len)
{
    if (!c->tls) {
        ssize_t n = recv(c->fd, dst, len, MSG_DONTWAIT);
        w->read_more = n > 0 && (size_t)n == len;
        return n;
    }
    struct tls_read_state st;
    ssize_t n = tls_read(c->ext->ssl, c->fd, dst, len, &st);
    w->read_more = st.more;
    if (st.plain_http)
        http_conn_plain_on_tls(w, c);
    if (st.want_write != c->ext->tls_read_wants_out) {
        c->ext->tls_read_wants_out = st.want_write;
        worker_update_events(w, c);
    }
    return n;
}

/* Reads and discards while lingering (TLS records unread: nothing more is wanted from
 * the session); EOF ends the connection. */
static void conn_drain(struct worker *w, struct conn *c)
{
    ssize_t n = recv(c->fd, w->rbuf, WORKER_RBUF_LEN, MSG_DONTWAIT);
    w->read_more = n == WORKER_RBUF_LEN;
    if (n > 0 || (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)))
        return;
    conn_kill(w, c);
}

/* One read in the connection's phase; sets w->read_more when bytes may be left. */
static void conn_read(struct worker *w, struct conn *c)
{
    w->read_more = false;
    switch (c->phase) {
    case CONN_HTTP:
        http_conn_on_readable(w, c);
        break;
    case CONN_WS:
    case CONN_CLOSING:
        ws_conn_on_readable(w, c);
        break;
    case CONN_LINGER:
        conn_drain(w, c);
        break;
    default:
        break;
    }
}

void conn_on_event(struct worker *w, struct conn *c, uint32_t events)
{
    if (events & EPOLLOUT) {
        if (c->tls && c->ext->tls_read_wants_out)
            events |= EPOLLIN; /* the handshake can write now: read on */
        conn_flush(w, c);
        if (c->phase == CONN_DEAD)
            return;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    /* Edge-triggered: read until a read comes back short, then the next bytes bring the
       next event. After CONN_READS_PER_EVENT full buffers other connections get their
       turn and this one is re-armed. */
    for (int i = 0;; i++) {
        conn_read(w, c);
        if (!w->read_more || c->phase == CONN_DEAD || c->paused)
            return;
        if (i + 1 == CONN_READS_PER_EVENT) {
            worker_update_events(w, c);
            return;
        }
    }
}

void conn_tick(struct worker *w, struct conn *c, int64_t now_ms)
{
    if (c->deadline_ms && now_ms >= c->deadline_ms) {
        switch (c->phase) {
        case CONN_HTTP:
            log_msg(LOG_DEBUG, "fd=%d request head timeout", c->fd);
            http_conn_fail(w, c, 408, "request head not received in time");
            return;
        case CONN_CLOSING:
        case CONN_LINGER:
        default:
            conn_kill(w, c);
            return;
        case CONN_WS:
            break;
        }
    }
    if (c->phase == CONN_WS) {
        ws_conn_tick(w, c, now_ms);
        if (c->app && c->phase == CONN_WS)
            app_tick(w, c, now_ms);
    }
}
