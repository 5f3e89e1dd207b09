#!/usr/bin/env bash
# QoS 0 throughput with the store on, as a ratio to --no-store, in one run:
# p2p (10 pairs, 64 B, QoS 0) against our server with --no-store, with the
# embedded RocksDB store, and with Cassandra (a real node started here from
# tests/cassandra/cassandra_server.py), alternating ROUNDS times.
#   bench/store-ratio.sh [SERVER_BIN] [ROUNDS]
# Needs the load generator (bench/run.sh builds it into build-bench/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
server="${1:-build-release/mqtt-server}"
rounds="${2:-3}"
loadgen=build-bench/bin/mqtt-loadgen
[[ -x "$loadgen" ]] || { echo "store-ratio: build the load generator first (bench/run.sh --smoke)" >&2; exit 2; }
work=$(mktemp -d)
cleanup() { [[ -n "${cass_pid:-}" ]] && kill "$cass_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cport=$(free_port)
/usr/bin/python3 tests/cassandra/cassandra_server.py --serve --port "$cport" > "$work/cassandra.log" 2>&1 &
cass_pid=$!
for _ in $(seq 240); do
  (exec 3<>"/dev/tcp/127.0.0.1/$cport") 2>/dev/null && break
  sleep 1
done

run() {  # $1 label, rest: server args
  local label=$1; shift
  local port; port=$(free_port)
  "$server" --non-tls --threads 1 -a "127.0.0.1:$port" --grpc-addr "127.0.0.1:$(free_port)" \
    "$@" > "$work/$label.log" 2>&1 &
  local pid=$!
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  local rate
  rate=$("$loadgen" p2p --port "$port" --pairs 10 --qos 0 --size 64 --duration 5 --server-pid "$pid" \
          | sed -n 's/^RESULT //p' | /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); print(r.get("delivered_per_s", 0), r.get("server_cpu_s", 0) / max(r.get("delivered", 1), 1) * 1e6)')
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$rate"
}

declare -A sum cpu
for r in $(seq "$rounds"); do
  for mode in off embedded cassandra; do
    case $mode in
      off) args=(--no-store) ;;
      embedded) args=(--data-dir "$work/data-$r") ;;
      cassandra) args=(-d "127.0.0.1:$cport" --db-consistency ONE) ;;
    esac
    read -r v c <<<"$(run "$mode-$r" "${args[@]}")"
    echo "round $r $mode: ${v:-?} msg/s delivered, ${c:-?} server CPU s per million"
    sum[$mode]=$(/usr/bin/python3 -c "print(${sum[$mode]:-0} + ${v:-0})")
    cpu[$mode]=$(/usr/bin/python3 -c "print(${cpu[$mode]:-0} + ${c:-0})")
  done
done
/usr/bin/python3 - "${sum[off]}" "${sum[embedded]}" "${sum[cassandra]}" \
    "${cpu[off]}" "${cpu[embedded]}" "${cpu[cassandra]}" <<'PY'
import sys
off, emb, cas, coff, cemb, ccas = map(float, sys.argv[1:])
print(f"msg/s (sum of rounds): store off {off:.0f}, embedded {emb:.0f} (ratio {emb/off:.2f}), "
      f"cassandra {cas:.0f} (ratio {cas/off:.2f})")
print(f"server CPU per message: embedded {cemb/coff:.2f}x store-off, cassandra {ccas/coff:.2f}x "
      "(lower is better; throughput ratio target >= 0.9)")
PY
