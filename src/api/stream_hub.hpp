// Fan-out of published messages to gRPC server streams.
//
// The hub is a broker::PublishObserver: MQTT workers call it for every device
// PUBLISH, so that side must be cheap and must never wait on a stream. Each
// stream has its own bounded queue of MessagePtr (shared with the broker, no
// payload copy); a stream whose queue is full drops the newest message and
// counts it, and the count rides on the next message the stream does get
// (`dropped_before`). One stream's writer is driven by gRPC's callback API:
// no thread waits per stream. See docs/grpc.md for the whole design.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "broker/broker.hpp"
#include "broker/message.hpp"

namespace api {

// The writing end of one stream: a gRPC reactor. Only the holder of the
// stream's write token calls it (see Stream), so calls never overlap.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  // Starts writing `msg`; the sink calls Stream::on_write_done when gRPC is done
  // with it. Must not keep a reference to `msg` beyond the call. `more`: other
  // messages are ready to follow at once (gRPC may hold this one back to send
  // them together).
  virtual void write(const broker::Message& msg, uint64_t dropped_before, bool more) = 0;
  // Ends the RPC (it was cancelled, or the write failed).
  virtual void finish() = 0;
};

// Which messages a stream wants.
struct StreamFilter {
  std::string device_id;      // empty: every device
  std::string topic_filter;   // empty: every topic; else a valid MQTT topic filter
  bool api_messages = false;  // also the messages published through the API
};

class StreamHub;

// One stream's queue and write state, shared by the hub's snapshots (the
// producers: MQTT workers) and the stream's reactor (the consumer).
//
// Write token: at most one party at a time may call the sink. The token is
// held by whoever runs run(); it passes to the gRPC thread that reports the
// write done; when run() finds nothing to send it parks the token (`idle_`),
// and the first producer that queues a message afterwards takes it and hands
// the stream to the hub's dispatcher thread (never calling gRPC from an MQTT
// worker). Finish happens only under the token, so the reactor outlives every
// call into it.
class Stream {
 public:
  Stream(StreamHub& hub, uint64_t id, StreamFilter filter, size_t capacity, std::string peer,
         StreamSink* sink);
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  uint64_t id() const { return id_; }
  const StreamFilter& filter() const { return filter_; }
  const std::string& peer() const { return peer_; }

  // Producers (any thread): queue `msg`, or count it as dropped when the queue
  // is full. Holds a short lock; never calls gRPC.
  void offer(const broker::MessagePtr& msg);

  // Consumer side. The creator holds the token at first and releases it with
  // run(); the reactor calls on_write_done and cancel.
  void run();
  void on_write_done(bool ok);
  void cancel();

  uint64_t sent() const { return sent_.load(std::memory_order_relaxed); }
  uint64_t dropped() const;

 private:
  struct Item {
    broker::MessagePtr msg;
    uint64_t dropped_before = 0;
  };
  void end();

  StreamHub& hub_;
  const uint64_t id_;
  const StreamFilter filter_;
  const size_t capacity_;
  const std::string peer_;
  StreamSink* const sink_;

  mutable std::mutex mu_;
  std::vector<Item> pending_;     // queued by producers, oldest first
  bool idle_ = false;             // the token is parked: the next offer takes it
  bool finished_ = false;         // the sink was finished: queue nothing more
  uint64_t dropped_pending_ = 0;  // drops not yet reported on a queued message
  uint64_t dropped_total_ = 0;
  std::atomic<bool> cancelled_{false};  // written under mu_
  std::atomic<size_t> in_batch_{0};     // taken by the consumer, not yet written

  // Token holder only.
  std::vector<Item> batch_;
  size_t next_ = 0;
  std::atomic<uint64_t> sent_{0};
};

class StreamHub final : public broker::PublishObserver {
 public:
  // `queue_capacity`: messages one stream may have waiting before it drops.
  explicit StreamHub(size_t queue_capacity);
  ~StreamHub() override;
  StreamHub(const StreamHub&) = delete;
  StreamHub& operator=(const StreamHub&) = delete;

  // MQTT workers: a device published `msg`.
  void on_device_publish(const broker::MessagePtr& msg) override;
  // API threads: `msg` was published through the API (streams with api_messages).
  void on_api_publish(const broker::MessagePtr& msg);
  // The cluster's thread: another node's device or API published `msg`.
  void on_peer_publish(const broker::MessagePtr& msg, broker::Source from) override;
  // Told (under the registry lock, so in order) when the first stream opens
  // and the last one closes: a cluster node then takes every node's messages.
  void set_on_active(std::function<void(bool)> fn) { on_active_ = std::move(fn); }

  // Registers a stream; from now on matching messages are queued for it. The
  // caller holds its write token and must call run() once set up.
  std::shared_ptr<Stream> open(StreamFilter filter, std::string peer, StreamSink* sink);
  // Unregisters a stream whose RPC is done.
  void close(const std::shared_ptr<Stream>& s);

  // A producer took a parked stream's token: run it on the dispatcher thread.
  void schedule(Stream* s);
  void note_drop(Stream& s, uint64_t dropped_total);

  // Stops the dispatcher once every scheduled stream has run. Call after the
  // gRPC server has shut down (no stream left).
  void stop();

  size_t queue_capacity() const { return capacity_; }
  size_t stream_count() const;
  uint64_t dropped_total() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  struct Snapshot {
    std::vector<std::shared_ptr<Stream>> all_devices;  // no device restriction
    std::unordered_map<std::string, std::vector<std::shared_ptr<Stream>>> by_device;
    std::vector<std::shared_ptr<Stream>> api;  // want API messages
    size_t size = 0;
  };
  // This thread's view of the registry (re-read only when it changed).
  const Snapshot& current();
  void publish_locked_snapshot();  // rebuilds snapshot_ from streams_; holds mu_
  void dispatch_loop();

  const size_t capacity_;

  // Registry. Readers never take mu_ unless the registry changed since their
  // last look: the generation is one atomic load on the hot path.
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Stream>> streams_;
  std::shared_ptr<const Snapshot> snapshot_;
  std::atomic<uint64_t> generation_;
  uint64_t next_id_ = 1;
  std::atomic<uint64_t> dropped_{0};
  std::function<void(bool)> on_active_;

  // Dispatcher: runs streams whose token a producer took.
  std::mutex ready_mu_;
  std::condition_variable ready_cv_;
  std::vector<Stream*> ready_;
  bool dispatcher_waiting_ = false;
  bool stopping_ = false;
  std::thread dispatcher_;
};

}  // namespace api
