#!/bin/sh
# Usage: verify_unit.sh UNIT_IN [BATON]
#
# Checks app/systemd/baton.service.in with `systemd-analyze verify`. verify
# refuses a unit whose ExecStart binary does not exist, so the unit is
# configured here as cmake/service-install.cmake does at install time, with
# @bindir@ = a temporary directory holding BATON (the built binary), or a
# stub executable when the binary is not built: verify only checks that the
# file exists and is executable, it never runs it. Documentation= is not
# checked here (--man=no: the pages are not installed yet);
# test_install_service.sh verifies the installed unit with its man pages.
#
# Fails on a non-zero status and on any output: verify reports unknown or
# malformed directives as warnings but still exits 0. Exits 77 (skipped)
# without systemd-analyze.
set -eu
unit_in=$1
baton=${2:-}

if ! command -v systemd-analyze > /dev/null 2>&1; then
  echo "systemd-analyze not found: skipped"
  exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/baton-unit.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir "$tmp/bin"
if [ -n "$baton" ] && [ -x "$baton" ]; then
  ln -s "$(realpath "$baton")" "$tmp/bin/baton"
else
  printf '#!/bin/sh\nexit 1\n' > "$tmp/bin/baton"
  chmod +x "$tmp/bin/baton"
  echo "note: the baton binary is not built; ExecStart names a stub"
fi

# Only @bindir@ may be substituted (the same as the install-time configure).
other=$(sed 's/@bindir@//g' "$unit_in" | grep -o '@[A-Za-z_]*@' || true)
[ -z "$other" ] || { echo "FAIL: unexpected placeholders in $unit_in: $other" >&2; exit 1; }
sed "s|@bindir@|$tmp/bin|g" "$unit_in" > "$tmp/baton.service"

rc=0
systemd-analyze verify --man=no "$tmp/baton.service" > "$tmp/out.txt" 2>&1 || rc=$?
cat "$tmp/out.txt"
[ "$rc" -eq 0 ] || { echo "FAIL: systemd-analyze verify exited $rc" >&2; exit 1; }
[ ! -s "$tmp/out.txt" ] || { echo "FAIL: systemd-analyze verify printed warnings" >&2; exit 1; }
grep -q '^ExecStart=' "$tmp/baton.service"
echo "packaging_unit_verify: OK"
