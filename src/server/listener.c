/* listener.c - listening sockets and accepting their connections (see listener.h). */
#include "server/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/net.h"
#include "server/conn.h"

#define ACCEPTS_PER_TURN 64

struct listener {
    int fd;
    int keepalive;
    const struct conn_profile *profile;
    char addr[NET_ADDR_LEN];
    char host[NET_ADDR_LEN]; /* as asked for: "" for every address */
};

static struct {
    struct loop *loop;
    long max_clients;
    int spare_fd; /* closed to accept-and-refuse when out of descriptors */
    long long full_logged_ms;
} L = {.spare_fd = -1};

int listener_init(struct loop *l, long max_clients)
{
    L.loop = l;
    L.max_clients = max_clients;
    L.full_logged_ms = 0;
    L.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return L.spare_fd < 0 ? -1 : 0;
}

void listener_done(void)
{
    if (L.spare_fd >= 0)
        close(L.spare_fd);
    L.spare_fd = -1;
}

/* Out of descriptors: accept with the spare one and close at once, so the client
 * hears "server full" instead of waiting in the backlog, and the listener stops
 * reporting readable (which would spin the loop at 100% CPU). */
static void accept_when_out_of_fds(struct listener *li)
{
    long long now = loop_now_ms();
    if (now - L.full_logged_ms > 1000) {
        log_errno("accept");
        L.full_logged_ms = now;
    }
    if (L.spare_fd < 0)
        return;
    close(L.spare_fd);
    int fd = net_accept(li->fd, NULL);
    if (fd >= 0)
        conn_refuse(fd, NULL, li->profile, LIMIT_FULL, NULL);
    L.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void on_accept(struct loop *l, int lfd, int mask, void *data)
{
    (void)l, (void)lfd, (void)mask;
    struct listener *li = data;
    for (int i = 0; i < ACCEPTS_PER_TURN; i++) {
        char peer[NET_ADDR_LEN];
        int fd = net_accept(li->fd, peer);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                accept_when_out_of_fds(li);
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED)
                log_errno("accept");
            return;
        }
        if ((long)conn_count() >= L.max_clients) {
            conn_refuse(fd, peer, li->profile, LIMIT_FULL, "server full");
            continue;
        }
        net_set_nodelay(fd); /* chat lines are small and latency matters */
        if (li->keepalive)
            net_set_keepalive(fd, li->keepalive); /* reaps peers that vanished without a FIN */
        struct conn *c = conn_new(fd, peer, li->profile);
        if (c)
            log_info("connect %s (%zu client%s)", conn_describe(c), conn_count(), conn_count() == 1 ? "" : "s");
    }
}

struct listener *listener_open(const char *host, int port, const struct conn_profile *p, int keepalive, char *err)
{
    struct listener *li = calloc(1, sizeof *li);
    if (!li) {
        snprintf(err, NET_ERR_LEN, "listen: out of memory");
        return NULL;
    }
    li->fd = net_listen(host, port, 511, err);
    if (li->fd < 0) {
        free(li);
        return NULL;
    }
    li->keepalive = keepalive;
    li->profile = p;
    snprintf(li->host, sizeof li->host, "%s", host ? host : "");
    net_local_addr(li->fd, li->addr, sizeof li->addr);
    if (loop_watch(L.loop, li->fd, LOOP_READ, on_accept, li) < 0) {
        snprintf(err, NET_ERR_LEN, "listen %s: cannot watch it", li->addr);
        listener_close(li);
        return NULL;
    }
    return li;
}

void listener_close(struct listener *li)
{
    if (!li)
        return;
    loop_unwatch(L.loop, li->fd);
    close(li->fd);
    free(li);
}

const char *listener_addr(const struct listener *li)
{
    return li->addr;
}

int listener_port(const struct listener *li)
{
    return net_local_port(li->fd);
}

int listener_host_is(const struct listener *li, const char *host)
{
    return strcmp(li->host, host) == 0;
}
