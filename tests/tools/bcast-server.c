/* bcast-server - the trivial broadcast server natter-bench is calibrated against.
 *
 * Just enough of the plain protocol for the bench: the welcome and "joined #lobby"
 * lines, /nick, /join and /part with their confirmations (sent to the user alone),
 * and room messages "#room <nick> text" copied to every other member. One room per
 * client. Output is appended to per-client buffers and written once per client per
 * loop turn, as natterd does, so what it shows is what the bench can drive.
 *
 * usage: bcast-server [--port N] [--drop N] [--dup N] [--swap N]
 *   --drop N  lose every Nth message delivery (to test that the bench notices)
 *   --dup N   deliver every Nth message delivery twice
 *   --swap N  hold every Nth delivery back and deliver it after the client's next one
 * Prints "listening on 127.0.0.1:PORT" to stderr; runs until SIGTERM or SIGINT.
 */
#include "core/net.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAX_OUT (32u << 20) /* a client this far behind is dropped */

struct client {
    int fd;
    int room;        /* index into rooms[], -1 = none */
    int slot;        /* index in the room's member array */
    int pending;     /* on the list of clients to write this turn */
    char nick[32];
    char in[8192];
    size_t inlen;
    char *out;
    size_t outlen, outcap;
    char *held; /* --swap: a delivery held back */
    int heldlen;
};

static struct client **clients; /* by fd */
static int nfds;
struct room {
    char name[40];
    int *fds; /* members */
    int n, cap;
};

static struct room rooms[4096];
static int nrooms;
static int *pend, npend;
static long drop_every, dup_every, swap_every, deliveries, guests;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void put(struct client *c, const char *p, size_t n)
{
    if (c->outlen + n > c->outcap) {
        size_t cap = c->outcap ? c->outcap * 2 : 4096;
        while (cap < c->outlen + n)
            cap *= 2;
        char *np = cap <= MAX_OUT ? realloc(c->out, cap) : NULL;
        if (!np)
            return; /* too far behind: lose it; the bench will say so */
        c->out = np, c->outcap = cap;
    }
    memcpy(c->out + c->outlen, p, n);
    c->outlen += n;
    if (!c->pending) {
        c->pending = 1;
        pend[npend++] = c->fd;
    }
}

static void putf(struct client *c, const char *line)
{
    put(c, line, strlen(line));
}

static int room_index(const char *name)
{
    for (int i = 0; i < nrooms; i++)
        if (strcmp(rooms[i].name, name) == 0)
            return i;
    if (nrooms == (int)(sizeof rooms / sizeof rooms[0]))
        return -1;
    snprintf(rooms[nrooms].name, sizeof rooms[0].name, "%s", name);
    return nrooms++;
}

static int enter(struct client *c, int ri)
{
    struct room *r = &rooms[ri];
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 16;
        int *np = realloc(r->fds, sizeof *np * (size_t)cap);
        if (!np)
            return -1;
        r->fds = np, r->cap = cap;
    }
    c->room = ri;
    c->slot = r->n;
    r->fds[r->n++] = c->fd;
    return 0;
}

static void leave(struct client *c)
{
    if (c->room < 0)
        return;
    struct room *r = &rooms[c->room];
    int last = r->fds[--r->n];
    r->fds[c->slot] = last;
    clients[last]->slot = c->slot;
    c->room = -1;
}

static void broadcast(struct client *from, const char *text, size_t n)
{
    char line[8300];
    struct room *r = &rooms[from->room];
    int len = snprintf(line, sizeof line, "%s <%s> %.*s\n", r->name, from->nick, (int)n, text);
    if (len >= (int)sizeof line)
        return;
    for (int i = 0; i < r->n; i++) {
        struct client *c = clients[r->fds[i]];
        if (c == from)
            continue;
        deliveries++;
        if (drop_every && deliveries % drop_every == 0)
            continue;
        if (swap_every && deliveries % swap_every == 0 && !c->held && (c->held = malloc((size_t)len))) {
            memcpy(c->held, line, (size_t)len);
            c->heldlen = len;
            continue;
        }
        put(c, line, (size_t)len);
        if (dup_every && deliveries % dup_every == 0)
            put(c, line, (size_t)len);
        if (c->held) {
            put(c, c->held, (size_t)c->heldlen);
            free(c->held);
            c->held = NULL;
        }
    }
}

static void command(struct client *c, char *line, size_t n)
{
    char buf[200];
    line[n] = '\0';
    if (strncmp(line, "/nick ", 6) == 0 && n < 6 + sizeof c->nick) {
        snprintf(buf, sizeof buf, "-- %s is now known as %s\n", c->nick, line + 6);
        putf(c, buf);
        snprintf(c->nick, sizeof c->nick, "%s", line + 6);
    } else if (strncmp(line, "/join ", 6) == 0 && n < 6 + 36 && line[6] == '#') {
        int ri = room_index(line + 6);
        leave(c);
        snprintf(buf, sizeof buf, "-- %s joined %s\n", c->nick, line + 6);
        putf(c, ri < 0 || enter(c, ri) < 0 ? "!! too many rooms\n" : buf);
    } else if (strncmp(line, "/part", 5) == 0 && c->room >= 0) {
        snprintf(buf, sizeof buf, "-- %s left %s\n", c->nick, rooms[c->room].name);
        putf(c, buf);
        leave(c);
    } else if (line[0] == '/') {
        putf(c, "!! unknown command\n");
    } else if (c->room >= 0) {
        broadcast(c, line, n);
    }
}

static void drop_client(int fd)
{
    struct client *c = clients[fd];
    leave(c);
    close(fd);
    free(c->out);
    free(c->held);
    free(c);
    clients[fd] = NULL;
}

static void on_readable(int fd)
{
    struct client *c = clients[fd];
    ssize_t r = read(fd, c->in + c->inlen, sizeof c->in - c->inlen - 1);
    if (r <= 0) {
        if (r == 0 || errno != EAGAIN)
            drop_client(fd);
        return;
    }
    c->inlen += (size_t)r;
    char *p = c->in, *end = c->in + c->inlen, *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        size_t n = (size_t)(nl - p);
        if (n && p[n - 1] == '\r')
            n--;
        if (n)
            command(c, p, n);
        p = nl + 1;
    }
    c->inlen = (size_t)(end - p);
    if (c->inlen == sizeof c->in - 1)
        c->inlen = 0; /* an overlong line: forget it */
    memmove(c->in, p, c->inlen);
}

static void on_accept(int lfd, int ep)
{
    int fd;
    while ((fd = net_accept(lfd, NULL)) >= 0) {
        struct client *c = fd < nfds ? calloc(1, sizeof *c) : NULL;
        if (!c) {
            close(fd);
            continue;
        }
        net_set_nodelay(fd);
        c->fd = fd;
        c->room = -1;
        snprintf(c->nick, sizeof c->nick, "guest%ld", ++guests);
        clients[fd] = c;
        if (enter(c, room_index("#lobby")) < 0) {
            drop_client(fd);
            continue;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        char buf[160];
        snprintf(buf, sizeof buf, "-- welcome to natter, %s! /nick NAME picks a name\n-- %s joined #lobby\n",
                 c->nick, c->nick);
        putf(c, buf);
    }
}

/* One write per client per loop turn; whatever the socket does not take waits. */
static void flush_pending(void)
{
    int keep = 0;
    for (int i = 0; i < npend; i++) {
        struct client *c = clients[pend[i]];
        if (!c)
            continue;
        ssize_t w = write(c->fd, c->out, c->outlen);
        if (w < 0 && errno != EAGAIN) {
            drop_client(c->fd);
            continue;
        }
        if (w > 0) {
            memmove(c->out, c->out + w, c->outlen - (size_t)w);
            c->outlen -= (size_t)w;
        }
        c->pending = c->outlen > 0;
        if (c->pending)
            pend[keep++] = c->fd;
    }
    npend = keep;
}

int main(int argc, char **argv)
{
    int port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--drop") == 0)
            drop_every = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--dup") == 0)
            dup_every = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--swap") == 0)
            swap_every = atol(argv[i + 1]);
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    nfds = (int)rl.rlim_cur;
    clients = calloc((size_t)nfds, sizeof *clients);
    pend = calloc((size_t)nfds, sizeof *pend);
    char err[NET_ERR_LEN];
    int lfd = net_listen("127.0.0.1", port, 4096, err), ep = epoll_create1(0);
    if (lfd < 0 || ep < 0 || !clients || !pend) {
        fprintf(stderr, "bcast-server: %s\n", lfd < 0 ? err : strerror(errno));
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd}, evs[512];
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    fprintf(stderr, "listening on 127.0.0.1:%d\n", net_local_port(lfd));
    while (!stop) {
        int n = epoll_wait(ep, evs, 512, npend ? 1 : 200);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == lfd)
                on_accept(lfd, ep);
            else if (clients[evs[i].data.fd])
                on_readable(evs[i].data.fd);
        }
        flush_pending();
    }
    for (int fd = 0; fd < nfds; fd++)
        if (clients[fd])
            drop_client(fd);
    for (int i = 0; i < nrooms; i++)
        free(rooms[i].fds);
    free(clients);
    free(pend);
    close(lfd);
    close(ep);
    return 0;
}
