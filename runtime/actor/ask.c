/*
 * ask.c: request/reply with timeouts, inside actors and from outside.
 *
 * DESIGN
 * Inside an actor, an ask is a send plus a one-shot timer; both the reply
 * and the timeout come back as ordinary messages. The asker's pending table
 * (owned by the asker's thread, like all its state) maps each correlation
 * id to its timer; whichever of reply and timeout arrives first settles the
 * ask and removes it, so the other is recognised as late and dropped
 * (replies are counted in late_replies). Because nothing blocks, an actor
 * that asks itself or asks in a cycle cannot deadlock.
 *
 * Correlation ids are per asker (a counter in the asker's extension), with
 * bit 63 set on replies (BT_CORR_REPLY), so a reply can never be mistaken
 * for a new request, nor a stale reply for a fresh one after a restart
 * (the table is cleared and the counter keeps counting).
 *
 * From outside (bt_ask_wait), the thread spawns a one-shot waiter actor
 * whose reference is the request's sender. The waiter copies the reply into
 * a shared box and wakes the thread, which spins briefly, then sleeps on a
 * futex until its deadline. The box is reference-counted between the thread
 * and the waiter, and a state word decides the race between the reply and
 * the deadline exactly once.
 */
#define _GNU_SOURCE
#include "core/internal.h"

#include <ck_pr.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------ pending table
 * Open addressing with linear probing; keys are correlation ids (never 0),
 * values the timeout timer. Deletion uses backward shift, so no
 * tombstones. */

struct bt_asks {
    uint32_t cap; /* power of two */
    uint32_t count;
    uint64_t *keys;
    bt_timer_t *timers;
};

static inline uint32_t probe_start(const bt_asks_t *t, uint64_t key)
{
    return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & (t->cap - 1);
}

static void asks_free(bt_asks_t *t)
{
    bt_free(t->keys, sizeof(uint64_t) * t->cap);
    bt_free(t->timers, sizeof(bt_timer_t) * t->cap);
    bt_free(t, sizeof(*t));
}

static bt_asks_t *asks_new(uint32_t cap)
{
    bt_asks_t *t = bt_alloc_zeroed(sizeof(*t));
    if (t == NULL)
        return NULL;
    t->cap = cap;
    t->keys = bt_alloc_zeroed(sizeof(uint64_t) * cap);
    t->timers = bt_alloc_zeroed(sizeof(bt_timer_t) * cap);
    if (t->keys == NULL || t->timers == NULL) {
        asks_free(t);
        return NULL;
    }
    return t;
}

static void asks_put_raw(bt_asks_t *t, uint64_t key, bt_timer_t timer)
{
    uint32_t i = probe_start(t, key);
    while (t->keys[i] != 0)
        i = (i + 1) & (t->cap - 1);
    t->keys[i] = key;
    t->timers[i] = timer;
    t->count++;
}

static int asks_put(bt_actor_ext_t *ext, uint64_t key, bt_timer_t timer)
{
    bt_asks_t *t = ext->asks;
    if (t == NULL || (t->count + 1) * 4 > t->cap * 3) {
        bt_asks_t *n = asks_new(t == NULL ? 16 : t->cap * 2);
        if (n == NULL)
            return BT_ENOMEM;
        if (t != NULL) {
            for (uint32_t i = 0; i < t->cap; i++)
                if (t->keys[i] != 0)
                    asks_put_raw(n, t->keys[i], t->timers[i]);
            asks_free(t);
        }
        ext->asks = t = n;
    }
    asks_put_raw(t, key, timer);
    return BT_OK;
}

/* Removes key; returns whether it was present, and its timer. */
static bool asks_take(bt_asks_t *t, uint64_t key, bt_timer_t *timer)
{
    if (t == NULL || t->count == 0)
        return false;
    uint32_t mask = t->cap - 1;
    uint32_t i = probe_start(t, key);
    while (t->keys[i] != key) {
        if (t->keys[i] == 0)
            return false;
        i = (i + 1) & mask;
    }
    *timer = t->timers[i];
    /* Backward-shift deletion: move later entries of the cluster up. */
    uint32_t hole = i;
    for (uint32_t j = (i + 1) & mask; t->keys[j] != 0; j = (j + 1) & mask) {
        uint32_t home = probe_start(t, t->keys[j]);
        /* Entry j may fill the hole if its home is not in (hole, j]. */
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            t->keys[hole] = t->keys[j];
            t->timers[hole] = t->timers[j];
            hole = j;
        }
    }
    t->keys[hole] = 0;
    t->count--;
    return true;
}

bool bt__ask_settle_reply(bt_actor_t *a, uint64_t corr)
{
    bt_timer_t timer;
    if (a->ext == NULL || !asks_take(a->ext->asks, corr & ~BT_CORR_REPLY, &timer))
        return false;
    if (timer != 0)
        (void)bt_timer_cancel(a->rt, timer); /* it may be firing right now: fine */
    return true;
}

bool bt__ask_settle_timeout(bt_actor_t *a, uint64_t corr)
{
    bt_timer_t timer;
    return a->ext != NULL && asks_take(a->ext->asks, corr, &timer);
}

void bt__asks_clear(bt_actor_t *a)
{
    if (a->ext == NULL || a->ext->asks == NULL)
        return;
    bt_asks_t *t = a->ext->asks;
    for (uint32_t i = 0; i < t->cap; i++)
        if (t->keys[i] != 0 && t->timers[i] != 0)
            (void)bt_timer_cancel(a->rt, t->timers[i]);
    asks_free(t);
    a->ext->asks = NULL;
}

/* ----------------------------------------------------------- in actors */

int bt_ask(bt_ctx_t *ctx, bt_ref_t to, bt_msg_t *request, uint64_t timeout_ns, uint64_t *corr)
{
    if (ctx == NULL || request == NULL || request->id >= BT_MSG_SYSTEM_BASE)
        return BT_EINVAL;
    bt_actor_t *a = ctx->actor;
    bt_runtime_t *rt = ctx->rt;
    bt_actor_ext_t *ext = bt__actor_ext(a);
    if (ext == NULL)
        return BT_ENOMEM;
    uint64_t id = ++ext->next_corr & ~BT_CORR_REPLY;
    if (id == 0)
        id = ++ext->next_corr;
    bt_msg_t *tmo = bt_msg_new(sizeof(bt_msg_t), BT_SYS_ASK_TIMEOUT);
    if (tmo == NULL)
        return BT_ENOMEM;
    tmo->corr = id;
    bt_timer_t timer;
    int rc = bt__timer_add(rt, bt_self(ctx), tmo, timeout_ns, 0, true, &timer);
    if (rc != BT_OK) {
        bt_msg_free(tmo);
        return rc;
    }
    if ((rc = asks_put(ext, id, timer)) != BT_OK) {
        (void)bt_timer_cancel(rt, timer);
        return rc;
    }
    request->corr = id;
    rc = bt_send(rt, to, request);
    if (rc != BT_OK) {
        bt_timer_t t;
        asks_take(ext->asks, id, &t);
        (void)bt_timer_cancel(rt, t);
        request->corr = 0;
        return rc;
    }
    if (corr != NULL)
        *corr = id;
    return BT_OK;
}

bool bt_msg_is_request(const bt_msg_t *msg)
{
    return msg->corr != 0 && !(msg->corr & BT_CORR_REPLY) && msg->from != BT_REF_NONE;
}

int bt_reply(bt_ctx_t *ctx, const bt_msg_t *request, bt_msg_t *reply)
{
    if (ctx == NULL || request == NULL || reply == NULL || !bt_msg_is_request(request) ||
        reply->id >= BT_MSG_SYSTEM_BASE)
        return BT_EINVAL;
    reply->corr = request->corr | BT_CORR_REPLY;
    return bt_send(ctx->rt, request->from, reply);
}

/* ----------------------------------------------------- from outside */

enum { BOX_WAITING, BOX_REPLIED, BOX_ABANDONED };

typedef struct {
    uint32_t state; /* futex word: BOX_* */
    uint32_t refs;  /* the waiting thread and the waiter actor */
    bt_msg_t *reply;
} reply_box_t;

static void box_release(reply_box_t *box)
{
    if (__atomic_sub_fetch(&box->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        bt_msg_free(box->reply);
        bt_free(box, sizeof(*box));
    }
}

/* The waiter's one ask, under this correlation id, has no timer of its
 * own: the waiting thread keeps the deadline. */
#define WAITER_CORR 1

static int waiter_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    *(reply_box_t **)state = (reply_box_t *)arg;
    bt_actor_ext_t *ext = bt__actor_ext(ctx->actor);
    if (ext == NULL)
        return BT_ENOMEM;
    return asks_put(ext, WAITER_CORR, 0);
}

static int waiter_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    reply_box_t *box = *(reply_box_t **)state;
    if (!(msg->corr & BT_CORR_REPLY))
        return BT_OK; /* not the answer: ignore */
    bt_msg_t *copy = bt_alloc(msg->size);
    if (copy != NULL) {
        memcpy(copy, msg, msg->size);
        copy->bt_link_ = NULL;
        box->reply = copy;
    }
    /* Release: the copy is visible to the thread that sees REPLIED. If the
     * thread gave up first, the copy is freed with the box. */
    uint32_t expected = BOX_WAITING;
    if (__atomic_compare_exchange_n(&box->state, &expected, BOX_REPLIED, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
        syscall(SYS_futex, &box->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    bt_stop_self(ctx);
    return BT_OK;
}

static void waiter_cleanup(bt_ctx_t *ctx, void *state)
{
    box_release(*(reply_box_t **)state);
}

static const bt_actor_type_t waiter_type = {
    .name = "ask-waiter",
    .state_size = sizeof(reply_box_t *),
    .init = waiter_init,
    .dispatch = waiter_dispatch,
    .cleanup = waiter_cleanup,
};

/* Waits for box->state to leave BOX_WAITING until deadline (ns, monotonic). */
static void wait_real(bt_runtime_t *rt, reply_box_t *box, uint64_t deadline)
{
    /* Spin briefly: a reply from a nearby actor often comes within a few
     * microseconds, and a futex sleep/wake costs more than that. */
    for (int i = 0; i < 4000; i++) {
        if (__atomic_load_n(&box->state, __ATOMIC_ACQUIRE) != BOX_WAITING)
            return;
        ck_pr_stall();
    }
    for (;;) {
        if (__atomic_load_n(&box->state, __ATOMIC_ACQUIRE) != BOX_WAITING)
            return;
        uint64_t now = bt__clock_ns();
        if (now >= deadline)
            return;
        uint64_t left = deadline - now;
        struct timespec ts = {.tv_sec = (time_t)(left / 1000000000u),
                              .tv_nsec = (long)(left % 1000000000u)};
        syscall(SYS_futex, &box->state, FUTEX_WAIT_PRIVATE, BOX_WAITING, &ts, NULL, 0);
    }
}

/* Deterministic mode: run the runtime and move virtual time until the reply
 * or the deadline. */
static void wait_virtual(bt_runtime_t *rt, reply_box_t *box, uint64_t deadline)
{
    for (;;) {
        bt__sched_run_inline(rt);
        if (__atomic_load_n(&box->state, __ATOMIC_ACQUIRE) != BOX_WAITING)
            return;
        uint64_t next = bt__timers_next_ns(rt);
        if (next > deadline) {
            (void)bt_runtime_advance(rt, deadline - bt_now(rt));
            return;
        }
        (void)bt_runtime_advance(rt, next > bt_now(rt) ? next - bt_now(rt) : 0);
    }
}

int bt_ask_wait(bt_runtime_t *rt, bt_ref_t to, bt_msg_t *request, uint64_t timeout_ns,
                bt_msg_t **reply)
{
    if (request == NULL)
        return BT_EINVAL;
    if (rt == NULL || reply == NULL || request->id >= BT_MSG_SYSTEM_BASE || request->size == 0) {
        bt_msg_free(request);
        return BT_EINVAL;
    }
    *reply = NULL;
    if (bt__tls_ctx != NULL || (bt__tls_worker != NULL && bt__tls_worker->rt == rt)) {
        bt_msg_free(request);
        return BT_ESTATE; /* would block a thread that runs actors */
    }
    reply_box_t *box = bt_alloc_zeroed(sizeof(*box));
    if (box == NULL) {
        bt_msg_free(request);
        return BT_ENOMEM;
    }
    box->refs = 2;
    bt_ref_t waiter;
    int rc = bt_spawn(rt, &waiter_type, box, NULL, &waiter);
    if (rc != BT_OK) {
        bt_free(box, sizeof(*box));
        bt_msg_free(request);
        return rc;
    }
    uint64_t deadline = bt_now(rt) + timeout_ns;
    request->corr = WAITER_CORR;
    rc = bt__send_from(rt, to, request, waiter);
    if (rc != BT_OK) {
        bt_msg_free(request);
        (void)bt_stop(rt, waiter);
        box_release(box);
        if (bt__deterministic(rt))
            bt__sched_run_inline(rt);
        return rc;
    }
    if (bt__deterministic(rt))
        wait_virtual(rt, box, deadline);
    else
        wait_real(rt, box, deadline);
    uint32_t expected = BOX_WAITING;
    if (__atomic_compare_exchange_n(&box->state, &expected, BOX_ABANDONED, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        (void)bt_stop(rt, waiter); /* a later reply becomes a dead letter */
        box_release(box);
        if (bt__deterministic(rt))
            bt__sched_run_inline(rt);
        return BT_ETIMEDOUT;
    }
    rc = box->reply != NULL ? BT_OK : BT_ENOMEM;
    *reply = box->reply;
    box->reply = NULL;
    box_release(box);
    return rc;
}
