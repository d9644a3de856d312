#!/bin/sh
# Usage: test_completion.sh COMPLETION_SCRIPT CONFIG_TOML
#
# Loads app/completion/baton.bash in a bash without bash-completion and
# calls _baton as bash would (COMP_WORDS/COMP_CWORD), checking subcommands,
# options, option values, job names read from CONFIG_TOML (the top-level
# example config) and run ids. For the run ids a stub `baton` first on
# PATH answers `baton runs --json ...` with canned JSON and records its
# arguments, so the test needs no running service.
set -eu
script=$1
config=$2
command -v bash > /dev/null 2>&1 || { echo "bash not found: skipped"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/baton-compl.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir "$tmp/bin" "$tmp/cwd"
cat > "$tmp/bin/baton" <<STUB
#!/bin/sh
echo "\$*" >> "$tmp/args.log"
# A page as the API returns it; the params and last_error hold decoys that
# must not be taken for run ids.
echo '{"runs": [{"id": "0195f3c2-0000-7000-8000-000000000010", "job": "a", "params": {"id": "0195f3c2-0000-7000-8000-0000000000aa"}, "last_error": "x \\"id\\": \\"0195f3c2-0000-7000-8000-0000000000bb\\""}, {"id":"0195f3c2-0000-7000-8000-000000000011","job":"b"}], "next": null}'
STUB
chmod +x "$tmp/bin/baton"
cp "$config" "$tmp/cwd/config.toml"
# The job names the example config defines, as the completion should find.
jobs=$(sed -n 's/^\[jobs\.\([A-Za-z0-9_-]*\)\]$/\1/p' "$config" | sort | tr '\n' ' ' | sed 's/ $//')
[ -n "$jobs" ] || { echo "FAIL: no [jobs.NAME] in $config" >&2; exit 1; }

fails=0
# expect "WANTED" WORD... : completes the last word; compares the sorted
# replies.
expect() {
  want=$1
  shift
  got=$(cd "$tmp/cwd" && PATH="$tmp/bin:$PATH" BATON_CONFIG='' bash --norc --noprofile -c '
    set -u
    source "$0" || exit 99
    COMP_WORDS=("$@")
    COMP_CWORD=$(($# - 1))
    _baton
    printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " " | sed "s/ \$//"
  ' "$script" "$@" 2>"$tmp/err.txt") || { echo "FAIL: bash exited $? for: $*" >&2; cat "$tmp/err.txt" >&2; fails=$((fails + 1)); return 0; }
  if [ -s "$tmp/err.txt" ]; then
    echo "FAIL: stderr for '$*':" >&2; cat "$tmp/err.txt" >&2; fails=$((fails + 1))
  elif [ "$got" != "$want" ]; then
    echo "FAIL: '$*' completes to [$got], want [$want]" >&2; fails=$((fails + 1))
  else
    echo "ok: '$*' -> [$got]"
  fi
}

# The script loads and registers itself.
bash --norc --noprofile -c 'source "$0" && complete -p baton' "$script" | grep -q '_baton' ||
  { echo "FAIL: $script does not register _baton for baton" >&2; exit 1; }

expect "start status stop" baton st
expect "check-config" baton ch
expect "check-config events help pause resume runs serve start status stop watch" baton ""
expect "--help --version" baton --
expect "--config" baton serve --c
expect "--config --help --log-level" baton serve --
expect "debug error info warn" baton serve --log-level ""
expect "--idempotency-key" baton start --id
expect "--param --param-json" baton start --param
expect "--all" baton runs --a
expect "running" baton runs --state ru
expect "paused,completed" baton runs --state paused,c
expect "$jobs" baton start ""
expect "$jobs" baton runs --job ""
expect "$jobs" baton start --json ""
expect "" baton start "$(echo "$jobs" | cut -d' ' -f1)" ""
expect "watch" baton help wa
expect "0195f3c2-0000-7000-8000-000000000010 0195f3c2-0000-7000-8000-000000000011" baton stop ""
expect "0195f3c2-0000-7000-8000-000000000011" baton watch 0195f3c2-0000-7000-8000-000000000011
expect "0195f3c2-0000-7000-8000-000000000010 0195f3c2-0000-7000-8000-000000000011" baton resume --url = http://127.0.0.1:9 ""
expect "" baton pause 0195f3c2-0000-7000-8000-000000000010 ""

# What the completion asked the service (the stub's arguments).
grep -qx 'runs --json --all --state pending,running,paused --timeout 2' "$tmp/args.log" ||
  { echo "FAIL: stop did not ask for the active runs:" >&2; cat "$tmp/args.log" >&2; fails=$((fails + 1)); }
grep -qx 'runs --json --all --state paused --timeout 2 --url http://127.0.0.1:9' "$tmp/args.log" ||
  { echo "FAIL: resume did not ask for paused runs at --url:" >&2; cat "$tmp/args.log" >&2; fails=$((fails + 1)); }

[ "$fails" -eq 0 ] || { echo "$fails failures" >&2; exit 1; }
echo "packaging_completion: OK"
