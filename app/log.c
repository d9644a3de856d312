/*
 * log.c: logfmt lines, one write(2) each. See log.h.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_ 4096

static bt_log_level_t min_level = BT_LOG_INFO;
static int log_fd = STDERR_FILENO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void bt_log_init(bt_log_level_t min, int fd)
{
    min_level = min;
    log_fd = fd;
}

int bt_log_level_parse(const char *name)
{
    for (int i = 0; i <= (int)BT_LOG_OFF; i++) {
        if (name != NULL && strcmp(name, level_names[i]) == 0)
            return i;
    }
    return -1;
}

const char *bt_log_level_name(bt_log_level_t level)
{
    return (unsigned)level <= BT_LOG_OFF ? level_names[level] : "unknown";
}

bool bt_log_enabled(bt_log_level_t level)
{
    return level >= min_level && level < BT_LOG_OFF;
}

/* A bounded line buffer; writes past the end are dropped (truncation). */
typedef struct line {
    char buf[LINE_MAX_];
    size_t len;
} line_t;

static void put(line_t *l, const char *s, size_t n)
{
    size_t room = sizeof(l->buf) - 1 - l->len; /* keep one byte for '\n' */
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void put_str(line_t *l, const char *s)
{
    put(l, s, strlen(s));
}

static bool needs_quotes(const char *v)
{
    if (*v == '\0')
        return true;
    for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
            return true;
    }
    return false;
}

static void put_value(line_t *l, const char *v)
{
    if (!needs_quotes(v)) {
        put_str(l, v);
        return;
    }
    put(l, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
        char esc[8];
        switch (*p) {
        case '"':
            put(l, "\\\"", 2);
            break;
        case '\\':
            put(l, "\\\\", 2);
            break;
        case '\n':
            put(l, "\\n", 2);
            break;
        case '\r':
            put(l, "\\r", 2);
            break;
        case '\t':
            put(l, "\\t", 2);
            break;
        default:
            if (*p < ' ' || *p == 0x7f) {
                snprintf(esc, sizeof(esc), "\\u%04x", *p);
                put_str(l, esc);
            } else {
                put(l, (const char *)p, 1);
            }
        }
    }
    put(l, "\"", 1);
}

void bt_log(bt_log_level_t level, const char *event, ...)
{
    if (!bt_log_enabled(level))
        return;
    line_t l;
    l.len = 0;

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[64];
    snprintf(stamp, sizeof(stamp),
             "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    put_str(&l, stamp);
    put_str(&l, level_names[level]);
    put_str(&l, " event=");
    put_value(&l, event != NULL ? event : "");

    va_list ap;
    va_start(ap, event);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (k == NULL)
            break;
        const char *v = va_arg(ap, const char *);
        put(&l, " ", 1);
        put_str(&l, k);
        put(&l, "=", 1);
        put_value(&l, v != NULL ? v : "");
    }
    va_end(ap);
    l.buf[l.len++] = '\n';

    const char *p = l.buf;
    size_t left = l.len;
    while (left > 0) {
        ssize_t n = write(log_fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* nowhere to report a failed log write */
        p += n;
        left -= (size_t)n;
    }
}
