#!/usr/bin/env bash
# Before/after check of two builds of our server on the original README case
# (1 device-shaped client x 50,000 QoS 0 through itself, mqtt-loadgen stresser
# mode), run alternately so that both see the same machine noise:
#   bench/ab.sh OLD_BINARY NEW_BINARY [ROUNDS]     (default 10 rounds)
# Prints each run's server CPU (user + system, from /proc) and delivered rate,
# then the medians. The load generator comes from bench/run.sh's cache
# (BENCH_CACHE, default build-bench/): run bench/run.sh --smoke once first.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
old="${1:?usage: bench/ab.sh OLD_BINARY NEW_BINARY [ROUNDS]}"
new="${2:?usage: bench/ab.sh OLD_BINARY NEW_BINARY [ROUNDS]}"
rounds="${3:-10}"
loadgen="${BENCH_CACHE:-$REPO/build-bench}/bin/mqtt-loadgen"
[[ -x "$loadgen" ]] || { echo "ab.sh: $loadgen missing: run bench/run.sh --smoke first" >&2; exit 2; }
tck=$(getconf CLK_TCK)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() {  # $1 label, $2 binary
  local port grpc pid t0 t1 rate
  port=$(free_port); grpc=$(free_port)
  rm -rf "$work/data"
  "$2" --non-tls -a "127.0.0.1:$port" --threads 1 --data-dir "$work/data" \
    --grpc-addr "127.0.0.1:$grpc" >"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 50); do grep -q "listening on" "$work/server.log" && break; sleep 0.1; done
  t0=$(cpu_ticks "$pid")
  rate=$("$loadgen" stresser --device --pairs 1 --messages 50000 --qos 0 --port "$port" \
    --global-timeout 60 | grep -o '"delivered_per_s":[0-9.]*' | cut -d: -f2)
  t1=$(cpu_ticks "$pid")
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true
  echo "$1 cpu_ms=$(( (t1 - t0) * 1000 / tck )) delivered_per_s=${rate%.*}"
}

for _ in $(seq "$rounds"); do
  run old "$old"
  run new "$new"
done | tee "$work/runs"
/usr/bin/python3 - "$work/runs" <<'PY'
import re, statistics, sys
cpu, rate = {"old": [], "new": []}, {"old": [], "new": []}
for line in open(sys.argv[1]):
    m = re.match(r"(old|new) cpu_ms=(\d+) delivered_per_s=(\d+)", line)
    if m:
        cpu[m[1]].append(int(m[2])); rate[m[1]].append(int(m[3]))
for k in ("old", "new"):
    print(f"{k}: median server CPU {statistics.median(cpu[k]):.0f} ms per 50,000 messages, "
          f"median {statistics.median(rate[k]):.0f} msg/s ({len(cpu[k])} runs)")
print(f"new/old CPU {statistics.median(cpu['new']) / statistics.median(cpu['old']):.2f}")
PY
