/*
 * test_service.c: end-to-end tests of `baton serve` and the CLI, on the
 * real binary, a real state directory and a free loopback port.
 */
#define _GNU_SOURCE
#include "e2e.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READY_MS 20000
#define STOP_MS  30000

/* Two exec jobs: one that sleeps (to pause, resume and stop) and one that
 * finishes at once. */
static const char *const JOBS = "[executor]\n"
                                "max_running = 4\n"
                                "max_pending = 8\n"
                                "shutdown_timeout = \"10s\"\n"
                                "\n"
                                "[jobs.sleeper]\n"
                                "kind = \"exec\"\n"
                                "stop_grace = \"2s\"\n"
                                "[jobs.sleeper.params]\n"
                                "argv = [\"/bin/sleep\", \"60\"]\n"
                                "\n"
                                "[jobs.quick]\n"
                                "kind = \"exec\"\n"
                                "[jobs.quick.params]\n"
                                "argv = [\"/bin/true\"]\n";

static e2e_svc_t svc;

static void start_with(const char *extra)
{
    e2e_init(&svc);
    e2e_write_config(&svc, extra);
    if (!e2e_start(&svc, READY_MS)) {
        char *log = e2e_read_log(&svc);
        cr_log_error("service log:\n%s", log);
        free(log);
        cr_assert_fail("the service did not become ready");
    }
}

/* The service's stderr goes to its log, out of CTest's sight: look there
 * for sanitizer reports (sanitizer builds run this test too). */
static void teardown(void)
{
    if (svc.pid != 0)
        e2e_stop(&svc, SIGTERM, STOP_MS);
    char *log = e2e_read_log(&svc);
    const char *bad[] = {"AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                         "runtime error:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect(strstr(log, bad[i]) == NULL, "sanitizer report in the service log:\n%s", log);
    free(log);
    e2e_cleanup(&svc);
}

/* POST /v1/jobs/{job}/runs; returns the status and the run id in id. */
static long start_run(const char *job, const char *body, const char *const *headers, char *id,
                      size_t idlen)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s/runs", job);
    e2e_resp_t r;
    cr_assert(e2e_http(&svc, "POST", path, body, headers, true, &r), "POST %s failed", path);
    e2e_json_str(r.body, "id", id, idlen);
    long status = r.status;
    e2e_resp_free(&r);
    return status;
}

static long command(const char *id, const char *verb, char *state, size_t statelen, char *code,
                    size_t codelen)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/runs/%s/%s", id, verb);
    e2e_resp_t r;
    cr_assert(e2e_http(&svc, "POST", path, NULL, NULL, true, &r));
    if (state != NULL)
        e2e_json_str(r.body, "state", state, statelen);
    if (code != NULL)
        e2e_json_str(r.body, "error.code", code, codelen);
    long status = r.status;
    e2e_resp_free(&r);
    return status;
}

static long get_status(const char *path, const char *const *headers, bool auth, char *code,
                       size_t codelen)
{
    e2e_resp_t r;
    cr_assert(e2e_http(&svc, "GET", path, NULL, headers, auth, &r), "GET %s failed", path);
    if (code != NULL)
        e2e_json_str(r.body, "error.code", code, codelen);
    long status = r.status;
    e2e_resp_free(&r);
    return status;
}

TestSuite(service, .fini = teardown, .timeout = 120);

Test(service, every_endpoint)
{
    start_with(JOBS);
    e2e_resp_t r;

    cr_assert(e2e_http(&svc, "GET", "/healthz", NULL, NULL, false, &r));
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"status\":\"ok\"}");
    e2e_resp_free(&r);
    cr_assert(e2e_http(&svc, "GET", "/readyz", NULL, NULL, false, &r));
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"status\":\"ready\"}");
    e2e_resp_free(&r);

    cr_assert(e2e_http(&svc, "GET", "/v1/jobs", NULL, NULL, true, &r));
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(r.body, "\"name\":\"sleeper\"") != NULL, "%s", r.body);
    cr_assert(strstr(r.body, "\"kind\":\"exec\"") != NULL, "%s", r.body);
    e2e_resp_free(&r);

    /* start: 201, Location, the run. */
    cr_assert(e2e_http(&svc, "POST", "/v1/jobs/sleeper/runs", "{\"params\":{}}", NULL, true, &r));
    cr_assert_eq(r.status, 201, "%s", r.body);
    char id[64], state[32];
    e2e_json_str(r.body, "id", id, sizeof(id));
    e2e_json_str(r.body, "state", state, sizeof(state));
    cr_assert_eq(strlen(id), 36);
    cr_assert_str_eq(state, "running");
    char loc[128];
    snprintf(loc, sizeof(loc), "Location: /v1/runs/%s", id);
    cr_assert(strcasestr(r.headers, loc) != NULL, "%s", r.headers);
    cr_assert(strstr(r.body, "\"argv\":[\"/bin/sleep\",\"60\"]") != NULL, "%s", r.body);
    e2e_resp_free(&r);

    /* get */
    char path[128];
    snprintf(path, sizeof(path), "/v1/runs/%s", id);
    cr_assert(e2e_http(&svc, "GET", path, NULL, NULL, true, &r));
    cr_assert_eq(r.status, 200);
    e2e_json_str(r.body, "job", state, sizeof(state));
    cr_assert_str_eq(state, "sleeper");
    e2e_resp_free(&r);

    /* pause, resume, stop */
    cr_assert_eq(command(id, "pause", state, sizeof(state), NULL, 0), 200);
    cr_assert_str_eq(state, "paused");
    cr_assert_eq(command(id, "resume", state, sizeof(state), NULL, 0), 200);
    cr_assert_str_eq(state, "running");
    cr_assert_eq(command(id, "stop", state, sizeof(state), NULL, 0), 200);
    cr_assert_str_eq(state, "stopped");

    /* events: the history, oldest first */
    snprintf(path, sizeof(path), "/v1/runs/%s/events", id);
    cr_assert(e2e_http(&svc, "GET", path, NULL, NULL, true, &r));
    cr_assert_eq(r.status, 200);
    const char *p1 = strstr(r.body, "\"to\":\"running\"");
    const char *p2 = strstr(r.body, "\"to\":\"paused\"");
    const char *p3 = strstr(r.body, "\"to\":\"stopped\"");
    cr_assert(p1 != NULL && p2 != NULL && p3 != NULL && p1 < p2 && p2 < p3, "%s", r.body);
    e2e_resp_free(&r);

    /* list, filtered and paged */
    char id2[64];
    cr_assert_eq(start_run("quick", NULL, NULL, id2, sizeof(id2)), 201);
    cr_assert(e2e_wait_state(&svc, id2, "completed", 10000));
    cr_assert(e2e_http(&svc, "GET", "/v1/runs?limit=1", NULL, NULL, true, &r));
    cr_assert_eq(r.status, 200);
    char next[64];
    e2e_json_str(r.body, "next", next, sizeof(next));
    cr_assert_str_eq(next, id, "the first page ends at the oldest run: %s", r.body);
    e2e_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/runs?limit=1&after=%s", next);
    cr_assert(e2e_http(&svc, "GET", path, NULL, NULL, true, &r));
    cr_assert(strstr(r.body, id2) != NULL, "%s", r.body);
    e2e_resp_free(&r);
    cr_assert(
        e2e_http(&svc, "GET", "/v1/runs?job=quick&state=completed,failed", NULL, NULL, true, &r));
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(r.body, id2) != NULL && strstr(r.body, id) == NULL, "%s", r.body);
    e2e_json_str(r.body, "next", next, sizeof(next));
    cr_assert_str_eq(next, "null");
    e2e_resp_free(&r);

    /* metrics */
    cr_assert(e2e_http(&svc, "GET", "/metrics", NULL, NULL, true, &r));
    cr_assert_eq(r.status, 200);
    cr_assert(strcasestr(r.headers, "Content-Type: text/plain; version=0.0.4") != NULL);
    cr_assert(strstr(r.body, "baton_runs{state=\"stopped\"} 1") != NULL, "%s", r.body);
    cr_assert(strstr(r.body, "baton_runs{state=\"completed\"} 1") != NULL, "%s", r.body);
    cr_assert(strstr(r.body, "baton_commands_total{command=\"pause\",outcome=\"ok\"} 1") != NULL,
              "%s", r.body);
    cr_assert(strstr(r.body, "baton_transitions_total{from=\"running\",to=\"paused\"} 1") != NULL,
              "%s", r.body);
    cr_assert(strstr(r.body, "baton_runtime_actors ") != NULL);
    cr_assert(strstr(r.body, "baton_http_requests_total ") != NULL);
    e2e_resp_free(&r);

    cr_assert_eq(e2e_stop(&svc, SIGTERM, STOP_MS), 0);
}

Test(service, every_error_status)
{
    snprintf(svc.token, sizeof(svc.token), "%s", "test-token-0123456789abcdef");
    start_with(JOBS);
    char code[64], id[64], state[32];
    e2e_resp_t r;

    /* 400 */
    cr_assert_eq(start_run("sleeper", "{\"params\":", NULL, id, sizeof(id)), 400);
    cr_assert(e2e_http(&svc, "POST", "/v1/jobs/sleeper/runs", "{\"parms\":{}}", NULL, true, &r));
    cr_assert_eq(r.status, 400);
    e2e_json_str(r.body, "error.message", code, sizeof(code));
    cr_assert(strstr(code, "unknown field 'parms'") != NULL, "%s", r.body);
    e2e_resp_free(&r);
    cr_assert_eq(start_run("sleeper", "[1,2]", NULL, id, sizeof(id)), 400);
    cr_assert_eq(get_status("/v1/runs/not-a-run-id", NULL, true, code, sizeof(code)), 400);
    cr_assert_str_eq(code, "bad_request");
    cr_assert_eq(get_status("/v1/runs?limit=0", NULL, true, code, sizeof(code)), 400);
    cr_assert_eq(get_status("/v1/runs?state=sleeping", NULL, true, code, sizeof(code)), 400);
    /* deep nesting is refused before it reaches the parser */
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 99);
    deep[199] = '\0';
    char body[300];
    snprintf(body, sizeof(body), "{\"params\":{\"x\":%s]}}", deep);
    cr_assert_eq(start_run("sleeper", body, NULL, id, sizeof(id)), 400);

    /* 401 */
    cr_assert(e2e_http(&svc, "GET", "/v1/jobs", NULL, NULL, false, &r));
    cr_assert_eq(r.status, 401);
    e2e_json_str(r.body, "error.code", code, sizeof(code));
    cr_assert_str_eq(code, "unauthorized");
    cr_assert(strcasestr(r.headers, "WWW-Authenticate: Bearer") != NULL, "%s", r.headers);
    e2e_resp_free(&r);
    const char *wrong[] = {"Authorization: Bearer test-token-0123456789abcdeX", NULL};
    cr_assert_eq(get_status("/v1/jobs", wrong, false, code, sizeof(code)), 401);
    cr_assert_eq(get_status("/healthz", NULL, false, NULL, 0), 200, "health needs no token");

    /* 403: a Host that is not ours (DNS rebinding) */
    const char *evil[] = {"Host: evil.example:7878", NULL};
    cr_assert_eq(get_status("/v1/jobs", evil, true, code, sizeof(code)), 403);
    cr_assert_str_eq(code, "forbidden");

    /* 404 */
    cr_assert_eq(get_status("/v1/nothing", NULL, true, code, sizeof(code)), 404);
    cr_assert_eq(start_run("nosuchjob", NULL, NULL, id, sizeof(id)), 404);
    cr_assert_eq(
        get_status("/v1/runs/0195f3c2-7d1e-7a31-9c4e-2b9d5f0e8a11", NULL, true, code, sizeof(code)),
        404);
    cr_assert_str_eq(code, "not_found");
    cr_assert_eq(
        command("0195f3c2-7d1e-7a31-9c4e-2b9d5f0e8a11", "pause", NULL, 0, code, sizeof(code)), 404,
        "a pause of a missing run is refused");

    /* 405 */
    cr_assert(e2e_http(&svc, "DELETE", "/v1/jobs", NULL, NULL, true, &r));
    cr_assert_eq(r.status, 405);
    cr_assert(strcasestr(r.headers, "Allow: GET") != NULL);
    e2e_resp_free(&r);

    /* 409: conflict (max_active 1) and invalid_transition (double pause,
     * double resume) */
    cr_assert_eq(start_run("sleeper", NULL, NULL, id, sizeof(id)), 201);
    char id2[64];
    cr_assert(e2e_http(&svc, "POST", "/v1/jobs/sleeper/runs", NULL, NULL, true, &r));
    cr_assert_eq(r.status, 409, "%s", r.body);
    e2e_json_str(r.body, "error.code", code, sizeof(code));
    cr_assert_str_eq(code, "conflict");
    e2e_resp_free(&r);
    (void)id2;
    cr_assert_eq(command(id, "pause", state, sizeof(state), NULL, 0), 200);
    cr_assert(e2e_http(&svc, "POST", "/v1/runs/x/pause", NULL, NULL, true, &r));
    cr_assert_eq(r.status, 400);
    e2e_resp_free(&r);
    char path[128];
    snprintf(path, sizeof(path), "/v1/runs/%s/pause", id);
    cr_assert(e2e_http(&svc, "POST", path, NULL, NULL, true, &r));
    cr_assert_eq(r.status, 409);
    e2e_json_str(r.body, "error.code", code, sizeof(code));
    cr_assert_str_eq(code, "invalid_transition");
    e2e_json_str(r.body, "error.message", body, sizeof(body));
    cr_assert(strstr(body, id) != NULL && strstr(body, "paused") != NULL,
              "the message names the run and its state: %s", body);
    e2e_resp_free(&r);
    cr_assert_eq(command(id, "resume", state, sizeof(state), NULL, 0), 200);
    cr_assert_eq(command(id, "resume", NULL, 0, code, sizeof(code)), 409, "double resume");
    cr_assert_str_eq(code, "invalid_transition");

    /* 413: a body over max_body (1 MiB by default) */
    size_t big = (1u << 20) + 100;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[big] = '\0';
    huge[0] = '{';
    huge[big - 1] = '}';
    cr_assert(e2e_http(&svc, "POST", "/v1/jobs/quick/runs", huge, NULL, true, &r));
    cr_assert_eq(r.status, 413);
    e2e_json_str(r.body, "error.code", code, sizeof(code));
    cr_assert_str_eq(code, "too_large");
    e2e_resp_free(&r);

    /* 431: headers over max_header (16 KiB by default) */
    memset(huge, 'a', 20000);
    memcpy(huge, "X-Big: ", 7);
    huge[20000] = '\0';
    const char *bighdr[] = {huge, NULL};
    cr_assert_eq(get_status("/v1/jobs", bighdr, true, NULL, 0), 431);
    free(huge);

    /* the service is still up and answers */
    cr_assert_eq(get_status("/v1/jobs", NULL, true, NULL, 0), 200);
    cr_assert_eq(e2e_stop(&svc, SIGTERM, STOP_MS), 0);
}

Test(service, busy_when_the_pending_queue_is_full)
{
    start_with("[executor]\nmax_running = 1\nmax_pending = 1\n"
               "[jobs.a]\nkind = \"exec\"\n[jobs.a.params]\nargv = [\"/bin/sleep\", \"60\"]\n"
               "[jobs.b]\nkind = \"exec\"\n[jobs.b.params]\nargv = [\"/bin/sleep\", \"60\"]\n"
               "[jobs.c]\nkind = \"exec\"\n[jobs.c.params]\nargv = [\"/bin/sleep\", \"60\"]\n");
    char id[64];
    e2e_resp_t r;
    cr_assert_eq(start_run("a", NULL, NULL, id, sizeof(id)), 201);
    cr_assert(e2e_http(&svc, "POST", "/v1/jobs/b/runs", NULL, NULL, true, &r));
    cr_assert_eq(r.status, 201);
    char state[32];
    e2e_json_str(r.body, "state", state, sizeof(state));
    cr_assert_str_eq(state, "pending", "queued behind max_running = 1");
    e2e_resp_free(&r);
    cr_assert(e2e_http(&svc, "POST", "/v1/jobs/c/runs", NULL, NULL, true, &r));
    cr_assert_eq(r.status, 429, "%s", r.body);
    char code[32];
    e2e_json_str(r.body, "error.code", code, sizeof(code));
    cr_assert_str_eq(code, "busy");
    cr_assert(strcasestr(r.headers, "Retry-After:") != NULL);
    e2e_resp_free(&r);
    cr_assert_eq(e2e_stop(&svc, SIGTERM, STOP_MS), 0);
}

Test(service, idempotency_key_replays_the_first_result_across_a_restart)
{
    start_with(JOBS);
    const char *key[] = {"Idempotency-Key: nightly-2026-11-25", NULL};
    char id1[64], id2[64], code[32];
    cr_assert_eq(start_run("quick", NULL, key, id1, sizeof(id1)), 201);
    e2e_resp_t r;
    cr_assert(e2e_http(&svc, "POST", "/v1/jobs/quick/runs", NULL, key, true, &r));
    cr_assert_eq(r.status, 200, "a replay is not a new creation: %s", r.body);
    e2e_json_str(r.body, "id", id2, sizeof(id2));
    cr_assert_str_eq(id1, id2);
    cr_assert(strcasestr(r.headers, "Idempotent-Replayed: true") != NULL, "%s", r.headers);
    e2e_resp_free(&r);
    /* the same key for another job is a conflict */
    cr_assert(e2e_http(&svc, "POST", "/v1/jobs/sleeper/runs", NULL, key, true, &r));
    cr_assert_eq(r.status, 409, "%s", r.body);
    e2e_json_str(r.body, "error.code", code, sizeof(code));
    cr_assert_str_eq(code, "conflict");
    e2e_resp_free(&r);

    cr_assert_eq(e2e_stop(&svc, SIGTERM, STOP_MS), 0);
    cr_assert(e2e_start(&svc, READY_MS));
    cr_assert_eq(start_run("quick", NULL, key, id2, sizeof(id2)), 200);
    cr_assert_str_eq(id1, id2, "the key is durable");
    cr_assert_eq(e2e_stop(&svc, SIGTERM, STOP_MS), 0);
}

Test(service, second_instance_is_refused_and_kill9_never_blocks_a_restart)
{
    start_with(JOBS);
    char id[64];
    cr_assert_eq(start_run("sleeper", NULL, NULL, id, sizeof(id)), 201);

    /* a second instance on the same state directory: exit 9, naming the PID */
    e2e_svc_t two = svc;
    snprintf(two.log, sizeof(two.log), "%s/second.log", svc.dir);
    char out[4096], err[4096];
    const char *args[] = {"serve", "--config", svc.config, NULL};
    int rc = e2e_run(out, sizeof(out), err, sizeof(err), args);
    cr_assert_eq(rc, 9, "exit %d: %s", rc, err);
    char pid[32];
    snprintf(pid, sizeof(pid), "pid %ld", (long)svc.pid);
    cr_assert(strstr(err, "locked by another baton") != NULL && strstr(err, pid) != NULL, "%s",
              err);

    /* kill -9: the lock goes with the process; the restart recovers */
    cr_assert_eq(e2e_stop(&svc, SIGKILL, STOP_MS), 128 + SIGKILL);
    cr_assert(e2e_start(&svc, READY_MS), "a stale lock must not block the restart");
    cr_assert(e2e_wait_state(&svc, id, "failed", 10000),
              "an exec run found running is failed as interrupted");
    e2e_resp_t r;
    char path[128];
    snprintf(path, sizeof(path), "/v1/runs/%s", id);
    cr_assert(e2e_http(&svc, "GET", path, NULL, NULL, true, &r));
    cr_assert(strstr(r.body, "interrupted") != NULL, "%s", r.body);
    e2e_resp_free(&r);
    cr_assert_eq(e2e_stop(&svc, SIGTERM, STOP_MS), 0);
}

Test(service, sigterm_drains_and_exits_zero)
{
    start_with(JOBS);
    char id[64];
    cr_assert_eq(start_run("sleeper", NULL, NULL, id, sizeof(id)), 201);
    cr_assert_eq(e2e_stop(&svc, SIGTERM, STOP_MS), 0);
    char *log = e2e_read_log(&svc);
    cr_assert(strstr(log, "event=service.draining") != NULL, "%s", log);
    cr_assert(strstr(log, "event=service.stopped") != NULL, "%s", log);
    free(log);
}

/* A client of a stop that takes the whole grace. */
static void *slow_stop(void *arg)
{
    /* No assertion here (not the test's thread): the forced exit cuts
     * this request off, which is the point. */
    char path[128];
    snprintf(path, sizeof(path), "/v1/runs/%s/stop", (const char *)arg);
    e2e_resp_t r;
    if (e2e_http(&svc, "POST", path, NULL, NULL, true, &r))
        e2e_resp_free(&r);
    return NULL;
}

Test(service, a_second_signal_forces_the_exit)
{
    start_with("[executor]\nshutdown_timeout = \"60s\"\n"
               "[jobs.stubborn]\nkind = \"exec\"\nstop_grace = \"30s\"\n"
               "[jobs.stubborn.params]\n"
               "argv = [\"/bin/sh\", \"-c\", \"trap '' TERM; sleep 60\"]\n");
    char id[64];
    cr_assert_eq(start_run("stubborn", NULL, NULL, id, sizeof(id)), 201);
    usleep(200 * 1000); /* let the shell set its trap */
    pthread_t th;
    pthread_create(&th, NULL, slow_stop, id);
    usleep(300 * 1000);
    kill(svc.pid, SIGTERM); /* drains: waits for the stop in flight */
    usleep(300 * 1000);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = e2e_stop(&svc, SIGTERM, 5000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_eq(rc, 1, "forced exit: %d", rc);
    cr_assert_lt(t1.tv_sec - t0.tv_sec, 3);
    pthread_join(th, NULL);
}

Test(service, api_probes_leave_the_service_up)
{
    /* a 1 s request deadline, so the trickle probe is quick */
    snprintf(svc.server_extra, sizeof(svc.server_extra), "request_deadline = \"1s\"\n");
    start_with(JOBS);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(svc.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    const char *req = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool cut = false;
    for (int i = 0; i < 60 && !cut; i++) {
        char c = req[i < (int)strlen(req) ? i : 0];
        if (send(fd, &c, 1, MSG_NOSIGNAL) != 1)
            cut = true;
        /* meanwhile another client is served normally */
        if (i == 3)
            cr_assert_eq(get_status("/healthz", NULL, false, NULL, 0), 200);
        usleep(100 * 1000);
        char buf[16];
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            cut = true;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    close(fd);
    cr_assert(cut, "a trickling client must be cut off");
    cr_assert_leq(t1.tv_sec - t0.tv_sec, 4);

    /* malformed JSON, huge bodies, a wrong Host and a missing token are
     * probed in every_error_status; the service is still up */
    cr_assert_eq(get_status("/readyz", NULL, false, NULL, 0), 200);
    cr_assert_eq(e2e_stop(&svc, SIGTERM, STOP_MS), 0);
}

Test(service, cli_output_and_exit_codes)
{
    start_with(JOBS);
    char out[8192], err[4096];
    int rc = e2e_cli(&svc, out, sizeof(out), err, sizeof(err), "start", "sleeper", NULL);
    cr_assert_eq(rc, 0, "%s%s", out, err);
    char id[64] = {0};
    /* the id is the only UUID in the output */
    for (char *p = out; *p != '\0'; p++) {
        if (strlen(p) >= 36 && p[8] == '-' && p[13] == '-' && p[18] == '-' && p[23] == '-') {
            memcpy(id, p, 36);
            break;
        }
    }
    cr_assert_eq(strlen(id), 36, "%s", out);

    rc = e2e_cli(&svc, out, sizeof(out), err, sizeof(err), "status", id, NULL);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(out, "running") != NULL, "%s", out);

    rc = e2e_cli(&svc, out, sizeof(out), err, sizeof(err), "runs", "--json", NULL);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(out, "\"runs\"") != NULL && strstr(out, id) != NULL, "%s", out);

    rc = e2e_cli(&svc, out, sizeof(out), err, sizeof(err), "pause", id, NULL);
    cr_assert_eq(rc, 0, "%s", err);
    rc = e2e_cli(&svc, out, sizeof(out), err, sizeof(err), "pause", id, NULL);
    cr_assert_eq(rc, 4, "double pause: %s", err);
    cr_assert(strstr(err, "invalid_transition") != NULL, "%s", err);
    rc = e2e_cli(&svc, out, sizeof(out), err, sizeof(err), "pause",
                 "0195f3c2-7d1e-7a31-9c4e-2b9d5f0e8a11", NULL);
    cr_assert_eq(rc, 3, "missing run: %s", err);
    rc = e2e_cli(&svc, out, sizeof(out), err, sizeof(err), "start", "sleeper", NULL);
    cr_assert_eq(rc, 4, "conflict: %s", err);
    rc = e2e_cli(&svc, out, sizeof(out), err, sizeof(err), "stop", id, NULL);
    cr_assert_eq(rc, 0, "%s", err);
    rc = e2e_cli(&svc, out, sizeof(out), err, sizeof(err), "events", id, NULL);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(out, "stopped") != NULL, "%s", out);

    rc = e2e_cli(&svc, out, sizeof(out), err, sizeof(err), "start", "quick", NULL);
    cr_assert_eq(rc, 0, "%s", err);
    char qid[64] = {0};
    for (char *p = out; *p != '\0'; p++) {
        if (strlen(p) >= 36 && p[8] == '-' && p[13] == '-' && p[18] == '-' && p[23] == '-') {
            memcpy(qid, p, 36);
            break;
        }
    }
    rc = e2e_cli(&svc, out, sizeof(out), err, sizeof(err), "watch", qid, NULL);
    cr_assert_eq(rc, 0, "watch of a run that completes: %s%s", out, err);

    rc = e2e_cli(&svc, out, sizeof(out), err, sizeof(err), "nosuchcommand", NULL);
    cr_assert_eq(rc, 2, "%s", err);
    const char *version[] = {"--version", NULL};
    rc = e2e_run(out, sizeof(out), err, sizeof(err), version);
    cr_assert_eq(rc, 0);
    cr_assert(strncmp(out, "baton ", 6) == 0, "%s", out);

    cr_assert_eq(e2e_stop(&svc, SIGTERM, STOP_MS), 0);
    rc = e2e_cli(&svc, out, sizeof(out), err, sizeof(err), "runs", NULL);
    cr_assert_eq(rc, 6, "service down: %s", err);
}

/* Each bad file is refused by `baton serve` and `baton check-config` with
 * exit code 8 and exactly this message, and nothing is started. */
Test(service, bad_config_files_each_with_its_exact_error)
{
    static const struct {
        const char *text;
        const char *error; /* after "baton: FILE:" */
    } cases[] = {
        {"[executor]\nmax_runing = 4\n",
         "2:1: unknown key 'max_runing' in [executor]; did you mean 'max_running'?"},
        {"[runtime]\nthreads = 10000\n",
         "2:1: runtime.threads = 10000 is out of range 0..256 (0 = online CPUs)"},
        {"[executor]\nshutdown_timeout = \"3h\"\n",
         "2:1: executor.shutdown_timeout = \"3h\" is out of range 100ms..10m"},
        {"[limits.api]\nrate = -5\n",
         "2:1: limits.api.rate = -5 is negative; a rate is a number of tokens per period, >= 1"},
        {"[server]\naddress = \"0.0.0.0\"\n",
         "2:1: server.address 0.0.0.0 is not loopback; set server.token or server.token_file"},
        {"[jobs.x]\nkind = \"exec\"\n[jobs.x.params]\nargv = [\"sleep\", \"1\"]\n",
         "1:7: [jobs.x] params: argv must be a non-empty array whose first element is an "
         "absolute path"},
        {"[server]\nport = 7878\nport = 7879\n",
         "3:1: duplicate key 'port' (first defined at 2:1)"},
        {"[server\nport = 1\n",
         "1:8: expected ']' to close table header 'server', found end of line"},
    };
    e2e_init(&svc);
    char path[400], expect[600], out[4096], err[4096];
    snprintf(path, sizeof(path), "%s/bad.toml", svc.dir);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(cases[i].text, f);
        fclose(f);
        const char *serve[] = {"serve", "--config", path, NULL};
        const char *check[] = {"check-config", path, NULL};
        for (int which = 0; which < 2; which++) {
            int rc = e2e_run(out, sizeof(out), err, sizeof(err), which == 0 ? serve : check);
            cr_assert_eq(rc, 8, "case %zu (%s): exit %d: %s", i, which == 0 ? "serve" : "check", rc,
                         err);
            snprintf(expect, sizeof(expect), "baton: %s:%s\n", path, cases[i].error);
            cr_assert_str_eq(err, expect, "case %zu", i);
        }
    }
    /* nothing was started: no state directory was made */
    char state[400];
    snprintf(state, sizeof(state), "%s/state", svc.dir);
    cr_assert_neq(access(state, F_OK), 0);
    const char *missing[] = {"check-config", "/nonexistent/baton.toml", NULL};
    cr_assert_eq(e2e_run(out, sizeof(out), err, sizeof(err), missing), 8);
    cr_assert_str_eq(err, "baton: /nonexistent/baton.toml: cannot open the config file: No such "
                          "file or directory\n");
}
