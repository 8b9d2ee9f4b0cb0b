/* roommodes.h - the rules of room modes, wire-neutral and pure: the mode
 * letters and what arguments they take, parsing a mode change ("+ov-k alice bob
 * key") into steps, nick!user@host masks (completing them, matching them) and
 * bounded mask lists (bans +b, exceptions +e, invite exceptions +I).
 *
 * The hub (hub.c, hubmodes.c) keeps the state; every codec parses with these
 * functions, so IRC's MODE and the plain /mode read the same letters the same way.
 * Unit-tested alone (tests/unit/test_roommodes.c).
 */
#ifndef NATTER_ROOMMODES_H
#define NATTER_ROOMMODES_H

#include <stddef.h>
#include <stdint.h>

/* Room modes (room_state.modes). */
enum {
    RM_TOPICLOCK = 1 << 0,  /* t: only operators set the topic (default on) */
    RM_NOEXTERNAL = 1 << 1, /* n: only members speak (default on) */
    RM_MODERATED = 1 << 2,  /* m: only operators and voiced members speak */
    RM_INVITE = 1 << 3,     /* i: invitation (or +I) needed to join */
    RM_KEY = 1 << 4,        /* k: a key needed to join */
    RM_LIMIT = 1 << 5,      /* l: at most `limit` members */
    RM_SECRET = 1 << 6,     /* s: hidden from room lists and from outsiders' WHO/NAMES */
};
#define RM_DEFAULT (RM_TOPICLOCK | RM_NOEXTERNAL)

/* Member modes: the hub's per-member flags. */
enum {
    MM_OP = 1 << 0,    /* o: operator ("@") */
    MM_VOICE = 1 << 1, /* v: voiced ("+") */
};

/* The letters, as IRC's ISUPPORT groups them (CHANMODES=A,B,C,D and PREFIX). */
#define RM_LISTS "beI"        /* A: lists; an argument always (none: show the list) */
#define RM_ALWAYS_ARG "k"     /* B: an argument to set and to unset */
#define RM_SET_ARG "l"        /* C: an argument to set only */
#define RM_FLAGS "imnst"      /* D: no argument */
#define RM_PREFIXES "ov"      /* member modes, a name always */
#define RM_CHANMODES RM_LISTS "," RM_ALWAYS_ARG "," RM_SET_ARG "," RM_FLAGS

#define RM_MAX_CHANGES 6      /* changes with an argument in one command (ISUPPORT MODES) */
#define RM_MAXLIST 60         /* entries of all three lists of one room together (MAXLIST) */
#define RM_MASK_MAX 160       /* bytes of a mask, with its NUL */
#define RM_KEY_MAX 24         /* bytes of a key (+k), with its NUL */
#define RM_INVITES_MAX 32     /* pending invitations kept per room (the oldest forgotten) */

/* One step of a mode change. */
struct mode_step {
    char plus;          /* 1: +, 0: - */
    char letter;
    const char *arg;    /* NULL: none given (or none taken) */
};

enum mode_parse {
    MP_OK = 0,
    MP_UNKNOWN,  /* *bad: the letter nobody knows (IRC 472); the steps before it stand */
    MP_NEEDARG,  /* *bad: the letter whose argument is missing (IRC 461/696); dropped */
};

/* Parse modes ("+o-v+t", signs optional: "+" first) with its arguments args[0..nargs)
 * (an unknown letter that is no printable ASCII character is named '?')
 * into at most max steps (more are dropped, as are steps with an argument beyond
 * RM_MAX_CHANGES). Returns how many steps; *status and *bad say what went wrong
 * first, if anything (parsing goes on past a bad letter). */
size_t mode_parse(const char *modes, char *const *args, int nargs, struct mode_step *out, size_t max,
                  enum mode_parse *status, char *bad);

/* The letter's kind: 'A' (list), 'B', 'C', 'D', 'P' (member prefix), or 0: unknown. */
char mode_kind(char letter);

/* A mask completed to nick!user@host: "bob" -> "bob!*@*", "bob!x" -> "bob!x@*",
 * "x@h" -> "*!x@h"; spaces, commas and control characters (IRC formatting)
 * not allowed. Returns 0, or -1 if it does
 * not fit out (len) or is empty. */
int mask_complete(const char *in, char *out, size_t len);
/* 1 if subject matches mask: '*' any run, '?' one byte, letters folded as names
 * are (ASCII, text_ieq). */
int mask_match(const char *mask, const char *subject);

/* A list of masks (bans, exceptions, invite exceptions), with who set each and when. */
struct mask_entry {
    char *mask;
    char *by;
    int64_t at_ms;
};
struct mask_list {
    struct mask_entry *v;
    uint16_t n, cap;
};

/* Add mask (completed already): 1 added, 0 already there, -1 out of memory. */
int mask_list_add(struct mask_list *l, const char *mask, const char *by, int64_t at_ms);
/* Remove it: 1 removed, 0 not there. */
int mask_list_del(struct mask_list *l, const char *mask);
/* 1 if any entry matches subject (nick!user@host). */
int mask_list_match(const struct mask_list *l, const char *subject);
void mask_list_free(struct mask_list *l);

#endif
