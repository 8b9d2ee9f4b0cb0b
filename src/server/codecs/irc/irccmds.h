/* irccmds.h - the IRC commands: one table (name, handler, minimum parameters,
 * registered only), checked in one place before any handler runs, in the manner
 * of ngIRCd's My_Commands. Registration (CAP, NICK, USER, PASS) is here too. */
#ifndef NATTER_IRCCMDS_H
#define NATTER_IRCCMDS_H

struct conn;
struct irc_msg;

/* Run one parsed message from c. Returns non-zero when the connection is closing,
 * IRC_AGAIN when the server is too busy for it this turn (nothing was done: run
 * it again next turn). */
#define IRC_AGAIN (-1)
int irc_run(struct conn *c, struct irc_msg *m);

/* The ISUPPORT tokens and the capabilities, for VERSION and tests. */
void irc_send_isupport(struct conn *c);

/* Remember a user leaving, for WHOWAS. */
struct user;
void irc_remember(const struct user *u);

#endif
