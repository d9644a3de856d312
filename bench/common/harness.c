/*
 * harness.c: clock, CPU and memory readings, the completion latch and the
 * output lines shared by the C bench programs (see harness.h).
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

const char *bench_impl = "unknown";

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bench_cpu_ns(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    uint64_t us = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
                  (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
    return us * 1000u;
}

uint64_t bench_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    unsigned long size = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    if (n != 2)
        return 0;
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

uint64_t bench_peak_rss_kb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (uint64_t)ru.ru_maxrss;
}

void bench_sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
                          .tv_nsec = (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void bench_latch_init(bench_latch_t *l, uint64_t count)
{
    l->left = count;
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    l->done = count == 0;
    l->failed = NULL;
    l->failed_rc = 0;
}

void bench_latch_destroy(bench_latch_t *l)
{
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
}

void bench_latch_count_down(bench_latch_t *l)
{
    /* Release: the actor's work is visible to the waiter, whose mutex
     * acquire follows the last decrement's mutex release. */
    if (__atomic_sub_fetch(&l->left, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    pthread_mutex_lock(&l->mu);
    l->done = true;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

void bench_latch_fail(bench_latch_t *l, const char *why, int rc)
{
    pthread_mutex_lock(&l->mu);
    if (l->failed == NULL) {
        l->failed = why;
        l->failed_rc = rc;
    }
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

int bench_latch_wait(bench_latch_t *l, uint64_t timeout_ns)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t end = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec + timeout_ns;
    struct timespec deadline = {.tv_sec = (time_t)(end / 1000000000u),
                                .tv_nsec = (long)(end % 1000000000u)};
    int ret = 0;
    pthread_mutex_lock(&l->mu);
    while (!l->done && l->failed == NULL) {
        if (pthread_cond_timedwait(&l->cv, &l->mu, &deadline) == ETIMEDOUT) {
            ret = -2;
            break;
        }
    }
    if (ret == 0 && l->failed != NULL) {
        fprintf(stderr, "%s: run failed: %s (code %d)\n", bench_impl, l->failed, l->failed_rc);
        ret = -1;
    }
    pthread_mutex_unlock(&l->mu);
    return ret;
}

void bench_result(const char *workload, const char *args, const char *metric, double value)
{
    printf("RESULT impl=%s workload=%s args=%s metric=%s value=%.4f\n", bench_impl, workload, args,
           metric, value);
    fflush(stdout);
}

void bench_peak(const char *workload, const char *args)
{
    printf("PEAK impl=%s workload=%s args=%s rss_kb=%llu\n", bench_impl, workload, args,
           (unsigned long long)bench_peak_rss_kb());
    fflush(stdout);
}
