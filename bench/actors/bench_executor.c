/*
 * bench_executor.c: the executor actor's benchmark, two workloads, each
 * side by side with a bare baseline measured in the same process:
 *
 * 1. cmds: commands per second through the executor. N client threads
 *    (bt_ask_wait), each owning one of 64 jobs of an idle test kind, run
 *    start, pause, resume, stop cycles on their job. Baseline: the same
 *    four run-store writes per cycle (create running, running -> paused,
 *    paused -> running, running -> stopped) sent straight to the store by
 *    the same threads; the ratio is the executor's own cost.
 * 2. pause: latency from a pause request to a quiescent run, with the exec
 *    kind running a busy loop (/bin/sh -c 'while :; do :; done'): until the
 *    reply says paused AND /proc/PID/stat shows 'T'. The exec kind does not
 *    expose the pid; the child is found as the process whose parent is
 *    this one. Baseline: SIGSTOP sent straight to a busy-looping process
 *    group of our own, until 'T'.
 *
 * The store runs with synchronous = FULL (the default). Every run gets its
 * own temp state dir (mkdtemp), removed afterwards. One warm-up run, then
 * the median of 5 runs, with min and max. --short: one brief run of each,
 * as a smoke test; exits non-zero on any failure.
 */
#define _GNU_SOURCE
#include "exec_kind.h"
#include "executor.h"
#include "runstore.h"

#include "harness.h"

#include <baton/baton.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS          (1000000ull)
#define SEC_NS      (1000000000ull)
#define NJOBS       64
#define MAX_SAMPLES 200

extern char **environ;

/* ------------------------------------------------------- the idle kind */

typedef struct idle {
    bt_ref_t executor;
    char run_id[EX_RUN_ID_MAX];
} idle_t;

static int idle_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    (void)ctx;
    idle_t *k = state;
    const ex_kind_args_t *a = arg;
    k->executor = a->executor;
    snprintf(k->run_id, sizeof(k->run_id), "%s", a->run_id);
    return BT_OK;
}

static int idle_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    idle_t *k = state;
    if (msg->id == EX_K_STOP) {
        ex_kind_stopped(ctx, k->executor, k->run_id);
        bt_stop_self(ctx);
    } else if (msg->id == EX_K_PAUSE) {
        ex_kind_paused(ctx, k->executor, k->run_id); /* nothing runs: quiescent at once */
    }
    return BT_OK;
}

static const bt_actor_type_t idle_type = {.name = "bench-idle-kind",
                                          .state_size = sizeof(idle_t),
                                          .init = idle_init,
                                          .dispatch = idle_dispatch};
static const ex_kind_t idle_kind = {
    .name = "idle", .type = &idle_type, .recovery = EX_RECOVERY_FAIL};

/* ---------------------------------------------------------- the setup */

typedef struct env {
    char dir[256];
    bt_runtime_t *rt;
    bt_ref_t store, ex;
} env_t;

static char job_names[NJOBS][16];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Creates the temp dir, the runtime, the store and (if with_ex) the
 * executor with the 64 idle jobs and the "spin" exec job. 0 or -1. */
static int env_open(env_t *e, bool with_ex)
{
    memset(e, 0, sizeof(*e));
    const char *tmp = getenv("TMPDIR");
    snprintf(e->dir, sizeof(e->dir), "%s/bench-executor-XXXXXX",
             tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(e->dir) == NULL) {
        e->dir[0] = '\0';
        return -1;
    }
    char db[320];
    snprintf(db, sizeof(db), "%s/runs.db", e->dir);
    if (bt_runtime_create(&(bt_runtime_config_t){.threads = 2}, &e->rt) != BT_OK) {
        e->rt = NULL;
        return -1;
    }
    if (bt_runtime_start(e->rt) != BT_OK)
        return -1;
    rs_config_t rc = {.path = db}; /* synchronous FULL */
    if (rs_spawn(e->rt, &rc, &e->store) != BT_OK)
        return -1;
    if (!with_ex)
        return 0;
    static const ex_kind_t *kinds[2];
    kinds[0] = &idle_kind;
    kinds[1] = ex_exec_kind();
    ex_job_t jobs[NJOBS + 1];
    for (int i = 0; i < NJOBS; i++)
        jobs[i] = (ex_job_t){.name = job_names[i], .kind = "idle"};
    jobs[NJOBS] = (ex_job_t){.name = "spin", .kind = "exec", .stop_grace_ns = 500 * MS};
    ex_config_t cfg = {.store = e->store,
                       .state_dir = e->dir,
                       .kinds = kinds,
                       .nkinds = 2,
                       .jobs = jobs,
                       .njobs = NJOBS + 1,
                       .max_running = NJOBS + 1,
                       .force_slack_ns = 200 * MS};
    return ex_spawn(e->rt, &cfg, &e->ex) == BT_OK ? 0 : -1;
}

static int env_close(env_t *e)
{
    int rc = 0;
    if (e->rt != NULL && bt_runtime_shutdown(e->rt, 30 * SEC_NS) != BT_OK)
        rc = -1;
    e->rt = NULL;
    if (e->dir[0] != '\0' && nftw(e->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        rc = -1;
    return rc;
}

/* ------------------------------------------------ commands per second */

static uint64_t commands; /* atomic: acknowledged commands */
static uint64_t failures; /* atomic */
static int stopping;      /* atomic */
static bool use_store;    /* baseline: straight to the store */
static env_t *cur_env;

static void fail_once(const char *what, int status, const char *message)
{
    if (__atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED) == 0)
        fprintf(stderr, "bench_executor: %s failed: %d %s\n", what, status,
                message != NULL ? message : "");
}

/* One executor command; 0 when it succeeded with the state wanted. */
static int ex_do(uint32_t id, const char *run, const char *job, const char *params, int want,
                 char run_id[EX_RUN_ID_MAX])
{
    bt_msg_t *m = ex_cmd_new(id, run, job, params), *r = NULL;
    if (m == NULL) {
        fail_once("ex_cmd_new", 0, NULL);
        return -1;
    }
    int rc = bt_ask_wait(cur_env->rt, cur_env->ex, m, 30 * SEC_NS, &r);
    if (rc != BT_OK) {
        fail_once("bt_ask_wait (executor)", rc, NULL);
        return -1;
    }
    const ex_reply_t *rep = (const ex_reply_t *)r;
    if (r->id != EX_MSG_REPLY || rep->status != EX_OK || rep->state != want) {
        fail_once("executor command", r->id != EX_MSG_REPLY ? -1 : rep->status, rep->message);
        bt_msg_free(r);
        return -1;
    }
    if (run_id != NULL)
        snprintf(run_id, EX_RUN_ID_MAX, "%s", rep->run_id);
    bt_msg_free(r);
    __atomic_fetch_add(&commands, 1, __ATOMIC_RELAXED);
    return 0;
}

/* One store request; 0 when it succeeded. */
static int rs_do(bt_msg_t *m, char run_id[RS_ID_LEN + 1])
{
    bt_msg_t *r = NULL;
    if (m == NULL) {
        fail_once("rs_req", 0, NULL);
        return -1;
    }
    int rc = bt_ask_wait(cur_env->rt, cur_env->store, m, 30 * SEC_NS, &r);
    if (rc != BT_OK) {
        fail_once("bt_ask_wait (store)", rc, NULL);
        return -1;
    }
    const rs_reply_t *rep = (const rs_reply_t *)r;
    if (r->id != RS_MSG_REPLY || rep->status != RS_OK) {
        fail_once("store request", r->id != RS_MSG_REPLY ? -1 : rep->status, rep->message);
        bt_msg_free(r);
        return -1;
    }
    if (run_id != NULL)
        snprintf(run_id, RS_ID_LEN + 1, "%s", rep->run_id);
    bt_msg_free(r);
    __atomic_fetch_add(&commands, 1, __ATOMIC_RELAXED);
    return 0;
}

static void *client(void *arg)
{
    const char *job = arg;
    while (!__atomic_load_n(&stopping, __ATOMIC_ACQUIRE)) {
        if (use_store) {
            char id[RS_ID_LEN + 1];
            if (rs_do(rs_req_create(job, NULL, RS_RUNNING), id) != 0 ||
                rs_do(rs_req_transition(id, RS_RUNNING, RS_PAUSED, "pause", NULL), NULL) != 0 ||
                rs_do(rs_req_transition(id, RS_PAUSED, RS_RUNNING, "resume", NULL), NULL) != 0 ||
                rs_do(rs_req_transition(id, RS_RUNNING, RS_STOPPED, "stop", NULL), NULL) != 0)
                return NULL;
        } else {
            char id[EX_RUN_ID_MAX];
            if (ex_do(EX_MSG_START, NULL, job, "{}", RS_RUNNING, id) != 0 ||
                ex_do(EX_MSG_PAUSE, id, NULL, NULL, RS_PAUSED, NULL) != 0 ||
                ex_do(EX_MSG_RESUME, id, NULL, NULL, RS_RUNNING, NULL) != 0 ||
                ex_do(EX_MSG_STOP, id, NULL, NULL, RS_STOPPED, NULL) != 0)
                return NULL;
        }
    }
    return NULL;
}

/* One measured run: commands per second, or -1 on failure. */
static double measure_cmds(int nthreads, bool store_only, uint64_t window_ns)
{
    env_t e;
    double result = -1;
    pthread_t th[NJOBS];
    int started = 0;
    commands = failures = 0;
    stopping = 0;
    use_store = store_only;
    cur_env = &e;
    if (env_open(&e, !store_only) != 0)
        goto out;
    for (; started < nthreads; started++)
        if (pthread_create(&th[started], NULL, client, job_names[started]) != 0)
            goto out;
    /* Let every client get going (the executor's recovery, first runs). */
    bench_sleep_ns(window_ns / 5);
    uint64_t c0 = __atomic_load_n(&commands, __ATOMIC_ACQUIRE);
    uint64_t t0 = bench_now_ns();
    bench_sleep_ns(window_ns);
    uint64_t c1 = __atomic_load_n(&commands, __ATOMIC_ACQUIRE);
    uint64_t t1 = bench_now_ns();
    if (c1 > c0)
        result = (double)(c1 - c0) * 1e9 / (double)(t1 - t0);
out:
    __atomic_store_n(&stopping, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (env_close(&e) != 0 || __atomic_load_n(&failures, __ATOMIC_ACQUIRE) != 0)
        result = -1;
    return result;
}

/* ------------------------------------------------------ pause latency */

/* The state letter of /proc/PID/stat, or 0 if the process is gone. */
static char proc_state(pid_t pid, pid_t *ppid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    char st = 0;
    int pp = 0;
    if (p == NULL || sscanf(p + 1, " %c %d", &st, &pp) != 2)
        return 0;
    if (ppid != NULL)
        *ppid = (pid_t)pp;
    return st;
}

/* The pid of a child of this process, or 0. */
static pid_t find_child(void)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return 0;
    pid_t self = getpid(), found = 0;
    struct dirent *de;
    while (found == 0 && (de = readdir(d)) != NULL) {
        char *end;
        long v = strtol(de->d_name, &end, 10);
        if (*end != '\0' || v <= 0)
            continue;
        pid_t pp = 0;
        if (proc_state((pid_t)v, &pp) != 0 && pp == self)
            found = (pid_t)v;
    }
    closedir(d);
    return found;
}

/* Waits until the state letter is (want_t) or is not (!want_t) 'T',
 * reading /proc every 10 us or so (the resolution of the latencies). */
static int wait_proc(pid_t pid, bool want_t, uint64_t timeout_ns)
{
    uint64_t end = bench_now_ns() + timeout_ns;
    for (;;) {
        char st = proc_state(pid, NULL);
        if (st == 0)
            return -1;
        if ((st == 'T') == want_t)
            return 0;
        if (bench_now_ns() > end)
            return -1;
        /* Sleep a little: on a small machine a spinning poller would
         * compete with the busy child for a CPU and delay its signal. */
        bench_sleep_ns(10000);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static uint64_t median_u64(uint64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_u64);
    return v[n / 2];
}

static const char spin_cmd[] = "while :; do :; done";

/* One run through the executor: the median pause latency (to 'T') in ns,
 * the median to the reply alone in *reply_ns, and in *t_at_reply how many
 * samples already read 'T' on the first look after the reply; 0 on
 * failure. */
static uint64_t measure_pause(int samples, uint64_t *reply_ns, int *t_at_reply)
{
    env_t e;
    uint64_t lat[MAX_SAMPLES], rep[MAX_SAMPLES], result = 0;
    char id[EX_RUN_ID_MAX] = "";
    commands = failures = 0;
    cur_env = &e;
    if (env_open(&e, true) != 0)
        goto out;
    char params[128];
    snprintf(params, sizeof(params), "{\"argv\":[\"/bin/sh\",\"-c\",\"%s\"]}", spin_cmd);
    if (ex_do(EX_MSG_START, NULL, "spin", params, RS_RUNNING, id) != 0)
        goto out;
    pid_t pid = 0;
    for (int i = 0; i < 2000 && pid == 0; i++) {
        pid = find_child();
        if (pid == 0)
            bench_sleep_ns(MS);
    }
    if (pid == 0 || wait_proc(pid, false, 5 * SEC_NS) != 0) {
        fail_once("finding the exec child", 0, NULL);
        goto out;
    }
    for (int i = 0; i < samples; i++) {
        bench_sleep_ns(2 * MS); /* let it spin */
        uint64_t t0 = bench_now_ns();
        if (ex_do(EX_MSG_PAUSE, id, NULL, NULL, RS_PAUSED, NULL) != 0)
            goto out;
        uint64_t t1 = bench_now_ns();
        if (proc_state(pid, NULL) == 'T')
            ++*t_at_reply;
        if (wait_proc(pid, true, 5 * SEC_NS) != 0) {
            fail_once("waiting for state T", 0, NULL);
            goto out;
        }
        uint64_t t2 = bench_now_ns();
        lat[i] = t2 - t0;
        rep[i] = t1 - t0;
        if (ex_do(EX_MSG_RESUME, id, NULL, NULL, RS_RUNNING, NULL) != 0)
            goto out;
        if (wait_proc(pid, false, 5 * SEC_NS) != 0) {
            fail_once("waiting for the resume", 0, NULL);
            goto out;
        }
    }
    if (ex_do(EX_MSG_STOP, id, NULL, NULL, RS_STOPPED, NULL) != 0)
        goto out;
    id[0] = '\0';
    *reply_ns = median_u64(rep, samples);
    result = median_u64(lat, samples);
out:
    if (id[0] != '\0')
        (void)ex_do(EX_MSG_STOP, id, NULL, NULL, RS_STOPPED, NULL);
    if (env_close(&e) != 0 || __atomic_load_n(&failures, __ATOMIC_ACQUIRE) != 0)
        result = 0;
    return result;
}

/* The baseline: SIGSTOP to our own busy-looping process group, until 'T'.
 * The median latency in ns, 0 on failure. */
static uint64_t measure_pause_bare(int samples)
{
    uint64_t lat[MAX_SAMPLES], result = 0;
    posix_spawnattr_t at;
    pid_t pid;
    char *argv[] = {"/bin/sh", "-c", (char *)spin_cmd, NULL};
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&at, 0);
    int rc = posix_spawn(&pid, "/bin/sh", NULL, &at, argv, environ);
    posix_spawnattr_destroy(&at);
    if (rc != 0)
        return 0;
    if (wait_proc(pid, false, 5 * SEC_NS) != 0)
        goto out;
    for (int i = 0; i < samples; i++) {
        bench_sleep_ns(2 * MS);
        uint64_t t0 = bench_now_ns();
        if (kill(-pid, SIGSTOP) != 0 || wait_proc(pid, true, 5 * SEC_NS) != 0)
            goto out;
        lat[i] = bench_now_ns() - t0;
        if (kill(-pid, SIGCONT) != 0 || wait_proc(pid, false, 5 * SEC_NS) != 0)
            goto out;
    }
    result = median_u64(lat, samples);
out:
    kill(-pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    return result;
}

/* -------------------------------------------------------------- main */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct stat3 {
    double med, min, max;
} stat3_t;

static stat3_t summarize(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return (stat3_t){v[n / 2], v[0], v[n - 1]};
}

int main(int argc, char **argv)
{
    bool short_mode = argc > 1 && strcmp(argv[1], "--short") == 0;
    int runs = short_mode ? 1 : 5;
    int warmups = short_mode ? 0 : 1;
    uint64_t window = short_mode ? SEC_NS / 5 : SEC_NS;
    int samples = short_mode ? 5 : 50;
    bench_impl = "baton";
    /* 1 us timer slack instead of 50: the /proc polls sleep 10 us. */
    (void)prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
    for (int i = 0; i < NJOBS; i++)
        snprintf(job_names[i], sizeof(job_names[i]), "j%02d", i);

    printf("executor bench: synchronous=FULL, %d warm-up + %d run(s); median [min, max]\n", warmups,
           runs);
    /* 1. Commands per second. */
    static const int threads[] = {1, NJOBS};
    for (int t = 0; t < 2; t++) {
        double v[2][8];
        for (int i = 0; i < warmups + runs; i++) {
            for (int k = 0; k < 2; k++) {
                int s = i % 2 == 0 ? k : 1 - k; /* alternate which goes first */
                double x = measure_cmds(threads[t], s == 1, window);
                if (x < 0) {
                    fprintf(stderr, "bench_executor: cmds run failed (%d threads, %s)\n",
                            threads[t], s ? "store" : "executor");
                    return 1;
                }
                if (i >= warmups)
                    v[s][i - warmups] = x;
            }
        }
        stat3_t st[2] = {summarize(v[0], runs), summarize(v[1], runs)};
        for (int s = 0; s < 2; s++) {
            char args[64];
            snprintf(args, sizeof(args), "%d,%s", threads[t], s ? "store" : "executor");
            bench_result("executor_cmds", args, "commands_per_s", st[s].med);
        }
        printf("cmds %2d client(s): executor %8.0f/s [%.0f, %.0f]  store-only %8.0f/s "
               "[%.0f, %.0f]  store/executor %.2fx\n",
               threads[t], st[0].med, st[0].min, st[0].max, st[1].med, st[1].min, st[1].max,
               st[0].med > 0 ? st[1].med / st[0].med : 0.0);
        fflush(stdout);
    }

    /* 2. Pause latency. */
    double pl[8], pr[8], pb[8];
    int t_at_reply = 0;
    for (int i = 0; i < warmups + runs; i++) {
        uint64_t reply = 0;
        int tr = 0;
        uint64_t l = measure_pause(samples, &reply, &tr);
        uint64_t b = measure_pause_bare(samples);
        if (l == 0 || b == 0) {
            fprintf(stderr, "bench_executor: pause run failed (%s)\n",
                    l == 0 ? "executor" : "bare");
            return 1;
        }
        if (i >= warmups) {
            pl[i - warmups] = (double)l / 1e3;
            pr[i - warmups] = (double)reply / 1e3;
            pb[i - warmups] = (double)b / 1e3;
            t_at_reply += tr;
        }
    }
    stat3_t sl = summarize(pl, runs), sr = summarize(pr, runs), sb = summarize(pb, runs);
    bench_result("executor_pause", "exec,to_T", "us", sl.med);
    bench_result("executor_pause", "exec,reply", "us", sr.med);
    bench_result("executor_pause", "bare,to_T", "us", sb.med);
    printf("pause latency (per-run medians of %d samples, us): executor to paused+'T' %.1f "
           "[%.1f, %.1f]  reply alone %.1f [%.1f, %.1f]  bare SIGSTOP to 'T' %.1f [%.1f, %.1f]  "
           "ratio %.1fx\n",
           samples, sl.med, sl.min, sl.max, sr.med, sr.min, sr.max, sb.med, sb.min, sb.max,
           sb.med > 0 ? sl.med / sb.med : 0.0);
    printf("pause: %d of %d samples were already 'T' at the first look after the reply\n",
           t_at_reply, runs * samples);
    bench_peak("executor", "all");
    return 0;
}
