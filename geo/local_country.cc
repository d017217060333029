#include "geo/local_country.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

namespace tq {

LocalCountry ResolveLocalCountry(
    CountryResolver& resolver, const std::string& public_ip,
    const std::vector<std::string>& interface_addresses,
    const std::string& found_source) {
  if (!public_ip.empty()) {
    const GeoAnswer a = resolver.Resolve(public_ip);
    if (a.found()) return {a.country, found_source};
    return {"", "none: --public-ip " + a.detail};
  }
  // The first public address with a country wins; every other answer is
  // kept for the reason.
  std::string why;
  for (const std::string& ip : interface_addresses) {
    const GeoAnswer a = resolver.Resolve(ip);
    if (a.found()) return {a.country, found_source};
    if (a.outcome == GeoOutcome::kNotPublic) continue;
    why += (why.empty() ? "" : "; ") + a.detail;
  }
  if (why.empty()) {
    why = "no public address on this host's interfaces (" +
          std::to_string(interface_addresses.size()) +
          " private, loopback or link-local); pass --public-ip ADDR or "
          "--country CC";
  }
  return {"", "none: " + why};
}

std::vector<std::string> InterfaceAddresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    char buf[INET6_ADDRSTRLEN] = {};
    if (i->ifa_addr->sa_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr,
                buf, sizeof buf);
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      inet_ntop(AF_INET6,
                &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, buf,
                sizeof buf);
    } else {
      continue;
    }
    out.push_back(buf);
  }
  freeifaddrs(list);
  return out;
}

}  // namespace tq
