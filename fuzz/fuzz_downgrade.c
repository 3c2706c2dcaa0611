/* libFuzzer target: the MIME conversion for a relay peer (7-bit for one without 8BITMIME, short
 * lines for every one); the input's length picks the mode. Invariants: never reads or writes out of
 * bounds (ASan); converted for a 7-bit peer, the text has no octet over 127; a text that needs no
 * change (7-bit or for an 8-bit peer, no line over 998) comes out unchanged; only a 7-bit peer's
 * 8-bit text is ever refused for what it holds (nesting depth and memory aside). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "mime_downgrade.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct evbuffer *out = evbuffer_new();
    if (!out)
        return 0;
    bool seven_bit = size & 1;
    const char *text = (const char *)data;
    enum mime_downgrade_result r = mime_downgrade(text, size, seven_bit, out);
    bool eight = false;
    for (size_t i = 0; i < size; i++)
        eight |= data[i] >= 0x80;
    bool as_is = (!seven_bit || !eight) && !mime_has_long_line(text, size);
    if (r == MIME_DOWNGRADE_OK) {
        size_t n = evbuffer_get_length(out);
        const unsigned char *p = n ? evbuffer_pullup(out, -1) : (const unsigned char *)"";
        for (size_t i = 0; seven_bit && i < n; i++)
            if (p[i] >= 0x80)
                abort();
        if (as_is && (n != size || memcmp(p, data, size) != 0))
            abort();
    } else if (r != MIME_DOWNGRADE_TOO_DEEP && r != MIME_DOWNGRADE_NO_MEMORY && (!seven_bit || !eight)) {
        abort();
    } else if (as_is || !strcmp(mime_downgrade_problem(r), "unknown")) {
        abort();
    }
    evbuffer_free(out);
    return 0;
}
