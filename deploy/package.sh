#!/usr/bin/env bash
# Builds the Debian packages tq-broker, tq-worker and tq-tools from the build
# in build/ (configured and built first, as deploy/build.sh does), with
# CPack's DEB generator: binaries stripped, Depends from dpkg-shlibdeps,
# units, configs, man pages, bash completion and the country database.
# Writes build/packages/*.deb and lists them. Install on a Debian 12 box
# with: apt install ./tq-broker_*.deb (apt resolves the Depends).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${TQ_BUILD_DIR:-build}
out_dir=${TQ_PACKAGE_DIR:-$build_dir/packages}
deploy/build.sh
rm -f "$out_dir"/*.deb
cpack --config "$build_dir/CPackConfig.cmake" -B "$out_dir" >/dev/null
for deb in "$out_dir"/*.deb; do
  echo "$deb"
  dpkg-deb -f "$deb" Package Version Depends | sed 's/^/  /'
done
