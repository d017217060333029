// tq-geoip: builds tq's offline country database and looks addresses up.
//   tq-geoip build [-o FILE] [INPUT...]   (default: Tor's geoip + geoip6)
//   tq-geoip lookup FILE ADDR...
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "common/version.h"
#include "geo/geo.h"
#include "geo/mmdb_writer.h"
#include "geo/range_source.h"

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitFailure = 1;
constexpr int kExitNotAllFound = 3;

int Build(const std::vector<std::string>& inputs, const std::string& out_path,
          const std::string& description) {
  std::vector<tq::geo::GeoRange> ranges;
  tq::geo::LoadStats stats;
  for (const auto& path : inputs) {
    if (auto st = tq::geo::LoadRanges(path, &ranges, &stats); !st.ok()) {
      std::fprintf(stderr, "tq-geoip: %s\n", st.message().c_str());
      return kExitFailure;
    }
  }
  tq::geo::MmdbMeta meta;
  meta.description = description;
  meta.build_epoch = static_cast<uint64_t>(std::time(nullptr));
  tq::geo::MmdbStats built;
  auto bytes = tq::geo::BuildCountryMmdb(ranges, meta, &built);
  if (!bytes.ok()) {
    std::fprintf(stderr, "tq-geoip: %s\n", bytes.status().message().c_str());
    return kExitFailure;
  }
  // Written beside the target and renamed, so a reader never sees half.
  const std::string tmp = out_path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
    if (!out.flush()) {
      std::fprintf(stderr, "tq-geoip: cannot write %s\n", tmp.c_str());
      return kExitFailure;
    }
  }
  if (std::rename(tmp.c_str(), out_path.c_str()) != 0) {
    std::perror(("tq-geoip: rename to " + out_path).c_str());
    return kExitFailure;
  }
  std::fprintf(stderr,
               "tq-geoip: wrote %s: %zu ranges, %zu values, %zu nodes, "
               "%d-bit records, %zu bytes\n",
               out_path.c_str(), built.ranges, built.values, built.nodes,
               built.record_size, built.bytes);
  if (stats.unknown)
    std::fprintf(stderr, "tq-geoip: %zu ranges marked ?? left out\n",
                 stats.unknown);
  if (stats.uk_as_gb)
    std::fprintf(stderr, "tq-geoip: %zu ranges marked UK stored as GB\n",
                 stats.uk_as_gb);
  if (!stats.regions.empty()) {
    std::string codes;
    for (const auto& [code, n] : stats.regions)
      codes += " " + code + "(" + std::to_string(n) + ")";
    std::fprintf(stderr,
                 "tq-geoip: non-country codes kept as regions without a "
                 "country (their addresses get no country):%s\n",
                 codes.c_str());
  }
  if (stats.aliased_dropped)
    std::fprintf(stderr,
                 "tq-geoip: %zu IPv6 ranges inside ::/96, ::ffff:0:0/96 or "
                 "2002::/16 left out: those networks are answered from the "
                 "IPv4 data\n",
                 stats.aliased_dropped);
  return 0;
}

int Lookup(const std::string& path, const std::vector<std::string>& addrs) {
  auto db = tq::MmdbCountryDb::Open(path);
  if (!db.ok()) {
    std::fprintf(stderr, "tq-geoip: %s\n", db.status().message().c_str());
    return kExitFailure;
  }
  int rc = 0;
  for (const auto& a : addrs) {
    const tq::GeoAnswer ans = (*db)->Resolve(a);
    std::printf("%s\t%s\t%s\t%s\n", a.c_str(),
                ans.found() ? ans.country.c_str() : "-",
                tq::GeoOutcomeName(ans.outcome), ans.detail.c_str());
    if (!ans.found()) rc = kExitNotAllFound;
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "tq-geoip: builds tq's offline country database (MaxMind DB "
      "format) from address ranges, and looks addresses up"};
  app.require_subcommand(1);
  app.set_version_flag("--version", tq::VersionText("tq-geoip"));
  std::vector<std::string> inputs = {"/usr/share/tor/geoip",
                                     "/usr/share/tor/geoip6"};
  std::string out_path = "country.mmdb";
  std::string description =
      "tq country database from Tor's geoip files (IPFire Location data, CC "
      "BY-SA 4.0)";
  auto* build = app.add_subcommand(
      "build",
      "write a country database from range files: Tor's geoip/geoip6 "
      "(FROM,TO,CC), or CSV NETWORK/BITS,CC or FROM,TO,CC");
  build->add_option("inputs", inputs, "range files")->capture_default_str();
  build->add_option("-o,--out", out_path, "database to write")
      ->capture_default_str();
  build->add_option("--description", description,
                    "description stored in the metadata");

  std::string db_path;
  std::vector<std::string> addrs;
  auto* lookup = app.add_subcommand(
      "lookup",
      "print ADDR, country (or -), outcome and why, one line each; exit 3 if "
      "some address has no country");
  lookup->add_option("file", db_path, "MaxMind-format database")->required();
  lookup->add_option("addrs", addrs, "IPv4 or IPv6 addresses")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  if (*build) return Build(inputs, out_path, description);
  return Lookup(db_path, addrs);
}
