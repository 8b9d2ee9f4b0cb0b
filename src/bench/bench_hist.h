/* bench_hist.h - a latency histogram for natter-bench.
 *
 * Log-linear buckets, like HdrHistogram: 64 equal sub-buckets per power of two, so
 * any recorded value is reported within 1/64 (1.6%) of its true value, from 1 ns to
 * about 18 minutes, in a fixed 18 KB array that merges by adding. The array is a
 * plain struct (no pointers) so workers can fill it in shared memory and the parent
 * can add them up after the workers have exited.
 */
#ifndef NATTER_BENCH_HIST_H
#define NATTER_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 6
#define HIST_SUB (1 << HIST_SUB_BITS)
#define HIST_TOP_BIT 40 /* values at or above 2^40 ns are counted in the last bucket */
#define HIST_BUCKETS ((HIST_TOP_BIT - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
    uint64_t count;
    uint64_t max; /* exact, in ns */
    uint64_t bucket[HIST_BUCKETS];
};

void hist_clear(struct hist *h);
void hist_add(struct hist *h, uint64_t ns);
void hist_merge(struct hist *into, const struct hist *from);
/* The value (ns) below which a fraction q (0..1) of the samples lie; 0 when empty.
 * q = 1 gives the exact maximum. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif
