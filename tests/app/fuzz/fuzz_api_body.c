/*
 * fuzz_api_body.c: a libFuzzer target for the JSON request bodies of the
 * API. The input is the body of POST /v1/jobs/{job}/runs, sent through
 * bt_api_handle() to a live executor and run store (api_harness.h), and
 * also straight through bt_api_json_guard() and cJSON.
 *
 * Checked: every answer keeps the invariants of api_harness.c; the handler
 * and the direct path agree (a 201 only for a body the guard passes and
 * cJSON parses as an object; a body the guard refuses is a 400); a parsed
 * body prints back to JSON that parses again.
 *
 * The job is picked by the input's length (size % 3: quick, idle, other),
 * so all three jobs' params are merged with fuzzed ones. Build and run it
 * with tests/fuzz/run_fuzzers.sh; the test command replays the seeds in
 * tests/app/fuzz/corpus_api_body (CTest app_api_body_fuzz_replay).
 */
#include "api_harness.h"

#include <cjson/cJSON.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 32 /* as api.c */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool only_space(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;

    /* Directly: the guard, then the parser it protects. */
    char why[160] = "";
    int guard = bt_api_json_guard(text, size, JSON_MAX_DEPTH, why, sizeof(why));
    if (guard != 0 && (why[0] == '\0' || memchr(why, '\0', sizeof(why)) == NULL))
        fz_fail("the guard refused without a reason");
    bool object = false;
    if (guard == 0) {
        const char *end = NULL;
        cJSON *j = cJSON_ParseWithLengthOpts(text, size, &end, false);
        if (j != NULL) {
            object = cJSON_IsObject(j) && only_space(end, size - (size_t)(end - text));
            char *printed = cJSON_PrintUnformatted(j);
            if (printed == NULL)
                fz_fail("cJSON could not print what it parsed");
            cJSON *again = cJSON_Parse(printed);
            if (again == NULL)
                fz_fail("cJSON's own output does not parse: %.200s", printed);
            cJSON_Delete(again);
            free(printed);
            cJSON_Delete(j);
        }
    }

    /* Through the API. */
    fz_begin_input();
    static const char *const paths[] = {"/v1/jobs/quick/runs", "/v1/jobs/idle/runs",
                                        "/v1/jobs/other/runs"};
    const char *path = paths[size % 3];
    bt_http_resp_t resp;
    fz_request("POST", path, NULL, NULL, text, size, &resp);
    bool empty = only_space(text, size);
    if (resp.status == 201 && !empty && !object)
        fz_fail("201 for a body that is not a JSON object: %.200s", resp.body);
    if (guard != 0 && resp.status != 400)
        fz_fail("status %d for a body the guard refuses (%s)", resp.status, why);
    if (resp.status == 400 && strstr(resp.body, "\"bad_request\"") == NULL)
        fz_fail("400 that is not bad_request: %.200s", resp.body);
    bt_http_resp_deinit(&resp);
    return 0;
}
