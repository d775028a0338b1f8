/*
 * route.h - where messages go: the worker's local group and user indexes, the batch of
 * store writes committed once per loop iteration, the per-worker inbound rings and the
 * fan-out that encodes a frame once and queues it on every local target.
 *
 * Ordering. A channel's offsets are assigned by the store inside the batch's write
 * transaction, and the ring records of that batch are pushed before it commits, while
 * the store's writer lock is held: so records of one channel enter every ring in offset
 * order. A join or a login reads its channel position inside a batch too, after the
 * connection was registered in the shared tables, so a message is either in what it
 * reads or comes through the ring afterwards. Each membership remembers the last offset
 * it delivered, which drops anything the replay already covered.
 *
 * Replays are paced by the socket: a membership being replayed stays unpositioned, so
 * the ring's records of its channel pass it by, and steps read the store as the
 * connection's output queue drains; the last step, inside a batch like a join, positions
 * it at the channel's latest offset (route.c, "paced replays").
 */
#ifndef WSD_WORKER_ROUTE_H
#define WSD_WORKER_ROUTE_H

#include "proto/envelope.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

struct worker;
struct conn;

struct route_position {
    uint64_t offset;
    char epoch[STORE_EPOCH_LEN + 1];
};

/* Opens the store, sets up the rings and eventfds. Returns 0 or a negative code. */
int route_init(struct worker *w, const int *ring_efds);
void route_fini(struct worker *w);

/* The latest offset and epoch of user's personal channel (zero when unknown). */
void route_personal_position(struct worker *w, const char *user, size_t len,
                             struct route_position *out);

/* Registers c under its user (shared user index and the local one). */
int route_user_attach(struct worker *w, struct conn *c);
void route_user_detach(struct worker *w, struct conn *c);

/*
 * Queues a login of c (its user is set and attached): in the batch, resumes session
 * `resume` (NULL: none) when it exists and belongs to the user, answers with the welcome
 * (id: the auth's, or NULL), then delivers the unacknowledged personal messages and the
 * restored groups' missed messages. since is auth's since map (may be NULL).
 */
void route_login(struct worker *w, struct conn *c, const char *resume,
                 const struct envelope_value *since, const struct envelope_id *id);

/* Saves c's session (groups and positions) when the connection ends. */
void route_session_close(struct worker *w, struct conn *c);
/* Drops c's replays still to come (the connection is going away; after the session save). */
void route_replay_cancel(struct conn *c);

/* join: registers the membership, then (in the batch) answers with the group's position
 * and replays from env->since when given. */
void route_join(struct worker *w, struct conn *c, const char *group, size_t len,
                const struct envelope *env);
/* leave: returns 0, or WSD_ENOENT when c is not a member. */
int route_leave(struct worker *w, struct conn *c, const char *group, size_t len);
void route_leave_all(struct worker *w, struct conn *c);

void route_publish(struct worker *w, struct conn *c, const char *group, size_t len,
                   const struct envelope *env);
void route_send(struct worker *w, struct conn *c, const char *user, size_t len,
                const struct envelope *env);
void route_broadcast(struct worker *w, struct conn *c, const struct envelope *env);
void route_ack(struct worker *w, struct conn *c, uint64_t offset, const struct envelope_id *id);
void route_presence(struct worker *w, struct conn *c, const char *group, size_t len,
                    const struct envelope_id *id);

/*
 * A system message from the operator (the master's control socket puts it in the rings;
 * this is the worker side): kind 'a' all, 'g' group, 'u' user.
 */

/* Drains this worker's ring. */
void route_on_ring(struct worker *w);

/* Commits the batch, answers its requests, wakes the workers that got records. */
void route_flush(struct worker *w);

#endif
