/*
 * http_conn.h - the HTTP phase of a connection: read the request head, answer the plain
 * endpoints (/healthz, /metrics, the JavaScript client) and upgrade the WebSocket ones.
 */
#ifndef WSD_WORKER_HTTP_CONN_H
#define WSD_WORKER_HTTP_CONN_H

#include <stddef.h>

struct worker;
struct conn;

/* Reads request bytes and acts once the head is complete. */
void http_conn_on_readable(struct worker *w, struct conn *c);

/* Answers with an error status and a one-line text body, then lingers. */
void http_conn_fail(struct worker *w, struct conn *c, int status, const char *why);

/* A plain HTTP request came to a TLS listener: answers 400 in plain HTTP, once (the
 * connection ends with the failed handshake). */
void http_conn_plain_on_tls(struct worker *w, struct conn *c);

/* c's peer as "ADDR:PORT" ("[ADDR]:PORT" for IPv6) in out, while c still knows it (the
 * HTTP phase); "-" after. Returns out. */
const char *http_conn_remote(const struct conn *c, char *out, size_t cap);

#endif
