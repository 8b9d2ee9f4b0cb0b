/* net.h - socket helpers: listen, accept, connect, address formatting.
 *
 * Like Redis' anet.c: helpers report errors into a caller's buffer and return -1;
 * they never print and never exit. The caller decides what to log.
 */
#ifndef NATTER_NET_H
#define NATTER_NET_H

#include <stddef.h>
#include <sys/socket.h>

#define NET_ERR_LEN 256
#define NET_ADDR_LEN 64 /* "[ffff:...:ffff]:65535" fits */

/* Listen on host:port (host NULL or "" = all addresses, IPv6 and IPv4 where possible;
 * port 0 = any free port). Returns a non-blocking listening fd or -1 with err set. */
int net_listen(const char *host, int port, int backlog, char *err);

/* The numeric addresses a name to listen on stands for ("localhost": "::1" and
 * "127.0.0.1"), without duplicates, at most max. Returns how many, or -1 with
 * err set. */
int net_resolve_passive(const char *host, char (*addrs)[NET_ADDR_LEN], int max, char *err);

/* Accept one connection: returns a non-blocking, close-on-exec fd, or -1 with errno
 * set (EAGAIN when there is none; EMFILE/ENFILE when out of descriptors). The peer
 * address is formatted into addr (NET_ADDR_LEN) when addr is not NULL. */
int net_accept(int lfd, char *addr);

/* Blocking connect to host:port, trying every address the name resolves to.
 * Returns a connected fd or -1 with err set ("connect 127.0.0.1:8888: Connection refused"). */
int net_connect(const char *host, const char *port, char *err);

int net_set_nonblock(int fd, int on);
int net_set_nodelay(int fd);
int net_set_keepalive(int fd, int idle_secs);

/* "127.0.0.1:8888" or "[::1]:8888" for a socket's local (net_local_addr) or peer address. */
void net_format_addr(const struct sockaddr *sa, char *out, size_t len);
int net_local_addr(int fd, char *out, size_t len);
int net_local_port(int fd);

/* Split "[ADDR]:PORT", "ADDR:PORT" or "PORT" into host (may become "") and port. */
int net_split_hostport(const char *s, char *host, size_t hostlen, char *port, size_t portlen);

#endif
