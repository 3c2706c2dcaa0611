/* libFuzzer target: the TLSRPT record (tlsrpt.c) of any domain mail is sent to - its _smtp._tls
 * TXT text - and the JSON report made with what it and a session may carry. Invariants: never out
 * of bounds (ASan); each mailto: address kept has an '@', no '?', '<', '>' or '"', and fits; the
 * JSON of a domain named by the input holds no raw control character. The input is also read as
 * the state file (tlsrpt_undump) and reported. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsrpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char record[1100];
    size_t n = size < sizeof record - 1 ? size : sizeof record - 1;
    memcpy(record, data, n);
    record[n] = '\0';
    char rua[TLSRPT_RUA_MAX][256];
    size_t nrua, https;
    if (tlsrpt_record_rua(record, rua, &nrua, &https)) {
        if (nrua > TLSRPT_RUA_MAX)
            abort();
        for (size_t i = 0; i < nrua; i++)
            if (!strchr(rua[i], '@') || strpbrk(rua[i], "?<>\"") || strlen(rua[i]) >= 256)
                abort();
    }
    struct tlsrpt *t = tlsrpt_new();
    const char *lines[] = {record};
    struct tlsrpt_result r = {.domain = record, .type = TLSRPT_STS, .policy_lines = lines, .npolicy_lines = 1,
                              .mx_patterns = lines, .nmx_patterns = 1, .mx_host = record, .ip = "192.0.2.1",
                              .failure = n % 2 ? "validation-failure" : NULL};
    if (t && tlsrpt_note(t, &r)) {
        size_t len;
        char *json = tlsrpt_json(t, 0, record, record, record, 0, 86400, &len);
        for (size_t i = 0; json && i < len - 1; i++) /* all but the final newline */
            if ((unsigned char)json[i] < 0x20)
                abort();
        free(json);
    }
    tlsrpt_free(t);
    struct tlsrpt *read = tlsrpt_new(); /* the same input as the state file a stop leaves */
    if (read && tlsrpt_undump(read, record) && tlsrpt_domains(read)) {
        size_t len;
        free(tlsrpt_json(read, 0, "o", "c", "r", 0, 86400, &len));
    }
    tlsrpt_free(read);
    return 0;
}
