/*
 * format.c: tables, times and progress text for the CLI's human output.
 * Nothing here does I/O except cli_table_print(), and nothing reads the
 * clock: callers pass "now", so tests get exact strings.
 */
#include "cli/format.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cli_table {
    size_t ncols;
    char *headers[CLI_TABLE_MAX_COLS];
    char **cells; /* rows * ncols */
    size_t rows, cap;
};

cli_table_t *cli_table_create(size_t ncols, const char *const *headers)
{
    if (ncols == 0 || ncols > CLI_TABLE_MAX_COLS)
        return NULL;
    cli_table_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->ncols = ncols;
    for (size_t i = 0; i < ncols; i++) {
        t->headers[i] = strdup(headers[i]);
        if (t->headers[i] == NULL) {
            cli_table_destroy(t);
            return NULL;
        }
    }
    return t;
}

void cli_table_destroy(cli_table_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->ncols; i++)
        free(t->headers[i]);
    for (size_t i = 0; i < t->rows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}

int cli_table_add(cli_table_t *t, const char *const *cells)
{
    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **nc = realloc(t->cells, cap * t->ncols * sizeof(*nc));
        if (nc == NULL)
            return -1;
        t->cells = nc;
        t->cap = cap;
    }
    char **row = t->cells + t->rows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        const char *c = cells[i] != NULL ? cells[i] : "-";
        size_t n = strlen(c) + 1;
        row[i] = malloc(n);
        if (row[i] == NULL) {
            while (i-- > 0)
                free(row[i]);
            return -1;
        }
        cli_clean(row[i], n, c);
    }
    t->rows++;
    return 0;
}

size_t cli_table_rows(const cli_table_t *t)
{
    return t->rows;
}

/* Display width: UTF-8 continuation bytes do not count. */
static size_t width_of(const char *s)
{
    size_t w = 0;
    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

static void print_row(FILE *f, char *const *cells, size_t ncols, const size_t *widths)
{
    for (size_t i = 0; i < ncols; i++) {
        fputs(cells[i], f);
        if (i + 1 < ncols) {
            for (size_t pad = width_of(cells[i]); pad < widths[i] + 2; pad++)
                fputc(' ', f);
        }
    }
    fputc('\n', f);
}

void cli_table_print(const cli_table_t *t, FILE *f)
{
    size_t widths[CLI_TABLE_MAX_COLS];
    for (size_t i = 0; i < t->ncols; i++)
        widths[i] = width_of(t->headers[i]);
    for (size_t r = 0; r < t->rows; r++)
        for (size_t i = 0; i < t->ncols; i++) {
            size_t w = width_of(t->cells[r * t->ncols + i]);
            if (w > widths[i])
                widths[i] = w;
        }
    print_row(f, t->headers, t->ncols, widths);
    for (size_t r = 0; r < t->rows; r++)
        print_row(f, t->cells + r * t->ncols, t->ncols, widths);
}

const char *cli_clean(char *buf, size_t cap, const char *s)
{
    if (cap == 0)
        return buf;
    if (s == NULL)
        s = "-";
    size_t n = 0;
    for (; s[n] != '\0' && n + 1 < cap; n++) {
        unsigned char ch = (unsigned char)s[n];
        buf[n] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    buf[n] = '\0';
    return buf;
}

static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char ch = (*p)[i];
        if (ch < '0' || ch > '9')
            return false;
        v = v * 10 + (ch - '0');
    }
    *p += n;
    *out = v;
    return true;
}

bool cli_time_parse(const char *s, long long *ms)
{
    if (s == NULL)
        return false;
    const char *p = s;
    int y, mo, d, h, mi, sec;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d) || (*p != 'T' && *p != 't' && *p != ' '))
        return false;
    p++;
    if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) || *p++ != ':' ||
        !digits(&p, 2, &sec))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return false;
    long long frac_ms = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        long long scale = 100;
        while (*p >= '0' && *p <= '9') {
            frac_ms += (*p - '0') * scale;
            scale /= 10;
            p++;
            n++;
        }
        if (n == 0)
            return false;
    }
    long long offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om))
            return false;
        offset_min = sign * (oh * 60 + om);
    } else {
        return false;
    }
    if (*p != '\0')
        return false;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    *ms = ((long long)t - offset_min * 60) * 1000 + frac_ms;
    return true;
}

void cli_fmt_ago(char *buf, size_t cap, long long delta_ms)
{
    bool future = delta_ms < 0;
    long long s = (future ? -delta_ms : delta_ms) / 1000;
    char amount[32];
    if (s < 1) {
        snprintf(buf, cap, "now");
        return;
    }
    if (s < 60)
        snprintf(amount, sizeof(amount), "%llds", s);
    else if (s < 3600)
        snprintf(amount, sizeof(amount), "%lldm", s / 60);
    else if (s < 86400)
        snprintf(amount, sizeof(amount), "%lldh", s / 3600);
    else
        snprintf(amount, sizeof(amount), "%lldd", s / 86400);
    snprintf(buf, cap, future ? "in %s" : "%s ago", amount);
}

void cli_fmt_duration(char *buf, size_t cap, long long ms)
{
    if (ms < 0)
        ms = 0;
    long long s = ms / 1000;
    if (ms < 1000)
        snprintf(buf, cap, "%lldms", ms);
    else if (s < 60)
        snprintf(buf, cap, "%llds", s);
    else if (s < 3600)
        snprintf(buf, cap, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, cap, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, cap, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

void cli_fmt_progress(char *buf, size_t cap, long long done, long long total)
{
    if (total < 0 && done <= 0)
        snprintf(buf, cap, "-");
    else if (total < 0)
        snprintf(buf, cap, "%lld/?", done);
    else
        snprintf(buf, cap, "%lld/%lld", done, total);
}

void cli_fmt_bar(char *buf, size_t cap, long long done, long long total, int width, unsigned tick)
{
    if (cap < 3 || width < 1) {
        if (cap > 0)
            buf[0] = '\0';
        return;
    }
    if ((size_t)width + 3 > cap)
        width = (int)cap - 3;
    size_t n = 0;
    buf[n++] = '[';
    if (total > 0) {
        long long filled = done <= 0 ? 0 : done >= total ? width : done * width / total;
        for (int i = 0; i < width; i++)
            buf[n++] = i < filled ? '#' : '.';
    } else if (total == 0) {
        for (int i = 0; i < width; i++)
            buf[n++] = '.';
    } else {
        /* Unknown total: a three-cell marker bouncing across the bar. */
        int span = width > 3 ? width - 3 : 1;
        int pos = (int)(tick % (unsigned)(2 * span));
        if (pos > span)
            pos = 2 * span - pos;
        for (int i = 0; i < width; i++)
            buf[n++] = (i >= pos && i < pos + 3) ? '=' : ' ';
    }
    buf[n++] = ']';
    buf[n] = '\0';
}
