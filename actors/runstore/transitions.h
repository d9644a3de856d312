/*
 * transitions.h: the run state machine of ../shared/DESIGN.md, as data.
 *
 * The run store enforces this table before any write reaches the backend
 * (the executor checks it first; this is defence in depth).
 */
#ifndef BATON_RUNSTORE_TRANSITIONS_H
#define BATON_RUNSTORE_TRANSITIONS_H

#include <stdbool.h>

/* Run states. RS_STATE_NONE stands for "(new)": a run that does not exist
 * yet, as the source of a creation. */
#define RS_STATE_MAP(X)                                                                            \
    X(NONE, "new")                                                                                 \
    X(PENDING, "pending")                                                                          \
    X(RUNNING, "running")                                                                          \
    X(PAUSED, "paused")                                                                            \
    X(COMPLETED, "completed")                                                                      \
    X(FAILED, "failed")                                                                            \
    X(STOPPED, "stopped")

typedef enum rs_state {
#define RS_STATE_ENUM_(name, text) RS_##name,
    RS_STATE_MAP(RS_STATE_ENUM_)
#undef RS_STATE_ENUM_
        RS_STATE_COUNT
} rs_state_t;

/* A bit per state, for state masks in queries. */
#define RS_MASK(state) (1u << (unsigned)(state))
#define RS_MASK_ACTIVE (RS_MASK(RS_PENDING) | RS_MASK(RS_RUNNING) | RS_MASK(RS_PAUSED))

/* The state's name ("pending", ...); "invalid" for values out of range. */
const char *rs_state_name(rs_state_t state);

/* Parses a state name; RS_STATE_COUNT if unknown. "new" is RS_NONE. */
rs_state_t rs_state_parse(const char *name);

/* Whether the table allows from -> to (from RS_NONE: a creation). Values out
 * of range are never allowed. */
bool rs_transition_allowed(rs_state_t from, rs_state_t to);

/* Whether the state is terminal (completed, failed, stopped). */
bool rs_state_terminal(rs_state_t state);

#endif
