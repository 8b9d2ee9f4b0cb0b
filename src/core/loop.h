/* loop.h - a tiny epoll event loop: file events, one timer, a before-sleep hook.
 *
 * Modelled on Redis' ae.c: the loop knows nothing about clients. It calls a
 * handler when a registered descriptor is readable or writable, calls the timer
 * when it is due, and calls the before-sleep hook once per turn, just before
 * waiting (natterd flushes coalesced output there).
 */
#ifndef NATTER_LOOP_H
#define NATTER_LOOP_H

#define LOOP_READ 1
#define LOOP_WRITE 2

struct loop;
typedef void loop_io_fn(struct loop *l, int fd, int mask, void *data);
typedef void loop_hook_fn(struct loop *l, void *data);

/* setsize: one more than the highest descriptor that will be registered. */
struct loop *loop_new(int setsize);
void loop_free(struct loop *l);

/* Watch fd for mask (LOOP_READ|LOOP_WRITE); registering again replaces the mask,
 * handler and data. A mask of 0 keeps the registration but waits for nothing. */
int loop_watch(struct loop *l, int fd, int mask, loop_io_fn *fn, void *data);
void loop_unwatch(struct loop *l, int fd);

/* Call fn once, ms milliseconds from now (replacing any pending timer). */
void loop_set_timer(struct loop *l, long ms, loop_hook_fn *fn, void *data);
void loop_set_before_sleep(struct loop *l, loop_hook_fn *fn, void *data);

/* Milliseconds of CLOCK_MONOTONIC, for timers and timeouts. */
long long loop_now_ms(void);

/* Run until loop_stop. Returns 0, or -1 with errno set if epoll_wait failed. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

#endif
