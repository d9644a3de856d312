/*
 * timer.c: the timer service: delayed and periodic messages, and the
 * timeouts of asks, on one hierarchical timing wheel (wheel.c).
 *
 * DESIGN
 * One wheel per runtime, guarded by one mutex, with 1 ms ticks. Timer
 * records live in chunks that never move (the wheel's nodes are intrusive)
 * and are named by handles that carry a generation, so cancelling a timer
 * that has fired, or whose record was reused, fails cleanly with BT_ENOENT.
 * Insert and cancel are O(1).
 *
 * In normal mode one thread (not one per timer) sleeps on a condition
 * variable until the wheel's next tick with work, advances the wheel to the
 * current tick and sends what expired, outside the mutex. An insert that
 * comes before the thread's wake-up time signals it. In deterministic mode
 * there is no thread: bt_runtime_advance() fires due timers itself.
 *
 * Deadlines are rounded up to the next tick, so a timer never fires early.
 * A periodic timer sends a copy of its message each period, and cancels
 * itself once its receiver has stopped.
 */
#define _GNU_SOURCE
#include "core/internal.h"

#include "timer/wheel.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define TICK_NS    1000000ull /* 1 ms */
#define CHUNK_BITS 10
#define CHUNK_RECS (1u << CHUNK_BITS)
#define MAX_CHUNKS 65536u /* 67M live timers */
#define NO_REC     UINT32_MAX

typedef struct trec {
    bt__wtimer_t node; /* first: the record is found from its node */
    bt_msg_t *msg;     /* owned while pending */
    bt_ref_t to;
    uint64_t period_ticks; /* 0: one-shot */
    uint32_t gen;
    uint32_t index;
    uint32_t next_free;
} trec_t;

struct bt_timers {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bt__wheel_t wheel;
    trec_t *chunks[MAX_CHUNKS];
    uint32_t nrecs;
    uint32_t free_head;
    uint64_t origin_ns;   /* the clock reading at tick 0 */
    uint64_t sleep_until; /* tick the thread sleeps until; UINT64_MAX: no timer */
    bool stop;
    bool thread_started;
    pthread_t thread;
};

static inline trec_t *rec_at(struct bt_timers *t, uint32_t i)
{
    return &t->chunks[i >> CHUNK_BITS][i & (CHUNK_RECS - 1)];
}

static uint64_t clock_now(bt_runtime_t *rt)
{
    return bt__deterministic(rt) ? __atomic_load_n(&rt->vnow, __ATOMIC_ACQUIRE) : bt__clock_ns();
}

static inline uint64_t tick_floor(struct bt_timers *t, uint64_t ns)
{
    return ns <= t->origin_ns ? 0 : (ns - t->origin_ns) / TICK_NS;
}

static inline uint64_t tick_ceil(struct bt_timers *t, uint64_t ns)
{
    return ns <= t->origin_ns ? 0 : (ns - t->origin_ns + TICK_NS - 1) / TICK_NS;
}

int bt__timers_create(bt_runtime_t *rt)
{
    struct bt_timers *t = bt_alloc_zeroed(sizeof(*t));
    if (t == NULL)
        return BT_ENOMEM;
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    t->origin_ns = clock_now(rt);
    bt__wheel_init(&t->wheel, 0);
    t->free_head = NO_REC;
    t->sleep_until = UINT64_MAX;
    rt->timers = t;
    return BT_OK;
}

void bt__timers_destroy(bt_runtime_t *rt)
{
    struct bt_timers *t = rt->timers;
    if (t == NULL)
        return;
    bt__wtimer_t *pending = NULL;
    bt__wheel_deinit(&t->wheel, &pending);
    while (pending != NULL) {
        trec_t *r = (trec_t *)pending;
        pending = pending->next;
        bt_msg_free(r->msg);
    }
    for (uint32_t c = 0; c < MAX_CHUNKS && t->chunks[c] != NULL; c++)
        bt_free(t->chunks[c], sizeof(trec_t) * CHUNK_RECS);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    bt_free(t, sizeof(*t));
    rt->timers = NULL;
}

/* Under t->mu. */
static trec_t *rec_alloc(struct bt_timers *t)
{
    if (t->free_head != NO_REC) {
        trec_t *r = rec_at(t, t->free_head);
        t->free_head = r->next_free;
        return r;
    }
    uint32_t i = t->nrecs;
    uint32_t c = i >> CHUNK_BITS;
    if (c >= MAX_CHUNKS)
        return NULL;
    if (t->chunks[c] == NULL) {
        t->chunks[c] = bt_alloc_zeroed(sizeof(trec_t) * CHUNK_RECS);
        if (t->chunks[c] == NULL)
            return NULL;
    }
    t->nrecs++;
    trec_t *r = rec_at(t, i);
    r->index = i;
    return r;
}

/* Under t->mu. The generation changes, so the old handle stops working. */
static void rec_free(struct bt_timers *t, trec_t *r)
{
    r->msg = NULL;
    r->gen++;
    r->next_free = t->free_head;
    t->free_head = r->index;
}

static inline bt_timer_t handle_of(const trec_t *r)
{
    return ((uint64_t)r->gen << 32) | ((uint64_t)r->index + 1);
}

int bt__timer_add(bt_runtime_t *rt, bt_ref_t to, bt_msg_t *msg, uint64_t delay_ns,
                  uint64_t period_ns, bt_timer_t *out)
{
    struct bt_timers *t = rt->timers;
    uint64_t now = clock_now(rt);
    uint64_t deadline_ns = delay_ns > UINT64_MAX - now ? UINT64_MAX : now + delay_ns;
    pthread_mutex_lock(&t->mu);
    if (t->stop) {
        pthread_mutex_unlock(&t->mu);
        return BT_ESTATE;
    }
    trec_t *r = rec_alloc(t);
    if (r == NULL) {
        pthread_mutex_unlock(&t->mu);
        return BT_ENOMEM;
    }
    r->msg = msg;
    r->to = to;
    r->period_ticks = period_ns == 0 ? 0 : (period_ns + TICK_NS - 1) / TICK_NS;
    uint64_t tick = tick_ceil(t, deadline_ns);
    bt__wtimer_init(&r->node);
    int rc = bt__wheel_insert(&t->wheel, &r->node, tick);
    BT_ASSERT(rc == BT_OK);
    if (out != NULL)
        *out = handle_of(r);
    if (tick < t->sleep_until)
        pthread_cond_signal(&t->cv); /* the thread must wake earlier */
    pthread_mutex_unlock(&t->mu);
    return BT_OK;
}

int bt_timer_start(bt_runtime_t *rt, bt_ref_t to, bt_msg_t *msg, uint64_t delay_ns,
                   uint64_t period_ns, bt_timer_t *out)
{
    if (rt == NULL || msg == NULL || msg->id >= BT_MSG_SYSTEM_BASE || msg->size == 0)
        return BT_EINVAL;
    return bt__timer_add(rt, to, msg, delay_ns, period_ns, out);
}

int bt_timer_cancel(bt_runtime_t *rt, bt_timer_t timer)
{
    if (rt == NULL || timer == 0)
        return BT_EINVAL;
    struct bt_timers *t = rt->timers;
    uint32_t index = (uint32_t)timer - 1;
    uint32_t gen = (uint32_t)(timer >> 32);
    bt_msg_t *msg = NULL;
    int rc = BT_ENOENT;
    pthread_mutex_lock(&t->mu);
    if (index < t->nrecs) {
        trec_t *r = rec_at(t, index);
        if (r->gen == gen && bt__wheel_pending(&r->node)) {
            bt__wheel_cancel(&t->wheel, &r->node);
            msg = r->msg;
            rec_free(t, r);
            rc = BT_OK;
        }
    }
    pthread_mutex_unlock(&t->mu);
    bt_msg_free(msg);
    return rc;
}

/* Under t->mu: advances the wheel to now_tick and collects what is to be
 * sent, linked through bt_link_, with the receiver parked in `from`. */
static bt_msg_t *collect_due(bt_runtime_t *rt, struct bt_timers *t, uint64_t now_tick)
{
    bt__wtimer_t *expired;
    bt__wheel_advance(&t->wheel, now_tick, &expired);
    bt_msg_t *out = NULL, **tail = &out;
    while (expired != NULL) {
        trec_t *r = (trec_t *)expired;
        expired = expired->next;
        bt_msg_t *m;
        if (r->period_ticks != 0 && bt_alive(rt, r->to)) {
            m = bt_alloc(r->msg->size);
            if (m != NULL)
                memcpy(m, r->msg, r->msg->size);
            /* Next period from the deadline, not from now: no drift. */
            bt__wheel_insert(&t->wheel, &r->node, r->node.deadline + r->period_ticks);
        } else {
            m = r->msg;
            if (r->period_ticks != 0) {
                /* Periodic timer whose receiver has stopped: cancel it. */
                bt_msg_free(m);
                m = NULL;
            }
            rec_free(t, r);
        }
        if (m == NULL)
            continue;
        m->from = r->to;
        m->bt_link_ = NULL;
        *tail = m;
        tail = &m->bt_link_;
    }
    return out;
}

/* Outside t->mu: sends what collect_due() gathered. */
static void send_due(bt_runtime_t *rt, bt_msg_t *list)
{
    while (list != NULL) {
        bt_msg_t *m = list;
        list = m->bt_link_;
        bt_ref_t to = m->from;
        int rc =
            m->id >= BT_MSG_SYSTEM_BASE ? bt__send_sys(rt, to, m, BT_REF_NONE) : bt_send(rt, to, m);
        if (rc != BT_OK)
            bt_msg_free(m); /* counted as a dead letter by the send */
    }
}

static void *timer_main(void *arg)
{
    bt_runtime_t *rt = arg;
    struct bt_timers *t = rt->timers;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        bt_msg_t *due = collect_due(rt, t, tick_floor(t, bt__clock_ns()));
        if (due != NULL) {
            pthread_mutex_unlock(&t->mu);
            send_due(rt, due);
            pthread_mutex_lock(&t->mu);
            continue;
        }
        uint64_t next = bt__wheel_next_tick(&t->wheel);
        t->sleep_until = next;
        if (next == UINT64_MAX) {
            pthread_cond_wait(&t->cv, &t->mu);
        } else {
            uint64_t at = t->origin_ns + next * TICK_NS;
            struct timespec ts = {.tv_sec = (time_t)(at / 1000000000u),
                                  .tv_nsec = (long)(at % 1000000000u)};
            pthread_cond_timedwait(&t->cv, &t->mu, &ts);
        }
        t->sleep_until = 0; /* awake: inserts need not signal */
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int bt__timers_start_thread(bt_runtime_t *rt)
{
    struct bt_timers *t = rt->timers;
    int err = pthread_create(&t->thread, NULL, timer_main, rt);
    if (err != 0) {
        fprintf(stderr, "baton: cannot start the timer thread: %s\n", strerror(err));
        return BT_ESYS;
    }
    t->thread_started = true;
    return BT_OK;
}

void bt__timers_stop_thread(bt_runtime_t *rt)
{
    struct bt_timers *t = rt->timers;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    if (t->thread_started) {
        pthread_join(t->thread, NULL);
        t->thread_started = false;
    }
}

uint64_t bt__timers_next_ns(bt_runtime_t *rt)
{
    struct bt_timers *t = rt->timers;
    pthread_mutex_lock(&t->mu);
    uint64_t next = bt__wheel_next_tick(&t->wheel);
    pthread_mutex_unlock(&t->mu);
    if (next == UINT64_MAX)
        return UINT64_MAX;
    return t->origin_ns + next * TICK_NS;
}

void bt__timers_fire_due(bt_runtime_t *rt, uint64_t now_ns)
{
    struct bt_timers *t = rt->timers;
    pthread_mutex_lock(&t->mu);
    bt_msg_t *due = collect_due(rt, t, tick_floor(t, now_ns));
    pthread_mutex_unlock(&t->mu);
    send_due(rt, due);
}
