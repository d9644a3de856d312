/*
 * supervised.c: a small supervised application, the one docs/guide.md
 * builds step by step. Uses only <baton/baton.h>.
 *
 * A "bank" of accounts answers requests (deposit, balance) with
 * bt_reply(). A "teller" takes requests from the main thread, checks them,
 * and forwards them to the bank with bt_ask() — and crashes on a request it
 * considers corrupt. A supervisor keeps both alive: the teller restarts in
 * place, keeping the requests queued behind the bad one. A periodic timer
 * makes the bank report its total. The bank is found by name.
 *
 *   example_supervised
 */
#include <baton/baton.h>

#include <stdio.h>
#include <string.h>

#define MS  (1000000ull)
#define SEC (1000000000ull)

enum { MSG_DEPOSIT = 1, MSG_BALANCE, MSG_RESULT, MSG_AUDIT };

typedef struct {
    bt_msg_t hdr;
    uint32_t account;
    int64_t amount;
} request_msg;

typedef struct {
    bt_msg_t hdr;
    int status; /* BT_OK or an error code */
    int64_t balance;
} result_msg;

static result_msg *result(int status, int64_t balance)
{
    result_msg *r = BT_MSG_NEW(result_msg, MSG_RESULT);
    if (r != NULL) {
        r->status = status;
        r->balance = balance;
    }
    return r;
}

/* ------------------------------------------------------------------ bank */

#define ACCOUNTS 16

typedef struct {
    int64_t balance[ACCOUNTS];
    bt_timer_t audit;
    int audits;
} bank_state;

static int bank_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    bank_state *st = state;
    bt_runtime_t *rt = bt_ctx_runtime(ctx);
    /* Others find the bank by name; the name is released when it stops. */
    int rc = bt_register(rt, "bank", bt_self(ctx));
    if (rc != BT_OK)
        return rc;
    bt_msg_t *tick = bt_msg_new(sizeof(bt_msg_t), MSG_AUDIT);
    if (tick == NULL)
        return BT_ENOMEM;
    rc = bt_timer_start(rt, bt_self(ctx), tick, 20 * MS, 20 * MS, &st->audit);
    if (rc != BT_OK)
        bt_msg_free(tick);
    return rc;
}

static int bank_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    bank_state *st = state;
    if (msg->id == MSG_AUDIT) {
        int64_t total = 0;
        for (int i = 0; i < ACCOUNTS; i++)
            total += st->balance[i];
        if (st->audits++ == 0)
            printf("bank: first audit, total %lld\n", (long long)total);
        return BT_OK;
    }
    const request_msg *rq = (const request_msg *)msg;
    BT_ACTOR_ASSERT(ctx, rq->account < ACCOUNTS); /* the teller checked */
    if (msg->id == MSG_DEPOSIT)
        st->balance[rq->account] += rq->amount;
    result_msg *r = result(BT_OK, st->balance[rq->account]);
    if (r == NULL)
        return BT_ENOMEM;
    int rc = bt_reply(ctx, msg, &r->hdr);
    if (rc != BT_OK)
        bt_msg_free(&r->hdr); /* the asker is gone: nothing to do */
    return BT_OK;
}

static void bank_cleanup(bt_ctx_t *ctx, void *state)
{
    (void)bt_timer_cancel(bt_ctx_runtime(ctx), ((bank_state *)state)->audit);
}

static const bt_actor_type_t bank_type = {
    .name = "bank",
    .state_size = sizeof(bank_state),
    .init = bank_init,
    .dispatch = bank_dispatch,
    .cleanup = bank_cleanup,
};

/* ---------------------------------------------------------------- teller */

/* The teller remembers, for each ask it made to the bank, who asked it, so
 * the bank's answer can be passed back. */
#define PENDING 64

typedef struct {
    uint64_t corr[PENDING];
    bt_msg_t origin[PENDING]; /* the client's request header, for bt_reply */
    int restarts_seen;
} teller_state;

static int teller_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    printf("teller: starting\n");
    return BT_OK;
}

static int forward(bt_ctx_t *ctx, teller_state *st, const request_msg *rq)
{
    bt_ref_t bank;
    if (bt_whereis(bt_ctx_runtime(ctx), "bank", &bank) != BT_OK)
        return BT_ENOENT;
    int slot = -1;
    for (int i = 0; i < PENDING && slot < 0; i++)
        if (st->corr[i] == 0)
            slot = i;
    if (slot < 0)
        return BT_EFULL;
    request_msg *copy = BT_MSG_NEW(request_msg, rq->hdr.id);
    if (copy == NULL)
        return BT_ENOMEM;
    copy->account = rq->account;
    copy->amount = rq->amount;
    int rc = bt_ask(ctx, bank, &copy->hdr, 500 * MS, &st->corr[slot]);
    if (rc != BT_OK) {
        bt_msg_free(&copy->hdr);
        return rc;
    }
    st->origin[slot] = rq->hdr;
    return BT_OK;
}

static int teller_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    teller_state *st = state;
    switch (msg->id) {
    case MSG_DEPOSIT:
    case MSG_BALANCE: {
        const request_msg *rq = (const request_msg *)msg;
        /* A corrupt request: fail, and let the supervisor restart us. */
        if (rq->amount < 0)
            return BT_EINVAL;
        int rc = forward(ctx, st, rq);
        if (rc != BT_OK) {
            result_msg *r = result(rc, 0);
            if (r != NULL && bt_reply(ctx, msg, &r->hdr) != BT_OK)
                bt_msg_free(&r->hdr);
        }
        return BT_OK;
    }
    case MSG_RESULT:
    case BT_MSG_TIMEOUT: {
        uint64_t corr = bt_msg_corr(msg);
        for (int i = 0; i < PENDING; i++) {
            if (st->corr[i] != corr)
                continue;
            st->corr[i] = 0;
            result_msg *r = msg->id == MSG_RESULT
                                ? result(BT_OK, ((const result_msg *)msg)->balance)
                                : result(BT_ETIMEDOUT, 0);
            if (r != NULL && bt_reply(ctx, &st->origin[i], &r->hdr) != BT_OK)
                bt_msg_free(&r->hdr);
        }
        return BT_OK;
    }
    }
    return BT_OK;
}

static const bt_actor_type_t teller_type = {
    .name = "teller",
    .state_size = sizeof(teller_state),
    .init = teller_init,
    .dispatch = teller_dispatch,
};

/* ------------------------------------------------------------------ main */

static int call(bt_runtime_t *rt, bt_ref_t teller, uint32_t id, uint32_t account, int64_t amount,
                uint64_t timeout_ns, int64_t *balance)
{
    request_msg *rq = BT_MSG_NEW(request_msg, id);
    if (rq == NULL)
        return BT_ENOMEM;
    rq->account = account;
    rq->amount = amount;
    bt_msg_t *reply = NULL;
    int rc = bt_ask_wait(rt, teller, &rq->hdr, timeout_ns, &reply); /* takes rq */
    if (rc != BT_OK)
        return rc;
    rc = ((result_msg *)reply)->status;
    *balance = ((result_msg *)reply)->balance;
    bt_msg_free(reply);
    return rc;
}

int main(void)
{
    bt_runtime_t *rt;
    int rc = bt_runtime_create(NULL, &rt);
    if (rc == BT_OK)
        rc = bt_runtime_start(rt);
    if (rc != BT_OK) {
        fprintf(stderr, "supervised: %s\n", bt_strerror(rc));
        return 1;
    }

    const bt_child_spec_t children[] = {
        {.type = &bank_type, .restart = BT_PERMANENT},
        {.type = &teller_type, .restart = BT_PERMANENT},
    };
    const bt_supervisor_spec_t spec = {
        .strategy = BT_REST_FOR_ONE, /* if the bank restarts, so does the teller */
        .intensity = 3,
        .period_ns = 5 * SEC,
        .children = children,
        .nchildren = 2,
    };
    bt_ref_t sup, refs[2];
    if ((rc = bt_spawn_supervisor(rt, &spec, &sup, refs)) != BT_OK) {
        fprintf(stderr, "supervised: %s\n", bt_strerror(rc));
        return 1;
    }
    bt_ref_t teller = refs[1];

    int64_t balance = 0;
    int failures = 0;
    failures += call(rt, teller, MSG_DEPOSIT, 3, 100, 2 * SEC, &balance) != BT_OK;
    failures += call(rt, teller, MSG_DEPOSIT, 3, 50, 2 * SEC, &balance) != BT_OK;
    printf("main: account 3 holds %lld\n", (long long)balance);

    /* A corrupt request crashes the teller; it gets no answer in time. */
    rc = call(rt, teller, MSG_DEPOSIT, 3, -1, 200 * MS, &balance);
    printf("main: corrupt request: %s\n", bt_strerror(rc));

    /* Same reference, restarted in place, still serving. */
    failures += call(rt, teller, MSG_BALANCE, 3, 0, 2 * SEC, &balance) != BT_OK;
    printf("main: after the restart, account 3 holds %lld\n", (long long)balance);
    failures += balance != 150;

    bt_runtime_stats_t s;
    bt_runtime_stats(rt, &s);
    printf("main: %llu restart(s)\n", (unsigned long long)s.restarts);
    failures += s.restarts != 1;

    rc = bt_runtime_shutdown(rt, 5 * SEC);
    if (rc != BT_OK)
        fprintf(stderr, "supervised: shutdown: %s\n", bt_strerror(rc));
    return failures == 0 && rc == BT_OK ? 0 : 1;
}
