/* text.h - what may reach a terminal: UTF-8 repair, control stripping, name rules. */
#ifndef NATTER_TEXT_H
#define NATTER_TEXT_H

#include <stddef.h>

/* Copy src (len bytes) to dst, replacing invalid UTF-8 (bad bytes, overlong forms,
 * surrogates, > U+10FFFF) with U+FFFD and dropping C0 controls except TAB, DEL, C1
 * controls and bidi embedding/override/isolate controls (U+202A-202E, U+2066-2069).
 * dst must hold at least 3*len bytes (each bad byte can become a 3-byte U+FFFD) + 1.
 * Returns the length written; dst is NUL-terminated. */
size_t text_sanitize(char *dst, const char *src, size_t len);

/* Number of code points in valid UTF-8 s. */
size_t text_utf8_len(const char *s);

/* Names: the rules of core/names.h (NFC, no invisible characters, one script,
 * ...), up to max_chars code points. Returns 1 if valid. */
int text_valid_name(const char *s, size_t max_chars);

/* Rooms: '#' then 1..32 code points of ASCII letters, digits, '_', '-', '.', or any
 * non-ASCII character. Returns 1 if valid. */
int text_valid_room(const char *s);

/* ASCII case-insensitive equality and a hash that agrees with it (SipHash-2-4 of
 * the lowercased bytes). The key is all zeros until text_hash_key sets a secret
 * one; a server must, so that nobody can choose names that collide. */
int text_ieq(const char *a, const char *b);
unsigned long text_ihash(const char *s);
void text_hash_key(const unsigned char key[16]);

/* IRC formatting (bold ^B, colour ^C with its "fg,bg" digits, hex colour ^D
 * with its digits, reset ^O, monospace ^Q, reverse ^V, italics ^], strike ^^,
 * underline ^_) and CTCP's ^A, taken out for terminals. dst holds strlen(src) + 1
 * bytes (it may be src). Returns the length written. */
size_t text_strip_format(char *dst, const char *src);
/* 1 if s holds any byte below 0x20 other than TAB (formatting to strip). */
int text_has_controls(const char *s);

#endif
