/*
 * lock.c: the state directory's instance lock. See lock.h.
 */
#define _GNU_SOURCE
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int mkdir_p(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
        snprintf(err, errlen, "state directory path is too long");
        return -1;
    }
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create state directory %s: %s", path, strerror(errno));
            return -1;
        }
        *p = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "state directory %s is not a directory", dir);
        return -1;
    }
    return 0;
}

/* The PID the holder wrote, or 0. */
static pid_t read_holder(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    return (end != buf && pid > 0 && pid < (long)1 << 30) ? (pid_t)pid : 0;
}

int bt_state_lock_take(bt_state_lock_t *lock, const char *state_dir, pid_t *holder, char *err,
                       size_t errlen)
{
    lock->fd = -1;
    if (holder != NULL)
        *holder = 0;
    if (mkdir_p(state_dir, err, errlen) != 0)
        return -1;
    if (snprintf(lock->path, sizeof(lock->path), "%s/baton.lock", state_dir) >=
        (int)sizeof(lock->path)) {
        snprintf(err, errlen, "state directory path is too long");
        return -1;
    }
    int fd = open(lock->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open lock file %s: %s", lock->path, strerror(errno));
        return -1;
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
        int e = errno;
        if (e == EAGAIN || e == EACCES) {
            pid_t pid = read_holder(fd);
            if (holder != NULL)
                *holder = pid;
            if (pid > 0)
                snprintf(err, errlen, "state directory %s is locked by another baton (pid %ld)",
                         state_dir, (long)pid);
            else
                snprintf(err, errlen, "state directory %s is locked by another baton", state_dir);
        } else {
            snprintf(err, errlen, "cannot lock %s: %s", lock->path, strerror(e));
        }
        close(fd);
        return -1;
    }
    /* Ours: replace whatever PID a previous holder left. */
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        snprintf(err, errlen, "cannot write lock file %s: %s", lock->path, strerror(errno));
        close(fd);
        return -1;
    }
    lock->fd = fd;
    return 0;
}

void bt_state_lock_release(bt_state_lock_t *lock)
{
    if (lock->fd < 0)
        return;
    /* Clear the PID first so a reader never names a process that is gone;
     * closing the last descriptor releases the OFD lock. */
    if (ftruncate(lock->fd, 0) != 0) {
        /* Nothing to do: the lock is released by the close regardless. */
    }
    close(lock->fd);
    lock->fd = -1;
}
