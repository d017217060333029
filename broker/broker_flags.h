// tq-broker's command line: the flags as given, and the settings for each
// part of the broker made (and validated) from them.
#pragma once

#include <optional>
#include <string>

#include "broker/broker.h"
#include "broker/broker_server.h"
#include "broker/http_console.h"
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
  // Worker health (docs/lifecycle.md): quarantine after this many failed
  // attempts in a row, one of whose tasks then succeeded elsewhere within
  // the window; 0 never quarantines.
  uint32_t quarantine_after = 5;
  double quarantine_window_s = 600;
  double probe_backoff_s = 5;
  int64_t max_message = kMaxMessageBytes;
  int64_t db_max_pages = 0;
  double commit_interval_ms = 0;
  std::string geoip_db;  // empty: the default search; "none": no database
  std::string keep_results = "0";
  // The web console: "HOST:PORT" or "off".
  std::string http = "127.0.0.1:8080";
  bool http_given = false;  // --http was on the command line
  std::string http_token_file;
  std::string http_ready_file;
  // CURVE: the broker's secret key file and the directory of client keys.
  std::string key_file;
  std::string authorized_keys;
  bool insecure = false;  // listen beyond loopback without keys anyway
};

// Read when --config is not given, if it exists.
inline constexpr char kDefaultBrokerConfig[] = "/etc/tq/broker.conf";

// Parses argv into *flags, after the config file (--config FILE, else
// `default_config` if present; see common/config_file.h): flags win over the
// file, the file over $TQ_BROKER. Returns the status main should exit with at
// once (0 after --help, 2 on a usage error or a bad config file; CLI11 has
// printed the text), or nullopt to go on.
std::optional<int> ParseBrokerFlags(
    int argc, char** argv, BrokerFlags* flags,
    const std::string& default_config = kDefaultBrokerConfig);

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
  // CURVE: both set, or neither (then the broker is key-free: every peer has
  // every role).
  std::string key_file;
  std::string authorized_keys;
  SqliteOptions store;
  BrokerOptions core;
  ServerOptions server;
  // The web console, unless --http off. Only an --http given explicitly
  // must start; the default one is skipped (with a warning) if its port is
  // taken, so several brokers can run on one host.
  bool console = true;
  bool console_required = false;
  ConsoleOptions console_options;
};

// InvalidArgument if a flag's value makes no sense, or if the broker would
// listen beyond loopback without keys (unless --insecure).
Result<BrokerConfig> MakeBrokerConfig(const BrokerFlags& flags);

// Whether a ZeroMQ endpoint only accepts local peers: tcp:// on a loopback
// address (127.0.0.0/8, ::1, localhost, lo), ipc:// or inproc://.
bool IsLocalEndpoint(const std::string& endpoint);

}  // namespace tq
