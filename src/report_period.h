/* report_period.h - the period of an aggregate report (TLS reports, tlsrpt_send.h; DMARC reports,
 * dmarcrpt_send.h): a table of the period's counts, handed over when the period ends - at the next
 * multiple of the interval since the epoch, midnight UTC for a day - and a fresh one begun; at a
 * stop the table is written to spool_dir/<file>, and the next start counts on with it, or hands it
 * over at once when its period ended meanwhile. A crash loses the period's counts. Loop thread. */
#ifndef POSTERN_REPORT_PERIOD_H
#define POSTERN_REPORT_PERIOD_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct server;
struct event;

/* What the period needs of a kind of table. */
struct report_table_ops {
    const char *kind; /* the log events' prefix: "tls_report" -> event=tls_report_state_loaded */
    const char *file; /* spool_dir/<file>; its first line "postern-<file> 1 <start> <interval>" */
    void *(*create)(void);
    void (*destroy)(void *table);
    void (*clear)(void *table); /* every count forgotten */
    size_t (*domains)(const void *table);
    char *(*dump)(const void *table, size_t *len);
    bool (*undump)(void *table, const char *text);
};

/* Called with a period's table when the period is over (the callee owns it from then). */
typedef void report_over_fn(void *arg, void *table, time_t start, time_t end);

struct report_period {
    struct server *srv;
    const struct report_table_ops *ops;
    unsigned interval;  /* seconds, at most a day */
    void *table;        /* the current period's counts */
    time_t start;
    struct event *timer;
    report_over_fn *over;
    void *arg;
};

/* Starts p (zeroed): the current period, its timer, the counts a stop left (over may be called
 * from here). False when out of memory. */
bool report_period_start(struct report_period *p, struct server *srv, const struct report_table_ops *ops,
                         unsigned interval, report_over_fn *over, void *arg);

/* Writes the current counts to the state file (when there are any) and frees p's parts. */
void report_period_stop(struct report_period *p);

#endif
