/*
 * fuzz_toml.c: a libFuzzer target for the TOML parser.
 *
 * Not built by CMake (it needs clang's -fsanitize=fuzzer). Run it with:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iapp \
 *       tests/app/fuzz/fuzz_toml.c app/config/toml.c -o /tmp/fuzz_toml
 *   /tmp/fuzz_toml -max_total_time=120 -max_len=4096 tests/app/fuzz/corpus
 * Odd-length inputs run with tight limits so the limit paths are fuzzed too;
 * a successful parse is walked completely through the public accessors.
 */
#include "config/toml.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t walk(const bt_toml_value_t *v)
{
    size_t n = 1;
    for (size_t i = 0; i < bt_toml_table_count(v); i++)
        n += walk(bt_toml_table_value(v, i));
    for (size_t i = 0; i < bt_toml_array_count(v); i++)
        n += walk(bt_toml_array_at(v, i));
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bt_toml_limits_t tight = {.max_depth = 4, .max_string = 16, .max_array = 4, .max_table = 4};
    bt_toml_doc_t *doc;
    bt_toml_error_t err;
    if (bt_toml_parse((const char *)data, size, "fuzz.toml", (size & 1) ? &tight : NULL, &doc,
                      &err) == BT_TOML_OK) {
        walk(bt_toml_doc_root(doc));
        bt_toml_doc_destroy(doc);
    }
    return 0;
}
