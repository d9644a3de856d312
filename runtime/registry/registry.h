/*
 * registry.h: the runtime's name registry, a map from actor names to
 * references whose lookups never block.
 *
 * A name is a NUL-terminated byte string of 1 to BT__REGISTRY_NAME_MAX bytes;
 * the registry copies it. A name is bound to at most one reference at a
 * time, and BT_REF_NONE is never bound.
 *
 * Concurrency, once for the whole interface:
 *  - Writers (put, remove) may be called from any number of threads; they
 *    serialise on the registry's mutex. When the table is replaced (it
 *    grows, or is rebuilt after many removals) the writer also waits for
 *    the lookups in progress to end, yielding the CPU meanwhile; lookups
 *    never wait, so this cannot deadlock, even on a thread that looks up.
 *    Removed names are freed by later writes, or by destroy.
 *  - Lookups (get, reader_get) are lock-free: they never take the mutex and
 *    never wait for a writer. A lookup sees every put and remove that
 *    returned before it began, and is linearizable with those that overlap
 *    it.
 *  - Readers need no setup. A thread that looks up often (a scheduler
 *    worker) may hold a bt__registry_reader_t to skip the pool round trip
 *    that bt__registry_get() makes on every call.
 *  - create and destroy are not thread-safe: nothing else may use the
 *    registry while they run.
 */
#ifndef BT_REGISTRY_REGISTRY_H
#define BT_REGISTRY_REGISTRY_H

#include <baton/baton.h>

#include <stddef.h>

/* Longest name in bytes, not counting the terminating NUL. */
#define BT__REGISTRY_NAME_MAX 255

typedef struct bt__registry bt__registry_t;

/* A registered epoch record for lock-free lookups: see
 * bt__registry_reader_acquire(). */
typedef struct bt__registry_reader bt__registry_reader_t;

typedef struct bt__registry_stats {
    size_t names;       /* names bound now */
    size_t readers;     /* reader records allocated: in use plus pooled */
    size_t table_bytes; /* hash-table memory (ck_hs maps) held now */
} bt__registry_stats_t;

/* Creates an empty registry. BT_ENOMEM on failure, leaving *out untouched.
 * Not thread-safe. */
int bt__registry_create(bt__registry_t **out /* OUT */);

/* Frees the registry, every name in it and every reader record, including
 * readers that were never released (their handles become invalid). NULL is
 * a no-op. Nothing else may use the registry during or after the call. */
void bt__registry_destroy(bt__registry_t *r);

/* Binds name to ref. Does not take ownership of name; copies it.
 * Errors: BT_EEXIST (name is bound, to any ref; the binding is unchanged),
 * BT_EINVAL (invalid name, NULL r, or ref == BT_REF_NONE), BT_ENOMEM.
 * Safe from any thread; serialises with other writers. */
int bt__registry_put(bt__registry_t *r, const char *name, bt_ref_t ref);

/* Unbinds name if it is bound to expected, or to anything when expected is
 * BT_REF_NONE; an actor that stops passes its own ref so that it never
 * releases a name that has since been taken by another. The name's memory
 * is reclaimed once no lookup can still be reading it.
 * Errors: BT_ENOENT (not bound, or bound to another ref; nothing changes),
 * BT_EINVAL (invalid name or NULL r).
 * Safe from any thread; serialises with other writers. */
int bt__registry_remove(bt__registry_t *r, const char *name, bt_ref_t expected);

/* Looks name up and stores its ref in *out. Lock-free; needs no setup from
 * the calling thread. Errors: BT_ENOENT (not bound; *out is set to
 * BT_REF_NONE), BT_EINVAL (invalid name or NULL argument), BT_ENOMEM (only
 * when every pooled reader record is busy and a new one cannot be
 * allocated). Safe from any thread. */
int bt__registry_get(bt__registry_t *r, const char *name, bt_ref_t *out /* OUT */);

/* Hands the calling thread a reader record for bt__registry_reader_get():
 * a pooled one if any is idle, otherwise a new one. Lock-free except for
 * the allocation of a new record. BT_ENOMEM or BT_EINVAL (NULL argument).
 * Safe from any thread. A reader is used by one thread at a time. */
int bt__registry_reader_acquire(bt__registry_t *r, bt__registry_reader_t **out /* OUT */);

/* Returns a reader to the registry's pool for reuse by any thread. The
 * caller must not use rd afterwards. NULL is a no-op. Lock-free. */
void bt__registry_reader_release(bt__registry_reader_t *rd);

/* bt__registry_get() through a reader the caller holds: one atomic
 * operation plus the table probe. Same errors as bt__registry_get() except
 * BT_ENOMEM. Only the thread holding rd may call it. */
int bt__registry_reader_get(bt__registry_reader_t *rd, const char *name, bt_ref_t *out /* OUT */);

/* Number of names bound: a snapshot that may be stale when it returns.
 * Lock-free; safe from any thread. 0 for NULL. */
size_t bt__registry_count(bt__registry_t *r);

/* Fills *out with counters, each read atomically but not all at the same
 * instant. Lock-free; safe from any thread. */
void bt__registry_stats(bt__registry_t *r, bt__registry_stats_t *out /* OUT */);

#endif
