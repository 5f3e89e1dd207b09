"""Malformed input closes only the offending connection.

Each case sends bad bytes on its own raw socket and expects the server to close
that socket, while a paho subscriber/publisher pair on other connections keeps
working before and after [MQTT-4.8.0-1]: "Unless stated otherwise, if either
the Server or Client encounters a protocol violation, it MUST close the Network
Connection on which it received that Control Packet".

For our binary the log must also carry a reason line: a line logged after the
bad bytes were sent that names the connection (its peer port, e.g.
"127.0.0.1:40312", or its client id once CONNECT was accepted) and says why:
it uses one of REASON_WORDS, or says it closes the connection followed by an
explanation ("closing connection from 127.0.0.1:40312: PUBLISH QoS 3",
"client x disconnected due to protocol error"); case-insensitive. A plain
"client disconnected" is not enough. The broker runs at its default log level,
so the reason must be logged at info level or above.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

import pytest

from helpers import (CONNACK, PINGREQ, RawConnection, connect_packet, encode_remaining_length, encode_string,
                     packet, publish_packet, round_trip, subscribe_packet, unique_id, unsubscribe_packet)

# A reason line: names the connection and either uses a word that says what was wrong, or
# says that it closes/drops the connection followed by an explanation ("...: <why>", "due to <why>").
REASON_WORDS = (r"malformed|invalid|protocol|violation|error|reject|not allowed|illegal|unexpected|"
                r"exceed|too (large|big|long)|oversize|limit|reserved|unsupported|not supported|"
                r"wildcard|utf-?8|qos|flags?\b|truncat|overrun|missing")
CLOSE_WITH_WHY = (r"(?:clos|disconnect|drop|reject|refus|abort|terminat|kill)\w*\b.*"
                  r"(?::\s+\S|\bdue to\b|\bbecause\b|\breason\b)")


class Witness:
    """A subscriber and a publisher that must keep working around a bad connection."""

    def __init__(self, server, client_factory):
        self.sub = client_factory(server).connect()
        self.sub.subscribe("witness/#")
        self.pub = client_factory(server).connect()
        self.check()

    def check(self):
        round_trip(self.pub, self.sub, "witness/t")
        self.sub.assert_still_connected()
        self.pub.assert_still_connected()


def assert_reason_logged(server, mark, raw: RawConnection, client_id: str | None):
    """Our binary: a reason line about this connection was logged after ``mark``."""
    if not server.ours:
        return
    who = rf"\b{raw.local_port}\b"
    if client_id:
        who = rf"(?:{who}|{client_id})"
    server.log.wait_for(rf"(?=.*{who})(?=.*(?:\b(?:{REASON_WORDS})|{CLOSE_WITH_WHY}))", since=mark, timeout=5)


@dataclass
class Case:
    id: str
    data: bytes
    after_connect: bool
    spec: str  # the statement violated


def _random_garbage(seed: int, n: int) -> bytes:
    """Random bytes, except that the first packet is a reserved type 15 (never a CONNECT) with a
    short Remaining Length: a server may read a whole packet before judging it, so a random
    length of up to 256 MB would only make it wait."""
    rng = random.Random(seed)
    data = bytearray(rng.getrandbits(8) for _ in range(n))
    data[0] = 0xF7
    data[1] = 0x20
    return bytes(data)


def _publish_raw_topic(topic: bytes, flags: int = 0) -> bytes:
    return packet(3, flags, encode_string(topic) + b"payload")


CASES = [
    Case("random-bytes-before-connect", _random_garbage(1, 512), False, "[MQTT-3.1.0-1]"),
    Case("random-bytes-after-connect", _random_garbage(2, 512), True, "section 2.2.1: type 15 is reserved"),
    Case("reserved-type-0", packet(0, 0), True, "section 2.2.1: type 0 is reserved"),
    Case("reserved-type-15", packet(15, 0), True, "section 2.2.1: type 15 is reserved"),
    Case("remaining-length-5-bytes", b"\x30\xff\xff\xff\xff\x01" + b"\x00" * 16, True,
         "section 2.2.3: at most four Remaining Length bytes"),
    Case("remaining-length-5-bytes-before-connect", b"\x10\x80\x80\x80\x80\x01", False,
         "section 2.2.3: at most four Remaining Length bytes"),
    Case("subscribe-flags-0", subscribe_packet([("a/b", 0)], flags=0x00), True, "[MQTT-3.8.1-1]"),
    Case("subscribe-flags-3", subscribe_packet([("a/b", 0)], flags=0x03), True, "[MQTT-3.8.1-1]"),
    Case("subscribe-no-filters", subscribe_packet([]), True, "[MQTT-3.8.3-3]"),
    Case("subscribe-qos-3", subscribe_packet([("a/b", 3)]), True, "[MQTT-3.8.3-4]"),
    Case("subscribe-qos-reserved-bits", subscribe_packet([("a/b", 0x40)]), True, "[MQTT-3-8.3-4]"),
    Case("subscribe-packet-id-0", subscribe_packet([("a/b", 0)], packet_id=0), True, "[MQTT-2.3.1-1]"),
    Case("unsubscribe-flags-0", unsubscribe_packet(["a/b"], flags=0x00), True, "[MQTT-3.10.1-1]"),
    Case("unsubscribe-no-filters", unsubscribe_packet([]), True, "[MQTT-3.10.3-2]"),
    Case("publish-qos-3", publish_packet("a/b", b"x", flags=0x06), True, "[MQTT-3.3.1-4]"),
    Case("publish-wildcard-plus", publish_packet("a/+/c", b"x"), True, "[MQTT-3.3.2-2]"),
    Case("publish-wildcard-hash", publish_packet("a/#", b"x"), True, "[MQTT-3.3.2-2]"),
    Case("publish-empty-topic", publish_packet("", b"x"), True, "[MQTT-4.7.3-1]"),
    Case("publish-invalid-utf8", _publish_raw_topic(b"a/\xff\xfe/c"), True, "[MQTT-1.5.3-1]"),
    Case("publish-utf8-surrogate", _publish_raw_topic(b"a/\xed\xa0\x80"), True, "[MQTT-1.5.3-1]"),
    Case("publish-nul-in-topic", _publish_raw_topic(b"a/\x00/c"), True, "[MQTT-1.5.3-2]"),
    Case("publish-topic-overruns-packet", packet(3, 0, struct.pack("!H", 200) + b"abc"), True,
         "section 1.5.3: string length beyond the packet"),
    Case("subscribe-invalid-utf8-filter", subscribe_packet([(b"a/\xc3\x28", 0)]), True, "[MQTT-1.5.3-1]"),
    pytest.param(
        Case("pingreq-with-body", packet(PINGREQ, 0, b"\x00"), True, "section 3.12.1: Remaining Length 0"),
        marks=pytest.mark.ours_only(reason="Mosquitto 2.0.11 answers a PINGREQ that has a body instead of "
                                    "closing (3.1.1 section 3.12.1 fixes its Remaining Length at 0)")),
    Case("connect-client-id-overruns", packet(1, 0, encode_string(b"MQTT") + b"\x04\x02\x00\x3c\x00\x40ab"),
         False, "section 1.5.3: string length beyond the packet"),
]


def _id(c):
    return (c.values[0] if hasattr(c, "values") else c).id


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_malformed_packet_closes_only_that_connection(server, client_factory, case):
    """The server closes a connection that sends a malformed packet or violates the protocol
    [MQTT-4.8.0-1] (the case names the statement violated); other connections are unaffected."""
    witness = Witness(server, client_factory)
    mark = server.log.mark()
    with RawConnection(server) as raw:
        cid = None
        if case.after_connect:
            cid = unique_id("m")
            raw.handshake(connect_packet(cid))
        raw.send(case.data)
        got = raw.expect_closed()
        assert not any(p.ptype == CONNACK for p in got), f"{case.spec}: unexpected answer {got}"
    witness.check()
    assert_reason_logged(server, mark, raw, cid)


def test_oversize_packet_closes_only_that_connection(server_factory, client_factory):
    """A packet larger than --max-packet-size closes that connection, before the server has read
    (or buffered) all of it; smaller packets still pass."""
    srv = server_factory(max_packet_size=1024)
    witness = Witness(srv, client_factory)
    round_trip(witness.pub, witness.sub, "witness/small")  # paho packets are far below the limit
    witness.sub.subscribe("big/#")
    witness.pub.publish("big/ok", b"x" * 900)
    witness.sub.expect_message("big/ok", b"x" * 900)

    mark = srv.log.mark()
    with RawConnection(srv) as raw:
        cid = unique_id("o")
        raw.handshake(connect_packet(cid))
        raw.send(publish_packet("big/t", b"y" * 4096))
        raw.expect_closed()
    # An announced 200 MB packet must be refused on its header alone, not buffered.
    with RawConnection(srv) as raw2:
        cid2 = unique_id("o")
        raw2.handshake(connect_packet(cid2))
        raw2.send(b"\x30" + encode_remaining_length(200_000_000) + encode_string("big/t") + b"z" * 1000)
        raw2.expect_closed()
    witness.check()
    assert_reason_logged(srv, mark, raw, cid)
    assert_reason_logged(srv, mark, raw2, cid2)


@pytest.mark.ours_only(reason="Mosquitto counts 1 + remaining length, not the whole fixed header")
def test_max_packet_size_counts_whole_packet(server_factory, client_factory):
    """--max-packet-size counts the whole packet, fixed header included: exactly the limit passes,
    one byte more closes the connection."""
    limit = 1024
    srv = server_factory(max_packet_size=limit)
    witness = Witness(srv, client_factory)
    witness.sub.subscribe("edge/#")

    def publish_of_total_size(total: int) -> bytes:
        # 1 type byte + 2 length bytes (127 < remaining < 16384) + remaining
        p = publish_packet("edge/t", b"e" * (total - 3 - 2 - len("edge/t")))
        assert len(p) == total
        return p

    with RawConnection(srv) as raw:
        raw.handshake(connect_packet(unique_id("e")))
        raw.send(publish_of_total_size(limit))
        witness.sub.expect_message("edge/t")
        raw.send(publish_of_total_size(limit + 1))
        raw.expect_closed()
    witness.check()


def test_partial_packet_does_not_block_others(server, client_factory):
    """A client that stops in the middle of a packet does not hold up other connections."""
    witness = Witness(server, client_factory)
    with RawConnection(server) as raw:
        raw.handshake()
        raw.send(b"\x30\x40\x00\x05hal")  # PUBLISH promising 64 bytes, 5 sent
        witness.check()
        with RawConnection(server) as raw2:
            raw2.send(connect_packet(unique_id("h"))[:7])  # half a CONNECT
            witness.check()
    witness.check()


def test_abrupt_disconnects_mid_packet(server, client_factory):
    """Connections that vanish mid-packet (or mid-CONNECT) are cleaned up; the server carries on."""
    witness = Witness(server, client_factory)
    for i in range(20):
        with RawConnection(server) as raw:
            if i % 2:
                raw.handshake()
                raw.send(publish_packet("gone/t", b"p" * 100)[:50])
            else:
                raw.send(connect_packet(unique_id("g"))[:5])
    witness.check()


def test_many_garbage_connections_at_once(server, client_factory):
    """Twenty connections sending garbage at the same time are all closed; the witnesses survive."""
    witness = Witness(server, client_factory)
    raws = [RawConnection(server) for _ in range(20)]
    try:
        for i, raw in enumerate(raws):
            raw.send(_random_garbage(100 + i, 256))
        for raw in raws:
            raw.expect_closed()
    finally:
        for raw in raws:
            raw.close()
    witness.check()
