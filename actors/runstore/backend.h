/*
 * backend.h: the storage interface behind the run store actor.
 *
 * The actor owns the protocol (request batching, the transition table,
 * replies); a backend owns the bytes. The actor calls a backend from one
 * thread only, so a backend needs no locking. SQLite is the one backend
 * today (sqlite_backend.c); a PostgreSQL one, for several nodes, would
 * implement the same operations:
 *
 *  - open/close: connect, apply schema migrations, set durability.
 *  - integrity: a consistency check of the whole store.
 *  - begin/commit/rollback: one transaction per group-commit batch. Writes
 *    happen only between begin and commit; reads may happen anywhere.
 *  - create_run/transition/progress: each is atomic inside the batch (a
 *    savepoint in SQLite, a SAVEPOINT or subtransaction in PostgreSQL): it
 *    either applies whole (run row + event) or not at all, and a logical
 *    failure (RS_ECONFLICT, RS_ENOTFOUND, RS_EINVAL) leaves the rest of the
 *    batch intact. transition is a compare-and-set: UPDATE ... WHERE
 *    state = from (RETURNING in PostgreSQL).
 *  - get_run/list_runs/list_events: reads; each row is passed to a
 *    callback, with pointers valid only during the call.
 *
 * Every operation returns RS_OK or an rs_err_t; storage errors are mapped
 * to RS_EFULL, RS_EIO, RS_EBUSY, RS_ECORRUPT, RS_ENOMEM or RS_EINTERNAL, and
 * errmsg() then says what happened in words.
 */
#ifndef BATON_RUNSTORE_BACKEND_H
#define BATON_RUNSTORE_BACKEND_H

#include "runstore.h"

typedef struct rs_backend rs_backend_t;

/* Called once per row; a non-zero return stops the read and is returned. */
typedef int (*rs_run_cb)(void *ud, const rs_run_t *run);
typedef int (*rs_event_cb)(void *ud, const rs_event_t *ev);

typedef struct rs_backend_ops {
    const char *name;
    /* Opens the store named by cfg and brings its schema up to date. On
     * failure *out is untouched and err holds the reason. */
    int (*open)(const rs_config_t *cfg, rs_backend_t **out /* OUT */, char *err, size_t errlen);
    void (*close)(rs_backend_t *b); /* NULL is a no-op */
    int (*integrity)(rs_backend_t *b);
    int (*begin)(rs_backend_t *b);
    int (*commit)(rs_backend_t *b);
    void (*rollback)(rs_backend_t *b);
    /* run->id, job, state, params, created_ms, idem_key are used; does
     * not take ownership. cause goes into the creation event. A key that
     * is already used fails with RS_EDUPLICATE (callers look it up first;
     * this is the unique index speaking). */
    int (*create_run)(rs_backend_t *b, const rs_run_t *run, const char *cause);
    /* *current gets the state after the call (the new one, or the one that
     * made the compare fail). */
    int (*transition)(rs_backend_t *b, const char *id, rs_state_t from, rs_state_t to,
                      const char *cause, const char *error, int64_t now_ms,
                      rs_state_t *current /* OUT */);
    int (*progress)(rs_backend_t *b, const char *id, int64_t done, int64_t total,
                    const void *checkpoint, size_t checkpoint_len, bool set_checkpoint,
                    int64_t now_ms, rs_state_t *current /* OUT */);
    int (*get_run)(rs_backend_t *b, const char *id, rs_run_cb cb, void *ud);
    int (*list_runs)(rs_backend_t *b, const char *job, uint32_t state_mask, const char *after,
                     uint32_t limit, rs_run_cb cb, void *ud);
    int (*list_events)(rs_backend_t *b, const char *id, rs_event_cb cb, void *ud);
    /* The run created with idem_key, passed to cb; RS_ENOTFOUND if none. */
    int (*find_key)(rs_backend_t *b, const char *idem_key, rs_run_cb cb, void *ud);
    /* counts[s] = number of runs in state s, in one query. */
    int (*count_runs)(rs_backend_t *b, int64_t counts[RS_STATE_COUNT] /* OUT */);
    /* The last error in words; "" if none. */
    const char *(*errmsg)(rs_backend_t *b);
} rs_backend_ops_t;

/* Every backend instance starts with its ops. */
struct rs_backend {
    const rs_backend_ops_t *ops;
};

/* The SQLite backend. */
extern const rs_backend_ops_t rs_sqlite_backend;

#endif
