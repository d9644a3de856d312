/*
 * client.h: the CLI's HTTP client, one libcurl easy handle that speaks to
 * the baton API (JSON bodies, bearer token, Idempotency-Key). Internal to
 * app/cli; not thread-safe (one client per thread).
 */
#ifndef BATON_APP_CLI_CLIENT_H
#define BATON_APP_CLI_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cli_client cli_client_t;

typedef enum cli_http_err {
    CLI_HTTP_OK = 0,         /* an HTTP answer arrived (any status) */
    CLI_HTTP_ECONNECT = -1,  /* cannot resolve or connect */
    CLI_HTTP_ETIMEOUT = -2,  /* no whole answer within the timeout */
    CLI_HTTP_ETOOLARGE = -3, /* the answer exceeded the size cap */
    CLI_HTTP_EOTHER = -4,    /* any other transport failure, or out of memory */
} cli_http_err_t;

/* One answer. body is NUL-terminated heap memory owned by the response;
 * release it with cli_response_deinit(). */
typedef struct cli_response {
    long status;
    char *body;
    size_t body_len;
    bool replayed;   /* Idempotent-Replayed: true */
    char error[512]; /* for a transport failure: what went wrong, for a person */
} cli_response_t;

/* Creates a client for base_url ("http://host:port", no trailing slash)
 * with an optional token (NULL or "" = no Authorization header) and a
 * whole-request timeout. Copies both strings. Returns NULL when out of
 * memory or when libcurl cannot create a handle. curl_global_init() must
 * have been called. */
cli_client_t *cli_client_create(const char *base_url, const char *token, long timeout_ms);

/* Changes the whole-request timeout for the following requests (0 = none;
 * the connect timeout stays at most 10 s). */
void cli_client_set_timeout(cli_client_t *c, long timeout_ms);

/* cli_client_destroy(NULL) is a no-op. */
void cli_client_destroy(cli_client_t *c);

/* Sends method (GET or POST) to base_url + path (already escaped; may hold a
 * query). body (may be NULL = no body; does not take ownership) is sent as
 * application/json; idem_key (may be NULL) as Idempotency-Key. Fills resp
 * and returns CLI_HTTP_OK when an answer arrived, whatever its status, or a
 * negative cli_http_err_t with a sentence in resp->error. */
int cli_client_request(cli_client_t *c, const char *method, const char *path, const char *body,
                       const char *idem_key, cli_response_t *resp /* OUT */);

void cli_response_deinit(cli_response_t *resp);

/* Appends s to buf (size cap, always NUL-terminated) percent-encoding
 * everything but RFC 3986 unreserved characters and, when keep_comma, ','.
 * Returns false if it did not fit. */
bool cli_url_escape(char *buf, size_t cap, const char *s, bool keep_comma);

#endif
