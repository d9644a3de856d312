/*
 * faultvfs.c: a SQLite VFS shim for tests. It forwards everything to the
 * default VFS; its files wrap the real ones and consult the injection
 * settings in xWrite, xTruncate and xSync. Used by the run store's tests to
 * simulate a full disk, I/O errors and slow fsyncs (cf. beanstalkd's
 * replaceable file allocator).
 */
#include "faultvfs.h"

#include <sqlite3.h>

#include <pthread.h>
#include <string.h>

typedef struct {
    int after; /* successful operations left before failing */
    int times; /* failures left; -1: forever; 0: off */
    int code;  /* SQLite code to return */
} fault_t;

static pthread_mutex_t fv_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fv_cond = PTHREAD_COND_INITIALIZER;
static fault_t faults[FV_OP_COUNT];  /* guarded by fv_mutex */
static bool stall_on;                /* guarded by fv_mutex */
static uint32_t stalled;             /* guarded by fv_mutex */
static uint64_t counts[FV_OP_COUNT]; /* atomic */
static uint64_t injected;            /* atomic */

static sqlite3_vfs fv_vfs;
static sqlite3_vfs *real_vfs;

typedef struct {
    sqlite3_file base; /* pMethods: ours */
    sqlite3_file *real;
} fv_file_t;

/* Whether this operation of kind op fails, and with which code. */
static int check(fv_op_t op)
{
    __atomic_fetch_add(&counts[op], 1, __ATOMIC_RELAXED);
    int code = SQLITE_OK;
    pthread_mutex_lock(&fv_mutex);
    fault_t *f = &faults[op];
    if (f->times != 0) {
        if (f->after > 0) {
            f->after--;
        } else {
            code = f->code;
            if (f->times > 0)
                f->times--;
        }
    }
    if (op == FV_SYNC && code == SQLITE_OK) {
        stalled++;
        while (stall_on)
            pthread_cond_wait(&fv_cond, &fv_mutex);
        stalled--;
    }
    pthread_mutex_unlock(&fv_mutex);
    if (code != SQLITE_OK)
        __atomic_fetch_add(&injected, 1, __ATOMIC_RELAXED);
    return code;
}

#define REAL(f) (((fv_file_t *)(f))->real)

static int fv_close(sqlite3_file *f)
{
    int rc = REAL(f)->pMethods != NULL ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;
    sqlite3_free(REAL(f));
    return rc;
}

static int fv_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
    return REAL(f)->pMethods->xRead(REAL(f), buf, amt, off);
}

static int fv_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
    int code = check(FV_WRITE);
    return code != SQLITE_OK ? code : REAL(f)->pMethods->xWrite(REAL(f), buf, amt, off);
}

static int fv_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    int code = check(FV_WRITE);
    return code != SQLITE_OK ? code : REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int fv_sync(sqlite3_file *f, int flags)
{
    int code = check(FV_SYNC);
    return code != SQLITE_OK ? code : REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int fv_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int fv_lock(sqlite3_file *f, int lock)
{
    return REAL(f)->pMethods->xLock(REAL(f), lock);
}

static int fv_unlock(sqlite3_file *f, int lock)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), lock);
}

static int fv_check_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int fv_file_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int fv_sector_size(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int fv_device_chars(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int fv_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

static int fv_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

static void fv_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int fv_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int fv_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
    return REAL(f)->pMethods->xFetch(REAL(f), off, amt, pp);
}

static int fv_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

/* Version 3 methods; files whose real methods are older get version-1
 * methods (set per file in fv_open). */
static const sqlite3_io_methods fv_methods3 = {
    .iVersion = 3,
    .xClose = fv_close,
    .xRead = fv_read,
    .xWrite = fv_write,
    .xTruncate = fv_truncate,
    .xSync = fv_sync,
    .xFileSize = fv_file_size,
    .xLock = fv_lock,
    .xUnlock = fv_unlock,
    .xCheckReservedLock = fv_check_reserved,
    .xFileControl = fv_file_control,
    .xSectorSize = fv_sector_size,
    .xDeviceCharacteristics = fv_device_chars,
    .xShmMap = fv_shm_map,
    .xShmLock = fv_shm_lock,
    .xShmBarrier = fv_shm_barrier,
    .xShmUnmap = fv_shm_unmap,
    .xFetch = fv_fetch,
    .xUnfetch = fv_unfetch,
};

static const sqlite3_io_methods fv_methods1 = {
    .iVersion = 1,
    .xClose = fv_close,
    .xRead = fv_read,
    .xWrite = fv_write,
    .xTruncate = fv_truncate,
    .xSync = fv_sync,
    .xFileSize = fv_file_size,
    .xLock = fv_lock,
    .xUnlock = fv_unlock,
    .xCheckReservedLock = fv_check_reserved,
    .xFileControl = fv_file_control,
    .xSectorSize = fv_sector_size,
    .xDeviceCharacteristics = fv_device_chars,
};

static int fv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    fv_file_t *ff = (fv_file_t *)f;
    ff->base.pMethods = NULL;
    ff->real = sqlite3_malloc(real_vfs->szOsFile);
    if (ff->real == NULL)
        return SQLITE_NOMEM;
    memset(ff->real, 0, (size_t)real_vfs->szOsFile);
    int rc = real_vfs->xOpen(real_vfs, name, ff->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        /* SQLite calls xClose only if pMethods is set: clean up here. */
        if (ff->real->pMethods != NULL)
            ff->real->pMethods->xClose(ff->real);
        sqlite3_free(ff->real);
        ff->real = NULL;
        return rc;
    }
    ff->base.pMethods = ff->real->pMethods->iVersion >= 3 ? &fv_methods3 : &fv_methods1;
    return SQLITE_OK;
}

static int fv_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int fv_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int fv_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static void *fv_dlopen(sqlite3_vfs *vfs, const char *name)
{
    return real_vfs->xDlOpen(real_vfs, name);
}

static void fv_dlerror(sqlite3_vfs *vfs, int n, char *msg)
{
    real_vfs->xDlError(real_vfs, n, msg);
}

static void (*fv_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    return real_vfs->xDlSym(real_vfs, h, sym);
}

static void fv_dlclose(sqlite3_vfs *vfs, void *h)
{
    real_vfs->xDlClose(real_vfs, h);
}

static int fv_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    return real_vfs->xRandomness(real_vfs, n, out);
}

static int fv_sleep(sqlite3_vfs *vfs, int us)
{
    return real_vfs->xSleep(real_vfs, us);
}

static int fv_current_time(sqlite3_vfs *vfs, double *out)
{
    return real_vfs->xCurrentTime(real_vfs, out);
}

static int fv_get_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    return real_vfs->xGetLastError(real_vfs, n, out);
}

static int fv_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static pthread_once_t fv_once = PTHREAD_ONCE_INIT;
static int fv_register_rc;

static void fv_register_once(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    if (real_vfs == NULL) {
        fv_register_rc = SQLITE_ERROR;
        return;
    }
    fv_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(fv_file_t),
        .mxPathname = real_vfs->mxPathname,
        .zName = "faultvfs",
        .xOpen = fv_open,
        .xDelete = fv_delete,
        .xAccess = fv_access,
        .xFullPathname = fv_full_pathname,
        .xDlOpen = fv_dlopen,
        .xDlError = fv_dlerror,
        .xDlSym = fv_dlsym,
        .xDlClose = fv_dlclose,
        .xRandomness = fv_randomness,
        .xSleep = fv_sleep,
        .xCurrentTime = fv_current_time,
        .xGetLastError = fv_get_last_error,
        .xCurrentTimeInt64 = fv_current_time64,
    };
    fv_register_rc = sqlite3_vfs_register(&fv_vfs, 0);
}

int faultvfs_register(void)
{
    pthread_once(&fv_once, fv_register_once);
    return fv_register_rc;
}

void faultvfs_inject(fv_op_t op, int after, int times, int code)
{
    pthread_mutex_lock(&fv_mutex);
    faults[op] = (fault_t){.after = after, .times = times, .code = code};
    pthread_mutex_unlock(&fv_mutex);
}

void faultvfs_clear(void)
{
    pthread_mutex_lock(&fv_mutex);
    memset(faults, 0, sizeof(faults));
    stall_on = false;
    pthread_cond_broadcast(&fv_cond);
    pthread_mutex_unlock(&fv_mutex);
}

uint64_t faultvfs_count(fv_op_t op)
{
    return __atomic_load_n(&counts[op], __ATOMIC_RELAXED);
}

uint64_t faultvfs_injected(void)
{
    return __atomic_load_n(&injected, __ATOMIC_RELAXED);
}

void faultvfs_stall_syncs(bool on)
{
    pthread_mutex_lock(&fv_mutex);
    stall_on = on;
    if (!on)
        pthread_cond_broadcast(&fv_cond);
    pthread_mutex_unlock(&fv_mutex);
}

uint32_t faultvfs_stalled(void)
{
    pthread_mutex_lock(&fv_mutex);
    uint32_t n = stalled;
    pthread_mutex_unlock(&fv_mutex);
    return n;
}
