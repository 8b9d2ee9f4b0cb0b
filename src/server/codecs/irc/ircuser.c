/* ircuser.c - an IRC connection's state and replies (see ircuser.h). */
#include "server/codecs/irc/ircuser.h"

#include <stdarg.h>
#include <stdio.h>
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
        conn_send(c, m);
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
    conn_close(c, why, 1);
}
