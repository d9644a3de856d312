/*
 * transitions.c: the run state machine table (../shared/DESIGN.md, "Run
 * state machine"), one row per source state. Every pair not listed is an
 * invalid transition; terminal states have no way out.
 */
#include "transitions.h"

#include <string.h>

static const char *const state_names[RS_STATE_COUNT] = {
#define RS_STATE_NAME_(name, text) [RS_##name] = text,
    RS_STATE_MAP(RS_STATE_NAME_)
#undef RS_STATE_NAME_
};

/* allowed[from] is the mask of states `from` may move to. */
static const unsigned allowed[RS_STATE_COUNT] = {
    /* (new): start */
    [RS_NONE] = RS_MASK(RS_PENDING) | RS_MASK(RS_RUNNING),
    /* pending: slot, pause, stop */
    [RS_PENDING] = RS_MASK(RS_RUNNING) | RS_MASK(RS_PAUSED) | RS_MASK(RS_STOPPED),
    /* running: pause, done, error, stop */
    [RS_RUNNING] =
        RS_MASK(RS_PAUSED) | RS_MASK(RS_COMPLETED) | RS_MASK(RS_FAILED) | RS_MASK(RS_STOPPED),
    /* paused: resume* (no free slot), resume, stop */
    [RS_PAUSED] = RS_MASK(RS_PENDING) | RS_MASK(RS_RUNNING) | RS_MASK(RS_STOPPED),
};

const char *rs_state_name(rs_state_t state)
{
    return (unsigned)state < RS_STATE_COUNT ? state_names[state] : "invalid";
}

rs_state_t rs_state_parse(const char *name)
{
    for (int s = 0; s < RS_STATE_COUNT; s++)
        if (strcmp(name, state_names[s]) == 0)
            return (rs_state_t)s;
    return RS_STATE_COUNT;
}

bool rs_transition_allowed(rs_state_t from, rs_state_t to)
{
    if ((unsigned)from >= RS_STATE_COUNT || (unsigned)to >= RS_STATE_COUNT)
        return false;
    return (allowed[from] & RS_MASK(to)) != 0;
}

bool rs_state_terminal(rs_state_t state)
{
    return state == RS_COMPLETED || state == RS_FAILED || state == RS_STOPPED;
}
