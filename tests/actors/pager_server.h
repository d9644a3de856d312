/*
 * pager_server.h: a local JSON API for the http kind's tests, on
 * libmicrohttpd (a thread per connection, bound to 127.0.0.1 on a free
 * port). It serves nitems items {"id": i, "name": "item-i"}, i = 0..n-1:
 *
 *   GET /items?offset=O&limit=L  -> {"data": {"items": [...]}, "total": n}
 *   GET /list?cursor=C&limit=L   -> {"items": [...], "meta": {"next": C' | null}}
 *
 * Cursors are opaque strings with characters that must be URL-encoded
 * ("after id/7&z"); "" is the first page. Faults are injected by request
 * number: a status with a body and a Retry-After, and/or a delay (a slow
 * response, cut short when the client hangs up, which is counted).
 * Every function is safe to call from any thread while the server runs.
 */
#ifndef BATON_TESTS_PAGER_SERVER_H
#define BATON_TESTS_PAGER_SERVER_H

#include <stdint.h>

typedef struct ps_server ps_server_t;

/* A fault for requests number from .. from+count-1 (1-based, counted in
 * arrival order over every path). */
typedef struct ps_fault {
    uint32_t from, count;
    int status;              /* 0: serve the page normally (after the delay) */
    uint32_t delay_ms;       /* before answering; ends early if the client hangs up */
    const char *retry_after; /* Retry-After value, or NULL; copied */
    const char *body; /* the error body, or NULL for {"message": "injected <status>"}; copied */
} ps_fault_t;

typedef struct ps_stats {
    uint32_t requests;      /* all requests */
    uint32_t pages;         /* answered 200 */
    uint32_t faults;        /* answered with an injected status */
    uint32_t client_aborts; /* slow responses the client hung up on */
    uint32_t active;        /* requests being handled now */
} ps_stats_t;

/* Starts a server with nitems items. Returns 0, or -1 (no server). */
int ps_start(uint32_t nitems, ps_server_t **out /* OUT */);
/* Stops and frees it; waits for its threads. NULL is a no-op. */
void ps_stop(ps_server_t *s);

uint16_t ps_port(const ps_server_t *s);

/* Adds a fault (at most 32); copies it. */
void ps_fault_add(ps_server_t *s, const ps_fault_t *f);
/* A delay before every page (0: none). */
void ps_set_delay(ps_server_t *s, uint32_t delay_ms);

void ps_stats(ps_server_t *s, ps_stats_t *out /* OUT */);

/* The offset (offset mode) or the item index the cursor stands for
 * (cursor mode) of the n-th request (1-based); -1 if unknown. */
int64_t ps_request_start(ps_server_t *s, uint32_t n);

/* When the n-th request arrived: CLOCK_MONOTONIC milliseconds; -1 if
 * unknown. */
int64_t ps_request_time_ms(ps_server_t *s, uint32_t n);

#endif
