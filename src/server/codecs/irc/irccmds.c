/* irccmds.c - the IRC commands (see irccmds.h). Every numeric the commands
 * send is listed in docs/protocol.md, "IRC". */
#include "server/codecs/irc/irccmds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/names.h"
#include "core/text.h"
#include "server/codecs/irc/ircencode.h"
#include "server/codecs/irc/irchistory.h"
#include "server/codecs/irc/ircmodes.h"
#include "server/codecs/irc/ircmsg.h"
#include "server/codecs/irc/ircuser.h"
#include "server/conn.h"
#include "server/hub.h"
#include "server/roommodes.h"

#define TARGMAX 4       /* targets of one PRIVMSG or NOTICE */
#define USERHOST_MAX 5  /* nicks one USERHOST answers */
#define VERSION_STRING "natter-" NATTER_VERSION

/* Append sep (unless line is empty) and word to line (cap bytes), if they fit. */
static void append(char *line, size_t cap, const char *sep, const char *word)
{
    size_t n = strlen(line), k = strlen(sep), w = strlen(word);
    if (!n)
        k = 0;
    if (n + k + w + 1 > cap)
        return;
    memcpy(line + n, sep, k);
    memcpy(line + n + k, word, w + 1);
}

/* ==== Capabilities ==== */

static const struct cap {
    const char *name;
    unsigned bit;
} caps[] = {
    {"away-notify", CAP_AWAY_NOTIFY},
    {"batch", CAP_BATCH},
    {"cap-notify", CAP_CAP_NOTIFY},
    {"draft/chathistory", CAP_CHATHISTORY},
    {"echo-message", CAP_ECHO_MESSAGE},
    {"labeled-response", CAP_LABELED_RESPONSE},
    {"message-tags", CAP_MESSAGE_TAGS},
    {"multi-prefix", CAP_MULTI_PREFIX},
    {"server-time", CAP_SERVER_TIME},
    {"setname", CAP_SETNAME},
    {"soju.im/search", CAP_SEARCH},
    {"userhost-in-names", CAP_USERHOST_IN_NAMES},
};
#define NCAPS (sizeof caps / sizeof caps[0])

static const struct cap *find_cap(const char *name)
{
    for (size_t i = 0; i < NCAPS; i++)
        if (strcmp(caps[i].name, name) == 0)
            return &caps[i];
    return NULL;
}

/* The capabilities' effects on the hub user: its variant and echo. */
static void apply_caps(struct conn *c)
{
    struct irc_state *st = irc_st(c);
    if (!c->user)
        return;
    c->user->variant = st->caps & IRC_VARIANT_CAPS;
    c->user->echo = (st->caps & CAP_ECHO_MESSAGE) != 0;
}

static int try_register(struct conn *c);

static int cap_ls(struct conn *c, struct irc_msg *m)
{
    struct irc_state *st = irc_st(c);
    if (m->nparams > 1 && atoi(m->params[1]) >= 302) {
        st->cap_302 = 1;
        st->caps |= CAP_CAP_NOTIFY; /* implied by 302 */
    }
    char list[256] = "";
    for (size_t i = 0; i < NCAPS; i++)
        if ((caps[i].bit != CAP_CHATHISTORY && caps[i].bit != CAP_SEARCH) || conn_history(c)) /* with history on */
            append(list, sizeof list, " ", caps[i].name);
    if (irc_conf.sts_port && st->cap_302) { /* sts has values: CAP 302 clients only; never requested */
        char sts[64];
        if (conn_secure(c))
            snprintf(sts, sizeof sts, "sts=duration=%ld", irc_conf.sts_duration);
        else
            snprintf(sts, sizeof sts, "sts=port=%d", irc_conf.sts_port);
        append(list, sizeof list, " ", sts);
    }
    irc_send(c, ":%s CAP %s LS :%s", irc_conf.server_name, irc_nick(c), list);
    return 0;
}

static int cap_list(struct conn *c)
{
    struct irc_state *st = irc_st(c);
    char list[256] = "";
    for (size_t i = 0; i < NCAPS; i++)
        if (st->caps & caps[i].bit)
            append(list, sizeof list, " ", caps[i].name);
    irc_send(c, ":%s CAP %s LIST :%s", irc_conf.server_name, irc_nick(c), list);
    return 0;
}

/* All or nothing: ACK every one, or NAK the lot. */
static int cap_req(struct conn *c, struct irc_msg *m)
{
    struct irc_state *st = irc_st(c);
    const char *req = m->nparams > 1 ? m->params[1] : "";
    char copy[512];
    snprintf(copy, sizeof copy, "%s", req);
    unsigned add = 0, del = 0;
    int ok = 1;
    for (char *save, *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        int minus = w[0] == '-';
        const struct cap *cap = find_cap(w + minus);
        if (!cap || (minus && cap->bit == CAP_CAP_NOTIFY && st->cap_302) ||
            ((cap->bit == CAP_CHATHISTORY || cap->bit == CAP_SEARCH) && !conn_history(c))) { /* only with history */
            ok = 0;
            break;
        }
        if (minus)
            del |= cap->bit;
        else
            add |= cap->bit;
    }
    unsigned now = (st->caps | add) & ~del;
    if ((now & CAP_LABELED_RESPONSE) && !(now & CAP_BATCH))
        ok = 0; /* a labeled response of several lines is a batch */
    if (!ok) {
        irc_send(c, ":%s CAP %s NAK :%s", irc_conf.server_name, irc_nick(c), req);
        return 0;
    }
    st->caps = now;
    apply_caps(c);
    irc_send(c, ":%s CAP %s ACK :%s", irc_conf.server_name, irc_nick(c), req);
    return 0;
}

static int cmd_cap(struct conn *c, struct irc_msg *m)
{
    struct irc_state *st = irc_st(c);
    const char *sub = m->params[0];
    if (!c->user && (text_ieq(sub, "LS") || text_ieq(sub, "REQ")))
        st->cap_negotiating = 1;
    if (text_ieq(sub, "LS"))
        return cap_ls(c, m);
    if (text_ieq(sub, "LIST"))
        return cap_list(c);
    if (text_ieq(sub, "REQ"))
        return cap_req(c, m);
    if (text_ieq(sub, "END")) {
        if (!c->user) {
            st->cap_negotiating = 0;
            return try_register(c);
        }
        return 0;
    }
    irc_num(c, "410", "%s :Invalid CAP command", sub);
    return 0;
}

/* ==== Registration ==== */

void irc_send_isupport(struct conn *c)
{
    const struct hub_limits *lim = hub_limits(conn_hub(c));
    char tokens[24][64];
    int n = 0;
    snprintf(tokens[n++], 64, "AWAYLEN=%d", HUB_AWAY_MAX);
    snprintf(tokens[n++], 64, "CASEMAPPING=%s", NAME_CASEMAPPING);
    snprintf(tokens[n++], 64, "CHANLIMIT=#:%u", (unsigned)lim->max_rooms);
    snprintf(tokens[n++], 64, "CHANMODES=%s", RM_CHANMODES);
    snprintf(tokens[n++], 64, "CHANNELLEN=33");
    snprintf(tokens[n++], 64, "CHANTYPES=#");
    n += irc_history_isupport(c, tokens[n], 64);
    snprintf(tokens[n++], 64, "EXCEPTS=e");
    snprintf(tokens[n++], 64, "INVEX=I");
    snprintf(tokens[n++], 64, "MAXLIST=%s:%d", RM_LISTS, RM_MAXLIST);
    snprintf(tokens[n++], 64, "MODES=%d", RM_MAX_CHANGES);
    snprintf(tokens[n++], 64, "NETWORK=%.50s", irc_conf.network);
    snprintf(tokens[n++], 64, "NICKLEN=%u", (unsigned)lim->max_name);
    snprintf(tokens[n++], 64, "PREFIX=(ov)@+");
    snprintf(tokens[n++], 64, "TARGMAX=JOIN:,KICK:,NAMES:1,NOTICE:%d,PART:,PRIVMSG:%d,WHOIS:1", TARGMAX, TARGMAX);
    snprintf(tokens[n++], 64, "TOPICLEN=%d", HUB_TOPIC_MAX);
    snprintf(tokens[n++], 64, "USERLEN=%d", IRC_USERLEN + 1);
    snprintf(tokens[n++], 64, "UTF8ONLY");
    for (int i = 0; i < n; i += 13) {
        char line[IRC_LINE_MAX] = "";
        for (int k = i; k < n && k < i + 13; k++)
            append(line, sizeof line, " ", tokens[k]);
        irc_num(c, "005", "%s :are supported by this server", line);
    }
}

static int cmd_lusers(struct conn *c, struct irc_msg *m)
{
    (void)m;
    struct hub *h = conn_hub(c);
    size_t users = hub_user_count(h), rooms = hub_room_count(h);
    irc_num(c, "251", ":There are %zu users and 0 invisible on 1 servers", users);
    irc_num(c, "254", "%zu :channels formed", rooms);
    irc_num(c, "255", ":I have %zu clients and 0 servers", users);
    irc_num(c, "265", "%zu %zu :Current local users %zu, max %zu", users, users, users, users);
    irc_num(c, "266", "%zu %zu :Current global users %zu, max %zu", users, users, users, users);
    return 0;
}

static int cmd_motd(struct conn *c, struct irc_msg *m)
{
    (void)m;
    /* the --irc-motd file, else natterd's one --motd line (already sanitised) */
    const char *line = c->profile->motd;
    if (!irc_conf.motd && !line) {
        irc_num(c, "422", ":MOTD File is missing");
        return 0;
    }
    irc_num(c, "375", ":- %s Message of the day - ", irc_conf.server_name);
    if (!irc_conf.motd)
        irc_num(c, "372", ":- %s", line);
    for (char **l = irc_conf.motd; l && *l; l++)
        irc_num(c, "372", ":- %s", *l);
    irc_num(c, "376", ":End of /MOTD command.");
    return 0;
}

static void welcome(struct conn *c)
{
    char mask[HUB_NAME_MAX * 2 + 48];
    irc_num(c, "001", ":Welcome to the %s IRC Network %s", irc_conf.network, irc_mask(c->user, c->user->name, mask, sizeof mask));
    irc_num(c, "002", ":Your host is %s, running version %s", irc_conf.server_name, VERSION_STRING);
    irc_num(c, "003", ":This server was created %s", irc_conf.created);
    irc_num(c, "004", "%s %s ioZ beIiklmnostv beIklov", irc_conf.server_name, VERSION_STRING);
    irc_send_isupport(c);
    cmd_lusers(c, NULL);
    cmd_motd(c, NULL);
}

/* NICK and USER are in (and PASS if one is needed) and CAP is done: join the hub. */
static int try_register(struct conn *c)
{
    struct irc_state *st = irc_st(c);
    if (c->user || !st->nick[0] || !st->got_user || st->cap_negotiating)
        return 0;
    if (!st->pass_ok) {
        irc_num(c, "464", ":Password incorrect");
        irc_error_close(c, "bad password", "Closing link: (Bad password)");
        return 1;
    }
    enum hub_err err = hub_connect(conn_hub(c), &irc_user_ops, c, st->nick, &c->user);
    if (err == HUB_ENICKTAKEN) {
        irc_num(c, "433", "%s :Nickname is already in use", st->nick);
        st->nick[0] = '\0';
        return 0;
    }
    if (err == HUB_EBADNICK) {
        irc_num(c, "432", "%s :Erroneous nickname", st->nick);
        st->nick[0] = '\0';
        return 0;
    }
    if (err) {
        irc_error_close(c, "out of memory", "Closing link: (Server out of memory)");
        return 1;
    }
    c->user->tag = conn_log_id(c); /* renames are logged with the connection's number */
    conn_spoke(c);
    st->signon = time(NULL);
    apply_caps(c);
    welcome(c);
    return 0;
}

/* Compare in time that depends on the lengths only, not on where they differ. */
static int same_secret(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    unsigned char diff = na != nb;
    for (size_t i = 0; i < na; i++)
        diff |= (unsigned char)(a[i] ^ b[i % (nb ? nb : 1)]);
    return nb > 0 && diff == 0;
}

static int cmd_pass(struct conn *c, struct irc_msg *m)
{
    struct irc_state *st = irc_st(c);
    if (c->user) {
        irc_num(c, "462", ":You may not reregister");
        return 0;
    }
    st->pass_ok = !irc_conf.password || same_secret(m->params[0], irc_conf.password);
    return 0;
}

static int cmd_nick(struct conn *c, struct irc_msg *m)
{
    struct irc_state *st = irc_st(c);
    const char *nick = m->params[0];
    if (!*nick) {
        irc_num(c, "431", ":No nickname given");
        return 0;
    }
    struct hub *h = conn_hub(c);
    if (!c->user) {
        if (!hub_valid_name(h, nick)) {
            irc_num(c, "432", "%s :Erroneous nickname", nick);
            return 0;
        }
        if (hub_find_user(h, nick)) {
            irc_num(c, "433", "%s :Nickname is already in use", nick);
            return 0;
        }
        snprintf(st->nick, sizeof st->nick, "%s", nick);
        return try_register(c);
    }
    struct user before = *c->user; /* for WHOWAS: the name it had */
    char old[HUB_NAME_MAX];
    snprintf(old, sizeof old, "%s", c->user->name);
    before.name = old;
    enum hub_err err = hub_nick(h, c->user, nick);
    if (err == HUB_OK && strcmp(old, c->user->name) != 0)
        irc_remember(&before);
    if (err == HUB_EBADNICK)
        irc_num(c, "432", "%s :Erroneous nickname", nick);
    else if (err == HUB_ENICKTAKEN)
        irc_num(c, "433", "%s :Nickname is already in use", nick);
    return 0;
}

/* Keep at most IRC_REALNAME_MAX bytes of name, cut between characters. */
static int set_realname(struct irc_state *st, const char *name)
{
    size_t n = irc_fit(name, strlen(name), IRC_REALNAME_MAX);
    char *copy = malloc(n + 1);
    if (!copy)
        return -1;
    memcpy(copy, name, n);
    copy[n] = '\0';
    free(st->realname);
    st->realname = copy;
    return 0;
}

/* SETNAME :new realname (the setname capability): 'FAIL SETNAME' when it cannot. */
static int cmd_setname(struct conn *c, struct irc_msg *m)
{
    struct irc_state *st = irc_st(c);
    if (!*m->params[0] || set_realname(st, m->params[0]) < 0) {
        irc_send(c, ":%s FAIL SETNAME INVALID_REALNAME :Realname is not valid", irc_conf.server_name);
        return 0;
    }
    hub_realname(conn_hub(c), c->user, st->realname);
    if (st->caps & CAP_SETNAME) { /* the one who asked sees it too */
        char mask[HUB_NAME_MAX * 2 + 48];
        irc_send(c, ":%s SETNAME :%s", irc_mask(c->user, c->user->name, mask, sizeof mask), st->realname);
    }
    return 0;
}

static int cmd_user(struct conn *c, struct irc_msg *m)
{
    struct irc_state *st = irc_st(c);
    if (c->user || st->got_user) {
        irc_num(c, "462", ":You may not reregister");
        return 0;
    }
    /* "~" (no ident check) and the letters, digits and "-_." of what it gave. */
    size_t n = 0;
    st->user[n++] = '~';
    for (const char *p = m->params[0]; *p && n < sizeof st->user - 1; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-_.", *p))
            st->user[n++] = *p;
    if (n == 1)
        st->user[n++] = 'u';
    st->user[n] = '\0';
    set_realname(st, m->params[3][0] ? m->params[3] : st->user + 1);
    st->got_user = 1;
    return try_register(c);
}

/* ==== Connection ==== */

static int cmd_ping(struct conn *c, struct irc_msg *m)
{
    irc_send(c, ":%s PONG %s :%s", irc_conf.server_name, irc_conf.server_name, m->params[0]);
    return 0;
}

static int cmd_pong(struct conn *c, struct irc_msg *m)
{
    (void)c, (void)m;
    return 0; /* reading it reset the idle timer */
}

static int cmd_quit(struct conn *c, struct irc_msg *m)
{
    const char *reason = m->nparams > 0 && *m->params[0] ? m->params[0] : NULL;
    char r[HUB_AWAY_MAX + 16];
    if (reason) /* cut between characters */
        snprintf(r, sizeof r, "Quit: %.*s", (int)irc_fit(reason, strlen(reason), HUB_AWAY_MAX), reason);
    if (c->user) {
        irc_remember(c->user);
        hub_disconnect(conn_hub(c), c->user, reason ? r : "Quit");
        c->user = NULL;
    }
    char text[sizeof r + 32];
    snprintf(text, sizeof text, "Closing link: (%s)", reason ? r : "Quit");
    irc_error_close(c, "quit", text);
    return 1;
}

/* ==== Channels ==== */

/* The hub's listings (hub_who, hub_rooms), answered as NAMES, WHO or LIST: the
 * one place the IRC codec asks for them. */
static enum hub_err listing(struct conn *c, enum irc_listing kind, const char *room)
{
    struct irc_state *st = irc_st(c);
    size_t before = irc_queued(c), work = 0;
    st->listing = (uint8_t)kind;
    conn_listing(c, 1); /* however big, a listing never makes a reader look too slow */
    enum hub_err err = kind == LISTING_LIST ? hub_rooms(conn_hub(c), c->user, NULL, &work)
                                            : hub_who(conn_hub(c), c->user, room, NULL, &work);
    conn_listing(c, 0);
    st->listing = LISTING_NONE;
    /* Listings cost the server in proportion to their size and to the entries
     * looked through, as the plain protocol's do. */
    double units = (double)work / IRC_TOKEN_ENTRIES;
    size_t after = irc_queued(c);
    if (after > before)
        units += (double)(after - before) / IRC_LINE_MAX;
    conn_charge(c, units);
    return err;
}

static void send_topic(struct conn *c, struct room *r, int always)
{
    const char *by;
    int64_t at;
    const char *topic = hub_room_topic(r, &by, &at);
    if (!*topic) {
        if (always)
            irc_num(c, "331", "%s :No topic is set", hub_room_name(r));
        return;
    }
    irc_num(c, "332", "%s :%s", hub_room_name(r), topic);
    irc_num(c, "333", "%s %s %lld", hub_room_name(r), by, (long long)(at / 1000));
}

static void join_one(struct conn *c, const char *name, const char *key)
{
    struct hub *h = conn_hub(c);
    if (name[0] != '#') {
        irc_num(c, "403", "%s :No such channel", name);
        return;
    }
    const char *joined;
    enum hub_err err = hub_join_key(h, c->user, name, key, &joined);
    switch (err) {
    case HUB_OK: {
        struct room *r = hub_find_room(h, joined);
        send_topic(c, r, 0);
        if (listing(c, LISTING_NAMES, joined) != HUB_OK)
            irc_num(c, "366", "%s :End of /NAMES list.", joined);
        irc_history_replay(c, joined);
        return;
    }
    case HUB_EALREADY:
        return;
    case HUB_ETOOMANYROOMS:
        irc_num(c, "405", "%s :You have joined too many channels", name);
        return;
    case HUB_EBADROOM:
        irc_num(c, "403", "%s :No such channel", name);
        return;
    default:
        if (!irc_keeper_error(c, err, name, NULL))
            irc_num(c, "403", "%s :Cannot join channel (server out of memory)", name);
        return;
    }
}

static int cmd_join(struct conn *c, struct irc_msg *m)
{
    if (strcmp(m->params[0], "0") == 0) { /* leave every channel */
        while (c->user->nrooms)
            hub_part(conn_hub(c), c->user, hub_room_name(c->user->rooms[c->user->nrooms - 1]), NULL);
        return 0;
    }
    if (!*m->params[0]) {
        irc_num(c, "461", "JOIN :Not enough parameters");
        return 0;
    }
    char *save, *ksave, *keys = m->nparams > 1 ? m->params[1] : NULL;
    char *key = keys ? strtok_r(keys, ",", &ksave) : NULL;
    for (char *name = strtok_r(m->params[0], ",", &save); name && !conn_closing(c); name = strtok_r(NULL, ",", &save)) {
        join_one(c, name, key);
        key = key ? strtok_r(NULL, ",", &ksave) : NULL;
    }
    return 0;
}

static int cmd_part(struct conn *c, struct irc_msg *m)
{
    const char *reason = m->nparams > 1 && *m->params[1] ? m->params[1] : NULL;
    char *save;
    for (char *name = strtok_r(m->params[0], ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        enum hub_err err = name[0] == '#' ? hub_part(conn_hub(c), c->user, name, reason) : HUB_EBADROOM;
        if (err == HUB_ENOTINROOM && hub_find_room(conn_hub(c), name))
            irc_num(c, "442", "%s :You're not on that channel", name);
        else if (err == HUB_ENOTINROOM || err == HUB_EBADROOM)
            irc_num(c, "403", "%s :No such channel", name);
    }
    return 0;
}

static int cmd_names(struct conn *c, struct irc_msg *m)
{
    if (m->nparams == 0 || !*m->params[0]) {
        irc_num(c, "366", "* :End of /NAMES list.");
        return 0;
    }
    char *name = strtok(m->params[0], ",");
    if (!name || listing(c, LISTING_NAMES, name) != HUB_OK)
        irc_num(c, "366", "%s :End of /NAMES list.", name ? name : "*");
    return 0;
}

static int cmd_topic(struct conn *c, struct irc_msg *m)
{
    struct hub *h = conn_hub(c);
    const char *name = m->params[0];
    struct room *r = name[0] == '#' ? hub_find_room(h, name) : NULL;
    if (!r) {
        irc_num(c, "403", "%s :No such channel", name);
        return 0;
    }
    if (m->nparams < 2) {
        send_topic(c, r, 1);
        return 0;
    }
    enum hub_err err = hub_topic(h, c->user, name, m->params[1]); /* +t: operators only */
    if (err)
        irc_keeper_error(c, err, hub_room_name(r), NULL);
    return 0;
}

static int cmd_list(struct conn *c, struct irc_msg *m)
{
    (void)m;
    listing(c, LISTING_LIST, NULL);
    return 0;
}

/* ==== Messages ==== */

/* "\1ACTION text\1" (the closing \1 optional): the text, in place; else NULL. */
static char *ctcp_action(char *text)
{
    if (strncmp(text, "\x01" "ACTION ", 8) != 0)
        return NULL;
    char *t = text + 8;
    size_t n = strlen(t);
    if (n && t[n - 1] == '\x01')
        t[n - 1] = '\0';
    return t;
}

/* kind: 0 PRIVMSG, 1 NOTICE, 2 TAGMSG (text NULL). */
static void message_one(struct conn *c, const char *target, char *text, int kind, const char *tags)
{
    struct hub *h = conn_hub(c);
    char *action = text && kind == 0 ? ctcp_action(text) : NULL;
    unsigned flags = kind == 1 ? HUB_NOTICE : kind == 2 ? HUB_TAGMSG : action ? HUB_ACTION : 0;
    enum hub_err err = hub_message(h, c->user, target, flags, action ? action : text, tags);
    if (kind == 1)
        return; /* notices get no error replies */
    if (err == HUB_ENOTINROOM || err == HUB_ECANNOTSEND)
        irc_num(c, "404", "%s :Cannot send to channel", target);
    else if (err == HUB_ENOSUCHROOM || err == HUB_EBADROOM)
        irc_num(c, "403", "%s :No such channel", target);
    else if (err == HUB_ENOUSER)
        irc_num(c, "401", "%s :No such nick/channel", target);
    if (err || target[0] == '#' || kind != 0)
        return;
    struct user *u = hub_find_user(h, target);
    if (u && u->away)
        irc_num(c, "301", "%s :%s", u->name, u->away);
}

static int message(struct conn *c, struct irc_msg *m, int kind)
{
    if (m->nparams < 1 || !*m->params[0]) {
        if (kind != 1)
            irc_num(c, "411", ":No recipient given (%s)", m->command);
        return 0;
    }
    if (kind != 2 && (m->nparams < 2 || !*m->params[1])) {
        if (kind == 0)
            irc_num(c, "412", ":No text to send");
        return 0;
    }
    char *targets[TARGMAX + 1];
    int n = 0;
    char *save;
    for (char *t = strtok_r(m->params[0], ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == TARGMAX) {
            irc_num(c, "407", "%s :Too many recipients. Only %d processed", t, TARGMAX);
            break;
        }
        targets[n++] = t;
    }
    char tagbuf[IRC_TAGS_MAX];
    const char *tags = irc_client_tags(m, tagbuf, sizeof tagbuf);
    if (kind != 2)
        irc_st(c)->last_spoke = time(NULL);
    size_t len = kind == 2 ? 0 : strlen(m->params[1]);
    for (int i = 0; i < n && !conn_closing(c); i++) {
        char *text = NULL;
        if (kind != 2) {
            if (!(text = malloc(len + 1))) /* ctcp_action cuts its copy */
                return 0;
            memcpy(text, m->params[1], len + 1);
        }
        message_one(c, targets[i], text, kind, tags);
        free(text);
    }
    return 0;
}

static int cmd_privmsg(struct conn *c, struct irc_msg *m)
{
    return message(c, m, 0);
}

static int cmd_notice(struct conn *c, struct irc_msg *m)
{
    return message(c, m, 1);
}

static int cmd_tagmsg(struct conn *c, struct irc_msg *m)
{
    return message(c, m, 2);
}

/* ==== Users ==== */

static void who_user(struct conn *c, struct user *u)
{
    const struct irc_state *st = irc_state_of(u);
    char uh[HUB_NAME_MAX + 32];
    irc_userhost(u, uh, sizeof uh);
    char *at = strchr(uh, '@');
    *at = '\0';
    const char *chan = u->nrooms ? hub_room_name(u->rooms[0]) : "*";
    irc_num(c, "352", "%s %s %s %s %s %s :0 %s", chan, uh, at + 1, irc_conf.server_name, u->name,
            u->away ? "G" : "H", st && st->realname ? st->realname : u->name);
}

static int shares_room(const struct user *a, const struct user *b)
{
    for (uint16_t i = 0; i < a->nrooms; i++)
        for (uint16_t j = 0; j < b->nrooms; j++)
            if (a->rooms[i] == b->rooms[j])
                return 1;
    return 0;
}

static int cmd_who(struct conn *c, struct irc_msg *m)
{
    const char *mask = m->params[0];
    if (mask[0] == '#') {
        if (listing(c, LISTING_WHO, mask) != HUB_OK)
            irc_num(c, "315", "%s :End of WHO list", mask);
        return 0;
    }
    struct user *u = hub_find_user(conn_hub(c), mask);
    const struct irc_state *st = irc_state_of(u);
    if (u && !(st && st->invisible && u != c->user && !shares_room(u, c->user)))
        who_user(c, u);
    irc_num(c, "315", "%s :End of WHO list", mask);
    return 0;
}

static int cmd_whois(struct conn *c, struct irc_msg *m)
{
    const char *nick = m->params[m->nparams > 1 ? 1 : 0]; /* WHOIS [server] nick */
    struct user *u = hub_find_user(conn_hub(c), nick);
    if (!u) {
        irc_num(c, "401", "%s :No such nick/channel", nick);
        irc_num(c, "318", "%s :End of /WHOIS list.", nick);
        return 0;
    }
    const struct irc_state *st = irc_state_of(u);
    char uh[HUB_NAME_MAX + 32];
    irc_userhost(u, uh, sizeof uh);
    char *at = strchr(uh, '@');
    *at = '\0';
    irc_num(c, "311", "%s %s %s * :%s", u->name, uh, at + 1, st && st->realname ? st->realname : u->name);
    if (u->nrooms) {
        char line[IRC_LINE_MAX] = "";
        for (uint16_t i = 0; i < u->nrooms; i++) {
            const char *rn = hub_room_name(u->rooms[i]);
            if ((hub_room_modes(u->rooms[i], NULL, NULL) & RM_SECRET) && !c->user->oper &&
                hub_member_modes(u->rooms[i], c->user) < 0)
                continue; /* +s: not for outsiders */
            if (strlen(line) + strlen(rn) + 2 > 300) {
                irc_num(c, "319", "%s :%s", u->name, line);
                line[0] = '\0';
            }
            append(line, sizeof line, " ", rn);
        }
        if (line[0])
            irc_num(c, "319", "%s :%s", u->name, line);
    }
    irc_num(c, "312", "%s %s :%s", u->name, irc_conf.server_name, st ? "natter, over IRC" : "natter, plain text");
    if (u->away)
        irc_num(c, "301", "%s :%s", u->name, u->away);
    if (conn_secure((const struct conn *)u->ctx))
        irc_num(c, "671", "%s :is using a secure connection", u->name);
    if (st)
        irc_num(c, "317", "%s %lld %lld :seconds idle, signon time", u->name,
                (long long)(time(NULL) - (st->last_spoke ? st->last_spoke : st->signon)), (long long)st->signon);
    irc_num(c, "318", "%s :End of /WHOIS list.", u->name);
    return 0;
}

/* WHOWAS: the last few IRC and plain users to leave or change name. */
#define WHOWAS_MAX 64
static struct whowas {
    char nick[HUB_NAME_MAX];
    char userhost[HUB_NAME_MAX + 32];
    char realname[64];
    time_t when;
} whowas[WHOWAS_MAX];
static unsigned whowas_next;

void irc_remember(const struct user *u)
{
    struct whowas *w = &whowas[whowas_next++ % WHOWAS_MAX];
    const struct irc_state *st = irc_state_of(u);
    snprintf(w->nick, sizeof w->nick, "%s", u->name);
    irc_userhost(u, w->userhost, sizeof w->userhost);
    const char *real = st && st->realname ? st->realname : u->name;
    snprintf(w->realname, sizeof w->realname, "%.*s", (int)irc_fit(real, strlen(real), sizeof w->realname - 1), real);
    w->when = time(NULL);
}

static int cmd_whowas(struct conn *c, struct irc_msg *m)
{
    const char *nick = m->params[0];
    int found = 0;
    for (unsigned i = 0; i < WHOWAS_MAX; i++) {
        struct whowas *w = &whowas[(whowas_next - 1 - i) % WHOWAS_MAX];
        if (!w->nick[0] || !text_ieq(w->nick, nick))
            continue;
        char uh[sizeof w->userhost];
        snprintf(uh, sizeof uh, "%s", w->userhost);
        char *at = strchr(uh, '@');
        *at = '\0';
        irc_num(c, "314", "%s %s %s * :%s", w->nick, uh, at + 1, w->realname);
        irc_num(c, "312", "%s %s :%lld", w->nick, irc_conf.server_name, (long long)w->when);
        found = 1;
    }
    if (!found)
        irc_num(c, "406", "%s :There was no such nickname", nick);
    irc_num(c, "369", "%s :End of WHOWAS", nick);
    return 0;
}

static int cmd_away(struct conn *c, struct irc_msg *m)
{
    const char *text = m->nparams > 0 ? m->params[0] : "";
    if (hub_away(conn_hub(c), c->user, text) != HUB_OK)
        return 0;
    if (*text)
        irc_num(c, "306", ":You have been marked as being away");
    else
        irc_num(c, "305", ":You are no longer marked as being away");
    return 0;
}

static int cmd_ison(struct conn *c, struct irc_msg *m)
{
    char line[IRC_LINE_MAX] = "";
    for (int i = 0; i < m->nparams; i++) {
        char *save;
        for (char *n = strtok_r(m->params[i], " ", &save); n; n = strtok_r(NULL, " ", &save)) {
            struct user *u = hub_find_user(conn_hub(c), n);
            if (u && strlen(line) + strlen(u->name) + 2 < 400)
                append(line, sizeof line, " ", u->name);
        }
    }
    irc_num(c, "303", ":%s", line);
    return 0;
}

static int cmd_userhost(struct conn *c, struct irc_msg *m)
{
    char line[IRC_LINE_MAX] = "";
    for (int i = 0; i < m->nparams && i < USERHOST_MAX; i++) {
        struct user *u = hub_find_user(conn_hub(c), m->params[i]);
        if (!u)
            continue;
        char uh[HUB_NAME_MAX + 32], item[HUB_NAME_MAX * 2 + 40];
        snprintf(item, sizeof item, "%s=%c%s", u->name, u->away ? '-' : '+', irc_userhost(u, uh, sizeof uh));
        append(line, sizeof line, " ", item);
    }
    irc_num(c, "302", ":%s", line);
    return 0;
}

/* ==== Modes (channel modes: ircmodes.c) ==== */

static int cmd_mode(struct conn *c, struct irc_msg *m)
{
    if (m->params[0][0] == '#')
        return irc_channel_mode(c, m);
    struct irc_state *st = irc_st(c);
    if (!text_ieq(m->params[0], c->user->name)) {
        irc_num(c, hub_find_user(conn_hub(c), m->params[0]) ? "502" : "401",
                hub_find_user(conn_hub(c), m->params[0]) ? ":Can't change mode for other users"
                                                         : "%s :No such nick/channel",
                m->params[0]);
        return 0;
    }
    if (m->nparams < 2) {
        irc_num(c, "221", "+%s%s%s", st->invisible ? "i" : "", c->user->oper ? "o" : "", conn_secure(c) ? "Z" : "");
        return 0;
    }
    int plus = 1, changed = -1;
    for (const char *p = m->params[1]; *p; p++) {
        if (*p == '+' || *p == '-') {
            plus = *p == '+';
        } else if (*p == 'i') {
            if (st->invisible != plus)
                changed = plus;
            st->invisible = (uint8_t)plus;
        } else {
            irc_num(c, "501", ":Unknown MODE flag");
        }
    }
    if (changed >= 0)
        irc_send(c, ":%s MODE %s :%ci", c->user->name, c->user->name, changed ? '+' : '-');
    return 0;
}

/* ==== The server ==== */

static int cmd_version(struct conn *c, struct irc_msg *m)
{
    (void)m;
    irc_num(c, "351", "%s %s :natter chat server, the same rooms for plain and IRC clients", VERSION_STRING,
            irc_conf.server_name);
    irc_send_isupport(c);
    return 0;
}

static int cmd_time(struct conn *c, struct irc_msg *m)
{
    (void)m;
    time_t now = time(NULL);
    struct tm tm;
    char buf[64];
    gmtime_r(&now, &tm);
    strftime(buf, sizeof buf, "%A %B %d %Y -- %H:%M:%S +00:00", &tm);
    irc_num(c, "391", "%s :%s", irc_conf.server_name, buf);
    return 0;
}

/* ==== The table ==== */

enum { FANS_NONE, FANS_TARGETS, FANS_ALL };

static const struct command {
    const char *name;
    int (*run)(struct conn *c, struct irc_msg *m);
    int min_params;
    int registered; /* only after registration (else 451) */
    int fans_out;   /* FANS_TARGETS: to the channels of its first parameter; FANS_ALL: lists every room */
} commands[] = {
    {"CAP", cmd_cap, 1, 0, FANS_NONE},
    {"PASS", cmd_pass, 1, 0, FANS_NONE},
    {"NICK", cmd_nick, 1, 0, FANS_NONE},
    {"USER", cmd_user, 4, 0, FANS_NONE},
    {"PING", cmd_ping, 1, 0, FANS_NONE},
    {"PONG", cmd_pong, 0, 0, FANS_NONE},
    {"QUIT", cmd_quit, 0, 0, FANS_NONE},
    {"JOIN", cmd_join, 1, 1, FANS_TARGETS},
    {"PART", cmd_part, 1, 1, FANS_NONE},
    {"PRIVMSG", cmd_privmsg, 0, 1, FANS_TARGETS},
    {"NOTICE", cmd_notice, 0, 1, FANS_TARGETS},
    {"TAGMSG", cmd_tagmsg, 0, 1, FANS_TARGETS},
    {"SETNAME", cmd_setname, 1, 1, FANS_NONE},
    {"NAMES", cmd_names, 0, 1, FANS_TARGETS},
    {"TOPIC", cmd_topic, 1, 1, FANS_NONE},
    {"LIST", cmd_list, 0, 1, FANS_ALL},
    {"WHO", cmd_who, 1, 1, FANS_TARGETS},
    {"WHOIS", cmd_whois, 1, 1, FANS_NONE},
    {"WHOWAS", cmd_whowas, 1, 1, FANS_NONE},
    {"MODE", cmd_mode, 1, 1, FANS_TARGETS}, /* a change tells the channel */
    {"AWAY", cmd_away, 0, 1, FANS_NONE},
    {"ISON", cmd_ison, 1, 1, FANS_NONE},
    {"USERHOST", cmd_userhost, 1, 1, FANS_NONE},
    {"MOTD", cmd_motd, 0, 1, FANS_NONE},
    {"LUSERS", cmd_lusers, 0, 1, FANS_NONE},
    {"VERSION", cmd_version, 0, 1, FANS_NONE},
    {"TIME", cmd_time, 0, 1, FANS_NONE},
    {"CHATHISTORY", irc_cmd_chathistory, 1, 1, FANS_NONE},
    {"SEARCH", irc_cmd_search, 1, 1, FANS_NONE},
    /* Room keepers and server operators (ircmodes.c). MODE and KICK tell the
     * channel of their first parameter (a nick's MODE is skipped by the '#'
     * check); INVITE tells one user, OPER/STATS only the asker; KILL tells the
     * victim's neighbours once, like a QUIT, and WALLOPS the server operators:
     * both operator-only and rare, so light. */
    {"KICK", irc_cmd_kick, 2, 1, FANS_TARGETS},
    {"INVITE", irc_cmd_invite, 2, 1, FANS_NONE},
    {"OPER", irc_cmd_oper, 2, 1, FANS_NONE},
    {"KILL", irc_cmd_kill, 1, 1, FANS_NONE},
    {"WALLOPS", irc_cmd_wallops, 1, 1, FANS_NONE},
    {"STATS", irc_cmd_stats, 0, 1, FANS_NONE},
};

/* Fairness (hub.h): a command that fans out to a heavy room, or lists, waits for
 * the next turn when this one's budget is spent; the check is made for all its
 * targets before it starts, so it is never half done. */
static int budget_ready(struct conn *c, const struct irc_msg *m, int fans_out)
{
    struct hub *h = conn_hub(c);
    if (fans_out == FANS_ALL)
        return hub_budget_ready(h, NULL) == HUB_OK;
    if (m->nparams < 1)
        return 1;
    char targets[IRC_LINE_MAX];
    snprintf(targets, sizeof targets, "%s", m->params[0]);
    char *save;
    for (char *t = strtok_r(targets, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (t[0] == '#' && hub_budget_ready(h, t) != HUB_OK)
            return 0;
    return 1;
}

int irc_run(struct conn *c, struct irc_msg *m)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const struct command *cmd = &commands[i];
        if (!text_ieq(m->command, cmd->name))
            continue;
        if (cmd->registered && !c->user) {
            irc_num(c, "451", ":You have not registered");
            return 0;
        }
        if (m->nparams < cmd->min_params) {
            if (cmd->run == cmd_nick)
                irc_num(c, "431", ":No nickname given");
            else
                irc_num(c, "461", "%s :Not enough parameters", cmd->name);
            return 0;
        }
        if (!cmd->fans_out)
            return cmd->run(c, m);
        if (!budget_ready(c, m, cmd->fans_out))
            return IRC_AGAIN;
        hub_budget_waive(conn_hub(c), 1);
        int rc = cmd->run(c, m);
        hub_budget_waive(conn_hub(c), 0);
        return rc;
    }
    if (!c->user)
        irc_num(c, "451", ":You have not registered");
    else
        irc_num(c, "421", "%s :Unknown command", m->command);
    return 0;
}
