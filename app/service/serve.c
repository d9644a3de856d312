/*
 * serve.c: `baton serve` and `baton check-config`. See service.h.
 *
 * Threads: main() blocks the termination signals before any thread exists,
 * so every thread inherits the mask and the main thread alone takes them
 * with sigtimedwait(). The first SIGTERM/SIGINT starts a drain on a
 * drainer thread; the main thread keeps waiting for signals, so a second
 * one forces the exit at once. Everything acknowledged is already durable
 * in the run store, so a forced exit loses nothing that was promised.
 */
#define _GNU_SOURCE
#include "service/service.h"

#include "config/schema.h"
#include "log.h"
#include "server/http.h"
#include "service/api.h"
#include "service/lock.h"

#include "breaker.h"
#include "exec_kind.h"
#include "executor.h"
#include "http_kind.h"
#include "ratelimit.h"
#include "runstore.h"
#include "timeouts.h"

#include <baton/baton.h>

#include <cjson/cJSON.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#ifdef BATON_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#ifndef BATON_VERSION
#define BATON_VERSION "0.0.0"
#endif

#define NS_PER_MS             1000000ull
#define NS_PER_S              1000000000ull
#define RECOVERY_LOG_EVERY_NS (5 * NS_PER_S)

static const char *const kind_names[] = {"exec", "http"};

typedef struct service {
    bt_config_t cfg;
    bt_state_lock_t lock;
    bt_runtime_t *rt;
    bt_ref_t timeouts, store, executor;
    bt_api_named_t *breakers;
    bt_api_named_t *limiters;
    bt_api_job_t *jobs;
    ex_job_t *ex_jobs;
    char **params; /* each job's params, with its job-level names filled in */
    bt_api_t api;
    bt_http_server_t *http;
    int drained; /* atomic: the drainer finished */
    int drain_rc;
} service_t;

/* ----------------------------------------------------------- arguments */

static const char *default_config_path(void)
{
    const char *env = getenv("BATON_CONFIG");
    return env != NULL && *env != '\0' ? env : "config.toml";
}

static void serve_usage(FILE *f)
{
    fprintf(f, "Usage: baton serve [--config FILE] [--log-level LEVEL]\n"
               "\n"
               "Runs the service: takes an exclusive lock on the state directory,\n"
               "recovers the runs found there, then serves the HTTP/JSON API.\n"
               "SIGTERM or SIGINT drains within executor.shutdown_timeout and exits 0;\n"
               "a second signal forces the exit.\n"
               "\n"
               "Options:\n"
               "  --config FILE      config file (default: $BATON_CONFIG or ./config.toml)\n"
               "  --log-level LEVEL  debug, info, warn or error (overrides log_level)\n"
               "  -h, --help         print this help\n"
               "\n"
               "Exit codes: 0 stopped cleanly; 1 could not start, or forced exit;\n"
               "2 usage; 8 config error; 9 state directory locked by another instance.\n");
}

static void check_usage(FILE *f)
{
    fprintf(f, "Usage: baton check-config [--config FILE | FILE]\n"
               "\n"
               "Validates a config file (syntax, every key, bounds, references between\n"
               "sections) and prints what it configures. Errors name file:line:column.\n"
               "\n"
               "Exit codes: 0 valid; 2 usage; 8 invalid or unreadable.\n");
}

/* Parses --config/--log-level; returns -1 for --help (printed), -2 on a
 * usage error (printed), 0 otherwise. */
static int parse_args(int argc, char **argv, bool allow_positional, const char **config,
                      const char **level, void (*usage)(FILE *))
{
    *config = NULL;
    if (level != NULL)
        *level = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return -1;
        }
        if (strncmp(a, "--config=", 9) == 0) {
            *config = a + 9;
            continue;
        }
        if (level != NULL && strncmp(a, "--log-level=", 12) == 0) {
            *level = a + 12;
            continue;
        }
        if (strcmp(a, "--config") == 0 || (level != NULL && strcmp(a, "--log-level") == 0)) {
            if (i + 1 >= argc) {
                fprintf(stderr, "baton %s: %s needs a value\n", argv[0], a);
                return -2;
            }
            val = argv[++i];
            if (strcmp(a, "--config") == 0)
                *config = val;
            else
                *level = val;
            continue;
        }
        if (allow_positional && a[0] != '-' && *config == NULL) {
            *config = a;
            continue;
        }
        fprintf(stderr, "baton %s: unknown argument '%s'\n\n", argv[0], a);
        usage(stderr);
        return -2;
    }
    if (*config == NULL)
        *config = default_config_path();
    return 0;
}

/* The kinds this binary links, in kind_names order. */
static const ex_kind_t *kind_of(const char *name)
{
    if (strcmp(name, "exec") == 0)
        return ex_exec_kind();
    if (strcmp(name, "http") == 0)
        return ex_http_kind();
    return NULL;
}

/* A job's params as its kind reads them: the job-level breaker, limit and
 * timeout of config.toml are written into the params under the names the
 * kind uses (exec: timeout_class; http: breaker, limit_name, timeout),
 * unless the params already set them. Returns malloc'd JSON, or NULL when
 * out of memory. */
static char *job_params(const bt_config_job_t *j)
{
    cJSON *p = cJSON_Parse(j->params_json != NULL ? j->params_json : "{}");
    if (p == NULL)
        return NULL;
    const struct {
        const char *kind, *key, *value;
    } fill[] = {
        {"exec", "timeout_class", j->timeout},
        {"http", "breaker", j->breaker},
        {"http", "limit_name", j->limit},
        {"http", "timeout", j->timeout},
    };
    for (size_t i = 0; i < sizeof(fill) / sizeof(fill[0]); i++) {
        if (strcmp(j->kind, fill[i].kind) != 0 || fill[i].value == NULL ||
            cJSON_GetObjectItemCaseSensitive(p, fill[i].key) != NULL)
            continue;
        if (cJSON_AddStringToObject(p, fill[i].key, fill[i].value) == NULL) {
            cJSON_Delete(p);
            return NULL;
        }
    }
    char *text = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    return text;
}

/* Builds every job's params and has its kind validate them, so a job that
 * could never start is a config error, not a surprise at the first run.
 * On success *out is an array of njobs malloc'd strings. */
static int prepare_jobs(const bt_config_t *cfg, char ***out, char *err, size_t errlen)
{
    char **params = calloc(cfg->njobs + 1, sizeof(*params));
    if (params == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < cfg->njobs; i++) {
        const bt_config_job_t *j = &cfg->jobs[i];
        const ex_kind_t *kind = kind_of(j->kind);
        params[i] = job_params(j);
        char why[256] = "";
        if (params[i] == NULL) {
            snprintf(err, errlen, "out of memory");
        } else if (kind == NULL) {
            snprintf(err, errlen, "%s:%u:%u: [jobs.%s]: no job kind named '%s'", cfg->path, j->line,
                     j->column, j->name, j->kind);
        } else if (kind->validate != NULL && kind->validate(params[i], why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s:%u:%u: [jobs.%s] params: %s", cfg->path, j->line, j->column,
                     j->name, why);
        } else {
            continue;
        }
        for (uint32_t k = 0; k <= i; k++)
            free(params[k]);
        free(params);
        return -1;
    }
    *out = params;
    return 0;
}

static void free_params(char **params, uint32_t n)
{
    for (uint32_t i = 0; params != NULL && i < n; i++)
        free(params[i]);
    free(params);
}

/* Loads and validates path, job params included; *params (may be NULL)
 * receives each job's prepared params, for the caller to free. */
static int load_config(const char *path, bt_config_t *cfg, char ***params)
{
    bt_config_error_t err;
    if (bt_config_load(path, kind_names, sizeof(kind_names) / sizeof(kind_names[0]), cfg, &err) !=
        0) {
        fprintf(stderr, "baton: %s\n", err.message);
        return -1;
    }
    char why[1024];
    char **prepared;
    if (prepare_jobs(cfg, &prepared, why, sizeof(why)) != 0) {
        fprintf(stderr, "baton: %s\n", why);
        bt_config_deinit(cfg);
        return -1;
    }
    if (params != NULL)
        *params = prepared;
    else
        free_params(prepared, cfg->njobs);
    return 0;
}

int bt_check_config_main(int argc, char **argv)
{
    const char *path;
    int rc = parse_args(argc, argv, true, &path, NULL, check_usage);
    if (rc == -1)
        return BT_SERVE_EXIT_OK;
    if (rc == -2)
        return BT_SERVE_EXIT_USAGE;
    bt_config_t cfg;
    if (load_config(path, &cfg, NULL) != 0)
        return BT_SERVE_EXIT_CONFIG;
    bt_config_describe(&cfg, stdout);
    printf("%s: ok\n", path);
    bt_config_deinit(&cfg);
    return BT_SERVE_EXIT_OK;
}

int bt_service_resolve(const char *config_path, char *url, size_t urllen, char *token,
                       size_t toklen, char *err, size_t errlen)
{
    bt_config_t cfg;
    bt_config_error_t e;
    if (bt_config_load(config_path, kind_names, sizeof(kind_names) / sizeof(kind_names[0]), &cfg,
                       &e) != 0) {
        snprintf(err, errlen, "%s", e.message);
        return -1;
    }
    const char *addr = cfg.server.address;
    bool v6 = strchr(addr, ':') != NULL;
    /* A wildcard bind is reached on loopback. */
    if (strcmp(addr, "0.0.0.0") == 0)
        addr = "127.0.0.1";
    else if (strcmp(addr, "::") == 0)
        addr = "::1";
    snprintf(url, urllen, v6 ? "http://[%s]:%u" : "http://%s:%u", addr, cfg.server.port);
    snprintf(token, toklen, "%s", cfg.server.token != NULL ? cfg.server.token : "");
    bt_config_deinit(&cfg);
    return 0;
}

/* ------------------------------------------------------------ start-up */

static void log_error(const char *event, const char *what, int rc)
{
    bt_log(BT_LOG_ERROR, event, "what", what, "error", bt_strerror(rc), NULL);
}

static int spawn_actors(service_t *s)
{
    const bt_config_t *c = &s->cfg;
    char why[256];
    int rc;

    bt_timeouts_args_t targs;
    bt_config_timeouts_args(c, &targs);
    if ((rc = bt_timeouts_spawn(s->rt, &targs, &s->timeouts)) != BT_OK) {
        log_error("service.start_failed", "timeout registry", rc);
        return -1;
    }

    s->breakers = calloc(c->nbreakers + 1, sizeof(*s->breakers));
    s->limiters = calloc(c->nlimits + 1, sizeof(*s->limiters));
    if (s->breakers == NULL || s->limiters == NULL)
        return -1;
    for (uint32_t i = 0; i < c->nbreakers; i++) {
        char name[160];
        snprintf(name, sizeof(name), "breaker.%s", c->breakers[i].name);
        if ((rc = bt_breaker_spawn(s->rt, &c->breakers[i].args, &s->breakers[i].ref)) != BT_OK ||
            (rc = bt_register(s->rt, name, s->breakers[i].ref)) != BT_OK) {
            log_error("service.start_failed", name, rc);
            return -1;
        }
        s->breakers[i].name = c->breakers[i].name;
    }
    for (uint32_t i = 0; i < c->nlimits; i++) {
        char name[160];
        snprintf(name, sizeof(name), "limit.%s", c->limits[i].name);
        /* Jitter must differ between limiters and between restarts, or
         * every client retries in step. */
        bt_ratelimit_args_t la = c->limits[i].args;
        if (getrandom(&la.seed, sizeof(la.seed), 0) != (ssize_t)sizeof(la.seed))
            la.seed = bt_now(s->rt) ^ ((uint64_t)getpid() << 32) ^ i;
        if ((rc = bt_ratelimit_spawn(s->rt, &la, &s->limiters[i].ref)) != BT_OK ||
            (rc = bt_register(s->rt, name, s->limiters[i].ref)) != BT_OK) {
            log_error("service.start_failed", name, rc);
            return -1;
        }
        s->limiters[i].name = c->limits[i].name;
    }

    rs_config_t scfg = {.path = c->store.path, .synchronous = c->store.sync};
    if ((rc = rs_spawn(s->rt, &scfg, &s->store)) != BT_OK) {
        log_error("service.start_failed", "run store", rc);
        return -1;
    }

    s->ex_jobs = calloc(c->njobs + 1, sizeof(*s->ex_jobs));
    s->jobs = calloc(c->njobs + 1, sizeof(*s->jobs));
    if (s->ex_jobs == NULL || s->jobs == NULL)
        return -1;
    for (uint32_t i = 0; i < c->njobs; i++) {
        const bt_config_job_t *j = &c->jobs[i];
        bt_config_job_ex(j, &s->ex_jobs[i]);
        s->jobs[i] = (bt_api_job_t){.name = j->name,
                                    .kind = j->kind,
                                    .params_json = s->params[i],
                                    .max_active = j->max_active,
                                    .stop_grace_ns = j->stop_grace_ns};
    }
    const ex_kind_t *kinds[] = {ex_exec_kind(), ex_http_kind()};
    ex_config_t ecfg = {.store = s->store,
                        .timeouts = s->timeouts,
                        .state_dir = c->store.state_dir,
                        .kinds = kinds,
                        .nkinds = sizeof(kinds) / sizeof(kinds[0]),
                        .jobs = s->ex_jobs,
                        .njobs = c->njobs,
                        .max_running = c->executor.max_running,
                        .max_pending = c->executor.max_pending,
                        .progress_every_ns = c->executor.progress_every_ns,
                        .progress_every_steps = c->executor.progress_every_steps};
    if ((rc = ex_spawn(s->rt, &ecfg, &s->executor)) != BT_OK) {
        snprintf(why, sizeof(why), "executor: %s", bt_strerror(rc));
        bt_log(BT_LOG_ERROR, "service.start_failed", "what", why, NULL);
        return -1;
    }
    return 0;
}

/* Waits until the executor has finished recovery: it answers commands only
 * then, so one cheap command that needs no run (a stats request) marks the
 * moment. Logs while it waits. Returns 0, or -1 if a signal asked to stop. */
static int wait_recovery(service_t *s, const sigset_t *sigs)
{
    uint64_t t0 = bt_now(s->rt);
    for (;;) {
        bt_msg_t *req = bt_msg_new(sizeof(bt_msg_t), EX_MSG_READY);
        bt_msg_t *reply = NULL;
        int rc = req != NULL ? bt_ask_wait(s->rt, s->executor, req, RECOVERY_LOG_EVERY_NS, &reply)
                             : BT_ENOMEM;
        if (rc == BT_OK) {
            bt_msg_free(reply);
            char ms[32];
            snprintf(ms, sizeof(ms), "%.1f", (double)(bt_now(s->rt) - t0) / 1e6);
            bt_log(BT_LOG_INFO, "service.recovered", "duration_ms", ms, NULL);
            return 0;
        }
        if (rc != BT_ETIMEDOUT) {
            log_error("service.recovery_failed", "executor", rc);
            return -1;
        }
        char waited[24];
        snprintf(waited, sizeof(waited), "%.0f", (double)(bt_now(s->rt) - t0) / 1e9);
        bt_log(BT_LOG_WARN, "service.recovering", "waited_s", waited, NULL);
        struct timespec zero = {0, 0};
        if (sigtimedwait(sigs, NULL, &zero) > 0)
            return -1;
    }
}

/* ---------------------------------------------------------------- drain */

static void *drainer(void *arg)
{
    service_t *s = arg;
    uint64_t budget = s->cfg.executor.shutdown_timeout_ns;
    uint64_t t0 = bt_now(s->rt);
    bt_api_set_phase(&s->api, BT_API_DRAINING);
    /* No new connections; requests in flight finish (they are bounded by
     * the request deadline and the command timeouts). */
    bt_http_quiesce(s->http);
    bt_http_stop(s->http);
    s->http = NULL;
    s->api.http = NULL;
    uint64_t spent = bt_now(s->rt) - t0;
    uint64_t left = spent < budget ? budget - spent : 0;
    /* Stops every actor: kinds stop their processes and requests; runs left
     * running are recovered at the next start, as after a crash, by their
     * job's recovery policy. */
    int rc = bt_runtime_shutdown(s->rt, left > 0 ? left : 1);
    if (rc == BT_OK)
        s->rt = NULL;
    s->drain_rc = rc;
    __atomic_store_n(&s->drained, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* --------------------------------------------------------------- serve */

static void notify(const char *state)
{
#ifdef BATON_HAVE_SYSTEMD
    sd_notify(0, state);
#else
    (void)state;
#endif
}

static void service_free(service_t *s)
{
    free(s->breakers);
    free(s->limiters);
    free(s->jobs);
    free(s->ex_jobs);
    free_params(s->params, s->cfg.njobs);
    bt_config_deinit(&s->cfg);
}

int bt_serve_main(int argc, char **argv)
{
    const char *path, *level_arg;
    int rc = parse_args(argc, argv, false, &path, &level_arg, serve_usage);
    if (rc == -1)
        return BT_SERVE_EXIT_OK;
    if (rc == -2)
        return BT_SERVE_EXIT_USAGE;

    /* Before any thread exists: every thread inherits this mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    service_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        fprintf(stderr, "baton serve: out of memory\n");
        return BT_SERVE_EXIT_FAILURE;
    }
    s->lock.fd = -1;
    if (load_config(path, &s->cfg, &s->params) != 0) {
        free(s);
        return BT_SERVE_EXIT_CONFIG;
    }
    int level = level_arg != NULL ? bt_log_level_parse(level_arg) : (int)s->cfg.log_level;
    if (level < 0) {
        fprintf(stderr, "baton serve: --log-level '%s' is not debug, info, warn or error\n",
                level_arg);
        service_free(s);
        free(s);
        return BT_SERVE_EXIT_USAGE;
    }
    bt_log_init((bt_log_level_t)level, STDERR_FILENO);

    char err[512];
    pid_t holder = 0;
    if (bt_state_lock_take(&s->lock, s->cfg.store.state_dir, &holder, err, sizeof(err)) != 0) {
        fprintf(stderr, "baton serve: %s\n", err);
        bt_log(BT_LOG_ERROR, "service.lock_failed", "error", err, NULL);
        service_free(s);
        free(s);
        return holder != 0 || strstr(err, "locked by") != NULL ? BT_SERVE_EXIT_LOCKED
                                                               : BT_SERVE_EXIT_FAILURE;
    }
    char pid[24];
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    bt_log(BT_LOG_INFO, "service.starting", "version", BATON_VERSION, "pid", pid, "config", path,
           "state_dir", s->cfg.store.state_dir, NULL);

    int exit_code = BT_SERVE_EXIT_FAILURE;
    bt_runtime_config_t rcfg = {.threads = s->cfg.runtime_threads};
    if ((rc = bt_runtime_create(&rcfg, &s->rt)) != BT_OK ||
        (rc = bt_runtime_start(s->rt)) != BT_OK) {
        log_error("service.start_failed", "runtime", rc);
        goto out;
    }
    if (spawn_actors(s) != 0)
        goto out;

    s->api = (bt_api_t){.rt = s->rt,
                        .executor = s->executor,
                        .store = s->store,
                        .jobs = s->jobs,
                        .njobs = s->cfg.njobs,
                        .breakers = s->breakers,
                        .nbreakers = s->cfg.nbreakers,
                        .limiters = s->limiters,
                        .nlimiters = s->cfg.nlimits,
                        .started_ns = bt_now(s->rt)};
    bt_api_set_phase(&s->api, BT_API_RECOVERING);
    const char *public_paths[] = {"/healthz", "/readyz"};
    const bt_config_server_t *sv = &s->cfg.server;
    bt_http_config_t hcfg = {.address = sv->address,
                             .port = sv->port,
                             .token = sv->token,
                             .allowed_hosts = (const char *const *)sv->allowed_hosts,
                             .nallowed_hosts = sv->nallowed_hosts,
                             .public_paths = public_paths,
                             .npublic_paths = 2,
                             .max_body = sv->max_body,
                             .max_header = sv->max_header,
                             .max_connections = sv->max_connections,
                             .max_per_ip = sv->max_connections_per_ip,
                             .deadline_ms = (uint32_t)(sv->request_deadline_ns / NS_PER_MS),
                             .idle_timeout_s = (uint32_t)(sv->idle_timeout_ns / NS_PER_S),
                             .handler = bt_api_handle,
                             .ctx = &s->api};
    if (bt_http_start(&hcfg, &s->http, err, sizeof(err)) != 0) {
        fprintf(stderr, "baton serve: %s\n", err);
        bt_log(BT_LOG_ERROR, "service.start_failed", "what", "http", "error", err, NULL);
        goto out;
    }
    s->api.http = s->http;
    char port[8];
    snprintf(port, sizeof(port), "%u", bt_http_port(s->http));
    bt_log(BT_LOG_INFO, "service.listening", "address", sv->address, "port", port, NULL);

    if (wait_recovery(s, &sigs) != 0) {
        bt_log(BT_LOG_WARN, "service.stopping", "reason", "signal during recovery", NULL);
    } else {
        bt_api_set_phase(&s->api, BT_API_READY);
        notify("READY=1");
        bt_log(BT_LOG_INFO, "service.ready", "port", port, NULL);

        /* Serve until a termination signal. */
        siginfo_t si;
        for (;;) {
            int sig = sigwaitinfo(&sigs, &si);
            if (sig == SIGHUP) {
                bt_log(BT_LOG_INFO, "service.sighup", "note",
                       "reload is not supported; restart to apply config changes", NULL);
                continue;
            }
            if (sig == SIGTERM || sig == SIGINT)
                break;
        }
    }

    /* Drain on a thread, so that a second signal can force the exit. */
    char budget[24];
    snprintf(budget, sizeof(budget), "%.1f", (double)s->cfg.executor.shutdown_timeout_ns / 1e9);
    bt_log(BT_LOG_INFO, "service.draining", "timeout_s", budget, NULL);
#ifdef BATON_HAVE_SYSTEMD
    sd_notifyf(0, "STOPPING=1\nEXTEND_TIMEOUT_USEC=%llu",
               (unsigned long long)(s->cfg.executor.shutdown_timeout_ns / 1000 + 5000000));
#endif
    pthread_t th;
    if (pthread_create(&th, NULL, drainer, s) != 0) {
        drainer(s);
    } else {
        for (;;) {
            struct timespec tick = {0, 50 * 1000000L};
            int sig = sigtimedwait(&sigs, NULL, &tick);
            if (__atomic_load_n(&s->drained, __ATOMIC_ACQUIRE))
                break;
            if (sig == SIGTERM || sig == SIGINT) {
                bt_log(BT_LOG_WARN, "service.forced_exit", "reason", "second signal", NULL);
                _exit(BT_SERVE_EXIT_FAILURE);
            }
        }
        pthread_join(th, NULL);
    }
    if (s->drain_rc != BT_OK) {
        bt_log(BT_LOG_ERROR, "service.forced_exit", "reason",
               "actors did not stop within executor.shutdown_timeout", NULL);
        _exit(BT_SERVE_EXIT_FAILURE);
    }
    exit_code = BT_SERVE_EXIT_OK;
    bt_log(BT_LOG_INFO, "service.stopped", NULL);

out:
    if (s->http != NULL)
        bt_http_stop(s->http);
    if (s->rt != NULL && bt_runtime_shutdown(s->rt, 10 * NS_PER_S) != BT_OK)
        _exit(BT_SERVE_EXIT_FAILURE);
    bt_state_lock_release(&s->lock);
    service_free(s);
    free(s);
    return exit_code;
}
