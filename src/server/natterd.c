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
#include "server/operauth.h"
#include "server/codecs/line/linecodec.h"
#include "server/conn.h"
#include "server/history.h"
#include "server/hub.h"
#include "server/listener.h"
#include "server/options.h"
#include "server/transport/tls.h"

#define RESERVED_FDS 16 /* listeners, epoll, signalfd, stdio, the spare, logs, the history database */
#define TLS_DEFAULT_PORT 8889
#define IRC_TLS_DEFAULT_PORT 6697
#define EXIT_HISTORY 3  /* the history database cannot be used */

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

/* SIGHUP: read the certificates again (new connections get them; a file that
 * does not load is logged and the old one kept). The general reload of the
 * configuration calls tls_reload the same way. */
static void reload_tls(struct tls_ctx *tls)
{
    char msg[512];
    if (!tls) {
        log_info("SIGHUP received: no TLS certificate to reload");
    } else if (tls_reload(tls, msg, sizeof msg) < 0) {
        log_info("SIGHUP received: %s; keeping the certificate in use", msg);
    } else {
        log_info("SIGHUP received: TLS certificate reloaded: %s", tls_ctx_describe(tls, msg, sizeof msg));
    }
}

static void on_signal(struct loop *l, int fd, int mask, void *data)
{
    (void)mask;
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof si) != (ssize_t)sizeof si)
        return;
    if (si.ssi_signo == SIGHUP) {
        reload_tls(data);
        return;
    }
    log_info("%s received, shutting down", strsignal((int)si.ssi_signo));
    loop_stop(l);
}

static int setup_signals(void)
{
    signal(SIGPIPE, SIG_IGN); /* a write to a closed socket is an error return, not death */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -1;
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* ==== The hub's clock ==== */

static void hub_turn(void *hub)
{
    hub_turn_end(hub);
}

/* Once a second: the hub sends the summaries of notice storms whose window ended. */
static void on_hub_tick(struct loop *l, void *hub)
{
    hub_tick(hub, loop_now_ms());
    loop_add_timer(l, 1000, on_hub_tick, hub);
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

/* ==== History ==== */

/* --db, or natter.db in systemd's $STATE_DIRECTORY (StateDirectory=natter:
 * /var/lib/natter), or in the current directory. */
static const char *db_path(const struct options *o, char *buf, size_t len)
{
    if (o->db)
        return o->db;
    const char *dir = getenv("STATE_DIRECTORY");
    if (dir && *dir) {
        char first[4096];
        snprintf(first, sizeof first, "%s", dir);
        first[strcspn(first, ":")] = '\0'; /* several directories: the first */
        snprintf(buf, len, "%s/natter.db", first);
        return buf;
    }
    return "natter.db";
}

/* Open a listener on each --bind address (or every address) at port for the
 * connections of profile p, and say where ("listening on ADDR, ..." then
 * `tail`). Returns the number opened (at out), or -1. */
static int open_listeners(const struct options *o, int port, const struct conn_profile *p, const char *what,
                          const char *tail, struct listener **out)
{
    int n = o->nbind ? o->nbind : 1;
    char ready[1024] = "";
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        char err[NET_ERR_LEN];
        out[i] = listener_open(o->nbind ? o->bind[i] : NULL, port, p, (int)o->keepalive, err);
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
    log_info("%s %s%s", what, ready, tail);
    return n;
}

/* A TLS profile: the same terms as plain (its codec, limits and hub) over
 * TLS. The IRC listeners get theirs the same way (--irc-tls-port: the IRC
 * profile through this, then open_listeners). */
static struct conn_profile tls_profile(const struct conn_profile *plain, const char *name, struct tls_ctx *tls)
{
    struct conn_profile p = *plain;
    p.name = name;
    p.wrap = tls_wrap;
    p.wrap_arg = tls;
    return p;
}

/* Open the listeners of one more profile after the n already at out; on
 * failure close them all. Returns the new count, or -1. */
static int more_listeners(const struct options *o, int port, const struct conn_profile *p, const char *what,
                          const char *tail, struct listener **out, int n)
{
    int k = open_listeners(o, port, p, what, tail, out + n);
    if (k >= 0)
        return n + k;
    while (n-- > 0)
        listener_close(out[n]);
    return -1;
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
    if (o.hash_password)
        return oper_hash_password(stdin, stdout);
    log_init("natterd", o.verbose);
    seed_hash();
    char oper_err[256];
    if (oper_configure(o.oper, o.noper, oper_err, sizeof oper_err) < 0) {
        log_info("%s", oper_err);
        return 1;
    }
    /* The certificate first: a bad one stops natterd before it listens anywhere. */
    struct tls_ctx *tls = NULL;
    if (o.tls_cert) {
        char err[512];
        if (!(tls = tls_ctx_new(o.tls_cert, o.tls_key, err, sizeof err))) {
            log_info("%s", err);
            return 1;
        }
        log_info("TLS certificate %s", tls_ctx_describe(tls, err, sizeof err));
    }

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
    struct history *history = NULL;
    if (o.history > 0) {
        char path[4200], err[1024];
        struct history_config hc = {
            .path = db_path(&o, path, sizeof path),
            .replay = (unsigned)o.history,
            .max_per_room = o.history_max,
            .days = o.history_days,
            .private_msgs = o.history_private,
        };
        if (!(history = history_open(loop, &hc, err, sizeof err))) {
            log_info("%s", err);
            tls_ctx_free(tls);
            conn_shutdown();
            hub_free(hub);
            listener_done();
            loop_free(loop);
            close(signal_fd);
            return EXIT_HISTORY;
        }
        hub_set_recorder(hub, history_record, history);
        log_info("history in %s (replay %u on join%s)", hc.path, hc.replay,
                 hc.private_msgs ? ", private messages too" : "");
    }
    if (oper_start(loop, oper_err, sizeof oper_err) < 0) {
        log_info("%s", oper_err); /* out of memory or threads: nothing worth freeing now */
        return 1;
    }
    if (o.noper)
        log_info("%d server operator%s", o.noper, o.noper == 1 ? "" : "s");
    conn_on_turn(hub_turn, hub);
    hub_tick(hub, loop_now_ms());
    loop_add_timer(loop, 1000, on_hub_tick, hub);
    struct conn_profile plain = {.name = "plain", .codec = &line_codec, .hub = hub, .history = history};
    options_conn_limits(&o, &plain.lim);
    struct conn_profile irc = {.name = "irc", .codec = &irc_codec, .hub = hub, .history = history};
    options_conn_limits(&o, &irc.lim);
    struct conn_profile plain_tls = tls_profile(&plain, "tls", tls);
    struct conn_profile irc_tls = tls_profile(&irc, "irc-tls", tls);
    /* Each open_listeners call adds up to OPT_MAX_BINDS: plain, TLS, IRC, IRC over TLS. */
    struct listener *listeners[4 * OPT_MAX_BINDS];
    char tail[64];
    snprintf(tail, sizeof tail, " (max %ld clients)", max_clients);
    /* The plain listeners last: their line says natterd is ready, with every
     * other listener already open and logged. */
    int nlisteners = setup_irc(&o) < 0 ? -1 : 0;
    if (nlisteners >= 0 && tls)
        nlisteners = more_listeners(&o, o.tls_port >= 0 ? (int)o.tls_port : TLS_DEFAULT_PORT, &plain_tls,
                                    "listening for TLS on", "", listeners, nlisteners);
    if (nlisteners >= 0 && !o.no_irc)
        nlisteners = more_listeners(&o, (int)o.irc_port, &irc, "listening for IRC on", "", listeners, nlisteners);
    if (nlisteners >= 0 && !o.no_irc && tls) {
        int first = nlisteners;
        nlisteners = more_listeners(&o, o.irc_tls_port >= 0 ? (int)o.irc_tls_port : IRC_TLS_DEFAULT_PORT, &irc_tls,
                                    "listening for IRC/TLS on", "", listeners, nlisteners);
        if (nlisteners > first) /* IRCv3 sts points plain IRC clients at the port it got */
            irc_set_sts(atoi(strrchr(listener_addr(listeners[first]), ':') + 1), (long)o.sts_duration);
    }
    if (nlisteners >= 0)
        nlisteners = more_listeners(&o, (int)o.port, &plain, "listening on", tail, listeners, nlisteners);
    int rc = nlisteners < 0;
    loop_watch(loop, signal_fd, LOOP_READ, on_signal, tls);
    if (!rc && loop_run(loop) < 0) {
        log_errno("epoll_wait");
        rc = 1;
    }

    for (int i = 0; i < nlisteners; i++)
        listener_close(listeners[i]);
    hub_shutdown(hub);
    conn_shutdown();
    history_close(history); /* after the connections: what they said is all queued */
    oper_teardown();
    tls_ctx_free(tls);
    hub_free(hub);
    listener_done();
    irc_teardown();
    loop_free(loop);
    close(signal_fd);
    if (nlisteners >= 0)
        log_info("stopped");
    return rc;
}
