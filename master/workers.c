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
/* A retiring worker gets shutdown_timeout plus this before it is killed. */
#define WORKERS_RETIRE_GRACE_MS 3000

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
        .cfg_path = m->cfg_path,
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
    mw->listen_gen = m->listen_gen;
    mw->retiring = false;
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

/*
 * Releases a dead worker's entries of a name table. A table with no name in use is not
 * scanned: the first scan of a big table faults in every one of its pages.
 */
static void workers_release_names(struct names_table *t, int slot)
{
    if (atomic_load_explicit(&t->used, memory_order_acquire) == 0)
        return;
    int rc = names_release_worker(t, (uint32_t)slot);
    if (rc < 0)
        log_msg(LOG_ERR, "worker %d: releasing its names failed: %s", slot, wsd_strerror(rc));
}

/* Clears what a dead worker held in the shared segment (before anything is forked into
 * its slot, which would register under the same slot number). */
static void workers_recover(struct master *m, int slot)
{
    int freed = conn_table_release_worker(&m->seg, (uint32_t)slot);
    workers_release_names(m->seg.users, slot);
    workers_release_names(m->seg.groups, slot);
    for (int i = 0; i < CONFIG_MAX_WORKERS; i++)
        ring_skip_dead(shm_seg_ring(&m->seg, (uint32_t)i), (uint8_t)slot);
    if (freed > 0)
        log_msg(LOG_NOTICE, "worker %d: released %d connection slots", slot, freed);
    else if (freed < 0)
        log_msg(LOG_ERR, "worker %d: releasing its connection slots failed: %s", slot,
                wsd_strerror(freed));
}

static void workers_log_exit(const struct master *m, int slot, int status)
{
    const struct master_worker *mw = &m->workers[slot];
    bool expected = m->stopping != MASTER_RUNNING || mw->retiring;
    if (WIFSIGNALED(status))
        log_msg(expected ? LOG_INFO : LOG_ERR, "worker %d killed by signal %d", slot,
                WTERMSIG(status));
    else
        log_msg(WEXITSTATUS(status) != 0 && !expected ? LOG_ERR : LOG_INFO,
                "worker %d exited with status %d", slot, WEXITSTATUS(status));
    if (mw->retiring)
        log_msg(LOG_NOTICE, "worker %d retired", slot);
}

/* Schedules the restart of a wanted worker that died: at once, or later in a loop. */
static void workers_schedule_restart(struct master_worker *mw, int slot, int64_t now)
{
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

static void workers_on_exit(struct master *m, int slot, int status)
{
    struct master_worker *mw = &m->workers[slot];
    struct shm_seg_worker *sw = shm_seg_worker(&m->seg, (uint32_t)slot);
    mw->pid = 0;
    atomic_store_explicit(&sw->pid, 0, memory_order_relaxed);
    atomic_store_explicit(&sw->state, SHM_SEG_WORKER_DEAD, memory_order_release);
    workers_recover(m, slot);
    workers_log_exit(m, slot, status);
    if (mw->retiring || !mw->wanted) {
        /* Retired: swept, and the slot is free for a later start. */
        mw->retiring = false;
        atomic_store_explicit(&sw->state, SHM_SEG_WORKER_EMPTY, memory_order_release);
        return;
    }
    /* A worker that exits on its own while it is wanted is restarted too. */
    if (m->stopping == MASTER_RUNNING)
        workers_schedule_restart(mw, slot, clock_mono_ms());
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

/* Asks the worker in slot to leave for good: close its clients with 1001 and exit. */
static void workers_retire(struct master *m, int slot)
{
    struct master_worker *mw = &m->workers[slot];
    struct shm_seg_worker *sw = shm_seg_worker(&m->seg, (uint32_t)slot);
    mw->wanted = false;
    mw->restart_at_ms = 0;
    if (mw->pid == 0) {
        /* Crashed and waiting for its restart: already swept, nothing runs. */
        atomic_store_explicit(&sw->state, SHM_SEG_WORKER_EMPTY, memory_order_release);
        return;
    }
    mw->retiring = true;
    mw->retire_deadline_ms = clock_mono_ms() + (int64_t)m->cfg->shutdown_timeout * 1000 +
                             WORKERS_RETIRE_GRACE_MS;
    atomic_store_explicit(&sw->state, SHM_SEG_WORKER_RETIRING, memory_order_release);
    kill(mw->pid, SIGTERM);
    log_msg(LOG_NOTICE, "worker %d pid=%d retiring", slot, (int)mw->pid);
}

void workers_reconcile(struct master *m)
{
    if (m->stopping != MASTER_RUNNING)
        return;
    int want = m->cfg->workers, current = 0;
    for (int i = 0; i < CONFIG_MAX_WORKERS; i++)
        current += m->workers[i].wanted && m->workers[i].listen_gen == m->listen_gen;
    /* New workers first, in the lowest free slots, so that replacing never leaves the
       listeners unwatched while there are free slots. */
    for (int i = 0; i < CONFIG_MAX_WORKERS && current < want; i++) {
        struct master_worker *mw = &m->workers[i];
        if (mw->wanted || mw->pid != 0)
            continue;
        mw->wanted = true;
        mw->quick_crashes = 0;
        mw->restart_at_ms = 0;
        workers_fork(m, i);
        current++;
    }
    /* Then the old ones: every worker on an old listener set, and the surplus from the
       highest slot down. */
    for (int i = CONFIG_MAX_WORKERS - 1; i >= 0; i--) {
        struct master_worker *mw = &m->workers[i];
        if (!mw->wanted)
            continue;
        if (mw->listen_gen != m->listen_gen) {
            workers_retire(m, i);
        } else if (current > want) {
            workers_retire(m, i);
            current--;
        }
    }
}

/* Kills a retiring worker that outlived its deadline. */
static void workers_check_retiring(struct master *m, int64_t now_ms)
{
    for (int i = 0; i < CONFIG_MAX_WORKERS; i++) {
        struct master_worker *mw = &m->workers[i];
        if (!mw->retiring || mw->pid == 0 || now_ms < mw->retire_deadline_ms)
            continue;
        log_msg(LOG_WARN, "worker %d pid=%d still retiring at its deadline: killing it", i,
                (int)mw->pid);
        kill(mw->pid, SIGKILL);
        mw->retire_deadline_ms = now_ms + 1000;
    }
}

void workers_supervise(struct master *m, int64_t now_ms)
{
    workers_reap(m);
    workers_check_retiring(m, now_ms);
    if (m->stopping != MASTER_RUNNING)
        return;
    workers_reconcile(m);
    for (int i = 0; i < CONFIG_MAX_WORKERS; i++) {
        struct master_worker *mw = &m->workers[i];
        if (mw->wanted && mw->pid == 0 && now_ms >= mw->restart_at_ms)
            workers_fork(m, i);
    }
}

void workers_reload_all(struct master *m)
{
    for (int i = 0; i < CONFIG_MAX_WORKERS; i++) {
        if (m->workers[i].pid > 0 && !m->workers[i].retiring)
            kill(m->workers[i].pid, SIGHUP);
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
