/*
 * bench_api.c: the HTTP API's benchmark: requests per second with p50 and
 * p99 latency for C concurrent clients (64 by default), against the real
 * `baton serve` binary and, side by side in the same process, a bare
 * libmicrohttpd server (bare_mhd.c) started with the same MHD flags.
 *
 *   bench_api [--warmup W] [--runs R] [--clients C] [--loops L]
 *             [--warm-ms MS] [--duration-ms MS] [--sync full|normal|off]
 *             [--baton PATH] [--bare PATH] [WORKLOAD...]
 *   bench_api --short
 *   bench_api --list
 *
 * --short is the smoke test (CTest bench_api_short): get_run, healthz and
 * startstop once, 0.2 s warm-up + 0.5 s measured (startstop: 8 clients,
 * one per HTTP thread, 0.5 s + 3 s);
 * it exits non-zero on any error or a workload without a figure. --sync
 * sets the store's [store] sync (default full, the service's default).
 *
 * Workloads (all of them when none is named):
 *   get_run      GET /v1/runs/{id} of an existing (finished) run: the HTTP
 *                layer, routing, an ask to the run store and a SQLite read,
 *                the JSON answer. The same request line is sent to bare_mhd.
 *   healthz      GET /healthz: the HTTP layer and routing only, no actor.
 *                Also sent to bare_mhd.
 *   startstop    each client owns one job (64 jobs, max_active 1, exec of
 *                /bin/sleep 600) and repeats POST /v1/jobs/{job}/runs then
 *                POST /v1/runs/{id}/stop. A start forks and execs a process,
 *                a stop sends SIGTERM and answers once it has exited; each
 *                is a durable store write (sync = full, the default). This
 *                is what a user's start and stop cost, not the API's floor.
 *   wrk_get_run, wrk_healthz
 *                the same two GETs measured by wrk (Debian's wrk 4), when it
 *                is on PATH, as a cross-check of this generator: wrk -t L
 *                -c C --latency, a 1 s wrk warm-up, then the duration.
 *
 * The generator: L threads (--loops, default 2), each an epoll loop over
 * its share of C keep-alive HTTP/1.1 connections on raw sockets; closed
 * loop (a client sends its next request when the answer has arrived, as
 * wrk does). Each measurement opens fresh connections, runs --warm-ms
 * (1000) unrecorded, then records every answer that completes in the next
 * --duration-ms (5000): its latency, from the first byte written to the
 * last byte read, goes into a log-linear histogram (128 sub-buckets per
 * power of two: under 0.8 % error). Any error (a status other than the
 * expected one, a closed connection, a malformed answer) fails the
 * measurement: no figure is printed for it and the exit status is 1.
 *
 * One baton and one bare_mhd process serve the whole run (baton's state in a
 * fresh temporary directory, removed at the end). Each round measures every
 * workload once, baton and bare_mhd alternately first; --warmup rounds are
 * not reported. Output (bench/README.md):
 *   RESULT impl=baton|bare-mhd workload=W args=C metric=M value=V
 *   PEAK   impl=... workload=W args=C rss_kb=<the server's VmHWM>
 * with M one of req_per_s, p50_us, p99_us (GETs) or cycles_per_s,
 * start_p50_us, start_p99_us, stop_p50_us, stop_p99_us (startstop).
 */
#define _GNU_SOURCE
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef BATON_BIN
#define BATON_BIN "baton"
#endif
#ifndef BARE_MHD_BIN
#define BARE_MHD_BIN "bare_mhd"
#endif

#define MS_NS       1000000ull
#define SEC_NS      1000000000ull
#define MAX_CLIENTS 1000u
#define MAX_LOOPS   16u
#define IN_CAP      16384u
#define OUT_CAP     512u
#define ID_MAX      64u
#define ERR_LEN     200u
#define DRAIN_NS    (60ull * SEC_NS) /* startstop: stopping the last runs */
#define READY_NS    (60ull * SEC_NS)
#define SETUP_TO_S  30

static const char *baton_bin = BATON_BIN;
static const char *bare_bin = BARE_MHD_BIN;
static const char *store_sync = "full"; /* [store] sync: --sync */

/* ------------------------------------------------------------- histogram */

/* Values below 2*H_SUB are exact; above, each power of two is split into
 * H_SUB buckets. Values are nanoseconds. */
#define H_SUB_BITS 7u
#define H_SUB      (1u << H_SUB_BITS)
#define H_BUCKETS  (2u * H_SUB + (64u - H_SUB_BITS - 1u) * H_SUB)

typedef struct hist {
    uint64_t n[H_BUCKETS];
    uint64_t total;
} hist_t;

static unsigned hist_index(uint64_t v)
{
    if (v < 2u * H_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - H_SUB_BITS; /* >= 1 */
    return 2u * H_SUB + (shift - 1u) * H_SUB + (unsigned)((v >> shift) - H_SUB);
}

/* The middle of bucket i. */
static double hist_value(unsigned i)
{
    if (i < 2u * H_SUB)
        return (double)i;
    unsigned k = i - 2u * H_SUB;
    unsigned shift = k / H_SUB + 1u;
    uint64_t lower = (uint64_t)(k % H_SUB + H_SUB) << shift;
    return (double)lower + (double)(1ull << shift) / 2.0;
}

static void hist_record(hist_t *h, uint64_t v)
{
    h->n[hist_index(v)]++;
    h->total++;
}

static void hist_merge(hist_t *into, const hist_t *from)
{
    for (unsigned i = 0; i < H_BUCKETS; i++)
        into->n[i] += from->n[i];
    into->total += from->total;
}

/* The p-th percentile (0 < p <= 100) in nanoseconds; 0 when empty. */
static double hist_percentile(const hist_t *h, double p)
{
    if (h->total == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil((double)h->total * p / 100.0);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < H_BUCKETS; i++) {
        seen += h->n[i];
        if (seen >= rank)
            return hist_value(i);
    }
    return hist_value(H_BUCKETS - 1);
}

/* ------------------------------------------------------ HTTP responses */

typedef struct http_resp {
    int status;
    size_t len;       /* header + body bytes consumed */
    const char *body; /* inside the buffer, not NUL-terminated */
    size_t body_len;
    bool close; /* Connection: close */
} http_resp_t;

/* Parses one HTTP/1.1 response at the start of buf. Returns 1 when it is
 * complete (*out filled), 0 when more bytes are needed, -1 when it is
 * malformed or uses a framing this client does not speak (chunked). */
static int parse_response(const char *buf, size_t len, http_resp_t *out /* OUT */)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (end == NULL)
        return len >= IN_CAP ? -1 : 0;
    size_t hlen = (size_t)(end - buf) + 4;
    if (hlen < 12 || memcmp(buf, "HTTP/1.", 7) != 0)
        return -1;
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        st = st * 10 + (buf[i] - '0');
    }
    bool have_len = false, close = false;
    size_t clen = 0;
    const char *line = memchr(buf, '\n', hlen);
    while (line != NULL && line + 1 < end) {
        line++;
        const char *eol = memchr(line, '\r', (size_t)(end + 2 - line));
        if (eol == NULL)
            return -1;
        size_t n = (size_t)(eol - line);
        if (n > 15 && strncasecmp(line, "content-length:", 15) == 0) {
            char num[24];
            size_t k = n - 15 < sizeof(num) - 1 ? n - 15 : sizeof(num) - 1;
            memcpy(num, line + 15, k);
            num[k] = '\0';
            char *e;
            unsigned long long v = strtoull(num, &e, 10);
            while (*e == ' ' || *e == '\t')
                e++;
            if (*e != '\0')
                return -1;
            clen = (size_t)v;
            have_len = true;
        } else if (n > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0) {
            return -1;
        } else if (n > 11 && strncasecmp(line, "connection:", 11) == 0) {
            close = memmem(line, n, "close", 5) != NULL;
        }
        line = memchr(line, '\n', (size_t)(end + 2 - line));
    }
    if (!have_len)
        clen = 0; /* every answer here carries Content-Length; 204/304 have none */
    if (clen > IN_CAP - hlen)
        return -1;
    if (len < hlen + clen)
        return 0;
    out->status = st;
    out->len = hlen + clen;
    out->body = buf + hlen;
    out->body_len = clen;
    out->close = close;
    return 1;
}

/* Copies the string value of "key" from a JSON body into out; false if it
 * is absent or too long. Enough for the flat "id" of a run. */
static bool json_field(const char *body, size_t len, const char *key, char *out, size_t outlen)
{
    char pat[40];
    int pn = snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = memmem(body, len, pat, (size_t)pn);
    if (p == NULL)
        return false;
    p += pn;
    const char *end = body + len;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p >= end || *p != '"')
        return false;
    p++;
    const char *q = memchr(p, '"', (size_t)(end - p));
    if (q == NULL || (size_t)(q - p) >= outlen)
        return false;
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = '\0';
    return true;
}

/* ---------------------------------------------------- one-off requests */

static int connect_to(uint16_t port, bool nonblock)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (nonblock)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* One request on its own connection (setup only, not measured). Returns
 * the status, or -1 when no answer came; the body (NUL-terminated) goes to
 * body when it is not NULL. */
static int http_once(uint16_t port, const char *method, const char *path, char *body,
                     size_t bodylen)
{
    int fd = connect_to(port, false);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = SETUP_TO_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    char req[OUT_CAP];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n",
                     method, path, (unsigned)port);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    static _Thread_local char buf[IN_CAP];
    size_t len = 0;
    http_resp_t r;
    int st = -1;
    for (;;) {
        ssize_t k = read(fd, buf + len, IN_CAP - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        len += (size_t)k;
        int pr = parse_response(buf, len, &r);
        if (pr < 0)
            break;
        if (pr == 1) {
            st = r.status;
            if (body != NULL && bodylen > 0) {
                size_t c = r.body_len < bodylen - 1 ? r.body_len : bodylen - 1;
                memcpy(body, r.body, c);
                body[c] = '\0';
            }
            break;
        }
    }
    close(fd);
    return st;
}

/* ----------------------------------------------------------- generator */

typedef enum req_kind { REQ_GET, REQ_START, REQ_STOP, REQ_COUNT } req_kind_t;

static const char *const req_names[REQ_COUNT] = {
    [REQ_GET] = "GET",
    [REQ_START] = "start",
    [REQ_STOP] = "stop",
};

typedef struct gen {
    uint16_t port;
    const char *path; /* GET workloads */
    bool startstop;
    unsigned clients, loops;
    uint64_t t_measure, t_end; /* absolute, bench_now_ns() */
} gen_t;

typedef struct conn {
    int fd;
    unsigned job; /* startstop: the job this client owns */
    req_kind_t kind;
    bool in_flight;
    bool have_run; /* startstop: our run was started and not yet stopped */
    bool done;
    bool want_out; /* a partial write is pending (EPOLLOUT armed) */
    char run_id[ID_MAX];
    char out[OUT_CAP];
    size_t out_len, out_off;
    char in[IN_CAP];
    size_t in_len;
    uint64_t sent_ns;
} conn_t;

typedef struct loop {
    const gen_t *g;
    conn_t *conns;
    unsigned first, n; /* clients first .. first+n-1 */
    int ep;
    hist_t hist[REQ_COUNT];
    uint64_t cycles, cycles_all, errors; /* cycles: in the window; _all: any time */
    char err[ERR_LEN];                   /* the first error */
    pthread_t th;
} loop_t;

static void loop_error(loop_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void loop_error(loop_t *l, const char *fmt, ...)
{
    if (l->errors++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(l->err, sizeof(l->err), fmt, ap);
        va_end(ap);
    }
}

static int conn_open(loop_t *l, conn_t *c)
{
    c->fd = connect_to(l->g->port, true);
    if (c->fd < 0)
        return -1;
    c->in_len = 0;
    c->in_flight = false;
    c->want_out = false;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    return epoll_ctl(l->ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void conn_close(conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd); /* also removes it from the epoll set */
    c->fd = -1;
}

static void conn_flush(loop_t *l, conn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t k = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
                epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &ev);
                c->want_out = true;
            }
            return;
        }
        if (k <= 0) {
            loop_error(l, "write: %s", k < 0 ? strerror(errno) : "closed");
            return; /* the read side sees the close */
        }
        c->out_off += (size_t)k;
    }
    if (c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = false;
    }
}

static void conn_send(loop_t *l, conn_t *c, req_kind_t kind)
{
    const gen_t *g = l->g;
    int n;
    switch (kind) {
    case REQ_GET:
        n = snprintf(c->out, OUT_CAP, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n", g->path,
                     (unsigned)g->port);
        break;
    case REQ_START:
        n = snprintf(c->out, OUT_CAP,
                     "POST /v1/jobs/bench_%u/runs HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
                     "Content-Length: 0\r\n\r\n",
                     c->job, (unsigned)g->port);
        break;
    default:
        n = snprintf(c->out, OUT_CAP,
                     "POST /v1/runs/%s/stop HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
                     "Content-Length: 0\r\n\r\n",
                     c->run_id, (unsigned)g->port);
        break;
    }
    c->out_len = (size_t)n;
    c->out_off = 0;
    c->kind = kind;
    c->in_flight = true;
    c->sent_ns = bench_now_ns();
    conn_flush(l, c);
}

/* What a client sends next, or REQ_COUNT for nothing (the run is over). */
static req_kind_t next_kind(const loop_t *l, const conn_t *c, bool stopping)
{
    if (!l->g->startstop)
        return stopping ? REQ_COUNT : REQ_GET;
    if (c->have_run)
        return REQ_STOP; /* also when stopping: leave no run behind */
    return stopping ? REQ_COUNT : REQ_START;
}

static void on_response(loop_t *l, conn_t *c, const http_resp_t *r, uint64_t now)
{
    const gen_t *g = l->g;
    bool in_window = now >= g->t_measure && now < g->t_end;
    int want = c->kind == REQ_START ? 201 : 200;
    c->in_flight = false;
    if (in_window)
        hist_record(&l->hist[c->kind], now - c->sent_ns);
    if (r->status != want) {
        loop_error(l, "%s answered %d (expected %d): %.*s", req_names[c->kind], r->status, want,
                   (int)(r->body_len < 120 ? r->body_len : 120), r->body);
        if (c->kind == REQ_STOP)
            c->have_run = false; /* a later start tells whether it is still active */
        return;
    }
    if (c->kind == REQ_START) {
        if (json_field(r->body, r->body_len, "id", c->run_id, sizeof(c->run_id)))
            c->have_run = true;
        else
            loop_error(l, "start answered without a run id");
    } else if (c->kind == REQ_STOP) {
        c->have_run = false;
        l->cycles_all++;
        if (in_window)
            l->cycles++;
    }
}

static void conn_readable(loop_t *l, conn_t *c, bool stopping)
{
    for (;;) {
        ssize_t k = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (k <= 0) {
            /* The server closed it (or reset it): an error if an answer was
             * due; reconnect and carry on either way. */
            if (c->in_flight)
                loop_error(l, "connection closed during a %s: %s", req_names[c->kind],
                           k < 0 ? strerror(errno) : "EOF");
            conn_close(c);
            if (conn_open(l, c) != 0) {
                loop_error(l, "reconnect failed: %s", strerror(errno));
                c->done = true;
                return;
            }
            req_kind_t next = next_kind(l, c, stopping);
            if (next == REQ_COUNT)
                c->done = true;
            else
                conn_send(l, c, next);
            return;
        }
        c->in_len += (size_t)k;
        http_resp_t r;
        int pr = parse_response(c->in, c->in_len, &r);
        if (pr < 0) {
            loop_error(l, "malformed answer to a %s", req_names[c->kind]);
            c->in_len = 0;
            c->done = true;
            conn_close(c);
            return;
        }
        if (pr == 0)
            continue;
        uint64_t now = bench_now_ns();
        if (!c->in_flight) {
            loop_error(l, "an answer nobody asked for");
            c->in_len = 0;
            continue;
        }
        on_response(l, c, &r, now);
        bool close_it = r.close;
        if (r.len < c->in_len) {
            loop_error(l, "%zu bytes after an answer", c->in_len - r.len);
            close_it = true;
        }
        c->in_len = 0;
        if (close_it) {
            conn_close(c);
            if (conn_open(l, c) != 0) {
                loop_error(l, "reconnect failed: %s", strerror(errno));
                c->done = true;
                return;
            }
        }
        req_kind_t next = next_kind(l, c, stopping || now >= l->g->t_end);
        if (next == REQ_COUNT)
            c->done = true;
        else
            conn_send(l, c, next);
        return;
    }
}

static void *loop_main(void *arg)
{
    loop_t *l = arg;
    const gen_t *g = l->g;
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    if (l->ep < 0) {
        loop_error(l, "epoll_create1: %s", strerror(errno));
        return NULL;
    }
    for (unsigned i = 0; i < l->n; i++) {
        conn_t *c = &l->conns[l->first + i];
        c->job = l->first + i;
        if (conn_open(l, c) != 0) {
            loop_error(l, "connect: %s", strerror(errno));
            c->done = true;
            continue;
        }
        conn_send(l, c, g->startstop ? REQ_START : REQ_GET);
    }
    struct epoll_event evs[64];
    bool stopping = false;
    uint64_t give_up = g->t_end + DRAIN_NS;
    for (;;) {
        int ne = epoll_wait(l->ep, evs, 64, 10);
        if (ne < 0 && errno != EINTR) {
            loop_error(l, "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < ne; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c->fd < 0 || c->done)
                continue;
            if ((evs[i].events & EPOLLOUT) != 0)
                conn_flush(l, c);
            if ((evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0)
                conn_readable(l, c, stopping);
        }
        uint64_t now = bench_now_ns();
        if (now >= g->t_end) {
            stopping = true;
            /* A GET in flight is abandoned; a start or stop is awaited, so
             * that every client's run is stopped before the next
             * measurement. */
            bool all_done = true;
            for (unsigned i = 0; i < l->n; i++) {
                conn_t *c = &l->conns[l->first + i];
                if (!c->done && !c->in_flight)
                    c->done = true;
                if (!g->startstop)
                    c->done = true;
                all_done &= c->done;
            }
            if (all_done)
                break;
            if (now >= give_up) {
                loop_error(l, "runs still not stopped %llu s after the end",
                           (unsigned long long)(DRAIN_NS / SEC_NS));
                break;
            }
        }
    }
    for (unsigned i = 0; i < l->n; i++)
        conn_close(&l->conns[l->first + i]);
    close(l->ep);
    return NULL;
}

typedef struct meas {
    hist_t hist[REQ_COUNT];
    uint64_t cycles, cycles_all, errors;
    double secs;
    char err[ERR_LEN];
} meas_t;

/* Runs one measurement: warm_ns unrecorded, then dur_ns recorded. Returns
 * 0, or -1 when any error happened (m->err says the first). */
static int generate(uint16_t port, const char *path, bool startstop, unsigned clients,
                    unsigned loops, uint64_t warm_ns, uint64_t dur_ns, meas_t *m /* OUT */)
{
    memset(m, 0, sizeof(*m));
    if (loops > clients)
        loops = clients;
    conn_t *conns = calloc(clients, sizeof(conn_t));
    loop_t *ls = calloc(loops, sizeof(loop_t));
    if (conns == NULL || ls == NULL) {
        free(conns);
        free(ls);
        snprintf(m->err, sizeof(m->err), "out of memory");
        return -1;
    }
    for (unsigned i = 0; i < clients; i++)
        conns[i].fd = -1;
    gen_t g = {
        .port = port, .path = path, .startstop = startstop, .clients = clients, .loops = loops};
    g.t_measure = bench_now_ns() + warm_ns;
    g.t_end = g.t_measure + dur_ns;
    for (unsigned i = 0, first = 0; i < loops; i++) {
        unsigned n = clients / loops + (i < clients % loops ? 1u : 0u);
        ls[i] = (loop_t){.g = &g, .conns = conns, .first = first, .n = n, .ep = -1};
        first += n;
        if (pthread_create(&ls[i].th, NULL, loop_main, &ls[i]) != 0) {
            fprintf(stderr, "bench_api: cannot start a client thread\n");
            exit(1);
        }
    }
    for (unsigned i = 0; i < loops; i++) {
        pthread_join(ls[i].th, NULL);
        for (unsigned k = 0; k < REQ_COUNT; k++)
            hist_merge(&m->hist[k], &ls[i].hist[k]);
        m->cycles += ls[i].cycles;
        m->cycles_all += ls[i].cycles_all;
        if (ls[i].errors > 0 && m->errors == 0)
            snprintf(m->err, sizeof(m->err), "%s", ls[i].err);
        m->errors += ls[i].errors;
    }
    m->secs = (double)dur_ns / (double)SEC_NS;
    free(conns);
    free(ls);
    return m->errors == 0 ? 0 : -1;
}

/* -------------------------------------------------------------- servers */

typedef struct server {
    const char *impl; /* "baton" or "bare-mhd" */
    pid_t pid;
    uint16_t port;
    char dir[64]; /* baton: its temporary directory */
    char run_id[ID_MAX];
} server_t;

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("bench_api: free port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* The server's peak resident set (VmHWM) in KiB, or 0. */
static uint64_t server_peak_kb(const server_t *s)
{
    char path[64], line[128];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)s->pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    unsigned long long kb = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
            break;
    }
    fclose(f);
    return kb;
}

static bool server_alive(const server_t *s)
{
    int st;
    return s->pid > 0 && waitpid(s->pid, &st, WNOHANG) == 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* SIGTERM, then SIGKILL after timeout; removes baton's directory unless
 * keep (then its path is printed: the service's log is in it). */
static void server_stop(server_t *s, bool keep)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        uint64_t until = bench_now_ns() + 60ull * SEC_NS;
        int st;
        while (waitpid(s->pid, &st, WNOHANG) == 0) {
            if (bench_now_ns() > until) {
                fprintf(stderr, "bench_api: %s did not stop on SIGTERM; killing it\n", s->impl);
                kill(s->pid, SIGKILL);
                waitpid(s->pid, &st, 0);
                break;
            }
            bench_sleep_ns(10 * MS_NS);
        }
        s->pid = 0;
    }
    if (s->dir[0] != '\0' && keep) {
        fprintf(stderr, "bench_api: kept %s (serve.log: the service's log)\n", s->dir);
        s->dir[0] = '\0';
    } else if (s->dir[0] != '\0') {
        nftw(s->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        s->dir[0] = '\0';
    }
}

/* The service's configuration: the defaults of config.toml (log level
 * info, one HTTP thread per connection, store sync = full, runtime threads
 * = CPUs) except the connection limits (all clients come from 127.0.0.1,
 * and a new measurement's connections may arrive before the server has
 * closed the last one's) and max_running (one run per client, none
 * pending). */
static int write_config(const server_t *s, unsigned clients)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/config.toml", s->dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    unsigned per_ip = 2 * clients + 8;
    fprintf(f,
            "log_level = \"info\"\n\n"
            "[server]\nport = %u\nmax_connections = %u\nmax_connections_per_ip = %u\n\n"
            "[store]\nstate_dir = \"state\"\nsync = \"%s\"\n\n"
            "[executor]\nmax_running = %u\n\n"
            "[jobs.bench_get]\nkind = \"exec\"\n\n"
            "[jobs.bench_get.params]\nargv = [\"/bin/true\"]\n",
            (unsigned)s->port, per_ip < 256 ? 256 : per_ip, per_ip, store_sync, clients + 1);
    for (unsigned i = 0; i < clients; i++)
        fprintf(f,
                "\n[jobs.bench_%u]\nkind = \"exec\"\nmax_active = 1\n\n"
                "[jobs.bench_%u.params]\nargv = [\"/bin/sleep\", \"600\"]\n",
                i, i);
    return fclose(f) == 0 ? 0 : -1;
}

/* Starts baton serve on a free port, waits for /readyz, and creates the
 * run that get_run reads (a /bin/true run, finished). */
static int start_baton(server_t *s, unsigned clients)
{
    memset(s, 0, sizeof(*s));
    s->impl = "baton";
    snprintf(s->dir, sizeof(s->dir), "/tmp/bench-api-XXXXXX");
    if (mkdtemp(s->dir) == NULL) {
        s->dir[0] = '\0';
        perror("bench_api: mkdtemp");
        return -1;
    }
    s->port = free_port();
    if (write_config(s, clients) != 0) {
        perror("bench_api: config");
        return -1;
    }
    char config[128], logpath[128];
    snprintf(config, sizeof(config), "%s/config.toml", s->dir);
    snprintf(logpath, sizeof(logpath), "%s/serve.log", s->dir);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execl(baton_bin, baton_bin, "serve", "--config", config, (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    uint64_t until = bench_now_ns() + READY_NS;
    while (http_once(s->port, "GET", "/readyz", NULL, 0) != 200) {
        if (!server_alive(s) || bench_now_ns() > until) {
            fprintf(stderr, "bench_api: %s serve did not become ready; its log:\n", baton_bin);
            char cmd[160];
            snprintf(cmd, sizeof(cmd), "tail -n 20 '%s' >&2", logpath);
            if (system(cmd) != 0)
                fprintf(stderr, "(no log)\n");
            return -1;
        }
        bench_sleep_ns(20 * MS_NS);
    }
    char body[4096];
    int st = http_once(s->port, "POST", "/v1/jobs/bench_get/runs", body, sizeof(body));
    if (st != 201 || !json_field(body, strlen(body), "id", s->run_id, sizeof(s->run_id))) {
        fprintf(stderr, "bench_api: cannot create the run to read: %d %s\n", st, body);
        return -1;
    }
    char path[ID_MAX + 16], state[32] = "";
    snprintf(path, sizeof(path), "/v1/runs/%s", s->run_id);
    while (strcmp(state, "completed") != 0) {
        if (http_once(s->port, "GET", path, body, sizeof(body)) != 200 || bench_now_ns() > until) {
            fprintf(stderr, "bench_api: the run to read did not complete: %s\n", body);
            return -1;
        }
        json_field(body, strlen(body), "state", state, sizeof(state));
        bench_sleep_ns(10 * MS_NS);
    }
    return 0;
}

/* Starts bare_mhd on a free port (it prints "PORT n"). */
static int start_bare(server_t *s, unsigned clients)
{
    memset(s, 0, sizeof(*s));
    s->impl = "bare-mhd";
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    char per_ip[16];
    snprintf(per_ip, sizeof(per_ip), "%u", 2 * clients + 8);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        execl(bare_bin, bare_bin, "--port", "0", "--per-ip", per_ip, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    s->pid = pid;
    FILE *f = fdopen(p[0], "r");
    unsigned port = 0;
    char line[64];
    if (f == NULL || fgets(line, sizeof(line), f) == NULL || sscanf(line, "PORT %u", &port) != 1 ||
        port == 0 || port > 65535) {
        fprintf(stderr, "bench_api: %s did not start\n", bare_bin);
        if (f != NULL)
            fclose(f);
        return -1;
    }
    fclose(f);
    s->port = (uint16_t)port;
    return 0;
}

/* ------------------------------------------------------------------ wrk */

static bool have_wrk(void)
{
    return system("command -v wrk >/dev/null 2>&1") == 0;
}

/* "1.23ms" -> ns. */
static double wrk_time_ns(const char *s)
{
    char *e;
    double v = strtod(s, &e);
    if (strncmp(e, "us", 2) == 0)
        return v * 1e3;
    if (strncmp(e, "ms", 2) == 0)
        return v * 1e6;
    if (strncmp(e, "s", 1) == 0)
        return v * 1e9;
    if (strncmp(e, "m", 1) == 0)
        return v * 60e9;
    return -1;
}

typedef struct wrk_out {
    double rps, p50_ns, p99_ns;
    uint64_t errors;
} wrk_out_t;

/* Runs wrk for secs seconds against 127.0.0.1:port/path and parses its
 * output. Returns 0, or -1 (the reason printed). */
static int run_wrk(uint16_t port, const char *path, unsigned clients, unsigned threads,
                   unsigned secs, wrk_out_t *out /* OUT */)
{
    memset(out, 0, sizeof(*out));
    out->p50_ns = out->p99_ns = -1;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "wrk -t%u -c%u -d%us --latency 'http://127.0.0.1:%u%s' 2>&1",
             threads, clients, secs, (unsigned)port, path);
    FILE *f = popen(cmd, "r");
    if (f == NULL) {
        fprintf(stderr, "bench_api: cannot run wrk\n");
        return -1;
    }
    char line[256], first_err[256] = "";
    bool in_dist = false;
    while (fgets(line, sizeof(line), f) != NULL) {
        char unit[32];
        double v;
        unsigned long long a, b, c, d;
        if (strstr(line, "Latency Distribution") != NULL) {
            in_dist = true;
        } else if (in_dist && sscanf(line, " 50%% %31s", unit) == 1) {
            out->p50_ns = wrk_time_ns(unit);
        } else if (in_dist && sscanf(line, " 99%% %31s", unit) == 1) {
            out->p99_ns = wrk_time_ns(unit);
            in_dist = false;
        } else if (sscanf(line, "Requests/sec: %lf", &v) == 1) {
            out->rps = v;
        } else if (sscanf(line, " Non-2xx or 3xx responses: %llu", &a) == 1) {
            out->errors += a;
            snprintf(first_err, sizeof(first_err), "%s", line);
        } else if (sscanf(line, " Socket errors: connect %llu, read %llu, write %llu, timeout %llu",
                          &a, &b, &c, &d) == 4) {
            out->errors += a + b + c + d;
            snprintf(first_err, sizeof(first_err), "%s", line);
        }
    }
    int st = pclose(f);
    if (st != 0 || out->rps <= 0 || out->p50_ns < 0 || out->p99_ns < 0) {
        fprintf(stderr, "bench_api: wrk failed or printed no figures (%s)\n", cmd);
        return -1;
    }
    if (out->errors > 0) {
        fprintf(stderr, "bench_api: wrk saw %llu errors: %s", (unsigned long long)out->errors,
                first_err);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ workloads */

typedef struct opts {
    unsigned clients, loops;
    uint64_t warm_ns, dur_ns;
    uint64_t ss_warm_ns, ss_dur_ns; /* startstop's: its cycles take far longer */
    unsigned ss_clients;
} opts_t;

typedef enum wl {
    WL_GET_RUN,
    WL_HEALTHZ,
    WL_STARTSTOP,
    WL_WRK_GET_RUN,
    WL_WRK_HEALTHZ,
    WL_COUNT
} wl_t;

static const char *const wl_names[WL_COUNT] = {
    [WL_GET_RUN] = "get_run",         [WL_HEALTHZ] = "healthz",
    [WL_STARTSTOP] = "startstop",     [WL_WRK_GET_RUN] = "wrk_get_run",
    [WL_WRK_HEALTHZ] = "wrk_healthz",
};

static const char *const wl_what[WL_COUNT] = {
    [WL_GET_RUN] = "GET /v1/runs/{id} (baton) and the same request to bare_mhd",
    [WL_HEALTHZ] = "GET /healthz (baton) and the same request to bare_mhd",
    [WL_STARTSTOP] = "POST start + POST stop cycles, one exec job per client (baton)",
    [WL_WRK_GET_RUN] = "get_run measured by wrk, both servers",
    [WL_WRK_HEALTHZ] = "healthz measured by wrk, both servers",
};

static void report_peak(const server_t *s, const char *wl, const char *args)
{
    printf("PEAK impl=%s workload=%s args=%s rss_kb=%llu\n", s->impl, wl, args,
           (unsigned long long)server_peak_kb(s));
    fflush(stdout);
}

/* One GET measurement on one server; run_id is baton's run, whose path
 * bare_mhd gets too (the same request bytes). Returns 0 or -1. */
static int measure_get(const server_t *s, const char *run_id, wl_t wl, const opts_t *o, bool report)
{
    char path[ID_MAX + 16], args[16];
    snprintf(args, sizeof(args), "%u", o->clients);
    bool is_run = wl == WL_GET_RUN || wl == WL_WRK_GET_RUN;
    if (is_run)
        snprintf(path, sizeof(path), "/v1/runs/%s", run_id);
    else
        snprintf(path, sizeof(path), "/healthz");
    double rps, p50, p99;
    if (wl == WL_WRK_GET_RUN || wl == WL_WRK_HEALTHZ) {
        wrk_out_t w;
        /* wrk has no warm-up of its own: a short unreported run first. */
        if (run_wrk(s->port, path, o->clients, o->loops, 1, &w) != 0)
            return -1;
        unsigned secs = (unsigned)((o->dur_ns + SEC_NS / 2) / SEC_NS);
        if (run_wrk(s->port, path, o->clients, o->loops, secs < 1 ? 1 : secs, &w) != 0)
            return -1;
        rps = w.rps;
        p50 = w.p50_ns;
        p99 = w.p99_ns;
    } else {
        meas_t *m = malloc(sizeof(*m));
        if (m == NULL)
            return -1;
        if (generate(s->port, path, false, o->clients, o->loops, o->warm_ns, o->dur_ns, m) != 0) {
            fprintf(stderr, "bench_api: %s %s: %llu errors; the first: %s\n", s->impl, wl_names[wl],
                    (unsigned long long)m->errors, m->err);
            free(m);
            return -1;
        }
        rps = (double)m->hist[REQ_GET].total / m->secs;
        p50 = hist_percentile(&m->hist[REQ_GET], 50);
        p99 = hist_percentile(&m->hist[REQ_GET], 99);
        free(m);
        if (rps <= 0) {
            fprintf(stderr, "bench_api: %s %s: no answer at all\n", s->impl, wl_names[wl]);
            return -1;
        }
    }
    fprintf(stderr, "bench_api: %-8s %-11s %9.0f req/s  p50 %8.1f us  p99 %8.1f us%s\n", s->impl,
            wl_names[wl], rps, p50 / 1e3, p99 / 1e3, report ? "" : "  (warm-up)");
    if (report) {
        bench_impl = s->impl;
        bench_result(wl_names[wl], args, "req_per_s", rps);
        bench_result(wl_names[wl], args, "p50_us", p50 / 1e3);
        bench_result(wl_names[wl], args, "p99_us", p99 / 1e3);
        report_peak(s, wl_names[wl], args);
    }
    return 0;
}

/* Stops every active run (setup, not measured): a start whose connection
 * was lost, or a stop that failed, in an earlier measurement may have left
 * a run that would make each later start of its job a 409. Returns the
 * number stopped, or -1 when the list cannot be read. */
static int stop_leftovers(const server_t *s)
{
    static char body[IN_CAP];
    int stopped = 0;
    for (int pass = 0; pass < 100; pass++) {
        /* Small pages: an answer must fit http_once's buffer. */
        int st = http_once(s->port, "GET", "/v1/runs?state=pending,running,paused&limit=20", body,
                           sizeof(body));
        if (st != 200)
            return -1;
        int found = 0;
        const char *p = body;
        char id[ID_MAX], path[ID_MAX + 32];
        while ((p = strstr(p, "\"id\":")) != NULL) {
            if (json_field(p, strlen(p), "id", id, sizeof(id))) {
                snprintf(path, sizeof(path), "/v1/runs/%s/stop", id);
                if (http_once(s->port, "POST", path, NULL, 0) == 200)
                    stopped++;
                found++;
            }
            p += 5;
        }
        if (found == 0)
            return stopped;
    }
    return stopped;
}

static int measure_startstop(const server_t *s, const opts_t *o, bool report)
{
    char args[16];
    snprintf(args, sizeof(args), "%u", o->ss_clients);
    int left = stop_leftovers(s);
    if (left < 0) {
        fprintf(stderr, "bench_api: cannot list the active runs\n");
        return -1;
    }
    if (left > 0)
        fprintf(stderr, "bench_api: stopped %d run(s) left by an earlier error\n", left);
    meas_t *m = malloc(sizeof(*m));
    if (m == NULL)
        return -1;
    if (generate(s->port, NULL, true, o->ss_clients, o->loops, o->ss_warm_ns, o->ss_dur_ns, m) !=
        0) {
        fprintf(stderr, "bench_api: baton startstop: %llu errors; the first: %s\n",
                (unsigned long long)m->errors, m->err);
        free(m);
        return -1;
    }
    double cps = (double)m->cycles / m->secs;
    unsigned long long all = (unsigned long long)m->cycles_all;
    double s50 = hist_percentile(&m->hist[REQ_START], 50) / 1e3;
    double s99 = hist_percentile(&m->hist[REQ_START], 99) / 1e3;
    double t50 = hist_percentile(&m->hist[REQ_STOP], 50) / 1e3;
    double t99 = hist_percentile(&m->hist[REQ_STOP], 99) / 1e3;
    fprintf(stderr,
            "bench_api: baton    startstop   %9.1f cycles/s  start p50 %.1f us p99 %.1f us  "
            "stop p50 %.1f us p99 %.1f us%s\n",
            cps, s50, s99, t50, t99, report ? "" : "  (warm-up)");
    free(m);
    if (cps <= 0) {
        fprintf(stderr,
                "bench_api: baton startstop: no cycle completed inside the window (%llu in "
                "all)\n",
                all);
        return -1;
    }
    if (report) {
        bench_impl = s->impl;
        bench_result("startstop", args, "cycles_per_s", cps);
        bench_result("startstop", args, "start_p50_us", s50);
        bench_result("startstop", args, "start_p99_us", s99);
        bench_result("startstop", args, "stop_p50_us", t50);
        bench_result("startstop", args, "stop_p99_us", t99);
        report_peak(s, "startstop", args);
    }
    return 0;
}

/* ----------------------------------------------------------------- main */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_api --list\n"
            "       bench_api --short [--baton PATH] [--bare PATH]\n"
            "       bench_api [--warmup W] [--runs R] [--clients C] [--loops L] [--warm-ms MS]\n"
            "                 [--duration-ms MS] [--sync full|normal|off] [--baton PATH]\n"
            "                 [--bare PATH] [WORKLOAD...]\n"
            "workloads (default: all; the wrk ones only when wrk is on PATH):\n");
    for (unsigned i = 0; i < WL_COUNT; i++)
        fprintf(stderr, "  %-12s %s\n", wl_names[i], wl_what[i]);
    exit(2);
}

static unsigned long long parse_num(const char *s, unsigned long long lo, unsigned long long hi)
{
    char *e;
    if (s == NULL || *s < '0' || *s > '9')
        usage();
    unsigned long long v = strtoull(s, &e, 10);
    if (*e != '\0' || v < lo || v > hi)
        usage();
    return v;
}

int main(int argc, char **argv)
{
    opts_t o = {.clients = 64, .loops = 2, .warm_ns = SEC_NS, .dur_ns = 5 * SEC_NS};
    unsigned warmup = 0, runs = 1;
    bool want[WL_COUNT] = {false}, any = false, short_mode = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--list") == 0) {
            for (unsigned k = 0; k < WL_COUNT; k++)
                printf("%s\n", wl_names[k]);
            return 0;
        } else if (strcmp(a, "--short") == 0) {
            short_mode = true;
        } else if (strcmp(a, "--warmup") == 0) {
            warmup = (unsigned)parse_num(v, 0, 100), i++;
        } else if (strcmp(a, "--runs") == 0) {
            runs = (unsigned)parse_num(v, 1, 1000), i++;
        } else if (strcmp(a, "--clients") == 0) {
            o.clients = (unsigned)parse_num(v, 1, MAX_CLIENTS), i++;
        } else if (strcmp(a, "--loops") == 0) {
            o.loops = (unsigned)parse_num(v, 1, MAX_LOOPS), i++;
        } else if (strcmp(a, "--warm-ms") == 0) {
            o.warm_ns = parse_num(v, 0, 600000) * MS_NS, i++;
        } else if (strcmp(a, "--duration-ms") == 0) {
            o.dur_ns = parse_num(v, 100, 3600000) * MS_NS, i++;
        } else if (strcmp(a, "--baton") == 0 && v != NULL) {
            baton_bin = v, i++;
        } else if (strcmp(a, "--sync") == 0 && v != NULL) {
            if (strcmp(v, "full") != 0 && strcmp(v, "normal") != 0 && strcmp(v, "off") != 0)
                usage();
            store_sync = v, i++;
        } else if (strcmp(a, "--bare") == 0 && v != NULL) {
            bare_bin = v, i++;
        } else {
            unsigned k = 0;
            while (k < WL_COUNT && strcmp(a, wl_names[k]) != 0)
                k++;
            if (k == WL_COUNT) {
                fprintf(stderr, "bench_api: unknown workload or option '%s'\n", a);
                usage();
            }
            want[k] = any = true;
        }
    }
    o.ss_warm_ns = o.warm_ns;
    o.ss_dur_ns = o.dur_ns;
    o.ss_clients = o.clients;
    bool wrk = have_wrk();
    if (short_mode) {
        /* A smoke test: every own-generator workload once, briefly. */
        warmup = 0;
        runs = 1;
        o.warm_ns = 200 * MS_NS;
        o.dur_ns = 500 * MS_NS;
        /* A cycle may take a second on a loaded machine: a longer window,
         * so that some complete inside it. */
        o.ss_warm_ns = 500 * MS_NS;
        o.ss_dur_ns = 3 * SEC_NS;
        /* One client per HTTP thread: with more, a complete request can
         * wait behind other clients' blocking starts on its MHD worker past
         * the 10 s request deadline on a loaded machine, and the service
         * cuts the connection (a service issue the full run reports; the
         * smoke test checks that start and stop work). */
        o.ss_clients = o.clients < 8 ? o.clients : 8;
        if (!any)
            want[WL_GET_RUN] = want[WL_HEALTHZ] = want[WL_STARTSTOP] = any = true;
    }
    if (!any) {
        for (unsigned k = 0; k < WL_COUNT; k++)
            want[k] = true;
        if (!wrk) {
            fprintf(stderr, "bench_api: wrk is not on PATH: no wrk cross-check\n");
            want[WL_WRK_GET_RUN] = want[WL_WRK_HEALTHZ] = false;
        }
    } else if (!wrk && (want[WL_WRK_GET_RUN] || want[WL_WRK_HEALTHZ])) {
        fprintf(stderr, "bench_api: wrk is not on PATH (Debian package wrk)\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    server_t baton = {.impl = "baton"}, bare = {.impl = "bare-mhd"};
    bool need_bare =
        want[WL_GET_RUN] || want[WL_HEALTHZ] || want[WL_WRK_GET_RUN] || want[WL_WRK_HEALTHZ];
    int failed = 0;
    if (start_baton(&baton, o.clients) != 0 || (need_bare && start_bare(&bare, o.clients) != 0)) {
        server_stop(&baton, true);
        server_stop(&bare, false);
        return 1;
    }
    fprintf(stderr,
            "bench_api: %u clients, %u client threads, %.1f s warm-up + %.1f s per measurement; "
            "baton on port %u, bare_mhd on port %u; run %s\n",
            o.clients, o.loops, (double)o.warm_ns / SEC_NS, (double)o.dur_ns / SEC_NS,
            (unsigned)baton.port, (unsigned)bare.port, baton.run_id);
    for (unsigned r = 0; r < warmup + runs; r++) {
        bool report = r >= warmup;
        for (unsigned k = 0; k < WL_COUNT; k++) {
            if (!want[k])
                continue;
            if (k == WL_STARTSTOP) {
                failed |= measure_startstop(&baton, &o, report) != 0;
                continue;
            }
            /* Alternate which server goes first, round after round. */
            const server_t *first = r % 2 == 0 ? &baton : &bare;
            const server_t *second = r % 2 == 0 ? &bare : &baton;
            failed |= measure_get(first, baton.run_id, (wl_t)k, &o, report) != 0;
            failed |= measure_get(second, baton.run_id, (wl_t)k, &o, report) != 0;
        }
        if (!server_alive(&baton) || (need_bare && !server_alive(&bare))) {
            fprintf(stderr, "bench_api: a server died\n");
            failed = 1;
            break;
        }
    }
    server_stop(&bare, false);
    server_stop(&baton, failed != 0);
    return failed ? 1 : 0;
}
