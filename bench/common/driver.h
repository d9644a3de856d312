/*
 * driver.h: the command line shared by the C bench programs.
 *
 *   PROG --list
 *   PROG --short [--threads N]
 *   PROG [--threads N] [--warmup W] [--runs R] [--timeout S] WORKLOAD [ARG...]
 *
 * A workload run is one measurement: it sets up (not timed), times only the
 * measured part, tears down (not timed) and returns one value. The driver
 * runs W unreported warm-up runs, then R reported ones (RESULT lines), then
 * prints the PEAK line. --short runs every workload once with its small
 * parameters and exits non-zero if any fails or produces no value.
 */
#ifndef BENCH_COMMON_DRIVER_H
#define BENCH_COMMON_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_ARGS 3

typedef struct bench_workload {
    const char *name;
    const char *metric;             /* unit of the value, e.g. ns_per_msg */
    const char *usage;              /* names of the positional arguments */
    unsigned nargs;                 /* at most BENCH_MAX_ARGS */
    uint64_t full[BENCH_MAX_ARGS];  /* parameters when none are given */
    uint64_t small[BENCH_MAX_ARGS]; /* parameters under --short */
    /* Returns 0 and the measured value, or non-zero after printing why. */
    int (*run)(const uint64_t *args, double *value /* OUT */);
} bench_workload_t;

/* --threads (0: the system's default); read by workloads. */
extern uint32_t bench_threads;
/* How long a workload may wait for its actors before it counts as hung. */
extern uint64_t bench_timeout_ns;

/* Parses the command line and runs; returns the process exit code. */
int bench_main(int argc, char **argv, const bench_workload_t *table, size_t n);

#endif
