/* buf.c - messages, output queues and line framing (see buf.h). */
#include "core/buf.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    m->len = m->cap = (uint32_t)len;
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
    m->cap = (uint32_t)n + 1;
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
    q->cost += msg_cost(m->cap);
    q->chunk = NULL; /* the newest is not our chunk any more */
    return 0;
}

int outq_append(struct outq *q, struct msg *m)
{
    if (m->len > OUTQ_COALESCE_MAX)
        return outq_push(q, m);
    struct msg *ch = q->chunk;
    if (!ch || ch->len + m->len > ch->cap) {
        /* A fresh chunk, allocated whole: its cost is what malloc holds. */
        if (q->count == q->cap && outq_grow(q) < 0)
            return -1;
        if (!(ch = malloc(OUTQ_CHUNK)))
            return -1;
        ch->refs = 1;
        ch->len = 0;
        ch->cap = (uint32_t)(OUTQ_CHUNK - sizeof *ch);
        q->ring[(q->head + q->count) & (q->cap - 1)] = ch;
        q->count++;
        q->cost += msg_cost(ch->cap);
        q->chunk = ch;
    }
    memcpy(ch->data + ch->len, m->data, m->len);
    ch->len += m->len;
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
        if (m == q->chunk)
            q->chunk = NULL;
        q->cost -= msg_cost(m->cap);
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

ssize_t outq_write(struct outq *q, outq_write_fn *fn, void *ctx)
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
        ssize_t w = fn(ctx, p, n);
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

/* ==== Input not consumed yet ==== */

char *inbuf_space(struct inbuf *b, size_t n)
{
    if ((size_t)b->len + n > UINT32_MAX)
        return NULL;
    char *p = realloc(b->data, (size_t)b->len + n);
    if (!p)
        return NULL;
    b->data = p;
    return p + b->len;
}

int inbuf_keep(struct inbuf *b, const char *p, size_t n)
{
    if (n == 0) {
        inbuf_clear(b);
        return 0;
    }
    if (n > UINT32_MAX)
        return -1;
    int inside = b->data && p >= b->data && p < b->data + b->len;
    if (inside) {
        memmove(b->data, p, n);
        char *fit = realloc(b->data, n); /* shrinking: keeps the data if it fails */
        if (fit)
            b->data = fit;
    } else {
        char *fresh = malloc(n); /* (p may point into b->data's spare room) */
        if (!fresh)
            return -1;
        memcpy(fresh, p, n);
        free(b->data);
        b->data = fresh;
    }
    b->len = (uint32_t)n;
    return 0;
}

void inbuf_clear(struct inbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
}
