/*
 * runstore.c: the run store actor: request messages, group commit, the
 * transition table check, open/retry, and replies.
 *
 * DESIGN
 * Messages accepted: the RS_MSG_* requests of runstore.h (asks only), plus
 * two it sends itself: RS_MSG_FLUSH_ (end of a batch) and RS_MSG_RETRY_
 * (from a timer: retry a failed open). Emitted: one rs_reply_t per request,
 * through bt_reply().
 * State owned: the backend connection (only this actor's thread touches
 * it), the current batch of copied requests, the recovery list captured at
 * open, counters.
 * Group commit: the runtime has no end-of-turn hook, so on the first
 * request of a batch the actor sends itself a flush message. It lands
 * behind everything already in the mailbox (FIFO per sender, and the
 * actor's own sends follow the pushes that came before them), so when it
 * arrives every request that was waiting when the batch began, and those
 * that came meanwhile, are in the batch. The batch is then run in one
 * transaction; replies are built during it and sent only after the commit
 * succeeded. A batch also ends when it reaches max_batch requests.
 * Failures: a request whose own write fails with a storage error gets that
 * error and leaves the batch; the rest are run again in a new transaction.
 * A failure to begin or commit fails every write of the batch with that
 * error (nothing of it is visible: the transaction is rolled back) and
 * runs its reads again without a transaction. Each round settles at least
 * one request, so a batch of n takes at most n + 1 rounds. A
 * corrupt database is closed and reopened with backoff; meanwhile every
 * request gets RS_EUNAVAILABLE with the reason.
 */
#define _GNU_SOURCE
#include "runstore.h"

#include "backend.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------- requests */

enum { F_ID, F_JOB, F_PARAMS, F_CAUSE, F_ERROR, F_AFTER, F_CHECKPOINT, F_KEY, F_COUNT };

typedef struct rs_request {
    bt_msg_t hdr;
    rs_state_t from, to;
    int64_t done, total;
    uint32_t state_mask, limit;
    /* Field i is at byte off[i] of the message, len[i] bytes plus a NUL;
     * off 0 means absent. */
    uint32_t off[F_COUNT], len[F_COUNT];
    char data[];
} rs_request_t;

#define RS_FIELD_MAX (1u << 20)

typedef struct {
    const void *ptr;
    size_t len;
} field_t;

static field_t str_field(const char *s)
{
    return (field_t){s, s != NULL ? strlen(s) : 0};
}

static rs_request_t *request_new(uint32_t id, const field_t f[F_COUNT])
{
    size_t size = sizeof(rs_request_t);
    for (int i = 0; i < F_COUNT; i++) {
        if (f[i].len > RS_FIELD_MAX)
            return NULL;
        if (f[i].ptr != NULL)
            size += f[i].len + 1;
    }
    rs_request_t *rq = (rs_request_t *)bt_msg_new(size, id);
    if (rq == NULL)
        return NULL;
    size_t at = sizeof(rs_request_t);
    for (int i = 0; i < F_COUNT; i++) {
        if (f[i].ptr == NULL)
            continue;
        rq->off[i] = (uint32_t)at;
        rq->len[i] = (uint32_t)f[i].len;
        memcpy((char *)rq + at, f[i].ptr, f[i].len);
        at += f[i].len + 1; /* the NUL is there: bt_msg_new zeroes */
    }
    return rq;
}

static const char *field(const rs_request_t *rq, int i)
{
    return rq->off[i] != 0 ? (const char *)rq + rq->off[i] : NULL;
}

/* Whether a request is well formed: its fields inside it, NUL-terminated. */
static bool request_valid(const bt_msg_t *msg)
{
    if (msg->size < sizeof(rs_request_t))
        return false;
    const rs_request_t *rq = (const rs_request_t *)msg;
    for (int i = 0; i < F_COUNT; i++) {
        if (rq->off[i] == 0)
            continue;
        if (rq->off[i] < sizeof(rs_request_t) || (uint64_t)rq->off[i] + rq->len[i] >= msg->size ||
            ((const char *)rq)[rq->off[i] + rq->len[i]] != '\0')
            return false;
    }
    return true;
}

bt_msg_t *rs_req_create(const char *job, const char *params, rs_state_t initial)
{
    return rs_req_create_keyed(job, params, initial, NULL);
}

bt_msg_t *rs_req_create_keyed(const char *job, const char *params, rs_state_t initial,
                              const char *idem_key)
{
    if (idem_key != NULL && idem_key[0] == '\0')
        idem_key = NULL;
    if (idem_key != NULL && strlen(idem_key) > RS_IDEM_KEY_MAX)
        return NULL;
    field_t f[F_COUNT] = {
        [F_JOB] = str_field(job), [F_PARAMS] = str_field(params), [F_KEY] = str_field(idem_key)};
    rs_request_t *rq = request_new(RS_MSG_CREATE, f);
    if (rq != NULL)
        rq->to = initial;
    return rq != NULL ? &rq->hdr : NULL;
}

bt_msg_t *rs_req_find_key(const char *idem_key)
{
    if (idem_key != NULL && strlen(idem_key) > RS_IDEM_KEY_MAX)
        return NULL;
    field_t f[F_COUNT] = {[F_KEY] = str_field(idem_key)};
    rs_request_t *rq = request_new(RS_MSG_FIND_KEY, f);
    return rq != NULL ? &rq->hdr : NULL;
}

bt_msg_t *rs_req_counts(void)
{
    field_t f[F_COUNT] = {{0}};
    rs_request_t *rq = request_new(RS_MSG_COUNTS, f);
    return rq != NULL ? &rq->hdr : NULL;
}

bt_msg_t *rs_req_transition(const char *id, rs_state_t from, rs_state_t to, const char *cause,
                            const char *error)
{
    field_t f[F_COUNT] = {
        [F_ID] = str_field(id), [F_CAUSE] = str_field(cause), [F_ERROR] = str_field(error)};
    rs_request_t *rq = request_new(RS_MSG_TRANSITION, f);
    if (rq != NULL) {
        rq->from = from;
        rq->to = to;
    }
    return rq != NULL ? &rq->hdr : NULL;
}

bt_msg_t *rs_req_progress(const char *id, int64_t done, int64_t total, const void *checkpoint,
                          size_t checkpoint_len)
{
    field_t f[F_COUNT] = {[F_ID] = str_field(id), [F_CHECKPOINT] = {checkpoint, checkpoint_len}};
    rs_request_t *rq = request_new(RS_MSG_PROGRESS, f);
    if (rq != NULL) {
        rq->done = done;
        rq->total = total;
    }
    return rq != NULL ? &rq->hdr : NULL;
}

bt_msg_t *rs_req_get(const char *id)
{
    field_t f[F_COUNT] = {[F_ID] = str_field(id)};
    rs_request_t *rq = request_new(RS_MSG_GET, f);
    return rq != NULL ? &rq->hdr : NULL;
}

bt_msg_t *rs_req_list(const char *job, uint32_t state_mask, const char *after, uint32_t limit)
{
    field_t f[F_COUNT] = {[F_JOB] = str_field(job), [F_AFTER] = str_field(after)};
    rs_request_t *rq = request_new(RS_MSG_LIST, f);
    if (rq != NULL) {
        rq->state_mask = state_mask;
        rq->limit = limit;
    }
    return rq != NULL ? &rq->hdr : NULL;
}

bt_msg_t *rs_req_active(const char *job)
{
    field_t f[F_COUNT] = {[F_JOB] = str_field(job)};
    rs_request_t *rq = request_new(RS_MSG_ACTIVE, f);
    return rq != NULL ? &rq->hdr : NULL;
}

bt_msg_t *rs_req_events(const char *id)
{
    field_t f[F_COUNT] = {[F_ID] = str_field(id)};
    rs_request_t *rq = request_new(RS_MSG_EVENTS, f);
    return rq != NULL ? &rq->hdr : NULL;
}

bt_msg_t *rs_req_recovery(void)
{
    field_t f[F_COUNT] = {{0}};
    rs_request_t *rq = request_new(RS_MSG_RECOVERY, f);
    return rq != NULL ? &rq->hdr : NULL;
}

bt_msg_t *rs_req_stats(void)
{
    field_t f[F_COUNT] = {{0}};
    rs_request_t *rq = request_new(RS_MSG_STATS, f);
    return rq != NULL ? &rq->hdr : NULL;
}

static bool is_write(uint32_t id)
{
    return id == RS_MSG_CREATE || id == RS_MSG_TRANSITION || id == RS_MSG_PROGRESS;
}

/* --------------------------------------------------------------- errors */

const char *rs_strerror(int err)
{
    switch (err) {
    case RS_OK:
        return "ok";
#define RS_ERR_CASE_(name, value, text)                                                            \
    case RS_##name:                                                                                \
        return text;
        RS_ERRNO_MAP(RS_ERR_CASE_)
#undef RS_ERR_CASE_
    default:
        return bt_strerror(err);
    }
}

/* Errors of the storage itself, as opposed to errors of one request. */
static bool storage_error(int err)
{
    return err == RS_EFULL || err == RS_EIO || err == RS_EBUSY || err == RS_ECORRUPT ||
           err == RS_ENOMEM || err == RS_EINTERNAL;
}

/* -------------------------------------------------------------- replies
 *
 * A reply is built in a draft (growable arrays, strings in one byte
 * buffer), then laid out in one message with offsets relative to its start,
 * since the runtime may copy a reply (bt_ask_wait does). */

typedef struct {
    uint32_t id, job, params, checkpoint, last_error, idem_key; /* offsets; 0: NULL */
    uint32_t checkpoint_len, attempt;
    int32_t state;
    int64_t done, total, created, started, updated, finished;
} run_rec_t;

typedef struct {
    int64_t seq, at;
    int32_t from, to;
    uint32_t cause;
} event_rec_t;

typedef struct {
    rs_reply_t head;
    run_rec_t *runs;
    uint32_t ncap;
    event_rec_t *events;
    uint32_t ecap;
    char *bytes;
    size_t nbytes, bcap;
    bool oom;
} draft_t;

static void *grow(void *p, uint32_t *cap, uint32_t need, size_t elem, bool *oom)
{
    if (need <= *cap)
        return p;
    uint32_t ncap = *cap != 0 ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    void *q = realloc(p, (size_t)ncap * elem);
    if (q == NULL) {
        *oom = true;
        return p;
    }
    *cap = ncap;
    return q;
}

/* Copies len bytes plus a NUL into the draft; returns offset + 1, or 0 for
 * NULL (or when out of memory, which the draft records). */
static uint32_t draft_bytes(draft_t *d, const void *p, size_t len)
{
    if (p == NULL)
        return 0;
    if (d->nbytes + len + 1 > d->bcap) {
        size_t ncap = d->bcap != 0 ? d->bcap * 2 : 256;
        while (ncap < d->nbytes + len + 1)
            ncap *= 2;
        char *q = realloc(d->bytes, ncap);
        if (q == NULL || ncap > BT_MSG_MAX_SIZE / 2) {
            if (q != NULL)
                d->bytes = q;
            d->oom = true;
            return 0;
        }
        d->bytes = q;
        d->bcap = ncap;
    }
    memcpy(d->bytes + d->nbytes, p, len);
    d->bytes[d->nbytes + len] = '\0';
    uint32_t off = (uint32_t)d->nbytes + 1;
    d->nbytes += len + 1;
    return off;
}

static uint32_t draft_str(draft_t *d, const char *s)
{
    return draft_bytes(d, s, s != NULL ? strlen(s) : 0);
}

static int draft_run(void *ud, const rs_run_t *r)
{
    draft_t *d = ud;
    d->runs = grow(d->runs, &d->ncap, d->head.nruns + 1, sizeof(run_rec_t), &d->oom);
    if (d->oom)
        return RS_ENOMEM;
    d->runs[d->head.nruns++] = (run_rec_t){
        .id = draft_str(d, r->id),
        .job = draft_str(d, r->job),
        .params = draft_str(d, r->params),
        .checkpoint = draft_bytes(d, r->checkpoint, r->checkpoint_len),
        .last_error = draft_str(d, r->last_error),
        .idem_key = draft_str(d, r->idem_key),
        .checkpoint_len = (uint32_t)r->checkpoint_len,
        .attempt = r->attempt,
        .state = (int32_t)r->state,
        .done = r->progress_done,
        .total = r->progress_total,
        .created = r->created_ms,
        .started = r->started_ms,
        .updated = r->updated_ms,
        .finished = r->finished_ms,
    };
    return d->oom ? RS_ENOMEM : RS_OK;
}

static int draft_event(void *ud, const rs_event_t *ev)
{
    draft_t *d = ud;
    d->events = grow(d->events, &d->ecap, d->head.nevents + 1, sizeof(event_rec_t), &d->oom);
    if (d->oom)
        return RS_ENOMEM;
    d->events[d->head.nevents++] = (event_rec_t){
        .seq = ev->seq,
        .at = ev->at_ms,
        .from = (int32_t)ev->from,
        .to = (int32_t)ev->to,
        .cause = draft_str(d, ev->cause),
    };
    return d->oom ? RS_ENOMEM : RS_OK;
}

static void draft_reset(draft_t *d)
{
    free(d->runs);
    free(d->events);
    free(d->bytes);
    memset(d, 0, sizeof(*d));
}

/* snprintf that may truncate on purpose (messages are capped). */
__attribute__((format(printf, 3, 4))) static void say(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

static void set_message(rs_reply_t *h, int status, const char *text)
{
    h->status = status;
    say(h->message, sizeof(h->message), "%s", text != NULL ? text : "");
}

#define ALIGN8(n) (((n) + 7u) & ~(size_t)7u)

static uint32_t rebase(uint32_t off, size_t base)
{
    return off != 0 ? (uint32_t)(base + off - 1) : 0;
}

/* Lays the draft out in a new reply message; NULL when out of memory. The
 * draft is left as it was. */
static rs_reply_t *draft_finish(const draft_t *d)
{
    size_t runs_at = ALIGN8(sizeof(rs_reply_t));
    size_t events_at = ALIGN8(runs_at + (size_t)d->head.nruns * sizeof(run_rec_t));
    size_t bytes_at = events_at + (size_t)d->head.nevents * sizeof(event_rec_t);
    size_t size = bytes_at + d->nbytes;
    if (size > BT_MSG_MAX_SIZE)
        return NULL;
    rs_reply_t *r = (rs_reply_t *)bt_msg_new(size, RS_MSG_REPLY);
    if (r == NULL)
        return NULL;
    bt_msg_t hdr = r->hdr;
    *r = d->head;
    r->hdr = hdr;
    r->runs_off = (uint32_t)runs_at;
    r->events_off = (uint32_t)events_at;
    run_rec_t *runs = (run_rec_t *)((char *)r + runs_at);
    for (uint32_t i = 0; i < d->head.nruns; i++) {
        runs[i] = d->runs[i];
        runs[i].id = rebase(runs[i].id, bytes_at);
        runs[i].job = rebase(runs[i].job, bytes_at);
        runs[i].params = rebase(runs[i].params, bytes_at);
        runs[i].checkpoint = rebase(runs[i].checkpoint, bytes_at);
        runs[i].last_error = rebase(runs[i].last_error, bytes_at);
        runs[i].idem_key = rebase(runs[i].idem_key, bytes_at);
    }
    event_rec_t *evs = (event_rec_t *)((char *)r + events_at);
    for (uint32_t i = 0; i < d->head.nevents; i++) {
        evs[i] = d->events[i];
        evs[i].cause = rebase(evs[i].cause, bytes_at);
    }
    if (d->nbytes > 0)
        memcpy((char *)r + bytes_at, d->bytes, d->nbytes);
    return r;
}

static const char *at(const rs_reply_t *r, uint32_t off)
{
    return off != 0 ? (const char *)r + off : NULL;
}

void rs_reply_run(const rs_reply_t *reply, uint32_t i, rs_run_t *out)
{
    const run_rec_t *rec = (const run_rec_t *)((const char *)reply + reply->runs_off) + i;
    *out = (rs_run_t){
        .id = at(reply, rec->id),
        .job = at(reply, rec->job),
        .state = (rs_state_t)rec->state,
        .params = at(reply, rec->params),
        .progress_done = rec->done,
        .progress_total = rec->total,
        .checkpoint = at(reply, rec->checkpoint),
        .checkpoint_len = rec->checkpoint_len,
        .attempt = rec->attempt,
        .last_error = at(reply, rec->last_error),
        .created_ms = rec->created,
        .started_ms = rec->started,
        .updated_ms = rec->updated,
        .finished_ms = rec->finished,
        .idem_key = at(reply, rec->idem_key),
    };
}

void rs_reply_event(const rs_reply_t *reply, uint32_t i, rs_event_t *out)
{
    const event_rec_t *rec = (const event_rec_t *)((const char *)reply + reply->events_off) + i;
    *out = (rs_event_t){.seq = rec->seq,
                        .at_ms = rec->at,
                        .from = (rs_state_t)rec->from,
                        .to = (rs_state_t)rec->to,
                        .cause = at(reply, rec->cause)};
}

/* ---------------------------------------------------------------- state */

typedef struct {
    rs_request_t *req; /* a copy, owned by the batch */
    rs_reply_t *reply; /* built in the transaction, sent after commit */
    bool done;         /* settled (reply final) */
} entry_t;

typedef struct {
    rs_config_t cfg; /* strings owned (copied in init) */
    const rs_backend_ops_t *ops;
    rs_backend_t *be; /* NULL while not open */
    int open_err;
    char open_msg[512];
    uint64_t backoff_ns;
    bool retry_armed;
    draft_t recovery; /* integrity result and the runs active at open */
    entry_t *batch;
    uint32_t nbatch, bcap;
    bool flush_pending;
    rs_stats_t stats;
} store_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ open */

static void arm_retry(bt_ctx_t *ctx, store_t *st)
{
    if (st->retry_armed)
        return;
    bt_msg_t *m = bt_msg_new(sizeof(bt_msg_t), RS_MSG_RETRY_);
    if (m == NULL)
        return; /* the next request retries instead */
    if (bt_timer_start(bt_ctx_runtime(ctx), bt_self(ctx), m, st->backoff_ns, 0, NULL) != BT_OK) {
        bt_msg_free(m);
        return;
    }
    st->retry_armed = true;
    st->backoff_ns =
        st->backoff_ns * 2 < st->cfg.retry_max_ns ? st->backoff_ns * 2 : st->cfg.retry_max_ns;
}

static void store_close(store_t *st)
{
    if (st->be != NULL)
        st->ops->close(st->be);
    st->be = NULL;
}

/* Opens the backend, checks integrity, captures the active runs. On
 * failure records why and arms a retry. */
static void try_open(bt_ctx_t *ctx, store_t *st)
{
    rs_backend_t *be = NULL;
    char msg[512];
    int err = st->ops->open(&st->cfg, &be, msg, sizeof(msg));
    if (err == RS_OK && (err = st->ops->integrity(be)) != RS_OK)
        say(msg, sizeof(msg), "%s: %s", st->cfg.path, st->ops->errmsg(be));
    if (err == RS_OK) {
        draft_reset(&st->recovery);
        st->recovery.head.integrity_ok = true;
        err = st->ops->list_runs(be, NULL, RS_MASK_ACTIVE, NULL, UINT32_MAX, draft_run,
                                 &st->recovery);
        if (err != RS_OK)
            say(msg, sizeof(msg), "%s: listing active runs: %s", st->cfg.path,
                st->recovery.oom ? "out of memory" : st->ops->errmsg(be));
    }
    if (err != RS_OK) {
        st->ops->close(be);
        draft_reset(&st->recovery);
        st->open_err = err;
        /* The code's name says what kind of failure, except for a refused
         * schema (RS_EINVAL), which msg explains on its own. */
        say(st->open_msg, sizeof(st->open_msg), "the run store is not open%s%s%s: %s",
            err != RS_EINVAL ? " (" : "", err != RS_EINVAL ? rs_strerror(err) : "",
            err != RS_EINVAL ? ")" : "", msg);
        st->stats.open_failures++;
        if (ctx != NULL)
            arm_retry(ctx, st);
        return;
    }
    st->be = be;
    st->open_err = RS_OK;
    st->open_msg[0] = '\0';
    st->backoff_ns = st->cfg.retry_min_ns;
    st->stats.opens++;
}

/* --------------------------------------------------------------- batches */

/* Runs one request against the open backend and drafts its reply. Returns
 * the request's status. */
static int run_request(store_t *st, const rs_request_t *rq, draft_t *d)
{
    rs_reply_t *h = &d->head;
    h->op = rq->hdr.id;
    const char *id = field(rq, F_ID);
    int err = RS_OK;
    char text[256] = "";
    switch (rq->hdr.id) {
    case RS_MSG_CREATE: {
        const char *job = field(rq, F_JOB);
        if (job == NULL || job[0] == '\0') {
            set_message(h, RS_EINVAL, "a run needs a job name");
            return RS_EINVAL;
        }
        if (!rs_transition_allowed(RS_NONE, rq->to)) {
            snprintf(text, sizeof(text), "a run cannot start as %s: only pending or running",
                     rs_state_name(rq->to));
            set_message(h, RS_ETRANSITION, text);
            return RS_ETRANSITION;
        }
        const char *key = field(rq, F_KEY);
        if (key != NULL) {
            /* A key seen before: answer with its run, write nothing. The
             * lookup sees the writes of this batch before it. */
            err = st->ops->find_key(st->be, key, draft_run, d);
            if (err == RS_OK && h->nruns == 1) {
                const char *rid = d->bytes + d->runs[0].id - 1;
                snprintf(h->run_id, sizeof(h->run_id), "%s", rid);
                h->state = (rs_state_t)d->runs[0].state;
                snprintf(text, sizeof(text),
                         "idempotency key \"%.128s\" was already used by run %s of job %s", key,
                         rid, d->bytes + d->runs[0].job - 1);
                set_message(h, RS_EDUPLICATE, text);
                return RS_EDUPLICATE;
            }
            if (err != RS_ENOTFOUND)
                break;
            err = RS_OK;
        }
        char newid[RS_ID_LEN + 1];
        if (rs_id_new(newid) != 0) {
            set_message(h, RS_EINTERNAL, "no random bytes for a run id (getrandom failed)");
            return RS_EINTERNAL;
        }
        rs_run_t run = {.id = newid,
                        .job = job,
                        .state = rq->to,
                        .params = field(rq, F_PARAMS),
                        .created_ms = now_ms(),
                        .idem_key = key};
        err = st->ops->create_run(st->be, &run, "created");
        if (err == RS_OK) {
            memcpy(h->run_id, newid, sizeof(newid));
            h->state = rq->to;
        }
        break;
    }
    case RS_MSG_TRANSITION:
        if (id == NULL) {
            set_message(h, RS_EINVAL, "a transition needs a run id");
            return RS_EINVAL;
        }
        h->state = rq->from;
        if (!rs_transition_allowed(rq->from, rq->to) || rq->from == RS_NONE) {
            /* Refused before any read or write. */
            snprintf(text, sizeof(text), "run %s: cannot move a run from %s to %s", id,
                     rs_state_name(rq->from), rs_state_name(rq->to));
            set_message(h, RS_ETRANSITION, text);
            return RS_ETRANSITION;
        }
        err = st->ops->transition(st->be, id, rq->from, rq->to, field(rq, F_CAUSE),
                                  field(rq, F_ERROR), now_ms(), &h->state);
        break;
    case RS_MSG_PROGRESS:
        if (id == NULL) {
            set_message(h, RS_EINVAL, "a progress update needs a run id");
            return RS_EINVAL;
        }
        err = st->ops->progress(st->be, id, rq->done, rq->total, field(rq, F_CHECKPOINT),
                                rq->len[F_CHECKPOINT], rq->off[F_CHECKPOINT] != 0, now_ms(),
                                &h->state);
        break;
    case RS_MSG_GET:
        if (id == NULL) {
            set_message(h, RS_EINVAL, "a query needs a run id");
            return RS_EINVAL;
        }
        err = st->ops->get_run(st->be, id, draft_run, d);
        if (err == RS_OK && h->nruns == 1)
            h->state = d->runs[0].state;
        break;
    case RS_MSG_LIST: {
        uint32_t limit = rq->limit == 0 || rq->limit > 1000 ? 1000 : rq->limit;
        err = st->ops->list_runs(st->be, field(rq, F_JOB), rq->state_mask, field(rq, F_AFTER),
                                 limit, draft_run, d);
        if (err == RS_OK && h->nruns == limit)
            snprintf(h->next_cursor, sizeof(h->next_cursor), "%s",
                     d->bytes + d->runs[limit - 1].id - 1);
        break;
    }
    case RS_MSG_ACTIVE:
        err = st->ops->list_runs(st->be, field(rq, F_JOB), RS_MASK_ACTIVE, NULL, UINT32_MAX,
                                 draft_run, d);
        break;
    case RS_MSG_EVENTS:
        if (id == NULL) {
            set_message(h, RS_EINVAL, "a query needs a run id");
            return RS_EINVAL;
        }
        err = st->ops->get_run(st->be, id, draft_run, d); /* not found is an error */
        if (err == RS_OK)
            err = st->ops->list_events(st->be, id, draft_event, d);
        break;
    case RS_MSG_RECOVERY: {
        /* A copy of the draft captured at open. */
        const draft_t *rec = &st->recovery;
        for (uint32_t i = 0; i < rec->head.nruns && err == RS_OK; i++) {
            const run_rec_t *r = &rec->runs[i];
            const char *b = rec->bytes;
            rs_run_t run = {
                .id = r->id ? b + r->id - 1 : NULL,
                .job = r->job ? b + r->job - 1 : NULL,
                .state = (rs_state_t)r->state,
                .params = r->params ? b + r->params - 1 : NULL,
                .progress_done = r->done,
                .progress_total = r->total,
                .checkpoint = r->checkpoint ? b + r->checkpoint - 1 : NULL,
                .checkpoint_len = r->checkpoint_len,
                .attempt = r->attempt,
                .last_error = r->last_error ? b + r->last_error - 1 : NULL,
                .created_ms = r->created,
                .started_ms = r->started,
                .updated_ms = r->updated,
                .finished_ms = r->finished,
                .idem_key = r->idem_key ? b + r->idem_key - 1 : NULL,
            };
            err = draft_run(d, &run);
        }
        h->integrity_ok = rec->head.integrity_ok;
        break;
    }
    case RS_MSG_STATS:
        h->stats = st->stats;
        break;
    case RS_MSG_FIND_KEY: {
        const char *key = field(rq, F_KEY);
        if (key == NULL || key[0] == '\0') {
            set_message(h, RS_EINVAL, "a key lookup needs a key");
            return RS_EINVAL;
        }
        err = st->ops->find_key(st->be, key, draft_run, d);
        if (err == RS_OK && h->nruns == 1) {
            h->state = (rs_state_t)d->runs[0].state;
            snprintf(h->run_id, sizeof(h->run_id), "%s", d->bytes + d->runs[0].id - 1);
        }
        break;
    }
    case RS_MSG_COUNTS:
        err = st->ops->count_runs(st->be, h->counts);
        break;
    default:
        set_message(h, RS_EINVAL, "unknown run store request");
        return RS_EINVAL;
    }
    if (err == RS_OK && d->oom)
        err = RS_ENOMEM;
    if (err != RS_OK)
        set_message(h, err, d->oom ? "out of memory building the reply" : st->ops->errmsg(st->be));
    return err;
}

/* Drafts a reply that carries only an error. */
static rs_reply_t *error_reply(uint32_t op, int err, const char *text)
{
    draft_t d = {0};
    d.head.op = op;
    set_message(&d.head, err, text);
    return draft_finish(&d);
}

/* Runs the unsettled entries in one transaction. On success every one of
 * them has its reply and is settled. On a storage error in one request,
 * that entry alone is settled with the error, the transaction is rolled
 * back and *retry is set, so that the caller runs the rest again; on a
 * failure to begin or commit, every unsettled write gets the error (and
 * *retry is set if reads remain). */
static void run_batch(store_t *st, bool *retry)
{
    *retry = false;
    bool writes = false;
    for (uint32_t i = 0; i < st->nbatch; i++)
        writes |= !st->batch[i].done && is_write(st->batch[i].req->hdr.id);
    int err = writes ? st->ops->begin(st->be) : RS_OK;
    const char *why = "the change was not saved";
    uint32_t failed = UINT32_MAX;
    uint32_t ran = 0;
    if (err == RS_OK) {
        for (uint32_t i = 0; i < st->nbatch; i++) {
            entry_t *e = &st->batch[i];
            if (e->done)
                continue;
            draft_t d = {0};
            int rc = run_request(st, e->req, &d);
            ran++;
            if (storage_error(rc)) {
                /* SQLite may have rolled the whole transaction back: stop. */
                char text[512];
                say(text, sizeof(text), "%s%s%s", is_write(e->req->hdr.id) ? why : "",
                    is_write(e->req->hdr.id) ? ": " : "", d.head.message);
                e->reply = error_reply(e->req->hdr.id, rc, text);
                e->done = true;
                draft_reset(&d);
                failed = i;
                err = rc;
                break;
            }
            e->reply = draft_finish(&d);
            if (e->reply == NULL)
                e->reply = error_reply(e->req->hdr.id, RS_ENOMEM, "out of memory in the store");
            draft_reset(&d);
        }
        if (err == RS_OK && writes) {
            err = st->ops->commit(st->be);
            if (err == RS_OK) {
                st->stats.transactions++;
                if (ran > st->stats.max_batch)
                    st->stats.max_batch = ran;
            }
        }
    }
    if (err == RS_OK) {
        for (uint32_t i = 0; i < st->nbatch; i++)
            st->batch[i].done = true;
        return;
    }
    /* Nothing of this transaction stays. */
    st->ops->rollback(st->be);
    st->stats.failed++;
    for (uint32_t i = 0; i < st->nbatch; i++) {
        entry_t *e = &st->batch[i];
        if (e->done)
            continue;
        bt_msg_free(e->reply ? &e->reply->hdr : NULL);
        e->reply = NULL;
    }
    if (failed != UINT32_MAX) {
        *retry = true; /* the others get another transaction */
        return;
    }
    /* Begin or commit failed: every write of the batch gets the error; the
     * reads are run again, outside a transaction. */
    char text[512];
    say(text, sizeof(text), "%s: %s", why, st->ops->errmsg(st->be));
    for (uint32_t i = 0; i < st->nbatch; i++) {
        entry_t *e = &st->batch[i];
        if (e->done)
            continue;
        if (!is_write(e->req->hdr.id)) {
            *retry = true;
            continue;
        }
        e->reply = error_reply(e->req->hdr.id, err, text);
        e->done = true;
    }
}

/* Settles and answers every request of the batch. */
static void flush(bt_ctx_t *ctx, store_t *st)
{
    if (st->nbatch == 0)
        return;
    if (st->be == NULL && ctx != NULL && !st->retry_armed)
        try_open(ctx, st); /* no retry pending (its timer failed): try now */
    if (st->be == NULL) {
        for (uint32_t i = 0; i < st->nbatch; i++) {
            entry_t *e = &st->batch[i];
            e->reply = error_reply(e->req->hdr.id, RS_EUNAVAILABLE, st->open_msg);
            e->done = true;
        }
    } else {
        bool retry = true;
        while (retry)
            run_batch(st, &retry);
    }
    bool corrupt = false;
    for (uint32_t i = 0; i < st->nbatch; i++) {
        entry_t *e = &st->batch[i];
        if (e->reply != NULL) {
            corrupt |= e->reply->status == RS_ECORRUPT;
            st->stats.requests++;
            if (ctx == NULL || bt_reply(ctx, &e->req->hdr, &e->reply->hdr) != BT_OK)
                bt_msg_free(&e->reply->hdr); /* the requester is gone */
        }
        free(e->req);
    }
    st->nbatch = 0;
    if (corrupt && st->be != NULL) {
        /* Stop using a corrupt database; reopening checks it again. */
        store_close(st);
        st->open_err = RS_ECORRUPT;
        snprintf(st->open_msg, sizeof(st->open_msg),
                 "the run store found its database corrupt and is reopening it");
        if (ctx != NULL)
            arm_retry(ctx, st);
    }
}

/* ----------------------------------------------------------------- actor */

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static void store_cleanup(bt_ctx_t *ctx, void *state)
{
    store_t *st = state;
    flush(ctx, st); /* answer what was accepted */
    store_close(st);
    draft_reset(&st->recovery);
    free(st->batch);
    free((char *)st->cfg.path);
    free((char *)st->cfg.vfs);
    free((char *)st->cfg.register_name);
}

static int store_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    store_t *st = state;
    const rs_config_t *cfg = arg;
    if (cfg == NULL || cfg->path == NULL)
        return BT_EINVAL;
    st->cfg = *cfg;
    st->cfg.path = dup_or_null(cfg->path);
    st->cfg.vfs = dup_or_null(cfg->vfs);
    st->cfg.register_name = dup_or_null(cfg->register_name);
    if (st->cfg.path == NULL || (cfg->vfs != NULL && st->cfg.vfs == NULL) ||
        (cfg->register_name != NULL && st->cfg.register_name == NULL)) {
        store_cleanup(NULL, st);
        return BT_ENOMEM;
    }
    if (st->cfg.max_batch == 0)
        st->cfg.max_batch = 1024;
    if (st->cfg.retry_min_ns == 0)
        st->cfg.retry_min_ns = 10 * 1000000ull;
    if (st->cfg.retry_max_ns == 0)
        st->cfg.retry_max_ns = 5 * 1000000000ull;
    if (st->cfg.retry_max_ns < st->cfg.retry_min_ns)
        st->cfg.retry_max_ns = st->cfg.retry_min_ns;
    st->backoff_ns = st->cfg.retry_min_ns;
    st->ops = &rs_sqlite_backend;
    if (st->cfg.register_name != NULL) {
        int err = bt_register(bt_ctx_runtime(ctx), st->cfg.register_name, bt_self(ctx));
        if (err != BT_OK) {
            store_cleanup(NULL, st);
            return err;
        }
    }
    try_open(ctx, st);
    return BT_OK;
}

static int store_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    store_t *st = state;
    if (msg->id == RS_MSG_FLUSH_) {
        st->flush_pending = false;
        flush(ctx, st);
        return BT_OK;
    }
    if (msg->id == RS_MSG_RETRY_) {
        st->retry_armed = false;
        if (st->be == NULL)
            try_open(ctx, st);
        return BT_OK;
    }
    if (msg->id <= RS_MSG_BASE || msg->id >= RS_MSG_REPLY || !bt_msg_is_request(msg))
        return BT_OK; /* not a request to the store: nobody to answer */
    if (!request_valid(msg)) {
        rs_reply_t *r = error_reply(msg->id, RS_EINVAL, "malformed run store request");
        if (r != NULL && bt_reply(ctx, msg, &r->hdr) != BT_OK)
            bt_msg_free(&r->hdr);
        return BT_OK;
    }
    /* Keep a copy: the message is ours only during this dispatch. Its
     * header (from, corr) is all bt_reply() needs later. */
    rs_request_t *copy = malloc(msg->size);
    if (copy == NULL ||
        (st->batch = grow(st->batch, &st->bcap, st->nbatch + 1, sizeof(entry_t), &(bool){0}),
         st->bcap < st->nbatch + 1)) {
        free(copy);
        rs_reply_t *r = error_reply(msg->id, RS_ENOMEM, "out of memory in the store");
        if (r != NULL && bt_reply(ctx, msg, &r->hdr) != BT_OK)
            bt_msg_free(&r->hdr);
        return BT_OK;
    }
    memcpy(copy, msg, msg->size);
    copy->hdr.bt_link_ = NULL;
    st->batch[st->nbatch++] = (entry_t){.req = copy};
    if (st->nbatch >= st->cfg.max_batch) {
        flush(ctx, st);
    } else if (!st->flush_pending) {
        bt_msg_t *f = bt_msg_new(sizeof(bt_msg_t), RS_MSG_FLUSH_);
        if (f != NULL && bt_send(bt_ctx_runtime(ctx), bt_self(ctx), f) == BT_OK)
            st->flush_pending = true;
        else {
            bt_msg_free(f);
            flush(ctx, st); /* no flush message: a batch of what we have */
        }
    }
    return BT_OK;
}

static const bt_actor_type_t store_type = {
    .name = "runstore",
    .state_size = sizeof(store_t),
    .init = store_init,
    .dispatch = store_dispatch,
    .cleanup = store_cleanup,
};

const bt_actor_type_t *rs_actor_type(void)
{
    return &store_type;
}

int rs_spawn(bt_runtime_t *rt, const rs_config_t *cfg, bt_ref_t *out)
{
    if (cfg == NULL || cfg->path == NULL)
        return BT_EINVAL;
    return bt_spawn(rt, &store_type, cfg, &(bt_spawn_opts_t){.flags = BT_SPAWN_PINNED}, out);
}
