"""gRPC from the command line: --grpc-* flags and start-up errors of mqtt-server, TLS for gRPC,
and the mqtt-server-ctl client."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import grpc
import pytest

import grpc_support as gs
from helpers import free_port, unique_id

pytestmark = pytest.mark.ours_only(reason="command line of our binaries")


def run(*cmd, cwd=None, timeout=15) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, stdin=subprocess.DEVNULL)


def start_args(tmp_path, grpc_addr: str) -> list[str]:
    return ["--non-tls", "--addr", f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path / "data"),
            "--grpc-addr", grpc_addr]


def assert_grpc_start_error(r, *must_contain: str) -> str:
    """Non-zero exit; the last stderr line is our one-line error; no gRPC-internal dump."""
    assert r.returncode > 0, f"exit {r.returncode}; stderr={r.stderr!r}"
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    last = lines[-1]
    assert last.startswith("mqtt-server: cannot listen for gRPC on "), last
    for s in must_contain:
        assert s in last, f"{s!r} not in {last!r}"
    assert not any("chttp2" in line or line.startswith("E1") for line in lines), r.stderr
    return last


def test_grpc_port_in_use(server_bin, tmp_path):
    """Another socket holds the gRPC port: exit non-zero with one clear line saying so."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run(server_bin, *start_args(tmp_path, f"127.0.0.1:{port}"), cwd=tmp_path)
    assert_grpc_start_error(r, f"127.0.0.1:{port}", "Address already in use", "--grpc-addr")


def test_grpc_port_of_another_mqtt_server(server, server_bin, tmp_path):
    """Two servers never share a gRPC port silently (gRPC would, with SO_REUSEPORT)."""
    r = run(server_bin, *start_args(tmp_path, f"127.0.0.1:{server.grpc_port}"), cwd=tmp_path)
    assert_grpc_start_error(r, "Address already in use")


@pytest.mark.parametrize("addr,needle", [
    ("nonsense", "HOST:PORT"),
    ("192.0.2.1:10000", "Cannot assign requested address"),  # TEST-NET-1: never a local address
], ids=["garbage", "not-local"])
def test_grpc_addr_unusable(server_bin, tmp_path, addr, needle):
    r = run(server_bin, *start_args(tmp_path, addr), cwd=tmp_path)
    assert_grpc_start_error(r, addr, needle)


def test_grpc_port_zero_picks_a_port_and_logs_it(server_factory, pb_stubs):
    srv = server_factory("--grpc-addr", "127.0.0.1:0")
    line = srv.log.wait_for(r"gRPC API listening on 127\.0\.0\.1:\d+")
    srv.grpc_port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))
    assert srv.grpc_port != 0
    ch = gs.channel(srv)
    health = pb_stubs.health_grpc.HealthStub(ch)
    assert health.Check(pb_stubs.health.HealthCheckRequest(), timeout=5).status == 1
    ch.close()


def test_help_shows_grpc_flags(server_bin):
    r = run(server_bin, "--help")
    assert r.returncode == 0
    for flag in ("--grpc-addr", "[::1]:10000", "--grpc-cert", "--grpc-key", "--grpc-stream-queue"):
        assert flag in r.stdout, f"{flag} not in --help"


# --------------------------------------------------------------------------
# TLS for gRPC
# --------------------------------------------------------------------------


def test_grpc_tls(server_factory, dev_cert, pb_stubs):
    """--grpc-cert/--grpc-key: a client trusting the certificate gets through; a plain one does not."""
    cert, key = dev_cert
    port = free_port()
    srv = server_factory("--grpc-addr", f"127.0.0.1:{port}", "--grpc-cert", str(cert), "--grpc-key", str(key))
    srv.log.wait_for(rf"gRPC API listening on 127\.0\.0\.1:{port} \(TLS;")
    creds = grpc.ssl_channel_credentials(root_certificates=Path(cert).read_bytes())
    ch = grpc.secure_channel(f"127.0.0.1:{port}", creds)
    grpc.channel_ready_future(ch).result(timeout=5)
    health = pb_stubs.health_grpc.HealthStub(ch)
    assert health.Check(pb_stubs.health.HealthCheckRequest(), timeout=5).status == 1
    v1 = pb_stubs.v1_grpc.BrokerServiceStub(ch)
    assert v1.ListDevices(pb_stubs.v1.ListDevicesRequest(), timeout=5).devices is not None
    ch.close()
    plain = grpc.insecure_channel(f"127.0.0.1:{port}")
    with pytest.raises(grpc.RpcError) as e:
        pb_stubs.health_grpc.HealthStub(plain).Check(pb_stubs.health.HealthCheckRequest(), timeout=3)
    assert e.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    plain.close()


def test_grpc_tls_needs_cert_and_key(server_bin, tmp_path, dev_cert):
    cert, _ = dev_cert
    r = run(server_bin, *start_args(tmp_path, f"127.0.0.1:{free_port()}"), "--grpc-cert", str(cert), cwd=tmp_path)
    assert r.returncode > 0
    assert r.stderr.strip().splitlines()[-1] == (
        "mqtt-server: --grpc-cert and --grpc-key go together (TLS for gRPC needs both)")


def test_grpc_tls_unreadable_key(server_bin, tmp_path, dev_cert):
    cert, _ = dev_cert
    r = run(server_bin, *start_args(tmp_path, f"127.0.0.1:{free_port()}"), "--grpc-cert", str(cert),
            "--grpc-key", str(tmp_path / "missing.key"), cwd=tmp_path)
    assert r.returncode > 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("mqtt-server: cannot read --grpc-key") and "missing.key" in last, last


# --------------------------------------------------------------------------
# mqtt-server-ctl
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pb_stubs():
    return gs.stubs()


@pytest.fixture(scope="session")
def ctl_bin(server_bin) -> Path:
    # scripts/test.sh sets MQTT_CTL_BIN; else the one built next to the server.
    path = Path(os.environ.get("MQTT_CTL_BIN") or Path(server_bin).parent / "mqtt-server-ctl")
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{path} not found: build it (target mqtt-server-ctl) or set MQTT_CTL_BIN",
                    pytrace=False)
    return path


def ctl(ctl_bin, srv, *args, timeout=15):
    return run(ctl_bin, "--addr", gs.grpc_target(srv), *args, timeout=timeout)


def test_ctl_help(ctl_bin):
    r = run(ctl_bin, "--help")
    assert r.returncode == 0
    for word in ("stream", "publish", "devices", "disconnect", "latest", "--addr", "[::1]:10000"):
        assert word in r.stdout, f"{word} not in:\n{r.stdout}"


def test_ctl_devices_publish_latest_disconnect(server, client_factory, ctl_bin):
    dev = client_factory(server, client_id=unique_id("ctl")).connect()
    dev.subscribe("broadcast/#")

    r = ctl(ctl_bin, server, "devices")
    assert r.returncode == 0, r.stderr
    line = next(l for l in r.stdout.splitlines() if l.startswith(dev.client_id + " "))
    assert re.fullmatch(rf"{dev.client_id} 127\.0\.0\.1:\d+ MQTT-3\.1\.1 \d{{4}}-\d\d-\d\dT[\d:.]+Z", line), line

    r = ctl(ctl_bin, server, "publish", "--device", dev.client_id, "--topic", "cmd/x", "--message", "hello", "--qos", "1")
    assert (r.returncode, r.stdout.strip()) == (0, "Success"), r.stderr
    assert dev.expect_message("cmd/x", b"hello").qos == 1

    r = ctl(ctl_bin, server, "publish", "--topic", "broadcast/all", "--message", "to everyone")
    assert (r.returncode, r.stdout.strip()) == (0, "Published"), r.stderr
    dev.expect_message("broadcast/all", b"to everyone")

    dev.publish("meter", b"42", qos=1)
    r = ctl(ctl_bin, server, "latest", "--device", dev.client_id, "--topic", "meter")
    assert (r.returncode, r.stdout) == (0, "42\n"), r.stderr

    r = ctl(ctl_bin, server, "disconnect", dev.client_id)
    assert r.returncode == 0, r.stderr
    dev.wait_disconnected()

    r = ctl(ctl_bin, server, "disconnect", dev.client_id)
    assert r.returncode == 1
    assert r.stderr.strip() == f"mqtt-server-ctl: NOT_FOUND: device {dev.client_id} is not connected"


def test_ctl_publish_to_unknown_device(server, ctl_bin):
    r = ctl(ctl_bin, server, "publish", "--device", "ghost", "--message", "x")
    assert r.returncode == 1
    assert r.stderr.startswith("mqtt-server-ctl: NOT_FOUND: device ghost is not connected")


def test_ctl_stream(server, client_factory, ctl_bin):
    """stream --device --topic prints DEVICE TOPIC PAYLOAD per message; --count ends it."""
    a = client_factory(server, client_id=unique_id("ctlA")).connect()
    b = client_factory(server, client_id=unique_id("ctlB")).connect()
    proc = subprocess.Popen([str(ctl_bin), "--addr", gs.grpc_target(server), "stream", "--device", a.client_id,
                             "--topic", "s/+", "--count", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        # The stream is registered once the server logs it.
        server.log.wait_for(rf"gRPC stream \d+ opened by .* \(device {a.client_id}, topic filter s/\+\)")
        b.publish("s/1", b"not a")
        a.publish("s/1/deep", b"no match")
        a.publish("s/1", b"first")
        a.publish("s/2", b"\x00\x01")
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.splitlines() == [f"{a.client_id} s/1 first", f"{a.client_id} s/2 0x0001"]


def test_ctl_unreachable_server(ctl_bin):
    r = run(ctl_bin, "--addr", f"127.0.0.1:{free_port()}", "--timeout", "1", "devices")
    assert r.returncode == 1
    assert r.stderr.startswith("mqtt-server-ctl: UNAVAILABLE") or r.stderr.startswith(
        "mqtt-server-ctl: DEADLINE_EXCEEDED"), r.stderr


def test_grpc_bearer_token_required(server_factory, pb_stubs, ctl_bin, tmp_path):
    """--grpc-token-file: every call without the right bearer token is UNAUTHENTICATED, the
    right one works; health stays open for probes. mqtt-server-ctl passes --token."""
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    srv = server_factory("--grpc-token-file", str(token_file))
    ch = gs.channel(srv)
    v1 = pb_stubs.v1_grpc.BrokerServiceStub(ch)
    pp = pb_stubs.pp_grpc.PublishedPacketServiceStub(ch)
    for metadata in (None, [("authorization", "Bearer wrong")], [("authorization", "s3cret-token")]):
        with pytest.raises(grpc.RpcError) as e:
            v1.ListDevices(pb_stubs.v1.ListDevicesRequest(), timeout=5, metadata=metadata)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as e:
        pp.PublishPayloadToDevice(pb_stubs.pp.PublishRequest(device_id="d", topic="t"), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as e:
        next(iter(pp.StreamPublishedPayload(pb_stubs.pp.PublishedPacketRequest(), timeout=5)))
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    ok = [("authorization", "Bearer s3cret-token")]
    v1.ListDevices(pb_stubs.v1.ListDevicesRequest(), timeout=5, metadata=ok)
    health = pb_stubs.health_grpc.HealthStub(ch)
    assert health.Check(pb_stubs.health.HealthCheckRequest(), timeout=5).status == 1
    ch.close()
    assert ctl(ctl_bin, srv, "devices").returncode != 0
    r = ctl(ctl_bin, srv, "--token", "s3cret-token", "devices")
    assert r.returncode == 0, r.stderr


def test_grpc_token_file_unreadable_is_a_startup_error(server_bin, tmp_path):
    r = run(server_bin, *start_args(tmp_path, f"127.0.0.1:{free_port()}"), "--grpc-token-file",
            str(tmp_path / "missing"), cwd=tmp_path)
    assert r.returncode != 0
    assert "grpc-token-file" in r.stderr
