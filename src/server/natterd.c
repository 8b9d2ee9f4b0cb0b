/* natterd.c - the chat server: options, listeners, signals, the main loop.
 *
 * One thread, one epoll loop. Connections (conn.c) read bytes through their
 * transport and offer them to their codec (codecs/line/), which turns them into
 * hub calls; the hub (hub.c) routes each event to the output queues of its
 * recipients. See docs/architecture.md.
 */
#include <errno.h>
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
#include "server/codecs/irc/irccodec.h"
#include "server/codecs/line/linecodec.h"
#include "server/conn.h"
#include "server/hub.h"
#include "server/listener.h"
#include "server/options.h"

#define RESERVED_FDS 16 /* listeners, epoll, signalfd, stdio, the spare, logs */

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

/* Open a listener on each --bind address (or every address) on port for
 * profile p; puts "addr:port, addr:port" in ready. Returns the number opened, or -1. */
static int open_listeners(const struct options *o, int port, const struct conn_profile *p, struct listener **out,
                          char *ready, size_t readylen)
{
    int n = o->nbind ? o->nbind : 1;
    int keepalive = (int)o->keepalive;
    size_t len = 0;
    ready[0] = '\0';
    for (int i = 0; i < n; i++) {
        char err[NET_ERR_LEN];
        out[i] = listener_open(o->nbind ? o->bind[i] : NULL, port, p, keepalive, err);
        if (!out[i]) {
            log_info("%s", err);
            while (i-- > 0)
                listener_close(out[i]);
            return -1;
        }
        len += (size_t)snprintf(ready + len, readylen - len, "%s%s", i ? ", " : "", listener_addr(out[i]));
        if (len >= readylen)
            len = readylen - 1;
    }
    return n;
}

/* The IRC settings: the server's name defaults to the host name (if that is a
 * valid IRC name). */
static int setup_irc(const struct options *o)
{
    static char host[64];
    const char *name = o->server_name;
    if (!name) {
        name = "natter";
        if (gethostname(host, sizeof host) == 0 && host[0] && !strpbrk(host, " :!@*"))
            name = host;
    }
    if (irc_setup(name, o->network, o->irc_password, o->motd) < 0) {
        log_errno("--motd %s", o->motd);
        return -1;
    }
    line_hand_irc_to(&irc_codec);
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    options_defaults(&o);
    argv[0] = (char *)"natterd"; /* getopt's messages name the program, not its path */
    options_parse_argv(&o, argc, argv);
    log_init("natterd", o.verbose);
    seed_hash();

    long fds = raise_fd_limit((long)o.max_clients);
    long max_clients = fds - RESERVED_FDS;
    if (o.max_clients > max_clients)
        log_info("--max-clients %lld is more than %ld descriptors allow: expect 'server full' sooner",
                 o.max_clients, fds);
    if (o.max_clients > 0)
        max_clients = (long)o.max_clients;
    if (max_clients < 1) {
        log_info("descriptor limit %ld is too low to serve anyone", fds);
        return 1;
    }

    int signal_fd = setup_signals();
    struct loop *loop = loop_new((int)fds);
    struct hub_limits hub_lim;
    options_hub_limits(&o, &hub_lim);
    struct hub *hub = hub_new(&hub_lim);
    if (signal_fd < 0 || !loop || !hub || conn_init(loop, (int)fds) < 0 || listener_init(loop, max_clients) < 0) {
        log_errno("startup");
        return 1;
    }
    struct conn_profile plain = {.name = "plain", .codec = &line_codec, .hub = hub};
    struct conn_profile irc = {.name = "irc", .codec = &irc_codec, .hub = hub};
    options_conn_limits(&o, &plain.lim);
    options_conn_limits(&o, &irc.lim);
    struct listener *listeners[OPT_MAX_BINDS], *irc_listeners[OPT_MAX_BINDS];
    char ready[1024], irc_ready[1024];
    int nlisteners = -1, nirc = 0;
    if (setup_irc(&o) == 0)
        nlisteners = open_listeners(&o, (int)o.port, &plain, listeners, ready, sizeof ready);
    if (nlisteners >= 0 && !o.no_irc && (nirc = open_listeners(&o, (int)o.irc_port, &irc, irc_listeners, irc_ready,
                                                                 sizeof irc_ready)) < 0) {
        for (int i = 0; i < nlisteners; i++)
            listener_close(listeners[i]);
        nlisteners = -1;
        nirc = 0;
    }
    if (nirc > 0)
        log_info("listening for IRC on %s", irc_ready);
    if (nlisteners >= 0)
        log_info("listening on %s (max %ld clients)", ready, max_clients);
    int rc = nlisteners < 0;
    loop_watch(loop, signal_fd, LOOP_READ, on_signal, NULL);
    if (!rc && loop_run(loop) < 0) {
        log_errno("epoll_wait");
        rc = 1;
    }

    for (int i = 0; i < nlisteners; i++)
        listener_close(listeners[i]);
    for (int i = 0; i < nirc; i++)
        listener_close(irc_listeners[i]);
    hub_shutdown(hub);
    conn_shutdown();
    hub_free(hub);
    listener_done();
    irc_teardown();
    loop_free(loop);
    close(signal_fd);
    if (nlisteners >= 0)
        log_info("stopped");
    return rc;
}
