/*
 * executor.c: the executor actor, the one owner of the life of every run.
 *
 * DESIGN. Accepted: EX_MSG_START/PAUSE/RESUME/STOP/GET/LIST (asks),
 * EX_MSG_STATS (ask, answered at once), kind reports (EX_K_PROGRESS/
 * CHECKPOINT/DONE/FAILED/STOPPED/PAUSED), BT_MSG_DOWN of kind actors, run
 * store replies, and internal messages (boot, promote, recovery failures,
 * grace, pause-wait and retry/re-read timers, job re-reads, lost runs to
 * end). Emitted: run store asks,
 * EX_K_RUN/PAUSE/RESUME/STOP to kind actors, ex_reply_t and ex_stats_reply_t
 * replies.
 * State owned: the non-terminal runs (state, kind actor, FIFO position,
 * unsaved progress, a pause waiting for its kind, commands waiting behind
 * it, an outcome waiting for the store, whether it is uncertain), the job
 * table (with each job's uncertainty), the work queue and the counters.
 * Ordering: every message that may touch a run is copied into one work
 * queue, and items are decided one at a time, inside the actor. Up to
 * EX_MAX_INFLIGHT store requests are in flight at once (so the store's
 * group commit batches them), each in a slot that locks its run (and a
 * keyed start's key): later items about a locked run wait in the queue, in
 * order, and items about other runs may pass them (none of them has been
 * answered, so any order is a valid one). The run's state in memory
 * changes only when the store has acknowledged the write, and the reply is
 * sent after that; but the change is reserved before the write: a run
 * moving from one state to another counts in both for the policy
 * (max_running, max_pending, max_active), and a run being created counts
 * in its job and its initial state, so every decision holds whether the
 * writes in flight succeed or fail. The first item is the start-up
 * recovery, which runs alone. A reply is sent later than the dispatch of
 * its request by keeping an owned copy of the request, whose header (from,
 * corr) is all bt_reply() reads (the run store does the same).
 * Pause: a pause of a running run is made durable, then EX_K_PAUSE goes to
 * the kind, and the reply waits for the kind's EX_K_PAUSED (counted, one
 * per EX_K_PAUSE) or the job's stop grace (answered EX_REPLY_UNCONFIRMED,
 * counted). Meanwhile a resume of the run waits aside (re-queued at the
 * front once the pause is answered); a stop proceeds at once, and the run's
 * end answers the pause (with the end state). Each command is answered
 * exactly once: a waiting command lives in exactly one place (the run's
 * pause slot, its stop waiters, its deferred list, or the in-flight slot).
 * Store failures: a client's command that the store fails is answered
 * store_error and changes nothing. An outcome the kind reported (or that
 * recovery, a forced stop or a lost kind decided) is kept in memory as the
 * run "ending" and written again with exponential backoff (10 ms doubling
 * to 2 s) until the store takes it; meanwhile the run keeps its state and
 * its slots, refuses pause and resume, and a stop waits for the outcome.
 * Unsaved progress is retried the same way; a failed promotion of a
 * pending run is retried by a backoff timer of its own.
 * Store timeouts and conflicts: a write that timed out may still commit (an
 * ask's timeout says nothing about the store), and a compare-and-set that
 * found another state (RS_ECONFLICT) shows memory is stale. Either way the
 * run becomes "uncertain": it keeps the reservation of the write, every
 * item about it waits, and the run is re-read (rs_req_get; the store answers
 * in order, so after the write is settled), again with backoff while the
 * store fails, and memory adopts the store's state (the kind is told). A
 * command that met a conflict is then decided again. A create that timed
 * out makes its job uncertain: the job keeps the creation's reservation,
 * its starts and resumes wait, and once no create of it is in flight its
 * active runs are read (rs_req_active); a run memory does not hold is the
 * lost creation: adopted if it has an idempotency key (a retry with the key
 * finds it), otherwise ended as "interrupted: start outcome unknown".
 */
#define _GNU_SOURCE
#include "executor.h"

#include "runstore.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS (1000000ull)

enum ex_internal_id {
    EX_I_BOOT = 0x45580200u, /* bt_msg_t: start recovery */
    EX_I_BOOT_RETRY,         /* bt_msg_t: the store was not ready; ask again */
    EX_I_PROMOTE,            /* bt_msg_t: start pending runs while slots are free */
    EX_I_RECOVER_FAIL,       /* ex_cmd_t: fail a run found running as interrupted */
    EX_I_GRACE,              /* ex_grace_t: a stopping run's grace is over */
    EX_I_LOST,               /* ex_grace_t: a kind actor stopped without an outcome */
    EX_I_PAUSE_WAIT,         /* ex_grace_t: a pause's wait for the kind is over */
    EX_I_RETRY,              /* ex_grace_t: retry a run's kind-caused write, or re-read it */
    EX_I_RECONCILE_JOB,      /* ex_grace_t (job): re-read an uncertain job's active runs */
    EX_I_ORPHAN,             /* ex_cmd_t: end a run whose creation's answer was lost */
};

#define RETRY_MIN_NS    (10 * MS)
#define EX_MAX_INFLIGHT 64 /* store requests in flight at once */
#define RETRY_MAX_NS    (2000 * MS)

typedef struct ex_grace {
    bt_msg_t hdr;
    char run_id[EX_RUN_ID_MAX];
    bt_ref_t actor;
    int reason;
    uint64_t gen; /* EX_I_PAUSE_WAIT: which wait */
    uint32_t job; /* EX_I_RECONCILE_JOB: the job's index */
} ex_grace_t;

typedef struct waiter {
    struct waiter *next;
    bt_msg_t *cmd; /* owned copy of a stop request */
} waiter_t;

typedef struct run {
    char id[EX_RUN_ID_MAX];
    uint32_t job;
    rs_state_t state;
    bool stopping;
    bt_ref_t actor;
    uint64_t seq; /* FIFO position while pending */
    char *params;
    void *ckpt;
    size_t ckpt_len;
    int64_t done, total;
    bool dirty;
    uint32_t steps;
    uint64_t persisted_at;
    uint32_t attempt;
    bt_timer_t grace;
    bool has_grace;
    waiter_t *waiters;
    /* Pause: the pause waiting for the kind's confirmation, and how many
     * EX_K_PAUSE the current actor has not confirmed yet (confirmations
     * come one per pause, in order). Resumes wait in `deferred` meanwhile. */
    bt_msg_t *pause_cmd;
    uint32_t pauses_owed;
    uint64_t pause_gen;
    bt_timer_t pause_timer;
    bool has_pause_timer;
    waiter_t *deferred;
    /* The run's outcome, reported by its kind (or decided internally),
     * not yet acknowledged by the store: retried until it is. */
    bool ending;
    bool recovering; /* found running at start-up, to be failed: see nrecovering */
    rs_state_t end_to;
    char end_cause[64];
    char end_error[EX_ERRMSG_MAX];
    bool has_retry;
    bt_timer_t retry;
    uint64_t backoff_ns;
    /* A store request about this run is in flight (its slot locks it):
     * items about the run wait; inflight_to is the state it is moving to
     * (RS_NONE for progress), counted as reserved by the policy. */
    bool inflight;
    rs_state_t inflight_to;
    /* A write about the run timed out or met another state: memory may be
     * stale. Items about the run wait until it is re-read from the store;
     * inflight_to stays reserved meanwhile. */
    bool uncertain;
} run_t;

typedef struct job {
    char *name;
    const ex_kind_t *kind;
    uint32_t max_active;
    uint64_t stop_grace_ns;
    ex_recovery_t recovery;
    /* A create of the job timed out: the store may hold a run memory does
     * not. Starts and resumes of the job wait until its active runs are
     * re-read; unsure[s] keeps the reservations of the lost creations (in
     * their initial state s) meanwhile. */
    bool uncertain;
    bool recon_armed; /* an EX_I_RECONCILE_JOB is queued or its timer armed */
    uint32_t unsure[RS_STATE_COUNT];
    uint64_t backoff_ns;
} job_t;

typedef struct qnode {
    struct qnode *next;
    bt_msg_t *m;
} qnode_t;

enum op {
    OP_NONE,
    OP_BOOT,
    OP_CREATE,
    OP_MOVE,          /* a transition asked by a command or internally */
    OP_FINISH,        /* a transition to a terminal state */
    OP_PROGRESS,      /* progress flush; then maybe a finish */
    OP_FORWARD,       /* get / list: copy the store's reply */
    OP_LOOKUP,        /* refusal of a command on a run not in memory */
    OP_KEYCHECK,      /* start with a key: has the store seen the key? */
    OP_RECONCILE,     /* re-read an uncertain run */
    OP_RECONCILE_JOB, /* re-read an uncertain job's active runs */
};

typedef struct inflight {
    enum op op;
    bool busy;
    uint64_t corr;              /* of the store ask; 0 while a boot waits for its retry */
    bt_msg_t *cmd;              /* owned copy of what is being handled */
    char run_id[EX_RUN_ID_MAX]; /* the run it locks ("" none) */
    uint32_t job;               /* OP_CREATE: the job the new run reserves a place in */
    char key[EX_IDEM_KEY_MAX];  /* OP_KEYCHECK, OP_CREATE: the key it locks ("" none) */
    rs_state_t from, to;
    const char *verb;
    /* OP_PROGRESS followed by a finish. */
    bool then_finish;
    rs_state_t fin_to;
    char fin_cause[64];
    char fin_error[EX_ERRMSG_MAX];
} inflight_t;

typedef struct exec {
    bt_ref_t store, timeouts;
    char *state_dir;
    job_t *jobs;
    uint32_t njobs;
    uint32_t max_running, max_pending, progress_steps;
    uint64_t progress_ns, force_slack_ns, store_timeout_ns;
    run_t **runs;
    uint32_t nruns, cap;
    uint64_t next_seq;
    qnode_t *qhead, *qtail;
    uint32_t qlen;
    inflight_t slots[EX_MAX_INFLIGHT]; /* store round trips in flight */
    inflight_t *cur;                   /* the slot of the item being handled */
    bool booting;                      /* recovery: nothing else runs meanwhile */
    /* Runs recovery is failing as interrupted whose write is not yet
     * acknowledged: client commands (and READY) wait for them, so "ready"
     * means recovery's writes are durable, not just decided. */
    uint32_t nrecovering;
    uint64_t promote_backoff_ns;
    bool promote_retry_armed;
    ex_stats_reply_t st; /* counters; hdr unused */
} exec_t;

/* ----------------------------------------------------------- errors */

const char *ex_strerror(int err)
{
    switch (err) {
    case EX_OK:
        return "ok";
#define EX_STR_(name, value, code, text)                                                           \
    case EX_##name:                                                                                \
        return text;
        EX_ERRNO_MAP(EX_STR_)
#undef EX_STR_
    default:
        return "unknown error";
    }
}

const char *ex_err_code(int err)
{
    switch (err) {
#define EX_CODE_(name, value, code, text)                                                          \
    case EX_##name:                                                                                \
        return code;
        EX_ERRNO_MAP(EX_CODE_)
#undef EX_CODE_
    default:
        return "internal";
    }
}

/* --------------------------------------------------------- messages */

int ex_outcome_index(int status)
{
    if (status == EX_OK)
        return 0;
    if (status <= EX_EBADREQ && status >= EX_EINTERNAL)
        return EX_EBADREQ - status + 1;
    return EX_OUTCOME_COUNT - 1; /* anything else counts as internal */
}

bt_msg_t *ex_cmd_new(uint32_t id, const char *run_id, const char *job, const char *params)
{
    return ex_cmd_new_keyed(id, run_id, job, params, NULL);
}

bt_msg_t *ex_cmd_new_keyed(uint32_t id, const char *run_id, const char *job, const char *params,
                           const char *idem_key)
{
    run_id = run_id != NULL ? run_id : "";
    job = job != NULL ? job : "";
    params = params != NULL ? params : "";
    idem_key = idem_key != NULL ? idem_key : "";
    size_t plen = strlen(params);
    if (strlen(run_id) >= EX_RUN_ID_MAX || strlen(job) >= sizeof(((ex_cmd_t *)0)->job) ||
        strlen(idem_key) >= EX_IDEM_KEY_MAX || plen > (1u << 20))
        return NULL;
    ex_cmd_t *c = (ex_cmd_t *)bt_msg_new(sizeof(ex_cmd_t) + plen + 1, id);
    if (c == NULL)
        return NULL;
    strcpy(c->run_id, run_id);
    strcpy(c->job, job);
    strcpy(c->idem_key, idem_key);
    c->params_len = (uint32_t)plen;
    memcpy(c->params, params, plen + 1);
    return &c->hdr;
}

static ex_kind_report_t *report_new(uint32_t id, const char *run_id, size_t len)
{
    ex_kind_report_t *r = (ex_kind_report_t *)bt_msg_new(sizeof(ex_kind_report_t) + len, id);
    if (r != NULL) {
        snprintf(r->run_id, sizeof(r->run_id), "%s", run_id);
        r->len = (uint32_t)len;
    }
    return r;
}

static int report_send(bt_ctx_t *ctx, bt_ref_t to, ex_kind_report_t *r)
{
    if (r == NULL)
        return BT_ENOMEM;
    int rc = bt_send(bt_ctx_runtime(ctx), to, &r->hdr);
    if (rc != BT_OK)
        bt_msg_free(&r->hdr);
    return rc;
}

int ex_kind_progress(bt_ctx_t *ctx, bt_ref_t executor, const char *run_id, int64_t done,
                     int64_t total)
{
    ex_kind_report_t *r = report_new(EX_K_PROGRESS, run_id, 0);
    if (r != NULL) {
        r->done = done;
        r->total = total;
    }
    return report_send(ctx, executor, r);
}

int ex_kind_checkpoint(bt_ctx_t *ctx, bt_ref_t executor, const char *run_id, int64_t done,
                       int64_t total, const void *data, size_t len)
{
    if (len > (1u << 20))
        return BT_EINVAL;
    ex_kind_report_t *r = report_new(EX_K_CHECKPOINT, run_id, len);
    if (r != NULL) {
        r->done = done;
        r->total = total;
        if (len > 0)
            memcpy(r->data, data, len);
    }
    return report_send(ctx, executor, r);
}

int ex_kind_done(bt_ctx_t *ctx, bt_ref_t executor, const char *run_id)
{
    return report_send(ctx, executor, report_new(EX_K_DONE, run_id, 0));
}

int ex_kind_failed(bt_ctx_t *ctx, bt_ref_t executor, const char *run_id, const char *error)
{
    ex_kind_report_t *r = report_new(EX_K_FAILED, run_id, 0);
    if (r != NULL)
        snprintf(r->error, sizeof(r->error), "%s", error != NULL ? error : "failed");
    return report_send(ctx, executor, r);
}

int ex_kind_stopped(bt_ctx_t *ctx, bt_ref_t executor, const char *run_id)
{
    return report_send(ctx, executor, report_new(EX_K_STOPPED, run_id, 0));
}

int ex_kind_paused(bt_ctx_t *ctx, bt_ref_t executor, const char *run_id)
{
    return report_send(ctx, executor, report_new(EX_K_PAUSED, run_id, 0));
}

/* ------------------------------------------------------------ helpers */

static bt_msg_t *msg_dup(const bt_msg_t *m)
{
    bt_msg_t *c = bt_msg_new(m->size, m->id);
    if (c != NULL) {
        memcpy(c, m, m->size);
        c->bt_link_ = NULL;
    }
    return c;
}

/* Queues m (at the front or the back), taking ownership of it; false
 * when out of memory, m then still the caller's. */
static bool qpush_keep(exec_t *ex, bt_msg_t *m, bool front)
{
    qnode_t *n = malloc(sizeof(*n));
    if (n == NULL)
        return false;
    n->m = m;
    n->next = NULL;
    ex->qlen++;
    if (front) {
        n->next = ex->qhead;
        ex->qhead = n;
        if (ex->qtail == NULL)
            ex->qtail = n;
    } else {
        if (ex->qtail != NULL)
            ex->qtail->next = n;
        else
            ex->qhead = n;
        ex->qtail = n;
    }
    return true;
}

/* As qpush_keep, but m is freed when out of memory. */
static bool qpush(exec_t *ex, bt_msg_t *m, bool front)
{
    if (qpush_keep(ex, m, front))
        return true;
    bt_msg_free(m);
    return false;
}

static bt_msg_t *qpop(exec_t *ex)
{
    qnode_t *n = ex->qhead;
    if (n == NULL)
        return NULL;
    ex->qhead = n->next;
    ex->qlen--;
    if (ex->qhead == NULL)
        ex->qtail = NULL;
    bt_msg_t *m = n->m;
    free(n);
    return m;
}

static void qpush_internal(exec_t *ex, uint32_t id, bool front)
{
    bt_msg_t *m = bt_msg_new(sizeof(bt_msg_t), id);
    if (m != NULL)
        qpush(ex, m, front);
}

static run_t *run_find(exec_t *ex, const char *id)
{
    for (uint32_t i = 0; i < ex->nruns; i++)
        if (strcmp(ex->runs[i]->id, id) == 0)
            return ex->runs[i];
    return NULL;
}

static run_t *run_add(exec_t *ex, const char *id, uint32_t job, rs_state_t st, const char *params)
{
    if (ex->nruns == ex->cap) {
        uint32_t cap = ex->cap ? ex->cap * 2 : 16;
        run_t **r = realloc(ex->runs, cap * sizeof(*r));
        if (r == NULL)
            return NULL;
        ex->runs = r;
        ex->cap = cap;
    }
    run_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->job = job;
    r->state = st;
    r->params = strdup(params != NULL ? params : "{}");
    r->seq = ex->next_seq++;
    ex->runs[ex->nruns++] = r;
    return r;
}

static void waiters_free(waiter_t **head)
{
    while (*head != NULL) {
        waiter_t *w = *head;
        *head = w->next;
        bt_msg_free(w->cmd);
        free(w);
    }
}

static void run_free(run_t *r)
{
    waiters_free(&r->waiters);
    waiters_free(&r->deferred);
    bt_msg_free(r->pause_cmd);
    free(r->params);
    free(r->ckpt);
    free(r);
}

static void run_remove(exec_t *ex, run_t *r)
{
    if (r->recovering)
        ex->nrecovering--;
    for (uint32_t i = 0; i < ex->nruns; i++)
        if (ex->runs[i] == r) {
            ex->runs[i] = ex->runs[--ex->nruns];
            break;
        }
    run_free(r);
}

/* Whether r holds a reservation for the state it may be moving to: a write
 * in flight, or one that timed out and is not reconciled yet. */
static bool reserves(const run_t *r, rs_state_t st)
{
    return (r->inflight || r->uncertain) && r->inflight_to == st;
}

/* Runs in state st for the policy: those in it, those moving to it (a
 * reservation made before the store write), and runs being created in it
 * (also creations that timed out, until their job is reconciled). A run
 * that is moving counts in both its states until the store answers, so a
 * limit holds whether the write succeeds or fails. */
static uint32_t count_state(const exec_t *ex, rs_state_t st)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < ex->nruns; i++) {
        const run_t *r = ex->runs[i];
        n += r->state == st || reserves(r, st);
    }
    for (uint32_t i = 0; i < EX_MAX_INFLIGHT; i++)
        n += ex->slots[i].busy && ex->slots[i].op == OP_CREATE && ex->slots[i].to == st;
    for (uint32_t j = 0; j < ex->njobs; j++)
        n += ex->jobs[j].unsure[st];
    return n;
}

/* Creations of job jx in flight. */
static uint32_t creates_in_flight(const exec_t *ex, uint32_t jx)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < EX_MAX_INFLIGHT; i++) {
        const inflight_t *in = &ex->slots[i];
        n += in->busy && in->op == OP_CREATE && in->job == jx;
    }
    return n;
}

/* Runs of job jx being created (reserved places in the job), in state st
 * (RS_NONE: any), creations that timed out included. */
static uint32_t creating(const exec_t *ex, uint32_t jx, rs_state_t st)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < EX_MAX_INFLIGHT; i++) {
        const inflight_t *in = &ex->slots[i];
        n += in->busy && in->op == OP_CREATE && in->job == jx && (st == RS_NONE || in->to == st);
    }
    for (uint32_t s = RS_NONE; s < RS_STATE_COUNT; s++)
        n += st == RS_NONE || st == (rs_state_t)s ? ex->jobs[jx].unsure[s] : 0;
    return n;
}

static int job_find(const exec_t *ex, const char *name)
{
    for (uint32_t i = 0; i < ex->njobs; i++)
        if (strcmp(ex->jobs[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int cmd_kind(uint32_t id)
{
    switch (id) {
    case EX_MSG_START:
        return EX_CMD_START;
    case EX_MSG_PAUSE:
        return EX_CMD_PAUSE;
    case EX_MSG_RESUME:
        return EX_CMD_RESUME;
    case EX_MSG_STOP:
        return EX_CMD_STOP;
    case EX_MSG_GET:
        return EX_CMD_GET;
    case EX_MSG_LIST:
        return EX_CMD_LIST;
    default:
        return -1;
    }
}

static void count_reply(exec_t *ex, uint32_t id, int status)
{
    int k = cmd_kind(id);
    if (k >= 0)
        ex->st.commands[k][ex_outcome_index(status)]++;
}

static void vreply(bt_ctx_t *ctx, exec_t *ex, const bt_msg_t *req, int status, uint32_t flags,
                   const char *run_id, int state, const char *fmt, va_list ap)
{
    if (req == NULL || !bt_msg_is_request(req))
        return;
    count_reply(ex, req->id, status);
    ex_reply_t *r = BT_MSG_NEW(ex_reply_t, EX_MSG_REPLY);
    if (r == NULL)
        return;
    r->status = status;
    r->flags = flags;
    snprintf(r->run_id, sizeof(r->run_id), "%s", run_id != NULL ? run_id : "");
    r->state = state;
    if (fmt != NULL)
        vsnprintf(r->message, sizeof(r->message), fmt, ap);
    if (bt_reply(ctx, req, &r->hdr) != BT_OK)
        bt_msg_free(&r->hdr);
}

static void reply(bt_ctx_t *ctx, exec_t *ex, const bt_msg_t *req, int status, const char *run_id,
                  int state, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static void reply(bt_ctx_t *ctx, exec_t *ex, const bt_msg_t *req, int status, const char *run_id,
                  int state, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreply(ctx, ex, req, status, 0, run_id, state, fmt, ap);
    va_end(ap);
}

static void reply_flagged(bt_ctx_t *ctx, exec_t *ex, const bt_msg_t *req, uint32_t flags,
                          const char *run_id, int state, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static void reply_flagged(bt_ctx_t *ctx, exec_t *ex, const bt_msg_t *req, uint32_t flags,
                          const char *run_id, int state, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreply(ctx, ex, req, EX_OK, flags, run_id, state, fmt, ap);
    va_end(ap);
}

/* Sends req to the store as the one request in flight. */
/* Sends req to the store from the current slot, which locks its run (and
 * reserves the state it moves to) until the answer. */
static bool store_ask(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *req)
{
    inflight_t *in = ex->cur;
    if (req == NULL)
        return false;
    uint64_t corr = 0;
    if (bt_ask(ctx, ex->store, req, ex->store_timeout_ns, &corr) != BT_OK) {
        bt_msg_free(req);
        return false;
    }
    in->busy = true;
    in->corr = corr;
    run_t *r = in->run_id[0] ? run_find(ex, in->run_id) : NULL;
    if (r != NULL) {
        r->inflight = true;
        if (in->op != OP_RECONCILE) /* a re-read keeps the uncertain write's reservation */
            r->inflight_to =
                in->op == OP_MOVE || in->op == OP_FINISH || in->then_finish ? in->to : RS_NONE;
    }
    return true;
}

static void kind_send(bt_ctx_t *ctx, bt_ref_t actor, uint32_t id)
{
    if (actor == BT_REF_NONE)
        return;
    bt_msg_t *m = bt_msg_new(sizeof(bt_msg_t), id);
    if (m != NULL && bt_send(bt_ctx_runtime(ctx), actor, m) != BT_OK)
        bt_msg_free(m);
}

/* Spawns the run's kind actor and tells it to run; a failure to spawn is
 * queued as the run's failure. */
static void launch(bt_ctx_t *ctx, exec_t *ex, run_t *r)
{
    const job_t *j = &ex->jobs[r->job];
    r->attempt++;
    ex_kind_args_t a = {.executor = bt_self(ctx),
                        .run_id = r->id,
                        .job = j->name,
                        .params = r->params,
                        .checkpoint = r->ckpt,
                        .checkpoint_len = r->ckpt_len,
                        .attempt = r->attempt,
                        .stop_grace_ns = j->stop_grace_ns,
                        .state_dir = ex->state_dir,
                        .timeouts = ex->timeouts};
    bt_spawn_opts_t opts = {.flags = j->kind->spawn_flags};
    bt_ref_t actor;
    int rc = bt_spawn(bt_ctx_runtime(ctx), j->kind->type, &a, &opts, &actor);
    if (rc == BT_OK && bt_monitor(ctx, actor, NULL) != BT_OK) {
        bt_stop(bt_ctx_runtime(ctx), actor);
        rc = BT_ENOMEM;
    }
    if (rc != BT_OK) {
        char why[EX_ERRMSG_MAX];
        snprintf(why, sizeof(why), "cannot start kind %s: %s", j->kind->name, bt_strerror(rc));
        ex_kind_report_t *f = report_new(EX_K_FAILED, r->id, 0);
        if (f != NULL) {
            snprintf(f->error, sizeof(f->error), "%s", why);
            qpush(ex, &f->hdr, true);
        }
        return;
    }
    r->actor = actor;
    r->pauses_owed = 0;
    kind_send(ctx, actor, EX_K_RUN);
}

/* -------------------------------------------------------- the commands */

/* Each handler returns true when it kept the message (a store request is in
 * flight, a stop waits for its run, a resume waits behind a pause); false
 * when it may be freed. */

/* A failure of the store itself (worth retrying), as opposed to an answer
 * about the run (not found, conflict, refused transition). */
static bool store_failed(int status)
{
    return status == RS_EFULL || status == RS_EIO || status == RS_EBUSY || status == RS_ECORRUPT ||
           status == RS_ENOMEM || status == RS_EINTERNAL || status == RS_EUNAVAILABLE ||
           status == BT_ETIMEDOUT || status == BT_ENOMEM || status == BT_ENOACTOR ||
           status == BT_EFULL;
}

/* Whether a command message is one this build can read: large enough, its
 * strings terminated inside it. */
static bool cmd_valid(const bt_msg_t *m)
{
    if (m->size < sizeof(ex_cmd_t))
        return false;
    const ex_cmd_t *c = (const ex_cmd_t *)m;
    return memchr(c->run_id, 0, sizeof(c->run_id)) != NULL &&
           memchr(c->job, 0, sizeof(c->job)) != NULL &&
           memchr(c->idem_key, 0, sizeof(c->idem_key)) != NULL &&
           (uint64_t)sizeof(ex_cmd_t) + c->params_len < m->size && c->params[c->params_len] == '\0';
}

static bool lookup_refuse(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *cmd, const char *verb)
{
    const ex_cmd_t *c = (const ex_cmd_t *)cmd;
    ex->cur->op = OP_LOOKUP;
    ex->cur->verb = verb;
    snprintf(ex->cur->run_id, sizeof(ex->cur->run_id), "%s", c->run_id);
    if (store_ask(ctx, ex, rs_req_get(c->run_id)))
        return true;
    reply(ctx, ex, cmd, EX_ESTORE, c->run_id, RS_NONE, "run %s: cannot ask the store", c->run_id);
    return false;
}

/* A run whose outcome is known but not yet saved refuses pause and resume. */
static bool ending_refuse(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *cmd, run_t *r, const char *verb)
{
    reply(ctx, ex, cmd, EX_ETRANSITION, r->id, r->state, "run %s is %s and ending as %s; cannot %s",
          r->id, rs_state_name(r->state), rs_state_name(r->end_to), verb);
    return false;
}

/* Asks the store to move r to `to`; if the store cannot be asked, answers
 * cmd with store_error and returns false. */
static bool ask_transition(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *cmd, run_t *r, rs_state_t to,
                           const char *cause, const char *error)
{
    if (store_ask(ctx, ex, rs_req_transition(r->id, r->state, to, cause, error)))
        return true;
    reply(ctx, ex, cmd, EX_ESTORE, r->id, r->state, "run %s is %s; the store could not be asked",
          r->id, rs_state_name(r->state));
    return false;
}

static bool move(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *cmd, run_t *r, rs_state_t to,
                 const char *cause)
{
    ex->cur->op = OP_MOVE;
    ex->cur->from = r->state;
    ex->cur->to = to;
    snprintf(ex->cur->run_id, sizeof(ex->cur->run_id), "%s", r->id);
    return ask_transition(ctx, ex, cmd, r, to, cause, NULL);
}

/* Arms the run's retry timer (exponential backoff): its outcome or its
 * progress is written again when it fires. */
static void schedule_retry(bt_ctx_t *ctx, exec_t *ex, run_t *r)
{
    if (r->has_retry)
        return;
    ex_grace_t *g = BT_MSG_NEW(ex_grace_t, EX_I_RETRY);
    if (g == NULL)
        return;
    snprintf(g->run_id, sizeof(g->run_id), "%s", r->id);
    uint64_t d = r->backoff_ns != 0 ? r->backoff_ns : RETRY_MIN_NS;
    r->backoff_ns = d * 2 < RETRY_MAX_NS ? d * 2 : RETRY_MAX_NS;
    if (bt_timer_start(bt_ctx_runtime(ctx), bt_self(ctx), &g->hdr, d, 0, &r->retry) != BT_OK) {
        bt_msg_free(&g->hdr); /* shutting down: recovery will see the run */
        return;
    }
    r->has_retry = true;
    ex->st.store_retries++;
}

/* Pending runs are promoted again after a failed promotion, with backoff. */
static void schedule_promote(bt_ctx_t *ctx, exec_t *ex)
{
    if (ex->promote_retry_armed)
        return;
    bt_msg_t *m = bt_msg_new(sizeof(bt_msg_t), EX_I_PROMOTE);
    uint64_t d = ex->promote_backoff_ns != 0 ? ex->promote_backoff_ns : RETRY_MIN_NS;
    ex->promote_backoff_ns = d * 2 < RETRY_MAX_NS ? d * 2 : RETRY_MAX_NS;
    if (m == NULL || bt_timer_start(bt_ctx_runtime(ctx), bt_self(ctx), m, d, 0, NULL) != BT_OK) {
        bt_msg_free(m);
        return;
    }
    ex->promote_retry_armed = true;
}

/* Writes r's unsaved progress. */
static bool flush_progress(bt_ctx_t *ctx, exec_t *ex, run_t *r)
{
    ex->cur->op = OP_PROGRESS;
    ex->cur->then_finish = false;
    snprintf(ex->cur->run_id, sizeof(ex->cur->run_id), "%s", r->id);
    if (store_ask(ctx, ex, rs_req_progress(r->id, r->done, r->total, r->ckpt, r->ckpt_len)))
        return true;
    schedule_retry(ctx, ex, r);
    return false;
}

/* Puts the commands that waited behind r's pause back at the front of the
 * work queue, in their order. */
static void release_deferred(exec_t *ex, run_t *r)
{
    waiter_t *rev = NULL;
    while (r->deferred != NULL) {
        waiter_t *w = r->deferred;
        r->deferred = w->next;
        w->next = rev;
        rev = w;
    }
    while (rev != NULL) {
        waiter_t *w = rev;
        rev = w->next;
        qpush(ex, w->cmd, true);
        free(w);
    }
}

/* Answers r's waiting pause (state: the run's state to report). */
static void answer_pause(bt_ctx_t *ctx, exec_t *ex, run_t *r, uint32_t flags, rs_state_t state)
{
    bt_msg_t *cmd = r->pause_cmd;
    r->pause_cmd = NULL;
    if (r->has_pause_timer)
        (void)bt_timer_cancel(bt_ctx_runtime(ctx), r->pause_timer);
    r->has_pause_timer = false;
    if (flags & EX_REPLY_UNCONFIRMED)
        reply_flagged(ctx, ex, cmd, flags, r->id, state,
                      "run %s is paused, but its kind did not confirm within %llu ms that it "
                      "stopped making progress",
                      r->id, (unsigned long long)(ex->jobs[r->job].stop_grace_ns / MS));
    else
        reply_flagged(ctx, ex, cmd, flags, r->id, state, NULL);
    bt_msg_free(cmd);
    release_deferred(ex, r);
}

/* Takes cmd (a pause just made durable) as r's waiting pause, answered on
 * the kind's confirmation or after the job's stop grace. False if it could
 * not wait (no timer): the caller answers at once. */
static bool pause_wait(bt_ctx_t *ctx, exec_t *ex, run_t *r, bt_msg_t *cmd)
{
    ex_grace_t *g = BT_MSG_NEW(ex_grace_t, EX_I_PAUSE_WAIT);
    if (g == NULL)
        return false;
    snprintf(g->run_id, sizeof(g->run_id), "%s", r->id);
    g->actor = r->actor;
    g->gen = ++r->pause_gen;
    if (bt_timer_start(bt_ctx_runtime(ctx), bt_self(ctx), &g->hdr, ex->jobs[r->job].stop_grace_ns,
                       0, &r->pause_timer) != BT_OK) {
        bt_msg_free(&g->hdr);
        return false;
    }
    r->has_pause_timer = true;
    r->pause_cmd = cmd;
    return true;
}

/* Adopts a run the store has and memory does not (a creation whose reply
 * was lost), as recovery would. */
static void adopt(bt_ctx_t *ctx, exec_t *ex, const rs_run_t *rr)
{
    int jx = job_find(ex, rr->job);
    if (jx < 0 || rs_state_terminal(rr->state))
        return;
    run_t *r = run_add(ex, rr->id, (uint32_t)jx, rr->state, rr->params);
    if (r == NULL)
        return;
    r->attempt = rr->attempt;
    if (rr->state == RS_RUNNING)
        launch(ctx, ex, r);
    else if (rr->state == RS_PENDING)
        qpush_internal(ex, EX_I_PROMOTE, true);
}

/* A start whose key the store already has: the same run again, or a
 * conflict if the key started another job. */
static void answer_existing(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *cmd, const rs_reply_t *rep)
{
    const ex_cmd_t *c = (const ex_cmd_t *)cmd;
    if (rep == NULL || rep->nruns < 1) {
        reply(ctx, ex, cmd, EX_ESTORE, "", RS_NONE,
              "job %s: the store did not return the run of idempotency key \"%s\"", c->job,
              c->idem_key);
        return;
    }
    rs_run_t rr;
    rs_reply_run(rep, 0, &rr);
    if (rr.job == NULL || strcmp(rr.job, c->job) != 0) {
        reply(ctx, ex, cmd, EX_ECONFLICT, rr.id, rr.state,
              "idempotency key \"%s\" started run %s of job %s; cannot start job %s with it",
              c->idem_key, rr.id, rr.job != NULL ? rr.job : "?", c->job);
        return;
    }
    const run_t *r = run_find(ex, rr.id);
    if (r == NULL) {
        adopt(ctx, ex, &rr);
        r = run_find(ex, rr.id);
    }
    ex->st.replayed++;
    reply_flagged(ctx, ex, cmd, EX_REPLY_REPLAYED, rr.id, r != NULL ? r->state : rr.state, NULL);
}

/* The policy half of a start, once the key (if any) is known to be new. */
static bool start_decide(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *cmd)
{
    const ex_cmd_t *c = (const ex_cmd_t *)cmd;
    int jx = job_find(ex, c->job);
    if (jx < 0) {
        reply(ctx, ex, cmd, EX_ENOTFOUND, "", RS_NONE, "job %s not found", c->job);
        return false;
    }
    const job_t *j = &ex->jobs[jx];
    const char *params = c->params_len > 0 ? c->params : "{}";
    uint32_t active = creating(ex, (uint32_t)jx, RS_NONE); /* reserved by starts in flight */
    const run_t *other = NULL;
    for (uint32_t i = 0; i < ex->nruns; i++)
        if (ex->runs[i]->job == (uint32_t)jx) {
            active++;
            other = ex->runs[i];
        }
    if (active >= j->max_active) {
        if (other != NULL)
            reply(ctx, ex, cmd, EX_ECONFLICT, other->id, other->state,
                  "job %s already has %u active run(s): run %s is %s; cannot start another",
                  j->name, active, other->id, rs_state_name(other->state));
        else
            reply(ctx, ex, cmd, EX_ECONFLICT, "", RS_NONE,
                  "job %s already has %u active run(s), being started; cannot start another",
                  j->name, active);
        return false;
    }
    rs_state_t initial = count_state(ex, RS_RUNNING) < ex->max_running ? RS_RUNNING : RS_PENDING;
    if (initial == RS_PENDING && count_state(ex, RS_PENDING) >= ex->max_pending) {
        reply(ctx, ex, cmd, EX_EBUSY, "", RS_NONE,
              "job %s: the pending queue is full (%u runs); try again later", j->name,
              ex->max_pending);
        return false;
    }
    ex->cur->op = OP_CREATE;
    ex->cur->to = initial;
    ex->cur->job = (uint32_t)jx;
    if (store_ask(ctx, ex,
                  rs_req_create_keyed(j->name, params, initial,
                                      c->idem_key[0] != '\0' ? c->idem_key : NULL)))
        return true;
    reply(ctx, ex, cmd, EX_ESTORE, "", RS_NONE, "job %s: the store could not be asked", j->name);
    return false;
}

static bool do_start(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *cmd)
{
    const ex_cmd_t *c = (const ex_cmd_t *)cmd;
    if (c->job[0] == '\0') {
        reply(ctx, ex, cmd, EX_EBADREQ, "", RS_NONE, "start needs a job name");
        return false;
    }
    int jx = job_find(ex, c->job);
    if (jx < 0) {
        reply(ctx, ex, cmd, EX_ENOTFOUND, "", RS_NONE, "job %s not found", c->job);
        return false;
    }
    const job_t *j = &ex->jobs[jx];
    const char *params = c->params_len > 0 ? c->params : "{}";
    char err[256] = "";
    if (j->kind->validate != NULL && j->kind->validate(params, err, sizeof(err)) != 0) {
        reply(ctx, ex, cmd, EX_EBADREQ, "", RS_NONE, "job %s: bad params: %s", c->job, err);
        return false;
    }
    if (c->idem_key[0] == '\0')
        return start_decide(ctx, ex, cmd);
    /* Keyed: the store decides whether the key is new (it outlives this
     * actor); the decision itself waits, as every command does. */
    ex->cur->op = OP_KEYCHECK;
    snprintf(ex->cur->key, sizeof(ex->cur->key), "%s", c->idem_key);
    if (store_ask(ctx, ex, rs_req_find_key(c->idem_key)))
        return true;
    reply(ctx, ex, cmd, EX_ESTORE, "", RS_NONE, "job %s: the store could not be asked", j->name);
    return false;
}

static bool do_pause(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *cmd)
{
    const ex_cmd_t *c = (const ex_cmd_t *)cmd;
    run_t *r = run_find(ex, c->run_id);
    if (r == NULL)
        return lookup_refuse(ctx, ex, cmd, "pause");
    if (r->ending)
        return ending_refuse(ctx, ex, cmd, r, "pause");
    if (r->stopping || (r->state != RS_RUNNING && r->state != RS_PENDING)) {
        reply(ctx, ex, cmd, EX_ETRANSITION, r->id, r->state, "run %s is %s; cannot pause", r->id,
              r->stopping ? "stopping" : rs_state_name(r->state));
        return false;
    }
    return move(ctx, ex, cmd, r, RS_PAUSED, "pause");
}

static bool do_resume(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *cmd)
{
    const ex_cmd_t *c = (const ex_cmd_t *)cmd;
    run_t *r = run_find(ex, c->run_id);
    if (r == NULL)
        return lookup_refuse(ctx, ex, cmd, "resume");
    if (r->ending)
        return ending_refuse(ctx, ex, cmd, r, "resume");
    if (r->pause_cmd != NULL && !r->stopping) {
        /* The pause is answered first (quiescent, or its wait over); the
         * resume is decided then, in its turn. */
        waiter_t *w = malloc(sizeof(*w)), **tail = &r->deferred;
        if (w == NULL) {
            reply(ctx, ex, cmd, EX_EINTERNAL, r->id, r->state, "run %s: out of memory", r->id);
            return false;
        }
        while (*tail != NULL)
            tail = &(*tail)->next;
        w->cmd = cmd;
        w->next = NULL;
        *tail = w;
        return true;
    }
    if (r->stopping || r->state != RS_PAUSED) {
        reply(ctx, ex, cmd, EX_ETRANSITION, r->id, r->state, "run %s is %s; cannot resume", r->id,
              r->stopping ? "stopping" : rs_state_name(r->state));
        return false;
    }
    /* Another run of the same job that is running or pending holds the
     * job's slots (possible after max_active was lowered, or with paused
     * runs recovered beside new ones). */
    const job_t *j = &ex->jobs[r->job];
    uint32_t busy = creating(ex, r->job, RS_NONE);
    const run_t *other = NULL;
    for (uint32_t i = 0; i < ex->nruns; i++) {
        const run_t *o = ex->runs[i];
        bool holds = o->state == RS_RUNNING || o->state == RS_PENDING || reserves(o, RS_RUNNING) ||
                     reserves(o, RS_PENDING);
        if (o != r && o->job == r->job && holds) {
            busy++;
            other = o;
        }
    }
    if (busy >= j->max_active) {
        if (other != NULL)
            reply(ctx, ex, cmd, EX_ECONFLICT, r->id, r->state,
                  "run %s is paused; cannot resume while run %s of job %s is %s", r->id, other->id,
                  j->name, rs_state_name(other->state));
        else
            reply(ctx, ex, cmd, EX_ECONFLICT, r->id, r->state,
                  "run %s is paused; cannot resume while a run of job %s is being started", r->id,
                  j->name);
        return false;
    }
    rs_state_t to = count_state(ex, RS_RUNNING) < ex->max_running ? RS_RUNNING : RS_PENDING;
    if (to == RS_PENDING && count_state(ex, RS_PENDING) >= ex->max_pending) {
        reply(ctx, ex, cmd, EX_EBUSY, r->id, r->state,
              "run %s is paused; cannot resume: the pending queue is full", r->id);
        return false;
    }
    return move(ctx, ex, cmd, r, to, "resume");
}

static bool finish(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *cmd, run_t *r, rs_state_t to,
                   const char *cause, const char *error);

static void stop_kind(bt_ctx_t *ctx, exec_t *ex, run_t *r);

static bool add_waiter(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *cmd, run_t *r)
{
    waiter_t *w = malloc(sizeof(*w));
    if (w == NULL) {
        reply(ctx, ex, cmd, EX_EINTERNAL, r->id, r->state, "run %s: out of memory", r->id);
        return false;
    }
    w->cmd = cmd;
    w->next = r->waiters;
    r->waiters = w;
    return true;
}

static bool do_stop(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *cmd)
{
    const ex_cmd_t *c = (const ex_cmd_t *)cmd;
    run_t *r = run_find(ex, c->run_id);
    if (r == NULL)
        return lookup_refuse(ctx, ex, cmd, "stop");
    if (r->stopping) {
        reply(ctx, ex, cmd, EX_ETRANSITION, r->id, r->state, "run %s is stopping; cannot stop",
              r->id);
        return false;
    }
    if (r->ending) /* answered once its outcome is saved, with that outcome */
        return add_waiter(ctx, ex, cmd, r);
    if (r->actor == BT_REF_NONE)
        return finish(ctx, ex, cmd, r, RS_STOPPED, "stop", NULL);
    /* Cooperative first: the kind finishes and reports; after the grace
     * (plus slack) the executor forces it. The stop is answered then. */
    if (!add_waiter(ctx, ex, cmd, r))
        return false;
    stop_kind(ctx, ex, r);
    return true;
}

/* Tells r's kind to stop and arms the forced stop after the job's grace
 * (plus slack); the kind's outcome (or the force) ends the run. */
static void stop_kind(bt_ctx_t *ctx, exec_t *ex, run_t *r)
{
    r->stopping = true;
    kind_send(ctx, r->actor, EX_K_STOP);
    ex_grace_t *g = BT_MSG_NEW(ex_grace_t, EX_I_GRACE);
    if (g != NULL) {
        snprintf(g->run_id, sizeof(g->run_id), "%s", r->id);
        g->actor = r->actor;
        uint64_t delay = ex->jobs[r->job].stop_grace_ns + ex->force_slack_ns;
        if (bt_timer_start(bt_ctx_runtime(ctx), bt_self(ctx), &g->hdr, delay, 0, &r->grace) ==
            BT_OK)
            r->has_grace = true;
        else
            bt_msg_free(&g->hdr);
    }
}

/* Moves r to a terminal state (flushing unsaved progress first). cmd is a
 * client's stop (answered store_error on failure) or NULL for an outcome
 * (end_run), which is retried until the store takes it. */
static bool finish(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *cmd, run_t *r, rs_state_t to,
                   const char *cause, const char *error)
{
    inflight_t *in = ex->cur;
    snprintf(in->run_id, sizeof(in->run_id), "%s", r->id);
    in->from = r->state;
    in->to = to;
    if (r->dirty) {
        in->op = OP_PROGRESS;
        in->then_finish = true;
        in->fin_to = to;
        snprintf(in->fin_cause, sizeof(in->fin_cause), "%s", cause);
        snprintf(in->fin_error, sizeof(in->fin_error), "%s", error != NULL ? error : "");
        if (store_ask(ctx, ex, rs_req_progress(r->id, r->done, r->total, r->ckpt, r->ckpt_len)))
            return true;
    }
    in->op = OP_FINISH;
    in->then_finish = false;
    if (store_ask(ctx, ex, rs_req_transition(r->id, r->state, to, cause, error)))
        return true;
    if (cmd != NULL)
        reply(ctx, ex, cmd, EX_ESTORE, r->id, r->state,
              "run %s is %s; the store could not be asked", r->id, rs_state_name(r->state));
    else if (r->ending)
        schedule_retry(ctx, ex, r);
    return false;
}

/* Records r's outcome: kept in memory (r->ending) until the store has it. */
static bool end_run(bt_ctx_t *ctx, exec_t *ex, run_t *r, rs_state_t to, const char *cause,
                    const char *error)
{
    r->ending = true;
    r->end_to = to;
    snprintf(r->end_cause, sizeof(r->end_cause), "%s", cause);
    snprintf(r->end_error, sizeof(r->end_error), "%s", error != NULL ? error : "");
    return finish(ctx, ex, NULL, r, to, cause, error);
}

/* ----------------------------------------------------- reconciliation */

/* Re-reads uncertain r from the store (OP_RECONCILE); the store answers in
 * order, so the answer follows the settling of the write that timed out.
 * If the store cannot be asked, again after a backoff. */
static bool reconcile_ask(bt_ctx_t *ctx, exec_t *ex, run_t *r)
{
    ex->cur->op = OP_RECONCILE;
    snprintf(ex->cur->run_id, sizeof(ex->cur->run_id), "%s", r->id);
    if (store_ask(ctx, ex, rs_req_get(r->id)))
        return true;
    schedule_retry(ctx, ex, r);
    return false;
}

/* Marks r uncertain (a write about it timed out, or found another state
 * than memory has) and queues its re-read first. Items about r wait until
 * the store has answered it; the write's reservation stays meanwhile. An
 * ending run needs none: its outcome's retry adopts what the store has. */
static void begin_reconcile(bt_ctx_t *ctx, exec_t *ex, run_t *r)
{
    if (r->ending) {
        schedule_retry(ctx, ex, r);
        return;
    }
    r->uncertain = true;
    r->backoff_ns = 0;
    if (r->has_retry) /* a progress retry: rearmed once the run is re-read */
        (void)bt_timer_cancel(bt_ctx_runtime(ctx), r->retry);
    r->has_retry = false;
    ex_grace_t *g = BT_MSG_NEW(ex_grace_t, EX_I_RETRY);
    if (g != NULL) {
        snprintf(g->run_id, sizeof(g->run_id), "%s", r->id);
        if (qpush(ex, &g->hdr, true))
            return;
    }
    schedule_retry(ctx, ex, r); /* out of memory: its timer re-reads it */
}

/* Removes r from memory: the store has it ended in st (status EX_OK), or
 * does not have it (status EX_ESTORE). Its waiting commands are answered,
 * those put aside behind its pause decided again. */
static void drop_run(bt_ctx_t *ctx, exec_t *ex, run_t *r, int status, rs_state_t st)
{
    for (waiter_t *w = r->waiters; w != NULL; w = w->next) {
        if (status == EX_OK)
            reply(ctx, ex, w->cmd, EX_OK, r->id, st, NULL);
        else
            reply(ctx, ex, w->cmd, EX_ESTORE, r->id, r->state, "run %s: the store does not have it",
                  r->id);
    }
    if (r->pause_cmd != NULL)
        answer_pause(ctx, ex, r, 0, status == EX_OK ? st : r->state);
    bool was_running = r->state == RS_RUNNING;
    if (r->has_grace)
        (void)bt_timer_cancel(bt_ctx_runtime(ctx), r->grace);
    if (r->has_retry)
        (void)bt_timer_cancel(bt_ctx_runtime(ctx), r->retry);
    release_deferred(ex, r);
    run_remove(ex, r);
    if (was_running)
        qpush_internal(ex, EX_I_PROMOTE, true);
}

/* Memory takes the store's state st for r, as if the write that moved it
 * there had been answered (nobody is: the command that asked for it was
 * answered store_error, or met a conflict and is decided again), and the
 * kind is told. May free r. */
static void adopt_state(bt_ctx_t *ctx, exec_t *ex, run_t *r, rs_state_t st)
{
    rs_state_t old = r->state;
    if (st == old || st == RS_NONE || st >= RS_STATE_COUNT) {
        if (r->dirty)
            schedule_retry(ctx, ex, r); /* progress held back while uncertain */
        return;
    }
    if (rs_state_terminal(st)) {
        if (r->actor != BT_REF_NONE) {
            /* Ended in the store, but its kind still works: stop it (grace,
             * then force). Its outcome then finds the run ended in the
             * store and takes the store's state (OP_FINISH, conflict). */
            if (!r->stopping)
                stop_kind(ctx, ex, r);
            return;
        }
        ex->st.transitions[old][st]++;
        drop_run(ctx, ex, r, EX_OK, st);
        return;
    }
    ex->st.transitions[old][st]++;
    r->state = st;
    if (st == RS_PAUSED && r->actor != BT_REF_NONE) {
        kind_send(ctx, r->actor, EX_K_PAUSE); /* its confirmation answers nobody */
        r->pauses_owed++;
    } else if (st == RS_RUNNING) {
        if (r->actor != BT_REF_NONE)
            kind_send(ctx, r->actor, EX_K_RESUME);
        else
            launch(ctx, ex, r);
    } else if (st == RS_PENDING) {
        r->seq = ex->next_seq++;
    }
    if (old == RS_RUNNING)
        qpush_internal(ex, EX_I_PROMOTE, true); /* its slot is free */
    if (r->dirty)
        schedule_retry(ctx, ex, r); /* progress held back while uncertain */
}

/* The answer to an uncertain run's re-read. May free r. */
static void reconciled(bt_ctx_t *ctx, exec_t *ex, run_t *r, const rs_reply_t *rep, int status)
{
    if (status == RS_OK && rep != NULL && rep->nruns > 0) {
        rs_run_t rr;
        rs_reply_run(rep, 0, &rr);
        r->uncertain = false;
        r->inflight_to = RS_NONE; /* the reservation becomes the state itself, or goes */
        r->backoff_ns = 0;
        ex->st.reconciles++;
        adopt_state(ctx, ex, r, rr.state);
    } else if (status == RS_ENOTFOUND || status == RS_EINVAL) {
        ex->st.reconciles++;
        drop_run(ctx, ex, r, EX_ESTORE, RS_NONE);
    } else {
        schedule_retry(ctx, ex, r); /* the store still fails: again, with backoff */
    }
}

/* Marks job jx uncertain (a create of it timed out: the store may hold a
 * run memory does not) and queues the re-read of its active runs, at once
 * or after a backoff. */
static void job_reconcile(bt_ctx_t *ctx, exec_t *ex, uint32_t jx, bool later)
{
    job_t *j = &ex->jobs[jx];
    j->uncertain = true;
    if (j->recon_armed)
        return;
    ex_grace_t *g = BT_MSG_NEW(ex_grace_t, EX_I_RECONCILE_JOB);
    if (g == NULL)
        return; /* out of memory: the job's starts wait (a restart recovers) */
    g->job = jx;
    if (!later) {
        j->recon_armed = qpush(ex, &g->hdr, true);
        return;
    }
    uint64_t d = j->backoff_ns != 0 ? j->backoff_ns : RETRY_MIN_NS;
    j->backoff_ns = d * 2 < RETRY_MAX_NS ? d * 2 : RETRY_MAX_NS;
    if (bt_timer_start(bt_ctx_runtime(ctx), bt_self(ctx), &g->hdr, d, 0, NULL) != BT_OK) {
        bt_msg_free(&g->hdr); /* shutting down: recovery will see the runs */
        return;
    }
    j->recon_armed = true;
    ex->st.store_retries++;
}

/* EX_I_RECONCILE_JOB: queued behind every create of the job in flight
 * (item_blocked), so each of them is answered or timed out before the
 * store lists the job's active runs. */
static bool do_reconcile_job(bt_ctx_t *ctx, exec_t *ex, const bt_msg_t *m)
{
    uint32_t jx = ((const ex_grace_t *)m)->job;
    if (m->size < sizeof(ex_grace_t) || jx >= ex->njobs)
        return false;
    job_t *j = &ex->jobs[jx];
    j->recon_armed = false;
    if (!j->uncertain)
        return false;
    ex->cur->op = OP_RECONCILE_JOB;
    ex->cur->job = jx;
    if (store_ask(ctx, ex, rs_req_active(j->name)))
        return true;
    job_reconcile(ctx, ex, jx, true);
    return false;
}

/* The answer to an uncertain job's re-read. An active run of the job that
 * memory does not hold is a creation whose answer was lost (the executor is
 * the store's only writer, and recovery loaded the rest): with an
 * idempotency key it is adopted, as recovery would (the client's retry
 * with the key gets it); without, nobody can name it, so it is ended,
 * "interrupted: start outcome unknown" (EX_I_ORPHAN), having run nothing. */
static void job_reconciled(bt_ctx_t *ctx, exec_t *ex, uint32_t jx, const rs_reply_t *rep,
                           int status)
{
    job_t *j = &ex->jobs[jx];
    if (status != RS_OK || rep == NULL) {
        job_reconcile(ctx, ex, jx, true);
        return;
    }
    for (uint32_t i = 0; i < rep->nruns; i++) {
        rs_run_t rr;
        rs_reply_run(rep, i, &rr);
        if (rr.id == NULL || run_find(ex, rr.id) != NULL || rr.state == RS_NONE ||
            rr.state >= RS_STATE_COUNT || rs_state_terminal(rr.state))
            continue;
        ex->st.transitions[RS_NONE][rr.state]++;
        if (rr.idem_key != NULL) {
            adopt(ctx, ex, &rr);
            continue;
        }
        run_t *r = run_add(ex, rr.id, jx, rr.state, rr.params);
        if (r == NULL)
            continue;
        r->attempt = rr.attempt;
        bt_msg_t *f = ex_cmd_new(EX_I_ORPHAN, r->id, NULL, NULL);
        if (f != NULL)
            qpush(ex, f, true);
    }
    j->uncertain = false;
    memset(j->unsure, 0, sizeof(j->unsure));
    j->backoff_ns = 0;
    ex->st.reconciles++;
}

/* EX_I_ORPHAN: ends a run found by a job's re-read (no kind ever ran it). */
static bool do_orphan(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *m)
{
    run_t *r = run_find(ex, ((const ex_cmd_t *)m)->run_id);
    if (r == NULL || r->ending || r->actor != BT_REF_NONE)
        return false;
    /* Table: a pending (or paused) run can only be stopped. */
    return end_run(ctx, ex, r, r->state == RS_RUNNING ? RS_FAILED : RS_STOPPED, "reconcile",
                   "interrupted: start outcome unknown");
}

/* EX_K_PAUSED. Handled as it arrives, not queued: it writes nothing and
 * only answers a pause that is already durable, so it need not wait behind
 * other commands' store round trips (it would, in the queue, adding one
 * round trip per queued command to every pause). */
static void on_paused(bt_ctx_t *ctx, exec_t *ex, const bt_msg_t *m)
{
    const ex_kind_report_t *k = (const ex_kind_report_t *)m;
    if (m->size < sizeof(*k))
        return; /* not built by ex_kind_paused() */
    run_t *r = run_find(ex, k->run_id);
    if (r == NULL || r->actor != m->from || r->ending)
        return; /* a late report from a run that has ended or restarted */
    /* One confirmation per EX_K_PAUSE, in order: the waiting pause is the
     * last one sent, confirmed when none is owed any more. */
    if (r->pauses_owed > 0)
        r->pauses_owed--;
    if (r->pauses_owed == 0 && r->pause_cmd != NULL)
        answer_pause(ctx, ex, r, 0, r->state);
}

static bool do_report(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *m)
{
    const ex_kind_report_t *k = (const ex_kind_report_t *)m;
    if (m->size < sizeof(*k) || m->size < sizeof(*k) + k->len)
        return false; /* not built by the report helpers */
    run_t *r = run_find(ex, k->run_id);
    if (r == NULL || r->actor != m->from || r->ending)
        return false; /* a late report from a run that has ended or restarted */
    switch (m->id) {
    case EX_K_CHECKPOINT: {
        void *p = k->len > 0 ? malloc(k->len) : NULL;
        if (k->len > 0 && p == NULL)
            return false;
        if (p != NULL)
            memcpy(p, k->data, k->len);
        free(r->ckpt);
        r->ckpt = p;
        r->ckpt_len = k->len;
    } /* fall through */
    case EX_K_PROGRESS: {
        r->done = k->done;
        r->total = k->total;
        r->dirty = true;
        r->steps++;
        uint64_t now = bt_now(bt_ctx_runtime(ctx));
        if (r->has_retry ||
            (now - r->persisted_at < ex->progress_ns && r->steps < ex->progress_steps))
            return false; /* a retry is due anyway: it writes the latest */
        return flush_progress(ctx, ex, r);
    }
    case EX_K_DONE:
    case EX_K_FAILED:
    case EX_K_STOPPED: {
        rs_state_t to = RS_STOPPED;
        const char *cause = "stop";
        if (!r->stopping && m->id == EX_K_DONE) {
            to = RS_COMPLETED;
            cause = "done";
        } else if (!r->stopping && m->id == EX_K_FAILED) {
            to = RS_FAILED;
            cause = "error";
        }
        if (r->state == RS_PAUSED && to != RS_STOPPED) {
            /* Table: paused -> stopped only; a paused run that ends on its
             * own is recorded as stopped, with its outcome as the error. */
            to = RS_STOPPED;
        }
        if (r->state == RS_PENDING)
            to = RS_STOPPED;
        return end_run(ctx, ex, r, to, cause, m->id == EX_K_FAILED ? k->error : NULL);
    }
    default:
        return false;
    }
}

/* A kind actor stopped. If it had not reported an outcome, the run is
 * failed (or stopped, when it was stopping), but only after a short delay:
 * at runtime shutdown kinds stop before the executor (newest first), and
 * the delay's timer is refused or never fires then, so a shutdown does not
 * rewrite runs that recovery will handle. */
static bool do_down(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *m)
{
    const bt_down_msg_t *d = (const bt_down_msg_t *)m;
    for (uint32_t i = 0; i < ex->nruns; i++) {
        run_t *r = ex->runs[i];
        if (r->actor != d->actor)
            continue;
        ex_grace_t *g = BT_MSG_NEW(ex_grace_t, EX_I_LOST);
        if (g == NULL)
            return false;
        snprintf(g->run_id, sizeof(g->run_id), "%s", r->id);
        g->actor = d->actor;
        g->reason = d->reason;
        if (bt_timer_start(bt_ctx_runtime(ctx), bt_self(ctx), &g->hdr, 20 * MS, 0, NULL) != BT_OK)
            bt_msg_free(&g->hdr);
        return false;
    }
    return false;
}

static bool do_lost(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *m)
{
    const ex_grace_t *g = (const ex_grace_t *)m;
    run_t *r = run_find(ex, g->run_id);
    if (r == NULL || r->actor != g->actor)
        return false;
    r->actor = BT_REF_NONE;
    if (r->ending)
        return false; /* it reported its outcome, which waits for the store */
    char why[EX_ERRMSG_MAX];
    snprintf(why, sizeof(why), "the job kind's actor stopped without an outcome: %s",
             g->reason == BT_OK ? "normal stop" : bt_strerror(g->reason));
    rs_state_t to = r->stopping || r->state != RS_RUNNING ? RS_STOPPED : RS_FAILED;
    return end_run(ctx, ex, r, to, "kind stopped", why);
}

static bool do_grace(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *m)
{
    const ex_grace_t *g = (const ex_grace_t *)m;
    run_t *r = run_find(ex, g->run_id);
    if (r == NULL || !r->stopping || r->actor != g->actor || r->ending)
        return false;
    r->has_grace = false;
    bt_stop(bt_ctx_runtime(ctx), r->actor);
    r->actor = BT_REF_NONE;
    return end_run(ctx, ex, r, RS_STOPPED, "forced stop", "forced after the stop grace");
}

/* EX_I_PAUSE_WAIT, handled as it arrives (as on_paused). */
static void on_pause_wait(bt_ctx_t *ctx, exec_t *ex, const bt_msg_t *m)
{
    const ex_grace_t *g = (const ex_grace_t *)m;
    run_t *r = run_find(ex, g->run_id);
    if (r == NULL || r->pause_cmd == NULL || g->gen != r->pause_gen)
        return; /* answered meanwhile */
    r->has_pause_timer = false;
    ex->st.pause_timeouts++;
    answer_pause(ctx, ex, r, EX_REPLY_UNCONFIRMED, r->state);
}

static bool do_retry(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *m)
{
    run_t *r = run_find(ex, ((const ex_grace_t *)m)->run_id);
    if (r == NULL)
        return false;
    r->has_retry = false;
    if (r->uncertain)
        return reconcile_ask(ctx, ex, r);
    if (r->ending)
        return finish(ctx, ex, NULL, r, r->end_to, r->end_cause,
                      r->end_error[0] ? r->end_error : NULL);
    if (r->dirty)
        return flush_progress(ctx, ex, r);
    return false;
}

static bool do_promote(bt_ctx_t *ctx, exec_t *ex)
{
    ex->promote_retry_armed = false;
    if (count_state(ex, RS_RUNNING) >= ex->max_running)
        return false;
    run_t *best = NULL;
    for (uint32_t i = 0; i < ex->nruns; i++) {
        run_t *r = ex->runs[i];
        if (r->state == RS_PENDING && !r->stopping && !r->ending && !r->inflight && !r->uncertain &&
            (best == NULL || r->seq < best->seq))
            best = r;
    }
    if (best == NULL)
        return false;
    ex->cur->op = OP_MOVE;
    ex->cur->from = RS_PENDING;
    ex->cur->to = RS_RUNNING;
    snprintf(ex->cur->run_id, sizeof(ex->cur->run_id), "%s", best->id);
    if (store_ask(ctx, ex, rs_req_transition(best->id, RS_PENDING, RS_RUNNING, "slot", NULL)))
        return true;
    schedule_promote(ctx, ex);
    return false;
}

static bool do_recover_fail(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *m)
{
    run_t *r = run_find(ex, ((const ex_cmd_t *)m)->run_id);
    if (r == NULL || r->ending)
        return false;
    return end_run(ctx, ex, r, RS_FAILED, "recovery", "interrupted by a restart");
}

static bool handle(bt_ctx_t *ctx, exec_t *ex, bt_msg_t *m)
{
    if (m->id >= EX_MSG_START && m->id <= EX_MSG_LIST && !cmd_valid(m)) {
        reply(ctx, ex, m, EX_EBADREQ, "", RS_NONE, "malformed command (build it with ex_cmd_new)");
        return false;
    }
    switch (m->id) {
    case EX_I_BOOT:
        ex->cur->op = OP_BOOT;
        ex->booting = true; /* nothing else until recovery is done */
        if (store_ask(ctx, ex, rs_req_recovery()))
            return true;
        ex->cur->busy = true; /* ask again after a while */
        ex->cur->corr = 0;
        {
            bt_msg_t *t = bt_msg_new(sizeof(bt_msg_t), EX_I_BOOT_RETRY);
            if (t != NULL &&
                bt_timer_start(bt_ctx_runtime(ctx), bt_self(ctx), t, 100 * MS, 0, NULL) != BT_OK)
                bt_msg_free(t);
        }
        return true;
    case EX_MSG_START:
        return do_start(ctx, ex, m);
    case EX_MSG_PAUSE:
        return do_pause(ctx, ex, m);
    case EX_MSG_RESUME:
        return do_resume(ctx, ex, m);
    case EX_MSG_STOP:
        return do_stop(ctx, ex, m);
    case EX_MSG_READY: /* queued behind recovery: answered once it is done */
        reply(ctx, ex, m, EX_OK, "", RS_NONE, NULL);
        return false;
    case EX_MSG_GET:
    case EX_MSG_LIST: {
        const ex_cmd_t *c = (const ex_cmd_t *)m;
        ex->cur->op = OP_FORWARD;
        bt_msg_t *req = m->id == EX_MSG_GET ? rs_req_get(c->run_id)
                                            : rs_req_list(c->job[0] ? c->job : NULL, 0, NULL, 0);
        if (store_ask(ctx, ex, req))
            return true;
        reply(ctx, ex, m, EX_ESTORE, c->run_id, RS_NONE, "the store could not be asked");
        return false;
    }
    case EX_K_PROGRESS:
    case EX_K_CHECKPOINT:
    case EX_K_DONE:
    case EX_K_FAILED:
    case EX_K_STOPPED:
        return do_report(ctx, ex, m);
    case BT_MSG_DOWN:
        return do_down(ctx, ex, m);
    case EX_I_GRACE:
        return do_grace(ctx, ex, m);
    case EX_I_LOST:
        return do_lost(ctx, ex, m);
    case EX_I_RETRY:
        return do_retry(ctx, ex, m);
    case EX_I_PROMOTE:
        return do_promote(ctx, ex);
    case EX_I_RECOVER_FAIL:
        return do_recover_fail(ctx, ex, m);
    case EX_I_RECONCILE_JOB:
        return do_reconcile_job(ctx, ex, m);
    case EX_I_ORPHAN:
        return do_orphan(ctx, ex, m);
    default:
        if (bt_msg_is_request(m))
            reply(ctx, ex, m, EX_EBADREQ, "", RS_NONE, "unknown command %#x", (unsigned)m->id);
        return false;
    }
}

/* ------------------------------------------------- store continuations */

static void after_boot(bt_ctx_t *ctx, exec_t *ex, const rs_reply_t *rep)
{
    for (uint32_t i = 0; i < rep->nruns; i++) {
        rs_run_t rr;
        rs_reply_run(rep, i, &rr);
        if (run_find(ex, rr.id) != NULL)
            continue;
        int jx = job_find(ex, rr.job);
        if (jx < 0)
            continue; /* a job no longer configured: left as it is, listed in the store */
        run_t *r = run_add(ex, rr.id, (uint32_t)jx, rr.state, rr.params);
        if (r == NULL)
            continue;
        r->attempt = rr.attempt;
        r->done = rr.progress_done;
        r->total = rr.progress_total;
        if (rr.checkpoint != NULL && rr.checkpoint_len > 0 &&
            (r->ckpt = malloc(rr.checkpoint_len)) != NULL) {
            memcpy(r->ckpt, rr.checkpoint, rr.checkpoint_len);
            r->ckpt_len = rr.checkpoint_len;
        }
        if (rr.state != RS_RUNNING)
            continue; /* pending: queued again in id (creation) order; paused: stays */
        const job_t *j = &ex->jobs[jx];
        ex_recovery_t pol = j->recovery != EX_RECOVERY_DEFAULT ? j->recovery : j->kind->recovery;
        if (pol == EX_RECOVERY_RESUME) {
            launch(ctx, ex, r);
        } else {
            bt_msg_t *f = ex_cmd_new(EX_I_RECOVER_FAIL, r->id, NULL, NULL);
            if (f != NULL && qpush(ex, f, true)) {
                r->recovering = true;
                ex->nrecovering++;
            }
        }
    }
    /* Pending runs may start once the failures are recorded. */
    bt_msg_t *p = bt_msg_new(sizeof(bt_msg_t), EX_I_PROMOTE);
    if (p != NULL) {
        /* Behind the failures just pushed to the front, before commands. */
        qnode_t **pp = &ex->qhead;
        while (*pp != NULL && (*pp)->m->id == EX_I_RECOVER_FAIL)
            pp = &(*pp)->next;
        qnode_t *n = malloc(sizeof(*n));
        if (n == NULL) {
            bt_msg_free(p);
        } else {
            n->m = p;
            n->next = *pp;
            *pp = n;
            ex->qlen++;
            if (n->next == NULL)
                ex->qtail = n;
        }
    }
}

/* Puts the slot's command back at the front of the work queue, to be
 * decided again (it waits while its run is uncertain); answered internal
 * when out of memory. */
static void requeue(bt_ctx_t *ctx, exec_t *ex, inflight_t *in)
{
    if (qpush_keep(ex, in->cmd, true))
        in->cmd = NULL;
    else
        reply(ctx, ex, in->cmd, EX_EINTERNAL, "", RS_NONE, "executor out of memory");
}

/* Answers a command on r whose write timed out: store_error, but the
 * outcome is unknown (the run is re-read, and memory follows the store). */
static void reply_timeout(bt_ctx_t *ctx, exec_t *ex, const bt_msg_t *cmd, const run_t *r)
{
    const char *verb = cmd->id == EX_MSG_PAUSE    ? "pause"
                       : cmd->id == EX_MSG_RESUME ? "resume"
                       : cmd->id == EX_MSG_STOP   ? "stop"
                                                  : "change";
    reply(ctx, ex, cmd, EX_ESTORE, r->id, r->state,
          "run %s is %s; the store did not answer in time: the %s may still take effect (GET the "
          "run to see its state)",
          r->id, rs_state_name(r->state), verb);
}

static bool continue_op(bt_ctx_t *ctx, exec_t *ex, const rs_reply_t *rep, int status,
                        const char *smsg)
{
    inflight_t *in = ex->cur;
    bt_msg_t *cmd = in->cmd;
    run_t *r = in->run_id[0] ? run_find(ex, in->run_id) : NULL;
    switch (in->op) {
    case OP_BOOT:
        if (status != RS_OK) {
            bt_msg_t *m = bt_msg_new(sizeof(bt_msg_t), EX_I_BOOT_RETRY);
            if (m != NULL &&
                bt_timer_start(bt_ctx_runtime(ctx), bt_self(ctx), m, 100 * MS, 0, NULL) != BT_OK)
                bt_msg_free(m);
            return true; /* stays busy: commands wait for recovery */
        }
        ex->booting = false;
        after_boot(ctx, ex, rep);
        return false;
    case OP_KEYCHECK: {
        const ex_cmd_t *c = (const ex_cmd_t *)cmd;
        if (status == RS_OK) {
            answer_existing(ctx, ex, cmd, rep);
            return false;
        }
        if (status == RS_ENOTFOUND) { /* a new key */
            int jx = job_find(ex, c->job);
            if (jx >= 0 && ex->jobs[jx].uncertain && qpush_keep(ex, cmd, true)) {
                /* A create of the job timed out meanwhile: decided (the key
                 * looked up again) once the job is re-read. */
                in->cmd = NULL;
                return false;
            }
            return start_decide(ctx, ex, cmd);
        }
        reply(ctx, ex, cmd, EX_ESTORE, "", RS_NONE,
              "job %s: the store could not look the idempotency key up: %s", c->job, smsg);
        return false;
    }
    case OP_CREATE: {
        const ex_cmd_t *c = (const ex_cmd_t *)cmd;
        if (status == RS_EDUPLICATE) { /* the store's unique index: the same as a found key */
            answer_existing(ctx, ex, cmd, rep);
            return false;
        }
        if (status == BT_ETIMEDOUT) {
            /* The store may still create the run: it keeps its place in the
             * job until the job's active runs are re-read. */
            ex->jobs[in->job].unsure[in->to]++;
            job_reconcile(ctx, ex, in->job, false);
            if (c->idem_key[0] != '\0')
                reply(ctx, ex, cmd, EX_ESTORE, "", RS_NONE,
                      "job %s: the store did not answer in time; the start may still take "
                      "effect: start again with the same idempotency key to get its run",
                      c->job);
            else
                reply(ctx, ex, cmd, EX_ESTORE, "", RS_NONE,
                      "job %s: the store did not answer in time; a run it may still create is "
                      "ended as \"interrupted: start outcome unknown\" (list the job's runs)",
                      c->job);
            return false;
        }
        if (status != RS_OK) {
            reply(ctx, ex, cmd, EX_ESTORE, "", RS_NONE, "job %s: the store refused the run: %s",
                  c->job, smsg);
            return false;
        }
        ex->st.transitions[RS_NONE][in->to]++;
        run_t *nr = run_add(ex, rep->run_id, (uint32_t)job_find(ex, c->job), in->to,
                            c->params_len > 0 ? c->params : "{}");
        if (nr == NULL) {
            reply(ctx, ex, cmd, EX_EINTERNAL, rep->run_id, in->to, "run %s: out of memory",
                  rep->run_id);
            return false;
        }
        if (nr->state == RS_RUNNING)
            launch(ctx, ex, nr);
        reply(ctx, ex, cmd, EX_OK, nr->id, nr->state, NULL);
        return false;
    }
    case OP_MOVE:
        if (r == NULL)
            return false;
        if (status != RS_OK) {
            bool client = cmd->id != EX_I_PROMOTE;
            if (status == RS_ECONFLICT || status == BT_ETIMEDOUT) {
                /* Memory is stale (conflict) or may be (timeout: the store
                 * may still commit it): the run is re-read before anything
                 * else about it is decided. A conflicting command is
                 * decided again then; a timed-out one is answered now. */
                if (client && status == RS_ECONFLICT)
                    requeue(ctx, ex, in);
                else if (client)
                    reply_timeout(ctx, ex, cmd, r);
                begin_reconcile(ctx, ex, r);
                return false;
            }
            /* A client's command: refused, nothing changed. A promotion:
             * tried again later. */
            if (client)
                reply(ctx, ex, cmd, EX_ESTORE, r->id, r->state,
                      "run %s is %s; the store failed: %s", r->id, rs_state_name(r->state), smsg);
            else if (store_failed(status))
                schedule_promote(ctx, ex);
            return false;
        }
        ex->st.transitions[r->state][in->to]++;
        r->state = in->to;
        if (in->to == RS_PAUSED && in->from == RS_RUNNING) {
            qpush_internal(ex, EX_I_PROMOTE, true);
            if (r->actor != BT_REF_NONE) {
                kind_send(ctx, r->actor, EX_K_PAUSE);
                r->pauses_owed++;
                if (cmd != NULL && bt_msg_is_request(cmd) && pause_wait(ctx, ex, r, cmd)) {
                    in->cmd = NULL; /* the run holds it until the kind confirms */
                    return false;
                }
            }
        } else if (in->to == RS_RUNNING) {
            if (r->actor != BT_REF_NONE)
                kind_send(ctx, r->actor, EX_K_RESUME);
            else
                launch(ctx, ex, r);
            if (in->from == RS_PENDING) {
                ex->promote_backoff_ns = 0;
                qpush_internal(ex, EX_I_PROMOTE, true);
            }
        } else if (in->to == RS_PENDING) {
            r->seq = ex->next_seq++;
        }
        reply(ctx, ex, cmd, EX_OK, r->id, r->state, NULL);
        return false;
    case OP_PROGRESS:
        if (r == NULL)
            return false;
        if (status == RS_OK) {
            r->dirty = false;
            r->steps = 0;
            r->persisted_at = bt_now(bt_ctx_runtime(ctx));
            r->backoff_ns = 0;
        } else if (store_failed(status)) {
            /* Kept dirty. A client's stop is refused; an outcome or a
             * checkpoint is written again later. */
            if (in->then_finish && !r->ending) {
                reply(ctx, ex, cmd, EX_ESTORE, r->id, r->state,
                      "run %s is %s; the store failed: %s", r->id, rs_state_name(r->state), smsg);
                return false;
            }
            schedule_retry(ctx, ex, r);
            return false;
        } else if (status == RS_ECONFLICT && !in->then_finish) {
            begin_reconcile(ctx, ex, r); /* the store has it ended: memory is stale */
            return false;
        }
        if (in->then_finish) {
            in->then_finish = false;
            in->op = OP_FINISH;
            if (store_ask(ctx, ex,
                          rs_req_transition(r->id, r->state, in->fin_to, in->fin_cause,
                                            in->fin_error[0] ? in->fin_error : NULL)))
                return true;
            if (!r->ending)
                reply(ctx, ex, cmd, EX_ESTORE, r->id, r->state,
                      "run %s is %s; the store could not be asked", r->id, rs_state_name(r->state));
            else
                schedule_retry(ctx, ex, r);
        }
        return false;
    case OP_FINISH: {
        if (r == NULL)
            return false;
        if (status != RS_OK) {
            if (!r->ending && (status == RS_ECONFLICT || status == BT_ETIMEDOUT)) {
                /* A client's stop on a stale view, or one the store may
                 * still commit: as for OP_MOVE. */
                if (status == RS_ECONFLICT)
                    requeue(ctx, ex, in);
                else
                    reply_timeout(ctx, ex, cmd, r);
                begin_reconcile(ctx, ex, r);
                return false;
            }
            if (!r->ending) { /* a client's stop: refused, nothing changed */
                reply(ctx, ex, cmd, EX_ESTORE, r->id, r->state,
                      "run %s is %s; the store failed: %s", r->id, rs_state_name(r->state), smsg);
                return false;
            }
            if (store_failed(status)) {
                schedule_retry(ctx, ex, r);
                return false;
            }
            if (status == RS_ECONFLICT && rep != NULL && rs_state_terminal(rep->state)) {
                /* Saved already (by a try whose answer was lost) or ended
                 * elsewhere: memory follows the store. */
                in->to = rep->state;
            } else if (status == RS_ECONFLICT && rep != NULL && rep->state != RS_NONE) {
                /* The store has another state: move from that one. */
                r->state = rep->state;
                if (!rs_transition_allowed(r->state, r->end_to))
                    r->end_to = RS_STOPPED;
                schedule_retry(ctx, ex, r);
                return false;
            } else {
                /* The store does not know the run: nothing to save it in. */
                for (waiter_t *w = r->waiters; w != NULL; w = w->next)
                    reply(ctx, ex, w->cmd, EX_ESTORE, r->id, r->state,
                          "run %s: the store refused its end: %s", r->id, smsg);
                if (r->pause_cmd != NULL)
                    answer_pause(ctx, ex, r, 0, r->state);
                bool was_running = r->state == RS_RUNNING;
                if (r->has_grace)
                    (void)bt_timer_cancel(bt_ctx_runtime(ctx), r->grace);
                if (r->has_retry)
                    (void)bt_timer_cancel(bt_ctx_runtime(ctx), r->retry);
                run_remove(ex, r);
                if (was_running)
                    qpush_internal(ex, EX_I_PROMOTE, true);
                return false;
            }
        }
        ex->st.transitions[r->state][in->to]++;
        bool was_running = r->state == RS_RUNNING;
        if (r->has_grace)
            (void)bt_timer_cancel(bt_ctx_runtime(ctx), r->grace);
        if (r->has_retry)
            (void)bt_timer_cancel(bt_ctx_runtime(ctx), r->retry);
        if (r->actor != BT_REF_NONE && in->to == RS_STOPPED)
            kind_send(ctx, r->actor, EX_K_STOP);
        if (r->pause_cmd != NULL) /* the run makes no more progress: the pause is done */
            answer_pause(ctx, ex, r, 0, in->to);
        for (waiter_t *w = r->waiters; w != NULL; w = w->next)
            reply(ctx, ex, w->cmd, EX_OK, r->id, in->to, NULL);
        reply(ctx, ex, cmd, EX_OK, r->id, in->to, NULL);
        release_deferred(ex, r);
        run_remove(ex, r);
        if (was_running)
            qpush_internal(ex, EX_I_PROMOTE, true);
        return false;
    }
    case OP_FORWARD:
        if (rep != NULL) {
            count_reply(ex, cmd->id,
                        rep->status == RS_OK                                      ? EX_OK
                        : rep->status == RS_ENOTFOUND || rep->status == RS_EINVAL ? EX_ENOTFOUND
                                                                                  : EX_ESTORE);
            bt_msg_t *copy = msg_dup(&rep->hdr);
            if (copy != NULL && bt_reply(ctx, cmd, copy) != BT_OK)
                bt_msg_free(copy);
        } else {
            reply(ctx, ex, cmd, EX_ESTORE, "", RS_NONE, "the store did not answer: %s", smsg);
        }
        return false;
    case OP_LOOKUP: {
        const ex_cmd_t *c = (const ex_cmd_t *)cmd;
        if (status == RS_OK && rep != NULL && rep->nruns > 0) {
            rs_run_t rr;
            rs_reply_run(rep, 0, &rr);
            reply(ctx, ex, cmd, EX_ETRANSITION, c->run_id, rr.state, "run %s is %s; cannot %s",
                  c->run_id, rs_state_name(rr.state), in->verb);
        } else if (status == RS_ENOTFOUND || status == RS_EINVAL) {
            reply(ctx, ex, cmd, EX_ENOTFOUND, c->run_id, RS_NONE, "run %s not found; cannot %s",
                  c->run_id, in->verb);
        } else {
            reply(ctx, ex, cmd, EX_ESTORE, c->run_id, RS_NONE, "run %s: the store failed: %s",
                  c->run_id, smsg);
        }
        return false;
    }
    case OP_RECONCILE:
        if (r != NULL)
            reconciled(ctx, ex, r, rep, status);
        return false;
    case OP_RECONCILE_JOB:
        job_reconciled(ctx, ex, in->job, rep, status);
        return false;
    case OP_NONE:
        break;
    }
    return false;
}

/* The run a queued item is about, or NULL. */
static run_t *item_run(exec_t *ex, const bt_msg_t *m)
{
    switch (m->id) {
    case EX_MSG_PAUSE:
    case EX_MSG_RESUME:
    case EX_MSG_STOP:
    case EX_I_RECOVER_FAIL:
    case EX_I_ORPHAN:
        return m->size >= sizeof(ex_cmd_t) ? run_find(ex, ((const ex_cmd_t *)m)->run_id) : NULL;
    case EX_K_PROGRESS:
    case EX_K_CHECKPOINT:
    case EX_K_DONE:
    case EX_K_FAILED:
    case EX_K_STOPPED:
        return m->size >= sizeof(ex_kind_report_t)
                   ? run_find(ex, ((const ex_kind_report_t *)m)->run_id)
                   : NULL;
    case EX_I_GRACE:
    case EX_I_LOST:
    case EX_I_RETRY:
        return run_find(ex, ((const ex_grace_t *)m)->run_id);
    default:
        return NULL;
    }
}

/* Whether a queued item must wait: its run has a store request in flight,
 * or (a keyed start) its key has. Items about one run keep their order;
 * items about different runs may pass each other, which is safe because
 * none of them has been answered yet, and each is decided against the
 * acknowledged state plus every reservation in flight. */
static bool item_blocked(exec_t *ex, const bt_msg_t *m)
{
    if (ex->nrecovering > 0 &&
        ((m->id >= EX_MSG_START && m->id <= EX_MSG_LIST) || m->id == EX_MSG_READY))
        return true; /* recovery's failures are not durable yet */
    if (m->id == EX_MSG_START && m->size >= sizeof(ex_cmd_t)) {
        const ex_cmd_t *c = (const ex_cmd_t *)m;
        if (memchr(c->job, 0, sizeof(c->job)) != NULL) {
            int jx = job_find(ex, c->job);
            if (jx >= 0 && ex->jobs[jx].uncertain)
                return true; /* a create of the job timed out: re-read first */
        }
        if (c->idem_key[0] == '\0' || memchr(c->idem_key, 0, sizeof(c->idem_key)) == NULL)
            return false;
        for (uint32_t i = 0; i < EX_MAX_INFLIGHT; i++) {
            const inflight_t *in = &ex->slots[i];
            if (in->busy && (in->op == OP_KEYCHECK || in->op == OP_CREATE) &&
                strcmp(in->key, c->idem_key) == 0)
                return true;
        }
        return false;
    }
    if (m->id == EX_I_RECONCILE_JOB) {
        uint32_t jx = ((const ex_grace_t *)m)->job;
        return jx < ex->njobs && creates_in_flight(ex, jx) > 0;
    }
    const run_t *r = item_run(ex, m);
    if (r == NULL)
        return false;
    if (r->inflight)
        return true;
    if (m->id == EX_I_RETRY)
        return false; /* an outcome's retry, or an uncertain run's re-read */
    return r->uncertain || (m->id == EX_MSG_RESUME && ex->jobs[r->job].uncertain);
}

static inflight_t *free_slot(exec_t *ex)
{
    for (uint32_t i = 0; i < EX_MAX_INFLIGHT; i++)
        if (!ex->slots[i].busy)
            return &ex->slots[i];
    return NULL;
}

/* Handles queued work, in order except that an item whose run (or key) is
 * locked by a request in flight waits and later items may go first, until
 * the queue has only waiting items or every slot is in flight. Recovery
 * (the first item) runs alone. */
static void pump(bt_ctx_t *ctx, exec_t *ex)
{
    qnode_t **pp = &ex->qhead, *prev = NULL;
    while (*pp != NULL && !ex->booting) {
        inflight_t *slot = free_slot(ex);
        if (slot == NULL)
            return;
        qnode_t *n = *pp;
        if (item_blocked(ex, n->m)) {
            prev = n;
            pp = &n->next;
            continue;
        }
        *pp = n->next;
        if (ex->qtail == n)
            ex->qtail = prev;
        ex->qlen--;
        bt_msg_t *m = n->m;
        free(n);
        memset(slot, 0, sizeof(*slot));
        slot->cmd = m;
        ex->cur = slot;
        bool kept = handle(ctx, ex, m);
        if (!slot->busy) {
            slot->cmd = NULL;
            if (!kept)
                bt_msg_free(m);
        } /* else m is freed when the store answers */
        /* Handlers may push to the front: look from the head again. */
        pp = &ex->qhead;
        prev = NULL;
    }
}

/* Queues a promotion when a pending run could start and none is queued.
 * With round trips overlapping, a slot may free up (a pause saved, a
 * resume failed) before the pending run it is for exists in memory (its
 * creation still in flight), so every answer checks again. */
static void maybe_promote(exec_t *ex)
{
    if (count_state(ex, RS_RUNNING) >= ex->max_running)
        return;
    bool candidate = false;
    for (uint32_t i = 0; i < ex->nruns && !candidate; i++) {
        const run_t *r = ex->runs[i];
        candidate =
            r->state == RS_PENDING && !r->inflight && !r->uncertain && !r->stopping && !r->ending;
    }
    if (!candidate)
        return;
    for (const qnode_t *n = ex->qhead; n != NULL; n = n->next)
        if (n->m->id == EX_I_PROMOTE)
            return;
    qpush_internal(ex, EX_I_PROMOTE, false);
}

static void on_store(bt_ctx_t *ctx, exec_t *ex, uint64_t corr, const rs_reply_t *rep, int status,
                     const char *smsg)
{
    inflight_t *slot = NULL;
    /* A reply's hdr.corr is the ask's id with the top bit set (the
     * runtime's reply mark, BT_CORR_REPLY in runtime/core/internal.h; ask
     * ids never have it), a timeout's is the id itself. */
    corr &= ~((uint64_t)1 << 63);
    for (uint32_t i = 0; i < EX_MAX_INFLIGHT && slot == NULL; i++)
        if (ex->slots[i].busy && ex->slots[i].corr == corr && corr != 0)
            slot = &ex->slots[i];
    if (slot == NULL)
        return; /* not ours, or late */
    slot->busy = false;
    run_t *r = slot->run_id[0] ? run_find(ex, slot->run_id) : NULL;
    if (r != NULL)
        r->inflight = false;
    if (store_failed(status))
        ex->st.store_failures++;
    ex->cur = slot;
    bool again = continue_op(ctx, ex, rep, status, smsg);
    if (again && slot->op == OP_BOOT && !slot->busy) {
        slot->busy = true; /* waiting for the retry timer */
        slot->corr = 0;
        return;
    }
    if (!again) {
        bt_msg_free(slot->cmd);
        slot->cmd = NULL;
    }
    if (!ex->booting)
        maybe_promote(ex);
    pump(ctx, ex);
}

/* ------------------------------------------------------------ the actor */

static void ex_free(exec_t *ex);

static int ex_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    exec_t *ex = state;
    const ex_config_t *cfg = arg;
    ex->store = cfg->store;
    ex->timeouts = cfg->timeouts;
    ex->max_running = cfg->max_running ? cfg->max_running : 4;
    ex->max_pending = cfg->max_pending ? cfg->max_pending : 1024;
    ex->progress_ns = cfg->progress_every_ns ? cfg->progress_every_ns : 1000 * MS;
    ex->progress_steps = cfg->progress_every_steps ? cfg->progress_every_steps : 100;
    ex->force_slack_ns = cfg->force_slack_ns ? cfg->force_slack_ns : 1000 * MS;
    ex->store_timeout_ns = cfg->store_timeout_ns ? cfg->store_timeout_ns : 10000 * MS;
    ex->state_dir = strdup(cfg->state_dir != NULL ? cfg->state_dir : ".");
    ex->jobs = calloc(cfg->njobs ? cfg->njobs : 1, sizeof(job_t));
    if (ex->state_dir == NULL || ex->jobs == NULL) {
        ex_free(ex);
        return BT_ENOMEM;
    }
    for (uint32_t i = 0; i < cfg->njobs; i++) {
        const ex_job_t *j = &cfg->jobs[i];
        const ex_kind_t *k = NULL;
        for (uint32_t n = 0; n < cfg->nkinds; n++)
            if (j->kind != NULL && strcmp(cfg->kinds[n]->name, j->kind) == 0)
                k = cfg->kinds[n];
        if (k == NULL || j->name == NULL) {
            ex_free(ex);
            return BT_EINVAL;
        }
        job_t *d = &ex->jobs[ex->njobs++];
        d->name = strdup(j->name);
        if (d->name == NULL) {
            ex_free(ex);
            return BT_ENOMEM;
        }
        d->kind = k;
        d->max_active = j->max_active ? j->max_active : 1;
        d->stop_grace_ns = j->stop_grace_ns ? j->stop_grace_ns : 5000 * MS;
        d->recovery = j->recovery;
    }
    bt_msg_t *boot = bt_msg_new(sizeof(bt_msg_t), EX_I_BOOT);
    if (boot == NULL || bt_send(bt_ctx_runtime(ctx), bt_self(ctx), boot) != BT_OK) {
        bt_msg_free(boot);
        ex_free(ex);
        return BT_ENOMEM;
    }
    return BT_OK;
}

static int ex_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    exec_t *ex = state;
    switch (msg->id) {
    case RS_MSG_REPLY: {
        const rs_reply_t *rep = (const rs_reply_t *)msg;
        on_store(ctx, ex, msg->corr, rep, rep->status, rep->message);
        return BT_OK;
    }
    case BT_MSG_TIMEOUT:
        on_store(ctx, ex, msg->corr, NULL, BT_ETIMEDOUT, "the store did not answer in time");
        return BT_OK;
    case EX_I_BOOT_RETRY:
        for (uint32_t i = 0; i < EX_MAX_INFLIGHT; i++)
            if (ex->slots[i].busy && ex->slots[i].op == OP_BOOT && ex->slots[i].corr == 0)
                ex->cur = &ex->slots[i];
        if (ex->booting && ex->cur != NULL && ex->cur->busy && ex->cur->op == OP_BOOT &&
            ex->cur->corr == 0) {
            ex->cur->busy = false;
            if (!store_ask(ctx, ex, rs_req_recovery())) {
                ex->cur->busy = true;
                ex->cur->corr = 0;
                bt_msg_t *m = bt_msg_new(sizeof(bt_msg_t), EX_I_BOOT_RETRY);
                if (m != NULL && bt_timer_start(bt_ctx_runtime(ctx), bt_self(ctx), m, 100 * MS, 0,
                                                NULL) != BT_OK)
                    bt_msg_free(m);
            }
        }
        return BT_OK;
    case EX_K_PAUSED:
        on_paused(ctx, ex, msg);
        pump(ctx, ex); /* commands released from behind the pause */
        return BT_OK;
    case EX_I_PAUSE_WAIT:
        on_pause_wait(ctx, ex, msg);
        pump(ctx, ex);
        return BT_OK;
    case EX_MSG_STATS: {
        /* Read-only and store-free: answered at once, not queued. */
        if (!bt_msg_is_request(msg))
            return BT_OK;
        ex_stats_reply_t *s = BT_MSG_NEW(ex_stats_reply_t, EX_MSG_STATS_REPLY);
        if (s == NULL)
            return BT_OK;
        bt_msg_t hdr = s->hdr;
        *s = ex->st;
        s->hdr = hdr;
        for (uint32_t i = 0; i < ex->nruns; i++) {
            s->runs[ex->runs[i]->state]++;
            s->retrying += ex->runs[i]->ending;
            s->uncertain += ex->runs[i]->uncertain;
        }
        for (uint32_t j = 0; j < ex->njobs; j++)
            s->uncertain += ex->jobs[j].uncertain;
        s->queued = ex->qlen;
        if (bt_reply(ctx, msg, &s->hdr) != BT_OK)
            bt_msg_free(&s->hdr);
        return BT_OK;
    }
    default: {
        bt_msg_t *copy = msg_dup(msg);
        if (copy == NULL) {
            reply(ctx, ex, msg, EX_EINTERNAL, "", RS_NONE, "executor out of memory");
            return BT_OK;
        }
        qpush(ex, copy, false);
        pump(ctx, ex);
        return BT_OK;
    }
    }
}

/* Frees everything the state holds; safe to call twice. */
static void ex_free(exec_t *ex)
{
    for (uint32_t i = 0; i < ex->nruns; i++)
        run_free(ex->runs[i]);
    free(ex->runs);
    ex->runs = NULL;
    ex->nruns = ex->cap = 0;
    bt_msg_t *m;
    while ((m = qpop(ex)) != NULL)
        bt_msg_free(m);
    for (uint32_t i = 0; i < EX_MAX_INFLIGHT; i++) {
        bt_msg_free(ex->slots[i].cmd);
        ex->slots[i].cmd = NULL;
    }
    for (uint32_t i = 0; ex->jobs != NULL && i < ex->njobs; i++)
        free(ex->jobs[i].name);
    free(ex->jobs);
    ex->jobs = NULL;
    ex->njobs = 0;
    free(ex->state_dir);
    ex->state_dir = NULL;
}

static void ex_cleanup(bt_ctx_t *ctx, void *state)
{
    (void)ctx;
    ex_free(state);
}

static const bt_actor_type_t ex_type = {
    .name = "executor",
    .state_size = sizeof(exec_t),
    .init = ex_init,
    .dispatch = ex_dispatch,
    .cleanup = ex_cleanup,
};

int ex_spawn(bt_runtime_t *rt, const ex_config_t *cfg, bt_ref_t *out)
{
    if (rt == NULL || cfg == NULL || cfg->store == BT_REF_NONE || out == NULL)
        return BT_EINVAL;
    return bt_spawn(rt, &ex_type, cfg, NULL, out);
}
