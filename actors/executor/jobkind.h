/*
 * jobkind.h: the job kind framework. A job kind is an actor type plus a
 * descriptor (ex_kind_t): its name, how to validate its params, its recovery
 * policy. The executor spawns one kind actor per run attempt, with an
 * ex_kind_args_t as the spawn argument, and drives it with EX_K_RUN,
 * EX_K_PAUSE, EX_K_RESUME and EX_K_STOP (plain sends, no payload). The kind
 * reports with ex_kind_progress(), ex_kind_checkpoint(), ex_kind_done(),
 * ex_kind_failed() and ex_kind_stopped(); after one of the last three it
 * should stop itself (bt_stop_self). After EX_K_PAUSE, once the run makes no
 * more progress (its process is stopped, its request aborted), the kind
 * confirms with ex_kind_paused(); the executor answers the pause only then
 * (or after the job's stop grace, if the kind never confirms). Confirm each
 * EX_K_PAUSE exactly once, in order, even when an EX_K_RESUME arrives before
 * the run is quiescent (confirm, then resume): the executor matches
 * confirmations to pauses by count. An outcome (done, failed, stopped) also
 * answers a pause still waiting, so after EX_K_STOP no confirmation is
 * needed. A kind with nothing running confirms in its EX_K_PAUSE handler.
 * Messages: after a successful send a message belongs to the runtime (see
 * baton.h).
 */
#ifndef BATON_EXECUTOR_JOBKIND_H
#define BATON_EXECUTOR_JOBKIND_H

#include <baton/baton.h>

#include <stddef.h>
#include <stdint.h>

#define EX_RUN_ID_MAX 40  /* bytes of a run id, NUL included */
#define EX_ERRMSG_MAX 256 /* bytes of an error message, NUL included */

/* What recovery does with a run found running after a restart. */
typedef enum ex_recovery {
    EX_RECOVERY_DEFAULT = 0, /* in a job: use the kind's; in a kind: FAIL */
    EX_RECOVERY_FAIL,        /* fail it as interrupted */
    EX_RECOVERY_RESUME,      /* run it again from its last checkpoint */
} ex_recovery_t;

/* The spawn argument of a kind actor. init does not own it and must copy
 * what it keeps (the strings and checkpoint are freed after spawn). */
typedef struct ex_kind_args {
    bt_ref_t executor;      /* where to report */
    const char *run_id;     /* the run */
    const char *job;        /* its job's name */
    const char *params;     /* JSON text, already validated */
    const void *checkpoint; /* last persisted checkpoint, or NULL */
    size_t checkpoint_len;
    uint32_t attempt;       /* 1 for a first run */
    uint64_t stop_grace_ns; /* the job's grace before a forced stop */
    const char *state_dir;  /* the executor's state directory (logs go below it) */
    bt_ref_t timeouts;      /* the timeout registry, or BT_REF_NONE */
} ex_kind_args_t;

/* A kind's descriptor; must outlive the executor. */
typedef struct ex_kind {
    const char *name;            /* e.g. "exec" */
    const bt_actor_type_t *type; /* spawned once per run (re)start */
    uint32_t spawn_flags;        /* BT_SPAWN_PINNED when the kind blocks */
    /* Validates params (JSON text) for a start. Returns 0, or non-zero
     * with a sentence for a person in err. NULL: anything goes. */
    int (*validate)(const char *params, char *err, size_t errlen);
    ex_recovery_t recovery; /* for runs found running at start-up */
} ex_kind_t;

/* Executor -> kind (bt_msg_t, no payload). */
enum ex_kind_ctl_id {
    EX_K_RUN = 0x45580100u, /* start working (from the checkpoint in the args, if any) */
    EX_K_PAUSE,             /* stop making progress until EX_K_RESUME */
    EX_K_RESUME,
    EX_K_STOP, /* finish soon, then ex_kind_stopped() */
    /* Kind -> executor: ex_kind_report_t. */
    EX_K_PROGRESS,
    EX_K_CHECKPOINT,
    EX_K_DONE,
    EX_K_FAILED,
    EX_K_STOPPED,
    EX_K_PAUSED, /* the run is quiescent after EX_K_PAUSE */
    EX_K_END_
};

/* A report from a kind. data[len] is the checkpoint for EX_K_CHECKPOINT. */
typedef struct ex_kind_report {
    bt_msg_t hdr;
    char run_id[EX_RUN_ID_MAX];
    int64_t done, total;
    char error[EX_ERRMSG_MAX]; /* EX_K_FAILED: why */
    uint32_t len;
    unsigned char data[];
} ex_kind_report_t;

/* Report helpers, for use inside the kind's dispatch. They copy their
 * arguments (none is taken) and return the code of bt_send, or BT_ENOMEM. */
int ex_kind_progress(bt_ctx_t *ctx, bt_ref_t executor, const char *run_id, int64_t done,
                     int64_t total);
int ex_kind_checkpoint(bt_ctx_t *ctx, bt_ref_t executor, const char *run_id, int64_t done,
                       int64_t total, const void *data, size_t len);
int ex_kind_done(bt_ctx_t *ctx, bt_ref_t executor, const char *run_id);
int ex_kind_failed(bt_ctx_t *ctx, bt_ref_t executor, const char *run_id, const char *error);
int ex_kind_stopped(bt_ctx_t *ctx, bt_ref_t executor, const char *run_id);
/* The run is quiescent after EX_K_PAUSE (one call per EX_K_PAUSE). */
int ex_kind_paused(bt_ctx_t *ctx, bt_ref_t executor, const char *run_id);

#endif
