/* worker.c - the worker's epoll loop: accept, dispatch, timers, signals, draining. */
#include "worker/worker.h"
#include "core/audit.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/wsd.h"
#include "shm/seg.h"
#include "worker/app.h"
#include "worker/conn.h"
#include "worker/heartbeat.h"
#include "worker/table.h"
#include "worker/tls.h"

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
/* Connections looked at per tick: up to this many every connection is checked every tick;
   beyond it each tick goes on where the last stopped, so a sweep over 100,000 connections
   takes 2.5 s and an idle worker's ticks stay cheap (timeouts are whole seconds). */
#define WORKER_TICK_CONNS 4096
#define WORKER_ACCEPT_BATCH 16
#define WORKER_ACCEPT_PAUSE_MS 10

void worker_reset_reader(struct worker *w)
{
    ws_reader_init(&w->rd, w->cfg->max_message_size, false, true);
}

/*
 * Connections are edge-triggered: an event comes when bytes arrive or space frees up, so
 * a connection that has been read (or written) to the end is not polled again until
 * something happens. A reader that stops before the end - paused, budget spent, buffer
 * filled - re-arms with this function: EPOLL_CTL_MOD checks readiness at once.
 */
void worker_update_events(struct worker *w, struct conn *c)
{
    if (c->phase == CONN_DEAD)
        return;
    struct epoll_event ev = {.events = EPOLLET, .data.ptr = c};
    if (!c->paused)
        ev.events |= EPOLLIN | EPOLLRDHUP;
    if (c->want_out || (c->tls && c->ext->tls_read_wants_out))
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
        if (l->tls && w->tls_ctx == NULL) { /* the certificate did not load: logged */
            close(fd);
            continue;
        }
        struct conn *c = conn_new(w, fd, &peer, l->tls ? w->tls_ctx : NULL);
        if (c == NULL) {
            close(fd);
            continue;
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = c};
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

/* Closes every WebSocket with 1001; the loop leaves once all are gone or at the deadline. */
static void worker_start_drain(struct worker *w, const char *why)
{
    if (w->draining)
        return;
    w->draining = true;
    w->drain_deadline_ms = w->now_ms + (int64_t)w->cfg->shutdown_timeout * 1000;
    log_msg(LOG_INFO, "%s: closing %u connections", why, w->num_conns);
    for (struct conn *c = w->conns; c; c = c->next) {
        if (c->phase == CONN_WS)
            conn_ws_close(w, c, WS_CLOSE_GOING_AWAY, why);
    }
}

/* The master retires this slot: accept nothing more, then drain like a shutdown. */
static void worker_retire(struct worker *w)
{
    if (w->draining)
        return;
    w->retiring = true;
    worker_set_accepting(w, false);
    for (size_t i = 0; i < w->num_listen; i++)
        close(w->listeners[i].fd);
    w->num_listen = 0;
    worker_start_drain(w, "worker retiring");
}

static void worker_open_audit(const struct config *cfg)
{
    if (audit_open(cfg->audit_log) < 0)
        log_msg(LOG_ERR, "cannot open audit log %s: %s", cfg->audit_log, strerror(errno));
}

static void worker_reopen_log(struct worker *w)
{
    if (log_open(w->cfg->log_file) < 0)
        log_msg(LOG_ERR, "cannot reopen log file %s: %s", w->cfg->log_file, strerror(errno));
    else
        log_msg(LOG_INFO, "log file reopened");
    worker_open_audit(w->cfg);
}

static void worker_on_signal(struct worker *w)
{
    struct signalfd_siginfo si;
    while (read(w->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            /* The master publishes DRAINING before it passes a shutdown on; a TERM
               while the instance runs retires this worker alone. */
            if (shm_seg_state(w->seg) >= SHM_SEG_DRAINING)
                worker_start_drain(w, "server shutting down");
            else
                worker_retire(w);
            break;
        case SIGQUIT:
            w->stop = true;
            break;
        case SIGHUP:
            w->reload_pending = true;
            break;
        case SIGUSR1:
            worker_reopen_log(w);
            break;
        default:
            break;
        }
    }
}

static void worker_tick(struct worker *w)
{
    tls_ticket_advance();
    /* An overloaded sibling woken for a new connection leaves it queued, and EPOLLEXCLUSIVE
       does not wake another waiter for it: so the less loaded workers also look at the
       listeners every tick (one accept4() returning EAGAIN when nothing waits). */
    for (size_t i = 0; w->accepting && i < w->num_listen; i++)
        worker_accept(w, &w->listeners[i]);
    struct conn *c = w->tick_next ? w->tick_next : w->conns;
    for (uint32_t n = 0; c && n < WORKER_TICK_CONNS; n++) {
        struct conn *next = c->next;
        conn_tick(w, c, w->now_ms);
        c = next;
    }
    /* A connection this tick ended is not freed yet; its link leads back into the list. */
    while (c && c->phase == CONN_DEAD)
        c = c->next;
    w->tick_next = c; /* NULL: the next tick starts a new sweep */
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

/* When the loop must wake next: at once when work is ready, else the tick, or resuming
 * accepts after a pause. */
static int worker_wait_ms(const struct worker *w, int64_t next_tick)
{
    if (w->again)
        return 0;
    int64_t wake = next_tick;
    if (!w->accepting && !w->retiring)
        wake = WSD_MIN(wake, w->accept_resume_ms);
    return (int)WSD_MAX(0, wake - w->now_ms);
}

static void worker_reload(struct worker *w);

static int worker_loop(struct worker *w)
{
    struct epoll_event events[WORKER_MAX_EVENTS];
    int64_t next_tick = w->now_ms + WORKER_TICK_MS;
    while (!w->stop) {
        int n = epoll_wait(w->epfd, events, WORKER_MAX_EVENTS, worker_wait_ms(w, next_tick));
        if (n == -1 && errno != EINTR) {
            log_msg(LOG_CRIT, "epoll_wait failed: %s", strerror(errno));
            return 1;
        }
        w->now_ms = clock_mono_ms();
        w->again = false;
        for (int i = 0; i < n; i++) {
            /* The next object's first line loads while this event's system calls run. */
            if (i + 1 < n)
                __builtin_prefetch(events[i + 1].data.ptr, 1);
            worker_dispatch(w, &events[i]);
        }
        app_flush(w);
        conn_flush_dirty(w);
        worker_free_dead(w);
        if (!w->accepting && !w->retiring && w->now_ms >= w->accept_resume_ms)
            worker_set_accepting(w, true);
        if (w->now_ms >= next_tick) {
            worker_tick(w);
            worker_free_dead(w);
            next_tick = w->now_ms + WORKER_TICK_MS;
        }
        audit_flush();
        /* Between iterations nothing holds a pointer into the configuration. */
        if (w->reload_pending)
            worker_reload(w);
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
    /* Between reads the shared reader is always at a frame boundary: re-arming it with
       the new limit loses nothing. */
    worker_reset_reader(w);
}

/* ---- reload ---- */

int worker_read_file(const char *path, char **out, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return errno == ENOENT ? WSD_ENOENT : WSD_EIO;
    struct buf b;
    buf_init(&b);
    char chunk[8192];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = buf_append(&b, chunk, n);
    if (rc == 0 && ferror(f))
        rc = WSD_EIO;
    fclose(f);
    if (rc == 0)
        rc = buf_append(&b, "", 1);
    if (rc < 0) {
        buf_fini(&b);
        return rc;
    }
    *out = (char *)b.data;
    *out_len = b.len - 1;
    return 0;
}

static bool worker_str_same(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Appends `key "value"` and a newline to b, quoting value for config_parse(). */
static int worker_append_kv(struct buf *b, const char *key, const char *value)
{
    int rc = buf_append(b, key, strlen(key));
    if (rc == 0)
        rc = buf_append(b, " \"", 2);
    for (const char *p = value ? value : ""; rc == 0 && *p; p++) {
        if (*p == '"' || *p == '\\')
            rc = buf_append(b, "\\", 1);
        if (rc == 0)
            rc = buf_append(b, p, 1);
    }
    return rc == 0 ? buf_append(b, "\"\n", 2) : rc;
}

/* Gives fresh running's values of the keys a reload cannot apply, through the parser
 * (config.h: fields change only through it). Returns 0 or a negative code with err. */
static int worker_keep_restart_keys(struct config *fresh, const struct config *running,
                                    char err[CONFIG_ERR_LEN])
{
    char nums[96];
    snprintf(nums, sizeof(nums), "max_connections %u\nmax_groups %u\n",
             running->max_connections, running->max_groups);
    struct buf b;
    buf_init(&b);
    int rc = buf_append(&b, nums, strlen(nums));
    if (rc == 0)
        rc = worker_append_kv(&b, "store", running->store);
    if (rc == 0)
        rc = worker_append_kv(&b, "store_sync", running->store_sync);
    if (rc == 0)
        rc = worker_append_kv(&b, "pid_file", running->pid_file);
    if (rc == 0)
        rc = worker_append_kv(&b, "control_socket", running->control_socket);
    if (rc == 0)
        rc = buf_append(&b, "", 1);
    if (rc == 0)
        rc = config_parse(fresh, "(running values)", (const char *)b.data, err);
    else
        snprintf(err, CONFIG_ERR_LEN, "out of memory");
    buf_fini(&b);
    return rc;
}

/* Names of the keys a reload cannot apply that fresh changes. */
static void worker_restart_keys(const struct config *running, const struct config *fresh,
                                char *out, size_t cap)
{
    if (cap == 0)
        return;
    config_restart_keys(running, fresh, out, cap);
    size_t used = strlen(out);
    static const char name[] = "control_socket";
    if (!worker_str_same(running->control_socket, fresh->control_socket) &&
        used + sizeof(name) + 1 <= cap)
        snprintf(out + used, cap - used, "%s%s", used ? " " : "", name);
}

struct config *worker_config_reload(const char *path, const struct config *running,
                                    char *restart, size_t restart_cap,
                                    char err[CONFIG_ERR_LEN])
{
    struct config *c = malloc(sizeof(*c));
    if (c == NULL) {
        snprintf(err, CONFIG_ERR_LEN, "%s: out of memory", path ? path : "(defaults)");
        return NULL;
    }
    config_init(c);
    int rc = path ? config_load(c, path, err)
                  : config_parse(c, "(defaults)", config_default_text, err);
    if (rc == 0)
        rc = config_validate(c, err);
    if (rc == 0)
        rc = tls_config_check(c, err, CONFIG_ERR_LEN);
    if (rc == 0 && restart != NULL)
        worker_restart_keys(running, c, restart, restart_cap);
    if (rc == 0)
        rc = worker_keep_restart_keys(c, running, err);
    if (rc < 0) {
        config_fini(c);
        free(c);
        return NULL;
    }
    return c;
}

/* Serves the client library as it is now on disk (absent: not served). */
static void worker_reload_client(struct worker *w)
{
    char *js = NULL;
    size_t len = 0;
    const char *path = w->cfg->client_file;
    if (path != NULL && path[0] != '\0' && worker_read_file(path, &js, &len) < 0) {
        js = NULL;
        len = 0;
    }
    free(w->client_js_owned);
    w->client_js_owned = js;
    w->client_js = js;
    w->client_js_len = len;
}

/* Loads the certificate and key cfg names for the handshakes to come; on failure the
 * ones loaded before stay. */
static void worker_load_tls(struct worker *w)
{
    if (w->cfg->tls_cert == NULL || w->cfg->tls_cert[0] == '\0') {
        tls_ctx_free(w->tls_ctx);
        w->tls_ctx = NULL;
        return;
    }
    char err[CONFIG_ERR_LEN];
    struct ssl_ctx_st *ctx = tls_ctx_new(w->cfg, err, sizeof(err));
    if (ctx == NULL) {
        log_msg(LOG_ERR, "%s: %s", w->tls_ctx ? "keeping the certificate loaded before"
                                              : "TLS connections refused", err);
        return;
    }
    tls_ctx_free(w->tls_ctx); /* open sessions hold their own reference */
    w->tls_ctx = ctx;
}

static void worker_apply_logging(const struct config *old, const struct config *fresh)
{
    enum log_level level = LOG_INFO;
    log_level_parse(fresh->log_level, &level);
    log_set_level(level);
    if (!worker_str_same(old->log_file, fresh->log_file) && log_open(fresh->log_file) < 0)
        log_msg(LOG_ERR, "cannot open log file %s: %s", fresh->log_file, strerror(errno));
}

/*
 * HUP: loads the file again and swaps the configuration. What points into the old one
 * (handshake options, the deflate settings, the shared frame reader's message limit) is
 * rebuilt before it is freed; connections keep copies of what they use (the limit of a
 * reader stopped inside a frame, their deflate streams).
 */
static void worker_reload(struct worker *w)
{
    w->reload_pending = false;
    if (w->draining)
        return;
    char err[CONFIG_ERR_LEN];
    struct config *fresh = worker_config_reload(w->cfg_path, w->cfg, NULL, 0, err);
    if (fresh == NULL) {
        log_msg(LOG_ERR, "reload refused, keeping the running configuration: %s", err);
        return;
    }
    const struct config *old = w->cfg;
    bool ping_sooner = fresh->heartbeat < old->heartbeat;
    worker_apply_logging(old, fresh);
    worker_open_audit(fresh); /* a new path, or the same one again (rotation) */
    w->cfg = fresh;
    worker_setup_options(w);
    worker_reload_client(w);
    worker_load_tls(w);
    for (struct conn *c = w->conns; ping_sooner && c; c = c->next) {
        if (c->phase == CONN_WS)
            heartbeat_reschedule(w, c);
    }
    if (w->cfg_owned) {
        config_fini(w->cfg_owned);
        free(w->cfg_owned);
    }
    w->cfg_owned = fresh;
    log_msg(LOG_INFO, "configuration reloaded");
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
    w->cfg_path = init->cfg_path;
    w->seg = init->seg;
    w->client_js = init->client_js;
    w->client_js_len = init->client_js_len;
    w->now_ms = clock_mono_ms();
    buf_init(&w->scratch);
    buf_init(&w->cork);
    pool_init(&w->conn_pool, sizeof(struct conn), 256 * 1024);
    w->rbuf = malloc(WORKER_RBUF_LEN);
    if (w->rbuf == NULL || worker_setup_fds(w, init) < 0)
        return 1;
    worker_setup_options(w);
    worker_load_tls(w);
    if (table_worker_start(w) < 0 || app_init(w, init->ring_efds) < 0)
        return 1;
    audit_forked();
    audit_set_buffered(true); /* lines leave at the end of each loop iteration */
    log_msg(LOG_INFO, "worker started");
    int rc = worker_loop(w);
    /* Whatever is still open after draining (or on QUIT) is dropped. */
    while (w->conns)
        conn_kill(w, w->conns);
    worker_free_dead(w);
    app_fini(w);
    table_worker_stop(w);
    audit_flush();
    free(w->rbuf);
    pool_fini(&w->conn_pool);
    tls_ctx_free(w->tls_ctx);
    buf_fini(&w->scratch);
    buf_fini(&w->cork);
    log_msg(LOG_INFO, "worker exiting");
    free(w->client_js_owned);
    if (w->cfg_owned) {
        config_fini(w->cfg_owned);
        free(w->cfg_owned);
    }
    return rc;
}
