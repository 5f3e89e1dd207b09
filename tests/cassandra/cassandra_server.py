#!/usr/bin/python3
"""Start a real single-node Apache Cassandra on 127.0.0.1 for tests, without Docker.

Cassandra's server jars come from Maven Central (tests/cassandra/pom.xml, fetched once with
`mvn -q` into build/cassandra-jars, or $CASSANDRA_JARS_DIR) and run on the installed JDK 17 as
`org.apache.cassandra.service.CassandraDaemon`, with the JVM flags of Cassandra 5.0's
conf/jvm17-server.options, a small heap, and a yaml written into the node's own folder.

    from cassandra_server import CassandraServer
    with CassandraServer() as node:          # fetches jars if missing, starts, waits for CQL
        print(node.native_port)              # a free port picked on 127.0.0.1
        node.stop(); node.start()            # same data folder: a restart, not a new node
    # leaving the block stops the JVM and deletes the folder (keep_dir=True keeps it)

Smoke test: /usr/bin/python3 tests/cassandra/cassandra_server.py --smoke
See docs/cassandra.md for what was verified and the measured times.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
POM = HERE / "pom.xml"
YAML_TEMPLATE = HERE / "cassandra.yaml.in"
LOGBACK = HERE / "logback.xml"

# Cassandra 5.0 conf/jvm17-server.options, "JPMS" and "Netty" sections, verbatim in meaning.
JVM17_MODULE_FLAGS = [
    "-Djdk.attach.allowAttachSelf=true",
    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports", "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports", "java.sql/java.sql=ALL-UNNAMED",
    "--add-exports", "java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports", "jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports", "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports", "jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens", "java.base/java.io=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens", "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/java.util=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
]

log = logging.getLogger("cassandra_server")


class CassandraError(RuntimeError):
    pass


def cassandra_version() -> str:
    """The cassandra-all version pinned in pom.xml."""
    m = re.search(r"<cassandra\.version>([^<]+)</cassandra\.version>", POM.read_text())
    if not m:
        raise CassandraError(f"no <cassandra.version> in {POM}")
    return m.group(1).strip()


def default_jars_dir() -> Path:
    env = os.environ.get("CASSANDRA_JARS_DIR")
    return Path(env).resolve() if env else REPO_ROOT / "build" / "cassandra-jars"


def ensure_jars(jars_dir: Path | None = None, quiet: bool = True) -> Path:
    """Fetch Cassandra's jars with Maven unless jars_dir already holds a complete set."""
    jars_dir = (jars_dir or default_jars_dir()).resolve()
    version = cassandra_version()
    stamp = jars_dir / f".complete-{version}"
    if stamp.exists() and (jars_dir / f"cassandra-all-{version}.jar").exists():
        return jars_dir
    mvn = shutil.which("mvn")
    if not mvn:
        raise CassandraError("mvn not found: install maven (apt-get install maven)")
    jars_dir.mkdir(parents=True, exist_ok=True)
    cmd = [mvn, "-B", "-f", str(POM), "process-resources", f"-Dcassandra.jars.dir={jars_dir}"]
    if quiet:
        cmd.insert(1, "-q")
    t0 = time.monotonic()
    log.info("fetching Cassandra %s jars into %s", version, jars_dir)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise CassandraError(f"mvn failed ({proc.returncode}):\n{proc.stdout[-4000:]}")
    if not (jars_dir / f"cassandra-all-{version}.jar").exists():
        raise CassandraError(f"mvn ran but cassandra-all-{version}.jar is not in {jars_dir}")
    stamp.write_text(f"fetched in {time.monotonic() - t0:.1f}s\n")
    return jars_dir


def find_java() -> str:
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    candidates.append(Path("/usr/lib/jvm/java-17-openjdk-amd64/bin/java"))
    for c in candidates:
        if c.exists():
            return str(c)
    found = shutil.which("java")
    if not found:
        raise CassandraError("no java found: Cassandra 5.0 needs JDK 17 (openjdk-17-jdk-headless)")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class CassandraServer:
    """One Cassandra JVM on 127.0.0.1 with all of its files under one folder.

    stop() and start() keep the folder and ports, so a test can take the database away mid-run
    and bring the same node (same data) back. close() stops it and deletes the folder unless it
    was given by the caller or keep_dir is set.
    """

    def __init__(self, workdir: str | os.PathLike | None = None, native_port: int | None = None,
                 storage_port: int | None = None, jars_dir: str | os.PathLike | None = None,
                 heap: str = "1g", min_heap: str = "512m", cores: int = 2,
                 keep_dir: bool = False):
        self.jars_dir = Path(jars_dir).resolve() if jars_dir else default_jars_dir()
        self._own_dir = workdir is None
        if workdir is None:
            base = REPO_ROOT / "build"
            base.mkdir(parents=True, exist_ok=True)
            workdir = tempfile.mkdtemp(prefix="cassandra-node-", dir=base)
        self.workdir = Path(workdir).resolve()
        self.native_port = native_port or int(os.environ.get("CASSANDRA_NATIVE_PORT", 0)) \
            or free_port()
        self.storage_port = storage_port or free_port()
        self.ssl_storage_port = free_port()
        self.heap = heap
        self.min_heap = min_heap
        self.cores = cores
        self.keep_dir = keep_dir
        self.proc: subprocess.Popen | None = None
        self.last_start_seconds: float | None = None
        self._log_file = None
        atexit.register(self._kill_at_exit)

    # -- files ------------------------------------------------------------------------------
    @property
    def yaml_path(self) -> Path:
        return self.workdir / "conf" / "cassandra.yaml"

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    def write_config(self) -> None:
        for sub in ("conf", "logs", "triggers"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        text = YAML_TEMPLATE.read_text()
        for key, value in {"@DIR@": str(self.workdir), "@NATIVE_PORT@": str(self.native_port),
                           "@STORAGE_PORT@": str(self.storage_port),
                           "@SSL_STORAGE_PORT@": str(self.ssl_storage_port)}.items():
            text = text.replace(key, value)
        self.yaml_path.write_text(text)

    def command(self) -> list[str]:
        jars = sorted(self.jars_dir.glob("*.jar"))
        jamm = [j for j in jars if j.name.startswith("jamm-")]
        if not jamm:
            raise CassandraError(f"no jamm jar in {self.jars_dir}")
        return [
            find_java(),
            f"-Xms{self.min_heap}", f"-Xmx{self.heap}", "-Xss256k",
            f"-XX:ActiveProcessorCount={self.cores}",
            "-XX:+UseG1GC", "-XX:+ParallelRefProcEnabled", "-XX:MaxTenuringThreshold=1",
            "-XX:MaxGCPauseMillis=300", "-XX:+PerfDisableSharedMem",
            "-XX:-HeapDumpOnOutOfMemoryError", "-XX:+CrashOnOutOfMemoryError",
            f"-XX:ErrorFile={self.log_dir}/hs_err_%p.log",
            "-Djava.net.preferIPv4Stack=true",
            *JVM17_MODULE_FLAGS,
            f"-javaagent:{jamm[0]}",
            f"-Dcassandra.config=file://{self.yaml_path}",
            f"-Dcassandra.storagedir={self.workdir}",
            f"-Dcassandra.logdir={self.log_dir}",
            f"-Dcassandra.triggers_dir={self.workdir / 'triggers'}",
            f"-Dlogback.configurationFile=file://{LOGBACK}",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.available_processors={self.cores}",
            # Single node: no gossip to wait for, no ring to settle.
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.ring_delay_ms=1000",
            "-Dcassandra.superuser_setup_delay_ms=0",
            "-cp", ":".join(str(j) for j in jars),
            "org.apache.cassandra.service.CassandraDaemon",
        ]

    # -- life cycle -------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 240.0) -> float:
        """Start the JVM and wait until CQL answers; returns the seconds it took."""
        if self.is_running():
            return 0.0
        ensure_jars(self.jars_dir)
        if port_open(self.native_port):
            raise CassandraError(f"127.0.0.1:{self.native_port} is already taken")
        self.write_config()
        t0 = time.monotonic()
        self._log_file = open(self.log_dir / "stdout.log", "ab")
        self.proc = subprocess.Popen(self.command(), cwd=self.workdir, stdin=subprocess.DEVNULL,
                                     stdout=self._log_file, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        self.last_start_seconds = time.monotonic() - t0
        log.info("Cassandra up on 127.0.0.1:%d in %.1fs", self.native_port,
                 self.last_start_seconds)
        return self.last_start_seconds

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise CassandraError(f"Cassandra exited ({code}) while starting:\n{self.log_tail()}")
            if port_open(self.native_port) and self._query_release_version(timeout=5):
                return
            time.sleep(0.5)
        raise CassandraError(f"Cassandra not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def _query_release_version(self, timeout: float) -> str | None:
        try:
            with self.session(timeout=timeout) as s:
                return s.execute("SELECT release_version FROM system.local").one()[0]
        except Exception as e:  # the driver raises many kinds while the node starts
            log.debug("not ready yet: %s", e)
            return None

    def release_version(self) -> str:
        with self.session() as s:
            return s.execute("SELECT release_version FROM system.local").one()[0]

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM, wait, then SIGKILL. The data folder stays for a later start()."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("Cassandra did not stop in %.0fs; killing it", timeout)
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def kill(self) -> None:
        """SIGKILL, as a crash would: the commit log is replayed on the next start()."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.stop()

    def close(self) -> None:
        self.stop()
        if self._own_dir and not self.keep_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _kill_at_exit(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()

    def __enter__(self) -> "CassandraServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- helpers for tests ------------------------------------------------------------------
    def session(self, timeout: float = 10.0) -> "_Session":
        return _Session(self.native_port, timeout)

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for name in ("stdout.log", "system.log"):
            p = self.log_dir / name
            if p.exists():
                tail = p.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {p} ---\n" + "\n".join(tail))
        return "\n".join(out)


class _Session:
    """A cassandra-driver session bound to this node only; closes its cluster on exit."""

    def __init__(self, port: int, timeout: float):
        self.port = port
        self.timeout = timeout
        self.cluster = None

    def __enter__(self):
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import WhiteListRoundRobinPolicy

        logging.getLogger("cassandra").setLevel(logging.CRITICAL)
        profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy(["127.0.0.1"]),
                                   request_timeout=self.timeout)
        self.cluster = Cluster(["127.0.0.1"], port=self.port, protocol_version=4,
                               connect_timeout=self.timeout,
                               control_connection_timeout=self.timeout,
                               execution_profiles={EXEC_PROFILE_DEFAULT: profile})
        try:
            return self.cluster.connect()
        except BaseException:
            self.cluster.shutdown()
            raise

    def __exit__(self, *exc):
        if self.cluster is not None:
            self.cluster.shutdown()


def smoke(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    jars = ensure_jars(quiet=False)
    print(f"jars: {jars} ({time.monotonic() - t0:.1f}s)", flush=True)
    node = CassandraServer(heap=args.heap, keep_dir=args.keep)
    try:
        first = node.start(timeout=args.timeout)
        print(f"Cassandra {node.release_version()} ready on 127.0.0.1:{node.native_port} "
              f"after {first:.1f}s (first start, {node.workdir})", flush=True)
        with node.session() as s:
            s.execute("CREATE KEYSPACE IF NOT EXISTS smoke WITH replication = "
                      "{'class': 'SimpleStrategy', 'replication_factor': 1}")
            s.execute("CREATE TABLE IF NOT EXISTS smoke.kv (k text PRIMARY KEY, v blob)")
            s.execute("INSERT INTO smoke.kv (k, v) VALUES (%s, %s)", ("hello", b"world"))
        t1 = time.monotonic()
        node.stop()
        print(f"stopped in {time.monotonic() - t1:.1f}s", flush=True)
        second = node.start(timeout=args.timeout)
        print(f"restarted on the same data in {second:.1f}s", flush=True)
        with node.session() as s:
            row = s.execute("SELECT v FROM smoke.kv WHERE k = %s", ("hello",)).one()
        if row is None or row[0] != b"world":
            print(f"FAIL: row after restart is {row!r}", flush=True)
            return 1
        print("row written before the restart reads back: ok", flush=True)
        if args.keep:
            print(f"--keep: node left in {node.workdir} (stopped)", flush=True)
    finally:
        node.close()
    print(f"smoke passed in {time.monotonic() - t0:.1f}s", flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true",
                    help="start a node, write, restart it, read back, stop, delete")
    ap.add_argument("--fetch", action="store_true", help="only fetch the jars")
    ap.add_argument("--serve", action="store_true",
                    help="start a node and keep it up until Ctrl-C (prints its port)")
    ap.add_argument("--port", type=int, default=0, help="native port for --serve (default: free)")
    ap.add_argument("--heap", default="1g")
    ap.add_argument("--timeout", type=float, default=240.0)
    ap.add_argument("--keep", action="store_true", help="keep the node folder")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")
    if args.fetch:
        print(ensure_jars(quiet=False))
        return 0
    if args.smoke:
        return smoke(args)
    if args.serve:
        # A background job ignores SIGINT: let SIGTERM stop the node cleanly too.
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        node = CassandraServer(native_port=args.port or None, heap=args.heap, keep_dir=args.keep)
        try:
            node.start(timeout=args.timeout)
            print(f"Cassandra ready on 127.0.0.1:{node.native_port} ({node.workdir}); Ctrl-C stops",
                  flush=True)
            while node.is_running():
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            node.close()
        return 0
    ap.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
