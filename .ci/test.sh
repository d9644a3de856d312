#!/usr/bin/env bash
# The README's test command: installs what is missing, then builds and runs
# every test suite three ways:
#   build/       release build with jemalloc, warnings as errors: all tests,
#                the examples and the bench harness in short mode;
#   build-asan/  ASan+UBSan with the system allocator: the same tests, with
#                any sanitizer report (leaks included) failing the test;
#   build-tsan/  ThreadSanitizer (clang): the concurrency stress tests and
#                examples, which are plain executables (Criterion cannot
#                run under TSan).
# Options: --long also runs the long stress/soak tests (label "long").
set -euo pipefail
cd "$(dirname "$0")/.."

long=0
for a in "$@"; do
  case "$a" in
    --long) long=1 ;;
    *) echo "usage: $0 [--long]" >&2; exit 2 ;;
  esac
done

bash .ci/deps.sh

jobs=$(nproc)
ctest_args=(--output-on-failure --timeout 900 -j "$jobs")
[ "$long" = 1 ] || ctest_args+=(-LE long)

build() { # dir, cmake args...
  local dir=$1; shift
  cmake -S . -B "$dir" -DBATON_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

echo "== release build (jemalloc)"
build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
(cd build && ctest "${ctest_args[@]}")

echo "== ASan+UBSan build (system allocator)"
build build-asan -DCMAKE_BUILD_TYPE=Debug -DBATON_SANITIZE=address
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest "${ctest_args[@]}")

echo "== TSan build (clang)"
build build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBATON_SANITIZE=thread \
  -DCMAKE_C_COMPILER=clang
(cd build-tsan && ctest "${ctest_args[@]}" -L tsan)
