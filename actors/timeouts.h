/*
 * timeouts.h: the timeout registry actor: named timeout classes (from the
 * config, validated against bounds), deadlines that propagate as the
 * minimum of their own time and their parent's remaining time, per-cycle
 * deadlines for loops, and expiry delivered as a message. Built on the
 * runtime's timers: each live deadline is one bt_timer_start(); completing
 * it cancels the timer.
 *
 * The arithmetic is also plain functions (bt_deadline_*, bt_cycle_*).
 *
 * Messages: after a successful bt_send()/bt_ask() a message belongs to the
 * runtime (see baton.h).
 */
#ifndef BATON_ACTORS_TIMEOUTS_H
#define BATON_ACTORS_TIMEOUTS_H

#include <baton/baton.h>

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BT_TIMEOUT_NAME_MAX    32 /* bytes of a class name, NUL included */
#define BT_TIMEOUT_CLASSES_MAX 32

/* --------------------------------------------------------- pure parts */

/* A deadline is an absolute bt_now() time in ns; BT_DEADLINE_NONE means
 * none (no parent). */
#define BT_DEADLINE_NONE UINT64_MAX

/* The deadline of an operation started at now with its own timeout, under
 * a parent deadline: min(now + timeout_ns, parent). Saturates. */
BT_API uint64_t bt_deadline_child(uint64_t now, uint64_t timeout_ns, uint64_t parent);

/* Time left until deadline at now; 0 once it has passed. */
BT_API uint64_t bt_deadline_remaining(uint64_t deadline, uint64_t now);

/* A per-cycle deadline for loops: a cycle started at now may work until
 * min(now + budget_ns, parent). Between items the loop asks
 * bt_cycle_should_defer(); once true it stops and leaves the rest for the
 * next cycle. */
typedef struct bt_cycle {
    uint64_t started_at;
    uint64_t deadline;
    uint32_t done;     /* items the loop reported done in this cycle */
    uint32_t deferred; /* set by the loop: items left for the next cycle */
} bt_cycle_t;

BT_API void bt_cycle_begin(bt_cycle_t *c, uint64_t now, uint64_t budget_ns, uint64_t parent);
BT_API bool bt_cycle_should_defer(const bt_cycle_t *c, uint64_t now);

/* ---------------------------------------------------------- classes */

typedef struct bt_timeout_class {
    char name[BT_TIMEOUT_NAME_MAX]; /* 1..31 bytes of [a-z0-9_-] */
    uint64_t timeout_ns;
} bt_timeout_class_t;

/* The service fills this from config.toml. The four defaults (quick 10 s,
 * default 30 s, bulk 60 s, import 300 s) are always present; a class here
 * with the same name overrides one, any other name adds a class. */
typedef struct bt_timeouts_args {
    const bt_timeout_class_t *classes; /* copied; may be NULL when nclasses is 0 */
    uint32_t nclasses;                 /* at most BT_TIMEOUT_CLASSES_MAX - 4 */
    uint64_t min_ns;                   /* every class must be >= this; 0 = 1 ms */
    uint64_t max_ns;                   /* and <= this; 0 = 1 h */
    uint32_t max_live;                 /* live deadlines before BT_EFULL; 0 = 1 << 20 */
} bt_timeouts_args_t;

/* The merged, validated class table: what the actor will use. Returns
 * BT_OK, or BT_EINVAL with a static message in *why that names the problem
 * (bad name, duplicate, out of bounds, too many). out holds
 * BT_TIMEOUT_CLASSES_MAX entries; *n receives the count. */
BT_API int bt_timeouts_classes(const bt_timeouts_args_t *a, bt_timeout_class_t *out /* OUT */,
                               uint32_t *n /* OUT */, const char **why /* OUT */);

/* ---------------------------------------------------------------- actor */

/* Spawns a registry; args (and its classes) are copied. Errors: BT_EINVAL
 * (see bt_timeouts_classes), those of bt_spawn(). */
BT_API int bt_timeouts_spawn(bt_runtime_t *rt, const bt_timeouts_args_t *args,
                             bt_ref_t *out /* OUT */);

BT_API const bt_actor_type_t *bt_timeouts_type(void);

typedef enum bt_timeouts_msg_id {
    BT_TO_START = 0x544f0001, /* bt_to_start_msg_t (ask) -> bt_to_started_msg_t */
    BT_TO_STARTED,            /* reply */
    BT_TO_DONE,               /* bt_to_done_msg_t; send, or ask -> bt_to_done_reply_msg_t */
    BT_TO_DONE_REPLY,         /* reply */
    BT_TO_EXPIRED,            /* bt_to_expired_msg_t, to the notify actor */
    BT_TO_STATS,              /* bt_msg_t (ask) -> bt_to_stats_msg_t */
    BT_TO_STATS_REPLY,        /* reply */
    BT_TO_FIRE_,              /* internal: a deadline's timer */
    BT_TO_MSG_END             /* count sentinel */
} bt_timeouts_msg_id_t;

/* Starts a deadline for an operation of class `cls`, under parent
 * (an absolute deadline, or BT_DEADLINE_NONE). When it passes before
 * BT_TO_DONE, notify (BT_REF_NONE: the sender) gets BT_TO_EXPIRED with
 * tag. From outside any actor (bt_ask_wait) the sender is a temporary
 * waiter, so set notify to an actor of yours. */
typedef struct bt_to_start_msg {
    bt_msg_t hdr;
    char cls[BT_TIMEOUT_NAME_MAX];
    uint64_t parent; /* absolute deadline, or BT_DEADLINE_NONE */
    bt_ref_t notify;
    uint64_t tag; /* the caller's, echoed in BT_TO_EXPIRED */
} bt_to_start_msg_t;

typedef struct bt_to_started_msg {
    bt_msg_t hdr;
    int status;          /* BT_OK; BT_ENOENT (no such class); BT_EFULL; BT_ENOMEM */
    uint64_t id;         /* names the deadline in BT_TO_DONE */
    uint64_t deadline;   /* absolute: min(now + class timeout, parent) */
    uint64_t timeout_ns; /* the class's own timeout */
} bt_to_started_msg_t;

typedef struct bt_to_done_msg {
    bt_msg_t hdr;
    uint64_t id;
} bt_to_done_msg_t;

typedef struct bt_to_done_reply_msg {
    bt_msg_t hdr;
    int status;         /* BT_OK: cancelled in time; BT_ENOENT: expired or unknown */
    uint64_t remaining; /* time that was left */
} bt_to_done_reply_msg_t;

typedef struct bt_to_expired_msg {
    bt_msg_t hdr;
    uint64_t id;
    uint64_t tag;
    uint64_t deadline;
} bt_to_expired_msg_t;

typedef struct bt_to_stats_msg {
    bt_msg_t hdr;
    uint64_t started, completed, expired, refused;
    uint64_t live;
} bt_to_stats_msg_t;

#ifdef __cplusplus
}
#endif

#endif /* BATON_ACTORS_TIMEOUTS_H */
