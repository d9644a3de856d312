/*
 * supervisor.c: the supervisor actor, with Erlang/OTP's strategies,
 * restart types and restart intensity.
 *
 * DESIGN
 * Messages accepted: BT_SYS_CHILD_EXIT (a child stopped running: failed,
 * stopped itself, or was asked to stop) and nothing else; unknown messages
 * are ignored. Emitted: BT_CTL_RESTART / BT_CTL_STOP control requests to its
 * children. State owned: a copy of the spec, the children's references, and
 * the times of recent restarts (bt_now, so virtual time drives it in tests).
 *
 * A child that stops running parks itself, keeping its reference and its
 * mailbox, and tells the supervisor why. The supervisor decides by restart
 * type (permanent: always; transient: after a failure; temporary: never)
 * and restarts in place by strategy: one_for_one the child alone,
 * one_for_all every child, rest_for_one the child and those started after
 * it. A restart preempts a running sibling's queue, runs its cleanup, then
 * its init on fresh state; queued messages are handled afterwards, so none
 * is lost. More than `intensity` restarts within `period_ns` make the
 * supervisor fail: it stops its children, newest first, and exits with
 * BT_EFAILED, which its own supervisor or monitors see.
 */
#include "core/internal.h"

#include <string.h>

#define MAX_CHILDREN 64

typedef struct {
    bt_strategy_t strategy;
    uint32_t intensity;
    uint64_t period_ns;
    uint32_t n;
    bt_child_spec_t children[MAX_CHILDREN];
    bt_ref_t refs[MAX_CHILDREN];
    bool stopped[MAX_CHILDREN]; /* stopped for good */
    /* Ring of the last intensity+1 restart times. */
    uint64_t *restart_times;
    uint32_t restart_head;
    uint32_t restart_count;
} sup_state;

/* The spec and where to put the children's references, for init. */
typedef struct {
    const bt_supervisor_spec_t *spec;
    bt_ref_t *child_refs;
} sup_arg;

static void stop_children(bt_runtime_t *rt, sup_state *st)
{
    for (uint32_t i = st->n; i-- > 0;) {
        if (!st->stopped[i] && st->refs[i] != BT_REF_NONE)
            (void)bt__control(rt, st->refs[i], BT_CTL_STOP);
        st->stopped[i] = true;
    }
}

static int start(bt_ctx_t *ctx, sup_state *st, const sup_arg *sa)
{
    const bt_supervisor_spec_t *spec = sa->spec;
    st->strategy = spec->strategy;
    st->intensity = spec->intensity;
    st->period_ns = spec->period_ns;
    st->n = spec->nchildren;
    memcpy(st->children, spec->children, sizeof(bt_child_spec_t) * spec->nchildren);
    st->restart_times = bt_alloc_zeroed(sizeof(uint64_t) * (spec->intensity + 1));
    if (st->restart_times == NULL)
        return BT_ENOMEM;
    for (uint32_t i = 0; i < st->n; i++) {
        int rc =
            bt__spawn_child(bt_ctx_runtime(ctx), &st->children[i], bt_self(ctx), i, &st->refs[i]);
        if (rc != BT_OK) {
            st->n = i; /* stop those started, then fail the spawn */
            stop_children(bt_ctx_runtime(ctx), st);
            bt_free(st->restart_times, sizeof(uint64_t) * (st->intensity + 1));
            st->restart_times = NULL;
            return rc;
        }
        if (sa->child_refs != NULL)
            sa->child_refs[i] = st->refs[i];
    }
    return BT_OK;
}

static int check_spec(const bt_supervisor_spec_t *spec);

/* Init of bt_supervisor_type(): arg is the spec. */
static int sup_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    if (check_spec(arg) != BT_OK)
        return BT_EINVAL;
    sup_arg sa = {.spec = arg, .child_refs = NULL};
    return start(ctx, state, &sa);
}

/* Init of the top-level supervisor from bt_spawn_supervisor(). */
static int top_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    return start(ctx, state, arg);
}

/* Records a restart now; false if that exceeds the intensity. */
static bool note_restart(sup_state *st, uint64_t now)
{
    uint32_t cap = st->intensity + 1;
    st->restart_times[st->restart_head] = now;
    st->restart_head = (st->restart_head + 1) % cap;
    if (st->restart_count < cap)
        st->restart_count++;
    if (st->restart_count < cap)
        return true;
    /* The ring holds the last intensity+1 restarts; the oldest is at head. */
    uint64_t oldest = st->restart_times[st->restart_head];
    return now - oldest > st->period_ns;
}

static int sup_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    sup_state *st = state;
    bt_runtime_t *rt = bt_ctx_runtime(ctx);
    if (msg->id != BT_SYS_CHILD_EXIT)
        return BT_OK;
    const bt_child_exit_msg_t *ce = (const bt_child_exit_msg_t *)msg;
    uint32_t i = ce->index;
    if (i >= st->n || st->refs[i] != ce->child) {
        /* Not ours (any more): let it go. */
        (void)bt__control(rt, ce->child, BT_CTL_STOP);
        return BT_OK;
    }
    bt_restart_t type = st->children[i].restart;
    bool restart = type == BT_PERMANENT || (type == BT_TRANSIENT && ce->reason != BT_OK);
    if (!restart) {
        st->stopped[i] = true;
        (void)bt__control(rt, ce->child, BT_CTL_STOP);
        return BT_OK;
    }
    if (!note_restart(st, bt_now(rt))) {
        /* Too many restarts: give up, and let our own supervisor decide. */
        (void)bt__control(rt, ce->child, BT_CTL_STOP);
        st->stopped[i] = true;
        stop_children(rt, st);
        return BT_EFAILED;
    }
    uint32_t from = i, to = i + 1;
    if (st->strategy == BT_ONE_FOR_ALL)
        from = 0, to = st->n;
    else if (st->strategy == BT_REST_FOR_ONE)
        to = st->n;
    for (uint32_t j = from; j < to; j++) {
        if (st->stopped[j])
            continue;
        if (bt__control(rt, st->refs[j], BT_CTL_RESTART) == BT_ENOACTOR)
            st->stopped[j] = true;
    }
    return BT_OK;
}

static void sup_cleanup(bt_ctx_t *ctx, void *state)
{
    sup_state *st = state;
    stop_children(bt_ctx_runtime(ctx), st);
    bt_free(st->restart_times, sizeof(uint64_t) * (st->intensity + 1));
    st->restart_times = NULL;
}

static const bt_actor_type_t supervisor_type = {
    .name = "supervisor",
    .state_size = sizeof(sup_state),
    .init = sup_init,
    .dispatch = sup_dispatch,
    .cleanup = sup_cleanup,
};

static const bt_actor_type_t top_supervisor_type = {
    .name = "supervisor",
    .state_size = sizeof(sup_state),
    .init = top_init,
    .dispatch = sup_dispatch,
    .cleanup = sup_cleanup,
};

const bt_actor_type_t *bt_supervisor_type(void)
{
    return &supervisor_type;
}

static int check_spec(const bt_supervisor_spec_t *spec)
{
    if (spec == NULL || spec->nchildren > MAX_CHILDREN ||
        (spec->nchildren > 0 && spec->children == NULL) || spec->strategy > BT_REST_FOR_ONE ||
        spec->intensity > 1000000)
        return BT_EINVAL;
    for (uint32_t i = 0; i < spec->nchildren; i++)
        if (spec->children[i].type == NULL || spec->children[i].restart > BT_TEMPORARY)
            return BT_EINVAL;
    return BT_OK;
}

int bt_spawn_supervisor(bt_runtime_t *rt, const bt_supervisor_spec_t *spec, bt_ref_t *out,
                        bt_ref_t *child_refs)
{
    if (rt == NULL || out == NULL || check_spec(spec) != BT_OK)
        return BT_EINVAL;
    sup_arg sa = {.spec = spec, .child_refs = child_refs};
    return bt_spawn(rt, &top_supervisor_type, &sa, NULL, out);
}
