/* fuzz_framing.c - libFuzzer target for input framing and the plain protocol.
 *
 * Each input is used twice:
 *
 * A. Framing against a model. Bytes 0-3 choose the line limit and a seed; the
 *    rest is fed to lineframe_feed in seed-chosen pieces, with callbacks stopping
 *    at seed-chosen lines (then the kept input is offered again, as conn.c does
 *    when flood control resumes a client), or ending the feed for good. The lines
 *    must be exactly those of a ten-line reference framer: no '\n', never over the
 *    limit, one NULL per overlong line, nothing lost or repeated across stops.
 *
 * B. The real server path without natterd's main loop: three client sockets
 *    (socketpairs) adopted by conn.c with the line codec and a real hub. The
 *    input is cut into lines; line i goes to client i % 3 (a first byte 0x01-0x03
 *    picks the client, 0x04 hangs it up), written in two seed-chosen pieces, and
 *    after each piece the loop runs one non-blocking turn (epoll, read, inbuf,
 *    codec, commands, hub) and the queued output is written. Every line the
 *    server sends must start with a protocol marker and be clean UTF-8 (no
 *    controls, no broken sequences); the hub's user count must match the
 *    clients connected; at the end hub_shutdown + conn_close_all must leave
 *    nothing behind (LeakSanitizer).
 *
 * `make fuzz` builds and runs it; see the Makefile for running longer.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/lineframe.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/text.h"
#include "fuzz_nolog.h"
#include "fuzz_util.h"
#include "server/codec.h"
#include "server/codecs/line/linecodec.h"
#include "server/conn.h"
#include "server/hub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);


static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* ==== A. inbuf against a reference framer ==== */

struct ref {
    const char *p; /* NULL: an overlong line */
    size_t len;
};

struct frame {
    size_t max;
    struct ref *want;
    size_t nwant, got, stop_at;
    uint32_t rng;
};

static int on_frame(void *ctx, char *line, size_t len)
{
    struct frame *f = ctx;
    if (line) {
        FUZZ_ASSERT(memchr(line, '\n', len) == NULL, "a framed line holds no newline");
        FUZZ_ASSERT(len <= f->max, "a framed line is within the limit");
        char *clean = malloc(3 * len + 1);
        size_t n = text_sanitize(clean, line, len);
        FUZZ_ASSERT(fuzz_clean_utf8((unsigned char *)clean, n), "a sanitised line is clean UTF-8");
        free(clean);
    }
    FUZZ_ASSERT(f->got < f->nwant, "no more callbacks than the reference has lines");
    const struct ref *w = &f->want[f->got++];
    if (!line)
        FUZZ_ASSERT(w->p == NULL, "overlong exactly where the reference says");
    else
        FUZZ_ASSERT(w->p && w->len == len && memcmp(w->p, line, len) == 0, "the line the reference has");
    if (f->got == f->stop_at)
        return 0;
    return rnd(&f->rng) % 8 != 0; /* a pause: 0, then offered again */
}

static void fuzz_inbuf(const uint8_t *data, size_t size)
{
    if (size < 4)
        return;
    struct frame f = {0};
    f.max = data[0] & 0x80 ? 4096 : 1 + data[0] % 40;
    f.rng = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 | 1u << 24;
    const char *s = (const char *)data + 4;
    size_t n = size - 4;

    /* The reference: split at '\n', drop one '\r' before it, too long = NULL; an
     * unfinished last line is reported (once) only if it already passed max+1. */
    f.want = malloc((n + 1) * sizeof *f.want);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\n')
            continue;
        size_t len = i - start;
        if (len > 0 && s[i - 1] == '\r')
            len--;
        f.want[f.nwant++] = len > f.max ? (struct ref){NULL, 0} : (struct ref){s + start, len};
        start = i + 1;
    }
    if (n - start > f.max + 1)
        f.want[f.nwant++] = (struct ref){NULL, 0};
    if (rnd(&f.rng) % 4 == 0)
        f.stop_at = 1 + rnd(&f.rng) % (f.nwant + 1);

    struct inbuf b = {0};
    uint8_t skipping = 0;
    int stopped = 0;
    for (size_t pos = 0; pos < n && !stopped;) {
        size_t chunk = 1 + (rnd(&f.rng) % 2 ? rnd(&f.rng) % 4 : rnd(&f.rng) % (2 * f.max + 8));
        if (chunk > n - pos)
            chunk = n - pos;
        int rc = lineframe_feed(&b, &skipping, s + pos, chunk, f.max, on_frame, &f);
        while (rc == 1 && f.got != f.stop_at) /* paused: offer the kept input again */
            rc = lineframe_feed(&b, &skipping, "", 0, f.max, on_frame, &f);
        FUZZ_ASSERT(rc == 0 || rc == 1, "lineframe_feed frames or stops (no OOM here)");
        stopped = rc == 1;
        if (!stopped) {
            FUZZ_ASSERT(b.len <= f.max + 1, "the kept line is at most max+1 bytes");
            FUZZ_ASSERT(memchr(b.data ? b.data : "", '\n', b.len) == NULL, "only an unfinished line is kept");
            FUZZ_ASSERT(b.len > 0 || b.data == NULL, "no memory kept without an unfinished line");
        }
        pos += chunk;
    }
    if (stopped)
        FUZZ_ASSERT(f.got == f.stop_at, "stopped at the line that said stop");
    else
        FUZZ_ASSERT(f.got == f.nwant, "every reference line was framed");
    inbuf_clear(&b);
    free(f.want);
}

/* ==== B. conn + line codec + hub over socketpairs ==== */

#define NCLIENT 3
#define MAX_LINE 512
#define OUT_MAX (64 * 1024)

static struct loop *L;

struct client {
    int fd; /* our end; -1 when not connected */
    size_t acc_len;
    char acc[OUT_MAX]; /* an unfinished line from the server */
};

static struct client clients[NCLIENT];
static unsigned next_port;
static struct conn_profile profile;

/* The line codec, with what conn keeps checked on the way in: without flood
 * control nothing pauses, so at most one unfinished line (max_line + 1 bytes,
 * no newline in it) is ever kept between reads. */
static size_t fz_input(struct conn *c, char *data, size_t len)
{
    FUZZ_ASSERT(c->in.len <= MAX_LINE + 1, "conn keeps at most one unfinished line");
    FUZZ_ASSERT(c->in.len <= len && memchr(data, '\n', c->in.len) == NULL,
                "the kept input comes first, and it holds no complete line");
    size_t used = line_codec.input(c, data, len);
    FUZZ_ASSERT(used <= len, "a codec consumes at most what it is offered");
    return used;
}
static struct codec fz_line_codec;

/* One turn of natterd's loop without waiting (dispatch what is ready), then
 * another so that what natterd does before sleeping (close, write) has run. */
static void turn(void)
{
    loop_turn(L, 0);
    loop_turn(L, 0);
}

static void check_server_line(const char *p, size_t len)
{
    static const char *const markers[] = {"-- ", "!! ", "-> *", "*", "#"};
    int marked = 0;
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
        marked |= len >= strlen(markers[i]) && memcmp(p, markers[i], strlen(markers[i])) == 0;
    int clean = fuzz_clean_utf8((const unsigned char *)p, len);
    if (!marked || !clean) {
        fprintf(stderr, "server line (%zu bytes): ", len);
        for (size_t i = 0; i < len; i++)
            fprintf(stderr, (unsigned char)p[i] >= 0x20 && (unsigned char)p[i] < 0x7F ? "%c" : "\\x%02X",
                    (unsigned char)p[i]);
        fprintf(stderr, "\n");
    }
    FUZZ_ASSERT(marked, "a server line starts with a protocol marker");
    FUZZ_ASSERT(clean, "a server line is clean UTF-8");
}

/* Read what the server sent to client k and check each complete line. */
static void drain(int k)
{
    struct client *cl = &clients[k];
    while (cl->fd >= 0) {
        char buf[16384];
        ssize_t n = read(cl->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) { /* the server closed it (bye, /quit, shutdown) */
            FUZZ_ASSERT(cl->acc_len == 0, "the server's last line ends with a newline");
            close(cl->fd);
            cl->fd = -1;
            return;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n') {
                check_server_line(cl->acc, cl->acc_len);
                cl->acc_len = 0;
            } else {
                FUZZ_ASSERT(cl->acc_len < OUT_MAX, "server lines are not endless");
                cl->acc[cl->acc_len++] = buf[i];
            }
        }
    }
}

static void settle(struct hub *h)
{
    turn();
    size_t connected = 0;
    for (int k = 0; k < NCLIENT; k++) {
        drain(k);
        connected += clients[k].fd >= 0;
    }
    FUZZ_ASSERT(hub_user_count(h) == connected, "one hub user per connected client");
}

static void connect_client(struct hub *h, int k)
{
    int sv[2];
    FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    clients[k].fd = sv[0];
    clients[k].acc_len = 0;
    char peer[48];
    snprintf(peer, sizeof peer, "10.0.0.%d:%u", k + 1, ++next_port);
    conn_new(sv[1], peer, &profile);
    settle(h);
}

static void send_piece(struct hub *h, int k, const uint8_t *p, size_t n)
{
    if (n == 0 || clients[k].fd < 0)
        return;
    ssize_t w = write(clients[k].fd, p, n); /* small: a socketpair takes it all */
    (void)w;
    settle(h);
}

static void fuzz_server(const uint8_t *data, size_t size)
{
    struct hub_limits hl = {.max_name = 24, .max_rooms = 4, .max_announce = 2};
    struct hub *h = hub_new(&hl);
    profile = (struct conn_profile){.name = "fuzz", .codec = &fz_line_codec, .hub = h,
                                    .lim = {.max_line = MAX_LINE, .max_outbuf = 1 << 20, .burst = 50}};
    FUZZ_ASSERT(conn_init(L, 1024) == 0, "conn_init");
    for (int k = 0; k < NCLIENT; k++)
        clients[k].fd = -1;
    uint32_t rng = 0x9E3779B9u ^ (uint32_t)size;

    size_t i = 0, seg = 0;
    while (i < size) {
        const uint8_t *nl = memchr(data + i, '\n', size - i);
        size_t end = nl ? (size_t)(nl - data) + 1 : size;
        const uint8_t *p = data + i;
        size_t n = end - i;
        int k = (int)(seg++ % NCLIENT);
        if (p[0] >= 1 && p[0] <= 3) {
            k = p[0] - 1;
            p++, n--;
        } else if (p[0] == 4) {
            if (clients[k].fd >= 0) {
                close(clients[k].fd); /* hang up: the server sees EOF */
                clients[k].fd = -1;
                settle(h);
            }
            i = end;
            continue;
        }
        if (clients[k].fd < 0)
            connect_client(h, k);
        size_t cut = n ? rnd(&rng) % (n + 1) : 0;
        send_piece(h, k, p, cut);
        send_piece(h, k, p + cut, n - cut);
        i = end;
    }

    /* natterd's shutdown: tell everyone, close everything, free the hub. */
    hub_shutdown(h);
    conn_shutdown();
    for (int k = 0; k < NCLIENT; k++) {
        drain(k);
        FUZZ_ASSERT(clients[k].fd < 0, "every client was closed by the shutdown");
    }
    FUZZ_ASSERT(hub_user_count(h) == 0, "no user left after shutdown");
    hub_free(h);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    signal(SIGPIPE, SIG_IGN); /* writing to a client the server closed */
    L = loop_new(1024);
    fz_line_codec = line_codec; /* the line codec, its input checked on the way in */
    fz_line_codec.input = fz_input;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_inbuf(data, size);
    fuzz_server(data, size);
    return 0;
}
