/*
 * test_leaks.c: no leaks after a serve/shutdown cycle (CTest
 * reliability_leaks; ASan builds only).
 *
 * Runs the ASan+UBSan build of `baton serve` with LeakSanitizer on
 * (ASAN_OPTIONS detect_leaks=1, a distinct exitcode), makes a few API calls
 * that go through every layer (jobs, an exec run that completes, one that
 * is paused, resumed and left running, an idempotent start and its replay,
 * an http run against a local pager_server, the lists, the events, the
 * metrics, errors), then sends SIGTERM. The drain must end in a clean exit
 * 0: LeakSanitizer runs at that exit and would turn it into LEAK_EXIT and a
 * report in the service's log. A positive control plants a leak (this file
 * built as a preloaded module) and checks that the same cycle reports it.
 *
 * Why not valgrind: release builds allocate through jemalloc (mallocx and
 * sdallocx in runtime/mem/alloc.c, and jemalloc's own malloc), which
 * memcheck does not replace, so it sees only a few thousand allocations of
 * a whole cycle and reports "no leaks are possible" whatever the service
 * does (docs/reliability.md, "Leaks").
 */
#define _GNU_SOURCE
#ifdef LEAK_PROBE
/* Built as a module for the positive control: a leak at load time. */
#include <stdlib.h>
#include <string.h>

void leak_probe_once(void) __attribute__((constructor));
void leak_probe_once(void)
{
    char *volatile p = malloc(4242);
    memset(p, 1, 4242);
    p = NULL;
}
#else
#include "e2e.h"
#include "pager_server.h"

#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LEAK_EXIT 23

static e2e_svc_t svc;

static long call(const char *method, const char *path, const char *const *hdrs, char *id,
                 size_t idlen)
{
    e2e_resp_t r;
    cr_assert(e2e_http(&svc, method, path, NULL, hdrs, true, &r), "%s %s failed", method, path);
    if (id != NULL)
        e2e_json_str(r.body, "id", id, idlen);
    long st = r.status;
    e2e_resp_free(&r);
    return st;
}

/* The positive control: the same cycle with a 4242-byte leak preloaded
 * (this file built as a module with LEAK_PROBE, see recovery.cmake) must
 * end in LEAK_EXIT with LeakSanitizer's report of it. So the serve process
 * does reach LeakSanitizer's exit check after a SIGTERM drain. */
Test(leaks, the_check_catches_a_planted_leak, .timeout = 120)
{
    char env[160];
    snprintf(env, sizeof(env),
             "detect_leaks=1:leak_check_at_exit=1:exitcode=%d:verify_asan_link_order=0", LEAK_EXIT);
    setenv("ASAN_OPTIONS", env, 1);
    setenv("LD_PRELOAD", LEAK_PROBE_SO, 1);
    e2e_init(&svc);
    e2e_write_config(&svc, "[executor]\nshutdown_timeout = \"20s\"\n");
    bool up = e2e_start(&svc, 60000);
    unsetenv("LD_PRELOAD");
    cr_assert(up, "the service did not start");
    cr_assert_eq(call("GET", "/v1/jobs", NULL, NULL, 0), 200);
    int rc = e2e_stop(&svc, SIGTERM, 60000);
    char *log = e2e_read_log(&svc);
    printf("leaks: planted leak: exit %d, %s\n", rc,
           strstr(log, "4242 byte(s)") ? "reported" : "NOT reported");
    fflush(stdout);
    cr_expect_eq(rc, LEAK_EXIT);
    cr_expect(strstr(log, "LeakSanitizer: detected memory leaks") != NULL &&
                  strstr(log, "4242 byte(s)") != NULL,
              "the planted leak was not reported:\n%s", log);
    free(log);
    e2e_cleanup(&svc);
}

Test(leaks, a_serve_shutdown_cycle_leaks_nothing, .timeout = 240)
{
    char env[128];
    snprintf(env, sizeof(env), "detect_leaks=1:leak_check_at_exit=1:exitcode=%d", LEAK_EXIT);
    setenv("ASAN_OPTIONS", env, 1);
    setenv("LSAN_OPTIONS", "report_objects=1", 1);

    ps_server_t *pager;
    cr_assert_eq(ps_start(120, &pager), 0);
    char cfg[2048];
    snprintf(cfg, sizeof(cfg),
             "[executor]\nmax_running = 4\nmax_pending = 8\nshutdown_timeout = \"20s\"\n\n"
             "[jobs.quick]\nkind = \"exec\"\n[jobs.quick.params]\nargv = [\"/bin/true\"]\n\n"
             "[jobs.sleeper]\nkind = \"exec\"\nstop_grace = \"2s\"\n"
             "[jobs.sleeper.params]\nargv = [\"/bin/sleep\", \"60\"]\n\n"
             "[jobs.pages]\nkind = \"http\"\n[jobs.pages.params]\n"
             "url = \"http://127.0.0.1:%u/items?offset={offset}&limit={limit}\"\n"
             "items_path = \"data.items\"\nlimit = 25\n",
             ps_port(pager));
    e2e_init(&svc);
    e2e_write_config(&svc, cfg);
    cr_assert(e2e_start(&svc, 60000), "the service did not start");

    char id[64], id2[64], id3[64], path[160];
    cr_assert_eq(call("GET", "/v1/jobs", NULL, NULL, 0), 200);
    cr_assert_eq(call("POST", "/v1/jobs/quick/runs", NULL, id, sizeof(id)), 201);
    cr_assert(e2e_wait_state(&svc, id, "completed", 20000));
    const char *const key[] = {"Idempotency-Key: leak-1", NULL};
    cr_assert_eq(call("POST", "/v1/jobs/sleeper/runs", key, id2, sizeof(id2)), 201);
    cr_assert_eq(call("POST", "/v1/jobs/sleeper/runs", key, NULL, 0), 200); /* replayed */
    cr_assert_eq(call("POST", "/v1/jobs/sleeper/runs", NULL, NULL, 0), 409);
    snprintf(path, sizeof(path), "/v1/runs/%s/pause", id2);
    cr_assert_eq(call("POST", path, NULL, NULL, 0), 200);
    snprintf(path, sizeof(path), "/v1/runs/%s/resume", id2);
    cr_assert_eq(call("POST", path, NULL, NULL, 0), 200);
    cr_assert_eq(call("POST", "/v1/jobs/pages/runs", NULL, id3, sizeof(id3)), 201);
    cr_assert(e2e_wait_state(&svc, id3, "completed", 30000));
    snprintf(path, sizeof(path), "/v1/runs/%s/events", id3);
    cr_assert_eq(call("GET", path, NULL, NULL, 0), 200);
    cr_assert_eq(call("GET", "/v1/runs?state=running,completed&limit=2", NULL, NULL, 0), 200);
    cr_assert_eq(call("GET", "/metrics", NULL, NULL, 0), 200);
    cr_assert_eq(call("GET", "/v1/runs/nope", NULL, NULL, 0), 400);
    cr_assert_eq(call("GET", "/v1/nothing", NULL, NULL, 0), 404);

    /* The sleeper is still running: the drain stops it. */
    int rc = e2e_stop(&svc, SIGTERM, 120000);
    char *log = e2e_read_log(&svc);
    bool clean = rc == 0 && strstr(log, "LeakSanitizer") == NULL &&
                 strstr(log, "AddressSanitizer") == NULL && strstr(log, "runtime error:") == NULL;
    if (!clean)
        cr_log_error("service log:\n%s", log);
    printf("leaks: serve/shutdown cycle under LSan: exit %d, %s\n", rc,
           strstr(log, "LeakSanitizer") ? "LEAKS REPORTED" : "no leak report");
    fflush(stdout);
    free(log);
    cr_expect_neq(rc, LEAK_EXIT, "LeakSanitizer found leaks");
    cr_expect_eq(rc, 0, "the drain did not end in a clean exit 0");
    cr_expect(clean);
    e2e_cleanup(&svc);
    ps_stop(pager);
}
#endif /* LEAK_PROBE */
