/* linehistory.c - history for plain clients (see linehistory.h). */
#include "server/codecs/line/linehistory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/text.h"
#include "server/codecs/line/lineuser.h"
#include "server/conn.h"
#include "server/history.h"
#include "server/hub.h"

#define HISTORY_CMD_MAX 500   /* most messages one /history shows */
#define SEARCH_RESULTS 20     /* results of one /search */
#define SEARCH_COST 10        /* flood-control units a search costs up front */

enum ask { ASK_REPLAY, ASK_HISTORY, ASK_SEARCH };

/* What an answer needs to be worded: kept until it comes. */
struct asked {
    enum ask what;
    char label[HISTORY_KEY_MAX]; /* "#dev", the other's name, or the words */
};

/* "2026-12-02T14:35:16.123Z" */
static void format_time(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

/* One entry as the asker sees it: "== TIME " and the live line. */
static struct msg *entry_line(const struct history_entry *e, const char *me)
{
    char t[32];
    format_time(e->time_ms, t);
    switch (e->kind) {
    case HK_SAY:
        return msg_printf("== %s %s <%s> %s\n", t, e->target, e->from, e->text);
    case HK_ACTION:
        return msg_printf("== %s %s * %s %s\n", t, e->target, e->from, e->text);
    case HK_PRIVMSG:
        if (text_ieq(e->from, me))
            return msg_printf("== %s -> *%s* %s\n", t, e->to, e->text);
        return msg_printf("== %s *%s* %s\n", t, e->from, e->text);
    case HK_GAP:
        if (e->target[0] == '#')
            return msg_printf("== %s %s -- %llu message%s not recorded here\n", t, e->target,
                              (unsigned long long)e->lost, e->lost == 1 ? "" : "s");
        return msg_printf("== %s -- %llu private message%s not recorded here\n", t, (unsigned long long)e->lost,
                          e->lost == 1 ? "" : "s");
    }
    return NULL;
}

static void on_answer(void *arg, uint64_t cookie, const struct history_result *r)
{
    struct asked *a = arg;
    struct conn *c = conn_by_id(cookie);
    if (!c || !c->user) {
        free(a);
        return;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t before = conn_queued(c);
    if (r->status == HISTORY_ESLOW)
        line_reply(c, "!! search took too long, try more specific words");
    else if (r->status == HISTORY_EWORDS)
        line_reply(c, "!! usage: /search words");
    else if (r->status != HISTORY_OK)
        line_reply(c, a->what == ASK_REPLAY ? "!! history of %s is unavailable" : "!! history failed: %s",
                   a->label);
    else if (r->count == 0 && a->what == ASK_HISTORY)
        line_reply(c, "-- no history of %s", a->label);
    else if (r->count == 0 && a->what == ASK_SEARCH)
        line_reply(c, "-- search for %s: nothing found", a->label);
    else if (r->count > 0) {
        if (a->what == ASK_SEARCH)
            line_reply(c, "-- search for %s: %zu result%s", a->label, r->count, r->count == 1 ? "" : "s");
        else
            line_reply(c, "-- history of %s: %zu message%s", a->label, r->count, r->count == 1 ? "" : "s");
        /* A long answer stops at half the client's output limit, not at the drop. */
        size_t room = conn_limits(c)->max_outbuf / 2;
        size_t i;
        for (i = 0; i < r->count && conn_queued(c) < room; i++) {
            struct msg *m = entry_line(&r->entries[i], c->user->name);
            if (m) {
                conn_send(c, m);
                msg_unref(m);
            }
        }
        if (i < r->count)
            line_reply(c, "-- %zu more not shown (your output queue is full: ask for fewer)", r->count - i);
        line_reply(c, a->what == ASK_SEARCH ? "-- end of search" : "-- end of history of %s", a->label);
    }
    /* Listings cost the server in proportion to their size: charge the asker. */
    if (a->what != ASK_REPLAY && conn_queued(c) > before)
        conn_charge(c, (double)((conn_queued(c) - before) / LINE_TOKEN_BYTES));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    log_debug("history: %zu entries to %s in %ld us of loop time", r->count, conn_peer(c),
              (long)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000));
    free(a);
}

static int ask(struct conn *c, struct history_query *q, enum ask what, const char *label)
{
    struct history *h = conn_history(c);
    struct asked *a = malloc(sizeof *a);
    if (!a) {
        line_error(c, HUB_ENOMEM, NULL);
        return -1;
    }
    a->what = what;
    snprintf(a->label, sizeof a->label, "%s", label);
    q->done = on_answer;
    q->arg = a;
    q->cookie = c->id;
    if (history_query(h, q) < 0) {
        free(a);
        if (what != ASK_REPLAY)
            line_reply(c, "!! history is busy, try again");
        return -1;
    }
    return 0;
}

void line_history_replay(struct conn *c, const char *room)
{
    struct history *h = conn_history(c);
    if (!h || history_config(h)->replay == 0)
        return;
    struct history_query q = {.sel = HQ_LATEST, .target = room, .limit = history_config(h)->replay, .replay = 1};
    ask(c, &q, ASK_REPLAY, room);
}

/* A count argument: 1..max, or -1. */
static long count_of(const char *s, long max)
{
    char *end;
    long n = strtol(s, &end, 10);
    if (*s < '0' || *s > '9' || *end || n < 1)
        return -1;
    return n > max ? max : n;
}

int line_history_cmd(struct conn *c, char *args)
{
    static const char usage[] = "!! usage: /history [#room|NAME] [N] (N up to %d)";
    struct history *h = conn_history(c);
    if (!h) {
        line_reply(c, "!! history is off on this server");
        return 0;
    }
    char *words[3] = {0};
    int nw = 0;
    char *save;
    for (char *p = strtok_r(args, " \t", &save); p; p = strtok_r(NULL, " \t", &save))
        if (nw < 3)
            words[nw++] = p;
    const char *target = NULL;
    long n = history_config(h)->replay ? (long)history_config(h)->replay : 50;
    int i = 0;
    if (nw > 0 && words[0][strspn(words[0], "0123456789")] != '\0') /* not all digits: a room or a name */
        target = words[i++];
    if (i < nw && (n = count_of(words[i++], HISTORY_CMD_MAX)) < 0) {
        line_reply(c, usage, HISTORY_CMD_MAX);
        return 0;
    }
    if (i < nw) {
        line_reply(c, usage, HISTORY_CMD_MAX);
        return 0;
    }
    struct history_query q = {.sel = HQ_LATEST, .limit = (unsigned)n};
    char key[HISTORY_KEY_MAX];
    if (!target || target[0] == '#') {
        if (!target && !(target = line_current(c))) {
            line_reply(c, "!! you are in no room (try /join #lobby)");
            return 0;
        }
        if (!hub_in_room(conn_hub(c), c->user, target)) {
            line_error(c, HUB_ENOTINROOM, target);
            return 0;
        }
        q.target = target;
    } else {
        if (!history_config(h)->private_msgs) {
            line_reply(c, "!! private messages are not kept on this server");
            return 0;
        }
        if (history_private_key(c->user->name, target, key) < 0) {
            line_error(c, HUB_EBADNICK, target);
            return 0;
        }
        q.target = key;
    }
    ask(c, &q, ASK_HISTORY, target);
    return 0;
}

int line_search_cmd(struct conn *c, char *args)
{
    struct history *h = conn_history(c);
    if (!h) {
        line_reply(c, "!! history is off on this server");
        return 0;
    }
    while (*args == ' ' || *args == '\t')
        args++;
    if (!*args) {
        line_reply(c, "!! usage: /search words");
        return 0;
    }
    struct user *u = c->user;
    if (u->nrooms == 0) {
        line_reply(c, "!! you are in no room (try /join #lobby)");
        return 0;
    }
    const char *rooms[1024];
    size_t n = 0;
    for (uint16_t i = 0; i < u->nrooms && n < sizeof rooms / sizeof rooms[0]; i++)
        rooms[n++] = hub_room_name(u->rooms[i]);
    struct history_query q = {.sel = HQ_SEARCH, .words = args, .targets = rooms, .ntargets = n,
                              .limit = SEARCH_RESULTS};
    char label[HISTORY_KEY_MAX];
    snprintf(label, sizeof label, "\"%.200s\"", args);
    conn_charge(c, SEARCH_COST);
    ask(c, &q, ASK_SEARCH, label);
    return 0;
}
