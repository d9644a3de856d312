/*
 * pingpong.c: two actors bounce a ball N times, then both stop.
 *
 * Shows: defining actor types, spawning with an argument, sending typed
 * messages, replying to the sender, stopping from inside, and waiting for
 * the work from the main thread. Uses only <baton/baton.h>.
 *
 *   example_pingpong [rounds]
 */
#include <baton/baton.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

enum { MSG_BALL = 1 };

typedef struct {
    bt_msg_t hdr;
    uint64_t left; /* hits still to make */
} ball_msg;

/* Signals main() when the rally is over. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    uint64_t hits;
} finish_line;

typedef struct {
    finish_line *finish;
    uint64_t hits;
} player_state;

static int player_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    player_state *st = state;
    st->finish = (finish_line *)arg;
    return BT_OK;
}

static int player_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    player_state *st = state;
    const ball_msg *in = (const ball_msg *)msg;
    st->hits++;
    if (in->left == 0) {
        /* Last hit: report and stop; the other player is stopped by main. */
        pthread_mutex_lock(&st->finish->mu);
        st->finish->done = true;
        st->finish->hits = st->hits;
        pthread_cond_signal(&st->finish->cv);
        pthread_mutex_unlock(&st->finish->mu);
        bt_stop_self(ctx);
        return BT_OK;
    }
    ball_msg *out = BT_MSG_NEW(ball_msg, MSG_BALL);
    if (out == NULL)
        return BT_ENOMEM; /* fails this actor */
    out->left = in->left - 1;
    int rc = bt_send(bt_ctx_runtime(ctx), msg->from, &out->hdr);
    if (rc != BT_OK)
        bt_msg_free(&out->hdr);
    return rc;
}

static const bt_actor_type_t player_type = {
    .name = "player",
    .state_size = sizeof(player_state),
    .init = player_init,
    .dispatch = player_dispatch,
};

/* The serving actor: its init sends the first ball to the partner. */
typedef struct {
    finish_line *finish;
    bt_ref_t partner;
    uint64_t rounds;
} serve_arg;

static int server_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    const serve_arg *a = arg;
    player_state *st = state;
    st->finish = a->finish;
    ball_msg *b = BT_MSG_NEW(ball_msg, MSG_BALL);
    if (b == NULL)
        return BT_ENOMEM;
    b->left = a->rounds;
    int rc = bt_send(bt_ctx_runtime(ctx), a->partner, &b->hdr);
    if (rc != BT_OK)
        bt_msg_free(&b->hdr);
    return rc;
}

static const bt_actor_type_t server_type = {
    .name = "server",
    .state_size = sizeof(player_state),
    .init = server_init,
    .dispatch = player_dispatch,
};

int main(int argc, char **argv)
{
    uint64_t rounds = argc > 1 ? strtoull(argv[1], NULL, 10) : 100000;
    finish_line finish = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0};

    bt_runtime_t *rt;
    int rc = bt_runtime_create(NULL, &rt);
    if (rc != BT_OK) {
        fprintf(stderr, "pingpong: %s\n", bt_strerror(rc));
        return 1;
    }
    bt_ref_t receiver, server;
    if ((rc = bt_spawn(rt, &player_type, &finish, NULL, &receiver)) != BT_OK ||
        (rc = bt_runtime_start(rt)) != BT_OK) {
        fprintf(stderr, "pingpong: %s\n", bt_strerror(rc));
        return 1;
    }
    serve_arg sa = {.finish = &finish, .partner = receiver, .rounds = rounds};
    if ((rc = bt_spawn(rt, &server_type, &sa, NULL, &server)) != BT_OK) {
        fprintf(stderr, "pingpong: spawn server: %s\n", bt_strerror(rc));
        return 1;
    }

    pthread_mutex_lock(&finish.mu);
    while (!finish.done)
        pthread_cond_wait(&finish.cv, &finish.mu);
    pthread_mutex_unlock(&finish.mu);

    /* Counters are updated after each turn, so read them once the actors
     * have gone quiet: here, after the last hit, they may lag by one. */
    bt_runtime_stats_t s;
    bt_runtime_stats(rt, &s);
    printf("pingpong: %llu rounds; the last player hit %llu times; %llu messages sent\n",
           (unsigned long long)rounds, (unsigned long long)finish.hits, (unsigned long long)s.sent);
    if ((rc = bt_runtime_shutdown(rt, 5ull * 1000000000u)) != BT_OK) {
        fprintf(stderr, "pingpong: shutdown: %s\n", bt_strerror(rc));
        return 1;
    }
    return 0;
}
