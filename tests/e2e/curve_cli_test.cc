// --broker-key and --key on the real tq-worker, tq-submit and tq-ctl: key
// files made by tq-keygen, the usage errors (exit 2) a user sees for unusable
// ones, and keys that really reach the socket.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "tests/support/cluster.h"
#include "tests/support/tool_run.h"

namespace tq {
namespace {

using namespace std::chrono_literals;
using testing::Binary;
using testing::BrokerProcess;
using testing::Process;
using testing::ReadFile;
using testing::RunTool;
using testing::TempDir;
using testing::ToolRun;
using testing::WriteFile;

// DIR/NAME.key and DIR/NAME.key_secret, as a user makes them; the broker's
// own key has no role.
void Keygen(const TempDir& dir, const std::string& name,
            const std::string& role = "") {
  std::vector<std::string> argv = {Binary("tq-keygen"), name, "--dir",
                                   dir.path()};
  if (!role.empty()) argv.insert(argv.end(), {"--role", role});
  ToolRun r = RunTool(dir, argv);
  INFO(r.err);
  REQUIRE(r.code == 0);
}

// Nothing listens on port 1: a worker that got past its flags would keep
// trying, so exiting at all shows the flags were refused.
const char* kNowhere = "tcp://127.0.0.1:1";

}  // namespace

TEST_CASE("WorkerWithUnusableKeyFilesExitsTwoSayingWhy", "[e2e][curve]") {
  TempDir dir;
  Keygen(dir, "broker");
  Keygen(dir, "it-box", "worker");
  const std::string broker_key = dir.File("broker.key");
  const std::string secret = dir.File("it-box.key_secret");
  const std::vector<std::string> worker = {Binary("tq-worker"), "--broker",
                                           kNowhere, "--noop"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = worker;
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  };

  ToolRun public_only = RunTool(
      dir, with({"--broker-key", broker_key, "--key", dir.File("it-box.key")}));
  CHECK(public_only.code == 2);
  CHECK(public_only.err == "tq-worker: --key: " + dir.File("it-box.key") +
                               " holds only a public key (its secret is in " +
                               secret + ")\n");

  ToolRun no_such = RunTool(
      dir, with({"--broker-key", dir.File("nope.key"), "--key", secret}));
  CHECK(no_such.code == 2);
  CHECK(no_such.err == "tq-worker: --broker-key: '" + dir.File("nope.key") +
                           "' is neither a Z85 public key nor a key file\n");

  REQUIRE(chmod(secret.c_str(), 0644) == 0);
  ToolRun readable =
      RunTool(dir, with({"--broker-key", broker_key, "--key", secret}));
  CHECK(readable.code == 2);
  CHECK(readable.err == "tq-worker: --key: " + secret +
                            " holds a secret key but its mode 0644 lets "
                            "others read it: chmod 600 " +
                            secret + "\n");

  // From the environment: the key alone is not enough.
  ToolRun key_only = RunTool(dir, worker, {"TQ_KEY=" + secret});
  CHECK(key_only.code == 2);
  CHECK(key_only.err.starts_with(
      "tq-worker: --key (or $TQ_KEY) needs --broker-key"));
}

TEST_CASE("SubmitAndCtlCheckTheirKeysBeforeAnythingElse", "[e2e][curve]") {
  TempDir dir;
  Keygen(dir, "broker");
  Keygen(dir, "ops", "admin,submit");
  const std::vector<std::string> keys = {"--broker-key", dir.File("broker.key"),
                                         "--key", dir.File("ops.key")};
  // The URL file is not even read: it does not exist.
  std::vector<std::string> submit = {Binary("tq-submit"), "--broker", kNowhere,
                                     dir.File("no-such-urls.txt")};
  submit.insert(submit.end(), keys.begin(), keys.end());
  ToolRun s = RunTool(dir, submit);
  CHECK(s.code == 2);
  CHECK(s.err == "tq-submit: --key: " + dir.File("ops.key") +
                     " holds only a public key (its secret is in " +
                     dir.File("ops.key_secret") + ")\n");

  ToolRun c = RunTool(dir, {Binary("tq-ctl"), "--broker", kNowhere, "queues"},
                      {"TQ_BROKER_KEY=" + dir.File("broker.key")});
  CHECK(c.code == 2);
  CHECK(c.err.starts_with(
      "tq-ctl: --broker-key (or $TQ_BROKER_KEY) needs --key FILE"));
}

// The keys are put on the socket: a CURVE client and a broker without keys
// use different mechanisms, so the handshake fails and nothing is answered.
TEST_CASE("KeyedClientsGetNoAnswerFromABrokerWithoutKeys", "[e2e][curve]") {
  TempDir dir;
  Keygen(dir, "broker");
  Keygen(dir, "ops", "admin,submit");
  BrokerProcess broker(dir);
  const std::vector<std::string> env = {
      "TQ_BROKER=" + broker.endpoint(),
      "TQ_BROKER_KEY=" + dir.File("broker.key"),
      "TQ_KEY=" + dir.File("ops.key_secret")};
  ToolRun plain =
      RunTool(dir, {Binary("tq-ctl"), "--broker", broker.endpoint(), "queues"});
  REQUIRE(plain.code == 0);
  ToolRun keyed =
      RunTool(dir, {Binary("tq-ctl"), "--timeout", "0.3", "queues"}, env);
  CHECK(keyed.code == 4);
  // The socket monitor sees the refused handshake, once.
  CHECK(keyed.err == "tq-ctl: waiting for broker at " + broker.endpoint() +
                         ": handshake failed (CURVE keys?)\n"
                         "tq-ctl: no answer from " +
                         broker.endpoint() + " after 3 attempts of 300 ms\n");
  const std::string urls = dir.File("urls.txt");
  WriteFile(urls, "http://127.0.0.1/a\n");
  ToolRun submit = RunTool(
      dir, {Binary("tq-submit"), "--request-timeout", "0.3", "-q", urls}, env);
  CHECK(submit.code == 4);
}

}  // namespace tq
