/* test_ratelimit.c: the GCRA math and the rate limiter actor, in
 * deterministic virtual time: exact token counts over simulated seconds,
 * independent keys, many keys, refusals, and retry decisions. */
#include "ratelimit.h"

#include <criterion/criterion.h>
#include <string.h>

#define MS  (1000000ull)
#define SEC (1000000000ull)

static bt_runtime_t *virtual_runtime(void)
{
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.deterministic = true}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    return rt;
}

static bt_ratelimit_args_t args_10_per_s_burst_5(void)
{
    bt_ratelimit_args_t a = {.rate = 10, .period_ns = SEC, .burst = 5, .seed = 1};
    bt_backoff_args_default(&a.retry);
    return a;
}

/* One acquire through the actor; returns the decision (status, go, wait). */
static bt_rl_decision_msg_t acquire(bt_runtime_t *rt, bt_ref_t rl, uint64_t key, uint32_t cost)
{
    bt_rl_acquire_msg_t *m = BT_MSG_NEW(bt_rl_acquire_msg_t, BT_RL_ACQUIRE);
    m->key = key;
    m->cost = cost;
    m->first_attempt = true;
    bt_msg_t *reply;
    cr_assert_eq(bt_ask_wait(rt, rl, &m->hdr, SEC, &reply), BT_OK);
    cr_assert_eq(reply->id, BT_RL_DECISION);
    bt_rl_decision_msg_t d = *(bt_rl_decision_msg_t *)reply;
    bt_msg_free(reply);
    return d;
}

static bt_rl_stats_msg_t stats(bt_runtime_t *rt, bt_ref_t rl)
{
    bt_msg_t *reply;
    cr_assert_eq(bt_ask_wait(rt, rl, bt_msg_new(sizeof(bt_msg_t), BT_RL_STATS), SEC, &reply),
                 BT_OK);
    bt_rl_stats_msg_t s = *(bt_rl_stats_msg_t *)reply;
    bt_msg_free(reply);
    return s;
}

Test(ratelimit, gcra_grants_the_burst_then_one_token_per_interval)
{
    bt_gcra_t g;
    cr_assert_eq(bt_gcra_init(&g, 10, SEC, 5), BT_OK);
    cr_assert_eq(g.interval_ns, 100 * MS);
    uint64_t tat = 0;
    cr_assert_eq(bt_gcra_tokens(&g, tat, 0), 5);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(bt_gcra_take(&g, &tat, 0, 1), 0, "burst token %d", i);
    cr_assert_eq(bt_gcra_tokens(&g, tat, 0), 0);
    cr_assert_eq(bt_gcra_take(&g, &tat, 0, 1), 100 * MS, "wait exactly one interval");
    cr_assert_eq(bt_gcra_take(&g, &tat, 40 * MS, 1), 60 * MS);
    cr_assert_eq(bt_gcra_take(&g, &tat, 40 * MS, 3), 260 * MS, "three tokens: three intervals");
    cr_assert_eq(bt_gcra_take(&g, &tat, 100 * MS, 1), 0);
    cr_assert_eq(bt_gcra_tokens(&g, tat, 100 * MS), 0);
    cr_assert_eq(bt_gcra_tokens(&g, tat, 350 * MS), 2);
    cr_assert_eq(bt_gcra_tokens(&g, tat, 10 * SEC), 5, "refills only up to the burst");
    cr_assert_eq(bt_gcra_take(&g, &tat, 10 * SEC, 6), UINT64_MAX, "more than the burst: never");
    cr_assert_eq(bt_gcra_init(&g, 0, SEC, 5), BT_EINVAL);
    cr_assert_eq(bt_gcra_init(&g, 10, SEC, 0), BT_EINVAL);
    cr_assert_eq(bt_gcra_init(&g, 2 * SEC, SEC, 1), BT_EINVAL, "interval below 1 ns");
}

Test(ratelimit, actor_answers_go_for_the_burst_then_wait_with_the_exact_delay)
{
    bt_runtime_t *rt = virtual_runtime();
    bt_ratelimit_args_t a = args_10_per_s_burst_5();
    bt_ref_t rl;
    cr_assert_eq(bt_ratelimit_spawn(rt, &a, &rl), BT_OK);
    for (int i = 0; i < 5; i++) {
        bt_rl_decision_msg_t d = acquire(rt, rl, 7, 1);
        cr_assert_eq(d.status, BT_OK);
        cr_assert(d.go, "token %d", i);
    }
    bt_rl_decision_msg_t d = acquire(rt, rl, 7, 1);
    cr_assert(!d.go);
    cr_assert_eq(d.wait_ns, 100 * MS);
    cr_assert_eq(bt_runtime_advance(rt, 99 * MS), BT_OK);
    d = acquire(rt, rl, 7, 1);
    cr_assert(!d.go);
    cr_assert_eq(d.wait_ns, 1 * MS);
    cr_assert_eq(bt_runtime_advance(rt, 1 * MS), BT_OK);
    cr_assert(acquire(rt, rl, 7, 1).go, "exactly at the promised time");
    cr_assert(!acquire(rt, rl, 7, 1).go);
    bt_rl_stats_msg_t s = stats(rt, rl);
    cr_assert_eq(s.granted, 6);
    cr_assert_eq(s.delayed, 3);
    cr_assert_eq(bt_runtime_shutdown(rt, SEC), BT_OK);
}

Test(ratelimit, grants_exactly_rate_times_seconds_plus_burst_over_simulated_seconds)
{
    bt_runtime_t *rt = virtual_runtime();
    bt_ratelimit_args_t a = args_10_per_s_burst_5();
    bt_ref_t rl;
    cr_assert_eq(bt_ratelimit_spawn(rt, &a, &rl), BT_OK);
    /* A greedy caller asks every 10 ms for 10 simulated seconds. */
    uint64_t granted = 0, per_second[10] = {0};
    for (int tick = 0; tick < 1000; tick++) {
        if (acquire(rt, rl, 1, 1).go) {
            granted++;
            per_second[tick / 100]++;
        }
        cr_assert_eq(bt_runtime_advance(rt, 10 * MS), BT_OK);
    }
    /* t = 0 .. 9.99 s: the burst of 5 at t = 0, then one every 100 ms
     * from t = 100 ms through t = 9.9 s: 99 more. */
    cr_assert_eq(granted, 5 + 99);
    cr_assert_eq(per_second[0], 5 + 9);
    for (int s = 1; s < 10; s++)
        cr_assert_eq(per_second[s], 10, "second %d", s);
    /* Idle for 2 s: the bucket refills to the burst and no further. */
    cr_assert_eq(bt_runtime_advance(rt, 2 * SEC), BT_OK);
    int n = 0;
    while (acquire(rt, rl, 1, 1).go)
        n++;
    cr_assert_eq(n, 5);
    cr_assert_eq(bt_runtime_shutdown(rt, SEC), BT_OK);
}

Test(ratelimit, keys_have_independent_buckets_and_idle_keys_are_dropped)
{
    bt_runtime_t *rt = virtual_runtime();
    bt_ratelimit_args_t a = args_10_per_s_burst_5();
    bt_ref_t rl;
    cr_assert_eq(bt_ratelimit_spawn(rt, &a, &rl), BT_OK);
    enum { KEYS = 20000 };
    for (uint64_t k = 0; k < KEYS; k++) {
        bt_rl_acquire_msg_t *m = BT_MSG_NEW(bt_rl_acquire_msg_t, BT_RL_ACQUIRE);
        m->key = k * 0x9E3779B97F4A7C15ull; /* key 0 included */
        m->cost = 5;
        cr_assert_eq(bt_send(rt, rl, &m->hdr), BT_OK, "a plain send also takes tokens");
    }
    cr_assert_eq(bt_runtime_run(rt), BT_OK);
    bt_rl_stats_msg_t s = stats(rt, rl);
    cr_assert_eq(s.granted, KEYS, "each key has its own full bucket");
    cr_assert_eq(s.keys, KEYS);
    cr_assert(!acquire(rt, rl, 0, 1).go, "key 0's bucket is empty");
    cr_assert(!acquire(rt, rl, 5 * 0x9E3779B97F4A7C15ull, 1).go);
    cr_assert(acquire(rt, rl, 12345, 1).go, "an unseen key goes");
    cr_assert_eq(bt_runtime_advance(rt, 1 * SEC), BT_OK);
    s = stats(rt, rl);
    cr_assert_eq(s.keys, 0, "every bucket is full again: no key costs anything");
    for (uint64_t k = 0; k < 1000; k++)
        cr_assert(acquire(rt, rl, ~k, 1).go);
    s = stats(rt, rl);
    cr_assert_eq(s.keys, 1000);
    cr_assert_eq(bt_runtime_shutdown(rt, SEC), BT_OK);
}

Test(ratelimit, refuses_costs_above_the_burst_and_keys_beyond_the_limit)
{
    bt_runtime_t *rt = virtual_runtime();
    bt_ratelimit_args_t a = args_10_per_s_burst_5();
    a.max_keys = 3;
    bt_ref_t rl;
    cr_assert_eq(bt_ratelimit_spawn(rt, &a, &rl), BT_OK);
    cr_assert_eq(acquire(rt, rl, 1, 6).status, BT_EINVAL);
    for (uint64_t k = 1; k <= 3; k++)
        cr_assert(acquire(rt, rl, k, 1).go);
    cr_assert_eq(acquire(rt, rl, 4, 1).status, BT_EFULL);
    cr_assert(acquire(rt, rl, 2, 1).go, "known keys still work");
    cr_assert_eq(bt_runtime_advance(rt, SEC), BT_OK);
    cr_assert(acquire(rt, rl, 4, 1).go, "after the others went idle there is room");
    cr_assert_eq(stats(rt, rl).refused, 2);
    cr_assert_eq(bt_runtime_shutdown(rt, SEC), BT_OK);
}

Test(ratelimit, bad_arguments_are_refused_with_a_reason)
{
    bt_runtime_t *rt = virtual_runtime();
    bt_ref_t rl;
    const char *why = NULL;
    bt_ratelimit_args_t a = args_10_per_s_burst_5();
    a.burst = 0;
    cr_assert_eq(bt_ratelimit_args_check(&a, &why), BT_EINVAL);
    cr_assert_not_null(strstr(why, "burst"));
    cr_assert_eq(bt_ratelimit_spawn(rt, &a, &rl), BT_EINVAL);
    a = args_10_per_s_burst_5();
    a.retry.max_attempts = 0;
    cr_assert_eq(bt_ratelimit_args_check(&a, &why), BT_EINVAL);
    cr_assert_not_null(strstr(why, "max_attempts"));
    cr_assert_eq(bt_ratelimit_spawn(rt, NULL, &rl), BT_EINVAL);
    cr_assert_eq(bt_runtime_shutdown(rt, SEC), BT_OK);
}

static bt_retry_decision_t retry(bt_runtime_t *rt, bt_ref_t rl, uint32_t attempts,
                                 uint64_t first_at, bt_failure_t f)
{
    bt_rl_retry_msg_t *m = BT_MSG_NEW(bt_rl_retry_msg_t, BT_RL_RETRY);
    m->attempts = attempts;
    m->first_at_ns = first_at;
    m->failure = f;
    bt_msg_t *reply;
    cr_assert_eq(bt_ask_wait(rt, rl, &m->hdr, SEC, &reply), BT_OK);
    cr_assert_eq(reply->id, BT_RL_RETRY_REPLY);
    bt_retry_decision_t d = ((bt_rl_retry_reply_msg_t *)reply)->decision;
    bt_msg_free(reply);
    return d;
}

Test(ratelimit, actor_decides_retries_with_backoff_retry_after_and_budget)
{
    bt_runtime_t *rt = virtual_runtime();
    bt_ratelimit_args_t a = args_10_per_s_burst_5();
    a.retry.base_ns = 100 * MS;
    a.retry.cap_ns = 1 * SEC;
    a.retry.max_attempts = 10;
    a.retry.max_elapsed_ns = 0;
    a.retry.budget_ratio_pct = 50;
    a.retry.budget_reserve = 2;
    bt_ref_t rl;
    cr_assert_eq(bt_ratelimit_spawn(rt, &a, &rl), BT_OK);
    bt_retry_decision_t d = retry(rt, rl, 3, 0, (bt_failure_t){.http_status = 502});
    cr_assert(d.retry);
    cr_assert_eq(d.reason, BT_RETRY_BACKOFF);
    cr_assert_leq(d.delay_ns, 400 * MS);
    d = retry(
        rt, rl, 1, 0,
        (bt_failure_t){.http_status = 429, .has_retry_after = true, .retry_after_ns = 7 * SEC});
    cr_assert(d.retry);
    cr_assert_eq(d.delay_ns, 7 * SEC);
    d = retry(rt, rl, 1, 0, (bt_failure_t){.http_status = 502});
    cr_assert(!d.retry, "the reserve of 2 is spent and no call has paid in");
    cr_assert_eq(d.reason, BT_RETRY_BUDGET);
    cr_assert(acquire(rt, rl, 1, 1).go); /* first attempts pay half a retry each */
    cr_assert(acquire(rt, rl, 2, 1).go);
    cr_assert(retry(rt, rl, 1, 0, (bt_failure_t){.http_status = 502}).retry);
    d = retry(rt, rl, 1, 0, (bt_failure_t){.http_status = 400});
    cr_assert(!d.retry);
    cr_assert_eq(d.reason, BT_RETRY_PERMANENT);
    bt_rl_stats_msg_t s = stats(rt, rl);
    cr_assert_eq(s.retries, 3);
    cr_assert_eq(s.give_ups[BT_RETRY_BUDGET], 1);
    cr_assert_eq(s.give_ups[BT_RETRY_PERMANENT], 1);
    cr_assert_eq(s.calls, 2);
    cr_assert_eq(bt_runtime_shutdown(rt, SEC), BT_OK);
}
