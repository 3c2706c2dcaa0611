/* libFuzzer target: DKIM verification (dkim_verify.c) of hostile messages and key records, and
 * DMARC records (dmarc.c). The input up to its first NUL is the message text (as stored: LF
 * lines), the rest the TXT answer for every signature's key and for the DMARC question
 * (length-prefixed strings). Invariants: no crash, no read past the input; after the key, every
 * signature has a result, and its texts are terminated; a parsed DMARC record is within bounds. */
#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dkim_verify.h"
#include "dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    const uint8_t *nul = memchr(data, 0, size);
    size_t text_len = nul ? (size_t)(nul - data) : size;
    struct evbuffer *text = evbuffer_new();
    struct dkim_verification *v = malloc(sizeof *v);
    if (!text || !v)
        abort();
    evbuffer_add(text, data, text_len);
    dkim_verify_prepare(text, 1700000000, v);
    const unsigned char *rdata[1] = {nul ? nul + 1 : data};
    int len[1] = {nul ? (int)(size - text_len - 1) : 0};
    for (size_t i = 0; i < v->count; i++) {
        struct dkim_sig *g = &v->sigs[i];
        if (g->result == DKIM_R_NONE)
            dkim_verify_key(g, i % 3 == 2 ? DKIM_KEY_NONE : DKIM_KEY_ANSWER, rdata, len, 1);
        if (g->result == DKIM_R_NONE || g->result >= DKIM_R__COUNT || strlen(g->detail) >= sizeof g->detail ||
            strlen(g->b_prefix) > 8 || g->siglen > sizeof g->sig)
            abort();
    }
    char record[DMARC_RECORD_MAX + 1];
    struct dmarc_record r;
    if (dmarc_select_record(rdata, len, 1, record, sizeof record) == 1 && dmarc_parse_record(record, &r) &&
        (r.pct > 100 || r.p > DMARC_DIS_REJECT || r.sp > DMARC_DIS_REJECT))
        abort();
    evbuffer_free(text);
    free(v);
    return 0;
}
