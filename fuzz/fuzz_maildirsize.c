/* libFuzzer target: a mailbox's maildirsize file (maildirsize.c), which anyone with access to the
 * mailbox - its owner over a shell, an IMAP server - may have written. The input is the file; the
 * mailbox holds one 300-octet message. Invariants: never out of bounds (ASan), the read succeeds,
 * and the file is either trusted as it is (left unchanged, and read again to the same usage) or
 * rebuilt to exactly the mailbox's true usage. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildirsize.h"

#define LIMIT ((struct quota_limit){5000, 0})

static char box[64], file[96];

/* At exit: the mailbox goes (no directory left in /dev/shm per run). */
static void remove_box(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/new/1.M1P1.host,S=300", box);
    unlink(path);
    unlink(file);
    const char *sub[] = {"tmp", "new", "cur"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", box, sub[i]);
        rmdir(path);
    }
    rmdir(box);
}

static void make_box(void)
{
    snprintf(box, sizeof box, "%s/fuzz-maildirsize.XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(box))
        abort();
    const char *sub[] = {"tmp", "new", "cur"};
    char path[128];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", box, sub[i]);
        if (mkdir(path, 0700) < 0)
            abort();
    }
    snprintf(path, sizeof path, "%s/new/1.M1P1.host,S=300", box);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    if (fd < 0)
        abort();
    close(fd);
    snprintf(file, sizeof file, "%s/maildirsize", box);
    atexit(remove_box);
}

static size_t slurp(char *buf, size_t cap)
{
    int fd = open(file, O_RDONLY);
    if (fd < 0)
        abort();
    ssize_t n = read(fd, buf, cap);
    close(fd);
    if (n < 0)
        abort();
    return (size_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char after[MAILDIRSIZE_REBUILD_SIZE + 64];
    if (!*box)
        make_box();
    if (size > MAILDIRSIZE_REBUILD_SIZE + 16)
        return 0;
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    close(fd);
    struct quota_usage u, again;
    char err[300];
    if (maildirsize_read(box, LIMIT, &u, err, sizeof err) < 0)
        abort();
    size_t n = slurp(after, sizeof after);
    if (n == size && memcmp(after, data, size) == 0) { /* trusted as it is */
        if (maildirsize_read(box, LIMIT, &again, err, sizeof err) < 0 || again.octets != u.octets ||
            again.messages != u.messages)
            abort();
        return 0;
    }
    static const char rebuilt[] = "5000S\n300 1\n";
    if (n != sizeof rebuilt - 1 || memcmp(after, rebuilt, n) != 0 || u.octets != 300 || u.messages != 1)
        abort();
    return 0;
}
