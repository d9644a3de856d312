/*
 * alloc.c: the one allocator shim of the runtime.
 *
 * Normal builds allocate through jemalloc's non-standard API (mallocx /
 * sdallocx), so every free passes the size it was allocated with and skips
 * jemalloc's size lookup. Sanitizer builds (BT_SYSTEM_ALLOCATOR) use the
 * system allocator, which AddressSanitizer and ThreadSanitizer intercept.
 *
 * Tests may make allocations fail (bt__alloc_fail_after) to exercise the
 * out-of-memory paths; the seam costs one relaxed load per allocation.
 */
#include "mem/alloc.h"

#include <stdlib.h>
#include <string.h>

#ifndef BT_SYSTEM_ALLOCATOR
#include <jemalloc/jemalloc.h>
#endif

/* Number of allocations left before they start failing; negative = never. */
static long fail_countdown = -1;

void bt__alloc_fail_after(long n)
{
    __atomic_store_n(&fail_countdown, n, __ATOMIC_RELAXED);
}

static inline bool injected_failure(void)
{
    if (__builtin_expect(__atomic_load_n(&fail_countdown, __ATOMIC_RELAXED) < 0, 1))
        return false;
    /* Decrement; the allocation that finds zero (and all after it) fail. */
    return __atomic_fetch_sub(&fail_countdown, 1, __ATOMIC_RELAXED) <= 0;
}

void *bt_alloc(size_t size)
{
    if (injected_failure())
        return NULL;
#ifdef BT_SYSTEM_ALLOCATOR
    return malloc(size ? size : 1);
#else
    return mallocx(size ? size : 1, 0);
#endif
}

void *bt_alloc_zeroed(size_t size)
{
    if (injected_failure())
        return NULL;
#ifdef BT_SYSTEM_ALLOCATOR
    return calloc(1, size ? size : 1);
#else
    return mallocx(size ? size : 1, MALLOCX_ZERO);
#endif
}

void bt_free(void *ptr, size_t size)
{
    if (ptr == NULL)
        return;
#ifdef BT_SYSTEM_ALLOCATOR
    (void)size;
    free(ptr);
#else
    sdallocx(ptr, size ? size : 1, 0);
#endif
}
