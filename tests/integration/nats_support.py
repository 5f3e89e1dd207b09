"""A real nats-server for the cluster tests (issue #15), started by the suite like Cassandra.

nats-server is Debian's package; its binary is /usr/sbin/nats-server, which is not on a normal
user's PATH, so it is looked up there first ($NATS_SERVER_BIN overrides).

    from nats_support import NatsServer
    nats = NatsServer(workdir)       # a free port on 127.0.0.1, JetStream on, store in workdir
    nats.start()                     # waits until a client gets its INFO with jetstream true
    nats.url                         # "nats://127.0.0.1:<port>", for --cluster
    nats.stop(); nats.start()        # same port and store: a restart (the outage tests)
    nats.close()

Its log goes to ``workdir/nats-server.log`` (appended across restarts); ``log_tail()`` shows
the end of it in failure reports. ``info()`` and ``request()`` speak the NATS text protocol over
a plain socket (INFO, CONNECT, SUB, PUB, MSG), enough to check the server itself; the brokers
under test bring their own client (libnats).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import helpers

DEBIAN_BIN = Path("/usr/sbin/nats-server")
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


def nats_server_bin() -> Path | None:
    """The nats-server binary: $NATS_SERVER_BIN, Debian's /usr/sbin one, else one on PATH."""
    env = os.environ.get("NATS_SERVER_BIN")
    if env:
        return Path(env)
    if DEBIAN_BIN.is_file() and os.access(DEBIAN_BIN, os.X_OK):
        return DEBIAN_BIN
    found = shutil.which("nats-server")
    return Path(found) if found else None


def missing_reason() -> str | None:
    """Why no nats-server can be started here, or None."""
    path = nats_server_bin()
    if path is None or not (path.is_file() and os.access(path, os.X_OK)):
        return f"nats-server not found ({DEBIAN_BIN} or PATH): apt-get install nats-server"
    return None


class NatsError(RuntimeError):
    pass


class _Conn:
    """One NATS client connection over a plain socket, text protocol only."""

    def __init__(self, port: int, timeout: float):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.timeout = timeout

    def line(self) -> bytes:
        deadline = time.monotonic() + self.timeout
        while b"\r\n" not in self.buf:
            if time.monotonic() > deadline:
                raise NatsError(f"no complete protocol line within {self.timeout}s; got {self.buf[:200]!r}")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise NatsError(f"nats-server closed the connection; got {self.buf[:200]!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise NatsError("nats-server closed the connection mid-message")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def close(self) -> None:
        self.sock.close()


def parse_info(line: bytes) -> dict:
    """The JSON of an ``INFO {...}`` line, the first thing a NATS server sends."""
    assert line.startswith(b"INFO {"), f"expected an INFO line, got {line[:200]!r}"
    return json.loads(line[len(b"INFO "):])


class NatsServer:
    """One nats-server process on 127.0.0.1 with JetStream, its store and log in ``workdir``.

    stop() and start() keep the port and the store folder, so a test can take NATS away mid-run
    and bring the same server (same JetStream state) back.
    """

    def __init__(self, workdir: str | os.PathLike, port: int | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.store_dir = self.workdir / "jetstream-store"
        self.log_path = self.workdir / "nats-server.log"
        self.port = port or helpers.free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def __repr__(self):
        pid = self.proc.pid if self.proc else None
        return f"NatsServer({self.url} pid={pid} store={self.store_dir})"

    def command(self) -> list[str]:
        path = nats_server_bin()
        if path is None:
            raise NatsError(missing_reason())
        # -js -sd: JetStream with its file store in our folder (the design keeps ownership and
        # the retained feed in JetStream); no monitoring port, no cluster routes: one server.
        return [str(path), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store_dir),
                "-n", f"test-nats-{self.port}"]

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> float:
        """Start it and wait until a client connect gets an INFO saying JetStream is on."""
        if self.is_running():
            return 0.0
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"---- start #{self.starts + 1}: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.command(), cwd=self.workdir, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1
        deadline = t0 + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise NatsError(f"nats-server exited with {self.proc.returncode} while starting:\n"
                                f"{self.log_tail()}")
            try:
                if self.info(timeout=1.0).get("jetstream"):
                    return time.monotonic() - t0
                last = "INFO without jetstream"
            except (OSError, NatsError, AssertionError) as e:
                last = str(e)
            time.sleep(0.05)  # the port either accepts or not yet: nothing to wait on
        self.kill()
        raise NatsError(f"nats-server not ready within {timeout}s ({last}):\n{self.log_tail()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM (SIGKILL after ``timeout``); the store stays for a later start()."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        rc = self.proc.returncode
        self.proc = None
        return rc

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def restart(self, down_for: float = 0.0) -> float:
        """stop(), stay down ``down_for`` seconds, start() on the same port and store."""
        self.stop()
        if down_for:
            time.sleep(down_for)  # the outage itself is what is being tested
        return self.start()

    close = stop

    def __enter__(self) -> "NatsServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- checks over the wire -----------------------------------------------------------------

    def info(self, timeout: float = 5.0) -> dict:
        """Connect, read the server's INFO line and return its JSON."""
        c = _Conn(self.port, timeout)
        try:
            return parse_info(c.line())
        finally:
            c.close()

    def request(self, subject: str, payload: bytes = b"", timeout: float = 5.0) -> bytes:
        """Publish ``payload`` on ``subject`` with a reply inbox and return the first reply
        (e.g. a JetStream API call such as ``$JS.API.STREAM.INFO.<name>``)."""
        c = _Conn(self.port, timeout)
        try:
            parse_info(c.line())
            inbox = f"_INBOX.test{os.urandom(6).hex()}"
            c.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\n'
                           + f"SUB {inbox} 1\r\nPUB {subject} {inbox} {len(payload)}\r\n".encode()
                           + payload + b"\r\nPING\r\n")
            while True:
                line = c.line()
                if line.startswith(b"-ERR"):
                    raise NatsError(f"nats-server: {line.decode(errors='replace')}")
                if line.startswith(b"MSG "):
                    size = int(line.split()[-1])
                    body = c.read_exact(size + 2)[:size]
                    return body
                # PONG, +OK, PING: keep reading until the reply
                if line == b"PING":
                    c.sock.sendall(b"PONG\r\n")
        finally:
            c.close()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return f"(no log at {self.log_path})"
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.log_path} ---\n" + "\n".join(tail)
