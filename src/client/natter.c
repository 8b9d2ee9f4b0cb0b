/* natter.c - the terminal client: a chat-room client for natterd, and 1:1 chat.
 *
 * One poll() loop over stdin and one socket, no threads. On a terminal the input
 * line is edited by lineedit.c and everything received is printed above it with a
 * timestamp and coloured names; otherwise (a script, a pipe) stdin lines are sent
 * as they are and received lines printed as they are, so natter can be scripted
 * like nc. With --listen it waits for one peer instead of connecting (the lesson's
 * 1:1 chat), and both sides talk at once until one of them says "bye".
 *
 * Everything received is sanitised before display: in 1:1 mode the peer may be
 * a raw nc that sends escape sequences.
 */
#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/lineframe.h"
#include "client/lineedit.h"
#include "core/names.h"
#include "core/net.h"
#include "core/num.h"
#include "client/session.h"
#include "core/text.h"
#include "core/tlsclient.h"

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT "8888"
#define DEFAULT_TLS_PORT "8889"
#define HANDSHAKE_MS 30000         /* how long a TLS handshake may take */
#define NAME_MAX_CHARS 24          /* the server's default --max-name */
#define NAME_MAX_EVER 31           /* the largest --max-name natterd takes */
#define SERVER_LINE_MAX 4096       /* natterd's default --max-line, until it says otherwise */
#define WELCOME_WAIT_MS 2000       /* scripted with --name: how long to wait for a natterd welcome */
#define LINE_MAX_IN (64 * 1024)    /* longest line taken from the socket or stdin */
#define OUT_HIGH (256 * 1024)      /* stop reading stdin while this much is unsent */
#define QUIT_WAIT_MS 5000          /* after bye, how long the server gets to close */
#define FINAL_FLUSH_MS 2000        /* at exit, how long unsent lines get to go */

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct options {
    const char *name;   /* --name */
    const char *listen; /* --listen [ADDR:]PORT */
    const char *host;
    const char *port;
    int no_color;
    int tls, insecure;  /* --tls, --insecure */
    const char *ca;     /* --ca FILE */
};

/* The one client this process is. */
static struct client {
    int fd;
    struct tlsc *tls_ctx;          /* --tls: the settings, and the session over fd */
    struct tlsc_conn *tls;
    char addr[NET_ADDR_LEN + 256]; /* the other end, for messages */
    int peer_mode;                 /* 1:1 chat (--listen) rather than a natterd room */
    int tty;                       /* interactive: line editing, timestamps */
    int color;
    char *name;                    /* asked for (--name or the name: prompt) */
    char peer[SESSION_NAME_LEN];   /* 1:1: what to call the peer */
    int asking_name;               /* the next line typed is our name */
    int name_pending;              /* that name (or --name) is sent, not yet taken */
    struct session sess;
    struct outq out;
    struct inbuf sock_in, stdin_in;
    uint8_t sock_skip, stdin_skip; /* the framer's: skipping an overlong line */
    int stdin_open;
    int shut_wr_pending; /* stdin ended: half-close once everything is sent */
    int leaving;         /* we said bye (or stdin ended): the server's close is expected */
    long long quit_deadline; /* ms; 0 = none */
    long long hold_deadline; /* scripted --name: stdin waits for the name's answer until then; 0 = not */
    size_t server_line_max;  /* longer typed lines are refused here, before any echo */
    int done, status;
} c = {.fd = -1};

static volatile sig_atomic_t got_signal, got_winch, got_tstp;

/* ==== Small helpers ==== */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void finish(int status)
{
    if (!c.done)
        c.status = status;
    c.done = 1;
}

static int is_bye(const char *line, size_t len)
{
    return len == 3 && memcmp(line, "bye", 3) == 0;
}

/* "/quit" or "/quit reason", in any case. */
static int is_quit(const char *line, size_t len)
{
    return len >= 5 && strncasecmp(line, "/quit", 5) == 0 && (len == 5 || line[5] == ' ');
}

static const char *my_name(void)
{
    if (c.sess.name[0])
        return c.sess.name;
    return c.name ? c.name : "me";
}

/* A sanitised, NUL-terminated copy of len bytes (caller frees), or NULL. */
static char *sanitized(const char *s, size_t len)
{
    char *out = malloc(3 * len + 1);
    if (out)
        text_sanitize(out, s, len);
    return out;
}

/* ==== Display ==== */

static const int name_colors[] = {31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96};

/* Find the name in a displayed line: the span to colour [*a, *b) and the name
 * itself [*na, *nb) (without brackets or stars), by the line's marker. */
static int find_name(const char *line, size_t *a, size_t *b, size_t *na, size_t *nb)
{
    const char *p = line, *end;
    if (line[0] == '#') { /* "#room <name> text" or "#room * name action" */
        p = strchr(line, ' ');
        p = p ? p + 1 : line;
    } else if (strncmp(line, "-> ", 3) == 0) { /* "-> *name* text" */
        p = line + 3;
    }
    if (p[0] == '<' && (end = strchr(p + 1, '>')) != NULL) {
        *a = (size_t)(p - line), *b = (size_t)(end - line) + 1;
        *na = *a + 1, *nb = *b - 1;
        return 1;
    }
    if (p[0] == '*' && p[1] == ' ' && p[2]) {
        *na = *a = (size_t)(p - line) + 2;
        *nb = *b = *a + strcspn(p + 2, " ");
        return 1;
    }
    if (p[0] == '*' && (end = strchr(p + 1, '*')) != NULL) {
        *a = (size_t)(p - line), *b = (size_t)(end - line) + 1;
        *na = *a + 1, *nb = *b - 1;
        return 1;
    }
    return 0;
}

static int color_of(const char *name, size_t len)
{
    char buf[SESSION_NAME_LEN];
    snprintf(buf, sizeof buf, "%.*s", (int)len, name);
    return name_colors[text_ihash(buf) % (sizeof name_colors / sizeof name_colors[0])];
}

/* "HH:MM " and the line, with colour when wanted: notices dim, errors red, the
 * speaker's name in a colour of its own (the same colour every time). */
static char *render(const char *line)
{
    size_t len = strlen(line), a, b, na, nb;
    char stamp[16], *out = malloc(len + 64);
    time_t t = time(NULL);
    struct tm tm;
    if (!out)
        return NULL;
    strftime(stamp, sizeof stamp, "%H:%M", localtime_r(&t, &tm));
    if (!c.color)
        sprintf(out, "%s %s", stamp, line);
    else if (strncmp(line, "-- ", 3) == 0)
        sprintf(out, "\033[2m%s %s\033[0m", stamp, line);
    else if (strncmp(line, "!! ", 3) == 0)
        sprintf(out, "\033[2m%s\033[0m \033[31m%s\033[0m", stamp, line);
    else if (find_name(line, &a, &b, &na, &nb))
        sprintf(out, "\033[2m%s\033[0m %.*s\033[1;%dm%.*s\033[0m%s", stamp, (int)a, line,
                color_of(line + na, nb - na), (int)(b - a), line + a, line + b);
    else
        sprintf(out, "\033[2m%s\033[0m %s", stamp, line);
    return out;
}

/* Show one sanitised line: as it is for scripts, dressed up on a terminal. */
static void show(const char *line)
{
    if (!c.tty) {
        if (printf("%s\n", line) < 0 || fflush(stdout) == EOF) {
            fprintf(stderr, "natter: write stdout: %s\n", strerror(errno));
            finish(EXIT_FAIL);
        }
        return;
    }
    char *text = render(line);
    if (text)
        lineedit_print_above(text);
    free(text);
}

/* A message of natter's own ("natter: ..."): above the input on a terminal. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c.tty)
        lineedit_print_above(msg);
    else
        fprintf(stderr, "%s\n", msg);
}

static void update_prompt(void)
{
    char prompt[SESSION_ROOM_LEN + 4];
    if (!c.tty || c.asking_name)
        return;
    snprintf(prompt, sizeof prompt, "%s> ", c.peer_mode ? "" : c.sess.current);
    lineedit_set_prompt(prompt);
}

/* ==== The connection: the socket, or TLS over it ==== */

static ssize_t sock_read(void *buf, size_t len)
{
    return c.tls ? tlsc_read(c.tls, buf, len) : read(c.fd, buf, len);
}

static ssize_t write_fd(void *ctx, const void *buf, size_t len)
{
    (void)ctx;
    return c.tls ? tlsc_write(c.tls, buf, len) : write(c.fd, buf, len);
}

/* "Protocol error" says nothing: name what TLS found wrong. */
static const char *sock_error(int e)
{
    return c.tls && e == EPROTO ? tlsc_error(c.tls) : strerror(e);
}

/* Half-close: TLS says close_notify first, then the socket its FIN. */
static void sock_shut_wr(void)
{
    if (c.tls)
        tlsc_close_notify(c.tls);
    shutdown(c.fd, SHUT_WR);
}

/* ==== Sending ==== */

static void flush_out(void)
{
    if (c.out.bytes > 0 && outq_write(&c.out, write_fd, &c.fd) < 0) {
        if (!c.leaving) {
            say("natter: write %s: %s", c.addr, sock_error(errno));
            finish(EXIT_FAIL);
        } else {
            finish(EXIT_OK);
        }
        outq_clear(&c.out);
        return;
    }
    if (c.out.bytes == 0 && c.shut_wr_pending) {
        c.shut_wr_pending = 0;
        sock_shut_wr();
    }
}

/* Queue line and its newline (the bytes as they are, NULs and all) and send. */
static void send_line(const char *line, size_t len)
{
    char *data = malloc(len + 1);
    struct msg *m = NULL;
    if (data) {
        memcpy(data, line, len);
        data[len] = '\n';
        m = msg_new(data, len + 1);
        free(data);
    }
    if (!m || outq_push(&c.out, m) < 0) {
        say("natter: out of memory");
        finish(EXIT_FAIL);
    }
    msg_unref(m);
    flush_out();
}

/* We said bye: the server answers "-- bye NAME" and closes. A person waits a
 * while at most; a script waits for the close, as at the end of its input: the
 * server may still be working through lines it queued under its rate limit, and
 * the script wants every answer. */
static void start_leaving(void)
{
    c.leaving = 1;
    if (!c.tty)
        return;
    if (!c.quit_deadline)
        c.quit_deadline = now_ms() + QUIT_WAIT_MS;
    lineedit_stop();
}

/* ==== What the user types ==== */

/* Show our own room message the way others see it (the server does not echo it).
 * Without natterd's welcome the other end is a 1:1 peer (natter --listen, nc)
 * that takes every line as it is, so it is shown as it is, commands and all. */
static void echo_own(const char *line)
{
    char *text = sanitized(line, strlen(line)), *shown;
    int literal = c.peer_mode || !c.sess.name[0];
    const char *room = c.peer_mode ? "" : c.sess.current;
    const char *sep = room[0] ? " " : "";
    if (!text)
        return;
    if (!c.peer_mode && c.sess.name[0] && !room[0]) { /* natterd answers "!! you are in no room" */
        free(text);
        return;
    }
    size_t n = strlen(text) + strlen(room) + strlen(my_name()) + 8;
    if ((shown = malloc(n)) != NULL) {
        if (literal || text[0] != '/')
            snprintf(shown, n, "%s%s<%s> %s", room, sep, my_name(), text);
        else if (text[1] == '/')
            snprintf(shown, n, "%s%s<%s> %s", room, sep, my_name(), text + 1);
        else if (strncasecmp(text, "/me ", 4) == 0)
            snprintf(shown, n, "%s%s* %s %s", room, sep, my_name(), text + 4);
        else
            shown[0] = '\0'; /* a command: the server answers it */
        if (shown[0])
            show(shown);
        free(shown);
    }
    free(text);
}

/* One line from the user (typed, or read from a script). */
static void handle_input(const char *line, size_t len)
{
    if (c.tty && len == 0)
        return;
    if (c.peer_mode && (is_bye(line, len) || is_quit(line, len))) {
        /* 1:1: the side that says bye leaves at once, as in the lesson. */
        send_line("bye", 3);
        if (c.tty)
            echo_own("bye");
        finish(EXIT_OK);
        return;
    }
    if (c.tty && !c.peer_mode && c.sess.name[0] && len > c.server_line_max) {
        /* natterd would refuse it: say so now, rather than show it as if it went */
        say("natter: line too long (%zu bytes, the server takes %zu at most): not sent", len, c.server_line_max);
        return;
    }
    send_line(line, len);
    if (!c.peer_mode && (is_bye(line, len) || is_quit(line, len)))
        start_leaving();
    else if (c.tty)
        echo_own(line);
}

static void choose_name(const char *name)
{
    if (name[0] && !text_valid_name(name, NAME_MAX_CHARS)) {
        say("natter: invalid name: %s (1-%d characters, no spaces, no <>*,)", name, NAME_MAX_CHARS);
        return; /* ask again */
    }
    c.asking_name = 0;
    if (name[0]) {
        free(c.name);
        c.name = strdup(name);
        char cmd[SESSION_NAME_LEN + 8];
        int n = snprintf(cmd, sizeof cmd, "/nick %s", name);
        send_line(cmd, (size_t)n);
        c.name_pending = 1;
    } else {
        /* Keep the guest name, but say something that counts (natterd's
         * --login-timeout ignores empty lines): who is here. */
        send_line("/who", 4);
    }
    update_prompt();
}

/* End of input: Ctrl-D on a terminal says bye; a script's end half-closes the
 * connection so the server still gets everything and can answer it. */
static void input_ended(void)
{
    c.stdin_open = 0;
    if (c.tty) {
        handle_input("bye", 3);
        return;
    }
    if (c.stdin_in.len > 0) /* a last line without a newline */
        handle_input(c.stdin_in.data, c.stdin_in.len);
    inbuf_clear(&c.stdin_in);
    c.leaving = 1;
    c.shut_wr_pending = 1;
    flush_out();
}

static void on_typed_line(char *line)
{
    if (!line)
        input_ended();
    else if (c.asking_name)
        choose_name(line);
    else {
        if (line[0])
            lineedit_remember(line);
        handle_input(line, strlen(line));
    }
    free(line);
}

static int on_stdin_line(void *ctx, char *line, size_t len)
{
    (void)ctx;
    if (!line)
        fprintf(stderr, "natter: stdin: line longer than %d bytes, skipped\n", LINE_MAX_IN);
    else
        handle_input(line, len);
    return !(c.leaving || c.done); /* nothing after bye */
}

static void read_stdin(short revents)
{
    if (c.tty) {
        if (revents & POLLIN)
            lineedit_feed();
        else
            input_ended(); /* the terminal hung up */
        return;
    }
    char buf[16384];
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n > 0) {
        if (lineframe_feed(&c.stdin_in, &c.stdin_skip, buf, (size_t)n, LINE_MAX_IN, on_stdin_line, NULL) != 0)
            c.stdin_open = 0; /* we said bye (or ran out of memory): the rest is not sent */
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        input_ended();
    }
}

/* ==== What the other end sends ==== */

/* The server refused the name we asked for: ask again rather than leave the
 * user a guest without a word. */
static void name_refused(const char *line)
{
    if (!c.name_pending || (strncmp(line, "!! name taken: ", 15) != 0 &&
                            strncmp(line, "!! invalid name: ", 17) != 0))
        return;
    c.name_pending = 0;
    c.hold_deadline = 0;
    if (!c.tty) { /* a script asked for this name: carrying on as a guest would be a lie */
        fprintf(stderr, "natter: the server refused the name %s: %s\n", c.name ? c.name : "", line + 3);
        c.leaving = 1;
        finish(EXIT_FAIL);
        return;
    }
    c.asking_name = 1;
    lineedit_set_prompt("name: ");
}

/* Learn our name and room from line; a rename from a real name (not the
 * welcome's guest name) answers the pending /nick. */
static void track_session(const char *line)
{
    char old[SESSION_NAME_LEN];
    memcpy(old, c.sess.name, sizeof old);
    if (!session_update(&c.sess, line))
        return;
    if ((old[0] && strcmp(old, c.sess.name) != 0) || (c.name && c.sess.name[0] && strcmp(c.sess.name, c.name) == 0)) {
        c.name_pending = 0; /* the name is ours (renamed, or the welcome gave it already) */
        c.hold_deadline = 0;
    }
    update_prompt();
}

/* In a natterd room: keep track of our name and room, show, and notice goodbyes. */
static void room_line(const char *line)
{
    if (c.hold_deadline && !c.sess.name[0] && strncmp(line, "-- welcome to natter, ", 22) != 0)
        c.hold_deadline = 0; /* not natterd: nobody will answer the /nick */
    track_session(line);
    show(line);
    name_refused(line);
    unsigned long max;
    if (sscanf(line, "!! line too long (max %lu bytes)", &max) == 1 && max > 0)
        c.server_line_max = max; /* the server's own limit, from now on */
    if (strcmp(line, "bye") == 0)
        finish(EXIT_OK); /* a 1:1 peer (natter --listen or a person on nc) left */
    else if (session_is_goodbye(&c.sess, line))
        start_leaving();
}

/* 1:1 chat: the peer sends raw lines; "/nick NAME" names it, "bye" ends the chat. */
static void peer_line(const char *line)
{
    size_t len = strlen(line);
    if (!c.tty) {
        show(line);
    } else if (strncmp(line, "/nick ", 6) == 0 && text_valid_name(line + 6, NAME_MAX_CHARS)) {
        char note[2 * SESSION_NAME_LEN + 32];
        snprintf(note, sizeof note, "-- %s is now known as %s", c.peer, line + 6);
        snprintf(c.peer, sizeof c.peer, "%s", line + 6);
        show(note);
        return;
    } else if (len > 0) {
        char *shown = malloc(len + strlen(c.peer) + 4);
        if (!shown)
            return;
        sprintf(shown, "<%s> %s", c.peer, strncmp(line, "//", 2) == 0 ? line + 1 : line);
        show(shown);
        free(shown);
    }
    if (is_bye(line, len) || is_quit(line, len))
        finish(EXIT_OK);
}

/* One line from the other end; returns 0 once the session is over (lineframe.h). */
static int on_socket_line(void *ctx, char *line, size_t len)
{
    (void)ctx;
    if (!line) {
        say("natter: discarded a line longer than %d bytes", LINE_MAX_IN);
        return 1;
    }
    char *clean = sanitized(line, len);
    if (!clean)
        return 1;
    if (c.peer_mode)
        peer_line(clean);
    else
        room_line(clean);
    free(clean);
    return !c.done;
}

static void connection_closed(void)
{
    /* A last line without a newline; not over TLS, where natterd sends only
     * whole lines and a cut one means the stream was cut (natter accepts an
     * end without close_notify as the end, like a plain one). */
    if (c.sock_in.len > 0 && !c.tls)
        on_socket_line(NULL, c.sock_in.data, c.sock_in.len);
    inbuf_clear(&c.sock_in);
    if (c.done)
        return;
    if (!c.leaving) {
        if (c.tty)
            lineedit_stop();
        fprintf(stderr, "natter: connection closed by %s\n", c.peer_mode ? "peer" : "server");
    }
    finish(EXIT_OK);
}

/* One read; with TLS, also what it decrypted beyond that (no poll announces it). */
static void read_socket(void)
{
    char buf[65536];
    do {
        ssize_t n = sock_read(buf, sizeof buf);
        if (n > 0) {
            if (lineframe_feed(&c.sock_in, &c.sock_skip, buf, (size_t)n, LINE_MAX_IN, on_socket_line, NULL) < 0) {
                fprintf(stderr, "natter: out of memory\n");
                finish(EXIT_FAIL);
            }
        } else if (n == 0) {
            connection_closed();
        } else if (errno != EINTR && errno != EAGAIN) {
            int e = errno;
            if (c.tty)
                lineedit_stop();
            fprintf(stderr, "natter: read %s: %s\n", c.addr, sock_error(e));
            finish(c.leaving ? EXIT_OK : EXIT_FAIL);
        }
    } while (c.tls && !c.done && tlsc_pending(c.tls));
}

/* ==== Signals ==== */

static void on_signal(int sig)
{
    if (sig == SIGWINCH)
        got_winch = 1;
    else if (sig == SIGTSTP)
        got_tstp = 1;
    else
        got_signal = sig;
}

static void catch_signal(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: poll() must wake up */
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static void catch_signals(void)
{
    catch_signal(SIGINT);
    catch_signal(SIGTERM);
    catch_signal(SIGHUP);
    catch_signal(SIGWINCH);
    signal(SIGPIPE, SIG_IGN);
}

/* Ctrl-Z on a terminal: stopping in raw mode would leave the shell a terminal
 * that does not echo, and libedit would not know to take it back at fg. So give
 * it back as we found it, stop for real, and take it again when continued. */
static void suspend_self(void)
{
    got_tstp = 0;
    lineedit_suspend();
    signal(SIGTSTP, SIG_DFL);
    raise(SIGTSTP); /* returns at fg (SIGCONT) */
    catch_signal(SIGTSTP);
    lineedit_resume();
}

/* ==== The loop ==== */

static int poll_timeout(void)
{
    long long next = c.quit_deadline;
    if (c.hold_deadline && (!next || c.hold_deadline < next))
        next = c.hold_deadline;
    if (!next)
        return -1;
    long long left = next - now_ms();
    return left > 0 ? (int)left : 0;
}

static void run(void)
{
    while (!c.done) {
        struct pollfd p[2] = {{.fd = c.fd, .events = POLLIN}, {.fd = STDIN_FILENO, .events = POLLIN}};
        if (c.hold_deadline && now_ms() >= c.hold_deadline)
            c.hold_deadline = 0; /* no welcome came: a 1:1 peer, not natterd */
        int want_stdin = c.stdin_open && !c.leaving && c.out.bytes < OUT_HIGH && !c.hold_deadline;
        /* TLS may need to write to read (or to read to write): any event retries both. */
        int tls_wants_out = c.tls && tlsc_wants_write(c.tls);
        if (c.out.bytes > 0 || tls_wants_out)
            p[0].events |= POLLOUT;
        int r = poll(p, want_stdin ? 2 : 1, poll_timeout());
        if (r < 0 && errno != EINTR) {
            say("natter: poll: %s", strerror(errno));
            finish(EXIT_FAIL);
        }
        if (got_signal)
            return;
        if (got_winch) {
            got_winch = 0;
            lineedit_resize();
        }
        if (got_tstp)
            suspend_self();
        if (c.quit_deadline && now_ms() >= c.quit_deadline)
            finish(EXIT_OK); /* the server never closed: leave anyway */
        if (r <= 0)
            continue;
        if (p[0].revents & (c.tls ? POLLIN | POLLOUT | POLLHUP | POLLERR : POLLOUT))
            flush_out();
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR | (tls_wants_out ? POLLOUT : 0)))
            read_socket();
        if (!c.done && want_stdin && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
            read_stdin(p[1].revents);
    }
}

/* Give unsent lines (a last "bye") a moment to go, then close without a reset:
 * closing with unread input makes the kernel send RST, which can destroy the
 * lines we just sent before the peer reads them. */
static void close_connection(void)
{
    long long deadline = now_ms() + FINAL_FLUSH_MS;
    while (c.out.bytes > 0 && !got_signal && now_ms() < deadline) {
        struct pollfd p = {.fd = c.fd, .events = POLLOUT};
        if (poll(&p, 1, (int)(deadline - now_ms())) <= 0 || outq_write(&c.out, write_fd, &c.fd) < 0)
            break;
    }
    sock_shut_wr();
    char sink[4096];
    while (read(c.fd, sink, sizeof sink) > 0)
        ;
    close(c.fd);
    c.fd = -1;
    tlsc_conn_free(c.tls);
    tlsc_free(c.tls_ctx);
    c.tls = NULL, c.tls_ctx = NULL;
}

/* ==== Connecting and listening ==== */

static int connect_to(const char *host, const char *port)
{
    char err[NET_ERR_LEN];
    int fd = net_connect(host, port, err);
    if (fd < 0) {
        fprintf(stderr, "natter: %s\n", err);
        return -1;
    }
    snprintf(c.addr, sizeof c.addr, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
    return fd;
}

/* TLS over the connected socket: verify (unless --insecure), with the handshake
 * done before anything is sent. Returns 0, or -1 having said why. */
static int start_tls(const struct options *o, const char *host)
{
    char err[768];
    if (o->insecure)
        fprintf(stderr, "natter: warning: --insecure: the server's certificate is not checked, so anyone "
                        "in the middle can read and change this chat\n");
    if (!(c.tls_ctx = tlsc_new(!o->insecure, o->ca, err, sizeof err)) ||
        !(c.tls = tlsc_conn_new(c.tls_ctx, c.fd, host, err, sizeof err))) {
        fprintf(stderr, "natter: %s\n", err);
        return -1;
    }
    long long deadline = now_ms() + HANDSHAKE_MS;
    int rc;
    while ((rc = tlsc_handshake(c.tls, err, sizeof err)) == 0 && !got_signal) {
        struct pollfd p = {.fd = c.fd, .events = tlsc_wants_write(c.tls) ? POLLOUT : POLLIN};
        long long left = deadline - now_ms();
        if (left <= 0) {
            snprintf(err, sizeof err, "no TLS handshake within %d seconds", HANDSHAKE_MS / 1000);
            rc = -1;
            break;
        }
        if (poll(&p, 1, (int)left) < 0 && errno != EINTR) {
            snprintf(err, sizeof err, "poll: %s", strerror(errno));
            rc = -1;
            break;
        }
    }
    if (rc != 1) { /* (-2, closed without a word, is a failure like any other here) */
        if (!got_signal)
            fprintf(stderr, "natter: %s: %s\n", c.addr, err);
        return -1;
    }
    return 0;
}

/* The lesson's 1:1 server: bind, wait for one peer, say who it is. */
static int wait_for_peer(const char *spec)
{
    char host[256], port[16], err[NET_ERR_LEN], where[NET_ADDR_LEN];
    net_split_hostport(spec, host, sizeof host, port, sizeof port); /* checked by parse_options */
    int lfd = net_listen(host, atoi(port), 1, err);
    if (lfd < 0) {
        fprintf(stderr, "natter: %s\n", err);
        return -1;
    }
    if (net_local_addr(lfd, where, sizeof where) == 0)
        fprintf(stderr, "natter: listening on %s\n", where);
    int fd = -1;
    while (fd < 0 && !got_signal) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            break;
        if ((fd = net_accept(lfd, c.addr)) < 0 && errno != EAGAIN && errno != EINTR &&
            errno != ECONNABORTED) {
            fprintf(stderr, "natter: accept %s: %s\n", where, strerror(errno));
            break;
        }
    }
    close(lfd);
    if (fd >= 0)
        fprintf(stderr, "natter: connection from %s\n", c.addr);
    return fd;
}

/* ==== Options ==== */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: natter [--name NAME] [--no-color] [--tls [--ca FILE] [--insecure]] [HOST [PORT]]\n"
            "       natter --listen [ADDR:]PORT [--name NAME] [--no-color]\n"
            "\n"
            "Chat in natterd's rooms (default %s %s, with --tls %s), or 1:1 with --listen.\n"
            "\n"
            "  -n, --name NAME           your name (asked for on a terminal when not given)\n"
            "  -l, --listen [ADDR:]PORT  wait for one peer on PORT and chat with it 1:1\n"
            "      --tls                 connect with TLS, checking the server's certificate\n"
            "      --ca FILE             with --tls: also trust the authorities in FILE (PEM)\n"
            "      --insecure            with --tls: do not check the certificate (not safe)\n"
            "      --no-color            no colours (also when NO_COLOR is set)\n"
            "  -h, --help                this help\n"
            "  -V, --version             print the version\n"
            "\n"
            "Type bye or /quit (or Ctrl-D) to leave. See natter(1).\n",
            DEFAULT_HOST, DEFAULT_PORT, DEFAULT_TLS_PORT);
}

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "natter: %s%s\n", what, arg);
    fprintf(stderr, "usage: natter [--name NAME] [--no-color] [--tls [--ca FILE] [--insecure]] [HOST [PORT]]\n"
                    "       natter --listen [ADDR:]PORT   (natter --help for more)\n");
    return -1;
}

/* Ports by natterd's rules for numbers (core/num.h): figures only, in range. */
static int valid_port(const char *s, long long min)
{
    long long v;
    return num_whole(s, min, 65535, &v) == 0;
}

/* Returns 1 to go on, 0 to exit successfully (--help, --version), -1 on misuse. */
static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longs[] = {
        {"name", required_argument, NULL, 'n'}, {"listen", required_argument, NULL, 'l'},
        {"no-color", no_argument, NULL, 'C'},   {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},    {"tls", no_argument, NULL, 'T'},
        {"ca", required_argument, NULL, 'A'},   {"insecure", no_argument, NULL, 'K'},
        {NULL, 0, NULL, 0}};
    int ch;
    o->host = DEFAULT_HOST, o->port = DEFAULT_PORT;
    opterr = 0; /* our own messages, named "natter" */
    while ((ch = getopt_long(argc, argv, ":n:l:hV", longs, NULL)) != -1) {
        switch (ch) {
        case 'n': o->name = optarg; break;
        case 'l': o->listen = optarg; break;
        case 'C': o->no_color = 1; break;
        case 'T': o->tls = 1; break;
        case 'A': o->ca = optarg; break;
        case 'K': o->insecure = 1; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("natter %s\n", NATTER_VERSION); return 0;
        case ':': return usage_error("option needs an argument: ", argv[optind - 1]);
        default: return usage_error("unknown option: ", argv[optind - 1]);
        }
    }
    int left = argc - optind;
    if (o->name) { /* checked here, not answered with a /nick usage line by the server */
        char nfc[512], what[200];
        enum name_verdict v = name_normalize(o->name, NAME_MAX_EVER, nfc, sizeof nfc);
        if (v != NAME_OK) {
            snprintf(what, sizeof what, "--name '%.64s': %s", o->name, name_why(v));
            return usage_error(what, "");
        }
    }
    if ((o->ca || o->insecure) && !o->tls)
        return usage_error(o->ca ? "--ca" : "--insecure", " goes with --tls");
    if (o->ca && o->insecure)
        return usage_error("--ca and --insecure", " contradict each other");
    if (o->tls)
        o->port = DEFAULT_TLS_PORT;
    if (o->listen) {
        if (o->tls)
            return usage_error("--listen", " does not speak TLS");
        char host[256], port[16];
        if (left > 0)
            return usage_error("--listen takes no HOST or PORT: ", argv[optind]);
        if (net_split_hostport(o->listen, host, sizeof host, port, sizeof port) < 0)
            return usage_error("bad --listen address: ", o->listen);
        if (!valid_port(port, 0)) {
            char what[128];
            snprintf(what, sizeof what, "--listen: port '%.40s' is not a whole number from 0 to 65535", port);
            return usage_error(what, "");
        }
        return 1;
    }
    if (left > 2)
        return usage_error("too many arguments: ", argv[optind + 2]);
    if (left >= 1)
        o->host = argv[optind];
    if (left == 2)
        o->port = argv[optind + 1];
    if (!valid_port(o->port, 1)) { /* 0 only means "any" for --listen */
        char what[128];
        snprintf(what, sizeof what, "PORT '%.40s' is not a whole number from 1 to 65535", o->port);
        return usage_error(what, "");
    }
    if (!o->host[0])
        return usage_error("empty HOST", "");
    return 1;
}

/* "[::1]" -> "::1", the way URLs write it. */
static const char *unbracket(const char *host, char *buf, size_t len)
{
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < len) {
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
        return buf;
    }
    return host;
}

/* ==== Main ==== */

static void start(const struct options *o)
{
    c.stdin_open = 1;
    snprintf(c.peer, sizeof c.peer, "%.100s", c.addr); /* until it names itself with /nick */
    if (o->name && !c.peer_mode) {
        char cmd[SESSION_NAME_LEN * 4 + 8];
        int n = snprintf(cmd, sizeof cmd, "/nick %s", o->name);
        send_line(cmd, (size_t)n);
        c.name_pending = 1;
        /* A script's lines wait for the answer: sent before it, they would go out
         * under a guest name when the name is taken. Only natterd answers, and it
         * welcomes first; without a welcome the other end is a 1:1 peer. */
        if (!c.tty)
            c.hold_deadline = now_ms() + WELCOME_WAIT_MS;
    }
    if (!c.tty)
        return;
    c.asking_name = !o->name && !c.peer_mode;
    catch_signal(SIGTSTP); /* only with line editing: a script stops as usual */
    lineedit_start(c.asking_name ? "name: " : "> ", on_typed_line);
    update_prompt();
}

int main(int argc, char **argv)
{
    struct options o = {0};
    char hostbuf[256];
    setlocale(LC_ALL, ""); /* UTF-8 input editing and display widths */
    int rc = parse_options(argc, argv, &o);
    if (rc <= 0)
        return rc == 0 ? EXIT_OK : EXIT_USAGE;
    catch_signals();
    c.peer_mode = o.listen != NULL;
    c.tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    const char *no_color = getenv("NO_COLOR");
    const char *term = getenv("TERM");
    c.color = c.tty && !o.no_color && !(no_color && no_color[0]) && term && *term && strcmp(term, "dumb") != 0;
    c.server_line_max = SERVER_LINE_MAX;
    c.name = o.name ? strdup(o.name) : NULL;
    const char *host = unbracket(o.host, hostbuf, sizeof hostbuf);
    c.fd = c.peer_mode ? wait_for_peer(o.listen) : connect_to(host, o.port);
    if (c.fd >= 0) {
        net_set_nonblock(c.fd, 1);
        net_set_nodelay(c.fd);
        if (o.tls && start_tls(&o, host) < 0) {
            tlsc_conn_free(c.tls);
            tlsc_free(c.tls_ctx);
            close(c.fd);
            free(c.name);
            c.fd = -1;
        }
    }
    if (c.fd < 0 && got_signal) {
        signal(got_signal, SIG_DFL);
        raise(got_signal);
    }
    if (c.fd < 0)
        return EXIT_FAIL;
    start(&o);
    run();
    if (c.tty)
        lineedit_stop();
    close_connection();
    outq_clear(&c.out);
    inbuf_clear(&c.sock_in);
    inbuf_clear(&c.stdin_in);
    free(c.name);
    session_free(&c.sess);
    if (got_signal) { /* die of it, as the shell expects, now that the terminal is restored */
        signal(got_signal, SIG_DFL);
        raise(got_signal);
    }
    return c.status;
}
