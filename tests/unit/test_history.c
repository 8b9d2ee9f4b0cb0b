/* test_history.c - the history module against a real SQLite database: what is
 * recorded comes back, in order, through every selector; search finds only what
 * it may; retention; the schema version; databases it must refuse. Answers are
 * taken through a real loop, as natterd does. */
#include "server/history.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sqlite3.h>
#include <unistd.h>

#include "check.h"
#include "core/loop.h"
#include "server/hub.h"

static struct loop *loop;

struct got {
    int done;
    enum history_status status;
    size_t count;
    uint64_t ids[128];
    char text[128][64];
    int kinds[128];
    uint64_t lost[128];
};

static void on_done(void *arg, uint64_t cookie, const struct history_result *r)
{
    struct got *g = arg;
    (void)cookie;
    g->done = 1;
    g->status = r->status;
    g->count = r->count;
    for (size_t i = 0; i < r->count && i < 128; i++) {
        g->ids[i] = r->entries[i].id;
        snprintf(g->text[i], sizeof g->text[i], "%s", r->entries[i].text);
        g->kinds[i] = (int)r->entries[i].kind;
        g->lost[i] = r->entries[i].lost;
    }
}

/* Ask and turn the loop until the answer comes (at most 10 s). */
static struct got *ask(struct history *h, struct history_query q)
{
    static struct got g;
    memset(&g, 0, sizeof g);
    q.done = on_done;
    q.arg = &g;
    if (history_query(h, &q) < 0)
        return &g;
    long long until = loop_now_ms() + 10000;
    while (!g.done && loop_now_ms() < until)
        loop_turn(loop, 100);
    return &g;
}

static uint64_t next_id = 1000 << 16;

static uint64_t say(struct history *h, const char *room, const char *from, const char *text)
{
    struct hub_event ev = {.type = EV_SAY, .room = room, .from = from, .text = text};
    ev.id = next_id += 1 << 16; /* a millisecond each */
    ev.time_ms = (int64_t)(ev.id >> 16);
    history_record(h, &ev);
    return ev.id;
}

/* The texts of an answer, joined by spaces. */
static const char *texts(const struct got *g)
{
    static char s[2048];
    size_t n = 0;
    s[0] = '\0';
    for (size_t i = 0; i < g->count && n < sizeof s - 80; i++)
        n += (size_t)snprintf(s + n, sizeof s - n, "%s%s", i ? " " : "", g->text[i]);
    return g->done ? s : "(no answer)";
}

static struct history *open_at(const char *path, long long max, char *err, size_t errlen)
{
    struct history_config cfg = {.path = path, .replay = 50, .max_per_room = max};
    return history_open(loop, &cfg, err, errlen);
}

static void test_selectors(void)
{
    char err[512] = "";
    struct history *h = open_at(":memory:", 0, err, sizeof err);
    CHECK(h != NULL, "an in-memory database opens");
    if (!h) {
        printf("# %s\n", err);
        return;
    }
    uint64_t ids[10];
    char t[16];
    for (int i = 0; i < 10; i++) {
        snprintf(t, sizeof t, "m%d", i);
        ids[i] = say(h, i % 2 ? "#Dev" : "#dev", "alice", t);
    }
    say(h, "#other", "bob", "elsewhere");
    struct got *g = ask(h, (struct history_query){.sel = HQ_LATEST, .target = "#DEV", .limit = 3});
    CHECK_STR(texts(g), "m7 m8 m9", "LATEST: the newest, oldest first, room names without case");
    g = ask(h, (struct history_query){.sel = HQ_LATEST, .target = "#dev", .limit = 50});
    CHECK_INT(g->count, 10, "LATEST: no more than there is, nothing of another room");
    g = ask(h, (struct history_query){.sel = HQ_BEFORE, .target = "#dev", .a = {.id = ids[5]}, .limit = 2});
    CHECK_STR(texts(g), "m3 m4", "BEFORE msgid: the newest before it, not it");
    g = ask(h, (struct history_query){.sel = HQ_AFTER, .target = "#dev", .a = {.id = ids[5]}, .limit = 2});
    CHECK_STR(texts(g), "m6 m7", "AFTER msgid: the oldest after it, not it");
    g = ask(h, (struct history_query){.sel = HQ_AROUND, .target = "#dev", .a = {.id = ids[5]}, .limit = 4});
    CHECK_STR(texts(g), "m3 m4 m5 m6", "AROUND msgid: half before, then it and after");
    g = ask(h, (struct history_query){.sel = HQ_BETWEEN, .target = "#dev", .a = {.id = ids[2]}, .b = {.id = ids[6]},
                                      .limit = 10});
    CHECK_STR(texts(g), "m3 m4 m5", "BETWEEN a < b: strictly between, from a");
    g = ask(h, (struct history_query){.sel = HQ_BETWEEN, .target = "#dev", .a = {.id = ids[6]}, .b = {.id = ids[2]},
                                      .limit = 2});
    CHECK_STR(texts(g), "m4 m5", "BETWEEN a > b: from a's side (the newest), oldest first");
    /* By time: ids[i] >> 16 is its ms; messages of the same ms share a time. */
    int64_t t5 = (int64_t)(ids[5] >> 16);
    g = ask(h, (struct history_query){.sel = HQ_AFTER, .target = "#dev", .a = {.time_ms = t5}, .limit = 2});
    CHECK_STR(texts(g), "m6 m7", "AFTER timestamp: after that ms");
    g = ask(h, (struct history_query){.sel = HQ_BEFORE, .target = "#dev", .a = {.time_ms = t5}, .limit = 2});
    CHECK_STR(texts(g), "m3 m4", "BEFORE timestamp: before that ms");
    g = ask(h, (struct history_query){.sel = HQ_AROUND, .target = "#dev", .a = {.time_ms = t5}, .limit = 2});
    CHECK_STR(texts(g), "m4 m5", "AROUND timestamp: before it, then from it on");
    g = ask(h, (struct history_query){.sel = HQ_LATEST, .target = "#dev", .a = {.id = ids[7]}, .limit = 50});
    CHECK_STR(texts(g), "m8 m9", "LATEST after a msgid: only what is newer");

    /* Across chunks: history_settle ends a batch (and indexes it), so #split is
     * two rows, s0-s9 and s10-s14, and a query reads across both. */
    uint64_t sp[15];
    for (int i = 0; i < 15; i++) {
        snprintf(t, sizeof t, "s%d", i);
        sp[i] = say(h, "#split", "alice", t);
        if (i == 9)
            history_settle(h);
    }
    g = ask(h, (struct history_query){.sel = HQ_LATEST, .target = "#split", .limit = 7});
    CHECK_STR(texts(g), "s8 s9 s10 s11 s12 s13 s14", "LATEST across the indexed rows and the tail");
    g = ask(h, (struct history_query){.sel = HQ_AFTER, .target = "#split", .a = {.id = sp[7]}, .limit = 5});
    CHECK_STR(texts(g), "s8 s9 s10 s11 s12", "AFTER across the indexed rows and the tail");
    g = ask(h, (struct history_query){.sel = HQ_BEFORE, .target = "#split", .a = {.id = sp[12]}, .limit = 4});
    CHECK_STR(texts(g), "s8 s9 s10 s11", "BEFORE across the indexed rows and the tail");
    history_settle(h);
    g = ask(h, (struct history_query){.sel = HQ_BETWEEN, .target = "#split", .a = {.id = sp[3]}, .b = {.id = sp[6]},
                                      .limit = 9});
    CHECK_STR(texts(g), "s4 s5", "BETWEEN, all indexed");

    /* One batch bigger than a chunk (16 KiB): several rows of one room, read in order. */
    char line[200];
    uint64_t big[1000];
    for (int i = 0; i < 1000; i++) {
        snprintf(line, sizeof line, "b%d %0100d", i, i);
        big[i] = say(h, "#big", "bob", line);
    }
    g = ask(h, (struct history_query){.sel = HQ_AFTER, .target = "#big", .a = {.id = big[449]}, .limit = 100});
    int in_order = g->count == 100;
    for (size_t i = 0; in_order && i < g->count; i++) {
        snprintf(line, sizeof line, "b%zu %0100zu", i + 450, i + 450);
        in_order = strncmp(g->text[i], line, sizeof g->text[i] - 1) == 0;
    }
    CHECK(in_order, "a room's batch over several chunks: all of it, in order");
    g = ask(h, (struct history_query){.sel = HQ_BEFORE, .target = "#big", .a = {.id = big[301]}, .limit = 2});
    CHECK(g->count == 2 && strncmp(g->text[0], "b299 ", 5) == 0 && strncmp(g->text[1], "b300 ", 5) == 0,
          "BEFORE inside a chunk, from the newest");

    /* Search: all words, quoted (FTS syntax is just text), only the targets given. */
    say(h, "#dev", "carol", "the quick brown fox");
    say(h, "#dev", "carol", "quick AND \"dirty\" NEAR(x) col:umn*");
    say(h, "#secret", "dave", "the quick secret");
    const char *mine[] = {"#dev", "#other"};
    g = ask(h, (struct history_query){.sel = HQ_SEARCH, .words = "quick", .targets = mine, .ntargets = 2,
                                      .limit = 20});
    CHECK_INT(g->count, 2, "search finds every match in the rooms given, none elsewhere");
    g = ask(h, (struct history_query){.sel = HQ_SEARCH, .words = "quick fox", .targets = mine, .ntargets = 2,
                                      .limit = 20});
    CHECK_STR(texts(g), "the quick brown fox", "search: every word must match");
    g = ask(h, (struct history_query){.sel = HQ_SEARCH, .words = "\"dirty\" NEAR(x) col:umn* AND", .targets = mine,
                                      .ntargets = 2, .limit = 20});
    CHECK(g->status == HISTORY_OK && g->count == 1, "search: quotes and FTS syntax in the words are plain text");
    g = ask(h, (struct history_query){.sel = HQ_SEARCH, .words = "   ", .targets = mine, .ntargets = 2, .limit = 20});
    CHECK_INT(g->status, HISTORY_EWORDS, "search without words is refused");

    /* Private messages: kept only when asked to, under a key both sides share. */
    char k1[HISTORY_KEY_MAX], k2[HISTORY_KEY_MAX];
    history_private_key("Bob", "alice", k1);
    history_private_key("alice", "BOB", k2);
    CHECK(strcmp(k1, k2) == 0 && strcmp(k1, "alice bob") == 0, "a conversation's key is the same both ways round");
    struct hub_event pm = {.type = EV_PRIVMSG, .from = "alice", .to = "bob", .text = "psst", .id = next_id += 1 << 16};
    history_record(h, &pm);
    g = ask(h, (struct history_query){.sel = HQ_LATEST, .target = k1, .limit = 5});
    CHECK_INT(g->count, 0, "private messages are not kept without --history-private");
    struct hub_event join = {.type = EV_JOIN, .room = "#dev", .from = "x", .id = next_id += 1 << 16};
    history_record(h, &join);
    g = ask(h, (struct history_query){.sel = HQ_LATEST, .target = "#dev", .limit = 1});
    CHECK_STR(texts(g), "quick AND \"dirty\" NEAR(x) col:umn*", "joins and parts are not kept");
    history_close(h);

    struct history_config cfg = {.path = ":memory:", .replay = 5, .private_msgs = 1};
    h = history_open(loop, &cfg, err, sizeof err);
    pm.id = next_id += 1 << 16;
    history_record(h, &pm);
    g = ask(h, (struct history_query){.sel = HQ_LATEST, .target = k2, .limit = 5});
    CHECK_STR(texts(g), "psst", "with private_msgs a private message is kept");
    /* Queries beyond HISTORY_MAX_PENDING are refused at once, never queued. */
    struct got sink[HISTORY_MAX_PENDING + 1];
    int refused = 0;
    for (int i = 0; i <= HISTORY_MAX_PENDING; i++) {
        memset(&sink[i], 0, sizeof sink[i]);
        struct history_query q = {.sel = HQ_LATEST, .target = "#dev", .limit = 1, .done = on_done, .arg = &sink[i]};
        if (history_query(h, &q) < 0)
            refused++;
    }
    CHECK_INT(refused, 1, "the query after HISTORY_MAX_PENDING waiting ones is refused");
    history_close(h);
    int closed = 0;
    for (int i = 0; i < HISTORY_MAX_PENDING; i++)
        closed += sink[i].done && sink[i].status == HISTORY_ECLOSED;
    CHECK_INT(closed, HISTORY_MAX_PENDING, "queries unanswered at close are told so (HISTORY_ECLOSED)");
}

static void test_file(const char *dir)
{
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/h.db", dir);
    struct history *h = open_at(path, 0, err, sizeof err);
    CHECK(h != NULL, "a new database file is created");
    if (!h) {
        printf("# %s\n", err);
        return;
    }
    for (int i = 0; i < 100; i++)
        say(h, "#dev", "alice", i == 99 ? "last" : "one");
    history_close(h);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 077) == 0, "the database file is private (0600)");
    h = open_at(path, 0, err, sizeof err);
    struct got *g = ask(h, (struct history_query){.sel = HQ_LATEST, .target = "#dev", .limit = 1000});
    CHECK(g->count == 100 && strcmp(g->text[99], "last") == 0, "what was recorded is there after reopening");
    history_close(h);

    sqlite3 *db;
    sqlite3_open(path, &db);
    sqlite3_stmt *s;
    sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL);
    sqlite3_step(s);
    CHECK_INT(sqlite3_column_int(s, 0), HISTORY_SCHEMA_VERSION, "the schema version is in PRAGMA user_version");
    sqlite3_finalize(s);
    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL);
    sqlite3_step(s);
    CHECK_STR((const char *)sqlite3_column_text(s, 0), "wal", "the database is in WAL mode");
    sqlite3_finalize(s);
    sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL);
    sqlite3_close(db);
    h = open_at(path, 0, err, sizeof err);
    CHECK(!h && strstr(err, "schema version 99 is newer"), "a newer schema is refused, saying so");
    history_close(h);

    /* Retention: max 5 per room, applied by the thread when idle. */
    snprintf(path, sizeof path, "%s/r.db", dir);
    h = open_at(path, 5, err, sizeof err);
    for (int i = 0; i < 20; i++) {
        char t[16];
        snprintf(t, sizeof t, "r%d", i & 0xff);
        say(h, "#dev", "alice", t);
        say(h, "#ops", "alice", t);
    }
    long long until = loop_now_ms() + 10000;
    struct got *r;
    do
        r = ask(h, (struct history_query){.sel = HQ_LATEST, .target = "#ops", .limit = 100});
    while (r->count != 5 && loop_now_ms() < until);
    CHECK_STR(texts(r), "r15 r16 r17 r18 r19", "--history-max: each room keeps its newest N");
    r = ask(h, (struct history_query){.sel = HQ_SEARCH, .words = "r3", .targets = (const char *[]){"#dev"},
                                      .ntargets = 1, .limit = 5});
    CHECK_INT(r->count, 0, "deleted rows are gone from the search index too");
    history_close(h);

    /* Databases that cannot be used. */
    snprintf(path, sizeof path, "%s/junk.db", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char junk[8192];
    memset(junk, 'x', sizeof junk);
    CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk, "(junk written)");
    close(fd);
    h = open_at(path, 0, err, sizeof err);
    CHECK(!h && strstr(err, "not a database"), "a file that is not a database is refused, saying so");
    history_close(h);
    snprintf(path, sizeof path, "%s/locked.db", dir);
    h = open_at(path, 0, err, sizeof err);
    history_close(h);
    sqlite3_open(path, &db);
    sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL);
    h = open_at(path, 0, err, sizeof err);
    CHECK(!h && strstr(err, "locked"), "a database another program is writing is refused, saying so");
    history_close(h);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    snprintf(path, sizeof path, "%s/no/such/dir.db", dir);
    h = open_at(path, 0, err, sizeof err);
    CHECK(!h && strstr(err, "cannot create"), "a database that cannot be created is refused, saying so");
}

int main(void)
{
    loop = loop_new(1024);
    char dir[] = "/tmp/natter-history-XXXXXX";
    if (!loop || !mkdtemp(dir)) {
        printf("not ok - setup\n");
        return 1;
    }
    test_selectors();
    test_file(dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    loop_free(loop);
    return check_done();
}
