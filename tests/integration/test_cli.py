"""Command line of our binary: flags, startup errors, signals."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from types import SimpleNamespace

import pytest

from helpers import Client, free_port, port_accepts, round_trip

pytestmark = pytest.mark.ours_only(reason="command line of our binary")


def run(bin_path, *args, cwd=None, timeout=10) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_path), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, stdin=subprocess.DEVNULL)


def isolated(tmp_path) -> list[str]:
    """Flags that keep a directly started binary off shared resources: its own embedded store
    folder and its own gRPC port (the defaults ./data and [::1]:10000 may be in use)."""
    return ["--data-dir", str(tmp_path / "data"), "--grpc-addr", f"127.0.0.1:{free_port()}"]


def tls_args(tmp_path, cert, key) -> list[str]:
    """A TLS start on a free port with the given certificate and key files."""
    return [*isolated(tmp_path), "--addr", f"127.0.0.1:{free_port()}", "--cert", str(cert), "--key", str(key)]


def stderr_lines(r) -> list[str]:
    return [line for line in r.stderr.splitlines() if line.strip()]


def assert_one_line_error(r, *must_contain: str):
    """Non-zero exit, exactly one non-empty line on stderr, containing every ``must_contain``."""
    assert r.returncode != 0, f"exit 0; stdout={r.stdout!r} stderr={r.stderr!r}"
    assert r.returncode > 0, f"killed by signal {-r.returncode}: stderr={r.stderr!r}"
    lines = stderr_lines(r)
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{r.stderr}"
    for s in must_contain:
        assert s in lines[0], f"{s!r} not in {lines[0]!r}"
    return lines[0]


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(server_bin, flag):
    """-V / --version prints a version number and exits 0."""
    r = run(server_bin, flag)
    assert r.returncode == 0, r.stderr
    assert re.search(r"\d+\.\d+\.\d+", r.stdout + r.stderr), (r.stdout, r.stderr)


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help(server_bin, flag):
    """-h / --help prints usage naming the main flags and exits 0."""
    r = run(server_bin, flag)
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert re.search(r"usage", out, re.IGNORECASE), out
    for f in ["--addr", "--cert", "--key", "--non-tls", "--max-packet-size"]:
        assert f in out, f"{f} missing from help:\n{out}"


def test_unknown_flag(server_bin, tmp_path):
    """An unknown flag: non-zero exit and one line on stderr naming it."""
    r = run(server_bin, "--no-such-flag", cwd=tmp_path)
    assert_one_line_error(r, "--no-such-flag")


@pytest.mark.parametrize("args,needle", [
    (["--threads", "many", "--non-tls"], "many"),
    (["--max-packet-size", "-5", "--non-tls"], "-5"),
    (["--addr", "not-an-address", "--non-tls"], "not-an-address"),
    (["--addr", "127.0.0.1:99999", "--non-tls"], "99999"),
], ids=["threads-nan", "max-packet-negative", "addr-garbage", "addr-port-range"])
def test_bad_flag_value(server_bin, tmp_path, args, needle):
    """A bad flag value: non-zero exit, one line on stderr naming the value."""
    r = run(server_bin, *args, *isolated(tmp_path), cwd=tmp_path)
    assert_one_line_error(r, needle)


def test_missing_cert_file(server_bin, tmp_path, dev_cert):
    """TLS mode with a missing certificate: non-zero exit, one line naming the file."""
    missing = tmp_path / "no-such.crt"
    r = run(server_bin, *tls_args(tmp_path, missing, dev_cert[1]), cwd=tmp_path)
    assert_one_line_error(r, str(missing))


def test_missing_key_file(server_bin, tmp_path, dev_cert):
    """TLS mode with a missing key: non-zero exit, one line naming the file."""
    missing = tmp_path / "no-such.key"
    r = run(server_bin, *tls_args(tmp_path, dev_cert[0], missing), cwd=tmp_path)
    assert_one_line_error(r, str(missing))


def test_default_cert_missing(server_bin, tmp_path):
    """TLS is the default: without --cert in a directory lacking server.crt, startup fails naming it."""
    r = run(server_bin, *isolated(tmp_path), "--addr", f"127.0.0.1:{free_port()}", cwd=tmp_path)
    assert_one_line_error(r, "server.crt")


def test_cert_not_matching_key(server_bin, tmp_path, dev_cert):
    """A certificate and a key that are not a pair: non-zero exit, one line on stderr."""
    other_key = tmp_path / "other.key"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-out", str(other_key)], check=True, capture_output=True, timeout=30)
    r = run(server_bin, *tls_args(tmp_path, dev_cert[0], other_key), cwd=tmp_path)
    assert_one_line_error(r)


def test_garbage_cert_file(server_bin, tmp_path, dev_cert):
    """A certificate file that is not PEM: non-zero exit, one line naming the file."""
    bad = tmp_path / "garbage.crt"
    bad.write_text("this is not a certificate\n")
    r = run(server_bin, *tls_args(tmp_path, bad, dev_cert[1]), cwd=tmp_path)
    assert_one_line_error(r, str(bad))


def test_port_in_use_by_other_socket(server_bin, tmp_path):
    """A port already listened on: non-zero exit with a clear message."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run(server_bin, *isolated(tmp_path), "--non-tls", "--addr", f"127.0.0.1:{port}", cwd=tmp_path)
    line = assert_one_line_error(r)
    assert re.search(r"in use|already", line, re.IGNORECASE) and str(port) in line, line


def test_port_in_use_by_another_server(server, server_bin, tmp_path):
    """A second server on the port of a running one fails; the first keeps serving."""
    r = run(server_bin, *isolated(tmp_path), "--non-tls", "--addr", server.addr, cwd=tmp_path)
    line = assert_one_line_error(r)
    assert re.search(r"in use|already", line, re.IGNORECASE), line
    assert server.process.poll() is None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_signal_shuts_down_cleanly(server_factory, client_factory, sig, tls):
    """SIGTERM and SIGINT stop the server with exit code 0, also with clients connected."""
    srv = server_factory(tls=tls)
    sub = client_factory(srv).connect()
    sub.subscribe("sig/t")
    pub = client_factory(srv).connect()
    round_trip(pub, sub, "sig/t")
    assert srv.stop(sig) == 0, srv.log.tail(20)
    sub.wait_disconnected(timeout=5)  # the server closed its connections


def test_idle_server_shuts_down_cleanly(server):
    """SIGTERM with no client ever connected (except the readiness probe) exits 0."""
    assert server.stop(signal.SIGTERM) == 0, server.log.tail(20)


def test_logs_to_stderr_only(server_bin, tmp_path):
    """Logs go to stderr (something is logged with --debug while a client comes and goes); stdout
    stays empty. (The fixtures merge the two streams, so this test starts the binary itself.)"""
    port = free_port()
    p = subprocess.Popen([str(server_bin), *isolated(tmp_path), "--non-tls", "--addr", f"127.0.0.1:{port}",
                          "--debug"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not port_accepts("127.0.0.1", port):
            assert p.poll() is None, f"server exited: {p.communicate()}"
            assert time.monotonic() < deadline, "server did not start listening"
            time.sleep(0.02)  # nothing to await: the port either accepts or not yet
        c = Client(SimpleNamespace(host="127.0.0.1", port=port, tls=False, ca_cert=None))
        try:
            c.connect()
            c.subscribe("x")
        finally:
            c.close()
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err.decode(errors="replace")
    assert out == b"", f"stdout not empty: {out[:500]!r}"
    assert err.strip(), "nothing logged on stderr with --debug"


@pytest.mark.parametrize("threads", ["1", "4"])
def test_threads_flag(server_factory, client_factory, threads):
    """--threads N starts and serves (N = 1 and 4)."""
    srv = server_factory("--threads", threads)
    sub = client_factory(srv).connect()
    sub.subscribe("th/t")
    pub = client_factory(srv).connect()
    round_trip(pub, sub, "th/t")


@pytest.mark.parametrize("flag", ["--debug", "--trace"])
def test_log_level_flags(server_factory, client_factory, flag):
    """--debug and --trace start and serve, logging more than the default."""
    srv = server_factory(flag)
    c = client_factory(srv).connect()
    c.subscribe("lv/t")
    round_trip(c, c, "lv/t")
    c.close()
    assert srv.log.lines, f"nothing logged with {flag}"
