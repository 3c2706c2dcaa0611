/* libFuzzer target: greylisting's keys (greylist.c) from what a client sends - the sender and
 * recipient of MAIL and RCPT - and its address, and a table judged with them. The input is
 * "ip\nsender\nrcpt...": each recipient line is judged twice, the second time past the delay.
 * Invariants: never out of bounds (ASan); a sender key is a C string shorter than its buffer with
 * no upper-case letter and no digit in its local part; a network ends "/24" or "/64"; a triplet
 * deferred once passes (or is allowed) after the delay. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "greylist.h"

/* The next line of data (cut to fit out) into out; data and size moved past it. */
static void next_line(const uint8_t **data, size_t *size, char *out, size_t outsz)
{
    const uint8_t *nl = memchr(*data, '\n', *size);
    size_t n = nl ? (size_t)(nl - *data) : *size;
    size_t k = n < outsz - 1 ? n : outsz - 1;
    memcpy(out, *data, k);
    out[k] = '\0';
    *data += nl ? n + 1 : n;
    *size -= nl ? n + 1 : n;
}

static void check_sender_key(const char *sender)
{
    char key[64];
    greylist_sender_key(sender, key, sizeof key);
    size_t len = strlen(key);
    const char *at = strrchr(key, '@');
    if (len >= sizeof key)
        abort();
    for (size_t i = 0; i < len; i++)
        if (isupper((unsigned char)key[i]) || (at && key + i < at && isdigit((unsigned char)key[i])))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct greylist_limits lim = {
        .delay = 60, .retry_window = 3600, .max_age = 86400, .auto_allow = 2, .max_entries = 100};
    char ip[80], net[64], sender[300], rcpt[300];
    next_line(&data, &size, ip, sizeof ip);
    next_line(&data, &size, sender, sizeof sender);
    check_sender_key(sender);
    if (!greylist_network(ip, net, sizeof net))
        return 0;
    size_t len = strlen(net);
    if (len < 4 || (strcmp(net + len - 3, "/24") != 0 && strcmp(net + len - 3, "/64") != 0))
        abort();
    struct greylist *g = greylist_new(&lim);
    if (!g)
        return 0;
    for (int i = 0; size && i < 50; i++) {
        next_line(&data, &size, rcpt, sizeof rcpt);
        unsigned wait;
        enum greylist_verdict first = greylist_judge(g, net, sender, rcpt, 1000000, &wait);
        enum greylist_verdict again = greylist_judge(g, net, sender, rcpt, 1000000 + 60, &wait);
        if (first == GREYLIST_DEFERRED && again != GREYLIST_PASSED && again != GREYLIST_ALLOWED)
            abort();
    }
    greylist_free(g);
    return 0;
}
