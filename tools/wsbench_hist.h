/*
 * wsbench_hist.h - a log-bucketed latency histogram for wsbench (HdrHistogram-like):
 * values below 64 have a bucket each; above, every power of two is split into 32
 * sub-buckets, so a reported value is within about 3 % of the true one. Fixed size, no
 * allocation, plain counters: one per thread, merged at the end (also across processes,
 * since it holds no pointers and can live in shared memory).
 */
#ifndef WSD_TOOLS_WSBENCH_HIST_H
#define WSD_TOOLS_WSBENCH_HIST_H

#include <stdint.h>

#define WSBENCH_HIST_SUB_BITS 5
#define WSBENCH_HIST_LINEAR 64
#define WSBENCH_HIST_BUCKETS (WSBENCH_HIST_LINEAR + (64 - 6) * (1 << WSBENCH_HIST_SUB_BITS))

struct wsbench_hist {
    uint64_t count;
    uint64_t max;
    uint64_t min;
    uint64_t sum; /* saturating: only for a mean */
    uint64_t buckets[WSBENCH_HIST_BUCKETS];
};

/* Empties h. */
void wsbench_hist_init(struct wsbench_hist *h);

/* Records one value (any uint64_t). */
void wsbench_hist_add(struct wsbench_hist *h, uint64_t v);

/* Adds every count of src into dst. */
void wsbench_hist_merge(struct wsbench_hist *dst, const struct wsbench_hist *src);

/*
 * Returns the value at quantile q (0 < q <= 1): the middle of the bucket holding the
 * ceil(q * count)-th smallest value, kept within [min, max]; the maximum itself when that
 * is the largest value. 0 when empty.
 */
uint64_t wsbench_hist_quantile(const struct wsbench_hist *h, double q);

/* Bucket index of v, and the smallest value of a bucket (exposed for tests). */
unsigned wsbench_hist_index(uint64_t v);
uint64_t wsbench_hist_bucket_low(unsigned idx);

#endif
