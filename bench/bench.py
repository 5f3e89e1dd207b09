#!/usr/bin/env python3
"""Benchmark orchestrator: runs the same scenarios against our broker and Mosquitto.

Normally started by bench/run.sh, which builds the server and the load generator
first. Every broker instance is started fresh for each scenario on a free loopback
port, used alone (ours and Mosquitto never run at the same time), then stopped.

See docs/benchmarks.md for what each scenario means and how numbers are computed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import pwd
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- scenarios
@dataclass
class Scenario:
    sid: str
    title: str
    kind: str  # stresser | loadgen | idle
    args: list[str] = field(default_factory=list)
    tls: bool = False
    timeout: float = 120.0  # hard bound for one run, seconds
    clients: int = 0  # stresser
    messages: int = 0  # stresser
    # Run our server on its defaults (no --threads): what a user who just starts it gets.
    defaults: bool = False
    # MQTT over WebSocket (loadgen --ws): ours with --ws-addr, Mosquitto with a websockets listener.
    ws: bool = False


def scenarios(smoke: bool, p: argparse.Namespace) -> list[Scenario]:
    dur = "1.5" if smoke else str(p.duration)
    pairs, fan = (str(min(p.pairs, 4)), str(min(p.fan, 8))) if smoke else (str(p.pairs), str(p.fan))
    out: list[Scenario] = []
    msgs = 2000 if smoke else 50000
    # Device-shaped traffic first: one PUBLISH per send(), then wait, as real devices and
    # client libraries do (loadgen --device). These are the headline numbers.
    out.append(Scenario("dev-stresser-1c", f"device: original README case, 1 client x{msgs} QoS0", "loadgen",
                        ["stresser", "--device", "--pairs", "1", "--messages", str(msgs), "--qos", "0",
                         "--global-timeout", "60"], timeout=90, defaults=True))
    many = "20" if smoke else "100"
    for n, qos, window in (("10", 0, 0), (many, 0, 0), ("10", 1, 1), ("10", 1, 20), (many, 1, 1)):
        wtxt = f" window {window}" if qos else ""
        out.append(Scenario(f"dev-pub-{n}c-q{qos}{f'w{window}' if qos else ''}",
                            f"device: {n} publishers QoS{qos}{wtxt}, no subscriber", "loadgen",
                            ["publish", "--device", "--pubs", n, "--qos", str(qos), "--size", "64",
                             "--duration", dur] + (["--window", str(window)] if qos else []),
                            timeout=float(dur) + 60, defaults=True))
    devices, drate = ("500", "1000") if smoke else ("10000", "20000")
    out.append(Scenario("dev-fleet", f"device: {devices} devices at {drate} msg/s in all, QoS0", "loadgen",
                        ["publish", "--device", "--pubs", devices, "--qos", "0", "--size", "64", "--rate", drate,
                         "--duration", "2" if smoke else "10"], timeout=180, defaults=True))
    out.append(Scenario("dev-fanout-q1", f"device: fan-out 1->{fan} QoS1 window 1", "loadgen",
                        ["fanout", "--device", "--subs", fan, "--qos", "1", "--size", "64", "--duration", dur],
                        timeout=float(dur) + 60, defaults=True))
    # The same device-shaped traffic over WebSocket; render() also sets each beside its TCP twin.
    for sid, tcp_args in (("dev-ws-pub-10c-q0", ["publish", "--device", "--pubs", "10", "--qos", "0"]),
                          ("dev-ws-pub-10c-q1w1", ["publish", "--device", "--pubs", "10", "--qos", "1",
                                                   "--window", "1"]),
                          ("dev-ws-fanout-q1", ["fanout", "--device", "--subs", fan, "--qos", "1"])):
        twin = next(s for s in out if s.sid == sid.replace("-ws", ""))
        out.append(Scenario(sid, twin.title.replace("device:", "device over WebSocket:"), "loadgen",
                            tcp_args + ["--size", "64", "--duration", dur], timeout=float(dur) + 60,
                            defaults=True, ws=True))
    # The original README case with the real mqtt-stresser when MQTT_STRESSER_BIN gives one;
    # otherwise the load generator's pipelined stresser mode.
    for n in (1, 10):
        tool = "mqtt-stresser" if p.stresser else "pipelined"
        out.append(Scenario(f"a-stresser-{n}c", f"{tool}: {n} client{'s' if n > 1 else ''} x{msgs} QoS0",
                            "stresser", clients=n, messages=msgs, timeout=90, defaults=bool(p.stresser)))
    for mode in ("p2p", "fanin", "fanout"):
        for qos in (0, 1):
            for size in (64, 4096):
                shape = {"p2p": f"{pairs} pairs", "fanin": f"{fan}->1", "fanout": f"1->{fan}"}[mode]
                label = "4KiB" if size == 4096 else f"{size}B"
                args = [mode, "--qos", str(qos), "--size", str(size), "--duration", dur]
                args += {"p2p": ["--pairs", pairs], "fanin": ["--pubs", fan], "fanout": ["--subs", fan]}[mode]
                out.append(Scenario(f"b-{mode}-q{qos}-{label}", f"pipelined: {mode} {shape} QoS{qos} {label}", "loadgen",
                                    args, timeout=float(dur) + 60))
    rate = "1000" if smoke else str(p.latency_rate)
    ldur = "2" if smoke else "10"
    out.append(Scenario("c-latency", f"latency p2p 1 pair QoS0 64B @{rate}/s", "loadgen",
                        ["p2p", "--pairs", "1", "--qos", "0", "--size", "64", "--rate", rate, "--duration", ldur],
                        timeout=float(ldur) + 60))
    conns = str(500 if smoke else p.idle_conns)
    out.append(Scenario("d-idle", f"{conns} idle connections", "idle",
                        ["idle", "--conns", conns, "--settle", "1" if smoke else "2", "--hold", "0.5" if smoke else "2"],
                        timeout=180))
    out.append(Scenario("e-tls-p2p", f"pipelined: TLS p2p {pairs} pairs QoS0 64B", "loadgen",
                        ["p2p", "--pairs", pairs, "--qos", "0", "--size", "64", "--duration", dur], tls=True,
                        timeout=float(dur) + 60))
    return out


# --------------------------------------------------------------------------- helpers
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_s(pid: int) -> float | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data[data.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def log(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------- brokers
@dataclass
class BrokerSpec:
    name: str  # "ours" | "mosquitto"
    binary: str
    kind: str  # "mqtt-server" | "mosquitto"


class Broker:
    def __init__(self, spec: BrokerSpec, workdir: Path, tls: bool, cert: Path, key: Path, p: argparse.Namespace,
                 defaults: bool = False, ws: bool = False):
        self.spec, self.workdir, self.tls, self.cert, self.key, self.p = spec, workdir, tls, cert, key, p
        self.defaults = defaults
        self.port = free_port()
        self.ws_port = free_port() if ws else None
        # Mosquitto 2.0's websockets listener (libwebsockets) binds every interface whatever
        # address it is given (eclipse-mosquitto/mosquitto#3045). Test servers stay on the
        # loopback, so in WebSocket scenarios each broker (ours too, so that both pay the same)
        # runs in a network namespace of its own, where loopback is the only interface; the
        # load generator joins it (nsenter). That needs root; without it ours runs as usual
        # and Mosquitto's WebSocket runs are refused.
        self.netns = ws and os.geteuid() == 0 and shutil.which("unshare") is not None
        self.refuse = ("Mosquitto's WebSocket listener binds every interface: run the bench as root, so that "
                       "it gets a network namespace of its own (unshare)"
                       if ws and spec.kind == "mosquitto" and not self.netns else "")
        self.proc: subprocess.Popen | None = None
        # A fresh working directory per instance: ours keeps its embedded store in ./data.
        self.rundir = Path(tempfile.mkdtemp(prefix=f"{spec.name}-{self.port}-", dir=workdir))
        self.logfile = self.rundir / "broker.log"

    def command(self) -> list[str]:
        if self.spec.kind == "mosquitto":
            conf = self.rundir / "mosquitto.conf"
            lines = [
                f"listener {self.port} 127.0.0.1",
                "allow_anonymous true",
                f"max_queued_messages {self.p.max_queued}",
                f"max_inflight_messages {self.p.max_inflight}",
                "persistence false",
                "log_dest stderr",
                "log_type error",
                "log_type warning",
                "connection_messages false",
                # Stay the invoking user: as root mosquitto would otherwise switch to the
                # 'mosquitto' user, which cannot read the bench's private temp files.
                f"user {pwd.getpwuid(os.getuid()).pw_name}",
            ]
            if self.tls:
                lines += [f"certfile {self.cert}", f"keyfile {self.key}"]
            lines += [l for l in self.p.mosquitto_extra.split(";") if l.strip()]
            if self.ws_port:
                lines += [f"listener {self.ws_port}", "protocol websockets"]
            conf.write_text("\n".join(lines) + "\n")
            return self.in_netns([self.spec.binary, "-c", str(conf)])
        cmd = [self.spec.binary, "-a", f"127.0.0.1:{self.port}", "--grpc-addr", f"127.0.0.1:{free_port()}"]
        if self.p.threads > 0 and not self.defaults:
            cmd += ["--threads", str(self.p.threads)]
        cmd += ["--max-queued", str(self.p.max_queued), "--max-inflight", str(self.p.max_inflight)]
        cmd += ["-c", str(self.cert), "-k", str(self.key)] if self.tls else ["--non-tls"]
        if self.ws_port:
            cmd += ["--ws-addr", f"127.0.0.1:{self.ws_port}"]
        cmd += self.p.server_args.split()
        return self.in_netns(cmd)

    def in_netns(self, cmd: list[str]) -> list[str]:
        if not self.netns:
            return cmd
        return ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" "$@"'] + cmd

    def client_prefix(self) -> list[str]:
        """What a client command runs under to reach this broker (its network namespace)."""
        return ["nsenter", f"--net=/proc/{self.pid}/ns/net"] if self.netns else []

    def accepts(self) -> bool:
        if self.netns:
            probe = (f"import socket; socket.create_connection(('127.0.0.1', {self.ws_port}), timeout=0.5)")
            return subprocess.run(self.client_prefix() + [sys.executable, "-c", probe], capture_output=True,
                                  timeout=10).returncode == 0
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def start(self) -> None:
        if self.refuse:
            raise RuntimeError(self.refuse)
        cmd = self.command()
        self.cmdline = " ".join(cmd)
        with open(self.logfile, "wb") as lf:
            self.proc = subprocess.Popen(cmd, cwd=self.rundir, stdout=lf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.spec.name} exited with {self.proc.returncode} at start: {self.log_tail()}")
            if self.accepts():
                time.sleep(0.2)  # let it finish any start-up work before measuring
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.spec.name} did not accept connections on port {self.port} within 15 s")

    @property
    def pid(self) -> int:
        assert self.proc
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def log_tail(self, n: int = 600) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-n:].strip()
        except OSError:
            return ""


# --------------------------------------------------------------------------- runners
STRESSER_PUB = re.compile(r"# Publishing Throughput.*?Median:\s*([\d.]+)\s*msg/sec", re.S)
STRESSER_RCV = re.compile(r"# Receiving Throu\w*put.*?Median:\s*([\d.]+)\s*msg/sec", re.S)
STRESSER_RECEIVED = re.compile(r"Received Messages:\s*(\d+)")
STRESSER_PUBLISHED = re.compile(r"Published Messages:\s*(\d+)")


def parse_result(stdout: str) -> dict:
    for line in reversed(stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"ok": False, "error": "load generator printed no RESULT line"}


def run_cmd(cmd: list[str], timeout: float) -> tuple[int, str, str]:
    try:
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return cp.returncode, cp.stdout, cp.stderr
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return -1, out, f"timed out after {timeout:.0f} s"


def run_one(sc: Scenario, broker: Broker, p: argparse.Namespace) -> dict:
    lg = p.loadgen
    if sc.kind == "stresser":
        if p.stresser:  # the real mqtt-stresser
            cmd = [p.stresser, "-broker", f"tcp://127.0.0.1:{broker.port}", "-num-clients", str(sc.clients),
                   "-num-messages", str(sc.messages), "-publisher-qos", "0", "-subscriber-qos", "0",
                   "-no-progress", "-global-timeout", "60s"]
            tool = "mqtt-stresser"
        else:
            cmd = [lg, "stresser", "--port", str(broker.port), "--pairs", str(sc.clients), "--messages",
                   str(sc.messages), "--qos", "0", "--global-timeout", "60", "--server-pid", str(broker.pid)]
            if p.pause_subscribers:
                cmd.append("--pause-subscribers")
            tool = "mqtt-loadgen stresser mode"
        cpu0, t0 = proc_cpu_s(broker.pid), time.monotonic()
        rc, out, err = run_cmd(cmd, sc.timeout)
        wall, cpu1 = time.monotonic() - t0, proc_cpu_s(broker.pid)
        res: dict = parse_result(out) if not p.stresser else {}
        m_pub, m_rcv, m_recv = STRESSER_PUB.search(out), STRESSER_RCV.search(out), STRESSER_RECEIVED.search(out)
        res["tool"] = tool
        if m_pub and m_rcv and m_recv:
            res["publish_median_per_s"] = float(m_pub.group(1))
            res["receive_median_per_s"] = float(m_rcv.group(1))
            res["delivered"] = int(m_recv.group(1))
            if p.stresser:
                m_p = STRESSER_PUBLISHED.search(out)
                res["published"] = int(m_p.group(1)) if m_p else None
                res["elapsed_s"] = wall  # includes client start-up: a lower bound on the rate
                res["delivered_per_s"] = res["delivered"] / wall if wall > 0 else 0
                if cpu0 is not None and cpu1 is not None:
                    res["server_cpu_s"] = cpu1 - cpu0
                res["ok"] = rc == 0 and res["delivered"] > 0
        else:
            res["ok"] = False
            res.setdefault("error", f"could not parse {tool} output (rc={rc}): {err.strip()[-300:]}")
        res["cmd"] = " ".join(cmd)
        return res

    if sc.ws:
        # The same traffic over plain TCP first, on the same broker process in the same
        # network namespace, so that WebSocket/TCP compares like with like.
        tcp = derive(run_loadgen(sc, broker, p, ws=False))
        res = run_loadgen(sc, broker, p, ws=True)
        res["tcp_twin"] = tcp
        return res
    return run_loadgen(sc, broker, p, ws=False)


def run_loadgen(sc: Scenario, broker: Broker, p: argparse.Namespace, ws: bool) -> dict:
    lg = p.loadgen
    args = list(sc.args)
    port = broker.ws_port if ws else broker.port
    cmd = broker.client_prefix() + [lg] + args[:1] + ["--port", str(port), "--server-pid", str(broker.pid)] + args[1:]
    if sc.tls:
        cmd.append("--tls")
    if ws:
        cmd.append("--ws")
    rc, out, err = run_cmd(cmd, sc.timeout)
    res = parse_result(out)
    if rc not in (0, 1) and res.get("ok"):
        res["ok"] = False
    if not res.get("ok") and "error" not in res:
        res["error"] = (err.strip() or f"exit code {rc}")[-300:]
    res["cmd"] = " ".join(cmd)
    return res


def derive(res: dict) -> dict:
    """Adds the comparable numbers: delivered msg/s and server CPU s per million delivered."""
    d = res.get("delivered") or 0
    cpu = res.get("server_cpu_s")
    res["cpu_s_per_M"] = (cpu / d * 1e6) if (cpu is not None and d) else None
    return res


def pick_median(runs: list[dict], key: str) -> dict:
    good = [r for r in runs if r.get("ok")]
    if not good:
        return runs[-1]
    good.sort(key=lambda r: r.get(key) or 0)
    return good[(len(good) - 1) // 2]


# --------------------------------------------------------------------------- output
def fmt(v, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    a = abs(v)
    if unit == "ratio":
        return f"{v:.2f}"
    if a >= 1e6:
        return f"{v / 1e6:.2f}M"
    if a >= 1e4:
        return f"{v / 1e3:.0f}k"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep] + [line(r) for r in rows])


GEN_BOUND = 0.9  # load generator busier than this share of a core: it may be the limit


def rate(x: dict) -> str:
    if not x.get("ok"):
        return "FAIL"
    mark = "*" if (x.get("loadgen_core_util") or 0) >= GEN_BOUND else ""
    return fmt(x.get("delivered_per_s")) + mark


def render(results: list[dict]) -> str:
    parts = []
    rows = []
    for r in results:
        if r["kind"] == "idle":
            continue
        o, m = r["ours"], r["mosquitto"]
        ms = lambda x, k: None if x.get(k) is None else x[k] / 1000.0
        rows.append([
            r["id"], r["title"],
            rate(o), rate(m),
            fmt(ratio(o.get("delivered_per_s"), m.get("delivered_per_s")), "ratio"),
            fmt(o.get("cpu_s_per_M")), fmt(m.get("cpu_s_per_M")),
            fmt(ratio(o.get("cpu_s_per_M"), m.get("cpu_s_per_M")), "ratio"),
            f"{fmt(ms(o, 'lat_p50_us'))}/{fmt(ms(o, 'lat_p99_us'))}",
            f"{fmt(ms(m, 'lat_p50_us'))}/{fmt(ms(m, 'lat_p99_us'))}",
        ])
    parts.append("Throughput (delivered msg/s, higher is better) and server CPU seconds per million delivered\n"
                 "messages (lower is better); ratio = ours/mosquitto; latency p50/p99 in ms.\n"
                 f"* = the load generator used >= {GEN_BOUND:.0%} of a core: that rate is a lower bound.\n")
    parts.append(table(["id", "scenario", "ours msg/s", "mosq msg/s", "ratio", "ours cpu s/M", "mosq cpu s/M",
                        "ratio", "ours p50/p99", "mosq p50/p99"], rows))
    srows = []
    for r in results:
        if r["kind"] != "stresser" and not r["id"].startswith("dev-stresser"):
            continue
        o, m = r["ours"], r["mosquitto"]
        srows.append([r["id"], o.get("tool", "mqtt-loadgen --device"),
                      fmt(o.get("publish_median_per_s")), fmt(m.get("publish_median_per_s")),
                      fmt(ratio(o.get("publish_median_per_s"), m.get("publish_median_per_s")), "ratio"),
                      fmt(o.get("receive_median_per_s")), fmt(m.get("receive_median_per_s")),
                      fmt(ratio(o.get("receive_median_per_s"), m.get("receive_median_per_s")), "ratio")])
    if srows:
        parts.append("\nmqtt-stresser style medians (per client msg/s; receive clock starts when publishing ends)\n")
        parts.append(table(["id", "tool", "ours pub", "mosq pub", "ratio", "ours recv", "mosq recv", "ratio"], srows))
    wrows = []
    for r in results:
        if not any("tcp_twin" in r[name] for name in ("ours", "mosquitto")):
            continue
        cells = [r["id"]]
        for name in ("ours", "mosquitto"):
            w = r[name]
            t = w.get("tcp_twin") or {}
            cells += [fmt(t.get("delivered_per_s")) if t.get("ok") else "FAIL",
                      fmt(ratio(w.get("delivered_per_s"), t.get("delivered_per_s")), "ratio"),
                      fmt(ratio(w.get("cpu_s_per_M"), t.get("cpu_s_per_M")), "ratio")]
        wrows.append(cells)
    if wrows:
        parts.append("\nWebSocket against plain TCP: the same traffic on the same broker process, TCP first "
                     "(ratios WebSocket/TCP: msg/s higher is better, CPU per message lower is better)\n")
        parts.append(table(["id", "ours tcp msg/s", "ours ws/tcp", "ours cpu ws/tcp", "mosq tcp msg/s",
                            "mosq ws/tcp", "mosq cpu ws/tcp"], wrows))
    irows = []
    for r in results:
        if r["kind"] != "idle":
            continue
        o, m = r["ours"], r["mosquitto"]
        b = lambda x: x.get("rss_bytes_per_conn")
        irows.append([r["id"], r["title"], fmt(b(o)) if o.get("ok") else "FAIL", fmt(b(m)) if m.get("ok") else "FAIL",
                      fmt(ratio(b(o), b(m)), "ratio"),
                      fmt((o.get("server_rss_kb_connected") or 0) / 1024), fmt((m.get("server_rss_kb_connected") or 0) / 1024)])
    lrows = []
    for r in results:
        for name in ("ours", "mosquitto"):
            x = r[name]
            if x.get("ok") and (x.get("lost") or 0) > 0:
                lrows.append(f"  {r['id']} [{name}]: {x['lost']} of {x.get('expected_deliveries')} deliveries lost")
    if lrows:
        parts.append("\nLost messages (QoS 0 dropped by the broker, or not delivered in time):")
        parts.extend(lrows)
    if irows:
        parts.append("\nMemory per idle connection (VmRSS delta / connections, bytes; lower is better)\n")
        parts.append(table(["id", "scenario", "ours B/conn", "mosq B/conn", "ratio", "ours RSS MiB", "mosq RSS MiB"], irows))
    return "\n".join(parts)


# --------------------------------------------------------------------------- main
def make_cert(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "server.crt", tmp / "server.key"
    gen = REPO / "scripts" / "gen-dev-cert.sh"
    if gen.exists():
        r = subprocess.run(["bash", str(gen), str(cert), str(key)], capture_output=True, text=True, timeout=60)
        if r.returncode == 0 and cert.exists() and key.exists():
            return cert, key
        log(f"note: {gen} failed ({r.returncode}), falling back to openssl")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def version_of(binary: str, kind: str) -> str:
    try:
        if kind == "mosquitto":
            out = subprocess.run([binary, "-h"], capture_output=True, text=True, timeout=5).stdout
            return out.splitlines()[0] if out else "?"
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=5)
        return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"
    except Exception as e:  # noqa: BLE001
        return f"? ({e})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True, help="our broker binary (a mosquitto binary also works, for testing)")
    ap.add_argument("--server-kind", choices=["auto", "mqtt-server", "mosquitto"], default="auto")
    ap.add_argument("--mosquitto", default=shutil.which("mosquitto") or "/usr/sbin/mosquitto")
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--stresser", default="", help="real mqtt-stresser binary; empty = loadgen stresser mode")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--pause-subscribers", action="store_true",
                    help="scenario a (stresser mode): subscribers read only after their publisher is done")
    ap.add_argument("--only", default="", help="comma-separated scenario id prefixes (e.g. a,b-p2p,d)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per broker per scenario; the median is reported")
    ap.add_argument("--duration", type=float, default=8.0, help="seconds of publishing per throughput scenario")
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--fan", type=int, default=50, help="publishers for fan-in, subscribers for fan-out")
    ap.add_argument("--latency-rate", type=int, default=5000)
    ap.add_argument("--idle-conns", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=1, help="--threads for our server (0 = leave default)")
    ap.add_argument("--server-args", default="", help="extra arguments for our server")
    ap.add_argument("--mosquitto-extra", default="", help="extra mosquitto.conf lines, ';'-separated")
    ap.add_argument("--max-queued", type=int, default=1000)
    ap.add_argument("--max-inflight", type=int, default=20)
    ap.add_argument("--results-dir", default=str(REPO / "bench" / "results"))
    p = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if nofile < p.idle_conns + 1000 and not p.smoke:
        new = max(1000, nofile - 1000)
        log(f"note: open-file limit {nofile}; idle scenario reduced to {new} connections")
        p.idle_conns = new

    p.server, p.mosquitto, p.loadgen = (os.path.abspath(x) for x in (p.server, p.mosquitto, p.loadgen))
    if p.stresser:
        p.stresser = os.path.abspath(p.stresser)
    kind = p.server_kind
    if kind == "auto":
        kind = "mosquitto" if "mosquitto" in Path(p.server).name else "mqtt-server"
    ours = BrokerSpec("ours", p.server, kind)
    mosq = BrokerSpec("mosquitto", p.mosquitto, "mosquitto")
    for b in (ours, mosq):
        if not (os.path.isfile(b.binary) and os.access(b.binary, os.X_OK)):
            log(f"error: {b.name} binary not found or not executable: {b.binary}")
            return 2

    scs = scenarios(p.smoke, p)
    if p.only:
        prefixes = [x.strip() for x in p.only.split(",") if x.strip()]
        scs = [s for s in scs if any(s.sid.startswith(x) for x in prefixes)]

    la = loadavg()
    ncpu = os.cpu_count() or 0
    log(f"bench: {len(scs)} scenarios x 2 brokers{' (smoke)' if p.smoke else ''}; ours={p.server} ({kind}); "
        f"mosquitto={p.mosquitto}; cores={ncpu}; loadavg={la:.2f}; open files={nofile}")
    log(f"note: the load generator and the broker share the same {ncpu} cores; brokers run one at a time.")
    if la > 0.7:
        log(f"warning: load average {la:.2f} before start: other work on this machine will skew the numbers")
    stresser_tool = "mqtt-stresser" if p.stresser else "mqtt-loadgen stresser mode (mqtt-stresser not available)"

    tmp = Path(tempfile.mkdtemp(prefix="mqtt-bench-"))
    cert, key = make_cert(tmp)
    results: list[dict] = []
    failures: list[str] = []
    started = time.time()
    try:
        for sc in scs:
            entry: dict = {"id": sc.sid, "title": sc.title, "kind": sc.kind, "tls": sc.tls, "runs": {}}
            runs: dict[str, list[dict]] = {"ours": [], "mosquitto": []}
            for rep in range(p.repeat):
                for spec in (ours, mosq):  # one after the other, never at the same time
                    broker = Broker(spec, tmp, sc.tls, cert, key, p, sc.defaults, sc.ws)
                    try:
                        broker.start()
                    except (RuntimeError, OSError) as e:
                        runs[spec.name].append({"ok": False, "error": str(e)})
                        continue
                    try:
                        res = derive(run_one(sc, broker, p))
                        if not broker.alive():
                            res["ok"] = False
                            res["error"] = f"broker died during the run: {broker.log_tail(300)}"
                        res["broker_cmd"] = broker.cmdline
                    finally:
                        broker.stop()
                    runs[spec.name].append(res)
            key_metric = "rss_bytes_per_conn" if sc.kind == "idle" else "delivered_per_s"
            for name in ("ours", "mosquitto"):
                entry[name] = pick_median(runs[name], key_metric)
                entry["runs"][name] = runs[name]
                if not entry[name].get("ok"):
                    failures.append(f"{sc.sid} [{name}]: {entry[name].get('error', 'failed')}")
            o, m = entry["ours"], entry["mosquitto"]
            if sc.kind == "idle":
                summary = (f"ours {fmt(o.get('rss_bytes_per_conn'))} B/conn, "
                           f"mosquitto {fmt(m.get('rss_bytes_per_conn'))} B/conn")
            else:
                summary = (f"ours {fmt(o.get('delivered_per_s'))} msg/s {fmt(o.get('cpu_s_per_M'))} cpu-s/M, "
                           f"mosquitto {fmt(m.get('delivered_per_s'))} msg/s {fmt(m.get('cpu_s_per_M'))} cpu-s/M")
            bad = "" if o.get("ok") and m.get("ok") else "  <-- FAILED"
            log(f"  {sc.sid:<22} {summary}{bad}")
            results.append(entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    text = render(results)
    print()
    print(text)
    print(f"\nnote: {ncpu} cores shared by the load generator (one process, one thread, epoll) and the broker;"
          f" scenario a uses {stresser_tool}.")
    if failures:
        print("\nFAILED scenarios:")
        for f in failures:
            print(f"  {f}")

    stamp = dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")
    out_dir = Path(p.results_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out_file = out_dir / f"{stamp}{'-smoke' if p.smoke else ''}.json"
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip() or None
    except Exception:  # noqa: BLE001
        rev = None
    doc = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "smoke": p.smoke,
        "git_rev": rev,
        "duration_s": round(time.time() - started, 1),
        "machine": {"cores": ncpu, "kernel": platform.release(), "loadavg_at_start": la, "open_files": nofile,
                    "note": "load generator and broker share these cores; brokers run one after the other"},
        "ours": {"binary": p.server, "kind": kind, "version": version_of(p.server, kind), "threads": p.threads,
                 "extra_args": p.server_args},
        "mosquitto": {"binary": p.mosquitto, "version": version_of(p.mosquitto, "mosquitto"),
                      "max_queued_messages": p.max_queued, "max_inflight_messages": p.max_inflight,
                      "extra_conf": p.mosquitto_extra},
        "stresser_tool": stresser_tool,
        "params": {"duration": p.duration, "pairs": p.pairs, "fan": p.fan, "latency_rate": p.latency_rate,
                   "idle_conns": p.idle_conns, "repeat": p.repeat},
        "scenarios": results,
        "failures": failures,
        "table": text,
    }
    out_file.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nresults written to {out_file}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
