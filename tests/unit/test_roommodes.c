/* Unit tests for roommodes.c: masks (completing, matching, lists) and parsing mode changes. */
#include "server/roommodes.h"

#include "check.h"

static int match(const char *mask, const char *subject) { return mask_match(mask, subject); }

static void test_match(void)
{
    CHECK(match("*!*@*", "alice!~al@natter/irc"), "*!*@* matches anyone");
    CHECK(match("alice!*@*", "ALICE!~al@natter/irc"), "names fold as the hub folds them (ASCII)");
    CHECK(match("*!~AL@*", "alice!~al@natter/irc"), "user names fold too");
    CHECK(!match("alice!*@*", "alice2!~al@natter/irc"), "no implicit * at the end");
    CHECK(match("al?ce!*@*", "alice!x@y"), "? is one character");
    CHECK(!match("al?ce!*@*", "alce!x@y"), "? is not zero characters");
    CHECK(match("*a*b*c*", "xxaxxbxxcxx"), "several stars backtrack");
    CHECK(!match("*a*b*c", "xxaxxbxxcxxd"), "a star does not eat the last literal");
    CHECK(match("*!plain@natter/plain", "pat!plain@natter/plain"), "a plain user's mask");
    CHECK(!match("*!plain@natter/plain", "ivy!~ivy@natter/irc"), "does not match an IRC user");
    CHECK(match("**", ""), "stars match nothing");
    CHECK(!match("?", ""), "? needs a character");
    /* A pathological mask stays fast (no exponential backtracking). */
    char subject[200], mask[120];
    memset(subject, 'a', sizeof subject - 1);
    subject[sizeof subject - 1] = '\0';
    for (int i = 0; i < 59; i++)
        mask[2 * i] = '*', mask[2 * i + 1] = 'a';
    strcpy(mask + 118, "b");
    CHECK(!match(mask, subject), "*a*a*...*b against aaaa...: no match, and quickly");
}

static void test_complete(void)
{
    char out[RM_MASK_MAX];
    CHECK(mask_complete("bob", out, sizeof out) == 0 && strcmp(out, "bob!*@*") == 0, "nick -> nick!*@*");
    CHECK(mask_complete("bob!x", out, sizeof out) == 0 && strcmp(out, "bob!x@*") == 0, "nick!user -> nick!user@*");
    CHECK(mask_complete("x@h", out, sizeof out) == 0 && strcmp(out, "*!x@h") == 0, "user@host -> *!user@host");
    CHECK(mask_complete("a!b@c", out, sizeof out) == 0 && strcmp(out, "a!b@c") == 0, "a full mask stays");
    CHECK(mask_complete("!@", out, sizeof out) == 0 && strcmp(out, "*!*@*") == 0, "empty parts become *");
    CHECK(mask_complete("", out, sizeof out) < 0, "an empty mask is refused");
    CHECK(mask_complete("a b", out, sizeof out) < 0, "a space is refused");
    CHECK(mask_complete("a,b", out, sizeof out) < 0, "a comma is refused");
    CHECK(mask_complete("\x02bold\x02", out, sizeof out) < 0, "IRC formatting is refused (it would reach terminals)");
    CHECK(mask_complete("abcdefgh", out, 8) < 0, "one that does not fit is refused");
}

static void test_lists(void)
{
    struct mask_list l = {0};
    CHECK_INT(mask_list_add(&l, "bob!*@*", "op", 1), 1, "a mask is added");
    CHECK_INT(mask_list_add(&l, "BOB!*@*", "op", 2), 0, "the same mask, other case: not twice");
    CHECK_INT(mask_list_add(&l, "*!*@evil", "op", 3), 1, "a second one");
    CHECK(mask_list_match(&l, "x!y@evil") && !mask_list_match(&l, "x!y@good"), "the list matches by any entry");
    CHECK_INT(mask_list_del(&l, "Bob!*@*"), 1, "removed, in any case");
    CHECK_INT(mask_list_del(&l, "bob!*@*"), 0, "not there any more");
    CHECK_INT(l.n, 1, "one left");
    mask_list_free(&l);
    CHECK_INT(l.n, 0, "freed");
}

static void test_parse(void)
{
    struct mode_step s[16];
    enum mode_parse st;
    char bad;
    char *args[] = {"alice", "bob", "key", "10", "m!*@*"};
    size_t n = mode_parse("+ov-k+lb", args, 5, s, 16, &st, &bad);
    CHECK_INT(n, 5, "five steps");
    CHECK(st == MP_OK, "all well");
    CHECK(s[0].plus && s[0].letter == 'o' && strcmp(s[0].arg, "alice") == 0, "+o alice");
    CHECK(s[1].plus && s[1].letter == 'v' && strcmp(s[1].arg, "bob") == 0, "+v bob");
    CHECK(!s[2].plus && s[2].letter == 'k' && strcmp(s[2].arg, "key") == 0, "-k takes its argument");
    CHECK(s[3].plus && s[3].letter == 'l' && strcmp(s[3].arg, "10") == 0, "+l 10");
    CHECK(s[4].letter == 'b' && strcmp(s[4].arg, "m!*@*") == 0, "+b mask");

    n = mode_parse("-l+t", NULL, 0, s, 16, &st, &bad);
    CHECK(n == 2 && !s[0].plus && s[0].letter == 'l' && !s[0].arg && s[1].letter == 't', "-l takes no argument");
    n = mode_parse("b", NULL, 0, s, 16, &st, &bad);
    CHECK(n == 1 && s[0].letter == 'b' && !s[0].arg && st == MP_OK, "b alone: show the list");
    n = mode_parse("ntX", NULL, 0, s, 16, &st, &bad);
    CHECK(n == 2 && st == MP_UNKNOWN && bad == 'X', "an unknown letter is named; the others stand");
    n = mode_parse("+\xc3\xa9", NULL, 0, s, 16, &st, &bad);
    CHECK(n == 0 && st == MP_UNKNOWN && bad == '?', "a byte of a UTF-8 character is named '?' (never half a character)");
    n = mode_parse("+o", NULL, 0, s, 16, &st, &bad);
    CHECK(n == 0 && st == MP_NEEDARG && bad == 'o', "+o without a name");
    n = mode_parse("+k", NULL, 0, s, 16, &st, &bad);
    CHECK(n == 0 && st == MP_NEEDARG && bad == 'k', "+k without a key");
    n = mode_parse("-k", NULL, 0, s, 16, &st, &bad);
    CHECK(n == 1 && !s[0].arg && st == MP_OK, "-k without the key is taken");
    char *many[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    n = mode_parse("+vvvvvvvv", many, 8, s, 16, &st, &bad);
    CHECK_INT(n, RM_MAX_CHANGES, "at most MODES changes with an argument");
    CHECK(mode_kind('b') == 'A' && mode_kind('k') == 'B' && mode_kind('l') == 'C' && mode_kind('s') == 'D' &&
              mode_kind('o') == 'P' && !mode_kind('x'),
          "the letters' kinds, as CHANMODES groups them");
}

int main(void)
{
    test_match();
    test_complete();
    test_lists();
    test_parse();
    return check_done();
}
