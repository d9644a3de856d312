/* test_http_kind.c: the built-in http kind driven through the real executor
 * and run store against a local paging server (pager_server.h): every item
 * exactly once in offset and cursor modes; 429 with Retry-After (seconds
 * and date forms) and 500s retried; a 404 failing the run with the server's
 * message; network errors retried then failing; the circuit breaker
 * opening and closing; the timeout class aborting a hung request; pause
 * aborting a slow response at once and resume finishing exactly once; a
 * crash after some checkpoints, with extra bytes past the checkpoint,
 * recovered exactly once; params validation. Real sockets, real time. */
#define _GNU_SOURCE
#include "breaker.h"
#include "executor.h"
#include "http_kind.h"
#include "pager_server.h"
#include "ratelimit.h"
#include "runstore.h"
#include "timeouts.h"

#include <baton/baton.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MS     (1000000ull)
#define SEC_NS (1000000000ull)

/* ----------------------------------------------------------- fixtures */

static char dir[256];
static char db_path[400];
static char out_path[400];
static bt_runtime_t *rt;
static bt_ref_t store, ex, timeouts, breaker, limiter;
static ps_server_t *srv;
static uint32_t progress_steps; /* executor pace: 0 = its default */

static const ex_job_t jobs[] = {
    {.name = "h", .kind = "http", .stop_grace_ns = 2 * SEC_NS},
};

static const bt_breaker_args_t breaker_args = {
    .consecutive_failures = 3,
    .open_wait_ns = 150 * MS,
    .half_open_probes = 1,
    .half_open_successes = 1,
};

static void runtime_up(void)
{
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 2}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    rs_config_t rc = {.path = db_path, .synchronous = RS_SYNC_OFF};
    cr_assert_eq(rs_spawn(rt, &rc, &store), BT_OK);
    bt_timeout_class_t tiny = {.name = "tiny", .timeout_ns = 300 * MS};
    bt_timeouts_args_t ta = {.classes = &tiny, .nclasses = 1};
    cr_assert_eq(bt_timeouts_spawn(rt, &ta, &timeouts), BT_OK);
    cr_assert_eq(bt_breaker_spawn(rt, &breaker_args, &breaker), BT_OK);
    cr_assert_eq(bt_register(rt, "breaker.api", breaker), BT_OK);
    bt_ratelimit_args_t la = {.rate = 1000, .period_ns = SEC_NS, .burst = 50, .seed = 7};
    bt_backoff_args_default(&la.retry);
    cr_assert_eq(bt_ratelimit_spawn(rt, &la, &limiter), BT_OK);
    cr_assert_eq(bt_register(rt, "limit.api", limiter), BT_OK);
    bt_ref_t slow;
    la.rate = 20; /* one request per 50 ms, no burst */
    la.burst = 1;
    cr_assert_eq(bt_ratelimit_spawn(rt, &la, &slow), BT_OK);
    cr_assert_eq(bt_register(rt, "limit.slow", slow), BT_OK);
    const ex_kind_t *kinds[] = {ex_http_kind()};
    ex_config_t cfg = {.store = store,
                       .timeouts = timeouts,
                       .state_dir = dir,
                       .kinds = kinds,
                       .nkinds = 1,
                       .jobs = jobs,
                       .njobs = 1,
                       .progress_every_steps = progress_steps,
                       .force_slack_ns = 5 * SEC_NS};
    cr_assert_eq(ex_spawn(rt, &cfg, &ex), BT_OK);
}

static void runtime_down(void)
{
    if (rt != NULL)
        cr_assert_eq(bt_runtime_shutdown(rt, 10 * SEC_NS), BT_OK);
    rt = NULL;
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/httpkind-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db_path, sizeof(db_path), "%s/runs.db", dir);
    snprintf(out_path, sizeof(out_path), "%s/out.jsonl", dir);
}

static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[1024];
        snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
        rm_tree(p);
    }
    closedir(d);
    rmdir(path);
}

static void teardown(void)
{
    runtime_down();
    ps_stop(srv);
    srv = NULL;
    rm_tree(dir);
}

TestSuite(http_kind, .init = setup, .fini = teardown, .timeout = 60);

static void serve(uint32_t nitems)
{
    cr_assert_eq(ps_start(nitems, &srv), 0);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * SEC_NS + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ helpers */

static ex_reply_t *cmd(uint32_t id, const char *run, const char *params)
{
    bt_msg_t *m = ex_cmd_new(id, run, "h", params);
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

typedef struct stored_run {
    rs_state_t state;
    int64_t done;
    char error[EX_ERRMSG_MAX];
    char ckpt[512];
} stored_run_t;

static stored_run_t stored(const char *id)
{
    bt_msg_t *r = NULL;
    cr_assert_eq(bt_ask_wait(rt, ex, ex_cmd_new(EX_MSG_GET, id, NULL, NULL), 20 * SEC_NS, &r),
                 BT_OK);
    const rs_reply_t *rep = (const rs_reply_t *)r;
    cr_assert_eq(rep->status, RS_OK, "%s", rep->message);
    rs_run_t run;
    rs_reply_run(rep, 0, &run);
    stored_run_t s = {.state = run.state, .done = run.progress_done};
    snprintf(s.error, sizeof(s.error), "%s", run.last_error != NULL ? run.last_error : "");
    if (run.checkpoint != NULL)
        snprintf(s.ckpt, sizeof(s.ckpt), "%.*s", (int)run.checkpoint_len,
                 (const char *)run.checkpoint);
    bt_msg_free(r);
    return s;
}

static stored_run_t await_terminal(const char *id)
{
    for (int i = 0; i < 3000; i++) {
        stored_run_t s = stored(id);
        if (rs_state_terminal(s.state))
            return s;
        sleep_ms(5);
    }
    cr_assert_fail("run %s never ended", id);
    return (stored_run_t){0};
}

static void expect_completed(const char *id)
{
    stored_run_t s = await_terminal(id);
    cr_assert_eq(s.state, RS_COMPLETED, "run ended %s: %s", rs_state_name(s.state), s.error);
}

/* The output holds items 0..n-1, each once, in order, one JSON object a
 * line, and nothing else. */
static void expect_exactly_once(const char *path, uint32_t n)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "no output at %s", path);
    char line[4096];
    uint32_t i = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strlen(line);
        cr_assert(len > 0 && line[len - 1] == '\n', "line %u is not terminated: %s", i, line);
        cJSON *o = cJSON_Parse(line);
        cr_assert_not_null(o, "line %u is not JSON: %s", i, line);
        const cJSON *idv = cJSON_GetObjectItemCaseSensitive(o, "id");
        cr_assert(cJSON_IsNumber(idv), "line %u has no id: %s", i, line);
        cr_assert_eq((uint32_t)idv->valuedouble, i, "line %u holds item %d", i,
                     (int)idv->valuedouble);
        char name[32];
        snprintf(name, sizeof(name), "item-%u", i);
        cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(o, "name")->valuestring, name);
        cJSON_Delete(o);
        i++;
    }
    fclose(f);
    cr_assert_eq(i, n, "the output has %u items, not %u", i, n);
}

static ps_stats_t server_stats(void)
{
    ps_stats_t st;
    ps_stats(srv, &st);
    return st;
}

/* Waits until the server's counters satisfy the condition. */
#define AWAIT_SERVER(cond)                                                                         \
    do {                                                                                           \
        ps_stats_t st_;                                                                            \
        int i_;                                                                                    \
        for (i_ = 0; i_ < 2000; i_++) {                                                            \
            ps_stats(srv, &st_);                                                                   \
            const ps_stats_t *st = &st_;                                                           \
            if (cond)                                                                              \
                break;                                                                             \
            sleep_ms(2);                                                                           \
        }                                                                                          \
        cr_assert_lt(i_, 2000, "server never reached: %s", #cond);                                 \
    } while (0)

static char *params_offset(uint32_t limit, const char *extra)
{
    static char p[1024];
    snprintf(p, sizeof(p),
             "{\"url\": \"http://127.0.0.1:%u/items?offset={offset}&limit={limit}\", "
             "\"limit\": %u, \"items_path\": \"data.items\", \"output\": \"%s\", "
             "\"backoff_base_ms\": 5, \"backoff_cap_ms\": 20%s%s}",
             ps_port(srv), limit, out_path, extra[0] ? ", " : "", extra);
    return p;
}

/* -------------------------------------------------------------- tests */

Test(http_kind, offset_mode_writes_every_item_exactly_once)
{
    serve(95);
    runtime_up();
    char id[EX_RUN_ID_MAX], p[1024];
    /* No output param: the default file under <state_dir>/http/. All three
     * protections named. */
    snprintf(p, sizeof(p),
             "{\"url\": \"http://127.0.0.1:%u/items?offset={offset}&limit={limit}\", "
             "\"limit\": 10, \"items_path\": \"data.items\", \"breaker\": \"api\", "
             "\"limit_name\": \"api\", \"timeout\": \"default\"}",
             ps_port(srv));
    start(p, id);
    expect_completed(id);
    char path[600];
    snprintf(path, sizeof(path), "%s/http/%s.jsonl", dir, id);
    expect_exactly_once(path, 95);
    ps_stats_t st = server_stats();
    cr_assert_eq(st.requests, 10); /* 9 full pages, then 5 items < limit */
    stored_run_t s = stored(id);
    cr_assert_eq(s.done, 95);
    cr_assert(strstr(s.ckpt, "\"offset\":95") != NULL, "checkpoint %s", s.ckpt);
    /* every request went through the breaker and the limiter */
    bt_msg_t *r = NULL;
    cr_assert_eq(
        bt_ask_wait(rt, breaker, bt_msg_new(sizeof(bt_msg_t), BT_BREAKER_STATS), 5 * SEC_NS, &r),
        BT_OK);
    cr_assert_eq(((bt_breaker_stats_msg_t *)r)->counters.successes, 10);
    bt_msg_free(r);
    cr_assert_eq(
        bt_ask_wait(rt, limiter, bt_msg_new(sizeof(bt_msg_t), BT_RL_STATS), 5 * SEC_NS, &r), BT_OK);
    cr_assert_eq(((bt_rl_stats_msg_t *)r)->granted, 10);
    bt_msg_free(r);
}

Test(http_kind, offset_mode_ends_on_an_empty_page_after_full_ones)
{
    serve(40);
    runtime_up();
    char id[EX_RUN_ID_MAX];
    start(params_offset(10, ""), id);
    expect_completed(id);
    expect_exactly_once(out_path, 40);
    cr_assert_eq(server_stats().requests, 5);
}

Test(http_kind, cursor_mode_writes_every_item_exactly_once)
{
    serve(50);
    runtime_up();
    char id[EX_RUN_ID_MAX], p[1024];
    snprintf(p, sizeof(p),
             "{\"url\": \"http://127.0.0.1:%u/list?cursor={cursor}&limit={limit}\", "
             "\"mode\": \"cursor\", \"limit\": 7, \"items_path\": \"items\", "
             "\"cursor_path\": \"meta.next\", \"output\": \"%s\", "
             "\"headers\": {\"X-Test\": \"yes\"}}",
             ps_port(srv), out_path);
    start(p, id);
    expect_completed(id);
    expect_exactly_once(out_path, 50);
    ps_stats_t st = server_stats();
    cr_assert_eq(st.requests, 8);
    cr_assert_eq(st.pages, 8); /* every cursor (with / & and a space) arrived intact */
    for (uint32_t n = 1; n <= 8; n++)
        cr_assert_eq(ps_request_start(srv, n), (int64_t)(n - 1) * 7);
}

Test(http_kind, the_rate_limiter_spaces_the_requests)
{
    serve(40);
    runtime_up();
    char id[EX_RUN_ID_MAX];
    /* Milliseconds, rounded down as the server's log is. */
    int64_t t0 = (int64_t)(mono_ns() / 1000000);
    start(params_offset(10, "\"limit_name\": \"slow\""), id);
    expect_completed(id);
    expect_exactly_once(out_path, 40);
    cr_assert_eq(server_stats().requests, 5);
    /* 5 grants, 50 ms apart at the least; the first no earlier than the
     * start (the bucket holds one token). A request arrives after its grant
     * but may be delayed (the first one also connects), so the 5th arrives
     * 200 ms after the start at the earliest, whatever the delays. */
    int64_t span = ps_request_time_ms(srv, 5) - t0;
    cr_assert_geq(span, 200, "5 requests within %lld ms of the start", (long long)span);
}

Test(http_kind, retries_429_with_retry_after_and_500s_still_exactly_once)
{
    serve(60);
    runtime_up();
    /* request 2: 429 with an HTTP date 2 s ahead (a wait of 1 to 2 s, as
     * the date has whole seconds); request 4: 429 with "1" (seconds);
     * requests 6 and 7: 500. */
    char date[64];
    time_t at = time(NULL) + 2;
    struct tm tm;
    gmtime_r(&at, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    ps_fault_add(srv, &(ps_fault_t){.from = 2, .count = 1, .status = 429, .retry_after = date});
    ps_fault_add(srv, &(ps_fault_t){.from = 4, .count = 1, .status = 429, .retry_after = "1"});
    ps_fault_add(srv, &(ps_fault_t){.from = 6, .count = 2, .status = 500});
    char id[EX_RUN_ID_MAX];
    start(params_offset(10, "\"max_attempts\": 4, \"breaker\": \"api\""), id);
    expect_completed(id);
    expect_exactly_once(out_path, 60);
    ps_stats_t st = server_stats();
    cr_assert_eq(st.faults, 4);
    cr_assert_eq(st.pages, 7);
    cr_assert_eq(st.requests, 11);
    /* the retries waited as the server said (timers never fire early) */
    int64_t d_date = ps_request_time_ms(srv, 3) - ps_request_time_ms(srv, 2);
    int64_t d_secs = ps_request_time_ms(srv, 5) - ps_request_time_ms(srv, 4);
    cr_assert_geq(d_date, 900, "waited %lld ms after the dated 429", (long long)d_date);
    cr_assert_geq(d_secs, 990, "waited %lld ms after Retry-After: 1", (long long)d_secs);
    /* a 500 is retried with the (short) backoff */
    int64_t d_500 = ps_request_time_ms(srv, 8) - ps_request_time_ms(srv, 6);
    cr_assert_lt(d_500, 500, "500s were retried after %lld ms", (long long)d_500);
}

Test(http_kind, a_404_fails_the_run_with_the_servers_message)
{
    serve(60);
    ps_fault_add(srv,
                 &(ps_fault_t){.from = 3,
                               .count = 1,
                               .status = 404,
                               .body = "{\"message\": \"collection widgets does not exist\"}"});
    ps_fault_add(srv,
                 &(ps_fault_t){.from = 4, .count = 1, .status = 403, .body = "go away\r\nnow"});
    runtime_up();
    char id[EX_RUN_ID_MAX];
    start(params_offset(10, "\"max_attempts\": 5"), id);
    stored_run_t s = await_terminal(id);
    cr_assert_eq(s.state, RS_FAILED);
    cr_assert(strstr(s.error, "HTTP 404: collection widgets does not exist") == s.error, "%s",
              s.error);
    cr_assert_eq(server_stats().requests, 3); /* no retry */
    expect_exactly_once(out_path, 20);        /* the two pages before it stay */
    /* a plain-text body is quoted (control characters blanked) */
    start(params_offset(10, ""), id);
    s = await_terminal(id);
    cr_assert_eq(s.state, RS_FAILED);
    cr_assert(strstr(s.error, "HTTP 403: go away  now") == s.error, "%s", s.error);
}

Test(http_kind, network_errors_are_retried_then_fail_the_run)
{
    serve(10);
    runtime_up();
    char id[EX_RUN_ID_MAX];
    /* port 1 on loopback: connection refused */
    start("{\"url\": \"http://127.0.0.1:1/items?offset={offset}\", \"max_attempts\": 3, "
          "\"backoff_base_ms\": 5, \"backoff_cap_ms\": 10}",
          id);
    stored_run_t s = await_terminal(id);
    cr_assert_eq(s.state, RS_FAILED);
    cr_assert(strstr(s.error, "network error") != NULL, "%s", s.error);
    cr_assert(strstr(s.error, "after 3 attempts") != NULL, "%s", s.error);
}

Test(http_kind, breaker_opens_under_repeated_500s_and_closes_again)
{
    serve(30);
    ps_fault_add(srv, &(ps_fault_t){.from = 2, .count = 4, .status = 500});
    runtime_up();
    char id[EX_RUN_ID_MAX];
    start(params_offset(10, "\"max_attempts\": 10, \"breaker\": \"api\""), id);
    /* three failures in a row open it: the kind then waits for it */
    for (int i = 0;; i++) {
        bt_msg_t *r = NULL;
        cr_assert_eq(bt_ask_wait(rt, breaker, bt_msg_new(sizeof(bt_msg_t), BT_BREAKER_STATS),
                                 5 * SEC_NS, &r),
                     BT_OK);
        bool opened = ((bt_breaker_stats_msg_t *)r)->counters.entered[BT_BREAKER_OPEN] > 0;
        bt_msg_free(r);
        if (opened)
            break;
        cr_assert_lt(i, 2000, "the breaker never opened");
        sleep_ms(1);
    }
    expect_completed(id);
    expect_exactly_once(out_path, 30);
    bt_msg_t *r = NULL;
    cr_assert_eq(
        bt_ask_wait(rt, breaker, bt_msg_new(sizeof(bt_msg_t), BT_BREAKER_STATS), 5 * SEC_NS, &r),
        BT_OK);
    const bt_breaker_stats_msg_t *bs = (const bt_breaker_stats_msg_t *)r;
    /* open, probe fails (the 4th 500), open again, probe succeeds: closed */
    cr_assert_eq(bs->state, BT_BREAKER_CLOSED);
    cr_assert_eq(bs->counters.entered[BT_BREAKER_OPEN], 2);
    cr_assert_eq(bs->counters.entered[BT_BREAKER_HALF_OPEN], 2);
    cr_assert_eq(bs->counters.entered[BT_BREAKER_CLOSED], 1);
    cr_assert_eq(bs->counters.failures, 4);
    bt_msg_free(r);
    /* requests while open were refused by the breaker, not sent */
    cr_assert_eq(server_stats().requests, 4 + 4);
}

Test(http_kind, timeout_class_aborts_a_hung_request_and_retries)
{
    serve(30);
    ps_fault_add(srv, &(ps_fault_t){.from = 2, .count = 1, .delay_ms = 8000});
    runtime_up();
    char id[EX_RUN_ID_MAX];
    uint64_t t0 = mono_ns();
    start(params_offset(10, "\"timeout\": \"tiny\""), id);
    expect_completed(id);
    cr_assert_lt(mono_ns() - t0, 3 * SEC_NS);
    expect_exactly_once(out_path, 30);
    AWAIT_SERVER(st->client_aborts == 1); /* it sees the hang-up within 5 ms */
    cr_assert_eq(server_stats().requests, 5);
    bt_msg_t *r = NULL;
    cr_assert_eq(
        bt_ask_wait(rt, timeouts, bt_msg_new(sizeof(bt_msg_t), BT_TO_STATS), 5 * SEC_NS, &r),
        BT_OK);
    cr_assert_eq(((bt_to_stats_msg_t *)r)->expired, 1);
    cr_assert_eq(((bt_to_stats_msg_t *)r)->live, 0);
    bt_msg_free(r);
}

Test(http_kind, pause_aborts_a_slow_response_promptly_and_resume_completes_exactly_once)
{
    serve(50);
    ps_fault_add(srv, &(ps_fault_t){.from = 3, .count = 1, .delay_ms = 20000});
    runtime_up();
    char id[EX_RUN_ID_MAX];
    start(params_offset(10, "\"breaker\": \"api\""), id);
    AWAIT_SERVER(st->requests == 3 && st->active == 1);
    uint64_t t0 = mono_ns();
    ex_reply_t *r = cmd(EX_MSG_PAUSE, id, NULL);
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    /* answered once the kind confirmed it aborted the request */
    cr_assert_eq(r->flags & EX_REPLY_UNCONFIRMED, 0, "%s", r->message);
    cr_assert_lt(mono_ns() - t0, SEC_NS);
    bt_msg_free(&r->hdr);
    AWAIT_SERVER(st->client_aborts == 1);
    uint64_t took = mono_ns() - t0;
    cr_assert_lt(took, SEC_NS, "the request was aborted after %llu ms",
                 (unsigned long long)(took / MS));
    /* paused: nothing more is asked */
    sleep_ms(150);
    cr_assert_eq(server_stats().requests, 3);
    cr_assert_eq(stored(id).state, RS_PAUSED);
    r = cmd(EX_MSG_RESUME, id, NULL);
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    bt_msg_free(&r->hdr);
    expect_completed(id);
    expect_exactly_once(out_path, 50);
    ps_stats_t st = server_stats();
    cr_assert_eq(st.requests, 7); /* the aborted page once more */
    cr_assert_eq(ps_request_start(srv, 4), 20);
    /* the aborted call was reported as cancelled, not as a failure */
    bt_msg_t *b = NULL;
    cr_assert_eq(
        bt_ask_wait(rt, breaker, bt_msg_new(sizeof(bt_msg_t), BT_BREAKER_STATS), 5 * SEC_NS, &b),
        BT_OK);
    cr_assert_eq(((bt_breaker_stats_msg_t *)b)->counters.cancelled, 1);
    cr_assert_eq(((bt_breaker_stats_msg_t *)b)->counters.failures, 0);
    bt_msg_free(b);
}

Test(http_kind, pause_during_a_retry_wait_keeps_the_wait_and_the_checkpoint)
{
    serve(30);
    ps_fault_add(srv, &(ps_fault_t){.from = 2, .count = 1, .status = 429, .retry_after = "1"});
    runtime_up();
    char id[EX_RUN_ID_MAX];
    start(params_offset(10, ""), id);
    AWAIT_SERVER(st->faults == 1);
    sleep_ms(20);
    ex_reply_t *r = cmd(EX_MSG_PAUSE, id, NULL);
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    cr_assert_eq(r->flags & EX_REPLY_UNCONFIRMED, 0, "%s", r->message);
    bt_msg_free(&r->hdr);
    char before[512];
    snprintf(before, sizeof(before), "%s", stored(id).ckpt);
    cr_assert(strstr(before, "\"offset\":10") != NULL, "checkpoint %s", before);
    sleep_ms(1300); /* past the Retry-After: still nothing is sent */
    cr_assert_eq(server_stats().requests, 2);
    cr_assert_str_eq(stored(id).ckpt, before);
    r = cmd(EX_MSG_RESUME, id, NULL);
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    bt_msg_free(&r->hdr);
    expect_completed(id);
    expect_exactly_once(out_path, 30);
    cr_assert_eq(server_stats().requests, 5);
}

Test(http_kind, a_response_over_max_response_bytes_fails_the_run)
{
    serve(500);
    runtime_up();
    char id[EX_RUN_ID_MAX];
    start(params_offset(100, "\"max_response_bytes\": 1024"), id);
    stored_run_t s = await_terminal(id);
    cr_assert_eq(s.state, RS_FAILED);
    cr_assert(strstr(s.error, "larger than max_response_bytes (1024)") != NULL, "%s", s.error);
    cr_assert_eq(server_stats().requests, 1);
}

Test(http_kind, stop_aborts_a_slow_response)
{
    serve(50);
    ps_fault_add(srv, &(ps_fault_t){.from = 2, .count = 1, .delay_ms = 20000});
    runtime_up();
    char id[EX_RUN_ID_MAX];
    start(params_offset(10, ""), id);
    AWAIT_SERVER(st->requests == 2 && st->active == 1);
    uint64_t t0 = mono_ns();
    ex_reply_t *r = cmd(EX_MSG_STOP, id, NULL);
    cr_assert_eq(r->status, EX_OK, "%s", r->message);
    cr_assert_eq(r->state, RS_STOPPED);
    bt_msg_free(&r->hdr);
    cr_assert_lt(mono_ns() - t0, SEC_NS);
    AWAIT_SERVER(st->client_aborts == 1);
    cr_assert_eq(stored(id).error[0], '\0');
    expect_exactly_once(out_path, 10);
}

Test(http_kind, crash_after_checkpoints_resumes_exactly_once)
{
    serve(300);
    ps_set_delay(srv, 20);
    progress_steps = 2; /* the store keeps every 2nd checkpoint: it lags the file */
    runtime_up();
    char id[EX_RUN_ID_MAX];
    start(params_offset(10, "\"breaker\": \"api\", \"limit_name\": \"api\""), id);
    for (int i = 0; stored(id).done < 80; i++) {
        cr_assert_lt(i, 5000, "no progress");
        sleep_ms(2);
    }
    /* The service dies mid-run (its kind is stopped without an outcome). */
    runtime_down();
    ps_stats_t before = server_stats();
    cr_assert_lt(before.pages, 30, "the run finished before the crash");
    /* A write that never got its checkpoint: bytes past it. */
    FILE *f = fopen(out_path, "a");
    cr_assert_not_null(f);
    fputs("{\"id\":999999,\"name\":\"torn\"}\n{\"id\":1000000,\"na", f);
    fclose(f);
    ps_set_delay(srv, 0);
    runtime_up(); /* recovery: the kind's policy is RESUME */
    expect_completed(id);
    expect_exactly_once(out_path, 300);
    /* it resumed from its checkpoint, not from the start */
    int64_t resumed_at = ps_request_start(srv, before.requests + 1);
    cr_assert_geq(resumed_at, 60, "resumed at offset %lld", (long long)resumed_at);
    cr_assert_eq(stored(id).done, 300);
}

Test(http_kind, a_checkpoint_longer_than_the_output_fails_the_run)
{
    serve(300);
    ps_set_delay(srv, 20);
    progress_steps = 1;
    runtime_up();
    char id[EX_RUN_ID_MAX];
    start(params_offset(10, ""), id);
    for (int i = 0; stored(id).done < 30; i++) {
        cr_assert_lt(i, 5000, "no progress");
        sleep_ms(2);
    }
    runtime_down();
    cr_assert_eq(truncate(out_path, 5), 0); /* someone cut the file */
    runtime_up();
    stored_run_t s = await_terminal(id);
    cr_assert_eq(s.state, RS_FAILED);
    cr_assert(strstr(s.error, "changed outside the run") != NULL, "%s", s.error);
}

/* A run left "running" by a crashed service, made straight in the store:
 * its params, its checkpoint, and an output holding items 0..n-1 plus
 * junk past them. Returns its id in id. */
static void crashed_run(const char *params, const char *ckpt, uint32_t n, const char *junk,
                        char id[EX_RUN_ID_MAX])
{
    bt_msg_t *rep = NULL;
    cr_assert_eq(bt_ask_wait(rt, store, rs_req_create("h", params, RS_RUNNING), 20 * SEC_NS, &rep),
                 BT_OK);
    cr_assert_eq(((rs_reply_t *)rep)->status, RS_OK);
    snprintf(id, EX_RUN_ID_MAX, "%s", ((rs_reply_t *)rep)->run_id);
    bt_msg_free(rep);
    cr_assert_eq(
        bt_ask_wait(rt, store, rs_req_progress(id, n, 0, ckpt, strlen(ckpt)), 20 * SEC_NS, &rep),
        BT_OK);
    cr_assert_eq(((rs_reply_t *)rep)->status, RS_OK);
    bt_msg_free(rep);
    FILE *f = fopen(out_path, "w");
    cr_assert_not_null(f);
    for (uint32_t i = 0; i < n; i++)
        fprintf(f, "{\"id\":%u,\"name\":\"item-%u\"}\n", i, i);
    fputs(junk, f);
    fclose(f);
}

/* Bytes of the lines of items 0..n-1. */
static uint64_t items_bytes(uint32_t n)
{
    uint64_t b = 0;
    char line[64];
    for (uint32_t i = 0; i < n; i++)
        b += (uint64_t)snprintf(line, sizeof(line), "{\"id\":%u,\"name\":\"item-%u\"}\n", i, i);
    return b;
}

Test(http_kind, cursor_mode_crash_resumes_from_the_checkpoints_cursor)
{
    serve(40);
    runtime_up();
    char id[EX_RUN_ID_MAX], p[1024], ck[256];
    snprintf(p, sizeof(p),
             "{\"url\": \"http://127.0.0.1:%u/list?cursor={cursor}&limit={limit}\", "
             "\"mode\": \"cursor\", \"limit\": 7, \"items_path\": \"items\", "
             "\"cursor_path\": \"meta.next\", \"output\": \"%s\"}",
             ps_port(srv), out_path);
    /* two pages (14 items) checkpointed; a third page written, and torn */
    snprintf(ck, sizeof(ck), "{\"v\":1,\"cursor\":\"after id/14&z\",\"bytes\":%llu,\"items\":14}",
             (unsigned long long)items_bytes(14));
    crashed_run(p, ck, 14,
                "{\"id\":14,\"name\":\"item-14\"}\n{\"id\":15,\"name\":\"item-15\"}\n{\"id\":16,",
                id);
    runtime_down();
    runtime_up(); /* recovery: RESUME */
    expect_completed(id);
    expect_exactly_once(out_path, 40);
    ps_stats_t st = server_stats();
    cr_assert_eq(st.requests, 4); /* 14..20, 21..27, 28..34, 35..39 */
    cr_assert_eq(ps_request_start(srv, 1), 14);
    cr_assert_eq(stored(id).done, 40);
}

Test(http_kind, a_checkpoint_of_the_last_page_completes_without_a_request)
{
    serve(40);
    runtime_up();
    char id[EX_RUN_ID_MAX], ck[256];
    snprintf(ck, sizeof(ck), "{\"v\":1,\"offset\":40,\"bytes\":%llu,\"items\":40,\"end\":true}",
             (unsigned long long)items_bytes(40));
    crashed_run(params_offset(10, ""), ck, 40, "junk", id);
    runtime_down();
    runtime_up();
    expect_completed(id);
    expect_exactly_once(out_path, 40);
    cr_assert_eq(server_stats().requests, 0);
}

Test(http_kind, a_checkpoint_of_another_mode_fails_the_run)
{
    serve(40);
    runtime_up();
    char id[EX_RUN_ID_MAX];
    crashed_run(params_offset(10, ""), "{\"v\":1,\"cursor\":\"x\",\"bytes\":0,\"items\":0}", 0, "",
                id);
    runtime_down();
    runtime_up();
    stored_run_t s = await_terminal(id);
    cr_assert_eq(s.state, RS_FAILED);
    cr_assert(strstr(s.error, "the checkpoint does not fit the params") != NULL, "%s", s.error);
}

/* ------------------------------------------------------------- params */

static void expect_refused(const char *params, const char *sentence)
{
    ex_reply_t *r = cmd(EX_MSG_START, NULL, params);
    cr_assert_eq(r->status, EX_EBADREQ, "accepted: %s", params);
    cr_assert(strstr(r->message, sentence) != NULL, "%s: got \"%s\"", params, r->message);
    bt_msg_free(&r->hdr);
}

Test(http_kind, params_are_validated_with_clear_sentences)
{
    serve(1);
    runtime_up();
    expect_refused("[]", "params must be a JSON object");
    expect_refused("{}", "url is required");
    expect_refused("{\"url\": \"ftp://x/{offset}\"}", "url must start with http:// or https://");
    expect_refused("{\"url\": \"http://x/?o={offset}&c={cursor}\"}",
                   "in offset mode url must hold {offset}");
    expect_refused("{\"url\": \"http://x/?o={offset}&p={page}\"}",
                   "url may hold only the placeholders");
    expect_refused("{\"url\": \"http://x/?c={cursor}\", \"mode\": \"cursor\"}",
                   "cursor mode needs cursor_path");
    expect_refused("{\"url\": \"http://x/?o={offset}\", \"mode\": \"pages\"}",
                   "mode must be \"offset\" or \"cursor\"");
    expect_refused("{\"url\": \"http://x/?o={offset}\", \"limit\": 0}",
                   "limit must be a whole number from 1 to 100000");
    expect_refused("{\"url\": \"http://x/?o={offset}\", \"items_path\": \"a..b\"}",
                   "items_path must be");
    expect_refused("{\"url\": \"http://x/?o={offset}\", \"output\": \"../x\"}",
                   "output must be an absolute path, or a file name");
    expect_refused("{\"url\": \"http://x/?o={offset}\", \"headers\": {\"Bad Name\": \"v\"}}",
                   "header name \"Bad Name\" is not a valid HTTP field name");
    expect_refused("{\"url\": \"http://x/?o={offset}\", \"headers\": {\"X\": \"a\\r\\nb\"}}",
                   "header X must have a string value without line breaks");
    expect_refused("{\"url\": \"http://x/?o={offset}\", \"timeout\": \"Big One\"}",
                   "timeout must be a timeout class name");
    expect_refused("{\"url\": \"http://x/?o={offset}\", \"breaker\": \"\"}",
                   "breaker must be a name");
    expect_refused("{\"url\": \"http://x/?o={offset}\", \"max_attempts\": 0}",
                   "max_attempts must be a whole number from 1 to 100");
    expect_refused("{\"url\": \"http://x/?o={offset}\", \"backoff_base_ms\": 50, "
                   "\"backoff_cap_ms\": 10}",
                   "backoff_cap_ms must be at least backoff_base_ms");
    expect_refused("{\"url\": \"http://x/?o={offset}\", \"limt\": 10}",
                   "unknown key \"limt\" in the params");
    expect_refused("{\"url\": \"http://x/?o={offset}\", \"cursor_path\": \"n\"}",
                   "cursor_path is only for cursor mode");
    expect_refused("{\"url\": \"http://[::1/?o={offset}\"}", "url is not a valid URL");
}

Test(http_kind, url_expansion_encodes_the_cursor)
{
    char *u = ex_http_url_expand("http://h/p?c={cursor}&l={limit}", 0, 25, "after id/7&z");
    cr_assert_str_eq(u, "http://h/p?c=after%20id%2F7%26z&l=25");
    free(u);
    u = ex_http_url_expand("http://h/p?c={cursor}", 0, 1, NULL);
    cr_assert_str_eq(u, "http://h/p?c=");
    free(u);
    u = ex_http_url_expand("http://h/p?o={offset}&l={limit}", 1234567890123ull, 7, NULL);
    cr_assert_str_eq(u, "http://h/p?o=1234567890123&l=7");
    free(u);
    cr_assert_null(ex_http_url_expand("http://h/{page}", 0, 1, NULL));
}
