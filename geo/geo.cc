#include "geo/geo.h"

#include <arpa/inet.h>
#include <maxminddb.h>
#include <netinet/in.h>

#include <cstring>
#include <ctime>
#include <filesystem>

#include "common/queue_name.h"

namespace tq {

const char* GeoOutcomeName(GeoOutcome outcome) {
  switch (outcome) {
    case GeoOutcome::kFound:
      return "found";
    case GeoOutcome::kNotInDatabase:
      return "not-in-database";
    case GeoOutcome::kNoCountry:
      return "no-country";
    case GeoOutcome::kNotPublic:
      return "not-public";
    case GeoOutcome::kMalformed:
      return "malformed";
    case GeoOutcome::kDatabaseError:
      return "database-error";
  }
  return "?";
}

Result<std::unique_ptr<MmdbCountryDb>> MmdbCountryDb::Open(
    const std::string& path) {
  auto db = std::make_unique<MMDB_s>();
  const int rc = MMDB_open(path.c_str(), MMDB_MODE_MMAP, db.get());
  if (rc != MMDB_SUCCESS) {
    std::string why = MMDB_strerror(rc);
    if (rc == MMDB_IO_ERROR && errno != 0)
      why += ": " + std::string(strerror(errno));
    return Status::IoError("GeoIP database " + path + ": " + why);
  }
  return std::unique_ptr<MmdbCountryDb>(new MmdbCountryDb(path, std::move(db)));
}

MmdbCountryDb::MmdbCountryDb(std::string path, std::unique_ptr<MMDB_s> db)
    : path_(std::move(path)), db_(std::move(db)) {}

MmdbCountryDb::~MmdbCountryDb() { MMDB_close(db_.get()); }

std::string MmdbCountryDb::Describe() const {
  const auto& m = db_->metadata;
  char date[32] = "?";
  const time_t epoch = static_cast<time_t>(m.build_epoch);
  tm utc{};
  if (gmtime_r(&epoch, &utc)) strftime(date, sizeof date, "%Y-%m-%d", &utc);
  return std::string(m.database_type ? m.database_type : "?") + ", IPv" +
         std::to_string(m.ip_version) + ", " + std::to_string(m.node_count) +
         " nodes, built " + date;
}

GeoAnswer MmdbCountryDb::Resolve(const std::string& ip) {
  auto parsed = ParseIpAddress(ip);
  if (!parsed.ok())
    return {GeoOutcome::kMalformed, "", parsed.status().message()};
  if (auto why = NonPublicReason(*parsed)) {
    return {GeoOutcome::kNotPublic, "",
            parsed->ToString() + " is " + *why + ", which has no country"};
  }
  return Lookup(*parsed);
}

GeoAnswer MmdbCountryDb::Lookup(const IpAddress& ip) {
  const std::string text = ip.ToString();
  sockaddr_storage ss{};
  if (ip.v4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    std::memcpy(&sin->sin_addr, ip.bytes.data(), 4);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    std::memcpy(&sin6->sin6_addr, ip.bytes.data(), 16);
  }
  int mmdb_error = MMDB_SUCCESS;
  MMDB_lookup_result_s r = MMDB_lookup_sockaddr(
      db_.get(), reinterpret_cast<sockaddr*>(&ss), &mmdb_error);
  if (mmdb_error == MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR) {
    return {GeoOutcome::kNotInDatabase, "",
            text + " is IPv6 and " + path_ + " holds IPv4 networks only"};
  }
  if (mmdb_error != MMDB_SUCCESS) {
    return {GeoOutcome::kDatabaseError, "",
            "looking up " + text + " in " + path_ + ": " +
                MMDB_strerror(mmdb_error)};
  }
  if (!r.found_entry) {
    return {GeoOutcome::kNotInDatabase, "",
            text + " is in no network of " + path_};
  }
  MMDB_entry_data_s data{};
  const int rc =
      MMDB_get_value(&r.entry, &data, "country", "iso_code", nullptr);
  if (rc == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR ||
      (rc == MMDB_SUCCESS && !data.has_data)) {
    // tq-geoip keeps the source's non-country codes (EU, AP, ...) here.
    MMDB_entry_data_s region{};
    std::string marked;
    if (MMDB_get_value(&r.entry, &region, "tq_region", nullptr) ==
            MMDB_SUCCESS &&
        region.has_data && region.type == MMDB_DATA_TYPE_UTF8_STRING) {
      marked = " (its source marks it '" +
               std::string(region.utf8_string, region.data_size) +
               "', a region, not a country)";
    }
    return {GeoOutcome::kNoCountry, "",
            text + " matched a record of " + path_ + " that names no country" +
                marked};
  }
  if (rc != MMDB_SUCCESS) {
    return {GeoOutcome::kDatabaseError, "",
            "reading the record for " + text + " in " + path_ + ": " +
                MMDB_strerror(rc)};
  }
  if (data.type != MMDB_DATA_TYPE_UTF8_STRING) {
    return {
        GeoOutcome::kDatabaseError, "",
        "country.iso_code for " + text + " in " + path_ + " is not a string"};
  }
  std::string code(data.utf8_string, data.data_size);
  if (!IsIsoCountryCode(code)) {
    return {GeoOutcome::kNoCountry, "",
            text + " is in a network of " + path_ + " marked '" + code +
                "', which is not an ISO 3166-1 country code"};
  }
  return {GeoOutcome::kFound, code, text + " is in " + code};
}

std::string DefaultGeoipDbPath(std::vector<std::string>* searched) {
  std::vector<std::string> candidates;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    candidates.push_back(
        (exe.parent_path().parent_path() / "share/tq/country.mmdb").string());
  }
  candidates.push_back(std::string(TQ_INSTALL_DATADIR) + "/tq/country.mmdb");
  if (searched) *searched = candidates;
  for (const auto& c : candidates)
    if (std::filesystem::is_regular_file(c, ec)) return c;
  return "";
}

}  // namespace tq
