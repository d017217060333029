#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a working tq: installs what is
# missing, builds, then runs the main job on embedded defaults: a broker on a
# temp database, two local workers, examples/urls.txt submitted, results
# printed as JSON lines, everything stopped cleanly afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
deploy/install-deps.sh
deploy/build.sh >/dev/null
bin="$root/${TQ_BUILD_DIR:-build}/bin"

work=$(mktemp -d /tmp/tq-demo-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "demo: stopped; logs and database were in $work" >&2
}
trap cleanup EXIT

# The example pages, served on loopback so the demo needs no internet.
python3 -m http.server 8765 --bind 127.0.0.1 --directory examples/site \
  >"$work/http.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:8765/ && break; sleep 0.1; done
curl -s -o /dev/null http://127.0.0.1:8765/ || { echo "demo: port 8765 is busy or python3 failed" >&2; cat "$work/http.log" >&2; exit 1; }

"$bin/tq-broker" --db "$work/tq.db" --listen tcp://127.0.0.1:0 \
  --ready-file "$work/endpoint" --retry-backoff 0.2 2>"$work/broker.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/endpoint" ] && break; sleep 0.1; done
[ -s "$work/endpoint" ] || { echo "demo: broker did not start" >&2; cat "$work/broker.log" >&2; exit 1; }
export TQ_BROKER=$(cat "$work/endpoint")
echo "demo: broker at $TQ_BROKER, database $work/tq.db" >&2

# The workers run the built-in analyser (the default handler): fetch with
# redirects, parse the HTML, hash what was fetched, and report static signals
# as one JSON document per URL, in the shape of Thug's JSON log.
for i in 1 2; do
  "$bin/tq-worker" --country none --concurrency 2 --id "demo-worker-$i" \
    2>"$work/worker-$i.log" &
  pids+=($!)
done

status=0
"$bin/tq-submit" examples/urls.txt --max-attempts 2 --wait --timeout 60 || status=$?
echo >&2
"$bin/tq-ctl" queues >&2 || true
"$bin/tq-ctl" workers >&2 || true
echo "demo: tq-submit exited with $status (1: some task failed, 3: bad lines skipped; see tq-submit --help)" >&2
