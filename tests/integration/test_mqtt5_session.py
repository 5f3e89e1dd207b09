"""MQTT 5.0 sessions and wills: Session Expiry Interval (on CONNECT and changed on DISCONNECT),
Will Delay Interval, DISCONNECT with Will Message and will properties (MQTT 5.0 sections
3.1.2.5, 3.1.2.11.2, 3.1.3.2, 3.14.2.2.2, 4.1).

Where a wait is the behaviour under test (a session or a will delay running out) the test
sleeps for that long; everything else waits on events. Absence of a will is checked after
the time it would have come, plus a bounded wait."""

from __future__ import annotations

import time

import pytest

from helpers import unique_id
from mqtt5_support import (RC_DISCONNECT_WITH_WILL, RC_PROTOCOL_ERROR, P, Raw5, Will, disconnect5,
                           expect_disconnect_reason, v5, v5_factory)  # noqa: F401
from mqtt_support import wait_gone

FOREVER = 0xFFFFFFFF


def _session_client(v5_factory, server, cid: str, expiry: int | None):
    props = [] if expiry is None else [(P.SESSION_EXPIRY_INTERVAL, expiry)]
    return v5_factory(server, cid, clean_start=False, connect_props=props)


def _go_offline(server, client, **disconnect_kw) -> None:
    """DISCONNECT and wait until the broker has the client offline."""
    mark = server.log.mark()
    client.disconnect(**disconnect_kw)
    wait_gone(server, client.client_id, since=mark)


# --------------------------------------------------------------------------
# Session Expiry Interval
# --------------------------------------------------------------------------


@pytest.mark.parametrize("expiry", [None, 0], ids=["absent", "zero"])
def test_session_expiry_zero_ends_session_at_disconnect(server, v5_factory, expiry):
    """Session Expiry Interval absent or 0: the session ends when the connection closes
    (section 3.1.2.11.2), even with Clean Start 0; the next CONNECT with Clean Start 0 finds no
    session (Session Present 0 [MQTT-3.2.2-3]) and the old subscription is gone."""
    cid = unique_id("se0")
    c = _session_client(v5_factory, server, cid, expiry)
    assert c.connect().session_present is False
    c.subscribe("se0/t", qos=1)
    _go_offline(server, c)
    assert c.connect().session_present is False, "session kept despite Session Expiry Interval 0"
    pub = v5(v5_factory, server)
    pub.publish("se0/t", b"x", qos=1)
    c.assert_no_message(0.5, "a message for the old subscription")


def test_session_kept_within_expiry(server, v5_factory):
    """Session Expiry Interval 2 s: the session is stored after the connection closes
    [MQTT-3.1.2-23]; a QoS 1 message published meanwhile is queued [MQTT-4.5.0-1] and delivered
    after a reconnect within 1 s, which finds Session Present 1 [MQTT-3.2.2-3]."""
    cid = unique_id("se2")
    c = _session_client(v5_factory, server, cid, 2)
    c.connect()
    c.subscribe("se2/t", qos=1)
    _go_offline(server, c)
    offline_at = time.monotonic()
    v5(v5_factory, server).publish("se2/t", b"queued", qos=1)
    assert time.monotonic() - offline_at < 1.0
    assert c.connect().session_present is True
    m = c.expect_message("se2/t", b"queued")
    assert m.qos == 1


def test_session_expires_and_forever_stays(server, v5_factory):
    """Two sessions, Session Expiry Interval 2 s and 0xFFFFFFFF (never expires, section
    3.1.2.11.2), offline for 3.5 s: the first is discarded [MQTT-4.1.0-2] (Session Present 0,
    its queued message gone), the second is present with its queued message."""
    short = _session_client(v5_factory, server, unique_id("sx"), 2)
    forever = _session_client(v5_factory, server, unique_id("sf"), FOREVER)
    for c in (short, forever):
        c.connect()
        c.subscribe("sx/t", qos=1)
        _go_offline(server, c)
    v5(v5_factory, server).publish("sx/t", b"queued", qos=1)
    time.sleep(3.5)  # longer than the 2 s expiry: the passing of time is what is tested
    assert short.connect().session_present is False, "session kept beyond its expiry interval"
    assert forever.connect().session_present is True, "session with expiry 0xFFFFFFFF gone"
    forever.expect_message("sx/t", b"queued")
    short.assert_no_message(0.3, "a message queued for the expired session")


def test_disconnect_sets_new_session_expiry(server, v5_factory):
    """A DISCONNECT carrying Session Expiry Interval 0 replaces the 60 s given on CONNECT
    (section 3.14.2.2.2): the session ends with the connection, so the reconnect finds Session
    Present 0. Control: a DISCONNECT without the property keeps the 60 s session."""
    cid = unique_id("sd")
    c = _session_client(v5_factory, server, cid, 60)
    c.connect()
    c.subscribe("sd/t", qos=1)
    _go_offline(server, c)
    assert c.connect().session_present is True
    _go_offline(server, c, props=[(P.SESSION_EXPIRY_INTERVAL, 0)])
    assert c.connect().session_present is False


def test_disconnect_cannot_set_expiry_after_zero(server):
    """If the CONNECT's Session Expiry Interval was 0, a DISCONNECT with a non-zero one is a
    Protocol Error (section 3.14.2.2.2): the server answers DISCONNECT 0x82 and closes."""
    with Raw5(server) as raw:
        raw.handshake5(props=[(P.SESSION_EXPIRY_INTERVAL, 0)])
        raw.send(disconnect5(0, [(P.SESSION_EXPIRY_INTERVAL, 30)]))
        expect_disconnect_reason(raw, RC_PROTOCOL_ERROR)


# --------------------------------------------------------------------------
# Will Delay Interval and DISCONNECT with Will Message
# --------------------------------------------------------------------------


def _will_sub(server, v5_factory, topic: str):
    s = v5(v5_factory, server)
    assert s.subscribe(topic, qos=1) == [1]
    return s


def _will_connect(server, cid: str, topic: str, *, delay: int | None, expiry: int, props=(),
                  clean_start: bool = True) -> Raw5:
    will_props = list(props) + ([(P.WILL_DELAY_INTERVAL, delay)] if delay is not None else [])
    raw = Raw5(server)
    raw.handshake5(cid, clean_start=clean_start, props=[(P.SESSION_EXPIRY_INTERVAL, expiry)],
                   will=Will(topic, b"gone", qos=1, props=will_props))
    return raw


def test_will_delay_on_dropped_connection(server, v5_factory):
    """Will Delay Interval 2 s, Session Expiry 10 s, connection dropped without DISCONNECT: the
    will is published only after the delay (section 3.1.3.2.2), here not before 1.5 s (and
    within a few seconds)."""
    cid = unique_id("wd")
    topic = f"wd/{cid}"
    sub = _will_sub(server, v5_factory, topic)
    raw = _will_connect(server, cid, topic, delay=2, expiry=10)
    raw.close()
    dropped = time.monotonic()
    m = sub.expect_message(topic, b"gone", timeout=6)
    elapsed = time.monotonic() - dropped
    assert elapsed >= 1.5, f"will published {elapsed:.2f}s after the drop, before its 2 s delay"
    assert m.qos == 1


def test_reconnect_within_will_delay_cancels_will(server, v5_factory):
    """A new connection to the session before the Will Delay Interval has passed: the will is
    not sent [MQTT-3.1.3-9], not even after the delay."""
    cid = unique_id("wc")
    topic = f"wc/{cid}"
    sub = _will_sub(server, v5_factory, topic)
    mark = server.log.mark()
    raw = _will_connect(server, cid, topic, delay=2, expiry=10)
    raw.close()
    wait_gone(server, cid, since=mark)
    with Raw5(server) as again:
        c = again.handshake5(cid, clean_start=False, props=[(P.SESSION_EXPIRY_INTERVAL, 10)])
        assert c.session_present, "the session (expiry 10 s) is there"
        sub.assert_no_message(3.0, "will despite the reconnect within the delay")


def test_disconnect_with_will_message(server, v5_factory):
    """DISCONNECT with reason 0x04 (Disconnect with Will Message): the will is published
    (section 3.14.2.1) with its properties: Content Type, Payload Format Indicator and the User
    Properties in order [MQTT-3.1.3-10]. Control: DISCONNECT 0x00 discards the will
    [MQTT-3.1.2-10]."""
    cid = unique_id("wm")
    topic = f"wm/{cid}"
    sub = _will_sub(server, v5_factory, topic)
    user = [("reason", "bye"), ("reason", "again"), ("z", "1")]
    raw = _will_connect(server, cid, topic, delay=None, expiry=0, props=[
        (P.CONTENT_TYPE, "text/plain"), (P.PAYLOAD_FORMAT_INDICATOR, 1),
        *[(P.USER_PROPERTY, kv) for kv in user]])
    raw.send(disconnect5(RC_DISCONNECT_WITH_WILL))
    assert raw.server_disconnect()[0] is None, "the server answered a client's DISCONNECT"
    m = sub.expect_message(topic, b"gone")
    assert m.props.get(P.CONTENT_TYPE) == "text/plain"
    assert m.props.get(P.PAYLOAD_FORMAT_INDICATOR) == 1
    assert m.props.user == user

    cid2 = unique_id("wn")
    raw = _will_connect(server, cid2, topic, delay=None, expiry=0)
    raw.send(disconnect5(0))
    raw.server_disconnect()
    pub = v5(v5_factory, server)
    pub.publish(topic, b"sentinel", qos=1)
    assert sub.collect_until(topic, b"sentinel") == [], "will published after DISCONNECT 0x00"


def test_session_end_before_will_delay_publishes_will(server, v5_factory):
    """Will Delay Interval 10 s but Session Expiry Interval 1 s: the will is published when the
    session ends, whichever comes first (section 3.1.3.2.2), so after about 1 s, not 10."""
    cid = unique_id("we")
    topic = f"we/{cid}"
    sub = _will_sub(server, v5_factory, topic)
    raw = _will_connect(server, cid, topic, delay=10, expiry=1)
    raw.close()
    dropped = time.monotonic()
    sub.expect_message(topic, b"gone", timeout=6)
    elapsed = time.monotonic() - dropped
    assert 0.5 <= elapsed < 6, f"will after {elapsed:.2f}s"
