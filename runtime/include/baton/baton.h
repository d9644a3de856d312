/*
 * baton.h: the public interface of the baton actor runtime.
 *
 * This is the only header a user of the runtime includes. Everything it
 * declares is prefixed bt_ (functions, types) or BT_ (constants, macros).
 *
 * The model, in five rules:
 *  1. An actor is a piece of state plus a dispatch function. It is spawned
 *     from an actor type (bt_actor_type_t) and named by a reference
 *     (bt_ref_t), a value that may outlive the actor safely.
 *  2. Actors talk only by messages. A message is a struct whose first field
 *     is a bt_msg_t header, allocated with bt_msg_new().
 *  3. Ownership of messages: after a successful bt_send() the message
 *     belongs to the runtime; the receiver may read it only during the
 *     dispatch call it is passed to, and the runtime frees it afterwards.
 *     A failed send leaves ownership with the caller, who must free it with
 *     bt_msg_free() or send it elsewhere.
 *  4. At most one thread runs a given actor at any time, so an actor's state
 *     needs no locks. Messages from one sender to one receiver arrive in
 *     the order they were sent.
 *  5. Every function returns BT_OK (0) or a negative bt_err_t code;
 *     bt_strerror() names it. Results come back through trailing OUT
 *     parameters.
 */
#ifndef BATON_BATON_H
#define BATON_BATON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define BT_API __attribute__((visibility("default")))
#else
#define BT_API
#endif

/* ---------------------------------------------------------------- errors */

/* X(name, value, description): the one list of error codes. */
#define BT_ERRNO_MAP(X)                                                                            \
    X(EINVAL, -1, "invalid argument")                                                              \
    X(ENOMEM, -2, "out of memory")                                                                 \
    X(ENOACTOR, -3, "no such actor: it has stopped, or the reference is stale")                    \
    X(EFULL, -4, "mailbox full")                                                                   \
    X(ETIMEDOUT, -5, "timed out")                                                                  \
    X(ESTATE, -6, "operation not allowed in the runtime's current state")                          \
    X(EFAILED, -7, "actor failed")                                                                 \
    X(ESYS, -8, "a system call failed")                                                            \
    X(EEXIST, -9, "already exists")                                                                \
    X(ENOENT, -10, "not found")                                                                    \
    X(ELINKED, -11, "stopped because a linked actor failed")                                       \
    X(ENOTSUP, -12, "not supported in this build")

typedef enum bt_err {
    BT_OK = 0,
#define BT_ERR_ENUM_(name, value, text) BT_##name = (value),
    BT_ERRNO_MAP(BT_ERR_ENUM_)
#undef BT_ERR_ENUM_
} bt_err_t;

/* A static, human-readable description of err; "unknown error" for codes
 * not in BT_ERRNO_MAP. */
BT_API const char *bt_strerror(int err);

/* ------------------------------------------------------------ references */

/* A reference to an actor: a slot index and a generation, packed into one
 * value. Copy it freely. Once its actor stops, every use of the reference
 * fails with BT_ENOACTOR; it never reaches another actor that happens to
 * reuse the slot (until the same slot has been reused 2^32 times). */
typedef uint64_t bt_ref_t;
#define BT_REF_NONE ((bt_ref_t)0)

/* -------------------------------------------------------------- messages */

/* Message ids at or above BT_MSG_SYSTEM_BASE are reserved for the runtime;
 * user messages use ids below it. */
#define BT_MSG_SYSTEM_BASE 0xFFFF0000u

/* Runtime messages that reach dispatch. Each has the payload struct named
 * in its comment. */
enum bt_sys_msg_id {
    BT_MSG_DOWN = BT_MSG_SYSTEM_BASE + 1, /* bt_down_msg_t: a monitored actor stopped */
    BT_MSG_EXIT,        /* bt_down_msg_t: a linked actor stopped (only when trapping exits) */
    BT_MSG_TIMEOUT,     /* bt_msg_t: the ask with correlation id hdr.corr timed out */
    BT_MSG_DEAD_LETTER, /* bt_dead_letter_msg_t: to the dead-letter observer */
};

/* The header every message starts with. The runtime fills every field but
 * id; user code reads id and from, and never touches the link. */
typedef struct bt_msg {
    struct bt_msg *bt_link_; /* runtime-owned mailbox link */
    uint32_t id;             /* message type, below BT_MSG_SYSTEM_BASE for user messages */
    uint32_t size;           /* bytes allocated for the whole message */
    bt_ref_t from;           /* sender, or BT_REF_NONE when sent from outside any actor */
    uint64_t corr;           /* correlation id, reserved for request/reply; 0 otherwise */
} bt_msg_t;

/* Allocates a zeroed message of size bytes (size >= sizeof(bt_msg_t)) with
 * the given id. Returns NULL when out of memory or when size is too small or
 * larger than BT_MSG_MAX_SIZE. */
#define BT_MSG_MAX_SIZE (64u * 1024u * 1024u)
BT_API bt_msg_t *bt_msg_new(size_t size, uint32_t id);

/* Typed allocation: T must start with a bt_msg_t field. */
#define BT_MSG_NEW(T, id) ((T *)bt_msg_new(sizeof(T), (id)))

/* Payload of BT_MSG_DOWN and BT_MSG_EXIT. */
typedef struct bt_down_msg {
    bt_msg_t hdr;
    bt_ref_t actor;   /* the actor that stopped */
    int reason;       /* BT_OK for a normal stop, else the failure's code */
    uint64_t monitor; /* the id bt_monitor() returned; 0 for links */
} bt_down_msg_t;

/* Payload of BT_MSG_DEAD_LETTER. */
typedef struct bt_dead_letter_msg {
    bt_msg_t hdr;
    bt_ref_t to;   /* where the message was going */
    bt_ref_t from; /* who sent it */
    uint32_t id;   /* its id */
} bt_dead_letter_msg_t;

/* Frees a message that is still owned by the caller (never sent, or whose
 * send failed). NULL is a no-op. */
BT_API void bt_msg_free(bt_msg_t *msg);

/* ---------------------------------------------------------------- memory */

/* The runtime's allocator: jemalloc in normal builds (with sized frees), the
 * system allocator in sanitizer builds. Actors may use it for their own
 * data. bt_free() must be given the size that was allocated. */
BT_API void *bt_alloc(size_t size);
BT_API void *bt_alloc_zeroed(size_t size);
BT_API void bt_free(void *ptr, size_t size);

/* The allocator's process-wide statistics, in bytes (jemalloc's
 * stats.allocated, .active, .resident, .mapped and .retained, refreshed by
 * this call). BT_ENOTSUP in sanitizer builds, which use the system
 * allocator. Safe from any thread. */
typedef struct bt_alloc_stats {
    uint64_t allocated; /* in use by the application */
    uint64_t active;    /* in active pages */
    uint64_t resident;  /* physically resident, metadata included */
    uint64_t mapped;    /* in active extents mapped by the allocator */
    uint64_t retained;  /* virtual memory kept for reuse, not returned to the OS */
} bt_alloc_stats_t;
BT_API int bt_alloc_stats(bt_alloc_stats_t *out /* OUT */);

/* --------------------------------------------------------------- runtime */

typedef struct bt_runtime bt_runtime_t;

#define BT_BACKPRESSURE_DEFAULT 4096u
#define BT_BACKPRESSURE_OFF     UINT32_MAX

typedef struct bt_runtime_config {
    uint32_t threads; /* scheduler threads; 0 = number of online CPUs; at most 256 */
    uint32_t batch;   /* messages an actor handles per turn before it yields; 0 = 64 */
    /* Backpressure: an actor whose send finds the receiver's mailbox this
     * deep ends its turn with that dispatch and is muted (it keeps its
     * messages but does not run) until the receiver has worked through a
     * marker it left at a quarter of this depth. Only actors on the scheduler threads are muted,
     * and only for unbounded, unpinned receivers; threads outside the runtime never are. 0 =
     * BT_BACKPRESSURE_DEFAULT; BT_BACKPRESSURE_OFF turns it off. See docs/runtime.md,
     * "Backpressure". */
    uint32_t backpressure;
    /* Deterministic test mode: no threads at all. Actors run on the thread
     * that calls bt_runtime_run() / bt_runtime_advance(), in a reproducible
     * order, and time is a virtual clock that only bt_runtime_advance()
     * moves. Pinned actors run inline too. */
    bool deterministic;
} bt_runtime_config_t;

/* Creates a runtime, not yet running: actors may be spawned and sent to, and
 * run once bt_runtime_start() is called. cfg may be NULL for defaults; it is
 * copied. On error *out is left untouched. */
BT_API int bt_runtime_create(const bt_runtime_config_t *cfg, bt_runtime_t **out /* OUT */);

/* Starts the scheduler threads. Fails with BT_ESTATE if already started or
 * shut down, BT_ESYS if a thread cannot be created (none is left running). */
BT_API int bt_runtime_start(bt_runtime_t *rt);

/* Stops every actor (each runs its cleanup), frees every undelivered
 * message, joins every thread the runtime started, and frees the runtime.
 * Must be called from outside the runtime's actors. If the actors have not
 * all stopped within timeout_ns (a dispatch that never returns), it returns
 * BT_ETIMEDOUT and the runtime stays valid: call it again to keep waiting.
 * A runtime that was never started is stopped on the calling thread. */
BT_API int bt_runtime_shutdown(bt_runtime_t *rt, uint64_t timeout_ns);

/* Number of scheduler threads. */
BT_API uint32_t bt_runtime_threads(const bt_runtime_t *rt);

/* ------------------------------------------------------------------ time */

/* The runtime's one clock: monotonic nanoseconds; in deterministic mode the
 * virtual clock (starting at 0). Safe from any thread. */
BT_API uint64_t bt_now(bt_runtime_t *rt);

/* Deterministic mode only (BT_ESTATE otherwise): runs actors on the calling
 * thread until none is runnable. */
BT_API int bt_runtime_run(bt_runtime_t *rt);

/* Deterministic mode only: moves the virtual clock forward by ns, firing
 * due timers in deadline order and running actors to idle after each
 * instant, then runs to idle at the final time. */
BT_API int bt_runtime_advance(bt_runtime_t *rt, uint64_t ns);

/* ---------------------------------------------------------------- actors */

typedef struct bt_ctx bt_ctx_t;

typedef struct bt_actor_type {
    const char *name;  /* for diagnostics; not copied, must outlive the runtime */
    size_t state_size; /* bytes of state; the runtime allocates it zeroed */

    /* Optional. Runs once, inside bt_spawn(), before any message. arg is the
     * argument given to bt_spawn(); init does not own it and must copy what
     * it keeps. A non-zero return fails the spawn with that code. */
    int (*init)(bt_ctx_t *ctx, void *state, const void *arg);

    /* Required. Handles one message. Returns BT_OK, or a negative code to
     * report failure: the actor then stops with that reason. */
    int (*dispatch)(bt_ctx_t *ctx, void *state, const bt_msg_t *msg);

    /* Optional. Runs once when the actor stops, for whatever reason, on the
     * thread that ran it last. It may send messages but receives none. */
    void (*cleanup)(bt_ctx_t *ctx, void *state);
} bt_actor_type_t;

/* Spawn flags. */
#define BT_SPAWN_PINNED 0x1u /* run on a dedicated thread, for blocking work */

typedef struct bt_spawn_opts {
    /* 0: unbounded mailbox. Otherwise at most this many user messages may be
     * queued; a send beyond that fails with BT_EFULL and the message stays
     * with the caller. Runtime (system) messages are never refused. */
    uint32_t mailbox_capacity;
    /* BT_SPAWN_* flags. A pinned actor has the same API as any other, but
     * only its own thread ever runs it, so it may block (SQLite, waitpid,
     * libcurl) without stalling the scheduler. The thread is started by
     * bt_spawn() and joined when the actor stops or at shutdown. */
    uint32_t flags;
} bt_spawn_opts_t;

/* Spawns an actor of type (which must outlive the runtime) and returns its
 * reference in *out. init runs before bt_spawn() returns, on the calling
 * thread. opts may be NULL. Errors: BT_EINVAL (bad type or opts), BT_ENOMEM,
 * BT_ESTATE (runtime shutting down), or the code init returned. */
BT_API int bt_spawn(bt_runtime_t *rt, const bt_actor_type_t *type, const void *arg,
                    const bt_spawn_opts_t *opts, bt_ref_t *out /* OUT */);

/* Sends msg to the actor named by to. On success takes ownership of msg. On
 * failure ownership stays with the caller: BT_ENOACTOR (the actor has
 * stopped; counted as a dead letter), BT_EFULL (bounded mailbox full),
 * BT_EINVAL (NULL msg or a reserved id).
 * Safe to call from any thread, inside or outside actors, concurrently. */
BT_API int bt_send(bt_runtime_t *rt, bt_ref_t to, bt_msg_t *msg);

/* Asks the actor to stop. The request is queued behind the messages already
 * in its mailbox; messages sent after it become dead letters. Returns
 * BT_ENOACTOR if the actor has already stopped. Safe from any thread. */
BT_API int bt_stop(bt_runtime_t *rt, bt_ref_t actor);

/* Inside dispatch or init: this actor's reference, and its runtime. */
BT_API bt_ref_t bt_self(const bt_ctx_t *ctx);
BT_API bt_runtime_t *bt_ctx_runtime(const bt_ctx_t *ctx);

/* Inside dispatch: stop this actor once the current dispatch returns. */
BT_API void bt_stop_self(bt_ctx_t *ctx);

/* Inside dispatch: a runtime assertion. If cond is false, the dispatch
 * returns BT_EFAILED at once, so the actor fails (and its supervisor, if
 * any, decides what happens next). Use it directly in a dispatch function. */
#define BT_ACTOR_ASSERT(ctx, cond)                                                                 \
    do {                                                                                           \
        if (__builtin_expect(!(cond), 0))                                                          \
            return bt__actor_assert_failed((ctx), #cond, __FILE__, __LINE__);                      \
    } while (0)
BT_API int bt__actor_assert_failed(bt_ctx_t *ctx, const char *cond, const char *file, int line);

/* Whether the reference names an actor that has not yet stopped. The answer
 * may be stale as soon as it is returned. */
BT_API bool bt_alive(bt_runtime_t *rt, bt_ref_t actor);

/* ------------------------------------------------------ monitors, links */

/* Inside dispatch: when target stops, for whatever reason, this actor gets
 * a BT_MSG_DOWN with the reason and *monitor_id (which may be NULL). If the
 * target has already stopped, the DOWN comes at once with BT_ENOACTOR.
 * Errors: BT_ENOMEM. */
BT_API int bt_monitor(bt_ctx_t *ctx, bt_ref_t target, uint64_t *monitor_id /* OUT */);

/* Inside dispatch: links this actor and target both ways. When either stops
 * with a failure (reason other than BT_OK), the other is stopped with
 * BT_ELINKED, unless it traps exits, in which case it gets a BT_MSG_EXIT
 * instead. A normal stop never takes a linked actor down, as in Erlang.
 * Linking to an actor that has stopped behaves as if it had just failed
 * with BT_ENOACTOR. Errors: BT_ENOMEM. */
BT_API int bt_link(bt_ctx_t *ctx, bt_ref_t target);

/* Inside dispatch: removes the link with target, both ways. */
BT_API int bt_unlink(bt_ctx_t *ctx, bt_ref_t target);

/* Inside dispatch or init: turns failures of linked actors into BT_MSG_EXIT
 * messages instead of stopping this actor. */
BT_API void bt_trap_exits(bt_ctx_t *ctx, bool on);

/* --------------------------------------------------------------- timers */

typedef uint64_t bt_timer_t;

/* Sends msg to `to` after delay_ns, then, if period_ns is not 0, a copy of
 * it every period_ns until cancelled (or until `to` has stopped). Takes
 * ownership of msg on success; on failure the caller keeps it. Timers have
 * millisecond resolution and never fire early. Errors: BT_EINVAL (reserved
 * id), BT_ENOMEM, BT_ESTATE (shutting down). Safe from any thread. */
BT_API int bt_timer_start(bt_runtime_t *rt, bt_ref_t to, bt_msg_t *msg, uint64_t delay_ns,
                          uint64_t period_ns, bt_timer_t *out /* OUT, may be NULL */);

/* Cancels a timer in O(1), freeing its message. BT_ENOENT if it has already
 * fired (one-shot) or been cancelled. Safe from any thread. */
BT_API int bt_timer_cancel(bt_runtime_t *rt, bt_timer_t timer);

/* ------------------------------------------------------------ ask / reply */

/* A reply's hdr.corr is its ask's correlation id with this bit set, so a
 * reply can never be taken for a request; bt_msg_corr() strips it. */
#define BT_CORR_REPLY ((uint64_t)1 << 63)

/* The correlation id of a reply or of a BT_MSG_TIMEOUT: the *corr that
 * bt_ask() gave. */
static inline uint64_t bt_msg_corr(const bt_msg_t *msg)
{
    return msg->corr & ~BT_CORR_REPLY;
}

/* Inside dispatch: sends request to `to` as a request. Exactly one of these
 * comes back to this actor as an ordinary message, matched by the
 * correlation id put in *corr (compare it with bt_msg_corr(msg)):
 *  - the reply (sent with bt_reply()), before timeout_ns;
 *  - a BT_MSG_TIMEOUT, after it. A reply that arrives after its timeout
 *    is dropped and counted (bt_runtime_stats().late_replies), never
 *    delivered as if it were the answer.
 * Asks never block, so an actor that asks itself or asks in a cycle cannot
 * deadlock: at worst it times out. Takes ownership of request on success.
 * Errors: those of bt_send(), BT_ENOMEM. */
BT_API int bt_ask(bt_ctx_t *ctx, bt_ref_t to, bt_msg_t *request, uint64_t timeout_ns,
                  uint64_t *corr /* OUT, may be NULL */);

/* Sends reply as the answer to request: a message sent with bt_ask() or
 * bt_ask_wait(), received in a dispatch. Only its from and corr fields are
 * read, so an actor may keep a copy of the request's header and reply
 * later, from another dispatch. Takes ownership of reply on success.
 * Errors: BT_EINVAL if request was not an ask; those of bt_send(). Call it
 * from dispatch (or init or cleanup) only. */
BT_API int bt_reply(bt_ctx_t *ctx, const bt_msg_t *request, bt_msg_t *reply);

/* Whether msg (in dispatch) is a request that expects a bt_reply(). */
BT_API bool bt_msg_is_request(const bt_msg_t *msg);

/* From a thread that is not running an actor (a server thread, a test):
 * sends request and waits for the reply until timeout_ns. On success
 * *reply is the answer, owned by the caller (free it with bt_msg_free()).
 * It spins briefly, then sleeps. Always takes ownership of request (unless
 * it is NULL), even on failure, since after a timeout it cannot be given
 * back. Errors: BT_ETIMEDOUT (a later reply is dropped and counted as late),
 * BT_ESTATE when called from inside an actor (it would block a scheduler
 * thread: use bt_ask()), BT_EINVAL, BT_ENOMEM, those of bt_send(). In
 * deterministic mode it runs the runtime and advances the virtual clock
 * itself. */
BT_API int bt_ask_wait(bt_runtime_t *rt, bt_ref_t to, bt_msg_t *request, uint64_t timeout_ns,
                       bt_msg_t **reply /* OUT */);

/* ------------------------------------------------------------- registry */

/* Binds name (copied; 1..255 bytes) to actor. The name is released when
 * the actor stops. Errors: BT_EEXIST (name taken), BT_EINVAL, BT_ENOACTOR,
 * BT_ENOMEM. Safe from any thread. */
BT_API int bt_register(bt_runtime_t *rt, const char *name, bt_ref_t actor);

/* Looks a name up. Lock-free. BT_ENOENT if unbound. Safe from any thread. */
BT_API int bt_whereis(bt_runtime_t *rt, const char *name, bt_ref_t *out /* OUT */);

/* Releases a name. BT_ENOENT if unbound. Safe from any thread. */
BT_API int bt_unregister(bt_runtime_t *rt, const char *name);

/* ---------------------------------------------------------- supervision */

typedef enum bt_strategy {
    BT_ONE_FOR_ONE,  /* restart only the child that stopped */
    BT_ONE_FOR_ALL,  /* restart every child */
    BT_REST_FOR_ONE, /* restart the child and those started after it */
} bt_strategy_t;

typedef enum bt_restart {
    BT_PERMANENT, /* always restarted */
    BT_TRANSIENT, /* restarted only after a failure (reason other than BT_OK) */
    BT_TEMPORARY, /* never restarted */
} bt_restart_t;

typedef struct bt_child_spec {
    const bt_actor_type_t *type;
    const void *arg; /* passed to init at every (re)start; must outlive the supervisor */
    bt_spawn_opts_t opts;
    bt_restart_t restart;
} bt_child_spec_t;

typedef struct bt_supervisor_spec {
    bt_strategy_t strategy;
    uint32_t intensity;              /* at most this many restarts ... */
    uint64_t period_ns;              /* ... within this window; past it the supervisor fails */
    const bt_child_spec_t *children; /* copied */
    uint32_t nchildren;              /* at most 64 */
} bt_supervisor_spec_t;

/* Spawns a supervisor that starts the children in order. A child restarts
 * in place: same reference, same mailbox, so messages sent to it while it
 * restarts are kept and handled afterwards; init rebuilds its state (after
 * its cleanup ran). A child fails when its dispatch returns an error or
 * BT_ACTOR_ASSERT fires. Past its restart intensity the supervisor stops
 * its children (newest first) and fails itself, which its own supervisor
 * or monitors see. child_refs (may be NULL) receives the children's
 * references, in spec order; they stay valid across restarts. */
BT_API int bt_spawn_supervisor(bt_runtime_t *rt, const bt_supervisor_spec_t *spec,
                               bt_ref_t *out /* OUT */, bt_ref_t *child_refs /* OUT */);

/* The supervisor actor type, to nest a supervisor as a child of another:
 * use it in a bt_child_spec_t with arg pointing to its bt_supervisor_spec_t
 * (which must outlive it). When the parent restarts it, it stops its
 * children and starts new ones. */
BT_API const bt_actor_type_t *bt_supervisor_type(void);

/* ----------------------------------------------------------- dead letters */

/* Makes observer receive a BT_MSG_DEAD_LETTER for every undeliverable
 * message (a send to a stopped actor, or a message dropped when its
 * receiver stopped); BT_REF_NONE stops it. Dead letters are counted
 * whether or not anyone observes them. */
BT_API int bt_observe_dead_letters(bt_runtime_t *rt, bt_ref_t observer);

/* -------------------------------------------------------------- counters */

typedef struct bt_actor_stats {
    uint64_t sent;      /* messages this actor sent successfully */
    uint64_t processed; /* messages dispatched to this actor */
    uint32_t depth;     /* messages queued, including those of the current turn */
    uint32_t depth_hwm; /* the highest depth seen since spawn */
} bt_actor_stats_t;

/* Reads an actor's counters. BT_ENOACTOR if it has stopped. Safe from any
 * thread; counters are read without stopping the actor. */
BT_API int bt_actor_stats(bt_runtime_t *rt, bt_ref_t actor, bt_actor_stats_t *out /* OUT */);

typedef struct bt_runtime_stats {
    uint64_t sent;           /* successful sends, from actors and from outside */
    uint64_t processed;      /* messages dispatched */
    uint64_t dead_letters;   /* sends to stopped actors + messages dropped undelivered */
    uint64_t late_replies;   /* replies that came after their ask timed out */
    uint64_t restarts;       /* in-place restarts by supervisors */
    uint64_t mutes;          /* times an actor was muted by backpressure */
    uint64_t actors_spawned; /* since creation */
    uint64_t actors_live;    /* spawned and not yet fully stopped */
} bt_runtime_stats_t;

/* Reads the runtime's counters. Safe from any thread. */
BT_API void bt_runtime_stats(bt_runtime_t *rt, bt_runtime_stats_t *out /* OUT */);

#ifdef __cplusplus
}
#endif

#endif /* BATON_BATON_H */
