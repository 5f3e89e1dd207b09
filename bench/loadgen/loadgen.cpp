// mqtt-loadgen: a lean single-process, single-threaded MQTT 3.1.1 load generator.
//
// All connections live in one epoll loop (level-triggered), speaking raw MQTT 3.1.1
// frames over plain TCP or TLS (OpenSSL). Every published payload carries
// [u32 publisher][u32 magic][u64 seq][u64 send-time-ns], so the receiving side can
// attribute deliveries to their publisher and measure end-to-end latency on the
// same monotonic clock.
//
// Modes (see --help):
//   p2p      N publisher/subscriber pairs, pair i on topic bench/p2p/i
//   fanin    P publishers -> 1 subscriber, one topic
//   fanout   1 publisher  -> S subscribers, one topic
//   stresser mqtt-stresser semantics: N workers, each one pub + one sub on its own
//            topic, each pub sends M messages back-to-back (QoS1: stop-and-wait, as
//            paho's token.Wait does), prints the same summary format
//   idle     open N connections, hold them, report broker RSS per connection
//   publish  P publishers, no subscriber: what the broker takes in (each ends with a
//            PINGREQ; its PINGRESP says every PUBLISH before it was handled)
//
// --device shapes the traffic like real devices and client libraries (paho, the
// original README's mqtt-stresser): every PUBLISH is written with its own send(), and
// the next one waits until the socket took it (QoS 0) or until fewer than --window
// (default 1) are unacknowledged (QoS 1/2). Without it, publishers pipeline up to 128
// PUBLISHes per send(), which measures the broker's best case, not what devices see.
//
// Throughput modes are closed loop by default: a publisher keeps at most --window
// messages in flight (published but not yet received by all of its subscribers), so
// the broker is driven to saturation without overflowing its queues (which would
// turn the test into a drop-rate test). --rate switches to an open-loop fixed rate.
//
// --ws speaks MQTT over WebSocket (RFC 6455) instead of bare TCP (or TLS with --tls):
// an HTTP upgrade to --ws-path (/mqtt), then every write is one masked binary frame, as
// a browser's WebSocket.send() of each packet is.
//
// If --server-pid is given, the broker's utime+stime (/proc/PID/stat) and VmRSS are
// sampled at the start and end of the measured phase and reported.
//
// The final result is one line on stdout: "RESULT {json}". Everything is bounded in
// time: setup, run and drain each have a deadline, after which the program exits.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr uint32_t kMagic = 0x4d51424eu;  // "MQBN"
constexpr size_t kHdr = 24;               // payload header size

uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "loadgen: %s\n", msg.c_str());
  std::printf("RESULT {\"ok\":false,\"error\":\"%s\"}\n", msg.c_str());
  std::fflush(stdout);
  std::exit(2);
}

// ---------------------------------------------------------------- options
struct Options {
  std::string mode = "p2p";
  std::string host = "127.0.0.1";
  int port = 1883;
  bool tls = false;
  int pairs = 10;     // p2p / stresser workers
  int pubs = 50;      // fanin publishers
  int subs = 50;      // fanout subscribers
  int conns = 10000;  // idle
  int qos = 0;
  int sub_qos = -1;  // -1: same as qos
  size_t size = 64;
  double duration = 10;   // seconds of publishing
  double rate = 0;        // total msg/s, 0 = closed loop
  int window = 0;         // per publisher, 0 = auto
  long messages = 50000;  // stresser: per worker
  double hold = 3;        // idle: seconds to hold after all connected
  double settle = 1;      // idle: seconds to wait before sampling RSS
  double setup_timeout = 60;
  double drain_timeout = 10;
  double global_timeout = 60;      // stresser
  bool pause_subscribers = false;  // stresser
  bool device = false;             // one PUBLISH per send(), wait (see the top of the file)
  bool ws = false;                 // MQTT over WebSocket
  std::string ws_path = "/mqtt";
  int server_pid = 0;
  int max_pending_connects = 200;
  int keepalive = 60;
  std::string tag = "lg";
};

void usage() {
  std::puts(
      "usage: mqtt-loadgen MODE [options]\n"
      "  MODE: p2p | fanin | fanout | stresser | idle | publish\n"
      "  --host H (127.0.0.1)  --port P (1883)  --tls  --ws  --ws-path PATH (/mqtt)\n"
      "  --pairs N     p2p pairs / stresser workers (10)\n"
      "  --pubs N      fanin / publish publishers (50)\n"
      "  --subs N      fanout subscribers (50)\n"
      "  --conns N     idle connections (10000)\n"
      "  --qos Q  --sub-qos Q  --size BYTES (64, min 24)\n"
      "  --duration S  publishing time (10)\n"
      "  --rate R      open loop, total msg/s published (0 = closed loop)\n"
      "  --window W    closed loop: max in-flight messages per publisher (auto)\n"
      "  --messages M  stresser: messages per worker (50000)\n"
      "  --hold S  --settle S       idle mode timings\n"
      "  --pause-subscribers        stresser: subscribers read only after their publisher is done\n"
      "  --device      one PUBLISH per send(), then wait (QoS 0: written; QoS 1/2: --window, "
      "default 1)\n"
      "  --server-pid PID           sample broker CPU and RSS from /proc\n"
      "  --setup-timeout S --drain-timeout S --global-timeout S\n");
}

Options parse(int argc, char** argv) {
  Options o;
  if (argc < 2) {
    usage();
    std::exit(2);
  }
  o.mode = argv[1];
  if (o.mode == "-h" || o.mode == "--help") {
    usage();
    std::exit(0);
  }
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--host")
      o.host = next();
    else if (a == "--port")
      o.port = std::stoi(next());
    else if (a == "--tls")
      o.tls = true;
    else if (a == "--ws")
      o.ws = true;
    else if (a == "--ws-path")
      o.ws_path = next();
    else if (a == "--pairs")
      o.pairs = std::stoi(next());
    else if (a == "--pubs")
      o.pubs = std::stoi(next());
    else if (a == "--subs")
      o.subs = std::stoi(next());
    else if (a == "--conns")
      o.conns = std::stoi(next());
    else if (a == "--qos")
      o.qos = std::stoi(next());
    else if (a == "--sub-qos")
      o.sub_qos = std::stoi(next());
    else if (a == "--size")
      o.size = std::stoul(next());
    else if (a == "--duration")
      o.duration = std::stod(next());
    else if (a == "--rate")
      o.rate = std::stod(next());
    else if (a == "--window")
      o.window = std::stoi(next());
    else if (a == "--messages")
      o.messages = std::stol(next());
    else if (a == "--hold")
      o.hold = std::stod(next());
    else if (a == "--settle")
      o.settle = std::stod(next());
    else if (a == "--server-pid")
      o.server_pid = std::stoi(next());
    else if (a == "--setup-timeout")
      o.setup_timeout = std::stod(next());
    else if (a == "--drain-timeout")
      o.drain_timeout = std::stod(next());
    else if (a == "--global-timeout")
      o.global_timeout = std::stod(next());
    else if (a == "--keepalive")
      o.keepalive = std::stoi(next());
    else if (a == "--pause-subscribers")
      o.pause_subscribers = true;
    else if (a == "--device")
      o.device = true;
    else if (a == "--tag")
      o.tag = next();
    else if (a == "-h" || a == "--help") {
      usage();
      std::exit(0);
    } else
      die("unknown option " + a);
  }
  if (o.sub_qos < 0) o.sub_qos = o.qos;
  if (o.qos < 0 || o.qos > 1 || o.sub_qos < 0 || o.sub_qos > 1)
    die("only QoS 0 and 1 are supported");
  if (o.size < kHdr) o.size = kHdr;
  if (o.mode != "p2p" && o.mode != "fanin" && o.mode != "fanout" && o.mode != "stresser" &&
      o.mode != "idle" && o.mode != "publish")
    die("unknown mode " + o.mode);
  return o;
}

// ---------------------------------------------------------------- /proc sampling
struct ProcSample {
  bool ok = false;
  double cpu_s = 0;  // utime + stime
  long rss_kb = 0;
};

ProcSample sample_proc(int pid) {
  ProcSample s;
  if (pid <= 0) return s;
  std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(st, line)) return s;
  auto rp = line.rfind(')');
  if (rp == std::string::npos) return s;
  std::istringstream is(line.substr(rp + 2));
  std::vector<std::string> f;
  std::string tok;
  while (is >> tok) f.push_back(tok);
  // f[0] is field 3 (state); utime is field 14, stime field 15.
  if (f.size() < 13) return s;
  double tck = static_cast<double>(sysconf(_SC_CLK_TCK));
  s.cpu_s = (std::stod(f[11]) + std::stod(f[12])) / tck;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kb = std::stol(line.substr(6));
  }
  s.ok = true;
  return s;
}

// CPU seconds used by this process (user + system).
double self_cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// ---------------------------------------------------------------- latency histogram
// Log-linear buckets: exact below 64 ns, then 32 sub-buckets per power of two (~3%).
class Hist {
 public:
  Hist() : b_(64 + 60 * 32, 0) {}
  void add(uint64_t v) {
    ++b_[index(v)];
    ++n_;
    if (v > max_) max_ = v;
    sum_ += static_cast<double>(v);
  }
  uint64_t count() const { return n_; }
  double mean() const { return n_ ? sum_ / static_cast<double>(n_) : 0; }
  uint64_t max() const { return max_; }
  uint64_t percentile(double p) const {
    if (!n_) return 0;
    auto target = static_cast<uint64_t>(std::ceil(p * static_cast<double>(n_)));
    if (target < 1) target = 1;
    uint64_t acc = 0;
    for (size_t i = 0; i < b_.size(); ++i) {
      acc += b_[i];
      if (acc >= target) return std::min(upper(i), max_);
    }
    return max_;
  }

 private:
  static size_t index(uint64_t v) {
    if (v < 64) return static_cast<size_t>(v);
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - 5;  // v >> shift in [32, 63]
    return 64 + static_cast<size_t>(shift - 1) * 32 + static_cast<size_t>((v >> shift) - 32);
  }
  static uint64_t upper(size_t i) {
    if (i < 64) return i;
    size_t shift = (i - 64) / 32 + 1;
    uint64_t m = (i - 64) % 32 + 32;
    return ((m + 1) << shift) - 1;
  }
  std::vector<uint64_t> b_;
  uint64_t n_ = 0, max_ = 0;
  double sum_ = 0;
};

// ---------------------------------------------------------------- connections
enum class Role { Pub, Sub, Idle };
enum class St { TcpConnecting, TlsHandshake, WsHandshake, WaitConnack, WaitSuback, Ready, Closed };

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  Role role = Role::Idle;
  int idx = 0;
  St st = St::TcpConnecting;
  std::string client_id;
  std::string topic;
  std::vector<uint8_t> out;  // pending output
  size_t out_off = 0;
  std::vector<uint8_t> partial;  // incomplete inbound frame
  uint32_t ev = 0;               // registered epoll events
  bool paused = false;           // stresser: subscriber does not read until its publisher is done
  bool tls_want_write = false;
  uint64_t last_tx_ns = 0;
  // publisher state
  uint64_t sent = 0;       // messages published
  uint64_t acked = 0;      // PUBACKs received
  uint64_t delivered = 0;  // deliveries attributed to this publisher
  uint64_t lost = 0;       // deliveries written off by the stall detector
  uint16_t next_pid = 1;
  uint64_t next_send_ns = 0;  // rate mode
  uint64_t progress_ns = 0;   // last delivery attributed to this publisher (stall detector)
  uint64_t pub_start_ns = 0, pub_end_ns = 0;  // stresser
  bool pub_done = false;
  std::vector<uint8_t> tmpl;  // PUBLISH frame prefix up to (excluding) packet id/payload
  // subscriber state
  uint64_t received = 0;
  uint64_t last_rx_ns = 0;
  uint64_t pongs = 0;  // PINGRESPs received
  // --ws: out[0, framed) is already framed (wire bytes); the response to the upgrade
  // while it is incomplete; the header and payload left of the frame being read.
  size_t framed = 0;
  std::string ws_response;
  uint8_t wsh[10] = {};
  uint8_t wsh_len = 0;
  uint8_t ws_opcode = 0;
  bool ws_in_payload = false;
  uint64_t ws_left = 0;
  size_t out_pending() const { return out.size() - out_off; }
};

struct Global {
  Options o;
  int ep = -1;
  SSL_CTX* ctx = nullptr;
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<Conn*> pubs, subs;
  std::vector<uint8_t> scratch;
  std::vector<uint8_t> payload;
  Hist lat;
  int fanout = 1;  // deliveries per publish
  uint64_t total_rx = 0;
  uint64_t first_tx_ns = 0, last_rx_ns = 0;
  uint64_t last_ack_ns = 0;  // last PUBACK or PINGRESP
  uint64_t protocol_errors = 0;
  uint64_t disconnects = 0;
  int ready = 0;
  int pending_connects = 0;
  size_t next_to_connect = 0;
  sockaddr_in addr{};
  std::string fatal;
};

Global G;

void set_events(Conn& c, uint32_t ev) {
  if (c.fd < 0 || ev == c.ev) return;
  epoll_event e{};
  e.events = ev;
  e.data.ptr = &c;
  if (epoll_ctl(G.ep, EPOLL_CTL_MOD, c.fd, &e) < 0)
    die(std::string("epoll_ctl: ") + strerror(errno));
  c.ev = ev;
}

void update_events(Conn& c) {
  uint32_t ev = c.paused ? 0u : static_cast<uint32_t>(EPOLLIN);
  if (c.st == St::TcpConnecting || c.out_pending() > 0 || c.tls_want_write) ev |= EPOLLOUT;
  set_events(c, ev);
}

void close_conn(Conn& c, const char* why) {
  if (c.st == St::Closed) return;
  if (why && c.st != St::Ready) {
    if (G.fatal.empty()) G.fatal = std::string(why) + " (" + c.client_id + ")";
  }
  if (why) ++G.disconnects;
  if (c.st == St::TcpConnecting) --G.pending_connects;
  if (c.ssl) {
    SSL_free(c.ssl);
    c.ssl = nullptr;
  }
  if (c.fd >= 0) {
    epoll_ctl(G.ep, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
  }
  c.fd = -1;
  c.st = St::Closed;
}

// --- frame encoding
void put_varint(std::vector<uint8_t>& v, size_t n) {
  do {
    uint8_t b = n % 128;
    n /= 128;
    if (n) b |= 0x80;
    v.push_back(b);
  } while (n);
}
void put_str(std::vector<uint8_t>& v, const std::string& s) {
  v.push_back(static_cast<uint8_t>(s.size() >> 8));
  v.push_back(static_cast<uint8_t>(s.size() & 0xff));
  v.insert(v.end(), s.begin(), s.end());
}

void queue_connect(Conn& c) {
  std::vector<uint8_t> body;
  put_str(body, "MQTT");
  body.push_back(4);     // protocol level 3.1.1
  body.push_back(0x02);  // clean session
  body.push_back(static_cast<uint8_t>(G.o.keepalive >> 8));
  body.push_back(static_cast<uint8_t>(G.o.keepalive & 0xff));
  put_str(body, c.client_id);
  c.out.push_back(0x10);
  put_varint(c.out, body.size());
  c.out.insert(c.out.end(), body.begin(), body.end());
}

void queue_subscribe(Conn& c) {
  std::vector<uint8_t> body{0x00, 0x01};
  put_str(body, c.topic);
  body.push_back(static_cast<uint8_t>(G.o.sub_qos));
  c.out.push_back(0x82);
  put_varint(c.out, body.size());
  c.out.insert(c.out.end(), body.begin(), body.end());
}

void build_template(Conn& c) {
  size_t rl = 2 + c.topic.size() + (G.o.qos ? 2 : 0) + G.o.size;
  c.tmpl.clear();
  c.tmpl.push_back(static_cast<uint8_t>(0x30 | (G.o.qos << 1)));
  put_varint(c.tmpl, rl);
  put_str(c.tmpl, c.topic);
}

void queue_publish(Conn& c, uint64_t ts) {
  auto& o = c.out;
  o.insert(o.end(), c.tmpl.begin(), c.tmpl.end());
  if (G.o.qos) {
    uint16_t pid = c.next_pid++;
    if (c.next_pid == 0) c.next_pid = 1;
    o.push_back(static_cast<uint8_t>(pid >> 8));
    o.push_back(static_cast<uint8_t>(pid & 0xff));
  }
  size_t at = o.size();
  o.insert(o.end(), G.payload.begin(), G.payload.end());
  uint32_t pub = static_cast<uint32_t>(c.idx);
  uint64_t seq = c.sent;
  std::memcpy(&o[at], &pub, 4);
  std::memcpy(&o[at + 4], &kMagic, 4);
  std::memcpy(&o[at + 8], &seq, 8);
  std::memcpy(&o[at + 16], &ts, 8);
  ++c.sent;
  if (!G.first_tx_ns) G.first_tx_ns = ts;
}

// --- raw I/O; returns >0 bytes, 0 on EOF, -1 would block, -2 error
ssize_t io_read(Conn& c, uint8_t* buf, size_t n) {
  if (!c.ssl) {
    ssize_t r = ::recv(c.fd, buf, n, 0);
    if (r > 0) return r;
    if (r == 0) return 0;
    return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? -1 : -2;
  }
  int r = SSL_read(c.ssl, buf, static_cast<int>(n));
  if (r > 0) return r;
  int e = SSL_get_error(c.ssl, r);
  if (e == SSL_ERROR_WANT_READ) return -1;
  if (e == SSL_ERROR_WANT_WRITE) {
    c.tls_want_write = true;
    return -1;
  }
  if (e == SSL_ERROR_ZERO_RETURN) return 0;
  return -2;
}

ssize_t io_write(Conn& c, const uint8_t* buf, size_t n) {
  if (!c.ssl) {
    ssize_t r = ::send(c.fd, buf, n, MSG_NOSIGNAL);
    if (r >= 0) return r;
    return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? -1 : -2;
  }
  int r = SSL_write(c.ssl, buf, static_cast<int>(std::min<size_t>(n, 1 << 20)));
  if (r > 0) return r;
  int e = SSL_get_error(c.ssl, r);
  if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) return -1;
  return -2;
}

// --ws: what was queued since the last write becomes one masked binary frame.
void frame_pending(Conn& c) {
  if (c.framed >= c.out.size()) return;
  const size_t n = c.out.size() - c.framed;
  uint8_t h[14];
  size_t hl = 0;
  h[hl++] = 0x82;  // FIN, binary
  if (n < 126) {
    h[hl++] = static_cast<uint8_t>(0x80 | n);
  } else if (n < 65536) {
    h[hl++] = 0x80 | 126;
    h[hl++] = static_cast<uint8_t>(n >> 8);
    h[hl++] = static_cast<uint8_t>(n);
  } else {
    h[hl++] = 0x80 | 127;
    for (int i = 7; i >= 0; --i)
      h[hl++] = static_cast<uint8_t>(static_cast<uint64_t>(n) >> (8 * i));
  }
  // A fresh mask per frame (RFC 6455 section 5.3); xorshift is enough for a load generator.
  static uint32_t state = 2463534242u;
  state ^= state << 13;
  state ^= state >> 17;
  state ^= state << 5;
  uint8_t mask[4];
  std::memcpy(mask, &state, 4);
  std::memcpy(h + hl, mask, 4);
  hl += 4;
  for (size_t i = 0; i < n; ++i) c.out[c.framed + i] ^= mask[i & 3];
  c.out.insert(c.out.begin() + static_cast<long>(c.framed), h, h + hl);
  c.framed = c.out.size();
}

void flush(Conn& c) {
  if (c.st == St::Closed || c.st == St::TcpConnecting || c.st == St::TlsHandshake) return;
  if (G.o.ws) frame_pending(c);
  c.tls_want_write = false;
  while (c.out_pending() > 0) {
    ssize_t r = io_write(c, c.out.data() + c.out_off, c.out_pending());
    if (r == -1) {
      if (c.ssl) c.tls_want_write = true;
      break;
    }
    if (r < 0) {
      close_conn(c, "write failed");
      return;
    }
    c.out_off += static_cast<size_t>(r);
    c.last_tx_ns = now_ns();
  }
  if (c.out_off == c.out.size()) {
    c.out.clear();
    c.out_off = 0;
    c.framed = 0;
  } else if (c.out_off > (1u << 20)) {
    c.out.erase(c.out.begin(), c.out.begin() + static_cast<long>(c.out_off));
    c.framed -= c.out_off;
    c.out_off = 0;
  }
  if (c.role == Role::Pub && c.pub_done && c.pub_end_ns == 0 && c.out_pending() == 0 &&
      (G.o.qos == 0 || c.acked == c.sent))
    c.pub_end_ns = now_ns();
  update_events(c);
}

// --- inbound frames
void on_publish(Conn& c, uint8_t flags, const uint8_t* p, size_t len, uint64_t t) {
  if (len < 2) {
    ++G.protocol_errors;
    return;
  }
  size_t tl = (static_cast<size_t>(p[0]) << 8) | p[1];
  size_t off = 2 + tl;
  int q = (flags >> 1) & 3;
  if (q > 0) {
    if (off + 2 > len) {
      ++G.protocol_errors;
      return;
    }
    uint8_t ack[4] = {0x40, 0x02, p[off], p[off + 1]};
    c.out.insert(c.out.end(), ack, ack + 4);
    off += 2;
  }
  if (len - off < kHdr) {
    ++G.protocol_errors;
    return;
  }
  uint32_t pub, magic;
  uint64_t ts;
  std::memcpy(&pub, p + off, 4);
  std::memcpy(&magic, p + off + 4, 4);
  std::memcpy(&ts, p + off + 16, 8);
  if (magic != kMagic || pub >= G.pubs.size()) {
    ++G.protocol_errors;
    return;
  }
  ++c.received;
  c.last_rx_ns = t;
  ++G.total_rx;
  G.last_rx_ns = t;
  ++G.pubs[pub]->delivered;
  G.pubs[pub]->progress_ns = t;
  if (t >= ts) G.lat.add(t - ts);
}

void on_frame(Conn& c, uint8_t h, const uint8_t* p, size_t len, uint64_t t) {
  switch (h >> 4) {
    case 2:  // CONNACK
      if (len < 2 || p[1] != 0) {
        close_conn(c, "CONNACK refused");
        return;
      }
      if (c.st == St::WaitConnack) {
        if (c.role == Role::Sub) {
          queue_subscribe(c);
          c.st = St::WaitSuback;
        } else {
          c.st = St::Ready;
          ++G.ready;
        }
      }
      break;
    case 9:  // SUBACK
      if (len < 3 || p[2] == 0x80) {
        close_conn(c, "SUBSCRIBE refused");
        return;
      }
      if (c.st == St::WaitSuback) {
        c.st = St::Ready;
        ++G.ready;
      }
      break;
    case 3:
      on_publish(c, h & 0x0f, p, len, t);
      break;
    case 4:  // PUBACK
      ++c.acked;
      G.last_ack_ns = t;
      if (c.pub_done && c.pub_end_ns == 0 && c.acked == c.sent && c.out_pending() == 0)
        c.pub_end_ns = t;
      break;
    case 13:  // PINGRESP
      ++c.pongs;
      G.last_ack_ns = t;
      break;
    default:
      ++G.protocol_errors;
  }
}

// --ws: removes the frame headers of the broker's (unmasked) frames from buf[0, n)
// in place; returns the MQTT bytes left at its front. A close frame ends the connection.
size_t unframe(Conn& c, uint8_t* buf, size_t n) {
  size_t in = 0, out = 0;
  while (in < n) {
    if (!c.ws_in_payload) {
      c.wsh[c.wsh_len++] = buf[in++];
      if (c.wsh_len < 2) continue;
      const uint8_t len7 = c.wsh[1] & 0x7F;
      const size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
      if (c.wsh_len < need) continue;
      uint64_t len = len7;
      if (len7 == 126) len = (uint64_t{c.wsh[2]} << 8) | c.wsh[3];
      if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | c.wsh[2 + i];
      }
      c.ws_opcode = c.wsh[0] & 0x0F;
      c.wsh_len = 0;
      if (c.ws_opcode == 0x8) {
        close_conn(c, "WebSocket close frame from the broker");
        return out;
      }
      c.ws_left = len;
      c.ws_in_payload = len > 0;
      continue;
    }
    const size_t take = static_cast<size_t>(std::min<uint64_t>(c.ws_left, n - in));
    if (c.ws_opcode == 0x0 || c.ws_opcode == 0x2) {
      std::memmove(buf + out, buf + in, take);
      out += take;
    }  // a ping or pong from the broker: skipped
    in += take;
    c.ws_left -= take;
    c.ws_in_payload = c.ws_left > 0;
  }
  return out;
}

// --ws: the upgrade request, sent as it is (not framed).
void queue_upgrade(Conn& c) {
  static const char kKey[] = "dGhlIHNhbXBsZSBub25jZQ==";  // base64 of 16 bytes (RFC 6455 1.3)
  std::string req = "GET " + G.o.ws_path + " HTTP/1.1\r\nHost: " + G.o.host +
                    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + kKey +
                    "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";
  c.out.insert(c.out.end(), req.begin(), req.end());
  c.framed = c.out.size();
}

// TCP (and TLS) is up: the upgrade first with --ws, else CONNECT.
void begin_mqtt(Conn& c) {
  if (G.o.ws) {
    c.st = St::WsHandshake;
    queue_upgrade(c);
  } else {
    c.st = St::WaitConnack;
    queue_connect(c);
  }
  flush(c);
}

void handle_read(Conn& c) {
  uint64_t t = now_ns();
  for (int rounds = 0; rounds < 16 && c.st != St::Closed; ++rounds) {
    size_t have = c.partial.size();
    if (have + 65536 > G.scratch.size()) G.scratch.resize(have + 65536);
    if (have) std::memcpy(G.scratch.data(), c.partial.data(), have);
    ssize_t r = io_read(c, G.scratch.data() + have, G.scratch.size() - have);
    if (r == -1) break;
    if (r == 0) {
      close_conn(c, "connection closed by broker");
      return;
    }
    if (r < 0) {
      close_conn(c, "read failed");
      return;
    }
    size_t got = static_cast<size_t>(r);
    if (c.st == St::WsHandshake) {
      c.ws_response.append(reinterpret_cast<const char*>(G.scratch.data()) + have, got);
      size_t end = c.ws_response.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (c.ws_response.size() > 8192) close_conn(c, "WebSocket upgrade: response too large");
        continue;
      }
      if (c.ws_response.rfind("HTTP/1.1 101", 0) != 0) {
        close_conn(
            c, ("WebSocket upgrade refused: " + c.ws_response.substr(0, c.ws_response.find('\r')))
                   .c_str());
        return;
      }
      // What followed the response is frames.
      got = c.ws_response.size() - end - 4;
      std::memcpy(G.scratch.data() + have, c.ws_response.data() + end + 4, got);
      std::string().swap(c.ws_response);
      c.st = St::WaitConnack;
      queue_connect(c);
      flush(c);
      if (c.st == St::Closed) return;
    }
    if (G.o.ws) {
      got = unframe(c, G.scratch.data() + have, got);
      if (c.st == St::Closed) return;
    }
    size_t n = have + got;
    const uint8_t* d = G.scratch.data();
    size_t pos = 0;
    while (pos + 2 <= n) {
      size_t rl = 0, mult = 1, i = pos + 1;
      bool complete = false;
      for (int k = 0; k < 4 && i < n; ++k, ++i) {
        rl += (d[i] & 127u) * mult;
        mult *= 128;
        if (!(d[i] & 128u)) {
          complete = true;
          ++i;
          break;
        }
      }
      if (!complete || i + rl > n) break;
      on_frame(c, d[pos], d + i, rl, t);
      if (c.st == St::Closed) return;
      pos = i + rl;
    }
    c.partial.assign(d + pos, d + n);
    if (static_cast<size_t>(r) < G.scratch.size() - have && !c.ssl) break;
  }
  if (c.out_pending()) flush(c);
}

void start_tls(Conn& c);

void continue_tls(Conn& c) {
  int r = SSL_do_handshake(c.ssl);
  if (r == 1) {
    begin_mqtt(c);
    return;
  }
  int e = SSL_get_error(c.ssl, r);
  if (e == SSL_ERROR_WANT_READ) {
    c.tls_want_write = false;
    update_events(c);
  } else if (e == SSL_ERROR_WANT_WRITE) {
    c.tls_want_write = true;
    update_events(c);
  } else {
    close_conn(c, "TLS handshake failed");
  }
}

void start_tls(Conn& c) {
  c.ssl = SSL_new(G.ctx);
  SSL_set_fd(c.ssl, c.fd);
  SSL_set_connect_state(c.ssl);
  SSL_set_mode(c.ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  c.st = St::TlsHandshake;
  continue_tls(c);
}

void on_event(Conn& c, uint32_t ev) {
  if (c.st == St::Closed) return;
  if (c.st == St::TcpConnecting) {
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err) {
      close_conn(c, (std::string("connect: ") + strerror(err)).c_str());
      return;
    }
    if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    --G.pending_connects;
    if (G.o.tls) {
      start_tls(c);
    } else {
      begin_mqtt(c);
    }
    return;
  }
  if (c.st == St::TlsHandshake) {
    continue_tls(c);
    return;
  }
  if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) handle_read(c);
  if (c.st != St::Closed && (ev & EPOLLOUT)) flush(c);
}

void start_connect(Conn& c) {
  c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) die(std::string("socket: ") + strerror(errno) + " (raise ulimit -n?)");
  int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int r = ::connect(c.fd, reinterpret_cast<sockaddr*>(&G.addr), sizeof G.addr);
  if (r < 0 && errno != EINPROGRESS) die(std::string("connect: ") + strerror(errno));
  epoll_event e{};
  e.events = EPOLLIN | EPOLLOUT;
  e.data.ptr = &c;
  if (epoll_ctl(G.ep, EPOLL_CTL_ADD, c.fd, &e) < 0)
    die(std::string("epoll_ctl add: ") + strerror(errno));
  c.ev = e.events;
  c.st = St::TcpConnecting;
  ++G.pending_connects;
}

void pump_connects() {
  while (G.next_to_connect < G.conns.size() && G.pending_connects < G.o.max_pending_connects)
    start_connect(*G.conns[G.next_to_connect++]);
}

// One epoll round; timeout in ns.
void poll_once(uint64_t timeout_ns) {
  static epoll_event evs[1024];
  timespec ts{static_cast<time_t>(timeout_ns / 1000000000ull),
              static_cast<long>(timeout_ns % 1000000000ull)};
  int n = epoll_pwait2(G.ep, evs, 1024, &ts, nullptr);
  if (n < 0) {
    if (errno == EINTR) return;
    die(std::string("epoll_pwait2: ") + strerror(errno));
  }
  for (int i = 0; i < n; ++i) on_event(*static_cast<Conn*>(evs[i].data.ptr), evs[i].events);
}

void send_pings(uint64_t t) {
  if (G.o.keepalive <= 0) return;
  uint64_t every = static_cast<uint64_t>(G.o.keepalive) * 500000000ull;  // half the keepalive
  for (auto& c : G.conns) {
    if (c->st == St::Ready && t - c->last_tx_ns > every) {
      c->out.push_back(0xC0);
      c->out.push_back(0x00);
      flush(*c);
    }
  }
}

Conn& add_conn(Role r, int idx, const std::string& topic) {
  auto c = std::make_unique<Conn>();
  c->role = r;
  c->idx = idx;
  c->topic = topic;
  const char* rn = r == Role::Pub ? "pub" : r == Role::Sub ? "sub" : "idle";
  c->client_id = G.o.tag + "-" + std::to_string(getpid()) + "-" + rn + std::to_string(idx);
  G.conns.push_back(std::move(c));
  Conn& ref = *G.conns.back();
  if (r == Role::Pub) G.pubs.push_back(&ref);
  if (r == Role::Sub) G.subs.push_back(&ref);
  return ref;
}

// Connect everything (subscribers first) and wait until all are ready.
void setup() {
  uint64_t deadline = now_ns() + static_cast<uint64_t>(G.o.setup_timeout * 1e9);
  // Subscribers must be subscribed before any publisher connects.
  std::vector<std::unique_ptr<Conn>>& all = G.conns;
  std::stable_partition(all.begin(), all.end(),
                        [](const std::unique_ptr<Conn>& c) { return c->role != Role::Pub; });
  int total = static_cast<int>(all.size());
  while (G.ready < total) {
    if (!G.fatal.empty()) die("setup failed: " + G.fatal);
    uint64_t t = now_ns();
    if (t > deadline)
      die("setup timed out: " + std::to_string(G.ready) + "/" + std::to_string(total) +
          " connections ready");
    pump_connects();
    poll_once(50000000ull);
  }
}

// ---------------------------------------------------------------- JSON output
struct Json {
  std::ostringstream s;
  bool first = true;
  Json() { s << '{'; }
  void key(const char* k) {
    if (!first) s << ',';
    first = false;
    s << '"' << k << "\":";
  }
  void num(const char* k, double v) {
    key(k);
    if (std::isfinite(v))
      s << v;
    else
      s << "null";
  }
  void integer(const char* k, long long v) {
    key(k);
    s << v;
  }
  void str(const char* k, const std::string& v) {
    key(k);
    s << '"' << v << '"';
  }
  void boolean(const char* k, bool v) {
    key(k);
    s << (v ? "true" : "false");
  }
  std::string done() { return s.str() + "}"; }
};

void emit_common(Json& j, const ProcSample& a, const ProcSample& b, double self_cpu,
                 double elapsed) {
  j.num("loadgen_cpu_s", self_cpu);
  // Share of one core the load generator used: near 1.0 means it, not the broker, may be the limit.
  j.num("loadgen_core_util", elapsed > 0 ? self_cpu / elapsed : 0);
  j.integer("protocol_errors", static_cast<long long>(G.protocol_errors));
  j.integer("disconnects", static_cast<long long>(G.disconnects));
  if (a.ok && b.ok) {
    j.num("server_cpu_s", b.cpu_s - a.cpu_s);
    j.integer("server_rss_kb_before", a.rss_kb);
    j.integer("server_rss_kb_after", b.rss_kb);
  }
  j.integer("lat_count", static_cast<long long>(G.lat.count()));
  j.num("lat_p50_us", static_cast<double>(G.lat.percentile(0.50)) / 1e3);
  j.num("lat_p90_us", static_cast<double>(G.lat.percentile(0.90)) / 1e3);
  j.num("lat_p99_us", static_cast<double>(G.lat.percentile(0.99)) / 1e3);
  j.num("lat_p999_us", static_cast<double>(G.lat.percentile(0.999)) / 1e3);
  j.num("lat_max_us", static_cast<double>(G.lat.max()) / 1e3);
  j.num("lat_mean_us", G.lat.mean() / 1e3);
}

void disconnect_all() {
  for (auto& c : G.conns) {
    if (c->st == St::Ready) {
      c->out.push_back(0xE0);
      c->out.push_back(0x00);
      flush(*c);
    }
  }
  // Give the DISCONNECTs a moment to leave, bounded.
  uint64_t until = now_ns() + 200000000ull;
  while (now_ns() < until) {
    bool pending = false;
    for (auto& c : G.conns)
      if (c->st != St::Closed && c->out_pending()) pending = true;
    if (!pending) break;
    poll_once(10000000ull);
  }
  for (auto& c : G.conns) close_conn(*c, nullptr);
}

// ---------------------------------------------------------------- throughput modes
int run_throughput() {
  const Options& o = G.o;
  if (o.mode == "p2p") {
    for (int i = 0; i < o.pairs; ++i) {
      std::string t = "bench/p2p/" + std::to_string(i);
      add_conn(Role::Sub, i, t);
      add_conn(Role::Pub, i, t);
    }
    G.fanout = 1;
  } else if (o.mode == "fanin") {
    add_conn(Role::Sub, 0, "bench/fanin");
    for (int i = 0; i < o.pubs; ++i) add_conn(Role::Pub, i, "bench/fanin");
    G.fanout = 1;
  } else if (o.mode == "publish") {
    for (int i = 0; i < o.pubs; ++i) add_conn(Role::Pub, i, "bench/publish/" + std::to_string(i));
    G.fanout = 0;
  } else {  // fanout
    for (int i = 0; i < o.subs; ++i) add_conn(Role::Sub, i, "bench/fanout");
    add_conn(Role::Pub, 0, "bench/fanout");
    G.fanout = o.subs;
  }
  for (auto* p : G.pubs) build_template(*p);
  setup();

  // Per-publisher window (messages in flight). Keep the sum of what one subscriber can
  // have outstanding below the broker's queue limit (1000) so nothing is dropped.
  uint64_t window = static_cast<uint64_t>(o.window);
  if (window == 0 && o.device) window = 1;  // a device waits for each PUBACK
  if (window == 0)
    window = o.mode == "fanin" ? std::max<uint64_t>(2, 500 / static_cast<uint64_t>(o.pubs)) : 500;
  const uint64_t F = static_cast<uint64_t>(G.fanout);
  const size_t out_cap = 256 * 1024;
  const bool open_loop = o.rate > 0;
  const uint64_t rate_cap = 20000;  // open loop: stop sending if this many are outstanding

  ProcSample before = sample_proc(o.server_pid);
  double cpu0 = self_cpu_s();
  uint64_t t0 = now_ns();
  uint64_t stop_at = t0 + static_cast<uint64_t>(o.duration * 1e9);
  uint64_t interval_ns = 0;
  if (open_loop) {
    interval_ns = static_cast<uint64_t>(1e9 * static_cast<double>(G.pubs.size()) / o.rate);
    for (size_t i = 0; i < G.pubs.size(); ++i)
      G.pubs[i]->next_send_ns = t0 + interval_ns * i / G.pubs.size();
  }
  uint64_t stalls = 0;
  for (auto* p : G.pubs) p->progress_ns = t0;

  // Publishing phase.
  while (true) {
    uint64_t t = now_ns();
    if (t >= stop_at) break;
    uint64_t next_wake = stop_at;
    for (auto* p : G.pubs) {
      if (p->st != St::Ready) continue;
      if (open_loop) {
        int burst = 0;
        while (p->next_send_ns <= t && burst < 64) {
          uint64_t outstanding = p->sent * F - p->delivered - p->lost;
          if ((F > 0 && outstanding >= rate_cap * F) || p->out_pending() > out_cap ||
              (o.device && (p->out_pending() > 0 || (o.qos && p->sent - p->acked >= window)))) {
            p->next_send_ns = t + interval_ns;  // skip this slot, broker is not keeping up
            break;
          }
          queue_publish(*p, now_ns());
          p->next_send_ns += interval_ns;
          ++burst;
          if (o.device) flush(*p);  // its own send()
        }
        if (burst && !o.device) flush(*p);
        next_wake = std::min(next_wake, p->next_send_ns);
      } else if (o.device) {
        // One PUBLISH, one send(); the next waits for the socket (QoS 0) or the PUBACK
        // window (QoS 1/2). No delivery window: a device does not know its subscribers.
        if (p->out_pending() == 0 && (o.qos == 0 || p->sent - p->acked < window)) {
          queue_publish(*p, t);
          flush(*p);
        }
      } else {
        int burst = 0;
        while (burst < 128 && p->out_pending() < out_cap) {
          uint64_t outstanding = p->sent * F - p->delivered - p->lost;
          if (outstanding + F > window * F) break;
          if (o.qos && p->sent - p->acked >= window) break;
          queue_publish(*p, t);
          ++burst;
        }
        if (burst) flush(*p);
      }
    }
    // Stall detector: messages the broker dropped would otherwise hold a publisher's
    // window forever. After 1 s without a delivery from a publisher that has messages
    // outstanding, write them off (the final "lost" count is still expected - delivered).
    for (auto* p : G.pubs) {
      if (!open_loop && !o.device && p->sent * F > p->delivered + p->lost &&
          t - p->progress_ns > 1000000000ull) {
        ++stalls;
        p->lost = p->sent * F - p->delivered;
        p->progress_ns = t;
      }
    }
    if (!G.fatal.empty()) break;
    uint64_t wait = open_loop ? (next_wake > t ? next_wake - t : 0) : 20000000ull;
    if (o.device && !open_loop && o.qos == 0) wait = 0;  // nothing to wait for but the socket
    if (!open_loop && wait > stop_at - t) wait = stop_at - t;
    poll_once(std::min<uint64_t>(wait, 20000000ull));
  }
  uint64_t pub_end = now_ns();
  uint64_t rx_at_pub_end = G.total_rx;

  // Publish mode: the broker handles a connection's packets in order, so a PINGRESP
  // after the last PUBLISH (and every PUBACK, at QoS 1/2) means all were taken in.
  uint64_t confirmed = 0, confirmed_ns = 0;
  if (o.mode == "publish") {
    for (auto* p : G.pubs) {
      if (p->st != St::Ready) continue;
      p->out.push_back(0xC0);
      p->out.push_back(0x00);
      flush(*p);
    }
    uint64_t deadline = pub_end + static_cast<uint64_t>(o.drain_timeout * 1e9);
    auto settled = [&] {
      for (auto* p : G.pubs)
        if (p->st == St::Ready && (p->pongs == 0 || (o.qos && p->acked < p->sent))) return false;
      return true;
    };
    while (!settled() && now_ns() < deadline && G.fatal.empty()) {
      for (auto* p : G.pubs)
        if (p->out_pending()) flush(*p);
      poll_once(10000000ull);
    }
    for (auto* p : G.pubs)
      if (p->pongs > 0) confirmed += o.qos ? p->acked : p->sent;
    confirmed_ns = G.last_ack_ns ? G.last_ack_ns : now_ns();
  }

  // Drain: wait for everything published to arrive (bounded).
  uint64_t drain_deadline = pub_end + static_cast<uint64_t>(o.drain_timeout * 1e9);
  uint64_t expected = 0;
  for (auto* p : G.pubs) expected += p->sent * F;
  uint64_t drain_rx = G.total_rx, drain_progress = pub_end;
  while (G.total_rx < expected && now_ns() < drain_deadline && G.fatal.empty()) {
    for (auto* p : G.pubs)
      if (p->out_pending()) flush(*p);
    poll_once(10000000ull);
    uint64_t tn = now_ns();
    if (G.total_rx != drain_rx) {
      drain_rx = G.total_rx;
      drain_progress = tn;
    } else if (tn - drain_progress > 2000000000ull) {
      break;  // nothing arrives any more: the rest was dropped
    }
  }
  ProcSample after = sample_proc(o.server_pid);
  double cpu1 = self_cpu_s();
  uint64_t end = G.last_rx_ns ? G.last_rx_ns : now_ns();
  if (o.mode == "publish") end = confirmed_ns;

  uint64_t sent = 0;
  for (auto* p : G.pubs) sent += p->sent;
  double elapsed = static_cast<double>(end - t0) / 1e9;
  double pub_elapsed = static_cast<double>(pub_end - t0) / 1e9;

  Json j;
  j.boolean("ok", G.fatal.empty() && (o.mode == "publish" ? confirmed : G.total_rx) > 0);
  if (!G.fatal.empty()) j.str("error", G.fatal);
  j.str("mode", o.mode);
  j.integer("qos", o.qos);
  j.integer("size", static_cast<long long>(o.size));
  j.integer("publishers", static_cast<long long>(G.pubs.size()));
  j.integer("subscribers", static_cast<long long>(G.subs.size()));
  j.integer("window", open_loop ? 0 : static_cast<long long>(window));
  j.num("target_rate", o.rate);
  j.integer("published", static_cast<long long>(sent));
  if (o.mode == "publish") expected = sent;  // each one must be taken in
  j.integer("expected_deliveries", static_cast<long long>(expected));
  // Publish mode has no subscriber: "delivered" is what the broker confirmed taking in.
  const uint64_t delivered = o.mode == "publish" ? confirmed : G.total_rx;
  j.boolean("device", o.device);
  j.integer("delivered", static_cast<long long>(delivered));
  j.integer("lost", static_cast<long long>(expected - std::min(expected, delivered)));
  j.integer("stalls", static_cast<long long>(stalls));
  j.num("elapsed_s", elapsed);
  j.num("publish_s", pub_elapsed);
  j.num("published_per_s", static_cast<double>(sent) / pub_elapsed);
  j.num("delivered_per_s", elapsed > 0 ? static_cast<double>(delivered) / elapsed : 0);
  j.num("delivered_per_s_during_publish", static_cast<double>(rx_at_pub_end) / pub_elapsed);
  emit_common(j, before, after, cpu1 - cpu0, static_cast<double>(now_ns() - t0) / 1e9);
  disconnect_all();
  std::printf("RESULT %s\n", j.done().c_str());
  std::fflush(stdout);
  return G.fatal.empty() && delivered > 0 ? 0 : 1;
}

// ---------------------------------------------------------------- stresser mode
double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return (v[(v.size() - 1) / 2] + v[v.size() / 2]) / 2;
}

int run_stresser() {
  const Options& o = G.o;
  for (int i = 0; i < o.pairs; ++i) {
    std::string t = "internal/mqtt-stresser/loadgen/worker" + std::to_string(i);
    add_conn(Role::Sub, i, t);
    add_conn(Role::Pub, i, t);
  }
  for (auto* p : G.pubs) build_template(*p);
  setup();
  const uint64_t M = static_cast<uint64_t>(o.messages);
  const size_t out_cap = 256 * 1024;
  ProcSample before = sample_proc(o.server_pid);
  double cpu0 = self_cpu_s();
  uint64_t t0 = now_ns();
  uint64_t deadline = t0 + static_cast<uint64_t>(o.global_timeout * 1e9);
  for (auto* p : G.pubs) p->pub_start_ns = t0;
  // With --pause-subscribers: mqtt-stresser's subscriber hands each message to an unbuffered
  // channel that nobody reads before publishing is over, so paho stops reading the socket and the
  // broker has to hold the backlog. Mirror that: subscribers read only once their publisher is
  // done. Off by default: with QoS 0 the broker then drops what exceeds its queue, and the run
  // measures that rather than delivery speed (see docs/benchmarks.md).
  if (o.pause_subscribers) {
    for (auto* s : G.subs) {
      s->paused = true;
      update_events(*s);
    }
  }
  auto all_done = [&] {
    for (auto* s : G.subs)
      if (s->received < M) return false;
    return true;
  };
  uint64_t seen_rx = 0, seen_ns = t0;
  auto all_published = [&] {
    for (auto* p : G.pubs)
      if (!p->pub_end_ns) return false;
    return true;
  };
  while (!all_done() && now_ns() < deadline && G.fatal.empty()) {
    uint64_t tn = now_ns();
    if (G.total_rx != seen_rx) {
      seen_rx = G.total_rx;
      seen_ns = tn;
    } else if (all_published() && tn - seen_ns > 5000000000ull) {
      break;  // nothing more arrives: the rest was dropped (mqtt-stresser's --timeout is 5 s)
    }
    for (auto* p : G.pubs) {
      if (p->st != St::Ready || p->pub_done) continue;
      int burst = 0;
      uint64_t t = now_ns();
      const int max_burst = o.device ? 1 : 128;  // --device: one PUBLISH per send(), as paho
      while (p->sent < M && burst < max_burst && p->out_pending() < (o.device ? 1 : out_cap)) {
        if (o.qos && p->acked < p->sent) break;  // paho token.Wait(): one in flight at QoS 1
        queue_publish(*p, t);
        ++burst;
      }
      if (p->sent == M) p->pub_done = true;
      if (burst || p->pub_done) flush(*p);
    }
    for (size_t i = 0; i < G.subs.size(); ++i) {
      Conn* s = G.subs[i];
      if (s->paused && G.pubs[i]->pub_end_ns) {
        s->paused = false;
        update_events(*s);
      }
    }
    // A device-shaped QoS 0 publisher waits only for its socket: poll without sleeping.
    bool busy = false;
    if (o.device && o.qos == 0)
      for (auto* p : G.pubs) busy |= p->st == St::Ready && !p->pub_done;
    poll_once(busy ? 0 : 5000000ull);
  }
  ProcSample after = sample_proc(o.server_pid);
  double cpu1 = self_cpu_s();
  uint64_t end = G.last_rx_ns ? G.last_rx_ns : now_ns();

  std::vector<double> pub_rates, rx_rates;
  int completed = 0;
  uint64_t published = 0, received = 0;
  for (size_t i = 0; i < G.pubs.size(); ++i) {
    Conn* p = G.pubs[i];
    Conn* s = G.subs[i];
    published += p->sent;
    received += s->received;
    if (s->received == M && p->pub_end_ns) ++completed;
    uint64_t pe = p->pub_end_ns ? p->pub_end_ns : end;
    double pub_t = static_cast<double>(pe - p->pub_start_ns) / 1e9;
    // mqtt-stresser starts the receive clock only once publishing has finished.
    double rx_t = static_cast<double>(s->last_rx_ns > pe ? s->last_rx_ns - pe : 1000) / 1e9;
    pub_rates.push_back(static_cast<double>(p->sent) / pub_t);
    rx_rates.push_back(static_cast<double>(s->received) / rx_t);
  }
  std::sort(pub_rates.begin(), pub_rates.end());
  std::sort(rx_rates.begin(), rx_rates.end());
  double elapsed = static_cast<double>(end - t0) / 1e9;

  // Same summary layout as mqtt-stresser, so one parser reads both.
  std::printf("\n# Configuration\nConcurrent Clients: %d\nMessages / Client:  %llu\n\n", o.pairs,
              static_cast<unsigned long long>(M * static_cast<uint64_t>(o.pairs)));
  std::printf(
      "# Results\nPublished Messages: %llu\nReceived Messages:  %llu\nCompleted:          %d\n\n",
      static_cast<unsigned long long>(published), static_cast<unsigned long long>(received),
      completed);
  std::printf(
      "# Publishing Throughput\nFastest: %.0f msg/sec\nSlowest: %.0f msg/sec\nMedian: %.0f "
      "msg/sec\n\n",
      pub_rates.back(), pub_rates.front(), median(pub_rates));
  std::printf(
      "# Receiving Throughput\nFastest: %.0f msg/sec\nSlowest: %.0f msg/sec\nMedian: %.0f "
      "msg/sec\n\n",
      rx_rates.back(), rx_rates.front(), median(rx_rates));

  Json j;
  bool ok = G.fatal.empty() && received > 0;
  j.boolean("ok", ok);
  if (!G.fatal.empty()) j.str("error", G.fatal);
  j.str("mode", "stresser");
  j.boolean("device", o.device);
  j.integer("qos", o.qos);
  j.integer("clients", o.pairs);
  j.integer("published", static_cast<long long>(published));
  j.integer("expected_deliveries", static_cast<long long>(M * static_cast<uint64_t>(o.pairs)));
  j.integer("delivered", static_cast<long long>(received));
  j.integer("lost", static_cast<long long>(M * static_cast<uint64_t>(o.pairs) - received));
  j.integer("completed", completed);
  j.num("elapsed_s", elapsed);
  j.num("delivered_per_s", elapsed > 0 ? static_cast<double>(received) / elapsed : 0);
  j.num("publish_median_per_s", median(pub_rates));
  j.num("receive_median_per_s", median(rx_rates));
  emit_common(j, before, after, cpu1 - cpu0, static_cast<double>(now_ns() - t0) / 1e9);
  disconnect_all();
  std::printf("RESULT %s\n", j.done().c_str());
  std::fflush(stdout);
  return ok ? 0 : 1;
}

// ---------------------------------------------------------------- idle mode
int run_idle() {
  const Options& o = G.o;
  ProcSample before = sample_proc(o.server_pid);
  for (int i = 0; i < o.conns; ++i) add_conn(Role::Idle, i, "");
  uint64_t t0 = now_ns();
  setup();
  double connect_s = static_cast<double>(now_ns() - t0) / 1e9;
  std::printf("READY %d\n", G.ready);
  std::fflush(stdout);
  // Let the broker settle, then sample, then hold (answering nothing, pinging if needed).
  uint64_t sample_at = now_ns() + static_cast<uint64_t>(o.settle * 1e9);
  while (now_ns() < sample_at) {
    send_pings(now_ns());
    poll_once(50000000ull);
  }
  ProcSample mid = sample_proc(o.server_pid);
  uint64_t hold_until = now_ns() + static_cast<uint64_t>(o.hold * 1e9);
  while (now_ns() < hold_until) {
    send_pings(now_ns());
    poll_once(50000000ull);
  }
  int alive = 0;
  for (auto& c : G.conns)
    if (c->st == St::Ready) ++alive;
  ProcSample end = sample_proc(o.server_pid);
  Json j;
  bool ok = alive == o.conns;
  j.boolean("ok", ok);
  if (!ok)
    j.str("error", "only " + std::to_string(alive) + " of " + std::to_string(o.conns) +
                       " connections survived");
  j.str("mode", "idle");
  j.integer("connections", o.conns);
  j.integer("alive_at_end", alive);
  j.num("connect_s", connect_s);
  if (before.ok && mid.ok) {
    j.integer("server_rss_kb_before", before.rss_kb);
    j.integer("server_rss_kb_connected", mid.rss_kb);
    j.integer("server_rss_kb_end", end.rss_kb);
    j.num("rss_bytes_per_conn", static_cast<double>(mid.rss_kb - before.rss_kb) * 1024.0 / o.conns);
    j.num("server_cpu_s", mid.cpu_s - before.cpu_s);
  }
  j.integer("protocol_errors", static_cast<long long>(G.protocol_errors));
  j.integer("disconnects", static_cast<long long>(G.disconnects));
  disconnect_all();
  std::printf("RESULT %s\n", j.done().c_str());
  std::fflush(stdout);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  G.o = parse(argc, argv);
  // Raise the open-file limit as far as allowed.
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  G.ep = epoll_create1(EPOLL_CLOEXEC);
  if (G.ep < 0) die("epoll_create1 failed");
  G.addr.sin_family = AF_INET;
  G.addr.sin_port = htons(static_cast<uint16_t>(G.o.port));
  if (inet_pton(AF_INET, G.o.host.c_str(), &G.addr.sin_addr) != 1) die("bad --host (IPv4 only)");
  if ((ntohl(G.addr.sin_addr.s_addr) >> 24) != 127) die("refusing a non-loopback target");
  G.scratch.resize(1 << 18);
  G.payload.assign(G.o.size, 'x');
  if (G.o.tls) {
    G.ctx = SSL_CTX_new(TLS_client_method());
    if (!G.ctx) die("SSL_CTX_new failed");
    SSL_CTX_set_verify(G.ctx, SSL_VERIFY_NONE, nullptr);  // self-signed bench certificate
  }
  if (G.o.mode == "idle") return run_idle();
  if (G.o.mode == "stresser") return run_stresser();
  return run_throughput();
}
