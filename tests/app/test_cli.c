/*
 * test_cli.c: the `baton` client commands against a fake API server.
 *
 * The fake server is libmicrohttpd in the test process, on an ephemeral
 * loopback port. It answers per method and path with canned JSON in the
 * shapes of docs/api.md and records every request it gets (method, path,
 * query, headers, body), so each test drives bt_cli_run() and asserts both
 * on what was sent and on what was printed (captured with open_memstream)
 * and returned. The environment is a table in the test, and the wall clock
 * is fixed, so relative times ("3m ago") are exact.
 */
#include "cli/cli.h"
#include "cli/format.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RUN_ID     "0195f3c2-7d1e-7a31-9c4e-2b9d5f0e8a11"
#define PAUSED_ID  "0195f3c2-0000-7000-8000-00000000aaaa"
#define MISSING_ID "0195f3c2-0000-7000-8000-00000000dead"
#define MAX_REQS   64

/* ------------------------------------------------------------ fake server */

typedef struct rec {
    char method[8];
    char path[256];
    char query[512]; /* decoded "k=v&k=v", in arrival order */
    char after[128];
    char auth[256];
    char idem[160];
    char ctype[64];
    char body[4096];
    bool has_body;
} rec_t;

typedef struct answer {
    int status;
    char body[16384];
    bool replayed;
    unsigned delay_ms;
} answer_t;

typedef void (*route_fn)(const rec_t *r, answer_t *a);

static struct {
    struct MHD_Daemon *d;
    unsigned port;
    char url[64];
    pthread_mutex_t mu;
    rec_t reqs[MAX_REQS];
    int nreqs;
    int polls;
    route_fn route;
} fake = {.mu = PTHREAD_MUTEX_INITIALIZER};

typedef struct conn_buf {
    char *data;
    size_t len;
} conn_buf_t;

static void run_json(char *buf, size_t cap, const char *id, const char *job, const char *state,
                     int done, int total, const char *last_error)
{
    bool terminal = strcmp(state, "completed") == 0 || strcmp(state, "failed") == 0 ||
                    strcmp(state, "stopped") == 0;
    char le[256] = "null";
    if (last_error != NULL)
        snprintf(le, sizeof(le), "\"%s\"", last_error);
    snprintf(buf, cap,
             "{\"id\":\"%s\",\"job\":\"%s\",\"state\":\"%s\",\"params\":{\"limit\":100},"
             "\"progress\":{\"done\":%d,\"total\":%d},\"attempt\":1,\"last_error\":%s,"
             "\"created_at\":\"2026-11-25T14:03:07.123Z\","
             "\"started_at\":\"2026-11-25T14:03:07.125Z\","
             "\"updated_at\":\"2026-11-25T14:03:09.001Z\",\"finished_at\":%s}",
             id, job, state, done, total, le, terminal ? "\"2026-11-25T14:04:19.125Z\"" : "null");
}

static void answer_error(answer_t *a, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    a->status = status;
    snprintf(a->body, sizeof(a->body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code,
             msg);
}

/* A page of the run list: runs "r-<page>-<i>". */
static void answer_page(answer_t *a, int page, int n, const char *next)
{
    size_t len = (size_t)snprintf(a->body, sizeof(a->body), "{\"runs\":[");
    for (int i = 0; i < n; i++) {
        char id[64], run[1024];
        snprintf(id, sizeof(id), "0195f3c2-0000-7000-8000-%012d", page * 10 + i);
        run_json(run, sizeof(run), id, i % 2 ? "backup" : "nightly-export", "running", i, 10, NULL);
        len += (size_t)snprintf(a->body + len, sizeof(a->body) - len, "%s%s", i ? "," : "", run);
    }
    if (next != NULL)
        snprintf(a->body + len, sizeof(a->body) - len, "],\"next\":\"%s\"}", next);
    else
        snprintf(a->body + len, sizeof(a->body) - len, "],\"next\":null}");
    a->status = 200;
}

static void default_route(const rec_t *r, answer_t *a)
{
    char job[128], id[128], verb[32];
    bool post = strcmp(r->method, "POST") == 0, get = strcmp(r->method, "GET") == 0;
    if (post && sscanf(r->path, "/v1/jobs/%127[^/]/runs", job) == 1) {
        if (strcmp(job, "nosuch") == 0)
            return answer_error(a, 404, "not_found", "no job 'nosuch'");
        if (strcmp(job, "full") == 0)
            return answer_error(a, 409, "conflict", "job 'full' already has 1 active run");
        if (strcmp(job, "busy") == 0)
            return answer_error(a, 429, "busy", "the pending queue is full");
        if (strcmp(job, "draining") == 0)
            return answer_error(a, 503, "shutting_down", "the service is draining");
        if (strcmp(job, "badreq") == 0)
            return answer_error(a, 400, "bad_request", "param 'n' must be an integer");
        if (strcmp(job, "crash") == 0)
            return answer_error(a, 500, "internal", "a bug");
        if (strcmp(job, "hostile") == 0)
            return answer_error(a, 403, "forbidden", "Host not allowed");
        if (strcmp(job, "secret") == 0 && strcmp(r->auth, "Bearer right") != 0)
            return answer_error(a, 401, "unauthorized", "missing or wrong token");
        if (strcmp(job, "escjob") == 0)
            return answer_error(a, 404, "not_found", "no job \\u001b[31mred");
        if (strcmp(job, "notjson") == 0) {
            a->status = 502;
            snprintf(a->body, sizeof(a->body), "<html>Bad Gateway</html>");
            return;
        }
        if (strcmp(job, "slowjob") == 0)
            a->delay_ms = 1500;
        a->status = 201;
        a->replayed = strcmp(job, "replay") == 0;
        run_json(a->body, sizeof(a->body), RUN_ID, job, "running", 0, -1, NULL);
        return;
    }
    if (post && sscanf(r->path, "/v1/runs/%127[^/]/%31s", id, verb) == 2) {
        if (strcmp(id, MISSING_ID) == 0)
            return answer_error(a, 404, "not_found", "no run %s", id);
        if (strcmp(id, PAUSED_ID) == 0 && strcmp(verb, "pause") == 0)
            return answer_error(a, 409, "invalid_transition", "run %s is paused; cannot pause", id);
        const char *state = strcmp(verb, "pause") == 0    ? "paused"
                            : strcmp(verb, "resume") == 0 ? "running"
                            : strcmp(verb, "stop") == 0   ? "stopped"
                                                          : NULL;
        if (state == NULL)
            return answer_error(a, 404, "not_found", "no route");
        a->status = 200;
        run_json(a->body, sizeof(a->body), id, "nightly-export", state, 3, 10, NULL);
        return;
    }
    if (get && sscanf(r->path, "/v1/runs/%127[^/]/%31s", id, verb) == 2 &&
        strcmp(verb, "events") == 0) {
        if (strcmp(id, MISSING_ID) == 0)
            return answer_error(a, 404, "not_found", "no run %s", id);
        a->status = 200;
        snprintf(a->body, sizeof(a->body),
                 "{\"events\":[{\"seq\":41,\"at\":\"2026-11-25T14:03:07.123Z\",\"from\":null,"
                 "\"to\":\"running\",\"cause\":\"start\"},"
                 "{\"seq\":45,\"at\":\"2026-11-25T14:03:08.500Z\",\"from\":\"running\","
                 "\"to\":\"paused\",\"cause\":\"pause\"},"
                 "{\"seq\":1002,\"at\":\"2026-11-25T14:03:09.001Z\",\"from\":\"paused\","
                 "\"to\":\"running\",\"cause\":\"resume\"}]}");
        return;
    }
    if (get && sscanf(r->path, "/v1/runs/%127s", id) == 1 && strchr(id, '/') == NULL) {
        if (strcmp(id, MISSING_ID) == 0)
            return answer_error(a, 404, "not_found", "no run %s", id);
        if (strcmp(id, "slow") == 0)
            a->delay_ms = 1500;
        a->status = 200;
        run_json(a->body, sizeof(a->body), id, "nightly-export", "running", 3, 10, NULL);
        return;
    }
    if (get && strcmp(r->path, "/v1/runs") == 0) {
        if (r->after[0] == '\0')
            return answer_page(a, 1, 2, "c1");
        if (strcmp(r->after, "c1") == 0)
            return answer_page(a, 2, 2, "c2");
        if (strcmp(r->after, "c2") == 0)
            return answer_page(a, 3, 1, NULL);
        return answer_error(a, 400, "bad_request", "bad cursor");
    }
    answer_error(a, 404, "not_found", "no route %s %s", r->method, r->path);
}

static enum MHD_Result add_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    rec_t *r = cls;
    size_t n = strlen(r->query);
    snprintf(r->query + n, sizeof(r->query) - n, "%s%s=%s", n ? "&" : "", key,
             value != NULL ? value : "");
    return MHD_YES;
}

static void copy_header(struct MHD_Connection *c, const char *name, char *dst, size_t cap)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    snprintf(dst, cap, "%s", v != NULL ? v : "");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    conn_buf_t *cb = *con_cls;
    if (cb == NULL) {
        cb = calloc(1, sizeof(*cb));
        *con_cls = cb;
        return cb != NULL ? MHD_YES : MHD_NO;
    }
    if (*upload_size > 0) {
        char *nd = realloc(cb->data, cb->len + *upload_size + 1);
        if (nd == NULL)
            return MHD_NO;
        memcpy(nd + cb->len, upload, *upload_size);
        cb->data = nd;
        cb->len += *upload_size;
        cb->data[cb->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    rec_t *r = calloc(1, sizeof(*r));
    answer_t *a = calloc(1, sizeof(*a));
    if (r == NULL || a == NULL) {
        free(r);
        free(a);
        return MHD_NO;
    }
    snprintf(r->method, sizeof(r->method), "%s", method);
    snprintf(r->path, sizeof(r->path), "%s", url);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_query, r);
    const char *after = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "after");
    snprintf(r->after, sizeof(r->after), "%s", after != NULL ? after : "");
    copy_header(conn, "Authorization", r->auth, sizeof(r->auth));
    copy_header(conn, "Idempotency-Key", r->idem, sizeof(r->idem));
    copy_header(conn, "Content-Type", r->ctype, sizeof(r->ctype));
    r->has_body = cb->len > 0;
    snprintf(r->body, sizeof(r->body), "%s", cb->data != NULL ? cb->data : "");

    pthread_mutex_lock(&fake.mu);
    if (fake.nreqs < MAX_REQS)
        fake.reqs[fake.nreqs] = *r;
    fake.nreqs++;
    a->status = 200;
    (fake.route != NULL ? fake.route : default_route)(r, a);
    pthread_mutex_unlock(&fake.mu);
    if (a->delay_ms > 0)
        usleep(a->delay_ms * 1000u);

    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(a->body), a->body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (a->replayed)
        MHD_add_response_header(resp, "Idempotent-Replayed", "true");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)a->status, resp);
    MHD_destroy_response(resp);
    free(r);
    free(a);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    conn_buf_t *cb = *con_cls;
    if (cb != NULL) {
        free(cb->data);
        free(cb);
        *con_cls = NULL;
    }
}

/* ------------------------------------------------------ harness and env */

#define MAX_ENV 8
static struct {
    const char *name, *value;
} env_table[MAX_ENV];

static const char *fake_getenv(const char *name)
{
    for (int i = 0; i < MAX_ENV; i++)
        if (env_table[i].name != NULL && strcmp(env_table[i].name, name) == 0)
            return env_table[i].value;
    return NULL;
}

static void set_env(const char *name, const char *value)
{
    for (int i = 0; i < MAX_ENV; i++)
        if (env_table[i].name == NULL || strcmp(env_table[i].name, name) == 0) {
            env_table[i].name = name;
            env_table[i].value = value;
            return;
        }
    cr_assert_fail("env table full");
}

static char *out_text, *err_text;
static int tty_mode;
static bt_cli_resolve_fn resolver;
static long long fixed_now;

/* Runs `baton ARGS...` (NULL-terminated) and captures its output. */
static int cli(const char *first, ...)
{
    char *argv[64];
    int argc = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s != NULL && argc < 63; s = va_arg(ap, const char *))
        argv[argc++] = (char *)s;
    va_end(ap);
    argv[argc] = NULL;
    free(out_text);
    free(err_text);
    size_t olen, elen;
    FILE *out = open_memstream(&out_text, &olen);
    FILE *err = open_memstream(&err_text, &elen);
    cr_assert(out != NULL && err != NULL);
    bt_cli_io_t io = {.out = out,
                      .err = err,
                      .tty = tty_mode,
                      .getenv = fake_getenv,
                      .now_ms = fixed_now,
                      .poll_ms = 5};
    pthread_mutex_lock(&fake.mu);
    fake.nreqs = 0;
    pthread_mutex_unlock(&fake.mu);
    int rc = bt_cli_run(argc, argv, resolver, &io);
    fclose(out);
    fclose(err);
    return rc;
}

static rec_t req(int i)
{
    pthread_mutex_lock(&fake.mu);
    cr_assert(i < fake.nreqs, "request %d was not sent (%d sent)", i, fake.nreqs);
    rec_t r = fake.reqs[i];
    pthread_mutex_unlock(&fake.mu);
    return r;
}

static int nreqs(void)
{
    pthread_mutex_lock(&fake.mu);
    int n = fake.nreqs;
    pthread_mutex_unlock(&fake.mu);
    return n;
}

static char *tmpdir;

static void setup(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fake.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                  MHD_USE_ITC,
                              0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    cr_assert(fake.d != NULL, "fake server did not start");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(fake.d, MHD_DAEMON_INFO_BIND_PORT);
    cr_assert(info != NULL && info->port != 0);
    fake.port = info->port;
    snprintf(fake.url, sizeof(fake.url), "http://127.0.0.1:%u", fake.port);
    fake.route = NULL;
    fake.polls = 0;
    memset(env_table, 0, sizeof(env_table));
    set_env("BATON_URL", fake.url);
    tty_mode = 0;
    resolver = NULL;
    /* Tables show times relative to 2026-11-25T14:06:07.123Z. */
    cr_assert(cli_time_parse("2026-11-25T14:06:07.123Z", &fixed_now));
    /* Run in an empty directory, so no ./config.toml is found by accident. */
    static char tmpl[64];
    snprintf(tmpl, sizeof(tmpl), "/tmp/baton-cli-test-XXXXXX");
    tmpdir = mkdtemp(tmpl);
    cr_assert(tmpdir != NULL && chdir(tmpdir) == 0);
}

static void teardown(void)
{
    MHD_stop_daemon(fake.d);
    free(out_text);
    free(err_text);
    out_text = err_text = NULL;
    if (tmpdir != NULL) {
        char path[128];
        snprintf(path, sizeof(path), "%s/config.toml", tmpdir);
        unlink(path);
        cr_assert(chdir("/") == 0);
        rmdir(tmpdir);
    }
}

TestSuite(cli, .init = setup, .fini = teardown);

#define assert_contains(hay, needle)                                                               \
    cr_assert(strstr((hay), (needle)) != NULL, "expected %s in:\n%s", #needle, (hay))

/* ----------------------------------------------------------------- start */

Test(cli, start_sends_post_with_params_token_and_idempotency_key)
{
    int rc = cli("start", "nightly-export", "--param", "n=5", "--param", "flag=true", "--param",
                 "name=bob", "--param", "quoted=\"7\"", "--param", "zip=007", "--param",
                 "big=12345678901234567890", "--param", "list=[1,\"a\"]", "--param",
                 "empty=", "--param", "eq=a=b", "--param-json", "{\"obj\":{\"x\":1},\"n\":6}",
                 "--param", "nul=null", "--idempotency-key", "k-1", "--token", "s3cret", NULL);
    cr_assert_eq(rc, 0, "rc %d, err: %s", rc, err_text);
    cr_assert_eq(nreqs(), 1);
    rec_t r = req(0);
    cr_assert_str_eq(r.method, "POST");
    cr_assert_str_eq(r.path, "/v1/jobs/nightly-export/runs");
    cr_assert_str_eq(r.auth, "Bearer s3cret");
    cr_assert_str_eq(r.idem, "k-1");
    cr_assert_str_eq(r.ctype, "application/json");
    /* Large integers go out digit for digit. */
    assert_contains(r.body, "\"big\":12345678901234567890");
    cJSON *doc = cJSON_Parse(r.body);
    cr_assert(doc != NULL, "body is not JSON: %s", r.body);
    cJSON *p = cJSON_GetObjectItemCaseSensitive(doc, "params");
    cr_assert(cJSON_IsObject(p));
    cr_assert_eq(cJSON_GetArraySize(doc), 1);
    /* --param-json came after --param n=5, so its n wins. */
    cr_assert_eq(cJSON_GetObjectItem(p, "n")->valuedouble, 6);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(p, "flag")));
    cr_assert_str_eq(cJSON_GetObjectItem(p, "name")->valuestring, "bob");
    cr_assert_str_eq(cJSON_GetObjectItem(p, "quoted")->valuestring, "7");
    cr_assert_str_eq(cJSON_GetObjectItem(p, "zip")->valuestring, "007");
    cr_assert_str_eq(cJSON_GetObjectItem(p, "empty")->valuestring, "");
    cr_assert_str_eq(cJSON_GetObjectItem(p, "eq")->valuestring, "a=b");
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(p, "nul")));
    cJSON *list = cJSON_GetObjectItem(p, "list");
    cr_assert(cJSON_IsArray(list) && cJSON_GetArraySize(list) == 2);
    cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "obj"), "x")->valuedouble, 1);
    cJSON_Delete(doc);
    cr_assert_str_eq(out_text, "run " RUN_ID " started (job nightly-export, running)\n");
    cr_assert_str_eq(err_text, "");
}

Test(cli, start_without_params_sends_empty_object_and_no_optional_headers)
{
    int rc = cli("start", "nightly-export", NULL);
    cr_assert_eq(rc, 0, "err: %s", err_text);
    rec_t r = req(0);
    cr_assert_str_eq(r.body, "{}");
    cr_assert_str_eq(r.auth, "");
    cr_assert_str_eq(r.idem, "");
}

Test(cli, start_escapes_the_job_name_in_the_path)
{
    cli("start", "a b/c", NULL);
    /* libmicrohttpd decodes the path; the slash stayed inside the segment. */
    cr_assert_str_eq(req(0).path, "/v1/jobs/a b/c/runs");
}

Test(cli, start_reports_a_replayed_answer)
{
    cr_assert_eq(cli("start", "replay", "--idempotency-key", "same", NULL), 0);
    assert_contains(out_text, "was already started with this idempotency key");
}

Test(cli, start_json_prints_the_answer_as_is)
{
    cr_assert_eq(cli("start", "nightly-export", "--json", NULL), 0);
    char expect[2048];
    run_json(expect, sizeof(expect), RUN_ID, "nightly-export", "running", 0, -1, NULL);
    strcat(expect, "\n");
    cr_assert_str_eq(out_text, expect);
}

Test(cli, start_rejects_bad_params_and_keys_locally)
{
    cr_assert_eq(cli("start", "j", "--param", "novalue", NULL), 2);
    assert_contains(err_text, "--param expects KEY=VALUE");
    cr_assert_eq(cli("start", "j", "--param", "=v", NULL), 2);
    cr_assert_eq(cli("start", "j", "--param-json", "[1]", NULL), 2);
    assert_contains(err_text, "JSON object");
    cr_assert_eq(cli("start", "j", "--idempotency-key", "", NULL), 2);
    cr_assert_eq(cli("start", "j", "--idempotency-key", "a\nb", NULL), 2);
    cr_assert_eq(cli("start", "j", "--idempotency-key", "a b", NULL), 2);
    char longkey[200];
    memset(longkey, 'k', 129);
    longkey[129] = '\0';
    cr_assert_eq(cli("start", "j", "--idempotency-key", longkey, NULL), 2);
    cr_assert_eq(nreqs(), 0);
}

/* ------------------------------------------------- pause, resume, stop */

Test(cli, pause_resume_stop_post_to_the_run_without_a_body)
{
    static const char *const verbs[] = {"pause", "resume", "stop"};
    static const char *const states[] = {"paused", "running", "stopped"};
    for (int i = 0; i < 3; i++) {
        int rc = cli(verbs[i], RUN_ID, "--token=tok", NULL);
        cr_assert_eq(rc, 0, "%s: rc %d, err %s", verbs[i], rc, err_text);
        rec_t r = req(0);
        char path[128], line[256];
        snprintf(path, sizeof(path), "/v1/runs/%s/%s", RUN_ID, verbs[i]);
        cr_assert_str_eq(r.method, "POST");
        cr_assert_str_eq(r.path, path);
        cr_assert_str_eq(r.auth, "Bearer tok");
        cr_assert(!r.has_body);
        snprintf(line, sizeof(line), "run %s is now %s\n", RUN_ID, states[i]);
        cr_assert_str_eq(out_text, line);
    }
}

Test(cli, invalid_transition_prints_the_api_error_and_exits_4)
{
    int rc = cli("pause", PAUSED_ID, NULL);
    cr_assert_eq(rc, 4);
    cr_assert_str_eq(err_text,
                     "baton: run " PAUSED_ID " is paused; cannot pause (invalid_transition)\n");
    cr_assert_str_eq(out_text, "");
}

/* ------------------------------------------------------------ exit codes */

Test(cli, api_errors_map_to_exit_codes)
{
    static const struct {
        const char *job;
        int rc;
        const char *msg;
    } cases[] = {
        {"nosuch", 3, "baton: no job 'nosuch' (not_found)\n"},
        {"full", 4, "baton: job 'full' already has 1 active run (conflict)\n"},
        {"busy", 5, "baton: the pending queue is full (busy)\n"},
        {"draining", 6, "baton: the service is draining (shutting_down)\n"},
        {"secret", 7, "baton: missing or wrong token (unauthorized)\n"},
        {"hostile", 7, "baton: Host not allowed (forbidden)\n"},
        {"badreq", 1, "baton: param 'n' must be an integer (bad_request)\n"},
        {"crash", 1, "baton: a bug (internal)\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = cli("start", cases[i].job, NULL);
        cr_assert_eq(rc, cases[i].rc, "%s: rc %d", cases[i].job, rc);
        cr_assert_str_eq(err_text, cases[i].msg);
    }
    cr_assert_eq(cli("start", "secret", "--token", "right", NULL), 0);
    cr_assert_eq(cli("status", MISSING_ID, NULL), 3);
    cr_assert_eq(cli("events", MISSING_ID, NULL), 3);
    cr_assert_eq(cli("stop", MISSING_ID, NULL), 3);
}

Test(cli, control_characters_from_the_server_are_not_printed)
{
    cr_assert_eq(cli("start", "escjob", NULL), 3);
    cr_assert_str_eq(err_text, "baton: no job ?[31mred (not_found)\n");
    char buf[16];
    cr_assert_str_eq(cli_clean(buf, sizeof(buf), "a\tb\x1b\x7f"), "a?b??");
    cr_assert_str_eq(cli_clean(buf, 4, "abcdef"), "abc");
    cr_assert_str_eq(cli_clean(buf, sizeof(buf), NULL), "-");
}

Test(cli, a_non_json_error_answer_still_maps_by_status)
{
    cr_assert_eq(cli("start", "notjson", NULL), 1);
    assert_contains(err_text, "HTTP 502");
}

Test(cli, connection_refused_exits_6)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    cr_assert(bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    cr_assert(getsockname(s, (struct sockaddr *)&sa, &len) == 0);
    close(s); /* nothing listens on this port now */
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", ntohs(sa.sin_port));
    cr_assert_eq(cli("status", "--url", url, NULL), 6);
    assert_contains(err_text, "baton: cannot connect to http://127.0.0.1:");
}

Test(cli, timeout_exits_6)
{
    int rc = cli("status", "slow", "--timeout", "0.3", NULL);
    cr_assert_eq(rc, 6, "rc %d err %s", rc, err_text);
    assert_contains(err_text, "within 300 ms");
    cr_assert_str_eq(strchr(err_text, '\n') + 1, "");
    /* A command that times out may still happen: the CLI says so. */
    rc = cli("start", "slowjob", "--timeout", "0.3", NULL);
    cr_assert_eq(rc, 6, "rc %d err %s", rc, err_text);
    assert_contains(err_text, "the command may still take effect");
}

Test(cli, usage_errors_exit_2)
{
    cr_assert_eq(cli("frobnicate", NULL), 2);
    assert_contains(err_text, "unknown command 'frobnicate'");
    cr_assert_eq(cli("pause", NULL), 2);
    assert_contains(err_text, "missing RUN");
    assert_contains(err_text, "usage: baton pause RUN");
    cr_assert_eq(cli("pause", "a", "b", NULL), 2);
    cr_assert_eq(cli("status", "--bogus", NULL), 2);
    cr_assert_eq(cli("status", "-x", NULL), 2);
    cr_assert_eq(cli("status", "--url", NULL), 2);
    cr_assert_eq(cli("status", "--json=yes", NULL), 2);
    cr_assert_eq(cli("runs", "--limit", "0", NULL), 2);
    cr_assert_eq(cli("runs", "--limit", "1001", NULL), 2);
    cr_assert_eq(cli("runs", "--limit", "ten", NULL), 2);
    cr_assert_eq(cli("runs", "--state", "running,sleeping", NULL), 2);
    assert_contains(err_text, "unknown state 'sleeping'");
    cr_assert_eq(cli("runs", "extra", NULL), 2);
    cr_assert_eq(cli("status", "--timeout", "-1", NULL), 2);
    cr_assert_eq(cli("status", "--timeout", "abc", NULL), 2);
    cr_assert_eq(cli("status", "--url", "ftp://x", NULL), 2);
    cr_assert_eq(cli("start", "--param", "a=1", NULL), 2); /* no JOB */
    cr_assert_eq(nreqs(), 0);
}

Test(cli, help_prints_usage_and_exit_codes)
{
    cr_assert_eq(cli("start", "--help", NULL), 0);
    assert_contains(out_text, "usage: baton start JOB");
    assert_contains(out_text, "--idempotency-key");
    assert_contains(out_text, "Exit codes:");
    assert_contains(out_text, "11  watch: the run was stopped");
    cr_assert_eq(cli("watch", "-h", NULL), 0);
    assert_contains(out_text, "usage: baton watch RUN");
    cr_assert_eq(cli("help", NULL), 0);
    assert_contains(out_text, "runs [--job JOB]");
    assert_contains(out_text, "--timeout SECS");
    cr_assert_eq(cli("help", "runs", NULL), 0);
    assert_contains(out_text, "usage: baton runs");
    cr_assert_eq(cli("help", "nope", NULL), 2);
    cr_assert_eq(nreqs(), 0);
}

/* ---------------------------------------------------------------- config */

static int resolver_calls;
static char resolver_path[256];

static int fake_resolver(const char *path, char *url, size_t urllen, char *token, size_t toklen,
                         char *err, size_t errlen)
{
    resolver_calls++;
    snprintf(resolver_path, sizeof(resolver_path), "%s", path);
    if (strstr(path, "broken") != NULL) {
        snprintf(err, errlen, "%s:3:1: unknown key 'prot' in [server]", path);
        return -1;
    }
    snprintf(url, urllen, "%s", strstr(path, "badurl") ? "gopher://x" : fake.url);
    snprintf(token, toklen, "cfgtok");
    return 0;
}

static int nowhere_resolver(const char *path, char *url, size_t urllen, char *token, size_t toklen,
                            char *err, size_t errlen)
{
    resolver_calls++;
    snprintf(url, urllen, "http://127.0.0.1:1"); /* must lose to the env/flag */
    snprintf(token, toklen, "cfgtok");
    return 0;
}

Test(cli, config_gives_url_and_token_when_nothing_overrides)
{
    resolver = fake_resolver;
    set_env("BATON_URL", NULL);
    cr_assert_eq(cli("status", RUN_ID, "--config", "my.toml", NULL), 0, "%s", err_text);
    cr_assert_eq(resolver_calls, 1);
    cr_assert_str_eq(resolver_path, "my.toml");
    cr_assert_str_eq(req(0).auth, "Bearer cfgtok");
    /* BATON_CONFIG names the file when --config does not. */
    set_env("BATON_CONFIG", "env.toml");
    cr_assert_eq(cli("status", RUN_ID, NULL), 0);
    cr_assert_str_eq(resolver_path, "env.toml");
    cr_assert_eq(cli("status", RUN_ID, "--config", "flag.toml", NULL), 0);
    cr_assert_str_eq(resolver_path, "flag.toml");
}

Test(cli, flags_beat_env_beat_config)
{
    resolver = nowhere_resolver;
    /* BATON_URL (the fake) beats the config's URL, and since it names
     * another service the config's token is not sent there. */
    cr_assert_eq(cli("status", RUN_ID, "--config", "c.toml", NULL), 0, "%s", err_text);
    cr_assert_str_eq(req(0).auth, "", "the config's token must stay with the config's service");
    set_env("BATON_TOKEN", "envtok");
    cr_assert_eq(cli("status", RUN_ID, "--config", "c.toml", NULL), 0);
    cr_assert_str_eq(req(0).auth, "Bearer envtok");
    cr_assert_eq(cli("status", RUN_ID, "--config", "c.toml", "--token", "flagtok", NULL), 0);
    cr_assert_str_eq(req(0).auth, "Bearer flagtok");
    /* --url beats BATON_URL. */
    set_env("BATON_URL", "http://127.0.0.1:1");
    char url[80];
    snprintf(url, sizeof(url), "%s/", fake.url); /* a trailing slash is dropped */
    cr_assert_eq(cli("status", RUN_ID, "--url", url, NULL), 0, "%s", err_text);
    cr_assert_str_eq(req(0).path, "/v1/runs/" RUN_ID);
    /* With both URL and token given, the config is not read at all. */
    resolver_calls = 0;
    cr_assert_eq(cli("status", RUN_ID, "--url", fake.url, "--config", "broken.toml", NULL), 0);
    cr_assert_eq(resolver_calls, 0);
}

Test(cli, missing_default_config_is_not_an_error)
{
    resolver = fake_resolver;
    resolver_calls = 0;
    cr_assert_eq(cli("status", RUN_ID, NULL), 0, "%s", err_text);
    cr_assert_eq(resolver_calls, 0);
    cr_assert_str_eq(req(0).auth, "");
    /* A ./config.toml that exists is read. */
    FILE *f = fopen("config.toml", "w");
    cr_assert(f != NULL);
    fclose(f);
    cr_assert_eq(cli("status", RUN_ID, NULL), 0);
    cr_assert_eq(resolver_calls, 1);
    cr_assert_str_eq(resolver_path, "config.toml");
}

Test(cli, config_errors_exit_8)
{
    resolver = fake_resolver;
    cr_assert_eq(cli("status", "--config", "broken.toml", NULL), 8);
    cr_assert_str_eq(err_text, "baton: broken.toml:3:1: unknown key 'prot' in [server]\n");
    set_env("BATON_URL", NULL);
    cr_assert_eq(cli("status", "--config", "badurl.toml", NULL), 8);
    assert_contains(err_text, "bad service URL 'gopher://x'");
    cr_assert_eq(nreqs(), 0);
}

/* ---------------------------------------------------------------- status */

Test(cli, status_of_one_run_shows_detail_with_absolute_times)
{
    cr_assert_eq(cli("status", RUN_ID, NULL), 0, "%s", err_text);
    rec_t r = req(0);
    cr_assert_str_eq(r.method, "GET");
    cr_assert_str_eq(r.path, "/v1/runs/" RUN_ID);
    assert_contains(out_text, "ID          " RUN_ID "\n");
    assert_contains(out_text, "Job         nightly-export\n");
    assert_contains(out_text, "State       running\n");
    assert_contains(out_text, "Progress    3/10 (30%)\n");
    assert_contains(out_text, "Params      {\"limit\":100}\n");
    assert_contains(out_text, "Created     2026-11-25T14:03:07.123Z (3m ago)\n");
    assert_contains(out_text, "Updated     2026-11-25T14:03:09.001Z (2m ago)\n");
    assert_contains(out_text, "Finished    -\n");
    assert_contains(out_text, "Elapsed     2m59s\n");
    assert_contains(out_text, "Last error  -\n");
}

Test(cli, status_json_prints_the_run_as_is)
{
    cr_assert_eq(cli("status", RUN_ID, "--json", NULL), 0);
    char expect[2048];
    run_json(expect, sizeof(expect), RUN_ID, "nightly-export", "running", 3, 10, NULL);
    strcat(expect, "\n");
    cr_assert_str_eq(out_text, expect);
}

Test(cli, status_without_run_lists_active_runs_over_all_pages)
{
    cr_assert_eq(cli("status", NULL), 0, "%s", err_text);
    cr_assert_eq(nreqs(), 3);
    rec_t r = req(0);
    cr_assert_str_eq(r.path, "/v1/runs");
    cr_assert_str_eq(r.query, "state=pending,running,paused&limit=1000");
    cr_assert_str_eq(req(1).query, "state=pending,running,paused&limit=1000&after=c1");
    cr_assert_str_eq(req(2).after, "c2");
    const char *expect_head = "ID                                    JOB             STATE    "
                              "PROGRESS  AGE     UPDATED\n"
                              "0195f3c2-0000-7000-8000-000000000010  nightly-export  running  "
                              "0/10      3m ago  2m ago\n"
                              "0195f3c2-0000-7000-8000-000000000011  backup          running  "
                              "1/10      3m ago  2m ago\n";
    cr_assert(strncmp(out_text, expect_head, strlen(expect_head)) == 0, "got:\n%s", out_text);
    assert_contains(out_text, "0195f3c2-0000-7000-8000-000000000030");
    int lines = 0;
    for (const char *p = out_text; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 6); /* header + 5 runs */
}

static void no_runs_route(const rec_t *r, answer_t *a)
{
    a->status = 200;
    snprintf(a->body, sizeof(a->body), "{\"runs\":[],\"next\":null}");
}

Test(cli, status_without_active_runs_says_so)
{
    fake.route = no_runs_route;
    cr_assert_eq(cli("status", NULL), 0);
    cr_assert_str_eq(out_text, "no active runs\n");
    cr_assert_eq(cli("runs", NULL), 0);
    cr_assert_str_eq(out_text, "no runs\n");
}

/* ------------------------------------------------------------------ runs */

Test(cli, runs_sends_filters_and_reads_one_page)
{
    cr_assert_eq(
        cli("runs", "--job", "nightly export", "--state", "running,failed", "--limit", "2", NULL),
        0, "%s", err_text);
    cr_assert_eq(nreqs(), 1);
    cr_assert_str_eq(req(0).query, "job=nightly export&state=running,failed&limit=2");
    int lines = 0;
    for (const char *p = out_text; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 3);
    assert_contains(err_text, "more runs: use --all");
}

Test(cli, runs_all_follows_the_next_cursor)
{
    cr_assert_eq(cli("runs", "--all", NULL), 0, "%s", err_text);
    cr_assert_eq(nreqs(), 3);
    cr_assert_str_eq(req(0).query, "limit=1000");
    cr_assert_str_eq(req(1).query, "limit=1000&after=c1");
    cr_assert_str_eq(req(2).query, "limit=1000&after=c2");
    cr_assert_str_eq(err_text, "");
    assert_contains(out_text, "0195f3c2-0000-7000-8000-000000000010");
    assert_contains(out_text, "0195f3c2-0000-7000-8000-000000000021");
    assert_contains(out_text, "0195f3c2-0000-7000-8000-000000000030");
}

Test(cli, runs_all_json_merges_the_pages)
{
    cr_assert_eq(cli("runs", "--all", "--json", "--limit", "2", NULL), 0);
    cr_assert_str_eq(req(0).query, "limit=2");
    cJSON *doc = cJSON_Parse(out_text);
    cr_assert(doc != NULL, "%s", out_text);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "runs")), 5);
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(doc, "next")));
    cJSON_Delete(doc);
}

Test(cli, runs_json_without_all_prints_the_page_as_is)
{
    cr_assert_eq(cli("runs", "--json", NULL), 0);
    cr_assert_eq(nreqs(), 1);
    assert_contains(out_text, "\"next\":\"c1\"}\n");
    cr_assert_str_eq(err_text, "");
}

/* ---------------------------------------------------------------- events */

Test(cli, events_prints_the_history_as_a_table)
{
    cr_assert_eq(cli("events", RUN_ID, NULL), 0, "%s", err_text);
    cr_assert_str_eq(req(0).path, "/v1/runs/" RUN_ID "/events");
    cr_assert_str_eq(out_text, "SEQ   AT                        FROM     TO       CAUSE\n"
                               "41    2026-11-25T14:03:07.123Z  -        running  start\n"
                               "45    2026-11-25T14:03:08.500Z  running  paused   pause\n"
                               "1002  2026-11-25T14:03:09.001Z  paused   running  resume\n");
    cr_assert_eq(cli("events", RUN_ID, "--json", NULL), 0);
    assert_contains(out_text, "{\"events\":[{\"seq\":41");
}

/* ----------------------------------------------------------------- watch */

typedef struct step {
    const char *state;
    int done, total;
    const char *last_error;
} step_t;

static const step_t *steps;
static int nsteps;

/* Each poll of the run moves one step on, staying on the last. */
static void steps_route(const rec_t *r, answer_t *a)
{
    if (strcmp(r->method, "GET") != 0 || strcmp(r->path, "/v1/runs/" RUN_ID) != 0)
        return answer_error(a, 404, "not_found", "no route");
    int i = fake.polls < nsteps ? fake.polls : nsteps - 1;
    fake.polls++;
    a->status = 200;
    run_json(a->body, sizeof(a->body), RUN_ID, "nightly-export", steps[i].state, steps[i].done,
             steps[i].total, steps[i].last_error);
}

static const step_t completing[] = {
    {"pending", 0, -1, NULL}, {"running", 0, 4, NULL}, {"running", 0, 4, NULL},
    {"running", 2, 4, NULL},  {"running", 3, 4, NULL}, {"completed", 4, 4, NULL},
};

Test(cli, watch_follows_a_run_to_completion)
{
    steps = completing;
    nsteps = 6;
    fake.route = steps_route;
    int rc = cli("watch", RUN_ID, NULL);
    cr_assert_eq(rc, 0, "rc %d err %s", rc, err_text);
    cr_assert_eq(nreqs(), 6);
    /* Not a terminal: one line per change (the repeated 0/4 prints once). */
    cr_assert_str_eq(out_text, "pending - 2m59s\n"
                               "running 0/4 (0%) 2m59s\n"
                               "running 2/4 (50%) 2m59s\n"
                               "running 3/4 (75%) 2m59s\n"
                               "completed 4/4 (100%) 1m12s\n"
                               "run " RUN_ID " completed in 1m12s\n");
    cr_assert_str_eq(err_text, "");
}

Test(cli, watch_on_a_terminal_redraws_one_line)
{
    steps = completing;
    nsteps = 6;
    fake.route = steps_route;
    tty_mode = 1;
    cr_assert_eq(cli("watch", RUN_ID, NULL), 0);
    assert_contains(out_text, "\r[..............................] 0/4 (0%)  running  2m59s\033[K");
    assert_contains(out_text, "\r[###############...............] 2/4 (50%)  running  2m59s\033[K");
    assert_contains(out_text,
                    "\r[##############################] 4/4 (100%)  completed  1m12s\033[K\n");
    /* Only the final line ends with a newline before the summary. */
    int newlines = 0;
    for (const char *p = out_text; *p; p++)
        newlines += *p == '\n';
    cr_assert_eq(newlines, 2);
}

Test(cli, watch_of_a_failing_run_exits_10)
{
    static const step_t failing[] = {{"running", 1, 3, NULL}, {"failed", 1, 3, "exit status 2"}};
    steps = failing;
    nsteps = 2;
    fake.route = steps_route;
    cr_assert_eq(cli("watch", RUN_ID, NULL), 10);
    cr_assert_str_eq(err_text, "baton: run " RUN_ID " failed after 1m12s: exit status 2\n");
}

Test(cli, watch_of_a_stopped_run_exits_11)
{
    static const step_t stopping[] = {{"paused", 1, 3, NULL}, {"stopped", 1, 3, NULL}};
    steps = stopping;
    nsteps = 2;
    fake.route = steps_route;
    cr_assert_eq(cli("watch", RUN_ID, NULL), 11);
    cr_assert_str_eq(err_text, "baton: run " RUN_ID " stopped after 1m12s\n");
}

Test(cli, watch_json_prints_each_change_as_one_line)
{
    steps = completing;
    nsteps = 6;
    fake.route = steps_route;
    cr_assert_eq(cli("watch", RUN_ID, "--json", NULL), 0);
    int lines = 0;
    for (char *line = strtok(out_text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        cJSON *doc = cJSON_Parse(line);
        cr_assert(doc != NULL, "not JSON: %s", line);
        cJSON_Delete(doc);
        lines++;
    }
    cr_assert_eq(lines, 5);
}

static void *interrupt_soon(void *arg)
{
    usleep(100 * 1000);
    kill(getpid(), SIGINT);
    return NULL;
}

Test(cli, watch_on_a_terminal_ends_its_line_on_ctrl_c)
{
    static const step_t forever[] = {{"running", 1, 3, NULL}};
    steps = forever;
    nsteps = 1;
    fake.route = steps_route;
    tty_mode = 1;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, interrupt_soon, NULL), 0);
    int rc = cli("watch", RUN_ID, NULL);
    pthread_join(t, NULL);
    cr_assert_eq(rc, 130);
    size_t n = strlen(out_text);
    cr_assert(n > 0 && out_text[n - 1] == '\n', "%s", out_text);
    /* The handler is gone again: SIGINT's disposition is back to default. */
    struct sigaction now;
    sigaction(SIGINT, NULL, &now);
    cr_assert(now.sa_handler == SIG_DFL);
}

Test(cli, watch_of_a_missing_run_exits_3)
{
    cr_assert_eq(cli("watch", MISSING_ID, NULL), 3);
    assert_contains(err_text, "(not_found)");
}

/* --------------------------------------------------------------- format */

Test(cli_format, relative_times_and_durations)
{
    char b[32];
    cli_fmt_ago(b, sizeof(b), 500);
    cr_assert_str_eq(b, "now");
    cli_fmt_ago(b, sizeof(b), 42000);
    cr_assert_str_eq(b, "42s ago");
    cli_fmt_ago(b, sizeof(b), 3 * 60000 + 5000);
    cr_assert_str_eq(b, "3m ago");
    cli_fmt_ago(b, sizeof(b), 5 * 3600000LL);
    cr_assert_str_eq(b, "5h ago");
    cli_fmt_ago(b, sizeof(b), 12 * 86400000LL);
    cr_assert_str_eq(b, "12d ago");
    cli_fmt_ago(b, sizeof(b), -120000);
    cr_assert_str_eq(b, "in 2m");
    cli_fmt_duration(b, sizeof(b), 850);
    cr_assert_str_eq(b, "850ms");
    cli_fmt_duration(b, sizeof(b), 187000);
    cr_assert_str_eq(b, "3m07s");
    cli_fmt_duration(b, sizeof(b), 7500000);
    cr_assert_str_eq(b, "2h05m");
    cli_fmt_progress(b, sizeof(b), 3, -1);
    cr_assert_str_eq(b, "3/?");
    cli_fmt_progress(b, sizeof(b), 0, -1);
    cr_assert_str_eq(b, "-");
}

Test(cli_format, parses_rfc3339)
{
    long long a, b;
    cr_assert(cli_time_parse("1970-01-01T00:00:01.5Z", &a));
    cr_assert_eq(a, 1500);
    cr_assert(cli_time_parse("2026-11-25T14:03:07.123Z", &a));
    cr_assert(cli_time_parse("2026-11-25T15:03:07.123+01:00", &b));
    cr_assert_eq(a, b);
    cr_assert(!cli_time_parse("2026-11-25 junk", &a));
    cr_assert(!cli_time_parse("2026-11-25T14:03:07", &a)); /* no zone */
    cr_assert(!cli_time_parse("2026-13-25T14:03:07Z", &a));
}

Test(cli_format, bar_fills_in_proportion)
{
    char b[64];
    cli_fmt_bar(b, sizeof(b), 1, 4, 8, 0);
    cr_assert_str_eq(b, "[##......]");
    cli_fmt_bar(b, sizeof(b), 9, 4, 8, 0);
    cr_assert_str_eq(b, "[########]");
    cli_fmt_bar(b, sizeof(b), 5, -1, 8, 2);
    cr_assert_str_eq(b, "[  ===   ]");
}

Test(cli_format, table_aligns_columns_by_characters)
{
    static const char *const hdr[] = {"A", "LONGER", "C"};
    cli_table_t *t = cli_table_create(3, hdr);
    const char *r1[] = {"xyz", "é", NULL};
    cr_assert_eq(cli_table_add(t, r1), 0);
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    cli_table_print(t, f);
    fclose(f);
    cr_assert_str_eq(buf, "A    LONGER  C\nxyz  é       -\n");
    free(buf);
    cli_table_destroy(t);
    cli_table_destroy(NULL);
}
