/*
 * executor.h: the executor actor, the one owner of the life of every run.
 *
 * Commands (asks, from bt_ask or bt_ask_wait) are decided inside the actor
 * one at a time, so a double start, a double resume, a resume while another
 * run blocks it, or a pause/stop of a missing run are refused by
 * construction. Each command gets one reply: ex_reply_t for start, pause,
 * resume and stop; for get and list, a copy of the run store's rs_reply_t
 * (read it with rs_reply_run()); ex_stats_reply_t for EX_MSG_STATS. An accepted
 * command is durable in the run store before its reply; a pause of a
 * running run is answered once its kind confirms the run is quiescent (or
 * after the job's stop grace, flagged EX_REPLY_UNCONFIRMED). Commands sent
 * before start-up recovery is done wait for it. A command answered
 * EX_ESTORE because the store did not answer in time may still take effect
 * (the store may commit it later): the executor then re-reads the run (or,
 * for a start, the job's active runs) and adopts what the store has before
 * it decides anything else about it (docs/executor.md, "Store timeouts").
 * Messages: after a successful send a message belongs to the runtime (see
 * baton.h).
 */
#ifndef BATON_EXECUTOR_H
#define BATON_EXECUTOR_H

#include "jobkind.h"
#include "transitions.h"

#include <baton/baton.h>

#include <stdint.h>

/* X(name, value, api_code, description): the executor's refusals, with the
 * API error code of ../shared/DESIGN.md each maps to. */
#define EX_ERRNO_MAP(X)                                                                            \
    X(EBADREQ, -201, "bad_request", "bad request")                                                 \
    X(ENOTFOUND, -202, "not_found", "no such run or job")                                          \
    X(ECONFLICT, -203, "conflict", "conflicts with another run")                                   \
    X(ETRANSITION, -204, "invalid_transition", "not allowed in the run's state")                   \
    X(EBUSY, -205, "busy", "pending queue full")                                                   \
    X(ESTORE, -206, "store_error", "the run store failed")                                         \
    X(EINTERNAL, -207, "internal", "internal error")

typedef enum ex_err {
    EX_OK = 0,
#define EX_ERR_ENUM_(name, value, code, text) EX_##name = (value),
    EX_ERRNO_MAP(EX_ERR_ENUM_)
#undef EX_ERR_ENUM_
} ex_err_t;

/* A static description of a code; ex_err_code() gives its API code
 * ("invalid_transition"); both give "internal"/"unknown error" otherwise. */
const char *ex_strerror(int err);
const char *ex_err_code(int err);

/* A job: a name, its kind and its policy. */
typedef struct ex_job {
    const char *name;       /* copied */
    const char *kind;       /* a kind's name */
    uint32_t max_active;    /* non-terminal runs at once; 0 = 1 */
    uint64_t stop_grace_ns; /* cooperative stop before forcing; 0 = 5 s */
    ex_recovery_t recovery; /* DEFAULT: the kind's policy */
} ex_job_t;

typedef struct ex_config {
    bt_ref_t store;                /* the run store (required) */
    bt_ref_t timeouts;             /* passed to kinds; may be BT_REF_NONE */
    const char *state_dir;         /* copied; kinds keep files below it */
    const ex_kind_t *const *kinds; /* pointers copied; descriptors must outlive the executor */
    uint32_t nkinds;
    const ex_job_t *jobs; /* copied */
    uint32_t njobs;
    uint32_t max_running;          /* runs running at once; 0 = 4 */
    uint32_t max_pending;          /* pending queue bound; 0 = 1024 */
    uint64_t progress_every_ns;    /* persist progress at most this often; 0 = 1 s */
    uint32_t progress_every_steps; /* ... or after this many reports; 0 = 100 */
    uint64_t force_slack_ns;       /* extra wait after the grace before forcing; 0 = 1 s */
    uint64_t store_timeout_ns;     /* per store request; 0 = 10 s */
} ex_config_t;

/* Spawns the executor (a normal actor) and starts its recovery. Does not
 * take ownership of cfg; copies it. Errors: BT_EINVAL (no store, a job with
 * an unknown kind), those of bt_spawn(). */
int ex_spawn(bt_runtime_t *rt, const ex_config_t *cfg, bt_ref_t *out /* OUT */);

enum ex_msg_id {
    EX_MSG_START = 0x45580001u, /* ex_cmd_t: job, params -> ex_reply_t */
    EX_MSG_PAUSE,               /* ex_cmd_t: run_id -> ex_reply_t */
    EX_MSG_RESUME,              /* ex_cmd_t: run_id -> ex_reply_t */
    EX_MSG_STOP,                /* ex_cmd_t: run_id -> ex_reply_t once the run is stopped */
    EX_MSG_GET,                 /* ex_cmd_t: run_id -> rs_reply_t copy */
    EX_MSG_LIST,                /* ex_cmd_t: job ("" any) -> rs_reply_t copy */
    EX_MSG_REPLY,               /* ex_reply_t */
    EX_MSG_STATS,               /* bt_msg_t (any payload ignored) -> ex_stats_reply_t */
    EX_MSG_STATS_REPLY,         /* ex_stats_reply_t */
    EX_MSG_READY,               /* bt_msg_t -> ex_reply_t EX_OK, once start-up recovery is done */
    EX_MSG_END_
};

/* Bytes of an idempotency key, NUL included: keys are 1..128 bytes. */
#define EX_IDEM_KEY_MAX 129

/* A command. params is JSON text (start only), at most len bytes after the
 * struct; build it with ex_cmd_new or ex_cmd_new_keyed. */
typedef struct ex_cmd {
    bt_msg_t hdr;
    char run_id[EX_RUN_ID_MAX];
    char job[128];
    char idem_key[EX_IDEM_KEY_MAX]; /* start only; "" = none */
    uint32_t params_len;
    char params[]; /* NUL-terminated */
} ex_cmd_t;

/* Builds a command; strings are copied (NULL = ""). Returns NULL when out
 * of memory or when a string is too long. Same as ex_cmd_new_keyed(...,
 * NULL). */
bt_msg_t *ex_cmd_new(uint32_t id, const char *run_id, const char *job, const char *params);

/* Builds a command with an idempotency key (start only; NULL or "" = none;
 * at most EX_IDEM_KEY_MAX - 1 bytes, else NULL). A start whose key the
 * store already holds creates nothing: when the key's run is of the same
 * job, the reply is that run (EX_OK, EX_REPLY_REPLAYED, its state now);
 * of another job, EX_ECONFLICT. Keys are kept for ever, with the run. Only
 * accepted starts store their key: a refused start (bad request, not
 * found, conflict, busy, store error) leaves nothing to replay, so the
 * same key may be used again. */
bt_msg_t *ex_cmd_new_keyed(uint32_t id, const char *run_id, const char *job, const char *params,
                           const char *idem_key);

/* ex_reply_t.flags bits. REPLAYED: a start answered with the run its
 * idempotency key created earlier (nothing new). UNCONFIRMED: a pause that
 * is durable, but whose kind did not confirm within the job's stop grace
 * that the run stopped making progress. Test a flag with
 * `r->flags & EX_REPLY_REPLAYED`, or with the macro of the same name,
 * `EX_REPLY_REPLAYED(r)` (a function-like macro is expanded only when
 * followed by a parenthesis, so both forms work). */
enum ex_reply_flag {
    EX_REPLY_REPLAYED = 0x1u,
    EX_REPLY_UNCONFIRMED = 0x2u,
};
#define EX_REPLY_REPLAYED(r)    (((r)->flags & EX_REPLY_REPLAYED) != 0)
#define EX_REPLY_UNCONFIRMED(r) (((r)->flags & EX_REPLY_UNCONFIRMED) != 0)

typedef struct ex_reply {
    bt_msg_t hdr; /* id EX_MSG_REPLY */
    int status;   /* EX_OK or an ex_err_t */
    char run_id[EX_RUN_ID_MAX];
    int state;         /* rs_state_t of the run after the command (or when refused) */
    uint32_t flags;    /* EX_REPLY_* */
    char message[320]; /* names the run and its state; "" on success (but see flags) */
} ex_reply_t;

/* Command kinds and outcomes, the two indexes of ex_stats_reply_t.commands. An
 * outcome index is 0 for EX_OK and 1..7 for EX_EBADREQ..EX_EINTERNAL
 * (ex_outcome_index); ex_err_code() names them ("ok" for 0 is the
 * caller's). */
typedef enum ex_cmd_kind {
    EX_CMD_START,
    EX_CMD_PAUSE,
    EX_CMD_RESUME,
    EX_CMD_STOP,
    EX_CMD_GET,
    EX_CMD_LIST,
    EX_CMD_KIND_COUNT
} ex_cmd_kind_t;
#define EX_OUTCOME_COUNT 8
int ex_outcome_index(int status);

/* The answer to EX_MSG_STATS: a snapshot of the executor's counters, taken
 * inside the actor (so consistent with each other), answered at once
 * (not queued behind store requests). Counters count since spawn. */
typedef struct ex_stats_reply {
    bt_msg_t hdr;                                           /* id EX_MSG_STATS_REPLY */
    uint64_t commands[EX_CMD_KIND_COUNT][EX_OUTCOME_COUNT]; /* replies sent, by kind, outcome */
    uint64_t replayed; /* starts answered from their idempotency key */
    /* Store-acknowledged moves [from][to]; creations are [RS_NONE][initial]. */
    uint64_t transitions[RS_STATE_COUNT][RS_STATE_COUNT];
    uint64_t pause_timeouts;       /* pauses answered without the kind's confirmation */
    uint64_t store_failures;       /* store requests that failed or timed out */
    uint64_t store_retries;        /* kind-caused writes and re-reads retried after a failure */
    uint64_t reconciles;           /* runs and jobs re-read after a store timeout or conflict */
    uint32_t runs[RS_STATE_COUNT]; /* non-terminal runs held now, by state */
    uint32_t retrying;             /* runs whose outcome waits for a store retry */
    uint32_t uncertain;            /* runs and jobs waiting to be re-read from the store */
    uint32_t queued;               /* work items waiting in the executor */
} ex_stats_reply_t;

#endif
