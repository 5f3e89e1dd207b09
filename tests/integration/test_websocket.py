"""MQTT over WebSocket (RFC 6455; MQTT 3.1.1 and 5.0 section 6): --ws-addr and --wss-addr beside
the TCP listener, on the same broker. paho-mqtt's own WebSocket transport talks to TCP clients;
hand-made requests and frames check the handshake's refusals and the framing rules."""

from __future__ import annotations

import base64
import hashlib
import os
import select
import socket
import ssl
import struct
import time
from types import SimpleNamespace

import pytest

from helpers import (CONNACK, Client, Closed, RawConnection, connect_packet, encode_string, free_port,
                     packet, publish_packet, subscribe_packet, unique_id)

pytestmark = pytest.mark.ours_only(reason="WebSocket listeners of our binary")

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@pytest.fixture
def brokers(server_factory, dev_cert):
    """(tcp, ws, wss): one broker, three ways in."""
    cert, key = dev_cert
    ws_port, wss_port = free_port(), free_port()
    tcp = server_factory("--ws-addr", f"127.0.0.1:{ws_port}", "--wss-addr", f"127.0.0.1:{wss_port}",
                         "--cert", str(cert), "--key", str(key))
    ws = SimpleNamespace(host="127.0.0.1", port=ws_port, tls=False, ca_cert=str(cert), log=tcp.log)
    wss = SimpleNamespace(host="127.0.0.1", port=wss_port, tls=True, ca_cert=str(cert), log=tcp.log)
    return tcp, ws, wss


def ws_client(srv, **kw) -> Client:
    return Client(srv, transport="websockets", **kw)


# --------------------------------------------------------------------------
# Real clients: paho over WebSocket with paho over TCP
# --------------------------------------------------------------------------


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
def test_websocket_and_tcp_clients_share_one_broker(brokers, secure):
    tcp, ws, wss = brokers
    web = ws_client(wss if secure else ws).connect()
    dev = Client(tcp).connect()
    try:
        topic = f"{unique_id('ws')}/t"
        web.subscribe(f"{topic}/#", qos=2)
        dev.subscribe(f"{topic}/back", qos=1)
        # TCP -> WebSocket at every QoS, including a payload that needs a 64-bit frame length.
        big = os.urandom(70_000)
        for qos, payload in [(0, b"zero"), (1, b"one"), (2, b"two"), (1, big)]:
            dev.publish(f"{topic}/down", payload, qos=qos)
            m = web.expect_message(f"{topic}/down")
            assert m.payload == payload and m.qos == qos
        # WebSocket -> TCP, many in a row: order kept, nothing lost.
        for i in range(200):
            web.publish_nowait(f"{topic}/back", str(i).encode(), qos=1)
        got = [m.payload for m in dev.collect(200)]
        assert got == [str(i).encode() for i in range(200)]
    finally:
        web.close()
        dev.close()


def test_websocket_retained_and_will(brokers):
    tcp, ws, _ = brokers
    topic = f"{unique_id('wsr')}/state"
    pub = ws_client(ws).connect()
    pub.publish(topic, b"on", qos=1, retain=True)
    pub.close()
    late = Client(tcp).connect()
    late.subscribe(topic, qos=1)
    m = late.expect_message(topic, b"on")
    assert m.retain
    # A will of a WebSocket client whose TCP connection just drops.
    doomed = ws_client(ws, client_id=unique_id("doomed"))
    doomed.paho.will_set(f"{topic}/will", b"gone", qos=1)
    doomed.connect()
    late.subscribe(f"{topic}/will", qos=1)
    doomed.paho.loop_stop()
    doomed.paho.socket().close()  # no DISCONNECT, no close frame
    late.expect_message(f"{topic}/will", b"gone")
    late.close()


# --------------------------------------------------------------------------
# Hand-made handshakes and frames
# --------------------------------------------------------------------------


def key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def request(path="/mqtt", *, k=None, version="13", protocol="mqtt", upgrade="websocket",
            connection="Upgrade", method="GET", extra="") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if upgrade is not None:
        lines.append(f"Upgrade: {upgrade}")
    if connection is not None:
        lines.append(f"Connection: {connection}")
    lines.append(f"Sec-WebSocket-Key: {k or key()}")
    if version is not None:
        lines.append(f"Sec-WebSocket-Version: {version}")
    if protocol is not None:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def frame(payload: bytes, opcode=0x2, fin=True, mask=True, rsv=0) -> bytes:
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack("!H", n)
    else:
        head += bytes([m | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    mk = os.urandom(4)
    return head + mk + bytes(b ^ mk[i % 4] for i, b in enumerate(payload))


class RawWs(RawConnection):
    """helpers.RawConnection speaking hand-made WebSocket to the broker."""

    def _fill(self, deadline):
        try:
            super()._fill(deadline)
        except TimeoutError:
            raise AssertionError("nothing from the server in time") from None

    def http_response(self, timeout=5.0) -> tuple[int, dict, bytes]:
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        head, rest = bytes(self.buf).split(b"\r\n\r\n", 1)
        self.buf = bytearray(rest)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        body = b""
        if "content-length" in headers:
            n = int(headers["content-length"])
            while len(self.buf) < n:
                self._fill(deadline)
            body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def upgrade(self, protocol="mqtt") -> dict:
        k = key()
        self.sock.sendall(request(k=k, protocol=protocol))
        status, headers, body = self.http_response()
        assert status == 101, (status, body)
        assert headers["sec-websocket-accept"] == base64.b64encode(
            hashlib.sha1(k.encode() + GUID).digest()).decode()
        return headers

    def recv_frame(self, timeout=5.0) -> tuple[int, bool, bytes]:
        """(opcode, fin, payload) of the next server frame, which must not be masked."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 2:
                b0, b1 = self.buf[0], self.buf[1]
                assert not b1 & 0x80, "server frames must not be masked (RFC 6455 5.1)"
                n, at = b1 & 0x7F, 2
                if n == 126 and len(self.buf) >= 4:
                    n, at = struct.unpack("!H", self.buf[2:4])[0], 4
                elif n == 127 and len(self.buf) >= 10:
                    n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
                if (b1 & 0x7F) < 126 or at > 2:
                    if len(self.buf) >= at + n:
                        payload = self.buf[at:at + n]
                        self.buf = self.buf[at + n:]
                        return b0 & 0x0F, bool(b0 & 0x80), payload
            self._fill(deadline)

    def recv_mqtt(self, timeout=5.0) -> bytes:
        """MQTT bytes from the next data frame."""
        op, _, payload = self.recv_frame(timeout)
        assert op in (0x0, 0x2), f"expected a binary frame, got opcode {op}"
        return payload

    def expect_close(self, code: int, timeout=5.0) -> None:
        """A close frame with `code`, then the end of the TCP connection."""
        deadline = time.monotonic() + timeout
        while True:
            op, _, payload = self.recv_frame(max(0.1, deadline - time.monotonic()))
            if op == 0x8:
                assert struct.unpack("!H", payload[:2])[0] == code, payload
                break
        try:
            while True:
                self._fill(deadline)
        except Closed:
            return


CONNACK_OK = bytes([CONNACK << 4, 2, 0, 0])


@pytest.mark.parametrize("req, status, needle", [
    (request(path="/"), 404, "no WebSocket endpoint at '/'"),
    (request(upgrade=None), 426, "not a WebSocket upgrade"),
    (request(connection="keep-alive"), 400, "Connection: Upgrade"),
    (request(version="8"), 426, "Sec-WebSocket-Version"),
    (request(k="short"), 400, "malformed Sec-WebSocket-Key"),
    (request(protocol="chat, superchat"), 400, "none of the offered subprotocols"),
    (request(method="POST"), 405, "only GET"),
    (b"GET /mqtt HTTP/1.0\r\nHost: x\r\n\r\n", 400, "HTTP/1.1"),
    (b"NONSENSE\r\n\r\n", 400, "malformed HTTP request line"),
    (request(extra="X-Filler: " + "a" * 9000 + "\r\n"), 431, "larger than 8192"),
], ids=["path", "no-upgrade", "no-connection", "version", "key", "subprotocol", "post", "http10",
        "garbage", "too-large"])
def test_bad_handshake_gets_http_error_and_is_logged(brokers, req, status, needle):
    tcp, ws, _ = brokers
    mark = tcp.log.mark()
    raw = RawWs(ws)
    try:
        raw.sock.sendall(req)
        got, headers, body = raw.http_response()
        assert got == status, body
        assert needle in body.decode(), body
        assert headers.get("connection") == "close"
        if status == 426 and "version" in needle.lower():
            assert headers["sec-websocket-version"] == "13"
        with pytest.raises(Closed):
            raw._fill(time.monotonic() + 5)
    finally:
        raw.close()
    tcp.log.wait_for(rf"WebSocket handshake from \S+ refused with HTTP {status}", since=mark)
    # The broker goes on serving.
    ok = RawWs(ws)
    ok.upgrade()
    ok.close()


def test_handshake_in_pieces_and_subprotocol_choice(brokers):
    _, ws, _ = brokers
    raw = RawWs(ws)
    k = key()
    req = request(k=k, protocol="chat, mqttv3.1, mqtt")
    for i in range(0, len(req), 7):  # the request arrives a few bytes at a time
        raw.sock.sendall(req[i:i + 7])
        time.sleep(0.002)
    status, headers, _ = raw.http_response()
    assert status == 101
    assert headers["sec-websocket-protocol"] == "mqttv3.1"  # the client's first MQTT choice
    assert headers["upgrade"].lower() == "websocket"
    raw.close()


def test_no_subprotocol_offered_is_still_served(brokers):
    _, ws, _ = brokers
    raw = RawWs(ws)
    headers = raw.upgrade(protocol=None)
    assert "sec-websocket-protocol" not in headers
    raw.sock.sendall(frame(connect_packet(unique_id("nosub"))))
    assert raw.recv_mqtt() == CONNACK_OK
    raw.close()


def test_packets_split_and_joined_across_frames(brokers):
    tcp, ws, _ = brokers
    raw = RawWs(ws)
    raw.upgrade()
    topic = f"{unique_id('split')}/x"
    # CONNECT one byte per frame, the frames in one send.
    raw.sock.sendall(b"".join(frame(bytes([b])) for b in connect_packet(unique_id("split"))))
    assert raw.recv_mqtt() == CONNACK_OK
    # SUBSCRIBE and PINGREQ in one frame.
    raw.sock.sendall(frame(subscribe_packet([(topic, 0)]) + packet(12, 0)))
    got = b""
    while len(got) < 5 + 2:
        got += raw.recv_mqtt()
    assert got[0] >> 4 == 9 and got[-2:] == bytes([13 << 4, 0])  # SUBACK, then PINGRESP
    # A PUBLISH as a fragmented message: first frame FIN=0, then continuations.
    p = publish_packet(topic, b"fragmented payload", qos=0)
    raw.sock.sendall(frame(p[:3], fin=False) + frame(p[3:9], opcode=0x0, fin=False) +
                     frame(p[9:], opcode=0x0))
    got = b""
    while len(got) < len(p):
        got += raw.recv_mqtt()
    assert got == p
    # A ping between the fragments of a message is answered with its payload.
    raw.sock.sendall(frame(p[:4], fin=False) + frame(b"are you there", opcode=0x9) +
                     frame(p[4:], opcode=0x0))
    seen_pong, got = False, b""
    while not seen_pong or len(got) < len(p):
        op, _, payload = raw.recv_frame()
        if op == 0xA:
            assert payload == b"are you there"
            seen_pong = True
        else:
            got += payload
    assert got == p
    raw.close()


def test_close_frame_is_answered_and_will_published(brokers):
    tcp, ws, _ = brokers
    topic = f"{unique_id('bye')}/will"
    watcher = Client(tcp).connect()
    watcher.subscribe(topic, qos=0)
    raw = RawWs(ws)
    raw.upgrade()
    will = encode_string(topic) + encode_string(b"closed")
    raw.sock.sendall(frame(connect_packet(unique_id("bye"), flags=0x06, payload_extra=will)))
    assert raw.recv_mqtt() == CONNACK_OK
    mark = tcp.log.mark()
    raw.sock.sendall(frame(struct.pack("!H", 1001) + b"bye", opcode=0x8))
    raw.expect_close(1001)  # the code echoed, then the connection ends
    tcp.log.wait_for(r"WebSocket closed by peer \(code 1001\)", since=mark)
    # A close frame is not an MQTT DISCONNECT: the will goes out [MQTT-3.1.2-8].
    watcher.expect_message(topic, b"closed")
    watcher.close()
    raw.close()


@pytest.mark.parametrize("bad, code, needle", [
    (lambda: frame(connect_packet("unmasked"), mask=False), 1002, "not masked"),
    (lambda: frame(b"hello", opcode=0x1), 1003, "text frame"),
    (lambda: frame(b"x", rsv=4), 1002, "reserved bits"),
    (lambda: frame(b"x", opcode=0x3), 1002, "unknown opcode 3"),
    (lambda: frame(b"x", opcode=0x0), 1002, "continuation frame without a message"),
    (lambda: frame(b"p" * 126, opcode=0x9), 1002, "oversized control frame"),
    (lambda: frame(b"\x03", opcode=0x8), 1002, "1-byte payload"),
    (lambda: frame(struct.pack("!H", 1005), opcode=0x8), 1002, "invalid close code 1005"),
], ids=["unmasked", "text", "rsv", "opcode", "orphan-continuation", "big-ping", "close-1-byte",
        "close-code"])
def test_bad_frames_close_with_code_and_reason(brokers, bad, code, needle):
    tcp, ws, _ = brokers
    raw = RawWs(ws)
    raw.upgrade()
    raw.sock.sendall(frame(connect_packet(unique_id("badframe"))))
    assert raw.recv_mqtt() == CONNACK_OK
    mark = tcp.log.mark()
    raw.sock.sendall(bad())
    raw.expect_close(code)
    tcp.log.wait_for(rf"WebSocket protocol error: .*{needle}", since=mark)
    raw.close()
    # The other connections are untouched.
    ok = ws_client(ws).connect()
    ok.close()


def test_malformed_mqtt_inside_frames_closes_like_tcp(brokers):
    tcp, ws, _ = brokers
    raw = RawWs(ws)
    raw.upgrade()
    mark = tcp.log.mark()
    port = raw.sock.getsockname()[1]
    raw.sock.sendall(frame(connect_packet(unique_id("bad"), protocol_name=b"MQTX")))
    # The broker's own reason is logged, and the WebSocket ends with a normal close frame.
    raw.expect_close(1000)
    line = tcp.log.wait_for(rf"127\.0\.0\.1:{port}.*(protocol|malformed)", since=mark)
    assert "WebSocket protocol error" not in line
    raw.close()


def test_wss_handshake_verifies_with_the_server_certificate(brokers):
    _, _, wss = brokers
    ctx = ssl.create_default_context(cafile=wss.ca_cert)
    with socket.create_connection((wss.host, wss.port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            k = key()
            t.sendall(request(k=k))
            data = b""
            while b"\r\n\r\n" not in data:
                data += t.recv(4096)
            assert data.startswith(b"HTTP/1.1 101 ")
            t.sendall(frame(connect_packet(unique_id("wss"))))
            reply = t.recv(64)
            assert reply == bytes([0x82, 4]) + CONNACK_OK


# --------------------------------------------------------------------------
# Config file: four listeners at once
# --------------------------------------------------------------------------


def test_config_file_with_tcp_tls_ws_wss_listeners(server_bin, tmp_path, dev_cert):
    import subprocess
    from helpers import port_accepts
    cert, key_file = dev_cert
    ports = {p: free_port() for p in ("tcp", "tls", "ws", "wss")}
    conf = tmp_path / "four.toml"
    conf.write_text(
        f'data_dir = "{tmp_path / "data"}"\ngrpc_addr = "127.0.0.1:{free_port()}"\n'
        f'[[listener]]\nprotocol = "tcp"\naddress = "127.0.0.1:{ports["tcp"]}"\n'
        f'[[listener]]\nprotocol = "tls"\naddress = "127.0.0.1:{ports["tls"]}"\n'
        f'certificate = "{cert}"\nkey = "{key_file}"\n'
        f'[[listener]]\nprotocol = "ws"\naddress = "127.0.0.1:{ports["ws"]}"\npath = "/mqtt"\n'
        f'[[listener]]\nprotocol = "wss"\naddress = "127.0.0.1:{ports["wss"]}"\n'
        f'certificate = "{cert}"\nkey = "{key_file}"\n')
    log = tmp_path / "server.log"
    with open(log, "wb") as lf:
        proc = subprocess.Popen([str(server_bin), "--config", str(conf)], cwd=tmp_path, stdout=lf,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        # The listeners accept once bound; the start line follows a moment later.
        while not (all(port_accepts("127.0.0.1", p) for p in ports.values())
                   and "listening on" in log.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)  # nothing to await: the ports accept or not yet
        text = log.read_text()
        assert "(WebSocket /mqtt)" in text and "(WebSocket over TLS /mqtt)" in text, text
        topic = f"{unique_id('four')}/t"
        clients = []
        for kind, port in ports.items():
            srv = SimpleNamespace(host="127.0.0.1", port=port, tls=kind in ("tls", "wss"), ca_cert=str(cert))
            c = Client(srv, transport="websockets" if kind.startswith("ws") else "tcp").connect()
            c.subscribe(topic, qos=1)
            clients.append((kind, c))
        for kind, c in clients:
            c.publish(topic, kind.encode(), qos=1)
        for _, c in clients:
            assert sorted(m.payload for m in c.collect(4)) == sorted(k.encode() for k in ports)
        for _, c in clients:
            c.close()
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0, log.read_text()


def test_bad_ws_path_flag_is_refused(server_bin):
    import subprocess
    r = subprocess.run([str(server_bin), "--non-tls", "--ws-addr", "127.0.0.1:1", "--ws-path", "mqtt"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert "--ws-path 'mqtt'" in r.stderr
