/* irchistory.c - history for IRC clients (see irchistory.h). */
#include "server/codecs/irc/irchistory.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/text.h"
#include "server/codecs/irc/ircencode.h"
#include "server/codecs/irc/ircmsg.h"
#include "server/codecs/irc/ircuser.h"
#include "server/conn.h"
#include "server/history.h"
#include "server/hub.h"

/* What an answer needs to be worded: kept until it comes. */
struct asked {
    int replay;                   /* a replay on join, not a CHATHISTORY */
    int targets;                  /* CHATHISTORY TARGETS: a list of targets, not of messages */
    int search;                   /* SEARCH: messages of several rooms, in a soju.im/search batch */
    int keep_newest;              /* when the output queue cannot take it all: drop the oldest */
    const char *sub;              /* CHATHISTORY's subcommand (static) */
    char target[HISTORY_KEY_MAX]; /* as the client sees it: "#dev" or the other's nick */
    char label[IRC_LABEL_MAX + 1]; /* labeled-response: the label (escaped), or "" */
};

/* ==== A growing buffer of lines ==== */

struct out {
    char *p;
    size_t n, cap;
    int failed;
};

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (o->failed || n < 0) {
        o->failed = 1;
        return;
    }
    if (o->n + (size_t)n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->n + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(o->p, cap);
        if (!p) {
            o->failed = 1;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(o->p + o->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    o->n += (size_t)n;
}

/* ==== Entries as lines ==== */

/* A batch's first line (with the request's label) into o, its reference in ref;
 * without batch only the label's ACK. */
static void open_batch(struct out *o, struct irc_state *st, const struct asked *a, int batched, char ref[16],
                       const char *what, const char *target)
{
    if (batched) {
        snprintf(ref, 16, "H%u", ++st->batches);
        if (a->label[0])
            out_printf(o, "@label=%s ", a->label);
        out_printf(o, ":%s BATCH +%s %s%s%s\r\n", irc_conf.server_name, ref, what, target ? " " : "", target ? target : "");
    } else if (a->label[0]) { /* labeled-response needs batch: cannot happen, but answer the label */
        out_printf(o, "@label=%s :%s ACK\r\n", a->label, irc_conf.server_name);
    }
}

/* The whole answer as one message to c. */
static void send_out(struct conn *c, struct out *o)
{
    struct msg *m = o->failed || o->n == 0 ? NULL : msg_new(o->p, o->n);
    free(o->p);
    if (m) {
        conn_send(c, m);
        msg_unref(m);
    }
}

static int batch_form(const struct irc_state *st)
{
    return (st->caps & CAP_BATCH) && (st->caps & CAP_SERVER_TIME);
}

/* "2026-12-02T14:35:16.123Z" */
static void iso_time(char *out, size_t len, int64_t time_ms)
{
    time_t secs = (time_t)(time_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
             tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100, (int)(time_ms % 1000));
}

/* The tags of one line of entry e in batch ref: "@batch=..;time=..[;msgid=..] ". */
static void entry_tags(char *out, size_t len, const struct irc_state *st, const char *ref,
                       const struct history_entry *e, int part)
{
    char when[32];
    iso_time(when, sizeof when, e->time_ms);
    int n = snprintf(out, len, "@batch=%s;time=%s", ref, when);
    if ((st->caps & CAP_MESSAGE_TAGS) && e->kind != HK_GAP && n > 0 && (size_t)n < len) {
        n += snprintf(out + n, len - (size_t)n, ";msgid=%" PRIx64, e->id);
        if (part > 1 && (size_t)n < len) /* as ircencode.c names the parts of a long message */
            n += snprintf(out + n, len - (size_t)n, "-%d", part);
    }
    if (n > 0 && (size_t)n < len - 1)
        snprintf(out + n, len - (size_t)n, " ");
}

/* head, then text cut between characters into lines of at most 510 bytes,
 * each with tail; tags (for line part) in front of each when st is given. */
static void add_cut(struct out *o, const struct irc_state *st, const char *ref, const struct history_entry *e,
                    const char *head, const char *text, const char *tail)
{
    size_t hn = strlen(head), tn = strlen(tail), len = strlen(text);
    size_t room = IRC_BODY_MAX > hn + tn + 1 ? IRC_BODY_MAX - hn - tn : 1;
    int part = 1;
    char tags[160] = "";
    do {
        size_t k = irc_fit(text, len, room);
        if (st)
            entry_tags(tags, sizeof tags, st, ref, e, part++);
        out_printf(o, "%s%s%.*s%s\r\n", tags, head, (int)k, text, tail);
        text += k, len -= k;
    } while (len > 0);
}

/* "nick!user@host" of a sender: as now, if someone of that name is here; else unknown. */
static const char *sender_mask(struct conn *c, const char *from, char *out, size_t len)
{
    struct user *u = hub_find_user(conn_hub(c), from);
    if (u)
        return irc_mask(u, u->name, out, len);
    snprintf(out, len, "%s!*@*", from);
    return out;
}

/* One entry as a message in the batch ref, read as it was sent live. */
static void add_batched(struct out *o, struct conn *c, const char *ref, const struct history_entry *e,
                        const char *notice_to)
{
    const struct irc_state *st = irc_st(c);
    char head[IRC_LINE_MAX + HISTORY_KEY_MAX], mask[HUB_NAME_MAX * 2 + 48];
    switch (e->kind) {
    case HK_SAY:
    case HK_ACTION:
        snprintf(head, sizeof head, ":%s PRIVMSG %s :%s", sender_mask(c, e->from, mask, sizeof mask), e->target,
                 e->kind == HK_ACTION ? "\x01" "ACTION " : "");
        add_cut(o, st, ref, e, head, e->text, e->kind == HK_ACTION ? "\x01" : "");
        return;
    case HK_PRIVMSG:
        snprintf(head, sizeof head, ":%s PRIVMSG %s :", sender_mask(c, e->from, mask, sizeof mask), e->to);
        add_cut(o, st, ref, e, head, e->text, "");
        return;
    case HK_GAP: {
        char text[128];
        snprintf(text, sizeof text, "*** %" PRIu64 " message%s not recorded here", e->lost, e->lost == 1 ? "" : "s");
        snprintf(head, sizeof head, ":%s NOTICE %s :", irc_conf.server_name, notice_to);
        add_cut(o, st, ref, e, head, text, "");
        return;
    }
    }
}

/* One entry as a server NOTICE to target: "[2026-12-02 14:35:16] <alice> hello"
 * (with_room: "[...] #dev <alice> hello", for search results of several rooms). */
static void add_notice(struct out *o, const struct history_entry *e, const char *target, int with_room)
{
    time_t secs = (time_t)(e->time_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char when[32], head[IRC_LINE_MAX + 2 * HISTORY_KEY_MAX], room[HISTORY_KEY_MAX + 1] = "";
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    if (with_room)
        snprintf(room, sizeof room, "%s ", e->target);
    char text[128];
    switch (e->kind) {
    case HK_SAY:
    case HK_PRIVMSG:
        snprintf(head, sizeof head, ":%s NOTICE %s :[%s] %s<%s> ", irc_conf.server_name, target, when, room, e->from);
        add_cut(o, NULL, NULL, e, head, e->text, "");
        return;
    case HK_ACTION:
        snprintf(head, sizeof head, ":%s NOTICE %s :[%s] %s* %s ", irc_conf.server_name, target, when, room, e->from);
        add_cut(o, NULL, NULL, e, head, e->text, "");
        return;
    case HK_GAP:
        snprintf(text, sizeof text, "%" PRIu64 " message%s not recorded here", e->lost, e->lost == 1 ? "" : "s");
        snprintf(head, sizeof head, ":%s NOTICE %s :[%s] -- ", irc_conf.server_name, target, when);
        add_cut(o, NULL, NULL, e, head, text, "");
        return;
    }
}

/* An upper bound of the bytes entry e takes as lines. */
static size_t entry_cost(const struct history_entry *e)
{
    size_t text = strlen(e->text);
    return text + (text / 400 + 1) * (260 + strlen(e->from) + strlen(e->target) + strlen(e->to));
}

/* ==== Answers ==== */

/* The answer to a, entries oldest first (none for an empty batch), as one msg. */
static void answer(struct conn *c, const struct asked *a, const struct history_entry *entries, size_t count)
{
    struct irc_state *st = irc_st(c);
    int batched = batch_form(st);
    /* A long answer stops at half the client's output limit, not at the drop:
     * the oldest are left out when the newest were asked for, else the newest. */
    size_t room = conn_limits(c)->max_outbuf / 2, queued = conn_queued(c), budget = 0;
    size_t first = 0, last = count;
    if (queued < room)
        budget = room - queued;
    size_t used = 0, k = 0;
    if (a->keep_newest) {
        while (k < count && used + entry_cost(&entries[count - 1 - k]) <= budget)
            used += entry_cost(&entries[count - 1 - k]), k++;
        first = count - k;
    } else {
        while (k < count && used + entry_cost(&entries[k]) <= budget)
            used += entry_cost(&entries[k]), k++;
        last = k;
    }
    struct out o = {0};
    /* Private history is shown as the client's own conversation with the other. */
    const char *notice_to = a->target[0] == '#' ? a->target : irc_nick(c);
    char ref[16];
    if (a->search)
        open_batch(&o, st, a, batched, ref, "soju.im/search", NULL);
    else
        open_batch(&o, st, a, batched, ref, "chathistory", a->target);
    if (!batched && first > 0)
        out_printf(&o, ":%s NOTICE %s :*** %zu older message%s of history not shown (ask for fewer)\r\n",
                   irc_conf.server_name, notice_to, first, first == 1 ? "" : "s");
    for (size_t i = first; i < last; i++) {
        if (batched)
            add_batched(&o, c, ref, &entries[i], notice_to);
        else
            add_notice(&o, &entries[i], notice_to, a->search);
    }
    if (!batched && count == 0 && a->search)
        out_printf(&o, ":%s NOTICE %s :*** Search for %s: nothing found\r\n", irc_conf.server_name, notice_to,
                   a->target);
    else if (!batched && count == 0 && !a->replay)
        out_printf(&o, ":%s NOTICE %s :*** No history of %s\r\n", irc_conf.server_name, notice_to, a->target);
    if (!batched && last < count)
        out_printf(&o, ":%s NOTICE %s :*** %zu newer message%s of history not shown (ask for fewer)\r\n",
                   irc_conf.server_name, notice_to, count - last, count - last == 1 ? "" : "s");
    if (batched)
        out_printf(&o, ":%s BATCH -%s\r\n", irc_conf.server_name, ref);
    send_out(c, &o);
    /* A CHATHISTORY costs the server in proportion to its size: charge the asker. */
    if (!a->replay && conn_queued(c) > queued)
        conn_charge(c, (double)(conn_queued(c) - queued) / IRC_LINE_MAX);
}

/* CHATHISTORY TARGETS' answer: a line per target, with the time of its newest
 * message, in a draft/chathistory-targets batch when batch was negotiated. */
static void answer_targets(struct conn *c, const struct asked *a, const struct history_entry *entries, size_t count)
{
    struct irc_state *st = irc_st(c);
    int batched = (st->caps & CAP_BATCH) != 0;
    struct out o = {0};
    char ref[16] = "";
    open_batch(&o, st, a, batched, ref, "draft/chathistory-targets", NULL);
    for (size_t i = 0; i < count; i++) {
        const struct history_entry *e = &entries[i];
        /* a conversation is named by the other side, as the client sees it */
        const char *name = e->target[0] == '#' ? e->target : text_ieq(e->from, irc_nick(c)) ? e->to : e->from;
        char when[64];
        iso_time(when, sizeof when, e->time_ms);
        out_printf(&o, "%s%s%s:%s CHATHISTORY TARGETS %s %s\r\n", batched ? "@batch=" : "", ref, batched ? " " : "",
                   irc_conf.server_name, name, when);
    }
    if (batched)
        out_printf(&o, ":%s BATCH -%s\r\n", irc_conf.server_name, ref);
    send_out(c, &o);
}

static void fail_cmd(struct conn *c, const char *cmd, const char *code, const char *context, const char *text)
{
    irc_send(c, ":%s FAIL %s %s %s%s:%s", irc_conf.server_name, cmd, code, context, *context ? " " : "", text);
}

static void fail(struct conn *c, const char *code, const char *context, const char *text)
{
    fail_cmd(c, "CHATHISTORY", code, context, text);
}

static void on_answer(void *arg, uint64_t cookie, const struct history_result *r)
{
    struct asked *a = arg;
    struct conn *c = conn_by_id(cookie);
    if (!c || !c->user || !c->state || conn_closing(c)) {
        free(a);
        return;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (r->status == HISTORY_OK && a->targets) {
        answer_targets(c, a, r->entries, r->count);
    } else if (r->status == HISTORY_OK) {
        answer(c, a, r->entries, r->count);
    } else if (a->replay) {
        irc_send(c, ":%s NOTICE %s :*** History of %s is unavailable", irc_conf.server_name, a->target, a->target);
    } else if (a->search) {
        const char *why = r->status == HISTORY_ESLOW    ? "The search took too long: use rarer words"
                          : r->status == HISTORY_EWORDS ? "Nothing to search for"
                                                        : "Messages could not be retrieved";
        const char *code = r->status == HISTORY_EWORDS ? "INVALID_PARAMS" : "MESSAGE_ERROR";
        if (a->label[0])
            irc_send(c, "@label=%s :%s FAIL SEARCH %s :%s", a->label, irc_conf.server_name, code, why);
        else
            fail_cmd(c, "SEARCH", code, "", why);
    } else {
        char context[HISTORY_KEY_MAX + 16];
        snprintf(context, sizeof context, "%s %s", a->sub, a->target);
        if (a->label[0]) { /* the label goes on the failure */
            char line[IRC_LINE_MAX + IRC_LABEL_MAX + 64];
            snprintf(line, sizeof line, "@label=%s :%s FAIL CHATHISTORY MESSAGE_ERROR %s :%s", a->label,
                     irc_conf.server_name, context, "Messages could not be retrieved");
            irc_send(c, "%s", line);
        } else {
            fail(c, "MESSAGE_ERROR", context, "Messages could not be retrieved");
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    log_debug("irc history: %zu entries to %s in %ld us of loop time", r->count, conn_peer(c),
              (long)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000));
    free(a);
}

/* Queue q for c; a is taken (freed on failure). 0, or -1 when history is busy. */
static int ask(struct conn *c, struct history_query *q, struct asked *a)
{
    q->done = on_answer;
    q->arg = a;
    q->cookie = c->id;
    if (history_query(conn_history(c), q) < 0) {
        free(a);
        return -1;
    }
    return 0;
}

void irc_history_replay(struct conn *c, const char *room)
{
    struct history *h = conn_history(c);
    if (!h || history_config(h)->replay == 0 || (irc_st(c)->caps & CAP_CHATHISTORY))
        return;
    struct asked *a = calloc(1, sizeof *a);
    if (!a)
        return;
    a->replay = 1;
    a->keep_newest = 1;
    snprintf(a->target, sizeof a->target, "%s", room);
    struct history_query q = {.sel = HQ_LATEST, .target = room, .limit = history_config(h)->replay, .replay = 1};
    ask(c, &q, a);
}

/* ==== CHATHISTORY ==== */

unsigned irc_history_limit(const struct conn *c)
{
    /* What half the output queue holds at about 1 KiB a message, as answers are cut there. */
    size_t n = conn_limits(c)->max_outbuf / 2048;
    return n < 1 ? 1 : n > HISTORY_MAX_LIMIT ? HISTORY_MAX_LIMIT : (unsigned)n;
}

int irc_history_isupport(const struct conn *c, char *out, size_t len)
{
    if (!conn_history(c))
        return 0;
    snprintf(out, len, "CHATHISTORY=%u", irc_history_limit(c));
    return 1;
}

/* "timestamp=2026-12-02T14:35:16.123Z" (fraction optional) in ms, or -1. */
static int64_t parse_time(const char *s)
{
    int y, mo, d, h, mi, sec, used = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6 || used != 19)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1970)
        return -1;
    const char *p = s + used;
    int ms = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        if (digits == 0)
            return -1;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if (strcmp(p, "Z") != 0)
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t < 0)
        return -1;
    return (int64_t)t * 1000 + ms;
}

/* A selector: "msgid=ID" (ircencode.c's hex, a "-N" part suffix allowed),
 * "timestamp=T", or "*" where star is allowed (a point of nothing). 0, or -1. */
static int parse_point(const char *s, int star, struct history_point *p)
{
    memset(p, 0, sizeof *p);
    if (star && strcmp(s, "*") == 0)
        return 0;
    if (strncmp(s, "msgid=", 6) == 0) {
        const char *v = s + 6;
        char *end;
        if (!((*v >= '0' && *v <= '9') || (*v >= 'a' && *v <= 'f') || (*v >= 'A' && *v <= 'F')))
            return -1;
        unsigned long long id = strtoull(v, &end, 16);
        if (end - v > 16)
            return -1;
        if (*end == '-') { /* the part of a long message: the message */
            const char *q = end + 1;
            if (!*q || q[strspn(q, "0123456789")])
                return -1;
            end += strlen(end);
        }
        if (*end || id == 0)
            return -1;
        p->id = id;
        return 0;
    }
    if (strncmp(s, "timestamp=", 10) == 0) {
        int64_t t = parse_time(s + 10);
        if (t <= 0)
            return -1;
        p->time_ms = t;
        return 0;
    }
    return -1;
}

/* A point as an event id, to order two of them (a time t: its first id). */
static uint64_t point_id(const struct history_point *p)
{
    return p->id ? p->id : (uint64_t)p->time_ms << 16;
}

static const struct sub {
    const char *name;
    enum history_select sel;
    int points;     /* selectors before the limit */
    int keep_newest;
} subs[] = {
    {"LATEST", HQ_LATEST, 1, 1},  {"BEFORE", HQ_BEFORE, 1, 1},   {"AFTER", HQ_AFTER, 1, 0},
    {"AROUND", HQ_AROUND, 1, 0},  {"BETWEEN", HQ_BETWEEN, 2, 0},
};

/* A CHATHISTORY limit: 1 or more, clamped to CHATHISTORY=; -1 (FAIL sent) if not a number. */
static int parse_limit(struct conn *c, const char *limit, unsigned *out)
{
    char *end;
    long n = strtol(limit, &end, 10);
    if (*limit < '0' || *limit > '9' || *end || n < 1) {
        fail(c, "INVALID_PARAMS", limit, "Invalid limit");
        return -1;
    }
    unsigned max = irc_history_limit(c);
    *out = n > (long)max ? max : (unsigned)n;
    return 0;
}

/* CHATHISTORY TARGETS timestamp=A timestamp=B limit: the rooms the client is in
 * and (with --history-private) its private conversations that have messages
 * between A and B, each with the time of its newest one there. */
static int chathistory_targets(struct conn *c, struct irc_msg *m)
{
    struct irc_state *st = irc_st(c);
    struct history *h = conn_history(c);
    if (m->nparams < 4) {
        fail(c, "NEED_MORE_PARAMS", "TARGETS", "Missing parameters");
        return 0;
    }
    if (!h) {
        fail(c, "MESSAGE_ERROR", "TARGETS", "History is off on this server");
        return 0;
    }
    struct history_query q = {.sel = HQ_TARGETS};
    for (int i = 0; i < 2; i++)
        if (strncmp(m->params[1 + i], "timestamp=", 10) != 0 ||
            parse_point(m->params[1 + i], 0, i ? &q.b : &q.a) < 0) {
            fail(c, "INVALID_PARAMS", m->params[1 + i], "Invalid timestamp");
            return 0;
        }
    if (parse_limit(c, m->params[3], &q.limit) < 0)
        return 0;
    struct user *u = c->user;
    const char *rooms[1000];
    size_t nr = 0;
    for (uint16_t i = 0; i < u->nrooms && nr < sizeof rooms / sizeof rooms[0]; i++)
        rooms[nr++] = hub_room_name(u->rooms[i]);
    q.targets = rooms;
    q.ntargets = nr;
    q.target = history_config(h)->private_msgs ? u->name : NULL;
    struct asked *a = calloc(1, sizeof *a);
    if (!a) {
        fail(c, "MESSAGE_ERROR", "TARGETS", "Server out of memory");
        return 0;
    }
    a->targets = 1;
    a->sub = "TARGETS";
    snprintf(a->label, sizeof a->label, "%s", st->label);
    /* Each target asked about is a query of its own on the history thread: charged as lines. */
    conn_charge(c, 1.0 + (double)nr / 10);
    if (ask(c, &q, a) < 0) {
        fail(c, "MESSAGE_ERROR", "TARGETS", "History is busy, try again");
        return 0;
    }
    st->label[0] = '\0';
    return 0;
}

int irc_cmd_chathistory(struct conn *c, struct irc_msg *m)
{
    struct irc_state *st = irc_st(c);
    const char *name = m->params[0];
    const struct sub *sub = NULL;
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (text_ieq(name, subs[i].name))
            sub = &subs[i];
    if (text_ieq(name, "TARGETS"))
        return chathistory_targets(c, m);
    if (!sub) {
        fail(c, "UNKNOWN_COMMAND", name, "Unknown command");
        return 0;
    }
    if (m->nparams < 3 + sub->points) {
        fail(c, "NEED_MORE_PARAMS", sub->name, "Missing parameters");
        return 0;
    }
    struct history *h = conn_history(c);
    const char *target = m->params[1];
    if (!h) {
        char context[HISTORY_KEY_MAX + 16];
        snprintf(context, sizeof context, "%s %s", sub->name, target);
        fail(c, "MESSAGE_ERROR", context, "History is off on this server");
        return 0;
    }
    struct history_query q = {.sel = sub->sel};
    if (parse_point(m->params[2], sub->sel == HQ_LATEST, &q.a) < 0 ||
        (sub->points > 1 && parse_point(m->params[3], 0, &q.b) < 0)) {
        fail(c, "INVALID_PARAMS", m->params[2], "Invalid message reference");
        return 0;
    }
    if (parse_limit(c, m->params[2 + sub->points], &q.limit) < 0)
        return 0;
    struct asked *a = calloc(1, sizeof *a);
    if (!a) {
        fail(c, "MESSAGE_ERROR", sub->name, "Server out of memory");
        return 0;
    }
    a->sub = sub->name;
    a->keep_newest = sub->keep_newest || (sub->sel == HQ_BETWEEN && point_id(&q.a) > point_id(&q.b));
    char key[HISTORY_KEY_MAX];
    struct hub *hub = conn_hub(c);
    if (target[0] == '#') {
        struct room *r = hub_find_room(hub, target);
        if (!r || !hub_in_room(hub, c->user, target)) {
            free(a);
            char context[HISTORY_KEY_MAX + 16];
            snprintf(context, sizeof context, "%s %s", sub->name, target);
            fail(c, "INVALID_TARGET", context, "Messages could not be retrieved");
            return 0;
        }
        snprintf(a->target, sizeof a->target, "%s", hub_room_name(r));
        q.target = a->target;
    } else {
        if (!hub_valid_name(hub, target) || history_private_key(c->user->name, target, key) < 0) {
            free(a);
            char context[HISTORY_KEY_MAX + 16];
            snprintf(context, sizeof context, "%s %s", sub->name, target);
            fail(c, "INVALID_TARGET", context, "Messages could not be retrieved");
            return 0;
        }
        snprintf(a->target, sizeof a->target, "%s", target);
        q.target = key;
    }
    /* Labeled: the answer comes later (or now, but as one msg), so it carries
     * the label itself, and nothing is held for the label. */
    snprintf(a->label, sizeof a->label, "%s", st->label);
    if (target[0] != '#' && !history_config(h)->private_msgs) { /* none are kept: the empty answer, now */
        st->label[0] = '\0';
        answer(c, a, NULL, 0);
        free(a);
        return 0;
    }
    if (ask(c, &q, a) < 0) {
        char context[HISTORY_KEY_MAX + 16];
        snprintf(context, sizeof context, "%s %s", sub->name, target);
        fail(c, "MESSAGE_ERROR", context, "History is busy, try again");
        return 0;
    }
    st->label[0] = '\0';
    return 0;
}

/* ==== SEARCH (soju.im/search) ==== */

#define IRC_SEARCH_RESULTS 20 /* the most results of one SEARCH, as /search */
#define IRC_SEARCH_COST 10    /* flood-control units a search costs up front, as /search */

/* A message-tag value unescaped in place (\s space, \: semicolon, \\ backslash). */
static void unescape_value(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r != '\\') {
            *w++ = *r;
            continue;
        }
        r++;
        if (!*r)
            break;
        *w++ = *r == 's' ? ' ' : *r == ':' ? ';' : *r == 'r' ? '\r' : *r == 'n' ? '\n' : *r;
    }
    *w = '\0';
}

int irc_cmd_search(struct conn *c, struct irc_msg *m)
{
    struct irc_state *st = irc_st(c);
    struct history *h = conn_history(c);
    if (!h) {
        fail_cmd(c, "SEARCH", "MESSAGE_ERROR", "", "History is off on this server");
        return 0;
    }
    /* The attributes: one parameter, as message tags are written; the rest of the
     * line too (a client that did not escape its spaces means them). */
    char attrs[IRC_LINE_MAX + 1] = "";
    for (int i = 0; i < m->nparams; i++) {
        size_t n = strlen(attrs);
        snprintf(attrs + n, sizeof attrs - n, "%s%s", i ? " " : "", m->params[i]);
    }
    const char *text = NULL, *in = NULL;
    long limit = IRC_SEARCH_RESULTS;
    for (char *save, *kv = strtok_r(attrs, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *v = eq + 1;
        unescape_value(v);
        if (strcmp(kv, "text") == 0) {
            text = v;
        } else if (strcmp(kv, "in") == 0) {
            in = v;
        } else if (strcmp(kv, "limit") == 0) {
            char *end;
            limit = strtol(v, &end, 10);
            if (*v < '0' || *v > '9' || *end || limit < 1) {
                fail_cmd(c, "SEARCH", "INVALID_PARAMS", "limit", "Invalid limit");
                return 0;
            }
        } /* others (from, after, before): not supported, ignored */
    }
    while (text && (*text == ' ' || *text == '\t'))
        text++;
    if (!text || !*text) {
        fail_cmd(c, "SEARCH", "INVALID_PARAMS", "text", "Nothing to search for");
        return 0;
    }
    struct user *u = c->user;
    const char *rooms[1024];
    size_t nr = 0;
    if (in) { /* one room, which the asker must be in: what it may read */
        struct room *r = hub_find_room(conn_hub(c), in);
        if (in[0] != '#' || !r || !hub_in_room(conn_hub(c), u, in)) {
            fail_cmd(c, "SEARCH", "INVALID_TARGET", in, "Messages could not be retrieved");
            return 0;
        }
        rooms[nr++] = hub_room_name(r);
    } else {
        for (uint16_t i = 0; i < u->nrooms && nr < sizeof rooms / sizeof rooms[0]; i++)
            rooms[nr++] = hub_room_name(u->rooms[i]);
    }
    struct asked *a = calloc(1, sizeof *a);
    if (!a) {
        fail_cmd(c, "SEARCH", "MESSAGE_ERROR", "", "Server out of memory");
        return 0;
    }
    a->search = 1;
    a->sub = "SEARCH";
    snprintf(a->target, sizeof a->target, "\"%.200s\"", text);
    snprintf(a->label, sizeof a->label, "%s", st->label);
    conn_charge(c, IRC_SEARCH_COST);
    if (nr == 0) { /* in no room: nothing it may read */
        st->label[0] = '\0';
        answer(c, a, NULL, 0);
        free(a);
        return 0;
    }
    struct history_query q = {.sel = HQ_SEARCH, .words = text, .targets = rooms, .ntargets = nr,
                              .limit = limit > IRC_SEARCH_RESULTS ? IRC_SEARCH_RESULTS : (unsigned)limit};
    if (ask(c, &q, a) < 0) {
        fail_cmd(c, "SEARCH", "MESSAGE_ERROR", "", "History is busy, try again");
        return 0;
    }
    st->label[0] = '\0';
    return 0;
}
