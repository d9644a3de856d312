/* test_backoff.c: the retry policy's pure parts (actors/backoff.c): full
 * jitter bounds and distribution, Retry-After in both forms, the give-up
 * classification, the retry budget, and the decision that combines them. */
#include "backoff.h"

#include <criterion/criterion.h>
#include <string.h>

#define MS  (1000000ull)
#define SEC (1000000000ull)

static int parse(const char *s, int64_t now, uint64_t *out)
{
    return bt_retry_after_parse(s, strlen(s), now, out);
}

Test(backoff, full_jitter_samples_all_lie_within_zero_and_the_capped_ceiling)
{
    bt_prng_t rng;
    bt_prng_seed(&rng, 42);
    const uint64_t base = 100 * MS, cap = 10 * SEC;
    for (uint32_t attempt = 1; attempt <= 80; attempt++) {
        uint64_t ceil = bt_backoff_ceiling(base, cap, attempt);
        cr_assert_leq(ceil, cap);
        uint64_t want = attempt <= 7 ? base << (attempt - 1) : cap; /* 6.4 s, then 12.8 > cap */
        cr_assert_eq(ceil, want, "attempt %u", attempt);
        for (int i = 0; i < 2000; i++) {
            uint64_t d = bt_backoff_full_jitter(base, cap, attempt, &rng);
            cr_assert_leq(d, ceil, "attempt %u sample %llu", attempt, (unsigned long long)d);
        }
    }
    cr_assert_eq(bt_backoff_ceiling(3, UINT64_MAX, 200), UINT64_MAX, "saturates, no overflow");
}

Test(backoff, full_jitter_is_uniform_over_zero_to_ceiling)
{
    bt_prng_t rng;
    bt_prng_seed(&rng, 7);
    enum { N = 200000, BUCKETS = 10 };
    uint64_t ceil = bt_backoff_ceiling(1 * MS, 1 * SEC, 4); /* 8 ms */
    cr_assert_eq(ceil, 8 * MS);
    uint64_t count[BUCKETS] = {0};
    double sum = 0;
    uint64_t min = UINT64_MAX, max = 0;
    for (int i = 0; i < N; i++) {
        uint64_t d = bt_backoff_full_jitter(1 * MS, 1 * SEC, 4, &rng);
        cr_assert_leq(d, ceil);
        count[d * BUCKETS / (ceil + 1)]++;
        sum += (double)d;
        min = d < min ? d : min;
        max = d > max ? d : max;
    }
    for (int b = 0; b < BUCKETS; b++) /* expected 20000 each; 5 % is > 10 sigma */
        cr_assert(count[b] > 19000 && count[b] < 21000, "bucket %d has %llu", b,
                  (unsigned long long)count[b]);
    double mean = sum / N;
    cr_assert(mean > 0.49 * (double)ceil && mean < 0.51 * (double)ceil, "mean %f", mean);
    cr_assert_lt(min, ceil / 100, "reaches near 0");
    cr_assert_gt(max, ceil - ceil / 100, "reaches near the ceiling");
}

Test(backoff, the_same_seed_gives_the_same_delays)
{
    bt_prng_t a, b;
    bt_prng_seed(&a, 123);
    bt_prng_seed(&b, 123);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(bt_backoff_full_jitter(MS, SEC, 5, &a),
                     bt_backoff_full_jitter(MS, SEC, 5, &b));
    bt_prng_seed(&b, 124);
    int same = 0;
    for (int i = 0; i < 100; i++)
        same += bt_prng_next(&a) == bt_prng_next(&b);
    cr_assert_eq(same, 0);
}

Test(backoff, retry_after_delta_seconds_is_parsed)
{
    uint64_t d = 1;
    cr_assert_eq(parse("120", 0, &d), BT_OK);
    cr_assert_eq(d, 120 * SEC);
    cr_assert_eq(parse("  0 ", 0, &d), BT_OK);
    cr_assert_eq(d, 0);
    cr_assert_eq(parse("99999999999999999999999", 0, &d), BT_OK);
    cr_assert_eq(d, (uint64_t)1 << 63, "saturates");
    d = 5;
    cr_assert_eq(parse("12s", 0, &d), BT_EINVAL);
    cr_assert_eq(parse("-3", 0, &d), BT_EINVAL);
    cr_assert_eq(parse("1.5", 0, &d), BT_EINVAL);
    cr_assert_eq(parse("", 0, &d), BT_EINVAL);
    cr_assert_eq(d, 5, "untouched on error");
}

Test(backoff, retry_after_http_date_is_parsed_in_all_three_forms)
{
    /* Sun, 06 Nov 1994 08:49:37 GMT is 784111777 in Unix seconds. */
    cr_assert_eq(bt_unix_from_utc(1994, 11, 6, 8, 49, 37), 784111777);
    cr_assert_eq(bt_unix_from_utc(1970, 1, 1, 0, 0, 0), 0);
    cr_assert_eq(bt_unix_from_utc(2000, 3, 1, 0, 0, 0), 951868800);
    const int64_t now = 784111777 - 90;
    uint64_t d = 0;
    cr_assert_eq(parse("Sun, 06 Nov 1994 08:49:37 GMT", now, &d), BT_OK);
    cr_assert_eq(d, 90 * SEC);
    d = 0;
    cr_assert_eq(parse("Sunday, 06-Nov-94 08:49:37 GMT", now, &d), BT_OK);
    cr_assert_eq(d, 90 * SEC);
    d = 0;
    cr_assert_eq(parse("Sun Nov  6 08:49:37 1994", now, &d), BT_OK);
    cr_assert_eq(d, 90 * SEC);
    cr_assert_eq(parse("Sun, 06 Nov 1994 08:49:37 GMT", now + 1000, &d), BT_OK);
    cr_assert_eq(d, 0, "a date in the past means now");
    cr_assert_eq(
        parse("Tue, 29 Feb 2028 00:00:00 GMT", bt_unix_from_utc(2028, 2, 28, 23, 59, 0), &d), BT_OK,
        "leap day");
    cr_assert_eq(d, 60 * SEC);
    cr_assert_eq(parse("Sun, 30 Feb 2027 00:00:00 GMT", 0, &d), BT_EINVAL);
    cr_assert_eq(parse("Sun, 06 Nov 1994 08:49:37 UTC", 0, &d), BT_EINVAL);
    cr_assert_eq(parse("Sun, 06 Nov 1994 25:49:37 GMT", 0, &d), BT_EINVAL);
    cr_assert_eq(parse("Sun, 6 Nov 1994 08:49:37 GMT", 0, &d), BT_EINVAL);
    cr_assert_eq(parse("Sun, 06 Nov 1994 08:49:37 GMT trailing", 0, &d), BT_EINVAL);
    cr_assert_eq(parse("tomorrow", 0, &d), BT_EINVAL);
}

Test(backoff, classification_gives_up_on_permanent_failures_only)
{
    cr_assert_eq(bt_failure_classify(500, 0), BT_FAILURE_TRANSIENT);
    cr_assert_eq(bt_failure_classify(503, 0), BT_FAILURE_TRANSIENT);
    cr_assert_eq(bt_failure_classify(0, 0), BT_FAILURE_TRANSIENT, "network error");
    cr_assert_eq(bt_failure_classify(408, 0), BT_FAILURE_TRANSIENT);
    cr_assert_eq(bt_failure_classify(429, 0), BT_FAILURE_RATE_LIMITED);
    cr_assert_eq(bt_failure_classify(0, BT_FAILURE_RATE_LIMIT), BT_FAILURE_RATE_LIMITED);
    for (int s = 400; s < 500; s++)
        if (s != 408 && s != 429)
            cr_assert_eq(bt_failure_classify(s, 0), BT_FAILURE_PERMANENT, "status %d", s);
    cr_assert_eq(bt_failure_classify(503, BT_FAILURE_NON_RETRYABLE), BT_FAILURE_PERMANENT);
    cr_assert_eq(bt_failure_classify(429, BT_FAILURE_NON_RETRYABLE), BT_FAILURE_PERMANENT);
    cr_assert_str_eq(bt_failure_class_name(BT_FAILURE_RATE_LIMITED), "rate_limited");
}

static bt_backoff_args_t policy(void)
{
    bt_backoff_args_t a;
    bt_backoff_args_default(&a);
    a.base_ns = 100 * MS;
    a.cap_ns = 2 * SEC;
    a.max_attempts = 4;
    a.max_elapsed_ns = 10 * SEC;
    a.rate_limit_backoff_ns = 5 * SEC;
    a.retry_after_max_ns = 8 * SEC;
    return a;
}

Test(backoff, decision_follows_the_failure_kind)
{
    bt_backoff_args_t a = policy();
    cr_assert_eq(bt_backoff_args_check(&a, NULL), BT_OK);
    bt_prng_t rng;
    bt_prng_seed(&rng, 1);
    bt_failure_t f404 = {.http_status = 404};
    bt_retry_decision_t d = bt_backoff_decide(&a, 1, 0, &f404, &rng, NULL);
    cr_assert(!d.retry);
    cr_assert_eq(d.reason, BT_RETRY_PERMANENT);

    bt_failure_t f503 = {.http_status = 503};
    d = bt_backoff_decide(&a, 2, 0, &f503, &rng, NULL);
    cr_assert(d.retry);
    cr_assert_eq(d.reason, BT_RETRY_BACKOFF);
    cr_assert_leq(d.delay_ns, 200 * MS, "attempt 2: [0, base*2]");

    bt_failure_t f429 = {.http_status = 429, .has_retry_after = true, .retry_after_ns = 3 * SEC};
    d = bt_backoff_decide(&a, 1, 0, &f429, &rng, NULL);
    cr_assert(d.retry);
    cr_assert_eq(d.reason, BT_RETRY_RETRY_AFTER);
    cr_assert_eq(d.delay_ns, 3 * SEC, "Retry-After honoured exactly, no jitter");
    f429.retry_after_ns = 60 * SEC;
    d = bt_backoff_decide(&a, 1, 0, &f429, &rng, NULL);
    cr_assert(d.retry);
    cr_assert_eq(d.delay_ns, 8 * SEC, "clamped to retry_after_max, which still fits in 10 s");
    d = bt_backoff_decide(&a, 1, 3 * SEC, &f429, &rng, NULL);
    cr_assert(!d.retry, "3 s + 8 s would pass max_elapsed");
    cr_assert_eq(d.reason, BT_RETRY_MAX_ELAPSED);

    bt_failure_t rl = {.flags = BT_FAILURE_RATE_LIMIT};
    d = bt_backoff_decide(&a, 1, 0, &rl, &rng, NULL);
    cr_assert(d.retry);
    cr_assert_eq(d.reason, BT_RETRY_RATE_LIMIT_BACKOFF);
    cr_assert_eq(d.delay_ns, 5 * SEC);

    d = bt_backoff_decide(&a, 4, 0, &f503, &rng, NULL);
    cr_assert(!d.retry);
    cr_assert_eq(d.reason, BT_RETRY_MAX_ATTEMPTS);
    d = bt_backoff_decide(&a, 1, 10 * SEC, &f503, &rng, NULL);
    cr_assert(!d.retry);
    cr_assert_eq(d.reason, BT_RETRY_MAX_ELAPSED);
    d = bt_backoff_decide(&a, 1, 6 * SEC, &rl, &rng, NULL);
    cr_assert(!d.retry, "5 s more would end at 11 s > 10 s");
    cr_assert_eq(d.reason, BT_RETRY_MAX_ELAPSED);
}

Test(backoff, retry_after_is_clamped_by_the_configured_maximum)
{
    bt_backoff_args_t a = policy();
    a.max_elapsed_ns = 0;
    bt_prng_t rng;
    bt_prng_seed(&rng, 1);
    bt_failure_t f = {.http_status = 429, .has_retry_after = true, .retry_after_ns = 3600 * SEC};
    bt_retry_decision_t d = bt_backoff_decide(&a, 1, 0, &f, &rng, NULL);
    cr_assert(d.retry);
    cr_assert_eq(d.delay_ns, 8 * SEC);
}

Test(backoff, retry_budget_keeps_retries_under_the_fraction_of_calls)
{
    bt_retry_budget_t b;
    cr_assert_eq(bt_retry_budget_init(&b, 101, 0), BT_EINVAL);
    cr_assert_eq(bt_retry_budget_init(&b, 20, 3), BT_OK);
    int allowed = 0;
    for (int i = 0; i < 1000; i++) {
        bt_retry_budget_deposit(&b);
        for (int r = 0; r < 3; r++) /* every call fails and wants three retries */
            allowed += bt_retry_budget_withdraw(&b);
    }
    /* At most the reserve plus 20% of 1000 calls; exactly one deposit is
     * lost to the cap, the first, made while the balance was still full. */
    cr_assert_eq(allowed, 3 + 199);
    cr_assert_eq(b.retries, 202);
    cr_assert_eq(b.refused, 3000 - 202);
    cr_assert_eq(b.calls, 1000);

    bt_backoff_args_t a = policy();
    a.max_attempts = 100;
    a.max_elapsed_ns = 0;
    cr_assert_eq(bt_retry_budget_init(&b, 10, 1), BT_OK);
    bt_prng_t rng;
    bt_prng_seed(&rng, 9);
    bt_failure_t f = {.http_status = 503};
    cr_assert(bt_backoff_decide(&a, 1, 0, &f, &rng, &b).retry, "the reserve");
    bt_retry_decision_t d = bt_backoff_decide(&a, 2, 0, &f, &rng, &b);
    cr_assert(!d.retry);
    cr_assert_eq(d.reason, BT_RETRY_BUDGET);
    for (int i = 0; i < 10; i++)
        bt_retry_budget_deposit(&b);
    cr_assert(bt_backoff_decide(&a, 2, 0, &f, &rng, &b).retry, "10 calls paid for one retry");
}

Test(backoff, bad_policies_are_refused_with_a_reason)
{
    bt_backoff_args_t a = policy();
    const char *why = NULL;
    a.cap_ns = a.base_ns - 1;
    cr_assert_eq(bt_backoff_args_check(&a, &why), BT_EINVAL);
    cr_assert_not_null(strstr(why, "cap"));
    a = policy();
    a.max_attempts = 0;
    cr_assert_eq(bt_backoff_args_check(&a, &why), BT_EINVAL);
    cr_assert_not_null(strstr(why, "max_attempts"));
    a = policy();
    a.budget_ratio_pct = 150;
    cr_assert_eq(bt_backoff_args_check(&a, &why), BT_EINVAL);
    a = policy();
    a.base_ns = 0;
    cr_assert_eq(bt_backoff_args_check(&a, &why), BT_EINVAL);
    cr_assert_eq(bt_backoff_args_check(NULL, &why), BT_EINVAL);
}
