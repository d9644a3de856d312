/*
 * mailbox.c: intrusive MPSC queue with an "empty" mark in the head pointer.
 *
 * DESIGN
 * The algorithm is Vyukov's intrusive MPSC queue in the form Pony's runtime
 * uses (messageq.c): producers exchange head and then link the previous
 * node to the new one; the consumer follows links from tail. A producer
 * between its exchange and its link makes the queue look empty to the
 * consumer for a moment; bt__mbox_mark_empty() then fails (head != tail), so
 * the consumer keeps the actor scheduled and nothing is stranded.
 *
 * Why not ck_fifo_mpmc: in CK 0.7.1 it can report empty while items remain
 * when nodes are recycled, and it needs a node allocation per push. The
 * intrusive queue needs neither: the link lives in the message header.
 *
 * Memory ordering, once for the whole file:
 *  - push: the exchange orders the message's contents (written before) and
 *    the new head; the release store of prev->link publishes the message to
 *    the consumer. A chain's inner links are written before the exchange,
 *    so the same store publishes all of it.
 *  - pop: the load of tail->link is followed by an acquire fence before the
 *    message is read, pairing with the producer's release store.
 *  - mark_empty: a CAS of head from tail to tail|1; it succeeds only if no
 *    producer has exchanged head since the consumer's last pop.
 */
#include "mailbox/mailbox.h"

#include "mem/alloc.h"

#include "core/tsan.h"

#include <ck_pr.h>

#define EMPTY_BIT ((uintptr_t)1)

static inline bt_msg_t *mark(bt_msg_t *m)
{
    return (bt_msg_t *)((uintptr_t)m | EMPTY_BIT);
}

static inline bt_msg_t *unmark(bt_msg_t *m)
{
    return (bt_msg_t *)((uintptr_t)m & ~EMPTY_BIT);
}

void bt__mbox_init(bt_mailbox_t *q)
{
    q->stub.bt_link_ = NULL;
    q->stub.size = 0; /* size 0 marks the stub: never freed */
    q->tail = &q->stub;
    q->head = mark(&q->stub);
}

bool bt__mbox_push_chain(bt_mailbox_t *q, bt_msg_t *first, bt_msg_t *last)
{
    ck_pr_store_ptr(&last->bt_link_, NULL);
    BT_TSAN_RELEASE(last);
    /* Full barrier on x86 (xchg): orders the messages' contents and inner
     * links before the chain becomes reachable from head. */
    bt_msg_t *prev = ck_pr_fas_ptr(&q->head, last);
    bool was_empty = ((uintptr_t)prev & EMPTY_BIT) != 0;
    prev = unmark(prev);
    /* Release: the consumer that sees this link sees the chain. prev
     * cannot have been freed: the consumer frees a node only after it has
     * followed that node's link, which is this store. */
    ck_pr_fence_store();
    ck_pr_store_ptr(&prev->bt_link_, first);
    if (was_empty)
        BT_TSAN_ACQUIRE(q); /* pairs with the consumer's mark_empty */
    return was_empty;
}

bool bt__mbox_push(bt_mailbox_t *q, bt_msg_t *msg)
{
    return bt__mbox_push_chain(q, msg, msg);
}

/* Nodes with size 0 (the stub, and nodes the runtime embeds in an actor)
 * are not owned by the mailbox and are never freed. */
static inline void free_consumed(bt_msg_t *m)
{
    if (m->size != 0)
        bt_free(m, m->size);
}

bt_msg_t *bt__mbox_pop(bt_mailbox_t *q)
{
    bt_msg_t *tail = q->tail;
    bt_msg_t *next = ck_pr_load_ptr(&tail->bt_link_);
    if (next == NULL)
        return NULL;
    /* Acquire: pairs with the producer's fenced link store. */
    ck_pr_fence_load();
    BT_TSAN_ACQUIRE(next);
    q->tail = next;
    free_consumed(tail);
    return next;
}

bool bt__mbox_mark_empty(bt_mailbox_t *q)
{
    bt_msg_t *tail = q->tail;
    bt_msg_t *head = ck_pr_load_ptr(&q->head);
    if (((uintptr_t)head & EMPTY_BIT) != 0)
        return true;
    if (head != tail)
        return false;
    BT_TSAN_RELEASE(q);
    /* Succeeds only if no producer exchanged head since we read it; the CAS
     * is a full barrier, so the actor's state written during the turn is
     * visible to whoever the next push hands the actor to. */
    return ck_pr_cas_ptr(&q->head, tail, mark(tail));
}

void bt__mbox_deinit(bt_mailbox_t *q)
{
    free_consumed(q->tail);
    q->tail = &q->stub;
}
