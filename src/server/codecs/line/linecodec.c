/* linecodec.c - the plain line protocol: lines in, hub calls; hub events, lines out.
 * Every line format here is listed in docs/protocol.md. */
#include "server/codecs/line/linecodec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "server/codecs/line/commands.h"
#include "server/conn.h"
#include "core/text.h"

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

static struct msg *encode(const struct hub_event *ev)
{
    switch (ev->type) {
    case EV_WELCOME:
        return msg_printf("-- welcome to natter, %s! /nick NAME picks a name, /help lists commands\n", ev->from);
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
    case EV_SWITCH:
        return msg_printf("-- you are now in %s\n", ev->room);
    case EV_WHO:
    case EV_ROOMS:
        return encode_list(ev);
    case EV_BYE:
        return msg_printf("-- bye %s\n", ev->from);
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

/* Room names in errors are shown with their '#' even if the user left it out. */
static const char *hash_unless(const char *room)
{
    return room[0] == '#' ? "" : "#";
}

void line_error(struct conn *c, enum hub_err err, const char *arg)
{
    const struct hub_limits *lim = hub_limits(conn_hub());
    switch (err) {
    case HUB_OK:
        return;
    case HUB_ENOMEM:
        conn_printf(c, "!! server out of memory, try again");
        return;
    case HUB_ENICKTAKEN:
        conn_printf(c, "!! name taken: %s", arg);
        return;
    case HUB_EBADNICK:
        conn_printf(c, "!! invalid name: %s (1-%u printable characters, no spaces, no <>*,)", arg,
                    (unsigned)lim->max_name);
        return;
    case HUB_EBADROOM:
        conn_printf(c, "!! invalid room name: %s%s", hash_unless(arg), arg);
        return;
    case HUB_ENOUSER:
        conn_printf(c, "!! no such user: %s", arg);
        return;
    case HUB_ENOTINROOM:
        conn_printf(c, "!! you are not in %s%s", hash_unless(arg), arg);
        return;
    case HUB_ENOSUCHROOM:
        conn_printf(c, "!! no such room: %s%s", hash_unless(arg), arg);
        return;
    case HUB_ENOROOM:
        conn_printf(c, "!! you are in no room (try /join #lobby)");
        return;
    case HUB_ETOOMANYROOMS:
        conn_printf(c, "!! too many rooms (max %u)", (unsigned)lim->max_rooms);
        return;
    }
}

int line_quit(struct conn *c, const char *reason)
{
    if (c->user) {
        hub_bye(conn_hub(), c->user);
        hub_disconnect(conn_hub(), c->user, reason && *reason ? reason : NULL);
        c->user = NULL;
    }
    conn_close(c, "quit", 1);
    return 1;
}

/* Sanitised copy of the current line; grown to fit the longest line seen. */
static char *clean;
static size_t clean_cap;

static int lc_line(struct conn *c, const char *line, size_t len)
{
    if (!c->user)
        return 1;
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
    line_error(c, hub_say(conn_hub(), c->user, text), NULL);
    return 0;
}

static int lc_open(struct conn *c)
{
    c->user = hub_connect(conn_hub(), &line_ops, c);
    return c->user ? 0 : -1;
}

static void lc_overlong(struct conn *c, size_t max)
{
    conn_printf(c, "!! line too long (max %zu bytes), discarded", max);
}

static void lc_close(struct conn *c, const char *reason)
{
    if (c->user) {
        hub_disconnect(conn_hub(), c->user, reason);
        c->user = NULL;
    }
    if (!clean_cap || conn_count() > 1)
        return;
    free(clean); /* the last connection is going: give the buffer back */
    clean = NULL;
    clean_cap = 0;
}

const struct codec line_codec = {
    .name = "line",
    .open = lc_open,
    .line = lc_line,
    .overlong = lc_overlong,
    .close = lc_close,
};
