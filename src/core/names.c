/* names.c - the rules for users' names (see names.h for exactly what they are). */
#include "core/names.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/uscript.h>
#include <utf8proc.h>

#define MAX_MARKS 4

/* ==== Scripts (UTS #39, 5.1: the resolved script set) ==== */

/* A set of scripts: USCRIPT_CODE_LIMIT bits, plus the three "augmented" sets of
 * UTS #39 (Jpan, Kore, Hanb), which ICU has as codes of their own. */
#define SCRIPT_WORDS ((USCRIPT_CODE_LIMIT + 63) / 64)
struct script_set { uint64_t w[SCRIPT_WORDS]; };

static void set_add(struct script_set *s, int code)
{
    if (code >= 0 && code < USCRIPT_CODE_LIMIT)
        s->w[code / 64] |= 1ULL << (code % 64);
}

/* The augmented Script_Extensions of cp. Returns 0 for Common/Inherited (which
 * go with anything), 1 with *out set, -1 on error. */
static int scripts_of(utf8proc_int32_t cp, struct script_set *out)
{
    UScriptCode codes[32];
    UErrorCode err = U_ZERO_ERROR;
    int n = uscript_getScriptExtensions(cp, codes, 32, &err);
    if (U_FAILURE(err))
        return -1;
    memset(out, 0, sizeof *out);
    int any = 0;
    for (int i = 0; i < n; i++) {
        if (codes[i] == USCRIPT_COMMON || codes[i] == USCRIPT_INHERITED)
            continue;
        any = 1;
        set_add(out, codes[i]);
        switch (codes[i]) {
        case USCRIPT_HAN:
            set_add(out, USCRIPT_JAPANESE);
            set_add(out, USCRIPT_KOREAN);
            set_add(out, USCRIPT_HAN_WITH_BOPOMOFO);
            break;
        case USCRIPT_HIRAGANA:
        case USCRIPT_KATAKANA:
        case USCRIPT_KATAKANA_OR_HIRAGANA:
            set_add(out, USCRIPT_JAPANESE);
            break;
        case USCRIPT_HANGUL:
            set_add(out, USCRIPT_KOREAN);
            break;
        case USCRIPT_BOPOMOFO:
            set_add(out, USCRIPT_HAN_WITH_BOPOMOFO);
            break;
        default:
            break;
        }
    }
    return any;
}

/* ==== Characters ==== */

static enum name_verdict check_char(utf8proc_int32_t cp, const utf8proc_property_t *p)
{
    if (cp < 0x80)
        return cp <= ' ' || cp == 0x7F || strchr("<>*,", (int)cp) ? NAME_BAD_CHAR : NAME_OK;
    if (p->ignorable || cp == 0x2800)
        return NAME_INVISIBLE;
    switch (p->category) {
    case UTF8PROC_CATEGORY_CN:
        return NAME_UNASSIGNED;
    case UTF8PROC_CATEGORY_CF:
        return NAME_INVISIBLE; /* format characters: bidi marks, joiners, tags */
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
        return NAME_BAD_CHAR;
    default:
        return NAME_OK;
    }
}

static int is_mark(const utf8proc_property_t *p)
{
    return p->category == UTF8PROC_CATEGORY_MN || p->category == UTF8PROC_CATEGORY_MC ||
           p->category == UTF8PROC_CATEGORY_ME;
}

enum name_verdict name_normalize(const char *name, size_t max_chars, char *out, size_t outlen)
{
    if (!name[0])
        return NAME_EMPTY;
    utf8proc_uint8_t *nfc = NULL;
    utf8proc_ssize_t len = utf8proc_map((const utf8proc_uint8_t *)name, 0, &nfc,
                                        UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (len < 0)
        return len == UTF8PROC_ERROR_NOMEM ? NAME_TOO_LONG : NAME_BAD_UTF8;
    enum name_verdict v = NAME_OK;
    struct script_set common;
    int have_script = 0, marks = 0;
    size_t chars = 0;
    for (utf8proc_ssize_t i = 0; i < len && v == NAME_OK;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(nfc + i, len - i, &cp);
        if (k <= 0) {
            v = NAME_BAD_UTF8;
            break;
        }
        const utf8proc_property_t *p = utf8proc_get_property(cp);
        if ((v = check_char(cp, p)) != NAME_OK)
            break;
        if (i == 0 && (strchr("#/*-!<>", nfc[0]) || is_mark(p))) {
            v = NAME_BAD_START;
            break;
        }
        marks = is_mark(p) ? marks + 1 : 0;
        if (marks > MAX_MARKS) {
            v = NAME_TOO_MANY_MARKS;
            break;
        }
        struct script_set s;
        int r = scripts_of(cp, &s);
        if (r < 0) {
            v = NAME_UNASSIGNED;
        } else if (r > 0 && !have_script) {
            common = s;
            have_script = 1;
        } else if (r > 0) {
            uint64_t left = 0;
            for (int w = 0; w < SCRIPT_WORDS; w++)
                left |= (common.w[w] &= s.w[w]);
            if (!left)
                v = NAME_MIXED_SCRIPTS;
        }
        chars++;
        i += k;
    }
    if (v == NAME_OK && chars > max_chars)
        v = NAME_TOO_LONG;
    if (v == NAME_OK && (size_t)len >= outlen)
        v = NAME_TOO_LONG;
    if (v == NAME_OK)
        memcpy(out, nfc, (size_t)len + 1);
    free(nfc);
    return v;
}

int name_key(const char *nfc, char *out, size_t outlen)
{
    utf8proc_uint8_t *key = NULL;
    utf8proc_ssize_t len = utf8proc_map((const utf8proc_uint8_t *)nfc, 0, &key,
                                        UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE |
                                            UTF8PROC_COMPAT | UTF8PROC_CASEFOLD);
    int rc = -1;
    if (len >= 0 && (size_t)len < outlen) {
        memcpy(out, key, (size_t)len + 1);
        rc = 0;
    }
    free(key);
    return rc;
}

const char *name_why(enum name_verdict v)
{
    switch (v) {
    case NAME_OK: return "fine";
    case NAME_EMPTY: return "empty";
    case NAME_TOO_LONG: return "too long";
    case NAME_BAD_UTF8: return "not valid UTF-8";
    case NAME_BAD_START: return "starts with a character a name cannot start with";
    case NAME_BAD_CHAR: return "has a space, a control or one of < > * ,";
    case NAME_INVISIBLE: return "has a character that shows nothing";
    case NAME_UNASSIGNED: return "has a code point that is not a character";
    case NAME_TOO_MANY_MARKS: return "stacks too many combining marks";
    case NAME_MIXED_SCRIPTS: return "mixes scripts";
    }
    return "invalid";
}
