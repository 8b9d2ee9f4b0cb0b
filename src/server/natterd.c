/* natterd.c - the chat server: options, listeners, signals, the main loop.
 *
 * One thread, one epoll loop. Connections (conn.c) read bytes through their
 * transport and offer them to their codec (codecs/line/), which turns them into
 * hub calls; the hub (hub.c) routes each event to the output queues of its
 * recipients. See docs/architecture.md.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/net.h"
#include "core/text.h"
#include "server/codecs/line/linecodec.h"
#include "server/conn.h"
#include "server/hub.h"
#include "server/listener.h"

#define RESERVED_FDS 16 /* listeners, epoll, signalfd, stdio, the spare, logs */
#define MAX_BINDS 16

struct options {
    const char *bind[MAX_BINDS]; /* none: every address */
    int nbind;
    int port;
    long max_clients; /* 0 = as many as descriptors allow */
    int keepalive;    /* seconds; 0 = off */
    struct conn_limits conn;
    struct hub_limits hub;
    int verbose;
};

/* ==== Options ==== */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: natterd [options]\n"
            "  -b, --bind ADDR          address to listen on, repeatable (default: all, IPv6 and IPv4)\n"
            "  -p, --port PORT          port (default 8888; 0 picks a free one)\n"
            "      --max-clients N      connections at once (default: as many as descriptors allow)\n"
            "      --max-line BYTES     longest input line (default 4096)\n"
            "      --max-outbuf BYTES   output queued for one client before it is dropped (default 262144)\n"
            "      --max-name N         longest name in characters (default 24)\n"
            "      --max-rooms N        rooms one user may be in (default 16)\n"
            "      --max-announce N     no join/leave notices in rooms larger than this (default 200)\n"
            "      --rate LINES         lines per second per client, 0 = unlimited (default 10)\n"
            "      --burst LINES        lines a client may send at once (default 50)\n"
            "      --max-per-ip N       connections from one address, 0 = unlimited (default 64)\n"
            "      --flood-timeout SECS drop clients over --rate this long, 0 = never (default 30)\n"
            "      --login-timeout SECS drop new clients that send nothing this long, 0 = never (default 300)\n"
            "      --idle-timeout SECS  drop clients silent this long, 0 = never (default 0)\n"
            "      --keepalive SECS     TCP keepalive idle time to find dead peers, 0 = off (default 60)\n"
            "  -v, --verbose            log more\n"
            "  -h, --help               this help\n"
            "  -V, --version            print the version\n"
            "See natterd(8).\n");
}

/* Parse a number in [min, max] or exit with a usage error naming the option. */
static double number(const char *opt, const char *s, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "natterd: %s: invalid value '%s' (expected %g to %g)\n", opt, s, min, max);
        exit(2);
    }
    return v;
}

static void parse_options(int argc, char **argv, struct options *o)
{
    enum { O_MAXCLIENTS = 256, O_MAXLINE, O_MAXOUTBUF, O_MAXNAME, O_MAXROOMS, O_MAXANNOUNCE,
           O_RATE, O_BURST, O_IDLE, O_PERIP, O_FLOOD, O_LOGIN, O_KEEPALIVE };
    static const struct option longopts[] = {
        {"bind", required_argument, NULL, 'b'},
        {"port", required_argument, NULL, 'p'},
        {"max-clients", required_argument, NULL, O_MAXCLIENTS},
        {"max-line", required_argument, NULL, O_MAXLINE},
        {"max-outbuf", required_argument, NULL, O_MAXOUTBUF},
        {"max-name", required_argument, NULL, O_MAXNAME},
        {"max-rooms", required_argument, NULL, O_MAXROOMS},
        {"max-announce", required_argument, NULL, O_MAXANNOUNCE},
        {"rate", required_argument, NULL, O_RATE},
        {"burst", required_argument, NULL, O_BURST},
        {"idle-timeout", required_argument, NULL, O_IDLE},
        {"max-per-ip", required_argument, NULL, O_PERIP},
        {"flood-timeout", required_argument, NULL, O_FLOOD},
        {"login-timeout", required_argument, NULL, O_LOGIN},
        {"keepalive", required_argument, NULL, O_KEEPALIVE},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "b:p:vhV", longopts, NULL)) != -1) {
        switch (ch) {
        case 'b':
            if (o->nbind == MAX_BINDS) {
                fprintf(stderr, "natterd: --bind: at most %d addresses\n", MAX_BINDS);
                exit(2);
            }
            o->bind[o->nbind++] = optarg;
            break;
        case 'p': o->port = (int)number("--port", optarg, 0, 65535); break;
        case O_MAXCLIENTS: o->max_clients = (long)number("--max-clients", optarg, 1, 10000000); break;
        case O_MAXLINE: o->conn.max_line = (size_t)number("--max-line", optarg, 64, 1 << 24); break;
        case O_MAXOUTBUF: o->conn.max_outbuf = (size_t)number("--max-outbuf", optarg, 4096, 1 << 30); break;
        case O_MAXNAME: o->hub.max_name = (uint32_t)number("--max-name", optarg, 1, 31); break;
        case O_MAXROOMS: o->hub.max_rooms = (uint32_t)number("--max-rooms", optarg, 1, 1000); break;
        case O_MAXANNOUNCE: o->hub.max_announce = (uint32_t)number("--max-announce", optarg, 0, 1e9); break;
        case O_RATE: o->conn.rate = number("--rate", optarg, 0, 1e9); break;
        case O_BURST: o->conn.burst = number("--burst", optarg, 1, 1e9); break;
        case O_IDLE: o->conn.idle_timeout = (int)number("--idle-timeout", optarg, 0, 1e6); break;
        case O_PERIP: o->conn.max_per_ip = (unsigned)number("--max-per-ip", optarg, 0, 1e9); break;
        case O_FLOOD: o->conn.flood_timeout = (int)number("--flood-timeout", optarg, 0, 1e6); break;
        case O_LOGIN: o->conn.login_timeout = (int)number("--login-timeout", optarg, 0, 1e6); break;
        case O_KEEPALIVE: o->keepalive = (int)number("--keepalive", optarg, 0, 1e6); break;
        case 'v': o->verbose = 1; break;
        case 'h': usage(stdout); exit(0);
        case 'V': printf("natterd %s\n", NATTER_VERSION); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "natterd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        exit(2);
    }
    /* Messages must fit a line: sanitising may triple an input line's size. */
    if (o->conn.max_outbuf < 4 * o->conn.max_line) {
        fprintf(stderr, "natterd: --max-outbuf must be at least 4 times --max-line\n");
        exit(2);
    }
}

/* ==== Descriptors ==== */

/* Raise the soft descriptor limit towards the hard one: each client is a
 * descriptor. Not past what --max-clients needs (or 65536 without it): tables
 * are sized by it, and a hard limit can be a billion. */
static long raise_fd_limit(long max_clients)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    rlim_t cap = max_clients > 0 ? (rlim_t)max_clients + RESERVED_FDS : 1 << 16;
    if (rl.rlim_cur < rl.rlim_max && rl.rlim_cur < cap) {
        rlim_t want = rl.rlim_max < cap ? rl.rlim_max : cap;
        struct rlimit up = {want, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl.rlim_cur = want;
        else
            log_errno("setrlimit RLIMIT_NOFILE %lu", (unsigned long)want);
    }
    return rl.rlim_cur > cap ? (long)cap : (long)rl.rlim_cur;
}

/* ==== Signals ==== */

static void on_signal(struct loop *l, int fd, int mask, void *data)
{
    (void)mask, (void)data;
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        log_info("%s received, shutting down", strsignal((int)si.ssi_signo));
        loop_stop(l);
    }
}

static int setup_signals(void)
{
    signal(SIGPIPE, SIG_IGN); /* a write to a closed socket is an error return, not death */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -1;
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* ==== Main ==== */

/* A secret key for the name tables' hash, so names cannot be chosen to collide. */
static void seed_hash(void)
{
    unsigned char key[16];
    if (getrandom(key, sizeof key, 0) != (ssize_t)sizeof key) {
        long long t = loop_now_ms() ^ ((long long)getpid() << 20);
        for (size_t i = 0; i < sizeof key; i++)
            key[i] = (unsigned char)(t >> (8 * (i % 8))) ^ (unsigned char)(i * 131);
    }
    text_hash_key(key);
}

/* Open a listener on each --bind address (or every address) for the plain
 * protocol; writes the ready line. Returns the number opened, or -1. */
static int open_listeners(const struct options *o, const struct conn_profile *plain, struct listener **out,
                          long max_clients)
{
    int n = o->nbind ? o->nbind : 1;
    char ready[1024] = "";
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        char err[NET_ERR_LEN];
        out[i] = listener_open(o->nbind ? o->bind[i] : NULL, o->port, plain, o->keepalive, err);
        if (!out[i]) {
            log_info("%s", err);
            while (i-- > 0)
                listener_close(out[i]);
            return -1;
        }
        len += (size_t)snprintf(ready + len, sizeof ready - len, "%s%s", i ? ", " : "", listener_addr(out[i]));
        if (len >= sizeof ready)
            len = sizeof ready - 1;
    }
    log_info("listening on %s (max %ld clients)", ready, max_clients);
    return n;
}

int main(int argc, char **argv)
{
    struct options o = {
        .port = 8888,
        .conn = {.max_line = 4096, .max_outbuf = 256 * 1024, .rate = 10, .burst = 50,
                 .flood_timeout = 30, .login_timeout = 300, .max_per_ip = 64},
        .keepalive = 60,
        .hub = {.max_name = 24, .max_rooms = 16, .max_announce = 200},
    };
    argv[0] = (char *)"natterd"; /* getopt's messages name the program, not its path */
    parse_options(argc, argv, &o);
    log_init("natterd", o.verbose);
    seed_hash();

    long fds = raise_fd_limit(o.max_clients);
    long max_clients = fds - RESERVED_FDS;
    if (o.max_clients > max_clients)
        log_info("--max-clients %ld is more than %ld descriptors allow: expect 'server full' sooner",
                 o.max_clients, fds);
    if (o.max_clients > 0)
        max_clients = o.max_clients;
    if (max_clients < 1) {
        log_info("descriptor limit %ld is too low to serve anyone", fds);
        return 1;
    }

    int signal_fd = setup_signals();
    struct loop *loop = loop_new((int)fds);
    struct hub *hub = hub_new(&o.hub);
    if (signal_fd < 0 || !loop || !hub || conn_init(loop, (int)fds) < 0 || listener_init(loop, max_clients) < 0) {
        log_errno("startup");
        return 1;
    }
    struct conn_profile plain = {.name = "plain", .codec = &line_codec, .hub = hub, .lim = o.conn};
    struct listener *listeners[MAX_BINDS];
    int nlisteners = open_listeners(&o, &plain, listeners, max_clients);
    int rc = nlisteners < 0;
    loop_watch(loop, signal_fd, LOOP_READ, on_signal, NULL);
    if (!rc && loop_run(loop) < 0) {
        log_errno("epoll_wait");
        rc = 1;
    }

    for (int i = 0; i < nlisteners; i++)
        listener_close(listeners[i]);
    hub_shutdown(hub);
    conn_shutdown();
    hub_free(hub);
    listener_done();
    loop_free(loop);
    close(signal_fd);
    if (nlisteners >= 0)
        log_info("stopped");
    return rc;
}
