/* libFuzzer target: MTA-STS's TXT record and policy file (mta_sts.c), which any domain we send to
 * publishes. The input's first line is read as the record, the rest as the policy. Invariants:
 * never out of bounds (ASan); an id read is 1 to 32 letters and digits; a policy read has a known
 * mode, max_age within a year, at most MTA_STS_MX_MAX lower-case mx patterns, mx lines where the
 * mode is not none, and each pattern that is a plain name matches itself. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta_sts.h"

static void check_record(const uint8_t *data, size_t n)
{
    char record[600], id[MTA_STS_ID_MAX + 1];
    n = n < sizeof record - 1 ? n : sizeof record - 1;
    memcpy(record, data, n);
    record[n] = '\0';
    if (!mta_sts_record_id(record, id))
        return;
    size_t len = strlen(id);
    if (len == 0 || len > MTA_STS_ID_MAX)
        abort();
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)id[i]))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t first = nl ? (size_t)(nl - data) : size;
    check_record(data, first);
    const char *policy_text = (const char *)data + (nl ? first + 1 : size);
    struct mta_sts_policy p;
    char why[200];
    if (!mta_sts_policy_parse(policy_text, size - (size_t)(policy_text - (const char *)data), &p, why, sizeof why))
        return 0;
    if (p.mode > MTA_STS_ENFORCE || p.max_age > MTA_STS_MAX_AGE_MAX || p.nmx > MTA_STS_MX_MAX)
        abort();
    if (p.mode != MTA_STS_NONE && p.nmx == 0)
        abort();
    for (size_t i = 0; i < p.nmx; i++) {
        for (const char *c = p.mx[i]; *c; c++)
            if (isupper((unsigned char)*c))
                abort();
        if (p.mx[i][0] != '*' && !mta_sts_mx_matches(&p, p.mx[i]))
            abort();
    }
    return 0;
}
