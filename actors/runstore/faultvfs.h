/*
 * faultvfs.h: a test seam for the run store's file I/O: a SQLite VFS named
 * "faultvfs" that wraps the default VFS and can fail writes or syncs, or
 * hold syncs until released.
 *
 * Use it by setting rs_config_t.vfs = "faultvfs" after faultvfs_register().
 * The controls are process-wide and safe to call from any thread while the
 * store runs (atomics, plus a mutex for the stall).
 */
#ifndef BATON_RUNSTORE_FAULTVFS_H
#define BATON_RUNSTORE_FAULTVFS_H

#include <stdbool.h>
#include <stdint.h>

typedef enum fv_op {
    FV_WRITE, /* xWrite and xTruncate */
    FV_SYNC,  /* xSync */
    FV_OP_COUNT
} fv_op_t;

/* Registers the VFS (not as the default). Idempotent; returns a SQLite
 * result code (0 on success). */
int faultvfs_register(void);

/* After `after` more successful operations of kind op, fails the next
 * `times` of them (-1: all) with the SQLite code `code` (e.g. SQLITE_FULL,
 * SQLITE_IOERR_WRITE, SQLITE_IOERR_FSYNC). Replaces any earlier setting
 * for op. */
void faultvfs_inject(fv_op_t op, int after, int times, int code);

/* Stops every injection and releases stalled syncs. */
void faultvfs_clear(void);

/* Operations of kind op seen (failed ones included) since registration. */
uint64_t faultvfs_count(fv_op_t op);

/* Failures injected so far. */
uint64_t faultvfs_injected(void);

/* While on, every sync waits until it is turned off; faultvfs_stalled()
 * says how many are waiting now. */
void faultvfs_stall_syncs(bool on);
uint32_t faultvfs_stalled(void);

#endif
