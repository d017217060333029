#include "broker/broker_flags.h"

#include <CLI/CLI.hpp>
#include <cstdlib>

#include "common/endpoint.h"
#include "common/version.h"

namespace tq {
namespace {

Millis SecondsToMillis(double s) {
  return Millis(static_cast<int64_t>(s * 1000.0 + 0.5));
}

void AddEndpointFlags(CLI::App& app, BrokerFlags& f) {
  app.add_option("--db", f.db_path, "SQLite database file (created if missing)")
      ->capture_default_str();
  app.add_option("--listen", f.listen,
                 "ZeroMQ endpoint to bind, e.g. tcp://127.0.0.1:7070; port 0 "
                 "picks a free port (env TQ_LISTEN)")
      ->capture_default_str();
  app.add_option("--ready-file", f.ready_file,
                 "write the bound endpoint to this file once listening");
}

void AddTaskFlags(CLI::App& app, BrokerFlags& f) {
  app.add_option("--heartbeat-interval", f.heartbeat_s,
                 "seconds between heartbeats, both ways")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 3600.0));
  app.add_option("--heartbeat-liveness", f.liveness,
                 "heartbeats missed before a worker is declared lost")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_option("--max-attempts", f.max_attempts,
                 "default attempts per task before it is dead")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_option("--time-limit", f.time_limit_s,
                 "default per-task time limit in seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 86400.0));
  app.add_option(
         "--lease-grace", f.lease_grace_s,
         "seconds past a task's time limit before its lease is taken back")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--retry-backoff", f.retry_backoff_s,
                 "first retry delay in seconds after a failed attempt (doubles "
                 "each time, at most 60 s)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
}

void AddDurabilityFlags(CLI::App& app, BrokerFlags& f) {
  app.add_option("--synchronous", f.synchronous,
                 "durability: full (every acknowledgement waits for its commit "
                 "to be fsynced; the fsync runs beside the loop) or normal "
                 "(survives a broker crash, not a power loss)")
      ->capture_default_str()
      ->check(CLI::IsMember({"full", "normal"}));
  app.add_option("--commit-interval", f.commit_interval_ms,
                 "milliseconds a transaction stays open across loop turns "
                 "before its commit (0: commit every turn); acknowledgements "
                 "wait for the commit")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1000.0));
  app.add_option("--max-message-size", f.max_message,
                 "largest message accepted, in bytes")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1024), int64_t(1) << 30));
}

void AddRestFlags(CLI::App& app, BrokerFlags& f) {
  app.add_option("--geoip-db", f.geoip_db,
                 "MaxMind-format country or city database for workers that "
                 "say --country auto (placed by the address they connect "
                 "from); 'none' to disable. Default: share/tq/country.mmdb "
                 "beside the binaries' bin/ (built by deploy/build.sh from "
                 "Tor's geoip data), else the installed one");
  app.add_option("--keep-results", f.keep_results,
                 "delete finished tasks, and the stored files no kept result "
                 "references, this long after they finished: e.g. 30d, 12h, "
                 "90m, 45s; 0 keeps them forever")
      ->capture_default_str()
      ->check([](const std::string& v) {
        return ParseKeepResults(v).ok() ? std::string()
                                        : "expected a duration like 30d, 12h, "
                                          "90m, 45s";
      });
  app.add_option("--db-max-pages", f.db_max_pages,
                 "cap the database size in pages (testing a full disk)")
      ->group("");
  app.add_option("--log-level", f.log_level,
                 "trace, debug, info, warn, error or off")
      ->capture_default_str();
}

}  // namespace

std::optional<int> ParseBrokerFlags(int argc, char** argv, BrokerFlags* flags) {
  CLI::App app{
      "tq-broker: keeps the durable task queues ('generic' and one per ISO "
      "country code) in SQLite and serves workers and clients over ZeroMQ."};
  // A later flag wins, so scripts can append overrides.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  if (const char* env = std::getenv(kListenEnvVar)) flags->listen = env;
  app.set_version_flag("--version", VersionText("tq-broker"));
  AddEndpointFlags(app, *flags);
  AddTaskFlags(app, *flags);
  AddDurabilityFlags(app, *flags);
  AddRestFlags(app, *flags);
  app.footer(
      "Exit status: 0 after a clean stop (SIGTERM/SIGINT), 1 if the database "
      "cannot be opened or the endpoint bound, 2 on a usage error.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return std::nullopt;
}

Result<Millis> ParseKeepResults(const std::string& text) {
  const Status bad = Status::InvalidArgument(
      "--keep-results: expected a duration like 30d, 12h, 90m, 45s, got '" +
      text + "'");
  if (text.empty()) return bad;
  size_t used = 0;
  double n = 0;
  try {
    n = std::stod(text, &used);
  } catch (const std::exception&) {
    return bad;
  }
  if (n < 0) return bad;
  const std::string unit = text.substr(used);
  double scale = 1;
  if (unit == "" || unit == "s") {
    scale = 1;
  } else if (unit == "m") {
    scale = 60;
  } else if (unit == "h") {
    scale = 3600;
  } else if (unit == "d") {
    scale = 86400;
  } else {
    return bad;
  }
  return SecondsToMillis(n * scale);
}

Result<BrokerConfig> MakeBrokerConfig(const BrokerFlags& f) {
  if (f.synchronous != "full" && f.synchronous != "normal") {
    return Status::InvalidArgument("--synchronous: expected full or normal");
  }
  Result<Millis> keep = ParseKeepResults(f.keep_results);
  if (!keep.ok()) return keep.status();
  if (Status s = CheckEndpoint(f.listen, EndpointUse::kBind, "--listen");
      !s.ok()) {
    return s;
  }

  BrokerConfig c;
  c.db_path = f.db_path;
  c.synchronous = f.synchronous;
  c.log_level = f.log_level;
  c.geoip_db = f.geoip_db;

  c.store.synchronous_full = f.synchronous == "full";
  // Full durability without blocking the loop: the WalSyncer fsyncs.
  c.store.deferred_sync = f.synchronous == "full";
  c.store.max_page_count = f.db_max_pages;

  c.core.heartbeat_interval = SecondsToMillis(f.heartbeat_s);
  c.core.heartbeat_liveness = f.liveness;
  c.core.default_max_attempts = f.max_attempts;
  c.core.default_time_limit_ms =
      uint32_t(SecondsToMillis(f.time_limit_s).count());
  c.core.lease_grace = SecondsToMillis(f.lease_grace_s);
  c.core.retry_backoff = SecondsToMillis(f.retry_backoff_s);
  c.core.keep_results = *keep;

  c.server.listen = f.listen;
  c.server.ready_file = f.ready_file;
  c.server.max_message_bytes = f.max_message;
  c.server.commit_interval = Millis(int64_t(f.commit_interval_ms));
  return c;
}

}  // namespace tq
