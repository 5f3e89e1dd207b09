"""MQTT 5 clients are told when the server shuts down."""

from __future__ import annotations

import signal

import pytest

from mqtt5_support import Raw5, expect_disconnect_reason

RC_SERVER_SHUTTING_DOWN = 0x8B


@pytest.mark.ours_only(reason="stops the broker with SIGTERM and checks its exit code")
def test_sigterm_sends_server_shutting_down(server_factory):
    """On SIGTERM a connected v5 client gets DISCONNECT 0x8B (Server shutting down) before the
    connection closes, and the server exits 0."""
    srv = server_factory()
    with Raw5(srv) as raw:
        raw.handshake5()
        srv.send_signal(signal.SIGTERM)
        expect_disconnect_reason(raw, RC_SERVER_SHUTTING_DOWN)
    assert srv.wait_exit() == 0
