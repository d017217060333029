// The operator's command line (#19): exact messages and exit codes for the
// mistakes people make, --version, fail-fast connection reports, URL file
// hints, resuming a wait, and tq-bench's children dying with it.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
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
using testing::WaitUntil;
using testing::WriteFile;

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A loopback port nothing listens on: bound, then closed.
int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST_CASE("AnEndpointWithoutSchemeIsRefusedWithTheExpectedForm", "[e2e][ops]") {
  TempDir dir;
  const std::string urls = dir.File("urls.txt");
  WriteFile(urls, "http://127.0.0.1/a\n");
  const std::string expected =
      "--broker: '127.0.0.1:7070' is not a broker endpoint (no scheme): "
      "expected tcp://HOST:PORT, e.g. tcp://127.0.0.1:7070\n";
  ToolRun submit =
      RunTool(dir, {Binary("tq-submit"), "--broker", "127.0.0.1:7070", urls});
  CHECK(submit.code == 2);
  CHECK(submit.err == "tq-submit: " + expected);
  ToolRun ctl =
      RunTool(dir, {Binary("tq-ctl"), "--broker", "127.0.0.1:7070", "queues"});
  CHECK(ctl.code == 2);
  CHECK(ctl.err == "tq-ctl: " + expected);
  ToolRun worker = RunTool(
      dir, {Binary("tq-worker"), "--broker", "broker.example", "--noop"});
  CHECK(worker.code == 2);
  CHECK(Has(worker.err,
            "--broker: 'broker.example' is not a broker endpoint (no "
            "scheme): expected tcp://HOST:PORT, e.g. tcp://127.0.0.1:7070 "
            "(did you mean tcp://broker.example:7070?)"));
}

TEST_CASE("PortsOutsideTheRangeAreRefusedEverywhere", "[e2e][ops]") {
  TempDir dir;
  ToolRun broker = RunTool(dir, {Binary("tq-broker"), "--db", dir.File("tq.db"),
                                 "--listen", "tcp://127.0.0.1:70000"});
  CHECK(broker.code == 2);
  CHECK(Has(broker.err,
            "--listen: 'tcp://127.0.0.1:70000': port 70000 is out of range "
            "1-65535"));
  ToolRun ctl = RunTool(
      dir, {Binary("tq-ctl"), "--broker", "tcp://127.0.0.1:0", "queues"});
  CHECK(ctl.code == 2);
  CHECK(ctl.err ==
        "tq-ctl: --broker: 'tcp://127.0.0.1:0': port 0 is out of range "
        "1-65535 (0 only for --listen)\n");
  // TQ_LISTEN, not TQ_BROKER, is the broker's own address.
  ToolRun env = RunTool(dir, {Binary("tq-broker"), "--db", dir.File("tq2.db")},
                        {"TQ_LISTEN=tcp://127.0.0.1:99999"});
  CHECK(env.code == 2);
  CHECK(Has(env.err, "port 99999 is out of range"));
}

TEST_CASE("EveryBinaryPrintsItsVersion", "[e2e][ops]") {
  TempDir dir;
  for (const char* name : {"tq-broker", "tq-worker", "tq-submit", "tq-ctl",
                           "tq-keygen", "tq-geoip", "tq-bench"}) {
    INFO(name);
    ToolRun r = RunTool(dir, {Binary(name), "--version"});
    CHECK(r.code == 0);
    CHECK(r.out.rfind(std::string(name) + " 0.1.0 (git ", 0) == 0);
    CHECK(Has(r.out, "\nlibzmq 4."));
    CHECK(Has(r.out, "\nprotobuf 3."));
    CHECK(Has(r.out, "\nSQLite 3."));
  }
}

TEST_CASE("AnUnknownCommandIsNamedWithTheValidOnes", "[e2e][ops]") {
  TempDir dir;
  ToolRun r = RunTool(dir, {Binary("tq-ctl"), "frobnicate"});
  CHECK(r.code == 2);
  CHECK(r.err ==
        "tq-ctl: unknown command 'frobnicate' (commands: queues, workers, "
        "status, batches, task, active, batch, results, cancel, retry, purge, "
        "release, reload-keys, events, pause, resume)\n");
  ToolRun none = RunTool(dir, {Binary("tq-ctl")});
  CHECK(none.code == 2);
  CHECK(Has(none.err, "tq-ctl: a command is required (commands: queues,"));
}

TEST_CASE("NoSuchBatchOrQueueExits5AndPurgeAsksFirst", "[e2e][ops]") {
  TempDir dir;
  BrokerProcess broker(dir);
  const std::vector<std::string> env = {"TQ_BROKER=" + broker.endpoint()};
  ToolRun retry =
      RunTool(dir, {Binary("tq-ctl"), "retry", "--batch", "nosuch"}, env);
  CHECK(retry.code == 5);
  ToolRun retry_queue =
      RunTool(dir, {Binary("tq-ctl"), "retry", "--queue", "IT"}, env);
  CHECK(retry_queue.code == 5);
  CHECK(retry_queue.err == "tq-ctl: no such queue: IT\n");
  ToolRun batch = RunTool(dir, {Binary("tq-ctl"), "batch", "nosuch"}, env);
  CHECK(batch.code == 5);

  const std::string urls = dir.File("urls.txt");
  WriteFile(urls, "http://127.0.0.1/a\nhttp://127.0.0.1/b\n");
  ToolRun submit = RunTool(dir, {Binary("tq-submit"), urls}, env);
  REQUIRE(submit.code == 0);
  // Standard input is no terminal here: purge wants --yes, changes nothing.
  ToolRun refused = RunTool(dir, {Binary("tq-ctl"), "purge", "generic"}, env);
  CHECK(refused.code == 2);
  CHECK(refused.err ==
        "tq-ctl: purge deletes queued tasks: pass --yes (standard input is "
        "not a terminal to ask on)\n");
  ToolRun queues = RunTool(dir, {Binary("tq-ctl"), "--json", "queues"}, env);
  auto j = nlohmann::json::parse(queues.out);
  CHECK(j["queues"][0]["queued"] == 2);
  ToolRun purged =
      RunTool(dir, {Binary("tq-ctl"), "purge", "generic", "--yes"}, env);
  CHECK(purged.code == 0);
  CHECK(purged.out == "purged 2 tasks from queue generic\n");
}

TEST_CASE("AMissingBrokerIsReportedWithinOneSecond", "[e2e][ops]") {
  TempDir dir;
  const std::string endpoint =
      "tcp://127.0.0.1:" + std::to_string(ClosedPort());
  const std::string err = dir.File("err");
  const auto start = std::chrono::steady_clock::now();
  Process ctl(
      {Binary("tq-ctl"), "--broker", endpoint, "--timeout", "3", "queues"},
      dir.File("out"), err);
  const std::string line =
      "tq-ctl: waiting for broker at " + endpoint + ": connection refused\n";
  REQUIRE(WaitUntil([&] { return Has(ReadFile(err), line); }, 5s));
  CHECK(std::chrono::steady_clock::now() - start < 1500ms);
  // It keeps retrying within its deadline, then says how long it tried.
  auto code = ctl.Wait(30s);
  REQUIRE(code.has_value());
  CHECK(*code == 4);
  CHECK(ReadFile(err) == line + "tq-ctl: no answer from " + endpoint +
                             " after 3 attempts of 3 s\n");
}

TEST_CASE("UrlFileMistakesGetHints", "[e2e][ops]") {
  TempDir dir;
  BrokerProcess broker(dir);
  auto worker = StartWorker(dir, broker.endpoint(), {"w", "none", 2});
  const std::vector<std::string> env = {"TQ_BROKER=" + broker.endpoint()};
  const std::string urls = dir.File("urls.txt");
  WriteFile(urls,
            "http://127.0.0.1:8766/a.html\n"
            "127.0.0.1:8766/a.html\n"
            "http://127.0.0.1:8766/a.html\n"
            "http://127.0.0.1:8766/b.html\n");
  ToolRun r = RunTool(
      dir, {Binary("tq-submit"), urls, "--wait", "--timeout", "30s"}, env);
  INFO(r.err);
  CHECK(r.code == 3);
  CHECK(Has(r.err, urls +
                       ":2: not a valid URL (syntax error at column 10) (did "
                       "you mean http://127.0.0.1:8766/a.html?)\n"));
  // The repeated line is counted and queued once.
  CHECK(Has(r.err, "submitted 2 tasks (1 duplicates) in batch "));
  CHECK(Has(r.err, urls + ": 1 duplicate line queued once "
                          "(--allow-duplicates queues each)\n"));
  std::istringstream lines(r.out);
  std::string line;
  int results = 0;
  while (std::getline(lines, line)) ++results;
  CHECK(results == 2);

  ToolRun again =
      RunTool(dir, {Binary("tq-submit"), urls, "--allow-duplicates"}, env);
  CHECK(Has(again.err, "submitted 3 tasks (0 duplicates) in batch "));

  // At most 20 bad lines are named, then counted.
  std::string many;
  for (int i = 0; i < 25; ++i)
    many += "ftp://127.0.0.1/" + std::to_string(i) + "\n";
  many += "http://127.0.0.1/ok\n";
  const std::string bad = dir.File("bad.txt");
  WriteFile(bad, many);
  ToolRun capped = RunTool(dir, {Binary("tq-submit"), bad}, env);
  CHECK(capped.code == 3);
  CHECK(Has(capped.err, bad + ":20: scheme 'ftp'"));
  CHECK_FALSE(Has(capped.err, bad + ":21: "));
  CHECK(Has(capped.err, bad + ": 5 more bad lines not shown\n"));

  // A binary file is refused as such, with one message.
  std::string binary =
      "\x7f"
      "ELF\x02\x01\x01";
  binary += std::string(1, '\0');
  binary += "junk\nmore junk\n";
  const std::string exe = dir.File("a.out");
  WriteFile(exe, binary);
  ToolRun refused = RunTool(dir, {Binary("tq-submit"), exe}, env);
  CHECK(refused.code == 2);
  CHECK(refused.err == "tq-submit: " + exe +
                           " is a binary file (a NUL byte on line 1), not a "
                           "list of URLs; nothing submitted\n");
}

TEST_CASE("CountryNamesAndUkGetTheirCode", "[e2e][ops]") {
  TempDir dir;
  const std::string urls = dir.File("urls.txt");
  WriteFile(urls, "http://127.0.0.1/a\n");
  ToolRun uk = RunTool(dir, {Binary("tq-submit"), "--country", "UK", urls});
  CHECK(uk.code == 2);
  CHECK(uk.err ==
        "tq-submit: queue 'UK' is not an ISO 3166-1 alpha-2 country code "
        "(use 'GB')\n");
  ToolRun italy =
      RunTool(dir, {Binary("tq-submit"), "--country", "italy", urls});
  CHECK(italy.code == 2);
  CHECK(Has(italy.err, "(use 'IT')"));
  ToolRun worker =
      RunTool(dir, {Binary("tq-worker"), "--country", "Italy", "--noop"});
  CHECK(worker.code == 2);
  CHECK(Has(worker.err,
            "--country 'Italy' is not an ISO 3166-1 alpha-2 country code (use "
            "--country IT)"));
}

TEST_CASE("GenericIsAcceptedByTheWorkerAndUnservedQueuesWarn", "[e2e][ops]") {
  TempDir dir;
  BrokerProcess broker(dir);
  const std::vector<std::string> env = {"TQ_BROKER=" + broker.endpoint()};
  const std::string urls = dir.File("urls.txt");
  WriteFile(urls, "http://127.0.0.1/a\n");
  ToolRun warned =
      RunTool(dir, {Binary("tq-submit"), "--country", "IT", urls}, env);
  CHECK(warned.code == 0);
  CHECK(Has(warned.err,
            "tq-submit: warning: no connected worker serves queue IT; its "
            "tasks wait until one does\n"));

  Process worker({Binary("tq-worker"), "--broker", broker.endpoint(), "--id",
                  "g", "--country", "generic", "--noop"},
                 dir.File("worker.out"), dir.File("worker.log"));
  REQUIRE(WaitUntil(
      [&] {
        ToolRun w = RunTool(dir, {Binary("tq-ctl"), "--json", "workers"}, env);
        return Has(w.out, "\"worker_id\": \"g\"");
      },
      20s, 100ms));
  ToolRun served = RunTool(dir, {Binary("tq-submit"), urls}, env);
  CHECK(served.code == 0);
  CHECK_FALSE(Has(served.err, "warning"));
}

TEST_CASE("AWaitThatGivesUpSaysHowToResumeAndTheResumeWorks", "[e2e][ops]") {
  TempDir dir;
  BrokerProcess broker(dir);
  const std::vector<std::string> env = {"TQ_BROKER=" + broker.endpoint()};
  const std::string urls = dir.File("urls.txt");
  WriteFile(urls, "http://127.0.0.1/a\nhttp://127.0.0.1/b\n");
  ToolRun first = RunTool(dir,
                          {Binary("tq-submit"), "--batch-id", "resume-1", urls,
                           "--wait", "--timeout", "500ms"},
                          env);
  CHECK(first.code == 1);
  CHECK(Has(first.err,
            "tq-submit: gave up waiting after 0.5 s: 2 of 2 tasks unfinished "
            "(resume with: tq-submit --batch-id resume-1 --broker " +
                broker.endpoint() + " --wait)\n"));
  auto worker = StartWorker(dir, broker.endpoint(), {"w", "none", 2});
  // No FILE: only wait for the batch already submitted.
  ToolRun resumed = RunTool(
      dir, {Binary("tq-submit"), "--batch-id", "resume-1", "--wait"}, env);
  INFO(resumed.err);
  CHECK(resumed.code == 0);
  std::istringstream lines(resumed.out);
  std::string line;
  std::set<std::string> seen;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    seen.insert(j["url"].get<std::string>());
    CHECK(j["finished"].get<std::string>().back() == 'Z');
  }
  CHECK(seen.size() == 2);
  ToolRun nosuch = RunTool(
      dir, {Binary("tq-submit"), "--batch-id", "nosuch", "--wait"}, env);
  CHECK(nosuch.code == 5);
  ToolRun nofile = RunTool(dir, {Binary("tq-submit")}, env);
  CHECK(nofile.code == 2);
  CHECK(nofile.err ==
        "tq-submit: FILE is required (or --batch-id ID --wait, to wait for a "
        "batch already submitted)\n");
}

// Children of `pid`, from /proc (every thread's list).
std::set<pid_t> ChildrenOf(pid_t pid) {
  std::set<pid_t> kids;
  std::error_code ec;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& t : std::filesystem::directory_iterator(tasks, ec)) {
    std::ifstream in(t.path() / "children");
    pid_t kid;
    while (in >> kid) kids.insert(kid);
  }
  return kids;
}

bool Alive(pid_t pid) {
  // A zombie still answers kill(0); its state in /proc says it is gone.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) return false;
  const size_t paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() &&
         text[paren + 2] != 'Z';
}

TEST_CASE("TqBenchSigtermedLeavesNoProcessBehind", "[e2e][ops]") {
  TempDir dir;
  Process bench({Binary("tq-bench"), "throughput", "-n", "1000000", "-w", "2"},
                dir.File("bench.out"), dir.File("bench.err"));
  std::set<pid_t> kids;
  // The broker and both workers.
  REQUIRE(WaitUntil(
      [&] {
        kids = ChildrenOf(bench.pid());
        return kids.size() >= 3;
      },
      30s, 50ms));
  bench.Signal(SIGTERM);
  auto code = bench.Wait(20s);
  REQUIRE(code.has_value());
  CHECK(*code == -SIGTERM);
  for (pid_t kid : kids) {
    INFO("child " << kid);
    CHECK(WaitUntil([&] { return !Alive(kid); }, 10s));
  }
}

TEST_CASE("TqBenchWithoutArgumentsPrintsHelpAndBadOnesExit2", "[e2e][ops]") {
  TempDir dir;
  ToolRun none = RunTool(dir, {Binary("tq-bench")});
  CHECK(none.code == 2);
  CHECK(Has(none.out, "Usage:"));
  ToolRun bad = RunTool(dir, {Binary("tq-bench"), "nosuch"});
  CHECK(bad.code == 2);
  ToolRun flag = RunTool(dir, {Binary("tq-bench"), "--frobnicate"});
  CHECK(flag.code == 2);
}

}  // namespace
}  // namespace tq
