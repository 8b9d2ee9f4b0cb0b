/* fuzz_nolog.h - natterd logs every connect, rename and disconnect: the fuzz
 * targets that run the server replace core/log.c with these, to keep the
 * fuzzer's output readable. Include it once, in the target's own file. */
#ifndef NATTER_FUZZ_NOLOG_H
#define NATTER_FUZZ_NOLOG_H

#include "core/log.h"

void log_init(const char *progname, int verbose) { (void)progname, (void)verbose; }
void log_set_verbose(int verbose) { (void)verbose; }
void log_syslog(int on) { (void)on; }
void log_msg(enum log_level lv, const char *fmt, ...) { (void)lv, (void)fmt; }
void log_errno(const char *fmt, ...) { (void)fmt; }

#endif
