/* test_pinned.c: pinned actors run on their own thread, may block without
 * stalling the scheduler, and their thread is joined when they stop. */
#define _GNU_SOURCE
#include "helpers.h"

#include <criterion/criterion.h>
#include <unistd.h>

enum { MSG_BLOCK = 1, MSG_COUNT, MSG_WHERE };

static uint32_t release_gate;
static latch_t blocked, counted;
static pid_t pinned_tid, worker_tid;

static int pinned_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    if (msg->id == MSG_BLOCK) {
        latch_add(&blocked, 1);
        /* Blocking work, as SQLite or waitpid would do. */
        while (!__atomic_load_n(&release_gate, __ATOMIC_ACQUIRE))
            usleep(1000);
    } else if (msg->id == MSG_WHERE) {
        __atomic_store_n(&pinned_tid, gettid(), __ATOMIC_RELEASE);
    }
    return BT_OK;
}

static const bt_actor_type_t pinned_type = {.name = "pinned", .dispatch = pinned_dispatch};

static int counter_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    if (msg->id == MSG_WHERE)
        __atomic_store_n(&worker_tid, gettid(), __ATOMIC_RELEASE);
    else
        latch_add(&counted, 1);
    return BT_OK;
}

static const bt_actor_type_t counter_type = {.name = "counter", .dispatch = counter_dispatch};

static void send_id(bt_runtime_t *rt, bt_ref_t to, uint32_t id)
{
    cr_assert_eq(bt_send(rt, to, bt_msg_new(sizeof(bt_msg_t), id)), BT_OK);
}

Test(pinned, a_blocked_pinned_actor_does_not_stall_the_others)
{
    latch_init(&blocked);
    latch_init(&counted);
    bt_runtime_t *rt;
    /* One scheduler thread: if the pinned actor ran on it, nothing else
     * could run while it blocks. */
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 1}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    bt_ref_t p, c;
    cr_assert_eq(bt_spawn(rt, &pinned_type, NULL, &(bt_spawn_opts_t){.flags = BT_SPAWN_PINNED}, &p),
                 BT_OK);
    cr_assert_eq(bt_spawn(rt, &counter_type, NULL, NULL, &c), BT_OK);
    send_id(rt, p, MSG_WHERE);
    send_id(rt, c, MSG_WHERE);
    send_id(rt, p, MSG_BLOCK);
    cr_assert(latch_wait(&blocked, 1, 5000));
    for (int i = 0; i < 100000; i++)
        send_id(rt, c, MSG_COUNT);
    cr_assert(latch_wait(&counted, 100000, 30000), "1e5 messages flow while it blocks");
    cr_assert_neq(pinned_tid, 0);
    cr_assert_neq(pinned_tid, worker_tid, "the pinned actor has its own thread");
    __atomic_store_n(&release_gate, 1, __ATOMIC_RELEASE);
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
}

Test(pinned, its_thread_is_joined_when_it_stops)
{
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 1}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    int base = thread_count();
    bt_ref_t p[8];
    for (int i = 0; i < 8; i++)
        cr_assert_eq(
            bt_spawn(rt, &pinned_type, NULL, &(bt_spawn_opts_t){.flags = BT_SPAWN_PINNED}, &p[i]),
            BT_OK);
    cr_assert_eq(thread_count(), base + 8);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(bt_stop(rt, p[i]), BT_OK);
    cr_assert(WAIT_UNTIL(!bt_alive(rt, p[7]), 5000));
    /* A later pinned spawn joins the finished threads. */
    bt_ref_t q;
    cr_assert(WAIT_UNTIL(({
                             bt_runtime_stats_t s;
                             bt_runtime_stats(rt, &s);
                             s.actors_live == 0;
                         }),
                         5000));
    cr_assert_eq(bt_spawn(rt, &pinned_type, NULL, &(bt_spawn_opts_t){.flags = BT_SPAWN_PINNED}, &q),
                 BT_OK);
    cr_assert(WAIT_UNTIL(thread_count() == base + 1, 5000), "threads: %d, base %d", thread_count(),
              base);
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
}
