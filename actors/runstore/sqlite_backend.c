/*
 * sqlite_backend.c: the run store's SQLite backend (see backend.h).
 *
 * One connection, used only by the store actor's thread (opened with
 * SQLITE_OPEN_NOMUTEX). WAL journal, foreign keys on, `synchronous` from
 * the config. The schema is versioned with PRAGMA user_version and brought
 * up to date at open, one migration per transaction. Statements are
 * prepared once at open. Each write operation runs inside a savepoint, so
 * that it applies whole or not at all within the batch's transaction.
 */
#include "backend.h"

#include <sqlite3.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Migrations, in order; migration i brings the schema to version i + 1.
 * Never edit one that has shipped: append a new one. */
static const char *const migrations[] = {
    /* 1: runs and their events. */
    "CREATE TABLE runs("
    " id TEXT PRIMARY KEY NOT NULL,"
    " job TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN"
    "  ('pending','running','paused','completed','failed','stopped')),"
    " params TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(params)),"
    " progress_done INTEGER NOT NULL DEFAULT 0,"
    " progress_total INTEGER NOT NULL DEFAULT 0,"
    " checkpoint BLOB,"
    " attempt INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT,"
    " created_at INTEGER NOT NULL,"
    " started_at INTEGER,"
    " updated_at INTEGER NOT NULL,"
    " finished_at INTEGER"
    ") WITHOUT ROWID;"
    "CREATE INDEX runs_by_job ON runs(job, id);"
    "CREATE INDEX runs_by_state ON runs(state, id);"
    "CREATE TABLE events("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    " at INTEGER NOT NULL,"
    " from_state TEXT,"
    " to_state TEXT NOT NULL,"
    " cause TEXT NOT NULL DEFAULT ''"
    ");"
    "CREATE INDEX events_by_run ON events(run_id, seq);",
    /* 2: idempotency keys of starts. NULL for runs created without one;
     * unique among the others (a partial index: NULLs are never indexed). */
    "ALTER TABLE runs ADD COLUMN idem_key TEXT"
    " CHECK (idem_key IS NULL OR length(idem_key) BETWEEN 1 AND 128);"
    "CREATE UNIQUE INDEX runs_by_idem_key ON runs(idem_key) WHERE idem_key IS NOT NULL;",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

#define RUN_COLUMNS                                                                                \
    "id, job, state, params, progress_done, progress_total, checkpoint, attempt, last_error,"      \
    " created_at, started_at, updated_at, finished_at, idem_key"

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_INSERT_RUN,
    ST_INSERT_EVENT,
    ST_TRANSITION,
    ST_STATE_OF,
    ST_PROGRESS,
    ST_GET_RUN,
    ST_LIST_RUNS,
    ST_LIST_EVENTS,
    ST_FIND_KEY,
    ST_COUNT_RUNS,
    ST_COUNT
};

static const char *const statements[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT op",
    [ST_RELEASE] = "RELEASE op",
    [ST_ROLLBACK_TO] = "ROLLBACK TO op",
    [ST_INSERT_RUN] = "INSERT INTO runs(id, job, state, params, created_at, started_at, attempt,"
                      " updated_at, idem_key) VALUES(?1, ?2, ?3, ?4, ?5,"
                      " CASE WHEN ?3 = 'running' THEN ?5 END, ?3 = 'running', ?5, ?6)",
    [ST_INSERT_EVENT] = "INSERT INTO events(run_id, at, from_state, to_state, cause)"
                        " VALUES(?1, ?2, ?3, ?4, coalesce(?5, ''))",
    [ST_TRANSITION] =
        "UPDATE runs SET state = ?3, updated_at = ?4,"
        " attempt = attempt + (?3 = 'running'),"
        " started_at = CASE WHEN ?3 = 'running' THEN coalesce(started_at, ?4) ELSE started_at END,"
        " finished_at = CASE WHEN ?3 IN ('completed','failed','stopped') THEN ?4"
        "  ELSE finished_at END,"
        " last_error = coalesce(?5, last_error)"
        " WHERE id = ?1 AND state = ?2",
    [ST_STATE_OF] = "SELECT state FROM runs WHERE id = ?1",
    [ST_PROGRESS] = "UPDATE runs SET progress_done = ?2, progress_total = ?3, updated_at = ?4,"
                    " checkpoint = CASE WHEN ?6 THEN ?5 ELSE checkpoint END"
                    " WHERE id = ?1 AND state IN ('pending','running','paused')",
    [ST_GET_RUN] = "SELECT " RUN_COLUMNS " FROM runs WHERE id = ?1",
    [ST_LIST_RUNS] = "SELECT " RUN_COLUMNS " FROM runs"
                     " WHERE (?1 IS NULL OR job = ?1)"
                     " AND (?2 = '' OR instr(?2, ',' || state || ',') > 0)"
                     " AND id > ?3 ORDER BY id LIMIT ?4",
    [ST_LIST_EVENTS] = "SELECT seq, at, from_state, to_state, cause FROM events"
                       " WHERE run_id = ?1 ORDER BY seq",
    [ST_FIND_KEY] = "SELECT " RUN_COLUMNS " FROM runs WHERE idem_key = ?1",
    [ST_COUNT_RUNS] = "SELECT state, count(*) FROM runs GROUP BY state",
};

typedef struct {
    rs_backend_t base;
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    char err[512];
} sqlite_backend_t;

/* snprintf that may truncate on purpose (messages are capped). */
__attribute__((format(printf, 3, 4))) static void say(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

/* Maps a SQLite result code to a store code. */
static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return RS_OK;
    case SQLITE_FULL:
        return RS_EFULL;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return RS_EIO;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return RS_EBUSY;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return RS_ECORRUPT;
    case SQLITE_NOMEM:
        return RS_ENOMEM;
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
        return RS_EINVAL;
    default:
        return RS_EINTERNAL;
    }
}

/* Records the connection's error under `what` and returns its store code. */
static int fail(sqlite_backend_t *b, const char *what, int rc)
{
    say(b->err, sizeof(b->err), "%s: %s (%s)", what,
        b->db != NULL ? sqlite3_errmsg(b->db) : sqlite3_errstr(rc), sqlite3_errstr(rc));
    return map_rc(rc);
}

/* Runs a statement that returns no rows, and resets it. */
static int step_done(sqlite_backend_t *b, int which, const char *what)
{
    sqlite3_stmt *s = b->st[which];
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? RS_OK : fail(b, what, rc);
}

static int exec(sqlite_backend_t *b, const char *sql, const char *what)
{
    int rc = sqlite3_exec(b->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? RS_OK : fail(b, what, rc);
}

static void bind_text(sqlite3_stmt *s, int i, const char *text)
{
    if (text != NULL)
        sqlite3_bind_text(s, i, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

/* An integer-valued PRAGMA or single-value query. */
static int query_int(sqlite_backend_t *b, const char *sql, int *out)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(b->db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return fail(b, sql, rc);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int(s, 0);
    int err = rc == SQLITE_ROW ? RS_OK : fail(b, sql, rc);
    sqlite3_finalize(s);
    return err;
}

static int migrate(sqlite_backend_t *b)
{
    int version = 0;
    int err = query_int(b, "PRAGMA user_version", &version);
    if (err != RS_OK)
        return err;
    if (version > SCHEMA_VERSION) {
        say(b->err, sizeof(b->err),
            "the database's schema version %d is newer than this build's (%d): use a newer"
            " baton or another state directory",
            version, SCHEMA_VERSION);
        return RS_EINVAL;
    }
    for (int v = version; v < SCHEMA_VERSION; v++) {
        char bump[64];
        snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", v + 1);
        if ((err = exec(b, "BEGIN IMMEDIATE", "starting a migration")) != RS_OK)
            return err;
        if ((err = exec(b, migrations[v], "applying a schema migration")) != RS_OK ||
            (err = exec(b, bump, "recording the schema version")) != RS_OK ||
            (err = exec(b, "COMMIT", "committing a schema migration")) != RS_OK) {
            sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
            return err;
        }
    }
    return RS_OK;
}

static void sq_close(rs_backend_t *base)
{
    sqlite_backend_t *b = (sqlite_backend_t *)base;
    if (b == NULL)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(b->st[i]);
    sqlite3_close_v2(b->db);
    free(b);
}

static int sq_open(const rs_config_t *cfg, rs_backend_t **out, char *errbuf, size_t errlen)
{
    sqlite_backend_t *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        snprintf(errbuf, errlen, "out of memory opening the store");
        return RS_ENOMEM;
    }
    b->base.ops = &rs_sqlite_backend;
    static const char *const sync_pragma[] = {
        [RS_SYNC_FULL] = "PRAGMA synchronous = FULL",
        [RS_SYNC_NORMAL] = "PRAGMA synchronous = NORMAL",
        [RS_SYNC_OFF] = "PRAGMA synchronous = OFF",
    };
    int err = RS_OK;
    int rc =
        sqlite3_open_v2(cfg->path, &b->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, cfg->vfs);
    if (rc != SQLITE_OK) {
        err = fail(b, "opening the database file", rc);
        goto out;
    }
    sqlite3_extended_result_codes(b->db, 1);
    sqlite3_busy_timeout(b->db, cfg->busy_timeout_ms != 0 ? (int)cfg->busy_timeout_ms : 1000);
    char mode[16] = "";
    sqlite3_stmt *s;
    rc = sqlite3_prepare_v2(b->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW)
        snprintf(mode, sizeof(mode), "%s",
                 sqlite3_column_text(s, 0) ? (const char *)sqlite3_column_text(s, 0) : "?");
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW) {
        err = fail(b, "switching to WAL mode", rc);
        goto out;
    }
    if (strcmp(mode, "wal") != 0) {
        say(b->err, sizeof(b->err), "the database refused WAL mode (journal mode %s)", mode);
        err = RS_EIO;
        goto out;
    }
    unsigned sync = (unsigned)cfg->synchronous <= RS_SYNC_OFF ? cfg->synchronous : RS_SYNC_FULL;
    if ((err = exec(b, "PRAGMA foreign_keys = ON", "enabling foreign keys")) != RS_OK ||
        (err = exec(b, sync_pragma[sync], "setting synchronous")) != RS_OK ||
        (err = migrate(b)) != RS_OK)
        goto out;
    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(b->db, statements[i], -1, SQLITE_PREPARE_PERSISTENT, &b->st[i],
                                NULL);
        if (rc != SQLITE_OK) {
            err = fail(b, "preparing a statement", rc);
            goto out;
        }
    }
out:
    if (err != RS_OK) {
        say(errbuf, errlen, "%s: %s", cfg->path, b->err);
        sq_close(&b->base);
        return err;
    }
    *out = &b->base;
    return RS_OK;
}

static int sq_integrity(rs_backend_t *base)
{
    sqlite_backend_t *b = (sqlite_backend_t *)base;
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(b->db, "PRAGMA integrity_check", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return fail(b, "integrity check", rc);
    int err = RS_OK;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *res = (const char *)sqlite3_column_text(s, 0);
        if (res == NULL || strcmp(res, "ok") != 0) {
            say(b->err, sizeof(b->err), "integrity check failed: %s", res ? res : "?");
            err = RS_ECORRUPT;
        }
    } else {
        err = fail(b, "integrity check", rc);
    }
    sqlite3_finalize(s);
    return err;
}

static int sq_begin(rs_backend_t *base)
{
    return step_done((sqlite_backend_t *)base, ST_BEGIN, "starting a transaction");
}

static int sq_commit(rs_backend_t *base)
{
    return step_done((sqlite_backend_t *)base, ST_COMMIT, "committing");
}

static void sq_rollback(rs_backend_t *base)
{
    sqlite_backend_t *b = (sqlite_backend_t *)base;
    if (!sqlite3_get_autocommit(b->db))
        (void)step_done(b, ST_ROLLBACK, "rolling back");
}

/* Ends an operation's savepoint: released on success, undone otherwise. */
static int op_end(sqlite_backend_t *b, int err)
{
    if (err != RS_OK) {
        char keep[sizeof(b->err)];
        memcpy(keep, b->err, sizeof(keep));
        (void)step_done(b, ST_ROLLBACK_TO, "undoing an operation");
        (void)step_done(b, ST_RELEASE, "undoing an operation");
        memcpy(b->err, keep, sizeof(keep));
        return err;
    }
    return step_done(b, ST_RELEASE, "finishing an operation");
}

static int insert_event(sqlite_backend_t *b, const char *id, int64_t at, rs_state_t from,
                        rs_state_t to, const char *cause)
{
    sqlite3_stmt *s = b->st[ST_INSERT_EVENT];
    bind_text(s, 1, id);
    sqlite3_bind_int64(s, 2, at);
    bind_text(s, 3, from == RS_NONE ? NULL : rs_state_name(from));
    bind_text(s, 4, rs_state_name(to));
    bind_text(s, 5, cause);
    return step_done(b, ST_INSERT_EVENT, "appending an event");
}

static int sq_create_run(rs_backend_t *base, const rs_run_t *run, const char *cause)
{
    sqlite_backend_t *b = (sqlite_backend_t *)base;
    int err = step_done(b, ST_SAVEPOINT, "starting an operation");
    if (err != RS_OK)
        return err;
    sqlite3_stmt *s = b->st[ST_INSERT_RUN];
    bind_text(s, 1, run->id);
    bind_text(s, 2, run->job);
    bind_text(s, 3, rs_state_name(run->state));
    bind_text(s, 4, run->params != NULL ? run->params : "{}");
    sqlite3_bind_int64(s, 5, run->created_ms);
    bind_text(s, 6, run->idem_key);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    err = rc == SQLITE_DONE ? RS_OK : fail(b, "inserting a run", rc);
    if (rc == SQLITE_CONSTRAINT_UNIQUE && run->idem_key != NULL) {
        say(b->err, sizeof(b->err), "run %s refused: idempotency key \"%.128s\" is already used",
            run->id, run->idem_key);
        err = RS_EDUPLICATE;
    } else if (err == RS_EINVAL) {
        say(b->err, sizeof(b->err), "run %s refused: params must be valid JSON", run->id);
    }
    if (err == RS_OK)
        err = insert_event(b, run->id, run->created_ms, RS_NONE, run->state, cause);
    return op_end(b, err);
}

/* The state of run id into *out; RS_ENOTFOUND if there is none. */
static int state_of(sqlite_backend_t *b, const char *id, rs_state_t *out)
{
    sqlite3_stmt *s = b->st[ST_STATE_OF];
    bind_text(s, 1, id);
    int rc = sqlite3_step(s);
    int err = RS_OK;
    if (rc == SQLITE_ROW)
        *out = rs_state_parse((const char *)sqlite3_column_text(s, 0));
    else if (rc == SQLITE_DONE) {
        say(b->err, sizeof(b->err), "run %s does not exist", id);
        err = RS_ENOTFOUND;
    } else
        err = fail(b, "reading a run's state", rc);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return err;
}

static int sq_transition(rs_backend_t *base, const char *id, rs_state_t from, rs_state_t to,
                         const char *cause, const char *error, int64_t now_ms, rs_state_t *current)
{
    sqlite_backend_t *b = (sqlite_backend_t *)base;
    int err = step_done(b, ST_SAVEPOINT, "starting an operation");
    if (err != RS_OK)
        return err;
    sqlite3_stmt *s = b->st[ST_TRANSITION];
    bind_text(s, 1, id);
    bind_text(s, 2, rs_state_name(from));
    bind_text(s, 3, rs_state_name(to));
    sqlite3_bind_int64(s, 4, now_ms);
    bind_text(s, 5, error);
    err = step_done(b, ST_TRANSITION, "updating a run");
    if (err == RS_OK && sqlite3_changes(b->db) == 0) {
        /* The compare failed: say why, with the current state. */
        err = state_of(b, id, current);
        if (err == RS_OK) {
            say(b->err, sizeof(b->err), "run %s is %s, not %s; cannot move it to %s", id,
                rs_state_name(*current), rs_state_name(from), rs_state_name(to));
            err = RS_ECONFLICT;
        }
        return op_end(b, err);
    }
    if (err == RS_OK)
        err = insert_event(b, id, now_ms, from, to, cause);
    if (err == RS_OK)
        *current = to;
    return op_end(b, err);
}

static int sq_progress(rs_backend_t *base, const char *id, int64_t done, int64_t total,
                       const void *checkpoint, size_t checkpoint_len, bool set_checkpoint,
                       int64_t now_ms, rs_state_t *current)
{
    sqlite_backend_t *b = (sqlite_backend_t *)base;
    int err = step_done(b, ST_SAVEPOINT, "starting an operation");
    if (err != RS_OK)
        return err;
    sqlite3_stmt *s = b->st[ST_PROGRESS];
    bind_text(s, 1, id);
    sqlite3_bind_int64(s, 2, done);
    sqlite3_bind_int64(s, 3, total);
    sqlite3_bind_int64(s, 4, now_ms);
    if (set_checkpoint && checkpoint != NULL)
        sqlite3_bind_blob64(s, 5, checkpoint, checkpoint_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 5);
    sqlite3_bind_int(s, 6, set_checkpoint);
    err = step_done(b, ST_PROGRESS, "updating a run's progress");
    int changed = sqlite3_changes(b->db);
    if (err == RS_OK)
        err = state_of(b, id, current);
    if (err == RS_OK && changed == 0) {
        say(b->err, sizeof(b->err), "run %s is %s; its progress can no longer change", id,
            rs_state_name(*current));
        err = RS_ECONFLICT;
    }
    return op_end(b, err);
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

static void row_to_run(sqlite3_stmt *s, rs_run_t *r)
{
    memset(r, 0, sizeof(*r));
    r->id = col_text(s, 0);
    r->job = col_text(s, 1);
    r->state = rs_state_parse(col_text(s, 2));
    r->params = col_text(s, 3);
    r->progress_done = sqlite3_column_int64(s, 4);
    r->progress_total = sqlite3_column_int64(s, 5);
    if (sqlite3_column_type(s, 6) != SQLITE_NULL) {
        r->checkpoint = sqlite3_column_blob(s, 6);
        r->checkpoint_len = (size_t)sqlite3_column_bytes(s, 6);
        if (r->checkpoint == NULL)
            r->checkpoint = ""; /* an empty blob */
    }
    r->attempt = (uint32_t)sqlite3_column_int64(s, 7);
    r->last_error = col_text(s, 8);
    r->created_ms = sqlite3_column_int64(s, 9);
    r->started_ms = sqlite3_column_int64(s, 10);
    r->updated_ms = sqlite3_column_int64(s, 11);
    r->finished_ms = sqlite3_column_int64(s, 12);
    r->idem_key = col_text(s, 13);
}

/* Steps a run query to its end, passing each row to cb. */
static int each_run(sqlite_backend_t *b, int which, rs_run_cb cb, void *ud, int *rows)
{
    sqlite3_stmt *s = b->st[which];
    int err = RS_OK, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        rs_run_t run;
        row_to_run(s, &run);
        (*rows)++;
        if ((err = cb(ud, &run)) != RS_OK)
            break;
    }
    if (err == RS_OK && rc != SQLITE_DONE)
        err = fail(b, "reading runs", rc);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return err;
}

static int sq_get_run(rs_backend_t *base, const char *id, rs_run_cb cb, void *ud)
{
    sqlite_backend_t *b = (sqlite_backend_t *)base;
    bind_text(b->st[ST_GET_RUN], 1, id);
    int rows = 0;
    int err = each_run(b, ST_GET_RUN, cb, ud, &rows);
    if (err == RS_OK && rows == 0) {
        say(b->err, sizeof(b->err), "run %s does not exist", id);
        err = RS_ENOTFOUND;
    }
    return err;
}

static int sq_list_runs(rs_backend_t *base, const char *job, uint32_t state_mask, const char *after,
                        uint32_t limit, rs_run_cb cb, void *ud)
{
    sqlite_backend_t *b = (sqlite_backend_t *)base;
    char states[128] = "";
    size_t n = 0;
    for (int st = RS_PENDING; st < RS_STATE_COUNT; st++)
        if (state_mask & RS_MASK(st))
            n += (size_t)snprintf(states + n, sizeof(states) - n, ",%s", rs_state_name(st));
    if (n > 0)
        snprintf(states + n, sizeof(states) - n, ",");
    sqlite3_stmt *s = b->st[ST_LIST_RUNS];
    bind_text(s, 1, job);
    bind_text(s, 2, states);
    bind_text(s, 3, after != NULL ? after : "");
    sqlite3_bind_int64(s, 4, limit);
    int rows = 0;
    return each_run(b, ST_LIST_RUNS, cb, ud, &rows);
}

static int sq_list_events(rs_backend_t *base, const char *id, rs_event_cb cb, void *ud)
{
    sqlite_backend_t *b = (sqlite_backend_t *)base;
    sqlite3_stmt *s = b->st[ST_LIST_EVENTS];
    bind_text(s, 1, id);
    int err = RS_OK, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *from = col_text(s, 2);
        rs_event_t ev = {
            .seq = sqlite3_column_int64(s, 0),
            .at_ms = sqlite3_column_int64(s, 1),
            .from = from != NULL ? rs_state_parse(from) : RS_NONE,
            .to = rs_state_parse(col_text(s, 3)),
            .cause = col_text(s, 4),
        };
        if ((err = cb(ud, &ev)) != RS_OK)
            break;
    }
    if (err == RS_OK && rc != SQLITE_DONE)
        err = fail(b, "reading events", rc);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return err;
}

static int sq_find_key(rs_backend_t *base, const char *idem_key, rs_run_cb cb, void *ud)
{
    sqlite_backend_t *b = (sqlite_backend_t *)base;
    bind_text(b->st[ST_FIND_KEY], 1, idem_key);
    int rows = 0;
    int err = each_run(b, ST_FIND_KEY, cb, ud, &rows);
    if (err == RS_OK && rows == 0) {
        say(b->err, sizeof(b->err), "no run has idempotency key \"%.128s\"", idem_key);
        err = RS_ENOTFOUND;
    }
    return err;
}

static int sq_count_runs(rs_backend_t *base, int64_t counts[RS_STATE_COUNT])
{
    sqlite_backend_t *b = (sqlite_backend_t *)base;
    sqlite3_stmt *s = b->st[ST_COUNT_RUNS];
    for (int i = 0; i < RS_STATE_COUNT; i++)
        counts[i] = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        rs_state_t st = rs_state_parse(col_text(s, 0));
        if (st > RS_NONE && st < RS_STATE_COUNT)
            counts[st] = sqlite3_column_int64(s, 1);
    }
    int err = rc == SQLITE_DONE ? RS_OK : fail(b, "counting runs", rc);
    sqlite3_reset(s);
    return err;
}

static const char *sq_errmsg(rs_backend_t *base)
{
    return ((sqlite_backend_t *)base)->err;
}

const rs_backend_ops_t rs_sqlite_backend = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .integrity = sq_integrity,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .create_run = sq_create_run,
    .transition = sq_transition,
    .progress = sq_progress,
    .get_run = sq_get_run,
    .list_runs = sq_list_runs,
    .list_events = sq_list_events,
    .find_key = sq_find_key,
    .count_runs = sq_count_runs,
    .errmsg = sq_errmsg,
};
