/*
 * ratelimit.h: the rate limiter actor: one GCRA bucket per key (a rate and
 * a burst), answering "go now" or "wait D"; and the retry side of the same
 * downstream: after a failure it answers "retry after D" or "give up" from
 * the backoff policy (backoff.h), with its jitter PRNG and retry budget in
 * its state.
 *
 * The GCRA ("generic cell rate algorithm", a token bucket kept as one
 * timestamp per key) is also a plain function, bt_gcra_take(), which the
 * actor calls; use it directly when no actor is wanted.
 *
 * Messages: after a successful bt_send()/bt_ask() a message belongs to the
 * runtime (see baton.h). Every request below may be sent with bt_ask() or
 * bt_ask_wait(); each is answered with bt_reply() with the reply named.
 */
#ifndef BATON_ACTORS_RATELIMIT_H
#define BATON_ACTORS_RATELIMIT_H

#include "backoff.h"

#include <baton/baton.h>

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ GCRA */

/* A bucket's parameters: `rate` tokens per `period_ns`, at most `burst`
 * at once. The emission interval is period_ns / rate, in whole
 * nanoseconds (choose values that divide, or accept up to 1 ns per token
 * of rounding in the caller's favour). */
typedef struct bt_gcra {
    uint64_t interval_ns;  /* period_ns / rate: the cost of one token */
    uint64_t tolerance_ns; /* burst * interval_ns */
} bt_gcra_t;

/* BT_EINVAL if rate, burst or period_ns is 0, or the interval rounds to 0. */
BT_API int bt_gcra_init(bt_gcra_t *g, uint64_t rate, uint64_t period_ns, uint64_t burst);

/* Tries to take cost tokens at now from the bucket whose state is *tat (the
 * "theoretical arrival time"; 0 for a new, full bucket). Returns 0 and
 * advances *tat when they are available ("go now"); otherwise returns how
 * long to wait until they would be, leaving *tat unchanged. A cost above
 * the burst can never be satisfied: UINT64_MAX. */
BT_API uint64_t bt_gcra_take(const bt_gcra_t *g, uint64_t *tat, uint64_t now, uint64_t cost);

/* Whole tokens available at now in the bucket with state tat. */
BT_API uint64_t bt_gcra_tokens(const bt_gcra_t *g, uint64_t tat, uint64_t now);

/* A 64-bit key from a string (FNV-1a), for callers whose keys are names. */
BT_API uint64_t bt_ratelimit_key(const char *s, size_t len);

/* ---------------------------------------------------------------- actor */

typedef struct bt_ratelimit_args {
    uint64_t rate;           /* tokens per period; > 0 */
    uint64_t period_ns;      /* > 0; e.g. 1 s */
    uint64_t burst;          /* > 0 */
    uint32_t max_keys;       /* live keys before new ones are refused; 0 = 1 << 20 */
    bt_backoff_args_t retry; /* the retry policy, checked with bt_backoff_args_check() */
    uint64_t seed;           /* seeds the jitter PRNG; tests fix it */
} bt_ratelimit_args_t;

/* Checks args (the message says which field is wrong) without spawning. */
BT_API int bt_ratelimit_args_check(const bt_ratelimit_args_t *args, const char **why /* OUT */);

/* Spawns a limiter. args is copied. Errors: BT_EINVAL (bad args; see
 * bt_ratelimit_args_check), those of bt_spawn(). */
BT_API int bt_ratelimit_spawn(bt_runtime_t *rt, const bt_ratelimit_args_t *args,
                              bt_ref_t *out /* OUT */);

/* The actor type, to run a limiter under a supervisor (arg: a
 * bt_ratelimit_args_t that outlives the supervisor). */
BT_API const bt_actor_type_t *bt_ratelimit_type(void);

/* Message ids (below BT_MSG_SYSTEM_BASE; distinct from the other actors'). */
typedef enum bt_ratelimit_msg_id {
    BT_RL_ACQUIRE = 0x52410001, /* bt_rl_acquire_msg_t -> bt_rl_decision_msg_t */
    BT_RL_DECISION,             /* reply */
    BT_RL_RETRY,                /* bt_rl_retry_msg_t -> bt_rl_retry_reply_msg_t */
    BT_RL_RETRY_REPLY,          /* reply */
    BT_RL_STATS,                /* bt_msg_t -> bt_rl_stats_msg_t */
    BT_RL_STATS_REPLY,          /* reply */
    BT_RL_MSG_END               /* count sentinel (one past the last id) */
} bt_ratelimit_msg_id_t;

/* Asks for cost tokens (0 means 1) of key's bucket. first_attempt: this
 * is a first attempt, not a retry, and pays into the retry budget. */
typedef struct bt_rl_acquire_msg {
    bt_msg_t hdr;
    uint64_t key;
    uint32_t cost;
    bool first_attempt;
} bt_rl_acquire_msg_t;

typedef struct bt_rl_decision_msg {
    bt_msg_t hdr;
    int status;       /* BT_OK; BT_EINVAL (cost above burst); BT_EFULL (too many keys) */
    bool go;          /* true: go now, the tokens are taken */
    uint64_t wait_ns; /* when !go and status is BT_OK: ask again after this */
} bt_rl_decision_msg_t;

/* After a failed attempt: may the caller retry, and when? */
typedef struct bt_rl_retry_msg {
    bt_msg_t hdr;
    uint32_t attempts;    /* attempts made so far, the failed one included (>= 1) */
    uint64_t first_at_ns; /* bt_now() at the first attempt */
    bt_failure_t failure; /* what went wrong */
} bt_rl_retry_msg_t;

typedef struct bt_rl_retry_reply_msg {
    bt_msg_t hdr;
    bt_retry_decision_t decision;
} bt_rl_retry_reply_msg_t;

typedef struct bt_rl_stats_msg {
    bt_msg_t hdr;
    uint64_t granted;                         /* acquires answered "go" */
    uint64_t delayed;                         /* acquires answered "wait" */
    uint64_t refused;                         /* acquires refused with an error */
    uint64_t keys;                            /* live keys (not yet back to a full bucket) */
    uint64_t retries;                         /* retry decisions "retry" */
    uint64_t give_ups[BT_RETRY_REASON_COUNT]; /* "give up", by reason */
    uint64_t calls;                           /* first attempts paid into the retry budget */
} bt_rl_stats_msg_t;

#ifdef __cplusplus
}
#endif

#endif /* BATON_ACTORS_RATELIMIT_H */
