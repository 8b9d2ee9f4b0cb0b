/* tlsclient.h - the client's side of TLS, for natter and natter-bench: an
 * OpenSSL client session over a connected, non-blocking socket.
 *
 * Verification is on unless asked otherwise: the server's chain must lead to
 * the system's store (or the --ca file), and its certificate must name the
 * host we asked for (a DNS name, also sent as SNI, or an IP address). Why a
 * handshake failed is said in words that name the cause: expired, not for this
 * host, an issuer nobody here trusts, not a TLS port.
 *
 * Linked only into natter and natter-bench (core/ is its layer: it knows nothing
 * of either). Like net.c it reports errors into a buffer, never prints.
 */
#ifndef NATTER_TLSCLIENT_H
#define NATTER_TLSCLIENT_H

#include <stddef.h>
#include <sys/types.h>

struct tlsc;      /* settings shared by connections (an SSL_CTX); safe across threads */
struct tlsc_conn; /* one session: one thread at a time */

/* verify 0: accept any certificate (--insecure). ca_file: also trust the
 * authorities in this PEM file (NULL: the system's store only). NULL with a
 * message in err on failure. */
struct tlsc *tlsc_new(int verify, const char *ca_file, char *err, size_t errlen);
void tlsc_free(struct tlsc *t);

/* A session over socket fd (not owned) for host, the name the server's
 * certificate must carry. NULL with err set on failure. */
struct tlsc_conn *tlsc_conn_new(struct tlsc *t, int fd, const char *host, char *err, size_t errlen);
void tlsc_conn_free(struct tlsc_conn *c);

/* Drive the handshake: 1 done, 0 not yet (poll for tlsc_wants_write ? POLLOUT :
 * POLLIN and call again), -1 failed with the reason in err; -2 the same when
 * the server closed the connection without a word (how natterd refuses on its
 * TLS port: full, too many from one address). */
int tlsc_handshake(struct tlsc_conn *c, char *err, size_t errlen);
/* Like read(2) and write(2) on the socket: -1 with errno EAGAIN when the
 * socket must become ready first (tlsc_wants_write says which way). A write
 * after a short or EAGAIN one must start with the bytes not taken. */
ssize_t tlsc_read(struct tlsc_conn *c, void *buf, size_t len);
ssize_t tlsc_write(struct tlsc_conn *c, const void *buf, size_t len);
/* The last call that answered EAGAIN waits for writability (else readability). */
int tlsc_wants_write(const struct tlsc_conn *c);
/* Bytes decrypted and not read yet: read them before waiting on the socket. */
size_t tlsc_pending(const struct tlsc_conn *c);
/* Send close_notify (best effort; the socket stays open). */
void tlsc_close_notify(struct tlsc_conn *c);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384", for a notice. */
const char *tlsc_describe(const struct tlsc_conn *c, char *buf, size_t len);
/* After a read or write failed with EPROTO: what went wrong, in words. */
const char *tlsc_error(const struct tlsc_conn *c);

#endif
