/*
 * helpers.h: small synchronisation helpers for runtime tests: a latch that
 * actors signal and the test thread waits on with a deadline.
 */
#ifndef BT_TESTS_HELPERS_H
#define BT_TESTS_HELPERS_H

#include <baton/baton.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t count;
} latch_t;

static inline void latch_init(latch_t *l)
{
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    l->count = 0;
}

static inline void latch_add(latch_t *l, uint64_t n)
{
    pthread_mutex_lock(&l->mu);
    l->count += n;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static inline uint64_t latch_get(latch_t *l)
{
    pthread_mutex_lock(&l->mu);
    uint64_t c = l->count;
    pthread_mutex_unlock(&l->mu);
    return c;
}

/* Waits until the count reaches at least n; false after timeout_ms. */
static inline bool latch_wait(latch_t *l, uint64_t n, long timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    bool ok = true;
    pthread_mutex_lock(&l->mu);
    while (l->count < n) {
        if (pthread_cond_timedwait(&l->cv, &l->mu, &dl) == ETIMEDOUT) {
            ok = l->count >= n;
            break;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return ok;
}

static inline void latch_destroy(latch_t *l)
{
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
}

#define SEC_NS (1000000000ull)

/* Sends a header-only message with the given id; frees it if the send
 * fails. Returns the send's result. */
static inline int send_header(bt_runtime_t *rt, bt_ref_t to, uint32_t id)
{
    bt_msg_t *m = bt_msg_new(sizeof(bt_msg_t), id);
    int rc = m != NULL ? bt_send(rt, to, m) : BT_ENOMEM;
    if (rc != BT_OK)
        bt_msg_free(m);
    return rc;
}

/* Threads of this process, from /proc/self/task. */
static inline int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    if (d != NULL)
        closedir(d);
    return n;
}

/* Polls cond every millisecond for up to timeout_ms; evaluates to whether it
 * became true. */
#define WAIT_UNTIL(cond, timeout_ms)                                                               \
    ({                                                                                             \
        bool ok_ = false;                                                                          \
        for (long i_ = 0; i_ <= (timeout_ms); i_++) {                                              \
            if (cond) {                                                                            \
                ok_ = true;                                                                        \
                break;                                                                             \
            }                                                                                      \
            nanosleep(&(struct timespec){0, 1000000L}, NULL);                                      \
        }                                                                                          \
        ok_;                                                                                       \
    })

#endif
