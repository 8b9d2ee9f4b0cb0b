/* commands.c - the plain protocol's slash commands: parse, call the hub, reply.
 * Each command is one row of the table below; /help is generated from it. */
#include "server/codecs/line/commands.h"

#include <string.h>

#include "core/text.h"
#include "server/codecs/line/linehistory.h"
#include "server/codecs/line/keepers.h"
#include "server/codecs/line/lineuser.h"
#include "server/conn.h"
#include "server/hub.h"

/* Split off the first space-separated word of *s; *s moves past it and the spaces. */
static char *next_word(char **s)
{
    char *p = *s;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p)
        return NULL;
    char *word = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    if (*p)
        *p++ = '\0';
    while (*p == ' ' || *p == '\t')
        p++;
    *s = p;
    return word;
}

static int usage(struct conn *c, const char *text)
{
    line_reply(c, "!! usage: %s", text);
    return 0;
}

static int no_room(struct conn *c)
{
    line_reply(c, "!! you are in no room (try /join #lobby)");
    return 0;
}

static int cmd_nick(struct conn *c, char *args)
{
    char *name = next_word(&args);
    if (!name || *args)
        return usage(c, "/nick NAME");
    line_error(c, hub_nick(conn_hub(c), c->user, name), name);
    return 0;
}

/* "-- topic of #dev: text (set by bob)", or nothing when it has none. */
static void show_topic(struct conn *c, const char *room)
{
    struct room *r = hub_find_room(conn_hub(c), room);
    const char *by, *topic = r ? hub_room_topic(r, &by, NULL) : "";
    if (!*topic)
        return;
    char clean_topic[HUB_TOPIC_MAX + 1];
    text_strip_format(clean_topic, topic); /* it may have been set from IRC */
    line_reply(c, "-- topic of %s: %s (set by %s)", hub_room_name(r), clean_topic, by);
}

static int cmd_join(struct conn *c, char *args)
{
    char *room = next_word(&args), *key = next_word(&args);
    if (!room || *args)
        return usage(c, "/join #room [key]");
    const char *joined;
    enum hub_err err = hub_join_key(conn_hub(c), c->user, room, key, &joined);
    if (err == HUB_OK || err == HUB_EALREADY) {
        if (line_set_current(c, joined) < 0)
            err = HUB_ENOMEM;
        else if (err == HUB_EALREADY)
            line_reply(c, "-- you are now in %s", joined);
        else {
            show_topic(c, joined);
            line_history_replay(c, joined);
        }
    }
    line_error(c, err, room);
    return 0;
}

static int cmd_topic(struct conn *c, char *args)
{
    char *room = NULL;
    if (args[0] == '#')
        room = next_word(&args);
    const char *current = line_current(c);
    if (!room && !current)
        return no_room(c);
    const char *where = room ? room : current;
    if (*args) {
        line_error(c, hub_topic(conn_hub(c), c->user, where, strcmp(args, "-") == 0 ? "" : args), where);
        return 0;
    }
    struct room *r = hub_find_room(conn_hub(c), where);
    if (!r) {
        line_error(c, HUB_ENOSUCHROOM, where);
        return 0;
    }
    if (!*hub_room_topic(r, NULL, NULL))
        line_reply(c, "-- no topic in %s", hub_room_name(r));
    else
        show_topic(c, where);
    return 0;
}

static int cmd_away(struct conn *c, char *args)
{
    line_error(c, hub_away(conn_hub(c), c->user, args), NULL);
    if (*args)
        line_reply(c, "-- you are marked away: %s", args);
    else
        line_reply(c, "-- you are back");
    return 0;
}

static int cmd_part(struct conn *c, char *args)
{
    char *room = NULL;
    if (args[0] == '#')
        room = next_word(&args);
    const char *current = line_current(c);
    if (!room && !current)
        return no_room(c);
    line_error(c, hub_part(conn_hub(c), c->user, room ? room : current, *args ? args : NULL), room ? room : current);
    return 0;
}

static int cmd_msg(struct conn *c, char *args)
{
    char *to = next_word(&args);
    if (!to || !*args)
        return usage(c, "/msg NAME text");
    enum hub_err err = hub_privmsg(conn_hub(c), c->user, to, args);
    line_error(c, err, to);
    struct user *u = err == HUB_OK ? hub_find_user(conn_hub(c), to) : NULL;
    if (u && u->away) {
        char away[HUB_AWAY_MAX + 1];
        text_strip_format(away, u->away); /* it may have been set from IRC */
        line_reply(c, "-- %s is away: %s", u->name, away);
    }
    return 0;
}

static int cmd_me(struct conn *c, char *args)
{
    if (!*args)
        return usage(c, "/me text");
    const char *current = line_current(c);
    if (!current)
        return no_room(c);
    line_error(c, hub_action(conn_hub(c), c->user, current, args), current);
    return 0;
}

/* Listings cost the server in proportion to their size and to the entries
 * examined: charge the asker with both (no cap: a bigger listing costs more).
 * The reply is a listing: however big, it never makes a reading client look
 * too slow (conn_listing). HUB_EBUSY: ask again next turn. */
static int listing(struct conn *c, enum hub_err err, size_t before, size_t work, const char *arg)
{
    if (err == HUB_EBUSY)
        return LINE_AGAIN;
    line_error(c, err, arg);
    double units = (double)work / LINE_TOKEN_ENTRIES;
    if (conn_queued(c) > before)
        units += (double)(conn_queued(c) - before) / LINE_TOKEN_BYTES;
    conn_charge(c, units);
    return 0;
}

static int cmd_who(struct conn *c, char *args)
{
    char *room = next_word(&args);
    const char *current = line_current(c);
    if (!room && !current)
        return no_room(c);
    char *filter = next_word(&args);
    if (filter && *args)
        return usage(c, "/who [#room [TEXT]]");
    size_t before = conn_queued(c), work = 0;
    conn_listing(c, 1);
    enum hub_err err = hub_who(conn_hub(c), c->user, room ? room : current, filter, &work);
    conn_listing(c, 0);
    return listing(c, err, before, work, room ? room : current);
}

static int cmd_rooms(struct conn *c, char *args)
{
    char *filter = next_word(&args);
    if (filter && *args)
        return usage(c, "/rooms [TEXT]");
    size_t before = conn_queued(c), work = 0;
    conn_listing(c, 1);
    enum hub_err err = hub_rooms(conn_hub(c), c->user, filter, &work);
    conn_listing(c, 0);
    return listing(c, err, before, work, NULL);
}

static int cmd_quit(struct conn *c, char *args)
{
    return line_quit(c, args);
}

static int cmd_help(struct conn *c, char *args);

static const struct command {
    const char *name;
    int (*run)(struct conn *c, char *args);
    const char *synopsis;
    const char *help;
} commands[] = {
    {"nick", cmd_nick, "/nick NAME", "change your name"},
    {"join", cmd_join, "/join #room [key]", "join a room (or switch to it) and talk there"},
    {"part", cmd_part, "/part [#room] [reason]", "leave a room (default: the current one)"},
    {"msg", cmd_msg, "/msg NAME text", "send a private message"},
    {"me", cmd_me, "/me text", "act: * you text"},
    {"topic", cmd_topic, "/topic [#room] [text|-]", "show or set a room's topic (- clears it)"},
    {"away", cmd_away, "/away [text]", "mark yourself away (no text: back)"},
    {"who", cmd_who, "/who [#room [TEXT]]", "list the users in a room (whose names contain TEXT)"},
    {"rooms", cmd_rooms, "/rooms [TEXT]", "list the rooms (whose names contain TEXT)"},
    {"history", line_history_cmd, "/history [#room] [N]", "the last N messages of a room (or NAME: your talk with NAME)"},
    {"search", line_search_cmd, "/search words", "find messages with all the words, in your rooms"},
    {"help", cmd_help, "/help", "this list"},
    {"quit", cmd_quit, "/quit [reason]", "leave (so does a line that is just: bye)"},
};

static int cmd_help(struct conn *c, char *args)
{
    (void)args;
    line_reply(c, "-- commands (a line without / talks in your current room; // sends a /):");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        line_reply(c, "--   %-28s %s", commands[i].synopsis, commands[i].help);
    keepers_help(c);
    return 0;
}

int commands_run(struct conn *c, char *line)
{
    char *args = line + 1;
    char *name = line[1] == ' ' || line[1] == '\t' ? NULL : next_word(&args); /* "/ nick" is no /nick */
    if (name) {
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
            if (text_ieq(name, commands[i].name))
                return commands[i].run(c, args);
        int rc = keepers_run(c, name, args);
        if (rc >= 0)
            return rc;
    }
    line_reply(c, "!! unknown command: /%s (try /help)", name ? name : "");
    return 0;
}
