/* keepers.h - the plain protocol's commands for room keepers and server
 * operators (/op, /kick, /ban, /mode, /oper, /kill, ... issue 13) and the lines
 * of their events. commands.c runs them and lists them in /help. */
#ifndef NATTER_KEEPERS_H
#define NATTER_KEEPERS_H

struct conn;
struct hub_event;
struct msg;

/* Run /name args if it is one of these commands: 0 (or 1 when the connection
 * is closing); -1 when name is none of them. */
int keepers_run(struct conn *c, const char *name, char *args);
/* Their lines of /help. */
void keepers_help(struct conn *c);
/* EV_MODE, EV_KICK, EV_INVITE, EV_WALLOPS, EV_KILL as plain lines. */
struct msg *keepers_encode(const struct hub_event *ev);

#endif
