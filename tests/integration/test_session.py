"""Sessions: clean session 0 and 1, the CONNACK session-present flag, offline queues,
re-delivery on reconnect, and client-id takeover (MQTT 3.1.1 sections 3.1.2.4, 3.1.4,
3.2.2.2, 4.1, 4.4).

Whenever a test needs a session to be offline before publishing to it, it
waits for the broker's log line about the end of that connection
(``wait_gone``), so nothing is published to a connection that is still
being torn down.

Zero-length client ids (accepted with clean session 1, refused with 0x02 with
clean session 0) are covered by test_connect.py and not repeated here.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time

import pytest

from helpers import (CONNACK, SUBACK, Closed, RawConnection, connect_packet, free_port, port_accepts,
                     subscribe_packet, unique_id)
from mqtt_support import (PUBACK, PUBCOMP, PUBREC, PUBREL, ack_packet, assert_silent, expect_ack, parse_publish,
                          publish_acked, publish_bytes, recv_publish, track, wait_gone)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _paho(server, client_factory, cid: str, clean: bool):
    c = client_factory(server, client_id=cid, clean_session=clean)
    track(c)
    return c


def _publisher(server, client_factory):
    p = client_factory(server)
    track(p)
    return p.connect()


def _close_and_wait(server, client, cid: str) -> None:
    """Disconnect a paho client cleanly and wait until the broker has the session offline."""
    mark = server.log.mark()
    client.close()
    wait_gone(server, cid, since=mark)


def _raw_connect(server, cid: str, clean: bool, expect_present: int) -> RawConnection:
    raw = RawConnection(server)
    raw.send(connect_packet(cid, clean=clean))
    p = raw.recv_packet()
    assert (p.ptype, p.body) == (CONNACK, bytes([expect_present, 0])), (
        f"expected CONNACK session present {expect_present}, got {p}")
    return raw


def _raw_drop(server, raw: RawConnection, cid: str) -> None:
    """Close a raw connection without DISCONNECT and wait until the broker noticed."""
    mark = server.log.mark()
    raw.close()
    wait_gone(server, cid, since=mark)


def _drain(raw: RawConnection, sentinel: bytes, timeout: float = 10.0) -> list:
    """Receive PUBLISHes until one with payload ``sentinel``, acknowledging every one as a
    well-behaved client does (PUBACK; PUBREC then PUBCOMP on PUBREL); return them (without the
    sentinel) in wire order."""
    got = []
    while True:
        p = raw.recv_packet(timeout)
        if p.ptype == PUBREL:
            raw.send(ack_packet(PUBCOMP, int.from_bytes(p.body[:2], "big")))
            continue
        m = parse_publish(p)
        if m.qos == 1:
            raw.send(ack_packet(PUBACK, m.packet_id))
        elif m.qos == 2:
            raw.send(ack_packet(PUBREC, m.packet_id))
        if m.payload == sentinel:
            return got
        got.append(m)


# --------------------------------------------------------------------------
# session present, subscriptions kept
# --------------------------------------------------------------------------


def test_session_present_flag(server, client_factory):
    """CONNACK's session-present flag, as paho reports it: 0 for a new clean-session-0 session
    [MQTT-3.2.2-3], 1 when resuming it [MQTT-3.2.2-2], 0 with clean session 1 [MQTT-3.2.2-1],
    and 0 again for clean session 0 right after, because the clean session discarded the
    stored one [MQTT-3.1.2-6]."""
    cid = unique_id("sp")
    seen = []
    for clean in (False, False, True, False):
        c = _paho(server, client_factory, cid, clean)
        c.connect()
        seen.append(c.tracker.session_present[-1])
        _close_and_wait(server, c, cid)
    assert seen == [0, 1, 0, 0]


def test_session_present_flag_raw(server):
    """The same on the wire: CONNACK body 0x00 0x00, then 0x01 0x00 for the resumed session
    (bit 0 of the acknowledge flags, the other bits 0)."""
    cid = unique_id("spr")
    raw = _raw_connect(server, cid, clean=False, expect_present=0)
    _raw_drop(server, raw, cid)
    raw = _raw_connect(server, cid, clean=False, expect_present=1)
    _raw_drop(server, raw, cid)
    raw = _raw_connect(server, cid, clean=True, expect_present=0)
    raw.close()


def test_subscriptions_survive_disconnect(server, client_factory):
    """With clean session 0 the subscriptions are part of the session and survive the
    connection [MQTT-3.1.2-4]: the client reconnects without subscribing and still gets
    messages on its filters, at the granted QoS."""
    cid = unique_id("subs")
    c = _paho(server, client_factory, cid, clean=False)
    c.connect()
    assert c.subscribe(["keep/a", "keep/b/#"], qos=1) == (1, 1)
    _close_and_wait(server, c, cid)
    c2 = _paho(server, client_factory, cid, clean=False)
    c2.connect()
    assert c2.tracker.session_present == [1]
    pub = _publisher(server, client_factory)
    publish_acked(pub, "keep/a", b"1", qos=1)
    publish_acked(pub, "keep/b/c", b"2", qos=2)
    got = c2.collect(2)
    assert sorted((m.topic, m.payload, m.qos) for m in got) == [("keep/a", b"1", 1), ("keep/b/c", b"2", 1)]


# --------------------------------------------------------------------------
# offline queue
# --------------------------------------------------------------------------


@pytest.mark.parametrize("qos", [1, 2])
def test_missed_messages_delivered_once_in_order_paho(server, client_factory, qos):
    """A persistent paho subscriber goes offline; 30 messages at QoS ``qos`` and, interleaved,
    QoS 0 messages are published. The QoS > 0 ones are stored [MQTT-3.1.2-5] and delivered on
    reconnect, each exactly once, in publish order [MQTT-4.6.0-6], at their QoS; the QoS 0 ones
    are not (QoS 0 is only optionally session state, 3.1.2.4; neither broker keeps it)."""
    cid = unique_id("miss")
    sub = _paho(server, client_factory, cid, clean=False)
    sub.connect()
    assert sub.subscribe("miss/t", qos=2) == (2,)
    _close_and_wait(server, sub, cid)
    pub = _publisher(server, client_factory)
    mids = []
    for i in range(30):
        mids.append(pub.paho.publish("miss/t", f"q{qos}-{i}".encode(), qos=qos).mid)
        mids.append(pub.paho.publish("miss/t", f"q0-{i}".encode(), qos=0).mid)
    pub.tracker.wait_completed(mids, timeout=10)
    sub2 = _paho(server, client_factory, cid, clean=False)
    sub2.connect()
    assert sub2.tracker.session_present == [1]
    publish_acked(pub, "miss/t", b"live", qos=2)  # QoS 2: nothing sent before it can overtake it
    got = sub2.collect_until("miss/t", b"live", timeout=10)
    assert [(m.payload, m.qos) for m in got] == [(f"q{qos}-{i}".encode(), qos) for i in range(30)]


def test_missed_mixed_qos_wire_order_raw(server, client_factory):
    """On the wire, the stored QoS 1 and QoS 2 messages come each once, with DUP=0 (first
    transmission, [MQTT-3.3.1-3]) and distinct packet ids, and for each QoS in the order they
    were published ("for the same Topic and QoS" [MQTT-4.6.0-6]); QoS 0 ones are not stored.
    Our broker keeps one queue, so it also keeps the order across QoS levels (Mosquitto 2.0.11
    sends the QoS 1 ones first, which the spec allows)."""
    cid = unique_id("mixr")
    raw = _raw_connect(server, cid, clean=False, expect_present=0)
    raw.send(subscribe_packet([("mix/t", 2)], packet_id=1))
    assert raw.recv_packet().ptype == SUBACK
    _raw_drop(server, raw, cid)
    pub = _publisher(server, client_factory)
    sent = []
    mids = []
    for i in range(15):
        q = (1, 2, 0)[i % 3]
        mids.append(pub.paho.publish("mix/t", f"{i}".encode(), qos=q).mid)
        if q:
            sent.append((f"{i}".encode(), q))
    pub.tracker.wait_completed(mids)
    with _raw_connect(server, cid, clean=False, expect_present=1) as raw:
        publish_acked(pub, "mix/t", b"live", qos=1)
        got = _drain(raw, b"live")
    for q in (1, 2):
        assert [m.payload for m in got if m.qos == q] == [p for p, qq in sent if qq == q], f"QoS {q}"
    assert sorted((m.payload, m.qos) for m in got) == sorted(sent)
    if server.ours:
        assert [(m.payload, m.qos) for m in got] == sent
    assert not any(m.dup for m in got)
    assert len({m.packet_id for m in got}) == len(got)


@pytest.mark.ours_only(reason="--max-queued is our flag; Mosquitto drops the newest, not the oldest")
def test_offline_queue_bound_keeps_newest(server_factory, client_factory):
    """With --max-queued 10, 25 QoS 1 messages published while the persistent subscriber is
    offline leave the newest 10 (ours drops the oldest), delivered in order on reconnect; the
    drop is logged with the client id."""
    server = server_factory("--max-queued", "10")
    cid = unique_id("bound")
    sub = _paho(server, client_factory, cid, clean=False)
    sub.connect()
    sub.subscribe("bound/t", qos=1)
    _close_and_wait(server, sub, cid)
    mark = server.log.mark()
    pub = _publisher(server, client_factory)
    pub.tracker.wait_completed([pub.paho.publish("bound/t", f"{i}".encode(), qos=1).mid for i in range(25)])
    line = server.log.wait_for(rf"client {cid}: message queue full \(10 messages\), dropped", since=mark)
    assert "dropped" in line
    sub2 = _paho(server, client_factory, cid, clean=False)
    sub2.connect()
    publish_acked(pub, "bound/t", b"live", qos=1)
    got = [m.payload for m in sub2.collect_until("bound/t", b"live")]
    assert got == [f"{i}".encode() for i in range(15, 25)]


def test_offline_queue_holds_500(server, client_factory):
    """Well below both brokers' default bound of 1000, every one of 500 QoS 1 messages published
    while offline is kept and delivered on reconnect, in order, once (the inflight window of 20
    is refilled as the subscriber acknowledges)."""
    cid = unique_id("q500")
    sub = _paho(server, client_factory, cid, clean=False)
    sub.connect()
    sub.subscribe("q500/t", qos=1)
    _close_and_wait(server, sub, cid)
    pub = _publisher(server, client_factory)
    pub.tracker.wait_completed([pub.paho.publish("q500/t", f"{i}".encode(), qos=1).mid for i in range(500)],
                               timeout=20)
    sub2 = _paho(server, client_factory, cid, clean=False)
    sub2.connect()
    publish_acked(pub, "q500/t", b"live", qos=1)
    got = [m.payload for m in sub2.collect_until("q500/t", b"live", timeout=20)]
    assert got == [f"{i}".encode() for i in range(500)]


# --------------------------------------------------------------------------
# re-delivery of unacknowledged messages
# --------------------------------------------------------------------------


def test_unacked_qos1_resent_with_dup(server, client_factory):
    """A QoS 1 PUBLISH the subscriber did not acknowledge is re-sent when it reconnects with
    clean session 0, with its original packet id [MQTT-4.4.0-1] and DUP=1 [MQTT-3.3.1-1];
    once PUBACKed it is not sent again."""
    cid = unique_id("dup1")
    raw = _raw_connect(server, cid, clean=False, expect_present=0)
    raw.send(subscribe_packet([("dup1/t", 1)], packet_id=1))
    assert raw.recv_packet().ptype == SUBACK
    pub = _publisher(server, client_factory)
    publish_acked(pub, "dup1/t", b"m", qos=1)
    first = recv_publish(raw)
    assert (first.payload, first.qos, first.dup) == (b"m", 1, False)
    _raw_drop(server, raw, cid)
    raw = _raw_connect(server, cid, clean=False, expect_present=1)
    again = recv_publish(raw)
    assert (again.payload, again.qos, again.dup, again.packet_id) == (b"m", 1, True, first.packet_id)
    raw.send(ack_packet(PUBACK, again.packet_id))
    assert_silent(raw, 0.5, "acknowledged message must not come again")
    _raw_drop(server, raw, cid)
    with _raw_connect(server, cid, clean=False, expect_present=1) as raw:
        assert_silent(raw, 0.5, "nothing left to re-send after PUBACK")


def test_unacked_messages_resent_in_original_order(server, client_factory):
    """Several unacknowledged QoS 1 and 2 PUBLISHes are re-sent on reconnect in the order of
    the original sends, with their original packet ids and DUP=1 [MQTT-4.4.0-1]
    [MQTT-4.6.0-1]."""
    cid = unique_id("dupn")
    raw = _raw_connect(server, cid, clean=False, expect_present=0)
    raw.send(subscribe_packet([("dupn/t", 2)], packet_id=1))
    assert raw.recv_packet().ptype == SUBACK
    pub = _publisher(server, client_factory)
    for i in range(6):
        publish_acked(pub, "dupn/t", f"{i}".encode(), qos=1 + i % 2)
    first = [recv_publish(raw) for _ in range(6)]
    assert [m.payload for m in first] == [f"{i}".encode() for i in range(6)]
    _raw_drop(server, raw, cid)
    with _raw_connect(server, cid, clean=False, expect_present=1) as raw:
        again = [recv_publish(raw) for _ in range(6)]
        assert [(m.payload, m.qos, m.packet_id, m.dup) for m in again] == [
            (m.payload, m.qos, m.packet_id, True) for m in first]


def test_qos2_resend_publish_or_pubrel(server, client_factory):
    """QoS 2 to a subscriber that reconnects with clean session 0 [MQTT-4.4.0-1]: a PUBLISH that
    got no PUBREC is re-sent as PUBLISH (DUP=1, same id); one that got PUBREC is not re-sent as
    PUBLISH, the PUBREL is re-sent instead (same id) [MQTT-4.3.3-1]."""
    cid = unique_id("dup2")
    raw = _raw_connect(server, cid, clean=False, expect_present=0)
    raw.send(subscribe_packet([("dup2/t", 2)], packet_id=1))
    assert raw.recv_packet().ptype == SUBACK
    pub = _publisher(server, client_factory)
    publish_acked(pub, "dup2/t", b"recd", qos=2)
    publish_acked(pub, "dup2/t", b"unacked", qos=2)
    a, b = recv_publish(raw), recv_publish(raw)
    assert (a.payload, b.payload) == (b"recd", b"unacked")
    raw.send(ack_packet(PUBREC, a.packet_id))
    expect_ack(raw, PUBREL, a.packet_id)
    _raw_drop(server, raw, cid)  # no PUBCOMP for a, no PUBREC for b
    with _raw_connect(server, cid, clean=False, expect_present=1) as raw:
        resent = [raw.recv_packet(), raw.recv_packet()]
        kinds = sorted((p.ptype, p.flags) for p in resent)
        assert kinds == [(3, 0x08 | 0x04), (PUBREL, 0x02)], resent  # PUBLISH DUP QoS 2, PUBREL
        rel = next(p for p in resent if p.ptype == PUBREL)
        assert rel.body == a.packet_id.to_bytes(2, "big")
        m = parse_publish(next(p for p in resent if p.ptype == 3))
        assert (m.payload, m.packet_id, m.dup) == (b"unacked", b.packet_id, True)
        raw.send(ack_packet(PUBCOMP, a.packet_id) + ack_packet(PUBREC, m.packet_id))
        expect_ack(raw, PUBREL, m.packet_id)
        raw.send(ack_packet(PUBCOMP, m.packet_id))
        assert_silent(raw, 0.5, "both flows completed")


def test_inbound_qos2_exactly_once_across_reconnect(server, client_factory):
    """A publisher with clean session 0 sends PUBLISH QoS 2 id=7, gets PUBREC, loses the
    connection before PUBREL, reconnects and re-sends the PUBLISH (DUP=1, same id,
    [MQTT-4.4.0-1]): the server answers PUBREC again and does not deliver it twice
    [MQTT-4.3.3-2]; PUBREL gets PUBCOMP."""
    sub = client_factory(server).connect()
    sub.subscribe("eox/t", qos=2)
    cid = unique_id("eox")
    raw = _raw_connect(server, cid, clean=False, expect_present=0)
    raw.send(publish_bytes("eox/t", b"once", 2, 7))
    expect_ack(raw, PUBREC, 7)
    _raw_drop(server, raw, cid)
    with _raw_connect(server, cid, clean=False, expect_present=1) as raw:
        raw.send(publish_bytes("eox/t", b"once", 2, 7, dup=True))
        expect_ack(raw, PUBREC, 7)
        raw.send(ack_packet(PUBREL, 7))
        expect_ack(raw, PUBCOMP, 7)
        raw.send(publish_bytes("eox/t", b"end", 2, 8))
        expect_ack(raw, PUBREC, 8)
        raw.send(ack_packet(PUBREL, 8))
        expect_ack(raw, PUBCOMP, 8)
    assert [m.payload for m in sub.collect_until("eox/t", b"end")] == [b"once"]


# --------------------------------------------------------------------------
# clean session 1
# --------------------------------------------------------------------------


def test_clean_session_discards_previous_session(server, client_factory):
    """Connecting with clean session 1 discards the stored session [MQTT-3.1.2-6]: no session
    present, no queued messages, no subscriptions; and that clean session is not kept after it
    ends either, so the next clean-session-0 connection starts empty."""
    cid = unique_id("cs")
    c = _paho(server, client_factory, cid, clean=False)
    c.connect()
    c.subscribe("cs/t", qos=1)
    _close_and_wait(server, c, cid)
    pub = _publisher(server, client_factory)
    publish_acked(pub, "cs/t", b"queued", qos=1)

    c2 = _paho(server, client_factory, cid, clean=True)
    c2.connect()
    assert c2.tracker.session_present == [0]
    c2.subscribe("cs/sentinel", qos=1)
    publish_acked(pub, "cs/t", b"live", qos=1)
    publish_acked(pub, "cs/sentinel", b"s", qos=1)
    assert c2.collect_until("cs/sentinel", b"s") == []  # neither the queued nor the live one
    _close_and_wait(server, c2, cid)

    publish_acked(pub, "cs/t", b"after", qos=1)
    publish_acked(pub, "cs/sentinel", b"s2", qos=1)
    c3 = _paho(server, client_factory, cid, clean=False)
    c3.connect()
    assert c3.tracker.session_present == [0]
    c3.subscribe("cs/sentinel2", qos=1)
    publish_acked(pub, "cs/t", b"live2", qos=1)
    publish_acked(pub, "cs/sentinel2", b"s", qos=1)
    assert c3.collect_until("cs/sentinel2", b"s") == []


def test_clean_session_client_gets_nothing_after_reconnect(server, client_factory):
    """With clean session 1 nothing is stored while the client is away (3.1.2.4): messages
    published between two clean connections are not delivered, and its subscriptions are gone."""
    cid = unique_id("cs1")
    c = _paho(server, client_factory, cid, clean=True)
    c.connect()
    c.subscribe("cs1/t", qos=1)
    _close_and_wait(server, c, cid)
    pub = _publisher(server, client_factory)
    publish_acked(pub, "cs1/t", b"missed", qos=1)
    c2 = _paho(server, client_factory, cid, clean=True)
    c2.connect()
    c2.subscribe("cs1/sentinel", qos=1)
    publish_acked(pub, "cs1/t", b"not subscribed", qos=1)
    publish_acked(pub, "cs1/sentinel", b"s", qos=1)
    assert c2.collect_until("cs1/sentinel", b"s") == []


# --------------------------------------------------------------------------
# client-id takeover
# --------------------------------------------------------------------------


def test_takeover_disconnects_old_paho_client(server, client_factory):
    """A new connection with a client id in use makes the server disconnect the existing client
    [MQTT-3.1.4-2]: the old paho client sees the connection drop; the new one works."""
    cid = unique_id("tk")
    old = client_factory(server, client_id=cid).connect()
    new = client_factory(server, client_id=cid).connect()
    old.wait_disconnected()
    new.subscribe("tk/t", qos=1)
    pub = _publisher(server, client_factory)
    publish_acked(pub, "tk/t", b"to new", qos=1)
    assert new.expect_message("tk/t", b"to new").qos == 1
    new.assert_still_connected()


def test_takeover_with_clean_session_0_resumes_session(server, client_factory):
    """Taking over a live clean-session-0 connection with clean session 0 resumes its session
    [MQTT-3.1.2-4]: session present 1, the subscriptions carry over, and a QoS 1 message the old
    connection had not acknowledged is re-sent to the new one with DUP=1 [MQTT-4.4.0-1]."""
    cid = unique_id("tk0")
    old = _raw_connect(server, cid, clean=False, expect_present=0)
    old.send(subscribe_packet([("tk0/t", 1)], packet_id=1))
    assert old.recv_packet().ptype == SUBACK
    pub = _publisher(server, client_factory)
    publish_acked(pub, "tk0/t", b"unacked", qos=1)
    first = recv_publish(old)
    with old, _raw_connect(server, cid, clean=False, expect_present=1) as new:
        old.expect_closed()
        m = recv_publish(new)
        assert (m.payload, m.packet_id, m.dup) == (b"unacked", first.packet_id, True)
        new.send(ack_packet(PUBACK, m.packet_id))
        publish_acked(pub, "tk0/t", b"next", qos=1)
        m = recv_publish(new)
        assert (m.payload, m.dup) == (b"next", False)
        new.send(ack_packet(PUBACK, m.packet_id))


def test_takeover_of_clean_session_does_not_resume_it(server, client_factory):
    """The state of a clean-session-1 session must not be reused by any later session
    [MQTT-3.1.2-6], also when a clean-session-0 connection takes the id over while the old one is
    still connected: session present 0 and no subscription carried over."""
    cid = unique_id("tk1")
    old = _raw_connect(server, cid, clean=True, expect_present=0)
    old.send(subscribe_packet([("tk1/t", 1)], packet_id=1))
    assert old.recv_packet().ptype == SUBACK
    with old, _raw_connect(server, cid, clean=False, expect_present=0) as new:
        old.expect_closed()
        new.send(subscribe_packet([("tk1/sentinel", 1)], packet_id=2))
        assert new.recv_packet().ptype == SUBACK
        pub = _publisher(server, client_factory)
        publish_acked(pub, "tk1/t", b"must not arrive", qos=1)
        publish_acked(pub, "tk1/sentinel", b"s", qos=1)
        m = recv_publish(new)
        assert m.payload == b"s", m
    # Clean up: drop the stored session.
    _raw_connect(server, cid, clean=True, expect_present=0).close()


def test_takeover_by_clean_session_discards_persistent_session(server, client_factory):
    """A clean-session-1 connection taking over a live clean-session-0 one discards that session
    [MQTT-3.1.2-6]: session present 0, no subscriptions, no re-sent messages."""
    cid = unique_id("tk2")
    old = _raw_connect(server, cid, clean=False, expect_present=0)
    old.send(subscribe_packet([("tk2/t", 1)], packet_id=1))
    assert old.recv_packet().ptype == SUBACK
    pub = _publisher(server, client_factory)
    publish_acked(pub, "tk2/t", b"unacked", qos=1)
    recv_publish(old)
    with old, _raw_connect(server, cid, clean=True, expect_present=0) as new:
        old.expect_closed()
        new.send(subscribe_packet([("tk2/sentinel", 1)], packet_id=2))
        p = new.recv_packet()
        assert p.ptype == SUBACK, f"expected only the SUBACK, got {p}"
        publish_acked(pub, "tk2/t", b"must not arrive", qos=1)
        publish_acked(pub, "tk2/sentinel", b"s", qos=1)
        m = recv_publish(new)
        assert m.payload == b"s", m


def test_takeover_storm_leaves_exactly_one_connection(server):
    """Ten connections CONNECT with the same client id at once: each is accepted in turn and
    closed by the next [MQTT-3.1.4-2], so in the end exactly one is still open and working, and
    every other one saw at most its CONNACK and then the close. Nothing else may leak from the
    discarded connections."""
    cid = unique_id("storm")
    conns = [RawConnection(server) for _ in range(10)]
    try:
        for c in conns:
            c.send(connect_packet(cid, clean=False))
        alive = []
        for c in conns:
            packets, closed = [], False
            try:
                while True:
                    packets.append(c.recv_packet(timeout=2))
            except Closed:
                closed = True
            except AssertionError:
                pass  # quiet for 2 s: still open
            # session present 0 for the first one processed, 1 for the others (clean session 0)
            assert all(p.ptype == CONNACK and p.body in (b"\x00\x00", b"\x01\x00") for p in packets), packets
            assert len(packets) <= 1, packets
            if not closed:
                assert len(packets) == 1, "an open connection must have had its CONNACK"
                alive.append(c)
        assert len(alive) == 1, f"{len(alive)} connections still open"
        survivor = alive[0]
        survivor.send(subscribe_packet([("storm/t", 1)], packet_id=3))
        assert survivor.recv_packet().ptype == SUBACK
    finally:
        for c in conns:
            c.close()


def test_inflight_then_queued_after_reconnect(server, client_factory):
    """25 QoS 1 messages to a persistent raw subscriber that acknowledges none: the default
    window of 20 (both brokers) is in flight, 5 wait in the session. After a reconnect the 20
    come again first, same ids, DUP=1, in the original order [MQTT-4.4.0-1] [MQTT-4.6.0-1];
    acknowledging them releases the other 5, new (DUP=0), in publish order [MQTT-4.6.0-6]."""
    cid = unique_id("iq")
    raw = _raw_connect(server, cid, clean=False, expect_present=0)
    raw.send(subscribe_packet([("iq/t", 1)], packet_id=1))
    assert raw.recv_packet().ptype == SUBACK
    pub = _publisher(server, client_factory)
    pub.tracker.wait_completed([pub.paho.publish("iq/t", f"{i}".encode(), qos=1).mid for i in range(25)])
    first = [recv_publish(raw) for _ in range(20)]
    assert [m.payload for m in first] == [f"{i}".encode() for i in range(20)]
    _raw_drop(server, raw, cid)
    with _raw_connect(server, cid, clean=False, expect_present=1) as raw:
        again = [recv_publish(raw) for _ in range(20)]
        assert [(m.payload, m.packet_id, m.dup) for m in again] == [(m.payload, m.packet_id, True) for m in first]
        raw.send(b"".join(ack_packet(PUBACK, m.packet_id) for m in again))
        rest = [recv_publish(raw) for _ in range(5)]
        assert [(m.payload, m.dup) for m in rest] == [(f"{i}".encode(), False) for i in range(20, 25)]
        raw.send(b"".join(ack_packet(PUBACK, m.packet_id) for m in rest))
        assert_silent(raw, 0.5, "all 25 delivered")


def test_resumed_session_does_not_resend_retained(server, client_factory):
    """Retained messages go out when a subscription is made [MQTT-3.3.1-6]; resuming a session
    makes no new subscription, so the retained message is not sent again on reconnect (and it
    is not part of the session state [MQTT-3.1.2-7])."""
    pub = _publisher(server, client_factory)
    publish_acked(pub, "rr/t", b"retained", qos=1, retain=True)
    cid = unique_id("rr")
    raw = _raw_connect(server, cid, clean=False, expect_present=0)
    raw.send(subscribe_packet([("rr/t", 1)], packet_id=1))
    assert raw.recv_packet().ptype == SUBACK
    m = recv_publish(raw)
    assert (m.payload, m.retain) == (b"retained", True)
    raw.send(ack_packet(PUBACK, m.packet_id))
    raw.send(bytes([0xE0, 0]))  # DISCONNECT
    raw.expect_closed()
    raw.close()
    with _raw_connect(server, cid, clean=False, expect_present=1) as raw:
        publish_acked(pub, "rr/t", b"live", qos=1)
        m = recv_publish(raw)
        assert (m.payload, m.retain) == (b"live", False), m


def test_qos0_subscription_gets_nothing_queued(server, client_factory):
    """A persistent subscription granted QoS 0 turns QoS 1 and 2 messages into QoS 0 deliveries
    [MQTT-3.8.4-6], and QoS 0 deliveries are not queued for an offline session (3.1.2.4: only
    optionally part of the state; neither broker keeps them). A QoS 1 subscription of the same
    session does get its message."""
    cid = unique_id("q0s")
    c = _paho(server, client_factory, cid, clean=False)
    c.connect()
    assert c.subscribe("q0s/zero", qos=0) == (0,)
    assert c.subscribe("q0s/one", qos=1) == (1,)
    _close_and_wait(server, c, cid)
    pub = _publisher(server, client_factory)
    publish_acked(pub, "q0s/zero", b"a", qos=1)
    publish_acked(pub, "q0s/zero", b"b", qos=2)
    publish_acked(pub, "q0s/one", b"c", qos=2)
    c2 = _paho(server, client_factory, cid, clean=False)
    c2.connect()
    publish_acked(pub, "q0s/one", b"end", qos=1)
    got = [(m.topic, m.payload, m.qos) for m in c2.collect_until("q0s/one", b"end")]
    assert got == [("q0s/one", b"c", 1)]


def test_unsubscribe_is_remembered_by_the_session(server, client_factory):
    """UNSUBSCRIBE changes the stored session: after reconnecting with clean session 0, the
    removed filter gets nothing [MQTT-3.10.4-2] while the kept one still delivers."""
    cid = unique_id("uns")
    c = _paho(server, client_factory, cid, clean=False)
    c.connect()
    c.subscribe(["uns/gone", "uns/kept"], qos=1)
    c.unsubscribe("uns/gone")
    _close_and_wait(server, c, cid)
    pub = _publisher(server, client_factory)
    publish_acked(pub, "uns/gone", b"x", qos=1)
    c2 = _paho(server, client_factory, cid, clean=False)
    c2.connect()
    assert c2.tracker.session_present == [1]
    publish_acked(pub, "uns/gone", b"y", qos=1)
    publish_acked(pub, "uns/kept", b"end", qos=1)
    assert c2.collect_until("uns/kept", b"end") == []


@pytest.mark.ours_only(reason="--max-inflight/--max-queued are our flags")
def test_online_slow_subscriber_queue_is_bounded_too(server_factory, client_factory):
    """The --max-queued bound holds for a connected subscriber that falls behind, not only for
    an offline session: with --max-inflight 2 --max-queued 5, 12 QoS 1 messages to a subscriber
    that acknowledges nothing leave 2 in flight and the newest 5 queued; the other 5 are dropped
    (and logged) although the publisher got its PUBACKs. Mosquitto's max_queued_messages does
    the same for online clients (dropping the newest instead)."""
    server = server_factory("--max-inflight", "2", "--max-queued", "5")
    cid = unique_id("slow")
    with _raw_connect(server, cid, clean=True, expect_present=0) as raw:
        raw.send(subscribe_packet([("slow/t", 1)], packet_id=1))
        assert raw.recv_packet().ptype == SUBACK
        mark = server.log.mark()
        pub = _publisher(server, client_factory)
        pub.tracker.wait_completed([pub.paho.publish("slow/t", f"{i}".encode(), qos=1).mid for i in range(12)])
        server.log.wait_for(rf"client {cid}: message queue full \(5 messages\), dropped the oldest", since=mark)
        got = []
        for _ in range(7):
            m = recv_publish(raw)
            got.append(m.payload)
            raw.send(ack_packet(PUBACK, m.packet_id))
        assert got == [f"{i}".encode() for i in [0, 1, 7, 8, 9, 10, 11]]
        assert_silent(raw, 0.5, "the dropped ones never come")



class _OwnBroker:
    """Our binary started by the test itself rather than by server_factory, so that a crash is
    this test's failure (and can be an expected failure) instead of an error in the fixture's
    teardown."""

    def __init__(self, server_bin, tmp_path, *args):
        self.host, self.port, self.tls, self.ca_cert = "127.0.0.1", free_port(), False, None
        self.log_path = tmp_path / "own-broker.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([str(server_bin), "--non-tls", "--addr", f"{self.host}:{self.port}", *args],
                                     cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        self.wait_until(lambda: port_accepts(self.host, self.port), "the port to accept")

    def wait_until(self, predicate, what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"waiting for {what}: exit code {self.proc.poll()}; log tail:\n"
                                     + self.log_path.read_text()[-3000:])
            time.sleep(0.02)  # polling the port / the log file: there is no event to block on

    def wait_log(self, pattern: str) -> None:
        self.wait_until(lambda: re.search(pattern, self.log_path.read_text()), f"log line {pattern!r}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._log.close()
        return rc


@pytest.mark.ours_only(reason="--max-queued is our flag")
def test_max_queued_zero_never_crashes(server_bin, tmp_path, client_factory):
    """--max-queued 0 must either be refused at start-up (as --max-inflight 0 is) or be run with:
    "no queue beyond the inflight window" (QoS 1 messages to an offline persistent session are
    dropped) or "no limit" (Mosquitto's meaning of max_queued_messages 0: all are kept). The
    broker must keep running and exit 0 on SIGTERM."""
    # Flags are validated before the address: with a bad address the process exits at once,
    # naming --max-queued if it refuses 0.
    r = subprocess.run([str(server_bin), "--non-tls", "--addr", "not-an-address", "--max-queued", "0"],
                       capture_output=True, text=True, timeout=10, cwd=tmp_path)
    assert r.returncode != 0, r
    if "max-queued" in r.stderr:
        return  # refused: fine
    broker = _OwnBroker(server_bin, tmp_path, "--max-queued", "0")
    try:
        cid = unique_id("mq0")
        raw = _raw_connect(broker, cid, clean=False, expect_present=0)
        raw.send(subscribe_packet([("mq0/t", 1)], packet_id=1))
        assert raw.recv_packet().ptype == SUBACK
        raw.close()
        broker.wait_log(rf"client {cid} disconnected")
        pub = client_factory(broker)
        track(pub)
        pub.connect()
        try:
            pub.tracker.wait_completed(
                [pub.paho.publish("mq0/t", f"{i}".encode(), qos=1).mid for i in range(200)], timeout=10)
        finally:
            assert broker.proc.poll() is None, (
                f"broker died with exit code {broker.proc.returncode}; log tail:\n"
                + broker.log_path.read_text()[-1500:])
        with _raw_connect(broker, cid, clean=False, expect_present=1) as again:
            publish_acked(pub, "mq0/t", b"end", qos=1)
            got = [m.payload for m in _drain(again, b"end")]
        assert got in ([], [f"{i}".encode() for i in range(200)]), got[:30]
        pub.close()
    finally:
        rc = broker.stop()
    assert rc == 0, f"broker exit code {rc}; log tail:\n{broker.log_path.read_text()[-3000:]}"
