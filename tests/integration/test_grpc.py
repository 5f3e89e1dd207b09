"""The gRPC API: rpcserver.PublishedPacketService (the original service, with the
fields we added) and mqttserver.v1.BrokerService, driven by Python clients
generated at test time (see grpc_support.py), with paho devices."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import grpc
import pytest

import grpc_support as gs
from helpers import MQTTv31, unique_id

pytestmark = pytest.mark.ours_only(reason="gRPC API of our binary")


@pytest.fixture(scope="module")
def pb():
    return gs.stubs()


@pytest.fixture
def api(server, pb):
    """(channel, PublishedPacketService stub, BrokerService stub) for ``server``."""
    ch = gs.channel(server)
    yield (ch, pb.pp_grpc.PublishedPacketServiceStub(ch), pb.v1_grpc.BrokerServiceStub(ch))
    ch.close()


def open_stream(pp_stub, pb, **req) -> gs.StreamReader:
    """A StreamPublishedPayload stream, registered on the server when this returns."""
    return gs.StreamReader(pp_stub.StreamPublishedPayload(pb.pp.PublishedPacketRequest(**req))).ready()


def collect_until(reader: gs.StreamReader, payload: bytes, timeout: float = 5.0) -> list:
    """Stream messages before the one carrying ``payload`` (a sentinel published last)."""
    before = []
    deadline = time.monotonic() + timeout
    while True:
        m = reader.get(max(0.0, deadline - time.monotonic()))
        if m.payload == payload:
            return before
        before.append(m)


def until_all(reader: gs.StreamReader, payloads: set, timeout: float = 5.0) -> list:
    """Stream messages up to and including the last of ``payloads`` to arrive."""
    left = set(payloads)
    got = []
    deadline = time.monotonic() + timeout
    while left:
        m = reader.get(max(0.0, deadline - time.monotonic()))
        got.append(m)
        left.discard(m.payload)
    return got


# --------------------------------------------------------------------------
# StreamPublishedPayload
# --------------------------------------------------------------------------


def test_stream_gets_device_publishes_with_client_id(server, client_factory, api, pb):
    """Every PUBLISH a device sends reaches the stream, in order, with device_id = its client id,
    and the added fields: QoS, retain flag, server receive time, nothing dropped."""
    _, pp, _ = api
    stream = open_stream(pp, pb)
    dev = client_factory(server, client_id=unique_id("dev")).connect()
    before = int(time.time() * 1000)
    dev.publish("sensors/t1", b"21.5", qos=0)
    dev.publish("sensors/t1", b"\x00\xffbinary", qos=1)
    dev.publish("sensors/t2", b"r", qos=2, retain=True)
    after = int(time.time() * 1000)
    got = [stream.get() for _ in range(3)]
    assert [(m.device_id, m.topic, m.payload) for m in got] == [
        (dev.client_id, "sensors/t1", b"21.5"),
        (dev.client_id, "sensors/t1", b"\x00\xffbinary"),
        (dev.client_id, "sensors/t2", b"r"),
    ]
    assert [m.qos for m in got] == [0, 1, 2]
    assert [m.retain for m in got] == [False, False, True]
    for m in got:
        assert before - 1000 <= m.received_unix_ms <= after + 1000
        assert m.dropped_before == 0
    stream.expect_none()


def test_stream_device_filter(server, client_factory, api, pb):
    """A stream with device_id set gets only that device's messages."""
    _, pp, _ = api
    a = client_factory(server, client_id=unique_id("devA")).connect()
    b = client_factory(server, client_id=unique_id("devB")).connect()
    only_a = open_stream(pp, pb, device_id=a.client_id)
    everything = open_stream(pp, pb)
    for i in range(5):
        a.publish("t", f"a{i}".encode())
        b.publish("t", f"b{i}".encode())
    b.publish("t", b"end-b")
    a.publish("t", b"end-a")
    # Once the unfiltered stream has both sentinels, every message above went through the server.
    seen = until_all(everything, {b"end-a", b"end-b"})
    assert len(seen) == 12
    got = collect_until(only_a, b"end-a")
    assert [(m.device_id, m.payload) for m in got] == [(a.client_id, f"a{i}".encode()) for i in range(5)]
    only_a.expect_none()


def test_stream_topic_filter(server, client_factory, api, pb):
    """topic_filter (added field) takes MQTT wildcards; combined with device_id both apply."""
    _, pp, _ = api
    a = client_factory(server, client_id=unique_id("devA")).connect()
    b = client_factory(server, client_id=unique_id("devB")).connect()
    temps = open_stream(pp, pb, topic_filter="home/+/temp")
    a_all = open_stream(pp, pb, device_id=a.client_id, topic_filter="home/#")
    everything = open_stream(pp, pb)
    a.publish("home/kitchen/temp", b"1")
    a.publish("home/kitchen/humidity", b"2")
    b.publish("home/hall/temp", b"3")
    b.publish("home/hall/temp/raw", b"4")
    a.publish("office/temp", b"5")
    b.publish("sync", b"end-b")
    a.publish("home/sync", b"end-a")
    assert len(until_all(everything, {b"end-a", b"end-b"})) == 7
    got = [temps.get(), temps.get()]
    assert sorted((m.topic, m.payload) for m in got) == [("home/hall/temp", b"3"), ("home/kitchen/temp", b"1")]
    temps.expect_none()
    assert [(m.topic, m.payload) for m in collect_until(a_all, b"end-a")] == [
        ("home/kitchen/temp", b"1"), ("home/kitchen/humidity", b"2")]


def test_stream_rejects_bad_topic_filter(server, api, pb):
    _, pp, _ = api
    call = pp.StreamPublishedPayload(pb.pp.PublishedPacketRequest(topic_filter="a/#/b"))
    with pytest.raises(grpc.RpcError) as e:
        next(call)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "topic filter" in e.value.details()


def test_stream_ends_cleanly_when_client_cancels(server, client_factory, api, pb):
    """A cancelled stream is unregistered (its end is logged) and the others go on."""
    _, pp, _ = api
    first = open_stream(pp, pb)
    second = open_stream(pp, pb)
    mark = server.log.mark()
    first.cancel()
    server.log.wait_for(r"gRPC stream \d+ .* ended: 0 messages sent, none dropped", since=mark)
    dev = client_factory(server).connect()
    dev.publish("after/cancel", b"x")
    assert second.get().payload == b"x"


# --------------------------------------------------------------------------
# PublishPayloadToDevice
# --------------------------------------------------------------------------


def test_publish_to_device_on_topic(server, client_factory, api, pb):
    """The device gets the request's topic and payload (without subscribing); code "Success"."""
    _, pp, _ = api
    dev = client_factory(server, client_id=unique_id("dev")).connect()
    r = pp.PublishPayloadToDevice(pb.pp.PublishRequest(device_id=dev.client_id, topic="cmd/led",
                                                       payload=b"on\x00"))
    assert r.code == "Success"
    m = dev.expect_message("cmd/led", b"on\x00")
    assert m.qos == 0 and not m.retain


def test_publish_to_device_falls_back_to_device_id_topic(server, client_factory, api, pb):
    """With an empty topic the device id is the topic, as the original server did."""
    _, pp, _ = api
    dev = client_factory(server, client_id=unique_id("dev")).connect()
    r = pp.PublishPayloadToDevice(pb.pp.PublishRequest(device_id=dev.client_id, payload=b"hi"))
    assert r.code == "Success"
    dev.expect_message(dev.client_id, b"hi")


def test_publish_to_device_qos_and_retain(server, client_factory, api, pb):
    """The added qos and retain fields are what the device gets."""
    _, pp, _ = api
    dev = client_factory(server, client_id=unique_id("dev")).connect()
    pp.PublishPayloadToDevice(pb.pp.PublishRequest(device_id=dev.client_id, topic="q/1", payload=b"1",
                                                   qos=1, retain=True))
    m = dev.expect_message("q/1", b"1")
    assert m.qos == 1 and m.retain


def test_publish_to_unknown_device_is_not_found(server, api, pb):
    _, pp, _ = api
    with pytest.raises(grpc.RpcError) as e:
        pp.PublishPayloadToDevice(pb.pp.PublishRequest(device_id="nobody-here", topic="x", payload=b"1"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert "nobody-here" in e.value.details()


def test_publish_to_device_rejects_bad_requests(server, client_factory, api, pb):
    _, pp, _ = api
    dev = client_factory(server, client_id=unique_id("dev")).connect()
    for req in (dict(device_id=dev.client_id, topic="a/+", payload=b"1"),
                dict(device_id=dev.client_id, topic="a", payload=b"1", qos=3),
                dict(device_id="", topic="a", payload=b"1")):
        with pytest.raises(grpc.RpcError) as e:
            pp.PublishPayloadToDevice(pb.pp.PublishRequest(**req))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, req


def test_publish_to_offline_persistent_session_is_queued(server, client_factory, api, pb):
    """A device that is offline with a persistent session: QoS 1 is "Queued" and delivered when it
    comes back (clean_session=False); QoS 0 is not kept for it (NOT_FOUND)."""
    _, pp, _ = api
    cid = unique_id("sleepy")
    dev = client_factory(server, client_id=cid, clean_session=False).connect()
    dev.close()
    # The session stays, offline: wait until the server has seen the disconnect.
    server.log.wait_for(rf"client {cid} disconnected")
    r = pp.PublishPayloadToDevice(pb.pp.PublishRequest(device_id=cid, topic="cmd/wake", payload=b"w", qos=1))
    assert r.code == "Queued"
    with pytest.raises(grpc.RpcError) as e:
        pp.PublishPayloadToDevice(pb.pp.PublishRequest(device_id=cid, topic="cmd/qos0", payload=b"0"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    again = client_factory(server, client_id=cid, clean_session=False).connect()
    m = again.expect_message("cmd/wake", b"w")
    assert m.qos == 1
    with pytest.raises(AssertionError):
        again.get_message(timeout=0.3)  # the QoS 0 one was not kept


# --------------------------------------------------------------------------
# Non-broker mode
# --------------------------------------------------------------------------


def test_non_broker_mode(server_factory, client_factory, pb):
    """-n: device A's publish reaches the gRPC stream but not device B subscribed to it; what a gRPC
    user sends to B still reaches B."""
    srv = server_factory("-n")
    ch = gs.channel(srv)
    pp = pb.pp_grpc.PublishedPacketServiceStub(ch)
    stream = open_stream(pp, pb)
    a = client_factory(srv, client_id=unique_id("devA")).connect()
    b = client_factory(srv, client_id=unique_id("devB")).connect()
    b.subscribe("nb/#")
    a.publish("nb/x", b"from-a", qos=1)
    m = stream.get()
    assert (m.device_id, m.topic, m.payload) == (a.client_id, "nb/x", b"from-a")
    # The device publish went through the server (the stream has it); now a gRPC message to B.
    r = pp.PublishPayloadToDevice(pb.pp.PublishRequest(device_id=b.client_id, topic="nb/cmd", payload=b"to-b"))
    assert r.code == "Success"
    got = b.collect_until("nb/cmd", b"to-b")
    assert got == [], f"device B got device A's message in non-broker mode: {got}"
    ch.close()


# --------------------------------------------------------------------------
# A client generated from the ORIGINAL proto, unchanged
# --------------------------------------------------------------------------

ORIGINAL_CLIENT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import grpc
    import published_packet_pb2 as pb
    import published_packet_pb2_grpc as pbg
    target, device = sys.argv[2], sys.argv[3]
    ch = grpc.insecure_channel(target)
    grpc.channel_ready_future(ch).result(timeout=10)
    stub = pbg.PublishedPacketServiceStub(ch)
    call = stub.StreamPublishedPayload(pb.PublishedPacketRequest(device_id=device))
    call.initial_metadata()
    print("ready", flush=True)
    m = next(call)
    print(json.dumps({"device_id": m.device_id, "topic": m.topic, "payload": m.payload.hex()}), flush=True)
    call.cancel()
    r = stub.PublishPayloadToDevice(pb.PublishRequest(device_id=device, topic="orig/cmd", payload=b"hello"))
    print(json.dumps({"code": r.code}), flush=True)
""")


def test_original_proto_client_works_unchanged(server, client_factory, tmp_path):
    """Stubs generated from the original published_packet.proto (no added fields) stream and
    publish as before."""
    stub_dir = gs.original_stub_dir()
    script = tmp_path / "original_client.py"
    script.write_text(ORIGINAL_CLIENT)
    dev = client_factory(server, client_id=unique_id("orig")).connect()
    proc = subprocess.Popen([sys.executable, str(script), str(stub_dir), gs.grpc_target(server), dev.client_id],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        dev.publish("orig/data", b"\x01\x02")
        first = json.loads(proc.stdout.readline())
        assert first == {"device_id": dev.client_id, "topic": "orig/data", "payload": "0102"}
        dev.expect_message("orig/cmd", b"hello")
        assert json.loads(proc.stdout.readline()) == {"code": "Success"}
        assert proc.wait(10) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------
# mqttserver.v1.BrokerService
# --------------------------------------------------------------------------


def test_v1_publish_routes_to_subscribers(server, client_factory, api, pb):
    """Publish goes to every device subscribed to a matching filter, at min(QoS), and a retained one
    is kept for later subscribers."""
    _, _, v1 = api
    s1 = client_factory(server).connect()
    s1.subscribe("v1/+/cmd", qos=1)
    s2 = client_factory(server).connect()
    s2.subscribe("v1/#", qos=0)
    v1.Publish(pb.v1.PublishRequest(topic="v1/room/cmd", payload=b"go", qos=1))
    assert s1.expect_message("v1/room/cmd", b"go").qos == 1
    assert s2.expect_message("v1/room/cmd", b"go").qos == 0
    v1.Publish(pb.v1.PublishRequest(topic="v1/state", payload=b"kept", retain=True))
    s2.expect_message("v1/state", b"kept")
    late = client_factory(server).connect()
    late.subscribe("v1/state")
    assert late.expect_message("v1/state", b"kept").retain
    with pytest.raises(grpc.RpcError) as e:
        v1.Publish(pb.v1.PublishRequest(topic="v1/#", payload=b"x"))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_v1_list_devices(server, client_factory, api, pb):
    _, _, v1 = api
    before = int(time.time() * 1000)
    a = client_factory(server, client_id=unique_id("listA")).connect()
    b = client_factory(server, client_id=unique_id("listB"), protocol=MQTTv31).connect()
    after = int(time.time() * 1000)
    devices = {d.device_id: d for d in v1.ListDevices(pb.v1.ListDevicesRequest()).devices}
    assert set(devices) >= {a.client_id, b.client_id}
    local_a = "127.0.0.1:%d" % a.paho.socket().getsockname()[1]
    assert devices[a.client_id].remote_address == local_a
    assert devices[a.client_id].protocol_level == 4
    assert devices[b.client_id].protocol_level == 3
    for d in (devices[a.client_id], devices[b.client_id]):
        assert before - 1000 <= d.connected_since_unix_ms <= after + 1000
    b.close()
    server.log.wait_for(rf"client {b.client_id} disconnected")
    ids = [d.device_id for d in v1.ListDevices(pb.v1.ListDevicesRequest()).devices]
    assert a.client_id in ids and b.client_id not in ids
    assert ids == sorted(ids)


def test_v1_disconnect_device(server, client_factory, api, pb):
    _, _, v1 = api
    dev = client_factory(server, client_id=unique_id("kick")).connect()
    v1.DisconnectDevice(pb.v1.DisconnectDeviceRequest(device_id=dev.client_id))
    dev.wait_disconnected()
    server.log.wait_for(rf"client {dev.client_id} disconnected \(disconnected through the gRPC API\)")
    with pytest.raises(grpc.RpcError) as e:
        v1.DisconnectDevice(pb.v1.DisconnectDeviceRequest(device_id=dev.client_id))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_v1_get_latest(server, client_factory, api, pb):
    """GetLatest answers the newest payload a device published on a topic, from the store."""
    _, _, v1 = api
    dev = client_factory(server, client_id=unique_id("latest")).connect()
    t0 = int(time.time() * 1000)
    dev.publish("meter/kwh", b"1", qos=1)
    dev.publish("meter/kwh", b"2", qos=1)  # PUBACK: the server has handled both
    r = v1.GetLatest(pb.v1.GetLatestRequest(device_id=dev.client_id, topic="meter/kwh"))
    assert (r.device_id, r.topic, r.payload) == (dev.client_id, "meter/kwh", b"2")
    assert r.updated_unix_ms >= t0 - 1000
    with pytest.raises(grpc.RpcError) as e:
        v1.GetLatest(pb.v1.GetLatestRequest(device_id=dev.client_id, topic="meter/none"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as e:
        v1.GetLatest(pb.v1.GetLatestRequest(device_id="", topic="meter/kwh"))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_v1_get_latest_without_store(server_factory, client_factory, pb):
    """--no-store: GetLatest says the server keeps no payloads (not a transient error)."""
    srv = server_factory("--no-store")
    ch = gs.channel(srv)
    v1 = pb.v1_grpc.BrokerServiceStub(ch)
    dev = client_factory(srv, client_id=unique_id("nostore")).connect()
    dev.publish("meter/kwh", b"1", qos=1)
    with pytest.raises(grpc.RpcError) as e:
        v1.GetLatest(pb.v1.GetLatestRequest(device_id=dev.client_id, topic="meter/kwh"))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "without a latest-payload store" in e.value.details()
    ch.close()


def test_v1_subscribe_stream(server, client_factory, api, pb):
    """Subscribe streams device publishes and API publishes that match its filter."""
    _, _, v1 = api
    sub = gs.StreamReader(v1.Subscribe(pb.v1.SubscribeRequest(topic_filter="alerts/#"))).ready()
    dev = client_factory(server, client_id=unique_id("alert")).connect()
    dev.publish("other/x", b"no")
    dev.publish("alerts/fire", b"yes", qos=1)
    v1.Publish(pb.v1.PublishRequest(topic="alerts/api", payload=b"from-api"))
    m1, m2 = sub.get(), sub.get()
    assert (m1.device_id, m1.topic, m1.payload, m1.qos) == (dev.client_id, "alerts/fire", b"yes", 1)
    assert (m2.device_id, m2.topic, m2.payload) == ("", "alerts/api", b"from-api")
    sub.expect_none()
    bad = v1.Subscribe(pb.v1.SubscribeRequest(topic_filter=""))
    with pytest.raises(grpc.RpcError) as e:
        next(bad)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# --------------------------------------------------------------------------
# Reflection and health
# --------------------------------------------------------------------------


def test_reflection_lists_services(server, api, pb):
    ch, _, _ = api
    refl = pb.refl_grpc.ServerReflectionStub(ch)
    responses = list(refl.ServerReflectionInfo(iter([pb.refl.ServerReflectionRequest(list_services="")]),
                                               timeout=5))
    names = {s.name for s in responses[0].list_services_response.service}
    assert {"rpcserver.PublishedPacketService", "mqttserver.v1.BrokerService",
            "grpc.health.v1.Health"} <= names
    # And the descriptors themselves, as grpcurl asks for them.
    req = pb.refl.ServerReflectionRequest(file_containing_symbol="mqttserver.v1.BrokerService")
    resp = list(refl.ServerReflectionInfo(iter([req]), timeout=5))[0]
    assert resp.WhichOneof("message_response") == "file_descriptor_response"
    assert any(b"mqttserver/v1/broker.proto" in fd for fd in resp.file_descriptor_response.file_descriptor_proto)


def test_health_serving(server, api, pb):
    ch, _, _ = api
    health = pb.health_grpc.HealthStub(ch)
    serving = pb.health.HealthCheckResponse.SERVING
    for service in ("", "rpcserver.PublishedPacketService", "mqttserver.v1.BrokerService"):
        assert health.Check(pb.health.HealthCheckRequest(service=service), timeout=5).status == serving
    with pytest.raises(grpc.RpcError) as e:
        health.Check(pb.health.HealthCheckRequest(service="no.such.Service"), timeout=5)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_grpc_listening_is_logged(server):
    server.log.wait_for(rf"gRPC API listening on 127\.0\.0\.1:{server.grpc_port} \(plain;")
