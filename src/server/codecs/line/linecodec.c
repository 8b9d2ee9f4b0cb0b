/* linecodec.c - the plain line protocol: lines in, hub calls; hub events, lines out.
 * Every line format here is listed in docs/protocol.md. */
#include "server/codecs/line/linecodec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/text.h"
#include "server/codecs/line/commands.h"
#include "server/codecs/line/linehistory.h"
#include "server/codecs/line/keepers.h"
#include "server/codecs/line/lineuser.h"
#include "core/lineframe.h"
#include "core/loop.h"
#include "server/conn.h"
#include "server/hub.h"
#include "server/roommodes.h"

/* ==== Events to lines ==== */

/* The WHO and ROOMS listings, one line each:
 *   -- #lobby: a b (2 users)
 *   -- #lobby "bo": bob boris (2 users)
 *   -- #lobby: a b ... (100 of 1500 users; /who #lobby TEXT lists those whose names contain TEXT)
 *   -- rooms: #a (3) #b (1)          -- rooms "de": none
 *   -- rooms: #a (3) ... (100 of 2000 rooms; /rooms TEXT lists those whose names contain TEXT) */
static struct msg *encode_list(const struct hub_event *ev)
{
    size_t cap = 256 + (ev->room ? 2 * strlen(ev->room) : 0) + (ev->filter ? strlen(ev->filter) : 0);
    for (size_t i = 0; i < ev->count; i++)
        cap += strlen(ev->names[i]) + 16;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    int who = ev->type == EV_WHO;
    const char *what = who ? "user" : "room";
    size_t n = (size_t)snprintf(s, cap, "-- %s", who ? ev->room : "rooms");
    if (ev->filter)
        n += (size_t)snprintf(s + n, cap - n, " \"%s\"", ev->filter);
    n += (size_t)snprintf(s + n, cap - n, ":");
    for (size_t i = 0; i < ev->count; i++) {
        if (who) {
            unsigned m = ev->modes ? ev->modes[i] : 0;
            n += (size_t)snprintf(s + n, cap - n, " %s%s", m & MM_OP ? "@" : m & MM_VOICE ? "+" : "", ev->names[i]);
        } else
            n += (size_t)snprintf(s + n, cap - n, " %s (%u)", ev->names[i], ev->sizes[i]);
    }
    if (ev->count == 0)
        n += (size_t)snprintf(s + n, cap - n, " none");
    if (ev->count < ev->total)
        n += (size_t)snprintf(s + n, cap - n, " ... (%zu of %zu %ss; %s%s TEXT lists those whose names contain TEXT)",
                              ev->count, ev->total, what, who ? "/who " : "/rooms", who ? ev->room : "");
    else if (who)
        n += (size_t)snprintf(s + n, cap - n, " (%zu user%s)", ev->total, ev->total == 1 ? "" : "s");
    n += (size_t)snprintf(s + n, cap - n, "\n");
    struct msg *m = msg_new(s, n);
    free(s);
    return m;
}

/* "-- NAME what" or "-- NAME what (reason)". The reason is formatted straight
 * into the msg: an intermediate buffer could cut a long one (and a UTF-8
 * sequence) in half. */
static struct msg *notice_with_reason(const char *name, const char *what, const char *reason)
{
    if (!reason || !*reason)
        return msg_printf("-- %s %s\n", name, what);
    return msg_printf("-- %s %s (%s)\n", name, what, reason);
}

static struct msg *encode_text(const struct hub_event *ev, const char *text)
{
    int notice = (ev->flags & HUB_NOTICE) != 0;
    switch (ev->type) {
    case EV_SAY:
        return notice ? msg_printf("%s -%s- %s\n", ev->room, ev->from, text)
                      : msg_printf("%s <%s> %s\n", ev->room, ev->from, text);
    case EV_ACTION:
        return msg_printf("%s * %s %s\n", ev->room, ev->from, text);
    case EV_PRIVMSG:
        if (ev->flags & HUB_ACTION)
            return msg_printf("*%s* * %s %s\n", ev->from, ev->from, text);
        return notice ? msg_printf("-%s- %s\n", ev->from, text) : msg_printf("*%s* %s\n", ev->from, text);
    case EV_PRIVECHO:
        if (ev->flags & HUB_ACTION)
            return msg_printf("-> *%s* * %s %s\n", ev->to, ev->from, text);
        return notice ? msg_printf("-> -%s- %s\n", ev->to, text) : msg_printf("-> *%s* %s\n", ev->to, text);
    case EV_TOPIC:
        if (!*text)
            return msg_printf("-- %s cleared the topic of %s\n", ev->from, ev->room);
        return msg_printf("-- %s set the topic of %s: %s\n", ev->from, ev->room, text);
    case EV_PART:
    {
        char what[sizeof "left " + HUB_ROOM_MAX];
        snprintf(what, sizeof what, "left %s", ev->room);
        return notice_with_reason(ev->from, what, text);
    }
    case EV_QUIT:
        return notice_with_reason(ev->from, "quit", text);
    default:
        return NULL;
    }
}

/* Text from an IRC client may hold formatting codes (bold, colours): those are
 * taken out for terminals. A CTCP request other than ACTION (^AVERSION^A) is for
 * IRC clients alone: plain users get nothing. */
static struct msg *encode_user_text(const struct hub_event *ev)
{
    const char *text = ev->text ? ev->text : "";
    if (ev->flags & HUB_TAGMSG)
        return NULL; /* tags alone: nothing a terminal shows */
    if (text[0] == '\x01' && ev->type != EV_PART && ev->type != EV_QUIT && ev->type != EV_TOPIC)
        return NULL;
    if (!text_has_controls(text))
        return encode_text(ev, text);
    char *clean_text = strdup(text);
    if (!clean_text)
        return NULL;
    text_strip_format(clean_text, clean_text);
    struct msg *m = encode_text(ev, clean_text);
    free(clean_text);
    return m;
}

static struct msg *encode(const struct hub_event *ev, const struct user *to)
{
    (void)to; /* every plain user reads the same */
    switch (ev->type) {
    case EV_SAY:
    case EV_ACTION:
    case EV_PRIVMSG:
    case EV_PRIVECHO:
    case EV_TOPIC:
    case EV_PART:
    case EV_QUIT:
        return encode_user_text(ev);
    case EV_AWAY:
        return NULL; /* shown when someone writes to an away user */
    case EV_REALNAME:
        return NULL; /* plain users have no real names */
    case EV_JOIN:
        return msg_printf("-- %s joined %s\n", ev->from, ev->room);
    case EV_NICK:
        return msg_printf("-- %s is now known as %s\n", ev->from, ev->to);
    case EV_WHO:
    case EV_ROOMS:
        return encode_list(ev);
    case EV_SHUTDOWN:
        return msg_printf("-- server shutting down\n");
    case EV_SUMMARY:
        return msg_printf("-- %s: %u joined, %u left in the last %u s\n", ev->room, ev->joined, ev->left, ev->window_s);
    case EV_MODE:
    case EV_KICK:
    case EV_WALLOPS:
    case EV_INVITE:
    case EV_KILL:
        return keepers_encode(ev); /* keepers.c */
    }
    return NULL;
}

static void deliver(void *ctx, struct msg *m)
{
    conn_send(ctx, m);
}

static const char *userhost(const struct user *u, char *out, size_t len)
{
    (void)u;
    snprintf(out, len, "%s", LINE_USERHOST); /* every plain user's: see protocol.md, "Masks" */
    return out;
}

static void drop(void *ctx)
{
    conn_close(ctx, "killed", 1);
}

static const struct user_ops line_ops = {encode, deliver, userhost, drop};

/* ==== Lines to hub calls ==== */

/* Sanitised copy of the current line; grown to fit the longest line seen. */
static char *clean;
static size_t clean_cap;

/* One line: "bye", a command, or something to say in the current room.
 * Returns LINE_CLOSING when the connection is closing, LINE_AGAIN when the
 * server was too busy for it this turn (nothing happened), else 0. */
static int run_line(struct conn *c, const char *line, size_t len)
{
    if (3 * len + 1 > clean_cap) {
        char *p = realloc(clean, 3 * len + 1);
        if (!p) {
            line_error(c, HUB_ENOMEM, NULL);
            return 0;
        }
        clean = p;
        clean_cap = 3 * len + 1;
    }
    size_t n = text_sanitize(clean, line, len);
    if (n == 0)
        return 0; /* nothing said: not even the end of the login timeout */
    conn_spoke(c);
    if (strcmp(clean, "bye") == 0)
        return line_quit(c, NULL);
    if (clean[0] == '/' && clean[1] != '/')
        return commands_run(c, clean);
    const char *text = clean[0] == '/' ? clean + 1 : clean;
    const char *room = line_current(c);
    if (!room)
        line_reply(c, "!! you are in no room (try /join #lobby)");
    else {
        enum hub_err err = hub_say(conn_hub(c), c->user, room, text);
        if (err == HUB_EBUSY)
            return LINE_AGAIN;
        line_error(c, err, room);
    }
    return 0;
}

/* One framed line (NULL: one that was too long), then its flood-control cost.
 * A line the server is too busy for this turn is left unconsumed, and the
 * connection yields its turn (conn_yield): it is offered again next turn. */
static int lc_line(void *ctx, char *line, size_t len)
{
    struct conn *c = ctx;
    if (conn_closing(c) || !c->user)
        return 0;
    size_t max = conn_limits(c)->max_line;
    if (!line) {
        conn_spoke(c);
        line_reply(c, "!! line too long (max %zu bytes), discarded", max);
        return conn_spend(c, 1); /* and its bytes, as lc_input counts them */
    }
    int rc = run_line(c, line, len);
    if (rc == LINE_AGAIN) {
        conn_yield(c);
        return LINEFRAME_AGAIN;
    }
    if (rc)
        return 0;
    return conn_spend(c, 1 + (double)(len / LINE_TOKEN_BYTES));
}

/* ==== An IRC client on the plain port ====
 *
 * With line_hand_irc_to set (natterd), a new plain connection is greeted only
 * after GREET_DELAY_MS, or as soon as it sends something: an IRC client speaks
 * first (CAP, NICK, USER or PASS), and is handed to the IRC codec before it ever
 * sees a plain line or the others see a guest arrive. Connections waiting to be
 * greeted are kept by id in arrival order, so one timer serves them all. One
 * that speaks IRC later than that is still handed over at its first line (the
 * guest it was greeted as quits). */
#define GREET_DELAY_MS 100

static const struct codec *irc_codec;
static char waiting; /* c->state while a connection waits to be greeted */

struct greet_wait {
    uint64_t id;
    long long at;
};
static struct {
    struct greet_wait *q;
    size_t head, n, cap;
    unsigned long timer;
} G;

static int greet(struct conn *c);

void line_hand_irc_to(const struct codec *irc)
{
    irc_codec = irc;
}

static void on_greet_timer(struct loop *l, void *data)
{
    (void)data;
    G.timer = 0;
    long long now = loop_now_ms();
    while (G.n && G.q[G.head].at <= now) {
        struct conn *c = conn_by_id(G.q[G.head].id);
        G.head++, G.n--;
        if (c && c->codec == &line_codec && c->state == &waiting && greet(c) < 0)
            conn_close(c, "out of memory", 0);
    }
    if (G.n) {
        G.timer = loop_add_timer(l, G.q[G.head].at - now, on_greet_timer, NULL);
        return;
    }
    free(G.q);
    memset(&G, 0, sizeof G);
}

static int wait_to_greet(struct conn *c)
{
    if (G.head + G.n == G.cap) {
        if (G.head > 0) {
            memmove(G.q, G.q + G.head, G.n * sizeof *G.q);
            G.head = 0;
        } else {
            size_t cap = G.cap ? 2 * G.cap : 64;
            struct greet_wait *q = realloc(G.q, cap * sizeof *q);
            if (!q)
                return -1;
            G.q = q;
            G.cap = cap;
        }
    }
    G.q[G.head + G.n++] = (struct greet_wait){c->id, loop_now_ms() + GREET_DELAY_MS};
    if (!G.timer && !(G.timer = loop_add_timer(conn_loop(), GREET_DELAY_MS, on_greet_timer, NULL))) {
        G.n--;
        return -1;
    }
    c->state = &waiting;
    return 0;
}

/* Does data start with an IRC client's first command? 1 yes, 0 no, -1 cannot
 * tell yet (the first word is not complete). */
static int irc_first_word(const char *data, size_t len)
{
    static const char *const words[] = {"CAP", "NICK", "USER", "PASS"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t n = strlen(words[i]);
        size_t k = len < n ? len : n;
        if (memcmp(data, words[i], k) != 0)
            continue;
        if (len <= n)
            return -1;
        return data[n] == ' ' || data[n] == '\r' || data[n] == '\n';
    }
    return 0;
}

static size_t lc_input(struct conn *c, char *data, size_t len)
{
    if (c->state == &waiting) { /* the first bytes: an IRC client's, or a plain user's */
        int irc = irc_first_word(data, len);
        if (irc < 0)
            return 0; /* the rest of the word, or the greeting, comes soon */
        if (irc > 0) {
            conn_set_codec(c, irc_codec); /* it is offered all of data */
            return 0;
        }
        if (greet(c) < 0) {
            conn_close(c, "out of memory", 0);
            return len;
        }
    } else if (irc_codec && !conn_has_spoken(c) && irc_first_word(data, len) > 0) {
        /* An IRC client slower to speak than GREET_DELAY_MS: it was greeted as
         * a guest, which now quits, but its lines are not said in #lobby. */
        conn_set_codec(c, irc_codec);
        return 0;
    }
    size_t discarded = 0;
    size_t used = lineframe_input(&c->frame, data, len, conn_limits(c)->max_line, lc_line, c, &discarded);
    /* Bytes thrown away cost what bytes of a line cost: reading them is work. */
    if (discarded && !conn_closing(c))
        conn_spend(c, (double)discarded / LINE_TOKEN_BYTES);
    return used;
}

static int lc_open(struct conn *c)
{
    if (irc_codec)
        return wait_to_greet(c);
    return greet(c);
}

static int greet(struct conn *c)
{
    struct hub *h = conn_hub(c);
    c->state = NULL;
    if (hub_connect(h, &line_ops, c, NULL, &c->user) != HUB_OK)
        return -1;
    c->user->tag = conn_log_id(c);
    line_reply(c, "-- welcome to natter, %s! /nick NAME picks a name, /help lists commands", c->user->name);
    if (c->profile->motd)
        line_reply(c, "-- %s", c->profile->motd);
    const char *joined;
    enum hub_err err = hub_join(h, c->user, HUB_DEFAULT_ROOM, &joined);
    if (err == HUB_OK && line_set_current(c, joined) < 0)
        err = HUB_ENOMEM;
    line_error(c, err, HUB_DEFAULT_ROOM);
    if (err == HUB_OK)
        line_history_replay(c, joined);
    return 0;
}

static void lc_limit(struct conn *c, enum conn_limit what, double value)
{
    switch (what) {
    case LIMIT_RATE:
        line_reply(c, "!! slow down: more than %g lines per second, reading paused", value);
        return;
    case LIMIT_FLOOD:
        line_reply(c, "!! flooding, disconnected");
        return;
    case LIMIT_LOGIN:
        line_reply(c, "!! nothing received for %g seconds, disconnected", value);
        return;
    case LIMIT_IDLE:
        line_reply(c, "!! idle for %g seconds, disconnected", value);
        return;
    case LIMIT_QUIET:
        return; /* the plain protocol has no ping: idle users are just dropped */
    case LIMIT_FULL:
    case LIMIT_PER_ADDR:
    case LIMIT_CONNECT_RATE:
        return; /* refusals: see lc_refusal */
    }
}

static const char *lc_refusal(enum conn_limit what)
{
    switch (what) {
    case LIMIT_PER_ADDR:
        return "!! too many connections from your address\n";
    case LIMIT_CONNECT_RATE:
        return "!! too many new connections from your address, try again in a minute\n";
    default:
        return "!! server full, try again later\n";
    }
}

static void lc_close(struct conn *c, const char *reason)
{
    if (c->user) {
        hub_disconnect(conn_hub(c), c->user, reason);
        c->user = NULL;
    }
    if (c->state == &waiting)
        c->state = NULL;
    line_forget(c);
    if (!clean_cap || conn_count() > 1)
        return;
    free(clean); /* the last connection is going: give the buffer back */
    clean = NULL;
    clean_cap = 0;
}

static const char *lc_who(const struct conn *c)
{
    return c->user ? c->user->name : NULL;
}

const struct codec line_codec = {
    .name = "line",
    .open = lc_open,
    .input = lc_input,
    .limit = lc_limit,
    .refusal = lc_refusal,
    .close = lc_close,
    .who = lc_who,
};
