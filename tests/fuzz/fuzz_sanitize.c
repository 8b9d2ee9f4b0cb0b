/* fuzz_sanitize.c - libFuzzer target for text_sanitize and the name/room rules.
 *
 * For any bytes: the output fits 3*len+1 and is NUL-terminated, is valid UTF-8
 * without controls except TAB, sanitising it again changes nothing, and input
 * that is already clean comes out unchanged. `make fuzz` runs it.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "core/names.h"
#include "core/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exactly the documented size, so ASan reports any write past it. */
    char *out = malloc(3 * size + 1);
    size_t n = text_sanitize(out, (const char *)data, size);
    FUZZ_ASSERT(n <= 3 * size, "output within 3*len");
    FUZZ_ASSERT(out[n] == '\0', "output NUL-terminated");
    FUZZ_ASSERT(memchr(out, '\0', n) == NULL, "no NUL inside the output");
    FUZZ_ASSERT(fuzz_clean_utf8((const unsigned char *)out, n), "output is clean UTF-8");
    if (fuzz_clean_utf8(data, size))
        FUZZ_ASSERT(n == size && memcmp(out, data, size) == 0, "clean input is kept as is");

    char *again = malloc(3 * n + 1);
    size_t m = text_sanitize(again, out, n);
    FUZZ_ASSERT(m == n && memcmp(again, out, n) == 0, "sanitize is idempotent");

    /* The name and room rules on sanitised text: they must not crash, and agree
     * with their definitions where that is cheap to restate. */
    size_t cps = text_utf8_len(out);
    FUZZ_ASSERT(cps <= n, "code points <= bytes");
    if (text_valid_name(out, 24)) {
        /* The length is that of the NFC form, the name as it is kept ("e" + U+0301
         * is one character; U+0958 is two, a composition exclusion); and the NFC
         * form is a valid name, kept as it is. */
        char nfc[512], nfc2[512];
        FUZZ_ASSERT(name_normalize(out, 24, nfc, sizeof nfc) == NAME_OK, "text_valid_name agrees with names.h");
        size_t ncps = text_utf8_len(nfc);
        FUZZ_ASSERT(ncps >= 1 && ncps <= 24, "a valid name has 1..24 code points in NFC");
        FUZZ_ASSERT(name_normalize(nfc, 24, nfc2, sizeof nfc2) == NAME_OK && strcmp(nfc, nfc2) == 0,
                    "NFC is stable");
        FUZZ_ASSERT(!strpbrk(out, " \t<>*,") && !strchr("#/*-!<>", out[0]), "a valid name has no forbidden character");
    }
    if (text_valid_room(out))
        FUZZ_ASSERT(out[0] == '#' && cps >= 2 && cps <= 33 && !strpbrk(out + 1, " \t,#/"), "a valid room name");
    FUZZ_ASSERT(text_ieq(out, out), "ieq is reflexive");
    free(again);
    free(out);
    return 0;
}
