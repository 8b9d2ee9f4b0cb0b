/* history.h - room history in SQLite: recorded off the loop, answered to it.
 *
 * The hub hands every room message (and, with --history-private, every private
 * one) to history_record, on the loop. That copies it onto a bounded queue and
 * returns; one history thread owns the database and takes the queue in batches,
 * one transaction per batch, in WAL mode. Queries (replay on join, /history,
 * /search, and IRC's CHATHISTORY once the IRC codec exists) go onto the same
 * queue and are answered by the same thread, so an answer holds exactly the
 * messages recorded before the query was asked, committed or not: nothing
 * missing, nothing twice. Answers come back to the loop through an eventfd the
 * loop watches; each query's done function then runs on the loop.
 *
 * Nothing here blocks the loop: history_record and history_query take a mutex
 * held only for a pointer swap. When the queue is full (the disk stalls) a
 * message is not recorded and history marks a gap where it would have been; a
 * failing disk likewise (logged once). Retention (--history-days,
 * --history-max) deletes old rows in small transactions when the thread is idle.
 *
 * Targets: a room is its name ("#dev"), compared without ASCII case as the hub
 * does; a private conversation is history_private_key of the two names.
 * Selectors are event ids (the hub's, which IRC shows as msgid) or times in ms
 * since the epoch (IRC's timestamp=): an id is (ms << 16) | sequence, so a time
 * t stands for the ids from t << 16 up to ((t + 1) << 16) - 1.
 */
#ifndef NATTER_HISTORY_H
#define NATTER_HISTORY_H

#include <stddef.h>
#include <stdint.h>

struct loop;
struct hub_event;
struct history;

#define HISTORY_SCHEMA_VERSION 2
#define HISTORY_MAX_LIMIT 1000      /* most entries one query returns */
#define HISTORY_MAX_PENDING 256     /* queries waiting at once, server-wide */
#define HISTORY_MAX_REPLAYS 65536   /* replays on join waiting at once (everyone back after a restart) */
#define HISTORY_MAX_WORDS 8         /* words in one search */
#define HISTORY_KEY_MAX 260         /* bytes of a target, with its NUL */

struct history_config {
    const char *path;        /* a file, or ":memory:" for a database that lives in memory only */
    unsigned replay;         /* messages replayed on join (--history) */
    long long max_per_room;  /* rows kept per target; 0 = no limit (--history-max) */
    long long days;          /* days rows are kept; 0 = forever (--history-days) */
    int private_msgs;        /* record private messages too (--history-private) */
};

/* Open (create or migrate) the database and start the history thread, its
 * answers watched on loop. Returns NULL with a message in err when the database
 * cannot be used: not a database, locked by another writer, not writable, or a
 * schema newer than this program knows. natterd then exits 3. */
struct history *history_open(struct loop *l, const struct history_config *cfg, char *err, size_t errlen);
/* Record what is queued, stop the thread, close the database. Queries whose
 * answer has not reached the loop get their done call now, with HISTORY_ECLOSED
 * and no entries. */
void history_close(struct history *h);
const struct history_config *history_config(const struct history *h);

/* The hub's recorder (hub_set_recorder): EV_SAY and EV_ACTION always,
 * EV_PRIVMSG with private_msgs; every other event is ignored. */
void history_record(void *h, const struct hub_event *ev);

/* The target of the private conversation between names a and b, the same both
 * ways round ("alice bob": folded to lower case, sorted). 0, or -1 if too long. */
int history_private_key(const char *a, const char *b, char out[HISTORY_KEY_MAX]);

enum history_kind {
    HK_SAY = 1,
    HK_ACTION = 2,
    HK_PRIVMSG = 3,  /* target is the conversation key; to is the recipient */
    HK_GAP = 4,      /* `lost` messages of this target were not recorded here */
};

struct history_entry {
    uint64_t id;          /* the hub's event id */
    int64_t time_ms;
    enum history_kind kind;
    const char *target;   /* "#dev" as the room was named then, or a conversation key */
    const char *from;     /* the sender's name then ("" for a gap) */
    const char *to;       /* HK_PRIVMSG: the recipient's name then; else "" */
    const char *text;     /* ("" for a gap) */
    uint64_t lost;        /* HK_GAP: messages not recorded */
};

enum history_select {
    HQ_LATEST,   /* the newest `limit` (newer than a, if a is given) */
    HQ_BEFORE,   /* the newest `limit` before a */
    HQ_AFTER,    /* the oldest `limit` after a */
    HQ_AROUND,   /* up to limit/2 before a, the rest from a on */
    HQ_BETWEEN,  /* strictly between a and b, starting from a's side */
    HQ_SEARCH,   /* the newest `limit` matching words, in any of targets[] */
    HQ_TARGETS,  /* the targets with messages strictly between a and b: of targets[] and,
                    when target is a name, that name's private conversations (one entry each:
                    its newest message there); `limit` of them, from a's side, oldest first */
};

/* A point in a target's history: an event id or a time. Neither (both 0): none. */
struct history_point {
    uint64_t id;
    int64_t time_ms;
};

enum history_status {
    HISTORY_OK = 0,
    HISTORY_EFAIL,     /* the database failed (logged) */
    HISTORY_ESLOW,     /* a search took too long and was stopped */
    HISTORY_EWORDS,    /* a search with no words in it */
    HISTORY_ECLOSED,   /* history_close came first: no answer (free what arg holds) */
};

struct history_result {
    enum history_status status;
    const struct history_entry *entries; /* oldest first */
    size_t count;
};

/* Runs on the loop with the answer, which is valid only during the call. arg
 * and cookie are the query's (a codec passes its connection's id as the cookie
 * and finds the connection again with conn_by_id). */
typedef void history_done_fn(void *arg, uint64_t cookie, const struct history_result *r);

struct history_query {
    enum history_select sel;
    const char *target;              /* not HQ_SEARCH; HQ_TARGETS: the asker's name, or NULL */
    struct history_point a, b;
    unsigned limit;                  /* clamped to 1..HISTORY_MAX_LIMIT */
    const char *words;               /* HQ_SEARCH: plain words, every one must match */
    const char *const *targets;      /* HQ_SEARCH, HQ_TARGETS: where the asker may read (rooms) */
    size_t ntargets;
    int replay;                      /* a replay on join: counted against HISTORY_MAX_REPLAYS, not
                                        HISTORY_MAX_PENDING, so asking cannot crowd out joining */
    history_done_fn *done;
    void *arg;
    uint64_t cookie;
};

/* Queue a query (everything in q is copied). 0, or -1 when HISTORY_MAX_PENDING
 * queries (HISTORY_MAX_REPLAYS replays) are waiting already or out of memory:
 * then done is never called. */
int history_query(struct history *h, const struct history_query *q);

/* For tests and natter-bench: block until everything queued so far is
 * committed (not for the loop: it waits on the history thread). */
void history_sync(struct history *h);
/* The same, with the indexes behind the inserts brought up to date too. */
void history_settle(struct history *h);

#endif
