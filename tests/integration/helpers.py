"""Client-side helpers for the integration tests.

Two kinds of client:

* ``Client`` wraps a paho-mqtt 1.6 client running its network loop in a
  thread. Every operation that waits for the broker (CONNACK, SUBACK,
  UNSUBACK, a message) waits on an event with a timeout, never on a sleep.
* ``RawConnection`` is a bare socket that sends hand-made bytes, for the tests
  that need packets no well-behaved client library would send.

Every wait takes a ``timeout`` in seconds; running out raises AssertionError
with what was seen, so a failing test says what it was waiting for.
"""

from __future__ import annotations

import itertools
import os
import queue
import re
import select
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt

DEFAULT_TIMEOUT = 5.0

MQTTv31 = mqtt.MQTTv31
MQTTv311 = mqtt.MQTTv311

_ids = itertools.count(1)


def unique_id(prefix: str = "t") -> str:
    """A client id unique within the run, at most 23 characters (MQTT 3.1)."""
    return f"{prefix}{next(_ids)}-{os.getpid() % 10000}-{os.urandom(3).hex()}"[:23]


# --------------------------------------------------------------------------
# paho clients
# --------------------------------------------------------------------------


@dataclass
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Client:
    """A paho client with blocking, timed helpers.

    ``server`` is anything with ``host``, ``port``, ``tls`` and ``ca_cert``
    (the fixtures' server objects are). Messages arrive in ``self.messages``
    (a queue of ``Received``).
    """

    def __init__(
        self,
        server,
        client_id: str | None = None,
        protocol: int = MQTTv311,
        clean_session: bool = True,
        tls: bool | None = None,
        transport: str = "tcp",
    ):
        self.server = server
        self.client_id = unique_id() if client_id is None else client_id
        self.protocol = protocol
        self.tls = server.tls if tls is None else tls
        self.messages: "queue.Queue[Received]" = queue.Queue()
        self.connack_rc: int | None = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.disconnect_count = 0
        self.pingresps = 0
        self._cond = threading.Condition()
        self._subacks: dict[int, tuple] = {}
        self._unsubacks: set[int] = set()
        self._loop_started = False

        # transport="websockets": MQTT over WebSocket (paho's own client, path /mqtt).
        c = mqtt.Client(client_id=self.client_id, clean_session=clean_session, protocol=protocol,
                        transport=transport)
        # Never reconnect behind the test's back: a dropped connection must show.
        c.reconnect_delay_set(min_delay=3600, max_delay=3600)
        if self.tls:
            # Verifies the chain and the host name (127.0.0.1 is in the dev cert's SAN).
            c.tls_set_context(ssl.create_default_context(cafile=server.ca_cert))
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        c.on_unsubscribe = self._on_unsubscribe
        c.on_log = self._on_log
        self.paho = c

    # -- paho callbacks (loop thread) --

    def _on_connect(self, client, userdata, flags, rc):
        with self._cond:
            self.connack_rc = rc
            self._cond.notify_all()
        if rc == 0:
            self.connected.set()

    def _on_disconnect(self, client, userdata, rc):
        with self._cond:
            self.disconnect_count += 1
            self._cond.notify_all()
        self.connected.clear()
        self.disconnected.set()

    def _on_message(self, client, userdata, msg):
        self.messages.put(Received(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain)))

    def _on_subscribe(self, client, userdata, mid, granted_qos):
        with self._cond:
            self._subacks[mid] = tuple(granted_qos)
            self._cond.notify_all()

    def _on_unsubscribe(self, client, userdata, mid):
        with self._cond:
            self._unsubacks.add(mid)
            self._cond.notify_all()

    def _on_log(self, client, userdata, level, buf):
        if buf.startswith("Received PINGRESP"):
            with self._cond:
                self.pingresps += 1
                self._cond.notify_all()

    def _wait(self, predicate, timeout: float, what: str):
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise AssertionError(f"{self.client_id}: timed out after {timeout}s waiting for {what}")

    # -- operations --

    def connect(self, keepalive: int = 60, timeout: float = DEFAULT_TIMEOUT, expect_rc: int = 0) -> "Client":
        """Connect, start the loop thread and wait for CONNACK (code ``expect_rc``)."""
        self.paho.connect(self.server.host, self.server.port, keepalive=keepalive)
        self.paho.loop_start()
        self._loop_started = True
        self._wait(lambda: self.connack_rc is not None or self.disconnect_count > 0, timeout, "CONNACK")
        assert self.connack_rc == expect_rc, (
            f"{self.client_id}: CONNACK return code {self.connack_rc}, expected {expect_rc}"
            f" (disconnects: {self.disconnect_count})"
        )
        return self

    def subscribe(self, topics, qos: int = 0, timeout: float = DEFAULT_TIMEOUT) -> tuple:
        """Subscribe to one filter or a list of filters; wait for SUBACK, return granted QoS."""
        if isinstance(topics, str):
            topics = [topics]
        rc, mid = self.paho.subscribe([(t, qos) for t in topics])
        assert rc == mqtt.MQTT_ERR_SUCCESS, f"subscribe failed locally: {mqtt.error_string(rc)}"
        self._wait(lambda: mid in self._subacks, timeout, f"SUBACK for {topics}")
        return self._subacks[mid]

    def unsubscribe(self, topics, timeout: float = DEFAULT_TIMEOUT) -> None:
        if isinstance(topics, str):
            topics = [topics]
        rc, mid = self.paho.unsubscribe(topics)
        assert rc == mqtt.MQTT_ERR_SUCCESS, f"unsubscribe failed locally: {mqtt.error_string(rc)}"
        self._wait(lambda: mid in self._unsubacks, timeout, f"UNSUBACK for {topics}")

    def publish(self, topic: str, payload=b"", qos: int = 0, retain: bool = False,
                timeout: float = DEFAULT_TIMEOUT) -> None:
        """Publish and wait until paho has written it to the socket."""
        info = self.paho.publish(topic, payload, qos=qos, retain=retain)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish failed locally: {mqtt.error_string(info.rc)}"
        info.wait_for_publish(timeout)
        assert info.is_published(), f"{self.client_id}: publish to {topic!r} not sent within {timeout}s"

    def publish_nowait(self, topic: str, payload=b"", qos: int = 0):
        info = self.paho.publish(topic, payload, qos=qos)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish failed locally: {mqtt.error_string(info.rc)}"
        return info

    def get_message(self, timeout: float = DEFAULT_TIMEOUT) -> Received:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.client_id}: no message within {timeout}s") from None

    def expect_message(self, topic: str, payload: bytes | None = None,
                       timeout: float = DEFAULT_TIMEOUT) -> Received:
        """Next message must be on ``topic`` (and carry ``payload``, if given)."""
        m = self.get_message(timeout)
        assert m.topic == topic, f"{self.client_id}: got message on {m.topic!r}, expected {topic!r}"
        if payload is not None:
            assert m.payload == payload, f"{self.client_id}: payload {m.payload!r}, expected {payload!r}"
        return m

    def collect_until(self, topic: str, payload: bytes | None = None,
                      timeout: float = DEFAULT_TIMEOUT) -> list[Received]:
        """Read messages until one on ``topic`` (with ``payload``) arrives; return those before it.

        Used with a sentinel message published after the ones under test: once
        the sentinel is here, everything published before it on the same
        connection has been delivered too (the broker forwards one
        connection's messages in order), so what is missing was not routed.
        """
        deadline = time.monotonic() + timeout
        before = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"{self.client_id}: no message on {topic!r} within {timeout}s; got before it: "
                    f"{[(m.topic, m.payload) for m in before]}")
            m = self.get_message(left)
            if m.topic == topic and (payload is None or m.payload == payload):
                return before
            before.append(m)

    def collect(self, count: int, timeout: float = DEFAULT_TIMEOUT) -> list[Received]:
        """Exactly the next ``count`` messages, waiting at most ``timeout`` overall."""
        deadline = time.monotonic() + timeout
        got = []
        while len(got) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.client_id}: got {len(got)} of {count} messages within {timeout}s")
            try:
                got.append(self.messages.get(timeout=left))
            except queue.Empty:
                continue
        return got

    def wait_pingresps(self, count: int, timeout: float) -> None:
        self._wait(lambda: self.pingresps >= count, timeout, f"{count} PINGRESPs (got {self.pingresps})")

    def wait_disconnected(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._wait(lambda: self.disconnect_count > 0, timeout, "the connection to close")

    def assert_still_connected(self) -> None:
        assert self.disconnect_count == 0 and self.connected.is_set(), (
            f"{self.client_id}: connection was dropped ({self.disconnect_count} disconnects)")

    def close(self) -> None:
        """Disconnect cleanly (if connected) and stop the loop thread."""
        try:
            if self.connected.is_set():
                self.paho.disconnect()
        finally:
            if self._loop_started:
                self.paho.loop_stop()
                self._loop_started = False


def round_trip(publisher: Client, subscriber: Client, topic: str, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Publish a fresh payload on ``topic`` and check ``subscriber`` gets exactly it next."""
    payload = os.urandom(8).hex().encode()
    publisher.publish(topic, payload)
    subscriber.expect_message(topic, payload, timeout)


# --------------------------------------------------------------------------
# Raw MQTT bytes
# --------------------------------------------------------------------------

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14


def encode_remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def encode_string(s) -> bytes:
    b = s.encode() if isinstance(s, str) else bytes(s)
    return struct.pack("!H", len(b)) + b


def packet(ptype: int, flags: int, body: bytes = b"") -> bytes:
    return bytes([(ptype << 4) | flags]) + encode_remaining_length(len(body)) + body


def connect_packet(client_id="raw", *, protocol_name=b"MQTT", level: int = 4, clean: bool = True,
                   flags: int | None = None, keepalive: int = 60, payload_extra: bytes = b"",
                   header_flags: int = 0) -> bytes:
    """CONNECT; ``flags`` overrides the connect-flags byte (default: clean session bit only)."""
    if flags is None:
        flags = 0x02 if clean else 0x00
    body = (encode_string(protocol_name) + bytes([level, flags]) + struct.pack("!H", keepalive)
            + encode_string(client_id) + payload_extra)
    return packet(CONNECT, header_flags, body)


def publish_packet(topic, payload: bytes = b"", qos: int = 0, *, packet_id: int = 1,
                   flags: int | None = None) -> bytes:
    if flags is None:
        flags = qos << 1
    body = encode_string(topic)
    if (flags >> 1) & 0x03:
        body += struct.pack("!H", packet_id)
    return packet(PUBLISH, flags, body + payload)


def subscribe_packet(filters, packet_id: int = 1, flags: int = 0x02) -> bytes:
    """``filters``: list of (filter, requested QoS)."""
    body = struct.pack("!H", packet_id) + b"".join(encode_string(f) + bytes([q]) for f, q in filters)
    return packet(SUBSCRIBE, flags, body)


def unsubscribe_packet(filters, packet_id: int = 1, flags: int = 0x02) -> bytes:
    body = struct.pack("!H", packet_id) + b"".join(encode_string(f) for f in filters)
    return packet(UNSUBSCRIBE, flags, body)


PINGREQ_BYTES = packet(PINGREQ, 0)
DISCONNECT_BYTES = packet(DISCONNECT, 0)


@dataclass
class RawPacket:
    ptype: int
    flags: int
    body: bytes

    def __repr__(self):
        return f"RawPacket(type={self.ptype}, flags={self.flags:#x}, body={self.body[:32]!r})"


class Closed(Exception):
    """The server closed the connection."""


class RawConnection:
    """A plain TCP socket speaking hand-made MQTT."""

    def __init__(self, server, timeout: float = DEFAULT_TIMEOUT):
        self.sock = socket.create_connection((server.host, server.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.local_port = self.sock.getsockname()[1]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, data: bytes) -> bool:
        """Send; False if the server had already closed the connection (write failed)."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def _fill(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        r, _, _ = select.select([self.sock], [], [], left)
        if not r:
            raise TimeoutError
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError):
            chunk = b""
        if not chunk:
            raise Closed
        self.buf += chunk

    def recv_packet(self, timeout: float = DEFAULT_TIMEOUT) -> RawPacket:
        """Next whole packet. Raises Closed on EOF/reset, AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                if len(self.buf) >= 2:
                    mult, length, i = 1, 0, 1
                    while i < len(self.buf) and i <= 4:
                        b = self.buf[i]
                        length += (b & 0x7F) * mult
                        mult *= 128
                        i += 1
                        if not b & 0x80:
                            if len(self.buf) >= i + length:
                                first = self.buf[0]
                                body = bytes(self.buf[i:i + length])
                                del self.buf[:i + length]
                                return RawPacket(first >> 4, first & 0x0F, body)
                            break
                self._fill(deadline)
        except TimeoutError:
            raise AssertionError(f"no packet from the server within {timeout}s") from None

    def expect_closed(self, timeout: float = DEFAULT_TIMEOUT) -> list[RawPacket]:
        """Wait until the server closes the connection; return the packets it sent before."""
        deadline = time.monotonic() + timeout
        got = []
        while True:
            try:
                got.append(self.recv_packet(max(0.0, deadline - time.monotonic())))
            except Closed:
                return got
            except AssertionError:
                raise AssertionError(
                    f"server did not close the connection within {timeout}s (received {got})") from None

    def handshake(self, connect: bytes | None = None, timeout: float = DEFAULT_TIMEOUT) -> RawPacket:
        """Send CONNECT (default: a valid 3.1.1 one) and return the CONNACK, asserting code 0."""
        self.send(connect if connect is not None else connect_packet(unique_id("raw")))
        p = self.recv_packet(timeout)
        assert p.ptype == CONNACK and p.body == b"\x00\x00", f"expected CONNACK accepted, got {p}"
        return p


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_line(lines: "queue.Queue[str]", pattern: str, timeout: float) -> str:
    """Take lines from a queue (fed by a reader thread) until one matches ``pattern``."""
    deadline = time.monotonic() + timeout
    seen = []
    rx = re.compile(pattern)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no line matching {pattern!r} within {timeout}s; saw {seen}")
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            continue
        if line is None:
            raise AssertionError(f"stream ended before a line matching {pattern!r}; saw {seen}")
        seen.append(line)
        if rx.search(line):
            return line


def pump_lines(stream, lines: "queue.Queue[str]") -> threading.Thread:
    """Start a thread that puts each line of a text stream on ``lines``, then None at EOF."""
    def run():
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


__all__ = [n for n in dir() if not n.startswith("_")]
