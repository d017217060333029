// tq-worker --country auto --geoip-db FILE: the worker finds its own country
// (for brokers without a database), from --public-ip or else from the
// addresses of its network interfaces, skipping those that cannot be
// geolocated (loopback, private, link-local, ...).
#pragma once

#include <string>
#include <vector>

#include "geo/country_resolver.h"

namespace tq {

struct LocalCountry {
  std::string country;  // "" when none was found
  std::string source;   // `found_source` ("worker-geoip"), or "none: <why>"
};

// `interface_addresses` is used only when `public_ip` is empty.
LocalCountry ResolveLocalCountry(
    CountryResolver& resolver, const std::string& public_ip,
    const std::vector<std::string>& interface_addresses,
    const std::string& found_source = "worker-geoip");

// The IPv4 and IPv6 addresses of this host's interfaces (getifaddrs), as
// text, in interface order.
std::vector<std::string> InterfaceAddresses();

}  // namespace tq
