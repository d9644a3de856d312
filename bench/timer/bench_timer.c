/*
 * bench_timer.c: the runtime's timing wheel (runtime/timer/wheel.c) against
 * an indexed binary min-heap, the usual alternative, side by side in one
 * process, at 10k, 100k and 1M live timers.
 *
 * DESIGN
 * Two workloads, each run once unreported as a warm-up and then five times;
 * the median is reported. Only the measured loop is timed; filling the
 * structure with the live timers is not.
 *  - timer_insert_cancel: the timeout pattern, where most timers are
 *    cancelled before they fire. One op = cancel a random live timer and
 *    insert it again with a new deadline, so the live count stays put.
 *  - timer_insert_expire: time moves to the next tick with work (the wheel's
 *    next_tick, the heap's minimum), every due timer is taken out, and each
 *    is inserted again with a new deadline. One op = one expiry plus its
 *    re-insert.
 * Deadlines are uniform in [now + 1, now + 2^16] ticks (about a minute at
 * 1 ms ticks), from the same random sequence for both implementations. The
 * heap breaks deadline ties by insertion order, as the wheel does, so both
 * deliver the same order. Each keeps its timers in one array and picks
 * them at random, so at 1M timers most accesses miss the cache, as they
 * would for timers embedded in callers' structs.
 *
 * Output, one line per measurement and one per ratio:
 *   RESULT workload=<w> impl=<wheel|heap> live=<n> metric=ns_per_op value=<v>
 *   RATIO workload=<w> live=<n> heap_over_wheel=<v>
 * --short runs small sizes and few ops (a smoke test for CTest). The program
 * exits non-zero if a structure is found inconsistent after a run.
 */
#include "timer/wheel.h"

#include "mem/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SPAN     ((uint64_t)1 << 16) /* deadlines are now + [1, SPAN] */
#define MAX_RUNS 5

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t rng_next(uint64_t *s) /* xorshift64* */
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static inline uint64_t rng_deadline(uint64_t *s, uint64_t now)
{
    return now + 1 + (rng_next(s) & (SPAN - 1));
}

static inline size_t rng_index(uint64_t *s, size_t n)
{
    return (size_t)(((rng_next(s) >> 32) * (uint64_t)n) >> 32);
}

static _Noreturn void die(const char *what)
{
    fprintf(stderr, "bench_timer: %s\n", what);
    exit(1);
}

static void *xalloc(size_t size)
{
    void *p = bt_alloc(size);
    if (p == NULL)
        die("out of memory");
    return p;
}

/* ------------------------------------------------- indexed binary heap */

typedef struct htimer {
    uint64_t deadline;
    uint64_t seq;
    size_t index; /* position in the heap; SIZE_MAX when not in it */
} htimer_t;

typedef struct heap {
    htimer_t **a;
    size_t n;
    size_t cap;
    uint64_t seq;
} heap_t;

static inline bool h_before(const htimer_t *x, const htimer_t *y)
{
    return x->deadline < y->deadline || (x->deadline == y->deadline && x->seq < y->seq);
}

static inline void h_set(heap_t *h, size_t i, htimer_t *t)
{
    h->a[i] = t;
    t->index = i;
}

static void h_sift_up(heap_t *h, size_t i, htimer_t *t)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!h_before(t, h->a[parent]))
            break;
        h_set(h, i, h->a[parent]);
        i = parent;
    }
    h_set(h, i, t);
}

static void h_sift_down(heap_t *h, size_t i, htimer_t *t)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h_before(h->a[c + 1], h->a[c]))
            c++;
        if (!h_before(h->a[c], t))
            break;
        h_set(h, i, h->a[c]);
        i = c;
    }
    h_set(h, i, t);
}

/* O(log n). The heap never grows here: cap is the live count. */
static void h_insert(heap_t *h, htimer_t *t, uint64_t deadline)
{
    if (h->n == h->cap)
        die("heap full");
    t->deadline = deadline;
    t->seq = h->seq++;
    h_sift_up(h, h->n++, t);
}

/* O(log n): the last element fills the hole and moves up or down. */
static void h_cancel(heap_t *h, htimer_t *t)
{
    size_t i = t->index;
    t->index = SIZE_MAX;
    htimer_t *last = h->a[--h->n];
    if (last == t)
        return;
    if (i > 0 && h_before(last, h->a[(i - 1) / 2]))
        h_sift_up(h, i, last);
    else
        h_sift_down(h, i, last);
}

static htimer_t *h_pop(heap_t *h)
{
    htimer_t *top = h->a[0];
    top->index = SIZE_MAX;
    htimer_t *last = h->a[--h->n];
    if (h->n > 0)
        h_sift_down(h, 0, last);
    return top;
}

/* ------------------------------------------------------------ the runs */

typedef struct setup {
    size_t live;
    size_t ops;
    bt__wheel_t *wheel;
    bt__wtimer_t *wt; /* live entries */
    heap_t heap;
    htimer_t *ht; /* live entries */
} setup_t;

static void fill_wheel(setup_t *s, uint64_t *rng)
{
    bt__wheel_init(s->wheel, 0);
    memset(s->wt, 0, s->live * sizeof(bt__wtimer_t));
    for (size_t i = 0; i < s->live; i++)
        bt__wheel_insert(s->wheel, &s->wt[i], rng_deadline(rng, 0));
}

static void fill_heap(setup_t *s, uint64_t *rng)
{
    s->heap.n = 0;
    s->heap.seq = 0;
    for (size_t i = 0; i < s->live; i++)
        h_insert(&s->heap, &s->ht[i], rng_deadline(rng, 0));
}

/* Each returns the measured nanoseconds per op. */

static double wheel_insert_cancel(setup_t *s, uint64_t seed)
{
    uint64_t rng = seed;
    fill_wheel(s, &rng);
    bt__wheel_t *w = s->wheel;
    uint64_t t0 = now_ns();
    for (size_t op = 0; op < s->ops; op++) {
        bt__wtimer_t *t = &s->wt[rng_index(&rng, s->live)];
        bt__wheel_cancel(w, t);
        bt__wheel_insert(w, t, rng_deadline(&rng, 0));
    }
    uint64_t t1 = now_ns();
    if (bt__wheel_count(w) != s->live)
        die("wheel: wrong count after insert_cancel");
    bt__wheel_deinit(w, NULL);
    return (double)(t1 - t0) / (double)s->ops;
}

static double heap_insert_cancel(setup_t *s, uint64_t seed)
{
    uint64_t rng = seed;
    fill_heap(s, &rng);
    heap_t *h = &s->heap;
    uint64_t t0 = now_ns();
    for (size_t op = 0; op < s->ops; op++) {
        htimer_t *t = &s->ht[rng_index(&rng, s->live)];
        h_cancel(h, t);
        h_insert(h, t, rng_deadline(&rng, 0));
    }
    uint64_t t1 = now_ns();
    if (h->n != s->live)
        die("heap: wrong count after insert_cancel");
    return (double)(t1 - t0) / (double)s->ops;
}

static double wheel_insert_expire(setup_t *s, uint64_t seed)
{
    uint64_t rng = seed;
    fill_wheel(s, &rng);
    bt__wheel_t *w = s->wheel;
    size_t done = 0;
    uint64_t t0 = now_ns();
    while (done < s->ops) {
        uint64_t now = bt__wheel_next_tick(w);
        bt__wtimer_t *list;
        done += bt__wheel_advance(w, now, &list);
        while (list != NULL) {
            bt__wtimer_t *t = list;
            list = t->next;
            if (t->deadline > now)
                die("wheel: fired early");
            bt__wheel_insert(w, t, rng_deadline(&rng, now));
        }
    }
    uint64_t t1 = now_ns();
    if (bt__wheel_count(w) != s->live)
        die("wheel: wrong count after insert_expire");
    bt__wheel_deinit(w, NULL);
    return (double)(t1 - t0) / (double)done;
}

static double heap_insert_expire(setup_t *s, uint64_t seed)
{
    uint64_t rng = seed;
    fill_heap(s, &rng);
    heap_t *h = &s->heap;
    size_t done = 0;
    uint64_t t0 = now_ns();
    while (done < s->ops) {
        uint64_t now = h->a[0]->deadline;
        /* Take out every due timer first, then re-insert, as the wheel's
         * caller does; re-inserted deadlines are > now anyway. */
        htimer_t *due = NULL;
        size_t k = 0;
        while (h->n > 0 && h->a[0]->deadline <= now) {
            htimer_t *t = h_pop(h);
            t->index = (size_t)(uintptr_t)due; /* borrow the field as a link */
            due = t;
            k++;
        }
        while (due != NULL) {
            htimer_t *t = due;
            due = (htimer_t *)(uintptr_t)t->index;
            h_insert(h, t, rng_deadline(&rng, now));
        }
        done += k;
    }
    uint64_t t1 = now_ns();
    if (h->n != s->live)
        die("heap: wrong count after insert_expire");
    return (double)(t1 - t0) / (double)done;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One warm-up, then `runs` measured runs; the median. */
static double measure(double (*fn)(setup_t *, uint64_t), setup_t *s, int runs)
{
    double v[MAX_RUNS];
    fn(s, 1);
    for (int r = 0; r < runs; r++)
        v[r] = fn(s, 0x9E3779B97F4A7C15ull * (uint64_t)(r + 2));
    qsort(v, (size_t)runs, sizeof v[0], cmp_double);
    return v[runs / 2];
}

int main(int argc, char **argv)
{
    bool short_mode = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--short") == 0) {
            short_mode = true;
        } else {
            fprintf(stderr, "usage: %s [--short]\n", argv[0]);
            return 2;
        }
    }
    static const size_t full_sizes[] = {10000, 100000, 1000000};
    static const size_t short_sizes[] = {1000, 10000};
    const size_t *sizes = short_mode ? short_sizes : full_sizes;
    size_t nsizes = short_mode ? 2 : 3;
    int runs = short_mode ? 3 : MAX_RUNS;

    static const struct {
        const char *name;
        double (*wheel)(setup_t *, uint64_t);
        double (*heap)(setup_t *, uint64_t);
    } workloads[] = {
        {"timer_insert_cancel", wheel_insert_cancel, heap_insert_cancel},
        {"timer_insert_expire", wheel_insert_expire, heap_insert_expire},
    };

    printf("# timing wheel vs indexed binary heap; median of %d runs after a warm-up; "
           "deadlines now+[1,%llu] ticks\n",
           runs, (unsigned long long)SPAN);
    for (size_t z = 0; z < nsizes; z++) {
        setup_t s = {.live = sizes[z]};
        s.ops = short_mode ? 20000 : (s.live < 1000000 ? 1000000 : s.live);
        s.wheel = xalloc(sizeof(bt__wheel_t));
        s.wt = xalloc(s.live * sizeof(bt__wtimer_t));
        s.ht = xalloc(s.live * sizeof(htimer_t));
        s.heap.a = xalloc(s.live * sizeof(htimer_t *));
        s.heap.cap = s.live;
        for (size_t k = 0; k < sizeof workloads / sizeof workloads[0]; k++) {
            double wv = measure(workloads[k].wheel, &s, runs);
            double hv = measure(workloads[k].heap, &s, runs);
            printf("RESULT workload=%s impl=wheel live=%zu metric=ns_per_op value=%.2f\n",
                   workloads[k].name, s.live, wv);
            printf("RESULT workload=%s impl=heap live=%zu metric=ns_per_op value=%.2f\n",
                   workloads[k].name, s.live, hv);
            printf("RATIO workload=%s live=%zu heap_over_wheel=%.2f\n", workloads[k].name, s.live,
                   hv / wv);
            fflush(stdout);
        }
        bt_free(s.heap.a, s.live * sizeof(htimer_t *));
        bt_free(s.ht, s.live * sizeof(htimer_t));
        bt_free(s.wt, s.live * sizeof(bt__wtimer_t));
        bt_free(s.wheel, sizeof(bt__wheel_t));
    }
    return 0;
}
