#include "worker/worker_flags.h"

#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdlib>
#include <utility>

#include "common/config_file.h"
#include "common/country_names.h"
#include "common/endpoint.h"
#include "common/queue_name.h"
#include "geo/ip_address.h"
#include "worker/command_line.h"

namespace tq {
namespace {

Status CountryCodeError(const std::string& country,
                        const std::string& flag = "--country") {
  std::string upper = country;
  for (char& c : upper) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (upper != country && IsIsoCountryCode(upper)) {
    return Status::InvalidArgument(flag + " '" + country +
                                   "': country codes are upper case (use " +
                                   flag + " " + upper + ")");
  }
  if (auto code = CountryCodeForName(country)) {
    return Status::InvalidArgument(
        flag + " '" + country +
        "' is not an ISO 3166-1 alpha-2 country code (use " + flag + " " +
        *code + ")");
  }
  return Status::InvalidArgument(
      flag + " '" + country +
      "' is not an ISO 3166-1 alpha-2 country code; pass one such as IT, or "
      "generic");
}

// --queues as given: the country it names ("" for none) and whether it
// names generic.
struct QueueList {
  std::string country;
  bool generic = false;
};

Result<QueueList> ParseQueueList(const std::string& text) {
  QueueList list;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string name = text.substr(start, end - start);
    while (!name.empty() && name.front() == ' ') name.erase(0, 1);
    while (!name.empty() && name.back() == ' ') name.pop_back();
    start = end + 1;
    if (name.empty()) {
      return Status::InvalidArgument("--queues '" + text +
                                     "': an empty queue name; pass e.g. "
                                     "--queues IT or --queues IT,generic");
    }
    if (name == kGenericQueue) {
      if (list.generic) {
        return Status::InvalidArgument("--queues names generic twice");
      }
      list.generic = true;
      continue;
    }
    if (!IsIsoCountryCode(name)) return CountryCodeError(name, "--queues");
    if (name == list.country) {
      return Status::InvalidArgument("--queues names " + name + " twice");
    }
    if (!list.country.empty()) {
      return Status::InvalidArgument(
          "--queues names two countries (" + list.country + ", " + name +
          "): a worker serves the queue of its own country only");
    }
    list.country = name;
  }
  return list;
}

// The handler part of the options: which one, and what it runs.
Status SetHandler(const WorkerFlags& flags, const std::string& self_exe,
                  WorkerOptions* options) {
  options->noop = flags.noop;
  options->handler = flags.noop   ? Handler::kNoop
                     : flags.exec ? Handler::kExec
                                  : Handler::kAnalyse;
  if (options->handler == Handler::kAnalyse) {
    if (self_exe.empty()) {
      return Status::InvalidArgument(
          "cannot find this program's path for --analyse");
    }
    options->self_exe = self_exe;
  }
  if (options->handler == Handler::kExec) {
    auto command = CommandTemplate::Parse(*flags.exec);
    if (!command.ok()) {
      return Status::InvalidArgument("--exec: " + command.status().message());
    }
    options->command = std::move(command).value();
  }
  return Status::Ok();
}

}  // namespace

WorkerFlags DefaultWorkerFlags() {
  WorkerFlags flags;
  const char* env_broker = std::getenv(kBrokerEnvVar);
  if (env_broker && *env_broker) flags.broker = env_broker;
  return flags;
}

void AddWorkerFlags(CLI::App& app, WorkerFlags* flags) {
  app.add_option("--broker", flags->broker,
                 "broker endpoint (default: $TQ_BROKER, else " +
                     std::string(kDefaultEndpoint) + ")")
      ->capture_default_str();
  app.add_option(
         "--country", flags->country,
         "ISO 3166-1 alpha-2 code of the queue to serve besides "
         "generic (e.g. IT), none or generic for generic only, or auto: found "
         "from this host's address by the broker's GeoIP database, "
         "or by --geoip-db here")
      ->capture_default_str();
  app.add_option("--queues", flags->queues,
                 "serve only these queues, comma-separated: a country code "
                 "(this worker's country; sets --country) and/or generic, "
                 "e.g. IT or IT,generic (default: the --country queue and "
                 "generic)");
  app.add_flag("--no-generic", flags->no_generic,
               "do not serve the generic queue: only the country's (needs "
               "--country CC, --country auto or --queues CC)");
  app.add_option("--geoip-db", flags->geoip_db,
                 "with --country auto: find the country here, in this "
                 "MaxMind-format database (e.g. share/tq/country.mmdb), from "
                 "--public-ip or the interfaces' public addresses");
  app.add_option("--geo-resolver", flags->geo_resolver,
                 "with --country auto: geoip (--geoip-db, offline) or cymru "
                 "(Team Cymru's DNS service: needs DNS to the internet)")
      ->check(CLI::IsMember({"geoip", "cymru"}));
  app.add_option("--dns-server", flags->dns_servers,
                 "for --geo-resolver cymru: DNS servers HOST:PORT,... "
                 "(default: /etc/resolv.conf)")
      ->group("");
  app.add_option("--public-ip", flags->public_ip,
                 "with --country auto: the address to geolocate (e.g. the "
                 "NAT's), instead of the interfaces' or the one the broker "
                 "sees");
  app.add_option("--concurrency", flags->concurrency,
                 "tasks run at once (1..1024)")
      ->check(CLI::Range(1u, kMaxWorkerConcurrency))
      ->capture_default_str();
  app.add_option("--id", flags->id,
                 "worker identity (default: <hostname>-<pid>)");
  auto* exec_opt = app.add_option(
      "--exec", flags->exec,
      "command run per task, split like a shell splits quoted words (never "
      "run through one); {url}, {outdir}, {referer}, {useragent}, {proxy} and "
      "{timeout} are replaced by the task's values, each within its word; "
      "what the command writes to {outdir} comes back in the result. The "
      "program must be on PATH (or a path) and executable, else the worker "
      "exits 2. Exit status 0: done; 3: done, target unreachable (outcome "
      "unreachable); other: a failed attempt. A JSON object on stdout may "
      "also set \"outcome\" (ok, unreachable, http_error, timeout) and "
      "\"outcome_reason\"");
  auto* noop_opt = app.add_flag("--noop", flags->noop,
                                "complete every task at once (benchmarks)");
  auto* analyse_opt = app.add_flag(
      "--analyse", flags->analyse,
      "run the built-in analyser on each URL (the default handler): fetch "
      "over http(s), parse the HTML, report JSON shaped like Thug's log");
  app.add_flag("--check", flags->check,
               "check the handler (--exec's program, or --analyse's fetcher "
               "and work dir), run one probe task with --check-url, print a "
               "verdict and exit: 0 pass, 2 fail. Does not contact the "
               "broker");
  app.add_option("--check-url", flags->check_url,
                 "with --check: a URL the handler must analyse with outcome "
                 "ok");
  exec_opt->excludes(noop_opt);
  analyse_opt->excludes(noop_opt)->excludes(exec_opt);
  app.add_option("--work-dir", flags->work_dir,
                 "where per-task {outdir} directories are made (default: "
                 "$TMPDIR or /tmp, then tq-worker-<id>)");
  app.add_option("--analyse-one", flags->analyse_one,
                 "analyse this one URL, print the JSON log and exit (what the "
                 "worker runs per task)");
  app.add_option("--options-json", flags->options_json,
                 "with --analyse-one: the task's options as a JSON object");
  app.add_option("--time-limit-ms", flags->time_limit_ms,
                 "with --analyse-one: the task's time limit");
  app.add_option("--max-output", flags->max_output,
                 "bytes of a command's stdout kept per task")
      ->check(CLI::Range(uint64_t{0}, kMaxWorkerOutputLimit))
      ->capture_default_str();
  app.add_option("--log-level", flags->log_level,
                 "trace, debug, info, warn, error or off")
      ->capture_default_str();
  AddCurveFlags(app, &flags->curve);
}

void AddWorkerConfigFile(CLI::App& app, const std::string& default_path) {
  // The analyser child's own flags: a file that set them would turn the
  // worker into one analysis.
  for (const char* child :
       {"--analyse-one", "--options-json", "--time-limit-ms"}) {
    if (CLI::Option* opt = app.get_option_no_throw(child)) {
      opt->configurable(false);
    }
  }
  AddConfigFile(app, default_path, "--analyse-one");
}

Status ValidateWorkerFlags(const WorkerFlags& flags) {
  const bool country_auto = flags.country == "auto";
  if (!country_auto && (!flags.geoip_db.empty() || !flags.public_ip.empty() ||
                        !flags.geo_resolver.empty())) {
    return Status::InvalidArgument(
        "--geoip-db, --geo-resolver and --public-ip go with --country auto");
  }
  if (flags.geo_resolver == "cymru" && !flags.geoip_db.empty()) {
    return Status::InvalidArgument("--geo-resolver cymru takes no --geoip-db");
  }
  if (flags.geo_resolver == "geoip" && flags.geoip_db.empty()) {
    return Status::InvalidArgument(
        "--geo-resolver geoip needs --geoip-db FILE");
  }
  if (!flags.public_ip.empty()) {
    auto parsed = ParseIpAddress(flags.public_ip);
    if (!parsed.ok()) {
      return Status::InvalidArgument("--public-ip: " +
                                     parsed.status().message());
    }
  }
  if (!country_auto && flags.country != "none" &&
      flags.country != kGenericQueue && !IsIsoCountryCode(flags.country)) {
    return CountryCodeError(flags.country);
  }
  const bool country_given = IsIsoCountryCode(flags.country);
  if (!flags.queues.empty()) {
    if (country_auto) {
      return Status::InvalidArgument(
          "--queues names the country itself, which --country auto finds: "
          "use --no-generic to serve only the country found");
    }
    Result<QueueList> list = ParseQueueList(flags.queues);
    if (!list.ok()) return list.status();
    if (country_given && list->country != flags.country) {
      return Status::InvalidArgument(
          "--queues " + flags.queues + " leaves out the --country " +
          flags.country + " queue: add " + flags.country +
          " to --queues, or drop --country");
    }
    if (flags.no_generic && list->generic) {
      return Status::InvalidArgument(
          "--no-generic and --queues " + flags.queues +
          " contradict each other: leave generic out of --queues");
    }
  } else if (flags.no_generic && !country_given && !country_auto) {
    return Status::InvalidArgument(
        "--no-generic leaves this worker no queue: pass --country CC, "
        "--country auto or --queues CC");
  }
  if (Status s = CheckEndpoint(flags.broker, EndpointUse::kConnect, "--broker");
      !s.ok()) {
    return s;
  }
  return ValidateCurveFlags(flags.curve);
}

Result<WorkerOptions> WorkerOptionsFromFlags(const WorkerFlags& flags,
                                             const std::string& self_exe) {
  WorkerOptions options;
  if (Status s = SetHandler(flags, self_exe, &options); !s.ok()) return s;
  if (Status s = ValidateWorkerFlags(flags); !s.ok()) return s;
  auto curve = CurveKeysFromFlags(flags.curve);
  if (!curve.ok()) return curve.status();
  options.curve = std::move(curve).value();
  options.endpoint = flags.broker;
  options.max_output_bytes = flags.max_output;
  options.work_dir = flags.work_dir.value_or("");
  options.remove_work_dir = !flags.work_dir.has_value();
  WorkerConfig& identity = options.identity;
  identity.broker = flags.broker;
  identity.country_auto = flags.country == "auto";
  identity.country = identity.country_auto || flags.country == "none" ||
                             flags.country == kGenericQueue
                         ? ""
                         : flags.country;
  identity.public_ip = flags.public_ip;
  identity.no_generic = flags.no_generic;
  if (!flags.queues.empty()) {
    const QueueList list = *ParseQueueList(flags.queues);  // validated above
    identity.country = list.country;
    identity.no_generic = !list.generic;
  }
  identity.concurrency = flags.concurrency;
  identity.worker_id = flags.id;
  return options;
}

}  // namespace tq
