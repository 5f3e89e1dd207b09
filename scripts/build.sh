#!/usr/bin/env bash
# Configures and builds mqtt-server.
#   scripts/build.sh [release|debug|sanitize|tsan|clang]   (default: release)
# Build folders: build-release, build-debug, build-sanitize, build-tsan, build-clang.
#   sanitize  ASan + UBSan          tsan  ThreadSanitizer (gcc)
#   clang     Debian clang 14 with warnings as errors (a compile check, all targets)
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-release}"
jobs="${JOBS:-2}"
case "$mode" in
  release) dir=build-release; args=(-DCMAKE_BUILD_TYPE=Release) ;;
  debug) dir=build-debug; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  sanitize) dir=build-sanitize; args=(-DCMAKE_BUILD_TYPE=Debug -DMQTT_SANITIZE=ON) ;;
  tsan) dir=build-tsan; args=(-DCMAKE_BUILD_TYPE=Debug -DMQTT_SANITIZE_THREAD=ON) ;;
  clang) dir=build-clang
    args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang -DMQTT_WERROR=ON) ;;
  *) echo "build.sh: unknown mode '$mode' (release, debug, sanitize, tsan or clang)" >&2; exit 2 ;;
esac
# ccache, when installed, makes rebuilds across build folders and checkouts quick.
if command -v ccache >/dev/null; then args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
cmake --build "$dir" -j "$jobs"
echo "build.sh: $dir/mqtt-server"
