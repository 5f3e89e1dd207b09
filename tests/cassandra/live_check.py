#!/usr/bin/python3
"""Our CQL client (src/cql) against a real Cassandra, checked by the Python driver.

    /usr/bin/python3 tests/cassandra/live_check.py [--rows 10000] [--skip-resilience]

1. starts a node (cassandra_server.py), builds build/cql_live_check with g++ if missing or older
   than its sources;
2. runs it: schema, 10,000 pipelined prepared UPDATEs, a read-back, a BATCH, server errors;
3. verifies with cassandra-driver that every row is there with the payload and time written;
4. resilience: the client writes rows in rounds while this script stops Cassandra and starts it
   again on the same data; the client must reconnect with back-off and get every row
   acknowledged, and the driver must find every one of them afterwards.
Prints 'N passed, M failed' and exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cassandra_server import REPO_ROOT, CassandraServer  # noqa: E402

BINARY = REPO_ROOT / "build" / "cql_live_check"
SOURCES = sorted((REPO_ROOT / "src" / "cql").glob("*.[ch]pp")) + [
    REPO_ROOT / "tests" / "cassandra" / "cql_live_check.cpp"]

_EPOCH = datetime.datetime(1970, 1, 1)
passed = 0
failed = 0


def check(ok: bool, what: str) -> None:
    global passed, failed
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if ok:
        passed += 1
    else:
        failed += 1


def build() -> None:
    newest = max(p.stat().st_mtime for p in SOURCES)
    if BINARY.exists() and BINARY.stat().st_mtime >= newest:
        return
    BINARY.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["g++", "-std=c++20", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{REPO_ROOT / 'src'}",
           *[str(p) for p in SOURCES if p.suffix == ".cpp"], "-o", str(BINARY)]
    t0 = time.monotonic()
    subprocess.run(cmd, check=True)
    print(f"built {BINARY} in {time.monotonic() - t0:.1f}s", flush=True)


def verify_rows(node: CassandraServer, n: int, base_ms: int, skip: set[int]) -> None:
    """Every row i in [0, n) not in skip has payload-i and updatetime base_ms + i."""
    with node.session(timeout=30) as s:
        stmt = s.prepare("SELECT device_id, topic, payload, updatetime FROM retain_kv.device_data "
                         "WHERE device_id = ?")
        found = {}
        for dev in range((n + 99) // 100):
            for row in s.execute(stmt, (f"dev-{dev}",)):
                i = dev * 100 + int(row.topic[2:])
                found[i] = row
    bad = []
    for i in range(n):
        if i in skip:
            continue
        row = found.get(i)
        want_ms = base_ms + i
        got_ms = None
        if row is not None and row.updatetime is not None:
            # The driver returns a naive datetime in UTC.
            got_ms = int(round((row.updatetime - _EPOCH).total_seconds() * 1000))
        if row is None or row.payload != f"payload-{i}".encode() or got_ms != want_ms:
            bad.append((i, row))
    check(not bad, f"driver reads {n - len(skip)} rows back exactly as written"
          + (f" (first mismatch: {bad[0]})" if bad else ""))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--resilience-rows", type=int, default=30000)
    ap.add_argument("--skip-resilience", action="store_true")
    args = ap.parse_args()
    build()
    with CassandraServer() as node:
        print(f"Cassandra up on 127.0.0.1:{node.native_port} in {node.last_start_seconds:.1f}s",
              flush=True)
        proc = subprocess.run([str(BINARY), "--port", str(node.native_port), "--rows",
                               str(args.rows)], stdout=subprocess.PIPE, text=True)
        print(proc.stdout, end="", flush=True)
        check(proc.returncode == 0, "cql_live_check passed against the real node")
        # Rows 0..9 were overwritten by the client's BATCH ("batched-i", base+1000+i).
        verify_rows(node, args.rows, 1_700_000_000_000, skip=set(range(10)))
        with node.session() as s:
            got = [s.execute("SELECT payload FROM retain_kv.device_data WHERE device_id = 'dev-0' "
                             "AND topic = %s", (f"t/{i}",)).one()[0] for i in range(10)]
        check(got == [f"batched-{i}".encode() for i in range(10)],
              "driver sees the BATCH's 10 rows")

        if not args.skip_resilience:
            with node.session() as s:
                s.execute("TRUNCATE retain_kv.device_data")
            client = subprocess.Popen([str(BINARY), "--port", str(node.native_port), "--rows",
                                       str(args.resilience_rows), "--resilience", "180"],
                                      stdout=subprocess.PIPE, text=True)
            time.sleep(2.0)
            t0 = time.monotonic()
            node.stop()
            print(f"stopped Cassandra under load in {time.monotonic() - t0:.1f}s", flush=True)
            time.sleep(2.0)
            restart = node.start()
            print(f"started it again on the same data in {restart:.1f}s", flush=True)
            out, _ = client.communicate(timeout=240)
            print(out, end="", flush=True)
            check(client.returncode == 0, "client wrote every row across the restart")
            check("connection lost" in out and "connected (#2)" in out,
                  "client saw the drop and reconnected")
            verify_rows(node, args.resilience_rows, 1_800_000_000_000, skip=set())
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
