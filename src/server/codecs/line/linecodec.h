/* linecodec.h - natter's plain line protocol (docs/protocol.md) as a codec. */
#ifndef NATTER_LINECODEC_H
#define NATTER_LINECODEC_H

#include "server/codec.h"

extern const struct codec line_codec;

#endif
