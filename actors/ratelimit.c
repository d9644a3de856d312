/*
 * ratelimit.c: GCRA buckets per key and the rate limiter actor.
 *
 * DESIGN
 * Accepts BT_RL_ACQUIRE, BT_RL_RETRY and BT_RL_STATS, each answered with
 * bt_reply() when it was asked (a plain send gets no answer, which is
 * allowed for ACQUIRE: the tokens are still taken). Emits nothing else.
 * State owned: the GCRA parameters, an open-addressing table key -> TAT
 * (one 16-byte entry per key: many keys are cheap), the retry policy, its
 * PRNG and its retry budget, and counters. An entry whose TAT is not after
 * now is a full bucket, exactly like a missing one, so the table drops such
 * entries whenever it would grow: idle keys cost nothing for long. Time
 * comes only from bt_now(), so virtual time drives it in tests. No ordering
 * is relied on beyond one message at a time.
 */
#include "ratelimit.h"

#include <string.h>

/* ------------------------------------------------------------------ GCRA */

int bt_gcra_init(bt_gcra_t *g, uint64_t rate, uint64_t period_ns, uint64_t burst)
{
    if (g == NULL || rate == 0 || period_ns == 0 || burst == 0 || period_ns / rate == 0)
        return BT_EINVAL;
    uint64_t interval = period_ns / rate;
    if (burst > UINT64_MAX / 4 / interval) /* keep tat arithmetic far from overflow */
        return BT_EINVAL;
    g->interval_ns = interval;
    g->tolerance_ns = burst * interval;
    return BT_OK;
}

uint64_t bt_gcra_take(const bt_gcra_t *g, uint64_t *tat, uint64_t now, uint64_t cost)
{
    if (cost == 0)
        cost = 1;
    if (cost > g->tolerance_ns / g->interval_ns)
        return UINT64_MAX;
    uint64_t start = *tat > now ? *tat : now;
    uint64_t next = start + cost * g->interval_ns;
    if (next - now > g->tolerance_ns)
        return next - g->tolerance_ns - now;
    *tat = next;
    return 0;
}

uint64_t bt_gcra_tokens(const bt_gcra_t *g, uint64_t tat, uint64_t now)
{
    uint64_t used = tat > now ? tat - now : 0;
    return used >= g->tolerance_ns ? 0 : (g->tolerance_ns - used) / g->interval_ns;
}

uint64_t bt_ratelimit_key(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ----------------------------------------------------------- key table */

typedef struct {
    uint64_t key;
    uint64_t tat; /* 0: empty slot (a live TAT is always > 0) */
} entry_t;

typedef struct {
    entry_t *slots;
    uint32_t cap; /* power of two, or 0 before the first key */
    uint32_t used;
} table_t;

static inline uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static entry_t *probe(const table_t *t, uint64_t key)
{
    uint32_t mask = t->cap - 1;
    for (uint32_t i = (uint32_t)mix(key) & mask;; i = (i + 1) & mask) {
        entry_t *e = &t->slots[i];
        if (e->tat == 0 || e->key == key)
            return e;
    }
}

/* Rebuilds the table keeping only entries with tat > now, sized for
 * want_live more. BT_ENOMEM leaves it as it was. */
static int rebuild(table_t *t, uint64_t now, uint32_t extra)
{
    uint32_t live = 0;
    for (uint32_t i = 0; i < t->cap; i++)
        live += t->slots[i].tat > now;
    uint32_t cap = 64;
    while (cap < 2 * (uint64_t)(live + extra) + 2)
        cap *= 2;
    entry_t *slots = bt_alloc_zeroed((size_t)cap * sizeof(entry_t));
    if (slots == NULL)
        return BT_ENOMEM;
    table_t nt = {.slots = slots, .cap = cap, .used = 0};
    for (uint32_t i = 0; i < t->cap; i++)
        if (t->slots[i].tat > now) {
            *probe(&nt, t->slots[i].key) = t->slots[i];
            nt.used++;
        }
    if (t->slots != NULL)
        bt_free(t->slots, (size_t)t->cap * sizeof(entry_t));
    *t = nt;
    return BT_OK;
}

/* ---------------------------------------------------------------- actor */

typedef struct {
    bt_ratelimit_args_t args;
    bt_gcra_t gcra;
    table_t table;
    bt_prng_t rng;
    bt_retry_budget_t budget;
    bt_rl_stats_msg_t stats; /* counters; hdr unused */
} rl_state_t;

int bt_ratelimit_args_check(const bt_ratelimit_args_t *a, const char **why)
{
    const char *w = NULL;
    bt_gcra_t g;
    if (a == NULL)
        w = "ratelimit: no arguments";
    else if (a->rate == 0 || a->period_ns == 0)
        w = "ratelimit: rate and period must be > 0";
    else if (a->burst == 0)
        w = "ratelimit: burst must be >= 1";
    else if (bt_gcra_init(&g, a->rate, a->period_ns, a->burst) != BT_OK)
        w = "ratelimit: rate too high for the period (interval below 1 ns) or burst too large";
    else if (bt_backoff_args_check(&a->retry, &w) != BT_OK)
        (void)0; /* w says which retry field */
    if (why != NULL)
        *why = w;
    return w == NULL ? BT_OK : BT_EINVAL;
}

static int rl_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    rl_state_t *st = state;
    const bt_ratelimit_args_t *a = arg;
    if (bt_ratelimit_args_check(a, NULL) != BT_OK)
        return BT_EINVAL;
    st->args = *a;
    if (st->args.max_keys == 0)
        st->args.max_keys = 1u << 20;
    (void)bt_gcra_init(&st->gcra, a->rate, a->period_ns, a->burst);
    bt_prng_seed(&st->rng, a->seed);
    (void)bt_retry_budget_init(&st->budget, a->retry.budget_ratio_pct, a->retry.budget_reserve);
    return BT_OK;
}

static void rl_cleanup(bt_ctx_t *ctx, void *state)
{
    rl_state_t *st = state;
    if (st->table.slots != NULL)
        bt_free(st->table.slots, (size_t)st->table.cap * sizeof(entry_t));
    st->table = (table_t){0};
}

/* The decision for one acquire; also counts it. */
static void acquire(rl_state_t *st, uint64_t now, const bt_rl_acquire_msg_t *m,
                    bt_rl_decision_msg_t *d)
{
    if (m->first_attempt)
        bt_retry_budget_deposit(&st->budget);
    uint64_t cost = m->cost == 0 ? 1 : m->cost;
    if (cost > st->args.burst) {
        d->status = BT_EINVAL;
        st->stats.refused++;
        return;
    }
    entry_t *e = NULL;
    if (st->table.cap != 0)
        e = probe(&st->table, m->key);
    if (e == NULL || e->tat == 0) { /* a new key: a full bucket */
        /* Grow, or make room by dropping idle keys. At max_keys this sweeps
         * the table for each new key refused: O(keys), bounded by max_keys. */
        if (st->table.used + 1 > st->table.cap / 2 || st->table.used >= st->args.max_keys) {
            if (rebuild(&st->table, now, 1) != BT_OK) {
                d->status = BT_ENOMEM;
                st->stats.refused++;
                return;
            }
        }
        if (st->table.used >= st->args.max_keys) {
            d->status = BT_EFULL;
            st->stats.refused++;
            return;
        }
        e = probe(&st->table, m->key);
        uint64_t tat = 0;
        (void)bt_gcra_take(&st->gcra, &tat, now, cost); /* cost <= burst: always goes */
        e->key = m->key;
        e->tat = tat;
        st->table.used++;
        d->go = true;
        st->stats.granted++;
        return;
    }
    uint64_t wait = bt_gcra_take(&st->gcra, &e->tat, now, cost);
    d->go = wait == 0;
    d->wait_ns = wait;
    if (d->go)
        st->stats.granted++;
    else
        st->stats.delayed++;
}

static int rl_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    rl_state_t *st = state;
    bt_runtime_t *rt = bt_ctx_runtime(ctx);
    uint64_t now = bt_now(rt);
    switch (msg->id) {
    case BT_RL_ACQUIRE: {
        BT_ACTOR_ASSERT(ctx, msg->size >= sizeof(bt_rl_acquire_msg_t));
        bt_rl_decision_msg_t d = {.status = BT_OK};
        acquire(st, now, (const bt_rl_acquire_msg_t *)msg, &d);
        if (!bt_msg_is_request(msg))
            return BT_OK;
        bt_rl_decision_msg_t *r = BT_MSG_NEW(bt_rl_decision_msg_t, BT_RL_DECISION);
        if (r == NULL)
            return BT_OK; /* the asker times out */
        r->status = d.status;
        r->go = d.go;
        r->wait_ns = d.wait_ns;
        if (bt_reply(ctx, msg, &r->hdr) != BT_OK)
            bt_msg_free(&r->hdr);
        return BT_OK;
    }
    case BT_RL_RETRY: {
        BT_ACTOR_ASSERT(ctx, msg->size >= sizeof(bt_rl_retry_msg_t));
        const bt_rl_retry_msg_t *m = (const bt_rl_retry_msg_t *)msg;
        uint64_t elapsed = now > m->first_at_ns ? now - m->first_at_ns : 0;
        bt_retry_decision_t d = bt_backoff_decide(&st->args.retry, m->attempts ? m->attempts : 1,
                                                  elapsed, &m->failure, &st->rng, &st->budget);
        if (d.retry)
            st->stats.retries++;
        else
            st->stats.give_ups[d.reason]++;
        if (!bt_msg_is_request(msg))
            return BT_OK;
        bt_rl_retry_reply_msg_t *r = BT_MSG_NEW(bt_rl_retry_reply_msg_t, BT_RL_RETRY_REPLY);
        if (r == NULL)
            return BT_OK;
        r->decision = d;
        if (bt_reply(ctx, msg, &r->hdr) != BT_OK)
            bt_msg_free(&r->hdr);
        return BT_OK;
    }
    case BT_RL_STATS: {
        if (!bt_msg_is_request(msg))
            return BT_OK;
        bt_rl_stats_msg_t *r = BT_MSG_NEW(bt_rl_stats_msg_t, BT_RL_STATS_REPLY);
        if (r == NULL)
            return BT_OK;
        bt_msg_t hdr = r->hdr;
        *r = st->stats;
        r->hdr = hdr;
        uint64_t live = 0;
        for (uint32_t i = 0; i < st->table.cap; i++)
            live += st->table.slots[i].tat > now;
        r->keys = live;
        r->calls = st->budget.calls;
        if (bt_reply(ctx, msg, &r->hdr) != BT_OK)
            bt_msg_free(&r->hdr);
        return BT_OK;
    }
    default:
        return BT_OK; /* unknown messages are ignored */
    }
}

static const bt_actor_type_t rl_type = {
    .name = "ratelimit",
    .state_size = sizeof(rl_state_t),
    .init = rl_init,
    .dispatch = rl_dispatch,
    .cleanup = rl_cleanup,
};

const bt_actor_type_t *bt_ratelimit_type(void)
{
    return &rl_type;
}

int bt_ratelimit_spawn(bt_runtime_t *rt, const bt_ratelimit_args_t *args, bt_ref_t *out)
{
    if (rt == NULL || out == NULL || bt_ratelimit_args_check(args, NULL) != BT_OK)
        return BT_EINVAL;
    return bt_spawn(rt, &rl_type, args, NULL, out);
}
