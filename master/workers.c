/* workers.c - forking, reaping and restarting the workers. */
#include "master/workers.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/wsd.h"
#include "shm/conn_table.h"
#include "shm/names.h"
#include "shm/ring.h"
#include "worker/worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* A worker that dies sooner than this after its start counts as a crash loop. */
#define WORKERS_QUICK_CRASH_MS 5000

int workers_init(struct master *m, char *err, size_t cap)
{
    const struct config *cfg = m->cfg;
    shm_seg_name_for(cfg->control_socket, m->seg_name);
    struct shm_seg_sizes sz = {
        .max_connections = cfg->max_connections,
        .max_groups = cfg->max_groups,
        .ring_bytes = SHM_SEG_RING_DEFAULT,
    };
    int rc = shm_seg_create(&m->seg, m->seg_name, &sz);
    if (rc < 0) {
        snprintf(err, cap, "cannot create shared memory %s: %s", m->seg_name,
                 rc == WSD_EIO ? strerror(errno) : wsd_strerror(rc));
        return WSD_EIO;
    }
    m->seg_created = true;
    for (int i = 0; i < CONFIG_MAX_WORKERS; i++) {
        m->workers[i].efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (m->workers[i].efd == -1) {
            snprintf(err, cap, "eventfd failed: %s", strerror(errno));
            return WSD_EIO;
        }
        m->workers[i].wanted = i < cfg->workers;
    }
    return 0;
}

void workers_fini(struct master *m)
{
    for (int i = 0; i < CONFIG_MAX_WORKERS; i++) {
        if (m->workers[i].efd > 0)
            close(m->workers[i].efd);
        m->workers[i].efd = 0;
    }
    if (m->seg_created) {
        shm_seg_close(&m->seg);
        shm_seg_unlink(m->seg_name);
        m->seg_created = false;
    }
}

static void workers_child(struct master *m, int slot)
{
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1)
        _exit(0);
    close(m->sigfd);
    if (m->control_fd >= 0)
        close(m->control_fd);
    int efds[CONFIG_MAX_WORKERS];
    for (int i = 0; i < CONFIG_MAX_WORKERS; i++)
        efds[i] = m->workers[i].efd;
    struct worker_init init = {
        .id = slot,
        .cfg = m->cfg,
        .seg = &m->seg,
        .listen_fds = m->listen_fds,
        .listen_tls = m->listen_tls,
        .num_listen = m->num_listen,
        .ring_efds = efds,
        .client_js = m->client_js,
        .client_js_len = m->client_js_len,
    };
    _exit(worker_run(&init));
}

static void workers_fork(struct master *m, int slot)
{
    struct master_worker *mw = &m->workers[slot];
    struct shm_seg_worker *sw = shm_seg_worker(&m->seg, (uint32_t)slot);
    atomic_store_explicit(&sw->state, SHM_SEG_WORKER_STARTING, memory_order_release);
    pid_t pid = fork();
    if (pid == -1) {
        log_msg(LOG_ERR, "fork for worker %d failed: %s", slot, strerror(errno));
        mw->restart_at_ms = clock_mono_ms() + 1000;
        return;
    }
    if (pid == 0)
        workers_child(m, slot);
    mw->pid = pid;
    mw->started_ms = clock_mono_ms();
    mw->restart_at_ms = 0;
    atomic_store_explicit(&sw->pid, (int32_t)pid, memory_order_relaxed);
    atomic_store_explicit(&sw->started_wall_ms, clock_wall_ms(), memory_order_relaxed);
    atomic_store_explicit(&sw->restarts, mw->restarts, memory_order_relaxed);
    log_msg(LOG_INFO, "worker %d started pid=%d", slot, (int)pid);
}

void workers_start_all(struct master *m)
{
    for (int i = 0; i < CONFIG_MAX_WORKERS; i++) {
        if (m->workers[i].wanted && m->workers[i].pid == 0)
            workers_fork(m, i);
    }
}

/* Clears what a dead worker held in the shared segment. */
static void workers_recover(struct master *m, int slot)
{
    int freed = conn_table_release_worker(&m->seg, (uint32_t)slot);
    names_release_worker(m->seg.users, (uint32_t)slot);
    names_release_worker(m->seg.groups, (uint32_t)slot);
    for (int i = 0; i < CONFIG_MAX_WORKERS; i++)
        ring_skip_dead(shm_seg_ring(&m->seg, (uint32_t)i), (uint8_t)slot);
    if (freed > 0)
        log_msg(LOG_NOTICE, "worker %d: released %d connection slots", slot, freed);
}

static void workers_on_exit(struct master *m, int slot, int status)
{
    struct master_worker *mw = &m->workers[slot];
    struct shm_seg_worker *sw = shm_seg_worker(&m->seg, (uint32_t)slot);
    int64_t now = clock_mono_ms();
    bool crashed = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0);
    mw->pid = 0;
    atomic_store_explicit(&sw->pid, 0, memory_order_relaxed);
    atomic_store_explicit(&sw->state, SHM_SEG_WORKER_DEAD, memory_order_release);
    workers_recover(m, slot);
    if (WIFSIGNALED(status))
        log_msg(crashed && m->stopping == MASTER_RUNNING ? LOG_ERR : LOG_INFO,
                "worker %d killed by signal %d", slot, WTERMSIG(status));
    else
        log_msg(crashed ? LOG_ERR : LOG_INFO, "worker %d exited with status %d", slot,
                WEXITSTATUS(status));
    if (m->stopping != MASTER_RUNNING || !mw->wanted)
        return;
    /* A worker that exits on its own while it is wanted is restarted too. */
    mw->restarts++;
    if (now - mw->started_ms < WORKERS_QUICK_CRASH_MS)
        mw->quick_crashes++;
    else
        mw->quick_crashes = 0;
    int64_t delay = 0;
    if (mw->quick_crashes > 1) {
        delay = 250LL << WSD_MIN(mw->quick_crashes - 2, 10u);
        delay = WSD_MIN(delay, (int64_t)WORKERS_MAX_BACKOFF_MS);
        log_msg(LOG_WARN, "worker %d crashes repeatedly: restarting in %lld ms", slot,
                (long long)delay);
    }
    mw->restart_at_ms = now + delay;
}

void workers_reap(struct master *m)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        for (int i = 0; i < CONFIG_MAX_WORKERS; i++) {
            if (m->workers[i].pid == pid) {
                workers_on_exit(m, i, status);
                break;
            }
        }
    }
}

void workers_supervise(struct master *m, int64_t now_ms)
{
    workers_reap(m);
    if (m->stopping != MASTER_RUNNING)
        return;
    for (int i = 0; i < CONFIG_MAX_WORKERS; i++) {
        struct master_worker *mw = &m->workers[i];
        if (mw->wanted && mw->pid == 0 && now_ms >= mw->restart_at_ms)
            workers_fork(m, i);
    }
}

void workers_signal_all(struct master *m, int sig)
{
    for (int i = 0; i < CONFIG_MAX_WORKERS; i++) {
        if (m->workers[i].pid > 0)
            kill(m->workers[i].pid, sig);
    }
}

size_t workers_alive(const struct master *m)
{
    size_t n = 0;
    for (int i = 0; i < CONFIG_MAX_WORKERS; i++)
        n += m->workers[i].pid > 0;
    return n;
}
