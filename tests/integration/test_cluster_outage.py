"""The cluster without NATS (issue #15): a node that cannot reach NATS at start says so, keeps
serving MQTT locally and joins once NATS is up; when NATS goes away mid-run the loss is logged
once, local traffic never stops, and cross-node traffic resumes within ~10 s of NATS being back.
Each test has a nats-server of its own (own_nats), so stopping it disturbs no other test.
SKIPs while the binary has no --cluster option.
"""

from __future__ import annotations

import threading
import time

import pytest

from cluster_support import *  # noqa: F401,F403
from cluster_support import joined_pattern
from helpers import round_trip, unique_id
from mqtt_support import track

pytestmark = [pytest.mark.ours_only(reason="the cluster is our binary's"), pytest.mark.timeout(90)]

RESUME_WITHIN = 10.0


def _client(client_factory, node, prefix="c"):
    c = client_factory(node, client_id=unique_id(prefix)).connect()
    track(c)
    return c


def _cross_node_resumes(pub, sub, topic: str, within: float) -> float:
    """Publish a fresh QoS 0 message every 0.25 s until ``sub`` gets one; the seconds it took.
    Messages sent before the link is back may be lost (QoS 0 across a partition): only that
    traffic resumes is asserted, not that these arrive."""
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < within:
        n += 1
        pub.publish(topic, f"probe{n}".encode(), qos=0)
        try:
            m = sub.get_message(timeout=0.25)
        except AssertionError:
            continue
        assert m.topic == topic, m
        return time.monotonic() - t0
    raise AssertionError(f"no cross-node message within {within}s of NATS being back ({n} probes)")


def test_node_without_nats_at_start_serves_locally_then_joins(own_nats, node_factory, client_factory):
    """NATS is not running when node A starts: A logs that it cannot reach it, serves MQTT
    locally all the same, and joins (the connected line) once nats-server is started; then its
    devices reach a device on node B."""
    a = node_factory("nA", nats=own_nats, wait_joined=False)
    a.log.wait_for(CANNOT_REACH, timeout=10)
    sub = _client(client_factory, a, "sub")
    topic = f"alone/{unique_id()}"
    sub.subscribe(topic)
    round_trip(_client(client_factory, a, "pub"), sub, topic)
    own_nats.start()
    a.log.wait_for(joined_pattern(a.node_id), timeout=15)
    b = node_factory("nB", nats=own_nats)
    remote = _client(client_factory, b, "remote")
    remote.subscribe(topic, qos=1)
    settle(client_factory, b, a)
    pub = _client(client_factory, a, "pub2")
    pub.publish(topic, b"a to b", qos=1)
    remote.expect_message(topic, b"a to b", timeout=10)


class _Ticker:
    """Publishes QoS 1 sequence numbers on one node every 50 ms from a thread."""

    def __init__(self, pub, topic: str):
        self.pub, self.topic = pub, topic
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.pub.publish_nowait(self.topic, str(self.sent).encode(), qos=1)
            self.sent += 1
            self._stop.wait(0.05)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(5)


def test_nats_outage_local_traffic_continues_cross_node_resumes(own_nats, node_factory, client_factory):
    """nats-server stopped mid-run: both nodes log the lost link (once); a QoS 1 stream local to
    node A goes on without a gap through the outage; after the restart both log the restored link
    and node A's publishes reach node B again within ~10 s."""
    own_nats.start()
    a, b = node_factory("nA", nats=own_nats), node_factory("nB", nats=own_nats)
    local_topic, cross_topic = f"out/{unique_id()}/local", f"out/{unique_id()}/cross"
    local_sub = _client(client_factory, a, "lsub")
    local_sub.subscribe(local_topic, qos=1)
    remote_sub = _client(client_factory, b, "rsub")
    remote_sub.subscribe(cross_topic, qos=0)
    settle(client_factory, b, a)
    cross_pub = _client(client_factory, a, "xpub")
    round_trip(cross_pub, remote_sub, cross_topic, timeout=10)

    ticker = _Ticker(_client(client_factory, a, "tick"), local_topic).start()
    received = []

    def drain(seconds: float):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                received.append(int(local_sub.get_message(timeout=0.1).payload))
            except AssertionError:
                pass

    try:
        drain(0.5)
        marks = [n.log.mark() for n in (a, b)]
        own_nats.stop()
        for n, since in zip((a, b), marks):
            n.log.wait_for(LINK_LOST, since=since, timeout=10)
        # Messages published from now on are published during the outage: 2 s later at least
        # the first 20 of them (one every 50 ms) must have been delivered locally.
        first_in_outage = ticker.sent
        drain(2.0)
        assert received and max(received) >= first_in_outage + 20, (
            f"local delivery on node A stalled while NATS was down: newest delivered "
            f"{max(received, default=None)}, first published in the outage {first_in_outage}")
        own_nats.start()
        back = time.monotonic()
        for n, since in zip((a, b), marks):
            n.log.wait_for(LINK_RESTORED, since=since, timeout=RESUME_WITHIN)
        left = RESUME_WITHIN - (time.monotonic() - back)
        took = _cross_node_resumes(cross_pub, remote_sub, cross_topic, max(left, 0.5))
        took += RESUME_WITHIN - left
        drain(0.5)
    finally:
        ticker.stop()
    drain(1.0)
    # locally nothing was lost or reordered, through the whole outage
    assert received == list(range(ticker.sent)), (
        f"local QoS 1 stream: sent {ticker.sent}, received {len(received)}, "
        f"gaps at {[i for i, v in enumerate(received) if v != i][:5]}")
    for n, since in zip((a, b), marks):
        lost = [ln for ln in n.log.text(since).splitlines() if "cluster: NATS link lost" in ln]
        assert len(lost) == 1, f"{n.node_id}: link loss logged {len(lost)} times: {lost}"
    print(f"cross-node traffic resumed {took:.2f}s after nats-server was back")
