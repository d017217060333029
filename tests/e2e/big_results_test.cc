// A batch whose results together weigh more than one message: tq-ctl and a
// resumed tq-submit --wait page through it (issue 15, item 3).
#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "tests/e2e/e2e_client.h"
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
using testing::WaitUntil;
using testing::WriteFile;

constexpr int kTasks = 20;
constexpr size_t kOutputBytes = 1'100'000;  // 20 of them: 22 MB, over 16 MiB

// Checks that `text` holds one line per task, each with its whole output.
void CheckAllResults(const std::string& text,
                     const std::set<std::string>& urls) {
  std::istringstream in(text);
  std::string line;
  std::set<std::string> seen;
  int lines = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    ++lines;
    auto j = nlohmann::json::parse(line);
    const std::string url = j["url"].get<std::string>();
    seen.insert(url);
    CHECK(j["status"] == "done");
    const std::string output = j["result"].get<std::string>();
    CHECK(output.size() == kOutputBytes);
    CHECK(output.compare(0, url.size() + 1, url + "\n") == 0);
    CHECK_FALSE(j.contains("output_truncated"));
  }
  CHECK(lines == kTasks);
  CHECK(seen == urls);
}

TEST_CASE("ResultsOverTheMessageCapArePagedToCtlAndSubmitWait",
          "[e2e][paging]") {
  TempDir dir;
  BrokerProcess broker(dir);
  // Each task prints its URL over and over: 1.1 MB, under this --max-output.
  auto worker = StartWorker(dir, broker.endpoint(),
                            {"w",
                             "none",
                             4,
                             {"--max-output", "1200000", "--exec",
                              "sh -c 'yes \"$0\" | head -c " +
                                  std::to_string(kOutputBytes) + "' {url}"}});
  std::string file_text;
  std::set<std::string> urls;
  for (int i = 0; i < kTasks; ++i) {
    const std::string url = "http://127.0.0.1/big/" + std::to_string(i);
    urls.insert(url);
    file_text += url + "\n";
  }
  const std::string file = dir.File("urls.txt");
  WriteFile(file, file_text);
  const std::string endpoint = broker.endpoint();

  ToolRun submit = RunTool(dir, {Binary("tq-submit"), file, "--broker",
                                 endpoint, "--batch-id", "big"});
  INFO(submit.err);
  REQUIRE(submit.code == 0);
  auto client = testing::Connect(endpoint);
  REQUIRE(WaitUntil(
      [&] {
        auto p = client->Progress("big");
        return p.ok() && p->done == kTasks;
      },
      120s, 50ms));

  // Everything is finished: one reply would carry all 22 MB.
  ToolRun ctl =
      RunTool(dir, {Binary("tq-ctl"), "--broker", endpoint, "results", "big"});
  INFO(ctl.err);
  CHECK(ctl.code == 0);
  CheckAllResults(ctl.out, urls);

  // Submitting the same file to the same batch again resumes the wait.
  ToolRun wait =
      RunTool(dir, {Binary("tq-submit"), file, "--broker", endpoint,
                    "--batch-id", "big", "--wait", "--timeout", "60"});
  INFO(wait.err);
  CHECK(wait.code == 0);
  CheckAllResults(wait.out, urls);
}

}  // namespace
}  // namespace tq
