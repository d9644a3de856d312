/*
 * counter.c: one counter actor, incremented by several threads at once,
 * then asked for its total. No lock protects the count: only the actor
 * touches it.
 *
 * Shows: sending from threads outside the runtime, a bounded mailbox and
 * its full policy (BT_EFULL: the sender keeps the message and retries),
 * counters, and cleanup at shutdown. Uses only <baton/baton.h>.
 *
 *   example_counter [threads] [increments-per-thread]
 */
#include <baton/baton.h>

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

enum { MSG_ADD = 1, MSG_REPORT };

typedef struct {
    bt_msg_t hdr;
    int64_t delta;
} add_msg;

/* Where the counter reports its total to main(). */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool ready;
    int64_t total;
} report_box;

typedef struct {
    int64_t total;
} counter_state;

static int counter_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    counter_state *st = state;
    switch (msg->id) {
    case MSG_ADD:
        st->total += ((const add_msg *)msg)->delta;
        return BT_OK;
    case MSG_REPORT: {
        report_box *box = *(report_box *const *)(msg + 1);
        pthread_mutex_lock(&box->mu);
        box->total = st->total;
        box->ready = true;
        pthread_cond_signal(&box->cv);
        pthread_mutex_unlock(&box->mu);
        return BT_OK;
    }
    default:
        return BT_EINVAL; /* an unknown message fails the actor */
    }
}

static void counter_cleanup(bt_ctx_t *ctx, void *state)
{
    const counter_state *st = state;
    printf("counter: stopping at %lld\n", (long long)st->total);
}

static const bt_actor_type_t counter_type = {
    .name = "counter",
    .state_size = sizeof(counter_state),
    .dispatch = counter_dispatch,
    .cleanup = counter_cleanup,
};

typedef struct {
    bt_runtime_t *rt;
    bt_ref_t counter;
    long n;
    long full; /* sends refused by the bounded mailbox, then retried */
} producer_arg;

static void *producer(void *p)
{
    producer_arg *a = p;
    for (long i = 0; i < a->n; i++) {
        add_msg *m = BT_MSG_NEW(add_msg, MSG_ADD);
        if (m == NULL)
            abort();
        m->delta = 1;
        int rc;
        while ((rc = bt_send(a->rt, a->counter, &m->hdr)) == BT_EFULL) {
            a->full++;
            sched_yield(); /* we still own m: back off and retry */
        }
        if (rc != BT_OK) {
            fprintf(stderr, "counter: send: %s\n", bt_strerror(rc));
            bt_msg_free(&m->hdr);
            return NULL;
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = argc > 1 ? atoi(argv[1]) : 4;
    long per = argc > 2 ? atol(argv[2]) : 100000;
    if (nthreads < 1 || nthreads > 64 || per < 0) {
        fprintf(stderr, "usage: example_counter [threads 1..64] [increments]\n");
        return 2;
    }

    bt_runtime_t *rt;
    bt_ref_t counter;
    int rc = bt_runtime_create(NULL, &rt);
    if (rc == BT_OK)
        rc = bt_spawn(rt, &counter_type, NULL, &(bt_spawn_opts_t){.mailbox_capacity = 1024},
                      &counter);
    if (rc == BT_OK)
        rc = bt_runtime_start(rt);
    if (rc != BT_OK) {
        fprintf(stderr, "counter: %s\n", bt_strerror(rc));
        return 1;
    }

    pthread_t th[64];
    producer_arg args[64];
    for (int i = 0; i < nthreads; i++) {
        args[i] = (producer_arg){.rt = rt, .counter = counter, .n = per};
        pthread_create(&th[i], NULL, producer, &args[i]);
    }
    long full = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        full += args[i].full;
    }

    /* The producers have been joined, so every increment is already in the
     * mailbox, which is FIFO: the report is handled after all of them. */
    report_box box = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0};
    bt_msg_t *req = bt_msg_new(sizeof(bt_msg_t) + sizeof(report_box *), MSG_REPORT);
    *(report_box **)(req + 1) = &box;
    while ((rc = bt_send(rt, counter, req)) == BT_EFULL)
        sched_yield();
    pthread_mutex_lock(&box.mu);
    while (!box.ready)
        pthread_cond_wait(&box.cv, &box.mu);
    pthread_mutex_unlock(&box.mu);

    bt_actor_stats_t st;
    bt_actor_stats(rt, counter, &st);
    printf("counter: total %lld (expected %lld), %llu processed, depth high-water %u, "
           "%ld sends refused as full and retried\n",
           (long long)box.total, (long long)nthreads * per, (unsigned long long)st.processed,
           st.depth_hwm, full);
    rc = bt_runtime_shutdown(rt, 5ull * 1000000000u);
    return rc == BT_OK && box.total == (int64_t)nthreads * per ? 0 : 1;
}
