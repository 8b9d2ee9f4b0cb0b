/* tls.c - the TLS transport (see tls.h and transport.h).
 *
 * OpenSSL reads and writes through a BIO of our own that calls the transport
 * below (the socket's), so TLS is one more layer of the seam and never touches
 * the descriptor itself. Every SSL call is non-blocking: when OpenSSL needs the
 * socket to become readable or writable first it says WANT_READ or WANT_WRITE;
 * we answer EAGAIN and remember which, and `events` turns what the connection
 * wants into what the loop must wait for:
 *
 *   - during the handshake: whatever the handshake last asked for;
 *   - a read that wants a write (a TLS 1.3 KeyUpdate answer that did not fit):
 *     wait for writability to read again;
 *   - a write that wants a read: wait for readability to write again, even
 *     while flood control has stopped the connection reading.
 *
 * The connection (conn.c) retries both directions on any event of a transport
 * that has `events`, so a remembered want is always followed up. Records that
 * OpenSSL has decrypted and we have not read (SSL_pending) announce themselves
 * to no descriptor: conn.c asks `pending` after each read and drains them
 * before the loop sleeps.
 *
 * OpenSSL keeps an error queue per thread; a stale entry would make the next
 * connection's SSL_get_error lie, so it is cleared before every call and
 * emptied after every failure.
 */
#include "server/transport/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/loop.h"

struct tls_ctx {
    SSL_CTX *ctx; /* for the connections accepted from now on */
    char *cert, *key;
};

enum {
    TLS_READY = 1 << 0,             /* the handshake is done */
    TLS_HANDSHAKE_WANTS_WRITE = 1 << 1,
    TLS_READ_WANTS_WRITE = 1 << 2,
    TLS_WRITE_WANTS_READ = 1 << 3,
    TLS_FAILED = 1 << 4,            /* a fatal error: no close_notify may follow */
};

struct tls {
    struct transport base; /* fd: the socket's, for the loop */
    struct transport *below;
    SSL *ssl;
    const char *why;       /* the last failure, in words (static strings) */
    unsigned flags;
};

static const struct transport_ops tls_ops;

/* ==== A BIO over the transport below ==== */

static int bio_write(BIO *b, const char *buf, size_t len, size_t *written)
{
    struct transport *below = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n = below->ops->write(below, buf, len);
    if (n >= 0) {
        *written = (size_t)n;
        return 1;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        BIO_set_retry_write(b);
    *written = 0;
    return 0;
}

static int bio_read(BIO *b, char *buf, size_t len, size_t *got)
{
    struct transport *below = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n = below->ops->read(below, buf, len);
    if (n > 0) {
        *got = (size_t)n;
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_read(b);
    *got = 0;
    return 0; /* n == 0: end of stream (no retry flag) */
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH; /* writes go straight down: nothing to flush */
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *bio_method(void)
{
    static BIO_METHOD *m;
    if (!m && (m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "natter transport")) != NULL) {
        BIO_meth_set_write_ex(m, bio_write);
        BIO_meth_set_read_ex(m, bio_read);
        BIO_meth_set_ctrl(m, bio_ctrl);
        BIO_meth_set_create(m, bio_create);
    }
    return m;
}

/* ==== Contexts: the certificate and the settings ==== */

/* The first error on OpenSSL's queue, in words, and the queue emptied. */
static const char *ssl_reason(void)
{
    unsigned long e = ERR_get_error();
    const char *r = !e ? NULL : ERR_SYSTEM_ERROR(e) ? strerror(ERR_GET_REASON(e)) : ERR_reason_error_string(e);
    ERR_clear_error();
    return r ? r : "unknown error";
}

/* An encrypted key would make OpenSSL ask for its passphrase on the terminal,
 * which a server must never wait for: refuse instead. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

static SSL_CTX *load(const char *cert, const char *key, char *err, size_t errlen)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "TLS: %s", ssl_reason());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* No renegotiation (TLS 1.2's, a way to make a server work for nothing);
     * a peer that closes TCP without close_notify is an end of stream, as on
     * the plain port: lines are whole or are not taken, so truncation cannot
     * forge one. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* conn.c writes gathered blocks and, after a short write, the rest from
     * another address with more behind it; an idle connection gives its
     * buffers back (about 34 KB each way otherwise). */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* Resumption by stateless tickets only: no session cache to grow. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    const char *what = cert;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        (what = key, SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)) {
        unsigned long e = ERR_peek_error();
        if (what == key && ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
            snprintf(err, errlen, "TLS key %s does not belong to the certificate %s", key, cert);
        else
            snprintf(err, errlen, "TLS %s %s: %s", what == cert ? "certificate" : "key", what, ssl_reason());
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "TLS key %s does not belong to the certificate %s", key, cert);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

struct tls_ctx *tls_ctx_new(const char *cert, const char *key, char *err, size_t errlen)
{
    struct tls_ctx *x = calloc(1, sizeof *x);
    if (!x || !(x->cert = strdup(cert)) || !(x->key = strdup(key)) || !bio_method()) {
        snprintf(err, errlen, "TLS: out of memory");
        tls_ctx_free(x);
        return NULL;
    }
    if (!(x->ctx = load(cert, key, err, errlen))) {
        tls_ctx_free(x);
        return NULL;
    }
    return x;
}

int tls_reload(struct tls_ctx *x, char *err, size_t errlen)
{
    SSL_CTX *ctx = load(x->cert, x->key, err, errlen);
    if (!ctx)
        return -1;
    SSL_CTX_free(x->ctx); /* connections that hold it keep it until they close */
    x->ctx = ctx;
    return 0;
}

const char *tls_ctx_describe(const struct tls_ctx *x, char *buf, size_t len)
{
    X509 *cert = SSL_CTX_get0_certificate(x->ctx);
    char subject[256] = "?", until[64] = "?";
    if (cert) {
        X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
        BIO *mem = BIO_new(BIO_s_mem());
        if (mem && ASN1_TIME_print(mem, X509_get0_notAfter(cert)) == 1) {
            int n = BIO_read(mem, until, sizeof until - 1);
            until[n > 0 ? n : 0] = '\0';
        }
        BIO_free(mem);
    }
    int expired = cert && X509_cmp_current_time(X509_get0_notAfter(cert)) < 0;
    snprintf(buf, len, "%s %s, %s %s%s", x->cert, subject, expired ? "EXPIRED since" : "valid until", until,
             expired ? ": clients will refuse it" : "");
    ERR_clear_error();
    return buf;
}

void tls_ctx_free(struct tls_ctx *x)
{
    if (!x)
        return;
    SSL_CTX_free(x->ctx);
    free(x->cert);
    free(x->key);
    free(x);
}

/* ==== The transport ==== */

/* After an SSL call returned rc (not success): 1 if it must wait (errno EAGAIN;
 * *want says for what), 0 at a clean end of stream, -1 on failure (errno set,
 * s->why in words). saved: errno right after the call. */
static int failed(struct tls *s, int rc, int saved, int *want)
{
    switch (SSL_get_error(s->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        *want = LOOP_READ;
        errno = EAGAIN;
        return 1;
    case SSL_ERROR_WANT_WRITE:
        *want = LOOP_WRITE;
        errno = EAGAIN;
        return 1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL: /* the transport below failed */
        s->flags |= TLS_FAILED;
        ERR_clear_error();
        s->why = NULL;
        errno = saved ? saved : ECONNRESET;
        return -1;
    default: /* SSL_ERROR_SSL: a protocol error, an alert, garbage */
        s->flags |= TLS_FAILED;
        s->why = ssl_reason();
        errno = EPROTO;
        return -1;
    }
}

static int tls_handshake(struct transport *t)
{
    struct tls *s = (struct tls *)t;
    ERR_clear_error();
    int rc = SSL_do_handshake(s->ssl), saved = errno, want;
    if (rc == 1) {
        s->flags = (s->flags | TLS_READY) & ~TLS_HANDSHAKE_WANTS_WRITE;
        return 1;
    }
    switch (failed(s, rc, saved, &want)) {
    case 1:
        s->flags = want == LOOP_WRITE ? s->flags | TLS_HANDSHAKE_WANTS_WRITE : s->flags & ~TLS_HANDSHAKE_WANTS_WRITE;
        return 0;
    case 0:
        s->why = "the peer closed during the handshake";
        errno = ECONNRESET;
        return -1;
    default:
        if (!s->why && errno == ECONNRESET)
            s->why = "the peer closed during the handshake";
        return -1;
    }
}

static ssize_t tls_read(struct transport *t, void *buf, size_t len)
{
    struct tls *s = (struct tls *)t;
    size_t got = 0;
    s->flags &= ~TLS_READ_WANTS_WRITE;
    ERR_clear_error();
    int rc = SSL_read_ex(s->ssl, buf, len, &got), saved = errno, want;
    if (rc == 1)
        return (ssize_t)got;
    switch (failed(s, rc, saved, &want)) {
    case 1:
        if (want == LOOP_WRITE)
            s->flags |= TLS_READ_WANTS_WRITE;
        return -1;
    case 0:
        return 0;
    default:
        return -1;
    }
}

/* With SSL_MODE_ENABLE_PARTIAL_WRITE each SSL_write returns after a record or
 * so; keep going until the block is taken or the socket is full, so that a
 * short write means full, as it does for a socket. */
static ssize_t tls_write(struct transport *t, const void *buf, size_t len)
{
    struct tls *s = (struct tls *)t;
    size_t total = 0;
    s->flags &= ~TLS_WRITE_WANTS_READ;
    while (total < len) {
        size_t n = 0;
        ERR_clear_error();
        int rc = SSL_write_ex(s->ssl, (const char *)buf + total, len - total, &n), saved = errno, want;
        if (rc == 1) {
            total += n;
            continue;
        }
        int r = failed(s, rc, saved, &want);
        if (r == 1 && want == LOOP_READ)
            s->flags |= TLS_WRITE_WANTS_READ;
        if (r == 0) { /* the peer's close_notify came in: it reads no more */
            s->flags |= TLS_FAILED;
            errno = EPIPE;
        }
        return total ? (ssize_t)total : -1;
    }
    return (ssize_t)total;
}

static int tls_events(struct transport *t, int want)
{
    struct tls *s = (struct tls *)t;
    if (!(s->flags & TLS_READY))
        return s->flags & TLS_HANDSHAKE_WANTS_WRITE ? LOOP_WRITE : LOOP_READ;
    int mask = 0;
    if (want & LOOP_READ)
        mask |= s->flags & TLS_READ_WANTS_WRITE ? LOOP_WRITE : LOOP_READ;
    if (want & LOOP_WRITE)
        mask |= s->flags & TLS_WRITE_WANTS_READ ? LOOP_READ : LOOP_WRITE;
    return mask;
}

static size_t tls_pending(struct transport *t)
{
    struct tls *s = (struct tls *)t;
    int n = SSL_pending(s->ssl);
    return n > 0 ? (size_t)n : 0;
}

/* close_notify, best effort: after a fatal error it must not be sent, and
 * before the handshake is done there is nothing to close. */
static void notify(struct tls *s)
{
    if ((s->flags & (TLS_READY | TLS_FAILED)) == TLS_READY && !(SSL_get_shutdown(s->ssl) & SSL_SENT_SHUTDOWN)) {
        ERR_clear_error();
        SSL_shutdown(s->ssl);
        ERR_clear_error();
    }
}

static int tls_shutdown(struct transport *t)
{
    struct tls *s = (struct tls *)t;
    notify(s);
    return s->below->ops->shutdown(s->below);
}

static void tls_close(struct transport *t)
{
    struct tls *s = (struct tls *)t;
    notify(s);
    SSL_free(s->ssl); /* and the BIO */
    s->below->ops->close(s->below);
    free(s);
}

static const char *tls_error(struct transport *t)
{
    return ((struct tls *)t)->why;
}

static int tls_secure(const struct transport *t)
{
    (void)t;
    return 1;
}

static const struct transport_ops tls_ops = {
    .name = "tls",
    .handshake = tls_handshake,
    .read = tls_read,
    .write = tls_write,
    .events = tls_events,
    .pending = tls_pending,
    .shutdown = tls_shutdown,
    .close = tls_close,
    .error = tls_error,
    .secure = tls_secure,
};

struct transport *tls_wrap(void *arg, struct transport *sock)
{
    struct tls_ctx *x = arg;
    struct tls *s = calloc(1, sizeof *s);
    BIO *bio = NULL;
    ERR_clear_error();
    if (!s || !(s->ssl = SSL_new(x->ctx)) || !(bio = BIO_new(bio_method()))) {
        if (s)
            SSL_free(s->ssl);
        free(s);
        ERR_clear_error();
        errno = ENOMEM;
        return NULL;
    }
    BIO_set_data(bio, sock);
    SSL_set_bio(s->ssl, bio, bio);
    SSL_set_accept_state(s->ssl);
    s->base.ops = &tls_ops;
    s->base.fd = sock->fd;
    s->below = sock;
    return &s->base;
}

int tls_transport(const struct transport *t)
{
    return t->ops == &tls_ops;
}
