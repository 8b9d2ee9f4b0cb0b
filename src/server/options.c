/* options.c - natterd's options: the table, parsing, --help (see options.h). */
#include "server/options.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/conn.h"
#include "server/hub.h"

enum kind {
    FLAG,    /* no value */
    NUMBER,  /* a whole number in [min, max] */
    TEXT,    /* a string */
    TEXTS,   /* a string, repeatable */
};

struct spec {
    const char *name;   /* --name, and the key in a configuration file */
    int letter;         /* -x, or 0 */
    enum kind kind;
    size_t offset;      /* of the field in struct options */
    size_t count;       /* TEXTS: of the int counting its values */
    long long min, max; /* NUMBER; TEXTS: max values */
    const char *arg;    /* the value's name in --help */
    const char *help;
    const char *deflt;  /* the default in words, when the number does not say it */
};

#define AT(field) offsetof(struct options, field)

static const struct spec specs[] = {
    {"bind", 'b', TEXTS, AT(bind), AT(nbind), 0, OPT_MAX_BINDS, "ADDR", "address to listen on, repeatable", "every address, IPv6 and IPv4"},
    {"port", 'p', NUMBER, AT(port), 0, 0, 65535, "PORT", "TCP port; 0 picks a free one", NULL},
    {"max-clients", 0, NUMBER, AT(max_clients), 0, 1, 10000000, "N", "connections at once",
     "as many as descriptors allow"},
    {"max-line", 0, NUMBER, AT(max_line), 0, 64, 1 << 24, "BYTES", "longest input line", NULL},
    {"max-outbuf", 0, NUMBER, AT(max_outbuf), 0, 4096, 1 << 30, "BYTES",
     "output queued for one client before it is dropped", NULL},
    {"max-name", 0, NUMBER, AT(max_name), 0, 1, 31, "N", "longest name, in characters", NULL},
    {"max-rooms", 0, NUMBER, AT(max_rooms), 0, 1, 1000, "N", "rooms one user may be in", NULL},
    {"max-announce", 0, NUMBER, AT(max_announce), 0, 0, 1000000000, "N",
     "no join/leave notices in rooms larger than this", NULL},
    {"rate", 0, NUMBER, AT(rate), 0, 0, 1000000, "LINES", "lines per second per client, 0 = unlimited", NULL},
    {"burst", 0, NUMBER, AT(burst), 0, 1, 1000000000, "LINES", "lines a client may send at once", NULL},
    {"max-per-ip", 0, NUMBER, AT(max_per_ip), 0, 0, 1000000000, "N", "connections from one address, 0 = unlimited",
     NULL},
    {"flood-timeout", 0, NUMBER, AT(flood_timeout), 0, 0, 1000000, "SECS", "drop clients over --rate this long, 0 = never",
     NULL},
    {"login-timeout", 0, NUMBER, AT(login_timeout), 0, 0, 1000000, "SECS",
     "drop new clients that send nothing this long, 0 = never", NULL},
    {"idle-timeout", 0, NUMBER, AT(idle_timeout), 0, 0, 1000000, "SECS", "drop clients silent this long, 0 = never",
     NULL},
    {"keepalive", 0, NUMBER, AT(keepalive), 0, 0, 1000000, "SECS", "TCP keepalive idle time to find dead peers, 0 = off",
     NULL},
    /* Hardening, second round: churn, kernel buffers, listings, storms, fairness. */
    {"connect-rate", 0, NUMBER, AT(connect_rate), 0, 0, 1000000, "N",
     "new connections per minute from one address (/32, /64), 0 = unlimited", NULL},
    {"connect-burst", 0, NUMBER, AT(connect_burst), 0, 1, 1000000, "N", "new connections at once from one address", NULL},
    {"sndbuf", 0, NUMBER, AT(sndbuf), 0, 0, 1 << 26, "BYTES", "kernel send buffer per client, 0 = autotuned", NULL},
    {"rcvbuf", 0, NUMBER, AT(rcvbuf), 0, 0, 1 << 26, "BYTES", "kernel receive buffer per client, 0 = autotuned", NULL},
    {"max-list", 0, NUMBER, AT(max_list), 0, 1, 1000000, "N", "entries named in one /who or /rooms reply", NULL},
    {"notice-storm", 0, NUMBER, AT(notice_storm), 0, 0, 1000000, "N",
     "join/leave notices per room per 10 s before they are summed up, 0 = never", NULL},
    {"turn-fanout", 0, NUMBER, AT(turn_fanout), 0, 0, 1000000000, "N",
     "deliveries per loop turn before senders to rooms over 64 wait, 0 = no budget", NULL},
    /* TLS (issue 11; transport/tls.c): the listener exists only with a certificate and a key. */
    {"tls-cert", 0, TEXT, AT(tls_cert), 0, 0, 0, "FILE", "TLS certificate chain (PEM), reread on SIGHUP", "none: no TLS"},
    {"tls-key", 0, TEXT, AT(tls_key), 0, 0, 0, "FILE", "its private key (PEM, unencrypted), reread on SIGHUP", "none"},
    {"tls-port", 0, NUMBER, AT(tls_port), 0, 0, 65535, "PORT", "TLS port for the plain protocol; 0 picks a free one",
     "8889"},
    {"tls-handshake-timeout", 0, NUMBER, AT(tls_handshake_timeout), 0, 0, 1000000, "SECS",
     "drop clients whose TLS handshake takes this long, 0 = never", NULL},
    /* History (history.c): replay on join, /history, /search, kept in SQLite. */
    {"history", 0, NUMBER, AT(history), 0, 0, 1000, "N", "messages replayed to who joins a room; 0 = history off",
     NULL},
    {"db", 0, TEXT, AT(db), 0, 0, 0, "PATH", "the history database; :memory: keeps none on disk",
     "$STATE_DIRECTORY/natter.db, else ./natter.db"},
    {"history-private", 0, FLAG, AT(history_private), 0, 0, 0, NULL, "keep private messages in history too", NULL},
    {"history-days", 0, NUMBER, AT(history_days), 0, 0, 1000000, "DAYS", "delete history older than this, 0 = never",
     NULL},
    {"history-max", 0, NUMBER, AT(history_max), 0, 0, 1000000000000LL, "N",
     "messages kept per room, 0 = no limit", NULL},
    {"verbose", 'v', FLAG, AT(verbose), 0, 0, 0, NULL, "log more", NULL},
    /* IRC on the same rooms (codecs/irc/): its own port; the plain port hands IRC clients over too. */
    {"irc-port", 0, NUMBER, AT(irc_port), 0, 0, 65535, "PORT", "TCP port for IRC clients; 0 picks a free one", NULL},
    {"irc-tls-port", 0, NUMBER, AT(irc_tls_port), 0, 0, 65535, "PORT",
     "TLS port for IRC clients (with --tls-cert); 0 picks a free one", "6697"},
    {"sts-duration", 0, NUMBER, AT(sts_duration), 0, 0, 31536000, "SECS",
     "how long IRC clients should keep to TLS (IRCv3 sts), 0 = let them stop", NULL},
    {"no-irc", 0, FLAG, AT(no_irc), 0, 0, 0, NULL, "no IRC port (the plain port still takes IRC clients)", NULL},
    {"server-name", 0, TEXT, AT(server_name), 0, 0, 0, "NAME", "the server's IRC name", "the host name"},
    {"network", 0, TEXT, AT(network), 0, 0, 0, "NAME", "the IRC network's name", "natter"},
    {"motd", 0, TEXT, AT(motd), 0, 0, 0, "FILE", "message of the day for IRC clients, read at start", "none"},
    {"irc-password", 0, TEXT, AT(irc_password), 0, 0, 0, "PASS", "password IRC clients must give (PASS)", "none"},
    /* Server operators (issue 13; operauth.c): passwords checked on a worker thread. */
    {"oper", 0, TEXTS, AT(oper), AT(noper), 0, 32, "NAME:HASH",
     "a server operator and the hash of its password (from --hash-password), repeatable", "none"},
    {"hash-password", 0, FLAG, AT(hash_password), 0, 0, 0, NULL,
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
    };
}

static const struct spec *find(const char *name)
{
    for (size_t i = 0; i < NSPECS; i++)
        if (strcmp(specs[i].name, name) == 0)
            return &specs[i];
    return NULL;
}

/* Digits only: no sign, space, exponent or fraction ("1e3", " 5", "2.5", "nan"). */
static int whole_number(const char *s, long long *out)
{
    if (!*s)
        return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno)
        return -1;
    *out = v;
    return 0;
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
        if (whole_number(value, &v) < 0 || v < sp->min || v > sp->max) {
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

void options_parse_argv(struct options *o, int argc, char **argv)
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
    int ch;
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
        if (options_set(o, sp->name, sp->kind == FLAG ? NULL : optarg, err, sizeof err) < 0) {
            fprintf(stderr, "natterd: %s\n", err);
            exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "natterd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        exit(2);
    }
    char err[256];
    if (options_check(o, err, sizeof err) < 0) {
        fprintf(stderr, "natterd: %s\n", err);
        exit(2);
    }
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
