/* linehistory.h - history for plain clients: replay on join, /history, /search.
 *
 * Questions go to history.c, which answers on a later loop turn; the answer
 * finds its connection again by id (it may have gone). Every history line
 * starts with "== " and the message's time, then the line as it was delivered
 * live (docs/protocol.md, "History").
 */
#ifndef NATTER_LINEHISTORY_H
#define NATTER_LINEHISTORY_H

struct conn;

/* The last --history messages of room, to a client that has just joined it. */
void line_history_replay(struct conn *c, const char *room);
/* /history [#room|NAME] [N] and /search words (args as typed). */
int line_history_cmd(struct conn *c, char *args);
int line_search_cmd(struct conn *c, char *args);

#endif
