/* ircmsg.c - IRC lines parsed, text cleaned and cut (see ircmsg.h). */
#include "server/codecs/irc/ircmsg.h"

#include <string.h>

#include "core/text.h"

static char *skip_spaces(char *p)
{
    while (*p == ' ')
        p++;
    return p;
}

/* The word at *p, NUL-terminated in place; *p moves past it and its spaces. */
static char *word(char **p)
{
    char *w = *p, *e = strchr(w, ' ');
    if (e) {
        *e = '\0';
        *p = skip_spaces(e + 1);
    } else {
        *p = w + strlen(w);
    }
    return w;
}

int irc_parse(char *line, struct irc_msg *m)
{
    memset(m, 0, sizeof *m);
    char *p = skip_spaces(line);
    if (*p == '@') {
        char *start = p;
        m->tags = word(&p) + 1;
        m->tags_len = (size_t)(p - start);
    }
    if (*p == ':')
        m->prefix = word(&p) + 1;
    if (!*p)
        return -1;
    m->command = word(&p);
    while (*p && m->nparams < IRC_MAX_PARAMS) {
        if (*p == ':' || m->nparams == IRC_MAX_PARAMS - 1) {
            m->params[m->nparams++] = *p == ':' ? p + 1 : p;
            break;
        }
        m->params[m->nparams++] = word(&p);
    }
    return 0;
}

static int kept_control(unsigned char c)
{
    return c == 0x01 || c == 0x02 || c == 0x03 || c == 0x04 || c == 0x0F || c == 0x11 || c == 0x16 || c == 0x1D ||
           c == 0x1E || c == 0x1F;
}

size_t irc_sanitize(char *dst, const char *src, size_t len)
{
    size_t o = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && !kept_control((unsigned char)src[i]))
            continue;
        o += text_sanitize(dst + o, src + start, i - start); /* the run before it */
        if (i < len)
            dst[o++] = src[i];
        start = i + 1;
    }
    dst[o] = '\0';
    return o;
}

size_t irc_fit(const char *text, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
        n--;
    if (n == 0 && max > 0) { /* not even one character fits: take one anyway */
        n = 1;
        while (n < len && ((unsigned char)text[n] & 0xC0) == 0x80)
            n++;
    }
    return n;
}

/* The length of s[0..n) without an incomplete UTF-8 sequence at its end. */
static size_t trim_utf8(const char *s, size_t n)
{
    size_t j = n;
    while (j > 0 && ((unsigned char)s[j - 1] & 0xC0) == 0x80)
        j--;
    if (j == 0 || (unsigned char)s[j - 1] < 0xC0)
        return n; /* no sequence under way (or only stray continuation bytes) */
    unsigned char lead = (unsigned char)s[j - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    return n - (j - 1) < need ? j - 1 : n;
}

const char *irc_tag(const struct irc_msg *m, const char *key, char *out, size_t outlen)
{
    if (!m->tags || outlen == 0)
        return NULL;
    size_t klen = strlen(key);
    for (const char *t = m->tags; *t;) {
        const char *end = strchr(t, ';');
        size_t n = end ? (size_t)(end - t) : strlen(t);
        if (n >= klen && strncmp(t, key, klen) == 0 && (n == klen || t[klen] == '=')) {
            size_t o = 0;
            for (size_t i = klen + (n > klen); i < n && o + 1 < outlen; i++) {
                char c = t[i];
                if (c == '\\' && i + 1 < n) {
                    c = t[++i];
                    c = c == ':' ? ';' : c == 's' ? ' ' : c == 'r' ? '\r' : c == 'n' ? '\n' : c;
                }
                out[o++] = c;
            }
            out[trim_utf8(out, o)] = '\0'; /* a value cut short ends between characters */
            return out;
        }
        t += n + (end != NULL);
    }
    return NULL;
}

static int tag_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '/' ||
           c == '.';
}

const char *irc_client_tags(const struct irc_msg *m, char *out, size_t outlen)
{
    size_t o = 0;
    if (!m->tags || outlen == 0)
        return NULL;
    for (const char *t = m->tags; *t;) {
        const char *end = strchr(t, ';');
        size_t n = end ? (size_t)(end - t) : strlen(t);
        size_t k = 1;
        while (k < n && tag_key_char(t[k]))
            k++;
        int ok = n > 1 && t[0] == '+' && k > 1 && (k == n || t[k] == '=');
        if (ok && o + (o > 0) + n < outlen) {
            if (o)
                out[o++] = ';';
            memcpy(out + o, t, n);
            o += n;
        }
        t += n + (end != NULL);
    }
    out[o] = '\0';
    return o ? out : NULL;
}
