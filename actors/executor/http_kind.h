/*
 * http_kind.h: the built-in `http` job kind: pages through a JSON HTTP API
 * with libcurl (by offset/limit or by cursor), appends the items found at a
 * JSON path to a JSON-lines file, and checkpoints (position, output length)
 * after each durable page, so that a run resumed after a crash writes each
 * item exactly once. Every request passes the job's circuit breaker, rate
 * limiter and timeout class; 429, 5xx and network errors are retried with
 * backoff (honouring Retry-After), other 4xx fail the run with the
 * server's message. Pause and stop abort the request in flight. See
 * docs/http-kind.md for the params and the design.
 */
#ifndef BATON_HTTP_KIND_H
#define BATON_HTTP_KIND_H

#include "jobkind.h"

#include <stdint.h>

/* The descriptor to list in ex_config_t.kinds. Its actor is pinned; its
 * recovery policy is RESUME. */
const ex_kind_t *ex_http_kind(void);

typedef enum ex_http_mode {
    EX_HTTP_OFFSET, /* {offset} advances by the items received */
    EX_HTTP_CURSOR, /* {cursor} is the previous page's cursor_path value */
} ex_http_mode_t;

#define EX_HTTP_NAME_MAX 64 /* bytes of a breaker, limiter or timeout class name, NUL included */

/* Parsed params of an http run. */
typedef struct ex_http_params {
    char *url; /* template with {offset}, {limit}, {cursor} */
    ex_http_mode_t mode;
    uint32_t limit;    /* page size, 1..100000 */
    char *items_path;  /* dotted path; "" = the top-level array */
    char *cursor_path; /* cursor mode: dotted path of the next cursor */
    char *output;      /* as given; NULL = "<run id>.jsonl" under <state_dir>/http */
    char **headers;    /* "Name: value" lines */
    uint32_t nheaders;
    char breaker[EX_HTTP_NAME_MAX];    /* "" = none; the actor registered as "breaker.NAME" */
    char limit_name[EX_HTTP_NAME_MAX]; /* "" = none; the actor registered as "limit.NAME" */
    char timeout[EX_HTTP_NAME_MAX];    /* "" = none; a class of the timeout registry */
    uint32_t max_attempts;             /* attempts per page, first included, >= 1 */
    uint64_t backoff_base_ns, backoff_cap_ns;
    uint64_t retry_after_max_ns; /* clamp on a server's Retry-After */
    uint64_t max_response_bytes; /* a larger response fails the run */
    uint64_t start_offset;       /* offset mode: the first page's offset */
} ex_http_params_t;

/* Parses and checks params (JSON text; does not take ownership). Returns 0,
 * or -1 with a sentence for a person in err; on error *out holds nothing to
 * free. */
int ex_http_params_parse(const char *json, ex_http_params_t *out /* OUT */, char *err,
                         size_t errlen);
/* Frees what a successful parse allocated. NULL is a no-op. */
void ex_http_params_deinit(ex_http_params_t *p);

/* Expands a URL template: {offset} and {limit} become decimal numbers,
 * {cursor} the URL-encoded cursor (NULL = ""). Returns a malloc'd string
 * (the caller frees it with free()), or NULL when out of memory or when the
 * template holds another {name}. Does not take ownership of its arguments. */
char *ex_http_url_expand(const char *tmpl, uint64_t offset, uint32_t limit, const char *cursor);

#endif
