/*
 * wheel.h: a hierarchical timing wheel, the data structure under the
 * runtime's timers. Pure: no threads, no locks, no clock reads. The caller
 * serialises every call on one wheel (the runtime holds a mutex) and owns
 * the clock: it converts its time to ticks and tells the wheel when time
 * has passed with bt__wheel_advance().
 *
 * Costs: insert and cancel are O(1); bt__wheel_next_tick() is O(levels);
 * an advance costs O(levels) per tick at which some slot has work, plus
 * O(levels) per pending timer over its lifetime (cascades), plus sorting
 * the timers that share one expiry tick by insertion order (a merge of a
 * few already sorted runs, in the common case). Memory: the wheel is about
 * 24 KiB; each timer is the caller's, embedded in its own struct.
 *
 * Timers are intrusive: the caller embeds a bt__wtimer_t and finds its
 * struct again from the pointer (container_of). The wheel never allocates
 * and never frees; it takes no ownership of timers.
 */
#ifndef BT_TIMER_WHEEL_H
#define BT_TIMER_WHEEL_H

#include <baton/baton.h> /* error codes */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BT_WHEEL_SLOT_BITS 6
#define BT_WHEEL_SLOTS     (1u << BT_WHEEL_SLOT_BITS) /* per level, one bit each in a uint64_t */
#define BT_WHEEL_LEVELS    6
/* Deadlines up to this many ticks ahead are placed exactly; later ones wait
 * in the top level and are placed again when it turns (never fired early). */
#define BT_WHEEL_RANGE ((uint64_t)1 << (BT_WHEEL_SLOT_BITS * BT_WHEEL_LEVELS))
/* The wheel's time may not pass this tick (arithmetic headroom). Deadlines
 * may be anything, UINT64_MAX included. */
#define BT_WHEEL_NOW_MAX ((uint64_t)1 << 62)

/* A timer, embedded by the caller. Zero it (or bt__wtimer_init) before its
 * first insert. While pending, every field belongs to the wheel; the caller
 * may read deadline. After it expires, next links the expired list. */
typedef struct bt__wtimer {
    struct bt__wtimer *next;
    struct bt__wtimer *prev;
    uint64_t deadline; /* tick at or after which it fires */
    uint64_t seq;      /* insertion order, breaks deadline ties */
    uint8_t state;     /* 0 = not pending; private otherwise */
    uint8_t level;
    uint8_t slot;
} bt__wtimer_t;

/* One slot: a few doubly-linked lists (lanes; a timer's lane is seq mod
 * BT_WHEEL_LANES) with O(1) append and unlink. Lanes are walked side by
 * side so that their cache misses overlap (see wheel.c). One cache line. */
#define BT_WHEEL_LANES 4
typedef struct bt__wslot {
    bt__wtimer_t *head[BT_WHEEL_LANES];
    bt__wtimer_t *tail[BT_WHEEL_LANES];
} bt__wslot_t;

/* The wheel; the caller owns the storage (bt__wheel_init/deinit). */
typedef struct bt__wheel {
    uint64_t now;                       /* every tick <= now has been processed */
    uint64_t seq;                       /* next insertion number */
    size_t count;                       /* pending timers */
    uint64_t occupied[BT_WHEEL_LEVELS]; /* bit s: slots[level][s] is non-empty */
    bt__wslot_t due;                    /* inserted with deadline <= now */
    bt__wslot_t slots[BT_WHEEL_LEVELS][BT_WHEEL_SLOTS];
} bt__wheel_t;

/* Marks t not pending; equivalent to zeroing it. */
static inline void bt__wtimer_init(bt__wtimer_t *t)
{
    *t = (bt__wtimer_t){0};
}

/* Initialises an empty wheel whose time is now_tick (at most
 * BT_WHEEL_NOW_MAX). Cannot fail. */
void bt__wheel_init(bt__wheel_t *w, uint64_t now_tick);

/* Empties the wheel: every pending timer becomes not pending and, if
 * pending is not NULL, is linked (through next, in no particular order)
 * into *pending so the caller can free what it owns. Returns how many
 * there were. The wheel may be initialised again afterwards. */
size_t bt__wheel_deinit(bt__wheel_t *w, bt__wtimer_t **pending /* OUT, may be NULL */);

/* Schedules t to fire at deadline_tick. Does not take ownership of t: the
 * caller keeps it alive until it expires or is cancelled. A deadline at or
 * before the wheel's time fires at the next advance. O(1). Fails with
 * BT_EEXIST, changing nothing, if t is already pending. */
int bt__wheel_insert(bt__wheel_t *w, bt__wtimer_t *t, uint64_t deadline_tick);

/* Removes pending timer t; it will not fire. O(1). Fails with BT_ENOENT if
 * t is not pending (never inserted, already expired or cancelled). t must
 * not be pending in another wheel. */
int bt__wheel_cancel(bt__wheel_t *w, bt__wtimer_t *t);

/* Whether t is inserted and has neither expired nor been cancelled. */
static inline bool bt__wheel_pending(const bt__wtimer_t *t)
{
    return t->state != 0;
}

/* Moves the wheel's time to now_tick (a value at or below the current time
 * leaves it unchanged; above BT_WHEEL_NOW_MAX aborts) and hands back every
 * timer with deadline <= now_tick: *expired gets a NULL-terminated list
 * linked through next, in deadline order, ties in insertion order. Those
 * timers are no longer pending; the caller may insert them again (after
 * reading next). Returns the number of timers in the list. */
size_t bt__wheel_advance(bt__wheel_t *w, uint64_t now_tick, bt__wtimer_t **expired /* OUT */);

/* The earliest tick at which bt__wheel_advance() has work (an expiry, or
 * moving timers to a finer level), never later than the earliest pending
 * deadline: a timer thread may sleep until then. The current time if some
 * timer is already due; UINT64_MAX if the wheel is empty. O(levels). */
uint64_t bt__wheel_next_tick(const bt__wheel_t *w);

/* Pending timers. */
static inline size_t bt__wheel_count(const bt__wheel_t *w)
{
    return w->count;
}

/* The wheel's time: the last tick advanced to. */
static inline uint64_t bt__wheel_now(const bt__wheel_t *w)
{
    return w->now;
}

#endif
