/* wsbench_worker.c - the epoll loop, connection life cycle and phases of one worker. */
#include "tools/wsbench_worker.h"

#include "core/wsd.h"
#include "tools/wsbench_conn.h"
#include "tools/wsbench_sys.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#define EV_BATCH 256
#define STREAM_MAX (256u * 1024)
#define JSON_SLACK 1024
#define WAIT_TICK_NS (2 * WSBENCH_MS)
#define RUN_TICK_NS (50 * WSBENCH_MS)
#define GO_WAIT_EXTRA_NS (120 * WSBENCH_NS)
#define HOLD_MAX_NS (60 * WSBENCH_NS)
#define FINAL_CLOSE_NS (3 * WSBENCH_NS)

uint32_t wsbench_worker_share(const struct wsbench_opts *o, uint32_t nworkers, uint32_t w)
{
    uint64_t total = o->conns;
    if (o->mode == WSBENCH_CONNECT)
        total = o->concurrency;
    else if (o->mode == WSBENCH_FANOUT || o->mode == WSBENCH_DIRECT)
        total += o->publishers;
    return (uint32_t)(total / nworkers + (w < total % nworkers ? 1 : 0));
}

/* Sleeps up to timeout_ns for events and dispatches them; refreshes w->now. */
static void loop_once(struct wsbench_w *w, int64_t timeout_ns)
{
    struct epoll_event evs[EV_BATCH];
    if (timeout_ns < 0)
        timeout_ns = 0;
    struct timespec ts = {timeout_ns / WSBENCH_NS, timeout_ns % WSBENCH_NS};
    if (w->ep == -1) {
        nanosleep(&ts, NULL);
        w->now = wsbench_sys_now_ns();
        return;
    }
    int n = epoll_pwait2(w->ep, evs, EV_BATCH, &ts, NULL);
    if (n == -1 && errno == ENOSYS)
        n = epoll_wait(w->ep, evs, EV_BATCH, (int)((timeout_ns + WSBENCH_MS - 1) / WSBENCH_MS));
    w->now = wsbench_sys_now_ns();
    for (int i = 0; i < n; i++)
        wsbench_conn_event(w, evs[i].data.ptr, evs[i].events);
}

/* Starts connections while fewer than the set-up bound are in progress. */
static void start_more(struct wsbench_w *w)
{
    while (w->pending < w->max_pending && w->next_start < w->nconns) {
        struct wsbench_c *c = &w->conns[w->next_start++];
        w->pending++;
        wsbench_conn_open(w, c, c->gidx);
    }
}

/* Connect mode: every free slot begins a new cycle while time and budget last. */
static void connect_cycles(struct wsbench_w *w)
{
    for (uint32_t i = 0; i < w->nconns && !w->budget_out; i++) {
        struct wsbench_c *c = &w->conns[i];
        if (c->state != WSBENCH_CS_IDLE)
            continue;
        if (w->o->conns && atomic_fetch_add(&w->ctl->started, 1) >= w->o->conns) {
            w->budget_out = true;
            break;
        }
        wsbench_conn_open(w, c, w->src_rr++);
    }
}

/* Rate mode: sends every publish that is due; returns the next due time (or end). */
static int64_t pub_schedule(struct wsbench_w *w)
{
    int64_t next = w->end_ns;
    for (uint32_t i = 0; i < w->npubs; i++) {
        struct wsbench_c *c = w->pubs[i];
        if (c->state != WSBENCH_CS_READY)
            continue;
        bool sent = false;
        while (c->next_ns <= w->now && c->outstanding < w->o->inflight && w->now < w->end_ns) {
            wsbench_conn_publish(w, c);
            c->next_ns += w->interval_ns;
            sent = true;
        }
        if (w->now - c->next_ns > WSBENCH_NS) {
            w->res->late += (uint64_t)((w->now - c->next_ns) / w->interval_ns);
            c->next_ns = w->now;
        }
        if (sent)
            wsbench_conn_flush(w, c);
        if (c->outstanding < w->o->inflight && c->next_ns < next)
            next = c->next_ns;
    }
    return next;
}

/* Closes connections stuck closing, and connect-mode cycles stuck opening. */
static void scan_deadlines(struct wsbench_w *w)
{
    if (w->now < w->next_scan)
        return;
    w->next_scan = w->now + 50 * WSBENCH_MS;
    for (uint32_t i = 0; i < w->nconns; i++) {
        struct wsbench_c *c = &w->conns[i];
        if (c->state == WSBENCH_CS_CLOSING && w->now - c->t0 > WSBENCH_CLOSE_WAIT_NS)
            wsbench_conn_finish(w, c, true);
        else if (w->o->mode == WSBENCH_CONNECT && c->state > WSBENCH_CS_IDLE &&
                 c->state < WSBENCH_CS_READY && w->now - c->t0 > WSBENCH_CYCLE_TIMEOUT_NS)
            wsbench_conn_drop(w, c, "handshake timed out");
    }
}

static int32_t phase(const struct wsbench_w *w)
{
    return atomic_load_explicit(&w->ctl->phase, memory_order_acquire);
}

static void phase_setup(struct wsbench_w *w)
{
    if (w->o->mode == WSBENCH_CONNECT)
        return;
    int64_t deadline = w->now + (int64_t)(w->o->setup_timeout_s * WSBENCH_NS);
    while (w->settled < w->nconns && w->now < deadline && phase(w) != WSBENCH_PHASE_ABORT) {
        start_more(w);
        loop_once(w, WAIT_TICK_NS);
    }
    for (uint32_t i = 0; i < w->nconns; i++) {
        struct wsbench_c *c = &w->conns[i];
        if (c->settled)
            continue;
        if (c->state == WSBENCH_CS_IDLE)
            w->pending++; /* never started: account it like one that was */
        wsbench_conn_drop(w, c, "set-up timed out (state %d)", c->state);
    }
}

static void phase_wait_go(struct wsbench_w *w)
{
    int64_t deadline = w->now + (int64_t)(w->o->setup_timeout_s * WSBENCH_NS) + GO_WAIT_EXTRA_NS;
    while (phase(w) == WSBENCH_PHASE_SETUP && w->now < deadline)
        loop_once(w, WAIT_TICK_NS);
}

/* First sends of the run: every echo connection's window, every flat-out publisher's. */
static void kick(struct wsbench_w *w)
{
    for (uint32_t i = 0; i < w->nconns; i++) {
        struct wsbench_c *c = &w->conns[i];
        if (c->state != WSBENCH_CS_READY)
            continue;
        if (w->o->mode == WSBENCH_ECHO) {
            wsbench_conn_echo_queue(w, c, w->o->inflight);
        } else if (c->role == WSBENCH_ROLE_PUB && w->interval_ns == 0) {
            for (uint32_t k = 0; k < w->o->inflight; k++)
                wsbench_conn_publish(w, c);
        } else if (c->role == WSBENCH_ROLE_PUB) {
            c->next_ns = w->now + w->interval_ns * c->pub_idx / WSD_MAX(w->o->publishers, 1);
            continue;
        } else {
            continue;
        }
        wsbench_conn_flush(w, c);
    }
}

static void phase_run(struct wsbench_w *w)
{
    w->start_ns = atomic_load(&w->ctl->start_ns);
    w->end_ns = atomic_load(&w->ctl->end_ns);
    w->running = true;
    w->now = wsbench_sys_now_ns();
    kick(w);
    bool cpu_started = false;
    int64_t cpu0 = 0;
    while (w->now < w->end_ns && phase(w) == WSBENCH_PHASE_GO) {
        if (!cpu_started && w->now >= w->start_ns) {
            cpu0 = wsbench_sys_thread_cpu_ns();
            cpu_started = true;
        }
        int64_t until = WSD_MIN(w->end_ns, w->now + RUN_TICK_NS);
        if (!cpu_started)
            until = WSD_MIN(until, w->start_ns);
        if (w->o->mode == WSBENCH_CONNECT) {
            connect_cycles(w);
            scan_deadlines(w);
            if (w->budget_out && w->live == 0)
                break; /* every handshake asked for is done */
        } else if (w->interval_ns > 0) {
            until = WSD_MIN(until, pub_schedule(w));
        }
        loop_once(w, until - w->now);
    }
    if (cpu_started)
        w->res->cpu_ns = wsbench_sys_thread_cpu_ns() - cpu0;
    w->running = false;
}

static void phase_hold(struct wsbench_w *w)
{
    int64_t deadline = w->now + HOLD_MAX_NS;
    while (phase(w) == WSBENCH_PHASE_GO && w->now < deadline) {
        loop_once(w, WAIT_TICK_NS);
        scan_deadlines(w);
    }
}

static void phase_close(struct wsbench_w *w)
{
    bool abort_now = phase(w) == WSBENCH_PHASE_ABORT;
    w->closing = true;
    for (uint32_t i = 0; i < w->nconns; i++) {
        struct wsbench_c *c = &w->conns[i];
        if (c->fd == -1)
            continue;
        if (abort_now)
            wsbench_conn_finish(w, c, true);
        else
            wsbench_conn_close(w, c);
    }
    int64_t deadline = w->now + FINAL_CLOSE_NS;
    while (w->live > 0 && w->now < deadline) {
        loop_once(w, 10 * WSBENCH_MS);
        w->next_scan = 0;
        scan_deadlines(w);
    }
    for (uint32_t i = 0; i < w->nconns; i++)
        if (w->conns[i].fd != -1)
            wsbench_conn_finish(w, &w->conns[i], true);
}

/* The repeated echo frame, R copies back to back so that n frames go in one send(). */
static int build_stream(struct wsbench_w *w)
{
    const struct wsbench_opts *o = w->o;
    uint8_t *payload = malloc(WSD_MAX(o->size, 1u));
    if (!payload)
        return WSD_ENOMEM;
    for (uint32_t i = 0; i < o->size; i++)
        payload[i] = o->text ? (uint8_t)('a' + i % 26) : (uint8_t)(i * 31 + 7);
    w->flen = o->raw ? o->size : (uint32_t)(o->size + WSBENCH_WS_MAX_HDR);
    size_t copies = WSD_MAX((size_t)1, WSD_MIN((size_t)o->inflight, STREAM_MAX / w->flen));
    w->stream = malloc(copies * w->flen);
    if (!w->stream) {
        free(payload);
        return WSD_ENOMEM;
    }
    if (!o->raw)
        w->flen = (uint32_t)wsbench_ws_encode(w->stream, o->text ? 0x1 : 0x2, payload, o->size,
                                              w->mask);
    else
        memcpy(w->stream, payload, o->size);
    for (size_t k = 1; k < copies; k++)
        memcpy(w->stream + k * w->flen, w->stream, w->flen);
    w->stream_len = copies * w->flen;
    free(payload);
    return 0;
}

static void init_conn(struct wsbench_w *w, struct wsbench_c *c, uint32_t k, int64_t *ring)
{
    const struct wsbench_opts *o = w->o;
    c->fd = -1;
    c->gidx = w->id + k * w->ctl->nworkers;
    c->ring = ring;
    if ((o->mode == WSBENCH_FANOUT || o->mode == WSBENCH_DIRECT) && o->mode != WSBENCH_CONNECT) {
        c->role = c->gidx < o->conns ? WSBENCH_ROLE_SUB : WSBENCH_ROLE_PUB;
        if (c->role == WSBENCH_ROLE_PUB) {
            c->pub_idx = c->gidx - o->conns;
            w->pubs[w->npubs++] = c;
        }
    }
    wsbench_rx_init(&c->rx, o->mode == WSBENCH_FANOUT || o->mode == WSBENCH_DIRECT);
    buf_init(&c->out);
    buf_init(&c->hs);
}

static int init_conns(struct wsbench_w *w)
{
    const struct wsbench_opts *o = w->o;
    w->nconns = wsbench_worker_share(o, w->ctl->nworkers, w->id);
    w->conns = calloc(WSD_MAX(w->nconns, 1u), sizeof(*w->conns));
    w->pubs = calloc(WSD_MAX(w->nconns, 1u), sizeof(*w->pubs));
    if (!w->conns || !w->pubs)
        return WSD_ENOMEM;
    if (o->mode == WSBENCH_ECHO) {
        w->rings = calloc((size_t)WSD_MAX(w->nconns, 1u) * o->inflight, sizeof(int64_t));
        if (!w->rings)
            return WSD_ENOMEM;
    }
    for (uint32_t k = 0; k < w->nconns; k++)
        init_conn(w, &w->conns[k], k, w->rings ? w->rings + (size_t)k * o->inflight : NULL);
    return 0;
}

static int worker_init(struct wsbench_w *w, const struct wsbench_opts *o, struct wsbench_ctl *ctl,
                       uint32_t id)
{
    memset(w, 0, sizeof(*w));
    w->ep = -1;
    w->o = o;
    w->ctl = ctl;
    w->id = id;
    w->res = &ctl->res[id];
    w->now = wsbench_sys_now_ns();
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    if (w->ep == -1)
        return WSD_EIO;
    if (o->url.tls) { /* a load generator: any certificate is taken */
        w->tls = SSL_CTX_new(TLS_client_method());
        if (w->tls == NULL)
            return WSD_ENOMEM;
        SSL_CTX_set_verify(w->tls, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_mode(w->tls, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    }
    if (o->ncpus > 0)
        wsbench_sys_pin(o->cpus[id % o->ncpus]);
    if (getrandom(w->mask, sizeof(w->mask), 0) != (ssize_t)sizeof(w->mask))
        memcpy(w->mask, &w->now, sizeof(w->mask));
    wsbench_ws_make_key(w->key);
    wsbench_ws_accept(w->key, w->accept);
    w->max_pending = WSD_MAX(1u, o->concurrency / ctl->nworkers);
    w->src_rr = id;
    if (o->rate > 0)
        w->interval_ns = (int64_t)((double)WSD_MAX(o->publishers, 1u) * WSBENCH_NS / o->rate);
    w->jcap = o->size + JSON_SLACK;
    w->rbuf = malloc(WSBENCH_RBUF_LEN);
    w->jbuf = malloc(w->jcap);
    w->pad = malloc(o->size + 1u);
    if (!w->rbuf || !w->jbuf || !w->pad)
        return WSD_ENOMEM;
    memset(w->pad, 'x', o->size);
    w->pad[o->size] = '\0';
    if (o->mode == WSBENCH_ECHO && build_stream(w) != 0)
        return WSD_ENOMEM;
    return init_conns(w);
}

static void worker_fini(struct wsbench_w *w)
{
    for (uint32_t i = 0; w->conns && i < w->nconns; i++) {
        wsbench_rx_fini(&w->conns[i].rx);
        buf_fini(&w->conns[i].out);
        buf_fini(&w->conns[i].hs);
        SSL_free(w->conns[i].ssl);
    }
    if (w->ep != -1)
        close(w->ep);
    SSL_CTX_free(w->tls);
    free(w->conns);
    free(w->pubs);
    free(w->rings);
    free(w->rbuf);
    free(w->jbuf);
    free(w->pad);
    free(w->stream);
}

void wsbench_worker_run(const struct wsbench_opts *o, struct wsbench_ctl *ctl, uint32_t id)
{
    struct wsbench_w w;
    if (worker_init(&w, o, ctl, id) != 0) {
        wsbench_conn_error(&w, "worker set-up failed: %s", strerror(errno));
        w.nconns = 0;
    }
    phase_setup(&w);
    atomic_fetch_add(&ctl->ready, 1);
    phase_wait_go(&w);
    if (phase(&w) == WSBENCH_PHASE_GO)
        phase_run(&w);
    atomic_fetch_add(&ctl->done, 1);
    phase_hold(&w);
    phase_close(&w);
    worker_fini(&w);
}
