/*
 * driver.c: command-line parsing, warm-up and measured runs, and --short
 * mode for the C bench programs (see driver.h).
 */
#include "driver.h"

#include "harness.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t bench_threads;
uint64_t bench_timeout_ns = 300ull * 1000000000u;

static void usage(const char *prog, const bench_workload_t *table, size_t n)
{
    fprintf(stderr,
            "usage: %s --list\n"
            "       %s --short [--threads N]\n"
            "       %s [--threads N] [--warmup W] [--runs R] [--timeout S] WORKLOAD [ARG...]\n"
            "workloads:\n",
            prog, prog, prog);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  %-12s %-24s -> %s\n", table[i].name, table[i].usage, table[i].metric);
}

static void format_args(const bench_workload_t *w, const uint64_t *args, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < w->nargs && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%" PRIu64, i ? "," : "", args[i]);
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (s == NULL || *s == '\0' || *s == '-')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0')
        return false;
    *out = v;
    return true;
}

/* One warm-up-free run of every workload with its small parameters. */
static int run_short(const bench_workload_t *table, size_t n)
{
    size_t failed = 0;
    uint64_t start = bench_now_ns();
    bench_timeout_ns = 60ull * 1000000000u;
    for (size_t i = 0; i < n; i++) {
        const bench_workload_t *w = &table[i];
        char args[96];
        format_args(w, w->small, args, sizeof args);
        double value = -1;
        int rc = w->run(w->small, &value);
        if (rc != 0 || !(value >= 0)) {
            fprintf(stderr, "FAIL impl=%s workload=%s args=%s (rc %d)\n", bench_impl, w->name, args,
                    rc);
            failed++;
            continue;
        }
        bench_result(w->name, args, w->metric, value);
    }
    printf("bench_short: %zu of %zu workloads produced a result in %.1f s\n", n - failed, n,
           (double)(bench_now_ns() - start) / 1e9);
    return failed == 0 ? 0 : 1;
}

int bench_main(int argc, char **argv, const bench_workload_t *table, size_t n)
{
    uint64_t warmup = 1, runs = 5, v;
    bool short_mode = false;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--list") == 0) {
            for (size_t k = 0; k < n; k++)
                printf("%s %s\n", table[k].name, table[k].metric);
            return 0;
        } else if (strcmp(opt, "--short") == 0) {
            short_mode = true;
        } else if (strcmp(opt, "--threads") == 0 && parse_u64(argv[i + 1], &v) && v <= 256) {
            bench_threads = (uint32_t)v;
            i++;
        } else if (strcmp(opt, "--warmup") == 0 && parse_u64(argv[i + 1], &v)) {
            warmup = v;
            i++;
        } else if (strcmp(opt, "--runs") == 0 && parse_u64(argv[i + 1], &v) && v > 0) {
            runs = v;
            i++;
        } else if (strcmp(opt, "--timeout") == 0 && parse_u64(argv[i + 1], &v) && v > 0) {
            bench_timeout_ns = v * 1000000000u;
            i++;
        } else {
            usage(argv[0], table, n);
            return 2;
        }
    }
    if (short_mode)
        return i == argc ? run_short(table, n) : (usage(argv[0], table, n), 2);
    if (i >= argc) {
        usage(argv[0], table, n);
        return 2;
    }
    const bench_workload_t *w = NULL;
    for (size_t k = 0; k < n; k++)
        if (strcmp(table[k].name, argv[i]) == 0)
            w = &table[k];
    if (w == NULL) {
        fprintf(stderr, "%s: unknown workload '%s'\n", argv[0], argv[i]);
        usage(argv[0], table, n);
        return 2;
    }
    uint64_t args[BENCH_MAX_ARGS];
    memcpy(args, w->full, sizeof args);
    i++;
    for (unsigned k = 0; i < argc; i++, k++) {
        if (k >= w->nargs || !parse_u64(argv[i], &args[k]) || args[k] == 0) {
            fprintf(stderr, "%s: %s takes %s (positive integers)\n", argv[0], w->name, w->usage);
            return 2;
        }
    }
    char astr[96];
    format_args(w, args, astr, sizeof astr);
    for (uint64_t r = 0; r < warmup + runs; r++) {
        double value = -1;
        int rc = w->run(args, &value);
        if (rc != 0 || !(value >= 0)) {
            fprintf(stderr, "FAIL impl=%s workload=%s args=%s (rc %d)\n", bench_impl, w->name, astr,
                    rc);
            return 1;
        }
        if (r >= warmup)
            bench_result(w->name, astr, w->metric, value);
    }
    bench_peak(w->name, astr);
    return 0;
}
