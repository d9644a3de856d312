/*
 * fuzz_api_route.c: a libFuzzer target for the API's routing. The input is
 * decoded into up to 8 requests, each sent through bt_api_handle() to a
 * live executor and run store (api_harness.h); every answer is checked
 * against the invariants of api_harness.c.
 *
 * Input format (a request; requests are separated by a line "----"):
 *
 *   METHOD PATH [recovering|draining]
 *   ?name=value          a query argument (any number)
 *   Name: value          a header (any number)
 *                        an empty line ends the head
 *   body...              the rest, up to the next "----" line
 *
 * In PATH, query values and header values, "$0".."$7" stand for the id of
 * the run created by the input's first..eighth successful start (left as
 * they are when there is none), so inputs can start a run, then pause,
 * resume, stop, read and list it. The optional third word sets the API's
 * phase for that request. Build and run it with tests/fuzz/run_fuzzers.sh;
 * the test command replays the seeds in tests/app/fuzz/corpus_api_route
 * (CTest app_api_route_fuzz_replay).
 */
#define _GNU_SOURCE
#include "api_harness.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REQUESTS 8
#define MAX_ARGS     16 /* query arguments, and headers, per request */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A copy of s (n bytes, NUL bytes kept as the end) with $N replaced by
 * run ids. Returns malloc'd memory. */
static char *expand(const char *s, size_t n)
{
    size_t cap = n + 1, len = 0;
    char *out = malloc(cap);
    if (out == NULL)
        fz_fail("out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *id = NULL;
        if (s[i] == '$' && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '7')
            id = fz_run_id(s[i + 1] - '0');
        const char *add = id != NULL ? id : &s[i];
        size_t addlen = id != NULL ? strlen(id) : 1;
        if (len + addlen + 1 > cap) {
            cap = (len + addlen + 1) * 2;
            char *bigger = realloc(out, cap);
            if (bigger == NULL)
                fz_fail("out of memory");
            out = bigger;
        }
        memcpy(out + len, add, addlen);
        len += addlen;
        if (id != NULL)
            i++;
    }
    out[len] = '\0';
    return out;
}

/* The next line of [*p, end): returns its start and length (without the
 * newline) and moves *p past it. */
static const char *next_line(const char **p, const char *end, size_t *len)
{
    const char *start = *p;
    const char *nl = memchr(start, '\n', (size_t)(end - start));
    *len = (size_t)((nl != NULL ? nl : end) - start);
    *p = nl != NULL ? nl + 1 : end;
    return start;
}

typedef struct strs {
    char *v[4 * MAX_ARGS + 4]; /* method, path, query and header names and values */
    int n;
} strs_t;

static char *keep(strs_t *all, char *s)
{
    if (all->n < (int)(sizeof(all->v) / sizeof(all->v[0])))
        all->v[all->n++] = s;
    return s;
}

/* Decodes and sends one request from [p, end). */
static void one_request(const char *p, const char *end)
{
    strs_t owned = {.n = 0};
    size_t n;
    const char *line = next_line(&p, end, &n);
    /* METHOD PATH [PHASE] */
    const char *sp = memchr(line, ' ', n);
    size_t mlen = sp != NULL ? (size_t)(sp - line) : n;
    char *method = keep(&owned, strndup(line, mlen));
    char *path = NULL;
    bt_api_phase_t phase = BT_API_READY;
    if (sp != NULL) {
        const char *rest = sp + 1;
        size_t rlen = n - mlen - 1;
        const char *sp2 = memchr(rest, ' ', rlen);
        size_t plen = sp2 != NULL ? (size_t)(sp2 - rest) : rlen;
        path = keep(&owned, expand(rest, plen));
        if (sp2 != NULL) {
            size_t flen = rlen - plen - 1;
            if (flen == 10 && memcmp(sp2 + 1, "recovering", 10) == 0)
                phase = BT_API_RECOVERING;
            else if (flen == 8 && memcmp(sp2 + 1, "draining", 8) == 0)
                phase = BT_API_DRAINING;
        }
    } else {
        path = keep(&owned, strdup(""));
    }
    if (method == NULL || path == NULL)
        fz_fail("out of memory");

    const char *query[2 * MAX_ARGS + 1], *headers[2 * MAX_ARGS + 1];
    int nq = 0, nh = 0;
    while (p < end) {
        line = next_line(&p, end, &n);
        if (n == 0)
            break;
        if (line[0] == '?') {
            const char *eq = memchr(line, '=', n);
            if (eq == NULL || nq == 2 * MAX_ARGS)
                continue;
            query[nq++] = keep(&owned, strndup(line + 1, (size_t)(eq - line - 1)));
            query[nq++] = keep(&owned, expand(eq + 1, (size_t)(line + n - eq - 1)));
        } else {
            const char *colon = memchr(line, ':', n);
            if (colon == NULL || nh == 2 * MAX_ARGS)
                continue;
            const char *v = colon + 1;
            while (v < line + n && *v == ' ')
                v++;
            headers[nh++] = keep(&owned, strndup(line, (size_t)(colon - line)));
            headers[nh++] = keep(&owned, expand(v, (size_t)(line + n - v)));
        }
    }
    query[nq] = NULL;
    headers[nh] = NULL;
    for (int i = 0; i < nq + nh; i++) {
        if ((i < nq ? query[i] : headers[i - nq]) == NULL)
            fz_fail("out of memory");
    }

    bt_api_set_phase(fz_api(), phase);
    bt_http_resp_t resp;
    fz_request(method, path, query, headers, p, (size_t)(end - p), &resp);
    bt_api_set_phase(fz_api(), BT_API_READY);
    bt_http_resp_deinit(&resp);
    for (int i = 0; i < owned.n; i++)
        free(owned.v[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_begin_input();
    const char *p = (const char *)data, *end = p + size;
    for (int r = 0; r < MAX_REQUESTS && p < end; r++) {
        /* This request runs to the next "\n----\n" (or the end). */
        const char *stop = end, *next = end;
        for (const char *q = p; q + 6 <= end; q++) {
            q = memchr(q, '\n', (size_t)(end - q));
            if (q == NULL || q + 6 > end)
                break;
            if (memcmp(q, "\n----\n", 6) == 0) {
                stop = q;
                next = q + 6;
                break;
            }
        }
        one_request(p, stop);
        p = next;
    }
    return 0;
}
