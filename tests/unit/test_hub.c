/* test_hub.c - users, rooms and routing, through a fake codec.
 *
 * The fake codec encodes an event as "TYPE|room|from|to|text" (lists as
 * "WHO|#room|a b c" and "ROOMS|#a(1) #b(2)") and its deliver keeps every msg
 * pointer a fake user receives, so the tests can see what went where, how often,
 * and whether recipients share one msg.
 */
#include "server/hub.h"

#include "core/buf.h"
#include "check.h"

#include <time.h>

static const char *const type_names[] = {
    [EV_SAY] = "SAY",   [EV_ACTION] = "ACTION", [EV_PRIVMSG] = "PRIVMSG", [EV_PRIVECHO] = "PRIVECHO",
    [EV_JOIN] = "JOIN", [EV_PART] = "PART",     [EV_QUIT] = "QUIT",       [EV_NICK] = "NICK",
    [EV_WHO] = "WHO",   [EV_ROOMS] = "ROOMS",   [EV_SHUTDOWN] = "SHUTDOWN", [EV_SUMMARY] = "SUMMARY",
    [EV_TOPIC] = "TOPIC", [EV_AWAY] = "AWAY",   [EV_REALNAME] = "REALNAME",
};

static int encodes; /* calls of fake_encode */
static unsigned last_flags;   /* of the last event encoded */
static const char *last_tags;
static const struct user *last_user;
static uint64_t last_id;      /* of the last event encoded */
static int64_t last_time_ms;

static struct msg *fake_encode(const struct hub_event *ev, const struct user *to)
{
    (void)to;
    encodes++;
    last_flags = ev->flags;
    last_tags = ev->tags;
    last_user = ev->user;
    last_id = ev->id;
    last_time_ms = ev->time_ms;
    if (ev->type == EV_WHO || ev->type == EV_ROOMS) {
        char s[4096];
        size_t n = (size_t)snprintf(s, sizeof s, "%s|%s|", type_names[ev->type], ev->room ? ev->room : "-");
        for (size_t i = 0; i < ev->count && n < sizeof s; i++) {
            if (ev->type == EV_WHO)
                n += (size_t)snprintf(s + n, sizeof s - n, "%s%s", i ? " " : "", ev->names[i]);
            else
                n += (size_t)snprintf(s + n, sizeof s - n, "%s%s(%u)", i ? " " : "", ev->names[i], ev->sizes[i]);
        }
        if (ev->count < ev->total && n < sizeof s)
            n += (size_t)snprintf(s + n, sizeof s - n, "|of %zu", ev->total);
        return msg_new(s, n < sizeof s ? n : sizeof s - 1);
    }
    if (ev->type == EV_SUMMARY)
        return msg_printf("SUMMARY|%s|%u|%u|%u", ev->room, ev->joined, ev->left, ev->window_s);
    return msg_printf("%s|%s|%s|%s|%s", type_names[ev->type], ev->room ? ev->room : "-",
                      ev->from ? ev->from : "-", ev->to ? ev->to : "-", ev->text ? ev->text : "-");
}

#define MAXGOT 256
struct fake {
    struct user *u;
    struct msg *got[MAXGOT];
    int n;
};

static void fake_deliver(void *ctx, struct msg *m)
{
    struct fake *f = ctx;
    if (f->n < MAXGOT)
        f->got[f->n++] = msg_ref(m);
}

static const struct user_ops ops = {fake_encode, fake_deliver, NULL, NULL};
/* Distinct user_ops stand for distinct codecs (the hub caches per ops pointer). */
static const struct user_ops other_ops[6] = {
    {fake_encode, fake_deliver, NULL, NULL}, {fake_encode, fake_deliver, NULL, NULL}, {fake_encode, fake_deliver, NULL, NULL},
    {fake_encode, fake_deliver, NULL, NULL}, {fake_encode, fake_deliver, NULL, NULL}, {fake_encode, fake_deliver, NULL, NULL},
};

static void forget(struct fake *f)
{
    for (int i = 0; i < f->n; i++)
        msg_unref(f->got[i]);
    f->n = 0;
}

/* A user as the plain protocol makes one: a guest, then a join to #lobby. */
static struct fake *join_hub(struct hub *h, const struct user_ops *o)
{
    struct fake *f = calloc(1, sizeof *f);
    if (hub_connect(h, o ? o : &ops, f, NULL, &f->u) == HUB_OK)
        hub_join(h, f->u, HUB_DEFAULT_ROOM, NULL);
    return f;
}

static void leave_hub(struct hub *h, struct fake *f, const char *reason)
{
    if (f->u)
        hub_disconnect(h, f->u, reason);
    forget(f);
    free(f);
}

/* The text of msg i of f (negative: from the end), or "" if there is none. */
static const char *msg_at(const struct fake *f, int i)
{
    static char buf[8][4096];
    static int k;
    if (i < 0)
        i += f->n;
    if (i < 0 || i >= f->n)
        return "";
    char *s = buf[k++ % 8];
    size_t n = f->got[i]->len < 4095 ? f->got[i]->len : 4095;
    memcpy(s, f->got[i]->data, n);
    s[n] = '\0';
    return s;
}

static const char *last(const struct fake *f) { return msg_at(f, -1); }

/* How many msgs f received that are exactly s. */
static int count(const struct fake *f, const char *s)
{
    int c = 0;
    for (int i = 0; i < f->n; i++)
        c += f->got[i]->len == strlen(s) && memcmp(f->got[i]->data, s, f->got[i]->len) == 0;
    return c;
}

static void forget_all(struct fake **fs, int n)
{
    for (int i = 0; i < n; i++)
        forget(fs[i]);
}

static const struct hub_limits lim = {.max_name = 24, .max_rooms = 16, .max_announce = 200};

/* ==== tests ==== */

static void test_connect(void)
{
    struct hub *h = hub_new(&lim);
    struct fake *a = join_hub(h, NULL), *b = join_hub(h, NULL);
    CHECK(a->u && b->u && hub_user_count(h) == 2, "hub_connect creates users");
    CHECK_STR(a->u->name, "guest1", "the first user is guest1");
    CHECK_STR(b->u->name, "guest2", "the second user is guest2");
    CHECK_STR(msg_at(a, 0), "JOIN|#lobby|guest1|-|-", "a user joining #lobby sees its own join");
    CHECK_STR(last(a), "JOIN|#lobby|guest2|-|-", "members of #lobby see a newcomer join");
    CHECK(hub_find_user(h, "GUEST2") == b->u, "hub_find_user is case-insensitive");

    CHECK(hub_nick(h, b->u, "guest3") == HUB_OK, "a user may pick a guest-like name");
    struct fake *c = join_hub(h, NULL);
    CHECK_STR(c->u->name, "guest4", "guest numbering skips a name taken by hand");

    struct fake *named = calloc(1, sizeof *named);
    CHECK(hub_connect(h, &ops, named, "Alice", &named->u) == HUB_OK && strcmp(named->u->name, "Alice") == 0 &&
              named->u->guest_id == 0,
          "hub_connect with a name registers that name");
    CHECK(named->n == 0 && named->u->nrooms == 0, "a new user is in no room and has been told nothing");
    struct user *u = NULL;
    CHECK(hub_connect(h, &ops, NULL, "alice", &u) == HUB_ENICKTAKEN && !u, "hub_connect with a taken name: taken");
    CHECK(hub_connect(h, &ops, NULL, "a b", &u) == HUB_EBADNICK && !u, "hub_connect with an invalid name: bad name");
    leave_hub(h, named, NULL);
    leave_hub(h, a, NULL);
    leave_hub(h, b, NULL);
    leave_hub(h, c, NULL);
    CHECK_INT(hub_user_count(h), 0, "hub_disconnect removes users");
    hub_free(h);
}

static void test_say(void)
{
    struct hub *h = hub_new(&lim);
    struct fake *f[5];
    for (int i = 0; i < 5; i++)
        f[i] = join_hub(h, NULL);
    forget_all(f, 5);
    int before = encodes;
    CHECK(hub_say(h, f[0]->u, "#lobby", "hello") == HUB_OK, "hub_say in a room one is in succeeds");
    CHECK(f[0]->n == 0, "the sender does not get its own message back");
    int ok = 1;
    for (int i = 1; i < 5; i++)
        ok &= f[i]->n == 1 && strcmp(last(f[i]), "SAY|#lobby|guest1|-|hello") == 0;
    CHECK(ok, "every other member of the room gets the message once");
    ok = 1;
    for (int i = 2; i < 5; i++)
        ok &= f[i]->got[0] == f[1]->got[0];
    CHECK(ok, "a room broadcast delivers the same msg pointer to every recipient");
    CHECK_INT(encodes - before, 1, "a room broadcast is encoded once");
    CHECK_INT(f[1]->got[0]->refs, 4, "after a broadcast only the recipients hold references");

    forget_all(f, 5);
    CHECK(hub_action(h, f[1]->u, "lobby", "waves") == HUB_OK && f[1]->n == 0 &&
              count(f[0], "ACTION|#lobby|guest2|-|waves") == 1,
          "hub_action goes to the others like say (the # optional)");

    hub_join(h, f[3]->u, "#side", NULL);
    hub_join(h, f[4]->u, "#side", NULL);
    forget_all(f, 5);
    hub_say(h, f[0]->u, "#lobby", "lobby only");
    hub_say(h, f[3]->u, "#side", "side only");
    CHECK(count(f[3], "SAY|#lobby|guest1|-|lobby only") == 1, "a member of several rooms hears each room");
    CHECK(count(f[1], "SAY|#side|guest4|-|side only") == 0 && f[3]->n == 1 && count(f[4], "SAY|#side|guest4|-|side only") == 1,
          "a message goes only to the room it names");
    forget_all(f, 5);
    CHECK(hub_say(h, f[0]->u, "#side", "in?") == HUB_ENOTINROOM && hub_action(h, f[0]->u, "#side", "x") == HUB_ENOTINROOM,
          "saying something in a room one is not in: not in room");
    CHECK(hub_say(h, f[0]->u, "#nowhere", "hi") == HUB_ENOSUCHROOM, "saying something in a room that does not exist: no such room");
    CHECK(hub_say(h, f[0]->u, "bad room", "hi") == HUB_EBADROOM, "saying something in an invalid room name: bad room");
    CHECK(f[3]->n == 0 && f[4]->n == 0, "a refused message reaches nobody");
    for (int i = 0; i < 5; i++)
        leave_hub(h, f[i], NULL);
    hub_free(h);
}

static void test_codecs(void)
{
    struct hub *h = hub_new(&lim);
    struct fake *f[8];
    f[0] = join_hub(h, &other_ops[0]);
    f[1] = join_hub(h, &other_ops[0]);
    f[2] = join_hub(h, &other_ops[1]);
    f[3] = join_hub(h, &other_ops[1]);
    f[4] = join_hub(h, &other_ops[1]);
    forget_all(f, 5);
    int before = encodes;
    hub_say(h, f[0]->u, "#lobby", "x");
    CHECK_INT(encodes - before, 2, "a broadcast is encoded once per codec in use");
    CHECK(f[2]->got[0] == f[3]->got[0] && f[3]->got[0] == f[4]->got[0] && f[1]->got[0] != f[2]->got[0],
          "recipients with the same codec share one msg");

    f[4]->u->variant = 7; /* the same codec, another encoding (say, IRC with server-time) */
    forget_all(f, 5);
    before = encodes;
    hub_say(h, f[0]->u, "#lobby", "y");
    CHECK_INT(encodes - before, 3, "a broadcast is encoded once per (codec, variant) in use");
    CHECK(f[2]->got[0] == f[3]->got[0] && f[3]->got[0] != f[4]->got[0], "only recipients with the same variant share a msg");

    for (int i = 5; i < 8; i++)
        f[i] = join_hub(h, &other_ops[i - 3]); /* codecs 3 4 5 */
    f[7]->u->variant = 1;
    struct fake *g[4];
    for (int i = 0; i < 4; i++) { /* ten encodings in all: more than the slots on the stack */
        g[i] = join_hub(h, &other_ops[i % 2 ? 5 : 4]);
        g[i]->u->variant = 100 + (uint32_t)i;
    }
    forget_all(f, 8);
    forget_all(g, 4);
    before = encodes;
    hub_say(h, f[0]->u, "#lobby", "many codecs");
    int ok = 1;
    for (int i = 1; i < 8; i++)
        ok &= f[i]->n == 1 && strcmp(last(f[i]), "SAY|#lobby|guest1|-|many codecs") == 0 && f[i]->got[0]->refs >= 1;
    for (int i = 0; i < 4; i++)
        ok &= g[i]->n == 1 && strcmp(last(g[i]), "SAY|#lobby|guest1|-|many codecs") == 0 && g[i]->got[0]->refs == 1;
    CHECK(ok && f[7]->got[0]->refs == 1, "with many encodings, every recipient gets its msg, unleaked");
    CHECK_INT(encodes - before, 10, "ten (codec, variant) pairs: ten encodes, every one cached for the event");
    for (int i = 0; i < 4; i++)
        leave_hub(h, g[i], NULL);
    for (int i = 0; i < 8; i++)
        leave_hub(h, f[i], NULL);
    hub_free(h);
}

static void test_rooms(void)
{
    struct hub *h = hub_new(&lim);
    struct fake *p = join_hub(h, NULL), *q = join_hub(h, NULL), *o = join_hub(h, NULL);
    struct fake *all[] = {p, q, o};
    forget_all(all, 3);

    const char *joined = NULL;
    CHECK(hub_join(h, p->u, "#dev", &joined) == HUB_OK && count(p, "JOIN|#dev|guest1|-|-") == 1,
          "joining a new room creates it and tells the joiner");
    CHECK_STR(joined, "#dev", "hub_join says which room was joined");
    CHECK(o->n == 0 && q->n == 0, "a join is not told to users outside the room");
    CHECK(hub_join(h, q->u, "dev", NULL) == HUB_OK && count(p, "JOIN|#dev|guest2|-|-") == 1 && count(q, "JOIN|#dev|guest2|-|-") == 1,
          "the # is optional and every member sees the join");
    forget_all(all, 3);
    joined = NULL;
    CHECK(hub_join(h, p->u, "#DEV", &joined) == HUB_EALREADY && p->n == 0 && q->n == 0 && strcmp(joined, "#dev") == 0,
          "joining a room one is in (any case) says so, names it as kept, and tells nobody");

    hub_join(h, p->u, "#Mixed", NULL);
    hub_join(h, q->u, "#mixed", &joined);
    CHECK_STR(last(q), "JOIN|#Mixed|guest2|-|-", "rooms compare case-insensitively and keep their first spelling");
    CHECK_STR(joined, "#Mixed", "hub_join names the room with its first spelling");

    CHECK(hub_join(h, p->u, "bad room", NULL) == HUB_EBADROOM && hub_join(h, p->u, "#a,b", NULL) == HUB_EBADROOM &&
              hub_join(h, p->u, "#", NULL) == HUB_EBADROOM,
          "invalid room names are rejected");

    hub_join(h, p->u, "#r1", NULL), hub_join(h, p->u, "#r2", NULL), hub_join(h, p->u, "#r3", NULL);
    hub_join(h, q->u, "#r1", NULL), hub_join(h, q->u, "#r2", NULL), hub_join(h, q->u, "#r3", NULL);
    forget_all(all, 3);
    CHECK(hub_part(h, p->u, "#r1", "bye now") == HUB_OK, "part leaves the room it names");
    CHECK(count(p, "PART|#r1|guest1|-|bye now") == 1 && count(q, "PART|#r1|guest1|-|bye now") == 1 && o->n == 0,
          "a part (with its reason) is told to the room's members, the leaver included");
    CHECK(hub_say(h, p->u, "#r1", "c") == HUB_ENOTINROOM, "after a part, the room is no longer one's own");
    hub_part(h, p->u, "#r2", NULL);
    hub_say(h, p->u, "#r3", "d");
    CHECK_STR(last(q), "SAY|#r3|guest1|-|d", "parting other rooms keeps the rest");
    CHECK_STR(msg_at(q, -2), "PART|#r2|guest1|-|-", "a part without a reason has no text");

    CHECK(hub_part(h, p->u, "#nosuch", NULL) == HUB_ENOTINROOM, "parting a room that does not exist: not in room");
    CHECK(hub_part(h, o->u, "#dev", NULL) == HUB_ENOTINROOM, "parting a room one is not in: not in room");
    CHECK(hub_part(h, p->u, "bad room", NULL) == HUB_EBADROOM, "parting an invalid room name: bad room");

    /* Rooms vanish with their last member. */
    hub_part(h, p->u, "#Mixed", NULL);
    hub_part(h, q->u, "#mixed", NULL);
    forget(o);
    hub_rooms(h, o->u, NULL, NULL);
    CHECK(strstr(last(o), "#Mixed") == NULL && strstr(last(o), "#dev(2)") != NULL, "a room disappears when its last member leaves");

    /* No room at all. */
    hub_part(h, p->u, "#r3", NULL), hub_part(h, p->u, "#dev", NULL), hub_part(h, p->u, "#lobby", NULL);
    CHECK(p->u->nrooms == 0 && hub_say(h, p->u, "#lobby", "anyone?") == HUB_ENOTINROOM, "in no room, one can say nothing");
    CHECK(hub_join(h, p->u, "lobby", NULL) == HUB_OK && hub_say(h, p->u, "#lobby", "back") == HUB_OK,
          "joining again lets one speak there");

    leave_hub(h, p, NULL), leave_hub(h, q, NULL), leave_hub(h, o, NULL);
    hub_free(h);
}

static void test_long_room_name(void)
{
    struct hub *h = hub_new(&lim);
    struct fake *a = join_hub(h, NULL);
    char room[256] = "#", want[400];
    for (int i = 0; i < 32; i++)
        strcat(room, "\xF0\x9F\x98\x80");
    snprintf(want, sizeof want, "JOIN|%s|guest1|-|-", room);
    CHECK(hub_join(h, a->u, room, NULL) == HUB_OK, "a room of 32 emoji (129 bytes) can be joined");
    CHECK_STR(last(a), want, "a room of 32 emoji keeps its whole name (no truncated UTF-8)");
    strcat(room, "\xF0\x9F\x98\x80");
    CHECK(hub_join(h, a->u, room, NULL) == HUB_EBADROOM, "a room of 33 emoji is invalid");
    char longer[600] = "#";
    for (int i = 0; i < 60; i++)
        strcat(longer, "\xE4\xB8\xAD"); /* 181 bytes: must not be cut down to something valid */
    CHECK(hub_join(h, a->u, longer, NULL) == HUB_EBADROOM, "a room of 60 Chinese characters is invalid");
    leave_hub(h, a, NULL);
    hub_free(h);
}

static void test_nick(void)
{
    struct hub *h = hub_new(&lim);
    struct fake *a = join_hub(h, NULL), *b = join_hub(h, NULL), *c = join_hub(h, NULL);
    struct fake *all[] = {a, b, c};
    CHECK(hub_nick(h, a->u, "alice") == HUB_OK && strcmp(a->u->name, "alice") == 0, "hub_nick renames");
    CHECK(hub_find_user(h, "alice") == a->u && hub_find_user(h, "guest1") == NULL, "the old name is free, the new one found");
    CHECK(a->u->guest_id == 0, "a picked name is no longer a guest name");
    CHECK(hub_nick(h, b->u, "ALICE") == HUB_ENICKTAKEN, "names are unique case-insensitively");
    CHECK(hub_nick(h, b->u, "guest1") == HUB_OK, "a freed name can be taken");
    forget_all(all, 3);
    CHECK(hub_nick(h, a->u, "Alice") == HUB_OK && count(b, "NICK|-|alice|Alice|-") == 1,
          "a user may change the case of its own name");
    forget_all(all, 3);
    CHECK(hub_nick(h, a->u, "Alice") == HUB_OK && a->n == 0 && b->n == 0, "renaming to the same name tells nobody");
    CHECK(hub_nick(h, a->u, "\xE5\xB0\x8F\xE6\x98\x8E") == HUB_OK, "a Chinese name is accepted");
    CHECK(hub_nick(h, a->u, "") == HUB_EBADNICK, "an empty name is invalid");
    CHECK(hub_nick(h, a->u, "a b") == HUB_EBADNICK, "a name with a space is invalid");
    CHECK(hub_nick(h, a->u, "#alice") == HUB_EBADNICK, "a name starting with # is invalid");
    CHECK(hub_nick(h, a->u, "abcdefghijklmnopqrstuvwxy") == HUB_EBADNICK, "a name of 25 characters is invalid");
    char huge[300];
    memset(huge, 'z', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    CHECK(hub_nick(h, a->u, huge) == HUB_EBADNICK, "a name longer than the name buffer is invalid");
    hub_nick(h, a->u, "alice");

    /* b shares #lobby and #two with a; c shares only #lobby; d shares nothing. */
    hub_join(h, a->u, "#two", NULL);
    hub_join(h, b->u, "#two", NULL);
    struct fake *d = join_hub(h, NULL);
    hub_part(h, d->u, "#lobby", NULL);
    forget_all(all, 3);
    forget(d);
    hub_nick(h, a->u, "alicia");
    CHECK_INT(count(b, "NICK|-|alice|alicia|-"), 1, "a rename notice reaches a user sharing two rooms once");
    CHECK_INT(count(c, "NICK|-|alice|alicia|-"), 1, "a rename notice reaches a user sharing one room");
    CHECK_INT(count(a, "NICK|-|alice|alicia|-"), 1, "the renamed user gets its own notice once");
    CHECK(d->n == 0, "a rename is not told to users sharing no room");
    CHECK(b->got[0] == c->got[0] && b->got[0] == a->got[0], "the rename notice is one shared msg");

    forget_all(all, 3);
    forget(d);
    leave_hub(h, a, "gone");
    CHECK_INT(count(b, "QUIT|-|alicia|-|gone"), 1, "a quit notice reaches a user sharing two rooms once");
    CHECK_INT(count(c, "QUIT|-|alicia|-|gone"), 1, "a quit notice reaches a user sharing one room");
    CHECK(d->n == 0, "a quit is not told to users sharing no room");
    CHECK(hub_find_user(h, "alicia") == NULL && hub_user_count(h) == 3, "a quit user is gone from the hub");
    forget(b);
    hub_rooms(h, b->u, NULL, NULL);
    CHECK_STR(last(b), "ROOMS|-|#lobby(2) #two(1)", "a quit user has left all its rooms");
    leave_hub(h, b, NULL), leave_hub(h, c, NULL), leave_hub(h, d, NULL);
    hub_free(h);
}

static void test_limits(void)
{
    struct hub_limits small = {.max_name = 5, .max_rooms = 3, .max_announce = 2};
    struct hub *h = hub_new(&small);
    struct fake *a = join_hub(h, NULL), *b = join_hub(h, NULL), *c = join_hub(h, NULL);
    struct fake *all[] = {a, b, c};
    CHECK(hub_nick(h, a->u, "abcde") == HUB_OK && hub_nick(h, b->u, "abcdef") == HUB_EBADNICK,
          "max_name limits names");

    CHECK(hub_join(h, a->u, "#r1", NULL) == HUB_OK && hub_join(h, a->u, "#r2", NULL) == HUB_OK, "joins up to max_rooms succeed");
    CHECK(hub_join(h, a->u, "#r3", NULL) == HUB_ETOOMANYROOMS, "a join beyond max_rooms is refused");
    CHECK(hub_join(h, a->u, "#r1", NULL) == HUB_EALREADY, "joining a room one is in at max_rooms is no error");
    hub_part(h, a->u, "#r2", NULL);
    CHECK(hub_join(h, a->u, "#r3", NULL) == HUB_OK, "after a part there is room for another join");

    /* #lobby now has 3 members > max_announce 2: c's join was not told to a and b. */
    forget_all(all, 3);
    struct fake *d = join_hub(h, NULL);
    CHECK(a->n == 0 && b->n == 0 && c->n == 0, "joins of big rooms (> max_announce) are not announced");
    CHECK_STR(msg_at(d, 0), "JOIN|#lobby|guest4|-|-", "the joiner of a big room still sees its own join");
    hub_part(h, d->u, "#lobby", NULL);
    CHECK(a->n == 0 && b->n == 0 && c->n == 0 && strcmp(last(d), "PART|#lobby|guest4|-|-") == 0,
          "parts of big rooms are told only to the leaver");

    /* b and c share the big #lobby and the small #pair: the quit comes via #pair, once. */
    hub_join(h, b->u, "#pair", NULL);
    hub_join(h, c->u, "#pair", NULL);
    forget_all(all, 3);
    struct fake *e = join_hub(h, NULL); /* in big #lobby only */
    forget(e);
    leave_hub(h, c, NULL);
    CHECK(count(b, "QUIT|-|guest3|-|-") == 1, "a quit is told via a small shared room");
    CHECK(a->n == 0 && e->n == 0, "a quit is not told via a big room");
    leave_hub(h, a, NULL), leave_hub(h, b, NULL), leave_hub(h, d, NULL), leave_hub(h, e, NULL);
    hub_free(h);
}

static void test_privmsg_who(void)
{
    struct hub *h = hub_new(&lim);
    struct fake *a = join_hub(h, NULL), *b = join_hub(h, NULL), *c = join_hub(h, NULL);
    struct fake *all[] = {a, b, c};
    hub_nick(h, a->u, "carol");
    hub_nick(h, b->u, "alice");
    hub_nick(h, c->u, "bob");
    forget_all(all, 3);
    CHECK(hub_privmsg(h, a->u, "nobody", "hi") == HUB_ENOUSER && a->n == 0, "a private message to a missing user: no user");
    CHECK(hub_privmsg(h, a->u, "ALICE", "psst") == HUB_OK, "a private message finds its recipient case-insensitively");
    CHECK_STR(last(b), "PRIVMSG|-|carol|alice|psst", "the recipient gets the private message");
    CHECK_STR(last(a), "PRIVECHO|-|carol|alice|psst", "the sender gets an echo naming the recipient");
    CHECK(c->n == 0, "nobody else sees a private message");

    forget_all(all, 3);
    CHECK(hub_who(h, a->u, "#lobby", NULL, NULL) == HUB_OK, "who of a room succeeds");
    CHECK_STR(last(a), "WHO|#lobby|alice bob carol", "who lists the room's names sorted");
    CHECK(b->n == 0 && c->n == 0, "who answers only the asker");
    hub_join(h, b->u, "#dev", NULL);
    CHECK(hub_who(h, a->u, "dev", NULL, NULL) == HUB_OK && strcmp(last(a), "WHO|#dev|alice") == 0, "who of another room by name");
    CHECK(hub_who(h, a->u, "#none", NULL, NULL) == HUB_ENOSUCHROOM, "who of a missing room: no such room");
    CHECK(hub_who(h, a->u, "bad name", NULL, NULL) == HUB_EBADROOM, "who of an invalid room name: bad room");
    CHECK(hub_rooms(h, a->u, NULL, NULL) == HUB_OK, "rooms succeeds");
    CHECK_STR(last(a), "ROOMS|-|#dev(1) #lobby(3)", "rooms lists every room sorted, with sizes");

    forget_all(all, 3);
    int before = encodes;
    hub_shutdown(h);
    CHECK(count(a, "SHUTDOWN|-|-|-|-") == 1 && count(b, "SHUTDOWN|-|-|-|-") == 1 && count(c, "SHUTDOWN|-|-|-|-") == 1,
          "shutdown tells every user once");
    CHECK(encodes - before == 1 && a->got[0] == b->got[0], "shutdown is encoded once and shared");
    leave_hub(h, a, NULL), leave_hub(h, b, NULL), leave_hub(h, c, NULL);
    hub_free(h);
}

/* Topics, away, notices, echo, client tags, real names: what IRC needed. */
static void test_topic_away_echo_tags(void)
{
    struct hub *h = hub_new(&lim);
    struct fake *a = join_hub(h, NULL), *b = join_hub(h, NULL), *c = join_hub(h, NULL);
    struct fake *all[] = {a, b, c};
    hub_nick(h, a->u, "ann"), hub_nick(h, b->u, "bo"), hub_nick(h, c->u, "cy");
    hub_join(h, c->u, "#dev", NULL);
    hub_part(h, c->u, "#lobby", NULL);
    forget_all(all, 3);

    struct room *r = hub_find_room(h, "lobby");
    const char *by;
    int64_t at;
    CHECK(r && *hub_room_topic(r, &by, &at) == '\0' && hub_room_size(r) == 2 && hub_room_count(h) == 2,
          "a room starts without a topic; sizes and counts");
    CHECK(hub_topic(h, a->u, "#lobby", "hello all") == HUB_OK, "a member sets the topic");
    CHECK_STR(last(a), "TOPIC|#lobby|ann|-|hello all", "the setter is told too");
    CHECK(count(b, "TOPIC|#lobby|ann|-|hello all") == 1 && c->n == 0, "the room is told, nobody else");
    CHECK(strcmp(hub_room_topic(r, &by, &at), "hello all") == 0 && strcmp(by, "ann") == 0 && at > 0,
          "the topic, who set it and when");
    CHECK(hub_topic(h, c->u, "#lobby", "mine") == HUB_ENOTINROOM && hub_topic(h, a->u, "#none", "x") == HUB_ENOSUCHROOM,
          "only members set a room's topic");
    char longtopic[400];
    memset(longtopic, 'x', sizeof longtopic);
    memcpy(longtopic + HUB_TOPIC_MAX - 1, "\xC3\xA9", 2); /* an e-acute across the limit */
    longtopic[sizeof longtopic - 1] = '\0';
    hub_topic(h, a->u, "#lobby", longtopic);
    CHECK(strlen(hub_room_topic(r, NULL, NULL)) == HUB_TOPIC_MAX - 1, "a long topic is cut before a split character");

    forget_all(all, 3);
    CHECK(hub_away(h, b->u, "lunch") == HUB_OK && b->u->away && strcmp(b->u->away, "lunch") == 0, "away is kept");
    CHECK(count(a, "AWAY|-|bo|-|lunch") == 1 && b->n == 0 && c->n == 0, "those sharing a room hear it, not the user");
    hub_away(h, b->u, "");
    CHECK(!b->u->away && count(a, "AWAY|-|bo|-|-") == 1, "back: no away text");
    hub_realname(h, b->u, "Bo Diddley");
    CHECK(count(a, "REALNAME|-|bo|-|Bo Diddley") == 1 && last_user == b->u, "a new real name is told, with its user");

    forget_all(all, 3);
    CHECK(hub_notice(h, a->u, "#lobby", "n") == HUB_OK && count(b, "SAY|#lobby|ann|-|n") == 1 &&
              (last_flags & HUB_NOTICE),
          "a room notice is a SAY with HUB_NOTICE");
    a->u->echo = 1;
    hub_say(h, a->u, "#lobby", "echoed");
    CHECK(count(a, "SAY|#lobby|ann|-|echoed") == 1 && count(b, "SAY|#lobby|ann|-|echoed") == 1 && a->got[a->n - 1] == b->got[b->n - 1],
          "with echo the sender gets its own room message, the same msg");
    a->u->echo = 0;
    CHECK(hub_message(h, a->u, "#lobby", HUB_ACTION, "waves", "+x=1") == HUB_OK && count(b, "ACTION|#lobby|ann|-|waves") == 1 &&
              last_tags && strcmp(last_tags, "+x=1") == 0 && !(last_flags & HUB_ACTION),
          "hub_message: a room action, with its client tags");
    CHECK(hub_message(h, a->u, "bo", HUB_ACTION, "nods", NULL) == HUB_OK && count(b, "PRIVMSG|-|ann|bo|nods") == 1 &&
              (last_flags & HUB_ACTION),
          "hub_message: a private action is a PRIVMSG with HUB_ACTION");
    CHECK(hub_message(h, a->u, "bo", HUB_TAGMSG, NULL, "+typing=active") == HUB_OK && (last_flags & HUB_TAGMSG) &&
              count(b, "PRIVMSG|-|ann|bo|-") == 1,
          "hub_message: tags alone");
    CHECK(hub_message(h, a->u, "#dev", 0, "x", NULL) == HUB_ENOTINROOM && hub_message(h, a->u, "zed", 0, "x", NULL) == HUB_ENOUSER,
          "hub_message: the errors of say and privmsg");

    int bad = 0;
    const char *const names[] = {"a!b", "a@b", "+v", "%h", "&x", "~q", "$s", ":c"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        bad += hub_nick(h, a->u, names[i]) == HUB_EBADNICK && !hub_valid_name(h, names[i]);
    CHECK(bad == 8 && hub_valid_name(h, "a+b") && hub_valid_name(h, "x~"),
          "names IRC could misread are refused for everyone: ! @ anywhere, : + % & ~ $ first");
    leave_hub(h, a, NULL), leave_hub(h, b, NULL), leave_hub(h, c, NULL);
    hub_free(h);
}

static void test_free(void)
{
    struct hub *h = hub_new(&lim);
    hub_free(h);
    hub_free(NULL);
    CHECK(1, "hub_free of an unused hub and of NULL");
    h = hub_new(&lim);
    struct fake *f[20];
    for (int i = 0; i < 20; i++) {
        f[i] = join_hub(h, NULL);
        char room[16];
        snprintf(room, sizeof room, "#r%d", i % 4);
        hub_join(h, f[i]->u, room, NULL);
    }
    for (int i = 0; i < 20; i++)
        leave_hub(h, f[i], NULL);
    CHECK_INT(hub_user_count(h), 0, "all users gone before hub_free");
    hub_free(h); /* LeakSanitizer (ASan build) reports anything left */
    CHECK(1, "hub_free after users came and went (leaks are caught by LeakSanitizer)");

    /* Rooms belong to the hub: hub_free frees them even with members left. The
     * users belong to their connections (natterd frees them first); here the
     * test plays the connection and frees them by hand. */
    h = hub_new(&lim);
    struct fake *a = join_hub(h, NULL), *b = join_hub(h, NULL);
    hub_join(h, a->u, "#kept", NULL);
    hub_free(h);
    for (struct fake **f2 = (struct fake *[]){a, b, NULL}; *f2; f2++) {
        struct user *u = (*f2)->u;
        if (u->rooms != &u->first_room) /* one room lives inside the user */
            free(u->rooms);
        free(u->name), free(u);
    }
    a->u = b->u = NULL;
    leave_hub(NULL, a, NULL), leave_hub(NULL, b, NULL);
    CHECK(1, "hub_free frees rooms that still have members (LeakSanitizer)");
}

/* Every event carries the server's time and an id that only goes up. */
static void test_stamps(void)
{
    struct hub *h = hub_new(&lim);
    struct fake *a = join_hub(h, NULL), *b = join_hub(h, NULL);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int ok = 1;
    uint64_t prev = 0;
    for (int i = 0; i < 100; i++) {
        hub_say(h, a->u, "#lobby", "tick");
        ok &= last_id > prev;
        prev = last_id;
    }
    CHECK(ok, "event ids go up with every event");
    CHECK(last_time_ms >= now - 1000 && last_time_ms <= now + 5000, "an event's time is the server's clock (ms since 1970)");
    CHECK(last_id >> 16 >= (uint64_t)now - 1000, "an event id starts with its time, so ids go up across restarts");
    hub_privmsg(h, a->u, b->u->name, "psst");
    CHECK(last_id > prev, "unicast events are stamped too");
    leave_hub(h, a, NULL), leave_hub(h, b, NULL);
    hub_free(h);
}

/* ==== Hardening, second round ==== */

static void test_bounded_listings(void)
{
    struct hub_limits l = lim;
    l.max_list = 3;
    struct hub *h = hub_new(&l);
    struct fake *f[8];
    static const char *names[8] = {"hank", "bob", "gus", "al", "dee", "carl", "ed", "fay"};
    for (int i = 0; i < 8; i++) {
        f[i] = join_hub(h, NULL);
        hub_nick(h, f[i]->u, names[i]);
    }
    size_t work = 0;
    CHECK(hub_who(h, f[0]->u, "#lobby", NULL, &work) == HUB_OK && work == 8, "a listing says what it examined");
    CHECK_STR(last(f[0]), "WHO|#lobby|al bob carl|of 8", "a listing names the first max_list by name, and the total");
    hub_who(h, f[0]->u, "#lobby", "A", NULL);
    CHECK_STR(last(f[0]), "WHO|#lobby|al carl fay|of 4", "a filter matches a substring, ASCII case-insensitively");
    hub_who(h, f[0]->u, "#lobby", "zz", NULL);
    CHECK_STR(last(f[0]), "WHO|#lobby|", "a filter that matches nothing: an empty listing");
    for (int i = 0; i < 5; i++)
        hub_join(h, f[i]->u, i % 2 ? "#odd" : "#even", NULL);
    hub_rooms(h, f[0]->u, "d", &work);
    CHECK_STR(last(f[0]), "ROOMS|-|#odd(2)", "rooms by substring, with their sizes");
    hub_rooms(h, f[0]->u, NULL, NULL);
    CHECK_STR(last(f[0]), "ROOMS|-|#even(3) #lobby(8) #odd(2)", "rooms: all of them when they fit");
    for (int i = 0; i < 8; i++)
        leave_hub(h, f[i], NULL);
    hub_free(h);
}

static void test_turn_budget(void)
{
    struct hub_limits l = lim;
    l.turn_fanout = 100;
    l.max_announce = 1000;
    struct hub *h = hub_new(&l);
    enum { N = HUB_LIGHT_ROOM + 10 };
    struct fake *f[N];
    for (int i = 0; i < N; i++)
        f[i] = join_hub(h, NULL);
    struct fake *p = join_hub(h, NULL), *q = join_hub(h, NULL);
    hub_join(h, p->u, "#pair", NULL);
    hub_join(h, q->u, "#pair", NULL);
    hub_part(h, p->u, "#lobby", NULL);
    hub_part(h, q->u, "#lobby", NULL);
    hub_turn_end(h);
    CHECK(hub_say(h, f[0]->u, "#lobby", "first") == HUB_OK, "a heavy room's message is served as a turn's first work");
    CHECK(hub_say(h, f[1]->u, "#lobby", "second") == HUB_EBUSY, "past the budget, a heavy room's sender is told EBUSY");
    CHECK(hub_who(h, f[1]->u, "#lobby", NULL, NULL) == HUB_EBUSY, "past the budget, so is a listing");
    forget(q);
    CHECK(hub_say(h, p->u, "#pair", "light") == HUB_OK && strcmp(last(q), "SAY|#pair|guest75|-|light") == 0,
          "a light room is always served");
    hub_turn_end(h);
    CHECK(hub_say(h, f[1]->u, "#lobby", "second") == HUB_OK, "next turn the heavy room is served again");
    for (int i = 0; i < N; i++)
        leave_hub(h, f[i], NULL);
    leave_hub(h, p, NULL);
    leave_hub(h, q, NULL);
    hub_free(h);
}

static void test_notice_storms(void)
{
    struct hub_limits l = lim;
    l.notice_storm = 3;
    struct hub *h = hub_new(&l);
    int64_t t = 1000000;
    hub_tick(h, t);
    struct fake *m = join_hub(h, NULL); /* notice 1 */
    struct fake *f[6];
    for (int i = 0; i < 6; i++)
        f[i] = join_hub(h, NULL);        /* notices 2 to 7 */
    int singles = 0;
    for (int i = 0; i < m->n; i++)
        singles += strncmp(msg_at(m, i), "JOIN|", 5) == 0;
    CHECK_INT(singles, 3, "past notice_storm in a window, joins are not sent one by one");
    CHECK(strncmp(last(f[5]), "JOIN|#lobby|guest7", 18) == 0, "the joiner is still told its own join");
    leave_hub(h, f[5], "bye");
    leave_hub(h, f[4], NULL);
    hub_tick(h, t + 5000);
    CHECK(strncmp(last(m), "JOIN|", 5) == 0, "no summary before the window ends");
    forget(m);
    hub_tick(h, t + HUB_STORM_WINDOW_S * 1000);
    CHECK_STR(last(m), "SUMMARY|#lobby|4|2|10", "at the window's end, one summary: joins and leaves");
    forget(m);
    leave_hub(h, f[3], NULL);
    CHECK_INT(m->n, 0, "a storm goes on folding into the next window");
    hub_tick(h, t + 2 * HUB_STORM_WINDOW_S * 1000);
    CHECK_STR(last(m), "SUMMARY|#lobby|0|1|10", "and is summed up again");
    hub_tick(h, t + 3 * HUB_STORM_WINDOW_S * 1000); /* a quiet window: over */
    forget(m);
    leave_hub(h, f[2], NULL);
    CHECK(strncmp(last(m), "QUIT|", 5) == 0, "after a quiet window, notices are sent again");
    for (int i = 0; i < 2; i++)
        leave_hub(h, f[i], NULL);
    leave_hub(h, m, NULL);
    hub_free(h);
}

int main(void)
{
    test_connect();
    test_say();
    test_codecs();
    test_rooms();
    test_long_room_name();
    test_nick();
    test_limits();
    test_privmsg_who();
    test_topic_away_echo_tags();
    test_stamps();
    test_free();
    test_bounded_listings();
    test_turn_budget();
    test_notice_storms();
    return check_done();
}
