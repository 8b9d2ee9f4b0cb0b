/* addr.h - what natterd keeps per client address: how many connections it has
 * open (--max-per-ip, per exact address) and how fast it opens new ones (a token
 * bucket per IPv4 /32 and per IPv6 /64: --connect-rate per minute sustained,
 * --connect-burst at once).
 *
 * An address with no open connection and a full bucket is forgotten, so the
 * tables hold only the addresses that are connected or connected lately (within
 * --connect-burst / --connect-rate minutes). Runs on the loop; no protocol text.
 */
#ifndef NATTER_ADDR_H
#define NATTER_ADDR_H

#include <stdint.h>

struct addr; /* one exact address with open connections */

enum addr_verdict {
    ADDR_OK,
    ADDR_TOO_MANY, /* --max-per-ip connections open from this address */
    ADDR_TOO_FAST, /* its /32 or /64 is out of connect tokens */
    ADDR_NOMEM,
};

struct addr_limits {
    unsigned max_per_ip;  /* open connections per exact address; 0 = unlimited */
    double connect_rate;  /* new connections per minute per /32 or /64; 0 = unlimited */
    double connect_burst; /* new connections at once */
};

void addr_init(void);
/* Forget everything (at shutdown; every addr must have been released). */
void addr_shutdown(void);

/* One more connection from peer ("a.b.c.d:port", "[v6]:port") at now_ms. On
 * ADDR_OK *out is its address, held until addr_release. A refused connection
 * spends no connect token. *log_it (may be NULL) says whether this refusal is
 * worth a log line: the first few of a burst and then every 2^k-th. */
enum addr_verdict addr_take(const char *peer, const struct addr_limits *lim, uint32_t now_ms, struct addr **out,
                            int *log_it);
void addr_release(struct addr *a);
/* The address without its port, as given ("127.0.0.1", "[::1]"). */
const char *addr_text(const struct addr *a);

/* Forget rate buckets that have filled up again (call it every second or so). */
void addr_tick(uint32_t now_ms);
/* How many rate buckets are kept (for tests). */
unsigned addr_buckets(void);

#endif
