/* tlsclient.c - the client's side of TLS (see tlsclient.h). */
#include "core/tlsclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct tlsc {
    SSL_CTX *ctx;
};

struct tlsc_conn {
    SSL *ssl;
    X509 *refused; /* the certificate verification failed on, to name its trouble */
    char host[256];
    int wants_write;
    int failed; /* no close_notify after a fatal error */
    const char *why;
};

/* The first error on OpenSSL's queue in words, and the queue emptied. */
static const char *ssl_reason(void)
{
    unsigned long e = ERR_get_error();
    const char *r = !e ? NULL : ERR_SYSTEM_ERROR(e) ? strerror(ERR_GET_REASON(e)) : ERR_reason_error_string(e);
    ERR_clear_error();
    return r ? r : "unknown error";
}

struct tlsc *tlsc_new(int verify, const char *ca_file, char *err, size_t errlen)
{
    ERR_clear_error();
    struct tlsc *t = calloc(1, sizeof *t);
    if (!t || !(t->ctx = SSL_CTX_new(TLS_client_method()))) {
        snprintf(err, errlen, "TLS: %s", t ? ssl_reason() : "out of memory");
        free(t);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                 SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_verify(t->ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (verify && SSL_CTX_set_default_verify_paths(t->ctx) != 1)
        ERR_clear_error(); /* no system store: only --ca can vouch, and will say so */
    if (ca_file && SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL) != 1) {
        snprintf(err, errlen, "--ca %s: %s", ca_file, ssl_reason());
        tlsc_free(t);
        return NULL;
    }
    return t;
}

void tlsc_free(struct tlsc *t)
{
    if (t) {
        SSL_CTX_free(t->ctx);
        free(t);
    }
}

/* Remember the first certificate that failed: OpenSSL keeps no peer
 * certificate from a failed handshake, and the message wants its dates and names. */
static int on_verify(int ok, X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct tlsc_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
    X509 *cert = X509_STORE_CTX_get_current_cert(store);
    if (!ok && c && !c->refused && cert && X509_up_ref(cert) == 1)
        c->refused = cert;
    return ok;
}

struct tlsc_conn *tlsc_conn_new(struct tlsc *t, int fd, const char *host, char *err, size_t errlen)
{
    ERR_clear_error();
    struct tlsc_conn *c = calloc(1, sizeof *c);
    if (!c || !(c->ssl = SSL_new(t->ctx)) || SSL_set_fd(c->ssl, fd) != 1) {
        snprintf(err, errlen, "TLS: %s", c ? ssl_reason() : "out of memory");
        tlsc_conn_free(c);
        return NULL;
    }
    snprintf(c->host, sizeof c->host, "%s", host);
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    /* SNI carries DNS names only (RFC 6066); an address is checked as one. */
    int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host)
                   : SSL_set_tlsext_host_name(c->ssl, host) == 1 && SSL_set1_host(c->ssl, host) == 1;
    if (!ok) {
        snprintf(err, errlen, "TLS: cannot check the name %s: %s", host, ssl_reason());
        tlsc_conn_free(c);
        return NULL;
    }
    SSL_set_app_data(c->ssl, c);
    if (SSL_get_verify_mode(c->ssl) & SSL_VERIFY_PEER)
        SSL_set_verify(c->ssl, SSL_VERIFY_PEER, on_verify);
    SSL_set_connect_state(c->ssl);
    return c;
}

void tlsc_conn_free(struct tlsc_conn *c)
{
    if (c) {
        SSL_free(c->ssl);
        X509_free(c->refused);
        free(c);
    }
}

/* The names a certificate is for: its DNS and IP subject alternative names,
 * else its common name. */
static void cert_names(X509 *cert, char *out, size_t len)
{
    size_t n = 0;
    out[0] = '\0';
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && n < len; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        char one[64] = "";
        if (g->type == GEN_DNS)
            snprintf(one, sizeof one, "%.*s", ASN1_STRING_length(g->d.dNSName),
                     (const char *)ASN1_STRING_get0_data(g->d.dNSName));
        else if (g->type == GEN_IPADD && ASN1_STRING_length(g->d.iPAddress) == 4)
            inet_ntop(AF_INET, ASN1_STRING_get0_data(g->d.iPAddress), one, sizeof one);
        else if (g->type == GEN_IPADD && ASN1_STRING_length(g->d.iPAddress) == 16)
            inet_ntop(AF_INET6, ASN1_STRING_get0_data(g->d.iPAddress), one, sizeof one);
        if (one[0])
            n += (size_t)snprintf(out + n, len - n, "%s%s", n ? ", " : "", one);
    }
    GENERAL_NAMES_free(names);
    if (!out[0])
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, out, (int)len);
    if (!out[0])
        snprintf(out, len, "no name");
}

/* Why verification failed, naming the cause, with what the user can do. */
static void verify_failure(struct tlsc_conn *c, long v, char *err, size_t errlen)
{
    X509 *cert = c->refused;
    char detail[768] = "";
    switch (v) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        if (cert) {
            BIO *mem = BIO_new(BIO_s_mem());
            char when[64] = "";
            if (mem && ASN1_TIME_print(mem, X509_get0_notAfter(cert)) == 1) {
                int n = BIO_read(mem, when, sizeof when - 1);
                when[n > 0 ? n : 0] = '\0';
            }
            BIO_free(mem);
            if (when[0])
                snprintf(detail, sizeof detail, " (on %s)", when);
        }
        break;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        if (cert) {
            char names[400];
            cert_names(cert, names, sizeof names);
            snprintf(detail, sizeof detail, ": it is for %s, not %s", names, c->host);
        }
        break;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        snprintf(detail, sizeof detail, " (its issuer is not one this machine trusts: --ca FILE adds one)");
        break;
    default:
        break;
    }
    snprintf(err, errlen, "the server's certificate was refused: %s%.700s", X509_verify_cert_error_string(v), detail);
}

int tlsc_handshake(struct tlsc_conn *c, char *err, size_t errlen)
{
    ERR_clear_error();
    errno = 0;
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1)
        return 1;
    int saved = errno;
    switch (SSL_get_error(c->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        c->wants_write = 0;
        return 0;
    case SSL_ERROR_WANT_WRITE:
        c->wants_write = 1;
        return 0;
    case SSL_ERROR_ZERO_RETURN:
    case SSL_ERROR_SYSCALL:
        c->failed = 1;
        ERR_clear_error();
        if (saved && saved != ECONNRESET && saved != EPIPE)
            snprintf(err, errlen, "TLS handshake: %s", strerror(saved));
        else
            snprintf(err, errlen, "the server closed the connection during the TLS handshake "
                                  "(is this its TLS port? is it full?)");
        return saved && saved != ECONNRESET && saved != EPIPE ? -1 : -2;
    default:
        break;
    }
    c->failed = 1;
    long v = SSL_get_verify_result(c->ssl);
    if (v != X509_V_OK) {
        ERR_clear_error();
        verify_failure(c, v, err, errlen);
        return -1;
    }
    unsigned long e = ERR_peek_error();
    const char *why = ssl_reason();
    int not_tls = ERR_GET_LIB(e) == ERR_LIB_SSL &&
                  (ERR_GET_REASON(e) == SSL_R_WRONG_VERSION_NUMBER || ERR_GET_REASON(e) == SSL_R_PACKET_LENGTH_TOO_LONG);
    snprintf(err, errlen, "TLS handshake failed: %s%s", why, not_tls ? " (is this a TLS port?)" : "");
    return -1;
}

/* After a failed read or write: -1 with errno EAGAIN or an error, or 0 at a
 * clean end (close_notify). */
static ssize_t failed(struct tlsc_conn *c, int rc, int saved)
{
    switch (SSL_get_error(c->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        c->wants_write = 0;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        c->wants_write = 1;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        c->failed = 1;
        ERR_clear_error();
        errno = saved ? saved : ECONNRESET;
        return -1;
    default:
        c->failed = 1;
        c->why = ssl_reason();
        errno = EPROTO;
        return -1;
    }
}

ssize_t tlsc_read(struct tlsc_conn *c, void *buf, size_t len)
{
    size_t got = 0;
    ERR_clear_error();
    errno = 0;
    int rc = SSL_read_ex(c->ssl, buf, len, &got);
    return rc == 1 ? (ssize_t)got : failed(c, rc, errno);
}

ssize_t tlsc_write(struct tlsc_conn *c, const void *buf, size_t len)
{
    size_t total = 0;
    while (total < len) {
        size_t n = 0;
        ERR_clear_error();
        errno = 0;
        int rc = SSL_write_ex(c->ssl, (const char *)buf + total, len - total, &n);
        if (rc == 1) {
            total += n;
            continue;
        }
        ssize_t r = failed(c, rc, errno);
        if (r == 0) {
            errno = EPIPE;
            r = -1;
        }
        return total ? (ssize_t)total : r;
    }
    return (ssize_t)total;
}

int tlsc_wants_write(const struct tlsc_conn *c)
{
    return c->wants_write;
}

size_t tlsc_pending(const struct tlsc_conn *c)
{
    int n = SSL_pending(c->ssl);
    return n > 0 ? (size_t)n : 0;
}

void tlsc_close_notify(struct tlsc_conn *c)
{
    if (!c->failed && SSL_is_init_finished(c->ssl)) {
        ERR_clear_error();
        SSL_shutdown(c->ssl);
        ERR_clear_error();
    }
}

const char *tlsc_describe(const struct tlsc_conn *c, char *buf, size_t len)
{
    snprintf(buf, len, "%s %s", SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
    return buf;
}

const char *tlsc_error(const struct tlsc_conn *c)
{
    return c->why ? c->why : "TLS error";
}
