// tq-worker --config FILE: every flag from the file, the command line over
// the file, and the analyser's child reading none.
#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "worker/worker_flags.h"

namespace tq {
namespace {

// Parses `args` as tq-worker does, with `default_config` as the default
// file: "" if accepted, else CLI11's message.
std::string Parse(const std::vector<std::string>& args,
                  const std::string& default_config, WorkerFlags* flags) {
  CLI::App app{"tq-worker"};
  AddWorkerFlags(app, flags);
  AddWorkerConfigFile(app, default_config);
  std::vector<const char*> argv = {"tq-worker"};
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("EveryWorkerFlagCanComeFromTheConfigFile", "[worker_config]") {
  testing::TempDir dir;
  testing::WriteFile(dir.File("worker-it.conf"),
                     "# every tq-worker flag but the handler's\n"
                     "broker = tcp://tq.example.org:7070\n"
                     "country = auto\n"
                     "geoip-db = /usr/share/tq/country.mmdb\n"
                     "geo-resolver = geoip\n"
                     "dns-server = \"127.0.0.1:53,127.0.0.2:53\"\n"
                     "public-ip = 203.0.113.7\n"
                     "concurrency = 8\n"
                     "id = it-1\n"
                     "work-dir = /var/lib/tq-worker\n"
                     "max-output = 1048576\n"
                     "log-level = warn\n"
                     "broker-key = /etc/tq/broker.key\n"
                     "key = /etc/tq/worker-it.key_secret\n"
                     "exec = \"/usr/bin/thug -F -u {url}\"\n");
  WorkerFlags f;
  REQUIRE(Parse({"--config", dir.File("worker-it.conf")},
                dir.File("absent.conf"), &f) == "");
  CHECK(f.broker == "tcp://tq.example.org:7070");
  CHECK(f.country == "auto");
  CHECK(f.geoip_db == "/usr/share/tq/country.mmdb");
  CHECK(f.geo_resolver == "geoip");
  CHECK(f.dns_servers == "127.0.0.1:53,127.0.0.2:53");
  CHECK(f.public_ip == "203.0.113.7");
  CHECK(f.concurrency == 8);
  CHECK(f.id == "it-1");
  CHECK(f.work_dir == "/var/lib/tq-worker");
  CHECK(f.max_output == 1048576);
  CHECK(f.log_level == "warn");
  CHECK(f.curve.broker_key == "/etc/tq/broker.key");
  CHECK(f.curve.key == "/etc/tq/worker-it.key_secret");
  CHECK(f.exec == "/usr/bin/thug -F -u {url}");

  testing::WriteFile(dir.File("noop.conf"), "noop = true\n");
  WorkerFlags noop;
  REQUIRE(Parse({"--config", dir.File("noop.conf")}, dir.File("absent.conf"),
                &noop) == "");
  CHECK(noop.noop);
  testing::WriteFile(dir.File("analyse.conf"), "analyse\n");
  WorkerFlags analyse;
  REQUIRE(Parse({"--config", dir.File("analyse.conf")}, dir.File("absent.conf"),
                &analyse) == "");
  CHECK(analyse.analyse);
}

TEST_CASE("WorkerFlagsOverrideTheFile", "[worker_config]") {
  testing::TempDir dir;
  testing::WriteFile(dir.File("worker.conf"),
                     "country = IT\nconcurrency = 4\nnoop = true\n");
  WorkerFlags f;
  REQUIRE(Parse({"--concurrency", "2"}, dir.File("worker.conf"), &f) == "");
  CHECK(f.country == "IT");
  CHECK(f.concurrency == 2);
  // A handler on the command line meets the file's: CLI11 refuses both.
  WorkerFlags clash;
  CHECK(Parse({"--exec", "echo {url}"}, dir.File("worker.conf"), &clash) ==
        "--exec excludes --noop");
}

TEST_CASE("WorkerConfigFileBeatsTheEnvironment", "[worker_config]") {
  testing::TempDir dir;
  testing::WriteFile(dir.File("worker.conf"), "broker = tcp://file:1\n");
  setenv(kBrokerEnvVar, "tcp://env:2", 1);
  WorkerFlags f = DefaultWorkerFlags();
  const std::string error = Parse({}, dir.File("worker.conf"), &f);
  unsetenv(kBrokerEnvVar);
  CHECK(error == "");
  CHECK(f.broker == "tcp://file:1");
}

TEST_CASE("WorkerConfigErrorsNameTheKeyAndLine", "[worker_config]") {
  testing::TempDir dir;
  testing::WriteFile(dir.File("worker.conf"),
                     "country = IN\n# fine so far\nthreads = 4\n");
  WorkerFlags f;
  CHECK(Parse({}, dir.File("worker.conf"), &f) ==
        dir.File("worker.conf") +
            ":3: unknown key 'threads' (keys are the long flags without their "
            "dashes; --help lists them)");
  CHECK(Parse({"--config", dir.File("missing.conf")}, dir.File("absent.conf"),
              &f) == dir.File("missing.conf") + " was not readable (missing?)");
}

TEST_CASE("AnalyserChildReadsNoConfigFile", "[worker_config]") {
  // Its parent passes all it needs; a default file it cannot parse (or one
  // meant for another instance) must not break every task.
  testing::TempDir dir;
  testing::WriteFile(dir.File("worker.conf"), "bogus = 1\nmax-output = 5\n");
  WorkerFlags f;
  CHECK(Parse({"--analyse-one", "http://127.0.0.1/"}, dir.File("worker.conf"),
              &f) == "");
  CHECK(f.analyse_one == "http://127.0.0.1/");
  CHECK(f.max_output == kDefaultMaxOutputBytes);

  // Nor can a file make the worker one.
  testing::WriteFile(dir.File("child.conf"), "analyse-one = http://x/\n");
  WorkerFlags g;
  CHECK(Parse({"--config", dir.File("child.conf")}, dir.File("absent.conf"),
              &g) == dir.File("child.conf") +
                         ":1: 'analyse-one' cannot be set in a config file");
}

}  // namespace tq
