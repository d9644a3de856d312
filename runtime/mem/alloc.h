/* alloc.h: internal side of the allocator shim (public part in baton.h). */
#ifndef BT_MEM_ALLOC_H
#define BT_MEM_ALLOC_H

#include <baton/baton.h>

/* Test seam: after n more successful allocations, every allocation fails
 * until called again with a negative n. Process-wide. */
void bt__alloc_fail_after(long n);

#endif
