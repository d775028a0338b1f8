/*
 * table.h - a worker's writes into the shared segment: its connections' slots in the
 * connection table (taken at upgrade, released at close) and its worker slot's
 * statistics. Only the owning worker writes a slot; wsctl and the master read.
 */
#ifndef WSD_WORKER_TABLE_H
#define WSD_WORKER_TABLE_H

#include <stdint.h>

struct worker;
struct conn;
struct conn_table_addr;
struct sockaddr_storage;

enum table_state {
    TABLE_STATE_CONNECTING = 1,
    TABLE_STATE_CONNECTED,
    TABLE_STATE_CLOSING,
};

/* Marks the worker slot running (unless the master marked it retiring meanwhile).
 * Returns 0. */
int table_worker_start(struct worker *w);
/* Marks the worker slot stopping (its process is about to exit). */
void table_worker_stop(struct worker *w);
/*
 * Once per tick: loop liveness, and close requests from the master: a heartbeat timeout
 * (4000; dropped when the connection showed a sign of life since, see heartbeat.h) or
 * an operator's close with its code.
 */
void table_worker_tick(struct worker *w);

/* A socket address as the connection table stores it (family 0 when neither IPv4 nor 6). */
void table_peer_addr(const struct sockaddr_storage *ss, struct conn_table_addr *a);

/* Takes a connection slot for c (sets c->slot and c->id). Returns 0; WSD_ETOOBIG when
 * the client address has max_connections_per_ip connections; WSD_ENOSPC or WSD_EBROKEN. */
int table_conn_acquire(struct worker *w, struct conn *c);
/* Releases c's slot, if it has one, counting its close code. */
void table_conn_release(struct worker *w, struct conn *c);

/* Starts loading the line of c's slot that per-message accounting writes (so the miss is
 * taken while the socket read runs, not after it). */
void table_conn_prefetch(struct worker *w, struct conn *c);

/* Records the user-index entry of c's user (UINT32_MAX: none). */
void table_conn_set_user(struct worker *w, struct conn *c, uint32_t user_index);
/* Records CONN_TABLE_F_* bits of c in its slot (wsctl shows them). */
void table_conn_add_flags(struct worker *w, struct conn *c, uint32_t flags);
void table_conn_state(struct worker *w, struct conn *c, enum table_state state);
void table_conn_seen(struct worker *w, struct conn *c, int64_t now_ms);
void table_conn_ping(struct worker *w, struct conn *c, int64_t now_ms);
void table_conn_rtt(struct worker *w, struct conn *c, uint32_t rtt_us);
void table_conn_missed(struct worker *w, struct conn *c, uint32_t missed);
void table_conn_count_in(struct worker *w, struct conn *c, uint64_t bytes);
void table_conn_count_out(struct worker *w, struct conn *c, uint64_t bytes);
void table_conn_count_msg_in(struct worker *w, struct conn *c);
void table_conn_count_msg_out(struct worker *w, struct conn *c);

#endif
