// How the broker core places a worker in a country: --country CC as given,
// --country auto through the injected CountryResolver (a fake here), and a
// reason whenever it finds none.
#include <catch2/catch.hpp>
#include <map>
#include <memory>

#include "broker/broker.h"
#include "broker/sqlite_task_store.h"
#include "tests/support/temp_dir.h"

namespace tq {
namespace {

// Answers from a table; records what it was asked.
class FakeResolver final : public CountryResolver {
 public:
  std::map<std::string, GeoAnswer> answers;
  std::vector<std::string> asked;
  GeoAnswer Resolve(const std::string& ip) override {
    asked.push_back(ip);
    auto it = answers.find(ip);
    if (it != answers.end()) return it->second;
    return {GeoOutcome::kNotInDatabase, "", ip + " is in no network of fake"};
  }
};

class CountryHarness {
 public:
  explicit CountryHarness(CountryResolver* resolver) {
    auto s = SqliteTaskStore::Open(dir_.File("tq.db"));
    REQUIRE(s.ok());
    store_ = std::move(s.value());
    BrokerOptions o;
    o.country_resolver = resolver;
    broker_ = std::make_unique<Broker>(*store_, clock_, o);
    REQUIRE(broker_->Start().ok());
  }

  // Says Hello from `address`; returns the Welcome (or fails).
  wire::Welcome Hello(const std::string& peer, const std::string& address,
                      const std::string& country, bool country_auto,
                      const std::string& source = "") {
    wire::Envelope e;
    e.set_version(kProtocolVersion);
    e.set_seq(1);
    auto* h = e.mutable_hello();
    h->set_worker_id("worker-" + peer);
    h->set_country(country);
    h->set_concurrency(1);
    h->set_country_auto(country_auto);
    h->set_country_source(source);
    broker_->OnMessage(peer, e, address);
    for (const Outgoing& o : Turn()) {
      if (o.peer == peer && o.envelope.has_welcome())
        return o.envelope.welcome();
    }
    FAIL("no Welcome for " << peer);
    return {};
  }

  std::vector<Outgoing> Turn() {
    broker_->OnTick();
    std::vector<Outgoing> out = broker_->Flush();
    for (Outgoing& o : broker_->Commit()) out.push_back(std::move(o));
    return out;
  }

  wire::WorkerInfo Info(const std::string& peer) {
    wire::Envelope e;
    e.set_version(kProtocolVersion);
    e.set_seq(9);
    e.mutable_list_workers();
    broker_->OnMessage("ctl", e, "");
    for (const Outgoing& o : Turn()) {
      if (o.peer != "ctl" || !o.envelope.has_worker_list()) continue;
      for (const auto& w : o.envelope.worker_list().workers())
        if (w.worker_id() == "worker-" + peer) return w;
    }
    FAIL("worker-" << peer << " not listed");
    return {};
  }

 private:
  testing::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<SqliteTaskStore> store_;
  std::unique_ptr<Broker> broker_;
};

std::vector<std::string> Queues(const wire::Welcome& w) {
  return {w.queues().begin(), w.queues().end()};
}

}  // namespace

TEST_CASE("AutoWorkerGetsTheCountryOfItsAddress", "[broker][geo]") {
  FakeResolver fake;
  fake.answers["81.2.69.160"] = {GeoOutcome::kFound, "GB", "in GB"};
  CountryHarness h(&fake);
  const wire::Welcome w = h.Hello("w1", "81.2.69.160", "", true);
  CHECK(w.country() == "GB");
  CHECK(w.country_source() == "broker-geoip");
  CHECK(Queues(w) == std::vector<std::string>{"GB", "generic"});
  CHECK(fake.asked == std::vector<std::string>{"81.2.69.160"});
  const wire::WorkerInfo info = h.Info("w1");
  CHECK(info.country() == "GB");
  CHECK(info.country_source() == "broker-geoip");
}

TEST_CASE("FlagCountryIsNeverLookedUp", "[broker][geo]") {
  FakeResolver fake;
  fake.answers["81.2.69.160"] = {GeoOutcome::kFound, "GB", "in GB"};
  CountryHarness h(&fake);
  const wire::Welcome w = h.Hello("w1", "81.2.69.160", "IT", false);
  CHECK(w.country() == "IT");
  CHECK(w.country_source() == "flag");
  CHECK(fake.asked.empty());
  const wire::Welcome none = h.Hello("w2", "81.2.69.160", "", false);
  CHECK(none.country().empty());
  CHECK(none.country_source() == "none: no country given");
  CHECK(fake.asked.empty());
}

TEST_CASE("CountryFoundByTheWorkerIsKeptWithItsSource", "[broker][geo]") {
  FakeResolver fake;
  fake.answers["81.2.69.160"] = {GeoOutcome::kFound, "GB", "in GB"};
  CountryHarness h(&fake);
  const wire::Welcome w =
      h.Hello("w1", "81.2.69.160", "SE", true, "worker-geoip");
  CHECK(w.country() == "SE");
  CHECK(w.country_source() == "worker-geoip");
  CHECK(fake.asked.empty());
}

TEST_CASE("AutoWorkerWithoutCountryServesGenericAndSaysWhy", "[broker][geo]") {
  FakeResolver fake;
  fake.answers["127.0.0.1"] = {
      GeoOutcome::kNotPublic, "",
      "127.0.0.1 is a loopback address, which has no country"};
  CountryHarness h(&fake);
  const wire::Welcome loop = h.Hello("w1", "127.0.0.1", "", true);
  CHECK(loop.country().empty());
  CHECK(Queues(loop) == std::vector<std::string>{"generic"});
  CHECK(loop.country_source() ==
        "none: 127.0.0.1 is a loopback address, which has no country; pass "
        "--country CC or --public-ip ADDR to the worker");
  CHECK(h.Info("w1").country_source() == loop.country_source());

  const wire::Welcome unknown = h.Hello("w2", "1.1.1.1", "", true);
  CHECK(unknown.country_source() == "none: 1.1.1.1 is in no network of fake");

  const wire::Welcome no_address = h.Hello("w3", "", "", true);
  CHECK(no_address.country_source().find("does not know the address") !=
        std::string::npos);
}

TEST_CASE("WorkerReasonComesFirstWhenBothSidesFail", "[broker][geo]") {
  FakeResolver fake;
  CountryHarness h(&fake);
  const wire::Welcome w =
      h.Hello("w1", "1.1.1.1", "", true,
              "none: 10.0.0.5 is a private address, which has no country");
  CHECK(w.country_source() ==
        "none: 10.0.0.5 is a private address, which has no country; 1.1.1.1 "
        "is in no network of fake");
}

TEST_CASE("AutoWorkerOnBrokerWithoutDatabaseIsToldHowToFixIt",
          "[broker][geo]") {
  CountryHarness h(nullptr);
  const wire::Welcome w = h.Hello("w1", "81.2.69.160", "", true);
  CHECK(w.country().empty());
  CHECK(Queues(w) == std::vector<std::string>{"generic"});
  CHECK(w.country_source().rfind("none: the broker has no GeoIP database", 0) ==
        0);
}

}  // namespace tq
