/* test_sched.c: the scheduler through the public API: no loss or
 * duplication under many producers, mutual exclusion inside an actor,
 * fairness under a flood, and idle workers that wake for new work. */
#include "helpers.h"

#include <criterion/criterion.h>
#include <stdlib.h>

enum { MSG_SEQ = 1, MSG_FLOOD, MSG_PING };

typedef struct {
    bt_msg_t hdr;
    uint32_t producer;
    uint64_t seq;
} seq_msg;

#define MAX_PRODUCERS 8

typedef struct {
    latch_t done;
    uint64_t expected; /* total messages; the latch fires once all are in */
    uint64_t received;
    uint64_t next[MAX_PRODUCERS];
    uint64_t errors; /* gaps, duplicates or reorderings */
    uint32_t inside; /* threads inside dispatch right now */
    uint32_t overlaps;
} sink_t;

static int sink_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    sink_t *s = *(sink_t **)state;
    if (__atomic_add_fetch(&s->inside, 1, __ATOMIC_ACQ_REL) != 1)
        __atomic_add_fetch(&s->overlaps, 1, __ATOMIC_RELAXED);
    const seq_msg *m = (const seq_msg *)msg;
    if (m->seq != s->next[m->producer])
        s->errors++;
    s->next[m->producer] = m->seq + 1;
    if (++s->received == s->expected)
        latch_add(&s->done, 1);
    __atomic_sub_fetch(&s->inside, 1, __ATOMIC_ACQ_REL);
    return BT_OK;
}

static int ptr_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    *(const void **)state = arg;
    return BT_OK;
}

static const bt_actor_type_t sink_type = {
    .name = "sink",
    .state_size = sizeof(sink_t *),
    .init = ptr_init,
    .dispatch = sink_dispatch,
};

typedef struct {
    bt_runtime_t *rt;
    bt_ref_t to;
    uint32_t producer;
    uint64_t n;
} producer_arg;

static void *produce(void *p)
{
    producer_arg *a = p;
    for (uint64_t i = 0; i < a->n; i++) {
        seq_msg *m = BT_MSG_NEW(seq_msg, MSG_SEQ);
        if (m == NULL)
            abort();
        m->producer = a->producer;
        m->seq = i;
        if (bt_send(a->rt, a->to, &m->hdr) != BT_OK)
            abort();
    }
    return NULL;
}

/* n producers, each sending per messages from its own thread. */
static void run_producers(uint32_t threads, uint32_t n, uint64_t per)
{
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = threads}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    static sink_t s;
    latch_init(&s.done);
    s.expected = n * per;
    bt_ref_t sink;
    cr_assert_eq(bt_spawn(rt, &sink_type, &s, NULL, &sink), BT_OK);
    pthread_t th[MAX_PRODUCERS];
    producer_arg args[MAX_PRODUCERS];
    for (uint32_t i = 0; i < n; i++) {
        args[i] = (producer_arg){.rt = rt, .to = sink, .producer = i, .n = per};
        pthread_create(&th[i], NULL, produce, &args[i]);
    }
    for (uint32_t i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    cr_assert(latch_wait(&s.done, 1, 60000), "received %llu of %llu",
              (unsigned long long)s.received, (unsigned long long)s.expected);
    cr_assert_eq(s.errors, 0, "no gap, duplicate or reordering per producer");
    cr_assert_eq(s.overlaps, 0, "one thread at a time inside the actor");
    for (uint32_t i = 0; i < n; i++)
        cr_assert_eq(s.next[i], per);
    /* Counters are published at the end of each turn, just after the
     * dispatch that fired the latch. */
    bt_runtime_stats_t st;
    cr_assert(WAIT_UNTIL((bt_runtime_stats(rt, &st), st.processed == n * per), 5000),
              "processed %llu", (unsigned long long)st.processed);
    cr_assert_eq(st.dead_letters, 0);
    cr_assert_eq(bt_runtime_shutdown(rt, 10 * SEC_NS), BT_OK);
}

Test(sched, one_producer_million_messages_none_lost_or_duplicated)
{
    run_producers(2, 1, 1000000);
}

Test(sched, two_producers_million_each_none_lost_or_duplicated)
{
    run_producers(2, 2, 1000000);
}

Test(sched, four_producers_million_each_none_lost_or_duplicated)
{
    run_producers(4, 4, 1000000);
}

/* Ping-pong pairs between actors, on more pairs than threads: every pair
 * finishes, each actor is only ever run by one thread at a time. */
typedef struct {
    bt_msg_t hdr;
    uint64_t left;
} ball_msg;

typedef struct {
    latch_t *done;
    uint32_t inside;
    uint32_t *overlaps;
} player_t;

static int player_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    *(player_t *)state = *(const player_t *)arg;
    return BT_OK;
}

static int player_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    player_t *p = state;
    if (__atomic_add_fetch(&p->inside, 1, __ATOMIC_ACQ_REL) != 1)
        __atomic_add_fetch(p->overlaps, 1, __ATOMIC_RELAXED);
    uint64_t left = ((const ball_msg *)msg)->left;
    int rc = BT_OK;
    if (left == 0) {
        latch_add(p->done, 1);
    } else {
        ball_msg *b = BT_MSG_NEW(ball_msg, MSG_PING);
        b->left = left - 1;
        rc = bt_send(bt_ctx_runtime(ctx), msg->from, &b->hdr);
    }
    __atomic_sub_fetch(&p->inside, 1, __ATOMIC_ACQ_REL);
    return rc;
}

static const bt_actor_type_t player_type = {
    .name = "player",
    .state_size = sizeof(player_t),
    .init = player_init,
    .dispatch = player_dispatch,
};

/* The serving player: its init sends the first ball, then it rallies. */
typedef struct {
    player_t proto;
    bt_ref_t to;
    uint64_t rounds;
} serve_arg;

static int server_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    const serve_arg *k = arg;
    *(player_t *)state = k->proto;
    ball_msg *b = BT_MSG_NEW(ball_msg, MSG_PING);
    b->left = k->rounds;
    return bt_send(bt_ctx_runtime(ctx), k->to, &b->hdr);
}

static const bt_actor_type_t server_type = {
    .name = "server",
    .state_size = sizeof(player_t),
    .init = server_init,
    .dispatch = player_dispatch,
};

Test(sched, many_ping_pong_pairs_all_finish_with_exclusive_dispatch)
{
    enum { PAIRS = 32, ROUNDS = 20000 };
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 2}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    static latch_t done;
    static uint32_t overlaps;
    latch_init(&done);
    player_t proto = {.done = &done, .overlaps = &overlaps};
    for (int i = 0; i < PAIRS; i++) {
        bt_ref_t a, b;
        cr_assert_eq(bt_spawn(rt, &player_type, &proto, NULL, &a), BT_OK);
        serve_arg k = {.proto = proto, .to = a, .rounds = ROUNDS};
        cr_assert_eq(bt_spawn(rt, &server_type, &k, NULL, &b), BT_OK);
    }
    cr_assert(latch_wait(&done, PAIRS, 60000), "%llu of %d pairs finished",
              (unsigned long long)latch_get(&done), PAIRS);
    cr_assert_eq(overlaps, 0);
    cr_assert_eq(bt_runtime_shutdown(rt, 10 * SEC_NS), BT_OK);
}

/* A flooding actor keeps its own mailbox non-empty forever; another actor
 * on the same single thread must still get its turn. */
static int flood_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    for (int i = 0; i < 2; i++) {
        bt_msg_t *m = bt_msg_new(sizeof(bt_msg_t), MSG_FLOOD);
        int rc = bt_send(bt_ctx_runtime(ctx), bt_self(ctx), m);
        if (rc != BT_OK) {
            bt_msg_free(m);
            return rc == BT_EFULL ? BT_OK : rc;
        }
    }
    return BT_OK;
}

static const bt_actor_type_t flood_type = {
    .name = "flood", .state_size = 0, .dispatch = flood_dispatch};

static int signal_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    latch_add(*(latch_t **)state, 1);
    return BT_OK;
}

static const bt_actor_type_t signal_type = {.name = "signal",
                                            .state_size = sizeof(latch_t *),
                                            .init = ptr_init,
                                            .dispatch = signal_dispatch};

Test(sched, a_flooding_actor_does_not_starve_another)
{
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 1, .batch = 16}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    static latch_t got;
    latch_init(&got);
    bt_ref_t flood, victim;
    cr_assert_eq(
        bt_spawn(rt, &flood_type, NULL, &(bt_spawn_opts_t){.mailbox_capacity = 100000}, &flood),
        BT_OK);
    cr_assert_eq(bt_spawn(rt, &signal_type, &got, NULL, &victim), BT_OK);
    cr_assert_eq(bt_send(rt, flood, bt_msg_new(sizeof(bt_msg_t), MSG_FLOOD)), BT_OK);
    nanosleep(&(struct timespec){0, 20000000}, NULL); /* the flood is on */
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(bt_send(rt, victim, bt_msg_new(sizeof(bt_msg_t), MSG_PING)), BT_OK);
        cr_assert(latch_wait(&got, (uint64_t)i + 1, 5000), "victim starved at message %d", i);
    }
    cr_assert_eq(bt_runtime_shutdown(rt, 10 * SEC_NS), BT_OK);
}

Test(sched, idle_workers_wake_for_new_work_repeatedly)
{
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 2}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    static latch_t got;
    latch_init(&got);
    bt_ref_t a;
    cr_assert_eq(bt_spawn(rt, &signal_type, &got, NULL, &a), BT_OK);
    /* Each send arrives after the workers have gone to sleep. */
    for (int i = 0; i < 50; i++) {
        nanosleep(&(struct timespec){0, 2000000}, NULL);
        cr_assert_eq(bt_send(rt, a, bt_msg_new(sizeof(bt_msg_t), MSG_PING)), BT_OK);
        cr_assert(latch_wait(&got, (uint64_t)i + 1, 5000), "lost wake-up at message %d", i);
    }
    cr_assert_eq(bt_runtime_shutdown(rt, 10 * SEC_NS), BT_OK);
}

/* Each of two actors blocks in dispatch until both are inside at once:
 * only true parallelism (the second worker woken and given work) passes. */
static uint32_t rendezvous;

static int rendezvous_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    __atomic_add_fetch(&rendezvous, 1, __ATOMIC_ACQ_REL);
    if (!WAIT_UNTIL(__atomic_load_n(&rendezvous, __ATOMIC_ACQUIRE) >= 2, 5000))
        return BT_ETIMEDOUT;
    latch_add(*(latch_t **)state, 1);
    return BT_OK;
}

static const bt_actor_type_t rendezvous_type = {.name = "rendezvous",
                                                .state_size = sizeof(latch_t *),
                                                .init = ptr_init,
                                                .dispatch = rendezvous_dispatch};

Test(sched, work_spreads_to_an_idle_worker)
{
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 2}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    static latch_t got;
    latch_init(&got);
    bt_ref_t a, b;
    cr_assert_eq(bt_spawn(rt, &rendezvous_type, &got, NULL, &a), BT_OK);
    cr_assert_eq(bt_spawn(rt, &rendezvous_type, &got, NULL, &b), BT_OK);
    nanosleep(&(struct timespec){0, 10000000}, NULL); /* both workers asleep */
    cr_assert_eq(bt_send(rt, a, bt_msg_new(sizeof(bt_msg_t), MSG_PING)), BT_OK);
    cr_assert_eq(bt_send(rt, b, bt_msg_new(sizeof(bt_msg_t), MSG_PING)), BT_OK);
    cr_assert(latch_wait(&got, 2, 10000), "the two actors never ran at the same time");
    cr_assert_eq(bt_runtime_shutdown(rt, 10 * SEC_NS), BT_OK);
}
