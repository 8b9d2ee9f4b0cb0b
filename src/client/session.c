/* session.c - the client's name and rooms, from the server's notices (see session.h). */
#include "client/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/text.h"

/* Copy the word at *p (up to a space or the end) into out and step past it.
 * Returns 0 if the word is empty or does not fit. */
static int take_word(const char **p, char *out, size_t len)
{
    size_t n = strcspn(*p, " ");
    if (n == 0 || n >= len)
        return 0;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n;
    return 1;
}

/* Step past prefix if *p starts with it. */
static int skip(const char **p, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(*p, prefix, n) != 0)
        return 0;
    *p += n;
    return 1;
}

static int find_room(const struct session *s, const char *room)
{
    for (int i = 0; i < s->nrooms; i++)
        if (text_ieq(s->rooms[i], room))
            return i;
    return -1;
}

static void set_current(struct session *s, const char *room)
{
    snprintf(s->current, sizeof s->current, "%s", room);
}

/* Every room joined is kept (a fixed 64 used to lose the 65th, and with it which
 * room becomes current when one is left). */
static void joined(struct session *s, const char *room)
{
    if (find_room(s, room) < 0 && s->nrooms < SESSION_ROOMS) {
        if (s->nrooms == s->caprooms) {
            int cap = s->caprooms ? 2 * s->caprooms : 8;
            void *p = realloc(s->rooms, (size_t)cap * SESSION_ROOM_LEN);
            if (p) {
                s->rooms = p;
                s->caprooms = cap;
            }
        }
        if (s->nrooms < s->caprooms)
            snprintf(s->rooms[s->nrooms++], SESSION_ROOM_LEN, "%s", room);
    }
    set_current(s, room);
}

void session_free(struct session *s)
{
    free(s->rooms);
    s->rooms = NULL;
    s->nrooms = s->caprooms = 0;
}

/* The server makes the most recently joined remaining room current when the
 * current one is left; the join order we keep gives the same answer. */
static void left(struct session *s, const char *room)
{
    int i = find_room(s, room);
    if (i < 0)
        return;
    memmove(s->rooms[i], s->rooms[i + 1], (size_t)(s->nrooms - i - 1) * SESSION_ROOM_LEN);
    s->nrooms--;
    if (text_ieq(s->current, room))
        set_current(s, s->nrooms > 0 ? s->rooms[s->nrooms - 1] : "");
}

/* "-- welcome to natter, guest1! /nick NAME picks a name, ..." */
static int welcome(struct session *s, const char *p)
{
    char word[SESSION_NAME_LEN];
    if (!take_word(&p, word, sizeof word))
        return 0;
    size_t n = strlen(word);
    if (n < 2 || word[n - 1] != '!')
        return 0;
    word[n - 1] = '\0';
    memcpy(s->name, word, sizeof s->name);
    return 1;
}

/* "-- WHO is now known as NEW", "-- WHO joined #room", "-- WHO left #room [(why)]" */
static int about_someone(struct session *s, const char *p)
{
    char who[SESSION_NAME_LEN], what[SESSION_ROOM_LEN];
    if (!take_word(&p, who, sizeof who) || !s->name[0] || !text_ieq(who, s->name))
        return 0;
    if (skip(&p, " is now known as ") && take_word(&p, who, sizeof who) && !*p) {
        memcpy(s->name, who, sizeof s->name);
        return 1;
    }
    if (skip(&p, " joined ") && take_word(&p, what, sizeof what) && !*p) {
        joined(s, what);
        return 1;
    }
    if (skip(&p, " left ") && take_word(&p, what, sizeof what)) {
        left(s, what);
        return 1;
    }
    return 0;
}

int session_update(struct session *s, const char *line)
{
    const char *p = line;
    char room[SESSION_ROOM_LEN];
    if (!skip(&p, "-- "))
        return 0;
    if (skip(&p, "welcome to natter, "))
        return welcome(s, p);
    if (skip(&p, "you are now in ") && take_word(&p, room, sizeof room) && !*p) {
        set_current(s, room);
        return 1;
    }
    return about_someone(s, line + 3);
}

int session_is_goodbye(const struct session *s, const char *line)
{
    return strncmp(line, "-- bye ", 7) == 0 && s->name[0] && text_ieq(line + 7, s->name);
}
