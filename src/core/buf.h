/* buf.h - messages, output queues, and input not consumed yet.
 *
 * A msg is an immutable, reference-counted run of bytes (a line, a frame). A
 * broadcast builds one msg and every recipient's outq holds a reference to it, so
 * fan-out to N users costs N pointer pushes, not N copies. An outq is written by
 * gathering its msgs into one scratch buffer per write call. An inbuf keeps the
 * input a codec has not consumed yet (an unfinished line), sized to fit, and
 * nothing at all for an idle connection.
 */
#ifndef NATTER_BUF_H
#define NATTER_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct msg {
    uint32_t refs;
    uint32_t len;
    uint32_t cap;  /* bytes allocated for data (len, or more for an outq chunk) */
    char data[];
};

/* A new msg with refs = 1, or NULL when out of memory. */
struct msg *msg_new(const char *data, size_t len);
struct msg *msg_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline struct msg *msg_ref(struct msg *m)
{
    m->refs++;
    return m;
}
void msg_unref(struct msg *m);

/* What a msg of cap data bytes costs the allocator: its header and bytes, rounded up
 * as glibc's malloc rounds a request (8 bytes of chunk header, 16-byte steps,
 * 32 at least). The memory bounds of docs/security.md are in these units. */
static inline size_t msg_cost(size_t cap)
{
    size_t n = sizeof(struct msg) + cap + 8;
    n = (n + 15) & ~(size_t)15;
    return n < 32 ? 32 : n;
}

/* Small msgs queued behind a blocked writer are copied into chunks of this size
 * (see outq_append): 20,000 7-byte lines then cost about their bytes, not 20,000
 * allocations and ring slots. */
#define OUTQ_CHUNK 4096
#define OUTQ_COALESCE_MAX 512 /* msgs up to this long are coalesced */

struct outq {
    struct msg **ring; /* allocated on first push, freed when drained */
    uint32_t head;     /* index of the oldest msg */
    uint32_t count;
    uint32_t cap;      /* a power of two */
    uint32_t off;      /* bytes of the oldest msg already written */
    size_t bytes;      /* bytes queued and not yet written */
    size_t cost;       /* msg_cost of every queued msg (shared ones counted whole) */
    struct msg *chunk; /* the newest msg if it is our own chunk with room left, else NULL */
};

/* Queue a reference to m. Returns 0, or -1 when out of memory. */
int outq_push(struct outq *q, struct msg *m);
/* Queue m's bytes: copied into the queue's own chunk when m is small (at most
 * OUTQ_COALESCE_MAX bytes), else as outq_push. For a queue that is waiting on
 * its writer, where copying is cheaper than holding many small msgs. */
int outq_append(struct outq *q, struct msg *m);
/* What the queue costs in memory: its msgs (msg_cost) and its ring's slots. */
static inline size_t outq_cost(const struct outq *q)
{
    return q->cost + (size_t)q->cap * sizeof *q->ring;
}

/* Where an outq's bytes go: like write(2), bytes taken or -1 with errno set
 * (EAGAIN when none could be taken). */
typedef ssize_t outq_write_fn(void *ctx, const void *buf, size_t len);
/* Write as much as fn takes, in blocks of queued msgs gathered into one buffer.
 * Returns bytes written (0 if nothing could be), or -1 with errno set on a real
 * error (EAGAIN is not one). */
ssize_t outq_write(struct outq *q, outq_write_fn *fn, void *ctx);
void outq_clear(struct outq *q);

struct inbuf {
    char *data;    /* NULL when nothing is kept */
    uint32_t len;
};

/* Room for n more bytes after the kept ones, for a read to fill: returns
 * b->data + b->len, or NULL when out of memory. b->len is unchanged. */
char *inbuf_space(struct inbuf *b, size_t n);
/* Keep exactly the n bytes at p, in place of what was kept (p may point into
 * b->data); the buffer is resized to fit and freed when n is 0. Returns 0, or -1
 * when out of memory (what was kept before is then kept). */
int inbuf_keep(struct inbuf *b, const char *p, size_t n);
void inbuf_clear(struct inbuf *b);

#endif
