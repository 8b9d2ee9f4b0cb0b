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
#include <sched.h>
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

#define QUEUE_MAX_ITEMS 500000          /* messages waiting for the thread: ~0.5 s of scenario 4 */
#define QUEUE_MAX_BYTES (64u << 20)
#define HISTORY_NICE 5                  /* the history thread's nice, relative to the loop */
#define COMMIT_MS 100                   /* at most one commit this often: bigger batches write fewer pages */
#define GATHER_MAX 100000               /* ... unless this many messages wait already */
#define INDEX_CHUNK 2000                /* chunks added to the search index per transaction */
#define INDEX_IDLE_MS 200               /* the index is brought up to date after this long without writes */
#define INDEX_BACKLOG 100000            /* ... or once this many chunks wait (then chunk by chunk): ~4M
                                           messages in scenario 4's rooms of 10, ~20M in one busy room */
#define SEARCH_INDEX_MAX 4000           /* chunks a search indexes before it looks (the newest, under load, wait) */
#define CHUNK_MAX (16 * 1024)           /* bytes of messages packed into one row (more: the next row) */
#define PACK_TARGETS 2048               /* targets one batch packs at once (more: written, and afresh) */
#define RETENTION_BATCH 5000            /* messages deleted per transaction (whole chunks: a few more) */
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
    uint32_t ntext;            /* strlen of each, known when copied in */
    uint16_t ntarget, nfrom, nto;
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
    struct slab *open;         /* being filled, not on the queue yet: handed over whole (handover) */
    size_t seen_items, seen_bytes; /* the queue's size at the last handover (for the bound) */
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
    sqlite3_stmt *ins, *gap_ins, *conv_ins;
    sqlite3_stmt *range_st[2];  /* range_msgs' (oldest first, newest first), prepared once */
    struct packer *pk;         /* the batch's messages, grouped by target into chunks */
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
    /* The search index, built behind the inserts (see "The schema"), up to date
     * for the chunks with id <= fts.upto. */
    struct derived {
        const char *key;       /* in meta */
        const char *fill;      /* the bulk insert of (?1, ?2] */
        uint64_t upto;
        uint64_t behind;       /* chunks written since (about) */
    } fts;
    fts5_tokenizer tok;        /* the search index's tokenizer, to match single messages of a chunk */
    Fts5Tokenizer *tokenizer;
};

const struct history_config *history_config(const struct history *h) { return &h->cfg; }

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

/* Schema version 2. A row of `chunks` holds up to CHUNK_MAX bytes of messages of
 * one target, packed (see "Packing"): what one batch wrote of that target, so a
 * busy server writes one row per room per batch (scenario 4: about 20 messages a
 * row), not one per message, which is what SQLite's cost is counted in. chunks.id
 * is the id of its first message, last_id of its last; the chunks of a target
 * never overlap, since a batch holds messages in the hub's order and the next
 * batch only newer ones. The index on (target, last_id) is kept by the inserts
 * (a few thousand rows a second). Gaps (messages not recorded) are rows of
 * `gaps`, with the id of the first message they stand for.
 *
 * The search index, chunks_fts, is a contentless FTS5 table with a row per
 * chunk (its messages' texts, natter_text(data)), filled in bulk behind the
 * inserts up to meta's fts_upto (index_step); a matching chunk is then unpacked
 * and each message matched on its own with the same tokenizer (search).
 * natter_text is this program's function, so only natterd can delete from
 * chunks (the trigger needs it); reading needs nothing but SQLite. */
#define V2_TABLES                                                                                              \
    "CREATE TABLE chunks("                                                                                     \
    " id INTEGER PRIMARY KEY,"                                                                                 \
    " target TEXT NOT NULL COLLATE NOCASE,"                                                                    \
    " last_id INTEGER NOT NULL,"                                                                               \
    " n INTEGER NOT NULL,"                                                                                     \
    " data BLOB NOT NULL);"                                                                                    \
    "CREATE INDEX chunks_by_target ON chunks(target, last_id);"                                                \
    "CREATE TABLE gaps(target TEXT NOT NULL COLLATE NOCASE, id INTEGER NOT NULL, time_ms INTEGER NOT NULL,"   \
    " lost INTEGER NOT NULL, PRIMARY KEY (target, id)) WITHOUT ROWID;"                                         \
    "CREATE TABLE convs(name TEXT NOT NULL COLLATE NOCASE, target TEXT NOT NULL COLLATE NOCASE,"             \
    " PRIMARY KEY (name, target)) WITHOUT ROWID;"                                                              \
    "CREATE VIRTUAL TABLE chunks_fts USING fts5(text, content='');"                                           \
    "CREATE TRIGGER chunks_ad AFTER DELETE ON chunks"                                                          \
    " WHEN old.id <= (SELECT value FROM meta WHERE key = 'fts_upto') BEGIN"                                    \
    " INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, natter_text(old.data)); END;"
/* A new database gets the newest schema at once. */
static const char schema_new[] = "CREATE TABLE meta(key TEXT PRIMARY KEY, value);"
                                 "INSERT INTO meta(key, value) VALUES ('fts_upto', 0);" V2_TABLES;
static const char *const migrations[] = {
    /* 0 -> 1: one row per message (natterd before schema 2) */
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
    /* 1 -> 2: packed rows (move_to_chunks moves the messages, then migrations_after) */
    V2_TABLES
    "INSERT INTO gaps(target, id, time_ms, lost) SELECT target, id, time_ms, lost FROM messages WHERE kind = 4;"
    "INSERT OR IGNORE INTO convs(name, target) SELECT substr(target, 1, instr(target, ' ') - 1), target"
    " FROM (SELECT DISTINCT target FROM messages WHERE kind = 3);"
    "INSERT OR IGNORE INTO convs(name, target) SELECT substr(target, instr(target, ' ') + 1), target"
    " FROM (SELECT DISTINCT target FROM messages WHERE kind = 3);",
};
#define NMIGRATIONS (sizeof migrations / sizeof migrations[0])
static const char *const migrations_after[NMIGRATIONS] = {
    NULL,
    "DROP TRIGGER messages_ad; DROP TABLE messages_fts; DROP TABLE by_target; DROP TABLE messages;"
    "UPDATE meta SET value = 0 WHERE key = 'fts_upto'; DELETE FROM meta WHERE key = 'target_upto';",
};

/* ==== Packing: a chunk's messages ====
 *
 * Each message: its kind (1 byte); then, as varints (7 bits a byte, the low
 * bits first, the top bit set on all but the last byte), its id minus the
 * previous message's (the first: minus 0), its time_ms minus the previous
 * one's (zigzag: 0, -1, 1, -2, ... as 0, 1, 2, 3, ...), and the lengths of
 * sender, recipient and text; then those three strings, without NULs. About 9
 * bytes a message besides the strings, where a row of their own cost SQLite
 * about 30. (tests/e2e/test_history.py reads it too.) */
#define REC_HEAD_MAX (1 + 10 + 10 + 3 * 5)

static unsigned char *put_varint(unsigned char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

/* 0, or -1 past the end or on a varint too long. */
static int get_varint(const unsigned char *data, size_t len, size_t *off, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *off < len; shift += 7) {
        unsigned char c = data[(*off)++];
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return 0;
    }
    return -1;
}

static size_t rec_size(size_t from, size_t to, size_t text) { return REC_HEAD_MAX + from + to + text; }

/* Write one record at p (rec_size bytes at most), after a message (prev_id,
 * prev_time; 0, 0 for a chunk's first). Returns the bytes written. */
static size_t rec_put(unsigned char *p, uint64_t prev_id, int64_t prev_time, uint64_t id, int64_t time_ms, int kind,
                      const char *from, size_t nf, const char *to, size_t nt, const char *text, size_t nx)
{
    unsigned char *q = p;
    int64_t dt = time_ms - prev_time;
    *q++ = (unsigned char)kind;
    q = put_varint(q, id - prev_id);
    q = put_varint(q, dt < 0 ? ((uint64_t)(-(dt + 1)) << 1) | 1 : (uint64_t)dt << 1);
    q = put_varint(q, nf);
    q = put_varint(q, nt);
    q = put_varint(q, nx);
    memcpy(q, from, nf);
    memcpy(q + nf, to, nt);
    memcpy(q + nf + nt, text, nx);
    return (size_t)(q - p) + nf + nt + nx;
}

struct rec {
    uint64_t id;      /* (on entry to rec_next: the previous message's; {0} before the first) */
    int64_t time_ms;
    int kind;
    const char *from, *to, *text; /* not NUL-terminated */
    size_t nf, nt, nx;
};

/* The record at *off in data (of len bytes), after the one r holds, moving *off
 * past it. 0, or -1 at the end or on a damaged chunk (which ends the walk). */
static int rec_next(const unsigned char *data, size_t len, size_t *off, struct rec *r)
{
    uint64_t did, dt, nf, nt, nx;
    if (*off >= len)
        return -1;
    int kind = data[(*off)++];
    if (get_varint(data, len, off, &did) < 0 || get_varint(data, len, off, &dt) < 0 ||
        get_varint(data, len, off, &nf) < 0 || get_varint(data, len, off, &nt) < 0 ||
        get_varint(data, len, off, &nx) < 0 || nf > len || nt > len || nx > len || nf + nt + nx > len - *off)
        return -1;
    r->id += did;
    r->time_ms += dt & 1 ? -(int64_t)(dt >> 1) - 1 : (int64_t)(dt >> 1);
    r->kind = kind;
    r->nf = nf;
    r->nt = nt;
    r->nx = nx;
    r->from = (const char *)data + *off;
    r->to = r->from + nf;
    r->text = r->to + nt;
    *off += nf + nt + nx;
    return 0;
}

/* natter_text(data): a chunk's texts, a line each: what the search index holds. */
static void sql_natter_text(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const unsigned char *data = sqlite3_value_blob(argv[0]);
    size_t len = (size_t)sqlite3_value_bytes(argv[0]), off = 0, n = 0;
    char *out = sqlite3_malloc64(len + 1);
    if (!out) {
        sqlite3_result_error_nomem(cx);
        return;
    }
    struct rec r = {0};
    while (data && rec_next(data, len, &off, &r) == 0) {
        if (n)
            out[n++] = '\n';
        memcpy(out + n, r.text, r.nx);
        n += r.nx;
    }
    sqlite3_result_text(cx, out, (int)n, sqlite3_free);
}

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

/* A chunk: the messages of one target, ids first..last. */
static int insert_chunk(sqlite3_stmt *st, const char *target, uint64_t first, uint64_t last, unsigned n,
                        const void *data, size_t len)
{
    sqlite3_bind_int64(st, 1, (sqlite3_int64)first);
    sqlite3_bind_text(st, 2, target, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)last);
    sqlite3_bind_int(st, 4, (int)n);
    sqlite3_bind_blob64(st, 5, data, len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}
#define INSERT_CHUNK "INSERT INTO chunks(id, target, last_id, n, data) VALUES (?1, ?2, ?3, ?4, ?5)"

/* Schema 1 -> 2: the rows of messages packed into chunks, target by target. */
static int move_to_chunks(struct history *h)
{
    sqlite3_stmt *rd = NULL, *wr = NULL;
    int rc = sqlite3_prepare_v2(h->db, "SELECT id, target, time_ms, kind, sender, recipient, text FROM messages "
                                "WHERE kind != 4 ORDER BY target, id", -1, &rd, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(h->db, INSERT_CHUNK, -1, &wr, NULL);
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    unsigned n = 0;
    uint64_t first = 0, last = 0, last_put = 0;
    int64_t time_put = 0;
    char target[HISTORY_KEY_MAX] = "";
    while (rc == SQLITE_OK) {
        int step = sqlite3_step(rd);
        if (step != SQLITE_ROW && step != SQLITE_DONE) {
            rc = step;
            break;
        }
        const char *t = step == SQLITE_ROW ? (const char *)sqlite3_column_text(rd, 1) : NULL;
        const char *f = NULL, *to = NULL, *x = NULL;
        size_t nf = 0, nt = 0, nx = 0, size = 0;
        if (t) {
            f = (const char *)sqlite3_column_text(rd, 4), nf = (size_t)sqlite3_column_bytes(rd, 4);
            to = (const char *)sqlite3_column_text(rd, 5), nt = (size_t)sqlite3_column_bytes(rd, 5);
            x = (const char *)sqlite3_column_text(rd, 6), nx = (size_t)sqlite3_column_bytes(rd, 6);
            nf = nf > 0xffff ? 0xffff : nf;
            nt = nt > 0xffff ? 0xffff : nt;
            size = rec_size(nf, nt, nx);
        }
        if (n && (!t || strcasecmp(t, target) != 0 || len + size > CHUNK_MAX)) {
            if ((rc = insert_chunk(wr, target, first, last, n, buf, len)) != SQLITE_OK)
                break;
            n = 0;
            len = 0;
        }
        if (!t)
            break;
        if (len + size > cap) {
            size_t c = cap ? cap : CHUNK_MAX;
            while (c < len + size)
                c *= 2;
            unsigned char *p = realloc(buf, c);
            if (!p) {
                rc = SQLITE_NOMEM;
                break;
            }
            buf = p;
            cap = c;
        }
        uint64_t id = (uint64_t)sqlite3_column_int64(rd, 0);
        if (!n) {
            snprintf(target, sizeof target, "%s", t);
            first = id;
        }
        last = id;
        int64_t t_ms = sqlite3_column_int64(rd, 2);
        len += rec_put(buf + len, n ? last_put : 0, n ? time_put : 0, id, t_ms, sqlite3_column_int(rd, 3), f, nf, to,
                       nt, x, nx);
        last_put = id;
        time_put = t_ms;
        n++;
    }
    free(buf);
    sqlite3_finalize(rd);
    sqlite3_finalize(wr);
    return rc;
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
    int fresh = v == 0;
    if (fresh) {
        char set[64];
        snprintf(set, sizeof set, "PRAGMA user_version = %d", (int)NMIGRATIONS);
        if ((rc = exec(h->db, "BEGIN IMMEDIATE")) != SQLITE_OK || (rc = exec(h->db, schema_new)) != SQLITE_OK ||
            (rc = exec(h->db, set)) != SQLITE_OK || (rc = exec(h->db, "COMMIT")) != SQLITE_OK) {
            open_error(h, rc, "creating the tables", err, errlen);
            exec(h->db, "ROLLBACK");
            return -1;
        }
        v = (int)NMIGRATIONS;
    }
    for (; v < (int)NMIGRATIONS; v++) {
        char set[64];
        snprintf(set, sizeof set, "PRAGMA user_version = %d", v + 1);
        if ((rc = exec(h->db, "BEGIN IMMEDIATE")) != SQLITE_OK ||
            (rc = exec(h->db, migrations[v])) != SQLITE_OK || (v == 1 && (rc = move_to_chunks(h)) != SQLITE_OK) ||
            (migrations_after[v] && (rc = exec(h->db, migrations_after[v])) != SQLITE_OK) ||
            (rc = exec(h->db, set)) != SQLITE_OK || (rc = exec(h->db, "COMMIT")) != SQLITE_OK) {
            open_error(h, rc, "upgrading the schema", err, errlen);
            exec(h->db, "ROLLBACK");
            return -1;
        }
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

/* FTS5's unicode61 tokenizer, as chunks_fts uses it (its defaults), to match
 * the messages of a chunk one by one the way the index matches the chunk. */
static int open_tokenizer(struct history *h)
{
    fts5_api *api = NULL;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(h->db, "SELECT fts5(?1)", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
    sqlite3_step(st);
    sqlite3_finalize(st);
    void *ud = NULL;
    if (!api || api->xFindTokenizer(api, "unicode61", &ud, &h->tok) != SQLITE_OK)
        return SQLITE_ERROR;
    return h->tok.xCreate(ud, NULL, 0, &h->tokenizer);
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
        /* Pages of 16 KiB (a new file; an old one keeps its own): the WAL and its
         * checkpoints copy the same bytes in a quarter of the system calls. */
        exec(h->db, "PRAGMA page_size = 16384");
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
        exec(h->db, "PRAGMA wal_autocheckpoint = 4000"); /* 64 MB of WAL between checkpoints */
    }
    exec(h->db, "PRAGMA cache_size = -16384"); /* 16 MB: the index pages of busy rooms stay cached */
    exec(h->db, "PRAGMA temp_store = MEMORY");
    rc = sqlite3_create_function(h->db, "natter_text", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, sql_natter_text,
                                 NULL, NULL);
    if (rc != SQLITE_OK) {
        open_error(h, rc, "registering its functions", err, errlen);
        return -1;
    }
    if (migrate(h, err, errlen) < 0)
        return -1;
    h->fts = (struct derived){.key = "fts_upto", .fill = "INSERT INTO chunks_fts(rowid, text) "
                              "SELECT id, natter_text(data) FROM chunks WHERE id > ?1 AND id <= ?2"};
    reread_upto(h);
    h->fts.behind = 1; /* look once: the last run may have stopped behind */
    rc = sqlite3_prepare_v2(h->db, INSERT_CHUNK, -1, &h->ins, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(h->db, "INSERT OR IGNORE INTO gaps(target, id, time_ms, lost) VALUES (?1, ?2, ?3, ?4)",
                                -1, &h->gap_ins, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(h->db, "INSERT OR IGNORE INTO convs(name, target) VALUES (?1, ?2)", -1, &h->conv_ins,
                                NULL);
    if (rc != SQLITE_OK) {
        open_error(h, rc, "preparing statements", err, errlen);
        return -1;
    }
    if (open_tokenizer(h) != SQLITE_OK) {
        snprintf(err, errlen, "history: SQLite has no FTS5 unicode61 tokenizer");
        return -1;
    }
    sqlite3_busy_timeout(h->db, 5000); /* from now on the thread waits, not the loop */
    return 0;
}

static void reread_upto(struct history *h)
{
    sqlite3_stmt *up;
    if (sqlite3_prepare_v2(h->db, "SELECT value FROM meta WHERE key = ?1", -1, &up, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(up, 1, h->fts.key, -1, SQLITE_STATIC);
    if (sqlite3_step(up) == SQLITE_ROW)
        h->fts.upto = (uint64_t)sqlite3_column_int64(up, 0);
    sqlite3_finalize(up);
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

static void touch(struct history *h, const char *target);
static int index_rows(struct history *h, struct derived *d, int limit, uint64_t *end);

/* The batch's messages, grouped by target (without ASCII case, as the hub
 * compares rooms): one buffer per target, written as a chunk when it is full,
 * before a query, and at the end of the batch. The buffers are kept from batch
 * to batch. */
struct pbuf {
    char target[HISTORY_KEY_MAX];
    size_t ntarget;
    uint32_t hash;
    uint64_t first, last;
    int64_t last_time;
    unsigned n;
    unsigned char *data;
    size_t len, cap;                /* cap grows up to CHUNK_MAX */
};

struct packer {
    struct pbuf *b[PACK_TARGETS];
    size_t nb, nalloc;              /* in use; allocated (b[nb..nalloc) are spare) */
    size_t nalloc_data;             /* b[0..nalloc_data) have had their data set up */
    uint16_t slot[2 * PACK_TARGETS]; /* index + 1 into b by the target's hash; 0: free */
    unsigned chunks;                /* written since the last look (for fts.behind) */
    struct pbuf *last;              /* the one the last message went to */
};

/* A private conversation's key ("alice bob") under each of its two names, for
 * CHATHISTORY TARGETS (rooms are known to the hub, conversations only here). */
static int note_conversation(struct history *h, const char *key)
{
    const char *sp = strchr(key, ' ');
    if (!sp || key[0] == '#')
        return SQLITE_OK;
    char names[2][HISTORY_KEY_MAX];
    snprintf(names[0], sizeof names[0], "%.*s", (int)(sp - key), key);
    snprintf(names[1], sizeof names[1], "%s", sp + 1);
    int rc = SQLITE_OK;
    for (int i = 0; i < 2 && rc == SQLITE_OK; i++) {
        sqlite3_bind_text(h->conv_ins, 1, names[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(h->conv_ins, 2, key, -1, SQLITE_STATIC);
        rc = sqlite3_step(h->conv_ins) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(h->db);
        sqlite3_reset(h->conv_ins);
    }
    return rc;
}

static int pack_write(struct history *h, struct pbuf *b)
{
    int rc = insert_chunk(h->ins, b->target, b->first, b->last, b->n, b->data, b->len);
    if (rc == SQLITE_OK)
        rc = note_conversation(h, b->target);
    if (rc == SQLITE_OK) {
        h->pk->chunks++;
        if (h->cfg.max_per_room > 0)
            touch(h, b->target);
    }
    b->n = 0;
    b->len = 0;
    return rc;
}

/* Write every buffer (in the order the targets first came: by their first id)
 * and start afresh. */
static int pack_flush(struct history *h)
{
    struct packer *pk = h->pk;
    int rc = SQLITE_OK;
    for (size_t i = 0; i < pk->nb; i++)
        if (pk->b[i]->n && rc == SQLITE_OK)
            rc = pack_write(h, pk->b[i]);
    pk->nb = 0;
    pk->last = NULL;
    memset(pk->slot, 0, sizeof pk->slot);
    return rc;
}

/* Forget what is buffered (the transaction failed: the slabs still hold it). */
static void pack_drop(struct history *h)
{
    struct packer *pk = h->pk;
    for (size_t i = 0; i < pk->nb; i++)
        pk->b[i]->n = 0, pk->b[i]->len = 0;
    pk->nb = 0;
    pk->last = NULL;
    memset(pk->slot, 0, sizeof pk->slot);
}

/* FNV-1a over the target folded to lower case (ASCII, as the hub compares). */
static uint32_t fold_hash(const char *s, size_t n)
{
    uint32_t x = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        x = (x ^ (c >= 'A' && c <= 'Z' ? c + 32u : c)) * 16777619u;
    }
    return x;
}

/* (the same spelling, nearly always; else the same without ASCII case) */
static int same_target(const struct pbuf *b, const struct mnode *m)
{
    return b->ntarget == m->ntarget &&
           (memcmp(b->target, m->target, m->ntarget) == 0 || strcasecmp(b->target, m->target) == 0);
}

static int pack_add(struct history *h, const struct mnode *m)
{
    struct packer *pk = h->pk;
    size_t nf = m->nfrom, nt = m->nto, nx = m->ntext;
    size_t size = rec_size(nf, nt, nx);
    if (size > CHUNK_MAX) { /* a long line: a chunk of its own */
        unsigned char *one = malloc(size);
        if (!one)
            return SQLITE_NOMEM;
        size = rec_put(one, 0, 0, m->id, m->time_ms, (int)m->kind, m->from, nf, m->to, nt, m->text, nx);
        int rc = insert_chunk(h->ins, m->target, m->id, m->id, 1, one, size);
        free(one);
        if (rc == SQLITE_OK)
            rc = note_conversation(h, m->target);
        if (rc == SQLITE_OK)
            pk->chunks++;
        return rc;
    }
    uint32_t hash = fold_hash(m->target, m->ntarget);
    size_t mask = 2 * PACK_TARGETS - 1, i = hash & mask;
    struct pbuf *b = pk->last; /* (a busy room says several in a row) */
    if (!b || b->hash != hash || !same_target(b, m)) {
        b = NULL;
        for (; pk->slot[i]; i = (i + 1) & mask) {
            struct pbuf *c = pk->b[pk->slot[i] - 1];
            if (c->hash == hash && same_target(c, m)) {
                b = c;
                break;
            }
        }
    }
    int rc = SQLITE_OK;
    if (!b) {
        if (pk->nb == PACK_TARGETS) { /* too many targets in one batch: write them all */
            if ((rc = pack_flush(h)) != SQLITE_OK)
                return rc;
            return pack_add(h, m);
        }
        if (pk->nb == pk->nalloc) {
            if (!(pk->b[pk->nalloc] = malloc(sizeof(struct pbuf))))
                return SQLITE_NOMEM;
            pk->nalloc++;
        }
        b = pk->b[pk->nb++];
        pk->slot[i] = (uint16_t)pk->nb;
        if (pk->nb > pk->nalloc_data) { /* (a fresh one) */
            b->data = NULL;
            b->cap = 0;
            pk->nalloc_data = pk->nb;
        }
        memcpy(b->target, m->target, m->ntarget + 1u);
        b->ntarget = m->ntarget;
        b->hash = hash;
        b->n = 0;
        b->len = 0;
    } else if (b->len + size > CHUNK_MAX) {
        if ((rc = pack_write(h, b)) != SQLITE_OK)
            return rc;
    }
    pk->last = b;
    if (b->len + size > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (cap < b->len + size)
            cap *= 2;
        unsigned char *p = realloc(b->data, cap);
        if (!p)
            return SQLITE_NOMEM;
        b->data = p;
        b->cap = cap;
    }
    if (!b->n)
        b->first = m->id;
    b->len += rec_put(b->data + b->len, b->n ? b->last : 0, b->n ? b->last_time : 0, m->id, m->time_ms,
                      (int)m->kind, m->from, nf, m->to, nt, m->text, nx);
    b->last = m->id;
    b->last_time = m->time_ms;
    b->n++;
    return SQLITE_OK;
}

static int insert_gaps(struct history *h, const struct gaps *gs)
{
    for (size_t i = 0; i < gs->n; i++) {
        sqlite3_stmt *st = h->gap_ins;
        sqlite3_bind_text(st, 1, gs->g[i].target, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)gs->g[i].first_id);
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
    h->pk->chunks = 0;
    if (trying)
        for (struct node *n = h->held.head; n && rc == SQLITE_OK; n = n->next)
            FOR_RECORDS((struct slab *)n, m) {
                if (rc == SQLITE_OK)
                    rc = pack_add(h, m);
                written++;
            }
    for (struct node *n = batch; n; n = n->next) {
        if (n->kind == N_SLAB) {
            FOR_RECORDS((struct slab *)n, m) {
                if (trying && rc == SQLITE_OK)
                    rc = pack_add(h, m);
                written++;
            }
            continue;
        }
        /* A question sees every message queued before it: those buffered are written first. */
        if (trying && rc == SQLITE_OK)
            rc = pack_flush(h);
        if (n->kind == N_QUERY) {
            answer(h, (struct qnode *)n);
        } else if (((struct snode *)n)->settle && trying && rc == SQLITE_OK) {
            uint64_t end;
            if ((rc = index_rows(h, &h->fts, 1 << 30, &end)) == SQLITE_OK) {
                h->fts.upto = end;
                h->fts.behind = 0;
                h->pk->chunks = 0;
            }
        }
    }
    if (trying && rc == SQLITE_OK)
        rc = pack_flush(h);
    if (trying && rc == SQLITE_OK)
        rc = exec(h->db, "COMMIT");
    pack_drop(h);
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
        h->fts.behind += h->pk->chunks;
        if (written)
            h->last_write = now_mono();
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

/* Fill index d with up to `limit` chunks after its upto, inside the caller's
 * transaction; *end is its new upto. In bulk an index costs a fraction of what it
 * does row by row, and its work can wait for a quiet moment (PERFORMANCE.md). */
static int index_rows(struct history *h, struct derived *d, int limit, uint64_t *end)
{
    sqlite3_stmt *st = NULL;
    *end = d->upto;
    int rc = sqlite3_prepare_v2(h->db, "SELECT max(id) FROM (SELECT id FROM chunks WHERE id > ?1 ORDER BY id LIMIT ?2)",
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

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Chunk id without its messages before keep_from (an id) and its first `skip`:
 * deleted, and written again with what is left (a new id: its first message's),
 * which goes into the search index at once if the old one was in it. */
static int chunk_cut(struct history *h, uint64_t id, uint64_t keep_from, unsigned skip)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(h->db, "SELECT target, data FROM chunks WHERE id = ?1", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    char target[HISTORY_KEY_MAX];
    snprintf(target, sizeof target, "%s", (const char *)sqlite3_column_text(st, 0));
    const unsigned char *old = sqlite3_column_blob(st, 1);
    size_t len = (size_t)sqlite3_column_bytes(st, 1), off = 0, kept = 0;
    unsigned char *data = malloc(len + REC_HEAD_MAX); /* (re-packed: the first id in full now) */
    if (!data) {
        sqlite3_finalize(st);
        return SQLITE_NOMEM;
    }
    struct rec r = {0};
    unsigned i = 0, n = 0;
    uint64_t first = 0, last = 0;
    int64_t last_time = 0;
    for (; rec_next(old, len, &off, &r) == 0; i++) {
        if (i < skip || r.id < keep_from)
            continue;
        if (!n++)
            first = r.id;
        kept += rec_put(data + kept, n > 1 ? last : 0, n > 1 ? last_time : 0, r.id, r.time_ms, r.kind, r.from, r.nf,
                        r.to, r.nt, r.text, r.nx);
        last = r.id;
        last_time = r.time_ms;
    }
    sqlite3_finalize(st);
    sqlite3_stmt *del;
    if ((rc = sqlite3_prepare_v2(h->db, "DELETE FROM chunks WHERE id = ?1", -1, &del, NULL)) == SQLITE_OK) {
        sqlite3_bind_int64(del, 1, (sqlite3_int64)id);
        rc = step_done(del);
        sqlite3_finalize(del);
    }
    if (rc == SQLITE_OK && n)
        rc = insert_chunk(h->ins, target, first, last, n, data, kept);
    if (rc == SQLITE_OK && n && id <= h->fts.upto) {
        sqlite3_stmt *ix;
        if ((rc = sqlite3_prepare_v2(h->db, "INSERT INTO chunks_fts(rowid, text) SELECT id, natter_text(data) "
                                     "FROM chunks WHERE id = ?1", -1, &ix, NULL)) == SQLITE_OK) {
            sqlite3_bind_int64(ix, 1, (sqlite3_int64)first);
            rc = step_done(ix);
            sqlite3_finalize(ix);
        }
    }
    free(data);
    return rc;
}

/* Delete what is beyond max_per_room in one target, about *budget messages:
 * the oldest chunks whole, and the oldest messages of the one that straddles
 * the line; then the gap rows older than what is left. */
static int trim_one(struct history *h, const char *target, int *budget)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(h->db, "SELECT id, n FROM chunks WHERE target = ?1 ORDER BY last_id DESC", -1, &st,
                                NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
    long long seen = 0;
    uint64_t cut = 0;  /* the chunk that straddles the limit */
    long long cut_skip = 0;
    int over = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        long long n = sqlite3_column_int64(st, 1);
        if (seen + n > h->cfg.max_per_room) {
            cut = (uint64_t)sqlite3_column_int64(st, 0);
            cut_skip = seen + n - h->cfg.max_per_room;
            over = 1;
            break;
        }
        seen += n;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return rc;
    if (!over)
        return SQLITE_OK;
    /* Everything older than the straddling chunk goes, a budget at a time. */
    sqlite3_stmt *old;
    rc = sqlite3_prepare_v2(h->db, "SELECT id, n FROM chunks WHERE target = ?1 AND last_id < "
                            "(SELECT last_id FROM chunks WHERE id = ?2) ORDER BY last_id LIMIT 64", -1, &old, NULL);
    if (rc != SQLITE_OK)
        return rc;
    uint64_t ids[64];
    int nids = 0, whole = 0;
    sqlite3_bind_text(old, 1, target, -1, SQLITE_STATIC);
    sqlite3_bind_int64(old, 2, (sqlite3_int64)cut);
    while (nids < 64 && *budget > 0 && sqlite3_step(old) == SQLITE_ROW) {
        ids[nids++] = (uint64_t)sqlite3_column_int64(old, 0);
        *budget -= (int)sqlite3_column_int64(old, 1);
    }
    if (nids == 64 || *budget <= 0)
        whole = 1; /* more may be left: the straddling one waits for the next pass */
    sqlite3_finalize(old);
    for (int i = 0; i < nids && rc == SQLITE_OK; i++)
        rc = chunk_cut(h, ids[i], UINT64_MAX, 0);
    if (rc == SQLITE_OK && !whole) {
        rc = chunk_cut(h, cut, 0, (unsigned)cut_skip);
        *budget -= (int)cut_skip;
        if (rc == SQLITE_OK && (rc = sqlite3_prepare_v2(h->db, "DELETE FROM gaps WHERE target = ?1 AND id < "
                                                        "(SELECT min(id) FROM chunks WHERE target = ?1)", -1, &st,
                                                        NULL)) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
            rc = step_done(st);
            sqlite3_finalize(st);
        }
    }
    if (rc == SQLITE_OK && whole && *budget > 0)
        *budget = 0; /* come back for the rest */
    return rc;
}

/* The per-target limit over the targets written since the last pass (or all of
 * them, the first time). *more is set when the budget ran out. */
static int trim_targets(struct history *h, int *more)
{
    int budget = RETENTION_BATCH, rc = SQLITE_OK;
    if (h->touched_all) {
        sqlite3_stmt *st;
        if ((rc = sqlite3_prepare_v2(h->db, "SELECT DISTINCT target FROM chunks", -1, &st, NULL)) != SQLITE_OK)
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
        uint64_t cutoff = (uint64_t)(now_real() - h->cfg.days * 86400000LL) << 16;
        /* The chunks that start before the cutoff: deleted, or cut if they end after it. */
        rc = sqlite3_prepare_v2(h->db, "SELECT id, last_id, n FROM chunks WHERE id < ?1 ORDER BY id LIMIT 64", -1,
                                &st, NULL);
        uint64_t ids[64], lasts[64];
        int nids = 0, budget = RETENTION_BATCH;
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)cutoff);
            while (nids < 64 && budget > 0 && sqlite3_step(st) == SQLITE_ROW) {
                ids[nids] = (uint64_t)sqlite3_column_int64(st, 0);
                lasts[nids++] = (uint64_t)sqlite3_column_int64(st, 1);
                budget -= sqlite3_column_int(st, 2);
            }
            more = nids == 64 || budget <= 0;
        }
        sqlite3_finalize(st);
        st = NULL;
        for (int i = 0; i < nids && rc == SQLITE_OK; i++)
            rc = chunk_cut(h, ids[i], lasts[i] < cutoff ? UINT64_MAX : cutoff, 0);
        if (rc == SQLITE_OK && (rc = sqlite3_prepare_v2(h->db, "DELETE FROM gaps WHERE id < ?1", -1, &st, NULL)) ==
                                   SQLITE_OK) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)cutoff);
            rc = step_done(st);
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

static struct history_entry *collect_one(struct collect *c)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct history_entry *p = realloc(c->e, cap * sizeof *p);
        if (!p)
            return NULL;
        c->e = p;
        c->cap = cap;
    }
    return &c->e[c->n];
}

/* Keep a string of n bytes (not NUL-terminated). Strings are kept as offsets
 * into blob while it grows, turned into pointers at the end. */
static size_t keep_strn(struct collect *c, const char *s, size_t len)
{
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

static size_t keep_str(struct collect *c, const unsigned char *s)
{
    return keep_strn(c, (const char *)s, s ? strlen((const char *)s) : 0);
}

/* Append a message of a chunk (its target kept at target_off in blob). */
static int collect_rec(struct collect *c, const struct rec *r, size_t target_off)
{
    struct history_entry *e = collect_one(c);
    size_t of, ot, ox;
    if (!e || (of = keep_strn(c, r->from, r->nf)) == (size_t)-1 || (ot = keep_strn(c, r->to, r->nt)) == (size_t)-1 ||
        (ox = keep_strn(c, r->text, r->nx)) == (size_t)-1)
        return SQLITE_NOMEM;
    e->id = r->id;
    e->time_ms = r->time_ms;
    e->kind = (enum history_kind)r->kind;
    e->target = (const char *)target_off;
    e->from = (const char *)of;
    e->to = (const char *)ot;
    e->text = (const char *)ox;
    e->lost = 0;
    c->n++;
    return SQLITE_OK;
}

/* Append the gap rows of st (id, time_ms, target, lost). */
static int collect_gaps(struct collect *c, sqlite3_stmt *st)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct history_entry *e = collect_one(c);
        size_t ot, oe;
        if (!e || (ot = keep_str(c, sqlite3_column_text(st, 2))) == (size_t)-1 ||
            (oe = keep_strn(c, "", 0)) == (size_t)-1)
            return SQLITE_NOMEM;
        e->id = (uint64_t)sqlite3_column_int64(st, 0);
        e->time_ms = sqlite3_column_int64(st, 1);
        e->kind = HK_GAP;
        e->target = (const char *)ot;
        e->from = e->to = e->text = (const char *)oe;
        e->lost = (uint64_t)sqlite3_column_int64(st, 3);
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

static int by_id(const void *a, const void *b)
{
    uint64_t x = ((const struct history_entry *)a)->id, y = ((const struct history_entry *)b)->id;
    return x < y ? -1 : x > y;
}

/* The messages of target with lo < id < hi, walked chunk by chunk from the
 * oldest (or the newest) end, `limit` of them, appended in walking order. */
static int range_msgs(struct history *h, struct collect *c, const char *target, uint64_t lo, uint64_t hi,
                      unsigned limit, int newest)
{
    static const char *const sql[2] = {
        "SELECT target, data FROM chunks WHERE target = ?1 AND last_id > ?2 AND id < ?3 ORDER BY last_id",
        "SELECT target, data FROM chunks WHERE target = ?1 AND last_id > ?2 AND id < ?3 ORDER BY last_id DESC",
    };
    int rc = SQLITE_OK;
    if (!h->range_st[newest])
        rc = sqlite3_prepare_v3(h->db, sql[newest], -1, SQLITE_PREPARE_PERSISTENT, &h->range_st[newest], NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_stmt *st = h->range_st[newest];
    sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)lo);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)hi);
    unsigned got = 0;
    while (got < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t toff = keep_str(c, sqlite3_column_text(st, 0));
        const unsigned char *data = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1), off = 0, first = c->n;
        struct rec r = {0};
        if (toff == (size_t)-1) {
            rc = SQLITE_NOMEM;
            break;
        }
        while (rc == SQLITE_ROW && rec_next(data, len, &off, &r) == 0)
            if (r.id > lo && r.id < hi && collect_rec(c, &r, toff) != SQLITE_OK)
                rc = SQLITE_NOMEM;
        if (rc != SQLITE_ROW)
            break;
        size_t n = c->n - first;
        if (newest) { /* this chunk's newest first, and only as many as wanted */
            reverse(c->e, first, c->n);
        }
        if (got + n > limit)
            c->n = first + (limit - got);
        got += (unsigned)(c->n - first);
    }
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        rc = SQLITE_OK;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

/* Entries of target with lo < id < hi: `limit` of them, the oldest or the
 * newest, messages and gap rows together, appended oldest first. */
static int range(struct history *h, struct collect *c, const char *target, uint64_t lo, uint64_t hi,
                 unsigned limit, int newest)
{
    const uint64_t max = UINT64_MAX >> 1;
    hi = hi > max ? max : hi;
    lo = lo > max ? max : lo;
    if (limit == 0 || lo + 1 >= hi)
        return SQLITE_OK;
    size_t from = c->n;
    int rc = range_msgs(h, c, target, lo, hi, limit, newest);
    if (rc != SQLITE_OK)
        return rc;
    static const char *const sql[2] = {
        "SELECT id, time_ms, target, lost FROM gaps WHERE target = ?1 AND id > ?2 AND id < ?3 ORDER BY id LIMIT ?4",
        "SELECT id, time_ms, target, lost FROM gaps WHERE target = ?1 AND id > ?2 AND id < ?3 ORDER BY id DESC "
        "LIMIT ?4",
    };
    sqlite3_stmt *st;
    if ((rc = sqlite3_prepare_v3(h->db, sql[newest], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL)) != SQLITE_OK)
        return rc;
    sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)lo);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)hi);
    sqlite3_bind_int(st, 4, (int)limit);
    rc = collect_gaps(c, st);
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return rc;
    /* Both in id order, then the `limit` wanted from the right end. */
    if (c->n > from) /* (c->e is NULL while empty) */
        qsort(c->e + from, c->n - from, sizeof *c->e, by_id);
    if (c->n - from > limit) {
        if (newest)
            memmove(c->e + from, c->e + c->n - limit, limit * sizeof *c->e);
        c->n = from + limit;
    }
    return SQLITE_OK;
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

/* Tokens, as FTS5's tokenizer gives them: offsets into one buffer. */
#define TOKENS_MAX 4096
struct tokens {
    char buf[8192];
    size_t used;
    uint32_t off[TOKENS_MAX];
    uint16_t len[TOKENS_MAX];
    unsigned n;
};

static int token_cb(void *ctx, int flags, const char *tok, int n, int start, int end)
{
    (void)start, (void)end;
    struct tokens *t = ctx;
    if (flags & FTS5_TOKEN_COLOCATED)
        return SQLITE_OK;
    if (t->n == TOKENS_MAX || t->used + (size_t)n > sizeof t->buf || n > 0xffff)
        return SQLITE_DONE; /* (enough: the rest is not looked at) */
    memcpy(t->buf + t->used, tok, (size_t)n);
    t->off[t->n] = (uint32_t)t->used;
    t->len[t->n++] = (uint16_t)n;
    t->used += (size_t)n;
    return SQLITE_OK;
}

static void tokenize(struct history *h, int flags, const char *s, size_t n, struct tokens *t)
{
    t->n = 0;
    t->used = 0;
    h->tok.xTokenize(h->tokenizer, t, flags, s, (int)n, token_cb);
}

static int token_eq(const struct tokens *a, unsigned i, const struct tokens *b, unsigned j)
{
    return a->len[i] == b->len[j] && memcmp(a->buf + a->off[i], b->buf + b->off[j], a->len[i]) == 0;
}

/* The query: each word a phrase of tokens (as FTS5 reads a quoted string). */
struct phrases {
    struct tokens t;
    unsigned start[HISTORY_MAX_WORDS + 1]; /* phrase k is tokens start[k]..start[k+1) */
    unsigned n;
};

static void phrases_of(struct history *h, const char *words, struct phrases *ph)
{
    struct tokens one;
    ph->n = 0;
    ph->t.n = 0;
    ph->t.used = 0;
    const char *p = words;
    while (*p && ph->n < HISTORY_MAX_WORDS) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *w = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (p == w)
            break;
        tokenize(h, FTS5_TOKENIZE_QUERY, w, (size_t)(p - w), &one);
        if (!one.n)
            continue;
        ph->start[ph->n++] = ph->t.n;
        for (unsigned i = 0; i < one.n && ph->t.n < TOKENS_MAX && ph->t.used + one.len[i] <= sizeof ph->t.buf; i++) {
            memcpy(ph->t.buf + ph->t.used, one.buf + one.off[i], one.len[i]);
            ph->t.off[ph->t.n] = (uint32_t)ph->t.used;
            ph->t.len[ph->t.n++] = one.len[i];
            ph->t.used += one.len[i];
        }
    }
    ph->start[ph->n] = ph->t.n;
}

/* Does a message (its tokens) hold every phrase? */
static int holds_all(const struct phrases *ph, const struct tokens *m)
{
    for (unsigned k = 0; k < ph->n; k++) {
        unsigned a = ph->start[k], len = ph->start[k + 1] - a, found = 0;
        for (unsigned i = 0; !found && i + len <= m->n; i++) {
            unsigned j = 0;
            while (j < len && token_eq(&ph->t, a + j, m, i + j))
                j++;
            found = j == len;
        }
        if (!found)
            return 0;
    }
    return 1;
}

/* The newest `limit` messages holding every word, in the targets asked for. The
 * index finds the chunks that hold them all somewhere; each message of those is
 * matched on its own, with the index's tokenizer. */
static int search(struct history *h, struct collect *c, const struct history_query *q)
{
    char match[1024];
    if (fts_query(q->words, match, sizeof match) == 0)
        return -HISTORY_EWORDS;
    if (q->ntargets == 0)
        return SQLITE_OK;
    /* What was recorded before the search is found by it: index the rest first
     * (in the batch's transaction; run_batch restores fts_upto if that fails),
     * up to SEARCH_INDEX_MAX chunks, about a second of heavy load. */
    uint64_t end;
    int irc = index_rows(h, &h->fts, SEARCH_INDEX_MAX, &end);
    if (irc != SQLITE_OK)
        return irc;
    h->fts.upto = end;
    char sql[256 + 4 * 1000];
    size_t n = (size_t)snprintf(sql, sizeof sql,
                                "SELECT c.target, c.data FROM chunks_fts f JOIN chunks c ON c.id = f.rowid "
                                "WHERE chunks_fts MATCH ?1 AND c.target IN (");
    size_t nt = q->ntargets > 1000 ? 1000 : q->ntargets;
    for (size_t i = 0; i < nt; i++)
        n += (size_t)snprintf(sql + n, sizeof sql - n, "%s?%zu", i ? "," : "", i + 2);
    snprintf(sql + n, sizeof sql - n, ") ORDER BY f.rowid DESC");
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(h->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
    for (size_t i = 0; i < nt; i++)
        sqlite3_bind_text(st, (int)i + 2, q->targets[i], -1, SQLITE_STATIC);
    struct phrases *ph = malloc(sizeof *ph);
    struct tokens *mt = malloc(sizeof *mt);
    if (!ph || !mt) {
        free(ph);
        free(mt);
        sqlite3_finalize(st);
        return SQLITE_NOMEM;
    }
    phrases_of(h, q->words, ph);
    h->deadline = now_mono() + SEARCH_BUDGET_MS;
    size_t from = c->n;
    while (c->n - from < q->limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t toff = keep_str(c, sqlite3_column_text(st, 0)), first = c->n, off = 0;
        const unsigned char *data = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        struct rec r = {0};
        if (toff == (size_t)-1)
            rc = SQLITE_NOMEM;
        while (rc == SQLITE_ROW && rec_next(data, len, &off, &r) == 0) {
            tokenize(h, FTS5_TOKENIZE_DOCUMENT, r.text, r.nx, mt);
            if (holds_all(ph, mt) && collect_rec(c, &r, toff) != SQLITE_OK)
                rc = SQLITE_NOMEM;
        }
        if (rc != SQLITE_ROW)
            break;
        reverse(c->e, first, c->n); /* newest first, as the chunks come */
        if (c->n - from > q->limit)
            c->n = from + q->limit;
        if (h->deadline && now_mono() > h->deadline)
            rc = SQLITE_INTERRUPT;
    }
    h->deadline = 0;
    sqlite3_finalize(st);
    free(ph);
    free(mt);
    if (rc == SQLITE_INTERRUPT)
        return -HISTORY_ESLOW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE && rc != SQLITE_OK)
        return rc;
    /* Chunks of several targets overlap in time: what was found, newest last. */
    if (c->n > from)
        qsort(c->e + from, c->n - from, sizeof *c->e, by_id);
    return SQLITE_OK;
}

/* HQ_TARGETS: for each room asked about and each private conversation of the
 * asker, its newest message strictly between a and b (in either order); then
 * `limit` of them from a's side, oldest first. */
#define TARGETS_CONVS_MAX 1000
static int targets(struct history *h, struct collect *c, const struct history_query *q)
{
    uint64_t a_lo = lo_of(&q->a), a_hi = hi_of(&q->a), b_lo = lo_of(&q->b), b_hi = hi_of(&q->b);
    int forward = !given(&q->b) || a_lo < b_hi;
    uint64_t lo = forward ? a_lo : b_lo, hi = forward ? (given(&q->b) ? b_hi : UINT64_MAX >> 1) : a_hi;
    int rc = SQLITE_OK;
    for (size_t i = 0; i < q->ntargets && rc == SQLITE_OK; i++)
        rc = range_msgs(h, c, q->targets[i], lo, hi, 1, 1);
    if (rc == SQLITE_OK && q->target && q->target[0]) {
        sqlite3_stmt *st;
        char *keys = NULL; /* (range_msgs cannot run while st walks: copied first) */
        size_t nk = 0, used = 0, cap = 0;
        if ((rc = sqlite3_prepare_v2(h->db, "SELECT target FROM convs WHERE name = ?1 LIMIT ?2", -1, &st, NULL)) !=
            SQLITE_OK)
            return rc;
        sqlite3_bind_text(st, 1, q->target, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, TARGETS_CONVS_MAX);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *k = (const char *)sqlite3_column_text(st, 0);
            size_t len = strlen(k) + 1;
            if (used + len > cap) {
                size_t ncap = cap ? cap * 2 : 4096;
                while (ncap < used + len)
                    ncap *= 2;
                char *p = realloc(keys, ncap);
                if (!p) {
                    rc = SQLITE_NOMEM;
                    break;
                }
                keys = p;
                cap = ncap;
            }
            memcpy(keys + used, k, len);
            used += len;
            nk++;
        }
        sqlite3_finalize(st);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        for (size_t i = 0, off = 0; i < nk && rc == SQLITE_OK; i++) {
            rc = range_msgs(h, c, keys + off, lo, hi, 1, 1);
            off += strlen(keys + off) + 1;
        }
        free(keys);
    }
    if (rc != SQLITE_OK)
        return rc;
    if (c->n)
        qsort(c->e, c->n, sizeof *c->e, by_id);
    if (c->n > q->limit) {
        if (!forward)
            memmove(c->e, c->e + c->n - q->limit, q->limit * sizeof *c->e);
        c->n = q->limit;
    }
    return SQLITE_OK;
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
    case HQ_TARGETS:
        rc = targets(h, &c, q);
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
    pthread_setname_np(pthread_self(), "natterd-history"); /* (top -H, perf: which thread costs what) */
    /* SCHED_BATCH: a waking writer does not preempt the loop mid-turn (the
     * scheduler takes it for CPU-bound); its share is still nice 5's. */
    struct sched_param sp = {0};
    if (sched_setscheduler((pid_t)syscall(SYS_gettid), SCHED_BATCH, &sp) < 0)
        log_errno("history: sched_setscheduler");
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), HISTORY_NICE) < 0)
        log_errno("history: setpriority");
    pthread_mutex_lock(&h->mu);
    for (;;) {
        long long now = now_mono();
        /* The search index waits for a quiet moment: under load its work would be
         * taken from the chat (two cores: the loop, the clients, this thread). */
        int quiet = now >= h->last_write + INDEX_IDLE_MS;
        if (!h->in.head && !h->stop && quiet && h->fts.behind) {
            pthread_mutex_unlock(&h->mu);
            index_step(h, &h->fts);
            pthread_mutex_lock(&h->mu);
            continue;
        }
        if (!h->in.head && !h->stop) {
            int retention = (h->cfg.days > 0 || h->cfg.max_per_room > 0) && now >= h->retention_at;
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
            if (h->fts.behind) { /* wake for the quiet moment */
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
        /* A load that never pauses: catch up in bulk. */
        if (h->fts.behind >= INDEX_BACKLOG)
            index_step(h, &h->fts);

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

/* Put the open slab on the queue (the caller holds no lock). The loop fills a
 * slab of its own and hands it over whole, at the end of its turn (before_sleep),
 * when it is full, and before a question (which must come after it): one lock a
 * turn, not one a message, which cost the loop a cache line's round trip to the
 * history thread every time. Takes a reused slab back as the spare meanwhile. */
static void handover_locked(struct history *h)
{
    struct slab *sl = h->open;
    h->open = NULL;
    if (sl && sl->count) {
        list_push(&h->in, &sl->n);
        h->in_items += sl->count;
        h->in_bytes += sl->used;
        if (h->waiting)
            pthread_cond_signal(&h->wake);
    } else if (sl && !h->spare) {
        h->spare = sl;
    } else {
        free(sl);
    }
    if (!h->spare && h->pool.head) { /* one back from the thread */
        h->spare = (struct slab *)h->pool.head;
        if (!(h->pool.head = h->pool.head->next))
            h->pool.tail = NULL;
        h->npool--;
    }
    h->seen_items = h->in_items;
    h->seen_bytes = h->in_bytes;
}

static void handover(struct history *h)
{
    pthread_mutex_lock(&h->mu);
    handover_locked(h);
    pthread_mutex_unlock(&h->mu);
}

static void before_sleep(struct loop *l, void *data)
{
    (void)l;
    struct history *h = data;
    if (h->open && h->open->count)
        handover(h);
}

static char *copy_n(char **p, const char *s, size_t len)
{
    char *at = *p;
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
    size_t ntarget = strlen(target), nfrom = strlen(ev->from), nto = strlen(to), ntext = strlen(ev->text);
    if (ntarget >= HISTORY_KEY_MAX || nfrom > 0xffff || nto > 0xffff || ntext > 0x7fffffff)
        return; /* (names are far shorter, lines too: never so, but never packed wrong) */
    size_t size = (sizeof(struct mnode) + ntarget + nfrom + nto + ntext + 4 + 7) & ~(size_t)7;
    /* The queue's bound, as last seen, with what waits in the open slab. */
    size_t open_items = h->open ? h->open->count : 0, open_bytes = h->open ? h->open->used : 0;
    int full = h->seen_items + open_items >= QUEUE_MAX_ITEMS || h->seen_bytes + open_bytes + size > QUEUE_MAX_BYTES;
    struct slab *sl = h->open;
    if (!full && (!sl || sl->cap - sl->used < size)) {
        if (sl)
            handover(h);
        if (size > SLAB_SIZE) /* a long line: a slab of its own */
            sl = slab_new(size);
        else if ((sl = h->spare))
            h->spare = NULL;
        else
            sl = slab_new(SLAB_SIZE);
        if (sl)
            sl->used = sl->count = 0;
        h->open = sl;
        full = !sl; /* out of memory for a slab */
    }
    if (full) {
        pthread_mutex_lock(&h->mu); /* (rare: the queue is full) */
        gaps_add(&h->dropped, target, ev->id, ev->time_ms);
        pthread_mutex_unlock(&h->mu);
    } else {
        struct mnode *m = (struct mnode *)(void *)(sl->data + sl->used);
        m->id = ev->id;
        m->time_ms = ev->time_ms;
        m->kind = kind;
        m->size = size;
        char *p = m->data;
        m->target = copy_n(&p, target, ntarget);
        m->from = copy_n(&p, ev->from, nfrom);
        m->to = copy_n(&p, to, nto);
        m->text = copy_n(&p, ev->text, ntext);
        m->ntarget = (uint16_t)ntarget;
        m->nfrom = (uint16_t)nfrom;
        m->nto = (uint16_t)nto;
        m->ntext = (uint32_t)ntext;
        sl->used += size;
        sl->count++;
        if (!h->loop)
            handover(h); /* no loop to hand over at the end of its turn: at once */
    }
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
    size_t nt = q->sel == HQ_SEARCH || q->sel == HQ_TARGETS ? q->ntargets : 0;
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
    handover_locked(h); /* what was said before the question comes before it */
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
    handover_locked(h);
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
    if (!(h->pk = calloc(1, sizeof *h->pk))) {
        free(h->path);
        free(h);
        snprintf(err, errlen, "history: out of memory");
        return NULL;
    }
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
    if (h->efd < 0 || (l && (loop_watch(l, h->efd, LOOP_READ, on_answers, h) < 0 ||
                             loop_add_before_sleep(l, before_sleep, h) < 0))) {
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
        handover_locked(h);
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
    if (h->loop)
        loop_remove_before_sleep(h->loop, before_sleep, h);
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
    free(h->open);
    free(h->spare);
    for (struct node *n = h->pool.head, *next; n; n = next) {
        next = n->next;
        free(n);
    }
    touched_clear(h);
    dict_free(&h->touched);
    sqlite3_finalize(h->ins);
    sqlite3_finalize(h->gap_ins);
    sqlite3_finalize(h->conv_ins);
    sqlite3_finalize(h->range_st[0]);
    sqlite3_finalize(h->range_st[1]);
    if (h->tokenizer)
        h->tok.xDelete(h->tokenizer);
    if (h->pk) {
        for (size_t i = 0; i < h->pk->nalloc; i++) {
            if (i < h->pk->nalloc_data)
                free(h->pk->b[i]->data);
            free(h->pk->b[i]);
        }
        free(h->pk);
    }
    if (h->db)
        sqlite3_close(h->db);
    free(h->path);
    free(h);
}
