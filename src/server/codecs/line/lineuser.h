/* lineuser.h - what a plain-protocol connection keeps and how it is answered,
 * shared by the line codec (linecodec.c) and its commands (commands.c).
 *
 * The current room, where a line without a command goes, is plain-protocol
 * state (IRC names the channel in every message), so it lives here and not in
 * the hub: conn->state holds its name.
 */
#ifndef NATTER_LINEUSER_H
#define NATTER_LINEUSER_H

#include "server/hub.h"

struct conn;

/* Flood control: a line costs one unit, plus one per this many bytes. */
#define LINE_TOKEN_BYTES 512
/* A listing also costs one unit per this many entries examined. */
#define LINE_TOKEN_ENTRIES 1000

/* What running a line says besides 0 (done): */
#define LINE_CLOSING 1 /* the connection is closing */
#define LINE_AGAIN 2   /* the server is too busy this turn: the line is to be offered again */

/* The user@host of every plain user, which bans match as NAME!plain@natter/plain. */
#define LINE_USERHOST "plain@natter/plain"

/* The current room, or NULL when in none. If the user is no longer in it, the
 * room it joined last becomes current (as after parting the current room). */
const char *line_current(struct conn *c);
/* Make room (a name the hub gave, or NULL) current. Returns 0, or -1 when out
 * of memory (then the user is in no current room). */
int line_set_current(struct conn *c, const char *room);
/* Forget the connection's state. */
void line_forget(struct conn *c);

/* One line to this connection alone (the "\n" is added; a line too long for the
 * reply buffer is cut at a character boundary). */
void line_reply(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The error line for a hub error; arg names what was wrong. */
void line_error(struct conn *c, enum hub_err err, const char *arg);
/* The user leaves (bye, /quit): goodbye line, quit notice, close. Returns 1. */
int line_quit(struct conn *c, const char *reason);

#endif
