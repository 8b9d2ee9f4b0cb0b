/* history-bench.c - how fast history.c persists and answers (docs/PERFORMANCE.md).
 *
 *   build/tests/history-bench [PATH [MESSAGES [ROOMS]]]
 *
 * Records MESSAGES (default 500,000) room messages of ~60 bytes spread over
 * ROOMS (default 100) rooms into the database PATH (default a fresh file under
 * /tmp), as the hub would, then waits until all are committed, then until the
 * room and search indexes have caught up. Prints the cost on the recording
 * thread (the loop's share), the persisted messages per second (first record to
 * last commit), the indexing rate, and the round trip of a replay query (the
 * latest 50 of a room) answered through the loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"
#include "server/history.h"
#include "server/hub.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int answered;
static size_t answered_count;
static void on_done(void *arg, uint64_t cookie, const struct history_result *r)
{
    (void)arg, (void)cookie;
    answered = 1;
    answered_count = r->count;
}

int main(int argc, char **argv)
{
    char tmp[] = "/tmp/natter-hbench-XXXXXX", path[256];
    if (argc > 1) {
        snprintf(path, sizeof path, "%s", argv[1]);
    } else {
        if (!mkdtemp(tmp))
            return 1;
        snprintf(path, sizeof path, "%s/bench.db", tmp);
    }
    long n = argc > 2 ? atol(argv[2]) : 500000;
    int rooms = argc > 3 ? atoi(argv[3]) : 100;
    struct loop *l = loop_new(1024);
    char err[512];
    struct history_config cfg = {.path = path, .replay = 50};
    struct history *h = history_open(l, &cfg, err, sizeof err);
    if (!h) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    char room[32], from[32], text[128];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t id = (uint64_t)((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000) << 16;
    double t0 = now_s(), rec = 0;
    for (long i = 0; i < n; i++) {
        snprintf(room, sizeof room, "#r%ld", i % rooms);
        snprintf(from, sizeof from, "user%ld", i % 1000);
        snprintf(text, sizeof text, "%ld %ld a message of sixty bytes or so, like most chat lines", i, i * 7);
        struct hub_event ev = {.type = EV_SAY, .room = room, .from = from, .text = text, .id = ++id,
                               .time_ms = (int64_t)(id >> 16)};
        double a = now_s();
        history_record(h, &ev);
        rec += now_s() - a;
        if (i % 100000 == 99999)
            history_sync(h); /* stay within the queue's bound: a drop would not be persisted */
    }
    double t1 = now_s();
    history_sync(h);
    double t2 = now_s();
    history_settle(h);
    double t3 = now_s();
    printf("recorded %ld messages in %d rooms: %.0f ns each on the recording thread (the loop's cost)\n", n, rooms,
           rec / (double)n * 1e9);
    printf("persisted %.0f messages/s (%.2f s from the first record to the last commit)\n",
           (double)n / (t2 - t0), t2 - t0);
    printf("indexed (room index and search index brought up to date after): %.0f messages/s, "
           "%.0f including the inserts\n", (double)n / (t3 - t2), (double)n / (t3 - t0));
    (void)t1;
    double worst = 0, sum = 0;
    int q = 100;
    for (int i = 0; i < q; i++) {
        snprintf(room, sizeof room, "#r%d", i % rooms);
        answered = 0;
        double a = now_s();
        history_query(h, &(struct history_query){.sel = HQ_LATEST, .target = room, .limit = 50, .done = on_done});
        while (!answered)
            loop_turn(l, 1000);
        double d = now_s() - a;
        sum += d;
        if (d > worst)
            worst = d;
    }
    printf("replay query (latest 50 of a room, %zu returned): mean %.0f us, worst %.0f us round trip "
           "(off the loop: the loop only waits on epoll)\n", answered_count, sum / q * 1e6, worst * 1e6);
    history_close(h);
    loop_free(l);
    if (argc <= 1) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
        if (system(cmd) != 0)
            return 1;
    }
    return 0;
}
