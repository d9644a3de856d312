#!/usr/bin/env bash
# The README's run command: installs what is missing, builds, and runs the
# service on the repository's config.toml (SQLite under ./state, the API on
# 127.0.0.1:7878). Extra arguments go to `baton serve` (e.g. --log-level debug).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target baton
exec ./build/baton serve --config config.toml "$@"
