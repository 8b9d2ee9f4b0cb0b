/* codec.h - the seam between a connection (bytes, limits) and the hub (users,
 * rooms): a protocol.
 *
 * A codec turns a connection's input bytes into hub calls and, through the
 * user_ops it registers with the hub (hub.h), hub events into output bytes. The
 * plain line protocol (codecs/line/) is one codec; IRC and HTTP are others. Each
 * listener names the codec its connections start with; conn_set_codec hands a
 * connection, and the input it has not consumed, to another one (an IRC client
 * recognised on the plain port, HTTP upgrading to WebSocket). See
 * docs/architecture.md, "Adding a codec".
 *
 * Every function runs on the loop, for one connection, never re-entered for it.
 */
#ifndef NATTER_CODEC_H
#define NATTER_CODEC_H

#include <stddef.h>

struct conn;

/* The limits conn.c enforces, for the codec to put into words (codec->limit,
 * codec->refusal); conn.c itself never writes protocol text. */
enum conn_limit {
    LIMIT_RATE,     /* over --rate: reading is paused until it is back under (value: the rate) */
    LIMIT_FLOOD,    /* paused again and again for --flood-timeout: disconnected */
    LIMIT_LOGIN,    /* nothing said for --login-timeout seconds (value): disconnected */
    LIMIT_IDLE,     /* silent for --idle-timeout seconds (value): disconnected */
    LIMIT_QUIET,    /* silent for half of --idle-timeout (value): a protocol with pings sends one now */
    LIMIT_FULL,     /* refused: --max-clients reached */
    LIMIT_PER_ADDR, /* refused: --max-per-ip reached for its address */
    LIMIT_CONNECT_RATE, /* refused: its address (/32, /64) connects faster than --connect-rate */
};

struct codec {
    const char *name; /* for logs: "line", "irc" */
    /* The connection is ready (its transport's handshake is done): greet the
     * client, set up c->state and register with the hub as need be. Returns 0,
     * or -1 when out of memory (the connection is then closed). */
    int (*open)(struct conn *c);
    /* Input: len bytes at data, writable (frames may be unmasked, lines
     * terminated in place). Returns how many it consumed, 0 to len; the rest is
     * kept and offered again with the next input after it, so a unit (a line, a
     * frame) may be consumed only once it is whole. Within it the codec charges
     * flood control (conn_spend) and stops when that says pause; it may close the
     * connection (conn_close), or switch it to another codec (conn_set_codec),
     * which is then offered the bytes not consumed. Nothing may keep pointing
     * into data after it returns. */
    size_t (*input)(struct conn *c, char *data, size_t len);
    /* Tell the client it hit a limit (LIMIT_RATE to LIMIT_QUIET), as its protocol
     * words it; for the disconnecting ones, this is its last line before the close. */
    void (*limit)(struct conn *c, enum conn_limit what, double value);
    /* The text written to a connection refused before it is served (LIMIT_FULL,
     * LIMIT_PER_ADDR, LIMIT_CONNECT_RATE), on transports that may write before serving (not TLS). */
    const char *(*refusal)(enum conn_limit what);
    /* The connection is going away: leave the hub (reason, for the others to
     * see, is NULL when the connection only switches to another codec) and free
     * c->state. Called once per open, also when open failed. */
    void (*close)(struct conn *c, const char *reason);
    /* Optional (NULL: none): the name the connection's user goes by now, for the
     * logs' connect and disconnect lines; NULL while it has none. */
    const char *(*who)(const struct conn *c);
};

#endif
