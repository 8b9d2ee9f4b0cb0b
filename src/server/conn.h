/* conn.h - client connections: input offered to the codec, output queued and
 * written through the transport, the limits, and closing.
 *
 * conn.c moves bytes and enforces limits; what the bytes mean is the codec's
 * (codec.h), how they travel is the transport's (transport/transport.h). It
 * writes no protocol text of its own: limits are put into words by the codec.
 *
 * == The closing rule ==
 * conn_close never frees anything and never closes the socket: it marks the
 * connection closing and puts it on a list. From then on the connection ignores
 * input and conn_send, but its memory stays valid. Just before the loop sleeps,
 * conn.c tells the codec (codec->close, so the hub hears the user left), writes
 * the connection's last words if asked to (lingering for them: 2 s without progress, 10 s at most),
 * closes the transport, and frees the struct last, once no list points at it.
 * So:
 *  - anyone may call conn_close at any moment, on any connection, also while the
 *    hub iterates over a room that holds it, or the codec over its lines;
 *  - a struct conn * taken during a loop turn stays valid until that turn's end;
 *  - whatever outlives the turn (a worker thread's answer, a Redis reply) holds
 *    the connection's id instead and asks conn_by_id, which answers NULL once the
 *    connection is closing or gone.
 */
#ifndef NATTER_CONN_H
#define NATTER_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "server/codec.h"
#include "server/transport/transport.h"

struct loop;
struct hub;
struct history;
struct user;

struct conn_limits {
    size_t max_line;    /* bytes in one input line */
    size_t max_outbuf;  /* bytes queued for a client before it is dropped as too slow */
    double rate;        /* flood-control units (lines) per second per client; 0 = unlimited */
    double burst;       /* units a client may spend at once */
    int idle_timeout;   /* seconds without input before a client is dropped; 0 = never */
    int login_timeout;  /* seconds a new client may stay without saying anything; 0 = forever */
    int flood_timeout;  /* seconds a client may stay over its rate before it is dropped */
    int handshake_timeout; /* seconds a transport's handshake (TLS) may take; 0 = no limit of its own */
    unsigned max_per_ip; /* connections from one address; 0 = unlimited */
    double connect_rate;  /* new connections per minute per address (/32, /64); 0 = unlimited */
    double connect_burst; /* new connections at once per address */
    int sndbuf, rcvbuf;   /* SO_SNDBUF, SO_RCVBUF of each connection; 0 = the kernel's autotuning */
};

/* What the connections of one listener share (listener.c keeps it, and it must
 * outlive them; limits changed in place apply to them at once). */
struct conn_profile {
    const char *name;          /* for logs: "plain", "irc" */
    const struct codec *codec; /* what its connections speak first */
    transport_wrap_fn *wrap;   /* the transport over the socket; NULL: plain TCP */
    void *wrap_arg;
    struct hub *hub;           /* for the codecs: where their users live */
    struct history *history;   /* for the codecs: room history (history.h); NULL when off */
    struct conn_limits lim;
    const char *motd;          /* a line for the codec to greet with after its welcome, or NULL */
};

struct conn {
    struct transport *t;        /* what the connection reads and writes through */
    struct transport sock;      /* the socket's own transport, at the bottom */
    uint64_t id;                /* unique for the process's life: see conn_by_id */
    const struct conn_profile *profile;
    const struct codec *codec;
    struct user *user;          /* the codec's: its hub user, if it has one */
    void *state;                /* the codec's: whatever it keeps per connection */
    struct inbuf in;            /* input the codec has not consumed yet */
    struct outq out;
    const char *close_reason;
    char *closing_who;          /* the user's name when conn_close was called, for the disconnect line */
    int close_errno;
    float tokens;               /* flood control: units this client may still spend */
    /* Times in ms since conn_init (32 bits: intervals up to 49 days). */
    uint32_t last_input;        /* for the idle timeout and token refills */
    uint32_t connected;         /* for the login timeout */
    uint32_t flood_start;       /* this bout of flooding began (with CONN_FLOODING) */
    uint32_t resumed;           /* reading last resumed after a pause */
    uint32_t charged_ms;        /* pause paid for listings since the last one (not flooding) */
    struct addr *addr;          /* its address, shared with the others from there */
    size_t allowance;           /* queued cost of listings, not held against --max-outbuf */
    uint16_t port;              /* its port: logs show address:port */
    uint16_t flags;
    uint8_t frame;              /* the codec's framing state (lineframe.h), 0 at first */
};

/* Set up the connection layer on loop for descriptors below max_fds (at most
 * 2^24), from a clean state every time. It registers its own before-sleep hook
 * (closes, writes) and timer (timeouts, resuming throttled readers). Returns 0,
 * or -1 when out of memory. */
int conn_init(struct loop *l, int max_fds);
/* Close every connection (their goodbyes get one write: there is no loop left to
 * linger in), free everything, and leave the loop. conn_init may follow. */
void conn_shutdown(void);
size_t conn_count(void);
/* The loop conn_init was given, for codecs' timers. */
struct loop *conn_loop(void);

/* Adopt an accepted, non-blocking socket fd from peer ("address:port") on the
 * terms of profile p. Returns NULL (fd closed, the reason logged and, where the
 * transport allows, told to the client) on failure. */
struct conn *conn_new(int fd, const char *peer, const struct conn_profile *p);
/* Refuse an accepted socket that will not be served: log why (unless peer is
 * NULL), tell the client in its codec's words where the transport may, close. */
void conn_refuse(int fd, const char *peer, const struct conn_profile *p, enum conn_limit why, const char *logwhy);

/* The connection with this id, or NULL once it is closing or gone. Ids are never
 * reused: (a counter << 24) | descriptor. */
struct conn *conn_by_id(uint64_t id);

static inline struct hub *conn_hub(const struct conn *c) { return c->profile->hub; }
static inline struct history *conn_history(const struct conn *c) { return c->profile->history; }
static inline const struct conn_limits *conn_limits(const struct conn *c) { return &c->profile->lim; }
/* "address:port", for logs (a static buffer, overwritten by the next call). */
const char *conn_peer(const struct conn *c);
/* The connection's number for logs: "#12" in them, unique for the process's life. */
unsigned long long conn_log_id(const struct conn *c);
/* "#12 address:port name" (the name once the codec knows one), for logs (a
 * static buffer, overwritten by the next call). */
const char *conn_describe(const struct conn *c);
int conn_closing(const struct conn *c);

/* For codecs, from within codec->input: */
/* Flood control: spend units (a line, a frame, a command: the codec's choice).
 * Returns 1 to go on, 0 when the client must pause: the codec stops consuming
 * and returns; reading stops, and the rest is offered again once tokens are back.
 * TCP then holds what else the client sends: nothing is lost. */
int conn_spend(struct conn *c, double units);
/* Charge units for the cost of a reply the client asked for (a listing): the
 * whole cost, however big. The pause it may cause is not flooding: the flood
 * timeout counts from the pause's end. */
void conn_charge(struct conn *c, double units);
/* Between conn_listing(c, 1) and conn_listing(c, 0), what is queued for c is a
 * listing it asked for: it never makes c be dropped as too slow, and its cost is
 * not held against --max-outbuf while c reads it (the allowance shrinks as c
 * reads; a new listing replaces the allowance of the one before). */
void conn_listing(struct conn *c, int on);
/* The server is too busy for this connection's next unit this turn (hub
 * HUB_EBUSY): the codec leaves it unconsumed and returns; the connection stops
 * reading and its kept input is offered again first thing next turn. */
void conn_yield(struct conn *c);
/* Call fn(arg) once per loop turn, after the turn's writes and before the
 * yielded connections are served again (natterd: the hub's fresh budget). */
void conn_on_turn(void (*fn)(void *arg), void *arg);
/* The client has said something that counts: the login timeout is over. */
void conn_spoke(struct conn *c);
/* Whether it has (conn_spoke). */
int conn_has_spoken(const struct conn *c);
/* Switch the connection to another codec: the old one's close (reason NULL),
 * then the new one's open; the input not consumed yet is offered to the new one.
 * From within codec->input, return what the old codec consumed. */
void conn_set_codec(struct conn *c, const struct codec *codec);

/* Put the transport t (built over c->t, which it now owns) under the
 * connection: HTTP upgraded to WebSocket, as h2o_upgrade_to_websocket does.
 * What was queued goes out through the old one first; while some of it cannot
 * (the client does not read), there is no switch: -1 with errno EBUSY. The
 * codec that calls this switches itself next (conn_set_codec), and hands t
 * the bytes it read past its last unit. Returns 0, or -1 (the caller closes). */
int conn_set_transport(struct conn *c, struct transport *t);
/* Serve the connection on the terms of another profile from now on (its
 * limits; its codec stays until conn_set_codec): an upgraded HTTP connection
 * gets the IRC limits. Its address keeps counting for --max-per-ip. */
void conn_set_profile(struct conn *c, const struct conn_profile *p);
/* 1 if its bytes travel encrypted (TLS, also under WebSocket). */
int conn_secure(const struct conn *c);

/* Queue a msg (a reference is taken) and schedule a coalesced write. */
void conn_send(struct conn *c, struct msg *m);
/* Bytes queued and not written yet. */
static inline size_t conn_queued(const struct conn *c) { return c->out.bytes; }

/* Close after this loop turn (the closing rule above): reason for logs and for
 * the others. With flush, queued output (a goodbye) is written first. */
void conn_close(struct conn *c, const char *reason, int flush);

#endif
