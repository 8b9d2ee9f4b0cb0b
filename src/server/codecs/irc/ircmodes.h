/* ircmodes.h - IRC for room keepers and server operators (issue 13): channel
 * MODE (queries, lists, several changes at once), KICK, INVITE, OPER, KILL,
 * WALLOPS, STATS, and the words of the hub's refusals. irccmds.c puts them in
 * its table; every numeric is listed in docs/protocol.md. */
#ifndef NATTER_IRCMODES_H
#define NATTER_IRCMODES_H

#include "server/hub.h"

struct conn;
struct irc_msg;

int irc_channel_mode(struct conn *c, struct irc_msg *m);
int irc_cmd_kick(struct conn *c, struct irc_msg *m);
int irc_cmd_invite(struct conn *c, struct irc_msg *m);
int irc_cmd_oper(struct conn *c, struct irc_msg *m);
int irc_cmd_kill(struct conn *c, struct irc_msg *m);
int irc_cmd_wallops(struct conn *c, struct irc_msg *m);
int irc_cmd_stats(struct conn *c, struct irc_msg *m);

/* The numeric for a refusal about room (a channel name) or arg (a nick, mask,
 * letter), if err is one of the room keepers' errors: 1 when it sent one. */
int irc_keeper_error(struct conn *c, enum hub_err err, const char *room, const char *arg);

#endif
