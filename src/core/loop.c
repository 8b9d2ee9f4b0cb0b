/* loop.c - the epoll event loop (see loop.h). */
#include "core/loop.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
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

struct loop {
    int epfd;
    int setsize;
    int stop;
    struct watch *watches; /* indexed by fd */
    long long timer_at;    /* ms; 0 = no timer */
    loop_hook_fn *timer_fn;
    void *timer_data;
    loop_hook_fn *before_sleep;
    void *before_sleep_data;
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

void loop_set_timer(struct loop *l, long ms, loop_hook_fn *fn, void *data)
{
    l->timer_at = loop_now_ms() + ms;
    l->timer_fn = fn;
    l->timer_data = data;
}

void loop_set_before_sleep(struct loop *l, loop_hook_fn *fn, void *data)
{
    l->before_sleep = fn;
    l->before_sleep_data = data;
}

void loop_stop(struct loop *l)
{
    l->stop = 1;
}

static int wait_ms(const struct loop *l)
{
    if (!l->timer_at)
        return -1;
    long long left = l->timer_at - loop_now_ms();
    return left < 0 ? 0 : (int)left;
}

static void run_timer(struct loop *l)
{
    if (l->timer_at && loop_now_ms() >= l->timer_at) {
        l->timer_at = 0; /* the handler may set it again */
        l->timer_fn(l, l->timer_data);
    }
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

int loop_run(struct loop *l)
{
    l->stop = 0;
    while (!l->stop) {
        if (l->before_sleep)
            l->before_sleep(l, l->before_sleep_data);
        if (l->stop)
            break;
        int n = epoll_wait(l->epfd, l->events, LOOP_BATCH, wait_ms(l));
        if (n < 0 && errno != EINTR)
            return -1;
        for (int i = 0; i < n; i++)
            dispatch(l, &l->events[i]);
        run_timer(l);
    }
    return 0;
}
