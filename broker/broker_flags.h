// tq-broker's command line: the flags as given, and the settings for each
// part of the broker made (and validated) from them.
#pragma once

#include <optional>
#include <string>

#include "broker/broker.h"
#include "broker/broker_server.h"
#include "broker/sqlite_task_store.h"
#include "common/defaults.h"
#include "common/status.h"

namespace tq {

// The flags, with their defaults, as CLI11 fills them in.
struct BrokerFlags {
  std::string db_path = "tq.db";
  std::string listen = kDefaultEndpoint;  // $TQ_LISTEN overrides the default
  std::string ready_file;
  std::string log_level = "info";
  std::string synchronous = "full";
  double heartbeat_s = kDefaultHeartbeatIntervalMs / 1000.0;
  uint32_t liveness = kDefaultHeartbeatLiveness;
  uint32_t max_attempts = kDefaultMaxAttempts;
  double time_limit_s = kDefaultTimeLimitMs / 1000.0;
  double lease_grace_s = kLeaseGraceMs / 1000.0;
  double retry_backoff_s = kDefaultRetryBackoffMs / 1000.0;
  int64_t max_message = kMaxMessageBytes;
  int64_t db_max_pages = 0;
  double commit_interval_ms = 0;
  std::string geoip_db;  // empty: the default search; "none": no database
  std::string keep_results = "0";
};

// Parses argv into *flags. Returns the status main should exit with at once
// (0 after --help, 2 on a usage error; CLI11 has printed the text), or
// nullopt to go on.
std::optional<int> ParseBrokerFlags(int argc, char** argv, BrokerFlags* flags);

// "30d", "12h", "90m", "45s" or plain seconds; 0 keeps results forever.
Result<Millis> ParseKeepResults(const std::string& text);

// What each part of the broker is built with. The pointers the options hold
// (the core's country resolver, the server's syncer) are left null: main
// sets them once it has opened what they point to.
struct BrokerConfig {
  std::string db_path;
  std::string synchronous;  // "full" or "normal", for the log
  std::string log_level;
  std::string geoip_db;
  SqliteOptions store;
  BrokerOptions core;
  ServerOptions server;
};

// InvalidArgument if a flag's value makes no sense.
Result<BrokerConfig> MakeBrokerConfig(const BrokerFlags& flags);

}  // namespace tq
