/* libFuzzer target: SRS addresses (srs.c). The input is read once as a bounce recipient's local
 * part (hostile: anyone may send to srs_domain) and once as a sender to pass on. Invariants:
 * never out of bounds (ASan); an address made fits a local part (64 octets) and a path, and reads
 * back as valid - to the sender itself for an ordinary or SRS0 sender (case aside), to the first
 * forwarder's SRS0 address for an SRS1 one; a recipient read back is an address with an @. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "srs.h"

#define NOW (20000LL * 86400 + 3600)

static struct srs *fuzz_srs(void)
{
    static struct srs s;
    static int ready;
    if (!ready) {
        const char *err;
        strcpy(s.domain, "fwd.example.net");
        s.max_age_days = 21;
        if (!srs_secret_add(&s, "0123456789abcdef-first", &err) || !srs_secret_add(&s, "0123456789abcdef-old", &err))
            abort();
        ready = 1;
    }
    return &s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 600)
        return 0;
    char in[601], out[ADDR_PATH_MAX + 1], back[ADDR_PATH_MAX + 1], local[ADDR_PATH_MAX + 1];
    memcpy(in, data, size);
    in[size] = '\0';
    const struct srs *s = fuzz_srs();
    if (srs_reverse(s, in, NOW, back, sizeof back) == SRS_VALID && !strchr(back, '@'))
        abort();
    if (!srs_forward(s, in, NOW, out, sizeof out))
        return 0;
    const char *at = strrchr(out, '@');
    if (!at || strcmp(at + 1, s->domain) != 0 || (size_t)(at - out) > ADDR_LOCAL_MAX || strlen(out) > ADDR_PATH_MAX - 2)
        abort();
    memcpy(local, out, (size_t)(at - out));
    local[at - out] = '\0';
    if (srs_reverse(s, local, NOW, back, sizeof back) != SRS_VALID)
        abort();
    bool srs1 = strncmp(out, "SRS1=", 5) == 0;
    if (srs1 ? strncmp(back, "SRS0", 4) != 0 : strcasecmp(back, in) != 0)
        abort();
    return 0;
}
