/*
 * test_api.c: the API handler in process, for what the end-to-end tests
 * cannot reach on demand: the phases (recovering, draining) and the JSON
 * guard's edge cases.
 */
#include "server/http.h"
#include "service/api.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

typedef struct answer {
    int status;
    char body[1024];
} answer_t;

static answer_t call(bt_api_t *api, const char *method, const char *path, const char *body)
{
    bt_http_req_t *req = bt_http_req_new(method, path, NULL, NULL, body != NULL ? body : "",
                                         body ? strlen(body) : 0);
    cr_assert_not_null(req);
    bt_http_resp_t resp = {0};
    bt_api_handle(api, req, &resp);
    answer_t a = {.status = resp.status};
    if (resp.body != NULL)
        snprintf(a.body, sizeof(a.body), "%.*s", (int)resp.body_len, resp.body);
    bt_http_resp_deinit(&resp);
    bt_http_req_free(req);
    return a;
}

#define RUN "0195f3c2-7d1e-7a31-9c4e-2b9d5f0e8a11"

Test(api, readyz_follows_the_phase)
{
    bt_api_t api = {0};
    bt_api_set_phase(&api, BT_API_RECOVERING);
    answer_t a = call(&api, "GET", "/readyz", NULL);
    cr_assert_eq(a.status, 503);
    cr_assert_str_eq(a.body, "{\"status\":\"recovering\"}");
    bt_api_set_phase(&api, BT_API_READY);
    a = call(&api, "GET", "/readyz", NULL);
    cr_assert_eq(a.status, 200);
    cr_assert_str_eq(a.body, "{\"status\":\"ready\"}");
    bt_api_set_phase(&api, BT_API_DRAINING);
    a = call(&api, "GET", "/readyz", NULL);
    cr_assert_eq(a.status, 503);
    cr_assert_str_eq(a.body, "{\"status\":\"shutting_down\"}");
    a = call(&api, "GET", "/healthz", NULL);
    cr_assert_eq(a.status, 200, "alive while draining");
}

Test(api, commands_while_draining_get_503_shutting_down)
{
    bt_api_t api = {0};
    bt_api_set_phase(&api, BT_API_DRAINING);
    const char *paths[] = {"/v1/jobs/any/runs", "/v1/runs/" RUN "/pause", "/v1/runs/" RUN "/resume",
                           "/v1/runs/" RUN "/stop"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        answer_t a = call(&api, "POST", paths[i], NULL);
        cr_assert_eq(a.status, 503, "%s", paths[i]);
        cr_assert(strstr(a.body, "\"code\":\"shutting_down\"") != NULL, "%s", a.body);
    }
}

Test(api, routes_refused_before_any_actor_is_asked)
{
    bt_api_t api = {0}; /* no runtime: none of these may reach an actor */
    bt_api_set_phase(&api, BT_API_READY);
    const struct {
        const char *method, *path;
        int status;
        const char *code;
    } cases[] = {
        {"GET", "/", 404, "not_found"},
        {"GET", "/v2/runs", 404, "not_found"},
        {"GET", "/v1/runs/", 404, "not_found"},
        {"GET", "/v1//runs", 404, "not_found"},
        {"GET", "/v1/runs/" RUN "/events/x", 404, "not_found"},
        {"GET", "/v1/runs/" RUN "/frobnicate", 404, "not_found"},
        {"GET", "/v1/runs/zzzz", 400, "bad_request"},
        {"GET", "/v1/runs/0195f3c2-7d1e-7a31-9c4e-2b9d5f0e8a1g", 400, "bad_request"},
        {"POST", "/v1/runs/" RUN, 405, "method_not_allowed"},
        {"PUT", "/v1/jobs", 405, "method_not_allowed"},
        {"GET", "/v1/jobs/x/runs", 405, "method_not_allowed"},
        {"POST", "/healthz", 405, "method_not_allowed"},
        {"POST", "/v1/jobs/nosuch/runs", 404, "not_found"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        answer_t a = call(&api, cases[i].method, cases[i].path, NULL);
        cr_assert_eq(a.status, cases[i].status, "%s %s: %d %s", cases[i].method, cases[i].path,
                     a.status, a.body);
        char code[64];
        snprintf(code, sizeof(code), "\"code\":\"%s\"", cases[i].code);
        cr_assert(strstr(a.body, code) != NULL, "%s %s: %s", cases[i].method, cases[i].path,
                  a.body);
    }
}

Test(api, json_guard)
{
    char err[160];
    cr_assert_eq(bt_api_json_guard("{\"a\":[1,{\"b\":\"]]]]\"}]}", 22, 3, err, sizeof(err)), 0,
                 "brackets inside strings do not count: %s", err);
    cr_assert_eq(bt_api_json_guard("[[[[1]]]]", 9, 3, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "body nests deeper than 3 levels at offset 3");
    cr_assert_eq(bt_api_json_guard("\"\\\"[[[[\"", 8, 1, err, sizeof(err)), 0,
                 "an escaped quote does not end the string");
    cr_assert_eq(
        bt_api_json_guard("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", 15, 1, err, sizeof(err)),
        0, "valid UTF-8: %s", err);
    cr_assert_eq(bt_api_json_guard("\"\xc3\"", 3, 1, err, sizeof(err)), -1, "truncated sequence");
    cr_assert_str_eq(err, "body is not valid UTF-8 at offset 1");
    cr_assert_eq(bt_api_json_guard("\"\xc0\xaf\"", 4, 1, err, sizeof(err)), -1, "overlong");
    cr_assert_eq(bt_api_json_guard("\"\xed\xa0\x80\"", 5, 1, err, sizeof(err)), -1, "surrogate");
    cr_assert_eq(bt_api_json_guard("\"\xf4\x90\x80\x80\"", 6, 1, err, sizeof(err)), -1,
                 "above U+10FFFF");
    cr_assert_eq(bt_api_json_guard("{\"a\":\0}", 7, 4, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "body has a NUL byte at offset 5");
}
