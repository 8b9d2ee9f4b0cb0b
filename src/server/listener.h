/* listener.h - where natterd listens: an address and a port, and the terms its
 * connections are served on (a conn_profile: transport, codec, limits). natterd
 * may have several (each --bind address; later the IRC, TLS and HTTP ports). */
#ifndef NATTER_LISTENER_H
#define NATTER_LISTENER_H

struct loop;
struct listener;
struct conn_profile;

/* Shared by all listeners: at most max_clients connections in all. Returns 0, or
 * -1 with errno set. */
int listener_init(struct loop *l, long max_clients);
void listener_done(void);

/* Listen on host:port (host NULL or "": every address, IPv6 and IPv4; port 0:
 * any free one) for connections served on the terms of p, which must outlive the
 * listener; keepalive: seconds of TCP keepalive idle time, 0 = off. Returns
 * NULL with err (NET_ERR_LEN) set on failure. */
struct listener *listener_open(const char *host, int port, const struct conn_profile *p, int keepalive, char *err);
void listener_close(struct listener *li);
/* Where it listens: "127.0.0.1:8888", "[::]:8888". */
const char *listener_addr(const struct listener *li);
int listener_port(const struct listener *li);
/* Whether it was opened for this numeric host. */
int listener_host_is(const struct listener *li, const char *host);

#endif
