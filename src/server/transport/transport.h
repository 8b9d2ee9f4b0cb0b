/* transport.h - what carries a connection's bytes: a table of functions under
 * every connection, like Redis' ConnectionType (connection.h).
 *
 * conn.c reads and writes only through a transport; it never calls read() or
 * write() on a socket itself. TCP (tcp.c) is the first transport; TLS and
 * WebSocket framing are others. A transport may run over another one (TLS over
 * the socket, WebSocket frames over TLS): it keeps the one below in a struct of
 * its own that begins with a struct transport, and calls it through its ops.
 *
 * The contract, for every function below:
 *  - It runs on the loop's thread, to completion, and never blocks: what cannot
 *    be done now fails with errno EAGAIN, and `events` then says what the loop
 *    must wait for before the connection tries again.
 *  - It never calls back into the connection or the codec, and never frees the
 *    connection: errors are return values, and the connection decides.
 *  - Buffers are the caller's, lent for the call only.
 */
#ifndef NATTER_TRANSPORT_H
#define NATTER_TRANSPORT_H

#include <stddef.h>
#include <sys/types.h>

struct transport;

struct transport_ops {
    const char *name; /* for logs: "tcp", "tls", "ws" */
    /* Finish setting up (a TLS handshake) before the codec may greet the client:
     * 1 done, 0 not yet (call again when `events` is ready), -1 failed (errno set).
     * NULL: ready at once. */
    int (*handshake)(struct transport *t);
    /* Up to len bytes into buf: the count, 0 at end of stream, or -1 with errno
     * set (EAGAIN: nothing yet). */
    ssize_t (*read)(struct transport *t, void *buf, size_t len);
    /* Write from buf, one gathered block (outq_write gathers queued messages):
     * bytes taken, possibly fewer than len, or -1 with errno set (EAGAIN: none
     * taken). After a short or EAGAIN write the next call starts with the bytes
     * not taken, perhaps from another address and with more after them. */
    ssize_t (*write)(struct transport *t, const void *buf, size_t len);
    /* What the loop must watch (LOOP_READ|LOOP_WRITE) so that what the
     * connection wants (want, the same bits) can make progress: a TLS write that
     * needs the peer's data first answers LOOP_READ. NULL: want itself. */
    int (*events)(struct transport *t, int want);
    /* Bytes `read` would return without the socket becoming readable (records
     * already decrypted): the connection drains them before the loop sleeps.
     * NULL: never any. */
    size_t (*pending)(struct transport *t);
    /* End our direction (FIN, TLS close_notify, a WebSocket close frame) once
     * everything written has gone: 0, or -1 with errno set. */
    int (*shutdown)(struct transport *t);
    /* Free what it holds and close what is under it; the socket's transport
     * closes the descriptor. */
    void (*close)(struct transport *t);
    /* After a call failed with errno EPROTO or the like: what went wrong, in
     * words, for the log ("TLS: wrong version number"). NULL: strerror says it.
     * The op itself may be NULL. */
    const char *(*error)(struct transport *t);
    /* A liveness probe of the transport's own (a WebSocket ping), when the
     * client has been silent for half its --idle-timeout. NULL: none. */
    void (*ping)(struct transport *t);
    /* The server is closing the connection for one of its limits (flooding,
     * timeouts, too slow): a transport with close codes says so (WebSocket
     * 1008) when it shuts down. NULL: nothing to say. */
    void (*limit)(struct transport *t);
    /* 1 if the bytes travel encrypted (TLS here or below), for IRC's +Z.
     * NULL: no. */
    int (*secure)(const struct transport *t);
};

struct transport {
    const struct transport_ops *ops;
    int fd; /* the socket underneath, for the loop to watch */
};

/* How a listener puts a transport on an accepted socket: sock is the socket's
 * own transport (tcp.c, inside the connection); return it as it is (plain TCP)
 * or a transport built over it, or NULL on failure (errno set). arg is the
 * listener's (an SSL_CTX, say). */
typedef struct transport *transport_wrap_fn(void *arg, struct transport *sock);

#endif
