#!/usr/bin/env bash
# Builds and runs tq's libFuzzer targets (codec, broker) in a build tree of
# their own, compiled with clang and ASan + UBSan.
#
#   run.sh build DIR                  configure and build DIR with clang
#   run.sh run DIR TARGET SECONDS     fuzz TARGET for SECONDS from its seeds;
#                                     fails on any crash, leak or sanitizer
#                                     report (the input is left in DIR/out)
#   run.sh corpus DIR                 rewrite corpus/ from corpus_writer.cc
#                                     (DIR built by run.sh build)
#
# A finding is replayed with: DIR/bin/tq_fuzz_TARGET DIR/out/TARGET/crash-...
# and kept as a regression seed by copying it to corpus/TARGET/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)

usage() {
  sed -n "2,13p" "$0" >&2
  exit 2
}

need_clang() {
  local missing=()
  command -v clang++ >/dev/null || missing+=("clang (clang++)")
  # libFuzzer and the sanitizer runtimes come in libclang-rt-NN-dev.
  if command -v clang++ >/dev/null; then
    local rt
    rt=$(clang++ -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null ||
      true)
    [ -f "$rt" ] || rt=$(clang++ --print-runtime-dir 2>/dev/null)/libclang_rt.fuzzer-x86_64.a
    [ -f "$rt" ] || missing+=("libFuzzer (libclang-rt-14-dev)")
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "fuzz: FAILED: missing ${missing[*]}; run deploy/install-deps.sh" >&2
    exit 1
  fi
}

build() {
  local dir=$1
  need_clang
  local flags="-fsanitize=fuzzer-no-link,address,undefined"
  flags+=" -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
  local launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # The top-level project is configured whole, but only the fuzz targets and
  # the libraries they link are built.
  CC=clang CXX=clang++ cmake -S "$src" -B "$dir" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON -DTQ_FUZZ=ON \
    -DCMAKE_CXX_FLAGS="$flags" "${launcher[@]}" >/dev/null
  cmake --build "$dir" --target tq_fuzz_codec tq_fuzz_broker
}

run() {
  local dir=$1 target=$2 seconds=$3
  need_clang
  local bin=$dir/bin/tq_fuzz_$target
  [ -x "$bin" ] || { echo "fuzz: $bin missing: run.sh build $dir" >&2; exit 1; }
  local seeds=$here/corpus/$target
  [ -d "$seeds" ] || { echo "fuzz: no seed corpus $seeds" >&2; exit 1; }
  # New inputs go to a scratch corpus, never into the repository's seeds.
  local work=$dir/out/$target
  rm -rf "$work"
  mkdir -p "$work/corpus"
  export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  local jobs_args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
    -print_final_stats=1 -artifact_prefix="$work/")
  [ "$target" = broker ] && jobs_args+=(-max_len=8192)
  echo "fuzz: $target for ${seconds}s from $(ls "$seeds" | wc -l) seeds"
  if ! "$bin" "${jobs_args[@]}" "$work/corpus" "$seeds" 2>"$work/log"; then
    tail -n 60 "$work/log" >&2
    echo "fuzz: $target FAILED; input(s): $(ls "$work"/crash-* "$work"/leak-* \
      "$work"/timeout-* "$work"/oom-* 2>/dev/null | tr '\n' ' ')" >&2
    echo "fuzz: replay with $bin <input>" >&2
    exit 1
  fi
  grep -E '^(INFO: Loaded 1 modules|#[0-9]+[[:space:]]+DONE|stat::)' "$work/log" || tail -n 5 "$work/log"
  echo "fuzz: $target passed: no crash in ${seconds}s"
}

corpus() {
  local dir=$1
  cmake --build "$dir" --target tq_fuzz_corpus
  "$dir/bin/tq_fuzz_corpus" "$here/corpus"
}

[ $# -ge 1 ] || usage
case $1 in
  build) [ $# -eq 2 ] || usage; build "$2" ;;
  run) [ $# -eq 4 ] || usage; run "$2" "$3" "$4" ;;
  corpus) [ $# -eq 2 ] || usage; corpus "$2" ;;
  *) usage ;;
esac
