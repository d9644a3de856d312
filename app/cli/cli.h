/*
 * cli.h: the `baton` command-line client (start, pause, resume, stop,
 * status, runs, events, watch), a client of the HTTP/JSON API of
 * docs/api.md over libcurl. docs/cli.md describes the commands, the
 * options and the exit codes.
 *
 * app/main.c handles `serve` and `check-config` itself and hands every
 * other subcommand to bt_cli_main(). The CLI does not read config.toml
 * itself: the caller passes a resolver that turns a config file into the
 * service's URL and token, so this library depends only on libcurl and
 * cJSON.
 *
 * Threads: the CLI is single-threaded and calls curl_global_init() /
 * curl_global_cleanup() around the commands that talk to the server, so
 * call bt_cli_main() / bt_cli_run() while no other thread uses libcurl
 * (in practice: from main()).
 */
#ifndef BATON_APP_CLI_CLI_H
#define BATON_APP_CLI_CLI_H

#include <stddef.h>
#include <stdio.h>

/* The process exit codes of the client commands (documented in docs/cli.md
 * and in `baton help`). */
typedef enum bt_cli_exit {
    BT_CLI_EXIT_OK = 0,
    BT_CLI_EXIT_ERROR = 1,        /* an API error not listed below, or internal */
    BT_CLI_EXIT_USAGE = 2,        /* bad command line */
    BT_CLI_EXIT_NOT_FOUND = 3,    /* 404: no such run, job or route */
    BT_CLI_EXIT_CONFLICT = 4,     /* 409: conflict or invalid_transition */
    BT_CLI_EXIT_BUSY = 5,         /* 429: the pending queue is full */
    BT_CLI_EXIT_UNAVAILABLE = 6,  /* cannot connect, timeout, 503 */
    BT_CLI_EXIT_AUTH = 7,         /* 401 unauthorized, 403 forbidden */
    BT_CLI_EXIT_CONFIG = 8,       /* the config file could not be used */
    BT_CLI_EXIT_RUN_FAILED = 10,  /* watch: the run ended failed */
    BT_CLI_EXIT_RUN_STOPPED = 11, /* watch: the run ended stopped */
    BT_CLI_EXIT_INTERRUPTED = 130 /* watch: SIGINT (128 + 2, as a shell reports it) */
} bt_cli_exit_t;

/* Reads the service's base URL ("http://127.0.0.1:7878") and bearer token
 * from the config file at config_path. Writes NUL-terminated strings; an
 * empty url means "the default address", an empty token means "none".
 * Returns 0, or non-zero with a sentence in err (file unreadable, invalid
 * TOML, bad [server] values); the CLI then exits with BT_CLI_EXIT_CONFIG.
 * Called at most once per command, and only when the URL or the token is
 * not already given by a flag or the environment. */
typedef int (*bt_cli_resolve_fn)(const char *config_path, char *url, size_t urllen, char *token,
                                 size_t toklen, char *err, size_t errlen);

/* Where the CLI reads and writes, so tests can capture its output and
 * replace its environment. A NULL io, or NULL/zero fields, mean the
 * defaults given per field. */
typedef struct bt_cli_io {
    FILE *out; /* results; NULL = stdout */
    FILE *err; /* errors and notes; NULL = stderr */
    int tty;   /* out is a terminal (watch redraws one line): 1 yes, 0 no, -1 = isatty(out) */
    const char *(*getenv)(const char *name); /* NULL = getenv(3) */
    long long now_ms; /* wall clock for "3m ago" and elapsed times; 0 = the real clock */
    unsigned poll_ms; /* watch's poll interval; 0 = 500 */
} bt_cli_io_t;

/* Runs one client command. argv[0] is the subcommand name ("start",
 * "status", ...; "help" prints the overview), argv[1..argc-1] its
 * arguments and the global options (--config, --url, --token, --json,
 * --timeout, -h/--help). Writes results to io->out and messages to
 * io->err, and returns a bt_cli_exit_t. resolve may be NULL (no config
 * file support). Does not take ownership of argv or io. */
int bt_cli_run(int argc, char **argv, bt_cli_resolve_fn resolve, const bt_cli_io_t *io);

/* bt_cli_run() on stdout, stderr and the process environment. */
int bt_cli_main(int argc, char **argv, bt_cli_resolve_fn resolve);

/* Prints the list of client commands (one line each, indented by two
 * spaces) and the exit codes, for the top-level `baton --help`. */
void bt_cli_usage(FILE *f);

#endif
