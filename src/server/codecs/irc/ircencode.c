/* ircencode.c - hub events to IRC lines (see ircencode.h). */
#include "server/codecs/irc/ircencode.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "server/codecs/irc/ircmsg.h"
#include "server/codecs/irc/ircuser.h"
#include "server/conn.h"
#include "server/hub.h"
#include "server/roommodes.h"

/* ==== A growing buffer of lines ==== */

struct out {
    char *p;
    size_t n, cap;
    int failed;
};

static void out_grow(struct out *o, size_t more)
{
    if (o->failed || o->n + more + 1 <= o->cap)
        return;
    size_t cap = o->cap ? o->cap : 512;
    while (cap < o->n + more + 1)
        cap *= 2;
    char *p = realloc(o->p, cap);
    if (!p) {
        o->failed = 1;
        return;
    }
    o->p = p;
    o->cap = cap;
}

static void out_add(struct out *o, const char *s, size_t len)
{
    out_grow(o, len);
    if (o->failed)
        return;
    memcpy(o->p + o->n, s, len);
    o->n += len;
    o->p[o->n] = '\0';
}

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[600];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        o->failed = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        out_add(o, small, (size_t)n);
        return;
    }
    out_grow(o, (size_t)n);
    if (o->failed)
        return;
    va_start(ap, fmt);
    vsnprintf(o->p + o->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    o->n += (size_t)n;
}

static struct msg *out_msg(struct out *o)
{
    struct msg *m = o->failed || o->n == 0 ? NULL : msg_new(o->p, o->n);
    free(o->p);
    return m;
}

/* ==== Prefixes and tags ==== */

const char *irc_mask(const struct user *u, const char *nick, char *out, size_t len)
{
    char uh[HUB_NAME_MAX + 32];
    snprintf(out, len, "%s!%s", nick, irc_userhost(u, uh, sizeof uh));
    return out;
}

/* "@time=...;msgid=...;+client=tags " for the variant's capabilities, or "".
 * part > 0 names the part of a message cut into several lines, each with its
 * own msgid. out holds TAGS_LEN bytes. */
#define TAGS_LEN (128 + IRC_TAGS_MAX)
static const char *tags_for(const struct hub_event *ev, unsigned variant, int part, char *out, size_t len)
{
    size_t n = 0;
    out[0] = '\0';
    if (variant & CAP_SERVER_TIME) {
        time_t secs = (time_t)(ev->time_ms / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        n += (size_t)snprintf(out + n, len - n, "@time=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                              tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ev->time_ms % 1000));
    }
    if ((variant & CAP_MESSAGE_TAGS) && ev->id) {
        n += (size_t)snprintf(out + n, len - n, "%smsgid=%" PRIx64, n ? ";" : "@", ev->id);
        if (part > 1)
            n += (size_t)snprintf(out + n, len - n, "-%d", part);
    }
    if ((variant & CAP_MESSAGE_TAGS) && ev->tags && n + strlen(ev->tags) + 3 < len)
        n += (size_t)snprintf(out + n, len - n, "%s%s", n ? ";" : "@", ev->tags);
    if (n)
        snprintf(out + n, len - n, " ");
    return out;
}

/* One message (PRIVMSG or NOTICE) from mask to target, as many lines as the
 * text needs: each body at most 510 bytes, cut between characters. */
static void add_message(struct out *o, const struct hub_event *ev, unsigned variant, const char *mask,
                        const char *cmd, const char *target, const char *text, int action)
{
    char head[IRC_LINE_MAX + HUB_ROOM_MAX];
    int hn = snprintf(head, sizeof head, ":%s %s %s :%s", mask, cmd, target, action ? "\x01" "ACTION " : "");
    const char *tail = action ? "\x01" : "";
    size_t room = IRC_BODY_MAX - (size_t)hn - strlen(tail);
    size_t len = strlen(text);
    int part = 1;
    char *tags = malloc(TAGS_LEN);
    if (!tags) {
        o->failed = 1;
        return;
    }
    do {
        size_t k = irc_fit(text, len, room);
        out_printf(o, "%s%s%.*s%s\r\n", tags_for(ev, variant, part++, tags, TAGS_LEN), head, (int)k, text, tail);
        text += k, len -= k;
    } while (len > 0);
    free(tags);
}

/* A line about from (JOIN, PART, QUIT, NICK, TOPIC, AWAY), with tags. */
static void add_event(struct out *o, const struct hub_event *ev, unsigned variant, const char *mask,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void add_event(struct out *o, const struct hub_event *ev, unsigned variant, const char *mask,
                      const char *fmt, ...)
{
    char tags[TAGS_LEN], body[IRC_LINE_MAX * 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    int n = snprintf(NULL, 0, ":%s %s", mask, body);
    size_t keep = strlen(body);
    if (n > IRC_BODY_MAX) /* a long reason: cut it, between characters */
        keep = irc_fit(body, keep, keep - (size_t)(n - IRC_BODY_MAX));
    out_printf(o, "%s:%s %.*s\r\n", tags_for(ev, variant, 0, tags, sizeof tags), mask, (int)keep, body);
}

/* ==== Listings (NAMES, WHO, LIST) ==== */

static struct hub *hub_of(const struct user *to)
{
    return conn_hub(to->ctx);
}

/* A listing names at most --max-list entries (hub.h): say so, as a server
 * NOTICE before the end numeric, when it names fewer than matched. */
static void add_cut_note(struct out *o, const struct hub_event *ev, const struct user *to, const char *what)
{
    if (ev->count >= ev->total)
        return;
    out_printf(o, ":%s NOTICE %s :*** %zu of %zu %s shown (the server lists at most %zu)\r\n", irc_conf.server_name,
               to->name, ev->count, ev->total, what, ev->count);
}

/* "@", "+", "@+" (multi-prefix) or "" for member modes. */
static const char *prefix_of(const struct hub_event *ev, size_t i, const struct irc_state *st, char out[3])
{
    unsigned m = ev->modes ? ev->modes[i] : 0;
    int all = st && (st->caps & CAP_MULTI_PREFIX);
    size_t n = 0;
    if (m & MM_OP)
        out[n++] = '@';
    if ((m & MM_VOICE) && (all || !n))
        out[n++] = '+';
    out[n] = '\0';
    return out;
}

static void add_names(struct out *o, const struct hub_event *ev, const struct user *to)
{
    const struct irc_state *st = irc_state_of(to);
    char head[128 + HUB_ROOM_MAX];
    struct room *r = hub_find_room(hub_of(to), ev->room);
    char kind = r && (hub_room_modes(r, NULL, NULL) & RM_SECRET) ? '@' : '=';
    int hn = snprintf(head, sizeof head, ":%s 353 %s %c %s :", irc_conf.server_name, to->name, kind, ev->room);
    char line[IRC_LINE_MAX];
    size_t n = 0;
    for (size_t i = 0; i < ev->count; i++) {
        char item[HUB_NAME_MAX * 2 + 32], pfx[3];
        struct user *u = hub_find_user(hub_of(to), ev->names[i]);
        size_t pn = strlen(prefix_of(ev, i, st, pfx));
        memcpy(item, pfx, pn);
        if (st && (st->caps & CAP_USERHOST_IN_NAMES) && u)
            irc_mask(u, u->name, item + pn, sizeof item - pn);
        else
            snprintf(item + pn, sizeof item - pn, "%s", ev->names[i]);
        size_t k = strlen(item);
        if (n && (size_t)hn + n + 1 + k > IRC_BODY_MAX) {
            out_printf(o, "%s%.*s\r\n", head, (int)n, line);
            n = 0;
        }
        if (n)
            line[n++] = ' ';
        memcpy(line + n, item, k);
        n += k;
    }
    if (n)
        out_printf(o, "%s%.*s\r\n", head, (int)n, line);
    add_cut_note(o, ev, to, "users");
    out_printf(o, ":%s 366 %s %s :End of /NAMES list.\r\n", irc_conf.server_name, to->name, ev->room);
}

/* One 352 line about u, seen in channel. */
static void add_who_line(struct out *o, const struct user *to, const char *channel, const struct user *u,
                         const char *prefix)
{
    const struct irc_state *st = irc_state_of(u);
    char uh[HUB_NAME_MAX + 32];
    irc_userhost(u, uh, sizeof uh);
    char *at = strchr(uh, '@');
    *at = '\0';
    out_printf(o, ":%s 352 %s %s %s %s %s %s %s%s%s :0 %s\r\n", irc_conf.server_name, to->name, channel, uh, at + 1,
               irc_conf.server_name, u->name, u->away ? "G" : "H", u->oper ? "*" : "", prefix,
               st && st->realname ? st->realname : u->name);
}

static void add_who(struct out *o, const struct hub_event *ev, const struct user *to)
{
    for (size_t i = 0; i < ev->count; i++) {
        struct user *u = hub_find_user(hub_of(to), ev->names[i]);
        char pfx[3];
        if (u)
            add_who_line(o, to, ev->room, u, prefix_of(ev, i, irc_state_of(to), pfx));
    }
    add_cut_note(o, ev, to, "users");
    out_printf(o, ":%s 315 %s %s :End of WHO list\r\n", irc_conf.server_name, to->name, ev->room);
}

static void add_list(struct out *o, const struct hub_event *ev, const struct user *to)
{
    out_printf(o, ":%s 321 %s Channel :Users  Name\r\n", irc_conf.server_name, to->name);
    for (size_t i = 0; i < ev->count; i++) {
        struct room *r = hub_find_room(hub_of(to), ev->names[i]);
        const char *topic = r ? hub_room_topic(r, NULL, NULL) : "";
        out_printf(o, ":%s 322 %s %s %u :%s\r\n", irc_conf.server_name, to->name, ev->names[i],
                   (unsigned)ev->sizes[i], topic);
    }
    add_cut_note(o, ev, to, "channels");
    out_printf(o, ":%s 323 %s :End of /LIST\r\n", irc_conf.server_name, to->name);
}

/* ==== Events ==== */

static struct msg *encode(const struct hub_event *ev, const struct user *to)
{
    struct out o = {0};
    unsigned v = to->variant;
    const struct irc_state *st = irc_state_of(to);
    char mask[HUB_NAME_MAX * 2 + 48];
    if (ev->from)
        irc_mask(ev->user, ev->from, mask, sizeof mask);
    const char *cmd = ev->flags & HUB_NOTICE ? "NOTICE" : "PRIVMSG";
    if ((ev->flags & HUB_TAGMSG) && (ev->type == EV_SAY || ev->type == EV_PRIVMSG || ev->type == EV_PRIVECHO)) {
        if (!(v & CAP_MESSAGE_TAGS) || (ev->type == EV_PRIVECHO && !(st && (st->caps & CAP_ECHO_MESSAGE))))
            return NULL; /* TAGMSG is for those who asked for tags */
        add_event(&o, ev, v, mask, "TAGMSG %s", ev->type == EV_SAY ? ev->room : ev->to);
        return out_msg(&o);
    }
    switch (ev->type) {
    case EV_SAY:
        add_message(&o, ev, v, mask, cmd, ev->room, ev->text, 0);
        break;
    case EV_ACTION:
        add_message(&o, ev, v, mask, "PRIVMSG", ev->room, ev->text, 1);
        break;
    case EV_PRIVECHO:
        if (!st || !(st->caps & CAP_ECHO_MESSAGE))
            return NULL;
        /* fall through */ /* the sender's copy reads as the recipient's does */
    case EV_PRIVMSG:
        add_message(&o, ev, v, mask, ev->flags & HUB_ACTION ? "PRIVMSG" : cmd, ev->to, ev->text,
                    (ev->flags & HUB_ACTION) != 0);
        break;
    case EV_JOIN:
        add_event(&o, ev, v, mask, "JOIN %s", ev->room);
        break;
    case EV_PART:
        if (ev->text && *ev->text)
            add_event(&o, ev, v, mask, "PART %s :%s", ev->room, ev->text);
        else
            add_event(&o, ev, v, mask, "PART %s", ev->room);
        break;
    case EV_QUIT:
        add_event(&o, ev, v, mask, "QUIT :%s", ev->text && *ev->text ? ev->text : "Client Quit");
        break;
    case EV_NICK:
        add_event(&o, ev, v, mask, "NICK :%s", ev->to);
        break;
    case EV_TOPIC:
        add_event(&o, ev, v, mask, "TOPIC %s :%s", ev->room, ev->text);
        break;
    case EV_AWAY:
        if (!(v & CAP_AWAY_NOTIFY))
            return NULL;
        if (ev->text)
            add_event(&o, ev, v, mask, "AWAY :%s", ev->text);
        else
            add_event(&o, ev, v, mask, "AWAY");
        break;
    case EV_REALNAME:
        if (!(v & CAP_SETNAME))
            return NULL;
        add_event(&o, ev, v, mask, "SETNAME :%s", ev->text);
        break;
    case EV_SHUTDOWN:
        out_printf(&o, "ERROR :Closing link: (Server shutting down)\r\n");
        break;
    case EV_MODE:
        add_event(&o, ev, v, mask, "MODE %s %s", ev->room, ev->text);
        break;
    case EV_KICK:
        add_event(&o, ev, v, mask, "KICK %s %s :%s", ev->room, ev->to, ev->text ? ev->text : ev->from);
        break;
    case EV_INVITE:
        add_event(&o, ev, v, mask, "INVITE %s :%s", ev->to, ev->room);
        break;
    case EV_WALLOPS:
        add_event(&o, ev, v, mask, "WALLOPS :%s", ev->text);
        break;
    case EV_KILL:
        out_printf(&o, ":%s KILL %s :%s\r\nERROR :Closing link: (%s)\r\n", ev->from, ev->to, ev->text, ev->text);
        break;
    case EV_WHO:
        if (st && st->listing == LISTING_WHO)
            add_who(&o, ev, to);
        else
            add_names(&o, ev, to);
        break;
    case EV_ROOMS:
        add_list(&o, ev, to);
        break;
    case EV_SUMMARY: /* a notice storm, folded (hub.h) */
        out_printf(&o, ":%s NOTICE %s :*** %u joined, %u left in the last %u s\r\n", irc_conf.server_name, ev->room,
                   ev->joined, ev->left, ev->window_s);
        break;
    }
    return out_msg(&o);
}

static void deliver(void *ctx, struct msg *m)
{
    irc_out(ctx, m); /* a labeled command's own echoes are held for its label */
}

static void drop(void *ctx)
{
    conn_close(ctx, "killed", 1);
}

const struct user_ops irc_user_ops = {encode, deliver, irc_userhost, drop};
