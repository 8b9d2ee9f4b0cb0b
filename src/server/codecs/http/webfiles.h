/* webfiles.h - the browser page's files, embedded in natterd when it is built
 * (web/embed.sh writes webfiles.c from the .html, .css, .js, .svg and .ico
 * files of web/). */
#ifndef NATTER_WEBFILES_H
#define NATTER_WEBFILES_H

#include <stddef.h>

struct webfile {
    const char *path;  /* "/index.html" */
    const char *type;  /* its Content-Type */
    const char *etag;  /* a strong ETag, quoted: "\"crc-size\"" */
    const unsigned char *data;
    size_t len;
    const unsigned char *gz; /* gzip -9n of it, or NULL when that is no smaller */
    size_t gzlen;
};

/* Ended by an entry whose path is NULL. */
extern const struct webfile webfiles[];

#endif
