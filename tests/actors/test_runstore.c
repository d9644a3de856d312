/* test_runstore.c: the run store actor through its message interface:
 * runs and ids, the transition table, compare-and-set, queries, group
 * commit, injected I/O failures, locks, retried opens, recovery at open. */
#define _GNU_SOURCE
#include "runstore.h"

#include "faultvfs.h"

#include <baton/baton.h>
#include <criterion/criterion.h>
#include <sqlite3.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS     (1000000ull)
#define SEC_NS (1000000000ull)

/* ----------------------------------------------------------- fixtures */

static char dir[256];
static char db_path[400];
static bt_runtime_t *rt;

static void make_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/runstore-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db_path, sizeof(db_path), "%s/runs.db", dir);
}

static void remove_dir(void)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char p[400];
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s%s", db_path, suffixes[i]);
        unlink(p);
    }
    snprintf(p, sizeof(p), "%s/sub/runs.db", dir);
    for (int i = 0; i < 4; i++) {
        char q[420];
        snprintf(q, sizeof(q), "%s%s", p, suffixes[i]);
        unlink(q);
    }
    snprintf(p, sizeof(p), "%s/sub", dir);
    rmdir(p);
    rmdir(dir);
}

static void start_runtime(void)
{
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 2}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
}

static void stop_runtime(void)
{
    cr_assert_eq(bt_runtime_shutdown(rt, 10 * SEC_NS), BT_OK);
    rt = NULL;
}

static void setup(void)
{
    make_dir();
    start_runtime();
    faultvfs_register();
    faultvfs_clear();
}

static void teardown(void)
{
    faultvfs_clear();
    if (rt != NULL)
        stop_runtime();
    remove_dir();
}

static bt_ref_t spawn_store(const char *vfs)
{
    bt_ref_t s;
    rs_config_t cfg = {.path = db_path,
                       .vfs = vfs,
                       .busy_timeout_ms = 50,
                       .retry_min_ns = 2 * MS,
                       .retry_max_ns = 20 * MS};
    cr_assert_eq(rs_spawn(rt, &cfg, &s), BT_OK);
    return s;
}

/* Asks from the test thread; the reply is the caller's to free. */
static rs_reply_t *ask(bt_ref_t store, bt_msg_t *req)
{
    cr_assert_not_null(req);
    bt_msg_t *reply = NULL;
    cr_assert_eq(bt_ask_wait(rt, store, req, 20 * SEC_NS, &reply), BT_OK);
    cr_assert_eq(reply->id, RS_MSG_REPLY);
    return (rs_reply_t *)reply;
}

static void done(rs_reply_t *r)
{
    bt_msg_free(&r->hdr);
}

/* Creates a run of job in `initial` and returns its id in id. */
static void create(bt_ref_t store, const char *job, rs_state_t initial, char id[RS_ID_LEN + 1])
{
    rs_reply_t *r = ask(store, rs_req_create(job, "{\"n\":1}", initial));
    cr_assert_eq(r->status, RS_OK, "%s", r->message);
    memcpy(id, r->run_id, RS_ID_LEN + 1);
    done(r);
}

static int move(bt_ref_t store, const char *id, rs_state_t from, rs_state_t to)
{
    rs_reply_t *r = ask(store, rs_req_transition(id, from, to, "test", NULL));
    int status = r->status;
    done(r);
    return status;
}

static rs_state_t state_of(bt_ref_t store, const char *id)
{
    rs_reply_t *r = ask(store, rs_req_get(id));
    cr_assert_eq(r->status, RS_OK, "%s", r->message);
    rs_state_t s = r->state;
    done(r);
    return s;
}

static uint32_t event_count(bt_ref_t store, const char *id)
{
    rs_reply_t *r = ask(store, rs_req_events(id));
    cr_assert_eq(r->status, RS_OK, "%s", r->message);
    uint32_t n = r->nevents;
    done(r);
    return n;
}

static rs_stats_t stats(bt_ref_t store)
{
    rs_reply_t *r = ask(store, rs_req_stats());
    rs_stats_t s = r->stats;
    done(r);
    return s;
}

TestSuite(runstore, .init = setup, .fini = teardown);

/* ----------------------------------------------------------- runs, ids */

Test(runstore, creates_a_run_and_reads_every_field_back)
{
    bt_ref_t s = spawn_store(NULL);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t before = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    rs_reply_t *c = ask(s, rs_req_create("backup", "{\"dst\":\"s3\"}", RS_PENDING));
    cr_assert_eq(c->status, RS_OK, "%s", c->message);
    cr_assert_eq(strlen(c->run_id), RS_ID_LEN);
    cr_assert_geq(rs_id_time_ms(c->run_id), before);
    char id[RS_ID_LEN + 1];
    memcpy(id, c->run_id, sizeof(id));
    done(c);

    rs_reply_t *g = ask(s, rs_req_get(id));
    cr_assert_eq(g->status, RS_OK);
    cr_assert_eq(g->nruns, 1);
    rs_run_t run;
    rs_reply_run(g, 0, &run);
    cr_assert_str_eq(run.id, id);
    cr_assert_str_eq(run.job, "backup");
    cr_assert_eq(run.state, RS_PENDING);
    cr_assert_str_eq(run.params, "{\"dst\":\"s3\"}");
    cr_assert_eq(run.attempt, 0);
    cr_assert_null(run.last_error);
    cr_assert_null(run.checkpoint);
    cr_assert_geq(run.created_ms, before);
    cr_assert_eq(run.started_ms, 0);
    cr_assert_eq(run.finished_ms, 0);
    done(g);

    cr_assert_eq(move(s, id, RS_PENDING, RS_RUNNING), RS_OK);
    rs_reply_t *t = ask(s, rs_req_transition(id, RS_RUNNING, RS_FAILED, "exit 3", "exit status 3"));
    cr_assert_eq(t->status, RS_OK);
    cr_assert_eq(t->state, RS_FAILED);
    done(t);
    g = ask(s, rs_req_get(id));
    rs_reply_run(g, 0, &run);
    cr_assert_eq(run.state, RS_FAILED);
    cr_assert_eq(run.attempt, 1, "entering running counts an attempt");
    cr_assert_str_eq(run.last_error, "exit status 3");
    cr_assert_gt(run.started_ms, 0);
    cr_assert_geq(run.finished_ms, run.started_ms);
    done(g);
}

Test(runstore, unknown_run_is_not_found)
{
    bt_ref_t s = spawn_store(NULL);
    rs_reply_t *r = ask(s, rs_req_get("01890000-0000-7000-8000-000000000000"));
    cr_assert_eq(r->status, RS_ENOTFOUND);
    cr_assert(strstr(r->message, "does not exist") != NULL, "%s", r->message);
    done(r);
    r = ask(s, rs_req_transition("nope", RS_PENDING, RS_RUNNING, NULL, NULL));
    cr_assert_eq(r->status, RS_ENOTFOUND);
    done(r);
}

Test(runstore, params_that_are_not_json_are_refused_with_a_clear_error)
{
    bt_ref_t s = spawn_store(NULL);
    rs_reply_t *r = ask(s, rs_req_create("j", "{not json", RS_PENDING));
    cr_assert_eq(r->status, RS_EINVAL);
    cr_assert(strstr(r->message, "JSON") != NULL, "%s", r->message);
    done(r);
    r = ask(s, rs_req_create("", NULL, RS_PENDING));
    cr_assert_eq(r->status, RS_EINVAL);
    done(r);
}

/* ---------------------------------------------------------- transitions */

/* The table of ../shared/DESIGN.md, written out independently of
 * transitions.c: expected[from][to]. */
static const bool expected[RS_STATE_COUNT][RS_STATE_COUNT] = {
    [RS_NONE] = {[RS_PENDING] = true, [RS_RUNNING] = true},
    [RS_PENDING] = {[RS_RUNNING] = true, [RS_PAUSED] = true, [RS_STOPPED] = true},
    [RS_RUNNING] =
        {[RS_PAUSED] = true, [RS_COMPLETED] = true, [RS_FAILED] = true, [RS_STOPPED] = true},
    [RS_PAUSED] = {[RS_PENDING] = true, [RS_RUNNING] = true, [RS_STOPPED] = true},
};

/* Brings a new run to state `want` along allowed transitions. */
static void run_in(bt_ref_t s, rs_state_t want, char id[RS_ID_LEN + 1])
{
    switch (want) {
    case RS_PENDING:
        create(s, "table", RS_PENDING, id);
        break;
    case RS_RUNNING:
        create(s, "table", RS_RUNNING, id);
        break;
    case RS_PAUSED:
        create(s, "table", RS_PENDING, id);
        cr_assert_eq(move(s, id, RS_PENDING, RS_PAUSED), RS_OK);
        break;
    case RS_STOPPED:
        create(s, "table", RS_PENDING, id);
        cr_assert_eq(move(s, id, RS_PENDING, RS_STOPPED), RS_OK);
        break;
    default:
        create(s, "table", RS_RUNNING, id);
        cr_assert_eq(move(s, id, RS_RUNNING, want), RS_OK);
        break;
    }
    cr_assert_eq(state_of(s, id), want);
}

Test(runstore, every_transition_pair_is_allowed_or_refused_as_the_table_says)
{
    bt_ref_t s = spawn_store(NULL);
    for (int from = RS_PENDING; from < RS_STATE_COUNT; from++) {
        for (int to = RS_NONE; to < RS_STATE_COUNT; to++) {
            cr_assert_eq(rs_transition_allowed(from, to), expected[from][to], "%s -> %s",
                         rs_state_name(from), rs_state_name(to));
            char id[RS_ID_LEN + 1];
            run_in(s, from, id);
            uint32_t events = event_count(s, id);
            rs_reply_t *r = ask(s, rs_req_transition(id, from, to, "pair", NULL));
            if (expected[from][to]) {
                cr_assert_eq(r->status, RS_OK, "%s -> %s: %s", rs_state_name(from),
                             rs_state_name(to), r->message);
                cr_assert_eq(state_of(s, id), to);
                cr_assert_eq(event_count(s, id), events + 1);
            } else {
                cr_assert_eq(r->status, RS_ETRANSITION, "%s -> %s", rs_state_name(from),
                             rs_state_name(to));
                cr_assert(strstr(r->message, rs_state_name(from)) != NULL, "%s", r->message);
                cr_assert_eq(state_of(s, id), from, "a refused transition changes nothing");
                cr_assert_eq(event_count(s, id), events, "and records no event");
            }
            done(r);
        }
    }
    /* Creation: only pending or running. */
    for (int to = RS_NONE; to < RS_STATE_COUNT; to++) {
        rs_reply_t *r = ask(s, rs_req_create("table", NULL, to));
        cr_assert_eq(r->status == RS_OK, expected[RS_NONE][to], "(new) -> %s", rs_state_name(to));
        if (r->status != RS_OK)
            cr_assert_eq(r->status, RS_ETRANSITION);
        done(r);
    }
}

Test(runstore, a_transition_from_the_wrong_state_fails_with_the_current_state)
{
    bt_ref_t s = spawn_store(NULL);
    char id[RS_ID_LEN + 1];
    create(s, "cas", RS_PENDING, id);
    cr_assert_eq(move(s, id, RS_PENDING, RS_PAUSED), RS_OK);
    /* Both callers think it is pending: the second compare fails. */
    rs_reply_t *r = ask(s, rs_req_transition(id, RS_PENDING, RS_RUNNING, "slot", NULL));
    cr_assert_eq(r->status, RS_ECONFLICT);
    cr_assert_eq(r->state, RS_PAUSED, "the reply carries the current state");
    cr_assert(strstr(r->message, "paused") != NULL, "%s", r->message);
    done(r);
    cr_assert_eq(event_count(s, id), 2);
}

Test(runstore, events_record_every_transition_in_order)
{
    bt_ref_t s = spawn_store(NULL);
    char id[RS_ID_LEN + 1];
    create(s, "hist", RS_PENDING, id);
    static const rs_state_t path[] = {RS_RUNNING, RS_PAUSED, RS_PENDING, RS_RUNNING, RS_COMPLETED};
    rs_state_t cur = RS_PENDING;
    for (size_t i = 0; i < sizeof(path) / sizeof(path[0]); i++) {
        cr_assert_eq(move(s, id, cur, path[i]), RS_OK);
        cur = path[i];
    }
    rs_reply_t *r = ask(s, rs_req_events(id));
    cr_assert_eq(r->status, RS_OK);
    cr_assert_eq(r->nevents, 6);
    rs_event_t ev, prev = {0};
    for (uint32_t i = 0; i < r->nevents; i++) {
        rs_reply_event(r, i, &ev);
        cr_assert_eq(ev.from, i == 0 ? RS_NONE : prev.to, "the history is a chain");
        cr_assert_eq(ev.to, i == 0 ? RS_PENDING : path[i - 1]);
        cr_assert_str_eq(ev.cause, i == 0 ? "created" : "test");
        if (i > 0) {
            cr_assert_gt(ev.seq, prev.seq);
            cr_assert_geq(ev.at_ms, prev.at_ms);
        }
        prev = ev;
    }
    done(r);
}

Test(runstore, progress_and_checkpoint_are_kept_until_the_run_ends)
{
    bt_ref_t s = spawn_store(NULL);
    char id[RS_ID_LEN + 1];
    create(s, "prog", RS_RUNNING, id);
    static const unsigned char blob[] = {0, 1, 2, 0xff, 0};
    rs_reply_t *r = ask(s, rs_req_progress(id, 5, 10, blob, sizeof(blob)));
    cr_assert_eq(r->status, RS_OK, "%s", r->message);
    done(r);
    r = ask(s, rs_req_progress(id, 7, 10, NULL, 0)); /* counters only */
    cr_assert_eq(r->status, RS_OK);
    done(r);
    r = ask(s, rs_req_get(id));
    rs_run_t run;
    rs_reply_run(r, 0, &run);
    cr_assert_eq(run.progress_done, 7);
    cr_assert_eq(run.progress_total, 10);
    cr_assert_eq(run.checkpoint_len, sizeof(blob));
    cr_assert_arr_eq(run.checkpoint, blob, sizeof(blob));
    done(r);
    cr_assert_eq(move(s, id, RS_RUNNING, RS_COMPLETED), RS_OK);
    r = ask(s, rs_req_progress(id, 8, 10, NULL, 0));
    cr_assert_eq(r->status, RS_ECONFLICT);
    cr_assert_eq(r->state, RS_COMPLETED);
    done(r);
}

/* -------------------------------------------------------------- queries */

Test(runstore, runs_are_listed_by_job_and_state_in_pages)
{
    bt_ref_t s = spawn_store(NULL);
    char ids[25][RS_ID_LEN + 1], other[RS_ID_LEN + 1];
    for (int i = 0; i < 25; i++) {
        create(s, "alpha", RS_PENDING, ids[i]);
        if (i % 5 == 0)
            cr_assert_eq(move(s, ids[i], RS_PENDING, RS_PAUSED), RS_OK);
    }
    for (int i = 0; i < 3; i++)
        create(s, "beta", RS_PENDING, other);

    /* Pending runs of alpha: 20, in pages of 8. */
    char after[RS_ID_LEN + 1] = "";
    int seen = 0, pages = 0;
    char last[RS_ID_LEN + 1] = "";
    for (;;) {
        rs_reply_t *r =
            ask(s, rs_req_list("alpha", RS_MASK(RS_PENDING), after[0] ? after : NULL, 8));
        cr_assert_eq(r->status, RS_OK);
        pages++;
        for (uint32_t i = 0; i < r->nruns; i++) {
            rs_run_t run;
            rs_reply_run(r, i, &run);
            cr_assert_str_eq(run.job, "alpha");
            cr_assert_eq(run.state, RS_PENDING);
            cr_assert_gt(strcmp(run.id, last), 0, "oldest first, no repeats");
            memcpy(last, run.id, sizeof(last));
            seen++;
        }
        memcpy(after, r->next_cursor, sizeof(after));
        done(r);
        if (after[0] == '\0')
            break;
    }
    cr_assert_eq(seen, 20);
    cr_assert_eq(pages, 3);

    rs_reply_t *r = ask(s, rs_req_list("alpha", RS_MASK(RS_PAUSED), NULL, 0));
    cr_assert_eq(r->nruns, 5);
    done(r);
    r = ask(s, rs_req_list(NULL, 0, NULL, 0));
    cr_assert_eq(r->nruns, 28, "no job and no mask: every run");
    done(r);
}

Test(runstore, active_runs_are_listed_per_job)
{
    bt_ref_t s = spawn_store(NULL);
    char a[4][RS_ID_LEN + 1], b[RS_ID_LEN + 1];
    create(s, "a", RS_PENDING, a[0]);
    create(s, "a", RS_RUNNING, a[1]);
    create(s, "a", RS_PENDING, a[2]);
    cr_assert_eq(move(s, a[2], RS_PENDING, RS_PAUSED), RS_OK);
    create(s, "a", RS_RUNNING, a[3]);
    cr_assert_eq(move(s, a[3], RS_RUNNING, RS_COMPLETED), RS_OK);
    create(s, "b", RS_RUNNING, b);
    rs_reply_t *r = ask(s, rs_req_active("a"));
    cr_assert_eq(r->status, RS_OK);
    cr_assert_eq(r->nruns, 3, "pending, running and paused; not completed");
    for (uint32_t i = 0; i < 3; i++) {
        rs_run_t run;
        rs_reply_run(r, i, &run);
        cr_assert_str_eq(run.id, a[i]);
    }
    done(r);
}

/* ---------------------------------------------------- many requesters */

enum { MSG_GO = 1 };

typedef struct {
    bt_ref_t store;
    char id[RS_ID_LEN + 1];
    int steps, done_steps, errors;
    rs_state_t cur;
} walker_t;

typedef struct {
    bt_ref_t store;
    int steps;
} walker_arg;

static uint64_t walkers_done; /* atomic */
static uint64_t replies_seen; /* atomic */

static int walker_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    walker_t *w = state;
    w->store = ((const walker_arg *)arg)->store;
    w->steps = ((const walker_arg *)arg)->steps;
    return BT_OK;
}

static int walker_next(bt_ctx_t *ctx, walker_t *w)
{
    bt_msg_t *req;
    if (w->id[0] == '\0')
        req = rs_req_create("walk", NULL, RS_RUNNING);
    else {
        rs_state_t to = w->cur == RS_RUNNING ? RS_PAUSED : RS_RUNNING;
        req = rs_req_transition(w->id, w->cur, to, "walk", NULL);
    }
    return bt_ask(ctx, w->store, req, 30 * SEC_NS, NULL);
}

static int walker_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    walker_t *w = state;
    if (msg->id == MSG_GO)
        return walker_next(ctx, w);
    if (msg->id != RS_MSG_REPLY) {
        w->errors++;
        __atomic_fetch_add(&walkers_done, 1, __ATOMIC_RELEASE);
        return BT_OK;
    }
    __atomic_fetch_add(&replies_seen, 1, __ATOMIC_RELEASE);
    const rs_reply_t *r = (const rs_reply_t *)msg;
    if (r->status != RS_OK)
        w->errors++;
    if (w->id[0] == '\0')
        memcpy(w->id, r->run_id, sizeof(w->id));
    w->cur = r->state;
    if (++w->done_steps > w->steps || w->errors != 0) {
        __atomic_fetch_add(&walkers_done, 1, __ATOMIC_RELEASE);
        return BT_OK;
    }
    return walker_next(ctx, w);
}

static walker_t *walkers[64];

static int walker_init_record(bt_ctx_t *ctx, void *state, const void *arg)
{
    static int n;
    walkers[n++ % 64] = state;
    return walker_init(ctx, state, arg);
}

static const bt_actor_type_t walker_type = {.name = "walker",
                                            .state_size = sizeof(walker_t),
                                            .init = walker_init_record,
                                            .dispatch = walker_dispatch};

static bool wait_until_u64(uint64_t *v, uint64_t want, long ms)
{
    for (long i = 0; i < ms; i++) {
        if (__atomic_load_n(v, __ATOMIC_ACQUIRE) >= want)
            return true;
        usleep(1000);
    }
    return __atomic_load_n(v, __ATOMIC_ACQUIRE) >= want;
}

Test(runstore, concurrent_requests_from_many_actors_are_all_answered_and_stored)
{
    bt_ref_t s = spawn_store(NULL);
    enum { N = 64, STEPS = 10 };
    bt_ref_t w[N];
    for (int i = 0; i < N; i++)
        cr_assert_eq(bt_spawn(rt, &walker_type, &(walker_arg){s, STEPS}, NULL, &w[i]), BT_OK);
    for (int i = 0; i < N; i++)
        cr_assert_eq(bt_send(rt, w[i], bt_msg_new(sizeof(bt_msg_t), MSG_GO)), BT_OK);
    cr_assert(wait_until_u64(&walkers_done, N, 60000), "every walker finished");
    for (int i = 0; i < N; i++) {
        cr_assert_eq(walkers[i]->errors, 0);
        cr_assert_eq(event_count(s, walkers[i]->id), STEPS + 1);
        cr_assert_eq(state_of(s, walkers[i]->id), walkers[i]->cur);
    }
    rs_stats_t st = stats(s);
    cr_assert_lt(st.transactions, (uint64_t)N * (STEPS + 1),
                 "group commit: %llu transactions for %d writes",
                 (unsigned long long)st.transactions, N * (STEPS + 1));
    cr_assert_gt(st.max_batch, 1);
}

/* --------------------------------------------------------- group commit */

Test(runstore, no_reply_is_sent_before_the_commit)
{
    bt_ref_t s = spawn_store("faultvfs");
    enum { N = 16 };
    bt_ref_t w[N];
    for (int i = 0; i < N; i++)
        cr_assert_eq(bt_spawn(rt, &walker_type, &(walker_arg){s, 0}, NULL, &w[i]), BT_OK);
    uint64_t tx0 = stats(s).transactions;
    /* Hold every fsync: a commit cannot finish. */
    faultvfs_stall_syncs(true);
    for (int i = 0; i < N; i++)
        cr_assert_eq(bt_send(rt, w[i], bt_msg_new(sizeof(bt_msg_t), MSG_GO)), BT_OK);
    bool stalled = false;
    for (int i = 0; i < 5000 && !stalled; i++) {
        stalled = faultvfs_stalled() > 0;
        usleep(1000);
    }
    cr_assert(stalled, "a commit reached its fsync");
    usleep(100 * 1000);
    cr_assert_eq(__atomic_load_n(&replies_seen, __ATOMIC_ACQUIRE), 0,
                 "no reply while the commit's fsync has not returned");
    faultvfs_stall_syncs(false);
    cr_assert(wait_until_u64(&walkers_done, N, 30000));
    cr_assert_eq(__atomic_load_n(&replies_seen, __ATOMIC_ACQUIRE), N);
    rs_stats_t st = stats(s);
    cr_assert_leq(st.transactions - tx0, 3, "%d creations in %llu transactions", N,
                  (unsigned long long)(st.transactions - tx0));
    for (int i = 0; i < N; i++)
        cr_assert_eq(state_of(s, walkers[i]->id), RS_RUNNING, "acknowledged means stored");
}

/* ------------------------------------------------------------- failures */

/* Fails the next write (or sync) once; the store answers with code, keeps
 * the run as it was, and serves the next request. */
static void check_injected_failure(fv_op_t op, int sqlite_code, int want, const char *words)
{
    bt_ref_t s = spawn_store("faultvfs");
    char id[RS_ID_LEN + 1];
    create(s, "faulty", RS_PENDING, id);
    uint64_t injected = faultvfs_injected();
    faultvfs_inject(op, 0, 1, sqlite_code);
    rs_reply_t *r = ask(s, rs_req_transition(id, RS_PENDING, RS_RUNNING, "slot", NULL));
    cr_assert_eq(r->status, want, "%s: %s", rs_strerror(r->status), r->message);
    cr_assert(strstr(r->message, words) != NULL, "a clear message: %s", r->message);
    cr_assert(strstr(r->message, "not saved") != NULL, "%s", r->message);
    done(r);
    cr_assert_eq(faultvfs_injected(), injected + 1);
    /* Nothing half-written, and the store keeps serving. */
    cr_assert_eq(state_of(s, id), RS_PENDING);
    cr_assert_eq(event_count(s, id), 1);
    cr_assert_eq(move(s, id, RS_PENDING, RS_RUNNING), RS_OK);
    cr_assert_eq(state_of(s, id), RS_RUNNING);
    cr_assert_eq(event_count(s, id), 2);
    /* And after a restart, what is stored is what was acknowledged. */
    stop_runtime();
    start_runtime();
    s = spawn_store(NULL);
    cr_assert_eq(state_of(s, id), RS_RUNNING);
    cr_assert_eq(event_count(s, id), 2);
}

Test(runstore, an_injected_write_error_reports_a_full_disk_and_the_store_keeps_serving)
{
    check_injected_failure(FV_WRITE, SQLITE_FULL, RS_EFULL, "full");
}

Test(runstore, an_injected_write_io_error_is_reported_and_the_store_keeps_serving)
{
    check_injected_failure(FV_WRITE, SQLITE_IOERR_WRITE, RS_EIO, "I/O");
}

Test(runstore, an_injected_fsync_error_is_reported_and_nothing_is_half_written)
{
    check_injected_failure(FV_SYNC, SQLITE_IOERR_FSYNC, RS_EIO, "I/O");
}

Test(runstore, a_failed_batch_fails_only_its_writes_and_the_rest_are_answered)
{
    bt_ref_t s = spawn_store("faultvfs");
    enum { N = 8 };
    bt_ref_t w[N];
    for (int i = 0; i < N; i++)
        cr_assert_eq(bt_spawn(rt, &walker_type, &(walker_arg){s, 0}, NULL, &w[i]), BT_OK);
    faultvfs_inject(FV_WRITE, 0, -1, SQLITE_FULL); /* the disk stays full */
    for (int i = 0; i < N; i++)
        cr_assert_eq(bt_send(rt, w[i], bt_msg_new(sizeof(bt_msg_t), MSG_GO)), BT_OK);
    cr_assert(wait_until_u64(&walkers_done, N, 30000));
    for (int i = 0; i < N; i++)
        cr_assert_eq(walkers[i]->errors, 1, "every creation failed");
    faultvfs_clear();
    rs_reply_t *r = ask(s, rs_req_list(NULL, 0, NULL, 0));
    cr_assert_eq(r->nruns, 0, "none was half-written");
    done(r);
    char id[RS_ID_LEN + 1];
    create(s, "after", RS_PENDING, id);
}

Test(runstore, a_locked_database_gives_a_busy_error_and_the_store_keeps_serving)
{
    bt_ref_t s = spawn_store(NULL);
    char id[RS_ID_LEN + 1];
    create(s, "locked", RS_PENDING, id);
    sqlite3 *other;
    cr_assert_eq(sqlite3_open(db_path, &other), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    rs_reply_t *r = ask(s, rs_req_transition(id, RS_PENDING, RS_RUNNING, NULL, NULL));
    cr_assert_eq(r->status, RS_EBUSY, "%s", r->message);
    cr_assert(strstr(r->message, "locked") != NULL, "%s", r->message);
    done(r);
    cr_assert_eq(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    cr_assert_eq(move(s, id, RS_PENDING, RS_RUNNING), RS_OK);
}

/* Asks a read and a write at once and counts the answers by status. */
typedef struct {
    bt_ref_t store;
    const char *id;
} mixer_arg;

static uint64_t reads_ok, writes_busy, mixed_other; /* atomic */

static int mixer_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    const mixer_arg *a = *(const mixer_arg **)state;
    if (msg->id == MSG_GO) {
        int rc = bt_ask(ctx, a->store, rs_req_get(a->id), 30 * SEC_NS, NULL);
        if (rc == BT_OK)
            rc = bt_ask(ctx, a->store, rs_req_transition(a->id, RS_PENDING, RS_RUNNING, NULL, NULL),
                        30 * SEC_NS, NULL);
        return rc;
    }
    const rs_reply_t *r = (const rs_reply_t *)msg;
    if (msg->id == RS_MSG_REPLY && r->op == RS_MSG_GET && r->status == RS_OK)
        __atomic_fetch_add(&reads_ok, 1, __ATOMIC_RELEASE);
    else if (msg->id == RS_MSG_REPLY && r->op == RS_MSG_TRANSITION && r->status == RS_EBUSY)
        __atomic_fetch_add(&writes_busy, 1, __ATOMIC_RELEASE);
    else
        __atomic_fetch_add(&mixed_other, 1, __ATOMIC_RELEASE);
    return BT_OK;
}

static int mixer_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    *(const mixer_arg **)state = arg;
    return BT_OK;
}

static const bt_actor_type_t mixer_type = {.name = "mixer",
                                           .state_size = sizeof(mixer_arg *),
                                           .init = mixer_init,
                                           .dispatch = mixer_dispatch};

Test(runstore, while_locked_reads_are_answered_and_writes_get_busy)
{
    bt_ref_t s = spawn_store(NULL);
    char id[RS_ID_LEN + 1];
    create(s, "locked", RS_PENDING, id);
    sqlite3 *other;
    cr_assert_eq(sqlite3_open(db_path, &other), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    enum { N = 4 };
    mixer_arg arg = {s, id};
    for (int i = 0; i < N; i++) {
        bt_ref_t m;
        cr_assert_eq(bt_spawn(rt, &mixer_type, &arg, NULL, &m), BT_OK);
        cr_assert_eq(bt_send(rt, m, bt_msg_new(sizeof(bt_msg_t), MSG_GO)), BT_OK);
    }
    cr_assert(wait_until_u64(&writes_busy, N, 30000));
    cr_assert(wait_until_u64(&reads_ok, N, 30000), "reads do not need the write lock");
    cr_assert_eq(__atomic_load_n(&mixed_other, __ATOMIC_ACQUIRE), 0);
    cr_assert_eq(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    cr_assert_eq(state_of(s, id), RS_PENDING);
}

Test(runstore, a_failed_open_is_retried_with_backoff_until_it_succeeds)
{
    /* The database's directory does not exist yet. */
    char sub[280];
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    snprintf(db_path, sizeof(db_path), "%s/runs.db", sub);
    bt_ref_t s = spawn_store(NULL);
    rs_reply_t *r = ask(s, rs_req_create("j", NULL, RS_PENDING));
    cr_assert_eq(r->status, RS_EUNAVAILABLE);
    cr_assert(strstr(r->message, "not open") != NULL && strstr(r->message, "runs.db") != NULL, "%s",
              r->message);
    done(r);
    cr_assert(bt_alive(rt, s), "the store keeps serving");
    cr_assert_eq(mkdir(sub, 0700), 0);
    bool ok = false;
    for (int i = 0; i < 500 && !ok; i++) {
        r = ask(s, rs_req_create("j", NULL, RS_PENDING));
        ok = r->status == RS_OK;
        done(r);
        if (!ok)
            usleep(10 * 1000);
    }
    cr_assert(ok, "the open was retried");
    cr_assert_geq(stats(s).open_failures, 1);
    snprintf(db_path, sizeof(db_path), "%s/runs.db", dir); /* teardown */
}

Test(runstore, a_corrupt_database_is_reported_and_never_served)
{
    FILE *f = fopen(db_path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 4096; i++)
        fputc("garbage!"[i % 8], f);
    fclose(f);
    bt_ref_t s = spawn_store(NULL);
    rs_reply_t *r = ask(s, rs_req_recovery());
    cr_assert_eq(r->status, RS_EUNAVAILABLE);
    cr_assert(strstr(r->message, "corrupt") != NULL, "%s", r->message);
    cr_assert(strstr(r->message, "not a database") != NULL, "%s", r->message);
    done(r);
    /* An operator moves the bad file away: the next retry starts afresh. */
    cr_assert_eq(unlink(db_path), 0);
    bool ok = false;
    for (int i = 0; i < 500 && !ok; i++) {
        r = ask(s, rs_req_recovery());
        ok = r->status == RS_OK && r->integrity_ok;
        done(r);
        if (!ok)
            usleep(10 * 1000);
    }
    cr_assert(ok);
}

Test(runstore, a_schema_newer_than_the_build_is_refused)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    bt_ref_t s = spawn_store(NULL);
    rs_reply_t *r = ask(s, rs_req_stats());
    cr_assert_eq(r->status, RS_EUNAVAILABLE);
    cr_assert(strstr(r->message, "newer") != NULL, "%s", r->message);
    done(r);
}

Test(runstore, the_schema_is_versioned_wal_and_foreign_keys_are_on)
{
    bt_ref_t s = spawn_store(NULL);
    char id[RS_ID_LEN + 1];
    create(s, "schema", RS_PENDING, id);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int(st, 0), 2);
    sqlite3_finalize(st);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    /* Events must name a run (the store's connection has foreign keys on;
     * check the constraint exists with this one). */
    sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    cr_assert_neq(sqlite3_exec(db,
                               "INSERT INTO events(run_id, at, to_state) VALUES('nope', 0, "
                               "'pending')",
                               NULL, NULL, NULL),
                  SQLITE_OK);
    sqlite3_close(db);
}

/* ------------------------------------------------------------- recovery */

Test(runstore, recovery_at_open_checks_integrity_and_lists_the_runs_left_active)
{
    bt_ref_t s = spawn_store(NULL);
    char p[RS_ID_LEN + 1], r1[RS_ID_LEN + 1], pa[RS_ID_LEN + 1], c[RS_ID_LEN + 1];
    create(s, "rec", RS_PENDING, p);
    create(s, "rec", RS_RUNNING, r1);
    create(s, "rec", RS_PENDING, pa);
    cr_assert_eq(move(s, pa, RS_PENDING, RS_PAUSED), RS_OK);
    create(s, "rec", RS_RUNNING, c);
    cr_assert_eq(move(s, c, RS_RUNNING, RS_COMPLETED), RS_OK);
    stop_runtime();

    start_runtime();
    s = spawn_store(NULL);
    rs_reply_t *r = ask(s, rs_req_recovery());
    cr_assert_eq(r->status, RS_OK, "%s", r->message);
    cr_assert(r->integrity_ok);
    cr_assert_eq(r->nruns, 3);
    const char *want[] = {p, r1, pa};
    rs_state_t states[] = {RS_PENDING, RS_RUNNING, RS_PAUSED};
    for (uint32_t i = 0; i < 3; i++) {
        rs_run_t run;
        rs_reply_run(r, i, &run);
        cr_assert_str_eq(run.id, want[i]);
        cr_assert_eq(run.state, states[i]);
    }
    done(r);
}

/* ------------------------------------------------------------------ ids */

Test(runstore, ids_are_unique_and_increasing_across_a_million_creations)
{
    enum { N = 1000000 };
    char prev[RS_ID_LEN + 1] = "", id[RS_ID_LEN + 1];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t t0 = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    for (int i = 0; i < N; i++) {
        cr_assert_eq(rs_id_new(id), 0);
        if (strcmp(id, prev) <= 0)
            cr_assert_fail("id %d (%s) does not sort after %s", i, id, prev);
        memcpy(prev, id, sizeof(prev));
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t t1 = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t last = rs_id_time_ms(id);
    cr_assert_geq(last, t0);
    cr_assert_leq(last, t1 + 1000, "at most a little ahead of the clock under a burst");
    cr_assert_eq(id[14], '7', "version 7");
    cr_assert(strchr("89ab", id[19]) != NULL, "RFC 9562 variant");
}

static int cmp_ids(const void *a, const void *b)
{
    return memcmp(a, b, RS_ID_LEN);
}

Test(runstore, ids_are_unique_across_processes)
{
    enum { PROCS = 4, PER = 50000 };
    char(*all)[RS_ID_LEN] = malloc((size_t)(PROCS + 1) * PER * RS_ID_LEN);
    cr_assert_not_null(all);
    int fds[PROCS][2];
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        cr_assert_eq(pipe(fds[p]), 0);
        pids[p] = fork();
        cr_assert_geq(pids[p], 0);
        if (pids[p] == 0) {
            close(fds[p][0]);
            char id[RS_ID_LEN + 1];
            for (int i = 0; i < PER; i++) {
                if (rs_id_new(id) != 0 || write(fds[p][1], id, RS_ID_LEN) != RS_ID_LEN)
                    _exit(1);
            }
            _exit(0);
        }
        close(fds[p][1]);
    }
    size_t n = 0;
    char id[RS_ID_LEN + 1];
    for (int i = 0; i < PER; i++) {
        cr_assert_eq(rs_id_new(id), 0);
        memcpy(all[n++], id, RS_ID_LEN);
    }
    for (int p = 0; p < PROCS; p++) {
        size_t got = 0;
        char *buf = (char *)all[n];
        while (got < (size_t)PER * RS_ID_LEN) {
            ssize_t k = read(fds[p][0], buf + got, (size_t)PER * RS_ID_LEN - got);
            cr_assert_gt(k, 0);
            got += (size_t)k;
        }
        n += PER;
        close(fds[p][0]);
        int status;
        cr_assert_eq(waitpid(pids[p], &status, 0), pids[p]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    qsort(all, n, RS_ID_LEN, cmp_ids);
    for (size_t i = 1; i < n; i++)
        if (memcmp(all[i - 1], all[i], RS_ID_LEN) == 0)
            cr_assert_fail("duplicate id %.36s", all[i]);
    free(all);
}

/* ----------------------------------------------------- idempotency keys */

Test(runstore, a_keyed_create_answers_a_repeated_key_with_the_existing_run)
{
    bt_ref_t s = spawn_store(NULL);
    rs_reply_t *r = ask(s, rs_req_create_keyed("kj", "{}", RS_PENDING, "key-1"));
    cr_assert_eq(r->status, RS_OK, "%s", r->message);
    char id[RS_ID_LEN + 1];
    memcpy(id, r->run_id, sizeof(id));
    done(r);
    /* same key, any job: no new row, the existing run instead */
    r = ask(s, rs_req_create_keyed("other", "{}", RS_RUNNING, "key-1"));
    cr_assert_eq(r->status, RS_EDUPLICATE);
    cr_assert_str_eq(r->run_id, id);
    cr_assert_eq(r->state, RS_PENDING);
    cr_assert_eq(r->nruns, 1);
    rs_run_t run;
    rs_reply_run(r, 0, &run);
    cr_assert_str_eq(run.job, "kj");
    cr_assert_str_eq(run.idem_key, "key-1");
    cr_assert(strstr(r->message, "key-1") != NULL && strstr(r->message, id) != NULL, "%s",
              r->message);
    done(r);
    r = ask(s, rs_req_list(NULL, 0, NULL, 0));
    cr_assert_eq(r->nruns, 1);
    done(r);
    /* looked up by key; an unknown key is not found; unkeyed runs have none */
    r = ask(s, rs_req_find_key("key-1"));
    cr_assert_eq(r->status, RS_OK, "%s", r->message);
    cr_assert_str_eq(r->run_id, id);
    done(r);
    r = ask(s, rs_req_find_key("key-2"));
    cr_assert_eq(r->status, RS_ENOTFOUND);
    done(r);
    char plain[RS_ID_LEN + 1];
    create(s, "kj", RS_PENDING, plain);
    r = ask(s, rs_req_get(plain));
    rs_reply_run(r, 0, &run);
    cr_assert_null(run.idem_key);
    done(r);
    /* the builder refuses keys over 128 bytes; "" means no key */
    char longkey[RS_IDEM_KEY_MAX + 2];
    memset(longkey, 'x', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    cr_assert_null(rs_req_create_keyed("kj", "{}", RS_PENDING, longkey));
    r = ask(s, rs_req_create_keyed("kj", "{}", RS_PENDING, ""));
    cr_assert_eq(r->status, RS_OK);
    done(r);
}

typedef struct {
    bt_ref_t store;
    const char *key;
    rs_reply_t *reply;
} keyed_ask_t;

static void *keyed_ask(void *arg)
{
    keyed_ask_t *k = arg;
    bt_msg_t *r = NULL;
    if (bt_ask_wait(rt, k->store, rs_req_create_keyed("kj", "{}", RS_PENDING, k->key), 20 * SEC_NS,
                    &r) == BT_OK)
        k->reply = (rs_reply_t *)r;
    return NULL;
}

Test(runstore, two_keyed_creates_in_one_batch_make_one_run)
{
    bt_ref_t s = spawn_store("faultvfs");
    /* A first commit held at its fsync, so that the next two requests wait
     * in the mailbox and run in one batch. */
    faultvfs_stall_syncs(true);
    pthread_t th[3];
    keyed_ask_t k[3] = {{s, NULL, NULL}, {s, "same", NULL}, {s, "same", NULL}};
    cr_assert_eq(pthread_create(&th[0], NULL, keyed_ask, &k[0]), 0);
    for (int i = 0; i < 5000 && faultvfs_stalled() == 0; i++)
        usleep(1000);
    cr_assert_gt(faultvfs_stalled(), 0);
    for (int i = 1; i < 3; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, keyed_ask, &k[i]), 0);
    usleep(100 * 1000);
    faultvfs_stall_syncs(false);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        cr_assert_not_null(k[i].reply);
    }
    int ok = (k[1].reply->status == RS_OK) + (k[2].reply->status == RS_OK);
    int dup = (k[1].reply->status == RS_EDUPLICATE) + (k[2].reply->status == RS_EDUPLICATE);
    cr_assert_eq(ok, 1);
    cr_assert_eq(dup, 1);
    cr_assert_str_eq(k[1].reply->run_id, k[2].reply->run_id);
    rs_stats_t st = stats(s);
    cr_assert_eq(st.transactions, 2, "the two keyed creates shared a batch");
    for (int i = 0; i < 3; i++)
        done(k[i].reply);
    rs_reply_t *r = ask(s, rs_req_list("kj", 0, NULL, 0));
    cr_assert_eq(r->nruns, 2);
    done(r);
}

Test(runstore, a_version_1_database_is_migrated_and_keeps_its_runs)
{
    /* The version 1 schema, verbatim, with a run in it. */
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    const char *v1 =
        "PRAGMA journal_mode = WAL;"
        "CREATE TABLE runs( id TEXT PRIMARY KEY NOT NULL, job TEXT NOT NULL,"
        " state TEXT NOT NULL CHECK (state IN"
        "  ('pending','running','paused','completed','failed','stopped')),"
        " params TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(params)),"
        " progress_done INTEGER NOT NULL DEFAULT 0, progress_total INTEGER NOT NULL DEFAULT 0,"
        " checkpoint BLOB, attempt INTEGER NOT NULL DEFAULT 0, last_error TEXT,"
        " created_at INTEGER NOT NULL, started_at INTEGER, updated_at INTEGER NOT NULL,"
        " finished_at INTEGER) WITHOUT ROWID;"
        "CREATE INDEX runs_by_job ON runs(job, id);"
        "CREATE INDEX runs_by_state ON runs(state, id);"
        "CREATE TABLE events( seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, at INTEGER NOT NULL,"
        " from_state TEXT, to_state TEXT NOT NULL, cause TEXT NOT NULL DEFAULT '');"
        "CREATE INDEX events_by_run ON events(run_id, seq);"
        "INSERT INTO runs(id, job, state, created_at, updated_at)"
        " VALUES('0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', 'old', 'paused', 1, 1);"
        "PRAGMA user_version = 1;";
    cr_assert_eq(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    bt_ref_t s = spawn_store(NULL);
    rs_reply_t *r = ask(s, rs_req_get("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"));
    cr_assert_eq(r->status, RS_OK, "%s", r->message);
    rs_run_t run;
    rs_reply_run(r, 0, &run);
    cr_assert_str_eq(run.job, "old");
    cr_assert_eq(run.state, RS_PAUSED);
    cr_assert_null(run.idem_key);
    done(r);
    r = ask(s, rs_req_create_keyed("new", "{}", RS_PENDING, "k"));
    cr_assert_eq(r->status, RS_OK, "%s", r->message);
    done(r);
    r = ask(s, rs_req_create_keyed("new", "{}", RS_PENDING, "k"));
    cr_assert_eq(r->status, RS_EDUPLICATE);
    done(r);
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int(st, 0), 2);
    sqlite3_finalize(st);
    /* the unique index exists: a duplicate written behind the store fails */
    cr_assert_neq(sqlite3_exec(db,
                               "INSERT INTO runs(id, job, state, created_at, updated_at, idem_key)"
                               " VALUES('x', 'j', 'pending', 1, 1, 'k')",
                               NULL, NULL, NULL),
                  SQLITE_OK);
    sqlite3_close(db);
}

/* ----------------------------------------------------------------- counts */

Test(runstore, counts_give_the_runs_in_each_state)
{
    bt_ref_t s = spawn_store(NULL);
    rs_reply_t *r = ask(s, rs_req_counts());
    cr_assert_eq(r->status, RS_OK, "%s", r->message);
    for (int i = 0; i < RS_STATE_COUNT; i++)
        cr_assert_eq(r->counts[i], 0);
    done(r);
    char id[RS_ID_LEN + 1];
    for (int i = 0; i < 3; i++)
        create(s, "c", RS_PENDING, id);
    create(s, "c", RS_RUNNING, id);
    create(s, "c", RS_RUNNING, id);
    cr_assert_eq(move(s, id, RS_RUNNING, RS_COMPLETED), RS_OK);
    create(s, "c", RS_RUNNING, id);
    cr_assert_eq(move(s, id, RS_RUNNING, RS_PAUSED), RS_OK);
    r = ask(s, rs_req_counts());
    cr_assert_eq(r->status, RS_OK, "%s", r->message);
    int64_t want[RS_STATE_COUNT] = {
        [RS_PENDING] = 3, [RS_RUNNING] = 1, [RS_PAUSED] = 1, [RS_COMPLETED] = 1};
    for (int i = 0; i < RS_STATE_COUNT; i++)
        cr_assert_eq(r->counts[i], want[i], "%s: %lld", rs_state_name((rs_state_t)i),
                     (long long)r->counts[i]);
    done(r);
}
