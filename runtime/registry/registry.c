/*
 * registry.c: the name registry, a map from actor names to references with
 * lock-free lookups, on Concurrency Kit's ck_hs and ck_epoch.
 *
 * DESIGN
 * State: one ck_hs hash set (single writer, many readers) of entries, each
 * an immutable {name copy, cached hash, ref}; an epoch domain (ck_epoch);
 * the writers' mutex and epoch record; a pool of readers' epoch records.
 *
 * Writers take the mutex, so ck_hs sees one writer at a time, as its SPMC
 * mode requires. An entry is never changed once published. remove unlinks
 * it and defers its free with ck_epoch_call on the writers' record; every
 * write ends with ck_epoch_poll_deferred, which hands back what no reader
 * can still reach, and frees it. So a removed entry waits at most for a
 * few later writes, or for destroy (which runs ck_epoch_barrier first).
 * Replaced hash maps are big, so they do not wait for a later write: when
 * ck_hs frees the old map after a grow (defer=true), and when a rebuild
 * replaces the table, the writer waits for a grace period on the spot
 * (ck_epoch_synchronize_wait, yielding) and frees it, flushing the
 * deferred entries too. Both happen O(log n) times as the set grows, and
 * rebuilds are amortised over removals (below).
 *
 * Readers: a lookup runs inside an epoch section (ck_epoch_begin/end) on a
 * record of its own. Records come from a lock-free pool (a Treiber stack
 * with a pop counter against ABA); an empty pool makes a new record, which
 * is registered once and never unregistered. A thread that looks up often
 * (a scheduler worker) keeps one (bt__registry_reader_acquire); any other
 * thread borrows one per lookup, so it needs no setup and leaves nothing
 * behind when it exits. The records number at most the peak of concurrent
 * lookups, and destroy frees them. Why not ck_epoch_recycle/unregister per
 * lookup: they update the epoch's n_free with atomic increments, and it
 * shares a cache line with the global epoch that every ck_epoch_begin
 * reads, so outside lookups would slow the workers' lookups; recycle also
 * walks the whole record list.
 *
 * Shrinking: ck_hs never shrinks (ck_hs_grow refuses a smaller capacity,
 * ck_hs_reset_size empties the set) and leaves a tombstone per removal. So
 * after enough removals (half the peak since the last rebuild) the writer
 * builds a fresh table sized for the names left, publishes it with one
 * pointer store, and frees the old one after a grace period. Readers that
 * loaded the old pointer finish on it: it still holds exactly the bindings
 * of the moment of the swap, which lies inside their lookup.
 *
 * Ordering relied on: the writer's unlink (store), then the full fence in
 * ck_epoch_poll/synchronize before it reads the readers' active flags; the
 * reader's locked exchange of its active flag in ck_epoch_begin before it
 * loads the table. Either the reader sees the unlink or the writer sees the reader.
 * ThreadSanitizer cannot see CK's atomics, so the edges are annotated: an
 * entry is released before it is published and acquired where a reader
 * first touches it (key_equal, called inside ck_hs_get); a table likewise;
 * every lookup releases tsan_grace as its section ends, and reclamation
 * acquires it before freeing.
 */
#include "registry/registry.h"

#include "core/tsan.h"
#include "mem/alloc.h"

#include <ck_epoch.h>
#include <ck_hs.h>
#include <ck_pr.h>
#include <ck_stack.h>

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Always-on invariant check. Not BT_ASSERT from core/internal.h: that one
 * needs runtime.c linked in, and this module is built and tested alone. */
#define CHECK(cond) ((cond) ? (void)0 : check_failed(#cond, __LINE__))

__attribute__((noreturn, cold)) static void check_failed(const char *cond, int line)
{
    fprintf(stderr, "baton: registry invariant violated: %s (registry.c:%d)\n", cond, line);
    abort();
}

#define MIN_CAPACITY  64 /* slots a new table is sized for, at least */
#define REBUILD_SLACK 32 /* removals before even a tiny table is rebuilt */

/* SPMC: one writer (under the mutex) and any number of readers. DELETE:
 * per-slot probe bounds, so that lookups stay short between rebuilds
 * despite the tombstones removals leave. */
#define HS_MODE (CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC | CK_HS_MODE_DELETE)

/* ------------------------------------------------------------------ types */

/* What ck_hs hashes and compares. Stored entries start with one, and a
 * lookup passes one on its stack, so key_equal reads both the same way. */
typedef struct name_key {
    unsigned long hash; /* hash_name() with the registry's seed */
    size_t len;         /* bytes, without the NUL */
    const char *name;
} name_key_t;

typedef struct entry {
    name_key_t key; /* first: ck_hs holds &entry->key, which is the entry */
    bt_ref_t ref;
    ck_epoch_entry_t retire; /* deferred free after removal */
    char text[];             /* the name's copy, NUL-terminated */
} entry_t;

struct bt__registry_reader {
    ck_epoch_record_t rec; /* cache-line aligned by CK */
    bt__registry_t *reg;
    uint64_t pool_next; /* atomic: the next idle reader, as an address */
    void *base;         /* what the allocator returned */
};

/* Top of the idle-reader pool, updated by a double-width CAS. Every pop
 * increments gen, so a pop whose snapshot predates any other pop fails even
 * if the same reader is back on top (ABA). Pushes change only head; they
 * cannot make a stale snapshot look current, because putting a reader back
 * on top after it was popped took a pop. Readers are never freed before the
 * registry, so reading a popped reader's link is safe. Both words are
 * uint64_t so that CK's uint64_t[2] CAS reads them without type punning. */
typedef struct reader_pool {
    uint64_t head; /* address of the top reader, 0 if empty */
    uint64_t gen;  /* pops so far */
} __attribute__((aligned(16))) reader_pool_t;

struct bt__registry {
    /* Read by every lookup. */
    ck_epoch_t epoch;
    ck_hs_t *table; /* atomic: the current table */
    uint64_t seed;
    char tsan_grace; /* TSan sync address; see the DESIGN note */

    _Alignas(CK_MD_CACHELINE) reader_pool_t pool;
    uint64_t readers; /* atomic: records allocated */

    /* Writers, under mutex. count and table_bytes are stored atomically
     * for the lock-free stats. */
    _Alignas(CK_MD_CACHELINE) pthread_mutex_t mutex;
    uint64_t count;
    uint64_t table_bytes;
    uint64_t peak;          /* most names since the last rebuild */
    uint64_t removed;       /* removals since the last rebuild */
    ck_epoch_record_t wrec; /* the writers' record: defers and reclaims */
    void *base;             /* what the allocator returned */
};

CK_EPOCH_CONTAINER(entry_t, retire, entry_of_retire)
CK_STACK_CONTAINER(ck_epoch_entry_t, stack_entry, epoch_entry_of)
CK_STACK_CONTAINER(ck_epoch_record_t, record_next, record_of)

/* The registry whose writer runs on this thread. ck_malloc's callbacks take
 * no context argument in CK 0.7.1; this is how they find the epoch to wait
 * on and the byte counter to charge. Set only by a thread that holds the
 * registry's mutex, or inside create and destroy. */
static __thread bt__registry_t *tls_writer;

/* --------------------------------------------------------------- memory */

/* bt_alloc promises malloc's alignment (16 bytes on x86-64), but CK's epoch
 * records are cache-line aligned: over-allocate and round up, keeping the
 * base for the sized free. Zeroed. */
static void *alloc_aligned(size_t size, void **base)
{
    void *p = bt_alloc_zeroed(size + CK_MD_CACHELINE);
    if (p == NULL)
        return NULL;
    *base = p;
    return (void *)(((uintptr_t)p + CK_MD_CACHELINE - 1) & ~(uintptr_t)(CK_MD_CACHELINE - 1));
}

static void free_aligned(void *base, size_t size)
{
    bt_free(base, size + CK_MD_CACHELINE);
}

static void wait_grace_and_reclaim(bt__registry_t *r);

static void *hs_malloc(size_t size)
{
    bt__registry_t *r = tls_writer;
    CHECK(r != NULL);
    void *p = bt_alloc(size);
    if (p != NULL)
        ck_pr_store_64(&r->table_bytes, r->table_bytes + size);
    return p;
}

/* ck_hs passes the size it allocated (the map's recorded size), and
 * defer=true for a map that readers may still be probing: the one a grow
 * has just replaced. That one is freed after a grace period, waited for
 * here rather than deferred, so that a big map never lingers until the
 * next write; maps are replaced only O(log n) times as the set grows. */
static void hs_free(void *p, size_t size, bool defer)
{
    bt__registry_t *r = tls_writer;
    CHECK(r != NULL);
    if (defer)
        wait_grace_and_reclaim(r);
    ck_pr_store_64(&r->table_bytes, r->table_bytes - size);
    bt_free(p, size);
}

/* ck_hs uses only malloc and free. */
static struct ck_malloc hs_allocator = {.malloc = hs_malloc, .realloc = NULL, .free = hs_free};

/* ---------------------------------------------------------------- hashing */

/* MurmurHash3's 64-bit finaliser: every input bit affects every output bit. */
static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* Seeded, eight bytes per step. Not a keyed PRF like SipHash: enough
 * against accidental clustering, and registered names come from the
 * runtime's own code, not from the network. */
static unsigned long hash_name(uint64_t seed, const char *s, size_t len)
{
    uint64_t h = mix64(seed ^ len);
    for (; len >= 8; s += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = mix64(h ^ w);
    }
    uint64_t tail = 0;
    memcpy(&tail, s, len);
    return (unsigned long)mix64(h ^ tail);
}

static uint64_t make_seed(const void *salt)
{
    uint64_t s;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)ts.tv_nsec ^ (uintptr_t)salt;
    }
    return mix64(s);
}

/* ck_hs rehashes stored entries when it grows: their hash is cached. The
 * seed argument is unused; the registry's seed is in every cached hash. */
static unsigned long key_hash(const void *object, unsigned long seed)
{
    (void)seed;
    return ((const name_key_t *)object)->hash;
}

/* ck_hs calls compare(stored, probe) (ck_hs_map_probe in ck_hs.c), inside
 * a reader's ck_hs_get, before it returns: the acquire that makes the
 * entry's contents visible to TSan has to be here. */
static bool key_equal(const void *stored, const void *probe)
{
    BT_TSAN_ACQUIRE(stored); /* pairs with the release in bt__registry_put */
    const name_key_t *a = stored, *b = probe;
    return a->hash == b->hash && a->len == b->len && memcmp(a->name, b->name, a->len) == 0;
}

/* Fills *k for name, or returns BT_EINVAL if name is not a valid name. */
static int make_key(const bt__registry_t *r, const char *name, name_key_t *k)
{
    if (name == NULL)
        return BT_EINVAL;
    size_t len = strnlen(name, BT__REGISTRY_NAME_MAX + 1);
    if (len == 0 || len > BT__REGISTRY_NAME_MAX)
        return BT_EINVAL;
    *k = (name_key_t){.hash = hash_name(r->seed, name, len), .len = len, .name = name};
    return BT_OK;
}

/* ---------------------------------------------------------------- entries */

static size_t entry_size(size_t len)
{
    return sizeof(entry_t) + len + 1;
}

static void entry_free_now(entry_t *e)
{
    bt_free(e, entry_size(e->key.len));
}

static void entry_reclaim(ck_epoch_entry_t *e)
{
    entry_free_now(entry_of_retire(e));
}

/* ----------------------------------------------------------------- tables */

/* A table is a ck_hs_t of its own, so that a rebuild can swap the whole
 * set with one pointer store. Writer only (tls_writer set). */
static ck_hs_t *table_new(bt__registry_t *r, unsigned long capacity)
{
    ck_hs_t *t = bt_alloc(sizeof *t);
    if (t == NULL)
        return NULL;
    if (!ck_hs_init(t, HS_MODE, key_hash, key_equal, &hs_allocator, capacity, r->seed)) {
        bt_free(t, sizeof *t);
        return NULL;
    }
    return t;
}

/* Frees a table, not its entries, that no reader can reach. Writer only. */
static void table_free_now(ck_hs_t *t)
{
    ck_hs_destroy(t);
    bt_free(t, sizeof *t);
}

/* ---------------------------------------------------------------- readers */

static bt__registry_reader_t *reader_new(bt__registry_t *r)
{
    void *base;
    bt__registry_reader_t *rd = alloc_aligned(sizeof *rd, &base);
    if (rd == NULL)
        return NULL;
    rd->reg = r;
    rd->base = base;
    /* Lock-free push onto the epoch's record list; the record stays
     * registered, idle in the pool when unused, until destroy. */
    ck_epoch_register(&r->epoch, &rd->rec, rd);
    ck_pr_inc_64(&r->readers);
    return rd;
}

/* Lock-free; any thread. */
static bt__registry_reader_t *pool_pop(bt__registry_t *r)
{
    reader_pool_t seen, want;
    seen.gen = ck_pr_load_64(&r->pool.gen);
    /* gen before head: a pop between the two loads then fails the CAS.
     * (Compiler-only on x86; loads are not reordered with loads.) */
    ck_pr_fence_load();
    seen.head = ck_pr_load_64(&r->pool.head);
    while (seen.head != 0) {
        bt__registry_reader_t *top = (bt__registry_reader_t *)(uintptr_t)seen.head;
        want.head = ck_pr_load_64(&top->pool_next);
        want.gen = seen.gen + 1;
        /* Locked cmpxchg16b, a full barrier: takes top only if neither
         * head nor gen changed, so the link read above is still top's.
         * On failure, refreshes seen with the current pair. */
        if (ck_pr_cas_64_2_value((uint64_t *)&r->pool, (uint64_t *)&seen, (uint64_t *)&want,
                                 (uint64_t *)&seen)) {
            BT_TSAN_ACQUIRE(top); /* pairs with the release in pool_push */
            return top;
        }
    }
    return NULL;
}

/* Lock-free; any thread. */
static void pool_push(bt__registry_t *r, bt__registry_reader_t *rd)
{
    BT_TSAN_RELEASE(rd); /* the next thread to pop rd sees our use of it */
    uint64_t head = ck_pr_load_64(&r->pool.head);
    do {
        ck_pr_store_64(&rd->pool_next, head);
        /* Locked cmpxchg, a full barrier: orders the link store (and the
         * end of our last epoch section) before rd becomes poppable. */
    } while (!ck_pr_cas_64_value(&r->pool.head, head, (uint64_t)(uintptr_t)rd, &head));
}

/* The epoch-protected lookup. Only the thread holding rd. */
static int lookup(bt__registry_reader_t *rd, const name_key_t *k, bt_ref_t *out)
{
    bt__registry_t *r = rd->reg;
    /* Marks the record active (a locked exchange on x86, then a fence) and
     * snapshots the global epoch, before any load of the table below. */
    ck_epoch_begin(&rd->rec, NULL);
    ck_hs_t *t = ck_pr_load_ptr(&r->table);
    BT_TSAN_ACQUIRE(t); /* pairs with the release in rebuild */
    const entry_t *e = ck_hs_get(t, k->hash, k);
    bt_ref_t ref = BT_REF_NONE;
    if (e != NULL) {
        BT_TSAN_ACQUIRE(e); /* key_equal did it already, unless ck_hs matched by address */
        ref = e->ref;
    }
    /* Our reads happen before any reclamation that waited for us. */
    BT_TSAN_RELEASE(&r->tsan_grace);
    /* Release fence, then clears active: every read above is done before a
     * writer can see this section over. */
    ck_epoch_end(&rd->rec, NULL);
    *out = ref;
    return e != NULL ? BT_OK : BT_ENOENT;
}

/* ---------------------------------------------------------------- writers */

static void yield_to_reader(ck_epoch_t *epoch, ck_epoch_record_t *busy, void *arg)
{
    (void)epoch;
    (void)busy;
    (void)arg;
    sched_yield();
}

/* Waits until every lookup that began before the call has ended, yielding
 * while one holds the grace period up, then frees everything deferred so
 * far. Lookups never wait for writers, so this cannot deadlock. Writer
 * only. */
static void wait_grace_and_reclaim(bt__registry_t *r)
{
    /* Full fences around the scan: our unlinks and publications before the
     * readers' flags are read. */
    ck_epoch_synchronize_wait(&r->epoch, yield_to_reader, NULL);
    BT_TSAN_ACQUIRE(&r->tsan_grace); /* pairs with the release in lookup */
    /* Everything deferred before the grace period began is now safe. */
    ck_epoch_reclaim(&r->wrec);
}

/* Frees whatever a grace period has made safe. Writer only. */
static void reclaim(bt__registry_t *r)
{
    ck_stack_t ready;
    ck_stack_init(&ready);
    /* Scans the records (after a full fence), may advance the epoch, and
     * moves the deferred objects no reader can reach onto ready, instead of
     * calling their callbacks, so that TSan's acquire below comes after the
     * scan that saw their readers finish. */
    ck_epoch_poll_deferred(&r->wrec, &ready);
    ck_stack_entry_t *s = ck_stack_batch_pop_npsc(&ready);
    if (s == NULL)
        return;
    BT_TSAN_ACQUIRE(&r->tsan_grace); /* pairs with the release in lookup */
    while (s != NULL) {
        ck_stack_entry_t *next = CK_STACK_NEXT(s);
        ck_epoch_entry_t *e = epoch_entry_of(s);
        e->function(e);
        s = next;
    }
}

static void writer_lock(bt__registry_t *r)
{
    pthread_mutex_lock(&r->mutex);
    tls_writer = r;
}

static void writer_unlock(bt__registry_t *r)
{
    reclaim(r);
    tls_writer = NULL;
    pthread_mutex_unlock(&r->mutex);
}

/* Replaces the table by a fresh one sized for the names it holds now: it
 * drops the tombstones and is the only way to shrink (see DESIGN). Costs
 * O(old capacity) and a grace period, at most once per peak/2 +
 * REBUILD_SLACK removals. On allocation failure the old table stays and is
 * retried after as many removals again. Writer only. */
static void rebuild(bt__registry_t *r)
{
    ck_hs_t *old = r->table;
    uint64_t n = r->count;
    r->peak = n;
    r->removed = 0;
    /* ck_hs grows at half full: room to double before it does. */
    ck_hs_t *t = table_new(r, n * 4 > MIN_CAPACITY ? (unsigned long)n * 4 : MIN_CAPACITY);
    if (t == NULL)
        return;
    ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
    void *object;
    while (ck_hs_next(old, &it, &object)) {
        const name_key_t *k = object;
        if (!ck_hs_put(t, k->hash, k)) {
            table_free_now(t);
            return;
        }
    }
    BT_TSAN_RELEASE(t); /* pairs with the acquire in lookup */
    /* Store fence: the new table's map and slots before the pointer that
     * publishes them. */
    ck_pr_fence_store();
    ck_pr_store_ptr(&r->table, t);
    wait_grace_and_reclaim(r);
    table_free_now(old);
}

int bt__registry_put(bt__registry_t *r, const char *name, bt_ref_t ref)
{
    if (r == NULL || ref == BT_REF_NONE)
        return BT_EINVAL;
    name_key_t k;
    int rc = make_key(r, name, &k);
    if (rc != BT_OK)
        return rc;

    /* Build the entry before taking the mutex. */
    size_t size = entry_size(k.len);
    entry_t *e = bt_alloc(size);
    if (e == NULL)
        return BT_ENOMEM;
    memcpy(e->text, name, k.len + 1);
    e->key = (name_key_t){.hash = k.hash, .len = k.len, .name = e->text};
    e->ref = ref;

    writer_lock(r);
    ck_hs_t *t = r->table;
    if (ck_hs_get(t, k.hash, &k) != NULL) {
        rc = BT_EEXIST;
    } else {
        BT_TSAN_RELEASE(e); /* pairs with the acquires in key_equal and lookup */
        /* Store fence: the entry's contents before the slot store inside
         * ck_hs_put that makes it reachable. */
        ck_pr_fence_store();
        /* With duplicates ruled out, it fails only if the set could not
         * grow to make room. */
        if (!ck_hs_put(t, k.hash, &e->key)) {
            rc = BT_ENOMEM;
        } else {
            uint64_t n = r->count + 1;
            ck_pr_store_64(&r->count, n);
            if (n > r->peak)
                r->peak = n;
        }
    }
    writer_unlock(r);
    if (rc != BT_OK)
        entry_free_now(e);
    return rc;
}

int bt__registry_remove(bt__registry_t *r, const char *name, bt_ref_t expected)
{
    if (r == NULL)
        return BT_EINVAL;
    name_key_t k;
    int rc = make_key(r, name, &k);
    if (rc != BT_OK)
        return rc;

    writer_lock(r);
    ck_hs_t *t = r->table;
    entry_t *e = ck_hs_get(t, k.hash, &k);
    if (e == NULL || (expected != BT_REF_NONE && e->ref != expected)) {
        rc = BT_ENOENT;
    } else {
        void *gone = ck_hs_remove(t, k.hash, &k);
        CHECK(gone == &e->key);
        ck_pr_store_64(&r->count, r->count - 1);
        /* Lookups that found e before the remove may still read it. */
        ck_epoch_call(&r->wrec, &e->retire, entry_reclaim);
        if (++r->removed >= r->peak / 2 + REBUILD_SLACK)
            rebuild(r);
    }
    writer_unlock(r);
    return rc;
}

/* ------------------------------------------------------------- lookups */

int bt__registry_get(bt__registry_t *r, const char *name, bt_ref_t *out)
{
    if (r == NULL || out == NULL)
        return BT_EINVAL;
    *out = BT_REF_NONE;
    name_key_t k;
    int rc = make_key(r, name, &k);
    if (rc != BT_OK)
        return rc;
    bt__registry_reader_t *rd = pool_pop(r);
    if (rd == NULL && (rd = reader_new(r)) == NULL)
        return BT_ENOMEM;
    rc = lookup(rd, &k, out);
    pool_push(r, rd);
    return rc;
}

int bt__registry_reader_acquire(bt__registry_t *r, bt__registry_reader_t **out)
{
    if (r == NULL || out == NULL)
        return BT_EINVAL;
    bt__registry_reader_t *rd = pool_pop(r);
    if (rd == NULL && (rd = reader_new(r)) == NULL)
        return BT_ENOMEM;
    *out = rd;
    return BT_OK;
}

void bt__registry_reader_release(bt__registry_reader_t *rd)
{
    if (rd != NULL)
        pool_push(rd->reg, rd);
}

int bt__registry_reader_get(bt__registry_reader_t *rd, const char *name, bt_ref_t *out)
{
    if (rd == NULL || out == NULL)
        return BT_EINVAL;
    *out = BT_REF_NONE;
    name_key_t k;
    int rc = make_key(rd->reg, name, &k);
    if (rc != BT_OK)
        return rc;
    return lookup(rd, &k, out);
}

size_t bt__registry_count(bt__registry_t *r)
{
    return r != NULL ? (size_t)ck_pr_load_64(&r->count) : 0;
}

void bt__registry_stats(bt__registry_t *r, bt__registry_stats_t *out)
{
    *out = (bt__registry_stats_t){0};
    if (r == NULL)
        return;
    out->names = (size_t)ck_pr_load_64(&r->count);
    out->readers = (size_t)ck_pr_load_64(&r->readers);
    out->table_bytes = (size_t)ck_pr_load_64(&r->table_bytes);
}

/* ------------------------------------------------------------- lifecycle */

int bt__registry_create(bt__registry_t **out)
{
    if (out == NULL)
        return BT_EINVAL;
    void *base;
    bt__registry_t *r = alloc_aligned(sizeof *r, &base);
    if (r == NULL)
        return BT_ENOMEM;
    r->base = base;
    if (pthread_mutex_init(&r->mutex, NULL) != 0) {
        free_aligned(base, sizeof *r);
        return BT_ENOMEM;
    }
    ck_epoch_init(&r->epoch);
    ck_epoch_register(&r->epoch, &r->wrec, NULL);
    r->seed = make_seed(r);

    bt__registry_t *saved = tls_writer;
    tls_writer = r;
    r->table = table_new(r, MIN_CAPACITY);
    tls_writer = saved;
    if (r->table == NULL) {
        pthread_mutex_destroy(&r->mutex);
        free_aligned(base, sizeof *r);
        return BT_ENOMEM;
    }
    *out = r;
    return BT_OK;
}

void bt__registry_destroy(bt__registry_t *r)
{
    if (r == NULL)
        return;
    bt__registry_t *saved = tls_writer;
    tls_writer = r;
    BT_TSAN_ACQUIRE(&r->tsan_grace); /* every lookup has ended: the caller's contract */
    /* Waits for a grace period (at once: no section is active) and frees
     * the removed entries still deferred. */
    ck_epoch_barrier(&r->wrec);

    ck_hs_t *t = r->table;
    ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
    void *object;
    while (ck_hs_next(t, &it, &object))
        entry_free_now((entry_t *)object);
    table_free_now(t);
    CHECK(r->table_bytes == 0);

    /* Every record but the writers' is a reader's, pooled or not. */
    ck_stack_entry_t *s = CK_STACK_FIRST(&r->epoch.records);
    while (s != NULL) {
        ck_stack_entry_t *next = CK_STACK_NEXT(s);
        bt__registry_reader_t *rd = ck_epoch_record_ct(record_of(s));
        if (rd != NULL)
            free_aligned(rd->base, sizeof *rd);
        s = next;
    }
    tls_writer = saved;
    pthread_mutex_destroy(&r->mutex);
    free_aligned(r->base, sizeof *r);
}
