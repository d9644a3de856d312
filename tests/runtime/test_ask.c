/* test_ask.c: ask/reply inside actors (with timeouts and late replies),
 * asks in cycles, and the blocking ask from outside. */
#include "helpers.h"

#include <criterion/criterion.h>

#define MS (1000000ull)

enum { MSG_QUESTION = 1, MSG_ANSWER, MSG_GO, MSG_RELEASE };

typedef struct {
    bt_msg_t hdr;
    int64_t value;
} num_msg;

static num_msg *num(uint32_t id, int64_t v)
{
    num_msg *m = BT_MSG_NEW(num_msg, id);
    m->value = v;
    return m;
}

/* Replies; a reply that cannot be delivered (the asker is gone) is ours to
 * free, and is not a failure of the answerer. */
static int reply_or_free(bt_ctx_t *ctx, const bt_msg_t *request, num_msg *reply)
{
    int rc = bt_reply(ctx, request, &reply->hdr);
    if (rc != BT_OK)
        bt_msg_free(&reply->hdr);
    return rc == BT_ENOACTOR ? BT_OK : rc;
}

/* The answerer doubles the question; with delay_ms it answers later, from
 * a timer (held answers go out on MSG_RELEASE). */
typedef struct {
    uint64_t delay_ms;
    bt_ref_t held_to;
    uint64_t held_corr;
    int64_t held_value;
    bool holding;
} answerer_t;

static int answerer_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    ((answerer_t *)state)->delay_ms = arg != NULL ? *(const uint64_t *)arg : 0;
    return BT_OK;
}

static int answerer_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    answerer_t *st = state;
    if (msg->id == MSG_QUESTION) {
        int64_t v = ((const num_msg *)msg)->value * 2;
        if (st->delay_ms == 0)
            return reply_or_free(ctx, msg, num(MSG_ANSWER, v));
        /* Hold the request's identity; answer when the timer says so. */
        st->held_to = msg->from;
        st->held_corr = msg->corr;
        st->held_value = v;
        st->holding = true;
        return bt_timer_start(bt_ctx_runtime(ctx), bt_self(ctx), &num(MSG_RELEASE, 0)->hdr,
                              st->delay_ms * MS, 0, NULL);
    }
    if (msg->id == MSG_RELEASE && st->holding) {
        st->holding = false;
        bt_msg_t fake = {.id = MSG_QUESTION, .from = st->held_to, .corr = st->held_corr};
        return reply_or_free(ctx, &fake, num(MSG_ANSWER, st->held_value));
    }
    return BT_OK;
}

static const bt_actor_type_t answerer = {.name = "answerer",
                                         .state_size = sizeof(answerer_t),
                                         .init = answerer_init,
                                         .dispatch = answerer_dispatch};

/* The asker asks `target` on MSG_GO and records what comes back. */
typedef struct {
    bt_ref_t target;
    uint64_t timeout_ms;
    uint64_t corr;
    int answers, timeouts, others;
    int64_t last;
    uint64_t answered_corr;
} asker_t;

typedef struct {
    bt_ref_t target;
    uint64_t timeout_ms;
} asker_arg;

static asker_t *last_asker; /* deterministic mode: read after bt_runtime_run() */

static int asker_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    asker_t *st = state;
    const asker_arg *a = arg;
    st->target = a->target == BT_REF_NONE ? bt_self(ctx) : a->target;
    st->timeout_ms = a->timeout_ms;
    last_asker = st;
    return BT_OK;
}

static int asker_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    asker_t *st = state;
    switch (msg->id) {
    case MSG_GO:
        return bt_ask(ctx, st->target, &num(MSG_QUESTION, 21)->hdr, st->timeout_ms * MS, &st->corr);
    case MSG_QUESTION: /* asking itself: answer its own question */
        return reply_or_free(ctx, msg, num(MSG_ANSWER, ((const num_msg *)msg)->value * 2));
    case MSG_ANSWER:
        st->answers++;
        st->last = ((const num_msg *)msg)->value;
        st->answered_corr = msg->corr;
        return BT_OK;
    case BT_MSG_TIMEOUT:
        st->timeouts++;
        cr_assert_eq(msg->corr, st->corr, "the timeout names the ask");
        return BT_OK;
    default:
        st->others++;
        return BT_OK;
    }
}

static const bt_actor_type_t asker = {
    .name = "asker", .state_size = sizeof(asker_t), .init = asker_init, .dispatch = asker_dispatch};

static bt_runtime_t *virtual_runtime(void)
{
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.deterministic = true}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    return rt;
}

static void go(bt_runtime_t *rt, bt_ref_t to)
{
    cr_assert_eq(bt_send(rt, to, bt_msg_new(sizeof(bt_msg_t), MSG_GO)), BT_OK);
}

Test(ask, reply_comes_back_as_a_message_with_the_correlation_id)
{
    bt_runtime_t *rt = virtual_runtime();
    bt_ref_t ans, ask;
    cr_assert_eq(bt_spawn(rt, &answerer, NULL, NULL, &ans), BT_OK);
    cr_assert_eq(bt_spawn(rt, &asker, &(asker_arg){ans, 100}, NULL, &ask), BT_OK);
    go(rt, ask);
    cr_assert_eq(bt_runtime_run(rt), BT_OK);
    cr_assert_eq(last_asker->answers, 1);
    cr_assert_eq(last_asker->last, 42);
    cr_assert_eq(last_asker->answered_corr & ~(1ull << 63), last_asker->corr);
    cr_assert_eq(bt_runtime_advance(rt, SEC_NS), BT_OK);
    cr_assert_eq(last_asker->timeouts, 0, "a settled ask never times out");
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}

Test(ask, timeout_then_late_reply_is_dropped_and_counted)
{
    bt_runtime_t *rt = virtual_runtime();
    uint64_t delay = 50;
    bt_ref_t ans, ask;
    cr_assert_eq(bt_spawn(rt, &answerer, &delay, NULL, &ans), BT_OK);
    cr_assert_eq(bt_spawn(rt, &asker, &(asker_arg){ans, 20}, NULL, &ask), BT_OK);
    go(rt, ask);
    cr_assert_eq(bt_runtime_advance(rt, 19 * MS), BT_OK);
    cr_assert_eq(last_asker->timeouts, 0);
    cr_assert_eq(bt_runtime_advance(rt, 1 * MS), BT_OK);
    cr_assert_eq(last_asker->timeouts, 1, "timed out at 20 ms");
    cr_assert_eq(bt_runtime_advance(rt, 100 * MS), BT_OK);
    cr_assert_eq(last_asker->answers, 0, "the late reply is never taken for the answer");
    cr_assert_eq(last_asker->others, 0);
    bt_runtime_stats_t s;
    bt_runtime_stats(rt, &s);
    cr_assert_eq(s.late_replies, 1);
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}

Test(ask, an_actor_asking_itself_gets_its_answer_without_deadlock)
{
    bt_runtime_t *rt = virtual_runtime();
    bt_ref_t ask;
    cr_assert_eq(bt_spawn(rt, &asker, &(asker_arg){BT_REF_NONE, 100}, NULL, &ask), BT_OK);
    go(rt, ask);
    cr_assert_eq(bt_runtime_advance(rt, SEC_NS), BT_OK);
    cr_assert_eq(last_asker->answers, 1);
    cr_assert_eq(last_asker->last, 42);
    cr_assert_eq(last_asker->timeouts, 0);
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}

/* Two actors that each ask the other before answering anything: with
 * blocking asks this would deadlock; here both time out, then recover. */
typedef struct {
    bt_ref_t peer;
    int timeouts, answers;
} cycler_t;

static int cycler_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    cycler_t *st = state;
    switch (msg->id) {
    case MSG_GO:
        st->peer = ((const num_msg *)msg)->value;
        return bt_ask(ctx, st->peer, &num(MSG_QUESTION, 1)->hdr, 30 * MS, NULL);
    case MSG_QUESTION:
        /* Answer only after our own question is settled: a cycle. */
        return BT_OK;
    case BT_MSG_TIMEOUT:
        st->timeouts++;
        return BT_OK;
    default:
        st->answers++;
        return BT_OK;
    }
}

static cycler_t *cyclers[2];

static int cycler_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    cyclers[*(const int *)arg] = state;
    return BT_OK;
}

static const bt_actor_type_t cycler = {.name = "cycler",
                                       .state_size = sizeof(cycler_t),
                                       .init = cycler_init,
                                       .dispatch = cycler_dispatch};

Test(ask, asks_in_a_cycle_time_out_instead_of_deadlocking)
{
    bt_runtime_t *rt = virtual_runtime();
    bt_ref_t a, b;
    int ia = 0, ib = 1;
    cr_assert_eq(bt_spawn(rt, &cycler, &ia, NULL, &a), BT_OK);
    cr_assert_eq(bt_spawn(rt, &cycler, &ib, NULL, &b), BT_OK);
    cr_assert_eq(bt_send(rt, a, &num(MSG_GO, (int64_t)b)->hdr), BT_OK);
    cr_assert_eq(bt_send(rt, b, &num(MSG_GO, (int64_t)a)->hdr), BT_OK);
    cr_assert_eq(bt_runtime_advance(rt, 100 * MS), BT_OK);
    cr_assert_eq(cyclers[0]->timeouts, 1);
    cr_assert_eq(cyclers[1]->timeouts, 1);
    cr_assert(bt_alive(rt, a) && bt_alive(rt, b), "both keep serving");
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}

Test(ask, blocking_ask_from_outside_returns_the_reply)
{
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 2}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    bt_ref_t ans;
    cr_assert_eq(bt_spawn(rt, &answerer, NULL, NULL, &ans), BT_OK);
    for (int i = 0; i < 1000; i++) {
        bt_msg_t *reply = NULL;
        cr_assert_eq(bt_ask_wait(rt, ans, &num(MSG_QUESTION, i)->hdr, 5 * SEC_NS, &reply), BT_OK);
        cr_assert_eq(reply->id, MSG_ANSWER);
        cr_assert_eq(((num_msg *)reply)->value, 2 * i);
        bt_msg_free(reply);
    }
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
}

Test(ask, blocking_ask_from_outside_times_out_at_its_deadline)
{
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 2}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    uint64_t delay = 200;
    bt_ref_t ans;
    cr_assert_eq(bt_spawn(rt, &answerer, &delay, NULL, &ans), BT_OK);
    bt_msg_t *reply = NULL;
    uint64_t t0 = bt_now(rt);
    cr_assert_eq(bt_ask_wait(rt, ans, &num(MSG_QUESTION, 1)->hdr, 30 * MS, &reply), BT_ETIMEDOUT);
    uint64_t took = bt_now(rt) - t0;
    cr_assert_null(reply);
    cr_assert_geq(took, 30 * MS);
    cr_assert_lt(took, 2 * SEC_NS);
    /* The late reply is dropped and counted, never delivered... */
    cr_assert(WAIT_UNTIL(({
                             bt_runtime_stats_t s;
                             bt_runtime_stats(rt, &s);
                             s.late_replies == 1;
                         }),
                         5000));
    /* ...and never taken for the answer to the next ask. */
    bt_ref_t fast;
    cr_assert_eq(bt_spawn(rt, &answerer, NULL, NULL, &fast), BT_OK);
    cr_assert_eq(bt_ask_wait(rt, fast, &num(MSG_QUESTION, 5)->hdr, 5 * SEC_NS, &reply), BT_OK);
    cr_assert_eq(((num_msg *)reply)->value, 10);
    bt_msg_free(reply);
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
}

Test(ask, blocking_ask_in_virtual_time_runs_the_clock)
{
    bt_runtime_t *rt = virtual_runtime();
    uint64_t delay = 50;
    bt_ref_t ans;
    cr_assert_eq(bt_spawn(rt, &answerer, &delay, NULL, &ans), BT_OK);
    bt_msg_t *reply = NULL;
    cr_assert_eq(bt_ask_wait(rt, ans, &num(MSG_QUESTION, 4)->hdr, 100 * MS, &reply), BT_OK);
    cr_assert_eq(((num_msg *)reply)->value, 8);
    cr_assert_eq(bt_now(rt), 50 * MS, "the reply came at exactly 50 ms of virtual time");
    bt_msg_free(reply);
    cr_assert_eq(bt_ask_wait(rt, ans, &num(MSG_QUESTION, 4)->hdr, 10 * MS, &reply), BT_ETIMEDOUT);
    cr_assert_eq(bt_now(rt), 60 * MS);
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}

static int inside_result = 1;

static int blocking_inside_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    bt_msg_t *reply = NULL;
    bt_msg_t *q = &num(MSG_QUESTION, 1)->hdr;
    int rc = bt_ask_wait(bt_ctx_runtime(ctx), bt_self(ctx), q, SEC_NS, &reply); /* takes q */
    __atomic_store_n(&inside_result, rc, __ATOMIC_RELEASE);
    return BT_OK;
}

static const bt_actor_type_t blocking_inside = {.name = "blocking-inside",
                                                .dispatch = blocking_inside_dispatch};

Test(ask, blocking_ask_inside_an_actor_is_refused)
{
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 1}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    bt_ref_t a;
    cr_assert_eq(bt_spawn(rt, &blocking_inside, NULL, NULL, &a), BT_OK);
    go(rt, a);
    cr_assert(WAIT_UNTIL(__atomic_load_n(&inside_result, __ATOMIC_ACQUIRE) != 1, 5000));
    cr_assert_eq(inside_result, BT_ESTATE);
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
}

Test(ask, reply_to_a_plain_message_is_refused)
{
    bt_runtime_t *rt = virtual_runtime();
    bt_msg_t plain = {.id = 1, .from = 5};
    bt_ctx_t *none = NULL;
    num_msg *answer = num(MSG_ANSWER, 0);
    cr_assert_eq(bt_reply(none, &plain, &answer->hdr), BT_EINVAL);
    bt_msg_free(&answer->hdr); /* a refused reply stays ours */
    cr_assert_not(bt_msg_is_request(&plain));
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}
