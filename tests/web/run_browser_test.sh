#!/usr/bin/env bash
# Runs tests/web/console_browser_test.js: installs puppeteer-core (pinned by
# package-lock.json, no browser download) into BUILD/web-node once, then
# drives /usr/bin/chromium. Exit 4 (skipped) without chromium, node or npm.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$1"
[ -x /usr/bin/chromium ] || { echo "skip: no /usr/bin/chromium (deploy/install-deps.sh)"; exit 4; }
command -v node >/dev/null && command -v npm >/dev/null || { echo "skip: no node/npm"; exit 4; }
modules="$build/web-node"
mkdir -p "$modules"
if ! cmp -s "$here/package-lock.json" "$modules/package-lock.json" ||
   [ ! -d "$modules/node_modules/puppeteer-core" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$modules/"
  (cd "$modules" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) ||
    { echo "skip: npm ci failed (no registry?)"; exit 4; }
fi
NODE_PATH="$modules/node_modules" exec node "$here/console_browser_test.js" \
  "$build/bin" "$build/web-screenshots"
