/*
 * test_store_faults.c: store faults injected into a running `baton serve`
 * with libfiu (docs/reliability.md, "Store faults").
 *
 * The service runs as under `fiu-run -x` (libfiu's POSIX wrappers
 * preloaded, see start_under_fiu) with [store] sync = "full"; `fiu-ctrl`
 * then turns a failure point on and off in the live process:
 *
 *   posix/io/rw/pwrite      SQLite's only write call (pwrite64): a full
 *                           disk (ENOSPC) or a write error (EIO);
 *   posix/io/sync/fdatasync SQLite's only sync call: an fsync error (EIO).
 *
 * Neither is used by anything else in the service (the log and the HTTP
 * sockets use write/send), so the fault hits the database alone. Each test
 * shows: commands are refused with 500 store_error during the fault; the
 * service stays up (/healthz 200) and reads still answer; nothing
 * acknowledged is lost (every run the API acknowledged before, during or
 * after the fault has the acknowledged state, through the API, in the
 * database file itself, and after a restart); and the service recovers
 * when the disk is back: commands succeed again, and a run whose
 * completion was written during the fault ends completed.
 */
#define _GNU_SOURCE
#include "e2e.h"

#include <criterion/criterion.h>
#include <sqlite3.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef BATON_ASAN_RUNTIME
#define BATON_ASAN_RUNTIME "" /* not a GCC ASan build */
#endif
#ifndef FIU_LIB_DIR
#define FIU_LIB_DIR "/usr/lib/fiu" /* Debian's fiu-run -l default */
#endif

#define READY_MS 30000
#define STOP_MS  30000
#define MAX_ACK  32

static const char *const JOBS = "[executor]\n"
                                "max_running = 8\n"
                                "shutdown_timeout = \"10s\"\n"
                                "\n"
                                "[jobs.quick]\n"
                                "kind = \"exec\"\n"
                                "[jobs.quick.params]\n"
                                "argv = [\"/bin/true\"]\n"
                                "\n"
                                "[jobs.sleeper]\n"
                                "kind = \"exec\"\n"
                                "stop_grace = \"2s\"\n"
                                "[jobs.sleeper.params]\n"
                                "argv = [\"/bin/sleep\", \"60\"]\n"
                                "\n"
                                "[jobs.holder]\n"
                                "kind = \"exec\"\n"
                                "stop_grace = \"2s\"\n"
                                "[jobs.holder.params]\n"
                                "argv = [\"/bin/sleep\", \"60\"]\n"
                                "\n"
                                "[jobs.spare]\n"
                                "kind = \"exec\"\n"
                                "[jobs.spare.params]\n"
                                "argv = [\"/bin/sleep\", \"60\"]\n"
                                "\n"
                                "[jobs.finisher]\n"
                                "kind = \"exec\"\n"
                                "[jobs.finisher.params]\n"
                                "argv = [\"/bin/sleep\", \"2\"]\n";

static e2e_svc_t svc;

/* What the API acknowledged: each run and the state it said. */
static struct {
    char id[64];
    char state[16];
} ack[MAX_ACK];
static int nack;
static int refused, got_through; /* commands during the fault */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void acknowledge(const char *id, const char *state)
{
    for (int i = 0; i < nack; i++) {
        if (strcmp(ack[i].id, id) == 0) {
            snprintf(ack[i].state, sizeof(ack[i].state), "%s", state);
            return;
        }
    }
    cr_assert_lt(nack, MAX_ACK);
    snprintf(ack[nack].id, sizeof(ack[nack].id), "%s", id);
    snprintf(ack[nack].state, sizeof(ack[nack].state), "%s", state);
    nack++;
}

static void write_config(void)
{
    FILE *f = fopen(svc.config, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "log_level = \"info\"\n\n[server]\nport = %u\n\n"
            "[store]\nstate_dir = \"state\"\nsync = \"full\"\n\n%s",
            svc.port, JOBS);
    fclose(f);
}

/* Starts the service as `fiu-run -x` does (the same environment: libfiu's
 * run and POSIX preloads, a control FIFO prefix, no failure point
 * enabled), and waits for /readyz. The FIFOs go in the test's directory.
 * fiu-run itself cannot be used in a GCC ASan build: it sets LD_PRELOAD
 * to libfiu's libraries alone, and the ASan runtime must come first in the
 * library list (libfiu's malloc wrapper otherwise runs before ASan is
 * initialised, and the service crashes). So the ASan runtime
 * (BATON_ASAN_RUNTIME, from CMake) is preloaded first. */
static void start_under_fiu(void)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        FILE *log = freopen(svc.log, "a", stderr);
        (void)log;
        dup2(STDERR_FILENO, STDOUT_FILENO);
        char preload[1024];
        snprintf(preload, sizeof(preload), "%s %s/fiu_run_preload.so %s/fiu_posix_preload.so",
                 BATON_ASAN_RUNTIME, FIU_LIB_DIR, FIU_LIB_DIR);
        setenv("LD_PRELOAD", preload, 1);
        /* The control FIFOs go in the test's directory: the job
         * processes inherit the preload and make FIFOs of their own. */
        char fifo[320];
        snprintf(fifo, sizeof(fifo), "%s/fiu-ctrl", svc.dir);
        setenv("FIU_CTRL_FIFO", fifo, 1);
        setenv("FIU_ENABLE", "", 1);
        execl(BATON_BIN, BATON_BIN, "serve", "--config", svc.config, (char *)NULL);
        _exit(127);
    }
    svc.pid = pid;
    for (int waited = 0; waited < READY_MS; waited += 50) {
        int st;
        cr_assert_neq(waitpid(pid, &st, WNOHANG), pid, "the service exited at start-up");
        e2e_resp_t r;
        if (e2e_http(&svc, "GET", "/readyz", NULL, NULL, false, &r)) {
            long status = r.status;
            e2e_resp_free(&r);
            if (status == 200)
                return;
        }
        sleep_ms(50);
    }
    cr_assert_fail("the service did not become ready under fiu-run");
}

/* Runs `fiu-ctrl -f DIR/fiu-ctrl -c CMD PID`. */
static void fiu_ctrl(const char *cmd)
{
    char pid[24];
    snprintf(pid, sizeof(pid), "%ld", (long)svc.pid);
    pid_t c = fork();
    cr_assert_geq(c, 0);
    if (c == 0) {
        char fifo[320];
        snprintf(fifo, sizeof(fifo), "%s/fiu-ctrl", svc.dir);
        execlp("fiu-ctrl", "fiu-ctrl", "-f", fifo, "-c", cmd, pid, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    for (int waited = 0; waitpid(c, &st, WNOHANG) != c; waited += 10) {
        if (waited > 10000) {
            kill(c, SIGKILL);
            waitpid(c, &st, 0);
            cr_assert_fail("fiu-ctrl -c '%s' did not finish", cmd);
        }
        sleep_ms(10);
    }
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fiu-ctrl -c '%s' failed", cmd);
}

/* One request; returns the status, with the body's id, state and
 * error.code copied out (any may be NULL). */
static long call(const char *method, const char *path, char *id, char *state, char *code)
{
    e2e_resp_t r;
    cr_assert(e2e_http(&svc, method, path, strcmp(method, "POST") == 0 ? "" : NULL, NULL, true, &r),
              "%s %s: no answer (the service is down?)", method, path);
    if (id != NULL)
        e2e_json_str(r.body, "id", id, 64);
    if (state != NULL)
        e2e_json_str(r.body, "state", state, 16);
    if (code != NULL)
        e2e_json_str(r.body, "error.code", code, 32);
    long status = r.status;
    e2e_resp_free(&r);
    return status;
}

static void start_run(const char *job, char *id, const char *want_state)
{
    char path[96], state[16];
    snprintf(path, sizeof(path), "/v1/jobs/%s/runs", job);
    cr_assert_eq(call("POST", path, id, state, NULL), 201, "start %s", job);
    cr_assert_str_eq(state, want_state, "start %s", job);
    acknowledge(id, state);
}

static void command_ok(const char *id, const char *verb, const char *want_state)
{
    char path[128], state[16];
    snprintf(path, sizeof(path), "/v1/runs/%s/%s", id, verb);
    cr_assert_eq(call("POST", path, NULL, state, NULL), 200, "%s %s", verb, id);
    cr_assert_str_eq(state, want_state, "%s %s", verb, id);
    acknowledge(id, state);
}

/* A command during the fault: it must be refused with store_error, or, if
 * the store took it after all (a commit that got through before the
 * fault), acknowledged like any other. */
static void command_faulted(const char *method, const char *path)
{
    char id[64] = "", state[16] = "", code[32] = "";
    long status = call(method, path, id, state, code);
    if (status == 200 || status == 201) {
        got_through++;
        acknowledge(id, state);
        return;
    }
    refused++;
    cr_assert_eq(status, 500, "%s %s during the fault: %ld %s", method, path, status, code);
    cr_assert_str_eq(code, "store_error", "%s %s during the fault", method, path);
}

/* Every acknowledged run has its acknowledged state, through the API. */
static void check_acknowledged_api(const char *when)
{
    for (int i = 0; i < nack; i++) {
        char path[128], state[16];
        snprintf(path, sizeof(path), "/v1/runs/%s", ack[i].id);
        cr_assert_eq(call("GET", path, NULL, state, NULL), 200, "%s: GET %s", when, path);
        cr_assert_str_eq(state, ack[i].state, "%s: run %s", when, ack[i].id);
    }
}

/* ... and in the database file, read with SQLite after the service stopped. */
static void check_acknowledged_db(void)
{
    char db[400];
    snprintf(db, sizeof(db), "%s/state/runs.db", svc.dir);
    sqlite3 *h = NULL;
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK, "%s", db);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(h, "SELECT state FROM runs WHERE id = ?", -1, &st, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(h));
    for (int i = 0; i < nack; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, ack[i].id, -1, SQLITE_STATIC);
        cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "run %s is not in the database", ack[i].id);
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), ack[i].state, "run %s",
                         ack[i].id);
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
}

static void teardown(void)
{
    if (svc.pid != 0)
        e2e_stop(&svc, SIGKILL, STOP_MS);
    char *log = e2e_read_log(&svc);
    const char *bad[] = {"AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                         "runtime error:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect(strstr(log, bad[i]) == NULL, "sanitizer report in the service log:\n%s", log);
    free(log);
    e2e_cleanup(&svc);
}

TestSuite(store_faults, .fini = teardown, .timeout = 240);

/* The whole scenario, with `point` failing with errno `err`. */
static void scenario(const char *point, int err)
{
    nack = refused = got_through = 0;
    e2e_init(&svc);
    write_config();
    start_under_fiu();

    /* Before the fault: a completed run, a paused one, a running one, and
     * one that will finish while the disk is failing. */
    char quick[64], paused[64], holder[64], finisher[64], id[64];
    start_run("quick", quick, "running");
    cr_assert(e2e_wait_state(&svc, quick, "completed", 20000));
    acknowledge(quick, "completed");
    start_run("sleeper", paused, "running");
    command_ok(paused, "pause", "paused");
    start_run("holder", holder, "running");
    check_acknowledged_api("before the fault");
    start_run("finisher", finisher, "running");

    char cmd[160];
    snprintf(cmd, sizeof(cmd), "enable name=%s,failinfo=%d", point, err);
    fiu_ctrl(cmd);

    /* During: commands are refused with store_error... */
    char path[128];
    command_faulted("POST", "/v1/jobs/quick/runs");
    snprintf(path, sizeof(path), "/v1/runs/%s/resume", paused);
    command_faulted("POST", path);
    command_faulted("POST", "/v1/jobs/spare/runs");
    /* ... the service stays up and reads answer. */
    cr_assert_eq(call("GET", "/healthz", NULL, NULL, NULL), 200);
    cr_assert_eq(call("GET", "/v1/runs", NULL, NULL, NULL), 200);
    cr_assert_eq(call("GET", "/v1/jobs", NULL, NULL, NULL), 200);
    check_acknowledged_api("during the fault");
    /* The finisher's process ends now; writing its completion fails (the
     * executor retries it with backoff). */
    sleep_ms(3000);
    cr_assert_eq(call("GET", "/healthz", NULL, NULL, NULL), 200);
    char during[16];
    snprintf(path, sizeof(path), "/v1/runs/%s", finisher);
    cr_assert_eq(call("GET", path, NULL, during, NULL), 200);
    command_faulted("POST", "/v1/jobs/quick/runs");
    cr_assert_geq(refused, 1, "no command was refused: the fault did not reach the store");

    snprintf(cmd, sizeof(cmd), "disable name=%s", point);
    fiu_ctrl(cmd);

    /* After: the finisher's completion lands, and commands succeed again
     * (the first may still meet a store that is reopening: retry briefly). */
    cr_assert(e2e_wait_state(&svc, finisher, "completed", 30000),
              "the run that finished during the fault did not end completed");
    acknowledge(finisher, "completed");
    long status = 0;
    for (int i = 0; i < 100 && status != 201; i++) {
        status = call("POST", "/v1/jobs/quick/runs", id, NULL, NULL);
        if (status != 201)
            sleep_ms(100);
    }
    cr_assert_eq(status, 201, "starts did not succeed again after the fault");
    cr_assert(e2e_wait_state(&svc, id, "completed", 20000));
    acknowledge(id, "completed");
    /* The paused run may have been resumed if that command got through. */
    char state[16];
    snprintf(path, sizeof(path), "/v1/runs/%s", paused);
    cr_assert_eq(call("GET", path, NULL, state, NULL), 200);
    if (strcmp(state, "paused") == 0)
        command_ok(paused, "resume", "running");
    command_ok(paused, "pause", "paused");
    command_ok(holder, "stop", "stopped");
    for (int i = 0; i < nack; i++) {
        /* Runs started during the fault that got through: stop them, so
         * the restart below has nothing to recover but paused runs. */
        snprintf(path, sizeof(path), "/v1/runs/%s", ack[i].id);
        cr_assert_eq(call("GET", path, NULL, state, NULL), 200);
        if (strcmp(state, "running") == 0)
            command_ok(ack[i].id, "stop", "stopped");
    }
    check_acknowledged_api("after the fault");

    /* Durable: in the database file, and after a restart. */
    cr_assert_eq(e2e_stop(&svc, SIGTERM, STOP_MS), 0, "the drain did not exit 0");
    check_acknowledged_db();
    cr_assert(e2e_start(&svc, READY_MS), "the service did not restart");
    check_acknowledged_api("after a restart");
    cr_assert_eq(e2e_stop(&svc, SIGTERM, STOP_MS), 0);
    cr_log_info("%s failinfo=%d: %d commands refused with store_error, %d got through; "
                "the finisher was %s during the fault, completed after; "
                "%d acknowledged runs kept (API, database file, restart)",
                point, err, refused, got_through, during, nack);
}

Test(store_faults, full_disk_on_write)
{
    scenario("posix/io/rw/pwrite", ENOSPC);
}

Test(store_faults, write_errors)
{
    scenario("posix/io/rw/pwrite", EIO);
}

Test(store_faults, fsync_errors)
{
    scenario("posix/io/sync/fdatasync", EIO);
}
