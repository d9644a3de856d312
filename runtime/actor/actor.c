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

#include "registry/registry.h"

#include <ck_pr.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

__thread bt_ctx_t *bt__tls_ctx;

/* The layout described in internal.h. */
_Static_assert(offsetof(bt_actor_t, mbox.head) == 56, "mailbox head ends line 0");
_Static_assert(offsetof(bt_actor_t, mbox.tail) == 64, "mailbox tail starts line 1");
_Static_assert(sizeof(bt_actor_t) <= 176, "an idle actor fits jemalloc's 192-byte class");

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
static int ref_acquire(bt_runtime_t *rt, bt_ref_t ref, bool user, bt_slot_t **out, uint32_t *depth)
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

/* Takes n more references on slot s, on which the caller holds one: that
 * one keeps the generation, so no check is needed. */
static inline void ref_hold(bt_slot_t *s, uint32_t n)
{
    __atomic_fetch_add(&s->word, n, __ATOMIC_RELAXED);
}

static inline bt_slot_t *own_slot(bt_actor_t *a)
{
    return slot_at(a->rt, a->slot);
}

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
    bt_actor_ext_t *ext = a->ext;
    if (ext != NULL) {
        /* Watch lists and names were emptied at termination. */
        bt_free(ext, sizeof(*ext));
    }
    if (a->pinned != NULL)
        bt__pinned_release(a);
    bt_free(a, a->alloc_size);
    slot_recycle(rt, slot);
    /* Release: pairs with shutdown's and stats' acquire of live. */
    __atomic_fetch_sub(&rt->live, 1, __ATOMIC_RELEASE);
}

bt_actor_ext_t *bt__actor_ext(bt_actor_t *a)
{
    if (a->ext == NULL)
        a->ext = bt_alloc_zeroed(sizeof(bt_actor_ext_t));
    return a->ext;
}

static void terminate(bt_worker_t *w, bt_actor_t *a, uint32_t unreleased);
static void exit_or_ask_supervisor(bt_worker_t *w, bt_actor_t *a, uint32_t unreleased);

/* Runs init with a context for a, on the calling thread. */
static int run_init(bt_actor_t *a, const void *arg)
{
    if (a->type->init == NULL)
        return BT_OK;
    bt_ctx_t ctx = {.rt = a->rt, .actor = a, .stop = false};
    bt_ctx_t *saved = bt__tls_ctx;
    bt__tls_ctx = &ctx;
    int rc = a->type->init(&ctx, a->state, arg);
    bt__tls_ctx = saved;
    if (rc > 0)
        rc = BT_EFAILED;
    if (rc == BT_OK && ctx.stop)
        (void)bt_stop(a->rt, bt__actor_ref(a)); /* queued first: runs first */
    return rc;
}

static int spawn(bt_runtime_t *rt, const bt_actor_type_t *type, const void *arg,
                 const bt_spawn_opts_t *opts, bt_ref_t sup, uint32_t sup_index, bt_ref_t *out)
{
    if (rt == NULL || type == NULL || type->dispatch == NULL || out == NULL)
        return BT_EINVAL;
    uint32_t flags = opts != NULL ? opts->flags : 0;
    if ((flags & ~BT_SPAWN_PINNED) != 0)
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
    memset(a, 0, size);
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
    if (sup != BT_REF_NONE) {
        bt_actor_ext_t *ext = bt__actor_ext(a);
        if (ext == NULL) {
            slot_recycle(rt, slot);
            bt_free(a, size);
            return BT_ENOMEM;
        }
        ext->sup = sup;
        ext->sup_index = sup_index;
        ext->restart_arg = arg;
    }
    if ((flags & BT_SPAWN_PINNED) && !bt__deterministic(rt)) {
        a->flags |= BT_AF_PINNED;
        int rc = bt__pinned_start(rt, a);
        if (rc != BT_OK) {
            bt_free(a->ext, sizeof(bt_actor_ext_t));
            slot_recycle(rt, slot);
            bt_free(a, size);
            return rc;
        }
    }

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

    int rc = run_init(a, arg);
    if (rc != BT_OK) {
        /* The actor never ran; its init undoes its own work, so no cleanup.
         * We hold the run token (the mailbox was never marked). */
        a->exit_reason = rc;
        a->flags |= BT_AF_CLEANED;
        terminate(bt__tls_worker, a, 0);
        return rc;
    }
    *out = bt__make_ref(slot, a->gen);
    /* Hand the run token to the next push, or schedule now if messages
     * arrived during init. */
    if (!bt__mbox_mark_empty(&a->mbox))
        bt__schedule(rt, a);
    /* A shutdown that began while we spawned may have swept the slots
     * before we were alive: then stop ourselves (pairs with the seq-cst
     * store and fence in bt_runtime_shutdown()). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&rt->state, __ATOMIC_RELAXED) == BT_RT_STOPPING)
        (void)bt__control(rt, *out, BT_CTL_STOP);
    return BT_OK;
}

int bt_spawn(bt_runtime_t *rt, const bt_actor_type_t *type, const void *arg,
             const bt_spawn_opts_t *opts, bt_ref_t *out)
{
    return spawn(rt, type, arg, opts, BT_REF_NONE, 0, out);
}

int bt__spawn_child(bt_runtime_t *rt, const bt_child_spec_t *spec, bt_ref_t sup, uint32_t index,
                    bt_ref_t *out)
{
    return spawn(rt, spec->type, spec->arg, &spec->opts, sup, index, out);
}

/* ---------------------------------------------------------------- sending */

static void count_dead_letter(bt_runtime_t *rt)
{
    bt_worker_t *w = bt__tls_worker;
    if (w != NULL && w->rt == rt)
        __atomic_store_n(&w->dead_letters, w->dead_letters + 1, __ATOMIC_RELAXED);
    else
        __atomic_fetch_add(&rt->ext_dead_letters, 1, __ATOMIC_RELAXED);
}

void bt__dead_letter(bt_runtime_t *rt, bt_ref_t to, bt_ref_t from, uint32_t id)
{
    count_dead_letter(rt);
    bt_ref_t obs = __atomic_load_n(&rt->dead_letter_observer, __ATOMIC_RELAXED);
    /* Never report the observer's own lost notices: that could loop. */
    if (obs == BT_REF_NONE || id == BT_MSG_DEAD_LETTER || to == obs)
        return;
    bt_dead_letter_msg_t *m = BT_MSG_NEW(bt_dead_letter_msg_t, BT_MSG_DEAD_LETTER);
    if (m == NULL)
        return;
    m->to = to;
    m->from = from;
    m->id = id;
    if (bt__send_sys(rt, obs, &m->hdr, BT_REF_NONE) != BT_OK)
        bt_msg_free(&m->hdr);
}

int bt_observe_dead_letters(bt_runtime_t *rt, bt_ref_t observer)
{
    if (rt == NULL)
        return BT_EINVAL;
    __atomic_store_n(&rt->dead_letter_observer, observer, __ATOMIC_RELAXED);
    return BT_OK;
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
        bt__schedule_hot(rt, a);
}

/* ----------------------------------------------------------- backpressure
 *
 * After Pony's muting, simplified. A send from an actor on a scheduler
 * thread that finds its receiver R (unbounded, not pinned, not itself) at
 * least cfg.backpressure / 4 deep leaves a marker (BT_SYS_BP_MARK) behind
 * its message, unless the sender's marker is already out somewhere (one at
 * a time). If a send in the turn found R cfg.backpressure deep, the sender
 * is muted at the end of its turn: it keeps its run token and its mailbox
 * but does not run. R unmutes it when it reaches the marker, so the sender
 * resumes while R still has the work behind the marker queued and R does
 * not run dry.
 *
 * Progress. Messages that someone waits on are "waiters": markers, and a
 * child's BT_SYS_CHILD_EXIT (the child is parked until its supervisor
 * answers). bp counts them, and an actor with waiters in its mailbox is
 * never muted: the mute is a CAS from exactly MARK_OUT, and adding a waiter
 * to a muted actor unmutes it. So every muted actor waits on one that is not
 * muted, and no cycle of muted actors can form. Pinned receivers get no
 * markers, since a pinned actor may block. A stop or control request also
 * unmutes (Dekker-style with the muting actor's check, both seq-cst). */

static void bp_unmute(bt_runtime_t *rt, bt_actor_t *a)
{
    /* Whoever clears MUTED owns the run token the muted actor held. */
    if (__atomic_fetch_and(&a->bp, ~BT_BP_MUTED, __ATOMIC_SEQ_CST) & BT_BP_MUTED)
        bt__schedule(rt, a);
}

static inline bool bp_is_waiter(uint32_t id)
{
    return id == BT_SYS_BP_MARK || id == BT_SYS_CHILD_EXIT;
}

/* A waiter is about to enter a's mailbox (the caller holds a reference). */
static void bp_add_waiter(bt_runtime_t *rt, bt_actor_t *a)
{
    if (__atomic_fetch_add(&a->bp, BT_BP_WAITER, __ATOMIC_SEQ_CST) & BT_BP_MUTED)
        bp_unmute(rt, a);
}

/* A waiter left a's mailbox (a's consumer). */
static inline void bp_waiter_done(bt_actor_t *a)
{
    uint32_t old = __atomic_fetch_sub(&a->bp, BT_BP_WAITER, __ATOMIC_RELEASE);
    BT_ASSERT(old >= BT_BP_WAITER);
}

/* a's consumer reached a marker: the sender may run again. */
static void bp_marker_done(bt_actor_t *a, const bt_msg_t *m)
{
    bt_runtime_t *rt = a->rt;
    bp_waiter_done(a);
    bt_slot_t *s;
    uint32_t depth;
    /* A muted sender is alive (it holds its run token); one that stopped
     * since needs nothing. */
    if (ref_acquire(rt, m->from, false, &s, &depth) != BT_OK)
        return;
    bt_actor_t *sender = s->actor;
    uint32_t old =
        __atomic_fetch_and(&sender->bp, ~(BT_BP_MARK_OUT | BT_BP_MUTED), __ATOMIC_SEQ_CST);
    /* Not on this worker: the receiver is busy here, and the sender would
     * take turns with it on one core while another core idles. */
    if (old & BT_BP_MUTED)
        bt__schedule_away(rt, sender);
    ref_release(rt, s, 1);
}

/* A send from the current actor found receiver r (slot s, referenced by the
 * caller) depth deep, at least the marker depth. */
static void bp_deep_send(bt_runtime_t *rt, bt_slot_t *s, bt_actor_t *r, uint32_t depth)
{
    bt_ctx_t *ctx = bt__tls_ctx;
    bt_worker_t *w = bt__tls_worker;
    if (ctx == NULL || ctx->rt != rt || w == NULL || w->pinned || ctx->actor == r ||
        r->pinned != NULL || __atomic_load_n(&s->capacity, __ATOMIC_RELAXED) != 0)
        return;
    bt_actor_t *self = ctx->actor;
    if (depth >= rt->cfg.backpressure)
        ctx->deep = true;
    if ((__atomic_load_n(&self->bp, __ATOMIC_RELAXED) & BT_BP_MARK_OUT) ||
        depth >= BT_SLOT_REFS - 2)
        return;
    bt_msg_t *mark = bt_msg_new(sizeof(bt_msg_t), BT_SYS_BP_MARK);
    if (mark == NULL)
        return; /* no marker, no mute: backpressure is best effort */
    mark->from = bt__actor_ref(self);
    /* Only we set MARK_OUT; the receiver clears it. */
    __atomic_fetch_or(&self->bp, BT_BP_MARK_OUT, __ATOMIC_RELAXED);
    ref_hold(s, 1); /* the marker's own */
    bp_add_waiter(rt, r);
    if (bt__mbox_push(&r->mbox, mark))
        bt__schedule_hot(rt, r);
}

/* At the end of a turn that would reschedule a: mutes it instead if a send
 * in the turn went to a deep mailbox and nothing stands against it. Returns
 * true if a is muted (or was handed back to the scheduler meanwhile). */
/* A stop or control request is pending, or the runtime is stopping: the
 * actor must not stay muted. Seq-cst: see bp_mute(). */
static bool bp_must_run(bt_runtime_t *rt, bt_actor_t *a)
{
    return __atomic_load_n(&a->stop_requested, __ATOMIC_SEQ_CST) == 1 ||
           __atomic_load_n(&a->control, __ATOMIC_SEQ_CST) != 0 ||
           __atomic_load_n(&rt->state, __ATOMIC_SEQ_CST) == BT_RT_STOPPING;
}

static bool bp_mute(bt_runtime_t *rt, bt_actor_t *a)
{
    if (bp_must_run(rt, a))
        return false;
    /* Once muted, a may be unmuted, run and freed by other threads before we
     * are done here: a reference of our own keeps it. */
    bt_slot_t *own = own_slot(a);
    ref_hold(own, 1);
    uint32_t expect = BT_BP_MARK_OUT; /* our marker is out; no waiters; not muted */
    if (!__atomic_compare_exchange_n(&a->bp, &expect, BT_BP_MARK_OUT | BT_BP_MUTED, false,
                                     __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
        ref_release(rt, own, 1);
        return false;
    }
    __atomic_fetch_add(&rt->mutes, 1, __ATOMIC_RELAXED);
    /* Against bt_stop() and bt__control(), which set their request and then
     * unmute: one of us sees the other. */
    if (bp_must_run(rt, a))
        bp_unmute(rt, a);
    ref_release(rt, own, 1);
    return true;
}

static inline bt_ref_t current_sender(bt_runtime_t *rt)
{
    bt_ctx_t *ctx = bt__tls_ctx;
    return (ctx != NULL && ctx->rt == rt) ? bt__actor_ref(ctx->actor) : BT_REF_NONE;
}

/* ----------------------------------------------------------------- outbox
 *
 * Fan-in is bound by the two cache lines every sender writes: the
 * receiver's slot word (each message carries a reference) and its mailbox
 * head. A dispatch that sends a burst to one receiver pays for them once a
 * chain instead of once a message. The first send to a receiver in a
 * dispatch goes out at once, as it always did, so request/reply and
 * ping-pong wait for nothing; the later ones are linked into a chain that
 * holds one reference and is pushed with one exchange when it is
 * BT_OUTBOX_CHAIN long or when the dispatch returns. Per-sender order
 * holds: a chain is pushed after the sends before it, and every other push
 * from the dispatch (a runtime message, a stop, a control request) pushes
 * the outbox first. So a message sent from a dispatch reaches its receiver
 * at the latest when the dispatch returns. Bounded receivers get no chains:
 * their capacity is checked message by message. */

/* Pushes wy's chain, if any. */
static void outbox_push_way(bt_runtime_t *rt, bt_outbox_way_t *wy)
{
    bt_msg_t *first = wy->first;
    if (first == NULL)
        return;
    wy->first = NULL;
    bt_slot_t *s = wy->slot;
    uint32_t n = wy->count;
    if (n > 1)
        ref_hold(s, n - 1); /* a reference per message */
    uint32_t depth = wy->depth + n;
    if (depth > __atomic_load_n(&s->depth_hwm, __ATOMIC_RELAXED))
        __atomic_store_n(&s->depth_hwm, depth, __ATOMIC_RELAXED);
    bt_actor_t *a = s->actor;
    if (bt__mbox_push_chain(&a->mbox, first, wy->last))
        bt__schedule_hot(rt, a);
}

static void outbox_flush(bt_worker_t *w)
{
    bt_outbox_t *ob = &w->outbox;
    for (uint32_t i = 0; i < ob->used; i++) {
        outbox_push_way(w->rt, &ob->way[i]);
        ob->way[i].to = BT_REF_NONE;
    }
    ob->used = 0;
}

/* Pushes what the current dispatch holds back, before a push that must
 * come after it. */
static inline void outbox_drain(bt_runtime_t *rt)
{
    bt_worker_t *w = bt__tls_worker;
    if (w != NULL && w->outbox.used != 0 && w->rt == rt)
        outbox_flush(w);
}

static inline bt_outbox_way_t *outbox_find(bt_outbox_t *ob, bt_ref_t to)
{
    for (uint32_t i = 0; i < ob->used; i++)
        if (ob->way[i].to == to)
            return &ob->way[i];
    return NULL;
}

/* Remembers that this dispatch sent to `to`, so the next send to it starts a
 * chain. With every way taken, the oldest is pushed and reused. */
static void outbox_note(bt_worker_t *w, bt_ref_t to)
{
    bt_outbox_t *ob = &w->outbox;
    if (ob->used == BT_OUTBOX_WAYS) {
        outbox_push_way(w->rt, &ob->way[0]);
        memmove(&ob->way[0], &ob->way[1], (BT_OUTBOX_WAYS - 1) * sizeof(ob->way[0]));
        ob->used--;
    }
    ob->way[ob->used++] = (bt_outbox_way_t){.to = to};
}

static inline void outbox_append(bt_runtime_t *rt, bt_outbox_way_t *wy, bt_msg_t *msg)
{
    BT_TSAN_RELEASE(msg);
    ck_pr_store_ptr(&wy->last->bt_link_, msg);
    wy->last = msg;
    if (++wy->count == BT_OUTBOX_CHAIN)
        outbox_push_way(rt, wy);
}

/* ------------------------------------------------------------------ send */

static int send_msg(bt_runtime_t *rt, bt_ref_t to, bt_msg_t *msg, bool user, bt_ref_t from)
{
    bt_worker_t *w = bt__tls_worker;
    bt_outbox_way_t *wy = NULL;
    bool batching = w != NULL && w->outbox.on && w->rt == rt;
    if (batching) {
        if (!user) {
            outbox_flush(w);
            batching = false;
        } else if ((wy = outbox_find(&w->outbox, to)) != NULL && wy->first != NULL) {
            msg->from = from;
            count_sent(rt);
            outbox_append(rt, wy, msg);
            return BT_OK;
        }
    }
    bt_slot_t *s;
    uint32_t depth;
    int rc = ref_acquire(rt, to, user, &s, &depth);
    if (rc != BT_OK) {
        if (rc == BT_ENOACTOR)
            bt__dead_letter(rt, to, from, msg->id);
        return rc;
    }
    if (depth > __atomic_load_n(&s->depth_hwm, __ATOMIC_RELAXED))
        __atomic_store_n(&s->depth_hwm, depth, __ATOMIC_RELAXED);
    msg->from = from;
    count_sent(rt);
    bt_actor_t *a = s->actor;
    if (__builtin_expect(!user, 0) && bp_is_waiter(msg->id))
        bp_add_waiter(rt, a);
    /* Before the push, while our reference keeps a alive. */
    if (__builtin_expect(depth >= rt->cfg.backpressure / 4, 0))
        bp_deep_send(rt, s, a, depth);
    if (batching) {
        if (wy == NULL) {
            outbox_note(w, to);
        } else if (__atomic_load_n(&s->capacity, __ATOMIC_RELAXED) == 0 &&
                   depth < BT_SLOT_REFS - BT_OUTBOX_CHAIN - 2) {
            /* A second send in this dispatch: start a chain, which keeps
             * the reference we just took. */
            BT_TSAN_RELEASE(msg);
            wy->slot = s;
            wy->first = wy->last = msg;
            wy->count = 1;
            wy->depth = depth;
            return BT_OK;
        }
    }
    deliver(rt, a, msg);
    return BT_OK;
}

int bt_send(bt_runtime_t *rt, bt_ref_t to, bt_msg_t *msg)
{
    if (rt == NULL || msg == NULL || msg->id >= BT_MSG_SYSTEM_BASE || msg->size == 0)
        return BT_EINVAL;
    return send_msg(rt, to, msg, true, current_sender(rt));
}

int bt__send_from(bt_runtime_t *rt, bt_ref_t to, bt_msg_t *msg, bt_ref_t from)
{
    return send_msg(rt, to, msg, true, from);
}

int bt__send_sys(bt_runtime_t *rt, bt_ref_t to, bt_msg_t *msg, bt_ref_t from)
{
    return send_msg(rt, to, msg, false, from);
}

int bt_stop(bt_runtime_t *rt, bt_ref_t actor)
{
    if (rt == NULL)
        return BT_EINVAL;
    outbox_drain(rt); /* the stop comes after what we sent before it */
    bt_slot_t *s;
    uint32_t depth;
    int rc = ref_acquire(rt, actor, false, &s, &depth);
    if (rc != BT_OK)
        return rc;
    bt_actor_t *a = s->actor;
    /* stop_requested: 0 = none yet, 1 = a stop is queued, 2 = a stop was
     * consumed (the actor restarted since). Only the first request uses the
     * embedded node, so it is never in the mailbox twice nor re-pushed
     * while it may still be the mailbox's tail. */
    uint32_t st = __atomic_load_n(&a->stop_requested, __ATOMIC_ACQUIRE);
    for (;;) {
        if (st == 1) {
            ref_release(rt, s, 1); /* already queued */
            return BT_OK;
        }
        if (__atomic_compare_exchange_n(&a->stop_requested, &st, 1, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            break;
    }
    bt_msg_t *node = &a->stop_node;
    if (st == 2 && (node = bt_msg_new(sizeof(bt_msg_t), BT_SYS_STOP)) == NULL) {
        __atomic_store_n(&a->stop_requested, 2, __ATOMIC_RELEASE);
        ref_release(rt, s, 1);
        return BT_ENOMEM;
    }
    /* A muted actor must see the stop now, not when its receiver gets to
     * the marker: unmute it once the stop is queued (before, it could queue
     * more of its own messages ahead of the stop). The push hands our
     * reference to the node, so take one more to keep a alive until then;
     * with stop_requested set above, the unmute pairs with bp_mute(). */
    ref_hold(s, 1);
    deliver(rt, a, node);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    bp_unmute(rt, a);
    ref_release(rt, s, 1);
    return BT_OK;
}

int bt__control(bt_runtime_t *rt, bt_ref_t actor, uint32_t bits)
{
    outbox_drain(rt);
    bt_msg_t *nudge = bt_msg_new(sizeof(bt_msg_t), BT_SYS_CONTROL);
    if (nudge == NULL)
        return BT_ENOMEM;
    bt_slot_t *s;
    uint32_t depth;
    int rc = ref_acquire(rt, actor, false, &s, &depth);
    if (rc != BT_OK) {
        bt_msg_free(nudge);
        return rc;
    }
    bt_actor_t *a = s->actor;
    /* Seq-cst, with the exchange below, against park_actor(): either the
     * parked actor sees our bits, or we see it parked and schedule it. */
    __atomic_fetch_or(&a->control, bits, __ATOMIC_SEQ_CST);
    if (__atomic_exchange_n(&a->parked, 0, __ATOMIC_SEQ_CST) == 1 ||
        (__atomic_fetch_and(&a->bp, ~BT_BP_MUTED, __ATOMIC_SEQ_CST) & BT_BP_MUTED)) {
        /* It was parked (for its supervisor) or muted (backpressure),
         * holding its run token: the token is ours now. */
        bt__schedule(rt, a);
        ref_release(rt, s, 1);
        bt_msg_free(nudge);
        return BT_OK;
    }
    /* Neither: running (it checks after the current dispatch), queued,
     * or idle; the nudge wakes an idle one. The reference goes with it. */
    nudge->from = BT_REF_NONE;
    deliver(rt, a, nudge);
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
    return bt__actor_ref(ctx->actor);
}

bt_runtime_t *bt_ctx_runtime(const bt_ctx_t *ctx)
{
    return ctx->rt;
}

void bt_stop_self(bt_ctx_t *ctx)
{
    ctx->stop = true;
}

int bt__actor_assert_failed(bt_ctx_t *ctx, const char *cond, const char *file, int line)
{
    fprintf(stderr, "baton: actor %s (%#llx) failed assertion %s at %s:%d\n",
            ctx->actor->type->name ? ctx->actor->type->name : "?",
            (unsigned long long)bt__actor_ref(ctx->actor), cond, file, line);
    return BT_EFAILED;
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

/* ------------------------------------------------------ monitors, links */

static int send_watch(bt_runtime_t *rt, bt_ref_t to, uint32_t id, bt_ref_t watcher,
                      uint64_t monitor)
{
    bt_watch_msg_t *m = BT_MSG_NEW(bt_watch_msg_t, id);
    if (m == NULL)
        return BT_ENOMEM;
    m->watcher = watcher;
    m->id = monitor;
    int rc = bt__send_sys(rt, to, &m->hdr, watcher);
    if (rc != BT_OK)
        bt_msg_free(&m->hdr);
    return rc;
}

/* Tells `to` that `who` stopped: a DOWN for a monitor, an exit signal for
 * a link. */
static void send_down(bt_runtime_t *rt, bt_ref_t to, uint32_t id, bt_ref_t who, int reason,
                      uint64_t monitor)
{
    bt_down_msg_t *m = BT_MSG_NEW(bt_down_msg_t, id);
    if (m == NULL)
        return; /* out of memory: the watcher misses this notice */
    m->actor = who;
    m->reason = reason;
    m->monitor = monitor;
    if (bt__send_sys(rt, to, &m->hdr, who) != BT_OK)
        bt_msg_free(&m->hdr);
}

int bt_monitor(bt_ctx_t *ctx, bt_ref_t target, uint64_t *monitor_id)
{
    bt_actor_ext_t *ext = bt__actor_ext(ctx->actor);
    if (ext == NULL)
        return BT_ENOMEM;
    uint64_t id = ++ext->next_monitor;
    if (monitor_id != NULL)
        *monitor_id = id;
    int rc = send_watch(ctx->rt, target, BT_SYS_MONITOR, bt_self(ctx), id);
    if (rc == BT_ENOACTOR) {
        send_down(ctx->rt, bt_self(ctx), BT_MSG_DOWN, target, BT_ENOACTOR, id);
        return BT_OK;
    }
    return rc;
}

static int watch_add(bt_watch_t **list, bt_ref_t ref, uint64_t id)
{
    bt_watch_t *w = bt_alloc(sizeof(*w));
    if (w == NULL)
        return BT_ENOMEM;
    w->ref = ref;
    w->id = id;
    w->next = *list;
    *list = w;
    return BT_OK;
}

static bool watch_remove(bt_watch_t **list, bt_ref_t ref)
{
    for (bt_watch_t **p = list; *p != NULL; p = &(*p)->next) {
        if ((*p)->ref == ref) {
            bt_watch_t *w = *p;
            *p = w->next;
            bt_free(w, sizeof(*w));
            return true;
        }
    }
    return false;
}

int bt_link(bt_ctx_t *ctx, bt_ref_t target)
{
    bt_actor_ext_t *ext = bt__actor_ext(ctx->actor);
    if (ext == NULL || watch_add(&ext->links, target, 0) != BT_OK)
        return BT_ENOMEM;
    int rc = send_watch(ctx->rt, target, BT_SYS_LINK, bt_self(ctx), 0);
    if (rc == BT_ENOACTOR) {
        /* As if it had just failed: the exit signal comes to us. */
        send_down(ctx->rt, bt_self(ctx), BT_SYS_EXIT_SIGNAL, target, BT_ENOACTOR, 0);
        return BT_OK;
    }
    if (rc != BT_OK)
        watch_remove(&ext->links, target);
    return rc;
}

int bt_unlink(bt_ctx_t *ctx, bt_ref_t target)
{
    if (ctx->actor->ext != NULL)
        watch_remove(&ctx->actor->ext->links, target);
    int rc = send_watch(ctx->rt, target, BT_SYS_UNLINK, bt_self(ctx), 0);
    return rc == BT_ENOACTOR ? BT_OK : rc;
}

void bt_trap_exits(bt_ctx_t *ctx, bool on)
{
    bt_actor_ext_t *ext = bt__actor_ext(ctx->actor);
    if (ext != NULL)
        ext->trap_exits = on;
}

/* At termination: tell monitors and links, release names. */
static void notify_watchers(bt_actor_t *a)
{
    bt_actor_ext_t *ext = a->ext;
    if (ext == NULL)
        return;
    bt_ref_t self = bt__actor_ref(a);
    while (ext->monitors != NULL) {
        bt_watch_t *w = ext->monitors;
        ext->monitors = w->next;
        send_down(a->rt, w->ref, BT_MSG_DOWN, self, a->exit_reason, w->id);
        bt_free(w, sizeof(*w));
    }
    while (ext->links != NULL) {
        bt_watch_t *w = ext->links;
        ext->links = w->next;
        send_down(a->rt, w->ref, BT_SYS_EXIT_SIGNAL, self, a->exit_reason, 0);
        bt_free(w, sizeof(*w));
    }
    while (ext->names != NULL) {
        bt_name_t *n = ext->names;
        ext->names = n->next;
        (void)bt__registry_remove(a->rt->registry, n->name, self);
        bt_free(n, n->size);
    }
    bt__asks_clear(a);
}

/* ------------------------------------------------------------------ turns */

static inline void count_processed(bt_worker_t *w, bt_actor_t *a, uint32_t n)
{
    if (n == 0)
        return;
    __atomic_store_n(&a->processed, a->processed + n, __ATOMIC_RELAXED);
    if (w != NULL)
        __atomic_store_n(&w->processed, w->processed + n, __ATOMIC_RELAXED);
    else
        __atomic_fetch_add(&a->rt->ext_processed, n, __ATOMIC_RELAXED);
}

/* A runtime message reaching an actor that has stopped: answer what
 * expects an answer, so nobody waits forever. */
static void dead_sys_message(bt_actor_t *a, bt_msg_t *m)
{
    bt_runtime_t *rt = a->rt;
    bt_ref_t self = bt__actor_ref(a);
    switch (m->id) {
    case BT_SYS_MONITOR:
        send_down(rt, m->from, BT_MSG_DOWN, self, BT_ENOACTOR, ((bt_watch_msg_t *)m)->id);
        break;
    case BT_SYS_LINK:
        send_down(rt, m->from, BT_SYS_EXIT_SIGNAL, self, BT_ENOACTOR, 0);
        break;
    case BT_SYS_NAMED:
        (void)bt__registry_remove(rt->registry, ((bt_named_msg_t *)m)->name, self);
        break;
    case BT_SYS_CHILD_EXIT:
        /* A child waits for this dead supervisor's decision: stop it. */
        bp_waiter_done(a);
        (void)bt__control(rt, ((bt_child_exit_msg_t *)m)->child, BT_CTL_STOP);
        break;
    case BT_SYS_BP_MARK:
        bp_marker_done(a, m); /* the sender must not stay muted */
        break;
    default:
        break;
    }
}

/* A turn of an actor that has terminated: its mailbox only drains. Called
 * with the run token. refs: references this thread already owns and gives
 * back at the end. */
static void drain_dead(bt_actor_t *a, uint32_t refs)
{
    bt_runtime_t *rt = a->rt;
    bt_slot_t *s = own_slot(a);
    bt_ref_t self = bt__actor_ref(a);
    for (;;) {
        bt_msg_t *m;
        while ((m = bt__mbox_pop(&a->mbox)) != NULL) {
            refs++;
            if (m->id < BT_MSG_SYSTEM_BASE || m->id == BT_MSG_DEAD_LETTER)
                bt__dead_letter(rt, self, m->from, m->id);
            else
                dead_sys_message(a, m);
        }
        if (bt__mbox_mark_empty(&a->mbox))
            break;
        /* A producer is between its exchange and its link: wait for it. */
        ck_pr_stall();
    }
    ref_release(rt, s, refs);
}

/* Stops the actor for good: cleanup, notices, then no new references, then
 * drain. The caller holds the run token and `unreleased` references for
 * messages it has already handled. */
static void terminate(bt_worker_t *w, bt_actor_t *a, uint32_t unreleased)
{
    if (!(a->flags & BT_AF_CLEANED) && a->type->cleanup != NULL) {
        bt_ctx_t ctx = {.rt = a->rt, .actor = a, .stop = false};
        bt_ctx_t *saved = bt__tls_ctx;
        bt__tls_ctx = &ctx;
        a->type->cleanup(&ctx, a->state);
        bt__tls_ctx = saved;
    }
    a->flags |= BT_AF_DEAD | BT_AF_CLEANED;
    notify_watchers(a);
    bt_slot_t *s = own_slot(a);
    /* Clear ALIVE and give back the handled messages' references; keep the
     * owner reference until the drain is done, so the actor cannot be
     * freed under us. */
    uint64_t old = __atomic_fetch_sub(&s->word, BT_SLOT_ALIVE + unreleased, __ATOMIC_ACQ_REL);
    BT_ASSERT((old & BT_SLOT_ALIVE) != 0);
    drain_dead(a, 1);
}

/* Parks an actor that waits for its supervisor, keeping its run token:
 * pushes do not schedule it, so its mailbox keeps filling in order. */
static void park_actor(bt_actor_t *a)
{
    /* Once parked, a may be unparked, run and freed by other threads before
     * we are done here: a reference of our own keeps it. */
    bt_runtime_t *rt = a->rt;
    bt_slot_t *own = own_slot(a);
    ref_hold(own, 1);
    /* Seq-cst against bt__control(): see there. */
    __atomic_store_n(&a->parked, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&a->control, __ATOMIC_SEQ_CST) != 0 &&
        __atomic_exchange_n(&a->parked, 0, __ATOMIC_SEQ_CST) == 1)
        bt__schedule(rt, a); /* the decision came already */
    ref_release(rt, own, 1);
}

/* The actor has stopped running (failure, stop request or stop_self). A
 * supervised child asks its supervisor and parks; others terminate. */
static void exit_or_ask_supervisor(bt_worker_t *w, bt_actor_t *a, uint32_t unreleased)
{
    bt_runtime_t *rt = a->rt;
    bt_actor_ext_t *ext = a->ext;
    if (ext != NULL && ext->sup != BT_REF_NONE &&
        __atomic_load_n(&rt->state, __ATOMIC_ACQUIRE) != BT_RT_STOPPING) {
        bt_child_exit_msg_t *m = BT_MSG_NEW(bt_child_exit_msg_t, BT_SYS_CHILD_EXIT);
        if (m != NULL) {
            m->child = bt__actor_ref(a);
            m->index = ext->sup_index;
            m->reason = a->exit_reason;
            if (bt__send_sys(rt, ext->sup, &m->hdr, m->child) == BT_OK) {
                ref_release(rt, own_slot(a), unreleased);
                park_actor(a);
                return;
            }
            bt_msg_free(&m->hdr);
        }
    }
    terminate(w, a, unreleased);
}

/* In-place restart: cleanup, fresh state, init again; mailbox, reference,
 * links, monitors and names are kept. Returns false if init failed (the
 * actor has then exited again). */
static bool restart_in_place(bt_worker_t *w, bt_actor_t *a)
{
    if (!(a->flags & BT_AF_CLEANED) && a->type->cleanup != NULL) {
        bt_ctx_t ctx = {.rt = a->rt, .actor = a, .stop = false};
        bt__tls_ctx = &ctx;
        a->type->cleanup(&ctx, a->state);
        bt__tls_ctx = NULL;
    }
    bt__asks_clear(a);
    memset(a->state, 0, a->alloc_size - sizeof(bt_actor_t));
    a->flags &= ~BT_AF_CLEANED;
    a->exit_reason = BT_OK;
    __atomic_fetch_add(&a->rt->restarts, 1, __ATOMIC_RELAXED);
    int rc = run_init(a, a->ext != NULL ? a->ext->restart_arg : NULL);
    if (rc != BT_OK) {
        a->exit_reason = rc;
        a->flags |= BT_AF_CLEANED;
        exit_or_ask_supervisor(w, a, 0);
        return false;
    }
    return true;
}

/* Acts on control bits. Returns true if the turn goes on. */
static bool handle_control(bt_worker_t *w, bt_actor_t *a, uint32_t unreleased)
{
    uint32_t bits = __atomic_exchange_n(&a->control, 0, __ATOMIC_ACQ_REL);
    if (bits & BT_CTL_STOP) {
        terminate(w, a, unreleased);
        return false;
    }
    if (bits & BT_CTL_RESTART) {
        ref_release(a->rt, own_slot(a), unreleased);
        return restart_in_place(w, a);
    }
    ref_release(a->rt, own_slot(a), unreleased);
    return true;
}

/* A runtime message in a live actor's turn. Returns the message to pass to
 * dispatch (possibly rewritten), or NULL if it was handled here. */
static bt_msg_t *live_sys_message(bt_actor_t *a, bt_msg_t *m, bool *stop)
{
    bt_actor_ext_t *ext;
    switch (m->id) {
    case BT_SYS_STOP:
        /* The request is consumed; the embedded node may now be the
         * mailbox's tail, so a later request (after a restart) must use an
         * allocated one. */
        __atomic_store_n(&a->stop_requested, 2, __ATOMIC_RELEASE);
        *stop = true;
        return NULL;
    case BT_SYS_CONTROL:
        return NULL; /* the control word is read around every dispatch */
    case BT_SYS_BP_MARK:
        bp_marker_done(a, m);
        return NULL;
    case BT_SYS_CHILD_EXIT:
        bp_waiter_done(a);
        return m; /* for a supervisor's dispatch */
    case BT_SYS_MONITOR:
    case BT_SYS_LINK: {
        bt_watch_msg_t *wm = (bt_watch_msg_t *)m;
        ext = bt__actor_ext(a);
        if (ext == NULL || watch_add(m->id == BT_SYS_MONITOR ? &ext->monitors : &ext->links,
                                     wm->watcher, wm->id) != BT_OK) {
            /* Out of memory: tell the watcher now rather than never. */
            send_down(a->rt, wm->watcher,
                      m->id == BT_SYS_MONITOR ? BT_MSG_DOWN : BT_SYS_EXIT_SIGNAL, bt__actor_ref(a),
                      BT_ENOMEM, wm->id);
        }
        return NULL;
    }
    case BT_SYS_UNLINK:
        if (a->ext != NULL)
            watch_remove(&a->ext->links, ((bt_watch_msg_t *)m)->watcher);
        return NULL;
    case BT_SYS_EXIT_SIGNAL: {
        bt_down_msg_t *d = (bt_down_msg_t *)m;
        ext = a->ext;
        bool linked = ext != NULL && watch_remove(&ext->links, d->actor);
        if (!linked && d->reason != BT_ENOACTOR)
            return NULL; /* unlinked meanwhile */
        if (ext != NULL && ext->trap_exits) {
            m->id = BT_MSG_EXIT;
            return m;
        }
        if (d->reason != BT_OK) {
            a->exit_reason = BT_ELINKED;
            *stop = true;
        }
        return NULL;
    }
    case BT_SYS_ASK_TIMEOUT:
        if (!bt__ask_settle_timeout(a, m->corr))
            return NULL; /* the reply won */
        m->id = BT_MSG_TIMEOUT;
        return m;
    case BT_SYS_NAMED: {
        bt_named_msg_t *nm = (bt_named_msg_t *)m;
        size_t len = strlen(nm->name) + 1;
        ext = bt__actor_ext(a);
        bt_name_t *n = ext != NULL ? bt_alloc(sizeof(*n) + len) : NULL;
        if (n == NULL) {
            /* Cannot remember it: release it now rather than leak it. */
            (void)bt__registry_remove(a->rt->registry, nm->name, bt__actor_ref(a));
            return NULL;
        }
        n->size = sizeof(*n) + len;
        memcpy(n->name, nm->name, len);
        n->next = ext->names;
        ext->names = n;
        return NULL;
    }
    default:
        return m; /* public runtime messages: dispatched */
    }
}

void bt__actor_turn(bt_worker_t *w, bt_actor_t *a)
{
    if (a->flags & BT_AF_DEAD) {
        drain_dead(a, 0);
        return;
    }
    if (__atomic_load_n(&a->control, __ATOMIC_RELAXED) != 0 && !handle_control(w, a, 0))
        return;
    bt_runtime_t *rt = a->rt;
    uint32_t batch = rt->cfg.batch;
    bool bounded = a->capacity != 0;
    bt_ctx_t ctx = {.rt = rt, .actor = a, .stop = false};
    bt__tls_ctx = &ctx;

    uint32_t handled = 0, unreleased = 0, dispatched = 0;
    bool stop = false, control = false;
    bt_outbox_t *ob = w != NULL && !w->pinned ? &w->outbox : NULL;
    bt_msg_t *m;
    while (handled < batch && (m = bt__mbox_pop(&a->mbox)) != NULL) {
        handled++;
        unreleased++;
        if (__builtin_expect(m->id >= BT_MSG_SYSTEM_BASE, 0)) {
            m = live_sys_message(a, m, &stop);
        } else if (__builtin_expect(m->corr & BT_CORR_REPLY, 0) &&
                   !(a->flags & BT_AF_RAW_REPLIES) && !bt__ask_settle_reply(a, m->corr)) {
            __atomic_fetch_add(&rt->late_replies, 1, __ATOMIC_RELAXED);
            m = NULL; /* late: dropped, never taken for the answer */
        }
        if (m != NULL) {
            dispatched++;
            if (ob != NULL)
                ob->on = true;
            int rc = a->type->dispatch(&ctx, a->state, m);
            if (ob != NULL) {
                ob->on = false;
                if (ob->used != 0)
                    outbox_flush(w);
            }
            if (rc != BT_OK) {
                a->exit_reason = rc > 0 ? BT_EFAILED : rc;
                stop = true;
            }
            stop |= ctx.stop;
        }
        if (bounded) {
            /* A bounded mailbox frees capacity message by message. */
            ref_release(rt, own_slot(a), 1);
            unreleased = 0;
        }
        if (stop || __builtin_expect(ctx.deep, 0))
            break; /* deep: end the turn here, to be muted */
        if (__atomic_load_n(&a->control, __ATOMIC_RELAXED) != 0) {
            control = true;
            break;
        }
    }
    bt__tls_ctx = NULL;
    count_processed(w, a, dispatched);

    if (stop) {
        exit_or_ask_supervisor(w, a, unreleased);
        return;
    }
    if (control) {
        if (handle_control(w, a, unreleased))
            bt__schedule(rt, a); /* restarted: carry on with the queue */
        return;
    }
    /* The owner reference keeps the actor alive through this release. */
    ref_release(rt, own_slot(a), unreleased);
    if (handled == batch || !bt__mbox_mark_empty(&a->mbox)) {
        if (ctx.deep && bp_mute(rt, a))
            return;          /* muted: its receiver reschedules it */
        bt__schedule(rt, a); /* more to do: back of the queue */
    }
}

/* ------------------------------------------------------------- registry */

int bt_register(bt_runtime_t *rt, const char *name, bt_ref_t actor)
{
    if (rt == NULL || name == NULL)
        return BT_EINVAL;
    size_t len = strnlen(name, 256);
    if (len == 0 || len > 255)
        return BT_EINVAL;
    if (!bt_alive(rt, actor))
        return BT_ENOACTOR;
    bt_named_msg_t *m =
        (bt_named_msg_t *)bt_msg_new(sizeof(bt_named_msg_t) + len + 1, BT_SYS_NAMED);
    if (m == NULL)
        return BT_ENOMEM;
    memcpy(m->name, name, len + 1);
    int rc = bt__registry_put(rt->registry, name, actor);
    if (rc != BT_OK) {
        bt_msg_free(&m->hdr);
        return rc;
    }
    /* Tell the actor, so it releases the name when it stops. If it stopped
     * meanwhile, release the name ourselves. */
    rc = bt__send_sys(rt, actor, &m->hdr, BT_REF_NONE);
    if (rc != BT_OK) {
        bt_msg_free(&m->hdr);
        (void)bt__registry_remove(rt->registry, name, actor);
        return rc;
    }
    return BT_OK;
}

int bt_whereis(bt_runtime_t *rt, const char *name, bt_ref_t *out)
{
    if (rt == NULL || name == NULL || out == NULL)
        return BT_EINVAL;
    return bt__registry_get(rt->registry, name, out);
}

int bt_unregister(bt_runtime_t *rt, const char *name)
{
    if (rt == NULL || name == NULL)
        return BT_EINVAL;
    return bt__registry_remove(rt->registry, name, BT_REF_NONE);
}

/* ------------------------------------------------------------- shutdown */

void bt__stop_all(bt_runtime_t *rt)
{
    uint32_t n = __atomic_load_n(&rt->slot_next, __ATOMIC_ACQUIRE);
    /* Newest first, so actors are asked to stop in reverse spawn order. */
    for (uint32_t i = n; i-- > 0;) {
        bt_slot_t *s = slot_at(rt, i);
        uint64_t w = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE);
        if (w & BT_SLOT_ALIVE) {
            bt_ref_t ref = bt__make_ref(i, BT_SLOT_GEN(w));
            /* A parked child would not see a queued stop: control reaches it. */
            (void)bt__control(rt, ref, BT_CTL_STOP);
        }
    }
}
