/*
 * ids.h: run ids, UUIDv7 (RFC 9562) in their 36-character text form.
 *
 * 48 bits of Unix time in milliseconds, a 12-bit counter that orders ids made
 * in the same millisecond by one process, and 62 random bits from
 * getrandom(2). Ids from one process sort strictly by creation order; ids
 * from different processes sort by millisecond and are unique with
 * overwhelming probability (62 random bits per id, plus a random counter
 * start).
 */
#ifndef BATON_RUNSTORE_IDS_H
#define BATON_RUNSTORE_IDS_H

#include <stdint.h>

#define RS_ID_LEN 36 /* text form, without the terminating NUL */

/* Writes a new id, NUL-terminated, into out. Returns 0, or BT_ESYS if the
 * kernel gave no random bytes. Safe to call from any thread. */
int rs_id_new(char out[RS_ID_LEN + 1] /* OUT */);

/* The Unix time in milliseconds encoded in an id; -1 if id is not a UUIDv7
 * in text form. */
int64_t rs_id_time_ms(const char *id);

#endif
