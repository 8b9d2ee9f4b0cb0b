/* hub.h - users, names, rooms, membership and routing.
 *
 * The hub knows nothing of wire formats, sockets or connections. Each user comes
 * with a user_ops: `encode` turns a hub_event into the bytes of that user's
 * protocol (its codec), `deliver` queues those bytes for the user. When an event
 * goes to many users, the hub encodes it once per (codec, variant) in use and
 * hands every recipient a reference to the same msg.
 *
 * Protocol state stays in the codecs: the hub has no "current room" (the plain
 * protocol's), no registration handshake (IRC's), no greeting. Every call names
 * the room it is about.
 */
#ifndef NATTER_HUB_H
#define NATTER_HUB_H

#include <stddef.h>
#include <stdint.h>

struct msg;
struct hub;
struct room;
struct user;

enum hub_event_type {
    /* Broadcasts: the same bytes for every recipient of a (codec, variant). */
    EV_SAY,       /* room, from, text: to the room's other members */
    EV_ACTION,    /* room, from, text: to the room's other members */
    EV_JOIN,      /* room, from: to the room, the joiner included */
    EV_PART,      /* room, from, text = reason or NULL: to the room, the leaver included */
    EV_QUIT,      /* from, text = reason or NULL: once to each user sharing a room */
    EV_NICK,      /* from = old name, to = new name: once to each user sharing a room, and the user */
    EV_TOPIC,     /* room, from, text = the new topic ("" cleared): to the room, the setter included */
    EV_AWAY,      /* from, text = why away, or NULL when back: once to each user sharing a room */
    EV_REALNAME,  /* from, text = its new real name (IRC's realname): once to each user sharing a room */
    EV_SHUTDOWN,  /* the server is stopping: to everyone */
    EV_SUMMARY,   /* room, joined, left, window_s: the join/leave notices folded in a storm */
    EV_MODE,      /* room, from, text = the changes made ("+o-v alice bob"): to the room */
    EV_KICK,      /* room, from, to = who is put out, text = reason or NULL: to the room, `to` included */
    EV_WALLOPS,   /* from, text: to every server operator */
    /* Unicasts: to one user, who is `to` in encode. */
    EV_PRIVMSG,   /* from -> to, text: as the recipient sees it */
    EV_PRIVECHO,  /* from -> to, text: the copy for the sender */
    EV_WHO,       /* room, filter, names[count] sorted, with modes[count], of total: a listing (see below) */
    EV_ROOMS,     /* filter, names[count] with sizes[count] sorted, of total */
    EV_INVITE,    /* room, from, to: `to` is invited into room */
    EV_KILL,      /* from, to, text = reason: `to` is put off the server (its codec then drops it) */
};

/* hub_event.flags */
#define HUB_NOTICE 1u /* EV_SAY, EV_PRIVMSG, EV_PRIVECHO: a notice, never to be answered automatically */
#define HUB_TAGMSG 2u /* EV_SAY, EV_PRIVMSG, EV_PRIVECHO: no text, only client tags (IRC's TAGMSG) */
#define HUB_ACTION 4u /* EV_PRIVMSG, EV_PRIVECHO: an action (/me) in private */

struct hub_event {
    enum hub_event_type type;
    unsigned flags;
    uint64_t id;      /* unique and ascending across restarts: IRC msgid, history */
    int64_t time_ms;  /* when the hub made it, ms since the Unix epoch: IRC server-time */
    const char *room;
    const char *from;
    const struct user *user; /* the user `from` names, when there is one (user@host for IRC) */
    const char *to;
    const char *text;
    const char *tags;  /* client tags to relay as they came ("+typing=active;+x=y"), or NULL */
    const char *const *names;
    const uint32_t *sizes;
    const uint8_t *modes; /* EV_WHO: the member modes (MM_OP, MM_VOICE) of names[i] */
    size_t count;
    size_t total;         /* listings: how many matched; count <= max_list of them are named */
    const char *filter;   /* listings: the filter asked for, or NULL */
    uint32_t joined, left, window_s; /* EV_SUMMARY */
};

struct user_ops {
    /* The bytes of ev for `to` (NULL: nothing for this user). For a broadcast
     * the result is shared with every recipient that has the same ops and the
     * same variant, so it may depend on `to` through to->variant only; for a
     * unicast, `to` is the one recipient. */
    struct msg *(*encode)(const struct hub_event *ev, const struct user *to);
    void (*deliver)(void *ctx, struct msg *m); /* takes its own reference */
    /* "user@host" of u as its protocol shows it, which bans (+b) match as
     * "name!user@host" (NULL: "user@natter"). */
    const char *(*userhost)(const struct user *u, char *out, size_t len);
    /* Close the user's connection (KILL), after its last event; the codec then
     * calls hub_disconnect as it always does. */
    void (*drop)(void *ctx);
};

enum hub_err {
    HUB_OK = 0,
    HUB_ENOMEM,
    HUB_ENICKTAKEN,
    HUB_EBADNICK,
    HUB_EBADROOM,
    HUB_ENOUSER,
    HUB_ENOTINROOM,
    HUB_ENOSUCHROOM,
    HUB_ETOOMANYROOMS,
    HUB_EALREADY,     /* hub_join: already a member (nothing happened) */
    HUB_EBUSY,        /* this loop turn's work budget is spent: nothing happened, ask again next turn */
    /* Room keepers (issue 13) */
    HUB_EBANNED,      /* join: banned (+b) */
    HUB_EINVITEONLY,  /* join: +i and not invited */
    HUB_EBADKEY,      /* join: +k and not the key */
    HUB_EFULL,        /* join: +l reached */
    HUB_ENOTOP,       /* not an operator of the room */
    HUB_ECANNOTSEND,  /* +m without voice, banned, or outside under +n */
    HUB_ETARGETNOTIN, /* the user named is not in the room (kick, +o) */
    HUB_EONROOM,      /* invite: the user named is in the room already */
    HUB_ELISTFULL,    /* +b/+e/+I: the room's lists hold RM_MAXLIST masks */
    HUB_EBADMASK,     /* a mask, key or limit that cannot be used */
    HUB_EUNKNOWNMODE, /* a mode letter nobody knows */
    HUB_ENOTOPER,     /* needs a server operator */
};

struct hub_limits {
    uint32_t max_name;     /* code points in a name */
    uint32_t max_rooms;    /* rooms per user */
    uint32_t max_announce; /* rooms larger than this get no join/part/quit/nick notices */
    uint32_t max_list;     /* entries named in one listing (the first by name); 0 = all */
    uint32_t notice_storm; /* join/leave notices per room per window before they are folded; 0 = never */
    uint32_t turn_fanout;  /* deliveries per loop turn before heavy rooms wait; 0 = no budget */
};

/* Fairness. The hub counts the work of each loop turn (one unit per delivery,
 * one per entry a listing examines). Once a turn's work passes turn_fanout, or
 * HUB_TURN_MS have passed since the turn's first heavy work, a
 * message to a heavy room (more than HUB_LIGHT_ROOM members) and a listing are
 * refused with HUB_EBUSY, unless they are the turn's first work: the codec keeps
 * the line and offers it again next turn, its connection yielding its place
 * (the connection layer serves the yielded first). Light rooms, private
 * messages and notices are always served, so a room of 1,500 cannot delay a
 * room of 2: when the server falls behind, the heaviest rooms' senders wait
 * first. The server calls hub_turn_end after each turn's writes. */
#define HUB_LIGHT_ROOM 64
#define HUB_TURN_MS 10
/* Notice storms: within a window of HUB_STORM_WINDOW_S seconds, a room's join and
 * leave (part, quit) notices past notice_storm are folded into one EV_SUMMARY for
 * the room at the window's end (the user concerned is still told its own join or
 * part). The server calls hub_tick about once a second. */
#define HUB_STORM_WINDOW_S 10

#define HUB_NAME_MAX 128   /* bytes, including the NUL: max_name code points must fit */
#define HUB_ROOM_MAX (1 + 32 * 4 + 1) /* '#', 32 code points of up to 4 bytes, NUL */
#define HUB_DEFAULT_ROOM "#lobby"
#define HUB_TOPIC_MAX 300  /* bytes of a topic (longer ones are cut at a character boundary) */
#define HUB_AWAY_MAX 200   /* bytes of an away message, likewise */

struct user {
    char *name;            /* allocated to fit: most names are short */
    const struct user_ops *ops;
    void *ctx;             /* the codec's (its connection) */
    struct room **rooms;   /* in join order; &first_room while there is room for one */
    struct room *first_room; /* most users are in one room: no allocation for it */
    uint16_t nrooms;
    uint16_t caprooms;
    uint32_t variant;      /* which of its codec's encodings it gets (e.g. IRC capabilities) */
    uint32_t mark;         /* de-duplicates recipients of quit/nick notices */
    uint32_t guest_id;     /* non-zero while the user has a guest name */
    uint8_t echo;          /* gets its own room messages back too (IRC echo-message) */
    char *away;            /* why it is away (hub_away), or NULL */
    uint8_t oper;          /* a server operator (hub_set_oper): overrides room modes */
    unsigned long long tag; /* the codec's number for it in logs (its connection's), 0: none */
};

struct hub *hub_new(const struct hub_limits *lim);
void hub_free(struct hub *h);

/* Register a user named name, or with a guest name (guestN) when name is NULL.
 * It is in no room and has been told nothing. */
enum hub_err hub_connect(struct hub *h, const struct user_ops *ops, void *ctx, const char *name, struct user **out);
/* Tell everyone sharing a room with u that it quit, then free it. */
void hub_disconnect(struct hub *h, struct user *u, const char *reason);

enum hub_err hub_nick(struct hub *h, struct user *u, const char *name);
/* Join room ("#" optional); *joined (may be NULL) is set to the room's name as
 * the hub keeps it, valid while u is in the room. HUB_EALREADY: u is in it. */
enum hub_err hub_join(struct hub *h, struct user *u, const char *room, const char **joined);
enum hub_err hub_part(struct hub *h, struct user *u, const char *room, const char *reason);
enum hub_err hub_say(struct hub *h, struct user *u, const char *room, const char *text);
enum hub_err hub_action(struct hub *h, struct user *u, const char *room, const char *text);
enum hub_err hub_privmsg(struct hub *h, struct user *u, const char *to, const char *text);
/* Any of the above to a room ("#...") or a user, with flags (HUB_NOTICE,
 * HUB_ACTION, HUB_TAGMSG: text NULL) and client tags that codecs which know
 * them relay and the others ignore (tags may be NULL). */
enum hub_err hub_message(struct hub *h, struct user *u, const char *target, unsigned flags, const char *text,
                         const char *tags);
/* The same as notices (HUB_NOTICE): automated messages nobody should answer. */
enum hub_err hub_notice(struct hub *h, struct user *u, const char *room, const char *text);
enum hub_err hub_privnotice(struct hub *h, struct user *u, const char *to, const char *text);
/* Set the topic of a room u is in ("" clears it); every member may, until rooms
 * have operators. Tells the room (EV_TOPIC). */
enum hub_err hub_topic(struct hub *h, struct user *u, const char *room, const char *text);
/* Mark u away (text, cut to HUB_AWAY_MAX) or back (NULL or ""); tells the
 * users sharing a room (EV_AWAY). */
enum hub_err hub_away(struct hub *h, struct user *u, const char *text);
/* u's real name (a description, kept by its codec) changed: tell the users
 * sharing a room (EV_REALNAME). */
void hub_realname(struct hub *h, struct user *u, const char *text);

/* Listings, for any codec (the plain /who and /rooms, IRC NAMES, WHO, LIST).
 * Bounded by design: the event names at most max_list entries, the first by name
 * (strcmp order; a bounded heap, so the cost is the entries examined, not a
 * sort of them all), of those whose name contains filter (ASCII case-insensitive;
 * NULL or "" for all), and says how many matched (total), so a codec can say
 * "100 of 1,500" and how to narrow it down. One unicast event to u, encoded by
 * u's codec alone. *work (may be NULL) is set to the entries examined, for the
 * codec to charge the asker with (with the reply's size); HUB_EBUSY: this turn's
 * budget is spent (see Fairness), nothing was sent. */
enum hub_err hub_who(struct hub *h, struct user *u, const char *room, const char *filter, size_t *work);
enum hub_err hub_rooms(struct hub *h, struct user *u, const char *filter, size_t *work);

/* Fairness for a command that does several things at once (IRC's PRIVMSG #a,#b
 * or JOIN #a,#b, each with a fan-out or a listing): hub_budget_ready says
 * whether the fan-out to room, or its listing (room NULL: the room list), fits
 * this turn's budget (HUB_EBUSY: leave the whole command for the next turn).
 * Once it has begun, the rest of the command goes through between
 * hub_budget_waive(h, 1) and hub_budget_waive(h, 0), so it is never half done. */
enum hub_err hub_budget_ready(struct hub *h, const char *room);
void hub_budget_waive(struct hub *h, int on);

/* The loop turn is over: a fresh work budget. */
void hub_turn_end(struct hub *h);
/* About once a second, with a monotonic clock: sends the summaries of notice
 * storms whose window has ended. */
void hub_tick(struct hub *h, int64_t now_ms);

/* Something that keeps what is said (history.c): called on the loop for every
 * room message (EV_SAY, EV_ACTION) and private message (EV_PRIVMSG) once it has
 * been fanned out, with its id and time; it must not block, and must copy what
 * it keeps. NULL: nothing records. */
typedef void hub_record_fn(void *ctx, const struct hub_event *ev);
void hub_set_recorder(struct hub *h, hub_record_fn *fn, void *ctx);

/* Whether u is in the room called name ('#' optional; without ASCII case). */
int hub_in_room(const struct hub *h, const struct user *u, const char *name);

/* Tell every user the server is stopping. */
void hub_shutdown(struct hub *h);

size_t hub_user_count(const struct hub *h);
const struct hub_limits *hub_limits(const struct hub *h);
/* New limits (a reload): they apply from the next call on; nobody already over
 * one (a longer name, more rooms) is pushed out. */
void hub_set_limits(struct hub *h, const struct hub_limits *lim);
struct user *hub_find_user(const struct hub *h, const char *name);
/* 1 if name follows the name rules (every protocol's: see hub.c). */
int hub_valid_name(const struct hub *h, const char *name);
const char *hub_room_name(const struct room *r);
/* A room by name ("#" optional), or NULL when it does not exist. */
struct room *hub_find_room(const struct hub *h, const char *name);
uint32_t hub_room_size(const struct room *r);
/* The room's topic ("" when none), who set it and when (ms since the epoch). */
const char *hub_room_topic(const struct room *r, const char **by, int64_t *at_ms);
size_t hub_room_count(const struct hub *h);

/* ==== Room keepers (issue 13): modes, operators, kick, ban, invite; server operators ====
 * The rules are in hubmodes.c; the letters and masks in roommodes.h. */

/* hub_join with a key for +k rooms (NULL: none). A new room's first member is
 * its operator. Refusals: HUB_EBANNED, HUB_EINVITEONLY, HUB_EBADKEY, HUB_EFULL
 * (none for server operators). */
enum hub_err hub_join_key(struct hub *h, struct user *u, const char *room, const char *key, const char **joined);

/* u's member modes in r (MM_OP, MM_VOICE); -1 when u is not in r. */
int hub_member_modes(const struct room *r, const struct user *u);
/* The room's modes (RM_*), its key ("" none) and limit (0 none), when it was made. */
unsigned hub_room_modes(const struct room *r, const char **key, uint32_t *limit);
int64_t hub_room_created(const struct room *r);
/* "+ntk key" (with_args 0: "+ntk"): the room's modes as IRC's 324 shows them. */
const char *hub_room_mode_string(const struct room *r, int with_args, char *out, size_t len);
struct mask_list;
/* The list of a list letter ('b', 'e', 'I'), or NULL. */
const struct mask_list *hub_room_list(const struct room *r, char letter);
/* "name!user@host" of any user, as bans match it. */
const char *hub_user_mask(const struct user *u, char *out, size_t len);

/* Apply steps (roommodes.h: mode_parse) to room for u: each step's outcome in
 * err[i] (HUB_OK: applied or nothing to change; list steps without an argument
 * are left to the codec, which shows the list). One EV_MODE tells the room
 * what changed. HUB_ENOTINROOM etc. for the room itself. */
struct mode_step;
enum hub_err hub_mode(struct hub *h, struct user *u, const char *room, const struct mode_step *steps, size_t n,
                      enum hub_err *err);
/* Put target out of room (EV_KICK to the room, then it is no longer a member). */
enum hub_err hub_kick(struct hub *h, struct user *u, const char *room, const char *target, const char *reason);
/* Invite target into room (EV_INVITE to target); under +i only operators may. */
enum hub_err hub_invite(struct hub *h, struct user *u, const char *room, const char *target);

/* Make u a server operator (or not). */
void hub_set_oper(struct hub *h, struct user *u, int on);
/* A server operator puts target off the server: its neighbours see it quit
 * ("Killed (oper (reason))"), it gets EV_KILL, its codec drops it. */
enum hub_err hub_kill(struct hub *h, struct user *oper, const char *target, const char *reason);
/* A server operator's message to every server operator (EV_WALLOPS). */
enum hub_err hub_wallops(struct hub *h, struct user *u, const char *text);

#define HUB_RATE_SECONDS 10 /* messages per second: averaged over this many whole seconds */
struct hub_stats {
    size_t users, rooms, opers;
    uint64_t messages; /* said in rooms and privately, since start */
    double per_second; /* over the last HUB_RATE_SECONDS whole seconds */
};
void hub_stats(struct hub *h, struct hub_stats *out);

#endif
