/*
 * toml-decoder.c: a toml-test decoder for baton's TOML parser.
 *
 * Reads TOML on standard input and prints toml-test's tagged JSON on
 * standard output: tables become objects, arrays become arrays, and every
 * leaf becomes {"type": T, "value": V} with V a string. Invalid input gets
 * the parser's message ("<stdin>:3:5: expected ...") on standard error and
 * exit status 1. Input is limited by the parser's default limits.
 */
#include "config/toml.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_json_string(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            fputs("\\\"", stdout);
            break;
        case '\\':
            fputs("\\\\", stdout);
            break;
        case '\n':
            fputs("\\n", stdout);
            break;
        case '\r':
            fputs("\\r", stdout);
            break;
        case '\t':
            fputs("\\t", stdout);
            break;
        case '\b':
            fputs("\\b", stdout);
            break;
        case '\f':
            fputs("\\f", stdout);
            break;
        default:
            if (c < 0x20 || c == 0x7f)
                printf("\\u%04x", c);
            else
                putchar(c);
        }
    }
    putchar('"');
}

static void put_leaf(const char *type, const char *value)
{
    printf("{\"type\": \"%s\", \"value\": ", type);
    put_json_string(value, strlen(value));
    putchar('}');
}

static void put_value(const bt_toml_value_t *v)
{
    char buf[64];
    switch (bt_toml_type(v)) {
    case BT_TOML_TABLE: {
        putchar('{');
        for (size_t i = 0; i < bt_toml_table_count(v); i++) {
            size_t kl;
            const char *k = bt_toml_table_key(v, i, &kl);
            if (i > 0)
                putchar(',');
            put_json_string(k, kl);
            putchar(':');
            put_value(bt_toml_table_value(v, i));
        }
        putchar('}');
        break;
    }
    case BT_TOML_ARRAY:
        putchar('[');
        for (size_t i = 0; i < bt_toml_array_count(v); i++) {
            if (i > 0)
                putchar(',');
            put_value(bt_toml_array_at(v, i));
        }
        putchar(']');
        break;
    case BT_TOML_STRING: {
        const char *s;
        size_t n;
        bt_toml_as_string(v, &s, &n);
        fputs("{\"type\": \"string\", \"value\": ", stdout);
        put_json_string(s, n);
        putchar('}');
        break;
    }
    case BT_TOML_INTEGER: {
        int64_t i;
        bt_toml_as_int(v, &i);
        snprintf(buf, sizeof(buf), "%" PRId64, i);
        put_leaf("integer", buf);
        break;
    }
    case BT_TOML_FLOAT: {
        double d;
        bt_toml_as_float(v, &d);
        if (isnan(d))
            snprintf(buf, sizeof(buf), "nan");
        else if (isinf(d))
            snprintf(buf, sizeof(buf), "%sinf", d < 0 ? "-" : "");
        else
            snprintf(buf, sizeof(buf), "%.17g", d);
        put_leaf("float", buf);
        break;
    }
    case BT_TOML_BOOL: {
        bool b;
        bt_toml_as_bool(v, &b);
        put_leaf("bool", b ? "true" : "false");
        break;
    }
    case BT_TOML_DATETIME:
        put_leaf("datetime", bt_toml_datetime_text(v));
        break;
    case BT_TOML_DATETIME_LOCAL:
        put_leaf("datetime-local", bt_toml_datetime_text(v));
        break;
    case BT_TOML_DATE_LOCAL:
        put_leaf("date-local", bt_toml_datetime_text(v));
        break;
    case BT_TOML_TIME_LOCAL:
        put_leaf("time-local", bt_toml_datetime_text(v));
        break;
    default:
        fputs("null", stdout);
        break;
    }
}

int main(void)
{
    size_t cap = 1 << 16, n = 0, r;
    char *buf = malloc(cap);
    while (buf != NULL && (r = fread(buf + n, 1, cap - n, stdin)) > 0) {
        n += r;
        if (n == cap) {
            if (cap > 2 * BT_TOML_DEFAULT_MAX_INPUT)
                break; /* the parser will refuse it as too large */
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL)
                break;
            buf = nb;
            cap *= 2;
        }
    }
    if (buf == NULL) {
        fputs("toml-decoder: out of memory\n", stderr);
        return 1;
    }
    bt_toml_doc_t *doc;
    bt_toml_error_t err;
    int rc = bt_toml_parse(buf, n, "<stdin>", NULL, &doc, &err);
    free(buf);
    if (rc != BT_TOML_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    put_value(bt_toml_doc_root(doc));
    putchar('\n');
    bt_toml_doc_destroy(doc);
    return 0;
}
