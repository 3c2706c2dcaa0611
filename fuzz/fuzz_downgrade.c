/* libFuzzer target: the 7-bit MIME conversion for peers without 8BITMIME. Invariants: never reads
 * or writes out of bounds (ASan); a converted message has no octet over 127 (what it is for); a
 * message that was 7-bit already comes out unchanged; a refusal names a known problem. */
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
    enum mime_downgrade_result r = mime_downgrade((const char *)data, size, out);
    bool eight = false;
    for (size_t i = 0; i < size; i++)
        eight |= data[i] >= 0x80;
    if (r == MIME_DOWNGRADE_OK) {
        size_t n = evbuffer_get_length(out);
        const unsigned char *p = n ? evbuffer_pullup(out, -1) : (const unsigned char *)"";
        for (size_t i = 0; i < n; i++)
            if (p[i] >= 0x80)
                abort();
        if (!eight && (n != size || memcmp(p, data, size) != 0))
            abort();
    } else if (!eight || !strcmp(mime_downgrade_problem(r), "unknown")) {
        abort(); /* 7-bit text is never refused */
    }
    evbuffer_free(out);
    return 0;
}
