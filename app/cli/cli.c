/*
 * cli.c: the `baton` client commands. Each command parses its command line
 * (global options may appear anywhere), resolves the service's URL and
 * token (flag > environment > config file through the caller's resolver >
 * default), sends one or more requests through client.c and prints either a
 * human view (aligned tables, relative times) or, with --json, the API's
 * JSON. Every failure maps to one exit code from bt_cli_exit_t, so scripts
 * can tell "not found" from "busy" from "cannot connect" without parsing
 * text. All output goes through the FILE pointers in bt_cli_io_t.
 */
#include "cli/cli.h"

#include "cli/client.h"
#include "cli/format.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define CLI_DEFAULT_URL       "http://127.0.0.1:7878"
#define CLI_DEFAULT_CONFIG    "config.toml"
#define CLI_DEFAULT_TIMEOUT_S 30.0
/* start, pause, resume and stop answer once the change is done, and the
 * service may take a job's stop_grace (up to 10 min) plus its own 30 s of
 * slack for that; a shorter client timeout would only hide the outcome. */
#define CLI_DEFAULT_COMMAND_TIMEOUT_S 900.0
#define CLI_DEFAULT_POLL_MS           500u
#define CLI_MAX_URL                   1024
#define CLI_MAX_TOKEN                 1024
#define CLI_MAX_PATH                  4096
#define CLI_IDEM_KEY_MAX              128
#define CLI_BAR_WIDTH                 30
#define CLI_ACTIVE_STATES             "pending,running,paused"

/* ------------------------------------------------------------ command line */

/* One option occurrence, in command-line order. */
typedef struct cli_opt {
    const char *name;  /* without the leading dashes */
    const char *value; /* NULL for a flag */
} cli_opt_t;

typedef struct cli_args {
    const char **pos;
    size_t npos;
    cli_opt_t *opts;
    size_t nopts;
    bool help;
} cli_args_t;

typedef struct cli_opt_spec {
    const char *name;
    bool has_value;
} cli_opt_spec_t;

typedef struct cli_ctx cli_ctx_t;
typedef int (*cli_cmd_fn)(cli_ctx_t *x, const cli_args_t *a);

typedef struct cli_cmd {
    const char *name;
    const char *synopsis; /* after "baton NAME " */
    const char *summary;  /* one line */
    const char *details;  /* options and notes, may be NULL */
    const cli_opt_spec_t *opts;
    size_t min_pos, max_pos;
    cli_cmd_fn fn;
} cli_cmd_t;

static const cli_opt_spec_t global_opts[] = {
    {"config", true},  {"url", true},   {"token", true}, {"json", false},
    {"timeout", true}, {"help", false}, {NULL, false},
};

/* --------------------------------------------------------------- context */

struct cli_ctx {
    FILE *out, *err;
    bool tty;
    const char *(*getenv)(const char *name);
    long long fixed_now_ms;
    unsigned poll_ms;
    bt_cli_resolve_fn resolve;
    const cli_cmd_t *cmd;
    /* Global options. */
    bool json;
    const char *config_flag, *url_flag, *token_flag, *timeout_flag;
    /* Resolved connection. */
    char url[CLI_MAX_URL];
    char token[CLI_MAX_TOKEN];
    long timeout_ms;         /* reads (GET) */
    long command_timeout_ms; /* start, pause, resume, stop */
    bool curl_ready;
    cli_client_t *client;
};

static const char exit_codes_text[] =
    "Exit codes:\n"
    "  0   success\n"
    "  1   an API error not listed here, or an internal error\n"
    "  2   usage error (bad command line)\n"
    "  3   not found (no such run or job)\n"
    "  4   conflict or invalid transition (409)\n"
    "  5   busy: the pending queue is full (429)\n"
    "  6   cannot connect, timeout, or service unavailable (503)\n"
    "  7   unauthorized or forbidden (401, 403)\n"
    "  8   config error\n"
    "  10  watch: the run failed\n"
    "  11  watch: the run was stopped\n"
    "  130 watch: interrupted (Ctrl-C)\n";

static const char global_opts_text[] =
    "Global options:\n"
    "  --config FILE     config file for the address and token\n"
    "                    (default: $BATON_CONFIG, else ./config.toml if it exists)\n"
    "  --url URL         the service's base URL (also $BATON_URL;\n"
    "                    default: from the config, else " CLI_DEFAULT_URL ")\n"
    "  --token TOKEN     bearer token (also $BATON_TOKEN; default: from the config)\n"
    "  --json            print the API's JSON instead of tables\n"
    "  --timeout SECS    per-request timeout (default 30; start, pause, resume\n"
    "                    and stop wait up to 15 minutes for the change)\n"
    "  -h, --help        this help\n";

static void errf(cli_ctx_t *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void errf(cli_ctx_t *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("baton: ", x->err);
    vfprintf(x->err, fmt, ap);
    fputc('\n', x->err);
    va_end(ap);
}

/* A usage error: the message, the command's synopsis and a pointer to -h. */
static int usage_error(cli_ctx_t *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(cli_ctx_t *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("baton: ", x->err);
    vfprintf(x->err, fmt, ap);
    fputc('\n', x->err);
    va_end(ap);
    if (x->cmd != NULL)
        fprintf(x->err, "usage: baton %s %s\nTry 'baton %s --help'.\n", x->cmd->name,
                x->cmd->synopsis, x->cmd->name);
    else
        fputs("Try 'baton help'.\n", x->err);
    return BT_CLI_EXIT_USAGE;
}

static long long now_ms(const cli_ctx_t *x)
{
    if (x->fixed_now_ms != 0)
        return x->fixed_now_ms;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *env(const cli_ctx_t *x, const char *name)
{
    const char *v = x->getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static const cli_opt_spec_t *find_spec(const cli_opt_spec_t *specs, const char *name, size_t len)
{
    for (; specs != NULL && specs->name != NULL; specs++)
        if (strlen(specs->name) == len && strncmp(specs->name, name, len) == 0)
            return specs;
    return NULL;
}

/* Splits argv[1..] into options (global or the command's) and positionals.
 * Returns 0 or a usage error (already printed). */
static int parse_args(cli_ctx_t *x, int argc, char **argv, cli_args_t *a /* OUT */)
{
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (only_pos || s[0] != '-' || s[1] == '\0') {
            a->pos[a->npos++] = s;
            continue;
        }
        if (strcmp(s, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (strcmp(s, "-h") == 0) {
            a->help = true;
            continue;
        }
        if (s[1] != '-')
            return usage_error(x, "unknown option '%s'", s);
        const char *name = s + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        const cli_opt_spec_t *spec = find_spec(global_opts, name, len);
        if (spec == NULL)
            spec = find_spec(x->cmd->opts, name, len);
        if (spec == NULL)
            return usage_error(x, "unknown option '--%.*s' for '%s'", (int)len, name, x->cmd->name);
        const char *value = NULL;
        if (spec->has_value) {
            if (eq != NULL)
                value = eq + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else
                return usage_error(x, "option '--%s' needs a value", spec->name);
        } else if (eq != NULL) {
            return usage_error(x, "option '--%s' takes no value", spec->name);
        }
        if (strcmp(spec->name, "help") == 0) {
            a->help = true;
        } else if (strcmp(spec->name, "json") == 0) {
            x->json = true;
        } else if (strcmp(spec->name, "config") == 0) {
            x->config_flag = value;
        } else if (strcmp(spec->name, "url") == 0) {
            x->url_flag = value;
        } else if (strcmp(spec->name, "token") == 0) {
            x->token_flag = value;
        } else if (strcmp(spec->name, "timeout") == 0) {
            x->timeout_flag = value;
        } else {
            a->opts[a->nopts].name = spec->name;
            a->opts[a->nopts].value = value;
            a->nopts++;
        }
    }
    return 0;
}

/* The last value of a command option, or NULL. */
static const char *opt_last(const cli_args_t *a, const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; i < a->nopts; i++)
        if (strcmp(a->opts[i].name, name) == 0)
            v = a->opts[i].value != NULL ? a->opts[i].value : "";
    return v;
}

static bool has_ctl(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* ------------------------------------------------------------ connection */

static bool url_ok(const char *u)
{
    return (strncasecmp(u, "http://", 7) == 0 && u[7] != '\0') ||
           (strncasecmp(u, "https://", 8) == 0 && u[8] != '\0');
}

/* Resolves URL, token and timeout, and creates the HTTP client. Returns 0 or
 * an exit code (message printed). */
static int connect_client(cli_ctx_t *x)
{
    const char *url = x->url_flag != NULL ? x->url_flag : env(x, "BATON_URL");
    const char *token = x->token_flag != NULL ? x->token_flag : env(x, "BATON_TOKEN");
    bool url_from_config = false;
    x->url[0] = x->token[0] = '\0';
    if (url != NULL && strlen(url) >= sizeof(x->url))
        return usage_error(x, "the URL is longer than %zu bytes", sizeof(x->url) - 1);
    if (token != NULL && strlen(token) >= sizeof(x->token))
        return usage_error(x, "the token is longer than %zu bytes", sizeof(x->token) - 1);
    if (url != NULL)
        snprintf(x->url, sizeof(x->url), "%s", url);
    if (token != NULL)
        snprintf(x->token, sizeof(x->token), "%s", token);

    if ((url == NULL || token == NULL) && x->resolve != NULL) {
        const char *path = x->config_flag != NULL ? x->config_flag : env(x, "BATON_CONFIG");
        bool explicit_path = path != NULL;
        if (path == NULL)
            path = CLI_DEFAULT_CONFIG;
        /* A missing default config is normal (a client on another host);
         * a missing named one is an error, reported by the resolver. */
        if (explicit_path || access(path, F_OK) == 0) {
            char curl_[CLI_MAX_URL] = "", ctok[CLI_MAX_TOKEN] = "", cerr[512] = "";
            if (x->resolve(path, curl_, sizeof(curl_), ctok, sizeof(ctok), cerr, sizeof(cerr)) !=
                0) {
                memset(ctok, 0, sizeof(ctok));
                errf(x, "%s", cerr[0] != '\0' ? cerr : "cannot read the config file");
                return BT_CLI_EXIT_CONFIG;
            }
            curl_[sizeof(curl_) - 1] = ctok[sizeof(ctok) - 1] = '\0';
            if (url == NULL && curl_[0] != '\0') {
                snprintf(x->url, sizeof(x->url), "%s", curl_);
                url_from_config = true;
            }
            /* The config's token belongs to the config's service: never
             * send it to a URL given elsewhere that points somewhere else. */
            size_t ulen = url != NULL ? strlen(url) : 0;
            while (ulen > 0 && url[ulen - 1] == '/')
                ulen--;
            bool same = url == NULL || (ulen == strlen(curl_) && strncmp(url, curl_, ulen) == 0);
            if (token == NULL && same)
                snprintf(x->token, sizeof(x->token), "%s", ctok);
            memset(ctok, 0, sizeof(ctok));
        }
    }
    if (x->url[0] == '\0')
        snprintf(x->url, sizeof(x->url), "%s", CLI_DEFAULT_URL);
    size_t n = strlen(x->url);
    while (n > 0 && x->url[n - 1] == '/')
        x->url[--n] = '\0';
    if (!url_ok(x->url) || has_ctl(x->url)) {
        if (url_from_config) {
            errf(x, "the config gives a bad service URL '%s' (expected http://HOST:PORT)", x->url);
            return BT_CLI_EXIT_CONFIG;
        }
        return usage_error(x, "bad URL '%s' (expected http://HOST:PORT or https://...)", x->url);
    }
    if (has_ctl(x->token))
        return usage_error(x, "the token contains control characters");

    double secs = CLI_DEFAULT_TIMEOUT_S;
    if (x->timeout_flag != NULL) {
        char *end;
        errno = 0;
        secs = strtod(x->timeout_flag, &end);
        if (errno != 0 || end == x->timeout_flag || *end != '\0' || !(secs > 0) || secs > 86400)
            return usage_error(x, "--timeout expects seconds between 0 and 86400, got '%s'",
                               x->timeout_flag);
    }
    x->timeout_ms = (long)(secs * 1000.0);
    if (x->timeout_ms < 1)
        x->timeout_ms = 1;
    x->command_timeout_ms =
        x->timeout_flag != NULL ? x->timeout_ms : (long)(CLI_DEFAULT_COMMAND_TIMEOUT_S * 1000.0);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        errf(x, "cannot initialise libcurl");
        return BT_CLI_EXIT_ERROR;
    }
    x->curl_ready = true;
    x->client = cli_client_create(x->url, x->token, x->timeout_ms);
    memset(x->token, 0, sizeof(x->token));
    if (x->client == NULL) {
        errf(x, "cannot create an HTTP client (out of memory?)");
        return BT_CLI_EXIT_ERROR;
    }
    return 0;
}

/* --------------------------------------------------------------- requests */

static int exit_for_status(long status)
{
    switch (status) {
    case 401:
    case 403:
        return BT_CLI_EXIT_AUTH;
    case 404:
        return BT_CLI_EXIT_NOT_FOUND;
    case 409:
        return BT_CLI_EXIT_CONFLICT;
    case 429:
        return BT_CLI_EXIT_BUSY;
    case 503:
        return BT_CLI_EXIT_UNAVAILABLE;
    default:
        return BT_CLI_EXIT_ERROR;
    }
}

/* Replaces control characters in every string of a parsed answer, so a
 * job name or error text from the server cannot drive the terminal when
 * printed as text (--json output is escaped by the JSON encoder instead). */
static void clean_strings(cJSON *n)
{
    for (; n != NULL; n = n->next) {
        if (cJSON_IsString(n) && n->valuestring != NULL)
            for (char *p = n->valuestring; *p != '\0'; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                    *p = '?';
        clean_strings(n->child);
    }
}

/* Sends one request. On a 2xx answer with a JSON body returns 0 with the
 * parsed body in *json (the caller deletes it) and the raw answer in resp
 * (the caller deinits it). Otherwise prints the error ("baton: MESSAGE
 * (CODE)") and returns its exit code, with resp already released. */
static int call(cli_ctx_t *x, const char *method, const char *path, const char *body,
                const char *idem, cli_response_t *resp /* OUT */, cJSON **json /* OUT */)
{
    *json = NULL;
    bool command = strcmp(method, "GET") != 0;
    cli_client_set_timeout(x->client, command ? x->command_timeout_ms : x->timeout_ms);
    int rc = cli_client_request(x->client, method, path, body, idem, resp);
    if (rc != CLI_HTTP_OK) {
        errf(x, "%s", resp->error);
        if (rc == CLI_HTTP_ETIMEOUT && command)
            fputs("(the command may still take effect; check with 'baton status')\n", x->err);
        cli_response_deinit(resp);
        return rc == CLI_HTTP_ECONNECT || rc == CLI_HTTP_ETIMEOUT ? BT_CLI_EXIT_UNAVAILABLE
                                                                  : BT_CLI_EXIT_ERROR;
    }
    cJSON *doc = cJSON_ParseWithLength(resp->body, resp->body_len);
    if (resp->status >= 200 && resp->status < 300) {
        if (doc == NULL) {
            errf(x, "the answer to %s %s is not JSON (HTTP %ld)", method, path, resp->status);
            cli_response_deinit(resp);
            return BT_CLI_EXIT_ERROR;
        }
        if (!x->json)
            clean_strings(doc);
        *json = doc;
        return 0;
    }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(doc, "error");
    const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "code"));
    const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message"));
    char cbuf[64], mbuf[1024];
    if (msg != NULL && code != NULL)
        errf(x, "%s (%s)", cli_clean(mbuf, sizeof(mbuf), msg), cli_clean(cbuf, sizeof(cbuf), code));
    else if (code != NULL)
        errf(x, "HTTP %ld from %s (%s)", resp->status, x->url, cli_clean(cbuf, sizeof(cbuf), code));
    else
        errf(x, "HTTP %ld from %s for %s %s", resp->status, x->url, method, path);
    cJSON_Delete(doc);
    cli_response_deinit(resp);
    return exit_for_status(resp->status);
}

/* Prints an answer's body as is, ending with a newline. */
static void print_raw(cli_ctx_t *x, const cli_response_t *resp)
{
    fwrite(resp->body, 1, resp->body_len, x->out);
    if (resp->body_len == 0 || resp->body[resp->body_len - 1] != '\n')
        fputc('\n', x->out);
}

static void print_json(cli_ctx_t *x, const cJSON *doc)
{
    char *s = cJSON_PrintUnformatted(doc);
    if (s != NULL) {
        fputs(s, x->out);
        fputc('\n', x->out);
        cJSON_free(s);
    }
}

/* "/v1/runs/ID" + suffix, with ID escaped. false if too long. */
static bool run_path(char *buf, size_t cap, const char *id, const char *suffix)
{
    snprintf(buf, cap, "/v1/runs/");
    return cli_url_escape(buf, cap, id, false) && strlen(buf) + strlen(suffix) < cap &&
           strcat(buf, suffix) != NULL;
}

/* The start of every command about one run: checks the id, builds the path
 * /v1/runs/ID + suffix into path (CLI_MAX_PATH bytes) and connects. Returns
 * 0, or the exit code. */
static int open_run(cli_ctx_t *x, const char *id, const char *suffix, char *path)
{
    if (id[0] == '\0' || !run_path(path, CLI_MAX_PATH, id, suffix))
        return usage_error(x, "bad run id '%s'", id);
    return connect_client(x);
}

/* ------------------------------------------------------------ run objects */

static const char *jstr(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static long long jint(const cJSON *o, const char *key, long long dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (long long)v->valuedouble : dflt;
}

static void run_progress(const cJSON *run, long long *done, long long *total)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(run, "progress");
    *done = jint(p, "done", 0);
    *total = jint(p, "total", -1);
}

static void fmt_progress_pct(char *buf, size_t cap, const cJSON *run)
{
    long long done, total;
    run_progress(run, &done, &total);
    char p[64];
    cli_fmt_progress(p, sizeof(p), done, total);
    if (total > 0)
        snprintf(buf, cap, "%s (%lld%%)", p,
                 (done < 0       ? 0
                  : done > total ? total
                                 : done) *
                     100 / total);
    else
        snprintf(buf, cap, "%s", p);
}

static void fmt_ago_of(cli_ctx_t *x, char *buf, size_t cap, const char *when)
{
    long long t;
    if (when != NULL && cli_time_parse(when, &t))
        cli_fmt_ago(buf, cap, now_ms(x) - t);
    else
        snprintf(buf, cap, "-");
}

static bool state_terminal(const char *s)
{
    return s != NULL &&
           (strcmp(s, "completed") == 0 || strcmp(s, "failed") == 0 || strcmp(s, "stopped") == 0);
}

/* How long the run has been going: from started (else created) to finished
 * (else now). -1 if unknown. */
static long long run_elapsed_ms(cli_ctx_t *x, const cJSON *run)
{
    long long from, to;
    const char *s = jstr(run, "started_at");
    if (s == NULL)
        s = jstr(run, "created_at");
    if (s == NULL || !cli_time_parse(s, &from))
        return -1;
    const char *f = jstr(run, "finished_at");
    if (f == NULL || !cli_time_parse(f, &to))
        to = now_ms(x);
    return to > from ? to - from : 0;
}

static void print_runs_table(cli_ctx_t *x, const cJSON *runs)
{
    static const char *const hdr[] = {"ID", "JOB", "STATE", "PROGRESS", "AGE", "UPDATED"};
    cli_table_t *t = cli_table_create(6, hdr);
    if (t == NULL) {
        errf(x, "out of memory");
        return;
    }
    const cJSON *run;
    cJSON_ArrayForEach(run, runs)
    {
        char prog[64], age[32], upd[32];
        long long done, total;
        run_progress(run, &done, &total);
        cli_fmt_progress(prog, sizeof(prog), done, total);
        fmt_ago_of(x, age, sizeof(age), jstr(run, "created_at"));
        fmt_ago_of(x, upd, sizeof(upd), jstr(run, "updated_at"));
        const char *row[] = {jstr(run, "id"), jstr(run, "job"), jstr(run, "state"), prog, age, upd};
        if (cli_table_add(t, row) != 0) {
            errf(x, "out of memory");
            break;
        }
    }
    cli_table_print(t, x->out);
    cli_table_destroy(t);
}

static void print_run_detail(cli_ctx_t *x, const cJSON *run)
{
    char buf[128];
    fprintf(x->out, "%-11s %s\n", "ID", jstr(run, "id") ? jstr(run, "id") : "-");
    fprintf(x->out, "%-11s %s\n", "Job", jstr(run, "job") ? jstr(run, "job") : "-");
    fprintf(x->out, "%-11s %s\n", "State", jstr(run, "state") ? jstr(run, "state") : "-");
    fmt_progress_pct(buf, sizeof(buf), run);
    fprintf(x->out, "%-11s %s\n", "Progress", buf);
    fprintf(x->out, "%-11s %lld\n", "Attempt", jint(run, "attempt", 0));
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(run, "params");
    char *ps = params != NULL ? cJSON_PrintUnformatted(params) : NULL;
    fprintf(x->out, "%-11s %s\n", "Params", ps != NULL ? ps : "-");
    cJSON_free(ps);
    static const struct {
        const char *label, *key;
    } times[] = {{"Created", "created_at"},
                 {"Started", "started_at"},
                 {"Updated", "updated_at"},
                 {"Finished", "finished_at"}};
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        const char *v = jstr(run, times[i].key);
        if (v == NULL) {
            fprintf(x->out, "%-11s -\n", times[i].label);
            continue;
        }
        fmt_ago_of(x, buf, sizeof(buf), v);
        fprintf(x->out, "%-11s %s (%s)\n", times[i].label, v, buf);
    }
    long long el = run_elapsed_ms(x, run);
    if (el >= 0 && jstr(run, "started_at") != NULL) {
        cli_fmt_duration(buf, sizeof(buf), el);
        fprintf(x->out, "%-11s %s\n", "Elapsed", buf);
    }
    const char *le = jstr(run, "last_error");
    fprintf(x->out, "%-11s %s\n", "Last error", le != NULL ? le : "-");
}

/* Fetches /v1/runs?QUERY, following `next` when all, and returns every run
 * in one array (*runs, the caller deletes it). *more tells whether a next
 * page was left unread. resp_out, when not NULL and only one page was
 * read, receives that page's raw answer (the caller deinits it). */
static int fetch_runs(cli_ctx_t *x, const char *query, bool all, cJSON **runs /* OUT */,
                      bool *more /* OUT */, cli_response_t *first /* OUT, may be NULL */)
{
    *runs = cJSON_CreateArray();
    *more = false;
    if (*runs == NULL) {
        errf(x, "out of memory");
        return BT_CLI_EXIT_ERROR;
    }
    char cursor[512] = "";
    for (int page = 0;; page++) {
        char path[CLI_MAX_PATH];
        snprintf(path, sizeof(path), "/v1/runs%s%s", query[0] != '\0' ? "?" : "", query);
        if (cursor[0] != '\0') {
            size_t n = strlen(path);
            snprintf(path + n, sizeof(path) - n, "%safter=", query[0] != '\0' ? "&" : "?");
            if (!cli_url_escape(path, sizeof(path), cursor, false)) {
                errf(x, "the server's next cursor is too long");
                return BT_CLI_EXIT_ERROR;
            }
        }
        cli_response_t resp;
        cJSON *doc;
        int rc = call(x, "GET", path, NULL, NULL, &resp, &doc);
        if (rc != 0)
            return rc;
        cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "runs");
        if (!cJSON_IsArray(list)) {
            errf(x, "the answer to GET %s has no \"runs\" list", path);
            cJSON_Delete(doc);
            cli_response_deinit(&resp);
            return BT_CLI_EXIT_ERROR;
        }
        while (cJSON_GetArraySize(list) > 0)
            cJSON_AddItemToArray(*runs, cJSON_DetachItemFromArray(list, 0));
        const char *next = jstr(doc, "next");
        bool has_next = next != NULL && next[0] != '\0';
        if (has_next && strcmp(next, cursor) == 0) {
            errf(x, "the server returned the same cursor twice; stopping");
            cJSON_Delete(doc);
            cli_response_deinit(&resp);
            return BT_CLI_EXIT_ERROR;
        }
        if (has_next && strlen(next) >= sizeof(cursor)) {
            errf(x, "the server's next cursor is too long");
            cJSON_Delete(doc);
            cli_response_deinit(&resp);
            return BT_CLI_EXIT_ERROR;
        }
        if (has_next)
            snprintf(cursor, sizeof(cursor), "%s", next);
        cJSON_Delete(doc);
        if (!all || !has_next) {
            *more = has_next;
            if (first != NULL && page == 0)
                *first = resp;
            else
                cli_response_deinit(&resp);
            return 0;
        }
        cli_response_deinit(&resp);
    }
}

/* Prints a merged list of runs as the API's page shape. */
static void print_runs_json(cli_ctx_t *x, cJSON *runs)
{
    cJSON *doc = cJSON_CreateObject();
    if (doc == NULL)
        return;
    cJSON_AddItemReferenceToObject(doc, "runs", runs);
    cJSON_AddNullToObject(doc, "next");
    print_json(x, doc);
    cJSON_Delete(doc);
}

/* --------------------------------------------------------------- params */

/* Is s exactly a JSON number (RFC 8259 grammar)? cJSON also accepts "007"
 * and "5.", which must stay strings. */
static bool is_json_number(const char *s)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return false;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0';
}

/* The JSON value of a --param: valid JSON as JSON (numbers verbatim, so
 * large integers keep every digit), anything else as a string. */
static cJSON *param_value(const char *v)
{
    if (is_json_number(v))
        return cJSON_CreateRaw(v);
    cJSON *parsed = cJSON_ParseWithOpts(v, NULL, true);
    if (parsed != NULL && !cJSON_IsNumber(parsed))
        return parsed;
    cJSON_Delete(parsed);
    return cJSON_CreateString(v);
}

static bool set_param(cJSON *params, const char *key, cJSON *value)
{
    if (value == NULL)
        return false;
    if (cJSON_GetObjectItemCaseSensitive(params, key) != NULL)
        return cJSON_ReplaceItemInObjectCaseSensitive(params, key, value);
    return cJSON_AddItemToObject(params, key, value);
}

/* Builds {"params": {...}} from --param and --param-json in command-line
 * order (later keys win), or "{}" without any. Returns 0 with *body (the
 * caller frees it with cJSON_free) or a usage error (printed). */
static int build_start_body(cli_ctx_t *x, const cli_args_t *a, char **body /* OUT */)
{
    *body = NULL;
    cJSON *params = cJSON_CreateObject();
    bool any = false;
    if (params == NULL)
        goto oom;
    for (size_t i = 0; i < a->nopts; i++) {
        const char *v = a->opts[i].value;
        if (strcmp(a->opts[i].name, "param") == 0) {
            const char *eq = strchr(v, '=');
            if (eq == NULL || eq == v) {
                cJSON_Delete(params);
                return usage_error(x, "--param expects KEY=VALUE, got '%s'", v);
            }
            char *key = strndup(v, (size_t)(eq - v));
            if (key == NULL)
                goto oom;
            bool ok = set_param(params, key, param_value(eq + 1));
            free(key);
            if (!ok)
                goto oom;
            any = true;
        } else if (strcmp(a->opts[i].name, "param-json") == 0) {
            cJSON *obj = cJSON_Parse(v);
            if (!cJSON_IsObject(obj)) {
                cJSON_Delete(obj);
                cJSON_Delete(params);
                return usage_error(x, "--param-json expects a JSON object, got '%s'", v);
            }
            while (obj->child != NULL) {
                cJSON *item = cJSON_DetachItemViaPointer(obj, obj->child);
                char *key = strdup(item->string);
                bool ok = key != NULL && set_param(params, key, item);
                free(key);
                if (!ok) {
                    cJSON_Delete(obj);
                    goto oom;
                }
            }
            cJSON_Delete(obj);
            any = true;
        }
    }
    if (!any) {
        cJSON_Delete(params);
        params = NULL;
        *body = cJSON_malloc(3);
        if (*body != NULL)
            memcpy(*body, "{}", 3);
    } else {
        cJSON *doc = cJSON_CreateObject();
        if (doc == NULL || !cJSON_AddItemToObject(doc, "params", params)) {
            cJSON_Delete(doc);
            goto oom;
        }
        params = NULL;
        *body = cJSON_PrintUnformatted(doc);
        cJSON_Delete(doc);
    }
    if (*body == NULL)
        goto oom;
    return 0;
oom:
    cJSON_Delete(params);
    errf(x, "out of memory");
    return BT_CLI_EXIT_ERROR;
}

/* ---------------------------------------------------------------- commands */

static int cmd_start(cli_ctx_t *x, const cli_args_t *a)
{
    const char *job = a->pos[0];
    const char *idem = opt_last(a, "idempotency-key");
    if (job[0] == '\0')
        return usage_error(x, "the job name is empty");
    if (idem != NULL) {
        size_t n = strlen(idem);
        bool ok = n >= 1 && n <= CLI_IDEM_KEY_MAX;
        for (size_t i = 0; ok && i < n; i++)
            ok = idem[i] >= 0x21 && idem[i] <= 0x7e; /* as the service checks it */
        if (!ok)
            return usage_error(x,
                               "--idempotency-key must be 1 to %d printable ASCII characters, "
                               "without spaces",
                               CLI_IDEM_KEY_MAX);
    }
    char *body;
    int rc = build_start_body(x, a, &body);
    if (rc != 0)
        return rc;
    char path[CLI_MAX_PATH] = "/v1/jobs/";
    if (!cli_url_escape(path, sizeof(path), job, false) ||
        strlen(path) + sizeof("/runs") > sizeof(path)) {
        cJSON_free(body);
        return usage_error(x, "the job name is too long");
    }
    strcat(path, "/runs");
    if ((rc = connect_client(x)) != 0) {
        cJSON_free(body);
        return rc;
    }
    cli_response_t resp;
    cJSON *run;
    rc = call(x, "POST", path, body, idem, &resp, &run);
    cJSON_free(body);
    if (rc != 0)
        return rc;
    if (x->json) {
        print_raw(x, &resp);
    } else {
        const char *id = jstr(run, "id"), *state = jstr(run, "state");
        fprintf(x->out, "run %s %s (job %s, %s)\n", id != NULL ? id : "?",
                resp.replayed ? "was already started with this idempotency key" : "started", job,
                state != NULL ? state : "?");
    }
    cJSON_Delete(run);
    cli_response_deinit(&resp);
    return 0;
}

static int run_command(cli_ctx_t *x, const cli_args_t *a, const char *verb)
{
    const char *id = a->pos[0];
    char path[CLI_MAX_PATH], suffix[32];
    snprintf(suffix, sizeof(suffix), "/%s", verb);
    int rc = open_run(x, id, suffix, path);
    if (rc != 0)
        return rc;
    cli_response_t resp;
    cJSON *run;
    if ((rc = call(x, "POST", path, NULL, NULL, &resp, &run)) != 0)
        return rc;
    if (x->json) {
        print_raw(x, &resp);
    } else {
        const char *state = jstr(run, "state");
        fprintf(x->out, "run %s is now %s\n", jstr(run, "id") ? jstr(run, "id") : id,
                state != NULL ? state : "?");
    }
    cJSON_Delete(run);
    cli_response_deinit(&resp);
    return 0;
}

static int cmd_pause(cli_ctx_t *x, const cli_args_t *a)
{
    return run_command(x, a, "pause");
}

static int cmd_resume(cli_ctx_t *x, const cli_args_t *a)
{
    return run_command(x, a, "resume");
}

static int cmd_stop(cli_ctx_t *x, const cli_args_t *a)
{
    return run_command(x, a, "stop");
}

static int cmd_status(cli_ctx_t *x, const cli_args_t *a)
{
    int rc;
    if (a->npos == 1) {
        char path[CLI_MAX_PATH];
        if ((rc = open_run(x, a->pos[0], "", path)) != 0)
            return rc;
        cli_response_t resp;
        cJSON *run;
        if ((rc = call(x, "GET", path, NULL, NULL, &resp, &run)) != 0)
            return rc;
        if (x->json)
            print_raw(x, &resp);
        else
            print_run_detail(x, run);
        cJSON_Delete(run);
        cli_response_deinit(&resp);
        return 0;
    }
    if ((rc = connect_client(x)) != 0)
        return rc;
    cJSON *runs;
    bool more;
    rc = fetch_runs(x, "state=" CLI_ACTIVE_STATES "&limit=1000", true, &runs, &more, NULL);
    if (rc == 0) {
        if (x->json)
            print_runs_json(x, runs);
        else if (cJSON_GetArraySize(runs) == 0)
            fprintf(x->out, "no active runs\n");
        else
            print_runs_table(x, runs);
    }
    cJSON_Delete(runs);
    return rc;
}

static const char *const all_states[] = {"pending",   "running", "paused",
                                         "completed", "failed",  "stopped"};

static int cmd_runs(cli_ctx_t *x, const cli_args_t *a)
{
    const char *job = opt_last(a, "job"), *states = opt_last(a, "state");
    const char *limit = opt_last(a, "limit");
    bool all = opt_last(a, "all") != NULL;
    char query[CLI_MAX_PATH] = "";
    if (job != NULL) {
        if (job[0] == '\0')
            return usage_error(x, "--job needs a job name");
        strcat(query, "job=");
        if (!cli_url_escape(query, sizeof(query), job, false))
            return usage_error(x, "--job is too long");
    }
    if (states != NULL) {
        /* Checked here so a typo gets the list of states, not a 400. */
        char copy[256];
        if (strlen(states) >= sizeof(copy) || states[0] == '\0')
            return usage_error(x, "--state expects states separated by commas");
        snprintf(copy, sizeof(copy), "%s", states);
        char *save = NULL;
        for (char *s = strtok_r(copy, ",", &save); s != NULL; s = strtok_r(NULL, ",", &save)) {
            bool known = false;
            for (size_t i = 0; i < sizeof(all_states) / sizeof(all_states[0]); i++)
                known = known || strcmp(s, all_states[i]) == 0;
            if (!known)
                return usage_error(x,
                                   "unknown state '%s' (states: pending, running, paused, "
                                   "completed, failed, stopped)",
                                   s);
        }
        strcat(query, query[0] != '\0' ? "&state=" : "state=");
        if (!cli_url_escape(query, sizeof(query), states, true))
            return usage_error(x, "--state is too long");
    }
    if (limit != NULL) {
        char *end;
        errno = 0;
        long n = strtol(limit, &end, 10);
        if (errno != 0 || end == limit || *end != '\0' || n < 1 || n > 1000)
            return usage_error(x, "--limit expects a number from 1 to 1000, got '%s'", limit);
        size_t len = strlen(query);
        snprintf(query + len, sizeof(query) - len, "%slimit=%ld", len > 0 ? "&" : "", n);
    } else if (all) {
        size_t len = strlen(query);
        snprintf(query + len, sizeof(query) - len, "%slimit=1000", len > 0 ? "&" : "");
    }
    int rc = connect_client(x);
    if (rc != 0)
        return rc;
    cJSON *runs;
    bool more;
    cli_response_t first = {0};
    rc = fetch_runs(x, query, all, &runs, &more, &first);
    if (rc == 0) {
        if (x->json && !all)
            print_raw(x, &first);
        else if (x->json)
            print_runs_json(x, runs);
        else if (cJSON_GetArraySize(runs) == 0)
            fprintf(x->out, "no runs\n");
        else
            print_runs_table(x, runs);
        if (more && !x->json)
            fprintf(x->err, "(more runs: use --all, or a larger --limit)\n");
    }
    cli_response_deinit(&first);
    cJSON_Delete(runs);
    return rc;
}

static int cmd_events(cli_ctx_t *x, const cli_args_t *a)
{
    const char *id = a->pos[0];
    char path[CLI_MAX_PATH];
    int rc = open_run(x, id, "/events", path);
    if (rc != 0)
        return rc;
    cli_response_t resp;
    cJSON *doc;
    if ((rc = call(x, "GET", path, NULL, NULL, &resp, &doc)) != 0)
        return rc;
    if (x->json) {
        print_raw(x, &resp);
    } else {
        static const char *const hdr[] = {"SEQ", "AT", "FROM", "TO", "CAUSE"};
        cli_table_t *t = cli_table_create(5, hdr);
        const cJSON *ev;
        cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(doc, "events"))
        {
            char seq[32];
            snprintf(seq, sizeof(seq), "%lld", jint(ev, "seq", 0));
            const char *row[] = {seq, jstr(ev, "at"), jstr(ev, "from"), jstr(ev, "to"),
                                 jstr(ev, "cause")};
            if (t == NULL || cli_table_add(t, row) != 0) {
                rc = BT_CLI_EXIT_ERROR;
                break;
            }
        }
        if (rc == 0)
            cli_table_print(t, x->out);
        else
            errf(x, "out of memory");
        cli_table_destroy(t);
    }
    cJSON_Delete(doc);
    cli_response_deinit(&resp);
    return rc;
}

/* Set by SIGINT while `watch` draws on a terminal, so the progress line is
 * finished before the process exits. */
static volatile sig_atomic_t watch_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    watch_interrupted = 1;
}

/* Sleeps ms, or less when SIGINT arrives. */
static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (!watch_interrupted && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int watch_loop(cli_ctx_t *x, const char *id, const char *path);

static int cmd_watch(cli_ctx_t *x, const cli_args_t *a)
{
    const char *id = a->pos[0];
    char path[CLI_MAX_PATH];
    int rc = open_run(x, id, "", path);
    if (rc != 0)
        return rc;
    struct sigaction sa = {.sa_handler = on_sigint}, old;
    sigemptyset(&sa.sa_mask);
    bool caught = x->tty && !x->json && sigaction(SIGINT, &sa, &old) == 0;
    watch_interrupted = 0;
    rc = watch_loop(x, id, path);
    if (caught)
        sigaction(SIGINT, &old, NULL);
    return rc;
}

/* Polls the run until it is terminal (or SIGINT); returns the exit code. */
static int watch_loop(cli_ctx_t *x, const char *id, const char *path)
{
    int rc;
    char last[128] = "";
    bool drawn = false; /* a TTY line is on screen without its newline */
    for (unsigned tick = 0;; tick++) {
        cli_response_t resp;
        cJSON *run;
        if ((rc = call(x, "GET", path, NULL, NULL, &resp, &run)) != 0) {
            if (drawn)
                fputc('\n', x->out);
            return rc;
        }
        const char *state = jstr(run, "state");
        long long done, total;
        run_progress(run, &done, &total);
        char key[128];
        snprintf(key, sizeof(key), "%s %lld %lld", state != NULL ? state : "?", done, total);
        bool changed = strcmp(key, last) != 0;
        snprintf(last, sizeof(last), "%s", key);
        bool terminal = state_terminal(state);

        if (x->json) {
            if (changed)
                print_json(x, run);
        } else {
            char bar[CLI_BAR_WIDTH + 3], prog[96], el[32] = "-";
            long long ems = run_elapsed_ms(x, run);
            if (ems >= 0)
                cli_fmt_duration(el, sizeof(el), ems);
            fmt_progress_pct(prog, sizeof(prog), run);
            if (x->tty) {
                /* A completed run with an unknown total shows a full bar. */
                bool full = state != NULL && strcmp(state, "completed") == 0 && total <= 0;
                cli_fmt_bar(bar, sizeof(bar), full ? 1 : done, full ? 1 : total, CLI_BAR_WIDTH,
                            tick);
                fprintf(x->out, "\r%s %s  %s  %s\033[K", bar, prog, state != NULL ? state : "?",
                        el);
                drawn = true;
            } else if (changed) {
                fprintf(x->out, "%s %s %s\n", state != NULL ? state : "?", prog, el);
            }
        }
        fflush(x->out);
        if (terminal) {
            if (drawn)
                fputc('\n', x->out);
            char lebuf[1024];
            const char *le = jstr(run, "last_error");
            if (le != NULL)
                le = cli_clean(lebuf, sizeof(lebuf), le);
            char el[32] = "?";
            long long ems = run_elapsed_ms(x, run);
            if (ems >= 0)
                cli_fmt_duration(el, sizeof(el), ems);
            if (strcmp(state, "completed") == 0) {
                rc = BT_CLI_EXIT_OK;
                if (!x->json)
                    fprintf(x->out, "run %s completed in %s\n", id, el);
            } else if (strcmp(state, "failed") == 0) {
                rc = BT_CLI_EXIT_RUN_FAILED;
                errf(x, "run %s failed after %s: %s", id, el, le != NULL ? le : "(no error given)");
            } else {
                rc = BT_CLI_EXIT_RUN_STOPPED;
                if (le != NULL)
                    errf(x, "run %s stopped after %s: %s", id, el, le);
                else
                    errf(x, "run %s stopped after %s", id, el);
            }
            cJSON_Delete(run);
            cli_response_deinit(&resp);
            return rc;
        }
        cJSON_Delete(run);
        cli_response_deinit(&resp);
        sleep_ms(x->poll_ms);
        if (watch_interrupted) {
            if (drawn)
                fputc('\n', x->out);
            return BT_CLI_EXIT_INTERRUPTED;
        }
    }
}

static int cmd_help(cli_ctx_t *x, const cli_args_t *a);

static const cli_opt_spec_t start_opts[] = {
    {"param", true}, {"param-json", true}, {"idempotency-key", true}, {NULL, false}};
static const cli_opt_spec_t runs_opts[] = {
    {"job", true}, {"state", true}, {"limit", true}, {"all", false}, {NULL, false}};
static const cli_opt_spec_t no_opts[] = {{NULL, false}};

static const cli_cmd_t commands[] = {
    {"start", "JOB [--param KEY=VALUE ...] [--param-json JSON] [--idempotency-key KEY]",
     "start a run of JOB",
     "  --param KEY=VALUE      a parameter; VALUE is JSON if it parses as JSON\n"
     "                         (5, true, null, [1,2], {\"a\":1}, \"quoted\"), else a string\n"
     "  --param-json JSON      parameters as one JSON object\n"
     "                         (repeatable; later keys win over earlier ones)\n"
     "  --idempotency-key KEY  1-128 printable ASCII characters, no spaces; repeating a\n"
     "                         start with the same key returns the first run instead\n"
     "                         of starting another\n",
     start_opts, 1, 1, cmd_start},
    {"pause", "RUN", "pause a pending or running run", NULL, no_opts, 1, 1, cmd_pause},
    {"resume", "RUN", "resume a paused run", NULL, no_opts, 1, 1, cmd_resume},
    {"stop", "RUN", "stop an active run (waits until it has stopped)", NULL, no_opts, 1, 1,
     cmd_stop},
    {"status", "[RUN]", "one run in detail, or without RUN the active runs", NULL, no_opts, 0, 1,
     cmd_status},
    {"runs", "[--job JOB] [--state STATE[,STATE...]] [--limit N] [--all]",
     "list runs, oldest first",
     "  --job JOB      only this job's runs\n"
     "  --state LIST   only runs in these states (pending, running, paused,\n"
     "                 completed, failed, stopped), separated by commas\n"
     "  --limit N      runs per page, 1-1000 (default: the server's, 100)\n"
     "  --all          follow the pages to the end (pages of 1000 unless --limit)\n",
     runs_opts, 0, 0, cmd_runs},
    {"events", "RUN", "a run's history of state changes", NULL, no_opts, 1, 1, cmd_events},
    {"watch", "RUN", "follow a run's progress until it ends",
     "  Polls every 500 ms. On a terminal, redraws one progress line; otherwise\n"
     "  prints a line per change (with --json, the run's JSON per change).\n"
     "  Exits 0 when the run completes, 10 when it fails, 11 when it is stopped.\n",
     no_opts, 1, 1, cmd_watch},
    {"help", "[COMMAND]", "this overview, or one command's help", NULL, no_opts, 0, 1, cmd_help},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const cli_cmd_t *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void command_help(const cli_cmd_t *c, FILE *f)
{
    fprintf(f, "usage: baton %s %s\n\n%c%s.\n\n", c->name, c->synopsis, c->summary[0] - 32,
            c->summary + 1);
    if (c->details != NULL)
        fprintf(f, "%s\n", c->details);
    fprintf(f, "%s\n%s", global_opts_text, exit_codes_text);
}

void bt_cli_usage(FILE *f)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char head[128];
        snprintf(head, sizeof(head), "%s %s", commands[i].name, commands[i].synopsis);
        if (strlen(head) > 24)
            fprintf(f, "  %s\n  %-24s  %s\n", head, "", commands[i].summary);
        else
            fprintf(f, "  %-24s  %s\n", head, commands[i].summary);
    }
    fprintf(f, "\n%s\n%s", global_opts_text, exit_codes_text);
}

static int cmd_help(cli_ctx_t *x, const cli_args_t *a)
{
    if (a->npos == 1) {
        const cli_cmd_t *c = find_command(a->pos[0]);
        if (c == NULL) {
            errf(x, "no command '%s'", a->pos[0]);
            return BT_CLI_EXIT_USAGE;
        }
        command_help(c, x->out);
        return 0;
    }
    fprintf(x->out, "usage: baton COMMAND [ARGS] [OPTIONS]\n\nClient commands:\n");
    bt_cli_usage(x->out);
    return 0;
}

/* ------------------------------------------------------------ entry point */

static const char *default_getenv(const char *name)
{
    return getenv(name);
}

int bt_cli_run(int argc, char **argv, bt_cli_resolve_fn resolve, const bt_cli_io_t *io)
{
    cli_ctx_t x = {0};
    x.out = io != NULL && io->out != NULL ? io->out : stdout;
    x.err = io != NULL && io->err != NULL ? io->err : stderr;
    x.getenv = io != NULL && io->getenv != NULL ? io->getenv : default_getenv;
    x.fixed_now_ms = io != NULL ? io->now_ms : 0;
    x.poll_ms = io != NULL && io->poll_ms != 0 ? io->poll_ms : CLI_DEFAULT_POLL_MS;
    x.tty = io != NULL && io->tty >= 0 ? io->tty != 0 : isatty(fileno(x.out)) == 1;
    x.resolve = resolve;
    if (argc < 1 || argv == NULL || argv[0] == NULL)
        return usage_error(&x, "no command given");
    x.cmd = find_command(argv[0]);
    if (x.cmd == NULL) {
        errf(&x, "unknown command '%s'", argv[0]);
        fputs("Try 'baton help'.\n", x.err);
        return BT_CLI_EXIT_USAGE;
    }
    cli_args_t a = {0};
    a.pos = calloc((size_t)argc, sizeof(*a.pos));
    a.opts = calloc((size_t)argc, sizeof(*a.opts));
    int rc;
    if (a.pos == NULL || a.opts == NULL) {
        errf(&x, "out of memory");
        rc = BT_CLI_EXIT_ERROR;
    } else if ((rc = parse_args(&x, argc, argv, &a)) != 0) {
        /* printed */
    } else if (a.help) {
        command_help(x.cmd, x.out);
        rc = 0;
    } else if (a.npos < x.cmd->min_pos) {
        rc = usage_error(&x, "missing %.*s", (int)strcspn(x.cmd->synopsis, " "), x.cmd->synopsis);
    } else if (a.npos > x.cmd->max_pos) {
        rc = usage_error(&x, "unexpected argument '%s'", a.pos[x.cmd->max_pos]);
    } else {
        rc = x.cmd->fn(&x, &a);
    }
    free(a.pos);
    free(a.opts);
    cli_client_destroy(x.client);
    if (x.curl_ready)
        curl_global_cleanup();
    fflush(x.out);
    fflush(x.err);
    return rc;
}

int bt_cli_main(int argc, char **argv, bt_cli_resolve_fn resolve)
{
    bt_cli_io_t io = {.tty = -1};
    return bt_cli_run(argc, argv, resolve, &io);
}
