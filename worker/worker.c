/* worker.c - the worker's epoll loop: accept, dispatch, timers, signals, draining. */
#include "worker/worker.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/wsd.h"
#include "worker/app.h"
#include "worker/conn.h"
#include "worker/table.h"
#include "shm/seg.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define WORKER_MAX_EVENTS 256
#define WORKER_TICK_MS 100
#define WORKER_ACCEPT_BATCH 16
#define WORKER_ACCEPT_PAUSE_MS 10

void worker_update_events(struct worker *w, struct conn *c)
{
    if (c->phase == CONN_DEAD)
        return;
    struct epoll_event ev = {.data.ptr = c};
    if (!c->paused)
        ev.events |= EPOLLIN | EPOLLRDHUP;
    if (c->want_out)
        ev.events |= EPOLLOUT;
    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev) == -1)
        log_msg(LOG_ERR, "epoll_ctl(MOD, fd=%d) failed: %s", c->fd, strerror(errno));
}

/*
 * True when this worker holds clearly more connections than the least loaded running
 * worker. A woken EPOLLEXCLUSIVE waiter is usually the same idle worker, so without this
 * one worker would take a whole burst of connections.
 */
static bool worker_is_overloaded(struct worker *w)
{
    uint32_t mine = w->num_conns, least = UINT32_MAX;
    for (uint32_t i = 0; i < SHM_SEG_WORKERS; i++) {
        struct shm_seg_worker *sw = shm_seg_worker(w->seg, i);
        if ((int)i == w->id ||
            atomic_load_explicit(&sw->state, memory_order_relaxed) != SHM_SEG_WORKER_RUNNING)
            continue;
        least = WSD_MIN(least, atomic_load_explicit(&sw->connections, memory_order_relaxed));
    }
    return least != UINT32_MAX && mine > least + WSD_MAX(8u, least / 8);
}

/* Stops or resumes watching the listeners (load balancing between workers). */
static void worker_set_accepting(struct worker *w, bool on)
{
    if (w->accepting == on)
        return;
    w->accepting = on;
    for (size_t i = 0; i < w->num_listen; i++) {
        struct worker_listener *l = &w->listeners[i];
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = l};
        if (epoll_ctl(w->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, l->fd, &ev) == -1)
            log_msg(LOG_ERR, "epoll_ctl(%s, listener fd=%d) failed: %s", on ? "ADD" : "DEL",
                    l->fd, strerror(errno));
    }
    if (!on)
        w->accept_resume_ms = w->now_ms + WORKER_ACCEPT_PAUSE_MS;
}

static void worker_accept(struct worker *w, struct worker_listener *l)
{
    for (int i = 0; i < WORKER_ACCEPT_BATCH; i++) {
        if (worker_is_overloaded(w)) {
            worker_set_accepting(w, false);
            return;
        }
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        int fd = accept4(l->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_msg(LOG_WARN, "accept4(fd=%d) failed: %s", l->fd, strerror(errno));
            return;
        }
        if (w->cfg->num_ip_allow &&
            !config_cidr_match(w->cfg->ip_allow, w->cfg->num_ip_allow,
                               (struct sockaddr *)&peer)) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = conn_new(w, fd, &peer);
        if (c == NULL) {
            close(fd);
            continue;
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
            log_msg(LOG_ERR, "epoll_ctl(ADD, fd=%d) failed: %s", fd, strerror(errno));
            conn_kill(w, c);
        }
    }
}

static void worker_free_dead(struct worker *w)
{
    while (w->dead) {
        struct conn *c = w->dead;
        w->dead = c->next_dead;
        conn_free(w, c);
    }
}

/* TERM: stop accepting upgrades, close every WebSocket with 1001, leave when all gone. */
static void worker_start_drain(struct worker *w)
{
    if (w->draining)
        return;
    w->draining = true;
    w->drain_deadline_ms = w->now_ms + (int64_t)w->cfg->shutdown_timeout * 1000;
    log_msg(LOG_INFO, "draining %u connections", w->num_conns);
    for (struct conn *c = w->conns; c; c = c->next) {
        if (c->phase == CONN_WS)
            conn_ws_close(w, c, WS_CLOSE_GOING_AWAY, "server shutting down");
    }
}

static void worker_on_signal(struct worker *w)
{
    struct signalfd_siginfo si;
    while (read(w->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            worker_start_drain(w);
            break;
        case SIGQUIT:
            w->stop = true;
            break;
        default:
            break;
        }
    }
}

static void worker_tick(struct worker *w)
{
    struct conn *next;
    for (struct conn *c = w->conns; c; c = next) {
        next = c->next;
        conn_tick(w, c, w->now_ms);
    }
    table_worker_tick(w);
    if (w->draining && (w->num_conns == 0 || w->now_ms >= w->drain_deadline_ms))
        w->stop = true;
}

static void worker_dispatch(struct worker *w, struct epoll_event *ev)
{
    uint8_t kind = *(uint8_t *)ev->data.ptr;
    switch (kind) {
    case EV_LISTENER:
        if (w->accepting)
            worker_accept(w, ev->data.ptr);
        break;
    case EV_SIGNAL:
        worker_on_signal(w);
        break;
    case EV_RING:
        app_on_ring(w);
        break;
    case EV_CONN: {
        struct conn *c = ev->data.ptr;
        if (c->phase != CONN_DEAD)
            conn_on_event(w, c, ev->events);
        break;
    }
    default:
        break;
    }
}

static int worker_loop(struct worker *w)
{
    struct epoll_event events[WORKER_MAX_EVENTS];
    int64_t next_tick = w->now_ms + WORKER_TICK_MS;
    while (!w->stop) {
        int64_t wake = w->accepting ? next_tick : WSD_MIN(next_tick, w->accept_resume_ms);
        int timeout = (int)WSD_MAX(0, wake - w->now_ms);
        int n = epoll_wait(w->epfd, events, WORKER_MAX_EVENTS, timeout);
        if (n == -1 && errno != EINTR) {
            log_msg(LOG_CRIT, "epoll_wait failed: %s", strerror(errno));
            return 1;
        }
        w->now_ms = clock_mono_ms();
        for (int i = 0; i < n; i++)
            worker_dispatch(w, &events[i]);
        app_flush(w);
        worker_free_dead(w);
        if (!w->accepting && w->now_ms >= w->accept_resume_ms)
            worker_set_accepting(w, true);
        if (w->now_ms >= next_tick) {
            worker_tick(w);
            worker_free_dead(w);
            next_tick = w->now_ms + WORKER_TICK_MS;
        }
    }
    return 0;
}

static int worker_setup_fds(struct worker *w, const struct worker_init *init)
{
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd == -1) {
        log_msg(LOG_CRIT, "epoll_create1 failed: %s", strerror(errno));
        return WSD_EIO;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    w->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    w->sig_kind = EV_SIGNAL;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->sig_kind};
    if (w->sigfd == -1 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->sigfd, &ev) == -1) {
        log_msg(LOG_CRIT, "signalfd setup failed: %s", strerror(errno));
        return WSD_EIO;
    }
    for (size_t i = 0; i < init->num_listen; i++) {
        struct worker_listener *l = &w->listeners[i];
        l->kind = EV_LISTENER;
        l->fd = init->listen_fds[i];
        l->tls = init->listen_tls[i];
        struct epoll_event lev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = l};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, l->fd, &lev) == -1) {
            log_msg(LOG_CRIT, "epoll_ctl(ADD, listener fd=%d) failed: %s", l->fd,
                    strerror(errno));
            return WSD_EIO;
        }
    }
    w->num_listen = init->num_listen;
    w->accepting = true;
    return 0;
}

static void worker_setup_options(struct worker *w)
{
    const struct config *cfg = w->cfg;
    w->pmd = (struct pmd_config){
        .enabled = cfg->compression,
        .level = cfg->compression_level,
        .min_size = cfg->compression_min_size,
        .max_window_bits = cfg->compression_window_bits,
        .server_no_context_takeover = cfg->compression_server_no_context_takeover,
        .client_no_context_takeover = cfg->compression_client_no_context_takeover,
        .mem_level = cfg->compression_mem_level,
    };
    w->subprotocols[0] = "wsd.v1.json";
    w->subprotocols[1] = "wsd.v1.msgpack";
    w->hs = (struct hs_options){
        .allowed_origins = (const char *const *)cfg->allowed_origins,
        .num_allowed_origins = cfg->num_allowed_origins,
        .subprotocols = w->subprotocols,
        .num_subprotocols = 2,
        .deflate = &w->pmd,
    };
}

int worker_run(const struct worker_init *init)
{
    static struct worker wk;
    struct worker *w = &wk;
    char role[16];
    snprintf(role, sizeof(role), "worker%d", init->id);
    log_set_role(role);
    w->id = init->id;
    w->cfg = init->cfg;
    w->seg = init->seg;
    w->client_js = init->client_js;
    w->client_js_len = init->client_js_len;
    w->now_ms = clock_mono_ms();
    buf_init(&w->scratch);
    w->rbuf = malloc(WORKER_RBUF_LEN);
    if (w->rbuf == NULL || worker_setup_fds(w, init) < 0)
        return 1;
    worker_setup_options(w);
    if (table_worker_start(w) < 0 || app_init(w, init->ring_efds) < 0)
        return 1;
    log_msg(LOG_INFO, "worker started");
    int rc = worker_loop(w);
    /* Whatever is still open after draining (or on QUIT) is dropped. */
    while (w->conns)
        conn_kill(w, w->conns);
    worker_free_dead(w);
    app_fini(w);
    table_worker_stop(w);
    free(w->rbuf);
    buf_fini(&w->scratch);
    log_msg(LOG_INFO, "worker exiting");
    return rc;
}
