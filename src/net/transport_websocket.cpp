// The WebSocket transport of the worker (ws and wss listeners): the HTTP
// upgrade, then MQTT bytes in binary frames both ways (RFC 6455; MQTT 3.1.1
// and 5.0 section 6), layered over the connection's StreamIo (plain or TLS)
// through Worker::write_views. Framing and the handshake themselves are in
// src/ws/; this file moves their bytes between the stream and the Client.
#include <spdlog/spdlog.h>

#include <cstring>

#include "broker/client.hpp"
#include "net/connection.hpp"
#include "net/listeners.hpp"
#include "net/worker.hpp"
#include "ws/handshake.hpp"

namespace net {

size_t Worker::websocket_input(Connection& c, char* buf, size_t n) {
  WebSocketState& ws = *c.ws;
  if (ws.close_sent) return 0;  // refused or closing: what follows is not read
  size_t len = n;
  if (!ws.upgraded) {
    ws.request.append(buf, n);
    ws::Upgrade u = ws::parse_upgrade(ws.request, c.listener->config().ws_path);
    if (u.state == ws::Upgrade::State::NeedMore) return 0;
    ws.prefix += u.response;
    if (u.state == ws::Upgrade::State::Refused) {
      spdlog::info("WebSocket handshake from {} refused with HTTP {}: {}", c.client->remote(),
                   u.status, u.reason);
      ws.close_sent = true;
      flush_websocket(c);
      ws.close_reason = "WebSocket handshake refused: " + u.reason;
      std::string().swap(ws.request);
      return 0;
    }
    ws.upgraded = true;
    spdlog::debug("WebSocket upgrade from {} (subprotocol '{}')", c.client->remote(),
                  u.subprotocol);
    // The request ended in this read, so what follows it is here too.
    len = ws.request.size() - u.consumed;
    if (len > n) len = n;
    std::memmove(buf, ws.request.data() + ws.request.size() - len, len);
    std::string().swap(ws.request);
  }
  ws::FrameDecoder::Output out;
  ws.decoder.decode(buf, len, out);
  if (!out.replies.empty()) ws.control += out.replies;
  if (out.closed) {
    ws.close_reason = out.error.empty()
                          ? "WebSocket closed by peer (code " + std::to_string(out.peer_code) + ")"
                          : "WebSocket protocol error: " + out.error;
    if (!out.error.empty()) {
      spdlog::info("closing WebSocket connection {}: {}", c.client->remote(), out.error);
    }
  }
  // After our close frame (queued behind the data frame being written, if
  // any) nothing more is sent.
  if (out.closed) ws.close_sent = true;
  if (!ws.prefix.empty() || !ws.control.empty()) flush_websocket(c);
  return out.data;
}

void Worker::flush_websocket(Connection& c) {
  WebSocketState& ws = *c.ws;
  broker::OutQueue& out = c.client->out();
  std::string_view views[kMaxIov];
  for (;;) {
    if (ws.frame_left == 0) {
      // Between data frames: control frames go first, then a new data frame
      // of everything queued.
      if (!ws.control.empty()) {
        ws.prefix += ws.control;
        ws.control.clear();
      }
      if (ws.upgraded && !ws.close_sent && !out.empty()) {
        char header[ws::kMaxFrameHeader];
        ws.prefix.append(header, ws::frame_header(ws::kBinary, out.bytes(), header));
        ws.frame_left = out.bytes();
      }
    }
    if (ws.prefix.empty() && ws.frame_left == 0) return;
    size_t n = 0;
    if (!ws.prefix.empty()) views[n++] = ws.prefix;
    if (ws.frame_left > 0) {
      // The queue's bytes, cut where the data frame being written ends.
      const size_t first = n;
      n += out.gather(views + first, kMaxIov - first);
      uint64_t room = ws.frame_left;
      for (size_t i = first; i < n; ++i) {
        if (room == 0) {
          n = i;
          break;
        }
        views[i] = views[i].substr(0, static_cast<size_t>(room));
        room -= views[i].size();
      }
    }
    ssize_t w = write_views(c, views, n);
    if (w <= 0) return;
    auto written = static_cast<size_t>(w);
    size_t from_prefix = std::min(written, ws.prefix.size());
    ws.prefix.erase(0, from_prefix);
    written -= from_prefix;
    if (written > 0) {
      out.consume(written);
      ws.frame_left -= written;
    }
  }
}

void Worker::websocket_goodbye(Connection& c) {
  WebSocketState& ws = *c.ws;
  if (!ws.upgraded || ws.close_sent) return;
  flush_websocket(c);  // what is queued first, e.g. an MQTT 5 DISCONNECT
  // A close frame cannot cut into a data frame that is half written, and
  // there is no waiting for a full socket now.
  if (ws.frame_left > 0 || !ws.prefix.empty() || !c.client->out().empty()) return;
  ws.close_sent = true;
  ws.control += ws::close_frame(ws::kNormal);
  flush_websocket(c);
}

}  // namespace net
