// End to end: workers running the built-in analyser against the fixture web
// server, and --exec with a fake Thug that writes into {outdir}.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "tests/e2e/e2e_client.h"
#include "tests/support/cluster.h"
#include "tests/support/fixture_server.h"
#include "tests/support/wait.h"
#include "tq/client.h"

namespace tq {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::Binary;
using testing::BrokerProcess;
using testing::FixtureServer;
using testing::Process;
using testing::ReadFile;
using testing::StartWorker;
using testing::TempDir;
using testing::WaitUntil;
using testing::WorkerSpec;
using testing::WriteFile;

using testing::Connect;

using testing::CollectByUrl;

bool HasBehavior(const json& log, const std::string& prefix) {
  for (const auto& b : log["behavior"]) {
    if (b["description"].get<std::string>().rfind(prefix, 0) == 0) return true;
  }
  return false;
}

// Gone or a zombie waiting for its reaper: either way no longer running.
bool ProcessGone(pid_t pid) {
  if (kill(pid, 0) != 0) return true;
  const std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() &&
         stat[paren + 2] == 'Z';
}

TEST_CASE("SubmitWaitWithTwoAnalyserWorkersGivesEveryUrlItsJsonLog",
          "[e2e][analyser]") {
  TempDir dir;
  FixtureServer web(dir);
  BrokerProcess broker(dir);
  std::vector<std::unique_ptr<Process>> workers;
  for (const char* id : {"a1", "a2"}) {
    workers.push_back(
        StartWorker(dir, broker.endpoint(), {id, "none", 2, {"--analyse"}}));
  }
  // Both attached before the submit, so both take part.
  auto client = Connect(broker.endpoint());
  REQUIRE(WaitUntil(
      [&] {
        auto w = client->Workers();
        return w.ok() && w->size() == 2;
      },
      20s));
  const std::vector<std::string> urls = {
      web.Url("/plain.html"),         web.Url("/redirect/start"),
      web.Url("/hidden_iframe.html"), web.Url("/obfuscated.html"),
      web.Url("/payload.exe"),        web.Url("/big"),
      "http://127.0.0.1:1/refused"};
  std::string file_text;
  for (const auto& u : urls) file_text += u + "\n";
  WriteFile(dir.File("urls.txt"), file_text);
  Process submit(
      {Binary("tq-submit"), "--broker", broker.endpoint(), dir.File("urls.txt"),
       "--wait", "--timeout", "60", "-o", "user_agent=linuxchrome", "-o",
       "max_body_bytes=100000", "--out", dir.File("out")},
      dir.File("submit.out"), dir.File("submit.err"));
  auto code = submit.Wait(90s);
  INFO(ReadFile(dir.File("submit.err")));
  REQUIRE(code.has_value());
  CHECK(*code == 0);

  std::map<std::string, json> logs;
  std::set<std::string> seen_workers;
  std::istringstream lines(ReadFile(dir.File("submit.out")));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    const json r = json::parse(line);
    INFO(line);
    CHECK(r["status"] == "done");
    CHECK(r["ok"] == true);
    CHECK(r["exit_code"] == 0);
    seen_workers.insert(r["worker"].get<std::string>());
    // The analyser's JSON log is embedded as an object.
    REQUIRE(r["result"].is_object());
    const json log = r["result"];
    CHECK(log["url"] == r["url"]);
    CHECK(log["logtype"] == "json-log");
    CHECK(log["analyser"]["personality"]["name"] == "linuxchrome");
    CHECK(log["analyser"]["options"]["max_body_bytes"] == 100000);
    logs[r["url"].get<std::string>()] = log;
    // --out: every task's result directory, holding its JSON log.
    const std::string written = dir.File(
        "out/" + std::to_string(r["task_id"].get<uint64_t>()) + "/result.json");
    CHECK(json::parse(ReadFile(written))["url"] == r["url"]);
  }
  REQUIRE(logs.size() == urls.size());
  CHECK(seen_workers == std::set<std::string>{"a1", "a2"});

  const json& plain = logs[web.Url("/plain.html")];
  CHECK_FALSE(plain.contains("error"));
  CHECK(plain["locations"][0]["sha256"].get<std::string>().size() == 64);
  CHECK(logs[web.Url("/redirect/start")]["final_url"] ==
        web.Url("/redirect/final", 3));
  CHECK(HasBehavior(logs[web.Url("/redirect/start")],
                    "cross-domain redirect chain"));
  CHECK(HasBehavior(logs[web.Url("/hidden_iframe.html")],
                    "hidden iframe (zero size)"));
  CHECK(HasBehavior(logs[web.Url("/obfuscated.html")],
                    "eval over a long argument"));
  CHECK(logs[web.Url("/payload.exe")]["files"].size() == 1);
  CHECK(logs[web.Url("/big")]["locations"][0]["flags"]["truncated"] == true);
  CHECK(logs["http://127.0.0.1:1/refused"]["error"].get<std::string>().rfind(
            "connect: ", 0) == 0);
}

TEST_CASE("NetworkErrorIsAFailedAttemptOnlyWhenTheSubmitterAsks",
          "[e2e][analyser]") {
  TempDir dir;
  BrokerProcess broker(dir);
  auto worker =
      StartWorker(dir, broker.endpoint(), {"a", "none", 1, {"--analyse"}});
  auto client = Connect(broker.endpoint());
  SubmitOptions counted;
  counted.max_attempts = 1;
  counted.task_options = {{"retry_on_network_error", "1"}};
  auto strict = client->Submit({"http://127.0.0.1:1/strict"}, counted);
  REQUIRE(strict.ok());
  SubmitOptions lenient;
  lenient.max_attempts = 1;
  auto plain = client->Submit({"http://127.0.0.1:1/lenient"}, lenient);
  REQUIRE(plain.ok());

  auto strict_results = CollectByUrl(*client, strict->batch_id);
  const TaskResult& s = strict_results["http://127.0.0.1:1/strict"];
  CHECK(s.state == "dead");
  CHECK_FALSE(s.ok);
  CHECK(s.error.rfind("network error: connect: ", 0) == 0);
  CHECK(json::parse(s.output)["error"].get<std::string>().rfind("connect: ",
                                                                0) == 0);

  auto lenient_results = CollectByUrl(*client, plain->batch_id);
  const TaskResult& l = lenient_results["http://127.0.0.1:1/lenient"];
  CHECK(l.state == "done");
  CHECK(l.ok);
  CHECK(json::parse(l.output)["error"].get<std::string>().rfind("connect: ",
                                                                0) == 0);
}

TEST_CASE("SmallMaxOutputStillGivesValidJson", "[e2e][analyser]") {
  TempDir dir;
  FixtureServer web(dir);
  BrokerProcess broker(dir);
  auto worker = StartWorker(dir, broker.endpoint(),
                            {"a", "none", 1, {"--max-output", "3000"}});
  auto client = Connect(broker.endpoint());
  auto receipt = client->Submit({web.Url("/obfuscated.html")}, {});
  REQUIRE(receipt.ok());
  auto results = CollectByUrl(*client, receipt->batch_id);
  const TaskResult& r = results[web.Url("/obfuscated.html")];
  CHECK(r.state == "done");
  CHECK_FALSE(r.output_truncated);
  CHECK(r.output.size() <= 3000);
  const json log = json::parse(r.output);
  CHECK(log["url"] == web.Url("/obfuscated.html"));
  CHECK(log["code"].empty());
}

TEST_CASE("ExecGathersWhatFakeThugWroteAndKillsHangsWithTheirGroup",
          "[e2e][analyser]") {
  TempDir dir;
  BrokerProcess broker(dir);
  const std::string work = dir.File("work");
  std::filesystem::create_directories(dir.File("pids"));
  const std::string fake =
      std::string(TQ_SOURCE_DIR) + "/tests/worker/fake_thug.sh";
  Process worker({Binary("tq-worker"), "--broker", broker.endpoint(), "--id",
                  "thug", "--concurrency", "3", "--work-dir", work, "--exec",
                  fake + " -n {outdir} -u {useragent} {url}"},
                 "", dir.File("worker.log"),
                 {"FAKE_THUG_PIDS=" + dir.File("pids")});
  auto client = Connect(broker.endpoint());
  SubmitOptions options;
  options.max_attempts = 1;
  options.time_limit_ms = 2000;
  options.task_options = {{"user_agent", "win7ie90"}};
  auto receipt = client->Submit({"http://127.0.0.1/ok", "http://127.0.0.1/hang",
                                 "http://127.0.0.1/crash"},
                                options);
  REQUIRE(receipt.ok());
  auto results = CollectByUrl(*client, receipt->batch_id);
  INFO(ReadFile(dir.File("worker.log")));
  REQUIRE(results.size() == 3);

  const TaskResult& ok = results["http://127.0.0.1/ok"];
  CHECK(ok.state == "done");
  CHECK(ok.ok);
  const json report = json::parse(ok.output);
  CHECK(report["exit_code"] == 0);
  CHECK(report["stdout"].get<std::string>().find("[fake thug] done") !=
        std::string::npos);
  CHECK(report["stderr_tail"] == "[fake thug] personality win7ie90\n");
  CHECK(report["analysis"]["url"] == "http://127.0.0.1/ok");
  CHECK(report["analysis"]["thug"]["personality"]["useragent"] == "win7ie90");
  CHECK(report["analysis_file"] ==
        "0123abcd/20261124000000/analysis/json/analysis.json");
  REQUIRE(report["files"].size() == 2);
  const json& sample = report["files"][1];
  CHECK(sample["name"] ==
        "0123abcd/20261124000000/application/x-dosexec/sample.exe");
  CHECK(sample["size"] == 15);
  CHECK(sample["mimetype"] == "application/x-dosexec");
  // The content travels as a file of the result, not in the JSON.
  CHECK(sample["attached"] == true);
  CHECK_FALSE(sample.contains("content"));
  CHECK(sample["sha256"].get<std::string>().size() == 64);
  REQUIRE(ok.files.size() == 2);
  CHECK(ok.files[1].name == sample["name"]);
  CHECK(ok.files[1].sha256 == sample["sha256"]);
  CHECK(ok.files[1].size == 15);
  CHECK(ok.files[1].content.empty());  // fetched without content

  const TaskResult& hang = results["http://127.0.0.1/hang"];
  CHECK(hang.state == "dead");
  CHECK(hang.error.find("time limit of 2.0 s exceeded") != std::string::npos);
  const json hang_report = json::parse(hang.output);
  CHECK(hang_report["stdout"] ==
        "[fake thug] analysing http://127.0.0.1/hang\n");
  const std::string child = ReadFile(dir.File("pids/child"));
  REQUIRE_FALSE(child.empty());
  // The tool's own child was in its process group: killed with it.
  CHECK(WaitUntil([&] { return ProcessGone(std::stoi(child)); }, 5s));

  const TaskResult& crash = results["http://127.0.0.1/crash"];
  CHECK(crash.state == "dead");
  CHECK(crash.error.find("killed by signal 11") != std::string::npos);
  const json crash_report = json::parse(crash.output);
  CHECK_FALSE(crash_report.contains("analysis"));  // the partial log is kept
  REQUIRE(crash_report["files"].size() == 1);
  CHECK(crash_report["files"][0]["attached"] == true);

  // Every {outdir} is removed once its result is gathered.
  CHECK(WaitUntil([&] { return std::filesystem::is_empty(work); }, 5s));
}

}  // namespace
}  // namespace tq
