"""Support for the QoS, retained, will, session, keep-alive and load tests.

Kept apart from helpers.py (owned by others) and only adds to it:

* raw QoS packets: PUBACK/PUBREC/PUBREL/PUBCOMP builders and a PUBLISH parser;
* ``track(client)``: records a paho client's CONNACK flags (session present)
  and the packet ids whose QoS 1/2 handshake completed (on_publish);
* ``wait_gone(broker, client_id)``: waits for the broker's log to say that a
  client's connection is gone, for both our binary and Mosquitto;
* ``assert_silent(...)``: the few places where the absence of a packet is
  the behaviour under test (bounded wait, not synchronisation).
"""

from __future__ import annotations

import queue
import re
import struct
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from helpers import DEFAULT_TIMEOUT, Client, RawConnection, encode_string, packet

PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 3, 4, 5, 6, 7


def ack_packet(ptype: int, packet_id: int) -> bytes:
    """PUBACK/PUBREC/PUBCOMP (flags 0) or PUBREL (flags 0b0010 [MQTT-3.6.1-1])."""
    return packet(ptype, 0x02 if ptype == PUBREL else 0x00, struct.pack("!H", packet_id))


def publish_bytes(topic: str, payload: bytes, qos: int, packet_id: int = 0, *, dup: bool = False,
                  retain: bool = False) -> bytes:
    flags = (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    body = encode_string(topic) + (struct.pack("!H", packet_id) if qos else b"") + payload
    return packet(PUBLISH, flags, body)


@dataclass
class Pub:
    """A PUBLISH as received on a raw connection."""
    topic: str
    payload: bytes
    qos: int
    packet_id: int
    dup: bool
    retain: bool


def parse_publish(p) -> Pub:
    assert p.ptype == PUBLISH, f"expected PUBLISH, got {p}"
    qos = (p.flags >> 1) & 0x03
    (tlen,) = struct.unpack_from("!H", p.body, 0)
    topic = p.body[2:2 + tlen].decode()
    i = 2 + tlen
    pid = 0
    if qos:
        (pid,) = struct.unpack_from("!H", p.body, i)
        i += 2
    return Pub(topic, p.body[i:], qos, pid, bool(p.flags & 0x08), bool(p.flags & 0x01))


def recv_publish(raw: RawConnection, timeout: float = DEFAULT_TIMEOUT) -> Pub:
    return parse_publish(raw.recv_packet(timeout))


def expect_ack(raw: RawConnection, ptype: int, packet_id: int, timeout: float = DEFAULT_TIMEOUT) -> None:
    """The next packet must be the acknowledgement ``ptype`` for ``packet_id`` with the right flags."""
    p = raw.recv_packet(timeout)
    want_flags = 0x02 if ptype == PUBREL else 0x00
    assert (p.ptype, p.flags, p.body) == (ptype, want_flags, struct.pack("!H", packet_id)), (
        f"expected packet type {ptype} flags {want_flags:#x} for id {packet_id}, got {p}")


def assert_silent(raw: RawConnection, seconds: float, what: str) -> None:
    """Nothing may arrive on ``raw`` for ``seconds`` (the absence is what is tested)."""
    try:
        p = raw.recv_packet(seconds)
    except AssertionError:
        return
    raise AssertionError(f"{what}: unexpected {p}")


def assert_no_message(client: Client, seconds: float, what: str) -> None:
    try:
        m = client.messages.get(timeout=seconds)
    except queue.Empty:
        return
    raise AssertionError(f"{what}: unexpected message {m}")


# --------------------------------------------------------------------------
# paho additions
# --------------------------------------------------------------------------


class Tracker:
    """CONNACK flags and completed QoS handshakes of one paho client (see ``track``)."""

    def __init__(self, client: Client):
        self.client = client
        self.session_present: list[int] = []  # one entry per CONNACK, in order
        self.completed: set[int] = set()  # mids whose PUBACK/PUBCOMP arrived (or QoS 0 written)
        self._cond = threading.Condition()

    def wait_completed(self, mids, timeout: float = DEFAULT_TIMEOUT) -> None:
        mids = set(mids)
        with self._cond:
            ok = self._cond.wait_for(lambda: mids <= self.completed, timeout)
        assert ok, (f"{self.client.client_id}: on_publish did not fire for "
                    f"{sorted(mids - self.completed)[:10]} within {timeout}s")


def track(client: Client) -> Tracker:
    """Wrap ``client``'s paho callbacks to record session-present flags and on_publish."""
    t = Tracker(client)
    orig_connect = client.paho.on_connect

    def on_connect(c, userdata, flags, rc):
        with t._cond:
            t.session_present.append(int(flags.get("session present", -1)))
            t._cond.notify_all()
        orig_connect(c, userdata, flags, rc)

    def on_publish(c, userdata, mid):
        with t._cond:
            t.completed.add(mid)
            t._cond.notify_all()

    client.paho.on_connect = on_connect
    client.paho.on_publish = on_publish
    client.tracker = t
    return t


def set_will(client: Client, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> Client:
    client.paho.will_set(topic, payload, qos=qos, retain=retain)
    return client


def publish_acked(client: Client, topic: str, payload: bytes, qos: int, retain: bool = False,
                  timeout: float = DEFAULT_TIMEOUT) -> int:
    """Publish and wait until on_publish fires: for QoS 1 the PUBACK, for QoS 2 the PUBCOMP
    has been received from the broker (paho 1.6 calls on_publish only then for QoS > 0)."""
    t = client.tracker
    info = client.paho.publish(topic, payload, qos=qos, retain=retain)
    assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish failed locally: {mqtt.error_string(info.rc)}"
    t.wait_completed([info.mid], timeout)
    return info.mid


# --------------------------------------------------------------------------
# Broker log
# --------------------------------------------------------------------------


def wait_gone(broker, client_id: str, since: int = 0, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Wait until the broker has logged that ``client_id``'s connection ended.

    Our binary logs "client <id> disconnected (<reason>)"; Mosquitto logs
    "Client <id> disconnected.", "Client <id> closed its connection.",
    "Client <id> has exceeded timeout, disconnecting." or "Socket error on
    client <id>, disconnecting.". Used so that a test publishes to an
    offline session only once the broker really has it offline.
    """
    cid = re.escape(client_id)
    return broker.log.wait_for(rf"client {cid}\b.*(disconnect|closed)", since=since, timeout=timeout)


def now() -> float:
    return time.monotonic()
