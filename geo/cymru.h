// Team Cymru's IP-to-ASN DNS service as a CountryResolver: the TXT record of
// <reversed IPv4>.origin.asn.cymru.com (IPv6: 32 reversed nibbles under
// origin6.asn.cymru.com) reads "ASN | prefix | CC | registry | date"; the
// third field is the country. Blocking (up to the timeout): for the worker's
// start-up, never the broker's loop. Needs the network (DNS).
#pragma once

#include <chrono>
#include <string>

#include "geo/country_resolver.h"
#include "geo/ip_address.h"

namespace tq {

// The question for `ip`, e.g. "160.69.2.81.origin.asn.cymru.com".
std::string CymruQueryName(const IpAddress& ip);

class CymruResolver final : public CountryResolver {
 public:
  // `servers`: c-ares "host:port,..." list; empty for the system's
  // resolv.conf.
  explicit CymruResolver(
      std::string servers = "",
      std::chrono::milliseconds timeout = std::chrono::milliseconds(3000));
  GeoAnswer Resolve(const std::string& ip) override;

 private:
  const std::string servers_;
  const std::chrono::milliseconds timeout_;
};

}  // namespace tq
