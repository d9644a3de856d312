/*
 * bench_baseline.c: the floor under the runtime's numbers: the same message
 * hops over bare Concurrency Kit queues between plain threads, with no
 * actors, no scheduler, no reference counting and no parking.
 *
 * DESIGN
 * hop_ring and hop_mpsc bounce one token between two threads that spin on
 * their queues (two ck_ring SPSC rings, or two intrusive MPSC queues built
 * on ck_pr like the runtime's mailbox); hop1 pushes and pops on one thread;
 * fanin has P producer threads allocate messages into one MPSC queue whose
 * consumer frees them. Spinning threads never sleep, so these are the
 * costs of the queue and the cache-line transfers alone: what any runtime
 * pays at least. The MPSC queue is Vyukov's with a stub node, whose pop
 * hands back a node the consumer owns outright.
 */
#define _GNU_SOURCE
#include "driver.h"
#include "harness.h"
#include "mem/jemalloc_conf.h"

#include <ck_pr.h>
#include <ck_ring.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

/* The runtime's jemalloc options (runtime/mem/alloc.c): the fan-in floor's
 * messages are allocated under the same ones as baton's. */
const char *malloc_conf = BT_JEMALLOC_CONF;

/* ------------------------------------------------------------ MPSC queue */

typedef struct node {
    struct node *next;
    uint64_t value;
} node_t;

typedef struct mpsc {
    node_t *head __attribute__((aligned(64))); /* producers: one exchange each */
    node_t *tail __attribute__((aligned(64))); /* consumer only */
    node_t stub;
} mpsc_t;

static void mpsc_init(mpsc_t *q)
{
    q->stub.next = NULL;
    q->head = &q->stub;
    q->tail = &q->stub;
}

/* Any number of producers at once; wait-free. */
static void mpsc_push(mpsc_t *q, node_t *n)
{
    ck_pr_store_ptr(&n->next, NULL);
    /* The exchange (a full barrier on x86) orders n's contents before n is
     * reachable from head. */
    node_t *prev = ck_pr_fas_ptr(&q->head, n);
    /* Release: a consumer that follows this link sees n's contents. */
    ck_pr_fence_store();
    ck_pr_store_ptr(&prev->next, n);
}

/* Single consumer. NULL when empty or when a producer is between its
 * exchange and its link store. */
static node_t *mpsc_pop(mpsc_t *q)
{
    node_t *tail = q->tail;
    node_t *next = ck_pr_load_ptr(&tail->next);
    if (tail == &q->stub) {
        if (next == NULL)
            return NULL;
        q->tail = next;
        tail = next;
        next = ck_pr_load_ptr(&next->next);
    }
    if (next != NULL) {
        /* Acquire: pairs with the producer's fenced link store. */
        ck_pr_fence_load();
        q->tail = next;
        return tail;
    }
    if (tail != ck_pr_load_ptr(&q->head))
        return NULL; /* a push is in progress */
    mpsc_push(q, &q->stub);
    next = ck_pr_load_ptr(&tail->next);
    if (next == NULL)
        return NULL;
    ck_pr_fence_load();
    q->tail = next;
    return tail;
}

/* ------------------------------------------------------- two-thread hops */

/* Called while a queue is empty: spin a while, then yield, so a peer
 * thread that shares our core (a busy machine) still gets to run. */
static inline void backoff(unsigned *spins)
{
    if (++*spins > 256) {
        *spins = 0;
        sched_yield();
    }
    ck_pr_stall();
}

#define RING_SIZE 64u /* one token in flight; any power of two will do */

typedef struct {
    ck_ring_t ring;
    ck_ring_buffer_t buf[RING_SIZE];
} spsc_t;

typedef struct {
    bool use_ring;
    uint64_t rounds;
    pthread_barrier_t start;
    spsc_t ring_ab, ring_ba;
    mpsc_t q_ab, q_ba;
} hop_ctx;

static void *hop_echo(void *arg)
{
    hop_ctx *h = arg;
    unsigned spins = 0;
    pthread_barrier_wait(&h->start);
    for (uint64_t i = 0; i < h->rounds; i++) {
        if (h->use_ring) {
            void *tok;
            while (!ck_ring_dequeue_spsc(&h->ring_ab.ring, h->ring_ab.buf, &tok))
                backoff(&spins);
            while (!ck_ring_enqueue_spsc(&h->ring_ba.ring, h->ring_ba.buf, tok))
                backoff(&spins);
        } else {
            node_t *n;
            while ((n = mpsc_pop(&h->q_ab)) == NULL)
                backoff(&spins);
            mpsc_push(&h->q_ba, n);
        }
    }
    return NULL;
}

/* Value: ns per message (a round trip is two). */
static int hop2(const uint64_t *args, double *value, bool use_ring)
{
    hop_ctx *h = aligned_alloc(64, (sizeof(hop_ctx) + 63) & ~(size_t)63);
    if (h == NULL)
        return -1;
    h->use_ring = use_ring;
    h->rounds = args[0];
    pthread_barrier_init(&h->start, NULL, 2);
    ck_ring_init(&h->ring_ab.ring, RING_SIZE);
    ck_ring_init(&h->ring_ba.ring, RING_SIZE);
    mpsc_init(&h->q_ab);
    mpsc_init(&h->q_ba);
    node_t token = {NULL, 0};
    pthread_t t;
    if (pthread_create(&t, NULL, hop_echo, h) != 0) {
        pthread_barrier_destroy(&h->start);
        free(h);
        return -1;
    }
    unsigned spins = 0;
    pthread_barrier_wait(&h->start);
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < h->rounds; i++) {
        if (use_ring) {
            void *tok = &token;
            while (!ck_ring_enqueue_spsc(&h->ring_ab.ring, h->ring_ab.buf, tok))
                backoff(&spins);
            while (!ck_ring_dequeue_spsc(&h->ring_ba.ring, h->ring_ba.buf, &tok))
                backoff(&spins);
        } else {
            token.value = i;
            mpsc_push(&h->q_ab, &token);
            while (mpsc_pop(&h->q_ba) == NULL)
                backoff(&spins);
        }
    }
    *value = (double)(bench_now_ns() - t0) / (2.0 * (double)h->rounds);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&h->start);
    free(h);
    return 0;
}

static int run_hop_ring(const uint64_t *args, double *value)
{
    return hop2(args, value, true);
}

static int run_hop_mpsc(const uint64_t *args, double *value)
{
    return hop2(args, value, false);
}

/* One thread pushes and pops its own message. Value: ns per message. */
static int run_hop1(const uint64_t *args, double *value)
{
    mpsc_t *q = aligned_alloc(64, (sizeof(mpsc_t) + 63) & ~(size_t)63);
    if (q == NULL)
        return -1;
    mpsc_init(q);
    node_t token = {NULL, 0};
    uint64_t t0 = bench_now_ns(), sum = 0;
    for (uint64_t i = 0; i < args[0]; i++) {
        token.value = i;
        mpsc_push(q, &token);
        node_t *n = mpsc_pop(q);
        if (n == NULL)
            n = mpsc_pop(q); /* the stub was in the way */
        if (n == NULL) {
            free(q);
            return -1;
        }
        sum += n->value;
    }
    *value = (double)(bench_now_ns() - t0) / (double)args[0];
    free(q);
    return sum == args[0] * (args[0] - 1) / 2 ? 0 : -1;
}

/* ----------------------------------------------------------------- fan-in */

typedef struct {
    mpsc_t q;
    uint64_t total;
    uint64_t per_producer;
    uint64_t received;
    pthread_barrier_t start;
} fanin_ctx;

static void *fanin_producer(void *arg)
{
    fanin_ctx *f = arg;
    pthread_barrier_wait(&f->start);
    for (uint64_t i = 0; i < f->per_producer; i++) {
        node_t *n = malloc(32); /* the size of a baton message header */
        if (n == NULL)
            abort();
        n->value = i;
        mpsc_push(&f->q, n);
    }
    return NULL;
}

static void *fanin_consumer(void *arg)
{
    fanin_ctx *f = arg;
    pthread_barrier_wait(&f->start);
    uint64_t got = 0;
    unsigned spins = 0;
    while (got < f->total) {
        node_t *n = mpsc_pop(&f->q);
        if (n == NULL) {
            backoff(&spins); /* more threads than cores: producers need the CPU */
            continue;
        }
        got++;
        free(n);
    }
    f->received = got;
    return NULL;
}

/* args: producer threads, messages in all. Value: million messages/s. */
static int run_fanin(const uint64_t *args, double *value)
{
    uint64_t p = args[0];
    if (p > 64)
        return -1;
    fanin_ctx *f = aligned_alloc(64, (sizeof(fanin_ctx) + 63) & ~(size_t)63);
    if (f == NULL)
        return -1;
    mpsc_init(&f->q);
    f->per_producer = args[1] / p;
    f->total = f->per_producer * p;
    f->received = 0;
    pthread_barrier_init(&f->start, NULL, (unsigned)p + 2);
    pthread_t t[65];
    uint64_t started = 0;
    int ok = 0;
    for (; started <= p; started++) {
        if (pthread_create(&t[started], NULL, started == 0 ? fanin_consumer : fanin_producer, f) !=
            0) {
            fprintf(stderr, "baseline: cannot create a thread\n");
            abort(); /* the others wait on the barrier forever */
        }
    }
    pthread_barrier_wait(&f->start);
    uint64_t t0 = bench_now_ns();
    pthread_join(t[0], NULL);
    *value = (double)f->total * 1e3 / (double)(bench_now_ns() - t0);
    for (uint64_t i = 1; i < started; i++)
        pthread_join(t[i], NULL);
    if (f->received != f->total)
        ok = -1;
    pthread_barrier_destroy(&f->start);
    free(f);
    return ok;
}

static const bench_workload_t workloads[] = {
    {"hop_ring", "ns_per_msg", "ROUNDTRIPS", 1, {1000000}, {20000}, run_hop_ring},
    {"hop_mpsc", "ns_per_msg", "ROUNDTRIPS", 1, {1000000}, {20000}, run_hop_mpsc},
    {"hop1", "ns_per_msg", "MESSAGES", 1, {10000000}, {100000}, run_hop1},
    {"fanin", "mmsg_per_s", "PRODUCERS MESSAGES", 2, {4, 10000000}, {4, 200000}, run_fanin},
};

int main(int argc, char **argv)
{
    bench_impl = "baseline";
    return bench_main(argc, argv, workloads, sizeof workloads / sizeof workloads[0]);
}
