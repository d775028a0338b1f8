/*
 * workers.h - forking, reaping and restarting the workers, one per slot.
 *
 * A worker that dies from a signal or exits non-zero while the master is running is
 * crashed: its connection slots are released, the records half-written into rings by it
 * are skipped, and a new worker is forked in the same slot with the same eventfd, at
 * once the first time, then after a delay that doubles with each crash soon after start
 * (crash loop), up to WORKERS_MAX_BACKOFF_MS.
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

/* Forks the workers whose restart time has come; called about every 200 ms. */
void workers_supervise(struct master *m, int64_t now_ms);

/* Sends sig to every running worker. */
void workers_signal_all(struct master *m, int sig);

/* Number of worker processes still running. */
size_t workers_alive(const struct master *m);

#endif
