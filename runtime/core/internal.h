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

/* Runtime-internal message ids. Ids from BT_SYS_INTERNAL_BASE up are
 * handled by the turn loop and never reach dispatch; those below it (the
 * public BT_MSG_* ids and BT_SYS_CHILD_EXIT, which only the runtime's own
 * supervisor type receives) are dispatched. */
#define BT_SYS_INTERNAL_BASE (BT_MSG_SYSTEM_BASE + 0x8000u)
enum bt_sys_internal {
    BT_SYS_CHILD_EXIT = BT_MSG_SYSTEM_BASE + 0x100u, /* bt_child_exit_msg_t, to a supervisor */
    BT_SYS_STOP = BT_SYS_INTERNAL_BASE, /* embedded node: stop after the messages before it */
    BT_SYS_CONTROL,                     /* nudge: look at the control word */
    BT_SYS_MONITOR,                     /* bt_watch_msg_t: add a monitor */
    BT_SYS_LINK,                        /* bt_watch_msg_t: add a link */
    BT_SYS_UNLINK,                      /* bt_watch_msg_t: remove a link */
    BT_SYS_EXIT_SIGNAL,                 /* bt_down_msg_t: a linked actor stopped */
    BT_SYS_ASK_TIMEOUT,                 /* bt_msg_t with corr: an ask's deadline passed */
    BT_SYS_NAMED,                       /* bt_named_msg_t: a name was bound to this actor */
    BT_SYS_BP_MARK, /* backpressure: the sender (from) waits until this is reached */
};

/* Correlation ids: bit 63 marks a reply (BT_CORR_REPLY, in baton.h); the
 * rest identifies the ask. */

typedef struct bt_watch_msg {
    bt_msg_t hdr;
    bt_ref_t watcher;
    uint64_t id;
} bt_watch_msg_t;

typedef struct bt_child_exit_msg {
    bt_msg_t hdr;
    bt_ref_t child;
    uint32_t index;
    int reason;
} bt_child_exit_msg_t;

typedef struct bt_named_msg {
    bt_msg_t hdr;
    char name[]; /* NUL-terminated */
} bt_named_msg_t;

/* Control requests (bt_actor_t.control), set by a supervisor. */
enum { BT_CTL_RESTART = 1u << 0, BT_CTL_STOP = 1u << 1 };

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
#define BT_SLOT_ALIVE  ((uint64_t)1 << 31)
#define BT_SLOT_REFS   ((uint64_t)BT_SLOT_ALIVE - 1)
#define BT_SLOT_GEN(w) ((uint32_t)((w) >> 32))
#define BT_CHUNK_BITS  14
#define BT_CHUNK_SLOTS (1u << BT_CHUNK_BITS)
#define BT_MAX_CHUNKS  4096u /* 67M actors alive at once */
#define BT_SLOT_NONE   UINT32_MAX

typedef struct bt_actor bt_actor_t;

typedef struct bt_slot {
    uint64_t word;      /* see above; atomic */
    bt_actor_t *actor;  /* valid while the caller holds a reference */
    uint32_t depth_hwm; /* highest depth seen; relaxed, written by senders */
    uint32_t next_free; /* free-list link, under slot_mutex */
    uint32_t capacity;  /* bounded mailbox size, 0 = unbounded; set at spawn */
    uint32_t pad_;
} bt_slot_t;

static inline bt_ref_t bt__make_ref(uint32_t slot, uint32_t gen)
{
    return ((uint64_t)gen << 32) | slot;
}

/* ----------------------------------------------------------------- actor */

enum {
    BT_AF_DEAD = 1u << 0,        /* terminated; any further turn only drains */
    BT_AF_CLEANED = 1u << 1,     /* cleanup must not run (init failed) */
    BT_AF_PINNED = 1u << 2,      /* runs on its own thread */
    BT_AF_RAW_REPLIES = 1u << 3, /* replies go to dispatch unfiltered (ask waiters) */
};

/* What an actor has that most actors never use, allocated on first use by
 * the actor's own thread (or at spawn). */
typedef struct bt_watch {
    struct bt_watch *next;
    bt_ref_t ref;
    uint64_t id; /* monitor id; 0 for a link */
} bt_watch_t;

typedef struct bt_name {
    struct bt_name *next;
    size_t size;
    char name[];
} bt_name_t;

typedef struct bt_asks bt_asks_t; /* pending asks: ask.c */
typedef struct bt_pinned bt_pinned_t;

typedef struct bt_actor_ext {
    bt_watch_t *monitors; /* actors monitoring this one */
    bt_watch_t *links;    /* actors linked with this one */
    bt_name_t *names;     /* registry names bound to this actor */
    bt_asks_t *asks;
    uint64_t next_corr;
    uint64_t next_monitor;
    bool trap_exits;
    bt_ref_t sup; /* supervisor, or BT_REF_NONE */
    uint32_t sup_index;
    const void *restart_arg;
} bt_actor_ext_t;

struct bt_ctx {
    bt_runtime_t *rt;
    bt_actor_t *actor;
    bool stop; /* bt_stop_self() was called */
    bool deep; /* a send in this turn found its receiver's mailbox over the backpressure mark */
};

/* bt_actor.bp, the backpressure word (actor.c, "backpressure"). */
#define BT_BP_MARK_OUT 1u /* this actor's marker waits in a receiver's mailbox */
#define BT_BP_MUTED    2u /* muted: holds its run token until unmuted */
#define BT_BP_WAITER   4u /* one message someone waits on is in this mailbox */

/* Layout, for a 64-byte-aligned allocation (jemalloc's 192-byte class is):
 *   line 0  fields other threads write (rarely) or read when scheduling,
 *           then the mailbox head, written by every push;
 *   line 1  the mailbox tail and stub, then the consumer's hot fields;
 *   line 2  the rest, then the state.
 * An idle actor with up to 16 bytes of state is 192 bytes, plus its
 * 32-byte slot. */
struct bt_actor {
    bt_msg_t stop_node;      /* size 0: never freed; pushed by bt_stop() */
    uint32_t stop_requested; /* atomic: 0 none, 1 queued, 2 consumed */
    uint32_t control;        /* atomic: BT_CTL_* requests from a supervisor */
    uint32_t parked;         /* atomic: 1 while waiting, run token held, for control */
    uint32_t alloc_size;
    bt_pinned_t *pinned; /* the dedicated thread of a pinned actor */
    bt_mailbox_t mbox;   /* head ends line 0; tail and stub start line 1 */
    const bt_actor_type_t *type;
    bt_runtime_t *rt;
    bt_actor_ext_t *ext; /* NULL until needed */
    uint32_t slot;
    uint32_t gen;
    uint32_t capacity;   /* 0 = unbounded; copy of the slot's */
    uint32_t flags;      /* BT_AF_*, consumer only */
    int exit_reason;     /* BT_OK, or the dispatch error that stopped it */
    uint32_t bp;         /* atomic: BT_BP_* bits plus BT_BP_WAITER times the waiters */
    uint64_t sent;       /* written by the running thread, read by stats */
    uint64_t processed;  /* likewise */
    bt_actor_t *rq_next; /* link in the global run queue */
    _Alignas(16) unsigned char state[];
};

/* -------------------------------------------------------------- workers */

#define BT_RUNQ_SIZE 256u /* power of two */

/* The outbox (actor.c, "outbox"): during a dispatch, the second and later
 * sends to one receiver are linked into a chain that is pushed with one
 * exchange and one reference update, when it holds BT_OUTBOX_CHAIN messages
 * or the dispatch returns. */
#define BT_OUTBOX_WAYS  4u
#define BT_OUTBOX_CHAIN 64u

typedef struct bt_outbox_way {
    bt_ref_t to;     /* a receiver sent to in this dispatch, or BT_REF_NONE */
    bt_slot_t *slot; /* with a chain: its slot, on which we hold one reference */
    bt_msg_t *first; /* the chain, NULL if none */
    bt_msg_t *last;
    uint32_t count; /* messages in the chain */
    uint32_t depth; /* the receiver's depth when the chain began */
} bt_outbox_way_t;

typedef struct bt_outbox {
    bool on;       /* a dispatch on this worker is running: sends may wait here */
    uint32_t used; /* ways with a receiver */
    bt_outbox_way_t way[BT_OUTBOX_WAYS];
} bt_outbox_t;

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
    bool pinned; /* a pinned actor's thread: never takes part in stealing */
    /* The actor a send in the current turn made runnable: run next, without
     * a trip through the run queue (Go's runnext). Owner only; at most
     * NEXT_STREAK hand-offs in a row, then it goes through the queue. */
    bt_actor_t *next;
    uint32_t next_streak;
    pthread_t thread;
    bt_ctx_t ctx;
    bt_outbox_t outbox; /* owner only */
} bt_worker_t;

/* --------------------------------------------------------------- runtime */

enum bt_rt_state { BT_RT_CREATED, BT_RT_RUNNING, BT_RT_STOPPING };

struct bt_runtime {
    bt_runtime_config_t cfg;
    uint64_t id; /* unique per process: tells runtimes at one address apart */
    uint32_t nworkers;
    uint32_t state;   /* enum bt_rt_state; atomic */
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

    /* Counters for work done outside the workers (pinned threads, other
     * threads), and totals. */
    _Alignas(BT_CACHE_LINE) uint64_t ext_sent;
    uint64_t ext_dead_letters;
    uint64_t ext_processed;
    uint64_t late_replies;
    uint64_t restarts;
    uint64_t mutes;
    uint64_t spawned;
    uint64_t live;

    /* Deterministic mode: the virtual clock, in ns. */
    uint64_t vnow;

    /* Timer service (timer.c), registry (registry.c). */
    struct bt_timers *timers;
    struct bt__registry *registry;
    bt_ref_t dead_letter_observer; /* atomic */

    /* Pinned actors' threads that have finished and wait to be joined. */
    pthread_mutex_t pinned_mutex;
    bt_pinned_t *pinned_zombies;
    uint32_t pinned_live; /* atomic: pinned threads not yet joined */
};

struct bt_pinned {
    bt_pinned_t *next; /* in rt->pinned_zombies */
    bt_runtime_t *rt;
    bt_actor_t *actor;
    pthread_t thread;
    uint32_t runnable; /* futex word: 1 when the actor has work */
    uint32_t done;     /* atomic: the actor is freed; the thread exits */
};

/* The worker the calling thread is, or NULL outside the runtime's threads;
 * and the actor context the calling thread is running (dispatch or init). */
extern __thread bt_worker_t *bt__tls_worker;
extern __thread bt_ctx_t *bt__tls_ctx;

static inline bool bt__deterministic(const bt_runtime_t *rt)
{
    return rt->cfg.deterministic;
}

static inline bt_ref_t bt__actor_ref(const bt_actor_t *a)
{
    return bt__make_ref(a->slot, a->gen);
}

/* sched.c */
int bt__sched_start(bt_runtime_t *rt);
void bt__sched_stop(bt_runtime_t *rt);
void bt__schedule(bt_runtime_t *rt, bt_actor_t *a);
/* Like bt__schedule(), for an actor a send has just made runnable: on a
 * worker it becomes the worker's next actor, to run right after the
 * current turn. */
void bt__schedule_hot(bt_runtime_t *rt, bt_actor_t *a);
/* Like bt__schedule(), for an actor that should not run on this worker:
 * the global queue, and an idle worker woken for it. */
void bt__schedule_away(bt_runtime_t *rt, bt_actor_t *a);
/* Deterministic mode: runs runnable actors on the calling thread until none
 * is left. */
void bt__sched_run_inline(bt_runtime_t *rt);
int bt__pinned_start(bt_runtime_t *rt, bt_actor_t *a);
void bt__pinned_release(bt_actor_t *a);
void bt__pinned_reap(bt_runtime_t *rt);

/* actor.c */
void bt__actor_turn(bt_worker_t *w, bt_actor_t *a);
void bt__slot_table_destroy(bt_runtime_t *rt);
void bt__stop_all(bt_runtime_t *rt);
/* A message that could not be delivered: count it, tell the observer. */
void bt__dead_letter(bt_runtime_t *rt, bt_ref_t to, bt_ref_t from, uint32_t id);
/* Sends a runtime message: any id, never refused for capacity, from the
 * given sender. Same ownership rules as bt_send(). */
int bt__send_sys(bt_runtime_t *rt, bt_ref_t to, bt_msg_t *msg, bt_ref_t from);
/* A user message with an explicit sender (bounded mailboxes apply). */
int bt__send_from(bt_runtime_t *rt, bt_ref_t to, bt_msg_t *msg, bt_ref_t from);
/* Asks the actor to restart or stop (BT_CTL_*), preempting its queue. */
int bt__control(bt_runtime_t *rt, bt_ref_t actor, uint32_t bits);
/* Spawns a supervised child (supervisor.c). */
int bt__spawn_child(bt_runtime_t *rt, const bt_child_spec_t *spec, bt_ref_t sup, uint32_t index,
                    bt_ref_t *out);
bt_actor_ext_t *bt__actor_ext(bt_actor_t *a);
uint64_t bt__clock_ns(void);

/* ask.c */
/* A reply (corr has BT_CORR_REPLY) arrived: true if it answers a pending
 * ask, which is then settled; false if it is late. */
bool bt__ask_settle_reply(bt_actor_t *a, uint64_t corr);
/* An ask's timeout fired: true if the ask was still pending. */
bool bt__ask_settle_timeout(bt_actor_t *a, uint64_t corr);
/* Cancels every pending ask (on restart and stop). */
void bt__asks_clear(bt_actor_t *a);

/* timer.c */
int bt__timers_create(bt_runtime_t *rt);
void bt__timers_destroy(bt_runtime_t *rt);
int bt__timers_start_thread(bt_runtime_t *rt);
void bt__timers_stop_thread(bt_runtime_t *rt);
/* Runtime ids (>= BT_MSG_SYSTEM_BASE) are delivered as runtime messages. */
int bt__timer_add(bt_runtime_t *rt, bt_ref_t to, bt_msg_t *msg, uint64_t delay_ns,
                  uint64_t period_ns, bt_timer_t *out);
/* Deterministic mode: the earliest timer deadline in ns, or UINT64_MAX. */
uint64_t bt__timers_next_ns(bt_runtime_t *rt);
/* Deterministic mode: fires every timer due at or before now_ns. */
void bt__timers_fire_due(bt_runtime_t *rt, uint64_t now_ns);

#endif
