"""QoS 0 publish/subscribe through the broker, with paho and with the Mosquitto CLI clients."""

from __future__ import annotations

import queue
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from helpers import (MQTTv31, MQTTv311, PINGREQ_BYTES, PINGRESP, RawConnection, pump_lines, round_trip,
                     wait_for_line)

GEN_CERT = Path(__file__).resolve().parents[2] / "scripts" / "gen-dev-cert.sh"


def test_qos0_pubsub_tcp(server, client_factory):
    """A QoS 0 message reaches a subscriber with its topic and payload intact, QoS 0, not retained."""
    sub = client_factory(server).connect()
    assert sub.subscribe("a/b") == (0,)  # [MQTT-3.9.3-1] SUBACK return code = granted QoS
    pub = client_factory(server).connect()
    pub.publish("a/b", b"hello \x00\xff world")
    m = sub.expect_message("a/b", b"hello \x00\xff world")
    assert m.qos == 0 and not m.retain


def test_qos0_pubsub_tls(tls_server, client_factory):
    """The same over TLS; paho verifies the self-signed certificate and the 127.0.0.1 SAN."""
    sub = client_factory(tls_server).connect()
    sub.subscribe("secure/t")
    pub = client_factory(tls_server).connect()
    pub.publish("secure/t", b"over tls")
    sub.expect_message("secure/t", b"over tls")


def test_large_payload_tls(tls_server, client_factory):
    """A large payload (bigger than one TLS record) arrives whole over TLS."""
    sub = client_factory(tls_server).connect()
    sub.subscribe("big")
    pub = client_factory(tls_server).connect()
    payload = bytes(range(256)) * 400  # 100 KiB, several TLS records
    pub.publish("big", payload)
    sub.expect_message("big", payload)


def test_plain_client_on_tls_listener_is_dropped(tls_server, client_factory):
    """Plain MQTT bytes sent to the TLS listener are not a TLS handshake: that connection is closed
    and TLS clients keep working."""
    with RawConnection(tls_server) as raw:
        raw.send(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
        raw.expect_closed()
    sub = client_factory(tls_server).connect()
    sub.subscribe("after")
    pub = client_factory(tls_server).connect()
    round_trip(pub, sub, "after")


def test_tls_clients_survive_short_tls_connections(tls_server, client_factory):
    """TLS connections that finish the handshake and hang up at once (probes, health checks,
    scanners) leave the others alone. They used to close healthy TLS clients on the same worker
    ("shutdown while in init"): OpenSSL's per-thread error queue carried their failed
    close_notify into the next connection's SSL_read."""
    held = [client_factory(tls_server).connect() for _ in range(4)]  # on both workers
    for i, c in enumerate(held):
        c.subscribe(f"probe/{i}")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # like a port probe: take the certificate, hang up
    for _ in range(20):
        with socket.create_connection((tls_server.host, tls_server.port), timeout=5) as raw:
            with ctx.wrap_socket(raw) as s:
                assert s.getpeercert(binary_form=True)
        # The victim was whichever TLS connection that worker served next: keep them busy.
        for i, c in enumerate(held):
            round_trip(c, c, f"probe/{i}")


# (filter, topic, matches). From MQTT 3.1.1 section 4.7 and its examples.
WILDCARD_CASES = [
    ("sport/tennis/player1/#", "sport/tennis/player1", True),  # [MQTT-4.7.1-2]: # includes the parent
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/tennis/player1/#", "sport/tennis/player2", False),
    ("sport/#", "sport", True),
    ("sport/#", "sport/tennis", True),
    ("sport/#", "sports", False),
    ("#", "sport/tennis", True),
    ("#", "/finance", True),
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),  # + matches an empty level
    ("+", "sport", True),
    ("+", "/finance", False),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+/tennis/#", "sport/tennis/player1", True),
    ("sport/+/player1", "sport/tennis/player1", True),
    ("sport/+/player1", "sport/tennis/player2", False),
    ("a/b", "a/B", False),  # topics are case sensitive
    ("a/b", "a/b/", False),
]


def _filter_matrix(server, client_factory, cases):
    """Subscribe one client per distinct filter, publish every topic then a sentinel, and return
    {filter: set of topics delivered}."""
    filters = sorted({f for f, _, _ in cases})
    topics = sorted({t for _, t, _ in cases})
    sentinel = "zz/sentinel"
    subs = {}
    for f in filters:
        c = client_factory(server).connect()
        c.subscribe([f, sentinel])
        subs[f] = c
    pub = client_factory(server).connect()
    for t in topics:
        pub.publish(t, t.encode())
    pub.publish(sentinel, b"end")
    got = {}
    for f, c in subs.items():
        before = c.collect_until(sentinel, b"end")
        got[f] = [m.topic for m in before]
        for m in before:
            assert m.payload == m.topic.encode()
    return got


def test_wildcards(server, client_factory):
    """Topic filters with + and # match as in section 4.7 [MQTT-4.7.1-2] [MQTT-4.7.1-3]; each
    matching message is delivered exactly once [MQTT-3.3.5-1]."""
    got = _filter_matrix(server, client_factory, WILDCARD_CASES)
    wrong = []
    for f, t, expected in WILDCARD_CASES:
        n = got[f].count(t)
        if (expected and n != 1) or (not expected and n != 0):
            wrong.append(f"filter {f!r} topic {t!r}: delivered {n}x, expected {'1x' if expected else 'not'}")
    assert not wrong, "\n".join(wrong)


DOLLAR_CASES = [
    ("#", "{p}/x", False),  # [MQTT-4.7.2-1]
    ("+/x", "{p}/x", False),  # [MQTT-4.7.2-1]
    ("+/#", "{p}/x", False),
    ("{p}/#", "{p}/x", True),
    ("{p}/+", "{p}/x", True),
    ("{p}/x", "{p}/x", True),
    ("#", "x/{p}", True),  # only a leading $ is special
]


# Not $SYS: both brokers refuse client PUBLISHes there (the spec lets a server reserve $ topics);
# that wildcards skip the broker's own $SYS topics is test_sys_topics.py's.
@pytest.mark.parametrize("prefix", ["$test"])
def test_dollar_topics_not_matched_by_leading_wildcards(server, client_factory, prefix):
    """Filters starting with # or + do not match topics starting with $ [MQTT-4.7.2-1];
    filters that name the $ level do."""
    cases = [(f.format(p=prefix), t.format(p=prefix), e) for f, t, e in DOLLAR_CASES]
    got = _filter_matrix(server, client_factory, cases)
    wrong = []
    for f, t, expected in cases:
        n = got[f].count(t)
        if (expected and n != 1) or (not expected and n != 0):
            wrong.append(f"filter {f!r} topic {t!r}: delivered {n}x, expected {'1x' if expected else 'not'}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("sub_proto,pub_proto", [
    (MQTTv31, MQTTv311), (MQTTv311, MQTTv31), (MQTTv31, MQTTv31)], ids=["31->311", "311->31", "31->31"])
def test_mqtt31_and_311_interoperate(server, client_factory, sub_proto, pub_proto):
    """An MQTT 3.1 (MQIsdp) client and a 3.1.1 client exchange messages both ways."""
    sub = client_factory(server, protocol=sub_proto).connect()
    sub.subscribe("mixed/#")
    pub = client_factory(server, protocol=pub_proto).connect()
    pub.publish("mixed/x", b"from the other protocol")
    sub.expect_message("mixed/x", b"from the other protocol")


def test_unsubscribe_stops_delivery(server, client_factory):
    """After UNSUBACK the server no longer delivers on that filter [MQTT-3.10.4-2]; other
    subscriptions of the client are untouched."""
    sub = client_factory(server).connect()
    sub.subscribe(["u/1", "u/#", "u/sentinel"])
    pub = client_factory(server).connect()
    pub.publish("u/1", b"before")
    pub.publish("u/sentinel", b"1")
    # Both u/1 and u/# match: one or two copies arrive (3.1.1 allows either).
    got = sub.collect_until("u/sentinel", b"1")
    assert got and all(m.topic == "u/1" for m in got)

    sub.unsubscribe(["u/1", "u/#"])
    pub.publish("u/1", b"after")
    pub.publish("u/sentinel", b"2")
    assert sub.collect_until("u/sentinel", b"2") == []
    sub.assert_still_connected()


def test_unsubscribe_unknown_filter_is_acknowledged(server, client_factory):
    """UNSUBSCRIBE of a filter the client never subscribed still gets UNSUBACK [MQTT-3.10.4-5]."""
    c = client_factory(server).connect()
    c.unsubscribe("never/subscribed")
    c.assert_still_connected()


def test_keepalive_pings_keep_connection_up(server, client_factory):
    """With keepalive 1 s paho sends PINGREQ each second; the server answers PINGRESP [MQTT-3.12.4-1]
    and keeps the connection over several keepalive periods."""
    sub = client_factory(server).connect(keepalive=1)
    sub.subscribe("ka")
    sub.wait_pingresps(3, timeout=8)
    sub.assert_still_connected()
    pub = client_factory(server).connect()
    round_trip(pub, sub, "ka")


def test_raw_pingreq_gets_pingresp(server):
    """PINGREQ is answered with PINGRESP (0xD0 0x00) [MQTT-3.12.4-1]."""
    with RawConnection(server) as raw:
        raw.handshake()
        for _ in range(3):
            raw.send(PINGREQ_BYTES)
            p = raw.recv_packet()
            assert (p.ptype, p.flags, p.body) == (PINGRESP, 0, b"")


def test_ordering_1000_messages(server, client_factory):
    """1000 QoS 0 messages from one publisher on one topic arrive in publish order [MQTT-4.6.0-6]."""
    sub = client_factory(server).connect()
    sub.subscribe("order")
    pub = client_factory(server).connect()
    infos = [pub.publish_nowait("order", str(i).encode()) for i in range(1000)]
    infos[-1].wait_for_publish(10)
    got = [int(m.payload) for m in sub.collect(1000, timeout=20)]
    assert got == list(range(1000))


def test_publish_to_own_subscription(server, client_factory):
    """A client subscribed to a topic receives its own publications (3.1.1 has no no-local)."""
    c = client_factory(server).connect()
    c.subscribe("self/t")
    round_trip(c, c, "self/t")


def test_overlapping_subscriptions_deliver_at_least_once(server, client_factory):
    """Overlapping filters of one client: the message is delivered (once or once per match,
    both allowed by 3.1.1 section 3.3.5)."""
    c = client_factory(server).connect()
    c.subscribe(["ov/+", "ov/#", "ov/end"])
    pub = client_factory(server).connect()
    pub.publish("ov/x", b"m")
    pub.publish("ov/end", b"e")
    got = c.collect_until("ov/end", b"e")
    assert 1 <= len(got) <= 2 and all(m.topic == "ov/x" for m in got)


def test_resubscribe_replaces_subscription(server, client_factory):
    """Subscribing twice to the same filter replaces the subscription: one copy [MQTT-3.8.4-3]."""
    c = client_factory(server).connect()
    c.subscribe("re/t")
    c.subscribe("re/t")
    c.subscribe("re/end")
    pub = client_factory(server).connect()
    pub.publish("re/t", b"m")
    pub.publish("re/end", b"e")
    assert [m.topic for m in c.collect_until("re/end", b"e")] == ["re/t"]


# ---------------------------------------------------------------------------
# mosquitto_pub / mosquitto_sub
# ---------------------------------------------------------------------------


def _cli_conn_args(srv, version):
    args = ["-h", srv.host, "-p", str(srv.port), "-V", version]
    if srv.tls:
        args += ["--cafile", srv.ca_cert]
    return args


def _run_cli_pair(srv, version):
    # stdbuf: mosquitto_sub's -d lines are block-buffered into a pipe otherwise, and "received
    # SUBACK" is the event that says it is safe to publish.
    sub = subprocess.Popen(
        ["stdbuf", "-oL", "mosquitto_sub", *_cli_conn_args(srv, version),
         "-t", "cli/t", "-C", "1", "-v", "-d", "-W", "15"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines: "queue.Queue[str]" = queue.Queue()
        pump_lines(sub.stdout, lines)
        wait_for_line(lines, r"received SUBACK", timeout=10)
        pub = subprocess.run(
            ["mosquitto_pub", *_cli_conn_args(srv, version), "-t", "cli/t", "-m", "hello from cli"],
            capture_output=True, text=True, timeout=10)
        assert pub.returncode == 0, f"mosquitto_pub failed: {pub.stdout}{pub.stderr}"
        wait_for_line(lines, r"^cli/t hello from cli$", timeout=10)
        assert sub.wait(10) == 0
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()


@pytest.mark.parametrize("version", ["mqttv311", "mqttv31"])
def test_mosquitto_cli_clients_tcp(server, version):
    """mosquitto_sub -C 1 receives what mosquitto_pub sends (3.1.1 and 3.1)."""
    _run_cli_pair(server, version)


def test_mosquitto_cli_clients_tls(tls_server):
    """The same over TLS, the CLI clients verifying the certificate with --cafile."""
    _run_cli_pair(tls_server, "mqttv311")


def test_mosquitto_cli_rejects_untrusted_certificate(tls_server, tmp_path):
    """A client that does not trust the certificate fails the handshake; the server survives it
    (teardown checks the clean exit)."""
    other = tmp_path / "other.crt"
    subprocess.run(["bash", str(GEN_CERT), str(other), str(tmp_path / "other.key")],
                   check=True, capture_output=True, timeout=60)
    r = subprocess.run(["mosquitto_pub", "-h", tls_server.host, "-p", str(tls_server.port), "--cafile",
                        str(other), "-t", "x", "-m", "y"], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    _run_cli_pair(tls_server, "mqttv311")
