/* quota_notice.h - the notice a mailbox's owner finds in it when a delivery takes the mailbox past
 * mailbox_quota_warning percent of its quota: what it holds, what happens once it is full (senders
 * get 452 4.2.2 and keep the mail for a few days, then return it), and how to make room. One per
 * crossing: a mailbox that stays above gets no more, one that drops below and comes back gets
 * another. Loop thread. */
#ifndef POSTERN_QUOTA_NOTICE_H
#define POSTERN_QUOTA_NOTICE_H

#include "maildirsize.h"

struct msg_rcpt;
struct server;

/* Commits the notice to r's mailbox (r local, its quota set), whose usage is now u. Failures are
 * logged: the notice is a courtesy, never retried. */
void quota_notice_send(struct server *srv, const struct msg_rcpt *r, const struct quota_usage *u);

#endif
