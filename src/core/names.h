/* names.h - the rules for users' names, for every protocol (plain, IRC, ...).
 *
 * What a name must be, so that "<alice>" on a screen can only be alice:
 *  - valid UTF-8, taken in Unicode Normalization Form C (NFC): "e" + U+0301 and
 *    U+00E9 are the same name, and the name is kept in its NFC form;
 *  - 1 to max_chars code points (after NFC);
 *  - no character Unicode says shows nothing (Default_Ignorable_Code_Point: U+200B,
 *    U+061C, U+1BCA0, U+3164, ...), no control, format, surrogate, private-use or
 *    unassigned code point, no space or separator (categories Cc Cf Cs Co Cn Z*),
 *    and U+2800 (a blank Braille cell, a symbol that draws nothing);
 *  - none of < > * , anywhere, and not starting with # / * - ! < > or a
 *    combining mark; at most 4 combining marks in a row;
 *  - one script (UTS #39's "single script" test on the resolved script set):
 *    characters of the Common and Inherited scripts (digits, '_', punctuation,
 *    marks) go with any script; Han goes with Hiragana and Katakana (Japanese),
 *    with Hangul (Korean) and with Bopomofo; anything else mixed, such as Latin
 *    with Cyrillic ("аlice" with a Cyrillic а) or Greek, is refused.
 * Two names are the same name when their keys are equal: NFKC then full Unicode
 * case folding ("ALICE", "alice", "ａｌｉｃｅ" are one name; "STRASSE" and "straße" too).
 *
 * Unicode data: utf8proc (normalisation, categories, ignorables, case folding);
 * ICU (Script_Extensions), since utf8proc carries no script property.
 */
#ifndef NATTER_NAMES_H
#define NATTER_NAMES_H

#include <stddef.h>

enum name_verdict {
    NAME_OK = 0,
    NAME_EMPTY,
    NAME_TOO_LONG,
    NAME_BAD_UTF8,
    NAME_BAD_START,      /* # / * - ! < > or a combining mark first */
    NAME_BAD_CHAR,       /* < > * , a space, a control, ... */
    NAME_INVISIBLE,      /* a character that shows nothing */
    NAME_UNASSIGNED,     /* not a character (yet) */
    NAME_TOO_MANY_MARKS,
    NAME_MIXED_SCRIPTS,
};

/* Check name and write its NFC form to out (outlen bytes, NUL-terminated).
 * Returns NAME_OK, or why it is not a name (out then holds nothing useful). A
 * name whose NFC form does not fit outlen is NAME_TOO_LONG. */
enum name_verdict name_normalize(const char *name, size_t max_chars, char *out, size_t outlen);
/* The key a checked (NFC) name is compared by: NFKC + full case folding, into
 * out. Returns 0, or -1 if it does not fit (or out of memory). */
int name_key(const char *nfc, char *out, size_t outlen);
/* What IRC's ISUPPORT CASEMAPPING says of name_key: RFC 8265's UsernameCaseMapped
 * (width mapping, lower case, NFC) folds no two names together that name_key
 * keeps apart, so a client folding that way never splits one user in two. The
 * key folds more (NFKC, full case folding: STRASSE is straße). Room names fold
 * ASCII letters only (text_ieq). Change it with name_key. */
#define NAME_CASEMAPPING "rfc8265"
/* A few words for a verdict: "mixes scripts", "has an invisible character". */
const char *name_why(enum name_verdict v);

#endif
