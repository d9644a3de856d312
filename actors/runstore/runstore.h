/*
 * runstore.h: the run store actor, the one owner of persisted runs.
 *
 * The store runs pinned to its own thread (SQLite blocks) and is the only
 * code that touches the database. Talk to it with requests built by the
 * rs_req_*() functions below, sent with bt_ask() (from actors) or
 * bt_ask_wait() (from other threads). Each request gets exactly one
 * rs_reply_t (message id RS_MSG_REPLY). A request that is not an ask gets no
 * reply and is dropped.
 *
 * Durability: a reply of success to a write (create, transition, progress)
 * is sent only after the transaction holding it has committed. Requests
 * that are queued together are committed together (group commit).
 */
#ifndef BATON_RUNSTORE_H
#define BATON_RUNSTORE_H

#include "ids.h"
#include "transitions.h"

#include <baton/baton.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* X(name, value, description): the store's error codes. They are disjoint
 * from bt_err_t, so a reply status may also be a runtime code. */
#define RS_ERRNO_MAP(X)                                                                            \
    X(EINVAL, -101, "invalid request")                                                             \
    X(ENOTFOUND, -102, "no such run")                                                              \
    X(ECONFLICT, -103, "run is not in the expected state")                                         \
    X(ETRANSITION, -104, "transition not allowed by the run state machine")                        \
    X(EFULL, -105, "disk full")                                                                    \
    X(EIO, -106, "I/O error in the store")                                                         \
    X(EBUSY, -107, "database locked by another process")                                           \
    X(ECORRUPT, -108, "database corrupt")                                                          \
    X(EUNAVAILABLE, -109, "store not open (retrying)")                                             \
    X(ENOMEM, -110, "out of memory in the store")                                                  \
    X(EINTERNAL, -111, "internal store error")                                                     \
    X(EDUPLICATE, -112, "idempotency key already used by another run")

typedef enum rs_err {
    RS_OK = 0,
#define RS_ERR_ENUM_(name, value, text) RS_##name = (value),
    RS_ERRNO_MAP(RS_ERR_ENUM_)
#undef RS_ERR_ENUM_
} rs_err_t;

/* A static description of a store code, or of a runtime code. */
const char *rs_strerror(int err);

/* ---------------------------------------------------------------- config */

typedef enum rs_sync {
    RS_SYNC_FULL = 0, /* default: every commit is on disk when acknowledged */
    RS_SYNC_NORMAL,   /* WAL + NORMAL: a power loss may lose the last commits */
    RS_SYNC_OFF,      /* tests and benchmarks only */
} rs_sync_t;

typedef struct rs_config {
    const char *path;          /* database file (copied); required */
    rs_sync_t synchronous;     /* default RS_SYNC_FULL */
    uint32_t busy_timeout_ms;  /* wait for a lock held by another process; 0 = 1000 */
    uint32_t max_batch;        /* requests per transaction; 0 = 1024; 1 = no group commit */
    uint64_t retry_min_ns;     /* first retry of a failed open; 0 = 10 ms */
    uint64_t retry_max_ns;     /* backoff cap; 0 = 5 s */
    const char *vfs;           /* SQLite VFS name (copied); NULL = default (tests: faultvfs) */
    const char *register_name; /* if set, bt_register()ed under this name (copied) */
} rs_config_t;

/* Spawns the store, pinned to its own thread. It opens the database (WAL,
 * foreign keys, migrations, integrity check) inside the spawn; if that
 * fails it still starts, answers RS_EUNAVAILABLE with the reason, and
 * retries the open with exponential backoff. Does not take ownership of
 * cfg; copies it. Errors: those of bt_spawn(), BT_EINVAL (no path). Safe
 * from any thread, as bt_spawn(). */
int rs_spawn(bt_runtime_t *rt, const rs_config_t *cfg, bt_ref_t *out /* OUT */);

/* The actor type, for a supervisor's child spec (arg: an rs_config_t that
 * outlives the supervisor; spawn it with BT_SPAWN_PINNED). */
const bt_actor_type_t *rs_actor_type(void);

/* -------------------------------------------------------------- messages */

enum rs_msg_id {
    RS_MSG_BASE = 0x52530000u, /* 'RS' */
    RS_MSG_CREATE,             /* create a run (write) */
    RS_MSG_TRANSITION,         /* compare-and-set a run's state (write) */
    RS_MSG_PROGRESS,           /* progress counters and checkpoint (write) */
    RS_MSG_GET,                /* one run */
    RS_MSG_LIST,               /* runs by job and state, paged by id */
    RS_MSG_ACTIVE,             /* pending, running and paused runs of a job */
    RS_MSG_EVENTS,             /* a run's history */
    RS_MSG_RECOVERY,           /* the open's integrity check and the runs active then */
    RS_MSG_STATS,              /* the store's counters */
    RS_MSG_FIND_KEY,           /* the run created with an idempotency key */
    RS_MSG_COUNTS,             /* the number of runs in each state */
    RS_MSG_REPLY,              /* rs_reply_t, the answer to all of the above */
    RS_MSG_FLUSH_,             /* internal: end of a group-commit batch */
    RS_MSG_RETRY_,             /* internal: retry the open */
    RS_MSG_END_
};

/* Request builders. Each returns a message owned by the caller (to send
 * with bt_ask/bt_ask_wait, or free with bt_msg_free), or NULL when out of
 * memory or when an argument is too long (strings up to 1 MiB). String and
 * byte arguments are copied; none is taken. Safe from any thread.
 *
 * create: a new run of job in state `initial` (pending or running), with
 *   params (JSON text; NULL for "{}"); the reply's run_id names it.
 * transition: moves run id from `from` to `to` if it is in `from`; cause
 *   (may be NULL) goes into the event, error (may be NULL) into last_error.
 *   Fails with RS_ETRANSITION if the table refuses from -> to (nothing is
 *   read or written), RS_ENOTFOUND, or RS_ECONFLICT with the current state
 *   in reply->state. Entering running counts an attempt and sets started;
 *   entering a terminal state sets finished.
 * progress: sets the counters and, if checkpoint is not NULL, the
 *   checkpoint, of a run that is not terminal (RS_ECONFLICT otherwise).
 * list: runs of job (NULL: any job) whose state is in state_mask (0: any),
 *   with ids after `after` (NULL: from the start), oldest first, at most
 *   limit (0 or > 1000: 1000); reply->next_cursor is set when more may
 *   follow.
 * create_keyed: create with an idempotency key (1..RS_IDEM_KEY_MAX bytes;
 *   NULL or "" is a plain create; longer: the builder returns NULL). If a
 *   run with that key exists (whatever its job or state), nothing is
 *   written and the reply is RS_EDUPLICATE with that run as run 0 and its
 *   id in run_id and its state in state. Keys are unique across all runs,
 *   for ever (runs are never deleted).
 * find_key: the run created with that key (as run 0), or RS_ENOTFOUND.
 * counts: reply->counts[s] is the number of runs in state s (one query);
 *   counts[RS_NONE] is 0. */
#define RS_IDEM_KEY_MAX 128
bt_msg_t *rs_req_create(const char *job, const char *params, rs_state_t initial);
bt_msg_t *rs_req_create_keyed(const char *job, const char *params, rs_state_t initial,
                              const char *idem_key);
bt_msg_t *rs_req_transition(const char *id, rs_state_t from, rs_state_t to, const char *cause,
                            const char *error);
bt_msg_t *rs_req_progress(const char *id, int64_t done, int64_t total, const void *checkpoint,
                          size_t checkpoint_len);
bt_msg_t *rs_req_get(const char *id);
bt_msg_t *rs_req_list(const char *job, uint32_t state_mask, const char *after, uint32_t limit);
bt_msg_t *rs_req_active(const char *job);
bt_msg_t *rs_req_events(const char *id);
bt_msg_t *rs_req_recovery(void);
bt_msg_t *rs_req_stats(void);
bt_msg_t *rs_req_find_key(const char *idem_key);
bt_msg_t *rs_req_counts(void);

/* A run, as read from a reply: the pointers point into the reply message
 * and are valid while it is. Timestamps are Unix milliseconds, 0 if unset. */
typedef struct rs_run {
    const char *id;
    const char *job;
    rs_state_t state;
    const char *params; /* JSON text */
    int64_t progress_done, progress_total;
    const void *checkpoint; /* NULL if none */
    size_t checkpoint_len;
    uint32_t attempt;       /* times the run entered running */
    const char *last_error; /* NULL if none */
    int64_t created_ms, started_ms, updated_ms, finished_ms;
    const char *idem_key; /* the idempotency key it was created with, NULL if none */
} rs_run_t;

/* One entry of a run's history. */
typedef struct rs_event {
    int64_t seq; /* increasing across the store */
    int64_t at_ms;
    rs_state_t from; /* RS_NONE for the creation */
    rs_state_t to;
    const char *cause; /* points into the reply */
} rs_event_t;

typedef struct rs_stats {
    uint64_t requests;     /* requests answered */
    uint64_t transactions; /* committed write transactions */
    uint64_t failed;       /* transactions rolled back for a storage error */
    uint64_t max_batch;    /* most requests in one transaction */
    uint64_t opens;        /* successful opens */
    uint64_t open_failures;
} rs_stats_t;

/* Position-independent layout (the runtime may copy a reply): use the
 * accessors below to read runs and events. */
typedef struct rs_reply {
    bt_msg_t hdr;               /* id RS_MSG_REPLY */
    uint32_t op;                /* the request's message id */
    int status;                 /* RS_OK or an rs_err_t / bt_err_t code */
    rs_state_t state;           /* transition: the new state, or the current one on RS_ECONFLICT */
    char message[256];          /* a sentence a person can act on; "" on success */
    char run_id[RS_ID_LEN + 1]; /* create: the new run's id */
    char next_cursor[RS_ID_LEN + 1]; /* list: pass as `after` for the next page; "" at the end */
    bool integrity_ok;               /* recovery: whether the open's integrity check passed */
    rs_stats_t stats;                /* stats */
    int64_t counts[RS_STATE_COUNT];  /* counts: runs per state */
    uint32_t nruns, nevents;
    uint32_t runs_off, events_off; /* internal: offsets from the start of the reply */
} rs_reply_t;

/* Reads run i (< nruns) / event i (< nevents) of a reply; does not take
 * ownership of it. Safe from any thread that owns the reply. */
void rs_reply_run(const rs_reply_t *reply, uint32_t i, rs_run_t *out /* OUT */);
void rs_reply_event(const rs_reply_t *reply, uint32_t i, rs_event_t *out /* OUT */);

#endif
