"""MQTT 5.0 reason codes for what the ACL refuses (--acl-file, see test_auth.py): PUBACK and
PUBREC 0x87 (Not authorized) for a refused PUBLISH, SUBACK 0x87 for a refused filter (MQTT 5.0
sections 3.4.2.1, 3.5.2.1, 3.9.3). Our binary only."""

from __future__ import annotations

import pytest

from mqtt5_support import RC_NO_MATCHING_SUBSCRIBERS, RC_NOT_AUTHORIZED, v5, v5_factory  # noqa: F401

pytestmark = pytest.mark.ours_only(reason="our --acl-file flag")


@pytest.fixture
def acl_server(server_factory, tmp_path):
    acl = tmp_path / "acl"
    acl.write_text(
        "# rules before any user line: anonymous clients\n"
        "topic readwrite open/#\n"
        "topic deny secret/#\n")
    return server_factory("--acl-file", str(acl))


@pytest.mark.parametrize("qos", [1, 2])
def test_refused_publish_gets_not_authorized(acl_server, v5_factory, qos):
    """A v5 PUBLISH the ACL refuses is answered with PUBACK (QoS 1) or PUBREC (QoS 2) reason
    0x87 (Not authorized) and not delivered; an allowed one gets 0x00 or 0x10 and is."""
    sub = v5(v5_factory, acl_server)
    assert sub.subscribe("open/#", qos=2) == [2]
    pub = v5(v5_factory, acl_server)
    assert pub.publish("secret/x", b"hidden", qos=qos) == RC_NOT_AUTHORIZED
    assert pub.publish("open/x", b"visible", qos=qos) in (0x00, RC_NO_MATCHING_SUBSCRIBERS)
    m = sub.get_message()
    assert (m.topic, m.payload) == ("open/x", b"visible")
    acl_server.log.wait_for(r"publish to 'secret/x' not allowed", timeout=5)


def test_refused_subscription_gets_not_authorized(acl_server, v5_factory):
    """SUBACK has 0x87 (Not authorized) for the filter the ACL refuses and the granted QoS for
    the allowed one, in order [MQTT-3.9.3-1]; nothing is delivered for the refused filter."""
    c = v5(v5_factory, acl_server)
    assert c.subscribe(["secret/#", "open/#"], qos=1) == [RC_NOT_AUTHORIZED, 1]
    pub = v5(v5_factory, acl_server)
    pub.publish("secret/y", b"hidden", qos=1)
    pub.publish("open/end", b"end", qos=1)
    assert c.collect_until("open/end", b"end") == []
