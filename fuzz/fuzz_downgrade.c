/* libFuzzer target: what a message text goes through on its way out - its DKIM signature (dkim.c,
 * with an Ed25519 key for example.test) and the MIME conversion for a relay peer (7-bit for one
 * without 8BITMIME, short lines for every one); the input's length picks the mode. Invariants:
 * never reads or writes out of bounds (ASan); a signature is one "DKIM-Signature: " field of
 * folded lines, signed by example.test, and the text is left as it was; converted for a 7-bit
 * peer, the text has no octet over 127; a text that needs no change (7-bit or for an 8-bit peer,
 * no line over 998) comes out unchanged; only a 7-bit peer's 8-bit text is ever refused for what
 * it holds (nesting depth and memory aside). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "dkim.h"
#include "mime_downgrade.h"

/* The text as a message buffer, signed; checks the field's shape and that the text is unchanged. */
static void sign(const uint8_t *data, size_t size)
{
    static struct dkim_key key = {.domain = "example.test", .selector = "fuzz", .file = "-", .ed25519 = true};
    static struct dkim_keys keys = {.keys = &key, .count = 1};
    if (!key.pkey && !(key.pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")))
        abort();
    struct evbuffer *text = evbuffer_new(), *out = evbuffer_new();
    const char *why = NULL;
    if (!text || !out || evbuffer_add(text, data, size) != 0)
        abort();
    const struct dkim_key *used = dkim_sign(&keys, size & 2 ? "Date: x\n" : "", text, 1, out, &why);
    size_t n = evbuffer_get_length(out);
    const char *f = n ? (const char *)evbuffer_pullup(out, -1) : "";
    if ((used != NULL) != (n > 0) || (!used && !why) || (used && used != &key))
        abort();
    static const char head[] = "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.test;\n";
    if (n && (strncmp(f, head, sizeof head - 1) != 0 ||
              f[n - 1] != '\n' || !strstr(f, "\n\tb=")))
        abort();
    for (const char *nl = memchr(f, '\n', n); nl && nl + 1 < f + n; nl = memchr(nl + 1, '\n', (size_t)(f + n - nl - 1)))
        if (nl[1] != '\t')
            abort(); /* every line after the first is a continuation */
    if (evbuffer_get_length(text) != size || (size && memcmp(evbuffer_pullup(text, -1), data, size) != 0))
        abort();
    evbuffer_free(text);
    evbuffer_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sign(data, size);
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
