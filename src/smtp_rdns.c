/* smtp_rdns.c - the client's confirmed name (client_name_check = header or reject). As a client
 * connects, its address is looked up in reverse DNS (PTR), then each name found (at most
 * RDNS_NAMES_MAX, in the order given) forward (A and AAAA): the first whose addresses include the
 * client's is its confirmed name ("forward-confirmed reverse DNS": a PTR record alone is whatever
 * the address's owner wrote). It is logged (event=client_name) and written into the Received field,
 * "from helo (name [address])", as "unknown" when there is none. The commands after EHLO/HELO wait
 * for the result, at most dns_timeout from the connection.
 * reject: a client of the MX role without a confirmed name gets 450 4.7.25 at each RCPT but
 * postmaster's - temporary, as the sender's administrator may fix the DNS before its retries end
 * (RFC 7372 names the check 5.7.25). relay_networks clients, users and client_access permit are
 * never refused. A failed lookup or no answer in time is no verdict: nothing is refused.
 * Loop thread only. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "cidr.h"
#include "config.h"
#include "dns.h"
#include "log.h"
#include "server.h"
#include "session_priv.h"

#define RDNS_NAMES_MAX 10 /* PTR names tried forward, as SPF's ptr (RFC 7208 5.5) */

enum rdns_result { RDNS_PENDING, RDNS_CONFIRMED, RDNS_UNCONFIRMED, RDNS_TEMPERROR };

struct rdns_check {
    struct session *s;
    struct dns_query *q;    /* the lookup under way, or NULL */
    struct event *timer;    /* dns_timeout from the connection */
    enum rdns_result result;
    char names[RDNS_NAMES_MAX][256];
    size_t nnames, next;    /* names found, the one being looked up forward */
    bool forward_failed;    /* a forward lookup failed: without a match, temperror */
};

/* True when a and b are one address (an IPv4-mapped IPv6 address is its IPv4 address). */
static bool same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    const unsigned char *x, *y;
    int fa = cidr_address((const struct sockaddr *)a, &x), fb = cidr_address((const struct sockaddr *)b, &y);
    return fa != 0 && fa == fb && memcmp(x, y, fa == AF_INET ? 4 : 16) == 0;
}

static const char *result_name(enum rdns_result r)
{
    return r == RDNS_CONFIRMED ? "confirmed" : r == RDNS_UNCONFIRMED ? "unconfirmed" : "temperror";
}

/* The result is in: logged; commands waiting for it go on. */
static void conclude(struct rdns_check *c, enum rdns_result r, const char *detail)
{
    struct session *s = c->s;
    c->result = r;
    evtimer_del(c->timer);
    s->srv->metrics.client_names[r - RDNS_CONFIRMED]++; /* in the order of postern_client_names_total */
    log_info("event=client_name session=%s client=%s name=%s result=%s detail=\"%s\"", s->id, s->peer_ip,
             r == RDNS_CONFIRMED ? c->names[c->next] : "unknown", result_name(r), detail);
    if (s->state != ST_FRESH && !s->closing && !s->dead)
        process_input(s);
}

static void on_host(void *arg, const struct dns_route *route);

/* Looks the next PTR name up forward; concludes when none is left. */
static void next_name(struct rdns_check *c)
{
    for (; c->next < c->nnames; c->next++) {
        if ((c->q = dns_resolve_host(c->s->srv->dns, c->names[c->next], on_host, c)) != NULL)
            return;
        c->forward_failed = true; /* out of memory */
    }
    if (c->forward_failed)
        conclude(c, RDNS_TEMPERROR, "a forward lookup failed");
    else
        conclude(c, RDNS_UNCONFIRMED, c->nnames ? "no PTR name leads back to the address" : "no PTR name");
}

static void on_host(void *arg, const struct dns_route *route)
{
    struct rdns_check *c = arg;
    c->q = NULL;
    for (size_t i = 0; route->status == DNS_OK && i < route->ntargets; i++)
        if (same_address(&route->targets[i].addr, &c->s->peer)) {
            conclude(c, RDNS_CONFIRMED, "its addresses include the client's");
            return;
        }
    if (route->status == DNS_TEMPFAIL)
        c->forward_failed = true;
    c->next++;
    next_name(c);
}

static void on_ptr(void *arg, const struct dns_answer *a)
{
    struct rdns_check *c = arg;
    c->q = NULL;
    if (a->status == DNS_TEMPFAIL) {
        conclude(c, RDNS_TEMPERROR, "the PTR lookup failed");
        return;
    }
    for (int i = 0; a->status == DNS_OK && i < a->n && c->nnames < RDNS_NAMES_MAX; i++) {
        char *name = c->names[c->nnames];
        bool utf8 = false;
        /* a host name only: a PTR record may hold any bytes ("[1.2.3.4]", "/path") */
        if (dns_wire_name(a->data[i], a->len[i], name, sizeof c->names[0]) &&
            address_parse_domain(name, strlen(name), &utf8) == ADDR_OK && !utf8)
            c->nnames++;
    }
    next_name(c);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct rdns_check *c = arg;
    dns_cancel(c->q);
    c->q = NULL;
    char detail[64];
    snprintf(detail, sizeof detail, "no answer within dns_timeout (%us)", c->s->srv->cfg->dns_timeout);
    conclude(c, RDNS_TEMPERROR, detail);
}

void rdns_start(struct session *s)
{
    const struct config *cfg = s->srv->cfg;
    char name[80];
    if (cfg->client_name_check == POLICY_OFF || !s->srv->dns ||
        !dns_reverse_name(&s->peer, "in-addr.arpa", "ip6.arpa", name, sizeof name))
        return;
    struct rdns_check *c = calloc(1, sizeof *c);
    if (!c || !(c->timer = evtimer_new(s->srv->base, on_timeout, c))) {
        free(c);
        return; /* out of memory: no name for this client */
    }
    c->s = s;
    s->rdns = c;
    if (!(c->q = dns_lookup(s->srv->dns, name, DNS_RR_PTR, on_ptr, c))) {
        c->result = RDNS_TEMPERROR;
        return;
    }
    struct timeval tv = {(time_t)cfg->dns_timeout, 0};
    evtimer_add(c->timer, &tv);
}

bool rdns_waiting(const struct session *s)
{
    return s->rdns && s->rdns->result == RDNS_PENDING && s->state != ST_FRESH;
}

const char *rdns_name(const struct session *s)
{
    const struct rdns_check *c = s->rdns;
    if (!c || c->result == RDNS_PENDING)
        return NULL;
    return c->result == RDNS_CONFIRMED ? c->names[c->next] : "unknown";
}

bool rdns_refuses(const struct session *s)
{
    return s->rdns && s->rdns->result == RDNS_UNCONFIRMED && s->srv->cfg->client_name_check == POLICY_REJECT &&
           s->role == ROLE_MX && !s->may_relay && !s->auth_user && !client_permitted(s);
}

void rdns_free(struct session *s)
{
    struct rdns_check *c = s->rdns;
    if (!c)
        return;
    dns_cancel(c->q);
    event_free(c->timer);
    free(c);
    s->rdns = NULL;
}
