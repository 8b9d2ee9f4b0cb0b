/* roommodes.c - mode letters, mode changes, masks and mask lists (see roommodes.h). */
#include "server/roommodes.h"

#include <stdlib.h>
#include <string.h>

#include "core/text.h"

char mode_kind(char letter)
{
    if (!letter)
        return 0;
    if (strchr(RM_LISTS, letter))
        return 'A';
    if (strchr(RM_ALWAYS_ARG, letter))
        return 'B';
    if (strchr(RM_SET_ARG, letter))
        return 'C';
    if (strchr(RM_FLAGS, letter))
        return 'D';
    if (strchr(RM_PREFIXES, letter))
        return 'P';
    return 0;
}

size_t mode_parse(const char *modes, char *const *args, int nargs, struct mode_step *out, size_t max,
                  enum mode_parse *status, char *bad)
{
    size_t n = 0;
    int plus = 1, next = 0, with_arg = 0;
    *status = MP_OK;
    *bad = 0;
    for (const char *p = modes; *p; p++) {
        if (*p == '+' || *p == '-') {
            plus = *p == '+';
            continue;
        }
        char kind = mode_kind(*p);
        if (!kind) {
            if (*status == MP_OK) /* named back to the user: a byte of a UTF-8 character would not be text */
                *status = MP_UNKNOWN, *bad = (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f ? *p : '?';
            continue;
        }
        /* Lists take an argument when one is there; without, they are shown. */
        int takes = kind == 'P' || kind == 'B' || (kind == 'C' && plus) || (kind == 'A' && next < nargs);
        const char *arg = NULL;
        if (takes) {
            if (next >= nargs) {
                if (kind == 'B' && !plus) { /* -k without the key: IRC servers take it */
                    arg = NULL;
                } else {
                    if (*status == MP_OK)
                        *status = MP_NEEDARG, *bad = *p;
                    continue;
                }
            } else {
                arg = args[next++];
            }
            if (arg && ++with_arg > RM_MAX_CHANGES)
                continue;
        }
        if (n < max)
            out[n++] = (struct mode_step){(char)plus, *p, arg};
    }
    return n;
}

int mask_complete(const char *in, char *out, size_t len)
{
    if (!*in || strpbrk(in, " ,"))
        return -1;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++)
        if (*p < 0x20 || *p == 0x7f) /* IRC formatting must not reach a terminal in a mode line */
            return -1;
    const char *bang = strchr(in, '!'), *at = strchr(in, '@');
    const char *fmt_nick = "*", *fmt_user = "*", *fmt_host = "*";
    size_t ln = 0, lu = 1, lh = 1;
    if (bang && (!at || bang < at)) { /* nick!user[@host] */
        fmt_nick = in, ln = (size_t)(bang - in);
        fmt_user = bang + 1, lu = at ? (size_t)(at - bang - 1) : strlen(bang + 1);
        if (at)
            fmt_host = at + 1, lh = strlen(at + 1);
    } else if (at) { /* user@host */
        fmt_user = in, lu = (size_t)(at - in);
        fmt_host = at + 1, lh = strlen(at + 1);
        ln = 1;
    } else { /* nick */
        fmt_nick = in, ln = strlen(in);
    }
    if (ln == 0)
        fmt_nick = "*", ln = 1;
    if (lu == 0)
        fmt_user = "*", lu = 1;
    if (lh == 0)
        fmt_host = "*", lh = 1;
    if (ln + lu + lh + 3 > len)
        return -1;
    memcpy(out, fmt_nick, ln);
    out[ln] = '!';
    memcpy(out + ln + 1, fmt_user, lu);
    out[ln + 1 + lu] = '@';
    memcpy(out + ln + 2 + lu, fmt_host, lh);
    out[ln + 2 + lu + lh] = '\0';
    return 0;
}

static unsigned char fold(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* Glob matching without recursion: on a mismatch, go back to the last '*' and
 * let it take one more byte. Linear in practice, quadratic at worst (bounded
 * by RM_MASK_MAX and the subject's length). */
int mask_match(const char *mask, const char *subject)
{
    const unsigned char *m = (const unsigned char *)mask, *s = (const unsigned char *)subject;
    const unsigned char *star = NULL, *retry = NULL;
    while (*s) {
        if (*m == '*') {
            star = ++m;
            retry = s;
        } else if (*m && (*m == '?' || fold(*m) == fold(*s))) {
            m++, s++;
        } else if (star) {
            m = star;
            s = ++retry;
        } else {
            return 0;
        }
    }
    while (*m == '*')
        m++;
    return *m == '\0';
}

int mask_list_add(struct mask_list *l, const char *mask, const char *by, int64_t at_ms)
{
    for (uint16_t i = 0; i < l->n; i++)
        if (text_ieq(l->v[i].mask, mask))
            return 0;
    if (l->n == l->cap) {
        uint16_t cap = l->cap ? (uint16_t)(l->cap * 2) : 4;
        struct mask_entry *p = realloc(l->v, cap * sizeof *p);
        if (!p)
            return -1;
        l->v = p;
        l->cap = cap;
    }
    struct mask_entry e = {strdup(mask), strdup(by), at_ms};
    if (!e.mask || !e.by) {
        free(e.mask), free(e.by);
        return -1;
    }
    l->v[l->n++] = e;
    return 1;
}

int mask_list_del(struct mask_list *l, const char *mask)
{
    for (uint16_t i = 0; i < l->n; i++) {
        if (text_ieq(l->v[i].mask, mask)) {
            free(l->v[i].mask), free(l->v[i].by);
            memmove(&l->v[i], &l->v[i + 1], (size_t)(l->n - i - 1) * sizeof *l->v);
            l->n--;
            return 1;
        }
    }
    return 0;
}

int mask_list_match(const struct mask_list *l, const char *subject)
{
    for (uint16_t i = 0; i < l->n; i++)
        if (mask_match(l->v[i].mask, subject))
            return 1;
    return 0;
}

void mask_list_free(struct mask_list *l)
{
    for (uint16_t i = 0; i < l->n; i++)
        free(l->v[i].mask), free(l->v[i].by);
    free(l->v);
    *l = (struct mask_list){0};
}
