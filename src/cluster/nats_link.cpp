#include "cluster/nats_link.hpp"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

namespace cluster {

namespace {
util::Error nats_error(std::string_view what, natsStatus s) {
  const char* last = nats_GetLastError(nullptr);
  return util::errorf("{}: {}{}{}", what, natsStatus_GetText(s), last && *last ? ": " : "",
                      last ? last : "");
}

std::string connected_url(natsConnection* nc) {
  char buf[256] = {0};
  if (natsConnection_GetConnectedUrl(nc, buf, sizeof buf) != NATS_OK) return "?";
  return buf;
}
}  // namespace

Link::Link(std::vector<std::string> servers, std::string name, Callbacks callbacks, bool no_echo,
           bool logs)
    : servers_(std::move(servers)),
      name_(std::move(name)),
      callbacks_(std::move(callbacks)),
      no_echo_(no_echo),
      info_(logs ? spdlog::level::info : spdlog::level::debug),
      warn_(logs ? spdlog::level::warn : spdlog::level::debug) {
  for (const auto& s : servers_) servers_text_ += (servers_text_.empty() ? "" : ",") + s;
}

Link::~Link() {
  stop();
}

util::Status Link::start() {
  // One delivery thread for every subscription: one FIFO, arrival order kept.
  nats_SetMessageDeliveryPoolSize(1);
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s != NATS_OK) return nats_error("cluster: NATS options", s);
  std::vector<const char*> urls;
  for (const auto& u : servers_) urls.push_back(u.c_str());
  s = natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size()));
  if (s == NATS_OK) s = natsOptions_SetName(opts, name_.c_str());
  // Our own messages are routed locally already: never back to us.
  if (s == NATS_OK) s = natsOptions_SetNoEcho(opts, no_echo_);
  if (s == NATS_OK) s = natsOptions_UseGlobalMessageDelivery(opts, true);
  // Forever, every second: the broker works without NATS meanwhile.
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, 1000);
  if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(opts, true, on_connected, this);
  if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, on_disconnected, this);
  if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, on_reconnected, this);
  if (s != NATS_OK) {
    natsOptions_Destroy(opts);
    return nats_error("cluster: NATS options", s);
  }
  s = natsConnection_Connect(&nc_, opts);
  natsOptions_Destroy(opts);
  if (s == NATS_NOT_YET_CONNECTED) {
    spdlog::log(warn_,
                "cluster: cannot reach NATS at {} yet; retrying every second (local delivery "
                "goes on)",
                servers_text_);
  } else if (s != NATS_OK) {
    return nats_error("cluster: cannot connect to NATS at " + servers_text_, s);
  } else {
    on_connected(nc_, this);
  }
  s = natsConnection_JetStream(&js_, nc_, nullptr);
  if (s != NATS_OK) return nats_error("cluster: JetStream context", s);
  return {};
}

void Link::stop() {
  if (stopping_.exchange(true) || !nc_) return;
  connected_.store(false, std::memory_order_release);
  if (js_) jsCtx_Destroy(js_);
  js_ = nullptr;
  natsConnection_Close(nc_);
  natsConnection_Destroy(nc_);
  nc_ = nullptr;
}

void Link::on_connected(natsConnection* nc, void* closure) {
  auto* self = static_cast<Link*>(closure);
  if (self->connected_.exchange(true, std::memory_order_acq_rel)) return;
  spdlog::log(self->info_, "cluster: node {} connected to {}", self->name_, connected_url(nc));
  if (self->callbacks_.connected) self->callbacks_.connected();
}

void Link::on_disconnected(natsConnection*, void* closure) {
  auto* self = static_cast<Link*>(closure);
  if (self->stopping_.load()) return;
  if (!self->connected_.exchange(false, std::memory_order_acq_rel)) return;
  spdlog::log(self->warn_,
              "cluster: NATS link lost; retrying every second, local delivery goes on");
  if (self->callbacks_.lost) self->callbacks_.lost();
}

void Link::on_reconnected(natsConnection* nc, void* closure) {
  auto* self = static_cast<Link*>(closure);
  if (self->connected_.exchange(true, std::memory_order_acq_rel)) return;
  spdlog::log(self->info_, "cluster: NATS link restored ({})", connected_url(nc));
  if (self->callbacks_.connected) self->callbacks_.connected();
}

void Link::publish(const std::string& subject, std::string_view data) {
  if (!nc_) return;
  natsConnection_Publish(nc_, subject.c_str(), data.data(), static_cast<int>(data.size()));
}

void Link::on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  const auto* handler = static_cast<const Handler*>(closure);
  const char* reply = natsMsg_GetReply(msg);
  Received r{
      natsMsg_GetSubject(msg), reply ? std::string_view(reply) : std::string_view(),
      std::string_view(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)))};
  (*handler)(r);
  natsMsg_Destroy(msg);
}

util::Result<Link::Subscription> Link::subscribe(const std::string& subject, const Handler* handler,
                                                 const std::string& queue) {
  natsSubscription* sub = nullptr;
  void* closure = const_cast<Handler*>(handler);
  natsStatus s = queue.empty()
                     ? natsConnection_Subscribe(&sub, nc_, subject.c_str(), on_message, closure)
                     : natsConnection_QueueSubscribe(&sub, nc_, subject.c_str(), queue.c_str(),
                                                     on_message, closure);
  if (s != NATS_OK)
    return nats_error("cluster: subscribe " + subject + " (" + name_ +
                          (nc_ ? "" : ", no connection") +
                          (queue.empty() ? "" : ", queue " + queue) + ")",
                      s);
  // A burst must not cut us as a slow consumer on our side: no count limit,
  // 256 MiB of pending bytes per subscription.
  natsSubscription_SetPendingLimits(sub, -1, 256 << 20);
  return sub;
}

void Link::unsubscribe(Subscription sub) {
  if (!sub) return;
  natsSubscription_Unsubscribe(sub);
  natsSubscription_Destroy(sub);
}

util::Result<std::string> Link::request(const std::string& subject, std::string_view data,
                                        int timeout_ms) {
  natsMsg* reply = nullptr;
  natsStatus s = natsConnection_Request(&reply, nc_, subject.c_str(), data.data(),
                                        static_cast<int>(data.size()), timeout_ms);
  if (s != NATS_OK) return util::Error{natsStatus_GetText(s)};
  std::string out(natsMsg_GetData(reply), static_cast<size_t>(natsMsg_GetDataLength(reply)));
  natsMsg_Destroy(reply);
  return out;
}

std::vector<std::string> Link::gather(const std::string& subject, std::string_view data,
                                      int wait_ms) {
  std::vector<std::string> out;
  natsInbox* inbox = nullptr;
  if (natsInbox_Create(&inbox) != NATS_OK) return out;
  natsSubscription* sub = nullptr;
  if (natsConnection_SubscribeSync(&sub, nc_, inbox) == NATS_OK &&
      natsConnection_PublishRequest(nc_, subject.c_str(), inbox, data.data(),
                                    static_cast<int>(data.size())) == NATS_OK) {
    const int64_t end = nats_Now() + wait_ms;
    for (int64_t left = wait_ms; left > 0; left = end - nats_Now()) {
      natsMsg* m = nullptr;
      if (natsSubscription_NextMsg(&m, sub, left) != NATS_OK) break;
      out.emplace_back(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m)));
      natsMsg_Destroy(m);
    }
  }
  if (sub) {
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
  }
  natsInbox_Destroy(inbox);
  return out;
}

util::Status Link::flush(int timeout_ms) {
  natsStatus s = natsConnection_FlushTimeout(nc_, timeout_ms);
  if (s != NATS_OK) return nats_error("cluster: flush", s);
  return {};
}

}  // namespace cluster
