"""Many clients at once."""

from __future__ import annotations

import threading
import time

from helpers import Client

N_CLIENTS = 100
N_SHARED = 10


def _connect_all(clients, timeout):
    """Connect every client concurrently (one thread per connect) and wait for all CONNACKs."""
    errors = []

    def run(c):
        try:
            c.connect(timeout=timeout)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"{c.client_id}: {e!r}")

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout + 5
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "some connects hung"
    assert not errors, "\n".join(errors[:10])


def test_100_clients_own_and_shared_topics(server, client_factory):
    """100 concurrent clients each subscribe to their own topic and to a shared one; one publisher
    sends one message to each own topic and 10 to the shared topic; every client gets exactly its
    own message and all 10 shared ones, in order [MQTT-4.6.0-6], and nothing else."""
    clients: list[Client] = [client_factory(server) for _ in range(N_CLIENTS)]
    _connect_all(clients, timeout=20)

    # Subscribe all at once: send every SUBSCRIBE, then wait for every SUBACK.
    errors = []

    def sub(i, c):
        try:
            c.subscribe([f"conc/{i}", "conc/all"], timeout=20)
        except Exception as e:  # noqa: BLE001
            errors.append(f"{c.client_id}: {e!r}")

    threads = [threading.Thread(target=sub, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, "\n".join(errors[:10])

    pub = client_factory(server).connect()
    for i in range(N_CLIENTS):
        pub.publish_nowait(f"conc/{i}", f"own {i}".encode())
    infos = [pub.publish_nowait("conc/all", f"shared {k}".encode()) for k in range(N_SHARED)]
    infos[-1].wait_for_publish(10)

    problems = []
    for i, c in enumerate(clients):
        try:
            got = c.collect(1 + N_SHARED, timeout=20)
        except AssertionError as e:
            problems.append(str(e))
            continue
        own = [m for m in got if m.topic == f"conc/{i}"]
        shared = [m.payload for m in got if m.topic == "conc/all"]
        if [m.payload for m in own] != [f"own {i}".encode()]:
            problems.append(f"client {i}: own messages {own}")
        if shared != [f"shared {k}".encode() for k in range(N_SHARED)]:
            problems.append(f"client {i}: shared messages {shared}")
        if len(own) + len(shared) != len(got):
            problems.append(f"client {i}: foreign messages {[m.topic for m in got]}")
    assert not problems, f"{len(problems)} clients wrong:\n" + "\n".join(problems[:10])

    # Nothing extra arrived: a final sentinel on the shared topic is the next message for all.
    pub.publish("conc/all", b"end")
    for c in clients:
        c.expect_message("conc/all", b"end", timeout=10)
        c.assert_still_connected()


def test_fan_in_many_publishers_one_subscriber(server, client_factory):
    """50 publishers publishing concurrently to one subscriber: every message arrives once, and each
    publisher's messages arrive in that publisher's order [MQTT-4.6.0-6]."""
    n_pub, per_pub = 50, 20
    sub = client_factory(server).connect()
    sub.subscribe("fanin/#")
    pubs = [client_factory(server) for _ in range(n_pub)]
    _connect_all(pubs, timeout=20)

    def run(j, p):
        for k in range(per_pub):
            p.publish_nowait(f"fanin/{j}", f"{k}".encode())

    threads = [threading.Thread(target=run, args=(j, p)) for j, p in enumerate(pubs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    got = sub.collect(n_pub * per_pub, timeout=20)
    per = {}
    for m in got:
        per.setdefault(m.topic, []).append(int(m.payload))
    assert per == {f"fanin/{j}": list(range(per_pub)) for j in range(n_pub)}
