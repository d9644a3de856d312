/*
 * http.c: the service's hardened HTTP/1.1 server on libmicrohttpd (MHD)
 * 0.9.75. See http.h for the contract.
 *
 * DESIGN
 * Threads: one per connection (MHD_USE_THREAD_PER_CONNECTION). MHD's
 * listening thread polls the listen socket, accepts, runs the accept policy
 * and the STARTED/CLOSED notifications (it also joins finished connection
 * threads and cleans them up); each connection then has its own thread,
 * which polls only its socket and runs the access handler, the URI and
 * COMPLETED callbacks and the user handler. So a handler that blocks (an
 * ask to the executor; a stop may wait out a job's stop grace) holds up only
 * its own connection: other requests, and the deadline of requests still
 * arriving, are not queued behind it. Connections are capped at
 * max_connections, so threads are too. Thread-per-connection does not
 * support epoll; the threads use poll() (select() would fail on fds past
 * FD_SETSIZE). One extra thread, the watchdog, enforces the absolute
 * request deadline. bt_http_stop() stops MHD (MHD_stop_daemon closes every
 * connection and joins every thread) and then joins the watchdog.
 *
 * Per connection we keep a conn_t, created by the STARTED notification,
 * freed by the CLOSED one, and linked into the server's table under
 * s->lock. Its phase says whether the deadline is armed:
 *   REQ       receiving a request (armed: deadline_ms from accept, or from
 *             the request line of a keep-alive request);
 *   HANDLING  the request is complete; handler and response (disarmed);
 *   WAIT      between keep-alive requests (armed with idle + deadline: MHD's
 *             idle timeout closes a silent connection first, so this only
 *             catches a client that trickles the next request line).
 * The watchdog calls shutdown(fd, SHUT_RDWR) on an armed connection past its
 * deadline; MHD then sees EOF/error on its next read and closes it.
 *
 * fd reuse: the watchdog only touches an fd while holding s->lock and while
 * the conn_t is in the table. The CLOSED notification takes s->lock to unlink
 * the conn_t, and MHD 0.9.75 calls it before it closes the socket
 * (MHD_cleanup_connections, on the listening thread after it has joined the
 * connection's thread, and the cleanup path for a connection thread that
 * could not be created: notify_connection(...CLOSED) precedes
 * MHD_socket_close_chk_; checked in the MHD source and at run time in this
 * thread mode: the fd is still an open socket inside the callback). So an
 * fd in the table is always still this connection's socket, never a reused
 * number.
 *
 * Per request we keep a req_t (the opaque bt_http_req_t), created by the
 * access handler's first call and freed by the NOTIFY_COMPLETED callback.
 *
 * MHD 0.9.75 behaviours this file relies on or works around:
 *   - MHD_queue_response() only works in the handler's first call (before
 *     the body) or its last call; mid-body it fails. So a Content-Length over
 *     max_body gets 413 at once, but a chunked body that grows past max_body
 *     is drained (not stored) until it ends and then gets 413; past a drain
 *     allowance the connection is closed without a reply.
 *   - Headers larger than the connection memory pool get MHD's own 431 (an
 *     HTML body). The pool is sized at about twice max_header, so headers
 *     over max_header reach the access handler, which answers 431 in JSON;
 *     MHD's 431 is only the backstop for far larger ones.
 *   - At MHD_OPTION_CONNECTION_LIMIT the listening thread stops accepting
 *     and new clients wait in the kernel backlog. To refuse them instead,
 *     MHD's limit is set one higher (max_connections + 1) and the accept
 *     policy callback closes connections past max_connections at once.
 *   - MHD_quiesce_daemon() (needs MHD_USE_ITC in this mode) hands back the
 *     listen socket, which must stay open until MHD_stop_daemon() has
 *     returned (MHD's threads may still hold it); MHD does not close it.
 *     Left as it is, the kernel keeps completing handshakes into the backlog
 *     that nobody accepts, so bt_http_quiesce() shuts it down (new clients
 *     get a refused connection at once) and bt_http_stop() closes it.
 *   - With MHD_OPTION_STRICT_FOR_CLIENT at 0 (the default), a request without
 *     Host reaches the access handler, which refuses it with 403.
 */
#define _GNU_SOURCE
#include "server/http.h"

#include "log.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_BODY     (1024u * 1024u)
#define DEFAULT_MAX_HEADER   (16u * 1024u)
#define DEFAULT_MAX_CONNS    256u
#define DEFAULT_MAX_PER_IP   64u
#define DEFAULT_DEADLINE_MS  10000u
#define DEFAULT_IDLE_S       30u
#define MIN_DRAIN_ALLOWANCE  (64u * 1024u)
#define PEER_LEN             (INET6_ADDRSTRLEN + 10)
#define START_ERR_LEN        256
#define WATCHDOG_MAX_TICK_MS 100u

/* Stack of each connection thread. The handler's deepest path is cJSON
 * (bounded nesting) under the API handler; 1 MiB is ample. Sanitizer builds
 * grow frames several times over, so they keep the system default (0). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CONN_STACK_SIZE ((size_t)0)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CONN_STACK_SIZE ((size_t)0)
#endif
#endif
#ifndef CONN_STACK_SIZE
#define CONN_STACK_SIZE ((size_t)1024u * 1024u)
#endif

/* Always-on invariant check (cheap; STYLE.md "Asserts"). */
#define HTTP_ASSERT(c)                                                                             \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef enum phase { PHASE_REQ, PHASE_HANDLING, PHASE_WAIT } phase_t;

typedef struct conn {
    struct conn *prev, *next; /* in s->conns, under s->lock */
    int fd;
    phase_t phase;     /* under s->lock */
    uint64_t start_ms; /* when the armed phase began; under s->lock */
    bool cut;          /* the watchdog shut it down; under s->lock */
    char peer[PEER_LEN];
} conn_t;

struct bt_http_req {
    struct MHD_Connection *mc;
    conn_t *conn; /* may be NULL if its allocation failed */
    const char *method;
    const char *path;
    char *body;
    size_t body_len, body_cap;
    size_t drained; /* bytes discarded after the body passed max_body */
    bool too_large; /* the streamed body passed max_body */
    bool responded; /* a response is queued; ignore further calls */
    uint64_t t0_ms;
    /* A request built by bt_http_req_new() (mc == NULL): its arguments and
     * headers, as name/value pairs. */
    const char *const *fake_query;
    const char *const *fake_headers;
};

struct bt_http_server {
    struct MHD_Daemon *daemon;
    bt_http_handler_fn handler;
    void *ctx;

    char *token; /* NULL = none */
    size_t token_len;
    char **hosts; /* lowercase, without brackets */
    uint32_t nhosts;
    char **public_paths;
    uint32_t npublic;
    size_t max_body, max_header;
    uint32_t max_connections;
    uint64_t deadline_ms, wait_ms, tick_ms;
    uint16_t port;

    pthread_mutex_t lock; /* guards conns, every conn_t's phase/start/cut, stopping */
    pthread_cond_t wake;  /* wakes the watchdog: first connection, or stop */
    conn_t *conns;
    bool stopping;
    pthread_t watchdog;

    atomic_bool quiesced;
    MHD_socket listen_fd; /* from MHD_quiesce_daemon; closed by bt_http_stop */
    atomic_uint_fast64_t requests, rejected, cutoffs, connections;
    atomic_uint open_connections;
};

/* ------------------------------------------------------------------ util */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d != NULL)
        memcpy(d, s, n + 1);
    return d;
}

static void free_strv(char **v, uint32_t n)
{
    if (v == NULL)
        return;
    for (uint32_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void format_peer(const struct sockaddr *sa, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN], serv[8];
    socklen_t len =
        sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(out, outlen, "?");
        return;
    }
    if (sa->sa_family == AF_INET6)
        snprintf(out, outlen, "[%s]:%s", host, serv);
    else
        snprintf(out, outlen, "%s:%s", host, serv);
}

/* One info line per refusal; status 0 = closed without a response. */
static void log_refused(int status, const char *reason, const char *peer, const char *method,
                        const char *path)
{
    if (!bt_log_enabled(BT_LOG_INFO))
        return;
    char st[12];
    snprintf(st, sizeof(st), "%d", status);
    if (method != NULL)
        bt_log(BT_LOG_INFO, "http.refused", "status", st, "reason", reason, "peer", peer, "method",
               method, "path", path, NULL);
    else
        bt_log(BT_LOG_INFO, "http.refused", "status", st, "reason", reason, "peer", peer, NULL);
}

/* Constant-time token check. The loop runs over the presented token, so its
 * time depends only on what the client sent, never on the secret's length;
 * a length mismatch is folded into the same accumulator instead of
 * returning early. expected_len > 0. */
static bool token_equal(const char *expected, size_t expected_len, const char *given,
                        size_t given_len)
{
    volatile size_t diff = expected_len ^ given_len;
    for (size_t i = 0; i < given_len; i++)
        diff |= (size_t)((unsigned char)given[i] ^ (unsigned char)expected[i % expected_len]);
    return diff == 0;
}

static bool is_loopback(const char *address)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, address, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, address, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
    }
    return false;
}

/* -------------------------------------------------------------- responses */

void bt_http_resp_text(bt_http_resp_t *resp, int status, const char *content_type, const char *text,
                       size_t len)
{
    free(resp->body);
    resp->status = status;
    resp->content_type = content_type;
    resp->body = malloc(len + 1);
    resp->body_len = 0;
    if (resp->body == NULL) {
        resp->status = 500;
        return;
    }
    memcpy(resp->body, text, len);
    resp->body[len] = '\0';
    resp->body_len = len;
}

void bt_http_resp_take(bt_http_resp_t *resp, int status, char *json)
{
    free(resp->body);
    resp->status = status;
    resp->content_type = NULL;
    resp->body = json;
    resp->body_len = json != NULL ? strlen(json) : 0;
    if (json == NULL && status < 300)
        resp->status = 500; /* a failed cJSON_Print* is an internal error */
}

static char *error_json(const char *code, const char *message)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(root, "error");
    char *out = NULL;
    if (err != NULL && cJSON_AddStringToObject(err, "code", code) != NULL &&
        cJSON_AddStringToObject(err, "message", message) != NULL)
        out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

static void resp_error_msg(bt_http_resp_t *resp, int status, const char *code, const char *message)
{
    free(resp->body);
    resp->status = status;
    resp->content_type = NULL;
    resp->body = error_json(code, message);
    resp->body_len = resp->body != NULL ? strlen(resp->body) : 0;
}

void bt_http_resp_error(bt_http_resp_t *resp, int status, const char *code, const char *fmt, ...)
{
    char small[256];
    char *msg = small;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(small)) {
        char *big = malloc((size_t)n + 1);
        if (big != NULL) {
            va_start(ap, fmt);
            vsnprintf(big, (size_t)n + 1, fmt, ap);
            va_end(ap);
            msg = big;
        }
    } else if (n < 0) {
        small[0] = '\0';
    }
    resp_error_msg(resp, status, code, msg);
    if (msg != small)
        free(msg);
}

void bt_http_resp_header(bt_http_resp_t *resp, const char *name, const char *value)
{
    if (resp->nheaders >= BT_HTTP_MAX_HEADERS_OUT || name == NULL || value == NULL)
        return;
    /* A CR or LF would split the response; refuse the header outright. */
    if (strpbrk(value, "\r\n") != NULL)
        return;
    resp->headers[resp->nheaders].name = name;
    snprintf(resp->headers[resp->nheaders].value, sizeof(resp->headers[0].value), "%s", value);
    resp->nheaders++;
}

/* Queues resp on mc and releases its body. Returns MHD_YES or MHD_NO. */
static enum MHD_Result send_resp(struct MHD_Connection *mc, bt_http_resp_t *resp)
{
    struct MHD_Response *r;
    if (resp->body != NULL && resp->body_len > 0)
        r = MHD_create_response_from_buffer_with_free_callback(resp->body_len, resp->body, free);
    else
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        free(resp->body);
        resp->body = NULL;
        return MHD_NO;
    }
    if (resp->body != NULL && resp->body_len == 0)
        free(resp->body);
    resp->body = NULL; /* now owned by r (or freed) */

    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            resp->content_type != NULL ? resp->content_type : "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    for (uint32_t i = 0; i < resp->nheaders && i < BT_HTTP_MAX_HEADERS_OUT; i++)
        MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
    enum MHD_Result ok = MHD_queue_response(mc, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ok;
}

/* ---------------------------------------------------------------- request */

const char *bt_http_method(const bt_http_req_t *r)
{
    return r->method;
}

const char *bt_http_path(const bt_http_req_t *r)
{
    return r->path;
}

/* The value of name in a NULL-terminated name/value list; headers match
 * case-insensitively, as MHD does. */
static const char *fake_lookup(const char *const *kv, const char *name, bool icase)
{
    for (; kv != NULL && kv[0] != NULL && kv[1] != NULL; kv += 2) {
        if (icase ? strcasecmp(kv[0], name) == 0 : strcmp(kv[0], name) == 0)
            return kv[1];
    }
    return NULL;
}

const char *bt_http_query(const bt_http_req_t *r, const char *key)
{
    if (r->mc == NULL)
        return fake_lookup(r->fake_query, key, false);
    return MHD_lookup_connection_value(r->mc, MHD_GET_ARGUMENT_KIND, key);
}

const char *bt_http_header(const bt_http_req_t *r, const char *name)
{
    if (r->mc == NULL)
        return fake_lookup(r->fake_headers, name, true);
    return MHD_lookup_connection_value(r->mc, MHD_HEADER_KIND, name);
}

bt_http_req_t *bt_http_req_new(const char *method, const char *path, const char *const *query,
                               const char *const *headers, const char *body, size_t body_len)
{
    bt_http_req_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->body = malloc(body_len + 1);
    if (r->body == NULL) {
        free(r);
        return NULL;
    }
    if (body_len > 0)
        memcpy(r->body, body, body_len);
    r->body[body_len] = '\0';
    r->body_len = body_len;
    r->body_cap = body_len + 1;
    r->method = method;
    r->path = path;
    r->fake_query = query;
    r->fake_headers = headers;
    return r;
}

void bt_http_req_free(bt_http_req_t *r)
{
    if (r == NULL)
        return;
    free(r->body);
    free(r);
}

void bt_http_resp_deinit(bt_http_resp_t *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}

const char *bt_http_body(const bt_http_req_t *r, size_t *len)
{
    if (len != NULL)
        *len = r->body != NULL ? r->body_len : 0;
    return r->body != NULL ? r->body : "";
}

/* ------------------------------------------------------------ connections */

static conn_t *conn_of(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? (conn_t *)ci->socket_context : NULL;
}

/* MHD_OPTION_NOTIFY_CONNECTION; runs on MHD's listening thread (STARTED
 * right after the accept, before the connection's thread starts; CLOSED
 * after that thread has been joined). */
static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    bt_http_server_t *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        atomic_fetch_add(&s->connections, 1);
        atomic_fetch_add(&s->open_connections, 1);
        conn_t *c = calloc(1, sizeof(*c));
        *socket_context = c;
        if (c == NULL) {
            bt_log(BT_LOG_WARN, "http.untracked", "reason", "out of memory", NULL);
            return;
        }
        const union MHD_ConnectionInfo *fi =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *ai =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        c->fd = fi != NULL ? fi->connect_fd : -1;
        if (ai != NULL && ai->client_addr != NULL)
            format_peer(ai->client_addr, c->peer, sizeof(c->peer));
        else
            snprintf(c->peer, sizeof(c->peer), "?");
        c->phase = PHASE_REQ;
        c->start_ms = now_ms();
        pthread_mutex_lock(&s->lock);
        if (s->conns == NULL)
            pthread_cond_signal(&s->wake); /* the watchdog sleeps while there are none */
        c->next = s->conns;
        if (s->conns != NULL)
            s->conns->prev = c;
        s->conns = c;
        pthread_mutex_unlock(&s->lock);
        return;
    }
    /* CLOSED: MHD has not closed the fd yet (see the file comment), and
     * after this unlink under s->lock the watchdog can no longer reach it. */
    atomic_fetch_sub(&s->open_connections, 1);
    conn_t *c = *socket_context;
    if (c == NULL)
        return;
    /* The watchdog's fd safety rests on this; one fcntl per close. */
    HTTP_ASSERT(c->fd < 0 || fcntl(c->fd, F_GETFD) != -1);
    pthread_mutex_lock(&s->lock);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&s->lock);
    free(c);
    *socket_context = NULL;
}

/* MHD_OPTION_URI_LOG_CALLBACK: the request line of a new request has
 * arrived. A keep-alive connection waiting for its next request is re-armed
 * with a fresh deadline; the first request keeps the one from accept. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
    bt_http_server_t *s = cls;
    conn_t *c = conn_of(mc);
    if (c == NULL)
        return NULL;
    pthread_mutex_lock(&s->lock);
    if (c->phase == PHASE_WAIT) {
        c->phase = PHASE_REQ;
        c->start_ms = now_ms();
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static void set_phase(bt_http_server_t *s, conn_t *c, phase_t phase)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    c->phase = phase;
    c->start_ms = now_ms();
    pthread_mutex_unlock(&s->lock);
}

/* MHD_OPTION_NOTIFY_COMPLETED: the response went out (or the request was
 * abandoned). Frees the req_t and arms the keep-alive wait. */
static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    bt_http_server_t *s = cls;
    conn_t *c = conn_of(mc);
    set_phase(s, c, PHASE_WAIT);
    bt_http_req_t *r = *con_cls;
    if (r == NULL) {
        /* MHD answered this request itself (431 past the memory pool, 400
         * for a malformed request) without calling on_request. */
        const union MHD_ConnectionInfo *si =
            toe == MHD_REQUEST_TERMINATED_WITH_ERROR
                ? MHD_get_connection_info(mc, MHD_CONNECTION_INFO_HTTP_STATUS)
                : NULL;
        if (si != NULL && si->http_status >= 400) {
            atomic_fetch_add(&s->rejected, 1);
            log_refused((int)si->http_status, "protocol", c != NULL ? c->peer : "?", NULL, NULL);
        }
        return;
    }
    free(r->body);
    free(r);
    *con_cls = NULL;
}

/* Accept policy: closes connections past max_connections at once instead of
 * leaving them in the backlog. It runs on MHD's listening thread, the only
 * one that accepts, and open_connections moves only on that thread too
 * (STARTED, CLOSED), so the count is exact here; MHD's own limit
 * (max_connections + 1) is never reached and stays a backstop. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    bt_http_server_t *s = cls;
    if (atomic_load(&s->open_connections) < s->max_connections)
        return MHD_YES;
    atomic_fetch_add(&s->rejected, 1);
    char peer[PEER_LEN];
    format_peer(addr, peer, sizeof(peer));
    log_refused(0, "connection_limit", peer, NULL, NULL);
    return MHD_NO;
}

/* Set by bt_http_start() on its own thread while MHD_start_daemon runs, so
 * the logger can hand MHD's start-up error back in err. */
static _Thread_local char *start_err;

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[START_ERR_LEN];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r' || msg[n - 1] == '.'))
        msg[--n] = '\0';
    if (start_err != NULL) /* the last message is the one that failed */
        snprintf(start_err, START_ERR_LEN, "%s", msg);
    /* Past MHD_OPTION_CONNECTION_LIMIT (a backstop; on_accept refuses
     * first) or the per-IP limit, MHD closes the connection itself and says
     * so here. */
    if (strncmp(msg, "Server reached connection limit", 31) == 0) {
        bt_http_server_t *s = cls;
        atomic_fetch_add(&s->rejected, 1);
        log_refused(0, "connection_limit", "?", NULL, NULL);
        return;
    }
    bt_log(BT_LOG_DEBUG, "http.mhd", "msg", msg, NULL);
}

/* ------------------------------------------------------------- the checks */

/* Host: exactly one header, host part in the allowlist (any port). */
static bool host_allowed(const bt_http_server_t *s, const char *value)
{
    if (value == NULL || value[0] == '\0')
        return false;
    const char *host = value, *rest;
    size_t hlen;
    if (value[0] == '[') {
        const char *close = strchr(value, ']');
        if (close == NULL)
            return false;
        host = value + 1;
        hlen = (size_t)(close - host);
        rest = close + 1;
    } else {
        rest = strchr(value, ':');
        if (rest == NULL)
            rest = value + strlen(value);
        hlen = (size_t)(rest - value);
    }
    if (*rest == ':') {
        rest++;
        if (*rest == '\0' || strlen(rest) > 5 || strspn(rest, "0123456789") != strlen(rest))
            return false;
    } else if (*rest != '\0') {
        return false;
    }
    if (hlen == 0)
        return false;
    for (uint32_t i = 0; i < s->nhosts; i++) {
        if (strlen(s->hosts[i]) == hlen && strncasecmp(s->hosts[i], host, hlen) == 0)
            return true;
    }
    return false;
}

static bool token_ok(const bt_http_server_t *s, const char *auth)
{
    if (auth == NULL || strncasecmp(auth, "Bearer", 6) != 0 || (auth[6] != ' ' && auth[6] != '\t'))
        return false;
    const char *tok = auth + 6;
    while (*tok == ' ' || *tok == '\t')
        tok++;
    size_t len = strlen(tok);
    while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
        len--;
    return token_equal(s->token, s->token_len, tok, len);
}

static bool is_public(const bt_http_server_t *s, const char *path)
{
    for (uint32_t i = 0; i < s->npublic; i++) {
        if (strcmp(s->public_paths[i], path) == 0)
            return true;
    }
    return false;
}

typedef struct header_scan {
    size_t bytes;
    unsigned hosts;
} header_scan_t;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    header_scan_t *h = cls;
    h->bytes += strlen(key) + (value != NULL ? strlen(value) : 0) + 4; /* ": " CRLF */
    if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
        h->hosts++;
    return MHD_YES;
}

/* Answers a refusal from the server itself: counts, logs, queues. */
static enum MHD_Result refuse(bt_http_server_t *s, bt_http_req_t *r, int status, const char *code,
                              const char *reason, const char *message)
{
    atomic_fetch_add(&s->rejected, 1);
    log_refused(status, reason, r->conn != NULL ? r->conn->peer : "?", r->method, r->path);
    bt_http_resp_t resp = {0};
    resp_error_msg(&resp, status, code, message);
    if (status == 401)
        bt_http_resp_header(&resp, "WWW-Authenticate", "Bearer realm=\"baton\"");
    /* A refused client gets no second request on this connection. */
    bt_http_resp_header(&resp, "Connection", "close");
    r->responded = true;
    set_phase(s, r->conn, PHASE_HANDLING);
    return send_resp(r->mc, &resp);
}

/* First call: the headers are in. Host, then token, then sizes. Returns
 * true if the request was refused (a response is queued in *ret). */
static bool check_request(bt_http_server_t *s, bt_http_req_t *r, const char *version,
                          enum MHD_Result *ret)
{
    header_scan_t h = {0};
    MHD_get_connection_values(r->mc, MHD_HEADER_KIND, scan_header, &h);
    const char *host = MHD_lookup_connection_value(r->mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (h.hosts != 1 || !host_allowed(s, host)) {
        *ret = refuse(s, r, 403, "forbidden", h.hosts == 0 ? "no_host" : "host",
                      h.hosts == 0 ? "a Host header is required"
                                   : "the Host header names a host this server does not serve");
        return true;
    }
    if (s->token != NULL && !is_public(s, r->path)) {
        const char *auth =
            MHD_lookup_connection_value(r->mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (!token_ok(s, auth)) {
            *ret = refuse(s, r, 401, "unauthorized", auth == NULL ? "no_token" : "bad_token",
                          "a valid bearer token is required (Authorization: Bearer <token>)");
            return true;
        }
    }
    const union MHD_ConnectionInfo *hi =
        MHD_get_connection_info(r->mc, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    size_t header_size = hi != NULL
                             ? hi->header_size
                             : strlen(r->method) + strlen(r->path) + strlen(version) + h.bytes + 6;
    if (header_size > s->max_header) {
        char msg[96];
        snprintf(msg, sizeof(msg), "request headers are larger than %zu bytes", s->max_header);
        *ret = refuse(s, r, 431, "too_large", "headers", msg);
        return true;
    }
    const char *cl =
        MHD_lookup_connection_value(r->mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL) {
        /* MHD has already refused a malformed Content-Length with 400. */
        errno = 0;
        unsigned long long n = strtoull(cl, NULL, 10);
        if (errno != 0 || n > s->max_body) {
            char msg[96];
            snprintf(msg, sizeof(msg), "request body is larger than %zu bytes", s->max_body);
            *ret = refuse(s, r, 413, "too_large", "body", msg);
            return true;
        }
        if (n > 0) {
            r->body = malloc((size_t)n + 1);
            if (r->body != NULL)
                r->body_cap = (size_t)n + 1;
        }
    }
    return false;
}

/* Appends upload data; past max_body, drains instead (see the file comment).
 * Returns false if the connection must be dropped. */
static bool take_body(bt_http_server_t *s, bt_http_req_t *r, const char *data, size_t n)
{
    if (r->too_large || r->body_len + n > s->max_body) {
        if (!r->too_large) {
            r->too_large = true;
            free(r->body);
            r->body = NULL;
            r->body_len = r->body_cap = 0;
        }
        r->drained += n;
        size_t allowance = s->max_body > MIN_DRAIN_ALLOWANCE ? s->max_body : MIN_DRAIN_ALLOWANCE;
        if (r->drained > allowance) {
            atomic_fetch_add(&s->rejected, 1);
            log_refused(0, "too_large_stream", r->conn != NULL ? r->conn->peer : "?", r->method,
                        r->path);
            return false;
        }
        return true;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap != 0 ? r->body_cap : 4096;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        if (cap > s->max_body + 1)
            cap = s->max_body + 1;
        char *nb = realloc(r->body, cap);
        if (nb == NULL)
            return false;
        r->body = nb;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    bt_http_server_t *s = cls;
    bt_http_req_t *r = *con_cls;
    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return MHD_NO;
        *con_cls = r;
        r->mc = mc;
        r->conn = conn_of(mc);
        r->method = method;
        r->path = url;
        r->t0_ms = now_ms();
        enum MHD_Result ret;
        if (check_request(s, r, version, &ret))
            return ret;
        return MHD_YES;
    }
    if (r->responded) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return take_body(s, r, upload_data, n) ? MHD_YES : MHD_NO;
    }
    /* The whole request is in. */
    if (r->too_large) {
        char msg[96];
        snprintf(msg, sizeof(msg), "request body is larger than %zu bytes", s->max_body);
        return refuse(s, r, 413, "too_large", "body_stream", msg);
    }
    set_phase(s, r->conn, PHASE_HANDLING);
    atomic_fetch_add(&s->requests, 1);
    bt_http_resp_t resp = {0};
    s->handler(s->ctx, r, &resp);
    if (resp.status < 100 || resp.status > 599) {
        free(resp.body);
        resp = (bt_http_resp_t){0};
        resp_error_msg(&resp, 500, "internal", "the handler gave no response");
    }
    r->responded = true;
    int status = resp.status;
    size_t bytes = resp.body_len;
    enum MHD_Result ok = send_resp(mc, &resp);
    if (bt_log_enabled(BT_LOG_DEBUG)) {
        char st[12], by[24], ms[24];
        snprintf(st, sizeof(st), "%d", status);
        snprintf(by, sizeof(by), "%zu", bytes);
        snprintf(ms, sizeof(ms), "%" PRIu64, now_ms() - r->t0_ms);
        bt_log(BT_LOG_DEBUG, "http.request", "method", method, "path", url, "status", st, "bytes",
               by, "ms", ms, "peer", r->conn != NULL ? r->conn->peer : "?", NULL);
    }
    return ok;
}

/* ------------------------------------------------------------- watchdog */

static void *watchdog_main(void *arg)
{
    bt_http_server_t *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        uint64_t now = now_ms();
        for (conn_t *c = s->conns; c != NULL; c = c->next) {
            if (c->cut || c->phase == PHASE_HANDLING || c->fd < 0)
                continue;
            uint64_t budget = c->phase == PHASE_REQ ? s->deadline_ms : s->wait_ms;
            if (now - c->start_ms < budget)
                continue;
            /* Under s->lock with c in the table, so c->fd is still c's own
             * socket (the CLOSED notification, which precedes MHD's close,
             * cannot run until we unlock). */
            c->cut = true;
            /* Counted first, so whoever sees the cut also sees the count. */
            atomic_fetch_add(&s->cutoffs, 1);
            atomic_fetch_add(&s->rejected, 1);
            shutdown(c->fd, SHUT_RDWR);
            log_refused(0, "deadline", c->peer, NULL, NULL);
        }
        if (s->conns == NULL) {
            pthread_cond_wait(&s->wake, &s->lock); /* a connection or stop wakes us */
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)(s->tick_ms * 1000000u);
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&s->wake, &s->lock, &ts);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ------------------------------------------------------------ lifecycle */

static void server_free(bt_http_server_t *s)
{
    free(s->token);
    free_strv(s->hosts, s->nhosts);
    free_strv(s->public_paths, s->npublic);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    free(s);
}

/* Adds host (brackets stripped, lowercased) to s->hosts unless present. */
static bool add_host(bt_http_server_t *s, const char *host)
{
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    for (uint32_t i = 0; i < s->nhosts; i++) {
        if (strlen(s->hosts[i]) == n && strncasecmp(s->hosts[i], host, n) == 0)
            return true;
    }
    char *h = malloc(n + 1);
    if (h == NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        h[i] = (char)((host[i] >= 'A' && host[i] <= 'Z') ? host[i] + 32 : host[i]);
    h[n] = '\0';
    s->hosts[s->nhosts++] = h;
    return true;
}

static int fail(bt_http_server_t *s, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(bt_http_server_t *s, char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    if (s != NULL)
        server_free(s);
    return -1;
}

int bt_http_start(const bt_http_config_t *cfg, bt_http_server_t **out, char *err, size_t errlen)
{
    HTTP_ASSERT(cfg != NULL && out != NULL);
    *out = NULL;
    if (cfg->handler == NULL)
        return fail(NULL, err, errlen, "no request handler was given");
    const char *address = cfg->address != NULL ? cfg->address : "127.0.0.1";
    bool has_token = cfg->token != NULL && cfg->token[0] != '\0';

    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } addr;
    memset(&addr, 0, sizeof(addr));
    bool v6 = false;
    if (inet_pton(AF_INET, address, &addr.v4.sin_addr) == 1) {
        addr.v4.sin_family = AF_INET;
        addr.v4.sin_port = htons(cfg->port);
    } else if (inet_pton(AF_INET6, address, &addr.v6.sin6_addr) == 1) {
        addr.v6.sin6_family = AF_INET6;
        addr.v6.sin6_port = htons(cfg->port);
        v6 = true;
    } else {
        return fail(NULL, err, errlen,
                    "listen address \"%s\" is not an IPv4 or IPv6 literal (for example "
                    "127.0.0.1 or ::1)",
                    address);
    }
    if (!is_loopback(address) && !has_token)
        return fail(NULL, err, errlen,
                    "refusing to listen on non-loopback address %s without a bearer token; set "
                    "a token or listen on 127.0.0.1",
                    address);

    bt_http_server_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return fail(NULL, err, errlen, "out of memory");
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);

    s->handler = cfg->handler;
    s->ctx = cfg->ctx;
    s->max_body = cfg->max_body != 0 ? cfg->max_body : DEFAULT_MAX_BODY;
    s->max_header = cfg->max_header != 0 ? cfg->max_header : DEFAULT_MAX_HEADER;
    s->max_connections = cfg->max_connections != 0 ? cfg->max_connections : DEFAULT_MAX_CONNS;
    uint32_t per_ip = cfg->max_per_ip != 0 ? cfg->max_per_ip : DEFAULT_MAX_PER_IP;
    s->deadline_ms = cfg->deadline_ms != 0 ? cfg->deadline_ms : DEFAULT_DEADLINE_MS;
    uint32_t idle_s = cfg->idle_timeout_s != 0 ? cfg->idle_timeout_s : DEFAULT_IDLE_S;
    s->wait_ms = (uint64_t)idle_s * 1000u + s->deadline_ms;
    s->tick_ms = s->deadline_ms / 10;
    if (s->tick_ms < 5)
        s->tick_ms = 5;
    if (s->tick_ms > WATCHDOG_MAX_TICK_MS)
        s->tick_ms = WATCHDOG_MAX_TICK_MS;

    if (has_token) {
        s->token = dup_str(cfg->token);
        if (s->token == NULL)
            return fail(s, err, errlen, "out of memory");
        s->token_len = strlen(s->token);
    }
    uint32_t nhosts = cfg->allowed_hosts != NULL ? cfg->nallowed_hosts : 0;
    s->hosts = calloc((size_t)nhosts + 4, sizeof(char *));
    if (s->hosts == NULL)
        return fail(s, err, errlen, "out of memory");
    if (nhosts > 0) {
        for (uint32_t i = 0; i < nhosts; i++) {
            if (cfg->allowed_hosts[i] != NULL && !add_host(s, cfg->allowed_hosts[i]))
                return fail(s, err, errlen, "out of memory");
        }
    } else {
        const char *defaults[] = {"localhost", "127.0.0.1", "::1", address};
        for (size_t i = 0; i < 4; i++) {
            if (!add_host(s, defaults[i]))
                return fail(s, err, errlen, "out of memory");
        }
    }
    if (cfg->public_paths != NULL && cfg->npublic_paths > 0) {
        s->public_paths = calloc(cfg->npublic_paths, sizeof(char *));
        if (s->public_paths == NULL)
            return fail(s, err, errlen, "out of memory");
        for (uint32_t i = 0; i < cfg->npublic_paths; i++) {
            if (cfg->public_paths[i] == NULL)
                continue;
            if ((s->public_paths[s->npublic] = dup_str(cfg->public_paths[i])) == NULL)
                return fail(s, err, errlen, "out of memory");
            s->npublic++;
        }
    }

    s->listen_fd = MHD_INVALID_SOCKET;
    /* One thread per connection (see the file comment); poll, not select,
     * so fds past FD_SETSIZE work; ITC for MHD_quiesce_daemon. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (v6)
        flags |= MHD_USE_IPv6;
    /* The pool holds the request line, the headers and the read buffer:
     * twice max_header plus slack lets headers a little over max_header
     * reach check_request() (a JSON 431); MHD answers larger ones itself. */
    size_t pool = s->max_header * 2 + 16u * 1024u;
    char start_msg[START_ERR_LEN] = "";
    start_err = start_msg;
    /* One option per line. */
    // clang-format off
    s->daemon = MHD_start_daemon(
        flags, cfg->port, on_accept, s, on_request, s,
        /* the logger first, or MHD prints earlier options' errors itself */
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_SOCK_ADDR, &addr.sa,
        MHD_OPTION_THREAD_STACK_SIZE, CONN_STACK_SIZE,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(s->max_connections + 1),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)idle_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_END);
    // clang-format on
    start_err = NULL;
    if (s->daemon == NULL) {
        return fail(s, err, errlen, "cannot listen on %s%s%s:%u: %s", v6 ? "[" : "", address,
                    v6 ? "]" : "", (unsigned)cfg->port,
                    start_msg[0] != '\0' ? start_msg : "libmicrohttpd could not start");
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di != NULL ? di->port : cfg->port;

    if (pthread_create(&s->watchdog, NULL, watchdog_main, s) != 0) {
        MHD_stop_daemon(s->daemon);
        return fail(s, err, errlen, "cannot start the request deadline thread");
    }
    *out = s;
    if (bt_log_enabled(BT_LOG_INFO)) {
        char port[8];
        snprintf(port, sizeof(port), "%u", (unsigned)s->port);
        bt_log(BT_LOG_INFO, "http.listen", "address", address, "port", port, "auth",
               has_token ? "token" : "none", NULL);
    }
    return 0;
}

uint16_t bt_http_port(const bt_http_server_t *s)
{
    return s->port;
}

void bt_http_quiesce(bt_http_server_t *s)
{
    if (s == NULL || atomic_exchange(&s->quiesced, true))
        return;
    /* MHD stops polling and accepting on the listen socket; shutting it
     * down makes the kernel refuse new clients instead of queueing them.
     * It is closed only after MHD_stop_daemon (see the file comment). */
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET) {
        shutdown(fd, SHUT_RDWR);
        s->listen_fd = fd;
    }
}

void bt_http_stop(bt_http_server_t *s)
{
    if (s == NULL)
        return;
    /* Shuts every connection down and joins its thread; a thread inside the
     * handler finishes it first. The watchdog keeps cutting stuck requests
     * meanwhile. */
    MHD_stop_daemon(s->daemon);
    if (s->listen_fd != MHD_INVALID_SOCKET)
        close(s->listen_fd);
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->watchdog, NULL);
    HTTP_ASSERT(s->conns == NULL); /* every connection got its CLOSED */
    server_free(s);
}

void bt_http_stats(const bt_http_server_t *s, bt_http_stats_t *out)
{
    bt_http_server_t *m = (bt_http_server_t *)s; /* atomics loads need non-const */
    out->requests = atomic_load(&m->requests);
    out->rejected = atomic_load(&m->rejected);
    out->deadline_cutoffs = atomic_load(&m->cutoffs);
    out->connections = atomic_load(&m->connections);
    out->open_connections = atomic_load(&m->open_connections);
}
