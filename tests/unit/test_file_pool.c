/* Unit tests for the file pool: files are unnamed (no link) and on the pool's file system, the
 * stock refills when half empty, an empty stock or a file system without O_TMPFILE gives -1 (the
 * caller then makes its own file), and a pool is never handed out for another device. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "file_pool.h"

/* Takes one file, waiting up to 5 s for the refill thread to make it. */
static int take_waiting(struct file_pool *p)
{
    for (int i = 0; i < 500; i++) {
        int fd = file_pool_take(p);
        if (fd >= 0)
            return fd;
        struct timespec ten_ms = {0, 10 * 1000 * 1000};
        nanosleep(&ten_ms, NULL);
    }
    return -1;
}

static void test_files_are_unnamed_and_writable(void **state)
{
    (void)state;
    char dir[] = "/tmp/postern-pool-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct stat dst;
    assert_int_equal(stat(dir, &dst), 0);
    struct file_pool *p = file_pool_new(dir, 8);
    assert_non_null(p);
    assert_true(file_pool_serves(p, dst.st_dev));
    assert_false(file_pool_serves(p, dst.st_dev + 1));
    int fds[8];
    for (int i = 0; i < 8; i++) { /* more than half: the refill runs meanwhile */
        fds[i] = take_waiting(p);
        assert_true(fds[i] >= 0);
        struct stat fst;
        assert_int_equal(fstat(fds[i], &fst), 0);
        assert_int_equal(fst.st_nlink, 0); /* no name anywhere */
        assert_int_equal(fst.st_dev, dst.st_dev);
        assert_int_equal(fst.st_size, 0);
        assert_int_equal(fst.st_mode & 0777, 0600);
        assert_int_equal(write(fds[i], "x", 1), 1);
    }
    for (int i = 0; i < 8; i++)
        for (int k = i + 1; k < 8; k++)
            assert_int_not_equal(fds[i], fds[k]);
    for (int i = 0; i < 8; i++)
        close(fds[i]);
    file_pool_free(p); /* closes the files still in stock */
    assert_int_equal(rmdir(dir), 0); /* nothing was ever named in it */
}

static void test_no_pool(void **state)
{
    (void)state;
    assert_null(file_pool_new("/tmp", 0));
    assert_null(file_pool_new("/nonexistent/postern", 4));
    assert_int_equal(file_pool_take(NULL), -1);
    assert_false(file_pool_serves(NULL, 0));
    file_pool_free(NULL);
}

static void test_file_system_without_unnamed_files(void **state)
{
    (void)state;
    struct file_pool *p = file_pool_new("/proc", 4); /* procfs: O_TMPFILE is refused */
    assert_non_null(p);
    struct timespec fifty_ms = {0, 50 * 1000 * 1000};
    nanosleep(&fifty_ms, NULL);
    assert_int_equal(file_pool_take(p), -1);
    file_pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_are_unnamed_and_writable),
        cmocka_unit_test(test_no_pool),
        cmocka_unit_test(test_file_system_without_unnamed_files),
    };
    return cmocka_run_group_tests_name("file_pool", tests, NULL, NULL);
}
