/* ircuser.c - an IRC connection's state and replies (see ircuser.h). */
#include "server/codecs/irc/ircuser.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "server/conn.h"

struct irc_config irc_conf = {.server_name = "natter", .network = "natter"};

struct irc_state *irc_state_of(const struct user *u)
{
    if (!u || u->ops != &irc_user_ops)
        return NULL;
    return ((struct conn *)u->ctx)->state;
}

const char *irc_nick(const struct conn *c)
{
    return c->user ? c->user->name : "*"; /* "*" until registered */
}

const char *irc_userhost(const struct user *u, char *out, size_t len)
{
    const struct irc_state *st = irc_state_of(u);
    if (st)
        snprintf(out, len, "%s@natter/irc", st->user);
    else
        snprintf(out, len, "plain@natter/plain");
    return out;
}

/* Cut a formatted line to fit 510 bytes (then "\r\n"), not inside a UTF-8 sequence. */
static void send_line(struct conn *c, char *line, int n)
{
    if (n < 0)
        return;
    if (n > IRC_BODY_MAX) {
        n = IRC_BODY_MAX;
        while (n > 0 && ((unsigned char)line[n] & 0xC0) == 0x80)
            n--;
    }
    line[n++] = '\r';
    line[n++] = '\n';
    struct msg *m = msg_new(line, (size_t)n);
    if (m) {
        irc_out(c, m);
        msg_unref(m);
    }
}

void irc_send(struct conn *c, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 2, fmt, ap);
    va_end(ap);
    send_line(c, line, n < 0 ? n : n > (int)sizeof line - 3 ? (int)sizeof line - 3 : n);
}

void irc_num(struct conn *c, const char *num, const char *fmt, ...)
{
    char line[1024];
    int k = snprintf(line, sizeof line, ":%s %s %s ", irc_conf.server_name, num, irc_nick(c));
    if (k < 0 || k >= (int)sizeof line - 3)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + k, sizeof line - 2 - (size_t)k, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    n += k;
    send_line(c, line, n > (int)sizeof line - 3 ? (int)sizeof line - 3 : n);
}

void irc_error_close(struct conn *c, const char *why, const char *text)
{
    irc_send(c, "ERROR :%s", text);
    irc_label_done(c); /* a labeled command's answer, the ERROR included, goes out before the close */
    conn_close(c, why, 1);
}

/* ==== labeled-response ==== */

void irc_out(struct conn *c, struct msg *m)
{
    struct irc_state *st = c->state;
    if (!st || !st->label[0]) {
        conn_send(c, m);
        return;
    }
    if (st->nheld == st->capheld) {
        uint32_t cap = st->capheld ? 2 * st->capheld : 8;
        struct msg **p = realloc(st->held, cap * sizeof *p);
        if (!p)
            return; /* out of memory: this line is lost, the rest goes on */
        st->held = p;
        st->capheld = cap;
    }
    st->held[st->nheld++] = msg_ref(m);
}

size_t irc_queued(const struct conn *c)
{
    const struct irc_state *st = c->state;
    size_t n = conn_queued(c);
    for (uint32_t i = 0; st && i < st->nheld; i++)
        n += st->held[i]->len;
    return n;
}

void irc_label_start(struct conn *c, const char *label)
{
    struct irc_state *st = c->state;
    size_t n = 0;
    for (const char *p = label; *p;) { /* escaped again, as a tag value; cut between characters */
        const char *esc = *p == ';' ? "\\:" : *p == ' ' ? "\\s" : *p == '\\' ? "\\\\" : NULL;
        size_t k = 1;
        while (!esc && p[k] && ((unsigned char)p[k] & 0xC0) == 0x80)
            k++;
        if (n + (esc ? 2 : k) >= sizeof st->label)
            break;
        if (esc)
            memcpy(st->label + n, esc, 2), n += 2;
        else if ((unsigned char)*p >= 0x20)
            memcpy(st->label + n, p, k), n += k;
        p += k;
    }
    st->label[n] = '\0';
}

/* Append to b (growing) the line at p (len bytes, "\r\n" included) with tag
 * added to its tags. */
struct lines {
    char *p;
    size_t n, cap;
    int failed;
};

static void lines_add(struct lines *b, const char *s1, size_t n1, const char *s2, size_t n2, const char *s3,
                      size_t n3)
{
    size_t need = b->n + n1 + n2 + n3;
    if (b->failed)
        return;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < need)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s1, n1);
    memcpy(b->p + b->n + n1, s2, n2);
    memcpy(b->p + b->n + n1 + n2, s3, n3);
    b->n = need;
}

static void add_tagged(struct lines *b, const char *tag, const char *line, size_t len)
{
    if (line[0] == '@') /* "@tag;" then its own tags */
        lines_add(b, "@", 1, tag, strlen(tag), ";", 1), lines_add(b, line + 1, len - 1, "", 0, "", 0);
    else
        lines_add(b, "@", 1, tag, strlen(tag), " ", 1), lines_add(b, line, len, "", 0, "", 0);
}

void irc_label_done(struct conn *c)
{
    struct irc_state *st = c->state;
    if (!st || !st->label[0])
        return;
    char tag[IRC_LABEL_MAX + 16];
    snprintf(tag, sizeof tag, "label=%s", st->label);
    st->label[0] = '\0';
    size_t nlines = 0;
    for (uint32_t i = 0; i < st->nheld; i++)
        for (uint32_t k = 0; k < st->held[i]->len; k++)
            nlines += st->held[i]->data[k] == '\n';
    struct lines b = {0};
    char head[256];
    if (nlines == 0) {
        int n = snprintf(head, sizeof head, "@%s :%s ACK\r\n", tag, irc_conf.server_name);
        lines_add(&b, head, (size_t)n, "", 0, "", 0);
    } else if (nlines == 1) {
        add_tagged(&b, tag, st->held[0]->data, st->held[0]->len);
    } else {
        char ref[16], batch[24];
        snprintf(ref, sizeof ref, "L%u", ++st->batches);
        snprintf(batch, sizeof batch, "batch=%s", ref);
        int n = snprintf(head, sizeof head, "@%s :%s BATCH +%s labeled-response\r\n", tag, irc_conf.server_name, ref);
        lines_add(&b, head, (size_t)n, "", 0, "", 0);
        for (uint32_t i = 0; i < st->nheld; i++) {
            const char *p = st->held[i]->data, *end = p + st->held[i]->len;
            while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
                add_tagged(&b, batch, p, len);
                p += len;
            }
        }
        n = snprintf(head, sizeof head, ":%s BATCH -%s\r\n", irc_conf.server_name, ref);
        lines_add(&b, head, (size_t)n, "", 0, "", 0);
    }
    for (uint32_t i = 0; i < st->nheld; i++)
        msg_unref(st->held[i]);
    free(st->held);
    st->held = NULL;
    st->nheld = st->capheld = 0;
    struct msg *m = b.failed ? NULL : msg_new(b.p, b.n);
    free(b.p);
    if (m) {
        conn_send(c, m);
        msg_unref(m);
    }
}
