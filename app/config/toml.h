/*
 * toml.h: a TOML 1.0 parser for baton's config.toml.
 *
 * bt_toml_parse() turns a buffer into a document tree of tables, arrays and
 * typed leaves. The tree is read-only and owned by the document; every
 * pointer handed out by an accessor stays valid until bt_toml_doc_destroy().
 * Parsing is bounded by bt_toml_limits_t (nesting depth, input size, string
 * length, array and table sizes), so a hostile file cannot exhaust memory or
 * the stack. A failed parse fills a bt_toml_error_t with the position
 * (1-based line and column, columns counted in characters) and a message of
 * the form "config.toml:12:7: expected '=' after key 'port'".
 *
 * Functions return BT_TOML_OK (0) or a negative bt_toml_err_t code;
 * bt_toml_strerror() names it. Results come back through trailing OUT
 * parameters. Nothing here is thread-safe on a shared document except
 * concurrent reads, which are safe.
 */
#ifndef BATON_APP_CONFIG_TOML_H
#define BATON_APP_CONFIG_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BT_TOML_ERRNO_MAP(X)                                                                       \
    X(OK, 0, "success")                                                                            \
    X(ESYNTAX, -1, "invalid TOML")                                                                 \
    X(ELIMIT, -2, "a parser limit was exceeded")                                                   \
    X(ENOMEM, -3, "out of memory")                                                                 \
    X(EINVAL, -4, "invalid argument")                                                              \
    X(ENOTFOUND, -5, "no such key")                                                                \
    X(ETYPE, -6, "value has another type")                                                         \
    X(ERANGE, -7, "value out of range")

typedef enum {
#define BT_TOML_ERR_ENUM_(name, value, text) BT_TOML_##name = (value),
    BT_TOML_ERRNO_MAP(BT_TOML_ERR_ENUM_)
#undef BT_TOML_ERR_ENUM_
} bt_toml_err_t;

/* Names an error code; never NULL ("unknown error" for codes not in the map). */
const char *bt_toml_strerror(int err);

typedef enum {
    BT_TOML_TABLE,
    BT_TOML_ARRAY,
    BT_TOML_STRING,
    BT_TOML_INTEGER,
    BT_TOML_FLOAT,
    BT_TOML_BOOL,
    BT_TOML_DATETIME,       /* offset date-time: 1979-05-27T07:32:00Z */
    BT_TOML_DATETIME_LOCAL, /* local date-time: 1979-05-27T07:32:00 */
    BT_TOML_DATE_LOCAL,     /* local date: 1979-05-27 */
    BT_TOML_TIME_LOCAL,     /* local time: 07:32:00 */
    BT_TOML_TYPE_COUNT
} bt_toml_type_t;

/* Names a type ("table", "integer", ...); "unknown" when out of range. */
const char *bt_toml_type_name(bt_toml_type_t type);

/* Parser limits. A field left 0 takes its default (in brackets); max_depth
 * is capped at BT_TOML_MAX_DEPTH_CAP since the parser recurses per level. */
typedef struct bt_toml_limits_t {
    size_t max_input;  /* bytes of input [1 MiB] */
    size_t max_depth;  /* nesting of tables and arrays below the root [64] */
    size_t max_string; /* bytes of one decoded string or key [64 KiB] */
    size_t max_array;  /* elements of one array [65536] */
    size_t max_table;  /* keys of one table [65536] */
} bt_toml_limits_t;

#define BT_TOML_DEFAULT_MAX_INPUT  ((size_t)1 << 20)
#define BT_TOML_DEFAULT_MAX_DEPTH  64
#define BT_TOML_DEFAULT_MAX_STRING ((size_t)64 << 10)
#define BT_TOML_DEFAULT_MAX_ARRAY  65536
#define BT_TOML_DEFAULT_MAX_TABLE  65536
#define BT_TOML_MAX_DEPTH_CAP      1024 /* a larger max_depth is lowered to this */

/* Fills *out with the default limits. Does not take ownership of out. */
void bt_toml_limits_default(bt_toml_limits_t *out /* OUT */);

/* Where and why a parse failed. message is the full text, including the
 * file name and position: "config.toml:12:7: expected '=' after key 'port'";
 * detail is the same text without the "file:line:column: " prefix. The
 * struct holds no pointers, so it may be copied freely. */
typedef struct bt_toml_error_t {
    int code;      /* BT_TOML_ESYNTAX, BT_TOML_ELIMIT, BT_TOML_ENOMEM or BT_TOML_EINVAL */
    uint32_t line; /* 1-based; 0 when the error has no position */
    uint32_t column;
    char message[320];
    char detail[256];
} bt_toml_error_t;

/* Calendar fields of the four date/time types. Fields a type lacks are 0. */
typedef struct bt_toml_datetime_t {
    int year, month, day;     /* dates */
    int hour, minute, second; /* times */
    int32_t nanosecond;       /* fraction, truncated to nanoseconds */
    int offset_minutes;       /* offset date-time: east of UTC; Z is 0 */
    bool has_date, has_time, has_offset;
} bt_toml_datetime_t;

typedef struct bt_toml_doc_t bt_toml_doc_t;
typedef struct bt_toml_value_t bt_toml_value_t;

/* Parses len bytes of text (not NUL-terminated necessarily). filename is
 * used only in messages (NULL gives "<input>"); limits NULL means defaults.
 * On success *out is a new document the caller must bt_toml_doc_destroy().
 * On failure *out is NULL, *err (if err is not NULL) says where and why, and
 * the code is BT_TOML_ESYNTAX, BT_TOML_ELIMIT, BT_TOML_ENOMEM or
 * BT_TOML_EINVAL. Does not take ownership of text, filename, limits or err;
 * copies what it keeps. */
int bt_toml_parse(const char *text, size_t len, const char *filename,
                  const bt_toml_limits_t *limits, bt_toml_doc_t **out /* OUT */,
                  bt_toml_error_t *err /* OUT */);

/* Frees the document and every value in it. NULL is a no-op. Takes ownership of doc. */
void bt_toml_doc_destroy(bt_toml_doc_t *doc);

/* The root table, owned by the document. Does not take ownership of doc. */
const bt_toml_value_t *bt_toml_doc_root(const bt_toml_doc_t *doc);

/* Type of a value (BT_TOML_TYPE_COUNT for NULL), and where it was defined
 * (the key's position for table entries, the value's own position for array
 * elements; 1-based, 0 for NULL). Do not take ownership of v. */
bt_toml_type_t bt_toml_type(const bt_toml_value_t *v);
uint32_t bt_toml_line(const bt_toml_value_t *v);
uint32_t bt_toml_column(const bt_toml_value_t *v);

/* Tables keep their keys in the order of first definition. count is 0 for a
 * non-table; key/value return NULL for an index out of range. *keylen (may
 * be NULL) receives the key's length, since a quoted key may hold "\u0000".
 * Do not take ownership of table; the returned key and value are owned by
 * the document. */
size_t bt_toml_table_count(const bt_toml_value_t *table);
const char *bt_toml_table_key(const bt_toml_value_t *table, size_t i, size_t *keylen /* OUT */);
const bt_toml_value_t *bt_toml_table_value(const bt_toml_value_t *table, size_t i);

/* Looks up one key (not a dotted path) in a table; NULL if absent or if
 * table is not a table. Does not take ownership of table or key; the
 * result is owned by the document. */
const bt_toml_value_t *bt_toml_get(const bt_toml_value_t *table, const char *key);
const bt_toml_value_t *bt_toml_get_n(const bt_toml_value_t *table, const char *key, size_t keylen);

/* Elements of an array (count 0, at NULL for a non-array or an index out of
 * range). Do not take ownership of array; elements are owned by the document. */
size_t bt_toml_array_count(const bt_toml_value_t *array);
const bt_toml_value_t *bt_toml_array_at(const bt_toml_value_t *array, size_t i);

/* Typed reads of one value: BT_TOML_OK, BT_TOML_EINVAL for a NULL value or
 * out, BT_TOML_ETYPE if the value has another type (nothing is converted,
 * except that bt_toml_as_float also accepts an integer). Strings are
 * NUL-terminated UTF-8 owned by the document; *len (may be NULL) is their
 * length in bytes. bt_toml_as_datetime accepts all four date/time types.
 * Do not take ownership of v or out. */
int bt_toml_as_string(const bt_toml_value_t *v, const char **out /* OUT */, size_t *len /* OUT */);
int bt_toml_as_int(const bt_toml_value_t *v, int64_t *out /* OUT */);
int bt_toml_as_float(const bt_toml_value_t *v, double *out /* OUT */);
int bt_toml_as_bool(const bt_toml_value_t *v, bool *out /* OUT */);
int bt_toml_as_datetime(const bt_toml_value_t *v, bt_toml_datetime_t *out /* OUT */);

/* The normalised text of a date/time value ("1979-05-27T07:32:00.5-07:00":
 * 'T' separator, upper-case 'Z', fraction truncated to 9 digits); NULL for
 * other types. Owned by the document; does not take ownership of v. */
const char *bt_toml_datetime_text(const bt_toml_value_t *v);

/* Table lookups with a type check: BT_TOML_ENOTFOUND if key is absent,
 * BT_TOML_ETYPE if it has another type, BT_TOML_EINVAL for NULL arguments.
 * bt_toml_get_int_range also gives BT_TOML_ERANGE outside [min, max] (and
 * leaves *out alone). Do not take ownership of table, key or out; a string
 * or value handed back is owned by the document. */
int bt_toml_get_string(const bt_toml_value_t *table, const char *key, const char **out /* OUT */);
int bt_toml_get_int(const bt_toml_value_t *table, const char *key, int64_t *out /* OUT */);
int bt_toml_get_int_range(const bt_toml_value_t *table, const char *key, int64_t min, int64_t max,
                          int64_t *out /* OUT */);
int bt_toml_get_float(const bt_toml_value_t *table, const char *key, double *out /* OUT */);
int bt_toml_get_bool(const bt_toml_value_t *table, const char *key, bool *out /* OUT */);
int bt_toml_get_table(const bt_toml_value_t *table, const char *key,
                      const bt_toml_value_t **out /* OUT */);
int bt_toml_get_array(const bt_toml_value_t *table, const char *key,
                      const bt_toml_value_t **out /* OUT */);

/* Parses one TOML date/time ("1979-05-27 07:32:00Z", "07:32:00", ...) on
 * its own, as the parser does: BT_TOML_OK and *type and *out filled, or
 * BT_TOML_ESYNTAX. Does not take ownership of s. */
int bt_toml_datetime_parse(const char *s, size_t len, bt_toml_type_t *type /* OUT */,
                           bt_toml_datetime_t *out /* OUT */);

#endif /* BATON_APP_CONFIG_TOML_H */
