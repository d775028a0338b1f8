/*
 * wsbench_worker.h - one load-generating worker: an epoll loop over its share of the
 * connections (global connection index i belongs to worker i % nworkers), driven through
 * the phases a coordinator announces in a shared control block:
 *
 *   SETUP    connect, handshake, join; then count itself in ctl->ready
 *   GO       run the mode until ctl->end_ns, counting what happens in [start_ns, end_ns);
 *            then store the results and count itself in ctl->done
 *   RELEASE  close every connection (WebSocket close handshake, bounded) and return
 *   ABORT    close at once and return
 *
 * The control block holds no pointers, so it may live in memory shared by forked
 * processes; every wait is bounded, a worker always returns by itself.
 */
#ifndef WSD_TOOLS_WSBENCH_WORKER_H
#define WSD_TOOLS_WSBENCH_WORKER_H

#include "tools/wsbench_hist.h"
#include "tools/wsbench_ws.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define WSBENCH_MAX_SRC 256
#define WSBENCH_MAX_CPUS 64

enum wsbench_mode {
    WSBENCH_ECHO = 0,
    WSBENCH_FANOUT,
    WSBENCH_DIRECT,
    WSBENCH_CONNECT,
    WSBENCH_IDLE,
};

struct wsbench_opts {
    enum wsbench_mode mode;
    struct wsbench_url url;
    struct sockaddr_in dst;
    struct in_addr src[WSBENCH_MAX_SRC];
    uint32_t nsrc;          /* 0: let the kernel choose the source address */
    uint32_t conns;         /* echo, idle: connections; fanout, direct: subscribers;
                               connect: handshakes to make (0 = until the time is up) */
    uint32_t publishers;    /* fanout, direct */
    uint32_t inflight;      /* echo: messages in flight per connection;
                               fanout, direct: unanswered publishes per publisher */
    uint32_t size;          /* echo: payload bytes; fanout, direct: padded publish size */
    uint32_t concurrency;   /* connect: cycles at once; other modes: set-ups at once */
    uint32_t threads;       /* per process */
    uint32_t procs;
    double duration_s;
    double warmup_s;
    double rate;            /* fanout, direct: publishes per second over all publishers,
                               0 = as fast as the in-flight bound allows */
    double setup_timeout_s;
    bool raw;               /* plain TCP echo (bench_tcp_echo) */
    bool text;              /* echo text frames instead of binary */
    char group[129];
    const char *token;      /* shared token, sent as Authorization: Bearer */
    const char *jwt_secret; /* mint one HS256 token per connection instead */
    char user_prefix[32];   /* minted users: PREFIX<i> subscribers, PREFIXpub<j> publishers */
    char direct_user[129];  /* direct with a shared token: the user every send targets */
    int cpus[WSBENCH_MAX_CPUS];
    uint32_t ncpus;
    pid_t server_pid;
};

struct wsbench_result {
    uint64_t messages;      /* in the window: round trips, deliveries or handshakes */
    uint64_t sent;          /* in the window: echo messages or publishes sent */
    uint64_t replies;       /* in the window: publish replies */
    uint64_t errors;
    uint64_t conns_ok;
    uint64_t subs_ok;       /* fanout, direct: subscribers among conns_ok */
    uint64_t conns_failed;
    uint64_t late;          /* rate mode: publishes given up for falling over 1 s behind */
    int64_t cpu_ns;         /* this worker's CPU time over the window */
    char error[160];        /* the first error, for the report */
    struct wsbench_hist hist; /* latency in nanoseconds */
};

enum wsbench_phase {
    WSBENCH_PHASE_SETUP = 0,
    WSBENCH_PHASE_GO,
    WSBENCH_PHASE_RELEASE,
    WSBENCH_PHASE_ABORT,
};

struct wsbench_ctl {
    _Atomic uint32_t ready;
    _Atomic uint32_t done;
    _Atomic int32_t phase;
    _Atomic int64_t start_ns;    /* counting starts (CLOCK_MONOTONIC) */
    _Atomic int64_t end_ns;      /* counting and sending stop */
    _Atomic uint64_t started;    /* connect mode: handshakes begun, against opts.conns */
    uint32_t nworkers;
    struct wsbench_result res[]; /* one per worker */
};

/*
 * Runs worker w (0 <= w < ctl->nworkers) to the end of the run: see the phases above.
 * Writes only ctl->res[w] and the counters. Allocation failure or an epoll failure ends
 * the worker early with res->error set (it still counts itself ready and done).
 */
void wsbench_worker_run(const struct wsbench_opts *o, struct wsbench_ctl *ctl, uint32_t w);

/* Number of connections worker w owns (fanout/direct: subscribers and publishers). */
uint32_t wsbench_worker_share(const struct wsbench_opts *o, uint32_t nworkers, uint32_t w);

#endif
