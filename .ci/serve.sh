#!/usr/bin/env bash
# The README's run command: installs what is missing, builds, and runs.
# Until the baton service lands (see the issues), this runs the example
# applications on the runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)"
./build/examples/example_pingpong 1000000
./build/examples/example_counter 4 250000
