#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (-fsanitize=fuzzer,address,undefined)
# and runs each for a while over a copy of its seed corpus, then prints one
# line per target: executions, crashes, seconds.
#
#   tests/fuzz/run_fuzzers.sh [-t SECONDS] [-j PARALLEL] [-b BUILD_DIR] [TARGET...]
#
#   -t SECONDS   time per target (default 600)
#   -j PARALLEL  targets run at once (default 1)
#   -b DIR       build directory (default build-fuzz)
#   TARGET       toml, api_body, api_route (default: all three)
#
# Crash inputs and logs are kept in DIR/fuzz-out/TARGET/ (crash-*, leak-*,
# timeout-*, oom-*, and fuzz.log); the grown corpus is in
# DIR/fuzz-out/TARGET/corpus (the committed corpus is never written). Add a
# crash input to tests/app/fuzz/corpus*/ once its bug is fixed, so the test
# command replays it. Exits 1 if any target found a crash.
set -euo pipefail

secs=600
par=1
build=build-fuzz
while getopts "t:j:b:h" o; do
  case $o in
    t) secs=$OPTARG ;;
    j) par=$OPTARG ;;
    b) build=$OPTARG ;;
    *) sed -n '2,18p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(toml api_body api_route)

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

corpus_of() {
  case $1 in
    toml) echo tests/app/fuzz/corpus ;;
    api_body) echo tests/app/fuzz/corpus_api_body ;;
    api_route) echo tests/app/fuzz/corpus_api_route ;;
    *) echo "run_fuzzers: unknown target '$1'" >&2; exit 2 ;;
  esac
}
for t in "${targets[@]}"; do corpus_of "$t" >/dev/null; done

# The whole tree gets coverage instrumentation (fuzzer-no-link); only the
# fuzz executables link libFuzzer's driver. ASan+UBSan come from
# BATON_SANITIZE=address (which also selects the system allocator).
echo "== building in $build"
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBATON_SANITIZE=address -DBATON_FUZZERS=ON -DBATON_BENCH=OFF \
  -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link" >/dev/null
cmake --build "$build" -j "$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}") >/dev/null

run_one() { # target
  local t=$1 out="$build/fuzz-out/$1"
  rm -rf "$out"
  mkdir -p "$out/corpus"
  cp -r "$(corpus_of "$t")"/. "$out/corpus/"
  local bin
  bin=$(find "$build" -type f -name "fuzz_$t" -perm -u+x | head -n 1)
  # The API targets keep a live service across inputs (runs, caches), so
  # an input often ends with more mallocs than frees and libFuzzer's
  # per-input leak check would run LSan after nearly every input (40x
  # slower). They free everything at exit instead, where LSan
  # (ASAN_OPTIONS=detect_leaks=1) still checks the whole run.
  local leaks=1
  [ "$t" = toml ] || leaks=0
  local t0=$SECONDS
  (cd "$out" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     "$root/$bin" -max_total_time="$secs" -max_len=4096 -timeout=30 -rss_limit_mb=4096 \
     -detect_leaks=$leaks -print_final_stats=1 -artifact_prefix="$root/$out/" \
     corpus >fuzz.log 2>&1) || true
  local secs_run=$((SECONDS - t0))
  local execs crashes
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/fuzz.log" | tail -n 1 |
            grep -o '[0-9]*$' || true)
  [ -n "$execs" ] || execs=$(grep -o '^#[0-9]*' "$out/fuzz.log" | tail -n 1 | tr -d '#' || true)
  crashes=$(find "$out" -maxdepth 1 -name 'crash-*' -o -maxdepth 1 -name 'leak-*' \
              -o -maxdepth 1 -name 'oom-*' -o -maxdepth 1 -name 'timeout-*' | wc -l)
  echo "$t: ${execs:-0} executions, $crashes crashes, $secs_run seconds" | tee "$out/summary"
}

echo "== fuzzing ${targets[*]} for $secs s each ($par at once)"
pids=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  while [ "$(jobs -rp | wc -l)" -ge "$par" ]; do sleep 1; done
done
wait "${pids[@]}" || true

found=0
for t in "${targets[@]}"; do
  s=$(cat "$build/fuzz-out/$t/summary")
  case $s in *", 0 crashes,"*) ;; *) found=1 ;; esac
done
exit $found
