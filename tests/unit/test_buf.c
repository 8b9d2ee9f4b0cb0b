/* test_buf.c - msg refcounts, outq writes over real sockets/pipes, inbuf framing. */
#include "core/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

/* ==== helpers ==== */

static void nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Read everything available from fd (non-blocking) into out at *len. */
static size_t drain(int fd, char *out, size_t *len, size_t cap)
{
    size_t got = 0;
    for (;;) {
        char tmp[65536];
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n <= 0)
            break;
        if (out && *len + (size_t)n <= cap) {
            memcpy(out + *len, tmp, (size_t)n);
            *len += (size_t)n;
        }
        got += (size_t)n;
    }
    return got;
}

/* Msg number i of a stream: its bytes say which msg and which byte, so a lost,
 * repeated or reordered piece shows up in the comparison. */
static struct msg *numbered(unsigned i, size_t len)
{
    char *p = malloc(len);
    for (size_t k = 0; k < len; k++)
        p[k] = (char)('A' + (i * 7 + k) % 26);
    if (len)
        p[len - 1] = '\n';
    struct msg *m = msg_new(p, len);
    free(p);
    return m;
}

/* ==== msg ==== */

static void test_msg(void)
{
    struct msg *m = msg_new("hello\n", 6);
    CHECK(m && m->refs == 1 && m->len == 6 && memcmp(m->data, "hello\n", 6) == 0,
          "msg_new copies the bytes with one reference");
    CHECK(msg_ref(m) == m && m->refs == 2, "msg_ref adds a reference and returns the msg");
    msg_unref(m);
    CHECK_INT(m->refs, 1, "msg_unref drops one reference");
    msg_unref(m); /* freed: ASan would report a leak otherwise, or a double free below */
    msg_unref(NULL);
    CHECK(1, "msg_unref(NULL) is a no-op");

    struct msg *e = msg_new("", 0);
    CHECK(e && e->len == 0, "msg_new of zero bytes works");
    msg_unref(e);

    struct msg *p = msg_printf("%s <%s> %d\n", "#lobby", "alice", 42);
    CHECK_MEM(p->data, p->len, "#lobby <alice> 42\n", 18, "msg_printf formats a short line");
    msg_unref(p);

    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    struct msg *b = msg_printf("[%s]", big);
    int ok = b && b->len == 2001 && b->data[0] == '[' && b->data[2000] == ']' && b->refs == 1;
    for (size_t i = 1; ok && i < 2000; i++)
        ok = b->data[i] == 'x';
    CHECK(ok, "msg_printf formats a line longer than its stack buffer");
    msg_unref(b);
}

/* ==== outq ==== */

static void test_outq_basic(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    nonblock(sv[0]);
    nonblock(sv[1]);

    struct outq q = {0};
    CHECK(q.ring == NULL, "an empty outq holds no memory");
    struct msg *a = msg_new("one\n", 4), *b = msg_new("two two\n", 8);
    outq_push(&q, a);
    CHECK(q.ring != NULL && q.cap == 8 && q.count == 1, "the first push allocates a ring of 8");
    outq_push(&q, b);
    outq_push(&q, a);
    CHECK_INT(q.bytes, 16, "outq bytes counts every queued byte");
    CHECK_INT(a->refs, 3, "outq_push takes a reference per push");

    ssize_t w = outq_write(&q, sv[0]);
    CHECK_INT(w, 16, "outq_write returns the bytes written");
    char got[64];
    size_t glen = 0;
    drain(sv[1], got, &glen, sizeof got);
    CHECK_MEM(got, glen, "one\ntwo two\none\n", 16, "outq_write sends the msgs in order");
    CHECK(q.ring == NULL && q.count == 0 && q.bytes == 0 && q.cap == 0,
          "a drained outq frees its ring");
    CHECK(a->refs == 1 && b->refs == 1, "written msgs are unreferenced");

    CHECK_INT(outq_write(&q, sv[0]), 0, "outq_write of an empty queue returns 0");

    outq_push(&q, a);
    outq_push(&q, b);
    outq_push(&q, b);
    outq_clear(&q);
    CHECK(a->refs == 1 && b->refs == 1, "outq_clear unreferences every queued msg");
    CHECK(q.ring == NULL && q.count == 0 && q.bytes == 0, "outq_clear leaves an empty queue");

    outq_push(&q, a);
    close(sv[1]);
    errno = 0;
    w = outq_write(&q, sv[0]);
    CHECK(w == -1 && errno == EPIPE, "outq_write reports a real error (EPIPE) as -1");
    outq_clear(&q);
    msg_unref(a);
    msg_unref(b);
    close(sv[0]);
}

/* Fill a socket until EAGAIN, then drain it bit by bit: partial writes, bytes
 * accounting and the exact byte stream. */
static void test_outq_fill(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    nonblock(sv[0]);
    nonblock(sv[1]);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);

    enum { N = 3000, MAXBYTES = N * 200 + N / 10 * 25000 };
    size_t total = 0;
    struct outq q = {0};
    char *want = malloc(MAXBYTES), *got = malloc(MAXBYTES);
    size_t wlen = 0, glen = 0;
    for (unsigned i = 0; i < N; i++) {
        /* Mostly chat-sized lines, every tenth one big: a writev of small msgs
         * goes out whole, a big msg is cut where the socket fills up. */
        size_t len = i % 10 == 9 ? 5000 + (i * 7919) % 20000 : 1 + (i * 37) % 199;
        struct msg *m = numbered(i, len);
        memcpy(want + wlen, m->data, len);
        wlen += len;
        outq_push(&q, m);
        msg_unref(m); /* the queue's reference is now the only one */
        total += len;
    }
    CHECK(q.cap >= N && (q.cap & (q.cap - 1)) == 0, "the ring grows to a power of two");

    ssize_t w = outq_write(&q, sv[0]);
    CHECK(w > 0 && (size_t)w < total, "outq_write writes what fits into a full socket");
    CHECK_INT(q.bytes, total - (size_t)w, "bytes left = bytes queued - bytes written");
    size_t written = (size_t)w;
    for (int i = 0; i < 10 && (w = outq_write(&q, sv[0])) > 0; i++)
        written += (size_t)w; /* a short write may leave a little room */
    CHECK(w == 0 && q.count > 0, "outq_write to a full socket returns 0, not an error");

    int saw_partial = 0, accounting_ok = 1, rounds = 0;
    while (q.count > 0 && rounds < 100000) {
        rounds++;
        if (q.off > 0)
            saw_partial = 1;
        drain(sv[1], got, &glen, MAXBYTES);
        w = outq_write(&q, sv[0]);
        if (w < 0)
            break;
        written += (size_t)w;
        if (q.bytes != total - written)
            accounting_ok = 0;
    }
    drain(sv[1], got, &glen, MAXBYTES);
    CHECK(q.count == 0 && q.ring == NULL, "a filled outq drains completely and frees its ring");
    CHECK(saw_partial, "a msg can be written partially (off > 0) and resumed");
    CHECK(accounting_ok && written == total, "bytes accounting holds through partial writes");
    CHECK_MEM(got, glen, want, wlen, "the reader gets exactly the queued bytes, in order");
    free(want);
    free(got);
    close(sv[0]);
    close(sv[1]);
}

/* A pipe of one page takes exactly one page per write when empty, so the ring's
 * state after each write is known: wrap it, then grow it while wrapped. */
static void test_outq_ring(void)
{
    int p[2];
    if (pipe(p) < 0) {
        CHECK(0, "pipe for the ring test");
        return;
    }
    nonblock(p[0]);
    nonblock(p[1]);
    long page = sysconf(_SC_PAGESIZE);
    fcntl(p[1], F_SETPIPE_SZ, (int)page);
    int cap = fcntl(p[1], F_GETPIPE_SZ);

    size_t msz = (size_t)cap / 4 - 24; /* four msgs and a bit fill the pipe */
    char *want = malloc(64 * msz), *got = malloc(64 * msz);
    size_t wlen = 0, glen = 0;
    unsigned next = 0;
    struct outq q = {0};
#define PUSH()                                  \
    do {                                        \
        struct msg *m_ = numbered(next++, msz); \
        memcpy(want + wlen, m_->data, msz);     \
        wlen += msz;                            \
        outq_push(&q, m_);                      \
        msg_unref(m_);                          \
    } while (0)

    for (int i = 0; i < 8; i++)
        PUSH();
    CHECK(q.cap == 8 && q.count == 8, "eight msgs fill the first ring");
    ssize_t w = outq_write(&q, p[1]);
    CHECK_INT(w, cap, "a write fills the pipe exactly");
    CHECK(q.head == 4 && q.count == 4 && q.off == (uint32_t)cap - 4 * (uint32_t)msz,
          "after a partial write head, count and off point into the fifth msg");
    drain(p[0], got, &glen, 64 * msz);

    for (int i = 0; i < 4; i++)
        PUSH();
    CHECK(q.cap == 8 && q.count == 8 && q.head + q.count > q.cap,
          "pushes after consumption wrap around the ring without growing");
    PUSH();
    CHECK(q.cap == 16 && q.count == 9 && q.head == 0, "a push into a full wrapped ring grows and unwraps it");
    for (int i = 0; i < 20; i++)
        PUSH();
    CHECK_INT(q.bytes, wlen - (size_t)cap, "bytes still queued after wrapping and growing");

    int rounds = 0;
    while (q.count > 0 && rounds++ < 1000) {
        if (outq_write(&q, p[1]) < 0)
            break;
        drain(p[0], got, &glen, 64 * msz);
    }
    CHECK(q.count == 0 && q.ring == NULL, "the grown ring drains and is freed");
    CHECK_MEM(got, glen, want, wlen, "wrapping and growing keep the msgs in order");
#undef PUSH
    free(want);
    free(got);
    close(p[0]);
    close(p[1]);
}

/* ==== inbuf ==== */

#define MAXLINES 64
struct rec {
    int n;            /* callbacks so far */
    char *line[MAXLINES]; /* NULL for "overlong" */
    size_t len[MAXLINES];
    int stop_at;      /* return INBUF_STOP from callback number stop_at (1-based), 0 = never */
    int pause_at;     /* return INBUF_PAUSE from callback number pause_at */
};

static int on_line(void *ctx, const char *line, size_t len)
{
    struct rec *r = ctx;
    if (r->n < MAXLINES) {
        r->line[r->n] = line ? memcpy(malloc(len + 1), line, len) : NULL;
        if (line)
            r->line[r->n][len] = '\0';
        r->len[r->n] = len;
    }
    r->n++;
    if (r->stop_at && r->n == r->stop_at)
        return INBUF_STOP;
    return r->pause_at && r->n == r->pause_at ? INBUF_PAUSE : INBUF_GO;
}

static void rec_clear(struct rec *r)
{
    for (int i = 0; i < r->n && i < MAXLINES; i++)
        free(r->line[i]);
    memset(r, 0, sizeof *r);
}

/* Feed s to a fresh inbuf in pieces of `step` bytes (0 = all at once). */
static int feed(struct inbuf *b, struct rec *r, const char *s, size_t step, size_t max)
{
    size_t n = strlen(s);
    if (!step)
        return inbuf_feed(b, s, n, max, on_line, r);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i += step)
        rc = inbuf_feed(b, s + i, n - i < step ? n - i : step, max, on_line, r);
    return rc;
}

/* inbuf_clear frees the kept line; a new connection also starts not skipping. */
static void reset(struct inbuf *b)
{
    inbuf_clear(b);
    *b = (struct inbuf){0};
}

static int lines_are(const struct rec *r, int n, const char *const *want)
{
    if (r->n != n)
        return 0;
    for (int i = 0; i < n; i++) {
        if (!want[i] != !r->line[i])
            return 0;
        if (want[i] && (strcmp(want[i], r->line[i]) != 0 || strlen(want[i]) != r->len[i]))
            return 0;
    }
    return 1;
}

/* Flood control: a callback's INBUF_PAUSE keeps the rest for inbuf_resume. */
static void test_pause(struct inbuf *bp, struct rec *rp, size_t max)
{
    struct inbuf b = *bp;
    struct rec r = *rp;
    r.pause_at = 1;
    int rc = feed(&b, &r, "a\nb\r\nc", 0, max);
    CHECK(rc == INBUF_PAUSE && r.n == 1 && b.held, "inbuf: a pause returns INBUF_PAUSE and holds the rest");
    r.pause_at = 0;
    rc = inbuf_resume(&b, max, on_line, &r);
    CHECK(rc == INBUF_GO && lines_are(&r, 2, (const char *[]){"a", "b"}) && !b.held && b.len == 1,
          "inbuf_resume frames the held input and keeps its unfinished line");
    feed(&b, &r, "\n", 0, max);
    CHECK(lines_are(&r, 3, (const char *[]){"a", "b", "c"}), "inbuf: after a resume, new input finishes the kept line");
    CHECK(inbuf_resume(&b, max, on_line, &r) == INBUF_GO && r.n == 3, "inbuf_resume without a pause does nothing");
    rec_clear(&r);
    reset(&b);

    r.pause_at = 1;
    rc = feed(&b, &r, "only\n", 0, max);
    r.pause_at = 0;
    rc = inbuf_resume(&b, max, on_line, &r);
    CHECK(rc == INBUF_GO && r.n == 1 && !b.held && b.data == NULL,
          "inbuf: a pause on the last line holds nothing, and resuming it is harmless");
    rec_clear(&r);
    reset(&b);

    r.pause_at = 1;
    feed(&b, &r, "spl", 0, max);
    rc = feed(&b, &r, "it\nnext\n", 0, max);
    r.pause_at = 0;
    CHECK(rc == INBUF_PAUSE && r.n == 1 && strcmp(r.line[0], "split") == 0, "inbuf: a pause on a line finished from kept input");
    inbuf_resume(&b, max, on_line, &r);
    CHECK(lines_are(&r, 2, (const char *[]){"split", "next"}), "inbuf: ...and its resume delivers the rest");
    rec_clear(&r);
    reset(&b);

    r.pause_at = 2;
    feed(&b, &r, "1\n2\n3\n4\n", 0, max);
    r.pause_at = 3;
    rc = inbuf_resume(&b, max, on_line, &r);
    CHECK(rc == INBUF_PAUSE && r.n == 3 && b.held, "inbuf: a resume can pause again");
    r.pause_at = 0;
    rc = inbuf_resume(&b, max, on_line, &r);
    CHECK(rc == INBUF_GO && lines_are(&r, 4, (const char *[]){"1", "2", "3", "4"}) && b.data == NULL,
          "inbuf: repeated pauses lose and repeat nothing");
    rec_clear(&r);
    reset(&b);

    r.pause_at = 1;
    char big[64];
    memset(big, 'z', sizeof big);
    memcpy(big + 40, "\nafter\n", 8);
    rc = inbuf_feed(&b, big, 48, max, on_line, &r);
    r.pause_at = 0;
    inbuf_resume(&b, max, on_line, &r);
    CHECK(rc == INBUF_PAUSE && lines_are(&r, 2, (const char *[]){NULL, "after"}), "inbuf: a pause on the overlong callback");
    rec_clear(&r);
    reset(&b);

    r.pause_at = 1;
    feed(&b, &r, "x\nheld", 0, max);
    inbuf_clear(&b);
    CHECK(!b.held && b.data == NULL, "inbuf_clear drops held input");
    rec_clear(&r);
    *bp = b;
    *rp = r;
}

static void test_inbuf(void)
{
    struct inbuf b = {0};
    struct rec r = {0};

    feed(&b, &r, "hello\n", 0, 100);
    CHECK(lines_are(&r, 1, (const char *[]){"hello"}), "inbuf: a line ending in \\n");
    CHECK(b.data == NULL && b.len == 0, "inbuf: nothing is kept after a complete line");
    rec_clear(&r);

    feed(&b, &r, "hello\r\n", 0, 100);
    CHECK(lines_are(&r, 1, (const char *[]){"hello"}), "inbuf: \\r\\n is stripped like \\n");
    rec_clear(&r);

    feed(&b, &r, "a\r\rb\r\n", 0, 100);
    CHECK(lines_are(&r, 1, (const char *[]){"a\r\rb"}), "inbuf: only one \\r right before \\n is stripped");
    rec_clear(&r);

    feed(&b, &r, "one\ntwo\r\nthree\n", 0, 100);
    CHECK(lines_are(&r, 3, (const char *[]){"one", "two", "three"}), "inbuf: several lines in one feed");
    rec_clear(&r);

    feed(&b, &r, "\n\r\n\nx\n", 0, 100);
    CHECK(lines_are(&r, 4, (const char *[]){"", "", "", "x"}), "inbuf: empty lines are passed on as empty");
    rec_clear(&r);

    feed(&b, &r, "hel", 0, 100);
    CHECK(r.n == 0 && b.data != NULL && b.len == 3, "inbuf: an unfinished line is kept");
    feed(&b, &r, "lo\nwor", 0, 100);
    feed(&b, &r, "ld\r", 0, 100);
    feed(&b, &r, "\n", 0, 100);
    CHECK(lines_are(&r, 2, (const char *[]){"hello", "world"}), "inbuf: lines split across feeds");
    CHECK(b.data == NULL, "inbuf: the kept line is freed once complete");
    rec_clear(&r);

    feed(&b, &r, "ab\r\ncd\n\nlast one\r\n", 1, 100);
    CHECK(lines_are(&r, 4, (const char *[]){"ab", "cd", "", "last one"}), "inbuf: 1-byte feeds");
    CHECK(b.data == NULL, "inbuf: 1-byte feeds keep nothing after the last line");
    rec_clear(&r);

    /* Exactly max bytes: accepted, in one feed, byte by byte and with \r\n. */
    enum { MAX = 16 };
    const char *exact = "0123456789abcdef\n";
    int ok = 1;
    for (size_t step = 0; step <= 17; step++) {
        feed(&b, &r, exact, step, MAX);
        ok &= lines_are(&r, 1, (const char *[]){"0123456789abcdef"});
        rec_clear(&r);
        feed(&b, &r, "0123456789abcdef\r\n", step, MAX);
        ok &= lines_are(&r, 1, (const char *[]){"0123456789abcdef"});
        rec_clear(&r);
    }
    CHECK(ok, "inbuf: a line of exactly max bytes is accepted (any split, \\n or \\r\\n)");
    reset(&b);

    /* max + 1 bytes: one NULL callback, then the next line works. */
    feed(&b, &r, "0123456789abcdefX\nnext\n", 0, MAX);
    CHECK(lines_are(&r, 2, (const char *[]){NULL, "next"}),
          "inbuf: max+1 bytes in one feed: one NULL, then the next line");
    rec_clear(&r);
    reset(&b);

    ok = 1;
    for (size_t step = 1; step <= 18; step++) {
        feed(&b, &r, "0123456789abcdefX\nnext\n", step, MAX);
        ok &= lines_are(&r, 2, (const char *[]){NULL, "next"});
        rec_clear(&r);
        reset(&b);
    }
    CHECK(ok, "inbuf: max+1 bytes split at any point: one NULL, then the next line");

    ok = 1;
    for (size_t step = 0; step <= 18; step++) {
        feed(&b, &r, "0123456789abcdefX\r\nnext\n", step, MAX);
        ok &= lines_are(&r, 2, (const char *[]){NULL, "next"});
        rec_clear(&r);
        reset(&b);
    }
    CHECK(ok, "inbuf: max+1 bytes before \\r\\n: one NULL at any split");

    /* A long line over several feeds: NULL as soon as it is too long, once. */
    feed(&b, &r, "0123456789", 0, MAX);
    feed(&b, &r, "0123456789", 0, MAX);
    CHECK(r.n == 1 && r.line[0] == NULL, "inbuf: overlong is reported before the newline arrives");
    CHECK(b.data == NULL && b.skipping, "inbuf: an overlong line is not kept while skipping");
    feed(&b, &r, "0123456789012345678901234567890123456789", 0, MAX);
    feed(&b, &r, "more\r\nok\n", 0, MAX);
    CHECK(lines_are(&r, 2, (const char *[]){NULL, "ok"}),
          "inbuf: the rest of an overlong line is discarded up to its newline, with one NULL");
    rec_clear(&r);
    reset(&b);

    /* Overlong then more lines in the same feed, and a big line in one feed. */
    char big[200];
    memset(big, 'y', sizeof big);
    memcpy(big + 150, "\nafter\n", 8);
    feed(&b, &r, big, 0, MAX);
    CHECK(lines_are(&r, 2, (const char *[]){NULL, "after"}), "inbuf: a long line in one feed is rejected alone");
    rec_clear(&r);
    reset(&b);

    /* Stop: the callback's non-zero return ends the feed and drops the rest. */
    r.stop_at = 2;
    int rc = feed(&b, &r, "a\nb\nc\nd", 0, MAX);
    CHECK(rc == 1 && r.n == 2, "inbuf: a callback returning non-zero stops the feed with 1");
    rec_clear(&r);
    reset(&b);
    r.stop_at = 1;
    feed(&b, &r, "par", 0, MAX);
    rc = feed(&b, &r, "tial\nmore\n", 0, MAX);
    CHECK(rc == 1 && r.n == 1 && strcmp(r.line[0], "partial") == 0 && b.data == NULL,
          "inbuf: stopping on a kept line frees it");
    rec_clear(&r);
    reset(&b);
    r.stop_at = 1;
    rc = feed(&b, &r, "0123456789abcdefXYZ", 0, MAX);
    CHECK(rc == 1 && r.n == 1 && r.line[0] == NULL, "inbuf: stopping on the overlong callback returns 1");
    rec_clear(&r);
    reset(&b);
    rc = feed(&b, &r, "x\ny\n", 0, MAX);
    CHECK(rc == 0, "inbuf: a feed nobody stopped returns 0");
    rec_clear(&r);

    test_pause(&b, &r, MAX);

    feed(&b, &r, "unfinished", 0, MAX);
    inbuf_clear(&b);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0, "inbuf_clear frees an unfinished line");
    rec_clear(&r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* outq_write to a closed socket must return EPIPE */
    test_msg();
    test_outq_basic();
    test_outq_fill();
    test_outq_ring();
    test_inbuf();
    return check_done();
}
