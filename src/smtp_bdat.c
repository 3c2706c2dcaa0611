/* smtp_bdat.c - CHUNKING (RFC 3030): a message sent as BDAT chunks of a stated number of octets
 * instead of DATA's dot-terminated text. A chunk's octets go through DATA's reader (smtp_data.c,
 * chunked: the same line ending, NUL and size rules, no dots) into the message; the last chunk
 * (BDAT n LAST) ends the data as CRLF.CRLF does, and from there the message is checked and stored
 * like any other (smtp_store.c): one reply for it, 250 only once it is on stable storage.
 * A refused chunk is still read, and dropped, so that its octets are never taken for commands;
 * a BDAT whose size cannot be read ends the session for the same reason. Part of the session
 * (session_priv.h). */
#include <event2/buffer.h>
#include <inttypes.h>
#include <stdio.h>

#include "config.h"
#include "server.h"
#include "session_priv.h"

/* Why this chunk cannot go into a message here (false when it can): the host takes no mail, no
 * transaction is open, or the message would pass max_message_size with it. */
static bool bdat_refusal(const struct session *s, uint64_t size, enum reply_id *id)
{
    const struct config *cfg = s->srv->cfg;
    size_t so_far = s->data.size; /* read only once a recipient opened the data (cmd_bdat) */
    if (!cfg->accept_mail)
        *id = REPLY_HOST_NO_MAIL; /* RFC 7504 */
    else if (s->state == ST_FRESH)
        *id = REPLY_NEED_EHLO;
    else if (s->state == ST_READY)
        *id = REPLY_NEED_MAIL;
    else if (s->state == ST_MAIL)
        *id = REPLY_NO_VALID_RCPTS;
    else if (so_far > cfg->max_message_size || size > cfg->max_message_size - so_far)
        *id = REPLY_SIZE_EXCEEDED; /* said now, not after reading what would be thrown away */
    else
        return false;
    return true;
}

void cmd_bdat(struct session *s, const struct smtp_command *c)
{
    uint64_t size;
    bool last;
    if (!smtp_parse_bdat(c->arg, c->arg_len, &size, &last)) {
        reset_transaction(s);
        reply(s, REPLY_BDAT_SYNTAX);
        close_after_flush(s);
        return;
    }
    if (!s->bdat_open && s->state == ST_RCPT) { /* a first chunk: the data begins (even if refused) */
        data_begin(s, true);
        s->bdat_open = true;
    }
    enum reply_id refusal;
    if (bdat_refusal(s, size, &refusal)) {
        if (refusal == REPLY_SIZE_EXCEEDED)
            refuse_data(s, refusal, "too big", NULL); /* logged; the transaction ends */
        else
            reply(s, refusal);
        s->bdat_left = size; /* bdat_drop reads them */
        return;
    }
    s->bdat_size = s->bdat_left = size;
    s->bdat_last = last;
    s->state = ST_DATA;
    set_timeouts(s);
    if (size == 0)
        bdat_chunk_end(s);
}

void bdat_chunk_end(struct session *s)
{
    if (s->bdat_last && data_reader_end(&s->data) && evbuffer_add(s->msg->body, "\n", 1) < 0)
        s->data.flags |= DATA_NO_MEMORY;
    if (s->bdat_last || s->data.flags) { /* the end of the data, or a message already refused */
        finish_data(s);
        return;
    }
    s->state = ST_RCPT;
    set_timeouts(s);
    char octets[24];
    snprintf(octets, sizeof octets, "%" PRIu64, s->bdat_size);
    reply(s, REPLY_BDAT_CHUNK, octets);
}

bool bdat_drop(struct session *s, struct evbuffer *in)
{
    size_t have = evbuffer_get_length(in);
    if (have == 0)
        return false;
    size_t n = have < s->bdat_left ? have : (size_t)s->bdat_left;
    evbuffer_drain(in, n);
    s->bdat_left -= n;
    return true;
}

bool bdat_refuses(struct session *s, enum smtp_verb v)
{
    if (!s->bdat_open || v == VERB_RSET || v == VERB_NOOP || v == VERB_QUIT || v == VERB_EHLO || v == VERB_HELO ||
        v == VERB_HELP)
        return false;
    reply(s, REPLY_BDAT_IN_PROGRESS);
    return true;
}
