/* dict.c - open-addressing set of named items (see dict.h). */
#include "core/dict.h"

#include <stdlib.h>

#include "core/text.h"

void dict_init(struct dict *d, dict_key_fn *key)
{
    *d = (struct dict){.key = key};
}

void dict_free(struct dict *d)
{
    free(d->slots);
    d->slots = NULL;
    d->cap = d->count = 0;
}

static size_t find_slot(const struct dict *d, const char *name)
{
    size_t mask = d->cap - 1;
    size_t i = text_ihash(name) & mask;
    while (d->slots[i] && !text_ieq(d->key(d->slots[i]), name))
        i = (i + 1) & mask;
    return i;
}

void *dict_get(const struct dict *d, const char *name)
{
    return d->cap ? d->slots[find_slot(d, name)] : NULL;
}

static int grow(struct dict *d)
{
    size_t cap = d->cap ? d->cap * 2 : 16;
    void **old = d->slots;
    size_t oldcap = d->cap;
    d->slots = calloc(cap, sizeof *d->slots);
    if (!d->slots) {
        d->slots = old;
        return -1;
    }
    d->cap = cap;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i])
            d->slots[find_slot(d, d->key(old[i]))] = old[i];
    free(old);
    return 0;
}

int dict_add(struct dict *d, void *item)
{
    /* Keep the load under 1/2 so probes stay short. */
    if ((d->count + 1) * 2 > d->cap && grow(d) < 0)
        return -1;
    d->slots[find_slot(d, d->key(item))] = item;
    d->count++;
    return 0;
}

void dict_remove(struct dict *d, const void *item)
{
    if (!d->cap)
        return;
    size_t mask = d->cap - 1;
    size_t i = find_slot(d, d->key(item));
    if (d->slots[i] != item)
        return;
    d->slots[i] = NULL;
    d->count--;
    /* Backward-shift deletion, one pass: an item after the hole moves into it if
     * the hole lies on its probe path (between its home slot and where it is),
     * so lookups never stop early at a hole (no tombstones needed). */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; d->slots[j]; j = (j + 1) & mask) {
        size_t home = text_ihash(d->key(d->slots[j])) & mask;
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            d->slots[hole] = d->slots[j];
            d->slots[j] = NULL;
            hole = j;
        }
    }
}
