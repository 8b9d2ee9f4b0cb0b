/* bench_worker.h - one natter-bench worker process: its clients, their threads and
 * the checking of everything they receive (bench_worker.c). */
#ifndef NATTER_BENCH_WORKER_H
#define NATTER_BENCH_WORKER_H

#include <stdint.h>

#include "bench/bench_shared.h"

/* Run worker process number proc: connect its clients, take part in the phases the
 * parent sets, write results into shared memory. Returns the process exit status. */
int bench_worker_main(const struct bench_cfg *c, struct bench_shared *sh, uint32_t proc);

#endif
