/* lineframe.h - line framing: the line-based codecs' (the plain protocol, IRC)
 * and the client's.
 *
 * A line ends in "\n"; one "\r" right before it is dropped, so "\r\n" works too.
 * lineframe_input hands each complete line in data to fn, NUL-terminated in place
 * (data is the connection's and writable), and returns how many bytes it consumed:
 * the complete lines, never an unfinished last one, which the connection keeps
 * and offers again with the bytes that follow it (conn.c). So a line reaches the
 * codec whole, straight from the read buffer, and nothing but an unfinished line
 * is ever copied.
 *
 * A line longer than max bytes (not counting "\r\n") is discarded up to its
 * newline and reported once, with line NULL: as soon as its unfinished part is
 * longer than max + 1, so a client cannot make the server hold more than that.
 * The framer's only state is one byte (*skipping: discarding the rest of such a
 * line), which the codec keeps for it, zero at the start.
 */
#ifndef NATTER_LINEFRAME_H
#define NATTER_LINEFRAME_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* One complete line (len bytes, line[len] == '\0'), or NULL for one that was too
 * long. Return 1 to go on, 0 to stop after this line (the client is paused by
 * flood control, the connection is closing, or the codec was switched): the
 * bytes after it are left unconsumed. Return LINEFRAME_AGAIN to stop before it:
 * the line is left unconsumed too (its terminator put back), to be offered again
 * (the server was too busy for it this loop turn). */
typedef int lineframe_fn(void *ctx, char *line, size_t len);
#define LINEFRAME_AGAIN (-1)

/* *discarded (may be NULL) is increased by the bytes of overlong lines thrown
 * away in this call, so the caller can charge for them (reading them costs what
 * reading any bytes costs). */
size_t lineframe_input(uint8_t *skipping, char *data, size_t len, size_t max, lineframe_fn *fn, void *ctx,
                       size_t *discarded);

/* For a reader with buffers of its own (the client): frame n more bytes after
 * those kept in *kept, and keep what is left unconsumed. Returns 0 when fn never
 * stopped, 1 when it did (the rest is kept), -1 when out of memory. */
int lineframe_feed(struct inbuf *kept, uint8_t *skipping, const char *data, size_t n, size_t max, lineframe_fn *fn,
                   void *ctx);

#endif
