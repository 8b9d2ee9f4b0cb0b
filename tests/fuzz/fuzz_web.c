/* fuzz_web.c - libFuzzer target for the HTTP codec (codecs/http/) and the
 * WebSocket transport (transport/ws.c), on the real server path: conn.c, the
 * IRC codec and a hub, over a socketpair.
 *
 * The first byte picks the mode:
 *  - even: the input is what an HTTP client sends, cut in two writes. Every
 *    answer must be an HTTP/1.1 status line with a known status, headers ending
 *    in an empty line, and the strict headers (CSP, nosniff) on every answer
 *    but a 101.
 *  - odd: a valid upgrade request first (101 expected), then the input as the
 *    client's frames (cut in two writes). Everything the server sends after the
 *    101 head must be well-formed server frames: not masked, a known opcode,
 *    text frames UTF-8 without CR or LF, a close frame's code one a peer may
 *    send (ours: 1000, 1001, 1002, 1007, 1008, 1009, 1011; or the client's
 *    own echoed), and nothing after it.
 * At the end the shutdown must leave nothing behind (LeakSanitizer).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"
#include "core/log.h"
#include "fuzz_nolog.h"
#include "fuzz_util.h"
#include "server/codecs/http/httpcodec.h"
#include "server/codecs/irc/irccodec.h"
#include "server/conn.h"
#include "server/hub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);


#define OUT_MAX (1 << 20)

static struct loop *L;
static int fd = -1;
static unsigned char *out;
static size_t out_len;

static void settle(void)
{
    for (int i = 0; i < 3; i++)
        loop_turn(L, 0);
    while (fd >= 0) {
        ssize_t n = read(fd, out + out_len, OUT_MAX - out_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            close(fd);
            fd = -1;
            return;
        }
        out_len += (size_t)n;
        FUZZ_ASSERT(out_len < OUT_MAX, "the server's answer is bounded");
    }
}

static void send_piece(const void *p, size_t n)
{
    if (n && fd >= 0 && write(fd, p, n) < 0 && errno != EAGAIN)
        return;
    settle();
}

/* The HTTP heads in out[0..len): status lines and headers as HTTP/1.1 says. */
static size_t check_heads(size_t len, int *upgraded)
{
    size_t i = 0;
    *upgraded = 0;
    while (i < len) {
        const unsigned char *end = memmem(out + i, len - i, "\r\n\r\n", 4);
        if (!end)
            break; /* cut short by the close: only what came whole is checked */
        size_t head = (size_t)(end - (out + i)) + 4;
        FUZZ_ASSERT(head > 12 && memcmp(out + i, "HTTP/1.1 ", 9) == 0, "a status line");
        int status = atoi((const char *)out + i + 9);
        static const int known[] = {101, 200, 304, 400, 403, 404, 405, 408, 414, 426, 431};
        int ok = 0;
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            ok |= status == known[k];
        FUZZ_ASSERT(ok, "a status natterd sends");
        if (status == 101) {
            *upgraded = 1;
            return i + head;
        }
        FUZZ_ASSERT(memmem(out + i, head, "\r\nContent-Security-Policy: default-src 'self'", 44) != NULL, "CSP");
        FUZZ_ASSERT(memmem(out + i, head, "\r\nX-Content-Type-Options: nosniff\r\n", 35) != NULL, "nosniff");
        const unsigned char *cl = memmem(out + i, head, "\r\nContent-Length: ", 18);
        FUZZ_ASSERT(cl, "a Content-Length");
        size_t body = strtoul((const char *)cl + 18, NULL, 10);
        int head_only = memmem(out + i, head, "\r\nContent-Length: 0\r\n", 21) != NULL;
        i += head;
        /* HEAD and 304 announce a length and send no body; the rest send it. */
        if (!head_only && i + body <= len && (i + body == len || memcmp(out + i + body, "HTTP/1.1 ", 9) == 0))
            i += body;
        else if (!head_only)
            while (i < len && memcmp(out + i, "HTTP/1.1 ", i + 9 <= len ? 9 : len - i) != 0)
                i++;
    }
    return i;
}

static int utf8_ok(const unsigned char *p, size_t n)
{
    /* fuzz_clean_utf8 also refuses controls; IRC's formatting codes are fine here */
    unsigned char *t = malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        t[k++] = p[i] < 0x20 && p[i] != '\r' && p[i] != '\n' ? 'x' : p[i];
    int ok = fuzz_clean_utf8(t, k) || k == 0;
    free(t);
    return ok;
}

static void check_frames(size_t i)
{
    int closed = 0;
    while (i + 2 <= out_len) {
        unsigned op = out[i] & 0x0F, fin = out[i] & 0x80;
        FUZZ_ASSERT(!(out[i + 1] & 0x80), "server frames are not masked");
        FUZZ_ASSERT(!(out[i] & 0x70), "no reserved bits");
        uint64_t len = out[i + 1] & 0x7F;
        size_t h = 2;
        if (len == 126) {
            if (i + 4 > out_len)
                return;
            len = (uint64_t)out[i + 2] << 8 | out[i + 3];
            h = 4;
        } else if (len == 127) {
            if (i + 10 > out_len)
                return;
            len = 0;
            for (int k = 0; k < 8; k++)
                len = len << 8 | out[i + 2 + k];
            h = 10;
        }
        if (i + h + len > out_len)
            return;
        const unsigned char *pl = out + i + h;
        FUZZ_ASSERT(!closed, "nothing after the close frame");
        FUZZ_ASSERT(fin, "the server does not fragment");
        FUZZ_ASSERT(op == 1 || op == 2 || op == 8 || op == 9 || op == 10, "a known opcode");
        if (op == 1) {
            FUZZ_ASSERT(!memchr(pl, '\r', len) && !memchr(pl, '\n', len), "one line, without CR LF");
            FUZZ_ASSERT(utf8_ok(pl, len), "a text frame is UTF-8");
        }
        if (op == 8) {
            closed = 1;
            if (len >= 2) {
                unsigned code = (unsigned)pl[0] << 8 | pl[1];
                /* ours, or the client's own code echoed (RFC 6455 7.4: 3000-4999 are the applications') */
                FUZZ_ASSERT((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999),
                            "a close code RFC 6455 allows on the wire");
            }
        }
        i += h + len;
    }
}

static const char upgrade[] = "GET /ws HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                              "Sec-WebSocket-Protocol: text.ircv3.net\r\n\r\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct hub_limits hl = {.max_name = 24, .max_rooms = 4, .max_announce = 3};
    struct hub *h = hub_new(&hl);
    struct conn_limits lim = {.max_line = 512, .max_outbuf = 1 << 20, .burst = 50};
    struct conn_profile ws = {.name = "ws", .codec = &irc_codec, .hub = h, .lim = lim};
    struct conn_profile http = {.name = "http", .codec = &http_codec, .hub = h, .lim = lim};
    struct http_config cfg = {.codec = &irc_codec, .ws = &ws, .wss = &ws};
    http_setup(&cfg);
    FUZZ_ASSERT(conn_init(L, 1024) == 0, "conn_init");
    int sv[2];
    FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    fd = sv[0];
    out_len = 0;
    conn_new(sv[1], "10.0.0.1:1000", &http);
    int frames = data[0] & 1;
    data++, size--;
    if (frames)
        send_piece(upgrade, sizeof upgrade - 1);
    send_piece(data, size / 2);
    send_piece(data + size / 2, size - size / 2);
    hub_shutdown(h);
    conn_shutdown();
    settle();
    int upgraded;
    size_t after = check_heads(out_len, &upgraded);
    if (frames) {
        FUZZ_ASSERT(upgraded, "the upgrade is answered with 101");
        check_frames(after);
    }
    if (fd >= 0)
        close(fd);
    fd = -1;
    FUZZ_ASSERT(hub_user_count(h) == 0, "no user left after shutdown");
    hub_free(h);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    signal(SIGPIPE, SIG_IGN);
    L = loop_new(1024);
    out = malloc(OUT_MAX);
    irc_setup("fuzz.test", "FuzzNet", NULL, NULL);
    return 0;
}
