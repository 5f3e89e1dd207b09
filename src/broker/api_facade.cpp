#include "broker/api_facade.hpp"

#include <memory>
#include <mutex>

#include "broker/client.hpp"
#include "broker/clock.hpp"
#include "broker/session.hpp"
#include "broker/shard.hpp"

namespace broker {

namespace {

// Closes the connection attached to `s` on the shard that owns the session,
// following the session if it moves meanwhile; `done` gets whether there was
// one to close.
void close_on_owner(Broker& b, std::shared_ptr<Session> s, std::shared_ptr<std::promise<bool>> done,
                    int hops) {
  const int owner = s->owner.load(std::memory_order_acquire);
  b.run_on_shard(owner, [&b, s, done, owner, hops] {
    if (s->owner.load(std::memory_order_acquire) != owner) {  // handed over meanwhile
      if (hops < 8) {
        close_on_owner(b, s, done, hops + 1);
      } else {
        done->set_value(false);
      }
      return;
    }
    Client* c = s->client;
    if (c == nullptr || c->closing()) {
      done->set_value(false);
      return;
    }
    c->close("disconnected through the gRPC API", true, mqtt::ReasonCode::AdministrativeAction);
    done->set_value(true);
  });
}

}  // namespace

std::future<std::vector<ConnectedClient>> ApiFacade::list_clients() {
  struct Gather {
    std::mutex mu;
    std::vector<ConnectedClient> clients;
    int left = 0;
    std::promise<std::vector<ConnectedClient>> done;
  };
  auto g = std::make_shared<Gather>();
  const int n = broker_.shard_count();
  g->left = n;
  std::future<std::vector<ConnectedClient>> all = g->done.get_future();
  for (int i = 0; i < n; ++i) {
    broker_.run_on_shard(i, [g, &shard = broker_.shard(i)] {
      // Connection times are on the shard's monotonic clock.
      const int64_t to_wall = wall_clock_ms() - monotonic_ms();
      std::vector<ConnectedClient> mine;
      for (const auto& [conn_id, c] : shard.clients()) {
        if (!c->connected() || c->closing()) continue;
        mine.push_back(
            {c->client_id(), c->remote(), c->protocol_level(), c->created_ms() + to_wall, {}});
      }
      std::lock_guard lock(g->mu);
      for (auto& d : mine) g->clients.push_back(std::move(d));
      if (--g->left == 0) g->done.set_value(std::move(g->clients));
    });
  }
  return all;
}

std::future<bool> ApiFacade::disconnect(std::string_view client_id) {
  auto done = std::make_shared<std::promise<bool>>();
  std::future<bool> closed = done->get_future();
  std::shared_ptr<Session> s = broker_.find_session(client_id);
  if (!s || !s->online.load(std::memory_order_relaxed)) {
    done->set_value(false);
    return closed;
  }
  close_on_owner(broker_, std::move(s), std::move(done), 0);
  return closed;
}

}  // namespace broker
