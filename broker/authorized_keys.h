// The broker's --authorized-keys directory: one public key file per client
// (NAME.key, the certificate format of common/curve_keys.h), whose metadata
// names the client and its roles:
//
//   metadata
//       name = "it-box"
//       roles = "worker"            # worker, submit, admin; comma-separated
//       countries = "IT"            # worker keys only; absent: any country
//   curve
//       public-key = "..."
//
// Loading gives an immutable table; a reload (SIGHUP) builds a new one that
// the caller swaps in (ZapHandler::SetKeys, and the core's own copy).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/peer_identity.h"
#include "common/status.h"

namespace tq {

// "worker", "submit,admin", "worker, submit": InvalidArgument naming an
// unknown role. An empty list is an empty set.
Result<RoleSet> ParseRoles(std::string_view csv);

// "IT,DE" -> {"IT", "DE"}: ISO 3166-1 alpha-2, upper case, no repeats
// (InvalidArgument otherwise). "generic" is not a country: a worker key
// always serves the generic queue.
Result<std::vector<std::string>> ParseCountries(std::string_view csv);

// A key name: 1 to 64 of [A-Za-z0-9._-], not starting with '.' or '-'. It is
// also the file name stem tq-keygen writes and the User-Id of connections.
bool IsValidKeyName(std::string_view name);

struct AuthorizedKey {
  std::string name;        // from metadata `name`, else the file's stem
  std::string public_key;  // Z85
  std::string file;        // where it came from, for logs
  RoleSet roles;
  // Countries a worker key may serve besides generic; empty: all of them.
  std::vector<std::string> countries;

  // True if this key may take tasks of `queue` ("generic" or a country):
  // needs the worker role; generic is always allowed.
  bool MayServe(std::string_view queue) const;
  // What the core is told about a peer with this key.
  PeerIdentity Identity() const;
};

// One key file: the public certificate plus the rules above
// (InvalidArgument or the loader's Corruption, with the file in the message).
Result<AuthorizedKey> LoadAuthorizedKey(const std::string& path);

// A file of the directory that was not admitted, and why.
struct KeyFileProblem {
  std::string file;
  std::string reason;  // a sentence that starts with the file, for the log
};

class AuthorizedKeys {
 public:
  AuthorizedKeys() = default;  // empty: admits nobody

  // Reads every NAME.key file of `dir` (sorted by name). A file that does not
  // parse or names no valid role is appended to `problems` and skipped, as
  // are other files (secret keys, other suffixes). Two files with the same
  // public key or the same name are both refused: which one is meant cannot
  // be told. Fails only if the directory cannot be read (NotFound, IoError).
  static Result<AuthorizedKeys> LoadDirectory(
      const std::string& dir, std::vector<KeyFileProblem>* problems);

  // Builds a table from keys already made (tests, tools); the same duplicate
  // rule as LoadDirectory.
  static AuthorizedKeys FromKeys(std::vector<AuthorizedKey> keys,
                                 std::vector<KeyFileProblem>* problems);

  // nullptr when absent. `public_key` is Z85.
  const AuthorizedKey* FindByPublicKey(std::string_view public_key) const;
  const AuthorizedKey* FindByName(std::string_view name) const;

  const std::vector<AuthorizedKey>& keys() const { return keys_; }
  size_t size() const { return keys_.size(); }

  // The keys of `before` whose public key is not in `after`: their live
  // sessions must be closed after a reload.
  static std::vector<AuthorizedKey> Revoked(const AuthorizedKeys& before,
                                            const AuthorizedKeys& after);

  // What a reload changed, by key name (what operators call keys): names
  // new in `after`, names gone from it, and names in both whose public key,
  // roles or countries differ, each as "NAME: roles submit -> admin,submit".
  struct Changes {
    std::vector<std::string> added, removed, changed;
  };
  static Changes Diff(const AuthorizedKeys& before,
                      const AuthorizedKeys& after);

 private:
  std::vector<AuthorizedKey> keys_;  // sorted by file name
  std::unordered_map<std::string, size_t> by_public_key_;
  std::unordered_map<std::string, size_t> by_name_;
};

// Shared, immutable: the ZAP thread and the loop each hold a reference.
using AuthorizedKeysPtr = std::shared_ptr<const AuthorizedKeys>;

}  // namespace tq
