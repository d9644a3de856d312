/*
 * sched.c: the M:N scheduler: worker threads, their run queues, work
 * stealing, and parking.
 *
 * DESIGN
 * Each worker owns a bounded run queue of runnable actors (after Go's
 * runtime: the owner pushes at the tail and pops at the head; thieves take
 * half from the head with one CAS). A full local queue spills half into
 * the global queue, which also takes actors made runnable by threads that
 * are not workers. An actor made runnable by a send on a worker becomes
 * that worker's `next` actor and runs right after the current turn, with
 * no trip through the queue (Go's runnext; bounded streak), so a ping-pong
 * pair stays on one core, warm in its cache.
 *
 * Waking: a worker that makes work others could take (a second actor in
 * its queue, or anything in the global queue) wakes one idle worker, and
 * only if no worker is already spinning: the spinner will find the work.
 * A spinner that finds work hands the spinning role on by waking another
 * idle worker if work is left over, so parallel work spreads one worker at
 * a time without waking workers for nothing. Before sleeping, a spinner
 * watches the queues for IDLE_SPIN_NS more, which bridges the gap between
 * a request and the next one from outside. A spinner
 * steals a lone queued actor only from a worker that has not finished a
 * turn for a while, so it does not pull apart a pair that ping-pongs.
 *
 * Parking without lost wake-ups: a worker about to sleep registers as idle
 * (nidle), then issues a full fence, then checks every queue once more; a
 * producer pushes, issues a full fence, then reads nidle. One of the two
 * sees the other. The sleep itself is a futex wait on the worker's word,
 * which a waker clears before waking, so a wake before the wait is not
 * lost either.
 *
 * Fairness: an actor runs at most `batch` messages per turn and then goes
 * to the back of the queue; every 61st turn a worker looks at the global
 * queue first, so spilled and external work is not starved by local work.
 */
#define _GNU_SOURCE
#include "core/internal.h"

#include "core/futex.h"
#include "core/tsan.h"

#include <ck_pr.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

__thread bt_worker_t *bt__tls_worker;

#define SPIN_ROUNDS   4
#define STUCK_WAIT_NS 5000 /* a worker this long in one turn loses its lone actor */
/* How long a worker that ran out of work keeps looking before it sleeps.
 * Long enough to bridge the gap between a request/reply pair from outside
 * (a futex sleep and wake-up costs more than this much spinning), short
 * enough that an idle runtime uses no CPU. */
#define IDLE_SPIN_NS 20000

/* ------------------------------------------------------------ run queues */

static inline uint32_t runq_len(bt_worker_t *w)
{
    uint32_t h = __atomic_load_n(&w->rq_head, __ATOMIC_ACQUIRE);
    uint32_t t = __atomic_load_n(&w->rq_tail, __ATOMIC_ACQUIRE);
    return t - h;
}

static void global_push_list(bt_runtime_t *rt, bt_actor_t *first, bt_actor_t *last, uint32_t n)
{
    last->rq_next = NULL;
    pthread_mutex_lock(&rt->gq_mutex);
    if (rt->gq_tail != NULL)
        rt->gq_tail->rq_next = first;
    else
        rt->gq_head = first;
    rt->gq_tail = last;
    __atomic_store_n(&rt->gq_len, rt->gq_len + n, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&rt->gq_mutex);
}

/* Local queue full: move half of it, plus a, to the global queue. Returns
 * false if thieves moved the head meanwhile (the caller retries). */
static bool runq_spill(bt_worker_t *w, bt_actor_t *a, uint32_t h, uint32_t t)
{
    enum { N = BT_RUNQ_SIZE / 2 };
    bt_actor_t *batch[N + 1];
    BT_ASSERT(t - h == BT_RUNQ_SIZE);
    for (uint32_t i = 0; i < N; i++)
        batch[i] = __atomic_load_n(&w->rq_buf[(h + i) % BT_RUNQ_SIZE], __ATOMIC_RELAXED);
    if (!__atomic_compare_exchange_n(&w->rq_head, &h, h + N, false, __ATOMIC_RELEASE,
                                     __ATOMIC_RELAXED))
        return false;
    batch[N] = a;
    for (uint32_t i = 0; i < N; i++)
        batch[i]->rq_next = batch[i + 1];
    global_push_list(w->rt, batch[0], batch[N], N + 1);
    return true;
}

/* Owner only. */
static void runq_push(bt_worker_t *w, bt_actor_t *a)
{
    for (;;) {
        /* Acquire: thieves' reads of the slots we are about to reuse are
         * done once we see their head. */
        uint32_t h = __atomic_load_n(&w->rq_head, __ATOMIC_ACQUIRE);
        uint32_t t = w->rq_tail;
        if (t - h < BT_RUNQ_SIZE) {
            __atomic_store_n(&w->rq_buf[t % BT_RUNQ_SIZE], a, __ATOMIC_RELAXED);
            /* Release: the actor (and what was done to it) is visible to
             * whoever takes it from the queue. */
            __atomic_store_n(&w->rq_tail, t + 1, __ATOMIC_RELEASE);
            return;
        }
        if (runq_spill(w, a, h, t))
            return;
    }
}

/* Owner only. */
static bt_actor_t *runq_pop(bt_worker_t *w)
{
    for (;;) {
        uint32_t h = __atomic_load_n(&w->rq_head, __ATOMIC_ACQUIRE);
        uint32_t t = w->rq_tail;
        if (t == h)
            return NULL;
        bt_actor_t *a = __atomic_load_n(&w->rq_buf[h % BT_RUNQ_SIZE], __ATOMIC_RELAXED);
        /* Release: our read of the slot happens before the owner reuses it
         * (the owner is us, but thieves race for the same head). */
        if (__atomic_compare_exchange_n(&w->rq_head, &h, h + 1, false, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED))
            return a;
    }
}

/* Takes half of victim's queue into out[]. A lone actor is taken only if
 * take_lone. Returns the number taken. Any thread. */
static uint32_t runq_grab(bt_worker_t *v, bt_actor_t **out, bool take_lone)
{
    for (;;) {
        uint32_t h = __atomic_load_n(&v->rq_head, __ATOMIC_ACQUIRE);
        /* Acquire: pairs with the owner's release of tail, so the slots and
         * the actors in them are visible. */
        uint32_t t = __atomic_load_n(&v->rq_tail, __ATOMIC_ACQUIRE);
        uint32_t n = t - h;
        if (n > BT_RUNQ_SIZE)
            continue; /* head and tail read at different times */
        if (n == 0 || (n == 1 && !take_lone))
            return 0;
        n -= n / 2;
        for (uint32_t i = 0; i < n; i++)
            out[i] = __atomic_load_n(&v->rq_buf[(h + i) % BT_RUNQ_SIZE], __ATOMIC_RELAXED);
        if (__atomic_compare_exchange_n(&v->rq_head, &h, h + n, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED))
            return n;
    }
}

/* Moves a batch from the global queue to w's queue; returns one to run. */
static bt_actor_t *global_take(bt_worker_t *w)
{
    bt_runtime_t *rt = w->rt;
    if (__atomic_load_n(&rt->gq_len, __ATOMIC_RELAXED) == 0)
        return NULL;
    pthread_mutex_lock(&rt->gq_mutex);
    uint32_t len = rt->gq_len;
    uint32_t n = len / rt->nworkers + 1;
    if (n > len)
        n = len;
    if (n > BT_RUNQ_SIZE / 2)
        n = BT_RUNQ_SIZE / 2;
    bt_actor_t *first = rt->gq_head;
    bt_actor_t *last = first;
    for (uint32_t i = 1; i < n; i++)
        last = last->rq_next;
    if (n > 0) {
        rt->gq_head = last->rq_next;
        if (rt->gq_head == NULL)
            rt->gq_tail = NULL;
        __atomic_store_n(&rt->gq_len, len - n, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&rt->gq_mutex);
    if (n == 0)
        return NULL;
    bt_actor_t *next = first->rq_next;
    for (uint32_t i = 1; i < n; i++) {
        bt_actor_t *a = next;
        next = a->rq_next;
        runq_push(w, a);
    }
    return first;
}

/* ---------------------------------------------------------------- waking */

/* Wakes an idle worker to spin, if no worker spins already. */
static void wake_spinner(bt_runtime_t *rt)
{
    /* Full fence: our push is ordered before reading the idle count (the
     * other half is in park()). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&rt->nidle, __ATOMIC_RELAXED) == 0 ||
        __atomic_load_n(&rt->nspinning, __ATOMIC_RELAXED) != 0)
        return;
    uint32_t zero = 0;
    if (!__atomic_compare_exchange_n(&rt->nspinning, &zero, 1, false, __ATOMIC_SEQ_CST,
                                     __ATOMIC_RELAXED))
        return; /* someone else just started spinning */
    bt_worker_t *v = NULL;
    pthread_mutex_lock(&rt->idle_mutex);
    if (rt->nidle > 0) {
        v = &rt->workers[rt->idle_stack[rt->nidle - 1]];
        __atomic_store_n(&rt->nidle, rt->nidle - 1, __ATOMIC_RELAXED);
        v->spinning = true; /* read by v after its futex word is cleared */
        __atomic_store_n(&v->futex, 0, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&rt->idle_mutex);
    if (v == NULL) {
        __atomic_fetch_sub(&rt->nspinning, 1, __ATOMIC_SEQ_CST);
        return;
    }
    bt__futex_wake(&v->futex);
}

static void wake_all(bt_runtime_t *rt)
{
    pthread_mutex_lock(&rt->idle_mutex);
    while (rt->nidle > 0) {
        bt_worker_t *v = &rt->workers[rt->idle_stack[rt->nidle - 1]];
        __atomic_store_n(&rt->nidle, rt->nidle - 1, __ATOMIC_RELAXED);
        __atomic_store_n(&v->futex, 0, __ATOMIC_RELEASE);
        bt__futex_wake(&v->futex);
    }
    pthread_mutex_unlock(&rt->idle_mutex);
}

static void pinned_wake(bt_pinned_t *p);

#define NEXT_STREAK 64

void bt__schedule_hot(bt_runtime_t *rt, bt_actor_t *a)
{
    bt_worker_t *w = bt__tls_worker;
    if (a->pinned == NULL && w != NULL && w->rt == rt && !w->pinned) {
        /* The newest runnable actor runs next (it is likely the one the
         * current actor is talking to, warm in this core's cache); one it
         * displaces goes to the queue, where others may steal it. */
        bt_actor_t *old = w->next;
        w->next = a;
        if (old != NULL) {
            runq_push(w, old);
            wake_spinner(rt); /* two runnable here: another worker may help */
        }
        return;
    }
    bt__schedule(rt, a);
}

/* After a turn: the actor to run next without the run queue, if any. Every
 * NEXT_STREAK hand-offs, and on the turns when the global queue is due a
 * look, it goes through the queue instead, so a pair that ping-pongs
 * cannot starve the rest. */
static bt_actor_t *take_next(bt_worker_t *w)
{
    bt_actor_t *a = w->next;
    if (a == NULL) {
        w->next_streak = 0;
        return NULL;
    }
    w->next = NULL;
    if (++w->next_streak < NEXT_STREAK && w->ticks % 61 != 0)
        return a;
    w->next_streak = 0;
    runq_push(w, a);
    return NULL;
}

void bt__schedule_away(bt_runtime_t *rt, bt_actor_t *a)
{
    if (__builtin_expect(a->pinned != NULL, 0)) {
        pinned_wake(a->pinned);
        return;
    }
    global_push_list(rt, a, a, 1);
    wake_spinner(rt);
}

void bt__schedule(bt_runtime_t *rt, bt_actor_t *a)
{
    bt_worker_t *w = bt__tls_worker;
    if (a->pinned == NULL && w != NULL && w->rt == rt) {
        /* Sender-local: the actor runs on this worker unless stolen. Wake
         * help only if this worker now has more than it can run at once. */
        bool busy = runq_len(w) > 0;
        runq_push(w, a);
        if (busy)
            wake_spinner(rt);
        return;
    }
    bt__schedule_away(rt, a); /* pinned, or from outside the workers */
}

/* --------------------------------------------------------------- finding */

static inline uint32_t next_rand(bt_worker_t *w)
{
    /* xorshift64: victim order only. */
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w->rng = x;
    return (uint32_t)(x >> 32);
}

static bool work_visible(bt_runtime_t *rt);

static void stop_spinning(bt_worker_t *w)
{
    if (!w->spinning)
        return;
    w->spinning = false;
    /* The last spinner to find work hands the role on, but only if work is
     * left for another worker to find: waking one for nothing would only
     * take a core from the threads doing the work. */
    if (__atomic_sub_fetch(&w->rt->nspinning, 1, __ATOMIC_SEQ_CST) == 0 && work_visible(w->rt))
        wake_spinner(w->rt);
}

/* Tries to steal from every other worker, SPIN_ROUNDS times; on the last
 * round a lone actor is taken from a worker stuck in one turn. */
static bt_actor_t *steal(bt_worker_t *w)
{
    bt_runtime_t *rt = w->rt;
    uint32_t n = rt->nworkers;
    if (n < 2)
        return NULL;
    bt_actor_t *got[BT_RUNQ_SIZE / 2];
    uint64_t ticks[256];
    uint64_t start = 0;
    for (uint32_t round = 0; round < SPIN_ROUNDS; round++) {
        bool last = round == SPIN_ROUNDS - 1;
        if (last) {
            /* Give a busy owner time to finish its turn before judging it
             * stuck; keep an eye on the global queue meanwhile. */
            start = bt__clock_ns();
            for (uint32_t k = 1; (k & 31) != 0 || bt__clock_ns() - start < STUCK_WAIT_NS; k++) {
                if (__atomic_load_n(&rt->gq_len, __ATOMIC_RELAXED) != 0 ||
                    __atomic_load_n(&rt->exiting, __ATOMIC_RELAXED))
                    return NULL;
                ck_pr_stall();
            }
        }
        uint32_t off = next_rand(w) % n;
        for (uint32_t i = 0; i < n; i++) {
            bt_worker_t *v = &rt->workers[(off + i) % n];
            if (v == w)
                continue;
            uint64_t vt = __atomic_load_n(&v->ticks, __ATOMIC_RELAXED);
            if (round == 0)
                ticks[v->index] = vt;
            bool lone = last && ticks[v->index] == vt;
            uint32_t k = runq_grab(v, got, lone);
            if (k == 0)
                continue;
            for (uint32_t j = 1; j < k; j++)
                runq_push(w, got[j]);
            return got[0];
        }
    }
    return NULL;
}

/* The last stretch before sleeping: watch the global queue and the other
 * workers' queues for IDLE_SPIN_NS. */
static bt_actor_t *idle_spin(bt_worker_t *w)
{
    bt_runtime_t *rt = w->rt;
    uint64_t start = bt__clock_ns();
    for (uint32_t k = 1;; k++) {
        if (__atomic_load_n(&rt->gq_len, __ATOMIC_RELAXED) != 0)
            return global_take(w);
        if (__atomic_load_n(&rt->exiting, __ATOMIC_RELAXED))
            return NULL;
        if ((k & 31) == 0) {
            if (bt__clock_ns() - start >= IDLE_SPIN_NS)
                return NULL;
            /* Work a busy worker could share (two or more queued). */
            for (uint32_t i = 0; i < rt->nworkers; i++)
                if (&rt->workers[i] != w && runq_len(&rt->workers[i]) > 1)
                    return steal(w);
        }
        ck_pr_stall();
    }
}

/* Whether any queue holds work. Used by a parking worker after its fence,
 * and by a spinner deciding whether to hand its role on. */
static bool work_visible(bt_runtime_t *rt)
{
    if (__atomic_load_n(&rt->gq_len, __ATOMIC_RELAXED) != 0)
        return true;
    for (uint32_t i = 0; i < rt->nworkers; i++)
        if (runq_len(&rt->workers[i]) != 0)
            return true;
    return false;
}

static void park(bt_worker_t *w)
{
    bt_runtime_t *rt = w->rt;
    /* Stop spinning before the last look at the queues: a producer that saw
     * us spinning did not wake anyone, counting on that look. */
    if (w->spinning) {
        w->spinning = false;
        __atomic_fetch_sub(&rt->nspinning, 1, __ATOMIC_SEQ_CST);
    }
    pthread_mutex_lock(&rt->idle_mutex);
    __atomic_store_n(&w->futex, 1, __ATOMIC_RELAXED);
    rt->idle_stack[rt->nidle] = w->index;
    __atomic_store_n(&rt->nidle, rt->nidle + 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&rt->idle_mutex);
    /* Full fence: registering as idle is ordered before the last look at
     * the queues (the other half is in wake_spinner()). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (work_visible(rt) || __atomic_load_n(&rt->exiting, __ATOMIC_ACQUIRE)) {
        /* Take ourselves off the idle stack, unless a waker already did. */
        pthread_mutex_lock(&rt->idle_mutex);
        for (uint32_t i = 0; i < rt->nidle; i++) {
            if (rt->idle_stack[i] == w->index) {
                rt->idle_stack[i] = rt->idle_stack[rt->nidle - 1];
                __atomic_store_n(&rt->nidle, rt->nidle - 1, __ATOMIC_RELAXED);
                __atomic_store_n(&w->futex, 0, __ATOMIC_RELAXED);
                break;
            }
        }
        pthread_mutex_unlock(&rt->idle_mutex);
    }
    while (__atomic_load_n(&w->futex, __ATOMIC_ACQUIRE) == 1)
        bt__futex_wait(&w->futex, 1, NULL);
    /* A waker may have made us the spinner; it set w->spinning under the
     * idle mutex before clearing our word (acquire above). */
}

static bt_actor_t *find_work(bt_worker_t *w)
{
    bt_runtime_t *rt = w->rt;
    for (;;) {
        bt_actor_t *a = NULL;
        if (w->ticks % 61 == 0)
            a = global_take(w);
        if (a == NULL)
            a = runq_pop(w);
        if (a == NULL)
            a = global_take(w);
        if (a != NULL)
            return a;
        if (__atomic_load_n(&rt->exiting, __ATOMIC_ACQUIRE))
            return NULL;
        /* Spin only while spinners are fewer than half the busy workers, as
         * Go does: more would burn CPU for nothing. */
        if (!w->spinning) {
            uint32_t busy = rt->nworkers - __atomic_load_n(&rt->nidle, __ATOMIC_RELAXED);
            if (2 * __atomic_load_n(&rt->nspinning, __ATOMIC_RELAXED) < busy) {
                w->spinning = true;
                __atomic_fetch_add(&rt->nspinning, 1, __ATOMIC_SEQ_CST);
            }
        }
        if (w->spinning) {
            a = steal(w);
            if (a == NULL)
                a = idle_spin(w);
            if (a != NULL) {
                stop_spinning(w);
                return a;
            }
        }
        park(w);
    }
}

static void *worker_main(void *arg)
{
    bt_worker_t *w = arg;
    bt__tls_worker = w;
    for (;;) {
        bt_actor_t *a = find_work(w);
        if (a == NULL)
            break;
        stop_spinning(w);
        do {
            bt__actor_turn(w, a);
            __atomic_store_n(&w->ticks, w->ticks + 1, __ATOMIC_RELAXED);
        } while ((a = take_next(w)) != NULL);
    }
    if (w->spinning) {
        w->spinning = false;
        __atomic_fetch_sub(&w->rt->nspinning, 1, __ATOMIC_SEQ_CST);
    }
    bt__tls_worker = NULL;
    return NULL;
}

int bt__sched_start(bt_runtime_t *rt)
{
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        bt_worker_t *w = &rt->workers[i];
        int err = pthread_create(&w->thread, NULL, worker_main, w);
        if (err != 0) {
            fprintf(stderr, "baton: cannot start scheduler thread %u: %s\n", i, strerror(err));
            bt__sched_stop(rt);
            return BT_ESYS;
        }
        w->started = true;
    }
    return BT_OK;
}

void bt__sched_stop(bt_runtime_t *rt)
{
    __atomic_store_n(&rt->exiting, 1, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    wake_all(rt);
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        bt_worker_t *w = &rt->workers[i];
        if (w->started) {
            pthread_join(w->thread, NULL);
            w->started = false;
        }
    }
}

/* ------------------------------------------------------ deterministic mode */

void bt__sched_run_inline(bt_runtime_t *rt)
{
    /* The one pseudo-worker runs on the calling thread; actors it makes
     * runnable go to its queue, those made runnable from outside go to the
     * global queue. Order is reproducible: FIFO, no stealing, no threads. */
    bt_worker_t *w = &rt->workers[0];
    bt_worker_t *saved = bt__tls_worker;
    bt__tls_worker = w;
    for (;;) {
        bt_actor_t *a = take_next(w);
        if (a == NULL)
            a = runq_pop(w);
        if (a == NULL)
            a = global_take(w);
        if (a == NULL)
            break;
        bt__actor_turn(w, a);
        w->ticks++;
    }
    bt__tls_worker = saved;
}

/* ---------------------------------------------------------- pinned actors
 *
 * A pinned actor's thread waits on its futex word for the actor to become
 * runnable, runs turns until it is not, and exits once the actor has been
 * freed (done). Scheduling it is storing 1 and waking the thread; the run
 * token protocol guarantees this thread is the only one that runs it. The
 * thread's counters go to the runtime's shared ones: it is not a worker.
 * Finished threads wait on a list to be joined by the next pinned spawn or
 * by shutdown, so a long-lived runtime does not collect zombies. */

static void pinned_wake(bt_pinned_t *p)
{
    /* Release: the work that made the actor runnable happens before its
     * thread runs it. */
    __atomic_store_n(&p->runnable, 1, __ATOMIC_RELEASE);
    bt__futex_wake(&p->runnable);
}

static void *pinned_main(void *arg)
{
    bt_pinned_t *p = arg;
    bt_runtime_t *rt = p->rt;
    for (;;) {
        while (__atomic_load_n(&p->runnable, __ATOMIC_ACQUIRE) == 0) {
            if (__atomic_load_n(&p->done, __ATOMIC_ACQUIRE))
                goto out;
            bt__futex_wait(&p->runnable, 0, NULL);
        }
        if (__atomic_load_n(&p->done, __ATOMIC_ACQUIRE))
            break;
        __atomic_store_n(&p->runnable, 0, __ATOMIC_RELAXED);
        bt__actor_turn(NULL, p->actor); /* may free the actor and set done */
    }
out:
    pthread_mutex_lock(&rt->pinned_mutex);
    p->next = rt->pinned_zombies;
    /* Atomic, though under the mutex: bt__pinned_reap() peeks without it. */
    __atomic_store_n(&rt->pinned_zombies, p, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&rt->pinned_mutex);
    return NULL;
}

int bt__pinned_start(bt_runtime_t *rt, bt_actor_t *a)
{
    bt__pinned_reap(rt);
    bt_pinned_t *p = bt_alloc_zeroed(sizeof(*p));
    if (p == NULL)
        return BT_ENOMEM;
    p->rt = rt;
    p->actor = a;
    a->pinned = p;
    __atomic_fetch_add(&rt->pinned_live, 1, __ATOMIC_RELAXED);
    int err = pthread_create(&p->thread, NULL, pinned_main, p);
    if (err != 0) {
        __atomic_fetch_sub(&rt->pinned_live, 1, __ATOMIC_RELAXED);
        a->pinned = NULL;
        bt_free(p, sizeof(*p));
        fprintf(stderr, "baton: cannot start a pinned actor's thread: %s\n", strerror(err));
        return BT_ESYS;
    }
    return BT_OK;
}

void bt__pinned_release(bt_actor_t *a)
{
    bt_pinned_t *p = a->pinned;
    /* The actor is being freed: its thread must not touch it again. */
    __atomic_store_n(&p->done, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&p->runnable, 1, __ATOMIC_RELEASE);
    bt__futex_wake(&p->runnable);
}

void bt__pinned_reap(bt_runtime_t *rt)
{
    if (__atomic_load_n(&rt->pinned_zombies, __ATOMIC_RELAXED) == NULL)
        return;
    pthread_mutex_lock(&rt->pinned_mutex);
    bt_pinned_t *list = rt->pinned_zombies;
    __atomic_store_n(&rt->pinned_zombies, NULL, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&rt->pinned_mutex);
    while (list != NULL) {
        bt_pinned_t *p = list;
        list = p->next;
        pthread_join(p->thread, NULL);
        bt_free(p, sizeof(*p));
        __atomic_fetch_sub(&rt->pinned_live, 1, __ATOMIC_RELEASE);
    }
}
