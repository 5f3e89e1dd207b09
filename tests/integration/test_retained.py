"""Retained messages (MQTT 3.1.1 section 3.3.1.3 RETAIN, and 3.8.4).

How absence is checked: a retained message is sent after the SUBACK of the
SUBSCRIBE that established the subscription (both brokers send it right
away). So, after subscribing to the filter under test, the client subscribes
to a second topic that holds a retained "sentinel"; every retained message of
the first filter arrives before that sentinel, so what has not arrived by then
is not retained.
"""

from __future__ import annotations

import os

import pytest

from helpers import SUBACK, RawConnection, connect_packet, subscribe_packet, unique_id
from mqtt_support import PUBCOMP, PUBREC, PUBREL, ack_packet, expect_ack, publish_acked, recv_publish, track


def _publisher(server, client_factory):
    pub = client_factory(server)
    track(pub)
    return pub.connect()


def _retained_on_subscribe(server, client_factory, pub, filt: str, qos: int = 2, prefix: str = ""):
    """Subscribe a fresh client to ``filt`` and return the retained messages it gets, sorted by
    topic (the order across topics is not specified). Uses a retained sentinel (see module doc)."""
    sentinel = f"{prefix or filt.split('/')[0]}-sentinel/{os.urandom(3).hex()}"
    publish_acked(pub, sentinel, b"s", qos=2, retain=True)
    c = client_factory(server).connect()
    assert c.subscribe(filt, qos=qos) == (qos,)
    # QoS 2 for the sentinel: paho hands a QoS 2 message over at PUBREL, so a sentinel of lower
    # QoS could overtake a QoS 2 retained message sent before it.
    c.subscribe(sentinel, qos=2)
    got = c.collect_until(sentinel, b"s")
    return c, sorted(got, key=lambda m: m.topic)


def test_retained_stored_replaced_and_cleared(server, client_factory):
    """A PUBLISH with RETAIN 1 is stored and sent to later subscribers [MQTT-3.3.1-5]
    [MQTT-3.3.1-6] with RETAIN 1 [MQTT-3.3.1-8]; the next retained PUBLISH on the topic
    replaces it; one with an empty payload removes it [MQTT-3.3.1-10] and is not stored
    itself [MQTT-3.3.1-11]."""
    pub = _publisher(server, client_factory)
    publish_acked(pub, "ret1/t", b"v1", qos=1, retain=True)
    _, got = _retained_on_subscribe(server, client_factory, pub, "ret1/t")
    assert [(m.topic, m.payload, m.retain) for m in got] == [("ret1/t", b"v1", True)]

    publish_acked(pub, "ret1/t", b"v2", qos=1, retain=True)
    _, got = _retained_on_subscribe(server, client_factory, pub, "ret1/t")
    assert [(m.payload, m.retain) for m in got] == [(b"v2", True)]

    publish_acked(pub, "ret1/t", b"", qos=1, retain=True)
    _, got = _retained_on_subscribe(server, client_factory, pub, "ret1/t")
    assert got == []


def test_empty_retained_is_forwarded_to_subscribers(server, client_factory):
    """The zero-byte retained PUBLISH that clears a topic "will be processed as normal by the
    Server and sent to Clients with a subscription matching the topic name" [MQTT-3.3.1-10];
    as normal forwarding it carries RETAIN 0 [MQTT-3.3.1-9]."""
    pub = _publisher(server, client_factory)
    publish_acked(pub, "ret2/t", b"v", qos=1, retain=True)
    sub = client_factory(server).connect()
    sub.subscribe("ret2/t", qos=1)
    m = sub.expect_message("ret2/t", b"v")
    assert m.retain
    publish_acked(pub, "ret2/t", b"", qos=1, retain=True)
    m = sub.expect_message("ret2/t", b"")
    assert (m.retain, m.qos) == (False, 1)


def test_non_retained_publish_does_not_touch_retained(server, client_factory):
    """A PUBLISH with RETAIN 0 is neither stored nor does it remove or replace the retained
    message [MQTT-3.3.1-12], not even with an empty payload."""
    pub = _publisher(server, client_factory)
    publish_acked(pub, "ret3/t", b"kept", qos=1, retain=True)
    publish_acked(pub, "ret3/t", b"live", qos=1, retain=False)
    publish_acked(pub, "ret3/t", b"", qos=1, retain=False)
    publish_acked(pub, "ret3/other", b"never", qos=1, retain=False)
    _, got = _retained_on_subscribe(server, client_factory, pub, "ret3/#")
    assert [(m.topic, m.payload, m.retain) for m in got] == [("ret3/t", b"kept", True)]


def test_qos0_retained_replaces(server, client_factory):
    """A QoS 0 PUBLISH with RETAIN 1 discards the message previously retained for the topic
    [MQTT-3.3.1-7] (and both brokers store it as the new retained message, which the spec says
    they SHOULD)."""
    pub = _publisher(server, client_factory)
    publish_acked(pub, "ret4/t", b"old", qos=2, retain=True)
    publish_acked(pub, "ret4/t", b"new", qos=0, retain=True)
    _, got = _retained_on_subscribe(server, client_factory, pub, "ret4/t")
    assert [(m.payload, m.qos, m.retain) for m in got] == [(b"new", 0, True)]


@pytest.mark.parametrize("filt,expected", [
    ("ret5/#", ["ret5", "ret5/a", "ret5/a/b", "ret5/c"]),  # '#' includes the parent [MQTT-4.7.1-2]
    ("ret5/+", ["ret5/a", "ret5/c"]),
    ("ret5/+/b", ["ret5/a/b"]),
    ("+/a/#", ["other/a", "ret5/a", "ret5/a/b", "ret5x/a"]),
    ("ret5/a", ["ret5/a"]),
])
def test_retained_sent_on_wildcard_subscribe(server, client_factory, filt, expected):
    """On SUBSCRIBE the retained message of every topic matching the filter, wildcards included,
    is sent [MQTT-3.3.1-6], each with RETAIN 1 [MQTT-3.3.1-8], and no other (section 4.7)."""
    pub = _publisher(server, client_factory)
    for topic in ["ret5", "ret5/a", "ret5/a/b", "ret5/c", "ret5x/a", "other/a"]:
        publish_acked(pub, topic, f"r:{topic}".encode(), qos=1, retain=True)
    _, got = _retained_on_subscribe(server, client_factory, pub, filt, prefix="ret5")
    assert [(m.topic, m.payload, m.retain) for m in got] == [(t, f"r:{t}".encode(), True) for t in expected]


def test_retained_forwarded_live_with_retain_cleared(server, client_factory):
    """A retained PUBLISH forwarded to an already established subscription carries RETAIN 0
    [MQTT-3.3.1-9], at each subscriber's QoS; a subscriber that joins afterwards gets it with
    RETAIN 1 [MQTT-3.3.1-8]."""
    live = client_factory(server).connect()
    live.subscribe("ret6/#", qos=1)
    pub = _publisher(server, client_factory)
    publish_acked(pub, "ret6/t", b"v", qos=1, retain=True)
    m = live.expect_message("ret6/t", b"v")
    assert (m.retain, m.qos) == (False, 1)
    _, got = _retained_on_subscribe(server, client_factory, pub, "ret6/t")
    assert [(m.payload, m.retain, m.qos) for m in got] == [(b"v", True, 1)]


@pytest.mark.parametrize("stored_qos", [0, 1, 2])
def test_retained_qos_is_min_of_stored_and_granted(server, client_factory, stored_qos):
    """The server stores a retained message with its QoS [MQTT-3.3.1-5] and sends it to a new
    subscription at min(stored QoS, granted QoS) [MQTT-3.8.4-6]."""
    pub = _publisher(server, client_factory)
    publish_acked(pub, f"ret7/{stored_qos}", b"v", qos=stored_qos, retain=True)
    for granted in (0, 1, 2):
        _, got = _retained_on_subscribe(server, client_factory, pub, f"ret7/{stored_qos}", qos=granted)
        assert [(m.payload, m.retain, m.qos) for m in got] == [(b"v", True, min(stored_qos, granted))], (
            f"stored QoS {stored_qos}, granted {granted}")


def test_resubscribe_resends_retained(server, client_factory):
    """A SUBSCRIBE that replaces an existing subscription re-sends the matching retained
    messages [MQTT-3.8.4-3]."""
    pub = _publisher(server, client_factory)
    publish_acked(pub, "ret8/t", b"v", qos=1, retain=True)
    c = client_factory(server).connect()
    c.subscribe("ret8/t", qos=1)
    assert c.expect_message("ret8/t", b"v").retain
    c.subscribe("ret8/t", qos=1)
    assert c.expect_message("ret8/t", b"v").retain


def test_retained_qos2_raw_flow_on_subscribe(server, client_factory):
    """A retained QoS 2 message sent on SUBSCRIBE goes through the full QoS 2 flow: PUBLISH
    with RETAIN 1, DUP 0 and a packet id after the SUBACK, PUBREL on PUBREC [MQTT-4.3.3-1]."""
    pub = _publisher(server, client_factory)
    publish_acked(pub, "ret9/t", b"v", qos=2, retain=True)
    with RawConnection(server) as raw:
        raw.handshake(connect_packet(unique_id("r9")))
        raw.send(subscribe_packet([("ret9/t", 2)], packet_id=4))
        p = raw.recv_packet()
        assert (p.ptype, p.body) == (SUBACK, b"\x00\x04\x02")
        m = recv_publish(raw)
        assert (m.topic, m.payload, m.qos, m.retain, m.dup) == ("ret9/t", b"v", 2, True, False)
        raw.send(ack_packet(PUBREC, m.packet_id))
        expect_ack(raw, PUBREL, m.packet_id)
        raw.send(ack_packet(PUBCOMP, m.packet_id))


def test_retained_survives_publisher_disconnect(server, client_factory):
    """Retained messages are not part of the publisher's session state and outlive it
    [MQTT-3.1.2-7]: still there after the (clean-session) publisher disconnected."""
    pub = _publisher(server, client_factory)
    publish_acked(pub, "ret10/t", b"v", qos=1, retain=True)
    pub.close()
    pub2 = _publisher(server, client_factory)
    _, got = _retained_on_subscribe(server, client_factory, pub2, "ret10/t")
    assert [(m.payload, m.retain) for m in got] == [(b"v", True)]



def test_retained_dollar_topics_not_matched_by_leading_wildcards(server, client_factory):
    """Retained messages obey the same matching rules as live ones: a filter starting with '#'
    or '+' does not get the retained message of a topic starting with '$' [MQTT-4.7.2-1];
    "$ret12/#" does."""
    pub = _publisher(server, client_factory)
    publish_acked(pub, "$ret12/t", b"dollar", qos=1, retain=True)
    publish_acked(pub, "ret12/t", b"plain", qos=1, retain=True)
    for filt, expected in [("#", ["ret12/t"]), ("+/t", ["ret12/t"]), ("$ret12/#", ["$ret12/t"])]:
        _, got = _retained_on_subscribe(server, client_factory, pub, filt, prefix="x12")
        topics = [m.topic for m in got if not m.topic.startswith("x12-sentinel/")]
        assert topics == expected, f"{filt}: {topics}"
