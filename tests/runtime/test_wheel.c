/* test_wheel.c: the hierarchical timing wheel (runtime/timer/wheel.c) on its
 * own, checked against a plain reference model: the timers with deadline
 * <= now, sorted by (deadline, insertion order). */
#include "timer/wheel.h"

#include "mem/alloc.h"

#include <criterion/criterion.h>

#include <stdlib.h>

#define TICKS_L(level) ((uint64_t)1 << (BT_WHEEL_SLOT_BITS * (level))) /* block of a level */

typedef struct item {
    bt__wtimer_t tm;   /* the wheel's */
    uint32_t id;       /* index in the test's array */
    bool pending;      /* model: inserted, not yet fired or cancelled */
    uint64_t deadline; /* model */
    uint64_t order;    /* model: insertion order */
} item_t;

static item_t *item_of(bt__wtimer_t *t)
{
    return (item_t *)((char *)t - offsetof(item_t, tm));
}

static item_t *items_new(size_t n)
{
    item_t *items = bt_alloc_zeroed(n * sizeof(item_t));
    cr_assert_not_null(items);
    for (size_t i = 0; i < n; i++)
        items[i].id = (uint32_t)i;
    return items;
}

static void items_free(item_t *items, size_t n)
{
    bt_free(items, n * sizeof(item_t));
}

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t *s, uint64_t bound)
{
    return bound == 0 ? 0 : rng_next(s) % bound;
}

/* A deadline from now that exercises every level, block boundaries, the
 * past and the region beyond the wheel's range. */
static uint64_t random_deadline(uint64_t *s, uint64_t now)
{
    switch (rng_below(s, 10)) {
    case 0: /* due already */
        return now - rng_below(s, now < 100 ? now + 1 : 100);
    case 1: /* level 0 */
        return now + 1 + rng_below(s, 63);
    case 2: /* exactly on a block boundary of some level */
    {
        uint64_t block = TICKS_L(rng_below(s, BT_WHEEL_LEVELS + 1));
        return (now / block + 1 + rng_below(s, 3)) * block;
    }
    case 3: /* just around a level's reach */
    {
        uint64_t reach = TICKS_L(1 + rng_below(s, BT_WHEEL_LEVELS));
        return now + reach - 2 + rng_below(s, 4);
    }
    case 4: /* beyond the range */
        return now + BT_WHEEL_RANGE + rng_below(s, (uint64_t)1 << 40);
    default: /* anywhere inside, log-uniform */
        return now + 1 + rng_below(s, (uint64_t)1 << rng_below(s, 37));
    }
}

static int by_deadline_then_order(const void *a, const void *b)
{
    const item_t *x = *(item_t *const *)a;
    const item_t *y = *(item_t *const *)b;
    if (x->deadline != y->deadline)
        return x->deadline < y->deadline ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* The model beside the wheel. */
typedef struct model {
    bt__wheel_t w;
    item_t *items;
    size_t n;
    item_t **scratch; /* n entries */
    uint64_t order;
    size_t pending;
} model_t;

static void model_init(model_t *m, size_t n, uint64_t now)
{
    bt__wheel_init(&m->w, now);
    m->items = items_new(n);
    m->n = n;
    m->scratch = bt_alloc(n * sizeof(item_t *));
    cr_assert_not_null(m->scratch);
    m->order = 0;
    m->pending = 0;
}

static void model_deinit(model_t *m)
{
    bt__wheel_deinit(&m->w, NULL);
    bt_free(m->scratch, m->n * sizeof(item_t *));
    items_free(m->items, m->n);
}

static void model_insert(model_t *m, item_t *it, uint64_t deadline)
{
    cr_assert_not(it->pending);
    cr_assert_eq(bt__wheel_insert(&m->w, &it->tm, deadline), BT_OK);
    it->pending = true;
    it->deadline = deadline;
    it->order = m->order++;
    m->pending++;
}

static void model_cancel(model_t *m, item_t *it)
{
    cr_assert(it->pending);
    cr_assert_eq(bt__wheel_cancel(&m->w, &it->tm), BT_OK);
    it->pending = false;
    m->pending--;
}

/* The earliest model deadline, UINT64_MAX if none. */
static uint64_t model_earliest(const model_t *m)
{
    uint64_t e = UINT64_MAX;
    for (size_t i = 0; i < m->n; i++)
        if (m->items[i].pending && m->items[i].deadline < e)
            e = m->items[i].deadline;
    return e;
}

static void check_next_tick(const model_t *m)
{
    uint64_t nt = bt__wheel_next_tick(&m->w);
    uint64_t earliest = model_earliest(m);
    if (m->pending == 0) {
        cr_assert_eq(nt, UINT64_MAX, "empty wheel must report no next tick");
        return;
    }
    uint64_t now = bt__wheel_now(&m->w);
    cr_assert_leq(nt, earliest < now ? now : earliest, "next_tick %lu later than deadline %lu",
                  (unsigned long)nt, (unsigned long)earliest);
    cr_assert_geq(nt, now);
}

/* Advances the wheel and the model to `to` and checks that exactly the
 * model's due timers came back, in order. Returns how many. */
static size_t model_advance(model_t *m, uint64_t to)
{
    uint64_t before = bt__wheel_now(&m->w);
    size_t want = 0;
    for (size_t i = 0; i < m->n; i++)
        if (m->items[i].pending && m->items[i].deadline <= to)
            m->scratch[want++] = &m->items[i];
    qsort(m->scratch, want, sizeof(item_t *), by_deadline_then_order);

    bt__wtimer_t *list = (bt__wtimer_t *)(uintptr_t)1; /* must be overwritten */
    size_t got = bt__wheel_advance(&m->w, to, &list);
    cr_assert_eq(got, want, "advance %lu -> %lu: %zu expired, expected %zu", (unsigned long)before,
                 (unsigned long)to, got, want);
    size_t k = 0;
    for (bt__wtimer_t *t = list; t != NULL; t = t->next, k++) {
        cr_assert_lt(k, want);
        item_t *it = item_of(t);
        cr_assert_eq(it, m->scratch[k],
                     "expiry %zu: got timer %u (deadline %lu), expected %u "
                     "(deadline %lu)",
                     k, it->id, (unsigned long)it->deadline, m->scratch[k]->id,
                     (unsigned long)m->scratch[k]->deadline);
        cr_assert_not(bt__wheel_pending(t));
        it->pending = false;
    }
    cr_assert_eq(k, want);
    m->pending -= want;
    cr_assert_eq(bt__wheel_count(&m->w), m->pending);
    cr_assert_eq(bt__wheel_now(&m->w), to > before ? to : before);
    return want;
}

/* ---------------------------------------------------------------- tests */

Test(wheel, empty_wheel_has_no_next_tick)
{
    bt__wheel_t w;
    bt__wheel_init(&w, 1234);
    cr_assert_eq(bt__wheel_next_tick(&w), UINT64_MAX);
    cr_assert_eq(bt__wheel_count(&w), 0);
    bt__wtimer_t *list = (bt__wtimer_t *)(uintptr_t)1;
    cr_assert_eq(bt__wheel_advance(&w, (uint64_t)1 << 40, &list), 0);
    cr_assert_null(list);
    cr_assert_eq(bt__wheel_now(&w), (uint64_t)1 << 40);
    cr_assert_eq(bt__wheel_next_tick(&w), UINT64_MAX);
    cr_assert_eq(bt__wheel_deinit(&w, NULL), 0);
}

Test(wheel, fires_in_deadline_order_across_all_levels)
{
    /* Many timers at once, then advanced to the end by a mix of next_tick
     * steps, small steps and jumps; concatenated expiries must equal the
     * sorted reference and each timer must come out at the first advance
     * whose time reaches its deadline. */
    const size_t n = 4000;
    for (uint64_t seed = 1; seed <= 24; seed++) {
        uint64_t s = seed;
        model_t m;
        uint64_t start = seed % 3 == 0 ? 0 : rng_below(&s, (uint64_t)1 << 34);
        model_init(&m, n, start);
        uint64_t last = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t d = random_deadline(&s, start);
            model_insert(&m, &m.items[i], d);
            if (d > last)
                last = d;
        }
        while (m.pending > 0) {
            check_next_tick(&m);
            uint64_t now = bt__wheel_now(&m.w);
            uint64_t to;
            switch (rng_below(&s, 4)) {
            case 0:
                to = bt__wheel_next_tick(&m.w);
                break;
            case 1:
                to = now + rng_below(&s, 200);
                break;
            default:
                to = now + rng_below(&s, (uint64_t)1 << rng_below(&s, 42));
                break;
            }
            model_advance(&m, to < last ? to : last);
        }
        model_deinit(&m);
    }
}

Test(wheel, matches_the_model_under_mixed_insert_cancel_advance)
{
    /* Interleaved random operations; half the seeds draw deadlines from a
     * handful of values so that ties are common and arrive by different
     * routes (straight insert, cascade, due list). */
    const size_t n = 600;
    for (uint64_t seed = 100; seed < 164; seed++) {
        uint64_t s = seed;
        bool ties = seed & 1;
        model_t m;
        model_init(&m, n, rng_below(&s, 1 << 20));
        uint64_t tie_base = bt__wheel_now(&m.w);
        for (int op = 0; op < 4000; op++) {
            item_t *it = &m.items[rng_below(&s, n)];
            uint64_t now = bt__wheel_now(&m.w);
            unsigned what = (unsigned)rng_below(&s, 10);
            if (what < 5) {
                if (it->pending)
                    model_cancel(&m, it); /* cancel, then reinsert below */
                uint64_t d = ties ? tie_base + rng_below(&s, 8) * 1000 : random_deadline(&s, now);
                model_insert(&m, it, d);
            } else if (what < 7) {
                if (it->pending)
                    model_cancel(&m, it);
                else
                    cr_assert_eq(bt__wheel_cancel(&m.w, &it->tm), BT_ENOENT);
            } else {
                check_next_tick(&m);
                uint64_t to = rng_below(&s, 2)
                                  ? bt__wheel_next_tick(&m.w)
                                  : now + rng_below(&s, (uint64_t)1 << rng_below(&s, 38));
                if (to > BT_WHEEL_NOW_MAX)
                    to = now + 1;
                model_advance(&m, to);
                if (ties && rng_below(&s, 8) == 0)
                    tie_base = bt__wheel_now(&m.w) + rng_below(&s, 5000);
            }
        }
        model_deinit(&m);
    }
}

Test(wheel, fires_exactly_when_time_reaches_the_deadline_even_across_jumps)
{
    static const uint64_t starts[] = {0, 1, 63, 64, 4095, 12345, ((uint64_t)1 << 33) + 7};
    uint64_t dists[64];
    size_t nd = 0;
    for (unsigned level = 0; level <= BT_WHEEL_LEVELS; level++) {
        uint64_t b = TICKS_L(level);
        dists[nd++] = b;
        dists[nd++] = b + 1;
        if (b > 2)
            dists[nd++] = b - 1;
    }
    dists[nd++] = (uint64_t)1 << 40;
    dists[nd++] = ((uint64_t)1 << 45) + 3;

    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++) {
        for (size_t j = 0; j < nd; j++) {
            uint64_t d = starts[i] + dists[j];
            bt__wtimer_t *list;

            /* One jump to just before, then to the deadline. */
            bt__wheel_t w;
            bt__wtimer_t t = {0};
            bt__wheel_init(&w, starts[i]);
            cr_assert_eq(bt__wheel_insert(&w, &t, d), BT_OK);
            cr_assert_leq(bt__wheel_next_tick(&w), d);
            cr_assert_eq(bt__wheel_advance(&w, d - 1, &list), 0, "fired early: %lu + %lu",
                         (unsigned long)starts[i], (unsigned long)dists[j]);
            cr_assert(bt__wheel_pending(&t));
            cr_assert_eq(bt__wheel_advance(&w, d, &list), 1, "not fired at its deadline");
            cr_assert_eq(list, &t);
            cr_assert_null(t.next);

            /* Driven by next_tick only: it must land on d exactly. */
            bt__wheel_init(&w, starts[i]);
            cr_assert_eq(bt__wheel_insert(&w, &t, d), BT_OK);
            int steps = 0;
            for (;;) {
                uint64_t nt = bt__wheel_next_tick(&w);
                cr_assert_leq(nt, d);
                size_t got = bt__wheel_advance(&w, nt, &list);
                steps++;
                if (got == 1) {
                    cr_assert_eq(nt, d);
                    break;
                }
                cr_assert_eq(got, 0);
                cr_assert_lt(steps, 10000);
            }
            cr_assert_eq(bt__wheel_next_tick(&w), UINT64_MAX);

            /* One jump far past: fires once, at that advance. */
            bt__wheel_init(&w, starts[i]);
            cr_assert_eq(bt__wheel_insert(&w, &t, d), BT_OK);
            cr_assert_eq(bt__wheel_advance(&w, d + ((uint64_t)1 << 38), &list), 1);
            cr_assert_eq(bt__wheel_count(&w), 0);
        }
    }
}

Test(wheel, next_tick_is_never_late_and_advancing_to_it_makes_progress)
{
    for (uint64_t seed = 7; seed < 27; seed++) {
        uint64_t s = seed;
        model_t m;
        model_init(&m, 1500, rng_below(&s, (uint64_t)1 << 30));
        for (size_t i = 0; i < m.n; i++)
            model_insert(&m, &m.items[i], random_deadline(&s, bt__wheel_now(&m.w)));
        size_t calls = 0;
        while (m.pending > 0) {
            check_next_tick(&m);
            uint64_t nt = bt__wheel_next_tick(&m.w);
            model_advance(&m, nt);
            uint64_t after = bt__wheel_next_tick(&m.w);
            cr_assert(after > nt || after == UINT64_MAX, "no progress at tick %lu",
                      (unsigned long)nt);
            calls++;
        }
        /* Each call expires or moves down at least one timer, and a timer
         * moves at most once per level, plus once per range it waits. */
        cr_assert_leq(calls, m.n * (BT_WHEEL_LEVELS + 1 + 64) + 1);
        model_deinit(&m);
    }
}

Test(wheel, ties_fire_in_insertion_order)
{
    bt__wheel_t w;
    bt__wtimer_t t[6] = {{0}};
    bt__wtimer_t *list;
    const uint64_t d = 5000;
    bt__wheel_init(&w, 0);
    cr_assert_eq(bt__wheel_insert(&w, &t[0], d), BT_OK); /* level 2 */
    bt__wheel_advance(&w, 1000, &list);
    cr_assert_eq(bt__wheel_insert(&w, &t[1], d), BT_OK); /* level 1 */
    bt__wheel_advance(&w, 4990, &list);
    cr_assert_eq(bt__wheel_insert(&w, &t[2], d), BT_OK); /* level 0, before t[0..1] arrive */
    cr_assert_eq(bt__wheel_insert(&w, &t[3], d), BT_OK);
    cr_assert_eq(bt__wheel_advance(&w, d, &list), 4);
    for (int i = 0; i < 4; i++, list = list->next)
        cr_assert_eq(list, &t[i], "position %d", i);

    /* The due list: by deadline first, then insertion order. */
    cr_assert_eq(bt__wheel_insert(&w, &t[4], d - 10), BT_OK);
    cr_assert_eq(bt__wheel_insert(&w, &t[5], d - 10), BT_OK);
    cr_assert_eq(bt__wheel_insert(&w, &t[0], d - 20), BT_OK);
    cr_assert_eq(bt__wheel_next_tick(&w), d, "due timers: next tick is now");
    cr_assert_eq(bt__wheel_advance(&w, d, &list), 3);
    cr_assert_eq(list, &t[0]);
    cr_assert_eq(list->next, &t[4]);
    cr_assert_eq(list->next->next, &t[5]);
}

Test(wheel, cancels_pending_timers_at_every_level)
{
    bt__wheel_t w;
    uint64_t now = 777777;
    bt__wheel_init(&w, now);
    enum { N = BT_WHEEL_LEVELS + 3 };
    bt__wtimer_t t[N] = {{0}};
    uint64_t d[N];
    d[0] = now - 5; /* due list */
    for (unsigned level = 0; level < BT_WHEEL_LEVELS; level++)
        d[1 + level] = now + 3 * TICKS_L(level);
    d[N - 2] = now + 5 * BT_WHEEL_RANGE; /* beyond the range */
    d[N - 1] = UINT64_MAX;
    for (int i = 0; i < N; i++) {
        cr_assert_not(bt__wheel_pending(&t[i]));
        cr_assert_eq(bt__wheel_insert(&w, &t[i], d[i]), BT_OK);
        cr_assert(bt__wheel_pending(&t[i]));
        cr_assert_eq(bt__wheel_insert(&w, &t[i], d[i]), BT_EEXIST, "double insert");
    }
    cr_assert_eq(bt__wheel_count(&w), N);
    for (int i = N - 1; i >= 0; i--) {
        cr_assert_eq(bt__wheel_cancel(&w, &t[i]), BT_OK);
        cr_assert_not(bt__wheel_pending(&t[i]));
        cr_assert_eq(bt__wheel_cancel(&w, &t[i]), BT_ENOENT, "double cancel");
    }
    cr_assert_eq(bt__wheel_count(&w), 0);
    cr_assert_eq(bt__wheel_next_tick(&w), UINT64_MAX, "cancel must clear the occupancy bits");
    bt__wtimer_t *list;
    cr_assert_eq(bt__wheel_advance(&w, now + 10 * BT_WHEEL_RANGE, &list), 0);
    cr_assert_null(list);
}

Test(wheel, cancelled_timer_can_be_reinserted_with_a_new_deadline)
{
    bt__wheel_t w;
    bt__wtimer_t a = {0}, b = {0};
    bt__wtimer_t *list;
    bt__wheel_init(&w, 0);
    cr_assert_eq(bt__wheel_insert(&w, &a, 100000), BT_OK);
    cr_assert_eq(bt__wheel_insert(&w, &b, 100000), BT_OK);
    bt__wheel_advance(&w, 99000, &list); /* both have moved down by now */
    cr_assert_eq(bt__wheel_cancel(&w, &a), BT_OK);
    cr_assert_eq(bt__wheel_insert(&w, &a, 99500), BT_OK);
    cr_assert_eq(bt__wheel_advance(&w, 99499, &list), 0);
    cr_assert_eq(bt__wheel_advance(&w, 99500, &list), 1);
    cr_assert_eq(list, &a);
    cr_assert_eq(bt__wheel_cancel(&w, &a), BT_ENOENT, "an expired timer is not pending");
    /* A cancelled timer re-armed later than its old deadline. */
    cr_assert_eq(bt__wheel_cancel(&w, &b), BT_OK);
    cr_assert_eq(bt__wheel_insert(&w, &b, 100001), BT_OK);
    cr_assert_eq(bt__wheel_advance(&w, 100000, &list), 0);
    cr_assert_eq(bt__wheel_advance(&w, 100001, &list), 1);
    cr_assert_eq(list, &b);
}

Test(wheel, expired_timers_can_be_reinserted_as_periodic)
{
    bt__wheel_t w;
    bt__wtimer_t t[3] = {{0}};
    const uint64_t period[3] = {7, 100, 5000};
    uint64_t fired[3] = {0};
    bt__wheel_init(&w, 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(bt__wheel_insert(&w, &t[i], period[i]), BT_OK);
    while (bt__wheel_now(&w) < 500000) {
        uint64_t nt = bt__wheel_next_tick(&w);
        bt__wtimer_t *list;
        bt__wheel_advance(&w, nt, &list);
        while (list != NULL) {
            bt__wtimer_t *next = list->next; /* read before re-inserting */
            int i = (int)(list - t);
            fired[i]++;
            cr_assert_eq(list->deadline, fired[i] * period[i], "timer %d fired late or early", i);
            cr_assert_eq(nt, list->deadline);
            cr_assert_eq(bt__wheel_insert(&w, list, list->deadline + period[i]), BT_OK);
            list = next;
        }
    }
    for (int i = 0; i < 3; i++)
        cr_assert_eq(fired[i], bt__wheel_now(&w) / period[i]);
    cr_assert_eq(bt__wheel_deinit(&w, NULL), 3);
}

Test(wheel, deinit_hands_back_every_pending_timer)
{
    bt__wheel_t w;
    item_t *items = items_new(300);
    uint64_t s = 99;
    bt__wheel_init(&w, 50);
    for (int i = 0; i < 300; i++)
        cr_assert_eq(bt__wheel_insert(&w, &items[i].tm, random_deadline(&s, 50)), BT_OK);
    bt__wtimer_t *list;
    cr_assert_eq(bt__wheel_deinit(&w, &list), 300);
    int seen = 0;
    for (; list != NULL; list = list->next) {
        item_t *it = item_of(list);
        cr_assert_not(it->pending, "handed back twice");
        cr_assert_not(bt__wheel_pending(list));
        it->pending = true;
        seen++;
    }
    cr_assert_eq(seen, 300);
    items_free(items, 300);
}

Test(wheel, a_million_timers_insert_cancel_and_expire_correctly)
{
    const size_t n = 1000000;
    item_t *items = items_new(n);
    uint64_t s = 4242;
    bt__wheel_t w;
    uint64_t now = 1000;
    bt__wheel_init(&w, now);
    uint64_t last = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t d = now + 1 + rng_below(&s, (uint64_t)1 << rng_below(&s, 25));
        cr_assert_eq(bt__wheel_insert(&w, &items[i].tm, d), BT_OK);
        items[i].pending = true;
        if (d > last)
            last = d;
    }
    cr_assert_eq(bt__wheel_count(&w), n);
    size_t left = n;
    for (size_t i = 0; i < n; i++) {
        if (rng_below(&s, 2) == 0) {
            cr_assert_eq(bt__wheel_cancel(&w, &items[i].tm), BT_OK);
            items[i].pending = false;
            left--;
        }
    }
    cr_assert_eq(bt__wheel_count(&w), left);

    /* Advance in uneven jumps; every expiry must be a live timer, due,
     * not due before the previous advance, and in (deadline, seq) order. */
    size_t fired = 0;
    uint64_t prev_to = now;
    while (prev_to < last) {
        uint64_t to = prev_to + 1 + rng_below(&s, (uint64_t)1 << rng_below(&s, 22));
        bt__wtimer_t *list;
        size_t got = bt__wheel_advance(&w, to, &list);
        const bt__wtimer_t *prev = NULL;
        size_t k = 0;
        for (bt__wtimer_t *t = list; t != NULL; t = t->next, k++) {
            item_t *it = item_of(t);
            cr_assert(it->pending, "timer %u fired twice or after cancel", it->id);
            cr_assert(t->deadline <= to && t->deadline > prev_to);
            if (prev != NULL)
                cr_assert(prev->deadline < t->deadline ||
                          (prev->deadline == t->deadline && prev->seq < t->seq));
            it->pending = false;
            prev = t;
        }
        cr_assert_eq(k, got);
        fired += got;
        prev_to = to;
    }
    cr_assert_eq(fired, left);
    cr_assert_eq(bt__wheel_count(&w), 0);
    cr_assert_eq(bt__wheel_next_tick(&w), UINT64_MAX);
    items_free(items, n);
}
