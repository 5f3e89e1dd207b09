"""The cluster tests' own harness (issue #15): the nats-server they start, and that a broker
without --cluster makes no NATS connection. These run whether or not the server has --cluster
yet, so the harness is proved before the feature lands.
"""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path

import pytest

from cluster_support import *  # noqa: F401,F403
from helpers import port_accepts, round_trip

def _raw_info(port: int) -> dict:
    """What a bare TCP client reads first from nats-server: one ``INFO {json}`` line."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            assert chunk, f"nats-server closed the connection before INFO; got {buf!r}"
            buf += chunk
    line = buf.split(b"\r\n", 1)[0]
    assert line.startswith(b"INFO {"), line[:200]
    return json.loads(line[5:])


def test_nats_fixture_serves_with_jetstream(nats_server):
    """The session's nats-server listens on 127.0.0.1 on its own port, with JetStream on."""
    info = _raw_info(nats_server.port)
    assert info["port"] == nats_server.port
    assert info.get("jetstream") is True, info
    assert info["version"].startswith("2."), info
    assert nats_server.url == f"nats://127.0.0.1:{nats_server.port}"


def test_nats_stop_and_restart_keep_port_and_store(own_nats):
    """stop() really stops it (the port refuses), start() brings it back on the same port, and a
    JetStream stream created before the restart is still there (the store dir is kept)."""
    own_nats.start()
    stream = f"T{os.urandom(4).hex()}"
    created = json.loads(own_nats.request(
        f"$JS.API.STREAM.CREATE.{stream}",
        json.dumps({"name": stream, "subjects": [f"{stream}.>"], "storage": "file"}).encode()))
    assert "error" not in created, created
    own_nats.stop()
    assert not own_nats.is_running()
    assert not port_accepts("127.0.0.1", own_nats.port), "nats-server still accepts after stop()"
    port = own_nats.port
    own_nats.start()
    assert own_nats.port == port and _raw_info(port).get("jetstream") is True
    info = json.loads(own_nats.request(f"$JS.API.STREAM.INFO.{stream}"))
    assert info.get("config", {}).get("name") == stream, info
    assert Path(own_nats.store_dir, "jetstream").is_dir()
    # restart() is the same two steps; the log keeps every start
    own_nats.restart()
    assert _raw_info(port).get("jetstream") is True
    assert own_nats.log_path.read_text().count("---- start #") == 3


def _established_peers(pid: int) -> list[str]:
    """Remote addresses of the process's TCP connections that are open or being opened
    (ESTABLISHED, SYN_SENT), read from /proc: a connection to anything would show here."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
        except OSError:
            continue
        if m:
            inodes.add(m.group(1))
    peers = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            f = row.split()
            if f[9] in inodes and f[3] in ("01", "02"):
                peers.append(f[2])
    return peers


@pytest.mark.ours_only(reason="our binary's flags")
def test_without_cluster_no_nats_connection(server_factory, client_factory):
    """Without --cluster nothing changes: no "cluster:" line in the log, and the broker process
    has no TCP connection of its own (only listeners) while it serves a device."""
    srv = server_factory()
    sub = client_factory(srv).connect()
    sub.subscribe("nocluster/t")
    pub = client_factory(srv).connect()
    round_trip(pub, sub, "nocluster/t")
    assert "cluster:" not in srv.log.text(), srv.log.text()
    # The two device connections are accepted sockets of the broker: their peers are our
    # clients' ports. Anything else would be a connection the broker opened.
    client_ports = {c.paho.socket().getsockname()[1] for c in (sub, pub)}
    others = [p for p in _established_peers(srv.process.pid) if int(p.split(":")[-1], 16) not in client_ports]
    assert others == [], f"broker without --cluster has outgoing connections to {others}"

