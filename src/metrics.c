/* metrics.c - the Prometheus endpoint (metrics_listen): GET /metrics answers the counters of
 * struct metrics and the server's gauges in the text exposition format 0.0.4, built on demand on
 * the loop thread (a scrape reads what the loop thread writes: no locks). HTTP is libevent's evhttp:
 * GET and HEAD only, request headers capped at 8 KiB, no body, command_timeout per connection.
 * It tells counts, never addresses or message contents; still, bind it to loopback or a
 * monitoring network - it has no password and evhttp does not cap its connections. A reload that
 * changes metrics_listen moves it (reload.c). */
#include "metrics.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <string.h>
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

/* GET /metrics: the exposition; any other path: 404. */
static void on_request(struct evhttp_request *req, void *arg)
{
    struct server *srv = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    struct evbuffer *body = evbuffer_new();
    if (!body) {
        evhttp_send_error(req, HTTP_SERVUNAVAIL, NULL);
        return;
    }
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    if (!path || strcmp(path, "/metrics") != 0) {
        evbuffer_add_printf(body, "not found: the metrics are at /metrics\n");
        evhttp_add_header(headers, "Content-Type", "text/plain; charset=utf-8");
        evhttp_send_reply(req, HTTP_NOTFOUND, "Not Found", body);
    } else {
        metrics_render(srv, body);
        evhttp_add_header(headers, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        evhttp_send_reply(req, HTTP_OK, "OK", body);
    }
    evbuffer_free(body);
}

/* Binds one metrics_listen address (server_bind) and hands it to evhttp. */
static bool bind_one(struct server *srv, const char *item)
{
    struct evconnlistener *l = server_bind(srv, "metrics_listen", item, 64, NULL, NULL);
    if (l && !evhttp_bind_listener(srv->metrics.http, l)) {
        log_error("event=startup_failed key=metrics_listen address=%s error=\"out of memory\"", item);
        evconnlistener_free(l);
        return false;
    }
    return l != NULL;
}

bool metrics_start(struct server *srv)
{
    const struct strlist *l = &srv->cfg->metrics_listen;
    if (!srv->metrics.started) /* not again when a reload moves the endpoint */
        srv->metrics.started = (double)time(NULL);
    if (l->count == 0)
        return true;
    if (!(srv->metrics.http = evhttp_new(srv->base)))
        return false;
    evhttp_set_allowed_methods(srv->metrics.http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_max_headers_size(srv->metrics.http, METRICS_HEADERS_MAX);
    evhttp_set_max_body_size(srv->metrics.http, 0);
    evhttp_set_timeout(srv->metrics.http, (int)srv->cfg->command_timeout);
    evhttp_set_gencb(srv->metrics.http, on_request, srv);
    for (size_t i = 0; i < l->count; i++)
        if (!bind_one(srv, l->items[i]))
            return false;
    return true;
}

void metrics_stop(struct server *srv)
{
    if (srv->metrics.http)
        evhttp_free(srv->metrics.http);
    srv->metrics.http = NULL;
}
