/* reload.c - the functions a reload runs (see reload.h). */
#include "server/reload.h"

#include <stdlib.h>

struct hook {
    struct hook *next;
    reload_fn *fn;
    void *arg;
};

static struct hook *hooks, **tail = &hooks;

int reload_add(reload_fn *fn, void *arg)
{
    struct hook *h = malloc(sizeof *h);
    if (!h)
        return -1;
    *h = (struct hook){NULL, fn, arg};
    *tail = h;
    tail = &h->next;
    return 0;
}

int reload_run(const struct options *o)
{
    int failed = 0;
    for (struct hook *h = hooks; h; h = h->next)
        failed += h->fn(o, h->arg) < 0;
    return failed;
}

void reload_clear(void)
{
    for (struct hook *h = hooks, *next; h; h = next) {
        next = h->next;
        free(h);
    }
    hooks = NULL;
    tail = &hooks;
}
