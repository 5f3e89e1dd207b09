#!/usr/bin/env bash
# Installs what mqtt-server needs on Debian 12, from Debian's packages only.
#   scripts/install-deps.sh          build and run the server
#   scripts/install-deps.sh --test   also everything the test suite uses
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build pkg-config git openssl
  libasio-dev libssl-dev libcli11-dev libspdlog-dev libfmt-dev libnats-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  librocksdb-dev libtomlplusplus-dev libsystemd-dev libcpp-httplib-dev
  libnats-dev  # the NATS C client of --cluster (issue #15)
  dpkg-dev  # dpkg-shlibdeps: the Depends of the .deb (--target package)
)
test_pkgs=(
  libgtest-dev libgmock-dev libbenchmark-dev clang clang-format libclang-rt-14-dev
  python3 python3-pytest python3-pytest-timeout python3-paho-mqtt python3-grpcio python3-protobuf
  python3-cassandra python3-prometheus-client mosquitto mosquitto-clients
  openjdk-17-jre-headless maven
  nats-server  # the cluster tests start it (/usr/sbin/nats-server), JetStream on
  chromium  # the real browser of the WebSocket test (tests/integration/test_browser.py)
  systemd procps  # tests/package: systemd-analyze verify on the unit (systemd need not run), ps
)

pkgs=("${build_pkgs[@]}")
if [[ "${1:-}" == "--test" ]]; then
  pkgs+=("${test_pkgs[@]}")
  # npm fetches mqtt.js for the browser test; Debian's npm unless one is there
  # already (a Node.js from elsewhere brings its own, and Debian's would clash).
  command -v npm >/dev/null || pkgs+=(npm)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#pkgs[@]} packages already installed"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts a system-wide Mosquitto on port 1883 when it is installed; the
# tests and benchmarks start their own instances, so keep the system one off.
if [[ " ${missing[*]} " == *" mosquitto "* ]] && command -v systemctl >/dev/null; then
  $sudo systemctl disable --now mosquitto >/dev/null 2>&1 || true
fi
echo "install-deps: done"
