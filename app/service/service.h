/*
 * service.h: `baton serve` and `baton check-config`.
 *
 * serve: reads config.toml, takes the state directory's lock, starts the
 * runtime and the actors (timeout registry, breakers, limiters, run store,
 * executor), serves the API while the executor recovers, reports ready
 * (and tells systemd) once recovery is done, and on SIGTERM or SIGINT
 * drains within executor.shutdown_timeout and exits 0. A second signal
 * forces the exit. docs/service.md has the details.
 */
#ifndef BATON_APP_SERVICE_SERVICE_H
#define BATON_APP_SERVICE_SERVICE_H

#include <stddef.h>

/* Exit codes of `baton serve` and `baton check-config`. */
enum bt_serve_exit {
    BT_SERVE_EXIT_OK = 0,      /* drained and stopped cleanly */
    BT_SERVE_EXIT_FAILURE = 1, /* could not start (port in use, store), or a forced exit */
    BT_SERVE_EXIT_USAGE = 2,   /* bad command line */
    BT_SERVE_EXIT_CONFIG = 8,  /* the config file is missing or invalid */
    BT_SERVE_EXIT_LOCKED = 9,  /* another instance holds the state directory */
};

int bt_serve_main(int argc, char **argv);
int bt_check_config_main(int argc, char **argv);

/* The CLI's resolver (bt_cli_resolve_fn): the API's URL and token from a
 * config file. */
int bt_service_resolve(const char *config_path, char *url, size_t urllen, char *token,
                       size_t toklen, char *err, size_t errlen);

#endif
