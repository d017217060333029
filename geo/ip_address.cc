#include "geo/ip_address.h"

#include <arpa/inet.h>

#include <cstring>

namespace tq {
namespace {

struct Range {
  uint8_t prefix[16];
  int bits;
  const char* what;
};

// IANA special-purpose registries (RFC 6890 and successors): none of these
// can say where a host is.
constexpr Range kSpecialV4[] = {
    {{0}, 8, "a 'this network' address"},
    {{10}, 8, "a private address"},
    {{100, 64}, 10, "a shared (carrier-grade NAT) address"},
    {{127}, 8, "a loopback address"},
    {{169, 254}, 16, "a link-local address"},
    {{172, 16}, 12, "a private address"},
    {{192, 0, 0}, 24, "an IETF protocol-assignment address"},
    {{192, 0, 2}, 24, "a documentation address"},
    {{192, 168}, 16, "a private address"},
    {{198, 18}, 15, "a benchmarking address"},
    {{198, 51, 100}, 24, "a documentation address"},
    {{203, 0, 113}, 24, "a documentation address"},
    {{224}, 4, "a multicast address"},
    {{240}, 4, "a reserved address"},
};
constexpr Range kSpecialV6[] = {
    {{0}, 128, "the unspecified address"},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
     128,
     "a loopback address"},
    {{0x20, 0x01, 0x0d, 0xb8}, 32, "a documentation address"},
    {{0x3f, 0xff}, 20, "a documentation address"},
    {{0xfc}, 7, "a unique-local (private) address"},
    {{0xfe, 0x80}, 10, "a link-local address"},
    {{0xfe, 0xc0}, 10, "a site-local address"},
    {{0xff}, 8, "a multicast address"},
};

bool InPrefix(const uint8_t* addr, const Range& r) {
  const int full = r.bits / 8;
  if (std::memcmp(addr, r.prefix, full) != 0) return false;
  const int rest = r.bits % 8;
  if (rest == 0) return true;
  const uint8_t mask = uint8_t(0xff << (8 - rest));
  return (addr[full] & mask) == (r.prefix[full] & mask);
}

}  // namespace

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v4 ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

Result<IpAddress> ParseIpAddress(const std::string& text) {
  std::string s = text;
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']')
    s = s.substr(1, s.size() - 2);
  if (auto pct = s.find('%'); pct != std::string::npos) s.resize(pct);
  IpAddress ip;
  if (inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) {
    ip.v4 = true;
    return ip;
  }
  if (inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) != 1) {
    return Status::InvalidArgument("'" + text +
                                   "' is not an IPv4 or IPv6 address");
  }
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0,    0,
                                          0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(ip.bytes.data(), kMapped, 12) == 0) {
    IpAddress v4;
    v4.v4 = true;
    std::memcpy(v4.bytes.data(), ip.bytes.data() + 12, 4);
    return v4;
  }
  return ip;
}

std::optional<std::string> NonPublicReason(const IpAddress& ip) {
  if (ip.v4) {
    if (ip.bytes[0] == 255 && ip.bytes[1] == 255 && ip.bytes[2] == 255 &&
        ip.bytes[3] == 255)
      return "the broadcast address";
    for (const Range& r : kSpecialV4)
      if (InPrefix(ip.bytes.data(), r)) return r.what;
    return std::nullopt;
  }
  for (const Range& r : kSpecialV6)
    if (InPrefix(ip.bytes.data(), r)) return r.what;
  return std::nullopt;
}

}  // namespace tq
