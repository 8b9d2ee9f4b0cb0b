/* bench_worker.c - one natter-bench worker process: its connections, their setup,
 * the sending, and the checking of everything that arrives.
 *
 * A worker process owns clients [lo,hi) and splits them over its receiving threads,
 * each with its own epoll. A receiving thread sets its clients up (connect, wait for
 * the welcome, /part #lobby + /join #rK when there are rooms, /nick for senders),
 * then reads and checks room messages. How senders are paced:
 *
 * - window mode (default): a sender may have at most W messages that its designated
 *   receiver - the next member of its room in the same thread - has not received.
 *   Each reception there lets it send one more, so the receiving thread also writes,
 *   once per sender per loop turn (coalesced), and no lock is needed;
 * - rate mode (--rate): a separate sending thread per process writes on a fixed
 *   schedule, so the time the receiving threads spend parsing never delays a send
 *   and never shows up as server latency.
 *
 * With --irc or --irc-every, some or all clients speak IRC: they register at once
 * (NICK PREFIXgid, USER, JOIN #rK), send "PRIVMSG #rK :SEQ T_NS..." and read
 * ":PREFIXgid!user@host PRIVMSG #rK :SEQ T_NS...", checked the same way.
 *
 * With --ws the IRC clients go over WebSocket: an upgrade request to /ws first,
 * then every line out is one masked text frame (as RFC 6455 requires of
 * clients: the masking is part of the cost measured) and every frame in one
 * line.
 *
 * Every message is "SEQ T_NS[ xxx...]": its per-sender sequence number and the
 * CLOCK_MONOTONIC time it was written. Each receiver keeps, per sender of its room,
 * the next sequence number it expects and a 64-bit map of the ones before it, which
 * tells a duplicate from a late (reordered) message.
 */
#include "bench/bench_worker.h"
#include "core/net.h"
#include "core/tlsclient.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK (256 * 1024) /* one read() per ready connection takes up to this */
#define MAX_PART 16384          /* longest unfinished line kept between reads */
#define WRITE_CHUNK (64 * 1024) /* messages built per write() */
#define MAX_OUT (64u << 20)     /* bytes a sender may have queued that the socket did not take */
#define MAX_EVENTS 512

enum cstate { C_NEW, C_CONNECTING, C_HANDSHAKE, C_WELCOME, C_SETUP, C_READY, C_DEAD };

/* What a receiver knows of one sender of its room. */
struct pair {
    uint64_t next; /* the sequence number expected next (highest seen + 1) */
    uint64_t seen; /* bit i: message next-1-i has arrived */
};

struct conn {
    int fd;
    struct tlsc_conn *tls; /* --tls: the session over fd */
    uint32_t gid;      /* global client number */
    uint8_t state;     /* enum cstate; only the receiving thread touches it */
    uint8_t usable;    /* set once, before the run: the connection completed setup */
    uint8_t dirty;     /* window mode: on the thread's list of senders to top up */
    uint8_t send_dead; /* a write failed; the sending side gives up on it */
    uint8_t paced;     /* window mode: some receiver in this thread acknowledges it */
    uint8_t irc;       /* speaks IRC */
    uint8_t ws;        /* --ws: over WebSocket */
    uint8_t ws_up;     /* the upgrade's 101 has come */
    char *raw;         /* --ws: an unfinished frame (or response head) from the last read */
    uint32_t rawlen, rawcap;
    uint32_t mask;     /* --ws: the next masking key's seed */
    int32_t acks_for;  /* window mode: index (in the process) of the sender it paces, or -1 */
    char *part;        /* unfinished line from the last read */
    uint32_t partlen, partcap;
    char *expect;      /* during setup: the line that completes it */
    struct pair *pairs; /* one per sender of the room (NULL until ready) */
    uint64_t delivered;
    /* Sending side: touched only by the one thread that writes for this sender. */
    uint64_t seq, acked;
    char *out;
    uint32_t outlen, outcap;
};

struct proc {
    const struct bench_cfg *cfg;
    struct tlsc *tls; /* --tls: shared by this process's threads */
    struct bench_shared *sh;
    struct conn *conns;
    uint32_t lo, n; /* clients [lo, lo+n) */
};

struct worker {
    struct proc *p;
    const struct bench_cfg *cfg;
    struct bench_shared *sh;
    uint32_t first, n; /* indexes [first, first+n) of p->conns */
    int ep;
    char *rbuf;
    char *wbuf;
    uint32_t next_connect, in_setup, settled;
    uint32_t *dirty, ndirty;
    uint32_t nsenders, senders_done;
    int sending, published;
    uint64_t expected, delivered;
    uint64_t now;
    struct bench_result *res;
};

/* ==== Small helpers ==== */

/* A connection's bytes: straight on the socket, or through its TLS session. */
static ssize_t conn_read(struct conn *c, void *buf, size_t len)
{
    return c->tls ? tlsc_read(c->tls, buf, len) : read(c->fd, buf, len);
}

static ssize_t conn_write(struct conn *c, const void *buf, size_t len)
{
    return c->tls ? tlsc_write(c->tls, buf, len) : send(c->fd, buf, len, MSG_NOSIGNAL);
}

/* ==== WebSocket (--ws) ==== */

#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ==" /* RFC 6455's sample: the bench checks no Accept */

/* Lines [p, p+n) (each ending in "\r\n") as masked text frames at out, which
 * has room for n + 8 bytes per line. Returns the bytes written. */
static size_t ws_frame_lines(struct conn *c, const char *p, size_t n, char *out)
{
    size_t o = 0;
    const char *end = p + n, *nl;
    while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        size_t len = (size_t)(nl - p);
        if (len && p[len - 1] == '\r')
            len--;
        out[o++] = (char)0x81;
        if (len < 126) {
            out[o++] = (char)(0x80 | len);
        } else {
            out[o++] = (char)(0x80 | 126);
            out[o++] = (char)(len >> 8);
            out[o++] = (char)len;
        }
        c->mask = c->mask * 1103515245u + 12345u;
        unsigned char key[4] = {(unsigned char)(c->mask >> 24), (unsigned char)(c->mask >> 16),
                                (unsigned char)(c->mask >> 8), (unsigned char)c->mask};
        memcpy(out + o, key, 4);
        o += 4;
        for (size_t i = 0; i < len; i++)
            out[o + i] = (char)(p[i] ^ key[i & 3]);
        o += len;
        p = nl + 1;
    }
    return o;
}

/* Keep exactly n bytes from p in a buffer grown to fit (*buf, *len, *cap):
 * an unfinished line or frame between reads. */
static int keep_bytes(char **buf, uint32_t *len, uint32_t *cap, const char *p, size_t n)
{
    if (n > *cap) {
        uint32_t c = *cap ? *cap : 64;
        while (c < n)
            c *= 2;
        char *np = realloc(*buf, c);
        if (!np)
            return -1;
        *buf = np;
        *cap = c;
    }
    if (n)
        memmove(*buf, p, n);
    *len = (uint32_t)n;
    return 0;
}

static int keep_raw(struct conn *c, const char *p, size_t n)
{
    return keep_bytes(&c->raw, &c->rawlen, &c->rawcap, p, n);
}

/* The server's frames in [p, end) as lines, written in place from p (a line is
 * never longer than its frame); an unfinished frame is kept. Returns the end of
 * the lines, or NULL when the server closed or broke the protocol (*why says). */
static char *ws_unframe(struct conn *c, char *p, char *end, const char **why)
{
    char *out = p;
    while (end - p >= 2) {
        unsigned op = (unsigned char)p[0] & 0x0F, len = (unsigned char)p[1] & 0x7F, head = 2;
        if ((unsigned char)p[1] & 0x80) {
            *why = "the server masked a frame";
            return NULL;
        }
        if (len == 126) {
            if (end - p < 4)
                break;
            len = (unsigned)(unsigned char)p[2] << 8 | (unsigned char)p[3];
            head = 4;
        } else if (len == 127) {
            *why = "a frame over 64 KiB";
            return NULL;
        }
        if ((size_t)(end - p) < head + len)
            break;
        if (op == 8) {
            *why = "WebSocket closed by the server";
            return NULL;
        }
        if (op == 1 || op == 2) { /* (pings: the bench's runs are shorter than any idle timeout) */
            memmove(out, p + head, len);
            out += len;
            *out++ = '\n';
        }
        p += head + len;
    }
    if (keep_raw(c, p, (size_t)(end - p)) < 0) {
        *why = "out of memory";
        return NULL;
    }
    return out;
}

/* The upgrade request, right after the connect. */
static int ws_upgrade(struct worker *w, struct conn *c)
{
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /ws HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: " WS_KEY "\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Protocol: text.ircv3.net\r\n\r\n",
                     w->cfg->host, w->cfg->irc_port);
    c->mask = c->gid * 2654435761u + 1;
    return send(c->fd, req, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* The room a client is in: #rK, or #lobby when there is only one. */
static int room_name(const struct bench_cfg *cfg, uint32_t gid, char *out, size_t len)
{
    if (cfg->rooms > 1)
        return snprintf(out, len, "#r%u", bench_room_of(cfg, gid));
    return snprintf(out, len, "#lobby");
}

/* "SEQ T_NS", padded with " xxx" to the configured size, and "\n"; for IRC as
 * "PRIVMSG #room :SEQ T_NS...\r\n". */
static size_t format_msg(char *p, const struct bench_cfg *cfg, const struct conn *sender, uint64_t seq, uint64_t t,
                         uint32_t size)
{
    char *start = p;
    if (sender->irc) {
        memcpy(p, "PRIVMSG ", 8);
        p += 8;
        p += room_name(cfg, sender->gid, p, 24);
        *p++ = ' ';
        *p++ = ':';
    }
    char *s = p;
    p = put_u64(p, seq);
    *p++ = ' ';
    p = put_u64(p, t);
    if ((uint32_t)(p - s) < size) {
        *p++ = ' ';
        while ((uint32_t)(p - s) < size)
            *p++ = 'x';
    }
    if (sender->irc)
        *p++ = '\r';
    *p++ = '\n';
    return (size_t)(p - start);
}

static size_t max_msg_len(const struct bench_cfg *c)
{
    return (c->size > 42 ? c->size : 42) + 2 + 40;
}

/* Parse decimal digits at *p (before end); returns -1 if there are none or too many. */
static int parse_u64(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    while (s < end && *s >= '0' && *s <= '9' && s - *p < 19)
        v = v * 10 + (uint64_t)(*s++ - '0');
    if (s == *p || (s < end && *s >= '0' && *s <= '9'))
        return -1;
    *p = s;
    *out = v;
    return 0;
}

static int starts_with(const char *line, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(line, prefix, n) == 0;
}

static void note_problem(struct worker *w, const char *fmt, const char *line, size_t len)
{
    if (w->res->first_problem[0])
        return;
    char shown[120];
    size_t n = len < sizeof shown - 1 ? len : sizeof shown - 1;
    memcpy(shown, line, n);
    shown[n] = '\0';
    snprintf(w->res->first_problem, sizeof w->res->first_problem, fmt, shown);
}

/* ==== Connection setup ==== */

static void conn_settle(struct worker *w, struct conn *c, enum cstate st)
{
    c->state = (uint8_t)st;
    free(c->expect);
    c->expect = NULL;
    w->settled++;
    w->in_setup--;
}

static void setup_failed(struct worker *w, struct conn *c, const char *why)
{
    char msg[200];
    snprintf(msg, sizeof msg, "client %u: %s", c->gid, why);
    bench_note_failure(w->sh, msg);
    if (c->fd >= 0)
        epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    atomic_fetch_add(&w->sh->failed, 1);
    conn_settle(w, c, C_DEAD);
}

/* A connection that was set up and then went away. The descriptor stays open until
 * the end: in rate mode the sending thread may still be writing to it. */
static void conn_lost(struct worker *w, struct conn *c, const char *why)
{
    if (c->state != C_READY) {
        setup_failed(w, c, why);
        return;
    }
    char msg[200];
    snprintf(msg, sizeof msg, "client %u lost: %s", c->gid, why);
    bench_note_failure(w->sh, msg);
    epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    atomic_fetch_add(&w->sh->lost, 1);
    c->state = C_DEAD;
}

static void start_connect(struct worker *w, struct conn *c)
{
    const struct bench_cfg *cfg = w->cfg;
    char why[160];
    w->in_setup++;
    c->fd = socket(cfg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(why, sizeof why, "socket: %s", strerror(errno));
        setup_failed(w, c, why);
        return;
    }
    net_set_nodelay(c->fd);
    if (cfg->nsrc > 0) {
        const struct sockaddr_storage *src = &cfg->src[c->gid % (uint32_t)cfg->nsrc];
        /* Let connect() pick the port for the whole 4-tuple, not bind() for the
         * address alone: that is what lets each source address carry ~28k. */
        int one = 1;
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        socklen_t sl = src->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        if (bind(c->fd, (const struct sockaddr *)src, sl) < 0) {
            char a[NET_ADDR_LEN];
            net_format_addr((const struct sockaddr *)src, a, sizeof a);
            snprintf(why, sizeof why, "bind %s: %s", a, strerror(errno));
            setup_failed(w, c, why);
            return;
        }
    }
    const struct sockaddr_storage *to = c->irc ? &cfg->irc_addr : &cfg->addr;
    socklen_t tolen = c->irc ? cfg->irc_addrlen : cfg->addrlen;
    if (connect(c->fd, (const struct sockaddr *)to, tolen) < 0 && errno != EINPROGRESS) {
        snprintf(why, sizeof why, "connect %.64s:%s: %s", cfg->host, cfg->port, strerror(errno));
        setup_failed(w, c, why);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)(c - w->p->conns)};
    epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev);
    c->state = C_CONNECTING;
}

static void irc_register(struct worker *w, struct conn *c);

static void connect_done(struct worker *w, struct conn *c)
{
    int err = 0;
    socklen_t sl = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
    if (err) {
        char why[160];
        snprintf(why, sizeof why, "connect %.64s:%s: %s", w->cfg->host, w->cfg->port, strerror(err));
        setup_failed(w, c, why);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(c - w->p->conns)};
    epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->state = C_WELCOME;
    if (w->p->tls) {
        char why[300];
        if (!(c->tls = tlsc_conn_new(w->p->tls, c->fd, w->cfg->host, why, sizeof why))) {
            setup_failed(w, c, why);
            return;
        }
        c->state = C_HANDSHAKE;
    } else if (c->ws) {
        if (ws_upgrade(w, c) < 0)
            setup_failed(w, c, "could not send the WebSocket upgrade");
    } else if (c->irc) { /* --tls and --irc are not combined (bench.c) */
        irc_register(w, c);
    }
}

/* An IRC client speaks first: NICK, USER and JOIN at once; the JOIN echoed back
 * (":PREFIXgid!user@host JOIN #room") completes the setup. */
static void irc_register(struct worker *w, struct conn *c)
{
    const struct bench_cfg *cfg = w->cfg;
    char room[32], cmd[256], expect[64];
    room_name(cfg, c->gid, room, sizeof room);
    int n = snprintf(cmd, sizeof cmd, "NICK %s%u\r\nUSER bench 0 * :natter-bench\r\nJOIN %s\r\n", cfg->prefix, c->gid,
                     room);
    snprintf(expect, sizeof expect, " JOIN %s", room);
    c->expect = strdup(expect);
    char framed[256 + 3 * 8];
    const char *out = cmd;
    if (c->ws) {
        n = (int)ws_frame_lines(c, cmd, (size_t)n, framed);
        out = framed;
    }
    if (!c->expect || send(c->fd, out, (size_t)n, MSG_NOSIGNAL) != n) {
        setup_failed(w, c, "could not send the registration");
        return;
    }
    c->state = C_SETUP;
}

/* Drive the TLS handshake; the welcome follows it. */
static void handshake(struct worker *w, struct conn *c)
{
    char why[300];
    int rc = tlsc_handshake(c->tls, why, sizeof why);
    if (rc == -2 && w->cfg->expect_refused) { /* natterd's TLS port refuses by closing */
        atomic_fetch_add(&w->sh->refused, 1);
        epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
        conn_settle(w, c, C_DEAD);
        return;
    }
    if (rc < 0) {
        setup_failed(w, c, why);
        return;
    }
    struct epoll_event ev = {.events = rc == 0 && tlsc_wants_write(c->tls) ? EPOLLOUT : EPOLLIN,
                             .data.u32 = (uint32_t)(c - w->p->conns)};
    epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
    if (rc == 1)
        c->state = C_WELCOME;
}

/* The welcome names our guest; answer it with the commands that put this client
 * where the layout wants it, and remember the line that confirms the last one.
 * /part #lobby comes before /join so the join and nick notices never go to the
 * crowd in #lobby. */
static void on_welcome(struct worker *w, struct conn *c, const char *line, size_t len)
{
    static const char hello[] = "-- welcome to natter, ";
    const struct bench_cfg *cfg = w->cfg;
    if (starts_with(line, len, "!! ")) {
        if (len >= 14 && memmem(line, len, "server full", 11)) {
            atomic_fetch_add(&w->sh->refused, 1);
            epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
            conn_settle(w, c, C_DEAD);
        } else {
            note_problem(w, "refused: %s", line, len);
            setup_failed(w, c, "refused by the server (see problems)");
        }
        return;
    }
    if (!starts_with(line, len, hello))
        return;
    const char *name = line + sizeof hello - 1;
    const char *bang = memchr(name, '!', len - (sizeof hello - 1));
    if (!bang || bang - name > 64) {
        setup_failed(w, c, "unexpected welcome line");
        return;
    }
    int nlen = (int)(bang - name);
    uint32_t room = bench_room_of(cfg, c->gid);
    char cmd[256], expect[200];
    int n = 0;
    if (cfg->rooms > 1)
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, "/part #lobby\n/join #r%u\n", room);
    if (bench_is_sender(cfg, c->gid))
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, "/nick %s%u\n", cfg->prefix, c->gid);
    if (bench_is_sender(cfg, c->gid))
        snprintf(expect, sizeof expect, "-- %.*s is now known as %s%u", nlen, name, cfg->prefix, c->gid);
    else if (cfg->rooms > 1)
        snprintf(expect, sizeof expect, "-- %.*s joined #r%u", nlen, name, room);
    else
        snprintf(expect, sizeof expect, "-- %.*s joined #lobby", nlen, name);
    c->expect = strdup(expect);
    if (!c->expect || (n > 0 && conn_write(c, cmd, (size_t)n) != n)) {
        setup_failed(w, c, "could not send the setup commands");
        return;
    }
    c->state = C_SETUP;
}

static int ends_with(const char *line, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(line + len - n, suffix, n) == 0;
}

/* ":server 433 ..." and the like: a numeric error (4xx, 5xx, but not 422, "no
 * MOTD") or ERROR. */
static int irc_error(const char *line, size_t len)
{
    if (starts_with(line, len, "ERROR "))
        return 1;
    const char *sp = memchr(line, ' ', len);
    return sp && line[0] == ':' && (size_t)(sp - line) + 4 < len && (sp[1] == '4' || sp[1] == '5') &&
           sp[2] >= '0' && sp[2] <= '9' && sp[3] >= '0' && sp[3] <= '9' && sp[4] == ' ' &&
           memcmp(sp + 1, "422", 3) != 0;
}

static void on_setup_line(struct worker *w, struct conn *c, const char *line, size_t len)
{
    if (c->irc) {
        char me[32];
        int mn = snprintf(me, sizeof me, ":%s%u!", w->cfg->prefix, c->gid);
        if (irc_error(line, len)) {
            note_problem(w, "setup refused: %s", line, len);
            setup_failed(w, c, "the IRC registration was refused (see problems)");
            return;
        }
        if (!(len > (size_t)mn && memcmp(line, me, (size_t)mn) == 0 && ends_with(line, len, c->expect)))
            return;
    } else if (starts_with(line, len, "!! ")) {
        note_problem(w, "setup refused: %s", line, len);
        setup_failed(w, c, "a setup command was refused (see problems)");
        return;
    }
    else if (strlen(c->expect) != len || memcmp(c->expect, line, len) != 0)
        return;
    c->pairs = calloc(w->cfg->senders ? w->cfg->senders : 1, sizeof *c->pairs);
    if (!c->pairs) {
        setup_failed(w, c, "out of memory");
        return;
    }
    c->usable = 1;
    conn_settle(w, c, C_READY);
    atomic_fetch_add(&w->sh->ready, 1);
}

/* ==== Receiving and checking ==== */

/* Returns 1 for a first reception, 0 for a duplicate. */
static int check_seq(struct pair *pr, uint64_t q, struct bench_result *res)
{
    if (q >= pr->next) {
        uint64_t shift = q - pr->next + 1;
        pr->seen = shift >= 64 ? 1 : (pr->seen << shift) | 1;
        pr->next = q + 1;
        return 1;
    }
    uint64_t back = pr->next - 1 - q;
    if (back >= 64) {
        res->reordered++; /* too far back to tell a late message from a repeat */
        return 1;
    }
    if (pr->seen >> back & 1) {
        res->duplicated++;
        return 0;
    }
    pr->seen |= 1ull << back;
    res->reordered++;
    return 1;
}

/* Window mode: a reception at a sender's designated receiver frees a slot. */
static void ack(struct worker *w, struct conn *r, uint32_t gid)
{
    if (r->acks_for < 0)
        return;
    struct conn *s = &w->p->conns[r->acks_for];
    if (s->gid != gid)
        return;
    s->acked++;
    if (!s->dirty) {
        s->dirty = 1;
        w->dirty[w->ndirty++] = (uint32_t)r->acks_for;
    }
}

/* "#room <PREFIXgid> SEQ T_NS[ padding]", or for IRC
 * ":PREFIXgid!user@host PRIVMSG #room :SEQ T_NS[ padding]". */
static void on_message(struct worker *w, struct conn *c, const char *line, size_t len)
{
    const struct bench_cfg *cfg = w->cfg;
    const char *end = line + len, *p;
    size_t plen = strlen(cfg->prefix);
    uint64_t gid, seq, t;
    if (c->irc) {
        p = line + 1;
        if (len < plen + 2 || line[0] != ':' || memcmp(p, cfg->prefix, plen) != 0)
            goto corrupt;
        p += plen;
        if (parse_u64(&p, end, &gid) < 0 || p == end || *p != '!')
            goto corrupt;
        const char *cmd = memchr(p, ' ', (size_t)(end - p));
        if (!cmd || end - cmd < 10 || memcmp(cmd, " PRIVMSG #", 10) != 0)
            goto corrupt;
        const char *colon = memchr(cmd + 10, ' ', (size_t)(end - cmd - 10));
        if (!colon || end - colon < 2 || colon[1] != ':')
            goto corrupt;
        p = colon + 2;
        if (p < end && *p == 'x') { /* the rest of a long message, cut into several lines */
            while (p < end && *p == 'x')
                p++;
            if (p != end)
                goto corrupt;
            return;
        }
    } else {
        p = memchr(line, ' ', len);
        if (!p || end - p < (ptrdiff_t)(plen + 2) || p[1] != '<' || memcmp(p + 2, cfg->prefix, plen) != 0)
            goto corrupt;
        p += 2 + plen;
        if (parse_u64(&p, end, &gid) < 0 || end - p < 2 || p[0] != '>' || p[1] != ' ')
            goto corrupt;
        p += 2;
    }
    if (parse_u64(&p, end, &seq) < 0 || p == end || *p++ != ' ' || parse_u64(&p, end, &t) < 0)
        goto corrupt;
    if (p != end && *p != ' ')
        goto corrupt;
    if (gid >= cfg->clients || gid == c->gid || !bench_is_sender(cfg, (uint32_t)gid) ||
        bench_room_of(cfg, (uint32_t)gid) != bench_room_of(cfg, c->gid)) {
        w->res->corrupt++;
        note_problem(w, "misrouted or echoed message: %s", line, len);
        return;
    }
    struct pair *pr = &c->pairs[bench_member_of(cfg, (uint32_t)gid)];
    if (!check_seq(pr, seq, w->res))
        return;
    c->delivered++;
    w->delivered++;
    hist_add(&w->res->lat, w->now > t ? w->now - t : 0);
    if (!w->res->first_rx_ns)
        w->res->first_rx_ns = w->now;
    w->res->last_rx_ns = w->now;
    ack(w, c, (uint32_t)gid);
    return;
corrupt:
    w->res->corrupt++;
    note_problem(w, "unparsable message: %s", line, len);
}

static void on_line(struct worker *w, struct conn *c, const char *line, size_t len)
{
    if (len && line[len - 1] == '\r')
        len--;
    switch (c->state) {
    case C_READY:
        if (c->irc) {
            if (starts_with(line, len, "PING "))
                send(c->fd, "PONG :bench\r\n", 13, MSG_NOSIGNAL);
            else if (irc_error(line, len)) {
                w->res->server_errors++;
                note_problem(w, "server error line: %s", line, len);
            } else if (len && line[0] == ':' && memmem(line, len, " PRIVMSG #", 10))
                on_message(w, c, line, len);
        } else if (len && line[0] == '#')
            on_message(w, c, line, len);
        else if (starts_with(line, len, "!! ")) {
            w->res->server_errors++;
            note_problem(w, "server error line: %s", line, len);
        }
        break;
    case C_WELCOME:
        on_welcome(w, c, line, len);
        break;
    case C_SETUP:
        on_setup_line(w, c, line, len);
        break;
    default:
        break;
    }
}

static int keep_part(struct conn *c, const char *p, size_t n)
{
    return keep_bytes(&c->part, &c->partlen, &c->partcap, p, n);
}

/* Frame and handle the lines in [p, end); keep an unfinished last line. */
static void take_lines(struct worker *w, struct conn *c, const char *p, const char *end)
{
    const char *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        on_line(w, c, p, (size_t)(nl - p));
        if (c->state == C_DEAD)
            return;
        p = nl + 1;
    }
    if (end - p > MAX_PART) {
        w->res->corrupt++;
        note_problem(w, "line longer than 16 KB: %s", p, 80);
        return;
    }
    if (end > p && keep_part(c, p, (size_t)(end - p)) < 0)
        conn_lost(w, c, "out of memory");
}

/* --ws: r new bytes at p (with MAX_PART bytes of room before them): the 101
 * response first, then frames, each one line. */
static void ws_input(struct worker *w, struct conn *c, char *p, size_t r)
{
    if (c->rawlen > MAX_PART) {
        conn_lost(w, c, "a WebSocket frame over 16 KB");
        return;
    }
    char *start = p - c->rawlen, *end = p + r;
    if (c->rawlen)
        memcpy(start, c->raw, c->rawlen);
    c->rawlen = 0;
    if (!c->ws_up) {
        char *head_end = memmem(start, (size_t)(end - start), "\r\n\r\n", 4);
        if (!head_end) {
            if (keep_raw(c, start, (size_t)(end - start)) < 0)
                conn_lost(w, c, "out of memory");
            return;
        }
        if (end - start < 12 || memcmp(start, "HTTP/1.1 101", 12) != 0) {
            setup_failed(w, c, "the WebSocket upgrade was refused");
            return;
        }
        c->ws_up = 1;
        irc_register(w, c);
        if (c->state == C_DEAD)
            return;
        start = head_end + 4;
    }
    const char *why = NULL;
    char *lines_end = ws_unframe(c, start, end, &why);
    if (!lines_end) {
        conn_lost(w, c, why);
        return;
    }
    take_lines(w, c, start, lines_end);
}

static void read_conn(struct worker *w, struct conn *c)
{
    for (;;) {
        ssize_t r = conn_read(c, w->rbuf + MAX_PART, READ_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) {
            conn_lost(w, c, r == 0 ? "closed by the server" : strerror(errno));
            return;
        }
        w->now = bench_now_ns();
        if (c->ws) {
            ws_input(w, c, w->rbuf + MAX_PART, (size_t)r);
            if ((size_t)r < READ_CHUNK || c->state == C_DEAD)
                return;
            continue;
        }
        /* Put the unfinished line just before the new bytes: one contiguous run. */
        char *start = w->rbuf + MAX_PART - c->partlen;
        if (c->partlen)
            memcpy(start, c->part, c->partlen);
        c->partlen = 0;
        take_lines(w, c, start, w->rbuf + MAX_PART + r);
        /* A TLS read returns a record at most: go on until it says EAGAIN, or
         * what it decrypted already would wait for the next event. */
        if ((r < READ_CHUNK && !c->tls) || c->state == C_DEAD)
            return;
    }
}

/* ==== Sending ==== */

static int out_keep(struct conn *s, const char *p, size_t n)
{
    if (s->outlen + n > s->outcap) {
        size_t cap = s->outcap ? s->outcap : 4096;
        while (cap < s->outlen + n)
            cap *= 2;
        char *np = cap <= MAX_OUT ? realloc(s->out, cap) : NULL;
        if (!np)
            return -1;
        s->out = np;
        s->outcap = (uint32_t)cap;
    }
    memcpy(s->out + s->outlen, p, n);
    s->outlen += (uint32_t)n;
    return 0;
}

/* Write what an earlier write left over. Returns -1 when the connection failed. */
static int out_flush(struct conn *s)
{
    while (s->outlen) {
        ssize_t r = conn_write(s, s->out, s->outlen);
        if (r < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        memmove(s->out, s->out + r, s->outlen - (size_t)r);
        s->outlen -= (uint32_t)r;
    }
    return 0;
}

/* Send bytes in order after anything still queued. Returns -1 when the connection failed. */
static int send_bytes(struct conn *s, const char *p, size_t n)
{
    if (s->outlen) {
        if (out_keep(s, p, n) < 0)
            return -1;
        return out_flush(s);
    }
    ssize_t r = conn_write(s, p, n);
    if (r < 0) {
        if (errno != EAGAIN && errno != EINTR)
            return -1;
        r = 0;
    }
    return (size_t)r < n ? out_keep(s, p + r, n - (size_t)r) : 0;
}

/* Send count messages of sender s, numbered from s->seq, in as few writes as fit
 * WRITE_CHUNK, stamped with the time just before building them. */
static void send_messages(const struct bench_cfg *cfg, char *buf, struct conn *s, uint64_t count)
{
    size_t room = max_msg_len(cfg);
    while (count && !s->send_dead) {
        uint64_t t = bench_now_ns();
        size_t len = 0;
        while (count && len + room <= WRITE_CHUNK) {
            len += format_msg(buf + len, cfg, s, s->seq++, t, cfg->size);
            count--;
        }
        const char *out = buf;
        if (s->ws) { /* one masked frame per line: at most 8 bytes more each */
            static _Thread_local char framed[WRITE_CHUNK + 8 * (WRITE_CHUNK / 16)];
            len = ws_frame_lines(s, buf, len, framed);
            out = framed;
        }
        if (send_bytes(s, out, len) < 0)
            s->send_dead = 1;
    }
}

/* Window mode: top up every sender that got acknowledgements this turn. */
static void top_up(struct worker *w)
{
    const struct bench_cfg *cfg = w->cfg;
    uint32_t keep = 0;
    for (uint32_t i = 0; i < w->ndirty; i++) {
        struct conn *s = &w->p->conns[w->dirty[i]];
        s->dirty = 0;
        if (s->send_dead)
            continue;
        if (s->outlen && out_flush(s) < 0)
            s->send_dead = 1;
        uint64_t inflight = s->seq - s->acked;
        if (w->sending && inflight < cfg->window && (!cfg->messages || s->seq < cfg->messages)) {
            uint64_t k = cfg->window - inflight;
            if (cfg->messages && s->seq + k > cfg->messages)
                k = cfg->messages - s->seq;
            send_messages(cfg, w->wbuf, s, k);
            if (cfg->messages && s->seq == cfg->messages)
                w->senders_done++;
        }
        if (s->outlen && !s->send_dead) { /* the socket was full: try again next turn */
            s->dirty = 1;
            w->dirty[keep++] = w->dirty[i];
        }
    }
    w->ndirty = keep;
}

/* ==== The receiving thread ==== */

static void handle_events(struct worker *w, int timeout_ms)
{
    struct epoll_event ev[MAX_EVENTS];
    int n = epoll_wait(w->ep, ev, MAX_EVENTS, timeout_ms);
    for (int i = 0; i < n; i++) {
        struct conn *c = &w->p->conns[ev[i].data.u32];
        if (c->state == C_CONNECTING) {
            if (!(ev[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
                continue;
            connect_done(w, c);
        }
        if (c->state == C_HANDSHAKE) {
            handshake(w, c);
            if (c->state == C_WELCOME)
                read_conn(w, c); /* (EAGAIN, most likely: the welcome follows) */
            continue;
        }
        if (c->state != C_DEAD && c->state != C_CONNECTING && (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
            read_conn(w, c);
    }
    if (w->ndirty)
        top_up(w);
}

static int phase(const struct worker *w)
{
    return atomic_load(&w->sh->phase);
}

static void setup_all(struct worker *w)
{
    while (w->settled < w->n && phase(w) != PH_ABORT) {
        while (w->in_setup < w->cfg->connect_batch && w->next_connect < w->n)
            start_connect(w, &w->p->conns[w->first + w->next_connect++]);
        handle_events(w, 10);
    }
}

/* Each sender's designated receiver is the next member of its room in this thread
 * (wrapping around) that paces nobody yet, so acknowledgements never cross threads.
 * A room's members are contiguous, so the search stays inside the room's block. */
static void choose_ackers(struct worker *w)
{
    const struct bench_cfg *cfg = w->cfg;
    struct conn *cs = &w->p->conns[w->first];
    uint32_t first_gid = cs[0].gid, end_gid = first_gid + w->n;
    for (uint32_t i = 0; i < w->n; i++) {
        if (!cs[i].usable || !bench_is_sender(cfg, cs[i].gid))
            continue;
        w->nsenders++;
        uint32_t g0 = bench_room_of(cfg, cs[i].gid) * cfg->room_size;
        uint32_t lo = g0 > first_gid ? g0 : first_gid;
        uint32_t hi = g0 + cfg->room_size < end_gid ? g0 + cfg->room_size : end_gid;
        for (uint32_t k = 1; k < hi - lo && !cs[i].paced; k++) {
            struct conn *d = &cs[lo + (cs[i].gid - lo + k) % (hi - lo) - first_gid];
            if (d->usable && d->acks_for < 0) {
                d->acks_for = (int32_t)(w->first + i);
                cs[i].paced = 1;
            }
        }
    }
}

static void start_window(struct worker *w)
{
    struct conn *cs = &w->p->conns[w->first];
    w->sending = 1;
    for (uint32_t i = 0; i < w->n; i++) {
        if (!cs[i].usable || !bench_is_sender(w->cfg, cs[i].gid))
            continue;
        if (!cs[i].paced) { /* alone in its room in this thread: nobody here can pace it */
            w->senders_done++;
            continue;
        }
        cs[i].dirty = 1;
        w->dirty[w->ndirty++] = w->first + i;
    }
    top_up(w);
}

static void publish_sent(struct worker *w)
{
    _Atomic uint64_t *sent = bench_sent(w->sh);
    struct conn *cs = &w->p->conns[w->first];
    for (uint32_t i = 0; i < w->n; i++)
        if (cs[i].usable && bench_is_sender(w->cfg, cs[i].gid))
            atomic_store(&sent[bench_sender_index(w->cfg, cs[i].gid)], cs[i].seq);
    w->published = 1;
    atomic_fetch_add(&w->sh->stopped, 1);
}

/* What each ready receiver should get, given every sender's final count. */
static uint64_t expected_for(struct worker *w, const struct conn *r)
{
    _Atomic uint64_t *sent = bench_sent(w->sh);
    const struct bench_cfg *cfg = w->cfg;
    uint32_t room = bench_room_of(cfg, r->gid), self = bench_member_of(cfg, r->gid);
    uint64_t total = 0;
    for (uint32_t m = 0; m < cfg->senders; m++)
        if (m != self)
            total += atomic_load(&sent[(size_t)room * cfg->senders + m]);
    return total;
}

static void compute_expected(struct worker *w)
{
    struct conn *cs = &w->p->conns[w->first];
    w->expected = 0;
    for (uint32_t i = 0; i < w->n; i++)
        if (cs[i].usable)
            w->expected += expected_for(w, &cs[i]);
}

/* After the drain: missing receptions, and sequence numbers beyond what was sent. */
static void final_check(struct worker *w)
{
    _Atomic uint64_t *sent = bench_sent(w->sh);
    const struct bench_cfg *cfg = w->cfg;
    struct conn *cs = &w->p->conns[w->first];
    for (uint32_t i = 0; i < w->n; i++) {
        struct conn *r = &cs[i];
        if (!r->usable)
            continue;
        uint64_t want = expected_for(w, r);
        w->res->expected += want;
        w->res->delivered += r->delivered;
        if (r->delivered < want)
            w->res->missing += want - r->delivered;
        uint32_t room = bench_room_of(cfg, r->gid);
        for (uint32_t m = 0; m < cfg->senders; m++) {
            uint64_t s = atomic_load(&sent[(size_t)room * cfg->senders + m]);
            if (r->pairs[m].next > s) {
                w->res->corrupt += r->pairs[m].next - s;
                note_problem(w, "%s", "received sequence numbers that were never sent", 46);
            }
        }
    }
}

static void run_messages(struct worker *w)
{
    const struct bench_cfg *cfg = w->cfg;
    int window = cfg->rate <= 0;
    if (window) {
        choose_ackers(w);
        start_window(w);
    }
    /* Send (window mode) until told to stop or every local sender is done. */
    while (window && !w->published) {
        int ph = phase(w);
        if (ph >= PH_STOP || (cfg->messages && w->senders_done == w->nsenders)) {
            w->sending = 0;
            publish_sent(w);
            break;
        }
        handle_events(w, w->ndirty ? 1 : 10);
    }
    /* Wait until every sending party has published, then drain. */
    while (atomic_load(&w->sh->stopped) < w->sh->send_parties && phase(w) != PH_ABORT)
        handle_events(w, w->ndirty ? 1 : 10);
    compute_expected(w);
    uint64_t deadline = bench_now_ns() + (uint64_t)(cfg->drain * 1e9);
    while (w->delivered < w->expected && bench_now_ns() < deadline && phase(w) != PH_ABORT)
        handle_events(w, w->ndirty ? 1 : 10);
    final_check(w);
}

static void *worker_thread(void *arg)
{
    struct worker *w = arg;
    setup_all(w);
    while (phase(w) < PH_RUN)
        handle_events(w, 10);
    int ph = phase(w);
    if ((ph == PH_RUN || ph == PH_STOP) && w->cfg->senders > 0)
        run_messages(w);
    atomic_fetch_add(&w->sh->done, 1);
    /* Keep reading until the parent has its numbers, so no server sees a stalled client. */
    while (phase(w) < PH_DONE)
        handle_events(w, 10);
    return NULL;
}

/* ==== The rate-mode sending thread ==== */

struct rate_sender {
    struct proc *p;
    uint32_t *idx, n; /* the process's usable senders */
    char *buf;
};

static void sleep_until(uint64_t t_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(t_ns / 1000000000u), .tv_nsec = (long)(t_ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* Send k messages round-robin from sender *rr on: each sender's share in one write. */
static void send_round(struct rate_sender *rs, uint64_t k, uint32_t *rr)
{
    const struct bench_cfg *cfg = rs->p->cfg;
    uint64_t each = k / rs->n, extra = k % rs->n;
    uint32_t steps = k < rs->n ? (uint32_t)k : rs->n;
    for (uint32_t j = 0; j < steps; j++) {
        struct conn *s = &rs->p->conns[rs->idx[(*rr + j) % rs->n]];
        send_messages(cfg, rs->buf, s, each + (j < extra));
    }
    *rr = (uint32_t)((*rr + extra) % rs->n);
}

/* After the last send: give a full socket up to a second to take the rest. */
static void flush_leftovers(struct conn *s)
{
    for (int tries = 0; s->outlen && !s->send_dead; tries++) {
        if (out_flush(s) < 0 || tries == 1000)
            s->send_dead = 1;
        else if (s->outlen)
            sleep_until(bench_now_ns() + 1000000);
    }
}

static void *rate_thread(void *arg)
{
    struct rate_sender *rs = arg;
    struct proc *p = rs->p;
    const struct bench_cfg *cfg = p->cfg;
    while (atomic_load(&p->sh->phase) < PH_RUN)
        sleep_until(bench_now_ns() + 1000000);
    for (uint32_t i = 0; i < p->n; i++)
        if (p->conns[i].usable && bench_is_sender(cfg, p->conns[i].gid))
            rs->idx[rs->n++] = i;
    uint64_t start = atomic_load(&p->sh->start_ns), total = 0, limit = cfg->messages * rs->n;
    /* This process's share of the offered load. */
    double rate = cfg->rate * rs->n / ((double)cfg->rooms * cfg->senders);
    uint32_t rr = 0;
    while (rs->n && atomic_load(&p->sh->phase) == PH_RUN && (!limit || total < limit)) {
        uint64_t now = bench_now_ns();
        uint64_t due = now < start ? 0 : (uint64_t)((double)(now - start) * rate / 1e9) + 1;
        if (limit && due > limit)
            due = limit;
        if (due > total) {
            send_round(rs, due - total, &rr);
            total = due;
        }
        sleep_until(start + (uint64_t)((double)total * 1e9 / rate));
    }
    _Atomic uint64_t *sent = bench_sent(p->sh);
    for (uint32_t i = 0; i < rs->n; i++) {
        struct conn *s = &p->conns[rs->idx[i]];
        flush_leftovers(s);
        atomic_store(&sent[bench_sender_index(cfg, s->gid)], s->seq);
    }
    atomic_fetch_add(&p->sh->stopped, 1);
    return NULL;
}

/* ==== The worker process ==== */

static int init_worker(struct worker *w, struct proc *p, uint32_t t)
{
    const struct bench_cfg *cfg = p->cfg;
    uint32_t a, b;
    bench_split(cfg, p->lo, p->lo + p->n, cfg->threads, t, &a, &b);
    memset(w, 0, sizeof *w);
    w->ep = -1;
    w->p = p;
    w->cfg = cfg;
    w->sh = p->sh;
    w->first = a - p->lo;
    w->n = b - a;
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    w->rbuf = malloc(MAX_PART + READ_CHUNK);
    w->wbuf = malloc(WRITE_CHUNK);
    w->dirty = malloc(sizeof *w->dirty * (w->n ? w->n : 1));
    return w->ep >= 0 && w->rbuf && w->wbuf && w->dirty ? 0 : -1;
}

static void free_worker(struct worker *w)
{
    if (w->ep >= 0)
        close(w->ep);
    free(w->rbuf);
    free(w->wbuf);
    free(w->dirty);
}

static void free_conns(struct proc *p)
{
    for (uint32_t i = 0; i < p->n; i++) {
        struct conn *c = &p->conns[i];
        tlsc_conn_free(c->tls);
        if (c->fd >= 0)
            close(c->fd);
        free(c->part);
        free(c->raw);
        free(c->expect);
        free(c->pairs);
        free(c->out);
    }
    free(p->conns);
}

int bench_worker_main(const struct bench_cfg *cfg, struct bench_shared *sh, uint32_t proc_no)
{
    struct proc p = {.cfg = cfg, .sh = sh};
    uint32_t a, b;
    bench_split(cfg, 0, cfg->clients, cfg->procs, proc_no, &a, &b);
    p.lo = a;
    p.n = b - a;
    p.conns = calloc(p.n ? p.n : 1, sizeof *p.conns);
    struct worker *ws = calloc(cfg->threads, sizeof *ws);
    pthread_t *tids = calloc(cfg->threads, sizeof *tids);
    struct rate_sender rs = {.p = &p, .idx = malloc(sizeof(uint32_t) * (p.n ? p.n : 1)), .buf = malloc(WRITE_CHUNK)};
    if (!p.conns || !ws || !tids || !rs.idx || !rs.buf) {
        fprintf(stderr, "natter-bench: worker %u: out of memory\n", proc_no);
        return 2;
    }
    if (cfg->tls) {
        char why[300];
        if (!(p.tls = tlsc_new(0, NULL, why, sizeof why))) {
            fprintf(stderr, "natter-bench: worker %u: %s\n", proc_no, why);
            return 2;
        }
    }
    for (uint32_t i = 0; i < p.n; i++) {
        p.conns[i].fd = -1;
        p.conns[i].gid = p.lo + i;
        p.conns[i].acks_for = -1;
        p.conns[i].irc = (uint8_t)bench_is_irc(cfg, p.lo + i);
        p.conns[i].ws = (uint8_t)(p.conns[i].irc && cfg->ws);
    }
    struct bench_result *res = bench_results(sh, cfg);
    int rc = 0;
    uint32_t started = 0;
    for (uint32_t t = 0; t < cfg->threads; t++)
        ws[t].ep = -1;
    for (uint32_t t = 0; t < cfg->threads; t++) {
        if (init_worker(&ws[t], &p, t) < 0) {
            fprintf(stderr, "natter-bench: worker %u: cannot set up a thread: %s\n", proc_no, strerror(errno));
            rc = 2;
            break;
        }
        ws[t].res = &res[proc_no * cfg->threads + t];
        if (pthread_create(&tids[t], NULL, worker_thread, &ws[t]) != 0) {
            rc = 2;
            break;
        }
        started++;
    }
    pthread_t rate_tid;
    int rate_started = rc == 0 && cfg->rate > 0 && cfg->senders > 0 &&
                       pthread_create(&rate_tid, NULL, rate_thread, &rs) == 0;
    if (rc == 0 && cfg->rate > 0 && cfg->senders > 0 && !rate_started)
        rc = 2;
    if (rc != 0)
        atomic_store(&sh->phase, PH_ABORT);
    for (uint32_t t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    if (rate_started)
        pthread_join(rate_tid, NULL);
    for (uint32_t t = 0; t < cfg->threads; t++)
        free_worker(&ws[t]);
    free_conns(&p);
    tlsc_free(p.tls);
    free(ws);
    free(tids);
    free(rs.idx);
    free(rs.buf);
    return rc;
}
