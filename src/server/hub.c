/* hub.c - users, rooms and routing (see hub.h). */
#include "server/hub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/dict.h"
#include "core/log.h"
#include "core/names.h"
#include "core/text.h"

struct room {
    char *name;
    struct user **members;
    uint32_t count;
    uint32_t cap;
};

struct hub {
    struct hub_limits lim;
    struct dict users; /* by name */
    struct dict rooms; /* by name */
    uint32_t next_guest;
    uint32_t gen;      /* for user.mark */
    uint64_t last_id;  /* of the last event made */
};

/* Event ids: the event's time in ms, shifted left, plus a sequence within the
 * millisecond: unique and ascending across restarts (unless the clock goes back
 * further than the downtime), with no state on disk. 2^16 events a millisecond
 * before an id runs ahead of its time. */
#define ID_SEQ_BITS 16

/* A user's name and its key share one allocation, "Alice\0alice\0": the key (NFKC,
 * case folded: core/names.h) is what the users table compares. */
static const char *user_key(const void *p)
{
    const char *n = ((const struct user *)p)->name;
    return n + strlen(n) + 1;
}

#define KEY_MAX 1024 /* NFKC may grow a name a lot (U+FDFA is 18 characters); longer is refused */

static char *name_and_key(const char *nfc, const char *key)
{
    size_t a = strlen(nfc) + 1, b = strlen(key) + 1;
    char *p = malloc(a + b);
    if (p) {
        memcpy(p, nfc, a);
        memcpy(p + a, key, b);
    }
    return p;
}
static const char *room_key(const void *p) { return ((const struct room *)p)->name; }

struct hub *hub_new(const struct hub_limits *lim)
{
    struct hub *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->lim = *lim;
    dict_init(&h->users, user_key);
    dict_init(&h->rooms, room_key);
    return h;
}

static void room_free(struct room *r)
{
    free(r->members);
    free(r->name);
    free(r);
}

void hub_free(struct hub *h)
{
    if (!h)
        return;
    /* Users belong to their connections, which free them first; rooms are ours. */
    for (size_t i = 0; i < h->rooms.cap; i++)
        if (h->rooms.slots[i])
            room_free(h->rooms.slots[i]);
    dict_free(&h->rooms);
    dict_free(&h->users);
    free(h);
}

size_t hub_user_count(const struct hub *h) { return h->users.count; }
const char *hub_room_name(const struct room *r) { return r->name; }
const struct hub_limits *hub_limits(const struct hub *h) { return &h->lim; }
void hub_set_limits(struct hub *h, const struct hub_limits *lim) { h->lim = *lim; }

struct user *hub_find_user(const struct hub *h, const char *name)
{
    char key[KEY_MAX];
    return name_key(name, key, sizeof key) == 0 ? dict_get(&h->users, key) : NULL;
}

/* ==== Delivery ==== */

static void stamp(struct hub *h, struct hub_event *ev)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ev->time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    uint64_t floor = (uint64_t)ev->time_ms << ID_SEQ_BITS;
    h->last_id = h->last_id + 1 > floor ? h->last_id + 1 : floor;
    ev->id = h->last_id;
}

/* The msgs encoded so far for one event, one per (codec, variant): a broadcast
 * is built once per protocol and variant in use, then shared by reference. The
 * first few live on the stack; more grow onto the heap. */
#define FANOUT_SLOTS 8
struct encoding {
    const struct user_ops *ops;
    uint32_t variant;
    struct msg *msg; /* NULL: nothing to send to these users */
};

struct fanout {
    const struct hub_event *ev;
    struct encoding *enc;
    size_t n, cap;
    struct encoding slots[FANOUT_SLOTS];
};

static void fanout_init(struct fanout *f, const struct hub_event *ev)
{
    f->ev = ev;
    f->enc = f->slots;
    f->n = 0;
    f->cap = FANOUT_SLOTS;
}

static int fanout_grow(struct fanout *f)
{
    size_t cap = f->cap * 2;
    struct encoding *p = malloc(cap * sizeof *p);
    if (!p)
        return -1;
    memcpy(p, f->enc, f->n * sizeof *p);
    if (f->enc != f->slots)
        free(f->enc);
    f->enc = p;
    f->cap = cap;
    return 0;
}

/* The cached encoding for u's codec and variant, made on first use; NULL only
 * when out of memory for the cache. */
static const struct encoding *encoding_for(struct fanout *f, const struct user *u)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->enc[i].ops == u->ops && f->enc[i].variant == u->variant)
            return &f->enc[i];
    if (f->n == f->cap && fanout_grow(f) < 0)
        return NULL;
    f->enc[f->n] = (struct encoding){u->ops, u->variant, u->ops->encode(f->ev, u)};
    return &f->enc[f->n++];
}

static void fanout_to(struct fanout *f, struct user *u)
{
    const struct encoding *e = encoding_for(f, u);
    if (e) {
        if (e->msg)
            u->ops->deliver(u->ctx, e->msg);
        return;
    }
    struct msg *m = u->ops->encode(f->ev, u); /* no room to cache it: this user's alone */
    if (m) {
        u->ops->deliver(u->ctx, m);
        msg_unref(m);
    }
}

static void fanout_done(struct fanout *f)
{
    for (size_t i = 0; i < f->n; i++)
        msg_unref(f->enc[i].msg);
    if (f->enc != f->slots)
        free(f->enc);
}

/* One event to one user. */
static void send_to(struct hub *h, struct user *u, struct hub_event *ev)
{
    stamp(h, ev);
    struct msg *m = u->ops->encode(ev, u);
    if (m) {
        u->ops->deliver(u->ctx, m);
        msg_unref(m);
    }
}

/* To every member of r except `except` (may be NULL). */
static void to_room(struct hub *h, struct room *r, struct hub_event *ev, const struct user *except)
{
    struct fanout f;
    stamp(h, ev);
    fanout_init(&f, ev);
    for (uint32_t i = 0; i < r->count; i++)
        if (r->members[i] != except)
            fanout_to(&f, r->members[i]);
    fanout_done(&f);
}

/* Once to each user sharing a room with u (and to u itself if include_self):
 * quit and rename notices, which must not arrive twice via two shared rooms. */
static void to_neighbours(struct hub *h, struct user *u, struct hub_event *ev, int include_self)
{
    struct fanout f;
    stamp(h, ev);
    fanout_init(&f, ev);
    if (++h->gen == 0) { /* after 2^32 notices: start the marks afresh */
        for (size_t i = 0; i < h->users.cap; i++)
            if (h->users.slots[i])
                ((struct user *)h->users.slots[i])->mark = 0;
        h->gen = 1;
    }
    uint32_t gen = h->gen;
    u->mark = gen;
    if (include_self)
        fanout_to(&f, u);
    for (uint16_t i = 0; i < u->nrooms; i++) {
        struct room *r = u->rooms[i];
        if (r->count > h->lim.max_announce)
            continue;
        for (uint32_t j = 0; j < r->count; j++) {
            struct user *m = r->members[j];
            if (m->mark != gen) {
                m->mark = gen;
                fanout_to(&f, m);
            }
        }
    }
    fanout_done(&f);
}

void hub_shutdown(struct hub *h)
{
    struct hub_event ev = {.type = EV_SHUTDOWN};
    struct fanout f;
    stamp(h, &ev);
    fanout_init(&f, &ev);
    for (size_t i = 0; i < h->users.cap; i++)
        if (h->users.slots[i])
            fanout_to(&f, h->users.slots[i]);
    fanout_done(&f);
}

/* ==== Rooms ==== */

static struct room *room_get_or_create(struct hub *h, const char *name)
{
    struct room *r = dict_get(&h->rooms, name);
    if (r)
        return r;
    r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(name)) || dict_add(&h->rooms, r) < 0) {
        if (r)
            free(r->name);
        free(r);
        return NULL;
    }
    return r;
}

static int room_add(struct room *r, struct user *u)
{
    if (r->count == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 4;
        struct user **p = realloc(r->members, cap * sizeof *p);
        if (!p)
            return -1;
        r->members = p;
        r->cap = cap;
    }
    r->members[r->count++] = u;
    return 0;
}

static void room_remove(struct hub *h, struct room *r, struct user *u)
{
    for (uint32_t i = 0; i < r->count; i++) {
        if (r->members[i] == u) {
            r->members[i] = r->members[--r->count]; /* order does not matter */
            break;
        }
    }
    if (r->count == 0) {
        dict_remove(&h->rooms, r);
        room_free(r);
    }
}

static int user_index_of(const struct user *u, const struct room *r)
{
    for (int i = 0; i < u->nrooms; i++)
        if (u->rooms[i] == r)
            return i;
    return -1;
}

static int user_add_room(struct user *u, struct room *r)
{
    if (u->caprooms == 0) {
        u->rooms = &u->first_room;
        u->caprooms = 1;
    }
    if (u->nrooms == u->caprooms) {
        uint16_t cap = (uint16_t)(u->caprooms * 2);
        struct room **p = malloc(cap * sizeof *p);
        if (!p)
            return -1;
        memcpy(p, u->rooms, u->nrooms * sizeof *p);
        if (u->rooms != &u->first_room)
            free(u->rooms);
        u->rooms = p;
        u->caprooms = cap;
    }
    u->rooms[u->nrooms++] = r;
    return 0;
}

static void user_drop_room(struct user *u, int i)
{
    memmove(&u->rooms[i], &u->rooms[i + 1], (size_t)(u->nrooms - i - 1) * sizeof *u->rooms);
    u->nrooms--;
    if (u->nrooms == 0 && u->rooms != &u->first_room) {
        free(u->rooms);
        u->rooms = NULL;
        u->caprooms = 0;
    }
}

/* Room names may be given without '#'. Returns 0 if the result is valid. A name
 * that does not fit is invalid: cut short, it could end in half a UTF-8 sequence
 * and still pass text_valid_room. */
static int room_name(const char *in, char *out, size_t len)
{
    int n = snprintf(out, len, "%s%s", in[0] == '#' ? "" : "#", in);
    return n >= 0 && (size_t)n < len && text_valid_room(out) ? 0 : -1;
}

/* A join or part: to the whole room, or, in rooms too big to announce, only to
 * the user concerned (who still needs to know it happened). */
static void announce(struct hub *h, struct room *r, struct user *u, struct hub_event *ev)
{
    if (r->count <= h->lim.max_announce)
        to_room(h, r, ev, NULL);
    else
        send_to(h, u, ev);
}

enum hub_err hub_join(struct hub *h, struct user *u, const char *name, const char **joined)
{
    char rname[HUB_ROOM_MAX];
    if (room_name(name, rname, sizeof rname) < 0)
        return HUB_EBADROOM;
    struct room *r = dict_get(&h->rooms, rname);
    if (r && user_index_of(u, r) >= 0) {
        if (joined)
            *joined = r->name;
        return HUB_EALREADY;
    }
    if (u->nrooms >= h->lim.max_rooms)
        return HUB_ETOOMANYROOMS;
    if (!(r = room_get_or_create(h, rname)))
        return HUB_ENOMEM;
    if (user_add_room(u, r) < 0 || room_add(r, u) < 0) {
        if (user_index_of(u, r) >= 0)
            user_drop_room(u, user_index_of(u, r));
        if (r->count == 0)
            room_remove(h, r, u);
        return HUB_ENOMEM;
    }
    if (joined)
        *joined = r->name;
    announce(h, r, u, &(struct hub_event){.type = EV_JOIN, .room = r->name, .from = u->name});
    return HUB_OK;
}

/* The room named name (a '#' is added if missing) that u is in, or an error. */
static enum hub_err member_room(struct hub *h, struct user *u, const char *name, struct room **out)
{
    char rname[HUB_ROOM_MAX];
    if (room_name(name, rname, sizeof rname) < 0)
        return HUB_EBADROOM;
    struct room *r = dict_get(&h->rooms, rname);
    if (!r)
        return HUB_ENOSUCHROOM;
    if (user_index_of(u, r) < 0)
        return HUB_ENOTINROOM;
    *out = r;
    return HUB_OK;
}

/* Take u out of room index i, telling the room (unless quietly). */
static void leave_room(struct hub *h, struct user *u, int i, const char *reason, int quietly)
{
    struct room *r = u->rooms[i];
    if (!quietly)
        announce(h, r, u, &(struct hub_event){.type = EV_PART, .room = r->name, .from = u->name, .text = reason});
    user_drop_room(u, i);
    room_remove(h, r, u); /* may free r */
}

enum hub_err hub_part(struct hub *h, struct user *u, const char *name, const char *reason)
{
    struct room *r;
    enum hub_err err = member_room(h, u, name, &r);
    if (err == HUB_ENOSUCHROOM)
        err = HUB_ENOTINROOM; /* to the one leaving, the same thing */
    if (err)
        return err;
    leave_room(h, u, user_index_of(u, r), reason, 0);
    return HUB_OK;
}

/* ==== Users ==== */

/* A guest name no one has: someone may have picked "guestN" by hand. */
static void guest_name(struct hub *h, struct user *u, char *out, size_t len)
{
    do {
        u->guest_id = ++h->next_guest;
        if (u->guest_id == 0)
            u->guest_id = h->next_guest = 1;
        snprintf(out, len, "guest%u", u->guest_id);
    } while (dict_get(&h->users, out));
}

/* The rules of core/names.h: name's NFC form and its key, or not a name. */
static int checked_name(const struct hub *h, const char *name, char nfc[HUB_NAME_MAX], char key[KEY_MAX])
{
    return name_normalize(name, h->lim.max_name, nfc, HUB_NAME_MAX) == NAME_OK && name_key(nfc, key, KEY_MAX) == 0;
}

enum hub_err hub_connect(struct hub *h, const struct user_ops *ops, void *ctx, const char *name, struct user **out)
{
    char nfc[HUB_NAME_MAX], key[KEY_MAX];
    if (name && !checked_name(h, name, nfc, key))
        return HUB_EBADNICK;
    if (name && dict_get(&h->users, key))
        return HUB_ENICKTAKEN;
    struct user *u = calloc(1, sizeof *u);
    if (!u)
        return HUB_ENOMEM;
    u->ops = ops;
    u->ctx = ctx;
    char guest[32];
    if (!name)
        guest_name(h, u, guest, sizeof guest);
    if (!(u->name = name ? name_and_key(nfc, key) : name_and_key(guest, guest)) || dict_add(&h->users, u) < 0) {
        free(u->name);
        free(u);
        return HUB_ENOMEM;
    }
    *out = u;
    return HUB_OK;
}

void hub_disconnect(struct hub *h, struct user *u, const char *reason)
{
    struct hub_event ev = {.type = EV_QUIT, .from = u->name, .text = reason};
    to_neighbours(h, u, &ev, 0);
    while (u->nrooms > 0)
        leave_room(h, u, u->nrooms - 1, NULL, 1);
    dict_remove(&h->users, u);
    free(u->name);
    free(u);
}

enum hub_err hub_nick(struct hub *h, struct user *u, const char *name)
{
    char nfc[HUB_NAME_MAX], key[KEY_MAX];
    if (!checked_name(h, name, nfc, key))
        return HUB_EBADNICK;
    struct user *other = dict_get(&h->users, key);
    if (other && other != u)
        return HUB_ENICKTAKEN;
    if (strcmp(u->name, nfc) == 0)
        return HUB_OK; /* nothing changes */
    char *fresh = name_and_key(nfc, key);
    if (!fresh)
        return HUB_ENOMEM;
    char *old = u->name;
    dict_remove(&h->users, u);
    u->name = fresh;
    dict_add(&h->users, u); /* cannot fail: the table did not grow */
    u->guest_id = 0;
    /* Logged (names only, never what is said): so an operator can tie a name to
     * the connection's address in the connect line. */
    log_info("rename #%llu %s -> %s", u->tag, old, u->name);
    struct hub_event ev = {.type = EV_NICK, .from = old, .to = u->name};
    to_neighbours(h, u, &ev, 1);
    free(old);
    return HUB_OK;
}

/* ==== Messages ==== */

static enum hub_err say(struct hub *h, struct user *u, enum hub_event_type type, const char *name, const char *text)
{
    struct room *r;
    enum hub_err err = member_room(h, u, name, &r);
    if (err)
        return err;
    struct hub_event ev = {.type = type, .room = r->name, .from = u->name, .text = text};
    to_room(h, r, &ev, u);
    return HUB_OK;
}

enum hub_err hub_say(struct hub *h, struct user *u, const char *room, const char *text)
{
    return say(h, u, EV_SAY, room, text);
}

enum hub_err hub_action(struct hub *h, struct user *u, const char *room, const char *text)
{
    return say(h, u, EV_ACTION, room, text);
}

enum hub_err hub_privmsg(struct hub *h, struct user *u, const char *to, const char *text)
{
    struct user *r = dict_get(&h->users, to);
    if (!r)
        return HUB_ENOUSER;
    struct hub_event ev = {.type = EV_PRIVMSG, .from = u->name, .to = r->name, .text = text};
    send_to(h, r, &ev);
    ev.type = EV_PRIVECHO;
    send_to(h, u, &ev);
    return HUB_OK;
}

/* ==== Listings ==== */

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

enum hub_err hub_who(struct hub *h, struct user *u, const char *name)
{
    char rname[HUB_ROOM_MAX];
    if (room_name(name, rname, sizeof rname) < 0)
        return HUB_EBADROOM;
    struct room *r = dict_get(&h->rooms, rname);
    if (!r)
        return HUB_ENOSUCHROOM;
    const char **names = malloc(r->count * sizeof *names);
    if (!names)
        return HUB_ENOMEM;
    for (uint32_t i = 0; i < r->count; i++)
        names[i] = r->members[i]->name;
    qsort(names, r->count, sizeof *names, cmp_names);
    send_to(h, u, &(struct hub_event){.type = EV_WHO, .room = r->name, .names = names, .count = r->count});
    free(names);
    return HUB_OK;
}

enum hub_err hub_rooms(struct hub *h, struct user *u)
{
    size_t n = h->rooms.count;
    const char **names = malloc((n ? n : 1) * sizeof *names);
    struct room **rooms = malloc((n ? n : 1) * sizeof *rooms);
    uint32_t *sizes = malloc((n ? n : 1) * sizeof *sizes);
    if (!names || !rooms || !sizes) {
        free(names), free(rooms), free(sizes);
        return HUB_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < h->rooms.cap; i++)
        if (h->rooms.slots[i])
            rooms[k++] = h->rooms.slots[i];
    for (size_t i = 0; i < k; i++)
        names[i] = rooms[i]->name;
    qsort(names, k, sizeof *names, cmp_names);
    for (size_t i = 0; i < k; i++)
        sizes[i] = ((struct room *)dict_get(&h->rooms, names[i]))->count;
    send_to(h, u, &(struct hub_event){.type = EV_ROOMS, .names = names, .sizes = sizes, .count = k});
    free(names), free(rooms), free(sizes);
    return HUB_OK;
}
