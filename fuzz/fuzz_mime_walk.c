/* libFuzzer target: the walk over a message's MIME structure (mime_parse.c) that
 * mime_header_checks and body_checks ride on; any client sends the text. Invariants: never out of
 * bounds (ASan); the pieces come in text order without overlapping, each inside the text; a line
 * holds no LF; a header block is not empty, holds no empty line and ends with its LF (or the
 * text's end); and the walk's work stays linear (libFuzzer's -timeout catches a blow-up). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime_parse.h"

struct seen {
    const char *text, *end;
    const char *last; /* end of the previous piece */
};

static bool check_piece(void *arg, enum mime_piece kind, const char *p, size_t n)
{
    struct seen *s = arg;
    if (p < s->last || p + n > s->end)
        abort(); /* out of order, overlapping, or outside the text */
    if (kind == MIME_BODY_LINE && memchr(p, '\n', n))
        abort();
    if (kind == MIME_PART_HEADER) {
        if (n == 0 || p[0] == '\n')
            abort();
        for (size_t i = 0; i + 1 < n; i++)
            if (p[i] == '\n' && p[i + 1] == '\n')
                abort();
        if (p[n - 1] != '\n' && p + n != s->end)
            abort();
    }
    s->last = p + n;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct seen s = {(const char *)data, (const char *)data + size, (const char *)data};
    if (!mime_walk((const char *)data, size, check_piece, &s))
        abort(); /* the visitor never stops it */
    return 0;
}
