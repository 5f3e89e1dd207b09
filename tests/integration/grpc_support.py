"""gRPC stubs and helpers for the test_grpc*.py modules.

Stubs are generated at test time with Debian's ``protoc`` and
``grpc_python_plugin`` (Debian's python3-grpc-tools is too old for proto3
``optional``) into a temporary folder:

* ``stubs()``: the server's own protos (proto/published_packet.proto, extended,
  and proto/mqttserver/v1/broker.proto) plus the standard reflection (v1alpha)
  and health services, importable in this process.
* ``original_stub_dir()``: the ORIGINAL rpcserver proto, unchanged
  (../shared/reference/published_packet.proto when present, else the copy
  below), for a client run in a subprocess: its messages share names with the
  extended ones, so both cannot live in one process's descriptor pool.
"""

from __future__ import annotations

import atexit
import importlib
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace

import grpc

REPO = Path(__file__).resolve().parents[2]
PROTO_DIR = REPO / "proto"
SHARED_ORIGINAL = REPO.parent / "shared" / "reference" / "published_packet.proto"
GRPC_PLUGIN = "/usr/bin/grpc_python_plugin"

# The original service definition, byte for byte as published (used when
# ../shared is not next to the repository).
ORIGINAL_PROTO = """syntax = "proto3";

package rpcserver;

message PublishedPacket {
    string device_id = 1;
    string topic = 2;
    bytes payload = 3;
}
 
message PublishedPacketRequest {
    optional string device_id = 1;
}

message PublishRequest {
    string device_id = 1;
    string topic = 2;
    bytes payload = 3;
}

message PublishResponse {
    // TODO detailed
    string code = 1;
}

service PublishedPacketService {
    rpc StreamPublishedPayload(PublishedPacketRequest) returns (stream PublishedPacket) {}
    rpc PublishPayloadToDevice(PublishRequest) returns (PublishResponse);
}
"""

# Subsets of grpc/reflection/v1alpha/reflection.proto and grpc/health/v1/health.proto
# (same package, names and field numbers, so the same wire format).
REFLECTION_PROTO = """syntax = "proto3";
package grpc.reflection.v1alpha;
service ServerReflection {
  rpc ServerReflectionInfo(stream ServerReflectionRequest) returns (stream ServerReflectionResponse);
}
message ServerReflectionRequest {
  string host = 1;
  oneof message_request {
    string file_by_filename = 3;
    string file_containing_symbol = 4;
    string list_services = 7;
  }
}
message ServerReflectionResponse {
  string valid_host = 1;
  ServerReflectionRequest original_request = 2;
  oneof message_response {
    FileDescriptorResponse file_descriptor_response = 4;
    ListServiceResponse list_services_response = 6;
    ErrorResponse error_response = 7;
  }
}
message FileDescriptorResponse { repeated bytes file_descriptor_proto = 1; }
message ListServiceResponse { repeated ServiceResponse service = 1; }
message ServiceResponse { string name = 1; }
message ErrorResponse { int32 error_code = 1; string error_message = 2; }
"""

HEALTH_PROTO = """syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health {
  rpc Check(HealthCheckRequest) returns (HealthCheckResponse);
}
"""

_lock = threading.Lock()
_stubs = None
_original_dir = None
_tmp = None


def _tmpdir() -> Path:
    global _tmp
    if _tmp is None:
        _tmp = Path(tempfile.mkdtemp(prefix="mqtt-grpc-stubs-"))
        atexit.register(shutil.rmtree, _tmp, True)
    return _tmp


def protoc(include: Path, out: Path, *files: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    cmd = ["protoc", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}",
           f"--plugin=protoc-gen-grpc_python={GRPC_PLUGIN}", *files]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}"


def stubs() -> SimpleNamespace:
    """Modules pp/pp_grpc (rpcserver), v1/v1_grpc, refl/refl_grpc, health/health_grpc."""
    global _stubs
    with _lock:
        if _stubs is None:
            out = _tmpdir() / "ours"
            protoc(PROTO_DIR, out, "published_packet.proto", "mqttserver/v1/broker.proto")
            std = _tmpdir() / "std-src"
            std.mkdir(exist_ok=True)
            (std / "test_reflection.proto").write_text(REFLECTION_PROTO)
            (std / "test_health.proto").write_text(HEALTH_PROTO)
            protoc(std, out, "test_reflection.proto", "test_health.proto")
            sys.path.insert(0, str(out))
            m = importlib.import_module
            _stubs = SimpleNamespace(
                pp=m("published_packet_pb2"), pp_grpc=m("published_packet_pb2_grpc"),
                v1=m("mqttserver.v1.broker_pb2"), v1_grpc=m("mqttserver.v1.broker_pb2_grpc"),
                refl=m("test_reflection_pb2"), refl_grpc=m("test_reflection_pb2_grpc"),
                health=m("test_health_pb2"), health_grpc=m("test_health_pb2_grpc"))
        return _stubs


def stub_dir() -> Path:
    """The folder of the stubs() modules, for a subprocess's sys.path."""
    stubs()
    return _tmpdir() / "ours"


def original_proto_text() -> str:
    return SHARED_ORIGINAL.read_text() if SHARED_ORIGINAL.is_file() else ORIGINAL_PROTO


def original_stub_dir() -> Path:
    """A folder with published_packet_pb2(_grpc).py generated from the original proto."""
    global _original_dir
    with _lock:
        if _original_dir is None:
            src = _tmpdir() / "original-src"
            src.mkdir(exist_ok=True)
            (src / "published_packet.proto").write_text(original_proto_text())
            out = _tmpdir() / "original"
            protoc(src, out, "published_packet.proto")
            _original_dir = out
        return _original_dir


# --------------------------------------------------------------------------
# Channels and streams
# --------------------------------------------------------------------------


def grpc_target(broker) -> str:
    assert broker.grpc_port, f"{broker} has no gRPC port (started with its own --grpc-addr?)"
    return f"127.0.0.1:{broker.grpc_port}"


def channel(broker, timeout: float = 5.0) -> grpc.Channel:
    """A channel with a connection of its own (gRPC would share one between channels to the same
    address, and the tests want streams on separate connections)."""
    ch = grpc.insecure_channel(grpc_target(broker), options=[("grpc.use_local_subchannel_pool", 1)])
    grpc.channel_ready_future(ch).result(timeout=timeout)
    return ch


class StreamReader:
    """Reads a server stream in a thread into a queue of messages.

    ``ready()`` returns once the server sent the stream's headers, which it does
    right after registering the stream: every message published after that
    belongs to it. ``error`` holds the RpcError that ended the stream, if any.
    """

    def __init__(self, call, keep: bool = True):
        self.call = call
        self.keep = keep
        self.messages: "queue.Queue" = queue.Queue()
        self.count = 0
        self.dropped_before = 0
        self.error: grpc.RpcError | None = None
        self.done = threading.Event()
        self._cond = threading.Condition()
        self._want = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def ready(self, timeout: float = 5.0) -> "StreamReader":
        box: list = []
        t = threading.Thread(target=lambda: box.append(self.call.initial_metadata()), daemon=True)
        t.start()
        t.join(timeout)
        assert box, f"stream headers not received within {timeout}s"
        assert not self.call.done(), f"stream ended instead of starting: {self.call.code()} {self.call.details()}"
        return self

    def _run(self):
        try:
            for m in self.call:
                self.dropped_before += getattr(m, "dropped_before", 0)
                if self.keep:
                    self.messages.put(m)
                self.count += 1
                if self._want is not None and self.count >= self._want:
                    with self._cond:
                        self._cond.notify_all()
        except grpc.RpcError as e:
            self.error = e
        finally:
            self.done.set()
            with self._cond:
                self._cond.notify_all()

    def get(self, timeout: float = 5.0):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no stream message within {timeout}s (got {self.count} so far"
                                 f"{', ended: ' + str(self.error) if self.done.is_set() else ''})") from None

    def expect_none(self, wait: float = 0.3) -> None:
        """Nothing arrives within ``wait`` seconds (use after a sentinel, see helpers)."""
        try:
            m = self.messages.get(timeout=wait)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected stream message: {m}")

    def wait_count(self, n: int, timeout: float) -> None:
        with self._cond:
            self._want = n
            self._cond.wait_for(lambda: self.count >= n or self.done.is_set(), timeout)
            self._want = None
        assert self.count >= n, (f"stream got {self.count} of {n} messages within {timeout}s"
                                 f" (dropped_before total {self.dropped_before}; error {self.error})")

    def cancel(self) -> None:
        self.call.cancel()
        self.done.wait(5)
