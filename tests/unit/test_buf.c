/* test_buf.c - msg refcounts, outq writes over real sockets/pipes, kept input. */
#include "core/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

/* ==== helpers ==== */

/* outq_write's target: a descriptor. */
static ssize_t to_fd(void *ctx, const void *buf, size_t len)
{
    return write(*(int *)ctx, buf, len);
}

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

    ssize_t w = outq_write(&q, to_fd, &sv[0]);
    CHECK_INT(w, 16, "outq_write returns the bytes written");
    char got[64];
    size_t glen = 0;
    drain(sv[1], got, &glen, sizeof got);
    CHECK_MEM(got, glen, "one\ntwo two\none\n", 16, "outq_write sends the msgs in order");
    CHECK(q.ring == NULL && q.count == 0 && q.bytes == 0 && q.cap == 0,
          "a drained outq frees its ring");
    CHECK(a->refs == 1 && b->refs == 1, "written msgs are unreferenced");

    CHECK_INT(outq_write(&q, to_fd, &sv[0]), 0, "outq_write of an empty queue returns 0");

    outq_push(&q, a);
    outq_push(&q, b);
    outq_push(&q, b);
    outq_clear(&q);
    CHECK(a->refs == 1 && b->refs == 1, "outq_clear unreferences every queued msg");
    CHECK(q.ring == NULL && q.count == 0 && q.bytes == 0, "outq_clear leaves an empty queue");

    outq_push(&q, a);
    close(sv[1]);
    errno = 0;
    w = outq_write(&q, to_fd, &sv[0]);
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

    ssize_t w = outq_write(&q, to_fd, &sv[0]);
    CHECK(w > 0 && (size_t)w < total, "outq_write writes what fits into a full socket");
    CHECK_INT(q.bytes, total - (size_t)w, "bytes left = bytes queued - bytes written");
    size_t written = (size_t)w;
    for (int i = 0; i < 10 && (w = outq_write(&q, to_fd, &sv[0])) > 0; i++)
        written += (size_t)w; /* a short write may leave a little room */
    CHECK(w == 0 && q.count > 0, "outq_write to a full socket returns 0, not an error");

    int saw_partial = 0, accounting_ok = 1, rounds = 0;
    while (q.count > 0 && rounds < 100000) {
        rounds++;
        if (q.off > 0)
            saw_partial = 1;
        drain(sv[1], got, &glen, MAXBYTES);
        w = outq_write(&q, to_fd, &sv[0]);
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
    ssize_t w = outq_write(&q, to_fd, &p[1]);
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
        if (outq_write(&q, to_fd, &p[1]) < 0)
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

static void test_inbuf(void)
{
    struct inbuf b = {0};
    CHECK(b.data == NULL && b.len == 0, "an empty inbuf holds no memory");
    char *p = inbuf_space(&b, 5);
    CHECK(p && p == b.data && b.len == 0, "inbuf_space gives room after the kept bytes, which stay 0");
    memcpy(p, "hello", 5);
    CHECK(inbuf_keep(&b, p + 2, 3) == 0 && b.len == 3 && memcmp(b.data, "llo", 3) == 0,
          "inbuf_keep keeps a tail of its own buffer (moved to the front)");
    p = inbuf_space(&b, 4);
    CHECK(p == b.data + 3, "inbuf_space after kept bytes points past them");
    memcpy(p, " you", 4);
    CHECK(inbuf_keep(&b, b.data, 7) == 0 && b.len == 7 && memcmp(b.data, "llo you", 7) == 0,
          "inbuf_keep of everything keeps it all");
    const char other[] = "fresh";
    CHECK(inbuf_keep(&b, other, 5) == 0 && b.len == 5 && memcmp(b.data, "fresh", 5) == 0 && b.data != other,
          "inbuf_keep copies bytes from elsewhere");
    CHECK(inbuf_keep(&b, b.data + 5, 0) == 0 && b.data == NULL && b.len == 0,
          "inbuf_keep of nothing frees the buffer");
    inbuf_keep(&b, other, 3);
    inbuf_clear(&b);
    CHECK(b.data == NULL && b.len == 0, "inbuf_clear frees what was kept");
}

/* ==== cost accounting and coalescing ==== */

static void test_outq_cost(void)
{
    struct outq q = {0};
    struct msg *m = msg_new("1234567", 7);
    CHECK_INT(msg_cost(7), 32, "a 7-byte msg costs glibc's smallest chunk, 32 bytes");
    CHECK_INT(msg_cost(4000), 4032, "a msg costs its header and bytes, rounded as malloc rounds");
    outq_push(&q, m);
    CHECK_INT(outq_cost(&q), 32 + 8 * 8, "a queued msg costs its chunk, and the ring its slots");
    outq_clear(&q);
    CHECK_INT(outq_cost(&q), 0, "an empty queue costs nothing");
    for (int i = 0; i < 20000; i++)
        outq_push(&q, m);
    size_t pushed = outq_cost(&q);
    outq_clear(&q);
    CHECK(pushed >= 20000 * (32 + 8), "20,000 pushed 7-byte msgs cost an allocation and a slot each");
    for (int i = 0; i < 20000; i++)
        outq_append(&q, m);
    size_t appended = outq_cost(&q);
    CHECK(q.bytes == 140000 && appended < 140000 + 140000 / 16, "20,000 appended 7-byte msgs cost about their bytes");
    CHECK(q.count == (140000 + OUTQ_CHUNK - 13) / (OUTQ_CHUNK - 12) && m->refs == 1,
          "appended small msgs are copied into 4 KiB chunks, no reference kept");
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    nonblock(sv[0]);
    nonblock(sv[1]);
    static char got[140000];
    size_t len = 0;
    while (q.count) {
        if (outq_write(&q, to_fd, &sv[0]) < 0)
            break;
        drain(sv[1], got, &len, sizeof got);
    }
    int ok = len == 140000;
    for (size_t i = 0; ok && i < len; i++)
        ok = got[i] == "1234567"[i % 7];
    CHECK(ok && outq_cost(&q) == 0, "appended msgs come out whole and in order, and the cost goes back to 0");
    struct msg *big = numbered(1, 1000);
    outq_append(&q, m);
    outq_append(&q, big);
    outq_append(&q, m);
    CHECK(q.count == 3 && q.ring[(q.head + 1) & (q.cap - 1)] == big && big->refs == 2,
          "a big msg is queued by reference, and the next small one starts a new chunk");
    outq_clear(&q);
    msg_unref(big);
    msg_unref(m);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* outq_write to a closed socket must return EPIPE */
    test_msg();
    test_outq_basic();
    test_outq_fill();
    test_outq_ring();
    test_inbuf();
    test_outq_cost();
    return check_done();
}
