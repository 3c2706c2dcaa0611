/* queue_cli.h - the `postern queue` sub-commands (list, show, flush, delete, hold, release). */
#ifndef POSTERN_QUEUE_CLI_H
#define POSTERN_QUEUE_CLI_H

#include <stdbool.h>

/* argv holds the words after "queue"; returns the exit status (0 ok, 1 failure, 2 usage). */
int queue_cli_main(const char *spool_dir, int argc, char **argv);

#endif
