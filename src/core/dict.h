/* dict.h - a set of pointers found by a case-insensitive name (users by name,
 * rooms by name). Open addressing with linear probing: one pointer per slot, so a
 * table of 20,000 users costs about 256 KiB, not an allocation per entry. */
#ifndef NATTER_DICT_H
#define NATTER_DICT_H

#include <stddef.h>

typedef const char *dict_key_fn(const void *item);

struct dict {
    void **slots;
    size_t cap;   /* a power of two, or 0 before the first insert */
    size_t count;
    dict_key_fn *key;
};

void dict_init(struct dict *d, dict_key_fn *key);
void dict_free(struct dict *d);
void *dict_get(const struct dict *d, const char *name);
/* Insert item (its name must not be present yet). Returns 0, or -1 if out of memory. */
int dict_add(struct dict *d, void *item);
/* Remove item, found by its current name. */
void dict_remove(struct dict *d, const void *item);

#endif
