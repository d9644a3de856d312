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

#include "core/futex.h"

#include <ck_pr.h>
#include <pthread.h>
#include <string.h>
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
    int rc = bt__timer_add(rt, bt_self(ctx), tmo, timeout_ns, 0, &timer);
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

/* ----------------------------------------------------- from outside
 *
 * Each thread that asks from outside keeps one waiter actor per runtime
 * (cached in a thread-local), so an ask costs no spawn. The thread and the
 * waiter share a box whose 32-bit word packs the current ask's sequence
 * number with its state:
 *   WAITING  -> SLEEPING   the thread stops spinning and sleeps (futex)
 *   WAITING/SLEEPING -> FILLING -> DONE   the waiter copies in the reply
 *   WAITING/SLEEPING -> DONE              the thread gives up (timeout)
 * A reply whose sequence number is not the current one is a late reply to
 * an ask that timed out: the waiter's CAS fails and it is dropped and
 * counted. The box is reference-counted between the thread and the waiter,
 * since either may go first (thread exit, runtime shutdown). */

enum { BOX_WAITING, BOX_SLEEPING, BOX_FILLING, BOX_DONE };
#define BOX_STATE(w) ((w)&3u)
#define BOX_SEQ(w)   ((w) >> 2)

typedef struct {
    uint32_t word;   /* futex word: seq << 2 | state */
    uint32_t refs;   /* the asking thread and the waiter actor */
    uint32_t seq;    /* the thread's last sequence number; thread only */
    bt_msg_t *reply; /* written in FILLING, read after DONE */
} reply_box_t;

static void box_release(reply_box_t *box)
{
    if (__atomic_sub_fetch(&box->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        bt_msg_free(box->reply);
        bt_free(box, sizeof(*box));
    }
}

static int waiter_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    *(reply_box_t **)state = (reply_box_t *)arg;
    /* Replies are matched against the box, not the pending-ask table. */
    ctx->actor->flags |= BT_AF_RAW_REPLIES;
    return BT_OK;
}

static int waiter_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    reply_box_t *box = *(reply_box_t **)state;
    if (!(msg->corr & BT_CORR_REPLY))
        return BT_OK; /* not an answer: ignore */
    uint32_t seq = (uint32_t)(msg->corr & 0x3fffffffu);
    uint32_t w = __atomic_load_n(&box->word, __ATOMIC_ACQUIRE);
    for (;;) {
        if (BOX_SEQ(w) != seq || BOX_STATE(w) > BOX_SLEEPING) {
            /* The ask it answers has timed out. */
            __atomic_fetch_add(&ctx->rt->late_replies, 1, __ATOMIC_RELAXED);
            return BT_OK;
        }
        if (__atomic_compare_exchange_n(&box->word, &w, (seq << 2) | BOX_FILLING, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            break;
    }
    bt_msg_t *copy = bt_alloc(msg->size);
    if (copy != NULL) {
        memcpy(copy, msg, msg->size);
        copy->bt_link_ = NULL;
    }
    box->reply = copy;
    /* Release: the copy is visible to the thread that sees DONE. The wake-up
     * system call is made only if the thread went to sleep. */
    __atomic_store_n(&box->word, (seq << 2) | BOX_DONE, __ATOMIC_RELEASE);
    if (BOX_STATE(w) == BOX_SLEEPING)
        bt__futex_wake(&box->word);
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

/* This thread's waiter, for one runtime at a time (by id: a new runtime at
 * the same address is a different one). */
typedef struct {
    uint64_t rt_id;
    bt_ref_t waiter;
    reply_box_t *box;
} ask_cache_t;

static __thread ask_cache_t ask_cache;
static pthread_key_t ask_cache_key;
static pthread_once_t ask_cache_once = PTHREAD_ONCE_INIT;

/* At thread exit: give up the thread's share of its box. The waiter itself
 * stays until its runtime shuts down. */
static void ask_cache_exit(void *box)
{
    box_release(box);
}

static void ask_cache_key_init(void)
{
    (void)pthread_key_create(&ask_cache_key, ask_cache_exit);
}

static int waiter_get(bt_runtime_t *rt, ask_cache_t **out)
{
    ask_cache_t *c = &ask_cache;
    if (c->box != NULL && c->rt_id == rt->id && bt_alive(rt, c->waiter)) {
        *out = c;
        return BT_OK;
    }
    if (c->box != NULL) {
        box_release(c->box);
        c->box = NULL;
    }
    reply_box_t *box = bt_alloc_zeroed(sizeof(*box));
    if (box == NULL)
        return BT_ENOMEM;
    box->refs = 2;
    box->word = BOX_DONE;
    int rc = bt_spawn(rt, &waiter_type, box, NULL, &c->waiter);
    if (rc != BT_OK) {
        bt_free(box, sizeof(*box));
        return rc;
    }
    pthread_once(&ask_cache_once, ask_cache_key_init);
    (void)pthread_setspecific(ask_cache_key, box);
    c->box = box;
    c->rt_id = rt->id;
    *out = c;
    return BT_OK;
}

/* Waits until the waiter settles the ask or the deadline passes. */
static void wait_real(reply_box_t *box, uint32_t seq, uint64_t deadline)
{
    /* Spin first: a reply from a nearby actor often comes within a few
     * microseconds, and a futex sleep and wake-up cost more than that. */
    uint64_t spin_until = bt__clock_ns() + 20000;
    uint32_t waiting = seq << 2 | BOX_WAITING;
    for (uint32_t i = 1;; i++) {
        if (__atomic_load_n(&box->word, __ATOMIC_ACQUIRE) != waiting)
            break;
        if ((i & 63) == 0) {
            uint64_t now = bt__clock_ns();
            if (now >= spin_until || now >= deadline)
                break;
        }
        ck_pr_stall();
    }
    /* Announce the sleep, so the waiter knows to wake us. */
    uint32_t w = waiting;
    if (!__atomic_compare_exchange_n(&box->word, &w, seq << 2 | BOX_SLEEPING, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return; /* settled meanwhile */
    for (;;) {
        w = __atomic_load_n(&box->word, __ATOMIC_ACQUIRE);
        if (w != (seq << 2 | BOX_SLEEPING))
            return;
        uint64_t now = bt__clock_ns();
        if (now >= deadline)
            return;
        uint64_t left = deadline - now;
        struct timespec ts = {.tv_sec = (time_t)(left / 1000000000u),
                              .tv_nsec = (long)(left % 1000000000u)};
        bt__futex_wait(&box->word, w, &ts);
    }
}

/* Deterministic mode: run the runtime and move virtual time until the reply
 * or the deadline. */
static void wait_virtual(bt_runtime_t *rt, reply_box_t *box, uint32_t seq, uint64_t deadline)
{
    for (;;) {
        bt__sched_run_inline(rt);
        if (BOX_STATE(__atomic_load_n(&box->word, __ATOMIC_ACQUIRE)) == BOX_DONE)
            return;
        uint64_t now = bt_now(rt);
        uint64_t next = bt__timers_next_ns(rt);
        if (next > deadline) {
            (void)bt_runtime_advance(rt, deadline > now ? deadline - now : 0);
            return;
        }
        (void)bt_runtime_advance(rt, next > now ? next - now : 0);
    }
}

int bt_ask_wait(bt_runtime_t *rt, bt_ref_t to, bt_msg_t *request, uint64_t timeout_ns,
                bt_msg_t **reply)
{
    if (request == NULL)
        return BT_EINVAL;
    int rc = BT_EINVAL;
    if (rt == NULL || reply == NULL || request->id >= BT_MSG_SYSTEM_BASE || request->size == 0)
        goto refuse;
    *reply = NULL;
    rc = BT_ESTATE; /* would block a thread that runs actors */
    if (bt__tls_ctx != NULL || (bt__tls_worker != NULL && bt__tls_worker->rt == rt))
        goto refuse;
    ask_cache_t *c;
    if ((rc = waiter_get(rt, &c)) != BT_OK)
        goto refuse;
    reply_box_t *box = c->box;
    uint32_t seq = box->seq = (box->seq + 1) & 0x3fffffffu;
    if (seq == 0)
        seq = box->seq = 1;
    /* Release: a new ask; replies to older ones now fail their CAS. */
    __atomic_store_n(&box->word, seq << 2 | BOX_WAITING, __ATOMIC_RELEASE);
    uint64_t deadline = bt_now(rt) + timeout_ns;
    request->corr = seq;
    if ((rc = bt__send_from(rt, to, request, c->waiter)) != BT_OK) {
        __atomic_store_n(&box->word, seq << 2 | BOX_DONE, __ATOMIC_RELEASE);
        goto refuse;
    }
    if (bt__deterministic(rt))
        wait_virtual(rt, box, seq, deadline);
    else
        wait_real(box, seq, deadline);
    /* Settle: either the waiter finished (DONE with a reply), is copying it
     * (FILLING: moments away), or we give up (DONE without one). */
    uint32_t w = __atomic_load_n(&box->word, __ATOMIC_ACQUIRE);
    for (;;) {
        if (BOX_STATE(w) == BOX_DONE)
            break;
        if (BOX_STATE(w) == BOX_FILLING) {
            ck_pr_stall();
            w = __atomic_load_n(&box->word, __ATOMIC_ACQUIRE);
            continue;
        }
        if (__atomic_compare_exchange_n(&box->word, &w, seq << 2 | BOX_DONE, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return BT_ETIMEDOUT; /* a later reply is counted as late */
    }
    *reply = box->reply;
    box->reply = NULL;
    return *reply != NULL ? BT_OK : BT_ENOMEM;

refuse:
    bt_msg_free(request);
    return rc;
}
