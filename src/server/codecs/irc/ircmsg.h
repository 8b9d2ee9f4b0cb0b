/* ircmsg.h - IRC messages as text: parsing a client's line, cleaning its text,
 * cutting long text for 512-byte lines. Pure functions, no connection or hub, so
 * the unit tests and the fuzzer can drive them alone.
 *
 * A line is  [@tags SPACE] [:prefix SPACE] COMMAND {SPACE param} [SPACE :trailing]
 * (the Modern IRC client protocol): one or more spaces separate the parts; after
 * 14 middle parameters the rest of the line is the 15th, colon or not.
 */
#ifndef NATTER_IRCMSG_H
#define NATTER_IRCMSG_H

#include <stddef.h>

#define IRC_MAX_PARAMS 15
#define IRC_LINE_MAX 512   /* bytes of a line without its tags, "\r\n" included */
#define IRC_BODY_MAX (IRC_LINE_MAX - 2) /* without the "\r\n" */
#define IRC_TAGS_MAX 4096  /* bytes of the tags a client may send ('@' and the space included) */

struct irc_msg {
    char *tags;       /* without the '@', NULL when none */
    size_t tags_len;  /* with '@' and the space: what counts against IRC_TAGS_MAX */
    char *prefix;     /* without the ':', NULL when none (clients should send none) */
    char *command;    /* as sent; compare with text_ieq */
    char *params[IRC_MAX_PARAMS];
    int nparams;
};

/* Split line (NUL-terminated, without "\r\n") in place into m. Returns 0, or -1
 * when it has no command (empty, only tags or a prefix). */
int irc_parse(char *line, struct irc_msg *m);

/* Copy src (len bytes) to dst as text_sanitize does (valid UTF-8, no controls),
 * but keeping what IRC text carries: the formatting codes (^B ^C ^D ^O ^Q ^V ^]
 * ^^ ^_) and CTCP's ^A. No NUL, CR or LF survives. dst holds 3*len + 1 bytes.
 * Returns the length written. */
size_t irc_sanitize(char *dst, const char *src, size_t len);

/* How many of the len bytes of text fit in max bytes without cutting a UTF-8
 * sequence: len if all of it does, else at least one character (if max > 0). */
size_t irc_fit(const char *text, size_t len, size_t max);

/* The value of tag key in m's tags (unescaped into out, outlen bytes), or NULL
 * when it is not there. */
const char *irc_tag(const struct irc_msg *m, const char *key, char *out, size_t outlen);

/* The client-only tags of m ("+key[=value]" with key letters, digits, '-', '/',
 * '.'), as sent and joined by ';', into out (at most outlen - 1 bytes, whole
 * tags only). Returns out, or NULL when there are none. */
const char *irc_client_tags(const struct irc_msg *m, char *out, size_t outlen);

#endif
