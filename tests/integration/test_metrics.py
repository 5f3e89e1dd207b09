"""--http-addr: the Prometheus /metrics scrape, /healthz, and --log-format json."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import free_port, port_accepts

pytestmark = pytest.mark.ours_only(reason="our HTTP endpoint and log format")

REQUIRED = {
    "mqtt_connections": "gauge", "mqtt_connections_total": "counter",
    "mqtt_messages_received_total": "counter", "mqtt_messages_sent_total": "counter",
    "mqtt_messages_dropped_total": "counter", "mqtt_bytes_received_total": "counter",
    "mqtt_bytes_sent_total": "counter", "mqtt_subscriptions": "gauge", "mqtt_retained_messages": "gauge",
    "mqtt_sessions": "gauge", "mqtt_store_pending": "gauge", "mqtt_store_write_errors_total": "counter",
    "grpc_streams": "gauge", "grpc_stream_dropped_total": "counter",
    "process_cpu_seconds_total": "counter", "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge", "process_start_time_seconds": "gauge",
}


# Straight to 127.0.0.1, whatever http_proxy the environment sets.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with _OPENER.open(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample as {(name, sorted labels): value}, parsed by prometheus_client."""
    status, text = get(port, "/metrics")
    assert status == 200, text
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def declared_types(port: int) -> dict[str, str]:
    """The "# TYPE name type" lines of the exposition (0.0.4 text format). Read from the text:
    prometheus_client's parser names a counter family without "_total", which would fold
    mqtt_connections_total into the gauge mqtt_connections."""
    _, text = get(port, "/metrics")
    list(text_string_to_metric_families(text))  # the whole scrape must parse
    return {p[2]: p[3] for p in (l.split() for l in text.splitlines()) if len(p) == 4 and p[:2] == ["#", "TYPE"]}


@pytest.fixture
def with_http(server_factory):
    port = free_port()
    srv = server_factory("--http-addr", f"127.0.0.1:{port}")
    srv.http_port = port
    # The fixture returns once the MQTT port accepts; the HTTP listener opens a moment later.
    deadline = time.monotonic() + 10
    while not port_accepts("127.0.0.1", port):
        assert time.monotonic() < deadline, f"--http-addr never accepted: {srv.log.tail(20)}"
        time.sleep(0.02)  # nothing to await: the port accepts or not yet
    return srv


def test_every_required_metric_is_exposed(with_http):
    """Every family the issue names is declared with its type, and the scrape parses."""
    types = declared_types(with_http.http_port)
    for name, kind in REQUIRED.items():
        assert types.get(name) == kind, f"{name}: {types.get(name)!r} (have {sorted(types)})"


def test_counters_follow_traffic(with_http, client_factory):
    """Connections, messages by QoS (in and out), bytes and subscriptions move exactly with the
    traffic paho-mqtt sends."""
    port = with_http.http_port
    before = scrape(port)
    sub = client_factory(with_http).connect()
    sub.subscribe("m/t", qos=1)
    pub = client_factory(with_http).connect()
    for i in range(3):
        pub.publish("m/t", b"zero %d" % i, qos=0)
        sub.expect_message("m/t", b"zero %d" % i)
    for i in range(5):
        pub.publish("m/t", b"one %d" % i, qos=1)
        sub.expect_message("m/t", b"one %d" % i)
    deadline = time.monotonic() + 5
    while True:  # the per-shard counters are summed at scrape time; deliveries are already seen
        after = scrape(port)
        d = lambda name, **labels: after[(name, tuple(sorted(labels.items())))] - before.get(
            (name, tuple(sorted(labels.items()))), 0)
        if d("mqtt_messages_sent_total", qos="1") >= 5 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert after[("mqtt_connections", ())] == 2
    assert d("mqtt_connections_total") == 2
    assert d("mqtt_messages_received_total", qos="0") == 3
    assert d("mqtt_messages_received_total", qos="1") == 5
    assert d("mqtt_messages_sent_total", qos="0") == 3
    assert d("mqtt_messages_sent_total", qos="1") == 5
    assert d("mqtt_bytes_received_total") > 8 * len(b"zero 0")
    assert d("mqtt_bytes_sent_total") > 8 * len(b"zero 0")
    assert after[("mqtt_subscriptions", ())] >= 1
    assert after[("mqtt_sessions", (("state", "online"),))] == 2
    sub.close()
    pub.close()


def test_healthz_and_unknown_paths(with_http):
    """/healthz is 200 while serving; an unknown path is 404."""
    status, body = get(with_http.http_port, "/healthz")
    assert status == 200 and body.strip() == "ok", (status, body)
    assert get(with_http.http_port, "/no-such-page")[0] == 404


def test_bad_http_addr_exits_with_a_message(server_bin, tmp_path):
    """An --http-addr that cannot be bound (in use) is a start-up error, exit non-zero."""
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([str(server_bin), "--non-tls", "--addr", f"127.0.0.1:{free_port()}",
                            "--grpc-addr", f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path / "d"),
                            "--http-addr", f"127.0.0.1:{port}"], capture_output=True, text=True,
                           timeout=15, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert r.returncode > 0, r.stderr
    assert str(port) in r.stderr, r.stderr


def test_json_log_lines(server_factory, client_factory):
    """--log-format json: every log line is one JSON object with time, level and message."""
    srv = server_factory("--log-format", "json")
    c = client_factory(srv).connect()
    c.close()
    srv.stop()
    lines = [l for l in srv.log.lines if l.strip()]
    assert lines, "nothing logged"
    for line in lines:
        obj = json.loads(line)
        assert set(obj) >= {"time", "level", "message"}, obj
        assert obj["time"].endswith("Z"), obj
    assert any("connected" in json.loads(l)["message"] for l in lines)
