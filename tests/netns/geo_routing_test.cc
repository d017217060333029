// --country auto across real addresses: each worker runs in its own network
// namespace, linked to the broker's namespace by a veth pair, with an
// address that a small database (built by tq-geoip from a CSV written here)
// maps to its own country. The addresses are public unicast ones (5.1.x.0/24)
// on purpose, because tq never geolocates private, documentation or
// benchmarking addresses; they exist only on these veth links, inside
// namespaces that have no route anywhere else, so no real host is reached.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/netns/netns_support.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace {

using tq::testing::Binary;
using tq::testing::InNs;
using tq::testing::Namespaces;
using tq::testing::Process;
using tq::testing::ReadFile;
using tq::testing::Sh;
using tq::testing::TempDir;
using tq::testing::WaitUntil;
using namespace std::chrono_literals;

struct Host {
  std::string name;     // worker id
  std::string ns;       // its namespace
  std::string address;  // on its veth
  std::string gateway;  // the broker's address on the same link
  std::vector<std::string> flags;
};

std::string Bracketed(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

// Runs a command to completion; its stdout. Each run gets fresh files
// (Process appends).
std::string Output(const TempDir& dir, std::string name,
                   const std::vector<std::string>& argv) {
  static int runs = 0;
  name += "-" + std::to_string(++runs);
  Process p(argv, dir.File(name + ".out"), dir.File(name + ".err"));
  const auto rc = p.Wait(60s);
  INFO(name << " stderr: " << ReadFile(dir.File(name + ".err")));
  REQUIRE(rc.has_value());
  CHECK((*rc == 0 || *rc == 1));
  return ReadFile(dir.File(name + ".out"));
}

}  // namespace

TEST_CASE("AutoWorkersAreRoutedByTheCountryOfTheirAddress", "[netns][geo]") {
  TempDir dir;
  Namespaces namespaces("tqgeo");

  // The database: one country per worker link.
  tq::testing::WriteFile(dir.File("nets.csv"),
                         "network,country\n"
                         "5.1.1.0/24,IT\n"
                         "5.1.2.0/24,DE\n"
                         "5.1.3.0/24,FR\n"
                         "2a05:d000::/32,JP\n");
  {
    Process build({Binary("tq-geoip"), "build", "-o", dir.File("test.mmdb"),
                   dir.File("nets.csv")},
                  "", dir.File("build.err"));
    REQUIRE(build.Wait(30s) == 0);
  }

  const std::string broker_ns = namespaces.Add("b");
  std::vector<Host> hosts = {
      {"w-it", "", "5.1.1.2", "5.1.1.1", {}},
      {"w-de", "", "5.1.2.2", "5.1.2.1", {}},
      // Resolves its country itself, as for a broker without a database.
      {"w-fr", "", "5.1.3.2", "5.1.3.1", {"--geoip-db", dir.File("test.mmdb")}},
      // Over IPv6 (a public prefix, as above).
      {"w-jp", "", "2a05:d000::2", "2a05:d000::1", {}},
      // A private address: no country, generic only, and a reason.
      {"w-private", "", "10.77.0.2", "10.77.0.1", {}},
  };
  for (size_t i = 0; i < hosts.size(); ++i) {
    Host& h = hosts[i];
    h.ns = namespaces.Add("w" + std::to_string(i));
    const std::string a = "tqg" + std::to_string(i) + "a";
    const std::string b = "tqg" + std::to_string(i) + "b";
    Sh("ip -n " + h.ns + " link add " + a + " type veth peer name " + b +
       " netns " + broker_ns);
    // nodad: an IPv6 address is usable at once, not after duplicate
    // address detection.
    const bool v6 = h.address.find(':') != std::string::npos;
    const std::string len = v6 ? "/64" : "/24";
    const std::string opts = v6 ? " nodad" : "";
    Sh("ip -n " + h.ns + " addr add " + h.address + len + " dev " + a + opts);
    Sh("ip -n " + broker_ns + " addr add " + h.gateway + len + " dev " + b +
       opts);
    Sh("ip -n " + h.ns + " link set " + a + " up");
    Sh("ip -n " + broker_ns + " link set " + b + " up");
  }

  Process broker(
      InNs(broker_ns, {Binary("tq-broker"), "--db", dir.File("tq.db"),
                       "--listen", "tcp://*:0", "--insecure", "--ready-file",
                       dir.File("endpoint"), "--geoip-db",
                       dir.File("test.mmdb"), "--heartbeat-interval", "0.2"}),
      "", dir.File("broker.log"));
  const bool listening =
      WaitUntil([&] { return !ReadFile(dir.File("endpoint")).empty(); }, 10s);
  INFO("broker log:\n" << ReadFile(dir.File("broker.log")));
  REQUIRE(listening);
  std::string endpoint = ReadFile(dir.File("endpoint"));
  while (!endpoint.empty() && endpoint.back() == '\n') endpoint.pop_back();
  const std::string port = endpoint.substr(endpoint.rfind(':') + 1);
  const std::string local = "tcp://127.0.0.1:" + port;

  std::vector<std::unique_ptr<Process>> workers;
  for (const Host& h : hosts) {
    std::vector<std::string> argv = {
        Binary("tq-worker"),
        "--broker",
        "tcp://" + Bracketed(h.gateway) + ":" + port,
        "--country",
        "auto",
        "--id",
        h.name,
        "--concurrency",
        "2",
        "--noop"};
    argv.insert(argv.end(), h.flags.begin(), h.flags.end());
    workers.push_back(std::make_unique<Process>(InNs(h.ns, argv), "",
                                                dir.File(h.name + ".log")));
  }

  // Every worker placed, as tq-ctl shows it.
  nlohmann::json listed;
  const bool all_joined = WaitUntil(
      [&] {
        const std::string out = Output(
            dir, "ctl",
            InNs(broker_ns,
                 {Binary("tq-ctl"), "--broker", local, "--json", "workers"}));
        listed = nlohmann::json::parse(out, nullptr, false);
        return !listed.is_discarded() &&
               listed["workers"].size() == hosts.size();
      },
      20s, 100ms);
  INFO("broker log:\n" << ReadFile(dir.File("broker.log")));
  REQUIRE(all_joined);
  std::map<std::string, std::pair<std::string, std::string>> placed;
  for (const auto& w : listed["workers"]) {
    placed[w["worker_id"]] = {w["country"], w["country_source"]};
  }
  CHECK(placed["w-it"] ==
        std::make_pair(std::string("IT"), std::string("broker-geoip")));
  CHECK(placed["w-de"] ==
        std::make_pair(std::string("DE"), std::string("broker-geoip")));
  CHECK(placed["w-fr"] ==
        std::make_pair(std::string("FR"), std::string("worker-geoip")));
  CHECK(placed["w-jp"] ==
        std::make_pair(std::string("JP"), std::string("broker-geoip")));
  CHECK(placed["w-private"].first.empty());
  CHECK(placed["w-private"].second.find("10.77.0.2 is a private address") !=
        std::string::npos);
  // Both sides said why, in one line each.
  CHECK(ReadFile(dir.File("broker.log"))
            .find("worker w-private gets no country") != std::string::npos);
  CHECK(ReadFile(dir.File("w-private.log"))
            .find("no country for --country auto") != std::string::npos);

  // Tasks for each country reach only that country's worker.
  std::string urls;
  for (int i = 0; i < 30; ++i)
    urls += "http://example.com/" + std::to_string(i) + "\n";
  tq::testing::WriteFile(dir.File("urls.txt"), urls);
  for (const std::string country : {"IT", "DE", "FR", "JP"}) {
    const std::string out =
        Output(dir, "submit-" + country,
               InNs(broker_ns, {Binary("tq-submit"), "--broker", local,
                                dir.File("urls.txt"), "--country", country,
                                "--wait", "--timeout", "30", "-q"}));
    std::istringstream lines(out);
    std::string line;
    std::set<std::string> served_by;
    int results = 0;
    while (std::getline(lines, line)) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.contains("worker")) continue;
      served_by.insert(j["worker"].get<std::string>());
      ++results;
    }
    INFO(country << ": " << out);
    CHECK(results == 30);
    const std::map<std::string, std::string> worker_of = {
        {"IT", "w-it"}, {"DE", "w-de"}, {"FR", "w-fr"}, {"JP", "w-jp"}};
    CHECK(served_by == std::set<std::string>{worker_of.at(country)});
  }
}
