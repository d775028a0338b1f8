/*
 * worker.h - a worker process: one epoll loop serving client connections accepted from
 * the listening sockets it shares with its siblings.
 *
 * Signals (through a signalfd, acted on in the loop):
 *   HUP   re-read cfg_path, validate, and swap the configuration at the end of the loop
 *         iteration; everything derived from it (handshake options, deflate settings,
 *         log level and file, the served client library, ping schedule) is rebuilt
 *         before the old configuration is freed. Keys a reload cannot change keep their
 *         running values (worker_config_reload()). Ignored while draining.
 *   TERM  while the instance runs (segment state RUNNING): retire. Stop accepting,
 *   INT   close the listening sockets, close every client with 1001, exit 0 once all
 *         are gone or after shutdown_timeout. While the instance drains (DRAINING or
 *         STOPPING): keep accepting so new upgrades get 503 with Retry-After and
 *         health_path answers 503, close every client with 1001, exit likewise.
 *   QUIT  leave at once, dropping every connection.
 *   USR1  reopen the log file.
 */
#ifndef WSD_WORKER_WORKER_H
#define WSD_WORKER_WORKER_H

#include "core/buf.h"
#include "core/config.h"
#include "core/pool.h"
#include "proto/deflate.h"
#include "proto/handshake.h"
#include "proto/ws_frame.h"

#include <stdbool.h>
#include <stdint.h>

struct conn;
struct shm_seg;
struct ssl_ctx_st;

#define WORKER_RBUF_LEN (256 * 1024)

struct worker_listener {
    uint8_t kind; /* EV_LISTENER */
    int fd;
    bool tls;
};

/* What the master hands a worker it forks. */
struct worker_init {
    int id;                        /* worker slot */
    const struct config *cfg;      /* borrowed for the worker's life or its first reload */
    const char *cfg_path;          /* file re-read on HUP; NULL = the embedded defaults */
    struct shm_seg *seg;
    const int *listen_fds;
    const bool *listen_tls;
    size_t num_listen;
    const int *ring_efds;          /* every slot's ring eventfd (CONFIG_MAX_WORKERS) */
    const char *client_js;         /* the JavaScript client served at client_path */
    size_t client_js_len;
};

struct worker {
    int id;
    const struct config *cfg;      /* the configuration in effect */
    struct config *cfg_owned;      /* cfg when a reload loaded it (freed at the next) */
    const char *cfg_path;
    bool reload_pending;           /* HUP seen: reload at the end of the iteration */
    struct shm_seg *seg;
    int epfd;
    int sigfd;
    uint8_t sig_kind;              /* EV_SIGNAL, the epoll tag of sigfd */
    struct worker_listener listeners[CONFIG_MAX_LISTEN];
    size_t num_listen;
    bool draining;                 /* TERM seen: no new upgrades, closing everyone */
    bool retiring;                 /* draining because the master retires this slot */
    bool accepting;                /* the listeners are in the epoll set */
    int64_t accept_resume_ms;      /* when an overloaded worker looks at accepting again */
    bool stop;                     /* leave the loop */
    int64_t now_ms;                /* monotonic time of this loop iteration */
    int64_t drain_deadline_ms;
    uint8_t *rbuf;                 /* the read buffer shared by every connection */
    bool read_more;                /* the last read filled its buffer: bytes may be left */
    struct ws_reader rd;           /* the frame reader of every connection between frames */
    struct pool conn_pool;         /* struct conn */
    struct buf scratch;            /* frame building (compression output) */
    bool again;                    /* work is ready: the next epoll_wait does not block */
    bool http_head;                /* answering a HEAD request: heads without content */
    struct conn *corked;           /* its small writes gather in `cork` (conn_cork) */
    struct buf cork;
    struct conn *conns;            /* live connections */
    struct conn *tick_next;        /* where the next tick goes on (NULL: from the start) */
    uint32_t num_conns;
    struct conn *dead;             /* freed at the end of the iteration */
    struct conn *dirty;            /* flushed at the end of the iteration */
    struct hs_options hs;
    struct pmd_config pmd;
    const char *subprotocols[2];
    const char *client_js;
    size_t client_js_len;
    char *client_js_owned;         /* client_js when a reload read it */
    struct buf app_out;            /* envelope encoding scratch */
    struct route *route;           /* messaging state (route.c) */
    struct ssl_ctx_st *tls_ctx;    /* tls_cert and tls_key as loaded (NULL: none set) */
};

/*
 * Reads the configuration for a reload: path (NULL: the embedded defaults) is parsed and
 * validated, then the keys a reload cannot apply (max_connections, max_groups, store,
 * store_sync, pid_file, control_socket) get running's values back. When restart is not
 * NULL, the names of those keys whose value the file changed are written into it
 * (space-separated, truncated at a whole name to fit restart_cap; "" when none).
 * Returns a new configuration the caller owns (config_fini() then free()), or NULL with
 * "FILE:LINE: reason" (or "FILE: reason") in err.
 */
struct config *worker_config_reload(const char *path, const struct config *running,
                                    char *restart, size_t restart_cap,
                                    char err[CONFIG_ERR_LEN]);

/*
 * Reads a whole file into a new buffer (*out, owned by the caller, NUL-terminated;
 * *out_len excludes the NUL). Returns 0; WSD_ENOENT when it does not exist; WSD_EIO
 * (errno kept) or WSD_ENOMEM. Meant for small files read at start or reload.
 */
int worker_read_file(const char *path, char **out, size_t *out_len);

/* Runs the worker until it is told to stop; returns the process exit status. */
int worker_run(const struct worker_init *init);

/* Puts the shared frame reader back at the start of a stream, with the configured message
 * limit (allow_rsv1 is set per connection before each use). */
void worker_reset_reader(struct worker *w);

/* Re-arms epoll interest for c (EPOLLIN unless paused, EPOLLOUT when output waits); an
 * event follows at once when c is ready for it. */
void worker_update_events(struct worker *w, struct conn *c);

#endif
