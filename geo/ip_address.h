// IP addresses as 16 bytes, with IPv4 kept apart from IPv4-mapped IPv6
// (::ffff:a.b.c.d is folded to IPv4, as the peer really is an IPv4 host).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"

namespace tq {

struct IpAddress {
  bool v4 = false;
  // IPv4: bytes 0-3 hold the address; IPv6: all 16.
  std::array<uint8_t, 16> bytes{};
  std::string ToString() const;
};

// Parses dotted IPv4 or textual IPv6 (with an optional [brackets] and
// %zone suffix dropped); ::ffff:a.b.c.d becomes IPv4.
Result<IpAddress> ParseIpAddress(const std::string& text);

// Why the address must not be geolocated ("a loopback address"), or nullopt
// when it is a public unicast address.
std::optional<std::string> NonPublicReason(const IpAddress& ip);

}  // namespace tq
