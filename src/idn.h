/* idn.h - internationalized domain names (RFC 5890, RFC 6531) through libidn2 (IDNA2008 with the
 * UTS #46 mapping): one canonical form for comparing domains, and the A-label form for DNS. */
#ifndef POSTERN_IDN_H
#define POSTERN_IDN_H

#include <stdbool.h>
#include <stddef.h>

/* The canonical form of a syntactically valid domain, for table lookups and Maildir directory
 * names: ASCII letters lower-cased, and a name with U-labels or xn-- A-labels given as NFC,
 * lower-case U-labels, so that "bücher.test", "BÜCHER.test" and "xn--bcher-kva.test" are one
 * domain (a client without SMTPUTF8 must write the A-label form). A name libidn2 refuses, or
 * whose U-label form does not fit in outsz, is only ASCII-lower-cased. */
void idn_canonical(const char *domain, char *out, size_t outsz);

/* The A-label (all-ASCII) form of domain, lower-cased, for DNS queries; false when the name has
 * none (libidn2 refuses it) or it does not fit in outsz. */
bool idn_to_ascii(const char *domain, char *out, size_t outsz);

#endif
