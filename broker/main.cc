// tq-broker: durable queues in SQLite, served over one ZeroMQ ROUTER socket.
#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <string>

#include "broker/broker.h"
#include "broker/broker_server.h"
#include "broker/sqlite_task_store.h"
#include "broker/wal_syncer.h"
#include "common/log.h"
#include "geo/geo.h"

namespace {

tq::Millis SecondsToMillis(double s) {
  return tq::Millis(static_cast<int64_t>(s * 1000.0 + 0.5));
}

// "30d", "12h", "90m", "45s" or plain seconds; 0 keeps results forever.
bool ParseKeep(const std::string& text, tq::Millis* out) {
  if (text.empty()) return false;
  size_t used = 0;
  double n = 0;
  try {
    n = std::stod(text, &used);
  } catch (const std::exception&) {
    return false;
  }
  if (n < 0) return false;
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
    return false;
  }
  *out = SecondsToMillis(n * scale);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "tq-broker: keeps the durable task queues ('generic' and one per ISO "
      "country code) in SQLite and serves workers and clients over ZeroMQ."};
  // A later flag wins, so scripts can append overrides.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::string db_path = "tq.db";
  std::string listen = tq::kDefaultEndpoint;
  if (const char* env = std::getenv(tq::kBrokerEnvVar)) listen = env;
  std::string ready_file;
  std::string log_level = "info";
  std::string synchronous = "full";
  double heartbeat_s = tq::kDefaultHeartbeatIntervalMs / 1000.0;
  uint32_t liveness = tq::kDefaultHeartbeatLiveness;
  uint32_t max_attempts = tq::kDefaultMaxAttempts;
  double time_limit_s = tq::kDefaultTimeLimitMs / 1000.0;
  double lease_grace_s = tq::kLeaseGraceMs / 1000.0;
  double retry_backoff_s = tq::kDefaultRetryBackoffMs / 1000.0;
  int64_t max_message = tq::kMaxMessageBytes;
  int64_t db_max_pages = 0;
  double commit_interval_ms = 0;
  std::string geoip_db;
  std::string keep_results = "0";

  app.add_option("--db", db_path, "SQLite database file (created if missing)")
      ->capture_default_str();
  app.add_option("--listen", listen,
                 "ZeroMQ endpoint to bind, e.g. tcp://127.0.0.1:7070; port 0 "
                 "picks a free port (env TQ_BROKER)")
      ->capture_default_str();
  app.add_option("--ready-file", ready_file,
                 "write the bound endpoint to this file once listening");
  app.add_option("--heartbeat-interval", heartbeat_s,
                 "seconds between heartbeats, both ways")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 3600.0));
  app.add_option("--heartbeat-liveness", liveness,
                 "heartbeats missed before a worker is declared lost")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_option("--max-attempts", max_attempts,
                 "default attempts per task before it is dead")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_option("--time-limit", time_limit_s,
                 "default per-task time limit in seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 86400.0));
  app.add_option(
         "--lease-grace", lease_grace_s,
         "seconds past a task's time limit before its lease is taken back")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--retry-backoff", retry_backoff_s,
                 "first retry delay in seconds after a failed attempt (doubles "
                 "each time, at most 60 s)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--synchronous", synchronous,
                 "durability: full (every acknowledgement waits for its commit "
                 "to be fsynced; the fsync runs beside the loop) or normal "
                 "(survives a broker crash, not a power loss)")
      ->capture_default_str()
      ->check(CLI::IsMember({"full", "normal"}));
  app.add_option("--commit-interval", commit_interval_ms,
                 "milliseconds a transaction stays open across loop turns "
                 "before its commit (0: commit every turn); acknowledgements "
                 "wait for the commit")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1000.0));
  app.add_option("--max-message-size", max_message,
                 "largest message accepted, in bytes")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1024), int64_t(1) << 30));
  app.add_option("--geoip-db", geoip_db,
                 "MaxMind-format country or city database for workers that "
                 "say --country auto (placed by the address they connect "
                 "from); 'none' to disable. Default: share/tq/country.mmdb "
                 "beside the binaries' bin/ (built by deploy/build.sh from "
                 "Tor's geoip data), else the installed one");
  app.add_option("--keep-results", keep_results,
                 "delete finished tasks, and the stored files no kept result "
                 "references, this long after they finished: e.g. 30d, 12h, "
                 "90m, 45s; 0 keeps them forever")
      ->capture_default_str()
      ->check([](const std::string& v) {
        tq::Millis m{0};
        return ParseKeep(v, &m) ? std::string()
                                : "expected a duration like 30d, 12h, 90m, "
                                  "45s";
      });
  app.add_option("--db-max-pages", db_max_pages,
                 "cap the database size in pages (testing a full disk)")
      ->group("");
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error or off")
      ->capture_default_str();
  app.footer(
      "Exit status: 0 after a clean stop (SIGTERM/SIGINT), 1 if the database "
      "cannot be opened or the endpoint bound, 2 on a usage error.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (auto st = tq::SetupLogging("tq-broker", log_level); !st.ok()) {
    std::fprintf(stderr, "tq-broker: %s\n", st.message().c_str());
    return 2;
  }
  // Signals are read from a signalfd by the loop, so block them first.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);

  // Keep freed heap instead of returning it with brk() on every turn: the
  // per-turn buffers (messages, statements) would otherwise make the heap
  // grow and shrink thousands of times a second.
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_MMAP_THRESHOLD, 16 << 20);

  // One descriptor per connected peer: allow as many as the hard limit does.
  if (rlimit fds;
      getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur < fds.rlim_max) {
    fds.rlim_cur = fds.rlim_max;
    setrlimit(RLIMIT_NOFILE, &fds);
  }

  tq::SqliteOptions store_options;
  store_options.synchronous_full = synchronous == "full";
  store_options.deferred_sync = synchronous == "full";
  store_options.max_page_count = db_max_pages;
  auto store = tq::SqliteTaskStore::Open(db_path, store_options);
  if (!store.ok()) {
    spdlog::critical("{}", store.status().message());
    return 1;
  }
  spdlog::info("database {} (synchronous={})", db_path, synchronous);

  std::unique_ptr<tq::MmdbCountryDb> geo;
  if (geoip_db.empty()) {
    std::vector<std::string> searched;
    geoip_db = tq::DefaultGeoipDbPath(&searched);
    if (geoip_db.empty()) {
      spdlog::warn(
          "no GeoIP database (looked for {}): workers with --country auto "
          "get no country unless they find it themselves",
          fmt::join(searched, ", "));
    }
  }
  if (!geoip_db.empty() && geoip_db != "none") {
    auto opened = tq::MmdbCountryDb::Open(geoip_db);
    if (!opened.ok()) {
      spdlog::critical("{}", opened.status().message());
      return 1;
    }
    geo = std::move(opened).value();
    spdlog::info("GeoIP database {} ({}) for --country auto", geoip_db,
                 geo->Describe());
  }

  tq::SystemClock clock;
  tq::BrokerOptions options;
  options.country_resolver = geo.get();
  options.heartbeat_interval = SecondsToMillis(heartbeat_s);
  options.heartbeat_liveness = liveness;
  options.default_max_attempts = max_attempts;
  options.default_time_limit_ms =
      uint32_t(SecondsToMillis(time_limit_s).count());
  options.lease_grace = SecondsToMillis(lease_grace_s);
  options.retry_backoff = SecondsToMillis(retry_backoff_s);
  ParseKeep(keep_results, &options.keep_results);
  tq::Broker core(**store, clock, options);
  if (auto st = core.Start(); !st.ok()) {
    spdlog::critical("cannot load tasks from {}: {}", db_path, st.message());
    return 1;
  }

  std::unique_ptr<tq::WalSyncer> syncer;
  tq::ServerOptions server_options;
  if (store_options.deferred_sync) {
    syncer = std::make_unique<tq::WalSyncer>((*store)->wal_path());
    server_options.syncer = syncer.get();
    server_options.commit_count = [&store] { return (*store)->commit_count(); };
  }
  server_options.listen = listen;
  server_options.ready_file = ready_file;
  server_options.max_message_bytes = max_message;
  server_options.commit_interval = tq::Millis(int64_t(commit_interval_ms));
  tq::BrokerServer server(core, server_options);
  if (auto st = server.Bind(); !st.ok()) {
    spdlog::critical("{}", st.message());
    return 1;
  }
  if (auto st = server.Run(); !st.ok()) {
    spdlog::critical("{}", st.message());
    return 1;
  }
  spdlog::info("stopped cleanly ({} tasks pending in {})", core.pending_tasks(),
               db_path);
  return 0;
}
