/* loop.h - a tiny epoll event loop: file events, timers, before-sleep hooks.
 *
 * Modelled on Redis' ae.c: the loop knows nothing about clients. It calls a
 * handler when a registered descriptor is readable or writable, calls timers when
 * they are due, and calls every before-sleep hook once per turn, just before
 * waiting (natterd flushes coalesced output there). Any number of timers and
 * hooks can be registered; registering one never replaces another's.
 *
 * All of it runs on the loop's thread; nothing here is thread-safe.
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
/* Frees the loop and its timers and hooks (their data is the callers'). */
void loop_free(struct loop *l);

/* Watch fd for mask (LOOP_READ|LOOP_WRITE); registering again replaces the mask,
 * handler and data. A mask of 0 keeps the registration but waits for nothing.
 * A hang-up or error is reported as whichever of the two the mask asks for. */
int loop_watch(struct loop *l, int fd, int mask, loop_io_fn *fn, void *data);
void loop_unwatch(struct loop *l, int fd);

/* Call fn(l, data) once, ms milliseconds from now (0: on this turn's timer pass,
 * or the next one's if added from a timer). Returns an id for loop_cancel_timer,
 * never 0; 0 means out of memory. A periodic timer adds itself again. */
unsigned long loop_add_timer(struct loop *l, long ms, loop_hook_fn *fn, void *data);
/* Forget a timer that has not run yet; an id that ran or was cancelled is ignored. */
void loop_cancel_timer(struct loop *l, unsigned long id);

/* Call fn(l, data) on every turn, just before waiting, after the hooks added
 * before it. Returns 0, or -1 when out of memory. A hook may add or remove hooks;
 * the change takes effect on the next turn. */
int loop_add_before_sleep(struct loop *l, loop_hook_fn *fn, void *data);
void loop_remove_before_sleep(struct loop *l, loop_hook_fn *fn, void *data);

/* Milliseconds of CLOCK_MONOTONIC, for timers and timeouts. */
long long loop_now_ms(void);

/* One turn: the before-sleep hooks, then wait at most timeout_ms (-1: until the
 * next timer or event; 0: not at all) and dispatch what is ready, then due timers.
 * Returns 0, or -1 with errno set if epoll_wait failed. */
int loop_turn(struct loop *l, int timeout_ms);
/* Turn until loop_stop. Returns 0, or -1 with errno set if epoll_wait failed. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

#endif
