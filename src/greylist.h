/* greylist.h - greylisting (RFC 6647): the table of (client network, sender, recipient) triplets
 * seen at RCPT. A triplet seen for the first time is deferred; the same triplet sent again after
 * greylist_delay (and within greylist_retry_window of the first try) passes, and is remembered
 * for greylist_max_age after its last use. A client network that has passed greylist_auto_allow
 * triplets is let through without greylisting (a real mail server, which retries, proved
 * itself). Keys are 64 bits of SHA-256 of the triplet: the table holds no address. Pure: the
 * caller gives the time; no I/O but greylist_load and greylist_save. */
#ifndef POSTERN_GREYLIST_H
#define POSTERN_GREYLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct greylist_limits {
    unsigned delay;          /* seconds a new triplet waits before its retry passes */
    unsigned retry_window;   /* seconds after its first try within which the retry must come */
    unsigned max_age;        /* seconds a passed triplet (or an allowed network) is kept after its last use */
    unsigned auto_allow;     /* passed triplets that make a client network allowed (0: never) */
    size_t max_entries;      /* triplets and networks kept at most */
};

enum greylist_verdict {
    GREYLIST_DEFERRED,  /* first seen, or its retry came too soon: 451 4.7.1 */
    GREYLIST_PASSED,    /* its retry came after the delay: passes now, and from now on */
    GREYLIST_KNOWN,     /* passed before */
    GREYLIST_ALLOWED,   /* its client network is allowed (greylist_auto_allow) */
    GREYLIST_FULL       /* not seen, and the table is full of live entries: let through */
};

struct greylist;

/* An empty table; NULL when out of memory. */
struct greylist *greylist_new(const struct greylist_limits *limits);

/* New times and auto_allow for the table's entries, judged by them from now on (a reload);
 * max_entries stays as the table was made. */
void greylist_set_limits(struct greylist *g, const struct greylist_limits *limits);
void greylist_free(struct greylist *g);

/* The verdict for the triplet at now, the table updated. net: the client's network as text
 * ("192.0.2.0/24"); sender and rcpt as they are to be compared (greylist_sender_key). For a
 * deferral, *wait is the seconds until a retry would pass. */
enum greylist_verdict greylist_judge(struct greylist *g, const char *net, const char *sender, const char *rcpt,
                                     time_t now, unsigned *wait);

/* The sender as greylisting compares it: lower case, the local part cut at its first '+' or '='
 * and each run of digits in it made one '#' - so that the per-message senders of mailing lists and
 * bounce tagging (VERP, BATV: "bounce-1234=user=example.org@list.example") pass once as one. */
void greylist_sender_key(const char *sender, char *out, size_t outsz);

/* The client address's network as text: IPv4 /24, IPv6 /64 (a sending pool retries from another
 * address of its network); false when ip is no address. */
bool greylist_network(const char *ip, char *out, size_t outsz);

/* Drops the entries whose time is over at now (a deferred triplet past its retry window, a passed
 * one or a network past max_age). */
void greylist_expire(struct greylist *g, time_t now);

/* Entries kept now, and whether any changed since the last greylist_save. */
size_t greylist_count(const struct greylist *g);
bool greylist_dirty(const struct greylist *g);

/* The table as the text of its file ("postern-greylist 1" then a line per entry), for the disk
 * thread to write (greylist_write); malloc'd, NULL when out of memory. Clears the dirty mark. */
char *greylist_save(struct greylist *g, size_t *len);

/* Writes text to path whole (beside it, flushed, renamed over it); false with errno set. */
bool greylist_write(const char *path, const char *text, size_t len);

/* Reads the file greylist_save wrote into the table; entries over at now, and lines that are not
 * entries, are dropped and counted in *dropped. False when the file cannot be read (none yet:
 * errno ENOENT). */
bool greylist_load(struct greylist *g, const char *path, time_t now, size_t *dropped);

#endif
