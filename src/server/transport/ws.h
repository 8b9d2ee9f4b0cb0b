/* ws.h - the WebSocket transport: RFC 6455 framing (Debian's libwslay) over the
 * transport below it (the socket, or TLS), driven from the loop without ever
 * blocking. The codec above it sees lines: IRCv3's WebSocket binding
 * (docs/protocol.md, "WebSocket").
 *
 *  - read: each text or binary message the client sends (fragments joined,
 *    unmasked by the library) comes out as its payload and "\r\n", so the IRC
 *    codec reads one IRC line per message;
 *  - write: the codec's CRLF lines go out one message each, without the CRLF;
 *    in a text message, bytes that are not UTF-8 are replaced by U+FFFD;
 *  - pings are answered, and ws_ping sends one; the close handshake is
 *    wslay's: a close frame is answered with the same code, and then read
 *    says end of stream; shutdown sends 1000 (or the code set by
 *    ws_set_close_code);
 *  - protocol errors close with their codes: 1002 (an unmasked client frame,
 *    a bad opcode), 1007 (a text message that is not UTF-8), 1009 (a message
 *    over max_msg bytes).
 *
 * The HTTP codec (codecs/http/) builds it on a connection it has upgraded
 * (conn_set_transport): preamble is the 101 response, written as it is before
 * any frame; early is what the client sent after its request head, read before
 * anything from below. */
#ifndef NATTER_WS_H
#define NATTER_WS_H

#include <stddef.h>

#include "server/transport/transport.h"

/* A WebSocket server transport over below (which it then owns and closes).
 * binary: messages go out as binary frames (binary.ircv3.net), else text.
 * NULL when out of memory. */
struct transport *ws_wrap(struct transport *below, int binary, size_t max_msg, const char *preamble,
                          size_t preamble_len, const char *early, size_t early_len);
/* 1 if t is a WebSocket transport. */
int ws_transport(const struct transport *t);
/* The transport under a WebSocket one (for "is it over TLS?"). */
struct transport *ws_below(struct transport *t);
/* The close code its shutdown sends: 1000 unless set (1008: dropped for a limit). */
void ws_set_close_code(struct transport *t, int code);

#endif
