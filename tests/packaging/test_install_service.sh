#!/bin/sh
# Usage: test_install_service.sh CMAKE BUILD_DIR SOURCE_DIR HAVE_BATON HAVE_MAN
#
# Installs BUILD_DIR into a temporary prefix and checks the service's files
# (cmake/service-install.cmake, cmake/manpages.cmake):
#   bin/baton (when HAVE_BATON is 1: the binary is built)
#   lib/systemd/system/baton.service, whose ExecStart names <prefix>/bin/baton
#   share/bash-completion/completions/baton, which loads and completes
#   share/doc/baton/config.toml.example (when the source has config.toml)
#   share/man/man1/baton.1, share/man/man5/baton.toml.5 (when HAVE_MAN is 1:
#     cmark-gfm was found), found by `man` through MANPATH
# Then, with the binary and systemd-analyze, the installed unit is verified
# as installed, Documentation= man pages included (MANPATH=<prefix>/share/man),
# and the installed binary answers --version and --help. The library's
# files are packaging_install's business (test_install.sh).
set -eu
cmake=$1
build=$2
src=$3
have_baton=$4
have_man=$5

tmp=$(mktemp -d "${TMPDIR:-/tmp}/baton-install-svc.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
prefix=$tmp/prefix

step() { echo "== $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

step "install into $prefix"
"$cmake" --install "$build" --prefix "$prefix" > "$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; fail "cmake --install"; }

unit=$prefix/lib/systemd/system/baton.service
compl=$prefix/share/bash-completion/completions/baton

step "layout"
[ -f "$unit" ] || fail "lib/systemd/system/baton.service not installed"
[ -f "$compl" ] || fail "share/bash-completion/completions/baton not installed"
if [ -f "$src/config.toml" ]; then
  cmp -s "$src/config.toml" "$prefix/share/doc/baton/config.toml.example" ||
    fail "share/doc/baton/config.toml.example is not the source's config.toml"
else
  echo "note: no config.toml in the source tree, no example installed"
fi
if [ "$have_baton" = 1 ]; then
  [ -x "$prefix/bin/baton" ] || fail "bin/baton not installed"
else
  echo "note: the baton binary is not built, bin/baton not checked"
fi

step "unit"
# Configured at install time with the prefix installed to, and nothing
# left unsubstituted.
grep -qx "ExecStart=$prefix/bin/baton serve --config /etc/baton/config.toml" "$unit" ||
  { grep '^ExecStart' "$unit"; fail "ExecStart does not name $prefix/bin/baton"; }
! grep -q '@[A-Za-z_]*@' "$unit" || fail "unsubstituted @VAR@ in the installed unit"
for want in Type=notify NotifyAccess=main ProtectSystem=strict NoNewPrivileges=yes \
            PrivateTmp=yes StateDirectory=baton KillMode=mixed Restart=on-failure; do
  grep -qx "$want" "$unit" || fail "the unit lacks $want"
done

if [ "$have_man" = 1 ]; then
  step "man pages"
  [ -f "$prefix/share/man/man1/baton.1" ] || fail "share/man/man1/baton.1 not installed"
  [ -f "$prefix/share/man/man5/baton.toml.5" ] || fail "share/man/man5/baton.toml.5 not installed"
  if command -v man > /dev/null 2>&1; then
    for page in 1:baton 5:baton.toml; do
      found=$(MANPATH="$prefix/share/man" man -w "${page#*:}.${page%%:*}" 2>/dev/null || true)
      case $found in
        "$prefix"/*) ;;
        *) fail "man -w ${page#*:}(${page%%:*}) finds '$found', not the installed page" ;;
      esac
    done
  fi
else
  echo "note: man pages not built (no cmark-gfm), not checked"
fi

step "completion"
out=$(bash --norc --noprofile -c 'source "$0"; COMP_WORDS=(baton st); COMP_CWORD=1; _baton; echo "${COMPREPLY[*]}"' "$compl")
[ "$out" = "start stop status" ] || fail "installed completion gives '$out' for 'baton st'"

if [ "$have_baton" = 1 ]; then
  step "binary"
  "$prefix/bin/baton" --version > "$tmp/v.txt" || fail "baton --version exited $?"
  grep -q '^baton [0-9]' "$tmp/v.txt" || fail "baton --version printed '$(cat "$tmp/v.txt")'"
  "$prefix/bin/baton" --help > /dev/null || fail "baton --help exited $?"
  if command -v systemd-analyze > /dev/null 2>&1; then
    step "systemd-analyze verify (installed unit, with its man pages)"
    man_opt=--man=no
    [ "$have_man" = 1 ] && man_opt=--man=yes
    rc=0
    MANPATH="$prefix/share/man" systemd-analyze verify "$man_opt" "$unit" > "$tmp/verify.txt" 2>&1 || rc=$?
    cat "$tmp/verify.txt"
    [ "$rc" -eq 0 ] || fail "systemd-analyze verify exited $rc"
    [ ! -s "$tmp/verify.txt" ] || fail "systemd-analyze verify printed warnings"
  fi
fi

echo "packaging_install_service: OK"
