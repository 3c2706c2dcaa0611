/* libFuzzer target: the configuration parser, fed as a file through a memfd. Invariants: no crash,
 * no leak; a failed load always says why. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("conf", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct config cfg;
    struct config_errors errs = {0};
    bool ok = config_load(path, &cfg, &errs);
    if (!ok && errs.count == 0)
        abort();
    config_errors_free(&errs);
    config_free(&cfg);
    close(fd);
    return 0;
}
