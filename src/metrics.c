/* metrics.c - the Prometheus endpoint (metrics_listen): GET /metrics answers the counters of
 * struct metrics and the server's gauges in the text exposition format 0.0.4, built on demand on
 * the loop thread (a scrape reads what the loop thread writes: no locks). HTTP is a small server
 * of its own on bufferevents - libevent 2.1's evhttp cannot bound its connections: GET and HEAD
 * only, one request per connection (then closed), the request at most 8 KiB, command_timeout per
 * connection, at most metrics_max_connections open (more are closed at once). It tells counts,
 * never addresses or message contents; still, bind it to loopback or a monitoring network: it has
 * no password. A reload that changes metrics_listen moves it (reload.c). */
#include "metrics.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "mailbox_hold.h"
#include "queue.h"
#include "server.h"

#define METRICS_HEADERS_MAX 8192

static const double latency_bounds[METRICS_LATENCY_BUCKETS] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                                              0.05,   0.1,   0.25,  0.5,   1,    5};

void metrics_commit_latency(struct metrics *m, double seconds)
{
    size_t i = 0;
    while (i < METRICS_LATENCY_BUCKETS && seconds > latency_bounds[i])
        i++;
    m->commit_latency[i]++;
    m->commit_latency_sum += seconds;
}

/* The "# HELP" and "# TYPE" lines of one metric. */
static void head(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One metric without labels, with its head. */
static void single(struct evbuffer *out, const char *name, const char *type, const char *help, double value)
{
    head(out, name, type, help);
    evbuffer_add_printf(out, "%s %.17g\n", name, value);
}

static void render_connections(struct server *srv, struct evbuffer *out)
{
    static const char *const roles[] = {"listen", "submission_listen", "smtps_listen"};
    head(out, "postern_connections_total", "counter", "Connections accepted, by the listen key they came in on.");
    for (size_t i = 0; i < 3; i++)
        evbuffer_add_printf(out, "postern_connections_total{listener=\"%s\"} %llu\n", roles[i],
                            srv->metrics.connections[i]);
    single(out, "postern_connections_open", "gauge", "Connections open now that count against max_connections.",
           srv->nactive);
    single(out, "postern_metrics_connections_refused_total", "counter",
           "Scrape connections closed unanswered: metrics_max_connections were open.", (double)srv->metrics.refused);
}

/* Every catalog row, sent or not (a series that appears only once it is non-zero breaks rate()). */
static void render_replies(struct server *srv, struct evbuffer *out)
{
    head(out, "postern_smtp_replies_total", "counter",
         "SMTP replies sent to clients, by reply catalog row (postern explain CODE tells what each means).");
    for (int id = 0; id < REPLY__COUNT; id++) {
        const struct reply_info *r = reply_info((enum reply_id)id);
        evbuffer_add_printf(out, "postern_smtp_replies_total{reply=\"%s\",code=\"%d\",enhanced=\"%s\"} %llu\n",
                            r->name, r->code, r->enhanced, srv->metrics.replies[id]);
    }
}

static void render_latency(struct server *srv, struct evbuffer *out)
{
    const struct metrics *m = &srv->metrics;
    const char *name = "postern_commit_latency_seconds";
    head(out, name, "histogram", "Time from a message's end of data to its 250 (the message on stable storage).");
    unsigned long long cumulative = 0;
    for (size_t i = 0; i <= METRICS_LATENCY_BUCKETS; i++) {
        cumulative += m->commit_latency[i];
        if (i < METRICS_LATENCY_BUCKETS)
            evbuffer_add_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, latency_bounds[i], cumulative);
        else
            evbuffer_add_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, cumulative);
    }
    evbuffer_add_printf(out, "%s_sum %.9f\n%s_count %llu\n", name, m->commit_latency_sum, name, cumulative);
}

static void render_mail(struct server *srv, struct evbuffer *out)
{
    static const char *const results[RELAY__COUNT] = {"sent", "deferred", "bounced", "expired"};
    const struct metrics *m = &srv->metrics;
    single(out, "postern_messages_accepted_total", "counter", "Messages accepted (250 after end of data).",
           (double)m->messages_accepted);
    single(out, "postern_messages_discarded_total", "counter",
           "Messages answered 250 and dropped, as a content rule's DISCARD says (not in accepted).",
           (double)m->messages_discarded);
    single(out, "postern_milter_failures_total", "counter",
           "Times a milter could not be reached, did not answer in time or broke the protocol", (double)m->milter_failures);
    single(out, "postern_accepted_bytes_total", "counter", "Octets of the messages accepted, as received.",
           (double)m->octets_accepted);
    render_latency(srv, out);
    single(out, "postern_local_deliveries_total", "counter", "Recipients whose copy was put in their Maildir.",
           (double)m->local_deliveries);
    head(out, "postern_relay_recipients_total", "counter",
         "Queued recipients' delivery attempts (SMTP relay or LMTP), by result (expired: max_queue_lifetime "
         "reached, bounced).");
    for (size_t i = 0; i < RELAY__COUNT; i++)
        evbuffer_add_printf(out, "postern_relay_recipients_total{result=\"%s\"} %llu\n", results[i], m->relay[i]);
    single(out, "postern_reports_made_total", "counter",
           "Delivery status notifications made here (bounces, delay warnings, success reports).",
           (double)m->reports_made);
    head(out, "postern_dkim_messages_total", "counter",
         "Messages from users and relay_networks clients while dkim_keys has keys, by whether they were signed "
         "(unsigned: no key for the From domain, or no From domain).");
    evbuffer_add_printf(out, "postern_dkim_messages_total{result=\"signed\"} %llu\n", m->dkim_signed);
    evbuffer_add_printf(out, "postern_dkim_messages_total{result=\"unsigned\"} %llu\n", m->dkim_unsigned);
    single(out, "postern_alias_expansions_total", "counter", "RCPTs for an alias, each taken as its targets' copies.",
           (double)m->alias_expansions);
    head(out, "postern_spf_results_total", "counter", "SPF checks of senders at MAIL (spf_policy), by result.");
    for (int r = 0; r < SPF__COUNT; r++)
        evbuffer_add_printf(out, "postern_spf_results_total{result=\"%s\"} %llu\n", spf_result_name((enum spf_result)r),
                            m->spf[r]);
    head(out, "postern_dkim_verify_results_total", "counter",
         "DKIM signatures of received mail verified (dkim_verify), by result; none: a message without one.");
    for (int r = DKIM_R_NONE; r < DKIM_R__COUNT; r++)
        evbuffer_add_printf(out, "postern_dkim_verify_results_total{result=\"%s\"} %llu\n",
                            dkim_result_name((enum dkim_result)r), m->dkim_verified[r]);
    head(out, "postern_dmarc_results_total", "counter", "DMARC results of received messages (dmarc_policy).");
    for (int r = 0; r < DMARC__COUNT; r++)
        evbuffer_add_printf(out, "postern_dmarc_results_total{result=\"%s\"} %llu\n",
                            dmarc_result_name((enum dmarc_result)r), m->dmarc[r]);
    static const char *const greylist_results[5] = {"deferred", "passed", "known", "allowed", "full"};
    head(out, "postern_greylist_total", "counter",
         "Greylisting verdicts at RCPT (greylisting): deferred (451), passed (a retry after the delay), known "
         "(passed before), allowed (its network passed greylist_auto_allow), full (the table was: let through).");
    for (int r = 0; r < 5; r++)
        evbuffer_add_printf(out, "postern_greylist_total{result=\"%s\"} %llu\n", greylist_results[r], m->greylist[r]);
    static const char *const report_kinds[REPORT__KINDS] = {"tls", "dmarc"};
    static const char *const report_outcomes[REPORT__OUTCOMES] = {"sent", "skipped", "failed"};
    head(out, "postern_reports_total", "counter",
         "Aggregate reports by kind (tls_reports, dmarc_reports) and outcome per domain: sent (queued by mail), "
         "skipped (no address to send it to), failed (out of memory, or not stored).");
    for (int k = 0; k < REPORT__KINDS; k++)
        for (int o = 0; o < REPORT__OUTCOMES; o++)
            evbuffer_add_printf(out, "postern_reports_total{kind=\"%s\",result=\"%s\"} %llu\n", report_kinds[k],
                                report_outcomes[o], m->reports[k][o]);
    static const char *const client_name_results[3] = {"confirmed", "unconfirmed", "temperror"};
    head(out, "postern_client_names_total", "counter", "Clients' names looked up (client_name_check), by result.");
    for (int r = 0; r < 3; r++)
        evbuffer_add_printf(out, "postern_client_names_total{result=\"%s\"} %llu\n", client_name_results[r],
                            m->client_names[r]);
}

static void render_state(struct server *srv, struct evbuffer *out)
{
    struct queue_stats q;
    queue_get_stats(srv->queue, &q);
    single(out, "postern_queue_messages", "gauge", "Messages in the relay queue (not counting held ones).",
           (double)q.messages);
    single(out, "postern_queue_attempts", "gauge", "Delivery attempts in progress.", q.attempts);
    single(out, "postern_outbound_connections", "gauge", "Outbound SMTP connections open.", q.connections);
    single(out, "postern_queue_destinations", "gauge", "Destinations (domains or next hops) the queue knows now.",
           q.destinations);
    single(out, "postern_mailboxes_held", "gauge", "Local mailboxes refused with 450 until they work again.",
           mailbox_holds_count(srv->holds));
    single(out, "postern_disk_free_bytes", "gauge", "Free space last measured on mail_dir/spool_dir (the smaller).",
           (double)srv->space_free);
    single(out, "postern_disk_space_low", "gauge", "1 while free space is below min_free_space (MAIL gets 452).",
           srv->space_low);
    single(out, "postern_mta_sts_policies_cached", "gauge", "MTA-STS policies in the cache (smtp_mta_sts).",
           (double)q.mta_sts.cached);
    head(out, "postern_mta_sts_fetches_total", "counter",
         "MTA-STS policy fetches over HTTPS, by result (failed: a cached policy, if any, was used).");
    evbuffer_add_printf(out, "postern_mta_sts_fetches_total{result=\"ok\"} %llu\n", q.mta_sts.fetched);
    evbuffer_add_printf(out, "postern_mta_sts_fetches_total{result=\"failed\"} %llu\n", q.mta_sts.fetch_failed);
    single(out, "postern_mta_sts_mx_not_used_total", "counter",
           "MX hosts not used because their domain's enforce MTA-STS policy does not list them.",
           (double)q.mta_sts_mx_not_used);
    single(out, "postern_dns_checks_paused", "gauge", "1 while MAIL/RCPT-time DNS checks are paused (dns_outage_pause).",
           srv->dns_checks_paused_until > monotonic_now());
}

static void render_process(struct server *srv, struct evbuffer *out)
{
    head(out, "postern_build_info", "gauge", "The running version (its git commit).");
    evbuffer_add_printf(out, "postern_build_info{version=\"%s\"} 1\n", server_version());
    single(out, "postern_start_time_seconds", "gauge", "Start-up time, seconds since the epoch.",
           srv->metrics.started);
    head(out, "postern_config_reloads_total", "counter", "Reloads (SIGHUP), by result.");
    evbuffer_add_printf(out, "postern_config_reloads_total{result=\"applied\"} %llu\n", srv->metrics.reloads);
    evbuffer_add_printf(out, "postern_config_reloads_total{result=\"failed\"} %llu\n", srv->metrics.reload_failures);
    head(out, "postern_log_lines_total", "counter", "Log lines at warn and error level (written or not).");
    evbuffer_add_printf(out, "postern_log_lines_total{level=\"warn\"} %llu\n", log_count(LOG_WARN));
    evbuffer_add_printf(out, "postern_log_lines_total{level=\"error\"} %llu\n", log_count(LOG_ERROR));
}

void metrics_render(struct server *srv, struct evbuffer *out)
{
    render_process(srv, out);
    render_connections(srv, out);
    render_replies(srv, out);
    render_mail(srv, out);
    render_state(srv, out);
}

/* ---------- the HTTP endpoint ---------- */

/* One scrape connection: its request is read (at most METRICS_HEADERS_MAX octets, command_timeout),
 * answered, and the connection closed once the answer is out (HTTP/1.1 "Connection: close"). */
struct metrics_conn {
    struct server *srv;
    struct bufferevent *bev;
    bool answered;             /* the answer is queued: what the client sends now is read and dropped */
    bool shut;                 /* the answer is out and our side shut down: waiting for the client's close */
    struct metrics_conn *prev, *next;
};

#define METRICS_LINGER_SECONDS 2 /* after the answer, how long the client has to close (unread input
                                  * would make our close a reset, which may destroy the answer) */

static void conn_free(struct metrics_conn *c)
{
    struct metrics *m = &c->srv->metrics;
    if (c->prev)
        c->prev->next = c->next;
    else
        m->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    m->nconns--;
    bufferevent_free(c->bev);
    free(c);
}

/* Sends status, headers and (for a GET) body, then closes once it is all written. */
static void respond(struct metrics_conn *c, const char *status, const char *extra, bool head, struct evbuffer *body)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t len = body ? evbuffer_get_length(body) : 0;
    evbuffer_add_printf(out, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
                        status, strncmp(status, "200", 3) == 0 ? "text/plain; version=0.0.4; charset=utf-8"
                                                               : "text/plain; charset=utf-8", len, extra);
    if (body && !head)
        evbuffer_add_buffer(out, body);
    c->answered = true;
}

static void respond_text(struct metrics_conn *c, const char *status, const char *extra, bool head, const char *text)
{
    struct evbuffer *body = evbuffer_new();
    if (body)
        evbuffer_add_printf(body, "%s\n", text);
    respond(c, status, extra, head, body);
    if (body)
        evbuffer_free(body);
}

/* The request line "METHOD SP TARGET SP HTTP/1.x": GET or HEAD /metrics (a query is ignored). */
static void answer(struct metrics_conn *c, const char *line)
{
    char method[8], target[256], version[16];
    if (sscanf(line, "%7s %255s %15s", method, target, version) != 3 || strncmp(version, "HTTP/1.", 7) != 0) {
        respond_text(c, "400 Bad Request", "", false, "bad request");
        return;
    }
    bool head = strcmp(method, "HEAD") == 0;
    target[strcspn(target, "?")] = '\0';
    if (!head && strcmp(method, "GET") != 0) {
        respond_text(c, "405 Method Not Allowed", "Allow: GET, HEAD\r\n", false, "only GET and HEAD");
    } else if (strcmp(target, "/metrics") != 0) {
        respond_text(c, "404 Not Found", "", head, "not found: the metrics are at /metrics");
    } else {
        struct evbuffer *body = evbuffer_new();
        if (body)
            metrics_render(c->srv, body);
        respond(c, body ? "200 OK" : "503 Service Unavailable", "", head, body);
        if (body)
            evbuffer_free(body);
    }
}

static void on_conn_read(struct bufferevent *bev, void *arg)
{
    struct metrics_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (c->answered) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos < 0)
        end = evbuffer_search(in, "\n\n", 2, NULL);
    if (end.pos < 0) {
        if (evbuffer_get_length(in) >= METRICS_HEADERS_MAX)
            respond_text(c, "431 Request Header Fields Too Large", "", false, "request too large");
        return; /* the rest of the request is on its way */
    }
    size_t n = 0;
    char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
    answer(c, line ? line : "");
    free(line);
}

/* The answer is out: our side is shut down (the client sees the end of it), and the client gets
 * METRICS_LINGER_SECONDS to close its side. Timeout, EOF or error: the connection is freed. */
static void on_conn_write(struct bufferevent *bev, void *arg)
{
    struct metrics_conn *c = arg;
    if (!c->answered || c->shut || evbuffer_get_length(bufferevent_get_output(bev)) > 0)
        return;
    c->shut = true;
    shutdown(bufferevent_getfd(bev), SHUT_WR);
    struct timeval linger = {METRICS_LINGER_SECONDS, 0};
    bufferevent_set_timeouts(bev, &linger, NULL);
}

static void on_conn_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    conn_free(arg);
}

/* A scrape connection: taken while fewer than metrics_max_connections are open, else closed at
 * once (evhttp could not bound them, hence this small server of our own). */
static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    (void)l, (void)sa, (void)len;
    struct server *srv = arg;
    struct metrics *m = &srv->metrics;
    if (m->nconns >= srv->cfg->metrics_max_connections) {
        m->refused++;
        evutil_closesocket(fd);
        return;
    }
    struct metrics_conn *c = calloc(1, sizeof *c);
    if (!c || !(c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE))) {
        free(c);
        evutil_closesocket(fd);
        return;
    }
    c->srv = srv;
    c->next = m->conns;
    if (m->conns)
        m->conns->prev = c;
    m->conns = c;
    m->nconns++;
    struct timeval tv = {(time_t)srv->cfg->command_timeout, 0};
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    bufferevent_setwatermark(c->bev, EV_READ, 0, METRICS_HEADERS_MAX);
    bufferevent_setcb(c->bev, on_conn_read, on_conn_write, on_conn_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

bool metrics_start(struct server *srv)
{
    const struct strlist *l = &srv->cfg->metrics_listen;
    if (!srv->metrics.started) /* not again when a reload moves the endpoint */
        srv->metrics.started = (double)time(NULL);
    for (size_t i = 0; i < l->count && i < METRICS_LISTEN_MAX; i++) {
        struct evconnlistener *ev = server_bind(srv, "metrics_listen", l->items[i], 64, on_accept, srv);
        if (!ev)
            return false;
        srv->metrics.listeners[srv->metrics.nlisteners++] = ev;
    }
    return true;
}

void metrics_stop(struct server *srv)
{
    struct metrics *m = &srv->metrics;
    for (size_t i = 0; i < m->nlisteners; i++)
        evconnlistener_free(m->listeners[i]);
    m->nlisteners = 0;
    for (struct metrics_conn *c = m->conns, *next; c; c = next) {
        next = c->next;
        bufferevent_free(c->bev);
        free(c);
    }
    m->conns = NULL;
    m->nconns = 0;
}
