/*
 * stress_stop.c: spawns, stops and sends race on shared references. Threads
 * keep replacing actors in a shared table (stop the old, spawn a new one)
 * while other threads send to whatever reference they read, stale or not.
 * Checks that nothing crashes or is touched after free (ASan, TSan), and
 * that accounting closes: every successful send is either handled or
 * counted as a dead letter, and every failed one is counted.
 */
#include <baton/baton.h>

#include "core/tsan.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifdef BT_TSAN
#define ROUNDS 3000
#define SENDS  30000
#else
#define ROUNDS 50000
#define SENDS  500000
#endif
#define TABLE 32

static bt_runtime_t *rt;
static bt_ref_t table[TABLE]; /* atomic loads and stores */
static uint64_t handled, cleanups, spawned;
static uint64_t sent_ok, sent_refused;

static int victim_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    __atomic_add_fetch(&handled, 1, __ATOMIC_RELAXED);
    if (msg->id == 2)
        bt_stop_self(ctx);
    return BT_OK;
}

static void victim_cleanup(bt_ctx_t *ctx, void *state)
{
    __atomic_add_fetch(&cleanups, 1, __ATOMIC_RELAXED);
}

static const bt_actor_type_t victim = {
    .name = "victim", .state_size = 16, .dispatch = victim_dispatch, .cleanup = victim_cleanup};

static void *replacer(void *arg)
{
    uint64_t r = (uintptr_t)arg;
    for (int i = 0; i < ROUNDS; i++) {
        r = r * 6364136223846793005ull + 1;
        uint32_t k = (r >> 33) % TABLE;
        bt_ref_t fresh;
        if (bt_spawn(rt, &victim, NULL, NULL, &fresh) != BT_OK)
            abort();
        __atomic_add_fetch(&spawned, 1, __ATOMIC_RELAXED);
        bt_ref_t old = __atomic_exchange_n(&table[k], fresh, __ATOMIC_ACQ_REL);
        if (old != BT_REF_NONE)
            (void)bt_stop(rt, old); /* may already have stopped itself */
    }
    return NULL;
}

static void *sender(void *arg)
{
    uint64_t r = (uintptr_t)arg;
    uint64_t ok = 0, refused = 0;
    for (int i = 0; i < SENDS; i++) {
        r = r * 6364136223846793005ull + 1;
        bt_ref_t to = __atomic_load_n(&table[(r >> 33) % TABLE], __ATOMIC_ACQUIRE);
        /* One message in 64 makes its receiver stop itself. */
        bt_msg_t *m = bt_msg_new(sizeof(bt_msg_t), (r & 63) == 0 ? 2 : 1);
        int rc = bt_send(rt, to, m);
        if (rc == BT_OK) {
            ok++;
        } else if (rc == BT_ENOACTOR) {
            refused++;
            bt_msg_free(m);
        } else {
            abort();
        }
    }
    __atomic_add_fetch(&sent_ok, ok, __ATOMIC_RELAXED);
    __atomic_add_fetch(&sent_refused, refused, __ATOMIC_RELAXED);
    return NULL;
}

int main(void)
{
    if (bt_runtime_create(&(bt_runtime_config_t){.threads = 2}, &rt) != BT_OK ||
        bt_runtime_start(rt) != BT_OK)
        return 1;
    pthread_t th[4];
    pthread_create(&th[0], NULL, replacer, (void *)1);
    pthread_create(&th[1], NULL, replacer, (void *)2);
    pthread_create(&th[2], NULL, sender, (void *)3);
    pthread_create(&th[3], NULL, sender, (void *)4);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < TABLE; i++)
        if (table[i] != BT_REF_NONE)
            (void)bt_stop(rt, table[i]);
    /* Wait for every actor to be gone, then close the books. */
    bt_runtime_stats_t s;
    for (int waited = 0;; waited++) {
        bt_runtime_stats(rt, &s);
        if (s.actors_live == 0)
            break;
        if (waited > 60000) {
            fprintf(stderr, "timeout: %llu actors still live\n", (unsigned long long)s.actors_live);
            return 1;
        }
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    /* Every actor is gone: the counters are final. */
    uint64_t handled_n = __atomic_load_n(&handled, __ATOMIC_ACQUIRE);
    uint64_t cleanups_n = __atomic_load_n(&cleanups, __ATOMIC_ACQUIRE);
    bool ok = true;
    if (handled_n + (s.dead_letters - sent_refused) != sent_ok) {
        fprintf(stderr, "books do not close: handled %llu + dropped %llu != sent %llu\n",
                (unsigned long long)handled_n, (unsigned long long)(s.dead_letters - sent_refused),
                (unsigned long long)sent_ok);
        ok = false;
    }
    if (cleanups_n != spawned || s.actors_spawned != spawned) {
        fprintf(stderr, "cleanups %llu, spawned %llu (runtime says %llu)\n",
                (unsigned long long)cleanups_n, (unsigned long long)spawned,
                (unsigned long long)s.actors_spawned);
        ok = false;
    }
    if (bt_runtime_shutdown(rt, 10ull * 1000000000u) != BT_OK)
        ok = false;
    printf("stop race: %llu spawned, %llu sends ok, %llu refused, %llu handled\n",
           (unsigned long long)spawned, (unsigned long long)sent_ok,
           (unsigned long long)sent_refused, (unsigned long long)handled_n);
    printf("%d passed, %d failed\n", ok ? 1 : 0, ok ? 0 : 1);
    return ok ? 0 : 1;
}
