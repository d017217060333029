// tq-submit's flags: what CLI11 refuses, the checks made before the URL file
// is read, and the batch's options. The messages are the ones tq-submit
// prints.
#include "client/submit_flags.h"

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

using Queues = std::vector<std::string>;

// Parses `args` as tq-submit's command line into `*flags`: "" if CLI11
// accepts them, else its message.
std::string Parse(const std::vector<std::string>& args, SubmitFlags* flags) {
  CLI::App app{"tq-submit"};
  AddSubmitFlags(app, flags);
  std::vector<const char*> argv = {"tq-submit"};
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return "";
}

Queues Countries(const std::string& list) {
  auto queues = ParseCountries(list);
  INFO(queues.status().message());
  REQUIRE(queues.ok());
  return queues.value();
}

std::string CountriesError(const std::string& list) {
  auto queues = ParseCountries(list);
  REQUIRE_FALSE(queues.ok());
  return queues.status().message();
}

SubmitFlags WithOptions(std::vector<std::string> options) {
  SubmitFlags flags;
  flags.file = "urls.txt";
  flags.options = std::move(options);
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

TEST_CASE("ParserRefusesOutOfRangeLimitsAndUnknownLayouts", "[submit_flags]") {
  SubmitFlags flags;
  // FILE is optional to CLI11 (--batch-id ID --wait needs none):
  // ValidateSubmitFlags asks for it.
  CHECK(Parse({}, &flags) == "");
  CHECK(Parse({"--max-attempts", "0", "u.txt"}, &flags) ==
        "--max-attempts: Value 0 not in range 1 to 1000");
  CHECK(Parse({"--layout", "x", "u.txt"}, &flags) ==
        "--layout: x not in {tasks,thug}");
  CHECK(Parse({"--time-limit", "0", "u.txt"}, &flags) ==
        "--time-limit: Value 0 not in range 0.001000 to 4000000.000000");
}

TEST_CASE("ParserFillsTheFlags", "[submit_flags]") {
  SubmitFlags flags;
  REQUIRE(Parse({"--country", "IT,IN", "--wait", "-q", "-o", "a=1", "-o", "b=2",
                 "--priority", "-3", "-"},
                &flags)
              .empty());
  CHECK(flags.file == "-");
  CHECK(flags.countries == "IT,IN");
  CHECK(flags.wait);
  CHECK(flags.quiet);
  CHECK(flags.priority == -3);
  CHECK(flags.options == std::vector<std::string>{"a=1", "b=2"});
  CHECK(flags.layout == "tasks");
  CHECK(flags.log_level == "warn");
}

TEST_CASE("CountriesAreTrimmedDedupedAndKeptInOrder", "[submit_flags]") {
  CHECK(Countries("") == Queues{"generic"});
  CHECK(Countries("IT") == Queues{"IT"});
  CHECK(Countries(" IN ,\tIT, IN,generic") == Queues{"IN", "IT", "generic"});
}

TEST_CASE("BadCountryListsSayWhichEntry", "[submit_flags]") {
  CHECK(CountriesError("IT,,IN") == "empty entry in --country 'IT,,IN'");
  CHECK(CountriesError(" , ") == "empty entry in --country ' , '");
  CHECK(CountriesError("it") ==
        "queue 'it': country codes are upper case (use 'IT')");
}

TEST_CASE("ValidationChecksCountriesThenBatchId", "[submit_flags]") {
  SubmitFlags flags;
  CHECK(ValidateSubmitFlags(flags).message() ==
        "FILE is required (or --batch-id ID --wait, to wait for a batch "
        "already submitted)");
  flags.file = "urls.txt";
  CHECK(ValidateSubmitFlags(flags).ok());
  flags.batch_id = "bad id";
  CHECK(ValidateSubmitFlags(flags).message() ==
        "batch id has a character other than [A-Za-z0-9._:-] at column 4");
  flags.countries = "IT,,IN";
  CHECK(ValidateSubmitFlags(flags).message() ==
        "empty entry in --country 'IT,,IN'");
  flags.countries = "IT";
  flags.batch_id = "fixed-1";
  CHECK(ValidateSubmitFlags(flags).ok());
}

TEST_CASE("SubmitOptionsCarryTheFlags", "[submit_flags]") {
  SubmitFlags flags = WithOptions({"user_agent=tq", "empty=", "a=b=c"});
  flags.countries = "IT, IN";
  flags.priority = 7;
  flags.max_attempts = 2;
  flags.time_limit_s = 1.5;
  flags.batch_id = "fixed-1";
  auto options = SubmitOptionsFromFlags(flags);
  INFO(options.status().message());
  REQUIRE(options.ok());
  CHECK(options->queues == Queues{"IT", "IN"});
  CHECK(options->priority == 7);
  CHECK(options->max_attempts == 2);
  CHECK(options->time_limit_ms == 1500);
  CHECK(options->batch_id == "fixed-1");
  CHECK(options->task_options ==
        std::map<std::string, std::string>{
            {"user_agent", "tq"}, {"empty", ""}, {"a", "b=c"}});
}

TEST_CASE("WithoutBatchIdAFreshValidOneIsChosen", "[submit_flags]") {
  auto first = SubmitOptionsFromFlags(WithOptions({}));
  auto second = SubmitOptionsFromFlags(WithOptions({}));
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  CHECK(ValidateBatchId(first->batch_id).ok());
  CHECK(first->batch_id != second->batch_id);
  CHECK(first->queues == Queues{"generic"});
}

TEST_CASE("TaskOptionsMustBeKeyEqualsValue", "[submit_flags]") {
  auto no_equals = SubmitOptionsFromFlags(WithOptions({"a=1", "novalue"}));
  REQUIRE_FALSE(no_equals.ok());
  CHECK(no_equals.status().message() ==
        "--option 'novalue': expected KEY=VALUE");
  auto no_key = SubmitOptionsFromFlags(WithOptions({"=x"}));
  REQUIRE_FALSE(no_key.ok());
  CHECK(no_key.status().message() == "--option '=x': expected KEY=VALUE");
}

TEST_CASE("SecondsAreRoundedToMilliseconds", "[submit_flags]") {
  CHECK(SecondsToMs(0).count() == 0);
  CHECK(SecondsToMs(0.0004).count() == 0);
  CHECK(SecondsToMs(0.0005).count() == 1);
  CHECK(SecondsToMs(2.5).count() == 2500);
}

TEST_CASE("KeyAndBrokerKeyGoTogetherBeforeTheFileIsRead", "[submit_flags]") {
  SubmitFlags flags;
  REQUIRE(Parse({"urls.txt", "--key", "me.key_secret"}, &flags).empty());
  CHECK(ValidateSubmitFlags(flags).message() ==
        "--key (or $TQ_KEY) needs --broker-key KEY_OR_FILE (or "
        "$TQ_BROKER_KEY): the broker's public key, e.g. broker.key");
  SubmitFlags reverse;
  REQUIRE(Parse({"urls.txt", "--broker-key", "b.key"}, &reverse).empty());
  CHECK(ValidateSubmitFlags(reverse).message() ==
        "--broker-key (or $TQ_BROKER_KEY) needs --key FILE (or $TQ_KEY): "
        "this client's NAME.key_secret, made by tq-keygen NAME");
}

TEST_CASE("ClientOptionsCarryTheBrokerTimeoutAndKeys", "[submit_flags]") {
  testing::TempDir dir;
  const CurveCert broker = SaveKeyPair(dir, "broker");
  const CurveCert me = SaveKeyPair(dir, "me");
  SubmitFlags plain;
  REQUIRE(Parse({"urls.txt", "--broker", "tcp://127.0.0.1:9",
                 "--request-timeout", "1.5"},
                &plain)
              .empty());
  auto options = ClientOptionsFromFlags(plain);
  REQUIRE(options.ok());
  CHECK(options->endpoint == "tcp://127.0.0.1:9");
  CHECK(options->request_timeout == std::chrono::milliseconds(1500));
  CHECK_FALSE(options->curve.enabled());

  SubmitFlags keyed;
  REQUIRE(Parse({"urls.txt", "--broker-key", broker.public_key, "--key",
                 dir.File("me.key_secret")},
                &keyed)
              .empty());
  options = ClientOptionsFromFlags(keyed);
  REQUIRE(options.ok());
  CHECK(options->curve.broker_public_key == broker.public_key);
  CHECK(options->curve.client_public_key == me.public_key);
  CHECK(options->curve.client_secret_key == me.secret_key);

  keyed.curve.key = dir.File("me.key");
  options = ClientOptionsFromFlags(keyed);
  REQUIRE_FALSE(options.ok());
  CHECK(options.status().message() ==
        "--key: " + dir.File("me.key") +
            " holds only a public key (its secret is in " +
            dir.File("me.key_secret") + ")");
}

TEST_CASE("SubmitKeysComeFromTheEnvironmentUnlessGiven", "[submit_flags]") {
  ScopedEnv broker_key(kBrokerKeyEnvVar, "env-broker.key");
  ScopedEnv key(kKeyEnvVar, "env.key_secret");
  SubmitFlags flags;
  REQUIRE(Parse({"urls.txt"}, &flags).empty());
  CHECK(flags.curve.broker_key == "env-broker.key");
  CHECK(flags.curve.key == "env.key_secret");
  SubmitFlags given;
  REQUIRE(Parse({"urls.txt", "--key", "mine.key_secret"}, &given).empty());
  CHECK(given.curve.key == "mine.key_secret");
  CHECK(given.curve.broker_key == "env-broker.key");
}

}  // namespace tq
