/* test_dict.c - the open-addressing name table: growth, case, backward-shift removal. */
#include "core/dict.h"

#include "check.h"
#include "core/text.h"

struct item {
    char name[40];
};

static const char *item_key(const void *p) { return ((const struct item *)p)->name; }

/* Every item findable by its name (in a case variant), none of the removed ones. */
static int all_findable(const struct dict *d, struct item *items, const char *removed, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char up[40];
        size_t k = 0;
        for (; items[i].name[k]; k++) {
            char c = items[i].name[k];
            up[k] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
        }
        up[k] = '\0';
        void *got = dict_get(d, up);
        if (removed && removed[i] ? got != NULL : got != &items[i])
            return 0;
    }
    return 1;
}

static void test_basic(void)
{
    struct dict d;
    dict_init(&d, item_key);
    CHECK(dict_get(&d, "alice") == NULL && d.slots == NULL, "an empty dict finds nothing and holds no memory");
    struct item a = {"Alice"}, b = {"bob"};
    CHECK(dict_add(&d, &a) == 0 && dict_add(&d, &b) == 0 && d.count == 2, "dict_add adds items");
    CHECK(dict_get(&d, "Alice") == &a && dict_get(&d, "bob") == &b, "dict_get finds items by name");
    CHECK(dict_get(&d, "aLiCe") == &a && dict_get(&d, "BOB") == &b, "dict_get is ASCII case-insensitive");
    CHECK(dict_get(&d, "carol") == NULL && dict_get(&d, "alic") == NULL, "dict_get of an absent name is NULL");
    dict_remove(&d, &a);
    CHECK(dict_get(&d, "alice") == NULL && dict_get(&d, "bob") == &b && d.count == 1, "dict_remove removes one item");
    struct item absent = {"zed"}, twin = {"BOB"};
    dict_remove(&d, &absent);
    CHECK(d.count == 1 && dict_get(&d, "bob") == &b, "removing an absent item is a no-op");
    dict_remove(&d, &twin);
    CHECK(d.count == 1 && dict_get(&d, "bob") == &b, "removing a different item with the same name is a no-op");
    dict_remove(&d, &b);
    CHECK(d.count == 0 && dict_get(&d, "bob") == NULL, "the dict can be emptied");
    dict_free(&d);
    CHECK(d.slots == NULL && d.cap == 0 && d.count == 0, "dict_free releases the table");

    struct dict e;
    dict_init(&e, item_key);
    dict_remove(&e, &a);
    CHECK(e.count == 0, "removing from a never-used dict is a no-op");
    dict_free(&e);
}

static void test_growth(void)
{
    enum { N = 5000 };
    struct item *items = calloc(N, sizeof *items);
    char *removed = calloc(N, 1);
    struct dict d;
    dict_init(&d, item_key);
    int add_ok = 1, load_ok = 1;
    for (size_t i = 0; i < N; i++) {
        snprintf(items[i].name, sizeof items[i].name, "user%zu", i * 7919);
        add_ok &= dict_add(&d, &items[i]) == 0;
        load_ok &= d.count * 2 <= d.cap && (d.cap & (d.cap - 1)) == 0;
    }
    CHECK(add_ok && d.count == N, "5000 adds succeed");
    CHECK(load_ok, "the table grows in powers of two and stays at most half full");
    CHECK(all_findable(&d, items, NULL, N), "every item is found after many growths");
    for (size_t i = 0; i < N; i += 3) {
        dict_remove(&d, &items[i]);
        removed[i] = 1;
    }
    CHECK(all_findable(&d, items, removed, N), "removing every third item keeps the rest findable");
    for (size_t i = 0; i < N; i++)
        if (!removed[i]) {
            dict_remove(&d, &items[i]);
            removed[i] = 1;
        }
    size_t used = 0;
    for (size_t i = 0; i < d.cap; i++)
        used += d.slots[i] != NULL;
    CHECK(d.count == 0 && used == 0, "removing everything leaves no slot in use");
    dict_free(&d);
    free(items);
    free(removed);
}

/* N names whose hashes share their low 12 bits: in any table of up to 4096
 * slots they have one home slot, so they form one probe run of N. Found by
 * trying names (the hash is keyed, so collisions must be searched for). */
static void test_collisions(void)
{
    enum { N = 512, M = 500, LOW = 0xFFF };
    struct item *items = calloc(N + M, sizeof *items);
    char *removed = calloc(N + M, 1);
    unsigned long want = text_ihash("c0") & LOW;
    size_t found = 0;
    for (unsigned long t = 0; found < N && t < 100000000UL; t++) {
        snprintf(items[found].name, sizeof items[found].name, "c%lu", t);
        found += (text_ihash(items[found].name) & LOW) == want;
    }
    /* Other names, whose home slots land inside (and after) the long run. */
    for (size_t i = 0; i < M; i++)
        snprintf(items[N + i].name, sizeof items[N + i].name, "n%zu", i);
    int same = found == N;
    for (size_t i = 1; i < N; i++)
        same &= (text_ihash(items[i].name) & LOW) == want;
    CHECK(same, "the colliding names really share one home slot");

    struct dict d;
    dict_init(&d, item_key);
    int add_ok = 1;
    for (size_t i = 0; i < N + M; i++)
        add_ok &= dict_add(&d, &items[i]) == 0;
    CHECK(add_ok && all_findable(&d, items, NULL, N + M), "colliding names are all found");

    /* Remove from the front, the middle and the end of the run. */
    for (size_t i = 0; i < N; i += 5) {
        dict_remove(&d, &items[i]);
        removed[i] = 1;
    }
    for (size_t i = N; i < N + M; i += 4) {
        dict_remove(&d, &items[i]);
        removed[i] = 1;
    }
    CHECK(all_findable(&d, items, removed, N + M),
          "removals inside a long probe run keep every other item findable (backward shift)");
    size_t used = 0;
    for (size_t i = 0; i < d.cap; i++)
        used += d.slots[i] != NULL;
    CHECK(used == d.count, "count matches the slots in use after removals");

    /* Re-add the removed ones, then empty it in a different order. */
    int readd_ok = 1;
    for (size_t i = 0; i < N + M; i++)
        if (removed[i]) {
            readd_ok &= dict_add(&d, &items[i]) == 0;
            removed[i] = 0;
        }
    CHECK(readd_ok && all_findable(&d, items, NULL, N + M), "re-added items are found again");
    for (size_t i = N + M; i-- > 0;) {
        dict_remove(&d, &items[i]);
        removed[i] = 1;
        if (i % 512 == 0 && !all_findable(&d, items, removed, N + M))
            break;
    }
    CHECK(d.count == 0, "removing in reverse order empties the dict, everything findable on the way");
    dict_free(&d);
    free(items);
    free(removed);
}

int main(void)
{
    test_basic();
    test_growth();
    test_collisions();
    return check_done();
}
