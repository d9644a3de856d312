/*
 * toml.c: a TOML 1.0 parser (see toml.h) written for baton's config.toml.
 *
 * DESIGN: one pass, recursive descent over the whole buffer, with no
 * separate lexer. The input is first checked to be valid UTF-8, so later
 * stages only look at ASCII structure. Every allocation comes from an arena
 * owned by the document: a failed parse frees the arena and nothing else, so
 * no error path can leak, and destroying a document is one walk over the
 * arena's blocks. Growing arrays copy into a fresh arena block (the old one
 * is kept until the end); with the input capped at max_input this wastes at
 * most a constant factor.
 *
 * TOML 1.0's rules about redefinition are kept by flags on each table:
 * EXPLICIT (made by a [header] or [[header]]), IMPLICIT (made as a prefix of
 * a header; may be made EXPLICIT once later), DOTTED (made by a dotted key;
 * never the target of a header) and INLINE (sealed: nothing may be added
 * from outside). Arrays are STATIC ([1, 2]) or AOT ([[header]]). Headers may
 * pass through any table except an INLINE one and through the last element
 * of an AOT; dotted keys may pass only through DOTTED tables.
 *
 * Nesting is limited by a depth stored in every container (root is 0), so
 * recursion depth is bounded by max_depth.
 */
#include "config/toml.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena --------------------------------------------------------------------------------- */

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    max_align_t data[];
} arena_block_t;

#define ARENA_CHUNK ((size_t)32 << 10)

typedef struct {
    arena_block_t *head;
} arena_t;

static void *arena_alloc(arena_t *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    if (n == 0)
        n = sizeof(max_align_t);
    arena_block_t *b = a->head;
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > ARENA_CHUNK / 2 ? n : ARENA_CHUNK;
        b = malloc(sizeof(*b) + cap);
        if (b == NULL)
            return NULL;
        b->used = 0;
        b->cap = cap;
        if (a->head != NULL && n > ARENA_CHUNK / 2) {
            /* A big block goes second so the current chunk keeps serving small requests. */
            b->next = a->head->next;
            a->head->next = b;
            b->used = n;
            return (char *)b->data;
        }
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    return p;
}

static void arena_free(arena_t *a)
{
    arena_block_t *b = a->head;
    while (b != NULL) {
        arena_block_t *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

/* ---- values -------------------------------------------------------------------------------- */

enum {
    F_EXPLICIT = 1,
    F_IMPLICIT = 2,
    F_DOTTED = 4,
    F_INLINE = 8,
    F_STATIC = 16,
    F_AOT = 32,
};

typedef struct {
    const char *key;
    size_t keylen;
    uint32_t hash;
    bt_toml_value_t *val;
} entry_t;

struct bt_toml_value_t {
    bt_toml_type_t type;
    uint32_t flags;
    uint32_t depth;
    uint32_t line, column;
    union {
        struct {
            char *ptr;
            size_t len;
        } str;
        int64_t i;
        double f;
        bool b;
        struct {
            bt_toml_datetime_t dt;
            char text[48];
        } dt;
        struct {
            entry_t *items;
            size_t count, cap;
            uint32_t *index; /* open addressing: entry index + 1, 0 = empty */
            size_t index_cap;
        } tab;
        struct {
            bt_toml_value_t **items;
            size_t count, cap;
        } arr;
    } u;
};

struct bt_toml_doc_t {
    arena_t arena;
    bt_toml_value_t *root;
};

static const char *const type_names[BT_TOML_TYPE_COUNT] = {
    [BT_TOML_TABLE] = "table",
    [BT_TOML_ARRAY] = "array",
    [BT_TOML_STRING] = "string",
    [BT_TOML_INTEGER] = "integer",
    [BT_TOML_FLOAT] = "float",
    [BT_TOML_BOOL] = "bool",
    [BT_TOML_DATETIME] = "offset date-time",
    [BT_TOML_DATETIME_LOCAL] = "local date-time",
    [BT_TOML_DATE_LOCAL] = "local date",
    [BT_TOML_TIME_LOCAL] = "local time",
};

const char *bt_toml_type_name(bt_toml_type_t type)
{
    if ((unsigned)type >= BT_TOML_TYPE_COUNT)
        return "unknown";
    return type_names[type];
}

const char *bt_toml_strerror(int err)
{
    switch (err) {
#define BT_TOML_ERR_STR_(name, value, text)                                                        \
    case (value):                                                                                  \
        return text;
        BT_TOML_ERRNO_MAP(BT_TOML_ERR_STR_)
#undef BT_TOML_ERR_STR_
    default:
        return "unknown error";
    }
}

void bt_toml_limits_default(bt_toml_limits_t *out)
{
    if (out == NULL)
        return;
    out->max_input = BT_TOML_DEFAULT_MAX_INPUT;
    out->max_depth = BT_TOML_DEFAULT_MAX_DEPTH;
    out->max_string = BT_TOML_DEFAULT_MAX_STRING;
    out->max_array = BT_TOML_DEFAULT_MAX_ARRAY;
    out->max_table = BT_TOML_DEFAULT_MAX_TABLE;
}

static uint32_t hash_key(const char *k, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 16777619u;
    }
    return h;
}

static entry_t *table_find(const bt_toml_value_t *t, const char *key, size_t keylen)
{
    uint32_t h = hash_key(key, keylen);
    if (t->u.tab.index != NULL) {
        size_t mask = t->u.tab.index_cap - 1;
        for (size_t i = h & mask;; i = (i + 1) & mask) {
            uint32_t slot = t->u.tab.index[i];
            if (slot == 0)
                return NULL;
            entry_t *e = &t->u.tab.items[slot - 1];
            if (e->hash == h && e->keylen == keylen && memcmp(e->key, key, keylen) == 0)
                return e;
        }
    }
    for (size_t i = 0; i < t->u.tab.count; i++) {
        entry_t *e = &t->u.tab.items[i];
        if (e->hash == h && e->keylen == keylen && memcmp(e->key, key, keylen) == 0)
            return e;
    }
    return NULL;
}

/* ---- parser state and errors --------------------------------------------------------------- */

typedef struct {
    const char *src;
    size_t len, pos;
    uint32_t line, col;
    const char *filename;
    bt_toml_limits_t lim;
    bt_toml_error_t *err;
    bt_toml_doc_t *doc;
    bt_toml_value_t *cur; /* table that key/value lines go into */
    int code;             /* the code of the last error set */
} parser_t;

typedef struct {
    const char *ptr;
    size_t len;
    uint32_t line, col;
} keypart_t;

static void set_error(bt_toml_error_t *err, const char *filename, int code, uint32_t line,
                      uint32_t col, const char *detail)
{
    if (err == NULL)
        return;
    err->code = code;
    err->line = line;
    err->column = col;
    int n;
    if (line > 0)
        n = snprintf(err->message, sizeof(err->message), "%s:%u:%u: ", filename, line, col);
    else
        n = snprintf(err->message, sizeof(err->message), "%s: ", filename);
    if (n < 0 || (size_t)n >= sizeof(err->message))
        n = 0;
    snprintf(err->message + n, sizeof(err->message) - (size_t)n, "%s", detail);
    snprintf(err->detail, sizeof(err->detail), "%s", detail);
}

__attribute__((format(printf, 5, 6))) static int fail_at(parser_t *p, int code, uint32_t line,
                                                         uint32_t col, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    set_error(p->err, p->filename, code, line, col, buf);
    p->code = code;
    return code;
}

#define FAIL(p, ...)  fail_at((p), BT_TOML_ESYNTAX, (p)->line, (p)->col, __VA_ARGS__)
#define LIMIT(p, ...) fail_at((p), BT_TOML_ELIMIT, (p)->line, (p)->col, __VA_ARGS__)
#define NOMEM(p)      fail_at((p), BT_TOML_ENOMEM, (p)->line, (p)->col, "out of memory")

/* Writes a printable, quoted form of bytes (a key, a found character) into buf. */
static const char *show(char *buf, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
        if (i + 1 < n && o + 8 >= cap) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
    }
    buf[o] = '\0';
    return buf;
}

static const char *show_key(char *buf, size_t cap, const keypart_t *parts, size_t n)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        if (i > 0)
            buf[o++] = '.';
        show(buf + o, cap - o, parts[i].ptr, parts[i].len);
        o += strlen(buf + o);
    }
    buf[o] = '\0';
    return buf;
}

/* What is at the cursor, for "expected X, found Y" messages. */
static const char *found(parser_t *p, char *buf, size_t cap)
{
    if (p->pos >= p->len)
        return "end of file";
    char c = p->src[p->pos];
    if (c == '\n' || (c == '\r' && p->pos + 1 < p->len && p->src[p->pos + 1] == '\n'))
        return "end of line";
    size_t n = 1;
    unsigned char u = (unsigned char)c;
    if (u >= 0xf0)
        n = 4;
    else if (u >= 0xe0)
        n = 3;
    else if (u >= 0xc0)
        n = 2;
    if (p->pos + n > p->len)
        n = p->len - p->pos;
    char tmp[32];
    show(tmp, sizeof(tmp), p->src + p->pos, n);
    snprintf(buf, cap, "'%s'", tmp);
    return buf;
}

static inline bool at_end(const parser_t *p)
{
    return p->pos >= p->len;
}

static inline char peek(const parser_t *p)
{
    return p->pos < p->len ? p->src[p->pos] : '\0';
}

static inline char peek_at(const parser_t *p, size_t off)
{
    return p->pos + off < p->len ? p->src[p->pos + off] : '\0';
}

static inline void advance(parser_t *p)
{
    unsigned char c = (unsigned char)p->src[p->pos++];
    if (c == '\n') {
        p->line++;
        p->col = 1;
    } else if ((c & 0xc0) != 0x80) {
        p->col++;
    }
}

static void skip_ws(parser_t *p)
{
    while (!at_end(p) && (peek(p) == ' ' || peek(p) == '\t'))
        advance(p);
}

static bool at_newline(const parser_t *p)
{
    return peek(p) == '\n' || (peek(p) == '\r' && peek_at(p, 1) == '\n');
}

static void eat_newline(parser_t *p)
{
    if (peek(p) == '\r')
        advance(p);
    advance(p);
}

/* A comment runs to the end of the line; control characters other than tab are not allowed. */
static int skip_comment(parser_t *p)
{
    advance(p); /* '#' */
    while (!at_end(p) && !at_newline(p)) {
        unsigned char c = (unsigned char)peek(p);
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return FAIL(p, "control character 0x%02x is not allowed in a comment", c);
        advance(p);
    }
    return BT_TOML_OK;
}

/* After a header or key/value: optional spaces and comment, then end of line or file. */
static int end_of_line(parser_t *p, const char *after)
{
    skip_ws(p);
    if (peek(p) == '#') {
        int rc = skip_comment(p);
        if (rc != 0)
            return rc;
    }
    if (at_end(p))
        return BT_TOML_OK;
    if (at_newline(p)) {
        eat_newline(p);
        return BT_TOML_OK;
    }
    char fb[40];
    return FAIL(p, "expected end of line after %s, found %s", after, found(p, fb, sizeof(fb)));
}

/* Inside arrays: whitespace, newlines and comments. */
static int skip_ws_nl(parser_t *p)
{
    for (;;) {
        skip_ws(p);
        if (peek(p) == '#') {
            int rc = skip_comment(p);
            if (rc != 0)
                return rc;
        } else if (at_newline(p)) {
            eat_newline(p);
        } else {
            return BT_TOML_OK;
        }
    }
}

static int check_utf8(parser_t *p)
{
    const unsigned char *s = (const unsigned char *)p->src;
    size_t n = p->len;
    uint32_t line = 1, col = 1;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            if (c == '\r' && (i + 1 >= n || s[i + 1] != '\n'))
                return fail_at(p, BT_TOML_ESYNTAX, line, col,
                               "carriage return not followed by a line feed");
            if (c == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return fail_at(p, BT_TOML_ESYNTAX, line, col, "invalid UTF-8 byte 0x%02x", c);
        }
        if (i + len > n)
            return fail_at(p, BT_TOML_ESYNTAX, line, col, "truncated UTF-8 sequence");
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return fail_at(p, BT_TOML_ESYNTAX, line, col, "invalid UTF-8 sequence");
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return fail_at(p, BT_TOML_ESYNTAX, line, col,
                           "invalid UTF-8 sequence (overlong, surrogate or beyond U+10FFFF)");
        i += len;
        col++;
    }
    return BT_TOML_OK;
}

/* ---- tree building ------------------------------------------------------------------------- */

static bt_toml_value_t *new_value(parser_t *p, bt_toml_type_t type, uint32_t line, uint32_t col)
{
    bt_toml_value_t *v = arena_alloc(&p->doc->arena, sizeof(*v));
    if (v == NULL)
        return NULL;
    memset(v, 0, sizeof(*v));
    v->type = type;
    v->line = line;
    v->column = col;
    return v;
}

/* A new container one level below parent_depth, or NULL with the error set. */
static bt_toml_value_t *new_container(parser_t *p, bt_toml_type_t type, uint32_t parent_depth,
                                      uint32_t flags, uint32_t line, uint32_t col)
{
    if (parent_depth + 1 > p->lim.max_depth) {
        fail_at(p, BT_TOML_ELIMIT, line, col, "nesting deeper than the limit of %zu",
                p->lim.max_depth);
        return NULL;
    }
    bt_toml_value_t *v = new_value(p, type, line, col);
    if (v == NULL) {
        NOMEM(p);
        return NULL;
    }
    v->depth = parent_depth + 1;
    v->flags = flags;
    return v;
}

static int rebuild_index(parser_t *p, bt_toml_value_t *t)
{
    size_t cap = 16;
    while (cap < t->u.tab.count * 2 + 2)
        cap *= 2;
    uint32_t *idx = arena_alloc(&p->doc->arena, cap * sizeof(*idx));
    if (idx == NULL)
        return NOMEM(p);
    memset(idx, 0, cap * sizeof(*idx));
    for (size_t i = 0; i < t->u.tab.count; i++) {
        size_t j = t->u.tab.items[i].hash & (cap - 1);
        while (idx[j] != 0)
            j = (j + 1) & (cap - 1);
        idx[j] = (uint32_t)(i + 1);
    }
    t->u.tab.index = idx;
    t->u.tab.index_cap = cap;
    return BT_TOML_OK;
}

/* Adds key (must be absent) to table t. The key bytes are copied. */
static int table_insert(parser_t *p, bt_toml_value_t *t, const keypart_t *k, bt_toml_value_t *v)
{
    if (t->u.tab.count >= p->lim.max_table)
        return fail_at(p, BT_TOML_ELIMIT, k->line, k->col, "table has more than %zu keys",
                       p->lim.max_table);
    if (t->u.tab.count == t->u.tab.cap) {
        size_t cap = t->u.tab.cap ? t->u.tab.cap * 2 : 4;
        entry_t *items = arena_alloc(&p->doc->arena, cap * sizeof(*items));
        if (items == NULL)
            return NOMEM(p);
        if (t->u.tab.count)
            memcpy(items, t->u.tab.items, t->u.tab.count * sizeof(*items));
        t->u.tab.items = items;
        t->u.tab.cap = cap;
    }
    char *key = arena_alloc(&p->doc->arena, k->len + 1);
    if (key == NULL)
        return NOMEM(p);
    memcpy(key, k->ptr, k->len);
    key[k->len] = '\0';
    entry_t *e = &t->u.tab.items[t->u.tab.count++];
    e->key = key;
    e->keylen = k->len;
    e->hash = hash_key(k->ptr, k->len);
    e->val = v;
    v->line = k->line;
    v->column = k->col;
    if (t->u.tab.count >= 8 && t->u.tab.count * 2 > t->u.tab.index_cap)
        return rebuild_index(p, t);
    if (t->u.tab.index != NULL) {
        size_t mask = t->u.tab.index_cap - 1;
        size_t j = e->hash & mask;
        while (t->u.tab.index[j] != 0)
            j = (j + 1) & mask;
        t->u.tab.index[j] = (uint32_t)t->u.tab.count;
    }
    return BT_TOML_OK;
}

/* Creates the table named k inside *t (flagged as made by a dotted key or
 * implicitly by a header) and moves *t into it. */
static int add_subtable(parser_t *p, bt_toml_value_t **t, const keypart_t *k, uint32_t flag)
{
    bt_toml_value_t *sub = new_container(p, BT_TOML_TABLE, (*t)->depth, flag, k->line, k->col);
    if (sub == NULL)
        return p->code;
    int rc = table_insert(p, *t, k, sub);
    if (rc == 0)
        *t = sub;
    return rc;
}

static int array_push(parser_t *p, bt_toml_value_t *a, bt_toml_value_t *v)
{
    if (a->u.arr.count >= p->lim.max_array)
        return fail_at(p, BT_TOML_ELIMIT, v->line, v->column, "array has more than %zu elements",
                       p->lim.max_array);
    if (a->u.arr.count == a->u.arr.cap) {
        size_t cap = a->u.arr.cap ? a->u.arr.cap * 2 : 4;
        bt_toml_value_t **items = arena_alloc(&p->doc->arena, cap * sizeof(*items));
        if (items == NULL)
            return NOMEM(p);
        if (a->u.arr.count)
            memcpy(items, a->u.arr.items, a->u.arr.count * sizeof(*items));
        a->u.arr.items = items;
        a->u.arr.cap = cap;
    }
    a->u.arr.items[a->u.arr.count++] = v;
    return BT_TOML_OK;
}

/* ---- strings ------------------------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len, cap;
} sbuf_t;

static int sb_put(parser_t *p, sbuf_t *sb, const char *s, size_t n)
{
    if (sb->len + n > p->lim.max_string)
        return LIMIT(p, "string longer than the limit of %zu bytes", p->lim.max_string);
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap * 2 : 32;
        while (cap < sb->len + n + 1)
            cap *= 2;
        char *nb = arena_alloc(&p->doc->arena, cap);
        if (nb == NULL)
            return NOMEM(p);
        if (sb->len)
            memcpy(nb, sb->buf, sb->len);
        sb->buf = nb;
        sb->cap = cap;
    }
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
    return BT_TOML_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* One escape after a backslash in a basic string; the cursor is on the backslash. */
static int parse_escape(parser_t *p, sbuf_t *sb, bool multiline)
{
    uint32_t line = p->line, col = p->col;
    advance(p); /* '\\' */
    char c = peek(p);
    const char *rep = NULL;
    switch (c) {
    case 'b':
        rep = "\b";
        break;
    case 't':
        rep = "\t";
        break;
    case 'n':
        rep = "\n";
        break;
    case 'f':
        rep = "\f";
        break;
    case 'r':
        rep = "\r";
        break;
    case '"':
        rep = "\"";
        break;
    case '\\':
        rep = "\\";
        break;
    default:
        break;
    }
    if (rep != NULL) {
        advance(p);
        return sb_put(p, sb, rep, 1);
    }
    if (c == 'u' || c == 'U') {
        int n = c == 'u' ? 4 : 8;
        advance(p);
        uint32_t cp = 0;
        for (int i = 0; i < n; i++) {
            int h = hexval(peek(p));
            if (at_end(p) || h < 0)
                return fail_at(p, BT_TOML_ESYNTAX, line, col, "expected %d hex digits after '\\%c'",
                               n, c);
            cp = cp * 16 + (uint32_t)h;
            advance(p);
        }
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return fail_at(p, BT_TOML_ESYNTAX, line, col,
                           "escape '\\%c' is not a Unicode scalar value (U+%X)", c, cp);
        char u[4];
        return sb_put(p, sb, u, utf8_encode(cp, u));
    }
    if (multiline && (c == ' ' || c == '\t' || at_newline(p))) {
        /* Line-ending backslash: only whitespace may follow it on its line. */
        while (peek(p) == ' ' || peek(p) == '\t')
            advance(p);
        if (!at_newline(p))
            return fail_at(p, BT_TOML_ESYNTAX, line, col,
                           "a line-ending backslash must be followed only by whitespace");
        for (;;) {
            if (peek(p) == ' ' || peek(p) == '\t')
                advance(p);
            else if (at_newline(p))
                eat_newline(p);
            else
                break;
        }
        return BT_TOML_OK;
    }
    if (at_end(p) || at_newline(p))
        return fail_at(p, BT_TOML_ESYNTAX, line, col, "unterminated escape sequence");
    char fb[40];
    return fail_at(p, BT_TOML_ESYNTAX, line, col,
                   "invalid escape %s in string (valid: \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX "
                   "\\UXXXXXXXX)",
                   found(p, fb, sizeof(fb)));
}

/* Parses a string of any of the four kinds; the cursor is on the opening quote. */
static int parse_string(parser_t *p, bool allow_multiline, sbuf_t *sb)
{
    char q = peek(p);
    bool literal = q == '\'';
    uint32_t line = p->line, col = p->col;
    bool multi = peek_at(p, 1) == q && peek_at(p, 2) == q;
    sb->buf = NULL;
    sb->len = sb->cap = 0;
    int rc = sb_put(p, sb, "", 0);
    if (rc != 0)
        return rc;
    if (multi) {
        if (!allow_multiline)
            return FAIL(p, "a key cannot be a multi-line string");
        advance(p), advance(p), advance(p);
        if (at_newline(p))
            eat_newline(p); /* a newline right after the opening quotes is trimmed */
    } else {
        advance(p);
    }
    for (;;) {
        if (at_end(p))
            return fail_at(p, BT_TOML_ESYNTAX, line, col, "unterminated string (missing %s)",
                           multi ? (literal ? "'''" : "\"\"\"") : (literal ? "'" : "\""));
        char c = peek(p);
        if (c == q) {
            if (!multi) {
                advance(p);
                return BT_TOML_OK;
            }
            size_t n = 0;
            while (peek_at(p, n) == q)
                n++;
            if (n >= 3) {
                if (n > 5)
                    return FAIL(p, "too many quotes at the end of a multi-line string");
                for (size_t i = 0; i < n; i++)
                    advance(p);
                return sb_put(p, sb, p->src + p->pos - n, n - 3);
            }
            for (size_t i = 0; i < n; i++)
                advance(p);
            rc = sb_put(p, sb, p->src + p->pos - n, n);
            if (rc != 0)
                return rc;
            continue;
        }
        if (at_newline(p)) {
            if (!multi)
                return fail_at(p, BT_TOML_ESYNTAX, line, col,
                               "unterminated string (a newline before the closing %s)",
                               literal ? "'" : "\"");
            eat_newline(p);
            rc = sb_put(p, sb, "\n", 1);
        } else if (c == '\\' && !literal) {
            rc = parse_escape(p, sb, multi);
        } else {
            unsigned char u = (unsigned char)c;
            if ((u < 0x20 && u != '\t') || u == 0x7f)
                return FAIL(p, "control character 0x%02x must be escaped in a string", u);
            /* copy a run of plain bytes at once */
            size_t start = p->pos;
            advance(p);
            while (!at_end(p)) {
                unsigned char d = (unsigned char)peek(p);
                if (d == (unsigned char)q || (d == '\\' && !literal) || d == '\r' || d == '\n' ||
                    (d < 0x20 && d != '\t') || d == 0x7f)
                    break;
                advance(p);
            }
            rc = sb_put(p, sb, p->src + start, p->pos - start);
        }
        if (rc != 0)
            return rc;
    }
}

/* ---- keys ---------------------------------------------------------------------------------- */

static bool is_bare(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* Parses a (dotted) key into parts; parts come from the arena. */
static int parse_key(parser_t *p, keypart_t **out, size_t *nout)
{
    size_t cap = 4, n = 0;
    keypart_t *parts = arena_alloc(&p->doc->arena, cap * sizeof(*parts));
    if (parts == NULL)
        return NOMEM(p);
    for (;;) {
        if (n == cap) {
            if (n >= p->lim.max_depth)
                return LIMIT(p, "dotted key has more than %zu parts", p->lim.max_depth);
            keypart_t *np = arena_alloc(&p->doc->arena, cap * 2 * sizeof(*parts));
            if (np == NULL)
                return NOMEM(p);
            memcpy(np, parts, n * sizeof(*parts));
            parts = np;
            cap *= 2;
        }
        keypart_t *k = &parts[n];
        k->line = p->line;
        k->col = p->col;
        char c = peek(p);
        if (!at_end(p) && is_bare(c)) {
            size_t start = p->pos;
            while (!at_end(p) && is_bare(peek(p)))
                advance(p);
            k->ptr = p->src + start;
            k->len = p->pos - start;
            if (k->len > p->lim.max_string)
                return LIMIT(p, "key longer than the limit of %zu bytes", p->lim.max_string);
        } else if (c == '"' || c == '\'') {
            sbuf_t sb;
            int rc = parse_string(p, false, &sb);
            if (rc != 0)
                return rc;
            k->ptr = sb.buf;
            k->len = sb.len;
        } else {
            char fb[40];
            return FAIL(p, "expected a key, found %s", found(p, fb, sizeof(fb)));
        }
        n++;
        skip_ws(p);
        if (peek(p) != '.')
            break;
        advance(p);
        skip_ws(p);
    }
    *out = parts;
    *nout = n;
    return BT_TOML_OK;
}

/* ---- scalars ------------------------------------------------------------------------------- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int digits_n(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int days_in_month(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return d[m - 1];
}

/* Parses HH:MM:SS(.frac)? at s; returns bytes used or -1. */
static int parse_time_part(const char *s, size_t n, bt_toml_datetime_t *dt)
{
    if (n < 8 || s[2] != ':' || s[5] != ':')
        return -1;
    int h = digits_n(s, 2), m = digits_n(s + 3, 2), sec = digits_n(s + 6, 2);
    if (h < 0 || m < 0 || sec < 0 || h > 23 || m > 59 || sec > 60)
        return -1;
    dt->hour = h, dt->minute = m, dt->second = sec;
    dt->has_time = true;
    size_t i = 8;
    if (i < n && s[i] == '.') {
        i++;
        size_t start = i;
        int32_t ns = 0;
        while (i < n && is_digit(s[i])) {
            if (i - start < 9)
                ns = ns * 10 + (s[i] - '0');
            i++;
        }
        if (i == start)
            return -1;
        for (size_t k = i - start; k < 9; k++)
            ns *= 10;
        dt->nanosecond = ns;
    }
    return (int)i;
}

int bt_toml_datetime_parse(const char *s, size_t n, bt_toml_type_t *type, bt_toml_datetime_t *out)
{
    if (s == NULL || type == NULL || out == NULL)
        return BT_TOML_EINVAL;
    bt_toml_datetime_t dt;
    memset(&dt, 0, sizeof(dt));
    size_t i = 0;
    if (n >= 10 && s[4] == '-' && s[7] == '-') {
        int y = digits_n(s, 4), m = digits_n(s + 5, 2), d = digits_n(s + 8, 2);
        if (y < 0 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
            return BT_TOML_ESYNTAX;
        dt.year = y, dt.month = m, dt.day = d;
        dt.has_date = true;
        i = 10;
        if (i == n) {
            *type = BT_TOML_DATE_LOCAL;
            *out = dt;
            return BT_TOML_OK;
        }
        if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
            return BT_TOML_ESYNTAX;
        i++;
    }
    int used = parse_time_part(s + i, n - i, &dt);
    if (used < 0)
        return BT_TOML_ESYNTAX;
    i += (size_t)used;
    if (!dt.has_date) {
        if (i != n)
            return BT_TOML_ESYNTAX;
        *type = BT_TOML_TIME_LOCAL;
        *out = dt;
        return BT_TOML_OK;
    }
    if (i == n) {
        *type = BT_TOML_DATETIME_LOCAL;
        *out = dt;
        return BT_TOML_OK;
    }
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if ((s[i] == '+' || s[i] == '-') && n - i == 6 && s[i + 3] == ':') {
        int oh = digits_n(s + i + 1, 2), om = digits_n(s + i + 4, 2);
        if (oh < 0 || om < 0 || oh > 23 || om > 59)
            return BT_TOML_ESYNTAX;
        dt.offset_minutes = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return BT_TOML_ESYNTAX;
    }
    if (i != n)
        return BT_TOML_ESYNTAX;
    dt.has_offset = true;
    *type = BT_TOML_DATETIME;
    *out = dt;
    return BT_TOML_OK;
}

static void format_datetime(bt_toml_value_t *v, const char *src, size_t n)
{
    const bt_toml_datetime_t *dt = &v->u.dt.dt;
    char *o = v->u.dt.text;
    size_t cap = sizeof(v->u.dt.text), k = 0;
    if (dt->has_date)
        k += (size_t)snprintf(o + k, cap - k, "%04d-%02d-%02d", dt->year, dt->month, dt->day);
    if (dt->has_date && dt->has_time)
        o[k++] = 'T';
    if (dt->has_time) {
        k += (size_t)snprintf(o + k, cap - k, "%02d:%02d:%02d", dt->hour, dt->minute, dt->second);
        const char *dot = memchr(src, '.', n);
        if (dot != NULL) {
            o[k++] = '.';
            for (size_t j = 1; j <= 9 && dot + j < src + n && is_digit(dot[j]); j++)
                o[k++] = dot[j];
        }
    }
    if (dt->has_offset) {
        if (dt->offset_minutes == 0 && (src[n - 1] == 'Z' || src[n - 1] == 'z')) {
            o[k++] = 'Z';
        } else {
            int off = dt->offset_minutes < 0 ? -dt->offset_minutes : dt->offset_minutes;
            k += (size_t)snprintf(o + k, cap - k, "%c%02d:%02d", src[n - 6] == '-' ? '-' : '+',
                                  off / 60, off % 60);
        }
    }
    o[k] = '\0';
}

/* Checks digits with single underscores between them; returns false if malformed. */
static bool check_underscores(const char *s, size_t n, int (*isd)(char))
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '_') {
            if (i == 0 || i + 1 == n || !isd(s[i - 1]) || !isd(s[i + 1]))
                return false;
        } else if (!isd(s[i])) {
            return false;
        }
    }
    return true;
}

static int isd10(char c)
{
    return c >= '0' && c <= '9';
}
static int isd16(char c)
{
    return hexval(c) >= 0;
}
static int isd8(char c)
{
    return c >= '0' && c <= '7';
}
static int isd2(char c)
{
    return c == '0' || c == '1';
}

static int parse_number(parser_t *p, const char *tok, size_t n, uint32_t line, uint32_t col,
                        bt_toml_value_t **out)
{
    char tb[64];
    show(tb, sizeof(tb), tok, n);
    const char *s = tok;
    size_t len = n;
    bool neg = false, sign = false;
    if (len > 0 && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        sign = true;
        s++, len--;
    }
    /* inf and nan */
    if ((len == 3 && memcmp(s, "inf", 3) == 0) || (len == 3 && memcmp(s, "nan", 3) == 0)) {
        bt_toml_value_t *v = new_value(p, BT_TOML_FLOAT, line, col);
        if (v == NULL)
            return NOMEM(p);
        v->u.f = s[0] == 'i' ? (neg ? -INFINITY : INFINITY) : (neg ? -NAN : NAN);
        *out = v;
        return BT_TOML_OK;
    }
    /* prefixed integers */
    if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o' || s[1] == 'b')) {
        int base = s[1] == 'x' ? 16 : s[1] == 'o' ? 8 : 2;
        int (*isd)(char) = base == 16 ? isd16 : base == 8 ? isd8 : isd2;
        if (sign)
            return fail_at(p, BT_TOML_ESYNTAX, line, col,
                           "a sign is not allowed on a hex, octal or binary integer: '%s'", tb);
        if (!check_underscores(s + 2, len - 2, isd))
            return fail_at(p, BT_TOML_ESYNTAX, line, col, "invalid base-%d integer '%s'", base, tb);
        uint64_t v = 0;
        for (size_t i = 2; i < len; i++) {
            if (s[i] == '_')
                continue;
            int d = hexval(s[i]);
            if (v > (uint64_t)(INT64_MAX - d) / (uint64_t)base)
                return fail_at(p, BT_TOML_ESYNTAX, line, col,
                               "integer '%s' does not fit in 64 bits", tb);
            v = v * (uint64_t)base + (uint64_t)d;
        }
        bt_toml_value_t *nv = new_value(p, BT_TOML_INTEGER, line, col);
        if (nv == NULL)
            return NOMEM(p);
        nv->u.i = (int64_t)v;
        *out = nv;
        return BT_TOML_OK;
    }
    /* decimal: split into integer part, fraction and exponent */
    size_t ip = 0;
    while (ip < len && (is_digit(s[ip]) || s[ip] == '_'))
        ip++;
    if (ip == 0 || !check_underscores(s, ip, isd10))
        return fail_at(p, BT_TOML_ESYNTAX, line, col, "invalid value '%s'", tb);
    if (s[0] == '0' && ip > 1)
        return fail_at(p, BT_TOML_ESYNTAX, line, col, "leading zeros are not allowed in '%s'", tb);
    size_t i = ip;
    bool is_float = false;
    if (i < len && s[i] == '.') {
        size_t fs = ++i;
        while (i < len && (is_digit(s[i]) || s[i] == '_'))
            i++;
        if (!check_underscores(s + fs, i - fs, isd10))
            return fail_at(p, BT_TOML_ESYNTAX, line, col,
                           "invalid float '%s' (digits must follow the '.')", tb);
        is_float = true;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t es = i;
        while (i < len && (is_digit(s[i]) || s[i] == '_'))
            i++;
        if (!check_underscores(s + es, i - es, isd10))
            return fail_at(p, BT_TOML_ESYNTAX, line, col, "invalid exponent in float '%s'", tb);
        is_float = true;
    }
    if (i != len)
        return fail_at(p, BT_TOML_ESYNTAX, line, col, "invalid value '%s'", tb);
    char buf[128];
    size_t k = 0;
    for (size_t j = 0; j < n && k + 1 < sizeof(buf); j++)
        if (tok[j] != '_')
            buf[k++] = tok[j];
    buf[k] = '\0';
    if (k + 1 >= sizeof(buf) && n >= sizeof(buf))
        return fail_at(p, BT_TOML_ESYNTAX, line, col, "number '%s' is too long", tb);
    bt_toml_value_t *v = new_value(p, is_float ? BT_TOML_FLOAT : BT_TOML_INTEGER, line, col);
    if (v == NULL)
        return NOMEM(p);
    errno = 0;
    if (is_float) {
        v->u.f = strtod(buf, NULL);
    } else {
        long long ll = strtoll(buf, NULL, 10);
        if (errno == ERANGE)
            return fail_at(p, BT_TOML_ESYNTAX, line, col,
                           "integer '%s' does not fit in 64 bits (range -2^63..2^63-1)", tb);
        v->u.i = ll;
    }
    *out = v;
    return BT_TOML_OK;
}

/* ---- values -------------------------------------------------------------------------------- */

static int parse_value(parser_t *p, uint32_t depth, bt_toml_value_t **out);
static int parse_keyval(parser_t *p, bt_toml_value_t *table);

static int parse_array(parser_t *p, uint32_t depth, bt_toml_value_t **out)
{
    uint32_t line = p->line, col = p->col;
    bt_toml_value_t *a = new_container(p, BT_TOML_ARRAY, depth, F_STATIC, line, col);
    if (a == NULL)
        return p->code;
    advance(p); /* '[' */
    for (;;) {
        int rc = skip_ws_nl(p);
        if (rc != 0)
            return rc;
        if (peek(p) == ']') {
            advance(p);
            break;
        }
        bt_toml_value_t *v;
        rc = parse_value(p, a->depth, &v);
        if (rc != 0)
            return rc;
        rc = array_push(p, a, v);
        if (rc != 0)
            return rc;
        rc = skip_ws_nl(p);
        if (rc != 0)
            return rc;
        if (peek(p) == ',') {
            advance(p);
        } else if (peek(p) == ']') {
            advance(p);
            break;
        } else {
            char fb[40];
            if (at_end(p))
                return fail_at(p, BT_TOML_ESYNTAX, line, col,
                               "unterminated array (expected ']' to close it)");
            return FAIL(p, "expected ',' or ']' in array, found %s", found(p, fb, sizeof(fb)));
        }
    }
    *out = a;
    return BT_TOML_OK;
}

static int parse_inline_table(parser_t *p, uint32_t depth, bt_toml_value_t **out)
{
    uint32_t line = p->line, col = p->col;
    bt_toml_value_t *t = new_container(p, BT_TOML_TABLE, depth, F_INLINE, line, col);
    if (t == NULL)
        return p->code;
    advance(p); /* '{' */
    skip_ws(p);
    if (peek(p) == '}') {
        advance(p);
        *out = t;
        return BT_TOML_OK;
    }
    for (;;) {
        skip_ws(p);
        int rc = parse_keyval(p, t);
        if (rc != 0)
            return rc;
        skip_ws(p);
        char c = peek(p);
        if (c == ',') {
            advance(p);
            skip_ws(p);
            if (peek(p) == '}')
                return FAIL(p, "trailing comma is not allowed in an inline table");
            continue;
        }
        if (c == '}') {
            advance(p);
            break;
        }
        char fb[40];
        if (at_end(p) || at_newline(p))
            return FAIL(p,
                        "expected ',' or '}' in inline table, found %s (an inline table "
                        "must be on one line)",
                        found(p, fb, sizeof(fb)));
        return FAIL(p, "expected ',' or '}' in inline table, found %s", found(p, fb, sizeof(fb)));
    }
    *out = t;
    return BT_TOML_OK;
}

static bool is_token_char(char c)
{
    return is_bare(c) || c == '+' || c == '.' || c == ':';
}

static int parse_value(parser_t *p, uint32_t depth, bt_toml_value_t **out)
{
    uint32_t line = p->line, col = p->col;
    char c = peek(p);
    char fb[40];
    if (at_end(p) || at_newline(p) || c == '#')
        return FAIL(p, "expected a value, found %s", found(p, fb, sizeof(fb)));
    if (c == '"' || c == '\'') {
        sbuf_t sb;
        int rc = parse_string(p, true, &sb);
        if (rc != 0)
            return rc;
        bt_toml_value_t *v = new_value(p, BT_TOML_STRING, line, col);
        if (v == NULL)
            return NOMEM(p);
        v->u.str.ptr = sb.buf;
        v->u.str.len = sb.len;
        *out = v;
        return BT_TOML_OK;
    }
    if (c == '[')
        return parse_array(p, depth, out);
    if (c == '{')
        return parse_inline_table(p, depth, out);
    if (!is_token_char(c) && c != '-')
        return FAIL(p, "expected a value, found %s", found(p, fb, sizeof(fb)));
    size_t start = p->pos;
    while (!at_end(p) && is_token_char(peek(p)))
        advance(p);
    /* "1979-05-27 07:32:00": a date, one space, then a time */
    size_t n = p->pos - start;
    const char *tok = p->src + start;
    if (n == 10 && tok[4] == '-' && tok[7] == '-' && peek(p) == ' ' && is_digit(peek_at(p, 1)) &&
        is_digit(peek_at(p, 2)) && peek_at(p, 3) == ':') {
        advance(p);
        while (!at_end(p) && is_token_char(peek(p)))
            advance(p);
        n = p->pos - start;
    }
    char tb[64];
    show(tb, sizeof(tb), tok, n);
    if (n == 4 && memcmp(tok, "true", 4) == 0) {
        bt_toml_value_t *v = new_value(p, BT_TOML_BOOL, line, col);
        if (v == NULL)
            return NOMEM(p);
        v->u.b = true;
        *out = v;
        return BT_TOML_OK;
    }
    if (n == 5 && memcmp(tok, "false", 5) == 0) {
        bt_toml_value_t *v = new_value(p, BT_TOML_BOOL, line, col);
        if (v == NULL)
            return NOMEM(p);
        v->u.b = false;
        *out = v;
        return BT_TOML_OK;
    }
    bool looks_dt = memchr(tok, ':', n) != NULL ||
                    (n >= 10 && is_digit(tok[0]) && tok[4] == '-' && tok[7] == '-');
    if (looks_dt) {
        bt_toml_type_t type;
        bt_toml_datetime_t dt;
        if (bt_toml_datetime_parse(tok, n, &type, &dt) != BT_TOML_OK)
            return fail_at(p, BT_TOML_ESYNTAX, line, col,
                           "invalid date/time '%s' (expected e.g. 1979-05-27T07:32:00Z, "
                           "1979-05-27 or 07:32:00)",
                           tb);
        bt_toml_value_t *v = new_value(p, type, line, col);
        if (v == NULL)
            return NOMEM(p);
        v->u.dt.dt = dt;
        format_datetime(v, tok, n);
        *out = v;
        return BT_TOML_OK;
    }
    if (!is_digit(c) && c != '+' && c != '-' && c != 'i' && c != 'n')
        return fail_at(p, BT_TOML_ESYNTAX, line, col,
                       "expected a value, found '%s' (strings must be quoted)", tb);
    return parse_number(p, tok, n, line, col, out);
}

/* ---- key/value lines and headers ----------------------------------------------------------- */

static int parse_keyval(parser_t *p, bt_toml_value_t *table)
{
    keypart_t *parts;
    size_t n;
    char kb[128];
    int rc = parse_key(p, &parts, &n);
    if (rc != 0)
        return rc;
    skip_ws(p);
    if (peek(p) != '=') {
        char fb[40];
        return FAIL(p, "expected '=' after key '%s', found %s", show_key(kb, sizeof(kb), parts, n),
                    found(p, fb, sizeof(fb)));
    }
    advance(p);
    skip_ws(p);
    bt_toml_value_t *t = table;
    for (size_t i = 0; i + 1 < n; i++) {
        entry_t *e = table_find(t, parts[i].ptr, parts[i].len);
        if (e == NULL) {
            if ((rc = add_subtable(p, &t, &parts[i], F_DOTTED)) != 0)
                return rc;
            continue;
        }
        bt_toml_value_t *v = e->val;
        show_key(kb, sizeof(kb), parts, i + 1);
        if (v->type != BT_TOML_TABLE)
            return fail_at(p, BT_TOML_ESYNTAX, parts[i].line, parts[i].col,
                           "cannot add keys to '%s': it is already defined as a %s (at %u:%u)", kb,
                           bt_toml_type_name(v->type), v->line, v->column);
        if (v->flags & F_INLINE)
            return fail_at(p, BT_TOML_ESYNTAX, parts[i].line, parts[i].col,
                           "cannot add keys to inline table '%s' (defined at %u:%u)", kb, v->line,
                           v->column);
        if (!(v->flags & F_DOTTED))
            return fail_at(p, BT_TOML_ESYNTAX, parts[i].line, parts[i].col,
                           "cannot add keys to table '%s' with a dotted key: it was defined by "
                           "a [table] header",
                           kb);
        t = v;
    }
    keypart_t *last = &parts[n - 1];
    entry_t *dup = table_find(t, last->ptr, last->len);
    if (dup != NULL)
        return fail_at(p, BT_TOML_ESYNTAX, last->line, last->col,
                       "duplicate key '%s' (first defined at %u:%u)",
                       show_key(kb, sizeof(kb), parts, n), dup->val->line, dup->val->column);
    bt_toml_value_t *v;
    rc = parse_value(p, t->depth, &v);
    if (rc != 0)
        return rc;
    return table_insert(p, t, last, v);
}

static int parse_header(parser_t *p)
{
    uint32_t line = p->line, col = p->col;
    advance(p); /* '[' */
    bool aot = peek(p) == '[';
    if (aot)
        advance(p);
    skip_ws(p);
    keypart_t *parts;
    size_t n;
    char kb[128];
    int rc = parse_key(p, &parts, &n);
    if (rc != 0)
        return rc;
    show_key(kb, sizeof(kb), parts, n);
    if (peek(p) != ']' || (aot && peek_at(p, 1) != ']')) {
        char fb[40];
        return FAIL(p, "expected '%s' to close table header '%s', found %s", aot ? "]]" : "]", kb,
                    found(p, fb, sizeof(fb)));
    }
    advance(p);
    if (aot)
        advance(p);
    bt_toml_value_t *t = p->doc->root;
    for (size_t i = 0; i + 1 < n; i++) {
        entry_t *e = table_find(t, parts[i].ptr, parts[i].len);
        if (e == NULL) {
            if ((rc = add_subtable(p, &t, &parts[i], F_IMPLICIT)) != 0)
                return rc;
            continue;
        }
        bt_toml_value_t *v = e->val;
        show_key(kb, sizeof(kb), parts, i + 1);
        if (v->type == BT_TOML_ARRAY && (v->flags & F_AOT)) {
            t = v->u.arr.items[v->u.arr.count - 1];
            continue;
        }
        if (v->type != BT_TOML_TABLE)
            return fail_at(p, BT_TOML_ESYNTAX, parts[i].line, parts[i].col,
                           "cannot define a table under '%s': it is a %s (defined at %u:%u)", kb,
                           bt_toml_type_name(v->type), v->line, v->column);
        if (v->flags & F_INLINE)
            return fail_at(p, BT_TOML_ESYNTAX, parts[i].line, parts[i].col,
                           "cannot extend inline table '%s' (defined at %u:%u)", kb, v->line,
                           v->column);
        t = v;
    }
    keypart_t *last = &parts[n - 1];
    show_key(kb, sizeof(kb), parts, n);
    entry_t *e = table_find(t, last->ptr, last->len);
    if (aot) {
        bt_toml_value_t *arr;
        if (e == NULL) {
            arr = new_container(p, BT_TOML_ARRAY, t->depth, F_AOT, line, col);
            if (arr == NULL)
                return p->code;
            rc = table_insert(p, t, last, arr);
            if (rc != 0)
                return rc;
        } else if (e->val->type == BT_TOML_ARRAY && (e->val->flags & F_AOT)) {
            arr = e->val;
        } else {
            return fail_at(p, BT_TOML_ESYNTAX, line, col,
                           "cannot define array of tables '%s': it is already a %s%s (at %u:%u)",
                           kb, e->val->type == BT_TOML_ARRAY ? "static " : "",
                           bt_toml_type_name(e->val->type), e->val->line, e->val->column);
        }
        bt_toml_value_t *tab = new_container(p, BT_TOML_TABLE, arr->depth, F_EXPLICIT, line, col);
        if (tab == NULL)
            return p->code;
        rc = array_push(p, arr, tab);
        if (rc != 0)
            return rc;
        p->cur = tab;
    } else {
        if (e == NULL) {
            bt_toml_value_t *tab = new_container(p, BT_TOML_TABLE, t->depth, F_EXPLICIT, line, col);
            if (tab == NULL)
                return p->code;
            rc = table_insert(p, t, last, tab);
            if (rc != 0)
                return rc;
            p->cur = tab;
        } else {
            bt_toml_value_t *v = e->val;
            if (v->type != BT_TOML_TABLE)
                return fail_at(p, BT_TOML_ESYNTAX, line, col,
                               "cannot define table '%s': it is already a %s (at %u:%u)", kb,
                               bt_toml_type_name(v->type), v->line, v->column);
            if (v->flags & (F_EXPLICIT | F_DOTTED | F_INLINE))
                return fail_at(p, BT_TOML_ESYNTAX, line, col,
                               "table '%s' is already defined (at %u:%u)", kb, v->line, v->column);
            v->flags = (v->flags & ~(uint32_t)F_IMPLICIT) | F_EXPLICIT;
            p->cur = v;
        }
    }
    return end_of_line(p, "table header");
}

static int parse_document(parser_t *p)
{
    if (p->len >= 3 && memcmp(p->src, "\xef\xbb\xbf", 3) == 0)
        p->pos = 3; /* a byte order mark is skipped */
    for (;;) {
        skip_ws(p);
        if (at_end(p))
            return BT_TOML_OK;
        char c = peek(p);
        int rc;
        if (c == '#') {
            rc = skip_comment(p);
        } else if (at_newline(p)) {
            eat_newline(p);
            rc = 0;
        } else if (c == '[') {
            rc = parse_header(p);
        } else {
            rc = parse_keyval(p, p->cur);
            if (rc == 0)
                rc = end_of_line(p, "value");
        }
        if (rc != 0)
            return rc;
    }
}

int bt_toml_parse(const char *text, size_t len, const char *filename,
                  const bt_toml_limits_t *limits, bt_toml_doc_t **out, bt_toml_error_t *err)
{
    if (filename == NULL)
        filename = "<input>";
    if (err != NULL) {
        memset(err, 0, sizeof(*err));
    }
    if (out == NULL || (text == NULL && len > 0)) {
        set_error(err, filename, BT_TOML_EINVAL, 0, 0, "invalid argument");
        return BT_TOML_EINVAL;
    }
    *out = NULL;
    parser_t p;
    memset(&p, 0, sizeof(p));
    bt_toml_limits_default(&p.lim);
    if (limits != NULL) {
        if (limits->max_input)
            p.lim.max_input = limits->max_input;
        if (limits->max_depth)
            p.lim.max_depth = limits->max_depth;
        if (limits->max_string)
            p.lim.max_string = limits->max_string;
        if (limits->max_array)
            p.lim.max_array = limits->max_array;
        if (limits->max_table)
            p.lim.max_table = limits->max_table;
    }
    if (p.lim.max_depth > BT_TOML_MAX_DEPTH_CAP)
        p.lim.max_depth = BT_TOML_MAX_DEPTH_CAP; /* bounds the recursion, and so the stack */
    p.src = text ? text : "";
    p.len = len;
    p.line = p.col = 1;
    p.filename = filename;
    p.err = err;
    if (len > p.lim.max_input) {
        char buf[128];
        snprintf(buf, sizeof(buf), "file is %zu bytes, larger than the limit of %zu", len,
                 p.lim.max_input);
        set_error(err, filename, BT_TOML_ELIMIT, 0, 0, buf);
        return BT_TOML_ELIMIT;
    }
    bt_toml_doc_t *doc = calloc(1, sizeof(*doc));
    if (doc == NULL) {
        set_error(err, filename, BT_TOML_ENOMEM, 0, 0, "out of memory");
        return BT_TOML_ENOMEM;
    }
    p.doc = doc;
    int rc = check_utf8(&p);
    if (rc == 0) {
        doc->root = new_value(&p, BT_TOML_TABLE, 1, 1);
        if (doc->root == NULL) {
            rc = NOMEM(&p);
        } else {
            doc->root->flags = F_EXPLICIT;
            p.cur = doc->root;
            rc = parse_document(&p);
        }
    }
    if (rc != 0) {
        bt_toml_doc_destroy(doc);
        return rc;
    }
    *out = doc;
    return BT_TOML_OK;
}

void bt_toml_doc_destroy(bt_toml_doc_t *doc)
{
    if (doc == NULL)
        return;
    arena_free(&doc->arena);
    free(doc);
}

/* ---- accessors ----------------------------------------------------------------------------- */

const bt_toml_value_t *bt_toml_doc_root(const bt_toml_doc_t *doc)
{
    return doc ? doc->root : NULL;
}

bt_toml_type_t bt_toml_type(const bt_toml_value_t *v)
{
    return v ? v->type : BT_TOML_TYPE_COUNT;
}

uint32_t bt_toml_line(const bt_toml_value_t *v)
{
    return v ? v->line : 0;
}

uint32_t bt_toml_column(const bt_toml_value_t *v)
{
    return v ? v->column : 0;
}

size_t bt_toml_table_count(const bt_toml_value_t *t)
{
    return t && t->type == BT_TOML_TABLE ? t->u.tab.count : 0;
}

const char *bt_toml_table_key(const bt_toml_value_t *t, size_t i, size_t *keylen)
{
    if (t == NULL || t->type != BT_TOML_TABLE || i >= t->u.tab.count)
        return NULL;
    if (keylen != NULL)
        *keylen = t->u.tab.items[i].keylen;
    return t->u.tab.items[i].key;
}

const bt_toml_value_t *bt_toml_table_value(const bt_toml_value_t *t, size_t i)
{
    if (t == NULL || t->type != BT_TOML_TABLE || i >= t->u.tab.count)
        return NULL;
    return t->u.tab.items[i].val;
}

const bt_toml_value_t *bt_toml_get_n(const bt_toml_value_t *t, const char *key, size_t keylen)
{
    if (t == NULL || t->type != BT_TOML_TABLE || key == NULL)
        return NULL;
    entry_t *e = table_find(t, key, keylen);
    return e ? e->val : NULL;
}

const bt_toml_value_t *bt_toml_get(const bt_toml_value_t *t, const char *key)
{
    return key ? bt_toml_get_n(t, key, strlen(key)) : NULL;
}

size_t bt_toml_array_count(const bt_toml_value_t *a)
{
    return a && a->type == BT_TOML_ARRAY ? a->u.arr.count : 0;
}

const bt_toml_value_t *bt_toml_array_at(const bt_toml_value_t *a, size_t i)
{
    if (a == NULL || a->type != BT_TOML_ARRAY || i >= a->u.arr.count)
        return NULL;
    return a->u.arr.items[i];
}

int bt_toml_as_string(const bt_toml_value_t *v, const char **out, size_t *len)
{
    if (v == NULL || out == NULL)
        return BT_TOML_EINVAL;
    if (v->type != BT_TOML_STRING)
        return BT_TOML_ETYPE;
    *out = v->u.str.ptr;
    if (len != NULL)
        *len = v->u.str.len;
    return BT_TOML_OK;
}

int bt_toml_as_int(const bt_toml_value_t *v, int64_t *out)
{
    if (v == NULL || out == NULL)
        return BT_TOML_EINVAL;
    if (v->type != BT_TOML_INTEGER)
        return BT_TOML_ETYPE;
    *out = v->u.i;
    return BT_TOML_OK;
}

int bt_toml_as_float(const bt_toml_value_t *v, double *out)
{
    if (v == NULL || out == NULL)
        return BT_TOML_EINVAL;
    if (v->type == BT_TOML_INTEGER) {
        *out = (double)v->u.i;
        return BT_TOML_OK;
    }
    if (v->type != BT_TOML_FLOAT)
        return BT_TOML_ETYPE;
    *out = v->u.f;
    return BT_TOML_OK;
}

int bt_toml_as_bool(const bt_toml_value_t *v, bool *out)
{
    if (v == NULL || out == NULL)
        return BT_TOML_EINVAL;
    if (v->type != BT_TOML_BOOL)
        return BT_TOML_ETYPE;
    *out = v->u.b;
    return BT_TOML_OK;
}

static bool is_dt_type(bt_toml_type_t t)
{
    return t == BT_TOML_DATETIME || t == BT_TOML_DATETIME_LOCAL || t == BT_TOML_DATE_LOCAL ||
           t == BT_TOML_TIME_LOCAL;
}

int bt_toml_as_datetime(const bt_toml_value_t *v, bt_toml_datetime_t *out)
{
    if (v == NULL || out == NULL)
        return BT_TOML_EINVAL;
    if (!is_dt_type(v->type))
        return BT_TOML_ETYPE;
    *out = v->u.dt.dt;
    return BT_TOML_OK;
}

const char *bt_toml_datetime_text(const bt_toml_value_t *v)
{
    return v && is_dt_type(v->type) ? v->u.dt.text : NULL;
}

static int lookup(const bt_toml_value_t *t, const char *key, const bt_toml_value_t **v)
{
    if (t == NULL || key == NULL)
        return BT_TOML_EINVAL;
    if (t->type != BT_TOML_TABLE)
        return BT_TOML_ETYPE;
    *v = bt_toml_get(t, key);
    return *v ? BT_TOML_OK : BT_TOML_ENOTFOUND;
}

int bt_toml_get_string(const bt_toml_value_t *t, const char *key, const char **out)
{
    const bt_toml_value_t *v;
    int rc = lookup(t, key, &v);
    return rc ? rc : bt_toml_as_string(v, out, NULL);
}

int bt_toml_get_int(const bt_toml_value_t *t, const char *key, int64_t *out)
{
    const bt_toml_value_t *v;
    int rc = lookup(t, key, &v);
    return rc ? rc : bt_toml_as_int(v, out);
}

int bt_toml_get_int_range(const bt_toml_value_t *t, const char *key, int64_t min, int64_t max,
                          int64_t *out)
{
    int64_t x;
    if (out == NULL)
        return BT_TOML_EINVAL;
    int rc = bt_toml_get_int(t, key, &x);
    if (rc != 0)
        return rc;
    if (x < min || x > max)
        return BT_TOML_ERANGE;
    *out = x;
    return BT_TOML_OK;
}

int bt_toml_get_float(const bt_toml_value_t *t, const char *key, double *out)
{
    const bt_toml_value_t *v;
    int rc = lookup(t, key, &v);
    return rc ? rc : bt_toml_as_float(v, out);
}

int bt_toml_get_bool(const bt_toml_value_t *t, const char *key, bool *out)
{
    const bt_toml_value_t *v;
    int rc = lookup(t, key, &v);
    return rc ? rc : bt_toml_as_bool(v, out);
}

int bt_toml_get_table(const bt_toml_value_t *t, const char *key, const bt_toml_value_t **out)
{
    const bt_toml_value_t *v;
    if (out == NULL)
        return BT_TOML_EINVAL;
    int rc = lookup(t, key, &v);
    if (rc != 0)
        return rc;
    if (v->type != BT_TOML_TABLE)
        return BT_TOML_ETYPE;
    *out = v;
    return BT_TOML_OK;
}

int bt_toml_get_array(const bt_toml_value_t *t, const char *key, const bt_toml_value_t **out)
{
    const bt_toml_value_t *v;
    if (out == NULL)
        return BT_TOML_EINVAL;
    int rc = lookup(t, key, &v);
    if (rc != 0)
        return rc;
    if (v->type != BT_TOML_ARRAY)
        return BT_TOML_ETYPE;
    *out = v;
    return BT_TOML_OK;
}
