/* log.c - one-line log messages (see log.h). The server logs events (connects,
 * names, disconnects, limits hit), never what people say. */
#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "natter";
static int verbosity, to_syslog, journal;

/* systemd sets JOURNAL_STREAM=DEV:INODE for a service whose stderr is the journal;
 * a program started from that service with stderr elsewhere must not believe it. */
static int stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *progname, int verbose)
{
    prog = progname;
    verbosity = verbose;
    journal = stderr_is_journal();
}

void log_set_verbose(int verbose)
{
    verbosity = verbose;
}

void log_syslog(int on)
{
    if (on && !to_syslog)
        openlog(prog, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    else if (!on && to_syslog)
        closelog();
    to_syslog = on;
}

static const char *level_word(enum log_level lv)
{
    switch (lv) {
    case LOG_LV_ERROR: return "error";
    case LOG_LV_WARN: return "warning";
    case LOG_LV_INFO: return "info";
    case LOG_LV_DEBUG: return "debug";
    }
    return "info";
}

static void vlog(enum log_level lv, const char *fmt, va_list ap, const char *suffix)
{
    if (lv == LOG_LV_DEBUG && !verbosity)
        return;
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    const char *sep = suffix ? ": " : "";
    suffix = suffix ? suffix : "";
    if (to_syslog) {
        syslog((int)lv, "%s%s%s", line, sep, suffix);
        return;
    }
    /* One fprintf per line so concurrent writers (tests capture stderr) never interleave. */
    if (journal) {
        fprintf(stderr, "<%d>%s%s%s\n", (int)lv, line, sep, suffix);
        return;
    }
    struct timespec ts;
    struct tm tm;
    char stamp[32] = "";
    clock_gettime(CLOCK_REALTIME, &ts);
    if (gmtime_r(&ts.tv_sec, &tm))
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03dZ %s: %s: %s%s%s\n", stamp, (int)(ts.tv_nsec / 1000000), prog, level_word(lv), line,
            sep, suffix);
}

void log_msg(enum log_level lv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(lv, fmt, ap, NULL);
    va_end(ap);
}

void log_errno(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    vlog(LOG_LV_ERROR, fmt, ap, strerror(saved));
    va_end(ap);
    errno = saved;
}
