/* operauth.h - server operators' passwords (--oper NAME:HASH): Argon2id hashes
 * made by `natterd --hash-password` (libsodium's crypto_pwhash_str), checked off
 * the event loop.
 *
 * A check costs tens of milliseconds and tens of megabytes on purpose, so it
 * runs on one worker thread: oper_submit queues it (at most OPER_QUEUE_MAX
 * waiting; more are refused at once, never queued), the worker verifies, and
 * the answer comes back through an eventfd the loop watches; `done` then runs
 * on the loop with the connection's id, never its pointer (it may be gone:
 * conn_by_id). An address that failed waits before its next try, twice as
 * long after each failure (OPER_WAIT_MAX_MS at most); every failure is logged.
 */
#ifndef NATTER_OPERAUTH_H
#define NATTER_OPERAUTH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct loop;

#define OPER_MAX 32          /* --oper entries */
#define OPER_QUEUE_MAX 8     /* checks waiting for the worker */
#define OPER_WAIT_FIRST_MS 1000 /* after a failure, before the next try from that connection */
#define OPER_WAIT_MAX_MS 60000
#define OPER_PASSWORD_MAX 128 /* bytes of a password */

/* Read the --oper entries ("NAME:HASH", HASH as --hash-password prints it), at
 * start, before anything else is set up. 0, or -1 with a message in err. */
int oper_configure(const char *const *entries, int n, char *err, size_t errlen);
/* Start the worker and watch its answers on l (only if there are entries). */
int oper_start(struct loop *l, char *err, size_t errlen);
void oper_teardown(void);

/* done(conn_id, name, ok) on the loop, once per queued check. */
typedef void oper_done_fn(uint64_t conn_id, const char *name, int ok);

enum oper_status {
    OPER_QUEUED,   /* done will be called */
    OPER_NONE,     /* no --oper entries: nobody can be an operator */
    OPER_BUSY,     /* too many checks waiting: try again */
    OPER_WAIT,     /* this connection failed lately: *wait_ms before the next try */
    OPER_NOMEM,
};
enum oper_status oper_submit(uint64_t conn_id, const char *peer, const char *name, const char *password,
                             oper_done_fn *done, long *wait_ms);
/* For /stats, which only operators see: the server's resident memory in KiB
 * (from /proc/self/statm), or -1. */
long oper_memory_kib(void);

/* natterd --hash-password: a password from in (one line; asked for on a
 * terminal without echo), its hash to out. Exit status: 0, or 1 with a message. */
int oper_hash_password(FILE *in, FILE *out);

#endif
