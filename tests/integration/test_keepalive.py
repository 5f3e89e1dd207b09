"""Keep-alive (MQTT 3.1.1 sections 3.1.2.10 and 3.12).

"If the Keep Alive value is non-zero and the Server does not receive a
Control Packet from the Client within one and a half times the Keep Alive
time period, it MUST disconnect the Network Connection to the Client as if
the network had failed" [MQTT-3.1.2-24].

Timing bounds: never before 1.5 x keep-alive (minus 0.1 s of clock slack).
Upper bound for our binary: 1.5 x keep-alive + 1.3 s (its timer checks once a
second, plus scheduling slack on a busy 2-core machine). Mosquitto 2.0.11
checks on a coarse timer (about 5 s late for a 1 s keep-alive), so it gets a
loose upper bound. Pacing sleeps in these tests simulate a client's timing;
they never stand in for waiting on an event.
"""

from __future__ import annotations

import time

import pytest

from helpers import PINGREQ_BYTES, PINGRESP, RawConnection, connect_packet, publish_packet, unique_id


def upper_bound(server, keepalive: float) -> float:
    return 1.5 * keepalive + (1.3 if server.ours else 7.0)


@pytest.mark.parametrize("keepalive", [1, 2])
def test_silent_client_disconnected_after_one_and_a_half_keepalive(server, keepalive):
    """A client that sends nothing after CONNECT is disconnected after 1.5 x keep-alive
    [MQTT-3.1.2-24], not before; our log says why."""
    cid = unique_id("silent")
    mark = server.log.mark()
    with RawConnection(server) as raw:
        raw.handshake(connect_packet(cid, keepalive=keepalive))
        start = time.monotonic()
        assert raw.expect_closed(timeout=upper_bound(server, keepalive) + 2) == []
        elapsed = time.monotonic() - start
    print(f"keep-alive {keepalive}s: closed after {elapsed:.2f}s")
    assert 1.5 * keepalive - 0.1 <= elapsed <= upper_bound(server, keepalive), f"closed after {elapsed:.2f}s"
    if server.ours:
        server.log.wait_for(rf"client {cid} disconnected \(keep-alive timeout", since=mark)


def test_pingreq_keeps_connection_then_silence_closes(server):
    """PINGREQ every 0.8 s with keep-alive 1 s: each is answered with PINGRESP [MQTT-3.12.4-1] and
    the connection stays up for 5 keep-alive periods. When the pings stop, the server closes the
    connection 1.5 keep-alive after the LAST packet received (not after CONNECT)."""
    with RawConnection(server) as raw:
        raw.handshake(connect_packet(unique_id("ping"), keepalive=1))
        for _ in range(6):
            time.sleep(0.8)  # the client's pacing
            assert raw.send(PINGREQ_BYTES), "connection closed although the client pinged"
            p = raw.recv_packet(timeout=1.0)
            assert (p.ptype, p.body) == (PINGRESP, b"")
        last = time.monotonic()
        raw.expect_closed(timeout=upper_bound(server, 1) + 2)
        elapsed = time.monotonic() - last
    assert 1.4 <= elapsed <= upper_bound(server, 1), f"closed {elapsed:.2f}s after the last PINGREQ"


def test_any_control_packet_resets_keepalive(server):
    """Keep-alive counts any Control Packet, not only PINGREQ (3.1.2.10): a client with keep-alive
    1 s that sends a QoS 0 PUBLISH every 0.8 s for 4 s is not disconnected."""
    with RawConnection(server) as raw:
        raw.handshake(connect_packet(unique_id("pubka"), keepalive=1))
        for i in range(5):
            time.sleep(0.8)  # the client's pacing
            assert raw.send(publish_packet("ka/pub", str(i).encode())), "closed although the client published"
        raw.send(PINGREQ_BYTES)
        p = raw.recv_packet(timeout=1.0)
        assert p.ptype == PINGRESP, p


def test_keepalive_zero_never_times_out(server):
    """Keep-alive 0 turns the mechanism off (3.1.2.10): a silent client stays connected (checked
    for 3.5 s, more than 1.5 x the longest keep-alive checked above plus our timer tick) and
    still answers."""
    with RawConnection(server) as raw:
        raw.handshake(connect_packet(unique_id("ka0"), keepalive=0))
        try:
            p = raw.recv_packet(timeout=3.5)
        except AssertionError:
            p = None  # nothing arrived and the socket is open: what is expected
        assert p is None, f"unexpected {p}"
        raw.send(PINGREQ_BYTES)
        assert raw.recv_packet(timeout=2).ptype == PINGRESP

