/* operauth.c - server operators' passwords, checked on a worker thread (see operauth.h). */
#include "server/operauth.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <termios.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"

struct oper {
    char name[64];
    char hash[crypto_pwhash_STRBYTES];
};

struct job {
    uint64_t conn_id;
    oper_done_fn *done;
    char addr[64];
    char name[64];
    char password[OPER_PASSWORD_MAX + 1];
    const char *hash; /* an oper's, or the dummy's: unknown names cost the same */
    int known;        /* the name is an --oper's */
    int ok;
};

/* Failures by address: a small table, the stalest entry replaced. */
#define FAIL_SLOTS 64
struct failure {
    char addr[64];
    unsigned count;
    long long until_ms;
};

static struct {
    struct loop *loop;
    struct oper opers[OPER_MAX];
    int nopers;
    char dummy[crypto_pwhash_STRBYTES];
    int efd;
    pthread_t thread;
    int running, stopping;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct job queue[OPER_QUEUE_MAX]; /* waiting, ring */
    int qhead, qlen;
    int busy;                         /* the worker holds one */
    struct job done[OPER_QUEUE_MAX + 1]; /* answered, not yet handed to the loop */
    int ndone;
    struct failure fails[FAIL_SLOTS];
} g = {.efd = -1, .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static void *worker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g.lock);
    for (;;) {
        while (!g.qlen && !g.stopping)
            pthread_cond_wait(&g.wake, &g.lock);
        if (g.stopping)
            break;
        struct job j = g.queue[g.qhead];
        sodium_memzero(g.queue[g.qhead].password, sizeof j.password);
        g.qhead = (g.qhead + 1) % OPER_QUEUE_MAX;
        g.qlen--;
        g.busy = 1;
        pthread_mutex_unlock(&g.lock);
        j.ok = crypto_pwhash_str_verify(j.hash, j.password, strlen(j.password)) == 0 && j.hash != g.dummy;
        sodium_memzero(j.password, sizeof j.password);
        pthread_mutex_lock(&g.lock);
        g.busy = 0;
        g.done[g.ndone++] = j;
        uint64_t one = 1;
        if (write(g.efd, &one, sizeof one) < 0) { /* the counter cannot overflow here */
        }
    }
    pthread_mutex_unlock(&g.lock);
    return NULL;
}

static struct failure *failure_of(const char *addr, int make)
{
    struct failure *stalest = &g.fails[0];
    for (int i = 0; i < FAIL_SLOTS; i++) {
        if (g.fails[i].addr[0] && strcmp(g.fails[i].addr, addr) == 0)
            return &g.fails[i];
        if (g.fails[i].until_ms < stalest->until_ms)
            stalest = &g.fails[i];
    }
    if (!make)
        return NULL;
    *stalest = (struct failure){0};
    snprintf(stalest->addr, sizeof stalest->addr, "%s", addr);
    return stalest;
}

/* On the loop: hand the answers to their callers. */
static void on_answers(struct loop *l, int fd, int mask, void *data)
{
    (void)l, (void)mask, (void)data;
    uint64_t n;
    if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
        log_errno("operator checks: eventfd");
    struct job got[OPER_QUEUE_MAX + 1];
    pthread_mutex_lock(&g.lock);
    int k = g.ndone;
    memcpy(got, g.done, (size_t)k * sizeof got[0]);
    g.ndone = 0;
    pthread_mutex_unlock(&g.lock);
    for (int i = 0; i < k; i++) {
        struct failure *f = failure_of(got[i].addr, !got[i].ok);
        if (got[i].ok) {
            if (f)
                *f = (struct failure){0};
            log_info("oper %s: %s is a server operator", got[i].addr, got[i].name);
        } else {
            f->count++;
            long long wait = OPER_WAIT_FIRST_MS;
            for (unsigned c = 1; c < f->count && wait < OPER_WAIT_MAX_MS; c++)
                wait *= 2;
            if (wait > OPER_WAIT_MAX_MS)
                wait = OPER_WAIT_MAX_MS;
            f->until_ms = loop_now_ms() + wait;
            log_info("oper %s: failed attempt as %s (%u in a row; next try in %lld ms)", got[i].addr,
                     got[i].known ? got[i].name : "an unknown name", f->count, wait); /* no user text in logs */
        }
        got[i].done(got[i].conn_id, got[i].name, got[i].ok);
    }
}

int oper_configure(const char *const *entries, int n, char *err, size_t errlen)
{
    if (n == 0)
        return 0;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "--oper: libsodium would not start");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const char *colon = strchr(entries[i], ':');
        size_t ln = colon ? (size_t)(colon - entries[i]) : 0;
        if (i >= OPER_MAX || !colon || ln == 0 || ln >= sizeof g.opers[0].name ||
            strlen(colon + 1) >= crypto_pwhash_STRBYTES || strncmp(colon + 1, "$argon2id$", 10) != 0) {
            snprintf(err, errlen, "--oper: '%.40s' is not NAME:HASH (a hash from natterd --hash-password)", entries[i]);
            return -1;
        }
        memcpy(g.opers[i].name, entries[i], ln);
        g.opers[i].name[ln] = '\0';
        snprintf(g.opers[i].hash, sizeof g.opers[i].hash, "%s", colon + 1);
    }
    g.nopers = n;
    return 0;
}

int oper_start(struct loop *l, char *err, size_t errlen)
{
    g.loop = l;
    if (!g.nopers)
        return 0;
    /* A hash nobody knows the password of, for unknown names: they cost the same. */
    unsigned char random[32];
    randombytes_buf(random, sizeof random);
    if (crypto_pwhash_str(g.dummy, (const char *)random, sizeof random, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        snprintf(err, errlen, "--oper: out of memory hashing");
        return -1;
    }
    g.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (g.efd < 0 || loop_watch(l, g.efd, LOOP_READ, on_answers, NULL) < 0) {
        snprintf(err, errlen, "--oper: eventfd: %s", strerror(errno));
        return -1;
    }
    if (pthread_create(&g.thread, NULL, worker, NULL) != 0) {
        snprintf(err, errlen, "--oper: cannot start the worker thread");
        return -1;
    }
    g.running = 1;
    return 0;
}

void oper_teardown(void)
{
    if (g.running) {
        pthread_mutex_lock(&g.lock);
        g.stopping = 1;
        pthread_cond_signal(&g.wake);
        pthread_mutex_unlock(&g.lock);
        pthread_join(g.thread, NULL);
        g.running = 0;
    }
    if (g.efd >= 0) {
        loop_unwatch(g.loop, g.efd);
        close(g.efd);
        g.efd = -1;
    }
    sodium_memzero(g.queue, sizeof g.queue);
}

enum oper_status oper_submit(uint64_t conn_id, const char *peer, const char *name, const char *password,
                             oper_done_fn *done, long *wait_ms)
{
    if (!g.nopers)
        return OPER_NONE;
    char addr[64];
    snprintf(addr, sizeof addr, "%s", peer);
    char *colon = strrchr(addr, ':'); /* "address:port" -> address */
    if (colon)
        *colon = '\0';
    struct failure *f = failure_of(addr, 0);
    long long now = loop_now_ms();
    if (f && f->until_ms > now) {
        *wait_ms = (long)(f->until_ms - now);
        return OPER_WAIT;
    }
    const char *hash = g.dummy;
    for (int i = 0; i < g.nopers; i++)
        if (strcmp(g.opers[i].name, name) == 0)
            hash = g.opers[i].hash;
    pthread_mutex_lock(&g.lock);
    if (g.qlen + g.busy + g.ndone >= OPER_QUEUE_MAX) {
        pthread_mutex_unlock(&g.lock);
        return OPER_BUSY;
    }
    struct job *j = &g.queue[(g.qhead + g.qlen) % OPER_QUEUE_MAX];
    *j = (struct job){.conn_id = conn_id, .done = done, .hash = hash, .known = hash != g.dummy};
    snprintf(j->addr, sizeof j->addr, "%s", addr);
    snprintf(j->name, sizeof j->name, "%s", name);
    snprintf(j->password, sizeof j->password, "%s", password);
    g.qlen++;
    pthread_cond_signal(&g.wake);
    pthread_mutex_unlock(&g.lock);
    return OPER_QUEUED;
}

int oper_hash_password(FILE *in, FILE *out)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "natterd: libsodium would not start\n");
        return 1;
    }
    int tty = isatty(fileno(in));
    struct termios old, quiet;
    if (tty) {
        fprintf(stderr, "password: ");
        tcgetattr(fileno(in), &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fileno(in), TCSANOW, &quiet);
    }
    char pw[OPER_PASSWORD_MAX + 2];
    char *got = fgets(pw, sizeof pw, in);
    if (tty) {
        tcsetattr(fileno(in), TCSANOW, &old);
        fprintf(stderr, "\n");
    }
    size_t n = got ? strcspn(pw, "\r\n") : 0;
    if (!got || n == 0 || (n == strlen(pw) && n > OPER_PASSWORD_MAX)) {
        fprintf(stderr, "natterd: --hash-password: give a password of 1 to %d bytes on one line\n",
                OPER_PASSWORD_MAX);
        sodium_memzero(pw, sizeof pw);
        return 1;
    }
    pw[n] = '\0';
    char hash[crypto_pwhash_STRBYTES];
    int rc = crypto_pwhash_str(hash, pw, n, crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE);
    sodium_memzero(pw, sizeof pw);
    if (rc != 0) {
        fprintf(stderr, "natterd: --hash-password: out of memory\n");
        return 1;
    }
    fprintf(out, "%s\n", hash);
    return 0;
}

long oper_memory_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size, resident = -1;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}
