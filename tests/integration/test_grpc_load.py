"""gRPC streams under load: many messages on concurrent streams with nothing missing, and a
stalled stream that neither slows the devices nor the other streams, and that is told what it
missed (dropped_before)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

import grpc_support as gs
from helpers import unique_id

pytestmark = pytest.mark.ours_only(reason="gRPC API of our binary")

# A stream consumer in its own process (the GIL would make three in one process share a core):
# counts messages and dropped_before, checks the per-device order of sequence-numbered payloads.
CONSUMER = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    import grpc
    import published_packet_pb2 as pb, published_packet_pb2_grpc as pbg
    target, expected = sys.argv[2], int(sys.argv[3])
    ch = grpc.insecure_channel(target)
    grpc.channel_ready_future(ch).result(timeout=10)  # the server may still be starting
    call = pbg.PublishedPacketServiceStub(ch).StreamPublishedPayload(pb.PublishedPacketRequest())
    call.initial_metadata()
    if call.done():  # failed instead of starting
        raise SystemExit(f"stream did not start: {call.code()} {call.details()}")
    print("ready", flush=True)
    count = dropped = order_errors = 0
    last, per_device = {}, {}
    t0 = None
    for m in call:
        if t0 is None:
            t0 = time.monotonic()
        count += 1
        dropped += m.dropped_before
        seq = int(m.payload.split(b" ")[0])
        if seq != last.get(m.device_id, -1) + 1:
            order_errors += 1
        last[m.device_id] = seq
        per_device[m.device_id] = per_device.get(m.device_id, 0) + 1
        if count + dropped >= expected:
            break
    print(json.dumps({"count": count, "dropped": dropped, "order_errors": order_errors,
                      "per_device": per_device, "secs": time.monotonic() - t0}), flush=True)
    call.cancel()
""")

# A paho device publishing QoS 0 sequence numbers 0..n-1 at about `rate` messages a second.
PUBLISHER = textwrap.dedent("""
    import json, sys, time
    import paho.mqtt.client as mqtt
    host, port, cid, n, rate = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    c = mqtt.Client(client_id=cid)
    c.connect(host, port)
    c.loop_start()
    t0 = time.monotonic()
    info = None
    for i in range(n):
        info = c.publish("load/" + cid, str(i).encode(), qos=0)
        if i % 500 == 499:
            ahead = t0 + (i + 1) / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)  # pacing, not waiting for anything
    info.wait_for_publish(60)
    print(json.dumps({"secs": time.monotonic() - t0}), flush=True)
    c.disconnect()
    c.loop_stop()
""")

TOTAL = 100_000
PUBLISHERS = 2
STREAMS = 3
RATE = 16_000  # messages/s over all publishers: 100,000 in about 6 s


@pytest.mark.timeout(90)
def test_100k_messages_on_three_streams_nothing_missing(server, tmp_path):
    """100,000 device messages (2 paho devices, QoS 0) counted on 3 concurrent streams: every stream
    gets every message, in order per device, with no dropped_before."""
    stub_dir = gs.stub_dir()
    (tmp_path / "consumer.py").write_text(CONSUMER)
    (tmp_path / "publisher.py").write_text(PUBLISHER)
    procs = []
    try:
        consumers = [subprocess.Popen([sys.executable, str(tmp_path / "consumer.py"), str(stub_dir),
                                       gs.grpc_target(server), str(TOTAL)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for _ in range(STREAMS)]
        procs += consumers
        for c in consumers:
            assert c.stdout.readline().strip() == "ready", c.stderr.read()
        per_pub = TOTAL // PUBLISHERS
        ids = [unique_id("load") for _ in range(PUBLISHERS)]
        t0 = time.monotonic()
        publishers = [subprocess.Popen([sys.executable, str(tmp_path / "publisher.py"), server.host,
                                        str(server.port), cid, str(per_pub), str(RATE / PUBLISHERS)],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                      for cid in ids]
        procs += publishers
        pub_results = []
        for p in publishers:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            pub_results.append(json.loads(out))
        results = []
        for c in consumers:
            out, err = c.communicate(timeout=60)
            assert c.returncode == 0, err
            results.append(json.loads(out))
        elapsed = time.monotonic() - t0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    print(f"\n100k: publishers {[round(r['secs'], 2) for r in pub_results]} s, streams "
          f"{[(r['count'], r['dropped'], round(r['secs'], 2)) for r in results]}, all done in {elapsed:.1f} s")
    for r in results:
        assert r["dropped"] == 0, f"a stream that keeps up lost messages: {r}"
        assert r["count"] == TOTAL, r
        assert r["order_errors"] == 0, r
        assert r["per_device"] == {cid: per_pub for cid in ids}, r


@pytest.mark.timeout(90)
def test_stalled_stream_slows_nobody_and_learns_what_it_missed(server_factory, client_factory, pb_stubs,
                                                                tmp_path):
    """One stream never reads while a device publishes 20,000 messages of 1 KiB. A healthy stream
    gets all of them, the device's QoS 1 round trips stay fast, and the server logs the drops. When
    the stalled stream reads again, the gap is reported on the next message: what it received plus
    the dropped_before counts add up to exactly what was published."""
    queue_bound = 1000
    srv = server_factory("--grpc-stream-queue", str(queue_bound))
    ch_stalled = gs.channel(srv)
    mark = srv.log.mark()
    stalled_call = pb_stubs.pp_grpc.PublishedPacketServiceStub(ch_stalled).StreamPublishedPayload(
        pb_stubs.pp.PublishedPacketRequest())
    stalled_call.initial_metadata()  # registered, and never read until later
    assert not stalled_call.done()

    n, rate = 20_000, 4000  # 20 MB in about 5 s
    (tmp_path / "consumer.py").write_text(CONSUMER)
    healthy = subprocess.Popen([sys.executable, str(tmp_path / "consumer.py"), str(gs.stub_dir()),
                                gs.grpc_target(srv), str(n)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert healthy.stdout.readline().strip() == "ready", healthy.stderr.read()
        dev = client_factory(srv, client_id=unique_id("flood")).connect()
        t0 = time.monotonic()
        for i in range(n):
            info = dev.publish_nowait("flood", f"{i} ".encode().ljust(1024, b"x"), qos=0)
            if i % 500 == 499:
                ahead = t0 + (i + 1) / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)  # pacing, so that the healthy (Python) reader keeps up
        info.wait_for_publish(10)
        publish_secs = time.monotonic() - t0
        out, err = healthy.communicate(timeout=30)
        assert healthy.returncode == 0, err
    finally:
        if healthy.poll() is None:
            healthy.kill()
            healthy.wait()
    healthy_secs = time.monotonic() - t0
    result = json.loads(out)
    assert (result["count"], result["dropped"], result["order_errors"]) == (n, 0, 0), result

    # The stalled stream overflowed: logged, not silent.
    srv.log.wait_for(r"gRPC stream \d+ .* is not keeping up: its queue is full \(1000 messages\)", since=mark)
    # Devices are not slowed: QoS 1 round trips (PUBLISH -> PUBACK) while the stalled stream is full.
    t1 = time.monotonic()
    for i in range(50):
        dev.publish("rtt", b"r", qos=1)
    rtt_secs = time.monotonic() - t1
    assert rtt_secs < 5, f"50 QoS 1 round trips took {rtt_secs:.1f} s with a stalled stream"

    # Now read the stalled stream. Sentinels keep coming until one arrives (those sent while its
    # queue is still full are dropped too, and counted).
    stalled = gs.StreamReader(stalled_call)
    sent_sentinels = 0
    first_sentinel = None
    deadline = time.monotonic() + 30
    received = []
    while first_sentinel is None:
        assert time.monotonic() < deadline, f"no sentinel within 30 s; got {stalled.count} messages"
        dev.publish("sentinel", str(sent_sentinels).encode(), qos=1)
        sent_sentinels += 1
        try:
            while True:
                m = stalled.get(timeout=0.2)
                received.append(m)
                if m.topic == "sentinel":
                    first_sentinel = int(m.payload)
                    break
        except AssertionError:
            pass  # nothing more for now: send another sentinel
    flood = [m for m in received if m.topic == "flood"]
    rtt = [m for m in received if m.topic == "rtt"]
    dropped = sum(m.dropped_before for m in received)
    print(f"\nstalled: published {n} in {publish_secs:.2f} s; healthy stream had all after {healthy_secs:.2f} s; "
          f"stalled stream received {len(flood)} flood + {len(rtt)} rtt, dropped_before total {dropped}; "
          f"sentinel #{first_sentinel} was the first to arrive")
    assert dropped > 0 and any(m.dropped_before > 0 for m in received)
    # Exactly accounted for: everything published up to the first sentinel that arrived.
    assert len(received) + dropped == n + 50 + first_sentinel + 1
    # What did arrive came in order: an unbroken prefix of the flood, then later messages (tail drop).
    seqs = [int(m.payload.split(b" ")[0]) for m in flood]
    assert seqs == sorted(seqs) and seqs[:queue_bound] == list(range(queue_bound)), seqs[:20]
    stalled.cancel()
    srv.log.wait_for(r"gRPC stream \d+ .* ended: \d+ messages sent, [1-9]\d* dropped", since=mark)
    ch_stalled.close()


@pytest.mark.timeout(60)
def test_shutdown_with_reading_and_stalled_streams(server_factory, client_factory, pb_stubs):
    """SIGTERM while one stream reads and another is stalled (its writes held by flow control, its
    queue full): the server ends both, and exits 0 promptly; the reader sees its stream end."""
    srv = server_factory("--grpc-stream-queue", "100")
    ch_stalled, ch_reading = gs.channel(srv), gs.channel(srv)
    stalled = pb_stubs.pp_grpc.PublishedPacketServiceStub(ch_stalled).StreamPublishedPayload(
        pb_stubs.pp.PublishedPacketRequest())
    stalled.initial_metadata()
    reading = gs.StreamReader(pb_stubs.pp_grpc.PublishedPacketServiceStub(ch_reading).StreamPublishedPayload(
        pb_stubs.pp.PublishedPacketRequest()), keep=False).ready()
    mark = srv.log.mark()
    dev = client_factory(srv).connect()
    for _ in range(5000):
        info = dev.publish_nowait("flood", b"y" * 1024)
    info.wait_for_publish(10)
    srv.log.wait_for(r"is not keeping up", since=mark)
    reading.wait_count(1, timeout=10)
    t0 = time.monotonic()
    rc = srv.stop()
    took = time.monotonic() - t0
    assert rc == 0, srv.log.tail(20)
    assert took < 8, f"shutdown took {took:.1f} s"
    assert reading.done.wait(5), "the reading stream did not end with the server"
    ch_stalled.close()
    ch_reading.close()


@pytest.fixture(scope="module")
def pb_stubs():
    return gs.stubs()
