/*
 * timeouts.c: deadline arithmetic, timeout classes and the registry actor.
 *
 * DESIGN
 * Accepts BT_TO_START (ask), BT_TO_DONE (send or ask), BT_TO_STATS (ask) and
 * its own BT_TO_FIRE_ from the runtime's timers. Emits BT_TO_EXPIRED to the
 * notify actor of a deadline that passed before its DONE. State owned: the
 * merged class table, a slot array of live deadlines (timer handle, notify,
 * tag, deadline, a generation per slot) with a free list, and counters. A
 * deadline's id packs its slot and the slot's generation, so a DONE or a
 * timer for a slot that was reused is recognised and ignored. DONE cancels
 * the timer (O(1) in the runtime); if the timer already fired, its
 * BT_TO_FIRE_ is either queued behind the DONE (then it finds the slot
 * free, or reused with another generation) or was handled first (then the
 * DONE finds nothing): exactly one of "completed" and "expired" happens.
 * Time comes only from bt_now().
 */
#include "timeouts.h"

#include <string.h>

#define MS_NS  1000000ull
#define SEC_NS 1000000000ull

/* --------------------------------------------------------- pure parts */

uint64_t bt_deadline_child(uint64_t now, uint64_t timeout_ns, uint64_t parent)
{
    uint64_t own = timeout_ns > UINT64_MAX - 1 - now ? UINT64_MAX - 1 : now + timeout_ns;
    return own < parent ? own : parent;
}

uint64_t bt_deadline_remaining(uint64_t deadline, uint64_t now)
{
    return deadline > now ? deadline - now : 0;
}

void bt_cycle_begin(bt_cycle_t *c, uint64_t now, uint64_t budget_ns, uint64_t parent)
{
    c->started_at = now;
    c->deadline = bt_deadline_child(now, budget_ns, parent);
    c->done = 0;
    c->deferred = 0;
}

bool bt_cycle_should_defer(const bt_cycle_t *c, uint64_t now)
{
    return now >= c->deadline;
}

/* ---------------------------------------------------------- classes */

static const bt_timeout_class_t default_classes[] = {
    {"quick", 10 * SEC_NS},
    {"default", 30 * SEC_NS},
    {"bulk", 60 * SEC_NS},
    {"import", 300 * SEC_NS},
};
#define NDEFAULTS (sizeof default_classes / sizeof default_classes[0])

static bool name_ok(const char *name)
{
    size_t n = strnlen(name, BT_TIMEOUT_NAME_MAX);
    if (n == 0 || n == BT_TIMEOUT_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static int find_class(const bt_timeout_class_t *t, uint32_t n, const char *name)
{
    for (uint32_t i = 0; i < n; i++)
        if (strncmp(t[i].name, name, BT_TIMEOUT_NAME_MAX) == 0)
            return (int)i;
    return -1;
}

int bt_timeouts_classes(const bt_timeouts_args_t *a, bt_timeout_class_t *out, uint32_t *n,
                        const char **why)
{
    const char *w = NULL;
    uint32_t count = NDEFAULTS;
    if (a == NULL || out == NULL || n == NULL) {
        w = "timeouts: no arguments";
        goto done;
    }
    uint64_t lo = a->min_ns ? a->min_ns : MS_NS, hi = a->max_ns ? a->max_ns : 3600 * SEC_NS;
    if (lo > hi) {
        w = "timeouts: min must be <= max";
        goto done;
    }
    if (a->nclasses > 0 && a->classes == NULL) {
        w = "timeouts: nclasses > 0 but no classes";
        goto done;
    }
    memcpy(out, default_classes, sizeof default_classes);
    for (uint32_t i = 0; i < a->nclasses; i++) {
        const bt_timeout_class_t *c = &a->classes[i];
        if (!name_ok(c->name)) {
            w = "timeouts: a class name must be 1..31 characters of a-z, 0-9, '_' or '-'";
            goto done;
        }
        if (find_class(a->classes, i, c->name) >= 0) {
            w = "timeouts: a class is named twice";
            goto done;
        }
        int at = find_class(out, count, c->name);
        if (at < 0) {
            if (count == BT_TIMEOUT_CLASSES_MAX) {
                w = "timeouts: too many classes (at most 32, the 4 defaults included)";
                goto done;
            }
            at = (int)count++;
        }
        out[at] = *c;
    }
    for (uint32_t i = 0; i < count; i++)
        if (out[i].timeout_ns < lo || out[i].timeout_ns > hi) {
            w = "timeouts: a class's timeout is outside [min, max]";
            goto done;
        }
done:
    if (why != NULL)
        *why = w;
    if (w == NULL)
        *n = count;
    return w == NULL ? BT_OK : BT_EINVAL;
}

/* ---------------------------------------------------------------- actor */

typedef struct {
    bt_timer_t timer;
    bt_ref_t notify;
    uint64_t tag;
    uint64_t deadline;
    uint32_t gen;
    uint32_t next_free; /* slot index + 1; 0 ends the list */
    bool live;
} slot_t;

typedef struct {
    bt_timeout_class_t classes[BT_TIMEOUT_CLASSES_MAX];
    uint32_t nclasses;
    uint32_t max_live;
    slot_t *slots;
    uint32_t cap, nlive;
    uint32_t free_head; /* slot index + 1; 0: none free */
    bt_to_stats_msg_t stats;
} to_state_t;

typedef struct {
    bt_msg_t hdr;
    uint64_t id;
} fire_msg_t;

static inline uint64_t make_id(uint32_t idx, uint32_t gen)
{
    return ((uint64_t)gen << 32) | (uint64_t)(idx + 1);
}

static slot_t *lookup(to_state_t *st, uint64_t id)
{
    uint32_t idx = (uint32_t)id;
    if (idx == 0 || idx > st->cap)
        return NULL;
    slot_t *s = &st->slots[idx - 1];
    return s->live && s->gen == (uint32_t)(id >> 32) ? s : NULL;
}

static void release(to_state_t *st, slot_t *s)
{
    s->live = false;
    s->gen++;
    s->next_free = st->free_head;
    st->free_head = (uint32_t)(s - st->slots) + 1;
    st->nlive--;
}

/* A free slot, growing the array when none is left; NULL when out of memory. */
static slot_t *take_slot(to_state_t *st)
{
    if (st->free_head == 0) {
        uint32_t ncap = st->cap ? st->cap * 2 : 64;
        slot_t *ns = bt_alloc_zeroed((size_t)ncap * sizeof(slot_t));
        if (ns == NULL)
            return NULL;
        if (st->slots != NULL) {
            memcpy(ns, st->slots, (size_t)st->cap * sizeof(slot_t));
            bt_free(st->slots, (size_t)st->cap * sizeof(slot_t));
        }
        for (uint32_t i = ncap; i > st->cap; i--) { /* lowest index first */
            ns[i - 1].next_free = st->free_head;
            st->free_head = i;
        }
        st->slots = ns;
        st->cap = ncap;
    }
    slot_t *s = &st->slots[st->free_head - 1];
    st->free_head = s->next_free;
    s->next_free = 0;
    s->live = true;
    st->nlive++;
    return s;
}

static int to_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    to_state_t *st = state;
    const bt_timeouts_args_t *a = arg;
    int rc = bt_timeouts_classes(a, st->classes, &st->nclasses, NULL);
    if (rc != BT_OK)
        return rc;
    st->max_live = a->max_live ? a->max_live : 1u << 20;
    return BT_OK;
}

static void to_cleanup(bt_ctx_t *ctx, void *state)
{
    to_state_t *st = state;
    for (uint32_t i = 0; i < st->cap; i++)
        if (st->slots[i].live)
            (void)bt_timer_cancel(bt_ctx_runtime(ctx), st->slots[i].timer);
    if (st->slots != NULL)
        bt_free(st->slots, (size_t)st->cap * sizeof(slot_t));
    st->slots = NULL;
    st->cap = 0;
}

static void start(bt_ctx_t *ctx, to_state_t *st, uint64_t now, const bt_to_start_msg_t *m,
                  bt_to_started_msg_t *r)
{
    char name[BT_TIMEOUT_NAME_MAX];
    memcpy(name, m->cls, sizeof name);
    name[BT_TIMEOUT_NAME_MAX - 1] = '\0';
    int c = find_class(st->classes, st->nclasses, name);
    if (c < 0) {
        r->status = BT_ENOENT;
        return;
    }
    if (st->nlive >= st->max_live) {
        r->status = BT_EFULL;
        return;
    }
    r->timeout_ns = st->classes[c].timeout_ns;
    r->deadline = bt_deadline_child(now, r->timeout_ns, m->parent);
    slot_t *s = take_slot(st);
    fire_msg_t *f = s != NULL ? BT_MSG_NEW(fire_msg_t, BT_TO_FIRE_) : NULL;
    if (f == NULL) {
        if (s != NULL)
            release(st, s);
        r->status = BT_ENOMEM;
        return;
    }
    uint32_t idx = (uint32_t)(s - st->slots);
    f->id = make_id(idx, s->gen);
    /* A parent that has already passed gives a deadline in the past: the
     * timer then fires at the next tick, never with an underflowed delay. */
    int rc = bt_timer_start(bt_ctx_runtime(ctx), bt_self(ctx), &f->hdr,
                            bt_deadline_remaining(r->deadline, now), 0, &s->timer);
    if (rc != BT_OK) {
        bt_msg_free(&f->hdr);
        release(st, s);
        r->status = rc;
        return;
    }
    s->notify = m->notify != BT_REF_NONE ? m->notify : m->hdr.from;
    s->tag = m->tag;
    s->deadline = r->deadline;
    r->id = f->id;
    r->status = BT_OK;
}

static int to_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    to_state_t *st = state;
    bt_runtime_t *rt = bt_ctx_runtime(ctx);
    uint64_t now = bt_now(rt);
    switch (msg->id) {
    case BT_TO_START: {
        BT_ACTOR_ASSERT(ctx, msg->size >= sizeof(bt_to_start_msg_t));
        bt_to_started_msg_t res = {.status = BT_OK};
        start(ctx, st, now, (const bt_to_start_msg_t *)msg, &res);
        if (res.status == BT_OK)
            st->stats.started++;
        else
            st->stats.refused++;
        if (!bt_msg_is_request(msg))
            return BT_OK; /* a plain send gets no id: the deadline can only expire */
        bt_to_started_msg_t *r = BT_MSG_NEW(bt_to_started_msg_t, BT_TO_STARTED);
        if (r == NULL)
            return BT_OK; /* the asker times out; the deadline still expires */
        bt_msg_t hdr = r->hdr;
        *r = res;
        r->hdr = hdr;
        if (bt_reply(ctx, msg, &r->hdr) != BT_OK)
            bt_msg_free(&r->hdr);
        return BT_OK;
    }
    case BT_TO_DONE: {
        BT_ACTOR_ASSERT(ctx, msg->size >= sizeof(bt_to_done_msg_t));
        slot_t *s = lookup(st, ((const bt_to_done_msg_t *)msg)->id);
        int status = BT_ENOENT;
        uint64_t remaining = 0;
        if (s != NULL) {
            (void)bt_timer_cancel(rt, s->timer); /* BT_ENOENT: its FIRE is queued; stale then */
            remaining = bt_deadline_remaining(s->deadline, now);
            release(st, s);
            st->stats.completed++;
            status = BT_OK;
        }
        if (bt_msg_is_request(msg)) {
            bt_to_done_reply_msg_t *r = BT_MSG_NEW(bt_to_done_reply_msg_t, BT_TO_DONE_REPLY);
            if (r == NULL)
                return BT_OK;
            r->status = status;
            r->remaining = remaining;
            if (bt_reply(ctx, msg, &r->hdr) != BT_OK)
                bt_msg_free(&r->hdr);
        }
        return BT_OK;
    }
    case BT_TO_FIRE_: {
        uint64_t id = ((const fire_msg_t *)msg)->id;
        slot_t *s = lookup(st, id);
        if (s == NULL)
            return BT_OK; /* completed meanwhile */
        bt_to_expired_msg_t *e = BT_MSG_NEW(bt_to_expired_msg_t, BT_TO_EXPIRED);
        bt_ref_t notify = s->notify;
        if (e != NULL) {
            e->id = id;
            e->tag = s->tag;
            e->deadline = s->deadline;
        }
        release(st, s);
        st->stats.expired++;
        if (e != NULL && bt_send(rt, notify, &e->hdr) != BT_OK)
            bt_msg_free(&e->hdr); /* the notify actor is gone: nobody to tell */
        return BT_OK;
    }
    case BT_TO_STATS: {
        if (!bt_msg_is_request(msg))
            return BT_OK;
        bt_to_stats_msg_t *r = BT_MSG_NEW(bt_to_stats_msg_t, BT_TO_STATS_REPLY);
        if (r == NULL)
            return BT_OK;
        bt_msg_t hdr = r->hdr;
        *r = st->stats;
        r->hdr = hdr;
        r->live = st->nlive;
        if (bt_reply(ctx, msg, &r->hdr) != BT_OK)
            bt_msg_free(&r->hdr);
        return BT_OK;
    }
    default:
        return BT_OK;
    }
}

static const bt_actor_type_t to_type = {
    .name = "timeouts",
    .state_size = sizeof(to_state_t),
    .init = to_init,
    .dispatch = to_dispatch,
    .cleanup = to_cleanup,
};

const bt_actor_type_t *bt_timeouts_type(void)
{
    return &to_type;
}

int bt_timeouts_spawn(bt_runtime_t *rt, const bt_timeouts_args_t *args, bt_ref_t *out)
{
    bt_timeout_class_t tmp[BT_TIMEOUT_CLASSES_MAX];
    uint32_t n;
    if (rt == NULL || out == NULL || bt_timeouts_classes(args, tmp, &n, NULL) != BT_OK)
        return BT_EINVAL;
    return bt_spawn(rt, &to_type, args, NULL, out);
}
