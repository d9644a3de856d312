/*
 * internal.h: the runtime's private structures, shared by its .c files and
 * by white-box tests. Never installed.
 */
#ifndef BT_CORE_INTERNAL_H
#define BT_CORE_INTERNAL_H

#include <baton/baton.h>

#include "mailbox/mailbox.h"
#include "mem/alloc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define BT_CACHE_LINE 64

/* Always-on invariant check: cheap conditions whose failure means memory is
 * already corrupt, so continuing would do more harm than stopping. */
#define BT_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (__builtin_expect(!(cond), 0))                                                          \
            bt__assert_fail(#cond, __FILE__, __LINE__);                                            \
    } while (0)
__attribute__((noreturn)) void bt__assert_fail(const char *cond, const char *file, int line);

/* Runtime-internal message ids (never passed to dispatch). */
enum bt_sys_msg {
    BT_SYS_STOP = BT_MSG_SYSTEM_BASE, /* embedded node: stop after the messages before it */
    BT_SYS_COUNT_
};

/* ------------------------------------------------------------ slot table
 *
 * Every actor lives in a slot. The slot's word packs
 *   bits 63..32  generation (the slot's incarnation, part of every bt_ref_t)
 *   bit  31      alive: the actor accepts new references
 *   bits 30..0   references: one owner reference while alive, plus one per
 *                message in the mailbox, plus one per sender or reader that
 *                is between acquiring and handing over or releasing.
 * A sender acquires a reference with a CAS that checks generation and
 * alive; that same reference then travels with its message and is released
 * by the consumer after dispatch. Whoever drops the count to zero after
 * alive is cleared frees the actor. Slots themselves are never freed before
 * the runtime, so a stale reference only ever reads a slot word.
 * The reference count doubles as the mailbox depth, which is how a bounded
 * mailbox is enforced without another atomic counter. */
#define BT_SLOT_ALIVE    ((uint64_t)1 << 31)
#define BT_SLOT_REFS     ((uint64_t)BT_SLOT_ALIVE - 1)
#define BT_SLOT_GEN(w)   ((uint32_t)((w) >> 32))
#define BT_CHUNK_BITS    14
#define BT_CHUNK_SLOTS   (1u << BT_CHUNK_BITS)
#define BT_MAX_CHUNKS    4096u /* 67M actors alive at once */
#define BT_SLOT_NONE     UINT32_MAX

typedef struct bt_actor bt_actor_t;

typedef struct bt_slot {
    uint64_t word;       /* see above; atomic */
    bt_actor_t *actor;   /* valid while the caller holds a reference */
    uint32_t depth_hwm;  /* highest depth seen; relaxed, written by senders */
    uint32_t next_free;  /* free-list link, under slot_mutex */
    uint32_t capacity;   /* bounded mailbox size, 0 = unbounded; set at spawn */
    uint32_t pad_;
} bt_slot_t;

static inline bt_ref_t bt__make_ref(uint32_t slot, uint32_t gen)
{
    return ((uint64_t)gen << 32) | slot;
}

/* ----------------------------------------------------------------- actor */

enum {
    BT_AF_DEAD = 1u << 0, /* terminated; any further turn only drains */
};

struct bt_ctx {
    bt_runtime_t *rt;
    bt_actor_t *actor;
    bool stop; /* bt_stop_self() was called */
};

struct bt_actor {
    bt_mailbox_t mbox; /* head on its own line; tail and stub on the next */
    const bt_actor_type_t *type;
    bt_runtime_t *rt;
    uint32_t slot;
    uint32_t gen;
    uint32_t capacity;      /* 0 = unbounded; copy of the slot's */
    uint32_t flags;         /* BT_AF_*, consumer only */
    uint32_t stop_requested; /* atomic: the stop node has been pushed */
    int exit_reason;         /* BT_OK, or the dispatch error that stopped it */
    uint64_t sent;          /* written by the running thread, read by stats */
    uint64_t processed;     /* likewise */
    bt_actor_t *rq_next;    /* link in the global run queue */
    uint32_t alloc_size;
    bt_msg_t stop_node;     /* size 0: never freed */
    _Alignas(16) unsigned char state[];
};

/* -------------------------------------------------------------- workers */

#define BT_RUNQ_SIZE 256u /* power of two */

typedef struct bt_worker {
    /* Run queue, after Go's runtime: the owner pushes at tail and pops at
     * head; thieves take from head with a CAS. */
    uint32_t rq_head; /* atomic; CAS by owner and thieves */
    uint32_t rq_tail; /* atomic; stored only by the owner */
    bt_actor_t *rq_buf[BT_RUNQ_SIZE];

    /* Owner-private; counters are read (relaxed) by bt_runtime_stats. */
    _Alignas(BT_CACHE_LINE) bt_runtime_t *rt;
    uint32_t index;
    uint32_t futex; /* 1 while parked; a waker stores 0 and wakes */
    uint64_t ticks; /* turns run; read by thieves to see a stuck worker */
    uint64_t sent;
    uint64_t processed;
    uint64_t dead_letters;
    uint64_t rng;
    bool spinning;
    bool started;
    pthread_t thread;
    bt_ctx_t ctx;
} bt_worker_t;

/* --------------------------------------------------------------- runtime */

enum bt_rt_state { BT_RT_CREATED, BT_RT_RUNNING, BT_RT_STOPPING };

struct bt_runtime {
    bt_runtime_config_t cfg;
    uint32_t nworkers;
    uint32_t state; /* enum bt_rt_state; atomic */
    uint32_t exiting; /* atomic: workers return once set */
    bt_worker_t *workers;

    /* Slot table: chunks are allocated on demand and published before
     * slot_next covers them. */
    pthread_mutex_t slot_mutex;
    uint32_t slot_next; /* atomic: slots [0, slot_next) have been handed out */
    uint32_t slot_free; /* head of the free list, under slot_mutex */
    bt_slot_t *chunks[BT_MAX_CHUNKS];

    /* Global run queue: actors made runnable from outside the workers, and
     * local overflow. */
    _Alignas(BT_CACHE_LINE) pthread_mutex_t gq_mutex;
    bt_actor_t *gq_head;
    bt_actor_t *gq_tail;
    uint32_t gq_len; /* atomic, for lock-free emptiness checks */

    /* Idle workers. */
    _Alignas(BT_CACHE_LINE) pthread_mutex_t idle_mutex;
    uint32_t *idle_stack;
    uint32_t nidle;     /* atomic */
    uint32_t nspinning; /* atomic */

    /* Counters for sends made outside any worker, and totals. */
    _Alignas(BT_CACHE_LINE) uint64_t ext_sent;
    uint64_t ext_dead_letters;
    uint64_t spawned;
    uint64_t live;
};

/* The worker the calling thread is, or NULL outside the runtime's threads;
 * and the actor context the calling thread is running (dispatch or init). */
extern __thread bt_worker_t *bt__tls_worker;
extern __thread bt_ctx_t *bt__tls_ctx;

/* sched.c */
int bt__sched_start(bt_runtime_t *rt);
void bt__sched_stop(bt_runtime_t *rt);
void bt__schedule(bt_runtime_t *rt, bt_actor_t *a);

/* actor.c */
void bt__actor_turn(bt_worker_t *w, bt_actor_t *a);
void bt__slot_table_destroy(bt_runtime_t *rt);
void bt__stop_all(bt_runtime_t *rt);
void bt__count_dead_letter(bt_runtime_t *rt);

#endif
