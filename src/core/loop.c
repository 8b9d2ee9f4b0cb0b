/* loop.c - the epoll event loop (see loop.h). */
#include "core/loop.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define LOOP_BATCH 256 /* events taken per epoll_wait */

struct watch {
    uint8_t mask;
    uint8_t registered; /* we have a handler for the fd */
    uint8_t in_epoll;   /* epoll has the fd: only while mask != 0 */
    loop_io_fn *fn;
    void *data;
};

struct timer {
    long long at;      /* ms, CLOCK_MONOTONIC */
    unsigned long id;  /* ascending: timers added during a timer pass wait for the next */
    loop_hook_fn *fn;
    void *data;
};

struct hook {
    loop_hook_fn *fn;
    void *data;
};

struct loop {
    int epfd;
    int setsize;
    int stop;
    struct watch *watches; /* indexed by fd */
    struct timer *timers;  /* unordered: a server has a handful */
    size_t ntimers, captimers;
    unsigned long next_timer_id;
    struct hook *hooks;
    size_t nhooks, caphooks;
    struct epoll_event events[LOOP_BATCH];
};

long long loop_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct loop *loop_new(int setsize)
{
    struct loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->watches = calloc((size_t)setsize, sizeof *l->watches);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!l->watches || l->epfd < 0) {
        if (l->epfd >= 0)
            close(l->epfd);
        free(l->watches);
        free(l);
        return NULL;
    }
    l->setsize = setsize;
    return l;
}

void loop_free(struct loop *l)
{
    if (!l)
        return;
    close(l->epfd);
    free(l->watches);
    free(l->timers);
    free(l->hooks);
    free(l);
}

int loop_watch(struct loop *l, int fd, int mask, loop_io_fn *fn, void *data)
{
    if (fd < 0 || fd >= l->setsize) {
        errno = ERANGE;
        return -1;
    }
    struct watch *w = &l->watches[fd];
    /* A mask of 0 takes the fd out of epoll altogether: epoll reports hang-ups
     * and errors whatever the mask, and a level-triggered report that nobody
     * handles would wake the loop on every turn. */
    if (mask == 0 && w->in_epoll) {
        if (epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL) < 0)
            return -1;
        w->in_epoll = 0;
    } else if (mask != 0 && (!w->in_epoll || w->mask != mask)) {
        /* Skip the syscall when nothing changes: handlers re-assert masks often. */
        struct epoll_event ev = {0};
        ev.events = (mask & LOOP_READ ? EPOLLIN : 0) | (mask & LOOP_WRITE ? EPOLLOUT : 0);
        ev.data.fd = fd;
        if (epoll_ctl(l->epfd, w->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) < 0)
            return -1;
        w->in_epoll = 1;
    }
    w->registered = 1;
    w->mask = (uint8_t)mask;
    w->fn = fn;
    w->data = data;
    return 0;
}

void loop_unwatch(struct loop *l, int fd)
{
    if (fd < 0 || fd >= l->setsize || !l->watches[fd].registered)
        return;
    if (l->watches[fd].in_epoll)
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    l->watches[fd] = (struct watch){0};
}

/* Grow an array of n items of size sz to hold one more; 0, or -1 when out of memory. */
static int reserve(void **items, size_t n, size_t *cap, size_t sz)
{
    if (n < *cap)
        return 0;
    size_t want = *cap ? *cap * 2 : 8;
    void *p = realloc(*items, want * sz);
    if (!p)
        return -1;
    *items = p;
    *cap = want;
    return 0;
}

unsigned long loop_add_timer(struct loop *l, long ms, loop_hook_fn *fn, void *data)
{
    if (reserve((void **)&l->timers, l->ntimers, &l->captimers, sizeof *l->timers) < 0)
        return 0;
    unsigned long id = ++l->next_timer_id;
    l->timers[l->ntimers++] = (struct timer){loop_now_ms() + (ms > 0 ? ms : 0), id, fn, data};
    return id;
}

static void remove_timer(struct loop *l, size_t i)
{
    l->timers[i] = l->timers[--l->ntimers]; /* order does not matter */
}

void loop_cancel_timer(struct loop *l, unsigned long id)
{
    for (size_t i = 0; i < l->ntimers; i++) {
        if (l->timers[i].id == id) {
            remove_timer(l, i);
            return;
        }
    }
}

int loop_add_before_sleep(struct loop *l, loop_hook_fn *fn, void *data)
{
    if (reserve((void **)&l->hooks, l->nhooks, &l->caphooks, sizeof *l->hooks) < 0)
        return -1;
    l->hooks[l->nhooks++] = (struct hook){fn, data};
    return 0;
}

void loop_remove_before_sleep(struct loop *l, loop_hook_fn *fn, void *data)
{
    for (size_t i = 0; i < l->nhooks; i++) {
        if (l->hooks[i].fn == fn && l->hooks[i].data == data) {
            memmove(&l->hooks[i], &l->hooks[i + 1], (l->nhooks - i - 1) * sizeof *l->hooks);
            l->nhooks--;
            return;
        }
    }
}

void loop_stop(struct loop *l)
{
    l->stop = 1;
}

/* How long epoll may wait: until the earliest timer (-1: no timer). */
static int wait_ms(const struct loop *l)
{
    if (l->ntimers == 0)
        return -1;
    long long first = l->timers[0].at;
    for (size_t i = 1; i < l->ntimers; i++)
        if (l->timers[i].at < first)
            first = l->timers[i].at;
    long long left = first - loop_now_ms();
    return left < 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

/* Run the due timers, earliest first. A timer added by a handler (a periodic one
 * re-arming with 0 ms, say) waits for the next pass, so a pass always ends. */
static void run_timers(struct loop *l)
{
    long long now = loop_now_ms();
    unsigned long last_id = l->next_timer_id;
    for (;;) {
        size_t due = l->ntimers;
        for (size_t i = 0; i < l->ntimers; i++) {
            const struct timer *t = &l->timers[i];
            if (t->at <= now && t->id <= last_id && (due == l->ntimers || t->at < l->timers[due].at))
                due = i;
        }
        if (due == l->ntimers)
            return;
        struct timer t = l->timers[due];
        remove_timer(l, due); /* before the call: the handler may add or cancel timers */
        t.fn(l, t.data);
    }
}

/* The hooks as they were when the turn began: one may add or remove others. */
static void run_hooks(struct loop *l)
{
    size_t n = l->nhooks;
    for (size_t i = 0; i < n && i < l->nhooks && !l->stop; i++)
        l->hooks[i].fn(l, l->hooks[i].data);
}

static void dispatch(struct loop *l, const struct epoll_event *e)
{
    int fd = e->data.fd;
    int mask = 0;
    if (e->events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        mask |= LOOP_READ;
    if (e->events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        mask |= LOOP_WRITE;
    /* A handler may have unwatched (closed) this fd earlier in the same batch. */
    struct watch *w = &l->watches[fd];
    mask &= w->mask;
    if (w->registered && mask)
        w->fn(l, fd, mask, w->data);
}

int loop_turn(struct loop *l, int timeout_ms)
{
    run_hooks(l);
    if (l->stop)
        return 0;
    int wait = wait_ms(l);
    if (timeout_ms >= 0 && (wait < 0 || timeout_ms < wait))
        wait = timeout_ms;
    int n = epoll_wait(l->epfd, l->events, LOOP_BATCH, wait);
    if (n < 0 && errno != EINTR)
        return -1;
    for (int i = 0; i < n; i++)
        dispatch(l, &l->events[i]);
    run_timers(l);
    return 0;
}

int loop_run(struct loop *l)
{
    l->stop = 0;
    while (!l->stop)
        if (loop_turn(l, -1) < 0)
            return -1;
    return 0;
}
