// The command-line tools as a user runs them.
#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "tests/support/cluster.h"
#include "tests/support/tool_run.h"
#include "tests/support/wait.h"

namespace tq {
namespace {

using namespace std::chrono_literals;
using testing::Binary;
using testing::BrokerProcess;
using testing::Process;
using testing::ReadFile;
using testing::RunTool;
using testing::StartWorker;
using testing::TempDir;
using testing::ToolRun;
using testing::WriteFile;

std::vector<nlohmann::json> JsonLines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

TEST_CASE("UrlFileWithBadLinesNamesThemAndRunsTheGoodOnes", "[e2e][cli]") {
  TempDir dir;
  BrokerProcess broker(dir);
  auto worker = StartWorker(dir, broker.endpoint(),
                            {"w", "none", 2, {"--exec", "echo {url}"}});
  const std::string file = dir.File("urls.txt");
  WriteFile(file,
            "# comment\n"
            "http://127.0.0.1/one\n"
            "ftp://127.0.0.1/two\n"
            "\n"
            "example.com/three\n"
            "http://127.0.0.1/four\r\n"
            "http://exa mple.com/five\n"
            "https://127.0.0.1/six\n");
  ToolRun r =
      RunTool(dir, {Binary("tq-submit"), file, "--wait", "--timeout", "30"},
              {"TQ_BROKER=" + broker.endpoint()});
  INFO(r.err);
  CHECK(r.code == 3);  // bad lines skipped, the rest done
  CHECK(r.err.find(file + ":3: scheme 'ftp' is not http or https") !=
        std::string::npos);
  CHECK(r.err.find(file + ":5: not an absolute URL") != std::string::npos);
  CHECK(r.err.find(file + ":7: space at column 11") != std::string::npos);
  auto lines = JsonLines(r.out);
  REQUIRE(lines.size() == 3);
  std::set<std::string> urls;
  for (const auto& j : lines) {
    CHECK(j["status"] == "done");
    CHECK(j["worker"] == "w");
    urls.insert(j["url"].get<std::string>());
    // The handler echoed the URL: the result is its output.
    CHECK(j["result"].get<std::string>() == j["url"].get<std::string>() + "\n");
  }
  CHECK(urls == std::set<std::string>{"http://127.0.0.1/one",
                                      "http://127.0.0.1/four",
                                      "https://127.0.0.1/six"});
}

TEST_CASE("StrictModeSendsNothingWhenAnyLineIsBad", "[e2e][cli]") {
  TempDir dir;
  BrokerProcess broker(dir);
  const std::string file = dir.File("urls.txt");
  WriteFile(file, "http://127.0.0.1/ok\nnot a url\n");
  ToolRun r = RunTool(dir, {Binary("tq-submit"), "--broker", broker.endpoint(),
                            "--strict", file});
  CHECK(r.code == 2);
  CHECK(r.err.find(file + ":2:") != std::string::npos);
  ToolRun q = RunTool(dir, {Binary("tq-ctl"), "--broker", broker.endpoint(),
                            "--json", "queues"});
  REQUIRE(q.code == 0);
  auto j = nlohmann::json::parse(q.out);
  INFO(q.out);
  uint64_t total = 0;
  for (const auto& queue : j["queues"])
    total += queue["queued"].get<uint64_t>();
  CHECK(total == 0);
}

TEST_CASE("ResubmitWithSameBatchIdEnqueuesNoDuplicates", "[e2e][cli]") {
  TempDir dir;
  BrokerProcess broker(dir);
  const std::string file = dir.File("urls.txt");
  WriteFile(file, "http://127.0.0.1/a\nhttp://127.0.0.1/b\n");
  std::vector<std::string> argv = {
      Binary("tq-submit"), "--broker",  broker.endpoint(), "--batch-id",
      "fixed-1",           "--country", "IT,IN",           file};
  ToolRun first = RunTool(dir, argv);
  REQUIRE(first.code == 0);
  CHECK(first.out == "fixed-1\n");
  ToolRun second = RunTool(dir, argv);
  REQUIRE(second.code == 0);
  CHECK(second.err.find("(4 duplicates)") != std::string::npos);
  ToolRun batch = RunTool(dir, {Binary("tq-ctl"), "--broker", broker.endpoint(),
                                "--json", "batch", "fixed-1"});
  REQUIRE(batch.code == 0);
  INFO(batch.out);
  auto j = nlohmann::json::parse(batch.out);
  CHECK(j["total"] == 4);  // 2 URLs x 2 countries, once
  CHECK(j["queued"] == 4);
}

TEST_CASE("ProgressBarIsDrawnOnlyWhenStderrIsATerminal", "[e2e][cli]") {
  TempDir dir;
  BrokerProcess broker(dir);
  auto worker = StartWorker(dir, broker.endpoint(), {"w", "none", 2});
  const std::string file = dir.File("urls.txt");
  WriteFile(file,
            "http://127.0.0.1/a\nhttp://127.0.0.1/b\nhttp://127.0.0.1/c\n");
  const std::string submit = Binary("tq-submit") + " --broker " +
                             broker.endpoint() + " --wait " + file;
  // Not a terminal: JSON lines only, no progress bar.
  ToolRun plain = RunTool(dir, {"/bin/sh", "-c", submit});
  CHECK(plain.code == 0);
  CHECK(plain.err.find("tasks/s") == std::string::npos);
  // Under a pseudo-terminal (script(1)) the bar is drawn in place.
  ToolRun tty = RunTool(dir, {"/usr/bin/script", "-qfec", submit, "/dev/null"});
  INFO(tty.out);
  CHECK(tty.code == 0);
  CHECK(tty.out.find("tasks/s") != std::string::npos);
  CHECK(tty.out.find("3 done") != std::string::npos);
  CHECK(tty.out.find('\r') != std::string::npos);
}

TEST_CASE("EveryCommandHasHelp", "[e2e][cli]") {
  TempDir dir;
  for (const char* tool : {"tq-broker", "tq-worker", "tq-submit", "tq-ctl"}) {
    ToolRun r = RunTool(dir, {Binary(tool), "--help"});
    INFO(tool);
    CHECK(r.code == 0);
    CHECK(r.out.find("--") != std::string::npos);
  }
}

TEST_CASE("UnreachableBrokerGivesExitCodeFour", "[e2e][cli]") {
  TempDir dir;
  const std::string file = dir.File("urls.txt");
  WriteFile(file, "http://127.0.0.1/a\n");
  // Port 1 on loopback: nothing listens there.
  ToolRun r =
      RunTool(dir, {Binary("tq-submit"), "--broker", "tcp://127.0.0.1:1",
                    "--request-timeout", "1", file});
  CHECK(r.code == 4);
  CHECK_FALSE(r.err.empty());
}

}  // namespace
}  // namespace tq
