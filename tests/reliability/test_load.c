/*
 * test_load.c: a burst of 10,000 start requests against the real
 * `baton serve` (CTest reliability_load).
 *
 * Config: executor.max_running = 4, max_pending = 256; ten exec jobs with
 * max_active = 1024 (the schema's upper bound) running /bin/sleep 600, so
 * no run ends during the test and no start is refused as a conflict; one
 * more job holds the run the prober reads. server.max_connections = 512,
 * max_connections_per_ip = 400, so the burst's BURST_CONNS keep-alive
 * connections and the prober's one are all accepted.
 *
 * While BURST_CONNS connections (one curl multi handle) send the 10,000
 * starts as fast as the service answers them, a prober thread GETs the probe
 * run every 5 ms on its own connection and times each answer, and a sampler
 * reads the service's VmRSS from /proc every 5 ms. It shows:
 *   - exactly max_running - 1 + max_pending starts succeed (the probe run
 *     holds one running slot) and every other one is 429 busy;
 *   - the store holds exactly those runs afterwards (256 pending);
 *   - peak RSS stays under RSS_BOUND_MIB above the idle service;
 *   - GET latency during the burst: p50/p99/max; the median under
 *     GET_P50_BOUND_MS, every GET under GET_MAX_BOUND_MS, and whether the
 *     target (every GET under GET_TARGET_MS) was met.
 * The burst first opens its connections (GET /healthz on each), so it
 * measures the service rather than the connection storm. Diagnostics:
 * LOAD_PROBE_PATH (probe another path, e.g. /healthz), LOAD_SERVER_EXTRA
 * (more [server] keys, e.g. "max_connections = 1024"), LOAD_PAUSE_MS (a pause before
 * the burst, to attach `perf trace -p PID`).
 */
#define _GNU_SOURCE
#include "e2e.h"

#include <criterion/criterion.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NSTARTS     10000
#define BURST_CONNS 128
#define NJOBS       10
#define MAX_RUNNING 4
#define MAX_PENDING 256
#define MAX_SAMPLES 100000

/* The bounds. The claim is GET_TARGET_MS for every GET during the burst,
 * and the release build asserts it. Since the exec kind starts its
 * children with clone(CLONE_VM | CLONE_VFORK) instead of fork(), the
 * slowest GET on the shared 2-core VM is 7 to 32 ms (it was 66 to 880 ms
 * with fork(), which stalled the run store's thread). The test runs alone
 * (RUN_SERIAL) so that `ctest -j` does not take the service's CPU; with
 * BATON_LOAD_STRICT=0 it asserts only the median (GET_P50_BOUND_MS) and
 * GET_MAX_BOUND_MS, for a machine known to be overloaded. Sanitizer
 * builds are several times slower and bigger and get looser, documented
 * bounds (docs/reliability.md, "Load"); BATON_LOAD_STRICT=1 holds them to
 * the target too. */
#define GET_TARGET_MS 100.0
#ifdef BATON_LOAD_SANITIZER
#define GET_P50_BOUND_MS 200.0
#define GET_MAX_BOUND_MS 10000.0
#define RSS_BOUND_MIB    512
#define STRICT_DEFAULT   0
#else
#define GET_P50_BOUND_MS 50.0
#define GET_MAX_BOUND_MS 5000.0
#define RSS_BOUND_MIB    64
#define STRICT_DEFAULT   1
#endif

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static e2e_svc_t svc;
static atomic_bool g_burst_done;
static char g_probe_id[64];

/* ----------------------------------------------------------------- RSS */

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

static atomic_long g_rss_peak;
static long g_rss_samples;

static void *rss_sampler(void *arg)
{
    (void)arg;
    while (!atomic_load(&g_burst_done)) {
        long k = rss_kib(svc.pid);
        if (k > atomic_load(&g_rss_peak))
            atomic_store(&g_rss_peak, k);
        g_rss_samples++;
        sleep_ms(5);
    }
    return NULL;
}

/* -------------------------------------------------------------- prober */

static double g_lat[MAX_SAMPLES], g_lat_at[MAX_SAMPLES];
static double g_burst_t0;
static int g_nlat, g_probe_errors;

static size_t discard(char *d, size_t s, size_t n, void *ud)
{
    (void)d, (void)ud;
    return s * n;
}

static void *prober(void *arg)
{
    (void)arg;
    CURL *c = curl_easy_init();
    char url[256];
    const char *probe = getenv("LOAD_PROBE_PATH");
    if (probe != NULL)
        snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", svc.port, probe);
    else
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/runs/%s", svc.port, g_probe_id);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    /* One warm-up request opens the keep-alive connection. */
    curl_easy_perform(c);
    while (!atomic_load(&g_burst_done) && g_nlat < MAX_SAMPLES) {
        double t0 = now_ms();
        long status = 0;
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        double dt = now_ms() - t0;
        if (status != 200)
            g_probe_errors++;
        else {
            g_lat_at[g_nlat] = t0 - g_burst_t0;
            g_lat[g_nlat++] = dt;
        }
        sleep_ms(5);
    }
    curl_easy_cleanup(c);
    return NULL;
}

/* --------------------------------------------------------------- burst */

typedef struct slot {
    CURL *c;
    char *body;
    size_t len;
} slot_t;

static size_t on_body(char *d, size_t s, size_t n, void *ud)
{
    slot_t *k = ud;
    size_t add = s * n;
    char *p = realloc(k->body, k->len + add + 1);
    if (p == NULL)
        return 0;
    memcpy(p + k->len, d, add);
    k->body = p;
    k->len += add;
    p[k->len] = '\0';
    return add;
}

static int g_ok, g_busy, g_busy_coded, g_other, g_failed;

static void slot_send(CURLM *m, slot_t *k, int n)
{
    char url[256];
    if (n < 0)
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/healthz", svc.port);
    else
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/jobs/l%d/runs", svc.port, n % NJOBS);
    free(k->body);
    k->body = NULL;
    k->len = 0;
    curl_easy_setopt(k->c, CURLOPT_URL, url);
    if (n >= 0) {
        curl_easy_setopt(k->c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(k->c, CURLOPT_POSTFIELDSIZE, 0L);
    } else {
        curl_easy_setopt(k->c, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(k->c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(k->c, CURLOPT_WRITEDATA, k);
    curl_easy_setopt(k->c, CURLOPT_PRIVATE, k);
    curl_easy_setopt(k->c, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(k->c, CURLOPT_NOSIGNAL, 1L);
    curl_multi_add_handle(m, k->c);
}

static double burst(void)
{
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)BURST_CONNS);
    static slot_t slots[BURST_CONNS];
    int sent = 0, done = 0;
    /* Open the connections first (GET /healthz on each), so the burst
     * measures the service, not the connection storm. */
    int warm = 0;
    for (int i = 0; i < BURST_CONNS; i++) {
        slots[i].c = curl_easy_init();
        slot_send(m, &slots[i], -1);
    }
    while (warm < BURST_CONNS) {
        int running;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL)
            if (msg->msg == CURLMSG_DONE) {
                curl_multi_remove_handle(m, msg->easy_handle);
                warm++;
            }
        if (warm < BURST_CONNS)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    g_burst_t0 = now_ms();
    double t0 = g_burst_t0;
    for (int i = 0; i < BURST_CONNS; i++)
        slot_send(m, &slots[i], sent++);
    while (done < NSTARTS) {
        int running;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            slot_t *k;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&k);
            long status = 0;
            if (msg->data.result == CURLE_OK)
                curl_easy_getinfo(k->c, CURLINFO_RESPONSE_CODE, &status);
            if (status == 201) {
                g_ok++;
            } else if (status == 429) {
                g_busy++;
                if (k->body != NULL && strstr(k->body, "\"code\":\"busy\"") != NULL)
                    g_busy_coded++;
            } else if (status == 0) {
                g_failed++;
            } else {
                if (g_other++ < 5)
                    fprintf(stderr, "load: unexpected answer %ld: %s\n", status,
                            k->body ? k->body : "");
            }
            curl_multi_remove_handle(m, k->c);
            done++;
            if (sent < NSTARTS)
                slot_send(m, k, sent++);
        }
        if (done < NSTARTS)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    double dt = now_ms() - t0;
    for (int i = 0; i < BURST_CONNS; i++) {
        curl_easy_cleanup(slots[i].c);
        free(slots[i].body);
    }
    curl_multi_cleanup(m);
    return dt;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int count_runs(const char *query)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/runs?limit=1000&%s", query);
    e2e_resp_t r;
    cr_assert(e2e_http(&svc, "GET", path, NULL, NULL, true, &r));
    cr_assert_eq(r.status, 200, "%s", r.body);
    cJSON *o = cJSON_Parse(r.body);
    int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "runs"));
    cJSON_Delete(o);
    e2e_resp_free(&r);
    return n;
}

Test(load, a_burst_of_starts_is_refused_busy_beyond_max_pending_and_stays_responsive,
     .timeout = 300)
{
    char cfg[4096];
    size_t n = (size_t)snprintf(cfg, sizeof(cfg),
                                "[executor]\nmax_running = %d\nmax_pending = %d\n"
                                "shutdown_timeout = \"20s\"\n\n"
                                "[jobs.probe]\nkind = \"exec\"\nstop_grace = \"1s\"\n"
                                "[jobs.probe.params]\nargv = [\"/bin/sleep\", \"600\"]\n\n",
                                MAX_RUNNING, MAX_PENDING);
    for (int j = 0; j < NJOBS; j++)
        n += (size_t)snprintf(cfg + n, sizeof(cfg) - n,
                              "[jobs.l%d]\nkind = \"exec\"\nmax_active = 1024\n"
                              "stop_grace = \"1s\"\n[jobs.l%d.params]\n"
                              "argv = [\"/bin/sleep\", \"600\"]\n\n",
                              j, j);
    snprintf(svc.server_extra, sizeof(svc.server_extra),
             "max_connections = 512\nmax_connections_per_ip = 400\n%s",
             getenv("LOAD_SERVER_EXTRA") ? getenv("LOAD_SERVER_EXTRA") : "");
    e2e_init(&svc);
    e2e_write_config(&svc, cfg);
    cr_assert(e2e_start(&svc, 30000), "the service did not start");

    e2e_resp_t r;
    cr_assert(e2e_http(&svc, "POST", "/v1/jobs/probe/runs", NULL, NULL, true, &r));
    cr_assert_eq(r.status, 201, "%s", r.body);
    e2e_json_str(r.body, "id", g_probe_id, sizeof(g_probe_id));
    e2e_resp_free(&r);

    /* LOAD_PAUSE_MS: time to attach a tracer (perf trace -p PID). */
    printf("load: service pid %d\n", (int)svc.pid);
    fflush(stdout);
    sleep_ms(getenv("LOAD_PAUSE_MS") ? atoi(getenv("LOAD_PAUSE_MS")) : 200);
    long rss_idle = rss_kib(svc.pid);
    atomic_store(&g_rss_peak, rss_idle);

    pthread_t tp, tr;
    pthread_create(&tr, NULL, rss_sampler, NULL);
    pthread_create(&tp, NULL, prober, NULL);
    sleep_ms(50);
    g_burst_t0 = now_ms();
    double dt = burst();
    atomic_store(&g_burst_done, true);
    pthread_join(tp, NULL);
    pthread_join(tr, NULL);
    long rss_after = rss_kib(svc.pid);

    int expect_ok = MAX_RUNNING - 1 + MAX_PENDING;
    int pending = count_runs("state=pending");
    int running = count_runs("state=running");

    for (int i = 0; i < g_nlat; i++)
        if (g_lat[i] > GET_TARGET_MS / 2)
            printf("load: slow GET at +%.0f ms of the burst: %.1f ms\n", g_lat_at[i], g_lat[i]);
    qsort(g_lat, (size_t)g_nlat, sizeof(double), cmp_double);
    double p50 = g_nlat ? g_lat[g_nlat / 2] : -1;
    double p99 = g_nlat ? g_lat[(size_t)((g_nlat - 1) * 0.99)] : -1;
    double mx = g_nlat ? g_lat[g_nlat - 1] : -1;
    long peak = atomic_load(&g_rss_peak);
    const char *strict_env = getenv("BATON_LOAD_STRICT");
    bool strict = strict_env != NULL ? atoi(strict_env) != 0 : STRICT_DEFAULT;
    double max_bound = strict ? GET_TARGET_MS : GET_MAX_BOUND_MS;
    printf("load: %d starts over %d connections in %.0f ms (%.0f/s): 201=%d 429=%d (busy code "
           "%d) other=%d no_answer=%d; store: running=%d pending=%d\n",
           NSTARTS, BURST_CONNS, dt, NSTARTS / (dt / 1000.0), g_ok, g_busy, g_busy_coded, g_other,
           g_failed, running, pending);
    printf("load: GET /v1/runs/{id} during the burst: %d samples p50=%.1f p99=%.1f max=%.1f ms "
           "(target max %.0f ms: %s; asserted p50 < %.0f, max < %.0f), %d errors\n",
           g_nlat, p50, p99, mx, GET_TARGET_MS, mx < GET_TARGET_MS ? "met" : "NOT met",
           GET_P50_BOUND_MS, max_bound, g_probe_errors);
    printf("load: VmRSS idle=%ld KiB peak=%ld KiB (+%ld KiB, bound +%d MiB) after=%ld KiB, %ld "
           "samples\n",
           rss_idle, peak, peak - rss_idle, RSS_BOUND_MIB, rss_after, g_rss_samples);
    fflush(stdout);

    cr_expect_eq(g_ok, expect_ok);
    cr_expect_eq(g_busy, NSTARTS - expect_ok);
    cr_expect_eq(g_busy_coded, g_busy, "every 429 has the code busy");
    cr_expect_eq(g_other + g_failed, 0);
    cr_expect_eq(pending, MAX_PENDING);
    cr_expect_eq(running, MAX_RUNNING);
    cr_expect(g_nlat >= 20, "too few GET samples: %d", g_nlat);
    cr_expect_eq(g_probe_errors, 0);
    cr_expect(p50 < GET_P50_BOUND_MS, "the median GET took %.1f ms during the burst", p50);
    cr_expect(mx < max_bound, "a GET took %.1f ms during the burst (bound %.0f ms)", mx, max_bound);
    cr_expect(peak - rss_idle < RSS_BOUND_MIB * 1024L, "RSS grew by %ld KiB", peak - rss_idle);

    int rc = e2e_stop(&svc, SIGTERM, 60000);
    cr_expect_eq(rc, 0, "SIGTERM exit status %d", rc);
    char *log = e2e_read_log(&svc);
    const char *bad[] = {"AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                         "runtime error:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect(strstr(log, bad[i]) == NULL, "sanitizer report in the service log");
    free(log);
    e2e_cleanup(&svc);
}
