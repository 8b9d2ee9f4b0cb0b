/* test_lineframe.c - line framing (core/lineframe.c), through lineframe_feed: the
 * framer plus the kept input (an inbuf), as a reader that reads in pieces sees
 * them. conn.c frames the same way, keeping what the codec did not consume. */
#include "core/lineframe.h"

#include <stdint.h>
#include <stdlib.h>

#include "check.h"

#define MAXLINES 64
struct rec {
    int n;                /* callbacks so far */
    char *line[MAXLINES]; /* NULL for "overlong" */
    size_t len[MAXLINES];
    int stop_at;          /* return 0 (stop) from callback number stop_at (1-based), 0 = never */
};

struct framer {
    struct inbuf kept;
    uint8_t skipping;
};

static int on_line(void *ctx, char *line, size_t len)
{
    struct rec *r = ctx;
    if (r->n < MAXLINES) {
        r->line[r->n] = line ? memcpy(malloc(len + 1), line, len + 1) : NULL;
        r->len[r->n] = len;
    }
    r->n++;
    return !(r->stop_at && r->n == r->stop_at);
}

static void rec_clear(struct rec *r)
{
    for (int i = 0; i < r->n && i < MAXLINES; i++)
        free(r->line[i]);
    memset(r, 0, sizeof *r);
}

static int feed_n(struct framer *f, struct rec *r, const char *s, size_t n, size_t max)
{
    return lineframe_feed(&f->kept, &f->skipping, s, n, max, on_line, r);
}

/* Feed s in pieces of `step` bytes (0 = all at once); returns the last result. */
static int feed(struct framer *f, struct rec *r, const char *s, size_t step, size_t max)
{
    size_t n = strlen(s);
    if (!step)
        return feed_n(f, r, s, n, max);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i += step)
        rc = feed_n(f, r, s + i, n - i < step ? n - i : step, max);
    return rc;
}

/* Offer the kept input again without new bytes (what conn.c does on a resume). */
static int resume(struct framer *f, struct rec *r, size_t max)
{
    return feed_n(f, r, "", 0, max);
}

/* A new connection: nothing kept, not skipping. */
static void reset(struct framer *f)
{
    inbuf_clear(&f->kept);
    f->skipping = 0;
}

static int lines_are(const struct rec *r, int n, const char *const *want)
{
    if (r->n != n)
        return 0;
    for (int i = 0; i < n; i++) {
        if (!want[i] != !r->line[i])
            return 0;
        if (want[i] && (strcmp(want[i], r->line[i]) != 0 || strlen(want[i]) != r->len[i]))
            return 0;
    }
    return 1;
}

static void test_basics(void)
{
    struct framer f = {0};
    struct rec r = {0};

    feed(&f, &r, "hello\n", 0, 100);
    CHECK(lines_are(&r, 1, (const char *[]){"hello"}), "lineframe: a line ending in \\n");
    CHECK(f.kept.data == NULL && f.kept.len == 0, "lineframe: nothing is kept after a complete line");
    rec_clear(&r);

    feed(&f, &r, "hello\r\n", 0, 100);
    CHECK(lines_are(&r, 1, (const char *[]){"hello"}), "lineframe: \\r\\n is stripped like \\n");
    rec_clear(&r);

    feed(&f, &r, "a\r\rb\r\n", 0, 100);
    CHECK(lines_are(&r, 1, (const char *[]){"a\r\rb"}), "lineframe: only one \\r right before \\n is stripped");
    rec_clear(&r);

    feed(&f, &r, "one\ntwo\r\nthree\n", 0, 100);
    CHECK(lines_are(&r, 3, (const char *[]){"one", "two", "three"}), "lineframe: several lines in one feed");
    rec_clear(&r);

    feed(&f, &r, "\n\r\n\nx\n", 0, 100);
    CHECK(lines_are(&r, 4, (const char *[]){"", "", "", "x"}), "lineframe: empty lines are passed on as empty");
    rec_clear(&r);

    feed(&f, &r, "hel", 0, 100);
    CHECK(r.n == 0 && f.kept.data != NULL && f.kept.len == 3, "lineframe: an unfinished line is kept");
    feed(&f, &r, "lo\nwor", 0, 100);
    feed(&f, &r, "ld\r", 0, 100);
    feed(&f, &r, "\n", 0, 100);
    CHECK(lines_are(&r, 2, (const char *[]){"hello", "world"}), "lineframe: lines split across feeds");
    CHECK(f.kept.data == NULL, "lineframe: the kept line is freed once complete");
    rec_clear(&r);

    feed(&f, &r, "ab\r\ncd\n\nlast one\r\n", 1, 100);
    CHECK(lines_are(&r, 4, (const char *[]){"ab", "cd", "", "last one"}), "lineframe: 1-byte feeds");
    CHECK(f.kept.data == NULL, "lineframe: 1-byte feeds keep nothing after the last line");
    rec_clear(&r);

    char buf[] = "in place\nsecond\n";
    uint8_t skip = 0;
    size_t used = lineframe_input(&skip, buf, strlen(buf), 100, on_line, &r, NULL);
    CHECK(used == strlen("in place\nsecond\n") && lines_are(&r, 2, (const char *[]){"in place", "second"}) &&
              buf[8] == '\0',
          "lineframe_input terminates each line in place and consumes them all");
    rec_clear(&r);
    char part[] = "done\npart";
    used = lineframe_input(&skip, part, strlen(part), 100, on_line, &r, NULL);
    CHECK(used == 5 && r.n == 1, "lineframe_input leaves an unfinished line unconsumed");
    rec_clear(&r);
    reset(&f);
}

static void test_limits(void)
{
    struct framer f = {0};
    struct rec r = {0};
    enum { MAX = 16 };

    /* Exactly max bytes: accepted, in one feed, byte by byte and with \r\n. */
    int ok = 1;
    for (size_t step = 0; step <= 17; step++) {
        feed(&f, &r, "0123456789abcdef\n", step, MAX);
        ok &= lines_are(&r, 1, (const char *[]){"0123456789abcdef"});
        rec_clear(&r);
        feed(&f, &r, "0123456789abcdef\r\n", step, MAX);
        ok &= lines_are(&r, 1, (const char *[]){"0123456789abcdef"});
        rec_clear(&r);
    }
    CHECK(ok, "lineframe: a line of exactly max bytes is accepted (any split, \\n or \\r\\n)");
    reset(&f);

    /* max + 1 bytes: one NULL callback, then the next line works. */
    feed(&f, &r, "0123456789abcdefX\nnext\n", 0, MAX);
    CHECK(lines_are(&r, 2, (const char *[]){NULL, "next"}),
          "lineframe: max+1 bytes in one feed: one NULL, then the next line");
    rec_clear(&r);
    reset(&f);

    ok = 1;
    for (size_t step = 1; step <= 18; step++) {
        feed(&f, &r, "0123456789abcdefX\nnext\n", step, MAX);
        ok &= lines_are(&r, 2, (const char *[]){NULL, "next"});
        rec_clear(&r);
        reset(&f);
    }
    CHECK(ok, "lineframe: max+1 bytes split at any point: one NULL, then the next line");

    ok = 1;
    for (size_t step = 0; step <= 18; step++) {
        feed(&f, &r, "0123456789abcdefX\r\nnext\n", step, MAX);
        ok &= lines_are(&r, 2, (const char *[]){NULL, "next"});
        rec_clear(&r);
        reset(&f);
    }
    CHECK(ok, "lineframe: max+1 bytes before \\r\\n: one NULL at any split");

    /* A long line over several feeds: NULL as soon as it is too long, once. */
    feed(&f, &r, "0123456789", 0, MAX);
    feed(&f, &r, "0123456789", 0, MAX);
    CHECK(r.n == 1 && r.line[0] == NULL, "lineframe: overlong is reported before the newline arrives");
    CHECK(f.kept.data == NULL && f.skipping, "lineframe: an overlong line is not kept while skipping");
    feed(&f, &r, "0123456789012345678901234567890123456789", 0, MAX);
    feed(&f, &r, "more\r\nok\n", 0, MAX);
    CHECK(lines_are(&r, 2, (const char *[]){NULL, "ok"}),
          "lineframe: the rest of an overlong line is discarded up to its newline, with one NULL");
    rec_clear(&r);
    reset(&f);

    /* Overlong then more lines in the same feed, and a big line in one feed. */
    char big[200];
    memset(big, 'y', sizeof big);
    memcpy(big + 150, "\nafter\n", 8);
    feed(&f, &r, big, 0, MAX);
    CHECK(lines_are(&r, 2, (const char *[]){NULL, "after"}), "lineframe: a long line in one feed is rejected alone");
    rec_clear(&r);
    reset(&f);
}

/* A callback's stop (flood control pausing, a connection closing, a codec
 * switched) ends the feed after that line and keeps the rest for later. */
static void test_stop(void)
{
    struct framer f = {0};
    struct rec r = {0};
    enum { MAX = 16 };

    r.stop_at = 2;
    int rc = feed(&f, &r, "a\nb\nc\nd", 0, MAX);
    CHECK(rc == 1 && r.n == 2 && f.kept.len == 3 && memcmp(f.kept.data, "c\nd", 3) == 0,
          "lineframe: a stop ends the feed with 1 and keeps the rest");
    r.stop_at = 0;
    rc = resume(&f, &r, MAX);
    CHECK(rc == 0 && lines_are(&r, 3, (const char *[]){"a", "b", "c"}) && f.kept.len == 1,
          "lineframe: offering the kept input again frames it and keeps its unfinished line");
    feed(&f, &r, "\n", 0, MAX);
    CHECK(lines_are(&r, 4, (const char *[]){"a", "b", "c", "d"}), "lineframe: after a resume, new input finishes the kept line");
    CHECK(resume(&f, &r, MAX) == 0 && r.n == 4, "lineframe: a resume with nothing kept does nothing");
    rec_clear(&r);
    reset(&f);

    r.stop_at = 1;
    feed(&f, &r, "only\n", 0, MAX);
    r.stop_at = 0;
    rc = resume(&f, &r, MAX);
    CHECK(rc == 0 && r.n == 1 && f.kept.data == NULL,
          "lineframe: a stop on the last line keeps nothing, and resuming it is harmless");
    rec_clear(&r);
    reset(&f);

    r.stop_at = 1;
    feed(&f, &r, "spl", 0, MAX);
    rc = feed(&f, &r, "it\nnext\n", 0, MAX);
    r.stop_at = 0;
    CHECK(rc == 1 && r.n == 1 && strcmp(r.line[0], "split") == 0, "lineframe: a stop on a line finished from kept input");
    resume(&f, &r, MAX);
    CHECK(lines_are(&r, 2, (const char *[]){"split", "next"}), "lineframe: ...and its resume delivers the rest");
    rec_clear(&r);
    reset(&f);

    r.stop_at = 2;
    feed(&f, &r, "1\n2\n3\n4\n", 0, MAX);
    r.stop_at = 3;
    rc = resume(&f, &r, MAX);
    CHECK(rc == 1 && r.n == 3 && f.kept.len == 2, "lineframe: a resume can stop again");
    r.stop_at = 0;
    rc = resume(&f, &r, MAX);
    CHECK(rc == 0 && lines_are(&r, 4, (const char *[]){"1", "2", "3", "4"}) && f.kept.data == NULL,
          "lineframe: repeated stops lose and repeat nothing");
    rec_clear(&r);
    reset(&f);

    r.stop_at = 1;
    char big[64];
    memset(big, 'z', sizeof big);
    memcpy(big + 40, "\nafter\n", 8);
    rc = feed_n(&f, &r, big, 48, MAX);
    r.stop_at = 0;
    resume(&f, &r, MAX);
    CHECK(rc == 1 && lines_are(&r, 2, (const char *[]){NULL, "after"}), "lineframe: a stop on the overlong callback");
    rec_clear(&r);
    reset(&f);

    r.stop_at = 1;
    rc = feed(&f, &r, "0123456789abcdefXYZ", 0, MAX);
    CHECK(rc == 1 && r.n == 1 && r.line[0] == NULL && f.kept.data == NULL && f.skipping,
          "lineframe: a stop on an overlong unfinished line: it is discarded whole all the same");
    rec_clear(&r);
    reset(&f);

    rc = feed(&f, &r, "x\ny\n", 0, MAX);
    CHECK(rc == 0, "lineframe: a feed nobody stopped returns 0");
    rec_clear(&r);

    feed(&f, &r, "unfinished", 0, MAX);
    reset(&f);
    CHECK(f.kept.data == NULL && f.kept.len == 0, "lineframe: clearing frees an unfinished line");
    rec_clear(&r);
}

int main(void)
{
    test_basics();
    test_limits();
    test_stop();
    return check_done();
}
