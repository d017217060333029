#include "client/submit_flags.h"

#include <CLI/CLI.hpp>
#include <set>
#include <sstream>

#include "common/duration.h"
#include "common/endpoint.h"
#include "common/outcome.h"
#include "common/queue_name.h"

namespace tq {
namespace {

constexpr const char* kExitCodesHelp =
    "Exit codes (when several apply, the largest wins):\n"
    "  0  everything submitted (with --wait: every task done ok)\n"
    "  1  --wait: some tasks ended dead or cancelled, or were unfinished at "
    "--timeout, or (--fail-on) a done task had an outcome it names\n"
    "  2  usage error, unreadable file, or (--strict) bad lines\n"
    "  3  some lines were bad and skipped; the others were submitted\n"
    "  4  broker unreachable or refused the submit\n"
    "  5  --batch-id ID --wait without FILE: no such batch";

}  // namespace

void AddSubmitFlags(CLI::App& app, SubmitFlags* flags) {
  app.add_option("--broker", flags->broker, "broker endpoint")
      ->envname(kBrokerEnvVar)
      ->capture_default_str();
  app.add_option("FILE", flags->file,
                 "URL file, or - for standard input (none with --batch-id ID "
                 "--wait: wait for a batch already submitted)");
  app.add_option("--country", flags->countries,
                 "comma-separated queues, e.g. IT,IN (ISO 3166 codes or "
                 "'generic'); each URL goes on each. Default: generic");
  app.add_option("--batch-id", flags->batch_id,
                 "batch id (1-64 of [A-Za-z0-9._:-]); re-using one never "
                 "queues duplicates. Default: a random id");
  app.add_option("--priority", flags->priority,
                 "higher runs first within a queue")
      ->capture_default_str();
  app.add_option("--max-attempts", flags->max_attempts,
                 "attempts per task before it is dead (default: broker's)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--time-limit", flags->time_limit_s,
                 "seconds one attempt may run (default: broker's)")
      ->check(CLI::Range(0.001, 4'000'000.0));
  app.add_flag("--wait", flags->wait,
               "wait for the results and print them as JSON lines on stdout");
  app.add_option("--fail-on", flags->fail_on_list,
                 "with --wait: exit 1 if any done task has one of these "
                 "outcomes (comma-separated: unreachable, http_error, "
                 "timeout); by default a batch whose tasks are all done "
                 "exits 0 whatever their outcomes");
  app.add_option("--out", flags->out_dir,
                 "with --wait: also write each result and its files under "
                 "DIR (see tq-ctl results --out)");
  app.add_option("--layout", flags->layout, "with --out: 'tasks' or 'thug'")
      ->check(CLI::IsMember({"tasks", "thug"}))
      ->capture_default_str();
  app.add_flag("--strict", flags->strict, "submit nothing if any line is bad");
  app.add_flag("--allow-duplicates", flags->allow_duplicates,
               "queue a URL the file repeats once per line (default: once)");
  app.add_option("--option,-o", flags->options,
                 "KEY=VALUE handed to the workers with every task (repeat); "
                 "the built-in analyser reads user_agent, referer, proxy, "
                 "timeout, max_body_bytes, max_redirects, max_subresources, "
                 "retry_on_network_error, tls_verify");
  app.add_option("--timeout", flags->timeout_s,
                 "with --wait, give up after this long: seconds, or 250ms, "
                 "30s, 5m, 2h (default: none)")
      ->transform(CLI::Validator(
          [](std::string& text) -> std::string {
            auto d = ParseDuration(text);
            if (!d.ok()) return d.status().message();
            if (d->count() <= 0) return "--timeout must be positive";
            text = std::to_string(static_cast<double>(d->count()) / 1000.0);
            return "";
          },
          "DURATION"));
  app.add_option("--request-timeout", flags->request_timeout_s,
                 "seconds to wait for each broker reply (3 attempts)")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  app.add_flag("--quiet,-q", flags->quiet,
               "no summary lines or progress bar on stderr");
  app.add_option("--log-level", flags->log_level,
                 "trace, debug, info, warn, error, off")
      ->capture_default_str();
  AddCurveFlags(app, &flags->curve);
  app.footer(kExitCodesHelp);
}

Result<std::vector<std::string>> ParseCountries(const std::string& list) {
  if (list.empty()) return std::vector<std::string>{kGenericQueue};
  std::vector<std::string> queues;
  std::set<std::string> seen;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t b = item.find_first_not_of(" \t");
    size_t e = item.find_last_not_of(" \t");
    item = b == std::string::npos ? "" : item.substr(b, e - b + 1);
    if (item.empty()) {
      return Status::InvalidArgument("empty entry in --country '" + list + "'");
    }
    if (Status s = ValidateQueueName(item); !s.ok()) return s;
    if (seen.insert(item).second) queues.push_back(item);
  }
  if (queues.empty()) return Status::InvalidArgument("--country is empty");
  return queues;
}

Result<std::set<std::string>> ParseFailOn(const std::string& list) {
  std::set<std::string> names;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    const size_t b = item.find_first_not_of(" \t");
    const size_t e = item.find_last_not_of(" \t");
    if (b == std::string::npos) continue;
    item = item.substr(b, e - b + 1);
    if (!ParseOutcome(item)) {
      return Status::InvalidArgument(
          "--fail-on: unknown outcome '" + item +
          "' (expected unreachable, http_error, timeout or ok)");
    }
    names.insert(item);
  }
  return names;
}

Status ValidateSubmitFlags(const SubmitFlags& flags) {
  if (flags.file.empty() && !(flags.wait && !flags.batch_id.empty())) {
    return Status::InvalidArgument(
        "FILE is required (or --batch-id ID --wait, to wait for a batch "
        "already submitted)");
  }
  if (Status s = CheckEndpoint(flags.broker, EndpointUse::kConnect, "--broker");
      !s.ok()) {
    return s;
  }
  auto queues = ParseCountries(flags.countries);
  if (!queues.ok()) return queues.status();
  auto fail_on = ParseFailOn(flags.fail_on_list);
  if (!fail_on.ok()) return fail_on.status();
  if (!fail_on->empty() && !flags.wait) {
    return Status::InvalidArgument("--fail-on needs --wait");
  }
  if (!flags.batch_id.empty()) {
    if (Status s = ValidateBatchId(flags.batch_id); !s.ok()) return s;
  }
  return ValidateCurveFlags(flags.curve);
}

Result<ClientOptions> ClientOptionsFromFlags(const SubmitFlags& flags) {
  ClientOptions options;
  options.endpoint = flags.broker;
  options.request_timeout = SecondsToMs(flags.request_timeout_s);
  auto curve = CurveKeysFromFlags(flags.curve);
  if (!curve.ok()) return curve.status();
  options.curve = std::move(curve).value();
  return options;
}

Result<SubmitOptions> SubmitOptionsFromFlags(const SubmitFlags& flags) {
  if (Status s = ValidateSubmitFlags(flags); !s.ok()) return s;
  SubmitOptions options;
  options.queues = *ParseCountries(flags.countries);
  options.priority = flags.priority;
  options.max_attempts = flags.max_attempts;
  options.time_limit_ms =
      static_cast<uint32_t>(SecondsToMs(flags.time_limit_s).count());
  // Chosen here, not in the library, so a failed submit can say how to
  // resume it.
  options.batch_id = flags.batch_id.empty() ? NewBatchId() : flags.batch_id;
  for (const auto& kv : flags.options) {
    const size_t eq = kv.find('=');
    if (eq == 0 || eq == std::string::npos) {
      return Status::InvalidArgument("--option '" + kv +
                                     "': expected KEY=VALUE");
    }
    options.task_options[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return options;
}

std::chrono::milliseconds SecondsToMs(double s) {
  return std::chrono::milliseconds(static_cast<int64_t>(s * 1000.0 + 0.5));
}

}  // namespace tq
