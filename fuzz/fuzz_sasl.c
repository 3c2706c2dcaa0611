/* libFuzzer target: SASL PLAIN/LOGIN decoders. Invariants: fields are NUL-free and within
 * SASL_FIELD_MAX; a failed PLAIN decode leaves no password behind. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct sasl_credentials c;
    if (sasl_decode_plain(s, size, &c) == SASL_OK) {
        if (!*c.authcid || !*c.password || strlen(c.authcid) > SASL_FIELD_MAX || strlen(c.password) > SASL_FIELD_MAX)
            abort();
    } else if (c.password[0] || c.authcid[0]) {
        abort();
    }
    char out[SASL_FIELD_MAX + 1];
    if (sasl_decode_login(s, size, out, sizeof out) == SASL_OK && (!*out || strlen(out) > SASL_FIELD_MAX))
        abort();
    unsigned char raw[256];
    ssize_t n = sasl_base64_decode(s, size, raw, sizeof raw);
    if (n > (ssize_t)sizeof raw || (n >= 0 && (size_t)n != size / 4 * 3 - (size && s[size - 1] == '=') -
                                                                     (size > 1 && s[size - 2] == '=')))
        abort();
    return 0;
}
