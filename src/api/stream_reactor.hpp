// The gRPC end of a stream: a callback-API write reactor over a Stream. No
// thread waits per stream; writes are started by whoever holds the stream's
// write token (see Stream), one at a time.
#pragma once

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>

#include "api/stream_hub.hpp"
#include "broker/message.hpp"
#include "mqtt/properties.hpp"

namespace api {

// Fills (or clears) the MQTT 5 fields of a stream message from `meta`.
template <class Proto>
void set_v5_metadata(const broker::MessageMeta& meta, Proto& out) {
  out.clear_user_properties();
  out.clear_content_type();
  out.clear_response_topic();
  out.clear_correlation_data();
  out.clear_payload_utf8();
  out.clear_message_expiry_interval();
  if (meta.has_expiry) out.set_message_expiry_interval(meta.expiry_interval_s);
  if (meta.properties.empty()) return;
  for (const mqtt::Property& p : mqtt::Properties(meta.properties)) {
    switch (p.id) {
      case mqtt::PropertyId::UserProperty: {
        auto* u = out.add_user_properties();
        u->set_key(p.str.data(), p.str.size());
        u->set_value(p.value.data(), p.value.size());
        break;
      }
      case mqtt::PropertyId::ContentType:
        out.set_content_type(p.str.data(), p.str.size());
        break;
      case mqtt::PropertyId::ResponseTopic:
        out.set_response_topic(p.str.data(), p.str.size());
        break;
      case mqtt::PropertyId::CorrelationData:
        out.set_correlation_data(p.str.data(), p.str.size());
        break;
      case mqtt::PropertyId::PayloadFormatIndicator:
        out.set_payload_utf8(p.number == 1);
        break;
      default:
        break;
    }
  }
}

// `Proto` is a generated message with the fields of rpcserver.PublishedPacket
// (device_id, topic, payload, qos, retain, received_unix_ms, dropped_before,
// and the MQTT 5 metadata fields).
template <class Proto>
class StreamReactor final : public grpc::ServerWriteReactor<Proto>, public StreamSink {
 public:
  StreamReactor(StreamHub& hub, StreamFilter filter, std::string peer, const char* method)
      : hub_(hub) {
    stream_ = hub_.open(std::move(filter), std::move(peer), this);
    const StreamFilter& f = stream_->filter();
    spdlog::info("gRPC stream {} opened by {}: {} (device {}, topic filter {})", stream_->id(),
                 stream_->peer(), method, f.device_id.empty() ? "any" : f.device_id,
                 f.topic_filter.empty() ? "any" : f.topic_filter);
    // Headers go out now, so a client knows the stream is registered (every
    // message published from here on is its) before the first message.
    this->StartSendInitialMetadata();
    stream_->run();  // releases the write token
  }

  void write(const broker::Message& m, uint64_t dropped_before, bool more) override {
    out_.set_device_id(m.origin());
    out_.set_topic(m.topic().data(), m.topic().size());
    out_.set_payload(m.payload().data(), m.payload().size());
    out_.set_qos(m.qos());
    out_.set_retain(m.retain());
    out_.set_received_unix_ms(m.received_ms());
    out_.set_dropped_before(dropped_before);
    set_v5_metadata(m.meta(), out_);
    grpc::WriteOptions options;
    if (more) options.set_buffer_hint();
    this->StartWrite(&out_, options);
  }
  void finish() override { this->Finish(grpc::Status::OK); }

  void OnWriteDone(bool ok) override { stream_->on_write_done(ok); }
  void OnCancel() override { stream_->cancel(); }
  void OnDone() override {
    hub_.close(stream_);
    const uint64_t dropped = stream_->dropped();
    if (dropped != 0) {
      spdlog::warn("gRPC stream {} ({}) ended: {} messages sent, {} dropped (it did not keep up)",
                   stream_->id(), stream_->peer(), stream_->sent(), dropped);
    } else {
      spdlog::info("gRPC stream {} ({}) ended: {} messages sent, none dropped", stream_->id(),
                   stream_->peer(), stream_->sent());
    }
    delete this;
  }

 private:
  StreamHub& hub_;
  std::shared_ptr<Stream> stream_;
  Proto out_;  // the message being written; reused
};

// A server stream that ends at once with `status` (a bad request).
template <class Proto>
class FailedStream final : public grpc::ServerWriteReactor<Proto> {
 public:
  explicit FailedStream(grpc::Status status) { this->Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace api
