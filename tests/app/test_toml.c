/*
 * test_toml.c: unit tests of the TOML parser (app/config/toml.c).
 *
 * Covers the public API on a config-shaped document, every value type,
 * TOML 1.0's table redefinition rules, error positions and messages, the
 * configurable limits and the typed accessors. Conformance with the full
 * toml-test suite is checked separately by toml_conformance.
 */
#include "config/toml.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses s, which must succeed; the caller destroys the document. */
static bt_toml_doc_t *parse_ok(const char *s)
{
    bt_toml_doc_t *doc = NULL;
    bt_toml_error_t err;
    int rc = bt_toml_parse(s, strlen(s), "config.toml", NULL, &doc, &err);
    cr_assert_eq(rc, BT_TOML_OK, "unexpected error: %s", err.message);
    cr_assert_not_null(doc);
    return doc;
}

/* Parses s, which must fail with code; returns the error. */
static bt_toml_error_t parse_err(const char *s, const bt_toml_limits_t *lim, int code)
{
    bt_toml_doc_t *doc = (bt_toml_doc_t *)1;
    bt_toml_error_t err;
    int rc = bt_toml_parse(s, strlen(s), "config.toml", lim, &doc, &err);
    cr_assert_eq(rc, code, "rc %d for %s (%s)", rc, s, err.message);
    cr_assert_null(doc);
    cr_assert_eq(err.code, code);
    return err;
}

Test(toml, parses_a_config_shaped_document)
{
    bt_toml_doc_t *doc = parse_ok("# baton\n"
                                  "[server]\n"
                                  "listen = \"127.0.0.1\"  # default\n"
                                  "port = 8080\n"
                                  "\n"
                                  "[executor]\n"
                                  "shutdown_timeout = 30.5\n"
                                  "[breakers.payments]\n"
                                  "enabled = true\n");
    const bt_toml_value_t *root = bt_toml_doc_root(doc), *server, *brk, *pay;
    cr_assert_eq(bt_toml_table_count(root), 3);
    cr_assert_str_eq(bt_toml_table_key(root, 0, NULL), "server");
    cr_assert_str_eq(bt_toml_table_key(root, 2, NULL), "breakers");
    cr_assert_eq(bt_toml_get_table(root, "server", &server), BT_TOML_OK);
    const char *listen;
    int64_t port;
    double timeout;
    bool enabled;
    cr_assert_eq(bt_toml_get_string(server, "listen", &listen), BT_TOML_OK);
    cr_assert_str_eq(listen, "127.0.0.1");
    cr_assert_eq(bt_toml_get_int(server, "port", &port), BT_TOML_OK);
    cr_assert_eq(port, 8080);
    cr_assert_eq(bt_toml_get_float(bt_toml_get(root, "executor"), "shutdown_timeout", &timeout),
                 BT_TOML_OK);
    cr_assert_float_eq(timeout, 30.5, 1e-12);
    cr_assert_eq(bt_toml_get_table(root, "breakers", &brk), BT_TOML_OK);
    cr_assert_eq(bt_toml_get_table(brk, "payments", &pay), BT_TOML_OK);
    cr_assert_eq(bt_toml_get_bool(pay, "enabled", &enabled), BT_TOML_OK);
    cr_assert(enabled);
    /* positions of keys, for later validation messages */
    const bt_toml_value_t *pv = bt_toml_get(server, "port");
    cr_assert_eq(bt_toml_line(pv), 4);
    cr_assert_eq(bt_toml_column(pv), 1);
    bt_toml_doc_destroy(doc);
}

Test(toml, typed_getters_report_missing_wrong_type_and_range)
{
    bt_toml_doc_t *doc = parse_ok("n = 5\ns = \"x\"\n");
    const bt_toml_value_t *root = bt_toml_doc_root(doc);
    int64_t i;
    const char *s;
    bool b;
    double d;
    const bt_toml_value_t *t;
    cr_assert_eq(bt_toml_get_int(root, "missing", &i), BT_TOML_ENOTFOUND);
    cr_assert_eq(bt_toml_get_int(root, "s", &i), BT_TOML_ETYPE);
    cr_assert_eq(bt_toml_get_string(root, "n", &s), BT_TOML_ETYPE);
    cr_assert_eq(bt_toml_get_bool(root, "n", &b), BT_TOML_ETYPE);
    cr_assert_eq(bt_toml_get_table(root, "n", &t), BT_TOML_ETYPE);
    cr_assert_eq(bt_toml_get_array(root, "n", &t), BT_TOML_ETYPE);
    cr_assert_eq(bt_toml_get_float(root, "n", &d), BT_TOML_OK, "integers widen to float");
    cr_assert_float_eq(d, 5.0, 1e-12);
    cr_assert_eq(bt_toml_get_int_range(root, "n", 1, 4, &i), BT_TOML_ERANGE);
    cr_assert_eq(bt_toml_get_int_range(root, "n", 1, 5, &i), BT_TOML_OK);
    cr_assert_eq(i, 5);
    cr_assert_eq(bt_toml_get_int(NULL, "n", &i), BT_TOML_EINVAL);
    cr_assert_eq(bt_toml_get_int(bt_toml_get(root, "n"), "x", &i), BT_TOML_ETYPE);
    cr_assert_null(bt_toml_get(root, NULL));
    cr_assert_eq(bt_toml_as_int(NULL, &i), BT_TOML_EINVAL);
    cr_assert_str_eq(bt_toml_strerror(BT_TOML_ENOTFOUND), "no such key");
    cr_assert_str_eq(bt_toml_strerror(12345), "unknown error");
    cr_assert_str_eq(bt_toml_type_name(BT_TOML_DATE_LOCAL), "local date");
    bt_toml_doc_destroy(doc);
}

Test(toml, parses_integers_in_all_bases_and_detects_overflow)
{
    bt_toml_doc_t *doc = parse_ok("a = 1_000\nb = -17\nc = 0xDEAD_beef\nd = 0o755\ne = 0b1010\n"
                                  "f = 9223372036854775807\ng = -9223372036854775808\nh = +0\n");
    const bt_toml_value_t *r = bt_toml_doc_root(doc);
    int64_t v;
    bt_toml_get_int(r, "a", &v);
    cr_assert_eq(v, 1000);
    bt_toml_get_int(r, "b", &v);
    cr_assert_eq(v, -17);
    bt_toml_get_int(r, "c", &v);
    cr_assert_eq(v, 0xdeadbeef);
    bt_toml_get_int(r, "d", &v);
    cr_assert_eq(v, 0755);
    bt_toml_get_int(r, "e", &v);
    cr_assert_eq(v, 10);
    bt_toml_get_int(r, "f", &v);
    cr_assert_eq(v, INT64_MAX);
    bt_toml_get_int(r, "g", &v);
    cr_assert_eq(v, INT64_MIN);
    bt_toml_doc_destroy(doc);

    bt_toml_error_t e = parse_err("x = 9223372036854775808\n", NULL, BT_TOML_ESYNTAX);
    cr_assert(strstr(e.message, "does not fit in 64 bits") != NULL, "%s", e.message);
    parse_err("x = 0x8000000000000000\n", NULL, BT_TOML_ESYNTAX);
    e = parse_err("x = 012\n", NULL, BT_TOML_ESYNTAX);
    cr_assert(strstr(e.message, "leading zeros") != NULL, "%s", e.message);
    parse_err("x = 1__0\n", NULL, BT_TOML_ESYNTAX);
    parse_err("x = _1\n", NULL, BT_TOML_ESYNTAX);
    parse_err("x = -0x1\n", NULL, BT_TOML_ESYNTAX);
}

Test(toml, parses_floats_including_inf_and_nan)
{
    bt_toml_doc_t *doc =
        parse_ok("a = 3.14\nb = -1e-3\nc = 6.626e34\nd = inf\ne = -inf\nf = nan\ng = 1_0.0_1\n");
    const bt_toml_value_t *r = bt_toml_doc_root(doc);
    double d;
    bt_toml_get_float(r, "a", &d);
    cr_assert_float_eq(d, 3.14, 1e-12);
    bt_toml_get_float(r, "b", &d);
    cr_assert_float_eq(d, -0.001, 1e-15);
    bt_toml_get_float(r, "d", &d);
    cr_assert(isinf(d) && d > 0);
    bt_toml_get_float(r, "e", &d);
    cr_assert(isinf(d) && d < 0);
    bt_toml_get_float(r, "f", &d);
    cr_assert(isnan(d));
    bt_toml_get_float(r, "g", &d);
    cr_assert_float_eq(d, 10.01, 1e-12);
    bt_toml_doc_destroy(doc);
    parse_err("x = 1.\n", NULL, BT_TOML_ESYNTAX);
    parse_err("x = .5\n", NULL, BT_TOML_ESYNTAX);
    parse_err("x = 1e\n", NULL, BT_TOML_ESYNTAX);
    parse_err("x = 1.5e_3\n", NULL, BT_TOML_ESYNTAX);
}

Test(toml, decodes_string_escapes_and_multiline_forms)
{
    bt_toml_doc_t *doc = parse_ok("a = \"tab\\there \\u00e9 \\U0001F600 \\\"q\\\"\"\n"
                                  "b = 'C:\\path'\n"
                                  "c = \"\"\"\nline1\n  line2 \\\n    joined\"\"\"\n"
                                  "d = '''\nraw \\n ''x'''\n"
                                  "e = \"nul\\u0000inside\"\n");
    const bt_toml_value_t *r = bt_toml_doc_root(doc);
    const char *s;
    size_t n;
    bt_toml_get_string(r, "a", &s);
    cr_assert_str_eq(s, "tab\there \xc3\xa9 \xf0\x9f\x98\x80 \"q\"");
    bt_toml_get_string(r, "b", &s);
    cr_assert_str_eq(s, "C:\\path");
    bt_toml_get_string(r, "c", &s);
    cr_assert_str_eq(s, "line1\n  line2 joined");
    bt_toml_get_string(r, "d", &s);
    cr_assert_str_eq(s, "raw \\n ''x");
    cr_assert_eq(bt_toml_as_string(bt_toml_get(r, "e"), &s, &n), BT_TOML_OK);
    cr_assert_eq(n, 10);
    cr_assert_eq(memcmp(s, "nul\0inside", 11), 0);
    bt_toml_doc_destroy(doc);

    bt_toml_error_t e = parse_err("x = \"bad \\q\"\n", NULL, BT_TOML_ESYNTAX);
    cr_assert_eq(e.line, 1);
    cr_assert_eq(e.column, 10);
    cr_assert(strstr(e.message, "invalid escape") != NULL, "%s", e.message);
    parse_err("x = \"\\uD800\"\n", NULL, BT_TOML_ESYNTAX);
    parse_err("x = \"a\x01\"\n", NULL, BT_TOML_ESYNTAX);
    parse_err("x = \"\xff\"\n", NULL, BT_TOML_ESYNTAX);
}

Test(toml, parses_the_four_datetime_types)
{
    bt_toml_doc_t *doc = parse_ok("a = 1979-05-27T07:32:00Z\n"
                                  "b = 1979-05-27 00:32:00.999999-07:00\n"
                                  "c = 1979-05-27T07:32:00\n"
                                  "d = 1979-05-27\n"
                                  "e = 07:32:00.5\n");
    const bt_toml_value_t *r = bt_toml_doc_root(doc);
    bt_toml_datetime_t dt;
    cr_assert_eq(bt_toml_type(bt_toml_get(r, "a")), BT_TOML_DATETIME);
    cr_assert_eq(bt_toml_type(bt_toml_get(r, "b")), BT_TOML_DATETIME);
    cr_assert_eq(bt_toml_type(bt_toml_get(r, "c")), BT_TOML_DATETIME_LOCAL);
    cr_assert_eq(bt_toml_type(bt_toml_get(r, "d")), BT_TOML_DATE_LOCAL);
    cr_assert_eq(bt_toml_type(bt_toml_get(r, "e")), BT_TOML_TIME_LOCAL);
    cr_assert_eq(bt_toml_as_datetime(bt_toml_get(r, "b"), &dt), BT_TOML_OK);
    cr_assert_eq(dt.year, 1979);
    cr_assert_eq(dt.hour, 0);
    cr_assert_eq(dt.nanosecond, 999999000);
    cr_assert_eq(dt.offset_minutes, -420);
    cr_assert(dt.has_offset);
    cr_assert_str_eq(bt_toml_datetime_text(bt_toml_get(r, "b")),
                     "1979-05-27T00:32:00.999999-07:00");
    cr_assert_str_eq(bt_toml_datetime_text(bt_toml_get(r, "e")), "07:32:00.5");
    cr_assert_null(bt_toml_datetime_text(bt_toml_get(r, "missing")));
    bt_toml_doc_destroy(doc);
    parse_err("x = 1979-02-30\n", NULL, BT_TOML_ESYNTAX);
    parse_err("x = 1979-05-27T25:00:00\n", NULL, BT_TOML_ESYNTAX);
    parse_err("x = 07:32\n", NULL, BT_TOML_ESYNTAX);
    bt_toml_doc_destroy(parse_ok("x = 2000-02-29\n"));
}

Test(toml, builds_arrays_inline_tables_and_arrays_of_tables)
{
    bt_toml_doc_t *doc = parse_ok("ports = [ 80, 443, # comment\n 8080, ]\n"
                                  "mixed = [1, \"two\", [3.0], {x = 4}]\n"
                                  "point = { x = 1, y.z = 2 }\n"
                                  "[[jobs]]\nname = \"a\"\n[jobs.params]\nn = 1\n"
                                  "[[jobs]]\nname = \"b\"\n");
    const bt_toml_value_t *r = bt_toml_doc_root(doc), *a, *jobs, *pt;
    cr_assert_eq(bt_toml_get_array(r, "ports", &a), BT_TOML_OK);
    cr_assert_eq(bt_toml_array_count(a), 3);
    int64_t i;
    bt_toml_as_int(bt_toml_array_at(a, 2), &i);
    cr_assert_eq(i, 8080);
    cr_assert_null(bt_toml_array_at(a, 3));
    cr_assert_eq(bt_toml_get_array(r, "mixed", &a), BT_TOML_OK);
    cr_assert_eq(bt_toml_type(bt_toml_array_at(a, 3)), BT_TOML_TABLE);
    cr_assert_eq(bt_toml_get_table(r, "point", &pt), BT_TOML_OK);
    cr_assert_eq(bt_toml_get_int(bt_toml_get(pt, "y"), "z", &i), BT_TOML_OK);
    cr_assert_eq(i, 2);
    cr_assert_eq(bt_toml_get_array(r, "jobs", &jobs), BT_TOML_OK);
    cr_assert_eq(bt_toml_array_count(jobs), 2);
    const char *name;
    bt_toml_get_string(bt_toml_array_at(jobs, 1), "name", &name);
    cr_assert_str_eq(name, "b");
    cr_assert_eq(bt_toml_get_int(bt_toml_get(bt_toml_array_at(jobs, 0), "params"), "n", &i),
                 BT_TOML_OK);
    bt_toml_doc_destroy(doc);
}

Test(toml, enforces_table_redefinition_rules)
{
    /* allowed */
    bt_toml_doc_destroy(parse_ok("[a.b]\nx = 1\n[a]\ny = 2\n"));
    bt_toml_doc_destroy(parse_ok("[fruit]\napple.color = 'red'\n[fruit.apple.texture]\n"));
    bt_toml_doc_destroy(parse_ok("a.b = 1\na.c = 2\n"));
    /* refused */
    bt_toml_error_t e = parse_err("[a]\n[a]\n", NULL, BT_TOML_ESYNTAX);
    cr_assert(strstr(e.message, "table 'a' is already defined") != NULL, "%s", e.message);
    e = parse_err("port = 1\nport = 2\n", NULL, BT_TOML_ESYNTAX);
    cr_assert_str_eq(e.message, "config.toml:2:1: duplicate key 'port' (first defined at 1:1)");
    parse_err("[fruit]\napple.color = 'red'\n[fruit.apple]\n", NULL, BT_TOML_ESYNTAX);
    parse_err("a = {x = 1}\n[a]\n", NULL, BT_TOML_ESYNTAX);
    parse_err("a = {x = 1}\na.y = 2\n", NULL, BT_TOML_ESYNTAX);
    parse_err("a = [1]\n[[a]]\n", NULL, BT_TOML_ESYNTAX);
    parse_err("[[a]]\n[a]\n", NULL, BT_TOML_ESYNTAX);
    parse_err("[a.b.c]\nz = 9\n[a]\nb.c.t = 1\n", NULL, BT_TOML_ESYNTAX);
    parse_err("a = 1\na.b = 2\n", NULL, BT_TOML_ESYNTAX);
}

Test(toml, errors_give_file_line_column_and_what_was_expected)
{
    bt_toml_error_t e = parse_err("[server]\nport 8080\n", NULL, BT_TOML_ESYNTAX);
    cr_assert_str_eq(e.message, "config.toml:2:6: expected '=' after key 'port', found '8'");
    cr_assert_str_eq(e.detail, "expected '=' after key 'port', found '8'");
    cr_assert_eq(e.line, 2);
    cr_assert_eq(e.column, 6);

    e = parse_err("x = 1 2\n", NULL, BT_TOML_ESYNTAX);
    cr_assert_str_eq(e.message, "config.toml:1:7: expected end of line after value, found '2'");
    e = parse_err("[server\n", NULL, BT_TOML_ESYNTAX);
    cr_assert_str_eq(e.message,
                     "config.toml:1:8: expected ']' to close table header 'server', found end of "
                     "line");
    e = parse_err("x =\n", NULL, BT_TOML_ESYNTAX);
    cr_assert_str_eq(e.message, "config.toml:1:4: expected a value, found end of line");
    e = parse_err("x = [1, 2\n", NULL, BT_TOML_ESYNTAX);
    cr_assert_str_eq(e.message, "config.toml:1:5: unterminated array (expected ']' to close it)");
    e = parse_err("name = bob\n", NULL, BT_TOML_ESYNTAX);
    cr_assert(strstr(e.message, "strings must be quoted") != NULL, "%s", e.message);
    e = parse_err("t = { a = 1\n", NULL, BT_TOML_ESYNTAX);
    cr_assert(strstr(e.message, "expected ',' or '}' in inline table") != NULL, "%s", e.message);
    /* columns count characters, not bytes */
    e = parse_err("\"\xc3\xa9\xc3\xa9\" 1\n", NULL, BT_TOML_ESYNTAX);
    cr_assert_eq(e.column, 6, "column %u", e.column);
    /* no file name */
    bt_toml_doc_t *doc;
    cr_assert_eq(bt_toml_parse("=", 1, NULL, NULL, &doc, &e), BT_TOML_ESYNTAX);
    cr_assert_str_eq(e.message, "<input>:1:1: expected a key, found '='");
    /* a NULL error struct is allowed */
    cr_assert_eq(bt_toml_parse("=", 1, NULL, NULL, &doc, NULL), BT_TOML_ESYNTAX);
    cr_assert_eq(bt_toml_parse("x", 1, NULL, NULL, NULL, &e), BT_TOML_EINVAL);
}

Test(toml, enforces_depth_limit)
{
    char buf[512];
    size_t k = 0;
    k += (size_t)snprintf(buf, sizeof(buf), "x = ");
    for (int i = 0; i < 70; i++)
        buf[k++] = '[';
    for (int i = 0; i < 70; i++)
        buf[k++] = ']';
    buf[k] = '\0';
    bt_toml_error_t e = parse_err(buf, NULL, BT_TOML_ELIMIT);
    cr_assert(strstr(e.message, "nesting deeper than the limit of 64") != NULL, "%s", e.message);

    bt_toml_limits_t lim = {.max_depth = 3};
    bt_toml_doc_t *doc;
    /* depth counts containers: a, b and c are three tables, d is a leaf */
    cr_assert_eq(bt_toml_parse("a.b.c.d = 1", 11, NULL, &lim, &doc, &e), BT_TOML_OK, "%s",
                 e.message);
    bt_toml_doc_destroy(doc);
    parse_err("a.b.c.d.e = 1", &lim, BT_TOML_ELIMIT);
    parse_err("[a.b.c.d]", &lim, BT_TOML_ELIMIT);
    parse_err("a = {b = {c = {d = {}}}}", &lim, BT_TOML_ELIMIT);
    parse_err("a = [[[[1]]]]", &lim, BT_TOML_ELIMIT);
}

Test(toml, enforces_size_limits)
{
    bt_toml_limits_t lim = {.max_input = 16};
    bt_toml_error_t e = parse_err("key = \"0123456789\"\n", &lim, BT_TOML_ELIMIT);
    cr_assert_str_eq(e.message, "config.toml: file is 19 bytes, larger than the limit of 16");
    cr_assert_eq(e.line, 0);

    lim = (bt_toml_limits_t){.max_string = 4};
    parse_err("k = \"12345\"\n", &lim, BT_TOML_ELIMIT);
    parse_err("abcde = 1\n", &lim, BT_TOML_ELIMIT);
    bt_toml_doc_t *doc;
    cr_assert_eq(bt_toml_parse("k = \"1234\"", 10, NULL, &lim, &doc, &e), BT_TOML_OK);
    bt_toml_doc_destroy(doc);

    lim = (bt_toml_limits_t){.max_array = 3};
    e = parse_err("a = [1, 2, 3, 4]\n", &lim, BT_TOML_ELIMIT);
    cr_assert(strstr(e.message, "array has more than 3 elements") != NULL, "%s", e.message);
    parse_err("[[t]]\n[[t]]\n[[t]]\n[[t]]\n", &lim, BT_TOML_ELIMIT);

    lim = (bt_toml_limits_t){.max_table = 2};
    e = parse_err("a = 1\nb = 2\nc = 3\n", &lim, BT_TOML_ELIMIT);
    cr_assert_str_eq(e.message, "config.toml:3:1: table has more than 2 keys");

    bt_toml_limits_t def;
    bt_toml_limits_default(&def);
    cr_assert_eq(def.max_depth, 64);
    cr_assert_eq(def.max_input, 1u << 20);
}

Test(toml, big_tables_use_the_hash_index)
{
    size_t cap = 200000, k = 0;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    for (int i = 0; i < 5000; i++)
        k += (size_t)snprintf(buf + k, cap - k, "key%d = %d\n", i, i);
    bt_toml_doc_t *doc = parse_ok(buf);
    const bt_toml_value_t *r = bt_toml_doc_root(doc);
    cr_assert_eq(bt_toml_table_count(r), 5000);
    int64_t v;
    cr_assert_eq(bt_toml_get_int(r, "key4321", &v), BT_TOML_OK);
    cr_assert_eq(v, 4321);
    cr_assert_str_eq(bt_toml_table_key(r, 17, NULL), "key17");
    bt_toml_doc_destroy(doc);
    k += (size_t)snprintf(buf + k, cap - k, "key4999 = 1\n");
    parse_err(buf, NULL, BT_TOML_ESYNTAX);
    free(buf);
}

Test(toml, accepts_empty_input_and_crlf)
{
    bt_toml_doc_t *doc;
    bt_toml_error_t e;
    cr_assert_eq(bt_toml_parse(NULL, 0, NULL, NULL, &doc, &e), BT_TOML_OK);
    cr_assert_eq(bt_toml_table_count(bt_toml_doc_root(doc)), 0);
    bt_toml_doc_destroy(doc);
    bt_toml_doc_destroy(NULL);
    doc = parse_ok("a = 1\r\n# c\r\nb = \"\"\"x\r\ny\"\"\"\r\n");
    const char *s;
    bt_toml_get_string(bt_toml_doc_root(doc), "b", &s);
    cr_assert_str_eq(s, "x\ny");
    bt_toml_doc_destroy(doc);
    parse_err("a = 1\rb = 2\n", NULL, BT_TOML_ESYNTAX);
}
