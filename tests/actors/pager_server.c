/*
 * pager_server.c: the local paging API of the http kind's tests (see
 * pager_server.h). One mutex guards the counters and the fault table; the
 * handler holds it only to read and count, never while it sleeps.
 */
#define _GNU_SOURCE
#include "pager_server.h"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PS_FAULTS_MAX 32
#define PS_LOG_MAX    4096

typedef struct ps_fault_slot {
    ps_fault_t f;
    char retry_after[128];
    char body[512];
} ps_fault_slot_t;

struct ps_server {
    struct MHD_Daemon *d;
    uint16_t port;
    uint32_t nitems;
    pthread_mutex_t mu;
    ps_fault_slot_t faults[PS_FAULTS_MAX];
    uint32_t nfaults;
    uint32_t delay_ms;
    ps_stats_t st;
    int64_t log[PS_LOG_MAX];
    int64_t log_ms[PS_LOG_MAX];
    int stopping; /* atomic: set by ps_stop, read by slow handlers */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char CURSOR_PREFIX[] = "after id/";

static void cursor_of(uint32_t index, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s%u&z", CURSOR_PREFIX, index);
}

/* The item index a cursor stands for; "" (or none) is 0. -1 if invalid. */
static int64_t cursor_parse(const char *c)
{
    if (c == NULL || c[0] == '\0')
        return 0;
    size_t k = sizeof(CURSOR_PREFIX) - 1;
    if (strncmp(c, CURSOR_PREFIX, k) != 0)
        return -1;
    char *end;
    unsigned long v = strtoul(c + k, &end, 10);
    if (end == c + k || strcmp(end, "&z") != 0)
        return -1;
    return (int64_t)v;
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *body,
                               const char *retry_after)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (retry_after != NULL)
        MHD_add_response_header(r, "Retry-After", retry_after);
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

/* Sleeps ms in small steps; false if the client hung up (or the server is
 * stopping) meanwhile. */
static bool slow_wait(ps_server_t *s, struct MHD_Connection *c, uint32_t ms)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct timespec step = {.tv_sec = 0, .tv_nsec = 5 * 1000000L};
    for (uint32_t waited = 0; waited < ms; waited += 5) {
        if (__atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE))
            return false;
        if (ci != NULL) {
            struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
            if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
                return false;
        }
        nanosleep(&step, NULL);
    }
    return true;
}

/* Appends {"id": i, "name": "item-i"} for i in [from, to). */
static char *items_json(uint32_t from, uint32_t to, size_t extra)
{
    size_t cap = (size_t)(to - from) * 48 + extra + 64;
    char *b = malloc(cap);
    if (b == NULL)
        return NULL;
    size_t n = 0;
    b[n++] = '[';
    for (uint32_t i = from; i < to; i++)
        n += (size_t)snprintf(b + n, cap - n, "%s{\"id\":%u,\"name\":\"item-%u\"}",
                              i > from ? "," : "", i, i);
    b[n++] = ']';
    b[n] = '\0';
    return b;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;
    ps_server_t *s = cls;
    if (strcmp(method, "GET") != 0)
        return respond(c, 405, "{\"message\":\"GET only\"}", NULL);
    bool cursor_mode = strcmp(url, "/list") == 0;
    if (!cursor_mode && strcmp(url, "/items") != 0)
        return respond(c, 404, "{\"message\":\"no such path\"}", NULL);
    const char *lim = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    const char *off = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "offset");
    const char *cur = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "cursor");
    long limit = lim != NULL ? strtol(lim, NULL, 10) : 0;
    int64_t start = cursor_mode ? cursor_parse(cur) : (off != NULL ? strtoll(off, NULL, 10) : -1);

    /* Count it, find its fault. */
    ps_fault_slot_t fault = {0};
    bool faulty = false;
    pthread_mutex_lock(&s->mu);
    uint32_t n = ++s->st.requests;
    s->st.active++;
    if (n <= PS_LOG_MAX) {
        s->log[n - 1] = start;
        s->log_ms[n - 1] = now_ms();
    }
    for (uint32_t i = 0; i < s->nfaults; i++) {
        const ps_fault_t *f = &s->faults[i].f;
        if (n >= f->from && n < f->from + f->count) {
            fault = s->faults[i];
            faulty = true;
            break;
        }
    }
    uint32_t delay = faulty && fault.f.delay_ms ? fault.f.delay_ms : s->delay_ms;
    pthread_mutex_unlock(&s->mu);

    enum MHD_Result rc;
    if (delay > 0 && !slow_wait(s, c, delay)) {
        pthread_mutex_lock(&s->mu);
        s->st.client_aborts++;
        s->st.active--;
        pthread_mutex_unlock(&s->mu);
        return MHD_NO; /* closes the connection */
    }
    if (faulty && fault.f.status != 0) {
        char def[64];
        snprintf(def, sizeof(def), "{\"message\":\"injected %d\"}", fault.f.status);
        rc = respond(c, (unsigned)fault.f.status, fault.body[0] ? fault.body : def,
                     fault.retry_after[0] ? fault.retry_after : NULL);
        pthread_mutex_lock(&s->mu);
        s->st.faults++;
        s->st.active--;
        pthread_mutex_unlock(&s->mu);
        return rc;
    }
    if (limit < 1 || limit > 1000 || start < 0) {
        rc = respond(c, 400,
                     "{\"error\":{\"code\":\"bad_request\",\"message\":\"bad paging "
                     "arguments\"}}",
                     NULL);
    } else {
        uint32_t from = start > (int64_t)s->nitems ? s->nitems : (uint32_t)start;
        uint32_t to = from + (uint32_t)limit > s->nitems ? s->nitems : from + (uint32_t)limit;
        char *items = items_json(from, to, 0);
        char *body = items != NULL ? malloc(strlen(items) + 256) : NULL;
        if (body == NULL) {
            free(items);
            rc = respond(c, 500, "{\"message\":\"out of memory\"}", NULL);
        } else {
            if (cursor_mode) {
                char next[64] = "";
                if (to < s->nitems)
                    cursor_of(to, next, sizeof(next));
                if (next[0])
                    sprintf(body, "{\"items\":%s,\"meta\":{\"next\":\"%s\"}}", items, next);
                else
                    sprintf(body, "{\"items\":%s,\"meta\":{\"next\":null}}", items);
            } else {
                sprintf(body, "{\"data\":{\"items\":%s},\"total\":%u}", items, s->nitems);
            }
            rc = respond(c, 200, body, NULL);
            free(body);
            free(items);
            pthread_mutex_lock(&s->mu);
            s->st.pages++;
            pthread_mutex_unlock(&s->mu);
        }
    }
    pthread_mutex_lock(&s->mu);
    s->st.active--;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int ps_start(uint32_t nitems, ps_server_t **out)
{
    ps_server_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -1;
    s->nitems = nitems;
    pthread_mutex_init(&s->mu, NULL);
    for (uint32_t i = 0; i < PS_LOG_MAX; i++)
        s->log[i] = -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
                            NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (s->d == NULL) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di != NULL ? di->port : 0;
    *out = s;
    return 0;
}

void ps_stop(ps_server_t *s)
{
    if (s == NULL)
        return;
    __atomic_store_n(&s->stopping, 1, __ATOMIC_RELEASE);
    MHD_stop_daemon(s->d);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

uint16_t ps_port(const ps_server_t *s)
{
    return s->port;
}

void ps_fault_add(ps_server_t *s, const ps_fault_t *f)
{
    pthread_mutex_lock(&s->mu);
    if (s->nfaults < PS_FAULTS_MAX) {
        ps_fault_slot_t *slot = &s->faults[s->nfaults++];
        memset(slot, 0, sizeof(*slot));
        slot->f = *f;
        if (f->retry_after != NULL)
            snprintf(slot->retry_after, sizeof(slot->retry_after), "%s", f->retry_after);
        if (f->body != NULL)
            snprintf(slot->body, sizeof(slot->body), "%s", f->body);
        slot->f.retry_after = NULL;
        slot->f.body = NULL;
    }
    pthread_mutex_unlock(&s->mu);
}

void ps_set_delay(ps_server_t *s, uint32_t delay_ms)
{
    pthread_mutex_lock(&s->mu);
    s->delay_ms = delay_ms;
    pthread_mutex_unlock(&s->mu);
}

void ps_stats(ps_server_t *s, ps_stats_t *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
}

int64_t ps_request_start(ps_server_t *s, uint32_t n)
{
    if (n == 0 || n > PS_LOG_MAX)
        return -1;
    pthread_mutex_lock(&s->mu);
    int64_t v = s->log[n - 1];
    pthread_mutex_unlock(&s->mu);
    return v;
}

int64_t ps_request_time_ms(ps_server_t *s, uint32_t n)
{
    if (n == 0 || n > PS_LOG_MAX)
        return -1;
    pthread_mutex_lock(&s->mu);
    int64_t v = s->log_ms[n - 1];
    pthread_mutex_unlock(&s->mu);
    return v;
}
