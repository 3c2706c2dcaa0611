/* libFuzzer target: what a milter sends back (milter.c) - packets of any length and command, custom
 * replies, header edits with any index, name and value - read as the session reads them and the
 * edits made on a message text. Invariants: never out of bounds (ASan); a packet taken has the
 * length it said; a custom reply's text is printable ASCII; after every edit the message's body is
 * unchanged at the end of the text, and its header section holds no empty line and no line that
 * is neither a field nor a continuation. */
#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "milter.h"

static const char BODY[] = "\nbody line\n";

/* abort()s unless text is a header section of fields and continuations, then BODY. */
static void check_text(struct evbuffer *text)
{
    size_t n = evbuffer_get_length(text);
    char *s = malloc(n + 1);
    if (!s)
        return;
    evbuffer_copyout(text, s, n);
    s[n] = '\0';
    size_t blen = sizeof BODY - 1;
    if (n < blen || memcmp(s + n - blen, BODY, blen) != 0)
        abort();
    for (size_t at = 0; at < n - blen;) {
        const char *line = s + at, *nl = memchr(line, '\n', n - blen - at);
        size_t len = nl ? (size_t)(nl - line) : n - blen - at;
        bool field = len && memchr(line, ':', len) && line[0] != ' ' && line[0] != '\t';
        bool cont = len && (line[0] == ' ' || line[0] == '\t');
        if (!field && !cont)
            abort();
        at += len + 1;
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct evbuffer *in = evbuffer_new(), *text = evbuffer_new();
    if (!in || !text)
        abort();
    evbuffer_add(in, data, size);
    evbuffer_add_printf(text, "From: a@b.example\nSubject: hi\n there\nX-Tag: 1\n%s", BODY);
    for (;;) {
        char cmd, *d;
        size_t len;
        int got = milter_packet_take(in, &cmd, &d, &len);
        if (got <= 0)
            break;
        uint32_t index = 0, v, a, p;
        const char *name, *value;
        char reply[100];
        int klass;
        if (cmd == 'y' && milter_reply_parse(d, len, &klass, reply, sizeof reply)) {
            for (const char *c = reply; *c; c++)
                if (*c < ' ' || *c >= 0x7f)
                    abort();
        } else if (cmd == 'O') {
            (void)milter_optneg_parse(d, len, &v, &a, &p);
        } else if ((cmd == 'h' || cmd == 'i' || cmd == 'm') &&
                   milter_header_args(d, len, cmd != 'h', &index, &name, &value)) {
            milter_header_edit(text, cmd, index, name, value);
            check_text(text);
        }
        free(d);
    }
    evbuffer_free(in);
    evbuffer_free(text);
    return 0;
}
