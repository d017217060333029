// The Team Cymru resolver against dnsmasq on loopback, which serves the TXT
// records the test gives it (port chosen here): no internet needed.
#include "geo/cymru.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>

#include "client/include/tq/client.h"
#include "tests/support/cluster.h"
#include "tests/support/wait.h"

namespace tq {
namespace {

using namespace std::chrono_literals;
using testing::Binary;
using testing::Process;
using testing::TempDir;

constexpr const char* kDnsmasq = "/usr/sbin/dnsmasq";

// A UDP port free right now on 127.0.0.1.
int FreeUdpPort() {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

class FakeCymru {
 public:
  explicit FakeCymru(const TempDir& dir) {
    if (access(kDnsmasq, X_OK) != 0)
      FAIL(kDnsmasq << " is missing: install dnsmasq-base "
                       "(deploy/install-deps.sh)");
    // dnsmasq binds the port for UDP and TCP; a port free for UDP a moment
    // ago may be taken for TCP by another test: then try another one.
    for (int attempt = 0; attempt < 10; ++attempt) {
      port_ = FreeUdpPort();
      process_ = Start(dir);
      CymruResolver probe(servers(), 200ms);
      bool died = false;
      const bool up = testing::WaitUntil(
          [&] {
            if (!process_->Running()) died = true;
            return died || probe.Resolve("81.2.69.160").found();
          },
          10s, 50ms);
      if (up && !died) return;
      INFO(testing::ReadFile(dir.File("dnsmasq.err")));
      REQUIRE(died);  // neither answering nor gone: give up
    }
    FAIL("dnsmasq could not bind a port on 127.0.0.1 in 10 attempts");
  }
  std::string servers() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  std::unique_ptr<Process> Start(const TempDir& dir) {
    return std::make_unique<Process>(
        std::vector<std::string>{
            kDnsmasq, "--keep-in-foreground", "--port=" + std::to_string(port_),
            "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
            "--no-hosts", "--user=root", "--pid-file=", "--log-facility=-",
            "--txt-record=160.69.2.81.origin.asn.cymru.com,20712 | "
            "81.2.69.0/24 | GB | ripencc | 2001-01-01",
            "--txt-record=1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c."
            "f.f.2.0.a.2.origin6.asn.cymru.com,64512 | 2a02:ffc0::/32 | GI | "
            "ripencc | 2010-01-01",
            "--txt-record=1.1.1.8.origin.asn.cymru.com,64513 | 8.1.1.0/24 | "
            "UK | ripencc | 2010-01-01",
            "--txt-record=2.2.2.8.origin.asn.cymru.com,64514 | 8.2.2.0/24 |  | "
            "other | 2010-01-01"},
        dir.File("dnsmasq.out"), dir.File("dnsmasq.err"));
  }

  int port_ = 0;
  std::unique_ptr<Process> process_;
};

}  // namespace

TEST_CASE("CymruQuestionsAreReversedOctetsOrNibbles", "[geo][cymru]") {
  CHECK(CymruQueryName(*ParseIpAddress("81.2.69.160")) ==
        "160.69.2.81.origin.asn.cymru.com");
  CHECK(CymruQueryName(*ParseIpAddress("::ffff:81.2.69.160")) ==
        "160.69.2.81.origin.asn.cymru.com");
  CHECK(CymruQueryName(*ParseIpAddress("2a02:ffc0::1")) ==
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.f.f.2.0.a.2."
        "origin6.asn.cymru.com");
}

TEST_CASE("CymruAnswersTheThirdFieldOfTheTxtRecord", "[geo][cymru]") {
  TempDir dir;
  FakeCymru dns(dir);
  CymruResolver cymru(dns.servers(), 1000ms);
  CHECK(cymru.Resolve("81.2.69.160").country == "GB");
  CHECK(cymru.Resolve("2a02:ffc0::1").country == "GI");
  CHECK(cymru.Resolve("8.1.1.1").country == "GB");  // UK
  CHECK(cymru.Resolve("8.2.2.2").outcome == GeoOutcome::kNoCountry);
  const GeoAnswer unknown = cymru.Resolve("9.9.9.9");
  INFO(unknown.detail);
  CHECK(!unknown.found());
  CHECK(cymru.Resolve("127.0.0.1").outcome == GeoOutcome::kNotPublic);
}

TEST_CASE("CymruWithoutAnswerIsAnErrorNotSilence", "[geo][cymru]") {
  // Nothing listens there: the query times out.
  CymruResolver cymru("127.0.0.1:" + std::to_string(FreeUdpPort()), 200ms);
  const GeoAnswer a = cymru.Resolve("81.2.69.160");
  INFO(a.detail);
  CHECK(a.outcome == GeoOutcome::kDatabaseError);
  CHECK(a.detail.find("Team Cymru") != std::string::npos);
}

TEST_CASE("WorkerWithCymruResolverReportsCymruAsSource", "[geo][cymru]") {
  TempDir dir;
  FakeCymru dns(dir);
  testing::BrokerProcess broker(dir, {"--geoip-db", "none"});
  auto worker = testing::StartWorker(
      dir, broker.endpoint(),
      {"w-cymru",
       "auto",
       1,
       {"--noop", "--geo-resolver", "cymru", "--dns-server", dns.servers(),
        "--public-ip", "81.2.69.160"}});
  ClientOptions o;
  o.endpoint = broker.endpoint();
  auto client = Client::Connect(o);
  REQUIRE(client.ok());
  std::vector<WorkerSummary> ws;
  REQUIRE(testing::WaitUntil(
      [&] {
        auto r = (*client)->Workers();
        if (r.ok()) ws = *r;
        return ws.size() == 1;
      },
      10s, 50ms));
  CHECK(ws[0].country == "GB");
  CHECK(ws[0].country_source == "cymru");
}

}  // namespace tq
