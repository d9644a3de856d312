/*
 * bench_runstore.c: durable transitions per second through the run store,
 * with group commit and with a naive baseline that commits one transaction
 * per request (max_batch = 1), both measured in the same run, for 1 and
 * for 64 concurrent requesters. synchronous = FULL (the default), so every
 * acknowledged transition has been fsynced.
 *
 * Each requester is an actor that owns one run and moves it running <->
 * paused, one ask at a time. Only the measured window is timed (after
 * every run exists). Prints the median of several runs per configuration
 * and the group/naive ratios. --short: one brief run each, as a smoke test.
 */
#define _GNU_SOURCE
#include "runstore.h"

#include "harness.h"

#include <baton/baton.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEC_NS (1000000000ull)

enum { MSG_GO = 1 };

static uint64_t transitions; /* atomic: acknowledged transitions */
static uint64_t created;     /* atomic: runs created */
static uint64_t finished;    /* atomic: requesters that stopped */
static uint64_t failures;    /* atomic */
static int stopping;         /* atomic */

typedef struct {
    bt_ref_t store;
    char id[RS_ID_LEN + 1];
    rs_state_t cur;
} requester_t;

static int requester_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    ((requester_t *)state)->store = *(const bt_ref_t *)arg;
    return BT_OK;
}

static int requester_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    requester_t *r = state;
    bt_msg_t *req;
    if (msg->id == MSG_GO) {
        req = rs_req_create("bench", NULL, RS_RUNNING);
    } else {
        const rs_reply_t *rep = (const rs_reply_t *)msg;
        if (msg->id != RS_MSG_REPLY || rep->status != RS_OK) {
            __atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED);
            __atomic_fetch_add(&finished, 1, __ATOMIC_RELEASE);
            return BT_OK;
        }
        if (r->id[0] == '\0') {
            memcpy(r->id, rep->run_id, sizeof(r->id));
            __atomic_fetch_add(&created, 1, __ATOMIC_RELEASE);
        } else {
            __atomic_fetch_add(&transitions, 1, __ATOMIC_RELAXED);
        }
        r->cur = rep->state;
        if (__atomic_load_n(&stopping, __ATOMIC_ACQUIRE)) {
            __atomic_fetch_add(&finished, 1, __ATOMIC_RELEASE);
            return BT_OK;
        }
        rs_state_t to = r->cur == RS_RUNNING ? RS_PAUSED : RS_RUNNING;
        req = rs_req_transition(r->id, r->cur, to, "bench", NULL);
    }
    return bt_ask(ctx, r->store, req, 60 * SEC_NS, NULL);
}

static const bt_actor_type_t requester_type = {.name = "bench-requester",
                                               .state_size = sizeof(requester_t),
                                               .init = requester_init,
                                               .dispatch = requester_dispatch};

static bool wait_for(uint64_t *v, uint64_t want, uint64_t timeout_ns)
{
    uint64_t end = bench_now_ns() + timeout_ns;
    while (__atomic_load_n(v, __ATOMIC_ACQUIRE) < want) {
        if (bench_now_ns() > end)
            return false;
        bench_sleep_ns(1000000);
    }
    return true;
}

/* One measured run: transitions per second, or -1 on failure. */
static double measure(int requesters, bool group, uint64_t window_ns)
{
    const char *tmp = getenv("TMPDIR");
    char dir[256], path[300];
    snprintf(dir, sizeof(dir), "%s/bench-runstore-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/runs.db", dir);
    transitions = created = finished = failures = 0;
    stopping = 0;

    bt_runtime_t *rt;
    if (bt_runtime_create(&(bt_runtime_config_t){.threads = 2}, &rt) != BT_OK ||
        bt_runtime_start(rt) != BT_OK)
        return -1;
    bt_ref_t store;
    rs_config_t cfg = {.path = path, .max_batch = group ? 0 : 1};
    double result = -1;
    if (rs_spawn(rt, &cfg, &store) != BT_OK)
        goto out;
    for (int i = 0; i < requesters; i++) {
        bt_ref_t r;
        if (bt_spawn(rt, &requester_type, &store, NULL, &r) != BT_OK ||
            bt_send(rt, r, bt_msg_new(sizeof(bt_msg_t), MSG_GO)) != BT_OK)
            goto out;
    }
    if (!wait_for(&created, (uint64_t)requesters, 60 * SEC_NS))
        goto out;
    uint64_t c0 = __atomic_load_n(&transitions, __ATOMIC_ACQUIRE);
    uint64_t t0 = bench_now_ns();
    bench_sleep_ns(window_ns);
    uint64_t c1 = __atomic_load_n(&transitions, __ATOMIC_ACQUIRE);
    uint64_t t1 = bench_now_ns();
    __atomic_store_n(&stopping, 1, __ATOMIC_RELEASE);
    if (!wait_for(&finished, (uint64_t)requesters, 60 * SEC_NS) ||
        __atomic_load_n(&failures, __ATOMIC_ACQUIRE) != 0)
        goto out;
    result = (double)(c1 - c0) * 1e9 / (double)(t1 - t0);
out:
    bt_runtime_shutdown(rt, 30 * SEC_NS);
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[320];
        snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
        unlink(p);
    }
    rmdir(dir);
    return result;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    bool short_mode = argc > 1 && strcmp(argv[1], "--short") == 0;
    int runs = short_mode ? 1 : 5;
    uint64_t window = short_mode ? SEC_NS / 5 : SEC_NS;
    static const int requesters[] = {1, 64};
    double median[2][2]; /* [requesters][naive, group] */
    printf("run store: durable transitions/s (synchronous=FULL), median of %d x %.1f s\n", runs,
           (double)window / 1e9);
    for (int r = 0; r < 2; r++) {
        double v[2][8];
        /* Alternate the modes, and which goes first, so that both see the
         * same noise. */
        for (int i = 0; i < runs; i++) {
            for (int k = 0; k < 2; k++) {
                int g = i % 2 == 0 ? k : 1 - k;
                v[g][i] = measure(requesters[r], g == 1, window);
                if (v[g][i] < 0) {
                    fprintf(stderr, "bench_runstore: run failed (%d requesters, %s)\n",
                            requesters[r], g ? "group" : "naive");
                    return 1;
                }
            }
        }
        for (int g = 0; g < 2; g++) {
            qsort(v[g], (size_t)runs, sizeof(double), cmp_double);
            median[r][g] = v[g][runs / 2];
            printf("RESULT impl=baton workload=runstore args=%d,%s metric=transitions_per_s "
                   "value=%.0f\n",
                   requesters[r], g ? "group" : "naive", median[r][g]);
            fflush(stdout);
        }
    }
    for (int r = 0; r < 2; r++)
        printf("%2d requester(s): naive %8.0f/s  group commit %8.0f/s  ratio %.2fx\n",
               requesters[r], median[r][0], median[r][1],
               median[r][0] > 0 ? median[r][1] / median[r][0] : 0.0);
    return 0;
}
