// tq-ctl's command line: the subcommand it names, what CLI11 refuses and the
// usage errors found before the broker is asked. The messages are the ones
// tq-ctl prints.
#include "client/ctl_flags.h"

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/curve_keys.h"
#include "tests/support/temp_dir.h"

namespace tq {
namespace {

// Parses `args` as tq-ctl's command line into `*flags`: "" if CLI11 accepts
// them, else its message.
std::string Parse(const std::vector<std::string>& args, CtlFlags* flags) {
  CLI::App app{"tq-ctl"};
  AddCtlFlags(app, flags);
  std::vector<const char*> argv = {"tq-ctl"};
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return CheckCtlCommand(*flags, app.remaining()).message();
}

CtlFlags Parsed(const std::vector<std::string>& args) {
  CtlFlags flags;
  const std::string error = Parse(args, &flags);
  INFO(error);
  REQUIRE(error.empty());
  return flags;
}

// A key pair saved as DIR/NAME.key and DIR/NAME.key_secret.
CurveCert SaveKeyPair(const testing::TempDir& dir, const std::string& name) {
  auto cert = GenerateCurveCert();
  REQUIRE(cert.ok());
  REQUIRE(SaveCurveCert(*cert, dir.File(name + kPublicKeySuffix), false, false)
              .ok());
  REQUIRE(SaveCurveCert(*cert, dir.File(name + kSecretKeySuffix), true, false)
              .ok());
  return std::move(cert).value();
}

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

}  // namespace

TEST_CASE("EachSubcommandIsRecognised", "[ctl_flags]") {
  CHECK(Parsed({"queues"}).command == CtlCommand::kQueues);
  CHECK(Parsed({"workers"}).command == CtlCommand::kWorkers);
  CHECK(Parsed({"batch", "b1"}).command == CtlCommand::kBatch);
  CHECK(Parsed({"results", "b1"}).command == CtlCommand::kResults);
  CHECK(Parsed({"cancel", "b1"}).command == CtlCommand::kCancel);
  CHECK(Parsed({"retry", "--queue", "IT"}).command == CtlCommand::kRetry);
  CHECK(Parsed({"purge", "IT"}).command == CtlCommand::kPurge);
}

TEST_CASE("SubcommandsFillTheirArguments", "[ctl_flags]") {
  CtlFlags results =
      Parsed({"results", "b1", "--out", "/tmp/o", "--layout", "thug"});
  CHECK(results.batch_id == "b1");
  CHECK(results.out_dir == "/tmp/o");
  CHECK(results.layout == "thug");
  CHECK(Parsed({"retry", "--batch", "b2"}).batch_id == "b2");
  CHECK(Parsed({"purge", "IN"}).queue == "IN");
}

TEST_CASE("GlobalFlagsMayFollowTheSubcommand", "[ctl_flags]") {
  CtlFlags flags = Parsed({"queues", "--json", "--timeout", "0.5"});
  CHECK(flags.json);
  CHECK(flags.request_timeout_s == 0.5);
  CHECK(Parsed({"--json", "workers"}).json);
}

TEST_CASE("ParserRefusesMissingOrConflictingArguments", "[ctl_flags]") {
  CtlFlags flags;
  CHECK(Parse({}, &flags) ==
        "a command is required (commands: queues, workers, status, batches, "
        "task, active, batch, results, cancel, retry, purge, release, "
        "reload-keys, events, pause, resume)");
  CHECK(Parse({"nosuch"}, &flags) ==
        "unknown command 'nosuch' (commands: queues, workers, status, "
        "batches, task, active, batch, results, cancel, retry, purge, "
        "release, reload-keys, events, pause, resume)");
  flags = CtlFlags();
  CHECK(Parse({"queues", "workers"}, &flags) ==
        "unexpected argument 'workers'");
  CHECK(Parse({"retry"}, &flags) ==
        "Exactly 1 option from [--batch,--queue] is required");
  CHECK(Parse({"retry", "--batch", "a", "--queue", "b"}, &flags) ==
        "--batch excludes --queue");
  CHECK(Parse({"results", "x", "--layout", "y"}, &flags) ==
        "--layout: y not in {tasks,thug}");
  CHECK(Parse({"batch"}, &flags) == "ID is required");
}

TEST_CASE("RetryNeedsABatchOrAQueue", "[ctl_flags]") {
  CtlFlags flags = Parsed({"retry", "--batch", ""});
  CHECK(ValidateCtlFlags(flags).message() ==
        "retry needs --batch ID or --queue QUEUE");
  CHECK(ValidateCtlFlags(Parsed({"retry", "--queue", "generic"})).ok());
}

TEST_CASE("MalformedIdsAndQueueNamesAreUsageErrors", "[ctl_flags]") {
  CHECK(ValidateCtlFlags(Parsed({"batch", "bad id"})).message() ==
        "batch id has a character other than [A-Za-z0-9._:-] at column 4");
  CHECK(ValidateCtlFlags(Parsed({"purge", "bad queue!"})).message() ==
        "queue 'bad queue!' is neither 'generic' nor an ISO 3166-1 alpha-2 "
        "country code");
  CHECK(ValidateCtlFlags(Parsed({"retry", "--queue", "bad!"})).message() ==
        "queue 'bad!' is neither 'generic' nor an ISO 3166-1 alpha-2 country "
        "code");
  CHECK(ValidateCtlFlags(Parsed({"cancel", "fixed-1"})).ok());
}

TEST_CASE("CtlKeyAndBrokerKeyGoTogether", "[ctl_flags]") {
  CHECK(ValidateCtlFlags(Parsed({"queues", "--key", "me.key_secret"}))
            .message() ==
        "--key (or $TQ_KEY) needs --broker-key KEY_OR_FILE (or "
        "$TQ_BROKER_KEY): the broker's public key, e.g. broker.key");
  CHECK(ValidateCtlFlags(Parsed({"--broker-key", "b.key", "workers"}))
            .message() ==
        "--broker-key (or $TQ_BROKER_KEY) needs --key FILE (or $TQ_KEY): "
        "this client's NAME.key_secret, made by tq-keygen NAME");
}

TEST_CASE("CtlClientOptionsCarryTheBrokerTimeoutAndKeys", "[ctl_flags]") {
  testing::TempDir dir;
  const CurveCert broker = SaveKeyPair(dir, "broker");
  const CurveCert ops = SaveKeyPair(dir, "ops");
  auto plain = ClientOptionsFromFlags(
      Parsed({"--broker", "tcp://127.0.0.1:9", "--timeout", "0.25", "queues"}));
  REQUIRE(plain.ok());
  CHECK(plain->endpoint == "tcp://127.0.0.1:9");
  CHECK(plain->request_timeout == std::chrono::milliseconds(250));
  CHECK_FALSE(plain->curve.enabled());

  // Global flags, so they may follow the subcommand too.
  auto keyed = ClientOptionsFromFlags(
      Parsed({"purge", "IT", "--broker-key", dir.File("broker.key"), "--key",
              dir.File("ops.key_secret")}));
  REQUIRE(keyed.ok());
  CHECK(keyed->curve.broker_public_key == broker.public_key);
  CHECK(keyed->curve.client_public_key == ops.public_key);

  const std::string secret = dir.File("ops.key_secret");
  REQUIRE(chmod(secret.c_str(), 0604) == 0);
  auto refused = ClientOptionsFromFlags(Parsed(
      {"queues", "--broker-key", dir.File("broker.key"), "--key", secret}));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message() ==
        "--key: " + secret +
            " holds a secret key but its mode 0604 lets others read it: "
            "chmod 600 " +
            secret);
}

TEST_CASE("CtlKeysComeFromTheEnvironmentUnlessGiven", "[ctl_flags]") {
  ScopedEnv broker_key(kBrokerKeyEnvVar, "env-broker.key");
  ScopedEnv key(kKeyEnvVar, "env.key_secret");
  CtlFlags flags = Parsed({"queues"});
  CHECK(flags.curve.broker_key == "env-broker.key");
  CHECK(flags.curve.key == "env.key_secret");
  CHECK(Parsed({"queues", "--broker-key", "b.key"}).curve.broker_key ==
        "b.key");
}

TEST_CASE("ReloadKeysIsACommandWithJson", "[ctl_flags]") {
  CtlFlags flags = Parsed({"reload-keys", "--json"});
  CHECK(flags.command == CtlCommand::kReloadKeys);
  CHECK(flags.json);
  CtlFlags extra;
  CHECK(Parse({"reload-keys", "now"}, &extra) != "");
}

}  // namespace tq

namespace tq {
namespace {

CtlFlags Resolved(const std::vector<std::string>& args) {
  CtlFlags flags;
  REQUIRE(Parse(args, &flags).empty());
  Status s = ResolveCancelTarget(&flags);
  INFO(s.message());
  REQUIRE(s.ok());
  return flags;
}

std::string ResolveError(const std::vector<std::string>& args) {
  CtlFlags flags;
  const std::string parse = Parse(args, &flags);
  if (!parse.empty()) return parse;
  return ResolveCancelTarget(&flags).message();
}

TEST_CASE("CancelTakesATaskIdOrABatch", "[ctl_flags]") {
  CtlFlags task = Resolved({"cancel", "42"});
  CHECK(task.command == CtlCommand::kCancelTask);
  CHECK(task.task_id == 42);
  CHECK_FALSE(task.terminate);
  CHECK(Resolved({"cancel", "42", "--terminate"}).terminate);
  CtlFlags batch = Resolved({"cancel", "--batch", "b1"});
  CHECK(batch.command == CtlCommand::kCancel);
  CHECK(batch.batch_id == "b1");
  // The older form: a batch id that is not a number.
  CtlFlags old = Resolved({"cancel", "fixed-1"});
  CHECK(old.command == CtlCommand::kCancel);
  CHECK(old.batch_id == "fixed-1");
  CHECK(ResolveError({"cancel"}) == "cancel needs TASK_ID or --batch ID");
  CHECK(ResolveError({"cancel", "0"}) == "task ids start at 1");
  CHECK(ResolveError({"cancel", "b1", "--terminate"}) ==
        "--terminate goes with a task id, not 'b1'");
  CHECK_FALSE(ResolveError({"cancel", "--batch", "b1", "--terminate"}).empty());
}

TEST_CASE("EventsPauseAndResumeAreRecognised", "[ctl_flags]") {
  CtlFlags events =
      Parsed({"events", "--batch", "b1", "--queue", "IT", "--worker", "w1"});
  CHECK(events.command == CtlCommand::kEvents);
  CHECK(events.batch_id == "b1");
  CHECK(events.queue == "IT");
  CHECK(events.worker_filter == "w1");
  CHECK(Parsed({"pause", "IT"}).command == CtlCommand::kPause);
  CHECK(Parsed({"resume", "IT"}).queue == "IT");
  CHECK(ValidateCtlFlags(Parsed({"pause", "italy"})).message().find("italy") !=
        std::string::npos);
}

}  // namespace
}  // namespace tq
