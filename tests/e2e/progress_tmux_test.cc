// tq-submit --wait in a real terminal (tmux): the progress bar, the line a
// lost broker puts on it, the resume hint, and Ctrl-C.
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "tests/support/cluster.h"
#include "tests/support/wait.h"

namespace tq {
namespace {

using namespace std::chrono_literals;
using testing::Binary;
using testing::BrokerProcess;
using testing::Process;
using testing::ReadFile;
using testing::StartWorker;
using testing::TempDir;
using testing::WaitUntil;
using testing::WriteFile;

// One tmux server on its own socket in the test's temp dir.
class Tmux {
 public:
  explicit Tmux(const TempDir& dir)
      : dir_(dir), socket_(dir.File("tmux.sock")) {}
  ~Tmux() { Run({"kill-server"}); }

  int Run(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/tmux", "-S", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    Process p(argv, dir_.File("tmux.out"), dir_.File("tmux.err"));
    auto code = p.Wait(20s);
    return code.value_or(-1);
  }
  // The pane's visible text.
  std::string Capture() {
    const std::string out = dir_.File("pane.txt");
    std::vector<std::string> argv = {
        "/usr/bin/tmux", "-S", socket_, "capture-pane", "-p", "-J", "-t", "tq"};
    {
      Process p(argv, out + ".new", "");
      p.Wait(20s);
    }
    std::string text = ReadFile(out + ".new");
    std::remove((out + ".new").c_str());
    return text;
  }
  bool WaitFor(const std::string& part, std::chrono::milliseconds timeout) {
    return WaitUntil([&] { return Capture().find(part) != std::string::npos; },
                     timeout, 100ms);
  }

 private:
  const TempDir& dir_;
  const std::string socket_;
};

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// Starts `command` in a 250-column pane, the pane kept after it exits.
void StartPane(Tmux& tmux, const std::string& command) {
  REQUIRE(
      tmux.Run({"new-session", "-d", "-s", "tq", "-x", "250", "-y", "50",
                // A trap (not an ignore, which the child would inherit) keeps
                // the shell alive through Ctrl-C to print the exit code.
                "sh -c " + Quote("trap : INT; " + command +
                                 "; echo EXIT=$?; exec cat")}) == 0);
}

TEST_CASE("ALostBrokerShowsOnTheProgressLineAndTheEndSaysHowToResume",
          "[e2e][ops][tmux]") {
  TempDir dir;
  BrokerProcess broker(dir);
  // Slow tasks, so the bar is drawn while most are unfinished.
  auto worker = StartWorker(dir, broker.endpoint(),
                            {"w", "none", 1, {"--exec", "sleep 0.3"}});
  std::string urls;
  for (int i = 0; i < 200; ++i)
    urls += "http://127.0.0.1/" + std::to_string(i) + "\n";
  const std::string file = dir.File("urls.txt");
  WriteFile(file, urls);
  Tmux tmux(dir);
  StartPane(tmux, Binary("tq-submit") + " --broker \"" + broker.endpoint() +
                      "\"" + " --batch-id tmux-1 --request-timeout 1 --wait " +
                      file + " > " + dir.File("results"));
  REQUIRE(tmux.WaitFor("done", 20s));
  CHECK(tmux.Capture().find("/ 200") != std::string::npos);
  REQUIRE(tmux.WaitFor(" 1 done", 20s));
  broker.process().Kill();
  // At once on the progress line, not after the request timeouts.
  const auto lost = std::chrono::steady_clock::now();
  CHECK(tmux.WaitFor("lost the broker at " + broker.endpoint(), 3s));
  CHECK(std::chrono::steady_clock::now() - lost < 2s);
  REQUIRE(tmux.WaitFor("EXIT=4", 30s));
  const std::string pane = tmux.Capture();
  INFO(pane);
  CHECK(pane.find("(the batch is kept: resume with: tq-submit --batch-id "
                  "tmux-1 --broker " +
                  broker.endpoint() + " --wait)") != std::string::npos);
}

TEST_CASE("CtrlCDuringWaitClearsTheBarAndSaysHowToResume", "[e2e][ops][tmux]") {
  TempDir dir;
  BrokerProcess broker(dir);
  auto worker = StartWorker(dir, broker.endpoint(),
                            {"w", "none", 1, {"--exec", "sleep 0.3"}});
  std::string urls;
  for (int i = 0; i < 100; ++i)
    urls += "http://127.0.0.1/" + std::to_string(i) + "\n";
  const std::string file = dir.File("urls.txt");
  WriteFile(file, urls);
  Tmux tmux(dir);
  StartPane(tmux, Binary("tq-submit") + " --broker \"" + broker.endpoint() +
                      "\"" + " --batch-id tmux-2 --wait " + file + " > " +
                      dir.File("results"));
  REQUIRE(tmux.WaitFor("tasks/s", 20s));
  REQUIRE(tmux.Run({"send-keys", "-t", "tq", "C-c"}) == 0);
  REQUIRE(tmux.WaitFor("EXIT=130", 10s));
  const std::string pane = tmux.Capture();
  INFO(pane);
  CHECK(pane.find("tq-submit: interrupted; the batch goes on (resume with: "
                  "tq-submit --batch-id tmux-2 --broker " +
                  broker.endpoint() + " --wait)") != std::string::npos);
  // The bar was cleared, not left half-drawn beside the message.
  CHECK(pane.find("tasks/s") == std::string::npos);
}

}  // namespace
}  // namespace tq
