/*
 * fake_exec.h: a small in-process stand-in for the executor, with the
 * run state machine and policy of ../shared/DESIGN.md, driven by client
 * threads that record a history for the linearizability checker. It can
 * carry one of three mutants (the races the real executor rules out by
 * construction) so the tests can show the checker catches them, and can
 * simulate a crash and restart in the middle of a history.
 */
#ifndef BATON_TESTS_RELIABILITY_FAKE_EXEC_H
#define BATON_TESTS_RELIABILITY_FAKE_EXEC_H

#include "lincheck.h"

typedef enum fake_mutant {
    FAKE_CORRECT,
    FAKE_DOUBLE_START,  /* start: check max_active, unlock, sleep, create */
    FAKE_DOUBLE_RESUME, /* resume: check "paused", unlock, sleep, set running */
    FAKE_PAUSE_MISSING, /* pause of an unknown id: "paused" instead of not_found */
    FAKE_MUTANT_COUNT
} fake_mutant_t;

const char *fake_mutant_name(fake_mutant_t m);

typedef struct fake_cfg {
    fake_mutant_t mutant;
    int clients;     /* threads */
    int ops;         /* operations per thread */
    int jobs;        /* jobs "j0".. */
    int max_running; /* executor.max_running (max_active is 1) */
    bool crash;      /* one crash and restart at a random moment */
    unsigned seed;
} fake_cfg_t;

/* Runs the clients against a fresh fake and appends what they saw to h
 * (does not take ownership of h). Returns 0 or LC_ENOMEM. */
int fake_run(const fake_cfg_t *cfg, lc_history_t *h);

#endif
