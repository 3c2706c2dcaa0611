/* report_format.c - see report_format.h. gzip is zlib's deflate with the gzip wrapper. */
#include "report_format.h"

#include <event2/buffer.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <zlib.h>

char *report_text(struct evbuffer *b, size_t *len)
{
    *len = evbuffer_get_length(b);
    char *text = malloc(*len + 1);
    if (text) {
        evbuffer_remove(b, text, *len);
        text[*len] = '\0';
    }
    evbuffer_free(b);
    return text;
}

unsigned char *report_gzip(const char *text, size_t len, size_t *outlen)
{
    z_stream z = {0};
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    uLong cap = deflateBound(&z, (uLong)len);
    unsigned char *out = malloc(cap);
    z.next_in = (Bytef *)(uintptr_t)text;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    bool ok = out && deflate(&z, Z_FINISH) == Z_STREAM_END;
    *outlen = z.total_out;
    deflateEnd(&z);
    if (ok)
        return out;
    free(out);
    return NULL;
}

void report_add_base64(struct evbuffer *b, const unsigned char *data, size_t len)
{
    for (size_t i = 0; i < len; i += 57) {
        unsigned char line[80];
        int n = EVP_EncodeBlock(line, data + i, (int)(len - i < 57 ? len - i : 57));
        evbuffer_add(b, line, (size_t)n);
        evbuffer_add(b, "\n", 1);
    }
}
