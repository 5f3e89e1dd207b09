#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for SECONDS (default 60).
# New interesting inputs go to build-fuzz/corpus-*/ (not into the seed corpus);
# a crash leaves its input in build-fuzz/ and fails the run: fix it, then add
# the input to fuzz/corpus/<target>/ as a regression seed.
#   fuzz/run.sh            60 s each (what CI runs)
#   fuzz/run.sh 3600       an hour each
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
cmake -S fuzz -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build build-fuzz -j "${JOBS:-2}"
for target in fuzz_mqtt_decoder fuzz_topic fuzz_cql_frame fuzz_websocket fuzz_client \
    fuzz_cluster_envelope; do
  seeds="fuzz/corpus/$target"
  [[ -d "$seeds" ]] || seeds="fuzz/corpus/${target#fuzz_}"
  work="build-fuzz/corpus-$target"
  mkdir -p "$work"
  echo "== $target for ${seconds}s (seeds: $seeds)"
  (cd build-fuzz && "./$target" -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
      "../$work" "../$seeds" 2>&1 | grep -E "stat::number_of_executed_units|ERROR|SUMMARY|Done" || true)
  # libFuzzer exits non-zero and writes crash-*/leak-*/timeout-* files on findings.
  if compgen -G "build-fuzz/crash-*" >/dev/null || compgen -G "build-fuzz/leak-*" >/dev/null || compgen -G "build-fuzz/oom-*" >/dev/null; then
    echo "fuzz: $target found a failing input:" build-fuzz/crash-* build-fuzz/leak-* 2>/dev/null
    exit 1
  fi
done
echo "fuzz: no findings"
