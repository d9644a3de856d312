#!/bin/sh
# Usage: check_man.sh PAGE...
#
# Each built man page renders with `man --warnings -l` (groff's warnings on,
# tbl's included) with nothing at all on stderr, and has its NAME section
# (what mandb/whatis index). Exits 77 (skipped) without man or without
# pages (cmark-gfm missing at configure time).
set -eu
if [ $# -eq 0 ]; then
  echo "no man pages were built (cmark-gfm not found at configure time): skipped"
  exit 77
fi
if ! command -v man > /dev/null 2>&1; then
  echo "man not found: skipped"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/baton-man.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
status=0
for page in "$@"; do
  [ -s "$page" ] || { echo "FAIL: $page is missing or empty" >&2; status=1; continue; }
  before=$status
  # At 80 columns, what man uses when stdout is not a terminal (the tables
  # are fitted to it; on narrower terminals a wide table overflows).
  MANWIDTH=80 man --warnings -l "$page" > "$tmp/out.txt" 2> "$tmp/err.txt" || {
    echo "FAIL: man -l $page exited $?" >&2; status=1; }
  if [ -s "$tmp/err.txt" ]; then
    echo "FAIL: $page renders with warnings:" >&2
    cat "$tmp/err.txt" >&2
    status=1
  fi
  grep -q '^NAME' "$tmp/out.txt" || { echo "FAIL: $page has no NAME section" >&2; status=1; }
  grep -q '^\.TH ' "$page" || { echo "FAIL: $page has no .TH line" >&2; status=1; }
  [ "$status" -ne "$before" ] || echo "$page: $(wc -l < "$tmp/out.txt") lines, no warnings"
done
[ "$status" -eq 0 ] && echo "packaging_man_warnings: OK"
exit "$status"
