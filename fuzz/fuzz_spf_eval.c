/* libFuzzer target: SPF evaluation (spf.c's check_host state machine) against a fake resolver that
 * answers from the input. The input is lines: the first picks the client (a line starting with '6'
 * makes it IPv6); each later line answers the next lookup, in the order they are asked:
 *   first octet '1': NXDOMAIN, '2': SERVFAIL, else records from the rest of the line -
 *   TXT: the text as one string; A / AAAA: the first 4 / 16 octets (repeated as needed);
 *   MX / PTR: the text as a host name (MX preference 10).
 * Lookups past the last line get NXDOMAIN. Answers come from a queue the target runs, never from
 * inside the lookup (as with libunbound). Invariants: the callback runs exactly once, or not at
 * all after a cancel; no leak, no bad access; the number of lookups stays bounded by RFC 7208's
 * limits (records, MX and PTR names). */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "spf.h"

#define QUEUE_MAX 4
#define LOOKUPS_BOUND 300

struct fake_query {
    char name[260];
    int rrtype;
    void (*cb)(void *arg, const struct dns_answer *answer);
    void *arg;
    bool live;
};

static struct fake_query queue[QUEUE_MAX];
static const uint8_t *in_data;
static size_t in_size, in_pos;
static int lookups, results;

static struct dns_query *fake_lookup(struct dns *d, const char *name, int rrtype,
                                     void (*cb)(void *arg, const struct dns_answer *answer), void *arg)
{
    (void)d;
    for (int i = 0; i < QUEUE_MAX; i++)
        if (!queue[i].live) {
            queue[i] = (struct fake_query){.rrtype = rrtype, .cb = cb, .arg = arg, .live = true};
            strncpy(queue[i].name, name, sizeof queue[i].name - 1);
            lookups++;
            return (struct dns_query *)&queue[i];
        }
    abort(); /* a check never has more than one lookup in flight */
}

static void fake_cancel(struct dns_query *q)
{
    ((struct fake_query *)q)->live = false;
}

/* The next input line as [start, start+len); false at the end. */
static bool next_line(const uint8_t **start, size_t *len)
{
    if (in_pos >= in_size)
        return false;
    const uint8_t *nl = memchr(in_data + in_pos, '\n', in_size - in_pos);
    *start = in_data + in_pos;
    *len = nl ? (size_t)(nl - *start) : in_size - in_pos;
    in_pos += *len + 1;
    return true;
}

/* Host name text into wire-format labels (dots split; each label at most 63). */
static int wire_name(const uint8_t *text, size_t len, unsigned char *out, size_t outsz)
{
    size_t o = 0, label = 0;
    for (size_t i = 0; i <= len && o + 2 < outsz; i++) {
        if (i == len || text[i] == '.') {
            if (i > label) {
                size_t n = i - label > 63 ? 63 : i - label;
                if (o + n + 2 >= outsz)
                    break;
                out[o++] = (unsigned char)n;
                memcpy(out + o, text + label, n);
                o += n;
            }
            label = i + 1;
        }
    }
    out[o++] = 0;
    return (int)o;
}

/* Answers one queued lookup from the next input line. */
static void answer(struct fake_query *q)
{
    const uint8_t *line = NULL;
    size_t len = 0;
    struct dns_answer a = {.status = DNS_NXDOMAIN};
    unsigned char rdata[600];
    const unsigned char *data[1] = {rdata};
    int rlen[1] = {0};
    if (next_line(&line, &len) && len > 0 && line[0] != '1') {
        a.status = line[0] == '2' ? DNS_TEMPFAIL : DNS_OK;
        line++, len--;
        if (q->rrtype == DNS_RR_TXT) {
            size_t n = len > 255 ? 255 : len;
            rdata[0] = (unsigned char)n;
            memcpy(rdata + 1, line, n);
            rlen[0] = (int)n + 1;
        } else if (q->rrtype == DNS_RR_A || q->rrtype == DNS_RR_AAAA) {
            rlen[0] = q->rrtype == DNS_RR_A ? 4 : 16;
            for (int i = 0; i < rlen[0]; i++)
                rdata[i] = len ? line[(size_t)i % len] : 0;
        } else if (q->rrtype == DNS_RR_MX) {
            rdata[0] = 0, rdata[1] = 10;
            rlen[0] = 2 + wire_name(line, len, rdata + 2, sizeof rdata - 2);
        } else {
            rlen[0] = wire_name(line, len, rdata, sizeof rdata);
        }
        a.n = a.status == DNS_OK && len > 0 ? 1 : 0;
        a.data = data;
        a.len = rlen;
    }
    q->live = false;
    q->cb(q->arg, &a);
}

static void on_result(void *arg, enum spf_result r, const char *detail, const char *explanation)
{
    (void)arg;
    if (r >= SPF__COUNT || !detail || (explanation && (r != SPF_FAIL || strlen(explanation) > SPF_EXPLANATION_MAX)))
        abort();
    for (const char *p = explanation; p && *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            abort(); /* an explanation goes into a reply line: printable US-ASCII only */
    results++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    spf_dns = (struct spf_dns_ops){fake_lookup, fake_cancel};
    memset(queue, 0, sizeof queue);
    in_data = data, in_size = size, in_pos = 0, lookups = results = 0;
    const uint8_t *first;
    size_t first_len;
    bool v6 = next_line(&first, &first_len) && first_len > 0 && first[0] == '6';
    struct sockaddr_storage ss = {0};
    if (v6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_addr.s6_addr[15] = 1;
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(0x7f000001);
    }
    struct spf_check *c = spf_check_start(NULL, (struct sockaddr *)&ss, "carol@example.org", "mx.example.net",
                                          "mx.example.test", on_result, NULL);
    if (!c)
        abort();
    for (bool more = true; more && results == 0;) {
        more = false;
        for (int i = 0; i < QUEUE_MAX; i++)
            if (queue[i].live) {
                answer(&queue[i]);
                more = true;
                break;
            }
        if (lookups > LOOKUPS_BOUND)
            abort();
    }
    if (results != 1)
        abort(); /* every check ends with exactly one result */
    return 0;
}
