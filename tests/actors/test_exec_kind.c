/* test_exec_kind.c: the built-in exec kind driven through the executor:
 * completion and failure by exit status with retries and logs, SIGSTOP and
 * SIGCONT really stopping and continuing the process (its CPU time), stop
 * escalating to SIGKILL for a process that ignores SIGTERM, the run timeout
 * from the timeout registry, and params validation. Real processes, so
 * real time (short). */
#define _GNU_SOURCE
#include "exec_kind.h"
#include "executor.h"
#include "runstore.h"
#include "timeouts.h"

#include <baton/baton.h>
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MS     (1000000ull)
#define SEC_NS (1000000000ull)

static char dir[256];
static char db_path[400];
static bt_runtime_t *rt;
static bt_ref_t store, ex, timeouts;

/* "x": a short grace, for the stop tests; "p": a long one, for the pause
 * tests, whose "answered only once stopped" must not turn into "answered
 * after the grace" on a loaded machine (each test runs in its own process,
 * so a test picks its job by setting job_name). */
static const ex_job_t jobs[] = {
    {.name = "x", .kind = "exec", .stop_grace_ns = 150 * MS},
    {.name = "p", .kind = "exec", .stop_grace_ns = 10000 * MS},
};
static const char *job_name = "x";

static void setup_runtime(void)
{
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 2}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    rs_config_t rc = {.path = db_path, .synchronous = RS_SYNC_OFF};
    cr_assert_eq(rs_spawn(rt, &rc, &store), BT_OK);
    bt_timeout_class_t tiny = {.name = "tiny", .timeout_ns = 100 * MS};
    bt_timeouts_args_t ta = {.classes = &tiny, .nclasses = 1};
    cr_assert_eq(bt_timeouts_spawn(rt, &ta, &timeouts), BT_OK);
    const ex_kind_t *kinds[] = {ex_exec_kind()};
    ex_config_t cfg = {.store = store,
                       .timeouts = timeouts,
                       .state_dir = dir,
                       .kinds = kinds,
                       .nkinds = 1,
                       .jobs = jobs,
                       .njobs = sizeof(jobs) / sizeof(jobs[0]),
                       .force_slack_ns = 5 * SEC_NS};
    cr_assert_eq(ex_spawn(rt, &cfg, &ex), BT_OK);
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/execkind-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db_path, sizeof(db_path), "%s/runs.db", dir);
    setup_runtime();
}

static void teardown(void)
{
    if (rt != NULL)
        cr_assert_eq(bt_runtime_shutdown(rt, 10 * SEC_NS), BT_OK);
    rt = NULL;
    char p[600];
    snprintf(p, sizeof(p), "%s/logs", dir);
    DIR *d = opendir(p);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char f[900];
            snprintf(f, sizeof(f), "%s/%s", p, e->d_name);
            unlink(f);
        }
        closedir(d);
    }
    rmdir(p);
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s%s", db_path, suffixes[i]);
        unlink(p);
    }
    rmdir(dir);
}

TestSuite(exec_kind, .init = setup, .fini = teardown, .timeout = 60);

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static ex_reply_t *cmd(uint32_t id, const char *run, const char *params)
{
    bt_msg_t *m = ex_cmd_new(id, run, job_name, params);
    cr_assert_not_null(m);
    bt_msg_t *r = NULL;
    cr_assert_eq(bt_ask_wait(rt, ex, m, 20 * SEC_NS, &r), BT_OK);
    cr_assert_eq(r->id, EX_MSG_REPLY);
    return (ex_reply_t *)r;
}

static void start(const char *params, char id[EX_RUN_ID_MAX])
{
    ex_reply_t *r = cmd(EX_MSG_START, NULL, params);
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    snprintf(id, EX_RUN_ID_MAX, "%s", r->run_id);
    bt_msg_free(&r->hdr);
}

/* The stored run; *err receives a copy of last_error. */
static rs_state_t stored(const char *id, char *err, size_t errlen)
{
    bt_msg_t *r = NULL;
    cr_assert_eq(bt_ask_wait(rt, ex, ex_cmd_new(EX_MSG_GET, id, NULL, NULL), 20 * SEC_NS, &r),
                 BT_OK);
    const rs_reply_t *rep = (const rs_reply_t *)r;
    cr_assert_eq(rep->status, RS_OK, "%s", rep->message);
    rs_run_t run;
    rs_reply_run(rep, 0, &run);
    if (err != NULL)
        snprintf(err, errlen, "%s", run.last_error != NULL ? run.last_error : "");
    rs_state_t s = run.state;
    bt_msg_free(r);
    return s;
}

static rs_state_t await_terminal(const char *id, char *err, size_t errlen)
{
    for (int i = 0; i < 1000; i++) {
        rs_state_t s = stored(id, err, errlen);
        if (rs_state_terminal(s))
            return s;
        sleep_ms(5);
    }
    cr_assert_fail("run %s never ended", id);
    return RS_NONE;
}

/* The pid of our one child process (the exec kind forks from this process). */
static pid_t child_pid(void)
{
    for (int tries = 0; tries < 400; tries++) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        pid_t found = 0;
        while (d != NULL && (e = readdir(d)) != NULL) {
            if (e->d_name[0] < '0' || e->d_name[0] > '9')
                continue;
            char p[300], buf[1024];
            snprintf(p, sizeof(p), "/proc/%s/stat", e->d_name);
            FILE *f = fopen(p, "r");
            if (f == NULL)
                continue;
            size_t n = fread(buf, 1, sizeof(buf) - 1, f);
            fclose(f);
            buf[n] = '\0';
            char *rp = strrchr(buf, ')');
            int ppid = 0;
            if (rp != NULL && sscanf(rp + 2, "%*c %d", &ppid) == 1 && ppid == getpid())
                found = atoi(e->d_name);
        }
        if (d != NULL)
            closedir(d);
        if (found > 0)
            return found;
        sleep_ms(5);
    }
    cr_assert_fail("no child process found");
    return 0;
}

/* utime + stime of pid, in clock ticks. */
static unsigned long long cpu_ticks(pid_t pid)
{
    char p[64], buf[1024];
    snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(p, "r");
    cr_assert_not_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *rp = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    cr_assert_eq(sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st),
                 2);
    return ut + st;
}

Test(exec_kind, exit_zero_completes_and_logs_stdout)
{
    char id[EX_RUN_ID_MAX];
    start("{\"argv\": [\"/bin/sh\", \"-c\", \"echo hello; echo oops >&2\"]}", id);
    cr_assert_eq(await_terminal(id, NULL, 0), RS_COMPLETED);
    char p[600], buf[64] = "";
    snprintf(p, sizeof(p), "%s/logs/%s.out", dir, id);
    FILE *f = fopen(p, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    cr_assert_str_eq(buf, "hello\n");
}

/* The parent waits for the child's execve (a close-on-exec pipe), so an
 * execve error is the run's error, not an anonymous exit 127. */
Test(exec_kind, an_executable_that_cannot_run_fails_with_the_reason)
{
    char id[EX_RUN_ID_MAX], err[256];
    start("{\"argv\": [\"/nonexistent/baton-no-such-program\"]}", id);
    cr_assert_eq(await_terminal(id, err, sizeof(err)), RS_FAILED);
    cr_assert_str_eq(err, "cannot start /nonexistent/baton-no-such-program: No such file or "
                          "directory");
}

Test(exec_kind, nonzero_exit_fails_after_retries)
{
    char id[EX_RUN_ID_MAX], err[256];
    start("{\"argv\": [\"/bin/sh\", \"-c\", \"echo try; exit 3\"], \"max_attempts\": 3, "
          "\"backoff_base_ms\": 5, \"backoff_cap_ms\": 20}",
          id);
    cr_assert_eq(await_terminal(id, err, sizeof(err)), RS_FAILED);
    cr_assert(strstr(err, "exited with status 3 (attempt 3 of 3)") != NULL, "%s", err);
    char p[600], buf[64];
    snprintf(p, sizeof(p), "%s/logs/%s.out", dir, id);
    FILE *f = fopen(p, "r");
    cr_assert_not_null(f);
    int lines = 0;
    while (fgets(buf, sizeof(buf), f) != NULL)
        lines++;
    fclose(f);
    cr_assert_eq(lines, 3);
}

Test(exec_kind, environment_is_clean_and_logs_are_capped)
{
    setenv("BATON_SECRET", "leak", 1);
    char id[EX_RUN_ID_MAX];
    start("{\"argv\": [\"/bin/sh\", \"-c\", \"echo ${BATON_SECRET:-clean}; "
          "i=0; while [ $i -lt 200 ]; do echo 0123456789; i=$((i+1)); done\"], "
          "\"log_cap_bytes\": 1000}",
          id);
    await_terminal(id, NULL, 0);
    char p[600], buf[64] = "";
    snprintf(p, sizeof(p), "%s/logs/%s.out", dir, id);
    FILE *f = fopen(p, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(buf, sizeof(buf), f));
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    cr_assert_str_eq(buf, "clean\n");
    cr_assert_leq(size, 1000);
}

Test(exec_kind, pause_stops_the_process_and_resume_continues_it)
{
    job_name = "p";
    char id[EX_RUN_ID_MAX];
    start("{\"argv\": [\"/bin/sh\", \"-c\", \"while :; do :; done\"]}", id);
    pid_t pid = child_pid();
    sleep_ms(100);
    ex_reply_t *r = cmd(EX_MSG_PAUSE, id, NULL);
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    cr_assert_eq(r->flags, 0u, "%s", r->message);
    bt_msg_free(&r->hdr);
    unsigned long long t1 = cpu_ticks(pid); /* no wait: the reply means stopped */
    sleep_ms(300);
    unsigned long long t2 = cpu_ticks(pid);
    cr_assert_eq(t1, t2, "CPU time grew while paused: %llu -> %llu", t1, t2);
    r = cmd(EX_MSG_RESUME, id, NULL);
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    bt_msg_free(&r->hdr);
    sleep_ms(300);
    unsigned long long t3 = cpu_ticks(pid);
    cr_assert_gt(t3, t2, "CPU time did not grow after resume");
    r = cmd(EX_MSG_STOP, id, NULL);
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    bt_msg_free(&r->hdr);
    cr_assert_eq(stored(id, NULL, 0), RS_STOPPED);
}

/* Whether process pid ignores sig, from /proc/PID/status's SigIgn mask. */
static bool ignores(pid_t pid, int sig)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    bool yes = false;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        unsigned long long mask;
        if (sscanf(line, "SigIgn: %llx", &mask) == 1) {
            yes = (mask >> (sig - 1)) & 1;
            break;
        }
    }
    if (f != NULL)
        fclose(f);
    return yes;
}

Test(exec_kind, stop_escalates_to_sigkill_when_sigterm_is_ignored)
{
    char id[EX_RUN_ID_MAX];
    start("{\"argv\": [\"/bin/sh\", \"-c\", \"trap '' TERM; while :; do :; done\"]}", id);
    pid_t pid = child_pid();
    /* Until the shell has installed its trap, SIGTERM would kill it. */
    for (int i = 0; i < 5000 && !ignores(pid, SIGTERM); i++)
        sleep_ms(1);
    cr_assert(ignores(pid, SIGTERM), "the shell never ignored SIGTERM");
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    ex_reply_t *r = cmd(EX_MSG_STOP, id, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    cr_assert_eq(r->state, RS_STOPPED);
    bt_msg_free(&r->hdr);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    cr_assert_geq(ms, 140.0, "stopped after %.1f ms, before the 150 ms grace", ms);
    cr_assert_lt(ms, 4000.0, "the executor forced it instead (%.1f ms)", ms);
    /* reaped: no such process any more */
    cr_assert_eq(kill(pid, 0), -1);
    cr_assert_eq(errno, ESRCH);
}

Test(exec_kind, run_timeout_from_the_registry_fails_the_run)
{
    char id[EX_RUN_ID_MAX], err[256];
    start("{\"argv\": [\"/bin/sleep\", \"10\"], \"timeout_class\": \"tiny\"}", id);
    cr_assert_eq(await_terminal(id, err, sizeof(err)), RS_FAILED);
    cr_assert(strstr(err, "timed out") != NULL, "%s", err);
}

Test(exec_kind, bad_params_are_refused_at_start)
{
    static const char *const bad[] = {"{\"argv\": [\"sh\"]}",
                                      "{\"argv\": []}",
                                      "{}",
                                      "{\"argv\": [\"/bin/true\"], \"x\": 1}",
                                      "{\"argv\": [\"/bin/true\"], \"max_attempts\": 0}",
                                      "[1]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ex_reply_t *r = cmd(EX_MSG_START, NULL, bad[i]);
        cr_assert_eq(r->status, EX_EBADREQ, "%s", bad[i]);
        cr_assert_neq(r->message[0], '\0');
        bt_msg_free(&r->hdr);
    }
}

Test(exec_kind, running_process_is_failed_as_interrupted_after_a_restart)
{
    char id[EX_RUN_ID_MAX], err[256];
    start("{\"argv\": [\"/bin/sleep\", \"30\"]}", id);
    pid_t pid = child_pid();
    /* the service goes away: the kind's cleanup kills and reaps the child */
    cr_assert_eq(bt_runtime_shutdown(rt, 10 * SEC_NS), BT_OK);
    rt = NULL;
    cr_assert_eq(kill(pid, 0), -1);
    setup_runtime();
    cr_assert_eq(stored(id, err, sizeof(err)), RS_FAILED);
    cr_assert(strstr(err, "interrupted") != NULL, "%s", err);
}

/* The state letter and utime + stime of every process in process group
 * pgid: *all_stopped is whether each is 'T' (or gone), the result their
 * CPU ticks summed, *n how many there are. */
static unsigned long long group_ticks(pid_t pgid, bool *all_stopped, int *n)
{
    unsigned long long sum = 0;
    *all_stopped = true;
    *n = 0;
    DIR *d = opendir("/proc");
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        char p[300], buf[1024];
        snprintf(p, sizeof(p), "/proc/%s/stat", e->d_name);
        FILE *f = fopen(p, "r");
        if (f == NULL)
            continue;
        size_t len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *rp = strrchr(buf, ')');
        char st;
        int ppid, pgrp;
        unsigned long long ut, stt;
        if (rp == NULL ||
            sscanf(rp + 2, "%c %d %d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &st, &ppid, &pgrp,
                   &ut, &stt) != 5 ||
            pgrp != pgid)
            continue;
        (*n)++;
        sum += ut + stt;
        if (st != 'T' && st != 't' && st != 'Z')
            *all_stopped = false;
    }
    closedir(d);
    return sum;
}

Test(exec_kind, pause_is_answered_only_once_every_process_of_the_group_is_stopped)
{
    job_name = "p";
    char id[EX_RUN_ID_MAX];
    /* two CPU burners in the group: the shell and a background child */
    start("{\"argv\": [\"/bin/sh\", \"-c\", "
          "\"/bin/sh -c 'while :; do :; done' & while :; do :; done\"]}",
          id);
    pid_t pid = child_pid();
    int n = 0;
    bool stopped;
    for (int i = 0; i < 400 && n < 2; i++) {
        group_ticks(pid, &stopped, &n);
        sleep_ms(5);
    }
    cr_assert_eq(n, 2, "expected two processes in the group, found %d", n);
    for (int round = 0; round < 10; round++) {
        sleep_ms(20); /* let them burn */
        ex_reply_t *r = cmd(EX_MSG_PAUSE, id, NULL);
        cr_assert_eq(r->status, EX_OK, "%s", r->message);
        cr_assert_eq(r->flags, 0u, "%s", r->message);
        bt_msg_free(&r->hdr);
        /* at once after the reply: every process stopped, no CPU time */
        unsigned long long t1 = group_ticks(pid, &stopped, &n);
        cr_assert(stopped, "round %d: a process still ran after the pause reply", round);
        sleep_ms(round == 0 ? 300 : 30);
        unsigned long long t2 = group_ticks(pid, &stopped, &n);
        cr_assert_eq(t1, t2, "round %d: CPU time grew while paused: %llu -> %llu", round, t1, t2);
        r = cmd(EX_MSG_RESUME, id, NULL);
        cr_assert_eq(r->status, EX_OK, "%s", r->message);
        bt_msg_free(&r->hdr);
    }
    sleep_ms(300);
    unsigned long long t3 = group_ticks(pid, &stopped, &n);
    cr_assert(!stopped);
    (void)t3;
    ex_reply_t *r = cmd(EX_MSG_STOP, id, NULL);
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    bt_msg_free(&r->hdr);
    cr_assert_eq(stored(id, NULL, 0), RS_STOPPED);
}

Test(exec_kind, pause_between_attempts_is_confirmed_at_once)
{
    job_name = "p";
    char id[EX_RUN_ID_MAX];
    struct timespec a, b;
    ex_reply_t *r;
    for (int tries = 1;; tries++) {
        /* Fails fast, then waits before its retry: nothing runs. The wait
         * is drawn with full jitter from [0, 2 s], so now and then it is
         * shorter than the 100 ms below, the retry runs and fails too, and
         * the run is over before the pause: then take another run. */
        start("{\"argv\": [\"/bin/sh\", \"-c\", \"exit 1\"], \"max_attempts\": 2, "
              "\"backoff_base_ms\": 2000, \"backoff_cap_ms\": 2000}",
              id);
        sleep_ms(100);
        clock_gettime(CLOCK_MONOTONIC, &a);
        r = cmd(EX_MSG_PAUSE, id, NULL);
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (r->status == EX_OK || tries == 10 || stored(id, NULL, 0) != RS_FAILED)
            break;
        bt_msg_free(&r->hdr);
    }
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    cr_assert_eq(r->flags, 0u, "%s", r->message);
    bt_msg_free(&r->hdr);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    cr_assert_lt(ms, 140.0, "took %.1f ms: not confirmed, timed out instead", ms);
    r = cmd(EX_MSG_STOP, id, NULL);
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    bt_msg_free(&r->hdr);
}
