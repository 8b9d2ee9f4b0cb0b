/* test_text.c - UTF-8 repair, control stripping, name and room rules. */
#include "core/names.h"
#include "core/text.h"

#include "check.h"

#define FFFD "\xEF\xBF\xBD"

/* Sanitise len bytes of lit, copied to an exactly-sized heap buffer, into an
 * exactly-sized one (3*len+1): ASan catches reads past the input and writes past
 * the documented bound. Compare with want. */
static int san_is(const char *lit, size_t len, const char *want)
{
    char *in = malloc(len ? len : 1); /* exactly len bytes: ASan catches reading past them */
    memcpy(in, lit, len);
    char *dst = malloc(3 * len + 1);
    size_t n = text_sanitize(dst, in, len);
    free(in);
    int ok = n == strlen(want) && memcmp(dst, want, n) == 0 && dst[n] == '\0';
    if (!ok) {
        printf("# sanitize gave %zu bytes:", n);
        for (size_t i = 0; i < n; i++)
            printf(" %02X", (unsigned char)dst[i]);
        printf("\n");
    }
    free(dst);
    return ok;
}

#define SAN(lit, want) san_is(lit, sizeof(lit) - 1, want)

static void test_valid_kept(void)
{
    CHECK(SAN("hello, world!", "hello, world!"), "sanitize keeps printable ASCII");
    CHECK(SAN("", ""), "sanitize of nothing is empty and NUL-terminated");
    CHECK(SAN("\xE4\xBD\xA0\xE5\xA5\xBD", "\xE4\xBD\xA0\xE5\xA5\xBD"), "sanitize keeps Chinese (3-byte UTF-8)");
    CHECK(SAN("caf\xC3\xA9 \xC2\xA0x", "caf\xC3\xA9 \xC2\xA0x"), "sanitize keeps 2-byte UTF-8 (U+00E9, U+00A0)");
    CHECK(SAN("\xF0\x9F\x98\x80!", "\xF0\x9F\x98\x80!"), "sanitize keeps emoji (4-byte UTF-8)");
    CHECK(SAN("\xF4\x8F\xBF\xBF", "\xF4\x8F\xBF\xBF"), "sanitize keeps U+10FFFF, the last code point");
    CHECK(SAN("\xED\x9F\xBF\xEE\x80\x80", "\xED\x9F\xBF\xEE\x80\x80"), "sanitize keeps U+D7FF and U+E000 around the surrogates");
    CHECK(SAN("\xEF\xBF\xBD", FFFD), "sanitize keeps a U+FFFD that was sent");
    CHECK(SAN("a\tb", "a\tb"), "sanitize keeps TAB");
    CHECK(SAN("\xE2\x80\xAF\xE2\x81\xA5\xE2\x80\xA9", "\xE2\x80\xAF\xE2\x81\xA5\xE2\x80\xA9"),
          "sanitize keeps U+202F, U+2065 and U+2029 next to the bidi ranges");
}

static void test_invalid_replaced(void)
{
    CHECK(SAN("a\xFF" "b", "a" FFFD "b"), "sanitize replaces an invalid byte (FF) with U+FFFD");
    CHECK(SAN("\x80x", FFFD "x"), "sanitize replaces a lone continuation byte");
    CHECK(SAN("\xC0\x80", FFFD FFFD), "sanitize rejects overlong C0 80 (NUL)");
    CHECK(SAN("\xC1\xBF", FFFD FFFD), "sanitize rejects overlong C1 BF");
    CHECK(SAN("\xE0\x80\x80", FFFD FFFD FFFD), "sanitize rejects overlong E0 80 80");
    CHECK(SAN("\xE0\x9F\xBF", FFFD FFFD FFFD), "sanitize rejects overlong E0 9F BF (U+07FF)");
    CHECK(SAN("\xF0\x80\x80\x80", FFFD FFFD FFFD FFFD), "sanitize rejects overlong F0 80 80 80");
    CHECK(SAN("\xF0\x8F\xBF\xBF", FFFD FFFD FFFD FFFD), "sanitize rejects overlong F0 8F BF BF (U+FFFF)");
    CHECK(SAN("\xED\xA0\x80", FFFD FFFD FFFD), "sanitize rejects a surrogate (ED A0 80)");
    CHECK(SAN("\xED\xBF\xBF", FFFD FFFD FFFD), "sanitize rejects the last surrogate (ED BF BF)");
    CHECK(SAN("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD), "sanitize rejects > U+10FFFF (F4 90 80 80)");
    CHECK(SAN("\xF5\x80\x80\x80", FFFD FFFD FFFD FFFD), "sanitize rejects lead bytes F5 and above");
    CHECK(SAN("ab\xE4\xBD", "ab" FFFD FFFD), "sanitize replaces a sequence truncated at the end");
    CHECK(SAN("\xF0\x9F\x98", FFFD FFFD FFFD), "sanitize replaces a truncated 4-byte sequence");
    CHECK(SAN("\xE4\xBDx\xE4\xBD\xA0", FFFD FFFD "x\xE4\xBD\xA0"), "sanitize resynchronises after a truncated sequence");
}

static void test_controls_removed(void)
{
    CHECK(SAN("\x1b[31mred\x1b[0m", "[31mred[0m"), "sanitize removes ESC from CSI sequences");
    CHECK(SAN("\x1b]0;title\x07rest", "]0;titlerest"), "sanitize removes ESC and BEL from OSC sequences");
    CHECK(SAN("a\xC2\x9B" "31mb", "a31mb"), "sanitize removes C1 CSI encoded as UTF-8 (C2 9B)");
    CHECK(SAN("\xC2\x80\xC2\x9F\xC2\xA0", "\xC2\xA0"), "sanitize removes all of C1 (U+0080-U+009F), keeps U+00A0");
    CHECK(SAN("a\x9B" "b", "a" FFFD "b"), "sanitize replaces a raw C1 byte (9B), which is not UTF-8");
    CHECK(SAN("a\x7F" "b", "ab"), "sanitize removes DEL");
    CHECK(SAN("a\0b", "ab"), "sanitize removes NUL");
    CHECK(SAN("a\rb\nc\bd\x01\x1F", "abcd"), "sanitize removes CR, LF, BS and the other C0 controls");
    CHECK(SAN("x\xE2\x80\xAEy", "xy"), "sanitize removes U+202E (right-to-left override)");
    CHECK(SAN("x\xE2\x81\xA6y", "xy"), "sanitize removes U+2066 (left-to-right isolate)");
    CHECK(SAN("\xE2\x80\xAA\xE2\x80\xAB\xE2\x80\xAC\xE2\x80\xAD\xE2\x81\xA7\xE2\x81\xA8\xE2\x81\xA9z", "z"),
          "sanitize removes every bidi embedding/override/isolate control");
}

/* The documented bound: 3*len+1 bytes, reached by all-invalid input. */
static void test_bound(void)
{
    static const char *const worst[] = {"\x80", "\xFF", "\xC2", "\xE4\xBD", "\xF0\x9F\x98", "\xED\xA0\x80"};
    int ok = 1, reached = 0;
    for (size_t w = 0; w < sizeof worst / sizeof worst[0]; w++) {
        size_t plen = strlen(worst[w]), len = 0;
        char *src = malloc(999);
        while (len + plen <= 999) {
            memcpy(src + len, worst[w], plen);
            len += plen;
        }
        char *dst = malloc(3 * len + 1); /* ASan: exactly the documented size */
        size_t n = text_sanitize(dst, src, len);
        ok &= n <= 3 * len && dst[n] == '\0';
        reached |= n == 3 * len;
        free(src);
        free(dst);
    }
    CHECK(ok, "sanitize output fits 3*len+1 for all-invalid inputs");
    CHECK(reached, "the 3*len bound is reached (so it is the right bound)");
}

static void test_names(void)
{
    CHECK(text_valid_name("alice", 24), "name: plain ASCII is valid");
    CHECK(text_valid_name("\xE5\xB0\x8F\xE6\x98\x8E", 24), "name: Chinese is valid");
    CHECK(text_valid_name("a-b!c#d/e", 24), "name: - ! # / are fine after the first character");
    CHECK(!text_valid_name("", 24), "name: empty is invalid");
    CHECK(text_valid_name("abcdefghijklmnopqrstuvwx", 24), "name: exactly max characters is valid");
    CHECK(!text_valid_name("abcdefghijklmnopqrstuvwxy", 24), "name: max+1 characters is invalid");
    char cn[200] = "";
    for (int i = 0; i < 24; i++)
        strcat(cn, "\xE4\xB8\xAD");
    CHECK(text_valid_name(cn, 24), "name: length is counted in code points (24 Chinese = 72 bytes is fine)");
    strcat(cn, "\xE4\xB8\xAD");
    CHECK(!text_valid_name(cn, 24), "name: 25 Chinese characters are too many");
    CHECK(!text_valid_name("a b", 24), "name: a space is invalid");
    CHECK(!text_valid_name("a\tb", 24), "name: a TAB is invalid");
    CHECK(!text_valid_name("a\x7F" "b", 24), "name: DEL is invalid");
    const char *lead = "#/*-!<>";
    int ok = 1;
    for (const char *p = lead; *p; p++) {
        char s[4] = {*p, 'a', 'b', 0};
        ok &= !text_valid_name(s, 24);
    }
    CHECK(ok, "name: starting with any of # / * - ! < > is invalid");
    ok = 1;
    for (const char *p = "<>*,"; *p; p++) {
        char s[4] = {'a', *p, 'b', 0};
        ok &= !text_valid_name(s, 24);
    }
    CHECK(ok, "name: < > * , anywhere are invalid");
}

/* core/names.h: Unicode's data, not a hand-made list. */
static void test_unicode_names(void)
{
    char out[128], k1[256], k2[256];
    /* Invisible: default-ignorable and format characters, whichever Unicode version added them. */
    const char *invisible[] = {"alice\xD8\x9C" /* U+061C ARABIC LETTER MARK */,
                               "alice\xF0\x9B\xB2\xA0" /* U+1BCA0 SHORTHAND FORMAT LETTER OVERLAP */,
                               "alice\xE2\x80\x8B" /* U+200B */, "ali\xC2\xAD" "ce" /* soft hyphen */,
                               "alice\xE3\x85\xA4" /* U+3164 HANGUL FILLER */, "alice\xE2\x81\xA0" /* U+2060 */,
                               "alice\xF3\xA0\x80\x81" /* U+E0001 tag */, "alice\xE2\xA0\x80" /* U+2800 */,
                               "alice\xEF\xB8\x8F" /* VS16 */, "alice\xE1\xA0\x8E" /* U+180E */};
    int ok = 1;
    for (size_t i = 0; i < sizeof invisible / sizeof invisible[0]; i++)
        ok &= name_normalize(invisible[i], 24, out, sizeof out) == NAME_INVISIBLE;
    CHECK(ok, "names: invisible characters (U+061C, U+1BCA0, U+200B, U+3164, tags, ...) are refused");
    CHECK(name_normalize("a\xC2\xA0" "b", 24, out, sizeof out) == NAME_BAD_CHAR &&
              name_normalize("a\xE3\x80\x80" "b", 24, out, sizeof out) == NAME_BAD_CHAR,
          "names: NBSP and the ideographic space are spaces");
    CHECK(name_normalize("a\xEE\x80\x80", 24, out, sizeof out) == NAME_BAD_CHAR, "names: private use is refused");
    CHECK(name_normalize("a\xF0\xAF\xBF\xBF" /* U+2FFFF */, 24, out, sizeof out) == NAME_UNASSIGNED,
          "names: unassigned code points are refused");
    /* Scripts. */
    CHECK(name_normalize("\xD0\xB0lice" /* Cyrillic a + Latin lice */, 24, out, sizeof out) == NAME_MIXED_SCRIPTS,
          "names: Cyrillic and Latin mixed are refused");
    CHECK(name_normalize("p\xCE\xB1ypal" /* Greek alpha */, 24, out, sizeof out) == NAME_MIXED_SCRIPTS,
          "names: Greek and Latin mixed are refused");
    CHECK(name_normalize("\xD0\xB0\xD0\xBB\xD0\xB8\xD1\x81\xD0\xB0" /* алиса */, 24, out, sizeof out) == NAME_OK,
          "names: all Cyrillic is fine");
    CHECK(name_normalize("alice_42-x", 24, out, sizeof out) == NAME_OK &&
              name_normalize("\xD0\xB0\xD0\xBB\xD0\xB8_42", 24, out, sizeof out) == NAME_OK,
          "names: digits and punctuation (Common) go with any script");
    CHECK(name_normalize("\xE5\xB1\xB1\xE7\x94\xB0\xE3\x81\x9F\xE3\x82\xAB" /* 山田たカ */, 24, out, sizeof out) ==
              NAME_OK,
          "names: Han with Hiragana and Katakana is Japanese, one script");
    CHECK(name_normalize("\xE9\x87\x91\xEB\xAF\xBC" /* 金민 */, 24, out, sizeof out) == NAME_OK,
          "names: Han with Hangul is Korean, one script");
    CHECK(name_normalize("\xE3\x81\x9F\xEB\xAF\xBC" /* Hiragana + Hangul */, 24, out, sizeof out) ==
              NAME_MIXED_SCRIPTS,
          "names: Hiragana with Hangul is mixed");
    CHECK(name_normalize("e\xCC\x81" "cole", 24, out, sizeof out) == NAME_OK && strcmp(out, "\xC3\xA9" "cole") == 0,
          "names: kept in NFC (e + U+0301 becomes U+00E9)");
    CHECK(name_normalize("\xCC\x81" "a", 24, out, sizeof out) == NAME_BAD_START, "names: no combining mark first");
    CHECK(name_normalize("q\xCC\x81\xCC\x82\xCC\x83\xCC\x84\xCC\x85", 24, out, sizeof out) == NAME_TOO_MANY_MARKS,
          "names: at most 4 combining marks in a row");
    CHECK(name_normalize("ab\xFF", 24, out, sizeof out) == NAME_BAD_UTF8, "names: invalid UTF-8 is refused");
    /* Keys: NFKC + full case folding. */
    CHECK(name_key("ALICE", k1, sizeof k1) == 0 && name_key("alice", k2, sizeof k2) == 0 && strcmp(k1, k2) == 0,
          "names: keys fold case");
    CHECK(name_key("STRASSE", k1, sizeof k1) == 0 && name_key("stra\xC3\x9F" "e", k2, sizeof k2) == 0 &&
              strcmp(k1, k2) == 0,
          "names: full case folding (sharp s is ss)");
    CHECK(name_key("\xEF\xBD\x81lice" /* fullwidth a */, k1, sizeof k1) == 0 && strcmp(k1, "alice") == 0,
          "names: keys are NFKC (fullwidth letters are the letters)");
    CHECK(name_key("\xCE\xA3\xCE\x9F\xCE\xA6\xCE\x99\xCE\x91", k1, sizeof k1) == 0 &&
              name_key("\xCF\x83\xCE\xBF\xCF\x86\xCE\xB9\xCE\xB1", k2, sizeof k2) == 0 && strcmp(k1, k2) == 0,
          "names: Greek capitals fold to the small letters");
}

static void test_rooms(void)
{
    CHECK(text_valid_room("#lobby"), "room: #lobby is valid");
    CHECK(text_valid_room("#Dev-ops_1.x"), "room: letters, digits, - _ . are valid");
    CHECK(!text_valid_room("lobby"), "room: must start with #");
    CHECK(!text_valid_room("#"), "room: # alone is invalid");
    CHECK(!text_valid_room("##a"), "room: a second # is invalid");
    CHECK(!text_valid_room("#a b") && !text_valid_room("#a,b") && !text_valid_room("#a/b") &&
              !text_valid_room("#a\tb"),
          "room: space, comma, slash and TAB are invalid");
    CHECK(text_valid_room("#\xE4\xB8\xAD\xE6\x96\x87"), "room: non-ASCII characters are valid");
    char r[200] = "#";
    for (int i = 0; i < 32; i++)
        strcat(r, "a");
    CHECK(text_valid_room(r), "room: 32 characters are valid");
    strcat(r, "a");
    CHECK(!text_valid_room(r), "room: 33 characters are invalid");
    strcpy(r, "#");
    for (int i = 0; i < 32; i++)
        strcat(r, "\xF0\x9F\x98\x80");
    CHECK(text_valid_room(r), "room: 32 emoji (129 bytes) are valid: counted in code points");
}

static void test_case(void)
{
    CHECK(text_ieq("Alice", "aLICE"), "ieq: ASCII letters compare case-insensitively");
    CHECK(!text_ieq("alice", "alic") && !text_ieq("alic", "alice"), "ieq: a prefix is not equal");
    CHECK(text_ieq("", ""), "ieq: empty strings are equal");
    CHECK(!text_ieq("@[", "`{"), "ieq: only A-Z fold (not @[ vs `{)");
    CHECK(!text_ieq("\xC3\x84", "\xC3\xA4"), "ieq: non-ASCII is compared exactly");
    CHECK(text_utf8_len("a\xE4\xB8\xAD\xF0\x9F\x98\x80") == 3, "utf8_len counts code points");

    const char *words[] = {"alice", "Bob", "guest12", "#Lobby", "x~y]", "\xE4\xB8\xAD" "Ab", ""};
    int ok = 1;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        char up[64], low[64];
        size_t n = strlen(words[i]);
        for (size_t k = 0; k <= n; k++) {
            char c = words[i][k];
            up[k] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
            low[k] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        ok &= text_ieq(up, low) && text_ihash(up) == text_ihash(low) && text_ihash(words[i]) == text_ihash(up);
    }
    CHECK(ok, "ihash agrees with ieq: equal names hash equally");
    CHECK(text_ihash("alice") != text_ihash("alicf"), "ihash differs for different names (sanity)");
}

static int strip_is(const char *in, const char *want)
{
    char out[256];
    size_t n = text_strip_format(out, in);
    return n == strlen(want) && strcmp(out, want) == 0;
}

static void test_strip_format(void)
{
    CHECK(strip_is("\x02" "bold\x02 \x1d" "it\x1d \x1funder\x1f \x16rev\x0f \x1es\x11m", "bold it under rev sm"),
          "strip_format: bold, italics, underline, reverse, reset, strike, monospace");
    CHECK(strip_is("\x03" "4red \x03" "04,12both \x03" "99,1x \x03plain \x03,5keep", "red both x plain ,5keep"),
          "strip_format: colours with their digits, and only those");
    CHECK(strip_is("\x03" "123", "3"), "strip_format: at most two digits of colour");
    CHECK(strip_is("\x04" "ff0000red \x04" "00FF00,0000ffb \x04zz", "red b zz"), "strip_format: hex colours");
    CHECK(strip_is("\x01" "VERSION\x01", "VERSION"), "strip_format: CTCP's ^A");
    CHECK(strip_is("tab\tstays", "tab\tstays") && !text_has_controls("tab\tstays") && text_has_controls("a\x02"),
          "strip_format: TAB stays; has_controls sees formatting");
}

int main(void)
{
    test_strip_format();
    test_valid_kept();
    test_invalid_replaced();
    test_controls_removed();
    test_bound();
    test_names();
    test_unicode_names();
    test_rooms();
    test_case();
    return check_done();
}
