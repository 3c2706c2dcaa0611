/* access.h - the administrator's access tables. client_access: "network action [text]" lines,
 * the most specific network holding the client wins; sender_access: "address|domain|.parent|<>
 * action [text]" lines, the most specific match wins (address, address without its extension,
 * domain, nearest parent); helo_access: "name|.parent action [text]" lines for the EHLO/HELO name
 * (the name itself, then its nearest listed parent). Actions: reject (550 5.7.1), defer (450 4.7.1), and for clients only
 * permit (not looked up in block lists, SPF or the sender domain check; relaying stays with
 * relay_networks). Senders get no permit: anyone can write any sender address.
 * Pure lookups after access_load(); the session applies the verdicts (smtp_envelope.c). */
#ifndef POSTERN_ACCESS_H
#define POSTERN_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "address.h"
#include "cidr.h"
#include "config.h"
#include "strmap.h"

#define ACCESS_TEXT_MAX 200       /* octets of an entry's reply text */
#define ACCESS_CLIENTS_MAX 100000 /* client_access entries */

enum access_action { ACCESS_NONE, ACCESS_PERMIT, ACCESS_DEFER, ACCESS_REJECT };

struct access_verdict {
    enum access_action action;
    const char *text;  /* the entry's reply text, or NULL; owned by the tables */
    int line;          /* the table line that decided (0: none) */
};

struct access_client {
    struct cidr net;
    struct access_verdict verdict;
};

struct access_tables {
    struct access_client *clients; /* client_access entries in table order */
    size_t nclients, clients_cap;
    struct strmap senders;         /* canonical key -> "A:line:text" (A: 'r' reject, 'd' defer) */
    struct strmap helos;           /* the same for EHLO/HELO names */
};

/* Reads client_access, sender_access and helo_access (when set) into t; errors name the table's file:line. */
void access_load(struct access_tables *t, const struct config *cfg, struct config_errors *errs);
void access_free(struct access_tables *t);

/* The verdict of the most specific client_access network holding client (ACCESS_NONE: none). */
struct access_verdict access_client(const struct access_tables *t, const struct sockaddr *client);

/* The verdict of the most specific sender_access entry for the reverse-path mb: the address, the
 * address without its extension (after one of delimiters), its domain, its nearest listed parent;
 * "<>" for the null sender. ACCESS_NONE when nothing matches. */
struct access_verdict access_sender(const struct access_tables *t, const struct mailbox *mb, const char *delimiters);

/* The verdict of the most specific helo_access entry for an EHLO/HELO name: the name, then its
 * nearest listed parent (".example.com" for "host.example.com"). ACCESS_NONE when nothing
 * matches or the name is no domain (an address literal, or junk EHLO takes anyway). */
struct access_verdict access_helo(const struct access_tables *t, const char *helo);

/* The action's name as the tables and the log write it. */
const char *access_action_name(enum access_action a);

#endif
