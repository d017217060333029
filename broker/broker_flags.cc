#include "broker/broker_flags.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "broker/http_access.h"
#include "common/config_file.h"
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
  app.add_option("--quarantine-after", f.quarantine_after,
                 "quarantine a worker after this many failed attempts in a "
                 "row when a task that failed there succeeded on another "
                 "worker within --quarantine-window (0: never)")
      ->capture_default_str();
  app.add_option("--quarantine-window", f.quarantine_window_s,
                 "seconds within which another worker's success proves a "
                 "failure the failing worker's fault")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 86400.0 * 7));
  app.add_option("--probe-backoff", f.probe_backoff_s,
                 "seconds before a quarantined worker gets one probe task "
                 "(doubles with each failed probe, at most 300 s)")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 3600.0));
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

void AddCurveFlags(CLI::App& app, BrokerFlags& f) {
  app.add_option("--key", f.key_file,
                 "the broker's CURVE secret key (NAME.key_secret from "
                 "tq-keygen): encrypt every connection and admit only the "
                 "keys of --authorized-keys");
  app.add_option("--authorized-keys", f.authorized_keys,
                 "directory of client public keys (NAME.key), each naming "
                 "its roles; reloaded on SIGHUP or tq-ctl reload-keys");
  app.add_flag("--insecure", f.insecure,
               "listen on a non-loopback address without keys (anyone who "
               "reaches the port may take tasks, submit and purge)");
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

void AddHttpFlags(CLI::App& app, BrokerFlags& f) {
  app.add_option("--http", f.http,
                 "web console and HTTP API address HOST:PORT (port 0 picks "
                 "one), or 'off'; off loopback it needs --http-token-file")
      ->capture_default_str();
  app.add_option("--http-token-file", f.http_token_file,
                 "lines 'ROLE TOKEN' (viewer, submit, admin): the console "
                 "then asks every request for a token");
  app.add_option("--http-ready-file", f.http_ready_file,
                 "write the console's URL to this file once listening");
}

}  // namespace

std::optional<int> ParseBrokerFlags(int argc, char** argv, BrokerFlags* flags,
                                    const std::string& default_config) {
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
  AddCurveFlags(app, *flags);
  AddRestFlags(app, *flags);
  AddConfigFile(app, default_config);
  AddHttpFlags(app, *flags);
  app.footer(
      "Exit status: 0 after a clean stop (SIGTERM/SIGINT), 1 if the database "
      "cannot be opened or the endpoint bound, 2 on a usage error (also: a "
      "non-loopback --listen without --key). SIGHUP reloads "
      "--authorized-keys.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  flags->http_given = app.count("--http") > 0;
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

bool IsLocalEndpoint(const std::string& endpoint) {
  if (endpoint.rfind("ipc://", 0) == 0 || endpoint.rfind("inproc://", 0) == 0) {
    return true;
  }
  if (endpoint.rfind("tcp://", 0) != 0) return false;
  std::string host = endpoint.substr(6);
  // tcp://[::1]:7070, tcp://127.0.0.1:7070, tcp://lo:7070
  if (const size_t colon = host.rfind(':'); colon != std::string::npos) {
    host.resize(colon);
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost" || host == "lo" || host == "::1") return true;
  // 127.0.0.0/8, in dotted quads only.
  if (host.rfind("127.", 0) != 0) return false;
  int dots = 0;
  for (char c : host) {
    if (c == '.') {
      ++dots;
    } else if (c < '0' || c > '9') {
      return false;
    }
  }
  return dots == 3;
}

Result<BrokerConfig> MakeBrokerConfig(const BrokerFlags& f) {
  if (f.key_file.empty() != f.authorized_keys.empty()) {
    return Status::InvalidArgument(
        f.key_file.empty()
            ? "--authorized-keys needs --key FILE (the broker's secret key)"
            : "--key needs --authorized-keys DIR (the keys it admits)");
  }
  if (f.key_file.empty() && !f.insecure && !IsLocalEndpoint(f.listen)) {
    return Status::InvalidArgument(
        "refusing to listen on " + f.listen +
        " without keys: anyone who reaches it could take every URL, post "
        "results, submit and purge, in clear text. Make the broker's key "
        "pair with 'tq-keygen broker --dir /etc/tq', put each client's "
        "public NAME.key (from 'tq-keygen NAME --role worker|submit|admin' "
        "on that client) in a directory, and start with --key "
        "/etc/tq/broker.key_secret --authorized-keys DIR (docs/security.md); "
        "--insecure runs without keys anyway");
  }
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
  c.key_file = f.key_file;
  c.authorized_keys = f.authorized_keys;

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
  c.core.health.quarantine_after =
      f.quarantine_after == 0 ? UINT32_MAX : f.quarantine_after;
  c.core.health.quarantine_window = SecondsToMillis(f.quarantine_window_s);
  c.core.health.probe_backoff = SecondsToMillis(f.probe_backoff_s);
  c.core.health.max_probe_backoff =
      std::max(c.core.health.probe_backoff, Millis(300'000));
  c.core.keep_results = *keep;

  c.server.listen = f.listen;
  c.server.ready_file = f.ready_file;
  c.server.max_message_bytes = f.max_message;
  c.server.commit_interval = Millis(int64_t(f.commit_interval_ms));

  c.console = f.http != "off";
  // The console reads the database through connections of its own.
  c.store.exclusive_lock = !c.console;
  if (c.console) {
    auto address = ParseHttpAddress(f.http);
    if (!address.ok()) return address.status();
    if (f.http_token_file.empty()) {
      if (Status s = CheckExposure(address->host, AccessTable()); !s.ok()) {
        return s;
      }
    }
  }
  c.console_required = f.http_given;
  c.console_options.address = f.http;
  c.console_options.token_file = f.http_token_file;
  c.console_options.ready_file = f.http_ready_file;
  c.console_options.db_path = f.db_path;
  return c;
}

}  // namespace tq
