// The /metrics page: every number the server keeps, in the Prometheus text
// format. Gathering (app) and formatting (here) are apart so that the page can
// be tested without a server.
#pragma once

#include <cstdint>
#include <string>

#include "broker/broker.hpp"
#include "ops/process_stats.hpp"

namespace ops {

struct MetricsInput {
  broker::StatsSnapshot broker;
  bool store_up = true;
  uint64_t store_pending = 0;
  uint64_t store_write_errors = 0;
  uint64_t grpc_streams = 0;
  uint64_t grpc_stream_dropped = 0;
  ProcessStats process;
};

std::string render_metrics(const MetricsInput& in);

}  // namespace ops
