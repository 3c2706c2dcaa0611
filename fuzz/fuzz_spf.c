/* libFuzzer target: SPF record syntax and macro expansion (spf.c's pure parts), the input taken as a
 * TXT answer's rdata (length-prefixed strings) and as a macro-string. Invariants: no crash, no
 * read past the input; an expansion that succeeds is a C string of at most 253 octets (an
 * explanation's: one that fits its buffer). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    const unsigned char *rdata[1] = {data};
    int len[1] = {(int)size};
    char record[SPF_RECORD_MAX + 1];
    if (spf_select_record(rdata, len, 1, record, sizeof record) == 1)
        (void)spf_record_valid(record);
    static const struct spf_macro_env env = {"strong-bad@email.example.com", "strong-bad", "email.example.com",
                                             "email.example.com", "192.0.2.3", false, "mx.example.org",
                                             "192.0.2.3", "mx.receiver.example", "1700000000"};
    char out[300];
    if (spf_expand((const char *)data, size, &env, out, sizeof out) && strlen(out) > 253)
        abort();
    if (spf_expand_explanation((const char *)data, size, &env, out, sizeof out) && strlen(out) >= sizeof out)
        abort();
    (void)spf_expand((const char *)data, size, NULL, NULL, 0);
    return 0;
}
