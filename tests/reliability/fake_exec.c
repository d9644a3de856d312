/*
 * fake_exec.c: an in-process fake of the executor for testing the
 * linearizability checker. See fake_exec.h.
 *
 * DESIGN. One mutex guards the run table; a correct command decides and
 * acts in one critical section. Like the real service, a successful
 * command answers with the run's state read in a second critical section
 * (so another command may come in between), and a stop has a "stopping"
 * phase (commands on the run are refused naming "stopping", a get shows
 * the stored state) before the run is stopped. A mutant splits one
 * decision from its action with an unlocked sleep: the check-then-act race
 * the executor's single work queue rules out.
 *
 * A crash takes the lock, applies recovery (a stop in progress is lost;
 * running runs fail; pending runs are queued again in id order and
 * promoted) and bumps the epoch. A command that meets a new epoch in any
 * later critical section gives up and reports an unknown outcome whose
 * ret is the crash's call time: all its effects came before the crash.
 */
#define _GNU_SOURCE
#include "fake_exec.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_RUNS 4096
#define MAX_SEEN 8
#define RACE_US  150

const char *fake_mutant_name(fake_mutant_t m)
{
    static const char *const names[FAKE_MUTANT_COUNT] = {
        [FAKE_CORRECT] = "correct",
        [FAKE_DOUBLE_START] = "check-then-act double start",
        [FAKE_DOUBLE_RESUME] = "double resume",
        [FAKE_PAUSE_MISSING] = "pause of a missing run",
    };
    return (unsigned)m < FAKE_MUTANT_COUNT ? names[m] : "?";
}

typedef struct frun {
    char id[LC_ID_MAX];
    int job;
    lc_state_t state;
    bool stopping;
    uint64_t seq; /* FIFO position while pending */
} frun_t;

typedef struct fake {
    const fake_cfg_t *cfg;
    pthread_mutex_t mu;
    frun_t *runs;
    int nruns;
    int next_id;
    uint64_t next_seq;
    uint64_t epoch;
    int64_t crash_call; /* of the last crash */
    int64_t t0;
    /* the recorded history and the ids clients have seen */
    pthread_mutex_t hmu;
    lc_history_t *h;
    char seen[MAX_SEEN][LC_ID_MAX];
    int nseen;
    int rc;
    int done_clients;
} fake_t;

static int64_t now_ns(const fake_t *f)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - f->t0;
}

static frun_t *find(fake_t *f, const char *id)
{
    for (int i = 0; i < f->nruns; i++)
        if (strcmp(f->runs[i].id, id) == 0)
            return &f->runs[i];
    return NULL;
}

static int count(const fake_t *f, lc_state_t s)
{
    int n = 0;
    for (int i = 0; i < f->nruns; i++)
        n += f->runs[i].state == s;
    return n;
}

static void promote(fake_t *f)
{
    while (count(f, LC_S_RUNNING) < f->cfg->max_running) {
        frun_t *pick = NULL;
        for (int i = 0; i < f->nruns; i++) {
            frun_t *r = &f->runs[i];
            if (r->state == LC_S_PENDING && !r->stopping && (pick == NULL || r->seq < pick->seq))
                pick = r;
        }
        if (pick == NULL)
            return;
        pick->state = LC_S_RUNNING;
    }
}

static bool active(const frun_t *r)
{
    return r->state == LC_S_PENDING || r->state == LC_S_RUNNING || r->state == LC_S_PAUSED;
}

/* Locks; false (unlocked) if a crash came since the command began. */
static bool enter(fake_t *f, uint64_t epoch)
{
    pthread_mutex_lock(&f->mu);
    if (f->epoch == epoch)
        return true;
    pthread_mutex_unlock(&f->mu);
    return false;
}

static void record(fake_t *f, const lc_op_t *op)
{
    pthread_mutex_lock(&f->hmu);
    if (lc_history_add(f->h, op) != 0)
        f->rc = LC_ENOMEM;
    if (op->kind == LC_START && op->result == LC_OK) {
        snprintf(f->seen[f->nseen % MAX_SEEN], LC_ID_MAX, "%s", op->run);
        f->nseen++;
    }
    pthread_mutex_unlock(&f->hmu);
}

/* The second half of a success: the state read back. */
static void read_back(fake_t *f, uint64_t epoch, lc_op_t *op)
{
    sched_yield();
    if (!enter(f, epoch)) {
        op->result = LC_UNKNOWN;
        op->state = LC_S_NONE;
        return;
    }
    frun_t *r = find(f, op->run);
    op->state = r != NULL ? r->state : LC_S_NONE;
    pthread_mutex_unlock(&f->mu);
}

static void do_start(fake_t *f, uint64_t epoch, lc_op_t *op, int job)
{
    snprintf(op->job, sizeof(op->job), "j%d", job);
    if (!enter(f, epoch))
        goto lost;
    int act = 0;
    for (int i = 0; i < f->nruns; i++)
        act += f->runs[i].job == job && active(&f->runs[i]);
    if (f->cfg->mutant == FAKE_DOUBLE_START && act == 0) {
        pthread_mutex_unlock(&f->mu);
        usleep(RACE_US);
        if (!enter(f, epoch))
            goto lost;
    } else if (act >= 1) {
        op->result = LC_CONFLICT;
        pthread_mutex_unlock(&f->mu);
        return;
    }
    if (f->nruns == MAX_RUNS) {
        op->result = LC_BUSY;
        pthread_mutex_unlock(&f->mu);
        return;
    }
    frun_t *r = &f->runs[f->nruns++];
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "r%06d", f->next_id++);
    r->job = job;
    r->state = count(f, LC_S_RUNNING) < f->cfg->max_running ? LC_S_RUNNING : LC_S_PENDING;
    r->seq = f->next_seq++;
    snprintf(op->run, sizeof(op->run), "%s", r->id);
    pthread_mutex_unlock(&f->mu);
    op->result = LC_OK;
    read_back(f, epoch, op);
    if (op->result == LC_UNKNOWN)
        op->run[0] = '\0'; /* the client never learned the id */
    return;
lost:
    op->result = LC_UNKNOWN;
}

static void do_get(fake_t *f, uint64_t epoch, lc_op_t *op)
{
    if (!enter(f, epoch)) {
        op->result = LC_UNKNOWN;
        return;
    }
    frun_t *r = find(f, op->run);
    op->result = r != NULL ? LC_OK : LC_NOT_FOUND;
    op->state = r != NULL ? r->state : LC_S_NONE;
    pthread_mutex_unlock(&f->mu);
}

static void do_pause(fake_t *f, uint64_t epoch, lc_op_t *op)
{
    if (!enter(f, epoch)) {
        op->result = LC_UNKNOWN;
        return;
    }
    frun_t *r = find(f, op->run);
    if (r == NULL && f->cfg->mutant == FAKE_PAUSE_MISSING && f->nruns < MAX_RUNS) {
        /* the mutant: an upsert instead of a lookup */
        r = &f->runs[f->nruns++];
        memset(r, 0, sizeof(*r));
        snprintf(r->id, sizeof(r->id), "%s", op->run);
        r->job = -1;
        r->state = LC_S_PAUSED;
        op->result = LC_OK;
    } else if (r == NULL) {
        op->result = LC_NOT_FOUND;
    } else if (r->stopping) {
        op->result = LC_INVALID;
        op->state = LC_S_STOPPING;
    } else if (r->state == LC_S_RUNNING || r->state == LC_S_PENDING) {
        bool was_running = r->state == LC_S_RUNNING;
        r->state = LC_S_PAUSED;
        if (was_running)
            promote(f);
        op->result = LC_OK;
    } else {
        op->result = LC_INVALID;
        op->state = r->state;
    }
    pthread_mutex_unlock(&f->mu);
    if (op->result == LC_OK)
        read_back(f, epoch, op);
}

static void do_resume(fake_t *f, uint64_t epoch, lc_op_t *op)
{
    if (!enter(f, epoch)) {
        op->result = LC_UNKNOWN;
        return;
    }
    frun_t *r = find(f, op->run);
    if (r == NULL) {
        op->result = LC_NOT_FOUND;
    } else if (r->stopping) {
        op->result = LC_INVALID;
        op->state = LC_S_STOPPING;
    } else if (r->state != LC_S_PAUSED) {
        op->result = LC_INVALID;
        op->state = r->state;
    } else {
        if (f->cfg->mutant == FAKE_DOUBLE_RESUME) {
            pthread_mutex_unlock(&f->mu);
            usleep(RACE_US);
            if (!enter(f, epoch)) {
                op->result = LC_UNKNOWN;
                return;
            }
            r = find(f, op->run);
        }
        int busy = 0;
        for (int i = 0; i < f->nruns; i++) {
            const frun_t *o = &f->runs[i];
            busy += o != r && o->job == r->job &&
                    (o->state == LC_S_RUNNING || o->state == LC_S_PENDING);
        }
        if (busy >= 1) {
            op->result = LC_CONFLICT;
        } else {
            r->state = count(f, LC_S_RUNNING) < f->cfg->max_running ? LC_S_RUNNING : LC_S_PENDING;
            r->seq = f->next_seq++;
            op->result = LC_OK;
        }
    }
    pthread_mutex_unlock(&f->mu);
    if (op->result == LC_OK)
        read_back(f, epoch, op);
}

static void do_stop(fake_t *f, uint64_t epoch, lc_op_t *op, unsigned *seed)
{
    if (!enter(f, epoch)) {
        op->result = LC_UNKNOWN;
        return;
    }
    frun_t *r = find(f, op->run);
    if (r == NULL) {
        op->result = LC_NOT_FOUND;
    } else if (r->stopping) {
        op->result = LC_INVALID;
        op->state = LC_S_STOPPING;
    } else if (!active(r)) {
        op->result = LC_INVALID;
        op->state = r->state;
    } else {
        r->stopping = true;
        op->result = LC_OK;
    }
    pthread_mutex_unlock(&f->mu);
    if (op->result != LC_OK)
        return;
    usleep((useconds_t)(rand_r(seed) % 200)); /* the process takes its time to die */
    if (!enter(f, epoch)) {
        op->result = LC_UNKNOWN;
        return;
    }
    r = find(f, op->run);
    bool was_running = r->state == LC_S_RUNNING;
    r->state = LC_S_STOPPED;
    r->stopping = false;
    if (was_running)
        promote(f);
    pthread_mutex_unlock(&f->mu);
    read_back(f, epoch, op);
}

static void crash(fake_t *f)
{
    lc_op_t op = {.kind = LC_CRASH, .client = -1, .result = LC_OK};
    pthread_mutex_lock(&f->mu);
    op.call = now_ns(f);
    f->crash_call = op.call;
    for (int i = 0; i < f->nruns; i++) {
        frun_t *r = &f->runs[i];
        r->stopping = false; /* the stop was not written */
        if (r->state == LC_S_RUNNING)
            r->state = LC_S_FAILED;
        if (r->state == LC_S_PENDING)
            r->seq = (uint64_t)i; /* id order: runs[] is in id order */
    }
    promote(f);
    f->epoch++;
    op.ret = now_ns(f);
    pthread_mutex_unlock(&f->mu);
    record(f, &op);
}

typedef struct client {
    fake_t *f;
    int id;
    unsigned seed;
} client_t;

static void *client_main(void *arg)
{
    client_t *c = arg;
    fake_t *f = c->f;
    const fake_cfg_t *cfg = f->cfg;
    for (int i = 0; i < cfg->ops; i++) {
        lc_op_t op = {.client = c->id};
        int dice = rand_r(&c->seed) % 100;
        pthread_mutex_lock(&f->hmu);
        int nseen = f->nseen;
        if (nseen > 0) {
            int back = rand_r(&c->seed) % (nseen < 3 ? nseen : 3);
            snprintf(op.run, sizeof(op.run), "%s", f->seen[(nseen - 1 - back) % MAX_SEEN]);
        }
        pthread_mutex_unlock(&f->hmu);
        if (dice < 25 || nseen == 0)
            op.kind = LC_START;
        else if (dice < 40)
            op.kind = LC_GET;
        else if (dice < 60)
            op.kind = LC_PAUSE;
        else if (dice < 80)
            op.kind = LC_RESUME;
        else if (dice < 95)
            op.kind = LC_STOP;
        else {
            op.kind = rand_r(&c->seed) % 2 ? LC_PAUSE : LC_GET;
            snprintf(op.run, sizeof(op.run), "x%06d", rand_r(&c->seed) % 1000000);
        }
        pthread_mutex_lock(&f->mu);
        uint64_t epoch = f->epoch;
        pthread_mutex_unlock(&f->mu);
        op.call = now_ns(f);
        switch (op.kind) {
        case LC_START:
            op.run[0] = '\0';
            do_start(f, epoch, &op, rand_r(&c->seed) % cfg->jobs);
            break;
        case LC_GET:
            do_get(f, epoch, &op);
            break;
        case LC_PAUSE:
            do_pause(f, epoch, &op);
            break;
        case LC_RESUME:
            do_resume(f, epoch, &op);
            break;
        default:
            do_stop(f, epoch, &op, &c->seed);
            break;
        }
        op.ret = now_ns(f);
        if (op.result == LC_UNKNOWN) {
            /* The command's process was killed: whatever it did came
             * before the crash. */
            pthread_mutex_lock(&f->mu);
            op.ret = f->crash_call;
            pthread_mutex_unlock(&f->mu);
            if (op.ret < op.call)
                op.ret = op.call;
        }
        record(f, &op);
        if (rand_r(&c->seed) % 4 == 0)
            usleep((useconds_t)(rand_r(&c->seed) % 100));
    }
    __atomic_fetch_add(&f->done_clients, 1, __ATOMIC_RELEASE);
    return NULL;
}

int fake_run(const fake_cfg_t *cfg, lc_history_t *h)
{
    fake_t f = {.cfg = cfg, .h = h};
    f.t0 = 0;
    f.t0 = now_ns(&f);
    f.runs = calloc(MAX_RUNS, sizeof(frun_t));
    if (f.runs == NULL)
        return LC_ENOMEM;
    pthread_mutex_init(&f.mu, NULL);
    pthread_mutex_init(&f.hmu, NULL);
    int n = cfg->clients > 0 ? cfg->clients : 8;
    pthread_t th[64];
    client_t cl[64];
    if (n > 64)
        n = 64;
    for (int i = 0; i < n; i++) {
        cl[i] = (client_t){.f = &f, .id = i, .seed = cfg->seed * 7919u + (unsigned)i};
        pthread_create(&th[i], NULL, client_main, &cl[i]);
    }
    if (cfg->crash) {
        unsigned s = cfg->seed;
        /* somewhere in the first two thirds of the history */
        usleep((useconds_t)(rand_r(&s) % (cfg->ops * 40 + 1)));
        if (__atomic_load_n(&f.done_clients, __ATOMIC_ACQUIRE) < n)
            crash(&f);
    }
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&f.mu);
    pthread_mutex_destroy(&f.hmu);
    free(f.runs);
    return f.rc;
}
