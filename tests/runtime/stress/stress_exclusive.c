/*
 * stress_exclusive.c: many actors bounce hot potatoes among themselves and
 * take sends from outside threads, on all workers. Checks that no two
 * threads are ever inside the same actor, and that every hop is counted
 * exactly once. A plain executable so that it runs under ThreadSanitizer,
 * which also checks that the actor's unsynchronised state is handed
 * between threads with proper happens-before.
 */
#include <baton/baton.h>

#include "core/tsan.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifdef BT_TSAN
#define HOPS     2000
#define POTATOES 64
#define EXTERNAL 20000
#else
#define HOPS     20000
#define POTATOES 256
#define EXTERNAL 500000
#endif
#define ACTORS 64

enum { MSG_POTATO = 1, MSG_POKE };

typedef struct {
    bt_msg_t hdr;
    uint32_t hops_left;
    uint64_t rng;
} potato_msg;

static bt_ref_t actors[ACTORS];
static uint64_t total_hops, total_pokes;
static uint32_t overlaps;
static uint32_t potatoes_done;

typedef struct {
    uint32_t inside;      /* atomic: detects overlap */
    uint64_t hops, pokes; /* plain: only ever touched by the one running thread */
} cell_state;

static int cell_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    cell_state *st = state;
    if (__atomic_add_fetch(&st->inside, 1, __ATOMIC_ACQ_REL) != 1)
        __atomic_add_fetch(&overlaps, 1, __ATOMIC_RELAXED);
    int rc = BT_OK;
    if (msg->id == MSG_POKE) {
        st->pokes++;
    } else {
        const potato_msg *in = (const potato_msg *)msg;
        st->hops++;
        if (in->hops_left == 0) {
            __atomic_add_fetch(&potatoes_done, 1, __ATOMIC_RELEASE);
        } else {
            potato_msg *out = BT_MSG_NEW(potato_msg, MSG_POTATO);
            out->hops_left = in->hops_left - 1;
            out->rng = in->rng * 6364136223846793005ull + 1442695040888963407ull;
            rc = bt_send(bt_ctx_runtime(ctx), actors[(out->rng >> 33) % ACTORS], &out->hdr);
        }
    }
    __atomic_sub_fetch(&st->inside, 1, __ATOMIC_ACQ_REL);
    return rc;
}

static void cell_cleanup(bt_ctx_t *ctx, void *state)
{
    cell_state *st = state;
    __atomic_add_fetch(&total_hops, st->hops, __ATOMIC_RELAXED);
    __atomic_add_fetch(&total_pokes, st->pokes, __ATOMIC_RELAXED);
}

static const bt_actor_type_t cell = {.name = "cell",
                                     .state_size = sizeof(cell_state),
                                     .dispatch = cell_dispatch,
                                     .cleanup = cell_cleanup};

static bt_runtime_t *rt;

static void *poker(void *arg)
{
    uint64_t r = (uintptr_t)arg;
    for (int i = 0; i < EXTERNAL; i++) {
        r = r * 6364136223846793005ull + 1;
        bt_msg_t *m = bt_msg_new(sizeof(bt_msg_t), MSG_POKE);
        if (bt_send(rt, actors[(r >> 33) % ACTORS], m) != BT_OK)
            abort();
    }
    return NULL;
}

int main(void)
{
    if (bt_runtime_create(&(bt_runtime_config_t){.threads = 4, .batch = 8}, &rt) != BT_OK)
        return 1;
    for (int i = 0; i < ACTORS; i++)
        if (bt_spawn(rt, &cell, NULL, NULL, &actors[i]) != BT_OK)
            return 1;
    bt_runtime_start(rt);
    for (int i = 0; i < POTATOES; i++) {
        potato_msg *p = BT_MSG_NEW(potato_msg, MSG_POTATO);
        p->hops_left = HOPS;
        p->rng = (uint64_t)i * 7919 + 1;
        bt_send(rt, actors[i % ACTORS], &p->hdr);
    }
    pthread_t th[2];
    for (uintptr_t i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, poker, (void *)(i + 1));
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int waited = 0; __atomic_load_n(&potatoes_done, __ATOMIC_ACQUIRE) < POTATOES; waited++) {
        if (waited > 120000) {
            fprintf(stderr, "timeout: %u of %u potatoes done\n", potatoes_done, POTATOES);
            return 1;
        }
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    if (bt_runtime_shutdown(rt, 30ull * 1000000000u) != BT_OK)
        return 1;
    uint64_t want_hops = (uint64_t)POTATOES * (HOPS + 1);
    uint64_t want_pokes = 2ull * EXTERNAL;
    bool ok = overlaps == 0 && total_hops == want_hops && total_pokes == want_pokes;
    printf("exclusive: %llu/%llu hops, %llu/%llu pokes, %u overlaps\n",
           (unsigned long long)total_hops, (unsigned long long)want_hops,
           (unsigned long long)total_pokes, (unsigned long long)want_pokes, overlaps);
    printf("%d passed, %d failed\n", ok ? 1 : 0, ok ? 0 : 1);
    return ok ? 0 : 1;
}
