/*
 * client.c: the CLI's HTTP client over one libcurl easy handle. The handle
 * is kept across requests so `baton watch` and `baton runs --all` reuse one
 * keep-alive connection. Only http and https are allowed, redirects are
 * never followed (the bearer token must not travel to another host), and
 * loopback never goes through a proxy from the environment. Answers are
 * capped at CLI_MAX_BODY bytes.
 */
#include "cli/client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef BATON_CLI_VERSION
#define BATON_CLI_VERSION "0"
#endif

#define CLI_MAX_BODY (64u << 20)

struct cli_client {
    CURL *curl;
    char *base_url;
    char *auth_header; /* "Authorization: Bearer ..." or NULL */
    long timeout_ms;
    char errbuf[CURL_ERROR_SIZE];
    /* The answer being received. */
    char *buf;
    size_t len, cap;
    bool too_large;
    bool replayed;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    cli_client_t *c = ud;
    size_t n = size * nmemb;
    if (c->len + n + 1 > CLI_MAX_BODY) {
        c->too_large = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + n + 1)
            cap *= 2;
        char *nb = realloc(c->buf, cap);
        if (nb == NULL)
            return 0;
        c->buf = nb;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, data, n);
    c->len += n;
    c->buf[c->len] = '\0';
    return n;
}

/* Header lines arrive one at a time, unterminated, with their CRLF. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    cli_client_t *c = ud;
    size_t n = size * nmemb;
    static const char name[] = "Idempotent-Replayed:";
    size_t nl = sizeof(name) - 1;
    if (n > nl && strncasecmp(data, name, nl) == 0) {
        const char *v = data + nl;
        size_t vl = n - nl;
        while (vl > 0 && (*v == ' ' || *v == '\t')) {
            v++;
            vl--;
        }
        c->replayed = vl >= 4 && strncasecmp(v, "true", 4) == 0;
    }
    return n;
}

cli_client_t *cli_client_create(const char *base_url, const char *token, long timeout_ms)
{
    cli_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->base_url = strdup(base_url);
    c->timeout_ms = timeout_ms;
    if (token != NULL && token[0] != '\0') {
        size_t n = strlen(token) + sizeof("Authorization: Bearer ");
        c->auth_header = malloc(n);
        if (c->auth_header != NULL)
            snprintf(c->auth_header, n, "Authorization: Bearer %s", token);
    }
    c->curl = curl_easy_init();
    if (c->base_url == NULL || c->curl == NULL ||
        (token != NULL && token[0] != '\0' && c->auth_header == NULL)) {
        cli_client_destroy(c);
        return NULL;
    }
    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "baton-cli/" BATON_CLI_VERSION);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    cli_client_set_timeout(c, timeout_ms);
    return c;
}

void cli_client_set_timeout(cli_client_t *c, long timeout_ms)
{
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS,
                     c->timeout_ms > 0 && c->timeout_ms < 10000 ? c->timeout_ms : 10000L);
}

void cli_client_destroy(cli_client_t *c)
{
    if (c == NULL)
        return;
    if (c->curl != NULL)
        curl_easy_cleanup(c->curl);
    free(c->base_url);
    if (c->auth_header != NULL) {
        /* The token does not outlive the client in freed heap memory. */
        memset(c->auth_header, 0, strlen(c->auth_header));
        free(c->auth_header);
    }
    free(c->buf);
    free(c);
}

static int classify(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_SSL_CONNECT_ERROR:
        return CLI_HTTP_ECONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return CLI_HTTP_ETIMEOUT;
    default:
        return CLI_HTTP_EOTHER;
    }
}

int cli_client_request(cli_client_t *c, const char *method, const char *path, const char *body,
                       const char *idem_key, cli_response_t *resp)
{
    memset(resp, 0, sizeof(*resp));
    size_t ulen = strlen(c->base_url) + strlen(path) + 1;
    char *url = malloc(ulen);
    if (url == NULL) {
        snprintf(resp->error, sizeof(resp->error), "out of memory");
        return CLI_HTTP_EOTHER;
    }
    snprintf(url, ulen, "%s%s", c->base_url, path);

    struct curl_slist *hdrs = NULL, *tmp;
    char idem[160];
    bool oom = false;
#define ADD_HEADER(s)                                                                              \
    do {                                                                                           \
        tmp = curl_slist_append(hdrs, (s));                                                        \
        if (tmp == NULL)                                                                           \
            oom = true;                                                                            \
        else                                                                                       \
            hdrs = tmp;                                                                            \
    } while (0)
    ADD_HEADER("Accept: application/json");
    ADD_HEADER("Expect:"); /* no 100-continue round trip */
    if (body != NULL)
        ADD_HEADER("Content-Type: application/json");
    if (c->auth_header != NULL)
        ADD_HEADER(c->auth_header);
    if (idem_key != NULL) {
        snprintf(idem, sizeof(idem), "Idempotency-Key: %s", idem_key);
        ADD_HEADER(idem);
    }
#undef ADD_HEADER
    if (oom) {
        curl_slist_free_all(hdrs);
        free(url);
        snprintf(resp->error, sizeof(resp->error), "out of memory");
        return CLI_HTTP_EOTHER;
    }

    CURL *h = c->curl;
    c->len = 0;
    c->too_large = false;
    c->replayed = false;
    c->errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body != NULL ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(body != NULL ? strlen(body) : 0));
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
    curl_slist_free_all(hdrs);

    int ret = CLI_HTTP_OK;
    if (rc != CURLE_OK) {
        const char *why = c->errbuf[0] != '\0' ? c->errbuf : curl_easy_strerror(rc);
        if (c->too_large) {
            ret = CLI_HTTP_ETOOLARGE;
            snprintf(resp->error, sizeof(resp->error), "answer from %.200s is larger than %u MiB",
                     c->base_url, CLI_MAX_BODY >> 20);
        } else {
            ret = classify(rc);
            long os_errno = 0;
            if (rc == CURLE_COULDNT_CONNECT &&
                curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK && os_errno != 0)
                why = strerror((int)os_errno); /* "Connection refused" */
            if (ret == CLI_HTTP_ECONNECT)
                snprintf(resp->error, sizeof(resp->error), "cannot connect to %.200s: %.250s",
                         c->base_url, why);
            else if (ret == CLI_HTTP_ETIMEOUT)
                snprintf(resp->error, sizeof(resp->error),
                         "no answer from %.200s within %ld ms (--timeout)", c->base_url,
                         c->timeout_ms);
            else
                snprintf(resp->error, sizeof(resp->error), "request to %.200s failed: %.250s", url,
                         why);
        }
        free(url);
        return ret;
    }
    free(url);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    resp->body = malloc(c->len + 1);
    if (resp->body == NULL) {
        snprintf(resp->error, sizeof(resp->error), "out of memory");
        return CLI_HTTP_EOTHER;
    }
    if (c->len > 0)
        memcpy(resp->body, c->buf, c->len);
    resp->body[c->len] = '\0';
    resp->body_len = c->len;
    resp->replayed = c->replayed;
    return ret;
}

void cli_response_deinit(cli_response_t *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}

bool cli_url_escape(char *buf, size_t cap, const char *s, bool keep_comma)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(buf);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        unsigned char ch = *p;
        bool plain = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~' ||
                     (keep_comma && ch == ',');
        if (plain) {
            if (n + 2 > cap)
                return false;
            buf[n++] = (char)ch;
        } else {
            if (n + 4 > cap)
                return false;
            buf[n++] = '%';
            buf[n++] = hex[ch >> 4];
            buf[n++] = hex[ch & 15];
        }
        buf[n] = '\0';
    }
    return true;
}
