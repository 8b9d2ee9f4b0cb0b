/* lineframe.c - line framing for line-based codecs (see lineframe.h). */
#include "core/lineframe.h"

#include <string.h>

size_t lineframe_input(uint8_t *skipping, char *data, size_t len, size_t max, lineframe_fn *fn, void *ctx,
                       size_t *discarded)
{
    size_t used = 0, dropped = 0;
    char *nl;
    while ((nl = memchr(data + used, '\n', len - used)) != NULL) {
        char *line = data + used;
        size_t n = (size_t)(nl - line);
        size_t start = used;
        used += n + 1;
        if (*skipping) { /* the end of a line already reported as too long */
            *skipping = 0;
            dropped += n + 1;
            continue;
        }
        if (n > 0 && line[n - 1] == '\r')
            n--;
        char was = line[n];
        line[n] = '\0';
        if (n > max)
            dropped += used - start;
        int rc = fn(ctx, n > max ? NULL : line, n);
        if (rc == LINEFRAME_AGAIN && n <= max) {
            line[n] = was;
            used = start;
            break;
        }
        if (rc <= 0)
            break;
    }
    if (!nl) { /* no stop: what is left is an unfinished line */
        /* An unfinished line: kept by the connection, unless it is already too
         * long (+1: room for the '\r' of a "\r\n"). */
        size_t tail = len - used;
        if (*skipping) {
            dropped += tail;
            used = len;
        } else if (tail > max + 1) {
            *skipping = 1;
            dropped += tail;
            fn(ctx, NULL, 0); /* the rest of the input is discarded with it: nothing to stop */
            used = len;
        }
    }
    if (discarded)
        *discarded += dropped;
    return used;
}

struct stop_watch {
    lineframe_fn *fn;
    void *ctx;
    int stopped;
};

static int watched(void *ctx, char *line, size_t len)
{
    struct stop_watch *w = ctx;
    int rc = w->fn(w->ctx, line, len);
    if (rc <= 0)
        w->stopped = 1;
    return rc;
}

int lineframe_feed(struct inbuf *kept, uint8_t *skipping, const char *data, size_t n, size_t max, lineframe_fn *fn,
                   void *ctx)
{
    char *end = inbuf_space(kept, n);
    if (!end)
        return -1;
    if (n)
        memcpy(end, data, n);
    size_t len = kept->len + n;
    struct stop_watch w = {fn, ctx, 0};
    size_t used = lineframe_input(skipping, kept->data, len, max, watched, &w, NULL);
    if (inbuf_keep(kept, kept->data + used, len - used) < 0)
        return -1;
    return w.stopped;
}
