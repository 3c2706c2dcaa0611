/* smtp_dnsbl.c - DNS block lists (dnsbl_zones, RFC 5782). A client of the MX role that is not in
 * relay_networks is looked up in each zone as it connects (its address reversed: IPv4 octets, or
 * IPv6 nibbles, then the zone); the commands after EHLO/HELO wait for the answers, for at most
 * dns_timeout from the connection; a listed client then gets 554 5.7.1 at each RCPT but
 * postmaster's (RFC 5321 4.5.1: the blocked sender can still reach a person).
 * An A answer in 127.0.0.0/8 is a listing, but not one in 127.255.255.0/24: those are the lists'
 * own error codes (Spamhaus: "queries through a public resolver are refused"), logged as such. No
 * answer in time, or a failed lookup: no verdict, the mail goes on. Each session keeps its own
 * copy of the zone names: a reload may change dnsbl_zones under it. Loop thread only. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dns.h"
#include "log.h"
#include "server.h"
#include "session_priv.h"

struct dnsbl_lookup {
    struct dnsbl_check *check;
    struct dns_query *q;     /* NULL once answered or cancelled */
    char *zone;              /* the zone's name (a copy), or NULL */
};

struct dnsbl_check {
    struct session *s;
    struct dnsbl_lookup lookups[DNSBL_ZONES_MAX];
    size_t pending;          /* lookups not answered yet */
    struct event *timer;     /* dns_timeout from the connection */
    bool listed;
    size_t listed_zone;      /* the first lookup (zones in configured order) that lists the client */
};

/* The last lookup ended (answer, failure or timeout): commands waiting for it go on. */
static void lookups_done(struct dnsbl_check *c)
{
    evtimer_del(c->timer);
    struct session *s = c->s;
    if (s->state != ST_FRESH && !s->closing && !s->dead)
        process_input(s);
}

/* An answer's verdict: a listing (127.0.0.0/8 outside 127.255.255.0/24), a list's error code, or
 * nothing (no address, NXDOMAIN, a failed lookup). */
static void judge(struct dnsbl_check *c, size_t zone, const struct dns_route *route)
{
    const char *name = c->lookups[zone].zone;
    for (size_t i = 0; route->status == DNS_OK && i < route->ntargets; i++) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&route->targets[i].addr;
        if (in->sin_family != AF_INET)
            continue;
        uint32_t a = ntohl(in->sin_addr.s_addr);
        char text[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
        if ((a >> 8) == 0x7fffff) {
            log_warn("event=dnsbl_error zone=%s answer=%s detail=\"the list refused to answer (127.255.255.x): it "
                     "may refuse queries through public resolvers or over its free quota; use a resolver of your "
                     "own (dns_resolver) or the list's feed\"", name, text);
            return;
        }
        if ((a >> 24) == 127) {
            log_info("event=dnsbl_listed session=%s client=%s zone=%s answer=%s", c->s->id, c->s->peer_ip, name, text);
            if (!c->listed || zone < c->listed_zone)
                c->listed_zone = zone;
            c->listed = true;
            return;
        }
    }
}

static void on_answer(void *arg, const struct dns_route *route)
{
    struct dnsbl_lookup *l = arg;
    struct dnsbl_check *c = l->check;
    l->q = NULL;
    judge(c, (size_t)(l - c->lookups), route);
    if (--c->pending == 0)
        lookups_done(c);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct dnsbl_check *c = arg;
    for (size_t i = 0; i < DNSBL_ZONES_MAX; i++)
        if (c->lookups[i].q) {
            log_info("event=dnsbl_timeout session=%s client=%s zone=%s waited=%us detail=\"no answer in time: "
                     "no verdict from this list\"", c->s->id, c->s->peer_ip,
                     c->lookups[i].zone, c->s->srv->cfg->dns_timeout);
            dns_cancel(c->lookups[i].q);
            c->lookups[i].q = NULL;
        }
    c->pending = 0;
    lookups_done(c);
}

void dnsbl_start(struct session *s)
{
    const struct config *cfg = s->srv->cfg;
    if (!cfg->dnsbl_zones.count || !s->srv->dns || s->role != ROLE_MX || s->may_relay ||
        client_permitted(s))
        return;
    struct dnsbl_check *c = calloc(1, sizeof *c);
    if (!c || !(c->timer = evtimer_new(s->srv->base, on_timeout, c))) {
        free(c);
        return; /* out of memory: no lists for this client */
    }
    c->s = s;
    s->dnsbl = c;
    for (size_t i = 0; i < cfg->dnsbl_zones.count && i < DNSBL_ZONES_MAX; i++) {
        char name[300];
        struct dnsbl_lookup *l = &c->lookups[i];
        *l = (struct dnsbl_lookup){c, NULL, NULL};
        if (dns_reverse_name(&s->peer, cfg->dnsbl_zones.items[i], cfg->dnsbl_zones.items[i], name, sizeof name) &&
            (l->zone = strdup(cfg->dnsbl_zones.items[i])) && (l->q = dns_resolve_host(s->srv->dns, name, on_answer, l)))
            c->pending++;
    }
    struct timeval tv = {(time_t)cfg->dns_timeout, 0};
    if (c->pending)
        evtimer_add(c->timer, &tv);
}

bool dnsbl_waiting(const struct session *s)
{
    return s->dnsbl && s->dnsbl->pending > 0 && s->state != ST_FRESH;
}

const char *dnsbl_listed(const struct session *s)
{
    return s->dnsbl && s->dnsbl->listed ? s->dnsbl->lookups[s->dnsbl->listed_zone].zone : NULL;
}

void dnsbl_free(struct session *s)
{
    struct dnsbl_check *c = s->dnsbl;
    if (!c)
        return;
    for (size_t i = 0; i < DNSBL_ZONES_MAX; i++) {
        dns_cancel(c->lookups[i].q);
        free(c->lookups[i].zone);
    }
    event_free(c->timer);
    free(c);
    s->dnsbl = NULL;
}
