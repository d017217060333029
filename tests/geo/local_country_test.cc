// The worker finding its own country (--country auto --geoip-db).
#include "geo/local_country.h"

#include <catch2/catch.hpp>
#include <map>

#include "geo/ip_address.h"

namespace tq {
namespace {

// Non-public addresses as the real database module answers them; others
// from a table.
class FakeResolver final : public CountryResolver {
 public:
  std::map<std::string, std::string> countries;
  GeoAnswer Resolve(const std::string& ip) override {
    auto parsed = ParseIpAddress(ip);
    if (!parsed.ok()) return {GeoOutcome::kMalformed, "", "malformed"};
    if (auto why = NonPublicReason(*parsed))
      return {GeoOutcome::kNotPublic, "", ip + " is " + *why};
    auto it = countries.find(ip);
    if (it == countries.end())
      return {GeoOutcome::kNotInDatabase, "", ip + " is in no network"};
    return {GeoOutcome::kFound, it->second, ""};
  }
};

}  // namespace

TEST_CASE("PublicIpFlagDecidesTheCountry", "[worker][geo]") {
  FakeResolver fake;
  fake.countries["81.2.69.160"] = "GB";
  fake.countries["2.125.160.216"] = "FR";
  const LocalCountry c =
      ResolveLocalCountry(fake, "81.2.69.160", {"2.125.160.216"});
  CHECK(c.country == "GB");
  CHECK(c.source == "worker-geoip");
}

TEST_CASE("FirstPublicInterfaceAddressWithACountryWins", "[worker][geo]") {
  FakeResolver fake;
  fake.countries["2.125.160.216"] = "FR";
  const LocalCountry c = ResolveLocalCountry(
      fake, "",
      {"127.0.0.1", "10.0.0.2", "fe80::1", "1.1.1.1", "2.125.160.216"});
  CHECK(c.country == "FR");
  CHECK(c.source == "worker-geoip");
}

TEST_CASE("OnlyPrivateInterfacesGiveNoCountryAndSayWhy", "[worker][geo]") {
  FakeResolver fake;
  const LocalCountry c =
      ResolveLocalCountry(fake, "", {"127.0.0.1", "192.168.1.4", "::1"});
  CHECK(c.country.empty());
  CHECK(c.source.rfind("none: no public address", 0) == 0);
  CHECK(c.source.find("--public-ip") != std::string::npos);
}

TEST_CASE("PublicIpWithoutCountrySaysWhy", "[worker][geo]") {
  FakeResolver fake;
  CHECK(ResolveLocalCountry(fake, "127.0.0.1", {}).source ==
        "none: --public-ip 127.0.0.1 is a loopback address");
  CHECK(ResolveLocalCountry(fake, "", {"1.1.1.1"}).source ==
        "none: 1.1.1.1 is in no network");
}

}  // namespace tq
