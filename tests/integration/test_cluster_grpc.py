"""gRPC across the cluster (issue #15): the original rpcserver.PublishedPacketService on any node
sees every device PUBLISH of the cluster with the same device_id, and PublishPayloadToDevice on
any node reaches the device wherever it is connected; in non-broker mode (-n on every node)
devices never reach each other but gRPC users reach every device. Clients as in test_grpc.py
(grpc_support.py). A stream is used once settle_stream() (cluster_support.py) saw a probe from
the other node on it. SKIPs while the binary has no --cluster option.
"""

from __future__ import annotations

import pytest

import grpc_support as gs
from cluster_support import *  # noqa: F401,F403
from helpers import unique_id
from mqtt_support import publish_acked, track

pytestmark = [pytest.mark.ours_only(reason="the cluster is our binary's"), pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def pb():
    return gs.stubs()


@pytest.fixture
def channels():
    """open(node) -> PublishedPacketService stub on a channel of its own; closed at teardown."""
    opened = []

    def open_(node, pb):
        ch = gs.channel(node)
        opened.append(ch)
        return pb.pp_grpc.PublishedPacketServiceStub(ch)

    yield open_
    for ch in opened:
        ch.close()


def _stream(stub, pb, **req) -> gs.StreamReader:
    """A StreamPublishedPayload stream, registered on its node when this returns."""
    return gs.StreamReader(stub.StreamPublishedPayload(pb.pp.PublishedPacketRequest(**req))).ready()


def _until(reader: gs.StreamReader, payload: bytes, timeout: float = 10.0) -> list:
    """Stream messages up to and including the one carrying ``payload``."""
    got = []
    while not got or got[-1].payload != payload:
        got.append(reader.get(timeout))
    return got


def test_stream_on_b_sees_device_on_a(node_factory, client_factory, channels, pb):
    """A stream on node B gets every PUBLISH of a device on node A, once each, in order, with
    device_id = the device's client id; a stream filtered on that device_id too."""
    a, b = node_factory("nA"), node_factory("nB")
    stub = channels(b, pb)
    dev = client_factory(a, client_id=unique_id("dev")).connect()
    only_dev = _stream(stub, pb, device_id=dev.client_id)
    everything = _stream(stub, pb)
    settle_stream(everything, client_factory, a)
    track(dev)
    for qos in (0, 1, 2):
        publish_acked(dev, f"sensors/{dev.client_id}", f"q{qos}".encode(), qos=qos)
    publish_acked(dev, f"sensors/{dev.client_id}", b"end", qos=1)
    want = [(dev.client_id, f"sensors/{dev.client_id}", p) for p in (b"q0", b"q1", b"q2", b"end")]
    for reader in (everything, only_dev):
        got = [(m.device_id, m.topic, m.payload) for m in _until(reader, b"end")]
        assert got == want, got
    everything.expect_none(0.5)


def test_stream_filter_excludes_other_nodes_devices(node_factory, client_factory, channels, pb):
    """A stream on node B filtered on a device on node B gets nothing from a device on node A."""
    a, b = node_factory("nA"), node_factory("nB")
    stub = channels(b, pb)
    local = client_factory(b, client_id=unique_id("local")).connect()
    remote = client_factory(a, client_id=unique_id("remote")).connect()
    only_local = _stream(stub, pb, device_id=local.client_id)
    everything = _stream(stub, pb)
    settle_stream(everything, client_factory, a)
    track(remote)
    track(local)
    publish_acked(remote, "f/t", b"remote", qos=1)
    _until(everything, b"remote")  # it reached node B
    publish_acked(local, "f/t", b"local", qos=1)
    got = [(m.device_id, m.payload) for m in _until(only_local, b"local")]
    assert got == [(local.client_id, b"local")], got


def test_publish_to_device_on_other_node(node_factory, client_factory, channels, pb):
    """PublishPayloadToDevice on node B reaches a device connected on node A: "Success", and the
    device gets the topic, payload and QoS of the request."""
    a, b = node_factory("nA"), node_factory("nB")
    dev = client_factory(a, client_id=unique_id("dev")).connect()
    stub = channels(b, pb)
    r = stub.PublishPayloadToDevice(pb.pp.PublishRequest(device_id=dev.client_id, topic="cmd/led",
                                                         payload=b"on\x00"))
    assert r.code == "Success"
    m = dev.expect_message("cmd/led", b"on\x00", timeout=10)
    assert m.qos == 0 and not m.retain
    r = stub.PublishPayloadToDevice(pb.pp.PublishRequest(device_id=dev.client_id, topic="cmd/q1",
                                                         payload=b"1", qos=1))
    assert r.code == "Success"
    assert dev.expect_message("cmd/q1", b"1", timeout=10).qos == 1


def test_non_broker_mode_across_nodes(node_factory, client_factory, channels, pb):
    """-n on both nodes: device b (node B) publishes to a filter device a (node A) holds. A
    stream on node A sees it; device a does not get it; PublishPayloadToDevice on node A reaches
    device b on node B."""
    a, b = node_factory("nA", "-n"), node_factory("nB", "-n")
    stub = channels(a, pb)
    stream = _stream(stub, pb)
    settle_stream(stream, client_factory, b)
    dev_a = client_factory(a, client_id=unique_id("devA")).connect()
    dev_b = client_factory(b, client_id=unique_id("devB")).connect()
    track(dev_b)
    base = f"nb/{unique_id()}"
    dev_a.subscribe(f"{base}/#", qos=1)
    publish_acked(dev_b, f"{base}/x", b"from-b", qos=1)
    m = stream.get(timeout=10)
    assert (m.device_id, m.topic, m.payload) == (dev_b.client_id, f"{base}/x", b"from-b")
    # The device publish reached node A (its stream has it); a gRPC message to device a, sent
    # on node A afterwards, must be the first thing device a gets.
    r = stub.PublishPayloadToDevice(pb.pp.PublishRequest(device_id=dev_a.client_id, topic=f"{base}/cmd",
                                                         payload=b"to-a"))
    assert r.code == "Success"
    got = dev_a.collect_until(f"{base}/cmd", b"to-a", timeout=10)
    assert got == [], f"device a got device b's message in non-broker mode: {got}"
    r = stub.PublishPayloadToDevice(pb.pp.PublishRequest(device_id=dev_b.client_id, topic="nb/cmd",
                                                         payload=b"to-b"))
    assert r.code == "Success"
    dev_b.expect_message("nb/cmd", b"to-b", timeout=10)
