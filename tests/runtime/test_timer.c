/* test_timer.c: timers through the public API, in deterministic mode
 * (virtual time: exact and reproducible) and with the real clock. */
#include "helpers.h"

#include <criterion/criterion.h>

enum { MSG_TICK = 1 };

typedef struct {
    bt_msg_t hdr;
    int tag;
} tick_msg;

#define LOG_MAX 64

typedef struct {
    int tags[LOG_MAX];
    uint64_t at[LOG_MAX]; /* bt_now() when handled */
    int n;
    latch_t got;
} log_t;

static int logger_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    *(const void **)state = arg;
    return BT_OK;
}

static int logger_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    log_t *log = *(log_t **)state;
    if (log->n < LOG_MAX) {
        log->tags[log->n] = ((const tick_msg *)msg)->tag;
        log->at[log->n] = bt_now(bt_ctx_runtime(ctx));
        log->n++;
    }
    latch_add(&log->got, 1);
    return BT_OK;
}

static const bt_actor_type_t logger = {.name = "logger",
                                       .state_size = sizeof(log_t *),
                                       .init = logger_init,
                                       .dispatch = logger_dispatch};

static tick_msg *tick(int tag)
{
    tick_msg *m = BT_MSG_NEW(tick_msg, MSG_TICK);
    m->tag = tag;
    return m;
}

#define MS (1000000ull)

static bt_runtime_t *virtual_runtime(void)
{
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.deterministic = true}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    return rt;
}

Test(timer, fires_in_deadline_order_at_the_virtual_time)
{
    bt_runtime_t *rt = virtual_runtime();
    static log_t log;
    latch_init(&log.got);
    bt_ref_t a;
    cr_assert_eq(bt_spawn(rt, &logger, &log, NULL, &a), BT_OK);
    int delays[] = {30, 10, 20, 5000, 1, 64, 4096, 10};
    for (int i = 0; i < 8; i++)
        cr_assert_eq(
            bt_timer_start(rt, a, &tick(delays[i])->hdr, (uint64_t)delays[i] * MS, 0, NULL), BT_OK);
    cr_assert_eq(bt_runtime_advance(rt, 9 * MS), BT_OK);
    cr_assert_eq(log.n, 1, "only the 1 ms timer is due at 9 ms");
    cr_assert_eq(bt_runtime_advance(rt, 10 * MS), BT_OK);
    cr_assert_eq(log.n, 3);
    cr_assert_eq(bt_runtime_advance(rt, 10 * SEC_NS), BT_OK);
    cr_assert_eq(log.n, 8);
    int want[] = {1, 10, 10, 20, 30, 64, 4096, 5000};
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(log.tags[i], want[i], "position %d", i);
        cr_assert_eq(log.at[i], (uint64_t)want[i] * MS, "fired at %llu, due %d ms",
                     (unsigned long long)log.at[i], want[i]);
    }
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}

Test(timer, never_fires_early_with_sub_tick_delays)
{
    bt_runtime_t *rt = virtual_runtime();
    static log_t log;
    latch_init(&log.got);
    bt_ref_t a;
    cr_assert_eq(bt_spawn(rt, &logger, &log, NULL, &a), BT_OK);
    cr_assert_eq(bt_runtime_advance(rt, 300000), BT_OK);                         /* now = 0.3 ms */
    cr_assert_eq(bt_timer_start(rt, a, &tick(1)->hdr, 1500000, 0, NULL), BT_OK); /* due 1.8 ms */
    cr_assert_eq(bt_runtime_advance(rt, 1400000), BT_OK);                        /* 1.7 ms */
    cr_assert_eq(log.n, 0);
    cr_assert_eq(bt_runtime_advance(rt, 1 * MS), BT_OK);
    cr_assert_eq(log.n, 1);
    cr_assert_geq(log.at[0], 1800000);
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}

Test(timer, cancel_stops_it_and_a_second_cancel_fails)
{
    bt_runtime_t *rt = virtual_runtime();
    static log_t log;
    latch_init(&log.got);
    bt_ref_t a;
    cr_assert_eq(bt_spawn(rt, &logger, &log, NULL, &a), BT_OK);
    bt_timer_t t1, t2;
    cr_assert_eq(bt_timer_start(rt, a, &tick(1)->hdr, 10 * MS, 0, &t1), BT_OK);
    cr_assert_eq(bt_timer_start(rt, a, &tick(2)->hdr, 20 * MS, 0, &t2), BT_OK);
    cr_assert_eq(bt_timer_cancel(rt, t1), BT_OK);
    cr_assert_eq(bt_timer_cancel(rt, t1), BT_ENOENT);
    cr_assert_eq(bt_runtime_advance(rt, 100 * MS), BT_OK);
    cr_assert_eq(log.n, 1);
    cr_assert_eq(log.tags[0], 2);
    cr_assert_eq(bt_timer_cancel(rt, t2), BT_ENOENT, "a fired one-shot cannot be cancelled");
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}

Test(timer, periodic_fires_every_period_until_cancelled)
{
    bt_runtime_t *rt = virtual_runtime();
    static log_t log;
    latch_init(&log.got);
    bt_ref_t a;
    cr_assert_eq(bt_spawn(rt, &logger, &log, NULL, &a), BT_OK);
    bt_timer_t t;
    cr_assert_eq(bt_timer_start(rt, a, &tick(7)->hdr, 5 * MS, 10 * MS, &t), BT_OK);
    cr_assert_eq(bt_runtime_advance(rt, 50 * MS), BT_OK);
    cr_assert_eq(log.n, 5, "at 5, 15, 25, 35, 45 ms");
    for (int i = 0; i < 5; i++)
        cr_assert_eq(log.at[i], (5 + 10 * (uint64_t)i) * MS);
    cr_assert_eq(bt_timer_cancel(rt, t), BT_OK);
    cr_assert_eq(bt_runtime_advance(rt, 50 * MS), BT_OK);
    cr_assert_eq(log.n, 5);
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}

Test(timer, periodic_timer_to_a_stopped_actor_cancels_itself)
{
    bt_runtime_t *rt = virtual_runtime();
    static log_t log;
    latch_init(&log.got);
    bt_ref_t a;
    cr_assert_eq(bt_spawn(rt, &logger, &log, NULL, &a), BT_OK);
    bt_timer_t t;
    cr_assert_eq(bt_timer_start(rt, a, &tick(7)->hdr, 1 * MS, 1 * MS, &t), BT_OK);
    cr_assert_eq(bt_runtime_advance(rt, 3 * MS), BT_OK);
    cr_assert_eq(bt_stop(rt, a), BT_OK);
    cr_assert_eq(bt_runtime_advance(rt, 10 * MS), BT_OK);
    cr_assert_eq(bt_timer_cancel(rt, t), BT_ENOENT, "gone with its receiver");
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}

Test(timer, rejects_reserved_ids)
{
    bt_runtime_t *rt = virtual_runtime();
    bt_msg_t *m = bt_msg_new(sizeof(bt_msg_t), BT_MSG_DOWN);
    cr_assert_eq(bt_timer_start(rt, BT_REF_NONE, m, MS, 0, NULL), BT_EINVAL);
    bt_msg_free(m);
    cr_assert_eq(bt_timer_cancel(rt, 0), BT_EINVAL);
    cr_assert_eq(bt_timer_cancel(rt, 0x500000001ull), BT_ENOENT);
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}

Test(timer, tens_of_thousands_of_live_timers_fire_in_order)
{
    bt_runtime_t *rt = virtual_runtime();
    static log_t log;
    latch_init(&log.got);
    bt_ref_t a;
    cr_assert_eq(bt_spawn(rt, &logger, &log, NULL, &a), BT_OK);
    enum { N = 50000 };
    static bt_timer_t handles[N];
    for (int i = 0; i < N; i++)
        cr_assert_eq(bt_timer_start(rt, a, &tick(i)->hdr, (uint64_t)(1 + (i * 7919) % 100000) * MS,
                                    0, &handles[i]),
                     BT_OK);
    for (int i = 0; i < N; i += 2)
        cr_assert_eq(bt_timer_cancel(rt, handles[i]), BT_OK);
    cr_assert_eq(bt_runtime_advance(rt, 200 * SEC_NS), BT_OK);
    cr_assert_eq(latch_get(&log.got), N / 2);
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}

Test(timer, real_clock_timer_fires_after_its_delay)
{
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 2}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    static log_t log;
    latch_init(&log.got);
    bt_ref_t a;
    cr_assert_eq(bt_spawn(rt, &logger, &log, NULL, &a), BT_OK);
    uint64_t t0 = bt_now(rt);
    cr_assert_eq(bt_timer_start(rt, a, &tick(2)->hdr, 40 * MS, 0, NULL), BT_OK);
    cr_assert_eq(bt_timer_start(rt, a, &tick(1)->hdr, 20 * MS, 0, NULL), BT_OK);
    /* Pending timers at shutdown are freed (LSan checks). */
    cr_assert_eq(bt_timer_start(rt, a, &tick(9)->hdr, 3600 * SEC_NS, 0, NULL), BT_OK);
    cr_assert(latch_wait(&log.got, 2, 5000));
    cr_assert_eq(log.tags[0], 1);
    cr_assert_eq(log.tags[1], 2);
    cr_assert_geq(log.at[0] - t0, 20 * MS, "never early");
    cr_assert_geq(log.at[1] - t0, 40 * MS);
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
}
