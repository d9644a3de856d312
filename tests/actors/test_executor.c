/* test_executor.c: the executor actor through its message interface: the
 * run state machine and its refusals, the single-active-run policy under
 * 64 concurrent starts, queueing under max_running, the bounded queue,
 * cooperative and forced stops, durability in the run store, recovery
 * after the store is reopened, pauses answered on the kind's confirmation
 * (and the commands that meet a waiting pause), idempotency keys (also
 * across a restart and under 32 concurrent starts), outcomes retried
 * through store failures (fault VFS), the counters, store round trips
 * of commands on different runs overlapping (with reservations holding
 * the limits), and reconciliation with the store after a write timed out
 * but committed (fault VFS holding the fsync past a short store timeout)
 * or after a compare-and-set met a stale view. Job kinds here are small
 * test actors. */
#define _GNU_SOURCE
#include "executor.h"
#include "faultvfs.h"
#include "runstore.h"

#include <sqlite3.h>

#include <baton/baton.h>
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MS     (1000000ull)
#define SEC_NS (1000000000ull)

/* ------------------------------------------------------- test kinds */

/* "idle": does nothing until stopped; registers itself as "k-<run id>" so a
 * test can make it finish (TK_DONE) or fail (TK_FAIL); confirms a pause at
 * once. "stubborn" ignores EX_K_STOP, so only the executor's forced stop
 * ends it. "slow" confirms a pause only when told (TK_CONFIRM); "mute"
 * never confirms one. */
enum { TK_DONE = 0x54000001u, TK_FAIL, TK_STEP, TK_CONFIRM, TK_QUERY, TK_QUERY_REPLY };

/* The answer to TK_QUERY: whether the kind is paused (EX_K_PAUSE seen, no
 * EX_K_RESUME since), and how many EX_K_PAUSE it got. */
typedef struct tk_query_reply {
    bt_msg_t hdr;
    int paused;
    int pauses;
} tk_query_reply_t;

typedef enum { PAUSE_AT_ONCE, PAUSE_WHEN_TOLD, PAUSE_NEVER } pause_mode_t;

typedef struct tk {
    bt_ref_t executor;
    char run_id[EX_RUN_ID_MAX];
    bool stubborn;
    pause_mode_t pause_mode;
    int64_t steps;
    bool paused;
    int pauses;
} tk_t;

static int tk_init_common(bt_ctx_t *ctx, tk_t *t, const ex_kind_args_t *a, bool stubborn)
{
    t->executor = a->executor;
    t->stubborn = stubborn;
    t->pause_mode = PAUSE_AT_ONCE;
    snprintf(t->run_id, sizeof(t->run_id), "%s", a->run_id);
    char name[64];
    snprintf(name, sizeof(name), "k-%s", a->run_id);
    (void)bt_register(bt_ctx_runtime(ctx), name, bt_self(ctx));
    return BT_OK;
}

static int idle_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    return tk_init_common(ctx, state, arg, false);
}

static int stubborn_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    return tk_init_common(ctx, state, arg, true);
}

static int slow_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    tk_init_common(ctx, state, arg, false);
    ((tk_t *)state)->pause_mode = PAUSE_WHEN_TOLD;
    return BT_OK;
}

static int mute_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    tk_init_common(ctx, state, arg, false);
    ((tk_t *)state)->pause_mode = PAUSE_NEVER;
    return BT_OK;
}

static int tk_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    tk_t *t = state;
    switch (msg->id) {
    case EX_K_PAUSE:
        t->paused = true;
        t->pauses++;
        if (t->pause_mode == PAUSE_AT_ONCE)
            ex_kind_paused(ctx, t->executor, t->run_id);
        break;
    case EX_K_RESUME:
        t->paused = false;
        break;
    case TK_QUERY: {
        tk_query_reply_t *q = BT_MSG_NEW(tk_query_reply_t, TK_QUERY_REPLY);
        if (q == NULL)
            break;
        q->paused = t->paused;
        q->pauses = t->pauses;
        if (bt_reply(ctx, msg, &q->hdr) != BT_OK)
            bt_msg_free(&q->hdr);
        break;
    }
    case TK_CONFIRM:
        ex_kind_paused(ctx, t->executor, t->run_id);
        break;
    case EX_K_STOP:
        if (!t->stubborn) {
            ex_kind_stopped(ctx, t->executor, t->run_id);
            bt_stop_self(ctx);
        }
        break;
    case TK_DONE:
        ex_kind_progress(ctx, t->executor, t->run_id, 10, 10);
        ex_kind_done(ctx, t->executor, t->run_id);
        bt_stop_self(ctx);
        break;
    case TK_STEP:
        t->steps++;
        ex_kind_progress(ctx, t->executor, t->run_id, t->steps, 10);
        break;
    case TK_FAIL:
        ex_kind_failed(ctx, t->executor, t->run_id, "boom");
        bt_stop_self(ctx);
        break;
    default:
        break;
    }
    return BT_OK;
}

static int reject_bad(const char *params, char *err, size_t errlen)
{
    if (strstr(params, "bad") != NULL) {
        snprintf(err, errlen, "params contain \"bad\"");
        return -1;
    }
    return 0;
}

static const bt_actor_type_t idle_type = {
    .name = "idle-kind", .state_size = sizeof(tk_t), .init = idle_init, .dispatch = tk_dispatch};
static const bt_actor_type_t stubborn_type = {.name = "stubborn-kind",
                                              .state_size = sizeof(tk_t),
                                              .init = stubborn_init,
                                              .dispatch = tk_dispatch};
static const ex_kind_t idle_kind = {
    .name = "idle", .type = &idle_type, .validate = reject_bad, .recovery = EX_RECOVERY_FAIL};
static const ex_kind_t stubborn_kind = {
    .name = "stubborn", .type = &stubborn_type, .recovery = EX_RECOVERY_FAIL};
static const bt_actor_type_t slow_type = {
    .name = "slow-kind", .state_size = sizeof(tk_t), .init = slow_init, .dispatch = tk_dispatch};
static const bt_actor_type_t mute_type = {
    .name = "mute-kind", .state_size = sizeof(tk_t), .init = mute_init, .dispatch = tk_dispatch};
static const ex_kind_t slow_kind = {
    .name = "slow", .type = &slow_type, .recovery = EX_RECOVERY_FAIL};
static const ex_kind_t mute_kind = {
    .name = "mute", .type = &mute_type, .recovery = EX_RECOVERY_FAIL};
static const ex_kind_t *const kinds[] = {&idle_kind, &stubborn_kind, &slow_kind, &mute_kind};

/* ----------------------------------------------------------- fixtures */

static char dir[256];
static char db_path[400];
static bt_runtime_t *rt;
static bt_ref_t store, ex;

static const ex_job_t jobs[] = {
    {.name = "a", .kind = "idle"},
    {.name = "b", .kind = "idle"},
    {.name = "c", .kind = "idle"},
    {.name = "two", .kind = "idle", .max_active = 2},
    {.name = "hard", .kind = "stubborn", .stop_grace_ns = 20 * MS},
    {.name = "keep", .kind = "idle", .recovery = EX_RECOVERY_RESUME},
    {.name = "drop", .kind = "idle"},
    {.name = "slow", .kind = "slow", .stop_grace_ns = 10 * SEC_NS},
    {.name = "mute", .kind = "mute", .stop_grace_ns = 80 * MS},
    {.name = "m0", .kind = "idle"},
    {.name = "m1", .kind = "idle"},
    {.name = "m2", .kind = "idle"},
    {.name = "m3", .kind = "idle"},
    {.name = "m4", .kind = "idle"},
    {.name = "m5", .kind = "idle"},
    {.name = "m6", .kind = "idle"},
    {.name = "m7", .kind = "idle"},
};

static bool virtual_time;
static bool use_faultvfs;
static uint64_t store_timeout;            /* the executor's per store request; 0 = its default */
static rs_sync_t sync_mode = RS_SYNC_OFF; /* FULL where a test holds fsyncs */

static void start_all(uint32_t max_running, uint32_t max_pending)
{
    bt_runtime_config_t rcfg = {.threads = 2, .deterministic = virtual_time};
    cr_assert_eq(bt_runtime_create(&rcfg, &rt), BT_OK);
    if (!virtual_time)
        cr_assert_eq(bt_runtime_start(rt), BT_OK);
    rs_config_t rc = {
        .path = db_path, .synchronous = sync_mode, .vfs = use_faultvfs ? "faultvfs" : NULL};
    if (use_faultvfs)
        cr_assert_eq(faultvfs_register(), SQLITE_OK);
    cr_assert_eq(rs_spawn(rt, &rc, &store), BT_OK);
    ex_config_t cfg = {.store = store,
                       .state_dir = dir,
                       .kinds = kinds,
                       .nkinds = sizeof(kinds) / sizeof(kinds[0]),
                       .jobs = jobs,
                       .njobs = sizeof(jobs) / sizeof(jobs[0]),
                       .max_running = max_running,
                       .max_pending = max_pending,
                       .force_slack_ns = 10 * MS,
                       .store_timeout_ns = store_timeout};
    cr_assert_eq(ex_spawn(rt, &cfg, &ex), BT_OK);
}

static void stop_all(void)
{
    if (rt != NULL)
        cr_assert_eq(bt_runtime_shutdown(rt, 10 * SEC_NS), BT_OK);
    rt = NULL;
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/executor-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db_path, sizeof(db_path), "%s/runs.db", dir);
}

static void teardown(void)
{
    if (use_faultvfs)
        faultvfs_clear();
    stop_all();
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char p[420];
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s%s", db_path, suffixes[i]);
        unlink(p);
    }
    snprintf(p, sizeof(p), "%s/logs", dir);
    rmdir(p);
    rmdir(dir);
}

TestSuite(executor, .init = setup, .fini = teardown, .timeout = 60);

static ex_reply_t *cmd(uint32_t id, const char *run, const char *job, const char *params)
{
    bt_msg_t *m = ex_cmd_new(id, run, job, params);
    cr_assert_not_null(m);
    bt_msg_t *r = NULL;
    cr_assert_eq(bt_ask_wait(rt, ex, m, 20 * SEC_NS, &r), BT_OK);
    cr_assert_eq(r->id, EX_MSG_REPLY);
    return (ex_reply_t *)r;
}

/* Runs a command and returns its status; the state after it in *state. */
static int run_cmd(uint32_t id, const char *run, int *state)
{
    ex_reply_t *r = cmd(id, run, NULL, NULL);
    int s = r->status;
    if (state != NULL)
        *state = r->state;
    bt_msg_free(&r->hdr);
    return s;
}

static void start_ok(const char *job, char id[EX_RUN_ID_MAX], int want_state)
{
    ex_reply_t *r = cmd(EX_MSG_START, NULL, job, "{}");
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    cr_assert_eq(r->state, want_state, "state %d", r->state);
    snprintf(id, EX_RUN_ID_MAX, "%s", r->run_id);
    bt_msg_free(&r->hdr);
}

/* The run's state as the store has it (through the executor's get). */
static rs_state_t stored_state(const char *id)
{
    bt_msg_t *m = ex_cmd_new(EX_MSG_GET, id, NULL, NULL);
    bt_msg_t *r = NULL;
    cr_assert_eq(bt_ask_wait(rt, ex, m, 20 * SEC_NS, &r), BT_OK);
    cr_assert_eq(r->id, RS_MSG_REPLY);
    const rs_reply_t *rep = (const rs_reply_t *)r;
    cr_assert_eq(rep->status, RS_OK, "%s", rep->message);
    rs_run_t run;
    rs_reply_run(rep, 0, &run);
    rs_state_t s = run.state;
    bt_msg_free(r);
    return s;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t stored_progress(const char *id)
{
    bt_msg_t *r = NULL;
    cr_assert_eq(bt_ask_wait(rt, ex, ex_cmd_new(EX_MSG_GET, id, NULL, NULL), 20 * SEC_NS, &r),
                 BT_OK);
    rs_run_t run;
    rs_reply_run((const rs_reply_t *)r, 0, &run);
    int64_t d = run.progress_done;
    bt_msg_free(r);
    return d;
}

/* Waits until the run's stored state is want (kind reports are async). */
static void await_state(const char *id, rs_state_t want)
{
    for (int i = 0; i < 500; i++) {
        if (stored_state(id) == want)
            return;
        sleep_ms(5);
    }
    cr_assert_fail("run %s never reached %s (is %s)", id, rs_state_name(want),
                   rs_state_name(stored_state(id)));
}

static void kind_tell(const char *id, uint32_t what)
{
    char name[64];
    bt_ref_t k = BT_REF_NONE;
    snprintf(name, sizeof(name), "k-%s", id);
    for (int i = 0; i < 500 && bt_whereis(rt, name, &k) != BT_OK; i++)
        sleep_ms(2);
    cr_assert_neq(k, BT_REF_NONE, "kind actor of %s not found", id);
    bt_msg_t *m = bt_msg_new(sizeof(bt_msg_t), what);
    cr_assert_eq(bt_send(rt, k, m), BT_OK);
}

/* Whether the run's kind actor is paused, as it says. */
static tk_query_reply_t kind_query(const char *id)
{
    char name[64];
    bt_ref_t k = BT_REF_NONE;
    snprintf(name, sizeof(name), "k-%s", id);
    for (int i = 0; i < 500 && bt_whereis(rt, name, &k) != BT_OK; i++)
        sleep_ms(2);
    cr_assert_neq(k, BT_REF_NONE, "kind actor of %s not found", id);
    bt_msg_t *r = NULL;
    cr_assert_eq(bt_ask_wait(rt, k, bt_msg_new(sizeof(bt_msg_t), TK_QUERY), 20 * SEC_NS, &r),
                 BT_OK);
    cr_assert_eq(r->id, TK_QUERY_REPLY);
    tk_query_reply_t q;
    memcpy(&q, r, sizeof(q));
    bt_msg_free(r);
    return q;
}

/* ---------------------------------------------------------------- tests */

typedef struct {
    int status;
} starter_t;

static void *starter(void *arg)
{
    starter_t *s = arg;
    bt_msg_t *m = ex_cmd_new(EX_MSG_START, NULL, "a", "{}");
    bt_msg_t *r = NULL;
    if (bt_ask_wait(rt, ex, m, 30 * SEC_NS, &r) != BT_OK) {
        s->status = 1;
        return NULL;
    }
    s->status = ((ex_reply_t *)r)->status;
    bt_msg_free(r);
    return NULL;
}

Test(executor, concurrent_starts_yield_exactly_one_active_run)
{
    start_all(8, 0);
    pthread_t th[64];
    starter_t st[64];
    for (int i = 0; i < 64; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, starter, &st[i]), 0);
    int ok = 0, conflict = 0;
    for (int i = 0; i < 64; i++) {
        pthread_join(th[i], NULL);
        ok += st[i].status == EX_OK;
        conflict += st[i].status == EX_ECONFLICT;
    }
    cr_assert_eq(ok, 1);
    cr_assert_eq(conflict, 63);
    bt_msg_t *r = NULL;
    cr_assert_eq(bt_ask_wait(rt, ex, ex_cmd_new(EX_MSG_LIST, NULL, "a", NULL), 20 * SEC_NS, &r),
                 BT_OK);
    cr_assert_eq(((rs_reply_t *)r)->nruns, 1);
    bt_msg_free(r);
}

Test(executor, start_conflict_names_the_active_run_and_its_state)
{
    start_all(4, 0);
    char id[EX_RUN_ID_MAX];
    start_ok("a", id, RS_RUNNING);
    ex_reply_t *r = cmd(EX_MSG_START, NULL, "a", "{}");
    cr_assert_eq(r->status, EX_ECONFLICT);
    cr_assert_str_eq(ex_err_code(r->status), "conflict");
    cr_assert(strstr(r->message, id) != NULL && strstr(r->message, "running") != NULL, "%s",
              r->message);
    bt_msg_free(&r->hdr);
    /* max_active 2 allows two. */
    start_ok("two", id, RS_RUNNING);
    start_ok("two", id, RS_RUNNING);
    cr_assert_eq(run_cmd(EX_MSG_START, NULL, NULL), EX_EBADREQ); /* no job given: not found */
}

Test(executor, start_refuses_unknown_job_and_bad_params)
{
    start_all(4, 0);
    ex_reply_t *r = cmd(EX_MSG_START, NULL, "nope", "{}");
    cr_assert_eq(r->status, EX_ENOTFOUND);
    bt_msg_free(&r->hdr);
    r = cmd(EX_MSG_START, NULL, "a", "{\"bad\":1}");
    cr_assert_eq(r->status, EX_EBADREQ);
    cr_assert(strstr(r->message, "bad params") != NULL, "%s", r->message);
    bt_msg_free(&r->hdr);
}

Test(executor, pause_resume_stop_from_running_and_paused)
{
    start_all(4, 0);
    char id[EX_RUN_ID_MAX];
    int st;
    start_ok("a", id, RS_RUNNING);
    cr_assert_eq(stored_state(id), RS_RUNNING);
    /* pause from running, then from paused (refused) */
    cr_assert_eq(run_cmd(EX_MSG_PAUSE, id, &st), EX_OK);
    cr_assert_eq(st, RS_PAUSED);
    cr_assert_eq(stored_state(id), RS_PAUSED);
    ex_reply_t *r = cmd(EX_MSG_PAUSE, id, NULL, NULL);
    cr_assert_eq(r->status, EX_ETRANSITION);
    char want[128];
    snprintf(want, sizeof(want), "run %s is paused; cannot pause", id);
    cr_assert_str_eq(r->message, want);
    bt_msg_free(&r->hdr);
    /* resume from paused, then from running (refused) */
    cr_assert_eq(run_cmd(EX_MSG_RESUME, id, &st), EX_OK);
    cr_assert_eq(st, RS_RUNNING);
    cr_assert_eq(stored_state(id), RS_RUNNING);
    /* stop from running: cooperative, answered once stopped */
    cr_assert_eq(run_cmd(EX_MSG_STOP, id, &st), EX_OK);
    cr_assert_eq(st, RS_STOPPED);
    cr_assert_eq(stored_state(id), RS_STOPPED);
    /* stop from paused */
    start_ok("a", id, RS_RUNNING);
    cr_assert_eq(run_cmd(EX_MSG_PAUSE, id, NULL), EX_OK);
    cr_assert_eq(run_cmd(EX_MSG_STOP, id, &st), EX_OK);
    cr_assert_eq(st, RS_STOPPED);
    cr_assert_eq(stored_state(id), RS_STOPPED);
    /* a stopped run refuses everything, naming its state */
    r = cmd(EX_MSG_RESUME, id, NULL, NULL);
    cr_assert_eq(r->status, EX_ETRANSITION);
    cr_assert(strstr(r->message, "is stopped; cannot resume") != NULL, "%s", r->message);
    bt_msg_free(&r->hdr);
}

Test(executor, double_resume_is_refused)
{
    start_all(4, 0);
    char id[EX_RUN_ID_MAX];
    start_ok("a", id, RS_RUNNING);
    cr_assert_eq(run_cmd(EX_MSG_PAUSE, id, NULL), EX_OK);
    cr_assert_eq(run_cmd(EX_MSG_RESUME, id, NULL), EX_OK);
    ex_reply_t *r = cmd(EX_MSG_RESUME, id, NULL, NULL);
    cr_assert_eq(r->status, EX_ETRANSITION);
    cr_assert_str_eq(ex_err_code(r->status), "invalid_transition");
    char want[128];
    snprintf(want, sizeof(want), "run %s is running; cannot resume", id);
    cr_assert_str_eq(r->message, want);
    cr_assert_eq(r->state, RS_RUNNING);
    bt_msg_free(&r->hdr);
}

Test(executor, pause_of_a_missing_run_is_refused)
{
    start_all(4, 0);
    const char *id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    ex_reply_t *r = cmd(EX_MSG_PAUSE, id, NULL, NULL);
    cr_assert_eq(r->status, EX_ENOTFOUND);
    cr_assert_str_eq(ex_err_code(r->status), "not_found");
    cr_assert(strstr(r->message, id) != NULL, "%s", r->message);
    bt_msg_free(&r->hdr);
    cr_assert_eq(run_cmd(EX_MSG_STOP, id, NULL), EX_ENOTFOUND);
    cr_assert_eq(run_cmd(EX_MSG_RESUME, "not-an-id", NULL), EX_ENOTFOUND);
}

Test(executor, completed_run_refuses_pause_with_its_state)
{
    start_all(4, 0);
    char id[EX_RUN_ID_MAX];
    start_ok("a", id, RS_RUNNING);
    kind_tell(id, TK_DONE);
    await_state(id, RS_COMPLETED);
    ex_reply_t *r = cmd(EX_MSG_PAUSE, id, NULL, NULL);
    cr_assert_eq(r->status, EX_ETRANSITION);
    cr_assert(strstr(r->message, "is completed; cannot pause") != NULL, "%s", r->message);
    bt_msg_free(&r->hdr);
    /* the job's slot is free again */
    start_ok("a", id, RS_RUNNING);
    kind_tell(id, TK_FAIL);
    await_state(id, RS_FAILED);
}

Test(executor, stop_from_pending)
{
    start_all(1, 0);
    char a[EX_RUN_ID_MAX], b[EX_RUN_ID_MAX];
    int st;
    start_ok("a", a, RS_RUNNING);
    start_ok("b", b, RS_PENDING);
    cr_assert_eq(run_cmd(EX_MSG_STOP, b, &st), EX_OK);
    cr_assert_eq(st, RS_STOPPED);
    cr_assert_eq(stored_state(b), RS_STOPPED);
    cr_assert_eq(stored_state(a), RS_RUNNING);
}

Test(executor, queueing_under_max_running_is_fifo)
{
    start_all(1, 0);
    char a[EX_RUN_ID_MAX], b[EX_RUN_ID_MAX], c[EX_RUN_ID_MAX];
    start_ok("a", a, RS_RUNNING);
    start_ok("b", b, RS_PENDING);
    start_ok("c", c, RS_PENDING);
    kind_tell(a, TK_DONE);
    await_state(a, RS_COMPLETED);
    await_state(b, RS_RUNNING);
    cr_assert_eq(stored_state(c), RS_PENDING);
    /* pausing b frees the slot for c; resuming b then waits as pending */
    int st;
    cr_assert_eq(run_cmd(EX_MSG_PAUSE, b, NULL), EX_OK);
    await_state(c, RS_RUNNING);
    cr_assert_eq(run_cmd(EX_MSG_RESUME, b, &st), EX_OK);
    cr_assert_eq(st, RS_PENDING);
    cr_assert_eq(run_cmd(EX_MSG_STOP, c, NULL), EX_OK);
    await_state(b, RS_RUNNING);
}

Test(executor, full_pending_queue_refuses_start_as_busy)
{
    start_all(1, 1);
    char a[EX_RUN_ID_MAX], b[EX_RUN_ID_MAX];
    start_ok("a", a, RS_RUNNING);
    start_ok("b", b, RS_PENDING);
    ex_reply_t *r = cmd(EX_MSG_START, NULL, "c", "{}");
    cr_assert_eq(r->status, EX_EBUSY);
    cr_assert_str_eq(ex_err_code(r->status), "busy");
    bt_msg_free(&r->hdr);
}

Test(executor, stop_is_forced_after_the_grace_period)
{
    start_all(4, 0);
    char id[EX_RUN_ID_MAX];
    int st;
    start_ok("hard", id, RS_RUNNING);
    ex_reply_t *r = cmd(EX_MSG_STOP, id, NULL, NULL);
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    cr_assert_eq(r->state, RS_STOPPED);
    bt_msg_free(&r->hdr);
    cr_assert_eq(stored_state(id), RS_STOPPED);
    cr_assert_eq(run_cmd(EX_MSG_STOP, id, &st), EX_ETRANSITION);
    cr_assert_eq(st, RS_STOPPED);
}

Test(executor, recovery_after_the_store_is_reopened)
{
    start_all(4, 0);
    char keep[EX_RUN_ID_MAX], drop[EX_RUN_ID_MAX], paused[EX_RUN_ID_MAX], pend[EX_RUN_ID_MAX];
    start_ok("keep", keep, RS_RUNNING);
    start_ok("drop", drop, RS_RUNNING);
    start_ok("a", paused, RS_RUNNING);
    cr_assert_eq(run_cmd(EX_MSG_PAUSE, paused, NULL), EX_OK);
    /* a pending run, created straight in the store */
    bt_msg_t *rep = NULL;
    cr_assert_eq(bt_ask_wait(rt, store, rs_req_create("b", "{}", RS_PENDING), 20 * SEC_NS, &rep),
                 BT_OK);
    cr_assert_eq(((rs_reply_t *)rep)->status, RS_OK);
    snprintf(pend, sizeof(pend), "%s", ((rs_reply_t *)rep)->run_id);
    bt_msg_free(rep);
    /* the service goes away with runs running, pending and paused */
    stop_all();
    start_all(4, 0);
    cr_assert_eq(stored_state(keep), RS_RUNNING); /* commands wait for recovery */
    cr_assert_eq(stored_state(drop), RS_FAILED);
    cr_assert_eq(stored_state(paused), RS_PAUSED);
    await_state(pend, RS_RUNNING);
    /* the resumed run has a live kind again, and the paused one resumes */
    kind_tell(keep, TK_DONE);
    await_state(keep, RS_COMPLETED);
    cr_assert_eq(run_cmd(EX_MSG_RESUME, paused, NULL), EX_OK);
    cr_assert_eq(stored_state(paused), RS_RUNNING);
}

/* Ready means recovery's writes are durable: a start of a job whose run
 * recovery fails as interrupted is decided after that failure is stored,
 * so it is never refused for the run being failed (found by the
 * linearizability recorder: starts right after /readyz got "conflict"). */
Test(executor, commands_after_recovery_see_its_failures_stored)
{
    start_all(4, 0);
    char old[EX_RUN_ID_MAX], fresh[EX_RUN_ID_MAX];
    start_ok("drop", old, RS_RUNNING);
    stop_all();
    start_all(4, 0);
    /* sent before recovery finishes: it waits, then succeeds */
    start_ok("drop", fresh, RS_RUNNING);
    cr_assert_eq(stored_state(old), RS_FAILED);
    bt_msg_t *r = NULL;
    cr_assert_eq(bt_ask_wait(rt, ex, bt_msg_new(sizeof(bt_msg_t), EX_MSG_READY), 20 * SEC_NS, &r),
                 BT_OK);
    bt_msg_free(r);
}

Test(executor, progress_is_persisted_at_a_pace_and_flushed_at_the_end)
{
    start_all(4, 0); /* pace: at most every 1 s or every 100 reports */
    char id[EX_RUN_ID_MAX];
    start_ok("a", id, RS_RUNNING);
    for (int i = 0; i < 5; i++)
        kind_tell(id, TK_STEP);
    for (int i = 0; i < 200 && stored_progress(id) == 0; i++)
        sleep_ms(2);
    sleep_ms(50);
    /* the first report is written at once, the next four wait for the pace */
    cr_assert_eq(stored_progress(id), 1);
    kind_tell(id, TK_DONE);
    await_state(id, RS_COMPLETED);
    cr_assert_eq(stored_progress(id), 10);
}

Test(executor, forced_stop_waits_exactly_the_grace_in_virtual_time)
{
    virtual_time = true; /* each test runs in its own process */
    start_all(4, 0);
    char id[EX_RUN_ID_MAX];
    start_ok("hard", id, RS_RUNNING);
    uint64_t t0 = bt_now(rt);
    ex_reply_t *r = cmd(EX_MSG_STOP, id, NULL, NULL);
    uint64_t waited = bt_now(rt) - t0;
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    cr_assert_eq(r->state, RS_STOPPED);
    bt_msg_free(&r->hdr);
    /* grace 20 ms + slack 10 ms, at the timers' millisecond resolution */
    cr_assert_geq(waited, 30 * MS, "answered after %llu ns", (unsigned long long)waited);
    cr_assert_lt(waited, 40 * MS, "answered after %llu ns", (unsigned long long)waited);
    cr_assert_eq(stored_state(id), RS_STOPPED);
}

Test(executor, resume_is_refused_while_another_run_holds_the_jobs_slot)
{
    start_all(4, 0);
    char paused[EX_RUN_ID_MAX], other[EX_RUN_ID_MAX];
    start_ok("keep", paused, RS_RUNNING);
    cr_assert_eq(run_cmd(EX_MSG_PAUSE, paused, NULL), EX_OK);
    /* a second run of the job, made behind the executor's back (as an older
     * service version or a raised-then-lowered max_active could leave it) */
    bt_msg_t *rep = NULL;
    cr_assert_eq(bt_ask_wait(rt, store, rs_req_create("keep", "{}", RS_PENDING), 20 * SEC_NS, &rep),
                 BT_OK);
    snprintf(other, sizeof(other), "%s", ((rs_reply_t *)rep)->run_id);
    bt_msg_free(rep);
    stop_all();
    start_all(4, 0);
    await_state(other, RS_RUNNING);
    ex_reply_t *r = cmd(EX_MSG_RESUME, paused, NULL, NULL);
    cr_assert_eq(r->status, EX_ECONFLICT);
    char want[200];
    snprintf(want, sizeof(want),
             "run %s is paused; cannot resume while run %s of job keep is running", paused, other);
    cr_assert_str_eq(r->message, want);
    bt_msg_free(&r->hdr);
    cr_assert_eq(stored_state(paused), RS_PAUSED);
}

/* ------------------------------------------- commands from other threads */

/* A command run on its own thread, so a test can see whether (and when) it
 * is answered. */
typedef struct async_cmd {
    pthread_t th;
    uint32_t id;
    char run[EX_RUN_ID_MAX];
    const char *job, *key;
    ex_reply_t rep;
    int rc;
    int done; /* atomic */
} async_cmd_t;

static void *async_main(void *arg)
{
    async_cmd_t *a = arg;
    bt_msg_t *m = ex_cmd_new_keyed(a->id, a->run, a->job, a->job != NULL ? "{}" : NULL, a->key);
    bt_msg_t *r = NULL;
    a->rc = m == NULL ? BT_ENOMEM : bt_ask_wait(rt, ex, m, 30 * SEC_NS, &r);
    if (a->rc == BT_OK) {
        memcpy(&a->rep, r, sizeof(a->rep));
        bt_msg_free(r);
    }
    __atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void async_cmd(async_cmd_t *a, uint32_t id, const char *run, const char *job,
                      const char *key)
{
    memset(a, 0, sizeof(*a));
    a->id = id;
    snprintf(a->run, sizeof(a->run), "%s", run != NULL ? run : "");
    a->job = job;
    a->key = key;
    cr_assert_eq(pthread_create(&a->th, NULL, async_main, a), 0);
}

static bool async_done(async_cmd_t *a)
{
    return __atomic_load_n(&a->done, __ATOMIC_ACQUIRE) != 0;
}

static void async_join(async_cmd_t *a)
{
    pthread_join(a->th, NULL);
    cr_assert_eq(a->rc, BT_OK, "%s", bt_strerror(a->rc));
    cr_assert_eq(a->rep.hdr.id, EX_MSG_REPLY);
}

static ex_stats_reply_t get_stats(void)
{
    bt_msg_t *r = NULL;
    cr_assert_eq(bt_ask_wait(rt, ex, bt_msg_new(sizeof(bt_msg_t), EX_MSG_STATS), 20 * SEC_NS, &r),
                 BT_OK);
    cr_assert_eq(r->id, EX_MSG_STATS_REPLY);
    ex_stats_reply_t s;
    memcpy(&s, r, sizeof(s));
    bt_msg_free(r);
    return s;
}

static uint32_t runs_of(const char *job)
{
    bt_msg_t *r = NULL;
    cr_assert_eq(bt_ask_wait(rt, ex, ex_cmd_new(EX_MSG_LIST, NULL, job, NULL), 20 * SEC_NS, &r),
                 BT_OK);
    uint32_t n = ((rs_reply_t *)r)->nruns;
    bt_msg_free(r);
    return n;
}

/* ---------------------------------------------------------------- pause */

Test(executor, pause_is_answered_only_when_the_kind_confirms_it)
{
    start_all(4, 0);
    char id[EX_RUN_ID_MAX];
    start_ok("slow", id, RS_RUNNING);
    async_cmd_t p;
    async_cmd(&p, EX_MSG_PAUSE, id, NULL, NULL);
    sleep_ms(100);
    cr_assert(!async_done(&p), "the pause was answered before the kind confirmed");
    /* durable before it is answered; a second pause is refused meanwhile */
    cr_assert_eq(stored_state(id), RS_PAUSED);
    ex_reply_t *r = cmd(EX_MSG_PAUSE, id, NULL, NULL);
    cr_assert_eq(r->status, EX_ETRANSITION);
    bt_msg_free(&r->hdr);
    kind_tell(id, TK_CONFIRM);
    async_join(&p);
    cr_assert_eq(p.rep.status, EX_OK, "%s", p.rep.message);
    cr_assert_eq(p.rep.state, RS_PAUSED);
    cr_assert_eq(p.rep.flags, 0u);
    cr_assert_eq(get_stats().pause_timeouts, 0);
    /* pause from pending needs no kind: answered at once */
    char a[EX_RUN_ID_MAX], b[EX_RUN_ID_MAX];
    stop_all();
    start_all(1, 0);
    start_ok("a", a, RS_RUNNING);
    start_ok("mute", b, RS_PENDING);
    int st;
    cr_assert_eq(run_cmd(EX_MSG_PAUSE, b, &st), EX_OK);
    cr_assert_eq(st, RS_PAUSED);
}

Test(executor, an_unconfirmed_pause_is_answered_after_the_stop_grace_and_counted)
{
    start_all(4, 0);
    char id[EX_RUN_ID_MAX];
    start_ok("mute", id, RS_RUNNING); /* grace 80 ms */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ex_reply_t *r = cmd(EX_MSG_PAUSE, id, NULL, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    cr_assert_eq(r->state, RS_PAUSED);
    cr_assert(r->flags & EX_REPLY_UNCONFIRMED);
    cr_assert(strstr(r->message, "did not confirm") != NULL, "%s", r->message);
    cr_assert_geq(ms, 79.0, "answered after %.1f ms", ms);
    bt_msg_free(&r->hdr);
    cr_assert_eq(get_stats().pause_timeouts, 1);
    int st;
    cr_assert_eq(run_cmd(EX_MSG_RESUME, id, &st), EX_OK);
    cr_assert_eq(st, RS_RUNNING);
}

Test(executor, a_resume_waits_behind_a_waiting_pause)
{
    start_all(4, 0);
    char id[EX_RUN_ID_MAX];
    start_ok("slow", id, RS_RUNNING);
    async_cmd_t p, q;
    async_cmd(&p, EX_MSG_PAUSE, id, NULL, NULL);
    await_state(id, RS_PAUSED); /* the pause is decided (and durable) first */
    async_cmd(&q, EX_MSG_RESUME, id, NULL, NULL);
    sleep_ms(100);
    cr_assert(!async_done(&p));
    cr_assert(!async_done(&q), "the resume was decided while the pause waited");
    kind_tell(id, TK_CONFIRM);
    async_join(&p);
    async_join(&q);
    cr_assert_eq(p.rep.status, EX_OK, "%s", p.rep.message);
    cr_assert_eq(p.rep.state, RS_PAUSED);
    cr_assert_eq(q.rep.status, EX_OK, "%s", q.rep.message);
    cr_assert_eq(q.rep.state, RS_RUNNING);
    cr_assert_eq(stored_state(id), RS_RUNNING);
}

Test(executor, a_stop_during_a_waiting_pause_answers_both_once)
{
    start_all(4, 0);
    char id[EX_RUN_ID_MAX];
    start_ok("slow", id, RS_RUNNING);
    async_cmd_t p;
    async_cmd(&p, EX_MSG_PAUSE, id, NULL, NULL);
    await_state(id, RS_PAUSED); /* the pause is decided (and durable) first */
    cr_assert(!async_done(&p));
    int st;
    cr_assert_eq(run_cmd(EX_MSG_STOP, id, &st), EX_OK);
    cr_assert_eq(st, RS_STOPPED);
    async_join(&p);
    /* the pause was durable, and the run makes no more progress */
    cr_assert_eq(p.rep.status, EX_OK, "%s", p.rep.message);
    cr_assert_eq(p.rep.state, RS_STOPPED);
    cr_assert_eq(stored_state(id), RS_STOPPED);
    ex_stats_reply_t s = get_stats();
    cr_assert_eq(s.commands[EX_CMD_PAUSE][0], 1);
    cr_assert_eq(s.commands[EX_CMD_STOP][0], 1);
}

/* ------------------------------------------------------ idempotency keys */

static ex_reply_t *kstart(const char *job, const char *key)
{
    bt_msg_t *m = ex_cmd_new_keyed(EX_MSG_START, NULL, job, "{}", key);
    cr_assert_not_null(m);
    bt_msg_t *r = NULL;
    cr_assert_eq(bt_ask_wait(rt, ex, m, 20 * SEC_NS, &r), BT_OK);
    cr_assert_eq(r->id, EX_MSG_REPLY);
    return (ex_reply_t *)r;
}

Test(executor, a_repeated_idempotency_key_replays_the_first_run_also_after_a_restart)
{
    start_all(4, 0);
    ex_reply_t *r = kstart("a", "order-17");
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    cr_assert_eq(r->flags, 0u);
    char id[EX_RUN_ID_MAX];
    snprintf(id, sizeof(id), "%s", r->run_id);
    bt_msg_free(&r->hdr);
    r = kstart("a", "order-17");
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    cr_assert(r->flags & EX_REPLY_REPLAYED);
    cr_assert_str_eq(r->run_id, id);
    cr_assert_eq(r->state, RS_RUNNING);
    bt_msg_free(&r->hdr);
    cr_assert_eq(runs_of("a"), 1);
    /* after the run ended: still the same run, in its state now */
    kind_tell(id, TK_DONE);
    await_state(id, RS_COMPLETED);
    r = kstart("a", "order-17");
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    cr_assert(r->flags & EX_REPLY_REPLAYED);
    cr_assert_str_eq(r->run_id, id);
    cr_assert_eq(r->state, RS_COMPLETED);
    bt_msg_free(&r->hdr);
    /* a restart of the executor and the store, on the same database */
    stop_all();
    start_all(4, 0);
    r = kstart("a", "order-17");
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    cr_assert(r->flags & EX_REPLY_REPLAYED);
    cr_assert_str_eq(r->run_id, id);
    bt_msg_free(&r->hdr);
    cr_assert_eq(runs_of("a"), 1);
    ex_stats_reply_t s = get_stats();
    cr_assert_eq(s.replayed, 1);
    cr_assert_eq(s.commands[EX_CMD_START][0], 1);
    /* too long a key cannot even be built */
    char longkey[EX_IDEM_KEY_MAX + 1];
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    cr_assert_null(ex_cmd_new_keyed(EX_MSG_START, NULL, "a", "{}", longkey));
    longkey[EX_IDEM_KEY_MAX - 1] = '\0'; /* 128 bytes: the longest */
    r = kstart("b", longkey);
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    bt_msg_free(&r->hdr);
}

Test(executor, an_idempotency_key_used_by_another_job_is_a_conflict)
{
    start_all(4, 0);
    ex_reply_t *r = kstart("a", "k");
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    char id[EX_RUN_ID_MAX];
    snprintf(id, sizeof(id), "%s", r->run_id);
    bt_msg_free(&r->hdr);
    r = kstart("b", "k");
    cr_assert_eq(r->status, EX_ECONFLICT);
    cr_assert_str_eq(ex_err_code(r->status), "conflict");
    char want[300];
    snprintf(want, sizeof(want),
             "idempotency key \"k\" started run %s of job a; cannot start job b with it", id);
    cr_assert_str_eq(r->message, want);
    bt_msg_free(&r->hdr);
    cr_assert_eq(runs_of("b"), 0);
}

Test(executor, a_refused_keyed_start_stores_nothing_to_replay)
{
    start_all(4, 0);
    char other[EX_RUN_ID_MAX];
    start_ok("a", other, RS_RUNNING);
    ex_reply_t *r = kstart("a", "retry-me");
    cr_assert_eq(r->status, EX_ECONFLICT); /* the job's one slot is taken */
    bt_msg_free(&r->hdr);
    cr_assert_eq(run_cmd(EX_MSG_STOP, other, NULL), EX_OK);
    r = kstart("a", "retry-me");
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    cr_assert_eq(r->flags, 0u); /* a new run, not a replay of the refusal */
    cr_assert_str_neq(r->run_id, other);
    bt_msg_free(&r->hdr);
}

Test(executor, concurrent_starts_with_one_key_make_one_run_and_all_get_its_id)
{
    start_all(8, 0);
    enum { N = 32 };
    async_cmd_t a[N];
    for (int i = 0; i < N; i++)
        async_cmd(&a[i], EX_MSG_START, NULL, "a", "one-key");
    int fresh = 0, replayed = 0;
    for (int i = 0; i < N; i++) {
        async_join(&a[i]);
        cr_assert_eq(a[i].rep.status, EX_OK, "%s", a[i].rep.message);
        cr_assert_str_eq(a[i].rep.run_id, a[0].rep.run_id);
        fresh += a[i].rep.flags == 0;
        replayed += (a[i].rep.flags & EX_REPLY_REPLAYED) != 0;
    }
    cr_assert_eq(fresh, 1);
    cr_assert_eq(replayed, N - 1);
    cr_assert_eq(runs_of("a"), 1);
}

/* -------------------------------------------------------- store failures */

Test(executor, an_outcome_the_store_fails_is_retried_until_it_is_saved)
{
    use_faultvfs = true; /* each test runs in its own process */
    start_all(4, 0);
    char id[EX_RUN_ID_MAX];
    start_ok("a", id, RS_RUNNING);
    uint64_t before = faultvfs_injected();
    faultvfs_inject(FV_WRITE, 0, -1, SQLITE_FULL);
    kind_tell(id, TK_DONE);
    for (int i = 0; i < 400 && faultvfs_injected() < before + 3; i++)
        sleep_ms(5);
    cr_assert_geq(faultvfs_injected(), before + 3, "the outcome was not retried");
    /* the store still has it running; the executor knows it is ending */
    cr_assert_eq(stored_state(id), RS_RUNNING);
    ex_reply_t *r = cmd(EX_MSG_PAUSE, id, NULL, NULL);
    cr_assert_eq(r->status, EX_ETRANSITION);
    cr_assert(strstr(r->message, "ending as completed; cannot pause") != NULL, "%s", r->message);
    bt_msg_free(&r->hdr);
    ex_stats_reply_t s = get_stats();
    cr_assert_eq(s.retrying, 1);
    cr_assert_geq(s.store_retries, 2);
    cr_assert_eq(s.runs[RS_RUNNING], 1);
    /* a stop meanwhile is answered with the outcome, once it is saved */
    async_cmd_t stop;
    async_cmd(&stop, EX_MSG_STOP, id, NULL, NULL);
    sleep_ms(30);
    cr_assert(!async_done(&stop));
    faultvfs_clear(); /* the disk heals */
    await_state(id, RS_COMPLETED);
    async_join(&stop);
    cr_assert_eq(stop.rep.status, EX_OK, "%s", stop.rep.message);
    cr_assert_eq(stop.rep.state, RS_COMPLETED);
    cr_assert_eq(stored_progress(id), 10); /* the progress before the outcome, too */
    s = get_stats();
    cr_assert_eq(s.retrying, 0);
    cr_assert_eq(s.runs[RS_RUNNING], 0);
    start_ok("a", id, RS_RUNNING); /* the job's slot is free again */
}

Test(executor, a_command_the_store_fails_is_refused_and_changes_nothing)
{
    use_faultvfs = true;
    start_all(4, 0);
    char id[EX_RUN_ID_MAX];
    start_ok("a", id, RS_RUNNING);
    faultvfs_inject(FV_WRITE, 0, -1, SQLITE_IOERR_WRITE);
    ex_reply_t *r = cmd(EX_MSG_PAUSE, id, NULL, NULL);
    cr_assert_eq(r->status, EX_ESTORE);
    cr_assert_str_eq(ex_err_code(r->status), "store_error");
    cr_assert_eq(r->state, RS_RUNNING);
    bt_msg_free(&r->hdr);
    r = cmd(EX_MSG_START, NULL, "b", "{}");
    cr_assert_eq(r->status, EX_ESTORE);
    bt_msg_free(&r->hdr);
    faultvfs_clear();
    cr_assert_eq(stored_state(id), RS_RUNNING);
    cr_assert_eq(runs_of("b"), 0);
    int st;
    cr_assert_eq(run_cmd(EX_MSG_PAUSE, id, &st), EX_OK);
    cr_assert_eq(st, RS_PAUSED);
    ex_stats_reply_t s = get_stats();
    cr_assert_eq(s.commands[EX_CMD_PAUSE][ex_outcome_index(EX_ESTORE)], 1);
    cr_assert_eq(s.commands[EX_CMD_START][ex_outcome_index(EX_ESTORE)], 1);
    cr_assert_geq(s.store_failures, 2);
}

/* -------------------------------------------------------------- counters */

Test(executor, stats_count_commands_transitions_and_runs)
{
    start_all(1, 0);
    char a[EX_RUN_ID_MAX], b[EX_RUN_ID_MAX];
    start_ok("a", a, RS_RUNNING);
    start_ok("b", b, RS_PENDING);
    cr_assert_eq(run_cmd(EX_MSG_START, NULL, NULL), EX_EBADREQ);
    ex_reply_t *r = cmd(EX_MSG_START, NULL, "a", "{}");
    cr_assert_eq(r->status, EX_ECONFLICT);
    bt_msg_free(&r->hdr);
    cr_assert_eq(run_cmd(EX_MSG_PAUSE, a, NULL), EX_OK);
    await_state(b, RS_RUNNING); /* the freed slot */
    ex_stats_reply_t s = get_stats();
    cr_assert_eq(s.commands[EX_CMD_START][0], 2);
    cr_assert_eq(s.commands[EX_CMD_START][ex_outcome_index(EX_EBADREQ)], 1);
    cr_assert_eq(s.commands[EX_CMD_START][ex_outcome_index(EX_ECONFLICT)], 1);
    cr_assert_eq(s.commands[EX_CMD_PAUSE][0], 1);
    cr_assert_geq(s.commands[EX_CMD_GET][0], 1);
    cr_assert_eq(s.transitions[RS_NONE][RS_RUNNING], 1);    /* a created running */
    cr_assert_eq(s.transitions[RS_NONE][RS_PENDING], 1);    /* b created pending */
    cr_assert_eq(s.transitions[RS_PENDING][RS_RUNNING], 1); /* b promoted */
    cr_assert_eq(s.transitions[RS_RUNNING][RS_PAUSED], 1);
    cr_assert(EX_REPLY_REPLAYED(&(ex_reply_t){.flags = EX_REPLY_REPLAYED}));
    cr_assert_eq(s.runs[RS_RUNNING], 1);
    cr_assert_eq(s.runs[RS_PAUSED], 1);
    cr_assert_eq(s.runs[RS_PENDING], 0);
    cr_assert_eq(s.pause_timeouts, 0);
}

/* ------------------------------------------------ overlapping round trips */

static rs_stats_t store_stats(void)
{
    bt_msg_t *r = NULL;
    cr_assert_eq(bt_ask_wait(rt, store, rs_req_stats(), 20 * SEC_NS, &r), BT_OK);
    rs_stats_t st = ((rs_reply_t *)r)->stats;
    bt_msg_free(r);
    return st;
}

Test(executor, commands_on_different_runs_share_store_transactions)
{
    use_faultvfs = true;
    sync_mode = RS_SYNC_FULL;
    start_all(8, 0);
    enum { N = 8 };
    char id[N][EX_RUN_ID_MAX];
    for (int i = 0; i < N; i++) {
        char job[8];
        snprintf(job, sizeof(job), "m%d", i);
        start_ok(job, id[i], RS_RUNNING);
    }
    uint64_t tx0 = store_stats().transactions;
    /* The first pause's commit is held at its fsync; the other seven are
     * decided meanwhile and wait in the store's mailbox, one batch. */
    faultvfs_stall_syncs(true);
    async_cmd_t p[N];
    async_cmd(&p[0], EX_MSG_PAUSE, id[0], NULL, NULL);
    for (int i = 0; i < 5000 && faultvfs_stalled() == 0; i++)
        sleep_ms(1);
    cr_assert_gt(faultvfs_stalled(), 0);
    for (int i = 1; i < N; i++)
        async_cmd(&p[i], EX_MSG_PAUSE, id[i], NULL, NULL);
    sleep_ms(100);
    for (int i = 0; i < N; i++)
        cr_assert(!async_done(&p[i]), "pause %d answered before its commit", i);
    faultvfs_stall_syncs(false);
    for (int i = 0; i < N; i++) {
        async_join(&p[i]);
        cr_assert_eq(p[i].rep.status, EX_OK, "%s", p[i].rep.message);
        cr_assert_eq(p[i].rep.state, RS_PAUSED);
    }
    uint64_t tx = store_stats().transactions - tx0;
    cr_assert_leq(tx, 2, "%d pauses took %llu transactions: not overlapped", N,
                  (unsigned long long)tx);
}

Test(executor, a_pause_in_flight_keeps_its_running_slot_until_the_store_answers)
{
    use_faultvfs = true;
    sync_mode = RS_SYNC_FULL;
    start_all(1, 0);
    char a[EX_RUN_ID_MAX];
    start_ok("a", a, RS_RUNNING);
    faultvfs_stall_syncs(true);
    async_cmd_t p, b;
    async_cmd(&p, EX_MSG_PAUSE, a, NULL, NULL);
    for (int i = 0; i < 5000 && faultvfs_stalled() == 0; i++)
        sleep_ms(1);
    cr_assert_gt(faultvfs_stalled(), 0);
    /* decided while a's pause is in flight: a still holds the one slot */
    async_cmd(&b, EX_MSG_START, NULL, "b", NULL);
    sleep_ms(50);
    faultvfs_stall_syncs(false);
    async_join(&p);
    async_join(&b);
    cr_assert_eq(p.rep.status, EX_OK, "%s", p.rep.message);
    cr_assert_eq(b.rep.status, EX_OK, "%s", b.rep.message);
    cr_assert_eq(b.rep.state, RS_PENDING);
    await_state(b.rep.run_id, RS_RUNNING); /* promoted once the pause was saved */
    cr_assert_eq(stored_state(a), RS_PAUSED);
}

Test(executor, a_failed_resume_releases_its_reserved_slot)
{
    use_faultvfs = true;
    start_all(1, 0);
    char a[EX_RUN_ID_MAX], b[EX_RUN_ID_MAX];
    start_ok("a", a, RS_RUNNING);
    cr_assert_eq(run_cmd(EX_MSG_PAUSE, a, NULL), EX_OK);
    faultvfs_inject(FV_WRITE, 0, -1, SQLITE_FULL);
    int st;
    cr_assert_eq(run_cmd(EX_MSG_RESUME, a, &st), EX_ESTORE);
    cr_assert_eq(st, RS_PAUSED);
    faultvfs_clear();
    /* the slot the resume reserved is free again */
    start_ok("b", b, RS_RUNNING);
    cr_assert_eq(stored_state(a), RS_PAUSED);
}

Test(executor, ready_is_answered_once_recovery_is_done)
{
    start_all(4, 0);
    bt_msg_t *r = NULL;
    cr_assert_eq(bt_ask_wait(rt, ex, bt_msg_new(sizeof(bt_msg_t), EX_MSG_READY), 20 * SEC_NS, &r),
                 BT_OK);
    cr_assert_eq(r->id, EX_MSG_REPLY);
    cr_assert_eq(((ex_reply_t *)r)->status, EX_OK);
    bt_msg_free(r);
}

/* ------------------------------------------- store timeouts and conflicts */

/* The run's last_error as the store has it ("" if none). */
static void stored_error(const char *id, char *out, size_t len)
{
    bt_msg_t *r = NULL;
    cr_assert_eq(bt_ask_wait(rt, ex, ex_cmd_new(EX_MSG_GET, id, NULL, NULL), 20 * SEC_NS, &r),
                 BT_OK);
    cr_assert_eq(((rs_reply_t *)r)->status, RS_OK);
    rs_run_t run;
    rs_reply_run((const rs_reply_t *)r, 0, &run);
    snprintf(out, len, "%s", run.last_error != NULL ? run.last_error : "");
    bt_msg_free(r);
}

/* Moves a run in the store behind the executor's back. */
static void store_move(const char *id, rs_state_t from, rs_state_t to)
{
    bt_msg_t *r = NULL;
    cr_assert_eq(
        bt_ask_wait(rt, store, rs_req_transition(id, from, to, "test", NULL), 20 * SEC_NS, &r),
        BT_OK);
    cr_assert_eq(((rs_reply_t *)r)->status, RS_OK, "%s", ((rs_reply_t *)r)->message);
    bt_msg_free(r);
}

/* The store's commits wait at their fsync (fault VFS) for longer than the
 * executor's store timeout, then go through: the writes time out in the
 * executor but are committed. The timeout is long enough that the
 * unstalled writes of a loaded machine never reach it. */
static void timeouts_setup(void)
{
    use_faultvfs = true;
    sync_mode = RS_SYNC_FULL;
    store_timeout = 400 * MS;
    start_all(4, 0);
}

Test(executor, a_pause_that_timed_out_but_committed_is_adopted_before_the_next_command)
{
    timeouts_setup();
    char id[EX_RUN_ID_MAX];
    start_ok("a", id, RS_RUNNING);
    cr_assert_eq(kind_query(id).paused, 0);
    faultvfs_stall_syncs(true);
    ex_reply_t *r = cmd(EX_MSG_PAUSE, id, NULL, NULL);
    cr_assert_eq(r->status, EX_ESTORE, "%s", r->message);
    cr_assert_eq(r->state, RS_RUNNING);
    cr_assert(strstr(r->message, "did not answer in time: the pause may still take effect") != NULL,
              "%s", r->message);
    bt_msg_free(&r->hdr);
    for (int i = 0; i < 5000 && faultvfs_stalled() == 0; i++)
        sleep_ms(1);
    cr_assert_gt(faultvfs_stalled(), 0); /* the pause is still being committed */
    ex_stats_reply_t s = get_stats();
    cr_assert_eq(s.uncertain, 1);
    /* the next command on the run waits for its re-read, which times out
     * too while the store is held, and is retried */
    async_cmd_t p;
    async_cmd(&p, EX_MSG_PAUSE, id, NULL, NULL);
    sleep_ms(600);
    cr_assert(!async_done(&p), "a command was decided on a stale view");
    faultvfs_stall_syncs(false); /* the pause commits */
    async_join(&p);
    cr_assert_eq(p.rep.status, EX_ETRANSITION, "%s", p.rep.message);
    cr_assert_eq(p.rep.state, RS_PAUSED);
    char want[128];
    snprintf(want, sizeof(want), "run %s is paused; cannot pause", id);
    cr_assert_str_eq(p.rep.message, want);
    cr_assert_eq(stored_state(id), RS_PAUSED);
    tk_query_reply_t q = kind_query(id); /* the kind was told, once */
    cr_assert_eq(q.paused, 1);
    cr_assert_eq(q.pauses, 1);
    int st;
    cr_assert_eq(run_cmd(EX_MSG_RESUME, id, &st), EX_OK);
    cr_assert_eq(st, RS_RUNNING);
    cr_assert_eq(stored_state(id), RS_RUNNING);
    cr_assert_eq(kind_query(id).paused, 0);
    s = get_stats();
    cr_assert_eq(s.uncertain, 0);
    cr_assert_geq(s.reconciles, 1);
    cr_assert_geq(s.store_failures, 2); /* the pause and at least one re-read */
    cr_assert_eq(s.transitions[RS_RUNNING][RS_PAUSED], 1);
    cr_assert_eq(s.transitions[RS_PAUSED][RS_RUNNING], 1);
    cr_assert_eq(s.runs[RS_RUNNING], 1);
}

Test(executor, a_start_that_timed_out_but_committed_is_failed_not_orphaned)
{
    timeouts_setup();
    faultvfs_stall_syncs(true);
    ex_reply_t *r = cmd(EX_MSG_START, NULL, "a", "{}");
    cr_assert_eq(r->status, EX_ESTORE, "%s", r->message);
    cr_assert(strstr(r->message, "interrupted: start outcome unknown") != NULL, "%s", r->message);
    bt_msg_free(&r->hdr);
    cr_assert_eq(get_stats().uncertain, 1);
    /* a second start of the job waits until the job is re-read */
    async_cmd_t s2;
    async_cmd(&s2, EX_MSG_START, NULL, "a", NULL);
    sleep_ms(200);
    cr_assert(!async_done(&s2), "a start was decided while the job was uncertain");
    faultvfs_stall_syncs(false); /* the run is created */
    async_join(&s2);
    /* the lost run is found, and holds the job's one place until it ends */
    cr_assert_eq(s2.rep.status, EX_ECONFLICT, "%s", s2.rep.message);
    char orphan[EX_RUN_ID_MAX];
    snprintf(orphan, sizeof(orphan), "%s", s2.rep.run_id);
    cr_assert_neq(orphan[0], '\0', "%s", s2.rep.message);
    await_state(orphan, RS_FAILED);
    char err[EX_ERRMSG_MAX];
    stored_error(orphan, err, sizeof(err));
    cr_assert_str_eq(err, "interrupted: start outcome unknown");
    char id[EX_RUN_ID_MAX];
    start_ok("a", id, RS_RUNNING); /* its place is free again */
    cr_assert_str_neq(id, orphan);
    cr_assert_eq(runs_of("a"), 2);
    ex_stats_reply_t s = get_stats();
    cr_assert_eq(s.uncertain, 0);
    cr_assert_geq(s.reconciles, 1);
    cr_assert_eq(s.runs[RS_RUNNING], 1);
    cr_assert_eq(s.transitions[RS_RUNNING][RS_FAILED], 1);
}

Test(executor, a_keyed_start_that_timed_out_but_committed_is_adopted_and_driven)
{
    timeouts_setup();
    faultvfs_stall_syncs(true);
    ex_reply_t *r = kstart("a", "lost-answer");
    cr_assert_eq(r->status, EX_ESTORE, "%s", r->message);
    cr_assert(strstr(r->message, "same idempotency key") != NULL, "%s", r->message);
    bt_msg_free(&r->hdr);
    faultvfs_stall_syncs(false);
    /* the retry with the key gets the run, which runs */
    r = kstart("a", "lost-answer");
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    cr_assert(r->flags & EX_REPLY_REPLAYED);
    cr_assert_eq(r->state, RS_RUNNING);
    char id[EX_RUN_ID_MAX];
    snprintf(id, sizeof(id), "%s", r->run_id);
    bt_msg_free(&r->hdr);
    cr_assert_eq(stored_state(id), RS_RUNNING);
    r = cmd(EX_MSG_START, NULL, "a", "{}"); /* max_active counts it */
    cr_assert_eq(r->status, EX_ECONFLICT, "%s", r->message);
    cr_assert_str_eq(r->run_id, id);
    bt_msg_free(&r->hdr);
    kind_tell(id, TK_DONE); /* its kind was started */
    await_state(id, RS_COMPLETED);
    char other[EX_RUN_ID_MAX];
    start_ok("a", other, RS_RUNNING);
    cr_assert_eq(runs_of("a"), 2);
}

Test(executor, a_conflict_from_a_stale_view_is_reconciled_and_the_command_decided_again)
{
    start_all(4, 0);
    char a[EX_RUN_ID_MAX], b[EX_RUN_ID_MAX];
    start_ok("a", a, RS_RUNNING);
    start_ok("b", b, RS_RUNNING);
    /* the store moves a to paused behind the executor's back */
    store_move(a, RS_RUNNING, RS_PAUSED);
    ex_reply_t *r = cmd(EX_MSG_PAUSE, a, NULL, NULL);
    cr_assert_eq(r->status, EX_ETRANSITION, "%s", r->message);
    cr_assert_eq(r->state, RS_PAUSED);
    bt_msg_free(&r->hdr);
    cr_assert_eq(kind_query(a).paused, 1); /* the kind was told */
    int st;
    cr_assert_eq(run_cmd(EX_MSG_RESUME, a, &st), EX_OK);
    cr_assert_eq(st, RS_RUNNING);
    cr_assert_eq(stored_state(a), RS_RUNNING);
    cr_assert_eq(kind_query(a).paused, 0);
    /* ... and b to stopped: its kind is stopped, and its place freed */
    store_move(b, RS_RUNNING, RS_STOPPED);
    r = cmd(EX_MSG_PAUSE, b, NULL, NULL);
    cr_assert_eq(r->status, EX_ETRANSITION, "%s", r->message);
    bt_msg_free(&r->hdr);
    for (int i = 0; i < 500 && get_stats().runs[RS_RUNNING] != 1; i++)
        sleep_ms(5);
    cr_assert_eq(get_stats().runs[RS_RUNNING], 1);
    cr_assert_eq(stored_state(b), RS_STOPPED);
    r = cmd(EX_MSG_PAUSE, b, NULL, NULL);
    cr_assert_eq(r->status, EX_ETRANSITION);
    cr_assert(strstr(r->message, "is stopped; cannot pause") != NULL, "%s", r->message);
    bt_msg_free(&r->hdr);
    start_ok("b", b, RS_RUNNING);
    ex_stats_reply_t s = get_stats();
    cr_assert_geq(s.reconciles, 2);
    cr_assert_eq(s.uncertain, 0);
}
