/* history.c - room history in SQLite (see history.h).
 *
 * Two threads meet here. The loop calls history_record and history_query, which
 * push a node onto `in` under a mutex and return. The history thread takes the
 * whole list at once, runs it as one transaction (messages inserted, queries
 * answered in the order they were queued, on the same connection, so a query
 * sees every message queued before it), commits, and pushes the answered
 * queries onto `out`, writing the eventfd. The loop's handler for that eventfd
 * calls each query's done function. Nothing else is shared.
 */
#include "server/history.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/dict.h"
#include "core/log.h"
#include "core/text.h"
#include "core/loop.h"
#include "server/hub.h"

#define QUEUE_MAX_ITEMS 200000          /* messages waiting for the thread */
#define QUEUE_MAX_BYTES (64u << 20)
#define HISTORY_NICE 10                 /* the history thread's nice, relative to the loop */
#define COMMIT_MS 50                    /* at most one commit this often: bigger batches write fewer pages */
#define GATHER_MAX 50000                /* ... unless this many messages wait already */
#define INDEX_CHUNK 50000               /* rows added to the search index per transaction */
#define INDEX_IDLE_MS 200               /* the index is brought up to date after this long without writes */
#define INDEX_BACKLOG 500000            /* ... or once this many rows wait (then chunk by chunk) */
#define TARGET_BACKLOG 50000            /* the same for by_target: the tail a query reads unindexed */
#define SEARCH_INDEX_MAX 100000         /* rows a search indexes before it looks (the newest, under load, wait) */
#define RETENTION_BATCH 500             /* rows deleted per transaction */
#define RETENTION_PERIOD_MS 1000
#define RETRY_MS 1000                   /* after a failed write, wait this long before the next try */
#define HELD_MAX 50000                  /* messages kept in memory meanwhile, written at the next try */
#define SEARCH_BUDGET_MS 200            /* a search running longer is stopped */
#define GAP_TARGETS 1024                 /* targets one gap record can name */
#define TOUCHED_MAX 4096                /* targets remembered for the next retention pass */

/* ==== Queue nodes ==== */

enum node_kind { N_SLAB, N_QUERY, N_SYNC };

struct node {
    struct node *next;
    enum node_kind kind;
};

struct mnode {                 /* a message to record, inside a slab */
    uint64_t id;
    int64_t time_ms;
    enum history_kind kind;
    const char *target, *from, *to, *text; /* into data */
    size_t size;               /* of the record, a multiple of 8 */
    char data[];
};

/* Messages are queued in slabs of 64 KiB, appended to in place: the loop copies
 * a message into the last one (or a spare) and the thread frees a slab at a time,
 * so there is no malloc or free per message, which under load, across threads,
 * cost as much as the rest of the recording. */
#define SLAB_SIZE (64 * 1024)
struct slab {
    struct node n;
    size_t used, cap, count;
    _Alignas(8) char data[];
};
#define FOR_RECORDS(sl, m)                                                                                         \
    for (struct mnode *m = (struct mnode *)(void *)(sl)->data; (char *)m < (sl)->data + (sl)->used;                \
         m = (struct mnode *)(void *)((char *)m + m->size))

#define POOL_MAX 256 /* slabs kept for reuse: 16 MiB */

static struct slab *slab_new(size_t size)
{
    size_t cap = size > SLAB_SIZE ? size : SLAB_SIZE;
    struct slab *sl = malloc(sizeof *sl + cap);
    if (sl) {
        sl->n.kind = N_SLAB;
        sl->used = sl->count = 0;
        sl->cap = cap;
    }
    return sl;
}

struct qnode {                 /* a query and, once answered, its answer */
    struct node n;
    struct history_query q;    /* strings point into data */
    struct history_result r;
    struct history_entry *entries;
    char *blob;                /* the entries' strings */
    char data[];
};

struct snode {                 /* history_sync's marker */
    struct node n;
    int settle;                /* bring the indexes up to date first */
    int done;
};

struct list {
    struct node *head, *tail;
};

static void list_push(struct list *l, struct node *n)
{
    n->next = NULL;
    if (l->tail)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
}

/* ==== Gaps: what was not recorded, per target ==== */

struct gap {
    char target[HISTORY_KEY_MAX];
    uint64_t first_id;  /* the first message lost: the gap row takes its id */
    int64_t time_ms;
    uint64_t lost;
};

struct gaps {
    struct gap g[GAP_TARGETS];
    uint16_t slot[2 * GAP_TARGETS]; /* index + 1 into g by the target's hash; 0: free */
    size_t n;
    uint64_t untracked; /* lost in targets beyond GAP_TARGETS: logged, not marked */
    uint64_t total;
};

static void gaps_add(struct gaps *gs, const char *target, uint64_t id, int64_t time_ms)
{
    gs->total++;
    size_t mask = 2 * GAP_TARGETS - 1, i = text_ihash(target) & mask;
    for (; gs->slot[i]; i = (i + 1) & mask) {
        struct gap *g = &gs->g[gs->slot[i] - 1];
        if (strcasecmp(g->target, target) == 0) {
            g->lost++;
            if (id < g->first_id) { /* the gap row stands where the first lost message was */
                g->first_id = id;
                g->time_ms = time_ms;
            }
            return;
        }
    }
    if (gs->n == GAP_TARGETS) {
        gs->untracked++;
        return;
    }
    struct gap *g = &gs->g[gs->n++];
    gs->slot[i] = (uint16_t)gs->n;
    snprintf(g->target, sizeof g->target, "%s", target);
    g->first_id = id;
    g->time_ms = time_ms;
    g->lost = 1;
}

/* ==== The state ==== */

struct history {
    struct history_config cfg;
    char *path;
    struct loop *loop;
    int efd;
    pthread_t thread;
    int started;

    pthread_mutex_t mu;
    pthread_cond_t wake;       /* the thread: something queued, or stop */
    pthread_cond_t synced;     /* history_sync */
    struct list in;            /* loop -> thread */
    size_t in_items, in_bytes;
    unsigned in_queries;       /* queries among them: answered without gathering */
    int stop;
    int final_try;             /* (the thread's: the last batch at stop has run) */
    int waiting;               /* the thread sleeps on `wake` */
    struct list out;           /* thread -> loop: answered queries */
    struct gaps dropped;       /* the queue was full: filled on the loop, taken by the thread */
    struct gaps dropped_taken; /* the thread's copy */

    /* the loop's */
    struct slab *spare;        /* the next slab, made outside the mutex */
    struct list pool;          /* emptied slabs back from the thread (under mu): no malloc in steady state */
    size_t npool;
    unsigned pending;          /* queries not answered yet (other than replays) */
    unsigned pending_replays;
    int drop_logged;           /* messages dropped in this episode */
    int drop_told;             /* and the episode was logged */
    long long drop_log_at;

    /* the thread's */
    sqlite3 *db;
    sqlite3_stmt *ins, *gap_ins, *gap_ix;
    struct gaps failed;        /* not recorded because the database failed */
    struct list held;          /* messages waiting for the next try after a failure */
    size_t nheld;
    int failing;               /* since the last successful commit */
    int fail_logged;           /* this failure was logged: log the recovery too */
    long long last_fail_log;
    long long retry_at;        /* monotonic ms */
    long long retention_at;
    long long last_commit;     /* monotonic ms, of the last batch */
    long long last_write;      /* of the last batch that wrote messages */
    int retention_dirty;       /* something was written since the last pass */
    struct dict touched;       /* targets written since the last per-target pass (strdup'ed names) */
    int touched_all;           /* too many to list, or the first pass: every target */
    long long deadline;        /* of the running search, for the progress handler */
    /* The two indexes built behind the inserts (see "The schema"): by_target
     * and the FTS5 search index, each up to date up to ix[i].upto. */
    struct derived {
        const char *key;       /* in meta */
        const char *fill;      /* the bulk insert of (?1, ?2] */
        uint64_t upto;
        uint64_t behind;       /* rows written since (about) */
    } ix[2];
};

const struct history_config *history_config(const struct history *h) { return &h->cfg; }

enum { IX_TARGET, IX_FTS };
static void reread_upto(struct history *h);

static long long now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_real(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ==== The schema ==== */

/* messages.id is the hub's event id: ascending, so messages is an append-only
 * table and an insert costs one b-tree append, nothing more. The two indexes are
 * filled in bulk behind it (index_step), each up to the id in meta:
 *  - by_target (target, id): a room's history; queries read the rows after
 *    target_upto (the last second or so, under load) from messages directly;
 *  - messages_fts, an external-content FTS5 table over messages.text, for search
 *    (gap rows are never in it); a search indexes what is behind first.
 * Gap rows take the id of the first message they stand for (older than rows
 * already indexed), so they go into by_target at once. */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE messages("
    " id INTEGER PRIMARY KEY,"
    " target TEXT NOT NULL COLLATE NOCASE,"
    " time_ms INTEGER NOT NULL,"
    " kind INTEGER NOT NULL,"
    " sender TEXT NOT NULL,"
    " recipient TEXT NOT NULL DEFAULT '',"
    " text TEXT NOT NULL,"
    " lost INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE by_target(target TEXT NOT NULL COLLATE NOCASE, id INTEGER NOT NULL,"
    " PRIMARY KEY (target, id)) WITHOUT ROWID;"
    "CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='messages', content_rowid='id');"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value);"
    "INSERT INTO meta(key, value) VALUES ('fts_upto', 0), ('target_upto', 0);"
    "CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN"
    " DELETE FROM by_target WHERE target = old.target AND id = old.id;"
    " INSERT INTO messages_fts(messages_fts, rowid, text) SELECT 'delete', old.id, old.text"
    "  WHERE old.kind != 4 AND old.id <= (SELECT value FROM meta WHERE key = 'fts_upto'); END;",
};
#define NMIGRATIONS (sizeof migrations / sizeof migrations[0])

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static int user_version(sqlite3 *db, int *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* What went wrong, in words an operator can act on. */
static void open_error(const struct history *h, int rc, const char *doing, char *err, size_t errlen)
{
    const char *hint = "";
    switch (rc & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        hint = " (not a natter database, or damaged: move it away to start afresh, or restore a backup)";
        break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        hint = " (another program is writing it: another natterd with the same --db?)";
        break;
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
        hint = " (check the permissions of the file and of its directory)";
        break;
    case SQLITE_FULL:
        hint = " (the disk is full)";
        break;
    }
    snprintf(err, errlen, "history database %s: %s: %s%s", h->path, doing,
             h->db ? sqlite3_errmsg(h->db) : sqlite3_errstr(rc), hint);
}

/* Bring the schema to HISTORY_SCHEMA_VERSION, one transaction per step, and
 * prove the database writable. */
static int migrate(struct history *h, char *err, size_t errlen)
{
    int v = 0, rc = user_version(h->db, &v);
    if (rc != SQLITE_OK) {
        open_error(h, rc, "reading the schema version", err, errlen);
        return -1;
    }
    if (v > (int)NMIGRATIONS) {
        snprintf(err, errlen, "history database %s: schema version %d is newer than this natterd's (%d): "
                 "use a newer natterd, or another --db", h->path, v, (int)NMIGRATIONS);
        return -1;
    }
    for (; v < (int)NMIGRATIONS; v++) {
        char set[64];
        snprintf(set, sizeof set, "PRAGMA user_version = %d", v + 1);
        if ((rc = exec(h->db, "BEGIN IMMEDIATE")) != SQLITE_OK ||
            (rc = exec(h->db, migrations[v])) != SQLITE_OK || (rc = exec(h->db, set)) != SQLITE_OK ||
            (rc = exec(h->db, "COMMIT")) != SQLITE_OK) {
            open_error(h, rc, v == 0 ? "creating the tables" : "upgrading the schema", err, errlen);
            exec(h->db, "ROLLBACK");
            return -1;
        }
        if (v > 0)
            log_info("history database %s: schema upgraded to version %d", h->path, v + 1);
    }
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO meta(key, value) VALUES ('started_ms', %lld)",
             (long long)now_real());
    if ((rc = exec(h->db, "BEGIN IMMEDIATE")) != SQLITE_OK || (rc = exec(h->db, sql)) != SQLITE_OK ||
        (rc = exec(h->db, "COMMIT")) != SQLITE_OK) {
        open_error(h, rc, "writing", err, errlen);
        exec(h->db, "ROLLBACK");
        return -1;
    }
    return 0;
}

/* The file is made private (0600) before SQLite creates it with its default
 * mode; SQLite gives the -wal and -shm files the same mode. */
static int create_private(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    return fd >= 0 || errno == EEXIST ? 0 : -1;
}

static int open_db(struct history *h, char *err, size_t errlen)
{
    int memory = strcmp(h->path, ":memory:") == 0;
    if (!memory && create_private(h->path) < 0) {
        snprintf(err, errlen, "history database %s: cannot create it: %s (check the directory's permissions)",
                 h->path, strerror(errno));
        return -1;
    }
    int rc = sqlite3_open_v2(h->path, &h->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        open_error(h, rc, "cannot open it", err, errlen);
        return -1;
    }
    sqlite3_extended_result_codes(h->db, 1);
    sqlite3_busy_timeout(h->db, 1000);
    if (sqlite3_db_readonly(h->db, "main") == 1) {
        snprintf(err, errlen, "history database %s: not writable (check the permissions of the file and of "
                 "its directory)", h->path);
        return -1;
    }
    int v;
    if ((rc = user_version(h->db, &v)) != SQLITE_OK) { /* reads the header: a file that is not a database */
        open_error(h, rc, "cannot read it", err, errlen);
        return -1;
    }
    if (!memory) {
        sqlite3_stmt *st;
        rc = sqlite3_prepare_v2(h->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *mode = (const char *)sqlite3_column_text(st, 0);
            rc = mode && strcmp(mode, "wal") == 0 ? SQLITE_OK : SQLITE_CANTOPEN;
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_OK) {
            open_error(h, rc, "cannot switch it to WAL mode", err, errlen);
            return -1;
        }
        /* In WAL mode NORMAL loses no committed transaction when the process dies
         * (kill -9): only a power cut can take the last few. */
        exec(h->db, "PRAGMA synchronous = NORMAL");
        exec(h->db, "PRAGMA wal_autocheckpoint = 4000"); /* 16 MB of WAL between checkpoints */
    }
    exec(h->db, "PRAGMA cache_size = -16384"); /* 16 MB: the index pages of busy rooms stay cached */
    exec(h->db, "PRAGMA temp_store = MEMORY");
    if (migrate(h, err, errlen) < 0)
        return -1;
    h->ix[IX_TARGET] = (struct derived){.key = "target_upto", .fill = "INSERT OR IGNORE INTO by_target(target, id) "
                                        "SELECT target, id FROM messages WHERE id > ?1 AND id <= ?2 ORDER BY target, id"};
    h->ix[IX_FTS] = (struct derived){.key = "fts_upto", .fill = "INSERT INTO messages_fts(rowid, text) "
                                     "SELECT id, text FROM messages WHERE id > ?1 AND id <= ?2 AND kind != 4"};
    reread_upto(h);
    h->ix[IX_TARGET].behind = h->ix[IX_FTS].behind = 1; /* look once: the last run may have stopped behind */
    rc = sqlite3_prepare_v2(h->db,
                            "INSERT INTO messages(id, target, time_ms, kind, sender, recipient, text) "
                            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                            -1, &h->ins, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(h->db,
                                "INSERT OR IGNORE INTO messages(id, target, time_ms, kind, sender, text, lost) "
                                "VALUES (?1, ?2, ?3, 4, '', '', ?4)",
                                -1, &h->gap_ins, NULL);
    if (rc != SQLITE_OK) {
        open_error(h, rc, "preparing statements", err, errlen);
        return -1;
    }
    sqlite3_busy_timeout(h->db, 5000); /* from now on the thread waits, not the loop */
    return 0;
}

static void reread_upto(struct history *h)
{
    for (int i = 0; i < 2; i++) {
        sqlite3_stmt *up;
        if (sqlite3_prepare_v2(h->db, "SELECT value FROM meta WHERE key = ?1", -1, &up, NULL) != SQLITE_OK)
            continue;
        sqlite3_bind_text(up, 1, h->ix[i].key, -1, SQLITE_STATIC);
        if (sqlite3_step(up) == SQLITE_ROW)
            h->ix[i].upto = (uint64_t)sqlite3_column_int64(up, 0);
        sqlite3_finalize(up);
    }
}

/* ==== The history thread: writing ==== */

/* Logged once a minute at most: a disk on the edge of full fails and succeeds by turns. */
static void log_failure(struct history *h, int rc)
{
    long long now = now_mono();
    if (h->failing++ || h->fail_logged || (h->last_fail_log && now < h->last_fail_log + 60000))
        return;
    h->fail_logged = 1;
    h->last_fail_log = now;
    log_info("history: cannot write %s: %s: messages are not recorded until writes succeed again, "
             "and history will show the gap", h->path, sqlite3_errstr(rc));
}

static int insert_msg(struct history *h, const struct mnode *m)
{
    sqlite3_stmt *st = h->ins;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)m->id);
    sqlite3_bind_text(st, 2, m->target, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, m->time_ms);
    sqlite3_bind_int(st, 4, (int)m->kind);
    sqlite3_bind_text(st, 5, m->from, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, m->to, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, m->text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int index_rows(struct history *h, struct derived *d, int limit, uint64_t *end);

static int insert_gaps(struct history *h, const struct gaps *gs)
{
    if (gs->n && !h->gap_ix &&
        sqlite3_prepare_v2(h->db, "INSERT OR IGNORE INTO by_target(target, id) VALUES (?1, ?2)", -1, &h->gap_ix,
                           NULL) != SQLITE_OK)
        return sqlite3_errcode(h->db);
    for (size_t i = 0; i < gs->n; i++) {
        sqlite3_bind_text(h->gap_ix, 1, gs->g[i].target, -1, SQLITE_STATIC);
        sqlite3_bind_int64(h->gap_ix, 2, (sqlite3_int64)gs->g[i].first_id);
        int irc = sqlite3_step(h->gap_ix);
        sqlite3_reset(h->gap_ix);
        if (irc != SQLITE_DONE)
            return irc;
        sqlite3_stmt *st = h->gap_ins;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)gs->g[i].first_id);
        sqlite3_bind_text(st, 2, gs->g[i].target, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, gs->g[i].time_ms);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)gs->g[i].lost);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return rc;
    }
    return SQLITE_OK;
}

static void answer(struct history *h, struct qnode *q);

/* A slab the thread is done with goes back to the loop for reuse: freed here,
 * memory the loop allocated would cost both threads the allocator's locks. */
static void slab_release(struct history *h, struct node *n)
{
    struct slab *sl = (struct slab *)n;
    if (sl->cap == SLAB_SIZE) {
        pthread_mutex_lock(&h->mu);
        int kept = h->npool < POOL_MAX;
        if (kept) {
            list_push(&h->pool, n);
            h->npool++;
        }
        pthread_mutex_unlock(&h->mu);
        if (kept)
            return;
    }
    free(n);
}

/* Drop what is held for the next try; as a gap when it was lost. */
static void free_held(struct history *h, int lost)
{
    struct node *n = h->held.head;
    while (n) {
        struct node *next = n->next;
        if (lost)
            FOR_RECORDS((struct slab *)n, m)
                gaps_add(&h->failed, m->target, m->id, m->time_ms);
        slab_release(h, n);
        n = next;
    }
    h->held.head = h->held.tail = NULL;
    h->nheld = 0;
}
static void touch(struct history *h, const char *target);

/* One batch: every message inserted and every query answered in queue order,
 * in one transaction. When the database fails, the messages of the batch are
 * counted as a gap (the transaction is rolled back), and the next batch, no
 * sooner than RETRY_MS later, tries again, writing the gap rows first. */
static void run_batch(struct history *h, struct node *batch, struct gaps *dropped, struct list *answered)
{
    int rc = SQLITE_OK;
    int trying = !h->failing || now_mono() >= h->retry_at || h->stop; /* (stopping: a last try) */
    if (trying && (rc = exec(h->db, "BEGIN IMMEDIATE")) == SQLITE_OK) {
        rc = insert_gaps(h, &h->failed);
        if (rc == SQLITE_OK)
            rc = insert_gaps(h, dropped);
    }
    int written = 0;
    if (trying)
        for (struct node *n = h->held.head; n && rc == SQLITE_OK; n = n->next)
            FOR_RECORDS((struct slab *)n, m) {
                if (rc == SQLITE_OK)
                    rc = insert_msg(h, m);
                written++;
            }
    for (struct node *n = batch; n; n = n->next) {
        if (n->kind == N_SLAB) {
            FOR_RECORDS((struct slab *)n, m) {
                if (trying && rc == SQLITE_OK)
                    rc = insert_msg(h, m);
                written++;
            }
        } else if (n->kind == N_QUERY) {
            answer(h, (struct qnode *)n);
        } else if (((struct snode *)n)->settle && trying && rc == SQLITE_OK) {
            for (int i = 0; i < 2 && rc == SQLITE_OK; i++) {
                uint64_t end;
                h->ix[i].behind += (uint64_t)written;
                written = 0;
                if ((rc = index_rows(h, &h->ix[i], 1 << 30, &end)) == SQLITE_OK) {
                    h->ix[i].upto = end;
                    h->ix[i].behind = 0;
                }
            }
        }
    }
    if (trying && rc == SQLITE_OK)
        rc = exec(h->db, "COMMIT");
    int keep = 0; /* the batch's messages go to `held` */
    if (trying && rc == SQLITE_OK) {
        if (h->fail_logged)
            log_info("history: writing %s again; %llu messages were not recorded", h->path,
                     (unsigned long long)(h->failed.total + h->failed.untracked));
        h->fail_logged = 0;
        if (h->failed.untracked || dropped->untracked)
            log_info("history: %llu lost messages were in too many rooms to mark as gaps",
                     (unsigned long long)(h->failed.untracked + dropped->untracked));
        memset(&h->failed, 0, sizeof h->failed);
        h->failing = 0;
        if (written)
            h->retention_dirty = 1;
        h->ix[IX_TARGET].behind += (uint64_t)written;
        h->ix[IX_FTS].behind += (uint64_t)written;
        if (written)
            h->last_write = now_mono();
        if (written && h->cfg.max_per_room > 0) {
            for (struct node *n = h->held.head; n; n = n->next)
                FOR_RECORDS((struct slab *)n, m)
                    touch(h, m->target);
            for (struct node *n = batch; n; n = n->next)
                if (n->kind == N_SLAB)
                    FOR_RECORDS((struct slab *)n, m)
                        touch(h, m->target);
        }
        free_held(h, 0);
    } else {
        if (trying) {
            exec(h->db, "ROLLBACK");
            reread_upto(h); /* a search in the batch may have moved fts_upto */
            log_failure(h, rc);
            h->retry_at = now_mono() + RETRY_MS;
            free_held(h, 1); /* tried and failed: what was held is a gap now */
        }
        /* The queue-full gaps are the thread's now; the batch waits in memory for
         * the next try, or, beyond HELD_MAX, is a gap too. */
        for (size_t i = 0; i < dropped->n; i++)
            for (uint64_t k = 0; k < dropped->g[i].lost; k++)
                gaps_add(&h->failed, dropped->g[i].target, dropped->g[i].first_id, dropped->g[i].time_ms);
        h->failed.untracked += dropped->untracked;
        keep = 1;
    }
    /* Free (or hold) the messages; keep the answered queries (and sync markers) for the loop. */
    struct node *n = batch;
    while (n) {
        struct node *next = n->next;
        struct slab *sl = (struct slab *)n;
        if (n->kind != N_SLAB) {
            list_push(answered, n);
        } else if (keep && h->nheld + sl->count <= HELD_MAX) {
            list_push(&h->held, n);
            h->nheld += sl->count;
        } else {
            if (keep)
                FOR_RECORDS(sl, m)
                    gaps_add(&h->failed, m->target, m->id, m->time_ms);
            slab_release(h, n);
        }
        n = next;
    }
}

/* ==== The history thread: the indexes behind the inserts ==== */

/* Fill index d with up to `limit` rows after its upto, inside the caller's
 * transaction; *end is its new upto. In bulk an index costs a fraction of what it
 * does row by row, and its work can wait for a quiet moment (PERFORMANCE.md). */
static int index_rows(struct history *h, struct derived *d, int limit, uint64_t *end)
{
    sqlite3_stmt *st = NULL;
    *end = d->upto;
    int rc = sqlite3_prepare_v2(h->db, "SELECT max(id) FROM (SELECT id FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2)",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)d->upto);
    sqlite3_bind_int(st, 2, limit);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        *end = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (*end == d->upto)
        return SQLITE_OK;
    if ((rc = sqlite3_prepare_v2(h->db, d->fill, -1, &st, NULL)) != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)d->upto);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)*end);
    rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(h->db);
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return rc;
    if ((rc = sqlite3_prepare_v2(h->db, "UPDATE meta SET value = ?1 WHERE key = ?2", -1, &st, NULL)) != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)*end);
    sqlite3_bind_text(st, 2, d->key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(h->db);
    sqlite3_finalize(st);
    return rc;
}

/* One chunk of index d in its own transaction. */
static void index_step(struct history *h, struct derived *d)
{
    uint64_t end;
    int rc = exec(h->db, "BEGIN IMMEDIATE");
    if (rc == SQLITE_OK)
        rc = index_rows(h, d, INDEX_CHUNK, &end);
    if (rc == SQLITE_OK && (rc = exec(h->db, "COMMIT")) == SQLITE_OK) {
        if (end == d->upto)
            d->behind = 0;
        else
            d->behind = d->behind > INDEX_CHUNK ? d->behind - INDEX_CHUNK : 1;
        d->upto = end;
        return;
    }
    exec(h->db, "ROLLBACK");
    d->behind = 0; /* the next write tries again */
}

/* ==== The history thread: retention ==== */

static const char *touched_key(const void *p) { return p; }

static void touch(struct history *h, const char *target)
{
    if (h->touched_all || dict_get(&h->touched, target))
        return;
    char *t = h->touched.count < TOUCHED_MAX ? strdup(target) : NULL;
    if (!t || dict_add(&h->touched, t) < 0) {
        free(t);
        h->touched_all = 1;
    }
}

static void touched_clear(struct history *h)
{
    for (size_t i = 0; i < h->touched.cap; i++)
        free(h->touched.slots[i]);
    dict_free(&h->touched);
    dict_init(&h->touched, touched_key);
}

/* Delete what is beyond max_per_room in one target, up to *budget rows. */
static int trim_one(struct history *h, const char *target, int *budget)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(h->db,
                                "DELETE FROM messages WHERE id IN (SELECT id FROM by_target WHERE target = ?1 AND "
                                "id < (SELECT id FROM by_target WHERE target = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2) "
                                "ORDER BY id LIMIT ?3)", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, h->cfg.max_per_room - 1);
    sqlite3_bind_int(st, 3, *budget);
    rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    *budget -= sqlite3_changes(h->db);
    sqlite3_finalize(st);
    return rc;
}

/* The per-target limit over the targets written since the last pass (or all of
 * them, the first time). *more is set when the budget ran out. */
static int trim_targets(struct history *h, int *more)
{
    int budget = RETENTION_BATCH, rc = SQLITE_OK;
    if (h->touched_all) {
        sqlite3_stmt *st;
        if ((rc = sqlite3_prepare_v2(h->db, "SELECT DISTINCT target FROM by_target", -1, &st, NULL)) != SQLITE_OK)
            return rc;
        while (rc == SQLITE_OK && budget > 0 && sqlite3_step(st) == SQLITE_ROW)
            rc = trim_one(h, (const char *)sqlite3_column_text(st, 0), &budget);
        sqlite3_finalize(st);
        if (budget > 0 && rc == SQLITE_OK) {
            h->touched_all = 0;
            touched_clear(h);
        }
    } else {
        for (size_t i = 0; i < h->touched.cap && rc == SQLITE_OK && budget > 0; i++) {
            char *t = h->touched.slots[i];
            if (!t)
                continue;
            int before = budget;
            rc = trim_one(h, t, &budget);
            if (rc == SQLITE_OK && budget > 0) { /* done with it */
                dict_remove(&h->touched, t);
                free(t);
                i--; /* removal may have moved another entry into this slot */
            }
            (void)before;
        }
    }
    if (budget <= 0)
        *more = 1;
    return rc;
}

/* Delete up to RETENTION_BATCH rows that are too old or beyond max_per_room.
 * Returns 1 when there may be more to delete. */
static int retention_step(struct history *h)
{
    int more = 0;
    sqlite3_stmt *st = NULL;
    if (exec(h->db, "BEGIN IMMEDIATE") != SQLITE_OK)
        return 0;
    int rc = SQLITE_OK;
    if (h->cfg.days > 0) {
        int64_t cutoff = now_real() - h->cfg.days * 86400000LL;
        rc = sqlite3_prepare_v2(h->db,
                                "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE id < ?1 "
                                "ORDER BY id LIMIT ?2)", -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)((uint64_t)cutoff << 16));
            sqlite3_bind_int(st, 2, RETENTION_BATCH);
            rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
            if (sqlite3_changes(h->db) == RETENTION_BATCH)
                more = 1;
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    if (rc == SQLITE_OK && h->cfg.max_per_room > 0 && !more)
        rc = trim_targets(h, &more);
    if (rc == SQLITE_OK && exec(h->db, "COMMIT") == SQLITE_OK)
        return more;
    exec(h->db, "ROLLBACK");
    return 0;
}

/* ==== The history thread: queries ==== */

static int progress(void *arg)
{
    struct history *h = arg;
    return h->deadline && now_mono() > h->deadline;
}

struct collect {
    struct history_entry *e;
    size_t n, cap;
    char *blob;
    size_t blen, bcap;
};

/* Strings are kept as offsets into blob while it grows, turned into pointers at the end. */
static size_t keep_str(struct collect *c, const unsigned char *s)
{
    size_t len = s ? strlen((const char *)s) : 0;
    if (c->blen + len + 1 > c->bcap) {
        size_t cap = c->bcap ? c->bcap * 2 : 4096;
        while (cap < c->blen + len + 1)
            cap *= 2;
        char *p = realloc(c->blob, cap);
        if (!p)
            return (size_t)-1;
        c->blob = p;
        c->bcap = cap;
    }
    size_t off = c->blen;
    if (len)
        memcpy(c->blob + off, s, len);
    c->blob[off + len] = '\0';
    c->blen += len + 1;
    return off;
}

/* Append the rows of st (id, time_ms, kind, target, sender, recipient, text, lost). */
static int collect_rows(struct collect *c, sqlite3_stmt *st)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 64;
            struct history_entry *p = realloc(c->e, cap * sizeof *p);
            if (!p)
                return SQLITE_NOMEM;
            c->e = p;
            c->cap = cap;
        }
        struct history_entry *e = &c->e[c->n];
        e->id = (uint64_t)sqlite3_column_int64(st, 0);
        e->time_ms = sqlite3_column_int64(st, 1);
        e->kind = (enum history_kind)sqlite3_column_int(st, 2);
        size_t o[4];
        for (int i = 0; i < 4; i++)
            if ((o[i] = keep_str(c, sqlite3_column_text(st, 3 + i))) == (size_t)-1)
                return SQLITE_NOMEM;
        e->target = (const char *)o[0];
        e->from = (const char *)o[1];
        e->to = (const char *)o[2];
        e->text = (const char *)o[3];
        e->lost = (uint64_t)sqlite3_column_int64(st, 7);
        c->n++;
    }
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void reverse(struct history_entry *e, size_t from, size_t to)
{
    while (to > from + 1) {
        struct history_entry t = e[from];
        e[from++] = e[--to];
        e[to] = t;
    }
}

#define COLS "id, time_ms, kind, target, sender, recipient, text, lost"

/* Exclusive id bounds for a point: ids after it are > lo(p), before it < hi(p). */
static uint64_t lo_of(const struct history_point *p)
{
    return p->id ? p->id : p->time_ms > 0 ? ((uint64_t)(p->time_ms + 1) << 16) - 1 : 0;
}
static uint64_t hi_of(const struct history_point *p)
{
    return p->id ? p->id : p->time_ms > 0 ? (uint64_t)p->time_ms << 16 : UINT64_MAX >> 1;
}
static int given(const struct history_point *p) { return p->id || p->time_ms; }

/* Rows of target with lo < id < hi, from by_target (ids up to its upto) or, after
 * that, from messages directly (the tail not indexed yet); `limit` of them, the
 * oldest or the newest, appended oldest first. */
static int range_part(struct history *h, struct collect *c, const char *target, uint64_t lo, uint64_t hi,
                      unsigned limit, int newest, int tail)
{
    static const char *const sql[2][2] = {
        {"SELECT m.id, m.time_ms, m.kind, m.target, m.sender, m.recipient, m.text, m.lost FROM by_target b "
         "CROSS JOIN messages m ON m.id = b.id WHERE b.target = ?1 AND b.id > ?2 AND b.id < ?3 ORDER BY b.id LIMIT ?4",
         "SELECT m.id, m.time_ms, m.kind, m.target, m.sender, m.recipient, m.text, m.lost FROM by_target b "
         "CROSS JOIN messages m ON m.id = b.id WHERE b.target = ?1 AND b.id > ?2 AND b.id < ?3 "
         "ORDER BY b.id DESC LIMIT ?4"},
        {"SELECT " COLS " FROM messages WHERE id > ?2 AND id < ?3 AND target = ?1 ORDER BY id LIMIT ?4",
         "SELECT " COLS " FROM messages WHERE id > ?2 AND id < ?3 AND target = ?1 ORDER BY id DESC LIMIT ?4"},
    };
    if (limit == 0 || lo + 1 >= hi)
        return SQLITE_OK;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v3(h->db, sql[tail][newest], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)lo);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)hi);
    sqlite3_bind_int(st, 4, (int)limit);
    size_t from = c->n;
    rc = collect_rows(c, st);
    sqlite3_finalize(st);
    if (rc == SQLITE_OK && newest)
        reverse(c->e, from, c->n);
    return rc;
}

static int range(struct history *h, struct collect *c, const char *target, uint64_t lo, uint64_t hi,
                 unsigned limit, int newest)
{
    const uint64_t max = UINT64_MAX >> 1;
    hi = hi > max ? max : hi;
    lo = lo > max ? max : lo;
    uint64_t up = h->ix[IX_TARGET].upto;
    uint64_t ix_hi = hi < up + 1 ? hi : up + 1, tail_lo = lo > up ? lo : up;
    size_t from = c->n;
    int rc;
    if (newest) { /* the tail first, then what is indexed; each part comes oldest first */
        rc = range_part(h, c, target, tail_lo, hi, limit, 1, 1);
        size_t got = c->n - from;
        if (rc == SQLITE_OK && got < limit) {
            rc = range_part(h, c, target, lo, ix_hi, limit - (unsigned)got, 1, 0);
            /* [tail][indexed] -> [indexed][tail] */
            reverse(c->e, from, from + got);
            reverse(c->e, from + got, c->n);
            reverse(c->e, from, c->n);
        }
        return rc;
    }
    rc = range_part(h, c, target, lo, ix_hi, limit, 0, 0);
    size_t got = c->n - from;
    if (rc == SQLITE_OK && got < limit)
        rc = range_part(h, c, target, tail_lo, hi, limit - (unsigned)got, 0, 1);
    return rc;
}

/* The words as an FTS5 query: each one a quoted string (so nothing in it is
 * syntax), all of them required. Returns the number of words. */
static int fts_query(const char *words, char *out, size_t len)
{
    size_t n = 0;
    int count = 0;
    const char *p = words;
    while (*p && count < HISTORY_MAX_WORDS) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        if (n + 4 >= len)
            break;
        out[n++] = '"';
        while (*p && *p != ' ' && *p != '\t' && n + 4 < len) {
            if (*p == '"')
                out[n++] = '"';
            out[n++] = *p++;
        }
        out[n++] = '"';
        out[n++] = ' ';
        count++;
        while (*p && *p != ' ' && *p != '\t')
            p++;
    }
    out[n] = '\0';
    return count;
}

static int search(struct history *h, struct collect *c, const struct history_query *q)
{
    char match[1024];
    if (fts_query(q->words, match, sizeof match) == 0)
        return -HISTORY_EWORDS;
    if (q->ntargets == 0)
        return SQLITE_OK;
    /* What was recorded before the search is found by it: index the rest first
     * (in the batch's transaction; run_batch restores fts_upto if that fails),
     * up to SEARCH_INDEX_MAX rows, about a second of heavy load. */
    uint64_t end;
    int irc = index_rows(h, &h->ix[IX_FTS], SEARCH_INDEX_MAX, &end);
    if (irc != SQLITE_OK)
        return irc;
    h->ix[IX_FTS].upto = end;
    char sql[256 + 4 * 1000];
    size_t n = (size_t)snprintf(sql, sizeof sql,
                                "SELECT m.id, m.time_ms, m.kind, m.target, m.sender, m.recipient, m.text, m.lost "
                                "FROM messages_fts f JOIN messages m ON m.id = f.rowid "
                                "WHERE messages_fts MATCH ?1 AND m.target IN (");
    size_t nt = q->ntargets > 1000 ? 1000 : q->ntargets;
    for (size_t i = 0; i < nt; i++)
        n += (size_t)snprintf(sql + n, sizeof sql - n, "%s?%zu", i ? "," : "", i + 3);
    snprintf(sql + n, sizeof sql - n, ") ORDER BY f.rowid DESC LIMIT ?2");
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(h->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, (int)q->limit);
    for (size_t i = 0; i < nt; i++)
        sqlite3_bind_text(st, (int)i + 3, q->targets[i], -1, SQLITE_STATIC);
    h->deadline = now_mono() + SEARCH_BUDGET_MS;
    size_t from = c->n;
    rc = collect_rows(c, st);
    h->deadline = 0;
    sqlite3_finalize(st);
    if (rc == SQLITE_INTERRUPT)
        return -HISTORY_ESLOW;
    if (rc == SQLITE_OK)
        reverse(c->e, from, c->n);
    return rc;
}

static void answer(struct history *h, struct qnode *qn)
{
    const struct history_query *q = &qn->q;
    struct collect c = {0};
    int rc = SQLITE_OK;
    unsigned lim = q->limit;
    switch (q->sel) {
    case HQ_LATEST:
        rc = range(h, &c, q->target, lo_of(&q->a), UINT64_MAX, lim, 1);
        break;
    case HQ_BEFORE:
        rc = range(h, &c, q->target, 0, hi_of(&q->a), lim, 1);
        break;
    case HQ_AFTER:
        rc = range(h, &c, q->target, lo_of(&q->a), UINT64_MAX, lim, 0);
        break;
    case HQ_AROUND: {
        /* Before a, then a itself (by id) or from its time on. */
        uint64_t at = q->a.id ? q->a.id : hi_of(&q->a);
        rc = range(h, &c, q->target, 0, at, lim / 2, 1);
        if (rc == SQLITE_OK)
            rc = range(h, &c, q->target, at - 1, UINT64_MAX, lim - (unsigned)c.n, 0);
        break;
    }
    case HQ_BETWEEN: {
        uint64_t a_lo = lo_of(&q->a), a_hi = hi_of(&q->a), b_lo = lo_of(&q->b), b_hi = hi_of(&q->b);
        if (!given(&q->b) || a_lo < b_hi)
            rc = range(h, &c, q->target, a_lo, given(&q->b) ? b_hi : UINT64_MAX, lim, 0);
        else
            rc = range(h, &c, q->target, b_lo, a_hi, lim, 1);
        break;
    }
    case HQ_SEARCH:
        rc = search(h, &c, q);
        break;
    }
    qn->r.status = HISTORY_OK;
    if (rc < 0) {
        qn->r.status = (enum history_status)-rc;
        c.n = 0;
    } else if (rc != SQLITE_OK) {
        log_info("history: a query failed: %s", sqlite3_errstr(rc));
        qn->r.status = HISTORY_EFAIL;
        c.n = 0;
    }
    for (size_t i = 0; i < c.n; i++) {
        struct history_entry *e = &c.e[i];
        e->target = c.blob + (size_t)e->target;
        e->from = c.blob + (size_t)e->from;
        e->to = c.blob + (size_t)e->to;
        e->text = c.blob + (size_t)e->text;
    }
    qn->entries = c.e;
    qn->blob = c.blob;
    qn->r.entries = c.e;
    qn->r.count = c.n;
}

/* ==== The history thread ==== */

static void *thread_main(void *arg)
{
    struct history *h = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the loop's (signalfd) */
    /* When the cores are short, the chat goes first: this thread runs at a lower
     * priority than the loop (Linux: nice is per thread). History that cannot keep
     * up is marked as a gap; the loop never waits for it. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), HISTORY_NICE) < 0)
        log_errno("history: setpriority");
    pthread_mutex_lock(&h->mu);
    for (;;) {
        long long now = now_mono();
        /* The search index waits for a quiet moment: under load its work would be
         * taken from the chat (two cores: the loop, the clients, this thread). */
        int quiet = now >= h->last_write + INDEX_IDLE_MS;
        if (!h->in.head && !h->stop && quiet && (h->ix[IX_TARGET].behind || h->ix[IX_FTS].behind)) {
            pthread_mutex_unlock(&h->mu);
            index_step(h, &h->ix[h->ix[IX_TARGET].behind ? IX_TARGET : IX_FTS]);
            pthread_mutex_lock(&h->mu);
            continue;
        }
        if (!h->in.head && !h->stop) {
            /* (per-room limits count what by_target holds: after it has caught up) */
            int retention = (h->cfg.days > 0 || h->cfg.max_per_room > 0) && now >= h->retention_at &&
                            !h->ix[IX_TARGET].behind;
            if (retention && (h->retention_dirty || h->cfg.days > 0)) {
                pthread_mutex_unlock(&h->mu);
                int more = retention_step(h);
                pthread_mutex_lock(&h->mu);
                if (!more) {
                    h->retention_dirty = 0;
                    h->retention_at = now_mono() + RETENTION_PERIOD_MS;
                }
                continue;
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            if (h->ix[IX_TARGET].behind || h->ix[IX_FTS].behind) { /* wake for the quiet moment */
                long long ns = ts.tv_nsec + (h->last_write + INDEX_IDLE_MS - now + 1) * 1000000LL;
                ts.tv_sec += ns / 1000000000LL;
                ts.tv_nsec = ns % 1000000000LL;
            } else {
                ts.tv_sec += 1;
            }
            h->waiting = 1;
            pthread_cond_timedwait(&h->wake, &h->mu, &ts);
            h->waiting = 0;
            continue;
        }
        if (!h->in.head && h->stop) {
            /* A last try for what is held after a failure, and the gap rows. */
            if (!h->final_try && (h->held.head || h->failed.n || h->dropped.total)) {
                h->final_try = 1;
                h->dropped_taken = h->dropped;
                memset(&h->dropped, 0, sizeof h->dropped);
                pthread_mutex_unlock(&h->mu);
                struct list none = {0};
                run_batch(h, NULL, &h->dropped_taken, &none);
                pthread_mutex_lock(&h->mu);
            }
            break;
        }
        /* Gather: a batch a loop turn would commit (and rewrite the same index
         * pages) a thousand times a second under load. */
        if (!h->stop && !h->in_queries && h->in_items < GATHER_MAX && now < h->last_commit + COMMIT_MS) {
            long long until = h->last_commit + COMMIT_MS;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            long long ns = ts.tv_nsec + (until - now) * 1000000LL;
            ts.tv_sec += ns / 1000000000LL;
            ts.tv_nsec = ns % 1000000000LL;
            pthread_cond_timedwait(&h->wake, &h->mu, &ts);
            continue;
        }
        /* Take the whole queue: O(1) under the mutex, which the loop takes for
         * every message (a walk along the list here would stall it). */
        struct node *batch = h->in.head;
        h->in.head = h->in.tail = NULL;
        h->in_items = h->in_bytes = 0;
        h->in_queries = 0;
        int had_drops = h->dropped.total > 0;
        if (had_drops) { /* (rare: the queue was full) */
            h->dropped_taken = h->dropped;
            memset(&h->dropped, 0, sizeof h->dropped);
        }
        pthread_mutex_unlock(&h->mu);
        if (!had_drops)
            h->dropped_taken.n = h->dropped_taken.untracked = h->dropped_taken.total = 0;
        struct gaps *dropped = &h->dropped_taken;

        struct list answered = {0};
        run_batch(h, batch, dropped, &answered);
        h->last_commit = now_mono();
        /* A load that never pauses: catch up in bulk, room history first. */
        if (h->ix[IX_TARGET].behind >= TARGET_BACKLOG)
            index_step(h, &h->ix[IX_TARGET]);
        else if (h->ix[IX_FTS].behind >= INDEX_BACKLOG)
            index_step(h, &h->ix[IX_FTS]);

        pthread_mutex_lock(&h->mu);
        if (answered.head) {
            int was_empty = !h->out.head;
            if (h->out.tail)
                h->out.tail->next = answered.head;
            else
                h->out.head = answered.head;
            h->out.tail = answered.tail;
            for (struct node *n = answered.head; n; n = n->next)
                if (n->kind == N_SYNC)
                    ((struct snode *)n)->done = 1;
            pthread_cond_broadcast(&h->synced);
            if (was_empty) {
                uint64_t one = 1;
                if (write(h->efd, &one, sizeof one) < 0 && errno != EAGAIN)
                    log_errno("history: eventfd");
            }
        }
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* ==== The loop's side ==== */

static void free_query(struct qnode *q)
{
    free(q->entries);
    free(q->blob);
    free(q);
}

static void on_answers(struct loop *l, int fd, int mask, void *data)
{
    (void)l, (void)mask;
    struct history *h = data;
    uint64_t v;
    if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN)
        log_errno("history: eventfd");
    pthread_mutex_lock(&h->mu);
    struct node *n = h->out.head;
    h->out.head = h->out.tail = NULL;
    pthread_mutex_unlock(&h->mu);
    while (n) {
        struct node *next = n->next;
        if (n->kind == N_QUERY) {
            struct qnode *q = (struct qnode *)n;
            if (q->q.replay)
                h->pending_replays--;
            else
                h->pending--;
            q->q.done(q->q.arg, q->q.cookie, &q->r);
            free_query(q);
        }
        /* sync markers belong to history_sync, which frees them */
        n = next;
    }
}

/* Push a node; the thread is woken only when it sleeps. */
static void enqueue(struct history *h, struct node *n, size_t bytes)
{
    list_push(&h->in, n);
    h->in_items++;
    h->in_bytes += bytes;
    if (h->waiting)
        pthread_cond_signal(&h->wake);
}

static char *copy_in(char **p, const char *s)
{
    size_t len = s ? strlen(s) : 0;
    char *at = *p;
    if (len)
        memcpy(at, s, len);
    at[len] = '\0';
    *p += len + 1;
    return at;
}

void history_record(void *arg, const struct hub_event *ev)
{
    struct history *h = arg;
    enum history_kind kind;
    char key[HISTORY_KEY_MAX];
    const char *target = ev->room, *to = "";
    switch (ev->type) {
    case EV_SAY:
        kind = HK_SAY;
        break;
    case EV_ACTION:
        kind = HK_ACTION;
        break;
    case EV_PRIVMSG:
        if (!h->cfg.private_msgs || history_private_key(ev->from, ev->to, key) < 0)
            return;
        kind = HK_PRIVMSG;
        target = key;
        to = ev->to;
        break;
    default:
        return;
    }
    size_t size = (sizeof(struct mnode) + strlen(target) + strlen(ev->from) + strlen(to) + strlen(ev->text) + 4 + 7) &
                  ~(size_t)7;
    struct slab *big = size > SLAB_SIZE ? slab_new(size) : NULL; /* (a long line: a slab of its own) */
    pthread_mutex_lock(&h->mu);
    int full = h->in_items >= QUEUE_MAX_ITEMS || h->in_bytes + size > QUEUE_MAX_BYTES;
    struct slab *sl = h->in.tail && h->in.tail->kind == N_SLAB ? (struct slab *)h->in.tail : NULL;
    if (!full && (!sl || sl->cap - sl->used < size)) {
        if (!h->spare && h->pool.head) { /* one back from the thread */
            h->spare = (struct slab *)h->pool.head;
            if (!(h->pool.head = h->pool.head->next))
                h->pool.tail = NULL;
            h->npool--;
            h->spare->used = h->spare->count = 0;
        }
        sl = big ? big : h->spare && h->spare->cap >= size ? h->spare : NULL;
        if (sl == h->spare)
            h->spare = NULL;
        big = NULL;
        if (sl) {
            list_push(&h->in, &sl->n);
        } else {
            full = 1; /* out of memory for a slab */
        }
    }
    if (full) {
        gaps_add(&h->dropped, target, ev->id, ev->time_ms);
    } else {
        struct mnode *m = (struct mnode *)(void *)(sl->data + sl->used);
        m->id = ev->id;
        m->time_ms = ev->time_ms;
        m->kind = kind;
        m->size = size;
        char *p = m->data;
        m->target = copy_in(&p, target);
        m->from = copy_in(&p, ev->from);
        m->to = copy_in(&p, to);
        m->text = copy_in(&p, ev->text);
        sl->used += size;
        sl->count++;
        h->in_items++;
        h->in_bytes += size;
        if (h->waiting)
            pthread_cond_signal(&h->wake);
    }
    pthread_mutex_unlock(&h->mu);
    free(big);
    if (!h->spare)
        h->spare = slab_new(SLAB_SIZE);
    if (full) {
        long long now = now_mono();
        if (!h->drop_logged++ && (!h->drop_log_at || now >= h->drop_log_at + 60000)) {
            h->drop_log_at = now;
            h->drop_told = 1;
            log_info("history: the queue to %s is full (writing cannot keep up): messages are not recorded "
                     "until it drains, and history will show the gap (logged once a minute at most)", h->path);
        }
    } else if (h->drop_logged) {
        if (h->drop_told)
            log_info("history: the queue drains again; %d messages were not recorded", h->drop_logged);
        h->drop_told = 0;
        h->drop_logged = 0;
    }
}

int history_query(struct history *h, const struct history_query *q)
{
    if (q->replay ? h->pending_replays >= HISTORY_MAX_REPLAYS : h->pending >= HISTORY_MAX_PENDING)
        return -1;
    size_t size = sizeof(struct qnode) + 4;
    size_t nt = q->sel == HQ_SEARCH ? q->ntargets : 0;
    if (nt > 1000)
        nt = 1000;
    size += q->target ? strlen(q->target) : 0;
    size += q->words ? strlen(q->words) : 0;
    size += nt * sizeof(char *);
    for (size_t i = 0; i < nt; i++)
        size += strlen(q->targets[i]) + 1;
    struct qnode *n = calloc(1, size + sizeof(char *));
    if (!n)
        return -1;
    n->n.kind = N_QUERY;
    n->q = *q;
    n->q.limit = q->limit < 1 ? 1 : q->limit > HISTORY_MAX_LIMIT ? HISTORY_MAX_LIMIT : q->limit;
    /* the targets array first (aligned), then the strings */
    const char **targets = (const char **)(void *)n->data;
    char *p = n->data + nt * sizeof(char *);
    for (size_t i = 0; i < nt; i++)
        targets[i] = copy_in(&p, q->targets[i]);
    n->q.targets = targets;
    n->q.ntargets = nt;
    n->q.target = copy_in(&p, q->target);
    n->q.words = copy_in(&p, q->words);
    pthread_mutex_lock(&h->mu);
    enqueue(h, &n->n, 0);
    h->in_queries++;
    if (!h->waiting)
        pthread_cond_signal(&h->wake); /* it may be gathering: a question is not kept waiting */
    pthread_mutex_unlock(&h->mu);
    if (q->replay)
        h->pending_replays++;
    else
        h->pending++;
    return 0;
}

static void sync_settle(struct history *h, int settle)
{
    struct snode s = {.n.kind = N_SYNC, .settle = settle};
    pthread_mutex_lock(&h->mu);
    enqueue(h, &s.n, 0);
    h->in_queries++;
    pthread_cond_signal(&h->wake);
    while (!s.done)
        pthread_cond_wait(&h->synced, &h->mu);
    /* take it off the answers list */
    struct node **pp = &h->out.head, *prev = NULL;
    while (*pp && *pp != &s.n) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = s.n.next;
        if (h->out.tail == &s.n)
            h->out.tail = prev;
    }
    pthread_mutex_unlock(&h->mu);
}

void history_sync(struct history *h) { sync_settle(h, 0); }
void history_settle(struct history *h) { sync_settle(h, 1); }

int history_private_key(const char *a, const char *b, char out[HISTORY_KEY_MAX])
{
    char la[HISTORY_KEY_MAX / 2], lb[HISTORY_KEY_MAX / 2];
    size_t na = strlen(a), nb = strlen(b);
    if (na >= sizeof la || nb >= sizeof lb)
        return -1;
    for (size_t i = 0; i <= na; i++)
        la[i] = (char)(a[i] >= 'A' && a[i] <= 'Z' ? a[i] + 32 : a[i]);
    for (size_t i = 0; i <= nb; i++)
        lb[i] = (char)(b[i] >= 'A' && b[i] <= 'Z' ? b[i] + 32 : b[i]);
    int lt = strcmp(la, lb) < 0;
    snprintf(out, HISTORY_KEY_MAX, "%s %s", lt ? la : lb, lt ? lb : la);
    return 0;
}

/* ==== Opening and closing ==== */

struct history *history_open(struct loop *l, const struct history_config *cfg, char *err, size_t errlen)
{
    struct history *h = calloc(1, sizeof *h);
    if (!h || !(h->path = strdup(cfg->path))) {
        free(h);
        snprintf(err, errlen, "history: out of memory");
        return NULL;
    }
    h->cfg = *cfg;
    h->cfg.path = h->path;
    h->loop = l;
    h->efd = -1;
    /* A file-size limit (ulimit -f) must fail a write, not kill the server. */
    signal(SIGXFSZ, SIG_IGN);
    if (open_db(h, err, errlen) < 0) {
        history_close(h);
        return NULL;
    }
    sqlite3_progress_handler(h->db, 1000, progress, h);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->wake, NULL);
    pthread_cond_init(&h->synced, NULL);
    h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->efd < 0 || (l && loop_watch(l, h->efd, LOOP_READ, on_answers, h) < 0)) {
        snprintf(err, errlen, "history: eventfd: %s", strerror(errno));
        history_close(h);
        return NULL;
    }
    h->spare = slab_new(SLAB_SIZE);
    h->retention_at = 0; /* a pass at start, over every target */
    h->retention_dirty = 1;
    dict_init(&h->touched, touched_key);
    h->touched_all = 1;
    if (pthread_create(&h->thread, NULL, thread_main, h) != 0) {
        snprintf(err, errlen, "history: cannot start its thread");
        history_close(h);
        return NULL;
    }
    h->started = 1;
    return h;
}

void history_close(struct history *h)
{
    if (!h)
        return;
    if (h->started) {
        pthread_mutex_lock(&h->mu);
        h->stop = 1;
        pthread_cond_signal(&h->wake);
        pthread_mutex_unlock(&h->mu);
        pthread_join(h->thread, NULL);
        struct node *n = h->out.head;
        while (n) {
            struct node *next = n->next;
            if (n->kind == N_QUERY) {
                struct qnode *q = (struct qnode *)n;
                q->r = (struct history_result){.status = HISTORY_ECLOSED};
                q->q.done(q->q.arg, q->q.cookie, &q->r);
                free_query(q);
            }
            n = next;
        }
        free_held(h, 1);
        if (h->failed.total || h->dropped.total)
            log_info("history: %llu messages were not recorded before the end",
                     (unsigned long long)(h->failed.total + h->dropped.total));
    }
    if (h->efd >= 0) {
        if (h->loop)
            loop_unwatch(h->loop, h->efd);
        close(h->efd);
    }
    if (h->started) {
        pthread_mutex_destroy(&h->mu);
        pthread_cond_destroy(&h->wake);
        pthread_cond_destroy(&h->synced);
    }
    free(h->spare);
    for (struct node *n = h->pool.head, *next; n; n = next) {
        next = n->next;
        free(n);
    }
    touched_clear(h);
    dict_free(&h->touched);
    sqlite3_finalize(h->ins);
    sqlite3_finalize(h->gap_ins);
    sqlite3_finalize(h->gap_ix);
    if (h->db)
        sqlite3_close(h->db);
    free(h->path);
    free(h);
}
