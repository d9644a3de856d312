/*
 * lincheck.c: Wing & Gong's linearizability check with Lowe's memoization,
 * against a sequential model of baton's runs. See lincheck.h.
 *
 * LOWERING. Each client operation becomes one to three model events that
 * share its [call, ret] interval; an event may depend on another (it can
 * be linearized only after it):
 *   - a success that reports the run's state (start, pause, resume, stop)
 *     is the command, then a READ of the state: the API answers with the
 *     run as read from the store after the command, so another client's
 *     command may come in between;
 *   - a successful stop is STOP (the run enters the executor's "stopping"
 *     phase: commands on it are refused naming "stopping", GET still shows
 *     the stored state) then STOP_END (stopped). A stop that ends at once
 *     (a pending run, a paused run without a process) is the two events
 *     back to back, which the search may choose;
 *   - an operation with an unknown outcome is optional: linearized as its
 *     effect (with any result) or as nothing. Its ret is what the caller
 *     says: LC_INF when it may still take effect, or the crash's call when
 *     the process that had it was killed.
 *   - a GET with an unknown outcome has no effect and is dropped.
 *
 * MODEL STATE. One byte per run (run indices: the ids returned by
 * successful starts, sorted, so index order is id order, which is creation
 * order for UUIDv7 ids; then one anonymous run per start with an unknown
 * outcome, which may have created a run nobody knows the id of), then the
 * pending queue (FIFO of run indices). Ids that no start returned are
 * "phantoms": every command on them must be not_found.
 *
 * CRASH. kill -9, then a restart: a stopping run's stop was or was not
 * written (both are tried); then recovery fails every running run (exec
 * jobs: recovery FAIL, "interrupted"), keeps paused ones paused, re-queues
 * pending ones in id order and promotes them while slots are free. The
 * service answers nothing before recovery is done (/readyz), so the crash
 * is one atomic event between the kill and the readiness.
 *
 * SEARCH. Lowe's doubly linked list of call and return entries sorted by
 * time (a call before a return at the same instant: concurrent); the
 * search linearizes a call entry whose event the model accepts, lifts it
 * and its return out of the list, and backtracks when the first entry is a
 * return (its event could not be placed). The model is nondeterministic
 * (optional events, the crash's choices): a frame remembers which
 * successor it took and tries the next on backtracking. A memo of (set
 * linearized, state) prunes every configuration seen before.
 */
#define _GNU_SOURCE
#include "lincheck.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ names */

const char *lc_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
#define LC_ERR_STR(name, val, msg)                                                                 \
    case (val):                                                                                    \
        return (msg);
        LC_ERRNO_MAP(LC_ERR_STR)
#undef LC_ERR_STR
    default:
        return "unknown error";
    }
}

static const char *const STATE_NAMES[LC_S_COUNT] = {
    [LC_S_NONE] = "",           [LC_S_PENDING] = "pending",     [LC_S_RUNNING] = "running",
    [LC_S_PAUSED] = "paused",   [LC_S_COMPLETED] = "completed", [LC_S_FAILED] = "failed",
    [LC_S_STOPPED] = "stopped", [LC_S_STOPPING] = "stopping",   [LC_S_OTHER] = "?",
};

const char *lc_state_name(lc_state_t s)
{
    return (unsigned)s < LC_S_COUNT ? STATE_NAMES[s] : "?";
}

lc_state_t lc_state_parse(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return LC_S_NONE;
    for (int s = LC_S_PENDING; s < LC_S_OTHER; s++)
        if (strcmp(name, STATE_NAMES[s]) == 0)
            return (lc_state_t)s;
    return LC_S_OTHER;
}

static const char *const KIND_NAMES[LC_KIND_COUNT] = {
    [LC_START] = "start",   [LC_GET] = "get",   [LC_PAUSE] = "pause",
    [LC_RESUME] = "resume", [LC_STOP] = "stop", [LC_CRASH] = "crash",
};

const char *lc_kind_name(lc_kind_t k)
{
    return (unsigned)k < LC_KIND_COUNT ? KIND_NAMES[k] : "?";
}

static const char *const RESULT_NAMES[LC_RESULT_COUNT] = {
    [LC_OK] = "ok",           [LC_CONFLICT] = "conflict",   [LC_BUSY] = "busy",
    [LC_INVALID] = "invalid", [LC_NOT_FOUND] = "not_found", [LC_UNKNOWN] = "unknown",
};

const char *lc_result_name(lc_result_t r)
{
    return (unsigned)r < LC_RESULT_COUNT ? RESULT_NAMES[r] : "?";
}

const char *lc_verdict_name(lc_verdict_t v)
{
    switch (v) {
    case LC_LINEARIZABLE:
        return "linearizable";
    case LC_NOT_LINEARIZABLE:
        return "not linearizable";
    default:
        return "undecided";
    }
}

/* ---------------------------------------------------------- history */

struct lc_history {
    lc_op_t *ops;
    size_t n, cap;
};

lc_history_t *lc_history_create(void)
{
    return calloc(1, sizeof(lc_history_t));
}

void lc_history_destroy(lc_history_t *h)
{
    if (h == NULL)
        return;
    free(h->ops);
    free(h);
}

int lc_history_add(lc_history_t *h, const lc_op_t *op)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 256;
        lc_op_t *p = realloc(h->ops, cap * sizeof(*p));
        if (p == NULL)
            return LC_ENOMEM;
        h->ops = p;
        h->cap = cap;
    }
    h->ops[h->n++] = *op;
    return 0;
}

size_t lc_history_len(const lc_history_t *h)
{
    return h->n;
}

const lc_op_t *lc_history_op(const lc_history_t *h, size_t i)
{
    return i < h->n ? &h->ops[i] : NULL;
}

void lc_op_print(const lc_op_t *op, FILE *f)
{
    fprintf(f, "c%-2d %-6s %s%s", op->client, lc_kind_name(op->kind),
            op->kind == LC_START ? op->job : op->run,
            op->kind == LC_START && op->run[0] != '\0' ? " -> " : "");
    if (op->kind == LC_START && op->run[0] != '\0')
        fprintf(f, "%s", op->run);
    fprintf(f, " : %s", lc_result_name(op->result));
    if (op->state != LC_S_NONE)
        fprintf(f, " %s", lc_state_name(op->state));
    if (op->ret == LC_INF)
        fprintf(f, "  [%.3f ms, inf)", (double)op->call / 1e6);
    else
        fprintf(f, "  [%.3f, %.3f] ms", (double)op->call / 1e6, (double)op->ret / 1e6);
}

static int by_call(const void *a, const void *b)
{
    const lc_op_t *x = *(const lc_op_t *const *)a, *y = *(const lc_op_t *const *)b;
    return x->call < y->call ? -1 : x->call > y->call;
}

void lc_history_dump(const lc_history_t *h, FILE *f)
{
    const lc_op_t **v = malloc((h->n + 1) * sizeof(*v));
    if (v == NULL)
        return;
    for (size_t i = 0; i < h->n; i++)
        v[i] = &h->ops[i];
    qsort(v, h->n, sizeof(*v), by_call);
    for (size_t i = 0; i < h->n; i++) {
        fprintf(f, "  #%-4td ", v[i] - h->ops);
        lc_op_print(v[i], f);
        fputc('\n', f);
    }
    free(v);
}

/* ------------------------------------------------------------ model */

/* Model run states. STOPPING_x: a stop is in progress on a run whose
 * stored state is x. */
enum {
    R_NONE,
    R_PENDING,
    R_RUNNING,
    R_PAUSED,
    R_STOP_PENDING,
    R_STOP_RUNNING,
    R_STOP_PAUSED,
    R_STOPPED,
    R_FAILED,
    R_COMPLETED,
};

enum ev_kind { E_START, E_READ, E_PAUSE, E_RESUME, E_STOP, E_STOP_END, E_CRASH };

typedef struct ev {
    uint8_t kind;
    uint8_t res;   /* lc_result_t */
    uint8_t st;    /* lc_state_t reported */
    bool optional; /* outcome unknown: the effect or nothing */
    int32_t job;   /* E_START */
    int32_t run;   /* run index, -1: a phantom id */
    int32_t dep;   /* event to linearize first, -1: none */
    int32_t op;    /* history index */
    int64_t call, ret;
} ev_t;

#define MAX_SUCC        64
#define MAX_CRASH_STOPS 6

typedef struct model {
    lc_model_cfg_t cfg;
    uint32_t nruns, qcap;
    size_t size;      /* bytes of a state */
    int32_t *run_job; /* job of each run */
    bool toobig;      /* a crash met more stopping runs than it can enumerate */
} model_t;

/* State layout: st[nruns] | nq (uint16) | q[qcap] (uint16). */
static uint16_t st_nq(const model_t *m, const uint8_t *s)
{
    uint16_t n;
    memcpy(&n, s + m->nruns, 2);
    return n;
}

static void st_set_nq(const model_t *m, uint8_t *s, uint16_t n)
{
    memcpy(s + m->nruns, &n, 2);
}

static uint16_t st_q(const model_t *m, const uint8_t *s, uint32_t i)
{
    uint16_t v;
    memcpy(&v, s + m->nruns + 2 + 2 * i, 2);
    return v;
}

static void st_set_q(const model_t *m, uint8_t *s, uint32_t i, uint16_t v)
{
    memcpy(s + m->nruns + 2 + 2 * i, &v, 2);
}

static bool q_push(const model_t *m, uint8_t *s, uint32_t run)
{
    uint16_t n = st_nq(m, s);
    if (n >= m->qcap)
        return false;
    st_set_q(m, s, n, (uint16_t)run);
    st_set_nq(m, s, n + 1);
    return true;
}

static void q_remove(const model_t *m, uint8_t *s, uint32_t run)
{
    uint16_t n = st_nq(m, s), j = 0;
    for (uint16_t i = 0; i < n; i++) {
        uint16_t v = st_q(m, s, i);
        if (v != run)
            st_set_q(m, s, j++, v);
    }
    for (uint16_t i = j; i < n; i++)
        st_set_q(m, s, i, 0); /* keep unused slots canonical for the memo */
    st_set_nq(m, s, j);
}

/* The state the store holds (what GET shows). */
static int stored(int r)
{
    switch (r) {
    case R_STOP_PENDING:
        return R_PENDING;
    case R_STOP_RUNNING:
        return R_RUNNING;
    case R_STOP_PAUSED:
        return R_PAUSED;
    default:
        return r;
    }
}

static bool stopping(int r)
{
    return r == R_STOP_PENDING || r == R_STOP_RUNNING || r == R_STOP_PAUSED;
}

static bool terminal(int r)
{
    return r == R_STOPPED || r == R_FAILED || r == R_COMPLETED;
}

static lc_state_t api_state(int r)
{
    switch (stored(r)) {
    case R_PENDING:
        return LC_S_PENDING;
    case R_RUNNING:
        return LC_S_RUNNING;
    case R_PAUSED:
        return LC_S_PAUSED;
    case R_STOPPED:
        return LC_S_STOPPED;
    case R_FAILED:
        return LC_S_FAILED;
    case R_COMPLETED:
        return LC_S_COMPLETED;
    default:
        return LC_S_NONE;
    }
}

/* The state a refusal names: "stopping" while a stop is in progress. */
static lc_state_t refusal_state(int r)
{
    return stopping(r) ? LC_S_STOPPING : api_state(r);
}

static uint32_t count_stored(const model_t *m, const uint8_t *s, int want)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->nruns; i++)
        n += stored(s[i]) == want;
    return n;
}

/* Starts pending runs, oldest first, while a running slot is free. */
static void promote(const model_t *m, uint8_t *s)
{
    while (count_stored(m, s, R_RUNNING) < m->cfg.max_running) {
        uint16_t n = st_nq(m, s);
        int pick = -1;
        for (uint16_t i = 0; i < n; i++) {
            uint16_t r = st_q(m, s, i);
            if (s[r] == R_PENDING) {
                pick = r;
                break;
            }
        }
        if (pick < 0)
            return;
        q_remove(m, s, (uint32_t)pick);
        s[pick] = R_RUNNING;
    }
}

/* Policy of a start of job j, or of a resume (resume: run r is the run,
 * excluded from the job's count). Returns LC_OK with *to set, LC_CONFLICT
 * or LC_BUSY. */
static lc_result_t admit(const model_t *m, const uint8_t *s, int32_t j, int32_t r, bool resume,
                         int *to)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->nruns; i++) {
        if (m->run_job[i] != j || (int32_t)i == r || s[i] == R_NONE)
            continue;
        if (resume ? (stored(s[i]) == R_RUNNING || stored(s[i]) == R_PENDING) : !terminal(s[i]))
            n++;
    }
    if (n >= m->cfg.max_active)
        return LC_CONFLICT;
    *to = count_stored(m, s, R_RUNNING) < m->cfg.max_running ? R_RUNNING : R_PENDING;
    if (*to == R_PENDING && count_stored(m, s, R_PENDING) >= m->cfg.max_pending)
        return LC_BUSY;
    return LC_OK;
}

/* The deterministic effect of a command on s (modified in place): returns
 * the result the service must give, and *st the state a refusal names. */
static lc_result_t apply(const model_t *m, uint8_t *s, const ev_t *e, lc_state_t *st)
{
    *st = LC_S_NONE;
    int32_t k = e->run;
    int cur = k >= 0 ? s[k] : R_NONE;
    switch (e->kind) {
    case E_START: {
        int to;
        lc_result_t res = admit(m, s, e->job, -1, false, &to);
        if (res != LC_OK)
            return res;
        if (k < 0 || cur != R_NONE)
            return LC_RESULT_COUNT; /* an id that is not new: never right */
        s[k] = (uint8_t)to;
        if (to == R_PENDING && !q_push(m, s, (uint32_t)k))
            return LC_RESULT_COUNT;
        return LC_OK;
    }
    case E_READ:
        if (cur == R_NONE)
            return LC_NOT_FOUND;
        *st = api_state(cur);
        return LC_OK;
    case E_PAUSE:
        if (cur == R_NONE)
            return LC_NOT_FOUND;
        if (cur == R_RUNNING || cur == R_PENDING) {
            if (cur == R_PENDING)
                q_remove(m, s, (uint32_t)k);
            s[k] = R_PAUSED;
            if (cur == R_RUNNING)
                promote(m, s);
            return LC_OK;
        }
        *st = refusal_state(cur);
        return LC_INVALID;
    case E_RESUME: {
        if (cur == R_NONE)
            return LC_NOT_FOUND;
        if (cur != R_PAUSED) {
            *st = refusal_state(cur);
            return LC_INVALID;
        }
        int to;
        lc_result_t res = admit(m, s, m->run_job[k], k, true, &to);
        if (res != LC_OK)
            return res;
        s[k] = (uint8_t)to;
        if (to == R_PENDING && !q_push(m, s, (uint32_t)k))
            return LC_RESULT_COUNT;
        return LC_OK;
    }
    case E_STOP:
        if (cur == R_NONE)
            return LC_NOT_FOUND;
        if (cur == R_PENDING || cur == R_RUNNING || cur == R_PAUSED) {
            s[k] = cur == R_PENDING   ? R_STOP_PENDING
                   : cur == R_RUNNING ? R_STOP_RUNNING
                                      : R_STOP_PAUSED;
            return LC_OK;
        }
        *st = refusal_state(cur);
        return LC_INVALID;
    case E_STOP_END:
        if (!stopping(cur))
            return LC_RESULT_COUNT; /* only after its own STOP */
        s[k] = R_STOPPED;
        if (cur == R_STOP_PENDING)
            q_remove(m, s, (uint32_t)k);
        if (cur == R_STOP_RUNNING)
            promote(m, s);
        return LC_OK;
    default:
        return LC_RESULT_COUNT;
    }
}

/* Recovery after a restart, on s in place. */
static void recover(const model_t *m, uint8_t *s)
{
    for (uint32_t i = 0; i < m->nruns; i++)
        if (s[i] == R_RUNNING)
            s[i] = R_FAILED;
    /* Pending runs again in id (= index) order. */
    uint16_t n = 0;
    for (uint32_t i = 0; i < m->nruns; i++)
        if (s[i] == R_PENDING)
            st_set_q(m, s, n++, (uint16_t)i);
    for (uint32_t i = n; i < m->qcap; i++)
        st_set_q(m, s, i, 0);
    st_set_nq(m, s, n);
    promote(m, s);
}

static int add_succ(const model_t *m, uint8_t *out, int n, const uint8_t *s)
{
    for (int i = 0; i < n; i++)
        if (memcmp(out + (size_t)i * m->size, s, m->size) == 0)
            return n; /* already there */
    if (n >= MAX_SUCC)
        return n;
    memcpy(out + (size_t)n * m->size, s, m->size);
    return n + 1;
}

/* Writes the states the model may reach from s by e, with e's observed
 * result, into out (MAX_SUCC states); returns how many (0: e cannot happen
 * now). */
static int step(model_t *m, const uint8_t *s, const ev_t *e, uint8_t *out, uint8_t *tmp)
{
    int n = 0;
    if (e->kind == E_CRASH) {
        int32_t stops[MAX_CRASH_STOPS];
        int ns = 0;
        for (uint32_t i = 0; i < m->nruns; i++) {
            if (!stopping(s[i]))
                continue;
            if (ns == MAX_CRASH_STOPS) {
                m->toobig = true;
                return 0;
            }
            stops[ns++] = (int32_t)i;
        }
        for (uint32_t mask = 0; mask < (1u << ns); mask++) {
            memcpy(tmp, s, m->size);
            for (int b = 0; b < ns; b++) {
                int32_t r = stops[b];
                if (mask & (1u << b)) {
                    if (tmp[r] == R_STOP_PENDING)
                        q_remove(m, tmp, (uint32_t)r);
                    tmp[r] = R_STOPPED; /* the stop was written before the kill */
                } else {
                    tmp[r] = (uint8_t)stored(tmp[r]); /* it was not */
                }
            }
            recover(m, tmp);
            n = add_succ(m, out, n, tmp);
        }
        return n;
    }
    if (e->optional) {
        n = add_succ(m, out, n, s); /* no effect */
        memcpy(tmp, s, m->size);
        lc_state_t st;
        lc_result_t r = apply(m, tmp, e, &st);
        if (r != LC_RESULT_COUNT)
            n = add_succ(m, out, n, tmp);
        return n;
    }
    memcpy(tmp, s, m->size);
    lc_state_t st;
    lc_result_t r = apply(m, tmp, e, &st);
    if (r != (lc_result_t)e->res)
        return 0;
    if (r == LC_INVALID && st != (lc_state_t)e->st)
        return 0;
    if (e->kind == E_READ && r == LC_OK && st != (lc_state_t)e->st)
        return 0;
    return add_succ(m, out, n, tmp);
}

/* ------------------------------------------------------------- memo */

typedef struct memo {
    size_t key;
    uint8_t *keys;
    size_t n, cap;
    uint32_t *slots; /* key index + 1; 0: empty */
    size_t nslots;
} memo_t;

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

static int memo_grow(memo_t *mo)
{
    size_t ns = mo->nslots ? mo->nslots * 2 : 1u << 12;
    uint32_t *sl = calloc(ns, sizeof(*sl));
    if (sl == NULL)
        return LC_ENOMEM;
    for (size_t i = 0; i < mo->n; i++) {
        size_t h = hash_bytes(mo->keys + i * mo->key, mo->key) & (ns - 1);
        while (sl[h] != 0)
            h = (h + 1) & (ns - 1);
        sl[h] = (uint32_t)i + 1;
    }
    free(mo->slots);
    mo->slots = sl;
    mo->nslots = ns;
    return 0;
}

/* 1: new (inserted), 0: seen before, <0: error. */
static int memo_insert(memo_t *mo, const uint8_t *k)
{
    if ((mo->n + 1) * 2 > mo->nslots && memo_grow(mo) != 0)
        return LC_ENOMEM;
    size_t h = hash_bytes(k, mo->key) & (mo->nslots - 1);
    while (mo->slots[h] != 0) {
        if (memcmp(mo->keys + (size_t)(mo->slots[h] - 1) * mo->key, k, mo->key) == 0)
            return 0;
        h = (h + 1) & (mo->nslots - 1);
    }
    if (mo->n == mo->cap) {
        size_t cap = mo->cap ? mo->cap * 2 : 4096;
        uint8_t *p = realloc(mo->keys, cap * mo->key);
        if (p == NULL)
            return LC_ENOMEM;
        mo->keys = p;
        mo->cap = cap;
    }
    memcpy(mo->keys + mo->n * mo->key, k, mo->key);
    mo->slots[h] = (uint32_t)++mo->n;
    return 1;
}

/* ---------------------------------------------------------- lowering */

typedef struct idmap {
    char (*ids)[LC_ID_MAX];
    size_t n;
} idmap_t;

static int cmp_id(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static int32_t id_find(const idmap_t *m, const char *id)
{
    char(*p)[LC_ID_MAX] = bsearch(id, m->ids, m->n, LC_ID_MAX, cmp_id);
    return p != NULL ? (int32_t)(p - m->ids) : -1;
}

typedef struct lowered {
    ev_t *evs;
    size_t n, cap;
    model_t m;
    char (*jobs)[LC_JOB_MAX];
    size_t njobs;
} lowered_t;

static int ev_add(lowered_t *lw, const ev_t *e)
{
    if (lw->n == lw->cap) {
        size_t cap = lw->cap ? lw->cap * 2 : 512;
        ev_t *p = realloc(lw->evs, cap * sizeof(*p));
        if (p == NULL)
            return LC_ENOMEM;
        lw->evs = p;
        lw->cap = cap;
    }
    lw->evs[lw->n] = *e;
    return (int)lw->n++;
}

static int32_t job_index(lowered_t *lw, const char *job)
{
    for (size_t i = 0; i < lw->njobs; i++)
        if (strcmp(lw->jobs[i], job) == 0)
            return (int32_t)i;
    void *p = realloc(lw->jobs, (lw->njobs + 1) * LC_JOB_MAX);
    if (p == NULL)
        return -1;
    lw->jobs = p;
    snprintf(lw->jobs[lw->njobs], LC_JOB_MAX, "%s", job);
    return (int32_t)lw->njobs++;
}

static int lower(const lc_history_t *h, const lc_model_cfg_t *cfg, lowered_t *lw, char *why,
                 size_t whylen)
{
    memset(lw, 0, sizeof(*lw));
    lw->m.cfg.max_active = cfg != NULL && cfg->max_active ? cfg->max_active : 1;
    lw->m.cfg.max_running = cfg != NULL && cfg->max_running ? cfg->max_running : 4;
    lw->m.cfg.max_pending = cfg != NULL && cfg->max_pending ? cfg->max_pending : 1024;

    idmap_t ids = {0};
    size_t anon = 0;
    ids.ids = malloc((h->n + 1) * LC_ID_MAX);
    if (ids.ids == NULL)
        return LC_ENOMEM;
    for (size_t i = 0; i < h->n; i++) {
        const lc_op_t *o = &h->ops[i];
        if (o->ret < o->call || (unsigned)o->kind >= LC_KIND_COUNT ||
            (unsigned)o->result >= LC_RESULT_COUNT) {
            snprintf(why, whylen, "op #%zu: bad kind, result or times", i);
            free(ids.ids);
            return LC_EINVAL;
        }
        if (o->kind == LC_START && o->result == LC_OK) {
            if (o->run[0] == '\0') {
                snprintf(why, whylen, "op #%zu: a start reported ok without a run id", i);
                free(ids.ids);
                return LC_EINVAL;
            }
            snprintf(ids.ids[ids.n++], LC_ID_MAX, "%s", o->run);
        }
        if (o->kind == LC_START && o->result == LC_UNKNOWN)
            anon++;
    }
    qsort(ids.ids, ids.n, LC_ID_MAX, cmp_id);
    size_t u = 0;
    for (size_t i = 0; i < ids.n; i++)
        if (u == 0 || strcmp(ids.ids[u - 1], ids.ids[i]) != 0)
            memmove(ids.ids[u++], ids.ids[i], LC_ID_MAX);
    ids.n = u;
    if (ids.n + anon > 4000) {
        snprintf(why, whylen, "%zu runs: more than the checker's 4000", ids.n + anon);
        free(ids.ids);
        return LC_ETOOBIG;
    }
    model_t *m = &lw->m;
    m->nruns = (uint32_t)(ids.n + anon);
    m->run_job = calloc(m->nruns + 1, sizeof(int32_t));
    if (m->run_job == NULL) {
        free(ids.ids);
        return LC_ENOMEM;
    }
    for (uint32_t i = 0; i < m->nruns; i++)
        m->run_job[i] = -1;
    m->qcap = m->nruns < m->cfg.max_pending ? m->nruns : m->cfg.max_pending;
    m->size = m->nruns + 2 + 2 * (size_t)m->qcap;

    size_t next_anon = ids.n;
    int rc = 0;
    for (size_t i = 0; i < h->n && rc >= 0; i++) {
        const lc_op_t *o = &h->ops[i];
        ev_t e = {.res = (uint8_t)o->result,
                  .st = (uint8_t)o->state,
                  .job = -1,
                  .run = -1,
                  .dep = -1,
                  .op = (int32_t)i,
                  .call = o->call,
                  .ret = o->ret};
        e.optional = o->result == LC_UNKNOWN;
        bool read_after = o->result == LC_OK && o->state != LC_S_NONE;
        switch (o->kind) {
        case LC_START:
            e.kind = E_START;
            e.job = job_index(lw, o->job);
            if (e.job < 0) {
                rc = LC_ENOMEM;
                break;
            }
            if (o->result == LC_OK)
                e.run = id_find(&ids, o->run);
            else if (o->result == LC_UNKNOWN)
                e.run = (int32_t)next_anon++;
            if (e.run >= 0)
                m->run_job[e.run] = e.job;
            break;
        case LC_GET:
            if (o->result == LC_UNKNOWN)
                continue; /* a read with no answer changed nothing */
            e.kind = E_READ;
            e.run = id_find(&ids, o->run);
            read_after = false;
            break;
        case LC_PAUSE:
        case LC_RESUME:
        case LC_STOP:
            e.kind = o->kind == LC_PAUSE ? E_PAUSE : o->kind == LC_RESUME ? E_RESUME : E_STOP;
            e.run = id_find(&ids, o->run);
            break;
        case LC_CRASH:
            e.kind = E_CRASH;
            e.optional = false;
            read_after = false;
            break;
        default:
            break;
        }
        if (rc < 0)
            break;
        int prev = ev_add(lw, &e);
        if (prev < 0) {
            rc = prev;
            break;
        }
        if (o->kind == LC_STOP && (o->result == LC_OK || o->result == LC_UNKNOWN)) {
            ev_t end = e;
            end.kind = E_STOP_END;
            end.dep = prev;
            if ((prev = ev_add(lw, &end)) < 0) {
                rc = prev;
                break;
            }
        }
        if (read_after) {
            ev_t rd = e;
            rd.kind = E_READ;
            rd.res = LC_OK;
            rd.optional = false;
            rd.dep = prev;
            if ((prev = ev_add(lw, &rd)) < 0)
                rc = prev;
        }
    }
    free(ids.ids);
    if (rc < 0) {
        snprintf(why, whylen, "%s", lc_strerror(rc));
        return rc;
    }
    return 0;
}

static void lowered_free(lowered_t *lw)
{
    free(lw->evs);
    free(lw->jobs);
    free(lw->m.run_job);
}

/* ------------------------------------------------------------ search */

typedef struct node {
    int64_t t;
    int32_t ev;
    bool call;
    int32_t prev, next, match;
} node_t;

static int cmp_node(const void *a, const void *b)
{
    const node_t *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    if (x->call != y->call)
        return x->call ? -1 : 1; /* equal instants: concurrent */
    return x->ev < y->ev ? -1 : x->ev > y->ev;
}

typedef struct frame {
    int32_t node; /* the call entry linearized */
    int32_t succ; /* which successor was taken */
} frame_t;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void lift(node_t *nd, int32_t c)
{
    node_t *n = &nd[c];
    nd[n->prev].next = n->next;
    if (n->next >= 0)
        nd[n->next].prev = n->prev;
    node_t *r = &nd[n->match];
    nd[r->prev].next = r->next;
    if (r->next >= 0)
        nd[r->next].prev = r->prev;
}

static void unlift(node_t *nd, int32_t c)
{
    node_t *n = &nd[c];
    node_t *r = &nd[n->match];
    nd[r->prev].next = n->match;
    if (r->next >= 0)
        nd[r->next].prev = n->match;
    nd[n->prev].next = c;
    if (n->next >= 0)
        nd[n->next].prev = c;
}

static bool bit(const uint8_t *b, size_t i)
{
    return (b[i / 8] >> (i % 8)) & 1;
}

static void bit_set(uint8_t *b, size_t i, bool v)
{
    if (v)
        b[i / 8] |= (uint8_t)(1u << (i % 8));
    else
        b[i / 8] &= (uint8_t) ~(1u << (i % 8));
}

static void describe_stuck(const lc_history_t *h, const lowered_t *lw, const uint8_t *best,
                           lc_report_t *out)
{
    int64_t first = LC_INF;
    int pick = -1;
    for (size_t i = 0; i < lw->n; i++)
        if (!bit(best, i) && (pick < 0 || lw->evs[i].ret < first)) {
            first = lw->evs[i].ret;
            pick = (int)i;
        }
    if (pick < 0)
        return;
    out->stuck_op = lw->evs[pick].op;
    char buf[512];
    FILE *f = fmemopen(buf, sizeof(buf), "w");
    if (f != NULL) {
        lc_op_print(&h->ops[out->stuck_op], f);
        fclose(f);
    } else {
        buf[0] = '\0';
    }
    static const char *const EVN[] = {"start", "read",     "pause", "resume",
                                      "stop",  "stop_end", "crash"};
    snprintf(out->why, sizeof(out->why),
             "after %zu of %zu events linearized at best, no order places op #%d (%s event): %s",
             out->deepest, out->events, out->stuck_op, EVN[lw->evs[pick].kind], buf);
}

int lc_check(const lc_history_t *h, const lc_model_cfg_t *cfg, const lc_limits_t *lim,
             lc_report_t *out)
{
    memset(out, 0, sizeof(*out));
    out->stuck_op = -1;
    out->verdict = LC_UNDECIDED;
    double t0 = now_ms();
    uint64_t steps = 0;
    uint64_t max_steps = lim != NULL && lim->max_steps ? lim->max_steps : 50000000ull;
    uint64_t max_ms = lim != NULL && lim->max_ms ? lim->max_ms : 60000;
    size_t max_memo = lim != NULL && lim->max_memo ? lim->max_memo : 4u << 20;

    lowered_t lw;
    int rc = lower(h, cfg, &lw, out->why, sizeof(out->why));
    if (rc != 0) {
        lowered_free(&lw);
        return rc;
    }
    model_t *m = &lw.m;
    size_t nev = lw.n;
    out->events = nev;
    size_t nbits = (nev + 7) / 8;
    size_t S = m->size;

    node_t *nd = calloc(2 * nev + 1, sizeof(*nd));
    frame_t *stack = calloc(nev + 1, sizeof(*stack));
    uint8_t *states = calloc(nev + 2, S);             /* state before each frame + current */
    uint8_t *succ = malloc((size_t)MAX_SUCC * S + S); /* successors + scratch */
    uint8_t *key = calloc(1, nbits + S);              /* linearized bits | state */
    uint8_t *best = calloc(1, nbits + 1);
    int32_t *pos = malloc((2 * nev + 1) * sizeof(*pos));
    memo_t mo = {.key = nbits + S};
    if (nd == NULL || stack == NULL || states == NULL || succ == NULL || key == NULL ||
        best == NULL || pos == NULL) {
        rc = LC_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < nev; i++) {
        nd[2 * i] = (node_t){.t = lw.evs[i].call, .ev = (int32_t)i, .call = true};
        nd[2 * i + 1] = (node_t){.t = lw.evs[i].ret, .ev = (int32_t)i, .call = false};
    }
    qsort(nd, 2 * nev, sizeof(*nd), cmp_node);
    /* Links: index 2*nev is the head sentinel. */
    for (size_t i = 0; i < 2 * nev; i++)
        pos[nd[i].ev * 2 + (nd[i].call ? 0 : 1)] = (int32_t)i;
    for (size_t i = 0; i < 2 * nev; i++) {
        nd[i].prev = i == 0 ? (int32_t)(2 * nev) : (int32_t)i - 1;
        nd[i].next = i + 1 < 2 * nev ? (int32_t)i + 1 : -1;
        nd[i].match = nd[i].call ? pos[nd[i].ev * 2 + 1] : pos[nd[i].ev * 2];
    }
    int32_t head = (int32_t)(2 * nev);
    nd[head] = (node_t){.prev = -1, .next = nev > 0 ? 0 : -1, .match = -1};

    uint8_t *lin = key;    /* the bits live at the front of the key */
    uint8_t *cur = states; /* states[sp]: the current state */
    size_t sp = 0;
    memset(cur, 0, S); /* every run R_NONE, empty queue */
    uint8_t *tmp = succ + (size_t)MAX_SUCC * S;
    int32_t at = nd[head].next;

    while (nd[head].next >= 0) {
        if (++steps > max_steps) {
            snprintf(out->why, sizeof(out->why), "step bound (%llu) hit",
                     (unsigned long long)max_steps);
            goto undecided;
        }
        if ((steps & 4095) == 0 && now_ms() - t0 > (double)max_ms) {
            snprintf(out->why, sizeof(out->why), "time bound (%llu ms) hit",
                     (unsigned long long)max_ms);
            goto undecided;
        }
        if (mo.n > max_memo) {
            snprintf(out->why, sizeof(out->why), "memo bound (%zu entries) hit", max_memo);
            goto undecided;
        }
        int32_t from = -1, first_succ = 0;
        if (at >= 0 && nd[at].call) {
            from = at;
        } else {
            /* The first entry is a return (or none is left to try): undo
             * the last choice and try its next successor. */
            if (sp == 0) {
                out->verdict = LC_NOT_LINEARIZABLE;
                if (m->toobig)
                    snprintf(out->why, sizeof(out->why),
                             "a crash met more than %d stopping runs; cannot decide",
                             MAX_CRASH_STOPS);
                goto done;
            }
            frame_t *f = &stack[--sp];
            unlift(nd, f->node);
            bit_set(lin, (size_t)nd[f->node].ev, false);
            cur = states + sp * S;
            from = f->node;
            first_succ = f->succ + 1;
        }
        const ev_t *e = &lw.evs[nd[from].ev];
        bool placed = false;
        if (e->dep < 0 || bit(lin, (size_t)e->dep)) {
            int ns = step(m, cur, e, succ, tmp);
            for (int i = first_succ; i < ns && !placed; i++) {
                bit_set(lin, (size_t)nd[from].ev, true);
                memcpy(key + nbits, succ + (size_t)i * S, S);
                int r = memo_insert(&mo, key);
                if (r < 0) {
                    rc = r;
                    goto done;
                }
                if (r == 1) {
                    stack[sp] = (frame_t){.node = from, .succ = i};
                    memcpy(states + (sp + 1) * S, succ + (size_t)i * S, S);
                    sp++;
                    cur = states + sp * S;
                    lift(nd, from);
                    placed = true;
                    if (sp > out->deepest) {
                        out->deepest = sp;
                        memcpy(best, lin, nbits);
                    }
                } else {
                    bit_set(lin, (size_t)nd[from].ev, false);
                }
            }
        }
        at = placed ? nd[head].next : nd[from].next;
    }
    out->verdict = LC_LINEARIZABLE;
    goto done;
undecided:
    out->verdict = LC_UNDECIDED;
done:
    out->steps = steps;
    out->memo = mo.n;
    if (rc == 0 && out->verdict == LC_NOT_LINEARIZABLE && !m->toobig)
        describe_stuck(h, &lw, best, out);
    free(nd);
    free(stack);
    free(states);
    free(succ);
    free(key);
    free(best);
    free(pos);
    free(mo.keys);
    free(mo.slots);
    lowered_free(&lw);
    out->ms = now_ms() - t0;
    if (rc != 0 && out->why[0] == '\0')
        snprintf(out->why, sizeof(out->why), "%s", lc_strerror(rc));
    return rc;
}
