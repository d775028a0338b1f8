/* ws_conn.c - frames in, messages out, control frames and the close handshake. */
#include "worker/ws_conn.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/wsd.h"
#include "proto/handshake.h"
#include "worker/app.h"
#include "worker/conn.h"
#include "worker/heartbeat.h"
#include "worker/table.h"
#include "worker/worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

void ws_conn_start(struct worker *w, struct conn *c, const struct hs_result *res,
                   const struct http_request *req)
{
    const struct config *cfg = w->cfg;
    c->phase = CONN_WS;
    c->deadline_ms = 0;
    if (res->deflate) {
        c->pmd = malloc(sizeof(*c->pmd));
        if (c->pmd == NULL) {
            ws_conn_fail(w, c, WS_CLOSE_INTERNAL, "out of memory");
            return;
        }
        pmd_stream_init(c->pmd, &res->pmd, cfg->compression_level, cfg->compression_mem_level);
    }
    heartbeat_start(w, c);
    table_conn_state(w, c, TABLE_STATE_CONNECTED);
    if (c->route == CONN_ROUTE_APP)
        app_on_open(w, c, req);
}

void ws_conn_fail(struct worker *w, struct conn *c, uint16_t code, const char *why)
{
    log_msg(LOG_DEBUG, "conn=%llx failed with %u: %s", (unsigned long long)c->id, code, why);
    conn_ws_close(w, c, code, why);
    conn_linger(w, c);
}

/* A whole message arrived: hand it to the route. */
static void ws_conn_message(struct worker *w, struct conn *c, uint8_t opcode,
                            const uint8_t *p, size_t len)
{
    table_conn_count_msg_in(w, c);
    if (c->route == CONN_ROUTE_ECHO)
        conn_send_frame(w, c, opcode, p, len);
    else
        app_on_message(w, c, opcode, p, len);
}

/* Releases the message buffer: an idle connection keeps none. */
static void ws_conn_msg_done(struct conn *c)
{
    buf_fini(&c->ext->msg);
}

static void ws_conn_inflate(struct worker *w, struct conn *c, struct conn_ext *x,
                            const struct ws_event *ev)
{
    size_t before = x->msg.len;
    if (ev->first)
        utf8_init(&x->msg_utf8);
    int rc = pmd_inflate(c->pmd, ev->data, ev->len, ev->fin, &x->msg,
                         w->cfg->max_message_size);
    if (rc == WSD_ETOOBIG) {
        ws_conn_fail(w, c, WS_CLOSE_TOO_BIG, "inflated message too big");
        return;
    }
    if (rc == WSD_ENOMEM) {
        ws_conn_fail(w, c, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    if (rc < 0) {
        ws_conn_fail(w, c, WS_CLOSE_INVALID_DATA, "corrupt compressed data");
        return;
    }
    if (ev->opcode != WS_OP_TEXT)
        return;
    if (utf8_feed(&x->msg_utf8, x->msg.data + before, x->msg.len - before) < 0 ||
        (ev->fin && !utf8_is_complete(&x->msg_utf8)))
        ws_conn_fail(w, c, WS_CLOSE_INVALID_DATA, "invalid utf-8 in text message");
}

static void ws_conn_data(struct worker *w, struct conn *c, const struct ws_event *ev)
{
    if (c->close_sent)
        return; /* data after our close frame is discarded */
    if (!ev->compressed && ev->first && ev->fin) {
        ws_conn_message(w, c, ev->opcode, ev->data, ev->len);
        return;
    }
    struct conn_ext *x = conn_ext(c);
    if (x == NULL) {
        ws_conn_fail(w, c, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    if (ev->compressed) {
        ws_conn_inflate(w, c, x, ev);
    } else if (buf_append(&x->msg, ev->data, ev->len) < 0) {
        ws_conn_fail(w, c, WS_CLOSE_INTERNAL, "out of memory");
    }
    if (c->phase != CONN_WS || !ev->fin)
        return;
    ws_conn_message(w, c, ev->opcode, x->msg.data ? x->msg.data : (const uint8_t *)"",
                    x->msg.len);
    ws_conn_msg_done(c);
}

static void ws_conn_control(struct worker *w, struct conn *c, const struct ws_event *ev)
{
    switch (ev->opcode) {
    case WS_OP_PING:
        if (!c->close_sent)
            conn_send_frame(w, c, WS_OP_PONG, ev->data, ev->len);
        break;
    case WS_OP_PONG:
        heartbeat_on_pong(w, c, ev->data, ev->len);
        break;
    case WS_OP_CLOSE:
        c->close_received = true;
        if (!c->close_sent) {
            uint16_t code = ev->close_code == WS_CLOSE_NO_STATUS ? 0 : ev->close_code;
            conn_ws_close(w, c, code, NULL);
        }
        /* The server closes TCP first once the close frames crossed (RFC 6455 7.1.1). */
        if (c->phase != CONN_DEAD && outq_is_empty(&c->out))
            conn_linger(w, c);
        break;
    default:
        break;
    }
}

/* Runs the frame reader r over p[0..len) and acts on each event. */
static void ws_conn_frames(struct worker *w, struct conn *c, struct ws_reader *r, uint8_t *p,
                           size_t len)
{
    size_t off = 0;
    while (off < len && (c->phase == CONN_WS || c->phase == CONN_CLOSING)) {
        struct ws_event ev;
        off += ws_reader_feed(r, p + off, len - off, &ev);
        switch (ev.type) {
        case WS_EV_DATA:
            ws_conn_data(w, c, &ev);
            break;
        case WS_EV_CONTROL:
            ws_conn_control(w, c, &ev);
            break;
        case WS_EV_ERROR:
            ws_conn_fail(w, c, ev.close_code, ev.error);
            return;
        default:
            break;
        }
        if (c->close_received)
            return;
    }
}

/*
 * Frames p[0..len) with the connection's own reader when a previous read stopped inside
 * a frame, else with the worker's shared one; a shared reader left inside a frame is
 * copied into the connection's conn_ext and the shared one re-armed.
 */
static void ws_conn_read_frames(struct worker *w, struct conn *c, uint8_t *p, size_t len)
{
    bool alive;
    if (c->ext && c->ext->rd_live) {
        ws_conn_frames(w, c, &c->ext->rd, p, len);
        alive = c->phase == CONN_WS || c->phase == CONN_CLOSING;
        if (alive && ws_reader_is_idle(&c->ext->rd))
            c->ext->rd_live = false;
        return;
    }
    struct ws_reader *r = &w->rd;
    r->allow_rsv1 = c->pmd != NULL;
    ws_conn_frames(w, c, r, p, len);
    if (ws_reader_is_idle(r))
        return;
    alive = c->phase == CONN_WS || c->phase == CONN_CLOSING;
    struct conn_ext *x = alive ? conn_ext(c) : NULL;
    if (x != NULL) {
        x->rd = *r;
        x->rd_live = true;
    } else if (alive) {
        ws_conn_fail(w, c, WS_CLOSE_INTERNAL, "out of memory");
    }
    worker_reset_reader(w);
}

void ws_conn_feed(struct worker *w, struct conn *c, uint8_t *p, size_t len)
{
    conn_cork(w, c); /* the replies to this read leave together */
    ws_conn_read_frames(w, c, p, len);
    conn_uncork(w);
    conn_ext_trim(c);
    if (c->phase == CONN_WS && !c->paused && c->out.bytes > w->cfg->output_queue_limit) {
        /* Replies wait to be read: stop reading until they are. */
        c->paused = true;
        worker_update_events(w, c);
    }
}

void ws_conn_on_readable(struct worker *w, struct conn *c)
{
    table_conn_prefetch(w, c);
    ssize_t n = conn_recv(w, c, w->rbuf, WORKER_RBUF_LEN);
    if (n == 0) {
        log_msg(LOG_DEBUG, "conn=%llx peer closed without a close frame",
                (unsigned long long)c->id);
        conn_kill(w, c);
        return;
    }
    if (n == -1) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            conn_kill(w, c);
        return;
    }
    table_conn_count_in(w, c, (uint64_t)n);
    heartbeat_on_sign_of_life(w, c);
    ws_conn_feed(w, c, w->rbuf, (size_t)n);
}

void ws_conn_tick(struct worker *w, struct conn *c, int64_t now_ms)
{
    heartbeat_tick(w, c, now_ms);
}
