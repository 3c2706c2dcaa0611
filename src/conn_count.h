/* conn_count.h - open connections per client address, for max_connections_per_ip.
 * Constant time per connect and disconnect however many are open: walking every session instead
 * cost about 0.2 ms per accept with 10,000 connections open. Loop thread only. */
#ifndef POSTERN_CONN_COUNT_H
#define POSTERN_CONN_COUNT_H

#include <stdbool.h>
#include <stddef.h>

struct conn_counts;

struct conn_counts *conn_counts_new(void);
void conn_counts_free(struct conn_counts *c);

/* Connections counted for ip now (0 when none). */
unsigned conn_counts_get(const struct conn_counts *c, const char *ip);

/* One more for ip, unless it has limit already; false (nothing counted) then, or out of memory. */
bool conn_counts_add(struct conn_counts *c, const char *ip, unsigned limit);

/* One less for ip (which conn_counts_add counted); its entry goes at zero (unless its connection
 * rate is being counted: then with the next sweep after its minute). */
void conn_counts_remove(struct conn_counts *c, const char *ip);

/* Counts one connection attempt from ip at monotonic time now in ip's current minute (a window
 * that starts with its first attempt); false when it is over per_minute (the attempts refused
 * count too: a client that keeps hammering stays refused until it has waited out a minute). At
 * most once a minute the entries of addresses idle for a minute are dropped. */
bool conn_rate_allow(struct conn_counts *c, const char *ip, unsigned per_minute, double now);

#endif
