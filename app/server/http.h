/*
 * http.h: the service's hardened HTTP/1.1 server, a thin layer over
 * libmicrohttpd. It owns everything that is about HTTP and not about baton:
 *
 *   - listening on one address (loopback by default), a connection limit
 *     and a per-IP limit;
 *   - a Host header allowlist against DNS rebinding (403 forbidden);
 *   - a bearer token, compared in constant time (401 unauthorized with
 *     WWW-Authenticate), on every path except the public ones;
 *   - request size limits: a body over max_body is refused with 413 as soon
 *     as Content-Length (or the streamed length) says so; headers over
 *     max_header get 431;
 *   - an absolute per-request deadline: a connection that has not delivered
 *     its whole request within deadline_ms is cut off (counted from the
 *     accept for a connection's first request, from the request line for
 *     the next ones on keep-alive; paused while the handler runs), so a
 *     client trickling bytes cannot hold a connection (libmicrohttpd's own
 *     timeout is only an inactivity timeout);
 *   - errors as JSON in the shape of ../shared/DESIGN.md (except the HTML
 *     400/431 libmicrohttpd sends itself for requests too broken or too big
 *     to reach this layer):
 *       {"error": {"code": "not_found", "message": "..."}}
 *
 * The handler is called once per complete request, on the thread of that
 * request's connection (one thread per connection, at most max_connections),
 * and may block (it asks the executor with bt_ask_wait()): only that
 * connection waits. It fills a bt_http_resp_t with one of the
 * bt_http_resp_*() helpers.
 */
#ifndef BATON_APP_SERVER_HTTP_H
#define BATON_APP_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bt_http_server bt_http_server_t;
typedef struct bt_http_req bt_http_req_t; /* opaque; read with the accessors */

#define BT_HTTP_MAX_HEADERS_OUT 4

/* What the handler answers. body is heap memory from malloc() (or NULL),
 * taken by the server. Set it with the helpers below. */
typedef struct bt_http_resp {
    int status;
    const char *content_type; /* static string; NULL = application/json */
    char *body;
    size_t body_len;
    struct {
        const char *name; /* static string */
        char value[256];
    } headers[BT_HTTP_MAX_HEADERS_OUT];
    uint32_t nheaders;
} bt_http_resp_t;

typedef void (*bt_http_handler_fn)(void *ctx, const bt_http_req_t *req, bt_http_resp_t *resp);

typedef struct bt_http_config {
    const char *address; /* IPv4 or IPv6 literal; NULL = "127.0.0.1" */
    uint16_t port;       /* 0 = an ephemeral port (read it with bt_http_port) */
    const char *token;   /* bearer token; NULL or "" = none (refused off loopback) */
    /* Host header values accepted (host names or literals, without port;
     * any port matches). NULL/0: localhost, 127.0.0.1, ::1 and the bind
     * address. A request without a Host header is refused. */
    const char *const *allowed_hosts;
    uint32_t nallowed_hosts;
    const char *const *public_paths; /* exact paths served without the token (/healthz) */
    uint32_t npublic_paths;
    size_t max_body;          /* bytes; 0 = 1 MiB */
    size_t max_header;        /* bytes of request line + headers; 0 = 16 KiB */
    uint32_t max_connections; /* 0 = 256; also the cap on connection threads */
    uint32_t max_per_ip;      /* 0 = 64 */
    uint32_t deadline_ms;     /* whole request, first byte to last; 0 = 10000 */
    uint32_t idle_timeout_s;  /* keep-alive idle; 0 = 30 */
    bt_http_handler_fn handler;
    void *ctx;
} bt_http_config_t;

/* Starts listening and serving. Returns 0, or -1 with a sentence in err
 * (address in use, bad address, a non-loopback address without a token).
 * Does not take ownership of cfg; copies it. */
int bt_http_start(const bt_http_config_t *cfg, bt_http_server_t **out /* OUT */, char *err,
                  size_t errlen);

/* The port actually bound. */
uint16_t bt_http_port(const bt_http_server_t *s);

/* Stops accepting new connections (in-flight requests go on). May be
 * called more than once, but not concurrently with bt_http_stop(). */
void bt_http_quiesce(bt_http_server_t *s);

/* Stops: closes every connection, waits for running handlers, joins every
 * thread and frees s. NULL is a no-op. */
void bt_http_stop(bt_http_server_t *s);

/* Counters, for /metrics. */
typedef struct bt_http_stats {
    uint64_t requests;         /* complete requests handed to the handler */
    uint64_t rejected;         /* refused by the server itself (401/403/413/431/...) */
    uint64_t deadline_cutoffs; /* connections cut off by the deadline */
    uint64_t connections;      /* accepted */
    uint32_t open_connections;
} bt_http_stats_t;
void bt_http_stats(const bt_http_server_t *s, bt_http_stats_t *out /* OUT */);

/* ---------------------------------------------------------------- request */

const char *bt_http_method(const bt_http_req_t *r); /* "GET" */
const char *bt_http_path(const bt_http_req_t *r);   /* decoded path, no query */
/* A query argument (decoded) or header (case-insensitive); NULL if absent. */
const char *bt_http_query(const bt_http_req_t *r, const char *key);
const char *bt_http_header(const bt_http_req_t *r, const char *name);
/* The body, NUL-terminated (len excludes the NUL); "" when there is none. */
const char *bt_http_body(const bt_http_req_t *r, size_t *len /* OUT */);

/* A request that did not come from a connection, for tests and fuzzing of
 * handlers: the strings are not copied (they must outlive the request)
 * except the body. query and headers are NULL-terminated name/value lists
 * ({"limit", "5", NULL}); header names match case-insensitively. Returns
 * NULL when out of memory. */
bt_http_req_t *bt_http_req_new(const char *method, const char *path, const char *const *query,
                               const char *const *headers, const char *body, size_t body_len);
void bt_http_req_free(bt_http_req_t *r);

/* --------------------------------------------------------------- response */

/* status + a body copied from text (JSON unless content_type says). */
void bt_http_resp_text(bt_http_resp_t *resp, int status, const char *content_type, const char *text,
                       size_t len);
/* status + a body taken from json (malloc'd, e.g. cJSON_PrintUnformatted). */
void bt_http_resp_take(bt_http_resp_t *resp, int status, char *json);
/* An error in the DESIGN.md shape; message is printf-formatted and
 * JSON-escaped. */
void bt_http_resp_error(bt_http_resp_t *resp, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Frees a response's body (for callers of a handler outside the server). */
void bt_http_resp_deinit(bt_http_resp_t *resp);

/* Adds a response header (name must be a static string). Ignored past
 * BT_HTTP_MAX_HEADERS_OUT. */
void bt_http_resp_header(bt_http_resp_t *resp, const char *name, const char *value);

#endif
