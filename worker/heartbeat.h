/*
 * heartbeat.h - keeping connections alive: a ping every `heartbeat` seconds per
 * connection (spread over the interval by connection), RTT from the pong, and the count
 * of consecutive missed pings. Any frame from the client is a sign of life; its time
 * goes into the connection table (last_seen_ms), with the RTT and the missed count.
 *
 * Who closes. The master decides: once a second it scans the connection table and asks
 * the owning worker (conn_table_request_close) to close with 4000 every connected
 * connection whose last sign of life is older than heartbeat_timeout_ms(). The worker
 * only pings and records; it acts on the request in table_worker_tick() unless a sign
 * of life arrived since the master's scan. So a silent connection is closed between
 * heartbeat x (heartbeat_misses + 1) and that plus about 1.1 s (the scan period and one
 * worker tick) after its last sign of life: inside the window wsd-protocol(7) gives,
 * which ends at heartbeat x (heartbeat_misses + 2) + 1 s.
 */
#ifndef WSD_WORKER_HEARTBEAT_H
#define WSD_WORKER_HEARTBEAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct worker;
struct conn;

#define HEARTBEAT_CLOSE_CODE 4000

/*
 * How long a connection may stay silent before it is closed with 4000:
 * heartbeat x (heartbeat_misses + 1) seconds, in ms. The one place this rule lives.
 */
int64_t heartbeat_timeout_ms(const struct config *cfg);

/* True when a connection last seen at last_seen_ms is overdue at now_ms under cfg. */
bool heartbeat_is_overdue(const struct config *cfg, int64_t last_seen_ms, int64_t now_ms);

/* Schedules the first ping of a new WebSocket connection. */
void heartbeat_start(struct worker *w, struct conn *c);

/*
 * After a reload shortened the interval: brings c's next ping forward to where a new
 * connection's first ping would fall, so the new rhythm starts at once.
 */
void heartbeat_reschedule(struct worker *w, struct conn *c);

/* Records that bytes arrived from the client now. */
void heartbeat_on_sign_of_life(struct worker *w, struct conn *c);

/* Records a pong; when it answers our ping, its round-trip time. */
void heartbeat_on_pong(struct worker *w, struct conn *c, const uint8_t *p, size_t len);

/* Sends the ping when due, counting it as missed when nothing arrived since the last. */
void heartbeat_tick(struct worker *w, struct conn *c, int64_t now_ms);

#endif
