/* conn.h - client connections: reading and framing input, queueing and writing
 * output, limits, and closing. The codec decides what the lines mean. */
#ifndef NATTER_CONN_H
#define NATTER_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

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
    double tokens;              /* flood control: lines this client may still send */
    long long last_input_ms;    /* for the idle timeout */
    char peer[48];              /* "address:port", for logs */
};

/* Set up the connection layer: the loop and hub it serves, and its limits. */
void conn_init(struct loop *l, struct hub *h, const struct conn_limits *lim, int max_fds);
struct hub *conn_hub(void);
size_t conn_count(void);

/* Adopt an accepted socket speaking codec. Returns NULL (and closes fd) on failure. */
struct conn *conn_new(int fd, const char *peer, const struct codec *codec);

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
