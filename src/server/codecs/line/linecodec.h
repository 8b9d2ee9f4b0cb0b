/* linecodec.h - natter's plain line protocol (docs/protocol.md) as a codec. */
#ifndef NATTER_LINECODEC_H
#define NATTER_LINECODEC_H

#include "server/codec.h"
#include "server/hub.h"

extern const struct codec line_codec;

/* Send the error line for a hub error to c; arg names what was wrong. */
void line_error(struct conn *c, enum hub_err err, const char *arg);
/* The user leaves (bye, /quit): goodbye line, quit notice, close. Returns 1. */
int line_quit(struct conn *c, const char *reason);

#endif
