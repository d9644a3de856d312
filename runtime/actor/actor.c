/*
 * actor.c: actor lifecycle: the slot table, spawn, send, stop, a turn of
 * dispatch, termination and reclamation.
 *
 * DESIGN
 * State owned: the slot table (chunks, free list) and every actor's
 * memory. An actor's fields after its mailbox head are touched only by the
 * thread that holds the actor's run token (see mailbox.h), except the
 * counters, which other threads read with relaxed loads.
 *
 * Lifecycle of an actor, by the words of its slot (see internal.h):
 *   spawn      word = gen | ALIVE | 1 (the owner reference); the mailbox
 *              is left unmarked while init runs, so messages sent during
 *              init queue up without scheduling a half-built actor.
 *   send       acquire a reference (CAS: same gen, ALIVE, below capacity),
 *              push; the reference now belongs to the message.
 *   turn       pop and dispatch up to a batch; release the references of
 *              the messages handled.
 *   terminate  cleanup; clear ALIVE (no new references); drain the mailbox
 *              into dead letters; mark it empty; release the owner
 *              reference and the drained messages' references.
 *   late push  a sender that acquired before ALIVE was cleared pushes
 *              into the now empty-marked mailbox and so schedules the dead
 *              actor; that turn only drains and releases.
 *   free       the release that brings the count to zero, with ALIVE
 *              clear, frees the actor and returns the slot with gen + 1.
 * Each thread subtracts only references it owns, so exactly one release
 * reaches zero, and nobody touches the actor after giving up its last one.
 */
#include "core/internal.h"

#include "core/tsan.h"

#include <ck_pr.h>
#include <stddef.h>
#include <string.h>

__thread bt_ctx_t *bt__tls_ctx;

/* ------------------------------------------------------------ slot table */

static inline bt_slot_t *slot_at(bt_runtime_t *rt, uint32_t idx)
{
    bt_slot_t *chunk = __atomic_load_n(&rt->chunks[idx >> BT_CHUNK_BITS], __ATOMIC_ACQUIRE);
    return &chunk[idx & (BT_CHUNK_SLOTS - 1)];
}

/* The slot a reference names, or NULL if it was never handed out. */
static inline bt_slot_t *slot_of_ref(bt_runtime_t *rt, bt_ref_t ref)
{
    uint32_t idx = (uint32_t)ref;
    if (idx >= __atomic_load_n(&rt->slot_next, __ATOMIC_ACQUIRE))
        return NULL;
    return slot_at(rt, idx);
}

static int slot_alloc(bt_runtime_t *rt, uint32_t *out)
{
    int rc = BT_OK;
    pthread_mutex_lock(&rt->slot_mutex);
    if (rt->slot_free != BT_SLOT_NONE) {
        *out = rt->slot_free;
        rt->slot_free = slot_at(rt, *out)->next_free;
        goto done;
    }
    uint32_t idx = rt->slot_next;
    uint32_t c = idx >> BT_CHUNK_BITS;
    if (c >= BT_MAX_CHUNKS) {
        rc = BT_ENOMEM;
        goto done;
    }
    if (rt->chunks[c] == NULL) {
        bt_slot_t *chunk = bt_alloc_zeroed(sizeof(bt_slot_t) * BT_CHUNK_SLOTS);
        if (chunk == NULL) {
            rc = BT_ENOMEM;
            goto done;
        }
        for (uint32_t i = 0; i < BT_CHUNK_SLOTS; i++)
            chunk[i].word = (uint64_t)1 << 32; /* generation 1: no ref is 0 */
        /* Release: readers that see slot_next cover this chunk see it. */
        __atomic_store_n(&rt->chunks[c], chunk, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&rt->slot_next, idx + 1, __ATOMIC_RELEASE);
    *out = idx;
done:
    pthread_mutex_unlock(&rt->slot_mutex);
    return rc;
}

/* Returns a slot whose count is zero to the free list, with the next
 * generation so every old reference fails. */
static void slot_recycle(bt_runtime_t *rt, uint32_t idx)
{
    bt_slot_t *s = slot_at(rt, idx);
    uint64_t w = __atomic_load_n(&s->word, __ATOMIC_RELAXED);
    uint32_t gen = BT_SLOT_GEN(w) + 1;
    if (gen == 0)
        gen = 1;
    s->actor = NULL;
    __atomic_store_n(&s->depth_hwm, 0, __ATOMIC_RELAXED);
    /* Release: the free of the actor is ordered before a new spawn in this
     * slot can publish. */
    __atomic_store_n(&s->word, (uint64_t)gen << 32, __ATOMIC_RELEASE);
    pthread_mutex_lock(&rt->slot_mutex);
    s->next_free = rt->slot_free;
    rt->slot_free = idx;
    pthread_mutex_unlock(&rt->slot_mutex);
}

void bt__slot_table_destroy(bt_runtime_t *rt)
{
    for (uint32_t c = 0; c < BT_MAX_CHUNKS && rt->chunks[c] != NULL; c++)
        bt_free(rt->chunks[c], sizeof(bt_slot_t) * BT_CHUNK_SLOTS);
}

/* Acquires one reference on the actor ref names. user: the reference is for
 * a user message, so a bounded mailbox may refuse it. On success returns the
 * slot and, in *depth, the mailbox depth including the new message. */
static int ref_acquire(bt_runtime_t *rt, bt_ref_t ref, bool user, bt_slot_t **out,
                       uint32_t *depth)
{
    bt_slot_t *s = slot_of_ref(rt, ref);
    if (s == NULL)
        return BT_ENOACTOR;
    uint32_t gen = (uint32_t)(ref >> 32);
    /* Acquire (here and on CAS failure): pairs with the release that
     * published the actor at spawn, so capacity, slot->actor and the
     * actor's fields are those of the generation we check. */
    uint64_t w = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE);
    for (;;) {
        if (BT_SLOT_GEN(w) != gen || !(w & BT_SLOT_ALIVE))
            return BT_ENOACTOR;
        /* refs - 1 messages are queued: the owner holds one reference. */
        uint32_t refs = (uint32_t)(w & BT_SLOT_REFS);
        if (refs == BT_SLOT_REFS)
            return BT_EFULL;
        if (user) {
            /* Relaxed: a stale value belongs to another generation, which
             * the CAS below rejects. */
            uint32_t cap = __atomic_load_n(&s->capacity, __ATOMIC_RELAXED);
            if (cap != 0 && refs > cap)
                return BT_EFULL;
        }
        if (__atomic_compare_exchange_n(&s->word, &w, w + 1, true, __ATOMIC_ACQUIRE,
                                        __ATOMIC_ACQUIRE)) {
            BT_TSAN_ACQUIRE(s);
            *out = s;
            *depth = refs;
            return BT_OK;
        }
    }
}

static void actor_free(bt_runtime_t *rt, bt_actor_t *a);

/* Gives back n references on slot s. The release that leaves the actor
 * with no references and not alive frees it. */
static void ref_release(bt_runtime_t *rt, bt_slot_t *s, uint32_t n)
{
    if (n == 0)
        return;
    bt_actor_t *a = s->actor; /* read while we still hold a reference */
    /* Release: our use of the actor happens before its free by whoever
     * drops the last reference; acquire: if that is us, we see all other
     * holders' uses. */
    uint64_t old = __atomic_fetch_sub(&s->word, n, __ATOMIC_ACQ_REL);
    BT_ASSERT((old & BT_SLOT_REFS) >= n);
    if ((old & (BT_SLOT_ALIVE | BT_SLOT_REFS)) == n)
        actor_free(rt, a);
}

/* --------------------------------------------------------------- spawning */

static void actor_free(bt_runtime_t *rt, bt_actor_t *a)
{
    bt__mbox_deinit(&a->mbox);
    uint32_t slot = a->slot;
    bt_free(a, a->alloc_size);
    slot_recycle(rt, slot);
    __atomic_fetch_sub(&rt->live, 1, __ATOMIC_RELEASE);
}

static void terminate(bt_worker_t *w, bt_actor_t *a, uint32_t unreleased, bool run_cleanup);

int bt_spawn(bt_runtime_t *rt, const bt_actor_type_t *type, const void *arg,
             const bt_spawn_opts_t *opts, bt_ref_t *out)
{
    if (rt == NULL || type == NULL || type->dispatch == NULL || out == NULL)
        return BT_EINVAL;
    if (opts != NULL && opts->flags != 0)
        return BT_EINVAL;
    if (type->state_size > (size_t)UINT32_MAX - sizeof(bt_actor_t) - 16)
        return BT_EINVAL;
    if (__atomic_load_n(&rt->state, __ATOMIC_ACQUIRE) == BT_RT_STOPPING)
        return BT_ESTATE;

    size_t size = sizeof(bt_actor_t) + ((type->state_size + 15) & ~(size_t)15);
    bt_actor_t *a = bt_alloc(size);
    if (a == NULL)
        return BT_ENOMEM;
    uint32_t slot;
    if (slot_alloc(rt, &slot) != BT_OK) {
        bt_free(a, size);
        return BT_ENOMEM;
    }
    /* Zero only what is not set below: the state, and the fields. */
    memset(a, 0, sizeof(bt_actor_t));
    memset(a->state, 0, size - sizeof(bt_actor_t));
    bt__mbox_init(&a->mbox);
    /* Keep the mailbox unmarked until init is done: pushes during init queue
     * without scheduling. */
    a->mbox.head = &a->mbox.stub;
    a->type = type;
    a->rt = rt;
    a->slot = slot;
    a->capacity = opts != NULL ? opts->mailbox_capacity : 0;
    a->alloc_size = (uint32_t)size;
    a->stop_node.id = BT_SYS_STOP;
    a->stop_node.size = 0;

    bt_slot_t *s = slot_at(rt, slot);
    uint64_t word = __atomic_load_n(&s->word, __ATOMIC_RELAXED);
    a->gen = BT_SLOT_GEN(word);
    s->actor = a;
    __atomic_store_n(&s->capacity, a->capacity, __ATOMIC_RELAXED);
    __atomic_fetch_add(&rt->spawned, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&rt->live, 1, __ATOMIC_RELAXED);
    /* Release: publishes the initialised actor to every sender whose CAS
     * observes ALIVE. */
    BT_TSAN_RELEASE(s);
    __atomic_store_n(&s->word, word | BT_SLOT_ALIVE | 1, __ATOMIC_RELEASE);

    int rc = BT_OK;
    if (type->init != NULL) {
        bt_ctx_t ctx = {.rt = rt, .actor = a, .stop = false};
        bt_ctx_t *saved = bt__tls_ctx;
        bt__tls_ctx = &ctx;
        rc = type->init(&ctx, a->state, arg);
        bt__tls_ctx = saved;
        if (rc == BT_OK && ctx.stop)
            (void)bt_stop(rt, bt__make_ref(slot, a->gen)); /* queued; runs first */
    }
    if (rc != BT_OK) {
        /* The actor never ran; its init undoes its own work, so no cleanup.
         * We hold the run token (the mailbox was never marked). */
        a->exit_reason = rc;
        terminate(bt__tls_worker, a, 0, false);
        return rc > 0 ? BT_EFAILED : rc;
    }
    *out = bt__make_ref(slot, a->gen);
    /* Hand the run token to the next push, or schedule now if messages
     * arrived during init. */
    if (!bt__mbox_mark_empty(&a->mbox))
        bt__schedule(rt, a);
    return BT_OK;
}

/* ---------------------------------------------------------------- sending */

void bt__count_dead_letter(bt_runtime_t *rt)
{
    bt_worker_t *w = bt__tls_worker;
    if (w != NULL && w->rt == rt)
        __atomic_store_n(&w->dead_letters, w->dead_letters + 1, __ATOMIC_RELAXED);
    else
        __atomic_fetch_add(&rt->ext_dead_letters, 1, __ATOMIC_RELAXED);
}

static void count_sent(bt_runtime_t *rt)
{
    bt_ctx_t *ctx = bt__tls_ctx;
    if (ctx != NULL && ctx->rt == rt)
        __atomic_store_n(&ctx->actor->sent, ctx->actor->sent + 1, __ATOMIC_RELAXED);
    bt_worker_t *w = bt__tls_worker;
    if (w != NULL && w->rt == rt)
        __atomic_store_n(&w->sent, w->sent + 1, __ATOMIC_RELAXED);
    else
        __atomic_fetch_add(&rt->ext_sent, 1, __ATOMIC_RELAXED);
}

/* Pushes msg, which carries a reference already acquired on a. */
static inline void deliver(bt_runtime_t *rt, bt_actor_t *a, bt_msg_t *msg)
{
    if (bt__mbox_push(&a->mbox, msg))
        bt__schedule(rt, a);
}

int bt_send(bt_runtime_t *rt, bt_ref_t to, bt_msg_t *msg)
{
    if (rt == NULL || msg == NULL || msg->id >= BT_MSG_SYSTEM_BASE || msg->size == 0)
        return BT_EINVAL;
    bt_slot_t *s;
    uint32_t depth;
    int rc = ref_acquire(rt, to, true, &s, &depth);
    if (rc != BT_OK) {
        if (rc == BT_ENOACTOR)
            bt__count_dead_letter(rt);
        return rc;
    }
    if (depth > __atomic_load_n(&s->depth_hwm, __ATOMIC_RELAXED))
        __atomic_store_n(&s->depth_hwm, depth, __ATOMIC_RELAXED);
    bt_ctx_t *ctx = bt__tls_ctx;
    msg->from = (ctx != NULL && ctx->rt == rt) ? bt__make_ref(ctx->actor->slot, ctx->actor->gen)
                                               : BT_REF_NONE;
    count_sent(rt);
    deliver(rt, s->actor, msg);
    return BT_OK;
}

int bt_stop(bt_runtime_t *rt, bt_ref_t actor)
{
    if (rt == NULL)
        return BT_EINVAL;
    bt_slot_t *s;
    uint32_t depth;
    int rc = ref_acquire(rt, actor, false, &s, &depth);
    if (rc != BT_OK)
        return rc;
    bt_actor_t *a = s->actor;
    /* Only the first request pushes the embedded stop node, so the node is
     * never in the mailbox twice. */
    if (__atomic_exchange_n(&a->stop_requested, 1, __ATOMIC_ACQ_REL) == 0)
        deliver(rt, a, &a->stop_node);
    else
        ref_release(rt, s, 1);
    return BT_OK;
}

bool bt_alive(bt_runtime_t *rt, bt_ref_t actor)
{
    bt_slot_t *s = rt != NULL ? slot_of_ref(rt, actor) : NULL;
    if (s == NULL)
        return false;
    uint64_t w = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE);
    return BT_SLOT_GEN(w) == (uint32_t)(actor >> 32) && (w & BT_SLOT_ALIVE) != 0;
}

int bt_actor_stats(bt_runtime_t *rt, bt_ref_t actor, bt_actor_stats_t *out)
{
    if (rt == NULL || out == NULL)
        return BT_EINVAL;
    bt_slot_t *s;
    uint32_t depth;
    int rc = ref_acquire(rt, actor, false, &s, &depth);
    if (rc != BT_OK)
        return rc;
    bt_actor_t *a = s->actor;
    out->sent = __atomic_load_n(&a->sent, __ATOMIC_RELAXED);
    out->processed = __atomic_load_n(&a->processed, __ATOMIC_RELAXED);
    out->depth = depth - 1; /* without our own reference */
    out->depth_hwm = __atomic_load_n(&s->depth_hwm, __ATOMIC_RELAXED);
    ref_release(rt, s, 1);
    return BT_OK;
}

bt_ref_t bt_self(const bt_ctx_t *ctx)
{
    return bt__make_ref(ctx->actor->slot, ctx->actor->gen);
}

bt_runtime_t *bt_ctx_runtime(const bt_ctx_t *ctx)
{
    return ctx->rt;
}

void bt_stop_self(bt_ctx_t *ctx)
{
    ctx->stop = true;
}

/* -------------------------------------------------------------- messages */

bt_msg_t *bt_msg_new(size_t size, uint32_t id)
{
    if (size < sizeof(bt_msg_t) || size > BT_MSG_MAX_SIZE)
        return NULL;
    bt_msg_t *m = bt_alloc(size);
    if (m == NULL)
        return NULL;
    memset(m, 0, size);
    m->id = id;
    m->size = (uint32_t)size;
    return m;
}

void bt_msg_free(bt_msg_t *msg)
{
    if (msg != NULL && msg->size != 0)
        bt_free(msg, msg->size);
}

/* ------------------------------------------------------------------ turns */

static inline bt_slot_t *own_slot(bt_actor_t *a)
{
    return slot_at(a->rt, a->slot);
}

static inline void count_processed(bt_worker_t *w, bt_actor_t *a, uint32_t n)
{
    __atomic_store_n(&a->processed, a->processed + n, __ATOMIC_RELAXED);
    if (w != NULL)
        __atomic_store_n(&w->processed, w->processed + n, __ATOMIC_RELAXED);
}

/* A turn of an actor that has terminated: its mailbox only drains. Called
 * with the run token. refs: references this thread already owns and gives
 * back at the end. */
static void drain_dead(bt_worker_t *w, bt_actor_t *a, uint32_t refs)
{
    bt_runtime_t *rt = a->rt;
    bt_slot_t *s = own_slot(a);
    for (;;) {
        bt_msg_t *m;
        while ((m = bt__mbox_pop(&a->mbox)) != NULL) {
            refs++;
            if (m->id < BT_MSG_SYSTEM_BASE)
                bt__count_dead_letter(rt);
        }
        if (bt__mbox_mark_empty(&a->mbox))
            break;
        /* A producer is between its exchange and its link: wait for it. */
        ck_pr_stall();
    }
    (void)w;
    ref_release(rt, s, refs);
}

/* Stops a running actor: cleanup, then no new references, then drain. The
 * caller holds the run token and `unreleased` references for messages it
 * has already handled. */
static void terminate(bt_worker_t *w, bt_actor_t *a, uint32_t unreleased, bool run_cleanup)
{
    if (run_cleanup && a->type->cleanup != NULL) {
        bt_ctx_t ctx = {.rt = a->rt, .actor = a, .stop = false};
        bt_ctx_t *saved = bt__tls_ctx;
        bt__tls_ctx = &ctx;
        a->type->cleanup(&ctx, a->state);
        bt__tls_ctx = saved;
    }
    a->flags |= BT_AF_DEAD;
    bt_slot_t *s = own_slot(a);
    /* Clear ALIVE and give back the handled messages' references; keep the
     * owner reference until the drain is done, so the actor cannot be
     * freed under us. */
    uint64_t old = __atomic_fetch_sub(&s->word, BT_SLOT_ALIVE + unreleased, __ATOMIC_ACQ_REL);
    BT_ASSERT((old & BT_SLOT_ALIVE) != 0);
    drain_dead(w, a, 1);
}

void bt__actor_turn(bt_worker_t *w, bt_actor_t *a)
{
    if (a->flags & BT_AF_DEAD) {
        drain_dead(w, a, 0);
        return;
    }
    bt_runtime_t *rt = a->rt;
    uint32_t batch = rt->cfg.batch;
    bool bounded = a->capacity != 0;
    bt_ctx_t ctx = {.rt = rt, .actor = a, .stop = false};
    bt__tls_ctx = &ctx;

    uint32_t handled = 0, unreleased = 0, dispatched = 0;
    bool stop = false;
    bt_msg_t *m;
    while (handled < batch && (m = bt__mbox_pop(&a->mbox)) != NULL) {
        handled++;
        unreleased++;
        if (__builtin_expect(m->id >= BT_MSG_SYSTEM_BASE, 0)) {
            if (m->id == BT_SYS_STOP)
                stop = true;
        } else {
            dispatched++;
            int rc = a->type->dispatch(&ctx, a->state, m);
            if (rc != BT_OK) {
                a->exit_reason = rc;
                stop = true;
            }
            stop |= ctx.stop;
        }
        if (bounded) {
            /* A bounded mailbox frees capacity message by message. */
            ref_release(rt, own_slot(a), 1);
            unreleased = 0;
        }
        if (stop)
            break;
    }
    bt__tls_ctx = NULL;
    count_processed(w, a, dispatched);

    if (stop) {
        terminate(w, a, unreleased, true);
        return;
    }
    /* The owner reference keeps the actor alive through this release. */
    ref_release(rt, own_slot(a), unreleased);
    if (handled == batch || !bt__mbox_mark_empty(&a->mbox))
        bt__schedule(rt, a); /* more to do: back of the queue */
}

/* ------------------------------------------------------------- shutdown */

void bt__stop_all(bt_runtime_t *rt)
{
    uint32_t n = __atomic_load_n(&rt->slot_next, __ATOMIC_ACQUIRE);
    /* Newest first, so actors are asked to stop in reverse spawn order. */
    for (uint32_t i = n; i-- > 0;) {
        bt_slot_t *s = slot_at(rt, i);
        uint64_t w = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE);
        if (w & BT_SLOT_ALIVE)
            (void)bt_stop(rt, bt__make_ref(i, BT_SLOT_GEN(w)));
    }
}
