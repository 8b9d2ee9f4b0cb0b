/* linecodec.h - natter's plain line protocol (docs/protocol.md) as a codec. */
#ifndef NATTER_LINECODEC_H
#define NATTER_LINECODEC_H

#include "server/codec.h"

extern const struct codec line_codec;

/* Recognise IRC clients (a first line of CAP, NICK, USER or PASS) and hand them
 * to irc; plain connections are then greeted after a short wait for that line
 * (docs/protocol.md). Without it they are greeted at once. */
void line_hand_irc_to(const struct codec *irc);

#endif
