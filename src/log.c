/* log.c - line-oriented logging to stderr. One write(2) per line so lines from the loop and the
 * disk threads never interleave; lines are cut at 2 KiB. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int min_level = LOG_INFO; /* a reload may change it while disk threads log */
static const char *const level_names[] = {"debug", "info", "warn", "error"};
static atomic_ullong logged[4]; /* lines per level, written or not (metrics: warnings, errors) */

void log_set_level(enum log_level level)
{
    atomic_store_explicit(&min_level, (int)level, memory_order_relaxed);
}

bool log_enabled(enum log_level level)
{
    return (int)level >= atomic_load_explicit(&min_level, memory_order_relaxed);
}

int log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

unsigned long long log_count(enum log_level level)
{
    return atomic_load_explicit(&logged[level], memory_order_relaxed);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    atomic_fetch_add_explicit(&logged[level], 1, memory_order_relaxed);
    if (!log_enabled(level))
        return;
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ postern[%ld] %s ", (long)tv.tv_usec / 1000,
                          (long)getpid(), level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

/* log_safe and log_quotable: control bytes become '?', and so does a space when the value is
 * bare; in a quoted value a '"' becomes '\''. */
static char *log_clean(char *out, size_t outsz, const char *s, bool quoted)
{
    size_t i = 0;
    for (; s && *s && i + 1 < outsz; s++, i++) {
        bool bad = (unsigned char)*s < 0x20 || *s == 0x7f || (*s == ' ' && !quoted);
        out[i] = (char)(bad ? '?' : quoted && *s == '"' ? '\'' : *s);
    }
    out[i] = '\0';
    return out;
}

char *log_quotable(char *out, size_t outsz, const char *s)
{
    return log_clean(out, outsz, s, true);
}

char *log_safe(char *out, size_t outsz, const char *s)
{
    return log_clean(out, outsz, s, false);
}
