/* log.h - one-line log messages to stderr: "natterd: <message>". */
#ifndef NATTER_LOG_H
#define NATTER_LOG_H

void log_init(const char *progname, int verbose);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* As log_info, with ": strerror(errno)" appended. */
void log_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
