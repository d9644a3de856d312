#!/bin/sh
# Usage: check_symbols.sh LIBRARY.so HEADER_DIR
# Fails when the shared library exports a symbol the public headers do not
# declare with BT_API, or when a declared function is not exported.
set -eu
lib=$1
hdrdir=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# Allowed set, derived from the headers: every `BT_API ... name(`
# declaration (the #define of BT_API itself is skipped).
cat "$hdrdir"/*.h | grep -v '^[[:space:]]*#' | grep 'BT_API' |
  sed -n 's/^[^(]*[^A-Za-z0-9_(]\([A-Za-z_][A-Za-z0-9_]*\)[[:space:]]*(.*/\1/p' |
  sort -u > "$tmp/allowed"
if [ ! -s "$tmp/allowed" ]; then
  echo "no BT_API declarations found in $hdrdir" >&2
  exit 1
fi

# Deliberate exceptions, allowed but not required:
#   malloc_conf  jemalloc's tuning hook (runtime/mem/alloc.c, weak, declared
#                with default visibility by <jemalloc/jemalloc.h>); it must
#                stay exported so libjemalloc.so sees it. Absent in builds
#                with BT_SYSTEM_ALLOCATOR.
extra_allowed="malloc_conf"
for sym in $extra_allowed; do echo "$sym"; done >> "$tmp/allowed_extra"

# Exported (defined, dynamic) symbols; symbol versions like @@VER stripped.
nm -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' |
  sort -u > "$tmp/exported"

status=0
sort -u "$tmp/allowed" "$tmp/allowed_extra" > "$tmp/allowed_all"
unexpected=$(comm -13 "$tmp/allowed_all" "$tmp/exported")
if [ -n "$unexpected" ]; then
  echo "unexpected exported symbols in $lib:" >&2
  echo "$unexpected" | sed 's/^/  /' >&2
  status=1
fi
missing=$(comm -23 "$tmp/allowed" "$tmp/exported")
if [ -n "$missing" ]; then
  echo "declared with BT_API but not exported by $lib:" >&2
  echo "$missing" | sed 's/^/  /' >&2
  status=1
fi
echo "$(wc -l < "$tmp/exported") exported symbols, $(wc -l < "$tmp/allowed") declared"
exit $status
