/*
 * bench_resilience.c: the cost of the resilience actors. Breaker
 * permission+report round trips per second and limiter decisions per
 * second through the actors, against the same logic called directly on
 * the calling thread; the ratio is the cost of the actor.
 *
 * DESIGN
 * Workloads (each value is the median of the reported runs):
 *  - breaker_actor: a driver actor asks the breaker for permission
 *    (bt_ask), and on the permit sends the report (a plain send) and asks
 *    again: one op = one permission+report round trip, one at a time.
 *  - breaker_direct: bt_breaker_core_acquire + bt_breaker_core_report with
 *    bt_now() each, in a loop: the same logic with no actor.
 *  - limiter_actor: a driver actor asks the limiter for a decision
 *    (bt_ask), over 1024 keys in turn: one op = one decision round trip.
 *  - limiter_send: the driver sends the acquires as plain messages (no
 *    reply), then one STATS ask to wait for them: the actor's mailbox cost
 *    without the ask machinery (its timeout timer, its pending table).
 *  - limiter_direct: bt_gcra_take with bt_now() on an array of 1024 TATs:
 *    the same arithmetic with no actor (and no hash table).
 * Rates are set high enough that every decision is "go" (the common path).
 * Only the loop is timed: spawning, the runtime's start and shutdown are
 * not. Output: RESULT lines (harness.h), then
 *   RATIO workload=<breaker|limiter|limiter_send> actor_over_direct=<x>
 * --short: one small run of each (a smoke test for CTest); exits non-zero
 * if a run fails or hangs.
 */
#include "breaker.h"
#include "harness.h"
#include "ratelimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEC     1000000000ull
#define NKEYS   1024u
#define RUNS    5
#define TIMEOUT (60 * SEC)

static uint32_t threads = 2;

enum { MSG_GO = 1 };

typedef enum { MODE_BREAKER, MODE_LIMITER, MODE_LIMITER_SEND } bench_mode_t;

typedef struct {
    bench_mode_t mode;
    bt_ref_t target;
    uint64_t ops;
    bench_latch_t *done;
} driver_arg_t;

typedef struct {
    driver_arg_t a;
    uint64_t left;
    uint64_t key;
} driver_state_t;

static int driver_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    driver_state_t *st = state;
    st->a = *(const driver_arg_t *)arg;
    st->left = st->a.ops;
    return BT_OK;
}

static int ask_next(bt_ctx_t *ctx, driver_state_t *st)
{
    bt_msg_t *m;
    if (st->a.mode == MODE_BREAKER) {
        m = bt_msg_new(sizeof(bt_msg_t), BT_BREAKER_ACQUIRE);
    } else {
        bt_rl_acquire_msg_t *a = BT_MSG_NEW(bt_rl_acquire_msg_t, BT_RL_ACQUIRE);
        if (a != NULL)
            a->key = st->key++ % NKEYS;
        m = &a->hdr;
    }
    if (m == NULL)
        return BT_ENOMEM;
    int rc = bt_ask(ctx, st->a.target, m, TIMEOUT, NULL);
    if (rc != BT_OK)
        bt_msg_free(m);
    return rc;
}

static int driver_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    driver_state_t *st = state;
    bt_runtime_t *rt = bt_ctx_runtime(ctx);
    switch (msg->id) {
    case MSG_GO:
        if (st->a.mode == MODE_LIMITER_SEND) {
            for (uint64_t i = 0; i < st->a.ops; i++) {
                bt_rl_acquire_msg_t *a = BT_MSG_NEW(bt_rl_acquire_msg_t, BT_RL_ACQUIRE);
                if (a == NULL)
                    return BT_ENOMEM;
                a->key = i % NKEYS;
                if (bt_send(rt, st->a.target, &a->hdr) != BT_OK) {
                    bt_msg_free(&a->hdr);
                    return BT_EFAILED;
                }
            }
            bt_msg_t *s = bt_msg_new(sizeof(bt_msg_t), BT_RL_STATS);
            int rc = s ? bt_ask(ctx, st->a.target, s, TIMEOUT, NULL) : BT_ENOMEM;
            if (rc != BT_OK)
                bt_msg_free(s);
            return rc;
        }
        return ask_next(ctx, st);
    case BT_BREAKER_PERMIT: {
        const bt_breaker_permit_msg_t *p = (const bt_breaker_permit_msg_t *)msg;
        if (!p->allowed) {
            bench_latch_fail(st->a.done, "breaker rejected a call", 0);
            return BT_OK;
        }
        bt_breaker_report_msg_t *r = BT_MSG_NEW(bt_breaker_report_msg_t, BT_BREAKER_REPORT);
        if (r == NULL)
            return BT_ENOMEM;
        r->generation = p->generation;
        r->outcome = BT_BREAKER_SUCCESS;
        r->latency_ns = 1000;
        if (bt_send(rt, st->a.target, &r->hdr) != BT_OK) {
            bt_msg_free(&r->hdr);
            return BT_EFAILED;
        }
        break;
    }
    case BT_RL_DECISION:
        if (!((const bt_rl_decision_msg_t *)msg)->go) {
            bench_latch_fail(st->a.done, "limiter said wait", 0);
            return BT_OK;
        }
        break;
    case BT_RL_STATS_REPLY:
        if (((const bt_rl_stats_msg_t *)msg)->granted != st->a.ops)
            bench_latch_fail(st->a.done, "limiter did not grant every acquire", 0);
        else
            bench_latch_count_down(st->a.done);
        return BT_OK;
    case BT_MSG_TIMEOUT:
        bench_latch_fail(st->a.done, "an ask timed out", BT_ETIMEDOUT);
        return BT_OK;
    default:
        return BT_OK;
    }
    if (--st->left == 0) {
        bench_latch_count_down(st->a.done);
        return BT_OK;
    }
    return ask_next(ctx, st);
}

static const bt_actor_type_t driver_type = {.name = "bench_driver",
                                            .state_size = sizeof(driver_state_t),
                                            .init = driver_init,
                                            .dispatch = driver_dispatch};

static bt_breaker_args_t breaker_args(void)
{
    return (bt_breaker_args_t){.consecutive_failures = 5,
                               .window_size = 100,
                               .min_calls = 20,
                               .failure_rate_pct = 50,
                               .open_wait_ns = SEC,
                               .half_open_probes = 1,
                               .half_open_successes = 1};
}

static bt_ratelimit_args_t limiter_args(void)
{
    /* 1e9 per second per key with a large burst: every decision is "go". */
    bt_ratelimit_args_t a = {.rate = 1000000000, .period_ns = SEC, .burst = 1u << 30, .seed = 1};
    bt_backoff_args_default(&a.retry);
    return a;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_resilience: %s: %s\n", what, bt_strerror(rc));
    exit(1);
}

/* ns per op through an actor. */
static double run_actor(bench_mode_t mode, uint64_t ops)
{
    bt_runtime_t *rt;
    int rc = bt_runtime_create(&(bt_runtime_config_t){.threads = threads}, &rt);
    if (rc != BT_OK || (rc = bt_runtime_start(rt)) != BT_OK)
        die("runtime", rc);
    bt_ref_t target;
    if (mode == MODE_BREAKER) {
        bt_breaker_args_t a = breaker_args();
        rc = bt_breaker_spawn(rt, &a, &target);
    } else {
        bt_ratelimit_args_t a = limiter_args();
        rc = bt_ratelimit_spawn(rt, &a, &target);
    }
    if (rc != BT_OK)
        die("spawn", rc);
    bench_latch_t done;
    bench_latch_init(&done, 1);
    driver_arg_t da = {.mode = mode, .target = target, .ops = ops, .done = &done};
    bt_ref_t driver;
    if ((rc = bt_spawn(rt, &driver_type, &da, NULL, &driver)) != BT_OK)
        die("spawn driver", rc);
    bt_msg_t *go = bt_msg_new(sizeof(bt_msg_t), MSG_GO);
    uint64_t t0 = bench_now_ns();
    if ((rc = bt_send(rt, driver, go)) != BT_OK)
        die("send", rc);
    int w = bench_latch_wait(&done, TIMEOUT);
    uint64_t t1 = bench_now_ns();
    if ((rc = bt_runtime_shutdown(rt, 10 * SEC)) != BT_OK)
        die("shutdown", rc);
    bench_latch_destroy(&done);
    if (w != 0) {
        fprintf(stderr, "bench_resilience: run failed or hung\n");
        exit(1);
    }
    return (double)(t1 - t0) / (double)ops;
}

static volatile uint64_t sink; /* keeps the direct loops from being optimised away */

static double run_direct(bench_mode_t mode, uint64_t ops)
{
    bt_runtime_t *rt; /* only for bt_now(), as the actors use it */
    int rc = bt_runtime_create(&(bt_runtime_config_t){.threads = 1}, &rt);
    if (rc != BT_OK)
        die("runtime", rc);
    uint64_t acc = 0, t0, t1;
    if (mode == MODE_BREAKER) {
        bt_breaker_core_t c;
        bt_breaker_args_t a = breaker_args();
        if ((rc = bt_breaker_core_init(&c, &a)) != BT_OK)
            die("core", rc);
        t0 = bench_now_ns();
        for (uint64_t i = 0; i < ops; i++) {
            uint64_t gen, retry;
            bt_breaker_event_t ev;
            bool changed;
            acc += bt_breaker_core_acquire(&c, bt_now(rt), &gen, &retry, &ev, &changed);
            acc += bt_breaker_core_report(&c, bt_now(rt), gen, BT_BREAKER_SUCCESS, 1000, &ev);
        }
        t1 = bench_now_ns();
        bt_breaker_core_deinit(&c);
    } else {
        bt_ratelimit_args_t a = limiter_args();
        bt_gcra_t g;
        (void)bt_gcra_init(&g, a.rate, a.period_ns, a.burst);
        static uint64_t tat[NKEYS];
        memset(tat, 0, sizeof tat);
        t0 = bench_now_ns();
        for (uint64_t i = 0; i < ops; i++)
            acc += bt_gcra_take(&g, &tat[i % NKEYS], bt_now(rt), 1) == 0;
        t1 = bench_now_ns();
    }
    sink = acc;
    if ((rc = bt_runtime_shutdown(rt, 10 * SEC)) != BT_OK)
        die("shutdown", rc);
    return (double)(t1 - t0) / (double)ops;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double (*fn)(bench_mode_t, uint64_t), bench_mode_t mode, uint64_t ops,
                        int runs, const char *workload, const char *args)
{
    double v[RUNS];
    (void)fn(mode, ops / 10 + 1); /* warm-up, unreported */
    for (int r = 0; r < runs; r++) {
        v[r] = fn(mode, ops);
        bench_result(workload, args, "ns_per_op", v[r]);
    }
    qsort(v, (size_t)runs, sizeof v[0], cmp_double);
    double m = v[runs / 2];
    printf("MEDIAN workload=%s args=%s ns_per_op=%.1f ops_per_s=%.0f\n", workload, args, m,
           1e9 / m);
    return m;
}

int main(int argc, char **argv)
{
    bool short_mode = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--short") == 0)
            short_mode = true;
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = (uint32_t)strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: bench_resilience [--short] [--threads N]\n");
            return 2;
        }
    }
    bench_impl = "baton";
    uint64_t actor_ops = short_mode ? 2000 : 1000000;
    uint64_t direct_ops = short_mode ? 20000 : 20000000;
    int runs = short_mode ? 1 : RUNS;
    char aa[32], da[32];
    snprintf(aa, sizeof aa, "%llu", (unsigned long long)actor_ops);
    snprintf(da, sizeof da, "%llu", (unsigned long long)direct_ops);

    double ba = median_of(run_actor, MODE_BREAKER, actor_ops, runs, "breaker_actor", aa);
    double bd = median_of(run_direct, MODE_BREAKER, direct_ops, runs, "breaker_direct", da);
    double la = median_of(run_actor, MODE_LIMITER, actor_ops, runs, "limiter_actor", aa);
    double ls = median_of(run_actor, MODE_LIMITER_SEND, actor_ops, runs, "limiter_send", aa);
    double ld = median_of(run_direct, MODE_LIMITER, direct_ops, runs, "limiter_direct", da);
    printf("RATIO workload=breaker actor_over_direct=%.1f\n", ba / bd);
    printf("RATIO workload=limiter actor_over_direct=%.1f\n", la / ld);
    printf("RATIO workload=limiter_send actor_over_direct=%.1f\n", ls / ld);
    bench_peak("resilience", aa);
    return 0;
}
