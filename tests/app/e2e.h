/*
 * e2e.h: helpers for end-to-end tests that run the real `baton` binary.
 *
 * A test writes a config.toml into a fresh temporary directory, starts
 * `baton serve` on a free loopback port, talks to it over HTTP (libcurl)
 * or runs CLI commands, and stops it with a signal. BATON_BIN is the path
 * of the binary under test (set by CMake).
 */
#ifndef BATON_TESTS_APP_E2E_H
#define BATON_TESTS_APP_E2E_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct e2e_svc {
    char dir[256];    /* temporary directory: config.toml, state/, logs */
    char config[300]; /* dir/config.toml */
    char log[300];    /* dir/serve.log: the service's stderr */
    uint16_t port;
    char token[64];         /* "" = none */
    char server_extra[512]; /* more [server] keys */
    pid_t pid;              /* 0 when not running */
} e2e_svc_t;

/* Makes a temporary directory and picks a free port. */
void e2e_init(e2e_svc_t *s);

/* Writes dir/config.toml: a [server] section on s->port (with s->token if
 * set) and [store] state_dir = "state", followed by extra (more sections). */
void e2e_write_config(e2e_svc_t *s, const char *extra);

/* Starts `baton serve --config dir/config.toml` and waits until /readyz is
 * 200 (or timeout_ms). Returns true when ready. */
bool e2e_start(e2e_svc_t *s, int timeout_ms);

/* Sends sig and waits for the exit (timeout_ms); returns the exit status
 * (WEXITSTATUS), 128+signal if killed by a signal, or -1 on timeout (the
 * process is then killed). */
int e2e_stop(e2e_svc_t *s, int sig, int timeout_ms);

/* Removes the temporary directory (the service must be stopped). */
void e2e_cleanup(e2e_svc_t *s);

/* One HTTP exchange. */
typedef struct e2e_resp {
    long status;
    char *body; /* NUL-terminated, malloc'd */
    size_t len;
    char headers[4096];
} e2e_resp_t;

/* method "GET"/"POST"..., body NULL for none; extra_headers: NULL-terminated
 * list of "Name: value" lines. Adds the token when s->token is set and
 * auth is true. Returns false when the request could not be made. */
bool e2e_http(e2e_svc_t *s, const char *method, const char *path, const char *body,
              const char *const *extra_headers, bool auth, e2e_resp_t *out);
void e2e_resp_free(e2e_resp_t *r);

/* A JSON string field of a body ("id", "state", "error.code"); writes "" if
 * absent. */
void e2e_json_str(const char *body, const char *path, char *out, size_t outlen);

/* Runs `baton ARGS...` (NULL-terminated) with BATON_URL/BATON_TOKEN pointing
 * at the service; captures stdout and stderr. Returns the exit status. */
int e2e_cli(e2e_svc_t *s, char *out, size_t outlen, char *err, size_t errlen, ...)
    __attribute__((sentinel));

/* Runs BATON_BIN with args (NULL-terminated), no environment changes;
 * captures output; returns the exit status. */
int e2e_run(char *out, size_t outlen, char *err, size_t errlen, const char *const *args);

/* Polls GET /v1/runs/{id} until its state is `state` (timeout_ms). */
bool e2e_wait_state(e2e_svc_t *s, const char *id, const char *state, int timeout_ms);

/* Reads the whole service log (malloc'd). */
char *e2e_read_log(e2e_svc_t *s);

#endif
