/* options.c - natterd's options: the table, parsing, --help (see options.h). */
#include "server/options.h"

#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/num.h"
#include "server/conn.h"
#include "server/hub.h"

enum kind {
    FLAG,    /* no value */
    NUMBER,  /* a whole number in [min, max] */
    TEXT,    /* a string */
    TEXTS,   /* a string, repeatable */
};

enum {
    LIVE = 1,     /* a reload (SIGHUP) applies a new value at once */
    ARGV_ONLY = 2, /* not a key of the configuration file */
};

struct spec {
    const char *name;   /* --name, and the key in a configuration file */
    int letter;         /* -x, or 0 */
    enum kind kind;
    int flags;          /* LIVE, ARGV_ONLY */
    size_t offset;      /* of the field in struct options */
    size_t count;       /* TEXTS: of the int counting its values */
    long long min, max; /* NUMBER; TEXTS: max values */
    const char *arg;    /* the value's name in --help */
    const char *help;
    const char *deflt;  /* the default in words, when the number does not say it */
};

#define AT(field) offsetof(struct options, field)

static const struct spec specs[] = {
    {"bind", 'b', TEXTS, 0, AT(bind), AT(nbind), 0, OPT_MAX_BINDS, "ADDR", "address to listen on, repeatable", "every address, IPv6 and IPv4"},
    {"port", 'p', NUMBER, 0, AT(port), 0, 0, 65535, "PORT", "TCP port; 0 picks a free one", NULL},
    {"max-clients", 0, NUMBER, 0, AT(max_clients), 0, 1, 10000000, "N", "connections at once",
     "as many as descriptors allow"},
    {"max-line", 0, NUMBER, LIVE, AT(max_line), 0, 64, 1 << 24, "BYTES", "longest input line", NULL},
    {"max-outbuf", 0, NUMBER, LIVE, AT(max_outbuf), 0, 4096, 1 << 30, "BYTES",
     "output queued for one client before it is dropped", NULL},
    {"max-name", 0, NUMBER, LIVE, AT(max_name), 0, 1, 31, "N", "longest name, in characters", NULL},
    {"max-rooms", 0, NUMBER, LIVE, AT(max_rooms), 0, 1, 1000, "N", "rooms one user may be in", NULL},
    {"max-announce", 0, NUMBER, LIVE, AT(max_announce), 0, 0, 1000000000, "N",
     "no join/leave notices in rooms larger than this", NULL},
    {"rate", 0, NUMBER, LIVE, AT(rate), 0, 0, 1000000, "LINES", "lines per second per client, 0 = unlimited", NULL},
    {"burst", 0, NUMBER, LIVE, AT(burst), 0, 1, 1000000000, "LINES", "lines a client may send at once", NULL},
    {"max-per-ip", 0, NUMBER, LIVE, AT(max_per_ip), 0, 0, 1000000000, "N", "connections from one address, 0 = unlimited",
     NULL},
    {"flood-timeout", 0, NUMBER, LIVE, AT(flood_timeout), 0, 0, 1000000, "SECS", "drop clients over --rate this long, 0 = never",
     NULL},
    {"login-timeout", 0, NUMBER, LIVE, AT(login_timeout), 0, 0, 1000000, "SECS",
     "drop new clients that send nothing this long, 0 = never", NULL},
    {"idle-timeout", 0, NUMBER, LIVE, AT(idle_timeout), 0, 0, 1000000, "SECS", "drop clients silent this long, 0 = never",
     NULL},
    {"keepalive", 0, NUMBER, 0, AT(keepalive), 0, 0, 1000000, "SECS", "TCP keepalive idle time to find dead peers, 0 = off",
     NULL},
    /* Hardening, second round: churn, kernel buffers, listings, storms, fairness.
     * All live: a reload changes the limits of every profile and of the hub in
     * place (the kernel buffers: for connections accepted after it). */
    {"connect-rate", 0, NUMBER, LIVE, AT(connect_rate), 0, 0, 1000000, "N",
     "new connections per minute from one address (/32, /64), 0 = unlimited", NULL},
    {"connect-burst", 0, NUMBER, LIVE, AT(connect_burst), 0, 1, 1000000, "N", "new connections at once from one address",
     NULL},
    {"sndbuf", 0, NUMBER, LIVE, AT(sndbuf), 0, 0, 1 << 26, "BYTES", "kernel send buffer per client, 0 = autotuned", NULL},
    {"rcvbuf", 0, NUMBER, LIVE, AT(rcvbuf), 0, 0, 1 << 26, "BYTES", "kernel receive buffer per client, 0 = autotuned",
     NULL},
    {"max-list", 0, NUMBER, LIVE, AT(max_list), 0, 1, 1000000, "N", "entries named in one /who or /rooms reply", NULL},
    {"notice-storm", 0, NUMBER, LIVE, AT(notice_storm), 0, 0, 1000000, "N",
     "join/leave notices per room per 10 s before they are summed up, 0 = never", NULL},
    {"turn-fanout", 0, NUMBER, LIVE, AT(turn_fanout), 0, 0, 1000000000, "N",
     "deliveries per loop turn before senders to rooms over 64 wait, 0 = no budget", NULL},
    /* TLS (issue 11; transport/tls.c): the listener exists only with a certificate and a key.
     * A reload rereads the files (a reload_add hook); other paths need a restart. */
    {"tls-cert", 0, TEXT, 0, AT(tls_cert), 0, 0, 0, "FILE", "TLS certificate chain (PEM), reread on SIGHUP", "none: no TLS"},
    {"tls-key", 0, TEXT, 0, AT(tls_key), 0, 0, 0, "FILE", "its private key (PEM, unencrypted), reread on SIGHUP", "none"},
    {"tls-port", 0, NUMBER, 0, AT(tls_port), 0, 0, 65535, "PORT", "TLS port for the plain protocol; 0 picks a free one",
     "8889"},
    {"tls-handshake-timeout", 0, NUMBER, LIVE, AT(tls_handshake_timeout), 0, 0, 1000000, "SECS",
     "drop clients whose TLS handshake takes this long, 0 = never", NULL},
    /* History (history.c): replay on join, /history, /search, kept in SQLite. The
     * database is opened once: these need a restart. */
    {"history", 0, NUMBER, 0, AT(history), 0, 0, 1000, "N", "messages replayed to who joins a room; 0 = history off",
     NULL},
    {"db", 0, TEXT, 0, AT(db), 0, 0, 0, "PATH", "the history database; :memory: keeps none on disk",
     "$STATE_DIRECTORY/natter.db, else ./natter.db"},
    {"history-private", 0, FLAG, 0, AT(history_private), 0, 0, 0, NULL, "keep private messages in history too", NULL},
    {"history-days", 0, NUMBER, 0, AT(history_days), 0, 0, 1000000, "DAYS", "delete history older than this, 0 = never",
     NULL},
    {"history-max", 0, NUMBER, 0, AT(history_max), 0, 0, 1000000000000LL, "N",
     "messages kept per room, 0 = no limit", NULL},
    {"verbose", 'v', FLAG, LIVE, AT(verbose), 0, 0, 0, NULL, "log more", NULL},
    /* IRC on the same rooms (codecs/irc/): its own port; the plain port hands IRC clients over too.
     * Ports and names need a restart; the MOTD file is reread on SIGHUP (a reload_add hook). */
    {"irc-port", 0, NUMBER, 0, AT(irc_port), 0, 0, 65535, "PORT", "TCP port for IRC clients; 0 picks a free one", NULL},
    {"irc-tls-port", 0, NUMBER, 0, AT(irc_tls_port), 0, 0, 65535, "PORT",
     "TLS port for IRC clients (with --tls-cert); 0 picks a free one", "6697"},
    {"sts-duration", 0, NUMBER, 0, AT(sts_duration), 0, 0, 31536000, "SECS",
     "how long IRC clients should keep to TLS (IRCv3 sts), 0 = let them stop", NULL},
    {"no-irc", 0, FLAG, 0, AT(no_irc), 0, 0, 0, NULL, "no IRC port (the plain port still takes IRC clients)", NULL},
    {"server-name", 0, TEXT, 0, AT(server_name), 0, 0, 0, "NAME", "the server's IRC name", "the host name"},
    {"network", 0, TEXT, 0, AT(network), 0, 0, 0, "NAME", "the IRC network's name", "natter"},
    {"irc-motd", 0, TEXT, LIVE, AT(irc_motd), 0, 0, 0, "FILE", "message of the day for IRC clients, reread on SIGHUP",
     "none: the --motd line"},
    {"irc-password", 0, TEXT, 0, AT(irc_password), 0, 0, 0, "PASS", "password IRC clients must give (PASS)", "none"},
    /* The browser page and IRC over WebSocket (issue 14; codecs/http/, transport/ws.c).
     * Ports need a restart; the origins and the timeout change on a reload. */
    {"http-port", 0, NUMBER, 0, AT(http_port), 0, 0, 65535, "PORT",
     "HTTP port for the browser page and IRC over WebSocket (/ws); 0 picks a free one", NULL},
    {"https-port", 0, NUMBER, 0, AT(https_port), 0, 0, 65535, "PORT",
     "HTTPS port for the page and WebSocket (with --tls-cert); 0 picks a free one", "8443"},
    {"web-origin", 0, TEXT, LIVE, AT(web_origin), 0, 0, 0, "ORIGINS",
     "origins whose pages may open /ws, e.g. https://chat.example.org (space-separated)",
     "the page's own: the scheme and the Host asked for"},
    {"http-timeout", 0, NUMBER, LIVE, AT(http_timeout), 0, 1, 3600, "SECS",
     "an HTTP connection's life before it upgrades: the request head and keep-alive", NULL},
    {"no-web", 0, FLAG, 0, AT(no_web), 0, 0, 0, NULL, "no HTTP or HTTPS port: no page, no WebSocket", NULL},
    /* Running as a service (issue 8): the file, reloading it, a greeting. */
    {"config", 'c', TEXT, ARGV_ONLY, AT(config), 0, 0, 0, "FILE", "read options from FILE first; SIGHUP rereads it",
     OPT_DEFAULT_CONFIG " when present"},
    {"check", 0, FLAG, ARGV_ONLY, AT(check), 0, 0, 0, NULL, "read and check the configuration, then exit (0 good, 2 not)",
     NULL},
    {"motd", 0, TEXT, LIVE, AT(motd), 0, 0, 0, "TEXT", "a line shown to each client after the welcome", "none"},
    /* Privileges and logs for a service (issue 8). */
    {"user", 'u', TEXT, 0, AT(user), 0, 0, 0, "NAME", "after opening the listeners, run as this user (from root)",
     "stay who we are"},
    {"pid-file", 0, TEXT, 0, AT(pid_file), 0, 0, 0, "FILE", "write the process id to FILE, removed at exit", "none"},
    {"syslog", 0, FLAG, 0, AT(syslog), 0, 0, 0, NULL, "log to syslog (daemon facility) instead of stderr", NULL},
    /* Server operators (issue 13; operauth.c): passwords checked on a worker thread. */
    {"oper", 0, TEXTS, 0, AT(oper), AT(noper), 0, 32, "NAME:HASH",
     "a server operator and the hash of its password (from --hash-password), repeatable", "none"},
    {"hash-password", 0, FLAG, ARGV_ONLY, AT(hash_password), 0, 0, 0, NULL,
     "read a password on standard input, print its hash for --oper, exit", NULL},
};
#define NSPECS (sizeof specs / sizeof specs[0])

void options_defaults(struct options *o)
{
    *o = (struct options){
        .port = 8888,
        .keepalive = 60,
        .max_line = 4096,
        .max_outbuf = 256 * 1024,
        .rate = 10,
        .burst = 50,
        .flood_timeout = 30,
        .login_timeout = 300,
        .max_per_ip = 64,
        .max_name = 24,
        .max_rooms = 16,
        .max_announce = 200,
        .connect_rate = 6,
        .connect_burst = 20,
        .sndbuf = 64 * 1024,
        .rcvbuf = 64 * 1024,
        .max_list = 100,
        .notice_storm = 10,
        .turn_fanout = 100000,
        .tls_port = -1,
        .tls_handshake_timeout = 10,
        .history = 50,
        .irc_port = 6667,
        .irc_tls_port = -1,
        .sts_duration = 300,
        .network = "natter",
        .http_port = 8080,
        .https_port = -1,
        .http_timeout = 10,
    };
}

static const struct spec *find(const char *name)
{
    for (size_t i = 0; i < NSPECS; i++)
        if (strcmp(specs[i].name, name) == 0)
            return &specs[i];
    return NULL;
}


int options_set(struct options *o, const char *name, const char *value, char *err, size_t errlen)
{
    const struct spec *sp = find(name);
    if (!sp) {
        snprintf(err, errlen, "unknown option '%s'", name);
        return -1;
    }
    char *field = (char *)o + sp->offset;
    switch (sp->kind) {
    case FLAG:
        if (value && strcmp(value, "yes") != 0 && strcmp(value, "no") != 0) {
            snprintf(err, errlen, "--%s: '%s' is not yes or no", name, value);
            return -1;
        }
        *(int *)field = !value || strcmp(value, "yes") == 0;
        return 0;
    case NUMBER: {
        long long v;
        if (num_whole(value, sp->min, sp->max, &v) < 0) { /* digits only: no "1e3", " 5", "2.5", "nan" */
            snprintf(err, errlen, "--%s: '%s' is not a whole number from %lld to %lld", name, value, sp->min,
                     sp->max);
            return -1;
        }
        *(long long *)field = v;
        return 0;
    }
    case TEXT:
        *(const char **)field = value;
        return 0;
    case TEXTS: {
        int *n = (int *)((char *)o + sp->count);
        if (*n == sp->max) {
            snprintf(err, errlen, "--%s: at most %lld of them", name, sp->max);
            return -1;
        }
        ((const char **)field)[(*n)++] = value;
        return 0;
    }
    }
    return -1;
}

static void usage(FILE *out)
{
    struct options d;
    options_defaults(&d);
    fprintf(out, "usage: natterd [options]\n");
    for (size_t i = 0; i < NSPECS; i++) {
        const struct spec *sp = &specs[i];
        char left[48], deflt[64] = "";
        snprintf(left, sizeof left, "%c%c%c --%s%s%s", sp->letter ? '-' : ' ', sp->letter ? sp->letter : ' ',
                 sp->letter ? ',' : ' ', sp->name, sp->arg ? " " : "", sp->arg ? sp->arg : "");
        if (sp->deflt)
            snprintf(deflt, sizeof deflt, " (default: %s)", sp->deflt);
        else if (sp->kind == NUMBER)
            snprintf(deflt, sizeof deflt, " (default %lld)", *(const long long *)((const char *)&d + sp->offset));
        fprintf(out, "  %-26s %s%s\n", left, sp->help, deflt);
    }
    fprintf(out, "  %-26s %s\n  %-26s %s\nSee natterd(8).\n", "-h, --help", "this help", "-V, --version",
            "print the version");
}

/* The command line, remembered: every reload puts it over the file again. */
static struct {
    int n;
    struct { const struct spec *sp; const char *value; } *set;
} argv_opts;

void options_parse_argv(int argc, char **argv)
{
    enum { FIRST_LONG = 256 };
    static struct option longopts[NSPECS + 3];
    char shortopts[2 * NSPECS + 4] = "";
    size_t ns = 0;
    for (size_t i = 0; i < NSPECS; i++) {
        longopts[i] = (struct option){specs[i].name, specs[i].kind == FLAG ? no_argument : required_argument, NULL,
                                      (int)(FIRST_LONG + i)};
        if (specs[i].letter) {
            shortopts[ns++] = (char)specs[i].letter;
            if (specs[i].kind != FLAG)
                shortopts[ns++] = ':';
        }
    }
    longopts[NSPECS] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[NSPECS + 1] = (struct option){"version", no_argument, NULL, 'V'};
    memcpy(shortopts + ns, "hV", 3);
    free(argv_opts.set);
    argv_opts.n = 0;
    argv_opts.set = calloc((size_t)argc + 1, sizeof *argv_opts.set);
    if (!argv_opts.set) {
        fprintf(stderr, "natterd: out of memory\n");
        exit(1);
    }
    struct options scratch; /* each value is checked here, at once, with the flag's name */
    options_defaults(&scratch);
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        const struct spec *sp = NULL;
        if (ch >= FIRST_LONG && ch < FIRST_LONG + (int)NSPECS)
            sp = &specs[ch - FIRST_LONG];
        for (size_t i = 0; !sp && i < NSPECS; i++)
            if (specs[i].letter && specs[i].letter == ch)
                sp = &specs[i];
        if (ch == 'h') {
            usage(stdout);
            exit(0);
        }
        if (ch == 'V') {
            printf("natterd %s\n", NATTER_VERSION);
            exit(0);
        }
        char err[256];
        if (!sp) {
            usage(stderr);
            exit(2);
        }
        const char *value = sp->kind == FLAG ? NULL : optarg;
        if (options_set(&scratch, sp->name, value, err, sizeof err) < 0) {
            fprintf(stderr, "natterd: %s\n", err);
            exit(2);
        }
        argv_opts.set[argv_opts.n].sp = sp;
        argv_opts.set[argv_opts.n++].value = value;
    }
    if (optind < argc) {
        fprintf(stderr, "natterd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        exit(2);
    }
}

void options_forget_argv(void)
{
    free(argv_opts.set);
    argv_opts.set = NULL;
    argv_opts.n = 0;
}

/* ==== The configuration file ==== */

struct owned { struct owned *next; char text[]; };

static const char *keep(struct options *o, const char *s)
{
    size_t n = strlen(s) + 1;
    struct owned *w = malloc(sizeof *w + n);
    if (!w)
        return NULL;
    memcpy(w->text, s, n);
    w->next = o->owned;
    o->owned = w;
    return w->text;
}

void options_free(struct options *o)
{
    for (struct owned *w = o->owned, *next; w; w = next) {
        next = w->next;
        free(w);
    }
    o->owned = NULL;
}

struct file_ctx {
    struct options *o;
    char err[200];
    int bad;
};

/* inih calls this once a "key = value" line; nonzero means the line is good. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct file_ctx *fc = user;
    if (fc->bad)
        return 1; /* report the first error only */
    const struct spec *sp = find(name);
    if (*section && strcmp(section, "natterd") != 0) {
        snprintf(fc->err, sizeof fc->err, "unknown section [%s] (only [natterd], or none)", section);
    } else if (!sp || (sp->flags & ARGV_ONLY)) {
        snprintf(fc->err, sizeof fc->err, "unknown key '%s' (the keys are natterd's long options)", name);
    } else {
        const char *v = value;
        if (sp->kind == TEXT || sp->kind == TEXTS) {
            v = keep(fc->o, value);
            if (!v) {
                snprintf(fc->err, sizeof fc->err, "out of memory");
                fc->bad = 1;
                return 0;
            }
        }
        if (options_set(fc->o, name, v, fc->err, sizeof fc->err) == 0)
            return 1;
    }
    fc->bad = 1;
    return 0;
}

static int load_file(struct options *o, const char *path, char *err, size_t errlen)
{
    struct file_ctx fc = {.o = o};
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = ini_parse_file(f, on_key, &fc);
    fclose(f);
    if (rc == 0)
        return 0;
    if (rc > 0 && fc.bad)
        snprintf(err, errlen, "%s:%d: %s", path, rc, fc.err);
    else if (rc > 0)
        snprintf(err, errlen, "%s:%d: not a 'key = value' line or a [section]", path, rc);
    else
        snprintf(err, errlen, "%s: cannot read it", path);
    return -1;
}

int options_load(struct options *o, char *err, size_t errlen)
{
    options_defaults(o);
    const char *path = NULL;
    for (int i = 0; i < argv_opts.n; i++)
        if (argv_opts.set[i].sp->offset == AT(config))
            path = argv_opts.set[i].value;
    if (!path && access(OPT_DEFAULT_CONFIG, F_OK) == 0)
        path = OPT_DEFAULT_CONFIG;
    if (path && *path && load_file(o, path, err, errlen) < 0) {
        options_free(o);
        return -1;
    }
    /* The command line over the file: a repeatable option given there replaces the
     * file's values instead of adding to them. */
    int cleared[NSPECS] = {0};
    for (int i = 0; i < argv_opts.n; i++) {
        const struct spec *sp = argv_opts.set[i].sp;
        size_t k = (size_t)(sp - specs);
        if (sp->kind == TEXTS && !cleared[k]) {
            *(int *)((char *)o + sp->count) = 0;
            cleared[k] = 1;
        }
        if (options_set(o, sp->name, argv_opts.set[i].value, err, errlen) < 0) {
            options_free(o);
            return -1;
        }
    }
    o->config = path && *path ? path : NULL;
    if (options_check(o, err, errlen) < 0) {
        options_free(o);
        return -1;
    }
    return 0;
}

/* ==== Reloading ==== */

static int same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int same(const struct spec *sp, const struct options *a, const struct options *b)
{
    const char *fa = (const char *)a + sp->offset, *fb = (const char *)b + sp->offset;
    switch (sp->kind) {
    case FLAG:
        return *(const int *)fa == *(const int *)fb;
    case NUMBER:
        return *(const long long *)fa == *(const long long *)fb;
    case TEXT:
        return same_text(*(const char *const *)fa, *(const char *const *)fb);
    case TEXTS: {
        int n = *(const int *)((const char *)a + sp->count);
        if (n != *(const int *)((const char *)b + sp->count))
            return 0;
        for (int i = 0; i < n; i++)
            if (!same_text(((const char *const *)fa)[i], ((const char *const *)fb)[i]))
                return 0;
        return 1;
    }
    }
    return 0;
}

static const char *copy_text(struct options *o, const char *s, int *oom)
{
    const char *c = s ? keep(o, s) : NULL;
    if (s && !c)
        *oom = 1;
    return c;
}

int options_changes(const struct options *running, struct options *next, options_change_fn *report, void *arg)
{
    int live = 0, oom = 0;
    for (size_t i = 0; i < NSPECS; i++) {
        const struct spec *sp = &specs[i];
        if (sp->flags & ARGV_ONLY || same(sp, running, next))
            continue;
        if (sp->flags & LIVE) {
            live++;
            report(sp->name, 1, arg);
            continue;
        }
        report(sp->name, 0, arg);
        /* keep what runs: the value the process was started with stays true */
        char *to = (char *)next + sp->offset;
        const char *from = (const char *)running + sp->offset;
        switch (sp->kind) {
        case FLAG: *(int *)to = *(const int *)from; break;
        case NUMBER: *(long long *)to = *(const long long *)from; break;
        case TEXT: /* copied: running's own strings go with it */
            *(const char **)to = copy_text(next, *(const char *const *)from, &oom);
            break;
        case TEXTS: {
            int n = *(const int *)((const char *)running + sp->count);
            for (int k = 0; k < n; k++)
                ((const char **)to)[k] = copy_text(next, ((const char *const *)from)[k], &oom);
            *(int *)((char *)next + sp->count) = n;
            break;
        }
        }
    }
    return oom ? -1 : live;
}

/* An IRC name: 1-63 of letters, digits, '-', '.', '_' (it is every line's prefix). */
static int irc_word(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || strchr("-._", *s)))
            return 0;
    return 1;
}

int options_check(const struct options *o, char *err, size_t errlen)
{
    if (o->server_name && !irc_word(o->server_name)) {
        snprintf(err, errlen, "--server-name: '%s' is not 1-63 letters, digits, '-', '.' or '_'", o->server_name);
        return -1;
    }
    if (o->network && !irc_word(o->network)) {
        snprintf(err, errlen, "--network: '%s' is not 1-63 letters, digits, '-', '.' or '_'", o->network);
        return -1;
    }
    if (o->irc_password && (!*o->irc_password || strpbrk(o->irc_password, " \r\n"))) {
        snprintf(err, errlen, "--irc-password: must be non-empty, without spaces");
        return -1;
    }
    /* Messages must fit a line: sanitising may triple an input line's size. */
    if (o->max_outbuf < 4 * o->max_line) {
        snprintf(err, errlen, "--max-outbuf (%lld) must be at least 4 times --max-line (%lld)", o->max_outbuf,
                 o->max_line);
        return -1;
    }
    if (!o->tls_cert != !o->tls_key) {
        snprintf(err, errlen, "--tls-cert and --tls-key go together");
        return -1;
    }
    if (o->tls_port >= 0 && !o->tls_cert) {
        snprintf(err, errlen, "--tls-port needs --tls-cert and --tls-key");
        return -1;
    }
    if (o->irc_tls_port >= 0 && !o->tls_cert) {
        snprintf(err, errlen, "--irc-tls-port needs --tls-cert and --tls-key");
        return -1;
    }
    if (o->https_port >= 0 && !o->tls_cert) {
        snprintf(err, errlen, "--https-port needs --tls-cert and --tls-key");
        return -1;
    }
    return 0;
}

void options_conn_limits(const struct options *o, struct conn_limits *lim)
{
    *lim = (struct conn_limits){
        .max_line = (size_t)o->max_line,
        .max_outbuf = (size_t)o->max_outbuf,
        .rate = (double)o->rate,
        .burst = (double)o->burst,
        .idle_timeout = (int)o->idle_timeout,
        .login_timeout = (int)o->login_timeout,
        .flood_timeout = (int)o->flood_timeout,
        .handshake_timeout = (int)o->tls_handshake_timeout,
        .max_per_ip = (unsigned)o->max_per_ip,
        .connect_rate = (double)o->connect_rate,
        .connect_burst = (double)o->connect_burst,
        .sndbuf = (int)o->sndbuf,
        .rcvbuf = (int)o->rcvbuf,
    };
}

void options_hub_limits(const struct options *o, struct hub_limits *lim)
{
    *lim = (struct hub_limits){
        .max_name = (uint32_t)o->max_name,
        .max_rooms = (uint32_t)o->max_rooms,
        .max_announce = (uint32_t)o->max_announce,
        .max_list = (uint32_t)o->max_list,
        .notice_storm = (uint32_t)o->notice_storm,
        .turn_fanout = (uint32_t)o->turn_fanout,
    };
}
