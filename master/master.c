/* master.c - start-up, the worker supervisor and the master's signal loop. */
#include "master/master.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/wsd.h"
#include "master/control.h"
#include "master/listen.h"
#include "master/workers.h"

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
    if (path == NULL || path[0] == '\0')
        return;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        log_msg(LOG_NOTICE, "client library %s not found: %s is not served", path,
                m->cfg->client_path);
        return;
    }
    struct buf b;
    buf_init(&b);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (buf_append(&b, chunk, n) < 0)
            break;
    }
    fclose(f);
    m->client_js = (char *)b.data;
    m->client_js_len = b.len;
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
                log_msg(LOG_ERR, "cannot reopen log file %s", m->cfg->log_file);
            workers_signal_all(m, SIGUSR1);
            break;
        default:
            break;
        }
    }
}

static int master_loop(struct master *m)
{
    while (!(m->stopping != MASTER_RUNNING && workers_alive(m) == 0)) {
        struct pollfd pfd[2] = {{.fd = m->sigfd, .events = POLLIN},
                                {.fd = m->control_fd, .events = POLLIN}};
        int n = poll(pfd, m->control_fd >= 0 ? 2 : 1, 200);
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
        if (m->stopping != MASTER_RUNNING && now >= m->stop_deadline_ms) {
            log_msg(LOG_WARN, "workers still running at the shutdown deadline: killing them");
            workers_signal_all(m, SIGKILL);
            m->stop_deadline_ms = now + 1000;
        }
    }
    return 0;
}

void master_reload(struct master *m)
{
    static struct config fresh;
    char err[CONFIG_ERR_LEN];
    config_init(&fresh);
    int rc = m->cfg_path ? config_load(&fresh, m->cfg_path, err)
                         : config_parse(&fresh, "(defaults)", config_default_text, err);
    if (rc == 0)
        rc = config_validate(&fresh, err);
    if (rc < 0) {
        log_msg(LOG_ERR, "reload refused, keeping the running configuration: %s", err);
        config_fini(&fresh);
        return;
    }
    enum log_level level = LOG_INFO;
    log_level_parse(fresh.log_level, &level);
    log_set_level(level);
    config_fini(&fresh);
    shm_seg_bump_config_generation(&m->seg);
    workers_signal_all(m, SIGHUP);
    log_msg(LOG_NOTICE, "configuration reloaded");
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
    int rc = master_open_listeners(m, err, sizeof(err));
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
    log_msg(LOG_NOTICE, "wsd %s starting %d workers, listening on %s", WSD_VERSION,
            cfg->workers, cfg->listen[0].text);
    workers_start_all(m);
    shm_seg_set_state(&m->seg, SHM_SEG_RUNNING);
    rc = master_loop(m);
    log_msg(LOG_NOTICE, "wsd stopped");
    master_cleanup(m);
    return rc;
}
