/*
 * schema.h: config.toml as one typed, validated struct.
 *
 * bt_config_load() reads a file, parses it with the TOML parser (toml.h) and
 * checks every key against the schema of docs/config.md: its type, its
 * bounds, and how it relates to other keys (a non-loopback address needs a
 * token; a job's breaker must exist). Unknown keys are refused with the
 * closest known key as a suggestion. The result, bt_config_t, holds
 * argument structs ready to hand to the actors (bt_breaker_args_t,
 * bt_ratelimit_args_t, bt_timeout_class_t, the fields of ex_job_t), already
 * checked with the actors' own validation functions, so a config that
 * loads is one the actors accept.
 *
 * A failure fills a bt_config_error_t with the file, the position of the
 * offending key (1-based line and column) and a message of the form
 *   config.toml:7:1: unknown key 'max_runing' in [executor]; did you mean 'max_running'?
 * Errors of the TOML parser pass through unchanged.
 *
 * Functions return BT_CONFIG_OK (0) or a negative bt_config_err_t code;
 * bt_config_strerror() names it. Nothing here keeps global state: distinct
 * configs may be loaded from several threads at once.
 */
#ifndef BATON_APP_CONFIG_SCHEMA_H
#define BATON_APP_CONFIG_SCHEMA_H

#include "backoff.h"
#include "breaker.h"
#include "executor.h"
#include "log.h"
#include "ratelimit.h"
#include "runstore.h"
#include "timeouts.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Codes shared with toml.h keep its values, so a parser error passes
 * through as it is. */
#define BT_CONFIG_ERRNO_MAP(X)                                                                     \
    X(OK, 0, "success")                                                                            \
    X(ESYNTAX, -1, "invalid TOML")                                                                 \
    X(ELIMIT, -2, "a parser limit was exceeded")                                                   \
    X(ENOMEM, -3, "out of memory")                                                                 \
    X(EINVAL, -4, "invalid argument")                                                              \
    X(ETYPE, -6, "value has another type")                                                         \
    X(ERANGE, -7, "value out of range")                                                            \
    X(EUNKNOWN, -20, "unknown key, kind or name")                                                  \
    X(EVALUE, -21, "invalid value")                                                                \
    X(ENOENT, -22, "the config file does not exist")                                               \
    X(EIO, -23, "cannot read a file")                                                              \
    X(EPERM, -24, "file permissions too open")

typedef enum {
#define BT_CONFIG_ERR_ENUM_(name, value, text) BT_CONFIG_##name = (value),
    BT_CONFIG_ERRNO_MAP(BT_CONFIG_ERR_ENUM_)
#undef BT_CONFIG_ERR_ENUM_
} bt_config_err_t;

/* Names an error code; never NULL ("unknown error" outside the map). */
const char *bt_config_strerror(int err);

/* Where and why a load failed. message is the full text with the file and
 * position ("config.toml:12:7: ..."; "config.toml: ..." when there is no
 * position, as for an unreadable file); detail is the text after the
 * prefix. No pointers: copy it freely. */
typedef struct bt_config_error {
    int code; /* a bt_config_err_t */
    char file[256];
    uint32_t line; /* 1-based; 0 when the error has no position */
    uint32_t column;
    char message[800]; /* fits file, position and detail: never truncated */
    char detail[512];
} bt_config_error_t;

/* Bounds and defaults (docs/config.md is the reference). */
#define BT_CONFIG_NAME_MAX         64 /* bytes of a job, breaker or limit name */
#define BT_CONFIG_TOKEN_MIN        16 /* characters of server.token */
#define BT_CONFIG_TOKEN_MAX        4096
#define BT_CONFIG_ALLOWED_HOSTS    64 /* entries of server.allowed_hosts */
#define BT_CONFIG_PARAMS_JSON_MAX  ((size_t)1 << 20)
#define BT_CONFIG_DEFAULT_PORT     7878
#define BT_CONFIG_DEFAULT_ADDRESS  "127.0.0.1"
#define BT_CONFIG_DEFAULT_STATEDIR "state"
#define BT_CONFIG_DEFAULT_DBFILE   "runs.db"

typedef struct bt_config_server {
    char *address;        /* an IPv4 or IPv6 literal */
    uint16_t port;        /* 1..65535 */
    char *token;          /* the bearer token (from token or token_file); NULL = none */
    char *token_file;     /* resolved path the token was read from; NULL = none */
    char **allowed_hosts; /* extra Host values, added to the server's defaults */
    uint32_t nallowed_hosts;
    size_t max_body;                 /* bytes */
    size_t max_header;               /* bytes */
    uint32_t max_connections;        /* at once */
    uint32_t max_connections_per_ip; /* at once, <= max_connections */
    uint64_t request_deadline_ns;    /* whole request, first byte to last */
    uint64_t idle_timeout_ns;        /* keep-alive idle; whole seconds */
} bt_config_server_t;

typedef struct bt_config_store {
    char *state_dir; /* resolved against the config file's directory */
    char *path;      /* the database file, resolved against state_dir */
    rs_sync_t sync;
} bt_config_store_t;

typedef struct bt_config_executor {
    uint32_t max_running;
    uint32_t max_pending;
    uint64_t shutdown_timeout_ns;
    uint64_t progress_every_ns;
    uint32_t progress_every_steps;
} bt_config_executor_t;

/* One [breakers.NAME]; args passed bt_breaker_args_check() (observer is
 * BT_REF_NONE: the app sets it). line/column: the table's position. */
typedef struct bt_config_breaker {
    char *name;
    bt_breaker_args_t args;
    uint32_t line, column;
} bt_config_breaker_t;

/* One [limits.NAME]; args passed bt_ratelimit_args_check() (seed is 0:
 * the app sets it). */
typedef struct bt_config_limit {
    char *name;
    bt_ratelimit_args_t args;
    uint32_t line, column;
} bt_config_limit_t;

/* One [jobs.NAME]: the fields of ex_job_t plus the job's default params
 * as JSON text and the names of the breaker, limit and timeout class it
 * uses (NULL = none; each was checked to exist). */
typedef struct bt_config_job {
    char *name;
    char *kind;
    uint32_t max_active;
    uint64_t stop_grace_ns;
    ex_recovery_t recovery;
    char *breaker;
    char *limit;
    char *timeout;
    char *params_json; /* "{}" when the job has no params */
    uint32_t line, column;
} bt_config_job_t;

typedef struct bt_config {
    char *path; /* the file it came from (as given to load); NULL after parse */
    bt_log_level_t log_level;
    uint32_t runtime_threads; /* 0 = the number of online CPUs */
    bt_config_server_t server;
    bt_config_store_t store;
    bt_config_executor_t executor;
    bt_timeout_class_t *timeouts; /* the classes of [timeouts], in file order */
    uint32_t ntimeouts;
    bt_config_breaker_t *breakers;
    uint32_t nbreakers;
    bt_config_limit_t *limits;
    uint32_t nlimits;
    bt_config_job_t *jobs;
    uint32_t njobs;
} bt_config_t;

/* Fills *out with the defaults of every key (no jobs, breakers, limits or
 * timeout classes; relative paths left relative to the working directory).
 * Returns BT_CONFIG_OK or BT_CONFIG_ENOMEM (then *out needs no deinit).
 * Release with bt_config_deinit(). */
int bt_config_defaults(bt_config_t *out /* OUT */);

/* Parses and validates len bytes of TOML text. filename is used in
 * messages only (NULL gives "config.toml"); base_dir is the directory that
 * relative paths (store.state_dir, server.token_file) are resolved against
 * (NULL or "" leaves them relative to the working directory). server.token_file
 * is read here. kinds lists the job kinds the caller links (NULL: any kind
 * is accepted). An empty text gives bt_config_defaults(). On success *out
 * holds the config (release with bt_config_deinit()); on failure *out is
 * zeroed, needs no deinit, and *err (may be NULL) says where and why. Does
 * not take ownership of any argument; copies what it keeps. */
int bt_config_parse(const char *text, size_t len, const char *filename, const char *base_dir,
                    const char *const *kinds, size_t nkinds, bt_config_t *out /* OUT */,
                    bt_config_error_t *err /* OUT */);

/* Reads the file at path and parses it as bt_config_parse() does, with
 * relative paths resolved against the file's directory (made absolute).
 * A missing file is BT_CONFIG_ENOENT, never silently the defaults: the
 * caller decides. Other read failures are BT_CONFIG_EIO; a file over the
 * parser's input limit (1 MiB) is BT_CONFIG_ELIMIT. Does not take
 * ownership of path or kinds. */
int bt_config_load(const char *path, const char *const *kinds, size_t nkinds,
                   bt_config_t *out /* OUT */, bt_config_error_t *err /* OUT */);

/* Frees every string and array of cfg and zeroes it. NULL is a no-op; so is
 * a zeroed struct. The token's memory is wiped before it is freed. Takes
 * ownership of cfg's contents, not of cfg. */
void bt_config_deinit(bt_config_t *cfg);

/* Prints a human summary of cfg (every section, the effective values with
 * units; never the token itself) for `baton check-config`. Returns 0, or -1
 * if writing to f failed. Does not take ownership of cfg or f. */
int bt_config_describe(const bt_config_t *cfg, FILE *f);

/* Lookups by name; NULL when absent. Pointers into cfg. */
const bt_config_breaker_t *bt_config_find_breaker(const bt_config_t *cfg, const char *name);
const bt_config_limit_t *bt_config_find_limit(const bt_config_t *cfg, const char *name);
const bt_config_job_t *bt_config_find_job(const bt_config_t *cfg, const char *name);

/* Fills an ex_job_t from a job; its strings point into job (which must
 * outlive *out's use; ex_spawn() copies them). */
void bt_config_job_ex(const bt_config_job_t *job, ex_job_t *out /* OUT */);

/* Fills the timeout registry's arguments from cfg (classes point into
 * cfg; bounds are the registry's defaults, 1 ms..1 h, which the schema
 * already checked). */
void bt_config_timeouts_args(const bt_config_t *cfg, bt_timeouts_args_t *out /* OUT */);

/* Parses a duration as config.toml writes it ("250ms", "30s", "1.5s", "5m",
 * "1h", "1m30s"; units ns, us, ms, s, m, h) into nanoseconds. Returns
 * BT_CONFIG_OK, or BT_CONFIG_EVALUE (not a duration) / BT_CONFIG_ERANGE
 * (beyond 2^64-1 ns), leaving *ns alone. Does not take ownership of s. */
int bt_config_duration_parse(const char *s, uint64_t *ns /* OUT */);

/* Formats ns as the shortest exact duration text ("1.5s", "250ms", "1h",
 * "1m30s", "0s") into buf (always NUL-terminated; 32 bytes suffice).
 * Returns buf. */
char *bt_config_duration_format(uint64_t ns, char *buf, size_t len);

#endif /* BATON_APP_CONFIG_SCHEMA_H */
