/*
 * kind_countdown.c: an example job kind, written only against the public
 * headers (baton.h, executor.h with jobkind.h, runstore.h).
 *
 * The kind "countdown" counts from params {"n": N} down to zero, one step
 * per 10 ms timer tick, reporting a checkpoint (the steps done) each step.
 * Pause stops the ticks, resume restarts them, stop ends at once. Its
 * recovery policy is RESUME: after a restart it continues from the last
 * persisted checkpoint instead of from the beginning.
 *
 * main() runs it through the executor: start, pause (progress stalls),
 * resume, then "crash" (shut the runtime down mid-run), reopen the store,
 * and watch recovery resume the run from its checkpoint to completion.
 * Exits 0 when everything behaved as described.
 */
#define _GNU_SOURCE
#include "executor.h"
#include "runstore.h"

#include <baton/baton.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MS (1000000ull)

/* ------------------------------------------------------------ the kind */

enum { CD_TICK = 0x43440001u };

typedef struct countdown {
    bt_ref_t executor;
    char run_id[EX_RUN_ID_MAX];
    int64_t n, done;
    bool paused;
    bt_timer_t tick;
    bool ticking;
} countdown_t;

/* Params: {"n": 1..100000}; a tiny reader, enough for the example. */
static int parse_n(const char *params, int64_t *n)
{
    const char *p = strstr(params, "\"n\"");
    if (p == NULL || (p = strchr(p, ':')) == NULL)
        return -1;
    char *end;
    long v = strtol(p + 1, &end, 10);
    if (end == p + 1 || v < 1 || v > 100000)
        return -1;
    *n = v;
    return 0;
}

static int cd_validate(const char *params, char *err, size_t errlen)
{
    int64_t n;
    if (parse_n(params, &n) != 0) {
        snprintf(err, errlen, "countdown needs {\"n\": 1..100000}");
        return -1;
    }
    return 0;
}

static void cd_ticks(bt_ctx_t *ctx, countdown_t *c, bool on)
{
    if (on && !c->ticking) {
        bt_msg_t *m = bt_msg_new(sizeof(bt_msg_t), CD_TICK);
        if (m != NULL && bt_timer_start(bt_ctx_runtime(ctx), bt_self(ctx), m, 10 * MS, 10 * MS,
                                        &c->tick) == BT_OK)
            c->ticking = true;
        else
            bt_msg_free(m);
    } else if (!on && c->ticking) {
        (void)bt_timer_cancel(bt_ctx_runtime(ctx), c->tick);
        c->ticking = false;
    }
}

static int cd_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    (void)ctx;
    countdown_t *c = state;
    const ex_kind_args_t *a = arg;
    c->executor = a->executor;
    snprintf(c->run_id, sizeof(c->run_id), "%s", a->run_id);
    if (parse_n(a->params, &c->n) != 0)
        return BT_EINVAL;
    /* Resume from the checkpoint: the steps done, as 8 bytes. */
    if (a->checkpoint != NULL && a->checkpoint_len == sizeof(int64_t))
        memcpy(&c->done, a->checkpoint, sizeof(int64_t));
    return BT_OK;
}

static int cd_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    countdown_t *c = state;
    switch (msg->id) {
    case EX_K_RUN:
    case EX_K_RESUME:
        c->paused = false;
        cd_ticks(ctx, c, true);
        break;
    case EX_K_PAUSE:
        c->paused = true;
        cd_ticks(ctx, c, false);
        /* No tick is armed now, so nothing more happens until a resume:
         * tell the executor the run is quiescent. */
        ex_kind_paused(ctx, c->executor, c->run_id);
        break;
    case EX_K_STOP:
        cd_ticks(ctx, c, false);
        ex_kind_stopped(ctx, c->executor, c->run_id);
        bt_stop_self(ctx);
        break;
    case CD_TICK:
        if (c->paused)
            break;
        c->done++;
        ex_kind_checkpoint(ctx, c->executor, c->run_id, c->done, c->n, &c->done, sizeof(c->done));
        if (c->done >= c->n) {
            cd_ticks(ctx, c, false);
            ex_kind_done(ctx, c->executor, c->run_id);
            bt_stop_self(ctx);
        }
        break;
    default:
        break;
    }
    return BT_OK;
}

static void cd_cleanup(bt_ctx_t *ctx, void *state)
{
    cd_ticks(ctx, state, false);
}

static const bt_actor_type_t countdown_type = {.name = "countdown",
                                               .state_size = sizeof(countdown_t),
                                               .init = cd_init,
                                               .dispatch = cd_dispatch,
                                               .cleanup = cd_cleanup};

static const ex_kind_t countdown_kind = {.name = "countdown",
                                         .type = &countdown_type,
                                         .spawn_flags = 0, /* never blocks: a normal actor */
                                         .validate = cd_validate,
                                         .recovery = EX_RECOVERY_RESUME};

/* ----------------------------------------------------------- the demo */

static char dir[256], db[300];
static bt_runtime_t *rt;
static bt_ref_t store, executor;

static void boot(void)
{
    static const ex_kind_t *const kinds[] = {&countdown_kind};
    static const ex_job_t jobs[] = {{.name = "launch", .kind = "countdown"}};
    if (bt_runtime_create(&(bt_runtime_config_t){.threads = 2}, &rt) != BT_OK ||
        bt_runtime_start(rt) != BT_OK)
        exit(1);
    rs_config_t rc = {.path = db, .synchronous = RS_SYNC_NORMAL};
    ex_config_t cfg = {.store = store,
                       .state_dir = dir,
                       .kinds = kinds,
                       .nkinds = 1,
                       .jobs = jobs,
                       .njobs = 1,
                       .progress_every_steps = 2, /* persist every second step ... */
                       .progress_every_ns = 50 * MS /* ... or every 50 ms */};
    if (rs_spawn(rt, &rc, &store) != BT_OK)
        exit(1);
    cfg.store = store;
    if (ex_spawn(rt, &cfg, &executor) != BT_OK)
        exit(1);
}

static ex_reply_t *command(uint32_t id, const char *run, const char *params)
{
    bt_msg_t *r = NULL;
    if (bt_ask_wait(rt, executor, ex_cmd_new(id, run, "launch", params), 10000 * MS, &r) != BT_OK)
        exit(1);
    return (ex_reply_t *)r;
}

/* The stored run's state and progress. */
static rs_state_t look(const char *run, int64_t *done)
{
    bt_msg_t *r = NULL;
    if (bt_ask_wait(rt, executor, ex_cmd_new(EX_MSG_GET, run, NULL, NULL), 10000 * MS, &r) != BT_OK)
        exit(1);
    rs_run_t info;
    rs_reply_run((const rs_reply_t *)r, 0, &info);
    rs_state_t s = info.state;
    *done = info.progress_done;
    bt_msg_free(r);
    return s;
}

static void nap(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int check(bool ok, const char *what)
{
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    return ok ? 0 : 1;
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/countdown-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(db, sizeof(db), "%s/runs.db", dir);
    int bad = 0;
    boot();

    ex_reply_t *r = command(EX_MSG_START, NULL, "{\"n\": 40}");
    char run[EX_RUN_ID_MAX];
    snprintf(run, sizeof(run), "%s", r->run_id);
    bad += check(r->status == EX_OK, "start a countdown of 40 steps");
    bt_msg_free(&r->hdr);

    r = command(EX_MSG_START, NULL, "{\"n\": 5}");
    printf("     second start: %s: %s\n", ex_err_code(r->status), r->message);
    bad += check(r->status == EX_ECONFLICT, "a second start of the job is refused");
    bt_msg_free(&r->hdr);

    nap(100);
    r = command(EX_MSG_PAUSE, run, NULL);
    bad += check(r->status == EX_OK, "pause");
    bt_msg_free(&r->hdr);
    int64_t d1, d2;
    nap(120);
    look(run, &d1);
    nap(120);
    look(run, &d2);
    bad += check(d1 == d2 && d1 > 0, "no progress while paused");

    r = command(EX_MSG_RESUME, run, NULL);
    bad += check(r->status == EX_OK, "resume");
    bt_msg_free(&r->hdr);
    nap(100);

    /* "Crash": the runtime goes away mid-run; the store keeps the run as
     * running with its last checkpoint. */
    bt_runtime_shutdown(rt, 10000 * MS);
    boot();
    int64_t at = 0;
    rs_state_t s = look(run, &at); /* answered after recovery */
    printf("     after restart: %s at step %lld\n", rs_state_name(s), (long long)at);
    bad += check(s == RS_RUNNING && at > d2, "recovery resumes the run from its checkpoint");
    for (int i = 0; i < 300 && (s = look(run, &at)) == RS_RUNNING; i++)
        nap(10);
    bad += check(s == RS_COMPLETED && at == 40, "the run completes with 40 of 40 steps");

    bt_runtime_shutdown(rt, 10000 * MS);
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[320];
        snprintf(p, sizeof(p), "%s%s", db, suffix[i]);
        unlink(p);
    }
    rmdir(dir);
    return bad == 0 ? 0 : 1;
}
