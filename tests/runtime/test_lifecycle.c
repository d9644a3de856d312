/* test_lifecycle.c: stopping actors with messages in flight, and runtime
 * shutdown: cleanups, undelivered messages, threads and timeouts. Leaks are
 * caught by LeakSanitizer in the ASan build, which runs this same suite. */
#include "helpers.h"

#include <criterion/criterion.h>
#include <string.h>

enum { MSG_WORK = 1, MSG_BLOCK };

typedef struct {
    bt_msg_t hdr;
    char payload[48];
} work_msg;

typedef struct {
    latch_t handled;
    latch_t cleanups;
    latch_t entered;  /* MSG_BLOCK has started */
    uint32_t release; /* MSG_BLOCK spins until this is set */
} counts_t;

static int counted_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    *(const void **)state = arg;
    return BT_OK;
}

static int counted_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    counts_t *c = *(counts_t **)state;
    if (msg->id == MSG_BLOCK) {
        latch_add(&c->entered, 1);
        while (!__atomic_load_n(&c->release, __ATOMIC_ACQUIRE))
            nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    latch_add(&c->handled, 1);
    return BT_OK;
}

static void counted_cleanup(bt_ctx_t *ctx, void *state)
{
    latch_add(&(*(counts_t **)state)->cleanups, 1);
}

static const bt_actor_type_t counted = {
    .name = "counted",
    .state_size = sizeof(counts_t *),
    .init = counted_init,
    .dispatch = counted_dispatch,
    .cleanup = counted_cleanup,
};

static int send_work(bt_runtime_t *rt, bt_ref_t to, uint32_t id)
{
    work_msg *m = BT_MSG_NEW(work_msg, id);
    int rc = bt_send(rt, to, &m->hdr);
    if (rc != BT_OK)
        bt_msg_free(&m->hdr);
    return rc;
}

static uint64_t dead_letters(bt_runtime_t *rt)
{
    bt_runtime_stats_t s;
    bt_runtime_stats(rt, &s);
    return s.dead_letters;
}

Test(lifecycle, stop_is_queued_behind_earlier_messages_later_ones_are_dead_letters)
{
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 2}, &rt), BT_OK);
    static counts_t c;
    latch_init(&c.handled);
    latch_init(&c.cleanups);
    bt_ref_t a;
    cr_assert_eq(bt_spawn(rt, &counted, &c, NULL, &a), BT_OK);
    for (int i = 0; i < 500; i++)
        cr_assert_eq(send_work(rt, a, MSG_WORK), BT_OK);
    cr_assert_eq(bt_stop(rt, a), BT_OK);
    cr_assert_eq(bt_stop(rt, a), BT_OK, "a repeated stop request is harmless");
    for (int i = 0; i < 500; i++)
        cr_assert_eq(send_work(rt, a, MSG_WORK), BT_OK, "still alive until the stop is handled");
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    cr_assert(latch_wait(&c.cleanups, 1, 5000));
    cr_assert(WAIT_UNTIL(dead_letters(rt) == 500, 5000), "dead letters: %llu",
              (unsigned long long)dead_letters(rt));
    cr_assert_eq(latch_get(&c.handled), 500);
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
}

/* Senders race with a stop: every send either fails cleanly or its message
 * is handled or counted dead; nothing is lost, nothing crashes. */
typedef struct {
    bt_runtime_t *rt;
    bt_ref_t to;
    uint64_t ok, refused;
} racer_arg;

static void *racer(void *p)
{
    racer_arg *a = p;
    for (int i = 0; i < 200000; i++) {
        int rc = send_work(a->rt, a->to, MSG_WORK);
        if (rc == BT_OK)
            a->ok++;
        else if (rc == BT_ENOACTOR)
            a->refused++;
        else
            abort();
    }
    return NULL;
}

Test(lifecycle, stop_while_messages_are_in_flight_loses_nothing)
{
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 2}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    static counts_t c;
    latch_init(&c.handled);
    latch_init(&c.cleanups);
    bt_ref_t a;
    cr_assert_eq(bt_spawn(rt, &counted, &c, NULL, &a), BT_OK);
    pthread_t th[2];
    racer_arg args[2] = {{rt, a, 0, 0}, {rt, a, 0, 0}};
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, racer, &args[i]);
    cr_assert(WAIT_UNTIL(latch_get(&c.handled) > 1000, 5000));
    cr_assert_eq(bt_stop(rt, a), BT_OK);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    cr_assert(latch_wait(&c.cleanups, 1, 5000));
    uint64_t ok = args[0].ok + args[1].ok, refused = args[0].refused + args[1].refused;
    cr_assert_eq(ok + refused, 400000);
    /* Refused sends count as dead letters too. */
    cr_assert(WAIT_UNTIL(latch_get(&c.handled) + dead_letters(rt) == ok + refused, 5000),
              "handled %llu + dead %llu != sent %llu", (unsigned long long)latch_get(&c.handled),
              (unsigned long long)dead_letters(rt), (unsigned long long)(ok + refused));
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
}

Test(lifecycle, shutdown_with_full_mailboxes_runs_every_cleanup_and_frees_all)
{
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 2}, &rt), BT_OK);
    static counts_t c;
    latch_init(&c.handled);
    latch_init(&c.cleanups);
    for (int i = 0; i < 100; i++) {
        bt_ref_t a;
        cr_assert_eq(bt_spawn(rt, &counted, &c, NULL, &a), BT_OK);
        for (int j = 0; j < 1000; j++)
            cr_assert_eq(send_work(rt, a, MSG_WORK), BT_OK);
    }
    /* Never started: shutdown starts it, stops everyone, frees the 100,000
     * queued messages (LSan checks) and joins its threads. */
    cr_assert_eq(bt_runtime_shutdown(rt, 10 * SEC_NS), BT_OK);
    cr_assert_eq(latch_get(&c.cleanups), 100);
}

Test(lifecycle, hundred_create_shutdown_cycles_leave_no_threads)
{
    int before = thread_count();
    static counts_t c;
    latch_init(&c.handled);
    latch_init(&c.cleanups);
    for (int cycle = 0; cycle < 100; cycle++) {
        bt_runtime_t *rt;
        cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 4}, &rt), BT_OK);
        cr_assert_eq(bt_runtime_start(rt), BT_OK);
        for (int i = 0; i < 10; i++) {
            bt_ref_t a;
            cr_assert_eq(bt_spawn(rt, &counted, &c, NULL, &a), BT_OK);
            cr_assert_eq(send_work(rt, a, MSG_WORK), BT_OK);
        }
        cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
        /* Joined threads are gone, but the kernel wakes pthread_join() a
         * moment before it drops the thread from /proc/self/task. */
        cr_assert(WAIT_UNTIL(thread_count() == before, 1000), "cycle %d left threads behind",
                  cycle);
    }
    cr_assert_eq(latch_get(&c.cleanups), 1000);
}

Test(lifecycle, shutdown_times_out_on_a_stuck_actor_and_can_be_retried)
{
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 2}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    static counts_t c;
    latch_init(&c.handled);
    latch_init(&c.cleanups);
    bt_ref_t a;
    cr_assert_eq(bt_spawn(rt, &counted, &c, NULL, &a), BT_OK);
    latch_init(&c.entered);
    cr_assert_eq(send_work(rt, a, MSG_BLOCK), BT_OK);
    cr_assert(latch_wait(&c.entered, 1, 5000), "the actor is inside its dispatch");
    cr_assert_eq(bt_runtime_shutdown(rt, 50 * 1000000ull), BT_ETIMEDOUT);
    bt_ref_t b;
    cr_assert_eq(bt_spawn(rt, &counted, &c, NULL, &b), BT_ESTATE, "no spawn while stopping");
    __atomic_store_n(&c.release, 1, __ATOMIC_RELEASE);
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
    cr_assert_eq(latch_get(&c.cleanups), 1);
}

static int shutdown_result = 1;

static int shutdown_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    __atomic_store_n(&shutdown_result, bt_runtime_shutdown(bt_ctx_runtime(ctx), SEC_NS),
                     __ATOMIC_RELEASE);
    return BT_OK;
}

static const bt_actor_type_t shutdown_type = {.name = "shutdown", .dispatch = shutdown_dispatch};

Test(lifecycle, shutdown_from_inside_an_actor_is_refused)
{
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 1}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    bt_ref_t a;
    cr_assert_eq(bt_spawn(rt, &shutdown_type, NULL, NULL, &a), BT_OK);
    cr_assert_eq(send_work(rt, a, MSG_WORK), BT_OK);
    cr_assert(WAIT_UNTIL(__atomic_load_n(&shutdown_result, __ATOMIC_ACQUIRE) != 1, 5000));
    cr_assert_eq(shutdown_result, BT_ESTATE, "an actor cannot wait for itself to stop");
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
}

/* The allocator's statistics: real numbers from jemalloc, or a clear
 * "not supported" in sanitizer builds (system allocator). */
Test(lifecycle, alloc_stats_track_allocations)
{
    bt_alloc_stats_t before;
    int rc = bt_alloc_stats(&before);
#ifdef BT_SYSTEM_ALLOCATOR
    cr_assert_eq(rc, BT_ENOTSUP);
    cr_assert_eq(before.allocated, 0);
#else
    cr_assert_eq(rc, BT_OK);
    cr_assert_gt(before.allocated, 0);
    cr_assert_geq(before.active, before.allocated);
    cr_assert_geq(before.mapped, before.active);
    enum { N = 64, SIZE = 64 << 10 };
    bt_alloc_stats_t after;
    void *blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = bt_alloc(SIZE);
        cr_assert_not_null(blocks[i]);
        memset(blocks[i], 1, SIZE);
    }
    cr_assert_eq(bt_alloc_stats(&after), BT_OK);
    cr_assert_geq(after.allocated, before.allocated + (uint64_t)N * SIZE / 2,
                  "allocated %lu -> %lu", (unsigned long)before.allocated,
                  (unsigned long)after.allocated);
    for (int i = 0; i < N; i++)
        bt_free(blocks[i], SIZE);
#endif
}
