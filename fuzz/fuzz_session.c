/* libFuzzer target: a whole SMTP session over an in-memory connection (bufferevent pair), with the
 * real disk threads writing to a temporary directory. Invariants checked on every input:
 *  - every reply line is "DDD " or "DDD-" plus text, at most 512 octets with CRLF;
 *  - nothing is sent after a 221 reply (QUIT);
 *  - one reply per command: walking the input line by line (and each DATA body up to CRLF.CRLF
 *    after a 354, each BDAT chunk's stated octets after its line) accounts for every reply, in
 *    order, with none missing and none extra;
 *  - every "250 2.0.0 Ok: queued as ID" has its message file in a Maildir new/ (never a 250 for a
 *    message that was not committed); the mailbox may be alice's or postmaster's.
 * The content rules (header_checks, mime_header_checks, body_checks) are set, so that the text of
 * every message goes through them and the MIME walk. */
#include <glob.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "auth.h"
#include "commit.h"
#include "policy.h"
#include "conn_count.h"
#include "server.h"
#include "smtp_parse.h"
#include "smtp_session.h"
#include "workq.h"

static struct server srv;
static struct config cfg;
static struct policy policy;
static char root[64] = "/dev/shm/postern-fuzz-XXXXXX";
static char new_glob[160]; /* every mailbox's new/: alice, and postmaster (always accepted) */

/* Builds a server without listeners, once. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (!mkdtemp(root))
        abort();
    char path[128];
    snprintf(path, sizeof path, "%s/recipients", root);
    FILE *f = fopen(path, "w");
    fprintf(f, "alice@example.test\n");
    fclose(f);
    static const char *const tables[][2] = {
        {"header_checks", "/^Subject:.*spam/i REJECT no spam\n/^X-Mailer:/ WARN\n/^Subject:.*prize/ DISCARD\n"},
        {"mime_header_checks", "/^Content-(Type|Disposition):.*name=\"?[^\"]*\\.exe/i REJECT no exe\n/^X-/ WARN\n"},
        {"body_checks", "/badword/ REJECT no bad words\n/^--/ WARN\n"},
    };
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
        snprintf(path, sizeof path, "%s/%s", root, tables[i][0]);
        f = fopen(path, "w");
        fputs(tables[i][1], f);
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/postern.conf", root);
    f = fopen(path, "w");
    fprintf(f, "hostname = mx.example.test\nmail_dir = %s/mail\nspool_dir = %s/spool\nlocal_domains = example.test\n"
               "recipients = %s/recipients\nnull_mx_domains = nullmx.test\ngreet_delay = 0\nio_threads = 1\n"
               "min_free_space = 0\nmax_recipients = 5\nmax_message_size = 4096\nmax_errors = 1000\nlog_level = error\n"
               "header_checks = %s/header_checks\nmime_header_checks = %s/mime_header_checks\n"
               "body_checks = %s/body_checks\nbody_checks_size_limit = 1K\n",
            root, root, root, root, root, root);
    fclose(f);
    struct config_errors errs = {0};
    if (!config_load(path, &cfg, &errs) || !policy_load(&policy, &cfg, &errs))
        abort();
    log_set_level(LOG_ERROR);
    snprintf(path, sizeof path, "%s/mail", root);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/spool", root);
    mkdir(path, 0700);
    snprintf(new_glob, sizeof new_glob, "%s/mail/*/*/new/*", root);
    evthread_use_pthreads();
    srv.base = event_base_new();
    srv.cfg = &cfg;
    srv.policy = &policy;
    static struct auth_users users;
    srv.users = &users;
    srv.disk = workq_new(srv.base, 1, "fuzz-disk");
    srv.committer = workq_new_batched(srv.base, "fuzz-commit", commit_batch, NULL, 64);
    srv.per_ip = conn_counts_new(60.0);
    srv.per_user = conn_counts_new(3600.0);
    return 0;
}

/* True when a file for queue id qid is in some mailbox's new/; removes every such file. */
static bool delivered(const char *qid)
{
    char needle[40];
    snprintf(needle, sizeof needle, "Q%s.", qid);
    glob_t g;
    bool found = false;
    if (glob(new_glob, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            const char *base = strrchr(g.gl_pathv[i], '/');
            if (base && strstr(base, needle)) {
                unlink(g.gl_pathv[i]);
                found = true;
            }
        }
    }
    globfree(&g);
    return found;
}

/* Runs the loop until the disk threads are idle and the client has stopped receiving. */
static void settle(struct bufferevent *client)
{
    size_t last = (size_t)-1;
    for (int quiet = 0, i = 0; quiet < 3 && i < 100000; i++) {
        event_base_loop(srv.base, EVLOOP_NONBLOCK);
        size_t now = client ? evbuffer_get_length(bufferevent_get_input(client)) : 0;
        if (srv.commits_running) {
            usleep(50);
            quiet = 0;
        } else {
            quiet = now == last ? quiet + 1 : 0;
        }
        last = now;
    }
}

#define MAX_FINALS 70000

/* True when an input line (LF and any CR before it excluded) is a BDAT command the session reads
 * as one - short enough, no NUL, a size it can read - with its chunk's size: that many octets
 * after the line are the chunk's, not commands. */
static bool bdat_line(const uint8_t *line, size_t len, uint64_t *size)
{
    if (len && line[len - 1] == '\r')
        len--;
    if (len + 2 > cfg.max_command_line || memchr(line, '\0', len))
        return false;
    struct smtp_command c;
    bool last;
    smtp_parse_command((const char *)line, len, &c);
    return c.verb == VERB_BDAT && smtp_parse_bdat(c.arg, c.arg_len, size, &last);
}

/* The oracle for "one reply per command": finals[] holds the code of each complete reply (the
 * greeting first; negative for replies that close the session). Each input line (ended by LF) takes one reply; a 354 also takes the body up to
 * the first CRLF.CRLF and one more reply; 221 and 554 end the session, as does the 421 that follows
 * the reply that reached max_errors. */
static void check_one_reply_per_command(const uint8_t *in, size_t n, const int *finals, size_t nfinals)
{
    size_t pos = 0, r = 1;
    if (nfinals == 0 || finals[0] != 220)
        abort();
    while (r < nfinals) {
        const uint8_t *nl = memchr(in + pos, '\n', n - pos);
        if (!nl)
            abort(); /* a reply with no complete command to answer */
        size_t line_start = pos;
        pos = (size_t)(nl - in) + 1;
        uint64_t chunk;
        if (bdat_line(in + line_start, (size_t)(nl - in) - line_start, &chunk)) {
            bool whole = chunk <= n - pos; /* else the input ends inside the chunk */
            pos = whole ? pos + (size_t)chunk : n;
            if (!whole) { /* a refused chunk has its reply already; a taken one is still open */
                r += r < nfinals;
                break;
            }
        }
        int code = finals[r++];
        if (code == 354) {
            const uint8_t *end = NULL;
            if (n - pos >= 3 && memcmp(in + pos, ".\r\n", 3) == 0)
                end = in + pos - 2;
            else if (n - pos >= 5)
                end = memmem(in + pos, n - pos, "\r\n.\r\n", 5);
            if (!end)
                break; /* body still open: no more replies may exist */
            pos = (size_t)(end - in) + 5;
            if (r >= nfinals)
                break;
            code = finals[r++];
        }
        if (r < nfinals && finals[r] == -421 && code >= 500)
            r++, code = -421; /* too many errors: one extra reply, then the end */
        if (code < 0)
            break;
    }
    if (r != nfinals)
        abort(); /* more replies than commands */
}

static int finals[MAX_FINALS];

static void check_replies(struct evbuffer *in, const uint8_t *input, size_t input_len)
{
    size_t nfinals = 0;
    size_t n = evbuffer_get_length(in);
    char *out = malloc(n + 1);
    evbuffer_remove(in, out, n);
    out[n] = '\0';
    bool quit_seen = false;
    for (char *line = out; line < out + n;) {
        char *crlf = strstr(line, "\r\n");
        if (!crlf || crlf - line + 2 > 512 || crlf - line < 4)
            abort(); /* unterminated, too long or too short */
        if (quit_seen)
            abort(); /* bytes after 221 */
        for (int i = 0; i < 3; i++)
            if (line[i] < '0' || line[i] > '9')
                abort();
        if (line[3] != ' ' && line[3] != '-')
            abort();
        if (strncmp(line, "221 ", 4) == 0)
            quit_seen = true;
        if (line[3] == ' ') {
            if (nfinals == MAX_FINALS)
                abort();
            int code = atoi(line);
            /* closing replies: 221, every 421, and 554 5.5.0 (other protocol / early talker) */
            bool closes = code == 221 || code == 421 || strncmp(line, "554 5.5.0", 9) == 0 ||
                          strncmp(line, "501 5.5.4 Syntax: BDAT", 22) == 0; /* its chunk's end unknown */
            finals[nfinals++] = closes ? -code : code;
        }
        if (strncmp(line, "250 2.0.0 Ok: queued as ", 24) == 0) {
            char qid[32];
            size_t len = (size_t)(crlf - line - 24);
            if (len == 0 || len >= sizeof qid)
                abort();
            memcpy(qid, line + 24, len);
            qid[len] = '\0';
            if (!delivered(qid))
                abort(); /* a 250 for a message that is not in the Maildir */
        }
        line = crlf + 2;
    }
    free(out);
    check_one_reply_per_command(input, input_len, finals, nfinals);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bufferevent *pair[2];
    if (bufferevent_pair_new(srv.base, BEV_OPT_CLOSE_ON_FREE, pair) < 0)
        abort();
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0xc0000201)}; /* 192.0.2.1 */
    session_attach(&srv, pair[1], (struct sockaddr *)&peer, sizeof peer, ROLE_MX);
    bufferevent_enable(pair[0], EV_READ | EV_WRITE);
    bufferevent_write(pair[0], data, size);
    settle(pair[0]);
    check_replies(bufferevent_get_input(pair[0]), data, size);
    for (int i = 0; srv.nsessions && i < 1000; i++) { /* close the session the way shutdown does */
        session_shutdown_all(&srv, true);
        settle(NULL);
    }
    if (srv.nsessions)
        abort(); /* a session that never ends */
    bufferevent_free(pair[0]);
    return 0;
}
