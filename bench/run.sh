#!/usr/bin/env bash
# One command benchmark: our broker vs Mosquitto on loopback, same scenarios, one run.
#
#   bench/run.sh                 full run (5-8 minutes), builds build-release/mqtt-server first
#   bench/run.sh --smoke         a few seconds per scenario; fails only if a scenario cannot run
#   bench/run.sh --server PATH   use this broker binary instead of building ours
#                                (a mosquitto binary works too: harness self-test)
#   bench/run.sh --no-build      use build-release/mqtt-server as it is
#   any other option is passed to bench/bench.py (see: python3 bench/bench.py --help),
#   e.g. --only a,b-p2p  --repeat 3  --threads 2  --duration 5
#
# Environment: MQTT_SERVER_BIN (same as --server), MOSQUITTO_BIN, BENCH_CACHE (where the
# load generator is built; default build-bench/), MQTT_STRESSER_BIN (a real mqtt-stresser),
# BENCH_CMAKE_ARGS (extra cmake configure options for the server build).
# Results: a table on stdout and bench/results/<date>.json (git-ignored).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

SERVER="${MQTT_SERVER_BIN:-}"
BUILD=1
SMOKE=0
PASS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --server) SERVER="$2"; shift 2 ;;
    --server=*) SERVER="${1#--server=}"; shift ;;
    --no-build) BUILD=0; shift ;;
    --smoke) SMOKE=1; PASS+=("$1"); shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) PASS+=("$1"); shift ;;
  esac
done

CACHE="${BENCH_CACHE:-$REPO/build-bench}"
mkdir -p "$CACHE/bin"

# Many idle connections need many descriptors: raise the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "bench: open-file limit $(ulimit -n)"

MOSQUITTO="${MOSQUITTO_BIN:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}"
if [[ ! -x "$MOSQUITTO" ]]; then
  echo "bench: mosquitto not found (Debian: apt-get install mosquitto); set MOSQUITTO_BIN" >&2
  exit 2
fi

# 1. Our server, release build (unless a binary was given).
if [[ -z "$SERVER" ]]; then
  SERVER="$REPO/build-release/mqtt-server"
  if [[ $BUILD -eq 1 ]]; then
    echo "bench: building mqtt-server (Release)"
    # BENCH_CMAKE_ARGS: extra configure options, e.g. -DMQTT_WERROR=OFF
    # shellcheck disable=SC2086
    cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DMQTT_BUILD_TESTS=OFF ${BENCH_CMAKE_ARGS:-} >/dev/null
    if ! cmake --build build-release -j2; then
      echo "bench: the release build failed. To benchmark anyway: BENCH_CMAKE_ARGS=-DMQTT_WERROR=OFF" \
           "bench/run.sh (if warnings are the cause), or bench/run.sh --server PATH" >&2
      exit 2
    fi
  fi
fi
if [[ ! -x "$SERVER" ]]; then
  echo "bench: server binary not found: $SERVER" >&2
  exit 2
fi

# 2. The load generator: one file, rebuilt when the source changes.
LOADGEN="$CACHE/bin/mqtt-loadgen"
if [[ ! -x "$LOADGEN" || "$REPO/bench/loadgen/loadgen.cpp" -nt "$LOADGEN" ]]; then
  echo "bench: building load generator"
  g++ -std=c++20 -O2 -Wall -Wextra -o "$LOADGEN.tmp" "$REPO/bench/loadgen/loadgen.cpp" -lssl -lcrypto
  mv "$LOADGEN.tmp" "$LOADGEN"
fi

# 3. The real mqtt-stresser (github.com/inovex/mqtt-stresser, the original README's tool)
#    runs scenario a when MQTT_STRESSER_BIN points to a binary of it; this repository
#    neither ships nor builds it. Without it, scenario a is the load generator's
#    pipelined stresser mode, and dev-stresser-1c (always run) is the device-shaped one.
STRESSER="${MQTT_STRESSER_BIN:-}"
if [[ -n "$STRESSER" && ! -x "$STRESSER" ]]; then
  echo "bench: MQTT_STRESSER_BIN=$STRESSER is not an executable" >&2
  exit 2
fi

exec python3 "$REPO/bench/bench.py" --server "$SERVER" --mosquitto "$MOSQUITTO" --loadgen "$LOADGEN" \
  ${STRESSER:+--stresser "$STRESSER"} "${PASS[@]+"${PASS[@]}"}"
