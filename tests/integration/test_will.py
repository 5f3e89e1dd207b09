"""Will messages (MQTT 3.1.1 sections 3.1.2.5-3.1.2.7 and 3.14).

The will is published when the network connection ends without a DISCONNECT
[MQTT-3.1.2-8]: the client process dies, the keep-alive runs out, the server
closes the connection for a protocol violation, or a new connection takes the
client id over. It is not published after DISCONNECT [MQTT-3.1.2-10].

Absence of a will is checked with a sentinel: a message published on the will
topic (at QoS 2, so paho cannot hand it over before an earlier QoS 2 message)
after the server has certainly closed the connection (the raw socket saw the
close), then a short bounded wait for anything late.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import textwrap
import time

import pytest

from helpers import (PINGREQ_BYTES, PINGRESP, RawConnection, connect_packet, encode_string, pump_lines, unique_id,
                     wait_for_line)
from mqtt_support import assert_no_message, publish_acked, track, wait_gone

WILL_FLAG, WILL_RETAIN = 0x04, 0x20


def will_connect(client_id: str, topic: str, payload: bytes, qos: int = 0, retain: bool = False,
                 keepalive: int = 60, clean: bool = True) -> bytes:
    flags = (0x02 if clean else 0) | WILL_FLAG | (qos << 3) | (WILL_RETAIN if retain else 0)
    return connect_packet(client_id, flags=flags, keepalive=keepalive,
                          payload_extra=encode_string(topic) + encode_string(payload))


def _subscriber(server, client_factory, filt: str, qos: int = 2):
    s = client_factory(server).connect()
    assert s.subscribe(filt, qos=qos) == (qos,)
    return s


def _publisher(server, client_factory):
    p = client_factory(server)
    track(p)
    return p.connect()


def assert_no_will(server, client_factory, sub, topic: str) -> None:
    """``sub`` (subscribed to ``topic`` at QoS 2) gets nothing but a sentinel sent now."""
    pub = _publisher(server, client_factory)
    publish_acked(pub, topic, b"sentinel", qos=2)
    got = sub.collect_until(topic, b"sentinel")
    assert got == [], f"unexpected will: {got}"
    assert_no_message(sub, 0.5, "no will after the sentinel either")


CHILD = textwrap.dedent("""
    import sys, time
    import paho.mqtt.client as mqtt
    host, port, cid, topic = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    c = mqtt.Client(client_id=cid, clean_session=True, protocol=mqtt.MQTTv311)
    c.will_set(topic, b"process died", qos=1, retain=False)
    c.on_connect = lambda cl, ud, fl, rc: print(f"connected rc={rc}", flush=True)
    c.connect(host, port, keepalive=60)
    c.loop_forever()
""")


def test_will_on_killed_process(server, client_factory):
    """A paho client in another process is killed with SIGKILL: the kernel closes its socket
    without DISCONNECT and the server publishes its will [MQTT-3.1.2-8], once, at the will's
    QoS 1, not retained."""
    cid = unique_id("kill")
    topic = f"will1/{cid}"
    sub = _subscriber(server, client_factory, "will1/#")
    child = subprocess.Popen([sys.executable, "-c", CHILD, server.host, str(server.port), cid, topic],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = queue.Queue()
    pump_lines(child.stdout, lines)
    try:
        wait_for_line(lines, r"^connected rc=0$", timeout=10)
        child.kill()
        child.wait(5)
        m = sub.expect_message(topic, b"process died", timeout=5)
        assert (m.qos, m.retain) == (1, False)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)
        child.stdout.close()
    assert_no_will(server, client_factory, sub, topic)  # and only once


def test_will_on_keepalive_expiry(server, client_factory):
    """A raw client with keep-alive 1 s that goes silent: the server disconnects it after 1.5 s
    [MQTT-3.1.2-24] and publishes the will [MQTT-3.1.2-8]. Ours within 1.4-2.8 s (its timer
    ticks once a second); Mosquitto 2.0.11 checks keep-alives on a coarse timer (~5 s)."""
    cid = unique_id("ka")
    topic = f"will2/{cid}"
    sub = _subscriber(server, client_factory, "will2/#")
    with RawConnection(server) as raw:
        raw.handshake(will_connect(cid, topic, b"timed out", qos=1, keepalive=1))
        start = time.monotonic()
        limit = 2.8 if server.ours else 8.0
        m = sub.expect_message(topic, b"timed out", timeout=limit + 2)
        elapsed = time.monotonic() - start
        raw.expect_closed(timeout=2)
    assert 1.4 <= elapsed <= limit, f"will after {elapsed:.2f}s"
    assert m.qos == 1


@pytest.mark.parametrize("garbage", [
    b"\x00\x00",  # reserved packet type 0
    b"\x32\x03\x00\x01a",  # PUBLISH QoS 1, topic "a", no room left for the packet id
    b"\x82\x04\x00\x01\x00\x00",  # SUBSCRIBE without any topic filter [MQTT-3.8.3-3]
], ids=["reserved-type", "truncated-publish", "empty-subscribe"])
def test_will_on_protocol_violation(server, client_factory, garbage):
    """Garbage after a valid CONNECT: the server closes the connection [MQTT-4.8.0-1] and, as the
    client did not DISCONNECT, publishes the will [MQTT-3.1.2-8]."""
    cid = unique_id("pv")
    topic = f"will3/{cid}"
    sub = _subscriber(server, client_factory, "will3/#")
    with RawConnection(server) as raw:
        raw.handshake(will_connect(cid, topic, b"violated", qos=2))
        raw.send(garbage)
        raw.expect_closed()
    m = sub.expect_message(topic, b"violated")
    assert m.qos == 2


def test_will_on_takeover(server, client_factory):
    """A second connection with the same client id closes the first [MQTT-3.1.4-2]; the first
    ended without DISCONNECT, so its will is published [MQTT-3.1.2-8]. The new connection's
    own will is not."""
    cid = unique_id("to")
    topic = f"will4/{cid}"
    sub = _subscriber(server, client_factory, "will4/#")
    with RawConnection(server) as first, RawConnection(server) as second:
        first.handshake(will_connect(cid, topic, b"old", qos=1))
        second.handshake(will_connect(cid, topic, b"new", qos=1))
        first.expect_closed()
        m = sub.expect_message(topic, b"old")
        assert m.qos == 1
        second.send(PINGREQ_BYTES)
        assert second.recv_packet().ptype == PINGRESP
        assert_no_will(server, client_factory, sub, topic)


def test_no_will_after_disconnect_raw(server, client_factory):
    """After DISCONNECT the server discards the will without publishing it [MQTT-3.1.2-10]
    [MQTT-3.14.4-3] and closes the connection."""
    cid = unique_id("dc")
    topic = f"will5/{cid}"
    sub = _subscriber(server, client_factory, "will5/#")
    with RawConnection(server) as raw:
        raw.handshake(will_connect(cid, topic, b"must not", qos=1))
        raw.send(bytes([0xE0, 0x00]))
        assert raw.expect_closed() == []
    assert_no_will(server, client_factory, sub, topic)


def test_no_will_after_disconnect_paho(server, client_factory):
    """The same with paho: disconnect() sends DISCONNECT, so the will set with will_set() is
    not published [MQTT-3.1.2-10]."""
    cid = unique_id("dcp")
    topic = f"will6/{cid}"
    sub = _subscriber(server, client_factory, "will6/#")
    c = client_factory(server, client_id=cid)
    c.paho.will_set(topic, b"must not", qos=2)
    c.connect()
    mark = server.log.mark()
    c.close()
    wait_gone(server, cid, since=mark)  # the broker has seen the end of the connection
    assert_no_will(server, client_factory, sub, topic)


@pytest.mark.parametrize("will_qos", [0, 1, 2])
def test_will_qos_and_retain_honoured(server, client_factory, will_qos):
    """The will is published at its Will QoS (3.1.2.6; delivered at min(Will QoS, granted)
    [MQTT-3.8.4-6]) and, with Will Retain 1, as a retained message [MQTT-3.1.2-17]: a live
    subscriber gets it with RETAIN 0 [MQTT-3.3.1-9], a later subscriber gets the retained will
    with RETAIN 1 [MQTT-3.3.1-8]."""
    cid = unique_id("wr")
    topic = f"will7/{cid}"
    live = _subscriber(server, client_factory, "will7/#", qos=2)
    with RawConnection(server) as raw:
        raw.handshake(will_connect(cid, topic, b"retained will", qos=will_qos, retain=True))
        raw.send(b"\x00\x00")  # protocol violation: the server closes and publishes the will
        raw.expect_closed()
    m = live.expect_message(topic, b"retained will")
    assert (m.qos, m.retain) == (will_qos, False)
    later = client_factory(server).connect()
    later.subscribe(topic, qos=2)
    m = later.expect_message(topic, b"retained will")
    assert (m.qos, m.retain) == (will_qos, True)
    low = client_factory(server).connect()
    low.subscribe(topic, qos=0)
    m = low.expect_message(topic, b"retained will")
    assert (m.qos, m.retain) == (0, True)


def test_will_without_retain_is_not_retained(server, client_factory):
    """With Will Retain 0 the will is published as a non-retained message [MQTT-3.1.2-16]: a
    subscriber that joins after it was published gets nothing."""
    cid = unique_id("wn")
    topic = f"will8/{cid}"
    live = _subscriber(server, client_factory, "will8/#")
    with RawConnection(server) as raw:
        raw.handshake(will_connect(cid, topic, b"not retained", qos=1, retain=False))
        raw.send(b"\x00\x00")
        raw.expect_closed()
    live.expect_message(topic, b"not retained")
    later = _subscriber(server, client_factory, topic)
    assert_no_will(server, client_factory, later, topic)


def test_will_payload_binary_max_length(server, client_factory):
    """The will message is binary data carried unchanged (3.1.3.3): every byte value, and a
    payload of 65535 bytes, the largest a will can carry."""
    cid = unique_id("wb")
    topic = f"will9/{cid}"
    payload = bytes(range(256)) * 255 + bytes(range(255))
    assert len(payload) == 65535
    sub = _subscriber(server, client_factory, "will9/#")
    with RawConnection(server) as raw:
        raw.handshake(will_connect(cid, topic, payload, qos=1))
        raw.close()  # network close without DISCONNECT
    m = sub.expect_message(topic)
    assert m.payload == payload


def test_will_published_for_persistent_session(server, client_factory):
    """A client with clean session 0 that drops its connection also gets its will published
    (the will belongs to the connection, not the session) [MQTT-3.1.2-8]."""
    cid = unique_id("wp")
    topic = f"will10/{cid}"
    sub = _subscriber(server, client_factory, "will10/#")
    with RawConnection(server) as raw:
        raw.handshake(will_connect(cid, topic, b"persistent", qos=1, clean=False))
        raw.close()
    sub.expect_message(topic, b"persistent")
    # Clean up the stored session, so nothing lingers.
    with RawConnection(server) as raw:
        raw.handshake(connect_packet(cid, clean=True))


def test_only_the_dropped_clients_will_is_published(server, client_factory):
    """Two clients with wills on different topics: killing one publishes only its own will."""
    a, b = unique_id("wa"), unique_id("wb")
    sub = _subscriber(server, client_factory, "will11/#")
    with RawConnection(server) as ra, RawConnection(server) as rb:
        ra.handshake(will_connect(a, f"will11/{a}", b"a", qos=1))
        rb.handshake(will_connect(b, f"will11/{b}", b"b", qos=1))
        ra.close()
        sub.expect_message(f"will11/{a}", b"a")
        assert_no_will(server, client_factory, sub, f"will11/{b}")
        rb.send(PINGREQ_BYTES)
        assert rb.recv_packet().ptype == PINGRESP


def test_retained_empty_will_clears_retained_message(server, client_factory):
    """A will with Will Retain 1 and an empty message is published like a PUBLISH with RETAIN 1
    and a zero-byte payload: it reaches the current subscribers and removes the topic's
    retained message [MQTT-3.3.1-10] without being stored itself [MQTT-3.3.1-11]."""
    cid = unique_id("we")
    topic = f"will12/{cid}"
    pub = _publisher(server, client_factory)
    publish_acked(pub, topic, b"old retained", qos=1, retain=True)
    live = _subscriber(server, client_factory, topic)
    assert live.expect_message(topic, b"old retained").retain
    with RawConnection(server) as raw:
        raw.handshake(will_connect(cid, topic, b"", qos=1, retain=True))
        raw.send(b"\x00\x00")
        raw.expect_closed()
    m = live.expect_message(topic, b"")
    assert not m.retain
    later = _subscriber(server, client_factory, topic)
    assert_no_will(server, client_factory, later, topic)


@pytest.mark.parametrize("will_topic", ["will13/#", "will13/+/x", ""], ids=["hash", "plus", "empty"])
def test_will_topic_must_be_a_valid_topic_name(server, client_factory, will_topic):
    """The will is published as an Application Message, so its topic must be a valid topic name:
    no wildcards [MQTT-3.3.2-2], at least one character [MQTT-4.7.3-1]. Such a CONNECT is not
    accepted (the connection is closed, at most with a refusing CONNACK), and nothing is ever
    published on it."""
    sub = _subscriber(server, client_factory, "will13/#")
    with RawConnection(server) as raw:
        raw.send(will_connect(unique_id("wt"), will_topic, b"bad", qos=1))
        packets = raw.expect_closed()
        assert not any(p.ptype == 2 and p.body[1:2] == b"\x00" for p in packets), packets
    assert_no_will(server, client_factory, sub, "will13/sentinel")
