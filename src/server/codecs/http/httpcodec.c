/* httpcodec.c - HTTP requests: the page, and the upgrade to WebSocket (see
 * httpcodec.h).
 *
 * libhttp-parser is fed everything offered and keeps its own state between
 * reads, so a request head may arrive a byte at a time; the headers that
 * matter are copied out as they come (bounded: the whole head is at most
 * HTTP_MAX_HEAD bytes). The parser is paused at the end of each head: the
 * request is answered there, and on an upgrade the bytes after the head are
 * already the client's first WebSocket frames: they go to the new transport,
 * as h2o_upgrade_to_websocket hands them on.
 */
#include "server/codecs/http/httpcodec.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "core/buf.h"
#include "core/log.h"
#include "server/codecs/http/webfiles.h"
#include "server/conn.h"
#include "server/transport/ws.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455, 1.3 */

static const struct http_config *cfg;

void http_setup(const struct http_config *c)
{
    cfg = c;
}

/* The headers we read; others are skipped (but count towards the head's size). */
enum header { H_OTHER, H_HOST, H_ORIGIN, H_KEY, H_VERSION, H_PROTOCOL, H_IF_NONE_MATCH, H_ACCEPT_ENCODING, H_UPGRADE, H_COUNT };
static const char *const header_names[H_COUNT] = {
    NULL, "host", "origin", "sec-websocket-key", "sec-websocket-version", "sec-websocket-protocol",
    "if-none-match", "accept-encoding", "upgrade",
};
#define VALUE_MAX 512

struct http {
    http_parser p;
    size_t head;           /* bytes of this request's head so far */
    int done;              /* the head is complete: answer it */
    int in_value;          /* the parser is in a header's value (else in its name) */
    int too_long;          /* a header we keep did not fit */
    int url_long;          /* the URL did not fit */
    char url[1024];
    size_t url_len;
    char name[32];         /* the header's name so far (longer ones are not ours) */
    size_t name_len;
    enum header cur;
    char value[H_COUNT][VALUE_MAX];
    size_t value_len[H_COUNT];
};

/* ==== Parsing ==== */

static int append(char *dst, size_t *len, size_t cap, const char *at, size_t n)
{
    if (*len + n >= cap)
        return -1;
    memcpy(dst + *len, at, n);
    *len += n;
    dst[*len] = '\0';
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct http *h = p->data;
    if (append(h->url, &h->url_len, sizeof h->url, at, n) < 0)
        h->url_long = 1;
    return 0;
}

static int on_field(http_parser *p, const char *at, size_t n)
{
    struct http *h = p->data;
    if (h->in_value) { /* a new header begins */
        h->in_value = 0;
        h->name_len = 0;
        h->name[0] = '\0';
    }
    if (append(h->name, &h->name_len, sizeof h->name, at, n) < 0)
        h->name_len = sizeof h->name; /* too long for any of ours */
    return 0;
}

static int on_value(http_parser *p, const char *at, size_t n)
{
    struct http *h = p->data;
    if (!h->in_value) { /* the name is whole: is it one of ours? */
        h->in_value = 1;
        h->cur = H_OTHER;
        for (int i = 1; i < H_COUNT && h->name_len < sizeof h->name; i++)
            if (strcasecmp(h->name, header_names[i]) == 0)
                h->cur = (enum header)i;
        /* Repeated (Sec-WebSocket-Protocol may be): one list. */
        if (h->cur != H_OTHER && h->value_len[h->cur] &&
            append(h->value[h->cur], &h->value_len[h->cur], VALUE_MAX, ", ", 2) < 0)
            h->too_long = 1;
    }
    if (h->cur != H_OTHER && append(h->value[h->cur], &h->value_len[h->cur], VALUE_MAX, at, n) < 0)
        h->too_long = 1;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct http *h = p->data;
    h->done = 1;
    http_parser_pause(p, 1); /* answered in input(), then resumed */
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
};

static void next_request(struct http *h)
{
    void *data = h->p.data;
    http_parser p = h->p;
    memset(h, 0, sizeof *h);
    h->p = p;
    h->p.data = data;
}

/* ==== Responses ==== */

/* The Host header, if it is a plain host[:port] that may go into our headers. */
static const char *clean_host(const struct http *h)
{
    const char *host = h->value[H_HOST];
    if (!*host)
        return NULL;
    for (const char *s = host; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(".-:[]", *s))
            return NULL;
    return host;
}

/* What every response says about itself: a strict policy for the page (its
 * script and styles from files only, no inline code, no framing). */
static int common_headers(char *buf, size_t len, const struct http *h, int keep)
{
    const char *host = clean_host(h);
    char ws[2 * VALUE_MAX + 32] = "";
    if (host)
        snprintf(ws, sizeof ws, " ws://%s wss://%s", host, host);
    return snprintf(buf, len,
                    "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; "
                    "img-src 'self' data:; connect-src 'self'%s; base-uri 'none'; form-action 'none'; "
                    "frame-ancestors 'none'\r\n"
                    "X-Content-Type-Options: nosniff\r\n"
                    "Referrer-Policy: no-referrer\r\n"
                    "X-Frame-Options: DENY\r\n"
                    "Cross-Origin-Opener-Policy: same-origin\r\n"
                    "Cross-Origin-Resource-Policy: same-origin\r\n"
                    "Permissions-Policy: camera=(), microphone=(), geolocation=()\r\n"
                    "Connection: %s\r\n",
                    ws, keep ? "keep-alive" : "close");
}

static void send_text(struct conn *c, const char *text, size_t len)
{
    struct msg *m = msg_new(text, len);
    if (!m) {
        conn_close(c, "out of memory", 0);
        return;
    }
    conn_send(c, m);
    msg_unref(m);
}

/* An answer without a file: status, extra headers (CRLF-ended lines or ""),
 * and the status's words as a short text body (none for HEAD and 304). */
static void reply(struct conn *c, const struct http *h, const char *status, const char *extra, int keep)
{
    char common[2048], buf[3072];
    common_headers(common, sizeof common, h, keep);
    int body = h->p.method != HTTP_HEAD && strncmp(status, "304", 3) != 0;
    int n = snprintf(buf, sizeof buf, "HTTP/1.1 %s\r\n%sContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n%s\r\n%s%s",
                     status, common, body ? strlen(status) + 1 : 0, extra, body ? status : "", body ? "\n" : "");
    send_text(c, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    log_debug("%s: %s %s: %s", conn_describe(c), http_method_str((enum http_method)h->p.method), h->url, status);
}

/* Whether the client takes gzip (Accept-Encoding: gzip, not with q=0). */
static int takes_gzip(const struct http *h)
{
    const char *s = h->value[H_ACCEPT_ENCODING];
    while ((s = strcasestr(s, "gzip")) != NULL) {
        s += 4;
        const char *q = s + strspn(s, " \t");
        if (*q != ';')
            return 1;
        q = strcasestr(q, "q=");
        if (!q || strtod(q + 2, NULL) > 0)
            return 1;
    }
    return 0;
}

static const struct webfile *find_file(const char *url)
{
    char path[1024];
    size_t n = strcspn(url, "?#");
    if (n >= sizeof path)
        return NULL;
    memcpy(path, url, n);
    path[n] = '\0';
    if (strcmp(path, "/") == 0)
        snprintf(path, sizeof path, "/index.html");
    for (const struct webfile *f = webfiles; f->path; f++)
        if (strcmp(f->path, path) == 0)
            return f;
    return NULL;
}

static int etag_matches(const struct http *h, const struct webfile *f)
{
    const char *inm = h->value[H_IF_NONE_MATCH];
    return strcmp(inm, "*") == 0 || strstr(inm, f->etag) != NULL;
}

static void serve_file(struct conn *c, const struct http *h, const struct webfile *f, int keep)
{
    char common[2048], head[3072], extra[256];
    int gz = f->gz && takes_gzip(h);
    snprintf(extra, sizeof extra, "ETag: %s\r\nCache-Control: no-cache\r\nVary: Accept-Encoding\r\n", f->etag);
    if (etag_matches(h, f)) {
        reply(c, h, "304 Not Modified", extra, keep);
        return;
    }
    common_headers(common, sizeof common, h, keep);
    int n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\n%sContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n", common,
                     f->type, gz ? f->gzlen : f->len, extra, gz ? "Content-Encoding: gzip\r\n" : "");
    send_text(c, head, (size_t)n);
    if (h->p.method != HTTP_HEAD && !conn_closing(c))
        send_text(c, (const char *)(gz ? f->gz : f->data), gz ? f->gzlen : f->len);
    log_debug("%s: %s %s: 200%s", conn_describe(c), http_method_str((enum http_method)h->p.method), h->url,
              gz ? " gzip" : "");
}

/* ==== The upgrade ==== */

/* Whether list (comma-separated tokens) holds token, case-insensitively. */
static int has_token(const char *list, const char *token)
{
    size_t n = strlen(token);
    for (const char *s = list; *s;) {
        s += strspn(s, " \t,");
        size_t k = strcspn(s, " \t,");
        if (k == n && strncasecmp(s, token, n) == 0)
            return 1;
        s += k;
    }
    return 0;
}

/* IRCv3: the first of the client's subprotocols (in its order of preference)
 * that we speak; none offered, or none of ours, means text. */
static const char *pick_protocol(const struct http *h, int *binary)
{
    const char *s = h->value[H_PROTOCOL];
    *binary = 0;
    while (*s) {
        s += strspn(s, " \t,");
        size_t k = strcspn(s, " \t,");
        if (k == 14 && strncmp(s, "text.ircv3.net", 14) == 0)
            return "text.ircv3.net";
        if (k == 16 && strncmp(s, "binary.ircv3.net", 16) == 0) {
            *binary = 1;
            return "binary.ircv3.net";
        }
        s += k;
    }
    return NULL;
}

/* A WebSocket key is 16 bytes in base64: 24 characters ending in "==". */
static int valid_key(const char *key)
{
    if (strlen(key) != 24 || strcmp(key + 22, "==") != 0)
        return 0;
    for (int i = 0; i < 22; i++)
        if (!isalnum((unsigned char)key[i]) && key[i] != '+' && key[i] != '/')
            return 0;
    return 1;
}

/* The Origin a browser sends is the page's: ours, or one --web-origin names.
 * Without --web-origin, ours is the listener's scheme and the Host asked for.
 * Clients that are not browsers send none, and are not asked for one: the
 * check is against other sites' pages, which browsers always name. */
static int origin_allowed(const struct conn *c, const struct http *h)
{
    const char *origin = h->value[H_ORIGIN];
    if (!*origin)
        return 1;
    if (cfg->origins && *cfg->origins) {
        size_t n = strlen(origin);
        for (const char *s = cfg->origins; *s;) {
            s += strspn(s, " \t,");
            size_t k = strcspn(s, " \t,");
            if (k && k == n && strncasecmp(s, origin, n) == 0)
                return 1;
            s += k;
        }
        return 0;
    }
    char own[VALUE_MAX + 16];
    snprintf(own, sizeof own, "%s://%s", conn_secure(c) ? "https" : "http", h->value[H_HOST]);
    return *h->value[H_HOST] && strcasecmp(own, origin) == 0;
}

static void accept_value(const char *key, char out[64])
{
    char in[64];
    unsigned char sha[SHA_DIGEST_LENGTH];
    int n = snprintf(in, sizeof in, "%s%s", key, WS_GUID);
    SHA1((const unsigned char *)in, (size_t)n, sha);
    EVP_EncodeBlock((unsigned char *)out, sha, SHA_DIGEST_LENGTH);
}

/* Answer /ws. Returns 1 when the connection now speaks WebSocket (rest, the
 * bytes after the head, went to its transport), 0 when it was refused. */
static int upgrade(struct conn *c, struct http *h, const char *rest, size_t rest_len)
{
    if (h->p.method != HTTP_GET) {
        reply(c, h, "405 Method Not Allowed", "Allow: GET\r\n", 0);
        return 0;
    }
    if (!h->p.upgrade || !has_token(h->value[H_UPGRADE], "websocket") || !valid_key(h->value[H_KEY]) ||
        h->p.http_major != 1 || h->p.http_minor < 1) {
        reply(c, h, "400 Bad Request", "", 0);
        return 0;
    }
    if (strcmp(h->value[H_VERSION], "13") != 0) {
        reply(c, h, "426 Upgrade Required", "Sec-WebSocket-Version: 13\r\n", 0);
        return 0;
    }
    if (!origin_allowed(c, h)) {
        log_info("%s: WebSocket from origin %s refused (--web-origin)", conn_describe(c), h->value[H_ORIGIN]);
        reply(c, h, "403 Forbidden", "", 0);
        return 0;
    }
    if (conn_queued(c) > 0) { /* an answer to a pipelined request has not gone yet: no switch under it */
        reply(c, h, "400 Bad Request", "", 0);
        return 0;
    }
    int binary;
    const char *proto = pick_protocol(h, &binary);
    char accept[64], resp[512];
    accept_value(h->value[H_KEY], accept);
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
                     accept, proto ? "Sec-WebSocket-Protocol: " : "", proto ? proto : "", proto ? "\r\n" : "");
    const struct conn_profile *to = conn_secure(c) ? cfg->wss : cfg->ws;
    struct transport *t = ws_wrap(c->t, binary, to->lim.max_line, resp, (size_t)n, rest, rest_len);
    if (!t) {
        conn_close(c, "out of memory", 0);
        return 1;
    }
    if (conn_set_transport(c, t) < 0) { /* (cannot happen: nothing is queued) */
        conn_close(c, "cannot switch to WebSocket", 0);
        return 1;
    }
    log_info("%s: WebSocket (%s)", conn_describe(c), proto ? proto : "no subprotocol: text");
    conn_set_profile(c, to);
    conn_set_codec(c, cfg->codec); /* frees h */
    return 1;
}

/* ==== The codec ==== */

/* Answer the request whose head is complete. Returns 1 if the connection goes
 * on as HTTP (keep-alive), 0 if it is closed or speaks WebSocket now. */
static int answer(struct conn *c, struct http *h, const char *rest, size_t rest_len)
{
    int keep = http_should_keep_alive(&h->p);
    const char *path = h->url;
    if (h->url_long || h->too_long) {
        reply(c, h, h->url_long ? "414 URI Too Long" : "431 Request Header Fields Too Large", "", 0);
        keep = 0;
    } else if (strcmp(path, "/ws") == 0 || strncmp(path, "/ws?", 4) == 0) {
        if (upgrade(c, h, rest, rest_len))
            return 0;
        keep = 0;
    } else if (h->p.method != HTTP_GET && h->p.method != HTTP_HEAD) {
        reply(c, h, "405 Method Not Allowed", "Allow: GET, HEAD\r\n", 0);
        keep = 0;
    } else if ((h->p.flags & F_CHUNKED) || (h->p.content_length > 0 && h->p.content_length != ULLONG_MAX)) {
        reply(c, h, "400 Bad Request", "", 0); /* a GET with a body: not ours to skip */
        keep = 0;
    } else {
        const struct webfile *f = path[0] == '/' ? find_file(path) : NULL;
        if (f)
            serve_file(c, h, f, keep);
        else
            reply(c, h, "404 Not Found", "", keep);
    }
    if (!keep)
        conn_close(c, "HTTP done", 1);
    return keep;
}

static size_t http_input(struct conn *c, char *data, size_t len)
{
    struct http *h = c->state;
    size_t used = 0;
    while (used < len && !conn_closing(c)) {
        size_t room = HTTP_MAX_HEAD > h->head ? HTTP_MAX_HEAD - h->head : 0;
        size_t chunk = len - used < room ? len - used : room;
        size_t n = http_parser_execute(&h->p, &settings, data + used, chunk);
        h->head += n;
        used += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&h->p);
        if (e == HPE_PAUSED && h->done) {
            /* Paused on the head's last LF, which the parser reads again on resuming. */
            const char *rest = data + used + 1;
            size_t rest_len = used < len ? len - used - 1 : 0;
            if (!answer(c, h, rest, rest_len))
                return len;
            http_parser_pause(&h->p, 0);
            next_request(h);
            h->head = 0;
            if (!conn_spend(c, 1))
                return used; /* over --rate: the next request waits */
            continue;
        }
        if (e != HPE_OK) {
            log_debug("%s: bad HTTP request: %s", conn_describe(c), http_errno_description(e));
            reply(c, h, e == HPE_HEADER_OVERFLOW ? "431 Request Header Fields Too Large" : "400 Bad Request", "", 0);
            conn_close(c, "bad HTTP request", 1);
            return len;
        }
        if (n == 0 && e == HPE_OK && chunk > 0) {
            /* The parser took nothing and saw nothing wrong (it stops after a
             * message it counts as an upgrade, Upgrade: h2c on a file, say):
             * start it afresh on the next request; a fresh one always moves. */
            if (h->p.upgrade == 0 && h->head == 0) {
                reply(c, h, "400 Bad Request", "", 0);
                conn_close(c, "bad HTTP request", 1);
                return len;
            }
            next_request(h);
            http_parser_init(&h->p, HTTP_REQUEST);
            h->p.data = h;
            continue;
        }
        if (h->head >= HTTP_MAX_HEAD) {
            reply(c, h, "431 Request Header Fields Too Large", "", 0);
            conn_close(c, "HTTP request head too large", 1);
            return len;
        }
    }
    return conn_closing(c) ? len : used;
}

static int http_open(struct conn *c)
{
    struct http *h = calloc(1, sizeof *h);
    if (!h)
        return -1;
    http_parser_init(&h->p, HTTP_REQUEST);
    h->p.data = h;
    c->state = h;
    return 0;
}

static void http_close(struct conn *c, const char *reason)
{
    (void)reason;
    free(c->state);
    c->state = NULL;
}

static void http_limit(struct conn *c, enum conn_limit what, double value)
{
    (void)value;
    struct http *h = c->state;
    /* A client that has begun a request and not finished it in time hears so;
     * an idle keep-alive connection is just closed. */
    if ((what == LIMIT_LOGIN || what == LIMIT_IDLE) && h && h->head > 0)
        reply(c, h, "408 Request Timeout", "", 0);
}

static const char *http_refusal(enum conn_limit what)
{
    switch (what) {
    case LIMIT_FULL:
        return "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 10\r\nContent-Type: text/plain\r\n"
               "Content-Length: 12\r\nConnection: close\r\n\r\nserver full\n";
    case LIMIT_PER_ADDR:
        return "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 60\r\nContent-Type: text/plain\r\n"
               "Content-Length: 39\r\nConnection: close\r\n\r\ntoo many connections from your address\n";
    default:
        return "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 10\r\nContent-Type: text/plain\r\n"
               "Content-Length: 34\r\nConnection: close\r\n\r\nconnecting too fast: wait a while\n";
    }
}

const struct codec http_codec = {
    .name = "http",
    .open = http_open,
    .input = http_input,
    .limit = http_limit,
    .refusal = http_refusal,
    .close = http_close,
};
