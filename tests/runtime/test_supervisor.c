/* test_supervisor.c: supervision strategies, restart types and intensity,
 * under virtual time; in-place restarts keep queued messages. */
#include "helpers.h"

#include <criterion/criterion.h>

#define MS (1000000ull)

enum { MSG_WORK = 1, MSG_CRASH, MSG_QUIT, MSG_ASSERT };

/* Per-child observations, indexed by the child's number. */
typedef struct {
    int inits; /* init calls: 1 + restarts */
    int cleanups;
    int handled; /* MSG_WORK handled since the last init */
    int total_handled;
} obs_t;

static obs_t obs[8];
static bt_ref_t last_worker; /* the reference of the worker whose init ran last */

typedef struct {
    int index;
    int handled;
} worker_t;

static int worker_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    worker_t *st = state;
    st->index = *(const int *)arg;
    obs[st->index].inits++;
    obs[st->index].handled = 0;
    last_worker = bt_self(ctx);
    return BT_OK;
}

static int worker_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    worker_t *st = state;
    switch (msg->id) {
    case MSG_WORK:
        st->handled++;
        obs[st->index].handled = st->handled;
        obs[st->index].total_handled++;
        return BT_OK;
    case MSG_CRASH:
        return BT_EFAILED;
    case MSG_ASSERT:
        BT_ACTOR_ASSERT(ctx, st->handled < 0);
        return BT_OK;
    case MSG_QUIT:
        bt_stop_self(ctx);
        return BT_OK;
    }
    return BT_OK;
}

static void worker_cleanup(bt_ctx_t *ctx, void *state)
{
    obs[((worker_t *)state)->index].cleanups++;
}

static const bt_actor_type_t worker = {.name = "worker",
                                       .state_size = sizeof(worker_t),
                                       .init = worker_init,
                                       .dispatch = worker_dispatch,
                                       .cleanup = worker_cleanup};

static const int idx[8] = {0, 1, 2, 3, 4, 5, 6, 7};

static bt_runtime_t *rt;
static bt_ref_t sup;
static bt_ref_t kids[8];

static void start(bt_strategy_t strategy, uint32_t intensity, uint64_t period_ms, int n,
                  const bt_restart_t *types)
{
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.deterministic = true}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    bt_child_spec_t children[8];
    for (int i = 0; i < n; i++)
        children[i] = (bt_child_spec_t){.type = &worker, .arg = &idx[i], .restart = types[i]};
    bt_supervisor_spec_t spec = {.strategy = strategy,
                                 .intensity = intensity,
                                 .period_ns = period_ms * MS,
                                 .children = children,
                                 .nchildren = (uint32_t)n};
    cr_assert_eq(bt_spawn_supervisor(rt, &spec, &sup, kids), BT_OK);
    cr_assert_eq(bt_runtime_run(rt), BT_OK);
    for (int i = 0; i < n; i++)
        cr_assert_eq(obs[i].inits, 1);
}

static void send_id(bt_ref_t to, uint32_t id)
{
    cr_assert_eq(bt_send(rt, to, bt_msg_new(sizeof(bt_msg_t), id)), BT_OK);
}

static const bt_restart_t permanent3[] = {BT_PERMANENT, BT_PERMANENT, BT_PERMANENT};

Test(supervisor, one_for_one_restarts_only_the_failed_child_in_place)
{
    start(BT_ONE_FOR_ONE, 3, 1000, 3, permanent3);
    send_id(kids[1], MSG_WORK);
    send_id(kids[1], MSG_CRASH);
    cr_assert_eq(bt_runtime_run(rt), BT_OK);
    cr_assert_eq(obs[0].inits, 1);
    cr_assert_eq(obs[1].inits, 2);
    cr_assert_eq(obs[1].cleanups, 1, "cleanup ran before the new init");
    cr_assert_eq(obs[2].inits, 1);
    cr_assert(bt_alive(rt, kids[1]), "same reference after the restart");
    send_id(kids[1], MSG_WORK);
    cr_assert_eq(bt_runtime_run(rt), BT_OK);
    cr_assert_eq(obs[1].handled, 1, "fresh state after the restart");
    bt_runtime_stats_t s;
    bt_runtime_stats(rt, &s);
    cr_assert_eq(s.restarts, 1);
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}

Test(supervisor, a_restart_keeps_the_messages_queued_for_the_child)
{
    start(BT_ONE_FOR_ONE, 3, 1000, 1, permanent3);
    /* Crash, then five messages queued behind it: the child parks until the
     * supervisor decides, and handles all five after its restart. */
    send_id(kids[0], MSG_CRASH);
    for (int i = 0; i < 5; i++)
        send_id(kids[0], MSG_WORK);
    cr_assert_eq(bt_runtime_run(rt), BT_OK);
    cr_assert_eq(obs[0].inits, 2);
    cr_assert_eq(obs[0].handled, 5, "none lost across the restart");
    bt_runtime_stats_t s;
    bt_runtime_stats(rt, &s);
    cr_assert_eq(s.dead_letters, 0);
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}

Test(supervisor, one_for_all_restarts_every_child)
{
    start(BT_ONE_FOR_ALL, 3, 1000, 3, permanent3);
    send_id(kids[2], MSG_CRASH);
    cr_assert_eq(bt_runtime_run(rt), BT_OK);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(obs[i].inits, 2, "child %d", i);
        cr_assert_eq(obs[i].cleanups, 1, "child %d", i);
    }
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}

Test(supervisor, rest_for_one_restarts_the_child_and_those_after_it)
{
    start(BT_REST_FOR_ONE, 3, 1000, 3, permanent3);
    send_id(kids[1], MSG_CRASH);
    cr_assert_eq(bt_runtime_run(rt), BT_OK);
    cr_assert_eq(obs[0].inits, 1);
    cr_assert_eq(obs[1].inits, 2);
    cr_assert_eq(obs[2].inits, 2);
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}

Test(supervisor, a_runtime_assert_in_dispatch_fails_the_child)
{
    start(BT_ONE_FOR_ONE, 3, 1000, 1, permanent3);
    send_id(kids[0], MSG_ASSERT);
    cr_assert_eq(bt_runtime_run(rt), BT_OK);
    cr_assert_eq(obs[0].inits, 2);
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}

Test(supervisor, restart_types_decide_who_comes_back)
{
    static const bt_restart_t types[] = {BT_PERMANENT, BT_TRANSIENT, BT_TRANSIENT, BT_TEMPORARY};
    start(BT_ONE_FOR_ONE, 10, 1000, 4, types);
    send_id(kids[0], MSG_QUIT);  /* permanent, normal exit: restarted */
    send_id(kids[1], MSG_QUIT);  /* transient, normal exit: stays down */
    send_id(kids[2], MSG_CRASH); /* transient, failure: restarted */
    send_id(kids[3], MSG_CRASH); /* temporary: never restarted */
    cr_assert_eq(bt_runtime_run(rt), BT_OK);
    cr_assert_eq(obs[0].inits, 2);
    cr_assert(bt_alive(rt, kids[0]));
    cr_assert_eq(obs[1].inits, 1);
    cr_assert_not(bt_alive(rt, kids[1]));
    cr_assert_eq(obs[1].cleanups, 1);
    cr_assert_eq(obs[2].inits, 2);
    cr_assert(bt_alive(rt, kids[2]));
    cr_assert_eq(obs[3].inits, 1);
    cr_assert_not(bt_alive(rt, kids[3]));
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}

/* Watches the supervisor for the intensity tests. */
typedef struct {
    int downs;
    int reason;
} watcher_t;

static watcher_t *the_watcher;

static int watcher_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    the_watcher = state;
    return bt_monitor(ctx, *(const bt_ref_t *)arg, NULL);
}

static int watcher_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    watcher_t *st = state;
    if (msg->id == BT_MSG_DOWN) {
        st->downs++;
        st->reason = ((const bt_down_msg_t *)msg)->reason;
    }
    return BT_OK;
}

static const bt_actor_type_t watcher = {.name = "watcher",
                                        .state_size = sizeof(watcher_t),
                                        .init = watcher_init,
                                        .dispatch = watcher_dispatch};

Test(supervisor, past_its_intensity_the_supervisor_fails_and_stops_its_children)
{
    start(BT_ONE_FOR_ONE, 2, 1000, 2, permanent3);
    bt_ref_t w;
    cr_assert_eq(bt_spawn(rt, &watcher, &sup, NULL, &w), BT_OK);
    for (int i = 0; i < 2; i++) {
        send_id(kids[0], MSG_CRASH);
        cr_assert_eq(bt_runtime_advance(rt, 100 * MS), BT_OK);
    }
    cr_assert_eq(obs[0].inits, 3, "two restarts are within the limit");
    cr_assert(bt_alive(rt, sup));
    send_id(kids[0], MSG_CRASH); /* the third within one second */
    cr_assert_eq(bt_runtime_advance(rt, 100 * MS), BT_OK);
    cr_assert_not(bt_alive(rt, sup));
    cr_assert_not(bt_alive(rt, kids[0]));
    cr_assert_not(bt_alive(rt, kids[1]));
    cr_assert_eq(obs[1].cleanups, 1);
    cr_assert_eq(the_watcher->downs, 1);
    cr_assert_eq(the_watcher->reason, BT_EFAILED);
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}

Test(supervisor, restarts_spread_over_time_stay_within_the_intensity)
{
    start(BT_ONE_FOR_ONE, 2, 1000, 1, permanent3);
    for (int i = 0; i < 10; i++) {
        send_id(kids[0], MSG_CRASH);
        cr_assert_eq(bt_runtime_advance(rt, 600 * MS), BT_OK);
    }
    cr_assert(bt_alive(rt, sup), "two restarts per second at most: never exceeded");
    cr_assert_eq(obs[0].inits, 11);
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}

Test(supervisor, nested_supervisors_escalate)
{
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.deterministic = true}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    static bt_child_spec_t inner_children[1];
    inner_children[0] = (bt_child_spec_t){.type = &worker, .arg = &idx[0], .restart = BT_PERMANENT};
    static bt_supervisor_spec_t inner = {.strategy = BT_ONE_FOR_ONE,
                                         .intensity = 0,
                                         .period_ns = SEC_NS,
                                         .children = inner_children,
                                         .nchildren = 1};
    bt_child_spec_t outer_children[1] = {
        {.type = bt_supervisor_type(), .arg = &inner, .restart = BT_PERMANENT}};
    bt_supervisor_spec_t outer = {.strategy = BT_ONE_FOR_ONE,
                                  .intensity = 5,
                                  .period_ns = SEC_NS,
                                  .children = outer_children,
                                  .nchildren = 1};
    bt_ref_t inner_ref;
    cr_assert_eq(bt_spawn_supervisor(rt, &outer, &sup, &inner_ref), BT_OK);
    cr_assert_eq(bt_runtime_run(rt), BT_OK);
    cr_assert_eq(obs[0].inits, 1);
    /* The inner supervisor allows no restart: its child's crash fails it,
     * and the outer one restarts it in place, which starts a new worker. */
    bt_ref_t first_worker = last_worker;
    send_id(first_worker, MSG_CRASH);
    cr_assert_eq(bt_runtime_run(rt), BT_OK);
    cr_assert(bt_alive(rt, inner_ref), "the inner supervisor was restarted in place");
    cr_assert_not(bt_alive(rt, first_worker));
    cr_assert_eq(obs[0].inits, 2);
    cr_assert(bt_alive(rt, last_worker));
    cr_assert_neq(last_worker, first_worker);
    bt_runtime_stats_t s;
    bt_runtime_stats(rt, &s);
    cr_assert_eq(s.restarts, 1, "one restart: the inner supervisor's");
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}
