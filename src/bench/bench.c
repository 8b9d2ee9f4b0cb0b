/* bench.c - natter-bench: a load generator for natterd's plain protocol.
 *
 * The parent process parses the options, forks --procs workers (bench_worker.c) and
 * conducts the run through a shared mapping: it waits until every connection is set
 * up (a barrier across all processes), optionally holds them idle, starts the
 * senders, stops them, waits for the receivers to drain, then adds up the results
 * and reports. It also samples the server's CPU time and RSS from /proc when given
 * its pid. The parent itself holds no connection.
 */
#include "bench/bench_shared.h"
#include "bench/bench_worker.h"
#include "core/num.h"
#include "core/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef NATTER_VERSION
#define NATTER_VERSION "dev"
#endif

static const char usage_text[] =
    "usage: natter-bench [options]\n"
    "Load generator for natterd's plain protocol: N clients in R rooms, S senders per room;\n"
    "every receiver checks it got every message exactly once and in order, and times it.\n"
    "\n"
    "  -H, --host HOST          server address (default 127.0.0.1)\n"
    "  -p, --port PORT          server port (default 8888; 8889 with --tls)\n"
    "      --tls                TLS to every connection (the certificate is not checked)\n"
    "  -c, --clients N          connections to open (default 100)\n"
    "  -r, --rooms R            rooms #r0..#rR-1 of N/R clients each; 1 = everyone in #lobby (default 1)\n"
    "  -s, --senders S          senders per room, the first S members (default: all; 0 = nobody)\n"
    "  -w, --window W           a sender has at most W messages not yet received (default 16)\n"
    "      --rate MSGS          offer MSGS messages/s in total from a separate sending thread,\n"
    "                           instead of the window\n"
    "  -d, --duration SECS      send for SECS seconds (default 5; with --messages: the longest)\n"
    "  -m, --messages N         each sender sends N messages\n"
    "      --size BYTES         pad each message's text to BYTES (default: unpadded, ~30)\n"
    "      --idle SECS          hold every connection idle for SECS first; report survivors and\n"
    "                           the server's RSS per connection (needs --server-pid)\n"
    "      --drain SECS         after the last send, wait at most SECS for messages (default 10)\n"
    "      --setup-timeout SECS give up if the connections are not all set up by then (default 120)\n"
    "      --source-ips LIST    connect from these addresses, round-robin: A,B,... or A-B\n"
    "                           (e.g. 127.0.0.1-127.0.0.8), each good for ~28k connections\n"
    "      --procs K            worker processes (default: 1, or as many as the open-files\n"
    "                           limit needs)\n"
    "      --threads T          receiving threads per process (default 1)\n"
    "      --connect-batch N    connections being set up at once per thread (default 256)\n"
    "      --prefix P           nickname prefix of the senders (default b: b0, b1, ...)\n"
    "      --irc                every client registers and speaks IRC (NICK, USER, JOIN, PRIVMSG)\n"
    "      --irc-every K        every K-th client speaks IRC, the others the plain protocol (mixed rooms)\n"
    "      --irc-port PORT      where the IRC clients connect (default: --port, which hands them over)\n"
    "      --ws                 the IRC clients (all of them without --irc-every) go over WebSocket to\n"
    "                           /ws on --irc-port, natterd's HTTP port: masked frames, one line each\n"
    "      --server-pid PID     report the server's CPU time per delivered message and its RSS\n"
    "      --expect-refused K   exactly K connections must be refused with\n"
    "                           \"!! server full\" (default 0)\n"
    "      --json               print the report as one JSON object\n"
    "  -v, --verbose            progress on stderr\n"
    "  -h, --help               this help\n"
    "  -V, --version\n"
    "\n"
    "Exit status: 0 all held and nothing lost, duplicated, reordered or corrupted;\n"
    "1 the run found a problem; 2 bad usage or the run could not be made.\n";

/* ==== Options ==== */

static void die_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "natter-bench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(natter-bench --help lists the options)\n");
    exit(2);
}

/* The rules of natterd's options (core/num.h): figures only, in range, and the
 * range said in plain figures. */
static long long parse_whole(const char *opt, const char *s, long long min, long long max)
{
    long long v;
    if (num_whole(s, min, max, &v) < 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s: '%%s' is not a whole number from %lld to %lld", opt, min, max);
        die_usage(msg, s);
    }
    return v;
}

/* Seconds and rates may have a fraction: "0.5". */
static double parse_decimal(const char *opt, const char *s, double min, double max)
{
    double v;
    if (num_decimal(s, min, max, &v) < 0) {
        char msg[200], a[40], b[40];
        snprintf(msg, sizeof msg, "%s: '%%s' is not a number from %s to %s", opt, num_plain(min, a),
                 num_plain(max, b));
        die_usage(msg, s);
    }
    return v;
}

static int add_source(struct bench_cfg *c, const char *a)
{
    struct sockaddr_in *in = (struct sockaddr_in *)&c->src[c->nsrc];
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&c->src[c->nsrc];
    if (c->nsrc >= BENCH_MAX_SRC)
        return -1;
    memset(&c->src[c->nsrc], 0, sizeof c->src[0]);
    if (inet_pton(AF_INET, a, &in->sin_addr) == 1)
        in->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, a, &in6->sin6_addr) == 1)
        in6->sin6_family = AF_INET6;
    else
        return -1;
    c->nsrc++;
    return 0;
}

/* "A,B,C" and IPv4 ranges "127.0.0.1-127.0.0.8". */
static void parse_sources(struct bench_cfg *c, const char *list)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *dash = strchr(item, '-');
        if (!dash) {
            if (add_source(c, item) < 0)
                die_usage("--source-ips: bad address or too many (max 64): %s", item);
            continue;
        }
        *dash = '\0';
        struct in_addr a, b;
        if (inet_pton(AF_INET, item, &a) != 1 || inet_pton(AF_INET, dash + 1, &b) != 1 ||
            ntohl(b.s_addr) < ntohl(a.s_addr))
            die_usage("--source-ips: bad IPv4 range starting at %s", item);
        for (uint32_t h = ntohl(a.s_addr); h <= ntohl(b.s_addr); h++) {
            char s[INET_ADDRSTRLEN];
            struct in_addr x = {.s_addr = htonl(h)};
            inet_ntop(AF_INET, &x, s, sizeof s);
            if (add_source(c, s) < 0)
                die_usage("--source-ips: too many addresses (max 64) in %s", list);
        }
    }
}

static void resolve(const char *host, const char *port, struct sockaddr_storage *addr, socklen_t *len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "natter-bench: resolve %s:%s: %s\n", host, port, gai_strerror(rc));
        exit(2);
    }
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
}

static void resolve_server(struct bench_cfg *c)
{
    resolve(c->host, c->port, &c->addr, &c->addrlen);
    if (!c->irc_port[0])
        snprintf(c->irc_port, sizeof c->irc_port, "%s", c->port);
    resolve(c->host, c->irc_port, &c->irc_addr, &c->irc_addrlen);
}

enum { O_RATE = 256, O_SIZE, O_IDLE, O_DRAIN, O_SETUP, O_SRC, O_PROCS, O_THREADS, O_BATCH,
       O_PREFIX, O_PID, O_REFUSED, O_JSON, O_IRC, O_IRC_EVERY, O_IRC_PORT, O_TLS, O_WS };

static const struct option long_opts[] = {
    {"host", required_argument, 0, 'H'},        {"port", required_argument, 0, 'p'},
    {"clients", required_argument, 0, 'c'},     {"rooms", required_argument, 0, 'r'},
    {"senders", required_argument, 0, 's'},     {"window", required_argument, 0, 'w'},
    {"rate", required_argument, 0, O_RATE},     {"duration", required_argument, 0, 'd'},
    {"messages", required_argument, 0, 'm'},    {"size", required_argument, 0, O_SIZE},
    {"idle", required_argument, 0, O_IDLE},     {"drain", required_argument, 0, O_DRAIN},
    {"setup-timeout", required_argument, 0, O_SETUP}, {"source-ips", required_argument, 0, O_SRC},
    {"procs", required_argument, 0, O_PROCS},   {"threads", required_argument, 0, O_THREADS},
    {"connect-batch", required_argument, 0, O_BATCH}, {"prefix", required_argument, 0, O_PREFIX},
    {"server-pid", required_argument, 0, O_PID}, {"expect-refused", required_argument, 0, O_REFUSED},
    {"irc", no_argument, 0, O_IRC},             {"irc-every", required_argument, 0, O_IRC_EVERY},
    {"irc-port", required_argument, 0, O_IRC_PORT},
    {"json", no_argument, 0, O_JSON},           {"verbose", no_argument, 0, 'v'},
    {"tls", no_argument, 0, O_TLS},             {"ws", no_argument, 0, O_WS},
    {"help", no_argument, 0, 'h'},              {"version", no_argument, 0, 'V'},
    {0, 0, 0, 0}};

static void parse_options(struct bench_cfg *c, int argc, char **argv)
{
    long senders = -1;
    int duration_given = 0, port_given = 0, opt;
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    snprintf(c->port, sizeof c->port, "8888");
    snprintf(c->prefix, sizeof c->prefix, "b");
    c->clients = 100, c->rooms = 1, c->window = 16, c->duration = 5, c->drain = 10;
    c->setup_timeout = 120, c->threads = 1, c->connect_batch = 256;
    while ((opt = getopt_long(argc, argv, "H:p:c:r:s:w:d:m:vhV", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'H': snprintf(c->host, sizeof c->host, "%s", optarg); break;
        case 'p':
            snprintf(c->port, sizeof c->port, "%d", (int)parse_whole("--port", optarg, 1, 65535));
            port_given = 1;
            break;
        case O_TLS: c->tls = 1; break;
        case O_WS: c->ws = 1; break;
        case 'c': c->clients = (uint32_t)parse_whole("--clients", optarg, 1, 10000000); break;
        case 'r': c->rooms = (uint32_t)parse_whole("--rooms", optarg, 1, 10000000); break;
        case 's': senders = (long)parse_whole("--senders", optarg, 0, 10000000); break;
        case 'w': c->window = (uint32_t)parse_whole("--window", optarg, 1, 65536); break;
        case O_RATE: c->rate = parse_decimal("--rate", optarg, 0.001, 1e9); break;
        case 'd': c->duration = parse_decimal("--duration", optarg, 0.001, 86400); duration_given = 1; break;
        case 'm': c->messages = (uint64_t)parse_whole("--messages", optarg, 1, 1000000000000000LL); break;
        case O_SIZE: c->size = (uint32_t)parse_whole("--size", optarg, 0, 4000); break;
        case O_IDLE: c->idle = parse_decimal("--idle", optarg, 0, 86400); break;
        case O_DRAIN: c->drain = parse_decimal("--drain", optarg, 0, 86400); break;
        case O_SETUP: c->setup_timeout = parse_decimal("--setup-timeout", optarg, 0.1, 86400); break;
        case O_SRC: parse_sources(c, optarg); break;
        case O_PROCS: c->procs = (uint32_t)parse_whole("--procs", optarg, 1, 256); break;
        case O_THREADS: c->threads = (uint32_t)parse_whole("--threads", optarg, 1, 256); break;
        case O_BATCH: c->connect_batch = (uint32_t)parse_whole("--connect-batch", optarg, 1, 1000000); break;
        case O_PREFIX:
            if (!*optarg || strlen(optarg) > 8 || strpbrk(optarg, " <>*,0123456789") || strchr("#/*-!<>", optarg[0]))
                die_usage("--prefix: 1 to 8 name characters, no digits: %s", optarg);
            snprintf(c->prefix, sizeof c->prefix, "%s", optarg);
            break;
        case O_PID: c->server_pid = (int)parse_whole("--server-pid", optarg, 1, 1LL << 30); break;
        case O_REFUSED: c->expect_refused = (long)parse_whole("--expect-refused", optarg, 0, 10000000); break;
        case O_JSON: c->json = 1; break;
        case O_IRC: c->irc_every = 1; break;
        case O_IRC_EVERY: c->irc_every = (uint32_t)parse_whole("--irc-every", optarg, 1, 10000000); break;
        case O_IRC_PORT:
            snprintf(c->irc_port, sizeof c->irc_port, "%d", (int)parse_whole("--irc-port", optarg, 1, 65535));
            break;
        case 'v': c->verbose = 1; break;
        case 'h': fputs(usage_text, stdout); exit(0);
        case 'V': printf("natter-bench %s\n", NATTER_VERSION); exit(0);
        default: fputs(usage_text, stderr); exit(2);
        }
    }
    if (optind < argc)
        die_usage("unexpected argument: %s", argv[optind]);
    if (c->clients % c->rooms != 0)
        die_usage("--clients must be a multiple of --rooms (%s)", "every room gets the same number");
    c->room_size = c->clients / c->rooms;
    c->senders = senders < 0 ? c->room_size : (uint32_t)senders;
    if (c->senders > c->room_size)
        die_usage("--senders is per room and cannot exceed the room size (%s)", "clients / rooms");
    if (c->tls && !port_given)
        snprintf(c->port, sizeof c->port, "8889");
    if (c->ws && !c->irc_every)
        c->irc_every = 1; /* WebSocket carries IRC */
    if (c->ws && !c->irc_port[0])
        die_usage("--ws needs --irc-port (%s)", "natterd's HTTP port, --http-port");
    if (c->tls && c->irc_every)
        die_usage("--tls does not go with --irc (%s)", "the bench's IRC clients speak plain TCP only");
    if (c->tls && c->rate > 0)
        die_usage("--tls does not go with --rate (%s)", "a TLS connection cannot be written by one thread while another reads it");
    if (c->messages && !duration_given)
        c->duration = 60; /* with --messages, the duration is only a bound */
    resolve_server(c);
}

/* ==== Open files and processes ==== */

static rlim_t raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

/* Enough processes that each one's connections fit its open-files limit. */
static void choose_procs(struct bench_cfg *c, rlim_t nofile)
{
    const uint32_t spare = 64; /* epoll, stdio, pipes */
    uint32_t per = nofile > spare * 2 ? (uint32_t)(nofile - spare) : spare;
    uint32_t need = (c->clients + per - 1) / per;
    if (!c->procs)
        c->procs = need ? need : 1;
    else if (c->procs < need)
        fprintf(stderr, "natter-bench: warning: %u processes of %llu open files cannot hold %u connections\n",
                c->procs, (unsigned long long)nofile, c->clients);
    if (c->procs > c->clients)
        c->procs = c->clients;
}

/* ==== The server, seen through /proc ==== */

struct server_stat {
    int ok;
    double cpu_s;   /* utime + stime */
    long rss_kb;
};

static struct server_stat server_sample(int pid)
{
    struct server_stat st = {0};
    char path[64], buf[2048];
    if (pid <= 0)
        return st;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return st;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name, which is in parentheses and may hold spaces:
     * state is field 3, utime 14, stime 15. */
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, stime = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stime) != 2)
        return st;
    st.cpu_s = (double)(ut + stime) / (double)sysconf(_SC_CLK_TCK);
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    if ((f = fopen(path, "r")) != NULL) {
        while (fgets(buf, sizeof buf, f))
            if (sscanf(buf, "VmRSS: %ld kB", &st.rss_kb) == 1)
                break;
        fclose(f);
    }
    st.ok = 1;
    return st;
}

/* ==== Conducting the run ==== */

struct run {
    struct bench_cfg *cfg;
    struct bench_shared *sh;
    pid_t *pids;
    int worker_died;
    struct server_stat before, held, run0, end, setup;
    uint64_t start_ns, stop_ns, hold_s_ns, hold_e_ns, setup_s_ns, setup_e_ns;
    uint32_t held_after_idle;
    int setup_timed_out, drain_timed_out;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A worker that exits before the end means the run cannot be trusted. */
static int workers_alive(struct run *r)
{
    for (uint32_t i = 0; i < r->cfg->procs; i++) {
        int st;
        if (r->pids[i] > 0 && waitpid(r->pids[i], &st, WNOHANG) == r->pids[i]) {
            r->pids[i] = 0;
            fprintf(stderr, "natter-bench: worker %u ended early (%s %d)\n", i,
                    WIFSIGNALED(st) ? "signal" : "status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
            r->worker_died = 1;
        }
    }
    return !r->worker_died;
}

/* Wait, checking on the workers, until pred holds or deadline (ns) passes. */
static int wait_for(struct run *r, int (*pred)(struct run *), uint64_t deadline)
{
    uint64_t next_note = bench_now_ns() + 1000000000u;
    while (!pred(r)) {
        if (!workers_alive(r) || bench_now_ns() >= deadline)
            return 0;
        sleep_ms(2);
        if (r->cfg->verbose && bench_now_ns() >= next_note) {
            next_note += 1000000000u;
            fprintf(stderr, "natter-bench: %u ready, %u refused, %u failed, %u lost, %u/%u stopped, %u/%u done\n",
                    atomic_load(&r->sh->ready), atomic_load(&r->sh->refused), atomic_load(&r->sh->failed),
                    atomic_load(&r->sh->lost), atomic_load(&r->sh->stopped), r->sh->send_parties,
                    atomic_load(&r->sh->done), r->sh->recv_parties);
        }
    }
    return 1;
}

static int all_settled(struct run *r)
{
    struct bench_shared *sh = r->sh;
    return atomic_load(&sh->ready) + atomic_load(&sh->refused) + atomic_load(&sh->failed) >= r->cfg->clients;
}

static int all_stopped(struct run *r)
{
    return atomic_load(&r->sh->stopped) >= r->sh->send_parties;
}

static int all_done(struct run *r)
{
    return atomic_load(&r->sh->done) >= r->sh->recv_parties;
}

static int never(struct run *r)
{
    (void)r;
    return 0;
}

static uint64_t secs_ns(double s)
{
    return (uint64_t)(s * 1e9);
}

static void hold_idle(struct run *r)
{
    atomic_store(&r->sh->phase, PH_HOLD);
    r->hold_s_ns = bench_now_ns();
    wait_for(r, never, r->hold_s_ns + secs_ns(r->cfg->idle));
    r->hold_e_ns = bench_now_ns();
    r->held = server_sample(r->cfg->server_pid);
    r->held_after_idle = atomic_load(&r->sh->ready) - atomic_load(&r->sh->lost);
}

static void send_and_drain(struct run *r)
{
    const struct bench_cfg *c = r->cfg;
    r->run0 = server_sample(c->server_pid);
    r->start_ns = bench_now_ns() + 1000000; /* 1 ms ahead, so all start together */
    atomic_store(&r->sh->start_ns, r->start_ns);
    atomic_store(&r->sh->phase, PH_RUN);
    wait_for(r, all_stopped, r->start_ns + secs_ns(c->duration));
    atomic_store(&r->sh->phase, PH_STOP);
    r->stop_ns = bench_now_ns();
    wait_for(r, all_stopped, r->stop_ns + secs_ns(5));
    if (!wait_for(r, all_done, bench_now_ns() + secs_ns(c->drain + 10)))
        r->drain_timed_out = 1;
    r->end = server_sample(c->server_pid);
}

static int start_workers(struct run *r)
{
    fflush(NULL);
    for (uint32_t i = 0; i < r->cfg->procs; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "natter-bench: fork: %s\n", strerror(errno));
            return -1;
        }
        if (pid == 0)
            exit(bench_worker_main(r->cfg, r->sh, i)); /* exit, not _exit: LeakSanitizer runs at exit */
        r->pids[i] = pid;
    }
    return 0;
}

static int stop_workers(struct run *r, int phase)
{
    int rc = 0;
    atomic_store(&r->sh->phase, phase);
    for (uint32_t i = 0; i < r->cfg->procs; i++) {
        int st;
        if (r->pids[i] <= 0)
            continue;
        if (waitpid(r->pids[i], &st, 0) == r->pids[i] && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
            rc = -1;
    }
    return rc;
}

/* ==== The report ==== */

struct totals {
    struct bench_result sum;
    uint64_t sent;
    uint32_t ready, refused, failed, lost, held;
    double elapsed, delivered_per_s, sent_per_s, bench_cpu_s;
    double server_cpu_s, server_ns_per_msg, rss_per_conn;
    const char *problem;
    int ok;
};

static void add_results(struct run *r, struct totals *t)
{
    const struct bench_cfg *c = r->cfg;
    struct bench_result *res = bench_results(r->sh, c);
    memset(t, 0, sizeof *t);
    for (uint32_t i = 0; i < r->sh->recv_parties; i++) {
        struct bench_result *x = &res[i];
        t->sum.delivered += x->delivered, t->sum.expected += x->expected;
        t->sum.missing += x->missing, t->sum.duplicated += x->duplicated;
        t->sum.reordered += x->reordered, t->sum.corrupt += x->corrupt;
        t->sum.server_errors += x->server_errors;
        if (x->last_rx_ns > t->sum.last_rx_ns)
            t->sum.last_rx_ns = x->last_rx_ns;
        if (!t->problem && x->first_problem[0])
            t->problem = x->first_problem;
        hist_merge(&t->sum.lat, &x->lat);
    }
    _Atomic uint64_t *sent = bench_sent(r->sh);
    for (size_t i = 0; i < (size_t)c->rooms * c->senders; i++)
        t->sent += atomic_load(&sent[i]);
}

static void derive(struct run *r, struct totals *t)
{
    struct bench_shared *sh = r->sh;
    const struct bench_cfg *c = r->cfg;
    t->ready = atomic_load(&sh->ready), t->refused = atomic_load(&sh->refused);
    t->failed = atomic_load(&sh->failed), t->lost = atomic_load(&sh->lost);
    t->held = t->ready - t->lost;
    uint64_t end = t->sum.last_rx_ns > r->stop_ns ? t->sum.last_rx_ns : r->stop_ns;
    t->elapsed = r->start_ns ? (double)(end - r->start_ns) / 1e9 : 0;
    if (t->elapsed > 0) {
        t->delivered_per_s = (double)t->sum.delivered / t->elapsed;
        t->sent_per_s = (double)t->sent / t->elapsed;
    }
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    t->bench_cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                     ru.ru_stime.tv_usec / 1e6;
    if (r->run0.ok && r->end.ok) {
        t->server_cpu_s = r->end.cpu_s - r->run0.cpu_s;
        if (t->sum.delivered)
            t->server_ns_per_msg = t->server_cpu_s * 1e9 / (double)t->sum.delivered;
    }
    if (r->before.ok && r->held.ok && r->held_after_idle)
        t->rss_per_conn = (double)(r->held.rss_kb - r->before.rss_kb) * 1024.0 / r->held_after_idle;
    t->ok = !r->worker_died && !r->setup_timed_out && !r->drain_timed_out && t->lost == 0 &&
            t->failed == 0 && t->refused == (uint32_t)c->expect_refused &&
            t->ready + t->refused == c->clients && t->sum.missing == 0 && t->sum.duplicated == 0 &&
            t->sum.reordered == 0 && t->sum.corrupt == 0 && t->sum.server_errors == 0 &&
            (!c->idle || r->held_after_idle == t->ready);
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static void print_text(struct run *r, struct totals *t)
{
    const struct bench_cfg *c = r->cfg;
    const struct hist *h = &t->sum.lat;
    printf("natter-bench %s: %s:%s, %u clients in %u room%s, %u sender%s per room, ", NATTER_VERSION, c->host,
           c->port, c->clients, c->rooms, c->rooms == 1 ? "" : "s", c->senders, c->senders == 1 ? "" : "s");
    if (c->rate > 0)
        printf("%.0f msgs/s offered", c->rate);
    else
        printf("window %u", c->window);
    if (c->irc_every)
        printf(c->irc_every == 1 ? ", all IRC" : ", every %u%s IRC", c->irc_every, c->irc_every == 2 ? "nd" : "th");
    if (c->ws)
        printf(" over WebSocket");
    if (c->messages)
        printf(", %llu messages each\n", (unsigned long long)c->messages);
    else
        printf(", %.1f s\n", c->duration);
    printf("connections  held %u of %u (refused %u, failed %u, lost %u)%s\n", t->held, c->clients, t->refused,
           t->failed, t->lost, c->tls ? ", over TLS" : "");
    double setup_s = (double)(r->setup_e_ns - r->setup_s_ns) / 1e9;
    printf("setup        %.2f s: %.0f connections set up per second", setup_s, setup_s > 0 ? t->ready / setup_s : 0);
    if (r->before.ok && r->setup.ok && t->ready)
        printf(", %.0f us of server cpu each", (r->setup.cpu_s - r->before.cpu_s) * 1e6 / t->ready);
    printf("\n");
    if (c->idle > 0) {
        printf("idle         %u of %u survived %.1f s", r->held_after_idle, t->ready,
               (double)(r->hold_e_ns - r->hold_s_ns) / 1e9);
        if (r->before.ok && r->held.ok)
            printf("; server rss %.1f MB -> %.1f MB: %.0f bytes per connection", r->before.rss_kb / 1024.0,
                   r->held.rss_kb / 1024.0, t->rss_per_conn);
        printf("\n");
    }
    if (r->start_ns) {
        printf("messages     sent %llu, delivered %llu of %llu (missing %llu, duplicated %llu, reordered %llu, "
               "corrupt %llu)\n",
               (unsigned long long)t->sent, (unsigned long long)t->sum.delivered,
               (unsigned long long)t->sum.expected, (unsigned long long)t->sum.missing,
               (unsigned long long)t->sum.duplicated, (unsigned long long)t->sum.reordered,
               (unsigned long long)t->sum.corrupt);
        printf("throughput   %.0f delivered msgs/s, %.0f sent msgs/s over %.2f s\n", t->delivered_per_s,
               t->sent_per_s, t->elapsed);
        printf("latency      p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms (%llu samples)\n",
               ms(hist_quantile(h, 0.5)), ms(hist_quantile(h, 0.99)), ms(hist_quantile(h, 0.999)),
               ms(h->max), (unsigned long long)h->count);
    }
    if (r->end.ok && r->run0.ok)
        printf("server       pid %d: cpu %.2f s (%.0f%% of one core), %.0f ns per delivered msg; rss %.1f MB\n",
               c->server_pid, t->server_cpu_s, t->elapsed > 0 ? 100 * t->server_cpu_s / t->elapsed : 0,
               t->server_ns_per_msg, r->end.rss_kb / 1024.0);
    printf("bench        cpu %.2f s in %u process%s x %u receiving thread%s%s\n", t->bench_cpu_s, c->procs,
           c->procs == 1 ? "" : "es", c->threads, c->threads == 1 ? "" : "s",
           c->rate > 0 ? " + 1 sending thread" : "");
    if (t->problem)
        printf("problem      %s\n", t->problem);
    if (r->sh->first_failure[0] && (t->failed || t->lost || !t->ok))
        printf("failure      %s\n", r->sh->first_failure);
    if (r->worker_died)
        printf("failure      a worker process ended early (see its messages above)\n");
    if (r->setup_timed_out)
        printf("failure      setup did not finish within %.0f s\n", c->setup_timeout);
    if (r->drain_timed_out)
        printf("failure      the receivers did not finish draining\n");
    printf("result       %s\n", t->ok ? "OK" : "FAIL");
}

static void json_str(const char *key, const char *s)
{
    printf(",\"%s\":\"", key);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void print_json(struct run *r, struct totals *t)
{
    const struct bench_cfg *c = r->cfg;
    const struct hist *h = &t->sum.lat;
    printf("{\"ok\":%s,\"clients\":%u,\"rooms\":%u,\"senders_per_room\":%u,\"window\":%u,\"rate\":%g,",
           t->ok ? "true" : "false", c->clients, c->rooms, c->senders, c->rate > 0 ? 0 : c->window, c->rate);
    printf("\"irc_every\":%u,\"ws\":%s,", c->irc_every, c->ws ? "true" : "false");
    printf("\"held\":%u,\"ready\":%u,\"refused\":%u,\"failed\":%u,\"lost\":%u,\"idle_survivors\":%u,", t->held,
           t->ready, t->refused, t->failed, t->lost, c->idle > 0 ? r->held_after_idle : t->held);
    printf("\"sent\":%llu,\"delivered\":%llu,\"expected\":%llu,\"missing\":%llu,\"duplicated\":%llu,"
           "\"reordered\":%llu,\"corrupt\":%llu,\"server_errors\":%llu,",
           (unsigned long long)t->sent, (unsigned long long)t->sum.delivered, (unsigned long long)t->sum.expected,
           (unsigned long long)t->sum.missing, (unsigned long long)t->sum.duplicated,
           (unsigned long long)t->sum.reordered, (unsigned long long)t->sum.corrupt,
           (unsigned long long)t->sum.server_errors);
    printf("\"elapsed_s\":%.6f,\"delivered_per_s\":%.1f,\"sent_per_s\":%.1f,", t->elapsed, t->delivered_per_s,
           t->sent_per_s);
    printf("\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"samples\":%llu},",
           hist_quantile(h, 0.5) / 1e3, hist_quantile(h, 0.99) / 1e3, hist_quantile(h, 0.999) / 1e3,
           h->max / 1e3, (unsigned long long)h->count);
    printf("\"server_cpu_s\":%.3f,\"server_ns_per_msg\":%.1f,\"server_rss_before_kb\":%ld,"
           "\"server_rss_held_kb\":%ld,\"server_rss_end_kb\":%ld,\"server_rss_per_conn\":%.1f,",
           t->server_cpu_s, t->server_ns_per_msg, r->before.rss_kb, r->held.rss_kb, r->end.rss_kb,
           t->rss_per_conn);
    printf("\"bench_cpu_s\":%.3f,\"procs\":%u,\"threads\":%u", t->bench_cpu_s, c->procs, c->threads);
    printf(",\"tls\":%s,\"setup_s\":%.3f,\"server_setup_cpu_s\":%.3f", c->tls ? "true" : "false",
           (double)(r->setup_e_ns - r->setup_s_ns) / 1e9,
           r->before.ok && r->setup.ok ? r->setup.cpu_s - r->before.cpu_s : 0.0);
    json_str("problem", t->problem ? t->problem : "");
    json_str("failure", r->sh->first_failure);
    printf("}\n");
}

int main(int argc, char **argv)
{
    static struct bench_cfg cfg;
    parse_options(&cfg, argc, argv);
    choose_procs(&cfg, raise_nofile());
    signal(SIGPIPE, SIG_IGN);

    size_t size = bench_shared_size(&cfg);
    struct bench_shared *sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        fprintf(stderr, "natter-bench: mmap %zu bytes: %s\n", size, strerror(errno));
        return 2;
    }
    sh->recv_parties = cfg.procs * cfg.threads;
    sh->send_parties = cfg.senders == 0 ? 0 : cfg.rate > 0 ? cfg.procs : cfg.procs * cfg.threads;
    struct run r = {.cfg = &cfg, .sh = sh, .pids = calloc(cfg.procs, sizeof(pid_t))};
    if (!r.pids)
        return 2;
    r.before = server_sample(cfg.server_pid);
    if (cfg.server_pid && !r.before.ok)
        fprintf(stderr, "natter-bench: warning: cannot read /proc/%d/stat; no server figures\n", cfg.server_pid);
    if (start_workers(&r) < 0) {
        stop_workers(&r, PH_ABORT);
        free(r.pids);
        return 2;
    }
    r.setup_s_ns = bench_now_ns();
    if (!wait_for(&r, all_settled, bench_now_ns() + secs_ns(cfg.setup_timeout)))
        r.setup_timed_out = !r.worker_died;
    r.setup_e_ns = bench_now_ns();
    r.setup = server_sample(cfg.server_pid);
    if (!r.worker_died && !r.setup_timed_out && atomic_load(&sh->ready) == 0 && atomic_load(&sh->refused) == 0) {
        stop_workers(&r, PH_ABORT);
        fprintf(stderr, "natter-bench: no connection could be set up: %s\n", sh->first_failure);
        free(r.pids);
        return 2;
    }
    if (!r.worker_died && !r.setup_timed_out) {
        if (cfg.idle > 0)
            hold_idle(&r);
        if (cfg.senders > 0 && !r.worker_died)
            send_and_drain(&r);
        else
            r.end = server_sample(cfg.server_pid);
    }
    if (stop_workers(&r, r.worker_died || r.setup_timed_out ? PH_ABORT : PH_DONE) < 0)
        r.worker_died = 1;
    struct totals t;
    add_results(&r, &t);
    derive(&r, &t);
    if (cfg.json)
        print_json(&r, &t);
    else
        print_text(&r, &t);
    munmap(sh, size);
    free(r.pids);
    return t.ok ? 0 : 1;
}
