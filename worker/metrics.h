/*
 * metrics.h - counters kept in the shared worker slots and the Prometheus text served
 * at metrics_path.
 */
#ifndef WSD_WORKER_METRICS_H
#define WSD_WORKER_METRICS_H

#include "core/buf.h"

struct worker;

void metrics_count_handshake(struct worker *w);
void metrics_count_handshake_failure(struct worker *w, int status);

/* Appends the Prometheus text exposition of the whole server to out.
 * Returns 0 or WSD_ENOMEM. */
int metrics_render(struct worker *w, struct buf *out);

#endif
