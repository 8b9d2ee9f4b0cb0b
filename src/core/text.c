/* text.c - what may reach a terminal.
 *
 * Every byte a user sends ends up on other users' terminals, so the server only
 * passes on valid UTF-8 without controls: a stray ESC could move cursors, set
 * colours, retitle windows or (with some terminals) worse. Bidi overrides are
 * dropped too, so a name cannot be displayed reversed to impersonate another.
 */
#include "core/text.h"

#include <stdint.h>
#include <string.h>
#include <utf8proc.h>

#include "core/names.h"

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

int text_valid_name(const char *s, size_t max_chars)
{
    char nfc[512];
    return name_normalize(s, max_chars, nfc, sizeof nfc) == NAME_OK;
}

/* Shows nothing, or is not a character: utf8proc's Unicode data, not a list. */
static int is_invisible(unsigned long cp)
{
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
    return p->ignorable || cp == 0x2800 || p->category == UTF8PROC_CATEGORY_CN ||
           p->category == UTF8PROC_CATEGORY_CF || p->category == UTF8PROC_CATEGORY_CO ||
           p->category == UTF8PROC_CATEGORY_ZS || p->category == UTF8PROC_CATEGORY_ZL ||
           p->category == UTF8PROC_CATEGORY_ZP;
}

int text_valid_room(const char *s)
{
    if (s[0] != '#')
        return 0;
    size_t n = text_utf8_len(s + 1);
    if (n == 0 || n > 32)
        return 0;
    const unsigned char *p = (const unsigned char *)s + 1;
    size_t len = strlen((const char *)p);
    for (size_t i = 0; i < len;) {
        unsigned long cp;
        size_t k = utf8_decode(p + i, len - i, &cp);
        if (k == 0)
            return 0;
        i += k;
        if (cp >= 0x80 ? is_dropped(cp) || is_invisible(cp) /* "#lobby" + U+200B is not #lobby */
                       : !((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
                           (cp >= '0' && cp <= '9') || cp == '_' || cp == '-' || cp == '.'))
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

/* The name tables hash with SipHash-2-4 under a key chosen at startup, over the
 * ASCII-lowercased name: with a fixed, public hash anyone could pick thousands of
 * names that share a slot and make every lookup and removal crawl (hash flooding). */
static uint64_t hash_k0, hash_k1;

void text_hash_key(const unsigned char key[16])
{
    hash_k0 = hash_k1 = 0;
    for (int i = 0; i < 8; i++) {
        hash_k0 |= (uint64_t)key[i] << (8 * i);
        hash_k1 |= (uint64_t)key[8 + i] << (8 * i);
    }
}

static uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static void sip_round(uint64_t v[4])
{
    v[0] += v[1], v[1] = rotl(v[1], 13), v[1] ^= v[0], v[0] = rotl(v[0], 32);
    v[2] += v[3], v[3] = rotl(v[3], 16), v[3] ^= v[2];
    v[0] += v[3], v[3] = rotl(v[3], 21), v[3] ^= v[0];
    v[2] += v[1], v[1] = rotl(v[1], 17), v[1] ^= v[2], v[2] = rotl(v[2], 32);
}

static void sip_block(uint64_t v[4], uint64_t m)
{
    v[3] ^= m;
    sip_round(v);
    sip_round(v);
    v[0] ^= m;
}

unsigned long text_ihash(const char *s)
{
    uint64_t v[4] = {hash_k0 ^ 0x736f6d6570736575ULL, hash_k1 ^ 0x646f72616e646f6dULL,
                     hash_k0 ^ 0x6c7967656e657261ULL, hash_k1 ^ 0x7465646279746573ULL};
    uint64_t m = 0;
    size_t n = 0;
    for (; *s; s++, n++) {
        m |= (uint64_t)lower((unsigned char)*s) << (8 * (n % 8));
        if (n % 8 == 7) {
            sip_block(v, m);
            m = 0;
        }
    }
    sip_block(v, m | (uint64_t)n << 56);
    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(v);
    return (unsigned long)(v[0] ^ v[1] ^ v[2] ^ v[3]);
}

/* ==== IRC formatting ==== */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int text_has_controls(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 && *s != '\t')
            return 1;
    return 0;
}

size_t text_strip_format(char *dst, const char *src)
{
    size_t o = 0;
    for (const char *p = src; *p;) {
        unsigned char c = (unsigned char)*p++;
        if (c == 0x03) { /* ^C[fg[,bg]]: up to two digits each */
            if (is_digit(*p)) {
                p += 1 + is_digit(p[1]);
                if (*p == ',' && is_digit(p[1]))
                    p += 2 + is_digit(p[2]);
            }
        } else if (c == 0x04) { /* ^D[RRGGBB[,RRGGBB]] */
            int n = 0;
            while (n < 6 && is_hex(p[n]))
                n++;
            if (n == 6) {
                p += 6;
                if (*p == ',') {
                    int k = 0;
                    while (k < 6 && is_hex(p[1 + k]))
                        k++;
                    if (k == 6)
                        p += 7;
                }
            }
        } else if (c >= 0x20 || c == '\t') {
            dst[o++] = (char)c;
        }
    }
    dst[o] = '\0';
    return o;
}
