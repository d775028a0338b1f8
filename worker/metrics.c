/* metrics.c - handshake counters and the Prometheus text exposition. */
#include "worker/metrics.h"
#include "core/clock.h"
#include "core/wsd.h"
#include "shm/conn_table.h"
#include "shm/ring.h"
#include "shm/seg.h"
#include "worker/worker.h"

#include <stdarg.h>
#include <stdio.h>

void metrics_count_handshake(struct worker *w)
{
    SHM_SEG_STAT_ADD(shm_seg_worker(w->seg, (uint32_t)w->id), handshakes_ok, 1);
}

void metrics_count_handshake_failure(struct worker *w, int status)
{
    struct shm_seg_worker *sw = shm_seg_worker(w->seg, (uint32_t)w->id);
    SHM_SEG_STAT_ADD(sw, handshakes_failed, 1);
    SHM_SEG_STAT_ADD(sw, handshake_failures[shm_seg_hs_bucket(status)], 1);
}

static int metrics_printf(struct buf *out, const char *fmt, ...) WSD_PRINTF(2, 3);

static int metrics_printf(struct buf *out, const char *fmt, ...)
{
    if (buf_reserve(out, 512) < 0)
        return WSD_ENOMEM;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf((char *)out->data + out->len, out->cap - out->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= out->cap - out->len)
        return WSD_ENOMEM;
    out->len += (size_t)n;
    return 0;
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

struct metrics_counter {
    const char *name;
    const char *help;
    size_t off; /* offset in struct shm_seg_worker_stats */
};

static const struct metrics_counter counters[] = {
    {"wsd_messages_in_total", "WebSocket messages received",
     offsetof(struct shm_seg_worker_stats, msgs_in)},
    {"wsd_messages_out_total", "WebSocket messages sent",
     offsetof(struct shm_seg_worker_stats, msgs_out)},
    {"wsd_bytes_in_total", "bytes received from clients",
     offsetof(struct shm_seg_worker_stats, bytes_in)},
    {"wsd_bytes_out_total", "bytes sent to clients",
     offsetof(struct shm_seg_worker_stats, bytes_out)},
    {"wsd_deliveries_total", "messages handed to a target connection",
     offsetof(struct shm_seg_worker_stats, deliveries)},
    {"wsd_delivery_failures_total", "deliveries whose target was gone",
     offsetof(struct shm_seg_worker_stats, delivery_failures)},
    {"wsd_dedup_hits_total", "publishes and sends recognised as duplicates",
     offsetof(struct shm_seg_worker_stats, dedup_hits)},
    {"wsd_ring_full_retries_total", "ring pushes that found the ring full",
     offsetof(struct shm_seg_worker_stats, ring_full_retries)},
    {"wsd_handshakes_total", "completed WebSocket handshakes",
     offsetof(struct shm_seg_worker_stats, handshakes_ok)},
    {"wsd_handshake_failures_total", "refused upgrade and plain HTTP error responses",
     offsetof(struct shm_seg_worker_stats, handshakes_failed)},
};

static const char *const close_bucket_names[SHM_SEG_CLOSE_BUCKETS] = {
    "1000", "1001", "1002", "1003", "1006", "1007", "1008",
    "1009", "1011", "4000", "4010", "4xxx", "other",
};

static int metrics_render_counter(const struct shm_seg *seg, const struct metrics_counter *mc,
                                  struct buf *out)
{
    int rc = metrics_printf(out, "# HELP %s %s\n# TYPE %s counter\n", mc->name, mc->help,
                            mc->name);
    for (uint32_t i = 0; rc == 0 && i < SHM_SEG_WORKERS; i++) {
        struct shm_seg_worker *sw = shm_seg_worker(seg, i);
        if (LOAD(sw->state) == SHM_SEG_WORKER_EMPTY)
            continue;
        _Atomic uint64_t *v = (_Atomic uint64_t *)((char *)&sw->stats + mc->off);
        rc = metrics_printf(out, "%s{worker=\"%u\"} %llu\n", mc->name, i,
                            (unsigned long long)LOAD(*v));
    }
    return rc;
}

static int metrics_render_workers(const struct shm_seg *seg, struct buf *out)
{
    int rc = metrics_printf(out, "# HELP wsd_connections open WebSocket connections\n"
                                 "# TYPE wsd_connections gauge\n");
    uint64_t restarts = 0;
    for (uint32_t i = 0; rc == 0 && i < SHM_SEG_WORKERS; i++) {
        struct shm_seg_worker *sw = shm_seg_worker(seg, i);
        if (LOAD(sw->state) == SHM_SEG_WORKER_EMPTY)
            continue;
        restarts += LOAD(sw->restarts);
        rc = metrics_printf(out, "wsd_connections{worker=\"%u\"} %u\n", i,
                            LOAD(sw->connections));
    }
    if (rc == 0)
        rc = metrics_printf(out, "# HELP wsd_worker_restarts_total workers restarted\n"
                                 "# TYPE wsd_worker_restarts_total counter\n"
                                 "wsd_worker_restarts_total %llu\n",
                            (unsigned long long)restarts);
    if (rc == 0)
        rc = metrics_printf(out, "# HELP wsd_closes_total closed connections by close code\n"
                                 "# TYPE wsd_closes_total counter\n");
    for (int b = 0; rc == 0 && b < SHM_SEG_CLOSE_BUCKETS; b++) {
        uint64_t sum = 0;
        for (uint32_t i = 0; i < SHM_SEG_WORKERS; i++)
            sum += LOAD(shm_seg_worker(seg, i)->stats.closes[b]);
        rc = metrics_printf(out, "wsd_closes_total{code=\"%s\"} %llu\n", close_bucket_names[b],
                            (unsigned long long)sum);
    }
    return rc;
}

static const char *const hs_bucket_names[SHM_SEG_HS_BUCKETS] = {
    "400", "403", "404", "405", "408", "426", "429", "431", "503", "other",
};

static uint64_t metrics_sum(const struct shm_seg *seg, size_t off)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < SHM_SEG_WORKERS; i++) {
        struct shm_seg_worker *sw = shm_seg_worker(seg, i);
        sum += LOAD(*(_Atomic uint64_t *)((char *)&sw->stats + off));
    }
    return sum;
}

/* Failures by status, drops by reason, ring fill. */
static int metrics_render_reasons(const struct shm_seg *seg, struct buf *out)
{
    int rc = metrics_printf(out, "# HELP wsd_handshake_failures_by_status_total refused upgrades "
                                 "and failed requests by HTTP status\n"
                                 "# TYPE wsd_handshake_failures_by_status_total counter\n");
    for (int b = 0; rc == 0 && b < SHM_SEG_HS_BUCKETS; b++)
        rc = metrics_printf(
            out, "wsd_handshake_failures_by_status_total{status=\"%s\"} %llu\n",
            hs_bucket_names[b],
            (unsigned long long)metrics_sum(
                seg, offsetof(struct shm_seg_worker_stats, handshake_failures) + 8 * (size_t)b));
    struct {
        const char *reason;
        uint64_t n;
    } drops[] = {
        {"target_gone", metrics_sum(seg, offsetof(struct shm_seg_worker_stats,
                                                  delivery_failures))},
        {"duplicate", metrics_sum(seg, offsetof(struct shm_seg_worker_stats, dedup_hits))},
        {"rate_limited", metrics_sum(seg, offsetof(struct shm_seg_worker_stats, rate_limited))},
        {"slow_consumer",
         metrics_sum(seg, offsetof(struct shm_seg_worker_stats, closes) +
                              8 * (size_t)SHM_SEG_CLOSE_SLOW)},
    };
    if (rc == 0)
        rc = metrics_printf(out, "# HELP wsd_drops_total messages not delivered, by reason\n"
                                 "# TYPE wsd_drops_total counter\n");
    for (size_t i = 0; rc == 0 && i < WSD_ARRAY_LEN(drops); i++)
        rc = metrics_printf(out, "wsd_drops_total{reason=\"%s\"} %llu\n", drops[i].reason,
                            (unsigned long long)drops[i].n);
    if (rc == 0)
        rc = metrics_printf(out, "# HELP wsd_ring_used_bytes bytes waiting in a worker's "
                                 "inbound ring\n# TYPE wsd_ring_used_bytes gauge\n");
    for (uint32_t i = 0; rc == 0 && i < SHM_SEG_WORKERS; i++) {
        if (LOAD(shm_seg_worker(seg, i)->state) == SHM_SEG_WORKER_EMPTY)
            continue;
        struct ring *r = shm_seg_ring(seg, i);
        rc = metrics_printf(out, "wsd_ring_used_bytes{worker=\"%u\"} %llu\n"
                                 "wsd_ring_size_bytes{worker=\"%u\"} %llu\n",
                            i, (unsigned long long)ring_used_bytes(r), i,
                            (unsigned long long)ring_size(r));
    }
    return rc;
}

/* The round-trip times of the last pong of every connection, as a histogram. */
static int metrics_render_rtt(const struct shm_seg *seg, struct buf *out)
{
    static const double bounds_ms[] = {0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500};
    uint64_t counts[WSD_ARRAY_LEN(bounds_ms) + 1] = {0}, total = 0;
    double sum_s = 0;
    uint32_t high = conn_table_high_water(seg);
    for (uint32_t i = 0; i < high; i++) {
        struct conn_table_info info;
        if (conn_table_snapshot(seg, i, &info) < 0 || info.rtt_us == 0)
            continue;
        double ms = info.rtt_us / 1000.0;
        size_t b = 0;
        while (b < WSD_ARRAY_LEN(bounds_ms) && ms > bounds_ms[b])
            b++;
        counts[b]++;
        total++;
        sum_s += ms / 1000.0;
    }
    int rc = metrics_printf(out, "# HELP wsd_rtt_seconds last ping round trip per connection\n"
                                 "# TYPE wsd_rtt_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t b = 0; rc == 0 && b < WSD_ARRAY_LEN(bounds_ms); b++) {
        cum += counts[b];
        rc = metrics_printf(out, "wsd_rtt_seconds_bucket{le=\"%g\"} %llu\n",
                            bounds_ms[b] / 1000.0, (unsigned long long)cum);
    }
    if (rc == 0)
        rc = metrics_printf(out,
                            "wsd_rtt_seconds_bucket{le=\"+Inf\"} %llu\n"
                            "wsd_rtt_seconds_sum %.6f\nwsd_rtt_seconds_count %llu\n",
                            (unsigned long long)total, sum_s, (unsigned long long)total);
    return rc;
}

int metrics_render(struct worker *w, struct buf *out)
{
    int rc = metrics_printf(out,
                            "# HELP wsd_up 1 while serving, 0 while draining\n"
                            "# TYPE wsd_up gauge\nwsd_up %d\n",
                            w->draining ? 0 : 1);
    for (size_t i = 0; rc == 0 && i < WSD_ARRAY_LEN(counters); i++)
        rc = metrics_render_counter(w->seg, &counters[i], out);
    if (rc == 0)
        rc = metrics_render_workers(w->seg, out);
    if (rc == 0)
        rc = metrics_render_reasons(w->seg, out);
    if (rc == 0)
        rc = metrics_render_rtt(w->seg, out);
    return rc;
}
