/* bench_hist.c - log-linear latency histogram (see bench_hist.h). */
#include "bench/bench_hist.h"

#include <string.h>

void hist_clear(struct hist *h)
{
    memset(h, 0, sizeof *h);
}

/* Values below 64 get a bucket each; above, the top bit picks a group of 64
 * buckets and the next 6 bits pick one of them. */
static unsigned bucket_of(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned top = 63u - (unsigned)__builtin_clzll(v);
    if (top >= HIST_TOP_BIT)
        return HIST_BUCKETS - 1;
    unsigned shift = top - HIST_SUB_BITS;
    return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) & (HIST_SUB - 1));
}

/* The middle of a bucket's range: what we report for samples in it. */
static uint64_t value_of(unsigned b)
{
    if (b < HIST_SUB)
        return b;
    unsigned shift = b / HIST_SUB - 1;
    uint64_t low = (uint64_t)(HIST_SUB + b % HIST_SUB) << shift;
    return low + ((1ull << shift) >> 1);
}

void hist_add(struct hist *h, uint64_t ns)
{
    h->bucket[bucket_of(ns)]++;
    h->count++;
    if (ns > h->max)
        h->max = ns;
}

void hist_merge(struct hist *into, const struct hist *from)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->bucket[i] += from->bucket[i];
    into->count += from->count;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q >= 1.0)
        return h->max;
    /* The rank of the sample we want, 1-based: ceil(q * count). */
    uint64_t rank = (uint64_t)(q * (double)h->count);
    if ((double)rank < q * (double)h->count)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t v = value_of(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}
