/* libFuzzer target: the TLSRPT record (tlsrpt.c) of any domain mail is sent to - its _smtp._tls
 * TXT text - and the JSON report made with what it and a session may carry. Invariants: never out
 * of bounds (ASan); each mailto: address kept has an '@', no '?', '<', '>' or '"', and fits; each
 * https: URL kept starts so and has no '"', '<', '>' or '\\'; the
 * JSON of a domain named by the input holds no raw control character. The input is also read as
 * the state file (tlsrpt_undump) and reported. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tlsrpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char record[1100];
    size_t n = size < sizeof record - 1 ? size : sizeof record - 1;
    memcpy(record, data, n);
    record[n] = '\0';
    struct tlsrpt_rua rua;
    if (tlsrpt_record_rua(record, &rua)) {
        if (rua.nmailto > TLSRPT_RUA_MAX || rua.nhttps > TLSRPT_RUA_MAX || rua.nmailto + rua.nhttps == 0)
            abort();
        for (size_t i = 0; i < rua.nmailto; i++)
            if (!strchr(rua.mailto[i], '@') || strpbrk(rua.mailto[i], "?<>\"") || strlen(rua.mailto[i]) >= 256)
                abort();
        for (size_t i = 0; i < rua.nhttps; i++)
            if (strncasecmp(rua.https[i], "https://", 8) != 0 || strpbrk(rua.https[i], "\"<>\\"))
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
