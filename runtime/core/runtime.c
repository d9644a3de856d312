/*
 * runtime.c: creating, starting and shutting down a runtime; its counters;
 * error strings.
 */
#define _GNU_SOURCE
#include "core/internal.h"

#include "registry/registry.h"

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

static void runtime_free(bt_runtime_t *rt);

int bt_runtime_create(const bt_runtime_config_t *cfg, bt_runtime_t **out)
{
    if (out == NULL)
        return BT_EINVAL;
    bt_runtime_config_t c = cfg != NULL ? *cfg : (bt_runtime_config_t){0};
    if (c.threads > MAX_THREADS)
        return BT_EINVAL;
    if (c.deterministic) {
        c.threads = 1; /* one pseudo-worker, run by the caller */
    } else if (c.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c.threads = n < 1 ? 1 : n > (long)MAX_THREADS ? MAX_THREADS : (uint32_t)n;
    }
    if (c.batch == 0)
        c.batch = DEFAULT_BATCH;
    if (c.backpressure == 0)
        c.backpressure = BT_BACKPRESSURE_DEFAULT;
    else if (c.backpressure < 4)
        return BT_EINVAL; /* the marker goes at a quarter of it */

    bt_runtime_t *rt = bt_alloc_zeroed(sizeof(*rt));
    if (rt == NULL)
        return BT_ENOMEM;
    static uint64_t next_id;
    rt->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
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
    pthread_mutex_init(&rt->pinned_mutex, NULL);
    if (bt__timers_create(rt) != BT_OK || bt__registry_create(&rt->registry) != BT_OK) {
        runtime_free(rt);
        return BT_ENOMEM;
    }
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
    if (!__atomic_compare_exchange_n(&rt->state, &expected, BT_RT_RUNNING, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return BT_ESTATE;
    if (bt__deterministic(rt))
        return BT_OK; /* no threads: the caller runs the actors */
    int rc = bt__timers_start_thread(rt);
    if (rc == BT_OK && (rc = bt__sched_start(rt)) != BT_OK)
        bt__timers_stop_thread(rt);
    if (rc != BT_OK) {
        __atomic_store_n(&rt->exiting, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&rt->state, BT_RT_CREATED, __ATOMIC_RELEASE);
    }
    return rc;
}

uint64_t bt__clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bt_now(bt_runtime_t *rt)
{
    return bt__deterministic(rt) ? __atomic_load_n(&rt->vnow, __ATOMIC_ACQUIRE) : bt__clock_ns();
}

int bt_runtime_run(bt_runtime_t *rt)
{
    if (rt == NULL || !bt__deterministic(rt))
        return BT_ESTATE;
    bt__sched_run_inline(rt);
    return BT_OK;
}

int bt_runtime_advance(bt_runtime_t *rt, uint64_t ns)
{
    if (rt == NULL || !bt__deterministic(rt))
        return BT_ESTATE;
    uint64_t target = rt->vnow + ns;
    bt__sched_run_inline(rt);
    for (;;) {
        uint64_t next = bt__timers_next_ns(rt);
        if (next > target)
            break;
        if (next > rt->vnow)
            __atomic_store_n(&rt->vnow, next, __ATOMIC_RELEASE);
        bt__timers_fire_due(rt, rt->vnow);
        bt__sched_run_inline(rt);
    }
    __atomic_store_n(&rt->vnow, target, __ATOMIC_RELEASE);
    bt__timers_fire_due(rt, target);
    bt__sched_run_inline(rt);
    return BT_OK;
}

static void runtime_free(bt_runtime_t *rt)
{
    bt__timers_destroy(rt);
    bt__registry_destroy(rt->registry);
    bt__slot_table_destroy(rt);
    pthread_mutex_destroy(&rt->pinned_mutex);
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
    uint64_t deadline = bt__clock_ns() + timeout_ns;
    if (__atomic_load_n(&rt->state, __ATOMIC_ACQUIRE) == BT_RT_CREATED) {
        /* Never started: start, so the actors' cleanups run as usual. */
        int rc = bt_runtime_start(rt);
        if (rc != BT_OK)
            return rc;
    }
    /* Seq-cst store, then the sweep's loads: against the load after the
     * publish in spawn(), so every actor is either seen by the sweep or
     * stops itself (Dekker). A repeated call sweeps again: harmless. */
    __atomic_store_n(&rt->state, BT_RT_STOPPING, __ATOMIC_SEQ_CST);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    bt__stop_all(rt);
    if (bt__deterministic(rt)) {
        /* No threads: run the stops on this thread. */
        for (int round = 0; __atomic_load_n(&rt->live, __ATOMIC_ACQUIRE) != 0; round++) {
            if (round > 0 && bt__clock_ns() >= deadline)
                return BT_ETIMEDOUT;
            bt__sched_run_inline(rt);
        }
        runtime_free(rt);
        return BT_OK;
    }
    /* Wait for every actor to be freed, checking often at first. */
    uint64_t pause = 10000;
    while (__atomic_load_n(&rt->live, __ATOMIC_ACQUIRE) != 0) {
        uint64_t now = bt__clock_ns();
        if (now >= deadline)
            return BT_ETIMEDOUT;
        uint64_t left = deadline - now;
        uint64_t d = pause < left ? pause : left;
        nanosleep(&(struct timespec){.tv_sec = d / 1000000000u, .tv_nsec = d % 1000000000u}, NULL);
        if (pause < 1000000)
            pause *= 2;
    }
    /* Every actor is freed, so every pinned thread is exiting. */
    while (__atomic_load_n(&rt->pinned_live, __ATOMIC_ACQUIRE) != 0) {
        bt__pinned_reap(rt);
        if (__atomic_load_n(&rt->pinned_live, __ATOMIC_ACQUIRE) != 0)
            nanosleep(&(struct timespec){0, 100000}, NULL);
    }
    bt__timers_stop_thread(rt);
    bt__sched_stop(rt);
    runtime_free(rt);
    return BT_OK;
}

void bt_runtime_stats(bt_runtime_t *rt, bt_runtime_stats_t *out)
{
    bt_runtime_stats_t s = {0};
    s.sent = __atomic_load_n(&rt->ext_sent, __ATOMIC_RELAXED);
    s.processed = __atomic_load_n(&rt->ext_processed, __ATOMIC_RELAXED);
    s.late_replies = __atomic_load_n(&rt->late_replies, __ATOMIC_RELAXED);
    s.restarts = __atomic_load_n(&rt->restarts, __ATOMIC_RELAXED);
    s.mutes = __atomic_load_n(&rt->mutes, __ATOMIC_RELAXED);
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
