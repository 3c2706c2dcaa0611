/* mta_sts_fetch.h - where MTA-STS policies (mta_sts.h) come from: for a recipient domain, its
 * _mta-sts TXT record, then - when its id is new - the policy over HTTPS from
 * https://mta-sts.<domain>/.well-known/mta-sts.txt (the certificate valid for that name by the
 * outbound trust store, status 200, text/plain, at most 64 KiB, no redirect: RFC 8461 3.3; each
 * address of that host in turn while none can be reached, within the timeout), and a
 * cache of the policies fetched, each kept for its max_age (RFC 8461 5.1): a cached policy is used
 * when the record is gone, unchanged, or its new policy cannot be fetched, so an attacker who
 * strips the record or blocks the fetch does not switch the policy off. The cache is kept in a
 * file too (written by its own thread after each new policy, read at start), so a restart does not
 * forget it. No policy (none published, or never fetched) means mail goes as without MTA-STS
 * (RFC 8461 5: it fails open). Loop thread. */
#ifndef POSTERN_MTA_STS_FETCH_H
#define POSTERN_MTA_STS_FETCH_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <time.h>

#include "config.h"
#include "mta_sts.h"
#include "next_hop.h"

#define MTA_STS_CACHE_MAX 10000 /* domains whose policies are kept (the soonest to expire go first) */
#define MTA_STS_HTTPS_PORT 443

struct event_base;
struct dns;
struct mta_sts;
struct mta_sts_query;

/* True when MTA-STS is looked up for mail sent to hop: smtp_mta_sts and smtp_tls on, and hop a
 * recipient domain's MX route (a relay_host or transport next hop is the administrator's). */
bool mta_sts_applies(const struct config *cfg, const struct next_hop *hop);

/* tls: the outbound client context with its trust store loaded; cache_path: the cache's file (read
 * now; its unexpired lines that read as policies are kept, the rest dropped and counted), or NULL
 * for a cache in memory only (postern mta-sts). */
struct mta_sts *mta_sts_new(struct event_base *base, struct dns *dns, SSL_CTX *tls, const char *cache_path);
void mta_sts_free(struct mta_sts *m);

/* The policy that applies to domain, or NULL for none; cb runs later on the loop thread (never
 * from inside mta_sts_lookup). timeout: seconds an HTTPS fetch may take. Returns a handle for
 * mta_sts_cancel, or NULL (cb will not run) when out of memory. */
typedef void (*mta_sts_cb)(void *arg, const struct mta_sts_policy *policy);
struct mta_sts_query *mta_sts_lookup(struct mta_sts *m, const char *domain, unsigned timeout, mta_sts_cb cb,
                                     void *arg);

/* The policy cached for domain in the cache file at path (as mta_sts_new reads it), with when it
 * expires; false when there is none (or no file). For postern route. */
bool mta_sts_cache_read(const char *path, const char *domain, struct mta_sts_policy *policy, time_t *expires);

/* What the cache and the fetches have done, for the metrics. */
struct mta_sts_stats {
    size_t cached;                     /* policies in the cache (some may have expired since) */
    unsigned long long fetched;        /* policies fetched and cached */
    unsigned long long fetch_failed;   /* fetches that failed (a cached policy, if any, used instead) */
};
void mta_sts_get_stats(const struct mta_sts *m, struct mta_sts_stats *st);

/* Its callback will not run; a fetch under way still completes and is cached. */
void mta_sts_cancel(struct mta_sts_query *q);

#endif
