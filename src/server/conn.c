/* conn.c - client connections (see conn.h).
 *
 * The data path: a readable transport is read once into a shared buffer, after
 * any input the codec had not consumed yet, and the codec is offered all of it;
 * what it does not consume (an unfinished line) is kept, sized to fit. Output is
 * never written where it is produced: conn_send queues a reference and marks the
 * connection pending, and before the loop sleeps each pending connection is
 * written once, all its queued messages gathered into one write. Only when the
 * transport will not take more do we ask the loop for writability.
 *
 * Closing is deferred to the end of the loop turn (conn.h: the closing rule).
 */
#include "server/conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dict.h"
#include "core/log.h"
#include "core/loop.h"
#include "server/transport/tcp.h"

#define READ_CHUNK (64 * 1024)
#define ID_FD_BITS 24 /* conn ids: (counter << 24) | fd */

enum {
    CONN_PENDING = 1 << 0,   /* on the list of connections with output to write */
    CONN_CLOSING = 1 << 1,   /* on the closing list */
    CONN_FLUSH = 1 << 2,     /* write queued output before closing */
    CONN_THROTTLED = 1 << 3, /* not reading: over its rate */
    CONN_WANTWRITE = 1 << 4, /* the transport was full: waiting to write */
    CONN_SPOKE = 1 << 5,     /* has said something: the login timeout is over */
    CONN_FLOODING = 1 << 6,  /* has been over its rate, and told so */
    CONN_DRAINING = 1 << 7,  /* closed: writing its last words, then waiting for its EOF */
    CONN_OPEN = 1 << 8,      /* the transport is ready and the codec opened */
    CONN_REOFFER = 1 << 9,   /* on the list of connections with input to offer before sleeping */
};

/* How long a closed connection may take to read its last words (a goodbye or the
 * reason it was dropped) before the socket is closed anyway; checked each tick. */
#define DRAIN_MS 2000
/* The tick: timeouts need seconds, resuming a throttled reader a tenth of one. */
#define TICK_MS 1000
#define TICK_THROTTLED_MS 100

/* How many connections one address holds (for --max-per-ip). */
struct ip_count {
    char addr[48];
    unsigned n;
};

/* A list of connections, each on it at most once (a flag says so): the arrays
 * are sized for every descriptor, so adding never fails, and an idle connection
 * carries no list links. */
struct list {
    struct conn **at;
    size_t n;
};

static struct {
    struct loop *loop;
    struct conn **by_fd; /* every open connection, by descriptor */
    int max_fds;
    size_t count;
    struct list pending;  /* output to write before sleeping */
    struct list reoffer;  /* input to offer before sleeping (in a transport, or kept) */
    struct list reoffer_spare; /* the other half of reoffer's double buffer */
    struct list closing;
    struct list dead;     /* closed, to be freed once no list can point at them */
    struct dict ips;
    uint64_t ids;         /* connections made so far */
    long long epoch_ms;   /* conn times count from here */
    int stopping;         /* shutting down: no time to drain */
    size_t throttled;     /* connections paused by flood control */
    unsigned long tick;   /* the pending tick timer */
    long tick_ms;
    const struct conn *offering; /* the connection whose codec is being offered input */
} S;

static char rbuf[READ_CHUNK]; /* shared by every connection's reads */

static void on_tick(struct loop *l, void *data);
static void before_sleep(struct loop *l, void *data);

static uint32_t now_ms(void)
{
    return (uint32_t)(loop_now_ms() - S.epoch_ms);
}

static const char *ip_key(const void *p) { return ((const struct ip_count *)p)->addr; }

const char *conn_peer(const struct conn *c)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "%s:%u", c->ip->addr, c->port);
    return buf;
}

unsigned long long conn_log_id(const struct conn *c)
{
    return (unsigned long long)(c->id >> ID_FD_BITS);
}

const char *conn_describe(const struct conn *c)
{
    static char buf[64 + 160];
    const char *who = c->codec && c->codec->who && (c->flags & CONN_OPEN) ? c->codec->who(c) : NULL;
    if (!who)
        who = c->closing_who; /* gone from the hub already (bye), as it was called then */
    snprintf(buf, sizeof buf, "#%llu %s%s%s", conn_log_id(c), conn_peer(c), who ? " " : "", who ? who : "");
    return buf;
}

int conn_closing(const struct conn *c) { return (c->flags & CONN_CLOSING) != 0; }
size_t conn_count(void) { return S.count; }

static int list_init(struct list *li)
{
    li->at = calloc((size_t)S.max_fds, sizeof *li->at);
    li->n = 0;
    return li->at ? 0 : -1;
}

static void list_push(struct list *li, struct conn *c)
{
    li->at[li->n++] = c;
}

static struct conn *list_pop(struct list *li)
{
    return li->n ? li->at[--li->n] : NULL;
}

int conn_init(struct loop *l, int max_fds)
{
    if (max_fds < 1 || max_fds > 1 << ID_FD_BITS)
        return -1;
    memset(&S, 0, sizeof S);
    S.loop = l;
    S.max_fds = max_fds;
    S.epoch_ms = loop_now_ms();
    dict_init(&S.ips, ip_key);
    S.by_fd = calloc((size_t)max_fds, sizeof *S.by_fd);
    if (!S.by_fd || list_init(&S.pending) < 0 || list_init(&S.reoffer) < 0 || list_init(&S.reoffer_spare) < 0 || list_init(&S.closing) < 0 ||
        list_init(&S.dead) < 0 || loop_add_before_sleep(l, before_sleep, NULL) < 0)
        return -1;
    S.tick_ms = TICK_MS;
    S.tick = loop_add_timer(l, S.tick_ms, on_tick, NULL);
    return S.tick ? 0 : -1;
}

static void watch(struct conn *c);
static int flush(struct conn *c);

/* ==== Output ==== */

static void mark_pending(struct conn *c)
{
    if (!(c->flags & (CONN_PENDING | CONN_WANTWRITE))) {
        c->flags |= CONN_PENDING;
        list_push(&S.pending, c);
    }
}

void conn_send(struct conn *c, struct msg *m)
{
    if (c->flags & CONN_CLOSING)
        return;
    size_t max = c->profile->lim.max_outbuf;
    /* A client that does not read must not make the server hold an unbounded
     * backlog for it, nor slow anyone else down: drop it. But a burst within one
     * loop turn is not slowness: first hand the transport what it will take now. */
    if (c->out.bytes + m->len > max && (c->flags & CONN_OPEN) && flush(c) < 0) {
        conn_close(c, "write error", 0);
        return;
    }
    /* One message alone may pass the limit (a /who of a huge room): the limit is
     * on backlog, and an empty queue has none. */
    if (c->out.bytes > 0 && c->out.bytes + m->len > max) {
        log_warn("%s: output queue over %zu bytes, disconnecting", conn_describe(c), max);
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

static ssize_t write_to(void *ctx, const void *buf, size_t len)
{
    struct transport *t = ctx;
    return t->ops->write(t, buf, len);
}

/* Write what the transport takes; returns -1 if the connection failed. */
static int flush(struct conn *c)
{
    if (outq_write(&c->out, write_to, c->t) < 0) {
        c->close_errno = errno;
        return -1;
    }
    int want = c->out.count > 0;
    /* A transport that maps wants to events (TLS) may want others after any write. */
    if (want != !!(c->flags & CONN_WANTWRITE) || c->t->ops->events) {
        if (want != !!(c->flags & CONN_WANTWRITE))
            c->flags ^= CONN_WANTWRITE;
        watch(c);
    }
    return 0;
}

/* ==== Flood control ====
 * A token bucket per client. One over its rate is not read until it has tokens
 * again, so TCP pushes back on it; nothing it sent is lost. One that stays over
 * it (paused again within a second of every resume) for --flood-timeout seconds
 * is dropped; a burst followed by a calmer pace is not. */

static void refill(struct conn *c, uint32_t now)
{
    const struct conn_limits *lim = &c->profile->lim;
    double secs = (double)(uint32_t)(now - c->last_input) / 1000.0;
    c->tokens += (float)(secs * lim->rate);
    if (c->tokens >= lim->burst)
        c->tokens = (float)lim->burst;
}

/* The tick comes sooner while someone is throttled: it is what resumes them. */
static void retick(void)
{
    long ms = S.throttled ? TICK_THROTTLED_MS : TICK_MS;
    if (ms < S.tick_ms) {
        loop_cancel_timer(S.loop, S.tick);
        S.tick = loop_add_timer(S.loop, ms, on_tick, NULL);
    }
    S.tick_ms = ms;
}

static void throttle(struct conn *c, uint32_t now)
{
    log_debug("%s: over its rate, reading paused", conn_describe(c));
    /* A new bout unless it was paused again within a second of the last resume
     * (one that keeps flooding always is, however small its burst). */
    if (!(c->flags & CONN_FLOODING) || (uint32_t)(now - c->resumed) > 1000) {
        c->flags |= CONN_FLOODING;
        c->flood_start = now;
        c->codec->limit(c, LIMIT_RATE, c->profile->lim.rate);
    }
    c->flags |= CONN_THROTTLED;
    S.throttled++;
    retick();
    watch(c);
}

static void unthrottle(struct conn *c, uint32_t now)
{
    c->flags &= ~CONN_THROTTLED;
    S.throttled--;
    c->resumed = now;
    log_debug("%s: reading again", conn_describe(c));
    watch(c);
}

static int flooded_too_long(const struct conn *c, uint32_t now)
{
    int secs = c->profile->lim.flood_timeout;
    return secs && (c->flags & CONN_THROTTLED) && (c->flags & CONN_FLOODING) &&
           (uint32_t)(now - c->flood_start) > (uint32_t)secs * 1000;
}

int conn_spend(struct conn *c, double units)
{
    if (c->profile->lim.rate <= 0)
        return 1;
    c->tokens -= (float)units;
    return c->tokens >= 1;
}

void conn_charge(struct conn *c, double units)
{
    const struct conn_limits *lim = &c->profile->lim;
    if (lim->rate <= 0)
        return;
    /* At most half a flood timeout's pause (a minute's without one): asking for
     * a big listing is not flooding, and must never look like it. */
    double secs = lim->flood_timeout ? lim->flood_timeout / 2.0 : 60;
    float floor = (float)(1 - lim->rate * secs);
    c->tokens -= (float)units;
    if (c->tokens < floor)
        c->tokens = floor;
}

void conn_spoke(struct conn *c)
{
    c->flags |= CONN_SPOKE;
}

/* ==== Input ==== */

/* Offer n bytes to the codec, and to the next one if it switches. Returns the
 * bytes consumed; all of them once the connection is closing. */
static size_t offer(struct conn *c, char *data, size_t n)
{
    size_t used = 0;
    S.offering = c;
    while (used < n && !(c->flags & CONN_CLOSING)) {
        const struct codec *codec = c->codec;
        size_t k = codec->input(c, data + used, n - used);
        used += k < n - used ? k : n - used;
        if (c->codec == codec)
            break; /* no switch: the rest waits for more input or for tokens */
    }
    S.offering = NULL;
    return c->flags & CONN_CLOSING ? n : used;
}

/* Offer buf (the kept input followed by what was just read) and keep what the
 * codec did not consume; a client out of tokens stops being read. */
static void take_input(struct conn *c, char *buf, size_t n, uint32_t now)
{
    size_t used = offer(c, buf, n);
    if (inbuf_keep(&c->in, buf + used, n - used) < 0) {
        conn_close(c, "out of memory", 0);
        return;
    }
    if (c->profile->lim.rate > 0 && c->tokens < 1 && !(c->flags & (CONN_CLOSING | CONN_THROTTLED)))
        throttle(c, now);
}

static void mark_reoffer(struct conn *c)
{
    if (!(c->flags & CONN_REOFFER)) {
        c->flags |= CONN_REOFFER;
        list_push(&S.reoffer, c);
    }
}

static void on_readable(struct conn *c)
{
    const struct conn_limits *lim = &c->profile->lim;
    /* Under flood control read at most a line at a time: what a paused client
     * sent stays in the kernel (and pushes back on it), not in our memory. */
    size_t want = lim->rate > 0 && lim->max_line + 1 < READ_CHUNK ? lim->max_line + 1 : READ_CHUNK;
    size_t kept = c->in.len;
    char *buf = rbuf;
    if (kept <= READ_CHUNK / 2) {
        /* The common case: an unfinished line (small) goes in front of the read,
         * which takes what room is left; the rest waits in the kernel. */
        if (kept)
            memcpy(rbuf, c->in.data, kept);
        if (want > READ_CHUNK - kept)
            want = READ_CHUNK - kept;
    } else if (inbuf_space(&c->in, want)) { /* a huge line (--max-line over 32 KiB) */
        buf = c->in.data;
    } else {
        conn_close(c, "out of memory", 0);
        return;
    }
    ssize_t n = c->t->ops->read(c->t, buf + kept, want);
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
    if (lim->rate > 0)
        refill(c, now);
    c->last_input = now;
    take_input(c, buf, kept + (size_t)n, now);
    /* Input the transport holds already (decrypted TLS records) will not wake
     * the loop: take it before sleeping. */
    if (c->t->ops->pending && !(c->flags & (CONN_CLOSING | CONN_THROTTLED)) && c->t->ops->pending(c->t))
        mark_reoffer(c);
}

/* Offer the kept input again (after a pause, or to a codec just switched in)
 * without reading. */
static void reoffer_kept(struct conn *c, uint32_t now)
{
    if (!c->in.len)
        return;
    struct inbuf kept = c->in;
    c->in = (struct inbuf){0};
    take_input(c, kept.data, kept.len, now);
    free(kept.data);
}

void conn_set_codec(struct conn *c, const struct codec *codec)
{
    c->codec->close(c, NULL);
    c->codec = codec;
    c->user = NULL;
    c->state = NULL;
    c->frame = 0;
    if (codec->open(c) < 0) {
        conn_close(c, "out of memory", 0);
        return;
    }
    /* Within offer, the new codec gets the rest at once; otherwise what was kept
     * is offered before the loop sleeps. */
    if (S.offering != c && c->in.len)
        mark_reoffer(c);
}

static void drain(struct conn *c);

/* Until the transport is ready (a TLS handshake), the codec has not been opened. */
static void start(struct conn *c)
{
    int rc = c->t->ops->handshake ? c->t->ops->handshake(c->t) : 1;
    if (rc < 0) {
        c->close_errno = errno;
        conn_close(c, "handshake failed", 0);
    } else if (rc == 0) {
        watch(c);
    } else {
        c->flags |= CONN_OPEN;
        watch(c);
        if (c->codec->open(c) < 0)
            conn_close(c, "out of memory", 0);
        else if (c->t->ops->pending && c->t->ops->pending(c->t))
            mark_reoffer(c);
    }
}

static void on_event(struct loop *l, int fd, int mask, void *data)
{
    (void)l, (void)fd;
    struct conn *c = data;
    if (c->flags & CONN_DRAINING) {
        drain(c);
        return;
    }
    if (!(c->flags & CONN_OPEN)) {
        start(c);
        return;
    }
    /* A transport that maps wants to events (TLS) may make progress on either
     * direction on any event; a plain socket only on the one it reports. */
    int any = c->t->ops->events != NULL;
    if ((c->flags & CONN_WANTWRITE) && (any || (mask & LOOP_WRITE)) && !(c->flags & CONN_CLOSING) &&
        flush(c) < 0)
        conn_close(c, "write error", 0);
    if ((any || (mask & LOOP_READ)) && !(c->flags & (CONN_CLOSING | CONN_THROTTLED)))
        on_readable(c);
    if (any && !(c->flags & CONN_CLOSING))
        watch(c);
}

static void watch(struct conn *c)
{
    int want = (c->flags & CONN_THROTTLED ? 0 : LOOP_READ) | (c->flags & CONN_WANTWRITE ? LOOP_WRITE : 0);
    if (c->flags & CONN_DRAINING)
        want = c->out.count ? LOOP_WRITE : LOOP_READ; /* last words, then the peer's EOF */
    else if (!(c->flags & CONN_OPEN))
        want = LOOP_READ; /* the handshake: the transport's events say what it needs */
    int mask = c->t->ops->events ? c->t->ops->events(c->t, want) : want;
    if (loop_watch(S.loop, c->t->fd, mask, on_event, c) < 0)
        log_errno("%s: epoll_ctl", conn_peer(c));
}

/* ==== Life cycle ==== */

/* Count one more connection from peer's address; NULL if it has too many. */
static struct ip_count *ip_take(const char *peer, unsigned max)
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
    if (max && ip->n >= max)
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

void conn_refuse(int fd, const char *peer, const struct conn_profile *p, enum conn_limit why, const char *logwhy)
{
    if (peer)
        log_info("refused %s: %s", peer, logwhy);
    if (p->wrap)
        close(fd); /* a transport over the socket (TLS) says nothing before its handshake */
    else
        tcp_refuse(fd, p->codec->refusal(why));
}

struct conn *conn_new(int fd, const char *peer, const struct conn_profile *p)
{
    struct ip_count *ip = ip_take(peer, p->lim.max_per_ip);
    if (!ip) {
        conn_refuse(fd, peer, p, LIMIT_PER_ADDR, "too many connections from its address");
        return NULL;
    }
    struct conn *c = fd < S.max_fds ? calloc(1, sizeof *c) : NULL;
    if (c) {
        tcp_init(&c->sock, fd);
        c->t = p->wrap ? p->wrap(p->wrap_arg, &c->sock) : &c->sock;
    }
    if (!c || !c->t) {
        log_errno("%s: cannot take the connection", peer);
        ip_release(ip);
        close(fd);
        free(c);
        return NULL;
    }
    c->id = (++S.ids << ID_FD_BITS) | (uint64_t)fd;
    c->ip = ip;
    c->profile = p;
    c->codec = p->codec;
    c->tokens = (float)p->lim.burst;
    c->last_input = c->connected = now_ms();
    const char *colon = strrchr(peer, ':');
    c->port = colon ? (uint16_t)atoi(colon + 1) : 0;
    S.by_fd[fd] = c;
    S.count++;
    start(c);
    return c;
}

struct conn *conn_by_id(uint64_t id)
{
    uint64_t fd = id & ((1u << ID_FD_BITS) - 1);
    struct conn *c = fd < (uint64_t)S.max_fds ? S.by_fd[fd] : NULL;
    return c && c->id == id && !(c->flags & CONN_CLOSING) ? c : NULL;
}

void conn_close(struct conn *c, const char *reason, int flush_first)
{
    if (c->flags & CONN_CLOSING)
        return;
    const char *who = c->codec && c->codec->who && (c->flags & CONN_OPEN) ? c->codec->who(c) : NULL;
    c->closing_who = who ? strdup(who) : NULL; /* (NULL when out of memory: the line just lacks it) */
    c->flags |= CONN_CLOSING | (flush_first ? CONN_FLUSH : 0);
    c->close_reason = reason;
    list_push(&S.closing, c);
}

/* Close the transport and forget the connection; the struct goes on the dead
 * list, freed once no list can still point at it. */
static void close_now(struct conn *c)
{
    int fd = c->sock.fd;
    loop_unwatch(S.loop, fd);
    c->t->ops->close(c->t);
    S.by_fd[fd] = NULL;
    S.count--;
    if (c->flags & CONN_THROTTLED)
        S.throttled--;
    ip_release(c->ip);
    free(c->closing_who);
    c->closing_who = NULL;
    outq_clear(&c->out);
    inbuf_clear(&c->in);
    list_push(&S.dead, c);
}

/* A lingering close. Closing a socket that still has unread input makes Linux
 * send a reset and throw away what it had not sent yet, goodbye included; a
 * flooder always has unread input. So: write the last words, shut our side,
 * and read and discard until the peer closes too, or DRAIN_MS passes. */
static void drain(struct conn *c)
{
    if (c->out.count > 0) {
        if (outq_write(&c->out, write_to, c->t) < 0) {
            close_now(c);
            return;
        }
        if (c->out.count == 0)
            c->t->ops->shutdown(c->t);
        watch(c);
        return;
    }
    ssize_t n = c->t->ops->read(c->t, rbuf, sizeof rbuf);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        close_now(c);
}

/* Leave the hub, then close: at once if there is nothing more to say (or no time,
 * at shutdown), else lingering until the last words are out (see drain). */
static void finish(struct conn *c)
{
    const char *why = c->close_errno && c->t->ops->error ? c->t->ops->error(c->t) : NULL;
    if (why)
        log_info("disconnect %s: %s: %s: %s", conn_describe(c), c->close_reason, c->t->ops->name, why);
    else if (c->close_errno)
        log_info("disconnect %s: %s: %s", conn_describe(c), c->close_reason, strerror(c->close_errno));
    else
        log_info("disconnect %s: %s", conn_describe(c), c->close_reason);
    if (c->flags & CONN_OPEN)
        c->codec->close(c, c->close_reason);
    /* At shutdown the goodbye gets one write: there is no loop left to linger in. */
    if (!(c->flags & CONN_FLUSH) || !(c->flags & CONN_OPEN) || outq_write(&c->out, write_to, c->t) < 0 ||
        S.stopping) {
        close_now(c);
        return;
    }
    if (c->out.count == 0)
        c->t->ops->shutdown(c->t);
    if (c->flags & CONN_THROTTLED)
        S.throttled--;
    c->flags = (uint16_t)((c->flags | CONN_DRAINING) & ~CONN_THROTTLED);
    c->last_input = now_ms(); /* the drain deadline counts from here */
    inbuf_clear(&c->in);
    watch(c);
}

static void reap_closing(void)
{
    struct conn *c;
    while ((c = list_pop(&S.closing)) != NULL)
        finish(c); /* may close others (their queues overflow): they join the list */
}

static void flush_pending(void)
{
    struct conn *c;
    while ((c = list_pop(&S.pending)) != NULL) {
        c->flags &= ~CONN_PENDING;
        if (!(c->flags & CONN_CLOSING) && flush(c) < 0)
            conn_close(c, "write error", 0);
    }
}

static void wake(struct loop *l, void *data)
{
    (void)l, (void)data;
}

/* Input that no descriptor will announce: held inside a transport, or kept
 * for a codec just switched in. Taken in rounds (a connection served in one
 * round may be marked again for the next: the lists swap); if some is left after
 * them (a transport that keeps producing), the loop does not sleep. */
static void reoffer_input(void)
{
    for (int round = 0; round < 16 && S.reoffer.n; round++) {
        struct list batch = S.reoffer;
        S.reoffer = S.reoffer_spare;
        S.reoffer.n = 0;
        for (size_t i = 0; i < batch.n; i++) {
            struct conn *c = batch.at[i];
            c->flags &= ~CONN_REOFFER;
            if (c->flags & (CONN_CLOSING | CONN_THROTTLED | CONN_DRAINING) || !(c->flags & CONN_OPEN))
                continue;
            if (c->t->ops->pending && c->t->ops->pending(c->t))
                on_readable(c);
            else
                reoffer_kept(c, now_ms());
        }
        S.reoffer_spare = batch;
    }
    if (S.reoffer.n)
        loop_add_timer(S.loop, 0, wake, NULL);
}

static void before_sleep(struct loop *l, void *data)
{
    (void)l, (void)data;
    reoffer_input();
    do {
        reap_closing();
        flush_pending();
    } while (S.closing.n);
    struct conn *c;
    while ((c = list_pop(&S.dead)) != NULL)
        free(c);
}

/* A throttled client reads again once it has tokens; one that has been over its
 * rate for --flood-timeout seconds, or silent too long, is told why and dropped. */
static void tick_one(struct conn *c, uint32_t now)
{
    const struct conn_limits *lim = &c->profile->lim;
    if (c->flags & CONN_THROTTLED) {
        refill(c, now);
        c->last_input = now;
        if (c->tokens >= 1) {
            unthrottle(c, now);
            /* Input inside the transport (decrypted TLS records) comes after
             * what was kept, and no descriptor will announce it: both are
             * offered before the loop sleeps (reoffer_input). */
            if (c->t->ops->pending && c->t->ops->pending(c->t))
                mark_reoffer(c);
            else
                reoffer_kept(c, now);
        }
    }
    if (!(c->flags & CONN_OPEN) && lim->handshake_timeout &&
        (uint32_t)(now - c->connected) > (uint32_t)lim->handshake_timeout * 1000) {
        conn_close(c, "handshake timeout", 0); /* nothing can be said: the transport is not up */
    } else if (flooded_too_long(c, now)) {
        c->codec->limit(c, LIMIT_FLOOD, lim->flood_timeout);
        conn_close(c, "flooding", 1);
    } else if (!(c->flags & CONN_SPOKE) && lim->login_timeout &&
               (uint32_t)(now - c->connected) > (uint32_t)lim->login_timeout * 1000) {
        if (c->flags & CONN_OPEN)
            c->codec->limit(c, LIMIT_LOGIN, lim->login_timeout);
        conn_close(c, "login timeout", 1);
    } else if (lim->idle_timeout && (uint32_t)(now - c->last_input) > (uint32_t)lim->idle_timeout * 1000) {
        if (c->flags & CONN_OPEN)
            c->codec->limit(c, LIMIT_IDLE, lim->idle_timeout);
        conn_close(c, "idle timeout", 1);
    }
}

static void on_tick(struct loop *l, void *data)
{
    (void)data;
    uint32_t now = now_ms();
    for (int fd = 0; fd < S.max_fds; fd++) {
        struct conn *c = S.by_fd[fd];
        if (c && (c->flags & CONN_DRAINING) && (uint32_t)(now - c->last_input) > DRAIN_MS)
            close_now(c);
        else if (c && !(c->flags & CONN_CLOSING))
            tick_one(c, now);
    }
    S.tick_ms = S.throttled ? TICK_THROTTLED_MS : TICK_MS;
    S.tick = loop_add_timer(l, S.tick_ms, on_tick, NULL);
}

void conn_shutdown(void)
{
    S.stopping = 1;
    for (int fd = 0; fd < S.max_fds; fd++) {
        struct conn *c = S.by_fd[fd];
        if (c && (c->flags & CONN_DRAINING))
            close_now(c);
        else if (c)
            conn_close(c, "server shutting down", 1);
    }
    before_sleep(S.loop, NULL);
    loop_remove_before_sleep(S.loop, before_sleep, NULL);
    loop_cancel_timer(S.loop, S.tick);
    free(S.by_fd);
    free(S.pending.at);
    free(S.reoffer.at);
    free(S.reoffer_spare.at);
    free(S.closing.at);
    free(S.dead.at);
    dict_free(&S.ips);
    memset(&S, 0, sizeof S);
}
