/*
 * api.h: the HTTP/JSON control API of docs/api.md, as a bt_http handler.
 *
 * Commands (start, pause, resume, stop) are asks to the executor, which
 * decides them; reads (a run, a list, a history) are asks to the run store,
 * the source of truth, so they never queue behind commands. The handler
 * runs on the HTTP server's threads and blocks in bt_ask_wait().
 */
#ifndef BATON_APP_SERVICE_API_H
#define BATON_APP_SERVICE_API_H

#include "server/http.h"

#include <baton/baton.h>

#include <stdint.h>

typedef enum bt_api_phase {
    BT_API_RECOVERING, /* commands wait for recovery; /readyz is 503 */
    BT_API_READY,
    BT_API_DRAINING, /* commands are refused with 503 shutting_down */
} bt_api_phase_t;

typedef struct bt_api_job {
    const char *name;
    const char *kind;
    const char *params_json; /* the job's params from config.toml ("{}" if none) */
    uint32_t max_active;
    uint64_t stop_grace_ns;
} bt_api_job_t;

typedef struct bt_api_named {
    const char *name;
    bt_ref_t ref;
} bt_api_named_t;

/* What the handler needs; filled by the service, read-only afterwards
 * (except phase and http, set with the functions below). */
typedef struct bt_api {
    bt_runtime_t *rt;
    bt_ref_t executor;
    bt_ref_t store;
    const bt_api_job_t *jobs;
    uint32_t njobs;
    const bt_api_named_t *breakers;
    uint32_t nbreakers;
    const bt_api_named_t *limiters;
    uint32_t nlimiters;
    uint64_t store_timeout_ns; /* per read; 0 = 10 s */
    uint64_t command_slack_ns; /* added to a job's stop grace for pause/stop; 0 = 30 s */
    /* Set while serving. */
    bt_http_server_t *http; /* for /metrics; may be NULL */
    int phase;              /* bt_api_phase_t, atomic */
    uint64_t started_ns;    /* bt_now() at start-up, for the uptime gauge */
    /* Counters, atomic. */
    uint64_t commands[4][2]; /* [start,pause,resume,stop][ok,refused] */
    uint64_t replays;        /* idempotent starts answered from the first result */
} bt_api_t;

void bt_api_set_phase(bt_api_t *api, bt_api_phase_t phase);
bt_api_phase_t bt_api_phase(const bt_api_t *api);

/* The bt_http_handler_fn; ctx is a bt_api_t. */
void bt_api_handle(void *ctx, const bt_http_req_t *req, bt_http_resp_t *resp);

/* Checks a JSON text before it reaches the parser: at most max_depth nested
 * arrays/objects, valid UTF-8, no NUL byte. Returns 0, or -1 with a
 * sentence in err. */
int bt_api_json_guard(const char *text, size_t len, int max_depth, char *err, size_t errlen);

/* Writes the Prometheus text exposition into a malloc'd string (NULL when
 * out of memory). Defined in metrics.c. */
char *bt_api_metrics(bt_api_t *api);

#endif
