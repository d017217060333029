// tq-worker's flags: what CLI11 refuses, and the checks and options made
// from what it accepts. The messages are the ones tq-worker prints.
#include "worker/worker_flags.h"

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

constexpr const char* kSelf = "/opt/tq/bin/tq-worker";

// Parses `args` as tq-worker's command line into `*flags`: "" if CLI11
// accepts them, else its message.
std::string Parse(const std::vector<std::string>& args, WorkerFlags* flags) {
  CLI::App app{"tq-worker"};
  AddWorkerFlags(app, flags);
  std::vector<const char*> argv = {"tq-worker"};
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return "";
}

WorkerFlags Parsed(const std::vector<std::string>& args) {
  WorkerFlags flags;
  const std::string error = Parse(args, &flags);
  INFO(error);
  REQUIRE(error.empty());
  return flags;
}

// The usage error tq-worker reports for `args`, "" if there is none.
std::string UsageError(const std::vector<std::string>& args,
                       const std::string& self_exe = kSelf) {
  auto options = WorkerOptionsFromFlags(Parsed(args), self_exe);
  return options.ok() ? "" : options.status().message();
}

WorkerOptions Options(const std::vector<std::string>& args) {
  auto options = WorkerOptionsFromFlags(Parsed(args), kSelf);
  INFO(options.status().message());
  REQUIRE(options.ok());
  return std::move(options).value();
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

TEST_CASE("ConcurrencyOutsideOneTo1024IsRefusedByTheParser", "[worker_flags]") {
  WorkerFlags flags;
  CHECK(Parse({"--concurrency", "0"}, &flags) ==
        "--concurrency: Value 0 not in range 1 to 1024");
  CHECK(Parse({"--concurrency", "2000"}, &flags) ==
        "--concurrency: Value 2000 not in range 1 to 1024");
  CHECK(Parse({"--concurrency", "x"}, &flags) ==
        "--concurrency: Value x not in range 1 to 1024");
  CHECK(Parsed({"--concurrency", "1024"}).concurrency == 1024);
}

TEST_CASE("HandlerFlagsExcludeEachOther", "[worker_flags]") {
  WorkerFlags flags;
  CHECK(Parse({"--exec", "echo", "--noop"}, &flags) ==
        "--exec excludes --noop");
  CHECK(Parse({"--analyse", "--noop"}, &flags) == "--noop excludes --analyse");
  CHECK(Parse({"--analyse", "--exec", "echo"}, &flags) ==
        "--exec excludes --analyse");
}

TEST_CASE("ParserRefusesUnknownResolverAndOversizedOutput", "[worker_flags]") {
  WorkerFlags flags;
  CHECK(Parse({"--geo-resolver", "bogus"}, &flags) ==
        "--geo-resolver: bogus not in {geoip,cymru}");
  CHECK(Parse({"--max-output", "999999999999"}, &flags) ==
        "--max-output: Value 999999999999 not in range 0 to 15728640");
}

TEST_CASE("DefaultsRunTheAnalyserOnTheGenericQueue", "[worker_flags]") {
  WorkerOptions options = Options({});
  CHECK(options.handler == Handler::kAnalyse);
  CHECK_FALSE(options.noop);
  CHECK(options.self_exe == kSelf);
  CHECK(options.endpoint == kDefaultEndpoint);
  CHECK(options.identity.broker == kDefaultEndpoint);
  CHECK(options.identity.country.empty());
  CHECK_FALSE(options.identity.country_auto);
  CHECK(options.identity.concurrency == 1);
  CHECK(options.identity.worker_id.empty());  // the host's default, later
  CHECK(options.work_dir.empty());
  CHECK(options.remove_work_dir);
  CHECK(options.max_output_bytes == kDefaultMaxOutputBytes);
}

TEST_CASE("AnalyserNeedsThisProgramsPathButOtherHandlersDoNot",
          "[worker_flags]") {
  CHECK(UsageError({}, "") == "cannot find this program's path for --analyse");
  CHECK(UsageError({"--analyse"}, "") ==
        "cannot find this program's path for --analyse");
  CHECK(UsageError({"--noop"}, "").empty());
  CHECK(UsageError({"--exec", "echo {url}"}, "").empty());
}

TEST_CASE("ExecCommandIsParsedOnceIntoTheOptions", "[worker_flags]") {
  WorkerOptions options = Options({"--exec", "echo '{url}' x"});
  CHECK(options.handler == Handler::kExec);
  CHECK(options.command.words() ==
        std::vector<std::string>{"echo", "{url}", "x"});
  CHECK(options.command.uses_url());
  CHECK(options.self_exe.empty());
  CHECK(UsageError({"--exec", ""}) == "--exec: empty command");
  CHECK(UsageError({"--exec", "\"unterminated"}) ==
        "--exec: unterminated double quote in command starting at position "
        "0");
}

TEST_CASE("NoopOverridesTheHandler", "[worker_flags]") {
  WorkerOptions options = Options({"--noop", "--concurrency", "8"});
  CHECK(options.handler == Handler::kNoop);
  CHECK(options.noop);
  CHECK(options.identity.concurrency == 8);
}

TEST_CASE("GeoFlagsGoOnlyWithCountryAuto", "[worker_flags]") {
  const std::string message =
      "--geoip-db, --geo-resolver and --public-ip go with --country auto";
  CHECK(UsageError({"--geoip-db", "x.mmdb"}) == message);
  CHECK(UsageError({"--public-ip", "1.2.3.4"}) == message);
  CHECK(UsageError({"--geo-resolver", "geoip"}) == message);
  CHECK(UsageError({"--country", "IT", "--geo-resolver", "cymru"}) == message);
  CHECK(UsageError({"--country", "auto", "--geoip-db", "x.mmdb", "--public-ip",
                    "1.2.3.4"})
            .empty());
}

TEST_CASE("EachResolverGetsWhatItNeedsAndNothingElse", "[worker_flags]") {
  CHECK(UsageError({"--country", "auto", "--geo-resolver", "cymru",
                    "--geoip-db", "x.mmdb"}) ==
        "--geo-resolver cymru takes no --geoip-db");
  CHECK(UsageError({"--country", "auto", "--geo-resolver", "geoip"}) ==
        "--geo-resolver geoip needs --geoip-db FILE");
  CHECK(UsageError({"--country", "auto", "--geo-resolver", "cymru"}).empty());
  CHECK(UsageError({"--country", "auto", "--geo-resolver", "geoip",
                    "--geoip-db", "x.mmdb"})
            .empty());
}

TEST_CASE("PublicIpMustBeAnAddress", "[worker_flags]") {
  CHECK(UsageError({"--country", "auto", "--public-ip", "nonsense"}) ==
        "--public-ip: 'nonsense' is not an IPv4 or IPv6 address");
  WorkerOptions options = Options({"--country", "auto", "--public-ip", "::1"});
  CHECK(options.identity.public_ip == "::1");
}

TEST_CASE("CountryIsACodeOrAutoOrNone", "[worker_flags]") {
  CHECK(UsageError({"--country", "it"}) ==
        "--country 'it': country codes are upper case (use --country IT)");
  CHECK(UsageError({"--country", "ITA"}) ==
        "--country 'ITA' is not an ISO 3166-1 alpha-2 country code (use "
        "--country IT)");
  CHECK(UsageError({"--country", "zz"}) ==
        "--country 'zz' is not an ISO 3166-1 alpha-2 country code; pass one "
        "such as IT, or generic");
  CHECK(Options({"--country", "IT"}).identity.country == "IT");
  CHECK(Options({"--country", "none"}).identity.country.empty());
  WorkerOptions automatic = Options({"--country", "auto"});
  CHECK(automatic.identity.country.empty());
  CHECK(automatic.identity.country_auto);
}

TEST_CASE("EmptyBrokerIsRefused", "[worker_flags]") {
  CHECK(UsageError({"--broker", ""}) ==
        "--broker: '' is not a broker endpoint (empty): expected "
        "tcp://HOST:PORT, e.g. tcp://127.0.0.1:7070");
  CHECK(Options({"--broker", "tcp://127.0.0.1:9"}).endpoint ==
        "tcp://127.0.0.1:9");
}

TEST_CASE("FirstProblemIsReportedInTheOrderTqWorkerChecks", "[worker_flags]") {
  // The handler, then the geo flags, --public-ip, --country, --broker.
  CHECK(UsageError({"--exec", "", "--country", "zz"}) ==
        "--exec: empty command");
  CHECK(UsageError({"--country", "zz", "--geoip-db", "x", "--broker", ""}) ==
        "--geoip-db, --geo-resolver and --public-ip go with --country auto");
  CHECK(UsageError({"--country", "zz", "--broker", ""})
            .starts_with("--country 'zz'"));
}

TEST_CASE("GivenWorkDirIsKeptAndNotRemoved", "[worker_flags]") {
  WorkerOptions given = Options({"--work-dir", "/srv/tq"});
  CHECK(given.work_dir == "/srv/tq");
  CHECK_FALSE(given.remove_work_dir);
  // Given empty: the default place, but still the user's to clean up.
  WorkerOptions empty = Options({"--work-dir", ""});
  CHECK(empty.work_dir.empty());
  CHECK_FALSE(empty.remove_work_dir);
}

TEST_CASE("AnalyseOneFlagsAreParsedForTheChild", "[worker_flags]") {
  WorkerFlags flags =
      Parsed({"--analyse-one", "http://127.0.0.1/", "--options-json",
              R"({"timeout":"5"})", "--time-limit-ms", "2500"});
  CHECK(flags.analyse_one == "http://127.0.0.1/");
  CHECK(flags.options_json == R"({"timeout":"5"})");
  CHECK(flags.time_limit_ms == 2500);
  CHECK(Parsed({}).options_json == "{}");
}

TEST_CASE("KeyAndBrokerKeyGoTogether", "[worker_flags]") {
  CHECK(UsageError({"--key", "me.key_secret"}) ==
        "--key (or $TQ_KEY) needs --broker-key KEY_OR_FILE (or "
        "$TQ_BROKER_KEY): the broker's public key, e.g. broker.key");
  CHECK(UsageError({"--broker-key", "broker.key"}) ==
        "--broker-key (or $TQ_BROKER_KEY) needs --key FILE (or $TQ_KEY): "
        "this client's NAME.key_secret, made by tq-keygen NAME");
  // After the other checks, and before any file is read.
  CHECK(UsageError({"--key", "me.key_secret", "--broker", ""}) ==
        "--broker: '' is not a broker endpoint (empty): expected "
        "tcp://HOST:PORT, e.g. tcp://127.0.0.1:7070");
  CHECK_FALSE(Options({}).curve.enabled());
}

TEST_CASE("KeyFilesBecomeTheWorkersCurveKeys", "[worker_flags]") {
  testing::TempDir dir;
  const CurveCert broker = SaveKeyPair(dir, "broker");
  const CurveCert me = SaveKeyPair(dir, "it-box");
  WorkerOptions options = Options({"--broker-key", dir.File("broker.key"),
                                   "--key", dir.File("it-box.key_secret")});
  CHECK(options.curve.broker_public_key == broker.public_key);
  CHECK(options.curve.client_public_key == me.public_key);
  CHECK(options.curve.client_secret_key == me.secret_key);
}

TEST_CASE("UnusableKeyFilesAreUsageErrors", "[worker_flags]") {
  testing::TempDir dir;
  SaveKeyPair(dir, "broker");
  SaveKeyPair(dir, "it-box");
  const std::string secret = dir.File("it-box.key_secret");
  CHECK(UsageError({"--broker-key", dir.File("broker.key"), "--key",
                    dir.File("it-box.key")}) ==
        "--key: " + dir.File("it-box.key") +
            " holds only a public key (its secret is in " + secret + ")");
  REQUIRE(chmod(secret.c_str(), 0644) == 0);
  CHECK(UsageError({"--broker-key", dir.File("broker.key"), "--key", secret}) ==
        "--key: " + secret +
            " holds a secret key but its mode 0644 lets others read it: "
            "chmod 600 " +
            secret);
}

TEST_CASE("CurveKeysComeFromTheEnvironmentUnlessGiven", "[worker_flags]") {
  testing::TempDir dir;
  const CurveCert broker = SaveKeyPair(dir, "broker");
  const CurveCert me = SaveKeyPair(dir, "it-box");
  const CurveCert other = SaveKeyPair(dir, "other");
  ScopedEnv broker_key(kBrokerKeyEnvVar, dir.File("broker.key"));
  ScopedEnv key(kKeyEnvVar, dir.File("it-box.key_secret"));
  CHECK(Options({}).curve.client_public_key == me.public_key);
  CHECK(Options({}).curve.broker_public_key == broker.public_key);
  CHECK(Options({"--key", dir.File("other.key_secret")})
            .curve.client_public_key == other.public_key);
}

}  // namespace tq

namespace tq {
namespace {

TEST_CASE("QueuesNameTheCountryAndWhetherGenericIsServed", "[worker_flags]") {
  WorkerOptions it_only = Options({"--queues", "IT"});
  CHECK(it_only.identity.country == "IT");
  CHECK(it_only.identity.no_generic);
  WorkerOptions both = Options({"--queues", "IT,generic"});
  CHECK(both.identity.country == "IT");
  CHECK_FALSE(both.identity.no_generic);
  WorkerOptions generic = Options({"--queues", "generic"});
  CHECK(generic.identity.country.empty());
  CHECK_FALSE(generic.identity.no_generic);
  WorkerOptions agreeing = Options({"--country", "IT", "--queues", "IT"});
  CHECK(agreeing.identity.country == "IT");
  CHECK(agreeing.identity.no_generic);
  WorkerOptions no_generic = Options({"--country", "DE", "--no-generic"});
  CHECK(no_generic.identity.country == "DE");
  CHECK(no_generic.identity.no_generic);
  CHECK(Options({"--country", "auto", "--no-generic"}).identity.no_generic);
  CHECK_FALSE(Options({}).identity.no_generic);
}

TEST_CASE("QueuesAreValidatedLikeCountry", "[worker_flags]") {
  CHECK(UsageError({"--queues", "it"}) ==
        "--queues 'it': country codes are upper case (use --queues IT)");
  CHECK(UsageError({"--queues", "italy"}) ==
        "--queues 'italy' is not an ISO 3166-1 alpha-2 country code (use "
        "--queues IT)");
  CHECK(UsageError({"--queues", "IT,,generic"}) ==
        "--queues 'IT,,generic': an empty queue name; pass e.g. --queues IT "
        "or --queues IT,generic");
  CHECK(UsageError({"--queues", "IT,DE"}) ==
        "--queues names two countries (IT, DE): a worker serves the queue of "
        "its own country only");
  CHECK(UsageError({"--queues", "generic,generic"}) ==
        "--queues names generic twice");
  CHECK(UsageError({"--country", "DE", "--queues", "IT"}) ==
        "--queues IT leaves out the --country DE queue: add DE to --queues, "
        "or drop --country");
  CHECK(UsageError({"--queues", "IT,generic", "--no-generic"}) ==
        "--no-generic and --queues IT,generic contradict each other: leave "
        "generic out of --queues");
  CHECK(UsageError({"--country", "auto", "--queues", "IT"}) ==
        "--queues names the country itself, which --country auto finds: use "
        "--no-generic to serve only the country found");
  CHECK(UsageError({"--no-generic"}) ==
        "--no-generic leaves this worker no queue: pass --country CC, "
        "--country auto or --queues CC");
  CHECK(UsageError({"--country", "generic", "--no-generic"}) ==
        "--no-generic leaves this worker no queue: pass --country CC, "
        "--country auto or --queues CC");
}

}  // namespace
}  // namespace tq
