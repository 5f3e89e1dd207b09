#!/usr/bin/env bash
# Configures and builds mqtt-server.
#   scripts/build.sh [release|debug|sanitize]   (default: release)
# Build folders: build-release, build-debug, build-sanitize.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-release}"
jobs="${JOBS:-2}"
case "$mode" in
  release) dir=build-release; args=(-DCMAKE_BUILD_TYPE=Release) ;;
  debug) dir=build-debug; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  sanitize) dir=build-sanitize; args=(-DCMAKE_BUILD_TYPE=Debug -DMQTT_SANITIZE=ON) ;;
  *) echo "build.sh: unknown mode '$mode' (release, debug or sanitize)" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
cmake --build "$dir" -j "$jobs"
echo "build.sh: $dir/mqtt-server"
