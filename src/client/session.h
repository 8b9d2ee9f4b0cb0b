/* session.h - what the client knows about itself, learnt from the server's notices:
 * its name, the rooms it is in and its current room (shown in the prompt).
 *
 * The server is the authority; the client never guesses. It only reads the
 * notices that concern it (see docs/protocol.md): the welcome, "is now known as",
 * "joined", "left" and "you are now in".
 */
#ifndef NATTER_SESSION_H
#define NATTER_SESSION_H

#define SESSION_NAME_LEN 128 /* names are at most 24 code points (--max-name) */
#define SESSION_ROOM_LEN 136 /* '#' and 32 code points of up to 4 bytes */
#define SESSION_ROOMS 1000   /* natterd's largest --max-rooms: all are kept */

struct session {
    char name[SESSION_NAME_LEN];          /* "" until the welcome */
    char (*rooms)[SESSION_ROOM_LEN];      /* in the order joined; grown as needed */
    int nrooms, caprooms;
    char current[SESSION_ROOM_LEN]; /* "" when in no room */
};

void session_free(struct session *s);

/* Learn from one sanitised server line. Returns 1 if the name or the current
 * room changed, 0 otherwise. */
int session_update(struct session *s, const char *line);

/* 1 if line is the server's goodbye to us ("-- bye NAME"). */
int session_is_goodbye(const struct session *s, const char *line);

#endif
