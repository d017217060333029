#!/usr/bin/env bash
# Configures and builds tq (with its tests) into build/. Binaries: build/bin.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${TQ_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
# The embedded country database for --country auto (tq-broker finds it at
# <bin>/../share/tq/country.mmdb), from Tor's geoip files: no internet needed.
mkdir -p "$build_dir/share/tq"
"$build_dir/bin/tq-geoip" build -o "$build_dir/share/tq/country.mmdb" \
  /usr/share/tor/geoip /usr/share/tor/geoip6
