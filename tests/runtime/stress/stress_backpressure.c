/*
 * stress_backpressure.c: backpressure and the outbox under races. With a
 * tiny backpressure depth, so that senders are muted and unmuted all the
 * time:
 *  1. flooders into one sink: nothing lost or duplicated, FIFO per sender;
 *  2. a ring of actors flooding the next one: no cycle of muted actors;
 *  3. flooders and sinks stopped at random moments, by themselves and from
 *     outside, while muted or not: nothing crashes, nothing is touched after
 *     free (ASan, TSan), and every message sent is either handled or
 *     reported as a dead letter, exactly once.
 * A plain executable so that it runs under ThreadSanitizer.
 */
#include "../helpers.h"

#include <baton/baton.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef BT_TSAN
#define PER_FLOODER 20000
#define RING_MSGS   20000
#define ROUNDS      30
#else
#define PER_FLOODER 400000
#define RING_MSGS   200000
#define ROUNDS      300
#endif

enum { MSG_SEQ = 1, MSG_GO };

typedef struct {
    bt_msg_t hdr;
    uint32_t producer;
    uint64_t seq;
} seq_msg;

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "stress_backpressure: " __VA_ARGS__);                                  \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void sleep_us(long us)
{
    nanosleep(&(struct timespec){us / 1000000, (us % 1000000) * 1000}, NULL);
}

static bt_runtime_t *start_rt(uint32_t threads, uint32_t backpressure)
{
    bt_runtime_t *rt;
    bt_runtime_config_t cfg = {.threads = threads, .backpressure = backpressure};
    if (bt_runtime_create(&cfg, &rt) != BT_OK || bt_runtime_start(rt) != BT_OK) {
        fprintf(stderr, "stress_backpressure: runtime start failed\n");
        exit(1);
    }
    return rt;
}

/* A flooding actor: on MSG_GO, sends `chunk` messages to `to` (or to the
 * next actor of a ring), then MSG_GO to itself until `total` are sent.
 * Also a sink: counts MSG_SEQ, checks FIFO per producer, and stops itself
 * at `stop_at` messages if set. All fields but the config are owned by the
 * actor while it runs; the shared counters are atomic. */
typedef struct node {
    bt_ref_t to;
    uint32_t id;
    uint32_t chunk;
    uint64_t total;
    uint64_t sent;     /* attempts; atomic */
    uint64_t received; /* atomic */
    uint64_t stop_at;
    uint64_t next[64];
    uint64_t errors; /* atomic */
} node_t;

static uint64_t attempts_total; /* atomic: every MSG_SEQ send tried */
static uint64_t handled_total;  /* atomic: every MSG_SEQ dispatched */

static int node_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    *(const void **)state = arg;
    return BT_OK;
}

static int node_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    node_t *n = *(node_t **)state;
    bt_runtime_t *rt = bt_ctx_runtime(ctx);
    if (msg->id == MSG_SEQ) {
        const seq_msg *m = (const seq_msg *)msg;
        if (m->producer < 64) {
            if (m->seq != n->next[m->producer])
                __atomic_add_fetch(&n->errors, 1, __ATOMIC_RELAXED);
            n->next[m->producer] = m->seq + 1;
        }
        __atomic_add_fetch(&handled_total, 1, __ATOMIC_RELAXED);
        uint64_t r = __atomic_add_fetch(&n->received, 1, __ATOMIC_RELAXED);
        if (n->stop_at != 0 && r == n->stop_at)
            bt_stop_self(ctx);
        return BT_OK;
    }
    for (uint32_t i = 0; i < n->chunk && n->sent < n->total;
         i++, __atomic_store_n(&n->sent, n->sent + 1, __ATOMIC_RELAXED)) {
        seq_msg *m = BT_MSG_NEW(seq_msg, MSG_SEQ);
        if (m == NULL)
            return BT_ENOMEM;
        m->producer = n->id;
        m->seq = n->sent;
        __atomic_add_fetch(&attempts_total, 1, __ATOMIC_RELAXED);
        if (bt_send(rt, n->to, &m->hdr) != BT_OK)
            bt_msg_free(&m->hdr); /* counted as a dead letter by the runtime */
    }
    return n->sent < n->total ? send_header(rt, bt_self(ctx), MSG_GO) : BT_OK;
}

static const bt_actor_type_t node_type = {
    .name = "node",
    .state_size = sizeof(node_t *),
    .init = node_init,
    .dispatch = node_dispatch,
};

/* Counts dead letters of MSG_SEQ. */
static uint64_t dead_seq; /* atomic */

static int observer_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    if (msg->id == BT_MSG_DEAD_LETTER && ((const bt_dead_letter_msg_t *)msg)->id == MSG_SEQ)
        __atomic_add_fetch(&dead_seq, 1, __ATOMIC_RELAXED);
    return BT_OK;
}

static const bt_actor_type_t observer_type = {.name = "observer", .dispatch = observer_dispatch};

static uint64_t mutes(bt_runtime_t *rt)
{
    bt_runtime_stats_t st;
    bt_runtime_stats(rt, &st);
    return st.mutes;
}

/* ------------------------------------------------------------ scenarios */

static void fan_in(void)
{
    enum { P = 4 };
    bt_runtime_t *rt = start_rt(4, 64);
    node_t sink = {0}, fl[P];
    bt_ref_t sref, fref[P];
    if (bt_spawn(rt, &node_type, &sink, NULL, &sref) != BT_OK)
        exit(1);
    for (uint32_t i = 0; i < P; i++) {
        fl[i] = (node_t){.to = sref, .id = i, .chunk = 50 + 37 * i, .total = PER_FLOODER};
        if (bt_spawn(rt, &node_type, &fl[i], NULL, &fref[i]) != BT_OK)
            exit(1);
    }
    for (uint32_t i = 0; i < P; i++)
        CHECK(send_header(rt, fref[i], MSG_GO) == BT_OK, "fan-in: start failed");
    uint64_t want = (uint64_t)P * PER_FLOODER, deadline = now_ms() + 120000;
    while (__atomic_load_n(&sink.received, __ATOMIC_RELAXED) < want && now_ms() < deadline)
        sleep_us(1000);
    uint64_t got = __atomic_load_n(&sink.received, __ATOMIC_RELAXED);
    CHECK(got == want, "fan-in: received %llu of %llu", (unsigned long long)got,
          (unsigned long long)want);
    CHECK(sink.errors == 0, "fan-in: per-sender order broken %llu times",
          (unsigned long long)sink.errors);
    uint64_t m = mutes(rt);
    CHECK(m > 0, "fan-in: no sender was ever muted");
    CHECK(bt_runtime_shutdown(rt, 10000000000ull) == BT_OK, "fan-in: shutdown");
    printf("fan-in: %u flooders x %u messages, %llu mutes\n", P, PER_FLOODER,
           (unsigned long long)m);
}

static void ring(void)
{
    enum { N = 3 };
    bt_runtime_t *rt = start_rt(2, 16);
    node_t n[N];
    bt_ref_t r[N];
    for (uint32_t i = 0; i < N; i++) {
        n[i] = (node_t){.id = i, .chunk = 100, .total = RING_MSGS};
        if (bt_spawn(rt, &node_type, &n[i], NULL, &r[i]) != BT_OK)
            exit(1);
    }
    for (uint32_t i = 0; i < N; i++)
        n[i].to = r[(i + 1) % N]; /* before the first MSG_GO: published by the send */
    for (uint32_t i = 0; i < N; i++)
        CHECK(send_header(rt, r[i], MSG_GO) == BT_OK, "ring: start failed");
    uint64_t deadline = now_ms() + 120000;
    bool done = false;
    while (!done && now_ms() < deadline) {
        done = true;
        for (uint32_t i = 0; i < N; i++)
            done &= __atomic_load_n(&n[i].received, __ATOMIC_RELAXED) == RING_MSGS;
        if (!done)
            sleep_us(1000);
    }
    for (uint32_t i = 0; i < N; i++) {
        uint64_t got = __atomic_load_n(&n[i].received, __ATOMIC_RELAXED);
        CHECK(got == RING_MSGS, "ring: actor %u received %llu of %u (stuck?)", i,
              (unsigned long long)got, RING_MSGS);
        CHECK(n[i].errors == 0, "ring: actor %u: order broken", i);
    }
    uint64_t m = mutes(rt);
    CHECK(bt_runtime_shutdown(rt, 10000000000ull) == BT_OK, "ring: shutdown");
    printf("ring: %u actors x %u messages, %llu mutes\n", N, RING_MSGS, (unsigned long long)m);
}

/* One round: 3 flooders into a sink that stops itself somewhere in the
 * flood, while this thread stops a flooder at a random moment. */
static void stops_round(bt_runtime_t *rt, unsigned *seed)
{
    enum { P = 3 };
    node_t sink = {.stop_at = 1 + (uint64_t)rand_r(seed) % 3000};
    node_t fl[P];
    bt_ref_t sref, fref[P];
    if (bt_spawn(rt, &node_type, &sink, NULL, &sref) != BT_OK)
        exit(1);
    for (uint32_t i = 0; i < P; i++) {
        fl[i] =
            (node_t){.to = sref, .id = i, .chunk = 1 + (uint32_t)rand_r(seed) % 200, .total = 2000};
        if (bt_spawn(rt, &node_type, &fl[i], NULL, &fref[i]) != BT_OK)
            exit(1);
    }
    for (uint32_t i = 0; i < P; i++)
        (void)send_header(rt, fref[i], MSG_GO);
    sleep_us(rand_r(seed) % 2000);
    (void)bt_stop(rt, fref[rand_r(seed) % P]);
    /* Quiescent once every flooder has stopped sending and every attempt
     * is accounted for. */
    for (uint32_t i = 0; i < P; i++) {
        uint64_t deadline = now_ms() + 30000;
        while (bt_alive(rt, fref[i]) && __atomic_load_n(&fl[i].sent, __ATOMIC_RELAXED) < 2000 &&
               now_ms() < deadline)
            sleep_us(200);
    }
    (void)bt_stop(rt, sref);
    for (uint32_t i = 0; i < P; i++)
        (void)bt_stop(rt, fref[i]);
    uint64_t deadline = now_ms() + 30000;
    while ((bt_alive(rt, sref) || bt_alive(rt, fref[0]) || bt_alive(rt, fref[1]) ||
            bt_alive(rt, fref[2])) &&
           now_ms() < deadline)
        sleep_us(200);
    CHECK(!bt_alive(rt, sref), "stops: sink still alive (stuck?)");
    for (uint32_t i = 0; i < P; i++)
        CHECK(!bt_alive(rt, fref[i]), "stops: flooder %u still alive (stuck muted?)", i);
    CHECK(sink.errors == 0, "stops: per-sender order broken");
}

static void stops(void)
{
    bt_runtime_t *rt = start_rt(2, 32);
    bt_ref_t obs;
    if (bt_spawn(rt, &observer_type, NULL, NULL, &obs) != BT_OK ||
        bt_observe_dead_letters(rt, obs) != BT_OK)
        exit(1);
    __atomic_store_n(&attempts_total, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&handled_total, 0, __ATOMIC_RELAXED);
    unsigned seed = 12345;
    for (int i = 0; i < ROUNDS && failures == 0; i++)
        stops_round(rt, &seed);
    /* Every attempt is handled or reported dead, once: wait for the
     * observer's last reports. */
    uint64_t attempts = __atomic_load_n(&attempts_total, __ATOMIC_RELAXED),
             deadline = now_ms() + 10000;
    while (__atomic_load_n(&handled_total, __ATOMIC_RELAXED) +
                   __atomic_load_n(&dead_seq, __ATOMIC_RELAXED) <
               attempts &&
           now_ms() < deadline)
        sleep_us(1000);
    sleep_us(20000); /* a duplicate would show up by now */
    uint64_t handled = __atomic_load_n(&handled_total, __ATOMIC_RELAXED);
    uint64_t dead = __atomic_load_n(&dead_seq, __ATOMIC_RELAXED);
    CHECK(handled + dead == attempts, "stops: %llu sent, %llu handled + %llu dead letters",
          (unsigned long long)attempts, (unsigned long long)handled, (unsigned long long)dead);
    uint64_t m = mutes(rt);
    CHECK(bt_runtime_shutdown(rt, 10000000000ull) == BT_OK, "stops: shutdown");
    printf("stops: %d rounds, %llu sent, %llu handled, %llu dead letters, %llu mutes\n", ROUNDS,
           (unsigned long long)attempts, (unsigned long long)handled, (unsigned long long)dead,
           (unsigned long long)m);
}

int main(void)
{
    fan_in();
    ring();
    stops();
    if (failures != 0) {
        fprintf(stderr, "stress_backpressure: FAILED (%d)\n", failures);
        return 1;
    }
    printf("stress_backpressure: ok\n");
    return 0;
}
