/* commands.h - the plain protocol's slash commands (/nick, /join, ...). */
#ifndef NATTER_COMMANDS_H
#define NATTER_COMMANDS_H

struct conn;

/* Run a line that starts with '/' (not "//"). line is modified. Returns
 * LINE_CLOSING when the connection is closing (/quit), LINE_AGAIN when the server
 * was too busy for it this turn (lineuser.h), else 0. */
int commands_run(struct conn *c, char *line);

#endif
