// End to end (#19, the control side): `tq-ctl events` seen live while a
// worker is killed mid-task, `tq-ctl cancel TASK --terminate` killing the
// handler (checked by PID), pause/resume of a queue across a broker
// restart, and a worker serving its country's queue only. Real binaries on
// loopback; every wait bounded.
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/e2e_client.h"
#include "tests/support/cluster.h"
#include "tests/support/tool_run.h"
#include "tests/support/wait.h"
#include "tq/client.h"

namespace tq {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::Binary;
using testing::BrokerProcess;
using testing::CollectByUrl;
using testing::Connect;
using testing::Process;
using testing::ReadFile;
using testing::RunTool;
using testing::StartWorker;
using testing::TempDir;
using testing::ToolRun;
using testing::WaitUntil;
using testing::WorkerSpec;
using testing::WriteFile;

ToolRun Ctl(const TempDir& dir, const std::string& endpoint,
            std::vector<std::string> args) {
  std::vector<std::string> argv = {Binary("tq-ctl"), "--broker", endpoint};
  for (auto& a : args) argv.push_back(std::move(a));
  return RunTool(dir, std::move(argv));
}

// The JSON lines of a file written so far (a partial last line left out).
std::vector<json> Lines(const std::string& path) {
  std::vector<json> lines;
  std::istringstream in(ReadFile(path));
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no newline yet: still being written
    lines.push_back(json::parse(line));
  }
  return lines;
}

bool HasEvent(const std::vector<json>& lines, const std::string& event,
              const std::string& worker = "") {
  for (const json& j : lines) {
    if (j["event"] == event &&
        (worker.empty() || j.value("worker", "") == worker)) {
      return true;
    }
  }
  return false;
}

// An executable script: a URL containing "slow" writes the shell's PID to
// DIR/slow.pid and sleeps (exec: the PID is the sleeper's); others finish.
std::string SlowScript(const TempDir& dir) {
  const std::string path = dir.File("handler.sh");
  WriteFile(path, "#!/bin/sh\ncase \"$1\" in *slow*) echo $$ > '" +
                      dir.File("slow.pid") +
                      "'; exec sleep 60;; esac\necho '{\"ok\":true}'\n");
  chmod(path.c_str(), 0755);
  return path;
}

pid_t ReadPid(const std::string& path) {
  pid_t pid = -1;
  WaitUntil(
      [&] {
        std::ifstream in(path);
        long p = 0;
        if (in >> p && p > 0) pid = pid_t(p);
        return pid > 0;
      },
      10s);
  return pid;
}

// Gone, or a zombie nobody has reaped yet.
bool ProcessGone(pid_t pid) {
  if (kill(pid, 0) != 0) return true;
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() &&
         stat[paren + 2] == 'Z';
}

TEST_CASE("EventsShowAWorkerLostAndItsTaskLeasedAgainAndFinished",
          "[e2e][events]") {
  TempDir dir;
  BrokerProcess broker(dir);
  const std::string events = dir.File("events.jsonl");
  Process follow({Binary("tq-ctl"), "--broker", broker.endpoint(), "events",
                  "--batch", "ev-1"},
                 events, dir.File("events.err"));
  REQUIRE(WaitUntil(
      [&] {
        return broker.Log().find("events: new subscriber") != std::string::npos;
      },
      10s));

  auto doomed = StartWorker(
      dir, broker.endpoint(),
      WorkerSpec{"doomed", "none", 1, {"--exec", SlowScript(dir) + " {url}"}});
  auto client = Connect(broker.endpoint());
  SubmitOptions options;
  options.batch_id = "ev-1";
  auto receipt = client->Submit({"http://127.0.0.1:9/slow"}, options);
  REQUIRE(receipt.ok());
  REQUIRE(WaitUntil([&] { return HasEvent(Lines(events), "leased", "doomed"); },
                    20s));
  const pid_t handler = ReadPid(dir.File("slow.pid"));
  REQUIRE(handler > 0);
  doomed->Kill();  // SIGKILL to its group: mid-task

  REQUIRE(WaitUntil(
      [&] { return HasEvent(Lines(events), "worker_lost", "doomed"); }, 20s));
  auto rescuer = StartWorker(dir, broker.endpoint(),
                             WorkerSpec{"rescuer", "none", 1, {"--noop"}});
  REQUIRE(WaitUntil(
      [&] { return HasEvent(Lines(events), "finished", "rescuer"); }, 30s));

  std::vector<json> lines = Lines(events);
  std::vector<std::string> seen;
  for (const json& j : lines) {
    // Every line: time in ISO-8601 UTC with milliseconds, and the batch.
    const std::string time = j["time"];
    CHECK(time.size() == 24);
    CHECK(time.back() == 'Z');
    if (j["event"] != "worker_lost") CHECK(j["batch_id"] == "ev-1");
    seen.push_back(
        j["event"].get<std::string>() +
        (j.contains("worker") ? "/" + j["worker"].get<std::string>() : ""));
  }
  // The doomed worker had finished nothing: losing it costs no attempt, so
  // its task is requeued (not failed) and leased again as attempt 1.
  // worker_joined (no batch) is filtered out by --batch.
  CHECK(seen == std::vector<std::string>{"submitted", "leased/doomed",
                                         "worker_lost/doomed", "requeued",
                                         "leased/rescuer", "finished/rescuer"});
  REQUIRE(lines.size() == 6);
  CHECK(lines[0]["count"] == 1);
  CHECK(lines[0]["url"] == "http://127.0.0.1:9/slow");
  CHECK(lines[1]["task_id"] == 1);
  CHECK(lines[1]["attempt"] == 1);
  CHECK(lines[1]["url"] == "http://127.0.0.1:9/slow");
  CHECK(lines[2]["error"] == "connection closed");
  CHECK(lines[2]["count"] == 1);
  CHECK(lines[3]["error"] ==
        "worker doomed lost: connection closed (no attempt counted: that "
        "session had finished no task)");
  CHECK(lines[4]["attempt"] == 1);
  CHECK(lines[5]["outcome"] == "ok");
  CHECK(lines[5]["queue"] == "generic");

  // Ctrl-C ends it cleanly (it unsubscribes).
  follow.Signal(SIGINT);
  auto code = follow.Wait(10s);
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(ReadFile(dir.File("events.err")).empty());
  CHECK(WaitUntil([&] { return ProcessGone(handler); }, 10s));
}

TEST_CASE("CancelTerminateKillsTheRunningHandlerAndFreesTheSlot",
          "[e2e][cancel]") {
  TempDir dir;
  BrokerProcess broker(dir);
  auto worker = StartWorker(
      dir, broker.endpoint(),
      WorkerSpec{"w1", "none", 1, {"--exec", SlowScript(dir) + " {url}"}});
  auto client = Connect(broker.endpoint());
  SubmitOptions options;
  options.batch_id = "cx-1";
  REQUIRE(client->Submit({"http://127.0.0.1:9/slow"}, options).ok());
  const pid_t handler = ReadPid(dir.File("slow.pid"));
  REQUIRE(handler > 0);
  REQUIRE_FALSE(ProcessGone(handler));

  ToolRun cancel = Ctl(dir, broker.endpoint(), {"cancel", "1", "--terminate"});
  CHECK(cancel.code == 0);
  CHECK(cancel.out ==
        "cancelled task 1 (its handler, if running, is being terminated)\n");
  CHECK(cancel.err.empty());
  CHECK(WaitUntil([&] { return ProcessGone(handler); }, 5s));

  // The slot is free again: the next task runs on the same worker.
  options.batch_id = "cx-2";
  REQUIRE(client->Submit({"http://127.0.0.1:9/fast"}, options).ok());
  auto done = CollectByUrl(*client, "cx-2", 30s);
  REQUIRE(done.size() == 1);
  CHECK(done.begin()->second.state == "done");
  auto first = CollectByUrl(*client, "cx-1", 10s);
  REQUIRE(first.size() == 1);
  CHECK(first.begin()->second.state == "cancelled");
  CHECK(first.begin()->second.error ==
        "cancelled by an operator while running on worker w1 (handler "
        "terminated)");

  // Finished now, and a task never seen: both "no such task", exit 5.
  for (const char* id : {"1", "77"}) {
    ToolRun again = Ctl(dir, broker.endpoint(), {"cancel", id});
    CHECK(again.code == 5);
    CHECK(again.err == std::string("tq-ctl: no task ") + id +
                           " is queued, leased or waiting to retry (unknown, "
                           "or finished already)\n");
  }
  ToolRun bad = Ctl(dir, broker.endpoint(), {"cancel", "cx-2", "--terminate"});
  CHECK(bad.code == 2);
  CHECK(bad.err == "tq-ctl: --terminate goes with a task id, not 'cx-2'\n");
}

TEST_CASE("PausedQueueLeasesNothingUntilResumedEvenAfterARestart",
          "[e2e][pause]") {
  TempDir dir;
  BrokerProcess broker(dir);
  ToolRun pause = Ctl(dir, broker.endpoint(), {"pause", "generic"});
  CHECK(pause.code == 0);
  CHECK(pause.out == "paused queue generic\n");
  ToolRun twice = Ctl(dir, broker.endpoint(), {"pause", "generic"});
  CHECK(twice.code == 0);
  CHECK(twice.out == "queue generic was paused already\n");

  auto client = Connect(broker.endpoint());
  SubmitOptions options;
  options.batch_id = "pz-1";
  REQUIRE(client->Submit({"http://a.example/1", "http://a.example/2"}, options)
              .ok());
  broker.KillAndRestart();
  auto worker = StartWorker(dir, broker.endpoint(),
                            WorkerSpec{"w1", "none", 2, {"--noop"}});
  auto queue_doc = [&] {
    ToolRun q = Ctl(dir, broker.endpoint(), {"--json", "queues"});
    REQUIRE(q.code == 0);
    const json doc = json::parse(q.out);
    for (const json& j : doc["queues"]) {
      if (j["name"] == "generic") return j;
    }
    FAIL("no generic queue");
    return json();
  };
  // The worker is connected and asking, yet the paused queue holds.
  REQUIRE(WaitUntil([&] { return queue_doc()["workers"] == 1; }, 20s));
  json generic = queue_doc();
  CHECK(generic["paused"] == true);
  CHECK(generic["queued"] == 2);
  ToolRun table = Ctl(dir, broker.endpoint(), {"queues"});
  CHECK(table.out.find(" paused\n") != std::string::npos);

  ToolRun resume = Ctl(dir, broker.endpoint(), {"resume", "generic"});
  CHECK(resume.code == 0);
  CHECK(resume.out == "resumed queue generic\n");
  CHECK(CollectByUrl(*client, "pz-1", 30s).size() == 2);
  CHECK(queue_doc()["paused"] == false);

  ToolRun bad = Ctl(dir, broker.endpoint(), {"pause", "italy"});
  CHECK(bad.code == 2);
}

TEST_CASE("WorkerWithQueuesServesOnlyItsCountry", "[e2e][queues]") {
  TempDir dir;
  BrokerProcess broker(dir);
  auto worker = StartWorker(
      dir, broker.endpoint(),
      WorkerSpec{"it-only", "none", 2, {"--queues", "IT", "--noop"}});
  auto client = Connect(broker.endpoint());
  SubmitOptions options;
  options.batch_id = "q-it";
  options.queues = {"IT"};
  REQUIRE(client->Submit({"http://a.example/it"}, options).ok());
  options.batch_id = "q-gen";
  options.queues = {"generic"};
  REQUIRE(client->Submit({"http://a.example/gen"}, options).ok());
  CHECK(CollectByUrl(*client, "q-it", 30s).size() == 1);

  ToolRun workers = Ctl(dir, broker.endpoint(), {"--json", "workers"});
  REQUIRE(workers.code == 0);
  json w = json::parse(workers.out)["workers"];
  REQUIRE(w.size() == 1);
  CHECK(w[0]["queues"] == json::array({"IT"}));
  CHECK(w[0]["country"] == "IT");
  auto progress = client->Progress("q-gen");
  REQUIRE(progress.ok());
  CHECK(progress->queued == 1);  // nobody serves generic

  ToolRun refused =
      RunTool(dir, {Binary("tq-worker"), "--broker", broker.endpoint(),
                    "--queues", "it", "--noop"});
  CHECK(refused.code == 2);
  CHECK(refused.err.find("--queues 'it': country codes are upper case (use "
                         "--queues IT)") != std::string::npos);
}

}  // namespace
}  // namespace tq
