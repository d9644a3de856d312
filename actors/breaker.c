/*
 * breaker.c: the circuit breaker's state machine (a plain struct and
 * functions) and the actor that owns one.
 *
 * DESIGN
 * Accepts BT_BREAKER_ACQUIRE (ask: answered with a permit), REPORT (send,
 * or ask for an ack), FORCE (ask: answered with a permit carrying the new
 * state), STATS (ask) and its own WAIT_TIMER_. Emits BT_BREAKER_EVENT to
 * the observer on every transition. State owned: one bt_breaker_core_t
 * (state, generation, the window's ring buffer, half_open probe counts,
 * counters) and the handle of the open-wait timer, cancelled when the
 * breaker leaves open by command and at cleanup. open becomes half_open
 * when the timer fires or, whichever comes first, at the first ACQUIRE
 * after the wait: the timer makes the event timely, the lazy check makes
 * the breaker exact even if the timer is late. The timer message carries
 * the generation it was started for; a stale one is ignored. Time comes
 * only from bt_now().
 */
#include "breaker.h"

#include <string.h>

#define WINDOW_MAX 65536u

const char *bt_breaker_state_name(bt_breaker_state_t s)
{
    static const char *const names[BT_BREAKER_STATE_COUNT] = {
#define BT_BREAKER_STATE_NAME_(name, text) [BT_BREAKER_##name] = text,
        BT_BREAKER_STATE_MAP(BT_BREAKER_STATE_NAME_)
#undef BT_BREAKER_STATE_NAME_
    };
    return (unsigned)s < BT_BREAKER_STATE_COUNT ? names[s] : "unknown";
}

const char *bt_breaker_reason_text(bt_breaker_reason_t r)
{
    static const char *const text[BT_BREAKER_REASON_COUNT] = {
#define BT_BREAKER_REASON_TEXT_(name, t) [BT_BREAKER_REASON_##name] = t,
        BT_BREAKER_REASON_MAP(BT_BREAKER_REASON_TEXT_)
#undef BT_BREAKER_REASON_TEXT_
    };
    return (unsigned)r < BT_BREAKER_REASON_COUNT ? text[r] : "unknown";
}

int bt_breaker_args_check(const bt_breaker_args_t *a, const char **why)
{
    const char *w = NULL;
    if (a == NULL)
        w = "breaker: no arguments";
    else if (a->consecutive_failures == 0 && a->window_size == 0)
        w = "breaker: set consecutive_failures or window_size (or both)";
    else if (a->window_size > WINDOW_MAX)
        w = "breaker: window_size must be <= 65536";
    else if (a->window_size != 0 && (a->min_calls == 0 || a->min_calls > a->window_size))
        w = "breaker: min_calls must be in 1..window_size";
    else if (a->window_size != 0 && (a->failure_rate_pct == 0 || a->failure_rate_pct > 100))
        w = "breaker: failure_rate_pct must be in 1..100";
    else if (a->open_wait_ns == 0)
        w = "breaker: open_wait must be > 0";
    else if (a->half_open_probes == 0)
        w = "breaker: half_open_probes must be >= 1";
    else if (a->half_open_successes == 0 || a->half_open_successes > a->half_open_probes)
        w = "breaker: half_open_successes must be in 1..half_open_probes";
    if (why != NULL)
        *why = w;
    return w == NULL ? BT_OK : BT_EINVAL;
}

/* ---------------------------------------------------------- pure core */

int bt_breaker_core_init(bt_breaker_core_t *c, const bt_breaker_args_t *args)
{
    if (c == NULL || bt_breaker_args_check(args, NULL) != BT_OK)
        return BT_EINVAL;
    memset(c, 0, sizeof *c);
    c->args = *args;
    if (args->window_size != 0) {
        c->ring = bt_alloc_zeroed(args->window_size);
        if (c->ring == NULL)
            return BT_ENOMEM;
    }
    c->state = BT_BREAKER_CLOSED;
    c->generation = 1;
    return BT_OK;
}

void bt_breaker_core_deinit(bt_breaker_core_t *c)
{
    if (c == NULL)
        return;
    if (c->ring != NULL)
        bt_free(c->ring, c->args.window_size);
    c->ring = NULL;
}

static void window_clear(bt_breaker_core_t *c)
{
    c->ring_pos = c->ring_len = c->ring_failures = 0;
    c->consecutive = 0;
}

static void window_add(bt_breaker_core_t *c, bool failed)
{
    if (c->ring == NULL)
        return;
    uint32_t n = c->args.window_size;
    if (c->ring_len == n)
        c->ring_failures -= c->ring[c->ring_pos]; /* the oldest drops out */
    else
        c->ring_len++;
    c->ring[c->ring_pos] = failed;
    c->ring_failures += failed;
    c->ring_pos = c->ring_pos + 1 == n ? 0 : c->ring_pos + 1;
}

static void transition(bt_breaker_core_t *c, uint64_t now, bt_breaker_state_t to,
                       bt_breaker_reason_t why, bt_breaker_event_t *ev)
{
    bt_breaker_event_t e = {.at_ns = now, .from = c->state, .to = to, .reason = why};
    c->state = to;
    c->generation++;
    e.generation = c->generation;
    c->counters.transitions++;
    c->counters.entered[to]++;
    c->counters.by_reason[why]++;
    window_clear(c);
    c->probes_out = c->probe_successes = 0;
    if (to == BT_BREAKER_OPEN)
        c->opened_at = now;
    if (ev != NULL)
        *ev = e;
}

bool bt_breaker_core_poll(bt_breaker_core_t *c, uint64_t now, bt_breaker_event_t *ev)
{
    if (c->state != BT_BREAKER_OPEN || now - c->opened_at < c->args.open_wait_ns)
        return false;
    transition(c, now, BT_BREAKER_HALF_OPEN, BT_BREAKER_REASON_WAIT_ELAPSED, ev);
    return true;
}

bool bt_breaker_core_acquire(bt_breaker_core_t *c, uint64_t now, uint64_t *generation,
                             uint64_t *retry_after_ns, bt_breaker_event_t *ev, bool *changed)
{
    *changed = bt_breaker_core_poll(c, now, ev);
    *generation = c->generation;
    *retry_after_ns = 0;
    switch (c->state) {
    case BT_BREAKER_CLOSED:
    case BT_BREAKER_DISABLED:
        c->counters.allowed++;
        return true;
    case BT_BREAKER_HALF_OPEN:
        if (c->probes_out < c->args.half_open_probes) {
            c->probes_out++;
            c->counters.allowed++;
            return true;
        }
        *retry_after_ns = c->args.open_wait_ns;
        break;
    case BT_BREAKER_OPEN:
        *retry_after_ns = c->opened_at + c->args.open_wait_ns - now;
        break;
    default: /* forced_open: until a command, which nobody can predict */
        *retry_after_ns = c->args.open_wait_ns;
        break;
    }
    c->counters.rejected++;
    return false;
}

bool bt_breaker_core_report(bt_breaker_core_t *c, uint64_t now, uint64_t generation,
                            bt_breaker_outcome_t outcome, uint64_t latency_ns,
                            bt_breaker_event_t *ev)
{
    if (generation != c->generation) {
        c->counters.stale++;
        return false;
    }
    if (outcome == BT_BREAKER_CANCELLED) {
        c->counters.cancelled++;
        if (c->state == BT_BREAKER_HALF_OPEN && c->probes_out > 0)
            c->probes_out--; /* its probe slot goes back */
        return false;
    }
    bool slow = c->args.slow_call_ns != 0 && latency_ns >= c->args.slow_call_ns;
    bool failed = outcome != BT_BREAKER_SUCCESS || slow;
    if (outcome == BT_BREAKER_SUCCESS && slow)
        c->counters.slow++;
    if (failed)
        c->counters.failures++;
    else
        c->counters.successes++;
    switch (c->state) {
    case BT_BREAKER_CLOSED:
        c->consecutive = failed ? c->consecutive + 1 : 0;
        window_add(c, failed);
        if (c->args.consecutive_failures != 0 && c->consecutive >= c->args.consecutive_failures) {
            transition(c, now, BT_BREAKER_OPEN, BT_BREAKER_REASON_CONSECUTIVE_FAILURES, ev);
            return true;
        }
        if (c->ring != NULL && c->ring_len >= c->args.min_calls &&
            (uint64_t)c->ring_failures * 100 >= (uint64_t)c->args.failure_rate_pct * c->ring_len) {
            transition(c, now, BT_BREAKER_OPEN, BT_BREAKER_REASON_FAILURE_RATE, ev);
            return true;
        }
        return false;
    case BT_BREAKER_HALF_OPEN:
        if (failed) {
            transition(c, now, BT_BREAKER_OPEN, BT_BREAKER_REASON_PROBE_FAILED, ev);
            return true;
        }
        if (++c->probe_successes >= c->args.half_open_successes) {
            transition(c, now, BT_BREAKER_CLOSED, BT_BREAKER_REASON_PROBES_SUCCEEDED, ev);
            return true;
        }
        return false;
    default: /* disabled: counted, never trips */
        return false;
    }
}

int bt_breaker_core_force(bt_breaker_core_t *c, uint64_t now, bt_breaker_state_t to,
                          bt_breaker_event_t *ev, bool *changed)
{
    *changed = false;
    if (to != BT_BREAKER_CLOSED && to != BT_BREAKER_FORCED_OPEN && to != BT_BREAKER_DISABLED)
        return BT_EINVAL;
    if (c->state == to)
        return BT_OK;
    transition(c, now, to, BT_BREAKER_REASON_COMMAND, ev);
    *changed = true;
    return BT_OK;
}

/* ---------------------------------------------------------------- actor */

typedef struct {
    bt_msg_t hdr;
    uint64_t generation;
} wait_timer_msg_t;

typedef struct {
    bt_breaker_core_t core;
    bt_timer_t wait_timer; /* 0: none pending */
    uint64_t events_sent;
} breaker_state_t;

/* Reports ev to the observer and keeps the open-wait timer in step. */
static void after_transition(bt_ctx_t *ctx, breaker_state_t *st, const bt_breaker_event_t *ev)
{
    bt_runtime_t *rt = bt_ctx_runtime(ctx);
    if (ev->from == BT_BREAKER_OPEN && st->wait_timer != 0) {
        (void)bt_timer_cancel(rt, st->wait_timer); /* BT_ENOENT if it fired: fine */
        st->wait_timer = 0;
    }
    if (ev->to == BT_BREAKER_OPEN) {
        wait_timer_msg_t *t = BT_MSG_NEW(wait_timer_msg_t, BT_BREAKER_WAIT_TIMER_);
        if (t != NULL) {
            t->generation = st->core.generation;
            if (bt_timer_start(rt, bt_self(ctx), &t->hdr, st->core.args.open_wait_ns, 0,
                               &st->wait_timer) != BT_OK) {
                bt_msg_free(&t->hdr); /* the lazy check in acquire still opens it */
                st->wait_timer = 0;
            }
        }
    }
    if (st->core.args.observer != BT_REF_NONE) {
        bt_breaker_event_msg_t *m = BT_MSG_NEW(bt_breaker_event_msg_t, BT_BREAKER_EVENT);
        if (m == NULL)
            return;
        m->breaker = bt_self(ctx);
        m->event = *ev;
        if (bt_send(rt, st->core.args.observer, &m->hdr) == BT_OK)
            st->events_sent++;
        else
            bt_msg_free(&m->hdr);
    }
}

static void reply_permit(bt_ctx_t *ctx, const bt_msg_t *req, int status, bool allowed,
                         uint64_t generation, uint64_t retry_after, bt_breaker_state_t state)
{
    if (!bt_msg_is_request(req))
        return;
    bt_breaker_permit_msg_t *r = BT_MSG_NEW(bt_breaker_permit_msg_t, BT_BREAKER_PERMIT);
    if (r == NULL)
        return; /* the asker times out */
    r->status = status;
    r->allowed = allowed;
    r->generation = generation;
    r->retry_after_ns = retry_after;
    r->state = state;
    if (bt_reply(ctx, req, &r->hdr) != BT_OK)
        bt_msg_free(&r->hdr);
}

static int breaker_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    breaker_state_t *st = state;
    return bt_breaker_core_init(&st->core, arg);
}

static void breaker_cleanup(bt_ctx_t *ctx, void *state)
{
    breaker_state_t *st = state;
    if (st->wait_timer != 0)
        (void)bt_timer_cancel(bt_ctx_runtime(ctx), st->wait_timer);
    st->wait_timer = 0;
    bt_breaker_core_deinit(&st->core);
}

static int breaker_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    breaker_state_t *st = state;
    bt_breaker_core_t *c = &st->core;
    uint64_t now = bt_now(bt_ctx_runtime(ctx));
    bt_breaker_event_t ev;
    switch (msg->id) {
    case BT_BREAKER_ACQUIRE: {
        uint64_t gen, retry;
        bool changed;
        bool ok = bt_breaker_core_acquire(c, now, &gen, &retry, &ev, &changed);
        if (changed)
            after_transition(ctx, st, &ev);
        reply_permit(ctx, msg, BT_OK, ok, gen, retry, c->state);
        return BT_OK;
    }
    case BT_BREAKER_REPORT: {
        BT_ACTOR_ASSERT(ctx, msg->size >= sizeof(bt_breaker_report_msg_t));
        const bt_breaker_report_msg_t *m = (const bt_breaker_report_msg_t *)msg;
        if ((unsigned)m->outcome < BT_BREAKER_OUTCOME_COUNT &&
            bt_breaker_core_report(c, now, m->generation, m->outcome, m->latency_ns, &ev))
            after_transition(ctx, st, &ev);
        if (bt_msg_is_request(msg)) {
            bt_msg_t *ack = bt_msg_new(sizeof(bt_msg_t), BT_BREAKER_REPORT_ACK);
            if (ack != NULL && bt_reply(ctx, msg, ack) != BT_OK)
                bt_msg_free(ack);
        }
        return BT_OK;
    }
    case BT_BREAKER_FORCE: {
        BT_ACTOR_ASSERT(ctx, msg->size >= sizeof(bt_breaker_force_msg_t));
        bool changed;
        int rc =
            bt_breaker_core_force(c, now, ((const bt_breaker_force_msg_t *)msg)->to, &ev, &changed);
        if (changed)
            after_transition(ctx, st, &ev);
        reply_permit(ctx, msg, rc, false, c->generation, 0, c->state);
        return BT_OK;
    }
    case BT_BREAKER_WAIT_TIMER_: {
        const wait_timer_msg_t *m = (const wait_timer_msg_t *)msg;
        if (m->generation != c->generation)
            return BT_OK; /* from an earlier open period */
        st->wait_timer = 0;
        if (bt_breaker_core_poll(c, now, &ev))
            after_transition(ctx, st, &ev);
        return BT_OK;
    }
    case BT_BREAKER_STATS: {
        if (!bt_msg_is_request(msg))
            return BT_OK;
        bt_breaker_stats_msg_t *r = BT_MSG_NEW(bt_breaker_stats_msg_t, BT_BREAKER_STATS_REPLY);
        if (r == NULL)
            return BT_OK;
        r->state = c->state;
        r->generation = c->generation;
        r->window_calls = c->ring_len;
        r->window_failures = c->ring_failures;
        r->counters = c->counters;
        r->events_sent = st->events_sent;
        if (bt_reply(ctx, msg, &r->hdr) != BT_OK)
            bt_msg_free(&r->hdr);
        return BT_OK;
    }
    default:
        return BT_OK; /* unknown messages are ignored */
    }
}

static const bt_actor_type_t breaker_type = {
    .name = "breaker",
    .state_size = sizeof(breaker_state_t),
    .init = breaker_init,
    .dispatch = breaker_dispatch,
    .cleanup = breaker_cleanup,
};

const bt_actor_type_t *bt_breaker_type(void)
{
    return &breaker_type;
}

int bt_breaker_spawn(bt_runtime_t *rt, const bt_breaker_args_t *args, bt_ref_t *out)
{
    if (rt == NULL || out == NULL || bt_breaker_args_check(args, NULL) != BT_OK)
        return BT_EINVAL;
    return bt_spawn(rt, &breaker_type, args, NULL, out);
}
