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
#include "mem/jemalloc_conf.h"

#include <stdlib.h>
#include <string.h>

#ifndef BT_SYSTEM_ALLOCATOR
#include <jemalloc/jemalloc.h>
#endif

#ifndef BT_SYSTEM_ALLOCATOR
/* jemalloc's build-time options for this process, unless the application
 * defines its own malloc_conf (this one is weak) or sets MALLOC_CONF, which
 * jemalloc reads later and so overrides it.
 *  - Transparent huge pages for data and metadata: an actor runtime
 *    allocates millions of small objects, and with 4 KiB pages spawning is
 *    dominated by page faults (measured: about 970 ns per spawned actor
 *    with them, about 300 ns without, on this project's 2-core VM; see
 *    bench/README.md).
 *  - Bigger thread caches for small sizes (up to 16 slabs' worth, 4096
 *    objects, instead of 2 and 200): messages are allocated by the sender's
 *    thread and freed by the receiver's, so each thread's cache fills on
 *    one side and empties on the other, and every overflow or refill is a
 *    round trip through the arena's locked bin. Fan-in, A/B in one run:
 *    +15 to +40 % (docs/runtime.md, "Memory"). */
__attribute__((weak)) const char *malloc_conf = BT_JEMALLOC_CONF;
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

int bt_alloc_stats(bt_alloc_stats_t *out)
{
    memset(out, 0, sizeof(*out));
#ifdef BT_SYSTEM_ALLOCATOR
    return BT_ENOTSUP;
#else
    /* Statistics are cached per epoch: advance it to refresh them. */
    uint64_t epoch = 1;
    size_t len = sizeof(epoch);
    if (mallctl("epoch", &epoch, &len, &epoch, len) != 0)
        return BT_ENOTSUP;
    static const char *const names[] = {"stats.allocated", "stats.active", "stats.resident",
                                        "stats.mapped", "stats.retained"};
    uint64_t *fields[] = {&out->allocated, &out->active, &out->resident, &out->mapped,
                          &out->retained};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t v = 0;
        len = sizeof(v);
        if (mallctl(names[i], &v, &len, NULL, 0) != 0)
            return BT_ENOTSUP;
        *fields[i] = v;
    }
    return BT_OK;
#endif
}
