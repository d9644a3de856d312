/*
 * main.c: the one `baton` binary. `serve` runs the service, `check-config`
 * validates a config file, and every other subcommand is a client of the
 * service's API (app/cli/).
 */
#include "cli/cli.h"
#include "service/service.h"

#include <stdio.h>
#include <string.h>

/* jemalloc's options for this binary, in place of the runtime's (weak)
 * ones: huge pages as the runtime has them, but jemalloc's default thread
 * caches. The runtime's bigger caches pay off for its few scheduler
 * threads; the service runs a thread per HTTP connection as well, and
 * with 128 connections they held about 100 MiB more during a burst of
 * starts (tests/reliability/test_load.c). */
const char *malloc_conf = "thp:always,metadata_thp:auto";

#ifndef BATON_VERSION
#define BATON_VERSION "0.0.0"
#endif

static void usage(FILE *f)
{
    fprintf(f,
            "baton %s: a job-control service and its command-line client\n"
            "\n"
            "Usage: baton COMMAND [OPTIONS] [ARGS]\n"
            "       baton COMMAND --help\n"
            "\n"
            "Service:\n"
            "  serve         run the service (config.toml, state directory lock, HTTP API)\n"
            "  check-config  validate a config file and print what it configures\n"
            "\n"
            "Client (talks to a running service; see baton COMMAND --help):\n",
            BATON_VERSION);
    bt_cli_usage(f);
    fprintf(f, "\n"
               "Options:\n"
               "  --version     print the version and exit\n"
               "  -h, --help    print this help and exit\n"
               "\n"
               "The config file is --config FILE, or $BATON_CONFIG, or ./config.toml.\n"
               "Documentation: baton(1), baton.toml(5), docs/ in the source tree.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("baton %s\n", BATON_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        (strcmp(cmd, "help") == 0 && argc == 2)) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "help") == 0) {
        /* baton help COMMAND == baton COMMAND --help */
        char *args[] = {argv[2], "--help", NULL};
        if (strcmp(argv[2], "serve") == 0)
            return bt_serve_main(2, args);
        if (strcmp(argv[2], "check-config") == 0)
            return bt_check_config_main(2, args);
        return bt_cli_main(2, args, bt_service_resolve);
    }
    if (strcmp(cmd, "serve") == 0)
        return bt_serve_main(argc - 1, argv + 1);
    if (strcmp(cmd, "check-config") == 0)
        return bt_check_config_main(argc - 1, argv + 1);
    if (cmd[0] == '-') {
        fprintf(stderr, "baton: unknown option '%s'\n\n", cmd);
        usage(stderr);
        return 2;
    }
    return bt_cli_main(argc - 1, argv + 1, bt_service_resolve);
}
