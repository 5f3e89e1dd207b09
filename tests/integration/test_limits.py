"""The broker's resource limits, and what a SIGTERM under load keeps.

* --max-connections: sockets beyond the limit are closed right after accept
  (and the refusal is logged); closing some makes room again.
* --connect-timeout: a socket that sends nothing, or only part of a CONNECT,
  is closed after the timeout; connected clients are not.
* the per-connection outgoing byte bound (16 MiB): a subscriber that stops
  reading under a QoS 0 flood costs the broker bounded memory, loses QoS 0
  messages (in order, with gaps), and does not hold up a subscriber that reads.
* SIGTERM in the middle of a QoS 1 flood: every message the publisher got a
  PUBACK for reaches the persistent subscriber, before the shutdown or from
  the stored session after a restart on the same --data-dir.

(--max-packet-size is covered by test_malformed.py:
test_oversize_packet_closes_only_that_connection and
test_max_packet_size_counts_whole_packet.)

These tests use our binary's flags and log lines, so all are ``ours_only``.
Raw connections are read by ``SeqReader``, a thread that parses the byte
stream in bulk: paho 1.6 cannot keep up with a flood of hundreds of
thousands of messages, and the tests need the order in which they arrive.
"""

from __future__ import annotations

import collections
import re
import select
import signal
import os
import socket
import struct
import threading
import time

import pytest

from helpers import (CONNACK, PINGREQ_BYTES, PINGRESP, PUBLISH, SUBACK, Closed, RawConnection, connect_packet,
                     encode_remaining_length, encode_string, publish_packet, round_trip, subscribe_packet,
                     unique_id)
from mqtt_support import PUBACK, ack_packet, wait_gone

pytestmark = pytest.mark.ours_only(reason="our binary's limit flags and log lines")

SEQ = struct.Struct("!Q")


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def vm_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def raw_connect(server, *, rcvbuf: int | None = None) -> RawConnection:
    """A RawConnection, optionally with SO_RCVBUF set before connect (so the window stays small)."""
    if rcvbuf is None:
        return RawConnection(server)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(5.0)
    sock.connect((server.host, server.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    raw = RawConnection.__new__(RawConnection)
    raw.sock, raw.buf, raw.local_port = sock, bytearray(), sock.getsockname()[1]
    return raw


def subscribe_raw(raw: RawConnection, topic_filter: str, qos: int) -> None:
    raw.send(subscribe_packet([(topic_filter, qos)], packet_id=1))
    p = raw.recv_packet()
    assert p.ptype == SUBACK and p.body == struct.pack("!HB", 1, qos), f"expected SUBACK granting {qos}, got {p}"


class SeqReader:
    """Reads a raw MQTT connection in a thread, in bulk.

    PUBLISH payloads of exactly 8 bytes, or at least 8 with ``seq_prefix``,
    carry a big-endian sequence number (recorded in ``seqs``, in arrival
    order); other payloads are sentinels (counted in ``sentinels``). With
    ``ack`` every QoS 1 PUBLISH is answered with a PUBACK (the acks of one
    read are sent together). ``closed`` is set when the server closes.
    """

    def __init__(self, raw: RawConnection, *, ack: bool = False, seq_prefix: bool = False):
        self.raw = raw
        self.ack = ack
        self.seq_prefix = seq_prefix
        self.seqs: list[int] = []
        self.sentinels = 0
        self.other: list[int] = []  # types of packets that are not PUBLISH
        self.closed = False
        self.error: BaseException | None = None
        self.cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        sock = self.raw.sock
        buf = bytearray(self.raw.buf)  # whatever RawConnection had read ahead
        self.raw.buf.clear()
        try:
            while not self._stop:
                if buf:
                    consumed = self._parse(buf)
                    del buf[:consumed]
                r, _, _ = select.select([sock], [], [], 0.2)
                if not r:
                    continue
                try:
                    chunk = sock.recv(1 << 20)
                except (ConnectionResetError, ConnectionAbortedError):
                    chunk = b""
                if not chunk:
                    break
                buf += chunk
        except BaseException as e:  # surfaced by the test through .error
            self.error = e
        finally:
            with self.cond:
                self.closed = True
                self.cond.notify_all()

    def _parse(self, buf: bytearray) -> int:
        """Parse the whole packets in ``buf``; return how many bytes they took."""
        pos, n = 0, len(buf)
        seqs, sentinels, acks = [], 0, []
        while n - pos >= 2:
            length, mult, i, complete = 0, 1, pos + 1, False
            while i < n and i <= pos + 4:
                b = buf[i]
                length += (b & 0x7F) * mult
                mult *= 128
                i += 1
                if not b & 0x80:
                    complete = True
                    break
            if not complete or i + length > n:
                break  # incomplete fixed header or body
            first = buf[pos]
            if first >> 4 == PUBLISH:
                qos = (first >> 1) & 0x03
                tlen = (buf[i] << 8) | buf[i + 1]
                p = i + 2 + tlen
                if qos:
                    acks.append(ack_packet(PUBACK, (buf[p] << 8) | buf[p + 1]))
                    p += 2
                plen = i + length - p
                if plen == 8 or (self.seq_prefix and plen >= 8):
                    seqs.append(SEQ.unpack_from(buf, p)[0])
                else:
                    sentinels += 1
            else:
                self.other.append(first >> 4)
            pos = i + length
        if acks and self.ack:
            self.raw.sock.sendall(b"".join(acks))
        if seqs or sentinels:
            with self.cond:
                self.seqs.extend(seqs)
                self.sentinels += sentinels
                self.cond.notify_all()
        return pos

    def wait(self, predicate, timeout: float, what: str) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: predicate(self) or self.closed, timeout)
            done = predicate(self)
        if self.error is not None:
            raise AssertionError(f"reader failed: {self.error!r}")
        assert ok and done, (f"timed out after {timeout}s (closed={self.closed}) waiting for {what}; "
                             f"have {len(self.seqs)} sequence numbers, {self.sentinels} sentinels")

    def stop(self) -> None:
        self._stop = True
        self._thread.join(2.0)


def connect_raw(server, client_id: str | None = None, *, clean: bool = True,
                rcvbuf: int | None = None, session_present: bool = False) -> RawConnection:
    raw = raw_connect(server, rcvbuf=rcvbuf)
    raw.send(connect_packet(client_id or unique_id("l"), clean=clean))
    p = raw.recv_packet()
    want = bytes([1 if session_present else 0, 0])
    assert p.ptype == CONNACK and p.body == want, f"expected CONNACK {want!r}, got {p}"
    return raw


# --------------------------------------------------------------------------
# --max-connections
# --------------------------------------------------------------------------


def test_max_connections_refuses_beyond_limit_and_recovers(server_factory, client_factory):
    """--max-connections 20: of 25 clients the first 20 get CONNACK, the other 5 are closed at once
    (and the refusal is logged); once 10 have gone, 10 new ones are accepted, and a 21st is not."""
    limit = 20
    srv = server_factory("--max-connections", str(limit))
    # The fixture's port probe is a connection too: see one client through a full
    # connect/disconnect first, by which time the probe (accepted before it) is closed.
    warm = client_factory(srv).connect()
    warm_id = warm.client_id
    mark = srv.log.mark()
    warm.close()
    wait_gone(srv, warm_id, since=mark)

    mark = srv.log.mark()
    accepted: list[tuple[str, RawConnection]] = []
    refused: list[RawConnection] = []
    refused_at: list[int] = []
    try:
        for i in range(25):
            cid = unique_id("mc")
            raw = RawConnection(srv)
            raw.send(connect_packet(cid))  # False (not sent) if already closed: that is fine
            try:
                p = raw.recv_packet()
            except Closed:
                refused.append(raw)
                refused_at.append(i)
                continue
            assert p.ptype == CONNACK and p.body == b"\x00\x00", f"connection {i}: {p}"
            accepted.append((cid, raw))
        assert len(accepted) == limit, f"{len(accepted)} CONNACKs of 25 with --max-connections {limit}"
        # The first twenty are served, the last five closed without an answer.
        assert refused_at == [20, 21, 22, 23, 24]
        line = srv.log.wait_for(r"refused a connection from \S+: --max-connections 20 reached", since=mark)
        assert f":{refused[0].local_port}:" in line, f"refusal logged for another peer: {line}"

        # Close ten; once the broker has seen them go, ten new clients are accepted.
        mark = srv.log.mark()
        for cid, raw in accepted[:10]:
            raw.close()
        for cid, _ in accepted[:10]:
            wait_gone(srv, cid, since=mark)
        del accepted[:10]
        for i in range(10):
            cid = unique_id("mc")
            raw = RawConnection(srv)
            accepted.append((cid, raw))
            raw.handshake(connect_packet(cid))
        # ... and the limit still holds: the 21st is refused again.
        with RawConnection(srv) as extra:
            extra.send(connect_packet(unique_id("mc")))
            assert extra.expect_closed() == []
        # The accepted ones are still served.
        _, raw = accepted[-1]
        raw.send(PINGREQ_BYTES)
        assert raw.recv_packet().ptype == PINGRESP
    finally:
        for _, raw in accepted:
            raw.close()
        for raw in refused:
            raw.close()


# --------------------------------------------------------------------------
# --connect-timeout
# --------------------------------------------------------------------------


def test_connect_timeout_closes_silent_and_half_connect_sockets(server_factory, client_factory):
    """--connect-timeout 2: a socket that sends nothing, and one that sends half a CONNECT, are closed
    after 2 s (ticks every 250 ms: by 3.5 s); connected clients, even silent ones, stay."""
    srv = server_factory("--connect-timeout", "2")
    pub = client_factory(srv).connect()
    sub = client_factory(srv).connect()
    sub.subscribe("ct/#")

    results: dict[str, float] = {}
    errors: list[str] = []

    def watch(name: str, first_bytes: bytes) -> None:
        try:
            with RawConnection(srv) as raw:
                t0 = time.monotonic()
                if first_bytes:
                    raw.send(first_bytes)
                got = raw.expect_closed(timeout=6.0)
                results[name] = time.monotonic() - t0
                if got:
                    errors.append(f"{name}: got {got} before the close")
        except AssertionError as e:
            errors.append(f"{name}: {e}")

    half = connect_packet(unique_id("ct"))
    threads = [threading.Thread(target=watch, args=("silent", b"")),
               threading.Thread(target=watch, args=("half-connect", half[:len(half) // 2]))]
    # A raw client that did CONNECT and then stays silent (keep-alive 60 s) past the timeout.
    connected = RawConnection(srv)
    try:
        connected.handshake(connect_packet(unique_id("ct"), keepalive=60))
        for t in threads:
            t.start()
        for t in threads:
            t.join(8.0)
        assert not errors, errors
        for name in ("silent", "half-connect"):
            assert 1.9 <= results[name] <= 3.5, f"{name}: closed after {results[name]:.2f}s, expected 2-3.5 s"
        print(f"\nclosed after: silent {results['silent']:.2f}s, half CONNECT {results['half-connect']:.2f}s")
        # The connected clients were not touched.
        round_trip(pub, sub, "ct/after")
        pub.assert_still_connected()
        sub.assert_still_connected()
        connected.send(PINGREQ_BYTES)
        assert connected.recv_packet().ptype == PINGRESP
    finally:
        connected.close()


# --------------------------------------------------------------------------
# The outgoing byte bound of a connection that stops reading
# --------------------------------------------------------------------------


def test_stalled_subscriber_memory_bounded_under_flood(server_factory):
    """A QoS 0 subscriber that stops reading (small receive window) under a 300 MiB flood: the
    broker's RSS grows by far less than 64 MiB (16 MiB outgoing bound plus slack), a subscriber that
    reads gets every message in order, and the stalled one gets the head of the flood then gaps."""
    total, batch, size = 300_000, 10_000, 1024
    srv = server_factory()
    pid = srv.process.pid

    stalled = connect_raw(srv, rcvbuf=4096)  # small window: the broker's bytes back up at once
    subscribe_raw(stalled, "flood/#", 0)
    healthy_raw = connect_raw(srv)
    subscribe_raw(healthy_raw, "flood/#", 0)
    healthy = SeqReader(healthy_raw, seq_prefix=True)
    pub = connect_raw(srv)

    before = vm_kib(pid)
    header = bytes([PUBLISH << 4]) + encode_remaining_length(2 + len("flood/x") + size) + encode_string("flood/x")
    pad = b"p" * (size - SEQ.size)
    t0 = time.monotonic()
    samples = []
    try:
        for start in range(0, total, batch):
            pub.sock.sendall(b"".join(header + SEQ.pack(s) + pad for s in range(start, start + batch)))
            end = start + batch
            healthy.wait(lambda r: len(r.seqs) >= end, 15.0, f"the healthy subscriber to receive {end} messages")
            samples.append(vm_kib(pid)["VmRSS"])
        flood_s = time.monotonic() - t0
        after = vm_kib(pid)
        samples.append(after["VmRSS"])
        assert healthy.seqs == list(range(total)), "the healthy subscriber missed or reordered messages"

        # Now the stalled subscriber reads: it got the head of the flood, then what the bound let
        # through, in order, with gaps. A sentinel gets through once its queue is below the bound.
        drained = SeqReader(stalled, seq_prefix=True)
        sentinel = publish_packet("flood/end", b"END")
        for _ in range(40):
            pub.sock.sendall(sentinel)
            with drained.cond:
                if drained.cond.wait_for(lambda: drained.sentinels > 0 or drained.closed, 0.5):
                    break
        drained.wait(lambda r: r.sentinels > 0, 1.0, "a sentinel on the stalled subscriber")
        got = drained.seqs
        assert got == sorted(set(got)), "the stalled subscriber's messages came out of order or twice"
        assert got[:100] == list(range(100)), "the stalled subscriber did not get the head of the flood"
        # 16 MiB queued plus the kernel's socket buffers: far fewer than the 300,000 published.
        assert 0 < len(got) < total // 3, f"stalled subscriber received {len(got)} of {total}"
    finally:
        healthy.stop()
        for raw in (stalled, healthy_raw, pub):
            raw.close()

    # VmHWM is updated lazily by the kernel, so the peak is also taken from the samples.
    peak = max(samples + [after["VmHWM"]])
    growth_mib = (after["VmRSS"] - before["VmRSS"]) / 1024
    peak_growth_mib = (peak - before["VmRSS"]) / 1024
    print(f"\nflood of {total} x {size} B in {flood_s:.1f}s; VmRSS before {before['VmRSS']} KiB, "
          f"after {after['VmRSS']} KiB (growth {growth_mib:.1f} MiB), peak {peak} KiB "
          f"(growth {peak_growth_mib:.1f} MiB); stalled subscriber got {len(got)} messages")
    if os.environ.get("MQTT_SERVER_SANITIZED"):
        # AddressSanitizer keeps freed memory in quarantine (256 MiB by default) and adds shadow
        # memory, so RSS says nothing about the broker's own bound there; the delivery checks
        # above still ran.
        return
    assert peak_growth_mib < 64, f"peak RSS grew by {peak_growth_mib:.1f} MiB under the flood"


# --------------------------------------------------------------------------
# SIGTERM in the middle of a QoS 1 flood
# --------------------------------------------------------------------------


class AckedPublisher:
    """Publishes QoS 1 messages numbered 0, 1, 2 ... as fast as the broker acknowledges them
    (at most ``window`` unacknowledged), and records the numbers whose PUBACK arrived."""

    def __init__(self, raw: RawConnection, topic: str, window: int = 2000, may_send=lambda sent: True):
        self.raw, self.topic, self.window, self.may_send = raw, topic, window, may_send
        self.pending: dict[int, int] = {}  # packet id -> sequence number
        self.free = collections.deque(range(1, window + 1))
        self.acked: set[int] = set()
        self.sent = 0
        self.done = False  # the connection ended
        self.cond = threading.Condition()
        self.stopping = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._sender = threading.Thread(target=self._send, daemon=True)
        self._reader.start()
        self._sender.start()

    def _read(self):
        try:
            while not self.stopping:
                try:
                    p = self.raw.recv_packet(0.2)
                except AssertionError:
                    continue  # nothing within 0.2 s: look at the stop flag again
                if p.ptype == PUBACK:
                    (pid,) = struct.unpack("!H", p.body)
                    with self.cond:
                        seq = self.pending.pop(pid)
                        self.acked.add(seq)
                        self.free.append(pid)
                        self.cond.notify_all()
        except (Closed, OSError):
            pass
        finally:
            with self.cond:
                self.done = True
                self.cond.notify_all()

    def _send(self):
        prefix = encode_string(self.topic)
        first = bytes([(PUBLISH << 4) | 0x02]) + encode_remaining_length(len(prefix) + 2 + SEQ.size) + prefix
        while not self.stopping:
            with self.cond:
                self.cond.wait_for(lambda: (self.free and self.may_send(self.sent)) or self.done or self.stopping,
                                   0.005)  # may_send watches another thread: look again every 5 ms
                if self.done or self.stopping:
                    return
                chunk = []
                while self.free and len(chunk) < 200 and self.may_send(self.sent):
                    pid = self.free.popleft()
                    self.pending[pid] = self.sent
                    chunk.append(first + struct.pack("!H", pid) + SEQ.pack(self.sent))
                    self.sent += 1
            if not chunk:
                continue
            try:
                self.raw.sock.sendall(b"".join(chunk))
            except OSError:
                return

    def wait_acked(self, n: int, timeout: float) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.acked) >= n or self.done, timeout)
        assert ok and len(self.acked) >= n, f"only {len(self.acked)} PUBACKs within {timeout}s"

    def wait_done(self, timeout: float) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.done, timeout), "the publisher's connection did not end"
        self._sender.join(timeout)

    def stop(self):
        self.stopping = True
        with self.cond:
            self.cond.notify_all()
        self._sender.join(2.0)
        self._reader.join(2.0)


def test_sigterm_mid_flood_keeps_every_acknowledged_message(server_factory, tmp_path):
    """SIGTERM while a publisher floods QoS 1 messages to a persistent subscriber: exit code 0, and
    every message the publisher got a PUBACK for reaches the subscriber, before the shutdown or from
    its stored session after a restart on the same --data-dir (duplicates allowed, loss not)."""
    data_dir = tmp_path / "store"
    args = ("--data-dir", str(data_dir), "--max-queued", "100000")
    srv = server_factory(*args)
    sub_id = unique_id("term")

    sub_raw = connect_raw(srv, sub_id, clean=False)
    subscribe_raw(sub_raw, "term/t", 1)
    before = SeqReader(sub_raw, ack=True)
    # The subscriber's queue (beyond 20 in flight) must stay below --max-queued: the publisher
    # stays less than 90,000 messages ahead of what the subscriber has received.
    pub = AckedPublisher(connect_raw(srv), "term/t", may_send=lambda sent: sent - len(before.seqs) < 90_000)
    try:
        # Let the flood run for about a second (and at least until it is really flowing).
        pub.wait_acked(1000, 10.0)
        t_flood = time.monotonic()
        # ~1 s of flood, or less once the subscriber is 60,000 behind: SIGTERM must land while the
        # publisher runs at full speed, not held back by the 90,000 cap (pub.cond sees every PUBACK).
        with pub.cond:
            pub.cond.wait_for(lambda: pub.done or pub.sent - len(before.seqs) >= 60_000, 1.0)
        assert not pub.done, "the publisher's connection ended before SIGTERM"
        mark = srv.log.mark()
        with pub.cond:
            sent_at_term, acked_at_term = pub.sent, len(pub.acked)
        srv.send_signal(signal.SIGTERM)
        t_term = time.monotonic()
        pub.wait_done(10.0)
        rc = srv.wait_exit(10.0)
        exit_s = time.monotonic() - t_term
        assert rc == 0, f"exit code {rc} after SIGTERM"
        before.wait(lambda r: r.closed, 5.0, "the subscriber's connection to end")
        assert srv.log.wait_for(r"shutting down", since=mark)
    finally:
        pub.stop()
        before.stop()
        sub_raw.close()
    acked = set(pub.acked)
    got_before = list(before.seqs)
    assert not re.search(r"message queue full", srv.log.text()), "the session queue overflowed: test too big"
    assert len(acked) > 1000

    # Restart on the same store; the session comes back with what it had not received.
    srv2 = server_factory(*args)
    sub2_raw = connect_raw(srv2, sub_id, clean=False, session_present=True)
    after = SeqReader(sub2_raw, ack=True)
    try:
        with RawConnection(srv2) as p2:
            p2.handshake()
            p2.send(publish_packet("term/t", b"END", qos=1, packet_id=1))
            assert p2.recv_packet().ptype == PUBACK
        # Queued messages go out before the new one: the sentinel comes last.
        after.wait(lambda r: r.sentinels > 0, 15.0, "the sentinel after the stored messages")
    finally:
        after.stop()
        sub2_raw.close()
    got_after = list(after.seqs)

    delivered = set(got_before) | set(got_after)
    lost = sorted(acked - delivered)
    print(f"\nsent {pub.sent}, acknowledged {len(acked)}; subscriber got {len(got_before)} before the "
          f"shutdown and {len(got_after)} after the restart ({len(delivered)} distinct); "
          f"SIGTERM {t_term - t_flood:.2f}s into the flood, when {sent_at_term} were sent and "
          f"{acked_at_term} acknowledged ({len(acked) - acked_at_term} PUBACKs came after it); "
          f"exit {exit_s:.2f}s after SIGTERM")
    assert not lost, (f"{len(lost)} acknowledged messages lost across SIGTERM + restart, e.g. {lost[:20]} "
                      f"(acked {len(acked)}, before {len(got_before)}, after {len(got_after)})")
    assert delivered <= set(range(pub.sent)), "the subscriber got numbers that were never sent"
