/* natterd.c - the chat server: options, listeners, signals, reloading,
 * privileges, service manager notifications, the main loop.
 *
 * One thread, one epoll loop. Connections (conn.c) read bytes through their
 * transport and offer them to their codec (codecs/line/), which turns them into
 * hub calls; the hub (hub.c) routes each event to the output queues of its
 * recipients. See docs/architecture.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/net.h"
#include "core/text.h"
#include "server/codecs/http/httpcodec.h"
#include "server/codecs/irc/irccodec.h"
#include "server/operauth.h"
#include "server/codecs/line/linecodec.h"
#include "server/conn.h"
#include "server/history.h"
#include "server/hub.h"
#include "server/listener.h"
#include "server/options.h"
#include "server/reload.h"
#include "server/transport/tls.h"

#define RESERVED_FDS 16 /* listeners, epoll, signalfd, stdio, the spare, logs, the history database */
#define TLS_DEFAULT_PORT 8889
#define IRC_TLS_DEFAULT_PORT 6697
#define HTTPS_DEFAULT_PORT 8443
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

/* ==== What runs, and reloading it ==== */

static struct {
    struct options o;          /* in force */
    struct hub *hub;
    /* plain, TLS, IRC, IRC/TLS, HTTP, HTTPS, WebSocket, WebSocket/TLS: each gets the limits of a reload */
    struct conn_profile *profiles[8];
    struct http_config http;   /* the HTTP codec's settings (--web-origin) */
    char *motd;                /* o.motd, sanitised */
} S;

static unsigned long long monotonic_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
}

/* Tell a service manager (systemd, Type=notify) how we are; nothing without one. */
static void notify(const char *state)
{
    if (getenv("NOTIFY_SOCKET"))
        sd_notify(0, state);
}

/* The MOTD as it may reach terminals: one line, valid UTF-8, no controls. */
static int make_motd(const char *text, char **out)
{
    *out = NULL;
    if (!text || !*text)
        return 0;
    size_t len = strlen(text);
    char *m = malloc(3 * len + 1);
    if (!m)
        return -1;
    text_sanitize(m, text, len);
    *out = m;
    return 0;
}

static void apply(const struct options *o)
{
    for (size_t i = 0; i < sizeof S.profiles / sizeof S.profiles[0]; i++) {
        if (!S.profiles[i])
            continue;
        options_conn_limits(o, &S.profiles[i]->lim); /* in place: existing connections too */
        S.profiles[i]->motd = S.motd;
        if (S.profiles[i]->codec == &http_codec) /* until it upgrades: --http-timeout in all */
            S.profiles[i]->lim.login_timeout = S.profiles[i]->lim.idle_timeout = (int)o->http_timeout;
    }
    S.http.origins = o->web_origin;
    struct hub_limits hl;
    options_hub_limits(o, &hl);
    hub_set_limits(S.hub, &hl);
    log_set_verbose(o->verbose);
}

/* A reload hook (reload.h): read the certificate and key again; new connections
 * get them, and a file that does not load leaves the one in use. */
static int reload_tls(const struct options *o, void *arg)
{
    (void)o;
    char msg[512];
    if (tls_reload(arg, msg, sizeof msg) < 0) {
        log_error("%s; keeping the certificate in use", msg);
        return -1;
    }
    log_info("TLS certificate reloaded: %s", tls_ctx_describe(arg, msg, sizeof msg));
    return 0;
}

static void note_change(const char *name, int live, void *arg)
{
    (void)arg;
    if (live)
        log_info("reload: --%s changed", name);
    else
        log_warn("reload: --%s changed: needs a restart (the running value stays)", name);
}

/* SIGHUP: read the file again and apply what can change while running. A file
 * that does not parse changes nothing. */
static void reload(void)
{
    char state[64], err[512];
    snprintf(state, sizeof state, "RELOADING=1\nMONOTONIC_USEC=%llu", monotonic_usec());
    notify(state);
    struct options next;
    char *motd = NULL;
    int live = -1;
    if (options_load(&next, err, sizeof err) < 0) {
        log_error("reload: %s; the running configuration stays", err);
        notify("READY=1");
        return;
    }
    if ((live = options_changes(&S.o, &next, note_change, NULL)) < 0 || make_motd(next.motd, &motd) < 0) {
        log_error("reload: out of memory; the running configuration stays");
        options_free(&next);
        notify("READY=1");
        return;
    }
    free(S.motd);
    S.motd = motd;
    options_free(&S.o);
    S.o = next;
    apply(&S.o);
    int failed = reload_run(&S.o);
    log_info("reloaded %s: %d live change%s%s", S.o.config ? S.o.config : "(no configuration file)", live,
             live == 1 ? "" : "s", failed ? ", some parts failed (see above)" : "");
    notify("READY=1");
}

/* ==== Signals ==== */

static void on_signal(struct loop *l, int fd, int mask, void *data)
{
    (void)mask, (void)data;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            log_info("SIGHUP received, reloading");
            reload();
            continue;
        }
        log_info("%s received, shutting down", strsignal((int)si.ssi_signo));
        loop_stop(l); /* main says STOPPING=1 as soon as the loop returns */
    }
}

/* Blocked from the very start, so a SIGHUP or SIGTERM during startup waits for
 * the loop instead of killing the process. */
static int block_signals(sigset_t *set)
{
    signal(SIGPIPE, SIG_IGN); /* a write to a closed socket is an error return, not death */
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    return sigprocmask(SIG_BLOCK, set, NULL);
}

/* ==== Privileges ==== */

/* --user: become that user once the listeners are open (ports below 1024 need
 * root or CAP_NET_BIND_SERVICE only for bind). Every step is checked, and the
 * result too: a server that meant to drop root must not go on as root. */
static int drop_privileges(const char *name)
{
    errno = 0;
    struct passwd *pw = getpwnam(name);
    if (!pw) {
        if (errno)
            log_errno("--user %s", name);
        else
            log_error("--user %s: no such user", name);
        return -1;
    }
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    if (geteuid() != 0) {
        if (uid == geteuid() && uid == getuid())
            return 0; /* already that user */
        log_error("--user %s: only root can switch users (running as uid %u)", name, (unsigned)geteuid());
        return -1;
    }
    if (uid == 0) {
        log_error("--user %s: that is root; name an unprivileged user", name);
        return -1;
    }
    if (setgroups(1, &gid) < 0) {
        log_errno("--user %s: setgroups", name);
        return -1;
    }
    if (setgid(gid) < 0) {
        log_errno("--user %s: setgid %u", name, (unsigned)gid);
        return -1;
    }
    if (setuid(uid) < 0) {
        log_errno("--user %s: setuid %u", name, (unsigned)uid);
        return -1;
    }
    if (setuid(0) == 0 || geteuid() == 0 || getuid() == 0 || getegid() != gid) {
        log_error("--user %s: still privileged after dropping root", name);
        return -1;
    }
    log_info("running as %s (uid %u, gid %u)", name, (unsigned)uid, (unsigned)gid);
    return 0;
}

static int write_pid_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        log_errno("--pid-file %s", path);
        return -1;
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    int rc = write(fd, buf, (size_t)n) == n ? 0 : -1;
    if (rc < 0)
        log_errno("--pid-file %s: write", path);
    close(fd);
    return rc;
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
 * connections of profile p: a name stands for all its addresses ("localhost":
 * ::1 and 127.0.0.1), and with port 0 the first listener's free port is used for
 * the others too. Writes where into ready (the ready line's list). Returns the
 * number opened (at out), or -1. */
static int open_listeners(const struct options *o, int port, const struct conn_profile *plain,
                          struct listener **out, char ready[1024])
{
    int keepalive = (int)o->keepalive, n = 0;
    size_t len = 0;
    ready[0] = '\0';
    for (int b = 0; b < (o->nbind ? o->nbind : 1); b++) {
        char addrs[OPT_MAX_BINDS][NET_ADDR_LEN], err[NET_ERR_LEN];
        int na = 1;
        const char *name = o->nbind ? o->bind[b] : NULL;
        if (name && *name && (na = net_resolve_passive(name, addrs, OPT_MAX_BINDS, err)) < 0) {
            log_error("--bind %s: %s", name, err);
            goto fail;
        }
        for (int k = 0; k < na; k++) {
            const char *host = name && *name ? addrs[k] : NULL;
            if (n == OPT_MAX_BINDS) {
                log_error("--bind: more than %d addresses in all", OPT_MAX_BINDS);
                goto fail;
            }
            int dup = 0;
            for (int i = 0; host && i < n; i++)
                dup |= listener_host_is(out[i], host);
            if (dup)
                continue;
            out[n] = listener_open(host, port, plain, keepalive, err);
            if (!out[n]) {
                log_error("%s", err);
                goto fail;
            }
            if (port == 0)
                port = listener_port(out[n]);
            len += (size_t)snprintf(ready + len, 1024 - len, "%s%s", n ? ", " : "", listener_addr(out[n]));
            if (len >= 1024)
                len = 1024 - 1;
            n++;
        }
    }
    return n;
fail:
    while (n-- > 0)
        listener_close(out[n]);
    return -1;
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

/* Open the listeners of one more profile after the n already at out (where:
 * their addresses, for the line that says so); on failure close them all.
 * Returns the new count, or -1. */
static int more_listeners(const struct options *o, int port, const struct conn_profile *p, struct listener **out,
                          int n, char where[1024])
{
    int k = open_listeners(o, port, p, out + n, where);
    if (k >= 0)
        return n + k;
    while (n-- > 0)
        listener_close(out[n]);
    return -1;
}

/* A reload hook (reload.h): read the --irc-motd file again; one that cannot be
 * read leaves the MOTD in use. */
static int reload_irc_motd(const struct options *o, void *arg)
{
    (void)arg;
    if (irc_reload_motd(o->irc_motd) < 0) {
        log_errno("--irc-motd %s; keeping the MOTD in use", o->irc_motd);
        return -1;
    }
    return 0;
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
    if (irc_setup(name, o->network, o->irc_password, o->irc_motd) < 0) {
        log_errno("--irc-motd %s", o->irc_motd ? o->irc_motd : "(none)");
        return -1;
    }
    if (reload_add(reload_irc_motd, NULL) < 0) {
        log_errno("startup");
        return -1;
    }
    line_hand_irc_to(&irc_codec);
    return 0;
}

int main(int argc, char **argv)
{
    sigset_t sigs;
    int sig_ok = block_signals(&sigs) == 0;
    argv[0] = (char *)"natterd"; /* getopt's messages name the program, not its path */
    options_parse_argv(argc, argv);
    char err[512];
    if (options_load(&S.o, err, sizeof err) < 0) {
        fprintf(stderr, "natterd: %s\n", err);
        options_forget_argv();
        return 2;
    }
    struct options *o = &S.o;
    if (o->hash_password) {
        options_free(&S.o);
        options_forget_argv();
        return oper_hash_password(stdin, stdout);
    }
    if (o->check) {
        printf("natterd: configuration %s%s is good\n", o->config ? "from " : "(no file)", o->config ? o->config : "");
        options_free(&S.o);
        options_forget_argv();
        return 0;
    }
    log_init("natterd", o->verbose);
    log_syslog(o->syslog);
    seed_hash();
    char oper_err[256];
    if (oper_configure(o->oper, o->noper, oper_err, sizeof oper_err) < 0) {
        log_info("%s", oper_err);
        return 1;
    }
    if (o->config)
        log_info("configuration from %s", o->config);
    /* The certificate first: a bad one stops natterd before it listens anywhere. */
    struct tls_ctx *tls = NULL;
    if (o->tls_cert) {
        if (!(tls = tls_ctx_new(o->tls_cert, o->tls_key, err, sizeof err))) {
            log_error("%s", err);
            return 1;
        }
        log_info("TLS certificate %s", tls_ctx_describe(tls, err, sizeof err));
        if (reload_add(reload_tls, tls) < 0) {
            log_errno("startup");
            return 1;
        }
    }

    long fds = raise_fd_limit((long)o->max_clients);
    long max_clients = fds - RESERVED_FDS;
    if (o->max_clients > max_clients)
        log_warn("--max-clients %lld is more than %ld descriptors allow: expect 'server full' sooner",
                 o->max_clients, fds);
    if (o->max_clients > 0)
        max_clients = (long)o->max_clients;
    if (max_clients < 1) {
        log_error("descriptor limit %ld is too low to serve anyone", fds);
        return 1;
    }

    int signal_fd = sig_ok ? signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC) : -1;
    struct loop *loop = loop_new((int)fds);
    struct hub_limits hub_lim;
    options_hub_limits(o, &hub_lim);
    S.hub = hub_new(&hub_lim);
    struct conn_profile plain = {.name = "plain", .codec = &line_codec, .hub = S.hub};
    if (signal_fd < 0 || !loop || !S.hub || conn_init(loop, (int)fds) < 0 || listener_init(loop, max_clients) < 0 ||
        make_motd(o->motd, &S.motd) < 0) {
        log_errno("startup");
        return 1;
    }
    struct history *history = NULL;
    if (o->history > 0) {
        char path[4200], herr[1024];
        struct history_config hc = {
            .path = db_path(o, path, sizeof path),
            .replay = (unsigned)o->history,
            .max_per_room = o->history_max,
            .days = o->history_days,
            .private_msgs = o->history_private,
        };
        if (!(history = history_open(loop, &hc, herr, sizeof herr))) {
            log_error("%s", herr);
            tls_ctx_free(tls);
            conn_shutdown();
            hub_free(S.hub);
            listener_done();
            loop_free(loop);
            close(signal_fd);
            reload_clear();
            free(S.motd);
            options_free(&S.o);
            options_forget_argv();
            return EXIT_HISTORY;
        }
        hub_set_recorder(S.hub, history_record, history);
        log_info("history in %s (replay %u on join%s)", hc.path, hc.replay,
                 hc.private_msgs ? ", private messages too" : "");
    }
    if (oper_start(loop, oper_err, sizeof oper_err) < 0) {
        log_info("%s", oper_err); /* out of memory or threads: nothing worth freeing now */
        return 1;
    }
    if (o->noper)
        log_info("%d server operator%s", o->noper, o->noper == 1 ? "" : "s");
    conn_on_turn(hub_turn, S.hub);
    hub_tick(S.hub, loop_now_ms());
    loop_add_timer(loop, 1000, on_hub_tick, S.hub);
    plain.history = history;
    struct conn_profile irc = {.name = "irc", .codec = &irc_codec, .hub = S.hub, .history = history};
    S.profiles[0] = &plain;
    S.profiles[2] = &irc;
    apply(o);
    /* (copies of plain and irc with the limits apply set; then reloads reach them too) */
    struct conn_profile plain_tls = tls_profile(&plain, "tls", tls);
    struct conn_profile irc_tls = tls_profile(&irc, "irc-tls", tls);
    S.profiles[1] = tls ? &plain_tls : NULL;
    S.profiles[3] = tls ? &irc_tls : NULL;
    /* HTTP: the page and /ws; an upgraded connection is served on the IRC terms. */
    struct conn_profile http = {.name = "http", .codec = &http_codec, .hub = S.hub, .history = history};
    struct conn_profile ws = irc, wss = irc_tls;
    ws.name = "ws";
    wss.name = "wss";
    struct conn_profile https = tls_profile(&http, "https", tls);
    S.profiles[4] = !o->no_web ? &http : NULL;
    S.profiles[5] = !o->no_web && tls ? &https : NULL;
    S.profiles[6] = &ws;
    S.profiles[7] = &wss;
    S.http = (struct http_config){.codec = &irc_codec, .ws = &ws, .wss = &wss};
    http_setup(&S.http);
    apply(o);
    /* Each open_listeners call adds up to OPT_MAX_BINDS: plain, TLS, IRC, IRC over TLS, HTTP, HTTPS. */
    struct listener *listeners[6 * OPT_MAX_BINDS];
    char ready[1024] = "", ready_tls[1024] = "", ready_irc[1024] = "", ready_irc_tls[1024] = "";
    char ready_http[1024] = "", ready_https[1024] = "";
    /* The plain listeners last: their line says natterd is ready, with every
     * other listener already open. */
    int nlisteners = setup_irc(o) < 0 ? -1 : 0;
    if (nlisteners >= 0 && tls)
        nlisteners = more_listeners(o, o->tls_port >= 0 ? (int)o->tls_port : TLS_DEFAULT_PORT, &plain_tls, listeners,
                                    nlisteners, ready_tls);
    if (nlisteners >= 0 && !o->no_irc)
        nlisteners = more_listeners(o, (int)o->irc_port, &irc, listeners, nlisteners, ready_irc);
    if (nlisteners >= 0 && !o->no_irc && tls) {
        int first = nlisteners;
        nlisteners = more_listeners(o, o->irc_tls_port >= 0 ? (int)o->irc_tls_port : IRC_TLS_DEFAULT_PORT, &irc_tls,
                                    listeners, nlisteners, ready_irc_tls);
        if (nlisteners > first) /* IRCv3 sts points plain IRC clients at the port it got */
            irc_set_sts(atoi(strrchr(listener_addr(listeners[first]), ':') + 1), (long)o->sts_duration);
    }
    if (nlisteners >= 0 && !o->no_web)
        nlisteners = more_listeners(o, (int)o->http_port, &http, listeners, nlisteners, ready_http);
    if (nlisteners >= 0 && !o->no_web && tls)
        nlisteners = more_listeners(o, o->https_port >= 0 ? (int)o->https_port : HTTPS_DEFAULT_PORT, &https,
                                    listeners, nlisteners, ready_https);
    if (nlisteners >= 0)
        nlisteners = more_listeners(o, (int)o->port, &plain, listeners, nlisteners, ready);
    int rc = nlisteners < 0;
    int pid_written = 0;
    if (!rc && o->pid_file) {
        rc = write_pid_file(o->pid_file) < 0;
        pid_written = !rc;
    }
    if (!rc && o->user)
        rc = drop_privileges(o->user) < 0; /* never go on as root when asked not to */
    else if (!rc && geteuid() == 0)
        log_warn("running as root: --user NAME (or systemd's User=) drops it once the ports are open");
    loop_watch(loop, signal_fd, LOOP_READ, on_signal, NULL);
    if (!rc) {
        /* The ready line, once everything (pid file, privileges) is done. */
        if (*ready_tls)
            log_info("listening for TLS on %s", ready_tls);
        if (*ready_irc)
            log_info("listening for IRC on %s", ready_irc);
        if (*ready_irc_tls)
            log_info("listening for IRC/TLS on %s", ready_irc_tls);
        if (*ready_http)
            log_info("listening for HTTP on %s", ready_http);
        if (*ready_https)
            log_info("listening for HTTPS on %s", ready_https);
        log_info("listening on %s (max %ld clients)", ready, max_clients);
        notify("READY=1\nSTATUS=serving");
        if (loop_run(loop) < 0) {
            log_errno("epoll_wait");
            rc = 1;
        }
    }
    notify("STOPPING=1");

    for (int i = 0; i < nlisteners; i++)
        listener_close(listeners[i]);
    hub_shutdown(S.hub);
    conn_shutdown();
    history_close(history); /* after the connections: what they said is all queued */
    oper_teardown();
    tls_ctx_free(tls);
    hub_free(S.hub);
    listener_done();
    irc_teardown();
    loop_free(loop);
    close(signal_fd);
    reload_clear();
    if (pid_written && unlink(o->pid_file) < 0)
        log_errno("--pid-file %s: cannot remove it", o->pid_file);
    if (nlisteners >= 0)
        log_info("stopped");
    free(S.motd);
    options_free(&S.o);
    options_forget_argv();
    log_syslog(0);
    return rc;
}
