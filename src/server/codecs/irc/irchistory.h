/* irchistory.h - history for IRC clients: replay on join and IRCv3
 * draft/chathistory (CHATHISTORY LATEST/BEFORE/AFTER/AROUND/BETWEEN/TARGETS), and
 * soju.im/search's SEARCH.
 *
 * Questions go to history.c and are answered on a later loop turn; the answer
 * finds its connection again by id (it may have gone). How history reads
 * depends on what the client negotiated (docs/protocol.md, "IRC history"):
 * with batch and server-time, the messages as they were sent live, inside a
 * `chathistory` batch, with their time (and msgid with message-tags); without
 * them, server NOTICEs "[YYYY-MM-DD HH:MM:SS] <nick> text", which no live
 * message looks like.
 */
#ifndef NATTER_IRCHISTORY_H
#define NATTER_IRCHISTORY_H

#include <stddef.h>

struct conn;
struct irc_msg;

/* The last --history messages of room, to a client that has just joined it
 * (after the NAMES of the join). Not to one that negotiated draft/chathistory:
 * it asks for what it wants. */
void irc_history_replay(struct conn *c, const char *room);
/* CHATHISTORY subcommand target ... (the command table's handler). */
int irc_cmd_chathistory(struct conn *c, struct irc_msg *m);
/* SEARCH attrs (soju.im/search): "text=words[;in=#room][;limit=N]", the results
 * in a soju.im/search batch (or server NOTICEs without batch + server-time). */
int irc_cmd_search(struct conn *c, struct irc_msg *m);
/* The ISUPPORT token "CHATHISTORY=N" into out (len bytes): 1, or 0 when
 * history is off (no token). */
int irc_history_isupport(const struct conn *c, char *out, size_t len);
/* The most messages one CHATHISTORY returns on this connection's listener. */
unsigned irc_history_limit(const struct conn *c);

#endif
