/*
 * api.c: the routes of docs/api.md. See api.h.
 *
 * Every answer is built here from the executor's and the store's replies;
 * the HTTP layer (server/http.c) has already checked the Host header, the
 * token and the sizes. Nothing from the request is trusted: ids, job names,
 * query arguments and bodies are checked before they reach an actor, and a
 * failure anywhere is an error answer, never a crash.
 */
#include "service/api.h"

#include "executor.h"
#include "log.h"
#include "runstore.h"

#include <cjson/cJSON.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JSON_MAX_DEPTH           32
#define DEFAULT_STORE_TIMEOUT_NS (10ull * 1000000000ull)
#define DEFAULT_COMMAND_SLACK_NS (30ull * 1000000000ull)
#define LIST_DEFAULT_LIMIT       100
#define LIST_MAX_LIMIT           1000
#define IDEMPOTENCY_KEY_MAX      128

enum { CMD_START, CMD_PAUSE, CMD_RESUME, CMD_STOP };

void bt_api_set_phase(bt_api_t *api, bt_api_phase_t phase)
{
    __atomic_store_n(&api->phase, (int)phase, __ATOMIC_RELEASE);
}

bt_api_phase_t bt_api_phase(const bt_api_t *api)
{
    return (bt_api_phase_t)__atomic_load_n(&api->phase, __ATOMIC_ACQUIRE);
}

/* ------------------------------------------------------------ JSON guard */

/* Length of the UTF-8 sequence at p (of at most n bytes), or 0 if it is
 * not a valid, shortest-form encoding of a scalar value. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

int bt_api_json_guard(const char *text, size_t len, int max_depth, char *err, size_t errlen)
{
    const unsigned char *p = (const unsigned char *)text;
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        if (c == '\0') {
            snprintf(err, errlen, "body has a NUL byte at offset %zu", i);
            return -1;
        }
        if (c >= 0x80) {
            size_t n = utf8_len(p + i, len - i);
            if (n == 0) {
                snprintf(err, errlen, "body is not valid UTF-8 at offset %zu", i);
                return -1;
            }
            i += n;
            continue;
        }
        if (in_string) {
            if (c == '\\')
                i++; /* skip the escaped character (ASCII in valid JSON) */
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth) {
                snprintf(err, errlen, "body nests deeper than %d levels at offset %zu", max_depth,
                         i);
                return -1;
            }
        } else if (c == ']' || c == '}') {
            depth--;
        }
        i++;
    }
    return 0;
}

/* ------------------------------------------------------------- helpers */

static uint64_t store_timeout(const bt_api_t *api)
{
    return api->store_timeout_ns != 0 ? api->store_timeout_ns : DEFAULT_STORE_TIMEOUT_NS;
}

static void add_time(cJSON *obj, const char *key, int64_t ms)
{
    if (ms <= 0) {
        cJSON_AddNullToObject(obj, key);
        return;
    }
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char buf[80];
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    cJSON_AddStringToObject(obj, key, buf);
}

/* The run object of docs/api.md. Stored params that do not parse (a store
 * written by something else) are reported as null rather than passed on. */
static cJSON *run_json(const rs_run_t *run)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    cJSON_AddStringToObject(o, "id", run->id);
    cJSON_AddStringToObject(o, "job", run->job);
    cJSON_AddStringToObject(o, "state", rs_state_name(run->state));
    cJSON *params = run->params != NULL ? cJSON_Parse(run->params) : NULL;
    if (params != NULL)
        cJSON_AddItemToObject(o, "params", params);
    else
        cJSON_AddNullToObject(o, "params");
    cJSON *progress = cJSON_AddObjectToObject(o, "progress");
    if (progress != NULL) {
        cJSON_AddNumberToObject(progress, "done", (double)run->progress_done);
        cJSON_AddNumberToObject(progress, "total", (double)run->progress_total);
    }
    cJSON_AddNumberToObject(o, "attempt", run->attempt);
    if (run->last_error != NULL)
        cJSON_AddStringToObject(o, "last_error", run->last_error);
    else
        cJSON_AddNullToObject(o, "last_error");
    add_time(o, "created_at", run->created_ms);
    add_time(o, "started_at", run->started_ms);
    add_time(o, "updated_at", run->updated_ms);
    add_time(o, "finished_at", run->finished_ms);
    return o;
}

/* Answers status with json (taken; NULL = out of memory). */
static void reply_json(bt_http_resp_t *resp, int status, cJSON *json)
{
    char *text = json != NULL ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    if (text == NULL) {
        bt_http_resp_error(resp, 500, "internal", "out of memory building the answer");
        return;
    }
    /* cJSON allocates with malloc (the default hooks), as the server frees. */
    bt_http_resp_take(resp, status, text);
}

static int status_of(const char *code)
{
    static const struct {
        const char *code;
        int status;
    } map[] = {
        {"bad_request", 400}, {"unauthorized", 401},  {"forbidden", 403},
        {"not_found", 404},   {"conflict", 409},      {"invalid_transition", 409},
        {"too_large", 413},   {"busy", 429},          {"store_error", 500},
        {"internal", 500},    {"shutting_down", 503},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(map[i].code, code) == 0)
            return map[i].status;
    }
    return 500;
}

/* An ask that failed in the runtime (timeout, executor gone). */
static void reply_ask_failure(bt_http_resp_t *resp, int rc, const char *what)
{
    if (rc == BT_ETIMEDOUT)
        bt_http_resp_error(resp, 500, "internal",
                           "%s did not answer in time: the outcome is unknown (GET the run to "
                           "see its state)",
                           what);
    else if (rc == BT_ENOACTOR || rc == BT_ESTATE)
        bt_http_resp_error(resp, 503, "shutting_down", "%s is not running", what);
    else
        bt_http_resp_error(resp, 500, "internal", "asking %s failed: %s", what, bt_strerror(rc));
}

static bool is_run_id(const char *s, size_t len)
{
    if (len != RS_ID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-'
                 : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

static const bt_api_job_t *find_job(const bt_api_t *api, const char *name, size_t len)
{
    for (uint32_t i = 0; i < api->njobs; i++) {
        if (strlen(api->jobs[i].name) == len && memcmp(api->jobs[i].name, name, len) == 0)
            return &api->jobs[i];
    }
    return NULL;
}

/* Reads one run from the store into a JSON object; on failure answers
 * resp and returns NULL. */
static cJSON *fetch_run(bt_api_t *api, const char *id, bt_http_resp_t *resp)
{
    bt_msg_t *req = rs_req_get(id);
    if (req == NULL) {
        bt_http_resp_error(resp, 500, "internal", "out of memory");
        return NULL;
    }
    bt_msg_t *m = NULL;
    int rc = bt_ask_wait(api->rt, api->store, req, store_timeout(api), &m);
    if (rc != BT_OK) {
        reply_ask_failure(resp, rc, "the run store");
        return NULL;
    }
    const rs_reply_t *r = (const rs_reply_t *)m;
    cJSON *out = NULL;
    if (r->status == RS_ENOTFOUND) {
        bt_http_resp_error(resp, 404, "not_found", "run %s does not exist", id);
    } else if (r->status != RS_OK || r->nruns != 1) {
        bt_http_resp_error(resp, 500, "store_error", "%s",
                           r->message[0] != '\0' ? r->message : rs_strerror(r->status));
    } else {
        rs_run_t run;
        rs_reply_run(r, 0, &run);
        out = run_json(&run);
        if (out == NULL)
            bt_http_resp_error(resp, 500, "internal", "out of memory");
    }
    bt_msg_free(m);
    return out;
}

/* ------------------------------------------------------------- commands */

/* Merges the request's params over the job's: top-level keys of the
 * request win. Returns malloc'd JSON text, or NULL with resp answered. */
static char *merge_params(const bt_api_job_t *job, const cJSON *body_params, bt_http_resp_t *resp)
{
    cJSON *merged = cJSON_Parse(job->params_json != NULL ? job->params_json : "{}");
    if (merged == NULL || !cJSON_IsObject(merged)) {
        cJSON_Delete(merged);
        bt_http_resp_error(resp, 500, "internal", "job %s has params that are not an object",
                           job->name);
        return NULL;
    }
    if (body_params != NULL) {
        for (const cJSON *it = body_params->child; it != NULL; it = it->next) {
            cJSON *copy = cJSON_Duplicate(it, true);
            if (copy == NULL) {
                cJSON_Delete(merged);
                bt_http_resp_error(resp, 500, "internal", "out of memory");
                return NULL;
            }
            /* Keys match case-sensitively: cJSON_HasObjectItem() ignores
             * case, so {"N":1} over {"n":1} found "n", the case-sensitive
             * replace found nothing, and the copy leaked (found by
             * fuzz_api_body). */
            bool ok = cJSON_GetObjectItemCaseSensitive(merged, it->string) != NULL
                          ? cJSON_ReplaceItemInObjectCaseSensitive(merged, it->string, copy)
                          : cJSON_AddItemToObject(merged, it->string, copy);
            if (!ok) {
                cJSON_Delete(copy);
                cJSON_Delete(merged);
                bt_http_resp_error(resp, 500, "internal", "out of memory");
                return NULL;
            }
        }
    }
    char *text = cJSON_PrintUnformatted(merged);
    cJSON_Delete(merged);
    if (text == NULL)
        bt_http_resp_error(resp, 500, "internal", "out of memory");
    return text;
}

/* Parses a start body: {} or {"params": {...}}. Returns the body (to
 * delete) with *params pointing into it, or NULL with resp answered. An
 * empty body is {}. */
static cJSON *parse_start_body(const bt_http_req_t *req, const cJSON **params, bt_http_resp_t *resp)
{
    size_t len;
    const char *text = bt_http_body(req, &len);
    *params = NULL;
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
        i++;
    if (i == len)
        text = "{}", len = 2;
    char why[160];
    if (bt_api_json_guard(text, len, JSON_MAX_DEPTH, why, sizeof(why)) != 0) {
        bt_http_resp_error(resp, 400, "bad_request", "%s", why);
        return NULL;
    }
    const char *end = NULL;
    cJSON *body = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (body == NULL) {
        size_t at = end != NULL && end >= text ? (size_t)(end - text) : 0;
        bt_http_resp_error(resp, 400, "bad_request",
                           "body is not valid JSON (error near offset %zu)", at);
        return NULL;
    }
    /* cJSON skips the whitespace after the value; anything else is junk. */
    if (end != NULL && end < text + len) {
        cJSON_Delete(body);
        bt_http_resp_error(resp, 400, "bad_request",
                           "body has data after the JSON value (offset %zu)", (size_t)(end - text));
        return NULL;
    }
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        bt_http_resp_error(resp, 400, "bad_request", "body must be a JSON object");
        return NULL;
    }
    for (const cJSON *it = body->child; it != NULL; it = it->next) {
        if (strcmp(it->string, "params") != 0) {
            /* The message quotes the key: answer before freeing it. */
            bt_http_resp_error(resp, 400, "bad_request",
                               "unknown field '%.64s' in the body; expected 'params'", it->string);
            cJSON_Delete(body);
            return NULL;
        }
        if (!cJSON_IsObject(it)) {
            cJSON_Delete(body);
            bt_http_resp_error(resp, 400, "bad_request", "'params' must be a JSON object");
            return NULL;
        }
        *params = it;
    }
    return body;
}

static bool valid_idempotency_key(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > IDEMPOTENCY_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (k[i] < 0x21 || k[i] > 0x7e)
            return false;
    }
    return true;
}

static const char *const command_names[] = {"start", "pause", "resume", "stop"};

/* Sends a command to the executor and answers with the run afterwards. */
static void run_command(bt_api_t *api, int which, bt_msg_t *cmd, uint64_t timeout_ns,
                        bt_http_resp_t *resp)
{
    if (cmd == NULL) {
        bt_http_resp_error(resp, 500, "internal", "out of memory");
        return;
    }
    bt_msg_t *m = NULL;
    int rc = bt_ask_wait(api->rt, api->executor, cmd, timeout_ns, &m);
    if (rc != BT_OK) {
        __atomic_fetch_add(&api->commands[which][1], 1, __ATOMIC_RELAXED);
        reply_ask_failure(resp, rc, "the executor");
        return;
    }
    const ex_reply_t *r = (const ex_reply_t *)m;
    if (r->status != EX_OK) {
        __atomic_fetch_add(&api->commands[which][1], 1, __ATOMIC_RELAXED);
        const char *code = ex_err_code(r->status);
        int status = status_of(code);
        if (status == 429)
            bt_http_resp_header(resp, "Retry-After", "1");
        bt_http_resp_error(resp, status, code, "%s",
                           r->message[0] != '\0' ? r->message : ex_strerror(r->status));
        bt_log(status >= 500 ? BT_LOG_ERROR : BT_LOG_INFO, "command.refused", "command",
               command_names[which], "code", code, "message", r->message, NULL);
        bt_msg_free(m);
        return;
    }
    __atomic_fetch_add(&api->commands[which][0], 1, __ATOMIC_RELAXED);
    char id[EX_RUN_ID_MAX];
    snprintf(id, sizeof(id), "%s", r->run_id);
    int state = r->state;
    bool replayed = EX_REPLY_REPLAYED(r);
    if (EX_REPLY_UNCONFIRMED(r))
        bt_log(BT_LOG_WARN, "run.pause_unconfirmed", "run", id, "message", r->message, NULL);
    bt_log(BT_LOG_INFO, "command.done", "command", command_names[which], "run", id, "state",
           rs_state_name((rs_state_t)state), "replayed", replayed ? "true" : "false", NULL);
    bt_msg_free(m);
    if (replayed) {
        __atomic_fetch_add(&api->replays, 1, __ATOMIC_RELAXED);
        bt_http_resp_header(resp, "Idempotent-Replayed", "true");
    }

    bt_http_resp_t scratch = {0};
    cJSON *run = fetch_run(api, id, &scratch);
    if (run == NULL) {
        /* The command is done and durable; only the read failed. Answer
         * with what the executor said rather than an error. */
        free(scratch.body);
        run = cJSON_CreateObject();
        if (run != NULL) {
            cJSON_AddStringToObject(run, "id", id);
            cJSON_AddStringToObject(run, "state", rs_state_name((rs_state_t)state));
        }
    }
    if (which == CMD_START) {
        char loc[64 + EX_RUN_ID_MAX];
        snprintf(loc, sizeof(loc), "/v1/runs/%s", id);
        bt_http_resp_header(resp, "Location", loc);
    }
    reply_json(resp, which == CMD_START && !replayed ? 201 : 200, run);
}

static void handle_start(bt_api_t *api, const bt_http_req_t *req, const char *job_name,
                         size_t job_len, bt_http_resp_t *resp)
{
    const bt_api_job_t *job = find_job(api, job_name, job_len);
    if (job == NULL) {
        bt_http_resp_error(resp, 404, "not_found", "no job named '%.*s'",
                           (int)(job_len > 128 ? 128 : job_len), job_name);
        return;
    }
    const char *key = bt_http_header(req, "Idempotency-Key");
    if (key != NULL && !valid_idempotency_key(key)) {
        bt_http_resp_error(resp, 400, "bad_request",
                           "Idempotency-Key must be 1 to %d printable ASCII characters",
                           IDEMPOTENCY_KEY_MAX);
        return;
    }
    const cJSON *params;
    cJSON *body = parse_start_body(req, &params, resp);
    if (body == NULL)
        return;
    char *merged = merge_params(job, params, resp);
    cJSON_Delete(body);
    if (merged == NULL)
        return;
    bt_msg_t *cmd = ex_cmd_new_keyed(EX_MSG_START, NULL, job->name, merged, key);
    free(merged);
    run_command(api, CMD_START, cmd, store_timeout(api) + DEFAULT_COMMAND_SLACK_NS, resp);
}

/* The longest a pause or stop may take: the slowest job's grace, plus slack. */
static uint64_t control_timeout(const bt_api_t *api)
{
    uint64_t grace = 0;
    for (uint32_t i = 0; i < api->njobs; i++) {
        if (api->jobs[i].stop_grace_ns > grace)
            grace = api->jobs[i].stop_grace_ns;
    }
    uint64_t slack = api->command_slack_ns != 0 ? api->command_slack_ns : DEFAULT_COMMAND_SLACK_NS;
    return grace + slack + store_timeout(api);
}

static void handle_control(bt_api_t *api, const char *id, const char *verb, bt_http_resp_t *resp)
{
    uint32_t msg;
    int which;
    if (strcmp(verb, "pause") == 0)
        msg = EX_MSG_PAUSE, which = CMD_PAUSE;
    else if (strcmp(verb, "resume") == 0)
        msg = EX_MSG_RESUME, which = CMD_RESUME;
    else
        msg = EX_MSG_STOP, which = CMD_STOP;
    run_command(api, which, ex_cmd_new(msg, id, NULL, NULL), control_timeout(api), resp);
}

/* ---------------------------------------------------------------- reads */

static void handle_get(bt_api_t *api, const char *id, bt_http_resp_t *resp)
{
    cJSON *run = fetch_run(api, id, resp);
    if (run != NULL)
        reply_json(resp, 200, run);
}

/* Parses "running,paused" into a state mask; 0 with resp answered on error. */
static uint32_t parse_states(const char *s, bt_http_resp_t *resp)
{
    uint32_t mask = 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        char name[16];
        rs_state_t st = RS_STATE_COUNT;
        if (n > 0 && n < sizeof(name)) {
            memcpy(name, p, n);
            name[n] = '\0';
            st = rs_state_parse(name);
        }
        if (st == RS_STATE_COUNT || st == RS_NONE) {
            bt_http_resp_error(resp, 400, "bad_request",
                               "state '%.*s' is not one of pending, running, paused, completed, "
                               "failed, stopped",
                               (int)(n > 32 ? 32 : n), p);
            return 0;
        }
        mask |= RS_MASK(st);
        if (comma == NULL)
            return mask;
        p = comma + 1;
    }
}

static void handle_list(bt_api_t *api, const bt_http_req_t *req, bt_http_resp_t *resp)
{
    const char *job = bt_http_query(req, "job");
    const char *state = bt_http_query(req, "state");
    const char *limit_s = bt_http_query(req, "limit");
    const char *after = bt_http_query(req, "after");
    if (job != NULL && *job != '\0' && find_job(api, job, strlen(job)) == NULL) {
        /* Runs of a job removed from config.toml are still listed. */
        if (strlen(job) > 128) {
            bt_http_resp_error(resp, 400, "bad_request", "job name is too long");
            return;
        }
    }
    uint32_t mask = 0;
    if (state != NULL && *state != '\0' && (mask = parse_states(state, resp)) == 0)
        return;
    uint32_t limit = LIST_DEFAULT_LIMIT;
    if (limit_s != NULL) {
        char *end;
        unsigned long v = strtoul(limit_s, &end, 10);
        if (*limit_s < '0' || *limit_s > '9' || *end != '\0' || v < 1 || v > LIST_MAX_LIMIT) {
            bt_http_resp_error(resp, 400, "bad_request", "limit must be an integer from 1 to %d",
                               LIST_MAX_LIMIT);
            return;
        }
        limit = (uint32_t)v;
    }
    if (after != NULL && *after != '\0' && !is_run_id(after, strlen(after))) {
        bt_http_resp_error(resp, 400, "bad_request", "after must be a run id (the 'next' cursor)");
        return;
    }
    bt_msg_t *q = rs_req_list(job != NULL && *job != '\0' ? job : NULL, mask,
                              after != NULL && *after != '\0' ? after : NULL, limit);
    if (q == NULL) {
        bt_http_resp_error(resp, 500, "internal", "out of memory");
        return;
    }
    bt_msg_t *m = NULL;
    int rc = bt_ask_wait(api->rt, api->store, q, store_timeout(api), &m);
    if (rc != BT_OK) {
        reply_ask_failure(resp, rc, "the run store");
        return;
    }
    const rs_reply_t *r = (const rs_reply_t *)m;
    if (r->status != RS_OK) {
        bt_http_resp_error(resp, 500, "store_error", "%s",
                           r->message[0] != '\0' ? r->message : rs_strerror(r->status));
        bt_msg_free(m);
        return;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON *runs = out != NULL ? cJSON_AddArrayToObject(out, "runs") : NULL;
    bool ok = runs != NULL;
    for (uint32_t i = 0; ok && i < r->nruns; i++) {
        rs_run_t run;
        rs_reply_run(r, i, &run);
        cJSON *o = run_json(&run);
        ok = o != NULL && cJSON_AddItemToArray(runs, o);
    }
    if (ok) {
        if (r->next_cursor[0] != '\0')
            cJSON_AddStringToObject(out, "next", r->next_cursor);
        else
            cJSON_AddNullToObject(out, "next");
    }
    bt_msg_free(m);
    if (!ok) {
        cJSON_Delete(out);
        bt_http_resp_error(resp, 500, "internal", "out of memory");
        return;
    }
    reply_json(resp, 200, out);
}

static void handle_events(bt_api_t *api, const char *id, bt_http_resp_t *resp)
{
    bt_msg_t *q = rs_req_events(id);
    if (q == NULL) {
        bt_http_resp_error(resp, 500, "internal", "out of memory");
        return;
    }
    bt_msg_t *m = NULL;
    int rc = bt_ask_wait(api->rt, api->store, q, store_timeout(api), &m);
    if (rc != BT_OK) {
        reply_ask_failure(resp, rc, "the run store");
        return;
    }
    const rs_reply_t *r = (const rs_reply_t *)m;
    if (r->status == RS_ENOTFOUND) {
        bt_http_resp_error(resp, 404, "not_found", "run %s does not exist", id);
        bt_msg_free(m);
        return;
    }
    if (r->status != RS_OK) {
        bt_http_resp_error(resp, 500, "store_error", "%s",
                           r->message[0] != '\0' ? r->message : rs_strerror(r->status));
        bt_msg_free(m);
        return;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON *events = out != NULL ? cJSON_AddArrayToObject(out, "events") : NULL;
    bool ok = events != NULL;
    for (uint32_t i = 0; ok && i < r->nevents; i++) {
        rs_event_t ev;
        rs_reply_event(r, i, &ev);
        cJSON *o = cJSON_CreateObject();
        ok = o != NULL && cJSON_AddItemToArray(events, o);
        if (!ok)
            break;
        cJSON_AddNumberToObject(o, "seq", (double)ev.seq);
        add_time(o, "at", ev.at_ms);
        if (ev.from == RS_NONE)
            cJSON_AddNullToObject(o, "from");
        else
            cJSON_AddStringToObject(o, "from", rs_state_name(ev.from));
        cJSON_AddStringToObject(o, "to", rs_state_name(ev.to));
        if (ev.cause != NULL)
            cJSON_AddStringToObject(o, "cause", ev.cause);
        else
            cJSON_AddNullToObject(o, "cause");
    }
    bt_msg_free(m);
    if (!ok) {
        cJSON_Delete(out);
        bt_http_resp_error(resp, 500, "internal", "out of memory");
        return;
    }
    reply_json(resp, 200, out);
}

static void handle_jobs(bt_api_t *api, bt_http_resp_t *resp)
{
    cJSON *out = cJSON_CreateObject();
    cJSON *jobs = out != NULL ? cJSON_AddArrayToObject(out, "jobs") : NULL;
    bool ok = jobs != NULL;
    for (uint32_t i = 0; ok && i < api->njobs; i++) {
        cJSON *o = cJSON_CreateObject();
        ok = o != NULL && cJSON_AddItemToArray(jobs, o);
        if (!ok)
            break;
        cJSON_AddStringToObject(o, "name", api->jobs[i].name);
        cJSON_AddStringToObject(o, "kind", api->jobs[i].kind);
        cJSON_AddNumberToObject(o, "max_active", api->jobs[i].max_active);
    }
    if (!ok) {
        cJSON_Delete(out);
        bt_http_resp_error(resp, 500, "internal", "out of memory");
        return;
    }
    reply_json(resp, 200, out);
}

static void status_body(bt_http_resp_t *resp, int status, const char *text)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "{\"status\":\"%s\"}", text);
    bt_http_resp_text(resp, status, NULL, body, (size_t)n);
}

/* --------------------------------------------------------------- routing */

static void method_not_allowed(bt_http_resp_t *resp, const char *allow, const char *method,
                               const char *path)
{
    bt_http_resp_header(resp, "Allow", allow);
    bt_http_resp_error(resp, 405, "method_not_allowed", "%s is not allowed on %.200s; use %s",
                       method, path, allow);
}

/* Splits path into at most 5 segments after the leading '/'. */
typedef struct segs {
    const char *s[5];
    size_t n[5];
    int count;
} segs_t;

static bool split(const char *path, segs_t *out)
{
    out->count = 0;
    if (path[0] != '/')
        return false;
    const char *p = path + 1;
    while (*p != '\0') {
        if (out->count == 5)
            return false;
        const char *slash = strchr(p, '/');
        size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);
        if (n == 0)
            return false; /* "//" or a trailing slash */
        out->s[out->count] = p;
        out->n[out->count] = n;
        out->count++;
        if (slash == NULL)
            break;
        p = slash + 1;
        if (*p == '\0')
            return false;
    }
    return true;
}

static bool seg_is(const segs_t *g, int i, const char *lit)
{
    return g->n[i] == strlen(lit) && memcmp(g->s[i], lit, g->n[i]) == 0;
}

void bt_api_handle(void *ctx, const bt_http_req_t *req, bt_http_resp_t *resp)
{
    bt_api_t *api = ctx;
    const char *method = bt_http_method(req);
    const char *path = bt_http_path(req);
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0;
    bt_api_phase_t phase = bt_api_phase(api);

    if (strcmp(path, "/healthz") == 0) {
        if (!get)
            return method_not_allowed(resp, "GET", method, path);
        return status_body(resp, 200, "ok");
    }
    if (strcmp(path, "/readyz") == 0) {
        if (!get)
            return method_not_allowed(resp, "GET", method, path);
        if (phase == BT_API_READY)
            return status_body(resp, 200, "ready");
        return status_body(resp, 503, phase == BT_API_RECOVERING ? "recovering" : "shutting_down");
    }
    if (strcmp(path, "/metrics") == 0) {
        if (!get)
            return method_not_allowed(resp, "GET", method, path);
        char *text = bt_api_metrics(api);
        if (text == NULL)
            return bt_http_resp_error(resp, 500, "internal", "out of memory");
        resp->status = 200;
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        resp->body = text;
        resp->body_len = strlen(text);
        return;
    }

    segs_t g;
    if (!split(path, &g) || g.count < 2 || !seg_is(&g, 0, "v1"))
        return bt_http_resp_error(resp, 404, "not_found", "no route for %.200s", path);

    /* /v1/jobs, /v1/jobs/{job}/runs */
    if (seg_is(&g, 1, "jobs")) {
        if (g.count == 2) {
            if (!get)
                return method_not_allowed(resp, "GET", method, path);
            return handle_jobs(api, resp);
        }
        if (g.count == 4 && seg_is(&g, 3, "runs")) {
            if (!post)
                return method_not_allowed(resp, "POST", method, path);
            if (phase == BT_API_DRAINING)
                return bt_http_resp_error(resp, 503, "shutting_down",
                                          "the service is shutting down");
            return handle_start(api, req, g.s[2], g.n[2], resp);
        }
        return bt_http_resp_error(resp, 404, "not_found", "no route for %.200s", path);
    }
    if (!seg_is(&g, 1, "runs"))
        return bt_http_resp_error(resp, 404, "not_found", "no route for %.200s", path);
    if (g.count == 2) {
        if (!get)
            return method_not_allowed(resp, "GET", method, path);
        return handle_list(api, req, resp);
    }
    if (!is_run_id(g.s[2], g.n[2]))
        return bt_http_resp_error(resp, 400, "bad_request", "'%.*s' is not a run id",
                                  (int)(g.n[2] > 64 ? 64 : g.n[2]), g.s[2]);
    char id[RS_ID_LEN + 1];
    memcpy(id, g.s[2], RS_ID_LEN);
    id[RS_ID_LEN] = '\0';
    for (char *c = id; *c != '\0'; c++) {
        if (*c >= 'A' && *c <= 'F')
            *c = (char)(*c - 'A' + 'a'); /* ids are stored in lower case */
    }
    if (g.count == 3) {
        if (!get)
            return method_not_allowed(resp, "GET", method, path);
        return handle_get(api, id, resp);
    }
    if (g.count == 4 && seg_is(&g, 3, "events")) {
        if (!get)
            return method_not_allowed(resp, "GET", method, path);
        return handle_events(api, id, resp);
    }
    if (g.count == 4 &&
        (seg_is(&g, 3, "pause") || seg_is(&g, 3, "resume") || seg_is(&g, 3, "stop"))) {
        if (!post)
            return method_not_allowed(resp, "POST", method, path);
        if (phase == BT_API_DRAINING)
            return bt_http_resp_error(resp, 503, "shutting_down", "the service is shutting down");
        char verb[8];
        memcpy(verb, g.s[3], g.n[3]);
        verb[g.n[3]] = '\0';
        return handle_control(api, id, verb, resp);
    }
    return bt_http_resp_error(resp, 404, "not_found", "no route for %.200s", path);
}
