/* buf.c - messages, output queues and line framing (see buf.h). */
#include "core/buf.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OUTQ_MIN_CAP 8
#define OUTQ_SCRATCH (64 * 1024) /* bytes per write: one loopback socket buffer's worth */

/* ==== Messages ==== */

struct msg *msg_new(const char *data, size_t len)
{
    if (len > UINT32_MAX)
        return NULL;
    struct msg *m = malloc(sizeof *m + len);
    if (!m)
        return NULL;
    m->refs = 1;
    m->len = (uint32_t)len;
    memcpy(m->data, data, len);
    return m;
}

struct msg *msg_printf(const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    if ((size_t)n < sizeof small)
        return msg_new(small, (size_t)n);
    struct msg *m = malloc(sizeof *m + (size_t)n + 1);
    if (!m)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(m->data, (size_t)n + 1, fmt, ap);
    va_end(ap);
    m->refs = 1;
    m->len = (uint32_t)n;
    return m;
}

void msg_unref(struct msg *m)
{
    if (m && --m->refs == 0)
        free(m);
}

/* ==== Output queues ==== */

static int outq_grow(struct outq *q)
{
    uint32_t cap = q->cap ? q->cap * 2 : OUTQ_MIN_CAP;
    struct msg **ring = malloc(cap * sizeof *ring);
    if (!ring)
        return -1;
    /* Unwrap the old ring into the start of the new one. */
    for (uint32_t i = 0; i < q->count; i++)
        ring[i] = q->ring[(q->head + i) & (q->cap - 1)];
    free(q->ring);
    q->ring = ring;
    q->cap = cap;
    q->head = 0;
    return 0;
}

int outq_push(struct outq *q, struct msg *m)
{
    if (q->count == q->cap && outq_grow(q) < 0)
        return -1;
    q->ring[(q->head + q->count) & (q->cap - 1)] = msg_ref(m);
    q->count++;
    q->bytes += m->len;
    return 0;
}

/* Drop n written bytes from the front of the queue. */
static void outq_consume(struct outq *q, size_t n)
{
    q->bytes -= n;
    while (n > 0) {
        struct msg *m = q->ring[q->head];
        size_t left = m->len - q->off;
        if (n < left) {
            q->off += (uint32_t)n;
            return;
        }
        n -= left;
        msg_unref(m);
        q->head = (q->head + 1) & (q->cap - 1);
        q->count--;
        q->off = 0;
    }
}

/* Copy queued bytes into one contiguous buffer: the kernel copies one block far
 * faster than many 40-byte iovecs (see docs/PERFORMANCE.md). Returns bytes
 * gathered; 0 if the first msg alone is larger than the buffer. */
static size_t outq_gather(const struct outq *q, char *buf, size_t cap)
{
    size_t n = 0;
    for (uint32_t i = 0; i < q->count; i++) {
        const struct msg *m = q->ring[(q->head + i) & (q->cap - 1)];
        size_t skip = i == 0 ? q->off : 0;
        size_t len = m->len - skip;
        if (n + len > cap)
            break;
        memcpy(buf + n, m->data + skip, len);
        n += len;
    }
    return n;
}

ssize_t outq_write(struct outq *q, int fd)
{
    static char scratch[OUTQ_SCRATCH];
    size_t total = 0;
    while (q->count > 0) {
        size_t n = outq_gather(q, scratch, sizeof scratch);
        const char *p = scratch;
        if (n == 0) { /* one big msg: write it from where it is */
            p = q->ring[q->head]->data + q->off;
            n = q->ring[q->head]->len - q->off;
        }
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        outq_consume(q, (size_t)w);
        total += (size_t)w;
        if ((size_t)w < n)
            break; /* short write: the socket is full */
    }
    if (q->count == 0)
        outq_clear(q); /* give an idle connection's memory back */
    return (ssize_t)total;
}

void outq_clear(struct outq *q)
{
    for (uint32_t i = 0; i < q->count; i++)
        msg_unref(q->ring[(q->head + i) & (q->cap - 1)]);
    free(q->ring);
    *q = (struct outq){0};
}

/* ==== Line framing ==== */

static int keep_partial(struct inbuf *b, const char *data, size_t n)
{
    size_t need = (size_t)b->len + n;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap < need)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return -1;
        b->data = p;
        b->cap = (uint32_t)cap;
    }
    if (n > 0) /* a pause after the last line keeps nothing: b->data may be NULL */
        memcpy(b->data + b->len, data, n);
    b->len = (uint32_t)need;
    return 0;
}

static int emit(const char *line, size_t len, inbuf_line_fn *fn, void *ctx)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    return fn(ctx, line, len);
}

/* Handle data that holds no newline: keep it, or start skipping if the line is too long. */
static int feed_tail(struct inbuf *b, const char *data, size_t n, size_t max, inbuf_line_fn *fn, void *ctx)
{
    if (b->skipping || n == 0)
        return 0;
    if ((size_t)b->len + n > max + 1) { /* +1: room for a '\r' before the '\n' */
        inbuf_clear(b);
        b->skipping = 1;
        return fn(ctx, NULL, 0) == INBUF_STOP ? INBUF_STOP : INBUF_GO;
    }
    return keep_partial(b, data, n);
}

int inbuf_feed(struct inbuf *b, const char *data, size_t n, size_t max, inbuf_line_fn *fn, void *ctx)
{
    const char *nl;
    while ((nl = memchr(data, '\n', n)) != NULL) {
        size_t len = (size_t)(nl - data);
        int rc = INBUF_GO;
        if (b->skipping) {
            b->skipping = 0;
        } else if (b->len > 0) {
            /* Finish the line kept from earlier reads. */
            rc = feed_tail(b, data, len, max, fn, ctx);
            if (rc != INBUF_GO)
                return rc;
            if (b->skipping) {
                b->skipping = 0;
            } else {
                /* feed_tail let max+1 bytes through (room for a '\r'); without
                 * the '\r', that is one byte too many. */
                size_t whole = b->len - (b->data[b->len - 1] == '\r');
                rc = whole > max ? fn(ctx, NULL, 0) : emit(b->data, b->len, fn, ctx);
                inbuf_clear(b);
            }
        } else if (len > max + (len > 0 && data[len - 1] == '\r')) {
            rc = fn(ctx, NULL, 0);
        } else {
            rc = emit(data, len, fn, ctx); /* the common case: no copy at all */
        }
        n -= len + 1;
        data = nl + 1;
        if (rc == INBUF_PAUSE && keep_partial(b, data, n) == 0) {
            b->held = 1;
            return INBUF_PAUSE;
        }
        if (rc != INBUF_GO)
            return rc == INBUF_PAUSE ? -1 : rc;
    }
    return feed_tail(b, data, n, max, fn, ctx);
}

int inbuf_resume(struct inbuf *b, size_t max, inbuf_line_fn *fn, void *ctx)
{
    if (!b->held)
        return INBUF_GO;
    /* Frame the kept input as if it had just been read. */
    struct inbuf kept = *b;
    *b = (struct inbuf){0};
    int rc = kept.len ? inbuf_feed(b, kept.data, kept.len, max, fn, ctx) : INBUF_GO;
    free(kept.data);
    return rc;
}

void inbuf_clear(struct inbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->held = 0;
}
