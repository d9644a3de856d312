/*
 * stress_pinned.c: pinned actors under ThreadSanitizer: many come and go,
 * each on its own thread, taking messages from outside threads and from
 * ordinary actors, while threads are reaped by later spawns and by
 * shutdown. Checks every message is handled and every thread is joined.
 */
#include <baton/baton.h>

#include "core/tsan.h"

#include "../helpers.h"

#include <pthread.h>
#include <stdio.h>
#include <time.h>

#ifdef BT_TSAN
#define ROUNDS 40
#else
#define ROUNDS 200
#endif
#define PER_ROUND 4
#define MESSAGES  200

static uint64_t handled;

static int pinned_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    uint64_t *count = state;
    (*count)++; /* the actor's own state: only its thread touches it */
    __atomic_add_fetch(&handled, 1, __ATOMIC_RELAXED);
    return BT_OK;
}

static const bt_actor_type_t pinned_type = {
    .name = "pinned", .state_size = sizeof(uint64_t), .dispatch = pinned_dispatch};

int main(void)
{
    /* One empty cycle first: sanitizers start helper threads of their own
     * on the first thread creation, which must not count as ours. */
    bt_runtime_t *rt;
    if (bt_runtime_create(NULL, &rt) != BT_OK || bt_runtime_start(rt) != BT_OK ||
        bt_runtime_shutdown(rt, 5000000000ull) != BT_OK)
        return 1;
    int before = thread_count();
    if (bt_runtime_create(&(bt_runtime_config_t){.threads = 2}, &rt) != BT_OK ||
        bt_runtime_start(rt) != BT_OK)
        return 1;
    const bt_spawn_opts_t opts = {.flags = BT_SPAWN_PINNED};
    uint64_t sent = 0;
    for (int r = 0; r < ROUNDS; r++) {
        bt_ref_t p[PER_ROUND];
        for (int i = 0; i < PER_ROUND; i++)
            if (bt_spawn(rt, &pinned_type, NULL, &opts, &p[i]) != BT_OK)
                return 1;
        for (int m = 0; m < MESSAGES; m++)
            for (int i = 0; i < PER_ROUND; i++)
                if (bt_send(rt, p[i], bt_msg_new(sizeof(bt_msg_t), 1)) == BT_OK)
                    sent++;
        /* Every other round, leave the actors for shutdown to stop. */
        if (r % 2 == 0)
            for (int i = 0; i < PER_ROUND; i++)
                (void)bt_stop(rt, p[i]);
    }
    for (int waited = 0; __atomic_load_n(&handled, __ATOMIC_ACQUIRE) < sent; waited++) {
        if (waited > 30000) {
            fprintf(stderr, "timeout: %llu of %llu handled\n", (unsigned long long)handled,
                    (unsigned long long)sent);
            return 1;
        }
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    int rc = bt_runtime_shutdown(rt, 30ull * 1000000000u);
    /* pthread_join() returns a moment before the kernel drops a thread from
     * /proc/self/task: give it up to a second. */
    int after = thread_count();
    for (int i = 0; i < 1000 && after != before; i++) {
        nanosleep(&(struct timespec){0, 1000000}, NULL);
        after = thread_count();
    }
    bool ok = rc == BT_OK && after == before;
    printf("pinned: %d actors, %llu messages handled, threads %d -> %d\n", ROUNDS * PER_ROUND,
           (unsigned long long)handled, before, after);
    printf("%d passed, %d failed\n", ok ? 1 : 0, ok ? 0 : 1);
    return ok ? 0 : 1;
}
