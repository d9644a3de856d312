/*
 * test_http.c: behaviours of the hardened HTTP server (app/server/http.h),
 * driven over real sockets: libcurl for well-formed requests, raw sockets
 * for what curl will not send (no Host, trickled bytes, oversized headers,
 * many idle connections). The handler echoes the request as JSON.
 */
#define _GNU_SOURCE
#include "log.h"
#include "server/http.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ the handler */

static atomic_int block_entered;
static atomic_int block_release;
static atomic_int block_finished;
static atomic_int slow_entered;
static atomic_int slow_finished;

static void echo_handler(void *ctx, const bt_http_req_t *req, bt_http_resp_t *resp)
{
    const char *path = bt_http_path(req);
    if (strcmp(path, "/missing") == 0) {
        bt_http_resp_error(resp, 404, "not_found", "no route \"%s\"\n(really)", path);
        return;
    }
    if (strcmp(path, "/block") == 0) {
        atomic_store(&block_entered, 1);
        while (!atomic_load(&block_release))
            usleep(5000);
        atomic_store(&block_finished, 1);
    }
    if (strcmp(path, "/slow") == 0) {
        atomic_fetch_add(&slow_entered, 1);
        usleep(1500 * 1000);
        atomic_fetch_add(&slow_finished, 1);
    }
    if (strcmp(path, "/slow1s") == 0)
        usleep(1000 * 1000);
    if (strcmp(path, "/text") == 0) {
        bt_http_resp_text(resp, 200, "text/plain", "hi", 2);
        return;
    }
    size_t len;
    const char *body = bt_http_body(req, &len);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", bt_http_method(req));
    cJSON_AddStringToObject(o, "path", path);
    const char *q = bt_http_query(req, "q");
    if (q != NULL)
        cJSON_AddStringToObject(o, "q", q);
    const char *h = bt_http_header(req, "x-test");
    if (h != NULL)
        cJSON_AddStringToObject(o, "x_test", h);
    cJSON_AddStringToObject(o, "body", body);
    cJSON_AddNumberToObject(o, "body_len", (double)len);
    bt_http_resp_take(resp, 200, cJSON_PrintUnformatted(o));
    bt_http_resp_header(resp, "X-Echo", "yes");
    bt_http_resp_header(resp, "X-Bad", "a\r\nInjected: 1");
    cJSON_Delete(o);
}

/* ---------------------------------------------------------------- helpers */

static bt_http_config_t base_config(void)
{
    bt_http_config_t c = {0};
    c.handler = echo_handler;
    return c;
}

static bt_http_server_t *start_ok(const bt_http_config_t *cfg)
{
    bt_http_server_t *s = NULL;
    char err[256] = "";
    int rc = bt_http_start(cfg, &s, err, sizeof(err));
    cr_assert_eq(rc, 0, "bt_http_start: %s", err);
    cr_assert_not_null(s);
    cr_assert_neq(bt_http_port(s), 0);
    return s;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct buf {
    char *data;
    size_t len;
} buf_t;

static size_t buf_write(char *p, size_t size, size_t n, void *ud)
{
    buf_t *b = ud;
    size_t add = size * n;
    b->data = realloc(b->data, b->len + add + 1);
    memcpy(b->data + b->len, p, add);
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

typedef struct reply {
    long status;
    buf_t body;
    buf_t headers;
} reply_t;

static void reply_free(reply_t *r)
{
    free(r->body.data);
    free(r->headers.data);
    memset(r, 0, sizeof(*r));
}

static bool has_header(const reply_t *r, const char *line)
{
    return r->headers.data != NULL && strcasestr(r->headers.data, line) != NULL;
}

/* One request with curl; headers is a NULL-terminated list or NULL. Pass a
 * handle to reuse its connection (keep-alive), or NULL. */
static reply_t request(CURL *reuse, const char *url, const char *method, const char *body,
                       const char *const *headers)
{
    reply_t r = {0};
    CURL *c = reuse != NULL ? reuse : curl_easy_init();
    cr_assert_not_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, buf_write);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    struct curl_slist *hl = NULL;
    for (const char *const *h = headers; h != NULL && *h != NULL; h++)
        hl = curl_slist_append(hl, *h);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    CURLcode rc = curl_easy_perform(c);
    cr_assert_eq(rc, CURLE_OK, "curl %s: %s", url, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hl);
    if (reuse == NULL)
        curl_easy_cleanup(c);
    return r;
}

static void url_for(char *out, size_t n, bt_http_server_t *s, const char *path)
{
    snprintf(out, n, "http://127.0.0.1:%u%s", (unsigned)bt_http_port(s), path);
}

/* Asserts body is {"error":{"code":code,"message":<string>}}. */
static void assert_error_body(const reply_t *r, const char *code)
{
    cJSON *o = cJSON_Parse(r->body.data);
    cr_assert_not_null(o, "error body is not JSON: %s", r->body.data);
    cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    cr_assert(cJSON_IsObject(e));
    cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
    cr_assert(cJSON_IsString(c));
    cr_assert_str_eq(c->valuestring, code);
    cr_assert(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "message")));
    cJSON_Delete(o);
}

static int raw_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect: %s", strerror(errno));
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the server may close on us; the reply tells */
        p += w;
        n -= (size_t)w;
    }
}

/* Reads until EOF/error or timeout_ms; returns the bytes read (malloc'd)
 * and sets *closed when the peer closed (EOF or RST). */
static char *read_reply(int fd, int timeout_ms, bool *closed)
{
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    *closed = false;
    double end = now_s() + timeout_ms / 1000.0;
    for (;;) {
        int left = (int)((end - now_s()) * 1000);
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, left) <= 0)
            break;
        if (len + 1024 > cap)
            out = realloc(out, cap *= 2);
        ssize_t n = recv(fd, out + len, cap - len - 1, 0);
        if (n <= 0) {
            *closed = true;
            break;
        }
        len += (size_t)n;
    }
    out[len] = '\0';
    return out;
}

static char *raw_exchange(uint16_t port, const char *req, size_t len)
{
    int fd = raw_connect(port);
    send_all(fd, req, len);
    bool closed;
    char *out = read_reply(fd, 3000, &closed);
    close(fd);
    return out;
}

static int status_of(const char *raw)
{
    int st = 0;
    if (sscanf(raw, "HTTP/1.%*d %d", &st) != 1)
        return 0;
    return st;
}

static int log_sink = -1;

static void setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* Every log line is formatted (debug included), then discarded unless
     * BT_TEST_LOG is set. */
    log_sink = getenv("BT_TEST_LOG") != NULL ? dup(2) : open("/dev/null", O_WRONLY);
    bt_log_init(BT_LOG_DEBUG, log_sink);
}

static void teardown(void)
{
    curl_global_cleanup();
    close(log_sink);
}

TestSuite(http, .init = setup, .fini = teardown, .timeout = 30);

/* ------------------------------------------------------------------ tests */

Test(http, routes_method_path_query_and_body)
{
    bt_http_config_t cfg = base_config();
    bt_http_server_t *s = start_ok(&cfg);
    char url[128];

    url_for(url, sizeof(url), s, "/hello/world?q=a%20b");
    const char *hdrs[] = {"X-Test: v1", NULL};
    reply_t r = request(NULL, url, "GET", NULL, hdrs);
    cr_assert_eq(r.status, 200);
    cr_assert(has_header(&r, "Content-Type: application/json"));
    cr_assert(has_header(&r, "Cache-Control: no-store"));
    cr_assert(has_header(&r, "X-Echo: yes"));
    cr_assert(!has_header(&r, "Injected"), "a header value with CRLF must be dropped");
    cJSON *o = cJSON_Parse(r.body.data);
    cr_assert_not_null(o);
    cr_assert_str_eq(cJSON_GetObjectItem(o, "method")->valuestring, "GET");
    cr_assert_str_eq(cJSON_GetObjectItem(o, "path")->valuestring, "/hello/world");
    cr_assert_str_eq(cJSON_GetObjectItem(o, "q")->valuestring, "a b");
    cr_assert_str_eq(cJSON_GetObjectItem(o, "x_test")->valuestring, "v1");
    cr_assert_str_eq(cJSON_GetObjectItem(o, "body")->valuestring, "");
    cJSON_Delete(o);
    reply_free(&r);

    url_for(url, sizeof(url), s, "/runs");
    r = request(NULL, url, "POST", "{\"job\":\"nightly\"}", NULL);
    cr_assert_eq(r.status, 200);
    o = cJSON_Parse(r.body.data);
    cr_assert_str_eq(cJSON_GetObjectItem(o, "method")->valuestring, "POST");
    cr_assert_str_eq(cJSON_GetObjectItem(o, "body")->valuestring, "{\"job\":\"nightly\"}");
    cr_assert_eq(cJSON_GetObjectItem(o, "body_len")->valueint, 17);
    cJSON_Delete(o);
    reply_free(&r);

    /* An error from the handler: the DESIGN.md shape, message escaped. */
    url_for(url, sizeof(url), s, "/missing");
    r = request(NULL, url, "GET", NULL, NULL);
    cr_assert_eq(r.status, 404);
    cr_assert(has_header(&r, "Cache-Control: no-store"));
    assert_error_body(&r, "not_found");
    o = cJSON_Parse(r.body.data);
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "error"), "message")->valuestring,
                     "no route \"/missing\"\n(really)");
    cJSON_Delete(o);
    reply_free(&r);

    url_for(url, sizeof(url), s, "/text");
    r = request(NULL, url, "GET", NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert(has_header(&r, "Content-Type: text/plain"));
    cr_assert_str_eq(r.body.data, "hi");
    reply_free(&r);

    bt_http_stats_t st;
    bt_http_stats(s, &st);
    cr_assert_eq(st.requests, 4);
    cr_assert_eq(st.rejected, 0);
    bt_http_stop(s);
}

Test(http, keeps_the_connection_alive_across_requests)
{
    bt_http_config_t cfg = base_config();
    bt_http_server_t *s = start_ok(&cfg);
    char url[128];
    url_for(url, sizeof(url), s, "/k");
    CURL *c = curl_easy_init();
    for (int i = 0; i < 3; i++) {
        reply_t r = request(c, url, "GET", NULL, NULL);
        cr_assert_eq(r.status, 200);
        reply_free(&r);
    }
    long connects = -1;
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
    cr_assert_eq(connects, 0, "the last request reused the connection");
    curl_easy_cleanup(c);
    bt_http_stats_t st;
    bt_http_stats(s, &st);
    cr_assert_eq(st.connections, 1);
    cr_assert_eq(st.requests, 3);
    bt_http_stop(s);
}

Test(http, requires_the_bearer_token_except_on_public_paths)
{
    const char *pub[] = {"/healthz"};
    bt_http_config_t cfg = base_config();
    cfg.token = "s3cret-token";
    cfg.public_paths = pub;
    cfg.npublic_paths = 1;
    bt_http_server_t *s = start_ok(&cfg);
    char url[128];
    url_for(url, sizeof(url), s, "/runs");

    reply_t r = request(NULL, url, "GET", NULL, NULL);
    cr_assert_eq(r.status, 401);
    cr_assert(has_header(&r, "WWW-Authenticate: Bearer realm=\"baton\""));
    cr_assert(has_header(&r, "Cache-Control: no-store"));
    assert_error_body(&r, "unauthorized");
    reply_free(&r);

    const char *wrong[] = {"Authorization: Bearer s3cret-tokeX", NULL};
    r = request(NULL, url, "GET", NULL, wrong);
    cr_assert_eq(r.status, 401);
    reply_free(&r);
    const char *prefix[] = {"Authorization: Bearer s3cret", NULL};
    r = request(NULL, url, "GET", NULL, prefix);
    cr_assert_eq(r.status, 401, "a prefix of the token is not the token");
    reply_free(&r);
    const char *longer[] = {"Authorization: Bearer s3cret-token-and-more", NULL};
    r = request(NULL, url, "GET", NULL, longer);
    cr_assert_eq(r.status, 401);
    reply_free(&r);
    const char *basic[] = {"Authorization: Basic s3cret-token", NULL};
    r = request(NULL, url, "GET", NULL, basic);
    cr_assert_eq(r.status, 401);
    reply_free(&r);

    const char *right[] = {"Authorization: bearer s3cret-token", NULL};
    r = request(NULL, url, "GET", NULL, right);
    cr_assert_eq(r.status, 200);
    reply_free(&r);

    url_for(url, sizeof(url), s, "/healthz");
    r = request(NULL, url, "GET", NULL, NULL);
    cr_assert_eq(r.status, 200);
    reply_free(&r);

    bt_http_stats_t st;
    bt_http_stats(s, &st);
    cr_assert_eq(st.rejected, 5);
    cr_assert_eq(st.requests, 2);
    bt_http_stop(s);
}

Test(http, refuses_hosts_outside_the_allowlist)
{
    bt_http_config_t cfg = base_config();
    cfg.token = "tok"; /* Host is checked before the token */
    bt_http_server_t *s = start_ok(&cfg);
    char url[128];
    url_for(url, sizeof(url), s, "/x");

    const char *evil[] = {"Host: evil.example:80", "Authorization: Bearer tok", NULL};
    reply_t r = request(NULL, url, "GET", NULL, evil);
    cr_assert_eq(r.status, 403);
    assert_error_body(&r, "forbidden");
    reply_free(&r);
    const char *evil_notoken[] = {"Host: evil.example", NULL};
    r = request(NULL, url, "GET", NULL, evil_notoken);
    cr_assert_eq(r.status, 403, "Host is checked before the token");
    reply_free(&r);
    const char *suffix[] = {"Host: localhost.evil.example", "Authorization: Bearer tok", NULL};
    r = request(NULL, url, "GET", NULL, suffix);
    cr_assert_eq(r.status, 403);
    reply_free(&r);
    const char *badport[] = {"Host: localhost:80x", "Authorization: Bearer tok", NULL};
    r = request(NULL, url, "GET", NULL, badport);
    cr_assert_eq(r.status, 403);
    reply_free(&r);

    const char *upper[] = {"Host: LocalHost:1234", "Authorization: Bearer tok", NULL};
    r = request(NULL, url, "GET", NULL, upper);
    cr_assert_eq(r.status, 200, "any port, case-insensitive");
    reply_free(&r);
    const char *v6[] = {"Host: [::1]:7878", "Authorization: Bearer tok", NULL};
    r = request(NULL, url, "GET", NULL, v6);
    cr_assert_eq(r.status, 200);
    reply_free(&r);

    /* No Host at all, HTTP/1.1 and HTTP/1.0; and two Host headers. */
    const char *no11 = "GET /x HTTP/1.1\r\nAuthorization: Bearer tok\r\n\r\n";
    char *raw = raw_exchange(bt_http_port(s), no11, strlen(no11));
    cr_assert_eq(status_of(raw), 403, "got: %s", raw);
    cr_assert(strstr(raw, "\"forbidden\"") != NULL);
    free(raw);
    const char *no10 = "GET /x HTTP/1.0\r\nAuthorization: Bearer tok\r\n\r\n";
    raw = raw_exchange(bt_http_port(s), no10, strlen(no10));
    cr_assert_eq(status_of(raw), 403, "got: %s", raw);
    free(raw);
    const char *two = "GET /x HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n"
                      "Authorization: Bearer tok\r\n\r\n";
    raw = raw_exchange(bt_http_port(s), two, strlen(two));
    cr_assert_eq(status_of(raw), 403, "got: %s", raw);
    free(raw);
    bt_http_stop(s);
}

Test(http, serves_ipv6_with_a_bracketed_host)
{
    bt_http_config_t cfg = base_config();
    cfg.address = "::1";
    bt_http_server_t *s = NULL;
    char err[256];
    if (bt_http_start(&cfg, &s, err, sizeof(err)) != 0)
        cr_skip_test("no IPv6 loopback here: %s", err);
    char url[128];
    snprintf(url, sizeof(url), "http://[::1]:%u/six", (unsigned)bt_http_port(s));
    reply_t r = request(NULL, url, "GET", NULL, NULL); /* curl sends Host: [::1]:port */
    cr_assert_eq(r.status, 200, "body: %s", r.body.data);
    reply_free(&r);
    bt_http_stop(s);
}

Test(http, refuses_a_body_over_max_body_by_content_length)
{
    bt_http_config_t cfg = base_config();
    cfg.max_body = 1024;
    bt_http_server_t *s = start_ok(&cfg);
    /* Headers only: the 413 must come before any body byte is sent. */
    const char *req = "POST /up HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1025\r\n\r\n";
    char *raw = raw_exchange(bt_http_port(s), req, strlen(req));
    cr_assert_eq(status_of(raw), 413, "got: %s", raw);
    cr_assert(strstr(raw, "\"too_large\"") != NULL);
    cr_assert(strcasestr(raw, "Cache-Control: no-store") != NULL);
    free(raw);

    /* At the limit it is served. */
    char *body = malloc(1025);
    memset(body, 'b', 1024);
    body[1024] = '\0';
    char url[128];
    url_for(url, sizeof(url), s, "/up");
    reply_t r = request(NULL, url, "POST", body, NULL);
    cr_assert_eq(r.status, 200);
    reply_free(&r);
    free(body);
    bt_http_stats_t st;
    bt_http_stats(s, &st);
    cr_assert_eq(st.rejected, 1);
    bt_http_stop(s);
}

Test(http, refuses_a_chunked_body_that_grows_past_max_body)
{
    bt_http_config_t cfg = base_config();
    cfg.max_body = 1024;
    bt_http_server_t *s = start_ok(&cfg);

    /* Small chunked body: accumulated and echoed. */
    const char *ok = "POST /c HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
                     "Connection: close\r\n\r\n"
                     "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    char *raw = raw_exchange(bt_http_port(s), ok, strlen(ok));
    cr_assert_eq(status_of(raw), 200, "got: %s", raw);
    cr_assert(strstr(raw, "\"body\":\"hello world\"") != NULL, "got: %s", raw);
    free(raw);

    /* 4 KiB in 512-byte chunks, then the end: 413. */
    char req[8192];
    int n = snprintf(req, sizeof(req),
                     "POST /c HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 8; i++) {
        n += snprintf(req + n, sizeof(req) - (size_t)n, "200\r\n");
        memset(req + n, 'x', 512);
        n += 512;
        n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
    }
    n += snprintf(req + n, sizeof(req) - (size_t)n, "0\r\n\r\n");
    raw = raw_exchange(bt_http_port(s), req, (size_t)n);
    cr_assert_eq(status_of(raw), 413, "got: %s", raw);
    cr_assert(strstr(raw, "\"too_large\"") != NULL);
    free(raw);

    /* A stream that never ends is dropped once past the drain allowance. */
    int fd = raw_connect(bt_http_port(s));
    const char *head = "POST /c HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n";
    send_all(fd, head, strlen(head));
    char chunk[4096 + 16];
    int cn = snprintf(chunk, sizeof(chunk), "1000\r\n");
    memset(chunk + cn, 'y', 4096);
    cn += 4096;
    cn += snprintf(chunk + cn, sizeof(chunk) - (size_t)cn, "\r\n");
    bool closed = false;
    double t0 = now_s();
    for (int i = 0; i < 256 && !closed && now_s() - t0 < 5; i++) {
        send_all(fd, chunk, (size_t)cn);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 0) > 0) {
            char tmp[512];
            closed = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT) <= 0;
        }
    }
    if (!closed)
        free(read_reply(fd, 2000, &closed));
    cr_assert(closed, "an endless over-limit stream is cut");
    close(fd);
    bt_http_stats_t st;
    bt_http_stats(s, &st);
    cr_assert_eq(st.rejected, 2);
    bt_http_stop(s);
}

Test(http, answers_431_to_oversized_headers)
{
    bt_http_config_t cfg = base_config();
    cfg.max_header = 4096;
    bt_http_server_t *s = start_ok(&cfg);
    char *req = malloc(64 * 1024);

    /* A little over max_header: our JSON 431. */
    int n = snprintf(req, 64 * 1024, "GET /h HTTP/1.1\r\nHost: localhost\r\nX-Big: ");
    memset(req + n, 'a', 4200);
    n += 4200;
    n += snprintf(req + n, 64 * 1024 - (size_t)n, "\r\n\r\n");
    char *raw = raw_exchange(bt_http_port(s), req, (size_t)n);
    cr_assert_eq(status_of(raw), 431, "got: %.200s", raw);
    cr_assert(strstr(raw, "\"too_large\"") != NULL, "got: %s", raw);
    free(raw);

    /* Far over it (past the connection's memory pool): MHD's own 431. */
    n = snprintf(req, 64 * 1024, "GET /h HTTP/1.1\r\nHost: localhost\r\nX-Big: ");
    memset(req + n, 'a', 40000);
    n += 40000;
    n += snprintf(req + n, 64 * 1024 - (size_t)n, "\r\n\r\n");
    raw = raw_exchange(bt_http_port(s), req, (size_t)n);
    cr_assert_eq(status_of(raw), 431, "got: %.200s", raw);
    free(raw);

    /* Just under: served. */
    n = snprintf(req, 64 * 1024, "GET /h HTTP/1.1\r\nHost: localhost\r\nX-Big: ");
    memset(req + n, 'a', 3000);
    n += 3000;
    n += snprintf(req + n, 64 * 1024 - (size_t)n, "\r\nConnection: close\r\n\r\n");
    raw = raw_exchange(bt_http_port(s), req, (size_t)n);
    cr_assert_eq(status_of(raw), 200, "got: %.200s", raw);
    free(raw);
    free(req);
    bt_http_stats_t st;
    bt_http_stats(s, &st);
    cr_assert_eq(st.rejected, 2, "both 431s are counted");
    cr_assert_eq(st.requests, 1);
    bt_http_stop(s);
}

static uint16_t trickle_port;

Test(http, cuts_off_a_trickling_client_at_the_deadline)
{
    bt_http_config_t cfg = base_config();
    cfg.deadline_ms = 1000;
    bt_http_server_t *s = start_ok(&cfg);
    trickle_port = bt_http_port(s);
    int fd = raw_connect(trickle_port);
    const char *req = "GET /trickle HTTP/1.1\r\nHost: localhost\r\nX-Pad: "
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    double t0 = now_s();
    bool closed = false, other_ok = false;
    for (size_t i = 0; i < strlen(req) && now_s() - t0 < 3.0; i++) {
        if (send(fd, req + i, 1, MSG_NOSIGNAL) != 1) {
            closed = true;
            break;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 200) > 0) {
            char tmp[256];
            if (recv(fd, tmp, sizeof(tmp), 0) <= 0) {
                closed = true;
                break;
            }
        }
        if (i == 2) {
            /* Meanwhile a normal request on another connection answers. */
            char url[128];
            url_for(url, sizeof(url), s, "/normal");
            reply_t r = request(NULL, url, "GET", NULL, NULL);
            other_ok = r.status == 200;
            reply_free(&r);
        }
    }
    double elapsed = now_s() - t0;
    close(fd);
    cr_assert(closed, "the trickling connection was not cut within %.2f s", elapsed);
    cr_assert(elapsed >= 0.8 && elapsed < 3.0, "cut after %.2f s", elapsed);
    cr_assert(other_ok);
    bt_http_stats_t st;
    bt_http_stats(s, &st);
    cr_assert_eq(st.deadline_cutoffs, 1);
    bt_http_stop(s);
}

Test(http, does_not_cut_a_slow_handler_or_an_idle_keepalive)
{
    bt_http_config_t cfg = base_config();
    cfg.deadline_ms = 500;
    bt_http_server_t *s = start_ok(&cfg);
    char url[128];
    url_for(url, sizeof(url), s, "/slow"); /* the handler takes 1.5 s */
    CURL *c = curl_easy_init();
    reply_t r = request(c, url, "GET", NULL, NULL);
    cr_assert_eq(r.status, 200, "the deadline covers receiving, not handling");
    reply_free(&r);
    usleep(800 * 1000); /* idle past deadline_ms, within idle + deadline */
    url_for(url, sizeof(url), s, "/again");
    r = request(c, url, "GET", NULL, NULL);
    cr_assert_eq(r.status, 200);
    reply_free(&r);
    long connects = -1;
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
    cr_assert_eq(connects, 0, "the keep-alive connection survived");
    curl_easy_cleanup(c);
    bt_http_stats_t st;
    bt_http_stats(s, &st);
    cr_assert_eq(st.deadline_cutoffs, 0);
    bt_http_stop(s);
}

/* A GET from any thread (no asserts): on handle's connection (keep-alive)
 * or, with handle NULL, on a connection of its own. Sets the status (0 on a
 * transport error), how long it took and whether curl had to connect. */
typedef struct get_arg {
    CURL *handle;
    char url[128];
    long status;
    long connects;
    double secs;
} get_arg_t;

static void *get_thread(void *p)
{
    get_arg_t *a = p;
    CURL *c = a->handle != NULL ? a->handle : curl_easy_init();
    a->status = 0;
    a->connects = -1;
    double t0 = now_s();
    if (c != NULL) {
        curl_easy_setopt(c, CURLOPT_URL, a->url);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
        buf_t body = {0};
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
        if (curl_easy_perform(c) == CURLE_OK) {
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
            curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &a->connects);
        }
        curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
        free(body.data);
        if (a->handle == NULL)
            curl_easy_cleanup(c);
    }
    a->secs = now_s() - t0;
    return NULL;
}

/* One thread per connection: a handler that blocks holds up only its own
 * connection. With a pool of workers, each serving its share of the
 * keep-alive connections in turn, the requests on the blocked worker's
 * connections waited behind the handler, and a request that had fully
 * arrived on a connection the worker had just accepted could even be cut
 * off by the request deadline while it waited. */
#define OTHERS 20
Test(http, a_blocked_handler_holds_up_only_its_own_connection)
{
    bt_http_config_t cfg = base_config();
    cfg.deadline_ms = 500;
    bt_http_server_t *s = start_ok(&cfg);
    /* Open the connections first, one request each, so that they are all
     * accepted before the handler blocks. */
    CURL *conns[1 + OTHERS];
    for (int i = 0; i < 1 + OTHERS; i++) {
        conns[i] = curl_easy_init();
        get_arg_t g = {.handle = conns[i]};
        url_for(g.url, sizeof(g.url), s, "/warm");
        get_thread(&g);
        cr_assert_eq(g.status, 200, "warm-up %d: status %ld", i, g.status);
    }

    get_arg_t blocked = {.handle = conns[0]}, slow = {0};
    url_for(blocked.url, sizeof(blocked.url), s, "/slow"); /* 1.5 s */
    url_for(slow.url, sizeof(slow.url), s, "/slow1s");     /* 1 s, past deadline_ms */
    pthread_t bt, stt;
    pthread_create(&bt, NULL, get_thread, &blocked);
    for (int i = 0; i < 400 && atomic_load(&slow_entered) == 0; i++)
        usleep(5000);
    cr_assert_eq(atomic_load(&slow_entered), 1, "the blocking handler never ran");
    pthread_create(&stt, NULL, get_thread, &slow);

    for (int i = 1; i <= OTHERS; i++) {
        get_arg_t g = {.handle = conns[i]};
        url_for(g.url, sizeof(g.url), s, "/fast");
        get_thread(&g);
        cr_assert_eq(g.status, 200, "GET %d: status %ld", i, g.status);
        cr_assert_eq(g.connects, 0, "GET %d went over its open connection", i);
        cr_assert_lt(g.secs, 0.2, "GET %d took %.3f s behind a blocked handler", i, g.secs);
        if (i == 1)
            cr_assert_eq(atomic_load(&slow_finished), 0,
                         "the first GET was answered while the handler still blocked");
    }

    pthread_join(stt, NULL);
    cr_assert_eq(slow.status, 200, "a 1 s handler under a 500 ms deadline: %ld", slow.status);
    cr_assert_geq(slow.secs, 0.95);
    pthread_join(bt, NULL);
    cr_assert_eq(blocked.status, 200);
    for (int i = 0; i < 1 + OTHERS; i++)
        curl_easy_cleanup(conns[i]);
    bt_http_stats_t st;
    bt_http_stats(s, &st);
    cr_assert_eq(st.deadline_cutoffs, 0);
    cr_assert_eq(st.requests, 2 * (1 + OTHERS) + 1);
    bt_http_stop(s);
}

static void wait_open(bt_http_server_t *s, uint32_t want)
{
    bt_http_stats_t st;
    for (int i = 0; i < 400; i++) {
        bt_http_stats(s, &st);
        if (st.open_connections == want)
            return;
        usleep(5000);
    }
    cr_assert_fail("open_connections stayed %u, wanted %u", st.open_connections, want);
}

Test(http, refuses_connections_past_the_limit)
{
    bt_http_config_t cfg = base_config();
    cfg.max_connections = 4;
    bt_http_server_t *s = start_ok(&cfg);
    int fds[4];
    for (int i = 0; i < 4; i++)
        fds[i] = raw_connect(bt_http_port(s));
    wait_open(s, 4);
    int extra = raw_connect(bt_http_port(s));
    bool closed;
    free(read_reply(extra, 2000, &closed));
    cr_assert(closed, "the fifth connection is closed at once");
    close(extra);
    bt_http_stats_t st;
    bt_http_stats(s, &st);
    cr_assert_geq(st.rejected, 1);

    close(fds[0]);
    wait_open(s, 3);
    char url[128];
    url_for(url, sizeof(url), s, "/room");
    reply_t r = request(NULL, url, "GET", NULL, NULL);
    cr_assert_eq(r.status, 200);
    reply_free(&r);
    for (int i = 1; i < 4; i++)
        close(fds[i]);
    bt_http_stop(s);
}

Test(http, refuses_connections_past_the_per_ip_limit)
{
    bt_http_config_t cfg = base_config();
    cfg.max_per_ip = 2;
    bt_http_server_t *s = start_ok(&cfg);
    int a = raw_connect(bt_http_port(s)), b = raw_connect(bt_http_port(s));
    wait_open(s, 2);
    int c = raw_connect(bt_http_port(s));
    bool closed;
    free(read_reply(c, 2000, &closed));
    cr_assert(closed);
    close(a);
    close(b);
    close(c);
    bt_http_stop(s);
}

Test(http, fails_to_start_on_a_port_in_use)
{
    bt_http_config_t cfg = base_config();
    bt_http_server_t *a = start_ok(&cfg);
    cfg.port = bt_http_port(a);
    bt_http_server_t *b = NULL;
    char err[256] = "";
    cr_assert_eq(bt_http_start(&cfg, &b, err, sizeof(err)), -1);
    cr_assert_null(b);
    cr_assert(strstr(err, "cannot listen on 127.0.0.1:") != NULL, "err: %s", err);
    cr_assert(strstr(err, "in use") != NULL, "err: %s", err);
    bt_http_stop(a);
}

Test(http, refuses_a_non_loopback_address_without_a_token)
{
    bt_http_config_t cfg = base_config();
    cfg.address = "0.0.0.0";
    bt_http_server_t *s = NULL;
    char err[256] = "";
    cr_assert_eq(bt_http_start(&cfg, &s, err, sizeof(err)), -1);
    cr_assert_null(s);
    cr_assert(strstr(err, "non-loopback") != NULL, "err: %s", err);
    cfg.token = "";
    cr_assert_eq(bt_http_start(&cfg, &s, err, sizeof(err)), -1, "an empty token is no token");

    cfg.address = "localhost";
    cr_assert_eq(bt_http_start(&cfg, &s, err, sizeof(err)), -1);
    cr_assert(strstr(err, "not an IPv4 or IPv6 literal") != NULL, "err: %s", err);

    cfg.address = "0.0.0.0";
    cfg.token = "tok";
    s = start_ok(&cfg);
    bt_http_stop(s);
}

typedef struct stop_arg {
    bt_http_server_t *s;
    atomic_int done;
    double returned_at;
} stop_arg_t;

static void *stop_thread(void *p)
{
    stop_arg_t *a = p;
    bt_http_stop(a->s);
    a->returned_at = now_s();
    atomic_store(&a->done, 1);
    return NULL;
}

typedef struct client_arg {
    uint16_t port;
    char *raw;
} client_arg_t;

static void *block_client(void *p)
{
    client_arg_t *a = p;
    const char *req = "GET /block HTTP/1.1\r\nHost: localhost\r\n\r\n";
    int fd = raw_connect(a->port);
    send_all(fd, req, strlen(req));
    bool closed;
    a->raw = read_reply(fd, 5000, &closed);
    close(fd);
    return NULL;
}

Test(http, stop_waits_for_a_running_handler_and_joins_everything)
{
    bt_http_config_t cfg = base_config();
    bt_http_server_t *s = start_ok(&cfg);
    client_arg_t ca = {.port = bt_http_port(s)};
    pthread_t ct;
    pthread_create(&ct, NULL, block_client, &ca);
    for (int i = 0; i < 400 && !atomic_load(&block_entered); i++)
        usleep(5000);
    cr_assert(atomic_load(&block_entered));

    stop_arg_t sa = {.s = s};
    pthread_t st;
    pthread_create(&st, NULL, stop_thread, &sa);
    usleep(300 * 1000);
    cr_assert_eq(atomic_load(&sa.done), 0, "stop returned while a handler still ran");
    double released = now_s();
    atomic_store(&block_release, 1);
    pthread_join(st, NULL);
    cr_assert(atomic_load(&block_finished));
    cr_assert_geq(sa.returned_at, released);
    pthread_join(ct, NULL);
    /* The response may or may not have gone out before the close. */
    cr_assert(ca.raw[0] == '\0' || status_of(ca.raw) == 200, "got: %s", ca.raw);
    free(ca.raw);
}

Test(http, quiesce_stops_accepting_new_connections)
{
    bt_http_config_t cfg = base_config();
    bt_http_server_t *s = start_ok(&cfg);
    uint16_t port = bt_http_port(s);
    char url[128];
    url_for(url, sizeof(url), s, "/before");
    CURL *c = curl_easy_init();
    reply_t r = request(c, url, "GET", NULL, NULL);
    cr_assert_eq(r.status, 200);
    reply_free(&r);
    bt_http_quiesce(s);
    bt_http_quiesce(s); /* a second call is a no-op */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_neq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "refused, not queued");
    close(fd);
    /* A connection accepted before the quiesce is still served. */
    url_for(url, sizeof(url), s, "/after");
    r = request(c, url, "GET", NULL, NULL);
    cr_assert_eq(r.status, 200);
    reply_free(&r);
    long connects = -1;
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
    cr_assert_eq(connects, 0, "the same connection");
    curl_easy_cleanup(c);
    bt_http_stop(s);
    bt_http_stop(NULL);
}

Test(http, builds_error_bodies_with_escaped_messages)
{
    bt_http_resp_t r = {0};
    bt_http_resp_error(&r, 409, "invalid_transition", "run %s is \"%s\"\t\\ %d", "r_1", "paused",
                       7);
    cr_assert_eq(r.status, 409);
    cJSON *o = cJSON_Parse(r.body);
    cr_assert_not_null(o, "body: %s", r.body);
    cJSON *e = cJSON_GetObjectItem(o, "error");
    cr_assert_str_eq(cJSON_GetObjectItem(e, "code")->valuestring, "invalid_transition");
    cr_assert_str_eq(cJSON_GetObjectItem(e, "message")->valuestring, "run r_1 is \"paused\"\t\\ 7");
    cr_assert_eq(r.body_len, strlen(r.body));
    cJSON_Delete(o);

    /* A long message is not truncated. */
    char big[1000];
    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    bt_http_resp_error(&r, 500, "internal", "%s", big);
    o = cJSON_Parse(r.body);
    cr_assert_eq(
        strlen(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "error"), "message")->valuestring), 999);
    cJSON_Delete(o);
    free(r.body);

    bt_http_resp_t h = {0};
    for (int i = 0; i < BT_HTTP_MAX_HEADERS_OUT + 2; i++)
        bt_http_resp_header(&h, "X-N", "v");
    cr_assert_eq(h.nheaders, BT_HTTP_MAX_HEADERS_OUT);
}
