#!/usr/bin/env bash
# Configures and builds tq (with its tests) into build/. Binaries: build/bin.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${TQ_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
