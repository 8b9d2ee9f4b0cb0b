/* conn.c - client connections (see conn.h).
 *
 * The data path: a readable socket is read once into a shared buffer; complete
 * lines go straight from there to the codec (only an unfinished line is copied
 * and kept). Output is never written where it is produced: conn_send queues a
 * reference and puts the connection on the pending list, and conn_before_sleep
 * writes each pending connection once per loop turn, all its queued messages
 * gathered into one write. Only if the socket is full do we ask epoll for
 * writability.
 *
 * Closing is deferred to the end of the loop turn, so a connection never
 * disappears while the hub is iterating over a room that contains it.
 */
#include "server/conn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/codec.h"
#include "core/dict.h"
#include "core/log.h"
#include "core/loop.h"

#define READ_CHUNK (64 * 1024)

enum {
    CONN_PENDING = 1 << 0,   /* on the pending-write list */
    CONN_CLOSING = 1 << 1,   /* on the closing list */
    CONN_FLUSH = 1 << 2,     /* write queued output before closing */
    CONN_THROTTLED = 1 << 3, /* not reading: over its rate */
    CONN_WANTWRITE = 1 << 4, /* socket was full: waiting for EPOLLOUT */
    CONN_SPOKE = 1 << 5,     /* has sent at least one line */
    CONN_FLOODING = 1 << 6,  /* has been over its rate, and told so */
    CONN_DRAINING = 1 << 7,  /* closed: writing its last words, then waiting for its EOF */
};

/* How long a closed connection may take to read its last words (a goodbye or the
 * reason it was dropped) before the socket is closed anyway; checked each tick. */
#define DRAIN_MS 2000

/* How many connections one address holds (for --max-per-ip). */
struct ip_count {
    char addr[48];
    unsigned n;
};

static struct {
    struct loop *loop;
    struct hub *hub;
    struct conn_limits lim;
    struct conn **by_fd; /* every open connection, by descriptor */
    int max_fds;
    size_t count;
    struct conn *pending;
    struct conn *closing;
    struct conn *dead;
    struct dict ips;
    long long epoch_ms;  /* conn times count from here */
    int stopping;        /* shutting down: no time to drain */
    char rbuf[READ_CHUNK];
} S;

static uint32_t now_ms(void)
{
    return (uint32_t)(loop_now_ms() - S.epoch_ms);
}

static const char *ip_key(const void *p) { return ((const struct ip_count *)p)->addr; }

/* "address:port" for logs; the address is kept once per address, not per connection. */
static const char *peer_of(const struct conn *c)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "%s:%u", c->ip->addr, c->port);
    return buf;
}

int conn_init(struct loop *l, struct hub *h, const struct conn_limits *lim, int max_fds)
{
    S.loop = l;
    S.hub = h;
    S.lim = *lim;
    S.max_fds = max_fds;
    S.by_fd = calloc((size_t)max_fds, sizeof *S.by_fd);
    S.epoch_ms = loop_now_ms();
    dict_init(&S.ips, ip_key);
    return S.by_fd ? 0 : -1;
}

long conn_tick_ms(void)
{
    return S.lim.rate > 0 ? 100 : 1000; /* resume throttled readers promptly */
}

struct hub *conn_hub(void) { return S.hub; }
size_t conn_count(void) { return S.count; }

static void watch(struct conn *c);
static int flush(struct conn *c);

/* ==== Output ==== */

static void mark_pending(struct conn *c)
{
    if (!(c->flags & (CONN_PENDING | CONN_WANTWRITE))) {
        c->flags |= CONN_PENDING;
        c->next_pending = S.pending;
        S.pending = c;
    }
}

void conn_send(struct conn *c, struct msg *m)
{
    if (c->flags & CONN_CLOSING)
        return;
    /* A client that does not read must not make the server hold an unbounded
     * backlog for it, nor slow anyone else down: drop it. But a burst within one
     * loop turn is not slowness: first hand the kernel what it will take now. */
    if (c->out.bytes + m->len > S.lim.max_outbuf && flush(c) < 0) {
        conn_close(c, "write error", 0);
        return;
    }
    /* One message alone may pass the limit (a /who of a huge room): the limit is
     * on backlog, and an empty queue has none. */
    if (c->out.bytes > 0 && c->out.bytes + m->len > S.lim.max_outbuf) {
        log_info("%s: output queue over %zu bytes, disconnecting", peer_of(c), S.lim.max_outbuf);
        outq_clear(&c->out);
        conn_close(c, "too slow", 0);
        return;
    }
    if (outq_push(&c->out, m) < 0) {
        conn_close(c, "out of memory", 0);
        return;
    }
    mark_pending(c);
}

void conn_printf(struct conn *c, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2) {
        /* Cut to leave room for the '\n', but not inside a UTF-8 sequence (the
         * text may be a user's): line[n] is the first byte dropped, so back up
         * while it continues a character, dropping that character whole. */
        n = sizeof line - 2;
        while (n > 0 && ((unsigned char)line[n] & 0xC0) == 0x80)
            n--;
    }
    line[n++] = '\n';
    struct msg *m = msg_new(line, (size_t)n);
    if (m) {
        conn_send(c, m);
        msg_unref(m);
    }
}

/* Write what the socket takes; returns -1 if the connection failed. */
static int flush(struct conn *c)
{
    if (outq_write(&c->out, c->fd) < 0) {
        c->close_errno = errno;
        return -1;
    }
    int want = c->out.count > 0;
    if (want != !!(c->flags & CONN_WANTWRITE)) {
        c->flags ^= CONN_WANTWRITE;
        watch(c);
    }
    return 0;
}

/* ==== Input ==== */

/* Flood control costs: a line is one token, plus one per LINE_TOKEN_BYTES, so
 * the bucket limits bytes as well as lines. */
#define LINE_TOKEN_BYTES 512

static int on_line(void *ctx, const char *line, size_t len)
{
    struct conn *c = ctx;
    if (c->flags & CONN_CLOSING)
        return INBUF_STOP;
    c->flags |= CONN_SPOKE;
    if (!line) {
        c->codec->overlong(c, S.lim.max_line);
        if (S.lim.rate > 0) /* discarded, but read all the same: it costs what the longest line costs */
            c->tokens -= 1 + (float)(S.lim.max_line / LINE_TOKEN_BYTES);
        return INBUF_GO;
    }
    if (c->codec->line(c, line, len))
        return INBUF_STOP;
    if (S.lim.rate > 0) {
        c->tokens -= 1 + (float)(len / LINE_TOKEN_BYTES);
        if (c->tokens < 1)
            return INBUF_PAUSE; /* keep the rest of the input until tokens come back */
    }
    return INBUF_GO;
}

/* Flood control: a token bucket of lines. A client over its rate is not read
 * until it has tokens again, so TCP pushes back on it; nothing it sent is lost.
 * One that stays over it (paused again within a second of every resume) for
 * --flood-timeout seconds is dropped; a burst followed by a calmer pace is not. */
static void refill(struct conn *c, uint32_t now)
{
    double secs = (double)(uint32_t)(now - c->last_input) / 1000.0;
    c->tokens += (float)(secs * S.lim.rate);
    if (c->tokens >= S.lim.burst)
        c->tokens = (float)S.lim.burst;
}

static void throttle(struct conn *c, uint32_t now)
{
    log_debug("%s: over its rate, reading paused", peer_of(c));
    /* A new bout unless it was paused again within a second of the last resume
     * (one that keeps flooding always is, however small its burst). */
    if (!(c->flags & CONN_FLOODING) || (uint32_t)(now - c->resumed) > 1000) {
        c->flags |= CONN_FLOODING;
        c->flood_start = now;
        conn_printf(c, "!! slow down: more than %g lines per second, reading paused", S.lim.rate);
    }
    c->flags |= CONN_THROTTLED;
    watch(c);
}

static int flooded_too_long(const struct conn *c, uint32_t now)
{
    return S.lim.flood_timeout && (c->flags & CONN_THROTTLED) && (c->flags & CONN_FLOODING) &&
           (uint32_t)(now - c->flood_start) > (uint32_t)S.lim.flood_timeout * 1000;
}

void conn_charge(struct conn *c, size_t bytes)
{
    if (S.lim.rate <= 0)
        return;
    /* At most half a flood timeout's pause (a minute's without one): asking for
     * a big listing is not flooding, and must never look like it. */
    double secs = S.lim.flood_timeout ? S.lim.flood_timeout / 2.0 : 60;
    float floor = (float)(1 - S.lim.rate * secs);
    c->tokens -= (float)(bytes / LINE_TOKEN_BYTES);
    if (c->tokens < floor)
        c->tokens = floor;
}

/* After framing: out of memory closes, a pause stops reading (TCP backpressure). */
static void framed(struct conn *c, int rc, uint32_t now)
{
    if (rc < 0)
        conn_close(c, "out of memory", 0);
    else if ((rc == INBUF_PAUSE || (S.lim.rate > 0 && c->tokens < 1)) && !(c->flags & CONN_CLOSING))
        throttle(c, now); /* also when only discarded overlong lines used the tokens up */
}

static void on_readable(struct conn *c)
{
    /* Under flood control read at most a line at a time: what a paused client
     * sent stays in the kernel (and pushes back on it), not in our memory. */
    size_t want = S.lim.rate > 0 && S.lim.max_line + 1 < sizeof S.rbuf ? S.lim.max_line + 1 : sizeof S.rbuf;
    ssize_t n;
    do
        n = read(c->fd, S.rbuf, want);
    while (n < 0 && errno == EINTR);
    if (n == 0) {
        conn_close(c, "connection closed", 1);
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            c->close_errno = errno;
            conn_close(c, "read error", 0);
        }
        return;
    }
    uint32_t now = now_ms();
    if (S.lim.rate > 0)
        refill(c, now);
    c->last_input = now;
    framed(c, inbuf_feed(&c->in, S.rbuf, (size_t)n, S.lim.max_line, on_line, c), now);
}

static void drain(struct conn *c);

static void on_event(struct loop *l, int fd, int mask, void *data)
{
    (void)l, (void)fd;
    struct conn *c = data;
    if (c->flags & CONN_DRAINING) {
        drain(c);
        return;
    }
    if ((mask & LOOP_WRITE) && !(c->flags & CONN_CLOSING) && flush(c) < 0)
        conn_close(c, "write error", 0);
    if ((mask & LOOP_READ) && !(c->flags & CONN_CLOSING))
        on_readable(c);
}

static void watch(struct conn *c)
{
    int mask = (c->flags & CONN_THROTTLED ? 0 : LOOP_READ) | (c->flags & CONN_WANTWRITE ? LOOP_WRITE : 0);
    if (c->flags & CONN_DRAINING)
        mask = c->out.count ? LOOP_WRITE : LOOP_READ; /* last words, then the peer's EOF */
    if (loop_watch(S.loop, c->fd, mask, on_event, c) < 0)
        log_errno("%s: epoll_ctl", peer_of(c));
}

/* ==== Life cycle ==== */

/* Count one more connection from peer's address; NULL if it has too many. */
static struct ip_count *ip_take(const char *peer)
{
    char addr[sizeof ((struct ip_count *)0)->addr];
    snprintf(addr, sizeof addr, "%s", peer);
    char *colon = strrchr(addr, ':'); /* drop ":port" ("[v6]:port" keeps its brackets) */
    if (colon)
        *colon = '\0';
    struct ip_count *ip = dict_get(&S.ips, addr);
    if (!ip) {
        if (!(ip = calloc(1, sizeof *ip)))
            return NULL;
        memcpy(ip->addr, addr, sizeof addr);
        if (dict_add(&S.ips, ip) < 0) {
            free(ip);
            return NULL;
        }
    }
    if (S.lim.max_per_ip && ip->n >= S.lim.max_per_ip)
        return NULL;
    ip->n++;
    return ip;
}

static void ip_release(struct ip_count *ip)
{
    if (ip && --ip->n == 0) {
        dict_remove(&S.ips, ip);
        free(ip);
    }
}

void conn_refuse(int fd, const char *peer, const char *line, const char *why)
{
    if (peer)
        log_info("refused %s: %s", peer, why);
    ssize_t n = write(fd, line, strlen(line)); /* best effort: the socket is new and empty */
    (void)n;
    close(fd);
}

struct conn *conn_new(int fd, const char *peer, const struct codec *codec)
{
    struct ip_count *ip = ip_take(peer);
    if (!ip) {
        conn_refuse(fd, peer, "!! too many connections from your address\n", "too many connections from its address");
        return NULL;
    }
    struct conn *c = fd < S.max_fds ? calloc(1, sizeof *c) : NULL;
    if (!c || loop_watch(S.loop, fd, LOOP_READ, on_event, c) < 0) {
        log_errno("%s: cannot take the connection", peer);
        ip_release(ip);
        close(fd);
        free(c);
        return NULL;
    }
    c->fd = fd;
    c->ip = ip;
    c->codec = codec;
    c->tokens = S.lim.burst;
    c->last_input = c->connected = now_ms();
    const char *colon = strrchr(peer, ':');
    c->port = colon ? (uint16_t)atoi(colon + 1) : 0;
    S.by_fd[fd] = c;
    S.count++;
    if (codec->open(c) < 0) {
        conn_close(c, "out of memory", 0);
        return NULL;
    }
    return c;
}

void conn_close(struct conn *c, const char *reason, int flush_first)
{
    if (c->flags & CONN_CLOSING)
        return;
    c->flags |= CONN_CLOSING | (flush_first ? CONN_FLUSH : 0);
    c->close_reason = reason;
    c->next_close = S.closing;
    S.closing = c;
}

/* Close the socket and forget the connection; the struct goes on the dead list,
 * freed once no list can still point at it. */
static void close_now(struct conn *c)
{
    loop_unwatch(S.loop, c->fd);
    close(c->fd);
    S.by_fd[c->fd] = NULL;
    S.count--;
    ip_release(c->ip);
    outq_clear(&c->out);
    inbuf_clear(&c->in);
    c->next_close = S.dead;
    S.dead = c;
}

/* A lingering close. Closing a socket that still has unread input makes Linux
 * send a reset and throw away what it had not sent yet, goodbye included; a
 * flooder always has unread input. So: write the last words, shut our side
 * (FIN), and read and discard until the peer closes too, or DRAIN_MS passes. */
static void drain(struct conn *c)
{
    if (c->out.count > 0) {
        if (outq_write(&c->out, c->fd) < 0) {
            close_now(c);
            return;
        }
        if (c->out.count == 0)
            shutdown(c->fd, SHUT_WR);
        watch(c);
        return;
    }
    ssize_t n = read(c->fd, S.rbuf, sizeof S.rbuf);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        close_now(c);
}

/* Leave the hub, then close: at once if there is nothing more to say (or no time,
 * at shutdown), else lingering until the last words are out (see drain). */
static void finish(struct conn *c)
{
    if (c->close_errno)
        log_info("disconnect %s: %s: %s", peer_of(c), c->close_reason, strerror(c->close_errno));
    else
        log_info("disconnect %s: %s", peer_of(c), c->close_reason);
    c->codec->close(c, c->close_reason);
    /* At shutdown the goodbye gets one write: there is no loop left to linger in. */
    if (!(c->flags & CONN_FLUSH) || outq_write(&c->out, c->fd) < 0 || S.stopping) {
        close_now(c);
        return;
    }
    if (c->out.count == 0)
        shutdown(c->fd, SHUT_WR);
    c->flags |= CONN_DRAINING;
    c->last_input = now_ms(); /* the drain deadline counts from here */
    inbuf_clear(&c->in);
    watch(c);
}

static void reap_closing(void)
{
    while (S.closing) {
        struct conn *c = S.closing;
        S.closing = c->next_close;
        finish(c); /* may close others (their queues overflow): they join S.closing */
    }
}

static void flush_pending(void)
{
    while (S.pending) {
        struct conn *c = S.pending;
        S.pending = c->next_pending;
        c->flags &= ~CONN_PENDING;
        if (!(c->flags & CONN_CLOSING) && flush(c) < 0)
            conn_close(c, "write error", 0);
    }
}

void conn_before_sleep(void)
{
    do {
        reap_closing();
        flush_pending();
    } while (S.closing);
    while (S.dead) {
        struct conn *c = S.dead;
        S.dead = c->next_close;
        free(c);
    }
}

/* A throttled client reads again once it has tokens; one that has been over its
 * rate for --flood-timeout seconds, or silent too long, is told why and dropped. */
static void tick_one(struct conn *c, uint32_t now)
{
    if (c->flags & CONN_THROTTLED) {
        refill(c, now);
        c->last_input = now;
        if (c->tokens >= 1) {
            c->flags &= ~CONN_THROTTLED;
            c->resumed = now;
            log_debug("%s: reading again", peer_of(c));
            watch(c);
            framed(c, inbuf_resume(&c->in, S.lim.max_line, on_line, c), now);
        }
    }
    if (flooded_too_long(c, now)) {
        conn_printf(c, "!! flooding, disconnected");
        conn_close(c, "flooding", 1);
    } else if (!(c->flags & CONN_SPOKE) && S.lim.login_timeout &&
               (uint32_t)(now - c->connected) > (uint32_t)S.lim.login_timeout * 1000) {
        conn_printf(c, "!! nothing received for %d seconds, disconnected", S.lim.login_timeout);
        conn_close(c, "login timeout", 1);
    } else if (S.lim.idle_timeout && (uint32_t)(now - c->last_input) > (uint32_t)S.lim.idle_timeout * 1000) {
        conn_printf(c, "!! idle for %d seconds, disconnected", S.lim.idle_timeout);
        conn_close(c, "idle timeout", 1);
    }
}

void conn_tick(void)
{
    uint32_t now = now_ms();
    for (int fd = 0; fd < S.max_fds; fd++) {
        struct conn *c = S.by_fd[fd];
        if (c && (c->flags & CONN_DRAINING) && (uint32_t)(now - c->last_input) > DRAIN_MS)
            close_now(c);
        else if (c && !(c->flags & CONN_CLOSING))
            tick_one(c, now);
    }
}

void conn_close_all(void)
{
    S.stopping = 1;
    for (int fd = 0; fd < S.max_fds; fd++) {
        struct conn *c = S.by_fd[fd];
        if (c && (c->flags & CONN_DRAINING))
            close_now(c);
        else if (c)
            conn_close(c, "server shutting down", 1);
    }
    conn_before_sleep();
    free(S.by_fd);
    S.by_fd = NULL;
    dict_free(&S.ips);
}
