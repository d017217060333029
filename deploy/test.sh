#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a tested build:
# installs what is missing, builds, runs every test (unit and end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
deploy/build.sh
build_dir=${TQ_BUILD_DIR:-build}
cd "$build_dir"
ctest --output-on-failure --timeout 600 -j 2
