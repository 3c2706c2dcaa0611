/* libFuzzer target: the DMARC record (dmarcrpt.c) of any From domain mail arrives with - its
 * rua= addresses - and the XML report made with what a message may carry; the input is also read
 * as the state file a stop leaves (dmarcrpt_undump) and reported. Invariants: never out of bounds
 * (ASan); each address kept has an '@' with text on both sides, no blank, control character, '<',
 * '>', '"', ',' or '?', and fits; the XML of a report holds no '<' outside its tags' own - no
 * input text can open an element - and no control character but its newlines. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dmarcrpt.h"

/* abort()s when xml has text that could be markup: every '<' must start one of the tags the
 * report writes, i.e. be followed by a letter, '/' or '?'. */
static void check_xml(const char *xml, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)xml[i];
        if ((c < 0x20 && c != '\n' && c != '\t') || (c == '<' && !strchr("/?abcdefghijklmnopqrstuvwxyz", xml[i + 1])))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char record[DMARC_RECORD_MAX + 1];
    size_t n = size < sizeof record - 1 ? size : sizeof record - 1;
    memcpy(record, data, n);
    record[n] = '\0';
    struct dmarcrpt_rua rua;
    if (dmarcrpt_record_rua(record, &rua)) {
        if (rua.n == 0 || rua.n > DMARCRPT_RUA_MAX)
            abort();
        for (size_t i = 0; i < rua.n; i++) {
            const char *a = rua.mailto[i], *at = strrchr(a, '@');
            if (!at || at == a || !at[1] || strpbrk(a, " <>\",?") || strlen(a) >= 256)
                abort();
            for (const char *c = a; *c; c++)
                if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
                    abort();
        }
    }
    struct dmarcrpt *t = dmarcrpt_new();
    struct dmarc_record policy = {.p = DMARC_DIS_REJECT, .sp = DMARC_DIS_NONE, .pct = 50};
    struct dmarcrpt_message m = {.policy_domain = "example.com", .policy = &policy, .source_ip = record,
                                 .header_from = record, .disposition = DMARC_DIS_QUARANTINE, .reason = record,
                                 .spf_domain = record, .spf_result = record, .ndkim = 1};
    m.dkim[0] = (struct dmarcrpt_dkim){record, record, record};
    size_t len;
    if (t && dmarcrpt_note(t, &m)) {
        char *xml = dmarcrpt_xml(t, 0, record, record, record, 0, 86400, &len);
        if (xml)
            check_xml(xml, len);
        free(xml);
    }
    dmarcrpt_free(t);
    struct dmarcrpt *read = dmarcrpt_new(); /* the same input as the state file a stop leaves */
    if (read && dmarcrpt_undump(read, record)) {
        for (size_t i = 0; i < dmarcrpt_domains(read); i++) {
            char *xml = dmarcrpt_xml(read, i, "o", "c", "r", 0, 86400, &len);
            if (xml)
                check_xml(xml, len);
            free(xml);
        }
    }
    dmarcrpt_free(read);
    return 0;
}
