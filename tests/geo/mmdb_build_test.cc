// tq-geoip build round trips: the database it writes answers, through
// libmaxminddb, exactly what its source ranges say.
#include <arpa/inet.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "geo/geo.h"
#include "geo/mmdb_writer.h"
#include "geo/range_source.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace {

using tq::geo::U128;

struct Expected {
  tq::GeoOutcome outcome;
  std::string country;
};

// A reference answer from the source ranges (non-overlapping, sorted).
class Reference {
 public:
  explicit Reference(std::vector<tq::geo::GeoRange> ranges)
      : ranges_(std::move(ranges)) {
    std::sort(ranges_.begin(), ranges_.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
  }
  Expected At(U128 addr) const {
    addr = ToTreeSpace(addr);
    auto it = std::upper_bound(
        ranges_.begin(), ranges_.end(), addr,
        [](U128 a, const tq::geo::GeoRange& r) { return a < r.first; });
    if (it == ranges_.begin()) return {tq::GeoOutcome::kNotInDatabase, ""};
    --it;
    if (addr > it->last) return {tq::GeoOutcome::kNotInDatabase, ""};
    if (it->country.empty()) return {tq::GeoOutcome::kNoCountry, ""};
    return {tq::GeoOutcome::kFound, it->country};
  }
  const std::vector<tq::geo::GeoRange>& ranges() const { return ranges_; }

  // ::ffff:0:0/96 and 2002::/16 lead to the IPv4 data at ::/96.
  static U128 ToTreeSpace(U128 a) {
    if ((a >> 32) == 0xffff) return a & 0xffffffffu;
    if ((a >> 112) == 0x2002) return (a >> 80) & 0xffffffffu;
    if ((a >> 32) == 0) return a;
    return a;
  }

 private:
  std::vector<tq::geo::GeoRange> ranges_;
};

tq::IpAddress ToIp(U128 a) {
  tq::IpAddress ip;
  for (int i = 15; i >= 0; --i, a >>= 8) ip.bytes[i] = uint8_t(a & 0xff);
  return ip;  // as IPv6; IPv4 space is ::a.b.c.d, reached the same way
}

std::string Text(U128 a, bool v4) {
  char buf[INET6_ADDRSTRLEN];
  auto ip = ToIp(a);
  if (v4) {
    inet_ntop(AF_INET, ip.bytes.data() + 12, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, ip.bytes.data(), buf, sizeof buf);
  }
  return buf;
}

void CheckAddress(tq::MmdbCountryDb& db, const Reference& ref, U128 addr) {
  const Expected want = ref.At(addr);
  const tq::GeoAnswer got = db.Lookup(ToIp(addr));
  if (got.outcome != want.outcome || got.country != want.country) {
    FAIL_CHECK(Text(addr, false)
               << ": database says " << tq::GeoOutcomeName(got.outcome) << " "
               << got.country << " (" << got.detail << "), ranges say "
               << tq::GeoOutcomeName(want.outcome) << " " << want.country);
  }
}

// Every range's ends and their neighbours, plus `random_count` addresses.
void CheckDatabase(const std::string& path, const Reference& ref, size_t stride,
                   int random_count, std::mt19937_64& rng) {
  auto db = tq::MmdbCountryDb::Open(path);
  REQUIRE(db.ok());
  const auto& rs = ref.ranges();
  for (size_t i = 0; i < rs.size(); i += stride) {
    for (U128 a : {rs[i].first, rs[i].last, rs[i].first - 1, rs[i].last + 1})
      CheckAddress(**db, ref, a);
  }
  for (int i = 0; i < random_count; ++i) {
    const U128 r = (U128(rng()) << 64) | rng();
    CheckAddress(**db, ref, r & 0xffffffffu);  // IPv4
    CheckAddress(**db, ref, r);                // IPv6 anywhere
    // near the data: inside a random range
    const auto& range = rs[rng() % rs.size()];
    const U128 span = range.last - range.first;
    CheckAddress(**db, ref,
                 range.first + (span == ~U128(0) ? r : r % (span + 1)));
  }
}

std::string Build(const tq::testing::TempDir& dir,
                  const std::vector<std::string>& inputs,
                  std::vector<tq::geo::GeoRange>* ranges,
                  tq::geo::LoadStats* stats) {
  for (const auto& in : inputs) {
    auto st = tq::geo::LoadRanges(in, ranges, stats);
    REQUIRE(st.ok());
  }
  tq::geo::MmdbMeta meta;
  meta.build_epoch = 1700000000;
  auto bytes = tq::geo::BuildCountryMmdb(*ranges, meta);
  REQUIRE(bytes.ok());
  const std::string out = dir.File("built.mmdb");
  std::ofstream(out, std::ios::binary) << *bytes;
  return out;
}

const char* const kCodes[] = {"IT", "DE", "UK", "EU", "??",
                              "JP", "AP", "US", "IT", "FR"};

}  // namespace

TEST_CASE("BuiltDatabaseAnswersWhatSyntheticRangesSay", "[geo]") {
  tq::testing::TempDir dir;
  std::mt19937_64 rng(42);
  // Sorted, non-overlapping ranges with gaps and adjacent runs (some with
  // the same country, which the writer merges), in Tor's two formats.
  std::ofstream v4(dir.File("geoip")), v6(dir.File("geoip6"));
  v4 << "# synthetic\n";
  uint64_t at = 1;
  for (int i = 0; i < 3000 && at < 0xfff00000u; ++i) {
    const uint64_t len = 1 + rng() % (rng() % 2 ? 300 : 70000);
    const uint64_t last = std::min<uint64_t>(at + len, 0xfffffffeu);
    v4 << at << "," << last << "," << kCodes[rng() % 10] << "\n";
    at = last + 1 + (rng() % 3 == 0 ? rng() % 5000 : 0);
  }
  U128 at6 = U128(0x2001) << 112;
  for (int i = 0; i < 3000; ++i) {
    const U128 len = (U128(1) << (rng() % 90)) + rng() % 1000;
    const U128 last = at6 + len;
    v6 << Text(at6, false) << "," << Text(last, false) << ","
       << kCodes[rng() % 10] << "\n";
    at6 = last + 1 + (rng() % 3 == 0 ? U128(rng()) : 0);
  }
  v4.close();
  v6.close();

  std::vector<tq::geo::GeoRange> ranges;
  tq::geo::LoadStats stats;
  const std::string db =
      Build(dir, {dir.File("geoip"), dir.File("geoip6")}, &ranges, &stats);
  CHECK(stats.uk_as_gb > 0);
  CHECK(stats.regions.count("EU"));
  CHECK(stats.unknown > 0);
  for (const auto& r : ranges) CHECK(r.country != "UK");
  Reference ref(ranges);
  CheckDatabase(db, ref, 1, 20000, rng);

  // IPv4-mapped and 6to4 forms answer as the IPv4 address.
  auto opened = tq::MmdbCountryDb::Open(db);
  REQUIRE(opened.ok());
  const U128 some = ranges[0].first;
  CHECK((*opened)->Lookup(ToIp((U128(0xffff) << 32) | some)).country ==
        ref.At(some).country);
  CHECK((*opened)->Lookup(ToIp((U128(0x2002) << 112) | (some << 80))).country ==
        ref.At(some).country);
}

TEST_CASE("CsvNetworksAndAddressRangesBuildTheSameAnswers", "[geo]") {
  tq::testing::TempDir dir;
  std::ofstream csv(dir.File("nets.csv"));
  csv << "network,country\n"
      << "81.2.69.0/24,GB\n"
      << "81.2.70.0/23,GB\n"  // adjacent, same country: merged
      << "8.8.8.0/24,US\n"
      << "2a02:d3c0::/29,GB\n"
      << "2001:218::/32,JP\n"
      << "0.0.0.0/0,EU\n";  // later wins: the rest of IPv4 is a region
  csv.close();
  std::ofstream ranges_csv(dir.File("ranges.csv"));
  ranges_csv << "from,to,country\n"
             << "1.0.0.0,1.0.0.255,AU\n"
             << "2001:220::,2001:220:ffff:ffff:ffff:ffff:ffff:ffff,KR\n";
  ranges_csv.close();
  std::vector<tq::geo::GeoRange> ranges;
  tq::geo::LoadStats stats;
  const std::string db = Build(
      dir, {dir.File("ranges.csv"), dir.File("nets.csv")}, &ranges, &stats);
  auto opened = tq::MmdbCountryDb::Open(db);
  REQUIRE(opened.ok());
  auto& d = **opened;
  // The /0 came last, so it wins over the IPv4 networks listed before it.
  CHECK(d.Resolve("81.2.69.160").outcome == tq::GeoOutcome::kNoCountry);
  CHECK(d.Resolve("81.2.69.160").detail.find("marks it 'EU', a region") !=
        std::string::npos);
  CHECK(d.Resolve("2a02:d3c0::1").country == "GB");
  CHECK(d.Resolve("2001:218::1").country == "JP");
  CHECK(d.Resolve("2001:220::1").country == "KR");
  CHECK(d.Resolve("2a02:d500::1").outcome == tq::GeoOutcome::kNotInDatabase);
}

TEST_CASE("MalformedRangeLineIsRefusedWithItsLineNumber", "[geo]") {
  tq::testing::TempDir dir;
  tq::testing::WriteFile(dir.File("bad.csv"), "1.0.0.0/24,AU\n1.0.1.0/33,AU\n");
  std::vector<tq::geo::GeoRange> ranges;
  tq::geo::LoadStats stats;
  auto st = tq::geo::LoadRanges(dir.File("bad.csv"), &ranges, &stats);
  REQUIRE(!st.ok());
  CHECK(st.message().find("bad.csv:2") != std::string::npos);
}

TEST_CASE("BuiltTorDatabaseAnswersWhatTorRangesSay", "[geo][tor]") {
  const std::vector<std::string> inputs = {"/usr/share/tor/geoip",
                                           "/usr/share/tor/geoip6"};
  for (const auto& f : inputs) {
    if (!std::ifstream(f))
      FAIL(f << " is missing: install tor-geoipdb (deploy/install-deps.sh)");
  }
  tq::testing::TempDir dir;
  // Through the real command, as deploy/build.sh runs it.
  tq::testing::Process build({tq::testing::Binary("tq-geoip"), "build", "-o",
                              dir.File("tor.mmdb"), inputs[0], inputs[1]},
                             dir.File("out"), dir.File("err"));
  const auto rc = build.Wait(std::chrono::seconds(60));
  INFO(tq::testing::ReadFile(dir.File("err")));
  REQUIRE(rc == 0);
  std::vector<tq::geo::GeoRange> ranges;
  tq::geo::LoadStats stats;
  for (const auto& in : inputs)
    REQUIRE(tq::geo::LoadRanges(in, &ranges, &stats).ok());
  CHECK(stats.uk_as_gb > 0);
  Reference ref(ranges);
  std::mt19937_64 rng(7);
  CheckDatabase(dir.File("tor.mmdb"), ref, 37, 20000, rng);
}
