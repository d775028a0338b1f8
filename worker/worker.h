/*
 * worker.h - a worker process: one epoll loop serving client connections accepted from
 * the listening sockets it shares with its siblings.
 */
#ifndef WSD_WORKER_WORKER_H
#define WSD_WORKER_WORKER_H

#include "core/buf.h"
#include "core/config.h"
#include "proto/deflate.h"
#include "proto/handshake.h"

#include <stdbool.h>
#include <stdint.h>

struct conn;
struct shm_seg;

#define WORKER_RBUF_LEN (256 * 1024)

struct worker_listener {
    uint8_t kind; /* EV_LISTENER */
    int fd;
    bool tls;
};

/* What the master hands a worker it forks. */
struct worker_init {
    int id;                        /* worker slot */
    const struct config *cfg;
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
    const struct config *cfg;
    struct shm_seg *seg;
    int epfd;
    int sigfd;
    uint8_t sig_kind;              /* EV_SIGNAL, the epoll tag of sigfd */
    struct worker_listener listeners[CONFIG_MAX_LISTEN];
    size_t num_listen;
    bool draining;                 /* TERM seen: no new upgrades, closing everyone */
    bool accepting;                /* the listeners are in the epoll set */
    int64_t accept_resume_ms;      /* when an overloaded worker looks at accepting again */
    bool stop;                     /* leave the loop */
    int64_t now_ms;                /* monotonic time of this loop iteration */
    int64_t drain_deadline_ms;
    uint8_t *rbuf;                 /* the read buffer shared by every connection */
    struct buf scratch;            /* frame building (compression output) */
    struct conn *conns;            /* live connections */
    uint32_t num_conns;
    struct conn *dead;             /* freed at the end of the iteration */
    struct hs_options hs;
    struct pmd_config pmd;
    const char *subprotocols[2];
    const char *client_js;
    size_t client_js_len;
    struct buf app_out;            /* envelope encoding scratch */
    struct route *route;           /* messaging state (route.c) */
};

/* Runs the worker until it is told to stop; returns the process exit status. */
int worker_run(const struct worker_init *init);

/* Re-arms epoll interest for c (EPOLLIN unless paused, EPOLLOUT when output waits). */
void worker_update_events(struct worker *w, struct conn *c);

#endif
