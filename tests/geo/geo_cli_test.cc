// --country auto through the real binaries on loopback: the broker's
// database, the worker's own, --public-ip, and the reason when neither
// finds a country. (Routing across real addresses: tests/netns.)
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>

#include "client/include/tq/client.h"
#include "tests/support/cluster.h"
#include "tests/support/wait.h"

namespace tq {
namespace {

using namespace std::chrono_literals;
using testing::Binary;
using testing::BrokerProcess;
using testing::Process;
using testing::ReadFile;
using testing::StartWorker;
using testing::TempDir;

const std::string kLiteDb =
    std::string(TQ_GEOIP_TEST_DIR) + "/GeoLite2-Country-Test.mmdb";

void RequireTestDb() {
  if (!std::ifstream(kLiteDb))
    FAIL("MaxMind test database " << kLiteDb << " is missing");
}

// The listed workers once there are `n`, by id.
std::map<std::string, WorkerSummary> WaitForWorkers(const std::string& ep,
                                                    size_t n) {
  ClientOptions o;
  o.endpoint = ep;
  auto client = Client::Connect(o);
  REQUIRE(client.ok());
  std::map<std::string, WorkerSummary> by_id;
  const bool all = testing::WaitUntil(
      [&] {
        auto ws = (*client)->Workers();
        if (!ws.ok() || ws->size() != n) return false;
        for (auto& w : *ws) by_id[w.worker_id] = w;
        return true;
      },
      10s, 50ms);
  REQUIRE(all);
  return by_id;
}

}  // namespace

TEST_CASE("AutoWorkersGetCountryFromBrokerOrOwnDatabaseOrSayWhyNot",
          "[geo][e2e]") {
  RequireTestDb();
  TempDir dir;
  BrokerProcess broker(dir, {"--geoip-db", kLiteDb});
  auto loop = StartWorker(dir, broker.endpoint(), {"w-loop", "auto", 1});
  auto nat = StartWorker(
      dir, broker.endpoint(),
      {"w-nat", "auto", 1, {"--noop", "--public-ip", "2.125.160.216"}});
  auto own = StartWorker(
      dir, broker.endpoint(),
      {"w-own",
       "auto",
       1,
       {"--noop", "--geoip-db", kLiteDb, "--public-ip", "2a02:ffc0::1"}});
  auto flag = StartWorker(dir, broker.endpoint(), {"w-flag", "IT", 1});
  auto ws = WaitForWorkers(broker.endpoint(), 4);
  INFO(broker.Log());
  CHECK(ws["w-loop"].country.empty());
  CHECK(ws["w-loop"].country_source ==
        "none: 127.0.0.1 is a loopback address, which has no country; pass "
        "--country CC or --public-ip ADDR to the worker");
  CHECK(ws["w-loop"].queues == std::vector<std::string>{"generic"});
  CHECK(ws["w-nat"].country == "GB");
  CHECK(ws["w-nat"].country_source == "broker-geoip");
  CHECK(ws["w-own"].country == "GI");
  CHECK(ws["w-own"].country_source == "worker-geoip");
  CHECK(ws["w-flag"].country == "IT");
  CHECK(ws["w-flag"].country_source == "flag");
}

TEST_CASE("GeoFlagsWithoutCountryAutoAreUsageErrors", "[geo][e2e]") {
  TempDir dir;
  Process p({Binary("tq-worker"), "--country", "IT", "--public-ip", "1.2.3.4",
             "--noop"},
            "", dir.File("err"));
  CHECK(p.Wait(10s) == 2);
  CHECK(ReadFile(dir.File("err")).find("--country auto") != std::string::npos);
}

TEST_CASE("BrokerRefusesToStartWithAnUnreadableDatabase", "[geo][e2e]") {
  TempDir dir;
  Process p({Binary("tq-broker"), "--db", dir.File("tq.db"), "--listen",
             "tcp://127.0.0.1:0", "--geoip-db", dir.File("missing.mmdb")},
            "", dir.File("err"));
  CHECK(p.Wait(10s) == 1);
  CHECK(ReadFile(dir.File("err")).find("missing.mmdb") != std::string::npos);
}

TEST_CASE("LookupCommandPrintsCountryAndOutcome", "[geo][e2e]") {
  RequireTestDb();
  TempDir dir;
  Process p({Binary("tq-geoip"), "lookup", kLiteDb, "81.2.69.160",
             "::ffff:81.2.69.160", "10.0.0.1", "1.1.1.1", "nonsense"},
            dir.File("out"), dir.File("err"));
  CHECK(p.Wait(10s) == 3);  // some addresses have no country
  const std::string out = ReadFile(dir.File("out"));
  CHECK(out.find("81.2.69.160\tGB\tfound") != std::string::npos);
  CHECK(out.find("::ffff:81.2.69.160\tGB\tfound") != std::string::npos);
  CHECK(out.find("10.0.0.1\t-\tnot-public") != std::string::npos);
  CHECK(out.find("1.1.1.1\t-\tnot-in-database") != std::string::npos);
  CHECK(out.find("nonsense\t-\tmalformed") != std::string::npos);
}

}  // namespace tq

namespace tq {

TEST_CASE("BrokerUsesTheBuiltWorldDatabaseByDefault", "[geo][e2e]") {
  const std::string built =
      std::string(TQ_BIN_DIR) + "/../share/tq/country.mmdb";
  if (!std::ifstream(built))
    FAIL(built << " is missing: the build writes it from tor-geoipdb");
  TempDir dir;
  BrokerProcess broker(dir);
  // 193.0.0.0/21 is the RIPE NCC's own network, in the Netherlands.
  auto worker =
      StartWorker(dir, broker.endpoint(),
                  {"w", "auto", 1, {"--noop", "--public-ip", "193.0.0.1"}});
  auto ws = WaitForWorkers(broker.endpoint(), 1);
  INFO(broker.Log());
  CHECK(broker.Log().find("share/tq/country.mmdb") != std::string::npos);
  CHECK(ws["w"].country == "NL");
  CHECK(ws["w"].country_source == "broker-geoip");
}

}  // namespace tq
