/* check.h - the whole unit-test "framework": one line of output per check.
 *
 *   CHECK(cond, "name")              ok - name   /   not ok - name: cond (file:line)
 *   CHECK_INT(got, want, "name")     also prints both values on failure
 *   CHECK_STR(got, want, "name")     strings (NULL-safe)
 *   CHECK_MEM(got, glen, want, wlen, "name")
 *   return check_done();             at the end of main: exit status 1 if anything failed
 *
 * tests/conftest.py counts every "ok - " / "not ok - " line as one test, so a check
 * stands for one behaviour: loops should accumulate into a flag and CHECK once.
 * Output is flushed after every line, so a crash (ASan) still shows what passed.
 */
#ifndef NATTER_CHECK_H
#define NATTER_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;
static int check_total;

static inline int check_report(int ok, const char *name, const char *file, int line, const char *why)
{
    check_total++;
    if (ok) {
        printf("ok - %s\n", name);
    } else {
        check_failures++;
        printf("not ok - %s: %s (%s:%d)\n", name, why, file, line);
    }
    fflush(stdout);
    return ok;
}

#define CHECK(cond, name) check_report(!!(cond), (name), __FILE__, __LINE__, #cond)

#define CHECK_INT(got, want, name)                                                          \
    do {                                                                                    \
        long long check_g_ = (long long)(got), check_w_ = (long long)(want);                \
        char check_why_[160];                                                               \
        snprintf(check_why_, sizeof check_why_, "%s is %lld, expected %lld", #got, check_g_, \
                 check_w_);                                                                 \
        check_report(check_g_ == check_w_, (name), __FILE__, __LINE__, check_why_);         \
    } while (0)

#define CHECK_STR(got, want, name)                                                           \
    do {                                                                                     \
        const char *check_g_ = (got), *check_w_ = (want);                                    \
        int check_ok_ = check_g_ && check_w_ ? strcmp(check_g_, check_w_) == 0               \
                                             : check_g_ == check_w_;                         \
        char check_why_[600];                                                                \
        snprintf(check_why_, sizeof check_why_, "%s is \"%.250s\", expected \"%.250s\"", #got, \
                 check_g_ ? check_g_ : "(null)", check_w_ ? check_w_ : "(null)");            \
        check_report(check_ok_, (name), __FILE__, __LINE__, check_why_);                     \
    } while (0)

#define CHECK_MEM(got, glen, want, wlen, name)                                               \
    do {                                                                                     \
        size_t check_gl_ = (size_t)(glen), check_wl_ = (size_t)(wlen);                       \
        char check_why_[160];                                                                \
        snprintf(check_why_, sizeof check_why_, "%s differs (%zu bytes, expected %zu)", #got,  \
                 check_gl_, check_wl_);                                                      \
        check_report(check_gl_ == check_wl_ && memcmp((got), (want), check_gl_) == 0, (name), \
                     __FILE__, __LINE__, check_why_);                                        \
    } while (0)

static inline int check_done(void)
{
    printf("# %d checks, %d failed\n", check_total, check_failures);
    fflush(stdout);
    return check_failures ? 1 : 0;
}

#endif
