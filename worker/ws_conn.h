/*
 * ws_conn.h - the WebSocket phase of a connection: frames in, messages to the route
 * (echo or the messaging application), control frames, heartbeat pings, closing.
 */
#ifndef WSD_WORKER_WS_CONN_H
#define WSD_WORKER_WS_CONN_H

#include <stddef.h>
#include <stdint.h>

struct worker;
struct conn;
struct hs_result;
struct http_request;

/* Enters the WebSocket phase after the 101 response was queued. */
void ws_conn_start(struct worker *w, struct conn *c, const struct hs_result *res,
                   const struct http_request *req);

/* Reads from the socket into the worker's buffer and feeds the frame reader. */
void ws_conn_on_readable(struct worker *w, struct conn *c);

/* Feeds bytes already read (pipelined after the request head). */
void ws_conn_feed(struct worker *w, struct conn *c, uint8_t *p, size_t len);

/* Fails the connection: close frame with code, then lingering close. */
void ws_conn_fail(struct worker *w, struct conn *c, uint16_t code, const char *why);

/* Heartbeat: sends a ping when due, closes with 4000 after too many missed pings. */
void ws_conn_tick(struct worker *w, struct conn *c, int64_t now_ms);

#endif
