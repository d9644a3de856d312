/* test_timeouts.c: the timeout registry in deterministic virtual time:
 * classes and their validation, deadline propagation from a parent, expiry
 * as a message at the exact time, completion cancelling the timer, and the
 * per-cycle deadline of a loop. */
#include "timeouts.h"

#include <criterion/criterion.h>
#include <string.h>

#define MS  (1000000ull)
#define SEC (1000000000ull)

/* ------------------------------------------------------------ a sink */

#define EXPIRED_MAX 256

typedef struct {
    bt_to_expired_msg_t got[EXPIRED_MAX];
    uint64_t at[EXPIRED_MAX];
    int n;
} sink_t;

static int sink_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    *(const void **)state = arg;
    return BT_OK;
}

static int sink_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    sink_t *s = *(sink_t **)state;
    if (msg->id == BT_TO_EXPIRED && s->n < EXPIRED_MAX) {
        s->got[s->n] = *(const bt_to_expired_msg_t *)msg;
        s->at[s->n] = bt_now(bt_ctx_runtime(ctx));
        s->n++;
    }
    return BT_OK;
}

static const bt_actor_type_t sink_type = {
    .name = "sink", .state_size = sizeof(sink_t *), .init = sink_init, .dispatch = sink_dispatch};

/* ------------------------------------------------------------- helpers */

typedef struct {
    bt_runtime_t *rt;
    bt_ref_t reg, sink;
    sink_t log;
} fixture_t;

static void setup(fixture_t *f, const bt_timeouts_args_t *a)
{
    memset(f, 0, sizeof *f);
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.deterministic = true}, &f->rt), BT_OK);
    cr_assert_eq(bt_runtime_start(f->rt), BT_OK);
    cr_assert_eq(bt_spawn(f->rt, &sink_type, &f->log, NULL, &f->sink), BT_OK);
    bt_timeouts_args_t none = {0};
    cr_assert_eq(bt_timeouts_spawn(f->rt, a ? a : &none, &f->reg), BT_OK);
}

static bt_to_started_msg_t start(fixture_t *f, const char *cls, uint64_t parent, uint64_t tag)
{
    bt_to_start_msg_t *m = BT_MSG_NEW(bt_to_start_msg_t, BT_TO_START);
    strncpy(m->cls, cls, sizeof m->cls - 1);
    m->parent = parent;
    m->notify = f->sink;
    m->tag = tag;
    bt_msg_t *reply;
    cr_assert_eq(bt_ask_wait(f->rt, f->reg, &m->hdr, SEC, &reply), BT_OK);
    cr_assert_eq(reply->id, BT_TO_STARTED);
    bt_to_started_msg_t r = *(bt_to_started_msg_t *)reply;
    bt_msg_free(reply);
    return r;
}

static bt_to_done_reply_msg_t done(fixture_t *f, uint64_t id)
{
    bt_to_done_msg_t *m = BT_MSG_NEW(bt_to_done_msg_t, BT_TO_DONE);
    m->id = id;
    bt_msg_t *reply;
    cr_assert_eq(bt_ask_wait(f->rt, f->reg, &m->hdr, SEC, &reply), BT_OK);
    bt_to_done_reply_msg_t r = *(bt_to_done_reply_msg_t *)reply;
    bt_msg_free(reply);
    return r;
}

static bt_to_stats_msg_t stats(fixture_t *f)
{
    bt_msg_t *reply;
    cr_assert_eq(bt_ask_wait(f->rt, f->reg, bt_msg_new(sizeof(bt_msg_t), BT_TO_STATS), SEC, &reply),
                 BT_OK);
    bt_to_stats_msg_t s = *(bt_to_stats_msg_t *)reply;
    bt_msg_free(reply);
    return s;
}

/* --------------------------------------------------------------- tests */

Test(timeouts, default_classes_are_quick_default_bulk_import)
{
    fixture_t f;
    setup(&f, NULL);
    const char *names[] = {"quick", "default", "bulk", "import"};
    const uint64_t want[] = {10 * SEC, 30 * SEC, 60 * SEC, 300 * SEC};
    for (int i = 0; i < 4; i++) {
        bt_to_started_msg_t r = start(&f, names[i], BT_DEADLINE_NONE, 0);
        cr_assert_eq(r.status, BT_OK, "%s", names[i]);
        cr_assert_eq(r.timeout_ns, want[i]);
        cr_assert_eq(r.deadline, want[i], "now is 0");
        cr_assert_eq(done(&f, r.id).status, BT_OK);
    }
    cr_assert_eq(start(&f, "nosuch", BT_DEADLINE_NONE, 0).status, BT_ENOENT);
    cr_assert_eq(bt_runtime_shutdown(f.rt, SEC), BT_OK);
}

Test(timeouts, configured_classes_override_and_extend_within_bounds)
{
    bt_timeout_class_t cls[] = {{"quick", 2 * SEC}, {"webhook", 5 * SEC}};
    bt_timeouts_args_t a = {.classes = cls, .nclasses = 2, .min_ns = SEC, .max_ns = 600 * SEC};
    bt_timeout_class_t out[BT_TIMEOUT_CLASSES_MAX];
    uint32_t n = 0;
    const char *why = NULL;
    cr_assert_eq(bt_timeouts_classes(&a, out, &n, &why), BT_OK);
    cr_assert_eq(n, 5);
    fixture_t f;
    setup(&f, &a);
    cr_assert_eq(start(&f, "quick", BT_DEADLINE_NONE, 0).timeout_ns, 2 * SEC);
    cr_assert_eq(start(&f, "webhook", BT_DEADLINE_NONE, 0).timeout_ns, 5 * SEC);
    cr_assert_eq(start(&f, "import", BT_DEADLINE_NONE, 0).timeout_ns, 300 * SEC);
    cr_assert_eq(bt_runtime_shutdown(f.rt, SEC), BT_OK);

    a.max_ns = 100 * SEC; /* the default import class (300 s) is now out of bounds */
    cr_assert_eq(bt_timeouts_classes(&a, out, &n, &why), BT_EINVAL);
    cr_assert_not_null(strstr(why, "outside"));
    a.max_ns = 600 * SEC;
    cls[1].timeout_ns = 1; /* below min */
    cr_assert_eq(bt_timeouts_classes(&a, out, &n, &why), BT_EINVAL);
    cls[1].timeout_ns = 5 * SEC;
    strcpy(cls[1].name, "Bad Name");
    cr_assert_eq(bt_timeouts_classes(&a, out, &n, &why), BT_EINVAL);
    cr_assert_not_null(strstr(why, "name"));
    strcpy(cls[1].name, "quick");
    cr_assert_eq(bt_timeouts_classes(&a, out, &n, &why), BT_EINVAL);
    cr_assert_not_null(strstr(why, "twice"));
    a.min_ns = 700 * SEC;
    cr_assert_eq(bt_timeouts_classes(&a, out, &n, &why), BT_EINVAL);
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.deterministic = true}, &rt), BT_OK);
    bt_ref_t r;
    cr_assert_eq(bt_timeouts_spawn(rt, &a, &r), BT_EINVAL);
    cr_assert_eq(bt_runtime_shutdown(rt, SEC), BT_OK);
}

Test(timeouts, deadline_is_the_minimum_of_its_own_and_the_parents_remaining_time)
{
    cr_assert_eq(bt_deadline_child(100, 50, BT_DEADLINE_NONE), 150);
    cr_assert_eq(bt_deadline_child(100, 50, 120), 120);
    cr_assert_eq(bt_deadline_child(100, 50, 400), 150);
    cr_assert_eq(bt_deadline_child(UINT64_MAX - 5, 50, BT_DEADLINE_NONE), UINT64_MAX - 1);
    cr_assert_eq(bt_deadline_remaining(150, 100), 50);
    cr_assert_eq(bt_deadline_remaining(150, 200), 0);

    fixture_t f;
    setup(&f, NULL);
    cr_assert_eq(bt_runtime_advance(f.rt, 1 * SEC), BT_OK);
    bt_to_started_msg_t parent = start(&f, "default", BT_DEADLINE_NONE, 1); /* due 31 s */
    cr_assert_eq(parent.deadline, 31 * SEC);
    cr_assert_eq(bt_runtime_advance(f.rt, 25 * SEC), BT_OK); /* now 26 s: 5 s left */
    bt_to_started_msg_t child = start(&f, "quick", parent.deadline, 2);
    cr_assert_eq(child.deadline, 31 * SEC, "the parent's 5 s, not quick's 10 s");
    bt_to_started_msg_t grandchild = start(&f, "quick", child.deadline, 3);
    cr_assert_eq(grandchild.deadline, 31 * SEC);
    cr_assert_eq(bt_runtime_advance(f.rt, 1 * SEC), BT_OK);
    cr_assert_eq(done(&f, grandchild.id).remaining, 4 * SEC);
    cr_assert_eq(bt_runtime_advance(f.rt, 4 * SEC - 1 * MS), BT_OK);
    cr_assert_eq(f.log.n, 0);
    cr_assert_eq(bt_runtime_advance(f.rt, 1 * MS), BT_OK);
    cr_assert_eq(f.log.n, 2, "parent and child expire together at 31 s");
    cr_assert_eq(f.log.at[0], 31 * SEC);
    cr_assert_eq(f.log.at[1], 31 * SEC);
    cr_assert_eq(f.log.got[0].tag + f.log.got[1].tag, 1 + 2);
    /* A child started after its parent's deadline expires at once. */
    bt_to_started_msg_t late = start(&f, "quick", parent.deadline, 4);
    cr_assert_eq(late.status, BT_OK);
    cr_assert_eq(late.deadline, 31 * SEC);
    cr_assert_eq(bt_runtime_advance(f.rt, 1 * MS), BT_OK);
    cr_assert_eq(f.log.n, 3);
    cr_assert_eq(f.log.got[2].tag, 4);
    cr_assert_eq(bt_runtime_shutdown(f.rt, SEC), BT_OK);
}

Test(timeouts, expiry_arrives_as_a_message_at_the_deadline)
{
    fixture_t f;
    setup(&f, NULL);
    bt_to_started_msg_t r = start(&f, "quick", BT_DEADLINE_NONE, 77);
    cr_assert_eq(bt_runtime_advance(f.rt, 10 * SEC - 1 * MS), BT_OK);
    cr_assert_eq(f.log.n, 0, "never early");
    cr_assert_eq(bt_runtime_advance(f.rt, 1 * MS), BT_OK);
    cr_assert_eq(f.log.n, 1);
    cr_assert_eq(f.log.at[0], 10 * SEC);
    cr_assert_eq(f.log.got[0].id, r.id);
    cr_assert_eq(f.log.got[0].tag, 77);
    cr_assert_eq(f.log.got[0].deadline, 10 * SEC);
    cr_assert_eq(done(&f, r.id).status, BT_ENOENT, "too late: it expired");
    bt_to_stats_msg_t s = stats(&f);
    cr_assert_eq(s.started, 1);
    cr_assert_eq(s.expired, 1);
    cr_assert_eq(s.completed, 0);
    cr_assert_eq(s.live, 0);
    cr_assert_eq(bt_runtime_shutdown(f.rt, SEC), BT_OK);
}

Test(timeouts, completion_cancels_the_timer_so_no_expiry_comes)
{
    fixture_t f;
    setup(&f, NULL);
    enum { N = 1000 };
    static uint64_t ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = start(&f, i % 2 ? "quick" : "bulk", BT_DEADLINE_NONE, (uint64_t)i).id;
    cr_assert_eq(stats(&f).live, N);
    cr_assert_eq(bt_runtime_advance(f.rt, 5 * SEC), BT_OK);
    for (int i = 0; i < N; i++)
        if (i % 10 != 0) {
            bt_to_done_reply_msg_t d = done(&f, ids[i]);
            cr_assert_eq(d.status, BT_OK);
            cr_assert_eq(d.remaining, i % 2 ? 5 * SEC : 55 * SEC);
        }
    cr_assert_eq(done(&f, ids[1]).status, BT_ENOENT, "a second completion finds nothing");
    cr_assert_eq(bt_runtime_advance(f.rt, 100 * SEC), BT_OK);
    cr_assert_eq(f.log.n, N / 10, "only those never completed expire");
    for (int i = 0; i < f.log.n; i++)
        cr_assert_eq(f.log.got[i].tag % 10, 0);
    bt_to_stats_msg_t s = stats(&f);
    cr_assert_eq(s.completed, N - N / 10);
    cr_assert_eq(s.expired, N / 10);
    cr_assert_eq(s.live, 0);
    /* Ids of reused slots do not complete the new deadlines. */
    bt_to_started_msg_t r = start(&f, "quick", BT_DEADLINE_NONE, 5);
    cr_assert_neq(r.id, ids[0]);
    cr_assert_eq(done(&f, ids[0]).status, BT_ENOENT);
    cr_assert_eq(done(&f, r.id).status, BT_OK);
    cr_assert_eq(bt_runtime_shutdown(f.rt, SEC), BT_OK);
}

Test(timeouts, live_deadlines_are_bounded_and_freed_at_shutdown)
{
    bt_timeouts_args_t a = {.max_live = 3};
    fixture_t f;
    setup(&f, &a);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(start(&f, "quick", BT_DEADLINE_NONE, 0).status, BT_OK);
    cr_assert_eq(start(&f, "quick", BT_DEADLINE_NONE, 0).status, BT_EFULL);
    cr_assert_eq(stats(&f).refused, 1);
    cr_assert_eq(bt_runtime_shutdown(f.rt, SEC), BT_OK); /* with 3 timers pending */
}

/* A loop that processes items, each taking cost_ns of (simulated) time,
 * within one cycle; returns how many it did before the cycle's deadline. */
static uint32_t run_cycle(bt_cycle_t *c, uint64_t *clock, uint64_t cost_ns, uint32_t items)
{
    uint32_t i;
    for (i = 0; i < items; i++) {
        if (bt_cycle_should_defer(c, *clock))
            break;
        *clock += cost_ns;
        c->done++;
    }
    c->deferred = items - i;
    return i;
}

Test(timeouts, per_cycle_deadline_defers_the_rest_of_the_work_to_the_next_cycle)
{
    bt_cycle_t c;
    uint64_t clock = 1000 * MS;
    uint32_t left = 25;
    /* 100 ms per cycle, 30 ms per item: items start at 0, 30, 60, 90 ms. */
    bt_cycle_begin(&c, clock, 100 * MS, BT_DEADLINE_NONE);
    cr_assert_eq(c.deadline, 1100 * MS);
    cr_assert_eq(run_cycle(&c, &clock, 30 * MS, left), 4);
    cr_assert_eq(c.deferred, 21);
    left = c.deferred;
    int cycles = 1;
    while (left > 0) {
        clock += 400 * MS; /* the loop's period */
        bt_cycle_begin(&c, clock, 100 * MS, BT_DEADLINE_NONE);
        left -= run_cycle(&c, &clock, 30 * MS, left);
        cycles++;
    }
    cr_assert_eq(cycles, 7, "25 items at 4 per cycle");
    /* A parent deadline shortens the cycle. */
    bt_cycle_begin(&c, 0, 100 * MS, 45 * MS);
    cr_assert_eq(c.deadline, 45 * MS);
    clock = 0;
    cr_assert_eq(run_cycle(&c, &clock, 30 * MS, 10), 2);
    bt_cycle_begin(&c, 50 * MS, 100 * MS, 45 * MS);
    clock = 50 * MS;
    cr_assert_eq(run_cycle(&c, &clock, 30 * MS, 10), 0, "the parent's time is up");
}
