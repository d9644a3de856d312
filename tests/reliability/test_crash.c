/*
 * test_crash.c: crash recovery of the real `baton serve` (CTest
 * reliability_crash; reliability_crash_long with BATON_LONG=1).
 *
 * Concurrent clients start, pause, resume, stop and read runs of exec jobs
 * (short sleeps that complete) and http jobs (paging a local pager_server,
 * offset and cursor mode, with slow pages), while the main thread kills the
 * service with SIGKILL at random points (sometimes again during its
 * start-up recovery) and restarts it on the same state directory, several
 * rounds. Every acknowledged answer is recorded (run id, the state the API
 * said, the idempotency key of a start). A sampler lists each job's active
 * runs during the whole test. After the last restart every paused run is
 * resumed until all runs are terminal, then the test checks:
 *   - lost:       every acknowledged run id exists;
 *   - invalid:    every run's history is a path of the state machine
 *                 (../shared/DESIGN.md), continuous, ending in the run's
 *                 state; every acknowledged state is on the history; an
 *                 acknowledged terminal state is the final one; one
 *                 idempotency key never names two runs;
 *   - double_active: never more than max_active non-terminal runs of a job,
 *                 from the histories (the store's global event order) and
 *                 from the sampler;
 *   - http_dupes: every http run's output holds each item at most once, a
 *                 completed run's exactly once, in order;
 *   - blocked_restarts: every restart becomes ready (a stale lock never
 *                 blocks it);
 *   - recovery_ms: restart (fork+exec) to /readyz 200, min/median/max.
 * Environment: BATON_LONG=1 (soak: many rounds), BATON_CRASH_ROUNDS=N,
 * BATON_CRASH_SEED=S.
 */
#define _GNU_SOURCE
#include "e2e.h"
#include "pager_server.h"

#include <criterion/criterion.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef BATON_BIN
#error "BATON_BIN must be defined"
#endif

#define NCLIENTS   4
#define NITEMS     300
#define READY_MS   30000
#define MAX_ROUNDS 1000

/* The jobs: name, max_active, http (1) or exec (0). */
typedef struct job {
    const char *name;
    int max_active;
    bool http;
} job_t;

static const job_t JOBS[] = {
    {"e0", 1, false}, {"e1", 1, false}, {"e2", 1, false}, {"e3", 1, false},
    {"e4", 2, false}, {"h0", 1, true},  {"h1", 1, true},  {"h2", 2, true},
};
#define NJOBS ((int)(sizeof(JOBS) / sizeof(JOBS[0])))

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------ the client */

typedef struct sink {
    char *p;
    size_t len;
} sink_t;

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    sink_t *k = ud;
    size_t add = size * n;
    char *p = realloc(k->p, k->len + add + 1);
    if (p == NULL)
        return 0;
    memcpy(p + k->len, data, add);
    k->p = p;
    k->len += add;
    p[k->len] = '\0';
    return add;
}

static _Atomic uint16_t g_port;

/* One request on a keep-alive handle. Returns the status, or 0 when no
 * answer came (the outcome is unknown); *body is malloc'd (or NULL). */
static long req(CURL *c, const char *method, const char *path, const char *hdr, char **body)
{
    char url[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)atomic_load(&g_port), path);
    sink_t k = {0};
    struct curl_slist *hs = NULL;
    if (hdr != NULL)
        hs = curl_slist_append(hs, hdr);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &k);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hs);
    if (status == 0) {
        free(k.p);
        k.p = NULL;
    }
    if (body != NULL)
        *body = k.p;
    else
        free(k.p);
    return status;
}

static void json_str(const cJSON *o, const char *key, char *out, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    snprintf(out, n, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

/* ----------------------------------------------------- the record of acks */

typedef struct ack {
    char id[40];
    char state[12];
    char key[24]; /* the start's idempotency key, "" otherwise */
    char op;      /* s(tart) p(ause) r(esume) x (stop) g(et) */
} ack_t;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static ack_t *g_acks;
static size_t g_nacks, g_capacks;
static atomic_bool g_stop_clients;
static atomic_long g_ops, g_unknown, g_5xx, g_sample_over, g_samples, g_bad_answers;

/* Counts a 5xx answer and prints the first few. */
static void note_5xx(long st, const char *path, const char *body)
{
    if (st >= 500 && atomic_fetch_add(&g_5xx, 1) < 5)
        fprintf(stderr, "crash: %s answered %ld: %s\n", path, st, body != NULL ? body : "");
}

static void ack_add(const char *id, const char *state, const char *key, char op)
{
    pthread_mutex_lock(&g_mu);
    if (g_nacks == g_capacks) {
        g_capacks = g_capacks ? 2 * g_capacks : 1024;
        g_acks = realloc(g_acks, g_capacks * sizeof(*g_acks));
        if (g_acks == NULL)
            abort(); /* a client thread: no Criterion assert here */
    }
    ack_t *a = &g_acks[g_nacks++];
    memset(a, 0, sizeof(*a));
    snprintf(a->id, sizeof(a->id), "%s", id);
    snprintf(a->state, sizeof(a->state), "%s", state);
    snprintf(a->key, sizeof(a->key), "%s", key != NULL ? key : "");
    a->op = op;
    pthread_mutex_unlock(&g_mu);
}

/* A run id from the acks, mostly a recent one; false if none yet. */
static bool pick_run(unsigned *seed, char *id, size_t n)
{
    bool ok = false;
    pthread_mutex_lock(&g_mu);
    if (g_nacks > 0) {
        size_t window = g_nacks < 40 ? g_nacks : 40;
        size_t i = rand_r(seed) % 5 == 0 ? (size_t)rand_r(seed) % g_nacks
                                         : g_nacks - 1 - (size_t)rand_r(seed) % window;
        snprintf(id, n, "%s", g_acks[i].id);
        ok = true;
    }
    pthread_mutex_unlock(&g_mu);
    return ok;
}

/* Records a 2xx answer that carries a run. */
static void record(const char *body, const char *key, char op)
{
    cJSON *o = cJSON_Parse(body != NULL ? body : "");
    char id[40], state[12];
    json_str(o, "id", id, sizeof(id));
    json_str(o, "state", state, sizeof(state));
    cJSON_Delete(o);
    if (id[0] == '\0') {
        /* Counted, not asserted: this runs on a client thread. */
        atomic_fetch_add(&g_bad_answers, 1);
        fprintf(stderr, "crash: a 2xx answer without a run id: %s\n", body ? body : "(none)");
        return;
    }
    ack_add(id, state, key, op);
}

static void *client(void *arg)
{
    int me = (int)(intptr_t)arg;
    unsigned seed = (unsigned)(time(NULL) ^ (me * 7919));
    CURL *c = curl_easy_init();
    int nkey = 0;
    while (!atomic_load(&g_stop_clients)) {
        int dice = rand_r(&seed) % 100;
        char path[160], id[40];
        char *body = NULL;
        long st;
        if (dice < 35) {
            /* A keyed start; an unknown outcome is retried with the key, so
             * a lost answer is replayed, not duplicated. */
            const job_t *j = &JOBS[rand_r(&seed) % NJOBS];
            char key[24], hdr[64];
            snprintf(key, sizeof(key), "c%d-%d", me, nkey++);
            snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s", key);
            snprintf(path, sizeof(path), "/v1/jobs/%s/runs", j->name);
            for (int attempt = 0; attempt < 50 && !atomic_load(&g_stop_clients); attempt++) {
                st = req(c, "POST", path, hdr, &body);
                atomic_fetch_add(&g_ops, 1);
                if (st == 201 || st == 200)
                    record(body, key, 's');
                note_5xx(st, path, body);
                free(body);
                body = NULL;
                if (st != 0 && st < 500)
                    break;
                atomic_fetch_add(&g_unknown, 1);
                sleep_ms(50);
            }
            sleep_ms(2 + rand_r(&seed) % 10);
            continue;
        }
        if (!pick_run(&seed, id, sizeof(id))) {
            sleep_ms(5);
            continue;
        }
        const char *verb = dice < 48 ? "pause" : dice < 66 ? "resume" : dice < 70 ? "stop" : NULL;
        if (verb != NULL) {
            snprintf(path, sizeof(path), "/v1/runs/%s/%s", id, verb);
            st = req(c, "POST", path, NULL, &body);
        } else {
            snprintf(path, sizeof(path), "/v1/runs/%s", id);
            st = req(c, "GET", path, NULL, &body);
        }
        atomic_fetch_add(&g_ops, 1);
        if (st == 200)
            record(body, NULL, verb == NULL ? 'g' : verb[0] == 's' ? 'x' : verb[0]);
        else if (st == 0 || st >= 500)
            atomic_fetch_add(&g_unknown, 1);
        note_5xx(st, path, body);
        free(body);
        sleep_ms(st == 0 ? 20 : 2 + rand_r(&seed) % 10);
    }
    curl_easy_cleanup(c);
    return NULL;
}

/* Lists each job's active runs; counts samples above max_active. */
static void *sampler(void *arg)
{
    (void)arg;
    CURL *c = curl_easy_init();
    while (!atomic_load(&g_stop_clients)) {
        for (int j = 0; j < NJOBS; j++) {
            char path[160], *body = NULL;
            snprintf(path, sizeof(path), "/v1/runs?job=%s&state=pending,running,paused",
                     JOBS[j].name);
            if (req(c, "GET", path, NULL, &body) == 200) {
                cJSON *o = cJSON_Parse(body);
                int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "runs"));
                cJSON_Delete(o);
                atomic_fetch_add(&g_samples, 1);
                if (n > JOBS[j].max_active) {
                    atomic_fetch_add(&g_sample_over, 1);
                    fprintf(stderr, "crash: sampled %d active runs of job %s: %s\n", n,
                            JOBS[j].name, body);
                }
            }
            free(body);
        }
        sleep_ms(30);
    }
    curl_easy_cleanup(c);
    return NULL;
}

/* ---------------------------------------------------- the service process */

static e2e_svc_t svc;

static pid_t spawn_service(void)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fd = open(svc.log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
            close(fd);
        }
        execl(BATON_BIN, BATON_BIN, "serve", "--config", svc.config, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Starts the service and polls /readyz every 2 ms. Returns the time to
 * ready in ms, or -1 (exited, or not ready within READY_MS). */
static long start_timed(CURL *c)
{
    long long t0 = now_ms();
    svc.pid = spawn_service();
    while (now_ms() - t0 < READY_MS) {
        int st;
        if (waitpid(svc.pid, &st, WNOHANG) == svc.pid) {
            fprintf(stderr, "crash: the service exited during start-up (status %d)\n",
                    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
            svc.pid = 0;
            return -1;
        }
        if (req(c, "GET", "/readyz", NULL, NULL) == 200)
            return (long)(now_ms() - t0);
        sleep_ms(2);
    }
    return -1;
}

/* Runs running just before a kill, by kind: what the kills interrupt. */
static int g_inflight_exec, g_inflight_http;

static void count_inflight(CURL *c)
{
    char *body = NULL;
    if (req(c, "GET", "/v1/runs?state=running&limit=1000", NULL, &body) == 200) {
        cJSON *o = cJSON_Parse(body);
        const cJSON *r;
        cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(o, "runs"))
        {
            char job[16];
            json_str(r, "job", job, sizeof(job));
            if (job[0] == 'h')
                g_inflight_http++;
            else
                g_inflight_exec++;
        }
        cJSON_Delete(o);
    }
    free(body);
}

static void kill9(void)
{
    kill(svc.pid, SIGKILL);
    waitpid(svc.pid, NULL, 0);
    svc.pid = 0;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------- the checks */

static int state_of(const char *s)
{
    static const char *const names[] = {"pending",   "running", "paused",
                                        "completed", "failed",  "stopped"};
    for (int i = 0; i < 6; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static bool terminal(int s)
{
    return s >= 3;
}

/* The state machine of ../shared/DESIGN.md, written out again here (not
 * taken from the store's table, which is what is under test). from -1 is
 * the creation. */
static bool allowed(int from, int to)
{
    static const char *const ok[] = {
        /* (new) */ "pending running",
        /* pending */ "running paused stopped",
        /* running */ "paused completed failed stopped",
        /* paused */ "pending running stopped",
    };
    static const char *const names[] = {"pending",   "running", "paused",
                                        "completed", "failed",  "stopped"};
    if (to < 0 || from >= 3)
        return false;
    const char *list = ok[from + 1];
    const char *p = strstr(list, names[to]);
    return p != NULL;
}

typedef struct run {
    char id[40], job[16], state[12], error[120];
    long long first_seq, end_seq; /* creation event; terminal event (or LLONG_MAX) */
    unsigned visited;             /* mask of the states on the history */
} run_t;

static run_t *g_runs;
static size_t g_nruns;

static run_t *find_run(const char *id)
{
    for (size_t i = 0; i < g_nruns; i++)
        if (strcmp(g_runs[i].id, id) == 0)
            return &g_runs[i];
    return NULL;
}

/* GET every run (paged) into g_runs. */
static void load_runs(CURL *c)
{
    free(g_runs);
    g_runs = NULL;
    g_nruns = 0;
    size_t cap = 0;
    char after[64] = "";
    for (;;) {
        char path[160], *body = NULL;
        snprintf(path, sizeof(path), "/v1/runs?limit=1000%s%s", after[0] ? "&after=" : "", after);
        long st = req(c, "GET", path, NULL, &body);
        cr_assert_eq(st, 200, "GET %s: %ld %s", path, st, body ? body : "");
        cJSON *o = cJSON_Parse(body);
        const cJSON *r;
        cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(o, "runs"))
        {
            if (g_nruns == cap) {
                cap = cap ? 2 * cap : 256;
                g_runs = realloc(g_runs, cap * sizeof(*g_runs));
            }
            run_t *x = &g_runs[g_nruns++];
            memset(x, 0, sizeof(*x));
            json_str(r, "id", x->id, sizeof(x->id));
            json_str(r, "job", x->job, sizeof(x->job));
            json_str(r, "state", x->state, sizeof(x->state));
            json_str(r, "last_error", x->error, sizeof(x->error));
        }
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(o, "next");
        bool more = cJSON_IsString(next);
        if (more)
            snprintf(after, sizeof(after), "%s", next->valuestring);
        cJSON_Delete(o);
        free(body);
        if (!more)
            break;
    }
}

static const job_t *job_of(const char *name)
{
    for (int j = 0; j < NJOBS; j++)
        if (strcmp(JOBS[j].name, name) == 0)
            return &JOBS[j];
    return NULL;
}

/* Checks one run's history; returns the number of problems. */
static int check_history(CURL *c, run_t *x)
{
    char path[160], *body = NULL;
    snprintf(path, sizeof(path), "/v1/runs/%s/events", x->id);
    long st = req(c, "GET", path, NULL, &body);
    cr_assert_eq(st, 200, "GET %s: %ld", path, st);
    cJSON *o = cJSON_Parse(body);
    const cJSON *e;
    int bad = 0, prev = -2;
    x->first_seq = -1;
    x->end_seq = LLONG_MAX;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(o, "events"))
    {
        const cJSON *from = cJSON_GetObjectItemCaseSensitive(e, "from");
        const cJSON *to = cJSON_GetObjectItemCaseSensitive(e, "to");
        long long seq = (long long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "seq"));
        int f = cJSON_IsString(from) ? state_of(from->valuestring) : -1;
        int t = cJSON_IsString(to) ? state_of(to->valuestring) : -1;
        if (prev == -2) {
            x->first_seq = seq;
            if (f != -1) {
                fprintf(stderr, "crash: run %s: first event is not a creation: %s\n", x->id, body);
                bad++;
            }
        } else if (f != prev) {
            fprintf(stderr, "crash: run %s: history is not continuous: %s\n", x->id, body);
            bad++;
        }
        if (!allowed(f, t)) {
            fprintf(stderr, "crash: run %s: invalid transition %d -> %d: %s\n", x->id, f, t, body);
            bad++;
        }
        if (t >= 0) {
            x->visited |= 1u << t;
            if (terminal(t) && x->end_seq == LLONG_MAX)
                x->end_seq = seq;
        }
        prev = t;
    }
    if (prev < 0 || prev != state_of(x->state)) {
        fprintf(stderr, "crash: run %s is %s but its history ends elsewhere: %s\n", x->id, x->state,
                body);
        bad++;
    }
    cJSON_Delete(o);
    free(body);
    return bad;
}

/* Reads an http run's output; counts duplicates, and for a completed run
 * also missing or out-of-order items. Returns the duplicates; *missing. */
static int check_output(const run_t *x, int *missing)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/state/http/%s.jsonl", svc.dir, x->id);
    *missing = 0;
    FILE *f = fopen(path, "r");
    bool completed = strcmp(x->state, "completed") == 0;
    if (f == NULL) {
        if (completed) {
            fprintf(stderr, "crash: completed run %s has no output %s\n", x->id, path);
            *missing = NITEMS;
        }
        return 0;
    }
    static unsigned char seen[NITEMS];
    memset(seen, 0, sizeof(seen));
    char line[256];
    int dupes = 0, n = 0, disorder = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
        int i = cJSON_IsNumber(id) ? id->valueint : -1;
        cJSON_Delete(o);
        if (i < 0 || i >= NITEMS) {
            fprintf(stderr, "crash: run %s: bad line %d in its output: %s", x->id, n, line);
            dupes++;
        } else if (seen[i]++) {
            dupes++;
        }
        if (i != n)
            disorder++;
        n++;
    }
    fclose(f);
    if (completed && (n != NITEMS || disorder != 0))
        *missing = NITEMS - n + disorder;
    if (dupes != 0 || *missing != 0)
        fprintf(stderr, "crash: run %s (%s): output %s: %d lines, %d duplicates, %d out of place\n",
                x->id, x->state, path, n, dupes, disorder);
    return dupes;
}

/* -------------------------------------------------------------- the test */

static ps_server_t *pager;

static void write_config(void)
{
    char jobs[8192];
    size_t n = 0;
    n += (size_t)snprintf(jobs + n, sizeof(jobs) - n,
                          "[executor]\nmax_running = 3\nmax_pending = 64\n"
                          "shutdown_timeout = \"10s\"\nprogress_every = \"100ms\"\n\n");
    unsigned port = ps_port(pager);
    for (int j = 0; j < NJOBS; j++) {
        const job_t *jb = &JOBS[j];
        n += (size_t)snprintf(jobs + n, sizeof(jobs) - n,
                              "[jobs.%s]\nkind = \"%s\"\nmax_active = %d\nstop_grace = \"2s\"\n",
                              jb->name, jb->http ? "http" : "exec", jb->max_active);
        if (strcmp(jb->name, "e3") == 0)
            n += (size_t)snprintf(jobs + n, sizeof(jobs) - n, "recovery = \"resume\"\n");
        n += (size_t)snprintf(jobs + n, sizeof(jobs) - n, "[jobs.%s.params]\n", jb->name);
        if (!jb->http) {
            static const char *const argv[] = {
                "[\"/bin/sleep\", \"0.2\"]",
                "[\"/bin/sleep\", \"0.5\"]",
                "[\"/bin/sh\", \"-c\", \"sleep 0.$(( $$ % 9 + 1 ))\"]",
                "[\"/bin/sleep\", \"0.3\"]",
                "[\"/bin/sleep\", \"0.4\"]",
            };
            n += (size_t)snprintf(jobs + n, sizeof(jobs) - n, "argv = %s\n\n", argv[j]);
        } else if (strcmp(jb->name, "h1") == 0) {
            n += (size_t)snprintf(
                jobs + n, sizeof(jobs) - n,
                "url = \"http://127.0.0.1:%u/list?cursor={cursor}&limit={limit}\"\n"
                "mode = \"cursor\"\ncursor_path = \"meta.next\"\n"
                "items_path = \"items\"\nlimit = 25\nmax_attempts = 100\n"
                "backoff_base_ms = 10\nbackoff_cap_ms = 200\n\n",
                port);
        } else {
            n += (size_t)snprintf(
                jobs + n, sizeof(jobs) - n,
                "url = \"http://127.0.0.1:%u/items?offset={offset}&limit={limit}\"\n"
                "items_path = \"data.items\"\nlimit = %d\nmax_attempts = 100\n"
                "backoff_base_ms = 10\nbackoff_cap_ms = 200\n\n",
                port, strcmp(jb->name, "h0") == 0 ? 20 : 30);
        }
    }
    e2e_write_config(&svc, jobs);
}

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? atoi(v) : dflt;
}

Test(crash, kill9_under_load_loses_nothing)
{
    bool longmode = env_int("BATON_LONG", 0) != 0;
    int rounds = env_int("BATON_CRASH_ROUNDS", longmode ? 150 : 8);
    cr_assert(rounds >= 1 && rounds <= MAX_ROUNDS);
    unsigned seed = (unsigned)env_int("BATON_CRASH_SEED", (int)time(NULL));
    printf("crash: seed=%u rounds=%d%s\n", seed, rounds, longmode ? " (long)" : "");
    fflush(stdout);

    cr_assert_eq(ps_start(NITEMS, &pager), 0);
    /* Slow pages: 250 ms for requests 5..6, 42..43, ... and 30 503s. */
    for (uint32_t i = 0; i < 30; i++) {
        ps_fault_t f = {.from = 5 + 37 * i, .count = 2, .delay_ms = 250};
        if (i % 3 == 2)
            f.status = 503;
        ps_fault_add(pager, &f);
    }
    e2e_init(&svc);
    atomic_store(&g_port, svc.port);
    write_config();

    CURL *c = curl_easy_init();
    long recov[MAX_ROUNDS];
    int nrecov = 0, blocked = 0, early_kills = 0;
    long t = start_timed(c);
    cr_assert(t >= 0, "the service did not start");

    pthread_t th[NCLIENTS + 1];
    for (int i = 0; i < NCLIENTS; i++)
        pthread_create(&th[i], NULL, client, (void *)(intptr_t)i);
    pthread_create(&th[NCLIENTS], NULL, sampler, NULL);

    long long t_start = now_ms();
    for (int r = 0; r < rounds; r++) {
        ps_set_delay(pager, (uint32_t)(rand_r(&seed) % 40));
        sleep_ms(200 + rand_r(&seed) % 1300);
        count_inflight(c);
        kill9();
        /* Sometimes kill it again while it starts up and recovers. */
        if (rand_r(&seed) % 4 == 0) {
            svc.pid = spawn_service();
            sleep_ms(rand_r(&seed) % 60);
            kill9();
            early_kills++;
        }
        long ms = start_timed(c);
        if (ms < 0) {
            blocked++;
            char *log = e2e_read_log(&svc);
            const char *tail = strlen(log) > 3000 ? log + strlen(log) - 3000 : log;
            fprintf(stderr, "crash: restart %d did not become ready; log tail:\n%s\n", r, tail);
            free(log);
            if (svc.pid != 0)
                kill9();
            long again = start_timed(c);
            cr_assert(again >= 0, "the service cannot be restarted");
        } else {
            recov[nrecov++] = ms;
        }
    }
    long long t_load = now_ms() - t_start;
    atomic_store(&g_stop_clients, true);
    for (int i = 0; i <= NCLIENTS; i++)
        pthread_join(th[i], NULL);

    /* Let every run finish: resume paused ones (a conflict or busy answer
     * is retried on the next pass). */
    long long deadline = now_ms() + 120000;
    size_t active = 0;
    for (;;) {
        load_runs(c);
        active = 0;
        for (size_t i = 0; i < g_nruns; i++) {
            int s = state_of(g_runs[i].state);
            if (terminal(s))
                continue;
            active++;
            if (s == 2) {
                char path[160];
                snprintf(path, sizeof(path), "/v1/runs/%s/resume", g_runs[i].id);
                req(c, "POST", path, NULL, NULL);
            }
        }
        if (active == 0 || now_ms() > deadline)
            break;
        sleep_ms(100);
    }
    cr_expect_eq(active, 0, "%zu runs are still active after 120 s", active);

    /* The checks. */
    int lost = 0, invalid = 0, double_active = 0, dupes = 0, missing = 0, completed_http = 0;
    for (size_t i = 0; i < g_nruns; i++)
        invalid += check_history(c, &g_runs[i]);
    for (size_t i = 0; i < g_nacks; i++) {
        const ack_t *a = &g_acks[i];
        run_t *x = find_run(a->id);
        if (x == NULL) {
            fprintf(stderr, "crash: acknowledged run %s (%c -> %s) is lost\n", a->id, a->op,
                    a->state);
            lost++;
            continue;
        }
        int as = state_of(a->state);
        if (as < 0 || (x->visited & (1u << as)) == 0) {
            fprintf(stderr,
                    "crash: run %s was acknowledged %s (%c) but its history never was "
                    "(mask 0x%x)\n",
                    a->id, a->state, a->op, x->visited);
            invalid++;
        } else if (terminal(state_of(a->state)) && strcmp(a->state, x->state) != 0) {
            fprintf(stderr, "crash: run %s was acknowledged %s (%c) but ended %s\n", a->id,
                    a->state, a->op, x->state);
            invalid++;
        }
        if (a->key[0] != '\0')
            for (size_t k = 0; k < i; k++)
                if (strcmp(g_acks[k].key, a->key) == 0 && strcmp(g_acks[k].id, a->id) != 0) {
                    fprintf(stderr, "crash: idempotency key %s named runs %s and %s\n", a->key,
                            g_acks[k].id, a->id);
                    invalid++;
                    break;
                }
    }
    /* Active runs per job, in the store's global event order: +1 at the
     * creation, -1 at the terminal event. */
    for (int j = 0; j < NJOBS; j++) {
        for (size_t i = 0; i < g_nruns; i++) {
            const run_t *x = &g_runs[i];
            if (strcmp(x->job, JOBS[j].name) != 0)
                continue;
            int overlap = 1;
            for (size_t k = 0; k < g_nruns; k++) {
                const run_t *y = &g_runs[k];
                if (k != i && strcmp(y->job, x->job) == 0 && y->first_seq < x->first_seq &&
                    y->end_seq > x->first_seq)
                    overlap++;
            }
            if (overlap > JOBS[j].max_active) {
                fprintf(stderr, "crash: run %s of job %s was created with %d active runs\n", x->id,
                        x->job, overlap);
                double_active++;
            }
        }
    }
    double_active += (int)atomic_load(&g_sample_over);
    for (size_t i = 0; i < g_nruns; i++) {
        const job_t *jb = job_of(g_runs[i].job);
        if (jb == NULL || !jb->http)
            continue;
        int m = 0;
        dupes += check_output(&g_runs[i], &m);
        missing += m;
        completed_http += strcmp(g_runs[i].state, "completed") == 0;
    }

    qsort(recov, (size_t)nrecov, sizeof(long), cmp_long);
    int by_state[6] = {0};
    for (size_t i = 0; i < g_nruns; i++)
        by_state[state_of(g_runs[i].state) >= 0 ? state_of(g_runs[i].state) : 0]++;
    printf("crash: load %.1f s, %ld requests (%ld without an answer, %ld of them 5xx), %zu "
           "acknowledged "
           "answers, %ld list samples, %d kills during start-up\n",
           t_load / 1000.0, atomic_load(&g_ops), atomic_load(&g_unknown), atomic_load(&g_5xx),
           g_nacks, atomic_load(&g_samples), early_kills);
    printf("crash: running at the kills (summed over rounds): exec=%d http=%d\n", g_inflight_exec,
           g_inflight_http);
    printf(
        "crash: runs by state: completed=%d failed=%d stopped=%d (other %d); http completed=%d\n",
        by_state[3], by_state[4], by_state[5], by_state[0] + by_state[1] + by_state[2],
        completed_http);
    /* Why runs failed: exec runs fail "interrupted" by design (recovery
     * FAIL); an http run has no reason to fail here, so it is counted. */
    int http_failed = 0;
    for (size_t k = 0; k < g_nruns; k++) {
        if (strcmp(g_runs[k].state, "failed") != 0)
            continue;
        const job_t *jb = job_of(g_runs[k].job);
        bool seen = false;
        for (size_t m = 0; m < k && !seen; m++)
            seen = strcmp(g_runs[m].state, "failed") == 0 &&
                   strcmp(g_runs[m].error, g_runs[k].error) == 0 &&
                   job_of(g_runs[m].job)->http == jb->http;
        if (jb->http)
            http_failed++;
        if (!seen)
            printf("crash: a failed %s run: %s\n", jb->http ? "http" : "exec", g_runs[k].error);
    }
    printf(
        "crash: rounds=%d runs=%zu lost=%d invalid=%d double_active=%d http_dupes=%d "
        "http_missing=%d http_failed=%d blocked_restarts=%d recovery_ms min/med/max=%ld/%ld/%ld\n",
        rounds, g_nruns, lost, invalid, double_active, dupes, missing, http_failed, blocked,
        nrecov ? recov[0] : -1, nrecov ? recov[nrecov / 2] : -1, nrecov ? recov[nrecov - 1] : -1);
    fflush(stdout);

    /* A clean drain at the end, and no sanitizer report in any life. */
    int rc = e2e_stop(&svc, SIGTERM, 30000);
    cr_expect_eq(rc, 0, "SIGTERM exit status %d", rc);
    char *log = e2e_read_log(&svc);
    const char *badw[] = {"AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                          "runtime error:"};
    for (size_t i = 0; i < sizeof(badw) / sizeof(badw[0]); i++)
        cr_expect(strstr(log, badw[i]) == NULL, "sanitizer report in the service log");
    free(log);

    cr_expect(g_nacks > 0 && completed_http > 0, "the load did nothing");
    cr_expect_eq(lost, 0);
    cr_expect_eq(invalid, 0);
    cr_expect_eq(double_active, 0);
    cr_expect_eq(dupes, 0);
    cr_expect_eq(missing, 0);
    cr_expect_eq(blocked, 0);
    cr_expect_eq(http_failed, 0);
    cr_expect_eq(atomic_load(&g_bad_answers), 0, "2xx answers without a run id");
    curl_easy_cleanup(c);
    if (lost == 0 && invalid == 0 && double_active == 0 && dupes == 0 && missing == 0 &&
        blocked == 0)
        e2e_cleanup(&svc);
    else
        fprintf(stderr, "crash: state kept in %s\n", svc.dir);
    ps_stop(pager);
    free(g_runs);
    free(g_acks);
}
