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
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "server/addr.h"
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
    CONN_YIELDED = 1 << 10,  /* on the yielded list: not reading until next turn (the hub was busy) */
    CONN_LISTING = 1 << 11,  /* what is queued now is a listing it asked for (conn_listing) */
    CONN_CHARGED = 1 << 12,  /* charged for a listing since its last pause */
    CONN_NUDGED = 1 << 13,   /* silent for half its --idle-timeout, and the codec told (LIMIT_QUIET) */
};

/* How long a closed connection may take to read its last words (a goodbye or the
 * reason it was dropped) before the socket is closed anyway, checked each tick:
 * DRAIN_MS without progress (bytes written or read), DRAIN_MAX_MS in all. */
#define DRAIN_MS 2000
#define DRAIN_MAX_MS 10000
/* Give freed memory back to the system once this many connections have gone
 * since the last time (malloc_trim), so RSS returns after a crowd leaves. */
#define TRIM_AFTER_CLOSES 256
/* The tick: timeouts need seconds, resuming a throttled reader a tenth of one. */
#define TICK_MS 1000
#define TICK_THROTTLED_MS 100

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
    struct list yielded;  /* waiting for the next turn (conn_yield), served first then */
    void (*on_turn)(void *arg);
    void *on_turn_arg;
    unsigned closes;      /* connections gone since the last malloc_trim */
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
static void wake(struct loop *l, void *data);

static uint32_t now_ms(void)
{
    return (uint32_t)(loop_now_ms() - S.epoch_ms);
}

const char *conn_peer(const struct conn *c)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "%s:%u", addr_text(c->addr), c->port);
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
struct loop *conn_loop(void) { return S.loop; }

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
    addr_init();
    S.by_fd = calloc((size_t)max_fds, sizeof *S.by_fd);
    if (!S.by_fd || list_init(&S.pending) < 0 || list_init(&S.reoffer) < 0 || list_init(&S.reoffer_spare) < 0 || list_init(&S.closing) < 0 || list_init(&S.yielded) < 0 ||
        list_init(&S.dead) < 0 || loop_add_before_sleep(l, before_sleep, NULL) < 0)
        return -1;
    S.tick_ms = TICK_MS;
    S.tick = loop_add_timer(l, S.tick_ms, on_tick, NULL);
    return S.tick ? 0 : -1;
}

static void watch(struct conn *c);
static void transport_limit(struct conn *c);
static int flush(struct conn *c);

/* ==== Output ==== */

static void mark_pending(struct conn *c)
{
    if (!(c->flags & (CONN_PENDING | CONN_WANTWRITE))) {
        c->flags |= CONN_PENDING;
        list_push(&S.pending, c);
    }
}

/* Drop a client that does not read. An abortive close (a reset): what the
 * kernel still holds for it is thrown away at once, not kept for minutes. */
static void drop_too_slow(struct conn *c, size_t cost)
{
    log_warn("%s: output queue over %zu bytes, disconnecting", conn_describe(c), c->profile->lim.max_outbuf);
    log_debug("%s: %zu bytes queued, costing %zu", conn_describe(c), c->out.bytes, cost);
    struct linger lg = {1, 0};
    setsockopt(c->sock.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    outq_clear(&c->out);
    c->allowance = 0;
    transport_limit(c);
    conn_close(c, "too slow", 0);
}

/* What the queue holds against --max-outbuf: its cost (the msgs' allocations and
 * the ring's slots), less what listings the client asked for are allowed. */
static size_t held(const struct conn *c)
{
    size_t cost = outq_cost(&c->out);
    return cost > c->allowance ? cost - c->allowance : 0;
}

void conn_send(struct conn *c, struct msg *m)
{
    if (c->flags & CONN_CLOSING)
        return;
    size_t max = c->profile->lim.max_outbuf;
    int listing = (c->flags & CONN_LISTING) != 0;
    /* A client that does not read must not make the server hold an unbounded
     * backlog for it, nor slow anyone else down: drop it. But a burst within one
     * loop turn is not slowness: first hand the transport what it will take now. */
    if (!listing && held(c) + msg_cost(m->cap) > max && (c->flags & CONN_OPEN) && flush(c) < 0) {
        conn_close(c, "write error", 0);
        return;
    }
    /* One message alone may pass the limit (a long line to a small limit): the
     * limit is on backlog, and an empty queue has none. */
    if (!listing && c->out.count > 0 && held(c) + msg_cost(m->cap) > max) {
        drop_too_slow(c, outq_cost(&c->out));
        return;
    }
    size_t before = outq_cost(&c->out);
    /* Behind a blocked writer small msgs are copied together: cheaper to hold. */
    int rc = c->flags & CONN_WANTWRITE ? outq_append(&c->out, m) : outq_push(&c->out, m);
    if (rc < 0) {
        conn_close(c, "out of memory", 0);
        return;
    }
    if (listing)
        c->allowance += outq_cost(&c->out) - before;
    mark_pending(c);
}

void conn_listing(struct conn *c, int on)
{
    /* Only the latest listing is allowed for: a client that asks again and again
     * without reading holds the earlier ones against --max-outbuf. */
    if (on) {
        c->flags |= CONN_LISTING;
        c->allowance = 0;
    } else {
        c->flags &= ~CONN_LISTING;
    }
}

static ssize_t write_to(void *ctx, const void *buf, size_t len)
{
    struct transport *t = ctx;
    return t->ops->write(t, buf, len);
}

/* Write what the transport takes; returns -1 if the connection failed. */
static int flush(struct conn *c)
{
    size_t cost = outq_cost(&c->out);
    if (outq_write(&c->out, write_to, c->t) < 0) {
        c->close_errno = errno;
        return -1;
    }
    /* A listing's allowance shrinks as what the client reads leaves the queue
     * (a msg's cost leaves with its last byte). */
    size_t freed = cost - outq_cost(&c->out);
    c->allowance = c->out.count == 0 || freed >= c->allowance ? 0 : c->allowance - freed;
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
    if (c->flags & CONN_CHARGED) {
        /* Asking is not flooding: the pause that listings paid for does not
         * count towards the flood timeout (flood_start moves past it). */
        c->flags &= ~CONN_CHARGED;
        c->flood_start += c->charged_ms;
        c->charged_ms = 0;
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
           (int32_t)(now - c->flood_start) > (int32_t)secs * 1000; /* flood_start may lie ahead */
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
    if (c->profile->lim.rate <= 0 || units <= 0)
        return;
    c->tokens -= (float)units;
    c->flags |= CONN_CHARGED;
    double ms = c->charged_ms + units / c->profile->lim.rate * 1000;
    c->charged_ms = ms < 3.6e6 ? (uint32_t)ms : 3600000; /* (an hour's pause is plenty) */
}

void conn_spoke(struct conn *c)
{
    c->flags |= CONN_SPOKE;
}

int conn_has_spoken(const struct conn *c)
{
    return (c->flags & CONN_SPOKE) != 0;
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
    /* Free what was kept before keeping anew, when it was copied out already:
     * malloc then reuses the same memory, where a partial line growing read by
     * read would otherwise leave a trail of freed buffers behind it. */
    if (buf != c->in.data)
        inbuf_clear(&c->in);
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
            /* A protocol error (a transport's own close frame on its way, as
             * WebSocket's 1002) lingers like a goodbye: no reset under it. */
            conn_close(c, "read error", errno == EPROTO);
        }
        return;
    }
    uint32_t now = now_ms();
    if (lim->rate > 0)
        refill(c, now);
    c->last_input = now;
    c->flags &= (uint16_t)~CONN_NUDGED;
    take_input(c, buf, kept + (size_t)n, now);
    /* Input the transport holds already (decrypted TLS records) will not wake
     * the loop: take it before sleeping. */
    if (c->t->ops->pending && !(c->flags & (CONN_CLOSING | CONN_THROTTLED | CONN_YIELDED)) && c->t->ops->pending(c->t))
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

int conn_set_transport(struct conn *c, struct transport *t)
{
    if (c->out.count > 0 && flush(c) < 0)
        return -1;
    if (c->out.count > 0) {
        errno = EBUSY;
        return -1;
    }
    c->t = t;
    c->flags &= (uint16_t)~CONN_WANTWRITE;
    watch(c);
    if (t->ops->pending && t->ops->pending(t))
        mark_reoffer(c); /* what the client sent after the switch is in it already */
    return 0;
}

void conn_set_profile(struct conn *c, const struct conn_profile *p)
{
    c->profile = p;
    if (c->tokens > (float)p->lim.burst)
        c->tokens = (float)p->lim.burst;
}

int conn_secure(const struct conn *c)
{
    return c->t->ops->secure ? c->t->ops->secure(c->t) : 0;
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
    if ((any || (mask & LOOP_READ)) && !(c->flags & (CONN_CLOSING | CONN_THROTTLED | CONN_YIELDED)))
        on_readable(c);
    if (any && !(c->flags & CONN_CLOSING))
        watch(c);
}

static void watch(struct conn *c)
{
    int want = (c->flags & (CONN_THROTTLED | CONN_YIELDED) ? 0 : LOOP_READ) | (c->flags & CONN_WANTWRITE ? LOOP_WRITE : 0);
    if (c->flags & CONN_DRAINING)
        want = c->out.count ? LOOP_WRITE : LOOP_READ; /* last words, then the peer's EOF */
    else if (!(c->flags & CONN_OPEN))
        want = LOOP_READ; /* the handshake: the transport's events say what it needs */
    int mask = c->t->ops->events ? c->t->ops->events(c->t, want) : want;
    if (loop_watch(S.loop, c->t->fd, mask, on_event, c) < 0)
        log_errno("%s: epoll_ctl", conn_peer(c));
}

/* ==== Life cycle ==== */

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
    struct addr_limits al = {p->lim.max_per_ip, p->lim.connect_rate, p->lim.connect_burst};
    struct addr *ip = NULL;
    int log_it = 1;
    switch (addr_take(peer, &al, now_ms(), &ip, &log_it)) {
    case ADDR_OK:
        break;
    case ADDR_TOO_MANY:
        conn_refuse(fd, peer, p, LIMIT_PER_ADDR, "too many connections from its address");
        return NULL;
    case ADDR_TOO_FAST:
        /* A loop of connects is refused as fast as it comes: log a few, not all. */
        conn_refuse(fd, log_it ? peer : NULL, p, LIMIT_CONNECT_RATE, "connecting too fast from its address");
        return NULL;
    case ADDR_NOMEM:
        log_error("%s: cannot take the connection: out of memory", peer);
        close(fd);
        return NULL;
    }
    /* Bounded kernel buffers: --max-outbuf then means what it says, and a
     * stalled reader is found before the kernel holds megabytes for it. */
    if (p->lim.sndbuf)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &p->lim.sndbuf, sizeof p->lim.sndbuf);
    if (p->lim.rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &p->lim.rcvbuf, sizeof p->lim.rcvbuf);
    struct conn *c = fd < S.max_fds ? calloc(1, sizeof *c) : NULL;
    if (c) {
        tcp_init(&c->sock, fd);
        c->t = p->wrap ? p->wrap(p->wrap_arg, &c->sock) : &c->sock;
    }
    if (!c || !c->t) {
        log_errno("%s: cannot take the connection", peer);
        addr_release(ip);
        close(fd);
        free(c);
        return NULL;
    }
    c->id = (++S.ids << ID_FD_BITS) | (uint64_t)fd;
    c->addr = ip;
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

/* ==== Yielding ====
 * The hub refused a connection's unit of work this turn (its budget is spent):
 * the connection stops reading, and its kept input is offered again before
 * anything else next turn (serve_yielded), in the order they yielded. */

void conn_yield(struct conn *c)
{
    if (c->flags & (CONN_YIELDED | CONN_CLOSING))
        return;
    c->flags |= CONN_YIELDED;
    list_push(&S.yielded, c);
    watch(c);
}

/* Off the yielded list (it is closing). */
static void unyield(struct conn *c)
{
    c->flags &= ~CONN_YIELDED;
    for (size_t i = 0; i < S.yielded.n; i++) {
        if (S.yielded.at[i] == c) {
            memmove(&S.yielded.at[i], &S.yielded.at[i + 1], (S.yielded.n - i - 1) * sizeof *S.yielded.at);
            S.yielded.n--;
            return;
        }
    }
}

void conn_on_turn(void (*fn)(void *arg), void *arg)
{
    S.on_turn = fn;
    S.on_turn_arg = arg;
}

static void serve_yielded(void)
{
    size_t n = S.yielded.n;
    if (!n)
        return;
    /* Those that yield again go to the back of a fresh list. */
    struct conn **batch = malloc(n * sizeof *batch);
    if (!batch) {
        loop_add_timer(S.loop, 0, wake, NULL);
        return;
    }
    memcpy(batch, S.yielded.at, n * sizeof *batch);
    S.yielded.n = 0;
    for (size_t i = 0; i < n; i++)
        batch[i]->flags &= ~CONN_YIELDED;
    uint32_t now = now_ms();
    for (size_t i = 0; i < n; i++) {
        struct conn *c = batch[i];
        if (c->flags & CONN_CLOSING)
            continue;
        watch(c);
        if (c->flags & CONN_THROTTLED)
            continue;
        reoffer_kept(c, now);
        /* Input the transport decoded already (TLS records, WebSocket frames)
         * announces itself to no descriptor: it is offered before the loop
         * sleeps, as after any read. */
        if (!(c->flags & (CONN_CLOSING | CONN_THROTTLED | CONN_YIELDED)) && c->t->ops->pending &&
            c->t->ops->pending(c->t))
            mark_reoffer(c);
    }
    free(batch);
    if (S.yielded.n || S.reoffer.n)
        loop_add_timer(S.loop, 0, wake, NULL); /* no sleeping while some wait */
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
    if (c->flags & CONN_YIELDED)
        unyield(c);
    addr_release(c->addr);
    free(c->closing_who);
    c->closing_who = NULL;
    outq_clear(&c->out);
    inbuf_clear(&c->in);
    list_push(&S.dead, c);
    S.closes++;
}

/* A lingering close. Closing a socket that still has unread input makes Linux
 * send a reset and throw away what it had not sent yet, goodbye included; a
 * flooder always has unread input. So: write the last words, shut our side,
 * and read and discard until the peer closes too, or DRAIN_MS passes. */
static void drain(struct conn *c)
{
    if (c->out.count > 0) {
        ssize_t w = outq_write(&c->out, write_to, c->t);
        if (w < 0) {
            close_now(c);
            return;
        }
        if (w > 0)
            c->last_input = now_ms(); /* progress */
        if (c->out.count == 0)
            c->t->ops->shutdown(c->t);
        watch(c);
        return;
    }
    ssize_t n = c->t->ops->read(c->t, rbuf, sizeof rbuf);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        close_now(c);
    else if (n > 0)
        c->last_input = now_ms();
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
    c->last_input = c->flood_start = now_ms(); /* the drain deadlines count from here */
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
            if (c->flags & (CONN_CLOSING | CONN_THROTTLED | CONN_DRAINING | CONN_YIELDED) || !(c->flags & CONN_OPEN))
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
    /* The turn is over: a fresh budget, spent first on those that yielded. */
    if (S.on_turn)
        S.on_turn(S.on_turn_arg);
    if (S.yielded.n) {
        serve_yielded();
        do {
            reap_closing();
            flush_pending();
        } while (S.closing.n);
    }
    struct conn *c;
    while ((c = list_pop(&S.dead)) != NULL)
        free(c);
}

/* The connection is dropped for a limit: a transport with close codes says so. */
static void transport_limit(struct conn *c)
{
    if (c->t->ops->limit)
        c->t->ops->limit(c->t);
}

/* When a silent client is asked whether it is there (LIMIT_QUIET): at half its
 * idle timeout, but at least 1.5 ticks before it, so that a tick falls between. */
static uint32_t nudge_after(int idle_timeout)
{
    uint32_t idle = (uint32_t)idle_timeout * 1000, half = idle / 2, margin = TICK_MS * 3 / 2;
    return idle > margin && idle - margin < half ? idle - margin : idle > margin ? half : 0;
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
        transport_limit(c);
        c->codec->limit(c, LIMIT_FLOOD, lim->flood_timeout);
        conn_close(c, "flooding", 1);
    } else if (!(c->flags & CONN_SPOKE) && lim->login_timeout &&
               (uint32_t)(now - c->connected) > (uint32_t)lim->login_timeout * 1000) {
        transport_limit(c);
        if (c->flags & CONN_OPEN)
            c->codec->limit(c, LIMIT_LOGIN, lim->login_timeout);
        conn_close(c, "login timeout", 1);
    } else if (lim->idle_timeout && (uint32_t)(now - c->last_input) > (uint32_t)lim->idle_timeout * 1000) {
        transport_limit(c);
        if (c->flags & CONN_OPEN)
            c->codec->limit(c, LIMIT_IDLE, lim->idle_timeout);
        conn_close(c, "idle timeout", 1);
    } else if (lim->idle_timeout && !(c->flags & CONN_NUDGED) && (c->flags & CONN_OPEN) &&
               (uint32_t)(now - c->last_input) > nudge_after(lim->idle_timeout)) {
        c->flags |= CONN_NUDGED;
        if (c->t->ops->ping)
            c->t->ops->ping(c->t); /* the transport's own probe (a WebSocket ping) */
        c->codec->limit(c, LIMIT_QUIET, lim->idle_timeout);
    }
}

static void on_tick(struct loop *l, void *data)
{
    (void)data;
    uint32_t now = now_ms();
    for (int fd = 0; fd < S.max_fds; fd++) {
        struct conn *c = S.by_fd[fd];
        if (c && (c->flags & CONN_DRAINING) &&
            ((uint32_t)(now - c->last_input) > DRAIN_MS || (uint32_t)(now - c->flood_start) > DRAIN_MAX_MS))
            close_now(c);
        else if (c && !(c->flags & CONN_CLOSING))
            tick_one(c, now);
    }
    addr_tick(now);
    if (S.closes >= TRIM_AFTER_CLOSES) {
        S.closes = 0;
        malloc_trim(0); /* what a crowd that left held goes back to the system */
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
    free(S.yielded.at);
    addr_shutdown();
    memset(&S, 0, sizeof S);
}
