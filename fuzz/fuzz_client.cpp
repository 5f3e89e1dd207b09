// libFuzzer target for broker::Client (src/broker/client.cpp): a one-shard
// broker and a few connections fed arbitrary bytes, cut into reads as the
// input says, exactly as the network layer feeds them (src/net/worker.cpp).
//
// Input: a sequence of commands. Each starts with one byte: the low two bits
// pick the connection (0-2), the next two the action:
//   0, 1  bytes: the next byte is a length n, then n bytes arrive in one read
//   2     time passes (the next byte, times 250 ms) and every client ticks
//   3     the peer hangs up (EOF)
// A connection that was destroyed is opened again on its next read, so one
// input may reuse a client id across connections (session takeover).
//
// Besides crashes and sanitizer reports it checks: on_bytes never claims more
// bytes than it was given; the OutQueue's byte count matches what gather()
// hands out and is zero once everything was consumed; what the server writes
// is whole MQTT packets; a closing client is never fed again and is written
// nothing more once it is closing (its session was detached).
//
// The Driver is the stand-in for the network layer: the only part that knows
// how Client reaches its connection (broker::Transport, which each Conn
// implements with the two lists a worker keeps).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "broker/broker.hpp"
#include "broker/client.hpp"
#include "broker/config.hpp"
#include "broker/shard.hpp"
#include "mqtt/codec.hpp"

namespace {

constexpr size_t kConnections = 3;
constexpr size_t kMaxPacket = 1 << 16;  // small, so that too-large packets are reachable

void check(bool ok) {
  if (!ok) std::abort();
}

// One connection as the network layer holds it.
struct Conn final : broker::Transport {
  std::unique_ptr<broker::Client> client;
  std::string partial;        // bytes read and not yet used by the client
  std::string written;        // bytes the server wrote, not yet a whole packet
  bool closing_seen = false;  // the client was closing when last drained
  bool write_queued = false;
  std::vector<Conn*>* pending = nullptr;  // the driver's lists
  std::vector<Conn*>* closing = nullptr;

  void wants_write() override {
    if (!write_queued) {
      write_queued = true;
      pending->push_back(this);
    }
  }
  void close_requested() override { closing->push_back(this); }
  void reset() {
    client.reset();
    partial.clear();
    written.clear();
    closing_seen = write_queued = false;
  }
};

class Driver {
 public:
  Driver() {
    broker::Config cfg;
    cfg.max_packet_size = kMaxPacket;
    broker_ = std::make_unique<broker::Broker>(cfg, std::vector<std::function<void()>>{[] {}});
    shard().set_now_ms(now_ms_);
  }
  ~Driver() {
    for (Conn& c : conns_) c.client.reset();  // before the broker
  }

  broker::Shard& shard() { return broker_->shard(0); }

  // One read of `bytes` on connection `i` (opened on first use).
  void read(size_t i, std::string_view bytes) {
    Conn& c = conns_[i];
    if (!c.client) {
      c.reset();
      c.pending = &pending_;
      c.closing = &closing_;
      c.client = std::make_unique<broker::Client>(shard(), c, ++next_conn_, "fuzz");
    }
    // The network layer stops reading a closing connection.
    if (c.client->closing()) return;
    c.partial.append(bytes);
    parse(c);
    end_of_turn();
  }

  // The peer hung up.
  void hang_up(size_t i) {
    Conn& c = conns_[i];
    if (!c.client || c.client->closing()) return;
    c.client->close("connection closed by peer");
    end_of_turn();
  }

  void advance(int64_t ms) {
    now_ms_ += ms;
    shard().set_now_ms(now_ms_);
    std::vector<broker::Client*> all;
    for (const auto& [id, client] : shard().clients()) all.push_back(client);
    for (broker::Client* client : all) client->tick(now_ms_);
    shard().expire_sessions();
    end_of_turn();
  }

 private:
  void parse(Conn& c) {
    const size_t used = c.client->on_bytes(c.partial);
    check(used <= c.partial.size());
    c.partial.erase(0, used);
  }

  // What the worker does at the end of each loop turn (Worker::end_of_turn).
  void end_of_turn() {
    for (int round = 0; round < 16; ++round) {
      shard().flush_outboxes();
      shard().drain_inbox();
      std::vector<Conn*> batch;
      batch.swap(pending_);
      for (Conn* c : batch) {
        c->write_queued = false;
        if (!c->client) continue;  // destroyed earlier in this turn
        // Packets that waited while a session was handed over.
        if (!c->partial.empty() && !c->client->closing()) parse(*c);
        drain(*c);
      }
      bool did_work = !batch.empty();
      batch.clear();
      batch.swap(closing_);
      for (Conn* c : batch) {
        check(c->client != nullptr && c->client->closing());
        drain(*c);
        c->client.reset();
        std::erase(pending_, c);
        c->write_queued = false;
      }
      did_work |= !batch.empty();
      if (!did_work && shard().outboxes_empty() && pending_.empty()) break;
    }
  }

  // Writes out everything queued, in two steps (a short write, then the rest).
  void drain(Conn& c) {
    broker::OutQueue& out = c.client->out();
    if (c.closing_seen) check(out.empty());  // nothing for a connection already closing
    std::string_view views[8];
    while (!out.empty()) {
      const size_t before = out.bytes();
      const size_t n = out.gather(views, 8);
      check(n >= 1 && n <= 8);
      std::string bytes;
      for (size_t k = 0; k < n; ++k) {
        check(!views[k].empty());
        bytes.append(views[k]);
      }
      check(bytes.size() <= before);
      const size_t part = (bytes.size() + 1) / 2;  // a short write
      c.written.append(bytes, 0, part);
      out.consume(part);
      check(out.bytes() == before - part);
    }
    check(out.bytes() == 0);
    check_packets(c);
    if (c.client->closing()) {
      c.closing_seen = true;
      check(c.written.empty());  // the last packet (DISCONNECT) went out whole
    }
  }

  // The server writes whole, well-framed packets only.
  void check_packets(Conn& c) {
    const uint8_t level =
        c.client->protocol_level() == mqtt::kLevel5 ? mqtt::kLevel5 : mqtt::kLevel311;
    size_t at = 0;
    while (at < c.written.size()) {
      mqtt::Frame f;
      mqtt::DecodeResult r =
          mqtt::read_frame(std::string_view(c.written).substr(at), SIZE_MAX, f, level);
      if (r.status == mqtt::DecodeStatus::NeedMore) break;
      check(r.ok());
      at += f.size;
    }
    c.written.erase(0, at);
    check(c.written.empty());  // drained completely: no half packet left
  }

  std::unique_ptr<broker::Broker> broker_;
  std::array<Conn, kConnections> conns_;
  std::vector<Conn*> pending_;  // connections with output (Transport::wants_write)
  std::vector<Conn*> closing_;  // connections to end (Transport::close_requested)
  uint64_t next_conn_ = 0;
  int64_t now_ms_ = 1'000'000;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Driver d;
  size_t at = 0;
  while (at < size) {
    const uint8_t cmd = data[at++];
    const size_t conn = (cmd & 3u) % kConnections;
    switch ((cmd >> 2) & 3u) {
      case 0:
      case 1: {
        if (at >= size) break;
        const size_t want = data[at++];
        const size_t n = std::min(want, size - at);
        d.read(conn, std::string_view(reinterpret_cast<const char*>(data + at), n));
        at += n;
        break;
      }
      case 2:
        if (at < size) d.advance(int64_t{data[at++]} * 250);
        break;
      case 3:
        d.hang_up(conn);
        break;
    }
  }
  return 0;
}
