/*
 * metrics.c: GET /metrics, the Prometheus text exposition (format 0.0.4).
 *
 * Each scrape asks the actors that own the numbers (run store, breakers,
 * limiters) for a snapshot with a short timeout, and reads the runtime's,
 * the HTTP server's and the allocator's counters directly. An actor that
 * does not answer in time is left out of that scrape and counted in
 * baton_metrics_scrape_errors_total; the scrape itself never fails.
 */
#include "service/api.h"

#include "breaker.h"
#include "executor.h"
#include "ratelimit.h"
#include "runstore.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRAPE_ASK_TIMEOUT_NS (2ull * 1000000000ull)

static uint64_t scrape_errors;

/* An append-only text buffer; on out of memory it sticks at failed. */
typedef struct buf {
    char *p;
    size_t len, cap;
    bool failed;
} buf_t;

static void bprintf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void bprintf(buf_t *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

static void help(buf_t *b, const char *name, const char *type, const char *text)
{
    bprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* Label values come from config.toml names, which the schema limits to
 * [A-Za-z0-9_.-]; escape anyway, as the format asks. */
static void label_value(buf_t *b, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\' || *v == '"')
            bprintf(b, "\\%c", *v);
        else if (*v == '\n')
            bprintf(b, "\\n");
        else
            bprintf(b, "%c", *v);
    }
}

static bt_msg_t *ask(bt_api_t *api, bt_ref_t to, bt_msg_t *req)
{
    if (req == NULL)
        return NULL;
    bt_msg_t *m = NULL;
    if (bt_ask_wait(api->rt, to, req, SCRAPE_ASK_TIMEOUT_NS, &m) != BT_OK) {
        __atomic_fetch_add(&scrape_errors, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    return m;
}

static bt_msg_t *bare(uint32_t id)
{
    bt_msg_t *m = bt_msg_new(sizeof(bt_msg_t), id);
    return m;
}

static void store_metrics(bt_api_t *api, buf_t *b)
{
    bt_msg_t *m = ask(api, api->store, rs_req_counts());
    if (m != NULL) {
        const rs_reply_t *r = (const rs_reply_t *)m;
        if (r->status == RS_OK) {
            help(b, "baton_runs", "gauge", "Runs in the store, by state.");
            for (int s = RS_PENDING; s < RS_STATE_COUNT; s++)
                bprintf(b, "baton_runs{state=\"%s\"} %lld\n", rs_state_name((rs_state_t)s),
                        (long long)r->counts[s]);
        }
        bt_msg_free(m);
    }
    m = ask(api, api->store, rs_req_stats());
    if (m != NULL) {
        const rs_reply_t *r = (const rs_reply_t *)m;
        if (r->status == RS_OK) {
            const rs_stats_t *st = &r->stats;
            help(b, "baton_store_requests_total", "counter", "Requests the run store answered.");
            bprintf(b, "baton_store_requests_total %llu\n", (unsigned long long)st->requests);
            help(b, "baton_store_transactions_total", "counter",
                 "Write transactions the run store committed.");
            bprintf(b, "baton_store_transactions_total %llu\n",
                    (unsigned long long)st->transactions);
            help(b, "baton_store_failed_transactions_total", "counter",
                 "Transactions rolled back for a storage error.");
            bprintf(b, "baton_store_failed_transactions_total %llu\n",
                    (unsigned long long)st->failed);
            help(b, "baton_store_batch_max", "gauge", "Most requests in one transaction.");
            bprintf(b, "baton_store_batch_max %llu\n", (unsigned long long)st->max_batch);
        }
        bt_msg_free(m);
    }
}

static void executor_metrics(bt_api_t *api, buf_t *b)
{
    static const char *const names[] = {"start", "pause", "resume", "stop"};
    help(b, "baton_commands_total", "counter", "Commands through the API, by outcome.");
    for (int c = 0; c < 4; c++) {
        bprintf(b, "baton_commands_total{command=\"%s\",outcome=\"ok\"} %llu\n", names[c],
                (unsigned long long)__atomic_load_n(&api->commands[c][0], __ATOMIC_RELAXED));
        bprintf(b, "baton_commands_total{command=\"%s\",outcome=\"refused\"} %llu\n", names[c],
                (unsigned long long)__atomic_load_n(&api->commands[c][1], __ATOMIC_RELAXED));
    }
    help(b, "baton_idempotent_replays_total", "counter",
         "Starts answered from the first result of their Idempotency-Key.");
    bprintf(b, "baton_idempotent_replays_total %llu\n",
            (unsigned long long)__atomic_load_n(&api->replays, __ATOMIC_RELAXED));

    bt_msg_t *m = ask(api, api->executor, bare(EX_MSG_STATS));
    if (m == NULL)
        return;
    const ex_stats_reply_t *st = (const ex_stats_reply_t *)m;
    help(b, "baton_transitions_total", "counter", "Run state transitions made by the executor.");
    for (int from = 0; from < RS_STATE_COUNT; from++) {
        for (int to = 0; to < RS_STATE_COUNT; to++) {
            if (st->transitions[from][to] == 0)
                continue;
            bprintf(b, "baton_transitions_total{from=\"%s\",to=\"%s\"} %llu\n",
                    rs_state_name((rs_state_t)from), rs_state_name((rs_state_t)to),
                    (unsigned long long)st->transitions[from][to]);
        }
    }
    const struct {
        const char *name, *type, *help;
        uint64_t v;
    } rows[] = {
        {"baton_executor_pause_unconfirmed_total", "counter",
         "Pauses answered without the job kind's confirmation (after the stop grace).",
         st->pause_timeouts},
        {"baton_executor_store_failures_total", "counter",
         "Store requests of the executor that failed or timed out.", st->store_failures},
        {"baton_executor_store_retries_total", "counter",
         "Writes and re-reads the executor retried after a store failure.", st->store_retries},
        {"baton_executor_reconciles_total", "counter",
         "Runs and jobs re-read after a store timeout or conflict.", st->reconciles},
        {"baton_executor_uncertain", "gauge", "Runs and jobs waiting to be re-read from the store.",
         st->uncertain},
        {"baton_executor_queued", "gauge", "Work items waiting in the executor.", st->queued},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        help(b, rows[i].name, rows[i].type, rows[i].help);
        bprintf(b, "%s %llu\n", rows[i].name, (unsigned long long)rows[i].v);
    }
    bt_msg_free(m);
}

static void breaker_metrics(bt_api_t *api, buf_t *b)
{
    if (api->nbreakers == 0)
        return;
    help(b, "baton_breaker_state", "gauge", "1 for the state each circuit breaker is in.");
    buf_t calls = {0};
    for (uint32_t i = 0; i < api->nbreakers; i++) {
        bt_msg_t *m = ask(api, api->breakers[i].ref, bare(BT_BREAKER_STATS));
        if (m == NULL)
            continue;
        const bt_breaker_stats_msg_t *st = (const bt_breaker_stats_msg_t *)m;
        for (int s = 0; s < BT_BREAKER_STATE_COUNT; s++) {
            bprintf(b, "baton_breaker_state{breaker=\"");
            label_value(b, api->breakers[i].name);
            bprintf(b, "\",state=\"%s\"} %d\n", bt_breaker_state_name((bt_breaker_state_t)s),
                    st->state == (bt_breaker_state_t)s);
        }
        const bt_breaker_counters_t *c = &st->counters;
        const struct {
            const char *outcome;
            uint64_t v;
        } rows[] = {{"allowed", c->allowed},
                    {"rejected", c->rejected},
                    {"success", c->successes},
                    {"failure", c->failures},
                    {"slow", c->slow}};
        for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
            bprintf(&calls, "baton_breaker_calls_total{breaker=\"");
            label_value(&calls, api->breakers[i].name);
            bprintf(&calls, "\",outcome=\"%s\"} %llu\n", rows[r].outcome,
                    (unsigned long long)rows[r].v);
        }
        bt_msg_free(m);
    }
    help(b, "baton_breaker_calls_total", "counter", "Calls through each breaker, by outcome.");
    if (calls.failed)
        b->failed = true;
    else if (calls.len > 0)
        bprintf(b, "%s", calls.p);
    free(calls.p);
}

static void limiter_metrics(bt_api_t *api, buf_t *b)
{
    if (api->nlimiters == 0)
        return;
    help(b, "baton_limiter_acquires_total", "counter",
         "Token requests to each rate limiter, by decision (delayed = had to wait).");
    for (uint32_t i = 0; i < api->nlimiters; i++) {
        bt_msg_t *m = ask(api, api->limiters[i].ref, bare(BT_RL_STATS));
        if (m == NULL)
            continue;
        const bt_rl_stats_msg_t *st = (const bt_rl_stats_msg_t *)m;
        const struct {
            const char *decision;
            uint64_t v;
        } rows[] = {{"granted", st->granted},
                    {"delayed", st->delayed},
                    {"refused", st->refused},
                    {"retry", st->retries}};
        for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
            bprintf(b, "baton_limiter_acquires_total{limit=\"");
            label_value(b, api->limiters[i].name);
            bprintf(b, "\",decision=\"%s\"} %llu\n", rows[r].decision,
                    (unsigned long long)rows[r].v);
        }
        bt_msg_free(m);
    }
}

static void http_metrics(bt_api_t *api, buf_t *b)
{
    if (api->http == NULL)
        return;
    bt_http_stats_t st;
    bt_http_stats(api->http, &st);
    help(b, "baton_http_requests_total", "counter", "Complete requests handed to the API.");
    bprintf(b, "baton_http_requests_total %llu\n", (unsigned long long)st.requests);
    help(b, "baton_http_rejected_total", "counter",
         "Requests refused by the HTTP layer (Host, token, size limits).");
    bprintf(b, "baton_http_rejected_total %llu\n", (unsigned long long)st.rejected);
    help(b, "baton_http_deadline_cutoffs_total", "counter",
         "Connections cut off by the per-request deadline.");
    bprintf(b, "baton_http_deadline_cutoffs_total %llu\n", (unsigned long long)st.deadline_cutoffs);
    help(b, "baton_http_connections_total", "counter", "Connections accepted.");
    bprintf(b, "baton_http_connections_total %llu\n", (unsigned long long)st.connections);
    help(b, "baton_http_open_connections", "gauge", "Connections open now.");
    bprintf(b, "baton_http_open_connections %u\n", st.open_connections);
}

static void runtime_metrics(bt_api_t *api, buf_t *b)
{
    bt_runtime_stats_t st;
    bt_runtime_stats(api->rt, &st);
    const struct {
        const char *name, *type, *help;
        uint64_t v;
    } rows[] = {
        {"baton_runtime_messages_sent_total", "counter", "Messages sent between actors.", st.sent},
        {"baton_runtime_messages_processed_total", "counter", "Messages dispatched.", st.processed},
        {"baton_runtime_dead_letters_total", "counter",
         "Messages to stopped actors or dropped undelivered.", st.dead_letters},
        {"baton_runtime_late_replies_total", "counter",
         "Replies that came after their ask timed out.", st.late_replies},
        {"baton_runtime_restarts_total", "counter", "Actor restarts by supervisors.", st.restarts},
        {"baton_runtime_actors_spawned_total", "counter", "Actors spawned.", st.actors_spawned},
        {"baton_runtime_actors", "gauge", "Actors alive now.", st.actors_live},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        help(b, rows[i].name, rows[i].type, rows[i].help);
        bprintf(b, "%s %llu\n", rows[i].name, (unsigned long long)rows[i].v);
    }
    help(b, "baton_runtime_threads", "gauge", "Scheduler threads.");
    bprintf(b, "baton_runtime_threads %u\n", bt_runtime_threads(api->rt));
}

static void alloc_metrics(buf_t *b)
{
    bt_alloc_stats_t st;
    if (bt_alloc_stats(&st) != BT_OK)
        return; /* the system allocator (sanitizer builds) keeps no such numbers */
    help(b, "baton_jemalloc_bytes", "gauge", "jemalloc statistics (stats.*), in bytes.");
    bprintf(b, "baton_jemalloc_bytes{stat=\"allocated\"} %llu\n", (unsigned long long)st.allocated);
    bprintf(b, "baton_jemalloc_bytes{stat=\"active\"} %llu\n", (unsigned long long)st.active);
    bprintf(b, "baton_jemalloc_bytes{stat=\"resident\"} %llu\n", (unsigned long long)st.resident);
    bprintf(b, "baton_jemalloc_bytes{stat=\"mapped\"} %llu\n", (unsigned long long)st.mapped);
    bprintf(b, "baton_jemalloc_bytes{stat=\"retained\"} %llu\n", (unsigned long long)st.retained);
}

char *bt_api_metrics(bt_api_t *api)
{
    buf_t b = {.p = malloc(8192), .cap = 8192};
    if (b.p == NULL)
        return NULL;
    b.p[0] = '\0';
    bt_api_phase_t phase = bt_api_phase(api);
    help(&b, "baton_ready", "gauge",
         "1 once start-up recovery is done, 0 before and while draining.");
    bprintf(&b, "baton_ready %d\n", phase == BT_API_READY);
    help(&b, "baton_uptime_seconds", "gauge", "Seconds since the service started.");
    bprintf(&b, "baton_uptime_seconds %.3f\n", (double)(bt_now(api->rt) - api->started_ns) / 1e9);
    store_metrics(api, &b);
    executor_metrics(api, &b);
    breaker_metrics(api, &b);
    limiter_metrics(api, &b);
    http_metrics(api, &b);
    runtime_metrics(api, &b);
    alloc_metrics(&b);
    help(&b, "baton_metrics_scrape_errors_total", "counter",
         "Actors that did not answer a scrape in time.");
    bprintf(&b, "baton_metrics_scrape_errors_total %llu\n",
            (unsigned long long)__atomic_load_n(&scrape_errors, __ATOMIC_RELAXED));
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
