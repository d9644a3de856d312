/*
 * stress_mpsc.c: the mailbox under concurrent producers, without the
 * scheduler. Checks, for 1, 2, 4 and 8 producers:
 *  - no message lost or duplicated, FIFO order per producer;
 *  - the run token (the right to consume) is handed over exactly once per
 *    empty-to-non-empty transition: never held by two parties at once.
 * A plain executable so that it runs under ThreadSanitizer.
 */
#include "core/tsan.h"
#include "mailbox/mailbox.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef BT_TSAN
#define PER_PRODUCER 20000
#else
#define PER_PRODUCER 500000
#endif

typedef struct {
    bt_msg_t hdr;
    uint32_t producer;
    uint64_t seq;
} seq_msg;

static bt_mailbox_t box;
static uint32_t token; /* 1 while someone may consume */
static uint32_t token_violations;

static void take_token(void)
{
    if (__atomic_exchange_n(&token, 1, __ATOMIC_ACQ_REL) != 0)
        __atomic_add_fetch(&token_violations, 1, __ATOMIC_RELAXED);
}

typedef struct {
    uint32_t id;
    uint32_t n;
} producer_arg;

static void *producer(void *p)
{
    producer_arg *a = p;
    for (uint64_t i = 0; i < a->n; i++) {
        seq_msg *m = BT_MSG_NEW(seq_msg, 1);
        m->producer = a->id;
        m->seq = i;
        if (bt__mbox_push(&box, &m->hdr))
            take_token(); /* we found it empty: the consumer is ours to wake */
        if ((i & 1023) == 0)
            sched_yield();
    }
    return NULL;
}

static int run(uint32_t nproducers)
{
    bt__mbox_init(&box);
    token = 0;
    pthread_t th[8];
    producer_arg args[8];
    for (uint32_t i = 0; i < nproducers; i++) {
        args[i] = (producer_arg){.id = i, .n = PER_PRODUCER};
        pthread_create(&th[i], NULL, producer, &args[i]);
    }
    uint64_t next[8] = {0};
    uint64_t got = 0, total = (uint64_t)nproducers * PER_PRODUCER, errors = 0;
    while (got < total) {
        if (!__atomic_load_n(&token, __ATOMIC_ACQUIRE)) {
            sched_yield(); /* idle: wait to be handed the token */
            continue;
        }
        seq_msg *m;
        while ((m = (seq_msg *)bt__mbox_pop(&box)) != NULL) {
            if (m->seq != next[m->producer])
                errors++;
            next[m->producer] = m->seq + 1;
            got++;
        }
        /* Give the token up before marking the box empty: once it is
         * marked, a producer may take the token at once. If the box was
         * not empty after all, nobody else can have it: keep it. */
        __atomic_store_n(&token, 0, __ATOMIC_RELEASE);
        if (!bt__mbox_mark_empty(&box))
            __atomic_store_n(&token, 1, __ATOMIC_RELEASE);
    }
    for (uint32_t i = 0; i < nproducers; i++)
        pthread_join(th[i], NULL);
    bool extra = bt__mbox_pop(&box) != NULL;
    bt__mbox_deinit(&box);
    printf("mpsc %u producers: %llu messages, %llu order errors, %u token violations%s\n",
           nproducers, (unsigned long long)got, (unsigned long long)errors, token_violations,
           extra ? ", EXTRA message" : "");
    return errors == 0 && token_violations == 0 && !extra ? 0 : 1;
}

int main(void)
{
    int fails = 0;
    uint32_t counts[] = {1, 2, 4, 8};
    for (int i = 0; i < 4; i++)
        fails += run(counts[i]);
    printf("%d passed, %d failed\n", 4 - fails, fails);
    return fails != 0;
}
