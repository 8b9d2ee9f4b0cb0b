/* reload.h - what a reload (SIGHUP) runs, besides the limits natterd applies
 * itself: any part of the server that keeps state made from the options (TLS
 * certificates, a MOTD file) registers a function here and is called with the
 * new options once they have been read and checked. */
#ifndef NATTER_RELOAD_H
#define NATTER_RELOAD_H

struct options;

/* Return 0, or -1 after logging why (the part then keeps what it had). */
typedef int reload_fn(const struct options *o, void *arg);

/* Call fn(o, arg) on each reload, in the order added. Returns 0, or -1 when
 * out of memory. */
int reload_add(reload_fn *fn, void *arg);
/* Run every registered function; returns how many failed. */
int reload_run(const struct options *o);
/* Forget them all (at exit). */
void reload_clear(void);

#endif
