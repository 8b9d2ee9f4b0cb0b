/* test_conn.c - connections (server/conn.c) over socketpairs, with test codecs
 * and a test transport: framing through the line framer, input kept and
 * offered again, codec switching with leftover bytes, flood control worded by
 * the codec, refusals, ids, the transport seam (handshake, pending input) and a
 * clean second conn_init. The loop is driven by hand, turn by turn. */
#include "server/conn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "core/lineframe.h"
#include "core/loop.h"
#include "server/transport/tcp.h"

static struct loop *L;

/* Turn the loop until cond() holds or 5 s pass; returns cond(). */
static int spin(int (*cond)(void))
{
    long long deadline = loop_now_ms() + 5000;
    while (!cond() && loop_now_ms() < deadline)
        loop_turn(L, 10);
    loop_turn(L, 0); /* and once more, so that what was queued is written */
    return cond();
}

/* A client end of a socketpair, and the server end adopted by conn.c. */
static int client(const struct conn_profile *p, const char *peer, struct conn **out)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    struct conn *c = conn_new(sv[1], peer, p);
    if (out)
        *out = c;
    return sv[0];
}

/* Everything the server has sent to fd so far (appended to a static buffer per fd). */
#define MAXFD 64
static char got[MAXFD][8192];
static size_t gotlen[MAXFD];
static int eof[MAXFD];

static void drain(int fd)
{
    for (;;) {
        char buf[4096];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0)
            eof[fd] = 1;
        if (n <= 0)
            return;
        size_t room = sizeof got[fd] - 1 - gotlen[fd];
        size_t k = (size_t)n < room ? (size_t)n : room;
        memcpy(got[fd] + gotlen[fd], buf, k);
        gotlen[fd] += k;
        got[fd][gotlen[fd]] = '\0';
    }
}

static void forget_output(int fd)
{
    gotlen[fd] = 0;
    got[fd][0] = '\0';
    eof[fd] = 0;
}

/* ==== A test codec: lines through the line framer, one token each ==== */

static char lines[64][64]; /* what the codec was given, "A:text" or "B:text" */
static int nlines;
static int opens, closes, limits[8];
static const char *last_close_reason;
static const struct codec codec_b;

static void record(char tag, const char *line)
{
    if (nlines < 64)
        snprintf(lines[nlines++], sizeof lines[0], "%c:%s", tag, line ? line : "(too long)");
}

static int line_a(void *ctx, char *line, size_t len)
{
    (void)len;
    struct conn *c = ctx;
    record('A', line);
    conn_spoke(c);
    if (line && strcmp(line, "SWITCH") == 0) {
        conn_set_codec(c, &codec_b);
        return 0; /* stop: the rest belongs to codec B */
    }
    if (line && strcmp(line, "QUIT") == 0) {
        struct msg *m = msg_new("goodbye\n", 8);
        conn_send(c, m);
        msg_unref(m);
        conn_close(c, "quit", 1);
        return 0;
    }
    if (line && strcmp(line, "ECHO") == 0) {
        struct msg *m = msg_new("echo\n", 5);
        conn_send(c, m);
        msg_unref(m);
    }
    return conn_spend(c, 1);
}

static size_t input_a(struct conn *c, char *data, size_t len)
{
    return lineframe_input(&c->frame, data, len, conn_limits(c)->max_line, line_a, c, NULL);
}

static int line_b(void *ctx, char *line, size_t len)
{
    (void)len;
    record('B', line);
    return conn_spend(ctx, 1);
}

static size_t input_b(struct conn *c, char *data, size_t len)
{
    return lineframe_input(&c->frame, data, len, conn_limits(c)->max_line, line_b, c, NULL);
}

static int open_any(struct conn *c)
{
    (void)c;
    opens++;
    return 0;
}

static void limit_any(struct conn *c, enum conn_limit what, double value)
{
    (void)value;
    limits[what]++;
    struct msg *m = msg_printf("limit %d\n", (int)what);
    conn_send(c, m);
    msg_unref(m);
}

static const char *refusal_any(enum conn_limit what)
{
    return what == LIMIT_PER_ADDR ? "too many from you\n" : "full\n";
}

static void close_any(struct conn *c, const char *reason)
{
    (void)c;
    closes++;
    last_close_reason = reason;
}

static const struct codec codec_a = {"a", open_any, input_a, limit_any, refusal_any, close_any, NULL};
static const struct codec codec_b = {"b", open_any, input_b, limit_any, refusal_any, close_any, NULL};

static void reset_record(void)
{
    nlines = opens = closes = 0;
    memset(limits, 0, sizeof limits);
    last_close_reason = NULL;
}

static int have_lines_n;
static int have_lines(void) { return nlines >= have_lines_n; }
static int no_conns(void) { return conn_count() == 0; }

static struct conn_profile profile_a(void)
{
    return (struct conn_profile){.name = "test", .codec = &codec_a,
                                 .lim = {.max_line = 32, .max_outbuf = 1 << 16, .burst = 10}};
}

/* ==== tests ==== */

static void test_framing(void)
{
    struct conn_profile p = profile_a();
    reset_record();
    struct conn *c;
    int fd = client(&p, "10.0.0.1:1", &c);
    CHECK(c && opens == 1 && conn_count() == 1, "conn_new adopts a socket and opens its codec");
    write(fd, "one\ntw", 6);
    have_lines_n = 1;
    spin(have_lines);
    CHECK(nlines == 1 && strcmp(lines[0], "A:one") == 0, "a complete line reaches the codec");
    CHECK(c->in.len == 2 && memcmp(c->in.data, "tw", 2) == 0, "an unfinished line is kept, sized to fit");
    write(fd, "o\r\nthree\n", 9);
    have_lines_n = 3;
    spin(have_lines);
    CHECK(nlines == 3 && strcmp(lines[1], "A:two") == 0 && strcmp(lines[2], "A:three") == 0,
          "the kept bytes come first when more input arrives");
    CHECK(c->in.data == NULL && c->in.len == 0, "nothing is kept once every line is complete");
    write(fd, "0123456789012345678901234567890123456789", 40);
    write(fd, "...\nafter\n", 10);
    have_lines_n = 5;
    spin(have_lines);
    CHECK(nlines == 5 && strcmp(lines[3], "A:(too long)") == 0 && strcmp(lines[4], "A:after") == 0,
          "an overlong line is reported once and the next line arrives");
    close(fd);
    CHECK(spin(no_conns) && closes == 1 && strcmp(last_close_reason, "connection closed") == 0,
          "EOF closes the connection and tells the codec why");
}

static void test_switch(void)
{
    struct conn_profile p = profile_a();
    reset_record();
    struct conn *c;
    int fd = client(&p, "10.0.0.1:2", &c);
    write(fd, "first\nSWITCH\nsecond\nthi", 23);
    have_lines_n = 3;
    spin(have_lines);
    CHECK(nlines == 3 && strcmp(lines[0], "A:first") == 0 && strcmp(lines[1], "A:SWITCH") == 0 &&
              strcmp(lines[2], "B:second") == 0,
          "after conn_set_codec the new codec gets the rest of the same read");
    CHECK(c->codec == &codec_b && opens == 2 && closes == 1 && last_close_reason == NULL,
          "a switch closes the old codec (reason NULL) and opens the new one");
    CHECK(c->in.len == 3, "the new codec's unfinished line is kept");
    write(fd, "rd\n", 3);
    have_lines_n = 4;
    spin(have_lines);
    CHECK(nlines == 4 && strcmp(lines[3], "B:third") == 0, "the new codec frames what follows with the kept bytes");

    /* A switch from outside input (a timer, a worker's answer): the kept input is
     * offered to the new codec before the loop sleeps. */
    write(fd, "kept", 4);
    spin(have_lines);
    conn_set_codec(c, &codec_a);
    write(fd, "\n", 1);
    have_lines_n = 5;
    spin(have_lines);
    CHECK(nlines == 5 && strcmp(lines[4], "A:kept") == 0, "a switch outside input keeps the input for the new codec");
    close(fd);
    spin(no_conns);
}

static void test_flood(void)
{
    struct conn_profile p = profile_a();
    p.lim.rate = 20;
    p.lim.burst = 3;
    reset_record();
    struct conn *c;
    int fd = client(&p, "10.0.0.1:3", &c);
    write(fd, "1\n2\n3\n4\n5\n6\n", 12);
    have_lines_n = 3;
    spin(have_lines);
    CHECK(nlines == 3, "a client out of tokens is paused mid-read (a burst of 3: three lines)");
    CHECK(limits[LIMIT_RATE] == 1, "the pause is worded by the codec (LIMIT_RATE), once");
    CHECK(c->in.len == 6 && memcmp(c->in.data, "4\n5\n6\n", 6) == 0, "the input after the pause is kept, not lost");
    drain(fd);
    CHECK(strstr(got[fd], "limit 0\n") != NULL, "the codec's words reach the client");
    have_lines_n = 6;
    CHECK(spin(have_lines) && strcmp(lines[5], "A:6") == 0, "tokens come back with time, and the kept lines follow in order");
    CHECK(limits[LIMIT_RATE] == 1, "resuming a bout does not repeat the warning");
    close(fd);
    spin(no_conns);
    forget_output(fd);
}

static void test_refuse_and_ids(void)
{
    struct conn_profile p = profile_a();
    p.lim.max_per_ip = 1;
    reset_record();
    struct conn *a, *b;
    int fa = client(&p, "10.0.0.9:1", &a);
    int fb = client(&p, "10.0.0.9:2", &b);
    CHECK(a && !b, "a second connection from one address is refused at max_per_ip 1");
    drain(fb);
    CHECK(strcmp(got[fb], "too many from you\n") == 0 && eof[fb], "the refusal is the codec's text, then a close");
    forget_output(fb);
    close(fb);
    uint64_t id = a->id;
    CHECK(conn_by_id(id) == a, "conn_by_id finds a live connection");
    CHECK(conn_by_id(id + (1u << 24)) == NULL, "an id with the same descriptor but another count is not it");
    conn_close(a, "test", 0);
    CHECK(conn_by_id(id) == NULL, "conn_by_id forgets a connection as soon as it is closing");
    spin(no_conns);
    close(fa);
    struct conn *again;
    int fc = client(&p, "10.0.0.9:3", &again);
    CHECK(again && again->id != id, "a new connection on a reused descriptor has a new id");
    close(fc);
    spin(no_conns);
}

/* ==== A test transport over the socket: a handshake, then bytes one at a time ====
 * The handshake waits for "HI" from the client. Reads take everything the socket
 * has into a buffer of its own and hand it out one byte per call, so input sits
 * in the transport where no descriptor will announce it (like TLS records). */

struct slow {
    struct transport base;
    struct transport *sock;
    char buf[256];
    size_t len, off;
    int ready;
};

static int handshakes;

static int slow_handshake(struct transport *t)
{
    struct slow *s = (struct slow *)t;
    handshakes++;
    char hi[2];
    ssize_t n = s->sock->ops->read(s->sock, hi, 2);
    if (n == 2 && memcmp(hi, "HI", 2) == 0)
        return 1;
    if (n < 0 && errno == EAGAIN)
        return 0;
    errno = EPROTO;
    return -1;
}

static ssize_t slow_read(struct transport *t, void *buf, size_t len)
{
    struct slow *s = (struct slow *)t;
    if (s->off == s->len) {
        ssize_t n = s->sock->ops->read(s->sock, s->buf, sizeof s->buf);
        if (n <= 0)
            return n;
        s->len = (size_t)n;
        s->off = 0;
    }
    if (len == 0)
        return 0;
    memcpy(buf, s->buf + s->off++, 1);
    return 1;
}

static ssize_t slow_write(struct transport *t, const void *buf, size_t len)
{
    struct slow *s = (struct slow *)t;
    return s->sock->ops->write(s->sock, buf, len);
}

static size_t slow_pending(struct transport *t)
{
    struct slow *s = (struct slow *)t;
    return s->len - s->off;
}

static int slow_shutdown(struct transport *t)
{
    struct slow *s = (struct slow *)t;
    return s->sock->ops->shutdown(s->sock);
}

static void slow_close(struct transport *t)
{
    struct slow *s = (struct slow *)t;
    s->sock->ops->close(s->sock);
    free(s);
}

static const struct transport_ops slow_ops = {
    .name = "slow", .handshake = slow_handshake, .read = slow_read, .write = slow_write,
    .pending = slow_pending, .shutdown = slow_shutdown, .close = slow_close,
};

static struct transport *slow_wrap(void *arg, struct transport *sock)
{
    (void)arg;
    struct slow *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->base.ops = &slow_ops;
    s->base.fd = sock->fd;
    s->sock = sock;
    return &s->base;
}

static void test_transport(void)
{
    struct conn_profile p = profile_a();
    p.wrap = slow_wrap;
    reset_record();
    handshakes = 0;
    struct conn *c;
    int fd = client(&p, "10.0.0.2:1", &c);
    CHECK(c && opens == 0 && handshakes == 1, "until the handshake is done, the codec is not opened");
    write(fd, "H", 1);
    write(fd, "I", 1);
    loop_turn(L, 10);
    loop_turn(L, 10);
    CHECK(opens == 1, "the codec opens once the transport's handshake is done");
    write(fd, "abc\nECHO\ndef\n", 13);
    have_lines_n = 3;
    CHECK(spin(have_lines) && strcmp(lines[0], "A:abc") == 0 && strcmp(lines[2], "A:def") == 0,
          "input held inside the transport is drained before the loop sleeps");
    drain(fd);
    CHECK(strcmp(got[fd], "echo\n") == 0, "output goes out through the transport");
    forget_output(fd);
    close(fd);
    spin(no_conns);

    reset_record();
    int fd2 = client(&p, "10.0.0.2:2", &c);
    write(fd2, "NO", 2);
    CHECK(spin(no_conns) && opens == 0 && closes == 0, "a failed handshake closes the connection without opening the codec");
    drain(fd2);
    CHECK(gotlen[fd2] == 0, "a transport that is not ready is sent nothing");
    close(fd2);

    /* Flood control over a transport that holds input: the throttled reader's
     * lines wait inside the transport, and come out once it may read again
     * although the socket has nothing more to announce. */
    reset_record();
    p.lim.rate = 20;
    p.lim.burst = 3;
    int fd3 = client(&p, "10.0.0.2:3", &c);
    write(fd3, "HI", 2);
    write(fd3, "1\n2\n3\n4\n5\n6\n", 12);
    have_lines_n = 3;
    spin(have_lines);
    CHECK(nlines == 3 && limits[LIMIT_RATE] == 1, "a throttled reader over a holding transport is paused");
    have_lines_n = 6;
    CHECK(spin(have_lines) && strcmp(lines[5], "A:6") == 0,
          "once resumed, the input held inside the transport is offered without the socket waking");
    close(fd3);
    spin(no_conns);
    forget_output(fd3);
    p.lim.rate = 0;

    /* A handshake that never finishes is cut off by the handshake timeout,
     * with nothing said and the codec never opened. */
    reset_record();
    p.lim.handshake_timeout = 1;
    int fd4 = client(&p, "10.0.0.2:4", &c);
    for (int i = 0; i < 5; i++)
        loop_turn(L, 10);
    CHECK(c && conn_count() == 1, "a handshake that has not finished is waited for");
    CHECK(spin(no_conns) && opens == 0 && last_close_reason == NULL, "a stalled handshake is dropped at the handshake timeout");
    drain(fd4);
    CHECK(gotlen[fd4] == 0 && eof[fd4], "and hears nothing but the close");
    close(fd4);
    forget_output(fd4);
    p.lim.handshake_timeout = 0;

    /* A refusal on a wrapped transport says nothing in clear. */
    p.lim.max_per_ip = 1;
    int fa = client(&p, "10.0.0.3:1", NULL);
    int fb = client(&p, "10.0.0.3:2", &c);
    drain(fb);
    CHECK(!c && gotlen[fb] == 0 && eof[fb], "a refusal on a transport over the socket is a close, nothing in clear");
    close(fa), close(fb);
    spin(no_conns);
}

/* The lingering close: the last words are written, our side shut, and the
 * socket kept until the peer closes too. */
static int lingering(void) { return conn_count() == 1; }
static int got_goodbye_fd = -1;
static int got_goodbye(void)
{
    drain(got_goodbye_fd);
    return strstr(got[got_goodbye_fd], "goodbye\n") != NULL && eof[got_goodbye_fd];
}

static void test_linger(const char *when)
{
    struct conn_profile p = profile_a();
    reset_record();
    int fd = client(&p, "10.0.0.4:1", NULL);
    write(fd, "QUIT\nunread", 11);
    got_goodbye_fd = fd;
    int ok = spin(got_goodbye);
    char name[96];
    snprintf(name, sizeof name, "%s: a closing connection writes its last words and shuts its side", when);
    CHECK(ok, name);
    snprintf(name, sizeof name, "%s: then lingers until the peer closes too", when);
    CHECK(lingering(), name);
    close(fd);
    snprintf(name, sizeof name, "%s: and is gone once the peer has closed", when);
    CHECK(spin(no_conns), name);
    forget_output(fd);
}

static void test_reinit(void)
{
    struct conn_profile p = profile_a();
    int fd = client(&p, "10.0.0.5:1", NULL);
    conn_shutdown();
    drain(fd);
    CHECK(eof[fd] && conn_count() == 0, "conn_shutdown closes every connection");
    close(fd);
    forget_output(fd);
    CHECK(conn_init(L, MAXFD) == 0, "conn_init after conn_shutdown");
    test_linger("after a second conn_init");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    L = loop_new(MAXFD);
    if (conn_init(L, MAXFD) < 0)
        return 1;
    test_framing();
    test_switch();
    test_flood();
    test_refuse_and_ids();
    test_transport();
    test_linger("first conn_init");
    test_reinit();
    conn_shutdown();
    loop_free(L);
    return check_done();
}
