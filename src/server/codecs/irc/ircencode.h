/* ircencode.h - hub events as IRC lines: the IRC codec's user_ops
 * (irc_user_ops, declared in ircuser.h).
 *
 * A broadcast's bytes depend only on the recipient's variant: the capabilities
 * that change them (server-time, message-tags, away-notify; IRC_VARIANT_CAPS),
 * so a room of IRC users with the same capabilities shares one msg. Text too
 * long for one 512-byte line becomes several lines, cut at UTF-8 character
 * boundaries, nothing lost. */
#ifndef NATTER_IRCENCODE_H
#define NATTER_IRCENCODE_H

#include <stddef.h>

struct user;

/* "nick!user@host" of u under the name nick (u's own unless it changed). */
const char *irc_mask(const struct user *u, const char *nick, char *out, size_t len);

#endif
