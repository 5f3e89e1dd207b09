"""--config FILE: TOML settings and [[listener]] tables, errors with file and line, SIGHUP
reloading listener certificates, and sd_notify for systemd."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from helpers import Client, free_port, port_accepts, round_trip

pytestmark = pytest.mark.ours_only(reason="configuration file of our binary")


def make_cert(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A self-signed EC certificate for 127.0.0.1 with CN=name."""
    cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    return cert, key


def base_settings(tmp_path: Path) -> str:
    """Top-level keys that keep a server off shared resources (store folder, gRPC port)."""
    return f'data_dir = "{tmp_path / "data"}"\ngrpc_addr = "127.0.0.1:{free_port()}"\n'


class Started:
    """The binary started directly with a config file (stdout and stderr to a log file)."""

    def __init__(self, server_bin: Path, tmp_path: Path, config: str, *args: str, env: dict | None = None):
        self.path = tmp_path / "mqtt-server.toml"
        self.path.write_text(config)
        self.logfile = tmp_path / "server.log"
        with open(self.logfile, "wb") as lf:
            self.process = subprocess.Popen([str(server_bin), "--config", str(self.path), *args], cwd=tmp_path,
                                            stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=env)

    def log(self) -> str:
        return self.logfile.read_text(errors="replace")

    def wait_port(self, port: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not port_accepts("127.0.0.1", port):
            assert self.process.poll() is None, f"server exited: {self.log()}"
            assert time.monotonic() < deadline, f"port {port} never accepted: {self.log()}"
            time.sleep(0.02)  # nothing to await: the port accepts or not yet

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.process.returncode


@pytest.fixture
def started(server_bin, tmp_path):
    servers: list[Started] = []

    def start(config: str, *args: str, env: dict | None = None) -> Started:
        s = Started(server_bin, tmp_path, config, *args, env=env)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


def client(port: int, tls: bool = False, ca: Path | None = None) -> Client:
    return Client(SimpleNamespace(host="127.0.0.1", port=port, tls=tls, ca_cert=str(ca) if ca else None))


def test_tcp_and_tls_listeners_at_once(started, tmp_path):
    """Two [[listener]] tables, plain TCP and TLS on their own ports, serve at the same time
    and route to each other (paho-mqtt on both)."""
    cert, key = make_cert(tmp_path, "both")
    tcp_port, tls_port = free_port(), free_port()
    srv = started(base_settings(tmp_path) + f"""
[[listener]]
protocol = "tcp"
address = "127.0.0.1:{tcp_port}"

[[listener]]
protocol = "tls"
address = "127.0.0.1:{tls_port}"
certificate = "{cert}"
key = "{key}"
""")
    srv.wait_port(tcp_port)
    srv.wait_port(tls_port)
    plain, secure = client(tcp_port).connect(), client(tls_port, tls=True, ca=cert).connect()
    try:
        plain.subscribe("cfg/a")
        secure.subscribe("cfg/b")
        round_trip(secure, plain, "cfg/a")
        round_trip(plain, secure, "cfg/b")
    finally:
        plain.close()
        secure.close()
    assert srv.stop() == 0, srv.log()


def test_settings_from_file_and_flag_overrides(started, tmp_path):
    """A top-level key sets the flag of the same long name; the command line wins over the file:
    the file's addr is replaced by --addr."""
    file_port, flag_port = free_port(), free_port()
    srv = started(base_settings(tmp_path) + f'non_tls = true\naddr = "127.0.0.1:{file_port}"\nthreads = 1\n',
                  "--addr", f"127.0.0.1:{flag_port}")
    srv.wait_port(flag_port)
    assert not port_accepts("127.0.0.1", file_port), "the file's address is listening despite --addr"
    c = client(flag_port).connect()
    try:
        c.subscribe("cfg/o")
        round_trip(c, c, "cfg/o")
    finally:
        c.close()


@pytest.mark.parametrize("body, line, needles", [
    ('non_tls = true\nno_such_setting = 3\n', 2, ["no_such_setting"]),
    ('non_tls = true\nthreads = "many"\n', 2, ["threads"]),
    ('non_tls = true\nmax_inflight = 99999999\n', 2, ["max_inflight"]),
    ('non_tls = true\nthreads = [\n', None, []),
    ('[[listener]]\nprotocol = "ws"\naddress = "127.0.0.1:1"\ncertificate = "a.pem"\n', 1, ["certificate", "only for protocol"]),
    ('[[listener]]\nprotocol = "carrier-pigeon"\naddress = "127.0.0.1:1"\n', 2, ["protocol"]),
    ('[[listener]]\nprotocol = "tcp"\naddress = "nowhere"\n', 3, ["address"]),
], ids=["unknown-key", "wrong-type", "out-of-range", "syntax", "ws-with-cert", "bad-protocol", "bad-address"])
def test_bad_file_names_file_line_and_key(server_bin, tmp_path, body, line, needles):
    """A bad config file exits non-zero with one stderr line naming the file, the line and the key."""
    path = tmp_path / "bad.toml"
    path.write_text(body)
    r = subprocess.run([str(server_bin), "--config", str(path)], capture_output=True, text=True, timeout=10,
                       cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert r.returncode > 0, (r.returncode, r.stderr)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    assert str(path) in lines[0], lines[0]
    if line is not None:
        assert f"{path}:{line}:" in lines[0], lines[0]
    for n in needles:
        assert n in lines[0], lines[0]


def test_missing_file(server_bin, tmp_path):
    """A config file that does not exist is named in a one-line error, non-zero exit."""
    path = tmp_path / "absent.toml"
    r = subprocess.run([str(server_bin), "--config", str(path)], capture_output=True, text=True, timeout=10,
                       cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert r.returncode > 0
    assert str(path) in r.stderr, r.stderr


def served_certificate(port: int) -> bytes:
    """The DER certificate the TLS listener on ``port`` presents to a new connection."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw) as s:
            return s.getpeercert(binary_form=True)


def der(cert: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.read_text())


def test_sighup_reloads_listener_certificate(started, tmp_path):
    """SIGHUP reloads a TLS listener's certificate and key: new connections see the new one; an
    unreadable replacement keeps the old one (and the server keeps running)."""
    old_cert, old_key = make_cert(tmp_path, "old")
    new_cert, new_key = make_cert(tmp_path, "new")
    cert, key = tmp_path / "live.crt", tmp_path / "live.key"
    cert.write_bytes(old_cert.read_bytes())
    key.write_bytes(old_key.read_bytes())
    port = free_port()
    srv = started(base_settings(tmp_path) + f"""
[[listener]]
protocol = "tls"
address = "127.0.0.1:{port}"
certificate = "{cert}"
key = "{key}"
""")
    srv.wait_port(port)
    assert served_certificate(port) == der(old_cert)
    held = client(port, tls=True, ca=old_cert).connect()  # open before the reload
    cert.write_bytes(new_cert.read_bytes())
    key.write_bytes(new_key.read_bytes())
    srv.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while served_certificate(port) != der(new_cert):
        assert time.monotonic() < deadline, f"new certificate never served: {srv.log()}"
        time.sleep(0.05)  # the reload runs on the main thread's next turn
    held.subscribe("cfg/held")
    round_trip(held, held, "cfg/held")  # the connection from before the reload still works
    held.close()

    cert.write_text("not a certificate\n")
    srv.process.send_signal(signal.SIGHUP)
    time.sleep(1)  # give the reload its turn; then the old (new) certificate must still be served
    assert srv.process.poll() is None, srv.log()
    assert served_certificate(port) == der(new_cert)
    assert srv.stop() == 0, srv.log()


def test_sd_notify_ready_and_stopping(started, tmp_path):
    """With NOTIFY_SOCKET set (as systemd does for Type=notify), READY=1 arrives once the port
    accepts connections, and STOPPING=1 on SIGTERM."""
    sock_path = tmp_path / "notify.sock"
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(str(sock_path))
    rx.settimeout(15)
    port = free_port()
    env = dict(os.environ, NOTIFY_SOCKET=str(sock_path))
    try:
        srv = started(base_settings(tmp_path) + f'non_tls = true\naddr = "127.0.0.1:{port}"\n', env=env)
        first = rx.recv(4096).decode()
        assert "READY=1" in first.split("\n"), first
        assert port_accepts("127.0.0.1", port), "READY=1 before the port accepts connections"
        srv.process.send_signal(signal.SIGTERM)
        seen = []
        while not any("STOPPING=1" in m.split("\n") for m in seen):
            seen.append(rx.recv(4096).decode())
        assert srv.process.wait(timeout=10) == 0, srv.log()
    finally:
        rx.close()


def test_listener_max_connections(started, tmp_path):
    """A listener's max_connections refuses connections past its limit; another listener of the
    same server still accepts."""
    small, other = free_port(), free_port()
    srv = started(base_settings(tmp_path) + f"""
[[listener]]
protocol = "tcp"
address = "127.0.0.1:{small}"
max_connections = 2

[[listener]]
protocol = "tcp"
address = "127.0.0.1:{other}"
""")
    srv.wait_port(other)
    first = [client(small).connect() for _ in range(2)]
    try:
        third = client(small)
        with pytest.raises(AssertionError):
            third.connect(timeout=2)
        third.close()
        extra = client(other).connect()
        extra.subscribe("cfg/max")
        round_trip(first[0], extra, "cfg/max")
        extra.close()
    finally:
        for c in first:
            c.close()
    assert "max_connections 2 reached" in srv.log(), srv.log()
