/* explain.c - what reply codes mean, in plain words. Order of lookup: a catalog row with both the
 * code and the enhanced code; a catalog row with the enhanced code; the RFC 3463 subject.detail
 * table; the RFC 5321 basic code table; a generic text by class (2, 4 or 5). */
#include "explain.h"

#include <stdlib.h>
#include <string.h>

#include "reply.h"
#include "smtp_reply.h"

struct known {
    const char *key;       /* "1.1" (subject.detail, any class) or "550" (basic code) */
    const char *title;
    const char *meaning;
    const char *fix;
};

/* RFC 3463 (and RFC 5248 registry additions) subject.detail; the class says permanent or not. */
static const struct known enhanced_table[] = {
    {"0.0", "Other or undefined status", "The server gave no more detail than success or failure.", "Read the text of the reply; ask the receiving site's postmaster if it stays unclear."},
    {"1.0", "Other address status", "Something is wrong with an address, without more detail.", "Check both the sender and the recipient address."},
    {"1.1", "Bad destination mailbox address", "No mailbox with this address exists at the destination.", "Check the address for typos; ask the recipient for the right address."},
    {"1.2", "Bad destination system address", "The domain of the address does not exist or cannot receive mail.", "Check the part after the @ for typos (e.g. gmial.com)."},
    {"1.3", "Bad destination mailbox address syntax", "The recipient address is not a valid address.", "Fix the address: no spaces, one @, a valid domain."},
    {"1.4", "Destination mailbox address ambiguous", "The address matches several mailboxes.", "Use the recipient's full, exact address."},
    {"1.5", "Destination address valid", "The recipient address was accepted.", "Nothing to fix."},
    {"1.6", "Destination mailbox has moved", "The recipient no longer receives mail at this address.", "Resend to the new address if the reply gives one; update your address book."},
    {"1.7", "Bad sender's mailbox address syntax", "The sender address is not valid.", "Fix the sender address your program uses."},
    {"1.8", "Bad sender's system address", "The sender's domain does not exist or cannot receive replies.", "Send from an address whose domain exists and accepts mail."},
    {"1.10", "Recipient address has null MX", "The recipient's domain publishes a null MX: it accepts no mail at all (RFC 7505).", "The address cannot receive mail; reach the person another way."},
    {"2.0", "Other mailbox status", "The mailbox has a problem, without more detail.", "Try again later or reach the recipient another way."},
    {"2.1", "Mailbox disabled", "The mailbox exists but does not accept messages now.", "Reach the recipient another way."},
    {"2.2", "Mailbox full", "The recipient's mailbox is over its quota.", "Wait and resend later, or tell the recipient another way to make room."},
    {"2.3", "Message length exceeds administrative limit", "The message is larger than this mailbox takes.", "Send a smaller message (a link instead of a large attachment)."},
    {"2.4", "Mailing list expansion problem", "The address is a mailing list that could not be expanded.", "Tell the list's owner another way; resend later."},
    {"3.0", "Other mail system status", "The receiving system has a problem.", "Usually temporary: the message is retried. Persistent: contact the receiving site."},
    {"3.1", "Mail system full", "The receiving system is out of disk space.", "Nothing for the sender to fix; the receiving site must free space."},
    {"3.2", "System not accepting network messages", "The host does not accept mail (for now or ever, RFC 7504).", "Use the domain's real mail exchanger; wait if it is a shutdown."},
    {"3.3", "System not capable of selected features", "The message needs a feature the receiving system lacks.", "Send it without the feature (a plain message), or to another address."},
    {"3.4", "Message too big for system", "The message is larger than the receiving server accepts.", "Send a smaller message."},
    {"3.5", "System incorrectly configured", "The receiving system is misconfigured.", "Nothing for the sender to fix; tell the receiving site's postmaster."},
    {"4.0", "Other network or routing status", "Something went wrong in reaching the destination.", "Usually temporary: the message is retried."},
    {"4.1", "No answer from host", "The destination's mail servers did not answer or refused the connection.", "Nothing to do now: the message is retried. Persistent: the destination's mail server is down."},
    {"4.2", "Bad connection", "The connection broke or timed out during the delivery.", "Nothing to do now: the message is retried."},
    {"4.3", "Directory server failure", "The DNS lookup for the destination failed temporarily.", "Nothing to do now: the message is retried. Persistent: the domain's DNS is broken."},
    {"4.4", "Unable to route", "No mail server could be found for the destination.", "Check the domain of the address; its owner must publish MX records."},
    {"4.5", "Mail system congestion", "The receiving side is overloaded.", "Nothing to do now: the message is retried."},
    {"4.6", "Routing loop detected", "The message went around in circles between mail servers.", "The administrators of the servers involved must fix their configuration."},
    {"4.7", "Delivery time expired", "The message could not be delivered within the time it may wait in the queue.", "Check the address; the destination was unreachable for days. Resend later or reach the person another way."},
    {"5.0", "Other protocol status", "The SMTP conversation failed.", "Contact the postmaster of the receiving site if it persists."},
    {"5.1", "Invalid command", "The server did not recognize a command.", "Fix the sending client's SMTP implementation."},
    {"5.2", "Syntax error", "A command was not understood.", "Fix the sending client's SMTP implementation."},
    {"5.3", "Too many recipients", "The transaction has more recipients than the server takes.", "Nothing to fix: the client sends the rest in another transaction."},
    {"5.4", "Invalid command arguments", "A command's arguments or parameters were not valid.", "Fix the sending client's SMTP implementation."},
    {"5.5", "Wrong protocol version", "The two mail servers could not agree on a protocol version.", "The administrators of the servers must fix it."},
    {"5.6", "Authentication exchange line too long", "A line of the AUTH exchange was too long.", "Fix the client, or use a shorter credential."},
    {"6.0", "Other media error", "The message content was refused.", "Check the message's format and attachments."},
    {"6.1", "Media not supported", "The receiving system does not take this kind of content.", "Send the content in another form (a common file type, or a link)."},
    {"6.2", "Conversion required and prohibited", "The message would have had to be converted on the way, which the sender forbade.", "Send it in a form the destination takes as it is."},
    {"6.3", "Conversion required but not supported", "The message has 8-bit text, a mail server on the way does not accept it (it offers no 8BITMIME, RFC 6152), and it could not be converted to 7-bit MIME: most often a header field (Subject, a name) holds 8-bit characters instead of RFC 2047 encoded words.", "Send it again with its header fields encoded (RFC 2047: mail programs do it for any non-ASCII subject or name) and its text encoded (quoted-printable or base64)."},
    {"6.5", "Conversion failed", "Converting the message for the destination failed.", "Send it again in plain form (7-bit text, encoded attachments)."},
    {"6.7", "Non-ASCII addresses not permitted", "An internationalized (UTF-8) address needs SMTPUTF8, which a server on the way lacks (RFC 6531).", "Use the recipient's ASCII address, if any, or another route."},
    {"7.0", "Other security or policy status", "The receiving site's policy refused the message, or (a 4xx code) deferred it: greylisting or a rate limit, often.", "Read the reply text; a 4xx refusal is retried by itself. If it persists, ask the receiving site's postmaster."},
    {"7.1", "Delivery not authorized, message refused", "The sender may not send there (relaying denied, or blocked by policy).", "Send through your own provider's server with authentication, or ask the recipient's site."},
    {"7.2", "Mailing list expansion prohibited", "The sender may not send to this mailing list.", "Ask the list's owner to let you post."},
    {"7.4", "Security features not supported", "A security feature the message needs is missing at the destination: most often its mail server does not offer TLS (STARTTLS) while a rule requires it - the destination's own MTA-STS or DANE records, or the sending site's TLS policy.", "Nothing to do at once: a 4xx is retried. If it lasts, tell the recipient's postmaster (their server must offer TLS, as their records promise), or ask your own mail administrator."},
    {"7.5", "Cryptographic failure", "A cryptographic check failed: a signature or encryption of the message, or the TLS certificate of the receiving server, which did not pass the check its DANE (TLSA) or MTA-STS records, or the sending site's policy, require - or those records no longer name its servers.", "When the text names a certificate, TLSA records or an MTA-STS policy, the receiving site must renew its certificate or update its records: tell its postmaster (a 4xx is retried meanwhile). Otherwise check the message's signature or encryption, and resend."},
    {"7.7", "Message integrity failure", "The message was changed on the way, or its integrity check failed.", "Resend the message."},
    {"7.8", "Authentication credentials invalid", "The user name or password was wrong.", "Check the user name and password."},
    {"7.9", "Authentication mechanism is too weak", "The login method is not accepted: it is too weak.", "Configure your mail program to use a stronger login method."},
    {"7.10", "Encryption needed", "The receiving server takes this only over an encrypted connection.", "Use TLS (STARTTLS on port 587, or port 465)."},
    {"7.11", "Encryption required for requested authentication mechanism", "Passwords are only taken over TLS.", "Use STARTTLS (port 587) or implicit TLS (port 465)."},
    {"7.12", "A password transition is needed", "The account's password must be changed first.", "Change the password, then log in again."},
    {"7.13", "User account disabled", "The account is disabled.", "Contact the provider of the account."},
    {"7.20", "No passing DKIM signature found", "The receiving site wants a valid DKIM signature, and the message had none.", "The sender's domain must sign its mail with DKIM (a signing key, and its public key published in DNS)."},
    {"7.21", "No acceptable DKIM signature found", "The message's DKIM signatures were not acceptable to the receiving site.", "The sender's domain must sign with a DKIM key and algorithm the receiver accepts (e.g. RSA 2048 bits)."},
    {"7.22", "No valid author-matched DKIM signature found", "No valid DKIM signature was made by the domain in the From address.", "Sign mail with the From domain's own DKIM key."},
    {"7.23", "SPF validation failed", "The sender domain's SPF record does not list the server that sent the message.", "The sender domain's administrator must add this mail server to its SPF record (a TXT record starting v=spf1)."},
    {"7.24", "SPF validation error", "The sender domain's SPF record could not be checked (an error in it, or in DNS).", "The sender domain's administrator must fix its SPF record."},
    {"7.25", "Reverse DNS validation failed", "The sending server's IP address has no reverse DNS name, or that name does not lead back to the address.", "The sending server's administrator must give its IP address a PTR record naming the server, and that name an A/AAAA record with the address (and use it as hostname)."},
    {"7.26", "Multiple authentication checks failed", "The message did not pass the receiver's checks that it really comes from the sender's domain (SPF, DKIM, DMARC).", "The sender domain's administrator must publish SPF and DKIM records that cover this mail server, with a DMARC policy that matches the From domain."},
    {"7.27", "Sender address has null MX", "The sender's domain publishes a null MX, so no reply could ever reach it (RFC 7505).", "Send from an address whose domain accepts mail."},
};

/* RFC 5321 4.2.2/4.2.3 basic codes (and RFC 7504, RFC 7505). */
static const struct known basic_table[] = {
    {"221", "Service closing transmission channel", "The server ends the session.", "Nothing to fix."},
    {"250", "Requested mail action okay, completed", "The command succeeded.", "Nothing to fix."},
    {"251", "User not local; will forward", "The server takes the message and forwards it.", "Nothing to fix; you may update the address."},
    {"354", "Start mail input", "The server waits for the message text, ended by a line with a single dot.", "Nothing to fix."},
    {"421", "Service not available, closing transmission channel", "The server is overloaded, stopping, or limits connections.", "Nothing to fix now: the message is retried."},
    {"450", "Mailbox unavailable (temporary)", "The mailbox is busy or temporarily blocked (greylisting, for example).", "Nothing to fix now: the message is retried."},
    {"451", "Local error in processing", "The receiving server had a temporary problem.", "Nothing to fix now: the message is retried."},
    {"452", "Insufficient system storage", "The receiving server is short of disk space, or had too many recipients.", "Nothing to fix now: the message is retried."},
    {"500", "Syntax error, command unrecognized", "The server did not understand a command.", "Fix the sending client's SMTP implementation."},
    {"501", "Syntax error in parameters or arguments", "A command's arguments were not valid.", "Fix the sending client's SMTP implementation."},
    {"502", "Command not implemented", "The server does not implement the command.", "Use a command the server offers."},
    {"503", "Bad sequence of commands", "Commands came in the wrong order.", "Fix the sending client's SMTP implementation."},
    {"504", "Command parameter not implemented", "The server does not implement a parameter.", "Use a parameter the server offers."},
    {"521", "Host does not accept mail", "The host never accepts mail (RFC 7504).", "Send to the domain's real mail exchanger."},
    {"530", "Authentication required", "The server needs authentication (and TLS) first.", "Configure your mail program to log in."},
    {"550", "Mailbox unavailable", "The mailbox does not exist or the message was refused by policy.", "Check the address for typos; read the reply text."},
    {"551", "User not local", "The recipient is not handled here; the reply may give a new address.", "Resend to the address the reply names."},
    {"552", "Exceeded storage allocation", "The message is too big or the mailbox is full.", "Send a smaller message, or later."},
    {"553", "Mailbox name not allowed", "The address is not valid.", "Fix the address."},
    {"554", "Transaction failed", "The message or the session was refused.", "Read the reply text; ask the receiving site's postmaster."},
    {"555", "MAIL/RCPT parameters not recognized", "A parameter of MAIL or RCPT is not supported.", "Fix the sending client."},
    {"556", "Domain does not accept mail", "The recipient's domain publishes a null MX (RFC 7505).", "The address cannot receive mail; reach the person another way."},
};

/* '2', '4' or '5': the class of a reply code, else of an enhanced code. */
static char code_class(int code, const char *enhanced)
{
    static const char digits[] = "0123456789";
    if (code)
        return digits[code / 100 % 10];
    return enhanced[0];
}

static const struct known *find_known(const struct known *t, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].key, key) == 0)
            return &t[i];
    return NULL;
}

/* True when text is the catalog text's words: the same up to its first format argument. */
static bool catalog_words(const char *catalog_text, const char *text)
{
    size_t n = strcspn(catalog_text, "%");
    return strncmp(text, catalog_text, n) == 0 && (catalog_text[n] == '%' || text[n] == '\0');
}

/* True when text is the catalog text whole, each %s standing for any run of characters: of two
 * rows whose words begin alike (SPF_FAIL and SPF_FAIL_EXPLAINED), the one the line really is. */
static bool catalog_whole(const char *pattern, const char *text)
{
    const char *star = NULL, *resume = NULL;
    while (*text) {
        if (pattern[0] == '%' && pattern[1] == 's') {
            star = pattern += 2;
            resume = text;
        } else if (*pattern == *text) {
            pattern++;
            text++;
        } else if (star) { /* the last %s takes one more character */
            pattern = star;
            text = ++resume;
        } else {
            return false;
        }
    }
    while (pattern[0] == '%' && pattern[1] == 's')
        pattern += 2;
    return *pattern == '\0';
}

/* The catalog row of one of Postern's own replies: code and enhanced code both equal, and the
 * words too when given (a row the whole line matches first, else one its words begin with);
 * without words, only when a single row has both codes. */
static const struct reply_info *find_catalog(int code, const char *enh, const char *text)
{
    const struct reply_info *found = NULL;
    int rows = 0;
    if (!code || !*enh)
        return NULL;
    for (int id = 0; text && id < REPLY__COUNT; id++) {
        const struct reply_info *r = reply_info((enum reply_id)id);
        if (r->code == code && strcmp(r->enhanced, enh) == 0 && catalog_whole(r->text, text))
            return r;
    }
    for (int id = 0; id < REPLY__COUNT; id++) {
        const struct reply_info *r = reply_info((enum reply_id)id);
        if (r->code != code || strcmp(r->enhanced, enh) != 0)
            continue;
        if (text && catalog_words(r->text, text))
            return r;
        found = r;
        rows++;
    }
    return !text && rows == 1 ? found : NULL;
}

int explain_lookup(int code, const char *enhanced, const char *text, struct explanation *e)
{
    memset(e, 0, sizeof *e);
    e->code = code;
    snprintf(e->enhanced, sizeof e->enhanced, "%s", enhanced ? enhanced : "");
    const struct reply_info *r = find_catalog(code, e->enhanced, text);
    if (r) {
        e->title = r->text;
        e->meaning = r->explanation;
        e->fix = r->fix;
        e->source = "Postern reply catalog";
        return 0;
    }
    const struct known *k = NULL;
    if (*e->enhanced && strlen(e->enhanced) > 2) {
        k = find_known(enhanced_table, sizeof enhanced_table / sizeof *enhanced_table, e->enhanced + 2);
        e->source = "RFC 3463";
    }
    if (!k && code) {
        char key[8];
        snprintf(key, sizeof key, "%d", code);
        k = find_known(basic_table, sizeof basic_table / sizeof *basic_table, key);
        e->source = "RFC 5321";
    }
    if (k) {
        e->title = k->title;
        e->meaning = k->meaning;
        e->fix = k->fix;
        return 0;
    }
    char cls = code_class(code, e->enhanced);
    e->title = cls == '2' ? "Success" : cls == '4' ? "Temporary failure" : cls == '5' ? "Permanent failure" : "Unknown code";
    e->meaning = cls == '4' ? "The receiving server could not take the message now."
                 : cls == '5' ? "The receiving server refused the message for good."
                              : "No more is known about this code.";
    e->fix = cls == '4' ? "Nothing to do now: the message is retried." : "Read the reply text for details.";
    e->source = "class only";
    return -1;
}

int explain_parse(const char *text, int *code, char *enhanced, size_t enhsz, const char **words)
{
    *code = 0;
    enhanced[0] = '\0';
    *words = NULL;
    const char *p = text;
    while (*p == ' ' || *p == '\t')
        p++;
    if (p[0] >= '2' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9' &&
        (p[3] == '\0' || p[3] == ' ' || p[3] == '-')) {
        *code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
        p += 3;
        while (*p == ' ' || *p == '-')
            p++;
    }
    size_t n = *p ? smtp_enhanced_code_len(p) : 0; /* followed by the end or a space: the text */
    if (n) {
        if (n >= enhsz)
            return -1;
        snprintf(enhanced, enhsz, "%.*s", (int)n, p);
        p += n;
    } else if (*p && !*code) {
        return -1;
    }
    while (*p == ' ')
        p++;
    *words = *p ? p : NULL;
    return *code || *enhanced ? 0 : -1;
}

static void print_one(FILE *out, const struct explanation *e)
{
    char label[32];
    snprintf(label, sizeof label, "%.3d%s%s", e->code, *e->enhanced ? " " : "", e->enhanced);
    fprintf(out, "%s  %s\n", e->code ? label : e->enhanced, e->title);
    char cls = code_class(e->code, e->enhanced);
    fprintf(out, "  Kind:     %s\n", cls == '2' ? "success" : cls == '3' ? "intermediate (go on)"
                                      : cls == '4' ? "temporary failure: the sending server retries"
                                                   : "permanent failure: the message is bounced to its sender");
    fprintf(out, "  Meaning:  %s\n  Fix:      %s\n  Source:   %s\n", e->meaning, e->fix, e->source);
}

int explain_main(FILE *out, int argc, char **argv)
{
    struct explanation e[2];
    if (argc < 1 || argc > 2) {
        fprintf(stderr, "usage: postern explain CODE [CODE2]   (a reply code such as 550, an enhanced code such as 5.1.1, or both)\n");
        return 2;
    }
    for (int i = 0; i < argc; i++) {
        int code;
        char enh[16];
        const char *words;
        if (explain_parse(argv[i], &code, enh, sizeof enh, &words) < 0) {
            fprintf(stderr, "postern explain: '%s' is not a reply code (like 550) or enhanced code (like 5.1.1)\n", argv[i]);
            return 2;
        }
        explain_lookup(code, enh, words, &e[i]); /* a pasted line's words tell Postern's replies apart */
        if (i)
            fputc('\n', out);
        print_one(out, &e[i]);
        if (code && *enh && code / 100 != enh[0] - '0')
            fprintf(out, "  Note:     the enhanced code's class (%c) disagrees with the reply code's (%d): the reply "
                         "code decides (RFC 3463 2)\n", enh[0], code / 100);
    }
    if (argc == 2) {
        char c0 = code_class(e[0].code, e[0].enhanced);
        char c1 = code_class(e[1].code, e[1].enhanced);
        fprintf(out, "\nKey differences:\n");
        if (c0 != c1)
            fprintf(out, "  - %s is %s, %s is %s.\n", argv[0], c0 == '4' ? "temporary (retried)" : c0 == '5' ? "permanent (bounced)" : "not a failure",
                    argv[1], c1 == '4' ? "temporary (retried)" : c1 == '5' ? "permanent (bounced)" : "not a failure");
        else
            fprintf(out, "  - Both are %s.\n", c0 == '4' ? "temporary failures (retried)" : c0 == '5' ? "permanent failures (bounced)" : "of the same class");
        if (strcmp(e[0].title, e[1].title) != 0)
            fprintf(out, "  - %s: %s\n  - %s: %s\n", argv[0], e[0].meaning, argv[1], e[1].meaning);
        else
            fprintf(out, "  - They mean the same thing: %s\n", e[0].meaning);
    }
    return 0;
}
