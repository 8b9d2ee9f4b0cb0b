/* options.h - natterd's settings. One table (options.c) gives every option its
 * long name (also its key in a configuration file), its short letter, its kind,
 * its range, its default and its help line, so the flags, the file and --help
 * cannot drift apart. Numbers are whole numbers, parsed strictly in their range. */
#ifndef NATTER_OPTIONS_H
#define NATTER_OPTIONS_H

#include <stddef.h>

struct conn_limits;
struct hub_limits;

#define OPT_MAX_BINDS 16
#ifndef OPT_DEFAULT_CONFIG
#define OPT_DEFAULT_CONFIG "/etc/natter/natterd.conf"
#endif

struct owned;

struct options {
    const char *bind[OPT_MAX_BINDS]; /* none: every address */
    int nbind;
    long long port;
    long long max_clients; /* 0 = as many as descriptors allow */
    long long keepalive;   /* seconds; 0 = off */
    long long max_line, max_outbuf, rate, burst;
    long long idle_timeout, login_timeout, flood_timeout, max_per_ip;
    long long max_name, max_rooms, max_announce;
    /* hardening, second round (issue 9) */
    long long connect_rate, connect_burst, sndbuf, rcvbuf, max_list, notice_storm, turn_fanout;
    /* TLS (issue 11): a listener for the plain protocol over TLS when both
     * files are given; tls_port -1 = the default, 8889. */
    const char *tls_cert, *tls_key;
    long long tls_port, tls_handshake_timeout;
    long long history, history_days, history_max; /* history.c */
    const char *db;                               /* NULL: the default path */
    int history_private;
    int verbose;
    /* IRC (codecs/irc/) */
    long long irc_port, irc_tls_port; /* irc_tls_port -1 = the default, 6697 */
    long long sts_duration;           /* IRCv3 sts, on the IRC TLS port */
    int no_irc;
    const char *server_name, *network, *irc_motd, *irc_password;
    /* The browser page and IRC over WebSocket (issue 14; codecs/http/):
     * https_port -1 = the default, 8443 (only with --tls-cert). */
    long long http_port, https_port, http_timeout;
    const char *web_origin; /* NULL: the page's own origin */
    int no_web;
    /* Running as a service (issue 8). */
    const char *config;   /* the file read, or NULL */
    int check;            /* --check: only read the configuration */
    const char *motd;     /* a line after the welcome, or NULL */
    const char *user;     /* drop root to this user after binding, or NULL */
    const char *pid_file;
    int syslog;
    struct owned *owned;  /* the text values read from the file (options_free) */
    /* Server operators (issue 13; operauth.c) */
    const char *oper[32]; /* NAME:HASH; OPER_MAX in operauth.h */
    int noper;
    int hash_password;
};

void options_defaults(struct options *o);
/* Set the option called name (a long name, without "--") from text: 0, or -1
 * with a message in err ("--max-line: 'nan' is not a whole number from 64 to
 * 16777216"). For flags, value is NULL or "yes"/"no". */
int options_set(struct options *o, const char *name, const char *value, char *err, size_t errlen);
/* Parse and check the command line and remember it (argv must stay valid).
 * --help and --version print and exit 0; a usage error is printed and exits 2. */
void options_parse_argv(int argc, char **argv);
void options_forget_argv(void);
/* The options in force: the defaults, then the configuration file (--config, or
 * OPT_DEFAULT_CONFIG when it exists; --config '' reads none), then the command
 * line over it; checked. At start and again on every reload. 0, or -1 with err
 * ("FILE:LINE: ...") and o holding nothing to free. */
int options_load(struct options *o, char *err, size_t errlen);
/* Free the text values o owns (from a file); o is invalid after it. */
void options_free(struct options *o);

/* Compare the running options with the ones just loaded (next): report(name,
 * live, arg) for each option that differs; live = 0 means it needs a restart,
 * and next gets the running value back so that what it says stays true.
 * Returns the number of live changes, or -1 when out of memory. */
typedef void options_change_fn(const char *name, int live, void *arg);
int options_changes(const struct options *running, struct options *next, options_change_fn *report, void *arg);
/* Rules between options; 0, or -1 with a message in err. */
int options_check(const struct options *o, char *err, size_t errlen);

void options_conn_limits(const struct options *o, struct conn_limits *lim);
void options_hub_limits(const struct options *o, struct hub_limits *lim);

#endif
