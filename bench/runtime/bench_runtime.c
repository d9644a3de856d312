/*
 * bench_runtime.c: the baton side of the bench harness: Savina-style actor
 * workloads plus spawn cost, bytes per idle actor and idle CPU, written
 * against <baton/baton.h> only.
 *
 * DESIGN
 * Every run creates a runtime, spawns its actors, then times from the
 * message (or spawn) that starts the work to the moment the last actor
 * counts down the run's latch, and shuts the runtime down untimed. One
 * workload runs at a time, so the latch and the run's failure state are
 * globals (g_done). An actor that cannot allocate or send fails the run
 * through the latch at once instead of leaving the main thread to time out.
 * Producers send in chunks (CHUNK messages per dispatch, then a CONTINUE to
 * themselves) because a baton dispatch is never preempted: one long
 * dispatch would hold a scheduler thread. Messages are plain bt_msg_t
 * unless a workload needs a payload.
 */
#include <baton/baton.h>

#include "driver.h"
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 1000u /* messages a producer sends per dispatch */

enum msg_id {
    MSG_START = 1, /* begin the workload */
    MSG_PING,
    MSG_PONG,
    MSG_DATA,     /* one unit to count */
    MSG_CONTINUE, /* producer to itself: send the next chunk */
    MSG_WORK,     /* work_msg: one computation */
    MSG_TOKEN,    /* token_msg: a thread-ring hop */
    MSG_MEET,     /* cham_msg: a creature asks the mall to meet / is met */
    MSG_CHANGE,   /* cham_msg: the partner's new colour */
    MSG_EXIT,     /* mall to creature: no meetings left */
    MSG_FADED,    /* cham_msg: a creature's meeting count, to the mall */
    MSG_ID_COUNT_
};

typedef struct {
    bt_msg_t hdr;
    double theta;
} work_msg;

typedef struct {
    bt_msg_t hdr;
    uint64_t hops; /* hops still to make */
} token_msg;

typedef struct {
    bt_msg_t hdr;
    bt_ref_t who;   /* the creature this is about (the sender may be the mall) */
    uint32_t color; /* enum color */
    uint32_t pad_;
    uint64_t count; /* MSG_FADED: meetings the creature took part in */
} cham_msg;

/* ------------------------------------------------------------ run state */

static bench_latch_t g_done; /* counted down by the actors of the current run */
static uint64_t g_check;     /* a workload's result to verify, written before count-down */

static void run_fail(const char *why, int rc)
{
    bench_latch_fail(&g_done, why, rc);
}

/* Sends m to `to`. On failure frees m, fails the run and returns the code,
 * which a dispatch returns to stop its actor. Takes ownership of m. */
static int post(bt_runtime_t *rt, bt_ref_t to, bt_msg_t *m)
{
    if (m == NULL) {
        run_fail("message allocation failed", BT_ENOMEM);
        return BT_ENOMEM;
    }
    int rc = bt_send(rt, to, m);
    if (rc != BT_OK) {
        bt_msg_free(m);
        run_fail("bt_send failed", rc);
    }
    return rc;
}

static int post_id(bt_runtime_t *rt, bt_ref_t to, uint32_t id)
{
    return post(rt, to, bt_msg_new(sizeof(bt_msg_t), id));
}

static int post_work(bt_runtime_t *rt, bt_ref_t to, double theta)
{
    work_msg *m = BT_MSG_NEW(work_msg, MSG_WORK);
    if (m != NULL)
        m->theta = theta;
    return post(rt, to, m != NULL ? &m->hdr : NULL);
}

static int post_token(bt_runtime_t *rt, bt_ref_t to, uint64_t hops)
{
    token_msg *m = BT_MSG_NEW(token_msg, MSG_TOKEN);
    if (m != NULL)
        m->hops = hops;
    return post(rt, to, m != NULL ? &m->hdr : NULL);
}

static int post_cham(bt_runtime_t *rt, bt_ref_t to, uint32_t id, bt_ref_t who, uint32_t color,
                     uint64_t count)
{
    cham_msg *m = BT_MSG_NEW(cham_msg, id);
    if (m != NULL) {
        m->who = who;
        m->color = color;
        m->count = count;
    }
    return post(rt, to, m != NULL ? &m->hdr : NULL);
}

/* Creates and starts a runtime with --threads scheduler threads and resets
 * the run state for count count-downs. NULL (after printing why) on error. */
static bt_runtime_t *run_open(uint64_t count)
{
    bench_latch_init(&g_done, count);
    g_check = 0;
    bt_runtime_config_t cfg = {.threads = bench_threads, .batch = 0};
    bt_runtime_t *rt;
    int rc = bt_runtime_create(&cfg, &rt);
    if (rc == BT_OK && (rc = bt_runtime_start(rt)) != BT_OK)
        (void)bt_runtime_shutdown(rt, 1000000000u);
    if (rc != BT_OK) {
        fprintf(stderr, "baton: runtime start: %s\n", bt_strerror(rc));
        bench_latch_destroy(&g_done);
        return NULL;
    }
    return rt;
}

/* Shuts rt down and ends the run; returns ok unless the shutdown fails, in
 * which case the runtime is leaked (its threads may still be running). */
static int run_close(bt_runtime_t *rt, int ok)
{
    int rc = bt_runtime_shutdown(rt, 30ull * 1000000000u);
    if (rc != BT_OK) {
        fprintf(stderr, "baton: shutdown: %s\n", bt_strerror(rc));
        ok = -1;
    }
    bench_latch_destroy(&g_done);
    return ok;
}

/* Waits for the run's actors; on a timeout prints the runtime's counters so
 * a hang can be told from a slow run. */
static int run_wait(bt_runtime_t *rt, const char *workload)
{
    int rc = bench_latch_wait(&g_done, bench_timeout_ns);
    if (rc == -2) {
        bt_runtime_stats_t s;
        bt_runtime_stats(rt, &s);
        fprintf(stderr,
                "baton: %s: no completion after %.0f s (latch at %llu): sent %llu, processed "
                "%llu, dead letters %llu, live actors %llu\n",
                workload, (double)bench_timeout_ns / 1e9,
                (unsigned long long)__atomic_load_n(&g_done.left, __ATOMIC_RELAXED),
                (unsigned long long)s.sent, (unsigned long long)s.processed,
                (unsigned long long)s.dead_letters, (unsigned long long)s.actors_live);
    }
    return rc;
}

/* Spawns an actor; on error prints it. */
static int spawn(bt_runtime_t *rt, const bt_actor_type_t *type, const void *arg, bt_ref_t *out)
{
    int rc = bt_spawn(rt, type, arg, NULL, out);
    if (rc != BT_OK)
        fprintf(stderr, "baton: spawn %s: %s\n", type->name, bt_strerror(rc));
    return rc;
}

/* The computation of Savina's fork-join workloads. */
static double compute(double theta)
{
    double s = sin(theta);
    return s * s;
}

/* ------------------------------------------------------------ ping-pong */

typedef struct {
    bt_ref_t partner;
    uint64_t left; /* round trips still to make */
} pinger_state;

static int pinger_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    *(pinger_state *)state = *(const pinger_state *)arg;
    return BT_OK;
}

static int pinger_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    pinger_state *st = state;
    if (msg->id == MSG_PONG && --st->left == 0) {
        bench_latch_count_down(&g_done);
        return BT_OK;
    }
    return post_id(bt_ctx_runtime(ctx), st->partner, MSG_PING); /* MSG_START or a pong */
}

static int ponger_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    return post_id(bt_ctx_runtime(ctx), msg->from, MSG_PONG);
}

static const bt_actor_type_t pinger_type = {
    .name = "pinger",
    .state_size = sizeof(pinger_state),
    .init = pinger_init,
    .dispatch = pinger_dispatch,
};
static const bt_actor_type_t ponger_type = {.name = "ponger", .dispatch = ponger_dispatch};

/* args: round trips. Value: ns per message (two messages per round trip). */
static int run_pingpong(const uint64_t *args, double *value)
{
    uint64_t n = args[0];
    bt_runtime_t *rt = run_open(1);
    if (rt == NULL)
        return -1;
    pinger_state ps = {.left = n};
    bt_ref_t pinger;
    int ok = -1;
    if (spawn(rt, &ponger_type, NULL, &ps.partner) != BT_OK ||
        spawn(rt, &pinger_type, &ps, &pinger) != BT_OK)
        return run_close(rt, -1);
    uint64_t t0 = bench_now_ns();
    if (post_id(rt, pinger, MSG_START) == BT_OK && run_wait(rt, "pingpong") == 0) {
        *value = (double)(bench_now_ns() - t0) / (2.0 * (double)n);
        ok = 0;
    }
    return run_close(rt, ok);
}

/* ---------------------------------------------- counting and fan-in */

typedef struct {
    uint64_t count;
    uint64_t target;
} counter_state;

static int counter_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    ((counter_state *)state)->target = *(const uint64_t *)arg;
    return BT_OK;
}

static int counter_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    counter_state *st = state;
    if (++st->count == st->target) {
        g_check = st->count;
        bench_latch_count_down(&g_done);
    }
    return BT_OK;
}

static const bt_actor_type_t counter_type = {
    .name = "counter",
    .state_size = sizeof(counter_state),
    .init = counter_init,
    .dispatch = counter_dispatch,
};

typedef struct {
    bt_ref_t to;
    uint64_t left; /* messages still to send */
} producer_state;

static int producer_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    *(producer_state *)state = *(const producer_state *)arg;
    return BT_OK;
}

/* MSG_CONTINUE (the first one comes from main): send a chunk, then ask
 * itself for the next. */
static int producer_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    producer_state *st = state;
    bt_runtime_t *rt = bt_ctx_runtime(ctx);
    uint64_t chunk = st->left < CHUNK ? st->left : CHUNK;
    for (uint64_t i = 0; i < chunk; i++) {
        int rc = post_id(rt, st->to, MSG_DATA);
        if (rc != BT_OK)
            return rc;
    }
    st->left -= chunk;
    return st->left > 0 ? post_id(rt, bt_self(ctx), MSG_CONTINUE) : BT_OK;
}

static const bt_actor_type_t producer_type = {
    .name = "producer",
    .state_size = sizeof(producer_state),
    .init = producer_init,
    .dispatch = producer_dispatch,
};

/* p producers send n messages in all to one counter. Returns the elapsed
 * ns, or 0 on failure. */
static uint64_t fan_in(uint64_t p, uint64_t n)
{
    bt_runtime_t *rt = run_open(1);
    if (rt == NULL)
        return 0;
    bt_ref_t counter;
    bt_ref_t *prod = calloc(p, sizeof *prod);
    if (prod == NULL || spawn(rt, &counter_type, &n, &counter) != BT_OK) {
        free(prod);
        run_close(rt, -1);
        return 0;
    }
    for (uint64_t i = 0; i < p; i++) {
        producer_state ps = {.to = counter, .left = n / p + (i < n % p ? 1 : 0)};
        if (spawn(rt, &producer_type, &ps, &prod[i]) != BT_OK) {
            free(prod);
            run_close(rt, -1);
            return 0;
        }
    }
    uint64_t t0 = bench_now_ns(), elapsed = 0;
    bool sent = true;
    for (uint64_t i = 0; i < p && sent; i++)
        sent = post_id(rt, prod[i], MSG_CONTINUE) == BT_OK;
    if (sent && run_wait(rt, "fanin") == 0)
        elapsed = bench_now_ns() - t0;
    if (elapsed != 0 && g_check != n) {
        fprintf(stderr, "baton: fan-in counted %llu of %llu\n", (unsigned long long)g_check,
                (unsigned long long)n);
        elapsed = 0;
    }
    free(prod);
    return run_close(rt, 0) == 0 ? elapsed : 0;
}

/* args: messages. Value: ns per message. */
static int run_counting(const uint64_t *args, double *value)
{
    uint64_t ns = fan_in(1, args[0]);
    *value = (double)ns / (double)args[0];
    return ns != 0 ? 0 : -1;
}

/* args: producers, messages in all. Value: million messages per second. */
static int run_fanin(const uint64_t *args, double *value)
{
    uint64_t ns = fan_in(args[0], args[1]);
    *value = (double)args[1] * 1e3 / (double)ns;
    return ns != 0 ? 0 : -1;
}

/* ------------------------------------------------------------ fork-join */

typedef struct {
    uint64_t count;
    uint64_t target;
    double acc;
} fj_state;

static int fj_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    ((fj_state *)state)->target = arg != NULL ? *(const uint64_t *)arg : 1;
    return BT_OK;
}

static int fj_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    fj_state *st = state;
    st->acc += compute(((const work_msg *)msg)->theta);
    if (++st->count == st->target) {
        bench_latch_count_down(&g_done);
        if (st->target == 1)
            bt_stop_self(ctx); /* a fork-join-create worker lives for one message */
    }
    return BT_OK;
}

static const bt_actor_type_t fj_type = {
    .name = "fj_worker",
    .state_size = sizeof(fj_state),
    .init = fj_init,
    .dispatch = fj_dispatch,
};

/* args: actors, messages per actor; main sends every message. Value: ns per
 * message. */
static int run_forkjoin(const uint64_t *args, double *value)
{
    uint64_t k = args[0], n = args[1];
    bt_runtime_t *rt = run_open(k);
    if (rt == NULL)
        return -1;
    bt_ref_t *w = calloc(k, sizeof *w);
    int ok = -1;
    for (uint64_t i = 0; w != NULL && i < k; i++) {
        if (spawn(rt, &fj_type, &n, &w[i]) != BT_OK) {
            free(w);
            return run_close(rt, -1);
        }
    }
    if (w == NULL)
        return run_close(rt, -1);
    uint64_t t0 = bench_now_ns();
    bool sent = true;
    for (uint64_t m = 0; m < n && sent; m++)
        for (uint64_t i = 0; i < k && sent; i++)
            sent = post_work(rt, w[i], 37.2 + (double)m * 1e-6) == BT_OK;
    if (sent && run_wait(rt, "forkjoin") == 0) {
        *value = (double)(bench_now_ns() - t0) / (double)(k * n);
        ok = 0;
    }
    free(w);
    return run_close(rt, ok);
}

/* args: actors; main spawns each and sends it one message, which it
 * handles before stopping. Value: ns per actor. */
static int run_fjcreate(const uint64_t *args, double *value)
{
    uint64_t n = args[0];
    bt_runtime_t *rt = run_open(n);
    if (rt == NULL)
        return -1;
    int ok = -1;
    uint64_t t0 = bench_now_ns();
    bool sent = true;
    for (uint64_t i = 0; i < n && sent; i++) {
        bt_ref_t a;
        sent = spawn(rt, &fj_type, NULL, &a) == BT_OK && post_work(rt, a, 37.2) == BT_OK;
    }
    if (sent && run_wait(rt, "fjcreate") == 0) {
        *value = (double)(bench_now_ns() - t0) / (double)n;
        ok = 0;
    }
    return run_close(rt, ok);
}

/* --------------------------------------------------------- idle actors */

typedef struct {
    uint64_t word; /* a token of state; idle actors never touch it */
} idle_state;

static int idle_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    return BT_OK;
}

static const bt_actor_type_t idle_type = {
    .name = "idle",
    .state_size = sizeof(idle_state),
    .dispatch = idle_dispatch,
};

static int spawn_idle(bt_runtime_t *rt, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        bt_ref_t a;
        if (spawn(rt, &idle_type, NULL, &a) != BT_OK)
            return -1;
    }
    return 0;
}

/* args: actors. Value: ns per bt_spawn() of an idle actor. */
static int run_spawn(const uint64_t *args, double *value)
{
    bt_runtime_t *rt = run_open(0);
    if (rt == NULL)
        return -1;
    uint64_t t0 = bench_now_ns();
    int ok = spawn_idle(rt, args[0]);
    *value = (double)(bench_now_ns() - t0) / (double)args[0];
    return run_close(rt, ok);
}

/* args: actors. Value: resident bytes added per idle actor (slot, actor,
 * mailbox and state, allocator overhead included). */
static int run_idle_bytes(const uint64_t *args, double *value)
{
    bt_runtime_t *rt = run_open(0);
    if (rt == NULL)
        return -1;
    uint64_t before = bench_rss_bytes();
    int ok = spawn_idle(rt, args[0]);
    uint64_t after = bench_rss_bytes();
    if (before == 0 || after == 0)
        ok = -1;
    *value = after > before ? (double)(after - before) / (double)args[0] : 0;
    return run_close(rt, ok);
}

/* args: actors, milliseconds. Value: process CPU time over wall time while
 * the runtime (default threads) holds only idle actors, in percent. */
static int run_idle_cpu(const uint64_t *args, double *value)
{
    bt_runtime_t *rt = run_open(0);
    if (rt == NULL)
        return -1;
    int ok = spawn_idle(rt, args[0]);
    bench_sleep_ns(100 * 1000000u); /* let the workers park */
    uint64_t c0 = bench_cpu_ns(), t0 = bench_now_ns();
    bench_sleep_ns(args[1] * 1000000u);
    uint64_t c1 = bench_cpu_ns(), t1 = bench_now_ns();
    *value = 100.0 * (double)(c1 - c0) / (double)(t1 - t0);
    return run_close(rt, ok);
}

/* ---------------------------------------------------------- thread ring */

typedef struct {
    const bt_ref_t *ring; /* every member, written by main before the token */
    uint32_t size;
    uint32_t index;
} ring_state;

static int ring_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    *(ring_state *)state = *(const ring_state *)arg;
    return BT_OK;
}

static int ring_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    const ring_state *st = state;
    uint64_t hops = ((const token_msg *)msg)->hops;
    if (hops == 0) {
        bench_latch_count_down(&g_done);
        return BT_OK;
    }
    return post_token(bt_ctx_runtime(ctx), st->ring[(st->index + 1) % st->size], hops - 1);
}

static const bt_actor_type_t ring_type = {
    .name = "ring",
    .state_size = sizeof(ring_state),
    .init = ring_init,
    .dispatch = ring_dispatch,
};

/* args: actors, hops. Value: ns per hop. */
static int run_ring(const uint64_t *args, double *value)
{
    uint64_t r = args[0], hops = args[1];
    if (r > UINT32_MAX)
        return -1;
    bt_runtime_t *rt = run_open(1);
    if (rt == NULL)
        return -1;
    bt_ref_t *ring = calloc(r, sizeof *ring);
    int ok = -1;
    for (uint32_t i = 0; ring != NULL && i < r; i++) {
        ring_state rs = {.ring = ring, .size = (uint32_t)r, .index = i};
        if (spawn(rt, &ring_type, &rs, &ring[i]) != BT_OK) {
            free(ring);
            return run_close(rt, -1);
        }
    }
    if (ring == NULL)
        return run_close(rt, -1);
    uint64_t t0 = bench_now_ns();
    if (post_token(rt, ring[0], hops) == BT_OK && run_wait(rt, "ring") == 0) {
        *value = (double)(bench_now_ns() - t0) / (double)hops;
        ok = 0;
    }
    ok = run_close(rt, ok);
    free(ring); /* after shutdown: no actor reads it any more */
    return ok;
}

/* ------------------------------------------------------------ chameneos */

enum color { BLUE, RED, YELLOW, FADED };

static uint32_t complement(uint32_t a, uint32_t b)
{
    return a == b ? a : 3u - a - b; /* the colour that is neither */
}

typedef struct {
    uint64_t left; /* meetings still to arrange */
    bt_ref_t waiting;
    uint32_t waiting_color;
    uint32_t creatures;
    uint32_t faded;
    uint64_t total; /* meetings reported by faded creatures */
} mall_state;

static int mall_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    *(mall_state *)state = *(const mall_state *)arg;
    return BT_OK;
}

static int mall_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    mall_state *st = state;
    const cham_msg *m = (const cham_msg *)msg;
    bt_runtime_t *rt = bt_ctx_runtime(ctx);
    if (msg->id == MSG_FADED) {
        st->total += m->count;
        if (++st->faded == st->creatures) {
            g_check = st->total;
            bench_latch_count_down(&g_done);
            bt_stop_self(ctx);
        }
        return BT_OK;
    }
    /* MSG_MEET */
    if (st->left == 0)
        return post_id(rt, m->who, MSG_EXIT);
    if (st->waiting == BT_REF_NONE) {
        st->waiting = m->who;
        st->waiting_color = m->color;
        return BT_OK;
    }
    st->left--;
    bt_ref_t first = st->waiting;
    st->waiting = BT_REF_NONE;
    return post_cham(rt, first, MSG_MEET, m->who, m->color, 0);
}

typedef struct {
    bt_ref_t mall;
    uint32_t color;
    uint64_t meetings;
} creature_state;

static int creature_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    *(creature_state *)state = *(const creature_state *)arg;
    return BT_OK;
}

static int creature_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    creature_state *st = state;
    const cham_msg *m = (const cham_msg *)msg;
    bt_runtime_t *rt = bt_ctx_runtime(ctx);
    bt_ref_t self = bt_self(ctx);
    switch (msg->id) {
    case MSG_MEET: { /* the mall paired us with m->who */
        st->color = complement(st->color, m->color);
        st->meetings++;
        int rc = post_cham(rt, m->who, MSG_CHANGE, self, st->color, 0);
        return rc != BT_OK ? rc : post_cham(rt, st->mall, MSG_MEET, self, st->color, 0);
    }
    case MSG_CHANGE:
        st->color = m->color;
        st->meetings++;
        return post_cham(rt, st->mall, MSG_MEET, self, st->color, 0);
    case MSG_EXIT:
        st->color = FADED;
        bt_stop_self(ctx);
        return post_cham(rt, st->mall, MSG_FADED, self, FADED, st->meetings);
    default: /* MSG_START */
        return post_cham(rt, st->mall, MSG_MEET, self, st->color, 0);
    }
}

static const bt_actor_type_t mall_type = {
    .name = "mall",
    .state_size = sizeof(mall_state),
    .init = mall_init,
    .dispatch = mall_dispatch,
};
static const bt_actor_type_t creature_type = {
    .name = "creature",
    .state_size = sizeof(creature_state),
    .init = creature_init,
    .dispatch = creature_dispatch,
};

/* args: creatures, meetings. Value: ns per meeting. */
static int run_chameneos(const uint64_t *args, double *value)
{
    uint64_t c = args[0], meetings = args[1];
    if (c > UINT32_MAX)
        return -1;
    bt_runtime_t *rt = run_open(1);
    if (rt == NULL)
        return -1;
    mall_state ms = {.left = meetings, .creatures = (uint32_t)c};
    bt_ref_t mall;
    bt_ref_t *cr = calloc(c, sizeof *cr);
    if (cr == NULL || spawn(rt, &mall_type, &ms, &mall) != BT_OK) {
        free(cr);
        return run_close(rt, -1);
    }
    for (uint64_t i = 0; i < c; i++) {
        creature_state cs = {.mall = mall, .color = (uint32_t)(i % 3)};
        if (spawn(rt, &creature_type, &cs, &cr[i]) != BT_OK) {
            free(cr);
            return run_close(rt, -1);
        }
    }
    int ok = -1;
    uint64_t t0 = bench_now_ns();
    bool sent = true;
    for (uint64_t i = 0; i < c && sent; i++)
        sent = post_id(rt, cr[i], MSG_START) == BT_OK;
    if (sent && run_wait(rt, "chameneos") == 0) {
        *value = (double)(bench_now_ns() - t0) / (double)meetings;
        ok = 0;
        if (g_check != 2 * meetings) {
            fprintf(stderr, "baton: chameneos counted %llu meetings, expected %llu\n",
                    (unsigned long long)g_check, (unsigned long long)(2 * meetings));
            ok = -1;
        }
    }
    free(cr);
    return run_close(rt, ok);
}

/* ------------------------------------------------------------------ big */

typedef struct {
    const bt_ref_t *all; /* every worker, written by main before MSG_START */
    uint32_t n;
    uint32_t index;
    uint64_t left; /* pings still to send */
    uint64_t rng;
} big_state;

static int big_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    *(big_state *)state = *(const big_state *)arg;
    return BT_OK;
}

static int big_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    big_state *st = state;
    bt_runtime_t *rt = bt_ctx_runtime(ctx);
    if (msg->id == MSG_PING)
        return post_id(rt, msg->from, MSG_PONG);
    /* MSG_START or MSG_PONG: ping a random other worker, or report done */
    if (st->left == 0) {
        bench_latch_count_down(&g_done);
        return BT_OK;
    }
    st->left--;
    uint64_t x = st->rng; /* xorshift64 */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    st->rng = x;
    uint32_t to = (uint32_t)((x >> 32) % (st->n - 1));
    if (to >= st->index)
        to++; /* skip ourselves */
    return post_id(rt, st->all[to], MSG_PING);
}

static const bt_actor_type_t big_type = {
    .name = "big",
    .state_size = sizeof(big_state),
    .init = big_init,
    .dispatch = big_dispatch,
};

/* args: workers, pings per worker. Value: ns per message (a ping and its
 * pong are two). */
static int run_big(const uint64_t *args, double *value)
{
    uint64_t w = args[0], n = args[1];
    if (w < 2 || w > UINT32_MAX)
        return -1;
    bt_runtime_t *rt = run_open(w);
    if (rt == NULL)
        return -1;
    bt_ref_t *all = calloc(w, sizeof *all);
    for (uint32_t i = 0; all != NULL && i < w; i++) {
        big_state bs = {.all = all,
                        .n = (uint32_t)w,
                        .index = i,
                        .left = n,
                        .rng = 0x9E3779B97F4A7C15ull * (i + 1)};
        if (spawn(rt, &big_type, &bs, &all[i]) != BT_OK) {
            free(all);
            return run_close(rt, -1);
        }
    }
    if (all == NULL)
        return run_close(rt, -1);
    int ok = -1;
    uint64_t t0 = bench_now_ns();
    bool sent = true;
    for (uint64_t i = 0; i < w && sent; i++)
        sent = post_id(rt, all[i], MSG_START) == BT_OK;
    if (sent && run_wait(rt, "big") == 0) {
        *value = (double)(bench_now_ns() - t0) / (2.0 * (double)(w * n));
        ok = 0;
    }
    ok = run_close(rt, ok);
    free(all);
    return ok;
}

/* ------------------------------------------------------------------ ask */

/* An echo actor answers each request; the main thread, which is not an
 * actor (as an HTTP server thread would not be), asks with a blocking
 * bt_ask_wait() round trip after round trip. */
static int echo_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    bt_msg_t *r = bt_msg_new(sizeof(bt_msg_t), MSG_PONG);
    if (r == NULL)
        return BT_ENOMEM;
    int rc = bt_reply(ctx, msg, r);
    if (rc != BT_OK)
        bt_msg_free(r);
    return rc;
}

static const bt_actor_type_t echo_type = {.name = "echo", .dispatch = echo_dispatch};

static int run_ask(const uint64_t *args, double *value)
{
    uint64_t n = args[0];
    bt_runtime_t *rt = run_open(0);
    if (rt == NULL)
        return -1;
    bt_ref_t echo;
    if (spawn(rt, &echo_type, NULL, &echo) != BT_OK)
        return run_close(rt, -1);
    int ok = 0;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < n && ok == 0; i++) {
        bt_msg_t *q = bt_msg_new(sizeof(bt_msg_t), MSG_PING);
        bt_msg_t *r = NULL;
        if (q == NULL || bt_ask_wait(rt, echo, q, 5000000000ull, &r) != BT_OK) {
            fprintf(stderr, "bench_runtime: ask %llu failed\n", (unsigned long long)i);
            ok = -1;
        }
        bt_msg_free(r);
    }
    if (ok == 0)
        *value = (double)(bench_now_ns() - t0) / (double)n;
    return run_close(rt, ok);
}

/* ---------------------------------------------------------------- table */

static const bench_workload_t workloads[] = {
    {"pingpong", "ns_per_msg", "ROUNDTRIPS", 1, {1000000}, {20000}, run_pingpong},
    {"counting", "ns_per_msg", "MESSAGES", 1, {1000000}, {100000}, run_counting},
    {"fanin", "mmsg_per_s", "PRODUCERS MESSAGES", 2, {4, 10000000}, {4, 200000}, run_fanin},
    {"forkjoin", "ns_per_msg", "ACTORS MESSAGES_EACH", 2, {60, 10000}, {20, 1000}, run_forkjoin},
    {"fjcreate", "ns_per_actor", "ACTORS", 1, {1000000}, {20000}, run_fjcreate},
    {"spawn", "ns_per_actor", "ACTORS", 1, {1000000}, {20000}, run_spawn},
    {"ring", "ns_per_hop", "ACTORS HOPS", 2, {503, 10000000}, {100, 100000}, run_ring},
    {"chameneos", "ns_per_meeting", "ACTORS MEETINGS", 2, {100, 200000}, {20, 5000}, run_chameneos},
    {"big", "ns_per_msg", "ACTORS PINGS_EACH", 2, {120, 20000}, {20, 500}, run_big},
    {"idle_bytes", "bytes_per_actor", "ACTORS", 1, {1000000}, {20000}, run_idle_bytes},
    {"idle_cpu", "cpu_percent", "ACTORS MILLISECONDS", 2, {1000, 2000}, {1000, 300}, run_idle_cpu},
    {"ask", "ns_per_roundtrip", "ROUNDTRIPS", 1, {100000}, {2000}, run_ask},
};

int main(int argc, char **argv)
{
    bench_impl = "baton";
    return bench_main(argc, argv, workloads, sizeof workloads / sizeof workloads[0]);
}
