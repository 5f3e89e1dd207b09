"""Cassandra mode (-d/--db_addr) against a REAL Cassandra 5.0 node.

One node serves the whole module (tests/cassandra/cassandra_server.py: jars from Maven Central,
cached in build/cassandra-jars; the node's folder is deleted at the end). What the server wrote
is checked with the Cassandra Python driver, never through the server itself:

* the schema (keyspace retain_kv, device_data exactly as the original, retained, sessions) is
  created when missing, with the replication map of $MQTT_SERVER_CASSANDRA_REPLICATION;
* the newest payload of every (device_id, topic) lands in retain_kv.device_data;
* with Cassandra down at start, or taken down mid-run, MQTT keeps working, the outage and the
  recovery are logged once each, and the newest values are written once it is back;
* retained messages and persistent sessions survive a restart of the server.

The module is skipped only when Java or Maven (needed for the first fetch of the jars) is missing.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import free_port, round_trip, unique_id
from mqtt_support import publish_acked, track, wait_gone

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cassandra"))
import cassandra_server  # noqa: E402


def _missing_tools() -> str | None:
    try:
        cassandra_server.find_java()
    except cassandra_server.CassandraError as e:
        return str(e)
    jars = cassandra_server.default_jars_dir()
    cached = (jars / f".complete-{cassandra_server.cassandra_version()}").exists()
    if not cached and not shutil.which("mvn"):
        return "mvn not found (needed once to fetch the Cassandra jars): apt-get install maven"
    try:
        import cassandra.cluster  # noqa: F401
    except ImportError:
        return "the Cassandra Python driver is missing: apt-get install python3-cassandra"
    return None


_why = _missing_tools()
if _why:
    pytest.skip(f"no real Cassandra can be started here: {_why}", allow_module_level=True)

pytestmark = [
    pytest.mark.ours_only(reason="-d/--db_addr is our Cassandra mode"),
    # The first test also waits for the node (and, on a cold cache, the jar download).
    pytest.mark.timeout(300),
]

KEYSPACE = "retain_kv"
OUTAGE = r"store: cannot write to Cassandra at "
RECOVERY = r"store: Cassandra at .* is back"
REPLICATION = "{'class': 'SimpleStrategy', 'replication_factor': '1'}"


# --------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cassandra():
    """One real Cassandra node for the whole run; stopped and its folder deleted at the end."""
    node = cassandra_server.CassandraServer()
    try:
        node.start()
        yield node
    finally:
        node.close()


class Cql:
    """A driver session to the test node, re-opened after the node was restarted."""

    def __init__(self, node):
        self.node = node
        self._ctx = None
        self._session = None

    def execute(self, query: str, params=()):
        for attempt in range(2):
            try:
                if self._session is None:
                    self._ctx = self.node.session(timeout=10)
                    self._session = self._ctx.__enter__()
                return list(self._session.execute(query, params))
            except Exception:
                self.close()
                if attempt:
                    raise
        return []

    def close(self):
        if self._ctx is not None:
            try:
                self._ctx.__exit__(None, None, None)
            finally:
                self._ctx = None
                self._session = None

    def latest(self, device: str, topic: str):
        rows = self.execute(f"SELECT payload, updatetime FROM {KEYSPACE}.device_data "
                            "WHERE device_id = %s AND topic = %s", (device, topic))
        return rows[0] if rows else None

    def wait_latest(self, expected: dict, timeout: float = 10.0) -> dict:
        """Wait until device_data holds exactly ``expected`` {(device, topic): payload}."""
        deadline = time.monotonic() + timeout
        got = {}
        while True:
            try:
                got = {k: self.latest(*k) for k in expected}
                if all(got[k] is not None and got[k].payload == v for k, v in expected.items()):
                    return got
            except Exception as e:  # the node may still be starting
                got = {"error": repr(e)}
            if time.monotonic() > deadline:
                shown = {k: (r.payload if hasattr(r, "payload") else r) for k, r in got.items()}
                raise AssertionError(f"device_data after {timeout}s: {shown}; expected {expected}")
            time.sleep(0.2)


@pytest.fixture
def cql(cassandra):
    c = Cql(cassandra)
    yield c
    c.close()


def _db(node) -> str:
    return f"127.0.0.1:{node.native_port}"


def _device(client_factory, server, cid: str):
    c = client_factory(server, client_id=cid)
    track(c)
    return c.connect()


def _count(log, pattern: str, since: int = 0) -> int:
    return len(re.findall(pattern, log.text(since), re.IGNORECASE))


def _assert_close_to_now(ts: datetime.datetime, slack: float = 60.0) -> None:
    # The driver gives timestamps as naive UTC datetimes.
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    assert abs((now - ts).total_seconds()) < slack, f"updatetime {ts} is not close to now ({now})"


# --------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------


def test_schema_created_when_missing(cassandra, cql, server_factory, client_factory, monkeypatch):
    """On a cluster without the keyspace, the server creates retain_kv (with the replication
    map of $MQTT_SERVER_CASSANDRA_REPLICATION) and its three tables, device_data exactly as the
    original. The first contact point is closed: the next one in -d is used."""
    cql.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}")
    monkeypatch.setenv("MQTT_SERVER_CASSANDRA_REPLICATION", REPLICATION)
    server = server_factory("-d", f"127.0.0.1:{free_port()},{_db(cassandra)}")

    deadline = time.monotonic() + 15
    while True:
        tables = {r.table_name for r in cql.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (KEYSPACE,))}
        if {"device_data", "retained", "sessions"} <= tables or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {"device_data", "retained", "sessions"} <= tables, f"tables: {tables}"

    (ks,) = cql.execute("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s",
                        (KEYSPACE,))
    assert dict(ks.replication) == {"class": "org.apache.cassandra.locator.SimpleStrategy",
                                    "replication_factor": "1"}
    cols = {(r.column_name, r.type, r.kind) for r in cql.execute(
        "SELECT column_name, type, kind FROM system_schema.columns "
        "WHERE keyspace_name = %s AND table_name = 'device_data'", (KEYSPACE,))}
    assert cols == {("device_id", "text", "partition_key"), ("topic", "text", "clustering"),
                    ("payload", "blob", "regular"), ("updatetime", "timestamp", "regular")}

    # And it is used right away.
    dev = _device(client_factory, server, "dev-1")
    publish_acked(dev, "schema/t", b"first", qos=1)
    cql.wait_latest({("dev-1", "schema/t"): b"first"})
    assert _count(server.log, OUTAGE) == 0, server.log.text()


def test_newest_payload_per_device_and_topic(cassandra, cql, server_factory, client_factory):
    """Two devices publish several values to several topics; device_data ends up with the newest
    payload of every (device_id, topic), byte for byte, with updatetime close to now."""
    server = server_factory("-d", _db(cassandra))
    devs = {cid: _device(client_factory, server, cid) for cid in ("dev-1", "dev-2")}
    expected = {}
    for round_ in range(3):
        for cid, dev in devs.items():
            for topic in ("latest/temp", "latest/humidity", "latest/a/b/c"):
                payload = f"{cid}:{topic}:{round_}".encode() + bytes([0, 255, round_])
                publish_acked(dev, topic, payload, qos=round_ % 2)
                expected[(cid, topic)] = payload
    # QoS 0 publishes have no ack: a QoS 1 one behind them on each connection orders them.
    for cid, dev in devs.items():
        publish_acked(dev, "latest/empty", b"", qos=1)
        expected[(cid, "latest/empty")] = b""
    rows = cql.wait_latest(expected)
    for row in rows.values():
        _assert_close_to_now(row.updatetime)
    assert _count(server.log, OUTAGE) == 0, server.log.text()


def test_starts_and_serves_with_cassandra_down(server_factory, client_factory):
    """-d points at a closed port: the server still starts at once, says it cannot load the
    retained messages and sessions, serves MQTT, and logs the write outage once however often
    it retries."""
    t0 = time.monotonic()
    server = server_factory("-d", f"127.0.0.1:{free_port()}")
    assert time.monotonic() - t0 < 5, "start-up waited for Cassandra"
    server.log.wait_for(r"cannot load retained messages from Cassandra at .*cannot connect")

    dev = _device(client_factory, server, "dev-1")
    sub = client_factory(server).connect()
    sub.subscribe("down-rt/#", qos=1)
    publish_acked(dev, "down/t", b"v0", qos=1)
    server.log.wait_for(OUTAGE, timeout=10)
    # Several back-off rounds (50 ms doubling to 5 s) while MQTT keeps working.
    for i in range(6):
        round_trip(dev, sub, "down-rt/t")
        publish_acked(dev, f"down/t{i}", b"x", qos=1)
        time.sleep(0.5)
    assert _count(server.log, OUTAGE) == 1, server.log.text()
    assert _count(server.log, RECOVERY) == 0


def test_cassandra_outage_mid_run(cassandra, cql, server_factory, client_factory):
    """Cassandra stops while the server runs: MQTT pub/sub goes on, the outage is logged once;
    when Cassandra is back the NEWEST values written meanwhile are in device_data within 30 s and
    the recovery is logged once."""
    server = server_factory("-d", _db(cassandra))
    dev1 = _device(client_factory, server, "dev-1")
    dev2 = _device(client_factory, server, "dev-2")
    sub = client_factory(server).connect()
    sub.subscribe("outage-rt/#", qos=1)
    publish_acked(dev1, "outage/a", b"before-1", qos=1)
    publish_acked(dev2, "outage/b", b"before-2", qos=1)
    cql.wait_latest({("dev-1", "outage/a"): b"before-1", ("dev-2", "outage/b"): b"before-2"})

    cql.close()
    cassandra.stop()
    try:
        for i in range(5):
            publish_acked(dev1, "outage/a", f"during-1-{i}".encode(), qos=1)
            publish_acked(dev2, "outage/b", f"during-2-{i}".encode(), qos=1)
            round_trip(dev1, sub, "outage-rt/a")  # delivery does not wait for the store
            round_trip(dev2, sub, "outage-rt/b")
        server.log.wait_for(OUTAGE, timeout=10)
        publish_acked(dev1, "outage/a", b"newest-1", qos=1)
        publish_acked(dev2, "outage/b", b"newest-2", qos=1)
        publish_acked(dev2, "outage/new", b"newest-3", qos=1)
        time.sleep(1)
    finally:
        cassandra.start()
    cql.wait_latest({("dev-1", "outage/a"): b"newest-1", ("dev-2", "outage/b"): b"newest-2",
                     ("dev-2", "outage/new"): b"newest-3"}, timeout=30)
    server.log.wait_for(RECOVERY, timeout=10)
    assert _count(server.log, OUTAGE) == 1, server.log.text()
    assert _count(server.log, RECOVERY) == 1, server.log.text()
    round_trip(dev1, sub, "outage-rt/a")


def test_retained_and_session_survive_restart(cassandra, cql, server_factory, client_factory):
    """Retained messages and persistent sessions live in Cassandra: after the server restarts
    with the same -d, a new subscriber gets the retained message and a persistent subscriber
    that was offline gets its queued QoS 1 messages, in order."""
    cid = unique_id("cass-p")
    topic = f"persist/{cid}"
    first = server_factory("-d", _db(cassandra))
    sub = client_factory(first, client_id=cid, clean_session=False)
    track(sub)
    sub.connect()
    sub.subscribe(f"{topic}/q", qos=1)
    mark = first.log.mark()
    sub.close()
    wait_gone(first, cid, since=mark)

    pub = _device(client_factory, first, "dev-1")
    publish_acked(pub, f"{topic}/ret", b"retained-value", qos=1, retain=True)
    for i in range(3):
        publish_acked(pub, f"{topic}/q", f"queued-{i}".encode(), qos=1)
    pub.close()
    assert first.stop() == 0

    stored = cql.execute(f"SELECT payload, qos FROM {KEYSPACE}.retained WHERE topic = %s",
                         (f"{topic}/ret",))
    assert [(r.payload, r.qos) for r in stored] == [(b"retained-value", 1)]
    assert cql.execute(f"SELECT client_id FROM {KEYSPACE}.sessions WHERE client_id = %s", (cid,))

    second = server_factory("-d", _db(cassandra))
    second.log.wait_for(r"restored [1-9]\d* retained messages and [1-9]\d* persistent sessions")
    fresh = client_factory(second).connect()
    fresh.subscribe(f"{topic}/ret", qos=1)
    m = fresh.expect_message(f"{topic}/ret", b"retained-value")
    assert m.retain

    back = client_factory(second, client_id=cid, clean_session=False)
    track(back)
    back.connect()
    assert back.tracker.session_present == [1]
    got = [back.get_message().payload for _ in range(3)]
    assert got == [b"queued-0", b"queued-1", b"queued-2"]

    # Clean up what the next runs on this node would otherwise restore.
    back.close()
    cleaner = client_factory(second).connect()
    cleaner.publish(f"{topic}/ret", b"", qos=1, retain=True)
    fresh.close()
    cleaner2 = client_factory(second, client_id=cid, clean_session=True)
    cleaner2.connect()


def _v5_client(server, client_id: str):
    """A connected paho MQTTv5 client with its loop running and a queue of messages."""
    import queue

    import paho.mqtt.client as mqtt
    c = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5)
    c.messages = queue.Queue()
    c.on_message = lambda client, userdata, m: client.messages.put(m)
    connected = queue.Queue()
    c.on_connect = lambda client, userdata, flags, rc, props=None: connected.put(rc)
    c.connect(server.host, server.port)
    c.loop_start()
    assert connected.get(timeout=5) == 0
    return c


def test_v5_retained_properties_survive_restart(cassandra, cql, server_factory):
    """An MQTT 5 retained message keeps its user properties, content type and Message Expiry
    Interval in Cassandra (columns properties and expiry) and gets them back after a restart."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    topic = f"v5ret/{unique_id('r')}"
    first = server_factory("-d", _db(cassandra))
    pub = _v5_client(first, unique_id("v5pub"))
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("site", "north"), ("unit", "C")]
    props.ContentType = "text/plain"
    props.MessageExpiryInterval = 3600
    pub.publish(topic, b"21.5", qos=1, retain=True, properties=props).wait_for_publish(5)
    pub.disconnect()
    pub.loop_stop()
    assert first.stop() == 0

    (row,) = cql.execute(f"SELECT payload, properties, expiry FROM {KEYSPACE}.retained WHERE topic = %s",
                         (topic,))
    assert row.payload == b"21.5" and row.expiry == 3600 and b"north" in row.properties, row

    second = server_factory("-d", _db(cassandra))
    second.log.wait_for(r"restored [1-9]\d* retained messages")
    sub = _v5_client(second, unique_id("v5sub"))
    try:
        sub.subscribe(topic, qos=1)
        m = sub.messages.get(timeout=5)
        assert (m.topic, m.payload, m.retain) == (topic, b"21.5", True)
        assert m.properties.UserProperty == [("site", "north"), ("unit", "C")]
        assert m.properties.ContentType == "text/plain"
        assert 3500 <= m.properties.MessageExpiryInterval <= 3600
        sub.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)  # clean up
    finally:
        sub.disconnect()
        sub.loop_stop()


def test_retained_table_of_an_older_server_gains_the_v5_columns(cassandra, cql, server_factory,
                                                                 client_factory):
    """A retained table created before MQTT 5 (no properties/expiry columns) gets them added at
    start, keeps its rows, and is written to."""
    ks = "mqtt_old_schema"
    cql.execute(f"DROP KEYSPACE IF EXISTS {ks}")
    cql.execute(f"CREATE KEYSPACE {ks} WITH replication = {REPLICATION}")
    cql.execute(f"CREATE TABLE {ks}.retained (topic text PRIMARY KEY, qos int, payload blob, "
                "updatetime timestamp)")
    cql.execute(f"INSERT INTO {ks}.retained (topic, qos, payload, updatetime) VALUES "
                "('old/t', 1, 0x6f6c64, toTimestamp(now()))")
    server = server_factory("-d", _db(cassandra), "--db-keyspace", ks)
    server.log.wait_for(r"restored 1 retained messages")
    cols = {r.column_name for r in cql.execute(
        "SELECT column_name FROM system_schema.columns WHERE keyspace_name = %s AND table_name = 'retained'",
        (ks,))}
    assert {"properties", "expiry"} <= cols, cols
    sub = client_factory(server).connect()
    sub.subscribe("old/t", qos=1)
    assert sub.expect_message("old/t", b"old").retain
    pub = _device(client_factory, server, "dev-old")
    publish_acked(pub, "old/new", b"n", qos=1, retain=True)
    deadline = time.monotonic() + 10
    while not list(cql.execute(f"SELECT payload FROM {ks}.retained WHERE topic = 'old/new'")):
        assert time.monotonic() < deadline, "the new retained message was never written"
        time.sleep(0.1)
    cql.execute(f"DROP KEYSPACE {ks}")


def test_backend_unit_tests_against_the_node(cassandra, server_bin):
    """The backend's own live tests (tests/unit/cassandra_backend_test.cpp, CassandraLive.*:
    writes, reads, delete markers, loads, values refused for good, the pipelined write rate),
    run against this node with the unit-tests binary built next to the server."""
    unit = Path(os.environ.get("MQTT_UNIT_TESTS_BIN", Path(server_bin).parent / "unit-tests"))
    if not unit.is_file():
        pytest.skip(f"{unit} not built")
    env = dict(os.environ, MQTT_TEST_CASSANDRA=_db(cassandra), MQTT_TEST_CASSANDRA_ROWS="20000")
    r = subprocess.run([str(unit), "--gtest_filter=CassandraLive.*"], env=env, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=240)
    print(r.stdout)
    assert r.returncode == 0 and "[  PASSED  ]" in r.stdout, r.stdout[-4000:]
    assert "SKIPPED" not in r.stdout, r.stdout[-4000:]
