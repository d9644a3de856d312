/*
 * e2e.c: helpers for end-to-end tests of the real binary. See e2e.h.
 */
#define _GNU_SOURCE
#include "e2e.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef BATON_BIN
#error "BATON_BIN must be defined"
#endif

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

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("free_port");
        abort();
    }
    close(fd);
    return ntohs(a.sin_port);
}

void e2e_init(e2e_svc_t *s)
{
    char token[sizeof(s->token)], extra[sizeof(s->server_extra)];
    memcpy(token, s->token, sizeof(token));
    memcpy(extra, s->server_extra, sizeof(extra));
    memset(s, 0, sizeof(*s));
    memcpy(s->token, token, sizeof(token));
    memcpy(s->server_extra, extra, sizeof(extra));
    snprintf(s->dir, sizeof(s->dir), "/tmp/baton-e2e-XXXXXX");
    if (mkdtemp(s->dir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    snprintf(s->config, sizeof(s->config), "%s/config.toml", s->dir);
    snprintf(s->log, sizeof(s->log), "%s/serve.log", s->dir);
    s->port = free_port();
}

void e2e_write_config(e2e_svc_t *s, const char *extra)
{
    FILE *f = fopen(s->config, "w");
    if (f == NULL) {
        perror("config");
        abort();
    }
    fprintf(f, "log_level = \"debug\"\n\n[server]\nport = %u\n", s->port);
    if (s->token[0] != '\0')
        fprintf(f, "token = \"%s\"\n", s->token);
    fprintf(f, "%s", s->server_extra);
    fprintf(f, "\n[store]\nstate_dir = \"state\"\nsync = \"normal\"\n\n%s\n",
            extra != NULL ? extra : "");
    fclose(f);
}

bool e2e_start(e2e_svc_t *s, int timeout_ms)
{
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
            close(fd);
        }
        execl(BATON_BIN, BATON_BIN, "serve", "--config", s->config, (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    long long deadline = now_ms() + timeout_ms;
    while (now_ms() < deadline) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            s->pid = 0;
            return false;
        }
        e2e_resp_t r;
        if (e2e_http(s, "GET", "/readyz", NULL, NULL, false, &r)) {
            long status = r.status;
            e2e_resp_free(&r);
            if (status == 200)
                return true;
        }
        sleep_ms(20);
    }
    return false;
}

int e2e_stop(e2e_svc_t *s, int sig, int timeout_ms)
{
    if (s->pid == 0)
        return -1;
    kill(s->pid, sig);
    long long deadline = now_ms() + timeout_ms;
    int st;
    for (;;) {
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid)
            break;
        if (now_ms() > deadline) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
            s->pid = 0;
            return -1;
        }
        sleep_ms(10);
    }
    s->pid = 0;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

void e2e_cleanup(e2e_svc_t *s)
{
    if (s->pid != 0)
        e2e_stop(s, SIGKILL, 5000);
    nftw(s->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

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

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    char *h = ud;
    size_t have = strlen(h), add = size * n;
    if (have + add < 4095) {
        memcpy(h + have, data, add);
        h[have + add] = '\0';
    }
    return add;
}

bool e2e_http(e2e_svc_t *s, const char *method, const char *path, const char *body,
              const char *const *extra_headers, bool auth, e2e_resp_t *out)
{
    memset(out, 0, sizeof(*out));
    CURL *c = curl_easy_init();
    if (c == NULL)
        return false;
    char url[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", s->port, path);
    sink_t k = {0};
    struct curl_slist *hs = NULL;
    char authz[128];
    if (auth && s->token[0] != '\0') {
        snprintf(authz, sizeof(authz), "Authorization: Bearer %s", s->token);
        hs = curl_slist_append(hs, authz);
    }
    for (const char *const *h = extra_headers; h != NULL && *h != NULL; h++)
        hs = curl_slist_append(hs, *h);
    if (body != NULL)
        hs = curl_slist_append(hs, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &k);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        free(k.p);
        return false;
    }
    out->body = k.p != NULL ? k.p : strdup("");
    out->len = k.len;
    return true;
}

void e2e_resp_free(e2e_resp_t *r)
{
    free(r->body);
    r->body = NULL;
}

void e2e_json_str(const char *body, const char *path, char *out, size_t outlen)
{
    out[0] = '\0';
    cJSON *root = cJSON_Parse(body != NULL ? body : "");
    const cJSON *v = root;
    char key[64];
    const char *p = path;
    while (v != NULL && *p != '\0') {
        const char *dot = strchr(p, '.');
        size_t n = dot != NULL ? (size_t)(dot - p) : strlen(p);
        snprintf(key, sizeof(key), "%.*s", (int)n, p);
        v = cJSON_GetObjectItemCaseSensitive(v, key);
        p = dot != NULL ? dot + 1 : p + n;
    }
    if (cJSON_IsString(v))
        snprintf(out, outlen, "%s", v->valuestring);
    else if (cJSON_IsNumber(v))
        snprintf(out, outlen, "%lld", (long long)v->valuedouble);
    else if (cJSON_IsBool(v))
        snprintf(out, outlen, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNull(v))
        snprintf(out, outlen, "null");
    cJSON_Delete(root);
}

static void drain_fd(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    for (;;) {
        char tmp[4096];
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        size_t room = cap > 0 ? cap - 1 - len : 0;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(buf + len, tmp, take);
        len += take;
    }
    if (cap > 0)
        buf[len] = '\0';
}

static int run_argv(char *const *argv, char *const *envp, char *out, size_t outlen, char *err,
                    size_t errlen)
{
    char opath[] = "/tmp/baton-e2e-out-XXXXXX", epath[] = "/tmp/baton-e2e-err-XXXXXX";
    int ofd = mkstemp(opath), efd = mkstemp(epath);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(ofd, STDOUT_FILENO);
        dup2(efd, STDERR_FILENO);
        if (envp != NULL)
            execve(argv[0], argv, envp);
        else
            execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    lseek(ofd, 0, SEEK_SET);
    lseek(efd, 0, SEEK_SET);
    drain_fd(ofd, out, outlen);
    drain_fd(efd, err, errlen);
    close(ofd);
    close(efd);
    unlink(opath);
    unlink(epath);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int e2e_cli(e2e_svc_t *s, char *out, size_t outlen, char *err, size_t errlen, ...)
{
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)BATON_BIN;
    va_list ap;
    va_start(ap, errlen);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 31)
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    char url[128], token[128], config[340];
    snprintf(url, sizeof(url), "BATON_URL=http://127.0.0.1:%u", s->port);
    snprintf(token, sizeof(token), "BATON_TOKEN=%s", s->token);
    snprintf(config, sizeof(config), "BATON_CONFIG=%s", s->config);
    char *envp[] = {url, token, config, "PATH=/usr/bin:/bin", "LC_ALL=C", NULL};
    return run_argv(argv, envp, out, outlen, err, errlen);
}

int e2e_run(char *out, size_t outlen, char *err, size_t errlen, const char *const *args)
{
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)BATON_BIN;
    for (const char *const *a = args; *a != NULL && n < 31; a++)
        argv[n++] = (char *)*a;
    argv[n] = NULL;
    return run_argv(argv, NULL, out, outlen, err, errlen);
}

bool e2e_wait_state(e2e_svc_t *s, const char *id, const char *state, int timeout_ms)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/runs/%s", id);
    long long deadline = now_ms() + timeout_ms;
    while (now_ms() < deadline) {
        e2e_resp_t r;
        if (e2e_http(s, "GET", path, NULL, NULL, true, &r)) {
            char got[32];
            e2e_json_str(r.body, "state", got, sizeof(got));
            e2e_resp_free(&r);
            if (strcmp(got, state) == 0)
                return true;
        }
        sleep_ms(20);
    }
    return false;
}

char *e2e_read_log(e2e_svc_t *s)
{
    FILE *f = fopen(s->log, "r");
    if (f == NULL)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    size_t got = fread(p, 1, (size_t)n, f);
    p[got] = '\0';
    fclose(f);
    return p;
}
