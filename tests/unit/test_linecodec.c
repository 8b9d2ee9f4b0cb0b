/* test_linecodec.c - the plain line protocol as a codec (codecs/line/), over
 * socketpairs with a real hub: the greeting, the current room (plain-protocol
 * state: the hub has none), bye, and the codec's words for limits and refusals. */
#include "server/codecs/line/linecodec.h"

#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "core/loop.h"
#include "server/conn.h"
#include "server/hub.h"

#define MAXFD 64

static struct loop *L;
static struct hub *H;
static struct conn_profile P;

struct peer {
    int fd;
    struct conn *c;
    char buf[16384];
    size_t len;
    int eof;
};

static void turns(void)
{
    for (int i = 0; i < 3; i++)
        loop_turn(L, 0);
}

static void fill(struct peer *p)
{
    for (;;) {
        ssize_t n = read(p->fd, p->buf + p->len, sizeof p->buf - 1 - p->len);
        if (n == 0)
            p->eof = 1;
        if (n <= 0)
            break;
        p->len += (size_t)n;
    }
    p->buf[p->len] = '\0';
}

/* Take the next line the server sent p ("" if none yet, after a few turns). */
static const char *next(struct peer *p)
{
    static char line[4096];
    char *nl;
    for (int tries = 0; !(nl = memchr(p->buf, '\n', p->len)) && tries < 50; tries++) {
        loop_turn(L, 10);
        fill(p);
    }
    if (!nl)
        return "";
    size_t n = (size_t)(nl - p->buf);
    memcpy(line, p->buf, n);
    line[n] = '\0';
    memmove(p->buf, nl + 1, p->len - n - 1);
    p->len -= n + 1;
    return line;
}

/* Skip lines until one equals want; 1 if found. */
static int expect(struct peer *p, const char *want)
{
    for (int i = 0; i < 20; i++) {
        const char *l = next(p);
        if (!*l)
            return 0;
        if (strcmp(l, want) == 0)
            return 1;
    }
    return 0;
}

static void say(struct peer *p, const char *text)
{
    char line[1024];
    int n = snprintf(line, sizeof line, "%s\n", text);
    if (write(p->fd, line, (size_t)n) != n)
        return;
    turns();
}

static void connect_peer(struct peer *p, const char *addr)
{
    memset(p, 0, sizeof *p);
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv);
    p->fd = sv[0];
    p->c = conn_new(sv[1], addr, &P);
    turns();
}

static void test_greeting(void)
{
    struct peer a;
    connect_peer(&a, "10.1.0.1:1");
    CHECK_STR(next(&a), "-- welcome to natter, guest1! /nick NAME picks a name, /help lists commands",
              "a new connection is welcomed with its guest name");
    CHECK_STR(next(&a), "-- guest1 joined #lobby", "and joins #lobby, which it is told");
    CHECK(a.c->user && a.c->user->nrooms == 1, "the line codec registered a hub user in #lobby");
    say(&a, "bye");
    CHECK_STR(next(&a), "-- bye guest1", "bye is answered with the user's name");
    fill(&a);
    CHECK(a.eof || (turns(), fill(&a), a.eof), "then the connection is closed");
    close(a.fd);
    turns();
}

static void test_current_room(void)
{
    struct peer a, b;
    connect_peer(&a, "10.1.0.2:1");
    connect_peer(&b, "10.1.0.2:2");
    say(&a, "/nick alice");
    say(&b, "/nick bob");
    say(&a, "/join #r1");
    say(&a, "/join #r2");
    say(&a, "/join #r3");
    say(&b, "/join #r1");
    say(&b, "/join #r2");
    say(&b, "/join #r3");
    say(&a, "a");
    CHECK(expect(&b, "#r3 <alice> a"), "a line without a command goes to the room joined last");
    say(&a, "/join r1");
    CHECK(expect(&a, "-- you are now in #r1"), "joining a room one is in makes it current, and says so");
    say(&a, "b");
    CHECK(expect(&b, "#r1 <alice> b"), "...and lines go there");
    say(&a, "/part bye now");
    CHECK(expect(&b, "-- alice left #r1 (bye now)"), "/part without a room leaves the current one, with the reason");
    say(&a, "c");
    CHECK(expect(&b, "#r3 <alice> c"), "after parting the current room, the room joined last is current");
    say(&a, "/part #r2");
    say(&a, "d");
    CHECK(expect(&b, "#r3 <alice> d"), "parting another room keeps the current one");
    say(&a, "/me waves");
    CHECK(expect(&b, "#r3 * alice waves"), "/me acts in the current room");
    say(&a, "/who");
    CHECK(expect(&a, "-- #r3: @alice bob (2 users)"), "/who lists the current room");
    say(&a, "/part #r3");
    say(&a, "/part #lobby");
    say(&a, "anyone?");
    CHECK(expect(&a, "!! you are in no room (try /join #lobby)"), "in no room, a line is answered so");
    say(&a, "/me shrugs");
    CHECK(expect(&a, "!! you are in no room (try /join #lobby)"), "in no room, /me is answered so");
    say(&a, "/part");
    CHECK(expect(&a, "!! you are in no room (try /join #lobby)"), "in no room, /part is answered so");
    say(&a, "/who");
    CHECK(expect(&a, "!! you are in no room (try /join #lobby)"), "in no room, /who is answered so");
    say(&a, "/join lobby");
    say(&a, "back");
    CHECK(expect(&b, "#lobby <alice> back"), "joining again gives a current room");
    say(&a, "bye");
    say(&b, "bye");
    close(a.fd);
    close(b.fd);
    turns();
}

static void test_errors_and_limits(void)
{
    struct peer a;
    connect_peer(&a, "10.1.0.3:1");
    next(&a), next(&a);
    char longline[200];
    memset(longline, 'x', sizeof longline - 1);
    longline[sizeof longline - 1] = '\0';
    say(&a, longline);
    CHECK_STR(next(&a), "!! line too long (max 128 bytes), discarded", "an overlong line is refused in the codec's words");
    say(&a, "/join #a+b");
    CHECK_STR(next(&a), "!! invalid room name: #a+b", "hub errors are worded by the codec");
    line_codec.limit(a.c, LIMIT_RATE, 10);
    turns();
    CHECK_STR(next(&a), "!! slow down: more than 10 lines per second, reading paused", "LIMIT_RATE in words");
    line_codec.limit(a.c, LIMIT_FLOOD, 30);
    turns();
    CHECK_STR(next(&a), "!! flooding, disconnected", "LIMIT_FLOOD in words");
    line_codec.limit(a.c, LIMIT_LOGIN, 300);
    turns();
    CHECK_STR(next(&a), "!! nothing received for 300 seconds, disconnected", "LIMIT_LOGIN in words");
    line_codec.limit(a.c, LIMIT_IDLE, 600);
    turns();
    CHECK_STR(next(&a), "!! idle for 600 seconds, disconnected", "LIMIT_IDLE in words");
    CHECK_STR(line_codec.refusal(LIMIT_FULL), "!! server full, try again later\n", "the refusal when full");
    CHECK_STR(line_codec.refusal(LIMIT_PER_ADDR), "!! too many connections from your address\n",
              "the refusal for too many from one address");
    say(&a, "bye");
    close(a.fd);
    turns();
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    L = loop_new(MAXFD);
    struct hub_limits hl = {.max_name = 24, .max_rooms = 16, .max_announce = 200};
    H = hub_new(&hl);
    P = (struct conn_profile){.name = "plain", .codec = &line_codec, .hub = H,
                              .lim = {.max_line = 128, .max_outbuf = 1 << 16, .burst = 50}};
    if (!L || !H || conn_init(L, MAXFD) < 0)
        return 1;
    test_greeting();
    test_current_room();
    test_errors_and_limits();
    CHECK_INT(hub_user_count(H), 0, "every user left the hub with its connection");
    hub_shutdown(H);
    conn_shutdown();
    hub_free(H);
    loop_free(L);
    return check_done();
}
