// End to end (#18): a broken worker or a dead site cannot hide. Real
// binaries on loopback: quarantine of a worker that fails what others
// complete, a worker that refuses to start without its program, tasks that
// fail everywhere quarantining no one, honest outcomes from the analyser,
// per-worker accounting across a broker SIGKILL, release after a probe.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/e2e_client.h"
#include "tests/support/cluster.h"
#include "tests/support/fixture_server.h"
#include "tests/support/tool_run.h"
#include "tests/support/wait.h"
#include "tq/client.h"

namespace tq {
namespace {

using namespace std::chrono_literals;
using testing::Binary;
using testing::BrokerProcess;
using testing::CollectByUrl;
using testing::Connect;
using testing::FixtureServer;
using testing::Process;
using testing::ReadFile;
using testing::RunTool;
using testing::StartWorker;
using testing::TempDir;
using testing::ToolRun;
using testing::WaitUntil;
using testing::WorkerSpec;
using testing::WriteFile;

// An executable shell script in `dir`.
std::string Script(const TempDir& dir, const std::string& name,
                   const std::string& body) {
  const std::string path = dir.File(name);
  WriteFile(path, "#!/bin/sh\n" + body);
  REQUIRE(chmod(path.c_str(), 0755) == 0);
  return path;
}

std::vector<std::string> Urls(int n, const std::string& prefix) {
  std::vector<std::string> urls;
  for (int i = 0; i < n; ++i) {
    urls.push_back("http://127.0.0.1/" + prefix + std::to_string(i));
  }
  return urls;
}

std::map<std::string, WorkerSummary> WorkersById(Client& client) {
  std::map<std::string, WorkerSummary> by_id;
  auto workers = client.Workers();
  if (!workers.ok()) return by_id;
  for (const WorkerSummary& w : *workers) by_id[w.worker_id] = w;
  return by_id;
}

bool AllJoined(Client& client, size_t n) {
  return WorkersById(client).size() == n;
}

std::string Submit(Client& client, const std::vector<std::string>& urls,
                   uint32_t max_attempts = 0) {
  SubmitOptions o;
  o.max_attempts = max_attempts;
  auto receipt = client.Submit(urls, o);
  REQUIRE(receipt.ok());
  REQUIRE(receipt->accepted == urls.size());
  return receipt->batch_id;
}

// A loopback port nothing listens on (bound, then closed).
int ClosedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  close(fd);
  return ntohs(a.sin_port);
}

std::vector<nlohmann::json> JsonLines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

TEST_CASE("BrokenWorkerIsQuarantinedAndEveryTaskIsDoneByAGoodOne",
          "[e2e][health]") {
  TempDir dir;
  BrokerProcess broker(dir, {"--retry-backoff", "0.2"});
  const std::string bad =
      Script(dir, "always-fails.sh", "echo 'thug: cannot start' >&2\nexit 1\n");
  auto g1 = StartWorker(dir, broker.endpoint(),
                        {"good1", "none", 2, {"--exec", "echo {url}"}});
  auto g2 = StartWorker(dir, broker.endpoint(),
                        {"good2", "none", 2, {"--exec", "echo {url}"}});
  auto b = StartWorker(dir, broker.endpoint(),
                       {"bad", "none", 2, {"--exec", bad + " {url}"}});
  auto client = Connect(broker.endpoint());
  REQUIRE(WaitUntil([&] { return AllJoined(*client, 3); }, 20s));

  const std::string batch = Submit(*client, Urls(200, "page"));
  // Quarantined within a few seconds of its first failures.
  CHECK(WaitUntil(
      [&] { return WorkersById(*client)["bad"].state == "quarantined"; }, 15s));
  auto results = CollectByUrl(*client, batch, 120s);
  REQUIRE(results.size() == 200);
  size_t done = 0;
  for (const auto& [url, r] : results) {
    INFO(url << " " << r.state << " by " << r.worker);
    if (r.state == "done") ++done;
    CHECK(r.worker != "bad");
    CHECK(r.outcome == "ok");
    REQUIRE_FALSE(r.history.empty());
    CHECK(r.history.back().worker == r.worker);
  }
  CHECK(done == 200);
  auto progress = client->Progress(batch);
  REQUIRE(progress.ok());
  CHECK(progress->dead == 0);

  auto workers = WorkersById(*client);
  CHECK(workers["bad"].state == "quarantined");
  CHECK(workers["bad"].state_reason.find("failed attempts in a row") !=
        std::string::npos);
  CHECK(workers["bad"].tasks_done == 0);
  CHECK(workers["bad"].failed >= 5);
  CHECK(workers["good1"].state == "active");
  CHECK(workers["good1"].tasks_done + workers["good2"].tasks_done == 200);
  const std::string log = broker.Log();
  CHECK(log.find("worker bad (host") != std::string::npos);
  CHECK(log.find("quarantined: ") != std::string::npos);

  // tq-ctl shows it with its reason.
  ToolRun ctl = RunTool(
      dir, {Binary("tq-ctl"), "--broker", broker.endpoint(), "workers"});
  INFO(ctl.out);
  CHECK(ctl.code == 0);
  CHECK(ctl.out.find("quarantined") != std::string::npos);
  CHECK(ctl.out.find("bad quarantined: ") != std::string::npos);
  ToolRun json = RunTool(dir, {Binary("tq-ctl"), "--broker", broker.endpoint(),
                               "--json", "workers"});
  REQUIRE(json.code == 0);
  bool seen = false;
  const nlohmann::json doc = nlohmann::json::parse(json.out);
  for (const auto& w : doc["workers"]) {
    if (w["worker_id"] != "bad") continue;
    seen = true;
    CHECK(w["state"] == "quarantined");
    CHECK(w["last_failure"] == "exited with status 1");
  }
  CHECK(seen);
}

TEST_CASE("WorkerWhoseProgramIsMissingRefusesToStart", "[e2e][health]") {
  TempDir dir;
  ToolRun r =
      RunTool(dir, {Binary("tq-worker"), "--broker", "tcp://127.0.0.1:1",
                    "--exec", "no-such-thug-program {url}"});
  CHECK(r.code == 2);
  CHECK(r.err.find("no-such-thug-program") != std::string::npos);
  CHECK(r.err.find("PATH") != std::string::npos);

  // A path that is not executable is refused the same way.
  const std::string plain = dir.File("not-executable.sh");
  WriteFile(plain, "#!/bin/sh\necho hi\n");
  ToolRun p = RunTool(dir, {Binary("tq-worker"), "--broker",
                            "tcp://127.0.0.1:1", "--exec", plain + " {url}"});
  CHECK(p.code == 2);
  CHECK(p.err.find(plain) != std::string::npos);

  // --check says so too, and passes a handler that works.
  ToolRun bad = RunTool(dir, {Binary("tq-worker"), "--check", "--exec",
                              "no-such-thug-program {url}"});
  CHECK(bad.code == 2);
  CHECK(bad.out.find("verdict: FAIL") != std::string::npos);
  ToolRun good = RunTool(dir, {Binary("tq-worker"), "--check", "--check-url",
                               "http://127.0.0.1/x", "--exec", "echo {url}"});
  INFO(good.out << good.err);
  CHECK(good.code == 0);
  CHECK(good.out.find("verdict: PASS") != std::string::npos);
}

TEST_CASE("TasksThatFailOnEveryWorkerGoDeadAndQuarantineNoOne",
          "[e2e][health]") {
  TempDir dir;
  BrokerProcess broker(dir,
                       {"--retry-backoff", "0.1", "--quarantine-after", "2"});
  const std::string handler =
      Script(dir, "fails-bad.sh",
             "case \"$1\" in *bad*) exit 1;; esac\necho \"$1\"\n");
  std::vector<std::unique_ptr<Process>> workers;
  for (const char* id : {"w1", "w2", "w3"}) {
    workers.push_back(
        StartWorker(dir, broker.endpoint(),
                    {id, "none", 2, {"--exec", handler + " {url}"}}));
  }
  auto client = Connect(broker.endpoint());
  REQUIRE(WaitUntil([&] { return AllJoined(*client, 3); }, 20s));
  std::vector<std::string> urls = Urls(20, "bad");
  for (const std::string& u : Urls(40, "good")) urls.push_back(u);
  const std::string batch = Submit(*client, urls);
  auto results = CollectByUrl(*client, batch, 120s);
  REQUIRE(results.size() == 60);
  size_t dead = 0;
  for (const auto& [url, r] : results) {
    INFO(url);
    if (url.find("/bad") != std::string::npos) {
      CHECK(r.state == "dead");
      CHECK(r.attempts == 3);
      // Each attempt on a different worker.
      REQUIRE(r.history.size() == 3);
      CHECK(r.history[0].worker != r.history[1].worker);
      CHECK(r.history[1].worker != r.history[2].worker);
      CHECK(r.history[0].worker != r.history[2].worker);
      ++dead;
    } else {
      CHECK(r.state == "done");
    }
  }
  CHECK(dead == 20);
  for (const auto& [id, w] : WorkersById(*client)) {
    INFO(id);
    CHECK(w.state == "active");
  }
  CHECK(broker.Log().find("quarantined:") == std::string::npos);
}

TEST_CASE("AnalyserOutcomesReachResultLinesCountsAndTheSummary",
          "[e2e][health][analyser]") {
  TempDir dir;
  FixtureServer web(dir);
  BrokerProcess broker(dir);
  auto worker = StartWorker(dir, broker.endpoint(),
                            {"analyser", "none", 3, {"--analyse"}});
  const std::string good = web.Url("/plain.html");
  const std::string missing = web.Url("/no-such-page.html");
  const std::string closed =
      "http://127.0.0.1:" + std::to_string(ClosedPort()) + "/";
  const std::string file = dir.File("urls.txt");
  WriteFile(file, good + "\n" + missing + "\n" + closed + "\n");

  ToolRun r = RunTool(dir, {Binary("tq-submit"), "--broker", broker.endpoint(),
                            "--batch-id", "outcomes-1", "--wait", file});
  INFO(r.out << r.err);
  CHECK(r.code == 0);  // every task done: the default exit status is 0
  std::map<std::string, nlohmann::json> by_url;
  for (const auto& j : JsonLines(r.out)) by_url[j["url"]] = j;
  REQUIRE(by_url.size() == 3);
  CHECK(by_url[good]["status"] == "done");
  CHECK(by_url[good]["outcome"] == "ok");
  CHECK(by_url[missing]["status"] == "done");
  CHECK(by_url[missing]["outcome"] == "http_error");
  CHECK(by_url[missing]["outcome_reason"].get<std::string>().find("404") !=
        std::string::npos);
  CHECK(by_url[closed]["status"] == "done");
  CHECK(by_url[closed]["outcome"] == "unreachable");
  CHECK(by_url[closed]["outcome_reason"].get<std::string>().find("connect") !=
        std::string::npos);
  CHECK(r.err.find("3 done: 1 ok, 1 unreachable, 1 http_error; 0 dead") !=
        std::string::npos);

  ToolRun batch = RunTool(dir, {Binary("tq-ctl"), "--broker", broker.endpoint(),
                                "--json", "batch", "outcomes-1"});
  REQUIRE(batch.code == 0);
  auto counts = nlohmann::json::parse(batch.out);
  CHECK(counts["done"] == 3);
  CHECK(counts["outcomes"]["ok"] == 1);
  CHECK(counts["outcomes"]["unreachable"] == 1);
  CHECK(counts["outcomes"]["http_error"] == 1);
  ToolRun queues = RunTool(dir, {Binary("tq-ctl"), "--broker",
                                 broker.endpoint(), "--json", "queues"});
  REQUIRE(queues.code == 0);
  const nlohmann::json queue_doc = nlohmann::json::parse(queues.out);
  for (const auto& q : queue_doc["queues"]) {
    if (q["name"] == "generic") CHECK(q["outcomes"]["unreachable"] == 1);
  }

  // --fail-on unreachable: the same batch again, and a non-zero exit.
  ToolRun fail =
      RunTool(dir, {Binary("tq-submit"), "--broker", broker.endpoint(),
                    "--wait", "--fail-on", "unreachable", file});
  INFO(fail.err);
  CHECK(fail.code == 1);
  ToolRun only_timeout =
      RunTool(dir, {Binary("tq-submit"), "--broker", broker.endpoint(),
                    "--wait", "--fail-on", "timeout", file});
  CHECK(only_timeout.code == 0);
}

TEST_CASE("PerWorkerCountsSurviveABrokerKill", "[e2e][health]") {
  TempDir dir;
  BrokerProcess broker(dir);
  const std::string handler =
      Script(dir, "fails-bad.sh",
             "case \"$1\" in *bad*) exit 1;; esac\necho \"$1\"\n");
  auto w = StartWorker(dir, broker.endpoint(),
                       {"steady", "none", 2, {"--exec", handler + " {url}"}});
  auto client = Connect(broker.endpoint());
  REQUIRE(WaitUntil([&] { return AllJoined(*client, 1); }, 20s));
  std::vector<std::string> urls = Urls(5, "good");
  for (const std::string& u : Urls(2, "bad")) urls.push_back(u);
  const std::string batch = Submit(*client, urls, /*max_attempts=*/1);
  REQUIRE(CollectByUrl(*client, batch, 60s).size() == 7);
  WorkerSummary before = WorkersById(*client)["steady"];
  CHECK(before.succeeded == 5);
  CHECK(before.tasks_done == 5);
  CHECK(before.failed == 2);

  broker.KillAndRestart();
  auto again = Connect(broker.endpoint());
  REQUIRE(WaitUntil([&] { return AllJoined(*again, 1); }, 30s));
  WorkerSummary after = WorkersById(*again)["steady"];
  CHECK(after.succeeded == 5);
  CHECK(after.failed == 2);
  CHECK(after.first_seen_ms == before.first_seen_ms);
  CHECK(after.session_start_ms >= before.session_start_ms);
}

TEST_CASE("QuarantinedWorkerIsReleasedWhenItsProbeSucceeds", "[e2e][health]") {
  TempDir dir;
  BrokerProcess broker(dir, {"--retry-backoff", "0.1", "--quarantine-after",
                             "3", "--probe-backoff", "1"});
  const std::string broken = dir.File("broken");
  WriteFile(broken, "");
  const std::string flaky =
      Script(dir, "flaky.sh",
             "if [ -e '" + broken + "' ]; then exit 1; fi\necho \"$1\"\n");
  // The good worker is slowed down so work is left when the probe is due.
  auto good =
      StartWorker(dir, broker.endpoint(),
                  {"good",
                   "none",
                   1,
                   {"--exec", "sh -c 'sleep 0.05; echo \"$1\"' sh {url}"}});
  auto sick = StartWorker(dir, broker.endpoint(),
                          {"sick", "none", 1, {"--exec", flaky + " {url}"}});
  auto client = Connect(broker.endpoint());
  REQUIRE(WaitUntil([&] { return AllJoined(*client, 2); }, 20s));
  const std::string first = Submit(*client, Urls(30, "first"));
  REQUIRE(WaitUntil(
      [&] { return WorkersById(*client)["sick"].state == "quarantined"; },
      30s));
  // Mended: its next probe succeeds and it takes work again.
  std::filesystem::remove(broken);
  const std::string second = Submit(*client, Urls(200, "second"));
  REQUIRE(CollectByUrl(*client, first, 60s).size() == 30);
  CHECK(WaitUntil(
      [&] { return WorkersById(*client)["sick"].state == "active"; }, 30s));
  auto results = CollectByUrl(*client, second, 120s);
  size_t by_sick = 0;
  for (const auto& [url, r] : results) by_sick += r.worker == "sick";
  CHECK(by_sick > 0);
  const std::string log = broker.Log();
  CHECK(log.find("probe task") != std::string::npos);
  CHECK(log.find("quarantine over") != std::string::npos);
}

}  // namespace
}  // namespace tq
