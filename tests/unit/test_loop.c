/* test_loop.c - the event loop (core/loop.c): descriptors, any number of timers
 * and before-sleep hooks, none replacing another. */
#include "core/loop.h"

#include <unistd.h>

#include "check.h"

static char order[64];
static int norder;
static int fired[8];

static void note(char ch)
{
    if (norder < (int)sizeof order - 1)
        order[norder++] = ch, order[norder] = '\0';
}

static void timer_fn(struct loop *l, void *data)
{
    (void)l;
    int i = (int)(long)data;
    fired[i]++;
    note((char)('0' + i));
}

static void hook_fn(struct loop *l, void *data)
{
    (void)l;
    note(*(const char *)data);
}

static int rearms;
static void rearm_fn(struct loop *l, void *data)
{
    (void)data;
    rearms++;
    loop_add_timer(l, 0, rearm_fn, NULL); /* a periodic timer at 0 ms: must not spin one pass forever */
}

static int readable;
static void on_read(struct loop *l, int fd, int mask, void *data)
{
    (void)l, (void)data;
    char b[16];
    readable += mask & LOOP_READ ? 1 : 0;
    if (read(fd, b, sizeof b) <= 0)
        readable += 100;
}

static void stop_fn(struct loop *l, void *data)
{
    (void)data;
    loop_stop(l);
}

int main(void)
{
    struct loop *l = loop_new(64);
    CHECK(l != NULL, "loop_new");

    /* Timers: several pending, run earliest first, cancel one. The clock is read
     * before the first is added: read after, a pause in between (a loaded
     * machine, ASan) made the 30 ms timer look early. */
    long long start = loop_now_ms();
    unsigned long t1 = loop_add_timer(l, 30, timer_fn, (void *)1);
    unsigned long t2 = loop_add_timer(l, 10, timer_fn, (void *)2);
    unsigned long t3 = loop_add_timer(l, 20, timer_fn, (void *)3);
    CHECK(t1 && t2 && t3 && t1 != t2 && t2 != t3, "loop_add_timer returns distinct non-zero ids");
    loop_cancel_timer(l, t3);
    loop_cancel_timer(l, 999999); /* unknown: ignored */
    while ((fired[1] == 0 || fired[2] == 0) && loop_now_ms() - start < 2000)
        loop_turn(l, -1);
    CHECK(fired[1] == 1 && fired[2] == 1 && fired[3] == 0, "due timers run once each; a cancelled one never");
    CHECK(strcmp(order, "21") == 0, "timers run in the order they are due");
    CHECK(loop_now_ms() - start >= 29, "a timer does not run before its time");

    /* Hooks: every turn, in the order added; adding one never replaces another. */
    norder = 0, order[0] = '\0';
    static const char a = 'a', b = 'b';
    CHECK(loop_add_before_sleep(l, hook_fn, (void *)&a) == 0 && loop_add_before_sleep(l, hook_fn, (void *)&b) == 0,
          "two before-sleep hooks can be added");
    loop_turn(l, 0);
    loop_turn(l, 0);
    CHECK(strcmp(order, "abab") == 0, "every hook runs once per turn, in the order added");
    loop_remove_before_sleep(l, hook_fn, (void *)&a);
    norder = 0, order[0] = '\0';
    loop_turn(l, 0);
    CHECK(strcmp(order, "b") == 0, "a removed hook no longer runs; the other still does");
    loop_remove_before_sleep(l, hook_fn, (void *)&b);

    /* A timer that re-adds itself at 0 ms runs once per turn, not forever. */
    loop_add_timer(l, 0, rearm_fn, NULL);
    loop_turn(l, 0);
    loop_turn(l, 0);
    CHECK(rearms == 2, "a timer added by a timer waits for the next turn");

    /* Descriptors, and loop_run until loop_stop. */
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    CHECK(loop_watch(l, p[0], LOOP_READ, on_read, NULL) == 0, "loop_watch");
    if (write(p[1], "x", 1) != 1)
        return 1;
    loop_turn(l, 100);
    CHECK(readable == 1, "a readable descriptor calls its handler");
    loop_unwatch(l, p[0]);
    if (write(p[1], "y", 1) != 1)
        return 1;
    loop_turn(l, 0);
    CHECK(readable == 1, "an unwatched descriptor calls nothing");
    close(p[0]), close(p[1]);
    loop_add_timer(l, 1, stop_fn, NULL);
    CHECK(loop_run(l) == 0, "loop_run returns 0 after loop_stop");
    loop_free(l); /* frees the pending rearm timer (LeakSanitizer) */
    return check_done();
}
