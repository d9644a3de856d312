#!/usr/bin/env bash
# bench/run.sh: builds baton (Release) and its peers, runs the benchmark
# workloads and writes results/ at the top of the repository:
#   results/bench.md     Markdown tables (baton vs the floor and each peer)
#   results/bench.json   the same figures as JSON
#   results/bench.png    a chart of the medians with min..max bars (gnuplot)
#   results/raw.tsv      every measured value, for re-aggregation
#
#   bench/run.sh [--short|--full] [--build-dir DIR] [--runs N] [--peers LIST]
#                [--cases REGEX] [--no-install]
#
# --full (the default) runs every case on baton, the floor and the peers
# (go, erlang, caf): one unreported warm-up, then N (5) measured runs each.
# --short runs only bench_runtime --short, bench_baseline --short and
# bench_api --short (seconds, small parameters, no peers) and exits non-zero
# if any workload fails or prints no result; it writes to results/short/ so
# that it never overwrites a full run's figures. --peers go,erlang,caf picks peers; --cases
# keeps only the full-mode cases whose name matches the (grep -E) REGEX
# (the HTTP API's cases are named api-*; one bench_api process runs them).
# Missing Debian packages are installed with apt-get (as root, or through
# sudo); --no-install only reports them. See bench/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
mode=full
build="$root/build-bench"
runs=5
peers="go erlang caf"
install=1
only=

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --short) mode=short ;;
    --full) mode=full ;;
    --build-dir) build=$(realpath -m "$2"); shift ;;
    --runs) runs=$2; shift ;;
    --peers) peers=$(echo "$2" | tr ',' ' '); shift ;;
    --cases) only=$2; shift ;;
    --no-install) install=0 ;;
    -h | --help) usage ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage ;;
    esac
    shift
done
case "$runs" in '' | *[!0-9]* | 0) echo "run.sh: --runs takes a positive integer" >&2; exit 2 ;; esac

out="$root/results"
# A quick check must not overwrite the figures of a full run.
[ "$mode" = short ] && out="$root/results/short"
mkdir -p "$out"
log="$out/run.log"
: >"$log"
say() { echo "run.sh: $*" | tee -a "$log" >&2; }

# ------------------------------------------------------------------ packages

have_pkg() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

apt_updated=0
install_pkgs() { # installs what is missing of "$@"; returns non-zero if any still is
    local missing=() p
    for p in "$@"; do have_pkg "$p" || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$install" -eq 0 ]; then
        say "missing packages (not installing: --no-install): ${missing[*]}"
        return 1
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null; then sudo=(sudo); else
            say "missing packages and not root: ${missing[*]}"
            return 1
        fi
    fi
    say "installing: ${missing[*]}"
    if [ $apt_updated -eq 0 ]; then
        "${sudo[@]}" apt-get update >>"$log" 2>&1 || say "apt-get update failed (see $log)"
        apt_updated=1
    fi
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y \
        --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
        say "apt-get install failed for: ${missing[*]} (see $log)"
        return 1
    fi
}

# The service's libraries too: bench_api measures the real `baton` binary.
build_pkgs=(cmake make gcc pkg-config libck-dev libjemalloc-dev
    libmicrohttpd-dev libcjson-dev libsqlite3-dev libcurl4-openssl-dev)
install_pkgs "${build_pkgs[@]}" || { say "cannot get the build dependencies"; exit 1; }

# Peer name -> packages it needs; a peer whose packages fail is skipped.
declare -A peer_pkgs=([go]="golang-go" [erlang]="erlang-base" [caf]="libcaf-dev g++")
active_peers=()
skipped=()
if [ "$mode" = full ]; then
    for p in $peers; do
        if [ -z "${peer_pkgs[$p]+x}" ]; then
            say "unknown peer '$p' (known: go erlang caf)"
            exit 2
        fi
        # shellcheck disable=SC2086
        if install_pkgs ${peer_pkgs[$p]}; then active_peers+=("$p"); else skipped+=("$p: packages ${peer_pkgs[$p]} unavailable"); fi
    done
    install_pkgs gnuplot-nox || skipped+=("chart: gnuplot-nox unavailable")
    # wrk cross-checks bench_api's own generator on the API's GET cases.
    install_pkgs wrk || skipped+=("wrk cross-check: wrk unavailable")
fi

# --------------------------------------------------------------------- build

peers_on=OFF
[ ${#active_peers[@]} -gt 0 ] && peers_on=ON
say "configuring $build (Release, peers $peers_on)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBATON_SANITIZE= \
    -DBATON_BENCH=ON -DBATON_TESTS=OFF -DBATON_BENCH_PEERS=$peers_on >>"$log" 2>&1 ||
    { say "cmake configure failed (see $log)"; exit 1; }
targets=(bench_runtime bench_baseline bench_timer bench_api)
for p in "${active_peers[@]}"; do
    case $p in go) targets+=(bench_go) ;; erlang) targets+=(bench_erl) ;; caf) targets+=(bench_caf) ;; esac
done
say "building: ${targets[*]}"
if ! cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >>"$log" 2>&1; then
    # Build the C side alone, so a broken peer toolchain does not stop the run.
    say "build of the peers failed (see $log); retrying without them"
    cmake --build "$build" -j"$(nproc)" --target bench_runtime bench_baseline bench_api >>"$log" 2>&1 ||
        { say "build failed (see $log)"; exit 1; }
fi

bin="$build/bench"
bench_runtime="$bin/bench_runtime"
bench_baseline="$bin/bench_baseline"
bench_api="$bin/bench_api"
go_bin="$bin/peers/bench_go"
caf_bin="$bin/peers/bench_caf"
beam_dir="$bin/peers"

# ------------------------------------------------------------------ the cases

# case | workload | args | metric | better | target (- for none) | what
# (read splits on tabs, which it treats as whitespace: no field may be empty)
cases_file="$out/cases.tsv"
cat >"$cases_file" <<'EOF'
pingpong-40k	pingpong	40000	ns_per_msg	lower	60	ping-pong, 40,000 round trips
pingpong-1m	pingpong	1000000	ns_per_msg	lower	60	ping-pong, 1e6 round trips
counting-1m	counting	1000000	ns_per_msg	lower	-	counting, 1e6 messages
fanin-2p	fanin	2 10000000	mmsg_per_s	higher	30	fan-in, 2 producers, 1e7 messages
fanin-4p	fanin	4 10000000	mmsg_per_s	higher	30	fan-in, 4 producers, 1e7 messages
forkjoin-60x10k	forkjoin	60 10000	ns_per_msg	lower	-	fork-join throughput, 60 actors x 10,000
fjcreate-40k	fjcreate	40000	ns_per_actor	lower	-	fork-join creation, 40,000 actors
fjcreate-1m	fjcreate	1000000	ns_per_actor	lower	-	fork-join creation, 1e6 actors
spawn-1m	spawn	1000000	ns_per_actor	lower	200	spawn 1e6 idle actors
ring-503x10m	ring	503 10000000	ns_per_hop	lower	-	thread ring, 503 actors, 1e7 hops
ring-100x100k	ring	100 100000	ns_per_hop	lower	-	thread ring, 100 actors, 100,000 hops
chameneos-100x200k	chameneos	100 200000	ns_per_meeting	lower	-	chameneos, 100 creatures, 200,000 meetings
big-120x20k	big	120 20000	ns_per_msg	lower	-	big, 120 actors x 20,000 pings
idle-bytes-1m	idle_bytes	1000000	bytes_per_actor	lower	256	bytes per idle actor (RSS delta, 1e6 actors)
idle-cpu-1k	idle_cpu	1000 2000	cpu_percent	lower	0.5	idle CPU, 1000 idle actors, 2 s
ask-20k	ask	20000	ns_per_roundtrip	lower	10000	blocking ask from a non-actor thread, 20,000 round trips
api-get-rps	get_run	64	req_per_s	higher	-	GET /v1/runs/{id} (a store read), 64 keep-alive clients, 5 s: requests/s
api-get-p50	get_run	64	p50_us	lower	-	GET /v1/runs/{id}, 64 clients: median latency
api-get-p99	get_run	64	p99_us	lower	-	GET /v1/runs/{id}, 64 clients: 99th percentile latency
api-healthz-rps	healthz	64	req_per_s	higher	-	GET /healthz (HTTP layer only, no actor), 64 keep-alive clients, 5 s: requests/s
api-healthz-p50	healthz	64	p50_us	lower	-	GET /healthz, 64 clients: median latency
api-healthz-p99	healthz	64	p99_us	lower	-	GET /healthz, 64 clients: 99th percentile latency
api-startstop-cps	startstop	64	cycles_per_s	higher	-	POST start + POST stop cycles, 64 clients each on its own exec job (/bin/sleep 600): cycles/s
api-start-p50	startstop	64	start_p50_us	lower	-	start of an exec run (fork+exec, durable write), 64 clients: median latency
api-start-p99	startstop	64	start_p99_us	lower	-	start of an exec run, 64 clients: 99th percentile latency
api-stop-p50	startstop	64	stop_p50_us	lower	-	stop of an exec run (SIGTERM, reap, durable write), 64 clients: median latency
api-stop-p99	startstop	64	stop_p99_us	lower	-	stop of an exec run, 64 clients: 99th percentile latency
api-get-wrk-rps	wrk_get_run	64	req_per_s	higher	-	GET /v1/runs/{id} measured by wrk (cross-check), 64 connections: requests/s
api-get-wrk-p50	wrk_get_run	64	p50_us	lower	-	GET /v1/runs/{id} measured by wrk: median latency
api-get-wrk-p99	wrk_get_run	64	p99_us	lower	-	GET /v1/runs/{id} measured by wrk: 99th percentile latency
api-healthz-wrk-rps	wrk_healthz	64	req_per_s	higher	-	GET /healthz measured by wrk (cross-check), 64 connections: requests/s
api-healthz-wrk-p50	wrk_healthz	64	p50_us	lower	-	GET /healthz measured by wrk: median latency
api-healthz-wrk-p99	wrk_healthz	64	p99_us	lower	-	GET /healthz measured by wrk: 99th percentile latency
EOF
if [ "$mode" = short ]; then
    # The small parameters compiled into the programs' --short mode.
    cat >"$cases_file" <<'EOF'
pingpong	pingpong	20000	ns_per_msg	lower	60	ping-pong, 20,000 round trips
counting	counting	100000	ns_per_msg	lower	-	counting, 100,000 messages
fanin	fanin	4 200000	mmsg_per_s	higher	30	fan-in, 4 producers, 200,000 messages
forkjoin	forkjoin	20 1000	ns_per_msg	lower	-	fork-join throughput, 20 actors x 1,000
fjcreate	fjcreate	20000	ns_per_actor	lower	-	fork-join creation, 20,000 actors
spawn	spawn	20000	ns_per_actor	lower	200	spawn 20,000 idle actors
ring	ring	100 100000	ns_per_hop	lower	-	thread ring, 100 actors, 100,000 hops
chameneos	chameneos	20 5000	ns_per_meeting	lower	-	chameneos, 20 creatures, 5,000 meetings
big	big	20 500	ns_per_msg	lower	-	big, 20 actors x 500 pings
idle_bytes	idle_bytes	20000	bytes_per_actor	lower	256	bytes per idle actor (20,000 actors)
idle_cpu	idle_cpu	1000 300	cpu_percent	lower	0.5	idle CPU, 1000 idle actors, 0.3 s
ask	ask	2000	ns_per_roundtrip	lower	10000	blocking ask from a non-actor thread, 2,000 round trips
api-get-rps	get_run	64	req_per_s	higher	-	GET /v1/runs/{id}, 64 clients, 0.5 s: requests/s
api-get-p99	get_run	64	p99_us	lower	-	GET /v1/runs/{id}, 64 clients: 99th percentile latency
api-healthz-rps	healthz	64	req_per_s	higher	-	GET /healthz, 64 clients, 0.5 s: requests/s
api-healthz-p99	healthz	64	p99_us	lower	-	GET /healthz, 64 clients: 99th percentile latency
api-startstop-cps	startstop	8	cycles_per_s	higher	-	start + stop cycles, 8 clients (one per HTTP thread), 3 s: cycles/s
EOF
fi

raw="$out/raw.tsv"
: >"$raw"
failures=()

# run_one CASE IMPL FRESH CMD...: runs CMD, appends its RESULT values and
# PEAK to raw.tsv under CASE/IMPL. FRESH=1: memory/CPU workloads, measured
# in a new process per run (warm-up process discarded).
run_one() {
    local case=$1 impl=$2 fresh=$3
    shift 3
    local limit=900 tmp
    tmp=$(mktemp)
    local procs=1 p
    [ "$fresh" = 1 ] && procs=$((runs + 1))
    for ((p = 0; p < procs; p++)); do
        local cmd=("$@")
        if [ "$fresh" = 1 ]; then
            cmd=("${cmd[@]/__WARM__/0}")
            cmd=("${cmd[@]/__RUNS__/1}")
        else
            cmd=("${cmd[@]/__WARM__/1}")
            cmd=("${cmd[@]/__RUNS__/$runs}")
        fi
        echo "+ ${cmd[*]}" >>"$log"
        if ! timeout "$limit" "${cmd[@]}" </dev/null >"$tmp" 2>>"$log"; then
            cat "$tmp" >>"$log"
            say "FAILED: $case on $impl (exit status or timeout, see $log)"
            failures+=("$case/$impl")
            printf 'F\t%s\t%s\tfailed\n' "$case" "$impl" >>"$raw"
            rm -f "$tmp"
            return 0
        fi
        cat "$tmp" >>"$log"
        if [ "$fresh" = 1 ] && [ "$p" -eq 0 ]; then continue; fi # warm-up process
        awk -v c="$case" -v i="$impl" -F'[ =]' '
            $1 == "RESULT" { for (k = 2; k < NF; k += 2) if ($k == "value") v = $(k + 1); print "R\t" c "\t" i "\t" v; n++ }
            $1 == "PEAK" { for (k = 2; k < NF; k += 2) if ($k == "rss_kb") v = $(k + 1); print "P\t" c "\t" i "\t" v }
            END { if (n == 0) exit 1 }' "$tmp" >>"$raw" || {
            say "FAILED: $case on $impl printed no result"
            failures+=("$case/$impl")
            printf 'F\t%s\t%s\tno result\n' "$case" "$impl" >>"$raw"
        }
    done
    rm -f "$tmp"
}

# run_api: the HTTP API's cases (api-* in the case list, bench/service/).
# One bench_api process starts `baton serve` and bare_mhd once and measures
# every workload the remaining api-* cases name, both servers alternately,
# --runs rounds (--short: one brief round); each RESULT line is filed
# under the case of its workload and metric. Returns non-zero if bench_api
# failed or a case got no value.
run_api() {
    local workloads tmp rc=0 missing
    workloads=$(awk -F'\t' '$1 ~ /^api-/ && !seen[$2]++ { printf "%s ", $2 }' "$cases_file")
    [ -n "$workloads" ] || return 0
    if ! command -v wrk >/dev/null; then
        case " $workloads" in *" wrk_"*)
            say "wrk not installed: no wrk cross-check"
            awk -F'\t' '$2 !~ /^wrk_/' "$cases_file" >"$cases_file.tmp"
            mv "$cases_file.tmp" "$cases_file"
            workloads=$(echo "$workloads" | tr ' ' '\n' | grep -v '^wrk_' | tr '\n' ' ')
            ;;
        esac
    fi
    local cmd=("$bench_api")
    if [ "$mode" = short ]; then cmd+=(--short); else cmd+=(--runs "$runs"); fi
    # shellcheck disable=SC2206
    cmd+=($workloads)
    tmp=$(mktemp)
    echo "+ ${cmd[*]}" >>"$log"
    say "api: ${workloads}on baton and bare_mhd (bench_api)"
    # Its progress lines (stderr) go to the terminal and the log.
    timeout 1800 "${cmd[@]}" </dev/null >"$tmp" 2> >(tee -a "$log" >&2) || rc=$?
    cat "$tmp" >>"$log"
    awk -F'\t' -v OFS='\t' '
        FNR == NR { if ($1 ~ /^api-/) { c[$2 SUBSEP $4] = $1; w[$1] = $2 } next }
        { split("", f); for (k = 2; k <= NF; k++) { split($k, kv, "="); f[kv[1]] = kv[2] } }
        $1 == "RESULT" && ((f["workload"], f["metric"]) in c) { print "R", c[f["workload"], f["metric"]], f["impl"], f["value"] }
        $1 == "PEAK" { for (k in w) if (w[k] == f["workload"]) print "P", k, f["impl"], f["rss_kb"] }
    ' "$cases_file" FS=' ' "$tmp" >>"$raw"
    rm -f "$tmp"
    missing=$(awk -F'\t' 'FNR == NR { if ($1 == "R" && $3 == "baton") got[$2] = 1; next }
        $1 ~ /^api-/ && !($1 in got) { print "F\t" $1 "\tbaton\tfailed" }' "$raw" "$cases_file")
    if [ $rc -ne 0 ] || [ -n "$missing" ]; then
        say "FAILED: bench_api (exit status $rc; see $log)"
        failures+=("api/baton")
        [ -z "$missing" ] || echo "$missing" >>"$raw"
        return 1
    fi
}

short_mode() {
    local ok=0 tmp
    tmp=$(mktemp)
    for prog in "$bench_runtime" "$bench_baseline"; do
        echo "+ $prog --short" >>"$log"
        if ! timeout 300 "$prog" --short </dev/null >"$tmp" 2>>"$log"; then
            say "FAILED: $(basename "$prog") --short"
            ok=1
            failures+=("$(basename "$prog")")
        fi
        cat "$tmp" >>"$log"
        cat "$tmp" >&2
        awk -F'[ =]' '$1 == "RESULT" {
                for (k = 2; k < NF; k += 2) f[$k] = $(k + 1)
                impl = f["impl"]; c = f["workload"]
                if (impl == "baseline") {
                    if (c == "hop_ring") { impl = "floor-ring"; c = "pingpong" }
                    else if (c == "hop_mpsc") { impl = "floor-mpsc"; c = "pingpong" }
                    else if (c == "hop1") { impl = "floor-1t"; c = "pingpong" }
                    else impl = "floor-mpsc"
                }
                print "R\t" c "\t" impl "\t" f["value"] }' "$tmp" >>"$raw"
    done
    rm -f "$tmp"
    return $ok
}

machine_info() {
    local cpu
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    printf 'date\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf 'commit\t%s\n' "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
    printf 'cpu\t%s, %s online\n' "$cpu" "$(nproc)"
    printf 'kernel\t%s\n' "$(uname -sr)"
    printf 'compiler\t%s\n' "$(${CC:-cc} --version | head -1)"
    printf 'load_at_start\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
    if [ "$mode" = full ]; then
        command -v go >/dev/null && printf 'go\t%s\n' "$(go version | cut -d' ' -f3)"
        command -v erl >/dev/null && printf 'erlang\tOTP %s\n' "$(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().')"
        have_pkg libcaf-dev && printf 'caf\t%s\n' "$(dpkg-query -W -f='${Version}' libcaf-dev)"
        have_pkg wrk && printf 'wrk\t%s\n' "$(dpkg-query -W -f='${Version}' wrk)"
    fi
    if [ "$mode" = full ]; then printf 'mode\tfull: 1 warm-up, then %s measured runs per figure\n' "$runs"; else printf 'mode\tshort: one run per workload, small parameters, no warm-up\n'; fi
}
machine_info >"$out/machine.tsv"

# --------------------------------------------------------------------- run

status=0
if [ "$mode" = short ]; then
    short_mode || status=1
    run_api || status=1
else
    start=$(date +%s)
    if [ -n "$only" ]; then
        awk -F'\t' -v re="$only" '$1 ~ re' "$cases_file" >"$cases_file.tmp"
        mv "$cases_file.tmp" "$cases_file"
    fi
    while IFS=$'\t' read -r case workload args metric better target what; do
        case $case in api-*) continue ;; esac # run_api below runs them all at once
        fresh=0
        case $workload in idle_bytes | idle_cpu) fresh=1 ;; esac
        # shellcheck disable=SC2206
        argv=($args)
        say "$case: $what"
        run_one "$case" baton $fresh "$bench_runtime" --warmup __WARM__ --runs __RUNS__ "$workload" "${argv[@]}"
        case $workload in
        pingpong)
            run_one "$case" floor-ring 0 "$bench_baseline" --warmup __WARM__ --runs __RUNS__ hop_ring "${argv[@]}"
            run_one "$case" floor-mpsc 0 "$bench_baseline" --warmup __WARM__ --runs __RUNS__ hop_mpsc "${argv[@]}"
            run_one "$case" floor-1t 0 "$bench_baseline" --warmup __WARM__ --runs __RUNS__ hop1 "$((2 * argv[0]))"
            ;;
        fanin)
            run_one "$case" floor-mpsc 0 "$bench_baseline" --warmup __WARM__ --runs __RUNS__ fanin "${argv[@]}"
            ;;
        esac
        for p in "${active_peers[@]}"; do
            case $p in
            go) [ -x "$go_bin" ] && run_one "$case" go $fresh "$go_bin" --warmup __WARM__ --runs __RUNS__ "$workload" "${argv[@]}" ;;
            caf) [ -x "$caf_bin" ] && run_one "$case" caf $fresh "$caf_bin" --warmup __WARM__ --runs __RUNS__ "$workload" "${argv[@]}" ;;
            erlang)
                # +P: the default limit of 262,144 processes is below the
                # workloads' 1e6 actors; no other emulator flag is changed.
                [ -f "$beam_dir/bench_erl.beam" ] && run_one "$case" erlang $fresh erl +P 4000000 -noshell \
                    -pa "$beam_dir" -s bench_erl main -extra --warmup __WARM__ --runs __RUNS__ "$workload" "${argv[@]}"
                ;;
            esac
        done
    done <"$cases_file"
    run_api || true # a failure is in failures[] and sets the exit status below
    say "workloads done in $(($(date +%s) - start)) s"
    for f in "${failures[@]}"; do
        case $f in */baton | */floor-*) status=1 ;; esac
    done
fi
printf 'load_at_end\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.tsv"
for s in "${skipped[@]}"; do printf 'skipped\t%s\n' "$s" >>"$out/machine.tsv"; done

# --------------------------------------------------------------- aggregate

agg="$here/tools/aggregate.awk"
awk -F'\t' -v out=md -f "$agg" "$out/machine.tsv" "$cases_file" "$raw" >"$out/bench.md"
awk -F'\t' -v out=json -f "$agg" "$out/machine.tsv" "$cases_file" "$raw" >"$out/bench.json"
rm -rf "$out/chart-data"
mkdir -p "$out/chart-data"
awk -F'\t' -v out=dat -v dir="$out/chart-data" -f "$agg" "$out/machine.tsv" "$cases_file" "$raw"
if command -v gnuplot >/dev/null; then
    (cd "$out/chart-data" && gnuplot -e "outfile='$out/bench.png'" "$here/tools/chart.gp") 2>>"$log" ||
        say "gnuplot failed (see $log)"
else
    say "gnuplot not found: no chart"
fi
# The timing wheel against an indexed binary heap: its own program, which
# times both side by side (median of 5 after a warm-up) and prints ratios.
bench_timer="$bin/timer/bench_timer"
if [ -x "$bench_timer" ]; then
    timer_args=()
    [ "$mode" = short ] && timer_args=(--short)
    if "$bench_timer" "${timer_args[@]}" >"$out/timer.txt" 2>>"$log"; then
        {
            echo
            echo "## Timers: hierarchical wheel against a binary heap"
            echo
            echo "| workload | live timers | wheel ns/op | heap ns/op | heap / wheel |"
            echo "|---|---:|---:|---:|---:|"
            awk '/^RESULT/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
                             v[f["workload"] " " f["live"] " " f["impl"]] = f["value"]; k[f["workload"] " " f["live"]] = 1 }
                 /^RATIO/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
                            printf "| %s | %s | %s | %s | %s |\n", f["workload"], f["live"],
                                   v[f["workload"] " " f["live"] " wheel"], v[f["workload"] " " f["live"] " heap"],
                                   f["heap_over_wheel"] }' "$out/timer.txt"
        } >>"$out/bench.md"
    else
        say "FAILED: bench_timer (see $log)"
        status=1
    fi
fi
cat "$out/bench.md"
say "wrote $out/bench.md, bench.json, bench.png, raw.tsv"
if [ "$mode" = short ]; then
    # Every workload of both programs must have produced a value.
    expected=$(($("$bench_runtime" --list | wc -l) + $("$bench_baseline" --list | wc -l)))
    got=$(awk -F'\t' '$1 == "R" && $2 !~ /^api-/' "$raw" | wc -l) # run_api checks its own
    if [ "$got" -lt "$expected" ]; then
        say "only $got of $expected short workloads produced a result"
        status=1
    fi
fi
[ ${#failures[@]} -eq 0 ] || say "failures: ${failures[*]}"
exit $status
