// Password files with PBKDF2-HMAC-SHA512 hashes (see password_file.hpp).
#include "auth/password_file.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <utility>

#include "auth/text.hpp"
#include "mqtt/topic.hpp"

namespace auth {

namespace {

constexpr std::string_view kOurScheme = "$pbkdf2-sha512$";
constexpr std::string_view kMosquittoScheme = "$7$";
constexpr size_t kMinSaltBytes = 8;
constexpr size_t kMaxSaltBytes = 1024;

// ------------------------------------------------------------------ base64
// Standard alphabet (RFC 4648 section 4), as Mosquitto writes it. Decoding
// takes padded or unpadded input and refuses anything else, including
// non-zero bits left over in the last character.

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(const unsigned char* p, size_t n) {
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (n - i == 1) {
    const uint32_t v = uint32_t{p[i]} << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (n - i == 2) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool base64_decode(std::string_view s, std::vector<unsigned char>& out) {
  out.clear();
  if (s.size() % 4 == 0 && !s.empty()) {
    if (s.back() == '=') s.remove_suffix(1);
    if (s.back() == '=') s.remove_suffix(1);
  }
  if (s.size() % 4 == 1) return false;  // no whole byte in a lone character
  out.reserve(s.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    const int v = base64_value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<unsigned char>((acc >> bits) & 0xFF));
    }
  }
  // Leftover bits must be zero, so each byte string has exactly one encoding.
  return (acc & ((1u << bits) - 1)) == 0;
}

// ------------------------------------------------------------------ PBKDF2

bool derive(std::string_view password, const std::vector<unsigned char>& salt, uint32_t iterations,
            unsigned char* out, size_t out_len) {
  if (password.size() > kMaxCredentialBytes || iterations == 0 || iterations > kMaxIterations) {
    return false;
  }
  return PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt.data(),
                           static_cast<int>(salt.size()), static_cast<int>(iterations),
                           EVP_sha512(), static_cast<int>(out_len), out) == 1;
}

// ------------------------------------------------------------------ files

std::string errno_text(int err) {
  return std::system_category().message(err);
}

// Writes `contents` to `path` through a temporary file in the same folder:
// mode 0600, fsync, rename, then fsync of the folder (best effort).
util::Status write_atomically(const std::string& path, const std::string& contents) {
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = mkstemp(tmp.data());  // creates the file with mode 0600
  if (fd < 0) {
    return util::Error{"cannot create a temporary file next to " + path + ": " + errno_text(errno)};
  }
  auto fail = [&](std::string_view what) {
    util::Error error{std::string(what) + " " + tmp + ": " + errno_text(errno)};
    close(fd);
    unlink(tmp.c_str());
    return error;
  };
  if (fchmod(fd, S_IRUSR | S_IWUSR) != 0) return fail("cannot set mode 0600 on");
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = write(fd, contents.data() + done, contents.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write");
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) return fail("cannot fsync");
  if (close(fd) != 0) {
    util::Error error{"cannot close " + tmp + ": " + errno_text(errno)};
    unlink(tmp.c_str());
    return error;
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    util::Error error{"cannot rename " + tmp + " to " + path + ": " + errno_text(errno)};
    unlink(tmp.c_str());
    return error;
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
  return {};
}

// The user name of a non-ignorable password file line (everything before the
// first ':'), or the whole line if it has none.
std::string_view line_user(std::string_view line) {
  return line.substr(0, line.find(':'));
}

// Reads and validates an existing file for set_user/remove_user.
util::Result<std::string> read_existing(const std::string& path) {
  auto text = read_file(path);
  if (!text) return text;
  PasswordFile check;
  if (auto parsed = check.parse(*text, path); !parsed) {
    return util::Error{std::move(parsed).error().message + "\n" + path +
                       ": not changed: fix the lines above first"};
  }
  return text;
}

}  // namespace

bool valid_username(std::string_view name, std::string* why) {
  auto fail = [&](const char* reason) {
    if (why) *why = reason;
    return false;
  };
  if (name.empty()) return fail("the user name is empty");
  if (name.size() > kMaxCredentialBytes) return fail("the user name is longer than 65535 bytes");
  if (name.find(':') != std::string_view::npos) return fail("the user name contains ':'");
  if (name.find_first_of("\r\n") != std::string_view::npos) {
    return fail("the user name contains a line break");
  }
  if (detail::is_blank(name.front()) || detail::is_blank(name.back())) {
    return fail("the user name starts or ends with a blank");
  }
  if (!mqtt::valid_utf8(name)) return fail("the user name is not valid UTF-8 (or contains U+0000)");
  return true;
}

util::Result<PasswordHash> parse_password_hash(std::string_view encoded) {
  std::string_view rest;
  if (encoded.starts_with(kOurScheme)) {
    rest = encoded.substr(kOurScheme.size());
  } else if (encoded.starts_with(kMosquittoScheme)) {
    rest = encoded.substr(kMosquittoScheme.size());
  } else if (encoded.starts_with("$6$")) {
    return util::Error{
        "Mosquitto's old '$6$' hashes (one round of SHA-512) are not accepted; set the "
        "password again"};
  } else {
    return util::Error{"the hash does not start with '$pbkdf2-sha512$' (or Mosquitto's '$7$')"};
  }
  // <iterations>$<salt>$<hash>
  const size_t d1 = rest.find('$');
  const size_t d2 = d1 == std::string_view::npos ? d1 : rest.find('$', d1 + 1);
  if (d2 == std::string_view::npos || rest.find('$', d2 + 1) != std::string_view::npos) {
    return util::Error{"expected <iterations>$<salt>$<hash> after the scheme"};
  }
  const std::string_view iter_text = rest.substr(0, d1);
  const std::string_view salt_text = rest.substr(d1 + 1, d2 - d1 - 1);
  const std::string_view hash_text = rest.substr(d2 + 1);
  uint32_t iterations = 0;
  auto [ptr, ec] =
      std::from_chars(iter_text.data(), iter_text.data() + iter_text.size(), iterations);
  if (iter_text.empty() || ec != std::errc() || ptr != iter_text.data() + iter_text.size() ||
      iterations == 0 || iterations > kMaxIterations) {
    return util::Error{"the iteration count " + detail::quoted(iter_text) +
                       " is not a number in 1.." + std::to_string(kMaxIterations)};
  }
  PasswordHash h;
  h.iterations = iterations;
  if (!base64_decode(salt_text, h.salt)) {
    return util::Error{"the salt is not valid base64"};
  }
  if (h.salt.size() < kMinSaltBytes || h.salt.size() > kMaxSaltBytes) {
    return util::Error{"the salt has " + std::to_string(h.salt.size()) + " bytes; expected " +
                       std::to_string(kMinSaltBytes) + ".." + std::to_string(kMaxSaltBytes)};
  }
  if (!base64_decode(hash_text, h.hash)) {
    return util::Error{"the hash is not valid base64"};
  }
  // Exactly the full SHA-512 output: a shorter value is a prefix of the real
  // key and would still verify.
  if (h.hash.size() != kHashBytes) {
    return util::Error{"the hash has " + std::to_string(h.hash.size()) + " bytes; expected " +
                       std::to_string(kHashBytes)};
  }
  return h;
}

std::string hash_password(std::string_view password, uint32_t iterations) {
  if (iterations == 0 || iterations > kMaxIterations) return {};
  if (password.size() > kMaxCredentialBytes) return {};
  std::vector<unsigned char> salt(kSaltBytes);
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) return {};
  unsigned char key[kHashBytes];
  if (!derive(password, salt, iterations, key, sizeof key)) return {};
  std::string out(kOurScheme);
  out += std::to_string(iterations);
  out += '$';
  out += base64_encode(salt.data(), salt.size());
  out += '$';
  out += base64_encode(key, sizeof key);
  OPENSSL_cleanse(key, sizeof key);
  return out;
}

bool verify_password(const PasswordHash& h, std::string_view password) {
  if (h.hash.size() != kHashBytes) return false;
  unsigned char key[kHashBytes];
  if (!derive(password, h.salt, h.iterations, key, h.hash.size())) return false;
  const bool same = CRYPTO_memcmp(key, h.hash.data(), h.hash.size()) == 0;
  OPENSSL_cleanse(key, sizeof key);
  return same;
}

bool verify_password(std::string_view encoded, std::string_view password) {
  auto h = parse_password_hash(encoded);
  return h && verify_password(*h, password);
}

util::Status PasswordFile::load(const std::string& path) {
  auto text = read_file(path);
  if (!text) {
    users_.clear();
    return std::move(text).error();
  }
  return parse(*text, path);
}

util::Status PasswordFile::parse(std::string_view text, std::string_view source) {
  std::map<std::string, PasswordHash, std::less<>> users;
  std::map<std::string, size_t, std::less<>> first_line;
  std::string errors;
  detail::for_each_line(text, [&](size_t number, std::string_view line) {
    if (detail::is_ignorable(line)) return;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      detail::add_error(errors, source, number, "expected 'username:hash', found no ':'");
      return;
    }
    const std::string_view user = line.substr(0, colon);
    std::string why;
    if (!valid_username(user, &why)) {
      detail::add_error(errors, source, number, why);
      return;
    }
    auto h = parse_password_hash(detail::trim(line.substr(colon + 1)));
    if (!h) {
      detail::add_error(errors, source, number,
                        "user " + detail::quoted(user) + ": " + h.error().message);
      return;
    }
    if (auto it = first_line.find(user); it != first_line.end()) {
      detail::add_error(errors, source, number,
                        "user " + detail::quoted(user) + " is already defined on line " +
                            std::to_string(it->second));
      return;
    }
    first_line.emplace(std::string(user), number);
    users.emplace(std::string(user), std::move(h).value());
  });
  if (!errors.empty()) {
    users_.clear();
    return util::Error{std::move(errors)};
  }
  users_ = std::move(users);
  // Unknown users are checked against this, with the work of a real entry.
  dummy_ = PasswordHash{};
  dummy_.iterations = users_.empty() ? 1 : users_.begin()->second.iterations;
  dummy_.salt.assign(kSaltBytes, 0x5A);
  dummy_.hash.assign(kHashBytes, 0);
  return {};
}

bool PasswordFile::check(std::string_view user, std::string_view password) const {
  auto it = users_.find(user);
  if (it == users_.end()) {
    (void)verify_password(dummy_, password);
    return false;
  }
  return verify_password(it->second, password);
}

util::Result<std::string> read_file(const std::string& path) {
  std::string out;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return util::Error{path + ": " + errno_text(errno)};
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) return util::Error{path + ": " + errno_text(err)};
  return out;
}

util::Status set_user(const std::string& path, std::string_view user, std::string_view password,
                      uint32_t iterations, bool create) {
  std::string why;
  if (!valid_username(user, &why)) return util::Error{why};
  if (password.empty()) {
    return util::Error{"the password is empty"};
  }
  if (password.size() > kMaxCredentialBytes) {
    return util::Error{"the password is longer than 65535 bytes"};
  }
  if (iterations == 0 || iterations > kMaxIterations) {
    return util::Error{"the iteration count must be in 1.." + std::to_string(kMaxIterations)};
  }
  std::string existing;
  if (!create) {
    auto read = read_existing(path);
    if (!read) return std::move(read).error();
    existing = std::move(read).value();
  }
  const std::string value = hash_password(password, iterations);
  if (value.empty()) {
    return util::Error{"hashing the password failed (OpenSSL)"};
  }
  std::string out;
  out.reserve(existing.size() + user.size() + value.size() + 2);
  bool replaced = false;
  detail::for_each_line(existing, [&](size_t, std::string_view line) {
    if (!detail::is_ignorable(line) && line_user(line) == user) {
      if (replaced) return;  // cannot happen in a file that parsed; kept safe anyway
      replaced = true;
      out.append(user).append(":").append(value).append("\n");
      return;
    }
    out.append(line).append("\n");
  });
  if (!replaced) out.append(user).append(":").append(value).append("\n");
  return write_atomically(path, out);
}

util::Status remove_user(const std::string& path, std::string_view user) {
  auto read = read_existing(path);
  if (!read) return std::move(read).error();
  const std::string& existing = *read;
  std::string out;
  out.reserve(existing.size());
  bool removed = false;
  detail::for_each_line(existing, [&](size_t, std::string_view line) {
    if (!detail::is_ignorable(line) && line_user(line) == user) {
      removed = true;
      return;
    }
    out.append(line).append("\n");
  });
  if (!removed) {
    return util::Error{path + ": no user " + detail::quoted(user)};
  }
  return write_atomically(path, out);
}

}  // namespace auth
