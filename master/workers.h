/*
 * workers.h - forking, reaping and restarting the workers, one per slot.
 *
 * A worker that dies from a signal or exits non-zero while the master is running is
 * crashed: its connection slots are released, the records half-written into rings by it
 * are skipped, and a new worker is forked in the same slot with the same eventfd, at
 * once the first time, then after a delay that doubles with each crash soon after start
 * (crash loop), up to WORKERS_MAX_BACKOFF_MS.
 *
 * Slots need not be contiguous: `workers` counts the slots wanted. Starting more takes
 * the lowest free slots; retiring marks the slot SHM_SEG_WORKER_RETIRING and sends TERM
 * (the worker closes its clients with 1001 and exits; it is never restarted, and it is
 * killed if it is still there shutdown_timeout plus a grace later); once reaped and
 * swept its slot is SHM_SEG_WORKER_EMPTY and free again.
 */
#ifndef WSD_MASTER_WORKERS_H
#define WSD_MASTER_WORKERS_H

#include "master/master.h"

#include <stddef.h>
#include <stdint.h>

#define WORKERS_MAX_BACKOFF_MS 30000

/* Creates the shared segment and one eventfd per slot. Returns 0 or WSD_EIO with err. */
int workers_init(struct master *m, char *err, size_t cap);

/* Releases the segment and the eventfds (after every worker exited). */
void workers_fini(struct master *m);

/* Forks a worker in every wanted slot. */
void workers_start_all(struct master *m);

/* SIGCHLD: reaps every exited worker and schedules restarts. */
void workers_reap(struct master *m);

/*
 * Called about every 200 ms: reaps, kills retiring workers past their deadline, forks
 * the workers whose restart time has come and keeps the slots matched to the
 * configuration (workers_reconcile()).
 */
void workers_supervise(struct master *m, int64_t now_ms);

/*
 * Matches the running workers to m->cfg->workers and m->listen_gen: forks new workers
 * into free slots first, then retires every worker forked with an older listener set
 * and, from the highest slot down, the surplus. Nothing while the master is stopping.
 */
void workers_reconcile(struct master *m);

/* Sends SIGHUP (reload) to every running worker that is not retiring. */
void workers_reload_all(struct master *m);

/* Sends sig to every running worker. */
void workers_signal_all(struct master *m, int sig);

/* Number of worker processes still running. */
size_t workers_alive(const struct master *m);

#endif
