/*
 * breaker.h: the circuit breaker actor, one per protected downstream.
 *
 * Protocol: before a call, ask BT_BREAKER_ACQUIRE; the reply says allowed
 * (with a generation) or rejected (with the time until a retry may pass).
 * After an allowed call, send BT_BREAKER_REPORT with that generation, the
 * outcome and the latency; a cancelled call reports BT_BREAKER_CANCELLED,
 * which counts as neither success nor failure. Reports whose generation is
 * not the current one (the state changed since the permission) are
 * ignored and counted as stale.
 *
 * The state machine is also a plain struct with functions
 * (bt_breaker_core_*), which the actor calls; the bench calls it directly.
 *
 * Messages: after a successful bt_send()/bt_ask() a message belongs to the
 * runtime (see baton.h).
 */
#ifndef BATON_ACTORS_BREAKER_H
#define BATON_ACTORS_BREAKER_H

#include <baton/baton.h>

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BT_BREAKER_STATE_MAP(X)                                                                    \
    X(CLOSED, "closed")                                                                            \
    X(OPEN, "open")                                                                                \
    X(HALF_OPEN, "half_open")                                                                      \
    X(FORCED_OPEN, "forced_open")                                                                  \
    X(DISABLED, "disabled")

typedef enum bt_breaker_state {
#define BT_BREAKER_STATE_ENUM_(name, text) BT_BREAKER_##name,
    BT_BREAKER_STATE_MAP(BT_BREAKER_STATE_ENUM_)
#undef BT_BREAKER_STATE_ENUM_
        BT_BREAKER_STATE_COUNT
} bt_breaker_state_t;

#define BT_BREAKER_REASON_MAP(X)                                                                   \
    X(CONSECUTIVE_FAILURES, "consecutive failures reached the threshold")                          \
    X(FAILURE_RATE, "failure rate over the window reached the threshold")                          \
    X(WAIT_ELAPSED, "open wait elapsed: probing")                                                  \
    X(PROBE_FAILED, "a probe failed")                                                              \
    X(PROBES_SUCCEEDED, "enough probes succeeded")                                                 \
    X(COMMAND, "set by command")

typedef enum bt_breaker_reason {
#define BT_BREAKER_REASON_ENUM_(name, text) BT_BREAKER_REASON_##name,
    BT_BREAKER_REASON_MAP(BT_BREAKER_REASON_ENUM_)
#undef BT_BREAKER_REASON_ENUM_
        BT_BREAKER_REASON_COUNT
} bt_breaker_reason_t;

BT_API const char *bt_breaker_state_name(bt_breaker_state_t s);
BT_API const char *bt_breaker_reason_text(bt_breaker_reason_t r);

typedef enum bt_breaker_outcome {
    BT_BREAKER_SUCCESS,
    BT_BREAKER_FAILURE,
    BT_BREAKER_CANCELLED, /* neither: frees a half_open probe slot */
    BT_BREAKER_OUTCOME_COUNT
} bt_breaker_outcome_t;

/* The service fills this from config.toml. Either trip rule may be off
 * (0), not both. */
typedef struct bt_breaker_args {
    uint32_t consecutive_failures; /* trip after this many failures in a row; 0 = off */
    uint32_t window_size;          /* calls in the sliding window; 0 = rate rule off; <= 65536 */
    uint32_t min_calls;            /* calls in the window before the rate counts; 1..window_size */
    uint32_t failure_rate_pct;     /* trip when failures*100 >= pct*calls; 1..100 */
    uint64_t slow_call_ns;         /* a success at least this slow counts as a failure; 0 = off */
    uint64_t open_wait_ns;         /* open for this long, then half_open; > 0 */
    uint32_t half_open_probes;     /* calls let through at once in half_open; >= 1 */
    uint32_t half_open_successes;  /* successes that close it; 1..half_open_probes */
    bt_ref_t observer;             /* gets a BT_BREAKER_EVENT per transition; BT_REF_NONE: none */
} bt_breaker_args_t;

/* Checks args; BT_EINVAL with a static message naming the field. */
BT_API int bt_breaker_args_check(const bt_breaker_args_t *a, const char **why /* OUT */);

/* A state transition. */
typedef struct bt_breaker_event {
    uint64_t at_ns; /* bt_now() when it happened */
    bt_breaker_state_t from, to;
    bt_breaker_reason_t reason;
    uint64_t generation; /* the generation after the transition */
} bt_breaker_event_t;

typedef struct bt_breaker_counters {
    uint64_t allowed, rejected;
    uint64_t successes, failures, slow, cancelled, stale;
    uint64_t transitions;                        /* all of them */
    uint64_t entered[BT_BREAKER_STATE_COUNT];    /* transitions into each state */
    uint64_t by_reason[BT_BREAKER_REASON_COUNT]; /* transitions for each reason */
} bt_breaker_counters_t;

/* ---------------------------------------------------------- pure core */

/* The state machine with no actor around it. Owns the window's ring
 * buffer (allocated with bt_alloc by init, freed by deinit). */
typedef struct bt_breaker_core {
    bt_breaker_args_t args;
    bt_breaker_state_t state;
    uint64_t generation;
    uint64_t opened_at; /* when it last entered open */
    uint32_t consecutive;
    /* window: ring of outcomes (1 = failure) */
    uint8_t *ring;
    uint32_t ring_pos, ring_len, ring_failures;
    /* half_open */
    uint32_t probes_out, probe_successes;
    bt_breaker_counters_t counters;
} bt_breaker_core_t;

/* Errors: BT_EINVAL (bad args), BT_ENOMEM. Starts closed at generation 1. */
BT_API int bt_breaker_core_init(bt_breaker_core_t *c, const bt_breaker_args_t *args);
BT_API void bt_breaker_core_deinit(bt_breaker_core_t *c);

/* Permission at now. Returns true (allowed; *generation is the one to
 * report with) or false (*retry_after_ns: how long until a retry may pass;
 * the open wait when it is not known, as in forced_open or with every
 * half_open probe out). May move open to half_open first (*ev filled, and
 * true returned from *changed). */
BT_API bool bt_breaker_core_acquire(bt_breaker_core_t *c, uint64_t now, uint64_t *generation,
                                    uint64_t *retry_after_ns, bt_breaker_event_t *ev,
                                    bool *changed);

/* An outcome of a call allowed at generation. Returns true if it caused a
 * transition (then *ev describes it). Stale generations are counted and
 * ignored. */
BT_API bool bt_breaker_core_report(bt_breaker_core_t *c, uint64_t now, uint64_t generation,
                                   bt_breaker_outcome_t outcome, uint64_t latency_ns,
                                   bt_breaker_event_t *ev);

/* Moves open to half_open if the wait has elapsed at now (the actor's
 * timer calls it). True if it did. */
BT_API bool bt_breaker_core_poll(bt_breaker_core_t *c, uint64_t now, bt_breaker_event_t *ev);

/* Commands: to CLOSED (a reset), FORCED_OPEN or DISABLED. Any other
 * target is BT_EINVAL. True in *changed if the state changed. */
BT_API int bt_breaker_core_force(bt_breaker_core_t *c, uint64_t now, bt_breaker_state_t to,
                                 bt_breaker_event_t *ev, bool *changed);

/* ---------------------------------------------------------------- actor */

/* Spawns a breaker; args is copied. Errors: BT_EINVAL (see
 * bt_breaker_args_check), BT_ENOMEM, those of bt_spawn(). */
BT_API int bt_breaker_spawn(bt_runtime_t *rt, const bt_breaker_args_t *args,
                            bt_ref_t *out /* OUT */);

/* The actor type, for a supervisor's child spec (arg: bt_breaker_args_t). */
BT_API const bt_actor_type_t *bt_breaker_type(void);

typedef enum bt_breaker_msg_id {
    BT_BREAKER_ACQUIRE = 0x42520001, /* bt_msg_t (ask) -> bt_breaker_permit_msg_t */
    BT_BREAKER_PERMIT,               /* reply */
    BT_BREAKER_REPORT,               /* bt_breaker_report_msg_t; send, or ask for a bt_msg_t ack */
    BT_BREAKER_REPORT_ACK,           /* reply to an asked report: a bare bt_msg_t */
    BT_BREAKER_FORCE,                /* bt_breaker_force_msg_t -> bt_breaker_permit_msg_t */
    BT_BREAKER_STATS,                /* bt_msg_t (ask) -> bt_breaker_stats_msg_t */
    BT_BREAKER_STATS_REPLY,          /* reply */
    BT_BREAKER_EVENT,                /* bt_breaker_event_msg_t, to the observer */
    BT_BREAKER_WAIT_TIMER_,          /* internal: the open wait's timer */
    BT_BREAKER_MSG_END               /* count sentinel */
} bt_breaker_msg_id_t;

typedef struct bt_breaker_permit_msg {
    bt_msg_t hdr;
    int status; /* BT_OK, or BT_EINVAL for a bad FORCE */
    bool allowed;
    uint64_t generation;     /* report with this */
    uint64_t retry_after_ns; /* when rejected */
    bt_breaker_state_t state;
} bt_breaker_permit_msg_t;

typedef struct bt_breaker_report_msg {
    bt_msg_t hdr;
    uint64_t generation;
    bt_breaker_outcome_t outcome;
    uint64_t latency_ns;
} bt_breaker_report_msg_t;

typedef struct bt_breaker_force_msg {
    bt_msg_t hdr;
    bt_breaker_state_t to; /* CLOSED, FORCED_OPEN or DISABLED */
} bt_breaker_force_msg_t;

typedef struct bt_breaker_stats_msg {
    bt_msg_t hdr;
    bt_breaker_state_t state;
    uint64_t generation;
    uint32_t window_calls, window_failures;
    bt_breaker_counters_t counters;
    uint64_t events_sent; /* events delivered to the observer */
} bt_breaker_stats_msg_t;

typedef struct bt_breaker_event_msg {
    bt_msg_t hdr;
    bt_ref_t breaker;
    bt_breaker_event_t event;
} bt_breaker_event_msg_t;

#ifdef __cplusplus
}
#endif

#endif /* BATON_ACTORS_BREAKER_H */
