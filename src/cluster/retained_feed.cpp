#include "cluster/retained_feed.hpp"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include "broker/clock.hpp"
#include "cluster/envelope.hpp"
#include "cluster/subject.hpp"

namespace cluster {

namespace {
constexpr const char* kStream = "MQTT_RETAINED";

util::Error js_error(std::string_view what, natsStatus s, jsErrCode code) {
  const char* last = nats_GetLastError(nullptr);
  return util::errorf("cluster: {}: {} (JetStream error {}){}{}", what, natsStatus_GetText(s),
                      static_cast<int>(code), last && *last ? ": " : "", last ? last : "");
}
}  // namespace

RetainedFeed::~RetainedFeed() {
  close();
}

util::Status RetainedFeed::open() {
  if (sub_) return {};
  jsCtx* js = link_.jetstream();
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = kStream;
  const char* subjects[] = {"r.>"};
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.MaxMsgsPerSubject = 1;  // the newest per topic is the retained set
  cfg.Storage = js_FileStorage;
  cfg.Replicas = replicas_;
  jsStreamInfo* si = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_AddStream(&si, js, &cfg, nullptr, &code);
  if (s != NATS_OK) {
    // Made by another node already (or by an earlier run of this one).
    s = js_GetStreamInfo(&si, js, kStream, nullptr, &code);
    if (s != NATS_OK) return js_error("the retained-message stream", s, code);
  }
  jsStreamInfo_Destroy(si);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = kStream;
  so.Ordered = true;  // no acks, no gaps: resubscribes where it left off
  so.Config.DeliverPolicy = js_DeliverLastPerSubject;
  s = js_Subscribe(&sub_, js, "r.>", on_message, this, nullptr, &so, &code);
  if (s != NATS_OK) {
    sub_ = nullptr;
    return js_error("following the retained-message stream", s, code);
  }
  return {};
}

void RetainedFeed::close() {
  if (!sub_) return;
  natsSubscription_Unsubscribe(sub_);
  natsSubscription_Destroy(sub_);
  sub_ = nullptr;
}

void RetainedFeed::publish(std::string_view topic, std::string_view envelope) {
  thread_local std::string subject;
  topic_subject(topic, subject);
  if (subject.size() + 2 > kMaxSubjectBytes) return;  // counted by the forward path
  subject.insert(0, "r.");
  link_.publish(subject, envelope);
}

void RetainedFeed::on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto* self = static_cast<RetainedFeed*>(closure);
  std::string_view data(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
  auto e = decode_envelope(data);
  if (e) {
    self->broker_.retained_from_peer(to_message(e.value(), broker::wall_clock_ms()));
  } else {
    spdlog::warn("cluster: a retained-feed message that is not ours was ignored ({})",
                 e.error().message);
  }
  natsMsg_Destroy(msg);
}

}  // namespace cluster
