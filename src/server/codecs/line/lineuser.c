/* lineuser.c - a plain-protocol connection's state and replies (see lineuser.h). */
#include "server/codecs/line/lineuser.h"
#include "server/roommodes.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/text.h"
#include "server/conn.h"

/* Most users sit in #lobby: its name needs no copy of its own. */
static char lobby[] = HUB_DEFAULT_ROOM;

static int in_room(const struct user *u, const char *room)
{
    for (uint16_t i = 0; i < u->nrooms; i++)
        if (text_ieq(hub_room_name(u->rooms[i]), room))
            return 1;
    return 0;
}

const char *line_current(struct conn *c)
{
    const char *cur = c->state;
    struct user *u = c->user;
    if (cur && u && !in_room(u, cur))
        line_set_current(c, u->nrooms ? hub_room_name(u->rooms[u->nrooms - 1]) : NULL);
    return c->state;
}

int line_set_current(struct conn *c, const char *room)
{
    char *fresh = !room ? NULL : strcmp(room, lobby) == 0 ? lobby : strdup(room);
    line_forget(c);
    c->state = fresh;
    return room && !fresh ? -1 : 0;
}

void line_forget(struct conn *c)
{
    if (c->state != lobby)
        free(c->state);
    c->state = NULL;
}

void line_reply(struct conn *c, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2) {
        /* Cut to leave room for the '\n', but not inside a UTF-8 sequence (the
         * text may be a user's): line[n] is the first byte dropped, so back up
         * while it continues a character, dropping that character whole. */
        n = sizeof line - 2;
        while (n > 0 && ((unsigned char)line[n] & 0xC0) == 0x80)
            n--;
    }
    line[n++] = '\n';
    struct msg *m = msg_new(line, (size_t)n);
    if (m) {
        conn_send(c, m);
        msg_unref(m);
    }
}

/* Room names in errors are shown with their '#' even if the user left it out. */
static const char *hash_unless(const char *room)
{
    return room[0] == '#' ? "" : "#";
}

void line_error(struct conn *c, enum hub_err err, const char *arg)
{
    const struct hub_limits *lim = hub_limits(conn_hub(c));
    switch (err) {
    case HUB_OK:
    case HUB_EALREADY:
        return;
    case HUB_ENOMEM:
        line_reply(c, "!! server out of memory, try again");
        return;
    case HUB_ENICKTAKEN:
        line_reply(c, "!! name taken: %s", arg);
        return;
    case HUB_EBADNICK:
        line_reply(c, "!! invalid name: %s (1-%u visible characters of one script, no spaces, no <>*,)", arg,
                   (unsigned)lim->max_name);
        return;
    case HUB_EBADROOM:
        line_reply(c, "!! invalid room name: %s%s", hash_unless(arg), arg);
        return;
    case HUB_ENOUSER:
        line_reply(c, "!! no such user: %s", arg);
        return;
    case HUB_ENOTINROOM:
        line_reply(c, "!! you are not in %s%s", hash_unless(arg), arg);
        return;
    case HUB_ENOSUCHROOM:
        line_reply(c, "!! no such room: %s%s", hash_unless(arg), arg);
        return;
    case HUB_EBUSY:
        line_reply(c, "!! server busy, try again");
        return;
    case HUB_ETOOMANYROOMS:
        line_reply(c, "!! too many rooms (max %u)", (unsigned)lim->max_rooms);
        return;
    /* Room keepers (issue 13): arg is the room, except where a name or mask is wrong. */
    case HUB_EBANNED:
        line_reply(c, "!! you are banned from %s%s", hash_unless(arg), arg);
        return;
    case HUB_EINVITEONLY:
        line_reply(c, "!! %s%s is invite-only (+i): an operator of it must /invite you", hash_unless(arg), arg);
        return;
    case HUB_EBADKEY:
        line_reply(c, "!! %s%s needs its key (+k): /join %s%s KEY", hash_unless(arg), arg, hash_unless(arg), arg);
        return;
    case HUB_EFULL:
        line_reply(c, "!! %s%s is full (+l)", hash_unless(arg), arg);
        return;
    case HUB_ENOTOP:
        line_reply(c, "!! you are not an operator of %s%s", hash_unless(arg), arg);
        return;
    case HUB_ECANNOTSEND:
        line_reply(c, "!! you cannot speak in %s%s (moderated, +m, or you are banned)", hash_unless(arg), arg);
        return;
    case HUB_ETARGETNOTIN:
        line_reply(c, "!! %s is not in that room", arg);
        return;
    case HUB_EONROOM:
        line_reply(c, "!! %s is in that room already", arg);
        return;
    case HUB_ELISTFULL:
        line_reply(c, "!! the room's lists are full (%d masks): remove some first", RM_MAXLIST);
        return;
    case HUB_EBADMASK:
        line_reply(c, "!! invalid mask, key or limit: %s", arg);
        return;
    case HUB_EUNKNOWNMODE:
        line_reply(c, "!! unknown mode: %s (modes: %s %s, members: o v)", arg, RM_FLAGS, "k l b e I");
        return;
    case HUB_ENOTOPER:
        line_reply(c, "!! you are not a server operator (/oper NAME PASSWORD)");
        return;
    }
}

int line_quit(struct conn *c, const char *reason)
{
    if (!c->user) {
        conn_close(c, "quit", 1);
        return 1;
    }
    line_reply(c, "-- bye %s", c->user->name);
    conn_close(c, "quit", 1); /* (after the goodbye is queued, before the user leaves: the log names it) */
    hub_disconnect(conn_hub(c), c->user, reason && *reason ? reason : NULL);
    c->user = NULL;
    return 1;
}
