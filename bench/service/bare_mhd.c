/*
 * bare_mhd.c: the floor for bench_api: a bare libmicrohttpd server that
 * answers every request with the same small JSON body, and does nothing
 * else (no routing, no Host or token check, no deadline watchdog, no
 * actor, no store).
 *
 *   bare_mhd [--port P] [--per-ip N]
 *
 * It listens on 127.0.0.1:P (0: any free port), prints "PORT <n>" on stdout
 * once it accepts connections, and runs until SIGTERM or SIGINT.
 *
 * The daemon is started with the same flags and limits as the service's
 * server (app/server/http.c, bt_http_start): an internal polling thread
 * that accepts and one thread per connection (MHD_USE_INTERNAL_POLLING_THREAD
 * + MHD_USE_THREAD_PER_CONNECTION, with poll) of the same stack size, an
 * inter-thread channel (MHD_USE_ITC), the same connection limit
 * (max_connections + 1), per-IP limit, idle timeout and per-connection
 * memory pool, so that the difference bench_api measures
 * is what baton does above MHD. The answer carries the headers baton adds to
 * every response (Content-Type: application/json, Cache-Control: no-store),
 * so both send responses of about the same size.
 */
#define _GNU_SOURCE
#include <microhttpd.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The defaults of the service's [server] section that shape the daemon. */
#define MAX_CONNECTIONS 256u
#define PER_IP          128u
#define IDLE_S          30u
#define MAX_HEADER      (16u * 1024u)
#define STACK_SIZE      ((size_t)1024u * 1024u) /* http.c's, outside sanitizer builds */

static const char BODY[] = "{\"status\":\"ok\"}";

/* MHD calls this once when the headers are in, once per piece of body, and
 * once at the end: the first call only marks the request as seen, body
 * pieces are discarded, and the last call answers (as http.c does).
 * Answering in the first call, which MHD allows for a request without a
 * body, is not the floor with MHD 0.9.75: measured here it cut 64 clients
 * to about 1,700 req/s with a p50 of 30 ms. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    static int seen;
    (void)cls, (void)url, (void)method, (void)version, (void)upload_data;
    if (*con_cls == NULL) {
        *con_cls = &seen;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* discard */
        return MHD_YES;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof(BODY) - 1, (void *)BODY, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ok = MHD_queue_response(mc, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

static unsigned parse_uint(const char *s, const char *what)
{
    char *end;
    unsigned long v = s != NULL ? strtoul(s, &end, 10) : 0;
    if (s == NULL || *s == '\0' || *end != '\0' || v > 65535) {
        fprintf(stderr, "bare_mhd: %s takes an integer 0..65535\n", what);
        exit(2);
    }
    return (unsigned)v;
}

int main(int argc, char **argv)
{
    unsigned port = 0, per_ip = PER_IP;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = parse_uint(argv[++i], "--port");
        else if (strcmp(argv[i], "--per-ip") == 0 && i + 1 < argc)
            per_ip = parse_uint(argv[++i], "--per-ip");
        else {
            fprintf(stderr, "usage: bare_mhd [--port P] [--per-ip N]\n");
            return 2;
        }
    }
    /* Block the stop signals before MHD starts its threads, so that only
     * sigwait() below sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    size_t pool = MAX_HEADER * 2 + 16u * 1024u; /* as http.c sizes it */
    // clang-format off
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_STACK_SIZE, STACK_SIZE,
        MHD_OPTION_CONNECTION_LIMIT, MAX_CONNECTIONS + 1,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, IDLE_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
        MHD_OPTION_END);
    // clang-format on
    if (d == NULL) {
        fprintf(stderr, "bare_mhd: cannot listen on 127.0.0.1:%u\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("PORT %u\n", di != NULL ? (unsigned)di->port : port);
    fflush(stdout);

    int sig;
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    return 0;
}
