/* hub.h - users, names, rooms, membership and routing.
 *
 * The hub knows nothing of wire formats or sockets. Each user comes with a
 * user_ops: `encode` turns a hub_event into the bytes of that user's protocol
 * (the codec), `deliver` queues those bytes for the user (the transport). When an
 * event goes to many users, the hub encodes it once per codec in use and hands
 * every recipient a reference to the same msg.
 */
#ifndef NATTER_HUB_H
#define NATTER_HUB_H

#include <stddef.h>
#include <stdint.h>

struct msg;
struct hub;
struct room;

enum hub_event_type {
    EV_WELCOME,   /* to: new user; from = guest name */
    EV_SAY,       /* room, from, text */
    EV_ACTION,    /* room, from, text */
    EV_PRIVMSG,   /* from -> to, text: as the recipient sees it */
    EV_PRIVECHO,  /* from -> to, text: the copy for the sender */
    EV_JOIN,      /* room, from */
    EV_PART,      /* room, from, text = reason or NULL */
    EV_QUIT,      /* from, text = reason or NULL */
    EV_NICK,      /* from = old name, to = new name */
    EV_SWITCH,    /* room: the user's current room is now this one */
    EV_WHO,       /* room, names[count] */
    EV_ROOMS,     /* names[count] with sizes[count] */
    EV_BYE,       /* from: reply to the user's own quit */
    EV_SHUTDOWN,  /* the server is stopping */
};

struct hub_event {
    enum hub_event_type type;
    const char *room;
    const char *from;
    const char *to;
    const char *text;
    const char *const *names;
    const uint32_t *sizes;
    size_t count;
};

struct user_ops {
    struct msg *(*encode)(const struct hub_event *ev);
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
    HUB_ENOROOM,      /* the user is in no room at all */
    HUB_ETOOMANYROOMS,
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
    void *ctx;
    struct room **rooms;   /* in join order; &first_room while there is room for one */
    struct room *first_room; /* most users are in one room: no allocation for it */
    struct room *current;
    uint16_t nrooms;
    uint16_t caprooms;
    uint32_t mark;         /* de-duplicates recipients of quit/nick notices */
    uint32_t guest_id;     /* non-zero while the user has a guest name */
};

struct hub *hub_new(const struct hub_limits *lim);
void hub_free(struct hub *h);

/* A new user with a guest name, welcomed and joined to #lobby; NULL if out of memory. */
struct user *hub_connect(struct hub *h, const struct user_ops *ops, void *ctx);
/* Tell the user's rooms it quit, then free it. */
void hub_disconnect(struct hub *h, struct user *u, const char *reason);

enum hub_err hub_nick(struct hub *h, struct user *u, const char *name);
enum hub_err hub_join(struct hub *h, struct user *u, const char *room);
enum hub_err hub_part(struct hub *h, struct user *u, const char *room, const char *reason);
enum hub_err hub_say(struct hub *h, struct user *u, const char *text);
enum hub_err hub_action(struct hub *h, struct user *u, const char *text);
enum hub_err hub_privmsg(struct hub *h, struct user *u, const char *to, const char *text);
enum hub_err hub_who(struct hub *h, struct user *u, const char *room);
enum hub_err hub_rooms(struct hub *h, struct user *u);
/* Reply to the user's own quit (EV_BYE); the caller then disconnects it. */
void hub_bye(struct hub *h, struct user *u);

/* Send one event to one user, encoded for its codec. */
void hub_send(struct user *u, const struct hub_event *ev);
/* Tell every user the server is stopping. */
void hub_shutdown(struct hub *h);

size_t hub_user_count(const struct hub *h);
const struct hub_limits *hub_limits(const struct hub *h);
struct user *hub_find_user(const struct hub *h, const char *name);

#endif
