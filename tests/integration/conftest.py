"""Fixtures that run a real broker for each test.

By default the broker is our binary ($MQTT_SERVER_BIN, default
<repo>/build/mqtt-server). With ``--broker=mosquitto`` the same tests run
against Mosquitto, which proves the tests themselves against a reference
broker; tests marked ``ours_only`` (command line, log contents, behaviour where
Mosquitto legitimately differs) are skipped then.

Fixtures:

* ``server``         plain-TCP broker (our binary with --non-tls)
* ``tls_server``     TLS broker with a self-signed development certificate
* ``server_factory`` start(*extra_args, tls=False, max_packet_size=None)
* ``client_factory`` make(server, **kw) -> helpers.Client, closed at teardown
* ``dev_cert``       (cert, key) paths, made once per session by
                     scripts/gen-dev-cert.sh

Each broker gets a free port on 127.0.0.1; the fixture waits until the port
accepts. Its stdout and stderr go to a log file in the test's tmp_path and to
``broker.log`` (LogCapture: mark(), text(), wait_for(regex)). At teardown the broker gets SIGTERM
and must exit with code 0 within 10 s: a crash, a hang or a non-zero exit
fails the test (unless the test killed it with ``broker.kill()``), and a
failing test's report shows the tail of the log, and of any log the test listed
in ``request.node.extra_logs`` as (title, tail function).

Our binary runs with its cwd in the test's tmp_path, its own --data-dir there
and its own free --grpc-addr port (unless the test passes those flags), so
brokers never share a store or a port. Set MQTT_SERVER_ARGS (e.g. "--trace")
to pass extra flags to it.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import helpers  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / "build" / "mqtt-server"
GEN_CERT = REPO / "scripts" / "gen-dev-cert.sh"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0

_brokers_key = pytest.StashKey[list]()


# --------------------------------------------------------------------------
# Options, markers, timeouts
# --------------------------------------------------------------------------


def pytest_addoption(parser, pluginmanager):
    parser.addoption(
        "--broker", choices=["ours", "mosquitto"], default="ours",
        help="broker under test: our binary (default) or Mosquitto, to prove the tests themselves")
    if not pluginmanager.hasplugin("timeout"):
        # Fallback for when python3-pytest-timeout is not installed: same ini key.
        parser.addini("timeout", "per-test timeout in seconds (fallback, SIGALRM)", default="0")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "ours_only(reason): tests of our binary only; skipped with --broker=mosquitto")
    if not config.pluginmanager.hasplugin("timeout"):
        config.addinivalue_line("markers", "timeout(seconds): per-test timeout (fallback)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--broker") != "mosquitto":
        return
    for item in items:
        m = item.get_closest_marker("ours_only")
        if m is not None:
            reason = m.kwargs.get("reason") or (m.args[0] if m.args else "tests our binary only")
            item.add_marker(pytest.mark.skip(reason=f"ours_only: {reason}"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """SIGALRM per-test timeout, only when pytest-timeout is not installed."""
    seconds = 0.0
    if not item.config.pluginmanager.hasplugin("timeout"):
        m = item.get_closest_marker("timeout")
        seconds = float(m.args[0]) if m and m.args else float(item.config.getini("timeout") or 0)
    if seconds <= 0:
        yield
        return

    def on_alarm(signum, frame):
        pytest.fail(f"Timeout >{seconds}s", pytrace=True)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the tail of each broker log to a failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for b in item.stash.get(_brokers_key, []):
            report.sections.append((f"broker log {b.log_path}", b.log.tail(60)))
        # Logs of other processes a test used (the cluster tests' nats-server): (title, tail()).
        for title, tail in getattr(item, "extra_logs", []):
            report.sections.append((title, tail()))


# --------------------------------------------------------------------------
# Broker processes
# --------------------------------------------------------------------------


class LogCapture:
    """Reads a pipe in a thread into a file and an in-memory list of lines."""

    def __init__(self, stream, path: Path):
        self.path = path
        self.lines: list[str] = []
        self.closed = False
        self._cond = threading.Condition()
        self._file = open(path, "w", encoding="utf-8")
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream):
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self._file.write(line + "\n")
                self._file.flush()
                with self._cond:
                    self.lines.append(line)
                    self._cond.notify_all()
        finally:
            self._file.close()
            stream.close()
            with self._cond:
                self.closed = True
                self._cond.notify_all()

    def join(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout)

    def mark(self) -> int:
        """A position; pass it as ``since`` to look only at lines logged after now."""
        with self._cond:
            return len(self.lines)

    def text(self, since: int = 0) -> str:
        with self._cond:
            return "\n".join(self.lines[since:])

    def tail(self, n: int) -> str:
        with self._cond:
            return "\n".join(self.lines[-n:])

    def wait_for(self, pattern: str, since: int = 0, timeout: float = 5.0, flags=re.IGNORECASE) -> str:
        """Wait for a line (after position ``since``) matching ``pattern``; return it."""
        rx = re.compile(pattern, flags)
        found = None

        def check():
            nonlocal found
            for line in self.lines[since:]:
                if rx.search(line):
                    found = line
                    return True
            return self.closed

        with self._cond:
            self._cond.wait_for(check, timeout)
            if found is None:
                raise AssertionError(
                    f"no log line matching {pattern!r} within {timeout}s; log since then:\n"
                    + "\n".join(self.lines[since:][-40:]))
            return found


class Broker:
    """A running broker: host, port, process, log_path, log, tls, ca_cert, kind."""

    def __init__(self, kind, host, port, tls, ca_cert, process, log, log_path, cmd):
        self.kind = kind
        self.host = host
        self.port = port
        self.tls = tls
        self.ca_cert = ca_cert
        self.process = process
        self.log = log
        self.log_path = log_path
        self.cmd = cmd
        self.grpc_port = None  # our binary: the port given to --grpc-addr
        self.killed = False  # set by kill(): no clean exit is expected at teardown

    @property
    def ours(self) -> bool:
        return self.kind == "ours"

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    def __repr__(self):
        return f"Broker({self.kind} {self.addr} tls={self.tls} pid={self.process.pid})"

    def send_signal(self, sig) -> None:
        self.process.send_signal(sig)

    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int:
        """Wait for the process to exit; AssertionError (after killing it) if it does not."""
        try:
            rc = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            self.log.join()
            raise AssertionError(
                f"{self} did not exit within {timeout}s; killed. Log tail:\n{self.log.tail(40)}") from None
        self.log.join()
        return rc

    def kill(self) -> None:
        """SIGKILL, as a crash would (the cluster tests' dead node); teardown then accepts it."""
        self.killed = True
        self.process.kill()
        self.wait_exit()

    def stop(self, sig=signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Send ``sig`` (unless it already exited) and return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.wait_exit(timeout)


def _set_pdeathsig():
    """Child side: die with the test runner, so no broker outlives a killed run."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _mosquitto_conf(path: Path, port: int, tls: bool, cert, key, max_packet_size) -> None:
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "persistence false",
        "log_dest stderr",
        "log_type all",
        "connection_messages true",
    ]
    if os.geteuid() == 0:
        lines.append("user root")  # do not drop to user mosquitto (it could not read the key)
    if tls:
        lines += [f"certfile {cert}", f"keyfile {key}"]
    if max_packet_size:
        lines.append(f"max_packet_size {max_packet_size}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="session")
def broker_kind(pytestconfig) -> str:
    return pytestconfig.getoption("--broker")


@pytest.fixture(scope="session")
def server_bin() -> Path:
    """Path of our binary; an error (not a skip) when it has not been built."""
    path = Path(os.environ.get("MQTT_SERVER_BIN", DEFAULT_BIN))
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"server binary {path} not found or not executable: build it (cmake --build build), "
            f"set MQTT_SERVER_BIN, or run with --broker=mosquitto", pytrace=False)
    return path


@pytest.fixture(scope="session")
def dev_cert(tmp_path_factory) -> tuple[Path, Path]:
    """(cert, key) of a self-signed certificate for localhost/127.0.0.1, made once."""
    d = tmp_path_factory.mktemp("devcert")
    cert, key = d / "server.crt", d / "private.key"
    r = subprocess.run(["bash", str(GEN_CERT), str(cert), str(key)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and cert.is_file() and key.is_file(), (
        f"gen-dev-cert.sh failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return cert, key


@pytest.fixture
def server_factory(request, broker_kind, tmp_path, dev_cert):
    """start(*extra_args, tls=False, max_packet_size=None) -> Broker.

    ``extra_args`` go to our binary only (a test that passes some must be
    ours_only). ``max_packet_size`` maps to --max-packet-size for our binary
    and to max_packet_size in Mosquitto's configuration.
    """
    started: list[Broker] = []
    request.node.stash[_brokers_key] = started
    cert, key = dev_cert
    ours_bin = request.getfixturevalue("server_bin") if broker_kind == "ours" else None

    def start(*extra_args: str, tls: bool = False, max_packet_size: int | None = None) -> Broker:
        n = len(started)
        log_path = tmp_path / (f"broker-{n}.log" if n else "broker.log")
        last_failure = ""
        for attempt in range(3):
            port = helpers.free_port()
            grpc_port = None
            if broker_kind == "ours":
                cmd = [str(ours_bin), "--addr", f"127.0.0.1:{port}"]
                cmd += ["--cert", str(cert), "--key", str(key)] if tls else ["--non-tls"]
                if max_packet_size:
                    cmd += ["--max-packet-size", str(max_packet_size)]
                if "--data-dir" not in extra_args and not any(a.startswith("--data-dir=") for a in extra_args):
                    # Each broker its own embedded store (RocksDB locks its folder).
                    cmd += ["--data-dir", str(tmp_path / f"data-{n}")]
                if "--grpc-addr" not in extra_args and not any(a.startswith("--grpc-addr=") for a in extra_args):
                    # Its own gRPC port too, so that brokers (and other runs) never collide on the default.
                    grpc_port = helpers.free_port()
                    cmd += ["--grpc-addr", f"127.0.0.1:{grpc_port}"]
                cmd += list(extra_args) + shlex.split(os.environ.get("MQTT_SERVER_ARGS", ""))
            else:
                if extra_args:
                    raise pytest.UsageError(f"{request.node.nodeid}: extra args {extra_args} need ours_only")
                conf = tmp_path / f"mosquitto-{n}.conf"
                _mosquitto_conf(conf, port, tls, cert, key, max_packet_size)
                cmd = ["mosquitto", "-c", str(conf)]
            proc = subprocess.Popen(cmd, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, preexec_fn=_set_pdeathsig)
            log = LogCapture(proc.stdout, log_path)
            broker = Broker(broker_kind, "127.0.0.1", port, tls, str(cert), proc, log, log_path, cmd)
            broker.grpc_port = grpc_port
            deadline = time.monotonic() + START_TIMEOUT
            while proc.poll() is None and time.monotonic() < deadline:
                if helpers.port_accepts("127.0.0.1", port):
                    if broker_kind == "ours":
                        # The first listener accepts before the others (--ws-addr, --wss-addr)
                        # are bound; the start line is logged once all of them listen.
                        log.wait_for(r"listening on", timeout=START_TIMEOUT)
                    started.append(broker)
                    return broker
                time.sleep(0.02)  # nothing to await: the port either accepts or not yet
            exited = proc.poll()
            if exited is None:
                proc.kill()
            proc.wait()
            log.join()
            how = (f"did not listen within {START_TIMEOUT}s (killed)" if exited is None
                   else f"exited with code {proc.returncode} before listening")
            last_failure = f"{' '.join(cmd)}\n{how}; log:\n{log.tail(40)}"
            if not re.search(r"in use|EADDRINUSE", log.text(), re.IGNORECASE):
                break  # not a lost race for the port: do not retry
        pytest.fail(f"broker failed to start: {last_failure}", pytrace=False)

    yield start

    problems = []
    for b in started:
        if b.killed:
            continue
        already = b.process.poll()
        try:
            rc = b.stop(signal.SIGTERM)
        except AssertionError as e:
            problems.append(str(e))
            continue
        if rc != 0:
            how = "had already exited" if already is not None else "exited after SIGTERM"
            problems.append(f"{b} {how} with code {rc} (expected 0). Log tail:\n{b.log.tail(40)}")
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def server(server_factory) -> Broker:
    """A plain-TCP broker."""
    return server_factory()


@pytest.fixture
def tls_server(server_factory) -> Broker:
    """A TLS broker; clients trust ``tls_server.ca_cert``."""
    return server_factory(tls=True)


@pytest.fixture
def client_factory(server_factory):
    """make(server, client_id=None, protocol=MQTTv311, clean_session=True, tls=None) -> Client.

    Clients are not connected yet (call .connect()); all are closed at
    teardown, before the brokers are stopped.
    """
    made: list[helpers.Client] = []

    def make(srv, **kw) -> helpers.Client:
        c = helpers.Client(srv, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        try:
            c.close()
        except Exception:
            pass
