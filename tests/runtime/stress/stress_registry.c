/*
 * stress_registry.c: the name registry under concurrent writers and
 * lock-free readers. Checks, in two scenarios:
 *  - every successful lookup returns a ref that was bound to that name at
 *    some time (a ref encodes its name's index and a sequence number that
 *    must already have been issued);
 *  - a writer that holds a name always finds its own ref under it, cannot
 *    have it removed by another ref, and can remove it itself;
 *  - readers from short-lived threads leave no records behind, and the
 *    registry ends empty with its table shrunk back;
 *  - nothing crashes or races (run it under ASan and TSan).
 * A plain executable so that it runs under ThreadSanitizer.
 */
#include "registry/registry.h"

#include "core/tsan.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#ifdef BT_TSAN
#define WRITER_OPS 10000
#define BULK       6000
#define ROUNDS     60
#else
#define WRITER_OPS 100000
#define BULK       20000
#define ROUNDS     300
#endif
#define SMALL       300 /* grows a fresh 64-slot table four times */
#define SMALL_EVERY 50

/* Under AddressSanitizer, fill freed memory with 0xff: libck is not
 * instrumented, so a reader probing a hash map freed too early would
 * otherwise read stale but plausible data instead of crashing. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "max_free_fill_size=1048576:free_fill_byte=255";
}

#define NAMES   64 /* shared names writers fight over */
#define WRITERS 4
#define READERS 4 /* half with a dedicated reader, half with plain gets */
#define HOLD    4 /* names a writer holds at most */

static bt__registry_t *reg;
static uint64_t issued;   /* atomic: the last sequence number handed out */
static uint32_t stop;     /* atomic: readers return once set */
static uint64_t failures; /* atomic */
static uint64_t lookups, hits;

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        if (__atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED) <= 10)                              \
            fprintf(stderr, __VA_ARGS__);                                                          \
    } while (0)

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A ref names its binding: bits 63..40 the name's index + 1 (shared names
 * 1..NAMES, bulk names above), bits 39..0 a fresh sequence number. */
#define SEQ_BITS 40
static bt_ref_t make_ref(uint32_t index)
{
    uint64_t seq = __atomic_add_fetch(&issued, 1, __ATOMIC_RELEASE);
    return ((uint64_t)(index + 1) << SEQ_BITS) | seq;
}

static void name_of(uint32_t index, char *buf, size_t size)
{
    if (index < NAMES)
        snprintf(buf, size, "svc/%u", index);
    else
        snprintf(buf, size, "bulk/%u", index - NAMES);
}

/* Checks a lookup's result against the name's index. */
static void check_lookup(uint32_t index, int rc, bt_ref_t ref)
{
    __atomic_add_fetch(&lookups, 1, __ATOMIC_RELAXED);
    if (rc == BT_ENOENT) {
        if (ref != BT_REF_NONE)
            FAIL("miss on %u left ref %llx\n", index, (unsigned long long)ref);
        return;
    }
    if (rc != BT_OK) {
        FAIL("lookup of %u returned %d\n", index, rc);
        return;
    }
    __atomic_add_fetch(&hits, 1, __ATOMIC_RELAXED);
    uint64_t seq = ref & ((1ull << SEQ_BITS) - 1);
    if ((ref >> SEQ_BITS) != index + 1u || seq == 0 ||
        seq > __atomic_load_n(&issued, __ATOMIC_ACQUIRE))
        FAIL("lookup of %u returned ref %llx, never bound to it\n", index, (unsigned long long)ref);
}

/* ---------------------------------------------------------------- readers */

typedef struct {
    uint64_t seed;
    uint32_t range; /* indexes 0..range-1 */
    bool dedicated;
} reader_arg;

static void *reader(void *p)
{
    reader_arg *a = p;
    bt__registry_reader_t *rd = NULL;
    if (a->dedicated && bt__registry_reader_acquire(reg, &rd) != BT_OK) {
        FAIL("reader_acquire failed\n");
        return NULL;
    }
    char name[32];
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        for (int i = 0; i < 64; i++) {
            uint32_t index = (uint32_t)(next_rand(&a->seed) % a->range);
            name_of(index, name, sizeof name);
            bt_ref_t ref = 77;
            int rc = rd != NULL ? bt__registry_reader_get(rd, name, &ref)
                                : bt__registry_get(reg, name, &ref);
            check_lookup(index, rc, ref);
        }
    }
    bt__registry_reader_release(rd);
    return NULL;
}

/* Threads that live for a few lookups each, two at a time: HTTP handlers,
 * say. */
static void *short_lived(void *p)
{
    reader_arg *a = p;
    char name[32];
    for (int i = 0; i < 20; i++) {
        uint32_t index = (uint32_t)(next_rand(&a->seed) % a->range);
        name_of(index, name, sizeof name);
        bt_ref_t ref = 77;
        int rc = bt__registry_get(reg, name, &ref);
        check_lookup(index, rc, ref);
    }
    return NULL;
}

static void *spawner(void *p)
{
    reader_arg *a = p;
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        pthread_t th[2];
        reader_arg args[2];
        for (int i = 0; i < 2; i++) {
            args[i] = (reader_arg){.seed = next_rand(&a->seed) | 1, .range = a->range};
            pthread_create(&th[i], NULL, short_lived, &args[i]);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
    }
    return NULL;
}

/* ---------------------------------------------------------------- writers */

typedef struct {
    uint64_t seed;
    uint32_t ops;
} writer_arg;

static void release_name(uint32_t index, bt_ref_t ref)
{
    char name[32];
    name_of(index, name, sizeof name);
    /* Nobody else can have removed it: every writer removes by its own ref. */
    int rc = bt__registry_remove(reg, name, ref);
    if (rc != BT_OK)
        FAIL("remove of my %s returned %d\n", name, rc);
}

static void *writer(void *p)
{
    writer_arg *a = p;
    uint32_t held[HOLD];
    bt_ref_t held_ref[HOLD];
    int nheld = 0;
    char name[32];
    for (uint32_t op = 0; op < a->ops; op++) {
        uint32_t index = (uint32_t)(next_rand(&a->seed) % NAMES);
        name_of(index, name, sizeof name);
        bt_ref_t ref = make_ref(index);
        int rc = bt__registry_put(reg, name, ref);
        if (rc == BT_EEXIST)
            continue;
        if (rc != BT_OK) {
            FAIL("put %s returned %d\n", name, rc);
            continue;
        }
        /* The name is ours until we remove it. */
        bt_ref_t got = 0;
        if (bt__registry_get(reg, name, &got) != BT_OK || got != ref)
            FAIL("%s: put %llx, got %llx\n", name, (unsigned long long)ref,
                 (unsigned long long)got);
        if (bt__registry_remove(reg, name, ref ^ (1ull << 63)) != BT_ENOENT)
            FAIL("%s: removed by a ref it was not bound to\n", name);
        if (nheld == HOLD) {
            release_name(held[0], held_ref[0]);
            for (int i = 1; i < HOLD; i++) {
                held[i - 1] = held[i];
                held_ref[i - 1] = held_ref[i];
            }
            nheld--;
        }
        held[nheld] = index;
        held_ref[nheld++] = ref;
    }
    while (nheld > 0) {
        nheld--;
        release_name(held[nheld], held_ref[nheld]);
    }
    return NULL;
}

/* Registers names of its own, then removes them, round after round: the
 * table grows (ck_hs replaces its map), is rebuilt and shrinks, all while
 * the readers probe it. Every SMALL_EVERY-th round is BULK names, the
 * others SMALL names, for many grows and rebuilds of small tables. */
static void *bulk_writer(void *p)
{
    (void)p;
    char name[32];
    bt_ref_t *refs = bt_alloc(BULK * sizeof *refs);
    if (refs == NULL) {
        FAIL("out of memory\n");
        return NULL;
    }
    for (uint32_t round = 0; round < ROUNDS; round++) {
        uint32_t n = round % SMALL_EVERY == 0 ? BULK : SMALL;
        for (uint32_t i = 0; i < n; i++) {
            name_of(NAMES + i, name, sizeof name);
            refs[i] = make_ref(NAMES + i);
            int rc = bt__registry_put(reg, name, refs[i]);
            if (rc != BT_OK)
                FAIL("put %s returned %d\n", name, rc);
        }
        for (uint32_t i = 0; i < n; i++)
            release_name(NAMES + i, refs[i]);
    }
    bt_free(refs, BULK * sizeof *refs);
    return NULL;
}

/* -------------------------------------------------------------- scenarios */

static int run(const char *title, bool bulk)
{
    __atomic_store_n(&failures, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&stop, 0, __ATOMIC_RELAXED);
    lookups = hits = 0;
    if (bt__registry_create(&reg) != BT_OK) {
        printf("%s: create failed\n", title);
        return 1;
    }
    bt__registry_stats_t st;
    bt__registry_stats(reg, &st);
    size_t empty_bytes = st.table_bytes;
    uint32_t range = bulk ? NAMES + BULK : NAMES;

    pthread_t rth[READERS], wth[WRITERS], sth, bth;
    reader_arg rargs[READERS], sarg = {.seed = 0x5eed, .range = range};
    writer_arg wargs[WRITERS];
    for (int i = 0; i < READERS; i++) {
        rargs[i] = (reader_arg){.seed = 0x9e3779b9u * (i + 1), .range = range, .dedicated = i % 2};
        pthread_create(&rth[i], NULL, reader, &rargs[i]);
    }
    pthread_create(&sth, NULL, spawner, &sarg);
    for (int i = 0; i < WRITERS; i++) {
        wargs[i] = (writer_arg){.seed = 0x2545f491u * (i + 7), .ops = WRITER_OPS};
        pthread_create(&wth[i], NULL, writer, &wargs[i]);
    }
    if (bulk)
        pthread_create(&bth, NULL, bulk_writer, NULL);

    for (int i = 0; i < WRITERS; i++)
        pthread_join(wth[i], NULL);
    if (bulk)
        pthread_join(bth, NULL);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < READERS; i++)
        pthread_join(rth[i], NULL);
    pthread_join(sth, NULL);

    bt__registry_stats(reg, &st);
    if (st.names != 0)
        FAIL("%zu names left after every writer released its own\n", st.names);
    /* Records: the dedicated readers, the plain readers and two short-lived
     * threads at a time, plus the writers' own checks. */
    if (st.readers > READERS + 2 + WRITERS)
        FAIL("%zu reader records for at most %d concurrent lookups\n", st.readers,
             READERS + 2 + WRITERS);
    if (st.table_bytes > 4 * empty_bytes)
        FAIL("table holds %zu bytes when empty (fresh: %zu)\n", st.table_bytes, empty_bytes);
    bt__registry_destroy(reg);

    uint64_t f = __atomic_load_n(&failures, __ATOMIC_RELAXED);
    printf("%s: %llu lookups, %llu hits, %zu reader records, %llu failures\n", title,
           (unsigned long long)lookups, (unsigned long long)hits, st.readers,
           (unsigned long long)f);
    return f != 0;
}

int main(void)
{
    int fails = 0;
    fails += run("shared names", false);
    fails += run("shared names with bulk growth and shrink", true);
    printf("%d passed, %d failed\n", 2 - fails, fails);
    return fails != 0;
}
