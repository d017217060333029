// Country lookups in a MaxMind-format database (GeoLite2/GeoIP2 Country or
// City, or one written by tq-geoip build), through libmaxminddb. Only this
// unit includes maxminddb.h; the rest of tq sees CountryResolver.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "geo/country_resolver.h"
#include "geo/ip_address.h"

struct MMDB_s;

namespace tq {

class MmdbCountryDb : public CountryResolver {
 public:
  // Opens (memory-maps) `path`; fails with a message naming the file.
  static Result<std::unique_ptr<MmdbCountryDb>> Open(const std::string& path);
  ~MmdbCountryDb() override;
  MmdbCountryDb(const MmdbCountryDb&) = delete;
  MmdbCountryDb& operator=(const MmdbCountryDb&) = delete;

  // Parses `ip`; non-public addresses are answered kNotPublic, unlooked-up.
  GeoAnswer Resolve(const std::string& ip) override;
  // Looks `ip` up whatever its kind (tests, tq-geoip lookup --all).
  GeoAnswer Lookup(const IpAddress& ip);

  const std::string& path() const { return path_; }
  // "GeoLite2-Country, 2 languages, built 2024-..." for log lines.
  std::string Describe() const;

 private:
  MmdbCountryDb(std::string path, std::unique_ptr<MMDB_s> db);
  std::string path_;
  std::unique_ptr<MMDB_s> db_;
};

// The database used when --geoip-db is not given: the first that exists of
// <dir of the binary>/../share/tq/country.mmdb (a build tree, written by
// deploy/build.sh) and <install datadir>/tq/country.mmdb; "" if none.
// `searched` receives the places looked at, for the log line.
std::string DefaultGeoipDbPath(std::vector<std::string>* searched = nullptr);

}  // namespace tq
