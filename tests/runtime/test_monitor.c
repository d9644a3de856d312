/* test_monitor.c: monitors, links, trapping exits, dead-letter observer,
 * and the name registry through the public API. */
#include "helpers.h"

#include <criterion/criterion.h>

enum { MSG_CRASH = 1, MSG_QUIT, MSG_MONITOR, MSG_LINK, MSG_TRAP, MSG_PING };

typedef struct {
    bt_msg_t hdr;
    bt_ref_t who;
} ref_msg;

typedef struct {
    int downs, exits, dead_letters, pings;
    int last_reason;
    bt_ref_t last_actor;
    uint64_t last_monitor, monitor_id;
    uint32_t dead_id;
} seen_t;

static seen_t seen[4];

static int node_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    *(seen_t **)state = &seen[*(const int *)arg];
    return BT_OK;
}

static int node_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    seen_t *s = *(seen_t **)state;
    switch (msg->id) {
    case MSG_CRASH:
        return BT_EFAILED;
    case MSG_QUIT:
        bt_stop_self(ctx);
        return BT_OK;
    case MSG_MONITOR:
        return bt_monitor(ctx, ((const ref_msg *)msg)->who, &s->monitor_id);
    case MSG_LINK:
        return bt_link(ctx, ((const ref_msg *)msg)->who);
    case MSG_TRAP:
        bt_trap_exits(ctx, true);
        return BT_OK;
    case MSG_PING:
        s->pings++;
        return BT_OK;
    case BT_MSG_DOWN:
    case BT_MSG_EXIT: {
        const bt_down_msg_t *d = (const bt_down_msg_t *)msg;
        if (msg->id == BT_MSG_DOWN)
            s->downs++;
        else
            s->exits++;
        s->last_reason = d->reason;
        s->last_actor = d->actor;
        s->last_monitor = d->monitor;
        return BT_OK;
    }
    case BT_MSG_DEAD_LETTER:
        s->dead_letters++;
        s->dead_id = ((const bt_dead_letter_msg_t *)msg)->id;
        return BT_OK;
    }
    return BT_OK;
}

static const bt_actor_type_t node = {
    .name = "node", .state_size = sizeof(seen_t *), .init = node_init, .dispatch = node_dispatch};

static const int ids[4] = {0, 1, 2, 3};
static bt_runtime_t *rt;

static bt_ref_t spawn_node(int i)
{
    bt_ref_t r;
    cr_assert_eq(bt_spawn(rt, &node, &ids[i], NULL, &r), BT_OK);
    return r;
}

static void send_id(bt_ref_t to, uint32_t id)
{
    cr_assert_eq(bt_send(rt, to, bt_msg_new(sizeof(bt_msg_t), id)), BT_OK);
}

static void send_ref(bt_ref_t to, uint32_t id, bt_ref_t who)
{
    ref_msg *m = BT_MSG_NEW(ref_msg, id);
    m->who = who;
    cr_assert_eq(bt_send(rt, to, &m->hdr), BT_OK);
}

static void setup(void)
{
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.deterministic = true}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
}

static void teardown(void)
{
    cr_assert_eq(bt_runtime_shutdown(rt, SEC_NS), BT_OK);
}

TestSuite(monitor, .init = setup, .fini = teardown);

Test(monitor, down_message_carries_the_exit_reason)
{
    bt_ref_t a = spawn_node(0), b = spawn_node(1);
    send_ref(a, MSG_MONITOR, b);
    bt_runtime_run(rt);
    send_id(b, MSG_CRASH);
    bt_runtime_run(rt);
    cr_assert_eq(seen[0].downs, 1);
    cr_assert_eq(seen[0].last_reason, BT_EFAILED);
    cr_assert_eq(seen[0].last_actor, b);
    cr_assert_eq(seen[0].last_monitor, seen[0].monitor_id);
    cr_assert(bt_alive(rt, a), "a monitor does not stop the watcher");
}

Test(monitor, normal_stop_gives_reason_ok)
{
    bt_ref_t a = spawn_node(0), b = spawn_node(1);
    send_ref(a, MSG_MONITOR, b);
    bt_runtime_run(rt);
    send_id(b, MSG_QUIT);
    bt_runtime_run(rt);
    cr_assert_eq(seen[0].downs, 1);
    cr_assert_eq(seen[0].last_reason, BT_OK);
}

Test(monitor, monitoring_a_stopped_actor_gives_an_immediate_down)
{
    bt_ref_t a = spawn_node(0), b = spawn_node(1);
    send_id(b, MSG_QUIT);
    bt_runtime_run(rt);
    send_ref(a, MSG_MONITOR, b);
    bt_runtime_run(rt);
    cr_assert_eq(seen[0].downs, 1);
    cr_assert_eq(seen[0].last_reason, BT_ENOACTOR);
}

Test(monitor, a_failure_takes_linked_actors_down)
{
    bt_ref_t a = spawn_node(0), b = spawn_node(1), c = spawn_node(2);
    send_ref(a, MSG_LINK, b);
    send_ref(b, MSG_LINK, c);
    bt_runtime_run(rt);
    send_id(a, MSG_CRASH);
    bt_runtime_run(rt);
    cr_assert_not(bt_alive(rt, a));
    cr_assert_not(bt_alive(rt, b), "linked to a");
    cr_assert_not(bt_alive(rt, c), "linked to b: the failure spreads along links");
}

Test(monitor, a_normal_stop_does_not_take_linked_actors_down)
{
    bt_ref_t a = spawn_node(0), b = spawn_node(1);
    send_ref(a, MSG_LINK, b);
    bt_runtime_run(rt);
    send_id(a, MSG_QUIT);
    bt_runtime_run(rt);
    cr_assert_not(bt_alive(rt, a));
    cr_assert(bt_alive(rt, b));
}

Test(monitor, trapping_exits_turns_a_linked_failure_into_a_message)
{
    bt_ref_t a = spawn_node(0), b = spawn_node(1);
    send_id(a, MSG_TRAP);
    send_ref(a, MSG_LINK, b);
    bt_runtime_run(rt);
    send_id(b, MSG_CRASH);
    bt_runtime_run(rt);
    cr_assert(bt_alive(rt, a));
    cr_assert_eq(seen[0].exits, 1);
    cr_assert_eq(seen[0].last_actor, b);
    cr_assert_eq(seen[0].last_reason, BT_EFAILED);
}

Test(monitor, linking_to_a_stopped_actor_fails_the_linker)
{
    bt_ref_t a = spawn_node(0), b = spawn_node(1);
    send_id(b, MSG_QUIT);
    bt_runtime_run(rt);
    send_ref(a, MSG_LINK, b);
    bt_runtime_run(rt);
    cr_assert_not(bt_alive(rt, a));
}

Test(monitor, the_dead_letter_observer_hears_of_undeliverable_messages)
{
    bt_ref_t obs = spawn_node(0), b = spawn_node(1);
    cr_assert_eq(bt_observe_dead_letters(rt, obs), BT_OK);
    send_id(b, MSG_QUIT);
    send_id(b, MSG_PING); /* queued behind the quit: dropped */
    bt_runtime_run(rt);
    bt_msg_t *m = bt_msg_new(sizeof(bt_msg_t), MSG_PING);
    cr_assert_eq(bt_send(rt, b, m), BT_ENOACTOR); /* refused: also a dead letter */
    bt_msg_free(m);
    bt_runtime_run(rt);
    cr_assert_eq(seen[0].dead_letters, 2);
    cr_assert_eq(seen[0].dead_id, MSG_PING);
    bt_runtime_stats_t s;
    bt_runtime_stats(rt, &s);
    cr_assert_eq(s.dead_letters, 2);
}

Test(monitor, registry_binds_looks_up_and_releases_on_stop)
{
    bt_ref_t a = spawn_node(0), b = spawn_node(1), found;
    cr_assert_eq(bt_register(rt, "alpha", a), BT_OK);
    cr_assert_eq(bt_register(rt, "alpha", b), BT_EEXIST);
    cr_assert_eq(bt_register(rt, "", b), BT_EINVAL);
    cr_assert_eq(bt_whereis(rt, "alpha", &found), BT_OK);
    cr_assert_eq(found, a);
    cr_assert_eq(bt_whereis(rt, "beta", &found), BT_ENOENT);
    bt_runtime_run(rt);
    send_id(a, MSG_QUIT);
    bt_runtime_run(rt);
    cr_assert_eq(bt_whereis(rt, "alpha", &found), BT_ENOENT, "released when its actor stops");
    cr_assert_eq(bt_register(rt, "alpha", b), BT_OK);
    cr_assert_eq(bt_unregister(rt, "alpha"), BT_OK);
    cr_assert_eq(bt_unregister(rt, "alpha"), BT_ENOENT);
    cr_assert_eq(bt_register(rt, "gamma", a), BT_ENOACTOR, "a stopped actor gets no name");
}
