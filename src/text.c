/* text.c - what may reach a terminal.
 *
 * Every byte a user sends ends up on other users' terminals, so the server only
 * passes on valid UTF-8 without controls: a stray ESC could move cursors, set
 * colours, retitle windows or (with some terminals) worse. Bidi overrides are
 * dropped too, so a name cannot be displayed reversed to impersonate another.
 */
#include "text.h"

#include <string.h>

static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* Decode one UTF-8 sequence at s (n bytes available). Returns its length and sets
 * *cp, or returns 0 if the bytes at s do not start a valid, shortest-form sequence. */
static size_t utf8_decode(const unsigned char *s, size_t n, unsigned long *cp)
{
    unsigned long c;
    size_t len;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    } else if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        c = s[0] & 0x1F, len = 2;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        c = s[0] & 0x0F, len = 3;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        c = s[0] & 0x07, len = 4;
    } else {
        return 0; /* continuation byte, C0/C1 overlong lead, or > U+10FFFF lead */
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) || c > 0x10FFFF ||
        (c >= 0xD800 && c <= 0xDFFF))
        return 0; /* overlong, out of range, or a surrogate */
    *cp = c;
    return len;
}

static int is_dropped(unsigned long cp)
{
    if (cp < 0x20)
        return cp != '\t';
    return cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

size_t text_sanitize(char *dst, const char *src, size_t len)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t i = 0, o = 0;
    while (i < len) {
        unsigned long cp;
        size_t n = utf8_decode(s + i, len - i, &cp);
        if (n == 0) {
            memcpy(dst + o, replacement, 3);
            o += 3;
            i += 1;
            continue;
        }
        if (!is_dropped(cp)) {
            memcpy(dst + o, s + i, n);
            o += n;
        }
        i += n;
    }
    dst[o] = '\0';
    return o;
}

size_t text_utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Characters that show as nothing or as a space: in a name they would let
 * "alice" plus an invisible character pose as alice. */
static int is_invisible(unsigned long cp)
{
    return cp == 0xA0 || cp == 0xAD || cp == 0x34F || cp == 0x115F || cp == 0x1160 ||
           cp == 0x17B4 || cp == 0x17B5 || cp == 0x180E || (cp >= 0x2000 && cp <= 0x200F) ||
           (cp >= 0x2028 && cp <= 0x202F) || (cp >= 0x205F && cp <= 0x206F) || cp == 0x3000 ||
           cp == 0x3164 || cp == 0xFEFF || cp == 0xFFA0;
}

int text_valid_name(const char *s, size_t max_chars)
{
    size_t n = text_utf8_len(s), len = strlen(s);
    if (n == 0 || n > max_chars || strchr("#/*-!<>", s[0]))
        return 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        unsigned long cp;
        size_t k = utf8_decode(p + i, len - i, &cp);
        if (k == 0 || cp <= ' ' || cp == 0x7F || (cp < 0x80 && strchr("<>*,", (int)cp)) ||
            is_dropped(cp) || is_invisible(cp))
            return 0;
        i += k;
    }
    return 1;
}

int text_valid_room(const char *s)
{
    if (s[0] != '#')
        return 0;
    size_t n = text_utf8_len(s + 1);
    if (n == 0 || n > 32)
        return 0;
    for (s++; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x80)
            continue; /* non-ASCII letters are fine; controls were already removed */
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

int text_ieq(const char *a, const char *b)
{
    while (*a && lower((unsigned char)*a) == lower((unsigned char)*b))
        a++, b++;
    return *a == *b;
}

unsigned long text_ihash(const char *s)
{
    unsigned long h = 5381;
    for (; *s; s++)
        h = h * 33 + lower((unsigned char)*s);
    return h;
}
