/* bench_shared.c - natter-bench's client layout and the memory its processes share
 * (see bench.h). */
#include "bench/bench_shared.h"

#include <string.h>
#include <time.h>

_Atomic uint64_t *bench_sent(struct bench_shared *sh)
{
    return (_Atomic uint64_t *)(sh + 1);
}

struct bench_result *bench_results(struct bench_shared *sh, const struct bench_cfg *c)
{
    char *after_sent = (char *)(bench_sent(sh) + (size_t)c->rooms * c->senders);
    return (struct bench_result *)after_sent;
}

size_t bench_shared_size(const struct bench_cfg *c)
{
    size_t recv_parties = (size_t)c->procs * c->threads;
    return sizeof(struct bench_shared) + sizeof(uint64_t) * c->rooms * c->senders +
           sizeof(struct bench_result) * recv_parties;
}

void bench_split(const struct bench_cfg *c, uint32_t lo, uint32_t hi, uint32_t parts, uint32_t i,
                 uint32_t *a, uint32_t *b)
{
    uint64_t n = hi - lo, unit = c->room_size;
    if (unit > 1 && lo % unit == 0 && n % unit == 0 && n / unit >= parts) {
        uint64_t rooms = n / unit;
        *a = lo + (uint32_t)(rooms * i / parts * unit);
        *b = lo + (uint32_t)(rooms * (i + 1) / parts * unit);
    } else {
        *a = lo + (uint32_t)(n * i / parts);
        *b = lo + (uint32_t)(n * (i + 1) / parts);
    }
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_note_failure(struct bench_shared *sh, const char *msg)
{
    int expected = 0;
    if (atomic_compare_exchange_strong(&sh->failure_claimed, &expected, 1)) {
        strncpy(sh->first_failure, msg, sizeof sh->first_failure - 1);
        sh->first_failure[sizeof sh->first_failure - 1] = '\0';
    }
}
