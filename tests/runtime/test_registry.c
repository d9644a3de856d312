/* test_registry.c: the name registry on its own, mostly single-threaded
 * (the concurrent cases are in stress/stress_registry.c). */
#include "registry/registry.h"

#include "mem/alloc.h"

#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static bt__registry_t *reg;

static void setup(void)
{
    cr_assert_eq(bt__registry_create(&reg), BT_OK);
}

static void teardown(void)
{
    bt__registry_destroy(reg);
    reg = NULL;
}

TestSuite(registry, .init = setup, .fini = teardown);

static bt_ref_t lookup(const char *name)
{
    bt_ref_t ref = 42;
    int rc = bt__registry_get(reg, name, &ref);
    cr_assert(rc == BT_OK || rc == BT_ENOENT, "get(%s) returned %d", name, rc);
    cr_assert(rc == BT_OK || ref == BT_REF_NONE, "a miss must clear *out");
    return ref;
}

Test(registry, put_then_get_returns_the_ref)
{
    cr_assert_eq(bt__registry_put(reg, "logger", 7), BT_OK);
    cr_assert_eq(lookup("logger"), 7);
    cr_assert_eq(bt__registry_count(reg), 1);
}

Test(registry, get_of_an_unknown_name_is_enoent)
{
    bt_ref_t ref = 99;
    cr_assert_eq(bt__registry_get(reg, "nobody", &ref), BT_ENOENT);
    cr_assert_eq(ref, BT_REF_NONE);
}

Test(registry, put_of_a_taken_name_is_eexist_and_keeps_the_first_ref)
{
    cr_assert_eq(bt__registry_put(reg, "db", 1), BT_OK);
    cr_assert_eq(bt__registry_put(reg, "db", 2), BT_EEXIST);
    cr_assert_eq(bt__registry_put(reg, "db", 1), BT_EEXIST, "even to the same ref");
    cr_assert_eq(lookup("db"), 1);
    cr_assert_eq(bt__registry_count(reg), 1);
}

Test(registry, get_after_remove_is_enoent)
{
    cr_assert_eq(bt__registry_put(reg, "timer", 5), BT_OK);
    cr_assert_eq(bt__registry_remove(reg, "timer", BT_REF_NONE), BT_OK);
    cr_assert_eq(lookup("timer"), BT_REF_NONE);
    cr_assert_eq(bt__registry_count(reg), 0);
}

Test(registry, a_name_can_be_registered_again_after_remove)
{
    cr_assert_eq(bt__registry_put(reg, "worker", 5), BT_OK);
    cr_assert_eq(bt__registry_remove(reg, "worker", 5), BT_OK);
    cr_assert_eq(bt__registry_put(reg, "worker", 6), BT_OK);
    cr_assert_eq(lookup("worker"), 6);
}

Test(registry, conditional_remove_releases_only_its_own_binding)
{
    cr_assert_eq(bt__registry_put(reg, "svc", 10), BT_OK);
    cr_assert_eq(bt__registry_remove(reg, "svc", 11), BT_ENOENT, "bound to another ref");
    cr_assert_eq(lookup("svc"), 10, "a failed remove changes nothing");
    cr_assert_eq(bt__registry_remove(reg, "svc", 10), BT_OK);
    cr_assert_eq(lookup("svc"), BT_REF_NONE);
}

Test(registry, stopped_actor_does_not_release_its_successors_name)
{
    /* Actor 1 held the name, lost it, and actor 2 took it; actor 1 then
     * stops and releases "its" name. */
    cr_assert_eq(bt__registry_put(reg, "leader", 1), BT_OK);
    cr_assert_eq(bt__registry_remove(reg, "leader", BT_REF_NONE), BT_OK);
    cr_assert_eq(bt__registry_put(reg, "leader", 2), BT_OK);
    cr_assert_eq(bt__registry_remove(reg, "leader", 1), BT_ENOENT);
    cr_assert_eq(lookup("leader"), 2);
}

Test(registry, remove_of_an_unknown_name_is_enoent)
{
    cr_assert_eq(bt__registry_remove(reg, "ghost", BT_REF_NONE), BT_ENOENT);
    cr_assert_eq(bt__registry_remove(reg, "ghost", 3), BT_ENOENT);
}

Test(registry, rejects_invalid_names_and_arguments)
{
    char long_name[BT__REGISTRY_NAME_MAX + 2];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0'; /* 256 bytes */
    bt_ref_t ref;

    const char *bad[] = {NULL, "", long_name};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(bt__registry_put(reg, bad[i], 1), BT_EINVAL);
        cr_assert_eq(bt__registry_get(reg, bad[i], &ref), BT_EINVAL);
        cr_assert_eq(bt__registry_remove(reg, bad[i], BT_REF_NONE), BT_EINVAL);
    }
    cr_assert_eq(bt__registry_put(reg, "ok", BT_REF_NONE), BT_EINVAL, "BT_REF_NONE is never bound");
    cr_assert_eq(bt__registry_put(NULL, "ok", 1), BT_EINVAL);
    cr_assert_eq(bt__registry_get(reg, "ok", NULL), BT_EINVAL);
    cr_assert_eq(bt__registry_count(reg), 0);
}

Test(registry, accepts_a_name_of_exactly_the_maximum_length)
{
    char name[BT__REGISTRY_NAME_MAX + 1];
    memset(name, 'n', BT__REGISTRY_NAME_MAX);
    name[BT__REGISTRY_NAME_MAX] = '\0';
    cr_assert_eq(bt__registry_put(reg, name, 3), BT_OK);
    cr_assert_eq(lookup(name), 3);
    cr_assert_eq(bt__registry_remove(reg, name, 3), BT_OK);
}

Test(registry, copies_the_name)
{
    char buf[16] = "mutable";
    cr_assert_eq(bt__registry_put(reg, buf, 4), BT_OK);
    strcpy(buf, "changed");
    cr_assert_eq(lookup("mutable"), 4);
    cr_assert_eq(lookup("changed"), BT_REF_NONE);
}

Test(registry, names_that_share_a_prefix_are_distinct)
{
    const char *names[] = {"a", "ab", "abc", "abcdefgh", "abcdefghi", "abcdefgH", "b"};
    size_t n = sizeof names / sizeof names[0];
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(bt__registry_put(reg, names[i], i + 1), BT_OK, "%s", names[i]);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(lookup(names[i]), i + 1, "%s", names[i]);
    cr_assert_eq(lookup("abcd"), BT_REF_NONE);
}

#define MANY 100000

Test(registry, grows_to_100k_names_and_back)
{
    char name[32];
    bt__registry_stats_t st;
    bt__registry_stats(reg, &st);
    size_t empty_bytes = st.table_bytes;

    for (uint64_t i = 0; i < MANY; i++) {
        snprintf(name, sizeof name, "actor-%llu", (unsigned long long)i);
        cr_assert_eq(bt__registry_put(reg, name, i + 1), BT_OK, "%s", name);
    }
    cr_assert_eq(bt__registry_count(reg), MANY);
    bt__registry_stats(reg, &st);
    cr_assert_gt(st.table_bytes, MANY * sizeof(void *), "the table grew");
    for (uint64_t i = 0; i < MANY; i++) {
        snprintf(name, sizeof name, "actor-%llu", (unsigned long long)i);
        cr_assert_eq(lookup(name), i + 1, "%s", name);
    }

    /* Remove the even names first, check the odd ones survive, then the rest. */
    for (uint64_t i = 0; i < MANY; i += 2) {
        snprintf(name, sizeof name, "actor-%llu", (unsigned long long)i);
        cr_assert_eq(bt__registry_remove(reg, name, i + 1), BT_OK, "%s", name);
    }
    for (uint64_t i = 0; i < MANY; i++) {
        snprintf(name, sizeof name, "actor-%llu", (unsigned long long)i);
        cr_assert_eq(lookup(name), i % 2 ? i + 1 : BT_REF_NONE, "%s", name);
    }
    for (uint64_t i = 1; i < MANY; i += 2) {
        snprintf(name, sizeof name, "actor-%llu", (unsigned long long)i);
        cr_assert_eq(bt__registry_remove(reg, name, BT_REF_NONE), BT_OK, "%s", name);
    }
    cr_assert_eq(bt__registry_count(reg), 0);
    cr_assert_eq(lookup("actor-0"), BT_REF_NONE);
    cr_assert_eq(lookup("actor-99999"), BT_REF_NONE);

    /* The table shrank back: at most a few times the empty one's size
     * (the last replaced table may await its grace period). */
    bt__registry_stats(reg, &st);
    cr_assert_leq(st.table_bytes, 4 * empty_bytes, "%zu bytes held, empty table has %zu",
                  st.table_bytes, empty_bytes);

    cr_assert_eq(bt__registry_put(reg, "actor-7", 70), BT_OK, "names are reusable");
    cr_assert_eq(lookup("actor-7"), 70);
}

Test(registry, churn_of_unique_names_keeps_the_table_small)
{
    char name[32];
    bt__registry_stats_t st;
    bt__registry_stats(reg, &st);
    size_t empty_bytes = st.table_bytes;
    cr_assert_eq(bt__registry_put(reg, "resident", 1), BT_OK);
    for (uint64_t i = 0; i < 50000; i++) {
        snprintf(name, sizeof name, "run-%llu", (unsigned long long)i);
        cr_assert_eq(bt__registry_put(reg, name, i + 2), BT_OK);
        cr_assert_eq(bt__registry_remove(reg, name, i + 2), BT_OK);
    }
    cr_assert_eq(lookup("resident"), 1);
    bt__registry_stats(reg, &st);
    cr_assert_leq(st.table_bytes, 4 * empty_bytes);
}

Test(registry, dedicated_reader_sees_puts_and_removes)
{
    bt__registry_reader_t *rd;
    cr_assert_eq(bt__registry_reader_acquire(reg, &rd), BT_OK);
    bt_ref_t ref;
    cr_assert_eq(bt__registry_reader_get(rd, "cache", &ref), BT_ENOENT);
    cr_assert_eq(bt__registry_put(reg, "cache", 8), BT_OK);
    cr_assert_eq(bt__registry_reader_get(rd, "cache", &ref), BT_OK);
    cr_assert_eq(ref, 8);
    cr_assert_eq(bt__registry_remove(reg, "cache", 8), BT_OK);
    cr_assert_eq(bt__registry_reader_get(rd, "cache", &ref), BT_ENOENT);
    cr_assert_eq(bt__registry_reader_get(rd, "", &ref), BT_EINVAL);
    bt__registry_reader_release(rd);
}

Test(registry, released_readers_are_reused)
{
    bt__registry_reader_t *a, *b, *c;
    cr_assert_eq(bt__registry_reader_acquire(reg, &a), BT_OK);
    cr_assert_eq(bt__registry_reader_acquire(reg, &b), BT_OK);
    cr_assert_neq(a, b, "two holders never share a record");
    bt__registry_reader_release(a);
    cr_assert_eq(bt__registry_reader_acquire(reg, &c), BT_OK);
    cr_assert_eq(c, a);
    bt__registry_reader_release(b);
    bt__registry_reader_release(c);

    bt__registry_stats_t st;
    bt__registry_stats(reg, &st);
    cr_assert_eq(st.readers, 2);
    bt_ref_t ref;
    bt__registry_get(reg, "x", &ref);
    bt__registry_stats(reg, &st);
    cr_assert_eq(st.readers, 2, "plain lookups borrow pooled records");
}

static void *one_lookup(void *arg)
{
    bt_ref_t ref = BT_REF_NONE;
    int rc = bt__registry_get(arg, "shared", &ref);
    return (void *)(uintptr_t)(rc == BT_OK && ref == 12);
}

Test(registry, threads_that_come_and_go_leave_no_reader_behind)
{
    cr_assert_eq(bt__registry_put(reg, "shared", 12), BT_OK);
    for (int i = 0; i < 200; i++) {
        pthread_t th;
        void *ok;
        cr_assert_eq(pthread_create(&th, NULL, one_lookup, reg), 0);
        pthread_join(th, &ok);
        cr_assert(ok != NULL, "lookup %d failed", i);
    }
    bt__registry_stats_t st;
    bt__registry_stats(reg, &st);
    cr_assert_eq(st.readers, 1, "%zu records for 200 threads one after another", st.readers);
}

Test(registry, destroy_frees_readers_that_were_never_released)
{
    /* LeakSanitizer (ASan builds) checks that nothing is left. */
    bt__registry_reader_t *rd;
    cr_assert_eq(bt__registry_reader_acquire(reg, &rd), BT_OK);
    cr_assert_eq(bt__registry_put(reg, "left-over", 1), BT_OK);
    cr_assert_eq(bt__registry_put(reg, "removed", 2), BT_OK);
    cr_assert_eq(bt__registry_remove(reg, "removed", 2), BT_OK);
}

Test(registry, put_reports_enomem_and_binds_nothing)
{
    bt__alloc_fail_after(0);
    int rc = bt__registry_put(reg, "starved", 1);
    bt__alloc_fail_after(-1);
    cr_assert_eq(rc, BT_ENOMEM);
    cr_assert_eq(lookup("starved"), BT_REF_NONE);
    cr_assert_eq(bt__registry_count(reg), 0);
}

Test(registry, growth_that_cannot_allocate_reports_enomem)
{
    /* Fill until some put needs to grow the table while allocations fail:
     * every put then either succeeds or reports BT_ENOMEM, and the
     * bindings stay exactly the successful ones. */
    char name[32];
    int ok = 0, nomem = 0;
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof name, "n%d", i);
        bt__alloc_fail_after(1); /* the entry allocation succeeds, growing does not */
        int rc = bt__registry_put(reg, name, (bt_ref_t)i + 1);
        bt__alloc_fail_after(-1);
        cr_assert(rc == BT_OK || rc == BT_ENOMEM, "put returned %d", rc);
        if (rc == BT_OK)
            ok++;
        else
            nomem++;
        cr_assert_eq(lookup(name), rc == BT_OK ? (bt_ref_t)i + 1 : BT_REF_NONE);
    }
    cr_assert_gt(nomem, 0, "the table never needed to grow");
    cr_assert_eq(bt__registry_count(reg), (size_t)ok);
}

Test(registry, create_reports_enomem_without_leaking)
{
    int failures = 0;
    for (long n = 0;; n++) {
        bt__registry_t *r = NULL;
        bt__alloc_fail_after(n);
        int rc = bt__registry_create(&r);
        bt__alloc_fail_after(-1);
        if (rc == BT_OK) {
            bt__registry_destroy(r);
            break;
        }
        cr_assert_eq(rc, BT_ENOMEM);
        cr_assert_null(r, "*out untouched on failure");
        failures++;
    }
    cr_assert_gt(failures, 0);
}

Test(registry, destroy_of_null_is_a_noop)
{
    bt__registry_destroy(NULL);
    cr_assert_eq(bt__registry_count(NULL), 0);
}
