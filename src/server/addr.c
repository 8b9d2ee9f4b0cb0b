/* addr.c - per-address connection counts and connect-rate buckets (see addr.h). */
#include "server/addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dict.h"

/* An exact address with connections open: --max-per-ip. */
struct addr {
    char text[48];
    unsigned n;
};

/* A /32 or /64 that connected lately: the connect-rate bucket. */
struct bucket {
    char key[24];    /* "4:a.b.c.d" or "6:" and the /64 in hex */
    float tokens;
    uint32_t last_ms;
    uint32_t refused; /* in a row, for log_it */
    float rate, burst; /* the limits it was made under (per listener) */
};

static struct dict addrs, buckets;

static const char *addr_key(const void *p) { return ((const struct addr *)p)->text; }
static const char *bucket_key(const void *p) { return ((const struct bucket *)p)->key; }

void addr_init(void)
{
    dict_init(&addrs, addr_key);
    dict_init(&buckets, bucket_key);
}

void addr_shutdown(void)
{
    for (size_t i = 0; i < buckets.cap; i++)
        free(buckets.slots[i]);
    for (size_t i = 0; i < addrs.cap; i++)
        free(addrs.slots[i]);
    dict_free(&buckets);
    dict_free(&addrs);
}

const char *addr_text(const struct addr *a) { return a->text; }
unsigned addr_buckets(void) { return (unsigned)buckets.count; }

/* The bucket key of an address text ("127.0.0.1", "[2001:db8::1]"): IPv4 (and
 * IPv4-mapped IPv6) by the whole address, IPv6 by its first 64 bits. */
static void bucket_key_of(const char *text, char *key, size_t len)
{
    char host[48];
    snprintf(host, sizeof host, "%s", text[0] == '[' ? text + 1 : text);
    char *close = strchr(host, ']');
    if (close)
        *close = '\0';
    char *zone = strchr(host, '%');
    if (zone)
        *zone = '\0';
    unsigned char b[16];
    if (inet_pton(AF_INET, host, b) == 1) {
        snprintf(key, len, "4:%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
    } else if (inet_pton(AF_INET6, host, b) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(b, mapped, sizeof mapped) == 0)
            snprintf(key, len, "4:%u.%u.%u.%u", b[12], b[13], b[14], b[15]);
        else
            snprintf(key, len, "6:%02x%02x%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5], b[6],
                     b[7]);
    } else {
        snprintf(key, len, "?:%.20s", host); /* not an address we know: itself */
    }
}

static void refill(struct bucket *bk, uint32_t now)
{
    double mins = (double)(uint32_t)(now - bk->last_ms) / 60000.0;
    double t = bk->tokens + mins * bk->rate;
    bk->tokens = (float)(t > bk->burst ? bk->burst : t);
    bk->last_ms = now;
}

/* Spend a connect token of text's /32 or /64: 1 if it had one. */
static int rate_take(const char *text, const struct addr_limits *lim, uint32_t now, int *log_it)
{
    char key[sizeof ((struct bucket *)0)->key];
    bucket_key_of(text, key, sizeof key);
    struct bucket *bk = dict_get(&buckets, key);
    if (!bk) {
        if (!(bk = calloc(1, sizeof *bk)))
            return 1; /* out of memory for the bucket: let it in rather than refuse everyone */
        memcpy(bk->key, key, sizeof key);
        bk->tokens = bk->burst = (float)lim->connect_burst;
        bk->rate = (float)lim->connect_rate;
        bk->last_ms = now;
        if (dict_add(&buckets, bk) < 0) {
            free(bk);
            return 1;
        }
    }
    refill(bk, now);
    if (bk->tokens >= 1) {
        bk->tokens -= 1;
        bk->refused = 0;
        return 1;
    }
    bk->refused++;
    if (log_it)
        *log_it = bk->refused <= 3 || (bk->refused & (bk->refused - 1)) == 0;
    return 0;
}

enum addr_verdict addr_take(const char *peer, const struct addr_limits *lim, uint32_t now_ms, struct addr **out,
                            int *log_it)
{
    char text[sizeof ((struct addr *)0)->text];
    snprintf(text, sizeof text, "%s", peer);
    char *colon = strrchr(text, ':'); /* drop ":port" ("[v6]:port" keeps its brackets) */
    if (colon && (text[0] != '[' || colon > strchr(text, ']')))
        *colon = '\0';
    if (log_it)
        *log_it = 1;
    struct addr *a = dict_get(&addrs, text);
    if (a && lim->max_per_ip && a->n >= lim->max_per_ip)
        return ADDR_TOO_MANY;
    if (lim->connect_rate > 0 && !rate_take(text, lim, now_ms, log_it))
        return ADDR_TOO_FAST;
    if (!a) {
        if (!(a = calloc(1, sizeof *a)))
            return ADDR_NOMEM;
        memcpy(a->text, text, sizeof text);
        if (dict_add(&addrs, a) < 0) {
            free(a);
            return ADDR_NOMEM;
        }
    }
    a->n++;
    *out = a;
    return ADDR_OK;
}

void addr_release(struct addr *a)
{
    if (a && --a->n == 0) {
        dict_remove(&addrs, a);
        free(a);
    }
}

void addr_tick(uint32_t now_ms)
{
    /* Removing from an open-addressing table moves later entries back: collect
     * first, then remove. A few at a time is enough: what is left waits a tick. */
    struct bucket *full[256];
    size_t n = 0;
    for (size_t i = 0; i < buckets.cap && n < sizeof full / sizeof full[0]; i++) {
        struct bucket *bk = buckets.slots[i];
        if (!bk)
            continue;
        refill(bk, now_ms);
        if (bk->tokens >= bk->burst)
            full[n++] = bk;
    }
    for (size_t i = 0; i < n; i++) {
        dict_remove(&buckets, full[i]);
        free(full[i]);
    }
}
