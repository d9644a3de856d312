/*
 * runtime.c: creating, starting and shutting down a runtime; its counters;
 * error strings.
 */
#define _GNU_SOURCE
#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS   256u
#define DEFAULT_BATCH 64u

const char *bt_strerror(int err)
{
    switch (err) {
    case BT_OK:
        return "success";
#define BT_ERR_CASE_(name, value, text)                                                            \
    case BT_##name:                                                                                \
        return text;
        BT_ERRNO_MAP(BT_ERR_CASE_)
#undef BT_ERR_CASE_
    default:
        return "unknown error";
    }
}

void bt__assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "baton: internal invariant violated: %s (%s:%d)\n", cond, file, line);
    abort();
}

int bt_runtime_create(const bt_runtime_config_t *cfg, bt_runtime_t **out)
{
    if (out == NULL)
        return BT_EINVAL;
    bt_runtime_config_t c = cfg != NULL ? *cfg : (bt_runtime_config_t){0};
    if (c.threads > MAX_THREADS)
        return BT_EINVAL;
    if (c.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c.threads = n < 1 ? 1 : n > (long)MAX_THREADS ? MAX_THREADS : (uint32_t)n;
    }
    if (c.batch == 0)
        c.batch = DEFAULT_BATCH;

    bt_runtime_t *rt = bt_alloc_zeroed(sizeof(*rt));
    if (rt == NULL)
        return BT_ENOMEM;
    rt->cfg = c;
    rt->nworkers = c.threads;
    rt->state = BT_RT_CREATED;
    rt->slot_free = BT_SLOT_NONE;
    rt->workers = bt_alloc_zeroed(sizeof(bt_worker_t) * c.threads);
    rt->idle_stack = bt_alloc_zeroed(sizeof(uint32_t) * c.threads);
    if (rt->workers == NULL || rt->idle_stack == NULL) {
        bt_free(rt->workers, sizeof(bt_worker_t) * c.threads);
        bt_free(rt->idle_stack, sizeof(uint32_t) * c.threads);
        bt_free(rt, sizeof(*rt));
        return BT_ENOMEM;
    }
    pthread_mutex_init(&rt->slot_mutex, NULL);
    pthread_mutex_init(&rt->gq_mutex, NULL);
    pthread_mutex_init(&rt->idle_mutex, NULL);
    for (uint32_t i = 0; i < c.threads; i++) {
        bt_worker_t *w = &rt->workers[i];
        w->rt = rt;
        w->index = i;
        w->rng = 0x9E3779B97F4A7C15ull * (i + 1);
    }
    *out = rt;
    return BT_OK;
}

uint32_t bt_runtime_threads(const bt_runtime_t *rt)
{
    return rt->nworkers;
}

int bt_runtime_start(bt_runtime_t *rt)
{
    if (rt == NULL)
        return BT_EINVAL;
    uint32_t expected = BT_RT_CREATED;
    if (!__atomic_compare_exchange_n(&rt->state, &expected, BT_RT_RUNNING, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return BT_ESTATE;
    int rc = bt__sched_start(rt);
    if (rc != BT_OK) {
        __atomic_store_n(&rt->exiting, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&rt->state, BT_RT_CREATED, __ATOMIC_RELEASE);
    }
    return rc;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void runtime_free(bt_runtime_t *rt)
{
    bt__slot_table_destroy(rt);
    pthread_mutex_destroy(&rt->slot_mutex);
    pthread_mutex_destroy(&rt->gq_mutex);
    pthread_mutex_destroy(&rt->idle_mutex);
    bt_free(rt->idle_stack, sizeof(uint32_t) * rt->nworkers);
    bt_free(rt->workers, sizeof(bt_worker_t) * rt->nworkers);
    bt_free(rt, sizeof(*rt));
}

int bt_runtime_shutdown(bt_runtime_t *rt, uint64_t timeout_ns)
{
    if (rt == NULL)
        return BT_EINVAL;
    if (bt__tls_worker != NULL && bt__tls_worker->rt == rt)
        return BT_ESTATE; /* an actor cannot wait for itself to stop */
    uint64_t deadline = now_ns() + timeout_ns;
    uint32_t state = __atomic_load_n(&rt->state, __ATOMIC_ACQUIRE);
    if (state == BT_RT_CREATED) {
        /* Never started: start, so the actors' cleanups run as usual. */
        int rc = bt_runtime_start(rt);
        if (rc != BT_OK)
            return rc;
        state = BT_RT_RUNNING;
    }
    if (state == BT_RT_RUNNING) {
        __atomic_store_n(&rt->state, BT_RT_STOPPING, __ATOMIC_RELEASE);
        bt__stop_all(rt);
    }
    /* Wait for every actor to be freed, checking often at first. */
    uint64_t pause = 10000;
    while (__atomic_load_n(&rt->live, __ATOMIC_ACQUIRE) != 0) {
        uint64_t now = now_ns();
        if (now >= deadline)
            return BT_ETIMEDOUT;
        /* Actors spawned by cleanups after the first sweep: stop them too. */
        bt__stop_all(rt);
        uint64_t left = deadline - now;
        uint64_t d = pause < left ? pause : left;
        nanosleep(&(struct timespec){.tv_sec = d / 1000000000u, .tv_nsec = d % 1000000000u}, NULL);
        if (pause < 1000000)
            pause *= 2;
    }
    bt__sched_stop(rt);
    runtime_free(rt);
    return BT_OK;
}

void bt_runtime_stats(bt_runtime_t *rt, bt_runtime_stats_t *out)
{
    bt_runtime_stats_t s = {0};
    s.sent = __atomic_load_n(&rt->ext_sent, __ATOMIC_RELAXED);
    s.dead_letters = __atomic_load_n(&rt->ext_dead_letters, __ATOMIC_RELAXED);
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        bt_worker_t *w = &rt->workers[i];
        s.sent += __atomic_load_n(&w->sent, __ATOMIC_RELAXED);
        s.processed += __atomic_load_n(&w->processed, __ATOMIC_RELAXED);
        s.dead_letters += __atomic_load_n(&w->dead_letters, __ATOMIC_RELAXED);
    }
    s.actors_spawned = __atomic_load_n(&rt->spawned, __ATOMIC_RELAXED);
    s.actors_live = __atomic_load_n(&rt->live, __ATOMIC_ACQUIRE); /* pairs with the free */
    *out = s;
}
