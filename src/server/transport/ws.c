/* ws.c - the WebSocket transport (see ws.h and transport.h).
 *
 * wslay's event API does the framing: it reads and writes through our
 * callbacks, which call the transport below, so WebSocket is one more layer
 * of the seam (over TLS, or the socket) and never touches the descriptor.
 * wslay reads until the transport below would block, and hands us whole
 * messages (fragments joined, unmasked, a text message's UTF-8 checked); we
 * keep them as lines in `in` until the connection reads them. So that a
 * client cannot make us hold more than it could send in one read, reading
 * from below stops once IN_HIGH bytes are waiting, and `pending` says there
 * is more: the connection drains it before the loop sleeps.
 *
 * Output: each CRLF line becomes one message, queued in wslay and sent at
 * once; a write takes lines only while wslay's queue has gone out, so what
 * is waiting stays in the connection's queue, held against --max-outbuf, and
 * wslay holds at most one line.
 */
#include "server/transport/ws.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <wslay/wslay.h>

#include "core/loop.h"

#define IN_HIGH (64 * 1024)  /* decoded input waiting before reading from below stops */
#define OUT_HIGH (64 * 1024) /* wslay's frames waiting for below before it must wait too */
#define QUEUED_HIGH 16        /* wslay's own frames (pongs) queued before reading stops */
#define FRAMES (96 * 1024)   /* lines are framed into a buffer of this size ... */
#define FRAMES_WRITE (64 * 1024) /* ... and written once it holds this much */

struct ws {
    struct transport base; /* fd: the socket's, for the loop */
    struct transport *below;
    wslay_event_context_ptr ctx;
    char *in;              /* decoded lines, "payload\r\n" each, from in_off */
    size_t in_len, in_off, in_cap;
    char *early;           /* raw bytes the HTTP codec read after the request head */
    size_t early_len, early_off;
    char *out;             /* bytes for below that it has not taken yet (the 101 response
                            * first), from out_off; freed when empty */
    size_t out_len, out_off;
    char *partial;         /* an outgoing line whose LF has not come yet */
    size_t partial_len;
    size_t max_msg;
    int binary;
    int eof;               /* the transport below reached its end */
    int err;               /* its errno, when it failed */
    int stopped;           /* reading stopped with `in` full: call wslay again */
    int close_code;        /* what shutdown sends */
    int raw_closed;        /* our close frame went out by hand: wslay's queue is not sent */
    int failed;            /* read reported a protocol error: from now on it passes on
                            * what comes from below, for the connection to discard while
                            * it lingers (no reset while the client still sends) */
    const char *why;       /* the last failure, in words */
};

static const struct transport_ops ws_ops;

/* ==== wslay's callbacks: the transport below ==== */

/* Keep n bytes for below after what it has not taken yet. */
static int keep_out(struct ws *s, const char *p, size_t n)
{
    if (s->out_off == s->out_len)
        s->out_off = s->out_len = 0;
    char *out = realloc(s->out, s->out_len + n);
    if (!out)
        return -1;
    memcpy(out + s->out_len, p, n);
    s->out = out;
    s->out_len += n;
    return 0;
}

/* What we owe the peer is stuck: our buffer for below is full, or wslay holds
 * more frames of its own than a reading peer would ever leave waiting. */
static int out_backed(const struct ws *s)
{
    if (s->raw_closed)
        return 0;
    return s->out_len - s->out_off >= OUT_HIGH || wslay_event_get_queued_msg_count(s->ctx) > QUEUED_HIGH;
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    (void)flags;
    struct ws *s = ud;
    if (s->early_off < s->early_len) {
        size_t n = s->early_len - s->early_off < len ? s->early_len - s->early_off : len;
        memcpy(buf, s->early + s->early_off, n);
        s->early_off += n;
        if (s->early_off == s->early_len) {
            free(s->early);
            s->early = NULL;
            s->early_len = s->early_off = 0;
        }
        return (ssize_t)n;
    }
    /* A client that sends pings and never reads would grow wslay's queue of
     * pongs without end: while what we owe it cannot leave, it is not read
     * (TCP pushes back on it; events asks for writability only). */
    if (out_backed(s)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (s->in_len - s->in_off >= IN_HIGH) {
        s->stopped = 1;
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    ssize_t n = s->below->ops->read(s->below, buf, len);
    if (n > 0)
        return n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (n == 0)
        s->eof = 1;
    else
        s->err = errno;
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

/* wslay's frames (control frames, and lines too long for the fast path) go
 * into `out`, written with ours; past OUT_HIGH it waits. */
static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)flags;
    struct ws *s = ud;
    if (s->out_len - s->out_off >= OUT_HIGH) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (keep_out(s, (const char *)data, len) < 0) {
        s->err = ENOMEM;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static int keep_in(struct ws *s, const uint8_t *p, size_t n)
{
    if (s->in_off && s->in_off == s->in_len)
        s->in_off = s->in_len = 0;
    if (s->in_len + n + 2 > s->in_cap) {
        if (s->in_off) { /* move what is left to the front first */
            memmove(s->in, s->in + s->in_off, s->in_len - s->in_off);
            s->in_len -= s->in_off;
            s->in_off = 0;
        }
        size_t cap = s->in_cap ? s->in_cap : 1024;
        while (cap < s->in_len + n + 2)
            cap *= 2;
        char *in = realloc(s->in, cap);
        if (!in)
            return -1;
        s->in = in;
        s->in_cap = cap;
    }
    if (n) /* (an empty message's payload may be NULL) */
        memcpy(s->in + s->in_len, p, n);
    memcpy(s->in + s->in_len + n, "\r\n", 2);
    s->in_len += n + 2;
    return 0;
}

/* A whole message: a line for the codec. Control frames are wslay's: it
 * answers pings and close frames itself. */
static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
    struct ws *s = ud;
    if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
        return;
    if (keep_in(s, arg->msg, arg->msg_length) < 0) {
        s->why = "out of memory";
        wslay_event_queue_close(ctx, WSLAY_CODE_INTERNAL_SERVER_ERROR, NULL, 0);
        wslay_event_shutdown_read(ctx);
    }
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_msg_recv_callback = on_msg,
};

/* ==== Output ==== */

/* Hand below what is kept for it. 0 (all of it, or it would block), or -1
 * with errno set when below failed. */
static int flush_out(struct ws *s)
{
    while (s->out_off < s->out_len) {
        ssize_t n = s->below->ops->write(s->below, s->out + s->out_off, s->out_len - s->out_off);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
        s->out_off += (size_t)n;
    }
    free(s->out); /* an idle connection holds no buffer */
    s->out = NULL;
    s->out_len = s->out_off = 0;
    return 0;
}

/* Send what is waiting: what below did not take, then wslay's queue. 0, or -1
 * with errno set when the transport below failed. */
static int send_some(struct ws *s)
{
    if (s->raw_closed)
        return 0;
    if (flush_out(s) < 0)
        return -1;
    while (s->out_len == 0 && wslay_event_want_write(s->ctx)) {
        if (wslay_event_send(s->ctx) < 0) {
            errno = s->err ? s->err : EPIPE;
            return -1;
        }
        if (flush_out(s) < 0)
            return -1;
    }
    return 0;
}

static int out_waiting(const struct ws *s)
{
    if (s->raw_closed)
        return 0;
    return s->out_off < s->out_len || wslay_event_want_write(s->ctx);
}

/* Bytes of s[0..n) that start a UTF-8 character (RFC 3629: shortest form, no
 * surrogates, at most U+10FFFF): its length, or 0 when it is not one. */
static size_t utf8_char(const unsigned char *p, size_t n)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

/* A text frame must be UTF-8 (RFC 6455 5.6; a browser closes on anything
 * else): each byte that does not begin a character becomes U+FFFD. Returns the
 * text to send, p itself when it is clean, or NULL when out of memory. */
static const char *as_utf8(const char *p, size_t n, size_t *out_len, char **owned)
{
    size_t i = 0, k = 1;
    /* Chat is mostly ASCII: eight bytes at a time while no high bit is set. */
    while (k) {
        uint64_t w;
        while (i + 8 <= n && (memcpy(&w, p + i, 8), !(w & 0x8080808080808080ULL)))
            i += 8;
        while (i < n && (unsigned char)p[i] < 0x80)
            i++;
        if (i == n)
            break;
        if ((k = utf8_char((const unsigned char *)p + i, n - i)) != 0)
            i += k;
    }
    *owned = NULL;
    *out_len = n;
    if (i == n)
        return p;
    char *d = malloc(3 * n);
    if (!d)
        return NULL;
    size_t o = 0;
    for (i = 0; i < n;) {
        k = utf8_char((const unsigned char *)p + i, n - i);
        if (k) {
            memcpy(d + o, p + i, k);
            o += k, i += k;
        } else {
            memcpy(d + o, "\xEF\xBF\xBD", 3);
            o += 3, i++;
        }
    }
    *owned = d;
    *out_len = o;
    return d;
}

static int queue_line(struct ws *s, const char *p, size_t n)
{
    if (n && p[n - 1] == '\r')
        n--;
    char *owned = NULL;
    size_t len = n;
    const char *text = s->binary ? p : as_utf8(p, n, &len, &owned);
    if (!text)
        return -1;
    struct wslay_event_msg m = {s->binary ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME, (const uint8_t *)text, len};
    int rc = wslay_event_queue_msg(s->ctx, &m); /* (wslay copies it) */
    free(owned);
    return rc == 0 || rc == WSLAY_ERR_NO_MORE_MSG ? 0 : -1; /* after our close frame: dropped */
}

/* The line so far, and n more bytes of it at p (which end it when last). */
static int line_part(struct ws *s, const char *p, size_t n, int last)
{
    if (!last && !s->partial_len && n <= s->max_msg) {
        char *keep = malloc(n ? n : 1);
        if (!keep)
            return -1;
        memcpy(keep, p, n);
        s->partial = keep;
        s->partial_len = n;
        return 0;
    }
    if (s->partial_len || !last) {
        char *grown = realloc(s->partial, s->partial_len + n + 1);
        if (!grown)
            return -1;
        memcpy(grown + s->partial_len, p, n);
        s->partial = grown;
        s->partial_len += n;
        if (!last && s->partial_len <= s->max_msg)
            return 0;
        int rc = queue_line(s, s->partial, s->partial_len); /* too long to wait for its end: as it is */
        free(s->partial);
        s->partial = NULL;
        s->partial_len = 0;
        return rc;
    }
    return queue_line(s, p, n);
}

/* A frame of ours for a line (server frames are not masked): its header and
 * payload at dst. Returns the bytes written. */
static size_t frame_into(char *dst, int binary, const char *p, size_t n)
{
    size_t h = 0;
    dst[h++] = (char)(0x80 | (binary ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME));
    if (n < 126) {
        dst[h++] = (char)n;
    } else if (n < 65536) {
        dst[h++] = 126;
        dst[h++] = (char)(n >> 8);
        dst[h++] = (char)n;
    } else {
        dst[h++] = 127;
        for (int i = 7; i >= 0; i--)
            dst[h++] = (char)((uint64_t)n >> (8 * i));
    }
    memcpy(dst + h, p, n);
    return h + n;
}

/* Frame the whole lines at [*p, end) into frames[] until it holds FRAMES_WRITE
 * bytes or the next line does not fit (or has no LF yet). Returns the bytes
 * framed and moves *p past the lines taken; 0 with *p unmoved when the first
 * line must take the slow path (line_part), or on ENOMEM (*p unmoved, -1 in
 * *failed). */
static size_t frame_lines(struct ws *s, char *frames, const char **p, const char *end, int *failed)
{
    size_t fl = 0;
    const char *q = *p;
    while (q < end && fl < FRAMES_WRITE && !s->partial_len) {
        const char *nl = memchr(q, '\n', (size_t)(end - q));
        if (!nl)
            break;
        size_t n = (size_t)(nl - q), len;
        if (n && q[n - 1] == '\r')
            n--;
        char *owned = NULL;
        const char *text = s->binary ? (len = n, q) : as_utf8(q, n, &len, &owned);
        if (!text) {
            *failed = fl == 0;
            break;
        }
        if (fl + len + 10 > FRAMES) {
            free(owned);
            break;
        }
        fl += frame_into(frames + fl, s->binary, text, len);
        free(owned);
        q = nl + 1;
    }
    *p = q;
    return fl;
}

/* Lines out, one frame each. Whole lines are framed into one shared buffer and
 * written in one call below (a frame per write would cost a system call per
 * line: 30 times plain TCP's cost per message); what below does not take is
 * kept (at most FRAMES_WRITE and a line). wslay sends the rare rest: control
 * frames, a line without its LF yet, one too long for the buffer. */
static ssize_t ws_write(struct transport *t, const void *buf, size_t len)
{
    static char frames[FRAMES];
    struct ws *s = (struct ws *)t;
    if (send_some(s) < 0)
        return -1;
    if (s->raw_closed || !wslay_event_get_write_enabled(s->ctx) || wslay_event_get_close_sent(s->ctx))
        return (ssize_t)len; /* our close frame has gone: nothing more may follow it */
    if (out_waiting(s)) {
        errno = EAGAIN;
        return -1;
    }
    const char *p = buf, *end = p + len;
    while (p < end) {
        const char *q = p;
        int failed = 0;
        size_t fl = frame_lines(s, frames, &q, end, &failed);
        if (failed) {
            errno = ENOMEM;
            return p > (const char *)buf ? p - (const char *)buf : -1;
        }
        if (fl) {
            ssize_t n = s->below->ops->write(s->below, frames, fl);
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                return -1;
            if (n < 0 && p == (const char *)buf)
                return -1; /* nothing taken (EAGAIN) */
            if (n < 0)
                break;
            if ((size_t)n < fl) { /* the lines are taken: keep the rest of their frames */
                if (keep_out(s, frames + n, fl - (size_t)n) < 0) {
                    errno = ENOMEM;
                    return -1;
                }
                p = q;
                break;
            }
            p = q;
            continue;
        }
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        if (line_part(s, p, (size_t)(stop - p), nl != NULL) < 0) {
            errno = ENOMEM;
            return p > (const char *)buf ? p - (const char *)buf : -1;
        }
        p = nl ? nl + 1 : end;
        if (nl && send_some(s) < 0)
            return -1;
        if (out_waiting(s))
            break; /* the socket is full: the rest stays in the connection's queue */
    }
    return p - (const char *)buf;
}

/* ==== Input ==== */

static ssize_t take(struct ws *s, void *buf, size_t len)
{
    size_t n = s->in_len - s->in_off < len ? s->in_len - s->in_off : len;
    memcpy(buf, s->in + s->in_off, n);
    s->in_off += n;
    if (s->in_off == s->in_len) {
        s->in_off = s->in_len = 0;
        free(s->in); /* an idle connection holds no buffer of ours (wslay's context: 9.4 KB) */
        s->in = NULL;
        s->in_cap = 0;
    }
    return (ssize_t)n;
}

/* Why wslay stopped reading: the client's close (an end of stream), or our
 * close frame for a protocol error (a failure, with its code in words). */
static ssize_t read_ended(struct ws *s)
{
    if (wslay_event_get_close_received(s->ctx) && !s->why)
        return 0;
    if (out_waiting(s)) { /* our close frame first */
        errno = EAGAIN;
        return -1;
    }
    if (!s->why) {
        switch (wslay_event_get_status_code_sent(s->ctx)) {
        case WSLAY_CODE_PROTOCOL_ERROR: s->why = "protocol error (closed with 1002)"; break;
        case WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA: s->why = "text that is not UTF-8 (closed with 1007)"; break;
        case WSLAY_CODE_MESSAGE_TOO_BIG: s->why = "message too big (closed with 1009)"; break;
        default: return 0;
        }
    }
    s->failed = 1;
    errno = EPROTO;
    return -1;
}

/* The frame layer found a protocol error (a control frame over 125 bytes or
 * fragmented, a bad length): wslay queues a close without a code. When nothing
 * of ours is half-sent, a close with 1002 goes out by hand instead (a frame
 * of four bytes, into an empty socket buffer); else wslay's. */
static void protocol_error(struct ws *s, int idle_out)
{
    static const unsigned char close_1002[] = {0x88, 0x02, 0x03, 0xEA};
    s->why = "protocol error (closed with 1002)";
    if (idle_out) {
        s->below->ops->write(s->below, close_1002, sizeof close_1002);
        s->raw_closed = 1;
    } else {
        send_some(s);
    }
    s->failed = 1;
    errno = EPROTO;
}

/* What read can answer without asking wslay: decoded lines, the end, a
 * failure, reading over. 1 with *r set when it did, 0 when wslay must read. */
static int answered(struct ws *s, void *buf, size_t len, ssize_t *r)
{
    if (s->in_len > s->in_off) {
        *r = take(s, buf, len);
    } else if (s->eof) {
        *r = 0;
    } else if (s->err) {
        errno = s->err;
        *r = -1;
    } else if (!wslay_event_get_read_enabled(s->ctx)) {
        *r = read_ended(s);
    } else {
        return 0;
    }
    return 1;
}

static ssize_t ws_read(struct transport *t, void *buf, size_t len)
{
    struct ws *s = (struct ws *)t;
    ssize_t r;
    if (s->failed)
        return s->below->ops->read(s->below, buf, len);
    if (send_some(s) < 0)
        return -1;
    if (answered(s, buf, len, &r))
        return r;
    s->stopped = 0;
    int idle_out = !out_waiting(s);
    int rc = wslay_event_recv(s->ctx);
    if (rc == WSLAY_ERR_NOMEM) {
        s->err = ENOMEM;
    } else if (rc < 0 && !s->eof && !s->err) {
        protocol_error(s, idle_out);
        return -1;
    }
    if (send_some(s) < 0 && !s->err)
        s->err = errno; /* (pongs, close replies) */
    if (answered(s, buf, len, &r))
        return r;
    errno = EAGAIN;
    return -1;
}

static size_t ws_pending(struct transport *t)
{
    struct ws *s = (struct ws *)t;
    if (s->in_len > s->in_off || s->early_off < s->early_len || s->stopped)
        return 1;
    return s->below->ops->pending ? s->below->ops->pending(s->below) : 0;
}

/* ==== The rest of the contract ==== */

static int ws_events(struct transport *t, int want)
{
    struct ws *s = (struct ws *)t;
    /* Frames of wslay's own (a pong, a close) go out when the connection is
     * served at all; not while it is paused (want 0), or the loop would spin. */
    if (want && out_waiting(s))
        want |= LOOP_WRITE;
    if ((want & LOOP_READ) && out_backed(s))
        want = (want & ~LOOP_READ) | LOOP_WRITE; /* recv_cb will not read: wait to write */
    return s->below->ops->events ? s->below->ops->events(s->below, want) : want;
}

static void ws_ping(struct transport *t)
{
    struct ws *s = (struct ws *)t;
    struct wslay_event_msg m = {WSLAY_PING, (const uint8_t *)"natter", 6};
    if (wslay_event_queue_msg(s->ctx, &m) == 0)
        send_some(s);
}

static void ws_limit(struct transport *t)
{
    ((struct ws *)t)->close_code = WSLAY_CODE_POLICY_VIOLATION;
}

static int ws_shutdown(struct transport *t)
{
    struct ws *s = (struct ws *)t;
    if (s->partial_len) {
        queue_line(s, s->partial, s->partial_len);
        free(s->partial);
        s->partial = NULL;
        s->partial_len = 0;
    }
    if (s->raw_closed)
        return s->below->ops->shutdown(s->below);
    if (!wslay_event_get_close_sent(s->ctx))
        wslay_event_queue_close(s->ctx, (uint16_t)(s->close_code ? s->close_code : WSLAY_CODE_NORMAL_CLOSURE), NULL, 0);
    if (send_some(s) < 0)
        return -1;
    /* Our close frame out, the peer answers with its own: read says end of
     * stream then. The TCP FIN waits until the frame has gone. */
    return out_waiting(s) ? 0 : s->below->ops->shutdown(s->below);
}

static void ws_close(struct transport *t)
{
    struct ws *s = (struct ws *)t;
    /* Closed without a close frame of ours (natterd shutting down, a client
     * dropped as too slow): one, best effort, with 1001 going away (or the
     * limit's 1008). */
    if (!s->raw_closed && !s->failed && !s->err && !s->eof && wslay_event_get_write_enabled(s->ctx) &&
        !wslay_event_get_close_sent(s->ctx) &&
        wslay_event_queue_close(s->ctx, (uint16_t)(s->close_code ? s->close_code : WSLAY_CODE_GOING_AWAY), NULL, 0) == 0)
        send_some(s);
    if (s->ctx)
        wslay_event_context_free(s->ctx);
    free(s->in);
    free(s->early);
    free(s->out);
    free(s->partial);
    s->below->ops->close(s->below);
    free(s);
}

static const char *ws_error(struct transport *t)
{
    struct ws *s = (struct ws *)t;
    if (s->why)
        return s->why;
    return s->below->ops->error ? s->below->ops->error(s->below) : NULL;
}

static int ws_secure(const struct transport *t)
{
    const struct ws *s = (const struct ws *)t;
    return s->below->ops->secure ? s->below->ops->secure(s->below) : 0;
}

static const struct transport_ops ws_ops = {
    .name = "ws",
    .read = ws_read,
    .write = ws_write,
    .events = ws_events,
    .pending = ws_pending,
    .shutdown = ws_shutdown,
    .close = ws_close,
    .error = ws_error,
    .ping = ws_ping,
    .limit = ws_limit,
    .secure = ws_secure,
};

static char *copy(const char *p, size_t n)
{
    char *d = n ? malloc(n) : NULL;
    if (d)
        memcpy(d, p, n);
    return d;
}

struct transport *ws_wrap(struct transport *below, int binary, size_t max_msg, const char *preamble,
                          size_t preamble_len, const char *early, size_t early_len)
{
    struct ws *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->below = below;
    s->binary = binary;
    s->max_msg = max_msg;
    s->base.ops = &ws_ops;
    s->base.fd = below->fd;
    if (wslay_event_context_server_init(&s->ctx, &callbacks, s) != 0 ||
        (preamble_len && !(s->out = copy(preamble, preamble_len))) || (early_len && !(s->early = copy(early, early_len)))) {
        if (s->ctx)
            wslay_event_context_free(s->ctx);
        free(s->out);
        free(s);
        errno = ENOMEM;
        return NULL;
    }
    s->out_len = preamble_len;
    s->early_len = early_len;
    wslay_event_config_set_max_recv_msg_length(s->ctx, max_msg);
    return &s->base;
}

int ws_transport(const struct transport *t)
{
    return t->ops == &ws_ops;
}

struct transport *ws_below(struct transport *t)
{
    return ((struct ws *)t)->below;
}

void ws_set_close_code(struct transport *t, int code)
{
    ((struct ws *)t)->close_code = code;
}
