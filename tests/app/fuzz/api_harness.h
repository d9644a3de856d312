/*
 * api_harness.h: what the API fuzz targets (fuzz_api_body.c,
 * fuzz_api_route.c) share: a live bt_api_t over a deterministic runtime,
 * a real run store in a temporary directory (sync off) and an executor
 * with two in-harness job kinds that run no process ("instant" reports
 * done as soon as it runs; "idle" runs until stopped and confirms a pause
 * at once), and the invariants every answer must keep.
 *
 * The service is set up on first use and torn down at exit (so LSan sees
 * everything freed); every FZ_RESET_EVERY inputs it is rebuilt on a fresh
 * database, so the store stays small and fast. Runs started by one input
 * are stopped before the next, so each input starts with no active run.
 *
 * Jobs: "quick" (instant, max_active 1, params {"n":1}), "idle" (idle,
 * max_active 2), "other" (idle, max_active 1, stop_grace 50 ms, nested
 * params); executor.max_running 2, max_pending 1. The kinds refuse params
 * with a "reject" key, or an "n" that is not a number.
 *
 * Not thread-safe: libFuzzer and the replay driver call one input at a time.
 */
#ifndef BATON_TESTS_APP_FUZZ_API_HARNESS_H
#define BATON_TESTS_APP_FUZZ_API_HARNESS_H

#include "server/http.h"
#include "service/api.h"

#include <stddef.h>

#define FZ_RESET_EVERY 256
#define FZ_MAX_RUNS    8

/* Called at the start of each input: sets the service up (first call),
 * rebuilds it every FZ_RESET_EVERY inputs, stops the runs the previous
 * input started and sets the phase back to ready. Aborts if the service
 * cannot be built (the harness is broken, not the input). */
void fz_begin_input(void);

/* The live API. */
bt_api_t *fz_api(void);

/* Sends one request through bt_api_handle, checks the answer's invariants
 * (aborting with a message on a violation) and records the id of a run it
 * created. Does not take ownership of its arguments; copies the body.
 * *resp is filled and must be released with bt_http_resp_deinit(). */
void fz_request(const char *method, const char *path, const char *const *query,
                const char *const *headers, const char *body, size_t body_len,
                bt_http_resp_t *resp /* OUT */);

/* Ids of the runs created (201) by this input, oldest first. */
int fz_run_count(void);
const char *fz_run_id(int i);

/* Prints why and aborts: libFuzzer reports the input as a crash. */
void fz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
