/* Unit tests for write_evbuffers: every byte of every buffer reaches the file, in order, whether
 * the buffers are empty, small, or made of more segments than one writev takes (so that the
 * gathering has to write in the middle of a buffer and go on filling). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "fileio.h"

/* Writes the buffers to a fresh temporary file and returns its whole content (malloc'ed). */
static char *written(struct evbuffer *const *bufs, int n, size_t *len)
{
    char path[] = "/tmp/postern-fileio-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write_evbuffers(fd, bufs, n), 0);
    off_t size = lseek(fd, 0, SEEK_END);
    char *out = malloc((size_t)size + 1);
    assert_non_null(out);
    assert_int_equal(pread(fd, out, (size_t)size, 0), size);
    out[size] = '\0';
    close(fd);
    *len = (size_t)size;
    return out;
}

/* A buffer of many separate segments: each piece is added by reference, so it stays its own
 * chain (the bytes live in expect, which outlives the buffer). */
static struct evbuffer *segmented(const char *tag, int segments, char *expect, size_t *at)
{
    struct evbuffer *b = evbuffer_new();
    for (int i = 0; i < segments; i++) {
        int n = sprintf(expect + *at, "%s%d;", tag, i);
        evbuffer_add_reference(b, expect + *at, (size_t)n, NULL, NULL);
        *at += (size_t)n;
    }
    return b;
}

static void test_small_and_empty_buffers_in_order(void **state)
{
    (void)state;
    struct evbuffer *a = evbuffer_new(), *empty = evbuffer_new(), *c = evbuffer_new();
    evbuffer_add_printf(a, "Header: 1\n\n");
    evbuffer_add_printf(c, "body\n");
    struct evbuffer *const parts[3] = {a, empty, c};
    size_t len;
    char *got = written(parts, 3, &len);
    assert_string_equal(got, "Header: 1\n\nbody\n");
    assert_int_equal(evbuffer_get_length(a), 11); /* left intact */
    free(got);
    evbuffer_free(a);
    evbuffer_free(empty);
    evbuffer_free(c);
}

static void test_more_segments_than_one_writev(void **state)
{
    (void)state;
    static char expect[1 << 20];
    size_t at = 0;
    struct evbuffer *parts[3];
    parts[0] = segmented("h", 50, expect, &at);   /* less than one batch */
    parts[1] = segmented("b", 1000, expect, &at); /* many batches, split mid-buffer */
    parts[2] = segmented("e", 70, expect, &at);
    int chains = evbuffer_peek(parts[1], -1, NULL, NULL, 0);
    assert_true(chains > 100); /* the test means nothing if the pieces were merged */
    size_t len;
    char *got = written((struct evbuffer *const *)parts, 3, &len);
    assert_int_equal(len, at);
    assert_memory_equal(got, expect, at);
    free(got);
    for (int i = 0; i < 3; i++)
        evbuffer_free(parts[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_and_empty_buffers_in_order),
        cmocka_unit_test(test_more_segments_than_one_writev),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
