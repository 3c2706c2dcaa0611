/* idn.c - see idn.h. Plain ASCII names without an xn-- label never reach libidn2. */
#include "idn.h"

#include <idn2.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "address.h"

/* True when a label starts with the ACE prefix "xn--" or an octet is over 127. */
static bool needs_idna(const char *domain)
{
    for (const char *p = domain; *p; p++)
        if ((unsigned char)*p >= 0x80)
            return true;
    for (const char *label = domain; label; label = strchr(label, '.') ? strchr(label, '.') + 1 : NULL)
        if (strncasecmp(label, "xn--", 4) == 0)
            return true;
    return false;
}

static bool fits(char *out, size_t outsz, const char *s)
{
    if (!s || strlen(s) >= outsz)
        return false;
    memcpy(out, s, strlen(s) + 1);
    return true;
}

void idn_canonical(const char *domain, char *out, size_t outsz)
{
    char *ascii = NULL, *unicode = NULL;
    bool done = needs_idna(domain) &&
                idn2_to_ascii_8z(domain, &ascii, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) == IDN2_OK &&
                idn2_to_unicode_8z8z(ascii, &unicode, 0) == IDN2_OK && fits(out, outsz, unicode);
    if (!done)
        ascii_lower_copy(out, domain, outsz);
    idn2_free(ascii);
    idn2_free(unicode);
}

bool idn_to_ascii(const char *domain, char *out, size_t outsz)
{
    if (!needs_idna(domain)) {
        if (strlen(domain) >= outsz)
            return false;
        ascii_lower_copy(out, domain, outsz);
        return true;
    }
    char *ascii = NULL;
    bool ok = idn2_to_ascii_8z(domain, &ascii, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) == IDN2_OK &&
              fits(out, outsz, ascii);
    idn2_free(ascii);
    return ok;
}
