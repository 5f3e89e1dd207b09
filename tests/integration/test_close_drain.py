"""When the server ends a connection while the client is still sending, the client reads the
server's last packets (an MQTT 5 DISCONNECT with its reason) and then an orderly end of stream,
not a connection reset that destroys them: the server half-closes and reads what still comes
for a moment before it closes (MQTT 5 section 4.13; the Paho interoperability suite's case)."""

from __future__ import annotations

import socket
import threading

import pytest

from helpers import unique_id
from mqtt5_support import connect5, decode_varint, publish5

RC_PACKET_TOO_LARGE = 0x95


def read_until_end(sock: socket.socket, timeout: float = 10.0) -> tuple[bytes, str]:
    """Everything the server sends, and how it ended: 'eof' or 'reset'."""
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data, "reset"
        if not chunk:
            return data, "eof"
        data += chunk


def packets(data: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 0
    while i < len(data):
        ptype = data[i] >> 4
        length, j = decode_varint(data, i + 1)
        out.append((ptype, data[j:j + length]))
        i = j + length
    return out


@pytest.mark.ours_only(reason="the reason code and the drain are ours to test")
# Without the drain about half of the rounds see a reset on this machine: five make a miss unlikely.
@pytest.mark.parametrize("round_", range(5))
def test_client_still_sending_reads_the_disconnect_reason(server_factory, round_):
    srv = server_factory("--max-packet-size", "1024")
    sock = socket.create_connection((srv.host, srv.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(connect5(unique_id("drain")))
    connack = sock.recv(64)
    assert connack[0] >> 4 == 2 and connack[3] == 0, connack

    # One PUBLISH over the limit, then a stream of normal ones that is still arriving while the
    # server decides to close: its receive buffer holds unread bytes when it does.
    flood = publish5("drain/x", b"y" * 512) * 500
    stop = threading.Event()

    def keep_sending():
        try:
            sock.sendall(publish5("drain/x", b"z" * 4000) + flood)
            while not stop.is_set():
                sock.sendall(flood)
        except OSError:
            pass  # the server has closed: expected

    sender = threading.Thread(target=keep_sending, daemon=True)
    sender.start()
    try:
        data, how = read_until_end(sock)
    finally:
        stop.set()
        sender.join(timeout=10)
        sock.close()
    got = packets(data)
    assert how == "eof", f"the connection was reset; the client read {got}"
    assert got and got[-1][0] == 14, f"expected a DISCONNECT last, got {got}"
    assert got[-1][1][0] == RC_PACKET_TOO_LARGE, f"DISCONNECT reason {got[-1][1][0]:#x}"
    srv.log.wait_for(r"disconnected \(packet exceeds maximum size\)", timeout=5)
