"""A real browser as a WebSocket client: headless Chromium (Debian's) loads a page served by the
test; the page uses mqtt.js (the bundle from npm, fetched by scripts/fetch-mqttjs.sh) to connect
over ws:// or wss://, subscribe and publish. A paho client over plain TCP talks to it, and the
page reports what it shows (its text) back to the test's HTTP server."""

from __future__ import annotations

import http.server
import json
import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from helpers import Client, free_port, unique_id

pytestmark = pytest.mark.ours_only(reason="WebSocket listeners of our binary")

REPO = Path(__file__).resolve().parents[2]

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>mqtt.js over WebSocket</title>
<script src="/mqtt.min.js"></script></head>
<body><p id="status">loading</p>
<script>
const q = new URLSearchParams(location.search);
const topic = q.get("topic");
const status = document.getElementById("status");
function show(text) {
  status.textContent = text;
  fetch("/report", {method: "POST", body: document.body.innerText});
}
const client = mqtt.connect(q.get("url"), {clientId: q.get("id"), protocolVersion: 4,
                                           reconnectPeriod: 0, rejectUnauthorized: false});
client.on("connect", () => {
  show("connected");
  client.subscribe(topic + "/to-browser", {qos: 1}, (err) => {
    if (err) { show("subscribe failed: " + err); return; }
    client.publish(topic + "/from-browser", "ready", {qos: 1});
  });
});
client.on("message", (t, payload) => {
  show("received " + payload.toString() + " on " + t);
  client.publish(topic + "/from-browser", "echo: " + payload.toString(), {qos: 1});
});
client.on("error", (e) => show("error: " + e.message));
</script></body></html>
"""


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Chromium is missing: scripts/install-deps.sh --test installs Debian's chromium"
    return path


@pytest.fixture(scope="module")
def mqttjs() -> Path:
    js = os.environ.get("MQTTJS_BUNDLE")
    if not js:
        js = subprocess.run([str(REPO / "scripts" / "fetch-mqttjs.sh")], check=True, capture_output=True,
                            text=True, timeout=300).stdout.strip()
    assert Path(js).is_file(), js
    return Path(js)


class PageServer:
    """Serves the page and mqtt.min.js on 127.0.0.1; collects what the page reports."""

    def __init__(self, bundle: Path):
        self.reports: "queue.Queue[str]" = queue.Queue()
        outer = self
        script = bundle.read_bytes()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?")[0]
                body, kind = ((PAGE.encode(), "text/html") if path == "/index.html"
                              else (script, "application/javascript") if path == "/mqtt.min.js"
                              else (None, None))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                outer.reports.put(self.rfile.read(n).decode())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait_report(self, needle: str, timeout: float = 30) -> str:
        seen = []
        while True:
            try:
                text = self.reports.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"the page never showed {needle!r}; it showed {seen}") from None
            seen.append(text.strip())
            if needle in text:
                return text

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_mqttjs_in_headless_chromium(server_factory, dev_cert, mqttjs, tmp_path, scheme):
    cert, key = dev_cert
    ws_port, wss_port = free_port(), free_port()
    tcp = server_factory("--ws-addr", f"127.0.0.1:{ws_port}", "--wss-addr", f"127.0.0.1:{wss_port}",
                         "--cert", str(cert), "--key", str(key))
    topic = unique_id("browser")
    device = Client(tcp).connect()
    device.subscribe(f"{topic}/from-browser", qos=1)
    pages = PageServer(mqttjs)
    port = ws_port if scheme == "ws" else wss_port
    url = (f"http://127.0.0.1:{pages.port}/index.html?url={scheme}://127.0.0.1:{port}/mqtt"
           f"&topic={topic}&id={unique_id('chromium')}")
    mark = tcp.log.mark()
    browser = subprocess.Popen(
        [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-extensions", "--disable-background-networking", "--ignore-certificate-errors",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--remote-debugging-port=0", url],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "chromium.log", "wb"))
    try:
        pages.wait_report("connected", timeout=60)
        device.expect_message(f"{topic}/from-browser", b"ready", timeout=30)
        # The broker saw a WebSocket client (Chromium's own WebSocket stack, mqtt.js on top).
        tcp.log.wait_for(r"connected from 127\.0\.0\.1:\d+ \(MQTT 3\.1\.1", since=mark)
        device.publish(f"{topic}/to-browser", b"hello from a device", qos=1)
        shown = pages.wait_report("received hello from a device")
        assert f"on {topic}/to-browser" in shown
        device.expect_message(f"{topic}/from-browser", b"echo: hello from a device", timeout=30)
    finally:
        browser.kill()
        browser.wait(timeout=10)
        pages.close()
        device.close()
