/*
 * heartbeat.h - keeping connections alive: a ping every `heartbeat` seconds per
 * connection (spread over the interval by connection), RTT from the pong, and close 4000
 * after more than `heartbeat_misses` consecutive pings with no sign of life in between.
 * Any frame from the client is a sign of life.
 */
#ifndef WSD_WORKER_HEARTBEAT_H
#define WSD_WORKER_HEARTBEAT_H

#include <stddef.h>
#include <stdint.h>

struct worker;
struct conn;

#define HEARTBEAT_CLOSE_CODE 4000

/* Schedules the first ping of a new WebSocket connection. */
void heartbeat_start(struct worker *w, struct conn *c);

/* Records that bytes arrived from the client now. */
void heartbeat_on_sign_of_life(struct worker *w, struct conn *c);

/* Records a pong; when it answers our ping, its round-trip time. */
void heartbeat_on_pong(struct worker *w, struct conn *c, const uint8_t *p, size_t len);

/* Sends the ping when due; closes with 4000 when too many were missed. */
void heartbeat_tick(struct worker *w, struct conn *c, int64_t now_ms);

#endif
