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
#include "geo/cymru.h"
#include "geo/geo.h"
#include "geo/ip_address.h"
#include "geo/local_country.h"
#include "worker/command_line.h"
#include "worker/exec_runner.h"
#include "worker/worker.h"

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitFatal = 1;
constexpr uint32_t kMaxConcurrency = 1024;
// A Result must fit in one message, with room for the rest of it.
constexpr uint64_t kMaxOutputLimit = tq::kMaxMessageBytes - 1024 * 1024;

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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tq-worker: takes tasks from a tq broker and runs them"};
  const char* env_broker = std::getenv(tq::kBrokerEnvVar);
  std::string broker =
      env_broker && *env_broker ? env_broker : tq::kDefaultEndpoint;
  std::string country = "none";
  uint32_t concurrency = 1;
  std::string id;
  std::string exec;
  bool noop = false;
  bool analyse = false;
  std::string analyse_one;
  std::string options_json = "{}";
  uint32_t time_limit_ms = 0;
  std::string work_dir;
  uint64_t max_output = tq::kDefaultMaxOutputBytes;
  std::string log_level = "info";
  std::string geoip_db;
  std::string public_ip;
  std::string geo_resolver;
  std::string dns_servers;

  app.add_option("--broker", broker,
                 "broker endpoint (default: $TQ_BROKER, else " +
                     std::string(tq::kDefaultEndpoint) + ")")
      ->capture_default_str();
  app.add_option("--country", country,
                 "ISO 3166-1 alpha-2 code of the queue to serve besides "
                 "generic (e.g. IT), none for generic only, or auto: found "
                 "from this host's address by the broker's GeoIP database, "
                 "or by --geoip-db here")
      ->capture_default_str();
  app.add_option("--geoip-db", geoip_db,
                 "with --country auto: find the country here, in this "
                 "MaxMind-format database (e.g. share/tq/country.mmdb), from "
                 "--public-ip or the interfaces' public addresses");
  app.add_option("--geo-resolver", geo_resolver,
                 "with --country auto: geoip (--geoip-db, offline) or cymru "
                 "(Team Cymru's DNS service: needs DNS to the internet)")
      ->check(CLI::IsMember({"geoip", "cymru"}));
  app.add_option("--dns-server", dns_servers,
                 "for --geo-resolver cymru: DNS servers HOST:PORT,... "
                 "(default: /etc/resolv.conf)")
      ->group("");
  app.add_option("--public-ip", public_ip,
                 "with --country auto: the address to geolocate (e.g. the "
                 "NAT's), instead of the interfaces' or the one the broker "
                 "sees");
  app.add_option("--concurrency", concurrency, "tasks run at once (1..1024)")
      ->check(CLI::Range(1u, kMaxConcurrency))
      ->capture_default_str();
  app.add_option("--id", id, "worker identity (default: <hostname>-<pid>)");
  auto* exec_opt = app.add_option(
      "--exec", exec,
      "command run per task, split like a shell splits quoted words (never "
      "run through one); {url}, {outdir}, {referer}, {useragent}, {proxy} and "
      "{timeout} are replaced by the task's values, each within its word; "
      "what the command writes to {outdir} comes back in the result");
  auto* noop_opt =
      app.add_flag("--noop", noop, "complete every task at once (benchmarks)");
  auto* analyse_opt = app.add_flag(
      "--analyse", analyse,
      "run the built-in analyser on each URL (the default handler): fetch "
      "over http(s), parse the HTML, report JSON shaped like Thug's log");
  exec_opt->excludes(noop_opt);
  analyse_opt->excludes(noop_opt)->excludes(exec_opt);
  auto* work_dir_opt =
      app.add_option("--work-dir", work_dir,
                     "where per-task {outdir} directories are made (default: "
                     "$TMPDIR or /tmp, then tq-worker-<id>)");
  auto* one_opt = app.add_option(
      "--analyse-one", analyse_one,
      "analyse this one URL, print the JSON log and exit (what the worker "
      "runs per task)");
  app.add_option("--options-json", options_json,
                 "with --analyse-one: the task's options as a JSON object");
  app.add_option("--time-limit-ms", time_limit_ms,
                 "with --analyse-one: the task's time limit");
  app.add_option("--max-output", max_output,
                 "bytes of a command's stdout kept per task")
      ->check(CLI::Range(uint64_t{0}, kMaxOutputLimit))
      ->capture_default_str();
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error or off")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }

  if (one_opt->count() > 0) {
    return tq::AnalyseOneMain(analyse_one, options_json, time_limit_ms,
                              max_output);
  }

  tq::WorkerOptions options;
  options.endpoint = broker;
  options.noop = noop;
  options.max_output_bytes = max_output;
  options.handler = noop                    ? tq::Handler::kNoop
                    : exec_opt->count() > 0 ? tq::Handler::kExec
                                            : tq::Handler::kAnalyse;
  if (options.handler == tq::Handler::kAnalyse) {
    options.self_exe = SelfExe();
    if (options.self_exe.empty()) {
      return Usage("cannot find this program's path for --analyse");
    }
  }
  if (options.handler == tq::Handler::kExec) {
    auto command = tq::CommandTemplate::Parse(exec);
    if (!command.ok()) return Usage("--exec: " + command.status().message());
    options.command = std::move(command).value();
  }
  const bool country_auto = country == "auto";
  if (!country_auto &&
      (!geoip_db.empty() || !public_ip.empty() || !geo_resolver.empty()))
    return Usage(
        "--geoip-db, --geo-resolver and --public-ip go with --country auto");
  if (geo_resolver == "cymru" && !geoip_db.empty())
    return Usage("--geo-resolver cymru takes no --geoip-db");
  if (geo_resolver == "geoip" && geoip_db.empty())
    return Usage("--geo-resolver geoip needs --geoip-db FILE");
  if (!public_ip.empty()) {
    auto parsed = tq::ParseIpAddress(public_ip);
    if (!parsed.ok()) return Usage("--public-ip: " + parsed.status().message());
  }
  if (country_auto || country == "none") {
    country.clear();
  } else if (!tq::IsIsoCountryCode(country)) {
    std::string upper = country;
    for (char& c : upper) {
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    if (upper != country && tq::IsIsoCountryCode(upper)) {
      return Usage("--country '" + country +
                   "': country codes are upper case (use --country " + upper +
                   ")");
    }
    return Usage("--country '" + country +
                 "' is not an ISO 3166-1 alpha-2 country code; pass one such "
                 "as IT, or none");
  }
  if (broker.empty()) return Usage("--broker: empty endpoint");

  tq::Status logging = tq::SetupLogging("tq-worker", log_level);
  if (!logging.ok()) return Usage("--log-level: " + logging.message());

  options.identity.broker = broker;
  if (country_auto && (!geoip_db.empty() || geo_resolver == "cymru")) {
    std::unique_ptr<tq::CountryResolver> resolver;
    std::string source = "worker-geoip";
    if (geo_resolver == "cymru") {
      resolver = std::make_unique<tq::CymruResolver>(dns_servers);
      source = "cymru";
      geoip_db = "Team Cymru";
    } else {
      auto db = tq::MmdbCountryDb::Open(geoip_db);
      if (!db.ok()) return Usage("--geoip-db: " + db.status().message());
      resolver = std::move(db).value();
    }
    const auto addresses = tq::InterfaceAddresses();
    const tq::LocalCountry found =
        tq::ResolveLocalCountry(*resolver, public_ip, addresses, source);
    country = found.country;
    options.identity.country_source = found.source;
    if (country.empty()) {
      spdlog::warn("--country auto: no country from {}: {}; asking the broker",
                   geoip_db, found.source.substr(6));
    } else {
      spdlog::info("--country auto: {} from {} ({})", country, geoip_db,
                   public_ip.empty() ? "interface addresses" : public_ip);
    }
  }
  options.identity.country_auto = country_auto;
  options.identity.public_ip = public_ip;
  options.identity.country = country;
  options.identity.concurrency = concurrency;
  options.identity.hostname = Hostname();
  options.identity.pid = static_cast<uint32_t>(getpid());
  options.identity.worker_id =
      id.empty() ? options.identity.hostname + "-" + std::to_string(getpid())
                 : id;
  if (work_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    work_dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/tq-worker-" +
               options.identity.worker_id;
  }
  options.work_dir = work_dir;
  options.remove_work_dir = work_dir_opt->count() == 0;
  if (!noop) RaiseFdLimit(concurrency);
  if (options.handler == tq::Handler::kExec && !options.command.uses_url()) {
    spdlog::warn("--exec command has no {}: tasks' URLs are not passed",
                 "{url}");
  }

  // Blocked before ZeroMQ starts its threads, so the signals only ever
  // surface through the signalfd the loop polls.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  if (sigprocmask(SIG_BLOCK, &stop, nullptr) != 0) {
    spdlog::critical("cannot block signals");
    return kExitFatal;
  }
  int signal_fd = signalfd(-1, &stop, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd < 0) {
    spdlog::critical("signalfd failed");
    return kExitFatal;
  }
  signal(SIGPIPE, SIG_IGN);

  int rc;
  try {
    spdlog::info(
        "worker {} starting: broker {}, country {}, concurrency {}, "
        "handler {}",
        options.identity.worker_id, broker,
        country.empty() ? (country_auto ? "auto" : "none") : country,
        concurrency,
        noop ? "noop"
             : (options.handler == tq::Handler::kExec ? "exec" : "analyse"));
    tq::Worker worker(std::move(options), signal_fd);
    rc = worker.Run();
  } catch (const std::exception& e) {
    spdlog::critical("fatal: {}", e.what());
    rc = kExitFatal;
  }
  close(signal_fd);
  spdlog::info("exit {}", rc);
  return rc;
}
