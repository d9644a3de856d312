/* test_breaker.c: the circuit breaker actor through its messages, in
 * deterministic virtual time: every transition with its counters and
 * events, the window math, the half_open probe limit, the generation
 * discard, cancellations and commands. */
#include "breaker.h"

#include <criterion/criterion.h>
#include <string.h>

#define MS  (1000000ull)
#define SEC (1000000000ull)

/* ------------------------------------------------------------ observer */

#define EVENTS_MAX 64

typedef struct {
    bt_breaker_event_t ev[EVENTS_MAX];
    int n;
} event_log_t;

static int observer_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    *(const void **)state = arg;
    return BT_OK;
}

static int observer_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    event_log_t *log = *(event_log_t **)state;
    if (msg->id == BT_BREAKER_EVENT && log->n < EVENTS_MAX)
        log->ev[log->n++] = ((const bt_breaker_event_msg_t *)msg)->event;
    return BT_OK;
}

static const bt_actor_type_t observer_type = {.name = "observer",
                                              .state_size = sizeof(event_log_t *),
                                              .init = observer_init,
                                              .dispatch = observer_dispatch};

/* ------------------------------------------------------------- helpers */

typedef struct {
    bt_runtime_t *rt;
    bt_ref_t breaker, observer;
    event_log_t log;
} fixture_t;

static bt_breaker_args_t consecutive_args(uint32_t n)
{
    return (bt_breaker_args_t){.consecutive_failures = n,
                               .open_wait_ns = 5 * SEC,
                               .half_open_probes = 2,
                               .half_open_successes = 2};
}

static void setup(fixture_t *f, bt_breaker_args_t a)
{
    memset(f, 0, sizeof *f);
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.deterministic = true}, &f->rt), BT_OK);
    cr_assert_eq(bt_runtime_start(f->rt), BT_OK);
    cr_assert_eq(bt_spawn(f->rt, &observer_type, &f->log, NULL, &f->observer), BT_OK);
    a.observer = f->observer;
    cr_assert_eq(bt_breaker_spawn(f->rt, &a, &f->breaker), BT_OK);
}

static void teardown(fixture_t *f)
{
    cr_assert_eq(bt_runtime_shutdown(f->rt, SEC), BT_OK);
}

static bt_breaker_permit_msg_t ask_permit(fixture_t *f)
{
    bt_msg_t *reply;
    cr_assert_eq(bt_ask_wait(f->rt, f->breaker, bt_msg_new(sizeof(bt_msg_t), BT_BREAKER_ACQUIRE),
                             SEC, &reply),
                 BT_OK);
    cr_assert_eq(reply->id, BT_BREAKER_PERMIT);
    bt_breaker_permit_msg_t p = *(bt_breaker_permit_msg_t *)reply;
    bt_msg_free(reply);
    return p;
}

static void report(fixture_t *f, uint64_t gen, bt_breaker_outcome_t o, uint64_t latency)
{
    bt_breaker_report_msg_t *m = BT_MSG_NEW(bt_breaker_report_msg_t, BT_BREAKER_REPORT);
    m->generation = gen;
    m->outcome = o;
    m->latency_ns = latency;
    cr_assert_eq(bt_send(f->rt, f->breaker, &m->hdr), BT_OK);
    cr_assert_eq(bt_runtime_run(f->rt), BT_OK);
}

/* A whole call: permission (must be allowed), then the outcome. */
static void call(fixture_t *f, bt_breaker_outcome_t o)
{
    bt_breaker_permit_msg_t p = ask_permit(f);
    cr_assert(p.allowed, "expected to be allowed in state %s", bt_breaker_state_name(p.state));
    report(f, p.generation, o, 1 * MS);
}

static bt_breaker_stats_msg_t stats(fixture_t *f)
{
    bt_msg_t *reply;
    cr_assert_eq(
        bt_ask_wait(f->rt, f->breaker, bt_msg_new(sizeof(bt_msg_t), BT_BREAKER_STATS), SEC, &reply),
        BT_OK);
    bt_breaker_stats_msg_t s = *(bt_breaker_stats_msg_t *)reply;
    bt_msg_free(reply);
    return s;
}

static bt_breaker_permit_msg_t force(fixture_t *f, bt_breaker_state_t to)
{
    bt_breaker_force_msg_t *m = BT_MSG_NEW(bt_breaker_force_msg_t, BT_BREAKER_FORCE);
    m->to = to;
    bt_msg_t *reply;
    cr_assert_eq(bt_ask_wait(f->rt, f->breaker, &m->hdr, SEC, &reply), BT_OK);
    bt_breaker_permit_msg_t p = *(bt_breaker_permit_msg_t *)reply;
    bt_msg_free(reply);
    return p;
}

static void assert_event(const fixture_t *f, int i, uint64_t at, bt_breaker_state_t from,
                         bt_breaker_state_t to, bt_breaker_reason_t why)
{
    cr_assert_gt(f->log.n, i, "event %d missing", i);
    const bt_breaker_event_t *e = &f->log.ev[i];
    cr_assert_eq(e->at_ns, at, "event %d at %llu", i, (unsigned long long)e->at_ns);
    cr_assert_eq(e->from, from, "event %d from %s", i, bt_breaker_state_name(e->from));
    cr_assert_eq(e->to, to, "event %d to %s", i, bt_breaker_state_name(e->to));
    cr_assert_eq(e->reason, why, "event %d: %s", i, bt_breaker_reason_text(e->reason));
}

/* --------------------------------------------------------------- tests */

Test(breaker, opens_after_threshold_consecutive_failures)
{
    fixture_t f;
    setup(&f, consecutive_args(3));
    call(&f, BT_BREAKER_FAILURE);
    call(&f, BT_BREAKER_FAILURE);
    cr_assert_eq(stats(&f).state, BT_BREAKER_CLOSED);
    cr_assert_eq(bt_runtime_advance(f.rt, 7 * MS), BT_OK);
    call(&f, BT_BREAKER_FAILURE);
    bt_breaker_stats_msg_t s = stats(&f);
    cr_assert_eq(s.state, BT_BREAKER_OPEN);
    cr_assert_eq(s.counters.failures, 3);
    cr_assert_eq(s.counters.allowed, 3);
    cr_assert_eq(s.counters.transitions, 1);
    cr_assert_eq(s.counters.entered[BT_BREAKER_OPEN], 1);
    cr_assert_eq(s.counters.by_reason[BT_BREAKER_REASON_CONSECUTIVE_FAILURES], 1);
    cr_assert_eq(s.events_sent, 1);
    cr_assert_eq(f.log.n, 1);
    assert_event(&f, 0, 7 * MS, BT_BREAKER_CLOSED, BT_BREAKER_OPEN,
                 BT_BREAKER_REASON_CONSECUTIVE_FAILURES);
    teardown(&f);
}

Test(breaker, a_success_resets_the_consecutive_count)
{
    fixture_t f;
    setup(&f, consecutive_args(3));
    for (int i = 0; i < 10; i++) {
        call(&f, BT_BREAKER_FAILURE);
        call(&f, BT_BREAKER_FAILURE);
        call(&f, BT_BREAKER_SUCCESS);
    }
    bt_breaker_stats_msg_t s = stats(&f);
    cr_assert_eq(s.state, BT_BREAKER_CLOSED);
    cr_assert_eq(s.counters.failures, 20);
    cr_assert_eq(s.counters.successes, 10);
    cr_assert_eq(s.counters.transitions, 0);
    teardown(&f);
}

Test(breaker, rejects_while_open_with_the_time_left_until_retry)
{
    fixture_t f;
    setup(&f, consecutive_args(1));
    call(&f, BT_BREAKER_FAILURE);
    bt_breaker_permit_msg_t p = ask_permit(&f);
    cr_assert(!p.allowed);
    cr_assert_eq(p.state, BT_BREAKER_OPEN);
    cr_assert_eq(p.retry_after_ns, 5 * SEC);
    cr_assert_eq(bt_runtime_advance(f.rt, 3 * SEC), BT_OK);
    p = ask_permit(&f);
    cr_assert(!p.allowed);
    cr_assert_eq(p.retry_after_ns, 2 * SEC);
    cr_assert_eq(stats(&f).counters.rejected, 2);
    teardown(&f);
}

Test(breaker, opens_on_failure_rate_over_the_window_once_min_calls_are_in)
{
    bt_breaker_args_t a = {.window_size = 10,
                           .min_calls = 5,
                           .failure_rate_pct = 50,
                           .open_wait_ns = SEC,
                           .half_open_probes = 1,
                           .half_open_successes = 1};
    fixture_t f;
    setup(&f, a);
    /* F F F F: 100% failures but only 4 calls: below min_calls. */
    for (int i = 0; i < 4; i++)
        call(&f, BT_BREAKER_FAILURE);
    bt_breaker_stats_msg_t s = stats(&f);
    cr_assert_eq(s.state, BT_BREAKER_CLOSED);
    cr_assert_eq(s.window_calls, 4);
    cr_assert_eq(s.window_failures, 4);
    teardown(&f);

    setup(&f, a);
    /* S x 6 then F x 4: 4/10 = 40% < 50%. */
    for (int i = 0; i < 6; i++)
        call(&f, BT_BREAKER_SUCCESS);
    for (int i = 0; i < 4; i++)
        call(&f, BT_BREAKER_FAILURE);
    s = stats(&f);
    cr_assert_eq(s.state, BT_BREAKER_CLOSED);
    cr_assert_eq(s.window_calls, 10);
    cr_assert_eq(s.window_failures, 4);
    /* The window slides: an S drops out, an F comes in: 5/10 = 50%. */
    call(&f, BT_BREAKER_FAILURE);
    s = stats(&f);
    cr_assert_eq(s.state, BT_BREAKER_OPEN);
    cr_assert_eq(s.counters.by_reason[BT_BREAKER_REASON_FAILURE_RATE], 1);
    cr_assert_eq(s.window_calls, 0, "the window starts afresh");
    assert_event(&f, 0, 0, BT_BREAKER_CLOSED, BT_BREAKER_OPEN, BT_BREAKER_REASON_FAILURE_RATE);
    teardown(&f);
}

Test(breaker, old_failures_slide_out_of_the_window)
{
    bt_breaker_args_t a = {.window_size = 4,
                           .min_calls = 4,
                           .failure_rate_pct = 75,
                           .open_wait_ns = SEC,
                           .half_open_probes = 1,
                           .half_open_successes = 1};
    fixture_t f;
    setup(&f, a);
    /* F F S S S F F S: every window of 4 has at most 2 failures. */
    bt_breaker_outcome_t seq[] = {BT_BREAKER_FAILURE, BT_BREAKER_FAILURE, BT_BREAKER_SUCCESS,
                                  BT_BREAKER_SUCCESS, BT_BREAKER_SUCCESS, BT_BREAKER_FAILURE,
                                  BT_BREAKER_FAILURE, BT_BREAKER_SUCCESS};
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++)
        call(&f, seq[i]);
    bt_breaker_stats_msg_t s = stats(&f);
    cr_assert_eq(s.state, BT_BREAKER_CLOSED);
    cr_assert_eq(s.window_calls, 4);
    cr_assert_eq(s.window_failures, 2);
    call(&f, BT_BREAKER_FAILURE); /* F F S F: 75% */
    cr_assert_eq(stats(&f).state, BT_BREAKER_OPEN);
    teardown(&f);
}

Test(breaker, slow_successes_count_as_failures)
{
    bt_breaker_args_t a = consecutive_args(2);
    a.slow_call_ns = 2 * SEC;
    fixture_t f;
    setup(&f, a);
    bt_breaker_permit_msg_t p = ask_permit(&f);
    report(&f, p.generation, BT_BREAKER_SUCCESS, 2 * SEC - 1);
    p = ask_permit(&f);
    report(&f, p.generation, BT_BREAKER_SUCCESS, 2 * SEC);
    p = ask_permit(&f);
    report(&f, p.generation, BT_BREAKER_SUCCESS, 30 * SEC);
    bt_breaker_stats_msg_t s = stats(&f);
    cr_assert_eq(s.state, BT_BREAKER_OPEN);
    cr_assert_eq(s.counters.slow, 2);
    cr_assert_eq(s.counters.successes, 1);
    cr_assert_eq(s.counters.failures, 2);
    teardown(&f);
}

Test(breaker, goes_half_open_when_the_wait_elapses_by_timer_with_an_event)
{
    fixture_t f;
    setup(&f, consecutive_args(1));
    cr_assert_eq(bt_runtime_advance(f.rt, 1 * SEC), BT_OK);
    call(&f, BT_BREAKER_FAILURE); /* open at 1 s, wait 5 s */
    cr_assert_eq(bt_runtime_advance(f.rt, 5 * SEC - 1 * MS), BT_OK);
    cr_assert_eq(stats(&f).state, BT_BREAKER_OPEN);
    cr_assert_eq(bt_runtime_advance(f.rt, 1 * MS), BT_OK);
    cr_assert_eq(stats(&f).state, BT_BREAKER_HALF_OPEN, "no call needed: the timer did it");
    cr_assert_eq(f.log.n, 2);
    assert_event(&f, 1, 6 * SEC, BT_BREAKER_OPEN, BT_BREAKER_HALF_OPEN,
                 BT_BREAKER_REASON_WAIT_ELAPSED);
    teardown(&f);
}

Test(breaker, half_open_lets_only_the_probe_limit_through)
{
    fixture_t f;
    setup(&f, consecutive_args(1)); /* 2 probes, 2 successes to close */
    call(&f, BT_BREAKER_FAILURE);
    cr_assert_eq(bt_runtime_advance(f.rt, 5 * SEC), BT_OK);
    bt_breaker_permit_msg_t p1 = ask_permit(&f), p2 = ask_permit(&f), p3 = ask_permit(&f);
    cr_assert(p1.allowed && p2.allowed);
    cr_assert(!p3.allowed, "a third concurrent probe is refused");
    cr_assert_eq(p3.state, BT_BREAKER_HALF_OPEN);
    cr_assert_eq(p3.retry_after_ns, 5 * SEC);
    report(&f, p1.generation, BT_BREAKER_SUCCESS, MS);
    cr_assert(!ask_permit(&f).allowed, "the limit is on probes in all, not in flight");
    cr_assert_eq(stats(&f).state, BT_BREAKER_HALF_OPEN);
    report(&f, p2.generation, BT_BREAKER_SUCCESS, MS);
    bt_breaker_stats_msg_t s = stats(&f);
    cr_assert_eq(s.state, BT_BREAKER_CLOSED);
    cr_assert_eq(s.counters.by_reason[BT_BREAKER_REASON_PROBES_SUCCEEDED], 1);
    cr_assert_eq(f.log.n, 3);
    assert_event(&f, 2, 5 * SEC, BT_BREAKER_HALF_OPEN, BT_BREAKER_CLOSED,
                 BT_BREAKER_REASON_PROBES_SUCCEEDED);
    call(&f, BT_BREAKER_SUCCESS);
    teardown(&f);
}

Test(breaker, a_failed_probe_reopens_for_another_full_wait)
{
    fixture_t f;
    setup(&f, consecutive_args(1));
    call(&f, BT_BREAKER_FAILURE);
    cr_assert_eq(bt_runtime_advance(f.rt, 5 * SEC), BT_OK);
    bt_breaker_permit_msg_t p1 = ask_permit(&f), p2 = ask_permit(&f);
    report(&f, p1.generation, BT_BREAKER_SUCCESS, MS);
    cr_assert_eq(bt_runtime_advance(f.rt, 1 * SEC), BT_OK);
    report(&f, p2.generation, BT_BREAKER_FAILURE, MS);
    bt_breaker_permit_msg_t p = ask_permit(&f);
    cr_assert(!p.allowed);
    cr_assert_eq(p.state, BT_BREAKER_OPEN);
    cr_assert_eq(p.retry_after_ns, 5 * SEC);
    assert_event(&f, 2, 6 * SEC, BT_BREAKER_HALF_OPEN, BT_BREAKER_OPEN,
                 BT_BREAKER_REASON_PROBE_FAILED);
    cr_assert_eq(bt_runtime_advance(f.rt, 5 * SEC), BT_OK);
    cr_assert_eq(stats(&f).state, BT_BREAKER_HALF_OPEN);
    bt_breaker_stats_msg_t s = stats(&f);
    cr_assert_eq(s.counters.entered[BT_BREAKER_OPEN], 2);
    cr_assert_eq(s.counters.entered[BT_BREAKER_HALF_OPEN], 2);
    cr_assert_eq(s.counters.transitions, 4);
    cr_assert_eq(s.events_sent, 4);
    teardown(&f);
}

Test(breaker, results_from_before_a_state_change_are_discarded)
{
    fixture_t f;
    setup(&f, consecutive_args(2));
    bt_breaker_permit_msg_t slow_call = ask_permit(&f); /* in flight across the changes */
    call(&f, BT_BREAKER_FAILURE);
    call(&f, BT_BREAKER_FAILURE); /* open */
    cr_assert_eq(bt_runtime_advance(f.rt, 5 * SEC), BT_OK);
    bt_breaker_permit_msg_t probe = ask_permit(&f); /* half_open */
    cr_assert(probe.allowed);
    cr_assert_neq(probe.generation, slow_call.generation);
    /* The old call succeeds now: it must not count as a probe success. */
    report(&f, slow_call.generation, BT_BREAKER_SUCCESS, MS);
    report(&f, slow_call.generation, BT_BREAKER_SUCCESS, MS);
    bt_breaker_stats_msg_t s = stats(&f);
    cr_assert_eq(s.state, BT_BREAKER_HALF_OPEN);
    cr_assert_eq(s.counters.stale, 2);
    cr_assert_eq(s.counters.successes, 0);
    report(&f, probe.generation, BT_BREAKER_FAILURE, MS);
    cr_assert_eq(stats(&f).state, BT_BREAKER_OPEN);
    report(&f, probe.generation, BT_BREAKER_FAILURE, MS); /* a duplicate: stale now */
    cr_assert_eq(stats(&f).counters.stale, 3);
    teardown(&f);
}

Test(breaker, cancelled_calls_count_as_neither_and_free_their_probe_slot)
{
    fixture_t f;
    setup(&f, consecutive_args(2));
    call(&f, BT_BREAKER_FAILURE);
    call(&f, BT_BREAKER_CANCELLED);
    call(&f, BT_BREAKER_CANCELLED);
    call(&f, BT_BREAKER_FAILURE); /* still consecutive: cancellations do not break it */
    bt_breaker_stats_msg_t s = stats(&f);
    cr_assert_eq(s.state, BT_BREAKER_OPEN);
    cr_assert_eq(s.counters.cancelled, 2);
    cr_assert_eq(s.counters.failures, 2);
    cr_assert_eq(s.counters.successes, 0);
    cr_assert_eq(bt_runtime_advance(f.rt, 5 * SEC), BT_OK);
    bt_breaker_permit_msg_t p1 = ask_permit(&f), p2 = ask_permit(&f);
    cr_assert(!ask_permit(&f).allowed);
    report(&f, p1.generation, BT_BREAKER_CANCELLED, MS);
    bt_breaker_permit_msg_t p3 = ask_permit(&f);
    cr_assert(p3.allowed, "the cancelled probe's slot is free again");
    report(&f, p2.generation, BT_BREAKER_SUCCESS, MS);
    report(&f, p3.generation, BT_BREAKER_SUCCESS, MS);
    cr_assert_eq(stats(&f).state, BT_BREAKER_CLOSED);
    teardown(&f);
}

Test(breaker, commands_force_open_disable_and_reset)
{
    fixture_t f;
    setup(&f, consecutive_args(1));
    bt_breaker_permit_msg_t r = force(&f, BT_BREAKER_FORCED_OPEN);
    cr_assert_eq(r.status, BT_OK);
    cr_assert_eq(r.state, BT_BREAKER_FORCED_OPEN);
    cr_assert_eq(bt_runtime_advance(f.rt, 60 * SEC), BT_OK);
    bt_breaker_permit_msg_t p = ask_permit(&f);
    cr_assert(!p.allowed, "forced_open stays open past any wait");
    cr_assert_eq(p.state, BT_BREAKER_FORCED_OPEN);
    r = force(&f, BT_BREAKER_DISABLED);
    cr_assert_eq(r.state, BT_BREAKER_DISABLED);
    for (int i = 0; i < 10; i++)
        call(&f, BT_BREAKER_FAILURE); /* never trips */
    cr_assert_eq(stats(&f).state, BT_BREAKER_DISABLED);
    cr_assert_eq(force(&f, BT_BREAKER_HALF_OPEN).status, BT_EINVAL, "not settable");
    r = force(&f, BT_BREAKER_CLOSED);
    cr_assert_eq(r.state, BT_BREAKER_CLOSED);
    call(&f, BT_BREAKER_FAILURE);
    cr_assert_eq(stats(&f).state, BT_BREAKER_OPEN);
    r = force(&f, BT_BREAKER_CLOSED); /* a reset from open cancels the wait timer */
    cr_assert_eq(r.state, BT_BREAKER_CLOSED);
    cr_assert_eq(bt_runtime_advance(f.rt, 10 * SEC), BT_OK);
    bt_breaker_stats_msg_t s = stats(&f);
    cr_assert_eq(s.state, BT_BREAKER_CLOSED, "the old timer did not move it");
    cr_assert_eq(s.counters.by_reason[BT_BREAKER_REASON_COMMAND], 4);
    cr_assert_eq(f.log.n, 5);
    assert_event(&f, 0, 0, BT_BREAKER_CLOSED, BT_BREAKER_FORCED_OPEN, BT_BREAKER_REASON_COMMAND);
    assert_event(&f, 1, 60 * SEC, BT_BREAKER_FORCED_OPEN, BT_BREAKER_DISABLED,
                 BT_BREAKER_REASON_COMMAND);
    teardown(&f);
}

Test(breaker, bad_arguments_are_refused_with_a_reason)
{
    const char *why = NULL;
    bt_breaker_args_t a = consecutive_args(0);
    cr_assert_eq(bt_breaker_args_check(&a, &why), BT_EINVAL);
    cr_assert_not_null(strstr(why, "consecutive_failures or window_size"));
    a = consecutive_args(1);
    a.half_open_successes = 3;
    cr_assert_eq(bt_breaker_args_check(&a, &why), BT_EINVAL);
    cr_assert_not_null(strstr(why, "half_open_successes"));
    a = consecutive_args(1);
    a.window_size = 10;
    a.min_calls = 11;
    a.failure_rate_pct = 50;
    cr_assert_eq(bt_breaker_args_check(&a, &why), BT_EINVAL);
    cr_assert_not_null(strstr(why, "min_calls"));
    a.min_calls = 10;
    a.failure_rate_pct = 0;
    cr_assert_eq(bt_breaker_args_check(&a, &why), BT_EINVAL);
    a.failure_rate_pct = 100;
    a.open_wait_ns = 0;
    cr_assert_eq(bt_breaker_args_check(&a, &why), BT_EINVAL);
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.deterministic = true}, &rt), BT_OK);
    bt_ref_t b;
    cr_assert_eq(bt_breaker_spawn(rt, &a, &b), BT_EINVAL);
    cr_assert_eq(bt_runtime_shutdown(rt, SEC), BT_OK);
}
