"""QoS 1 under load, with raw asyncio MQTT clients (paho's Python loop is too slow for this).

Each publisher keeps a window of unacknowledged PUBLISHes (it is the client's
own flow control; 3.1.1 sets no limit), each subscriber acknowledges every
PUBLISH as it parses it. Payloads carry a sequence number, so a subscriber can
tell lost, duplicated and reordered messages apart.

End-to-end flow control: a publisher also stays at most E2E_WINDOW messages
ahead of its subscriber. Without it a publisher outruns its subscriber, and
both brokers bound what they hold per subscriber (ours: --max-queued, default
1000, dropping the oldest; Mosquitto: max_queued_messages 1000, dropping the
newest), for online subscribers too; a PUBACK only means the broker took the
message over. E2E_WINDOW stays below that bound, so no message may be lost.
"""

from __future__ import annotations

import asyncio
import struct
import time

import pytest

from helpers import connect_packet, encode_string, subscribe_packet, unique_id

CONNACK, PUBLISH, PUBACK, SUBACK = 2, 3, 4, 9
PUB_WINDOW = 200  # PUBLISHes not yet PUBACKed by the broker
E2E_WINDOW = 500  # PUBLISHes not yet received by the subscriber (see module doc)


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


class Conn:
    """One raw MQTT 3.1.1 connection on asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.buf = bytearray()

    @classmethod
    async def open(cls, server, client_id: str) -> "Conn":
        reader, writer = await asyncio.open_connection(server.host, server.port, limit=1 << 20)
        c = cls(reader, writer)
        writer.write(connect_packet(client_id, keepalive=120))
        ptype, _, body = await c.next_packet()
        assert (ptype, body) == (CONNACK, b"\x00\x00"), (ptype, body)
        return c

    def packets(self):
        """Parse every whole packet in the buffer: a list of (type, flags, body)."""
        buf = self.buf
        i, n = 0, len(buf)
        out = []
        while n - i >= 2:
            j, length, mult, complete = i + 1, 0, 1, False
            while j < n and j <= i + 4:
                b = buf[j]
                length += (b & 0x7F) * mult
                mult *= 128
                j += 1
                if not b & 0x80:
                    complete = True
                    break
            if not complete or n - j < length:
                break
            out.append((buf[i] >> 4, buf[i] & 0x0F, bytes(buf[j:j + length])))
            i = j + length
        del buf[:i]
        return out

    async def fill(self) -> None:
        data = await self.reader.read(1 << 16)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buf += data

    async def next_packet(self):
        while True:
            got = self.packets()
            if got:
                assert len(got) == 1, got
                return got[0]
            await self.fill()

    def close(self) -> None:
        self.writer.close()


async def _subscriber(server, topic: str, ready: asyncio.Event, expected: int, received: list,
                      ids_seen: set, progress: asyncio.Event) -> None:
    c = await Conn.open(server, unique_id("lsub"))
    try:
        c.writer.write(subscribe_packet([(topic, 1)], packet_id=1))
        ptype, _, body = await c.next_packet()
        assert (ptype, body) == (SUBACK, b"\x00\x01\x01"), (ptype, body)
        ready.set()
        tlen = len(topic)
        while len(received) < expected:
            await c.fill()
            acks = bytearray()
            unacked = set()
            for ptype, flags, body in c.packets():
                assert ptype == PUBLISH and (flags >> 1) & 3 == 1, (ptype, flags, body[:20])
                pid = body[2 + tlen:4 + tlen]
                # An id is not reused before this client has acknowledged it [MQTT-2.3.1-2].
                assert pid not in unacked, f"packet id {pid.hex()} reused before its PUBACK"
                unacked.add(pid)
                ids_seen.add(pid)
                received.append(int(body[4 + tlen:]))
                acks += b"\x40\x02" + pid
            if acks:
                c.writer.write(bytes(acks))
                progress.set()
    finally:
        c.close()


async def _publisher(server, topic: str, start: asyncio.Event, count: int, acked: list, received: list,
                     progress: asyncio.Event) -> None:
    c = await Conn.open(server, unique_id("lpub"))
    try:
        await start.wait()
        topic_b = encode_string(topic)
        outstanding = 0
        next_seq = 0
        while next_seq < count or outstanding:
            chunk = bytearray()
            while next_seq < count and outstanding < PUB_WINDOW and next_seq - len(received) < E2E_WINDOW:
                pid = next_seq % 65535 + 1
                body = topic_b + struct.pack("!H", pid) + str(next_seq).encode()
                chunk += b"\x32" + _remaining_length(len(body)) + body
                next_seq += 1
                outstanding += 1
            if chunk:
                c.writer.write(bytes(chunk))
            if not outstanding:  # all PUBACKed: wait for the subscriber to catch up
                progress.clear()
                if next_seq - len(received) >= E2E_WINDOW:
                    await progress.wait()
                continue
            await c.fill()
            for ptype, _, body in c.packets():
                assert ptype == PUBACK, (ptype, body)
                outstanding -= 1
                acked[0] += 1
    finally:
        c.close()


async def _run_pairs(server, pairs: int, count: int, prefix: str):
    received = [[] for _ in range(pairs)]
    ids_seen = [set() for _ in range(pairs)]
    acked = [[0] for _ in range(pairs)]
    readies = [asyncio.Event() for _ in range(pairs)]
    progress = [asyncio.Event() for _ in range(pairs)]
    start = asyncio.Event()
    tasks = [asyncio.create_task(
        _subscriber(server, f"{prefix}/{i}", readies[i], count, received[i], ids_seen[i], progress[i]))
        for i in range(pairs)]
    tasks += [asyncio.create_task(
        _publisher(server, f"{prefix}/{i}", start, count, acked[i], received[i], progress[i]))
        for i in range(pairs)]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 10)
    t0 = time.monotonic()
    start.set()
    await asyncio.gather(*tasks)
    return time.monotonic() - t0, received, acked, ids_seen


def _run(server, pairs, count, prefix, limit):
    async def main():
        return await asyncio.wait_for(_run_pairs(server, pairs, count, prefix), limit)
    try:
        return asyncio.run(main())
    except asyncio.TimeoutError:
        raise AssertionError(f"{pairs} x {count} QoS 1 messages not all delivered within {limit}s") from None


@pytest.mark.timeout(90)
def test_qos1_load_10_pairs_x_10000(server):
    """10 publisher/subscriber pairs, each pair its own topic, 10,000 QoS 1 messages per pair,
    all at once: every message is PUBACKed to its publisher [MQTT-4.3.2-2] and delivered to its
    subscriber exactly once (no loss, no duplicate) and in publish order [MQTT-4.6.0-6], within
    a limit that fits a shared 2-core machine. The rate is printed (pytest -s)."""
    pairs, count, limit = 10, 10_000, 60.0
    elapsed, received, acked, _ = _run(server, pairs, count, "load", limit)
    total = pairs * count
    rate = total / elapsed
    print(f"\n{server.kind}: {total} QoS 1 messages through {pairs} pairs in {elapsed:.2f}s = {rate:,.0f} msg/s")
    for i in range(pairs):
        assert acked[i][0] == count, f"pair {i}: {acked[i][0]} PUBACKs of {count}"
        got = received[i]
        dups = len(got) - len(set(got))
        assert dups == 0, f"pair {i}: {dups} duplicates"
        assert sorted(got) == list(range(count)), f"pair {i}: {count - len(set(got))} missing"
        assert got == list(range(count)), f"pair {i}: out of order"
    assert elapsed < 30, f"took {elapsed:.1f}s ({rate:,.0f} msg/s)"


@pytest.mark.timeout(90)
def test_qos1_packet_ids_wrap(server):
    """70,000 QoS 1 messages to one subscriber make the server's packet identifiers wrap around
    65535: every id it sends is non-zero [MQTT-2.3.1-1], none is reused before the subscriber
    acknowledged it [MQTT-2.3.1-2], and every message is delivered once, in order."""
    count = 70_000
    elapsed, received, acked, ids_seen = _run(server, 1, count, "wrap", 60.0)
    print(f"\n{server.kind}: {count} QoS 1 messages through 1 pair in {elapsed:.2f}s = {count / elapsed:,.0f} msg/s")
    assert acked[0][0] == count
    assert b"\x00\x00" not in ids_seen[0]
    print(f"{len(ids_seen[0])} distinct packet ids used")
    assert received[0] == list(range(count))
