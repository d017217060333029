// tq-broker: durable queues in SQLite, served over one ZeroMQ ROUTER socket.
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "broker/broker.h"
#include "broker/broker_flags.h"
#include "broker/broker_server.h"
#include "broker/http_console.h"
#include "broker/sqlite_task_store.h"
#include "broker/wal_syncer.h"
#include "common/curve_keys.h"
#include "common/log.h"
#include "geo/geo.h"

namespace {

// Exit statuses (the --help footer says them too).
constexpr int kExitCannotStart = 1;
constexpr int kExitUsage = 2;

void PrepareProcess() {
  // Signals are read from a signalfd by the loop, so block them first, before
  // any thread starts: every thread inherits the mask.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);  // reloads --authorized-keys
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
}

// The GeoIP database for --country auto; null (with a warning) when there is
// none to be found, or when the flag says 'none'.
tq::Result<std::unique_ptr<tq::MmdbCountryDb>> OpenGeoip(std::string path) {
  if (path.empty()) {
    std::vector<std::string> searched;
    path = tq::DefaultGeoipDbPath(&searched);
    if (path.empty()) {
      spdlog::warn(
          "no GeoIP database (looked for {}): workers with --country auto "
          "get no country unless they find it themselves",
          fmt::join(searched, ", "));
    }
  }
  if (path.empty() || path == "none") {
    return std::unique_ptr<tq::MmdbCountryDb>();
  }
  auto opened = tq::MmdbCountryDb::Open(path);
  if (!opened.ok()) return opened.status();
  spdlog::info("GeoIP database {} ({}) for --country auto", path,
               (*opened)->Describe());
  return std::move(opened).value();
}

// Where the console's ipc:// endpoint lives: a 0700 directory beside the
// database, one per database, so a broker killed with -9 leaves nothing new
// behind (ZeroMQ replaces a stale socket file); in $TMPDIR when that path
// would be too long for a Unix socket.
tq::Result<std::string> ConsoleDir(const std::string& db_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path db = fs::absolute(db_path, ec);
  std::string dir =
      (db.parent_path() / ("." + db.filename().string() + ".console")).string();
  if (!ec && dir.size() + sizeof("/broker") < 100) {
    if (mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return dir;
  }
  const char* tmp = std::getenv("TMPDIR");
  dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/tq-console-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) {
    return tq::Status::IoError("cannot make a directory for the console");
  }
  return dir;
}

// One broker per database: SQLite's exclusive lock, which kept a second one
// out, is off while the console reads beside the broker. (flock and SQLite's
// fcntl locks do not interact; the descriptor stays open to the end, so
// closing it cannot drop SQLite's locks.)
tq::Status LockDatabase(const std::string& db_path) {
  // Before SQLite opens it (an empty file is an empty database to SQLite).
  const int fd = open(db_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return tq::Status::IoError("cannot open " + db_path);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return tq::Status::Unavailable(db_path + " is in use by another tq-broker");
  }
  return tq::Status::Ok();  // fd kept open on purpose
}

// Binds and serves until a signal; the syncer (with --synchronous full)
// makes commits durable beside the loop.
tq::Status Serve(tq::Broker& core, const tq::Clock& clock,
                 tq::SqliteTaskStore& store, const tq::BrokerConfig& config,
                 tq::LatencyHistogram* sync_latency) {
  tq::ServerOptions options = config.server;
  options.db_path = config.db_path;
  std::unique_ptr<tq::WalSyncer> syncer;
  if (config.store.deferred_sync) {
    syncer = std::make_unique<tq::WalSyncer>(store.wal_path(), sync_latency);
    options.syncer = syncer.get();
    options.commit_count = [&store] { return store.commit_count(); };
  }
  // An idle broker truncates its WAL (busy ones stay under the size limit).
  options.on_idle = [&store] {
    if (tq::Status st = store.CheckpointIfIdle(); !st.ok()) {
      spdlog::warn("idle checkpoint: {}", st.message());
    }
  };
  // The console's clients reach the ROUTER over ipc:// in a private (0700)
  // directory: they have a ZeroMQ context of their own, which inproc://
  // cannot cross.
  // With CURVE the mechanism covers every endpoint of the ROUTER, so the
  // console gets a key pair of its own, made now and never written down,
  // admitted with the submit and admin roles (its users' tokens decide
  // what they may do).
  std::string console_dir;
  tq::CurveClientKeys console_keys;
  if (config.console) {
    auto dir = ConsoleDir(config.db_path);
    if (!dir.ok()) return dir.status();
    console_dir = *dir;
    options.also_listen.push_back("ipc://" + console_dir + "/broker");
    if (options.curve_key.has_secret()) {
      auto cert = tq::GenerateCurveCert();
      if (!cert.ok()) return cert.status();
      tq::AuthorizedKey key;
      key.name = "tq-console";
      key.public_key = cert->public_key;
      key.file = "(the web console's own key)";
      key.roles.Add(tq::Role::kSubmit);
      key.roles.Add(tq::Role::kAdmin);
      options.builtin_keys.push_back(std::move(key));
      console_keys.broker_public_key = options.curve_key.public_key;
      console_keys.client_public_key = cert->public_key;
      console_keys.client_secret_key = cert->secret_key;
    }
  }
  tq::BrokerServer server(core, clock, options);
  tq::Status st = server.Bind();
  std::unique_ptr<tq::HttpConsole> console;
  if (st.ok() && config.console) {
    tq::ConsoleOptions co = config.console_options;
    co.files_dir = store.files_dir();
    co.broker_endpoint = options.also_listen.back();
    co.curve = console_keys;
    auto started = tq::HttpConsole::Start(co);
    if (started.ok()) {
      console = std::move(*started);
    } else if (config.console_required ||
               started.status().code() != tq::Status::Code::kUnavailable) {
      st = started.status();
    } else {
      spdlog::warn("no web console: {} (give --http HOST:PORT or --http off)",
                   started.status().message());
    }
  }
  if (st.ok()) st = server.Run();
  console.reset();  // its requests to the loop end with the loop
  if (!console_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(console_dir, ec);
  }
  return st;
}

}  // namespace

int main(int argc, char** argv) {
  tq::BrokerFlags flags;
  if (auto exit_now = tq::ParseBrokerFlags(argc, argv, &flags)) {
    return *exit_now;
  }
  auto config = tq::MakeBrokerConfig(flags);
  if (!config.ok()) {
    std::fprintf(stderr, "tq-broker: %s\n", config.status().message().c_str());
    return kExitUsage;
  }
  if (auto st = tq::SetupLogging("tq-broker", config->log_level); !st.ok()) {
    std::fprintf(stderr, "tq-broker: %s\n", st.message().c_str());
    return kExitUsage;
  }
  if (!config->key_file.empty()) {
    auto key = tq::LoadSecretCurveCert(config->key_file);
    if (!key.ok()) {
      std::fprintf(stderr, "tq-broker: --key: %s\n",
                   key.status().message().c_str());
      return kExitUsage;
    }
    if (!tq::CurveAvailable()) {
      std::fprintf(stderr,
                   "tq-broker: --key: this libzmq was built without CURVE\n");
      return kExitUsage;
    }
    config->server.curve_key = std::move(key).value();
    config->server.authorized_keys_dir = config->authorized_keys;
  } else if (!tq::IsLocalEndpoint(config->server.listen)) {
    // Only with --insecure (MakeBrokerConfig refuses it otherwise).
    spdlog::warn(
        "INSECURE: listening on {} without keys (--insecure): anyone who "
        "reaches this port can take every URL, post results, submit and "
        "purge, and all of it travels in clear text. See docs/security.md.",
        config->server.listen);
  }
  PrepareProcess();

  if (auto st = LockDatabase(config->db_path); !st.ok()) {
    spdlog::critical("{}", st.message());
    return kExitCannotStart;
  }
  auto store = tq::SqliteTaskStore::Open(config->db_path, config->store);
  if (!store.ok()) {
    spdlog::critical("{}", store.status().message());
    return kExitCannotStart;
  }
  spdlog::info("database {} (synchronous={})", config->db_path,
               config->synchronous);
  auto geo = OpenGeoip(config->geoip_db);
  if (!geo.ok()) {
    spdlog::critical("{}", geo.status().message());
    return kExitCannotStart;
  }

  tq::SystemClock clock;
  config->core.country_resolver = geo->get();
  config->core.commit_latency = &(*store)->commit_latency();
  tq::LatencyHistogram sync_latency;
  if (config->store.deferred_sync) config->core.sync_latency = &sync_latency;
  tq::Broker core(**store, clock, config->core);
  if (auto st = core.Start(); !st.ok()) {
    spdlog::critical("cannot load tasks from {}: {}", config->db_path,
                     st.message());
    return kExitCannotStart;
  }
  if (auto st = Serve(core, clock, **store, *config, &sync_latency); !st.ok()) {
    spdlog::critical("{}", st.message());
    return kExitCannotStart;
  }
  spdlog::info("stopped cleanly ({} tasks pending in {})", core.pending_tasks(),
               config->db_path);
  return 0;
}
