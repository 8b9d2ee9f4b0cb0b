/* log.h - one-line log messages with a level: to stderr (with a timestamp, or in
 * the journal's "<N>" form when stderr is the journal's stream), or to syslog. */
#ifndef NATTER_LOG_H
#define NATTER_LOG_H

enum log_level { LOG_LV_ERROR = 3, LOG_LV_WARN = 4, LOG_LV_INFO = 6, LOG_LV_DEBUG = 7 }; /* syslog's numbers */

/* Where and how: progname names the program; debug messages only when verbose.
 * Under systemd (JOURNAL_STREAM names stderr) lines are "<6>message": the
 * journal adds the time and keeps the level. Otherwise "2026-12-02T14:35:05.123Z
 * natterd: info: message". log_syslog switches to syslog(3), facility daemon. */
void log_init(const char *progname, int verbose);
void log_set_verbose(int verbose);
void log_syslog(int on);

void log_msg(enum log_level lv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_LV_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LV_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LV_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LV_DEBUG, __VA_ARGS__)
/* An error, with ": strerror(errno)" appended. */
void log_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
