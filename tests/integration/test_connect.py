"""CONNECT handling, byte by byte over raw sockets (MQTT 3.1.1 section 3.1 and 3.2)."""

from __future__ import annotations

import time

import pytest

from helpers import (CONNACK, PINGREQ_BYTES, PINGRESP, SUBACK, DISCONNECT_BYTES, RawConnection, connect_packet,
                     encode_string, publish_packet, subscribe_packet, unique_id)


def assert_no_accepting_connack(packets):
    """Before closing, the server may have sent a refusing CONNACK, never an accepting one."""
    for p in packets:
        assert not (p.ptype == CONNACK and p.body[1:2] == b"\x00"), f"server accepted: {packets}"


def test_connect_accepted_311(server):
    """A valid 3.1.1 CONNECT with clean session gets CONNACK 0x20 0x02, session present 0, code 0
    [MQTT-3.2.2-1] [MQTT-3.2.2-3]."""
    with RawConnection(server) as raw:
        raw.send(connect_packet(unique_id("raw")))
        p = raw.recv_packet()
        assert (p.ptype, p.flags, p.body) == (CONNACK, 0, b"\x00\x00")


def test_connect_accepted_31(server):
    """A valid MQTT 3.1 CONNECT ("MQIsdp", level 3) is accepted."""
    with RawConnection(server) as raw:
        raw.send(connect_packet(unique_id("raw"), protocol_name=b"MQIsdp", level=3))
        p = raw.recv_packet()
        assert (p.ptype, p.body[1:]) == (CONNACK, b"\x00")


@pytest.mark.parametrize("name,level", [
    (b"MQTT", 9),
    (b"MQTT", 3),
    (b"MQTT", 0),
    (b"MQIsdp", 4),
], ids=["MQTT-9", "MQTT-3", "MQTT-0", "MQIsdp-4"])
def test_unacceptable_protocol_level(server, name, level):
    """An unsupported protocol level gets CONNACK return code 0x01 and the connection is closed
    [MQTT-3.1.2-2]."""
    with RawConnection(server) as raw:
        raw.send(connect_packet(unique_id("raw"), protocol_name=name, level=level))
        packets = raw.expect_closed()
        assert [(p.ptype, p.body[1:]) for p in packets] == [(CONNACK, b"\x01")]


@pytest.mark.ours_only(reason="the CONNACK before closing is optional (4.13); Mosquitto just closes")
def test_v5_connect_without_properties_gets_malformed_reason(server):
    """A level-5 CONNECT laid out as 3.1.1 (no property length) is a malformed MQTT 5 CONNECT:
    the server answers with a v5 CONNACK carrying reason code 0x81 and closes [MQTT-3.1.4-1]
    [MQTT-3.2.2-8]."""
    with RawConnection(server) as raw:
        raw.send(connect_packet(unique_id("raw"), protocol_name=b"MQTT", level=5))
        packets = raw.expect_closed()
        assert [(p.ptype, p.body[1:2]) for p in packets] == [(CONNACK, b"\x81")]


def test_wrong_protocol_name_closed(server):
    """An unknown protocol name: the server may disconnect, and must not go on under 3.1.1
    [MQTT-3.1.2-1]. We require the close (without an accepting CONNACK)."""
    with RawConnection(server) as raw:
        raw.send(connect_packet(unique_id("raw"), protocol_name=b"MQTX", level=4))
        assert_no_accepting_connack(raw.expect_closed())


@pytest.mark.parametrize("first", [
    PINGREQ_BYTES,
    subscribe_packet([("a/b", 0)]),
    publish_packet("a/b", b"x"),
    DISCONNECT_BYTES,
], ids=["PINGREQ", "SUBSCRIBE", "PUBLISH", "DISCONNECT"])
def test_first_packet_must_be_connect(server, first):
    """The first packet from the client must be CONNECT; otherwise the connection is closed
    without any answer [MQTT-3.1.0-1]."""
    with RawConnection(server) as raw:
        raw.send(first)
        assert raw.expect_closed() == []


def test_second_connect_closes(server):
    """A second CONNECT on a connection is a protocol violation: the server disconnects [MQTT-3.1.0-2]."""
    with RawConnection(server) as raw:
        raw.handshake()
        raw.send(connect_packet(unique_id("raw")))
        raw.expect_closed()


def test_zero_length_client_id_clean_session_accepted(server):
    """A zero-byte client id with clean session 1 is accepted and given a unique id
    [MQTT-3.1.3-6] [MQTT-3.1.3-7]: two such clients coexist, neither taking over the other."""
    with RawConnection(server) as a, RawConnection(server) as b:
        a.handshake(connect_packet(""))
        b.handshake(connect_packet(""))
        # Both still up: each answers a ping, and a subscribe/publish loop works on a.
        for raw in (a, b):
            raw.send(PINGREQ_BYTES)
            assert raw.recv_packet().ptype == PINGRESP
        a.send(subscribe_packet([("zl/t", 0)], packet_id=7))
        p = a.recv_packet()
        assert (p.ptype, p.body) == (SUBACK, b"\x00\x07\x00")
        b.send(publish_packet("zl/t", b"hi"))
        p = a.recv_packet()
        assert p.body == encode_string("zl/t") + b"hi"


def test_zero_length_client_id_without_clean_session_rejected(server):
    """A zero-byte client id with clean session 0 gets CONNACK 0x02 (identifier rejected), then the
    connection is closed [MQTT-3.1.3-8] [MQTT-3.1.3-9]."""
    with RawConnection(server) as raw:
        raw.send(connect_packet("", clean=False))
        packets = raw.expect_closed()
        assert [(p.ptype, p.body) for p in packets] == [(CONNACK, b"\x00\x02")]


def test_mqtt31_zero_length_client_id_rejected(server):
    """MQTT 3.1 requires a client id of 1 to 23 characters: an empty one gets CONNACK 0x02
    (MQTT 3.1, section 3.1 "Client Identifier")."""
    with RawConnection(server) as raw:
        raw.send(connect_packet("", protocol_name=b"MQIsdp", level=3))
        packets = raw.expect_closed()
        assert [(p.ptype, p.body[1:]) for p in packets] == [(CONNACK, b"\x02")]


def test_reserved_connect_flag_closes(server):
    """The reserved bit 0 of the connect flags must be 0, else the server disconnects [MQTT-3.1.2-3]."""
    with RawConnection(server) as raw:
        raw.send(connect_packet(unique_id("raw"), flags=0x03))
        assert_no_accepting_connack(raw.expect_closed())


def test_connect_fixed_header_flags_must_be_zero(server):
    """Reserved fixed-header flags of CONNECT must be 0; otherwise the packet is malformed and the
    connection closed [MQTT-2.2.2-2]."""
    with RawConnection(server) as raw:
        raw.send(connect_packet(unique_id("raw"), header_flags=0x01))
        assert_no_accepting_connack(raw.expect_closed())


def _will(topic="w/t", msg=b"bye"):
    return encode_string(topic) + encode_string(msg)


@pytest.mark.parametrize("flags,extra", [
    (0x02 | 0x18, _will()),  # will flag set, will QoS 3 [MQTT-3.1.2-14]
    (0x02 | 0x08, b""),  # will QoS 1 without will flag [MQTT-3.1.2-13]
    (0x02 | 0x20, b""),  # will retain without will flag [MQTT-3.1.2-15]
    (0x02 | 0x40, encode_string(b"pw")),  # password without user name [MQTT-3.1.2-22]
], ids=["will-qos3", "will-qos-without-will", "will-retain-without-will", "password-without-username"])
def test_inconsistent_connect_flags_close(server, flags, extra):
    """Inconsistent connect flags are a protocol violation: closed without an accepting CONNACK."""
    with RawConnection(server) as raw:
        raw.send(connect_packet(unique_id("raw"), flags=flags, payload_extra=extra))
        assert_no_accepting_connack(raw.expect_closed())


def test_connect_with_will_and_credentials_parses(server):
    """A CONNECT carrying a will, a user name and a password is parsed and accepted (anonymous
    access allowed): the optional payload fields come in the order of [MQTT-3.1.3-1]."""
    with RawConnection(server) as raw:
        payload = _will() + encode_string("user") + encode_string(b"secret")
        raw.handshake(connect_packet(unique_id("raw"), flags=0x02 | 0x04 | 0x80 | 0x40, payload_extra=payload))
        raw.send(PINGREQ_BYTES)
        assert raw.recv_packet().ptype == PINGRESP


def test_client_id_takeover(server):
    """A second connection with the same client id makes the server close the first [MQTT-3.1.4-2]."""
    cid = unique_id("dup")
    with RawConnection(server) as first, RawConnection(server) as second:
        first.handshake(connect_packet(cid))
        second.handshake(connect_packet(cid))
        first.expect_closed()
        second.send(PINGREQ_BYTES)
        assert second.recv_packet().ptype == PINGRESP


def test_keepalive_expiry_closes(server):
    """With keepalive 1 s and nothing sent, the server disconnects within 1.5 keepalive periods
    [MQTT-3.1.2-24] (we allow scheduling slack), and not before one period has passed."""
    with RawConnection(server) as raw:
        raw.handshake(connect_packet(unique_id("raw"), keepalive=1))
        start = time.monotonic()
        # Mosquitto 2.0.11 deviates: it checks keepalives on a coarse timer and closes only after
        # ~5 s for keepalive 1 s (~6 s for 2 s). So the spec's bound (plus slack) is asserted for
        # our binary, a loose one for Mosquitto.
        limit = 3.0 if server.ours else 8.0
        raw.expect_closed(timeout=limit + 2)
        elapsed = time.monotonic() - start
        assert 0.9 <= elapsed <= limit, f"closed after {elapsed:.2f}s"


def test_disconnect_closes(server):
    """After DISCONNECT the server closes the network connection (section 3.14.4)."""
    with RawConnection(server) as raw:
        raw.handshake()
        raw.send(DISCONNECT_BYTES)
        assert raw.expect_closed() == []


def test_connect_split_across_segments(server):
    """A CONNECT arriving one byte at a time is reassembled (TCP is a stream)."""
    with RawConnection(server) as raw:
        data = connect_packet(unique_id("raw"))
        for i in range(len(data)):
            raw.send(data[i:i + 1])
        p = raw.recv_packet()
        assert (p.ptype, p.body) == (CONNACK, b"\x00\x00")


def test_pipelined_packets_in_one_segment(server):
    """CONNECT, SUBSCRIBE, PUBLISH and PINGREQ sent in one write are all handled, in order."""
    with RawConnection(server) as raw:
        raw.send(connect_packet(unique_id("raw")) + subscribe_packet([("pl/t", 0)], packet_id=3)
                 + publish_packet("pl/t", b"self") + PINGREQ_BYTES)
        got = [raw.recv_packet() for _ in range(4)]
        assert [p.ptype for p in got] == [CONNACK, SUBACK, 3, PINGRESP]
        assert got[1].body == b"\x00\x03\x00"
        assert got[2].body == encode_string("pl/t") + b"self"
