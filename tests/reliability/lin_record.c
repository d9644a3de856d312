/*
 * lin_record.c: records histories of concurrent clients against the real
 * `baton serve` over HTTP and checks each with the linearizability checker
 * (lincheck.h). See docs/reliability.md.
 *
 *   lin_record [--histories N] [--ops N] [--clients N] [--jobs N]
 *              [--fault] [--seed S] [--dump DIR] [--verbose]
 *
 * One service (a temporary state directory, a free port) serves every
 * history. Its jobs are exec jobs running /bin/sleep 600 with max_active 1
 * and max_running >= the number of jobs, so no run ends by itself during a
 * history, and none is ever pending or refused as busy (the model covers
 * those too; the unit tests exercise them). In a history, `clients`
 * threads issue `ops` operations in all: starts of the jobs, and get,
 * pause, resume and stop of the runs this history has started (mostly the
 * newest), plus a few on ids that never existed. Each operation is timed
 * with the monotonic clock around the whole HTTP exchange.
 *
 * After a history every active run is stopped (outside the history), so
 * the next one starts, as the model does, with no active run.
 *
 * --fault: once per history, at a random point, the service is killed
 * with SIGKILL and started again on the same state directory. Clients hold
 * new operations while it is down. The history gets a crash event from
 * the moment the process was reaped to the moment /readyz answered 200;
 * an operation that got no answer and was called before the process was
 * reaped has an unknown outcome that, if it happened at all, happened
 * before the crash (its ret is the reaping time). The model applies
 * recovery at the crash (see lincheck.c).
 *
 * Prints one line per history and "linearizable X/Y"; exits 0 when every
 * history is linearizable.
 */
#define _GNU_SOURCE
#include "e2e.h"
#include "lincheck.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include <dirent.h>
#include <fcntl.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 64
#define MAX_SEEN    6
#define READY_MS    30000

typedef struct opts {
    int histories, ops, clients, jobs;
    bool fault, verbose;
    unsigned seed;
    const char *dump;
} opts_t;

/* An operation as recorded, before its unknown outcome (if any) is bounded. */
typedef struct rec {
    lc_op_t op;
    bool transport; /* no HTTP answer */
    bool not_sent;  /* the connection was refused */
} rec_t;

typedef struct hist {
    const opts_t *o;
    e2e_svc_t *svc;
    int64_t t0;
    pthread_mutex_t mu;
    rec_t *recs;
    size_t nrecs, cap;
    char seen[MAX_SEEN][LC_ID_MAX];
    int nseen;
    int issued;     /* operations begun */
    int down;       /* the service is being killed and restarted */
    int64_t t_dead; /* the killed process was reaped (0: no crash) */
    int64_t t_ready;
    int strays;  /* processes of the killed service left behind */
    int aborted; /* the restart failed: clients give up */
    bool failed; /* a recorder error (not a verdict) */
    char error[256];
} hist_t;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* Records the first recorder error of a history (not a verdict). */
static void hist_error(hist_t *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void hist_error(hist_t *h, const char *fmt, ...)
{
    pthread_mutex_lock(&h->mu);
    if (!h->failed) {
        h->failed = true;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(h->error, sizeof(h->error), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&h->mu);
}

/* ------------------------------------------------------------- HTTP */

typedef struct buf {
    char *p;
    size_t len;
} buf_t;

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    buf_t *b = ud;
    size_t add = size * n;
    char *p = realloc(b->p, b->len + add + 1);
    if (p == NULL)
        return 0;
    memcpy(p + b->len, data, add);
    b->p = p;
    b->len += add;
    p[b->len] = '\0';
    return add;
}

typedef struct answer {
    CURLcode rc;
    long status;
    char *body; /* malloc'd, or NULL */
} answer_t;

/* One exchange on the thread's handle (keep-alive across calls). */
static void http(CURL *c, uint16_t port, const char *method, const char *path, answer_t *a)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
    buf_t b = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    a->status = 0;
    a->rc = curl_easy_perform(c);
    if (a->rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
    a->body = b.p;
}

static void json_str(const cJSON *root, const char *a, const char *b, char *out, size_t len)
{
    out[0] = '\0';
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, a);
    if (b != NULL)
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    if (cJSON_IsString(v))
        snprintf(out, len, "%s", v->valuestring);
}

/* The state an invalid_transition names: "run X is S; cannot V", or
 * "run X is S and ending as T; cannot V" (its outcome is known but not yet
 * stored: a stop in progress when T is stopped). */
static lc_state_t refusal_state(const char *msg)
{
    const char *p = strstr(msg, " is ");
    if (p == NULL)
        return LC_S_OTHER;
    p += 4;
    char word[32];
    size_t n = strcspn(p, "; ");
    if (n >= sizeof(word))
        return LC_S_OTHER;
    memcpy(word, p, n);
    word[n] = '\0';
    const char *ending = strstr(p, " and ending as ");
    if (ending != NULL)
        return strncmp(ending + 15, "stopped", 7) == 0 ? LC_S_STOPPING : LC_S_OTHER;
    return lc_state_parse(word);
}

/* Turns an answer into op's result (and run id and state). */
static void classify(hist_t *h, const answer_t *a, rec_t *r)
{
    lc_op_t *op = &r->op;
    if (a->rc != CURLE_OK) {
        r->transport = true;
        r->not_sent = a->rc == CURLE_COULDNT_CONNECT;
        op->result = LC_UNKNOWN;
        return;
    }
    cJSON *root = cJSON_Parse(a->body != NULL ? a->body : "");
    char code[64], msg[512], state[32];
    json_str(root, "error", "code", code, sizeof(code));
    json_str(root, "error", "message", msg, sizeof(msg));
    switch (a->status) {
    case 200:
    case 201:
        op->result = LC_OK;
        json_str(root, "state", NULL, state, sizeof(state));
        op->state = lc_state_parse(state);
        if (op->kind == LC_START)
            json_str(root, "id", NULL, op->run, sizeof(op->run));
        break;
    case 404:
        op->result = LC_NOT_FOUND;
        break;
    case 409:
        if (strcmp(code, "invalid_transition") == 0) {
            op->result = LC_INVALID;
            op->state = refusal_state(msg);
        } else {
            op->result = LC_CONFLICT;
        }
        break;
    case 429:
        op->result = LC_BUSY;
        break;
    default:
        if (a->status >= 500) {
            op->result = LC_UNKNOWN; /* the command may still be carried out */
        } else {
            op->result = LC_UNKNOWN;
            hist_error(h, "unexpected answer %s (status %ld)", a->body != NULL ? a->body : "",
                       a->status);
        }
        break;
    }
    cJSON_Delete(root);
}

/* ----------------------------------------------------------- clients */

typedef struct client {
    hist_t *h;
    int id, ops;
    unsigned seed;
} client_t;

static void phantom_id(unsigned *seed, char *out, size_t len)
{
    snprintf(out, len, "%08x-%04x-7%03x-8%03x-%04x%08x", (unsigned)rand_r(seed),
             (unsigned)rand_r(seed) & 0xffff, (unsigned)rand_r(seed) & 0xfff,
             (unsigned)rand_r(seed) & 0xfff, (unsigned)rand_r(seed) & 0xffff,
             (unsigned)rand_r(seed));
}

static void add_rec(hist_t *h, const rec_t *r)
{
    pthread_mutex_lock(&h->mu);
    if (h->nrecs == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 512;
        rec_t *p = realloc(h->recs, cap * sizeof(*p));
        if (p == NULL) {
            pthread_mutex_unlock(&h->mu);
            hist_error(h, "out of memory");
            return;
        }
        h->recs = p;
        h->cap = cap;
    }
    h->recs[h->nrecs++] = *r;
    if (r->op.kind == LC_START && r->op.result == LC_OK && r->op.run[0] != '\0') {
        snprintf(h->seen[h->nseen % MAX_SEEN], LC_ID_MAX, "%s", r->op.run);
        h->nseen++;
    }
    pthread_mutex_unlock(&h->mu);
}

static void *client_main(void *arg)
{
    client_t *c = arg;
    hist_t *h = c->h;
    CURL *curl = curl_easy_init();
    if (curl == NULL) {
        hist_error(h, "curl_easy_init failed");
        return NULL;
    }
    for (int i = 0; i < c->ops; i++) {
        /* Hold new operations while the service is down. */
        while (__atomic_load_n(&h->down, __ATOMIC_ACQUIRE))
            sleep_us(1000);
        if (__atomic_load_n(&h->aborted, __ATOMIC_ACQUIRE))
            break;
        rec_t r = {.op = {.client = c->id}};
        lc_op_t *op = &r.op;
        int dice = rand_r(&c->seed) % 100;
        pthread_mutex_lock(&h->mu);
        int nseen = h->nseen;
        if (nseen > 0) {
            int back = rand_r(&c->seed) % (nseen < 3 ? nseen : 3);
            if (rand_r(&c->seed) % 5 == 0)
                back = rand_r(&c->seed) % (nseen < MAX_SEEN ? nseen : MAX_SEEN);
            snprintf(op->run, sizeof(op->run), "%s", h->seen[(nseen - 1 - back) % MAX_SEEN]);
        }
        h->issued++;
        pthread_mutex_unlock(&h->mu);
        if (dice < 15 || nseen == 0)
            op->kind = LC_START;
        else if (dice < 35)
            op->kind = LC_GET;
        else if (dice < 60)
            op->kind = LC_PAUSE;
        else if (dice < 85)
            op->kind = LC_RESUME;
        else if (dice < 95)
            op->kind = LC_STOP;
        else {
            op->kind = (lc_kind_t)(LC_GET + rand_r(&c->seed) % 4); /* get..stop */
            phantom_id(&c->seed, op->run, sizeof(op->run));
        }
        char path[160];
        const char *method = "POST";
        if (op->kind == LC_START) {
            snprintf(op->job, sizeof(op->job), "lin%d", rand_r(&c->seed) % h->o->jobs);
            op->run[0] = '\0';
            snprintf(path, sizeof(path), "/v1/jobs/%s/runs", op->job);
        } else if (op->kind == LC_GET) {
            method = "GET";
            snprintf(path, sizeof(path), "/v1/runs/%s", op->run);
        } else {
            snprintf(path, sizeof(path), "/v1/runs/%s/%s", op->run, lc_kind_name(op->kind));
        }
        answer_t a;
        op->call = mono_ns() - h->t0;
        http(curl, h->svc->port, method, path, &a);
        op->ret = mono_ns() - h->t0;
        classify(h, &a, &r);
        if (op->kind == LC_START && op->result == LC_OK && op->run[0] == '\0')
            hist_error(h, "a start answered without an id: %s", a.body ? a.body : "");
        if (h->o->verbose && op->state == LC_S_OTHER)
            fprintf(stderr, "unparsed state in: %s\n", a.body != NULL ? a.body : "");
        free(a.body);
        add_rec(h, &r);
        if (r.transport) {
            /* The service is probably down: wait for the restart. */
            curl_easy_reset(curl);
            sleep_us(2000);
        }
    }
    curl_easy_cleanup(curl);
    return NULL;
}

/* ------------------------------------------------------------ faults */

typedef struct killer {
    hist_t *h;
    int at; /* kill once this many operations have begun */
    bool ok;
} killer_t;

/* Kills (SIGKILL) and counts the processes, other than `except`, whose
 * command line names the service's config file: processes forked by the
 * killed service that never reached their exec (an exec run's child is
 * /bin/sleep by then). Each would hold the state directory's lock and the
 * listening socket, so the restart would be refused ("locked by another
 * baton"). They are descendants of the service this program started. */
static int kill_strays(const e2e_svc_t *svc, pid_t except)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        pid_t pid = (pid_t)atol(e->d_name);
        if (pid == except || pid == getpid())
            continue;
        char path[300], cmd[1024];
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, cmd, sizeof(cmd) - 1);
        close(fd);
        if (len <= 0)
            continue;
        for (ssize_t i = 0; i < len; i++)
            if (cmd[i] == '\0')
                cmd[i] = ' ';
        cmd[len] = '\0';
        if (strstr(cmd, svc->config) != NULL && strstr(cmd, " serve ") != NULL) {
            char st[512] = "";
            snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
            if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
                ssize_t m = read(fd, st, sizeof(st) - 1);
                st[m > 0 ? m : 0] = '\0';
                close(fd);
            }
            const char *paren = strrchr(st, ')');
            fprintf(stderr, "lin_record: pid %ld (%s) outlived its killed service, state %c\n",
                    (long)pid, cmd, paren != NULL && paren[1] == ' ' ? paren[2] : '?');
            kill(pid, SIGKILL);
            n++;
        }
    }
    closedir(d);
    return n;
}

static void *killer_main(void *arg)
{
    killer_t *k = arg;
    hist_t *h = k->h;
    for (;;) {
        pthread_mutex_lock(&h->mu);
        int issued = h->issued;
        pthread_mutex_unlock(&h->mu);
        if (issued >= k->at)
            break;
        sleep_us(200);
    }
    __atomic_store_n(&h->down, 1, __ATOMIC_RELEASE);
    pid_t pid = h->svc->pid;
    kill(pid, SIGKILL);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    h->t_dead = mono_ns() - h->t0;
    h->svc->pid = 0;
    /* A restart must never be blocked by what the old process left. A
     * child caught between its fork and its exec ends by itself within
     * microseconds (it checks its parent); one still there after 100 ms
     * is stuck. */
    sleep_us(100000);
    h->strays = kill_strays(h->svc, 0);
    if (h->strays > 0)
        sleep_us(50000); /* let the kernel reap them and drop the lock */
    k->ok = e2e_start(h->svc, READY_MS);
    h->t_ready = mono_ns() - h->t0;
    if (!k->ok)
        __atomic_store_n(&h->aborted, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&h->down, 0, __ATOMIC_RELEASE);
    return NULL;
}

/* ---------------------------------------------------------- histories */

/* Stops every active run (outside any history), so the next history
 * starts with none. Returns false if some run stays active. */
static bool stop_all(e2e_svc_t *svc)
{
    CURL *c = curl_easy_init();
    bool clean = false;
    for (int round = 0; round < 50 && !clean; round++) {
        answer_t a;
        http(c, svc->port, "GET", "/v1/runs?state=pending,running,paused&limit=1000", &a);
        cJSON *root = a.rc == CURLE_OK ? cJSON_Parse(a.body) : NULL;
        const cJSON *runs = cJSON_GetObjectItemCaseSensitive(root, "runs");
        clean = a.rc == CURLE_OK && a.status == 200 && cJSON_GetArraySize(runs) == 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, runs)
        {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
            if (!cJSON_IsString(id))
                continue;
            char path[128];
            snprintf(path, sizeof(path), "/v1/runs/%s/stop", id->valuestring);
            answer_t s;
            http(c, svc->port, "POST", path, &s);
            free(s.body);
        }
        cJSON_Delete(root);
        free(a.body);
        if (!clean)
            sleep_us(20000);
    }
    curl_easy_cleanup(c);
    return clean;
}

/* Bounds the unknown outcomes and builds the checker's history. */
static lc_history_t *finish(hist_t *h, int *unknown, int *dropped)
{
    lc_history_t *lh = lc_history_create();
    if (lh == NULL)
        return NULL;
    *unknown = *dropped = 0;
    for (size_t i = 0; i < h->nrecs; i++) {
        rec_t *r = &h->recs[i];
        lc_op_t op = r->op;
        if (op.result == LC_UNKNOWN) {
            bool before_crash = h->t_dead > 0 && op.call < h->t_dead;
            if (r->not_sent && h->t_dead > 0 && !before_crash) {
                /* refused after the old process was gone: never sent to
                 * it, and the new one was not listening */
                (*dropped)++;
                continue;
            }
            op.ret = before_crash ? h->t_dead : LC_INF;
            op.state = LC_S_NONE;
            if (op.kind == LC_START)
                op.run[0] = '\0';
            (*unknown)++;
        }
        lc_history_add(lh, &op);
    }
    if (h->t_dead > 0) {
        lc_op_t crash = {.kind = LC_CRASH, .client = -1, .result = LC_OK};
        crash.call = h->t_dead + 1;
        crash.ret = h->t_ready;
        lc_history_add(lh, &crash);
    }
    return lh;
}

static void usage(void)
{
    fprintf(stderr, "usage: lin_record [--histories N] [--ops N] [--clients N] [--jobs N] "
                    "[--fault] [--seed S] [--dump DIR] [--verbose]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts_t o = {.histories = 10, .ops = 200, .clients = 8, .jobs = 3, .dump = "/tmp"};
    o.seed = (unsigned)time(NULL);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (strcmp(a, "--histories") == 0 && more)
            o.histories = atoi(argv[++i]);
        else if (strcmp(a, "--ops") == 0 && more)
            o.ops = atoi(argv[++i]);
        else if (strcmp(a, "--clients") == 0 && more)
            o.clients = atoi(argv[++i]);
        else if (strcmp(a, "--jobs") == 0 && more)
            o.jobs = atoi(argv[++i]);
        else if (strcmp(a, "--seed") == 0 && more)
            o.seed = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(a, "--dump") == 0 && more)
            o.dump = argv[++i];
        else if (strcmp(a, "--fault") == 0)
            o.fault = true;
        else if (strcmp(a, "--verbose") == 0)
            o.verbose = true;
        else
            usage();
    }
    if (o.histories < 1 || o.ops < 1 || o.clients < 1 || o.clients > MAX_CLIENTS || o.jobs < 1 ||
        o.jobs > 16)
        usage();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);

    /* max_running >= jobs: no run is ever pending, so none is busy. */
    char jobs[4096];
    int n = snprintf(jobs, sizeof(jobs),
                     "[executor]\nmax_running = %d\nmax_pending = 64\nshutdown_timeout = \"10s\"\n",
                     o.jobs);
    for (int j = 0; j < o.jobs; j++)
        n += snprintf(jobs + n, sizeof(jobs) - (size_t)n,
                      "\n[jobs.lin%d]\nkind = \"exec\"\nmax_active = 1\nstop_grace = \"2s\"\n"
                      "[jobs.lin%d.params]\nargv = [\"/bin/sleep\", \"600\"]\n",
                      j, j);
    lc_model_cfg_t model = {.max_active = 1, .max_running = (uint32_t)o.jobs, .max_pending = 64};

    e2e_svc_t svc = {0};
    e2e_init(&svc);
    e2e_write_config(&svc, jobs);
    if (!e2e_start(&svc, READY_MS)) {
        char *log = e2e_read_log(&svc);
        fprintf(stderr, "lin_record: the service did not become ready:\n%s\n", log);
        free(log);
        e2e_cleanup(&svc);
        return 1;
    }
    printf("lin_record: %d histories x %d ops, %d clients, %d jobs%s, seed %u\n", o.histories,
           o.ops, o.clients, o.jobs, o.fault ? ", kill -9 + restart in each" : "", o.seed);

    int good = 0, bad = 0, undecided = 0, errors = 0, strays = 0;
    long total_ops = 0, total_unknown = 0;
    long results[LC_KIND_COUNT][LC_RESULT_COUNT] = {{0}};
    long stopping_refusals = 0;
    double check_ms = 0, check_max = 0;
    int64_t t_all = mono_ns();
    double recovery_ms_sum = 0;
    unsigned seed = o.seed;
    for (int hi = 0; hi < o.histories; hi++) {
        hist_t h = {.o = &o, .svc = &svc, .t0 = mono_ns()};
        pthread_mutex_init(&h.mu, NULL);
        pthread_t th[MAX_CLIENTS], kt;
        client_t cl[MAX_CLIENTS];
        killer_t k = {.h = &h, .at = o.ops / 4 + rand_r(&seed) % (o.ops / 2 + 1)};
        for (int i = 0; i < o.clients; i++) {
            cl[i] = (client_t){.h = &h,
                               .id = i,
                               .ops = o.ops / o.clients + (i < o.ops % o.clients),
                               .seed = rand_r(&seed)};
            pthread_create(&th[i], NULL, client_main, &cl[i]);
        }
        if (o.fault)
            pthread_create(&kt, NULL, killer_main, &k);
        for (int i = 0; i < o.clients; i++)
            pthread_join(th[i], NULL);
        if (o.fault) {
            pthread_join(kt, NULL);
            if (!k.ok) {
                char *log = e2e_read_log(&svc);
                fprintf(stderr, "lin_record: the restart failed:\n%s\n", log);
                free(log);
                errors++;
                break;
            }
            recovery_ms_sum += (double)(h.t_ready - h.t_dead) / 1e6;
            if (h.strays > 0) {
                fprintf(stderr,
                        "lin_record: history %d: %d process(es) of the killed service were left "
                        "behind (forked, never exec'd) holding its lock; killed them\n",
                        hi + 1, h.strays);
                strays += h.strays;
            }
        }
        int unknown = 0, dropped = 0;
        lc_history_t *lh = finish(&h, &unknown, &dropped);
        if (lh == NULL) {
            fprintf(stderr, "lin_record: out of memory\n");
            errors++;
            break;
        }
        if (!stop_all(&svc)) {
            fprintf(stderr, "lin_record: history %d: runs stay active after stop\n", hi + 1);
            errors++;
        }
        if (h.failed) {
            fprintf(stderr, "lin_record: history %d: %s\n", hi + 1, h.error);
            errors++;
        }
        if ((size_t)unknown * 10 > h.nrecs) {
            /* Unknown outcomes make a history easy to explain: a history
             * of mostly unanswered operations proves nothing. */
            fprintf(stderr, "lin_record: history %d: %d of %zu operations got no answer\n", hi + 1,
                    unknown, h.nrecs);
            errors++;
        }
        lc_report_t rep;
        int rc = lc_check(lh, &model, NULL, &rep);
        if (rc != 0) {
            fprintf(stderr, "lin_record: history %d: lc_check: %s: %s\n", hi + 1, lc_strerror(rc),
                    rep.why);
            errors++;
        } else if (rep.verdict == LC_LINEARIZABLE) {
            good++;
        } else if (rep.verdict == LC_UNDECIDED) {
            undecided++;
        } else {
            bad++;
        }
        for (size_t i = 0; i < lc_history_len(lh); i++) {
            const lc_op_t *op = lc_history_op(lh, i);
            results[op->kind][op->result]++;
            stopping_refusals += op->result == LC_INVALID && op->state == LC_S_STOPPING;
        }
        total_ops += (long)h.nrecs;
        total_unknown += unknown;
        check_ms += rep.ms;
        if (rep.ms > check_max)
            check_max = rep.ms;
        printf("history %3d: %4zu ops (%d unknown%s%s) -> %s (%zu events, %llu steps, %.1f ms)\n",
               hi + 1, h.nrecs, unknown, dropped ? ", some refused and dropped" : "",
               h.t_dead ? ", crash" : "", rc == 0 ? lc_verdict_name(rep.verdict) : "error",
               rep.events, (unsigned long long)rep.steps, rep.ms);
        if (rc == 0 && rep.verdict != LC_LINEARIZABLE) {
            printf("  %s\n", rep.why);
            char path[512];
            snprintf(path, sizeof(path), "%s/lin_history_%u_%d.txt", o.dump, o.seed, hi + 1);
            FILE *f = fopen(path, "w");
            if (f != NULL) {
                fprintf(f, "# %s: %s\n", lc_verdict_name(rep.verdict), rep.why);
                lc_history_dump(lh, f);
                fclose(f);
                printf("  history written to %s\n", path);
            }
        }
        fflush(stdout);
        lc_history_destroy(lh);
        free(h.recs);
        pthread_mutex_destroy(&h.mu);
    }
    double wall = (double)(mono_ns() - t_all) / 1e9;
    int ran = good + bad + undecided;

    printf("results:");
    for (int kk = 0; kk < LC_KIND_COUNT; kk++) {
        if (kk == LC_CRASH)
            continue;
        printf(" %s[", lc_kind_name((lc_kind_t)kk));
        bool first = true;
        for (int r = 0; r < LC_RESULT_COUNT; r++)
            if (results[kk][r] > 0) {
                printf("%s%s %ld", first ? "" : ", ", lc_result_name((lc_result_t)r),
                       results[kk][r]);
                first = false;
            }
        printf("]");
    }
    printf("\nrefusals naming \"stopping\": %ld; operations with an unknown outcome: %ld of %ld\n",
           stopping_refusals, total_unknown, total_ops);
    if (o.fault && ran > 0)
        printf("crash to ready (kill -9, restart, recovery): %.0f ms mean; processes of the killed "
               "service left behind: %d\n",
               recovery_ms_sum / ran, strays);
    printf("check time: %.1f ms mean, %.1f ms max; wall %.1f s\n", ran ? check_ms / ran : 0.0,
           check_max, wall);
    printf("linearizable %d/%d%s\n", good, o.histories,
           undecided ? " (some undecided: a search bound was hit)" : "");

    int stop_rc = e2e_stop(&svc, SIGTERM, 30000);
    char *log = e2e_read_log(&svc);
    const char *badlog[] = {"AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                            "ThreadSanitizer", "runtime error:"};
    for (size_t i = 0; i < sizeof(badlog) / sizeof(badlog[0]); i++)
        if (strstr(log, badlog[i]) != NULL) {
            fprintf(stderr, "lin_record: sanitizer report in the service log:\n%s\n", log);
            errors++;
            break;
        }
    free(log);
    if (stop_rc != 0) {
        fprintf(stderr, "lin_record: the service exited with %d on SIGTERM\n", stop_rc);
        errors++;
    }
    e2e_cleanup(&svc);
    curl_global_cleanup();
    if (strays > 0)
        fprintf(stderr,
                "lin_record: FAIL: a kill -9 left %d process(es) that would have blocked "
                "the restart\n",
                strays);
    return good == o.histories && errors == 0 && strays == 0 ? 0 : 1;
}
