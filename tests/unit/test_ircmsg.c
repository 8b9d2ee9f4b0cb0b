/* test_ircmsg.c - the IRC line parser, text cleaning and cutting (codecs/irc/ircmsg.c). */
#include "server/codecs/irc/ircmsg.h"

#include "check.h"

static struct irc_msg m;
static char line[8192];

static int parse(const char *text)
{
    snprintf(line, sizeof line, "%s", text);
    return irc_parse(line, &m);
}

static void test_parse(void)
{
    CHECK(parse("PRIVMSG #lobby :hello there") == 0 && strcmp(m.command, "PRIVMSG") == 0 && m.nparams == 2 &&
              strcmp(m.params[0], "#lobby") == 0 && strcmp(m.params[1], "hello there") == 0,
          "parse: command, middle and trailing parameter");
    CHECK(parse("NICK bob") == 0 && m.nparams == 1 && strcmp(m.params[0], "bob") == 0 && !m.tags && !m.prefix,
          "parse: one middle parameter, no tags or prefix");
    CHECK(parse("USER   u  0   *   :Real  Name ") == 0 && m.nparams == 4 && strcmp(m.params[2], "*") == 0 &&
              strcmp(m.params[3], "Real  Name ") == 0,
          "parse: runs of spaces separate; the trailing keeps its spaces");
    CHECK(parse("@time=x;+a=b :nick!u@h PRIVMSG a :b") == 0 && strcmp(m.tags, "time=x;+a=b") == 0 &&
              m.tags_len == strlen("@time=x;+a=b ") && strcmp(m.prefix, "nick!u@h") == 0 &&
              strcmp(m.command, "PRIVMSG") == 0,
          "parse: tags (with their length) and prefix");
    CHECK(parse("JOIN :") == 0 && m.nparams == 1 && strcmp(m.params[0], "") == 0, "parse: an empty trailing is a parameter");
    CHECK(parse("TOPIC #a ::colon") == 0 && strcmp(m.params[1], ":colon") == 0, "parse: a trailing may start with ':'");
    CHECK(parse("") < 0 && parse("   ") < 0 && parse("@tags") < 0 && parse("@t :prefix") < 0 && parse(":p ") < 0,
          "parse: no command is an error");
    parse("X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17");
    CHECK(m.nparams == 15 && strcmp(m.params[14], "15 16 17") == 0,
          "parse: after 14 middle parameters the rest is the 15th");
    parse("X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 :last one");
    CHECK(m.nparams == 15 && strcmp(m.params[14], "last one") == 0, "parse: a 15th trailing keeps its colon rule");
    parse("CAP LS 302");
    CHECK(m.nparams == 2 && strcmp(m.params[1], "302") == 0, "parse: CAP LS 302");
}

static void test_tags(void)
{
    char v[64];
    parse("@label=abc;msgid=1;+x=a\\sb\\:c\\\\;flag PING :t");
    CHECK(irc_tag(&m, "label", v, sizeof v) && strcmp(v, "abc") == 0, "tag: a plain value");
    CHECK(irc_tag(&m, "+x", v, sizeof v) && strcmp(v, "a b;c\\") == 0, "tag: escapes undone");
    CHECK(irc_tag(&m, "flag", v, sizeof v) && strcmp(v, "") == 0, "tag: a tag without value");
    CHECK(!irc_tag(&m, "lab", v, sizeof v) && !irc_tag(&m, "none", v, sizeof v), "tag: only whole keys match");
    parse("@label=ab\xC3\xA9 PING x");
    CHECK(irc_tag(&m, "label", v, 4) && strcmp(v, "ab") == 0, "tag: a value cut short ends between characters");
    char ct[64];
    parse("@label=1;+typing=active;+;+bad!key;+draft/reply=x\\sy;+flag;time=2 TAGMSG #a");
    CHECK(irc_client_tags(&m, ct, sizeof ct) && strcmp(ct, "+typing=active;+draft/reply=x\\sy;+flag") == 0,
          "client tags: only well-formed +tags, as sent");
    parse("@+aaaa=1;+bbbb=2 TAGMSG #a");
    CHECK(irc_client_tags(&m, ct, 12) && strcmp(ct, "+aaaa=1") == 0, "client tags: whole tags only, within the room");
    parse("@label=1 PRIVMSG #a :x");
    CHECK(!irc_client_tags(&m, ct, sizeof ct), "client tags: none");
}

static void test_sanitize(void)
{
    char out[256];
    const char in[] = "\x02" "bold\x02 \x03" "04,01red\x0f \x01" "ACTION x\x01 esc\x1b[2J nul\0 cr\r lf\n bad\xff";
    size_t n = irc_sanitize(out, in, sizeof in - 1);
    CHECK(n == strlen(out) &&
              strcmp(out, "\x02" "bold\x02 \x03" "04,01red\x0f \x01" "ACTION x\x01 esc[2J nul cr lf bad\xEF\xBF\xBD") == 0,
          "sanitize: formatting and CTCP kept, ESC NUL CR LF dropped, bad bytes replaced");
}

static void test_fit(void)
{
    const char *t = "ab\xC3\xA9\xE5\xB0\x8F";  /* a b é 小 */
    CHECK(irc_fit(t, 7, 100) == 7, "fit: all of it when it fits");
    CHECK(irc_fit(t, 7, 3) == 2, "fit: never half of a 2-byte character");
    CHECK(irc_fit(t, 7, 4) == 4, "fit: a whole 2-byte character");
    CHECK(irc_fit(t, 7, 6) == 4, "fit: never part of a 3-byte character");
    CHECK(irc_fit("\xF0\x9F\x8E\x89z", 5, 2) == 4, "fit: at least one character, even if it does not fit");
}

int main(void)
{
    test_parse();
    test_tags();
    test_sanitize();
    test_fit();
    return check_done();
}
