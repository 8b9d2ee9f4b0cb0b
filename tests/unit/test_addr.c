/* test_addr.c - per-address connection counts and connect-rate buckets
 * (server/addr.c): --max-per-ip per exact address, --connect-rate and
 * --connect-burst per IPv4 /32 and IPv6 /64, and forgetting idle buckets. */
#include "server/addr.h"

#include "check.h"

static enum addr_verdict take(const char *peer, const struct addr_limits *l, uint32_t now, struct addr **out)
{
    return addr_take(peer, l, now, out, NULL);
}

static void test_max_per_ip(void)
{
    addr_init();
    struct addr_limits l = {.max_per_ip = 2};
    struct addr *a, *b, *c = NULL, *d;
    CHECK(take("10.0.0.1:1000", &l, 0, &a) == ADDR_OK && take("10.0.0.1:1001", &l, 0, &b) == ADDR_OK && a == b,
          "connections from one address share its count");
    CHECK_STR(addr_text(a), "10.0.0.1", "the address is kept without its port");
    CHECK(take("10.0.0.1:1002", &l, 0, &c) == ADDR_TOO_MANY, "one more than max_per_ip is refused");
    CHECK(take("[2001:db8::1]:5", &l, 0, &d) == ADDR_OK && strcmp(addr_text(d), "[2001:db8::1]") == 0,
          "an IPv6 peer keeps its brackets");
    addr_release(a);
    CHECK(take("10.0.0.1:1003", &l, 0, &c) == ADDR_OK, "a released connection frees its slot");
    addr_release(b);
    addr_release(c);
    addr_release(d);
    addr_shutdown();
}

static void test_connect_rate(void)
{
    addr_init();
    struct addr_limits l = {.connect_rate = 6, .connect_burst = 3};
    struct addr *a[8];
    int ok = 1;
    for (int i = 0; i < 3; i++)
        ok &= take("10.0.0.1:1", &l, 0, &a[i]) == ADDR_OK;
    CHECK(ok, "a burst of connect_burst connections is let in");
    int log_it = 0;
    CHECK(addr_take("10.0.0.1:2", &l, 0, &a[3], &log_it) == ADDR_TOO_FAST && log_it,
          "the next one is refused, and the first refusals are worth a log line");
    CHECK(take("10.0.0.2:1", &l, 0, &a[3]) == ADDR_OK, "another IPv4 address has its own bucket");
    CHECK(take("10.0.0.1:3", &l, 9000, &a[4]) == ADDR_TOO_FAST, "9 s later: not a token yet (6 a minute)");
    CHECK(take("10.0.0.1:3", &l, 10000, &a[4]) == ADDR_OK, "10 s later: one token back");
    for (int i = 0; i < 5; i++)
        addr_release(a[i]);
    CHECK(take("[2001:db8:0:1::5]:1", &l, 0, &a[0]) == ADDR_OK && take("[2001:db8:0:1::6]:1", &l, 0, &a[1]) == ADDR_OK &&
              take("[2001:db8:0:1:ffff::7]:1", &l, 0, &a[2]) == ADDR_OK &&
              take("[2001:db8:0:1::8]:1", &l, 0, &a[3]) == ADDR_TOO_FAST,
          "IPv6 addresses share their /64's bucket");
    CHECK(take("[2001:db8:0:2::5]:1", &l, 0, &a[3]) == ADDR_OK, "another /64 has its own");
    /* 10.0.0.2 spent one of its 3 above */
    CHECK(take("[::ffff:10.0.0.2]:1", &l, 0, &a[4]) == ADDR_OK && take("[::ffff:10.0.0.2]:2", &l, 0, &a[5]) == ADDR_OK &&
              take("[::ffff:10.0.0.2]:3", &l, 0, &a[6]) == ADDR_TOO_FAST,
          "an IPv4-mapped address counts as its IPv4 address");
    for (int i = 0; i < 6; i++)
        addr_release(a[i]);
    addr_tick(30000);
    CHECK(addr_buckets() > 0, "buckets still filling are kept");
    addr_tick(60000);
    CHECK_INT(addr_buckets(), 0, "full buckets are forgotten");
    unsigned refused = 0, logged = 0;
    for (int i = 0; i < 1000; i++) {
        struct addr *x;
        int lg = 0;
        if (addr_take("10.9.9.9:1", &l, 60000, &x, &lg) == ADDR_OK)
            addr_release(x);
        else
            refused++, logged += (unsigned)lg;
    }
    CHECK(refused == 997 && logged < 20, "a loop of connects is refused, and logged a few times, not every time");
    addr_shutdown();
}

int main(void)
{
    test_max_per_ip();
    test_connect_rate();
    return check_done();
}
