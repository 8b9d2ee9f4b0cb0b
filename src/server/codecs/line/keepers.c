/* keepers.c - plain commands for room keepers and server operators (see keepers.h).
 * Every line here is listed in docs/protocol.md, "Room keepers". */
#include "server/codecs/line/keepers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/text.h"
#include "server/codecs/line/lineuser.h"
#include "server/conn.h"
#include "server/hub.h"
#include "server/operauth.h"
#include "server/roommodes.h"

/* The first space-separated word of *s; *s moves past it. */
static char *word(char **s)
{
    char *p = *s;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p)
        return NULL;
    char *w = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    if (*p)
        *p++ = '\0';
    while (*p == ' ' || *p == '\t')
        p++;
    *s = p;
    return w;
}

/* An optional "#room" first, else the current room; NULL (and a reply) when none. */
static const char *which_room(struct conn *c, char **args)
{
    if ((*args)[0] == '#')
        return word(args);
    const char *cur = line_current(c);
    if (!cur)
        line_reply(c, "!! you are in no room (try /join #lobby)");
    return cur;
}

/* ==== Modes ==== */

static void show_list(struct conn *c, struct room *r, char letter)
{
    const struct mask_list *l = hub_room_list(r, letter);
    const char *what = letter == 'b' ? "bans" : letter == 'e' ? "ban exceptions" : "invite exceptions";
    if (!l->n) {
        line_reply(c, "-- no %s in %s", what, hub_room_name(r));
        return;
    }
    line_reply(c, "-- %s of %s:", what, hub_room_name(r));
    for (uint16_t i = 0; i < l->n; i++)
        line_reply(c, "--   %s (set by %s)", l->v[i].mask, l->v[i].by);
}

static void show_modes(struct conn *c, struct room *r)
{
    char modes[128];
    int mine = hub_member_modes(r, c->user);
    hub_room_mode_string(r, mine >= 0 || c->user->oper, modes, sizeof modes);
    line_reply(c, "-- modes of %s: %s", hub_room_name(r), modes);
}

/* Change modes of room (or show them, or a list): "+o-v alice bob". */
static int apply_modes(struct conn *c, const char *room, const char *modes, char **args, int nargs)
{
    struct hub *h = conn_hub(c);
    struct room *r = hub_find_room(h, room);
    if (!r) {
        line_error(c, HUB_ENOSUCHROOM, room);
        return 0;
    }
    if (!modes) {
        show_modes(c, r);
        return 0;
    }
    struct mode_step steps[32];
    enum mode_parse status;
    char bad;
    size_t n = mode_parse(modes, args, nargs, steps, 32, &status, &bad);
    char letter[2] = {bad, 0};
    if (status == MP_UNKNOWN)
        line_error(c, HUB_EUNKNOWNMODE, letter);
    else if (status == MP_NEEDARG)
        line_reply(c, "!! mode %c needs an argument: /mode %s +%c ARG", bad, hub_room_name(r), bad);
    enum hub_err errs[32];
    enum hub_err err = hub_mode(h, c->user, room, steps, n, errs);
    if (err) {
        line_error(c, err, room);
        return 0;
    }
    int told_notop = 0;
    for (size_t i = 0; i < n; i++) {
        if (errs[i] == HUB_OK) {
            if (mode_kind(steps[i].letter) == 'A' && !steps[i].arg)
                show_list(c, r, steps[i].letter);
            continue;
        }
        if (errs[i] == HUB_ENOTOP) {
            if (!told_notop++)
                line_error(c, HUB_ENOTOP, hub_room_name(r));
            continue;
        }
        char l2[2] = {steps[i].letter, 0};
        line_error(c, errs[i], errs[i] == HUB_EUNKNOWNMODE ? l2 : steps[i].arg ? steps[i].arg : l2);
    }
    return 0;
}

static int cmd_mode(struct conn *c, char *args)
{
    const char *room = which_room(c, &args);
    if (!room)
        return 0;
    char *modes = word(&args);
    char *params[16];
    int n = 0;
    for (char *w; n < 16 && (w = word(&args));)
        params[n++] = w;
    return apply_modes(c, room, modes, params, n);
}

/* /op NAME and friends: one member mode on one name. */
static int member_mode(struct conn *c, char *args, const char *modes, const char *usage)
{
    const char *room = which_room(c, &args);
    if (!room)
        return 0;
    char *name = word(&args);
    if (!name || *args) {
        line_reply(c, "!! usage: %s", usage);
        return 0;
    }
    return apply_modes(c, room, modes, &name, 1);
}

static int cmd_op(struct conn *c, char *args) { return member_mode(c, args, "+o", "/op [#room] NAME"); }
static int cmd_deop(struct conn *c, char *args) { return member_mode(c, args, "-o", "/deop [#room] NAME"); }
static int cmd_voice(struct conn *c, char *args) { return member_mode(c, args, "+v", "/voice [#room] NAME"); }
static int cmd_devoice(struct conn *c, char *args) { return member_mode(c, args, "-v", "/devoice [#room] NAME"); }

static int list_mode(struct conn *c, char *args, const char *modes, const char *usage)
{
    const char *room = which_room(c, &args);
    if (!room)
        return 0;
    char *mask = word(&args);
    if (!mask || *args) {
        line_reply(c, "!! usage: %s", usage);
        return 0;
    }
    return apply_modes(c, room, modes, &mask, 1);
}

static int cmd_ban(struct conn *c, char *args) { return list_mode(c, args, "+b", "/ban [#room] MASK (NAME, NAME!user@host, *!*@host)"); }
static int cmd_unban(struct conn *c, char *args) { return list_mode(c, args, "-b", "/unban [#room] MASK"); }

static int cmd_bans(struct conn *c, char *args)
{
    const char *room = which_room(c, &args);
    if (!room)
        return 0;
    return apply_modes(c, room, "beI", NULL, 0);
}

/* ==== Kick and invite ==== */

static int cmd_kick(struct conn *c, char *args)
{
    const char *room = which_room(c, &args);
    if (!room)
        return 0;
    char *name = word(&args);
    if (!name) {
        line_reply(c, "!! usage: /kick [#room] NAME [reason]");
        return 0;
    }
    enum hub_err err = hub_kick(conn_hub(c), c->user, room, name, *args ? args : NULL);
    line_error(c, err, err == HUB_ENOUSER || err == HUB_ETARGETNOTIN ? name : room);
    return 0;
}

static int cmd_invite(struct conn *c, char *args)
{
    char *name = word(&args);
    if (!name) {
        line_reply(c, "!! usage: /invite NAME [#room]");
        return 0;
    }
    const char *room = which_room(c, &args);
    if (!room)
        return 0;
    enum hub_err err = hub_invite(conn_hub(c), c->user, room, name);
    if (err == HUB_OK)
        line_reply(c, "-- you invited %s to %s", name, room);
    line_error(c, err, err == HUB_ENOUSER || err == HUB_EONROOM ? name : room);
    return 0;
}

/* ==== Server operators ==== */

static void oper_done(uint64_t id, const char *name, int ok)
{
    struct conn *c = conn_by_id(id);
    if (!c || !c->user)
        return;
    if (!ok) {
        line_reply(c, "!! wrong operator name or password");
        return;
    }
    hub_set_oper(conn_hub(c), c->user, 1);
    line_reply(c, "-- you are a server operator now (as %s)", name);
}

static int cmd_oper(struct conn *c, char *args)
{
    char *name = word(&args), *password = word(&args);
    if (!name || !password || *args) {
        line_reply(c, "!! usage: /oper NAME PASSWORD");
        return 0;
    }
    long wait = 0;
    switch (oper_submit(c->id, conn_peer(c), name, password, oper_done, &wait)) {
    case OPER_QUEUED:
        break;
    case OPER_NONE:
        line_reply(c, "!! this server has no operators");
        break;
    case OPER_BUSY:
        line_reply(c, "!! too many operator logins at once, try again in a moment");
        break;
    case OPER_WAIT:
        line_reply(c, "!! too many failed operator logins: wait %ld s", (wait + 999) / 1000);
        break;
    case OPER_NOMEM:
        line_error(c, HUB_ENOMEM, NULL);
        break;
    }
    return 0;
}

static int cmd_kill(struct conn *c, char *args)
{
    char *name = word(&args);
    if (!name) {
        line_reply(c, "!! usage: /kill NAME [reason]");
        return 0;
    }
    enum hub_err err = hub_kill(conn_hub(c), c->user, name, *args ? args : NULL);
    if (err == HUB_OK && !conn_closing(c))
        line_reply(c, "-- %s is off the server", name);
    line_error(c, err, name);
    return conn_closing(c);
}

static int cmd_wallops(struct conn *c, char *args)
{
    if (!*args) {
        line_reply(c, "!! usage: /wallops text");
        return 0;
    }
    line_error(c, hub_wallops(conn_hub(c), c->user, args), NULL);
    return 0;
}

static int cmd_stats(struct conn *c, char *args)
{
    (void)args;
    if (!c->user->oper) {
        line_error(c, HUB_ENOTOPER, NULL);
        return 0;
    }
    struct hub_stats st;
    hub_stats(conn_hub(c), &st);
    line_reply(c, "-- stats: %zu connections, %zu users, %zu rooms, %zu operators", conn_count(), st.users, st.rooms,
               st.opers);
    line_reply(c, "-- stats: memory %ld KiB, %llu messages, %.1f per second (last %d s)", oper_memory_kib(),
               (unsigned long long)st.messages, st.per_second, HUB_RATE_SECONDS);
    return 0;
}

/* ==== The table ==== */

static const struct keeper_cmd {
    const char *name;
    int (*run)(struct conn *c, char *args);
    const char *synopsis;
    const char *help;
    int fans_out; /* tells the room it names (or the current one): waits on the fairness budget */
} cmds[] = {
    {"op", cmd_op, "/op [#room] NAME", "make NAME an operator of the room (operators only)", 1},
    {"deop", cmd_deop, "/deop [#room] NAME", "take it back", 1},
    {"voice", cmd_voice, "/voice [#room] NAME", "let NAME speak in a moderated (+m) room", 1},
    {"devoice", cmd_devoice, "/devoice [#room] NAME", "take it back", 1},
    {"kick", cmd_kick, "/kick [#room] NAME [reason]", "put NAME out of the room", 1},
    {"ban", cmd_ban, "/ban [#room] MASK", "ban NAME or NAME!user@host (plain users: NAME!" LINE_USERHOST ")", 1},
    {"unban", cmd_unban, "/unban [#room] MASK", "lift a ban", 1},
    {"bans", cmd_bans, "/bans [#room]", "list the bans and exceptions", 0},
    {"invite", cmd_invite, "/invite NAME [#room]", "invite NAME (needed in +i rooms)", 0},
    {"mode", cmd_mode, "/mode [#room] [+-modes args]", "show or change modes: t n m i s, k KEY, l N, b e I MASK, o v NAME", 1},
    {"oper", cmd_oper, "/oper NAME PASSWORD", "become a server operator", 0},
    {"kill", cmd_kill, "/kill NAME [reason]", "put NAME off the server (server operators)", 0},
    {"wallops", cmd_wallops, "/wallops text", "a message to every server operator (server operators)", 0},
    {"stats", cmd_stats, "/stats", "connections, rooms, memory, messages per second (server operators)", 0},
};

/* Fairness (hub.h): a command that tells a heavy room waits for the next turn
 * when this one's budget is spent, like talking there. The room is peeked at,
 * not parsed: the line is offered again whole. */
static int budget_ready(struct conn *c, const char *args)
{
    char room[HUB_ROOM_MAX];
    while (*args == ' ' || *args == '\t')
        args++;
    if (*args == '#') {
        size_t n = strcspn(args, " \t");
        snprintf(room, sizeof room, "%.*s", (int)(n < sizeof room ? n : sizeof room - 1), args);
    } else if (line_current(c)) {
        snprintf(room, sizeof room, "%s", line_current(c));
    } else {
        return 1;
    }
    return hub_budget_ready(conn_hub(c), room) == HUB_OK;
}

int keepers_run(struct conn *c, const char *name, char *args)
{
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (text_ieq(name, cmds[i].name)) {
            if (cmds[i].fans_out && !budget_ready(c, args))
                return LINE_AGAIN;
            return cmds[i].run(c, args);
        }
    return -1;
}

void keepers_help(struct conn *c)
{
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        line_reply(c, "--   %-28s %s", cmds[i].synopsis, cmds[i].help);
}

struct msg *keepers_encode(const struct hub_event *ev)
{
    switch (ev->type) {
    case EV_MODE:
        return msg_printf("-- %s sets mode %s in %s\n", ev->from, ev->text, ev->room);
    case EV_KICK: {
        if (!ev->text || !*ev->text)
            return msg_printf("-- %s kicked %s out of %s\n", ev->from, ev->to, ev->room);
        char *why = strdup(ev->text);
        if (!why)
            return NULL;
        text_strip_format(why, why);
        struct msg *m = msg_printf("-- %s kicked %s out of %s (%s)\n", ev->from, ev->to, ev->room, why);
        free(why);
        return m;
    }
    case EV_INVITE:
        return msg_printf("-- %s invites you to %s (/join %s)\n", ev->from, ev->room, ev->room);
    case EV_WALLOPS: {
        char *text = strdup(ev->text);
        if (!text)
            return NULL;
        text_strip_format(text, text);
        struct msg *m = msg_printf("-- wallops from %s: %s\n", ev->from, text);
        free(text);
        return m;
    }
    case EV_KILL: {
        char *why = strdup(ev->text);
        if (!why)
            return NULL;
        text_strip_format(why, why); /* the reason may come from IRC */
        struct msg *m = msg_printf("-- you are off the server: %s\n", why);
        free(why);
        return m;
    }
    default:
        return NULL;
    }
}
