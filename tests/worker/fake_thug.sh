#!/bin/sh
# Behaves like Thug for the worker's tests: `fake_thug.sh -n OUTDIR -u UA URL`
# writes a JSON log and a saved sample under OUTDIR, as `thug -F -Z -n` does.
# URLs containing "hang" hang (with a child in the same process group, its
# pid written to $FAKE_THUG_PIDS/child if set); URLs containing "crash" write
# a partial log and die of SIGSEGV; URLs containing "big" also write a
# 9,000,000-byte file (over the worker's 8 MiB per-file cap).
set -eu
outdir="" ua=""
while [ $# -gt 1 ]; do
  case "$1" in
    -n) outdir=$2; shift 2 ;;
    -u) ua=$2; shift 2 ;;
    *) shift ;;
  esac
done
url=$1
[ -n "$outdir" ] || { echo "fake_thug: -n OUTDIR missing" >&2; exit 2; }
log="$outdir/0123abcd/20261124000000"
mkdir -p "$log/analysis/json" "$log/application/x-dosexec"
echo "[fake thug] analysing $url"
echo "[fake thug] personality $ua" >&2
case "$url" in
  *hang*)
    sleep 300 &
    if [ -n "${FAKE_THUG_PIDS:-}" ]; then echo $! > "$FAKE_THUG_PIDS/child"; fi
    sleep 300
    ;;
  *crash*)
    printf '{"url": "%s", "beh' "$url" > "$log/analysis/json/analysis.json"
    kill -SEGV $$
    ;;
esac
printf '{"url": "%s", "logtype": "json-log", "thug": {"personality": {"useragent": "%s"}}, "behavior": [], "files": []}\n' \
  "$url" "$ua" > "$log/analysis/json/analysis.json"
printf 'MZ\220\000fake sample' > "$log/application/x-dosexec/sample.exe"
case "$url" in
  *big*) head -c 9000000 /dev/zero > "$log/big.bin" ;;
esac
echo "[fake thug] done"
