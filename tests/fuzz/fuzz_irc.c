/* fuzz_irc.c - libFuzzer target for the IRC codec (codecs/irc/).
 *
 * Each input is used twice:
 *
 * A. The parser alone. The input, cleaned by irc_sanitize, must hold no NUL, CR
 *    or LF and be UTF-8 whose only controls are TAB and IRC's formatting and CTCP
 *    codes; cleaning it again changes nothing. irc_parse must give a command
 *    without spaces, at most 15 parameters, middle ones without spaces; irc_fit
 *    never cuts a character and never goes past its limit but for one character.
 *
 * B. The real server path: two IRC clients and one plain client (socketpairs)
 *    adopted by conn.c with a real hub. Each IRC client registers first (NICK,
 *    USER; with CAP for the second) unless the input's first byte says not. The
 *    input is cut into lines; line i goes to client i % 3 (a first byte 0x01-0x03
 *    picks the client, 0x04 hangs it up). Every line the server sends an IRC
 *    client must end in CR LF, fit 512 bytes without its tags, start with ':',
 *    '@', "ERROR " or "PING ", and be UTF-8 clean but for formatting codes; every
 *    line to the plain client must be clean UTF-8 with a protocol marker. At the
 *    end the shutdown must leave nothing behind (LeakSanitizer).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/loop.h"
#include "core/log.h"
#include "core/text.h"
#include "fuzz_nolog.h"
#include "fuzz_util.h"
#include "server/codec.h"
#include "server/codecs/irc/irccodec.h"
#include "server/codecs/irc/ircmsg.h"
#include "server/codecs/line/linecodec.h"
#include "server/conn.h"
#include "server/hub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);


static int format_code(unsigned char c)
{
    return c == 0x01 || c == 0x02 || c == 0x03 || c == 0x04 || c == 0x0F || c == 0x11 || c == 0x16 || c == 0x1D ||
           c == 0x1E || c == 0x1F;
}

/* Clean UTF-8 once IRC's formatting and CTCP codes are taken out. */
static int irc_clean(const char *s, size_t n)
{
    char *t = malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!format_code((unsigned char)s[i]))
            t[k++] = s[i];
    int ok = fuzz_clean_utf8((const unsigned char *)t, k);
    free(t);
    return ok;
}

/* ==== A. The parser ==== */

static void fuzz_parser(const uint8_t *data, size_t size)
{
    char *clean = malloc(3 * size + 1);
    size_t n = irc_sanitize(clean, (const char *)data, size);
    FUZZ_ASSERT(n <= 3 * size && clean[n] == '\0', "cleaned within 3*len, NUL-terminated");
    FUZZ_ASSERT(!memchr(clean, '\0', n) && !memchr(clean, '\r', n) && !memchr(clean, '\n', n), "no NUL, CR or LF");
    FUZZ_ASSERT(irc_clean(clean, n), "clean UTF-8 but for formatting codes");
    char *again = malloc(3 * n + 1);
    FUZZ_ASSERT(irc_sanitize(again, clean, n) == n && memcmp(again, clean, n) == 0, "cleaning is idempotent");
    free(again);

    for (size_t max = 0; max < 8 && max < n; max++) {
        size_t k = irc_fit(clean, n, max);
        FUZZ_ASSERT(k <= n && (k == n || ((unsigned char)clean[k] & 0xC0) != 0x80), "fit cuts between characters");
        size_t first = 1;
        while (first < n && ((unsigned char)clean[first] & 0xC0) == 0x80)
            first++;
        FUZZ_ASSERT(k <= max || (max > 0 && k == first) || (max == 0 && k == 0), "fit stays within its limit");
    }

    struct irc_msg m;
    if (irc_parse(clean, &m) == 0) {
        FUZZ_ASSERT(*m.command && !strchr(m.command, ' '), "a command, without spaces");
        FUZZ_ASSERT(m.nparams >= 0 && m.nparams <= IRC_MAX_PARAMS, "at most 15 parameters");
        for (int i = 0; i + 1 < m.nparams; i++)
            FUZZ_ASSERT(!strchr(m.params[i], ' ') && m.params[i][0] != ':', "middle parameters have no space");
        char v[64];
        irc_tag(&m, "label", v, sizeof v);
    }
    free(clean);
}

/* ==== B. conn + IRC and line codecs + hub over socketpairs ==== */

#define NCLIENT 3
#define MAX_LINE 1024
#define OUT_MAX (64 * 1024)

static struct loop *L;

struct client {
    int fd;
    int irc;
    size_t acc_len;
    char acc[OUT_MAX];
};

static struct client clients[NCLIENT];
static unsigned next_port;
static struct conn_profile irc_profile, plain_profile;

static void turn(void)
{
    loop_turn(L, 0);
    loop_turn(L, 0);
}

static void dump(const char *what, const char *p, size_t len)
{
    fprintf(stderr, "%s (%zu bytes): ", what, len);
    for (size_t i = 0; i < len; i++)
        fprintf(stderr, (unsigned char)p[i] >= 0x20 && (unsigned char)p[i] < 0x7F ? "%c" : "\\x%02X",
                (unsigned char)p[i]);
    fprintf(stderr, "\n");
}

static void check_irc_line(const char *p, size_t len)
{
    int crlf = len > 0 && p[len - 1] == '\r';
    const char *body = p;
    size_t blen = len;
    if (len && p[0] == '@') {
        const char *sp = memchr(p, ' ', len);
        FUZZ_ASSERT(sp, "tags end with a space");
        body = sp + 1;
        blen = len - (size_t)(body - p);
    }
    int starts = blen > 0 && (body[0] == ':' || (blen >= 6 && memcmp(body, "ERROR ", 6) == 0) ||
                              (blen >= 5 && memcmp(body, "PING ", 5) == 0));
    int fits = blen + 1 <= 512;
    int clean = crlf && irc_clean(p, len - 1);
    if (!crlf || !starts || !fits || !clean)
        dump("IRC line", p, len);
    FUZZ_ASSERT(crlf, "an IRC line ends in CR LF");
    FUZZ_ASSERT(starts, "an IRC line starts with a prefix, ERROR or PING");
    FUZZ_ASSERT(fits, "an IRC line fits 512 bytes without its tags");
    FUZZ_ASSERT(clean, "an IRC line is clean UTF-8 but for formatting codes");
}

static void check_plain_line(const char *p, size_t len)
{
    static const char *const markers[] = {"-- ", "!! ", "-> *", "-> -", "*", "-", "#"};
    int marked = 0;
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
        marked |= len >= strlen(markers[i]) && memcmp(p, markers[i], strlen(markers[i])) == 0;
    int clean = fuzz_clean_utf8((const unsigned char *)p, len);
    if (!marked || !clean)
        dump("plain line", p, len);
    FUZZ_ASSERT(marked, "a plain line starts with a protocol marker");
    FUZZ_ASSERT(clean, "a plain line is clean UTF-8 (formatting stripped)");
}

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
        if (n <= 0) {
            FUZZ_ASSERT(cl->acc_len == 0, "the server's last line ends with a newline");
            close(cl->fd);
            cl->fd = -1;
            return;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n') {
                if (cl->irc)
                    check_irc_line(cl->acc, cl->acc_len);
                else
                    check_plain_line(cl->acc, cl->acc_len);
                cl->acc_len = 0;
            } else {
                FUZZ_ASSERT(cl->acc_len < OUT_MAX, "server lines are not endless");
                cl->acc[cl->acc_len++] = buf[i];
            }
        }
    }
}

static void settle(void)
{
    turn();
    for (int k = 0; k < NCLIENT; k++)
        drain(k);
}

static void send_piece(int k, const void *p, size_t n)
{
    if (n == 0 || clients[k].fd < 0)
        return;
    ssize_t w = write(clients[k].fd, p, n);
    (void)w;
    settle();
}

static void connect_client(int k, int do_register)
{
    int sv[2];
    FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    clients[k].fd = sv[0];
    clients[k].irc = k < 2;
    clients[k].acc_len = 0;
    char peer[48];
    snprintf(peer, sizeof peer, "10.0.0.%d:%u", k + 1, ++next_port);
    conn_new(sv[1], peer, k < 2 ? &irc_profile : &plain_profile);
    settle();
    if (k < 2 && do_register) {
        char reg[128];
        snprintf(reg, sizeof reg, "%sNICK fz%u\r\nUSER u 0 * :fuzz\r\n%sJOIN #lobby\r\n",
                 k ? "CAP LS 302\r\nCAP REQ :server-time message-tags echo-message away-notify userhost-in-names setname batch labeled-response\r\n" : "",
                 next_port, k ? "CAP END\r\n" : "");
        send_piece(k, reg, strlen(reg));
    }
}

static void fuzz_server(const uint8_t *data, size_t size)
{
    struct hub_limits hl = {.max_name = 24, .max_rooms = 4, .max_announce = 3};
    struct hub *h = hub_new(&hl);
    struct conn_limits lim = {.max_line = MAX_LINE, .max_outbuf = 1 << 20, .burst = 50};
    irc_profile = (struct conn_profile){.name = "irc", .codec = &irc_codec, .hub = h, .lim = lim};
    plain_profile = (struct conn_profile){.name = "plain", .codec = &line_codec, .hub = h, .lim = lim};
    FUZZ_ASSERT(conn_init(L, 1024) == 0, "conn_init");
    for (int k = 0; k < NCLIENT; k++)
        clients[k].fd = -1;
    int do_register = size == 0 || data[0] != 0xFF;

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
                close(clients[k].fd);
                clients[k].fd = -1;
                settle();
            }
            i = end;
            continue;
        }
        if (clients[k].fd < 0)
            connect_client(k, do_register);
        send_piece(k, p, n / 2);
        send_piece(k, p + n / 2, n - n / 2);
        i = end;
    }

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
    signal(SIGPIPE, SIG_IGN);
    L = loop_new(1024);
    irc_setup("fuzz.test", "FuzzNet", NULL, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_parser(data, size);
    fuzz_server(data, size);
    return 0;
}
