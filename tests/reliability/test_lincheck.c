/*
 * test_lincheck.c: the linearizability checker on hand-made histories
 * (linearizable and not), on histories of a correct in-process fake of the
 * executor (with and without a crash), and on the three required mutants:
 * a check-then-act double start, a double resume and a pause of a missing
 * run, each of which it must flag.
 */
#define _GNU_SOURCE
#include "fake_exec.h"
#include "lincheck.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#define MS 1000000LL

static lc_history_t *h;

static void setup(void)
{
    h = lc_history_create();
    cr_assert_not_null(h);
}

static void teardown(void)
{
    lc_history_destroy(h);
}

/* Appends one operation: times in ms (ret < 0: unknown outcome, ret inf). */
static void op(int client, lc_kind_t kind, const char *job_or_run, lc_result_t res, lc_state_t st,
               int64_t call_ms, int64_t ret_ms)
{
    lc_op_t o = {.kind = kind, .client = client, .result = res, .state = st};
    o.call = call_ms * MS;
    o.ret = ret_ms < 0 ? LC_INF : ret_ms * MS;
    if (kind == LC_START)
        snprintf(o.job, sizeof(o.job), "%s", job_or_run);
    else
        snprintf(o.run, sizeof(o.run), "%s", job_or_run);
    cr_assert_eq(lc_history_add(h, &o), 0);
}

/* A start of job `job` that returned run `run`. */
static void start_ok(int client, const char *job, const char *run, lc_state_t st, int64_t call,
                     int64_t ret)
{
    op(client, LC_START, job, LC_OK, st, call, ret);
    lc_op_t *o = (lc_op_t *)lc_history_op(h, lc_history_len(h) - 1);
    snprintf(o->run, sizeof(o->run), "%s", run);
}

static lc_verdict_t check_with(const lc_model_cfg_t *cfg)
{
    lc_report_t rep;
    int rc = lc_check(h, cfg, NULL, &rep);
    cr_assert_eq(rc, 0, "lc_check: %s (%s)", lc_strerror(rc), rep.why);
    if (rep.verdict != LC_LINEARIZABLE)
        cr_log_info("%s: %s", lc_verdict_name(rep.verdict), rep.why);
    return rep.verdict;
}

static lc_verdict_t check(void)
{
    return check_with(NULL);
}

TestSuite(lincheck, .init = setup, .fini = teardown, .timeout = 120);

Test(lincheck, empty_history_is_linearizable)
{
    cr_assert_eq(check(), LC_LINEARIZABLE);
}

Test(lincheck, sequential_life_of_a_run_is_linearizable)
{
    start_ok(0, "a", "r1", LC_S_RUNNING, 0, 1);
    op(0, LC_GET, "r1", LC_OK, LC_S_RUNNING, 2, 3);
    op(0, LC_PAUSE, "r1", LC_OK, LC_S_PAUSED, 4, 5);
    op(0, LC_PAUSE, "r1", LC_INVALID, LC_S_PAUSED, 6, 7);
    op(0, LC_RESUME, "r1", LC_OK, LC_S_RUNNING, 8, 9);
    op(0, LC_RESUME, "r1", LC_INVALID, LC_S_RUNNING, 10, 11);
    op(0, LC_START, "a", LC_CONFLICT, LC_S_NONE, 12, 13);
    op(0, LC_STOP, "r1", LC_OK, LC_S_STOPPED, 14, 15);
    op(0, LC_STOP, "r1", LC_INVALID, LC_S_STOPPED, 16, 17);
    op(0, LC_GET, "r1", LC_OK, LC_S_STOPPED, 18, 19);
    start_ok(0, "a", "r2", LC_S_RUNNING, 20, 21);
    op(0, LC_GET, "r9", LC_NOT_FOUND, LC_S_NONE, 22, 23);
    op(0, LC_PAUSE, "r9", LC_NOT_FOUND, LC_S_NONE, 24, 25);
    cr_assert_eq(check(), LC_LINEARIZABLE);
}

Test(lincheck, wrong_sequential_answers_are_flagged)
{
    start_ok(0, "a", "r1", LC_S_RUNNING, 0, 1);
    op(0, LC_RESUME, "r1", LC_OK, LC_S_RUNNING, 2, 3); /* a resume of a running run */
    cr_assert_eq(check(), LC_NOT_LINEARIZABLE);
}

Test(lincheck, refusal_must_name_the_current_state)
{
    start_ok(0, "a", "r1", LC_S_RUNNING, 0, 1);
    op(0, LC_PAUSE, "r1", LC_OK, LC_S_PAUSED, 2, 3);
    op(0, LC_PAUSE, "r1", LC_INVALID, LC_S_RUNNING, 4, 5);
    cr_assert_eq(check(), LC_NOT_LINEARIZABLE);
}

Test(lincheck, two_overlapping_starts_both_ok_are_flagged)
{
    start_ok(0, "a", "r1", LC_S_RUNNING, 0, 10);
    start_ok(1, "a", "r2", LC_S_RUNNING, 1, 9);
    cr_assert_eq(check(), LC_NOT_LINEARIZABLE);
}

Test(lincheck, overlapping_start_and_conflict_are_linearizable)
{
    op(1, LC_START, "a", LC_CONFLICT, LC_S_NONE, 0, 9); /* linearized after r1's start */
    start_ok(0, "a", "r1", LC_S_RUNNING, 1, 10);
    start_ok(2, "b", "r2", LC_S_RUNNING, 2, 3); /* another job: no conflict */
    cr_assert_eq(check(), LC_LINEARIZABLE);
}

Test(lincheck, a_conflict_with_no_active_run_is_flagged)
{
    start_ok(0, "a", "r1", LC_S_RUNNING, 0, 1);
    op(0, LC_STOP, "r1", LC_OK, LC_S_STOPPED, 2, 3);
    op(1, LC_START, "a", LC_CONFLICT, LC_S_NONE, 4, 5);
    cr_assert_eq(check(), LC_NOT_LINEARIZABLE);
}

Test(lincheck, a_run_id_is_bound_by_its_start)
{
    /* A get of r1 cannot see it before its start was even called. */
    op(1, LC_GET, "r1", LC_OK, LC_S_RUNNING, 0, 1);
    start_ok(0, "a", "r1", LC_S_RUNNING, 2, 3);
    cr_assert_eq(check(), LC_NOT_LINEARIZABLE);
}

Test(lincheck, the_same_id_from_two_starts_is_flagged)
{
    start_ok(0, "a", "r1", LC_S_RUNNING, 0, 1);
    start_ok(0, "b", "r1", LC_S_RUNNING, 2, 3);
    cr_assert_eq(check(), LC_NOT_LINEARIZABLE);
}

Test(lincheck, a_pause_of_a_missing_run_must_be_not_found)
{
    start_ok(0, "a", "r1", LC_S_RUNNING, 0, 1);
    op(0, LC_PAUSE, "nope", LC_OK, LC_S_PAUSED, 2, 3);
    cr_assert_eq(check(), LC_NOT_LINEARIZABLE);
}

Test(lincheck, a_stale_read_after_a_returned_stop_is_flagged)
{
    start_ok(0, "a", "r1", LC_S_RUNNING, 0, 1);
    op(0, LC_STOP, "r1", LC_OK, LC_S_STOPPED, 2, 3);
    op(1, LC_GET, "r1", LC_OK, LC_S_RUNNING, 4, 5);
    cr_assert_eq(check(), LC_NOT_LINEARIZABLE);
}

Test(lincheck, the_stopping_phase_is_modelled)
{
    /* During a stop: refusals name "stopping", gets still show the stored
     * state, and a stop in progress blocks a second one. */
    start_ok(0, "a", "r1", LC_S_RUNNING, 0, 1);
    op(0, LC_STOP, "r1", LC_OK, LC_S_STOPPED, 2, 20);
    op(1, LC_PAUSE, "r1", LC_INVALID, LC_S_STOPPING, 3, 4);
    op(1, LC_GET, "r1", LC_OK, LC_S_RUNNING, 5, 6);
    op(2, LC_STOP, "r1", LC_INVALID, LC_S_STOPPING, 7, 8);
    op(1, LC_GET, "r1", LC_OK, LC_S_STOPPED, 9, 19);
    op(1, LC_RESUME, "r1", LC_INVALID, LC_S_STOPPED, 21, 22);
    cr_assert_eq(check(), LC_LINEARIZABLE);
}

Test(lincheck, stopping_after_the_stop_returned_is_flagged)
{
    start_ok(0, "a", "r1", LC_S_RUNNING, 0, 1);
    op(0, LC_STOP, "r1", LC_OK, LC_S_STOPPED, 2, 3);
    op(1, LC_PAUSE, "r1", LC_INVALID, LC_S_STOPPING, 4, 5);
    cr_assert_eq(check(), LC_NOT_LINEARIZABLE);
}

Test(lincheck, a_reply_state_is_read_after_the_command)
{
    /* The pause answers "running": a concurrent resume came in between
     * the pause and the read of the reply. */
    start_ok(0, "a", "r1", LC_S_RUNNING, 0, 1);
    op(0, LC_PAUSE, "r1", LC_OK, LC_S_RUNNING, 2, 10);
    op(1, LC_RESUME, "r1", LC_OK, LC_S_RUNNING, 3, 9);
    cr_assert_eq(check(), LC_LINEARIZABLE);
}

Test(lincheck, a_reply_state_nobody_could_cause_is_flagged)
{
    start_ok(0, "a", "r1", LC_S_RUNNING, 0, 1);
    op(0, LC_PAUSE, "r1", LC_OK, LC_S_RUNNING, 2, 10);
    cr_assert_eq(check(), LC_NOT_LINEARIZABLE);
}

Test(lincheck, an_unknown_start_may_or_may_not_have_happened)
{
    op(0, LC_START, "a", LC_UNKNOWN, LC_S_NONE, 0, -1);
    op(1, LC_START, "a", LC_CONFLICT, LC_S_NONE, 5, 6); /* it happened */
    cr_assert_eq(check(), LC_LINEARIZABLE);
    lc_history_destroy(h);
    h = lc_history_create();
    op(0, LC_START, "a", LC_UNKNOWN, LC_S_NONE, 0, -1);
    start_ok(1, "a", "r1", LC_S_RUNNING, 5, 6); /* it did not (yet) */
    op(1, LC_START, "a", LC_CONFLICT, LC_S_NONE, 7, 8);
    cr_assert_eq(check(), LC_LINEARIZABLE);
}

Test(lincheck, an_unknown_pause_explains_a_paused_run)
{
    start_ok(0, "a", "r1", LC_S_RUNNING, 0, 1);
    op(0, LC_PAUSE, "r1", LC_UNKNOWN, LC_S_NONE, 2, -1);
    op(1, LC_GET, "r1", LC_OK, LC_S_PAUSED, 10, 11);
    op(1, LC_GET, "r1", LC_OK, LC_S_PAUSED, 12, 13);
    cr_assert_eq(check(), LC_LINEARIZABLE);
    /* but it cannot undo itself: paused, then running again, is flagged */
    op(1, LC_GET, "r1", LC_OK, LC_S_RUNNING, 14, 15);
    cr_assert_eq(check(), LC_NOT_LINEARIZABLE);
}

Test(lincheck, a_crash_fails_running_runs_and_keeps_paused_ones)
{
    start_ok(0, "a", "r1", LC_S_RUNNING, 0, 1);
    start_ok(0, "b", "r2", LC_S_RUNNING, 2, 3);
    op(0, LC_PAUSE, "r2", LC_OK, LC_S_PAUSED, 4, 5);
    op(-1, LC_CRASH, "", LC_OK, LC_S_NONE, 10, 20);
    op(0, LC_GET, "r1", LC_OK, LC_S_FAILED, 21, 22);
    op(0, LC_GET, "r2", LC_OK, LC_S_PAUSED, 23, 24);
    start_ok(0, "a", "r3", LC_S_RUNNING, 25, 26);
    op(0, LC_RESUME, "r2", LC_OK, LC_S_RUNNING, 27, 28);
    cr_assert_eq(check(), LC_LINEARIZABLE);
    op(0, LC_GET, "r1", LC_OK, LC_S_RUNNING, 29, 30);
    cr_assert_eq(check(), LC_NOT_LINEARIZABLE);
}

Test(lincheck, a_command_lost_in_a_crash_happened_before_it_or_not_at_all)
{
    start_ok(0, "a", "r1", LC_S_RUNNING, 0, 1);
    start_ok(0, "b", "r2", LC_S_RUNNING, 2, 3);
    /* in flight at the kill (ms 10): ret = the kill */
    op(1, LC_STOP, "r1", LC_UNKNOWN, LC_S_NONE, 5, 10);
    op(2, LC_PAUSE, "r2", LC_UNKNOWN, LC_S_NONE, 6, 10);
    op(-1, LC_CRASH, "", LC_OK, LC_S_NONE, 11, 20);
    op(0, LC_GET, "r1", LC_OK, LC_S_STOPPED, 21, 22); /* the stop was written */
    op(0, LC_GET, "r2", LC_OK, LC_S_FAILED, 23, 24);  /* the pause was not */
    cr_assert_eq(check(), LC_LINEARIZABLE);
    /* a lost pause cannot take effect after the restart */
    op(0, LC_GET, "r2", LC_OK, LC_S_PAUSED, 25, 26);
    cr_assert_eq(check(), LC_NOT_LINEARIZABLE);
}

Test(lincheck, a_stop_in_progress_at_a_crash_may_be_lost)
{
    start_ok(0, "a", "r1", LC_S_RUNNING, 0, 1);
    op(1, LC_STOP, "r1", LC_UNKNOWN, LC_S_NONE, 2, 10);
    op(2, LC_PAUSE, "r1", LC_INVALID, LC_S_STOPPING, 3, 4); /* it had begun */
    op(-1, LC_CRASH, "", LC_OK, LC_S_NONE, 11, 20);
    op(0, LC_GET, "r1", LC_OK, LC_S_FAILED, 21, 22); /* not written: interrupted */
    cr_assert_eq(check(), LC_LINEARIZABLE);
}

Test(lincheck, pending_runs_are_promoted_in_order)
{
    lc_model_cfg_t cfg = {.max_active = 1, .max_running = 1, .max_pending = 2};
    start_ok(0, "a", "r1", LC_S_RUNNING, 0, 1);
    start_ok(0, "b", "r2", LC_S_PENDING, 2, 3);
    start_ok(0, "c", "r3", LC_S_PENDING, 4, 5);
    op(0, LC_START, "d", LC_BUSY, LC_S_NONE, 6, 7);
    op(0, LC_PAUSE, "r1", LC_OK, LC_S_PAUSED, 8, 9);
    op(0, LC_GET, "r2", LC_OK, LC_S_RUNNING, 10, 11);
    op(0, LC_GET, "r3", LC_OK, LC_S_PENDING, 12, 13);
    op(0, LC_RESUME, "r1", LC_OK, LC_S_PENDING, 14, 15);
    op(0, LC_STOP, "r2", LC_OK, LC_S_STOPPED, 16, 17);
    op(0, LC_GET, "r3", LC_OK, LC_S_RUNNING, 18, 19);
    op(0, LC_GET, "r1", LC_OK, LC_S_PENDING, 20, 21);
    cr_assert_eq(check_with(&cfg), LC_LINEARIZABLE);
    op(0, LC_GET, "r3", LC_OK, LC_S_PENDING, 22, 23);
    cr_assert_eq(check_with(&cfg), LC_NOT_LINEARIZABLE);
}

Test(lincheck, malformed_histories_are_refused)
{
    op(0, LC_GET, "r1", LC_NOT_FOUND, LC_S_NONE, 5, 4);
    lc_report_t rep;
    cr_assert_eq(lc_check(h, NULL, NULL, &rep), LC_EINVAL);
    cr_assert(strstr(rep.why, "op #0") != NULL, "%s", rep.why);
    lc_history_destroy(h);
    h = lc_history_create();
    op(0, LC_START, "a", LC_OK, LC_S_RUNNING, 0, 1); /* ok without an id */
    cr_assert_eq(lc_check(h, NULL, NULL, &rep), LC_EINVAL);
}

Test(lincheck, a_bound_gives_undecided_not_a_hang)
{
    fake_cfg_t cfg = {.clients = 8, .ops = 60, .jobs = 2, .max_running = 4, .seed = 7};
    cr_assert_eq(fake_run(&cfg, h), 0);
    lc_limits_t lim = {.max_steps = 10};
    lc_report_t rep;
    cr_assert_eq(lc_check(h, NULL, &lim, &rep), 0);
    cr_assert_eq(rep.verdict, LC_UNDECIDED, "%s", lc_verdict_name(rep.verdict));
    cr_assert(strstr(rep.why, "step bound") != NULL, "%s", rep.why);
}

/* ------------------------------------------------ the fake executor */

/* Checks `n` fake histories; returns how many were not linearizable (and
 * fails on an undecided one). */
static int crashes, unknowns; /* seen by run_fakes */

static int run_fakes(fake_mutant_t mutant, int n, bool crash, int max_running, int stop_at_first)
{
    int bad = 0;
    lc_model_cfg_t mc = {.max_active = 1, .max_running = (uint32_t)max_running};
    for (int i = 0; i < n; i++) {
        lc_history_t *fh = lc_history_create();
        fake_cfg_t cfg = {.mutant = mutant,
                          .clients = 8,
                          .ops = 40,
                          .jobs = 2,
                          .max_running = max_running,
                          .crash = crash,
                          .seed = (unsigned)(1000 * mutant + i + 1)};
        cr_assert_eq(fake_run(&cfg, fh), 0);
        for (size_t k = 0; k < lc_history_len(fh); k++) {
            crashes += lc_history_op(fh, k)->kind == LC_CRASH;
            unknowns += lc_history_op(fh, k)->result == LC_UNKNOWN;
        }
        lc_report_t rep;
        cr_assert_eq(lc_check(fh, &mc, NULL, &rep), 0, "%s", rep.why);
        cr_assert_neq(rep.verdict, LC_UNDECIDED, "%s", rep.why);
        if (rep.verdict == LC_NOT_LINEARIZABLE) {
            bad++;
            if (mutant == FAKE_CORRECT) {
                lc_history_dump(fh, stderr);
                cr_log_error("correct fake flagged (seed %u): %s", cfg.seed, rep.why);
            } else if (bad == 1) {
                cr_log_info("%s caught in history %d (%zu ops, %.1f ms, %llu steps): %s",
                            fake_mutant_name(mutant), i + 1, lc_history_len(fh), rep.ms,
                            (unsigned long long)rep.steps, rep.why);
            }
        }
        lc_history_destroy(fh);
        if (stop_at_first && bad > 0)
            break;
    }
    return bad;
}

Test(lincheck, correct_fake_histories_are_linearizable)
{
    cr_assert_eq(run_fakes(FAKE_CORRECT, 40, false, 4, 0), 0);
    cr_assert_eq(run_fakes(FAKE_CORRECT, 40, false, 1, 0), 0, "with pending runs");
}

Test(lincheck, correct_fake_histories_with_a_crash_are_linearizable)
{
    cr_assert_eq(run_fakes(FAKE_CORRECT, 40, true, 4, 0), 0);
    cr_assert_eq(run_fakes(FAKE_CORRECT, 40, true, 1, 0), 0, "with pending runs");
    cr_log_info("80 histories: %d crashes, %d operations with an unknown outcome", crashes,
                unknowns);
    cr_assert_gt(crashes, 40, "most histories crash");
    cr_assert_gt(unknowns, 0, "some operations are lost in a crash");
}

Test(lincheck, mutants_are_caught)
{
    int caught = 0;
    for (int m = FAKE_DOUBLE_START; m < FAKE_MUTANT_COUNT; m++) {
        int bad = run_fakes((fake_mutant_t)m, 50, false, 4, 1);
        printf("mutant %-28s %s\n", fake_mutant_name((fake_mutant_t)m),
               bad > 0 ? "caught" : "NOT caught");
        caught += bad > 0;
    }
    printf("mutants caught %d/3\n", caught);
    fflush(stdout);
    cr_assert_eq(caught, 3, "mutants caught %d/3", caught);
}
