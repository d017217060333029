// Finding a country for an IP address, behind an interface so that the
// broker core and worker stay free of any database library (tests inject a
// fake). geo/geo.h has the MaxMind-format implementation.
#pragma once

#include <string>

namespace tq {

// Every way a lookup can end; each is reported, none is silent.
enum class GeoOutcome {
  kFound,          // country holds an ISO 3166-1 alpha-2 code
  kNotInDatabase,  // the address is in no network of the database
  kNoCountry,      // a record matched but it names no country
  kNotPublic,      // private/loopback/link-local/...: never looked up
  kMalformed,      // not an IPv4 or IPv6 address
  kDatabaseError,  // the database is broken or cannot answer
};

const char* GeoOutcomeName(GeoOutcome outcome);

struct GeoAnswer {
  GeoOutcome outcome = GeoOutcome::kNotInDatabase;
  std::string country;  // set only for kFound
  std::string detail;   // a sentence saying why, for logs and tq-ctl
  bool found() const { return outcome == GeoOutcome::kFound; }
};

class CountryResolver {
 public:
  virtual ~CountryResolver() = default;
  // `ip` is an address as text ("81.2.69.160", "2001:db8::1").
  virtual GeoAnswer Resolve(const std::string& ip) = 0;
};

}  // namespace tq
