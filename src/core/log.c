/* log.c - one-line log messages to stderr. The server logs events (connects,
 * disconnects, limits hit), never individual chat messages. */
#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *prog = "natter";
static int verbosity;

void log_init(const char *progname, int verbose)
{
    prog = progname;
    verbosity = verbose;
}

static void vlog(const char *fmt, va_list ap, const char *suffix)
{
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    /* One fprintf per line so concurrent writers (tests capture stderr) never interleave. */
    fprintf(stderr, "%s: %s%s%s\n", prog, line, suffix ? ": " : "", suffix ? suffix : "");
}

void log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap, NULL);
    va_end(ap);
}

void log_debug(const char *fmt, ...)
{
    if (!verbosity)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap, NULL);
    va_end(ap);
}

void log_errno(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap, strerror(saved));
    va_end(ap);
    errno = saved;
}
