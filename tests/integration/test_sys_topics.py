"""$SYS topics under Mosquitto's names, published by the broker every --sys-interval seconds."""

from __future__ import annotations

import queue
import re
import subprocess
import time

import pytest

pytestmark = pytest.mark.ours_only(reason="our $SYS publisher and its flag")


def drain(client) -> list:
    """Every message the client has received and not yet read."""
    out = []
    while True:
        try:
            out.append(client.messages.get_nowait())
        except queue.Empty:
            return out


def sys_value(srv, topic: str, timeout: float = 5) -> str:
    """One retained value of ``topic``, read with mosquitto_sub (Debian's mosquitto-clients)."""
    r = subprocess.run(["mosquitto_sub", "-h", srv.host, "-p", str(srv.port), "-t", topic, "-C", "1",
                        "-W", str(int(timeout))], capture_output=True, text=True, timeout=timeout + 5)
    assert r.returncode == 0, f"no message on {topic}: {r.stderr}"
    return r.stdout.strip()


def test_version_and_uptime(server_factory):
    srv = server_factory("--sys-interval", "1")
    assert "mqtt-server" in sys_value(srv, "$SYS/broker/version")
    assert re.fullmatch(r"\d+ seconds", sys_value(srv, "$SYS/broker/uptime"))


def test_clients_connected_follows_connections(server_factory, client_factory):
    """$SYS/broker/clients/connected reaches the number of clients connected (3 here, plus none:
    mosquitto_sub's own connection is counted too, so 4 while it reads)."""
    srv = server_factory("--sys-interval", "1")
    held = [client_factory(srv).connect() for _ in range(3)]
    deadline = time.monotonic() + 6
    value = None
    while time.monotonic() < deadline:
        value = sys_value(srv, "$SYS/broker/clients/connected")
        if value in ("3", "4"):
            break
        time.sleep(0.5)
    assert value in ("3", "4"), value
    for c in held:
        c.close()


def test_messages_received_counts_publishes(server_factory, client_factory):
    srv = server_factory("--sys-interval", "1")
    pub = client_factory(srv).connect()
    for i in range(7):
        pub.publish("s/t", b"x", qos=1)
    deadline = time.monotonic() + 6
    while int(sys_value(srv, "$SYS/broker/messages/received")) < 7:
        assert time.monotonic() < deadline, "messages/received never reached 7"
        time.sleep(0.5)
    assert re.fullmatch(r"\d+\.\d\d", sys_value(srv, "$SYS/broker/load/messages/received/1min"))


def test_hash_does_not_match_sys(server_factory, client_factory):
    """[MQTT-4.7.2-1]: a '#' subscriber gets no $SYS topic; '$SYS/#' gets them."""
    srv = server_factory("--sys-interval", "1")
    everything = client_factory(srv).connect()
    everything.subscribe("#")
    sys_sub = client_factory(srv).connect()
    sys_sub.subscribe("$SYS/#")
    time.sleep(2.5)  # two publishing rounds
    assert any(m.topic.startswith("$SYS/") for m in drain(sys_sub))
    assert not [m.topic for m in drain(everything) if m.topic.startswith("$")]


def test_clients_cannot_publish_to_sys(server_factory, client_factory):
    """A client PUBLISH to $SYS/... is refused (acknowledged and dropped, logged), like Mosquitto."""
    srv = server_factory("--sys-interval", "0")
    sub = client_factory(srv).connect()
    sub.subscribe(["$SYS/#", "sentinel"])
    pub = client_factory(srv).connect()
    pub.publish("$SYS/broker/fake", b"spoofed", qos=1)
    pub.publish("sentinel", b"after", qos=1)
    # Once the sentinel is here, the PUBLISH before it on the same connection was routed or not.
    assert sub.collect_until("sentinel", b"after") == []
    assert any("$SYS" in l and "refused" in l for l in srv.log.lines)


def test_sys_interval_zero_publishes_nothing(server_factory, client_factory):
    srv = server_factory("--sys-interval", "0")
    sub = client_factory(srv).connect()
    sub.subscribe("$SYS/#")
    time.sleep(1.5)
    assert not drain(sub)
