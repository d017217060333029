// Reading address ranges with country codes, for tq-geoip build:
//   Tor's geoip/geoip6 (FROM,TO,CC; IPv4 as decimal integers, IPv6 as text),
//   CSV "network,CC" (81.2.69.0/24,GB) and "from,to,CC" with address texts.
// '#' lines, blank lines and a header line ("network,..." / "from,...") are
// skipped. Codes: "??" and "" mean unknown (left out); UK becomes GB; other
// codes that are not ISO 3166-1 (EU, AP, ZZ, ...) are kept as regions with
// no country.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "geo/mmdb_writer.h"

namespace tq::geo {

struct LoadStats {
  size_t ranges = 0;
  size_t unknown = 0;                     // "??": left out
  size_t uk_as_gb = 0;                    // UK ranges stored as GB
  std::map<std::string, size_t> regions;  // non-country codes kept as such
  // IPv6 ranges inside ::/96, ::ffff:0:0/96 or 2002::/16, which the
  // database answers from the IPv4 data instead.
  size_t aliased_dropped = 0;
};

// Appends the ranges of `path` to `out`.
Status LoadRanges(const std::string& path, std::vector<GeoRange>* out,
                  LoadStats* stats);

// Parses "81.2.69.160", "2001:db8::" or "16777216" (decimal IPv4) into the
// database's 128-bit space (IPv4 under ::/96).
Result<U128> ParseRangeAddress(const std::string& text);

}  // namespace tq::geo
