/* srs.h - the Sender Rewriting Scheme for mail this server passes on: a message relayed with
 * someone else's envelope sender (a forwarding alias, a relay_networks client sending as another
 * domain) fails that domain's SPF check at the receiver, because this server is not among the
 * domain's senders. With srs_domain set, such a sender goes out as
 *
 *     SRS0=HHHHH=TT=domain=local@srs_domain
 *
 * (HHHHH: a keyed hash of the rest, TT: the day it was made), an address of this server's own, so
 * SPF is checked against srs_domain; a bounce sent back to it is verified here (hash, age) and
 * passed on to local@domain. A sender that is already an SRS address of another forwarder goes
 * out as SRS1=HHHHH=forwarder=REST@srs_domain (the first forwarder and what followed its "SRS0"):
 * its bounce goes back to that forwarder's SRS0 address, and addresses do not grow at each hop.
 * Only this server reads the addresses it makes: the layouts are the common SRS0 and SRS1 ones,
 * the hash its own (HMAC-SHA256, base32: five characters, any case). */
#ifndef POSTERN_SRS_H
#define POSTERN_SRS_H

#include <stdbool.h>
#include <stddef.h>

#include "address.h"

#define SRS_SECRETS_MAX 8       /* the first signs; all verify (rotation) */
#define SRS_SECRET_MIN 16       /* characters */
#define SRS_HASH_CHARS 5        /* base32: 25 bits */

struct srs {
    char domain[ADDR_DOMAIN_MAX + 1]; /* canonical; "" = off */
    unsigned max_age_days;            /* a bounce address older than this is refused */
    char *secrets[SRS_SECRETS_MAX];
    size_t nsecrets;
};

/* One secret (a line of the srs_secret file); false with *err when it is too short or one too many. */
bool srs_secret_add(struct srs *s, const char *secret, const char **err);
void srs_free(struct srs *s);

/* The SRS form of sender at unix time now into out; false when sender stays as it is: SRS off, the
 * null sender, an address already at srs_domain, or one SRS cannot carry (a quoted or non-ASCII
 * local part, an address literal, a result longer than a local part may be, 64 octets). An SRS0
 * or SRS1 sender of another forwarder gets the SRS1 form. The caller leaves out senders of its own
 * domains. */
bool srs_forward(const struct srs *s, const char *sender, long long now, char *out, size_t outsz);

enum srs_verdict {
    SRS_NOT_SRS,   /* the local part is not an SRS0 or SRS1 address: an ordinary recipient */
    SRS_VALID,     /* out holds the original sender (for SRS1: the first forwarder's SRS0 address) */
    SRS_BAD,       /* malformed, or its hash matches no secret: not made here */
    SRS_EXPIRED,   /* made here, longer ago than max_age_days */
};

/* Reads a recipient local part at srs_domain (the caller checks the domain): the address it
 * stands for into out. Case does not matter (some servers change it). */
enum srs_verdict srs_reverse(const struct srs *s, const char *local, long long now, char *out, size_t outsz);

#endif
