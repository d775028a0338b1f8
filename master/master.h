/*
 * master.h - the master process: owns the listeners and the shared segment, forks and
 * supervises the workers, acts on signals, serves the control socket. It runs no client
 * traffic.
 *
 * Signals: HUP reload (master_reload), TERM/INT graceful shutdown (workers close their
 * clients with 1001 and leave; after shutdown_timeout plus a grace the rest is killed),
 * QUIT fast shutdown, USR1 reopen the log file (master and workers).
 *
 * Once a second the master scans the connection table and asks the owning worker to
 * close with 4000 every connection silent for longer than heartbeat_timeout_ms()
 * (worker/heartbeat.h).
 */
#ifndef WSD_MASTER_MASTER_H
#define WSD_MASTER_MASTER_H

#include "core/config.h"
#include "shm/seg.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum master_stop {
    MASTER_RUNNING = 0,
    MASTER_DRAINING, /* TERM/INT: workers close their clients with 1001 */
    MASTER_QUITTING, /* QUIT: workers drop everything */
};

/* The master's view of one worker slot (the shared slot holds the public part). */
struct master_worker {
    pid_t pid;               /* 0 when not running */
    int efd;                 /* the slot's ring eventfd, kept across restarts */
    bool wanted;             /* the slot should run a worker */
    uint32_t restarts;
    uint32_t quick_crashes;  /* consecutive crashes soon after start */
    int64_t started_ms;
    int64_t restart_at_ms;   /* when a crashed worker is forked again; 0 = not pending */
    bool retiring;           /* sent TERM to leave for good: never restarted */
    int64_t retire_deadline_ms; /* a retiring worker still running then is killed */
    uint32_t listen_gen;     /* the listener set it was forked with (struct master) */
};

struct master {
    struct config *cfg;          /* the configuration in effect */
    struct config *cfg_owned;    /* cfg when a reload loaded it (freed at the next) */
    const char *cfg_path;
    int sigfd;
    int control_fd;
    int listen_fds[CONFIG_MAX_LISTEN];
    bool listen_tls[CONFIG_MAX_LISTEN];
    size_t num_listen;
    uint32_t listen_gen;         /* bumped when a reload changed the listeners */
    struct shm_seg seg;
    bool seg_created;
    char seg_name[64];
    struct master_worker workers[CONFIG_MAX_WORKERS];
    enum master_stop stopping;
    int64_t stop_deadline_ms;
    int64_t start_ms;
    int64_t next_scan_ms;        /* next heartbeat scan of the connection table */
    int64_t hb_grace_until_ms;   /* until then the scan also allows the old timeout */
    int64_t hb_old_timeout_ms;
    bool pid_written;
    char *client_js;
    size_t client_js_len;
};

/*
 * Runs wsd with cfg (validated) until TERM/INT/QUIT. cfg_path is the file to re-read
 * on HUP (NULL: the embedded defaults). Returns the process exit status: 0 after a
 * clean shutdown, 1 when start-up failed (one line naming the cause was printed).
 */
int master_run(struct config *cfg, const char *cfg_path);

/*
 * HUP (and `wsctl reload`): re-reads and validates the configuration file. When it is
 * invalid, or a new listener cannot be opened, logs why (file:line) and changes nothing.
 * Otherwise: logs the changed keys, keeps the running value of keys that need a restart
 * (and says so), applies the log level and file, tells every serving worker to reload
 * (SIGHUP; they re-read the same file), opens new listeners before it closes removed
 * ones, and starts or retires workers to match `workers`. A changed listener set
 * replaces every worker: new ones are forked with the new set, then the old ones
 * retire (close their clients with 1001 and exit; never restarted).
 */
void master_reload(struct master *m);

#endif
