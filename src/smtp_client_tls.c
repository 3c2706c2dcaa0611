/* smtp_client_tls.c - the outbound client's security: STARTTLS (or implicit TLS to the relay
 * host), DANE (RFC 7672: when a destination's MX answers are DNSSEC-validated and an MX host
 * publishes TLSA records, TLS is required with that host and its certificate must match one of
 * them; looked up before connecting), and AUTH to the relay host. Part of smtp_client.c
 * (smtp_client_priv.h). Never sends the relay host's password without TLS. Under an MTA-STS
 * policy in testing mode, logs what enforce would have refused. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "smtp_client_priv.h"
#include "tls.h"
#include "tlsrpt.h"

/* ---------- DANE ---------- */

/* The current target's TLSA answer: a failed or bogus lookup bars this host (RFC 7672 2.2: it
 * may be an attack on the DNS); else connect, with DANE in force when records came. */
static void got_tlsa(void *arg, const struct dns_tlsa_set *set)
{
    struct smtp_client *c = arg;
    c->tlsa_query = NULL;
    c->tlsa = *set;
    if (set->status == TLSA_FAILED) {
        char why[400];
        snprintf(why, sizeof why, "4.7.5 %s: not used: %s", c->host, set->error);
        client_conn_failed(c, why);
        return;
    }
    if (set->status != TLSA_NONE)
        log_info("event=dane host=%s tlsa=%s records=%zu", c->host,
                 set->status == TLSA_USABLE ? "usable" : "unusable", set->n);
    client_connect_unless_dane_unmet(c);
}

void client_dane_applies(struct smtp_client *c)
{
    const struct next_hop *hop = &c->hop;
    bool dane_level = hop->tls == TLS_POLICY_DANE || hop->tls == TLS_POLICY_DANE_ONLY;
    bool wanted = dane_level || (c->cfg->smtp_dane && hop->tls != TLS_POLICY_NONE && !hop->tls_optional);
    c->dane = wanted && c->dns && c->tls && !hop->lmtp && (hop->mx ? c->route.mx_secure : dane_level);
}

/* Why a dane-only destination cannot have DANE with the current target (into why), or false when
 * it can (its usable TLSA records are in). */
static bool dane_unmet(const struct smtp_client *c, char *why, size_t whysz)
{
    const struct dns_target *t = &c->route.targets[c->target];
    const char *rule = "which smtp_tls_policy requires (dane-only)";
    if (!c->dane_only || c->tlsa.status == TLSA_USABLE)
        return false;
    if (!c->tls)
        snprintf(why, whysz, "4.7.5 DANE with %s, %s, needs a TLS client, and this server started without one: "
                 "restart it", c->host, rule);
    else if (!c->dane)
        snprintf(why, whysz, "4.7.5 the MX records of %s are not DNSSEC-validated: no DANE, %s", c->hop.name, rule);
    else if (!t->secure)
        snprintf(why, whysz, "4.7.5 the addresses of %s are not DNSSEC-validated: no DANE, %s", c->host, rule);
    else if (c->tlsa.status == TLSA_UNUSABLE)
        snprintf(why, whysz, "4.7.5 none of the TLSA records of %s is usable: no DANE, %s", c->host, rule);
    else
        snprintf(why, whysz, "4.7.5 %s publishes no DNSSEC-validated TLSA records: no DANE, %s", c->host, rule);
    return true;
}

void client_connect_unless_dane_unmet(struct smtp_client *c)
{
    char why[600];
    if (dane_unmet(c, why, sizeof why))
        client_conn_failed(c, why);
    else
        client_connect(c);
}

bool client_dane_lookup(struct smtp_client *c)
{
    const struct dns_target *t = &c->route.targets[c->target];
    c->tlsa = (struct dns_tlsa_set){.status = TLSA_NONE};
    if (!c->dane || !t->secure || !c->tls || !*t->host || t->addr.ss_family == AF_UNIX)
        return false; /* RFC 7672 2.2.1: an MX host whose addresses are not validated: no DANE */
    c->state = C_TLSA;
    c->tlsa_query = dns_resolve_tlsa(c->dns, t->host, c->hop.port, got_tlsa, c);
    if (c->tlsa_query)
        return true;
    c->tlsa.status = TLSA_FAILED; /* out of memory: this host is not tried unprotected */
    snprintf(c->tlsa.error, sizeof c->tlsa.error, "TLSA lookup for %s: out of memory", t->host);
    return false;
}

void client_tls_levels(struct smtp_client *c)
{
    enum tls_policy level = c->hop.tls;
    if (level == TLS_POLICY_DEFAULT)
        level = c->cfg->smtp_tls_verify ? TLS_POLICY_VERIFY : c->cfg->smtp_tls ? TLS_POLICY_MAY : TLS_POLICY_NONE;
    c->tls_wanted = level != TLS_POLICY_NONE;
    c->tls_must = level == TLS_POLICY_ENCRYPT || level == TLS_POLICY_VERIFY || level == TLS_POLICY_DANE_ONLY;
    c->tls_verify = level == TLS_POLICY_VERIFY;
    c->dane_only = level == TLS_POLICY_DANE_ONLY;
}

bool client_tls_required(const struct smtp_client *c)
{
    return c->tls_must || c->tlsa.status == TLSA_USABLE || c->tlsa.status == TLSA_UNUSABLE;
}

/* Hands the usable TLSA records to OpenSSL's DANE check (RFC 7671): the handshake then fails
 * unless the certificate (DANE-EE) or a certificate of its chain (DANE-TA, names checked against
 * the MX host) matches one. DANE-EE ignores names (RFC 7672 3.1.1). */
static bool set_dane(SSL *ssl, const struct smtp_client *c, const char *host)
{
    if (SSL_dane_enable(ssl, host) <= 0)
        return false;
    SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
    int added = 0;
    for (size_t i = 0; i < c->tlsa.n; i++) {
        const struct dns_tlsa *r = &c->tlsa.rr[i];
        added += SSL_dane_tlsa_add(ssl, r->usage, r->selector, r->mtype, r->data, r->len) > 0;
    }
    SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    return added > 0;
}

void client_tls_report(const struct smtp_client *c, const char *failure)
{
    bool dane = c->tlsa.status == TLSA_USABLE;
    if (!c->ops->tls_result || (!dane && !c->hop.mta_sts && !c->hop.mta_sts_testing))
        return;
    const struct dns_target *t = &c->route.targets[c->target];
    char ip[INET6_ADDRSTRLEN] = "";
    const void *a = t->addr.ss_family == AF_INET ? (const void *)&((const struct sockaddr_in *)&t->addr)->sin_addr
                                                 : (const void *)&((const struct sockaddr_in6 *)&t->addr)->sin6_addr;
    if (t->addr.ss_family == AF_INET || t->addr.ss_family == AF_INET6)
        inet_ntop(t->addr.ss_family, a, ip, sizeof ip);
    struct client_tls_result r = {.dane = dane, .host = t->host, .ip = ip, .failure = failure,
                                  .tlsa = dane ? &c->tlsa : NULL};
    c->ops->tls_result(c->arg, &r);
}

void client_tls_failure(const struct smtp_client *c, char *why, size_t whysz)
{
    SSL *ssl = c->state == C_TLS && c->bev ? bufferevent_openssl_get_ssl(c->bev) : NULL;
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (c->state == C_TLS && (c->tlsa.status == TLSA_USABLE || c->tls_verify))
        client_tls_report(c, v != X509_V_OK ? tlsrpt_verify_failure(v) : "validation-failure");
    if (v != X509_V_OK && c->tlsa.status == TLSA_USABLE)
        snprintf(why, whysz, "4.7.5 the TLS certificate of %s matches none of its TLSA records (DANE): %s", c->host,
                 X509_verify_cert_error_string(v));
    else if (v != X509_V_OK && c->tls_verify)
        snprintf(why, whysz, "4.7.5 the TLS certificate of %s is not valid: %s", c->host,
                 X509_verify_cert_error_string(v));
}

/* ---------- TLS ---------- */

/* Has the handshake check that the certificate names this IP address (an iPAddress entry). */
static bool verify_address(SSL *ssl, const struct sockaddr_storage *addr)
{
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    if (addr->ss_family == AF_INET)
        return X509_VERIFY_PARAM_set1_ip(param, (const unsigned char *)&((const struct sockaddr_in *)addr)->sin_addr,
                                         4) == 1;
    return X509_VERIFY_PARAM_set1_ip(param, (const unsigned char *)&((const struct sockaddr_in6 *)addr)->sin6_addr,
                                     16) == 1;
}

void client_start_tls(struct smtp_client *c)
{
    SSL *ssl = SSL_new(c->tls);
    const struct dns_target *t = &c->route.targets[c->target];
    struct bufferevent *tb = NULL;
    if (ssl) {
        if (*t->host) /* no name: an address literal, which SNI may not carry (RFC 6066 3) */
            SSL_set_tlsext_host_name(ssl, t->host);
        /* the certificate must match the host's TLSA records (DANE), or name the MX host, or the
         * address literal's address */
        bool name_checked = c->tls_verify || c->hop.mta_sts_testing; /* testing: checked, not enforced */
        bool checked = c->tlsa.status == TLSA_USABLE ? set_dane(ssl, c, t->host)
                       : !name_checked ||
                           (*t->host ? SSL_set1_host(ssl, t->host) == 1 : verify_address(ssl, &t->addr));
        if (c->tls_verify && c->tlsa.status != TLSA_USABLE)
            SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL); /* a certificate that fails ends the handshake */
        if (checked)
            tb = bufferevent_openssl_filter_new(c->base, c->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE);
    }
    if (!tb) {
        if (ssl)
            SSL_free(ssl);
        client_conn_failed(c, "cannot start TLS (out of memory)");
        return;
    }
    c->bev = tb;
    c->state = C_TLS;
    bufferevent_setcb(c->bev, client_on_read, NULL, client_on_event, c);
    client_set_timeout(c, c->cfg->smtp_command_timeout);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* Under an MTA-STS policy in testing mode (RFC 8461 5), logs what enforce would have refused: no
 * TLS, or a certificate not valid for the MX name (checked in the handshake, not enforced). */
static void mta_sts_testing_report(const struct smtp_client *c)
{
    if (!c->hop.mta_sts_testing || c->tlsa.status == TLSA_USABLE)
        return; /* DANE decided the certificate check */
    char why[400];
    long v = X509_V_OK;
    if (!c->tls_active)
        snprintf(why, sizeof why, "%s was reached without TLS (no STARTTLS, or a failed handshake)", c->host);
    else if ((v = SSL_get_verify_result(bufferevent_openssl_get_ssl(c->bev))) != X509_V_OK)
        snprintf(why, sizeof why, "the TLS certificate of %s is not valid: %s", c->host,
                 X509_verify_cert_error_string(v));
    else
        return;
    client_tls_report(c, c->tls_active ? tlsrpt_verify_failure(v) : "starttls-not-supported");
    log_warn("event=mta_sts_testing_failure domain=%s host=%s error=\"%s\" action=sent "
             "detail=\"mode enforce would defer this mail\"", c->hop.name, c->host, why);
}

/* The handshake is done: log how the peer was checked, then the greeting (implicit TLS) or EHLO. */
void client_tls_up(struct smtp_client *c)
{
    char info[128];
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    tls_describe(ssl, info, sizeof info);
    const char *verified = c->tlsa.status == TLSA_USABLE     ? "dane"
                           : c->tlsa.status == TLSA_UNUSABLE ? "no (TLSA records unusable)"
                           : c->tls_verify                   ? "yes"
                                                             : "no";
    log_info("event=smtp_client_tls host=%s tls=%s verified=%s", c->host, info, verified);
    c->tls_active = true;
    mta_sts_testing_report(c);
    if (!c->hop.mta_sts_testing || c->tlsa.status == TLSA_USABLE ||
        SSL_get_verify_result(ssl) == X509_V_OK) /* testing's failures are reported with their log line */
        client_tls_report(c, NULL);
    if (client_implicit_tls(c)) {
        c->state = C_GREETING;
        client_set_timeout(c, c->cfg->smtp_greeting_timeout);
    } else {
        client_send_ehlo(c);
    }
}

/* ---------- AUTH to the relay host ---------- */

/* Sends base64(a, then NUL and b when b is given) after prefix: the AUTH PLAIN response (RFC 4616,
 * no authorization identity) or one AUTH LOGIN field. The clear text is wiped. */
static void send_auth_line(struct smtp_client *c, const char *prefix, const char *a, const char *b)
{
    unsigned char raw[2 + 2 * 256];
    size_t n = 0, la = strlen(a), lb = b ? strlen(b) : 0;
    if (b)
        raw[n++] = '\0';
    memcpy(raw + n, a, la), n += la;
    if (b) {
        raw[n++] = '\0';
        memcpy(raw + n, b, lb), n += lb;
    }
    char b64[4 * (sizeof raw + 2) / 3 + 1];
    EVP_EncodeBlock((unsigned char *)b64, raw, (int)n);
    client_send_line(c, "%s%s", prefix, b64);
    explicit_bzero(raw, sizeof raw);
    explicit_bzero(b64, sizeof b64);
    client_set_timeout(c, c->cfg->smtp_command_timeout);
}

/* The session is set up: log in to the relay host first when relay_host_auth gives credentials -
 * over TLS only (without it the password would cross the network in clear: this target fails) -
 * with PLAIN, else LOGIN (RFC 4954). */
void client_login_or_ready(struct smtp_client *c)
{
    char diag[400];
    if (!c->tls_active)
        mta_sts_testing_report(c); /* the session goes on without TLS */
    if (c->hop.require_tls && !c->hop.lmtp && (!c->tls_active || !c->ext.requiretls)) {
        snprintf(diag, sizeof diag, "5.7.30 %s does not offer REQUIRETLS, which the sender asked for (RFC 8689): the "
                 "message would leave TLS there, so it is not sent", c->host);
        client_give_up(c, 550, diag);
    } else if (!c->hop.relay_host || !*c->cfg->relay_user) { /* the password is relay_host's only */
        client_session_ready(c);
    } else if (!c->tls_active) {
        snprintf(diag, sizeof diag, "4.7.0 %s: no TLS, so the relay_host_auth password is not sent", c->host);
        client_conn_failed(c, diag);
    } else if (c->ext.auth_plain) {
        c->state = C_AUTH;
        send_auth_line(c, "AUTH PLAIN ", c->cfg->relay_user, c->cfg->relay_password);
    } else if (c->ext.auth_login) {
        c->state = C_AUTH_USER;
        client_send_line(c, "AUTH LOGIN");
        client_set_timeout(c, c->cfg->smtp_command_timeout);
    } else {
        snprintf(diag, sizeof diag, "4.7.0 %s offers no AUTH PLAIN or LOGIN, which relay_host_auth needs", c->host);
        client_conn_failed(c, diag);
    }
}

/* A reply during AUTH: LOGIN's 334 prompts for the user name, then the password; 235 is in. */
void client_got_auth_reply(struct smtp_client *c)
{
    if (c->reply.code == 334 && c->state != C_AUTH) {
        bool user = c->state == C_AUTH_USER;
        c->state = user ? C_AUTH_PASS : C_AUTH;
        send_auth_line(c, "", user ? c->cfg->relay_user : c->cfg->relay_password, NULL);
        return;
    }
    if (c->reply.code == 235) {
        log_info("event=smtp_client_auth host=%s user=%s", c->host, c->cfg->relay_user);
        client_session_ready(c);
        return;
    }
    log_warn("event=smtp_client_auth_failed host=%s user=%s reply=%d", c->host, c->cfg->relay_user, c->reply.code);
    client_peer_refused(c, "authentication (relay_host_auth)");
}
