/* commands.h - the plain protocol's slash commands (/nick, /join, ...). */
#ifndef NATTER_COMMANDS_H
#define NATTER_COMMANDS_H

struct conn;

/* Run a line that starts with '/' (not "//"). line is modified. Returns non-zero
 * when the connection is closing (/quit). */
int commands_run(struct conn *c, char *line);

#endif
