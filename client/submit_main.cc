// tq-submit: queue a file of URLs as one batch, optionally wait for results.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "client/exit_codes.h"
#include "client/progress_line.h"
#include "client/result_files.h"
#include "client/url_file.h"
#include "common/defaults.h"
#include "common/log.h"
#include "common/queue_name.h"
#include "tq/client.h"

namespace tq {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kProgram = "tq-submit";
// "No deadline": ten years, far from steady_clock overflow.
constexpr milliseconds kForever = std::chrono::hours(24 * 365 * 10);
constexpr milliseconds kRedrawInterval{100};

constexpr const char* kExitCodesHelp =
    "Exit codes (when several apply, the largest wins):\n"
    "  0  everything submitted (with --wait: every task done ok)\n"
    "  1  --wait: some tasks ended dead or cancelled, or were unfinished at "
    "--timeout\n"
    "  2  usage error, unreadable file, or (--strict) bad lines\n"
    "  3  some lines were bad and skipped; the others were submitted\n"
    "  4  broker unreachable or refused the submit";

struct Args {
  std::string broker = kDefaultEndpoint;
  std::string file;
  std::string countries;
  std::string batch_id;
  int32_t priority = 0;
  uint32_t max_attempts = 0;
  double time_limit_s = 0;
  bool wait = false;
  bool strict = false;
  double timeout_s = 0;
  double request_timeout_s = 5;
  bool quiet = false;
  std::string log_level = "warn";
  std::vector<std::string> options;  // KEY=VALUE, handed to the workers
  std::string out_dir;               // --wait --out: results and files
  std::string layout = "tasks";
};

void Fail(const std::string& message) {
  std::cerr << kProgram << ": " << message << "\n";
}

// "IT, IN" -> {"IT", "IN"}, duplicates dropped, order kept.
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

// Written from the SIGINT handler: only async-signal-safe calls.
volatile sig_atomic_t g_bar_visible = 0;

void OnInterrupt(int sig) {
  if (g_bar_visible) {
    static const char kClear[] = "\r\033[K";
    (void)!write(STDERR_FILENO, kClear, sizeof kClear - 1);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

// The progress bar on stderr, redrawn in place while results stream.
class ProgressBar {
 public:
  ProgressBar(bool enabled, bool stdout_shares_terminal)
      : enabled_(enabled), clear_for_stdout_(stdout_shares_terminal) {
    if (enabled_) signal(SIGINT, OnInterrupt);
  }

  void Update(const BatchProgress& p) {
    if (!enabled_) return;
    Clock::time_point now = Clock::now();
    if (!started_) {
      started_ = true;
      start_ = now;
      base_finished_ = p.finished();
    }
    if (visible_ && now - last_draw_ < kRedrawInterval && !p.complete()) {
      return;
    }
    double elapsed = std::chrono::duration<double>(now - start_).count();
    double rate =
        elapsed >= 0.5
            ? static_cast<double>(p.finished() - base_finished_) / elapsed
            : 0.0;
    std::string line = FormatProgressLine(p, rate);
    fprintf(stderr, "\r%s\033[K", line.c_str());
    fflush(stderr);
    visible_ = true;
    g_bar_visible = 1;
    last_draw_ = now;
  }

  // Before a line goes to stdout: keep it from landing on the bar.
  void MakeRoomForStdout() {
    if (visible_ && clear_for_stdout_) Clear();
  }

  void Clear() {
    if (!visible_) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    visible_ = false;
    g_bar_visible = 0;
  }

 private:
  const bool enabled_;
  const bool clear_for_stdout_;
  bool started_ = false;
  bool visible_ = false;
  Clock::time_point start_;
  Clock::time_point last_draw_;
  uint64_t base_finished_ = 0;
};

milliseconds SecondsToMs(double s) {
  return milliseconds(static_cast<int64_t>(s * 1000.0 + 0.5));
}

int Run(const Args& args) {
  if (Status s = SetupLogging(kProgram, args.log_level); !s.ok()) {
    Fail(s.message());
    return kExitUsage;
  }
  auto queues = ParseCountries(args.countries);
  if (!queues.ok()) {
    Fail(queues.status().message());
    return kExitUsage;
  }
  if (!args.batch_id.empty()) {
    if (Status s = ValidateBatchId(args.batch_id); !s.ok()) {
      Fail(s.message());
      return kExitUsage;
    }
  }

  // Read the URL file.
  const bool from_stdin = args.file == "-";
  const std::string shown_name = from_stdin ? "<stdin>" : args.file;
  UrlFile parsed;
  if (from_stdin) {
    parsed = ParseUrlFile(std::cin);
    if (std::cin.bad()) {
      Fail("cannot read standard input");
      return kExitUsage;
    }
  } else {
    std::error_code ec;
    if (std::filesystem::is_directory(args.file, ec)) {
      Fail("cannot read " + args.file + ": is a directory");
      return kExitUsage;
    }
    std::ifstream in(args.file, std::ios::binary);
    if (!in) {
      Fail("cannot open " + args.file + ": " + std::strerror(errno));
      return kExitUsage;
    }
    parsed = ParseUrlFile(in);
    if (in.bad()) {
      Fail("cannot read " + args.file);
      return kExitUsage;
    }
  }
  if (!parsed.status.ok()) {
    Fail(shown_name + " " + parsed.status.message() + "; nothing submitted");
    return kExitUsage;
  }
  for (const auto& bad : parsed.bad) {
    std::cerr << shown_name << ":" << bad.line_no << ": " << bad.reason << "\n";
  }
  int exit_code = kExitOk;
  if (!parsed.bad.empty()) {
    if (args.strict) {
      Fail(std::to_string(parsed.bad.size()) + " bad line" +
           (parsed.bad.size() == 1 ? "" : "s") +
           "; nothing submitted (--strict)");
      return kExitUsage;
    }
    exit_code = kExitBadLines;
  }
  if (parsed.urls.empty()) {
    Fail("no URLs to submit in " + shown_name);
    return kExitUsage;
  }

  // Submit. The id is chosen here, not in the library, so a failed submit
  // can say how to resume it.
  SubmitOptions options;
  options.queues = *queues;
  options.priority = args.priority;
  options.max_attempts = args.max_attempts;
  options.time_limit_ms =
      static_cast<uint32_t>(SecondsToMs(args.time_limit_s).count());
  options.batch_id = args.batch_id.empty() ? NewBatchId() : args.batch_id;
  for (const auto& kv : args.options) {
    const size_t eq = kv.find('=');
    if (eq == 0 || eq == std::string::npos) {
      Fail("--option '" + kv + "': expected KEY=VALUE");
      return kExitUsage;
    }
    options.task_options[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  std::vector<std::string> urls;
  urls.reserve(parsed.urls.size());
  for (const auto& line : parsed.urls) urls.push_back(line.url);

  ClientOptions client_options;
  client_options.endpoint = args.broker;
  client_options.request_timeout = SecondsToMs(args.request_timeout_s);
  auto client = Client::Connect(client_options);
  if (!client.ok()) {
    Fail(client.status().message());
    return kExitUsage;  // a malformed endpoint is a usage error
  }
  auto receipt = (*client)->Submit(urls, options);
  if (!receipt.ok()) {
    Fail("submit failed: " + receipt.status().message() +
         " (re-running with --batch-id " + options.batch_id +
         " resumes without duplicates)");
    return kExitBroker;
  }
  for (const auto& e : receipt->errors) {
    std::cerr << shown_name << ":" << parsed.urls[e.url_index].line_no << ": "
              << e.reason << " (queue " << e.queue << ")\n";
    exit_code = std::max(exit_code, kExitBadLines);
  }
  const uint64_t held = receipt->accepted + receipt->duplicates;
  if (args.wait) {
    if (!args.quiet) {
      std::cerr << "batch " << receipt->batch_id << ": " << held
                << " tasks queued\n";
    }
  } else {
    std::cout << receipt->batch_id << std::endl;
  }
  if (!args.quiet) {
    std::cerr << "submitted " << held << " tasks (" << receipt->duplicates
              << " duplicates) in batch " << receipt->batch_id << "\n";
  }
  if (!args.wait || held == 0) return exit_code;

  // Wait, streaming results as JSON lines.
  const bool draw = !args.quiet && isatty(STDERR_FILENO);
  const OutLayout layout = *ParseOutLayout(args.layout);
  ProgressBar bar(draw, isatty(STDOUT_FILENO));
  uint64_t seen = 0, failed = 0;
  BatchProgress last;
  const milliseconds deadline =
      args.timeout_s > 0 ? SecondsToMs(args.timeout_s) : kForever;
  const Clock::time_point wait_end = Clock::now() + deadline;
  Status waited = (*client)->WaitForResults(
      receipt->batch_id,
      [&](const TaskResult& r) {
        bar.MakeRoomForStdout();
        std::cout << ToJsonLine(r) << std::endl;  // flushed per line
        ++seen;
        if (!args.out_dir.empty()) {
          if (Status s = WriteResult(args.out_dir, layout, r); !s.ok()) {
            Fail(s.message());
            exit_code = std::max(exit_code, kExitTasksFailed);
          }
        }
        if (r.state != "done" || !r.ok) ++failed;
        return true;
      },
      [&](const BatchProgress& p) {
        last = p;
        bar.Update(p);
      },
      deadline, /*with_files=*/!args.out_dir.empty());
  bar.Clear();
  if (failed > 0) exit_code = std::max(exit_code, kExitTasksFailed);
  if (!waited.ok()) {
    if (Clock::now() >= wait_end) {
      char shown[32];
      snprintf(shown, sizeof shown, "%g", args.timeout_s);
      Fail(std::string("gave up waiting after ") + shown +
           " s: " + std::to_string(last.total - last.finished()) + " of " +
           std::to_string(last.total) + " tasks unfinished");
      return std::max(exit_code, kExitTasksFailed);
    }
    Fail("waiting for results failed: " + waited.message());
    return std::max(exit_code, kExitBroker);
  }
  if (!args.quiet) {
    std::cerr << "batch " << receipt->batch_id << ": " << last.done << " done, "
              << last.dead << " dead, " << last.cancelled << " cancelled of "
              << last.total << "\n";
  }
  return exit_code;
}

}  // namespace
}  // namespace tq

int main(int argc, char** argv) {
  tq::Args args;
  CLI::App app{
      "Queue every URL of FILE (one per line; '-' for standard input) as one "
      "batch and print its id. With --wait, stream each result as a JSON "
      "line instead."};
  app.add_option("--broker", args.broker, "broker endpoint")
      ->envname(tq::kBrokerEnvVar)
      ->capture_default_str();
  app.add_option("FILE", args.file, "URL file, or - for standard input")
      ->required();
  app.add_option("--country", args.countries,
                 "comma-separated queues, e.g. IT,IN (ISO 3166 codes or "
                 "'generic'); each URL goes on each. Default: generic");
  app.add_option("--batch-id", args.batch_id,
                 "batch id (1-64 of [A-Za-z0-9._:-]); re-using one never "
                 "queues duplicates. Default: a random id");
  app.add_option("--priority", args.priority,
                 "higher runs first within a queue")
      ->capture_default_str();
  app.add_option("--max-attempts", args.max_attempts,
                 "attempts per task before it is dead (default: broker's)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--time-limit", args.time_limit_s,
                 "seconds one attempt may run (default: broker's)")
      ->check(CLI::Range(0.001, 4'000'000.0));
  app.add_flag("--wait", args.wait,
               "wait for the results and print them as JSON lines on stdout");
  app.add_option("--out", args.out_dir,
                 "with --wait: also write each result and its files under "
                 "DIR (see tq-ctl results --out)");
  app.add_option("--layout", args.layout, "with --out: 'tasks' or 'thug'")
      ->check(CLI::IsMember({"tasks", "thug"}))
      ->capture_default_str();
  app.add_flag("--strict", args.strict, "submit nothing if any line is bad");
  app.add_option("--option,-o", args.options,
                 "KEY=VALUE handed to the workers with every task (repeat); "
                 "the built-in analyser reads user_agent, referer, proxy, "
                 "timeout, max_body_bytes, max_redirects, max_subresources, "
                 "retry_on_network_error, tls_verify");
  app.add_option("--timeout", args.timeout_s,
                 "with --wait, give up after this many seconds (default: "
                 "none)")
      ->check(CLI::Range(0.001, 1e9));
  app.add_option("--request-timeout", args.request_timeout_s,
                 "seconds to wait for each broker reply (3 attempts)")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  app.add_flag("--quiet,-q", args.quiet,
               "no summary lines or progress bar on stderr");
  app.add_option("--log-level", args.log_level,
                 "trace, debug, info, warn, error, off")
      ->capture_default_str();
  app.footer(tq::kExitCodesHelp);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? tq::kExitOk : tq::kExitUsage;
  }
  return tq::Run(args);
}
