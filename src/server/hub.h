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
    EV_SHUTDOWN,  /* the server is stopping: to everyone */
    /* Unicasts: to one user, who is `to` in encode. */
    EV_PRIVMSG,   /* from -> to, text: as the recipient sees it */
    EV_PRIVECHO,  /* from -> to, text: the copy for the sender */
    EV_WHO,       /* room, names[count], sorted */
    EV_ROOMS,     /* names[count] with sizes[count], sorted */
};

struct hub_event {
    enum hub_event_type type;
    uint64_t id;      /* unique and ascending across restarts: IRC msgid, history */
    int64_t time_ms;  /* when the hub made it, ms since the Unix epoch: IRC server-time */
    const char *room;
    const char *from;
    const char *to;
    const char *text;
    const char *const *names;
    const uint32_t *sizes;
    size_t count;
};

struct user_ops {
    /* The bytes of ev for `to` (NULL: nothing for this user). For a broadcast
     * the result is shared with every recipient that has the same ops and the
     * same variant, so it may depend on `to` through to->variant only; for a
     * unicast, `to` is the one recipient. */
    struct msg *(*encode)(const struct hub_event *ev, const struct user *to);
    void (*deliver)(void *ctx, struct msg *m); /* takes its own reference */
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
};

struct hub_limits {
    uint32_t max_name;     /* code points in a name */
    uint32_t max_rooms;    /* rooms per user */
    uint32_t max_announce; /* rooms larger than this get no join/part/quit/nick notices */
};

#define HUB_NAME_MAX 128   /* bytes, including the NUL: max_name code points must fit */
#define HUB_ROOM_MAX (1 + 32 * 4 + 1) /* '#', 32 code points of up to 4 bytes, NUL */
#define HUB_DEFAULT_ROOM "#lobby"

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
enum hub_err hub_who(struct hub *h, struct user *u, const char *room);
enum hub_err hub_rooms(struct hub *h, struct user *u);

/* Tell every user the server is stopping. */
void hub_shutdown(struct hub *h);

size_t hub_user_count(const struct hub *h);
const struct hub_limits *hub_limits(const struct hub *h);
/* New limits (a reload): they apply from the next call on; nobody already over
 * one (a longer name, more rooms) is pushed out. */
void hub_set_limits(struct hub *h, const struct hub_limits *lim);
struct user *hub_find_user(const struct hub *h, const char *name);
const char *hub_room_name(const struct room *r);

#endif
