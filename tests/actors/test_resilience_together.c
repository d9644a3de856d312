/* test_resilience_together.c: the breaker, the rate limiter (with its
 * retry policy) and the timeout registry together, in virtual time, in
 * front of a simulated flaky downstream that fails for 30 s (some calls
 * fail at once with 503, some hang until their timeout). Clients keep
 * arriving at 50 per second throughout. The test asserts there is no
 * retry storm: while the downstream fails, attempts that reach it stay at
 * a handful per second; retries stay within the budget; and once it
 * recovers, traffic flows again at the offered rate. A second test runs
 * the same world without the breaker: the retry budget alone then bounds
 * attempts to the offered rate plus the budget's share. */
#include "breaker.h"
#include "ratelimit.h"
#include "timeouts.h"

#include <criterion/criterion.h>
#include <string.h>

#define MS  (1000000ull)
#define SEC (1000000000ull)

#define OUTAGE_FROM (2 * SEC)
#define OUTAGE_TO   (32 * SEC)
#define RUN_FOR     (42 * SEC)
#define TICK        (10 * MS)
#define ARRIVAL     (20 * MS) /* a new client call every 20 ms: 50/s */
#define JOBS_MAX    ((int)(RUN_FOR / ARRIVAL) + 1)

/* ------------------------------------------------------ expiry sink */

#define SINK_MAX 4096

typedef struct {
    uint64_t tags[SINK_MAX];
    int n;
} sink_t;

static int sink_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    *(const void **)state = arg;
    return BT_OK;
}

static int sink_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    sink_t *s = *(sink_t **)state;
    BT_ACTOR_ASSERT(ctx, msg->id == BT_TO_EXPIRED && s->n < SINK_MAX);
    s->tags[s->n++] = ((const bt_to_expired_msg_t *)msg)->tag;
    return BT_OK;
}

static const bt_actor_type_t sink_type = {
    .name = "sink", .state_size = sizeof(sink_t *), .init = sink_init, .dispatch = sink_dispatch};

/* ---------------------------------------------------------- the world */

enum job_state { JOB_WAITING, JOB_HANGING, JOB_FINISHED };

typedef struct {
    enum job_state state;
    uint64_t first_at, next_at, deadline; /* deadline: the whole job's */
    uint32_t attempts;                    /* attempts in the policy's sense */
    uint64_t gen;                         /* breaker generation of the hanging call */
    uint64_t call_started;
} job_t;

typedef struct {
    bt_runtime_t *rt;
    bt_ref_t breaker, limiter, timeouts, sink; /* breaker: BT_REF_NONE to go without */
    sink_t expired;
    job_t jobs[JOBS_MAX];
    int njobs;
    uint64_t attempts_per_s[RUN_FOR / SEC + 1];
    uint64_t successes_per_s[RUN_FOR / SEC + 1];
    uint64_t succeeded, gave_up, hung, retried;
} world_t;

static bt_msg_t *ask(world_t *w, bt_ref_t to, bt_msg_t *req, uint32_t want_id)
{
    bt_msg_t *reply;
    cr_assert_eq(bt_ask_wait(w->rt, to, req, SEC, &reply), BT_OK);
    cr_assert_eq(reply->id, want_id);
    return reply;
}

static void report(world_t *w, uint64_t gen, bt_breaker_outcome_t o, uint64_t latency)
{
    if (w->breaker == BT_REF_NONE)
        return;
    bt_breaker_report_msg_t *m = BT_MSG_NEW(bt_breaker_report_msg_t, BT_BREAKER_REPORT);
    m->generation = gen;
    m->outcome = o;
    m->latency_ns = latency;
    cr_assert_eq(bt_send(w->rt, w->breaker, &m->hdr), BT_OK);
}

/* After a failure (or a breaker rejection): ask the policy, and either
 * schedule the next attempt or give up. */
static void failed(world_t *w, job_t *j, uint64_t now, bt_failure_t f)
{
    bt_rl_retry_msg_t *m = BT_MSG_NEW(bt_rl_retry_msg_t, BT_RL_RETRY);
    m->attempts = j->attempts;
    m->first_at_ns = j->first_at;
    m->failure = f;
    bt_msg_t *r = ask(w, w->limiter, &m->hdr, BT_RL_RETRY_REPLY);
    bt_retry_decision_t d = ((bt_rl_retry_reply_msg_t *)r)->decision;
    bt_msg_free(r);
    if (d.retry) {
        j->next_at = now + d.delay_ns;
        j->state = JOB_WAITING;
        w->retried++;
    } else {
        j->state = JOB_FINISHED;
        w->gave_up++;
    }
}

/* The downstream: down between OUTAGE_FROM and OUTAGE_TO; then every third
 * call hangs, the others fail at once with 503. */
static int downstream(uint64_t now, uint64_t *calls)
{
    (*calls)++;
    if (now < OUTAGE_FROM || now >= OUTAGE_TO)
        return 200;
    return *calls % 3 == 0 ? 0 /* hangs */ : 503;
}

static void step_job(world_t *w, job_t *j, uint64_t now, uint64_t *calls)
{
    /* 1. The limiter. */
    bt_rl_acquire_msg_t *acq = BT_MSG_NEW(bt_rl_acquire_msg_t, BT_RL_ACQUIRE);
    acq->key = bt_ratelimit_key("downstream", 10);
    acq->first_attempt = j->attempts == 0;
    bt_msg_t *r = ask(w, w->limiter, &acq->hdr, BT_RL_DECISION);
    bt_rl_decision_msg_t dec = *(bt_rl_decision_msg_t *)r;
    bt_msg_free(r);
    cr_assert_eq(dec.status, BT_OK);
    if (!dec.go) {
        j->next_at = now + dec.wait_ns;
        return;
    }
    j->attempts++;
    /* 2. The breaker. */
    bt_breaker_permit_msg_t p = {.allowed = true};
    if (w->breaker != BT_REF_NONE) {
        r = ask(w, w->breaker, bt_msg_new(sizeof(bt_msg_t), BT_BREAKER_ACQUIRE), BT_BREAKER_PERMIT);
        p = *(bt_breaker_permit_msg_t *)r;
        bt_msg_free(r);
    }
    if (!p.allowed) {
        failed(w, j, now,
               (bt_failure_t){.flags = BT_FAILURE_RATE_LIMIT,
                              .has_retry_after = true,
                              .retry_after_ns = p.retry_after_ns});
        return;
    }
    /* 3. A deadline for the call, under the job's own. */
    bt_to_start_msg_t *ts = BT_MSG_NEW(bt_to_start_msg_t, BT_TO_START);
    strcpy(ts->cls, "quick");
    ts->parent = j->deadline;
    ts->notify = w->sink;
    ts->tag = (uint64_t)(j - w->jobs);
    r = ask(w, w->timeouts, &ts->hdr, BT_TO_STARTED);
    bt_to_started_msg_t started = *(bt_to_started_msg_t *)r;
    bt_msg_free(r);
    cr_assert_eq(started.status, BT_OK);
    cr_assert_leq(started.deadline, j->deadline);
    /* 4. The call. */
    w->attempts_per_s[now / SEC]++;
    int status = downstream(now, calls);
    if (status == 0) { /* hangs: the registry will tell the sink */
        j->state = JOB_HANGING;
        j->gen = p.generation;
        j->call_started = now;
        w->hung++;
        return;
    }
    bt_to_done_msg_t *dn = BT_MSG_NEW(bt_to_done_msg_t, BT_TO_DONE);
    dn->id = started.id;
    cr_assert_eq(bt_send(w->rt, w->timeouts, &dn->hdr), BT_OK);
    if (status == 200) {
        report(w, p.generation, BT_BREAKER_SUCCESS, 20 * MS);
        j->state = JOB_FINISHED;
        w->succeeded++;
        w->successes_per_s[now / SEC]++;
        return;
    }
    report(w, p.generation, BT_BREAKER_FAILURE, 20 * MS);
    failed(w, j, now, (bt_failure_t){.http_status = status});
}

#define MAX_ELAPSED (20 * SEC)

static world_t world; /* large: off the stack; each test runs in its own process */

/* Spawns the actors (the breaker only when asked) and runs 50 client calls
 * per second for RUN_FOR of virtual time. */
static void run_world(bool with_breaker)
{
    memset(&world, 0, sizeof world);
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.deterministic = true}, &world.rt),
                 BT_OK);
    cr_assert_eq(bt_runtime_start(world.rt), BT_OK);
    cr_assert_eq(bt_spawn(world.rt, &sink_type, &world.expired, NULL, &world.sink), BT_OK);

    bt_breaker_args_t ba = {.consecutive_failures = 5,
                            .window_size = 20,
                            .min_calls = 10,
                            .failure_rate_pct = 50,
                            .slow_call_ns = 1500 * MS,
                            .open_wait_ns = 1 * SEC,
                            .half_open_probes = 1,
                            .half_open_successes = 1};
    if (with_breaker)
        cr_assert_eq(bt_breaker_spawn(world.rt, &ba, &world.breaker), BT_OK);
    bt_ratelimit_args_t ra = {.rate = 100, .period_ns = SEC, .burst = 20, .seed = 2024};
    bt_backoff_args_default(&ra.retry);
    ra.retry.base_ns = 100 * MS;
    ra.retry.cap_ns = 5 * SEC;
    ra.retry.max_attempts = 6;
    ra.retry.max_elapsed_ns = MAX_ELAPSED;
    ra.retry.budget_ratio_pct = 20;
    ra.retry.budget_reserve = 10;
    cr_assert_eq(bt_ratelimit_spawn(world.rt, &ra, &world.limiter), BT_OK);
    bt_timeout_class_t cls[] = {{"quick", 2 * SEC}};
    bt_timeouts_args_t ta = {.classes = cls, .nclasses = 1};
    cr_assert_eq(bt_timeouts_spawn(world.rt, &ta, &world.timeouts), BT_OK);

    uint64_t calls = 0;
    for (uint64_t now = 0; now < RUN_FOR; now += TICK) {
        cr_assert_eq(bt_now(world.rt), now);
        if (now % ARRIVAL == 0 && world.njobs < JOBS_MAX) {
            job_t *j = &world.jobs[world.njobs++];
            j->state = JOB_WAITING;
            j->first_at = j->next_at = now;
            j->deadline = now + MAX_ELAPSED;
        }
        /* Calls that hung and timed out: failures, 2 s late. */
        for (int i = 0; i < world.expired.n; i++) {
            job_t *j = &world.jobs[world.expired.tags[i]];
            cr_assert_eq(j->state, JOB_HANGING);
            report(&world, j->gen, BT_BREAKER_FAILURE, now - j->call_started);
            failed(&world, j, now, (bt_failure_t){.http_status = 0});
        }
        world.expired.n = 0;
        for (int i = 0; i < world.njobs; i++)
            if (world.jobs[i].state == JOB_WAITING && world.jobs[i].next_at <= now)
                step_job(&world, &world.jobs[i], now, &calls);
        cr_assert_eq(bt_runtime_advance(world.rt, TICK), BT_OK);
    }
}

static void log_world(void)
{
    for (uint64_t s = 0; s < RUN_FOR / SEC; s++)
        cr_log_info("t=%2llus attempts=%llu successes=%llu", (unsigned long long)s,
                    (unsigned long long)world.attempts_per_s[s],
                    (unsigned long long)world.successes_per_s[s]);
    cr_log_info("succeeded=%llu gave_up=%llu retried=%llu hung=%llu jobs=%d",
                (unsigned long long)world.succeeded, (unsigned long long)world.gave_up,
                (unsigned long long)world.retried, (unsigned long long)world.hung, world.njobs);
}

static uint64_t worst_outage_second(void)
{
    uint64_t worst = 0;
    for (uint64_t s = OUTAGE_FROM / SEC + 1; s < OUTAGE_TO / SEC; s++)
        worst = world.attempts_per_s[s] > worst ? world.attempts_per_s[s] : worst;
    return worst;
}

static bt_rl_stats_msg_t limiter_stats(void)
{
    bt_msg_t *r =
        ask(&world, world.limiter, bt_msg_new(sizeof(bt_msg_t), BT_RL_STATS), BT_RL_STATS_REPLY);
    bt_rl_stats_msg_t rs = *(bt_rl_stats_msg_t *)r;
    bt_msg_free(r);
    return rs;
}

static void assert_deadlines_settled(void)
{
    bt_msg_t *r =
        ask(&world, world.timeouts, bt_msg_new(sizeof(bt_msg_t), BT_TO_STATS), BT_TO_STATS_REPLY);
    bt_to_stats_msg_t ts = *(bt_to_stats_msg_t *)r;
    bt_msg_free(r);
    cr_assert_gt(world.hung, 0);
    cr_assert_eq(ts.expired, world.hung, "every hung call was expired by the registry");
    cr_assert_eq(ts.live, 0);
    cr_assert_eq(ts.started, ts.completed + ts.expired);
}

Test(together, no_retry_storm_while_the_downstream_fails)
{
    run_world(true);
    log_world();
    /* No storm: from a second into the outage to its end, a handful of
     * attempts per second reach the downstream (one probe per open wait,
     * which may hang for 2 s), against 50 new client calls per second
     * plus their retries. */
    uint64_t worst = worst_outage_second();
    cr_assert_leq(worst, 3, "%llu attempts in a second of the outage", (unsigned long long)worst);
    cr_assert_leq(world.attempts_per_s[OUTAGE_FROM / SEC], 20, "the first second trips it quickly");
    /* Before and after: traffic flows at the offered 50/s. */
    cr_assert_eq(world.successes_per_s[1], 50);
    for (uint64_t s = 34; s < RUN_FOR / SEC; s++)
        cr_assert_geq(world.successes_per_s[s], 50, "second %llu: %llu", (unsigned long long)s,
                      (unsigned long long)world.successes_per_s[s]);
    /* The breaker kept probing and closed once the downstream recovered. */
    bt_msg_t *r = ask(&world, world.breaker, bt_msg_new(sizeof(bt_msg_t), BT_BREAKER_STATS),
                      BT_BREAKER_STATS_REPLY);
    bt_breaker_stats_msg_t bs = *(bt_breaker_stats_msg_t *)r;
    bt_msg_free(r);
    cr_assert_eq(bs.state, BT_BREAKER_CLOSED);
    cr_assert_geq(bs.counters.entered[BT_BREAKER_OPEN], 10);
    cr_assert_eq(bs.counters.entered[BT_BREAKER_CLOSED], 1);
    /* Retries stayed within the budget: reserve + 20% of first attempts. */
    bt_rl_stats_msg_t rs = limiter_stats();
    cr_assert_eq(rs.retries, world.retried);
    cr_assert_leq(rs.retries, 10 + rs.calls * 20 / 100);
    cr_assert_gt(rs.give_ups[BT_RETRY_BUDGET], 0, "the budget did refuse retries");
    assert_deadlines_settled();
    cr_assert_eq(bt_runtime_shutdown(world.rt, SEC), BT_OK);
}

Test(together, without_a_breaker_the_retry_budget_alone_bounds_attempts)
{
    run_world(false);
    log_world();
    /* Every client call now reaches the failing downstream once, and the
     * budget lets at most reserve (10, carried) + 20% of the second's 50
     * first attempts (10) be retried: 50 + 20 attempts a second at most,
     * where unbounded retries (6 attempts each) could reach 300. */
    uint64_t worst = worst_outage_second();
    cr_assert_leq(worst, 50 + 20, "%llu attempts in a second of the outage",
                  (unsigned long long)worst);
    bt_rl_stats_msg_t rs = limiter_stats();
    cr_assert_eq(rs.retries, world.retried);
    cr_assert_leq(rs.retries, 10 + rs.calls * 20 / 100);
    cr_assert_eq(world.successes_per_s[RUN_FOR / SEC - 1], 50, "flowing again at the end");
    assert_deadlines_settled();
    cr_assert_eq(bt_runtime_shutdown(world.rt, SEC), BT_OK);
}
