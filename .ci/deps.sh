#!/usr/bin/env bash
# Installs the Debian packages baton needs to build and test, if missing.
# Usage: .ci/deps.sh [extra-package...]
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config clang   # toolchain; clang for TSan builds
  libclang-rt-dev                          # sanitizer runtimes for clang
  libck-dev                                # Concurrency Kit: mailbox atomics
  libjemalloc-dev                          # allocator
  libcriterion-dev                         # unit tests
  libsqlite3-dev                           # the run store
  libmicrohttpd-dev                        # the service's HTTP server
  libcurl4-openssl-dev                     # the CLI's client and the http job kind
  libcjson-dev                             # JSON parsing (API bodies, http pages)
  libsystemd-dev                           # sd_notify readiness (optional at build time)
  cmark-gfm                                # man pages from docs/*.md (optional at build time)
  fiu-utils libfiu-dev                     # libfiu: store fault injection (tests/reliability)
  "$@"
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
