"""The gRPC API and MQTT 5 devices: the v5 metadata of a device's PUBLISH reaches the streams
(new fields of rpcserver.PublishedPacket and mqttserver.v1.Message), and an API publish can carry
v5 properties to v5 subscribers. Devices are paho-mqtt MQTTv5 clients."""

from __future__ import annotations

import queue
import socket
import time

import grpc
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import grpc_support as gs
from helpers import unique_id

pytestmark = pytest.mark.ours_only(reason="gRPC API of our binary")

TIMEOUT = 5.0


@pytest.fixture(scope="module")
def pb():
    return gs.stubs()


@pytest.fixture
def api(server, pb):
    ch = gs.channel(server)
    yield (pb.pp_grpc.PublishedPacketServiceStub(ch), pb.v1_grpc.BrokerServiceStub(ch))
    ch.close()


class Device:
    """A paho client (MQTT 5 or 3.1.1) with its network loop in a thread and a queue of messages."""

    def __init__(self, server, protocol=mqtt.MQTTv5):
        self.client_id = unique_id("g5")
        self.protocol = protocol
        self.paho = mqtt.Client(client_id=self.client_id, protocol=protocol)
        self.messages: queue.Queue = queue.Queue()
        self.acks: queue.Queue = queue.Queue()
        self.paho.on_message = lambda c, u, m: self.messages.put(m)
        self.paho.on_subscribe = lambda c, u, mid, *rest: self.acks.put(mid)
        self.paho.on_connect = lambda c, u, f, rc, *rest: self.acks.put(("connack", rc))
        self.paho.connect(server.host, server.port, keepalive=60)
        self.paho.loop_start()
        kind, rc = self.acks.get(timeout=TIMEOUT)
        assert kind == "connack" and rc == 0, rc

    def subscribe(self, topic: str, qos: int = 1) -> None:
        _, mid = self.paho.subscribe(topic, qos)
        assert self.acks.get(timeout=TIMEOUT) == mid

    def publish(self, topic: str, payload: bytes, qos: int = 1, properties=None) -> None:
        info = self.paho.publish(topic, payload, qos=qos, properties=properties)
        info.wait_for_publish(TIMEOUT)
        assert info.is_published()

    def get(self) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=TIMEOUT)

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()


@pytest.fixture
def devices(server):
    made = []

    def make(protocol=mqtt.MQTTv5) -> Device:
        d = Device(server, protocol)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def publish_props() -> Properties:
    p = Properties(PacketTypes.PUBLISH)
    p.UserProperty = [("site", "north"), ("unit", "C"), ("site", "south")]
    p.ContentType = "text/plain"
    p.ResponseTopic = "replies/42"
    p.CorrelationData = b"\x00\x01req"
    p.PayloadFormatIndicator = 1
    p.MessageExpiryInterval = 120
    return p


def test_stream_carries_v5_metadata(server, api, pb, devices):
    """A v5 device's user properties (order and repeated names kept), content type, response topic,
    correlation data, payload format and expiry arrive on both streams; a 3.1.1 device's message
    has none of them."""
    pp, v1 = api
    old = gs.StreamReader(pp.StreamPublishedPayload(pb.pp.PublishedPacketRequest())).ready()
    new = gs.StreamReader(v1.Subscribe(pb.v1.SubscribeRequest(topic_filter="#"))).ready()
    dev = devices()
    dev.publish("g5/data", b"21.5", properties=publish_props())
    plain = devices(mqtt.MQTTv311)
    plain.publish("g5/plain", b"x")
    for stream in (old, new):
        m = stream.get(TIMEOUT)
        assert (m.device_id, m.topic, m.payload) == (dev.client_id, "g5/data", b"21.5")
        assert [(u.key, u.value) for u in m.user_properties] == [
            ("site", "north"), ("unit", "C"), ("site", "south")]
        assert m.content_type == "text/plain"
        assert m.response_topic == "replies/42"
        assert m.correlation_data == b"\x00\x01req"
        assert m.HasField("payload_utf8") and m.payload_utf8
        assert m.HasField("message_expiry_interval") and m.message_expiry_interval == 120
        m = stream.get(TIMEOUT)
        assert (m.device_id, m.topic) == (plain.client_id, "g5/plain")
        assert list(m.user_properties) == []
        for field in ("content_type", "response_topic", "correlation_data", "payload_utf8",
                      "message_expiry_interval"):
            assert not m.HasField(field), field


def test_api_publish_with_v5_properties(server, api, pb, devices):
    """BrokerService.Publish with v5 properties: a v5 subscriber gets them unaltered (the expiry
    counted down, at most the value set); a 3.1.1 subscriber gets the plain message."""
    _, v1 = api
    v5 = devices()
    v5.subscribe("cmd/#")
    v3 = devices(mqtt.MQTTv311)
    v3.subscribe("cmd/#")
    req = pb.v1.PublishRequest(
        topic="cmd/lamp", payload=b"on", qos=1, content_type="text/plain", response_topic="cmd/lamp/reply",
        correlation_data=b"\x07", payload_utf8=True, message_expiry_interval=30,
        user_properties=[pb.v1.UserProperty(key="from", value="ops"), pb.v1.UserProperty(key="k", value="")])
    v1.Publish(req)
    m = v5.get()
    assert (m.topic, m.payload) == ("cmd/lamp", b"on")
    p = m.properties
    assert p.UserProperty == [("from", "ops"), ("k", "")]
    assert p.ContentType == "text/plain"
    assert p.ResponseTopic == "cmd/lamp/reply"
    assert p.CorrelationData == b"\x07"
    assert p.PayloadFormatIndicator == 1
    assert 28 <= p.MessageExpiryInterval <= 30
    m3 = v3.get()
    assert (m3.topic, m3.payload) == ("cmd/lamp", b"on")


@pytest.mark.parametrize("bad", [
    {"payload": b"\xff\xfe", "payload_utf8": True},
    {"response_topic": "replies/+"},
], ids=["payload-not-utf8", "wildcard-response-topic"])
def test_api_publish_rejects_bad_v5_properties(server, api, pb, bad):
    _, v1 = api
    fields = {"topic": "cmd/x", "payload": b"p"}
    fields.update(bad)
    with pytest.raises(grpc.RpcError) as e:
        v1.Publish(pb.v1.PublishRequest(**fields))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_list_devices_reports_level_5(server, api, pb, devices):
    _, v1 = api
    dev = devices()
    levels = {d.device_id: d.protocol_level for d in v1.ListDevices(pb.v1.ListDevicesRequest()).devices}
    assert levels[dev.client_id] == 5


def _read_packet(sock) -> tuple[int, bytes]:
    """One MQTT packet from a blocking socket: (first byte, body)."""
    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            assert chunk, "connection closed"
            buf += chunk
        return buf
    first = exact(1)[0]
    length, shift = 0, 0
    while True:
        b = exact(1)[0]
        length |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return first, exact(length)


def test_api_disconnect_tells_v5_device_why(server, api, pb):
    """DisconnectDevice sends an MQTT 5 device DISCONNECT with reason 0x98 (Administrative
    action) before closing. (A raw socket: paho 1.6 drops the reason of a short DISCONNECT.)"""
    _, v1 = api
    client_id = unique_id("kick5").encode()
    # CONNECT: "MQTT", level 5, clean start, keep-alive 60, no properties.
    var = b"\x00\x04MQTT\x05\x02\x00\x3c\x00" + len(client_id).to_bytes(2, "big") + client_id
    with socket.create_connection((server.host, server.port), timeout=TIMEOUT) as sock:
        sock.sendall(bytes([0x10, len(var)]) + var)
        first, body = _read_packet(sock)
        assert first == 0x20 and body[1] == 0, body
        v1.DisconnectDevice(pb.v1.DisconnectDeviceRequest(device_id=client_id.decode()))
        first, body = _read_packet(sock)
        assert first == 0xE0 and body[:1] == b"\x98", (hex(first), body)
        assert sock.recv(1) == b""  # then the server closes
