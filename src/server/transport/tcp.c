/* tcp.c - the socket transport (see tcp.h and transport.h): read, write and
 * shutdown straight on the descriptor. */
#include "server/transport/tcp.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t tcp_read(struct transport *t, void *buf, size_t len)
{
    ssize_t n;
    do
        n = read(t->fd, buf, len);
    while (n < 0 && errno == EINTR);
    return n;
}

static ssize_t tcp_write(struct transport *t, const void *buf, size_t len)
{
    ssize_t n;
    do
        n = write(t->fd, buf, len);
    while (n < 0 && errno == EINTR);
    return n;
}

static int tcp_shutdown(struct transport *t)
{
    return shutdown(t->fd, SHUT_WR);
}

static void tcp_close(struct transport *t)
{
    close(t->fd);
    t->fd = -1;
}

const struct transport_ops tcp_ops = {
    .name = "tcp",
    .read = tcp_read,
    .write = tcp_write,
    .shutdown = tcp_shutdown,
    .close = tcp_close,
};

void tcp_init(struct transport *t, int fd)
{
    t->ops = &tcp_ops;
    t->fd = fd;
}

void tcp_refuse(int fd, const char *text)
{
    ssize_t n = write(fd, text, strlen(text));
    (void)n;
    close(fd);
}
