/* httpcodec.h - HTTP/1.1 as a codec, on the HTTP and HTTPS listeners: the
 * embedded page (webfiles.h) for GET and HEAD, and /ws upgraded to WebSocket
 * with IRC over it (IRCv3's WebSocket binding). docs/protocol.md, "WebSocket
 * and the page", says what goes over the wire; docs/security.md the limits.
 *
 * Requests are read with Debian's libhttp-parser; a connection keeps alive
 * between requests (HTTP/1.1's default, or as the client asks) for at most
 * --http-timeout seconds from its connect (the listener's profile sets the
 * login and idle timeouts to it), and is closed after any error response.
 */
#ifndef NATTER_HTTPCODEC_H
#define NATTER_HTTPCODEC_H

#include "server/codec.h"

struct conn_profile;

extern const struct codec http_codec;

/* The longest request head (request line and headers), in bytes: 431 past it. */
#define HTTP_MAX_HEAD 8192

struct http_config {
    /* Origins a browser may open /ws from, separated by spaces or commas:
     * "https://chat.example.org". NULL: the page's own (the scheme of the
     * listener and the request's Host). */
    const char *origins;
    /* Where an upgraded connection goes: the codec (IRC) and its terms over
     * HTTP and over HTTPS (the limits of IRC clients). */
    const struct codec *codec;
    const struct conn_profile *ws, *wss;
};

/* Before any connection; cfg must outlive them (a reload may change origins). */
void http_setup(const struct http_config *cfg);

#endif
