/* test_actor.c: spawn, send, stop and counters, through the public API. */
#include "helpers.h"
#include "mem/alloc.h"

#include <criterion/criterion.h>

enum { MSG_SEQ = 1, MSG_FAIL, MSG_STOP_SELF, MSG_BLOCK };

typedef struct {
    bt_msg_t hdr;
    uint64_t seq;
    uint32_t producer;
} seq_msg;

/* What a recorder actor saw; owned by the test, shared by pointer. */
typedef struct {
    latch_t got;       /* messages dispatched */
    latch_t cleanups;  /* cleanup calls */
    uint64_t next[16]; /* next expected seq per producer */
    bool out_of_order;
    int init_result; /* what init returns */
    uint64_t last_seq;
    bt_ref_t last_from;
    latch_t *gate; /* MSG_BLOCK waits until this reaches 1 */
} record_t;

typedef struct {
    record_t *rec;
} recorder_state;

static int recorder_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    recorder_state *st = state;
    st->rec = (record_t *)arg;
    return st->rec->init_result;
}

static int recorder_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    recorder_state *st = state;
    record_t *r = st->rec;
    switch (msg->id) {
    case MSG_SEQ: {
        const seq_msg *m = (const seq_msg *)msg;
        if (m->seq != r->next[m->producer])
            r->out_of_order = true;
        r->next[m->producer] = m->seq + 1;
        r->last_seq = m->seq;
        r->last_from = msg->from;
        break;
    }
    case MSG_FAIL:
        latch_add(&r->got, 1);
        return BT_EINVAL;
    case MSG_STOP_SELF:
        bt_stop_self(ctx);
        break;
    case MSG_BLOCK:
        latch_wait(r->gate, 1, 10000);
        break;
    }
    latch_add(&r->got, 1);
    return BT_OK;
}

static void recorder_cleanup(bt_ctx_t *ctx, void *state)
{
    recorder_state *st = state;
    latch_add(&st->rec->cleanups, 1);
}

static const bt_actor_type_t recorder = {
    .name = "recorder",
    .state_size = sizeof(recorder_state),
    .init = recorder_init,
    .dispatch = recorder_dispatch,
    .cleanup = recorder_cleanup,
};

/* Each Criterion test runs in its own process, so static storage is fresh
 * per test and needs no freeing. */
static record_t *record_new(void)
{
    static record_t pool[4];
    static int used;
    cr_assert_lt(used, 4);
    record_t *r = &pool[used++];
    latch_init(&r->got);
    latch_init(&r->cleanups);
    return r;
}

static int send_seq(bt_runtime_t *rt, bt_ref_t to, uint32_t producer, uint64_t seq)
{
    seq_msg *m = BT_MSG_NEW(seq_msg, MSG_SEQ);
    cr_assert_not_null(m);
    m->seq = seq;
    m->producer = producer;
    int rc = bt_send(rt, to, &m->hdr);
    if (rc != BT_OK)
        bt_msg_free(&m->hdr);
    return rc;
}

static int send_id(bt_runtime_t *rt, bt_ref_t to, uint32_t id)
{
    bt_msg_t *m = bt_msg_new(sizeof(bt_msg_t), id);
    int rc = bt_send(rt, to, m);
    if (rc != BT_OK)
        bt_msg_free(m);
    return rc;
}

static bt_runtime_t *start_runtime(uint32_t threads)
{
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = threads}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    return rt;
}

Test(actor, delivers_in_fifo_order_per_sender)
{
    bt_runtime_t *rt = start_runtime(2);
    record_t *r = record_new();
    bt_ref_t a;
    cr_assert_eq(bt_spawn(rt, &recorder, r, NULL, &a), BT_OK);
    for (uint64_t i = 0; i < 100000; i++)
        cr_assert_eq(send_seq(rt, a, 0, i), BT_OK);
    cr_assert(latch_wait(&r->got, 100000, 10000));
    cr_assert_not(r->out_of_order);
    cr_assert_eq(r->last_seq, 99999);
    cr_assert_eq(r->last_from, BT_REF_NONE, "a send from outside has no sender");
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
    cr_assert_eq(latch_get(&r->cleanups), 1);
}

Test(actor, rejects_reserved_ids_and_null_messages)
{
    bt_runtime_t *rt = start_runtime(1);
    record_t *r = record_new();
    bt_ref_t a;
    cr_assert_eq(bt_spawn(rt, &recorder, r, NULL, &a), BT_OK);
    cr_assert_eq(send_id(rt, a, BT_MSG_SYSTEM_BASE), BT_EINVAL);
    cr_assert_eq(send_id(rt, a, 0xFFFFFFFFu), BT_EINVAL);
    cr_assert_eq(bt_send(rt, a, NULL), BT_EINVAL);
    cr_assert_null(bt_msg_new(sizeof(bt_msg_t) - 1, 1));
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
}

Test(actor, send_to_stopped_actor_fails_and_counts_a_dead_letter)
{
    bt_runtime_t *rt = start_runtime(2);
    record_t *r = record_new();
    bt_ref_t a;
    cr_assert_eq(bt_spawn(rt, &recorder, r, NULL, &a), BT_OK);
    cr_assert_eq(bt_stop(rt, a), BT_OK);
    cr_assert(latch_wait(&r->cleanups, 1, 5000));
    cr_assert(WAIT_UNTIL(!bt_alive(rt, a), 5000));

    seq_msg *m = BT_MSG_NEW(seq_msg, MSG_SEQ);
    cr_assert_eq(bt_send(rt, a, &m->hdr), BT_ENOACTOR);
    m->seq = 42; /* still ours: writable, then freed by us */
    bt_msg_free(&m->hdr);
    cr_assert_eq(bt_stop(rt, a), BT_ENOACTOR);
    bt_runtime_stats_t s;
    bt_runtime_stats(rt, &s);
    cr_assert_eq(s.dead_letters, 1);
    /* Not alive any more is not yet freed: the stopping thread still
     * drains the mailbox and gives back its references. */
    cr_assert(WAIT_UNTIL((bt_runtime_stats(rt, &s), s.actors_live == 0), 5000));
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
    cr_assert_eq(latch_get(&r->cleanups), 1, "cleanup runs once");
}

Test(actor, stale_reference_never_reaches_the_slot_reuser)
{
    bt_runtime_t *rt = start_runtime(1);
    record_t *r1 = record_new(), *r2 = record_new();
    bt_ref_t a, b;
    cr_assert_eq(bt_spawn(rt, &recorder, r1, NULL, &a), BT_OK);
    cr_assert_eq(bt_stop(rt, a), BT_OK);
    cr_assert(WAIT_UNTIL(!bt_alive(rt, a), 5000));
    cr_assert(WAIT_UNTIL(({
                             bt_runtime_stats_t s;
                             bt_runtime_stats(rt, &s);
                             s.actors_live == 0;
                         }),
                         5000));
    cr_assert_eq(bt_spawn(rt, &recorder, r2, NULL, &b), BT_OK);
    cr_assert_eq((uint32_t)a, (uint32_t)b, "the slot is reused");
    cr_assert_neq(a, b, "with a new generation");
    cr_assert_eq(send_seq(rt, a, 0, 0), BT_ENOACTOR);
    cr_assert_eq(send_seq(rt, b, 0, 0), BT_OK);
    cr_assert(latch_wait(&r2->got, 1, 5000));
    cr_assert_eq(latch_get(&r1->got), 0);
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
}

Test(actor, bounded_mailbox_refuses_when_full_but_never_refuses_stop)
{
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 1}, &rt), BT_OK);
    record_t *r = record_new();
    bt_ref_t a;
    cr_assert_eq(bt_spawn(rt, &recorder, r, &(bt_spawn_opts_t){.mailbox_capacity = 4}, &a), BT_OK);
    /* Not started: nothing is consumed. */
    for (int i = 0; i < 4; i++)
        cr_assert_eq(send_seq(rt, a, 0, (uint64_t)i), BT_OK);
    cr_assert_eq(send_seq(rt, a, 0, 4), BT_EFULL);
    bt_actor_stats_t st;
    cr_assert_eq(bt_actor_stats(rt, a, &st), BT_OK);
    cr_assert_eq(st.depth, 4);
    cr_assert_eq(st.depth_hwm, 4);
    cr_assert_eq(bt_stop(rt, a), BT_OK, "system messages bypass the bound");
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    cr_assert(latch_wait(&r->cleanups, 1, 5000));
    cr_assert_eq(latch_get(&r->got), 4, "the messages before the stop are handled");
    cr_assert_not(r->out_of_order);
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
}

Test(actor, bounded_mailbox_frees_capacity_as_it_drains)
{
    bt_runtime_t *rt = start_runtime(2);
    record_t *r = record_new();
    bt_ref_t a;
    cr_assert_eq(bt_spawn(rt, &recorder, r, &(bt_spawn_opts_t){.mailbox_capacity = 8}, &a), BT_OK);
    uint64_t full = 0;
    for (uint64_t i = 0; i < 20000;) {
        int rc = send_seq(rt, a, 0, i);
        if (rc == BT_EFULL) {
            full++;
            continue;
        }
        cr_assert_eq(rc, BT_OK);
        i++;
    }
    cr_assert(latch_wait(&r->got, 20000, 10000));
    cr_assert_not(r->out_of_order);
    bt_actor_stats_t st;
    cr_assert_eq(bt_actor_stats(rt, a, &st), BT_OK);
    cr_assert_leq(st.depth_hwm, 8);
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
}

Test(actor, init_failure_fails_the_spawn_without_cleanup)
{
    bt_runtime_t *rt = start_runtime(1);
    record_t *r = record_new();
    r->init_result = BT_EINVAL;
    bt_ref_t a = BT_REF_NONE;
    cr_assert_eq(bt_spawn(rt, &recorder, r, NULL, &a), BT_EINVAL);
    cr_assert_eq(a, BT_REF_NONE, "no reference on failure");
    bt_runtime_stats_t s;
    bt_runtime_stats(rt, &s);
    cr_assert_eq(s.actors_live, 0);
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
    cr_assert_eq(latch_get(&r->cleanups), 0);
}

Test(actor, spawn_reports_out_of_memory)
{
    bt_runtime_t *rt = start_runtime(1);
    record_t *r = record_new();
    bt_ref_t a;
    bt__alloc_fail_after(0);
    int rc = bt_spawn(rt, &recorder, r, NULL, &a);
    bt__alloc_fail_after(-1);
    cr_assert_eq(rc, BT_ENOMEM);
    cr_assert_eq(bt_spawn(rt, &recorder, r, NULL, &a), BT_OK, "and recovers");
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
}

Test(actor, rejects_bad_arguments)
{
    bt_runtime_t *rt;
    bt_ref_t a;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 100000}, &rt), BT_EINVAL);
    cr_assert_eq(bt_runtime_create(NULL, &rt), BT_OK);
    bt_actor_type_t no_dispatch = {.name = "x"};
    cr_assert_eq(bt_spawn(rt, &no_dispatch, NULL, NULL, &a), BT_EINVAL);
    cr_assert_eq(bt_spawn(rt, &recorder, NULL, &(bt_spawn_opts_t){.flags = 0x80}, &a), BT_EINVAL);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_ESTATE, "a second start is refused");
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
    cr_assert_str_eq(bt_strerror(BT_ENOACTOR),
                     "no such actor: it has stopped, or the reference is stale");
    cr_assert_str_eq(bt_strerror(12345), "unknown error");
}

Test(actor, dispatch_failure_stops_the_actor_and_runs_cleanup)
{
    bt_runtime_t *rt = start_runtime(2);
    record_t *r = record_new();
    bt_ref_t a;
    cr_assert_eq(bt_spawn(rt, &recorder, r, NULL, &a), BT_OK);
    cr_assert_eq(send_id(rt, a, MSG_FAIL), BT_OK);
    cr_assert(latch_wait(&r->cleanups, 1, 5000));
    cr_assert(WAIT_UNTIL(!bt_alive(rt, a), 5000));
    cr_assert_eq(send_id(rt, a, MSG_SEQ), BT_ENOACTOR);
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
}

Test(actor, stop_self_ends_after_the_current_message)
{
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 1}, &rt), BT_OK);
    record_t *r = record_new();
    bt_ref_t a;
    cr_assert_eq(bt_spawn(rt, &recorder, r, NULL, &a), BT_OK);
    cr_assert_eq(send_seq(rt, a, 0, 0), BT_OK);
    cr_assert_eq(send_id(rt, a, MSG_STOP_SELF), BT_OK);
    cr_assert_eq(send_seq(rt, a, 0, 1), BT_OK);
    cr_assert_eq(send_seq(rt, a, 0, 2), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    cr_assert(latch_wait(&r->cleanups, 1, 5000));
    cr_assert_eq(latch_get(&r->got), 2);
    cr_assert(WAIT_UNTIL(({
                             bt_runtime_stats_t s;
                             bt_runtime_stats(rt, &s);
                             s.dead_letters == 2;
                         }),
                         5000),
              "the two messages after the stop are dead letters");
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
}

Test(actor, counts_sent_processed_depth_and_high_water)
{
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 1}, &rt), BT_OK);
    record_t *r = record_new();
    bt_ref_t a;
    cr_assert_eq(bt_spawn(rt, &recorder, r, NULL, &a), BT_OK);
    for (uint64_t i = 0; i < 10; i++)
        send_seq(rt, a, 0, i);
    bt_actor_stats_t st;
    cr_assert_eq(bt_actor_stats(rt, a, &st), BT_OK);
    cr_assert_eq(st.depth, 10);
    cr_assert_eq(st.depth_hwm, 10);
    cr_assert_eq(st.processed, 0);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    cr_assert(latch_wait(&r->got, 10, 5000));
    cr_assert(WAIT_UNTIL((bt_actor_stats(rt, a, &st), st.depth == 0 && st.processed == 10), 5000));
    cr_assert_eq(st.depth_hwm, 10);
    cr_assert_eq(st.sent, 0);
    bt_runtime_stats_t s;
    bt_runtime_stats(rt, &s);
    cr_assert_eq(s.sent, 10);
    cr_assert_eq(s.processed, 10);
    cr_assert_eq(s.actors_spawned, 1);
    cr_assert_eq(s.actors_live, 1);
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
}

/* An actor that forwards each message to a target, to test sender
 * identity and per-actor sent counters. */
typedef struct {
    bt_ref_t target;
} fwd_state;

static int fwd_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    ((fwd_state *)state)->target = *(const bt_ref_t *)arg;
    /* Messages sent from init are allowed and come from this actor. */
    seq_msg *m = BT_MSG_NEW(seq_msg, MSG_SEQ);
    m->seq = 0;
    m->producer = 1;
    return bt_send(bt_ctx_runtime(ctx), ((fwd_state *)state)->target, &m->hdr);
}

static int fwd_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    fwd_state *st = state;
    seq_msg *m = BT_MSG_NEW(seq_msg, MSG_SEQ);
    m->seq = ((const seq_msg *)msg)->seq;
    m->producer = 1;
    int rc = bt_send(bt_ctx_runtime(ctx), st->target, &m->hdr);
    if (rc != BT_OK)
        bt_msg_free(&m->hdr);
    return rc;
}

static const bt_actor_type_t forwarder = {
    .name = "forwarder",
    .state_size = sizeof(fwd_state),
    .init = fwd_init,
    .dispatch = fwd_dispatch,
};

Test(actor, messages_carry_their_sender_and_count_as_sent_by_it)
{
    bt_runtime_t *rt = start_runtime(2);
    record_t *r = record_new();
    bt_ref_t sink, fwd;
    cr_assert_eq(bt_spawn(rt, &recorder, r, NULL, &sink), BT_OK);
    cr_assert_eq(bt_spawn(rt, &forwarder, &sink, NULL, &fwd), BT_OK);
    for (uint64_t i = 1; i <= 100; i++)
        cr_assert_eq(send_seq(rt, fwd, 0, i), BT_OK);
    cr_assert(latch_wait(&r->got, 101, 5000));
    cr_assert_not(r->out_of_order, "init's message first, then 1..100 in order");
    cr_assert_eq(r->last_from, fwd);
    bt_actor_stats_t st;
    cr_assert_eq(bt_actor_stats(rt, fwd, &st), BT_OK);
    cr_assert_eq(st.sent, 101);
    cr_assert_eq(st.processed, 100);
    cr_assert_eq(bt_runtime_shutdown(rt, 5 * SEC_NS), BT_OK);
}
