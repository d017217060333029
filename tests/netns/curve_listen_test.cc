// The refusal to listen beyond loopback without keys, on a real
// non-loopback address: the broker runs in a network namespace whose veth
// address is 10.78.0.1, a worker in another namespace at 10.78.0.2 (the
// link is the only route either has). Without --key the broker exits 2
// naming tq-keygen; with --insecure it starts and warns; with keys the
// worker connects over the veth with CURVE and does a batch's work.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
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

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

struct Run {
  int code = -1;
  std::string out, err;
};

Run RunIn(const TempDir& dir, const std::vector<std::string>& argv) {
  static int runs = 0;
  const std::string name = "run-" + std::to_string(++runs);
  Process p(argv, dir.File(name + ".out"), dir.File(name + ".err"));
  const auto rc = p.Wait(60s);
  REQUIRE(rc.has_value());
  return {*rc, ReadFile(dir.File(name + ".out")),
          ReadFile(dir.File(name + ".err"))};
}

std::string Endpoint(const std::string& ready_file) {
  std::string e = ReadFile(ready_file);
  while (!e.empty() && e.back() == '\n') e.pop_back();
  return e;
}

}  // namespace

TEST_CASE("NonLoopbackListenInANamespaceNeedsKeysAndWorksWithThem",
          "[netns][curve]") {
  TempDir dir;
  Namespaces namespaces("tqkey");
  const std::string broker_ns = namespaces.Add("b");
  const std::string worker_ns = namespaces.Add("w");
  const std::string a = "tqk" + std::to_string(getpid() % 100000) + "a";
  const std::string b = "tqk" + std::to_string(getpid() % 100000) + "b";
  Sh("ip -n " + worker_ns + " link add " + a + " type veth peer name " + b +
     " netns " + broker_ns);
  Sh("ip -n " + worker_ns + " addr add 10.78.0.2/24 dev " + a);
  Sh("ip -n " + broker_ns + " addr add 10.78.0.1/24 dev " + b);
  Sh("ip -n " + worker_ns + " link set " + a + " up");
  Sh("ip -n " + broker_ns + " link set " + b + " up");
  const std::string listen = "tcp://10.78.0.1:0";

  // Without keys: refused, exit 2, naming tq-keygen; nothing created.
  Run refused =
      RunIn(dir, InNs(broker_ns, {Binary("tq-broker"), "--db",
                                  dir.File("refused.db"), "--listen", listen}));
  INFO(refused.err);
  CHECK(refused.code == 2);
  CHECK(Contains(refused.err,
                 "refusing to listen on " + listen + " without keys"));
  CHECK(Contains(refused.err, "tq-keygen broker --dir"));
  CHECK_FALSE(std::filesystem::exists(dir.File("refused.db")));

  // --insecure: it starts on that address, and says so loudly.
  {
    Process insecure(
        InNs(broker_ns, {Binary("tq-broker"), "--db", dir.File("insecure.db"),
                         "--listen", listen, "--insecure", "--ready-file",
                         dir.File("insecure.endpoint")}),
        "", dir.File("insecure.log"));
    CHECK(WaitUntil(
        [&] { return !ReadFile(dir.File("insecure.endpoint")).empty(); }, 20s));
    const std::string at = Endpoint(dir.File("insecure.endpoint"));
    INFO(at);
    CHECK(Contains(at, "10.78.0.1"));
    CHECK(Contains(ReadFile(dir.File("insecure.log")), "INSECURE: listening"));
  }

  // With keys: a worker in the other namespace connects over the veth.
  std::filesystem::create_directory(dir.File("authorized"));
  for (const auto& [name, roles] :
       std::vector<std::pair<std::string, std::string>>{
           {"broker", ""}, {"box", "worker"}, {"ops", "admin,submit"}}) {
    std::vector<std::string> argv = {Binary("tq-keygen"), name, "--dir",
                                     dir.path()};
    if (!roles.empty()) argv.insert(argv.end(), {"--role", roles});
    Run made = RunIn(dir, argv);
    INFO(made.err);
    REQUIRE(made.code == 0);
    if (name != "broker") {
      std::filesystem::copy_file(dir.File(name + ".key"),
                                 dir.File("authorized/" + name + ".key"));
    }
  }
  Process broker(
      InNs(broker_ns,
           {Binary("tq-broker"), "--db", dir.File("tq.db"), "--listen", listen,
            "--key", dir.File("broker.key_secret"), "--authorized-keys",
            dir.File("authorized"), "--ready-file", dir.File("endpoint"),
            "--heartbeat-interval", "0.2"}),
      "", dir.File("broker.log"));
  REQUIRE(
      WaitUntil([&] { return !ReadFile(dir.File("endpoint")).empty(); }, 20s));
  const std::string endpoint = Endpoint(dir.File("endpoint"));
  INFO("broker log:\n" << ReadFile(dir.File("broker.log")));
  CHECK(Contains(ReadFile(dir.File("broker.log")), "with CURVE"));
  CHECK_FALSE(Contains(ReadFile(dir.File("broker.log")), "INSECURE"));

  Process worker(
      InNs(worker_ns,
           {Binary("tq-worker"), "--broker", endpoint, "--id", "w-remote",
            "--concurrency", "2", "--noop", "--broker-key",
            dir.File("broker.key"), "--key", dir.File("box.key_secret")}),
      "", dir.File("worker.log"));
  const std::vector<std::string> ops = {
      "--broker",     endpoint,
      "--broker-key", dir.File("broker.key"),
      "--key",        dir.File("ops.key_secret")};
  nlohmann::json listed;
  const bool joined = WaitUntil(
      [&] {
        std::vector<std::string> argv = {Binary("tq-ctl")};
        argv.insert(argv.end(), ops.begin(), ops.end());
        argv.insert(argv.end(), {"--json", "workers"});
        Run ctl = RunIn(dir, InNs(broker_ns, argv));
        listed = nlohmann::json::parse(ctl.out, nullptr, false);
        return !listed.is_discarded() && listed["workers"].size() == 1;
      },
      20s, 200ms);
  INFO("worker log:\n" << ReadFile(dir.File("worker.log")));
  REQUIRE(joined);
  CHECK(listed["workers"][0]["worker_id"] == "w-remote");
  CHECK(listed["workers"][0]["key_name"] == "box");
  // It came over the veth, from the other namespace's address.
  CHECK(Contains(ReadFile(dir.File("broker.log")), "10.78.0.2"));

  std::string urls;
  for (int i = 0; i < 10; ++i)
    urls += "http://example.com/" + std::to_string(i) + "\n";
  tq::testing::WriteFile(dir.File("urls.txt"), urls);
  std::vector<std::string> submit = {Binary("tq-submit")};
  submit.insert(submit.end(), ops.begin(), ops.end());
  submit.insert(submit.end(),
                {dir.File("urls.txt"), "--wait", "--timeout", "30", "-q"});
  Run done = RunIn(dir, InNs(broker_ns, submit));
  INFO(done.err);
  CHECK(done.code == 0);
  std::istringstream lines(done.out);
  std::string line;
  int by_remote = 0;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("worker", "") == "w-remote") ++by_remote;
  }
  CHECK(by_remote == 10);

  // A worker there without keys cannot join: nothing it sends gets in.
  Process keyless(InNs(worker_ns, {Binary("tq-worker"), "--broker", endpoint,
                                   "--id", "w-keyless", "--noop"}),
                  "", dir.File("keyless.log"));
  CHECK_FALSE(keyless.Wait(2s).has_value());
  std::vector<std::string> argv = {Binary("tq-ctl")};
  argv.insert(argv.end(), ops.begin(), ops.end());
  argv.insert(argv.end(), {"--json", "workers"});
  Run ctl = RunIn(dir, InNs(broker_ns, argv));
  CHECK_FALSE(Contains(ctl.out, "w-keyless"));
}
