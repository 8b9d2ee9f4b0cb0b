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
#include "server/hubroom.h"

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
    room_state_free(r);
    free(r->mflags);
    free(r->topic);
    free(r->topic_by);
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
    free(h->storms);
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

uint32_t hub_room_size(const struct room *r) { return r->count; }
size_t hub_room_count(const struct hub *h) { return h->rooms.count; }

const char *hub_room_topic(const struct room *r, const char **by, int64_t *at_ms)
{
    if (by)
        *by = r->topic_by ? r->topic_by : "";
    if (at_ms)
        *at_ms = r->topic_ms;
    return r->topic ? r->topic : "";
}

void hub_set_recorder(struct hub *h, hub_record_fn *fn, void *ctx)
{
    h->record = fn;
    h->record_ctx = ctx;
}

static void record(struct hub *h, const struct hub_event *ev)
{
    if (h->record && !(ev->flags & HUB_TAGMSG)) /* a TAGMSG has no text: nothing to keep */
        h->record(h->record_ctx, ev);
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

static size_t *turn_work; /* the budget of the hub whose fan-out is running: it counts deliveries */

static void fanout_init(struct hub *h, struct fanout *f, const struct hub_event *ev)
{
    turn_work = &h->turn_work;
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
    if (turn_work)
        (*turn_work)++;
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
    turn_work = NULL;
    for (size_t i = 0; i < f->n; i++)
        msg_unref(f->enc[i].msg);
    if (f->enc != f->slots)
        free(f->enc);
}

/* One event to one user. */
void send_to(struct hub *h, struct user *u, struct hub_event *ev)
{
    stamp(h, ev);
    h->turn_work++;
    struct msg *m = u->ops->encode(ev, u);
    if (m) {
        u->ops->deliver(u->ctx, m);
        msg_unref(m);
    }
}

/* To every member of r except `except` (may be NULL). */
void to_room(struct hub *h, struct room *r, struct hub_event *ev, const struct user *except)
{
    struct fanout f;
    stamp(h, ev);
    fanout_init(h, &f, ev);
    for (uint32_t i = 0; i < r->count; i++)
        if (r->members[i] != except || except->echo)
            fanout_to(&f, r->members[i]);
    fanout_done(&f);
}

static int storm_fold(struct hub *h, struct room *r, int joining);

/* Once to each user sharing a room with u (and to u itself if include_self):
 * quit and rename notices, which must not arrive twice via two shared rooms.
 * Quits in a room with a notice storm are folded into its summary. */
void to_neighbours(struct hub *h, struct user *u, struct hub_event *ev, int include_self)
{
    struct fanout f;
    stamp(h, ev);
    fanout_init(h, &f, ev);
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
        if (r->count > h->lim.max_announce || (ev->type == EV_QUIT && storm_fold(h, r, 0)))
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
    fanout_init(h, &f, &ev);
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
    room_state_init(h, r); /* after the name: the default room's modes differ */
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
        uint8_t *f = realloc(r->mflags, cap);
        if (!f)
            return -1;
        r->mflags = f;
        r->cap = cap;
    }
    /* The first to join a new room keeps it; but everyone joins the default room
     * on connecting, so being first there says nothing: it has no keeper until a
     * server operator gives it one (MODE #lobby +o NAME, /op #lobby NAME). */
    r->mflags[r->count] = r->count == 0 && !room_is_default(r) ? MM_OP : 0;
    r->members[r->count++] = u;
    return 0;
}

static void room_remove(struct hub *h, struct room *r, struct user *u)
{
    for (uint32_t i = 0; i < r->count; i++) {
        if (r->members[i] == u) {
            r->members[i] = r->members[--r->count]; /* order does not matter */
            r->mflags[i] = r->mflags[r->count];
            break;
        }
    }
    if (r->count == 0) {
        if (r->storm_at) { /* its storm ends with it */
            struct room *last = h->storms[--h->nstorms];
            h->storms[r->storm_at - 1] = last;
            last->storm_at = r->storm_at;
        }
        dict_remove(&h->rooms, r);
        room_free(r);
    }
}

int user_index_of(const struct user *u, const struct room *r)
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

struct room *hub_find_room(const struct hub *h, const char *name)
{
    char rname[HUB_ROOM_MAX];
    return room_name(name, rname, sizeof rname) < 0 ? NULL : dict_get(&h->rooms, rname);
}

/* A join or part: to the whole room, or, in rooms too big to announce, only to
 * the user concerned (who still needs to know it happened). */
static void announce(struct hub *h, struct room *r, struct user *u, struct hub_event *ev)
{
    if (r->count <= h->lim.max_announce && !storm_fold(h, r, ev->type == EV_JOIN))
        to_room(h, r, ev, NULL);
    else
        send_to(h, u, ev);
}

/* ==== Notice storms ==== */

#define STORM_WINDOW_MS (HUB_STORM_WINDOW_S * 1000)

/* Count a join (or a leave) notice for r: 1 if it is to be folded into the
 * room's summary instead of sent (past notice_storm in this window). */
static int storm_fold(struct hub *h, struct room *r, int joining)
{
    if (!h->lim.notice_storm)
        return 0;
    if (!r->storm_at && h->now_ms - r->win_start >= STORM_WINDOW_MS) {
        r->win_start = h->now_ms;
        r->win_notices = 0;
    }
    if (++r->win_notices <= h->lim.notice_storm)
        return 0;
    if (!r->storm_at) {
        if (h->nstorms == h->capstorms) {
            uint32_t cap = h->capstorms ? h->capstorms * 2 : 16;
            struct room **p = realloc(h->storms, cap * sizeof *p);
            if (!p)
                return 0; /* no memory to remember it: send the notice after all */
            h->storms = p;
            h->capstorms = cap;
        }
        h->storms[h->nstorms++] = r;
        r->storm_at = h->nstorms;
    }
    if (joining)
        r->joined++;
    else
        r->left++;
    return 1;
}

void hub_tick(struct hub *h, int64_t now_ms)
{
    h->now_ms = now_ms;
    for (uint32_t i = 0; i < h->nstorms;) {
        struct room *r = h->storms[i];
        if (now_ms - r->win_start < STORM_WINDOW_MS) {
            i++;
            continue;
        }
        if (r->joined || r->left) {
            struct hub_event ev = {.type = EV_SUMMARY, .room = r->name, .joined = r->joined, .left = r->left,
                                   .window_s = HUB_STORM_WINDOW_S};
            to_room(h, r, &ev, NULL);
            /* Still stormy: the next window folds from its first notice on. */
            r->joined = r->left = 0;
            r->win_start = now_ms;
            r->win_notices = h->lim.notice_storm;
            i++;
            continue;
        }
        /* A quiet window: the storm is over. */
        r->storm_at = 0;
        r->win_notices = 0;
        h->storms[i] = h->storms[--h->nstorms];
        if (i < h->nstorms)
            h->storms[i]->storm_at = i + 1;
    }
}

void hub_turn_end(struct hub *h)
{
    h->turn_work = 0;
    h->turn_started = 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* May work of this size be done this turn? (see Fairness in hub.h) Within the
 * turn's budget of deliveries, and of time: HUB_TURN_MS since the turn's first
 * heavy work (a turn grows on a busy or loaded machine; time says so where a
 * count cannot). */
static int budget_allows(struct hub *h, size_t work)
{
    if (!h->lim.turn_fanout || h->waived)
        return 1;
    int64_t now = mono_ms();
    if (!h->turn_started)
        h->turn_started = now;
    if (h->turn_work == 0)
        return 1;
    return h->turn_work + work <= h->lim.turn_fanout && now - h->turn_started < HUB_TURN_MS;
}

enum hub_err hub_budget_ready(struct hub *h, const char *name)
{
    if (!name)
        return budget_allows(h, h->rooms.count) ? HUB_OK : HUB_EBUSY;
    char rname[HUB_ROOM_MAX];
    if (room_name(name, rname, sizeof rname) < 0)
        return HUB_OK; /* the command's own error, later */
    struct room *r = dict_get(&h->rooms, rname);
    if (!r || r->count <= HUB_LIGHT_ROOM)
        return HUB_OK;
    return budget_allows(h, r->count) ? HUB_OK : HUB_EBUSY;
}

void hub_budget_waive(struct hub *h, int on)
{
    h->waived = on;
}

enum hub_err hub_join(struct hub *h, struct user *u, const char *name, const char **joined)
{
    return hub_join_key(h, u, name, NULL, joined);
}

enum hub_err hub_join_key(struct hub *h, struct user *u, const char *name, const char *key, const char **joined)
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
    enum hub_err refused = r ? room_may_join(h, r, u, key) : HUB_OK;
    if (refused)
        return refused;
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
    room_forget_invite(r, u);
    announce(h, r, u, &(struct hub_event){.type = EV_JOIN, .room = r->name, .from = u->name, .user = u});
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

int hub_in_room(const struct hub *h, const struct user *u, const char *name)
{
    char rname[HUB_ROOM_MAX];
    if (room_name(name, rname, sizeof rname) < 0)
        return 0;
    struct room *r = dict_get(&h->rooms, rname);
    return r && user_index_of(u, r) >= 0;
}

/* Take u out of room index i, telling the room (unless quietly). */
void leave_room(struct hub *h, struct user *u, int i, const char *reason, int quietly)
{
    struct room *r = u->rooms[i];
    if (!quietly)
        announce(h, r, u,
                 &(struct hub_event){.type = EV_PART, .room = r->name, .from = u->name, .user = u, .text = reason});
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

/* The rules of core/names.h (name's NFC form and its key, or not a name), and
 * what every protocol can carry: IRC prefixes are nick!user@host and NAMES marks
 * members with + % & ~, so no '!' or '@' anywhere and none of ": + % & ~ $" first. */
static int checked_name(const struct hub *h, const char *name, char nfc[HUB_NAME_MAX], char key[KEY_MAX])
{
    return !strpbrk(name, "!@") && !strchr(":+%&~$", name[0]) &&
           name_normalize(name, h->lim.max_name, nfc, HUB_NAME_MAX) == NAME_OK && name_key(nfc, key, KEY_MAX) == 0;
}

int hub_valid_name(const struct hub *h, const char *name)
{
    char nfc[HUB_NAME_MAX], key[KEY_MAX];
    return checked_name(h, name, nfc, key);
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
    struct hub_event ev = {.type = EV_QUIT, .from = u->name, .user = u, .text = reason};
    to_neighbours(h, u, &ev, 0);
    while (u->nrooms > 0)
        leave_room(h, u, u->nrooms - 1, NULL, 1);
    dict_remove(&h->users, u);
    free(u->away);
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
    struct hub_event ev = {.type = EV_NICK, .from = old, .user = u, .to = u->name};
    to_neighbours(h, u, &ev, 1);
    free(old);
    return HUB_OK;
}

/* ==== Messages ==== */

static enum hub_err say(struct hub *h, struct user *u, enum hub_event_type type, unsigned flags, const char *name,
                        const char *text, const char *tags)
{
    struct room *r;
    enum hub_err err = room_may_speak(h, u, name, &r);
    if (err)
        return err;
    if (r->count > HUB_LIGHT_ROOM && !budget_allows(h, r->count))
        return HUB_EBUSY;
    hub_count_message(h);
    struct hub_event ev = {
        .type = type, .flags = flags, .room = r->name, .from = u->name, .user = u, .text = text, .tags = tags};
    to_room(h, r, &ev, u);
    record(h, &ev);
    return HUB_OK;
}

enum hub_err hub_say(struct hub *h, struct user *u, const char *room, const char *text)
{
    return say(h, u, EV_SAY, 0, room, text, NULL);
}

enum hub_err hub_action(struct hub *h, struct user *u, const char *room, const char *text)
{
    return say(h, u, EV_ACTION, 0, room, text, NULL);
}

enum hub_err hub_notice(struct hub *h, struct user *u, const char *room, const char *text)
{
    return say(h, u, EV_SAY, HUB_NOTICE, room, text, NULL);
}

static enum hub_err privmsg(struct hub *h, struct user *u, unsigned flags, const char *to, const char *text,
                            const char *tags)
{
    struct user *r = hub_find_user(h, to); /* by its key: /msg ALICE reaches alice */
    if (!r)
        return HUB_ENOUSER;
    hub_count_message(h);
    struct hub_event ev = {
        .type = EV_PRIVMSG, .flags = flags, .from = u->name, .user = u, .to = r->name, .text = text, .tags = tags};
    send_to(h, r, &ev);
    record(h, &ev);
    ev.type = EV_PRIVECHO; /* the same id: an IRC echo-message carries the same msgid */
    h->turn_work++;
    struct msg *m = u->ops->encode(&ev, u);
    if (m) {
        u->ops->deliver(u->ctx, m);
        msg_unref(m);
    }
    return HUB_OK;
}

enum hub_err hub_privmsg(struct hub *h, struct user *u, const char *to, const char *text)
{
    return privmsg(h, u, 0, to, text, NULL);
}

enum hub_err hub_privnotice(struct hub *h, struct user *u, const char *to, const char *text)
{
    return privmsg(h, u, HUB_NOTICE, to, text, NULL);
}

enum hub_err hub_message(struct hub *h, struct user *u, const char *target, unsigned flags, const char *text,
                         const char *tags)
{
    if (target[0] == '#') {
        enum hub_event_type type = flags & HUB_ACTION ? EV_ACTION : EV_SAY;
        return say(h, u, type, flags & (unsigned)~HUB_ACTION, target, text, tags);
    }
    return privmsg(h, u, flags, target, text, tags);
}

/* A copy of text cut to at most max bytes, not inside a UTF-8 sequence. */
char *cut_copy(const char *text, size_t max)
{
    size_t n = strlen(text);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--;
    }
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, text, n);
        s[n] = '\0';
    }
    return s;
}

enum hub_err hub_topic(struct hub *h, struct user *u, const char *name, const char *text)
{
    struct room *r;
    enum hub_err err = member_room(h, u, name, &r);
    if (!err)
        err = room_may_set_topic(r, u);
    if (err)
        return err;
    char *topic = cut_copy(text, HUB_TOPIC_MAX), *by = strdup(u->name);
    if (!topic || !by) {
        free(topic), free(by);
        return HUB_ENOMEM;
    }
    free(r->topic), free(r->topic_by);
    r->topic = topic;
    r->topic_by = by;
    struct hub_event ev = {.type = EV_TOPIC, .room = r->name, .from = u->name, .user = u, .text = topic};
    to_room(h, r, &ev, NULL);
    r->topic_ms = ev.time_ms;
    return HUB_OK;
}

void hub_realname(struct hub *h, struct user *u, const char *text)
{
    struct hub_event ev = {.type = EV_REALNAME, .from = u->name, .user = u, .text = text};
    to_neighbours(h, u, &ev, 0);
}

enum hub_err hub_away(struct hub *h, struct user *u, const char *text)
{
    char *away = NULL;
    if (text && *text && !(away = cut_copy(text, HUB_AWAY_MAX)))
        return HUB_ENOMEM;
    free(u->away);
    u->away = away;
    struct hub_event ev = {.type = EV_AWAY, .from = u->name, .user = u, .text = away};
    to_neighbours(h, u, &ev, 0);
    return HUB_OK;
}

/* ==== Listings ==== */

/* The first `max` entries by name, of those offered: a max-heap on the name,
 * so the largest kept is at the top and is replaced by anything smaller. */
struct pick {
    const char *name;
    uint32_t size;
};

struct picks {
    struct pick *at;
    size_t n, max, total;
    const char *filter;
};

static void pick_swap(struct pick *a, struct pick *b)
{
    struct pick t = *a;
    *a = *b;
    *b = t;
}

static void picks_sift_down(struct picks *p, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, big = i;
        if (l < p->n && strcmp(p->at[l].name, p->at[big].name) > 0)
            big = l;
        if (r < p->n && strcmp(p->at[r].name, p->at[big].name) > 0)
            big = r;
        if (big == i)
            return;
        pick_swap(&p->at[i], &p->at[big]);
        i = big;
    }
}

static void picks_offer(struct picks *p, const char *name, uint32_t size)
{
    if (p->filter && *p->filter && !strcasestr(name, p->filter))
        return;
    p->total++;
    if (p->max == 0)
        return;
    if (p->n < p->max) {
        size_t i = p->n++;
        p->at[i] = (struct pick){name, size};
        while (i > 0 && strcmp(p->at[(i - 1) / 2].name, p->at[i].name) < 0) {
            pick_swap(&p->at[(i - 1) / 2], &p->at[i]);
            i = (i - 1) / 2;
        }
    } else if (strcmp(name, p->at[0].name) < 0) {
        p->at[0] = (struct pick){name, size};
        picks_sift_down(p, 0);
    }
}

static int cmp_picks(const void *a, const void *b)
{
    return strcmp(((const struct pick *)a)->name, ((const struct pick *)b)->name);
}

/* Sort what was picked and send it to u as one listing event. */
static enum hub_err send_listing(struct hub *h, struct user *u, struct picks *p, struct hub_event *ev)
{
    qsort(p->at, p->n, sizeof *p->at, cmp_picks);
    const char **names = malloc((p->n ? p->n : 1) * sizeof *names);
    uint32_t *sizes = malloc((p->n ? p->n : 1) * sizeof *sizes);
    uint8_t *modes = malloc(p->n ? p->n : 1);
    if (!names || !sizes || !modes) {
        free(names), free(sizes), free(modes);
        return HUB_ENOMEM;
    }
    for (size_t i = 0; i < p->n; i++) {
        names[i] = p->at[i].name;
        sizes[i] = p->at[i].size;
        modes[i] = (uint8_t)p->at[i].size; /* EV_WHO: the member's modes (MM_OP, MM_VOICE) */
    }
    ev->names = names;
    ev->sizes = sizes;
    if (ev->type == EV_WHO)
        ev->modes = modes;
    ev->count = p->n;
    ev->total = p->total;
    ev->filter = p->filter && *p->filter ? p->filter : NULL;
    send_to(h, u, ev);
    free(names), free(sizes), free(modes);
    return HUB_OK;
}

static int picks_init(struct picks *p, const struct hub *h, const char *filter, size_t available)
{
    p->max = h->lim.max_list && h->lim.max_list < available ? h->lim.max_list : available;
    p->n = p->total = 0;
    p->filter = filter;
    p->at = malloc((p->max ? p->max : 1) * sizeof *p->at);
    return p->at ? 0 : -1;
}

enum hub_err hub_who(struct hub *h, struct user *u, const char *name, const char *filter, size_t *work)
{
    if (work)
        *work = 0;
    char rname[HUB_ROOM_MAX];
    if (room_name(name, rname, sizeof rname) < 0)
        return HUB_EBADROOM;
    struct room *r = dict_get(&h->rooms, rname);
    if (!r || !room_visible(r, u)) /* a secret room does not exist for outsiders */
        return HUB_ENOSUCHROOM;
    if (!budget_allows(h, r->count))
        return HUB_EBUSY;
    struct picks p;
    if (picks_init(&p, h, filter, r->count) < 0)
        return HUB_ENOMEM;
    for (uint32_t i = 0; i < r->count; i++)
        picks_offer(&p, r->members[i]->name, r->mflags[i]); /* a member's "size" is its modes */
    h->turn_work += r->count;
    if (work)
        *work = r->count;
    enum hub_err err = send_listing(h, u, &p, &(struct hub_event){.type = EV_WHO, .room = r->name});
    free(p.at);
    return err;
}

enum hub_err hub_rooms(struct hub *h, struct user *u, const char *filter, size_t *work)
{
    if (work)
        *work = 0;
    if (!budget_allows(h, h->rooms.count))
        return HUB_EBUSY;
    struct picks p;
    if (picks_init(&p, h, filter, h->rooms.count) < 0)
        return HUB_ENOMEM;
    for (size_t i = 0; i < h->rooms.cap; i++) {
        const struct room *r = h->rooms.slots[i];
        if (r && room_visible(r, u)) /* +s: members only, and not counted in total */
            picks_offer(&p, r->name, r->count);
    }
    h->turn_work += h->rooms.count;
    if (work)
        *work = h->rooms.count;
    enum hub_err err = send_listing(h, u, &p, &(struct hub_event){.type = EV_ROOMS});
    free(p.at);
    return err;
}
