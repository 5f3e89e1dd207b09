// The "passwd" subcommand (see passwd.hpp).
#include "auth/passwd.hpp"

#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <iterator>
#include <optional>
#include <string_view>

#include "auth/password_file.hpp"

namespace auth {

namespace {

constexpr const char* kUsage =
    "usage: mqtt-server passwd [-c] [-i ITERATIONS] FILE USER\n"
    "       mqtt-server passwd -b [-c] [-i ITERATIONS] FILE USER PASSWORD\n"
    "       mqtt-server passwd -D FILE USER\n"
    "\n"
    "Adds USER to the password FILE, or sets their password if they are in it.\n"
    "The password is asked for twice on the terminal, or read as one line from\n"
    "standard input when that is not a terminal.\n"
    "\n"
    "  -c             create FILE, replacing it if it exists\n"
    "  -b             take the password from the command line (other local users\n"
    "                 can see it in the process list; prefer standard input)\n"
    "  -i ITERATIONS  PBKDF2-HMAC-SHA512 iterations [default: 210000]\n"
    "  -D             delete USER from FILE\n"
    "  -h, --help     print this help\n";

constexpr uint32_t kMinToolIterations = 1000;

// ------------------------------------------------------------------ terminal

// Echo is restored even if the user interrupts the prompt: the handler puts
// the saved settings back and re-raises the signal with its default action.
struct termios g_saved_tty;
volatile sig_atomic_t g_echo_off_fd = -1;

extern "C" void restore_tty_and_reraise(int sig) {
  if (g_echo_off_fd >= 0) tcsetattr(g_echo_off_fd, TCSAFLUSH, &g_saved_tty);
  signal(sig, SIG_DFL);
  raise(sig);
}

constexpr int kTtySignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

// Reads one line (without "\n" or "\r\n") from `fd`, byte by byte so nothing
// after it is consumed. nullopt at end of input before any byte, on a read
// error, or when the line is longer than kMaxCredentialBytes.
std::optional<std::string> read_line(int fd, bool& too_long) {
  std::string line;
  too_long = false;
  bool any = false;
  for (;;) {
    char c;
    const ssize_t n = read(fd, &c, 1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::nullopt;
    }
    if (n == 0) break;
    any = true;
    if (c == '\n') break;
    if (line.size() > kMaxCredentialBytes) {
      too_long = true;
      continue;  // drain the rest of the line
    }
    line += c;
  }
  if (!any) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.size() > kMaxCredentialBytes) too_long = true;
  return line;
}

// Prompts on `err` and reads a line from the terminal `fd` with echo off.
std::optional<std::string> read_hidden(int fd, const char* prompt, std::FILE* err, bool& too_long) {
  std::fputs(prompt, err);
  std::fflush(err);
  struct termios saved;
  const bool have_tty = tcgetattr(fd, &saved) == 0;
  struct sigaction old_actions[std::size(kTtySignals)];
  if (have_tty) {
    g_saved_tty = saved;
    struct sigaction sa = {};
    sa.sa_handler = restore_tty_and_reraise;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < std::size(kTtySignals); ++i) {
      sigaction(kTtySignals[i], &sa, &old_actions[i]);
    }
    struct termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;  // still echo the newline, so the cursor moves on
    g_echo_off_fd = fd;
    tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  std::optional<std::string> line = read_line(fd, too_long);
  if (have_tty) {
    tcsetattr(fd, TCSAFLUSH, &saved);
    g_echo_off_fd = -1;
    for (size_t i = 0; i < std::size(kTtySignals); ++i) {
      sigaction(kTtySignals[i], &old_actions[i], nullptr);
    }
  }
  return line;
}

bool parse_iterations(std::string_view s, uint32_t& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && ptr == s.data() + s.size() &&
         out >= kMinToolIterations && out <= kMaxIterations;
}

}  // namespace

int passwd_command(const std::vector<std::string>& args, int in_fd, std::FILE* err) {
  auto usage_error = [&](const std::string& what) {
    std::fprintf(err, "mqtt-server passwd: %s\n%s", what.c_str(), kUsage);
    return 2;
  };
  auto fail = [&](const std::string& what) {
    std::fprintf(err, "mqtt-server passwd: %s\n", what.c_str());
    return 1;
  };

  bool create = false;
  bool batch = false;
  bool remove = false;
  uint32_t iterations = kDefaultIterations;
  std::vector<std::string> operands;
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (options_done || a.empty() || a[0] != '-' || a == "-") {
      operands.push_back(a);
      continue;
    }
    if (a == "--") {
      options_done = true;
    } else if (a == "-h" || a == "--help") {
      std::fputs(kUsage, err);
      return 0;
    } else if (a == "-c") {
      create = true;
    } else if (a == "-b") {
      batch = true;
    } else if (a == "-D") {
      remove = true;
    } else if (a == "-i") {
      if (i + 1 == args.size()) return usage_error("-i needs a number");
      if (!parse_iterations(args[++i], iterations)) {
        return usage_error("-i takes a number of iterations in " +
                           std::to_string(kMinToolIterations) + ".." +
                           std::to_string(kMaxIterations));
      }
    } else {
      return usage_error("unknown option '" + a + "'");
    }
  }
  if (remove && (create || batch)) return usage_error("-D cannot be combined with -c or -b");
  const size_t wanted = batch ? 3 : 2;
  if (operands.size() != wanted) {
    return usage_error(batch ? "-b needs FILE, USER and PASSWORD" : "expected FILE and USER");
  }
  const std::string& file = operands[0];
  const std::string& user = operands[1];
  std::string why;
  if (!valid_username(user, &why)) return fail(why);

  if (remove) {
    if (auto removed = remove_user(file, user); !removed) return fail(removed.error().message);
    return 0;
  }

  std::string password;
  if (batch) {
    password = operands[2];
  } else if (isatty(in_fd)) {
    bool too_long = false;
    auto first = read_hidden(in_fd, "Password: ", err, too_long);
    if (!first) return fail("no password entered");
    if (too_long) return fail("the password is longer than 65535 bytes");
    auto second = read_hidden(in_fd, "Reenter password: ", err, too_long);
    if (!second) return fail("no password entered");
    if (*first != *second) return fail("the passwords do not match");
    password = std::move(*first);
  } else {
    bool too_long = false;
    auto line = read_line(in_fd, too_long);
    if (!line) return fail("no password on standard input");
    if (too_long) return fail("the password is longer than 65535 bytes");
    password = std::move(*line);
  }
  if (password.empty()) return fail("the password is empty");
  if (auto set = set_user(file, user, password, iterations, create); !set) {
    std::string error = std::move(set).error().message;
    if (!create && error.find("No such file") != std::string::npos) {
      error += " (use -c to create it)";
    }
    return fail(error);
  }
  return 0;
}

int passwd_main(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return passwd_command(args, STDIN_FILENO, stderr);
}

}  // namespace auth
