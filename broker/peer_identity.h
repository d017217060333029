// Who sent a message: the roles of client keys, and the identity the
// broker's loop hands the core with every message. The loop learns it from
// the CURVE handshake (the ZAP handler's User-Id and X-Curve-Key, looked up
// in the authorized-keys table); the core (broker.h) checks it per message
// type and never sees a socket.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tq {

enum class Role : uint8_t {
  kWorker = 1,  // may take and finish tasks (of its countries, if listed)
  kSubmit = 2,  // may submit, follow and cancel its own batches
  kAdmin = 4,   // queues, workers, purge, retry, any batch
};

const char* RoleName(Role role);

class RoleSet {
 public:
  RoleSet() = default;
  bool Has(Role role) const {
    return (bits_ & static_cast<uint8_t>(role)) != 0;
  }
  void Add(Role role) { bits_ |= static_cast<uint8_t>(role); }
  bool empty() const { return bits_ == 0; }
  bool operator==(const RoleSet&) const = default;
  // "worker,submit" in the order worker, submit, admin.
  std::string ToString() const;

 private:
  uint8_t bits_ = 0;
};

struct PeerIdentity {
  // False on a broker without keys: every peer may do everything.
  bool keyed = false;
  std::string key_name;    // "" when not keyed
  std::string public_key;  // Z85; "" when not keyed
  // Empty for a key the table no longer holds (revoked since it connected).
  RoleSet roles;
  // Countries a worker key may serve besides generic; empty: all of them.
  std::vector<std::string> countries;

  bool Has(Role role) const { return !keyed || roles.Has(role); }
  // Whether tasks of `queue` ("generic" or a country) may go to this peer
  // (its worker role is checked apart).
  bool MayServe(std::string_view queue) const;
  // "key 'it-box'", or "no key" on a broker without keys.
  std::string Describe() const;

  // The identity of every peer of a broker without keys.
  static const PeerIdentity& Unkeyed();
};

// A key that a reload of the authorized-keys directory took away.
struct RevokedKey {
  std::string name;
  std::string public_key;  // Z85
};

// What a reload did (SIGHUP, or Envelope.reload_keys).
struct KeyReload {
  uint32_t keys = 0;  // admitted now
  std::vector<RevokedKey> revoked;
  std::vector<std::string> problems;  // files skipped, with the reason
  // By name: keys new, gone, and changed ("NAME: roles a -> b").
  std::vector<std::string> added, removed, changed;
};

}  // namespace tq
