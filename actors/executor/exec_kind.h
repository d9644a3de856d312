/*
 * exec_kind.h: the built-in `exec` job kind: runs an argv (no shell) in its
 * own process group with a clean environment, pauses it with SIGSTOP,
 * resumes it with SIGCONT, stops it with SIGTERM then SIGKILL after the
 * job's stop grace, logs stdout/stderr to capped per-run files, retries
 * failures with backoff, and enforces a run timeout from the timeout
 * registry. See docs/executor.md for its params.
 */
#ifndef BATON_EXEC_KIND_H
#define BATON_EXEC_KIND_H

#include "jobkind.h"

#include <stddef.h>
#include <stdint.h>

/* The descriptor to list in ex_config_t.kinds. Its actor is pinned. */
const ex_kind_t *ex_exec_kind(void);

/* Parsed params of an exec run. */
typedef struct ex_exec_params {
    char **argv; /* NULL-terminated; argv[0] is an absolute path */
    uint32_t argc;
    char **env; /* NULL-terminated "NAME=value" list */
    uint32_t nenv;
    uint32_t max_attempts; /* >= 1 */
    uint64_t backoff_base_ns, backoff_cap_ns;
    char timeout_class[32]; /* "" = no run timeout */
    uint64_t log_cap_bytes; /* per log file */
} ex_exec_params_t;

/* Parses params (JSON text; does not take ownership). Returns 0, or -1 with
 * a sentence in err; on error *out holds nothing to free. */
int ex_exec_params_parse(const char *json, ex_exec_params_t *out /* OUT */, char *err,
                         size_t errlen);
/* Frees what a successful parse allocated. NULL is a no-op. */
void ex_exec_params_deinit(ex_exec_params_t *p);

#endif
