// Writes a country database in the MaxMind DB format, version 2.0, that
// libmaxminddb (and so tq's MmdbCountryDb) reads: an IPv6 binary search tree
// with IPv4 under ::/96, aliased from ::ffff:0:0/96 (IPv4-mapped) and
// 2002::/16 (6to4), and one data record per distinct value,
// {"country":{"iso_code":"IT"}}. Regional codes (EU, AP, ...) get a record
// without a country, {"tq_region":"EU"}, so a lookup says why it has none.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace tq::geo {

using U128 = unsigned __int128;

struct GeoRange {
  U128 first = 0;  // IPv4 addresses are given as ::a.b.c.d (< 2^32)
  U128 last = 0;
  std::string country;  // ISO 3166-1 alpha-2, or empty when region is set
  std::string region;   // a non-country code kept as such
};

struct MmdbMeta {
  std::string database_type = "tq-Country";
  std::string description = "tq country database";
  uint64_t build_epoch = 0;
};

struct MmdbStats {
  size_t ranges = 0;
  size_t values = 0;  // distinct data records
  size_t nodes = 0;
  int record_size = 0;
  size_t bytes = 0;
};

// Later ranges win where ranges overlap; adjacent ranges with the same value
// become one network. Fails only if the tree would not fit 32-bit records.
Result<std::string> BuildCountryMmdb(const std::vector<GeoRange>& ranges,
                                     const MmdbMeta& meta,
                                     MmdbStats* stats = nullptr);

}  // namespace tq::geo
