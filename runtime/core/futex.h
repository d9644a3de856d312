/*
 * futex.h: the two Linux futex calls the runtime sleeps and wakes with
 * (scheduler workers, pinned actors' threads, blocking asks). Private
 * futexes: every waiter is in this process.
 */
#ifndef BT_CORE_FUTEX_H
#define BT_CORE_FUTEX_H

#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Sleeps while *addr == val, at most timeout (NULL: no limit). Returns on a
 * wake, a value change, a signal or the timeout: callers loop on their own
 * condition. */
static inline void bt__futex_wait(uint32_t *addr, uint32_t val, const struct timespec *timeout)
{
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, timeout, NULL, 0);
}

/* Wakes one thread sleeping on addr, if any. */
static inline void bt__futex_wake(uint32_t *addr)
{
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

#endif
