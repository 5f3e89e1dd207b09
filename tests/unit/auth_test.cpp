// Unit tests of authentication and authorization (src/auth): password hashes
// and files, the passwd subcommand, ACL files and rule checks, connect
// decisions and the swappable policy.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include "result_helpers.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "auth/acl.hpp"
#include "auth/authenticator.hpp"
#include "auth/passwd.hpp"
#include "auth/password_file.hpp"
#include "auth/tls_identity.hpp"
#include "mqtt/topic.hpp"

namespace auth {
namespace {

// Whether `hay` contains `needle`, with both shown on failure.
::testing::AssertionResult Contains(std::string_view hay, std::string_view needle) {
  if (hay.find(needle) != std::string_view::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << hay << "\" does not contain \"" << needle << "\"";
}

constexpr uint32_t kFast = 1000;  // iterations for tests that hash a lot

// Known answers computed independently with Python's hashlib.pbkdf2_hmac.
// Mosquitto 2.x format: 12-byte salt 00..0b, 101 iterations, password "secret".
constexpr std::string_view kMosquittoSecret =
    "$7$101$AAECAwQFBgcICQoL$"
    "Xr99N9ym9ys8TWxis5ajETJq6EVYzmc6nb8t3pUYnPBbCAbICS4xejTltonXWCtJNBvA+"
    "By+TXUqU6qCblO00w==";
// Ours: 16-byte salt 00..0f, 1000 iterations, password "hunter2".
constexpr std::string_view kOursHunter2 =
    "$pbkdf2-sha512$1000$AAECAwQFBgcICQoLDA0ODw==$EFEdys9ZfcV9f0/"
    "GLMLvDalzZYpKPXK7CyNg0WV8++"
    "7HNGJUnjDXD/RhZkuoZpfsX+0iiYfKwIcryRQFr1UDAQ==";

// A fresh folder under the test temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "auth_test.XXXXXX";
    char* made = mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

void write_text(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// ------------------------------------------------------------------ hashes

TEST(PasswordHash, RoundTripAndFormat) {
  const std::string h = hash_password("correct horse", kFast);
  ASSERT_TRUE(h.starts_with("$pbkdf2-sha512$1000$")) << h;
  PasswordHash parsed;
  std::string error;
  ASSERT_TRUE(test_util::ok_into(parse_password_hash(h), parsed, error)) << error;
  EXPECT_EQ(parsed.iterations, kFast);
  EXPECT_EQ(parsed.salt.size(), kSaltBytes);
  EXPECT_EQ(parsed.hash.size(), kHashBytes);
  EXPECT_TRUE(verify_password(h, "correct horse"));
  EXPECT_TRUE(verify_password(parsed, "correct horse"));
}

TEST(PasswordHash, WrongPasswordIsRefused) {
  const std::string h = hash_password("correct horse", kFast);
  EXPECT_FALSE(verify_password(h, "correct hors"));
  EXPECT_FALSE(verify_password(h, "correct horse "));
  EXPECT_FALSE(verify_password(h, "Correct horse"));
  EXPECT_FALSE(verify_password(h, ""));
}

TEST(PasswordHash, SaltIsRandom) {
  EXPECT_NE(hash_password("same", kFast), hash_password("same", kFast));
}

TEST(PasswordHash, DefaultIterationsAndCost) {
  const auto start = std::chrono::steady_clock::now();
  const std::string h = hash_password("pw");
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  EXPECT_TRUE(h.starts_with("$pbkdf2-sha512$210000$")) << h;
  EXPECT_TRUE(verify_password(h, "pw"));
  std::printf("one PBKDF2-HMAC-SHA512 derivation at %u iterations: %lld ms\n", kDefaultIterations,
              static_cast<long long>(ms));
}

TEST(PasswordHash, KnownAnswers) {
  EXPECT_TRUE(verify_password(kOursHunter2, "hunter2"));
  EXPECT_FALSE(verify_password(kOursHunter2, "hunter3"));
  // Mosquitto's own password files ($7$) are read too.
  EXPECT_TRUE(verify_password(kMosquittoSecret, "secret"));
  EXPECT_FALSE(verify_password(kMosquittoSecret, "Secret"));
}

TEST(PasswordHash, TamperedValuesAreRefused) {
  const std::string good(kOursHunter2);
  // Flip one character of the hash, of the salt, and change the iterations:
  // each must make the right password fail (or the value not parse).
  std::string hash_flip = good;
  hash_flip[hash_flip.size() - 5] = hash_flip[hash_flip.size() - 5] == 'A' ? 'B' : 'A';
  std::string salt_flip = good;
  const size_t salt_at = good.find('$', 16) + 1;
  salt_flip[salt_at] = salt_flip[salt_at] == 'A' ? 'B' : 'A';
  std::string iter_change = good;
  iter_change.replace(good.find("1000"), 4, "1001");
  std::string truncated = good.substr(0, good.size() - 4);
  for (const std::string& bad : {hash_flip, salt_flip, iter_change, truncated}) {
    EXPECT_FALSE(verify_password(bad, "hunter2")) << bad;
  }
}

struct BadHashCase {
  std::string value;
  const char* reason;  // a substring of the error
};

TEST(PasswordHash, BadValuesTable) {
  const BadHashCase cases[] = {
      {"", "does not start with"},
      {"plaintext", "does not start with"},
      {"$6$abc$def", "$6$"},
      {"$pbkdf2-sha256$1000$AAECAwQFBgcICQoL$AAAA", "does not start with"},
      {"$pbkdf2-sha512$1000$AAECAwQFBgcICQoL", "expected <iterations>$<salt>$<hash>"},
      {"$pbkdf2-sha512$1000$a$b$c", "expected <iterations>$<salt>$<hash>"},
      {"$pbkdf2-sha512$$AAECAwQFBgcICQoL$" + std::string(88, 'A'), "iteration count"},
      {"$pbkdf2-sha512$0$AAECAwQFBgcICQoL$" + std::string(88, 'A'), "iteration count"},
      {"$pbkdf2-sha512$-5$AAECAwQFBgcICQoL$" + std::string(88, 'A'), "iteration count"},
      {"$pbkdf2-sha512$12x$AAECAwQFBgcICQoL$" + std::string(88, 'A'), "iteration count"},
      {"$pbkdf2-sha512$99999999999$AAECAwQFBgcICQoL$" + std::string(88, 'A'), "iteration count"},
      {"$pbkdf2-sha512$1000$AAEC*wQFBgcICQoL$" + std::string(88, 'A'), "salt is not valid base64"},
      {"$pbkdf2-sha512$1000$AAECAw==$" + std::string(88, 'A'), "salt has 4 bytes"},
      {"$pbkdf2-sha512$1000$AAECAwQFBgcICQoL$AAAA", "hash has 3 bytes"},
      {"$pbkdf2-sha512$1000$AAECAwQFBgcICQoL$" + std::string(87, 'A') + "*", "not valid base64"},
      {"$pbkdf2-sha512$1000$AAECAwQFBgcICQoL$" + std::string(87, 'A'), "hash has 65 bytes"},
      {"$pbkdf2-sha512$1000$AAECAwQFBgcICQoL$" + std::string(84, 'A'), "hash has 63 bytes"},
      {"$pbkdf2-sha512$1000$AAECAwQFBgcICQoL$" + std::string(120, 'A'), "hash has 90 bytes"},
      // Non-zero leftover bits: "AB==" would decode like "AA==".
      {"$pbkdf2-sha512$1000$AAECAwQFBgcICQoLDA0OAB==$" + std::string(88, 'A'), "salt is not"},
  };
  for (const auto& c : cases) {
    PasswordHash h;
    std::string error;
    EXPECT_FALSE(test_util::ok_into(parse_password_hash(c.value), h, error)) << c.value;
    EXPECT_TRUE(Contains(error, c.reason)) << c.value;
  }
}

TEST(PasswordHash, RefusesOutOfRangeInput) {
  EXPECT_EQ(hash_password("x", 0), "");
  EXPECT_EQ(hash_password("x", kMaxIterations + 1), "");
  EXPECT_EQ(hash_password(std::string(kMaxCredentialBytes + 1, 'x'), kFast), "");
  EXPECT_NE(hash_password(std::string(kMaxCredentialBytes, 'x'), kFast), "");
}

TEST(PasswordHash, BinaryPasswords) {
  using namespace std::string_literals;
  const std::string pw = "a\0b\xff"s;
  const std::string h = hash_password(pw, kFast);
  EXPECT_TRUE(verify_password(h, pw));
  EXPECT_FALSE(verify_password(h, "a"));
}

struct UsernameCase {
  std::string name;
  bool valid;
};

TEST(Username, Table) {
  using namespace std::string_literals;
  const UsernameCase cases[] = {
      {"alice", true},
      {"dev-01.example.com", true},
      {"with space", true},
      {"\xC3\xA9t\xC3\xA9", true},
      {std::string(kMaxCredentialBytes, 'u'), true},
      {"", false},
      {"a:b", false},
      {"a\nb", false},
      {"a\rb", false},
      {" alice", false},
      {"alice\t", false},
      {"a\0b"s, false},
      {"\xC3", false},
      {std::string(kMaxCredentialBytes + 1, 'u'), false},
  };
  for (const auto& c : cases) {
    std::string why;
    EXPECT_EQ(valid_username(c.name, &why), c.valid) << c.name.substr(0, 20);
    EXPECT_EQ(why.empty(), c.valid) << why;
  }
}

// ------------------------------------------------------------------ password
// files

TEST(PasswordFile, ParsesUsersCommentsAndBlankLines) {
  const std::string text =
      "# users of the test broker\n"
      "\n"
      "alice:" +
      std::string(kOursHunter2) +
      "\r\n"
      "   # indented comment\n"
      "bob:" +
      std::string(kMosquittoSecret) +
      "   \n"
      "carol:" +
      hash_password("carol's", kFast);  // no final newline
  PasswordFile f;
  std::string error;
  ASSERT_TRUE(test_util::ok(f.parse(text, "pw"), error)) << error;
  EXPECT_EQ(f.size(), 3u);
  EXPECT_TRUE(f.has_user("alice"));
  EXPECT_TRUE(f.check("alice", "hunter2"));
  EXPECT_FALSE(f.check("alice", "secret"));
  EXPECT_TRUE(f.check("bob", "secret"));
  EXPECT_TRUE(f.check("carol", "carol's"));
  EXPECT_FALSE(f.check("dave", "hunter2"));
  EXPECT_FALSE(f.check("Alice", "hunter2"));
  EXPECT_FALSE(f.check("", ""));
}

TEST(PasswordFile, EmptyFileHasNoUsers) {
  PasswordFile f;
  std::string error;
  ASSERT_TRUE(test_util::ok(f.parse("# nobody yet\n", "pw"), error));
  EXPECT_EQ(f.size(), 0u);
  EXPECT_FALSE(f.check("alice", "hunter2"));
}

TEST(PasswordFile, BadLinesAreReportedWithLineNumbers) {
  const std::string good = "alice:" + std::string(kOursHunter2);
  const std::string lines[] = {
      "# comment",                               // 1
      good,                                      // 2
      "no colon here",                           // 3
      ":" + std::string(kOursHunter2),           // 4
      "bob:plain",                               // 5
      "carol:$6$c2FsdA==$aGFzaA==",              // 6
      "",                                        // 7
      "alice:" + std::string(kMosquittoSecret),  // 8
      " dave:" + std::string(kOursHunter2),      // 9
  };
  std::string text;
  for (const auto& line : lines) text += line + "\n";
  PasswordFile f;
  std::string error;
  ASSERT_FALSE(test_util::ok(f.parse(text, "users.pw"), error));
  EXPECT_TRUE(Contains(error, "users.pw:3: expected 'username:hash'"));
  EXPECT_TRUE(Contains(error, "users.pw:4: the user name is empty"));
  EXPECT_TRUE(Contains(error, "users.pw:5: user 'bob': the hash does not start with"));
  EXPECT_TRUE(Contains(error, "users.pw:6: user 'carol': Mosquitto's old '$6$'"));
  EXPECT_TRUE(Contains(error, "users.pw:8: user 'alice' is already defined on line 2"));
  EXPECT_TRUE(Contains(error, "users.pw:9: the user name starts or ends with a blank"));
  EXPECT_EQ(std::count(error.begin(), error.end(), '\n'), 5) << error;  // six errors
  EXPECT_EQ(f.size(), 0u);
}

TEST(PasswordFile, LoadReportsMissingFile) {
  TempDir dir;
  PasswordFile f;
  std::string error;
  EXPECT_FALSE(test_util::ok(f.load(dir.file("missing")), error));
  EXPECT_TRUE(Contains(error, "missing: No such file or directory"));
  EXPECT_FALSE(test_util::ok(f.load(dir.file("")), error));  // a folder
  EXPECT_TRUE(Contains(error, "Is a directory"));
}

TEST(PasswordFile, SetUserCreatesReplacesAndKeepsOtherLines) {
  TempDir dir;
  const std::string path = dir.file("pw");
  std::string error;
  // Without -c the file must exist.
  EXPECT_FALSE(test_util::ok(set_user(path, "alice", "one", kFast, false), error));
  EXPECT_TRUE(Contains(error, "No such file"));

  ASSERT_TRUE(test_util::ok(set_user(path, "alice", "one", kFast, true), error)) << error;
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // Hand-written comments and other users survive an update.
  write_text(path, "# managed by hand\n" + read_text(path) + "\n# end\n");
  ASSERT_TRUE(test_util::ok(set_user(path, "bob", "two", kFast, false), error)) << error;
  ASSERT_TRUE(test_util::ok(set_user(path, "alice", "three", kFast, false), error)) << error;
  const std::string text = read_text(path);
  EXPECT_TRUE(text.starts_with("# managed by hand\nalice:$pbkdf2-sha512$1000$")) << text;
  EXPECT_TRUE(Contains(text, "\n# end\nbob:$pbkdf2-sha512$"));
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 5) << text;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  PasswordFile f;
  ASSERT_TRUE(test_util::ok(f.load(path), error)) << error;
  EXPECT_EQ(f.size(), 2u);
  EXPECT_TRUE(f.check("alice", "three"));
  EXPECT_FALSE(f.check("alice", "one"));
  EXPECT_TRUE(f.check("bob", "two"));

  // -c starts again from nothing.
  ASSERT_TRUE(test_util::ok(set_user(path, "carol", "four", kFast, true), error)) << error;
  ASSERT_TRUE(test_util::ok(f.load(path), error)) << error;
  EXPECT_EQ(f.size(), 1u);
  EXPECT_TRUE(f.check("carol", "four"));

  // No temporary files are left behind.
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.file(""))) {
    ++entries;
  }
  EXPECT_EQ(entries, 1u);
}

TEST(PasswordFile, SetUserRefusesBadInputAndBrokenFiles) {
  TempDir dir;
  const std::string path = dir.file("pw");
  std::string error;
  EXPECT_FALSE(test_util::ok(set_user(path, "a:b", "pw", kFast, true), error));
  EXPECT_TRUE(Contains(error, "contains ':'"));
  EXPECT_FALSE(test_util::ok(set_user(path, "alice", "", kFast, true), error));
  EXPECT_TRUE(Contains(error, "password is empty"));
  EXPECT_FALSE(test_util::ok(set_user(path, "alice", "pw", 0, true), error));
  EXPECT_TRUE(Contains(error, "iteration count"));
  EXPECT_FALSE(std::filesystem::exists(path));

  write_text(path, "alice:" + std::string(kOursHunter2) + "\nbroken line\n");
  EXPECT_FALSE(test_util::ok(set_user(path, "bob", "pw", kFast, false), error));
  EXPECT_TRUE(Contains(error, ":2: expected 'username:hash'"));
  EXPECT_TRUE(Contains(error, "not changed"));
  EXPECT_TRUE(Contains(read_text(path), "broken line"));
}

TEST(PasswordFile, RemoveUser) {
  TempDir dir;
  const std::string path = dir.file("pw");
  std::string error;
  ASSERT_TRUE(test_util::ok(set_user(path, "alice", "one", kFast, true), error)) << error;
  ASSERT_TRUE(test_util::ok(set_user(path, "bob", "two", kFast, false), error)) << error;
  ASSERT_TRUE(test_util::ok(remove_user(path, "alice"), error)) << error;
  EXPECT_FALSE(test_util::ok(remove_user(path, "alice"), error));
  EXPECT_TRUE(Contains(error, "no user 'alice'"));
  PasswordFile f;
  ASSERT_TRUE(test_util::ok(f.load(path), error)) << error;
  EXPECT_FALSE(f.has_user("alice"));
  EXPECT_TRUE(f.check("bob", "two"));
}

// ------------------------------------------------------------------ passwd
// subcommand

// Runs passwd_command with `input` on a pipe as standard input; returns the
// exit code and leaves stderr's text in `err_text`.
int run_passwd(const std::vector<std::string>& args, std::string_view input,
               std::string& err_text) {
  signal(SIGPIPE, SIG_IGN);  // the command may stop reading early
  // A pipe, as in "echo pw | mqtt-server passwd ...", filled by a thread so
  // that input larger than the pipe buffer does not block.
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  std::thread writer([&] {
    size_t done = 0;
    while (done < input.size()) {
      const ssize_t n = write(fds[1], input.data() + done, input.size() - done);
      if (n <= 0) break;  // the reader stopped early (EPIPE)
      done += static_cast<size_t>(n);
    }
    close(fds[1]);
  });
  std::FILE* err = std::tmpfile();
  const int rc = passwd_command(args, fds[0], err);
  close(fds[0]);
  writer.join();
  std::fflush(err);
  std::rewind(err);
  err_text.clear();
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, err)) > 0) err_text.append(buf, n);
  std::fclose(err);
  return rc;
}

TEST(Passwd, ReadsPasswordFromPipedStdin) {
  TempDir dir;
  const std::string path = dir.file("pw");
  std::string err;
  ASSERT_EQ(run_passwd({"-c", "-i", "1000", path, "alice"}, "s3cret\n", err), 0) << err;
  ASSERT_EQ(run_passwd({"-i", "1000", path, "bob"}, "windows\r\n", err), 0) << err;
  ASSERT_EQ(run_passwd({"-i", "1000", path, "carol"}, "no newline", err), 0) << err;
  PasswordFile f;
  std::string error;
  ASSERT_TRUE(test_util::ok(f.load(path), error)) << error;
  EXPECT_TRUE(f.check("alice", "s3cret"));
  EXPECT_TRUE(f.check("bob", "windows"));
  EXPECT_TRUE(f.check("carol", "no newline"));
  EXPECT_TRUE(Contains(read_text(path), "alice:$pbkdf2-sha512$1000$"));
}

TEST(Passwd, BatchModeAndDelete) {
  TempDir dir;
  const std::string path = dir.file("pw");
  std::string err;
  ASSERT_EQ(run_passwd({"-b", "-c", "-i", "1000", path, "alice", "pw1"}, "", err), 0) << err;
  ASSERT_EQ(run_passwd({"-b", "-i", "1000", path, "bob", "pw2"}, "", err), 0) << err;
  ASSERT_EQ(run_passwd({"-D", path, "alice"}, "", err), 0) << err;
  PasswordFile f;
  std::string error;
  ASSERT_TRUE(test_util::ok(f.load(path), error)) << error;
  EXPECT_FALSE(f.has_user("alice"));
  EXPECT_TRUE(f.check("bob", "pw2"));
}

TEST(Passwd, DefaultIterations) {
  TempDir dir;
  const std::string path = dir.file("pw");
  std::string err;
  ASSERT_EQ(run_passwd({"-b", "-c", path, "alice", "pw"}, "", err), 0) << err;
  EXPECT_TRUE(Contains(read_text(path), "alice:$pbkdf2-sha512$210000$"));
}

struct PasswdErrorCase {
  std::vector<std::string> args;  // "FILE" is replaced by a path in a temp folder
  std::string input;
  int rc;
  const char* message;
};

TEST(Passwd, ErrorsTable) {
  const PasswdErrorCase cases[] = {
      {{}, "", 2, "expected FILE and USER"},
      {{"FILE"}, "", 2, "expected FILE and USER"},
      {{"FILE", "alice", "extra"}, "", 2, "expected FILE and USER"},
      {{"-b", "FILE", "alice"}, "", 2, "-b needs FILE, USER and PASSWORD"},
      {{"-x", "FILE", "alice"}, "", 2, "unknown option '-x'"},
      {{"-i", "FILE", "alice"}, "", 2, "-i takes a number"},
      {{"-i", "10", "FILE", "alice"}, "", 2, "-i takes a number"},
      {{"-c", "-i"}, "", 2, "-i needs a number"},
      {{"-D", "-c", "FILE", "alice"}, "", 2, "-D cannot be combined"},
      {{"-c", "FILE", "a:b"}, "pw\n", 1, "contains ':'"},
      {{"-c", "FILE", "alice"}, "", 1, "no password on standard input"},
      {{"-c", "FILE", "alice"}, "\n", 1, "the password is empty"},
      {{"-c", "FILE", "alice"}, std::string(70000, 'p'), 1, "longer than 65535"},
      {{"FILE", "alice"}, "pw\n", 1, "(use -c to create it)"},
      {{"-D", "FILE", "alice"}, "", 1, "No such file"},
  };
  for (const auto& c : cases) {
    TempDir dir;
    std::vector<std::string> args = c.args;
    for (auto& a : args) {
      if (a == "FILE") a = dir.file("pw");
    }
    std::string err;
    EXPECT_EQ(run_passwd(args, c.input, err), c.rc) << c.message;
    EXPECT_TRUE(Contains(err, c.message));
    EXPECT_FALSE(std::filesystem::exists(dir.file("pw"))) << c.message;
  }
}

TEST(Passwd, Help) {
  std::string err;
  EXPECT_EQ(run_passwd({"--help"}, "", err), 0);
  EXPECT_TRUE(Contains(err, "usage: mqtt-server passwd"));
}

// ------------------------------------------------------------------
// filter_covers

struct CoverCase {
  const char* rule;
  const char* filter;
  bool covers;
};

TEST(FilterCovers, Table) {
  const CoverCase cases[] = {
      // Identical filters cover themselves.
      {"a/b", "a/b", true},
      {"a/+", "a/+", true},
      {"a/#", "a/#", true},
      {"#", "#", true},
      // '#' covers everything below and the parent level.
      {"a/#", "a", true},
      {"a/#", "a/b", true},
      {"a/#", "a/+", true},
      {"a/#", "a/+/b", true},
      {"a/#", "a/b/#", true},
      {"a/#", "a/+/#", true},
      {"a/#", "b", false},
      {"a/#", "+", false},
      {"a/#", "+/b", false},
      {"a/#", "#", false},
      {"a/b/#", "a/#", false},
      {"a/b/#", "a/b", true},
      {"#", "a/b/c", true},
      {"#", "+/+", true},
      {"#", "/", true},
      // '+' covers exactly one level.
      {"a/+", "a/b", true},
      {"a/+", "a/", true},
      {"a/+", "a/+", true},
      {"a/+", "a/#", false},
      {"a/+", "a", false},
      {"a/+", "a/b/c", false},
      {"a/+", "a/b/#", false},
      {"+/+", "a/b", true},
      {"+/+", "+/b", true},
      {"+/b", "+/+", false},
      {"a/b", "a/+", false},
      {"a/b", "a/#", false},
      {"a/b", "a", false},
      {"a", "a/b", false},
      {"a/+/c", "a/b/c", true},
      {"a/+/c", "a/+/c", true},
      {"a/+/c", "a/b/d", false},
      {"a/+/#", "a/b", true},
      {"a/+/#", "a/+/c/d", true},
      {"a/+/#", "a", false},  // "a/#" and "a" match the topic "a"; "a/+/#" does not
      {"a/+/#", "a/#", false},
      // "+/#" matches every topic "#" does: a topic has at least one level.
      {"+/#", "#", true},
      {"#", "+/#", true},
      {"+/+/#", "#", false},
      {"+/#", "+", true},
      // Empty levels are ordinary levels.
      {"/+", "/a", true},
      {"+/a", "/a", true},
      {"a//b", "a/+/b", false},
      {"a/+/b", "a//b", true},
      // [MQTT-4.7.2-1]: leading wildcards do not reach '$' topics.
      {"#", "$SYS/#", false},
      {"#", "$SYS/x", false},
      {"+/x", "$SYS/x", false},
      {"+/#", "$SYS", false},
      {"$SYS/#", "$SYS/broker/load", true},
      {"$SYS/#", "#", false},
      {"$SYS/+", "$SYS/x", true},
      {"a/#", "a/$x", true},  // only the first level is special
      {"#", "+", true},       // neither side matches '$' topics
      // "/#" has no parent topic (it would be the empty topic), so one more
      // level on the rule's side costs nothing.
      {"/+/#", "/#", true},
      {"+/+/#", "/#", true},
      {"a/+/#", "a/#", false},  // ...unlike under a non-empty level
      {"//+/#", "//#", false},  // nor under two levels: "/" is a topic
  };
  for (const auto& c : cases) {
    EXPECT_EQ(filter_covers(c.rule, c.filter), c.covers)
        << "rule " << c.rule << " filter " << c.filter;
  }
}

// filter_covers against its definition: for small alphabets, every topic the
// filter matches must be matched by the rule (both per mqtt::topic_matches).
TEST(FilterCovers, AgreesWithBruteForce) {
  // Filter levels use a, $s, +, #; topic levels add values no filter names
  // ("z", "$t", "") so that "any other value" is represented.
  const std::vector<std::string> filter_levels = {"a", "$s", "", "+", "#"};
  const std::vector<std::string> topic_levels = {"a", "$s", "", "z", "$t"};
  auto all_strings = [](const std::vector<std::string>& levels, int max_depth) {
    std::vector<std::string> out;
    std::vector<std::string> partial = {""};
    for (int depth = 1; depth <= max_depth; ++depth) {
      std::vector<std::string> next;
      for (const auto& p : partial) {
        for (const auto& l : levels) next.push_back(depth == 1 ? l : p + "/" + l);
      }
      out.insert(out.end(), next.begin(), next.end());
      partial = std::move(next);
    }
    return out;
  };
  std::vector<std::string> filters;
  for (auto& f : all_strings(filter_levels, 4)) {
    if (mqtt::valid_topic_filter(f)) filters.push_back(std::move(f));
  }
  std::vector<std::string> topics;
  for (auto& t : all_strings(topic_levels, 5)) {
    if (mqtt::valid_topic_name(t)) topics.push_back(std::move(t));  // drops the empty topic
  }
  // matched[f]: which topics filter f matches, as a bitset.
  const size_t words = (topics.size() + 63) / 64;
  std::vector<std::vector<uint64_t>> matched(filters.size(), std::vector<uint64_t>(words));
  for (size_t f = 0; f < filters.size(); ++f) {
    for (size_t t = 0; t < topics.size(); ++t) {
      if (mqtt::topic_matches(filters[f], topics[t])) matched[f][t / 64] |= uint64_t{1} << (t % 64);
    }
  }
  size_t checked = 0;
  size_t covering = 0;
  for (size_t r = 0; r < filters.size(); ++r) {
    for (size_t f = 0; f < filters.size(); ++f) {
      bool subset = true;
      for (size_t w = 0; w < words && subset; ++w) subset = (matched[f][w] & ~matched[r][w]) == 0;
      ++checked;
      covering += subset;
      if (filter_covers(filters[r], filters[f]) != subset) {
        ADD_FAILURE() << "rule '" << filters[r] << "' filter '" << filters[f] << "': expected "
                      << subset;
      }
    }
  }
  EXPECT_GT(checked, 150000u);
  EXPECT_GT(covering, 5000u);
  std::printf("%zu rule/filter pairs checked against %zu topics, %zu covering\n", checked,
              topics.size(), covering);
}

// ------------------------------------------------------------------ ACL files

AclFile parse_acl(std::string_view text) {
  AclFile acl;
  std::string error;
  EXPECT_TRUE(test_util::ok(acl.parse(text, "acl"), error)) << error;
  return acl;
}

std::shared_ptr<const ClientRules> rules(const AclFile& acl, std::string_view client_id,
                                         std::optional<std::string_view> user) {
  return acl.rules_for(ClientIdentity{client_id, user});
}

constexpr std::string_view kAcl =
    "# anonymous clients\n"
    "topic read public/#\n"
    "topic write public/anon/+\n"
    "\n"
    "user alice\n"
    "topic readwrite alice/#\n"
    "topic deny alice/secret\n"
    "topic shared/+/status\n"  // no access word: readwrite
    "\n"
    "user bob\n"
    "topic read alice/#\n"
    "topic write   bob reports/daily  \n"  // blanks inside the filter are kept
    "\n"
    "pattern write devices/%c/out\n"
    "pattern read devices/%c/in/#\n"
    "pattern readwrite users/%u/#\n"
    "pattern write mixed/%u-%c/x\n";

TEST(Acl, AnonymousRules) {
  const AclFile acl = parse_acl(kAcl);
  auto r = rules(acl, "dev1", std::nullopt);
  EXPECT_TRUE(r->may_subscribe("public/#"));
  EXPECT_TRUE(r->may_subscribe("public/news"));
  EXPECT_FALSE(r->may_subscribe("#"));
  EXPECT_FALSE(r->may_publish("public/news"));  // read only
  EXPECT_TRUE(r->may_publish("public/anon/x"));
  EXPECT_FALSE(r->may_publish("public/anon/x/y"));
  EXPECT_FALSE(r->may_publish("alice/x"));
  // Patterns with %c apply to anonymous clients; those with %u do not.
  EXPECT_TRUE(r->may_publish("devices/dev1/out"));
  EXPECT_FALSE(r->may_publish("devices/dev2/out"));
  EXPECT_TRUE(r->may_subscribe("devices/dev1/in/#"));
  EXPECT_FALSE(r->may_subscribe("devices/+/in/#"));
  EXPECT_FALSE(r->may_publish("mixed/-dev1/x"));
  EXPECT_EQ(r->write_filters(), (std::vector<std::string>{"public/anon/+", "devices/dev1/out"}));
}

TEST(Acl, UserBlocks) {
  const AclFile acl = parse_acl(kAcl);
  auto alice = rules(acl, "phone", "alice");
  EXPECT_TRUE(alice->may_publish("alice/notes"));
  EXPECT_TRUE(alice->may_subscribe("alice/#"));
  EXPECT_TRUE(alice->may_publish("shared/x/status"));
  EXPECT_TRUE(alice->may_subscribe("shared/+/status"));
  EXPECT_FALSE(alice->may_subscribe("public/#"));  // the anonymous rules are not hers
  EXPECT_TRUE(alice->may_publish("users/alice/x"));
  EXPECT_TRUE(alice->may_publish("mixed/alice-phone/x"));
  EXPECT_FALSE(alice->may_publish("bob reports/daily"));

  auto bob = rules(acl, "laptop", "bob");
  EXPECT_TRUE(bob->may_subscribe("alice/+"));
  EXPECT_FALSE(bob->may_publish("alice/notes"));
  EXPECT_TRUE(bob->may_publish("bob reports/daily"));
  EXPECT_TRUE(bob->may_subscribe("users/bob/#"));
  EXPECT_FALSE(bob->may_subscribe("users/alice/#"));

  // A user with no block gets the patterns only.
  auto carol = rules(acl, "c1", "carol");
  EXPECT_EQ(carol->read_filters(), (std::vector<std::string>{"devices/c1/in/#", "users/carol/#"}));
  EXPECT_FALSE(carol->may_subscribe("public/#"));
  EXPECT_FALSE(carol->may_publish("alice/x"));
}

TEST(Acl, DenyWinsWhateverTheOrder) {
  for (std::string_view text : {"topic readwrite a/#\ntopic deny a/secret/#\n",
                                "topic deny a/secret/#\ntopic readwrite a/#\n"}) {
    const AclFile acl = parse_acl(text);
    auto r = rules(acl, "c", std::nullopt);
    EXPECT_TRUE(r->has_deny());
    EXPECT_TRUE(r->may_publish("a/open"));
    EXPECT_FALSE(r->may_publish("a/secret"));
    EXPECT_FALSE(r->may_publish("a/secret/x"));
    EXPECT_FALSE(r->may_subscribe("a/secret"));
    EXPECT_FALSE(r->may_subscribe("a/secret/#"));
    EXPECT_FALSE(r->may_subscribe("a/secret/+"));
    // Overlapping but not wholly denied: allowed, filtered on delivery.
    EXPECT_TRUE(r->may_subscribe("a/#"));
    EXPECT_TRUE(r->may_subscribe("a/+/x"));
    EXPECT_TRUE(r->may_receive("a/open"));
    EXPECT_FALSE(r->may_receive("a/secret/x"));
    EXPECT_FALSE(r->may_receive("b"));
  }
}

TEST(Acl, DenyInPatterns) {
  const AclFile acl = parse_acl("topic readwrite #\npattern deny private/%c/#\n");
  auto r = rules(acl, "me", std::nullopt);
  EXPECT_FALSE(r->may_publish("private/me/x"));
  EXPECT_TRUE(r->may_publish("private/you/x"));
}

TEST(Acl, NoRulesMeansNothingAllowed) {
  const AclFile acl = parse_acl("# empty\n");
  auto r = rules(acl, "c", "u");
  EXPECT_FALSE(r->may_publish("a"));
  EXPECT_FALSE(r->may_subscribe("a"));
  EXPECT_FALSE(r->may_receive("a"));
  EXPECT_FALSE(r->has_deny());
  EXPECT_FALSE(r->allows_everything());
}

TEST(Acl, AllowAll) {
  auto r = ClientRules::allow_all();
  EXPECT_TRUE(r->allows_everything());
  EXPECT_TRUE(r->may_publish("a/b"));
  EXPECT_TRUE(r->may_subscribe("#"));
  EXPECT_TRUE(r->may_subscribe("$SYS/#"));
  EXPECT_TRUE(r->may_receive("x"));
  EXPECT_FALSE(r->has_deny());
  EXPECT_EQ(r, ClientRules::allow_all());  // shared, no allocation per client
}

TEST(Acl, RepeatedUserBlocksAddUp) {
  const AclFile acl =
      parse_acl("user u\ntopic read a\nuser v\ntopic read b\nuser u\ntopic read c\n");
  auto r = rules(acl, "x", "u");
  EXPECT_EQ(r->read_filters(), (std::vector<std::string>{"a", "c"}));
}

TEST(Acl, ClientsShareRulesWhenNoPatternApplies) {
  const AclFile acl = parse_acl("topic read a\nuser u\ntopic read b\npattern read all/#\n");
  auto u1 = rules(acl, "c1", "u");
  EXPECT_EQ(u1, rules(acl, "c2", "u"));
  EXPECT_EQ(rules(acl, "c1", std::nullopt), rules(acl, "c2", std::nullopt));
  EXPECT_NE(u1, rules(acl, "c1", std::nullopt));
  EXPECT_TRUE(u1->may_subscribe("all/x"));
  EXPECT_TRUE(u1->may_subscribe("b"));
  EXPECT_FALSE(u1->may_subscribe("a"));
  auto v = rules(acl, "c1", "v");  // no block: the static patterns only
  EXPECT_TRUE(v->may_subscribe("all/#"));
  EXPECT_FALSE(v->may_subscribe("b"));
  EXPECT_EQ(v, rules(acl, "c1", "w"));

  // A %c pattern that does not apply (a client id with '/') shares too.
  const AclFile acl2 = parse_acl("topic read a\npattern read x/%c\npattern deny a/%c\n");
  EXPECT_EQ(rules(acl2, "a/b", std::nullopt), rules(acl2, "c/d", std::nullopt));
  auto ab = rules(acl2, "ab", std::nullopt);
  EXPECT_NE(ab, rules(acl2, "cd", std::nullopt));
  EXPECT_EQ(ab->read_filters(), (std::vector<std::string>{"a", "x/ab"}));
  EXPECT_EQ(ab->deny_filters(), (std::vector<std::string>{"a/ab"}));
  EXPECT_TRUE(ab->has_deny());
  EXPECT_FALSE(rules(acl2, "a/b", std::nullopt)->has_deny());
  EXPECT_TRUE(ab->may_subscribe("x/ab"));
  EXPECT_TRUE(ab->may_receive("a"));
}

TEST(Acl, DenyInSharedAndOwnRules) {
  const AclFile acl = parse_acl("topic readwrite #\ntopic deny s/#\npattern deny p/%c\n");
  auto r = rules(acl, "me", std::nullopt);
  for (std::string_view t : {"s/x", "p/me"}) {
    EXPECT_FALSE(r->may_publish(t)) << t;
    EXPECT_FALSE(r->may_subscribe(t)) << t;
    EXPECT_FALSE(r->may_receive(t)) << t;
  }
  EXPECT_TRUE(r->may_publish("p/you"));
}

struct InjectionCase {
  std::string client_id;
  std::optional<std::string> user;
  bool applies;  // whether "pattern readwrite dev/%c/%u/data" applies
};

// An identity must not widen a pattern: values with '+', '#' or '/' (or a
// leading '$') make the pattern not apply at all.
TEST(Acl, WildcardInjectionTable) {
  const AclFile acl = parse_acl("pattern readwrite dev/%c/%u/data\npattern read %c/#\n");
  const InjectionCase cases[] =
      {
          {"c1", "u1", true},   {"+", "u1", false},   {"#", "u1", false},
          {"c/1", "u1", false}, {"c1", "+", false},   {"c1", "#", false},
          {"c1", "a/b", false}, {"c+1", "u1", false}, {"c1", std::nullopt, false},
          {"c1", "", false},    {"%u", "u1", true},  // substituted once: "%u" stays literal text
          {"$x", "u1", true},                        // '$' inside the filter is harmless
      };
  for (const auto& c : cases) {
    std::optional<std::string_view> user;
    if (c.user) user = *c.user;
    auto r = rules(acl, c.client_id, user);
    bool has_pattern = false;
    for (const auto& f : r->write_filters()) has_pattern |= f.starts_with("dev/");
    EXPECT_EQ(has_pattern, c.applies) << c.client_id << " / " << c.user.value_or("(none)");
    for (const auto& f : r->read_filters()) {
      // Whatever applied holds the identity literally, never as a wildcard.
      EXPECT_TRUE(f == "dev/" + c.client_id + "/" + c.user.value_or("") + "/data" ||
                  f == c.client_id + "/#")
          << f;
    }
    if (c.applies) {
      EXPECT_TRUE(r->may_publish("dev/" + c.client_id + "/" + *c.user + "/data"));
    }
    // The pieces a wildcard identity would have unlocked stay closed.
    EXPECT_FALSE(r->may_publish("dev/other/u1/data"));
    EXPECT_FALSE(r->may_subscribe("dev/+/u1/data"));
  }
  // "%c/#" with a client named "$SYS" must not give $SYS/#.
  auto sys = rules(acl, "$SYS", "u1");
  EXPECT_FALSE(sys->may_subscribe("$SYS/#"));
  EXPECT_FALSE(sys->may_subscribe("$SYS/broker/load"));
  auto plus = rules(acl, "+", "u1");
  EXPECT_FALSE(plus->may_subscribe("x/#"));
  EXPECT_FALSE(plus->may_subscribe("+/#"));
  EXPECT_TRUE(plus->read_filters().empty());
}

TEST(Acl, PatternsOnlySubstituteCAndU) {
  const AclFile acl = parse_acl("pattern write a/%x/%%/%c%u/100%\n");
  auto r = rules(acl, "C", "U");
  EXPECT_EQ(r->write_filters(), (std::vector<std::string>{"a/%x/%%/CU/100%"}));
}

TEST(Acl, TopicLinesAreNotSubstituted) {
  const AclFile acl = parse_acl("topic write lit/%c\n");
  auto r = rules(acl, "c1", std::nullopt);
  EXPECT_TRUE(r->may_publish("lit/%c"));
  EXPECT_FALSE(r->may_publish("lit/c1"));
}

TEST(Acl, BadLinesAreReportedWithLineNumbers) {
  const std::string text =
      "# header\n"               // 1
      "topic read ok/#\n"        // 2
      "topics read a\n"          // 3
      "user\n"                   // 4
      "topic\n"                  // 5
      "topic read\n"             // 6
      "topic write a/#/b\n"      // 7
      "pattern deny a+/b\n"      // 8
      "user alice\n"             // 9
      "   # indented comment\n"  // 10
      "topic readwrite a/b\r\n"  // 11 (CRLF is fine)
      "\ttopic   read   c/d\n"   // 12 (blanks are fine)
      "pattern\n"                // 13
      "user \xC3\n";             // 14
  AclFile acl;
  std::string error;
  ASSERT_FALSE(test_util::ok(acl.parse(text, "my.acl"), error));
  EXPECT_TRUE(Contains(error, "my.acl:3: unknown keyword 'topics'"));
  EXPECT_TRUE(Contains(error, "my.acl:4: 'user' needs a user name"));
  EXPECT_TRUE(Contains(error, "my.acl:5: 'topic' needs a topic filter"));
  EXPECT_TRUE(Contains(error, "my.acl:6: 'topic read' needs a topic filter"));
  EXPECT_TRUE(Contains(error, "my.acl:7: invalid topic filter 'a/#/b'"));
  EXPECT_TRUE(Contains(error, "my.acl:8: invalid topic filter 'a+/b'"));
  EXPECT_TRUE(Contains(error, "my.acl:13: 'pattern' needs a topic filter"));
  EXPECT_TRUE(Contains(error, "my.acl:14: the user name is not valid UTF-8"));
  EXPECT_EQ(std::count(error.begin(), error.end(), '\n'), 7) << error;
  // Nothing is kept from a file that did not parse.
  EXPECT_FALSE(rules(acl, "c", std::nullopt)->may_subscribe("ok/#"));
}

TEST(Acl, LoadFromFile) {
  TempDir dir;
  AclFile acl;
  std::string error;
  EXPECT_FALSE(test_util::ok(acl.load(dir.file("none.acl")), error));
  EXPECT_TRUE(Contains(error, "none.acl: No such file or directory"));
  write_text(dir.file("a.acl"), "user u\ntopic read x/#\n");
  ASSERT_TRUE(test_util::ok(acl.load(dir.file("a.acl")), error)) << error;
  EXPECT_TRUE(rules(acl, "c", "u")->may_subscribe("x/y"));
}

TEST(Acl, RuleCountIsTopicAndPatternLines) {
  EXPECT_EQ(parse_acl("").rule_count(), 0u);
  EXPECT_EQ(parse_acl("# only a comment\nuser u\n\n").rule_count(), 0u);
  EXPECT_EQ(parse_acl("topic read a/#\nuser u\ntopic b\ntopic deny b/c\n"
                      "pattern write d/%c\npattern read e/#\nuser u\ntopic f\n")
                .rule_count(),
            6u);
  AclFile acl = parse_acl("topic a\n");
  std::string error;
  EXPECT_FALSE(test_util::ok(acl.parse("topic a\nbad\n", "x"), error));
  EXPECT_EQ(acl.rule_count(), 0u);  // a failed parse leaves it empty
}

// ------------------------------------------------------------------ connect
// decisions

struct Files {
  TempDir dir;
  std::string pw = dir.file("pw");
  std::string acl = dir.file("acl");
  Files() {
    write_text(
        pw, "alice:" + std::string(kOursHunter2) + "\nbob:" + std::string(kMosquittoSecret) + "\n");
    write_text(acl,
               "topic read public/#\n"
               "user alice\n"
               "topic readwrite alice/#\n"
               "user device-7.example.com\n"
               "topic write telemetry/#\n"
               "pattern write clients/%c/#\n");
  }
};

std::shared_ptr<const Policy> load_policy(const AuthOptions& o) {
  std::string error;
  auto p = test_util::value_or_empty(Policy::load(o), error);
  EXPECT_TRUE(p) << error;
  return p;
}

TEST(Connect, OffByDefault) {
  auto p = Policy::open();
  EXPECT_EQ(p->check_connect(std::nullopt, std::nullopt, false, "").decision,
            ConnectDecision::Accept);
  auto r = p->check_connect("anyone", "anything", false, "");
  EXPECT_EQ(r.decision, ConnectDecision::Accept);
  EXPECT_EQ(r.username, "anyone");
  EXPECT_TRUE(p->rules_for({"c", std::nullopt})->allows_everything());
  EXPECT_TRUE(p->may_publish({"c", std::nullopt}, "any/topic"));
  EXPECT_TRUE(p->may_subscribe({"c", "u"}, "#"));
  EXPECT_EQ(p->describe(), "authentication and authorization off");
  EXPECT_TRUE(p->warnings().empty());
  // Loading empty options is the same.
  auto q = load_policy({});
  EXPECT_TRUE(q->allow_anonymous());
  EXPECT_FALSE(q->has_password_file());
  EXPECT_FALSE(q->has_acl());
}

struct ConnectCase {
  std::optional<std::string> user;
  std::optional<std::string> password;
  ConnectDecision expected;
  mqtt::ConnackCode code;
};

TEST(Connect, PasswordFileTable) {
  Files files;
  AuthOptions o;
  o.password_file = files.pw;
  auto p = load_policy(o);
  EXPECT_FALSE(p->allow_anonymous());  // default with a password file
  using D = ConnectDecision;
  using C = mqtt::ConnackCode;
  const ConnectCase cases[] = {
      {"alice", "hunter2", D::Accept, C::Accepted},
      {"bob", "secret", D::Accept, C::Accepted},
      {"alice", "secret", D::BadCredentials, C::BadUsernameOrPassword},
      {"alice", "", D::BadCredentials, C::BadUsernameOrPassword},
      {"alice", std::nullopt, D::BadCredentials, C::BadUsernameOrPassword},
      {"mallory", "hunter2", D::BadCredentials, C::BadUsernameOrPassword},
      {"", "hunter2", D::BadCredentials, C::BadUsernameOrPassword},
      {std::nullopt, std::nullopt, D::NotAuthorized, C::NotAuthorized},
      {std::nullopt, "hunter2", D::BadCredentials, C::BadUsernameOrPassword},
  };
  for (const auto& c : cases) {
    std::optional<std::string_view> user, password;
    if (c.user) user = *c.user;
    if (c.password) password = *c.password;
    const ConnectResult r = p->check_connect(user, password, false, "");
    EXPECT_EQ(r.decision, c.expected) << c.user.value_or("-") << " " << c.password.value_or("-");
    EXPECT_EQ(connack_code(r.decision), c.code);
    if (r.decision == D::Accept) {
      EXPECT_EQ(r.username, c.user);
    } else {
      EXPECT_FALSE(r.username);
      EXPECT_NE(std::string_view(r.reason), "");
    }
  }
}

TEST(Connect, AnonymousCanBeAllowedWithPasswordFile) {
  Files files;
  AuthOptions o;
  o.password_file = files.pw;
  o.allow_anonymous = true;
  auto p = load_policy(o);
  auto r = p->check_connect(std::nullopt, std::nullopt, false, "");
  EXPECT_EQ(r.decision, ConnectDecision::Accept);
  EXPECT_FALSE(r.username);
  // A user name is still checked when one is given.
  EXPECT_EQ(p->check_connect("alice", "wrong", false, "").decision,
            ConnectDecision::BadCredentials);
}

TEST(Connect, AnonymousRefusedWithoutPasswordFile) {
  AuthOptions o;
  o.allow_anonymous = false;
  auto p = load_policy(o);
  EXPECT_EQ(p->check_connect(std::nullopt, std::nullopt, false, "").decision,
            ConnectDecision::NotAuthorized);
  // An unverifiable user name is no better than none.
  EXPECT_EQ(p->check_connect("alice", "x", false, "").decision, ConnectDecision::NotAuthorized);
  ASSERT_EQ(p->warnings().size(), 1u);
  EXPECT_TRUE(Contains(p->warnings()[0], "every connection will be refused"));
}

TEST(Connect, CertificateCommonNameAsUserName) {
  Files files;
  AuthOptions o;
  o.cert_cn_as_username = true;
  o.acl_file = files.acl;
  auto p = load_policy(o);
  // No verified certificate: not authorized, whatever the user name and
  // password.
  EXPECT_EQ(p->check_connect("alice", "hunter2", false, "").decision,
            ConnectDecision::NotAuthorized);
  EXPECT_EQ(p->check_connect(std::nullopt, std::nullopt, false, "device-7.example.com").decision,
            ConnectDecision::NotAuthorized);
  EXPECT_EQ(p->check_connect(std::nullopt, std::nullopt, true, "").decision,
            ConnectDecision::NotAuthorized);
  // The CN replaces the CONNECT user name.
  auto r = p->check_connect("alice", "wrong", true, "device-7.example.com");
  ASSERT_EQ(r.decision, ConnectDecision::Accept);
  EXPECT_EQ(r.username, "device-7.example.com");
  auto rules = p->rules_for({"d7", *r.username});
  EXPECT_TRUE(rules->may_publish("telemetry/t1"));
  EXPECT_TRUE(rules->may_publish("clients/d7/x"));
  EXPECT_FALSE(rules->may_publish("alice/x"));
  EXPECT_TRUE(p->warnings().empty());
  EXPECT_EQ(p->describe(), "user names from TLS client certificates, ACL file " + files.acl);
}

TEST(Connect, PolicyWithAcl) {
  Files files;
  AuthOptions o;
  o.password_file = files.pw;
  o.acl_file = files.acl;
  o.allow_anonymous = true;
  auto p = load_policy(o);
  EXPECT_TRUE(p->warnings().empty());
  EXPECT_EQ(p->describe(), "password file " + files.pw +
                               " (2 users), anonymous clients allowed, ACL file " + files.acl);
  auto r = p->check_connect("alice", "hunter2", false, "");
  ASSERT_EQ(r.decision, ConnectDecision::Accept);
  auto alice = p->rules_for({"phone", *r.username});
  EXPECT_TRUE(alice->may_publish("alice/a"));
  EXPECT_TRUE(alice->may_publish("clients/phone/status"));
  EXPECT_FALSE(alice->may_subscribe("public/#"));
  EXPECT_FALSE(alice->may_publish("clients/other/status"));
  auto anon = p->rules_for({"anon1", std::nullopt});
  EXPECT_TRUE(anon->may_subscribe("public/#"));
  EXPECT_FALSE(anon->may_publish("public/x"));
  EXPECT_TRUE(p->may_subscribe({"anon1", std::nullopt}, "public/x"));
  EXPECT_FALSE(p->may_publish({"anon1", std::nullopt}, "alice/a"));
}

TEST(Connect, AclWithoutPasswordFileWarns) {
  Files files;
  AuthOptions o;
  o.acl_file = files.acl;
  auto p = load_policy(o);
  EXPECT_TRUE(p->allow_anonymous());
  ASSERT_EQ(p->warnings().size(), 1u);
  EXPECT_TRUE(Contains(p->warnings()[0], "user names are not verified"));
  auto r = p->check_connect("alice", std::nullopt, false, "");
  EXPECT_EQ(r.decision, ConnectDecision::Accept);
  EXPECT_EQ(r.username, "alice");
}

TEST(Connect, LoadErrorsFromBothFiles) {
  TempDir dir;
  write_text(dir.file("pw"), "alice\n");
  write_text(dir.file("acl"), "\n\nfoo bar\n");
  AuthOptions o;
  o.password_file = dir.file("pw");
  o.acl_file = dir.file("acl");
  std::string error;
  EXPECT_EQ(test_util::value_or_empty(Policy::load(o), error), nullptr);
  EXPECT_TRUE(Contains(error, dir.file("pw") + ":1: expected 'username:hash'"));
  EXPECT_TRUE(Contains(error, dir.file("acl") + ":3: unknown keyword 'foo'"));
  o.acl_file = dir.file("missing");
  EXPECT_EQ(test_util::value_or_empty(Policy::load(o), error), nullptr);
  EXPECT_TRUE(Contains(error, "missing: No such file or directory"));
}

TEST(Connect, UserAndRuleCounts) {
  Files files;
  EXPECT_EQ(Policy::open()->user_count(), 0u);
  EXPECT_EQ(Policy::open()->acl_rule_count(), 0u);
  AuthOptions o;
  o.password_file = files.pw;
  auto p = load_policy(o);
  EXPECT_EQ(p->user_count(), 2u);
  EXPECT_EQ(p->acl_rule_count(), 0u);
  o.acl_file = files.acl;
  p = load_policy(o);
  EXPECT_EQ(p->user_count(), 2u);
  EXPECT_EQ(p->acl_rule_count(), 4u);
}

TEST(Connect, ConnackCodes) {
  EXPECT_EQ(static_cast<int>(connack_code(ConnectDecision::Accept)), 0x00);
  EXPECT_EQ(static_cast<int>(connack_code(ConnectDecision::BadCredentials)), 0x04);
  EXPECT_EQ(static_cast<int>(connack_code(ConnectDecision::NotAuthorized)), 0x05);
}

// ------------------------------------------------------------------
// Authenticator

TEST(Authenticator, ReloadSwapsOnlyOnSuccess) {
  Files files;
  Authenticator auth;
  EXPECT_EQ(auth.policy(), Policy::open());
  EXPECT_EQ(auth.generation(), 0u);
  AuthOptions o;
  o.password_file = files.pw;
  std::string error;
  ASSERT_TRUE(test_util::ok(auth.reload(o), error)) << error;
  EXPECT_EQ(auth.generation(), 1u);
  auto held = auth.policy();  // a connection keeps the policy it started with
  EXPECT_EQ(held->check_connect(std::nullopt, std::nullopt, false, "").decision,
            ConnectDecision::NotAuthorized);

  write_text(files.pw, "broken\n");
  EXPECT_FALSE(test_util::ok(auth.reload(o), error));
  EXPECT_TRUE(Contains(error, ":1: expected 'username:hash'"));
  EXPECT_EQ(auth.generation(), 1u);
  EXPECT_EQ(auth.policy(), held);

  auth.replace(nullptr);  // back to everything allowed
  EXPECT_EQ(auth.generation(), 2u);
  EXPECT_EQ(auth.policy()->check_connect(std::nullopt, std::nullopt, false, "").decision,
            ConnectDecision::Accept);
}

TEST(Authenticator, ConcurrentReadersDuringReloads) {
  TempDir dir;
  write_text(dir.file("acl"), "topic readwrite a/#\npattern write c/%c/#\n");
  AuthOptions o;
  o.acl_file = dir.file("acl");
  std::string error;
  Authenticator auth(test_util::value_or_empty(Policy::load(o), error));
  std::atomic<bool> stop{false};
  std::atomic<long> checks{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      const std::string id = "client" + std::to_string(t);
      while (!stop.load()) {
        auto policy = auth.policy();
        auto r = policy->rules_for({id, std::nullopt});
        EXPECT_TRUE(r->may_publish("a/x"));
        EXPECT_TRUE(r->may_publish("c/" + id + "/y"));
        EXPECT_FALSE(r->may_publish("b"));
        checks.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(test_util::ok(auth.reload(o), error)) << error;
  }
  while (checks.load() < 300) std::this_thread::yield();
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(auth.generation(), 50u);
}

// ------------------------------------------------------------------ TLS identity

struct Freer {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
  void operator()(SSL* p) const { SSL_free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Freer>;
using Cert = std::unique_ptr<X509, Freer>;

Key new_key() {
  return Key(EVP_EC_gen("P-256"));
}

// A certificate for `key` with subject CN `cn` (none if empty), signed by
// `issuer_key` under `issuer` (self-signed when issuer is null).
Cert new_cert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key) {
  Cert c(X509_new());
  X509_set_version(c.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(c.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), 3600);
  X509_set_pubkey(c.get(), key);
  X509_NAME* name = X509_get_subject_name(c.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("test"), -1, -1, 0);
  if (!cn.empty()) {
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  }
  X509_set_issuer_name(c.get(), issuer ? X509_get_subject_name(issuer) : name);
  if (!issuer) {  // self-signed: a CA, which OpenSSL wants marked as one
    X509_EXTENSION* ext =
        X509V3_EXT_conf_nid(nullptr, nullptr, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(c.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  EXPECT_GT(X509_sign(c.get(), issuer_key ? issuer_key : key, EVP_sha256()), 0);
  return c;
}

TEST(TlsIdentity, CommonNameOfACertificate) {
  Key key = new_key();
  ASSERT_TRUE(key);
  EXPECT_EQ(certificate_common_name(new_cert(key.get(), "device-7", nullptr, nullptr).get()),
            "device-7");
  EXPECT_EQ(
      certificate_common_name(new_cert(key.get(), "\xC3\xA9t\xC3\xA9", nullptr, nullptr).get()),
      "\xC3\xA9t\xC3\xA9");
  EXPECT_EQ(certificate_common_name(new_cert(key.get(), "", nullptr, nullptr).get()), std::nullopt);
  EXPECT_EQ(certificate_common_name(nullptr), std::nullopt);
}

// Runs a TLS handshake in memory between a server that asks for a client
// certificate (trusting `ca`, but letting the handshake finish whatever the
// verification result) and a client presenting `cert` (or none); returns what
// verified_peer_common_name says on the server's side.
std::optional<std::string> handshake_cn(X509* ca, X509* server_cert, EVP_PKEY* server_key,
                                        X509* client_cert, EVP_PKEY* client_key) {
  std::unique_ptr<SSL_CTX, Freer> sctx(SSL_CTX_new(TLS_server_method()));
  std::unique_ptr<SSL_CTX, Freer> cctx(SSL_CTX_new(TLS_client_method()));
  EXPECT_EQ(SSL_CTX_use_certificate(sctx.get(), server_cert), 1);
  EXPECT_EQ(SSL_CTX_use_PrivateKey(sctx.get(), server_key), 1);
  X509_STORE_add_cert(SSL_CTX_get_cert_store(sctx.get()), ca);
  SSL_CTX_set_verify(sctx.get(), SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
  if (client_cert) {
    EXPECT_EQ(SSL_CTX_use_certificate(cctx.get(), client_cert), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey(cctx.get(), client_key), 1);
  }
  std::unique_ptr<SSL, Freer> server(SSL_new(sctx.get()));
  std::unique_ptr<SSL, Freer> client(SSL_new(cctx.get()));
  BIO* sbio = nullptr;
  BIO* cbio = nullptr;
  EXPECT_EQ(BIO_new_bio_pair(&sbio, 0, &cbio, 0), 1);
  SSL_set_bio(server.get(), sbio, sbio);
  SSL_set_bio(client.get(), cbio, cbio);
  SSL_set_accept_state(server.get());
  SSL_set_connect_state(client.get());
  bool server_done = false;
  bool client_done = false;
  for (int i = 0; i < 100 && !(server_done && client_done); ++i) {
    if (!client_done) client_done = SSL_do_handshake(client.get()) == 1;
    if (!server_done) server_done = SSL_do_handshake(server.get()) == 1;
  }
  EXPECT_TRUE(server_done && client_done);
  return verified_peer_common_name(server.get());
}

TEST(TlsIdentity, VerifiedPeerCommonName) {
  Key ca_key = new_key();
  Cert ca = new_cert(ca_key.get(), "test CA", nullptr, nullptr);
  Key server_key = new_key();
  Cert server = new_cert(server_key.get(), "server", ca.get(), ca_key.get());
  Key client_key = new_key();
  Cert client = new_cert(client_key.get(), "device-7.example.com", ca.get(), ca_key.get());
  Key other_ca_key = new_key();
  Cert other_ca = new_cert(other_ca_key.get(), "other CA", nullptr, nullptr);
  Cert stranger =
      new_cert(client_key.get(), "device-7.example.com", other_ca.get(), other_ca_key.get());

  EXPECT_EQ(handshake_cn(ca.get(), server.get(), server_key.get(), client.get(), client_key.get()),
            "device-7.example.com");
  // No client certificate: the verify result is X509_V_OK, but there is no identity.
  EXPECT_EQ(handshake_cn(ca.get(), server.get(), server_key.get(), nullptr, nullptr), std::nullopt);
  // A certificate from a CA the server does not trust.
  EXPECT_EQ(
      handshake_cn(ca.get(), server.get(), server_key.get(), stranger.get(), client_key.get()),
      std::nullopt);
  EXPECT_EQ(verified_peer_common_name(nullptr), std::nullopt);
}

}  // namespace
}  // namespace auth
