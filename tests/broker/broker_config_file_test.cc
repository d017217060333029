// tq-broker --config FILE: every flag from the file, the command line over
// the file, the file over $TQ_BROKER, and the errors (exit status 2).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "broker/broker_flags.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace tq {
namespace {

// ParseBrokerFlags on `args`, with `default_config` as the default file.
std::optional<int> Parse(const std::vector<std::string>& args,
                         const std::string& default_config,
                         BrokerFlags* flags) {
  std::vector<std::string> copies = {"tq-broker"};
  copies.insert(copies.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& c : copies) argv.push_back(c.data());
  argv.push_back(nullptr);
  return ParseBrokerFlags(static_cast<int>(copies.size()), argv.data(), flags,
                          default_config);
}

constexpr const char* kEveryFlag =
    "# every tq-broker flag, none at its default\n"
    "db = /var/lib/tq/tq.db\n"
    "listen = tcp://0.0.0.0:7070\n"
    "ready-file = /run/tq/endpoint\n"
    "heartbeat-interval = 2.5\n"
    "heartbeat-liveness = 7\n"
    "max-attempts = 5\n"
    "time-limit = 600\n"
    "lease-grace = 12\n"
    "retry-backoff = 3\n"
    "synchronous = normal\n"
    "commit-interval = 20\n"
    "max-message-size = 2097152\n"
    "geoip-db = none\n"
    "keep-results = 30d\n"
    "db-max-pages = 1000\n"
    "log-level = debug\n"
    // 0.0.0.0 without --key: refused unless insecure (docs/security.md).
    "insecure = true\n";

}  // namespace

TEST_CASE("EveryBrokerFlagCanComeFromTheConfigFile", "[broker_config]") {
  testing::TempDir dir;
  testing::WriteFile(dir.File("broker.conf"), kEveryFlag);
  BrokerFlags f;
  REQUIRE_FALSE(Parse({"--config", dir.File("broker.conf")},
                      dir.File("absent.conf"), &f));
  CHECK(f.db_path == "/var/lib/tq/tq.db");
  CHECK(f.listen == "tcp://0.0.0.0:7070");
  CHECK(f.ready_file == "/run/tq/endpoint");
  CHECK(f.heartbeat_s == 2.5);
  CHECK(f.liveness == 7);
  CHECK(f.max_attempts == 5);
  CHECK(f.time_limit_s == 600);
  CHECK(f.lease_grace_s == 12);
  CHECK(f.retry_backoff_s == 3);
  CHECK(f.synchronous == "normal");
  CHECK(f.commit_interval_ms == 20);
  CHECK(f.max_message == 2097152);
  CHECK(f.geoip_db == "none");
  CHECK(f.keep_results == "30d");
  CHECK(f.db_max_pages == 1000);
  CHECK(f.log_level == "debug");
  CHECK(MakeBrokerConfig(f).ok());
}

TEST_CASE("BrokerReadsTheDefaultConfigOnlyIfPresent", "[broker_config]") {
  testing::TempDir dir;
  BrokerFlags absent;
  CHECK_FALSE(Parse({}, dir.File("broker.conf"), &absent));
  CHECK(absent.db_path == "tq.db");

  testing::WriteFile(dir.File("broker.conf"), "db = /srv/tq.db\n");
  BrokerFlags present;
  CHECK_FALSE(Parse({}, dir.File("broker.conf"), &present));
  CHECK(present.db_path == "/srv/tq.db");
}

TEST_CASE("BrokerFlagsOverrideTheFileAndTheFileOverridesTheEnvironment",
          "[broker_config]") {
  testing::TempDir dir;
  testing::WriteFile(dir.File("broker.conf"), kEveryFlag);
  setenv(kListenEnvVar, "tcp://127.0.0.1:9999", 1);
  BrokerFlags f;
  const auto rc = Parse({"--max-attempts", "2", "--config",
                         dir.File("broker.conf"), "--synchronous", "full"},
                        dir.File("absent.conf"), &f);
  BrokerFlags env_only;
  const auto env_rc = Parse({}, dir.File("absent.conf"), &env_only);
  unsetenv(kListenEnvVar);
  CHECK_FALSE(rc);
  CHECK(f.max_attempts == 2);
  CHECK(f.synchronous == "full");
  CHECK(f.time_limit_s == 600);             // from the file
  CHECK(f.listen == "tcp://0.0.0.0:7070");  // the file beats $TQ_LISTEN
  CHECK_FALSE(env_rc);
  CHECK(env_only.listen == "tcp://127.0.0.1:9999");
}

TEST_CASE("BrokerConfigErrorsAreUsageErrors", "[broker_config]") {
  testing::TempDir dir;
  BrokerFlags f;
  // A missing --config FILE, an unknown key, a value out of range.
  CHECK(Parse({"--config", dir.File("nope.conf")}, dir.File("absent.conf"),
              &f) == 2);
  testing::WriteFile(dir.File("bad.conf"), "db = x\nlisten-on = tcp://x\n");
  CHECK(Parse({"--config", dir.File("bad.conf")}, dir.File("absent.conf"),
              &f) == 2);
  CHECK(Parse({}, dir.File("bad.conf"), &f) == 2);
  testing::WriteFile(dir.File("range.conf"), "max-attempts = 1000\n");
  CHECK(Parse({"--config", dir.File("range.conf")}, dir.File("absent.conf"),
              &f) == 2);
}

}  // namespace tq
