#include "broker/peer_identity.h"

#include <algorithm>

namespace tq {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kWorker:
      return "worker";
    case Role::kSubmit:
      return "submit";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

std::string RoleSet::ToString() const {
  std::string out;
  for (Role r : {Role::kWorker, Role::kSubmit, Role::kAdmin}) {
    if (!Has(r)) continue;
    if (!out.empty()) out += ",";
    out += RoleName(r);
  }
  return out;
}

bool PeerIdentity::MayServe(std::string_view queue) const {
  if (!keyed || queue == "generic" || countries.empty()) return true;
  return std::find(countries.begin(), countries.end(), queue) !=
         countries.end();
}

std::string PeerIdentity::Describe() const {
  return keyed ? "key '" + key_name + "'" : "no key";
}

const PeerIdentity& PeerIdentity::Unkeyed() {
  static const PeerIdentity unkeyed;
  return unkeyed;
}

}  // namespace tq
