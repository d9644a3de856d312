/*
 * harness.h: what the C bench programs share: a monotonic clock, process
 * CPU time and memory readings, a completion latch that actors signal and
 * the main thread waits on, and the machine-readable output lines.
 *
 * Output, one line per measured run (run.sh parses these and nothing else):
 *   RESULT impl=<impl> workload=<name> args=<a,b> metric=<unit> value=<number>
 * and one line per process, after its runs:
 *   PEAK impl=<impl> workload=<name> args=<a,b> rss_kb=<peak resident set>
 */
#ifndef BENCH_COMMON_HARNESS_H
#define BENCH_COMMON_HARNESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Nanoseconds from CLOCK_MONOTONIC. */
uint64_t bench_now_ns(void);

/* User plus system CPU time the whole process has used, in nanoseconds. */
uint64_t bench_cpu_ns(void);

/* Current resident set in bytes (from /proc/self/statm), or 0 if unknown. */
uint64_t bench_rss_bytes(void);

/* Peak resident set of the process in KiB (getrusage ru_maxrss). */
uint64_t bench_peak_rss_kb(void);

/* Sleeps for ns nanoseconds, resuming after signals. */
void bench_sleep_ns(uint64_t ns);

/* A count-down latch: count_down() from any thread, any number of times;
 * the call that reaches zero wakes the waiter. fail() wakes it at once with
 * a reason. Only the decrement that reaches zero takes the mutex, so a
 * million actors counting down cost one atomic each. */
typedef struct bench_latch {
    uint64_t left; /* atomic */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;          /* under mu */
    const char *failed; /* under mu: static reason, or NULL */
    int failed_rc;
} bench_latch_t;

void bench_latch_init(bench_latch_t *l, uint64_t count);
void bench_latch_destroy(bench_latch_t *l);

/* Safe from any thread. */
void bench_latch_count_down(bench_latch_t *l);

/* Marks the run failed and wakes the waiter. why must be a static string.
 * Safe from any thread; the first reason wins. */
void bench_latch_fail(bench_latch_t *l, const char *why, int rc);

/* Waits until the count reaches zero (returns 0), the run fails (-1, the
 * reason is printed) or timeout_ns passes (-2). One waiter. */
int bench_latch_wait(bench_latch_t *l, uint64_t timeout_ns);

/* The name printed as impl= on every line; set once by main(). */
extern const char *bench_impl;

/* Prints one RESULT line. args is the workload's parameters, comma
 * separated. */
void bench_result(const char *workload, const char *args, const char *metric, double value);

/* Prints the PEAK line for this process. */
void bench_peak(const char *workload, const char *args);

#endif
