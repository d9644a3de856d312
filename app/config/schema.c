/*
 * schema.c: config.toml -> bt_config_t (see schema.h and docs/config.md).
 *
 * Every section is described by a table of fields: the key, a parse
 * function that checks the value's type and bounds and stores it at an
 * offset into the section's struct, and the bounds. walk() visits a TOML
 * table's keys in file order, so the first bad key in a section is the one
 * reported; a key with no field is refused with the closest known key
 * (optimal string alignment distance) as a suggestion. After a section's
 * walk, its cross-key rules run (token and token_file not both; a
 * non-loopback address needs a token), then the actor's own check
 * (bt_breaker_args_check, bt_ratelimit_args_check, bt_timeouts_classes), so
 * the rules live in one place. [jobs] is handled last, since jobs name
 * breakers, limits and timeout classes. The config is built in a local
 * struct and handed out only when everything passed; any failure frees it.
 * Memory is plain malloc/free, as in toml.c.
 */
#include "config/schema.h"

#include "config/toml.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NS_PER_US  1000ull
#define NS_PER_MS  1000000ull
#define NS_PER_S   1000000000ull
#define NS_PER_MIN (60 * NS_PER_S)
#define NS_PER_H   (3600 * NS_PER_S)
#define KiB        ((uint64_t)1 << 10)
#define MiB        ((uint64_t)1 << 20)
#define GiB        ((uint64_t)1 << 30)

#define DURATION_FORMS                                                                             \
    "a string with a unit such as \"250ms\", \"30s\", \"1.5s\", \"5m\" or \"1h\", or an integer "  \
    "number of milliseconds"

const char *bt_config_strerror(int err)
{
    switch (err) {
#define BT_CONFIG_ERR_CASE_(name, value, text)                                                     \
    case value:                                                                                    \
        return text;
        BT_CONFIG_ERRNO_MAP(BT_CONFIG_ERR_CASE_)
#undef BT_CONFIG_ERR_CASE_
    }
    return "unknown error";
}

/* ---- context and errors -------------------------------------------------------------------- */

typedef struct ctx {
    const char *file;
    const char *base_dir;
    const char *const *kinds;
    size_t nkinds;
    bt_config_t *cfg;
    bt_config_error_t *err;
    const bt_toml_value_t *jobs; /* [jobs], parsed after everything else */
} ctx_t;

static void set_error(bt_config_error_t *e, int code, const char *file, uint32_t line,
                      uint32_t column, const char *detail)
{
    e->code = code;
    snprintf(e->file, sizeof e->file, "%s", file);
    e->line = line;
    e->column = line != 0 ? column : 0;
    snprintf(e->detail, sizeof e->detail, "%s", detail);
    if (line != 0)
        snprintf(e->message, sizeof e->message, "%s:%" PRIu32 ":%" PRIu32 ": %s", e->file, line,
                 column, e->detail);
    else
        snprintf(e->message, sizeof e->message, "%s: %s", e->file, e->detail);
}

/* Records an error at the position of `at` (NULL: no position) and
 * returns code. */
__attribute__((format(printf, 4, 5))) static int fail(ctx_t *c, int code, const bt_toml_value_t *at,
                                                      const char *fmt, ...)
{
    char detail[sizeof c->err->detail];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    set_error(c->err, code, c->file, bt_toml_line(at), bt_toml_column(at), detail);
    return code;
}

static int oom(ctx_t *c)
{
    return fail(c, BT_CONFIG_ENOMEM, NULL, "out of memory");
}

/* A user-supplied string made safe to quote in a message: control and
 * non-ASCII bytes escaped, cut at about 60 characters. */
static const char *show(char *buf, size_t cap, const char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 8 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (o >= 60 && (ch & 0xc0) != 0x80) { /* cut between characters */
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            buf[o++] = (char)ch;
        else if (ch >= 0x80)
            buf[o++] = (char)ch; /* UTF-8 (checked by the parser): printable enough */
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
    }
    buf[o] = '\0';
    return buf;
}

#define SHOWBUF 80

static const char *article(const char *noun)
{
    return strchr("aeiou", noun[0]) != NULL ? "an" : "a";
}

/* "a string", "an integer", ... */
static const char *type_phrase(const bt_toml_value_t *v, char *buf, size_t cap)
{
    const char *n = bt_toml_type_name(bt_toml_type(v));
    if (bt_toml_type(v) == BT_TOML_BOOL)
        n = "boolean";
    snprintf(buf, cap, "%s %s", article(n), n);
    return buf;
}

static int type_error(ctx_t *c, const bt_toml_value_t *v, const char *path, const char *want)
{
    char t[40];
    return fail(c, BT_CONFIG_ETYPE, v, "%s must be %s, not %s", path, want,
                type_phrase(v, t, sizeof t));
}

/* ---- suggestions --------------------------------------------------------------------------- */

#define DIST_MAX_LEN 64

/* Optimal string alignment distance (Levenshtein plus adjacent
 * transpositions); SIZE_MAX for strings too long to bother. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > DIST_MAX_LEN || m > DIST_MAX_LEN)
        return SIZE_MAX;
    size_t d[DIST_MAX_LEN + 1][DIST_MAX_LEN + 1];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[n][m];
}

/* The candidate closest to word, if it is close enough to be a likely
 * typo: at most a third of the candidate's length (1 for short words, 3
 * at most); NULL otherwise. Candidates are read with get(i). */
static const char *suggest(const char *word, size_t n, const char *(*get)(const void *, size_t),
                           const void *arg)
{
    const char *best = NULL;
    size_t bestd = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        const char *cand = get(arg, i);
        if (*cand == '\0')
            continue;
        size_t limit = strlen(cand) / 3;
        limit = limit < 1 ? 1 : limit > 3 ? 3 : limit;
        size_t d = edit_distance(word, cand);
        if (d <= limit && d < bestd) {
            bestd = d;
            best = cand;
        }
    }
    return best;
}

static const char *get_str(const void *arg, size_t i)
{
    return ((const char *const *)arg)[i];
}

/* Appends "a, b, c" (the candidates) to buf. */
static void list_names(char *buf, size_t cap, size_t n, const char *(*get)(const void *, size_t),
                       const void *arg)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && o < cap; i++) {
        int w = snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", get(arg, i));
        if (w < 0)
            break;
        o += (size_t)w;
    }
    if (o >= cap && cap > 4)
        memcpy(buf + cap - 4, "...", 4);
}

/* ---- durations and sizes ------------------------------------------------------------------- */

int bt_config_duration_parse(const char *s, uint64_t *ns)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {{"ns", 1},       {"us", NS_PER_US}, {"ms", NS_PER_MS},
                 {"s", NS_PER_S}, {"m", NS_PER_MIN}, {"h", NS_PER_H}};
    if (s == NULL || ns == NULL || *s == '\0')
        return BT_CONFIG_EVALUE;
    unsigned __int128 total = 0;
    const char *p = s;
    while (*p != '\0') {
        if (*p < '0' || *p > '9')
            return BT_CONFIG_EVALUE;
        unsigned __int128 whole = 0, frac = 0, scale = 1;
        bool big = false;
        while (*p >= '0' && *p <= '9') {
            whole = whole * 10 + (unsigned)(*p++ - '0');
            if (whole > UINT64_MAX)
                big = true, whole = UINT64_MAX;
        }
        if (*p == '.') {
            p++;
            if (*p < '0' || *p > '9')
                return BT_CONFIG_EVALUE;
            for (int digits = 0; *p >= '0' && *p <= '9'; p++, digits++)
                if (digits < 18) { /* finer digits are below a nanosecond: truncated */
                    frac = frac * 10 + (unsigned)(*p - '0');
                    scale *= 10;
                }
        }
        size_t u = sizeof units / sizeof units[0];
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t l = strlen(units[i].name);
            /* "ms" before "m": a longer unit wins when both match */
            if (strncmp(p, units[i].name, l) == 0 &&
                (u == sizeof units / sizeof units[0] || l > strlen(units[u].name)))
                u = i;
        }
        if (u == sizeof units / sizeof units[0])
            return BT_CONFIG_EVALUE;
        p += strlen(units[u].name);
        if (big)
            return BT_CONFIG_ERANGE;
        total += whole * units[u].ns + frac * units[u].ns / scale;
        if (total > UINT64_MAX)
            return BT_CONFIG_ERANGE;
    }
    *ns = (uint64_t)total;
    return BT_CONFIG_OK;
}

/* "1.5" from whole and a fraction of `digits` digits, trailing zeros cut. */
static int put_decimal(char *buf, size_t len, uint64_t whole, uint64_t frac, int digits,
                       const char *unit)
{
    char f[24];
    snprintf(f, sizeof f, "%0*" PRIu64, digits, frac);
    size_t n = strlen(f);
    while (n > 0 && f[n - 1] == '0')
        f[--n] = '\0';
    if (n == 0)
        return snprintf(buf, len, "%" PRIu64 "%s", whole, unit);
    return snprintf(buf, len, "%" PRIu64 ".%s%s", whole, f, unit);
}

char *bt_config_duration_format(uint64_t ns, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return buf;
    if (ns == 0) {
        snprintf(buf, len, "0s");
    } else if (ns >= NS_PER_MIN && ns % NS_PER_S == 0) {
        uint64_t h = ns / NS_PER_H, m = ns % NS_PER_H / NS_PER_MIN, s = ns % NS_PER_MIN / NS_PER_S;
        int o = 0;
        if (h)
            o += snprintf(buf + o, len - (size_t)o, "%" PRIu64 "h", h);
        if (m && (size_t)o < len)
            o += snprintf(buf + o, len - (size_t)o, "%" PRIu64 "m", m);
        if (s && (size_t)o < len)
            snprintf(buf + o, len - (size_t)o, "%" PRIu64 "s", s);
    } else if (ns >= NS_PER_S) {
        put_decimal(buf, len, ns / NS_PER_S, ns % NS_PER_S, 9, "s");
    } else if (ns >= NS_PER_MS) {
        put_decimal(buf, len, ns / NS_PER_MS, ns % NS_PER_MS, 6, "ms");
    } else if (ns >= NS_PER_US) {
        put_decimal(buf, len, ns / NS_PER_US, ns % NS_PER_US, 3, "us");
    } else {
        snprintf(buf, len, "%" PRIu64 "ns", ns);
    }
    return buf;
}

/* Sizes: an integer of bytes, or a string "512B", "16KiB", "1MiB", "1GiB". */
static int size_parse(const char *s, uint64_t *out)
{
    static const struct {
        const char *name;
        uint64_t mult;
    } units[] = {{"B", 1}, {"KiB", KiB}, {"MiB", MiB}, {"GiB", GiB}};
    const char *p = s;
    uint64_t v = 0;
    if (*p < '0' || *p > '9')
        return BT_CONFIG_EVALUE;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return BT_CONFIG_ERANGE;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(p, units[i].name) == 0) {
            if (v > UINT64_MAX / units[i].mult)
                return BT_CONFIG_ERANGE;
            *out = v * units[i].mult;
            return BT_CONFIG_OK;
        }
    return BT_CONFIG_EVALUE;
}

static const char *size_format(uint64_t v, char *buf, size_t len)
{
    if (v != 0 && v % GiB == 0)
        snprintf(buf, len, "%" PRIu64 "GiB", v / GiB);
    else if (v != 0 && v % MiB == 0)
        snprintf(buf, len, "%" PRIu64 "MiB", v / MiB);
    else if (v != 0 && v % KiB == 0)
        snprintf(buf, len, "%" PRIu64 "KiB", v / KiB);
    else
        snprintf(buf, len, "%" PRIu64 "B", v);
    return buf;
}

/* ---- fields and the table walk ------------------------------------------------------------- */

typedef struct field field_t;

/* Parses v (at key path, e.g. "server.port") into base + f->off. */
typedef int (*parse_fn)(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                        void *base);

struct field {
    const char *key;
    parse_fn parse;
    size_t off;
    uint8_t width; /* bytes of an integer field */
    uint64_t min, max;
    const char *hint; /* appended to a range error, e.g. "0 = online CPUs" */
};

static const char *field_key(const void *arg, size_t i)
{
    return ((const field_t *)arg)[i].key;
}

/* A field that is a whole section ([server]) has this width. */
#define SECTION 0xff

/* Candidates for a misspelt [section]: only the sections ("" never
 * matches). */
static const char *section_key(const void *arg, size_t i)
{
    const field_t *f = &((const field_t *)arg)[i];
    return f->width == SECTION ? f->key : "";
}

static void store_uint(void *p, uint8_t width, uint64_t v)
{
    switch (width) {
    case 2:
        *(uint16_t *)p = (uint16_t)v;
        break;
    case 4:
        *(uint32_t *)p = (uint32_t)v;
        break;
    default:
        *(uint64_t *)p = v;
        break;
    }
}

static int range_error(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                       const char *shown, const char *lo, const char *hi)
{
    return fail(c, BT_CONFIG_ERANGE, v, "%s = %s is out of range %s..%s%s%s%s", path, shown, lo, hi,
                f->hint ? " (" : "", f->hint ? f->hint : "", f->hint ? ")" : "");
}

/* An integer in [f->min, f->max]. */
static int p_uint(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                  void *base)
{
    int64_t i;
    if (bt_toml_as_int(v, &i) != BT_TOML_OK)
        return type_error(c, v, path, "an integer");
    if (i < 0 || (uint64_t)i < f->min || (uint64_t)i > f->max) {
        char shown[24], lo[24], hi[24];
        snprintf(shown, sizeof shown, "%" PRId64, i);
        snprintf(lo, sizeof lo, "%" PRIu64, f->min);
        snprintf(hi, sizeof hi, "%" PRIu64, f->max);
        return range_error(c, f, v, path, shown, lo, hi);
    }
    store_uint((char *)base + f->off, f->width, (uint64_t)i);
    return BT_CONFIG_OK;
}

/* A duration in [f->min, f->max] ns, stored as uint64_t ns. */
static int p_duration(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                      void *base)
{
    char shown[SHOWBUF + 8], sb[SHOWBUF];
    uint64_t ns = 0;
    int64_t ms;
    const char *s = NULL;
    size_t len;
    if (bt_toml_as_string(v, &s, &len) == BT_TOML_OK) {
        snprintf(shown, sizeof shown, "\"%s\"", show(sb, sizeof sb, s, len));
        int rc = strlen(s) == len ? bt_config_duration_parse(s, &ns) : BT_CONFIG_EVALUE;
        if (rc == BT_CONFIG_EVALUE)
            return fail(c, BT_CONFIG_EVALUE, v, "%s = %s is not a duration; use %s", path, shown,
                        DURATION_FORMS);
        if (rc != BT_CONFIG_OK)
            ns = UINT64_MAX; /* too large: reported as out of range below */
    } else if (bt_toml_as_int(v, &ms) == BT_TOML_OK) {
        snprintf(shown, sizeof shown, "%" PRId64 " (ms)", ms);
        if (ms < 0)
            return fail(c, BT_CONFIG_EVALUE, v, "%s = %s is not a duration; use %s", path, shown,
                        DURATION_FORMS);
        ns = (uint64_t)ms > UINT64_MAX / NS_PER_MS ? UINT64_MAX : (uint64_t)ms * NS_PER_MS;
    } else {
        char t[40];
        return fail(c, BT_CONFIG_ETYPE, v, "%s must be a duration (%s), not %s", path,
                    DURATION_FORMS, type_phrase(v, t, sizeof t));
    }
    if (ns < f->min || ns > f->max) {
        char lo[32], hi[32];
        bt_config_duration_format(f->min, lo, sizeof lo);
        bt_config_duration_format(f->max, hi, sizeof hi);
        return range_error(c, f, v, path, shown, lo, hi);
    }
    *(uint64_t *)((char *)base + f->off) = ns;
    return BT_CONFIG_OK;
}

/* A size in bytes in [f->min, f->max], stored as size_t. */
static int p_size(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                  void *base)
{
    char shown[SHOWBUF + 8], sb[SHOWBUF];
    uint64_t n = 0;
    int64_t i;
    const char *s = NULL;
    size_t len;
    if (bt_toml_as_string(v, &s, &len) == BT_TOML_OK) {
        snprintf(shown, sizeof shown, "\"%s\"", show(sb, sizeof sb, s, len));
        int rc = strlen(s) == len ? size_parse(s, &n) : BT_CONFIG_EVALUE;
        if (rc == BT_CONFIG_EVALUE)
            return fail(c, BT_CONFIG_EVALUE, v,
                        "%s = %s is not a size; use an integer number of bytes or a string such "
                        "as \"512B\", \"16KiB\", \"1MiB\"",
                        path, shown);
        if (rc != BT_CONFIG_OK)
            n = UINT64_MAX;
    } else if (bt_toml_as_int(v, &i) == BT_TOML_OK) {
        snprintf(shown, sizeof shown, "%" PRId64, i);
        n = i < 0 ? 0 : (uint64_t)i;
        if (i < 0) {
            char lo[24], hi[24];
            return range_error(c, f, v, path, shown, size_format(f->min, lo, sizeof lo),
                               size_format(f->max, hi, sizeof hi));
        }
    } else {
        return type_error(c, v, path,
                          "a size (an integer number of bytes or a string like \"1MiB\")");
    }
    if (n < f->min || n > f->max) {
        char lo[24], hi[24];
        return range_error(c, f, v, path, shown, size_format(f->min, lo, sizeof lo),
                           size_format(f->max, hi, sizeof hi));
    }
    *(size_t *)((char *)base + f->off) = (size_t)n;
    return BT_CONFIG_OK;
}

/* A string without NUL bytes, non-empty; *out is v's text (owned by the
 * document). */
static int get_text(ctx_t *c, const bt_toml_value_t *v, const char *path, const char **out)
{
    const char *s = NULL;
    size_t len;
    if (bt_toml_as_string(v, &s, &len) != BT_TOML_OK)
        return type_error(c, v, path, "a string");
    if (len == 0)
        return fail(c, BT_CONFIG_EVALUE, v, "%s must not be empty", path);
    if (strlen(s) != len)
        return fail(c, BT_CONFIG_EVALUE, v, "%s must not contain a NUL character", path);
    *out = s;
    return BT_CONFIG_OK;
}

static int dup_into(ctx_t *c, char **slot, const char *s)
{
    char *d = strdup(s);
    if (d == NULL)
        return oom(c);
    free(*slot);
    *slot = d;
    return BT_CONFIG_OK;
}

/* A non-empty string, copied into a char * field. */
static int p_string(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                    void *base)
{
    const char *s = NULL;
    int rc = get_text(c, v, path, &s);
    return rc != BT_CONFIG_OK ? rc : dup_into(c, (char **)((char *)base + f->off), s);
}

/* One of names[]; *idx receives its index. */
static int parse_enum(ctx_t *c, const bt_toml_value_t *v, const char *path,
                      const char *const *names, size_t n, size_t *idx)
{
    const char *s = NULL;
    int rc = get_text(c, v, path, &s);
    if (rc != BT_CONFIG_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) {
            *idx = i;
            return BT_CONFIG_OK;
        }
    char list[200], sb[SHOWBUF];
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s\"%s\"", i ? ", " : "", names[i]);
    const char *best = suggest(s, n, get_str, names);
    if (best != NULL)
        return fail(c, BT_CONFIG_EVALUE, v, "%s = \"%s\" is not one of %s; did you mean \"%s\"?",
                    path, show(sb, sizeof sb, s, strlen(s)), list, best);
    return fail(c, BT_CONFIG_EVALUE, v, "%s = \"%s\" is not one of %s", path,
                show(sb, sizeof sb, s, strlen(s)), list);
}

static int p_log_level(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                       void *base)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    static const bt_log_level_t levels[] = {BT_LOG_DEBUG, BT_LOG_INFO, BT_LOG_WARN, BT_LOG_ERROR};
    size_t i;
    int rc = parse_enum(c, v, path, names, 4, &i);
    if (rc == BT_CONFIG_OK)
        *(bt_log_level_t *)((char *)base + f->off) = levels[i];
    return rc;
}

static const char *const sync_names[] = {"full", "normal", "off"};
static const rs_sync_t sync_values[] = {RS_SYNC_FULL, RS_SYNC_NORMAL, RS_SYNC_OFF};

static int p_sync(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                  void *base)
{
    size_t i;
    int rc = parse_enum(c, v, path, sync_names, 3, &i);
    if (rc == BT_CONFIG_OK)
        *(rs_sync_t *)((char *)base + f->off) = sync_values[i];
    return rc;
}

static const char *const recovery_names[] = {"default", "fail", "resume"};
static const ex_recovery_t recovery_values[] = {EX_RECOVERY_DEFAULT, EX_RECOVERY_FAIL,
                                                EX_RECOVERY_RESUME};

static int p_recovery(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                      void *base)
{
    size_t i;
    int rc = parse_enum(c, v, path, recovery_names, 3, &i);
    if (rc == BT_CONFIG_OK)
        *(ex_recovery_t *)((char *)base + f->off) = recovery_values[i];
    return rc;
}

/* Visits the keys of table in file order: each must name a field, whose
 * parse function then stores it. where is "[executor]" or "the top level"
 * (for messages), prefix the dotted path of the table ("" at the top).
 * at[i] (nfields entries) receives the value of field i, or NULL. */
static int walk(ctx_t *c, const bt_toml_value_t *table, const char *where, const char *prefix,
                const field_t *fields, size_t nfields, void *base,
                const bt_toml_value_t **at /* OUT */)
{
    for (size_t i = 0; i < nfields; i++)
        at[i] = NULL;
    size_t n = bt_toml_table_count(table);
    for (size_t k = 0; k < n; k++) {
        size_t keylen;
        const char *key = bt_toml_table_key(table, k, &keylen);
        const bt_toml_value_t *v = bt_toml_table_value(table, k);
        size_t i = nfields;
        if (strlen(key) == keylen)
            for (i = 0; i < nfields; i++)
                if (strcmp(key, fields[i].key) == 0)
                    break;
        if (i == nfields) {
            char sb[SHOWBUF], known[400];
            bool section = *prefix == '\0' && bt_toml_type(v) == BT_TOML_TABLE;
            const char *best = suggest(key, nfields, section ? section_key : field_key, fields);
            show(sb, sizeof sb, key, keylen);
            if (section && best != NULL)
                return fail(c, BT_CONFIG_EUNKNOWN, v, "unknown section [%s]; did you mean [%s]?",
                            sb, best);
            if (best != NULL)
                return fail(c, BT_CONFIG_EUNKNOWN, v, "unknown key '%s' %s %s; did you mean '%s'?",
                            sb, *prefix ? "in" : "at", where, best);
            list_names(known, sizeof known, nfields, field_key, fields);
            if (section)
                return fail(c, BT_CONFIG_EUNKNOWN, v, "unknown section [%s] (known: %s)", sb,
                            known);
            return fail(c, BT_CONFIG_EUNKNOWN, v, "unknown key '%s' %s %s (known keys: %s)", sb,
                        *prefix ? "in" : "at", where, known);
        }
        char path[2 * BT_CONFIG_NAME_MAX + 64];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", key);
        at[i] = v;
        int rc = fields[i].parse(c, &fields[i], v, path, base);
        if (rc != BT_CONFIG_OK)
            return rc;
    }
    return BT_CONFIG_OK;
}

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))
#define U32(T, m)  offsetof(T, m), 4
#define U64(T, m)  offsetof(T, m), 8
#define NOW(T, m)  offsetof(T, m), 0

/* A section must be a table. */
static int want_table(ctx_t *c, const bt_toml_value_t *v, const char *path)
{
    if (bt_toml_type(v) == BT_TOML_TABLE)
        return BT_CONFIG_OK;
    char t[40];
    return fail(c, BT_CONFIG_ETYPE, v, "%s must be a table ([%s]), not %s", path, path,
                type_phrase(v, t, sizeof t));
}

/* Names of jobs, breakers and limits: they appear in URLs and messages. */
static int check_name(ctx_t *c, const bt_toml_value_t *v, const char *section, const char *name,
                      size_t len)
{
    bool ok = len > 0 && len < BT_CONFIG_NAME_MAX && strlen(name) == len;
    for (size_t i = 0; ok && i < len; i++) {
        char ch = name[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '_' || ch == '-';
    }
    if (ok)
        return BT_CONFIG_OK;
    char sb[SHOWBUF];
    return fail(c, BT_CONFIG_EVALUE, v,
                "%s name '%s' is not valid: use 1..%d characters of A-Z, a-z, 0-9, '_' or '-'",
                section, show(sb, sizeof sb, name, len), BT_CONFIG_NAME_MAX - 1);
}

/* ---- paths ---------------------------------------------------------------------------------- */

/* base/rel, or rel itself when it is absolute or base is empty. */
static char *path_join(const char *base, const char *rel)
{
    if (rel[0] == '/' || base == NULL || base[0] == '\0')
        return strdup(rel);
    size_t bl = strlen(base), rl = strlen(rel);
    bool slash = base[bl - 1] == '/';
    char *p = malloc(bl + rl + 2);
    if (p == NULL)
        return NULL;
    memcpy(p, base, bl);
    if (!slash)
        p[bl++] = '/';
    memcpy(p + bl, rel, rl + 1);
    return p;
}

/* ---- [runtime] ------------------------------------------------------------------------------ */

static const field_t runtime_fields[] = {
    {"threads", p_uint, U32(bt_config_t, runtime_threads), 0, 256, "0 = online CPUs"},
};

static int p_sec_runtime(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                         void *base)
{
    const bt_toml_value_t *at[NFIELDS(runtime_fields)];
    int rc = want_table(c, v, path);
    return rc != BT_CONFIG_OK ? rc
                              : walk(c, v, "[runtime]", "runtime", runtime_fields,
                                     NFIELDS(runtime_fields), c->cfg, at);
}

/* ---- [server] ------------------------------------------------------------------------------- */

static bool is_loopback(const char *addr)
{
    unsigned char b[16];
    if (inet_pton(AF_INET, addr, b) == 1)
        return b[0] == 127;
    if (inet_pton(AF_INET6, addr, b) == 1) {
        static const unsigned char one[16] = {[15] = 1};
        static const unsigned char mapped[12] = {[10] = 0xff, [11] = 0xff};
        return memcmp(b, one, 16) == 0 || (memcmp(b, mapped, 12) == 0 && b[12] == 127);
    }
    return false;
}

static int p_address(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                     void *base)
{
    const char *s = NULL;
    unsigned char b[16];
    int rc = get_text(c, v, path, &s);
    if (rc != BT_CONFIG_OK)
        return rc;
    if (inet_pton(AF_INET, s, b) != 1 && inet_pton(AF_INET6, s, b) != 1) {
        char sb[SHOWBUF];
        return fail(c, BT_CONFIG_EVALUE, v,
                    "%s = \"%s\" is not an IPv4 or IPv6 address (write a literal such as "
                    "127.0.0.1 or ::1; host names are not resolved)",
                    path, show(sb, sizeof sb, s, strlen(s)));
    }
    return dup_into(c, (char **)((char *)base + f->off), s);
}

/* A bearer token: BT_CONFIG_TOKEN_MIN..MAX visible ASCII characters. */
static int check_token(ctx_t *c, const bt_toml_value_t *v, const char *what, const char *s,
                       size_t len)
{
    if (len < BT_CONFIG_TOKEN_MIN)
        return fail(c, BT_CONFIG_EVALUE, v,
                    "%s is %zu characters; a token must be at least %d (use a random string, "
                    "e.g. from openssl rand -hex 32)",
                    what, len, BT_CONFIG_TOKEN_MIN);
    if (len > BT_CONFIG_TOKEN_MAX)
        return fail(c, BT_CONFIG_EVALUE, v, "%s is longer than %d characters", what,
                    BT_CONFIG_TOKEN_MAX);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return fail(c, BT_CONFIG_EVALUE, v,
                        "%s must be printable ASCII without spaces (it is sent in an HTTP "
                        "header); character %zu is not",
                        what, i + 1);
    return BT_CONFIG_OK;
}

static int p_token(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                   void *base)
{
    const char *s = NULL;
    size_t len;
    if (bt_toml_as_string(v, &s, &len) != BT_TOML_OK)
        return type_error(c, v, path, "a string");
    int rc = check_token(c, v, path, s, len);
    return rc != BT_CONFIG_OK ? rc : dup_into(c, (char **)((char *)base + f->off), s);
}

static int p_hosts(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                   void *base)
{
    bt_config_server_t *srv = base;
    if (bt_toml_type(v) != BT_TOML_ARRAY)
        return type_error(c, v, path, "an array of host names");
    size_t n = bt_toml_array_count(v);
    if (n > BT_CONFIG_ALLOWED_HOSTS)
        return fail(c, BT_CONFIG_ERANGE, v, "%s has %zu entries; at most %d are allowed", path, n,
                    BT_CONFIG_ALLOWED_HOSTS);
    char **hosts = calloc(n ? n : 1, sizeof *hosts);
    if (hosts == NULL)
        return oom(c);
    for (size_t i = 0; i < srv->nallowed_hosts; i++)
        free(srv->allowed_hosts[i]);
    free(srv->allowed_hosts);
    srv->allowed_hosts = hosts;
    srv->nallowed_hosts = 0;
    for (size_t i = 0; i < n; i++) {
        const bt_toml_value_t *e = bt_toml_array_at(v, i);
        char ep[128], sb[SHOWBUF];
        unsigned char b[16];
        snprintf(ep, sizeof ep, "%s[%zu]", path, i);
        const char *s;
        int rc = get_text(c, e, ep, &s);
        if (rc != BT_CONFIG_OK)
            return rc;
        bool ok = strlen(s) <= 253;
        for (const char *p = s; ok && *p; p++)
            ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                 *p == '-' || *p == '.';
        if (!ok && inet_pton(AF_INET6, s, b) != 1)
            return fail(c, BT_CONFIG_EVALUE, e,
                        "%s = \"%s\" is not a host name or IP address (no port, no scheme: "
                        "\"baton.example.org\", \"10.0.0.5\", \"::1\")",
                        ep, show(sb, sizeof sb, s, strlen(s)));
        if ((hosts[i] = strdup(s)) == NULL)
            return oom(c);
        srv->nallowed_hosts = (uint32_t)i + 1;
    }
    return BT_CONFIG_OK;
}

static const field_t server_fields[] = {
    {"address", p_address, NOW(bt_config_server_t, address), 0, 0, NULL},
    {"port", p_uint, offsetof(bt_config_server_t, port), 2, 1, 65535, NULL},
    {"token", p_token, NOW(bt_config_server_t, token), 0, 0, NULL},
    {"token_file", p_string, NOW(bt_config_server_t, token_file), 0, 0, NULL},
    {"allowed_hosts", p_hosts, 0, 0, 0, 0, NULL},
    {"max_body", p_size, NOW(bt_config_server_t, max_body), KiB, 64 * MiB, NULL},
    {"max_header", p_size, NOW(bt_config_server_t, max_header), KiB, MiB, NULL},
    {"max_connections", p_uint, U32(bt_config_server_t, max_connections), 1, 65536, NULL},
    {"max_connections_per_ip", p_uint, U32(bt_config_server_t, max_connections_per_ip), 1, 65536,
     NULL},
    {"request_deadline", p_duration, U64(bt_config_server_t, request_deadline_ns), 100 * NS_PER_MS,
     5 * NS_PER_MIN, NULL},
    {"idle_timeout", p_duration, U64(bt_config_server_t, idle_timeout_ns), NS_PER_S, NS_PER_H,
     NULL},
};
enum {
    SRV_ADDRESS,
    SRV_PORT,
    SRV_TOKEN,
    SRV_TOKEN_FILE,
    SRV_HOSTS,
    SRV_MAX_BODY,
    SRV_MAX_HEADER,
    SRV_MAX_CONN,
    SRV_MAX_PER_IP
};

/* Reads the token file: a regular file, private to its owner (as ssh wants
 * of a key), holding the token and at most a trailing newline. */
static int read_token_file(ctx_t *c, const bt_toml_value_t *at, bt_config_server_t *srv)
{
    char sb[SHOWBUF], buf[BT_CONFIG_TOKEN_MAX + 3];
    const char *shown = show(sb, sizeof sb, srv->token_file, strlen(srv->token_file));
    int fd = open(srv->token_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return fail(c, BT_CONFIG_EIO, at, /* ENOENT is kept for the config file itself */
                    "server.token_file '%s' cannot be opened: %s", shown, strerror(errno));
    struct stat st;
    int rc = BT_CONFIG_OK;
    if (fstat(fd, &st) != 0)
        rc = fail(c, BT_CONFIG_EIO, at, "server.token_file '%s': %s", shown, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = fail(c, BT_CONFIG_EVALUE, at, "server.token_file '%s' is not a regular file", shown);
    else if ((st.st_mode & 077) != 0)
        rc = fail(c, BT_CONFIG_EPERM, at,
                  "server.token_file '%s' has mode %04o, open to group or others; make it "
                  "private with chmod 600",
                  shown, (unsigned)(st.st_mode & 07777));
    size_t len = 0;
    while (rc == BT_CONFIG_OK && len < sizeof buf) {
        ssize_t r = read(fd, buf + len, sizeof buf - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = fail(c, BT_CONFIG_EIO, at, "server.token_file '%s': %s", shown, strerror(errno));
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (rc != BT_CONFIG_OK)
        return rc;
    if (len == sizeof buf)
        return fail(c, BT_CONFIG_EVALUE, at, "server.token_file '%s' is longer than %d characters",
                    shown, BT_CONFIG_TOKEN_MAX);
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    char what[SHOWBUF + 48];
    snprintf(what, sizeof what, "the token in server.token_file '%s'", shown);
    if ((rc = check_token(c, at, what, buf, len)) != BT_CONFIG_OK)
        return rc;
    buf[len] = '\0';
    srv->token = strdup(buf);
    memset(buf, 0, sizeof buf);
    return srv->token == NULL ? oom(c) : BT_CONFIG_OK;
}

static int p_sec_server(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                        void *base)
{
    bt_config_server_t *srv = &c->cfg->server;
    const bt_toml_value_t *at[NFIELDS(server_fields)];
    int rc = want_table(c, v, path);
    if (rc == BT_CONFIG_OK)
        rc = walk(c, v, "[server]", "server", server_fields, NFIELDS(server_fields), srv, at);
    if (rc != BT_CONFIG_OK)
        return rc;
    if (at[SRV_TOKEN] != NULL && at[SRV_TOKEN_FILE] != NULL) {
        const bt_toml_value_t *later =
            bt_toml_line(at[SRV_TOKEN]) > bt_toml_line(at[SRV_TOKEN_FILE]) ? at[SRV_TOKEN]
                                                                           : at[SRV_TOKEN_FILE];
        return fail(c, BT_CONFIG_EVALUE, later,
                    "server.token and server.token_file are both set; use one of them");
    }
    if (at[SRV_TOKEN_FILE] != NULL) {
        char *p = path_join(c->base_dir, srv->token_file);
        if (p == NULL)
            return oom(c);
        free(srv->token_file);
        srv->token_file = p;
        if ((rc = read_token_file(c, at[SRV_TOKEN_FILE], srv)) != BT_CONFIG_OK)
            return rc;
    }
    if (srv->token == NULL && !is_loopback(srv->address))
        return fail(c, BT_CONFIG_EVALUE, at[SRV_ADDRESS],
                    "server.address %s is not loopback; set server.token or server.token_file",
                    srv->address);
    if (srv->max_connections_per_ip > srv->max_connections) {
        if (at[SRV_MAX_PER_IP] != NULL)
            return fail(c, BT_CONFIG_ERANGE, at[SRV_MAX_PER_IP],
                        "server.max_connections_per_ip = %" PRIu32
                        " is more than server.max_connections (%" PRIu32 ")",
                        srv->max_connections_per_ip, srv->max_connections);
        srv->max_connections_per_ip = srv->max_connections; /* the default, lowered */
    }
    if (srv->idle_timeout_ns % NS_PER_S != 0) {
        char d[32];
        return fail(c, BT_CONFIG_EVALUE, at[NFIELDS(server_fields) - 1],
                    "server.idle_timeout = %s must be a whole number of seconds",
                    bt_config_duration_format(srv->idle_timeout_ns, d, sizeof d));
    }
    return BT_CONFIG_OK;
}

/* ---- [store] -------------------------------------------------------------------------------- */

static const field_t store_fields[] = {
    {"state_dir", p_string, NOW(bt_config_store_t, state_dir), 0, 0, NULL},
    {"path", p_string, NOW(bt_config_store_t, path), 0, 0, NULL},
    {"sync", p_sync, NOW(bt_config_store_t, sync), 0, 0, NULL},
};

static int p_sec_store(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                       void *base)
{
    const bt_toml_value_t *at[NFIELDS(store_fields)];
    int rc = want_table(c, v, path);
    return rc != BT_CONFIG_OK ? rc
                              : walk(c, v, "[store]", "store", store_fields, NFIELDS(store_fields),
                                     &c->cfg->store, at);
}

/* state_dir against the config's directory, path against state_dir. */
static int resolve_store(ctx_t *c)
{
    bt_config_store_t *st = &c->cfg->store;
    char *dir = path_join(c->base_dir, st->state_dir);
    if (dir == NULL)
        return oom(c);
    free(st->state_dir);
    st->state_dir = dir;
    char *db = path_join(dir, st->path);
    if (db == NULL)
        return oom(c);
    free(st->path);
    st->path = db;
    return BT_CONFIG_OK;
}

/* ---- [executor] ----------------------------------------------------------------------------- */

static const field_t executor_fields[] = {
    {"max_running", p_uint, U32(bt_config_executor_t, max_running), 1, 4096, NULL},
    {"max_pending", p_uint, U32(bt_config_executor_t, max_pending), 1, 1000000, NULL},
    {"shutdown_timeout", p_duration, U64(bt_config_executor_t, shutdown_timeout_ns),
     100 * NS_PER_MS, 10 * NS_PER_MIN, NULL},
    {"progress_every", p_duration, U64(bt_config_executor_t, progress_every_ns), 10 * NS_PER_MS,
     NS_PER_H, NULL},
    {"progress_every_steps", p_uint, U32(bt_config_executor_t, progress_every_steps), 1, 1000000,
     NULL},
};

static int p_sec_executor(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                          void *base)
{
    const bt_toml_value_t *at[NFIELDS(executor_fields)];
    int rc = want_table(c, v, path);
    return rc != BT_CONFIG_OK ? rc
                              : walk(c, v, "[executor]", "executor", executor_fields,
                                     NFIELDS(executor_fields), &c->cfg->executor, at);
}

/* ---- [timeouts] ----------------------------------------------------------------------------- */

#define TIMEOUT_MIN_NS NS_PER_MS /* the registry's default bounds */
#define TIMEOUT_MAX_NS NS_PER_H

static int p_sec_timeouts(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                          void *base)
{
    bt_config_t *cfg = c->cfg;
    int rc = want_table(c, v, path);
    if (rc != BT_CONFIG_OK)
        return rc;
    size_t n = bt_toml_table_count(v);
    if (n > BT_TIMEOUT_CLASSES_MAX)
        n = BT_TIMEOUT_CLASSES_MAX + 1; /* more than fit: bt_timeouts_classes says so */
    bt_timeout_class_t *cls = calloc(n ? n : 1, sizeof *cls);
    if (cls == NULL)
        return oom(c);
    free(cfg->timeouts);
    cfg->timeouts = cls;
    cfg->ntimeouts = 0;
    static const field_t dfield = {"", p_duration, 0, 8, TIMEOUT_MIN_NS, TIMEOUT_MAX_NS, NULL};
    for (size_t i = 0; i < n && i < bt_toml_table_count(v); i++) {
        size_t len;
        const char *name = bt_toml_table_key(v, i, &len);
        const bt_toml_value_t *e = bt_toml_table_value(v, i);
        bool ok = len > 0 && len < BT_TIMEOUT_NAME_MAX && strlen(name) == len;
        for (size_t k = 0; ok && k < len; k++)
            ok = (name[k] >= 'a' && name[k] <= 'z') || (name[k] >= '0' && name[k] <= '9') ||
                 name[k] == '_' || name[k] == '-';
        if (!ok) {
            char sb[SHOWBUF];
            return fail(c, BT_CONFIG_EVALUE, e,
                        "timeout class name '%s' is not valid: use 1..%d characters of a-z, 0-9, "
                        "'_' or '-'",
                        show(sb, sizeof sb, name, len), BT_TIMEOUT_NAME_MAX - 1);
        }
        char p[BT_TIMEOUT_NAME_MAX + 16];
        snprintf(p, sizeof p, "timeouts.%s", name);
        memcpy(cls[i].name, name, len + 1);
        if ((rc = p_duration(c, &dfield, e, p, &cls[i].timeout_ns)) != BT_CONFIG_OK)
            return rc;
        cfg->ntimeouts = (uint32_t)i + 1;
    }
    bt_timeout_class_t merged[BT_TIMEOUT_CLASSES_MAX];
    bt_timeouts_args_t ta;
    uint32_t nm;
    const char *why = NULL;
    bt_config_timeouts_args(cfg, &ta);
    if (bt_timeouts_classes(&ta, merged, &nm, &why) != BT_OK)
        return fail(c, BT_CONFIG_EVALUE, v, "[timeouts]: %s", why);
    return BT_CONFIG_OK;
}

/* ---- [breakers.NAME] ------------------------------------------------------------------------ */

static const field_t breaker_fields[] = {
    {"consecutive_failures", p_uint, U32(bt_breaker_args_t, consecutive_failures), 0, UINT32_MAX,
     "0 = off"},
    {"window_size", p_uint, U32(bt_breaker_args_t, window_size), 0, UINT32_MAX, "0 = off"},
    {"min_calls", p_uint, U32(bt_breaker_args_t, min_calls), 0, UINT32_MAX, NULL},
    {"failure_rate", p_uint, U32(bt_breaker_args_t, failure_rate_pct), 0, UINT32_MAX,
     "a percentage"},
    {"slow_call", p_duration, U64(bt_breaker_args_t, slow_call_ns), 0, UINT64_MAX, NULL},
    {"open_wait", p_duration, U64(bt_breaker_args_t, open_wait_ns), 0, UINT64_MAX, NULL},
    {"half_open_probes", p_uint, U32(bt_breaker_args_t, half_open_probes), 0, UINT32_MAX, NULL},
    {"half_open_successes", p_uint, U32(bt_breaker_args_t, half_open_successes), 0, UINT32_MAX,
     NULL},
};
enum { BRK_MIN_CALLS = 2 };

/* The defaults of a [breakers.NAME] table (docs/config.md). */
static void breaker_defaults(bt_breaker_args_t *a)
{
    *a = (bt_breaker_args_t){
        .consecutive_failures = 5,
        .window_size = 0,
        .min_calls = 0,
        .failure_rate_pct = 50,
        .slow_call_ns = 0,
        .open_wait_ns = 30 * NS_PER_S,
        .half_open_probes = 1,
        .half_open_successes = 1,
        .observer = BT_REF_NONE,
    };
}

/* Visits the NAME tables of a [SECTION.NAME] section: checks each name and
 * that it is a table, then calls one(c, i, name, table). */
typedef int (*entry_fn)(ctx_t *c, size_t i, const char *name, const bt_toml_value_t *t);

static int each_entry(ctx_t *c, const bt_toml_value_t *v, const char *section, const char *what,
                      void **arr, size_t elem, uint32_t *count, entry_fn one)
{
    int rc = want_table(c, v, section);
    if (rc != BT_CONFIG_OK)
        return rc;
    size_t n = bt_toml_table_count(v);
    void *a = calloc(n ? n : 1, elem);
    if (a == NULL)
        return oom(c);
    *arr = a;
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *name = bt_toml_table_key(v, i, &len);
        const bt_toml_value_t *t = bt_toml_table_value(v, i);
        char sb[SHOWBUF];
        if ((rc = check_name(c, t, what, name, len)) != BT_CONFIG_OK)
            return rc;
        if (bt_toml_type(t) != BT_TOML_TABLE) {
            char ty[40];
            return fail(c, BT_CONFIG_ETYPE, t, "%s.%s must be a table ([%s.%s]), not %s", section,
                        show(sb, sizeof sb, name, len), section, sb, type_phrase(t, ty, sizeof ty));
        }
        *count = (uint32_t)i + 1; /* so deinit frees what one() made */
        if ((rc = one(c, i, name, t)) != BT_CONFIG_OK)
            return rc;
    }
    return BT_CONFIG_OK;
}

static int one_breaker(ctx_t *c, size_t i, const char *name, const bt_toml_value_t *t)
{
    bt_config_breaker_t *b = &c->cfg->breakers[i];
    const bt_toml_value_t *at[NFIELDS(breaker_fields)];
    char where[BT_CONFIG_NAME_MAX + 16], prefix[BT_CONFIG_NAME_MAX + 16];
    snprintf(where, sizeof where, "[breakers.%s]", name);
    snprintf(prefix, sizeof prefix, "breakers.%s", name);
    if ((b->name = strdup(name)) == NULL)
        return oom(c);
    b->line = bt_toml_line(t);
    b->column = bt_toml_column(t);
    breaker_defaults(&b->args);
    int rc = walk(c, t, where, prefix, breaker_fields, NFIELDS(breaker_fields), &b->args, at);
    if (rc != BT_CONFIG_OK)
        return rc;
    if (at[BRK_MIN_CALLS] == NULL && b->args.window_size != 0)
        b->args.min_calls = b->args.window_size < 10 ? b->args.window_size : 10;
    const char *why = NULL;
    if (bt_breaker_args_check(&b->args, &why) != BT_OK)
        return fail(c, BT_CONFIG_EVALUE, t, "%s: %s", where, why);
    return BT_CONFIG_OK;
}

static int p_sec_breakers(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                          void *base)
{
    return each_entry(c, v, "breakers", "breaker", (void **)&c->cfg->breakers,
                      sizeof(bt_config_breaker_t), &c->cfg->nbreakers, one_breaker);
}

/* ---- [limits.NAME] -------------------------------------------------------------------------- */

/* rate: an integer > 0; a negative one gets its own sentence. */
static int p_rate(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                  void *base)
{
    int64_t i;
    if (bt_toml_as_int(v, &i) != BT_TOML_OK)
        return type_error(c, v, path, "an integer (tokens per period)");
    if (i < 0)
        return fail(c, BT_CONFIG_ERANGE, v,
                    "%s = %" PRId64 " is negative; a rate is a number of tokens per period, >= 1",
                    path, i);
    store_uint((char *)base + f->off, 8, (uint64_t)i);
    return BT_CONFIG_OK;
}

#define RL(m)  offsetof(bt_ratelimit_args_t, m)
#define RTY(m) offsetof(bt_ratelimit_args_t, retry) + offsetof(bt_backoff_args_t, m)

static const field_t limit_fields[] = {
    {"rate", p_rate, RL(rate), 8, 0, 0, NULL},
    {"period", p_duration, RL(period_ns), 8, 0, UINT64_MAX, NULL},
    {"burst", p_uint, RL(burst), 8, 0, INT64_MAX, NULL},
    {"max_keys", p_uint, RL(max_keys), 4, 0, UINT32_MAX, "0 = 1048576"},
    {"base", p_duration, RTY(base_ns), 8, 0, UINT64_MAX, NULL},
    {"cap", p_duration, RTY(cap_ns), 8, 0, UINT64_MAX, NULL},
    {"max_attempts", p_uint, RTY(max_attempts), 4, 0, UINT32_MAX, NULL},
    {"max_elapsed", p_duration, RTY(max_elapsed_ns), 8, 0, UINT64_MAX, NULL},
    {"rate_limit_backoff", p_duration, RTY(rate_limit_backoff_ns), 8, 0, UINT64_MAX, NULL},
    {"retry_after_max", p_duration, RTY(retry_after_max_ns), 8, 0, UINT64_MAX, NULL},
    {"budget_ratio", p_uint, RTY(budget_ratio_pct), 4, 0, UINT32_MAX, "a percentage"},
    {"budget_reserve", p_uint, RTY(budget_reserve), 4, 0, UINT32_MAX, NULL},
};
enum { LIM_RATE, LIM_PERIOD, LIM_BURST };

static int one_limit(ctx_t *c, size_t i, const char *name, const bt_toml_value_t *t)
{
    bt_config_limit_t *l = &c->cfg->limits[i];
    const bt_toml_value_t *at[NFIELDS(limit_fields)];
    char where[BT_CONFIG_NAME_MAX + 16], prefix[BT_CONFIG_NAME_MAX + 16];
    snprintf(where, sizeof where, "[limits.%s]", name);
    snprintf(prefix, sizeof prefix, "limits.%s", name);
    if ((l->name = strdup(name)) == NULL)
        return oom(c);
    l->line = bt_toml_line(t);
    l->column = bt_toml_column(t);
    l->args = (bt_ratelimit_args_t){.period_ns = NS_PER_S};
    bt_backoff_args_default(&l->args.retry);
    int rc = walk(c, t, where, prefix, limit_fields, NFIELDS(limit_fields), &l->args, at);
    if (rc != BT_CONFIG_OK)
        return rc;
    if (at[LIM_RATE] == NULL)
        return fail(c, BT_CONFIG_EVALUE, t, "%s has no rate; set rate (tokens per period)", where);
    if (at[LIM_BURST] == NULL)
        l->args.burst = l->args.rate;
    const char *why = NULL;
    if (bt_ratelimit_args_check(&l->args, &why) != BT_OK)
        return fail(c, BT_CONFIG_EVALUE, t, "%s: %s", where, why);
    return BT_CONFIG_OK;
}

static int p_sec_limits(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                        void *base)
{
    return each_entry(c, v, "limits", "limit", (void **)&c->cfg->limits, sizeof(bt_config_limit_t),
                      &c->cfg->nlimits, one_limit);
}

/* ---- [jobs.NAME] ---------------------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf_t;

static void sb_put(sbuf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf_t *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* A JSON string literal (RFC 8259): quotes, backslashes and control
 * characters escaped; UTF-8 (valid, as the parser checked) passes through. */
static void json_string(sbuf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    sb_put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];
        switch (ch) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            if (ch < 0x20 || ch == 0x7f) {
                memcpy(u, "\\u00", 4);
                u[4] = hex[ch >> 4];
                u[5] = hex[ch & 15];
                u[6] = '\0';
                esc = u;
            }
        }
        if (esc == NULL)
            continue;
        sb_put(b, s + run, i - run);
        sb_str(b, esc);
        run = i + 1;
    }
    sb_put(b, s + run, len - run);
    sb_put(b, "\"", 1);
}

/* A float as the shortest text that reads back as the same double, with
 * ".0" added to integral values so the JSON still reads as a float. */
static void json_float(sbuf_t *b, double d)
{
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (strpbrk(buf, ".eE") == NULL)
        strcat(buf, ".0");
    sb_str(b, buf);
}

/* Appends v as JSON. Tables keep their key order. */
static int json_value(ctx_t *c, sbuf_t *b, const bt_toml_value_t *v, const char *path)
{
    const char *s = NULL;
    size_t len;
    int64_t i;
    double d;
    bool t;
    char num[32];
    switch (bt_toml_type(v)) {
    case BT_TOML_TABLE:
        sb_put(b, "{", 1);
        for (size_t k = 0; k < bt_toml_table_count(v); k++) {
            const char *key = bt_toml_table_key(v, k, &len);
            if (k)
                sb_put(b, ",", 1);
            json_string(b, key, len);
            sb_put(b, ":", 1);
            int rc = json_value(c, b, bt_toml_table_value(v, k), path);
            if (rc != BT_CONFIG_OK)
                return rc;
        }
        sb_put(b, "}", 1);
        break;
    case BT_TOML_ARRAY:
        sb_put(b, "[", 1);
        for (size_t k = 0; k < bt_toml_array_count(v); k++) {
            if (k)
                sb_put(b, ",", 1);
            int rc = json_value(c, b, bt_toml_array_at(v, k), path);
            if (rc != BT_CONFIG_OK)
                return rc;
        }
        sb_put(b, "]", 1);
        break;
    case BT_TOML_STRING:
        (void)bt_toml_as_string(v, &s, &len);
        json_string(b, s, len);
        break;
    case BT_TOML_INTEGER:
        (void)bt_toml_as_int(v, &i);
        snprintf(num, sizeof num, "%" PRId64, i);
        sb_str(b, num);
        break;
    case BT_TOML_FLOAT:
        (void)bt_toml_as_float(v, &d);
        if (!isfinite(d))
            return fail(c, BT_CONFIG_EVALUE, v,
                        "%s holds %s, which JSON cannot represent (job params are JSON)", path,
                        isnan(d) ? "nan"
                        : d > 0  ? "inf"
                                 : "-inf");
        json_float(b, d);
        break;
    case BT_TOML_BOOL:
        (void)bt_toml_as_bool(v, &t);
        sb_str(b, t ? "true" : "false");
        break;
    default: /* the four date/time types: their normalised text */
        s = bt_toml_datetime_text(v);
        json_string(b, s, strlen(s));
        break;
    }
    return BT_CONFIG_OK;
}

static int p_params(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                    void *base)
{
    if (bt_toml_type(v) != BT_TOML_TABLE)
        return type_error(c, v, path, "a table (the job's default params)");
    sbuf_t b = {0};
    int rc = json_value(c, &b, v, path);
    if (rc == BT_CONFIG_OK && b.oom)
        rc = oom(c);
    if (rc == BT_CONFIG_OK && b.len > BT_CONFIG_PARAMS_JSON_MAX)
        rc = fail(c, BT_CONFIG_ERANGE, v, "%s is %zu bytes as JSON; at most %zu are allowed", path,
                  b.len, BT_CONFIG_PARAMS_JSON_MAX);
    if (rc != BT_CONFIG_OK) {
        free(b.p);
        return rc;
    }
    char **slot = (char **)((char *)base + f->off);
    free(*slot);
    *slot = b.p;
    return BT_CONFIG_OK;
}

static int p_kind(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                  void *base)
{
    const char *s = NULL;
    int rc = get_text(c, v, path, &s);
    if (rc != BT_CONFIG_OK)
        return rc;
    bool known = c->kinds == NULL;
    for (size_t i = 0; !known && i < c->nkinds; i++)
        known = strcmp(s, c->kinds[i]) == 0;
    if (!known) {
        char sb[SHOWBUF], list[200];
        const char *best = suggest(s, c->nkinds, get_str, c->kinds);
        list_names(list, sizeof list, c->nkinds, get_str, c->kinds);
        show(sb, sizeof sb, s, strlen(s));
        if (best != NULL)
            return fail(c, BT_CONFIG_EUNKNOWN, v,
                        "%s = \"%s\" is not a known job kind; did you mean \"%s\"?", path, sb,
                        best);
        return fail(c, BT_CONFIG_EUNKNOWN, v, "%s = \"%s\" is not a known job kind (known: %s)",
                    path, sb, list[0] ? list : "none");
    }
    return dup_into(c, (char **)((char *)base + f->off), s);
}

static const field_t job_fields[] = {
    {"kind", p_kind, NOW(bt_config_job_t, kind), 0, 0, NULL},
    {"max_active", p_uint, U32(bt_config_job_t, max_active), 1, 1024, NULL},
    {"stop_grace", p_duration, U64(bt_config_job_t, stop_grace_ns), NS_PER_MS, 10 * NS_PER_MIN,
     NULL},
    {"recovery", p_recovery, NOW(bt_config_job_t, recovery), 0, 0, NULL},
    {"breaker", p_string, NOW(bt_config_job_t, breaker), 0, 0, NULL},
    {"limit", p_string, NOW(bt_config_job_t, limit), 0, 0, NULL},
    {"timeout", p_string, NOW(bt_config_job_t, timeout), 0, 0, NULL},
    {"params", p_params, NOW(bt_config_job_t, params_json), 0, 0, NULL},
};
enum {
    JOB_KIND,
    JOB_MAX_ACTIVE,
    JOB_STOP_GRACE,
    JOB_RECOVERY,
    JOB_BREAKER,
    JOB_LIMIT,
    JOB_TIMEOUT
};

static const char *breaker_name(const void *arg, size_t i)
{
    return ((const bt_config_t *)arg)->breakers[i].name;
}

static const char *limit_name(const void *arg, size_t i)
{
    return ((const bt_config_t *)arg)->limits[i].name;
}

static const char *class_name(const void *arg, size_t i)
{
    return ((const bt_timeout_class_t *)arg)[i].name;
}

/* name must be one of the n names get(arg, i); section says where they
 * are defined. */
static int check_ref(ctx_t *c, const bt_toml_value_t *v, const char *path, const char *name,
                     const char *section, size_t n, const char *(*get)(const void *, size_t),
                     const void *arg)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(get(arg, i), name) == 0)
            return BT_CONFIG_OK;
    char sb[SHOWBUF], list[300];
    const char *best = suggest(name, n, get, arg);
    show(sb, sizeof sb, name, strlen(name));
    if (best != NULL)
        return fail(c, BT_CONFIG_EUNKNOWN, v,
                    "%s = \"%s\" is not defined in %s; did you mean \"%s\"?", path, sb, section,
                    best);
    list_names(list, sizeof list, n, get, arg);
    return fail(c, BT_CONFIG_EUNKNOWN, v, "%s = \"%s\" is not defined in %s (%s%s)", path, sb,
                section, n ? "defined: " : "none is defined", list);
}

static int one_job(ctx_t *c, size_t i, const char *name, const bt_toml_value_t *t)
{
    bt_config_t *cfg = c->cfg;
    bt_config_job_t *j = &cfg->jobs[i];
    const bt_toml_value_t *at[NFIELDS(job_fields)];
    char where[BT_CONFIG_NAME_MAX + 16], prefix[BT_CONFIG_NAME_MAX + 16],
        p[BT_CONFIG_NAME_MAX + 32];
    snprintf(where, sizeof where, "[jobs.%s]", name);
    snprintf(prefix, sizeof prefix, "jobs.%s", name);
    if ((j->name = strdup(name)) == NULL)
        return oom(c);
    j->line = bt_toml_line(t);
    j->column = bt_toml_column(t);
    j->max_active = 1;
    j->stop_grace_ns = 5 * NS_PER_S;
    j->recovery = EX_RECOVERY_DEFAULT;
    int rc = walk(c, t, where, prefix, job_fields, NFIELDS(job_fields), j, at);
    if (rc != BT_CONFIG_OK)
        return rc;
    if (at[JOB_KIND] == NULL) {
        char list[200];
        list_names(list, sizeof list, c->nkinds, get_str, c->kinds);
        return fail(c, BT_CONFIG_EVALUE, t, "%s has no kind; set kind to one of: %s", where,
                    c->kinds != NULL && list[0] ? list : "the kinds the service links");
    }
    if (j->params_json == NULL && (j->params_json = strdup("{}")) == NULL)
        return oom(c);
    if (j->breaker != NULL) {
        snprintf(p, sizeof p, "%s.breaker", prefix);
        if ((rc = check_ref(c, at[JOB_BREAKER], p, j->breaker, "[breakers]", cfg->nbreakers,
                            breaker_name, cfg)) != BT_CONFIG_OK)
            return rc;
    }
    if (j->limit != NULL) {
        snprintf(p, sizeof p, "%s.limit", prefix);
        if ((rc = check_ref(c, at[JOB_LIMIT], p, j->limit, "[limits]", cfg->nlimits, limit_name,
                            cfg)) != BT_CONFIG_OK)
            return rc;
    }
    if (j->timeout != NULL) {
        /* The registry's four default classes exist even when [timeouts]
         * does not name them. */
        bt_timeout_class_t merged[BT_TIMEOUT_CLASSES_MAX];
        bt_timeouts_args_t ta;
        uint32_t nm = 0;
        bt_config_timeouts_args(cfg, &ta);
        if (bt_timeouts_classes(&ta, merged, &nm, NULL) != BT_OK)
            nm = 0; /* cannot happen: [timeouts] was checked */
        snprintf(p, sizeof p, "%s.timeout", prefix);
        if ((rc = check_ref(c, at[JOB_TIMEOUT], p, j->timeout, "[timeouts]", nm, class_name,
                            merged)) != BT_CONFIG_OK)
            return rc;
    }
    return BT_CONFIG_OK;
}

static int p_sec_jobs(ctx_t *c, const field_t *f, const bt_toml_value_t *v, const char *path,
                      void *base)
{
    int rc = want_table(c, v, path);
    if (rc == BT_CONFIG_OK)
        c->jobs = v; /* after the sections jobs refer to */
    return rc;
}

/* ---- the top level -------------------------------------------------------------------------- */

static const field_t root_fields[] = {
    {"log_level", p_log_level, NOW(bt_config_t, log_level), 0, 0, NULL},
    {"runtime", p_sec_runtime, 0, SECTION, 0, 0, NULL},
    {"server", p_sec_server, 0, SECTION, 0, 0, NULL},
    {"store", p_sec_store, 0, SECTION, 0, 0, NULL},
    {"executor", p_sec_executor, 0, SECTION, 0, 0, NULL},
    {"timeouts", p_sec_timeouts, 0, SECTION, 0, 0, NULL},
    {"breakers", p_sec_breakers, 0, SECTION, 0, 0, NULL},
    {"limits", p_sec_limits, 0, SECTION, 0, 0, NULL},
    {"jobs", p_sec_jobs, 0, SECTION, 0, 0, NULL},
};

int bt_config_defaults(bt_config_t *out)
{
    if (out == NULL)
        return BT_CONFIG_EINVAL;
    *out = (bt_config_t){
        .log_level = BT_LOG_INFO,
        .runtime_threads = 0,
        .server =
            {
                .port = BT_CONFIG_DEFAULT_PORT,
                .max_body = MiB,
                .max_header = 16 * KiB,
                .max_connections = 256,
                .max_connections_per_ip = 64,
                .request_deadline_ns = 10 * NS_PER_S,
                .idle_timeout_ns = 30 * NS_PER_S,
            },
        .store = {.sync = RS_SYNC_FULL},
        .executor =
            {
                .max_running = 4,
                .max_pending = 1024,
                .shutdown_timeout_ns = 30 * NS_PER_S,
                .progress_every_ns = NS_PER_S,
                .progress_every_steps = 100,
            },
    };
    out->server.address = strdup(BT_CONFIG_DEFAULT_ADDRESS);
    out->store.state_dir = strdup(BT_CONFIG_DEFAULT_STATEDIR);
    out->store.path = strdup(BT_CONFIG_DEFAULT_STATEDIR "/" BT_CONFIG_DEFAULT_DBFILE);
    if (out->server.address == NULL || out->store.state_dir == NULL || out->store.path == NULL) {
        bt_config_deinit(out);
        return BT_CONFIG_ENOMEM;
    }
    return BT_CONFIG_OK;
}

int bt_config_parse(const char *text, size_t len, const char *filename, const char *base_dir,
                    const char *const *kinds, size_t nkinds, bt_config_t *out,
                    bt_config_error_t *err)
{
    bt_config_error_t scratch;
    if (err == NULL)
        err = &scratch;
    memset(err, 0, sizeof *err);
    if (filename == NULL)
        filename = "config.toml";
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (out == NULL || (text == NULL && len > 0) || (kinds == NULL && nkinds > 0)) {
        set_error(err, BT_CONFIG_EINVAL, filename, 0, 0, "invalid argument");
        return BT_CONFIG_EINVAL;
    }
    bt_toml_doc_t *doc = NULL;
    bt_toml_error_t terr;
    int rc = bt_toml_parse(text != NULL ? text : "", len, filename, NULL, &doc, &terr);
    if (rc != BT_TOML_OK) {
        err->code = rc;
        snprintf(err->file, sizeof err->file, "%s", filename);
        err->line = terr.line;
        err->column = terr.column;
        snprintf(err->message, sizeof err->message, "%s", terr.message);
        snprintf(err->detail, sizeof err->detail, "%s", terr.detail);
        return rc;
    }
    bt_config_t cfg;
    if ((rc = bt_config_defaults(&cfg)) != BT_CONFIG_OK) {
        bt_toml_doc_destroy(doc);
        set_error(err, rc, filename, 0, 0, "out of memory");
        return rc;
    }
    ctx_t c = {
        .file = filename,
        .base_dir = base_dir,
        .kinds = kinds,
        .nkinds = nkinds,
        .cfg = &cfg,
        .err = err,
    };
    /* The default store paths are relative to the state directory too. */
    free(cfg.store.path);
    cfg.store.path = strdup(BT_CONFIG_DEFAULT_DBFILE);
    const bt_toml_value_t *at[NFIELDS(root_fields)];
    if (cfg.store.path == NULL)
        rc = oom(&c);
    if (rc == BT_CONFIG_OK)
        rc = walk(&c, bt_toml_doc_root(doc), "the top level", "", root_fields, NFIELDS(root_fields),
                  &cfg, at);
    if (rc == BT_CONFIG_OK)
        rc = resolve_store(&c);
    if (rc == BT_CONFIG_OK && c.jobs != NULL)
        rc = each_entry(&c, c.jobs, "jobs", "job", (void **)&cfg.jobs, sizeof(bt_config_job_t),
                        &cfg.njobs, one_job);
    bt_toml_doc_destroy(doc);
    if (rc != BT_CONFIG_OK) {
        bt_config_deinit(&cfg);
        return rc;
    }
    *out = cfg;
    return BT_CONFIG_OK;
}

/* ---- load ----------------------------------------------------------------------------------- */

int bt_config_load(const char *path, const char *const *kinds, size_t nkinds, bt_config_t *out,
                   bt_config_error_t *err)
{
    bt_config_error_t scratch;
    if (err == NULL)
        err = &scratch;
    memset(err, 0, sizeof *err);
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (path == NULL || out == NULL || path[0] == '\0') {
        set_error(err, BT_CONFIG_EINVAL, path && *path ? path : "config.toml", 0, 0,
                  "invalid argument");
        return BT_CONFIG_EINVAL;
    }
    char detail[300];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        snprintf(detail, sizeof detail, "cannot open the config file: %s", strerror(e));
        set_error(err, e == ENOENT ? BT_CONFIG_ENOENT : BT_CONFIG_EIO, path, 0, 0, detail);
        return err->code;
    }
    size_t cap = BT_TOML_DEFAULT_MAX_INPUT + 1, len = 0;
    char *text = malloc(cap);
    int rc = text == NULL ? BT_CONFIG_ENOMEM : BT_CONFIG_OK;
    while (rc == BT_CONFIG_OK && len < cap) {
        ssize_t r = read(fd, text + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(detail, sizeof detail, "cannot read the config file: %s", strerror(errno));
            rc = BT_CONFIG_EIO;
        }
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (rc == BT_CONFIG_OK && len == cap) {
        snprintf(detail, sizeof detail, "file is larger than the limit of %zu bytes",
                 (size_t)BT_TOML_DEFAULT_MAX_INPUT);
        rc = BT_CONFIG_ELIMIT;
    }
    if (rc == BT_CONFIG_ENOMEM)
        snprintf(detail, sizeof detail, "out of memory");
    if (rc != BT_CONFIG_OK) {
        free(text);
        set_error(err, rc, path, 0, 0, detail);
        return rc;
    }
    /* Relative paths are relative to the file's directory, made absolute so
     * a later chdir cannot move them. */
    char *dir = strdup(path), *abs = NULL;
    char *slash = dir != NULL ? strrchr(dir, '/') : NULL;
    if (dir != NULL) {
        if (slash == dir)
            dir[1] = '\0';
        else if (slash != NULL)
            *slash = '\0';
        abs = realpath(slash != NULL ? dir : ".", NULL);
    }
    if (abs == NULL) {
        free(text);
        free(dir);
        set_error(err, dir == NULL ? BT_CONFIG_ENOMEM : BT_CONFIG_EIO, path, 0, 0,
                  dir == NULL ? "out of memory" : "cannot resolve the config file's directory");
        return err->code;
    }
    rc = bt_config_parse(text, len, path, abs, kinds, nkinds, out, err);
    free(text);
    free(dir);
    free(abs);
    if (rc == BT_CONFIG_OK && (out->path = strdup(path)) == NULL) {
        bt_config_deinit(out);
        set_error(err, BT_CONFIG_ENOMEM, path, 0, 0, "out of memory");
        return BT_CONFIG_ENOMEM;
    }
    return rc;
}

void bt_config_deinit(bt_config_t *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->path);
    free(cfg->server.address);
    if (cfg->server.token != NULL) {
        memset(cfg->server.token, 0, strlen(cfg->server.token));
        free(cfg->server.token);
    }
    free(cfg->server.token_file);
    for (uint32_t i = 0; i < cfg->server.nallowed_hosts; i++)
        free(cfg->server.allowed_hosts[i]);
    free(cfg->server.allowed_hosts);
    free(cfg->store.state_dir);
    free(cfg->store.path);
    free(cfg->timeouts);
    for (uint32_t i = 0; i < cfg->nbreakers; i++)
        free(cfg->breakers[i].name);
    free(cfg->breakers);
    for (uint32_t i = 0; i < cfg->nlimits; i++)
        free(cfg->limits[i].name);
    free(cfg->limits);
    for (uint32_t i = 0; i < cfg->njobs; i++) {
        bt_config_job_t *j = &cfg->jobs[i];
        free(j->name);
        free(j->kind);
        free(j->breaker);
        free(j->limit);
        free(j->timeout);
        free(j->params_json);
    }
    free(cfg->jobs);
    memset(cfg, 0, sizeof *cfg);
}

/* ---- lookups -------------------------------------------------------------------------------- */

const bt_config_breaker_t *bt_config_find_breaker(const bt_config_t *cfg, const char *name)
{
    for (uint32_t i = 0; cfg != NULL && name != NULL && i < cfg->nbreakers; i++)
        if (strcmp(cfg->breakers[i].name, name) == 0)
            return &cfg->breakers[i];
    return NULL;
}

const bt_config_limit_t *bt_config_find_limit(const bt_config_t *cfg, const char *name)
{
    for (uint32_t i = 0; cfg != NULL && name != NULL && i < cfg->nlimits; i++)
        if (strcmp(cfg->limits[i].name, name) == 0)
            return &cfg->limits[i];
    return NULL;
}

const bt_config_job_t *bt_config_find_job(const bt_config_t *cfg, const char *name)
{
    for (uint32_t i = 0; cfg != NULL && name != NULL && i < cfg->njobs; i++)
        if (strcmp(cfg->jobs[i].name, name) == 0)
            return &cfg->jobs[i];
    return NULL;
}

void bt_config_job_ex(const bt_config_job_t *job, ex_job_t *out)
{
    *out = (ex_job_t){
        .name = job->name,
        .kind = job->kind,
        .max_active = job->max_active,
        .stop_grace_ns = job->stop_grace_ns,
        .recovery = job->recovery,
    };
}

void bt_config_timeouts_args(const bt_config_t *cfg, bt_timeouts_args_t *out)
{
    *out = (bt_timeouts_args_t){
        .classes = cfg->ntimeouts ? cfg->timeouts : NULL,
        .nclasses = cfg->ntimeouts,
        .min_ns = TIMEOUT_MIN_NS,
        .max_ns = TIMEOUT_MAX_NS,
    };
}

/* ---- describe ------------------------------------------------------------------------------- */

static const char *dur(uint64_t ns, char *buf)
{
    return bt_config_duration_format(ns, buf, 32);
}

int bt_config_describe(const bt_config_t *cfg, FILE *f)
{
    if (cfg == NULL || f == NULL)
        return -1;
    char a[32], b[32], d[32];
    const bt_config_server_t *s = &cfg->server;
    const bt_config_executor_t *e = &cfg->executor;
    static const char *const levels[] = {"debug", "info", "warn", "error", "off"};
    fprintf(f, "config %s: valid\n", cfg->path ? cfg->path : "(text)");
    fprintf(f, "log_level  %s\n", (unsigned)cfg->log_level < 5 ? levels[cfg->log_level] : "?");
    if (cfg->runtime_threads == 0)
        fprintf(f, "runtime    threads: one per online CPU\n");
    else
        fprintf(f, "runtime    threads: %" PRIu32 "\n", cfg->runtime_threads);
    fprintf(f, "server     listen %s%s%s:%u, %s\n", strchr(s->address, ':') ? "[" : "", s->address,
            strchr(s->address, ':') ? "]" : "", s->port,
            s->token == NULL        ? "no token (loopback only)"
            : s->token_file != NULL ? "token from token_file"
                                    : "token set");
    if (s->token_file != NULL)
        fprintf(f, "           token_file %s\n", s->token_file);
    fprintf(f, "           allowed hosts: localhost, 127.0.0.1, ::1, the bind address");
    for (uint32_t i = 0; i < s->nallowed_hosts; i++)
        fprintf(f, ", %s", s->allowed_hosts[i]);
    fprintf(f,
            "\n           max_body %s, max_header %s, max_connections %" PRIu32 " (%" PRIu32
            " per IP), one thread per connection\n",
            size_format(s->max_body, a, sizeof a), size_format(s->max_header, b, sizeof b),
            s->max_connections, s->max_connections_per_ip);
    fprintf(f, "           request_deadline %s, idle_timeout %s\n", dur(s->request_deadline_ns, a),
            dur(s->idle_timeout_ns, b));
    fprintf(f, "store      state_dir %s\n           database %s (sync %s)\n", cfg->store.state_dir,
            cfg->store.path, (unsigned)cfg->store.sync < 3 ? sync_names[cfg->store.sync] : "?");
    fprintf(f,
            "executor   max_running %" PRIu32 ", max_pending %" PRIu32 ", shutdown_timeout %s\n"
            "           progress saved every %s or %" PRIu32 " steps\n",
            e->max_running, e->max_pending, dur(e->shutdown_timeout_ns, a),
            dur(e->progress_every_ns, b), e->progress_every_steps);
    bt_timeout_class_t merged[BT_TIMEOUT_CLASSES_MAX];
    bt_timeouts_args_t ta;
    uint32_t nm = 0;
    bt_config_timeouts_args(cfg, &ta);
    if (bt_timeouts_classes(&ta, merged, &nm, NULL) != BT_OK)
        nm = 0;
    fprintf(f, "timeouts  ");
    for (uint32_t i = 0; i < nm; i++)
        fprintf(f, "%s %s %s", i ? "," : "", merged[i].name, dur(merged[i].timeout_ns, a));
    fprintf(f, "\n");
    for (uint32_t i = 0; i < cfg->nbreakers; i++) {
        const bt_breaker_args_t *x = &cfg->breakers[i].args;
        fprintf(f, "breaker    %s: opens", cfg->breakers[i].name);
        if (x->consecutive_failures)
            fprintf(f, " after %" PRIu32 " failures in a row%s", x->consecutive_failures,
                    x->window_size ? " or" : "");
        if (x->window_size)
            fprintf(f,
                    " at %" PRIu32 "%% failures of the last %" PRIu32 " calls (at least %" PRIu32
                    ")",
                    x->failure_rate_pct, x->window_size, x->min_calls);
        fprintf(f, "\n           ");
        if (x->slow_call_ns)
            fprintf(f, "calls slower than %s fail; ", dur(x->slow_call_ns, a));
        fprintf(f, "open %s, then %" PRIu32 " probes, %" PRIu32 " successes close it\n",
                dur(x->open_wait_ns, b), x->half_open_probes, x->half_open_successes);
    }
    for (uint32_t i = 0; i < cfg->nlimits; i++) {
        const bt_ratelimit_args_t *x = &cfg->limits[i].args;
        fprintf(f,
                "limit      %s: %" PRIu64 " per %s, burst %" PRIu64 "; retries: %" PRIu32
                " attempts, backoff %s..%s",
                cfg->limits[i].name, x->rate, dur(x->period_ns, a), x->burst, x->retry.max_attempts,
                dur(x->retry.base_ns, b), dur(x->retry.cap_ns, d));
        if (x->retry.max_elapsed_ns)
            fprintf(f, " within %s", dur(x->retry.max_elapsed_ns, a));
        fprintf(f, ", budget %" PRIu32 "%% + %" PRIu32 "\n", x->retry.budget_ratio_pct,
                x->retry.budget_reserve);
    }
    if (cfg->njobs == 0)
        fprintf(f, "jobs       none\n");
    for (uint32_t i = 0; i < cfg->njobs; i++) {
        const bt_config_job_t *j = &cfg->jobs[i];
        fprintf(f, "job        %s: kind %s, max_active %" PRIu32 ", stop_grace %s, recovery %s",
                j->name, j->kind, j->max_active, dur(j->stop_grace_ns, a),
                (unsigned)j->recovery < 3 ? recovery_names[j->recovery] : "?");
        if (j->breaker)
            fprintf(f, ", breaker %s", j->breaker);
        if (j->limit)
            fprintf(f, ", limit %s", j->limit);
        if (j->timeout)
            fprintf(f, ", timeout %s", j->timeout);
        fprintf(f, "\n           params %s\n", j->params_json);
    }
    return ferror(f) ? -1 : 0;
}
