/* num.h - numbers from text, strictly, by one rule for every program's options:
 * digits only (a decimal point where a fraction is allowed), no sign, space,
 * exponent, "nan" or "inf", and within a range. */
#ifndef NATTER_NUM_H
#define NATTER_NUM_H

/* A whole number from min to max: 0 and *out set, or -1. */
int num_whole(const char *s, long long min, long long max, long long *out);
/* "12", "0.5", "2.25": digits with at most one '.' between digits, from min to
 * max: 0 and *out set, or -1. */
int num_decimal(const char *s, double min, double max, double *out);
/* v in plain figures, no exponent: "1000000000", "0.001". buf: 40 bytes. */
const char *num_plain(double v, char *buf);

#endif
