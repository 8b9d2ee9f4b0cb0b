/* linecodec.c - the plain line protocol: lines in, hub calls; hub events, lines out.
 * Every line format here is listed in docs/protocol.md. */
#include "server/codecs/line/linecodec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/text.h"
#include "server/codecs/line/commands.h"
#include "server/codecs/line/lineuser.h"
#include "core/lineframe.h"
#include "server/conn.h"
#include "server/hub.h"

/* ==== Events to lines ==== */

/* "-- prefix a b c suffix\n" for the WHO and ROOMS listings. */
static struct msg *encode_list(const struct hub_event *ev)
{
    size_t cap = 64 + (ev->room ? strlen(ev->room) : 0);
    for (size_t i = 0; i < ev->count; i++)
        cap += strlen(ev->names[i]) + 16;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t n;
    if (ev->type == EV_WHO) {
        n = (size_t)snprintf(s, cap, "-- %s:", ev->room);
        for (size_t i = 0; i < ev->count; i++)
            n += (size_t)snprintf(s + n, cap - n, " %s", ev->names[i]);
        n += (size_t)snprintf(s + n, cap - n, " (%zu user%s)\n", ev->count, ev->count == 1 ? "" : "s");
    } else {
        n = (size_t)snprintf(s, cap, "-- rooms:");
        for (size_t i = 0; i < ev->count; i++)
            n += (size_t)snprintf(s + n, cap - n, " %s (%u)", ev->names[i], ev->sizes[i]);
        if (ev->count == 0)
            n += (size_t)snprintf(s + n, cap - n, " none");
        n += (size_t)snprintf(s + n, cap - n, "\n");
    }
    struct msg *m = msg_new(s, n);
    free(s);
    return m;
}

/* "-- NAME what" or "-- NAME what (reason)". The reason is formatted straight
 * into the msg: an intermediate buffer could cut a long one (and a UTF-8
 * sequence) in half. */
static struct msg *notice_with_reason(const char *name, const char *what, const char *reason)
{
    if (!reason || !*reason)
        return msg_printf("-- %s %s\n", name, what);
    return msg_printf("-- %s %s (%s)\n", name, what, reason);
}

static struct msg *encode(const struct hub_event *ev, const struct user *to)
{
    (void)to; /* every plain user reads the same */
    switch (ev->type) {
    case EV_SAY:
        return msg_printf("%s <%s> %s\n", ev->room, ev->from, ev->text);
    case EV_ACTION:
        return msg_printf("%s * %s %s\n", ev->room, ev->from, ev->text);
    case EV_PRIVMSG:
        return msg_printf("*%s* %s\n", ev->from, ev->text);
    case EV_PRIVECHO:
        return msg_printf("-> *%s* %s\n", ev->to, ev->text);
    case EV_JOIN:
        return msg_printf("-- %s joined %s\n", ev->from, ev->room);
    case EV_PART:
    {
        char what[sizeof "left " + HUB_ROOM_MAX];
        snprintf(what, sizeof what, "left %s", ev->room);
        return notice_with_reason(ev->from, what, ev->text);
    }
    case EV_QUIT:
        return notice_with_reason(ev->from, "quit", ev->text);
    case EV_NICK:
        return msg_printf("-- %s is now known as %s\n", ev->from, ev->to);
    case EV_WHO:
    case EV_ROOMS:
        return encode_list(ev);
    case EV_SHUTDOWN:
        return msg_printf("-- server shutting down\n");
    }
    return NULL;
}

static void deliver(void *ctx, struct msg *m)
{
    conn_send(ctx, m);
}

static const struct user_ops line_ops = {encode, deliver};

/* ==== Lines to hub calls ==== */

/* Sanitised copy of the current line; grown to fit the longest line seen. */
static char *clean;
static size_t clean_cap;

/* One line: "bye", a command, or something to say in the current room.
 * Returns non-zero when the connection is closing. */
static int run_line(struct conn *c, const char *line, size_t len)
{
    if (3 * len + 1 > clean_cap) {
        char *p = realloc(clean, 3 * len + 1);
        if (!p) {
            line_error(c, HUB_ENOMEM, NULL);
            return 0;
        }
        clean = p;
        clean_cap = 3 * len + 1;
    }
    size_t n = text_sanitize(clean, line, len);
    if (n == 0)
        return 0;
    if (strcmp(clean, "bye") == 0)
        return line_quit(c, NULL);
    if (clean[0] == '/' && clean[1] != '/')
        return commands_run(c, clean);
    const char *text = clean[0] == '/' ? clean + 1 : clean;
    const char *room = line_current(c);
    if (!room)
        line_reply(c, "!! you are in no room (try /join #lobby)");
    else
        line_error(c, hub_say(conn_hub(c), c->user, room, text), room);
    return 0;
}

/* One framed line (NULL: one that was too long), then its flood-control cost. */
static int lc_line(void *ctx, char *line, size_t len)
{
    struct conn *c = ctx;
    if (conn_closing(c) || !c->user)
        return 0;
    conn_spoke(c);
    size_t max = conn_limits(c)->max_line;
    if (!line) {
        line_reply(c, "!! line too long (max %zu bytes), discarded", max);
        /* discarded, but read all the same: it costs what the longest line costs */
        return conn_spend(c, 1 + (double)(max / LINE_TOKEN_BYTES));
    }
    if (run_line(c, line, len))
        return 0;
    return conn_spend(c, 1 + (double)(len / LINE_TOKEN_BYTES));
}

static size_t lc_input(struct conn *c, char *data, size_t len)
{
    return lineframe_input(&c->frame, data, len, conn_limits(c)->max_line, lc_line, c);
}

static int lc_open(struct conn *c)
{
    struct hub *h = conn_hub(c);
    if (hub_connect(h, &line_ops, c, NULL, &c->user) != HUB_OK)
        return -1;
    c->user->tag = conn_log_id(c);
    line_reply(c, "-- welcome to natter, %s! /nick NAME picks a name, /help lists commands", c->user->name);
    if (c->profile->motd)
        line_reply(c, "-- %s", c->profile->motd);
    const char *joined;
    enum hub_err err = hub_join(h, c->user, HUB_DEFAULT_ROOM, &joined);
    if (err == HUB_OK && line_set_current(c, joined) < 0)
        err = HUB_ENOMEM;
    line_error(c, err, HUB_DEFAULT_ROOM);
    return 0;
}

static void lc_limit(struct conn *c, enum conn_limit what, double value)
{
    switch (what) {
    case LIMIT_RATE:
        line_reply(c, "!! slow down: more than %g lines per second, reading paused", value);
        return;
    case LIMIT_FLOOD:
        line_reply(c, "!! flooding, disconnected");
        return;
    case LIMIT_LOGIN:
        line_reply(c, "!! nothing received for %g seconds, disconnected", value);
        return;
    case LIMIT_IDLE:
        line_reply(c, "!! idle for %g seconds, disconnected", value);
        return;
    case LIMIT_FULL:
    case LIMIT_PER_ADDR:
        return; /* refusals: see lc_refusal */
    }
}

static const char *lc_refusal(enum conn_limit what)
{
    return what == LIMIT_PER_ADDR ? "!! too many connections from your address\n" : "!! server full, try again later\n";
}

static void lc_close(struct conn *c, const char *reason)
{
    if (c->user) {
        hub_disconnect(conn_hub(c), c->user, reason);
        c->user = NULL;
    }
    line_forget(c);
    if (!clean_cap || conn_count() > 1)
        return;
    free(clean); /* the last connection is going: give the buffer back */
    clean = NULL;
    clean_cap = 0;
}

static const char *lc_who(const struct conn *c)
{
    return c->user ? c->user->name : NULL;
}

const struct codec line_codec = {
    .name = "line",
    .open = lc_open,
    .input = lc_input,
    .limit = lc_limit,
    .refusal = lc_refusal,
    .close = lc_close,
    .who = lc_who,
};
