/*
 * lock.h: the state directory's instance lock.
 *
 * An open file description lock (F_OFD_SETLK) on <state_dir>/baton.lock,
 * held for the life of the process. The kernel drops it when the process
 * dies, however it dies, so a lock left by a killed instance never blocks a
 * restart; the file itself stays and is simply locked again. The holder
 * writes its PID into the file, for diagnostics only: a second instance
 * reads it to say who holds the lock.
 */
#ifndef BATON_APP_SERVICE_LOCK_H
#define BATON_APP_SERVICE_LOCK_H

#include <stddef.h>
#include <sys/types.h>

typedef struct bt_state_lock {
    int fd;
    char path[4096];
} bt_state_lock_t;

/* Creates state_dir (mode 0700) if missing, then takes the lock. Returns 0;
 * or -1 with a sentence in err: "state directory /x is locked by another
 * baton (pid 1234)" when an instance holds it (*holder = its PID, or 0 if
 * unknown), or why the directory or file could not be used. */
int bt_state_lock_take(bt_state_lock_t *lock /* OUT */, const char *state_dir,
                       pid_t *holder /* OUT, may be NULL */, char *err, size_t errlen);

/* Releases the lock and closes the file (the file stays). Safe on a lock
 * that was never taken (fd -1). */
void bt_state_lock_release(bt_state_lock_t *lock);

#endif
