/*
 * api_harness.c: the live service behind the API fuzz targets, and the
 * invariants of docs/api.md every answer is checked against. See
 * api_harness.h.
 *
 * The runtime is deterministic (no threads: actors, the pinned store
 * included, run inside bt_ask_wait on the fuzzer's thread, under a
 * virtual clock), so an input runs the same way each time it is replayed
 * against the same store, and no scheduler thread adds coverage noise.
 */
#define _GNU_SOURCE
#include "api_harness.h"

#include "executor.h"
#include "log.h"
#include "runstore.h"

#include <baton/baton.h>
#include <cjson/cJSON.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEC_NS (1000000000ull)
#define MS_NS  (1000000ull)

/* --------------------------------------------------------- job kinds */

typedef struct fk {
    bt_ref_t executor;
    char run_id[EX_RUN_ID_MAX];
    bool instant;
} fk_t;

static int fk_init(bt_ctx_t *ctx, fk_t *k, const ex_kind_args_t *a, bool instant)
{
    (void)ctx;
    k->executor = a->executor;
    k->instant = instant;
    snprintf(k->run_id, sizeof(k->run_id), "%s", a->run_id);
    return BT_OK;
}

static int instant_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    return fk_init(ctx, state, arg, true);
}

static int idle_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    return fk_init(ctx, state, arg, false);
}

static int fk_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    fk_t *k = state;
    switch (msg->id) {
    case EX_K_RUN:
    case EX_K_RESUME:
        if (k->instant) {
            ex_kind_progress(ctx, k->executor, k->run_id, 1, 1);
            ex_kind_done(ctx, k->executor, k->run_id);
            bt_stop_self(ctx);
        }
        break;
    case EX_K_PAUSE:
        ex_kind_paused(ctx, k->executor, k->run_id);
        break;
    case EX_K_STOP:
        ex_kind_stopped(ctx, k->executor, k->run_id);
        bt_stop_self(ctx);
        break;
    default:
        break;
    }
    return BT_OK;
}

/* params: an object; "reject" refused; "n", if present, a number. */
static int fk_validate(const char *params, char *err, size_t errlen)
{
    cJSON *p = cJSON_Parse(params);
    int rc = 0;
    if (!cJSON_IsObject(p)) {
        snprintf(err, errlen, "params must be an object");
        rc = -1;
    } else if (cJSON_GetObjectItemCaseSensitive(p, "reject") != NULL) {
        snprintf(err, errlen, "params.reject is set");
        rc = -1;
    } else {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(p, "n");
        if (n != NULL && !cJSON_IsNumber(n)) {
            snprintf(err, errlen, "params.n must be a number");
            rc = -1;
        }
    }
    cJSON_Delete(p);
    return rc;
}

static const bt_actor_type_t instant_type = {.name = "fuzz-instant",
                                             .state_size = sizeof(fk_t),
                                             .init = instant_init,
                                             .dispatch = fk_dispatch};
static const bt_actor_type_t idle_type = {
    .name = "fuzz-idle", .state_size = sizeof(fk_t), .init = idle_init, .dispatch = fk_dispatch};
static const ex_kind_t instant_kind = {.name = "instant",
                                       .type = &instant_type,
                                       .validate = fk_validate,
                                       .recovery = EX_RECOVERY_FAIL};
static const ex_kind_t idle_kind = {
    .name = "idle", .type = &idle_type, .validate = fk_validate, .recovery = EX_RECOVERY_FAIL};
static const ex_kind_t *const kinds[] = {&instant_kind, &idle_kind};

static const ex_job_t ex_jobs[] = {
    {.name = "quick", .kind = "instant", .max_active = 1},
    {.name = "idle", .kind = "idle", .max_active = 2},
    {.name = "other", .kind = "idle", .max_active = 1, .stop_grace_ns = 50 * MS_NS},
};
static const bt_api_job_t api_jobs[] = {
    {.name = "quick", .kind = "instant", .params_json = "{\"n\":1}", .max_active = 1},
    {.name = "idle", .kind = "idle", .params_json = "{}", .max_active = 2},
    {.name = "other",
     .kind = "idle",
     .params_json = "{\"name\":\"x\",\"nested\":{\"a\":[1,2]}}",
     .max_active = 1,
     .stop_grace_ns = 50 * MS_NS},
};
#define NJOBS ((uint32_t)(sizeof(ex_jobs) / sizeof(ex_jobs[0])))

/* ----------------------------------------------------------- service */

static struct {
    bool up;
    char dir[256];
    char db[320];
    bt_runtime_t *rt;
    bt_ref_t store, executor;
    bt_api_t api;
    unsigned long inputs;
    char runs[FZ_MAX_RUNS][EX_RUN_ID_MAX];
    int nruns;
} fz;

void fz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz invariant violated: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

static void remove_db(void)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char p[400];
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s%s", fz.db, suffixes[i]);
        unlink(p);
    }
}

static void service_down(void)
{
    if (!fz.up)
        return;
    if (bt_runtime_shutdown(fz.rt, 10 * SEC_NS) != BT_OK)
        fz_fail("the runtime did not shut down");
    fz.rt = NULL;
    remove_db();
    char p[300];
    snprintf(p, sizeof(p), "%s/logs", fz.dir);
    rmdir(p);
    rmdir(fz.dir);
    fz.up = false;
    fz.nruns = 0;
}

static void service_up(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(fz.dir, sizeof(fz.dir), "%s/baton-fuzz-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
    if (mkdtemp(fz.dir) == NULL)
        fz_fail("mkdtemp %s failed", fz.dir);
    snprintf(fz.db, sizeof(fz.db), "%s/runs.db", fz.dir);
    bt_runtime_config_t rcfg = {.deterministic = true};
    int rc;
    if ((rc = bt_runtime_create(&rcfg, &fz.rt)) != BT_OK)
        fz_fail("runtime: %s", bt_strerror(rc));
    rs_config_t scfg = {.path = fz.db, .synchronous = RS_SYNC_OFF};
    if ((rc = rs_spawn(fz.rt, &scfg, &fz.store)) != BT_OK)
        fz_fail("run store: %s", bt_strerror(rc));
    ex_config_t ecfg = {.store = fz.store,
                        .state_dir = fz.dir,
                        .kinds = kinds,
                        .nkinds = sizeof(kinds) / sizeof(kinds[0]),
                        .jobs = ex_jobs,
                        .njobs = NJOBS,
                        .max_running = 2,
                        .max_pending = 1,
                        .force_slack_ns = 10 * MS_NS};
    if ((rc = ex_spawn(fz.rt, &ecfg, &fz.executor)) != BT_OK)
        fz_fail("executor: %s", bt_strerror(rc));
    fz.api = (bt_api_t){.rt = fz.rt,
                        .executor = fz.executor,
                        .store = fz.store,
                        .jobs = api_jobs,
                        .njobs = NJOBS,
                        .store_timeout_ns = 5 * SEC_NS,
                        .command_slack_ns = 1 * SEC_NS,
                        .started_ns = bt_now(fz.rt)};
    bt_api_set_phase(&fz.api, BT_API_READY);
    fz.up = true;
    fz.nruns = 0;
}

static void at_exit(void)
{
    service_down();
}

/* Stops the runs the last input started; refusals (already finished,
 * never started) are fine. */
static void stop_runs(void)
{
    for (int i = 0; i < fz.nruns; i++) {
        bt_msg_t *cmd = ex_cmd_new(EX_MSG_STOP, fz.runs[i], NULL, NULL);
        bt_msg_t *reply = NULL;
        if (cmd == NULL)
            fz_fail("out of memory");
        int rc = bt_ask_wait(fz.rt, fz.executor, cmd, 10 * SEC_NS, &reply);
        if (rc != BT_OK)
            fz_fail("stop of %s: %s", fz.runs[i], bt_strerror(rc));
        bt_msg_free(reply);
    }
    fz.nruns = 0;
}

void fz_begin_input(void)
{
    if (!fz.up) {
        bt_log_init(BT_LOG_OFF, 2);
        static bool registered;
        if (!registered) {
            atexit(at_exit);
            registered = true;
        }
        service_up();
    } else if (++fz.inputs % FZ_RESET_EVERY == 0) {
        service_down();
        service_up();
    } else {
        stop_runs();
    }
    bt_api_set_phase(&fz.api, BT_API_READY);
}

bt_api_t *fz_api(void)
{
    return &fz.api;
}

int fz_run_count(void)
{
    return fz.nruns;
}

const char *fz_run_id(int i)
{
    return i >= 0 && i < fz.nruns ? fz.runs[i] : NULL;
}

/* ------------------------------------------------------- invariants */

static const char *header_of(const bt_http_resp_t *resp, const char *name)
{
    for (uint32_t i = 0; i < resp->nheaders; i++) {
        if (strcasecmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value;
    }
    return NULL;
}

static int status_of_code(const char *code)
{
    static const struct {
        const char *code;
        int status;
    } map[] = {
        {"bad_request", 400},        {"unauthorized", 401},       {"forbidden", 403},
        {"not_found", 404},          {"method_not_allowed", 405}, {"conflict", 409},
        {"invalid_transition", 409}, {"too_large", 413},          {"busy", 429},
        {"store_error", 500},        {"internal", 500},           {"shutting_down", 503},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(map[i].code, code) == 0)
            return map[i].status;
    }
    return -1;
}

static bool is_run_state(const char *s)
{
    static const char *const states[] = {"pending",   "running", "paused",
                                         "completed", "failed",  "stopped"};
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
        if (strcmp(s, states[i]) == 0)
            return true;
    }
    return false;
}

/* A run object: an id of 36 characters and a known state. */
static void check_run(const cJSON *run, const char *what)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(run, "id");
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(run, "state");
    if (!cJSON_IsString(id) || strlen(id->valuestring) != RS_ID_LEN)
        fz_fail("%s: the run has no valid id", what);
    if (!cJSON_IsString(state) || !is_run_state(state->valuestring))
        fz_fail("%s: the run has no valid state", what);
}

static void check_answer(const char *method, const char *path, const bt_http_resp_t *resp)
{
    int st = resp->status;
    static const int allowed[] = {200, 201, 400, 401, 403, 404, 405, 409, 413, 429, 500, 503};
    bool known = false;
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        known |= st == allowed[i];
    if (!known)
        fz_fail("%s %s: status %d is not in the API's table", method, path, st);
    if (resp->body == NULL || resp->body_len != strlen(resp->body))
        fz_fail("%s %s: the body is missing or has a NUL byte", method, path);
    bool metrics = strcmp(path, "/metrics") == 0 && st == 200;
    if (metrics) {
        if (resp->content_type == NULL || strncmp(resp->content_type, "text/plain", 10) != 0)
            fz_fail("GET /metrics: content type is not text/plain");
        return;
    }
    if (resp->content_type != NULL && strcmp(resp->content_type, "application/json") != 0)
        fz_fail("%s %s: content type %s is not JSON", method, path, resp->content_type);
    cJSON *body = cJSON_ParseWithLength(resp->body, resp->body_len);
    if (!cJSON_IsObject(body))
        fz_fail("%s %s: status %d, the body is not a JSON object: %.300s", method, path, st,
                resp->body);
    if (st >= 400) {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(body, "error");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
        bool readyz = strcmp(path, "/readyz") == 0 && st == 503;
        if (readyz) {
            if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(body, "status")))
                fz_fail("/readyz 503 without a status: %s", resp->body);
        } else if (!cJSON_IsString(code) || !cJSON_IsString(msg) || msg->valuestring[0] == '\0') {
            fz_fail("%s %s: status %d without error.code and error.message: %.300s", method, path,
                    st, resp->body);
        } else if (status_of_code(code->valuestring) != st) {
            fz_fail("%s %s: error code %s with status %d", method, path, code->valuestring, st);
        }
        /* Nothing here fails the store or the runtime: a 500 is a bug. */
        if (st == 500)
            fz_fail("%s %s: 500: %.300s", method, path, resp->body);
        if (st == 405 && header_of(resp, "Allow") == NULL)
            fz_fail("%s %s: 405 without Allow", method, path);
        if (st == 429 && header_of(resp, "Retry-After") == NULL)
            fz_fail("%s %s: 429 without Retry-After", method, path);
    } else if (st == 201) {
        check_run(body, path);
        const char *loc = header_of(resp, "Location");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "id");
        if (loc == NULL || strncmp(loc, "/v1/runs/", 9) != 0 || strcmp(loc + 9, id->valuestring))
            fz_fail("%s %s: 201 without the run's Location", method, path);
        if (fz.nruns < FZ_MAX_RUNS)
            snprintf(fz.runs[fz.nruns++], EX_RUN_ID_MAX, "%s", id->valuestring);
    } else if (strncmp(path, "/v1/runs/", 9) == 0 && strchr(path + 9, '/') == NULL) {
        check_run(body, path); /* GET of one run */
    } else if (strcmp(method, "POST") == 0 && strncmp(path, "/v1/runs/", 9) == 0) {
        check_run(body, path); /* pause, resume, stop */
    }
    cJSON_Delete(body);
}

void fz_request(const char *method, const char *path, const char *const *query,
                const char *const *headers, const char *body, size_t body_len, bt_http_resp_t *resp)
{
    memset(resp, 0, sizeof(*resp));
    bt_http_req_t *req = bt_http_req_new(method, path, query, headers, body, body_len);
    if (req == NULL)
        fz_fail("out of memory");
    bt_api_handle(&fz.api, req, resp);
    bt_http_req_free(req);
    /* FUZZ_TRACE=1: print each exchange (to check what the seeds reach). */
    static int trace = -1;
    if (trace < 0)
        trace = getenv("FUZZ_TRACE") != NULL;
    if (trace)
        fprintf(stderr, "%s %s -> %d %.160s\n", method, path, resp->status,
                resp->body != NULL ? resp->body : "");
    check_answer(method, path, resp);
}
