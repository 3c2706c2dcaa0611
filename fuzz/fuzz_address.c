/* libFuzzer target: the mailbox/path parser. Invariants: never reads or writes out of bounds
 * (ASan), a success yields fields within the RFC limits and a consumed count inside the input, and
 * an accepted IPv4/IPv6 address literal yields its address. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mailbox mb;
    size_t used = 0;
    const char *s = (const char *)data;
    if (address_parse_path(s, size, &mb, &used, size & 1, size & 2) == ADDR_OK) {
        if (used > size || used > ADDR_PATH_MAX || strlen(mb.local) > ADDR_LOCAL_MAX ||
            strlen(mb.domain) > ADDR_DOMAIN_MAX)
            abort();
    }
    if (address_parse_mailbox(s, size, &mb) == ADDR_OK) {
        if (strlen(mb.addr) != size || memchr(data, 0, size) || strlen(mb.local) > ADDR_LOCAL_MAX)
            abort();
        /* an accepted IPv4 or IPv6 literal always yields its address */
        struct sockaddr_storage ss;
        socklen_t len;
        bool ip_form = mb.literal && ((mb.domain[1] >= '0' && mb.domain[1] <= '9') ||
                                      strncasecmp(mb.domain + 1, "ipv6:", 5) == 0);
        if (ip_form && !address_literal_ip(mb.domain, &ss, &len))
            abort();
    }
    bool utf8;
    (void)address_parse_domain(s, size, &utf8);
    return 0;
}
