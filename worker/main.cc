// tq-worker: takes tasks from a tq broker and runs them (see worker.h).
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>

#include "analyser/analyse_one_main.h"
#include "common/defaults.h"
#include "common/log.h"
#include "common/queue_name.h"
#include "common/version.h"
#include "geo/cymru.h"
#include "geo/geo.h"
#include "geo/ip_address.h"
#include "geo/local_country.h"
#include "worker/command_line.h"
#include "worker/exec_runner.h"
#include "worker/self_check.h"
#include "worker/worker.h"
#include "worker/worker_flags.h"

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitFatal = 1;

int Usage(const std::string& message) {
  std::fprintf(stderr, "tq-worker: %s\n", message.c_str());
  return kExitUsage;
}

// Each running command holds three fds (stdout, stderr, pidfd); the default
// soft limit of 1024 would starve --concurrency 1024.
void RaiseFdLimit(uint32_t concurrency) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  const rlim_t want = static_cast<rlim_t>(concurrency) * 3 + 256;
  if (lim.rlim_cur >= want) return;
  lim.rlim_cur =
      lim.rlim_max == RLIM_INFINITY ? want : std::min(want, lim.rlim_max);
  setrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < want) {
    spdlog::warn(
        "open file limit {} is low for --concurrency {}; raise it "
        "(ulimit -n {})",
        lim.rlim_cur, concurrency, want);
  }
}

std::string SelfExe() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

// --country auto with --geoip-db or --geo-resolver cymru: the worker finds
// its country itself. Otherwise the broker finds it, from the address it sees.
tq::Status ResolveCountry(const tq::WorkerFlags& flags,
                          tq::WorkerConfig* identity) {
  if (!identity->country_auto ||
      (flags.geoip_db.empty() && flags.geo_resolver != "cymru")) {
    return tq::Status::Ok();
  }
  std::unique_ptr<tq::CountryResolver> resolver;
  std::string source = "worker-geoip";
  std::string from = flags.geoip_db;
  if (flags.geo_resolver == "cymru") {
    resolver = std::make_unique<tq::CymruResolver>(flags.dns_servers);
    source = "cymru";
    from = "Team Cymru";
  } else {
    auto db = tq::MmdbCountryDb::Open(flags.geoip_db);
    if (!db.ok()) {
      return tq::Status::InvalidArgument("--geoip-db: " +
                                         db.status().message());
    }
    resolver = std::move(db).value();
  }
  const auto addresses = tq::InterfaceAddresses();
  const tq::LocalCountry found =
      tq::ResolveLocalCountry(*resolver, flags.public_ip, addresses, source);
  identity->country = found.country;
  identity->country_source = found.source;
  if (found.country.empty()) {
    spdlog::warn("--country auto: no country from {}: {}; asking the broker",
                 from, found.source.substr(6));
  } else {
    spdlog::info(
        "--country auto: {} from {} ({})", found.country, from,
        flags.public_ip.empty() ? "interface addresses" : flags.public_ip);
  }
  return tq::Status::Ok();
}

// What this host and process decide: the hostname and pid, and the default
// worker id and work dir made from them.
void AddHostIdentity(tq::WorkerOptions* options) {
  tq::WorkerConfig& identity = options->identity;
  identity.hostname = Hostname();
  identity.pid = static_cast<uint32_t>(getpid());
  if (identity.worker_id.empty()) {
    identity.worker_id = identity.hostname + "-" + std::to_string(getpid());
  }
  if (options->work_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    options->work_dir = std::string(tmp && *tmp ? tmp : "/tmp") +
                        "/tq-worker-" + identity.worker_id;
  }
}

// Blocked before ZeroMQ starts its threads, so the signals only ever surface
// through the signalfd the loop polls. Returns that fd, or -1 (logged).
int StopSignalFd() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  if (sigprocmask(SIG_BLOCK, &stop, nullptr) != 0) {
    spdlog::critical("cannot block signals");
    return -1;
  }
  const int signal_fd = signalfd(-1, &stop, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd < 0) spdlog::critical("signalfd failed");
  return signal_fd;
}

const char* HandlerName(tq::Handler handler) {
  switch (handler) {
    case tq::Handler::kNoop:
      return "noop";
    case tq::Handler::kExec:
      return "exec";
    case tq::Handler::kAnalyse:
      return "analyse";
  }
  return "analyse";
}

// Runs the worker until it stops; returns the process's exit code.
int RunWorker(tq::WorkerOptions options, int signal_fd) {
  signal(SIGPIPE, SIG_IGN);
  try {
    const tq::WorkerConfig& identity = options.identity;
    spdlog::info(
        "worker {} starting: broker {}{}, country {}, concurrency {}, "
        "handler {}",
        identity.worker_id, options.endpoint,
        options.curve.enabled() ? " (CURVE)" : "",
        identity.country.empty() ? (identity.country_auto ? "auto" : "none")
                                 : identity.country,
        identity.concurrency, HandlerName(options.handler));
    tq::Worker worker(std::move(options), signal_fd);
    return worker.Run();
  } catch (const std::exception& e) {
    spdlog::critical("fatal: {}", e.what());
    return kExitFatal;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tq-worker: takes tasks from a tq broker and runs them"};
  tq::WorkerFlags flags = tq::DefaultWorkerFlags();
  tq::AddWorkerFlags(app, &flags);
  tq::AddWorkerConfigFile(app);
  app.set_version_flag("--version", tq::VersionText("tq-worker"));
  const CLI::Option* one_opt = app.get_option("--analyse-one");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }

  if (one_opt->count() > 0) {
    // The child a worker starts per task of the built-in analyser.
    return tq::AnalyseOneMain(flags.analyse_one, flags.options_json,
                              flags.time_limit_ms, flags.max_output);
  }

  auto options = tq::WorkerOptionsFromFlags(flags, SelfExe());
  if (!options.ok()) return Usage(options.status().message());
  tq::Status logging = tq::SetupLogging("tq-worker", flags.log_level);
  if (!logging.ok()) return Usage("--log-level: " + logging.message());
  tq::Status country = ResolveCountry(flags, &options->identity);
  if (!country.ok()) return Usage(country.message());
  AddHostIdentity(&*options);
  if (!flags.noop) RaiseFdLimit(flags.concurrency);
  if (flags.check) {
    const uint32_t limit_ms =
        flags.time_limit_ms > 0 ? flags.time_limit_ms : 30'000;
    return tq::RunSelfCheck(*options, flags.check_url, tq::Millis(limit_ms),
                            stdout);
  }
  // A worker that cannot run its handler would fail every task it takes.
  if (tq::Status handler = tq::CheckHandler(*options); !handler.ok()) {
    return Usage(handler.message());
  }
  if (options->handler == tq::Handler::kExec && !options->command.uses_url()) {
    spdlog::warn("--exec command has no {}: tasks' URLs are not passed",
                 "{url}");
  }

  const int signal_fd = StopSignalFd();
  if (signal_fd < 0) return kExitFatal;
  const int rc = RunWorker(std::move(*options), signal_fd);
  close(signal_fd);
  spdlog::info("exit {}", rc);
  return rc;
}
