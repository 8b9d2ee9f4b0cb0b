/* num.c - numbers from text, strictly (see num.h). strtod and strtoll alone
 * take "nan", "1e3", " 5" and "+5"; here only figures are figures. */
#include "core/num.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int digits(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

int num_whole(const char *s, long long min, long long max, long long *out)
{
    if (!s || !digits(s, strlen(s)))
        return -1;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int num_decimal(const char *s, double min, double max, double *out)
{
    if (!s)
        return -1;
    const char *dot = strchr(s, '.');
    size_t len = strlen(s);
    if (dot ? !digits(s, (size_t)(dot - s)) || !digits(dot + 1, len - (size_t)(dot - s) - 1) : !digits(s, len))
        return -1;
    if (len > 30)
        return -1; /* more figures than a double holds or anyone means */
    double v = strtod(s, NULL);
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

const char *num_plain(double v, char *buf)
{
    snprintf(buf, 40, "%.6f", v);
    char *dot = strchr(buf, '.');
    if (dot) {
        char *end = buf + strlen(buf) - 1;
        while (end > dot && *end == '0')
            *end-- = '\0';
        if (end == dot)
            *end = '\0';
    }
    return buf;
}
