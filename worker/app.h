/*
 * app.h - the messaging application behind ws_path: envelopes, auth, groups, delivery
 * through the shared tables and the per-worker inbound ring (PROTOCOL.md).
 */
#ifndef WSD_WORKER_APP_H
#define WSD_WORKER_APP_H

#include <stddef.h>
#include <stdint.h>

struct worker;
struct conn;

/* Sets up the worker's side of messaging; ring_efd is this worker's ring eventfd.
 * Returns 0 or a negative code. */
int app_init(struct worker *w, int ring_efd);
void app_fini(struct worker *w);

/* A connection finished its upgrade on ws_path. */
void app_on_open(struct worker *w, struct conn *c);

/* A whole message arrived on an application connection. */
void app_on_message(struct worker *w, struct conn *c, uint8_t opcode, const uint8_t *p,
                    size_t len);

/* The ring eventfd fired: deliver what other workers sent. */
void app_on_ring(struct worker *w);

/* End of a loop iteration: push pending ring records, commit batched store writes. */
void app_flush(struct worker *w);

#endif
