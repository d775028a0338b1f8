/*
 * conn.h - one client connection inside a worker: socket, phase, parser state, output.
 *
 * Phases: HTTP (reading the request head) -> WS (framing) -> CLOSING (close frame sent,
 * waiting for the peer's) -> LINGER (our side shut down, draining the peer until EOF or
 * the deadline) -> DEAD (freed at the end of the loop iteration). A plain HTTP request
 * goes HTTP -> LINGER after its response.
 *
 * TLS (tls_listen) changes only how bytes cross the socket: conn_recv() and the output
 * queue go through the session kept in conn_ext, which a TLS connection always has.
 *
 * Memory: an idle WebSocket connection is 128 bytes from the worker's connection pool
 * (core/pool.h) plus its slot in the shared connection table. Bytes are read into the
 * worker's read buffer and framed by the worker's frame reader; whatever must outlive
 * one read lives in a struct conn_ext allocated on demand: the peer address and a
 * partial request head in the HTTP phase, a frame reader stopped inside a frame, an
 * unfinished fragmented or compressed message. conn_ext_trim() frees it once it holds
 * nothing again.
 */
#ifndef WSD_WORKER_CONN_H
#define WSD_WORKER_CONN_H

#include "core/buf.h"
#include "proto/deflate.h"
#include "proto/ws_frame.h"
#include "worker/outq.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct worker;
struct app_conn;
struct ssl_st;
struct ssl_ctx_st;

enum conn_phase {
    CONN_HTTP = 0,
    CONN_WS,
    CONN_CLOSING,
    CONN_LINGER,
    CONN_DEAD,
};

enum conn_route {
    CONN_ROUTE_NONE = 0,
    CONN_ROUTE_ECHO,   /* raw RFC 6455 echo */
    CONN_ROUTE_APP,    /* the messaging endpoint */
};

/* The tag every epoll user pointer starts with. */
enum ev_kind {
    EV_LISTENER = 1,
    EV_CONN,
    EV_SIGNAL,
    EV_RING,
};

/* What a connection holds only while it needs it (see the top of this file). */
struct conn_ext {
    struct sockaddr_storage peer; /* HTTP phase: the remote address */
    struct buf in;                /* HTTP phase: partial request head */
    struct buf msg;               /* partial fragmented / compressed message */
    struct utf8_state msg_utf8;   /* validation of inflated text */
    bool rd_live;                 /* rd holds this connection's reader inside a frame */
    bool tls_read_wants_out;      /* the TLS handshake waits for the socket to be writable */
    struct ssl_st *ssl;           /* the TLS session of a tls_listen connection */
    struct ws_reader rd;
};

/* The first cache line holds what every message touches, the second the rest. */
struct conn {
    uint8_t kind;            /* EV_CONN */
    uint8_t phase;           /* enum conn_phase */
    uint8_t route;           /* enum conn_route */
    bool close_sent;         /* our close frame is queued */
    bool close_received;     /* the peer's close frame arrived */
    bool paused;             /* reading paused: our replies wait to be read */
    bool want_out;           /* EPOLLOUT armed */
    bool msgpack;            /* subprotocol wsd.v1.msgpack */
    bool dirty;              /* on the worker's list of connections to flush */
    bool seen_since_ping;    /* a frame arrived since the last ping */
    uint8_t missed_pings;    /* consecutive pings with no sign of life (saturates) */
    bool tls;                /* accepted on a tls_listen socket: ext->ssl is its session */
    uint16_t close_code;     /* code of the close frame we sent */
    int fd;
    uint32_t slot;           /* connection table index, UINT32_MAX before upgrade */
    uint64_t id;             /* connection id (generation << 32 | slot) */
    struct conn_ext *ext;    /* NULL while the connection holds no partial state */
    struct pmd_stream *pmd;  /* permessage-deflate state, NULL when not negotiated */
    struct outq out;
    struct app_conn *app;    /* messaging state on ws_path, NULL elsewhere */
    int64_t deadline_ms;     /* header, close or linger deadline; 0 = none */
    int64_t next_ping_ms;    /* when the next heartbeat ping is due */
    int64_t ping_sent_us;    /* monotonic time of the unanswered ping, 0 = none */
    struct conn *prev, *next; /* the worker's list of live connections */
    struct conn *next_dead;   /* the end-of-iteration free list */
    struct conn *next_dirty;  /* the end-of-iteration flush list */
};

_Static_assert(sizeof(struct conn) == 128, "an idle connection is 128 bytes of pool");
_Static_assert(offsetof(struct conn, app) == 64, "the per-message fields fill one line");

/* Creates a connection for an accepted socket (takes fd), with a TLS session from tls_ctx
 * when it is not NULL. Returns NULL on ENOMEM. */
struct conn *conn_new(struct worker *w, int fd, const struct sockaddr_storage *peer,
                      struct ssl_ctx_st *tls_ctx);

/* c's TLS session, NULL on a plain connection. */
static inline struct ssl_st *conn_tls(const struct conn *c)
{
    return c->tls ? c->ext->ssl : NULL;
}

/*
 * Receives into dst (the worker's read buffer when c is TLS) and sets w->read_more when
 * bytes may be left. Returns bytes, 0 at the peer's end of stream, -1 with errno (EAGAIN:
 * nothing yet).
 */
ssize_t conn_recv(struct worker *w, struct conn *c, uint8_t *dst, size_t len);

/* Returns c's conn_ext, allocating it when c has none; NULL on ENOMEM. */
struct conn_ext *conn_ext(struct conn *c);

/* Frees c's conn_ext when it holds nothing any more (never in the HTTP phase). */
void conn_ext_trim(struct conn *c);

/* Marks the connection dead: socket closed at once, memory freed at the end of the
 * loop iteration (events already fetched for it are then skipped). */
void conn_kill(struct worker *w, struct conn *c);

/* Frees a dead connection (end of iteration). */
void conn_free(struct worker *w, struct conn *c);

/* Handles EPOLLIN / EPOLLOUT / errors for c. */
void conn_on_event(struct worker *w, struct conn *c, uint32_t events);

/* Sends raw bytes (HTTP responses, prepared frames). Kills c on socket failure.
 * Returns 0 or a negative code (c may then be dead). */
int conn_write(struct worker *w, struct conn *c, const struct iovec *iov, int iovcnt);

/*
 * Corking: while c is corked, its small writes (up to CONN_CORK_MAX bytes each) are
 * gathered in the worker's cork buffer instead of going to the socket one by one;
 * conn_uncork() writes them with one system call. The frame reader corks a connection
 * for the messages of one read, so replies to pipelined requests leave together. One
 * connection at a time.
 */
void conn_cork(struct worker *w, struct conn *c);
void conn_uncork(struct worker *w);

/*
 * Queues a shared, already framed block (fan-out) without writing: the connection is
 * flushed once at the end of the loop iteration (conn_flush_dirty), so every message a
 * fan-out or a ring drain brings it leaves in one writev. Returns 0 or WSD_ENOMEM (c is
 * then dead).
 */
int conn_send_block(struct worker *w, struct conn *c, struct block *blk);

/* Writes out every connection that conn_send_block() queued on in this iteration. */
void conn_flush_dirty(struct worker *w);

/*
 * Sends one WebSocket frame (FIN set) with this opcode and payload, compressing data
 * frames when permessage-deflate is on and the payload is long enough. Returns 0 or a
 * negative code (c may then be dead).
 */
int conn_send_frame(struct worker *w, struct conn *c, uint8_t opcode, const uint8_t *p,
                    size_t len);

/*
 * Starts the closing handshake: queues a close frame with code and reason, stops
 * accepting data messages and arms the close timeout. Without a close code (0) the
 * frame has an empty payload. Idempotent.
 */
void conn_ws_close(struct worker *w, struct conn *c, uint16_t code, const char *reason);

/* Ends the connection gracefully: shuts down our sending side once the output is
 * flushed, then reads and discards until EOF or the linger deadline. */
void conn_linger(struct worker *w, struct conn *c);

/* Periodic checks (timeouts, heartbeat) at time now_ms. */
void conn_tick(struct worker *w, struct conn *c, int64_t now_ms);

#endif
