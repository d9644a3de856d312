/* test_runstore_crash.c: acknowledged transitions survive a SIGKILL at a
 * random point. A child process runs the store and several requesters and
 * reports every acknowledgement through a pipe; the parent kills it, reopens
 * the store, checks integrity and finds every acknowledged change.
 * RUNSTORE_CRASH_ROUNDS sets the number of rounds (the `long` CTest variant
 * runs many). */
#define _GNU_SOURCE
#include "runstore.h"

#include <baton/baton.h>
#include <criterion/criterion.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS     (1000000ull)
#define SEC_NS (1000000000ull)

/* STEPS_PER_RUN is odd, so the last step leaves the run running. */
enum { THREADS = 6, STEPS_PER_RUN = 11, MAX_RUNS = 100000 };

/* One acknowledgement: run id reached step `step` (0: created pending;
 * odd: running; even: paused; STEPS_PER_RUN + 1: completed). */
typedef struct {
    char id[RS_ID_LEN + 1];
    uint32_t step;
} ack_t;

static char dir[256];
static char db_path[400];

typedef struct {
    bt_runtime_t *rt;
    bt_ref_t store;
    int fd;
} child_ctx;

static rs_reply_t *child_ask(child_ctx *c, bt_msg_t *req)
{
    bt_msg_t *reply = NULL;
    if (req == NULL || bt_ask_wait(c->rt, c->store, req, 30 * SEC_NS, &reply) != BT_OK)
        _exit(2);
    return (rs_reply_t *)reply;
}

static void child_ack(child_ctx *c, const char *id, uint32_t step)
{
    ack_t a = {.step = step};
    memcpy(a.id, id, RS_ID_LEN + 1);
    /* One write of less than PIPE_BUF bytes: atomic among the threads. */
    if (write(c->fd, &a, sizeof(a)) != (ssize_t)sizeof(a))
        _exit(3);
}

static void *child_requester(void *arg)
{
    child_ctx *c = arg;
    for (;;) {
        rs_reply_t *r = child_ask(c, rs_req_create("crash", "{}", RS_PENDING));
        if (r->status != RS_OK)
            _exit(4);
        char id[RS_ID_LEN + 1];
        memcpy(id, r->run_id, sizeof(id));
        bt_msg_free(&r->hdr);
        child_ack(c, id, 0);
        rs_state_t cur = RS_PENDING;
        for (uint32_t step = 1; step <= STEPS_PER_RUN + 1; step++) {
            rs_state_t to = step > STEPS_PER_RUN ? RS_COMPLETED : step % 2 ? RS_RUNNING : RS_PAUSED;
            r = child_ask(c, rs_req_progress(id, step, STEPS_PER_RUN, &step, sizeof(step)));
            bt_msg_free(&r->hdr);
            r = child_ask(c, rs_req_transition(id, cur, to, "crash test", NULL));
            if (r->status != RS_OK)
                _exit(5);
            bt_msg_free(&r->hdr);
            cur = to;
            child_ack(c, id, step);
        }
    }
    return NULL;
}

static void child_main(int fd)
{
    child_ctx c = {.fd = fd};
    if (bt_runtime_create(&(bt_runtime_config_t){.threads = 2}, &c.rt) != BT_OK ||
        bt_runtime_start(c.rt) != BT_OK)
        _exit(6);
    if (rs_spawn(c.rt, &(rs_config_t){.path = db_path}, &c.store) != BT_OK)
        _exit(7);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, child_requester, &c);
    for (;;)
        pause(); /* until SIGKILL */
}

static uint32_t random_below(uint32_t n)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (uint32_t)time(NULL);
    return r % n;
}

/* acks by run: a small open-addressing table would do; a sorted array is
 * simpler for a test. */
static ack_t acks[MAX_RUNS];
static size_t nacks;

static int cmp_ack(const void *a, const void *b)
{
    const ack_t *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c != 0 ? c : (x->step > y->step) - (x->step < y->step);
}

static void one_round(int round)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        child_main(fds[1]);
    }
    close(fds[1]);
    /* Let it work for a random while after its first acknowledgement. */
    size_t got = 0;
    nacks = 0;
    ack_t a;
    cr_assert_eq(read(fds[0], &a, sizeof(a)), (ssize_t)sizeof(a), "the child acknowledges");
    acks[nacks++] = a;
    usleep((useconds_t)(5000 + random_below(150000)));
    kill(pid, SIGKILL);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the child died by SIGKILL");
    /* Every acknowledgement it wrote is in the pipe. */
    for (;;) {
        ssize_t k = read(fds[0], (char *)&a + got, sizeof(a) - got);
        if (k <= 0)
            break;
        got += (size_t)k;
        if (got == sizeof(a)) {
            cr_assert_lt(nacks, MAX_RUNS);
            acks[nacks++] = a;
            got = 0;
        }
    }
    close(fds[0]);
    cr_assert_eq(got, 0, "acks are whole");

    /* Reopen: integrity, then every acknowledged step is there. */
    bt_runtime_t *rt;
    cr_assert_eq(bt_runtime_create(&(bt_runtime_config_t){.threads = 2}, &rt), BT_OK);
    cr_assert_eq(bt_runtime_start(rt), BT_OK);
    bt_ref_t s;
    cr_assert_eq(rs_spawn(rt, &(rs_config_t){.path = db_path}, &s), BT_OK);
    bt_msg_t *m = NULL;
    cr_assert_eq(bt_ask_wait(rt, s, rs_req_recovery(), 30 * SEC_NS, &m), BT_OK);
    rs_reply_t *r = (rs_reply_t *)m;
    cr_assert_eq(r->status, RS_OK, "round %d: %s", round, r->message);
    cr_assert(r->integrity_ok);
    bt_msg_free(m);

    qsort(acks, nacks, sizeof(ack_t), cmp_ack);
    size_t checked = 0;
    for (size_t i = 0; i < nacks; i++) {
        if (i + 1 < nacks && strcmp(acks[i].id, acks[i + 1].id) == 0)
            continue; /* only the last acknowledged step of each run */
        cr_assert_eq(bt_ask_wait(rt, s, rs_req_events(acks[i].id), 30 * SEC_NS, &m), BT_OK);
        r = (rs_reply_t *)m;
        cr_assert_eq(r->status, RS_OK, "acknowledged run %s: %s", acks[i].id, r->message);
        /* The creation plus one event per transition; possibly one more,
         * committed but killed before its acknowledgement. */
        uint32_t want = acks[i].step + 1;
        cr_assert_geq(r->nevents, want, "run %s: %u events for acknowledged step %u", acks[i].id,
                      r->nevents, acks[i].step);
        cr_assert_leq(r->nevents, want + 1);
        rs_event_t ev, prev = {0};
        for (uint32_t e = 0; e < r->nevents; e++) {
            rs_reply_event(r, e, &ev);
            cr_assert_eq(ev.from, e == 0 ? RS_NONE : prev.to, "a whole chain");
            prev = ev;
        }
        bt_msg_free(m);
        checked++;
    }
    cr_assert_gt(checked, 0);
    cr_log_info("round %d: %zu acknowledgements over %zu runs, all found", round, nacks, checked);
    cr_assert_eq(bt_runtime_shutdown(rt, 10 * SEC_NS), BT_OK);
}

Test(runstore_crash, acknowledged_transitions_survive_sigkill_at_random_points)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/runstore-crash-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db_path, sizeof(db_path), "%s/runs.db", dir);
    const char *env = getenv("RUNSTORE_CRASH_ROUNDS");
    int rounds = env != NULL ? atoi(env) : 5;
    for (int i = 0; i < rounds; i++)
        one_round(i);
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[420];
        snprintf(p, sizeof(p), "%s%s", db_path, suffixes[i]);
        unlink(p);
    }
    rmdir(dir);
}
