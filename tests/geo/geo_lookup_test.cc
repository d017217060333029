// Country lookups against MaxMind's test databases (read in place from
// ../shared/geoip beside the repository; see its README.md).
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "geo/geo.h"
#include "geo/ip_address.h"

namespace {

const std::string kGeoDir = TQ_GEOIP_TEST_DIR;

std::string TestDb(const std::string& name) {
  const std::string path = kGeoDir + "/" + name;
  if (!std::ifstream(path)) {
    FAIL("MaxMind test database " << path
                                  << " is missing: these tests read "
                                     "MaxMind's test-data from "
                                  << kGeoDir << " (see its README.md)");
  }
  return path;
}

std::unique_ptr<tq::MmdbCountryDb> OpenDb(const std::string& name) {
  auto db = tq::MmdbCountryDb::Open(TestDb(name));
  if (!db.ok()) FAIL(db.status().message());
  return std::move(db).value();
}

// Expected code, "-" (not in the database) or "NOKEY" (no country).
void CheckVector(tq::MmdbCountryDb& db, const std::string& ip,
                 const std::string& expected) {
  auto parsed = tq::ParseIpAddress(ip);
  REQUIRE(parsed.ok());
  // Vectors include loopback/documentation addresses, which Resolve never
  // looks up; Lookup asks the database regardless.
  const tq::GeoAnswer a = db.Lookup(*parsed);
  INFO(ip << " -> " << tq::GeoOutcomeName(a.outcome) << " " << a.country << " ("
          << a.detail << ")");
  if (expected == "-") {
    CHECK(a.outcome == tq::GeoOutcome::kNotInDatabase);
  } else if (expected == "NOKEY") {
    CHECK(a.outcome == tq::GeoOutcome::kNoCountry);
  } else {
    CHECK(a.outcome == tq::GeoOutcome::kFound);
    CHECK(a.country == expected);
  }
}

}  // namespace

TEST_CASE("TestVectorsMatchBothCountryDatabases", "[geo]") {
  auto lite = OpenDb("GeoLite2-Country-Test.mmdb");
  auto full = OpenDb("GeoIP2-Country-Test.mmdb");
  std::ifstream in(TestDb("test-vectors.tsv"));
  std::string line;
  int checked = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string ip, in_lite, in_full;
    std::getline(fields, ip, '\t');
    std::getline(fields, in_lite, '\t');
    std::getline(fields, in_full, '\t');
    CheckVector(*lite, ip, in_lite);
    CheckVector(*full, ip, in_full);
    ++checked;
  }
  CHECK(checked == 22);
}

TEST_CASE("CityDatabasesAnswerCountryToo", "[geo]") {
  for (const char* name :
       {"GeoLite2-City-Test.mmdb", "GeoIP2-City-Test.mmdb"}) {
    auto db = OpenDb(name);
    const tq::GeoAnswer a = db->Resolve("81.2.69.160");
    INFO(name << ": " << a.detail);
    CHECK(a.outcome == tq::GeoOutcome::kFound);
    CHECK(a.country == "GB");
  }
}

TEST_CASE("Ipv4MappedAddressIsLookedUpAsIpv4", "[geo]") {
  auto db = OpenDb("GeoLite2-Country-Test.mmdb");
  CHECK(db->Resolve("::ffff:81.2.69.160").country == "GB");
  auto parsed = tq::ParseIpAddress("::ffff:81.2.69.160");
  REQUIRE(parsed.ok());
  CHECK(parsed->v4);
  CHECK(parsed->ToString() == "81.2.69.160");
  // Also in an IPv4-only database, where an IPv6 lookup would fail.
  auto v4db = OpenDb("MaxMind-DB-test-ipv4-24.mmdb");
  CHECK(v4db->Resolve("::ffff:1.1.1.1").outcome == tq::GeoOutcome::kNoCountry);
}

TEST_CASE("NonPublicAddressesAreNeverLookedUp", "[geo]") {
  auto db = OpenDb("GeoLite2-Country-Test.mmdb");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"127.0.0.1", "loopback"},       {"::1", "loopback"},
      {"10.1.2.3", "private"},         {"192.168.0.1", "private"},
      {"172.20.0.1", "private"},       {"169.254.1.1", "link-local"},
      {"fe80::1", "link-local"},       {"fd00::1", "unique-local"},
      {"192.0.2.1", "documentation"},  {"2001:db8::1", "documentation"},
      {"100.64.0.1", "carrier-grade"}, {"::ffff:127.0.0.1", "loopback"},
      {"224.0.0.1", "multicast"},      {"0.0.0.0", "this network"},
      {"::", "unspecified"},
  };
  for (const auto& [ip, word] : cases) {
    const tq::GeoAnswer a = db->Resolve(ip);
    INFO(ip << ": " << a.detail);
    CHECK(a.outcome == tq::GeoOutcome::kNotPublic);
    CHECK(a.detail.find(word) != std::string::npos);
  }
  CHECK(!tq::NonPublicReason(*tq::ParseIpAddress("81.2.69.160")));
  CHECK(!tq::NonPublicReason(*tq::ParseIpAddress("2a02:d3c0::1")));
}

TEST_CASE("MalformedAddressIsReportedNotLookedUp", "[geo]") {
  auto db = OpenDb("GeoLite2-Country-Test.mmdb");
  for (const char* ip :
       {"", "1.2.3", "256.1.1.1", "hello", "1.2.3.4/24", "2001:::1"}) {
    INFO(ip);
    CHECK(db->Resolve(ip).outcome == tq::GeoOutcome::kMalformed);
  }
  CHECK(db->Resolve("[2a02:d3c0::1]").country == "GB");
}

TEST_CASE("RecordWithoutCountryIsNoCountry", "[geo]") {
  auto db = OpenDb("MaxMind-DB-test-ipv4-24.mmdb");
  CHECK(db->Resolve("1.1.1.1").outcome == tq::GeoOutcome::kNoCountry);
  // An IPv6 question to an IPv4-only database is "not in it", not an error.
  CHECK(db->Resolve("2a02:d3c0::1").outcome == tq::GeoOutcome::kNotInDatabase);
}

TEST_CASE("BrokenSearchTreeIsDatabaseError", "[geo]") {
  auto db = OpenDb("MaxMind-DB-test-broken-search-tree-24.mmdb");
  const tq::GeoAnswer a = db->Resolve("128.128.128.128");
  INFO(a.detail);
  CHECK(a.outcome == tq::GeoOutcome::kDatabaseError);
}

TEST_CASE("UnreadableDatabaseFailsToOpenWithItsName", "[geo]") {
  const std::string bad = TestDb("libmaxminddb-metadata-marker-only.mmdb");
  auto db = tq::MmdbCountryDb::Open(bad);
  REQUIRE(!db.ok());
  CHECK(db.status().message().find(bad) != std::string::npos);
  auto missing = tq::MmdbCountryDb::Open("/nonexistent/country.mmdb");
  REQUIRE(!missing.ok());
  CHECK(missing.status().message().find("/nonexistent/country.mmdb") !=
        std::string::npos);
}
