// Password files: one user per line, "username:<hash>", where <hash> is
//   $pbkdf2-sha512$<iterations>$<salt base64>$<hash base64>   (what we write)
//   $7$<iterations>$<salt base64>$<hash base64>               (Mosquitto 2.x, read only)
// Both are PBKDF2-HMAC-SHA512 over the raw password bytes and the decoded salt.
// Lines starting with '#' (after optional blanks) and blank lines are ignored.
// Nothing here throws for bad input: errors come back as util::Error text.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace auth {

// OWASP's 2023 figure for PBKDF2-HMAC-SHA512. Costs roughly 0.1-0.2 s of one
// core per check; see docs/security.md for choosing fewer.
inline constexpr uint32_t kDefaultIterations = 210'000;
inline constexpr uint32_t kMaxIterations = 10'000'000;
inline constexpr size_t kSaltBytes = 16;
inline constexpr size_t kHashBytes = 64;  // SHA-512 output
// MQTT carries user names and passwords with a 2-byte length prefix.
inline constexpr size_t kMaxCredentialBytes = 65535;

// A user name a password file can hold: non-empty, at most 65535 bytes, valid
// MQTT UTF-8 (no U+0000), no ':' and no line break. On false, `why` (if given)
// says which rule failed.
bool valid_username(std::string_view name, std::string* why = nullptr);

// A parsed hash value.
struct PasswordHash {
  uint32_t iterations = 0;
  std::vector<unsigned char> salt;
  std::vector<unsigned char> hash;
};

// Parses "$pbkdf2-sha512$..." or "$7$...". The error says why not.
util::Result<PasswordHash> parse_password_hash(std::string_view encoded);

// Hashes `password` with kSaltBytes fresh random bytes (RAND_bytes) into the
// "$pbkdf2-sha512$..." form. Returns "" if iterations is outside
// 1..kMaxIterations, the password is longer than kMaxCredentialBytes, or
// OpenSSL fails.
std::string hash_password(std::string_view password, uint32_t iterations = kDefaultIterations);

// Whether `password` matches `h` (constant-time comparison of the derived key).
bool verify_password(const PasswordHash& h, std::string_view password);
// Same, from the encoded form; false when it does not parse.
bool verify_password(std::string_view encoded, std::string_view password);

// A loaded password file; immutable after load/parse, so safe to share
// between threads for check().
class PasswordFile {
 public:
  // Reads and parses `path`. On failure the error lists every bad line as
  // "<path>:<line>: <reason>", one per line, and the object is left empty.
  util::Status load(const std::string& path);
  // Same over text already in memory; `source` names it in errors.
  util::Status parse(std::string_view text, std::string_view source);

  // Whether `user` exists and `password` is theirs. An unknown user costs the
  // same PBKDF2 work as a known one, so timing does not reveal which names exist.
  bool check(std::string_view user, std::string_view password) const;

  bool has_user(std::string_view user) const { return users_.find(user) != users_.end(); }
  size_t size() const { return users_.size(); }

 private:
  std::map<std::string, PasswordHash, std::less<>> users_;
  PasswordHash dummy_;  // for unknown users: same iterations as a real entry
};

// Adds `user` with `password` (hashed here) to the file at `path`, or replaces
// that user's line, keeping every other line (comments included) as it is.
// With `create`, a missing or existing file is replaced by one holding only
// this user; without it the file must exist and parse. The new contents go to
// a temporary file in the same folder (mode 0600), are fsync'ed and renamed
// over `path`, so readers see the old or the new file, never a partial one.
util::Status set_user(const std::string& path, std::string_view user, std::string_view password,
                      uint32_t iterations, bool create);

// Removes `user` from the file at `path`, atomically as above. Fails if the
// file does not parse or has no such user.
util::Status remove_user(const std::string& path, std::string_view user);

// Reads a whole file; the error is "<path>: <strerror>". Shared with the ACL
// loader.
util::Result<std::string> read_file(const std::string& path);

}  // namespace auth
