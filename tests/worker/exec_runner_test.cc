#include "worker/exec_runner.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/clock.h"
#include "worker/command_line.h"

namespace tq {
namespace {

using Steady = std::chrono::steady_clock;
namespace fs = std::filesystem;

// Drives the runner the way the worker loop does, until `count` outcomes are
// in or the deadline passes.
std::vector<TaskOutcome> RunUntilDone(ExecRunner& runner, size_t count,
                                      Millis limit = Millis(20'000)) {
  std::vector<TaskOutcome> done;
  const auto deadline = Steady::now() + limit;
  std::vector<int> fds;
  std::vector<pollfd> pfds;
  while (done.size() < count && Steady::now() < deadline) {
    Millis wait = runner.OnTick();
    runner.TakeFinished(&done);
    if (done.size() >= count) break;
    fds.clear();
    runner.AppendPollFds(&fds);
    pfds.clear();
    for (int fd : fds) pfds.push_back({fd, POLLIN, 0});
    wait = std::min(wait, Millis(100));
    poll(pfds.data(), pfds.size(), static_cast<int>(wait.count()));
    for (const auto& p : pfds) {
      if (p.revents) runner.OnReadable(p.fd);
    }
  }
  return done;
}

TaskOutcome RunOne(const std::vector<std::string>& argv,
                   Millis time_limit = Millis(10'000),
                   ExecOptions options = {}) {
  SystemClock clock;
  ExecRunner runner(clock, options);
  runner.Start(42, argv, time_limit);
  auto done = RunUntilDone(runner, 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].task_id == 42);
  CHECK(runner.running() == 0);
  return done[0];
}

// A process is gone once it no longer exists or is only a zombie waiting for
// a reaper that is not us (the orphan's new parent).
bool ProcessGone(pid_t pid) {
  if (kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() &&
         line[paren + 2] == 'Z';
}

bool WaitUntilGone(pid_t pid, Millis limit = Millis(5000)) {
  const auto deadline = Steady::now() + limit;
  while (Steady::now() < deadline) {
    if (ProcessGone(pid)) return true;
    pollfd none{-1, 0, 0};
    poll(&none, 1, 10);
  }
  return ProcessGone(pid);
}

// Reads a pid the child writes, waiting (bounded) for the file to fill.
pid_t ReadPidFile(const fs::path& path) {
  const auto deadline = Steady::now() + Millis(5000);
  while (Steady::now() < deadline) {
    std::ifstream in(path);
    long pid = 0;
    if (in >> pid && pid > 0) return static_cast<pid_t>(pid);
    pollfd none{-1, 0, 0};
    poll(&none, 1, 10);
  }
  return -1;
}

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/tq_exec_runner_XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path path;
};

TEST_CASE("StdoutIsCapturedAsOutput", "[exec_runner]") {
  auto o = RunOne({"printf", "hello %s", "world"});
  CHECK(o.ok);
  CHECK(o.exit_code == 0);
  CHECK(o.error.empty());
  CHECK(o.output == "hello world");
  CHECK_FALSE(o.output_truncated);
}

TEST_CASE("StdinIsDevNull", "[exec_runner]") {
  auto o = RunOne({"cat"});
  CHECK(o.ok);
  CHECK(o.output.empty());
}

TEST_CASE("OutputPastTheCapIsDrainedDiscardedAndFlagged", "[exec_runner]") {
  ExecOptions options;
  options.max_output_bytes = 1000;
  // 300 KB is more than a pipe holds: the writer only finishes if we drain.
  auto o = RunOne({"sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x"},
                  Millis(10'000), options);
  CHECK(o.ok);
  CHECK(o.output == std::string(1000, 'x'));
  CHECK(o.output_truncated);
}

TEST_CASE("StderrTailKeepsOnlyTheLastBytes", "[exec_runner]") {
  auto o = RunOne({"sh", "-c",
                   "i=0; while [ $i -lt 3000 ]; do echo line$i >&2; "
                   "i=$((i+1)); done; echo out"});
  CHECK(o.ok);
  CHECK(o.output == "out\n");
  CHECK(o.stderr_tail.size() <= kStderrTailBytes);
  CHECK(o.stderr_tail.size() > kStderrTailBytes - 20);
  CHECK(o.stderr_tail.substr(o.stderr_tail.size() - 9) == "line2999\n");
  CHECK(o.stderr_tail.find("line0\n") == std::string::npos);
}

TEST_CASE("StderrTailIsValidUtf8EvenForBinaryBytes", "[exec_runner]") {
  auto o = RunOne({"sh", "-c", "printf 'bad \\377\\376 end' >&2"});
  CHECK(o.stderr_tail == "bad \xEF\xBF\xBD\xEF\xBF\xBD end");
}

TEST_CASE("NonZeroExitFailsWithTheStatus", "[exec_runner]") {
  auto o = RunOne({"sh", "-c", "echo partial; echo oops >&2; exit 3"});
  CHECK_FALSE(o.ok);
  CHECK(o.exit_code == 3);
  CHECK(o.error == "exited with status 3");
  CHECK(o.output == "partial\n");
  CHECK(o.stderr_tail == "oops\n");
}

TEST_CASE("DeathBySignalIsReported", "[exec_runner]") {
  auto o = RunOne({"sh", "-c", "kill -9 $$"});
  CHECK_FALSE(o.ok);
  CHECK(o.exit_code == -1);
  CHECK(o.error == "killed by signal 9 (Killed)");
}

TEST_CASE("CommandNotFoundFailsWithExit127", "[exec_runner]") {
  auto o = RunOne({"tq-no-such-command-7f3a", "x"});
  CHECK_FALSE(o.ok);
  CHECK(o.exit_code == 127);
  CHECK(o.error == "command not found: tq-no-such-command-7f3a");
  CHECK(o.stderr_tail == o.error);
}

TEST_CASE("TimeLimitKillsTheWholeProcessGroup", "[exec_runner]") {
  TempDir dir;
  const fs::path pid_file = dir.path / "grandchild.pid";
  const auto start = Steady::now();
  // The grandchild keeps the stdout pipe open: only a group kill ends it.
  auto o =
      RunOne({"sh", "-c",
              "sleep 30 & echo $! > '" + pid_file.string() + "'; sleep 30"},
             Millis(300));
  const auto took = Steady::now() - start;
  CHECK_FALSE(o.ok);
  CHECK(o.exit_code == -1);
  CHECK(o.error == "time limit of 0.3 s exceeded");
  CHECK(took < Millis(5000));
  CHECK(o.duration_ms >= 300);
  const pid_t grandchild = ReadPidFile(pid_file);
  REQUIRE(grandchild > 0);
  CHECK(WaitUntilGone(grandchild));
}

TEST_CASE("TimeLimitMessageHasOneDecimal", "[exec_runner]") {
  CHECK(TimeLimitMessage(Millis(2000)) == "time limit of 2.0 s exceeded");
  CHECK(TimeLimitMessage(Millis(1250)) == "time limit of 1.2 s exceeded");
}

TEST_CASE("LeftoverBackgroundProcessIsKilledWhenTheCommandExits",
          "[exec_runner]") {
  TempDir dir;
  const fs::path pid_file = dir.path / "straggler.pid";
  ExecOptions options;
  options.pipe_grace = Millis(200);
  auto o =
      RunOne({"sh", "-c",
              "sleep 30 & echo $! > '" + pid_file.string() + "'; echo done"},
             Millis(20'000), options);
  CHECK(o.ok);  // the command itself exited 0
  CHECK(o.output == "done\n");
  const pid_t straggler = ReadPidFile(pid_file);
  REQUIRE(straggler > 0);
  CHECK(WaitUntilGone(straggler));
}

TEST_CASE("UrlWithShellMetacharactersReachesTheCommandVerbatim",
          "[exec_runner]") {
  TempDir dir;
  const fs::path marker = dir.path / "pwned";
  const std::string url = "http://x/a b'; touch " + marker.string() +
                          "; echo \"$(touch " + marker.string() + ")`id`";
  auto t = CommandTemplate::Parse("printf %s {url}");
  REQUIRE(t.ok());
  auto o = RunOne(t->Expand(url));
  CHECK(o.ok);
  CHECK(o.output == url);
  CHECK_FALSE(fs::exists(marker));
}

TEST_CASE("ManyChildrenRunConcurrentlyAndReportTheirTags", "[exec_runner]") {
  SystemClock clock;
  ExecRunner runner(clock, ExecOptions{});
  constexpr int kChildren = 20;
  for (int i = 0; i < kChildren; ++i) {
    runner.Start(100 + i,
                 {"sh", "-c", "sleep 0.2; printf " + std::to_string(i)},
                 Millis(10'000));
  }
  CHECK(runner.running() == kChildren);
  const auto start = Steady::now();
  auto done = RunUntilDone(runner, kChildren);
  REQUIRE(done.size() == kChildren);
  // Run side by side, not one after another (20 x 0.2 s).
  CHECK(Steady::now() - start < Millis(3000));
  std::vector<bool> seen(kChildren, false);
  for (const auto& o : done) {
    REQUIRE(o.task_id >= 100);
    REQUIRE(o.task_id < 100 + kChildren);
    const int i = static_cast<int>(o.task_id - 100);
    CHECK(o.ok);
    CHECK(o.output == std::to_string(i));
    seen[i] = true;
  }
  for (bool s : seen) CHECK(s);
}

// A handler that starts a daemon in a session of its own and exits: neither
// the process group kill nor the pipes reach it, only the run's reaper.
void CheckSetsidDaemonDies(bool use_cgroups, bool hang) {
  TempDir dir;
  const fs::path pid_file = dir.path / "daemon.pid";
  ExecOptions options;
  options.use_cgroups = use_cgroups;
  options.pipe_grace = Millis(200);
  SystemClock clock;
  ExecRunner runner(clock, options);
  if (!use_cgroups) CHECK(runner.cgroup_base().empty());
  // The daemon double-forks (setsid forks when it leads a group) and lets
  // go of the pipes, as a real daemon does.
  const std::string script =
      "setsid sh -c 'echo $$ > \"" + pid_file.string() +
      "\"; exec sleep 300' </dev/null >/dev/null 2>&1 & " +
      (hang ? "sleep 300" : "echo started");
  runner.Start(7, {"sh", "-c", script}, Millis(hang ? 500 : 20'000));
  const pid_t daemon = ReadPidFile(pid_file);
  REQUIRE(daemon > 0);
  if (!runner.cgroup_base().empty()) {
    std::ifstream groups("/proc/" + std::to_string(daemon) + "/cgroup");
    std::string all((std::istreambuf_iterator<char>(groups)), {});
    CHECK(all.find("/tq-") != std::string::npos);
  }
  auto done = RunUntilDone(runner, 1);
  REQUIRE(done.size() == 1);
  if (hang) {
    CHECK(done[0].error == "time limit of 0.5 s exceeded");
  } else {
    CHECK(done[0].ok);
    CHECK(done[0].output == "started\n");
  }
  // Gone by the time the outcome is out: the reaper is reaped only after
  // its tree is empty.
  CHECK(ProcessGone(daemon));
  CHECK(WaitUntilGone(daemon, Millis(2000)));
}

TEST_CASE("SetsidDaemonOfAnExitedCommandIsKilled", "[exec_runner]") {
  CheckSetsidDaemonDies(false, false);
}

TEST_CASE("SetsidDaemonOfATimedOutCommandIsKilled", "[exec_runner]") {
  CheckSetsidDaemonDies(false, true);
}

TEST_CASE("SetsidDaemonIsKilledThroughTheRunsCgroup", "[exec_runner]") {
  CheckSetsidDaemonDies(true, false);
  CheckSetsidDaemonDies(true, true);
}

TEST_CASE("DaemonsOfConcurrentRunsDieWithTheirOwnRunOnly", "[exec_runner]") {
  TempDir dir;
  SystemClock clock;
  ExecOptions options;
  options.use_cgroups = false;  // the reaper alone must attribute them
  options.pipe_grace = Millis(200);
  ExecRunner runner(clock, options);
  auto daemon_of = [&](int i, const std::string& then) {
    const fs::path f = dir.path / ("d" + std::to_string(i));
    return std::vector<std::string>{
        "sh", "-c",
        "setsid sh -c 'echo $$ > \"" + f.string() +
            "\"; exec sleep 300' </dev/null >/dev/null 2>&1 & " + then};
  };
  runner.Start(1, daemon_of(1, "echo one"), Millis(20'000));
  runner.Start(2, daemon_of(2, "sleep 300"), Millis(60'000));
  const pid_t d1 = ReadPidFile(dir.path / "d1");
  const pid_t d2 = ReadPidFile(dir.path / "d2");
  REQUIRE(d1 > 0);
  REQUIRE(d2 > 0);
  auto done = RunUntilDone(runner, 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].task_id == 1);
  CHECK(WaitUntilGone(d1, Millis(2000)));
  CHECK_FALSE(ProcessGone(d2));  // run 2 is still going: its daemon lives
  runner.KillAll();
  CHECK(WaitUntilGone(d2, Millis(2000)));
}

TEST_CASE("RunsDieWhenTheWorkerIsKilled", "[exec_runner]") {
  TempDir dir;
  const fs::path pid_file = dir.path / "daemon.pid";
  const pid_t worker = fork();
  REQUIRE(worker >= 0);
  if (worker == 0) {
    // Stands in for a tq-worker that gets kill -9 mid-task.
    SystemClock clock;
    ExecRunner runner(clock, ExecOptions{});
    runner.Start(1,
                 {"sh", "-c",
                  "setsid sh -c 'echo $$ > \"" + pid_file.string() +
                      "\"; exec sleep 300' </dev/null >/dev/null 2>&1 & "
                      "sleep 300"},
                 Millis(60'000));
    for (int i = 0; i < 3000; ++i) {
      runner.OnTick();
      pollfd none{-1, 0, 0};
      poll(&none, 1, 10);
    }
    _exit(0);
  }
  const pid_t daemon = ReadPidFile(pid_file);
  kill(worker, SIGKILL);
  waitpid(worker, nullptr, 0);
  REQUIRE(daemon > 0);
  // Its reaper sees the worker's end of the socket close and kills the tree.
  CHECK(WaitUntilGone(daemon));
}

TEST_CASE("CommandDiesWhenItsReaperIsKilledWithTheWorkersGroup",
          "[exec_runner]") {
  TempDir dir;
  const fs::path pid_file = dir.path / "command.pid";
  const pid_t worker = fork();
  REQUIRE(worker >= 0);
  if (worker == 0) {
    setpgid(0, 0);  // a group of its own, as a tq-worker under a shell
    SystemClock clock;
    ExecOptions options;
    options.use_cgroups = false;
    ExecRunner runner(clock, options);
    runner.Start(
        1,
        {"sh", "-c", "echo $$ > '" + pid_file.string() + "'; exec sleep 300"},
        Millis(60'000));
    for (int i = 0; i < 3000; ++i) {
      runner.OnTick();
      pollfd none{-1, 0, 0};
      poll(&none, 1, 10);
    }
    _exit(0);
  }
  setpgid(worker, worker);  // either side may win the race
  const pid_t command = ReadPidFile(pid_file);
  kill(-worker, SIGKILL);  // the worker and its reaper, not the command
  waitpid(worker, nullptr, 0);
  REQUIRE(command > 0);
  CHECK(WaitUntilGone(command));
}

TEST_CASE("ExecFailureAfterLookupIsReportedAsCannotRun", "[exec_runner]") {
  TempDir dir;
  const fs::path script = dir.path / "bad";
  {
    std::ofstream out(script, std::ios::binary);
    out << "\x7f"
        << "ELF garbage";
  }
  fs::permissions(script, fs::perms::owner_all);
  auto o = RunOne({script.string()});
  CHECK_FALSE(o.ok);
  CHECK(o.exit_code == 126);
  CHECK(o.error.find("cannot run") == 0);
}

TEST_CASE("KillAllEndsEveryRunWithoutOutcomes", "[exec_runner]") {
  TempDir dir;
  const fs::path pid_file = dir.path / "child.pid";
  SystemClock clock;
  ExecRunner runner(clock, ExecOptions{});
  runner.Start(
      1, {"sh", "-c", "echo $$ > '" + pid_file.string() + "'; exec sleep 30"},
      Millis(60'000));
  runner.Start(2, {"sleep", "30"}, Millis(60'000));
  const pid_t child = ReadPidFile(pid_file);
  REQUIRE(child > 0);
  runner.KillAll();
  CHECK(runner.running() == 0);
  std::vector<TaskOutcome> done;
  runner.TakeFinished(&done);
  CHECK(done.empty());
  CHECK(WaitUntilGone(child));
}

}  // namespace
}  // namespace tq

namespace tq {
namespace {

TEST_CASE("TerminateKillsTheRunsWholeTreeAndReportsWhy", "[exec_runner]") {
  TempDir dir;
  const fs::path pid_file = dir.path / "grandchild.pid";
  SystemClock clock;
  ExecRunner runner(clock, {});
  runner.Start(5,
               {"sh", "-c",
                "sleep 30 & echo $! > '" + pid_file.string() + "'; sleep 30"},
               Millis(60'000));
  runner.Start(6, {"sleep", "30"}, Millis(60'000));
  const pid_t grandchild = ReadPidFile(pid_file);
  REQUIRE(grandchild > 0);
  CHECK_FALSE(runner.Terminate(99, "no such run"));
  const auto start = Steady::now();
  REQUIRE(runner.Terminate(5, "terminated by an operator"));
  auto done = RunUntilDone(runner, 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].task_id == 5);
  CHECK_FALSE(done[0].ok);
  CHECK(done[0].exit_code == -1);
  CHECK(done[0].error == "terminated by an operator");
  CHECK(Steady::now() - start < Millis(5000));
  CHECK(WaitUntilGone(grandchild));
  CHECK(runner.running() == 1);  // the other run goes on
  runner.KillAll();
}

}  // namespace
}  // namespace tq
