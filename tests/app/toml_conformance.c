/*
 * toml_conformance.c: runs the TOML parser over the toml-test 1.0.0 cases.
 *
 * Usage: toml_conformance TESTS_DIR MIN_VALID MIN_INVALID [-v]
 *
 * TESTS_DIR is toml-test's tests/ folder; files-toml-1.0.0 in it lists the
 * cases. A valid case passes when it parses and the tree equals NAME.json
 * (toml-test's tagged JSON, read by the small JSON reader below; integers
 * and floats are compared by value, date/times by their parsed fields). An
 * invalid case passes when the parser rejects it. The program prints
 * "valid P/210, invalid R/499" and "N passed, M failed", and exits 0 only if
 * P >= MIN_VALID and R >= MIN_INVALID, so CTest can hold the line at what
 * has been reached. -v lists each failing case on stderr.
 */
#include "config/toml.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a small JSON reader for the expected files -------------------------------------------- */

typedef enum { J_OBJ, J_ARR, J_STR } jtype_t;

typedef struct jval {
    jtype_t type;
    char *str; /* J_STR */
    size_t len;
    size_t n;           /* children */
    char **keys;        /* J_OBJ */
    size_t *keylens;    /* J_OBJ */
    struct jval **kids; /* J_OBJ, J_ARR */
} jval_t;

typedef struct {
    const char *s;
    size_t n, i;
} jin_t;

static void jfree(jval_t *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->n; i++) {
        if (v->keys)
            free(v->keys[i]);
        jfree(v->kids[i]);
    }
    free(v->keys);
    free(v->keylens);
    free(v->kids);
    free(v->str);
    free(v);
}

static void jws(jin_t *in)
{
    while (in->i < in->n && strchr(" \t\r\n", in->s[in->i]) != NULL)
        in->i++;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(unsigned cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Reads a JSON string at in->i (on the quote) into a new buffer. */
static char *jstring(jin_t *in, size_t *len)
{
    if (in->i >= in->n || in->s[in->i] != '"')
        return NULL;
    in->i++;
    char *o = malloc(in->n - in->i + 1);
    size_t k = 0;
    if (o == NULL)
        return NULL;
    while (in->i < in->n && in->s[in->i] != '"') {
        char c = in->s[in->i++];
        if (c != '\\') {
            o[k++] = c;
            continue;
        }
        if (in->i >= in->n)
            break;
        c = in->s[in->i++];
        switch (c) {
        case 'b':
            o[k++] = '\b';
            break;
        case 'f':
            o[k++] = '\f';
            break;
        case 'n':
            o[k++] = '\n';
            break;
        case 'r':
            o[k++] = '\r';
            break;
        case 't':
            o[k++] = '\t';
            break;
        case 'u': {
            unsigned cp, lo;
            if (in->i + 4 > in->n || hex4(in->s + in->i, &cp) != 0)
                goto bad;
            in->i += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && in->i + 6 <= in->n && in->s[in->i] == '\\' &&
                in->s[in->i + 1] == 'u' && hex4(in->s + in->i + 2, &lo) == 0 && lo >= 0xdc00 &&
                lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                in->i += 6;
            }
            k += put_utf8(cp, o + k);
            break;
        }
        default:
            o[k++] = c;
            break;
        }
    }
    if (in->i >= in->n)
        goto bad;
    in->i++;
    o[k] = '\0';
    *len = k;
    return o;
bad:
    free(o);
    return NULL;
}

static jval_t *jparse(jin_t *in, int depth)
{
    jws(in);
    if (in->i >= in->n || depth > 200)
        return NULL;
    jval_t *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return NULL;
    char c = in->s[in->i];
    if (c == '"') {
        v->type = J_STR;
        v->str = jstring(in, &v->len);
        if (v->str == NULL)
            goto bad;
        return v;
    }
    if (c != '{' && c != '[')
        goto bad;
    v->type = c == '{' ? J_OBJ : J_ARR;
    char close = c == '{' ? '}' : ']';
    in->i++;
    size_t cap = 0;
    for (;;) {
        jws(in);
        if (in->i < in->n && in->s[in->i] == close) {
            in->i++;
            return v;
        }
        if (v->n > 0) {
            if (in->i >= in->n || in->s[in->i] != ',')
                goto bad;
            in->i++;
            jws(in);
        }
        if (v->n == cap) {
            cap = cap ? cap * 2 : 8;
            v->kids = realloc(v->kids, cap * sizeof(*v->kids));
            if (v->type == J_OBJ) {
                v->keys = realloc(v->keys, cap * sizeof(*v->keys));
                v->keylens = realloc(v->keylens, cap * sizeof(*v->keylens));
            }
            if (v->kids == NULL || (v->type == J_OBJ && (v->keys == NULL || v->keylens == NULL)))
                abort();
        }
        char *key = NULL;
        size_t keylen = 0;
        if (v->type == J_OBJ) {
            key = jstring(in, &keylen);
            if (key == NULL)
                goto bad;
            jws(in);
            if (in->i >= in->n || in->s[in->i] != ':') {
                free(key);
                goto bad;
            }
            in->i++;
        }
        jval_t *kid = jparse(in, depth + 1);
        if (kid == NULL) {
            free(key);
            goto bad;
        }
        if (v->type == J_OBJ) {
            v->keys[v->n] = key;
            v->keylens[v->n] = keylen;
        }
        v->kids[v->n++] = kid;
    }
bad:
    jfree(v);
    return NULL;
}

static const jval_t *jget(const jval_t *o, const char *key)
{
    for (size_t i = 0; i < o->n; i++)
        if (strlen(key) == o->keylens[i] && memcmp(o->keys[i], key, o->keylens[i]) == 0)
            return o->kids[i];
    return NULL;
}

/* ---- comparison ---------------------------------------------------------------------------- */

static bool is_leaf(const jval_t *j)
{
    if (j->type != J_OBJ || j->n != 2)
        return false;
    const jval_t *t = jget(j, "type"), *v = jget(j, "value");
    return t && v && t->type == J_STR && v->type == J_STR;
}

static bool dt_equal(const bt_toml_datetime_t *a, const bt_toml_datetime_t *b)
{
    return a->year == b->year && a->month == b->month && a->day == b->day && a->hour == b->hour &&
           a->minute == b->minute && a->second == b->second && a->nanosecond == b->nanosecond &&
           a->offset_minutes == b->offset_minutes && a->has_date == b->has_date &&
           a->has_time == b->has_time && a->has_offset == b->has_offset;
}

static bool leaf_equal(const bt_toml_value_t *v, const jval_t *j)
{
    const char *type = jget(j, "type")->str;
    const jval_t *jv = jget(j, "value");
    const char *val = jv->str;
    bt_toml_type_t tt = bt_toml_type(v);
    if (strcmp(type, "string") == 0) {
        const char *s;
        size_t n;
        return bt_toml_as_string(v, &s, &n) == 0 && n == jv->len && memcmp(s, val, n) == 0;
    }
    if (strcmp(type, "integer") == 0) {
        int64_t i;
        return bt_toml_as_int(v, &i) == 0 && i == strtoll(val, NULL, 10);
    }
    if (strcmp(type, "float") == 0) {
        if (tt != BT_TOML_FLOAT)
            return false;
        double d, e = strtod(val, NULL);
        bt_toml_as_float(v, &d);
        if (isnan(e))
            return isnan(d) != 0;
        return d == e && signbit(d) == signbit(e);
    }
    if (strcmp(type, "bool") == 0) {
        bool b;
        return bt_toml_as_bool(v, &b) == 0 && b == (strcmp(val, "true") == 0);
    }
    bt_toml_type_t et;
    if (strcmp(type, "datetime") == 0)
        et = BT_TOML_DATETIME;
    else if (strcmp(type, "datetime-local") == 0)
        et = BT_TOML_DATETIME_LOCAL;
    else if (strcmp(type, "date-local") == 0)
        et = BT_TOML_DATE_LOCAL;
    else if (strcmp(type, "time-local") == 0)
        et = BT_TOML_TIME_LOCAL;
    else
        return false;
    bt_toml_type_t pt;
    bt_toml_datetime_t a, b;
    if (tt != et || bt_toml_as_datetime(v, &a) != 0 ||
        bt_toml_datetime_parse(val, jv->len, &pt, &b) != 0 || pt != et)
        return false;
    return dt_equal(&a, &b);
}

static bool equal(const bt_toml_value_t *v, const jval_t *j)
{
    if (j->type == J_ARR) {
        if (bt_toml_type(v) != BT_TOML_ARRAY || bt_toml_array_count(v) != j->n)
            return false;
        for (size_t i = 0; i < j->n; i++)
            if (!equal(bt_toml_array_at(v, i), j->kids[i]))
                return false;
        return true;
    }
    if (j->type != J_OBJ)
        return false;
    if (is_leaf(j) && bt_toml_type(v) != BT_TOML_TABLE)
        return leaf_equal(v, j);
    if (bt_toml_type(v) != BT_TOML_TABLE || bt_toml_table_count(v) != j->n)
        return false;
    for (size_t i = 0; i < j->n; i++) {
        const bt_toml_value_t *kid = bt_toml_get_n(v, j->keys[i], j->keylens[i]);
        if (kid == NULL || !equal(kid, j->kids[i]))
            return false;
    }
    return true;
}

/* ---- driver -------------------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf != NULL && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    if (buf != NULL)
        *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s TESTS_DIR MIN_VALID MIN_INVALID [-v]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    long min_valid = strtol(argv[2], NULL, 10), min_invalid = strtol(argv[3], NULL, 10);
    bool verbose = argc > 4 && strcmp(argv[4], "-v") == 0;
    char path[4096];
    snprintf(path, sizeof(path), "%s/files-toml-1.0.0", dir);
    FILE *list = fopen(path, "r");
    if (list == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return 2;
    }
    int valid_total = 0, valid_pass = 0, invalid_total = 0, invalid_pass = 0;
    char line[2048];
    while (fgets(line, sizeof(line), list) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        size_t ll = strlen(line);
        if (ll < 5 || strcmp(line + ll - 5, ".toml") != 0)
            continue;
        bool valid = strncmp(line, "valid/", 6) == 0;
        snprintf(path, sizeof(path), "%s/%s", dir, line);
        size_t len = 0;
        char *text = slurp(path, &len);
        if (text == NULL) {
            fprintf(stderr, "cannot read %s\n", path);
            valid ? valid_total++ : invalid_total++;
            continue;
        }
        bt_toml_doc_t *doc = NULL;
        bt_toml_error_t err;
        int rc = bt_toml_parse(text, len, line, NULL, &doc, &err);
        free(text);
        if (!valid) {
            invalid_total++;
            if (rc != 0)
                invalid_pass++;
            else if (verbose)
                fprintf(stderr, "FAIL %s: accepted\n", line);
            bt_toml_doc_destroy(doc);
            continue;
        }
        valid_total++;
        if (rc != 0) {
            if (verbose)
                fprintf(stderr, "FAIL %s\n", err.message);
            continue;
        }
        snprintf(path + strlen(path) - 5, 6, ".json");
        char *js = slurp(path, &len);
        jin_t in = {js, len, 0};
        jval_t *j = js ? jparse(&in, 0) : NULL;
        if (j != NULL && equal(bt_toml_doc_root(doc), j))
            valid_pass++;
        else if (verbose)
            fprintf(stderr, "FAIL %s: %s\n", line,
                    j ? "result differs from the expected JSON" : "cannot read expected JSON");
        jfree(j);
        free(js);
        bt_toml_doc_destroy(doc);
    }
    fclose(list);
    printf("valid %d/%d, invalid %d/%d\n", valid_pass, valid_total, invalid_pass, invalid_total);
    int passed = valid_pass + invalid_pass, total = valid_total + invalid_total;
    printf("%d passed, %d failed\n", passed, total - passed);
    return valid_pass >= min_valid && invalid_pass >= min_invalid ? 0 : 1;
}
