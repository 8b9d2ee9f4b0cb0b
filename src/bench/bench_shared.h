/* bench_shared.h - natter-bench: the run's settings, the client layout, and the memory the
 * parent shares with its worker processes (bench_shared.c).
 *
 * Every process computes the same layout from the settings alone: client g (0..N-1)
 * is member g % C of room g / C (C = clients per room), and the first S members of
 * each room are its senders. A worker owns a contiguous range of clients, split on
 * room boundaries when it can, so a sender's designated receiver (window mode) is
 * usually in its own thread. Nothing but counters crosses processes: they meet in one
 * MAP_SHARED mapping made before fork.
 */
#ifndef NATTER_BENCH_SHARED_H
#define NATTER_BENCH_SHARED_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "bench/bench_hist.h"

#define BENCH_MAX_SRC 64

struct bench_cfg {
    char host[256], port[16];
    struct sockaddr_storage addr; /* the server, resolved once */
    socklen_t addrlen;
    struct sockaddr_storage src[BENCH_MAX_SRC]; /* --source-ips */
    int nsrc;
    uint32_t clients, rooms, room_size, senders; /* senders per room */
    uint32_t window;
    double rate;     /* messages/s in total; 0 = window mode */
    double duration; /* seconds of sending, when messages == 0 */
    uint64_t messages; /* per sender; 0 = use duration */
    uint32_t size;   /* minimum message text length */
    double idle, drain, setup_timeout;
    uint32_t procs, threads, connect_batch;
    char prefix[16];
    int server_pid, json, verbose;
    int tls; /* --tls: every connection over TLS (not verified: a load generator trusts anyone) */
    long expect_refused;
    /* IRC: every irc_every-th client (0: none, 1: all) registers and speaks IRC,
     * on irc_port (default: port; the plain port hands IRC clients over). */
    uint32_t irc_every;
    char irc_port[16];
    struct sockaddr_storage irc_addr;
    socklen_t irc_addrlen;
    /* --ws: the IRC clients speak IRC over WebSocket (masked frames, text.ircv3.net)
     * to /ws on irc_port, natterd's HTTP port. */
    int ws;
};

enum phase { PH_SETUP, PH_HOLD, PH_RUN, PH_STOP, PH_DONE, PH_ABORT };

/* What one receiving thread found; the parent adds them up. */
struct bench_result {
    uint64_t delivered;  /* first receptions */
    uint64_t expected;   /* receptions the senders' final counts call for */
    uint64_t missing, duplicated, reordered;
    uint64_t corrupt;    /* unparsable, misrouted, echoed or never-sent messages */
    uint64_t server_errors; /* "!! " lines after setup */
    uint64_t first_rx_ns, last_rx_ns;
    char first_problem[200];
    struct hist lat;
};

struct bench_shared {
    _Atomic int phase;
    _Atomic uint64_t start_ns;
    _Atomic uint32_t ready, refused, failed, lost;
    _Atomic uint32_t stopped; /* sending parties that published their final counts */
    _Atomic uint32_t done;    /* receiving threads that wrote their result */
    uint32_t send_parties, recv_parties;
    char first_failure[200]; /* the first connection failure, for the report */
    _Atomic int failure_claimed;
    /* followed by: _Atomic uint64_t sent[rooms * senders]; struct bench_result res[recv_parties] */
};

static inline uint32_t bench_room_of(const struct bench_cfg *c, uint32_t g) { return g / c->room_size; }
static inline uint32_t bench_member_of(const struct bench_cfg *c, uint32_t g) { return g % c->room_size; }
static inline int bench_is_sender(const struct bench_cfg *c, uint32_t g) { return bench_member_of(c, g) < c->senders; }
static inline uint32_t bench_sender_index(const struct bench_cfg *c, uint32_t g)
{
    return bench_room_of(c, g) * c->senders + bench_member_of(c, g);
}

static inline int bench_is_irc(const struct bench_cfg *c, uint32_t g)
{
    return c->irc_every && g % c->irc_every == 0;
}

_Atomic uint64_t *bench_sent(struct bench_shared *sh);
struct bench_result *bench_results(struct bench_shared *sh, const struct bench_cfg *c);
size_t bench_shared_size(const struct bench_cfg *c);

/* Split clients [lo,hi) into parts; piece i is [*a,*b). Boundaries fall on room
 * boundaries when the range holds at least one whole room per part. */
void bench_split(const struct bench_cfg *c, uint32_t lo, uint32_t hi, uint32_t parts, uint32_t i,
                 uint32_t *a, uint32_t *b);

uint64_t bench_now_ns(void);
/* Record the first connection-level failure message (any process, any thread). */
void bench_note_failure(struct bench_shared *sh, const char *msg);

#endif
