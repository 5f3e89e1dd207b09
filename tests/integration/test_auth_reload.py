"""SIGHUP reloads the password file and the ACL file: new CONNECTs use the new
files, connected clients keep the rules they got at CONNECT, and a file that
is missing or broken at reload leaves the previous policy in force. Our binary
only."""

from __future__ import annotations

import signal
import subprocess

import pytest

pytestmark = pytest.mark.ours_only(reason="our --password-file/--acl-file flags and log lines")

RELOADED = r"received SIGHUP: reloaded password file \(\d+ users?\) and ACL file \(\d+ rules?\)"
FAILED = r"reload after SIGHUP failed: still using"

ACL = (
    "user alice\n"
    "topic readwrite sensors/#\n"
    "user bob\n"
    "topic read sensors/#\n")


def passwd(server_bin, *args):
    r = subprocess.run([str(server_bin), "passwd", *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r


def add_user(server_bin, path, user, password):
    create = [] if path.exists() else ["-c"]
    # Few iterations: these tests log in often, and the hash strength is not what they test.
    passwd(server_bin, *create, "-i", "1000", "-b", str(path), user, password)


def remove_user(server_bin, path, user):
    passwd(server_bin, "-D", str(path), user)


def sighup(srv, expect=RELOADED, timeout=10.0) -> str:
    """Send SIGHUP and wait for the log line that says how the reload went."""
    since = srv.log.mark()
    srv.send_signal(signal.SIGHUP)
    return srv.log.wait_for(expect, since=since, timeout=timeout)


def client(client_factory, srv, user=None, password=None, **kw):
    c = client_factory(srv, **kw)
    if user is not None:
        c.paho.username_pw_set(user, password)
    return c


@pytest.fixture
def files(server_bin, tmp_path):
    pw = tmp_path / "passwords"
    add_user(server_bin, pw, "alice", "wonderland")
    add_user(server_bin, pw, "bob", "builder")
    acl = tmp_path / "acl"
    acl.write_text(ACL)
    return pw, acl


@pytest.fixture
def secured(files, server_factory):
    pw, acl = files
    return server_factory("--password-file", str(pw), "--acl-file", str(acl))


def test_added_user_can_connect_and_removed_user_cannot(server_bin, files, secured, client_factory):
    pw, _ = files
    client(client_factory, secured, "carol", "lewis").connect(expect_rc=4)
    bob_before = client(client_factory, secured, "bob", "builder").connect()

    add_user(server_bin, pw, "carol", "lewis")
    remove_user(server_bin, pw, "bob")
    line = sighup(secured)
    assert "password file (2 users) and ACL file (2 rules)" in line

    client(client_factory, secured, "carol", "lewis").connect()
    # A user name the password file no longer has is refused like any unknown
    # user: 0x04, bad user name or password (see docs/security.md).
    client(client_factory, secured, "bob", "builder").connect(expect_rc=4)
    client(client_factory, secured, "alice", "wonderland").connect()
    # Bob's connection from before the reload stays, with the rules it had.
    assert bob_before.connected.is_set()
    assert bob_before.subscribe("sensors/#") == (0,)


def test_changed_password_applies_to_new_connections(server_bin, files, secured, client_factory):
    pw, _ = files
    add_user(server_bin, pw, "alice", "looking-glass")
    sighup(secured)
    client(client_factory, secured, "alice", "wonderland").connect(expect_rc=4)
    client(client_factory, secured, "alice", "looking-glass").connect()


def test_acl_change_applies_to_new_connections(files, secured, client_factory):
    _, acl = files
    before = client(client_factory, secured, "alice", "wonderland").connect()
    assert before.subscribe("sensors/#") == (0,)

    acl.write_text(
        "user alice\n"
        "topic readwrite other/#\n"
        "user bob\n"
        "topic read sensors/#\n"
        "pattern write status/%c\n")
    line = sighup(secured)
    assert "ACL file (3 rules)" in line

    after = client(client_factory, secured, "alice", "wonderland").connect()
    assert after.subscribe(["sensors/#", "other/#"]) == (128, 0)
    # The connection from before the reload keeps the rules it got at CONNECT.
    assert before.subscribe(["sensors/x", "other/#"]) == (0, 128)
    # Publishes are checked with each connection's own rules too.
    watcher = client(client_factory, secured, "bob", "builder").connect()
    watcher.subscribe("sensors/#", qos=1)
    after.publish("sensors/t", b"from the new rules", qos=1)
    before.publish("sensors/t", b"from the old rules", qos=1)
    got = watcher.get_message()
    assert (got.topic, got.payload) == ("sensors/t", b"from the old rules")
    secured.log.wait_for(r"publish to 'sensors/t' not allowed", timeout=5)


def test_broken_acl_on_reload_keeps_the_old_policy(server_bin, files, secured, client_factory):
    pw, acl = files
    # Both files change; the ACL has a bad line. Nothing of either may apply:
    # carol (new in the password file) stays unknown.
    add_user(server_bin, pw, "carol", "lewis")
    acl.write_text(ACL + "user carol\nfrobnicate sensors/#\n")
    since = secured.log.mark()
    sighup(secured, expect=FAILED)
    err = secured.log.wait_for(rf"{acl}:6: unknown keyword 'frobnicate'", since=since)
    assert "error" in err

    client(client_factory, secured, "carol", "lewis").connect(expect_rc=4)
    alice = client(client_factory, secured, "alice", "wonderland").connect()
    assert alice.subscribe(["sensors/#", "other/#"]) == (0, 128)
    client(client_factory, secured).connect(expect_rc=5)  # still no anonymous clients

    # Fixed: the next SIGHUP applies both files.
    acl.write_text(ACL + "user carol\ntopic read sensors/#\n")
    line = sighup(secured)
    assert "password file (3 users) and ACL file (3 rules)" in line
    carol = client(client_factory, secured, "carol", "lewis").connect()
    assert carol.subscribe("sensors/#") == (0,)


def test_missing_or_broken_password_file_on_reload_keeps_the_old_policy(files, secured,
                                                                        client_factory):
    pw, _ = files
    saved = pw.read_text()
    pw.unlink()
    since = secured.log.mark()
    sighup(secured, expect=FAILED)
    secured.log.wait_for(rf"{pw}: No such file or directory", since=since)
    client(client_factory, secured, "alice", "wonderland").connect()
    client(client_factory, secured).connect(expect_rc=5)  # never "allow all"

    pw.write_text(saved + "mallory\n")
    since = secured.log.mark()
    sighup(secured, expect=FAILED)
    secured.log.wait_for(rf"{pw}:3: ", since=since)
    client(client_factory, secured, "bob", "builder").connect()

    pw.write_text(saved)
    assert "password file (2 users)" in sighup(secured)
    client(client_factory, secured, "alice", "wonderland").connect()


def test_server_keeps_running_and_exits_cleanly_after_reloads(files, secured, client_factory):
    _, acl = files
    sub = client(client_factory, secured, "bob", "builder").connect()
    sub.subscribe("sensors/#", qos=1)
    for i in range(5):
        sighup(secured)
    acl.write_text("nonsense\n")
    sighup(secured, expect=FAILED)
    acl.write_text(ACL)
    sighup(secured)
    pub = client(client_factory, secured, "alice", "wonderland").connect()
    pub.publish("sensors/t", b"still routing", qos=1)
    sub.expect_message("sensors/t", b"still routing")
    assert secured.process.poll() is None
    since = secured.log.mark()
    assert secured.stop(signal.SIGTERM) == 0
    assert "received SIGTERM, shutting down" in secured.log.text(since)


def test_sighup_without_auth_files_changes_nothing(server, client_factory):
    sighup(server, expect=r"received SIGHUP: no --password-file or --acl-file to reload")
    c = client_factory(server).connect()
    assert c.subscribe("#") == (0,)
    assert server.process.poll() is None


def test_sighup_with_stats_interval(files, server_factory, client_factory):
    """The stats loop (sigtimedwait) takes SIGHUP too, without stopping."""
    pw, acl = files
    srv = server_factory("--password-file", str(pw), "--acl-file", str(acl), "--stats-interval", "1")
    sighup(srv)
    client(client_factory, srv, "alice", "wonderland").connect()
    srv.log.wait_for(r"stats: 1 connections", timeout=5)
    assert srv.process.poll() is None
