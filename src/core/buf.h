/* buf.h - messages, output queues and line framing.
 *
 * A msg is an immutable, reference-counted line of bytes. A broadcast builds one
 * msg and every recipient's outq holds a reference to it, so fan-out to N users
 * costs N pointer pushes, not N copies. An outq is written by gathering its
 * msgs into one scratch buffer per write() call. An inbuf frames lines, keeping only an unfinished line
 * between reads (nothing at all for an idle connection).
 */
#ifndef NATTER_BUF_H
#define NATTER_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct msg {
    uint32_t refs;
    uint32_t len;
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

struct outq {
    struct msg **ring; /* allocated on first push, freed when drained */
    uint32_t head;     /* index of the oldest msg */
    uint32_t count;
    uint32_t cap;      /* a power of two */
    uint32_t off;      /* bytes of the oldest msg already written */
    size_t bytes;      /* bytes queued and not yet written */
};

/* Queue a reference to m. Returns 0, or -1 when out of memory. */
int outq_push(struct outq *q, struct msg *m);
/* Write as much as the socket takes. Returns bytes written (0 if nothing could be),
 * or -1 with errno set on a real error (EAGAIN is not one). */
ssize_t outq_write(struct outq *q, int fd);
void outq_clear(struct outq *q);

struct inbuf {
    char *data;    /* the unfinished line; NULL when there is none */
    uint32_t len;
    uint32_t cap;
    uint8_t skipping; /* discarding an overlong line up to its newline */
    uint8_t held;     /* data holds input kept by a pause, not an unfinished line */
};

/* Called for each complete line (without "\n" or "\r\n"), or with line NULL once
 * when a line passes max bytes (its rest is then discarded). Returns INBUF_GO to
 * go on, INBUF_STOP to drop the rest (the connection is going away), or
 * INBUF_PAUSE to keep the rest for later (flood control). */
enum { INBUF_GO = 0, INBUF_STOP = 1, INBUF_PAUSE = 2 };
typedef int inbuf_line_fn(void *ctx, const char *line, size_t len);

/* Frame n bytes of input. Returns INBUF_GO when all was framed, INBUF_STOP or
 * INBUF_PAUSE when a callback said so, -1 when out of memory. After a pause,
 * inbuf_resume frames what was kept. */
int inbuf_feed(struct inbuf *b, const char *data, size_t n, size_t max, inbuf_line_fn *fn, void *ctx);
int inbuf_resume(struct inbuf *b, size_t max, inbuf_line_fn *fn, void *ctx);
void inbuf_clear(struct inbuf *b);

#endif
