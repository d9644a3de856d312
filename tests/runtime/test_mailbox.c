/* test_mailbox.c: the intrusive MPSC mailbox on its own, single-threaded
 * (the concurrent cases are in stress/stress_mpsc.c). */
#include "mailbox/mailbox.h"

#include <criterion/criterion.h>

typedef struct {
    bt_msg_t hdr;
    int seq;
} seq_msg;

static seq_msg *make(int seq)
{
    seq_msg *m = BT_MSG_NEW(seq_msg, 1);
    cr_assert_not_null(m);
    m->seq = seq;
    return m;
}

Test(mailbox, new_mailbox_is_empty_and_marked)
{
    bt_mailbox_t q;
    bt__mbox_init(&q);
    cr_assert_null(bt__mbox_pop(&q));
    cr_assert(bt__mbox_mark_empty(&q));
    bt__mbox_deinit(&q);
}

Test(mailbox, only_the_push_that_finds_it_empty_schedules)
{
    bt_mailbox_t q;
    bt__mbox_init(&q);
    cr_assert(bt__mbox_push(&q, &make(1)->hdr), "first push must schedule");
    cr_assert_not(bt__mbox_push(&q, &make(2)->hdr), "second push must not");
    cr_assert_not(bt__mbox_push(&q, &make(3)->hdr));
    for (int i = 1; i <= 3; i++)
        cr_assert_eq(((seq_msg *)bt__mbox_pop(&q))->seq, i);
    cr_assert(bt__mbox_mark_empty(&q));
    cr_assert(bt__mbox_push(&q, &make(4)->hdr), "push after mark_empty schedules again");
    cr_assert_eq(((seq_msg *)bt__mbox_pop(&q))->seq, 4);
    cr_assert(bt__mbox_mark_empty(&q));
    bt__mbox_deinit(&q);
}

Test(mailbox, mark_empty_fails_while_messages_wait)
{
    bt_mailbox_t q;
    bt__mbox_init(&q);
    cr_assert(bt__mbox_push(&q, &make(1)->hdr));
    cr_assert(bt__mbox_pop(&q) != NULL);
    cr_assert(bt__mbox_mark_empty(&q));
    bt__mbox_push(&q, &make(2)->hdr);
    /* Not popped yet: the consumer must keep the actor. */
    cr_assert_not(bt__mbox_mark_empty(&q));
    cr_assert_eq(((seq_msg *)bt__mbox_pop(&q))->seq, 2);
    cr_assert(bt__mbox_mark_empty(&q));
    bt__mbox_deinit(&q);
}

Test(mailbox, keeps_fifo_order_for_many_messages)
{
    bt_mailbox_t q;
    bt__mbox_init(&q);
    for (int i = 0; i < 10000; i++)
        bt__mbox_push(&q, &make(i)->hdr);
    for (int i = 0; i < 10000; i++) {
        seq_msg *m = (seq_msg *)bt__mbox_pop(&q);
        cr_assert_not_null(m);
        cr_assert_eq(m->seq, i);
    }
    cr_assert_null(bt__mbox_pop(&q));
    bt__mbox_deinit(&q);
}

Test(mailbox, embedded_nodes_are_never_freed)
{
    bt_mailbox_t q;
    bt__mbox_init(&q);
    bt_msg_t node = {.id = 7, .size = 0}; /* size 0: not owned by the mailbox */
    bt__mbox_push(&q, &node);
    bt__mbox_push(&q, &make(1)->hdr);
    cr_assert_eq(bt__mbox_pop(&q), &node);
    cr_assert_eq(((seq_msg *)bt__mbox_pop(&q))->seq, 1); /* would free node if owned */
    bt__mbox_deinit(&q);
    cr_assert_eq(node.id, 7);
}
