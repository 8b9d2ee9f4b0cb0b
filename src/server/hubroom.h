/* hubroom.h - the hub's own structures, shared by hub.c (users, rooms, routing)
 * and hubmodes.c (what room keepers and server operators may do). Private to
 * those two files: everything else goes through hub.h.
 */
#ifndef NATTER_HUBROOM_H
#define NATTER_HUBROOM_H

#include <stddef.h>
#include <stdint.h>

#include "core/dict.h"
#include "server/hub.h"
#include "server/roommodes.h"

struct room {
    char *name;
    char *topic;      /* NULL: none */
    char *topic_by;
    int64_t topic_ms;
    struct user **members;
    uint8_t *mflags;  /* MM_OP, MM_VOICE of members[i], beside it */
    uint32_t count;
    uint32_t cap;
    /* Notice storms: this window's notices, and those folded in it. */
    int64_t win_start;
    uint32_t win_notices;
    uint32_t joined, left;
    uint32_t storm_at;   /* 1 + its index in hub.storms while it is there, else 0 */
    /* Room keepers (issue 13; hubmodes.c) */
    unsigned modes;   /* RM_* */
    char *key;        /* +k, or NULL */
    uint32_t limit;   /* +l, or 0 */
    int64_t created_ms;
    struct mask_list bans, excepts, invex; /* +b, +e, +I */
    char *invites[RM_INVITES_MAX]; /* names invited (INVITE), a ring */
    uint8_t next_invite;
};


struct hub {
    struct hub_limits lim;
    struct dict users; /* by name */
    struct dict rooms; /* by name */
    uint32_t next_guest;
    uint32_t gen;      /* for user.mark */
    uint64_t last_id;  /* of the last event made */
    hub_record_fn *record;
    void *record_ctx;
    size_t turn_work;  /* deliveries and listing entries this loop turn (see Fairness) */
    int waived;        /* hub_budget_waive: the rest of a command that has begun */
    int64_t now_ms;    /* the last hub_tick's clock */
    int64_t turn_started; /* monotonic ms of this turn's first heavy work, or 0 */
    struct room **storms; /* rooms folding notices, for hub_tick */
    uint32_t nstorms, capstorms;
    /* Counting messages (hub_stats) */
    uint64_t messages;
    int64_t rate_second;                /* the second buckets[0] counts */
    uint32_t buckets[HUB_RATE_SECONDS + 1];
};

/* hub.c, for hubmodes.c: one event to one user; to a room's members (but
 * `except`, unless it echoes); once to each user sharing a room with u; where u
 * is in u->rooms (-1: not); u leaves room index i (quietly: nobody told); a copy
 * of text cut to max bytes at a character boundary. */
void send_to(struct hub *h, struct user *u, struct hub_event *ev);
void to_room(struct hub *h, struct room *r, struct hub_event *ev, const struct user *except);
void to_neighbours(struct hub *h, struct user *u, struct hub_event *ev, int include_self);
int user_index_of(const struct user *u, const struct room *r);
void leave_room(struct hub *h, struct user *u, int i, const char *reason, int quietly);
char *cut_copy(const char *text, size_t max);

/* hubmodes.c, called by hub.c */
void room_state_init(struct hub *h, struct room *r); /* r->name set */
/* 1 for HUB_DEFAULT_ROOM (#lobby), which every plain user joins on connecting:
 * its first member is not its operator, and it is not +t by default. */
int room_is_default(const struct room *r);
void room_state_free(struct room *r);
/* May u join r (which exists) with key (NULL: none)? HUB_OK or why not. */
enum hub_err room_may_join(struct hub *h, struct room *r, struct user *u, const char *key);
void room_forget_invite(struct room *r, const struct user *u);
/* The room named name where u may speak: a member, or anyone under -n; not
 * banned, voiced or better under +m. */
enum hub_err room_may_speak(struct hub *h, struct user *u, const char *name, struct room **out);
enum hub_err room_may_set_topic(struct room *r, const struct user *u);
/* 0 if r is secret (+s) and u neither a member nor a server operator. */
int room_visible(const struct room *r, const struct user *u);
void hub_count_message(struct hub *h);

#endif
