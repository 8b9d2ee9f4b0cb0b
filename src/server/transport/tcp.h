/* tcp.h - the socket transport: a connected, non-blocking TCP (or Unix) socket. */
#ifndef NATTER_TCP_H
#define NATTER_TCP_H

#include "server/transport/transport.h"

extern const struct transport_ops tcp_ops;

/* Make t the transport of socket fd (which it then owns and closes). */
void tcp_init(struct transport *t, int fd);

/* Write text to a socket that is not served (refused at accept), and close it.
 * Best effort: the socket is new and its buffer empty, so a line fits. */
void tcp_refuse(int fd, const char *text);

#endif
