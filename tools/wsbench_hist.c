/* wsbench_hist.c - log-bucketed histogram: 64 linear buckets, then 32 per power of two. */
#include "tools/wsbench_hist.h"

#include <string.h>

#define SUB_COUNT (1u << WSBENCH_HIST_SUB_BITS)

void wsbench_hist_init(struct wsbench_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

unsigned wsbench_hist_index(uint64_t v)
{
    if (v < WSBENCH_HIST_LINEAR)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* 6..63 */
    unsigned sub = (unsigned)(v >> (e - WSBENCH_HIST_SUB_BITS)) & (SUB_COUNT - 1);
    return WSBENCH_HIST_LINEAR + (e - 6) * SUB_COUNT + sub;
}

uint64_t wsbench_hist_bucket_low(unsigned idx)
{
    if (idx < WSBENCH_HIST_LINEAR)
        return idx;
    unsigned k = idx - WSBENCH_HIST_LINEAR;
    unsigned e = 6 + k / SUB_COUNT;
    uint64_t sub = k % SUB_COUNT;
    return (SUB_COUNT + sub) << (e - WSBENCH_HIST_SUB_BITS);
}

/* Width of a bucket: 1 in the linear part, 2^(e-5) above. */
static uint64_t bucket_width(unsigned idx)
{
    if (idx < WSBENCH_HIST_LINEAR)
        return 1;
    unsigned e = 6 + (idx - WSBENCH_HIST_LINEAR) / SUB_COUNT;
    return (uint64_t)1 << (e - WSBENCH_HIST_SUB_BITS);
}

void wsbench_hist_add(struct wsbench_hist *h, uint64_t v)
{
    h->buckets[wsbench_hist_index(v)]++;
    h->count++;
    if (v > h->max)
        h->max = v;
    if (v < h->min)
        h->min = v;
    h->sum = (h->sum + v < h->sum) ? UINT64_MAX : h->sum + v;
}

void wsbench_hist_merge(struct wsbench_hist *dst, const struct wsbench_hist *src)
{
    for (unsigned i = 0; i < WSBENCH_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    if (src->max > dst->max)
        dst->max = src->max;
    if (src->min < dst->min)
        dst->min = src->min;
    dst->sum = (dst->sum + src->sum < dst->sum) ? UINT64_MAX : dst->sum + src->sum;
}

uint64_t wsbench_hist_quantile(const struct wsbench_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q > 1.0)
        q = 1.0;
    double want = q * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    if (rank >= h->count)
        return h->max;
    uint64_t seen = 0;
    for (unsigned i = 0; i < WSBENCH_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = wsbench_hist_bucket_low(i) + bucket_width(i) / 2;
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}
