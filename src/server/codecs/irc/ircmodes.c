/* ircmodes.c - channel modes, KICK, INVITE and server operators over IRC (see ircmodes.h). */
#include "server/codecs/irc/ircmodes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/text.h"
#include "server/codecs/irc/ircmsg.h"
#include "server/codecs/irc/ircuser.h"
#include "server/conn.h"
#include "server/hub.h"
#include "server/operauth.h"
#include "server/roommodes.h"

int irc_keeper_error(struct conn *c, enum hub_err err, const char *room, const char *arg)
{
    switch (err) {
    case HUB_EBANNED:
        irc_num(c, "474", "%s :Cannot join channel (+b)", room);
        return 1;
    case HUB_EINVITEONLY:
        irc_num(c, "473", "%s :Cannot join channel (+i)", room);
        return 1;
    case HUB_EBADKEY:
        irc_num(c, "475", "%s :Cannot join channel (+k)", room);
        return 1;
    case HUB_EFULL:
        irc_num(c, "471", "%s :Cannot join channel (+l)", room);
        return 1;
    case HUB_ENOTOP:
        irc_num(c, "482", "%s :You're not channel operator", room);
        return 1;
    case HUB_ECANNOTSEND:
        irc_num(c, "404", "%s :Cannot send to channel", room);
        return 1;
    case HUB_ETARGETNOTIN:
        irc_num(c, "441", "%s %s :They aren't on that channel", arg, room);
        return 1;
    case HUB_EONROOM:
        irc_num(c, "443", "%s %s :is already on channel", arg, room);
        return 1;
    case HUB_ENOUSER:
        irc_num(c, "401", "%s :No such nick/channel", arg);
        return 1;
    case HUB_ENOTINROOM:
        irc_num(c, "442", "%s :You're not on that channel", room);
        return 1;
    case HUB_ENOSUCHROOM:
    case HUB_EBADROOM:
        irc_num(c, "403", "%s :No such channel", room);
        return 1;
    case HUB_ENOTOPER:
        irc_num(c, "481", ":Permission Denied- You're not an IRC operator");
        return 1;
    default:
        return 0;
    }
}

/* ==== MODE #channel ==== */

static void send_list(struct conn *c, struct room *r, char letter)
{
    const struct mask_list *l = hub_room_list(r, letter);
    const char *item = letter == 'b' ? "367" : letter == 'e' ? "348" : "346";
    const char *end = letter == 'b' ? "368" : letter == 'e' ? "349" : "347";
    const char *what = letter == 'b' ? "channel ban list" : letter == 'e' ? "channel exception list"
                                                                         : "channel invite list";
    for (uint16_t i = 0; i < l->n; i++)
        irc_num(c, item, "%s %s %s %lld", hub_room_name(r), l->v[i].mask, l->v[i].by,
                (long long)(l->v[i].at_ms / 1000));
    irc_num(c, end, "%s :End of %s", hub_room_name(r), what);
}

int irc_channel_mode(struct conn *c, struct irc_msg *m)
{
    struct hub *h = conn_hub(c);
    const char *name = m->params[0];
    struct room *r = hub_find_room(h, name);
    if (!r || (hub_member_modes(r, c->user) < 0 && !c->user->oper && (hub_room_modes(r, NULL, NULL) & RM_SECRET))) {
        irc_num(c, "403", "%s :No such channel", name);
        return 0;
    }
    name = hub_room_name(r);
    if (m->nparams < 2) {
        char modes[128];
        hub_room_mode_string(r, hub_member_modes(r, c->user) >= 0 || c->user->oper, modes, sizeof modes);
        irc_num(c, "324", "%s %s", name, modes);
        irc_num(c, "329", "%s %lld", name, (long long)(hub_room_created(r) / 1000));
        return 0;
    }
    struct mode_step steps[IRC_MAX_PARAMS * 2];
    enum mode_parse status;
    char bad;
    size_t n = mode_parse(m->params[1], m->params + 2, m->nparams - 2, steps, sizeof steps / sizeof steps[0],
                          &status, &bad);
    if (status == MP_UNKNOWN)
        irc_num(c, "472", "%c :is unknown mode char to me", bad);
    else if (status == MP_NEEDARG)
        irc_num(c, "696", "%s %c * :You must specify a parameter for the %c mode", name, bad, bad);
    enum hub_err errs[IRC_MAX_PARAMS * 2];
    enum hub_err err = hub_mode(h, c->user, name, steps, n, errs);
    if (err) {
        irc_keeper_error(c, err, name, NULL);
        return 0;
    }
    int told_notop = 0, shown = 0;
    for (size_t i = 0; i < n; i++) {
        char letter = steps[i].letter;
        switch (errs[i]) {
        case HUB_OK:
            if (mode_kind(letter) == 'A' && !steps[i].arg && !(shown & (1 << (strchr(RM_LISTS, letter) - RM_LISTS)))) {
                shown |= 1 << (strchr(RM_LISTS, letter) - RM_LISTS);
                send_list(c, r, letter);
            }
            break;
        case HUB_ENOTOP:
            if (!told_notop++)
                irc_num(c, "482", "%s :You're not channel operator", name);
            break;
        case HUB_ELISTFULL:
            irc_num(c, "478", "%s %s :Channel list is full", name, steps[i].arg);
            break;
        case HUB_EBADMASK:
            if (letter == 'k')
                irc_num(c, "525", "%s :Key is not well-formed", name);
            else
                irc_num(c, "696", "%s %c %s :Invalid mode parameter", name, letter, steps[i].arg ? steps[i].arg : "*");
            break;
        default:
            if (!irc_keeper_error(c, errs[i], name, steps[i].arg ? steps[i].arg : "*"))
                irc_num(c, "472", "%c :is unknown mode char to me", letter);
        }
    }
    return 0;
}

/* ==== KICK and INVITE ==== */

/* KICK #a,#b nick1,nick2 [:reason]: one channel for every nick, or one channel each. */
int irc_cmd_kick(struct conn *c, struct irc_msg *m)
{
    const char *reason = m->nparams > 2 && *m->params[2] ? m->params[2] : NULL;
    char *chans[IRC_MAX_PARAMS * 4], *nicks[IRC_MAX_PARAMS * 4];
    int nc = 0, nn = 0;
    char *save;
    for (char *t = strtok_r(m->params[0], ",", &save); t && nc < (int)(sizeof chans / sizeof *chans);
         t = strtok_r(NULL, ",", &save))
        chans[nc++] = t;
    for (char *t = strtok_r(m->params[1], ",", &save); t && nn < (int)(sizeof nicks / sizeof *nicks);
         t = strtok_r(NULL, ",", &save))
        nicks[nn++] = t;
    if (!nc || !nn || (nc > 1 && nc != nn)) {
        irc_num(c, "461", "KICK :Not enough parameters");
        return 0;
    }
    for (int i = 0; i < nn && !conn_closing(c); i++) {
        const char *chan = chans[nc == 1 ? 0 : i];
        enum hub_err err = hub_kick(conn_hub(c), c->user, chan, nicks[i], reason ? reason : c->user->name);
        if (err == HUB_ENOMEM)
            irc_num(c, "403", "%s :Cannot kick (server out of memory)", chan);
        else if (err)
            irc_keeper_error(c, err, chan, nicks[i]);
    }
    return 0;
}

int irc_cmd_invite(struct conn *c, struct irc_msg *m)
{
    const char *nick = m->params[0], *chan = m->params[1];
    enum hub_err err = hub_invite(conn_hub(c), c->user, chan, nick);
    if (err == HUB_OK) {
        struct user *u = hub_find_user(conn_hub(c), nick);
        irc_num(c, "341", "%s %s", u ? u->name : nick, chan);
        if (u && u->away)
            irc_num(c, "301", "%s :%s", u->name, u->away);
    } else if (err == HUB_ENOMEM) {
        irc_num(c, "403", "%s :Cannot invite (server out of memory)", chan);
    } else {
        irc_keeper_error(c, err, chan, nick);
    }
    return 0;
}

/* ==== Server operators ==== */

static void oper_done(uint64_t id, const char *name, int ok)
{
    (void)name;
    struct conn *c = conn_by_id(id);
    if (!c || !c->user)
        return;
    if (!ok) {
        irc_num(c, "464", ":Password incorrect");
        return;
    }
    hub_set_oper(conn_hub(c), c->user, 1);
    irc_num(c, "381", ":You are now an IRC operator");
    irc_send(c, ":%s MODE %s :+o", c->user->name, c->user->name);
}

int irc_cmd_oper(struct conn *c, struct irc_msg *m)
{
    long wait = 0;
    switch (oper_submit(c->id, conn_peer(c), m->params[0], m->params[1], oper_done, &wait)) {
    case OPER_QUEUED:
        break;
    case OPER_NONE:
        irc_num(c, "491", ":No O-lines for your host");
        break;
    case OPER_BUSY:
        irc_send(c, ":%s NOTICE %s :*** Too many operator logins at once, try again in a moment",
                 irc_conf.server_name, c->user->name);
        break;
    case OPER_WAIT:
        irc_send(c, ":%s NOTICE %s :*** Too many failed operator logins: wait %ld s", irc_conf.server_name,
                 c->user->name, (wait + 999) / 1000);
        break;
    case OPER_NOMEM:
        break;
    }
    return 0;
}

int irc_cmd_kill(struct conn *c, struct irc_msg *m)
{
    const char *reason = m->nparams > 1 && *m->params[1] ? m->params[1] : NULL;
    enum hub_err err = hub_kill(conn_hub(c), c->user, m->params[0], reason);
    if (err)
        irc_keeper_error(c, err, "*", m->params[0]);
    return conn_closing(c);
}

int irc_cmd_wallops(struct conn *c, struct irc_msg *m)
{
    enum hub_err err = hub_wallops(conn_hub(c), c->user, m->params[0]);
    if (err)
        irc_keeper_error(c, err, "*", "*");
    return 0;
}

/* STATS [letter]: for operators, the server's counters as notices, then 219. */
int irc_cmd_stats(struct conn *c, struct irc_msg *m)
{
    const char *q = m->nparams > 0 && *m->params[0] ? m->params[0] : "*";
    if ((unsigned char)q[0] <= 0x20 || (unsigned char)q[0] >= 0x7f)
        q = "*"; /* echoed as one byte: never half a UTF-8 character */
    if (!c->user->oper) {
        irc_num(c, "481", ":Permission Denied- You're not an IRC operator");
        irc_num(c, "219", "%c :End of /STATS report", q[0]);
        return 0;
    }
    struct hub_stats st;
    hub_stats(conn_hub(c), &st);
    irc_send(c, ":%s NOTICE %s :*** stats: %zu connections, %zu users, %zu rooms, %zu operators",
             irc_conf.server_name, c->user->name, conn_count(), st.users, st.rooms, st.opers);
    irc_send(c, ":%s NOTICE %s :*** stats: memory %ld KiB, %llu messages, %.1f per second (last %d s)",
             irc_conf.server_name, c->user->name, oper_memory_kib(), (unsigned long long)st.messages, st.per_second,
             HUB_RATE_SECONDS);
    irc_num(c, "219", "%c :End of /STATS report", q[0]);
    return 0;
}
