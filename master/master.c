/* master.c - start-up, the worker supervisor and the master's signal loop. */
#include "master/master.h"
#include "core/audit.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/wsd.h"
#include "master/control.h"
#include "master/listen.h"
#include "master/workers.h"
#include "shm/conn_table.h"
#include "worker/heartbeat.h"
#include "worker/tls.h"
#include "worker/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Extra time after shutdown_timeout before stragglers are killed. */
#define MASTER_KILL_GRACE_MS 3000
/* The master's loop wakes at least this often. */
#define MASTER_POLL_MS 200
/* Period of the heartbeat scan of the connection table. */
#define MASTER_SCAN_MS 1000
/* A worker whose loop has not ticked for this long is stalled: its connections are not
   judged (their signs of life may be waiting unread in its sockets). */
#define MASTER_STALL_MS 2000

static int master_write_pid_file(const char *path, char *err, size_t cap)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        snprintf(err, cap, "cannot write pid file %s: %s", path, strerror(errno));
        return WSD_EIO;
    }
    char line[32];
    int n = snprintf(line, sizeof(line), "%d\n", (int)getpid());
    ssize_t w = write(fd, line, (size_t)n);
    close(fd);
    if (w != n) {
        snprintf(err, cap, "cannot write pid file %s", path);
        return WSD_EIO;
    }
    return 0;
}

/* Reads the JavaScript client served at client_path; absence is logged, not fatal. */
static void master_load_client(struct master *m)
{
    const char *path = m->cfg->client_file;
    free(m->client_js);
    m->client_js = NULL;
    m->client_js_len = 0;
    if (path == NULL || path[0] == '\0')
        return;
    int rc = worker_read_file(path, &m->client_js, &m->client_js_len);
    if (rc == WSD_ENOENT)
        log_msg(LOG_NOTICE, "client library %s not found: %s is not served", path,
                m->cfg->client_path);
    else if (rc < 0)
        log_msg(LOG_ERR, "cannot read client library %s: %s: %s is not served", path,
                rc == WSD_EIO ? strerror(errno) : wsd_strerror(rc), m->cfg->client_path);
    if (rc < 0) {
        m->client_js = NULL;
        m->client_js_len = 0;
    }
}

static int master_open_listeners(struct master *m, char *err, size_t cap)
{
    for (size_t i = 0; i < m->cfg->num_listen; i++) {
        int fd = listen_open(&m->cfg->listen[i], m->cfg->backlog, err, cap);
        if (fd < 0)
            return fd;
        m->listen_fds[i] = fd;
        m->listen_tls[i] = m->cfg->listen[i].tls;
        m->num_listen++;
    }
    return 0;
}

static int master_setup_signals(struct master *m, char *err, size_t cap)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    m->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (m->sigfd == -1) {
        snprintf(err, cap, "signalfd failed: %s", strerror(errno));
        return WSD_EIO;
    }
    return 0;
}

static void master_open_audit(struct master *m)
{
    if (audit_open(m->cfg->audit_log) < 0)
        log_msg(LOG_ERR, "cannot open audit log %s: %s", m->cfg->audit_log, strerror(errno));
}

static void master_on_signals(struct master *m)
{
    struct signalfd_siginfo si;
    while (read(m->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGCHLD:
            workers_reap(m);
            break;
        case SIGTERM:
        case SIGINT:
            if (m->stopping == MASTER_RUNNING) {
                log_msg(LOG_NOTICE, "graceful shutdown (signal %u)", si.ssi_signo);
                if (audit_begin("shutdown")) {
                    audit_str("signal", si.ssi_signo == SIGTERM ? "TERM" : "INT");
                    audit_end();
                }
                m->stopping = MASTER_DRAINING;
                m->stop_deadline_ms = clock_mono_ms() +
                                      (int64_t)m->cfg->shutdown_timeout * 1000 +
                                      MASTER_KILL_GRACE_MS;
                shm_seg_set_state(&m->seg, SHM_SEG_DRAINING);
                workers_signal_all(m, SIGTERM);
            }
            break;
        case SIGQUIT:
            log_msg(LOG_NOTICE, "fast shutdown");
            if (audit_begin("shutdown")) {
                audit_str("signal", "QUIT");
                audit_end();
            }
            m->stopping = MASTER_QUITTING;
            m->stop_deadline_ms = clock_mono_ms() + MASTER_KILL_GRACE_MS;
            shm_seg_set_state(&m->seg, SHM_SEG_STOPPING);
            workers_signal_all(m, SIGQUIT);
            break;
        case SIGHUP:
            master_reload(m);
            break;
        case SIGUSR1:
            if (log_open(m->cfg->log_file) < 0)
                log_msg(LOG_ERR, "cannot reopen log file %s: %s", m->cfg->log_file,
                        strerror(errno));
            else
                log_msg(LOG_INFO, "log file reopened");
            master_open_audit(m);
            workers_signal_all(m, SIGUSR1);
            break;
        default:
            break;
        }
    }
}

/* The timeout the scan applies. For a while after a reload shortened it, the old one
 * still holds, so connections pinged on the old rhythm are not judged by the new. */
static int64_t master_heartbeat_limit_ms(const struct master *m, int64_t now_ms)
{
    int64_t limit = heartbeat_timeout_ms(m->cfg);
    if (now_ms < m->hb_grace_until_ms)
        limit = WSD_MAX(limit, m->hb_old_timeout_ms);
    return limit;
}

/* Which workers' connections the scan may judge: running, and not stalled. */
static uint64_t master_live_workers(const struct master *m, int64_t now_ms)
{
    uint64_t mask = 0;
    for (uint32_t i = 0; i < SHM_SEG_WORKERS; i++) {
        struct shm_seg_worker *sw = shm_seg_worker(&m->seg, i);
        if (atomic_load_explicit(&sw->state, memory_order_acquire) ==
                SHM_SEG_WORKER_RUNNING &&
            now_ms - atomic_load_explicit(&sw->loop_mono_ms, memory_order_relaxed) <
                MASTER_STALL_MS)
            mask |= UINT64_C(1) << i;
    }
    return mask;
}

/*
 * Heartbeat supervision: asks the owner of every connected connection silent for longer
 * than the heartbeat timeout to close it with 4000 (worker/heartbeat.h). Two relaxed
 * loads filter each slot; a consistent snapshot confirms before the request.
 */
static void master_scan_heartbeats(struct master *m, int64_t now_ms)
{
    int64_t limit = master_heartbeat_limit_ms(m, now_ms);
    uint64_t live = master_live_workers(m, now_ms);
    uint32_t high = conn_table_high_water(&m->seg), asked = 0;
    for (uint32_t i = 0; i < high; i++) {
        const struct conn_table_slot *s = &m->seg.conns[i];
        if (atomic_load_explicit(&s->state, memory_order_relaxed) != CONN_TABLE_CONNECTED ||
            now_ms - atomic_load_explicit(&s->last_seen_ms, memory_order_relaxed) <= limit)
            continue;
        struct conn_table_info info;
        if (conn_table_snapshot(&m->seg, i, &info) < 0 || info.state != CONN_TABLE_CONNECTED ||
            now_ms - info.last_seen_ms <= limit || info.close_request != 0 ||
            info.owner >= SHM_SEG_WORKERS || !(live & (UINT64_C(1) << info.owner)))
            continue;
        if (conn_table_request_close(&m->seg, info.id, HEARTBEAT_CLOSE_CODE) == 0)
            asked++;
    }
    if (asked > 0)
        log_msg(LOG_INFO, "heartbeat: %u connections silent for over %lld ms asked to close",
                asked, (long long)limit);
}

static int master_loop(struct master *m)
{
    m->next_scan_ms = clock_mono_ms() + MASTER_SCAN_MS;
    while (!(m->stopping != MASTER_RUNNING && workers_alive(m) == 0)) {
        struct pollfd pfd[2] = {{.fd = m->sigfd, .events = POLLIN},
                                {.fd = m->control_fd, .events = POLLIN}};
        int64_t wait = WSD_MAX(0, WSD_MIN(MASTER_POLL_MS, m->next_scan_ms - clock_mono_ms()));
        int n = poll(pfd, m->control_fd >= 0 ? 2 : 1, (int)wait);
        if (n == -1 && errno != EINTR) {
            log_msg(LOG_CRIT, "poll failed: %s", strerror(errno));
            return 1;
        }
        if (n > 0 && (pfd[0].revents & POLLIN))
            master_on_signals(m);
        if (n > 0 && m->control_fd >= 0 && (pfd[1].revents & POLLIN))
            control_on_readable(m);
        int64_t now = clock_mono_ms();
        workers_supervise(m, now);
        if (now >= m->next_scan_ms) {
            if (m->stopping == MASTER_RUNNING)
                master_scan_heartbeats(m, now);
            tls_ticket_advance(); /* workers forked from now on inherit no older key */
            m->next_scan_ms = now + MASTER_SCAN_MS;
        }
        if (m->stopping != MASTER_RUNNING && now >= m->stop_deadline_ms) {
            log_msg(LOG_WARN, "workers still running at the shutdown deadline: killing them");
            workers_signal_all(m, SIGKILL);
            m->stop_deadline_ms = now + 1000;
        }
    }
    return 0;
}

/* ---- reload ---- */

static bool master_same_listener(const struct config_listen *a, const struct config_listen *b)
{
    return a->addr_len == b->addr_len && memcmp(&a->addr, &b->addr, a->addr_len) == 0;
}

static bool master_listeners_same(const struct master *m, const struct config *fresh)
{
    if (fresh->num_listen != m->num_listen)
        return false;
    for (size_t i = 0; i < fresh->num_listen; i++) {
        if (!master_same_listener(&m->cfg->listen[i], &fresh->listen[i]) ||
            m->listen_tls[i] != fresh->listen[i].tls)
            return false;
    }
    return true;
}

/* Index of the open listener bound to l's address, or -1. */
static int master_find_listener(const struct master *m, const struct config_listen *l)
{
    for (size_t j = 0; j < m->num_listen; j++) {
        if (master_same_listener(&m->cfg->listen[j], l))
            return (int)j;
    }
    return -1;
}

/*
 * Switches to fresh's listener set: addresses already bound keep their socket, new ones
 * are opened, and only once all are open are the removed ones closed. Bumps
 * m->listen_gen. Returns 0, or WSD_EIO with err when an address could not be opened
 * (then nothing changed).
 */
static int master_relisten(struct master *m, const struct config *fresh, char *err, size_t cap)
{
    int fds[CONFIG_MAX_LISTEN];
    bool kept[CONFIG_MAX_LISTEN] = {false}, reused[CONFIG_MAX_LISTEN] = {false};
    size_t i;
    for (i = 0; i < fresh->num_listen; i++) {
        int j = master_find_listener(m, &fresh->listen[i]);
        if (j >= 0) {
            fds[i] = m->listen_fds[j];
            kept[j] = reused[i] = true;
            continue;
        }
        fds[i] = listen_open(&fresh->listen[i], fresh->backlog, err, cap);
        if (fds[i] < 0)
            goto out_close_new;
    }
    for (size_t j = 0; j < m->num_listen; j++) {
        if (!kept[j])
            close(m->listen_fds[j]);
    }
    for (i = 0; i < fresh->num_listen; i++) {
        m->listen_fds[i] = fds[i];
        m->listen_tls[i] = fresh->listen[i].tls;
    }
    m->num_listen = fresh->num_listen;
    m->listen_gen++;
    log_msg(LOG_NOTICE, "listeners changed: replacing every worker");
    return 0;
out_close_new:
    while (i-- > 0) {
        if (!reused[i])
            close(fds[i]);
    }
    return WSD_EIO;
}

static bool master_str_same(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Makes fresh the master's configuration (takes it) and applies what the master uses. */
static void master_apply_config(struct master *m, struct config *fresh)
{
    const struct config *old = m->cfg;
    enum log_level level = LOG_INFO;
    log_level_parse(fresh->log_level, &level);
    log_set_level(level);
    if (!master_str_same(old->log_file, fresh->log_file) && log_open(fresh->log_file) < 0)
        log_msg(LOG_ERR, "cannot open log file %s: %s", fresh->log_file, strerror(errno));
    int64_t old_timeout = heartbeat_timeout_ms(old);
    if (heartbeat_timeout_ms(fresh) < old_timeout) {
        m->hb_old_timeout_ms = old_timeout;
        m->hb_grace_until_ms = clock_mono_ms() + old_timeout;
    }
    m->cfg = fresh;
    if (m->cfg_owned) {
        config_fini(m->cfg_owned);
        free(m->cfg_owned);
    }
    m->cfg_owned = fresh;
    master_load_client(m);
}

void master_reload(struct master *m)
{
    if (m->stopping != MASTER_RUNNING) {
        log_msg(LOG_NOTICE, "reload ignored: shutting down");
        return;
    }
    char err[CONFIG_ERR_LEN], restart[256] = "", changed[512];
    struct config *fresh =
        worker_config_reload(m->cfg_path, m->cfg, restart, sizeof(restart), err);
    bool relisten = fresh && !master_listeners_same(m, fresh);
    if (relisten && master_relisten(m, fresh, err, sizeof(err)) < 0) {
        config_fini(fresh);
        free(fresh);
        fresh = NULL;
    }
    if (fresh == NULL) {
        log_msg(LOG_ERR, "reload refused, keeping the running configuration: %s", err);
        if (audit_begin("reload")) {
            audit_bool("ok", false);
            audit_str("error", err);
            audit_end();
        }
        return;
    }
    if (restart[0] != '\0')
        log_msg(LOG_WARN, "reload: a restart is needed to apply %s: keeping the running values",
                restart);
    size_t n = config_changed_keys(m->cfg, fresh, changed, sizeof(changed));
    master_apply_config(m, fresh);
    master_open_audit(m); /* a new path, or the same one again (rotation) */
    if (audit_begin("reload")) {
        audit_bool("ok", true);
        audit_str("changed", changed);
        audit_str("restart_needed", restart);
        audit_end();
    }
    shm_seg_bump_config_generation(&m->seg);
    if (!relisten)
        workers_reload_all(m); /* else every worker is replaced below */
    workers_reconcile(m);
    log_msg(LOG_NOTICE, "configuration reloaded: %zu keys changed%s%s", n, n ? ": " : "",
            changed);
}

static void master_cleanup(struct master *m)
{
    control_close(m);
    workers_fini(m);
    if (m->cfg->pid_file && m->pid_written)
        unlink(m->cfg->pid_file);
    for (size_t i = 0; i < m->num_listen; i++)
        close(m->listen_fds[i]);
    free(m->client_js);
    m->client_js = NULL;
    if (m->cfg_owned) {
        m->cfg = NULL;
        config_fini(m->cfg_owned);
        free(m->cfg_owned);
        m->cfg_owned = NULL;
    }
}

int master_run(struct config *cfg, const char *cfg_path)
{
    static struct master mst;
    struct master *m = &mst;
    char err[CONFIG_ERR_LEN] = "";
    m->cfg = cfg;
    m->cfg_path = cfg_path;
    m->control_fd = -1;
    m->start_ms = clock_mono_ms();
    log_set_role("master");
    enum log_level level = LOG_INFO;
    log_level_parse(cfg->log_level, &level);
    log_set_level(level);
    if (log_open(cfg->log_file) < 0) {
        fprintf(stderr, "wsd: cannot open log file %s: %s\n", cfg->log_file, strerror(errno));
        return 1;
    }
    if (audit_open(cfg->audit_log) < 0) {
        fprintf(stderr, "wsd: cannot open audit log %s: %s\n", cfg->audit_log, strerror(errno));
        return 1;
    }
    int rc = master_open_listeners(m, err, sizeof(err));
    if (rc == 0 && tls_global_init(cfg->tls_ticket_rotation) < 0) {
        snprintf(err, sizeof(err), "cannot draw the TLS session ticket keys");
        rc = WSD_EIO;
    }
    if (rc == 0)
        rc = master_setup_signals(m, err, sizeof(err));
    if (rc == 0)
        rc = workers_init(m, err, sizeof(err));
    if (rc == 0)
        rc = control_open(m, err, sizeof(err));
    if (rc == 0 && cfg->pid_file) {
        rc = master_write_pid_file(cfg->pid_file, err, sizeof(err));
        m->pid_written = rc == 0;
    }
    if (rc < 0) {
        fprintf(stderr, "wsd: %s\n", err);
        log_msg(LOG_CRIT, "start-up failed: %s", err);
        master_cleanup(m);
        return 1;
    }
    master_load_client(m);
    char pending[512];
    if (config_pending_keys(cfg, pending, sizeof(pending)) > 0)
        log_msg(LOG_NOTICE, "configured but not yet in effect in this version: %s", pending);
    char where[CONFIG_MAX_LISTEN * 72] = "";
    for (size_t i = 0, used = 0; i < cfg->num_listen && used < sizeof(where); i++)
        used += (size_t)snprintf(where + used, sizeof(where) - used, "%s%s%s", i ? ", " : "",
                                 cfg->listen[i].text, cfg->listen[i].tls ? " (TLS)" : "");
    log_msg(LOG_NOTICE, "wsd %s starting %d workers, listening on %s", WSD_VERSION,
            cfg->workers, where);
    if (audit_begin("start")) {
        audit_str("version", WSD_VERSION);
        audit_u64("workers", (uint64_t)cfg->workers);
        audit_str("listen", where);
        audit_end();
    }
    workers_start_all(m);
    shm_seg_set_state(&m->seg, SHM_SEG_RUNNING);
    rc = master_loop(m);
    log_msg(LOG_NOTICE, "wsd stopped");
    if (audit_begin("stop")) {
        audit_u64("status", (uint64_t)rc);
        audit_end();
    }
    master_cleanup(m);
    return rc;
}
