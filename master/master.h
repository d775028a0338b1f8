/*
 * master.h - the master process: owns the listeners and the shared segment, forks and
 * supervises the workers, acts on signals, serves the control socket. It runs no client
 * traffic.
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
};

struct master {
    struct config *cfg;
    const char *cfg_path;
    int sigfd;
    int control_fd;
    int listen_fds[CONFIG_MAX_LISTEN];
    bool listen_tls[CONFIG_MAX_LISTEN];
    size_t num_listen;
    struct shm_seg seg;
    bool seg_created;
    char seg_name[64];
    struct master_worker workers[CONFIG_MAX_WORKERS];
    enum master_stop stopping;
    int64_t stop_deadline_ms;
    int64_t start_ms;
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

/* HUP: re-reads and validates the configuration and applies it, or logs why not. */
void master_reload(struct master *m);

#endif
