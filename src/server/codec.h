/* codec.h - the seam between connections (bytes) and the hub (users, rooms).
 *
 * A codec turns a connection's input lines into hub calls and, through the
 * user_ops it registers with the hub, hub events into output bytes. The plain
 * line protocol (linecodec.c) is one codec; an IRC codec would be another,
 * chosen per listening socket. See docs/architecture.md.
 */
#ifndef NATTER_CODEC_H
#define NATTER_CODEC_H

#include <stddef.h>

struct conn;

struct codec {
    const char *name;
    /* A new connection: greet it and register its user. Returns -1 on failure. */
    int (*open)(struct conn *c);
    /* One input line (sanitising is the codec's job). Return non-zero when the
     * connection is closing and no more input should be read. */
    int (*line)(struct conn *c, const char *line, size_t len);
    /* A line passed the length limit and was discarded. */
    void (*overlong)(struct conn *c, size_t max);
    /* The connection is going away (reason for others to see); leave the hub. */
    void (*close)(struct conn *c, const char *reason);
};

#endif
