// How a node joins a cluster (--cluster, --node-id; docs/cluster.md).
#pragma once

#include <string>
#include <vector>

namespace cluster {

struct Options {
  std::vector<std::string> servers;  // nats://HOST:PORT, the local NATS server first
  std::string node_id;               // unique in the cluster; a NATS subject token
  // The store is shared by the nodes (Cassandra, -d): a session handed to
  // another node keeps its stored row, which the new holder overwrites.
  bool shared_store = false;
  int replicas = 1;  // JetStream replicas of the cluster's bucket and stream
};

}  // namespace cluster
