/* conn.h - client connections: reading and framing input, queueing and writing
 * output, limits, and closing. The codec decides what the lines mean. */
#ifndef NATTER_CONN_H
#define NATTER_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct loop;
struct hub;
struct codec;
struct user;

struct conn_limits {
    size_t max_line;    /* bytes in one input line */
    size_t max_outbuf;  /* bytes queued for a client before it is dropped as too slow */
    double rate;        /* lines per second per client; 0 = unlimited */
    double burst;       /* lines a client may send at once */
    int idle_timeout;   /* seconds without input before a client is dropped; 0 = never */
    int login_timeout;  /* seconds a new client may stay without sending a line; 0 = forever */
    int flood_timeout;  /* seconds a client may stay over its rate before it is dropped */
    unsigned max_per_ip; /* connections from one address; 0 = unlimited */
};

struct conn {
    int fd;
    uint16_t flags;
    const struct codec *codec;
    struct user *user;          /* owned by the codec/hub */
    struct inbuf in;
    struct outq out;
    struct conn *next_pending;  /* on the list of connections with output to write */
    struct conn *next_close;    /* on the closing list, then the list to free */
    const char *close_reason;
    int close_errno;
    float tokens;               /* flood control: lines this client may still send */
    /* Times in ms since conn_init (32 bits: intervals up to 49 days). */
    uint32_t last_input;        /* for the idle timeout and token refills */
    uint32_t connected;         /* for the login timeout */
    uint32_t flood_start;       /* this bout of flooding began (with CONN_FLOODING) */
    uint32_t resumed;           /* reading last resumed after a pause */
    struct ip_count *ip;        /* its address, shared with the others from there */
    uint16_t port;              /* its port: logs show address:port */
};

/* Set up the connection layer: the loop and hub it serves, and its limits. */
/* Returns 0, or -1 when out of memory. */
int conn_init(struct loop *l, struct hub *h, const struct conn_limits *lim, int max_fds);
struct hub *conn_hub(void);
size_t conn_count(void);

/* Adopt an accepted socket speaking codec; peer is "address:port". Returns NULL
 * (and closes fd) on failure, after a line saying why if there is one to say. */
struct conn *conn_new(int fd, const char *peer, const struct codec *codec);

/* Charge a client flood-control tokens for bytes of reply it asked for (a /who of
 * a big room costs the server more than the line that asked). */
void conn_charge(struct conn *c, size_t bytes);

/* Say line to a socket we will not serve, and close it; logs why (unless peer is NULL). */
void conn_refuse(int fd, const char *peer, const char *line, const char *why);

/* How often the connection layer needs conn_tick() called (always: lingering
 * closes end on it). */
long conn_tick_ms(void);

/* Queue a msg (a reference is taken) and schedule a coalesced write. */
void conn_send(struct conn *c, struct msg *m);
/* Queue a formatted line (for replies to this connection only). */
void conn_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Close after this loop turn: reason for logs and for the others in its rooms.
 * With flush, queued output (a goodbye) is written first, as far as it goes. */
void conn_close(struct conn *c, const char *reason, int flush);

/* Once per loop turn, before sleeping: close what must close, write what is queued. */
void conn_before_sleep(void);
/* Periodic work: resume throttled readers, reap idle connections. */
void conn_tick(void);
/* Close every connection (after hub_shutdown queued the goodbye) and free them. */
void conn_close_all(void);

#endif
