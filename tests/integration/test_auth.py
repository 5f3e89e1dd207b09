"""Authentication and authorization: password file, ACL, refused CONNECT,
PUBLISH and SUBSCRIBE, and the passwd subcommand. Our binary only."""

from __future__ import annotations

import subprocess
import time

import pytest

from helpers import unique_id

pytestmark = pytest.mark.ours_only(reason="our --password-file/--acl-file flags")


def add_user(server_bin, path, user, password):
    create = [] if path.exists() else ["-c"]
    r = subprocess.run([str(server_bin), "passwd", *create, "-b", str(path), user, password],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture
def secured(server_bin, server_factory, tmp_path):
    pw = tmp_path / "passwords"
    add_user(server_bin, pw, "alice", "wonderland")
    add_user(server_bin, pw, "bob", "builder")
    acl = tmp_path / "acl"
    acl.write_text(
        "# alice may do anything under sensors/, bob only read it\n"
        "user alice\n"
        "topic readwrite sensors/#\n"
        "topic deny sensors/secret\n"
        "user bob\n"
        "topic read sensors/#\n"
        "# every client may write its own status topic\n"
        "pattern write status/%c\n")
    return server_factory("--password-file", str(pw), "--acl-file", str(acl))


def client(client_factory, srv, user=None, password=None, **kw):
    c = client_factory(srv, **kw)
    if user is not None:
        c.paho.username_pw_set(user, password)
    return c


def test_password_file_is_written_with_salted_pbkdf2_and_mode_0600(server_bin, tmp_path):
    pw = tmp_path / "pw"
    add_user(server_bin, pw, "carol", "secret")
    add_user(server_bin, pw, "dave", "secret")
    lines = pw.read_text().splitlines()
    assert [l.split(":", 1)[0] for l in lines] == ["carol", "dave"]
    hashes = [l.split(":", 1)[1] for l in lines]
    assert all(h.startswith("$pbkdf2-sha512$") for h in hashes)
    assert hashes[0] != hashes[1], "same password, different salt, different hash"
    assert (pw.stat().st_mode & 0o777) == 0o600
    assert "secret" not in pw.read_text()


def test_connect_codes(secured, client_factory):
    """Right user and password: 0; wrong password or unknown user: 0x04; no user
    name while anonymous clients are refused (default with a password file): 0x05."""
    client(client_factory, secured, "alice", "wonderland").connect()
    client(client_factory, secured, "alice", "wrong").connect(expect_rc=4)
    client(client_factory, secured, "mallory", "x").connect(expect_rc=4)
    client(client_factory, secured).connect(expect_rc=5)
    secured.log.wait_for(r"refused connection .*", timeout=5)


def test_acl_publish_and_subscribe(secured, client_factory):
    alice = client(client_factory, secured, "alice", "wonderland").connect()
    bob = client(client_factory, secured, "bob", "builder").connect()
    # A subscription the ACL does not allow gets 0x80 [MQTT-3.9.3-2].
    assert bob.subscribe(["sensors/#", "other/#"], qos=1) == (1, 128)
    # Bob may not write: his publish is dropped (and logged); alice's arrives.
    bob.publish("sensors/t", b"from bob", qos=1)
    alice.publish("sensors/t", b"from alice", qos=1)
    got = bob.get_message()
    assert (got.topic, got.payload) == ("sensors/t", b"from alice")
    secured.log.wait_for(r"client .*: publish to 'sensors/t' not allowed", timeout=5)
    # A deny inside a granted subscription: never delivered.
    alice.publish("sensors/secret", b"hidden", qos=1)
    alice.publish("sensors/after", b"visible", qos=1)
    got = bob.get_message()
    assert (got.topic, got.payload) == ("sensors/after", b"visible")


def test_pattern_substitutes_the_client_id(secured, client_factory):
    me = unique_id("dev")
    alice = client(client_factory, secured, "alice", "wonderland").connect()
    dev = client(client_factory, secured, "bob", "builder", client_id=me).connect()
    # Alice may read sensors/# only: she cannot watch status/, so check via the log and a
    # subscriber with rights. Bob writes his own status topic (pattern) but not another's.
    assert alice.subscribe("status/#") == (128,)
    dev.publish(f"status/{me}", b"up", qos=1)
    dev.publish("status/someone-else", b"spoof", qos=1)
    secured.log.wait_for(r"publish to 'status/someone-else' not allowed", timeout=5)
    with pytest.raises(AssertionError):
        secured.log.wait_for(rf"publish to 'status/{me}' not allowed", timeout=1)


def test_password_check_does_not_stall_other_clients(secured, client_factory):
    """PBKDF2 runs off the worker threads: messages keep flowing while many
    clients log in at once."""
    sub = client(client_factory, secured, "alice", "wonderland").connect()
    sub.subscribe("sensors/flow")
    pub = client(client_factory, secured, "alice", "wonderland").connect()
    logins = [client(client_factory, secured, "bob", "builder") for _ in range(16)]
    for c in logins:
        c.paho.connect_async(secured.host, secured.port, 60)
        c.paho.loop_start()
        c._loop_started = True
    t0 = time.monotonic()
    pub.publish("sensors/flow", b"x", qos=0)
    sub.expect_message("sensors/flow", b"x", timeout=5)
    assert time.monotonic() - t0 < 0.5, "a message waited behind password checks"
    for c in logins:
        assert c.connected.wait(15), "every login completes"


def test_bad_acl_file_is_a_startup_error(server_bin, tmp_path):
    acl = tmp_path / "acl"
    acl.write_text("user alice\nfrobnicate a/b\n")
    r = subprocess.run([str(server_bin), "--non-tls", "-a", "127.0.0.1:0", "--acl-file", str(acl),
                        "--data-dir", str(tmp_path / "d")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert f"{acl}:2" in r.stderr
