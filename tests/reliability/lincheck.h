/*
 * lincheck.h: a linearizability checker for histories of the baton run
 * API (start, get, pause, resume, stop, plus service crashes).
 *
 * The search is Wing & Gong's, with Lowe's memoization (as in "Testing for
 * Linearizability" and porcupine): a depth-first search for an order of
 * the operations that respects real time (an operation that returned
 * before another was called comes first) and that a sequential model of
 * the run state machine accepts with exactly the results observed. Pairs
 * (set of operations linearized, model state) already explored are never
 * explored again. A step, time and memory bound turn a search that would
 * run too long into LC_UNDECIDED instead of a hang.
 *
 * The model is the state machine and policy of ../shared/DESIGN.md and
 * docs/executor.md: max_active non-terminal runs per job, max_running runs
 * running (the rest pending, FIFO, promoted when a slot frees),
 * max_pending, and the executor's "stopping" phase (see lincheck.c).
 *
 * Threads: a history is not thread-safe; build it from one thread (or
 * lock around lc_history_add). lc_check reads the history only and may
 * run on several histories at once.
 */
#ifndef BATON_TESTS_RELIABILITY_LINCHECK_H
#define BATON_TESTS_RELIABILITY_LINCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Errors: 0 or one of these. */
#define LC_ERRNO_MAP(X)                                                                            \
    X(EINVAL, -1, "the history is malformed")                                                      \
    X(ENOMEM, -2, "out of memory")                                                                 \
    X(ETOOBIG, -3, "the history is beyond the checker's limits")

typedef enum lc_err {
#define LC_ERR_ENUM(name, val, msg) LC_##name = (val),
    LC_ERRNO_MAP(LC_ERR_ENUM)
#undef LC_ERR_ENUM
} lc_err_t;

const char *lc_strerror(int err);

/* A run state as the API names it, plus "stopping" (named by refusals
 * while a stop is in progress). */
typedef enum lc_state {
    LC_S_NONE, /* no state reported */
    LC_S_PENDING,
    LC_S_RUNNING,
    LC_S_PAUSED,
    LC_S_COMPLETED,
    LC_S_FAILED,
    LC_S_STOPPED,
    LC_S_STOPPING,
    LC_S_OTHER, /* a name the checker does not know: never accepted */
    LC_S_COUNT
} lc_state_t;

const char *lc_state_name(lc_state_t s);
/* "running" -> LC_S_RUNNING; unknown names -> LC_S_OTHER, "" -> LC_S_NONE. */
lc_state_t lc_state_parse(const char *name);

typedef enum lc_kind {
    LC_START, /* POST /v1/jobs/{job}/runs */
    LC_GET,   /* GET /v1/runs/{id} */
    LC_PAUSE,
    LC_RESUME,
    LC_STOP,
    LC_CRASH, /* kill -9 and restart: call = the kill, ret = ready again */
    LC_KIND_COUNT
} lc_kind_t;

const char *lc_kind_name(lc_kind_t k);

typedef enum lc_result {
    LC_OK,        /* success; state: the run's state in the reply (or NONE) */
    LC_CONFLICT,  /* 409 conflict */
    LC_BUSY,      /* 429 busy */
    LC_INVALID,   /* 409 invalid_transition; state: the state it names */
    LC_NOT_FOUND, /* 404 */
    LC_UNKNOWN,   /* no answer (timeout, connection lost, 5xx): the
                   * operation may or may not have taken effect, at any
                   * time after its call and before its ret */
    LC_RESULT_COUNT
} lc_result_t;

const char *lc_result_name(lc_result_t r);

#define LC_ID_MAX  48
#define LC_JOB_MAX 32
#define LC_INF     INT64_MAX /* ret of an operation whose outcome is unknown */

/* One operation as a client saw it. Times are monotonic nanoseconds; an
 * operation precedes another when its ret is before the other's call. */
typedef struct lc_op {
    lc_kind_t kind;
    int client;
    char job[LC_JOB_MAX]; /* start */
    char run[LC_ID_MAX];  /* start: the id returned (LC_OK); others: the target */
    lc_result_t result;
    lc_state_t state;
    int64_t call, ret;
} lc_op_t;

typedef struct lc_history lc_history_t;

/* Returns an empty history, or NULL when out of memory. */
lc_history_t *lc_history_create(void);
/* Frees h; NULL is a no-op. */
void lc_history_destroy(lc_history_t *h);
/* Appends a copy of op (does not take ownership of op). Returns 0 or
 * LC_ENOMEM. */
int lc_history_add(lc_history_t *h, const lc_op_t *op);
size_t lc_history_len(const lc_history_t *h);
const lc_op_t *lc_history_op(const lc_history_t *h, size_t i);
/* Prints the history, one operation a line, sorted by call time. */
void lc_history_dump(const lc_history_t *h, FILE *f);
/* Prints one operation (no newline). */
void lc_op_print(const lc_op_t *op, FILE *f);

/* The service's policy (executor.max_running and max_pending, and each
 * job's max_active). Zero fields take the service's defaults (1, 4, 1024). */
typedef struct lc_model_cfg {
    uint32_t max_active;
    uint32_t max_running;
    uint32_t max_pending;
} lc_model_cfg_t;

/* Search bounds; zero fields take defaults (50 M steps, 60 s, 4 M memo
 * entries). */
typedef struct lc_limits {
    uint64_t max_steps;
    uint64_t max_ms;
    size_t max_memo;
} lc_limits_t;

typedef enum lc_verdict {
    LC_LINEARIZABLE,
    LC_NOT_LINEARIZABLE,
    LC_UNDECIDED, /* a bound was hit */
} lc_verdict_t;

const char *lc_verdict_name(lc_verdict_t v);

typedef struct lc_report {
    lc_verdict_t verdict;
    size_t events;  /* model events the operations were lowered to */
    size_t deepest; /* the most events linearized at once */
    uint64_t steps;
    size_t memo;
    double ms;
    int stuck_op; /* NOT_LINEARIZABLE: a history index that could not be
                   * placed at the deepest point (-1: none) */
    char why[768];
} lc_report_t;

/* Checks h against the model. Returns 0 with the verdict in *out, or an
 * error (LC_EINVAL: a malformed history, e.g. ret before call or a start
 * reported ok without a run id; the reason is in out->why). */
int lc_check(const lc_history_t *h, const lc_model_cfg_t *cfg, const lc_limits_t *lim,
             lc_report_t *out /* OUT: the verdict */);

#endif
