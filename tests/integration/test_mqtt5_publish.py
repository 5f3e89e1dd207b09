"""MQTT 5.0 PUBLISH: acknowledgement reason codes, Message Expiry Interval, Topic Aliases in both
directions, Receive Maximum, the client's Maximum Packet Size, request/response and the
properties forwarded unaltered, and Payload Format Indicator validation (MQTT 5.0 sections
3.3-3.7, 4.3, 4.9)."""

from __future__ import annotations

import time

import pytest

from helpers import unique_id
from mqtt5_support import (PUBACK, PUBCOMP, PUBREC, PUBREL, RC_NO_MATCHING_SUBSCRIBERS, RC_PACKET_ID_NOT_FOUND,
                           RC_PAYLOAD_FORMAT_INVALID, RC_PROTOCOL_ERROR, RC_TOPIC_ALIAS_INVALID, Ack5, P, Pub5, Raw5,
                           ack5, expect_disconnect_reason, publish5, sub_opts, v5, v5_factory,  # noqa: F401
                           xfail_on_mosquitto)
from mqtt_support import wait_gone


def expect_ack(raw: Raw5, ptype: int, packet_id: int) -> Ack5:
    a = raw.expect(Ack5)
    assert (a.ptype, a.packet_id) == (ptype, packet_id), f"expected type {ptype} id {packet_id}, got {a}"
    return a


# --------------------------------------------------------------------------
# Reason codes of the acknowledgements
# --------------------------------------------------------------------------


@pytest.mark.parametrize("qos", [1, 2])
def test_puback_pubrec_reason_codes(server, v5_factory, qos):
    """PUBACK (QoS 1) or PUBREC (QoS 2) for a message that has subscribers: 0x00 (Success);
    for one without subscribers: 0x00 or 0x10 (No matching subscribers) (sections 3.4.2.1,
    3.5.2.1). Both are one of the allowed reason codes [MQTT-3.4.2-1] [MQTT-3.5.2-1]."""
    sub = v5(v5_factory, server)
    sub.subscribe("ack/with", qos=1)
    with Raw5(server) as raw:
        raw.handshake5()
        want = PUBACK if qos == 1 else PUBREC
        raw.send(publish5("ack/with", b"x", qos=qos, packet_id=1))
        assert expect_ack(raw, want, 1).reason == 0x00
        raw.send(publish5("ack/without", b"x", qos=qos, packet_id=2))
        assert expect_ack(raw, want, 2).reason in (0x00, RC_NO_MATCHING_SUBSCRIBERS)
        if qos == 2:
            for pid in (1, 2):
                raw.send(ack5(PUBREL, pid))
                assert expect_ack(raw, PUBCOMP, pid).reason == 0x00
    sub.expect_message("ack/with", b"x")


@pytest.mark.ours_only(reason="Mosquitto 2.0.11 answers PUBCOMP 0x00; 0x92 is allowed but not required")
def test_pubrel_for_unknown_packet_id(server):
    """PUBREL for a Packet Identifier the server has no QoS 2 state for: PUBCOMP for that id
    [MQTT-4.3.3-11] with reason 0x92 (Packet Identifier not found) (section 3.7.2.1); the
    connection stays up."""
    with Raw5(server) as raw:
        raw.handshake5()
        raw.send(ack5(PUBREL, 77))
        assert expect_ack(raw, PUBCOMP, 77).reason == RC_PACKET_ID_NOT_FOUND
        raw.send(publish5("after/pubrel", b"x", qos=1, packet_id=78))
        expect_ack(raw, PUBACK, 78)


# --------------------------------------------------------------------------
# Message Expiry Interval
# --------------------------------------------------------------------------


def test_message_expiry_while_queued(server, v5_factory):
    """Messages queued for an offline session: one with Message Expiry Interval 1 s is deleted
    once the interval has passed [MQTT-3.3.2-5]; one with 60 s is delivered after the
    reconnect with the interval minus the time it waited in the server, here 55..60 s
    [MQTT-3.3.2-6]. A message without expiry is delivered without the property."""
    cid = unique_id("mexp")
    sub = v5_factory(server, cid, clean_start=False, connect_props=[(P.SESSION_EXPIRY_INTERVAL, 60)])
    sub.connect()
    sub.subscribe("mexp/t", qos=1)
    mark = server.log.mark()
    sub.disconnect()
    wait_gone(server, cid, since=mark)
    pub = v5(v5_factory, server)
    pub.publish("mexp/t", b"short", qos=1, props=[(P.MESSAGE_EXPIRY_INTERVAL, 1)])
    pub.publish("mexp/t", b"long", qos=1, props=[(P.MESSAGE_EXPIRY_INTERVAL, 60)])
    pub.publish("mexp/t", b"forever", qos=1)
    time.sleep(2.5)  # let the short one expire: the passing of time is what is tested
    c = sub.connect(clean_start=False)
    assert c.session_present, "the session (expiry 60 s) is still there"
    got = sub.collect(2, timeout=5)
    assert [m.payload for m in got] == [b"long", b"forever"], [(m.payload, m.props) for m in got]
    mei = got[0].props.get(P.MESSAGE_EXPIRY_INTERVAL)
    assert mei is not None and 55 <= mei <= 60, f"Message Expiry Interval {mei}"
    assert not got[1].props.has(P.MESSAGE_EXPIRY_INTERVAL), got[1].props
    sub.assert_no_message(0.5, "the expired message")


def test_retained_message_expiry(server, v5_factory):
    """A retained message with Message Expiry Interval 1 s is sent to a subscriber that comes
    at once (with the remaining interval, at most 1 [MQTT-3.3.2-6]) but not to one that
    subscribes after 2.5 s [MQTT-3.3.2-5]; a retained message without expiry still is."""
    pub = v5(v5_factory, server)
    pub.publish("rexp/short", b"s", qos=1, retain=True, props=[(P.MESSAGE_EXPIRY_INTERVAL, 1)])
    pub.publish("rexp/keep", b"k", qos=1, retain=True)
    early = v5(v5_factory, server)
    early.subscribe("rexp/short", qos=1)
    m = early.expect_message("rexp/short", b"s")
    assert m.retain and m.props.get(P.MESSAGE_EXPIRY_INTERVAL) in (0, 1), m
    time.sleep(2.5)  # let it expire: the passing of time is what is tested
    late = v5(v5_factory, server)
    late.subscribe("rexp/#", qos=1)
    m = late.get_message()
    assert (m.topic, m.payload, m.retain) == ("rexp/keep", b"k", True), m
    late.assert_no_message(0.5, "the expired retained message")


# --------------------------------------------------------------------------
# Topic aliases
# --------------------------------------------------------------------------


def test_topic_alias_from_client(server, v5_factory):
    """A PUBLISH with a Topic Name and Topic Alias 1 sets the mapping; one with an empty Topic
    Name and alias 1 is on that topic; a new Topic Name with the same alias replaces the
    mapping (section 3.3.2.3.4; the server accepts aliases up to its Topic Alias Maximum
    [MQTT-3.3.2-12]). The subscriber (which announced no Topic Alias Maximum) gets every
    message with its full topic and no alias [MQTT-3.1.2-27]."""
    sub = v5(v5_factory, server)
    sub.subscribe("alias/#", qos=1)
    with Raw5(server) as raw:
        c = raw.handshake5()
        assert c.props.get(P.TOPIC_ALIAS_MAXIMUM, 0) >= 1, c.props
        sends = [("alias/x", b"one"), ("", b"two"), ("alias/y", b"three"), ("", b"four")]
        for i, (topic, payload) in enumerate(sends, start=1):
            raw.send(publish5(topic, payload, qos=1, packet_id=i, props=[(P.TOPIC_ALIAS, 1)]))
            expect_ack(raw, PUBACK, i)
    got = sub.collect(4)
    assert [(m.topic, m.payload) for m in got] == [
        ("alias/x", b"one"), ("alias/x", b"two"), ("alias/y", b"three"), ("alias/y", b"four")]
    assert all(not m.props.has(P.TOPIC_ALIAS) for m in got)


@pytest.mark.parametrize("which", ["above-maximum", "zero"])
def test_invalid_topic_alias(request, server, which):
    """A Topic Alias of 0 or above the Topic Alias Maximum the server announced is a Protocol
    Error: DISCONNECT 0x94 (Topic Alias invalid), then close (section 3.3.4; [MQTT-3.2.2-17]
    [MQTT-3.3.2-8] forbid the client to send them)."""
    if which == "zero":
        xfail_on_mosquitto(request, server, "answers Topic Alias 0 with DISCONNECT 0x81, section 3.3.4 says 0x94")
    with Raw5(server) as raw:
        c = raw.handshake5()
        tam = c.props.get(P.TOPIC_ALIAS_MAXIMUM, 0)
        assert tam < 65535, "no alias value is above a maximum of 65535"
        alias = tam + 1 if which == "above-maximum" else 0
        raw.send(publish5("alias/bad", b"x", qos=1, packet_id=1, props=[(P.TOPIC_ALIAS, alias)]))
        expect_disconnect_reason(raw, RC_TOPIC_ALIAS_INVALID)


def test_unknown_topic_alias(server):
    """An empty Topic Name with a Topic Alias that has no mapping on this connection is a
    Protocol Error (section 3.3.2.3.4): DISCONNECT 0x82, then close. Mappings do not carry over
    from another connection [MQTT-3.3.2-7]."""
    cid = unique_id("ua")
    with Raw5(server) as first:
        first.handshake5(cid)
        first.send(publish5("alias/known", b"x", qos=1, packet_id=1, props=[(P.TOPIC_ALIAS, 1)]))
        expect_ack(first, PUBACK, 1)
    with Raw5(server) as raw:
        raw.handshake5(cid)
        raw.send(publish5("", b"x", qos=1, packet_id=1, props=[(P.TOPIC_ALIAS, 1)]))
        expect_disconnect_reason(raw, RC_PROTOCOL_ERROR)


def resolve_aliases(pubs: list[Pub5], maximum: int) -> list[tuple[str, bytes]]:
    """Apply the receiver's side of section 3.3.2.3.4 to PUBLISHes from the server; check
    every alias is in 1..maximum [MQTT-3.3.2-11] and every empty topic has a mapping."""
    mapping: dict[int, str] = {}
    out = []
    for p in pubs:
        alias = p.props.get(P.TOPIC_ALIAS)
        assert len(p.props.all(P.TOPIC_ALIAS)) <= 1, p
        if alias is None:
            assert p.topic, f"empty Topic Name without Topic Alias: {p}"
            out.append((p.topic, p.payload))
            continue
        assert 1 <= alias <= maximum, f"Topic Alias {alias} outside 1..{maximum} [MQTT-3.3.2-11]: {p}"
        if p.topic:
            mapping[alias] = p.topic
        else:
            assert alias in mapping, f"empty Topic Name with alias {alias} never set: {p}"
        out.append((mapping[alias], p.payload))
    return out


def test_topic_alias_to_client(server, v5_factory):
    """A client announcing Topic Alias Maximum 5 gets three messages on one topic. If the server
    uses aliases, each is in 1..5 [MQTT-3.3.2-11], the first PUBLISH for an alias carries the
    topic and later ones may carry an empty topic with the alias; resolved, all three are on
    the right topic, in order. Aliases are per connection [MQTT-3.3.2-7]: after a reconnect
    the first message carries its topic again."""
    cid = unique_id("sa")
    pub = v5(v5_factory, server)
    for round_ in range(2):
        with Raw5(server) as raw:
            raw.handshake5(cid, props=[(P.TOPIC_ALIAS_MAXIMUM, 5)])
            assert raw.subscribe([("salias/#", sub_opts(0))]) == [0]
            for i in range(3):
                pub.publish("salias/t", f"m{i}".encode(), qos=0)
            pubs = [raw.expect(Pub5) for _ in range(3)]
        assert pubs[0].topic == "salias/t", f"the first PUBLISH on a connection names its topic: {pubs[0]}"
        assert resolve_aliases(pubs, 5) == [("salias/t", b"m0"), ("salias/t", b"m1"), ("salias/t", b"m2")]


@pytest.mark.ours_only(reason="Mosquitto 2.0.11 does not send topic aliases; ours does")
def test_server_uses_topic_aliases(server, v5_factory):
    """Ours uses an alias towards a client that accepts them: the second and third messages on
    the same topic come with an empty Topic Name and the alias set by the first."""
    pub = v5(v5_factory, server)
    with Raw5(server) as raw:
        raw.handshake5(props=[(P.TOPIC_ALIAS_MAXIMUM, 5)])
        raw.subscribe([("salias/#", sub_opts(0))])
        for i in range(3):
            pub.publish("salias/t", f"m{i}".encode(), qos=0)
        pubs = [raw.expect(Pub5) for _ in range(3)]
    aliases = [p.props.get(P.TOPIC_ALIAS) for p in pubs]
    assert aliases[0] is not None and aliases == [aliases[0]] * 3, pubs
    assert [p.topic for p in pubs] == ["salias/t", "", ""], pubs


@pytest.mark.parametrize("announced", [None, 0], ids=["absent", "zero"])
def test_no_topic_alias_without_maximum(server, v5_factory, announced):
    """A client that announced no Topic Alias Maximum, or 0, never gets a Topic Alias
    [MQTT-3.1.2-27]: every PUBLISH carries its full topic."""
    pub = v5(v5_factory, server)
    props = [] if announced is None else [(P.TOPIC_ALIAS_MAXIMUM, announced)]
    with Raw5(server) as raw:
        raw.handshake5(props=props)
        raw.subscribe([("noalias/#", sub_opts(1))])
        for i in range(3):
            pub.publish("noalias/t", f"m{i}".encode(), qos=1)
        pubs = [raw.expect(Pub5) for _ in range(3)]
        for p in pubs:
            raw.send(ack5(PUBACK, p.packet_id))
    assert [(p.topic, p.payload) for p in pubs] == [("noalias/t", f"m{i}".encode()) for i in range(3)]
    assert not any(p.props.has(P.TOPIC_ALIAS) for p in pubs), pubs


# --------------------------------------------------------------------------
# Flow control and the client's limits
# --------------------------------------------------------------------------


def test_receive_maximum_limits_inflight(request, server, v5_factory):
    """A client announcing Receive Maximum 2 that does not acknowledge: of five QoS 1 messages
    only two PUBLISHes arrive [MQTT-3.3.4-9] [MQTT-4.9.0-2]; each PUBACK lets exactly one
    more through; the rest follow once acknowledged, in order."""
    xfail_on_mosquitto(request, server, "after the first PUBACK it sends two more PUBLISHes, three unacknowledged "
                                        "with Receive Maximum 2 [MQTT-3.3.4-9]")
    pub = v5(v5_factory, server)
    with Raw5(server) as raw:
        raw.handshake5(props=[(P.RECEIVE_MAXIMUM, 2)])
        assert raw.subscribe([("rmax/t", sub_opts(1))]) == [1]
        for i in range(5):
            assert pub.publish("rmax/t", f"m{i}".encode(), qos=1) in (0, None)
        first = [raw.expect(Pub5) for _ in range(2)]
        raw.assert_silent(0.7, "a third PUBLISH with two unacknowledged")
        raw.send(ack5(PUBACK, first[0].packet_id))
        third = raw.expect(Pub5)
        raw.assert_silent(0.5, "a fourth PUBLISH after one PUBACK")
        rest = []
        for p in [first[1], third]:
            raw.send(ack5(PUBACK, p.packet_id))
            rest.append(raw.expect(Pub5))
        for p in rest:
            raw.send(ack5(PUBACK, p.packet_id))
        raw.assert_silent(0.3, "more than five messages")
    assert [p.payload for p in first + [third] + rest] == [f"m{i}".encode() for i in range(5)]
    assert all(p.qos == 1 for p in first + [third] + rest)


def test_client_maximum_packet_size(server, v5_factory):
    """A client announcing Maximum Packet Size 100: a message whose PUBLISH would be larger is
    not sent to it [MQTT-3.1.2-24] but discarded as if sent [MQTT-3.1.2-25]; a small one is
    delivered, and the connection stays up."""
    sub = v5_factory(server, connect_props=[(P.MAXIMUM_PACKET_SIZE, 100)])
    sub.connect()
    sub.subscribe("mps/#", qos=1)
    pub = v5(v5_factory, server)
    pub.publish("mps/big", b"B" * 500, qos=1)
    pub.publish("mps/small", b"s" * 10, qos=1)
    assert sub.collect_until("mps/small", b"s" * 10) == [], "the 500-byte message was sent"
    sub.assert_no_message(0.3, "the big message late")
    assert sub.closed_count == 0 and not sub.disconnects
    pub.publish("mps/small", b"again", qos=1)
    sub.expect_message("mps/small", b"again")


# --------------------------------------------------------------------------
# Properties forwarded unaltered
# --------------------------------------------------------------------------

USER_PROPS = [("b", "2"), ("a", "1"), ("a", "3"), ("ключ", "значение"), ("empty", "")]


def test_request_response_properties_forwarded(server, v5_factory):
    """Request/response: the requester's Response Topic [MQTT-3.3.2-15], Correlation Data
    [MQTT-3.3.2-16], Content Type [MQTT-3.3.2-20], Payload Format Indicator [MQTT-3.3.2-4] and
    User Properties (all of them, duplicates included, in order [MQTT-3.3.2-17]
    [MQTT-3.3.2-18]) reach the responder unaltered; the response it publishes on the Response
    Topic with the Correlation Data reaches the requester the same way."""
    requester = v5(v5_factory, server)
    responder = v5(v5_factory, server)
    reply_topic = f"resp/{requester.client_id}"
    requester.subscribe(reply_topic, qos=1)
    responder.subscribe("req/#", qos=1)
    corr = bytes([0, 1, 2, 0xFF, 0xFE])
    requester.publish("req/time", "что сейчас?".encode(), qos=1, props=[
        (P.PAYLOAD_FORMAT_INDICATOR, 1), (P.CONTENT_TYPE, "text/plain; charset=utf-8"),
        (P.RESPONSE_TOPIC, reply_topic), (P.CORRELATION_DATA, corr),
        *[(P.USER_PROPERTY, kv) for kv in USER_PROPS]])
    req = responder.expect_message("req/time", "что сейчас?".encode())
    assert req.props.get(P.RESPONSE_TOPIC) == reply_topic
    assert req.props.get(P.CORRELATION_DATA) == corr
    assert req.props.get(P.CONTENT_TYPE) == "text/plain; charset=utf-8"
    assert req.props.get(P.PAYLOAD_FORMAT_INDICATOR) == 1
    assert req.props.user == USER_PROPS

    responder.publish(req.props.get(P.RESPONSE_TOPIC), b"\x00\x01binary", qos=1, props=[
        (P.CORRELATION_DATA, req.props.get(P.CORRELATION_DATA)), (P.PAYLOAD_FORMAT_INDICATOR, 0),
        (P.USER_PROPERTY, ("status", "ok"))])
    resp = requester.expect_message(reply_topic, b"\x00\x01binary")
    assert resp.props.get(P.CORRELATION_DATA) == corr
    assert resp.props.get(P.PAYLOAD_FORMAT_INDICATOR) == 0
    assert resp.props.user == [("status", "ok")]
    assert not resp.props.has(P.RESPONSE_TOPIC) and not resp.props.has(P.CONTENT_TYPE)


def test_properties_forwarded_at_each_qos(server, v5_factory):
    """The same properties arrive unaltered whatever the QoS of publication and subscription."""
    subs = {}
    for q in (0, 1, 2):
        s = v5(v5_factory, server)
        s.subscribe("fwd/t", qos=q)
        subs[q] = s
    pub = v5(v5_factory, server)
    for q in (0, 1, 2):
        pub.publish("fwd/t", f"q{q}".encode(), qos=q, props=[
            (P.CONTENT_TYPE, f"ct{q}"), *[(P.USER_PROPERTY, kv) for kv in USER_PROPS]])
    for sq, s in subs.items():
        got = s.collect(3)
        assert [m.payload for m in got] == [b"q0", b"q1", b"q2"]
        for q, m in enumerate(got):
            assert m.qos == min(q, sq)
            assert m.props.get(P.CONTENT_TYPE) == f"ct{q}" and m.props.user == USER_PROPS, m.props


# --------------------------------------------------------------------------
# Payload Format Indicator
# --------------------------------------------------------------------------


@pytest.mark.ours_only(reason="Mosquitto 2.0.11 does not validate payloads (the check is a MAY) and answers 0x10")
def test_payload_format_invalid(server, v5_factory):
    """A QoS 1 PUBLISH with Payload Format Indicator 1 and a payload that is not UTF-8: the
    server validates it and answers PUBACK 0x99 (Payload format invalid) (section 3.3.2.3.2,
    [MQTT-3.3.2-4]); the message is not delivered; the connection stays up and a valid
    UTF-8 message is delivered."""
    sub = v5(v5_factory, server)
    sub.subscribe("pfi/#", qos=1)
    with Raw5(server) as raw:
        raw.handshake5()
        raw.send(publish5("pfi/bad", b"\xff\xfe\xc3", qos=1, packet_id=1,
                          props=[(P.PAYLOAD_FORMAT_INDICATOR, 1)]))
        assert expect_ack(raw, PUBACK, 1).reason == RC_PAYLOAD_FORMAT_INVALID
        raw.send(publish5("pfi/good", "ok ✓".encode(), qos=1, packet_id=2,
                          props=[(P.PAYLOAD_FORMAT_INDICATOR, 1)]))
        assert expect_ack(raw, PUBACK, 2).reason == 0
    assert sub.collect_until("pfi/good") == [], "the invalid payload was delivered"
