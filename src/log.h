/* log.h - one line per event, `key=value` pairs, to stderr. Never pass a password here. */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the lowest level that is written. */
void log_set_level(enum log_level level);
/* Parses "debug", "info", "warn", "error"; returns -1 when unknown. */
int log_level_parse(const char *name);

/* True when lines of this level are written: check it before costly work to build a line. */
bool log_enabled(enum log_level level);

/* How many lines of this level were logged since start-up, written or below log_level. */
unsigned long long log_count(enum log_level level);

/* Writes "<time> postern[pid] <level> <message>" to stderr; message is printf-formatted. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Copies s into out (size outsz) so it is safe as a bare log value: control bytes and spaces
 * become '?', the result is cut to fit. Returns out. */
char *log_safe(char *out, size_t outsz, const char *s);

/* The same for a value the log line puts in double quotes (detail="..."): spaces stay, control
 * bytes become '?' and a '"' becomes '\'', so that a peer's text cannot end the value and forge
 * key=value pairs after it. Returns out. */
char *log_quotable(char *out, size_t outsz, const char *s);

#endif
