/* hubmodes.c - what room keepers and server operators may do (see hub.h,
 * "Room keepers"): the checks on joining, speaking and setting the topic, mode
 * changes, kicks, invitations, KILL, WALLOPS and the server's counters. The
 * state is in struct room (hubroom.h); the letters and masks in roommodes.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/text.h"
#include "server/hub.h"
#include "server/hubroom.h"
#include "server/roommodes.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ==== Room state ==== */

void room_state_init(struct hub *h, struct room *r)
{
    (void)h;
    /* The default room, which nobody keeps (room_add), has no +t: its members
     * set its topic, as they did before rooms had keepers. */
    r->modes = room_is_default(r) ? RM_DEFAULT & ~RM_TOPICLOCK : RM_DEFAULT;
    r->created_ms = now_ms();
}

int room_is_default(const struct room *r)
{
    return text_ieq(r->name, HUB_DEFAULT_ROOM);
}

void room_state_free(struct room *r)
{
    free(r->key);
    mask_list_free(&r->bans);
    mask_list_free(&r->excepts);
    mask_list_free(&r->invex);
    for (int i = 0; i < RM_INVITES_MAX; i++)
        free(r->invites[i]);
}

static int member_index(const struct room *r, const struct user *u)
{
    for (uint32_t i = 0; i < r->count; i++)
        if (r->members[i] == u)
            return (int)i;
    return -1;
}

int hub_member_modes(const struct room *r, const struct user *u)
{
    int i = member_index(r, u);
    return i < 0 ? -1 : r->mflags[i];
}

unsigned hub_room_modes(const struct room *r, const char **key, uint32_t *limit)
{
    if (key)
        *key = r->key ? r->key : "";
    if (limit)
        *limit = r->limit;
    return r->modes;
}

int64_t hub_room_created(const struct room *r) { return r->created_ms; }

const char *hub_room_mode_string(const struct room *r, int with_args, char *out, size_t len)
{
    static const struct { unsigned bit; char letter; } order[] = {
        {RM_INVITE, 'i'}, {RM_KEY, 'k'}, {RM_LIMIT, 'l'}, {RM_MODERATED, 'm'},
        {RM_NOEXTERNAL, 'n'}, {RM_SECRET, 's'}, {RM_TOPICLOCK, 't'},
    };
    char letters[16] = "+";
    size_t n = 1;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (r->modes & order[i].bit)
            letters[n++] = order[i].letter;
    letters[n] = '\0';
    int k = snprintf(out, len, "%s", letters);
    if (with_args && (r->modes & RM_KEY) && k >= 0 && (size_t)k < len)
        k += snprintf(out + k, len - (size_t)k, " %s", r->key);
    if (with_args && (r->modes & RM_LIMIT) && k >= 0 && (size_t)k < len)
        snprintf(out + k, len - (size_t)k, " %u", (unsigned)r->limit);
    return out;
}

const struct mask_list *hub_room_list(const struct room *r, char letter)
{
    switch (letter) {
    case 'b':
        return &r->bans;
    case 'e':
        return &r->excepts;
    case 'I':
        return &r->invex;
    default:
        return NULL;
    }
}

static struct mask_list *list_of(struct room *r, char letter)
{
    return (struct mask_list *)hub_room_list(r, letter);
}

const char *hub_user_mask(const struct user *u, char *out, size_t len)
{
    char uh[HUB_NAME_MAX + 64];
    if (u->ops && u->ops->userhost)
        u->ops->userhost(u, uh, sizeof uh);
    else
        snprintf(uh, sizeof uh, "user@natter");
    snprintf(out, len, "%s!%s", u->name, uh);
    return out;
}

/* Banned: a ban matches and no exception does. */
static int banned(const struct room *r, const struct user *u)
{
    if (!r->bans.n)
        return 0;
    char mask[HUB_NAME_MAX * 2 + 64];
    hub_user_mask(u, mask, sizeof mask);
    return mask_list_match(&r->bans, mask) && !mask_list_match(&r->excepts, mask);
}

static int invited(const struct room *r, const struct user *u)
{
    for (int i = 0; i < RM_INVITES_MAX; i++)
        if (r->invites[i] && text_ieq(r->invites[i], u->name))
            return 1;
    if (!r->invex.n)
        return 0;
    char mask[HUB_NAME_MAX * 2 + 64];
    return mask_list_match(&r->invex, hub_user_mask(u, mask, sizeof mask));
}

void room_forget_invite(struct room *r, const struct user *u)
{
    for (int i = 0; i < RM_INVITES_MAX; i++)
        if (r->invites[i] && text_ieq(r->invites[i], u->name)) {
            free(r->invites[i]);
            r->invites[i] = NULL;
        }
}

static int is_op(const struct room *r, const struct user *u)
{
    if (u->oper)
        return 1;
    int m = hub_member_modes(r, u);
    return m > 0 && (m & MM_OP);
}

int room_visible(const struct room *r, const struct user *u)
{
    return !(r->modes & RM_SECRET) || u->oper || member_index(r, u) >= 0;
}

/* ==== The checks hub.c makes ==== */

enum hub_err room_may_join(struct hub *h, struct room *r, struct user *u, const char *key)
{
    (void)h;
    if (u->oper)
        return HUB_OK; /* server operators override room modes */
    if (banned(r, u))
        return HUB_EBANNED;
    if ((r->modes & RM_INVITE) && !invited(r, u))
        return HUB_EINVITEONLY;
    if ((r->modes & RM_KEY) && (!key || strcmp(key, r->key) != 0))
        return HUB_EBADKEY;
    if ((r->modes & RM_LIMIT) && r->count >= r->limit && !invited(r, u))
        return HUB_EFULL;
    return HUB_OK;
}

enum hub_err room_may_speak(struct hub *h, struct user *u, const char *name, struct room **out)
{
    struct room *r = hub_find_room(h, name);
    if (!r) {
        char probe[HUB_ROOM_MAX];
        int n = snprintf(probe, sizeof probe, "%s%s", name[0] == '#' ? "" : "#", name);
        return n < 0 || (size_t)n >= sizeof probe || !text_valid_room(probe) ? HUB_EBADROOM : HUB_ENOSUCHROOM;
    }
    *out = r;
    if (u->oper)
        return HUB_OK;
    int m = hub_member_modes(r, u);
    if (m < 0 && (r->modes & RM_NOEXTERNAL))
        return HUB_ENOTINROOM;
    if (m > 0 && (m & (MM_OP | MM_VOICE)))
        return HUB_OK;
    if ((r->modes & RM_MODERATED) || banned(r, u))
        return HUB_ECANNOTSEND;
    return HUB_OK;
}

enum hub_err room_may_set_topic(struct room *r, const struct user *u)
{
    return (r->modes & RM_TOPICLOCK) && !is_op(r, u) ? HUB_ENOTOP : HUB_OK;
}

/* ==== Changing modes ==== */

/* The changes made, as one mode string with its arguments: "+ov-k alice bob *". */
struct applied {
    char letters[64];
    char args[RM_MAX_CHANGES * 4 + 8][RM_MASK_MAX];
    size_t nl, na;
    int sign; /* the last sign written: 1 +, 0 -, -1 none yet */
};

static void applied_add(struct applied *a, int plus, char letter, const char *arg)
{
    if (a->nl + 3 >= sizeof a->letters || a->na >= sizeof a->args / sizeof a->args[0])
        return;
    if (a->sign != plus) {
        a->letters[a->nl++] = plus ? '+' : '-';
        a->sign = plus;
    }
    a->letters[a->nl++] = letter;
    a->letters[a->nl] = '\0';
    if (arg)
        snprintf(a->args[a->na++], RM_MASK_MAX, "%s", arg);
}

static size_t list_total(const struct room *r)
{
    return (size_t)r->bans.n + r->excepts.n + r->invex.n;
}

/* A key: printable, no spaces or commas, short. */
static int valid_key(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n >= RM_KEY_MAX)
        return 0;
    for (const unsigned char *p = (const unsigned char *)k; *p; p++)
        if (*p <= ' ' || *p == ',' || *p == ':' || *p == 0x7f)
            return 0;
    return 1;
}

static enum hub_err apply_step(struct hub *h, struct room *r, struct user *u, const struct mode_step *s,
                               struct applied *a)
{
    char kind = mode_kind(s->letter);
    if (!kind)
        return HUB_EUNKNOWNMODE;
    if (kind == 'A' && !s->arg)
        return HUB_OK; /* a list to show: the codec's */
    if (!is_op(r, u))
        return HUB_ENOTOP;
    switch (kind) {
    case 'P': {
        struct user *t = hub_find_user(h, s->arg);
        if (!t)
            return HUB_ENOUSER;
        int i = member_index(r, t);
        if (i < 0)
            return HUB_ETARGETNOTIN;
        uint8_t bit = s->letter == 'o' ? MM_OP : MM_VOICE;
        uint8_t was = r->mflags[i];
        r->mflags[i] = s->plus ? (uint8_t)(was | bit) : (uint8_t)(was & ~bit);
        if (r->mflags[i] != was)
            applied_add(a, s->plus, s->letter, t->name);
        return HUB_OK;
    }
    case 'A': {
        char mask[RM_MASK_MAX];
        if (mask_complete(s->arg, mask, sizeof mask) < 0)
            return HUB_EBADMASK;
        struct mask_list *l = list_of(r, s->letter);
        if (s->plus) {
            if (list_total(r) >= RM_MAXLIST)
                return HUB_ELISTFULL;
            int added = mask_list_add(l, mask, u->name, now_ms());
            if (added < 0)
                return HUB_ENOMEM;
            if (added)
                applied_add(a, 1, s->letter, mask);
        } else if (mask_list_del(l, mask)) {
            applied_add(a, 0, s->letter, mask);
        }
        return HUB_OK;
    }
    case 'B': /* k */
        if (s->plus) {
            if (!s->arg || !valid_key(s->arg))
                return HUB_EBADMASK;
            char *k = strdup(s->arg);
            if (!k)
                return HUB_ENOMEM;
            free(r->key);
            r->key = k;
            r->modes |= RM_KEY;
            applied_add(a, 1, 'k', k);
        } else if (r->modes & RM_KEY) {
            free(r->key);
            r->key = NULL;
            r->modes &= ~(unsigned)RM_KEY;
            applied_add(a, 0, 'k', "*");
        }
        return HUB_OK;
    case 'C': /* l */
        if (s->plus) {
            char *end;
            long n = strtol(s->arg, &end, 10);
            if (*end || n <= 0 || n > 1000000000)
                return HUB_EBADMASK;
            if ((r->modes & RM_LIMIT) && r->limit == (uint32_t)n)
                return HUB_OK;
            r->limit = (uint32_t)n;
            r->modes |= RM_LIMIT;
            applied_add(a, 1, 'l', s->arg);
        } else if (r->modes & RM_LIMIT) {
            r->limit = 0;
            r->modes &= ~(unsigned)RM_LIMIT;
            applied_add(a, 0, 'l', NULL);
        }
        return HUB_OK;
    default: { /* D: flags */
        static const char letters[] = "imnst";
        static const unsigned bits[] = {RM_INVITE, RM_MODERATED, RM_NOEXTERNAL, RM_SECRET, RM_TOPICLOCK};
        unsigned bit = bits[strchr(letters, s->letter) - letters];
        unsigned was = r->modes;
        r->modes = s->plus ? r->modes | bit : r->modes & ~bit;
        if (r->modes != was)
            applied_add(a, s->plus, s->letter, NULL);
        return HUB_OK;
    }
    }
}

enum hub_err hub_mode(struct hub *h, struct user *u, const char *name, const struct mode_step *steps, size_t n,
                      enum hub_err *err)
{
    struct room *r = hub_find_room(h, name);
    if (!r || !room_visible(r, u))
        return HUB_ENOSUCHROOM;
    int changes = 0;
    for (size_t i = 0; i < n; i++)
        changes |= !(mode_kind(steps[i].letter) == 'A' && !steps[i].arg);
    if (changes && !u->oper && member_index(r, u) < 0)
        return HUB_ENOTINROOM;
    struct applied *a = calloc(1, sizeof *a);
    if (!a)
        return HUB_ENOMEM;
    a->sign = -1;
    for (size_t i = 0; i < n; i++)
        err[i] = apply_step(h, r, u, &steps[i], a);
    if (a->nl) {
        char text[sizeof a->letters + sizeof a->args];
        size_t k = (size_t)snprintf(text, sizeof text, "%s", a->letters);
        for (size_t i = 0; i < a->na; i++)
            k += (size_t)snprintf(text + k, sizeof text - k, " %s", a->args[i]);
        struct hub_event ev = {.type = EV_MODE, .room = r->name, .from = u->name, .user = u, .text = text};
        to_room(h, r, &ev, NULL);
    }
    free(a);
    return HUB_OK;
}

/* ==== Kick and invite ==== */

enum hub_err hub_kick(struct hub *h, struct user *u, const char *name, const char *target, const char *reason)
{
    struct room *r = hub_find_room(h, name);
    if (!r || !room_visible(r, u))
        return HUB_ENOSUCHROOM;
    if (!u->oper && member_index(r, u) < 0)
        return HUB_ENOTINROOM;
    if (!is_op(r, u))
        return HUB_ENOTOP;
    struct user *t = hub_find_user(h, target);
    if (!t)
        return HUB_ENOUSER;
    int i = user_index_of(t, r);
    if (i < 0)
        return HUB_ETARGETNOTIN;
    char *why = reason && *reason ? cut_copy(reason, HUB_TOPIC_MAX) : NULL;
    struct hub_event ev = {.type = EV_KICK, .room = r->name, .from = u->name, .user = u, .to = t->name, .text = why};
    to_room(h, r, &ev, NULL);
    free(why);
    leave_room(h, t, i, NULL, 1); /* may free r */
    return HUB_OK;
}

enum hub_err hub_invite(struct hub *h, struct user *u, const char *name, const char *target)
{
    struct room *r = hub_find_room(h, name);
    if (!r || !room_visible(r, u))
        return HUB_ENOSUCHROOM;
    if (!u->oper && member_index(r, u) < 0)
        return HUB_ENOTINROOM;
    if ((r->modes & RM_INVITE) && !is_op(r, u))
        return HUB_ENOTOP;
    struct user *t = hub_find_user(h, target);
    if (!t)
        return HUB_ENOUSER;
    if (member_index(r, t) >= 0)
        return HUB_EONROOM;
    room_forget_invite(r, t);
    char *name_copy = strdup(t->name);
    if (!name_copy)
        return HUB_ENOMEM;
    free(r->invites[r->next_invite]); /* the oldest goes */
    r->invites[r->next_invite] = name_copy;
    r->next_invite = (uint8_t)((r->next_invite + 1) % RM_INVITES_MAX);
    struct hub_event ev = {.type = EV_INVITE, .room = r->name, .from = u->name, .user = u, .to = t->name};
    send_to(h, t, &ev);
    return HUB_OK;
}

/* ==== Server operators ==== */

void hub_set_oper(struct hub *h, struct user *u, int on)
{
    (void)h;
    u->oper = on ? 1 : 0;
}

enum hub_err hub_kill(struct hub *h, struct user *oper, const char *target, const char *reason)
{
    if (!oper->oper)
        return HUB_ENOTOPER;
    struct user *t = hub_find_user(h, target);
    if (!t)
        return HUB_ENOUSER;
    char why[HUB_AWAY_MAX + HUB_NAME_MAX + 32];
    snprintf(why, sizeof why, "Killed (%s (%s))", oper->name, reason && *reason ? reason : "no reason");
    struct hub_event quit = {.type = EV_QUIT, .from = t->name, .user = t, .text = why};
    to_neighbours(h, t, &quit, 0);
    while (t->nrooms > 0)
        leave_room(h, t, t->nrooms - 1, NULL, 1);
    struct hub_event ev = {.type = EV_KILL, .from = oper->name, .user = oper, .to = t->name, .text = why};
    send_to(h, t, &ev);
    if (t->ops->drop)
        t->ops->drop(t->ctx);
    return HUB_OK;
}

enum hub_err hub_wallops(struct hub *h, struct user *u, const char *text)
{
    if (!u->oper)
        return HUB_ENOTOPER;
    for (size_t i = 0; i < h->users.cap; i++) {
        struct user *o = h->users.slots[i];
        if (o && o->oper) {
            struct hub_event ev = {.type = EV_WALLOPS, .from = u->name, .user = u, .text = text};
            send_to(h, o, &ev);
        }
    }
    return HUB_OK;
}

/* ==== Counters ==== */

/* Move the buckets on to the current second. */
static void rate_advance(struct hub *h, int64_t sec)
{
    int64_t k = sec - h->rate_second;
    if (k <= 0)
        return;
    if (k > HUB_RATE_SECONDS) {
        memset(h->buckets, 0, sizeof h->buckets);
    } else {
        memmove(&h->buckets[k], &h->buckets[0], (size_t)(HUB_RATE_SECONDS + 1 - k) * sizeof h->buckets[0]);
        memset(h->buckets, 0, (size_t)k * sizeof h->buckets[0]);
    }
    h->rate_second = sec;
}

void hub_count_message(struct hub *h)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    rate_advance(h, ts.tv_sec);
    h->buckets[0]++;
    h->messages++;
}

void hub_stats(struct hub *h, struct hub_stats *out)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    rate_advance(h, ts.tv_sec);
    uint64_t sum = 0;
    for (int i = 1; i <= HUB_RATE_SECONDS; i++)
        sum += h->buckets[i];
    *out = (struct hub_stats){.users = h->users.count, .rooms = h->rooms.count, .messages = h->messages,
                              .per_second = (double)sum / HUB_RATE_SECONDS};
    for (size_t i = 0; i < h->users.cap; i++)
        if (h->users.slots[i] && ((struct user *)h->users.slots[i])->oper)
            out->opers++;
}
