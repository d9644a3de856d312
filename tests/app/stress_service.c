/*
 * stress_service.c: concurrent clients against the real `baton serve`, as
 * a plain executable so that the TSan build runs it too (Criterion cannot
 * run under TSan). The binary under test is the one of the same build, so
 * in the TSan build the whole service (HTTP threads, actors, pinned store
 * and job threads) runs instrumented; any report in its log fails this.
 *
 *   stress_service [SECONDS]
 */
#define _GNU_SOURCE
#include "e2e.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLIENTS 8
#define JOBS    4

static e2e_svc_t svc;
static volatile int stop_flag;
static long ok_count[CLIENTS], refused_count[CLIENTS], failed_count[CLIENTS];

static void *client(void *arg)
{
    int me = (int)(long)arg;
    unsigned seed = (unsigned)me * 7919u + 1;
    char job[16], id[64] = "", path[160];
    snprintf(job, sizeof(job), "j%d", me % JOBS);
    while (!__atomic_load_n(&stop_flag, __ATOMIC_ACQUIRE)) {
        e2e_resp_t r;
        bool sent;
        int op = (int)(rand_r(&seed) % 6);
        if (op == 0 || id[0] == '\0') {
            snprintf(path, sizeof(path), "/v1/jobs/%s/runs", job);
            sent = e2e_http(&svc, "POST", path, NULL, NULL, true, &r);
            if (sent && r.status == 201)
                e2e_json_str(r.body, "id", id, sizeof(id));
        } else if (op <= 3) {
            static const char *const verbs[] = {"pause", "resume", "stop"};
            snprintf(path, sizeof(path), "/v1/runs/%s/%s", id, verbs[op - 1]);
            sent = e2e_http(&svc, "POST", path, NULL, NULL, true, &r);
        } else if (op == 4) {
            snprintf(path, sizeof(path), "/v1/runs/%s", id);
            sent = e2e_http(&svc, "GET", path, NULL, NULL, true, &r);
        } else {
            snprintf(path, sizeof(path), "/v1/runs?job=%s&limit=10", job);
            sent = e2e_http(&svc, "GET", path, NULL, NULL, true, &r);
        }
        if (!sent) {
            failed_count[me]++;
            continue;
        }
        /* 409 (conflicts, invalid transitions) is the expected answer to
         * half of these; anything 5xx is a failure. */
        if (r.status >= 500)
            failed_count[me]++;
        else if (r.status >= 400)
            refused_count[me]++;
        else
            ok_count[me]++;
        e2e_resp_free(&r);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int seconds = argc > 1 ? atoi(argv[1]) : 5;
    e2e_init(&svc);
    char jobs[2048] = "[executor]\nmax_running = 2\nmax_pending = 16\n";
    for (int j = 0; j < JOBS; j++) {
        char one[256];
        snprintf(one, sizeof(one),
                 "[jobs.j%d]\nkind = \"exec\"\nstop_grace = \"2s\"\n[jobs.j%d.params]\n"
                 "argv = [\"/bin/sleep\", \"30\"]\n",
                 j, j);
        strncat(jobs, one, sizeof(jobs) - strlen(jobs) - 1);
    }
    e2e_write_config(&svc, jobs);
    if (!e2e_start(&svc, 60000)) {
        char *log = e2e_read_log(&svc);
        fprintf(stderr, "stress_service: the service did not become ready\n%s", log);
        free(log);
        e2e_cleanup(&svc);
        return 1;
    }
    pthread_t th[CLIENTS];
    for (long i = 0; i < CLIENTS; i++)
        pthread_create(&th[i], NULL, client, (void *)i);
    struct timespec ts = {seconds, 0};
    nanosleep(&ts, NULL);
    __atomic_store_n(&stop_flag, 1, __ATOMIC_RELEASE);
    long ok = 0, refused = 0, failed = 0;
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(th[i], NULL);
        ok += ok_count[i];
        refused += refused_count[i];
        failed += failed_count[i];
    }
    int rc = e2e_stop(&svc, SIGTERM, 60000);
    char *log = e2e_read_log(&svc);
    bool reports = strstr(log, "ThreadSanitizer") != NULL ||
                   strstr(log, "AddressSanitizer") != NULL ||
                   strstr(log, "LeakSanitizer") != NULL || strstr(log, "runtime error:") != NULL;
    printf("stress_service: %d s, %d clients: %ld ok, %ld refused (4xx), %ld failed; exit %d\n",
           seconds, CLIENTS, ok, refused, failed, rc);
    int status = 0;
    if (rc != 0 || failed != 0 || ok == 0 || reports) {
        fprintf(stderr, "stress_service: FAILED (exit %d, %ld failed, reports: %s)\n%s", rc, failed,
                reports ? "yes" : "no", log);
        status = 1;
    }
    free(log);
    e2e_cleanup(&svc);
    return status;
}
