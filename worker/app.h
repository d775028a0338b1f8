/*
 * app.h - the messaging application behind ws_path: envelopes, authentication, groups,
 * users and delivery through the shared tables and the per-worker inbound rings
 * (PROTOCOL.md, wsd-protocol(7)).
 */
#ifndef WSD_WORKER_APP_H
#define WSD_WORKER_APP_H

#include "proto/envelope.h"
#include "proto/jwt.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct worker;
struct conn;
struct http_request;
struct lgroup;
struct route_replay;

/* One group membership of a connection; lgroup->members[pos] points back at it. */
struct app_membership {
    struct lgroup *group;
    uint32_t pos;
};

/* The application state of one connection on ws_path. */
struct app_conn {
    bool authed;              /* welcomed (as a user or anonymously) */
    bool anonymous;
    bool expired_notified;    /* token_expired sent, waiting out auth_grace */
    bool admin;
    bool taken_over;          /* a newer connection resumed this session */
    uint8_t reply_enc;        /* enum envelope_encoding of replies to the current request */
    uint8_t user_len;
    char user[JWT_MAX_SUB_LEN + 1];
    char session[ENVELOPE_MAX_SESSION_LEN + 1];
    char resume[ENVELOPE_MAX_SESSION_LEN + 1]; /* session asked for in the handshake */
    int64_t auth_deadline_ms; /* monotonic; 0 once authenticated */
    int64_t exp_s;            /* token exp (seconds since the epoch), 0 = none */
    int64_t grace_deadline_ms;
    struct jwt_claims claims;
    uint8_t *claims_buf;      /* the token payload the claim spans point into */
    double rate_tokens;       /* rate_limit token bucket */
    int64_t rate_refill_ms;
    uint32_t rate_refused;    /* messages refused in a row */
    struct app_membership *groups;
    uint32_t num_groups;
    uint32_t cap_groups;
    uint32_t user_pos;        /* index in the local user's connection list */
    struct route_replay *replay; /* channels still to replay, in order (worker/route.c) */
    uint64_t replay_bytes;    /* bytes the last replay step queued: not live output */
};

/* Sets up the worker's side of messaging; ring_efds are every slot's ring eventfd.
 * Returns 0 or a negative code. */
int app_init(struct worker *w, const int *ring_efds);
void app_fini(struct worker *w);

/* A connection finished its upgrade on ws_path; req is its request (token, session). */
void app_on_open(struct worker *w, struct conn *c, const struct http_request *req);

/* The connection is going away: leave its groups and user. */
void app_on_close(struct worker *w, struct conn *c);

/* A whole message arrived on an application connection. */
void app_on_message(struct worker *w, struct conn *c, uint8_t opcode, const uint8_t *p,
                    size_t len);

/* The ring eventfd fired: deliver what other workers sent. */
void app_on_ring(struct worker *w);

/* End of a loop iteration: commit the batch of publishes and sends, wake other workers. */
void app_flush(struct worker *w);

/* True when c may join group (token join patterns, or public_groups when anonymous). */
bool app_may_join(struct worker *w, struct conn *c, const char *group, size_t len);

/* The encoding replies to c use now (the request's frame type). */
enum envelope_encoding app_enc(const struct conn *c);

/* Sends an encoded envelope in a frame of the type matching enc. */
void app_send_enc(struct worker *w, struct conn *c, enum envelope_encoding enc,
                  const struct buf *b);

/* Sends an error envelope (id may be NULL) in the current reply encoding. */
void app_error(struct worker *w, struct conn *c, const struct envelope_id *id,
               const char *code, const char *message);

/* Per-connection timers: auth timeout, token expiry and grace. */
void app_tick(struct worker *w, struct conn *c, int64_t now_ms);

#endif
