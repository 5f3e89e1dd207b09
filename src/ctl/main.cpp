// mqtt-server-ctl: a command-line client of mqtt-server's gRPC API.
//
//   mqtt-server-ctl [--addr HOST:PORT] [--ca FILE] <command> ...
//     stream [--device ID] [--topic FILTER] [--count N]
//     publish [--device ID] --topic T --message M [--qos N] [--retain]
//     devices
//     disconnect ID
//     latest --device ID --topic T
//
// Exit codes: 0 done, 1 the server answered an error (or could not be
// reached), 2 bad command line.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "mqttserver/v1/broker.grpc.pb.h"
#include "published_packet.grpc.pb.h"
#include "util/result.hpp"

namespace {

namespace v1 = mqttserver::v1;

const char* code_name(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "ERROR";
  }
}

int fail(const grpc::Status& s) {
  std::fprintf(stderr, "mqtt-server-ctl: %s: %s\n", code_name(s.error_code()),
               s.error_message().c_str());
  return 1;
}

std::string iso_time(int64_t unix_ms) {
  const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(unix_ms % 1000));
  return out;
}

// Printable payloads as they are; anything else as hex, so one message stays one line.
std::string show(const std::string& payload) {
  bool printable = true;
  for (unsigned char c : payload) printable &= (c >= 0x20 && c != 0x7f) || c >= 0x80;
  if (printable) return payload;
  std::string hex = "0x";
  static const char digits[] = "0123456789abcdef";
  for (unsigned char c : payload) {
    hex.push_back(digits[c >> 4]);
    hex.push_back(digits[c & 15]);
  }
  return hex;
}

struct Common {
  std::string addr = "[::1]:10000";
  std::string ca_file;  // set: TLS, trusting this CA
  std::string token;    // set: sent as "authorization: Bearer <token>"
  double timeout_s = 10;
};

util::Result<std::shared_ptr<grpc::Channel>> make_channel(const Common& c) {
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (c.ca_file.empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    std::ifstream in(c.ca_file, std::ios::binary);
    if (!in) return util::Error{"cannot read --ca " + c.ca_file};
    std::ostringstream ss;
    ss << in.rdbuf();
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ss.str();
    creds = grpc::SslCredentials(ssl);
  }
  return grpc::CreateChannel(c.addr, creds);
}

// A unary call waits up to --timeout, also for the server to become reachable
// (a server that is starting, or restarting, is not an error yet).
void add_token(grpc::ClientContext& ctx, const Common& c) {
  if (!c.token.empty()) ctx.AddMetadata("authorization", "Bearer " + c.token);
}

void set_deadline(grpc::ClientContext& ctx, const Common& c) {
  add_token(ctx, c);
  ctx.set_wait_for_ready(true);
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(c.timeout_s * 1000)));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Command-line client of mqtt-server's gRPC API.", "mqtt-server-ctl"};
  cli.set_version_flag("-V,--version", std::string("mqtt-server-ctl ") + MQTT_SERVER_VERSION);
  cli.require_subcommand(1);
  Common common;
  cli.add_option("--token", common.token,
                 "bearer token for a server started with --grpc-token-file (or set "
                 "MQTT_SERVER_TOKEN)")
      ->envname("MQTT_SERVER_TOKEN");
  cli.add_option("--addr", common.addr, "the server's gRPC address, HOST:PORT")
      ->default_val(common.addr);
  cli.add_option("--ca", common.ca_file, "use TLS, trusting this CA certificate (PEM)")
      ->type_name("<FILEPATH>");
  cli.add_option("--timeout", common.timeout_s, "seconds to wait for an answer (not for stream)")
      ->default_val(common.timeout_s);

  std::string device, topic, message;
  unsigned qos = 0;
  bool retain = false;
  uint64_t count = 0;

  auto* stream = cli.add_subcommand(
      "stream", "print every message devices publish, one per line: DEVICE TOPIC PAYLOAD");
  stream->add_option("--device", device, "only this device's messages");
  stream->add_option("--topic", topic, "only topics matching this MQTT filter ('+', '#')");
  stream->add_option("--count", count, "stop after this many messages");

  auto* publish = cli.add_subcommand(
      "publish", "send a message to one device (--device), or to every subscriber of the topic");
  publish->add_option("--device", device, "the device's MQTT client id");
  publish->add_option("--topic", topic, "topic (with --device: defaults to the device id)");
  publish->add_option("--message,-m", message, "payload")->required();
  publish->add_option("--qos", qos, "QoS 0, 1 or 2")->default_val(0)->check(CLI::Range(0, 2));
  publish->add_flag("--retain", retain, "set the retain flag");

  auto* devices = cli.add_subcommand("devices", "list the connected devices");

  std::string disconnect_id;
  auto* disconnect = cli.add_subcommand("disconnect", "close a device's connection");
  disconnect->add_option("device", disconnect_id, "the device's MQTT client id")->required();

  auto* latest =
      cli.add_subcommand("latest", "print the newest payload a device published on a topic");
  latest->add_option("--device", device, "the device's MQTT client id")->required();
  latest->add_option("--topic", topic, "the topic")->required();

  try {
    cli.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return cli.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return cli.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "mqtt-server-ctl: %s (see --help)\n", e.what());
    return 2;
  }

  auto made = make_channel(common);
  if (!made) {
    std::fprintf(stderr, "mqtt-server-ctl: %s\n", made.error().message.c_str());
    return 2;
  }
  std::shared_ptr<grpc::Channel> channel = std::move(made).value();
  auto original = rpcserver::PublishedPacketService::NewStub(channel);
  auto broker = v1::BrokerService::NewStub(channel);

  if (*stream) {
    rpcserver::PublishedPacketRequest req;
    if (!device.empty()) req.set_device_id(device);
    if (!topic.empty()) req.set_topic_filter(topic);
    grpc::ClientContext ctx;
    add_token(ctx, common);
    auto reader = original->StreamPublishedPayload(&ctx, req);
    rpcserver::PublishedPacket p;
    uint64_t seen = 0;
    while ((count == 0 || seen < count) && reader->Read(&p)) {
      ++seen;
      if (p.dropped_before() != 0) {
        std::fprintf(stderr,
                     "mqtt-server-ctl: %llu messages were dropped before this one "
                     "(this stream did not keep up)\n",
                     static_cast<unsigned long long>(p.dropped_before()));
      }
      std::printf("%s %s %s\n", p.device_id().c_str(), p.topic().c_str(),
                  show(p.payload()).c_str());
      std::fflush(stdout);
    }
    if (count != 0 && seen >= count) {
      ctx.TryCancel();
      return 0;
    }
    grpc::Status s = reader->Finish();
    return s.ok() ? 0 : fail(s);
  }

  if (*publish) {
    grpc::ClientContext ctx;
    set_deadline(ctx, common);
    if (!device.empty()) {
      rpcserver::PublishRequest req;
      req.set_device_id(device);
      req.set_topic(topic);
      req.set_payload(message);
      req.set_qos(qos);
      req.set_retain(retain);
      rpcserver::PublishResponse resp;
      grpc::Status s = original->PublishPayloadToDevice(&ctx, req, &resp);
      if (!s.ok()) return fail(s);
      std::printf("%s\n", resp.code().c_str());
      return 0;
    }
    if (topic.empty()) {
      std::fprintf(stderr, "mqtt-server-ctl: publish needs --device or --topic (see --help)\n");
      return 2;
    }
    v1::PublishRequest req;
    req.set_topic(topic);
    req.set_payload(message);
    req.set_qos(qos);
    req.set_retain(retain);
    v1::PublishResponse resp;
    grpc::Status s = broker->Publish(&ctx, req, &resp);
    if (!s.ok()) return fail(s);
    std::printf("Published\n");
    return 0;
  }

  if (*devices) {
    grpc::ClientContext ctx;
    set_deadline(ctx, common);
    v1::ListDevicesResponse resp;
    grpc::Status s = broker->ListDevices(&ctx, v1::ListDevicesRequest(), &resp);
    if (!s.ok()) return fail(s);
    for (const auto& d : resp.devices()) {
      const char* level = d.protocol_level() == 3 ? "3.1" : d.protocol_level() == 5 ? "5" : "3.1.1";
      // In a cluster, the node each device is connected to comes last.
      std::printf("%s %s MQTT-%s %s%s%s\n", d.device_id().c_str(), d.remote_address().c_str(),
                  level, iso_time(d.connected_since_unix_ms()).c_str(),
                  d.node().empty() ? "" : " node=", d.node().c_str());
    }
    return 0;
  }

  if (*disconnect) {
    grpc::ClientContext ctx;
    set_deadline(ctx, common);
    v1::DisconnectDeviceRequest req;
    req.set_device_id(disconnect_id);
    v1::DisconnectDeviceResponse resp;
    grpc::Status s = broker->DisconnectDevice(&ctx, req, &resp);
    if (!s.ok()) return fail(s);
    std::printf("Disconnected %s\n", disconnect_id.c_str());
    return 0;
  }

  if (*latest) {
    grpc::ClientContext ctx;
    set_deadline(ctx, common);
    v1::GetLatestRequest req;
    req.set_device_id(device);
    req.set_topic(topic);
    v1::GetLatestResponse resp;
    grpc::Status s = broker->GetLatest(&ctx, req, &resp);
    if (!s.ok()) return fail(s);
    std::fwrite(resp.payload().data(), 1, resp.payload().size(), stdout);
    std::printf("\n");
    return 0;
  }
  return 2;
}
