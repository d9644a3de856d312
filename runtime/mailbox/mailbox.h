/*
 * mailbox.h: an actor's mailbox, an intrusive lock-free multi-producer,
 * single-consumer queue built on Concurrency Kit's ck_pr atomics.
 *
 * The queue always holds one node that has already been consumed (the
 * "tail"): at first the stub embedded in the mailbox, later the message
 * popped last, which stays readable until the next pop frees it. That is
 * what lets a handler read its message during dispatch without a copy.
 *
 * The low bit of head marks the mailbox empty. The push that clears it learns
 * that it found the mailbox empty and must schedule the actor; the consumer
 * sets it again only by a successful bt__mbox_mark_empty(). So exactly one
 * party at a time owns the right to run the actor.
 */
#ifndef BT_MAILBOX_MAILBOX_H
#define BT_MAILBOX_MAILBOX_H

#include <baton/baton.h>

#include <stdbool.h>

typedef struct bt_mailbox {
    /* Written by every producer (one exchange per push). The embedding
     * struct decides the cache-line layout: bt_actor_t puts head at the end
     * of its producer-side line and tail at the start of the next. */
    bt_msg_t *head;
    /* Consumer only. */
    bt_msg_t *tail;
    bt_msg_t stub;
} bt_mailbox_t;

/* Initialises an empty mailbox. Not thread-safe. */
void bt__mbox_init(bt_mailbox_t *q);

/* Appends msg. Never allocates, never blocks: one atomic exchange.
 * Returns true if the mailbox was marked empty, in which case the caller
 * must schedule the consumer. Safe from any number of threads at once. */
bool bt__mbox_push(bt_mailbox_t *q, bt_msg_t *msg);

/* Appends first..last, already linked in order through bt_link_, with one
 * exchange: a sender's batch lands contiguously. Returns as
 * bt__mbox_push(). */
bool bt__mbox_push_chain(bt_mailbox_t *q, bt_msg_t *first, bt_msg_t *last);

/* Takes the next message, or NULL if none is visible yet (a producer may be
 * between its exchange and its link store). The returned message stays
 * valid until the next pop or bt__mbox_deinit(); the previous one is freed
 * here. Single consumer only. */
bt_msg_t *bt__mbox_pop(bt_mailbox_t *q);

/* Marks the mailbox empty if it is. Returns true if it is now marked empty
 * (the consumer gives up the actor; the next push schedules it), false if
 * messages arrived (the consumer must keep running it). Single consumer. */
bool bt__mbox_mark_empty(bt_mailbox_t *q);

/* Frees the last consumed message. The mailbox must be drained and no
 * producer may push again. Single consumer. */
void bt__mbox_deinit(bt_mailbox_t *q);

#endif
