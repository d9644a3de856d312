/*
 * wheel.c: a hierarchical timing wheel with occupancy bitmaps, so that
 * insert and cancel are O(1) and the next tick with work is found without
 * visiting idle ticks.
 *
 * DESIGN
 * Time is counted in ticks. Level L (0..5) has 64 slots, each spanning a
 * block of 64^L ticks, so the wheel sees 64^6 ticks ahead. A timer with
 * deadline d, placed when the time is n, goes to the smallest level L at
 * which its block d >> 6L is fewer than 64 blocks after the current block
 * n >> 6L, in slot (d >> 6L) & 63. So a level 0 slot holds timers of one
 * deadline, and a level L > 0 slot holds timers whose block starts at most
 * 63 blocks in the future. When the time reaches the start of that block
 * the slot is emptied and each timer is placed again relative to the new
 * time; it lands on a lower level. A deadline beyond the range goes to the
 * top level's farthest block and is placed again when that block starts.
 * Only a level 0 slot ever fires, at its own tick, so no timer fires early.
 *
 * Each level has a 64-bit occupancy bitmap. The next tick with work on a
 * level is found by rotating its bitmap so that the slot after the current
 * one is bit 0 and counting trailing zeros; the minimum over the levels is
 * bt__wheel_next_tick(). Advance jumps from one such tick to the next, so
 * an idle stretch costs nothing however long, and a timer thread can sleep
 * until the next tick instead of ticking.
 *
 * At one tick, the slots of the levels whose block starts there are
 * emptied first, then the level 0 slot of that tick is expired. A timer
 * moved down lands in a block after the current one on levels above 0, so
 * the order among those levels does not matter; but one whose deadline is
 * that very tick lands in the level 0 slot about to expire, which is why
 * level 0 comes last. A timer inserted with a deadline not after the
 * current time waits on a separate due list, which the next advance hands
 * back first.
 *
 * Order: moving timers down appends them behind timers inserted straight
 * into the same slot later, so a slot's list is not always in insertion
 * order. Every insert therefore takes a sequence number, and a slot is
 * sorted by it as it expires (a natural merge sort, O(n log r) for r
 * ascending runs: usually one per lane, see below). Slots expire in tick order, so the expired list
 * is in deadline order, ties in insertion order. The list is handed back
 * rather than passed to a callback, so no callback can re-enter the wheel
 * in the middle of an advance: the caller re-inserts periodic timers after.
 *
 * Lanes: a slot is four lists, not one; a timer's lane is its sequence
 * number mod 4. Walking a long slot (a cascade at a million timers moves
 * tens of thousands) is pointer chasing, one cache miss after another. The
 * four lanes are walked side by side, each next timer prefetched as soon as
 * its address is read, so four misses are in flight at once: about 4x
 * faster expiry at a million timers on the bench, for a slot of one cache
 * line instead of 16 bytes. Insert and cancel touch one lane.
 *
 * Why not a binary heap: O(log n) insert and cancel, each step a likely
 * cache miss at a million timers. bench/timer/bench_timer.c compares them.
 */
#include "timer/wheel.h"

#include <stdio.h>
#include <stdlib.h>

_Static_assert(BT_WHEEL_SLOTS == 64, "the occupancy bitmaps are uint64_t");
_Static_assert(BT_WHEEL_LEVELS <= 10, "levels beyond 64 bits of ticks");
_Static_assert((BT_WHEEL_LANES & (BT_WHEEL_LANES - 1)) == 0, "lanes: a power of two");

#define BITS      BT_WHEEL_SLOT_BITS
#define MASK      ((uint64_t)BT_WHEEL_SLOTS - 1)
#define TOP       (BT_WHEEL_LEVELS - 1)
#define BIT(slot) ((uint64_t)1 << (slot))

enum { IDLE = 0, IN_DUE, IN_SLOT }; /* bt__wtimer_t.state */

/* Always-on check for misuse that would corrupt the lists (a timer never
 * zeroed, or time beyond BT_WHEEL_NOW_MAX). Not BT_ASSERT from
 * core/internal.h: the wheel links without the runtime core (tests, bench). */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (__builtin_expect(!(cond), 0))                                                          \
            check_failed(#cond, __LINE__);                                                         \
    } while (0)

__attribute__((noreturn, cold)) static void check_failed(const char *cond, int line)
{
    fprintf(stderr, "baton: timer wheel check failed: %s (%s:%d)\n", cond, __FILE__, line);
    abort();
}

#define LANE(t) ((unsigned)((t)->seq & (BT_WHEEL_LANES - 1)))

static inline void slot_append(bt__wslot_t *s, bt__wtimer_t *t)
{
    unsigned k = LANE(t);
    t->next = NULL;
    t->prev = s->tail[k];
    if (s->tail[k] != NULL)
        s->tail[k]->next = t;
    else
        s->head[k] = t;
    s->tail[k] = t;
}

static inline void slot_unlink(bt__wslot_t *s, bt__wtimer_t *t)
{
    unsigned k = LANE(t);
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        s->head[k] = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    else
        s->tail[k] = t->prev;
}

static inline bool slot_empty(const bt__wslot_t *s)
{
    bool empty = true;
    for (unsigned k = 0; k < BT_WHEEL_LANES; k++)
        empty &= s->head[k] == NULL;
    return empty;
}

/* Puts t, pending with t->deadline >= w->now, in the slot that must be
 * processed first for it (see DESIGN). A deadline equal to now goes to the
 * level 0 slot of now: only during an advance, just before that slot. */
static void place(bt__wheel_t *w, bt__wtimer_t *t)
{
    uint64_t d = t->deadline;
    uint64_t n = w->now;
    uint64_t delta = d - n;
    unsigned level;
    uint64_t block;

    if (delta <= MASK) {
        level = 0;
        block = d;
    } else {
        /* The level at which delta spans fewer than 64 blocks; the blocks
         * of d and n may then still be 64 apart, in which case one up. */
        level = (unsigned)(63 - __builtin_clzll(delta)) / BITS;
        if (level < BT_WHEEL_LEVELS && (d >> (BITS * level)) - (n >> (BITS * level)) > MASK)
            level++;
        if (level < BT_WHEEL_LEVELS) {
            block = d >> (BITS * level);
        } else {
            level = TOP; /* beyond the range: the farthest block */
            block = (n >> (BITS * TOP)) + MASK;
        }
    }
    unsigned slot = (unsigned)(block & MASK);
    t->state = IN_SLOT;
    t->level = (uint8_t)level;
    t->slot = (uint8_t)slot;
    slot_append(&w->slots[level][slot], t);
    w->occupied[level] |= BIT(slot);
}

/* The first tick after now at which some slot has work, or UINT64_MAX. */
static uint64_t next_work(const bt__wheel_t *w)
{
    uint64_t best = UINT64_MAX;
    for (unsigned level = 0; level < BT_WHEEL_LEVELS; level++) {
        unsigned shift = BITS * level;
        uint64_t cur = w->now >> shift;
        /* The soonest this or any higher level can have work. */
        if (((cur + 1) << shift) >= best)
            break;
        uint64_t bits = w->occupied[level];
        if (bits == 0)
            continue;
        /* Rotate so that bit 0 is the slot of block cur + 1. Every occupied
         * slot's block is in (cur, cur + 63], so the first set bit found
         * names the nearest one. */
        unsigned from = (unsigned)((cur + 1) & MASK);
        uint64_t rot = from != 0 ? (bits >> from) | (bits << (64 - from)) : bits;
        uint64_t tick = (cur + 1 + (uint64_t)__builtin_ctzll(rot)) << shift;
        if (tick < best)
            best = tick;
    }
    return best;
}

static inline bool before(const bt__wtimer_t *a, const bt__wtimer_t *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static bt__wtimer_t *merge(bt__wtimer_t *a, bt__wtimer_t *b)
{
    bt__wtimer_t *head = NULL;
    bt__wtimer_t **tail = &head;
    while (a != NULL && b != NULL) {
        if (before(b, a)) {
            *tail = b;
            b = b->next;
        } else {
            *tail = a;
            a = a->next;
        }
        tail = &(*tail)->next;
    }
    *tail = a != NULL ? a : b;
    return head;
}

/* Sorts a NULL-terminated list by (deadline, seq), keys being unique.
 * Natural merge sort with power-of-two bins: splits the list into its
 * ascending runs and merges them like a binary counter, so r runs cost
 * O(n log r) and a sorted list one pass. bins[i] is set for i < used. */
static bt__wtimer_t *sort_list(bt__wtimer_t *list)
{
    bt__wtimer_t *bins[64];
    unsigned used = 0;
    while (list != NULL) {
        bt__wtimer_t *run = list;
        bt__wtimer_t *last = list;
        while (last->next != NULL && before(last, last->next))
            last = last->next;
        list = last->next;
        if (used == 0 && list == NULL)
            return run; /* already sorted */
        last->next = NULL;
        unsigned i = 0;
        for (; i < used && bins[i] != NULL; i++) {
            run = merge(bins[i], run);
            bins[i] = NULL;
        }
        bins[i] = run;
        if (i == used)
            used++;
    }
    bt__wtimer_t *out = NULL;
    for (unsigned i = 0; i < used; i++)
        if (bins[i] != NULL)
            out = merge(bins[i], out);
    return out;
}

/* Walks the lanes of s side by side, calling visit on each timer; the
 * next timer of each lane is prefetched (for writing) as soon as its
 * address is known, BT_WHEEL_LANES visits before it is needed. visit may
 * overwrite next. */
#define WALK_LANES(s, t, visit)                                                                    \
    do {                                                                                           \
        bt__wtimer_t *cur_[BT_WHEEL_LANES];                                                        \
        for (unsigned k_ = 0; k_ < BT_WHEEL_LANES; k_++)                                           \
            cur_[k_] = (s)->head[k_];                                                              \
        for (bool more_ = true; more_;) {                                                          \
            more_ = false;                                                                         \
            for (unsigned k_ = 0; k_ < BT_WHEEL_LANES; k_++) {                                     \
                bt__wtimer_t *t = cur_[k_];                                                        \
                if (t == NULL)                                                                     \
                    continue;                                                                      \
                more_ = true;                                                                      \
                cur_[k_] = t->next;                                                                \
                if (cur_[k_] != NULL)                                                              \
                    __builtin_prefetch(cur_[k_], 1);                                               \
                visit;                                                                             \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* Empties s and places each of its timers again, relative to w->now. */
static void cascade(bt__wheel_t *w, bt__wslot_t *s)
{
    bt__wslot_t moving = *s;
    *s = (bt__wslot_t){{NULL}, {NULL}};
    WALK_LANES(&moving, t, place(w, t));
}

/* Marks the timers of s not pending, sorts them, empties s and appends
 * them at *tail. Returns how many. */
static size_t expire_slot(bt__wslot_t *s, bt__wtimer_t ***tail)
{
    size_t n = 0;
    /* First pass, lanes side by side: brings every timer into the cache,
     * so that the sort after it chases pointers in cache. */
    WALK_LANES(s, t, (t->state = IDLE, t->prev = NULL, n++));

    bt__wtimer_t *list = NULL;
    bt__wtimer_t **link = &list;
    for (unsigned k = 0; k < BT_WHEEL_LANES; k++) {
        if (s->head[k] != NULL) {
            *link = s->head[k];
            link = &s->tail[k]->next;
        }
    }
    *s = (bt__wslot_t){{NULL}, {NULL}};

    bt__wtimer_t *t = sort_list(list); /* one run per lane, usually */
    **tail = t;
    for (; t != NULL; t = t->next)
        *tail = &t->next;
    return n;
}

void bt__wheel_init(bt__wheel_t *w, uint64_t now_tick)
{
    CHECK(now_tick <= BT_WHEEL_NOW_MAX);
    *w = (bt__wheel_t){.now = now_tick};
}

size_t bt__wheel_deinit(bt__wheel_t *w, bt__wtimer_t **pending /* OUT, may be NULL */)
{
    bt__wtimer_t *head = NULL;
    size_t n = 0;
    for (int level = -1; level < BT_WHEEL_LEVELS; level++) {
        for (unsigned slot = 0; slot < (level < 0 ? 1 : BT_WHEEL_SLOTS); slot++) {
            bt__wslot_t *s = level < 0 ? &w->due : &w->slots[level][slot];
            WALK_LANES(s, t, (t->state = IDLE, t->prev = NULL, t->next = head, head = t, n++));
            *s = (bt__wslot_t){{NULL}, {NULL}};
        }
    }
    CHECK(n == w->count);
    w->count = 0;
    for (unsigned level = 0; level < BT_WHEEL_LEVELS; level++)
        w->occupied[level] = 0;
    if (pending != NULL)
        *pending = head;
    return n;
}

int bt__wheel_insert(bt__wheel_t *w, bt__wtimer_t *t, uint64_t deadline_tick)
{
    if (t->state != IDLE)
        return BT_EEXIST;
    t->deadline = deadline_tick;
    t->seq = w->seq++;
    if (deadline_tick <= w->now) {
        t->state = IN_DUE;
        slot_append(&w->due, t);
    } else {
        place(w, t);
    }
    w->count++;
    return BT_OK;
}

int bt__wheel_cancel(bt__wheel_t *w, bt__wtimer_t *t)
{
    if (t->state == IDLE)
        return BT_ENOENT;
    CHECK(w->count > 0);
    if (t->state == IN_DUE) {
        slot_unlink(&w->due, t);
    } else {
        CHECK(t->state == IN_SLOT && t->level < BT_WHEEL_LEVELS && t->slot < BT_WHEEL_SLOTS);
        bt__wslot_t *s = &w->slots[t->level][t->slot];
        slot_unlink(s, t);
        if (slot_empty(s))
            w->occupied[t->level] &= ~BIT(t->slot);
    }
    t->state = IDLE;
    t->next = t->prev = NULL;
    w->count--;
    return BT_OK;
}

size_t bt__wheel_advance(bt__wheel_t *w, uint64_t now_tick, bt__wtimer_t **expired /* OUT */)
{
    CHECK(now_tick <= BT_WHEEL_NOW_MAX);
    bt__wtimer_t *head = NULL;
    bt__wtimer_t **tail = &head;
    size_t n = 0;

    /* Deadlines at or before the old time: earlier than any slot's. */
    if (!slot_empty(&w->due))
        n += expire_slot(&w->due, &tail);

    while (now_tick > w->now) {
        uint64_t tick = next_work(w);
        if (tick > now_tick)
            break;
        /* Nothing happens between the old time and tick, so jump. */
        w->now = tick;

        /* Levels whose block starts at tick (tick > 0 here). */
        unsigned top = (unsigned)__builtin_ctzll(tick) / BITS;
        if (top > TOP)
            top = TOP;
        for (unsigned level = top; level > 0; level--) {
            unsigned slot = (unsigned)((tick >> (BITS * level)) & MASK);
            if ((w->occupied[level] & BIT(slot)) == 0)
                continue;
            w->occupied[level] &= ~BIT(slot);
            cascade(w, &w->slots[level][slot]); /* to lower levels: d - tick < 64^level */
        }

        unsigned slot = (unsigned)(tick & MASK);
        if (w->occupied[0] & BIT(slot)) {
            w->occupied[0] &= ~BIT(slot);
            n += expire_slot(&w->slots[0][slot], &tail);
        }
    }
    if (now_tick > w->now)
        w->now = now_tick;

    w->count -= n;
    *expired = head;
    return n;
}

uint64_t bt__wheel_next_tick(const bt__wheel_t *w)
{
    if (!slot_empty(&w->due))
        return w->now;
    return next_work(w);
}
