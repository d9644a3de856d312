/*
 * exec_kind.c: the built-in `exec` job kind.
 *
 * DESIGN. One pinned actor per run (clone, exec and waitpid stay off the
 * scheduler threads). Accepted: EX_K_RUN/PAUSE/RESUME/STOP from the
 * executor, BT_TO_STARTED/BT_TO_EXPIRED from the timeout registry, and its
 * own timers: a 5 ms tick that reaps the child with waitpid(WNOHANG) (so
 * the mailbox is never blocked behind a wait), the SIGKILL escalation, the
 * retry delay, and a 1 ms pause check while a pause is unconfirmed.
 * Emitted: ex_kind_done/failed/stopped/paused to the executor. A pause is
 * confirmed (ex_kind_paused) only once every thread of every process of
 * the group reads state T in /proc, once per EX_K_PAUSE (see jobkind.h).
 * State owned: the child's pid (its process group id too), the attempt
 * count, the run's deadline id. The child is reaped in every path,
 * including the actor's cleanup (SIGKILL to the group, then a blocking
 * waitpid, on the pinned thread).
 */
#define _GNU_SOURCE
#include "exec_kind.h"

#include "backoff.h"
#include "timeouts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS (1000000ull)

/* ---------------------------------------------------- params (JSON) */

/* A small reader for the flat JSON object of the params: string, integer,
 * boolean and array-of-string values. */
typedef struct jr {
    const char *p;
    char *err;
    size_t errlen;
} jr_t;

static void ws(jr_t *j)
{
    while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
        j->p++;
}

static int fail(jr_t *j, const char *what)
{
    snprintf(j->err, j->errlen, "%s", what);
    return -1;
}

static int jstring(jr_t *j, char **out)
{
    ws(j);
    if (*j->p != '"')
        return fail(j, "expected a string");
    j->p++;
    size_t cap = 16, n = 0;
    char *s = malloc(cap);
    if (s == NULL)
        return fail(j, "out of memory");
    while (*j->p != '"') {
        char c = *j->p++;
        if (c == '\0') {
            free(s);
            return fail(j, "unterminated string");
        }
        if (c == '\\') {
            char e = *j->p++;
            switch (e) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case '"':
            case '\\':
            case '/':
                c = e;
                break;
            default:
                free(s);
                return fail(j, "unsupported escape in a string");
            }
        }
        if (n + 2 > cap) {
            char *t = realloc(s, cap *= 2);
            if (t == NULL) {
                free(s);
                return fail(j, "out of memory");
            }
            s = t;
        }
        s[n++] = c;
    }
    j->p++;
    s[n] = '\0';
    *out = s;
    return 0;
}

static int jstrings(jr_t *j, char ***out, uint32_t *n)
{
    ws(j);
    if (*j->p != '[')
        return fail(j, "expected an array of strings");
    j->p++;
    char **v = calloc(1, sizeof(char *));
    uint32_t k = 0;
    if (v == NULL)
        return fail(j, "out of memory");
    ws(j);
    if (*j->p == ']')
        j->p++;
    else
        for (;;) {
            char *s;
            if (k >= 4096 || jstring(j, &s) != 0) {
                for (uint32_t i = 0; i < k; i++)
                    free(v[i]);
                free(v);
                return k >= 4096 ? fail(j, "array too long") : -1;
            }
            char **t = realloc(v, (k + 2) * sizeof(char *));
            if (t == NULL) {
                free(s);
                for (uint32_t i = 0; i < k; i++)
                    free(v[i]);
                free(v);
                return fail(j, "out of memory");
            }
            v = t;
            v[k++] = s;
            v[k] = NULL;
            ws(j);
            if (*j->p == ',') {
                j->p++;
                continue;
            }
            if (*j->p == ']') {
                j->p++;
                break;
            }
            for (uint32_t i = 0; i < k; i++)
                free(v[i]);
            free(v);
            return fail(j, "expected , or ] in an array");
        }
    *out = v;
    *n = k;
    return 0;
}

static int juint(jr_t *j, uint64_t *out)
{
    ws(j);
    if (*j->p < '0' || *j->p > '9')
        return fail(j, "expected a non-negative integer");
    uint64_t v = 0;
    while (*j->p >= '0' && *j->p <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            return fail(j, "integer too large");
        v = v * 10 + (uint64_t)(*j->p++ - '0');
    }
    *out = v;
    return 0;
}

static void free_strings(char **v, uint32_t n)
{
    if (v == NULL)
        return;
    for (uint32_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void ex_exec_params_deinit(ex_exec_params_t *p)
{
    if (p == NULL)
        return;
    free_strings(p->argv, p->argc);
    free_strings(p->env, p->nenv);
    p->argv = p->env = NULL;
}

int ex_exec_params_parse(const char *json, ex_exec_params_t *out, char *err, size_t errlen)
{
    ex_exec_params_t p = {.max_attempts = 1,
                          .backoff_base_ns = 100 * MS,
                          .backoff_cap_ns = 10000 * MS,
                          .log_cap_bytes = 10u << 20};
    jr_t j = {.p = json != NULL ? json : "", .err = err, .errlen = errlen};
    ws(&j);
    if (*j.p != '{')
        return fail(&j, "params must be a JSON object");
    j.p++;
    ws(&j);
    if (*j.p == '}')
        j.p++;
    else
        for (;;) {
            char *key = NULL;
            if (jstring(&j, &key) != 0)
                goto bad;
            ws(&j);
            if (*j.p != ':') {
                free(key);
                fail(&j, "expected : after a key");
                goto bad;
            }
            j.p++;
            int rc = 0;
            uint64_t v = 0;
            if (strcmp(key, "argv") == 0 && p.argv == NULL) {
                rc = jstrings(&j, &p.argv, &p.argc);
            } else if (strcmp(key, "env") == 0 && p.env == NULL) {
                rc = jstrings(&j, &p.env, &p.nenv);
            } else if (strcmp(key, "max_attempts") == 0) {
                rc = juint(&j, &v);
                p.max_attempts = (uint32_t)(v > 100 ? 100 : v);
                if (rc == 0 && v == 0)
                    rc = fail(&j, "max_attempts must be at least 1");
            } else if (strcmp(key, "backoff_base_ms") == 0) {
                rc = juint(&j, &v);
                p.backoff_base_ns = v * MS;
            } else if (strcmp(key, "backoff_cap_ms") == 0) {
                rc = juint(&j, &v);
                p.backoff_cap_ns = v * MS;
            } else if (strcmp(key, "log_cap_bytes") == 0) {
                rc = juint(&j, &v);
                p.log_cap_bytes = v;
            } else if (strcmp(key, "timeout_class") == 0) {
                char *s = NULL;
                rc = jstring(&j, &s);
                if (rc == 0) {
                    if (strlen(s) >= sizeof(p.timeout_class))
                        rc = fail(&j, "timeout_class is too long");
                    else
                        strcpy(p.timeout_class, s);
                    free(s);
                }
            } else {
                snprintf(err, errlen, "unknown or repeated key \"%.64s\"", key);
                rc = -1;
            }
            free(key);
            if (rc != 0)
                goto bad;
            ws(&j);
            if (*j.p == ',') {
                j.p++;
                continue;
            }
            if (*j.p == '}') {
                j.p++;
                break;
            }
            fail(&j, "expected , or } in the params object");
            goto bad;
        }
    ws(&j);
    if (*j.p != '\0') {
        fail(&j, "trailing characters after the params object");
        goto bad;
    }
    if (p.argc == 0 || p.argv[0][0] != '/') {
        fail(&j, "argv must be a non-empty array whose first element is an absolute path");
        goto bad;
    }
    if (p.backoff_cap_ns < p.backoff_base_ns)
        p.backoff_cap_ns = p.backoff_base_ns;
    if (p.env == NULL) {
        p.env = calloc(2, sizeof(char *));
        if (p.env == NULL || (p.env[0] = strdup("PATH=/usr/local/bin:/usr/bin:/bin")) == NULL) {
            fail(&j, "out of memory");
            goto bad;
        }
        p.nenv = 1;
    }
    *out = p;
    return 0;
bad:
    ex_exec_params_deinit(&p);
    return -1;
}

static int xk_validate(const char *params, char *err, size_t errlen)
{
    ex_exec_params_t p;
    if (ex_exec_params_parse(params, &p, err, errlen) != 0)
        return -1;
    ex_exec_params_deinit(&p);
    return 0;
}

/* ------------------------------------------------------------ the actor */

enum { XK_TICK = 0x45580300u, XK_KILL, XK_RETRY, XK_PCHECK };

typedef struct xk {
    bt_ref_t executor, timeouts;
    char run_id[EX_RUN_ID_MAX];
    char out_path[512], err_path[512];
    ex_exec_params_t p;
    uint64_t grace_ns;
    pid_t pid;
    uint32_t attempt;
    bool paused, stopping, timed_out, waiting_retry, retry_due;
    bool pause_pending; /* an EX_K_PAUSE not yet confirmed */
    bt_timer_t tick, kill, retry, pcheck;
    bool has_tick, has_kill, has_retry, has_pcheck;
    uint64_t tick_ns;  /* the child poll's current interval (see arm_tick) */
    uint64_t tick_seq; /* the armed tick's number; older ticks are stale */
    uint64_t to_id;
    bool has_to;
    bt_prng_t rng;
} xk_t;

static void timer_stop(bt_ctx_t *ctx, bt_timer_t *t, bool *has)
{
    if (*has)
        (void)bt_timer_cancel(bt_ctx_runtime(ctx), *t);
    *has = false;
}

static bool timer_after(bt_ctx_t *ctx, uint32_t id, uint64_t delay, uint64_t period, bt_timer_t *t)
{
    bt_msg_t *m = bt_msg_new(sizeof(bt_msg_t), id);
    if (m == NULL)
        return false;
    if (bt_timer_start(bt_ctx_runtime(ctx), bt_self(ctx), m, delay, period, t) != BT_OK) {
        bt_msg_free(m);
        return false;
    }
    return true;
}

static void group_signal(const xk_t *x, int sig)
{
    if (x->pid > 0)
        (void)kill(-x->pid, sig);
}

/* The child is polled (waitpid WNOHANG) by a one-shot tick whose interval
 * starts at TICK_MIN and doubles while nothing happens, up to TICK_MAX: a
 * run that ends quickly is seen within milliseconds, and a long idle run
 * costs ten wake-ups a second instead of two hundred (measured: 64 idle
 * runs polled every 5 ms kept 0.4 of a core busy). After a signal that
 * should end the child, soon = true starts again from TICK_MIN. */
typedef struct xk_tick_msg {
    bt_msg_t hdr;
    uint64_t seq;
} xk_tick_msg_t;

#define TICK_MIN (5 * MS)
#define TICK_MAX (100 * MS)

static void arm_tick(bt_ctx_t *ctx, xk_t *x, bool soon)
{
    if (soon || x->tick_ns == 0)
        x->tick_ns = TICK_MIN;
    else if (x->tick_ns < TICK_MAX)
        x->tick_ns = x->tick_ns * 2 < TICK_MAX ? x->tick_ns * 2 : TICK_MAX;
    timer_stop(ctx, &x->tick, &x->has_tick);
    /* A tick that had already fired may still be queued: its number marks
     * it stale, so there is only ever one live poll. */
    xk_tick_msg_t *m = (xk_tick_msg_t *)bt_msg_new(sizeof(*m), XK_TICK);
    if (m == NULL)
        return;
    m->seq = ++x->tick_seq;
    if (bt_timer_start(bt_ctx_runtime(ctx), bt_self(ctx), &m->hdr, x->tick_ns, 0, &x->tick) !=
        BT_OK) {
        bt_msg_free(&m->hdr);
        return;
    }
    x->has_tick = true;
}

/* ------------------------------------------------------------ spawn
 *
 * Not fork(): a fork copies the page tables of the whole service (its
 * heap, SQLite's page cache, a stack per HTTP connection) while holding
 * its memory map's lock for writing, so every thread of the service that
 * faults a page meanwhile waits, and afterwards every page either side
 * writes is copied until the child's exec. Under a burst of starts that
 * stalled the run store and the HTTP threads for 100 to 250 ms per started
 * run (docs/reliability.md, "Load"). clone(CLONE_VM | CLONE_VFORK), as
 * posix_spawn(3) does, copies nothing: the child runs on a small stack of
 * its own in the service's memory until its execve, while the calling
 * thread alone waits (the other threads run on). posix_spawn itself cannot
 * set the death signal, the file size limit or an ignored SIGXFSZ, so the
 * child is our own, and makes raw system calls only.
 *
 * ThreadSanitizer's clone interceptor treats every clone as a fork (it
 * resets the runtime's state in the child, which with CLONE_VM is the
 * parent's), and it turns vfork into fork too; so a ThreadSanitizer build
 * clones without CLONE_VM | CLONE_VFORK: a fork, on the same child code. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SPAWN_FORK_ONLY 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define SPAWN_FORK_ONLY 1
#endif
#ifdef SPAWN_FORK_ONLY
#define SPAWN_FLAGS SIGCHLD
#else
#define SPAWN_FLAGS (CLONE_VM | CLONE_VFORK | SIGCHLD)
#endif

/* The child code runs without sanitizer instrumentation: its memory is
 * the parent's, and so is the sanitizers' state of the calling thread. */
#if defined(__has_attribute)
#if __has_attribute(disable_sanitizer_instrumentation)
#define SPAWN_NOINSTR __attribute__((disable_sanitizer_instrumentation, noinline))
#endif
#endif
#ifndef SPAWN_NOINSTR
#define SPAWN_NOINSTR                                                                              \
    __attribute__((no_sanitize_address, no_sanitize_thread, no_sanitize_undefined, noinline))
#endif

#define SPAWN_STACK (64u << 10)

/* What the child needs. It lives on the calling thread's stack, which
 * stays as it is while the child runs (that thread waits in clone). */
typedef struct spawn_args {
    pid_t parent;
    int in, out, err, barrier; /* barrier: the write end of the exec barrier */
    uint64_t cap[2];           /* RLIMIT_FSIZE, as prlimit64(2) takes it */
    char *const *argv, *const *env;
} spawn_args_t;

/* The kernel's struct sigaction (rt_sigaction(2)), zeroed but for the
 * handler: enough for SIG_DFL and SIG_IGN. */
typedef struct {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
} k_sigaction_t;

/* dup2 as a raw system call; from == to clears close-on-exec instead.
 * Returns 0 or an errno value. */
static SPAWN_NOINSTR int spawn_dup_to(int from, int to)
{
    long rc = from == to ? syscall(SYS_fcntl, from, F_SETFD, 0) : syscall(SYS_dup3, from, to, 0);
    return rc < 0 ? errno : 0;
}

/* The child: raw system calls (syscall(2)) only, so no libc lock, no
 * allocation, no sanitizer state of the parent is touched; it writes no
 * memory of the parent's but errno (the waiting thread's). Every signal is
 * blocked on entry (the parent blocked them), so none of the service's
 * handlers can run here. */
static SPAWN_NOINSTR int spawn_child(void *arg)
{
    const spawn_args_t *a = arg;
    /* The death signal first, so that no window leaves a child that
     * outlives the service. */
    syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (syscall(SYS_getppid) != a->parent)
        syscall(SYS_exit_group, 127);
    syscall(SYS_setpgid, 0, 0);
    int e = spawn_dup_to(a->in, 0);
    if (e == 0)
        e = spawn_dup_to(a->out, 1);
    if (e == 0)
        e = spawn_dup_to(a->err, 2);
    /* Dispositions: the default for every signal but SIGXFSZ, ignored (the
     * log cap: writes past it fail with EFBIG instead of killing). Then
     * the empty mask. */
    for (int s = 1; e == 0 && s < 65; s++) {
        if (s == SIGKILL || s == SIGSTOP)
            continue;
        k_sigaction_t sa = {.handler = s == SIGXFSZ ? SIG_IGN : SIG_DFL};
        syscall(SYS_rt_sigaction, s, &sa, NULL, sizeof(uint64_t));
    }
    uint64_t none = 0;
    if (e == 0 && syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none)) != 0)
        e = errno;
    /* The log cap; as with setrlimit before, a cap above the service's own
     * hard limit is refused and the child keeps that lower limit. */
    syscall(SYS_prlimit64, 0, RLIMIT_FSIZE, a->cap, NULL);
    if (e == 0) {
        syscall(SYS_execve, a->argv[0], a->argv, a->env);
        e = errno;
    }
    if (e == 0)
        e = ENOEXEC;
    while (syscall(SYS_write, a->barrier, &e, sizeof(e)) < 0 && errno == EINTR) {
    }
    syscall(SYS_exit_group, 127);
    return 127;
}

/* Starts the argv in a new process (see above); returns 0 or an errno
 * value.
 *
 * The exec barrier: the child writes errno to a pipe if it cannot exec; on
 * success the close-on-exec end just closes. Waiting for it means a
 * control signal (SIGSTOP for a pause) never finds the child between clone
 * and exec, still holding this process's descriptors (the state
 * directory's lock among them), and an execve error becomes the run's
 * error instead of a bare exit 127. With CLONE_VFORK the wait is already
 * over when clone returns; the pipe makes the fork of a ThreadSanitizer
 * build wait as well. */
static int child_start(xk_t *x)
{
    spawn_args_t a = {.parent = getpid(),
                      .in = -1,
                      .out = -1,
                      .err = -1,
                      .cap = {x->p.log_cap_bytes, x->p.log_cap_bytes},
                      .argv = x->p.argv,
                      .env = x->p.env};
    int sync[2] = {-1, -1};
    void *stack = MAP_FAILED;
    int e = 0;
    if ((a.out = open(x->out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0 ||
        (a.err = open(x->err_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0 ||
        (a.in = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0 || pipe2(sync, O_CLOEXEC) != 0 ||
        (stack = mmap(NULL, SPAWN_STACK, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0)) == MAP_FAILED)
        e = errno;
    pid_t pid = -1;
    if (e == 0) {
        a.barrier = sync[1];
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pid = clone(spawn_child, (char *)stack + SPAWN_STACK, SPAWN_FLAGS, &a);
        e = pid < 0 ? errno : 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (stack != MAP_FAILED)
        munmap(stack, SPAWN_STACK);
    int fds[] = {a.out, a.err, a.in, sync[1]};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (pid < 0) {
        if (sync[0] >= 0)
            close(sync[0]);
        return e;
    }
    setpgid(pid, pid); /* both sides, so signals reach the group at once */
    int child_errno = 0;
    ssize_t n;
    while ((n = read(sync[0], &child_errno, sizeof(child_errno))) < 0 && errno == EINTR) {
    }
    close(sync[0]);
    if (n == (ssize_t)sizeof(child_errno)) {
        /* The child could not exec: reap it, report why. */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        return child_errno != 0 ? child_errno : ENOEXEC;
    }
    x->pid = pid;
    return 0;
}

/* Whether every thread of every process in process group pgid is stopped
 * (or dead): /proc/<pid>/task/<tid>/stat state 'T', 't', 'Z' or 'X'. A
 * process that cannot be read (it has just exited) counts as stopped. */
static bool group_stopped(pid_t pgid)
{
    DIR *proc = opendir("/proc");
    if (proc == NULL)
        return true; /* no /proc: kill() returned, which is all we know */
    bool stopped = true;
    struct dirent *e;
    while (stopped && (e = readdir(proc)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        const char *rp = strrchr(buf, ')');
        char st;
        int ppid, pgrp;
        if (rp == NULL || sscanf(rp + 2, "%c %d %d", &st, &ppid, &pgrp) != 3 || pgrp != pgid)
            continue;
        /* A member: each of its threads must be stopped. */
        snprintf(path, sizeof(path), "/proc/%s/task", e->d_name);
        DIR *tasks = opendir(path);
        struct dirent *t;
        while (tasks != NULL && stopped && (t = readdir(tasks)) != NULL) {
            if (t->d_name[0] < '1' || t->d_name[0] > '9')
                continue;
            char tp[600];
            snprintf(tp, sizeof(tp), "%s/%s/stat", path, t->d_name);
            fd = open(tp, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            n = read(fd, buf, sizeof(buf) - 1);
            close(fd);
            if (n <= 0)
                continue;
            buf[n] = '\0';
            rp = strrchr(buf, ')');
            if (rp != NULL && sscanf(rp + 2, "%c", &st) == 1 && st != 'T' && st != 't' &&
                st != 'Z' && st != 'X')
                stopped = false;
        }
        if (tasks != NULL)
            closedir(tasks);
    }
    closedir(proc);
    return stopped;
}

/* Confirms a pending pause once nothing of the run makes progress: no
 * process (between attempts), or every thread of the group stopped. */
static void pause_check(bt_ctx_t *ctx, xk_t *x)
{
    if (!x->pause_pending)
        return;
    if (x->pid > 0 && !group_stopped(x->pid))
        return;
    x->pause_pending = false;
    timer_stop(ctx, &x->pcheck, &x->has_pcheck);
    ex_kind_paused(ctx, x->executor, x->run_id);
}

static void finish_self(bt_ctx_t *ctx, xk_t *x)
{
    x->pause_pending = false; /* the outcome answers a pending pause */
    timer_stop(ctx, &x->pcheck, &x->has_pcheck);
    timer_stop(ctx, &x->tick, &x->has_tick);
    timer_stop(ctx, &x->kill, &x->has_kill);
    timer_stop(ctx, &x->retry, &x->has_retry);
    bt_stop_self(ctx);
}

static void deadline_done(bt_ctx_t *ctx, xk_t *x)
{
    if (!x->has_to)
        return;
    bt_to_done_msg_t *d = BT_MSG_NEW(bt_to_done_msg_t, BT_TO_DONE);
    if (d != NULL) {
        d->id = x->to_id;
        if (bt_send(bt_ctx_runtime(ctx), x->timeouts, &d->hdr) != BT_OK)
            bt_msg_free(&d->hdr);
    }
    x->has_to = false;
}

static int attempt_start(bt_ctx_t *ctx, xk_t *x)
{
    x->attempt++;
    int e = child_start(x);
    if (e != 0) {
        char why[EX_ERRMSG_MAX];
        snprintf(why, sizeof(why), "cannot start %s: %s", x->p.argv[0], strerror(e));
        ex_kind_failed(ctx, x->executor, x->run_id, why);
        finish_self(ctx, x);
        return BT_OK;
    }
    arm_tick(ctx, x, true);
    if (x->paused)
        group_signal(x, SIGSTOP);
    return BT_OK;
}

static void on_exit_status(bt_ctx_t *ctx, xk_t *x, int st)
{
    x->pid = 0;
    timer_stop(ctx, &x->kill, &x->has_kill);
    if (x->stopping) {
        deadline_done(ctx, x);
        ex_kind_stopped(ctx, x->executor, x->run_id);
        finish_self(ctx, x);
        return;
    }
    if (x->timed_out) {
        char why[EX_ERRMSG_MAX];
        snprintf(why, sizeof(why), "timed out (timeout class %s)", x->p.timeout_class);
        ex_kind_failed(ctx, x->executor, x->run_id, why);
        finish_self(ctx, x);
        return;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        deadline_done(ctx, x);
        ex_kind_done(ctx, x->executor, x->run_id);
        finish_self(ctx, x);
        return;
    }
    char why[EX_ERRMSG_MAX];
    if (WIFEXITED(st))
        snprintf(why, sizeof(why), "%s exited with status %d (attempt %u of %u)", x->p.argv[0],
                 WEXITSTATUS(st), x->attempt, x->p.max_attempts);
    else
        snprintf(why, sizeof(why), "%s was killed by signal %d (attempt %u of %u)", x->p.argv[0],
                 WTERMSIG(st), x->attempt, x->p.max_attempts);
    if (x->attempt < x->p.max_attempts) {
        uint64_t d =
            bt_backoff_full_jitter(x->p.backoff_base_ns, x->p.backoff_cap_ns, x->attempt, &x->rng);
        timer_stop(ctx, &x->tick, &x->has_tick);
        x->waiting_retry = true;
        x->has_retry = timer_after(ctx, XK_RETRY, d > MS ? d : MS, 0, &x->retry);
        if (x->has_retry)
            return;
    }
    deadline_done(ctx, x);
    ex_kind_failed(ctx, x->executor, x->run_id, why);
    finish_self(ctx, x);
}

static int xk_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    (void)ctx;
    xk_t *x = state;
    const ex_kind_args_t *a = arg;
    char err[256];
    if (ex_exec_params_parse(a->params, &x->p, err, sizeof(err)) != 0)
        return BT_EINVAL;
    x->executor = a->executor;
    x->timeouts = a->timeouts;
    x->grace_ns = a->stop_grace_ns;
    snprintf(x->run_id, sizeof(x->run_id), "%s", a->run_id);
    char logs[400];
    snprintf(logs, sizeof(logs), "%s/logs", a->state_dir);
    (void)mkdir(logs, 0700);
    snprintf(x->out_path, sizeof(x->out_path), "%s/%s.out", logs, a->run_id);
    snprintf(x->err_path, sizeof(x->err_path), "%s/%s.err", logs, a->run_id);
    uint64_t seed = 1469598103934665603ull;
    for (const char *c = a->run_id; *c; c++)
        seed = (seed ^ (unsigned char)*c) * 1099511628211ull;
    bt_prng_seed(&x->rng, seed);
    return BT_OK;
}

static int xk_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    xk_t *x = state;
    switch (msg->id) {
    case EX_K_RUN:
        if (x->attempt > 0)
            return BT_OK;
        if (x->p.timeout_class[0] && x->timeouts != BT_REF_NONE) {
            bt_to_start_msg_t *s = BT_MSG_NEW(bt_to_start_msg_t, BT_TO_START);
            if (s != NULL) {
                snprintf(s->cls, sizeof(s->cls), "%s", x->p.timeout_class);
                s->parent = BT_DEADLINE_NONE;
                s->notify = bt_self(ctx);
                if (bt_ask(ctx, x->timeouts, &s->hdr, 5000 * MS, NULL) != BT_OK)
                    bt_msg_free(&s->hdr);
            }
        }
        return attempt_start(ctx, x);
    case BT_TO_STARTED: {
        const bt_to_started_msg_t *s = (const bt_to_started_msg_t *)msg;
        if (s->status == BT_OK) {
            x->to_id = s->id;
            x->has_to = true;
        }
        return BT_OK;
    }
    case BT_TO_EXPIRED:
        x->has_to = false;
        x->timed_out = true;
        group_signal(x, SIGKILL);
        group_signal(x, SIGCONT);
        if (x->pid > 0)
            arm_tick(ctx, x, true);
        if (x->waiting_retry) {
            ex_kind_failed(ctx, x->executor, x->run_id, "timed out while waiting to retry");
            finish_self(ctx, x);
        }
        return BT_OK;
    case EX_K_PAUSE:
        /* Confirmed (ex_kind_paused) only once the group is really
         * stopped: SIGSTOP is asynchronous, and a process may be in the
         * middle of a system call. Polled every millisecond until then. */
        x->paused = true;
        group_signal(x, SIGSTOP);
        if (x->pause_pending)
            ex_kind_paused(ctx, x->executor, x->run_id); /* one per EX_K_PAUSE */
        x->pause_pending = true;
        pause_check(ctx, x);
        if (x->pause_pending && !x->has_pcheck)
            x->has_pcheck = timer_after(ctx, XK_PCHECK, MS, MS, &x->pcheck);
        return BT_OK;
    case XK_PCHECK:
        pause_check(ctx, x);
        return BT_OK;
    case EX_K_RESUME:
        if (x->pause_pending) {
            /* The executor counts one confirmation per pause. */
            x->pause_pending = false;
            timer_stop(ctx, &x->pcheck, &x->has_pcheck);
            ex_kind_paused(ctx, x->executor, x->run_id);
        }
        x->paused = false;
        group_signal(x, SIGCONT);
        if (x->waiting_retry && x->retry_due) {
            x->waiting_retry = x->retry_due = false;
            return attempt_start(ctx, x);
        }
        return BT_OK;
    case EX_K_STOP:
        if (x->stopping)
            return BT_OK;
        x->stopping = true;
        /* The outcome (stopped) answers a pending pause too. */
        x->pause_pending = false;
        timer_stop(ctx, &x->pcheck, &x->has_pcheck);
        if (x->pid <= 0) {
            deadline_done(ctx, x);
            ex_kind_stopped(ctx, x->executor, x->run_id);
            finish_self(ctx, x);
            return BT_OK;
        }
        group_signal(x, SIGTERM);
        group_signal(x, SIGCONT); /* a paused group must run to see SIGTERM */
        arm_tick(ctx, x, true);
        x->has_kill = timer_after(ctx, XK_KILL, x->grace_ns ? x->grace_ns : 5000 * MS, 0, &x->kill);
        return BT_OK;
    case XK_KILL:
        x->has_kill = false;
        group_signal(x, SIGKILL);
        arm_tick(ctx, x, true);
        return BT_OK;
    case XK_RETRY:
        x->has_retry = false;
        if (!x->waiting_retry)
            return BT_OK;
        if (x->paused) {
            x->retry_due = true;
            return BT_OK;
        }
        x->waiting_retry = false;
        return attempt_start(ctx, x);
    case XK_TICK: {
        if (((const xk_tick_msg_t *)msg)->seq != x->tick_seq)
            return BT_OK;    /* superseded by a later arm_tick */
        x->has_tick = false; /* one-shot: it has fired */
        if (x->pid <= 0)
            return BT_OK;
        int st = 0;
        pid_t r = waitpid(x->pid, &st, WNOHANG);
        if (r == x->pid) {
            pid_t pg = x->pid;
            (void)kill(-pg, SIGKILL); /* the group's leftovers die with it */
            on_exit_status(ctx, x, st);
            pause_check(ctx, x); /* waiting to retry: nothing runs */
        } else if (r < 0 && errno == ECHILD) {
            x->pid = 0;
            ex_kind_failed(ctx, x->executor, x->run_id, "the child process was lost");
            finish_self(ctx, x);
        } else {
            arm_tick(ctx, x, false);
        }
        return BT_OK;
    }
    default:
        return BT_OK;
    }
}

static void xk_cleanup(bt_ctx_t *ctx, void *state)
{
    xk_t *x = state;
    if (x->pid > 0) {
        group_signal(x, SIGKILL);
        group_signal(x, SIGCONT);
        int st;
        while (waitpid(x->pid, &st, 0) < 0 && errno == EINTR)
            ;
        x->pid = 0;
    }
    timer_stop(ctx, &x->tick, &x->has_tick);
    timer_stop(ctx, &x->kill, &x->has_kill);
    timer_stop(ctx, &x->retry, &x->has_retry);
    timer_stop(ctx, &x->pcheck, &x->has_pcheck);
    deadline_done(ctx, x);
    ex_exec_params_deinit(&x->p);
}

static const bt_actor_type_t xk_type = {
    .name = "exec-kind",
    .state_size = sizeof(xk_t),
    .init = xk_init,
    .dispatch = xk_dispatch,
    .cleanup = xk_cleanup,
};

static const ex_kind_t xk_kind = {
    .name = "exec",
    .type = &xk_type,
    .spawn_flags = BT_SPAWN_PINNED,
    .validate = xk_validate,
    .recovery = EX_RECOVERY_FAIL,
};

const ex_kind_t *ex_exec_kind(void)
{
    return &xk_kind;
}
