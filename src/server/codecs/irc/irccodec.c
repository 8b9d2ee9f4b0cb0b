/* irccodec.c - IRC as a codec: lines in (tags, cleaning, the command table),
 * the words for limits, and the settings (see irccodec.h). */
#include "server/codecs/irc/irccodec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/lineframe.h"
#include "core/text.h"
#include "server/codecs/irc/irccmds.h"
#include "server/codecs/irc/ircmsg.h"
#include "server/codecs/irc/ircuser.h"
#include "server/conn.h"
#include "server/hub.h"

/* ==== Settings ==== */

#define MOTD_LINES_MAX 100
#define MOTD_LINE_MAX 400

static void free_lines(char **lines)
{
    if (!lines)
        return;
    for (char **l = lines; *l; l++)
        free(*l);
    free(lines);
}

static void free_motd(void)
{
    free_lines(irc_conf.motd);
    irc_conf.motd = NULL;
}

/* The MOTD is read at startup and on a reload (SIGHUP), never for a client: no
 * file is read on the loop while it serves. A file that cannot be read leaves
 * the MOTD in use. */
static int read_motd(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char **lines = calloc(MOTD_LINES_MAX + 1, sizeof *lines);
    char buf[4096];
    size_t n = 0;
    while (lines && n < MOTD_LINES_MAX && fgets(buf, sizeof buf, f)) {
        size_t len = strcspn(buf, "\r\n");
        if (len > MOTD_LINE_MAX)
            len = irc_fit(buf, len, MOTD_LINE_MAX);
        char *clean = malloc(3 * len + 1);
        if (!clean)
            break;
        irc_sanitize(clean, buf, len);
        lines[n++] = clean;
    }
    fclose(f);
    if (!lines) {
        errno = ENOMEM;
        return -1;
    }
    free_motd();
    irc_conf.motd = lines;
    return 0;
}

void irc_set_sts(int port, long duration)
{
    irc_conf.sts_port = port;
    irc_conf.sts_duration = duration;
}

int irc_reload_motd(const char *motd_path)
{
    if (!motd_path) {
        free_motd();
        return 0;
    }
    return read_motd(motd_path);
}

/* Our own copies: the options' strings go with the configuration a reload replaces. */
static char *own[3];

static void free_own(void)
{
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        free(own[i]);
        own[i] = NULL;
    }
}

static const char *keep(int i, const char *s)
{
    free(own[i]);
    own[i] = s ? strdup(s) : NULL;
    return own[i];
}

int irc_setup(const char *server_name, const char *network, const char *password, const char *motd_path)
{
    irc_conf.server_name = keep(0, server_name);
    irc_conf.network = keep(1, network);
    irc_conf.password = keep(2, password);
    if ((server_name && !irc_conf.server_name) || (network && !irc_conf.network) || (password && !irc_conf.password)) {
        errno = ENOMEM;
        return -1;
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(irc_conf.created, sizeof irc_conf.created, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return irc_reload_motd(motd_path);
}

void irc_teardown(void)
{
    free_own();
    free_motd();
}

/* ==== Lines in ==== */

/* The cleaned copy of the current line; grown to fit the longest line seen. */
static char *clean;
static size_t clean_cap;

static int run_line(struct conn *c, char *line, size_t len)
{
    if (3 * len + 1 > clean_cap) {
        char *p = realloc(clean, 3 * len + 1);
        if (!p) {
            irc_num(c, "NOTICE", ":*** Server out of memory, line dropped");
            return 0;
        }
        clean = p;
        clean_cap = 3 * len + 1;
    }
    irc_sanitize(clean, line, len);
    struct irc_msg m;
    if (irc_parse(clean, &m) < 0)
        return 0;
    if (m.tags_len > IRC_TAGS_MAX || len - m.tags_len > conn_limits(c)->max_line) {
        irc_num(c, "417", ":Input line was too long");
        return 0;
    }
    struct irc_state *st = c->state;
    char label[IRC_LABEL_MAX + 1];
    if ((st->caps & CAP_LABELED_RESPONSE) && irc_tag(&m, "label", label, sizeof label) && label[0])
        irc_label_start(c, label);
    int closing = irc_run(c, &m);
    if (closing == IRC_AGAIN)
        st->label[0] = '\0'; /* nothing was done: the label comes again with the line */
    else
        irc_label_done(c);
    return closing;
}

static int ic_line(void *ctx, char *line, size_t len)
{
    struct conn *c = ctx;
    if (conn_closing(c))
        return 0;
    size_t max = conn_limits(c)->max_line;
    if (!line) {
        irc_num(c, "417", ":Input line was too long");
        return conn_spend(c, 1 + (double)(max / IRC_LINE_MAX));
    }
    int rc = run_line(c, line, len);
    if (rc == IRC_AGAIN) { /* the server is too busy for it this turn */
        conn_yield(c);
        return LINEFRAME_AGAIN;
    }
    if (rc)
        return 0;
    return conn_spend(c, 1 + (double)(len / IRC_LINE_MAX));
}

static size_t ic_input(struct conn *c, char *data, size_t len)
{
    /* Tags come on top of the line's own length. */
    size_t discarded = 0;
    size_t used = lineframe_input(&c->frame, data, len, conn_limits(c)->max_line + IRC_TAGS_MAX, ic_line, c,
                                  &discarded);
    /* Bytes thrown away cost what bytes of a line cost: reading them is work. */
    if (discarded && !conn_closing(c))
        conn_spend(c, (double)discarded / IRC_LINE_MAX);
    return used;
}

/* ==== The codec ==== */

static int ic_open(struct conn *c)
{
    struct irc_state *st = calloc(1, sizeof *st);
    if (!st)
        return -1;
    st->pass_ok = irc_conf.password == NULL;
    c->state = st;
    return 0;
}

static void ic_limit(struct conn *c, enum conn_limit what, double value)
{
    char text[128];
    switch (what) {
    case LIMIT_RATE:
        irc_send(c, ":%s NOTICE %s :*** Slow down: more than %g lines a second, reading paused", irc_conf.server_name,
                 irc_nick(c), value);
        return;
    case LIMIT_FLOOD:
        irc_send(c, "ERROR :Closing link: %s (Excess flood)", irc_nick(c));
        return;
    case LIMIT_LOGIN:
        snprintf(text, sizeof text, "Closing link: %s (Registration timeout: %g seconds)", irc_nick(c), value);
        irc_send(c, "ERROR :%s", text);
        return;
    case LIMIT_IDLE:
        irc_send(c, "ERROR :Closing link: %s (Ping timeout: %g seconds)", irc_nick(c), value);
        return;
    case LIMIT_QUIET:
        irc_send(c, "PING :%s", irc_conf.server_name);
        return;
    case LIMIT_FULL:
    case LIMIT_PER_ADDR:
    case LIMIT_CONNECT_RATE:
        return;
    }
}

static const char *ic_refusal(enum conn_limit what)
{
    switch (what) {
    case LIMIT_PER_ADDR:
        return "ERROR :Closing link: (Too many connections from your address)\r\n";
    case LIMIT_CONNECT_RATE: /* as ngIRCd and others word their connect throttle */
        return "ERROR :Closing link: (Too many new connections from your address, try again in a minute)\r\n";
    default:
        return "ERROR :Closing link: (Server full, try again later)\r\n";
    }
}

/* The name in natterd's log lines (connect, disconnect): once registered. */
static const char *ic_who(const struct conn *c)
{
    return c->user ? c->user->name : NULL;
}

static void ic_close(struct conn *c, const char *reason)
{
    struct irc_state *st = c->state;
    if (c->user) {
        irc_remember(c->user);
        hub_disconnect(conn_hub(c), c->user, reason);
        c->user = NULL;
    }
    if (st) {
        for (uint32_t i = 0; i < st->nheld; i++)
            msg_unref(st->held[i]);
        free(st->held);
        free(st->realname);
    }
    free(st);
    c->state = NULL;
    if (!clean_cap || conn_count() > 1)
        return;
    free(clean);
    clean = NULL;
    clean_cap = 0;
}

const struct codec irc_codec = {
    .name = "irc",
    .open = ic_open,
    .input = ic_input,
    .limit = ic_limit,
    .refusal = ic_refusal,
    .close = ic_close,
    .who = ic_who,
};
