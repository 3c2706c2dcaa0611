/* A plain main() for the libFuzzer targets: runs LLVMFuzzerTestOneInput on each file named on the
 * command line, once, so that a corpus can be replayed through a build without libFuzzer and its
 * sanitizers - under valgrind memcheck, which sees reads of uninitialised memory that ASan does
 * not (`make fuzz-valgrind`). Exits 1 when a file cannot be read. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static uint8_t *read_whole(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL &&
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = n > 0 ? (size_t)n : 0;
    return buf;
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        size_t size;
        uint8_t *data = read_whole(argv[i], &size);
        if (!data) {
            fprintf(stderr, "replay: cannot read %s\n", argv[i]);
            failed = 1;
            continue;
        }
        LLVMFuzzerTestOneInput(data, size);
        free(data);
    }
    return failed;
}
