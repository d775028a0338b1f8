/*
 * wsbench_conn.h - one client connection of a wsbench worker: non-blocking connect from
 * a chosen source address, the upgrade handshake, the mode's protocol (echo stream,
 * join/publish/deliver, connect-and-close cycles) and the close handshake. The worker
 * (wsbench_worker.c) owns the loop and the phases; these functions act on one connection
 * and keep the worker's counters. Nothing blocks; output goes out first and EPOLLOUT is
 * armed only while bytes remain.
 */
#ifndef WSD_TOOLS_WSBENCH_CONN_H
#define WSD_TOOLS_WSBENCH_CONN_H

#include "core/buf.h"
#include "core/wsd.h"
#include "tools/wsbench_worker.h"
#include "tools/wsbench_ws.h"

#include <stdbool.h>
#include <stdint.h>

#define WSBENCH_NS 1000000000LL
#define WSBENCH_MS 1000000LL
#define WSBENCH_RBUF_LEN 65536
#define WSBENCH_CLOSE_WAIT_NS (2 * WSBENCH_NS)
#define WSBENCH_CYCLE_TIMEOUT_NS (10 * WSBENCH_NS)

enum wsbench_cs {
    WSBENCH_CS_IDLE = 0,   /* no socket (connect mode: a free slot) */
    WSBENCH_CS_CONNECTING, /* TCP connect in progress */
    WSBENCH_CS_TLS,        /* wss: TLS handshake in progress */
    WSBENCH_CS_HANDSHAKE,  /* upgrade request sent, waiting for 101 */
    WSBENCH_CS_JOINING,    /* subscriber: join (or ping) sent, waiting for its answer */
    WSBENCH_CS_READY,
    WSBENCH_CS_CLOSING,    /* close frame sent, waiting for the server to close */
    WSBENCH_CS_DEAD,       /* failed or closed; not reused */
};

enum wsbench_role {
    WSBENCH_ROLE_PLAIN = 0, /* echo, idle, connect */
    WSBENCH_ROLE_SUB,
    WSBENCH_ROLE_PUB,
};

struct wsbench_c {
    int fd;
    struct ssl_st *ssl;     /* wss: the TLS session, else NULL */
    uint8_t state;          /* enum wsbench_cs */
    uint8_t role;           /* enum wsbench_role */
    bool out_armed;         /* EPOLLOUT registered */
    bool settled;           /* counted as set up or failed */
    uint32_t gidx;          /* global connection index */
    uint32_t pub_idx;       /* publishers: 0..publishers-1 */
    int64_t t0;             /* connect start, or close start */
    struct buf out;         /* whole frames (and the upgrade request) waiting to go */
    struct buf hs;          /* upgrade response gathered so far */
    struct wsbench_rx rx;
    uint64_t stream_bytes;  /* echo: bytes of queued echo frames still to send */
    uint32_t stream_pos;    /* echo: offset of the next byte inside its frame */
    uint32_t raw_have;      /* raw echo: bytes of the current reply received */
    int64_t *ring;          /* echo: send times of the messages in flight */
    uint32_t ring_head;
    uint32_t ring_len;
    uint32_t outstanding;   /* publisher: unanswered publishes */
    uint64_t seq;
    int64_t next_ns;        /* publisher, rate mode: when the next one is due */
    uint64_t delivered;     /* direct subscriber: deliveries, for periodic acks */
    int64_t last_off;
};

struct wsbench_w {
    const struct wsbench_opts *o;
    struct ssl_ctx_st *tls;     /* wss: the client context (no certificate check) */
    struct wsbench_ctl *ctl;
    struct wsbench_result *res;
    uint32_t id;
    int ep;
    int64_t now;
    int64_t start_ns;
    int64_t end_ns;
    bool running;           /* inside the run phase, before end_ns */
    bool closing;           /* final close under way */
    bool budget_out;        /* connect mode: no handshakes left to start */
    struct wsbench_c *conns;
    uint32_t nconns;
    uint32_t next_start;
    uint32_t pending;       /* set-ups started and not settled */
    uint32_t max_pending;
    uint32_t settled;
    uint32_t live;          /* connections holding a socket */
    uint32_t src_rr;
    struct wsbench_c **pubs;
    uint32_t npubs;
    int64_t *rings;
    int64_t interval_ns;    /* rate mode: per publisher */
    int64_t next_scan;
    uint8_t *rbuf;
    uint8_t *stream;        /* echo: copies of the pre-masked frame */
    size_t stream_len;
    uint32_t flen;
    char *jbuf;
    size_t jcap;
    char *pad;
    uint8_t mask[4];
    char key[WSBENCH_WS_KEY_LEN + 1];
    char accept[WSBENCH_WS_ACCEPT_LEN + 1];
};

/* Handles epoll events for c; ignores a connection that has no socket any more. */
void wsbench_conn_event(struct wsbench_w *w, struct wsbench_c *c, uint32_t events);

/*
 * Opens c's socket, binds the source address src[src_idx % nsrc] (when sources were
 * given) and starts a non-blocking connect. Failure drops c (see wsbench_conn_drop).
 */
void wsbench_conn_open(struct wsbench_w *w, struct wsbench_c *c, uint32_t src_idx);

/* Writes what c has queued; arms or disarms EPOLLOUT. A send error drops c. */
void wsbench_conn_flush(struct wsbench_w *w, struct wsbench_c *c);

/* Queues n echo messages on c, noting their send time. The caller flushes. */
void wsbench_conn_echo_queue(struct wsbench_w *w, struct wsbench_c *c, uint32_t n);

/* Queues one publish (fanout) or send (direct) on publisher c. The caller flushes. */
void wsbench_conn_publish(struct wsbench_w *w, struct wsbench_c *c);

/* Counts an error and keeps the first one's text for the report. */
void wsbench_conn_error(struct wsbench_w *w, const char *fmt, ...) WSD_PRINTF(2, 3);

/*
 * Gives c up after an error: counts it (as a failed set-up while c was being set up),
 * closes the socket with a reset. c becomes a free slot in connect mode, dead otherwise.
 */
void wsbench_conn_drop(struct wsbench_w *w, struct wsbench_c *c, const char *fmt, ...)
    WSD_PRINTF(3, 4);

/* Closes c's socket without counting an error (rst: abort with a reset). */
void wsbench_conn_finish(struct wsbench_w *w, struct wsbench_c *c, bool rst);

/*
 * Starts closing c cleanly: a WebSocket connection sends close 1000 after the frame in
 * progress and waits for the server to close; a raw one closes at once.
 */
void wsbench_conn_close(struct wsbench_w *w, struct wsbench_c *c);

#endif
