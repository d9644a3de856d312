/*
 * http_kind.c: the built-in `http` job kind: JSON API paging with libcurl
 * into a JSON-lines file, exactly once across crashes.
 *
 * DESIGN. One pinned actor per run (re)start. It owns a curl multi handle
 * and one easy handle and never blocks for longer than one poll step: a
 * transfer is driven by HK_TICK messages the actor sends itself, each
 * running curl_multi_poll() for at most HK_POLL_MS and curl_multi_perform()
 * once. Control messages queue behind at most one tick, so EX_K_PAUSE and
 * EX_K_STOP abort the transfer (curl_multi_remove_handle) within a poll
 * step, on the actor's own thread: no flag is shared with another thread.
 *
 * One attempt at a page is a chain of steps, each a message round trip:
 *   limiter (BT_RL_ACQUIRE to "limit.NAME", waits when told to)
 *   -> breaker (BT_BREAKER_ACQUIRE to "breaker.NAME", waits while open)
 *   -> deadline (BT_TO_START of the timeout class, expiry to this actor)
 *   -> transfer (ticks) -> outcome.
 * A missing name skips its step. The step waiting for an answer is
 * recorded with the ask's correlation id (asks) or an epoch (this actor's
 * timers and ticks); an abort clears both, so late answers are recognised:
 * a late breaker permit is reported back as cancelled and a late deadline
 * is completed, so neither leaks.
 *
 * Accepted: EX_K_RUN/PAUSE/RESUME/STOP from the executor; replies of the
 * limiter, breaker and timeout registry, BT_TO_EXPIRED, BT_MSG_TIMEOUT of
 * its asks; its own HK_TICK and HK_WAKE (timers). Emitted: the asks above,
 * BT_BREAKER_REPORT (success, failure or cancelled, with the latency),
 * BT_TO_DONE, and ex_kind_checkpoint/done/failed/stopped/paused.
 *
 * State owned: the params, the curl handles, the output's descriptor and
 * length, the position (offset or cursor), the page's attempt count, the
 * current step. Exactly once: a page's lines are written at the output's
 * recorded length and fdatasync'ed before the checkpoint (position after
 * the page, new length) is reported, so every stored checkpoint describes
 * a durable prefix of the file holding exactly the items before its
 * position. A (re)start truncates the file to the checkpoint's length (to
 * 0 without one) before the first request.
 */
#define _GNU_SOURCE
#include "http_kind.h"

#include "backoff.h"
#include "breaker.h"
#include "ratelimit.h"
#include "timeouts.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MS (1000000ull)

#define HK_POLL_MS       10          /* longest block in one tick */
#define HK_ASK_NS        (5000 * MS) /* limiter/breaker/registry answer within this */
#define HK_CURSOR_MAX    4096        /* bytes of a cursor */
#define HK_HEADERS_MAX   64
#define HK_PATH_MAX      512
#define HK_ERRBODY_BYTES 200 /* of a body quoted in an error */

/* ------------------------------------------------------------ params */

static void ex_http_params_zero(ex_http_params_t *p)
{
    memset(p, 0, sizeof(*p));
}

void ex_http_params_deinit(ex_http_params_t *p)
{
    if (p == NULL)
        return;
    free(p->url);
    free(p->items_path);
    free(p->cursor_path);
    free(p->output);
    for (uint32_t i = 0; i < p->nheaders; i++)
        free(p->headers[i]);
    free(p->headers);
    ex_http_params_zero(p);
}

static int perr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int perr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err != NULL && errlen > 0)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* An integer param in [lo, hi]; absent leaves *out as it is. */
static int get_uint(const cJSON *root, const char *key, uint64_t lo, uint64_t hi, uint64_t *out,
                    char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (v == NULL)
        return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
    if (!cJSON_IsNumber(v) || d != floor(d) || d < (double)lo || d > (double)hi)
        return perr(err, errlen, "%s must be a whole number from %" PRIu64 " to %" PRIu64, key, lo,
                    hi);
    *out = (uint64_t)d;
    return 0;
}

/* A string param; absent leaves *out NULL. */
static int get_str(const cJSON *root, const char *key, const char **out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = NULL;
    if (v == NULL)
        return 0;
    if (!cJSON_IsString(v))
        return perr(err, errlen, "%s must be a string", key);
    *out = v->valuestring;
    return 0;
}

/* A name param (breaker, limiter, timeout class). */
static int get_name(const cJSON *root, const char *key, bool class_name, char out[EX_HTTP_NAME_MAX],
                    char *err, size_t errlen)
{
    const char *s;
    if (get_str(root, key, &s, err, errlen) != 0)
        return -1;
    out[0] = '\0';
    if (s == NULL)
        return 0;
    size_t n = strlen(s);
    size_t max = class_name ? BT_TIMEOUT_NAME_MAX - 1 : EX_HTTP_NAME_MAX - 1;
    bool ok = n >= 1 && n <= max;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
             (!class_name && ((c >= 'A' && c <= 'Z') || c == '.'));
    }
    if (!ok)
        return perr(err, errlen,
                    class_name ? "%s must be a timeout class name: 1 to %zu of a-z, 0-9, _ and -"
                               : "%s must be a name of 1 to %zu letters, digits, _, - and .",
                    key, max);
    memcpy(out, s, n + 1);
    return 0;
}

static bool path_ok(const char *path)
{
    if (path[0] == '\0')
        return true;
    for (const char *c = path;; c++) {
        if (*c == '.' && (c == path || c[1] == '.' || c[1] == '\0'))
            return false; /* an empty component */
        if (*c == '\0')
            return true;
    }
}

static bool header_name_ok(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || strchr("!#$%&'*+-.^_`|~", *s) != NULL))
            return false;
    return true;
}

/* Checks the template's placeholders; *has gets bit 1 {offset}, 2 {limit},
 * 4 {cursor}. */
static int url_placeholders(const char *t, unsigned *has)
{
    *has = 0;
    for (const char *c = t; *c; c++) {
        if (*c != '{')
            continue;
        if (strncmp(c, "{offset}", 8) == 0)
            *has |= 1;
        else if (strncmp(c, "{limit}", 7) == 0)
            *has |= 2;
        else if (strncmp(c, "{cursor}", 8) == 0)
            *has |= 4;
        else
            return -1;
    }
    return 0;
}

char *ex_http_url_expand(const char *tmpl, uint64_t offset, uint32_t limit, const char *cursor)
{
    char *enc = NULL;
    if (cursor != NULL && cursor[0] != '\0') {
        enc = curl_easy_escape(NULL, cursor, (int)strlen(cursor));
        if (enc == NULL)
            return NULL;
    }
    char num_off[24], num_lim[16];
    snprintf(num_off, sizeof(num_off), "%" PRIu64, offset);
    snprintf(num_lim, sizeof(num_lim), "%" PRIu32, limit);
    size_t cap = strlen(tmpl) + 1, n = 0;
    for (const char *c = tmpl; *c; c++)
        if (*c == '{')
            cap += 24 + (enc != NULL ? strlen(enc) : 0);
    char *out = malloc(cap);
    if (out == NULL) {
        curl_free(enc);
        return NULL;
    }
    for (const char *c = tmpl; *c;) {
        const char *rep = NULL;
        size_t skip = 0;
        if (*c == '{') {
            if (strncmp(c, "{offset}", 8) == 0)
                rep = num_off, skip = 8;
            else if (strncmp(c, "{limit}", 7) == 0)
                rep = num_lim, skip = 7;
            else if (strncmp(c, "{cursor}", 8) == 0)
                rep = enc != NULL ? enc : "", skip = 8;
            else {
                free(out);
                curl_free(enc);
                return NULL;
            }
        }
        if (rep != NULL) {
            size_t k = strlen(rep);
            memcpy(out + n, rep, k);
            n += k;
            c += skip;
        } else {
            out[n++] = *c++;
        }
    }
    out[n] = '\0';
    curl_free(enc);
    return out;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_global(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int check_url(const char *url, char *err, size_t errlen)
{
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return perr(err, errlen, "url must start with http:// or https://");
    char *u = ex_http_url_expand(url, 0, 1, "c");
    if (u == NULL)
        return perr(err, errlen, "out of memory");
    CURLU *h = curl_url();
    CURLUcode rc = h != NULL ? curl_url_set(h, CURLUPART_URL, u, 0) : CURLUE_OUT_OF_MEMORY;
    curl_url_cleanup(h);
    free(u);
    if (rc != CURLUE_OK)
        return perr(err, errlen, "url is not a valid URL once its placeholders are filled: %s",
                    curl_url_strerror(rc));
    return 0;
}

static const char *const known_keys[] = {
    "url",
    "mode",
    "limit",
    "items_path",
    "cursor_path",
    "output",
    "headers",
    "breaker",
    "limit_name",
    "timeout",
    "max_attempts",
    "backoff_base_ms",
    "backoff_cap_ms",
    "retry_after_max_ms",
    "max_response_bytes",
    "start_offset",
};

int ex_http_params_parse(const char *json, ex_http_params_t *out, char *err, size_t errlen)
{
    pthread_once(&curl_once, curl_global);
    ex_http_params_t p;
    ex_http_params_zero(&p);
    cJSON *root = cJSON_Parse(json != NULL ? json : "");
    if (root == NULL || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return perr(err, errlen, "params must be a JSON object");
    }
    for (const cJSON *k = root->child; k != NULL; k = k->next) {
        bool known = false;
        for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]) && !known; i++)
            known = strcmp(k->string, known_keys[i]) == 0;
        if (!known) {
            perr(err, errlen, "unknown key \"%.64s\" in the params", k->string);
            goto bad;
        }
    }
    const char *s;
    /* mode */
    if (get_str(root, "mode", &s, err, errlen) != 0)
        goto bad;
    if (s == NULL || strcmp(s, "offset") == 0)
        p.mode = EX_HTTP_OFFSET;
    else if (strcmp(s, "cursor") == 0)
        p.mode = EX_HTTP_CURSOR;
    else {
        perr(err, errlen, "mode must be \"offset\" or \"cursor\"");
        goto bad;
    }
    /* url */
    if (get_str(root, "url", &s, err, errlen) != 0)
        goto bad;
    if (s == NULL || s[0] == '\0') {
        perr(err, errlen, "url is required: the page URL, with {offset} and {limit} or {cursor}");
        goto bad;
    }
    unsigned has;
    if (url_placeholders(s, &has) != 0) {
        perr(err, errlen, "url may hold only the placeholders {offset}, {limit} and {cursor}");
        goto bad;
    }
    if (p.mode == EX_HTTP_OFFSET && (!(has & 1) || (has & 4))) {
        perr(err, errlen,
             "in offset mode url must hold {offset} (and may hold {limit}), not "
             "{cursor}");
        goto bad;
    }
    if (p.mode == EX_HTTP_CURSOR && (!(has & 4) || (has & 1))) {
        perr(err, errlen,
             "in cursor mode url must hold {cursor} (and may hold {limit}), not "
             "{offset}");
        goto bad;
    }
    if (check_url(s, err, errlen) != 0)
        goto bad;
    if ((p.url = strdup(s)) == NULL)
        goto oom;
    /* limit */
    uint64_t v = 100;
    if (get_uint(root, "limit", 1, 100000, &v, err, errlen) != 0)
        goto bad;
    p.limit = (uint32_t)v;
    /* items_path, cursor_path */
    if (get_str(root, "items_path", &s, err, errlen) != 0)
        goto bad;
    if (s != NULL && !path_ok(s)) {
        perr(err, errlen,
             "items_path must be \"\" (the top-level array) or dotted keys such as "
             "\"data.items\"");
        goto bad;
    }
    if ((p.items_path = strdup(s != NULL ? s : "")) == NULL)
        goto oom;
    if (get_str(root, "cursor_path", &s, err, errlen) != 0)
        goto bad;
    if (p.mode == EX_HTTP_OFFSET && s != NULL) {
        perr(err, errlen, "cursor_path is only for cursor mode");
        goto bad;
    }
    if (p.mode == EX_HTTP_CURSOR) {
        if (s == NULL || s[0] == '\0' || !path_ok(s)) {
            perr(err, errlen,
                 "cursor mode needs cursor_path: dotted keys such as \"meta.next\" "
                 "naming the next page's cursor");
            goto bad;
        }
        if ((p.cursor_path = strdup(s)) == NULL)
            goto oom;
    }
    /* output */
    if (get_str(root, "output", &s, err, errlen) != 0)
        goto bad;
    if (s != NULL) {
        bool abs = s[0] == '/';
        if (s[0] == '\0' || strlen(s) > 400 || (!abs && strchr(s, '/') != NULL) ||
            strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
            perr(err, errlen,
                 "output must be an absolute path, or a file name (no /) to keep "
                 "under the state directory's http/ folder");
            goto bad;
        }
        if ((p.output = strdup(s)) == NULL)
            goto oom;
    }
    /* headers */
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(root, "headers");
    if (h != NULL) {
        if (!cJSON_IsObject(h)) {
            perr(err, errlen, "headers must be an object of name: string value");
            goto bad;
        }
        int n = cJSON_GetArraySize(h);
        if (n > HK_HEADERS_MAX) {
            perr(err, errlen, "headers may hold at most %d entries", HK_HEADERS_MAX);
            goto bad;
        }
        if (n > 0 && (p.headers = calloc((size_t)n, sizeof(char *))) == NULL)
            goto oom;
        for (const cJSON *e = h->child; e != NULL; e = e->next) {
            if (!header_name_ok(e->string)) {
                perr(err, errlen, "header name \"%.64s\" is not a valid HTTP field name",
                     e->string);
                goto bad;
            }
            if (!cJSON_IsString(e) || strpbrk(e->valuestring, "\r\n") != NULL) {
                perr(err, errlen, "header %.64s must have a string value without line breaks",
                     e->string);
                goto bad;
            }
            size_t len = strlen(e->string) + strlen(e->valuestring) + 3;
            char *line = malloc(len);
            if (line == NULL)
                goto oom;
            snprintf(line, len, "%s: %s", e->string, e->valuestring);
            p.headers[p.nheaders++] = line;
        }
    }
    /* protection */
    if (get_name(root, "breaker", false, p.breaker, err, errlen) != 0 ||
        get_name(root, "limit_name", false, p.limit_name, err, errlen) != 0 ||
        get_name(root, "timeout", true, p.timeout, err, errlen) != 0)
        goto bad;
    /* retries */
    v = 5;
    if (get_uint(root, "max_attempts", 1, 100, &v, err, errlen) != 0)
        goto bad;
    p.max_attempts = (uint32_t)v;
    uint64_t base = 100, cap = 10000, ramax = 60000;
    if (get_uint(root, "backoff_base_ms", 1, 3600000, &base, err, errlen) != 0 ||
        get_uint(root, "backoff_cap_ms", 1, 3600000, &cap, err, errlen) != 0 ||
        get_uint(root, "retry_after_max_ms", 1, 3600000, &ramax, err, errlen) != 0)
        goto bad;
    if (cap < base) {
        perr(err, errlen, "backoff_cap_ms must be at least backoff_base_ms");
        goto bad;
    }
    p.backoff_base_ns = base * MS;
    p.backoff_cap_ns = cap * MS;
    p.retry_after_max_ns = ramax * MS;
    v = 16u << 20;
    if (get_uint(root, "max_response_bytes", 1024, 1u << 30, &v, err, errlen) != 0)
        goto bad;
    p.max_response_bytes = v;
    v = 0;
    if (get_uint(root, "start_offset", 0, 1ull << 53, &v, err, errlen) != 0)
        goto bad;
    if (p.mode == EX_HTTP_CURSOR && cJSON_GetObjectItemCaseSensitive(root, "start_offset")) {
        perr(err, errlen, "start_offset is only for offset mode");
        goto bad;
    }
    p.start_offset = v;
    cJSON_Delete(root);
    *out = p;
    return 0;
oom:
    perr(err, errlen, "out of memory");
bad:
    cJSON_Delete(root);
    ex_http_params_deinit(&p);
    return -1;
}

static int hk_validate(const char *params, char *err, size_t errlen)
{
    ex_http_params_t p;
    if (ex_http_params_parse(params, &p, err, errlen) != 0)
        return -1;
    ex_http_params_deinit(&p);
    return 0;
}

/* ------------------------------------------------------------ the actor */

enum {
    HK_TICK = 0x45580400u, /* hk_epoch_msg_t: drive the transfer one step */
    HK_WAKE,               /* hk_epoch_msg_t: a wait (limiter, breaker, backoff) is over */
};

typedef struct hk_epoch_msg {
    bt_msg_t hdr;
    uint64_t epoch;
} hk_epoch_msg_t;

/* Where the current attempt is. */
typedef enum hk_step {
    S_IDLE,     /* nothing in flight (not started, paused, between pages) */
    S_LIMIT,    /* asked the limiter */
    S_BREAKER,  /* asked the breaker */
    S_DEADLINE, /* asked the timeout registry */
    S_TRANSFER, /* curl in flight, ticking */
    S_WAIT,     /* a timer: wait_next says which step follows */
    S_END,      /* an outcome was reported */
} hk_step_t;

typedef struct hk_buf {
    char *p;
    size_t len, cap;
    bool too_large;
    size_t max;
} hk_buf_t;

typedef struct hk {
    bt_ref_t executor, timeouts;
    char run_id[EX_RUN_ID_MAX];
    ex_http_params_t p;
    char out_path[HK_PATH_MAX];
    int fd;
    /* position */
    uint64_t offset;              /* offset mode: the next page's */
    char *cursor;                 /* cursor mode: the next page's; NULL = the first page */
    uint64_t bytes;               /* the output's committed length */
    int64_t items;                /* items written */
    bool ended;                   /* the checkpoint says the last page is written */
    char init_err[EX_ERRMSG_MAX]; /* a problem found by init, reported at EX_K_RUN */
    /* control */
    bool started, paused;
    hk_step_t step, wait_next;
    uint64_t epoch;    /* bumped by every abort; stale ticks and timers are dropped */
    uint64_t corr;     /* the ask the current step waits for */
    uint64_t end_corr; /* S_END: the breaker ask still to answer before stopping */
    bt_timer_t timer;
    bool has_timer;
    uint64_t not_before; /* bt_now() before which the next attempt may not start */
    /* the attempt */
    uint32_t attempts;      /* failed attempts at this page */
    uint64_t page_first_at; /* bt_now() of the page's first attempt */
    bt_ref_t breaker;       /* when permitted: the breaker to report to */
    uint64_t generation;    /* its permission */
    bool has_permit;
    uint64_t deadline_id;
    bool has_deadline;
    uint64_t sent_at;
    /* curl */
    CURLM *multi;
    CURL *easy;
    struct curl_slist *hdrs;
    char *url;
    hk_buf_t body;
    char retry_after[128];
    char curl_err[CURL_ERROR_SIZE];
    bt_prng_t rng;
} hk_t;

static bt_runtime_t *RT(bt_ctx_t *ctx)
{
    return bt_ctx_runtime(ctx);
}

/* The ask a message answers (a reply's corr has BT_CORR_REPLY set). */
static uint64_t corr_of(const bt_msg_t *m)
{
    return bt_msg_corr(m);
}

/* ---- output and checkpoint */

static int fsync_dir_of(const char *path)
{
    char d[HK_PATH_MAX];
    snprintf(d, sizeof(d), "%s", path);
    char *slash = strrchr(d, '/');
    if (slash == NULL)
        return 0;
    *slash = '\0';
    int fd = open(d[0] ? d : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Opens the output and cuts it to the committed length. 0, or -1 with a
 * sentence in why. */
static int output_open(hk_t *h, char *why, size_t whylen)
{
    h->fd = open(h->out_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (h->fd < 0)
        return perr(why, whylen, "cannot open the output %s: %s", h->out_path, strerror(errno));
    struct stat st;
    if (fstat(h->fd, &st) != 0)
        return perr(why, whylen, "cannot stat the output %s: %s", h->out_path, strerror(errno));
    if ((uint64_t)st.st_size < h->bytes)
        return perr(why, whylen,
                    "the output %s has %lld bytes, fewer than the %" PRIu64
                    " of its checkpoint: it was changed outside the run",
                    h->out_path, (long long)st.st_size, h->bytes);
    /* Bytes past the checkpoint were written for a page whose checkpoint
     * never became durable: that page is fetched again. */
    if ((uint64_t)st.st_size != h->bytes &&
        (ftruncate(h->fd, (off_t)h->bytes) != 0 || fdatasync(h->fd) != 0))
        return perr(why, whylen, "cannot truncate the output %s: %s", h->out_path, strerror(errno));
    if (fsync_dir_of(h->out_path) != 0)
        return perr(why, whylen, "cannot sync the folder of %s: %s", h->out_path, strerror(errno));
    return 0;
}

/* Checkpoint: a JSON object, readable in the store. */
static char *ckpt_encode(const hk_t *h)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    cJSON_AddNumberToObject(o, "v", 1);
    if (h->p.mode == EX_HTTP_OFFSET)
        cJSON_AddNumberToObject(o, "offset", (double)h->offset);
    else if (h->cursor != NULL)
        cJSON_AddStringToObject(o, "cursor", h->cursor);
    cJSON_AddNumberToObject(o, "bytes", (double)h->bytes);
    cJSON_AddNumberToObject(o, "items", (double)h->items);
    if (h->ended)
        cJSON_AddTrueToObject(o, "end");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static bool ckpt_num(const cJSON *o, const char *key, bool required, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (v == NULL)
        return !required;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble) ||
        v->valuedouble > 9007199254740992.0)
        return false;
    *out = (uint64_t)v->valuedouble;
    return true;
}

static void ckpt_decode(hk_t *h, const void *data, size_t len)
{
    cJSON *o = cJSON_ParseWithLength(data, len);
    uint64_t ver = 0, items = 0;
    bool ok = o != NULL && cJSON_IsObject(o) && ckpt_num(o, "v", true, &ver) && ver == 1 &&
              ckpt_num(o, "bytes", true, &h->bytes) && ckpt_num(o, "items", true, &items);
    if (ok && h->p.mode == EX_HTTP_OFFSET)
        ok = ckpt_num(o, "offset", true, &h->offset);
    if (ok && h->p.mode == EX_HTTP_CURSOR) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "cursor");
        if (c != NULL && (!cJSON_IsString(c) || (h->cursor = strdup(c->valuestring)) == NULL))
            ok = false;
    }
    h->items = (int64_t)items;
    h->ended = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "end"));
    if (!ok)
        snprintf(h->init_err, sizeof(h->init_err),
                 "the checkpoint does not fit the params (was the job's mode changed?): %.*s",
                 (int)(len > 120 ? 120 : len), (const char *)data);
    cJSON_Delete(o);
}

/* ---- small helpers */

static void timer_stop(bt_ctx_t *ctx, hk_t *h)
{
    if (h->has_timer)
        (void)bt_timer_cancel(RT(ctx), h->timer);
    h->has_timer = false;
}

static bool send_epoch(bt_ctx_t *ctx, hk_t *h, uint32_t id, uint64_t delay_ns)
{
    hk_epoch_msg_t *m = BT_MSG_NEW(hk_epoch_msg_t, id);
    if (m == NULL)
        return false;
    m->epoch = h->epoch;
    int rc = delay_ns == 0 ? bt_send(RT(ctx), bt_self(ctx), &m->hdr)
                           : bt_timer_start(RT(ctx), bt_self(ctx), &m->hdr, delay_ns, 0, &h->timer);
    if (rc != BT_OK) {
        bt_msg_free(&m->hdr);
        return false;
    }
    if (delay_ns != 0)
        h->has_timer = true;
    return true;
}

static void breaker_report(bt_ctx_t *ctx, hk_t *h, bt_breaker_outcome_t outcome)
{
    if (!h->has_permit)
        return;
    h->has_permit = false;
    bt_breaker_report_msg_t *r = BT_MSG_NEW(bt_breaker_report_msg_t, BT_BREAKER_REPORT);
    if (r == NULL)
        return;
    r->generation = h->generation;
    r->outcome = outcome;
    r->latency_ns = bt_now(RT(ctx)) - h->sent_at;
    if (bt_send(RT(ctx), h->breaker, &r->hdr) != BT_OK)
        bt_msg_free(&r->hdr);
}

static void deadline_done(bt_ctx_t *ctx, hk_t *h)
{
    if (!h->has_deadline)
        return;
    h->has_deadline = false;
    bt_to_done_msg_t *d = BT_MSG_NEW(bt_to_done_msg_t, BT_TO_DONE);
    if (d == NULL)
        return;
    d->id = h->deadline_id;
    if (bt_send(RT(ctx), h->timeouts, &d->hdr) != BT_OK)
        bt_msg_free(&d->hdr);
}

static void transfer_drop(hk_t *h)
{
    if (h->multi != NULL && h->easy != NULL && h->step == S_TRANSFER)
        curl_multi_remove_handle(h->multi, h->easy);
    curl_slist_free_all(h->hdrs);
    h->hdrs = NULL;
    free(h->url);
    h->url = NULL;
    free(h->body.p);
    h->body = (hk_buf_t){0};
}

/* Drops whatever the current attempt holds: the transfer (aborted), the
 * breaker's permission (reported as outcome), the deadline, a pending
 * timer, the ask awaited. */
static void attempt_abort(bt_ctx_t *ctx, hk_t *h, bt_breaker_outcome_t outcome)
{
    transfer_drop(h);
    breaker_report(ctx, h, outcome);
    deadline_done(ctx, h);
    timer_stop(ctx, h);
    h->corr = 0;
    h->epoch++;
    h->step = S_IDLE;
}

static void finish(bt_ctx_t *ctx, hk_t *h, uint32_t outcome, const char *why)
{
    /* A breaker permission asked for and not yet answered would, in
     * half_open, hold a probe slot for ever if this actor stopped now: it
     * stays until the answer (or the ask's timeout) to give it back. */
    uint64_t owed = h->step == S_BREAKER ? h->corr : 0;
    attempt_abort(ctx, h, BT_BREAKER_CANCELLED);
    h->step = S_END;
    if (outcome == EX_K_DONE)
        ex_kind_done(ctx, h->executor, h->run_id);
    else if (outcome == EX_K_FAILED)
        ex_kind_failed(ctx, h->executor, h->run_id, why);
    else
        ex_kind_stopped(ctx, h->executor, h->run_id);
    h->end_corr = owed;
    if (owed == 0)
        bt_stop_self(ctx);
}

static void fail(bt_ctx_t *ctx, hk_t *h, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(bt_ctx_t *ctx, hk_t *h, const char *fmt, ...)
{
    char why[EX_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    finish(ctx, h, EX_K_FAILED, why);
}

/* ---- the steps of an attempt */

static void step_limit(bt_ctx_t *ctx, hk_t *h);
static void step_breaker(bt_ctx_t *ctx, hk_t *h);
static void step_deadline(bt_ctx_t *ctx, hk_t *h);
static void step_transfer(bt_ctx_t *ctx, hk_t *h);

static void wait_then(bt_ctx_t *ctx, hk_t *h, uint64_t delay_ns, hk_step_t next)
{
    h->step = S_WAIT;
    h->wait_next = next;
    h->epoch++;
    if (!send_epoch(ctx, h, HK_WAKE, delay_ns < MS ? MS : delay_ns))
        fail(ctx, h, "cannot start a timer: out of memory");
}

/* Asks `to` (looked up by name) with req; the reply is matched by corr. */
static bool ask(bt_ctx_t *ctx, hk_t *h, const char *prefix, const char *name, bt_msg_t *req,
                hk_step_t step, bt_ref_t *to)
{
    char reg[EX_HTTP_NAME_MAX + 16];
    snprintf(reg, sizeof(reg), "%s.%s", prefix, name);
    if (req == NULL) {
        fail(ctx, h, "out of memory");
        return false;
    }
    if (bt_whereis(RT(ctx), reg, to) != BT_OK) {
        bt_msg_free(req);
        fail(ctx, h, "no %s is registered as \"%s\"",
             prefix[0] == 'b' ? "circuit breaker" : "rate limiter", reg);
        return false;
    }
    if (bt_ask(ctx, *to, req, HK_ASK_NS, &h->corr) != BT_OK) {
        bt_msg_free(req);
        fail(ctx, h, "the %s \"%s\" has stopped",
             prefix[0] == 'b' ? "circuit breaker" : "rate limiter", reg);
        return false;
    }
    h->step = step;
    return true;
}

/* Starts (or restarts) an attempt at the current page. */
static void attempt_begin(bt_ctx_t *ctx, hk_t *h)
{
    if (h->paused || h->step != S_IDLE)
        return;
    uint64_t now = bt_now(RT(ctx));
    if (h->not_before > now) {
        wait_then(ctx, h, h->not_before - now, S_LIMIT);
        return;
    }
    if (h->attempts == 0)
        h->page_first_at = now;
    step_limit(ctx, h);
}

static void step_limit(bt_ctx_t *ctx, hk_t *h)
{
    if (h->p.limit_name[0] == '\0') {
        step_breaker(ctx, h);
        return;
    }
    bt_rl_acquire_msg_t *m = BT_MSG_NEW(bt_rl_acquire_msg_t, BT_RL_ACQUIRE);
    if (m != NULL) {
        m->key = bt_ratelimit_key(h->p.limit_name, strlen(h->p.limit_name));
        m->cost = 1;
        m->first_attempt = h->attempts == 0;
    }
    bt_ref_t to;
    (void)ask(ctx, h, "limit", h->p.limit_name, m ? &m->hdr : NULL, S_LIMIT, &to);
}

static void step_breaker(bt_ctx_t *ctx, hk_t *h)
{
    if (h->p.breaker[0] == '\0') {
        step_deadline(ctx, h);
        return;
    }
    (void)ask(ctx, h, "breaker", h->p.breaker, bt_msg_new(sizeof(bt_msg_t), BT_BREAKER_ACQUIRE),
              S_BREAKER, &h->breaker);
}

static void step_deadline(bt_ctx_t *ctx, hk_t *h)
{
    if (h->p.timeout[0] == '\0') {
        step_transfer(ctx, h);
        return;
    }
    if (h->timeouts == BT_REF_NONE) {
        fail(ctx, h, "timeout class %s was asked for, but the executor has no timeout registry",
             h->p.timeout);
        return;
    }
    bt_to_start_msg_t *s = BT_MSG_NEW(bt_to_start_msg_t, BT_TO_START);
    if (s == NULL) {
        fail(ctx, h, "out of memory");
        return;
    }
    snprintf(s->cls, sizeof(s->cls), "%.31s", h->p.timeout); /* checked: <= 31 bytes */
    s->parent = BT_DEADLINE_NONE;
    s->notify = bt_self(ctx);
    if (bt_ask(ctx, h->timeouts, &s->hdr, HK_ASK_NS, &h->corr) != BT_OK) {
        bt_msg_free(&s->hdr);
        fail(ctx, h, "the timeout registry has stopped");
        return;
    }
    h->step = S_DEADLINE;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    hk_buf_t *b = arg;
    size_t k = size * n;
    if (b->len + k > b->max) {
        b->too_large = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (b->len + k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + k + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return 0;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, k);
    b->len += k;
    b->p[b->len] = '\0';
    return k;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    hk_t *h = arg;
    size_t k = size * n;
    if (k >= 5 && strncmp(data, "HTTP/", 5) == 0)
        h->retry_after[0] = '\0'; /* a new response (after a redirect or a 100) */
    else if (k > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
        size_t len = k - 12;
        if (len >= sizeof(h->retry_after))
            len = sizeof(h->retry_after) - 1;
        memcpy(h->retry_after, data + 12, len);
        h->retry_after[len] = '\0';
        char *e = h->retry_after + strlen(h->retry_after);
        while (e > h->retry_after && (e[-1] == '\r' || e[-1] == '\n'))
            *--e = '\0';
    }
    return k;
}

static void step_transfer(bt_ctx_t *ctx, hk_t *h)
{
    transfer_drop(h);
    h->url = ex_http_url_expand(h->p.url, h->offset, h->p.limit, h->cursor);
    if (h->url == NULL) {
        fail(ctx, h, "out of memory");
        return;
    }
    bool has_accept = false;
    for (uint32_t i = 0; i < h->p.nheaders; i++) {
        has_accept |= strncasecmp(h->p.headers[i], "Accept:", 7) == 0;
        struct curl_slist *l = curl_slist_append(h->hdrs, h->p.headers[i]);
        if (l == NULL) {
            fail(ctx, h, "out of memory");
            return;
        }
        h->hdrs = l;
    }
    if (!has_accept) {
        struct curl_slist *l = curl_slist_append(h->hdrs, "Accept: application/json");
        if (l == NULL) {
            fail(ctx, h, "out of memory");
            return;
        }
        h->hdrs = l;
    }
    CURL *e = h->easy;
    curl_easy_reset(e);
    h->body = (hk_buf_t){.max = h->p.max_response_bytes};
    h->retry_after[0] = '\0';
    h->curl_err[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, h->url);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->hdrs);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "baton-http-kind/1");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &h->body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->curl_err);
    curl_easy_setopt(e, CURLOPT_PRIVATE, h);
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        fail(ctx, h, "cannot start a transfer (curl_multi_add_handle failed)");
        return;
    }
    h->step = S_TRANSFER;
    h->sent_at = bt_now(RT(ctx));
    if (!send_epoch(ctx, h, HK_TICK, 0))
        fail(ctx, h, "cannot drive the transfer: out of memory");
}

/* ---- outcomes */

/* A cJSON node at a dotted path; "" = the root. */
static const cJSON *at_path(const cJSON *root, const char *path)
{
    const cJSON *n = root;
    char key[256];
    const char *c = path;
    while (*c && n != NULL) {
        size_t k = strcspn(c, ".");
        if (k >= sizeof(key))
            return NULL;
        memcpy(key, c, k);
        key[k] = '\0';
        n = cJSON_IsObject(n) ? cJSON_GetObjectItemCaseSensitive(n, key) : NULL;
        c += k;
        if (*c == '.')
            c++;
    }
    return n;
}

/* The server's message: its JSON "message", "error" (a string, or an
 * object with a "message"), or the start of the body. */
static void server_message(const hk_buf_t *b, char *out, size_t outlen)
{
    out[0] = '\0';
    if (b->p == NULL || b->len == 0) {
        snprintf(out, outlen, "(empty body)");
        return;
    }
    cJSON *o = cJSON_ParseWithLength(b->p, b->len);
    const cJSON *m = NULL;
    if (cJSON_IsObject(o)) {
        m = cJSON_GetObjectItemCaseSensitive(o, "message");
        if (!cJSON_IsString(m)) {
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
            m = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message") : e;
        }
    }
    const char *src = cJSON_IsString(m) ? m->valuestring : b->p;
    size_t n = cJSON_IsString(m) ? strlen(src) : b->len;
    if (n > HK_ERRBODY_BYTES)
        n = HK_ERRBODY_BYTES;
    if (n >= outlen)
        n = outlen - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ? ' ' : src[i];
    out[n] = '\0';
    cJSON_Delete(o);
}

/* A retryable failure of the attempt (status 0: not an HTTP response). */
static void retry_or_fail(bt_ctx_t *ctx, hk_t *h, int status, const char *what)
{
    h->attempts++;
    bt_failure_t f = {.http_status = status};
    if (h->retry_after[0] != '\0' &&
        bt_retry_after_parse(h->retry_after, strlen(h->retry_after), (int64_t)time(NULL),
                             &f.retry_after_ns) == BT_OK)
        f.has_retry_after = true;
    bt_backoff_args_t a = {
        .base_ns = h->p.backoff_base_ns,
        .cap_ns = h->p.backoff_cap_ns,
        .max_attempts = h->p.max_attempts,
        .rate_limit_backoff_ns =
            bt_backoff_full_jitter(h->p.backoff_base_ns, h->p.backoff_cap_ns, h->attempts, &h->rng),
        .retry_after_max_ns = h->p.retry_after_max_ns,
    };
    uint64_t now = bt_now(RT(ctx));
    bt_retry_decision_t d =
        bt_backoff_decide(&a, h->attempts, now - h->page_first_at, &f, &h->rng, NULL);
    if (!d.retry) {
        fail(ctx, h, "%s after %u attempt%s at %s", what, h->attempts, h->attempts == 1 ? "" : "s",
             h->url != NULL ? h->url : h->p.url);
        return;
    }
    uint64_t delay = d.delay_ns;
    /* The policy honours Retry-After for 429; a 503 may carry one too. */
    if (f.has_retry_after && d.reason == BT_RETRY_BACKOFF) {
        uint64_t ra =
            f.retry_after_ns < a.retry_after_max_ns ? f.retry_after_ns : a.retry_after_max_ns;
        if (ra > delay)
            delay = ra;
    }
    h->not_before = now + delay;
    transfer_drop(h);
    h->step = S_IDLE;
    attempt_begin(ctx, h);
}

/* Appends the page's items, makes them durable, checkpoints. */
static bool page_write(bt_ctx_t *ctx, hk_t *h, const cJSON *items, bool end)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        fail(ctx, h, "out of memory");
        return false;
    }
    int n = 0;
    for (const cJSON *it = items->child; it != NULL; it = it->next, n++) {
        char *line = cJSON_PrintUnformatted(it);
        if (line == NULL) {
            free(buf);
            fail(ctx, h, "out of memory");
            return false;
        }
        size_t k = strlen(line);
        if (len + k + 1 > cap) {
            while (len + k + 1 > cap)
                cap *= 2;
            char *t = realloc(buf, cap);
            if (t == NULL) {
                cJSON_free(line);
                free(buf);
                fail(ctx, h, "out of memory");
                return false;
            }
            buf = t;
        }
        memcpy(buf + len, line, k);
        buf[len + k] = '\n';
        len += k + 1;
        cJSON_free(line);
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = pwrite(h->fd, buf + off, len - off, (off_t)(h->bytes + off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            free(buf);
            (void)ftruncate(h->fd, (off_t)h->bytes);
            fail(ctx, h, "cannot write the output %s: %s", h->out_path, strerror(e));
            return false;
        }
        off += (size_t)w;
    }
    free(buf);
    if (len > 0 && fdatasync(h->fd) != 0) {
        int e = errno;
        (void)ftruncate(h->fd, (off_t)h->bytes);
        fail(ctx, h, "cannot sync the output %s: %s", h->out_path, strerror(e));
        return false;
    }
    /* Only now, with the lines durable, may the checkpoint cover them. */
    h->bytes += len;
    h->items += n;
    h->ended = end;
    char *ck = ckpt_encode(h);
    if (ck == NULL) {
        fail(ctx, h, "out of memory");
        return false;
    }
    ex_kind_checkpoint(ctx, h->executor, h->run_id, h->items, 0, ck, strlen(ck));
    cJSON_free(ck);
    return true;
}

static void page_done(bt_ctx_t *ctx, hk_t *h)
{
    cJSON *root = cJSON_ParseWithLength(h->body.p != NULL ? h->body.p : "", h->body.len);
    if (root == NULL) {
        fail(ctx, h, "the response of %s is not JSON", h->url);
        return;
    }
    const cJSON *items = at_path(root, h->p.items_path);
    if (!cJSON_IsArray(items)) {
        cJSON_Delete(root);
        fail(ctx, h, "items_path \"%s\" does not name an array in the response of %s",
             h->p.items_path, h->url);
        return;
    }
    int n = cJSON_GetArraySize(items);
    char *next = NULL;
    bool end;
    if (h->p.mode == EX_HTTP_OFFSET) {
        end = (uint32_t)n < h->p.limit;
    } else {
        const cJSON *c = at_path(root, h->p.cursor_path);
        char num[32];
        const char *cs = NULL;
        if (cJSON_IsString(c))
            cs = c->valuestring;
        else if (cJSON_IsNumber(c)) {
            snprintf(num, sizeof(num), "%.17g", c->valuedouble);
            cs = num;
        } else if (c != NULL && !cJSON_IsNull(c) && !cJSON_IsFalse(c)) {
            cJSON_Delete(root);
            fail(ctx, h,
                 "cursor_path \"%s\" names neither a string, a number nor null in the "
                 "response of %s",
                 h->p.cursor_path, h->url);
            return;
        }
        end = cs == NULL || cs[0] == '\0';
        if (!end) {
            if (strlen(cs) >= HK_CURSOR_MAX) {
                cJSON_Delete(root);
                fail(ctx, h, "the next cursor is longer than %d bytes", HK_CURSOR_MAX - 1);
                return;
            }
            if (h->cursor != NULL && strcmp(cs, h->cursor) == 0) {
                cJSON_Delete(root);
                fail(ctx, h, "the API returned the same cursor again (%.64s): paging would loop",
                     cs);
                return;
            }
            if ((next = strdup(cs)) == NULL) {
                cJSON_Delete(root);
                fail(ctx, h, "out of memory");
                return;
            }
        }
    }
    /* The position after this page, then the write and the checkpoint. */
    uint64_t old_offset = h->offset;
    char *old_cursor = h->cursor;
    if (h->p.mode == EX_HTTP_OFFSET)
        h->offset += (uint64_t)n;
    else if (!end)
        h->cursor = next;
    bool ok = page_write(ctx, h, items, end);
    cJSON_Delete(root);
    if (!ok) {
        h->offset = old_offset;
        if (h->cursor != old_cursor) {
            free(h->cursor);
            h->cursor = old_cursor;
        }
        return;
    }
    if (h->cursor != old_cursor)
        free(old_cursor);
    h->attempts = 0;
    h->not_before = 0;
    transfer_drop(h);
    h->step = S_IDLE;
    if (end) {
        finish(ctx, h, EX_K_DONE, NULL);
        return;
    }
    attempt_begin(ctx, h);
}

static void transfer_done(bt_ctx_t *ctx, hk_t *h, CURLcode rc)
{
    curl_multi_remove_handle(h->multi, h->easy);
    h->step = S_IDLE; /* the handle is out of the multi */
    deadline_done(ctx, h);
    if (rc != CURLE_OK) {
        if (h->body.too_large) {
            breaker_report(ctx, h, BT_BREAKER_SUCCESS);
            fail(ctx, h, "the response of %s is larger than max_response_bytes (%" PRIu64 ")",
                 h->url, h->p.max_response_bytes);
            return;
        }
        if (rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT ||
            rc == CURLE_TOO_MANY_REDIRECTS || rc == CURLE_PEER_FAILED_VERIFICATION ||
            rc == CURLE_SSL_CACERT_BADFILE) {
            /* Retrying cannot help: a bad URL, a redirect loop, a
             * certificate that does not verify. */
            breaker_report(ctx, h, BT_BREAKER_CANCELLED);
            fail(ctx, h, "%.200s (GET %s)", h->curl_err[0] ? h->curl_err : curl_easy_strerror(rc),
                 h->url);
            return;
        }
        breaker_report(ctx, h, BT_BREAKER_FAILURE);
        char what[EX_ERRMSG_MAX];
        snprintf(what, sizeof(what), "network error: %.200s",
                 h->curl_err[0] ? h->curl_err : curl_easy_strerror(rc));
        retry_or_fail(ctx, h, 0, what);
        return;
    }
    long status = 0;
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
        breaker_report(ctx, h, BT_BREAKER_SUCCESS);
        page_done(ctx, h);
        return;
    }
    char msg[HK_ERRBODY_BYTES + 1];
    server_message(&h->body, msg, sizeof(msg));
    bt_failure_class_t cls = bt_failure_classify((int)status, 0);
    if (status < 400 || cls == BT_FAILURE_PERMANENT) {
        /* The server is up and refuses this request: the breaker counts it
         * as a success, the run fails with the server's reason. */
        breaker_report(ctx, h, BT_BREAKER_SUCCESS);
        fail(ctx, h, "HTTP %ld: %s (GET %s)", status, msg, h->url);
        return;
    }
    /* 429 says "slow down", not "I am down": neither success nor failure. */
    breaker_report(ctx, h, status == 429 ? BT_BREAKER_CANCELLED : BT_BREAKER_FAILURE);
    char what[EX_ERRMSG_MAX];
    snprintf(what, sizeof(what), "HTTP %ld: %s", status, msg);
    retry_or_fail(ctx, h, (int)status, what);
}

static void tick(bt_ctx_t *ctx, hk_t *h)
{
    int fds = 0, running = 0;
    (void)curl_multi_poll(h->multi, NULL, 0, HK_POLL_MS, &fds);
    (void)curl_multi_perform(h->multi, &running);
    int left = 0;
    CURLMsg *m;
    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg == CURLMSG_DONE && m->easy_handle == h->easy) {
            transfer_done(ctx, h, m->data.result);
            return;
        }
    }
    if (!send_epoch(ctx, h, HK_TICK, 0))
        fail(ctx, h, "cannot drive the transfer: out of memory");
}

/* ---- the actor */

static int hk_init(bt_ctx_t *ctx, void *state, const void *arg)
{
    (void)ctx;
    hk_t *h = state;
    const ex_kind_args_t *a = arg;
    h->fd = -1;
    pthread_once(&curl_once, curl_global);
    if (curl_init_rc != CURLE_OK)
        return BT_ESYS;
    char err[256];
    if (ex_http_params_parse(a->params, &h->p, err, sizeof(err)) != 0)
        return BT_EINVAL;
    h->executor = a->executor;
    h->timeouts = a->timeouts;
    snprintf(h->run_id, sizeof(h->run_id), "%s", a->run_id);
    h->offset = h->p.start_offset;
    int n;
    if (h->p.output != NULL && h->p.output[0] == '/') {
        n = snprintf(h->out_path, sizeof(h->out_path), "%s", h->p.output);
    } else {
        char d[HK_PATH_MAX];
        n = snprintf(d, sizeof(d), "%s/http", a->state_dir);
        (void)mkdir(d, 0700);
        if (n >= 0 && (size_t)n < sizeof(d))
            n = h->p.output != NULL
                    ? snprintf(h->out_path, sizeof(h->out_path), "%s/%s", d, h->p.output)
                    : snprintf(h->out_path, sizeof(h->out_path), "%s/%s.jsonl", d, a->run_id);
    }
    if (n < 0 || (size_t)n >= sizeof(h->out_path)) /* reported by on_run */
        snprintf(h->init_err, sizeof(h->init_err), "the output path is longer than %d bytes",
                 HK_PATH_MAX - 1);
    if (a->checkpoint != NULL && a->checkpoint_len > 0)
        ckpt_decode(h, a->checkpoint, a->checkpoint_len);
    h->multi = curl_multi_init();
    h->easy = curl_easy_init();
    if (h->multi == NULL || h->easy == NULL) {
        curl_easy_cleanup(h->easy);
        curl_multi_cleanup(h->multi);
        ex_http_params_deinit(&h->p);
        free(h->cursor);
        return BT_ENOMEM;
    }
    uint64_t seed = 1469598103934665603ull;
    for (const char *c = a->run_id; *c; c++)
        seed = (seed ^ (unsigned char)*c) * 1099511628211ull;
    bt_prng_seed(&h->rng, seed ^ a->attempt);
    return BT_OK;
}

static void on_run(bt_ctx_t *ctx, hk_t *h)
{
    if (h->started)
        return;
    h->started = true;
    if (h->init_err[0] != '\0') {
        fail(ctx, h, "%s", h->init_err);
        return;
    }
    char why[EX_ERRMSG_MAX];
    if (output_open(h, why, sizeof(why)) != 0) {
        fail(ctx, h, "%s", why);
        return;
    }
    if (h->ended) {
        /* The last page was written and checkpointed; only the outcome
         * was lost. */
        finish(ctx, h, EX_K_DONE, NULL);
        return;
    }
    attempt_begin(ctx, h);
}

static void on_limit(bt_ctx_t *ctx, hk_t *h, const bt_rl_decision_msg_t *d)
{
    if (h->step != S_LIMIT || corr_of(&d->hdr) != h->corr)
        return;
    h->corr = 0;
    if (d->status != BT_OK) {
        fail(ctx, h, "the rate limiter limit.%s refused: %s", h->p.limit_name,
             d->status == BT_EFULL ? "it has too many keys" : bt_strerror(d->status));
        return;
    }
    if (d->go)
        step_breaker(ctx, h);
    else
        wait_then(ctx, h, d->wait_ns, S_LIMIT);
}

static void on_permit(bt_ctx_t *ctx, hk_t *h, const bt_breaker_permit_msg_t *p)
{
    if (h->step != S_BREAKER || corr_of(&p->hdr) != h->corr) {
        /* A permission for an attempt that was aborted: give it back. */
        if (p->allowed && p->hdr.from != BT_REF_NONE) {
            bt_breaker_report_msg_t *r = BT_MSG_NEW(bt_breaker_report_msg_t, BT_BREAKER_REPORT);
            if (r != NULL) {
                r->generation = p->generation;
                r->outcome = BT_BREAKER_CANCELLED;
                if (bt_send(RT(ctx), p->hdr.from, &r->hdr) != BT_OK)
                    bt_msg_free(&r->hdr);
            }
        }
        return;
    }
    h->corr = 0;
    if (!p->allowed) {
        wait_then(ctx, h, p->retry_after_ns, S_BREAKER);
        return;
    }
    h->generation = p->generation;
    h->has_permit = true;
    h->sent_at = bt_now(RT(ctx));
    step_deadline(ctx, h);
}

static void on_deadline(bt_ctx_t *ctx, hk_t *h, const bt_to_started_msg_t *s)
{
    if (h->step != S_DEADLINE || corr_of(&s->hdr) != h->corr) {
        if (s->status == BT_OK) { /* late: complete it so it does not fire */
            bt_to_done_msg_t *d = BT_MSG_NEW(bt_to_done_msg_t, BT_TO_DONE);
            if (d != NULL) {
                d->id = s->id;
                if (bt_send(RT(ctx), h->timeouts, &d->hdr) != BT_OK)
                    bt_msg_free(&d->hdr);
            }
        }
        return;
    }
    h->corr = 0;
    if (s->status != BT_OK) {
        fail(ctx, h, "cannot start a deadline of timeout class %s: %s", h->p.timeout,
             s->status == BT_ENOENT ? "no such class" : bt_strerror(s->status));
        return;
    }
    h->deadline_id = s->id;
    h->has_deadline = true;
    step_transfer(ctx, h);
}

static void on_expired(bt_ctx_t *ctx, hk_t *h, const bt_to_expired_msg_t *x)
{
    if (!h->has_deadline || x->id != h->deadline_id)
        return;
    h->has_deadline = false;
    if (h->step != S_TRANSFER)
        return;
    /* An abort like pause's, but a failure of the attempt. */
    curl_multi_remove_handle(h->multi, h->easy);
    h->step = S_IDLE;
    h->epoch++;
    breaker_report(ctx, h, BT_BREAKER_FAILURE);
    char what[EX_ERRMSG_MAX];
    snprintf(what, sizeof(what), "no response within timeout class %s", h->p.timeout);
    retry_or_fail(ctx, h, 0, what);
}

static int hk_dispatch(bt_ctx_t *ctx, void *state, const bt_msg_t *msg)
{
    hk_t *h = state;
    if (h->step == S_END) {
        if (h->end_corr != 0 && corr_of(msg) == h->end_corr &&
            (msg->id == BT_BREAKER_PERMIT || msg->id == BT_MSG_TIMEOUT)) {
            if (msg->id == BT_BREAKER_PERMIT)
                on_permit(ctx, h, (const bt_breaker_permit_msg_t *)msg); /* gives it back */
            h->end_corr = 0;
            bt_stop_self(ctx);
        }
        return BT_OK;
    }
    switch (msg->id) {
    case EX_K_RUN:
        on_run(ctx, h);
        return BT_OK;
    case EX_K_PAUSE:
        /* Abort the request in flight (the page is fetched again on
         * resume) and drop every wait; the checkpoint stays as it is. */
        h->paused = true;
        attempt_abort(ctx, h, BT_BREAKER_CANCELLED);
        ex_kind_paused(ctx, h->executor, h->run_id);
        return BT_OK;
    case EX_K_RESUME:
        if (!h->paused)
            return BT_OK;
        h->paused = false;
        if (h->started)
            attempt_begin(ctx, h);
        return BT_OK;
    case EX_K_STOP:
        finish(ctx, h, EX_K_STOPPED, NULL);
        return BT_OK;
    case HK_TICK:
        if (((const hk_epoch_msg_t *)msg)->epoch == h->epoch && h->step == S_TRANSFER)
            tick(ctx, h);
        return BT_OK;
    case HK_WAKE: {
        if (((const hk_epoch_msg_t *)msg)->epoch != h->epoch || h->step != S_WAIT)
            return BT_OK;
        h->has_timer = false;
        h->step = S_IDLE;
        if (h->wait_next == S_BREAKER)
            step_breaker(ctx, h);
        else
            attempt_begin(ctx, h);
        return BT_OK;
    }
    case BT_RL_DECISION:
        on_limit(ctx, h, (const bt_rl_decision_msg_t *)msg);
        return BT_OK;
    case BT_BREAKER_PERMIT:
        on_permit(ctx, h, (const bt_breaker_permit_msg_t *)msg);
        return BT_OK;
    case BT_TO_STARTED:
        on_deadline(ctx, h, (const bt_to_started_msg_t *)msg);
        return BT_OK;
    case BT_TO_EXPIRED:
        on_expired(ctx, h, (const bt_to_expired_msg_t *)msg);
        return BT_OK;
    case BT_MSG_TIMEOUT:
        if (h->corr != 0 && corr_of(msg) == h->corr) {
            const char *who = h->step == S_LIMIT     ? "the rate limiter"
                              : h->step == S_BREAKER ? "the circuit breaker"
                                                     : "the timeout registry";
            fail(ctx, h, "%s did not answer within %llu ms", who,
                 (unsigned long long)(HK_ASK_NS / MS));
        }
        return BT_OK;
    default:
        return BT_OK;
    }
}

static void hk_cleanup(bt_ctx_t *ctx, void *state)
{
    hk_t *h = state;
    if (h->step != S_END)
        attempt_abort(ctx, h, BT_BREAKER_CANCELLED);
    if (h->easy != NULL)
        curl_easy_cleanup(h->easy);
    if (h->multi != NULL)
        curl_multi_cleanup(h->multi);
    h->easy = NULL;
    h->multi = NULL;
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
    free(h->cursor);
    h->cursor = NULL;
    ex_http_params_deinit(&h->p);
}

static const bt_actor_type_t hk_type = {
    .name = "http-kind",
    .state_size = sizeof(hk_t),
    .init = hk_init,
    .dispatch = hk_dispatch,
    .cleanup = hk_cleanup,
};

static const ex_kind_t hk_kind = {
    .name = "http",
    .type = &hk_type,
    .spawn_flags = BT_SPAWN_PINNED,
    .validate = hk_validate,
    .recovery = EX_RECOVERY_RESUME,
};

const ex_kind_t *ex_http_kind(void)
{
    return &hk_kind;
}
