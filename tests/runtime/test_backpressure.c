/*
 * test_backpressure.c: backpressure (an actor that floods a deep mailbox is
 * muted until its receiver catches up) and the outbox (a dispatch's burst to
 * one receiver is pushed as a chain), through the public API.
 */
#include "helpers.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

enum { MSG_SEQ = 1, MSG_GO };

typedef struct {
    bt_msg_t hdr;
    uint32_t producer;
    uint64_t seq;
} seq_msg;

#define MAX_PRODUCERS 8

static void spin_ns(uint64_t ns)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((uint64_t)(t.tv_sec - t0.tv_sec) * SEC_NS + (uint64_t)(t.tv_nsec - t0.tv_nsec) < ns);
}

static bt_runtime_t *start_rt(uint32_t backpressure)
{
    bt_runtime_config_t cfg = {.threads = 2, .backpressure = backpressure};
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&cfg, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    return rt;
}

static void shutdown_rt(bt_runtime_t *rt)
{
    cr_assert_eq(bt_runtime_shutdown(rt, 10 * SEC_NS), BT_OK);
}

static int ptr_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    *(const void **)state = arg;
    return BT_OK;
}

/* ------------------------------------------------------------------ sink */

/* Counts MSG_SEQ messages and checks FIFO order per producer; spends
 * work_ns on each; stops itself once it has received stop_after. */
typedef struct {
    latch_t done;
    uint64_t expected; /* the latch fires once this many are in */
    uint64_t received;
    uint64_t errors; /* gaps, duplicates or reorderings */
    uint64_t next[MAX_PRODUCERS];
    uint64_t work_ns;
    uint64_t stop_after; /* atomic */
    uint64_t at_cleanup; /* received, when cleanup ran */
} sink_t;

static int sink_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    sink_t *s = *(sink_t **)state;
    if (msg->id != MSG_SEQ)
        return BT_OK;
    const seq_msg *m = (const seq_msg *)msg;
    if (m->seq != s->next[m->producer])
        s->errors++;
    s->next[m->producer] = m->seq + 1;
    if (s->work_ns != 0)
        spin_ns(s->work_ns);
    if (++s->received == s->expected)
        latch_add(&s->done, 1);
    if (s->received >= __atomic_load_n(&s->stop_after, __ATOMIC_ACQUIRE))
        bt_stop_self(ctx);
    return BT_OK;
}

static void sink_cleanup(bt_ctx_t *ctx, void *state)
{
    sink_t *s = *(sink_t **)state;
    __atomic_store_n(&s->at_cleanup, s->received, __ATOMIC_RELEASE);
}

static const bt_actor_type_t sink_type = {
    .name = "sink",
    .state_size = sizeof(sink_t *),
    .init = ptr_init,
    .dispatch = sink_dispatch,
    .cleanup = sink_cleanup,
};

static sink_t *sink_new(uint64_t expected)
{
    sink_t *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    latch_init(&s->done);
    s->expected = expected;
    s->stop_after = UINT64_MAX;
    return s;
}

static void sink_free(sink_t *s)
{
    latch_destroy(&s->done);
    free(s);
}

/* --------------------------------------------------------------- flooder */

/* Sends `total` MSG_SEQ messages, `chunk` per dispatch, to each of its
 * receivers in turn (message i to every receiver before message i + 1),
 * then counts down `finished`. Failed sends are counted, not fatal. */
typedef struct {
    bt_ref_t to[8];
    uint32_t nto;
    uint32_t id;
    uint32_t chunk;
    uint64_t total;
    uint64_t sent;
    uint64_t failed;
    latch_t *finished;
} flooder_t;

static int flooder_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    flooder_t *f = *(flooder_t **)state;
    bt_runtime_t *rt = bt_ctx_runtime(ctx);
    for (uint32_t i = 0; i < f->chunk && f->sent < f->total; i++, f->sent++) {
        for (uint32_t r = 0; r < f->nto; r++) {
            seq_msg *m = BT_MSG_NEW(seq_msg, MSG_SEQ);
            if (m == NULL)
                return BT_ENOMEM;
            m->producer = f->id;
            m->seq = f->sent;
            if (bt_send(rt, f->to[r], &m->hdr) != BT_OK) {
                bt_msg_free(&m->hdr);
                f->failed++;
            }
        }
    }
    if (f->sent < f->total)
        return send_header(rt, bt_self(ctx), MSG_GO);
    latch_add(f->finished, 1);
    return BT_OK;
}

static const bt_actor_type_t flooder_type = {
    .name = "flooder",
    .state_size = sizeof(flooder_t *),
    .init = ptr_init,
    .dispatch = flooder_dispatch,
};

static uint64_t mutes(bt_runtime_t *rt)
{
    bt_runtime_stats_t st;
    bt_runtime_stats(rt, &st);
    return st.mutes;
}

/* p flooders send n each, chunk per dispatch, to one sink that spends
 * work_ns per message. Returns the sink's depth high-water mark. */
static uint32_t flood(uint32_t backpressure, uint32_t p, uint64_t n, uint32_t chunk,
                      uint64_t work_ns, uint64_t *muted)
{
    bt_runtime_t *rt = start_rt(backpressure);
    sink_t *s = sink_new(p * n);
    s->work_ns = work_ns;
    latch_t finished;
    latch_init(&finished);
    bt_ref_t sink, fl[MAX_PRODUCERS];
    flooder_t f[MAX_PRODUCERS];
    cr_assert_eq(bt_spawn(rt, &sink_type, s, NULL, &sink), BT_OK);
    for (uint32_t i = 0; i < p; i++) {
        f[i] = (flooder_t){
            .to = {sink}, .nto = 1, .id = i, .chunk = chunk, .total = n, .finished = &finished};
        cr_assert_eq(bt_spawn(rt, &flooder_type, &f[i], NULL, &fl[i]), BT_OK);
    }
    for (uint32_t i = 0; i < p; i++)
        cr_assert_eq(send_header(rt, fl[i], MSG_GO), BT_OK);
    cr_assert(latch_wait(&s->done, 1, 60000), "received %llu of %llu",
              (unsigned long long)s->received, (unsigned long long)(p * n));
    cr_assert(latch_wait(&finished, p, 10000));
    cr_assert_eq(s->errors, 0, "per-sender order broken %llu times", (unsigned long long)s->errors);
    for (uint32_t i = 0; i < p; i++)
        cr_assert_eq(f[i].failed, 0);
    bt_actor_stats_t st;
    cr_assert_eq(bt_actor_stats(rt, sink, &st), BT_OK);
    *muted = mutes(rt);
    shutdown_rt(rt);
    latch_destroy(&finished);
    sink_free(s);
    return st.depth_hwm;
}

Test(backpressure, a_flood_is_held_near_the_backpressure_depth)
{
    uint64_t muted;
    uint32_t hwm = flood(1024, 2, 20000, 500, 1000, &muted);
    /* After the send that finds the mailbox 1024 deep, a flooder finishes
     * its dispatch (a chunk, and a chain); if its marker was consumed by
     * then, it is not muted and runs one more dispatch, which leaves a new
     * marker and mutes it. So at most two chunks (and chains) per flooder
     * above the mark, plus a batch of references the sink's turn holds, and
     * the markers. */
    uint32_t bound = 1024 + 2 * 2 * (500 + 64) + 64 + 2;
    cr_assert_gt(muted, 0);
    cr_assert_leq(hwm, bound, "depth high-water mark %u, bound %u", hwm, bound);
}

Test(backpressure, without_it_the_same_flood_piles_up)
{
    /* The control for the test above: the bound is not met by accident. */
    uint64_t muted;
    uint32_t hwm = flood(BT_BACKPRESSURE_OFF, 2, 20000, 500, 1000, &muted);
    cr_assert_eq(muted, 0);
    cr_assert_gt(hwm, 10000, "depth high-water mark %u", hwm);
}

Test(backpressure, a_value_below_four_is_rejected)
{
    bt_runtime_t *rt = NULL;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.backpressure = 3}, &rt), BT_EINVAL);
    cr_assert_null(rt);
}

/* A flooder muted behind a slow sink (2 ms a message, its marker 1024
 * messages in: 2 s away). */
typedef struct {
    bt_runtime_t *rt;
    sink_t *s;
    latch_t finished;
    flooder_t f;
    bt_ref_t sink, fl;
} muted_setup;

static void mute_one(muted_setup *m)
{
    m->rt = start_rt(4096);
    m->s = sink_new(UINT64_MAX);
    m->s->work_ns = 2000000;
    latch_init(&m->finished);
    cr_assert_eq(bt_spawn(m->rt, &sink_type, m->s, NULL, &m->sink), BT_OK);
    m->f = (flooder_t){
        .to = {m->sink}, .nto = 1, .chunk = 5000, .total = 20000, .finished = &m->finished};
    cr_assert_eq(bt_spawn(m->rt, &flooder_type, &m->f, NULL, &m->fl), BT_OK);
    cr_assert_eq(send_header(m->rt, m->fl, MSG_GO), BT_OK);
    cr_assert(WAIT_UNTIL(mutes(m->rt) == 1, 5000));
}

static void unmute_teardown(muted_setup *m)
{
    shutdown_rt(m->rt);
    latch_destroy(&m->finished);
    sink_free(m->s);
}

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

Test(backpressure, a_muted_actor_stops_at_once)
{
    muted_setup m;
    mute_one(&m);
    uint64_t t0 = now_ms();
    cr_assert_eq(bt_stop(m.rt, m.fl), BT_OK);
    cr_assert(WAIT_UNTIL(!bt_alive(m.rt, m.fl), 1500));
    uint64_t took = now_ms() - t0;
    /* Its marker is about 2 s away: the stop unmuted it. */
    cr_assert_lt(took, 1000, "stop took %llu ms", (unsigned long long)took);
    cr_assert_lt(m.f.sent, m.f.total);
    unmute_teardown(&m);
}

Test(backpressure, a_muted_actor_resumes_when_its_receiver_stops)
{
    muted_setup m;
    mute_one(&m);
    /* The sink stops itself at its next message (bt_stop() would queue
     * behind the flood). */
    __atomic_store_n(&m.s->stop_after, 1, __ATOMIC_RELEASE);
    /* Its mailbox drains, markers included: the flooder runs again, and
     * its later sends fail. */
    cr_assert(latch_wait(&m.finished, 1, 3000));
    cr_assert_gt(m.f.failed, 0);
    unmute_teardown(&m);
}

Test(backpressure, shutdown_with_a_muted_actor_frees_everything)
{
    /* Run under LSan in the sanitizer build. */
    muted_setup m;
    mute_one(&m);
    unmute_teardown(&m);
}

/* Two actors that flood each other: a cycle of senders to deep mailboxes
 * must not mute both for good. */
typedef struct {
    bt_ref_t peer;
    uint32_t id;
    uint64_t total, sent, received, errors, next;
    latch_t *done;
} twin_t;

static int twin_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    twin_t *t = *(twin_t **)state;
    bt_runtime_t *rt = bt_ctx_runtime(ctx);
    if (msg->id == MSG_SEQ) {
        const seq_msg *m = (const seq_msg *)msg;
        if (m->seq != t->next)
            t->errors++;
        t->next = m->seq + 1;
        if (++t->received == t->total)
            latch_add(t->done, 1);
        return BT_OK;
    }
    for (uint32_t i = 0; i < 300 && t->sent < t->total; i++, t->sent++) {
        seq_msg *m = BT_MSG_NEW(seq_msg, MSG_SEQ);
        if (m == NULL)
            return BT_ENOMEM;
        m->producer = t->id;
        m->seq = t->sent;
        int rc = bt_send(rt, t->peer, &m->hdr);
        if (rc != BT_OK) {
            bt_msg_free(&m->hdr);
            return rc;
        }
    }
    return t->sent < t->total ? send_header(rt, bt_self(ctx), MSG_GO) : BT_OK;
}

static const bt_actor_type_t twin_type = {
    .name = "twin",
    .state_size = sizeof(twin_t *),
    .init = ptr_init,
    .dispatch = twin_dispatch,
};

Test(backpressure, actors_flooding_each_other_do_not_deadlock)
{
    bt_runtime_t *rt = start_rt(64);
    latch_t done;
    latch_init(&done);
    twin_t t[2] = {{.id = 0, .total = 200000, .done = &done},
                   {.id = 1, .total = 200000, .done = &done}};
    bt_ref_t r[2];
    cr_assert_eq(bt_spawn(rt, &twin_type, &t[0], NULL, &r[0]), BT_OK);
    cr_assert_eq(bt_spawn(rt, &twin_type, &t[1], NULL, &r[1]), BT_OK);
    t[0].peer = r[1];
    t[1].peer = r[0];
    cr_assert_eq(send_header(rt, r[0], MSG_GO), BT_OK);
    cr_assert_eq(send_header(rt, r[1], MSG_GO), BT_OK);
    cr_assert(latch_wait(&done, 2, 60000), "received %llu and %llu of 200000",
              (unsigned long long)t[0].received, (unsigned long long)t[1].received);
    cr_assert_eq(t[0].errors + t[1].errors, 0);
    cr_assert_gt(mutes(rt), 0);
    shutdown_rt(rt);
    latch_destroy(&done);
}

/* ---------------------------------------------------------------- outbox */

Test(outbox, a_burst_to_more_receivers_than_ways_keeps_each_senders_order)
{
    bt_runtime_t *rt = start_rt(0);
    enum { NSINK = 6, NFLOOD = 2, PER = 20000 };
    sink_t *s[NSINK];
    bt_ref_t sink[NSINK], fl[NFLOOD];
    latch_t finished;
    latch_init(&finished);
    for (int i = 0; i < NSINK; i++) {
        s[i] = sink_new((uint64_t)NFLOOD * PER);
        cr_assert_eq(bt_spawn(rt, &sink_type, s[i], NULL, &sink[i]), BT_OK);
    }
    flooder_t f[NFLOOD];
    for (int i = 0; i < NFLOOD; i++) {
        f[i] = (flooder_t){
            .nto = NSINK, .id = (uint32_t)i, .chunk = 700, .total = PER, .finished = &finished};
        memcpy(f[i].to, sink, sizeof sink);
        cr_assert_eq(bt_spawn(rt, &flooder_type, &f[i], NULL, &fl[i]), BT_OK);
    }
    for (int i = 0; i < NFLOOD; i++)
        cr_assert_eq(send_header(rt, fl[i], MSG_GO), BT_OK);
    for (int i = 0; i < NSINK; i++) {
        cr_assert(latch_wait(&s[i]->done, 1, 30000), "sink %d received %llu", i,
                  (unsigned long long)s[i]->received);
        cr_assert_eq(s[i]->errors, 0, "sink %d: order broken", i);
    }
    cr_assert(latch_wait(&finished, NFLOOD, 10000));
    shutdown_rt(rt);
    for (int i = 0; i < NSINK; i++)
        sink_free(s[i]);
    latch_destroy(&finished);
}

/* Sends `total` messages to `to` and then stops it, in one dispatch. */
typedef struct {
    bt_ref_t to;
    uint64_t total;
} burst_stop_t;

static int burst_stop_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    burst_stop_t *b = *(burst_stop_t **)state;
    bt_runtime_t *rt = bt_ctx_runtime(ctx);
    for (uint64_t i = 0; i < b->total; i++) {
        seq_msg *m = BT_MSG_NEW(seq_msg, MSG_SEQ);
        if (m == NULL)
            return BT_ENOMEM;
        m->seq = i;
        int rc = bt_send(rt, b->to, &m->hdr);
        if (rc != BT_OK) {
            bt_msg_free(&m->hdr);
            return rc;
        }
    }
    return bt_stop(rt, b->to);
}

static const bt_actor_type_t burst_stop_type = {
    .name = "burst_stop",
    .state_size = sizeof(burst_stop_t *),
    .init = ptr_init,
    .dispatch = burst_stop_dispatch,
};

Test(outbox, a_stop_after_a_burst_comes_after_the_burst)
{
    bt_runtime_t *rt = start_rt(0);
    sink_t *s = sink_new(1000);
    bt_ref_t sink, b;
    cr_assert_eq(bt_spawn(rt, &sink_type, s, NULL, &sink), BT_OK);
    burst_stop_t bs = {.to = sink, .total = 1000};
    cr_assert_eq(bt_spawn(rt, &burst_stop_type, &bs, NULL, &b), BT_OK);
    cr_assert_eq(send_header(rt, b, MSG_GO), BT_OK);
    cr_assert(WAIT_UNTIL(!bt_alive(rt, sink), 5000));
    /* The stop was requested after the burst, so the sink handled all of
     * it before it stopped. */
    cr_assert_eq(__atomic_load_n(&s->at_cleanup, __ATOMIC_ACQUIRE), 1000);
    cr_assert_eq(s->errors, 0);
    shutdown_rt(rt);
    sink_free(s);
}

Test(outbox, a_receiver_that_stops_mid_burst_dead_letters_the_rest)
{
    bt_runtime_t *rt = start_rt(0);
    sink_t *s = sink_new(UINT64_MAX);
    s->stop_after = 10;
    latch_t finished;
    latch_init(&finished);
    bt_ref_t sink, fl;
    cr_assert_eq(bt_spawn(rt, &sink_type, s, NULL, &sink), BT_OK);
    flooder_t f = {.to = {sink}, .nto = 1, .chunk = 1000, .total = 1000, .finished = &finished};
    cr_assert_eq(bt_spawn(rt, &flooder_type, &f, NULL, &fl), BT_OK);
    cr_assert_eq(send_header(rt, fl, MSG_GO), BT_OK);
    cr_assert(latch_wait(&finished, 1, 5000));
    cr_assert(WAIT_UNTIL(!bt_alive(rt, sink), 5000));
    /* Each of the 990 is a dead letter: refused at the send, or drained
     * from the stopped sink's mailbox. */
    bt_runtime_stats_t st;
    cr_assert(WAIT_UNTIL((bt_runtime_stats(rt, &st), st.dead_letters == 990), 5000),
              "dead letters %llu", (unsigned long long)st.dead_letters);
    cr_assert_eq(__atomic_load_n(&s->at_cleanup, __ATOMIC_ACQUIRE), 10);
    shutdown_rt(rt);
    latch_destroy(&finished);
    sink_free(s);
}
