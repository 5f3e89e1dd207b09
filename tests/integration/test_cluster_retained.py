"""Retained messages across the cluster (issue #15): what is retained on one node is what a
SUBSCRIBE on any node gets [MQTT-3.3.1-6], also on a node started afterwards, and an empty
retained PUBLISH on one node clears it everywhere [MQTT-3.3.1-10]. SKIPs while the binary has
no --cluster option.

Before a later SUBSCRIBE on node B is judged, a live subscriber on B has received the retained
PUBLISH: the message has reached node B, so the test waits on an event, not on time. settle() (cluster_support.py) first makes sure the
watcher's subscription has reached the other node.
"""

from __future__ import annotations

import pytest

from cluster_support import *  # noqa: F401,F403
from helpers import unique_id
from mqtt_support import publish_acked, track

pytestmark = [pytest.mark.ours_only(reason="the cluster is our binary's"), pytest.mark.timeout(60)]


def _client(client_factory, node, prefix="c"):
    c = client_factory(node, client_id=unique_id(prefix)).connect()
    track(c)
    return c


def _retain_and_see_live(pub, watcher, topic: str, payload: bytes) -> None:
    """Retain ``payload`` on ``topic`` through ``pub`` (QoS 1, acknowledged) and wait until the
    live copy reached ``watcher``, a subscriber on the other node (retain flag 0 on a live
    forward [MQTT-3.3.1-9])."""
    publish_acked(pub, topic, payload, qos=1, retain=True)
    m = watcher.expect_message(topic, payload, timeout=10)
    assert not m.retain


def test_retained_on_a_is_sent_to_subscribe_on_b(node_factory, client_factory):
    a, b = node_factory("nA"), node_factory("nB")
    topic = f"ret/{unique_id()}/t"
    watcher = _client(client_factory, b, "w")
    watcher.subscribe(topic, qos=1)
    settle(client_factory, b, a)
    pub = _client(client_factory, a, "pub")
    _retain_and_see_live(pub, watcher, topic, b"kept")
    late = _client(client_factory, b, "late")
    late.subscribe(topic, qos=1)
    m = late.expect_message(topic, b"kept", timeout=5)
    assert m.retain and m.qos == 1
    # a wildcard SUBSCRIBE on B finds it too
    wild = _client(client_factory, b, "wild")
    wild.subscribe(topic.rsplit("/", 2)[0] + "/+/t", qos=0)
    m = wild.expect_message(topic, b"kept", timeout=5)
    assert m.retain and m.qos == 0


def test_retained_reaches_node_started_later(node_factory, client_factory):
    """Node C starts after the message was retained on node A: a SUBSCRIBE on C gets it."""
    a, b = node_factory("nA"), node_factory("nB")
    topic = f"ret/{unique_id()}/t"
    watcher = _client(client_factory, b, "w")
    watcher.subscribe(topic, qos=1)
    settle(client_factory, b, a)
    _retain_and_see_live(_client(client_factory, a, "pub"), watcher, topic, b"before C")
    c = node_factory("nC")
    sub = _client(client_factory, c, "onC")
    sub.subscribe(topic, qos=1)
    m = sub.expect_message(topic, b"before C", timeout=10)
    assert m.retain


def test_empty_retained_on_a_clears_it_on_b(node_factory, client_factory):
    """Retain on A, then an empty retained PUBLISH on A: a SUBSCRIBE on B gets nothing retained.
    The sentinel is a non-retained PUBLISH on B after the SUBACK: a retained message would have
    been sent before it."""
    a, b = node_factory("nA"), node_factory("nB")
    topic = f"ret/{unique_id()}/t"
    watcher = _client(client_factory, b, "w")
    watcher.subscribe(topic, qos=1)
    settle(client_factory, b, a)
    pub = _client(client_factory, a, "pub")
    _retain_and_see_live(pub, watcher, topic, b"to be cleared")
    # The empty one is forwarded live too [MQTT-3.3.1-10 allows it]; wait for it on B.
    _retain_and_see_live(pub, watcher, topic, b"")
    sub = _client(client_factory, b, "after")
    sub.subscribe(topic, qos=1)
    local = _client(client_factory, b, "local")
    publish_acked(local, topic, b"sentinel", qos=1)
    got = sub.collect_until(topic, b"sentinel", timeout=5)
    assert got == [], f"a retained message survived the clear: {[(m.payload, m.retain) for m in got]}"
