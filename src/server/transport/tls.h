/* tls.h - the TLS transport: OpenSSL over the transport below it (the socket),
 * driven from the loop without ever blocking, in the manner of Redis' tls.c.
 *
 * A listener with a TLS profile puts tls_wrap on each accepted socket, with a
 * struct tls_ctx (the certificate and key, TLS 1.2 and 1.3 only, the library's
 * default ciphers) as its argument. The handshake runs before the codec is
 * opened (transport.h: handshake); what OpenSSL wants next (WANT_READ,
 * WANT_WRITE) is folded into the events the connection asks the loop for, and
 * records decrypted but not read yet are reported by `pending`. An idle
 * connection holds no OpenSSL buffers (SSL_MODE_RELEASE_BUFFERS).
 *
 * tls_reload reads the files again: new connections get the new certificate,
 * the ones already up keep the context they started with (OpenSSL counts its
 * references), and a file that does not load leaves the old context in place.
 */
#ifndef NATTER_TLS_H
#define NATTER_TLS_H

#include <stddef.h>

#include "server/transport/transport.h"

struct tls_ctx;

/* Load cert (a PEM chain, leaf first) and key (PEM, not encrypted). Returns
 * NULL with a message naming the file and what is wrong in err. */
struct tls_ctx *tls_ctx_new(const char *cert, const char *key, char *err, size_t errlen);
/* Read the same files again for the connections accepted from now on. Returns
 * 0, or -1 with a message in err (the old certificate stays in use). */
int tls_reload(struct tls_ctx *x, char *err, size_t errlen);
/* What the current certificate is, for the log: "CN=example.org, until
 * Mar  1 12:00:00 2027 GMT". */
const char *tls_ctx_describe(const struct tls_ctx *x, char *buf, size_t len);
/* Free the context; connections still using it keep it alive until they close. */
void tls_ctx_free(struct tls_ctx *x);

/* A transport_wrap_fn: arg is a struct tls_ctx *. */
struct transport *tls_wrap(void *arg, struct transport *sock);

/* 1 if t is a TLS transport (for codecs: IRC's +Z and WHOIS 671). */
int tls_transport(const struct transport *t);

#endif
