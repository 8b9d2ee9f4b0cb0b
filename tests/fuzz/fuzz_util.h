/* fuzz_util.h - invariants shared by the fuzz targets, written independently of
 * src/text.c so that a bug there is not simply mirrored here. */
#ifndef NATTER_FUZZ_UTIL_H
#define NATTER_FUZZ_UTIL_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

/* Stop with a message: libFuzzer saves the input as a crash artifact. */
#define FUZZ_ASSERT(cond, what)                                                \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "FUZZ_ASSERT failed: %s (%s) at %s:%d\n", (what), #cond, \
                    __FILE__, __LINE__);                                       \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* 1 if s[0..n) is UTF-8 (RFC 3629 table 3-7: shortest form, no surrogates,
 * at most U+10FFFF) with nothing a terminal would act on: no C0 control but
 * TAB, no DEL, no C1 control, no bidi embedding/override/isolate control. */
static inline int fuzz_clean_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t') || c == 0x7F)
                return 0;
            i++;
            continue;
        }
        size_t len;
        unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF)
            len = 2;
        else if (c == 0xE0)
            len = 3, lo = 0xA0;
        else if (c == 0xED)
            len = 3, hi = 0x9F;
        else if (c >= 0xE1 && c <= 0xEF)
            len = 3;
        else if (c == 0xF0)
            len = 4, lo = 0x90;
        else if (c == 0xF4)
            len = 4, hi = 0x8F;
        else if (c >= 0xF1 && c <= 0xF3)
            len = 4;
        else
            return 0;
        if (i + len > n || s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k < len; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return 0;
        if (c == 0xC2 && s[i + 1] <= 0x9F)
            return 0; /* C1: U+0080..U+009F */
        if (c == 0xE2 && s[i + 1] == 0x80 && s[i + 2] >= 0xAA && s[i + 2] <= 0xAE)
            return 0; /* U+202A..U+202E */
        if (c == 0xE2 && s[i + 1] == 0x81 && s[i + 2] >= 0xA6 && s[i + 2] <= 0xA9)
            return 0; /* U+2066..U+2069 */
        i += len;
    }
    return 1;
}

#endif
