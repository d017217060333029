#!/usr/bin/env bash
# Installs what tq needs to build, test and run its demo, from Debian 12's
# packages. Installs only what is missing; safe to run again.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libzmq3-dev cppzmq-dev libprotobuf-dev protobuf-compiler libsqlite3-dev
  libmaxminddb-dev libspdlog-dev catch2 libcli11-dev nlohmann-json3-dev
  liburiparser-dev libidn2-dev
  # the built-in analyser: fetching, HTML parsing, digests
  libcurl4-openssl-dev libgumbo-dev libssl-dev
  # the offline country database (Tor's geoip files, IPFire Location data)
  # and the network namespaces of the geo routing test
  tor-geoipdb iproute2
  # tq-worker --geo-resolver cymru (DNS), and the DNS server its test runs
  libc-ares-dev dnsmasq-base
  # demo and tests: a local web server and a fetcher for the example handler
  python3 curl procps
  # the command-line tests drive tq-submit's progress bar in a terminal
  tmux
  # the Python client (client/python) and its tests
  python3-zmq python3-protobuf
  # the analyser tests' TLS fixture makes a self-signed certificate
  openssl
  # the web console (tq-broker --http): HTTP server, .tar.gz downloads; its
  # browser tests drive Debian's chromium with puppeteer-core (node + npm;
  # nodejs from Debian or NodeSource, whose package includes npm)
  libcpp-httplib-dev libarchive-dev chromium nodejs
  # the fuzz targets (tests/fuzz): libFuzzer is clang-only, and its runtime
  # and the sanitizers' are only a Recommends of clang-14
  clang libclang-rt-14-dev
  # the Debian packages (deploy/package.sh: CPack's DEB generator and
  # dpkg-shlibdeps), their man pages, and the tests that check the systemd
  # units (systemd-analyze verify) and render the man pages
  dpkg-dev help2man systemd man-db
  # the CURVE e2e test captures loopback traffic to show nothing is in clear
  tcpdump
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deploy: all ${#packages[@]} packages present"
  exit 0
fi

echo "deploy: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
