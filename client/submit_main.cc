// tq-submit: queue a file of URLs as one batch, optionally wait for results.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "client/exit_codes.h"
#include "client/progress_line.h"
#include "client/result_files.h"
#include "client/submit_flags.h"
#include "client/url_file.h"
#include "common/log.h"
#include "common/version.h"
#include "tq/client.h"

namespace tq {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kProgram = "tq-submit";
// "No deadline": ten years, far from steady_clock overflow.
constexpr milliseconds kForever = std::chrono::hours(24 * 365 * 10);
constexpr milliseconds kRedrawInterval{100};

void Fail(const std::string& message) {
  std::cerr << kProgram << ": " << message << "\n";
}

int Usage(const Status& s) {
  Fail(s.message());
  return kExitUsage;
}

// At most this many bad lines are named; the rest are only counted.
constexpr size_t kMaxBadLinesShown = 20;

// Read by the SIGINT handler: only async-signal-safe calls there.
volatile sig_atomic_t g_bar_visible = 0;
// The resume hint the handler prints, set before the handler is installed.
char g_interrupt_hint[512] = {};
size_t g_interrupt_hint_len = 0;

void OnInterrupt(int sig) {
  if (g_bar_visible) {
    static const char kClear[] = "\r\033[K";
    (void)!write(STDERR_FILENO, kClear, sizeof kClear - 1);
  }
  if (g_interrupt_hint_len > 0) {
    (void)!write(STDERR_FILENO, g_interrupt_hint, g_interrupt_hint_len);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

// "tq-submit --batch-id X --wait", with --broker when it is not the default
// (the environment may not hold it next time).
std::string ResumeCommand(const std::string& batch_id,
                          const SubmitFlags& flags) {
  std::string command = std::string(kProgram) + " --batch-id " + batch_id;
  if (flags.broker != kDefaultEndpoint) command += " --broker " + flags.broker;
  return command + " --wait";
}

// The progress bar on stderr, redrawn in place while results stream.
class ProgressBar {
 public:
  ProgressBar(bool enabled, bool stdout_shares_terminal)
      : enabled_(enabled), clear_for_stdout_(stdout_shares_terminal) {
    signal(SIGINT, OnInterrupt);
  }

  bool enabled() const { return enabled_; }

  // A connection problem shown at the end of the line until cleared with
  // "": the counts stop moving, and the line says why at once.
  void SetNotice(const std::string& notice) {
    notice_ = notice;
    if (started_) Draw(Clock::now());
  }

  void Update(const BatchProgress& p) {
    if (!enabled_) return;
    last_ = p;
    Clock::time_point now = Clock::now();
    if (!started_) {
      started_ = true;
      start_ = now;
      base_finished_ = p.finished();
    }
    if (visible_ && now - last_draw_ < kRedrawInterval && !p.complete()) {
      return;
    }
    Draw(now);
  }

  void Draw(Clock::time_point now) {
    const BatchProgress& p = last_;
    double elapsed = std::chrono::duration<double>(now - start_).count();
    double rate =
        elapsed >= 0.5
            ? static_cast<double>(p.finished() - base_finished_) / elapsed
            : 0.0;
    // No ETA while the broker is away: the rate no longer means anything.
    std::string line = notice_.empty()
                           ? FormatProgressLine(p, rate)
                           : FormatProgressLine(p, 0.0) + "  " + notice_;
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
  BatchProgress last_;
  std::string notice_;
};

// Where connection events go: the progress bar while one is drawn, else a
// line on stderr each.
class ConnectionNotices {
 public:
  void Attach(ProgressBar* bar) { bar_ = bar; }
  void On(const ConnectionEvent& e) {
    const bool ok = e.kind == ConnectionEvent::Kind::kConnected;
    if (bar_ != nullptr && bar_->enabled()) {
      bar_->SetNotice(ok ? "" : e.message);
      return;
    }
    Fail(e.message);
  }

 private:
  ProgressBar* bar_ = nullptr;
};

// The URL file, or "-" for standard input. The message says why not.
Result<UrlFile> ReadUrls(const std::string& file, const UrlFileLimits& limits) {
  if (file == "-") {
    UrlFile parsed = ParseUrlFile(std::cin, limits);
    if (std::cin.bad()) {
      return Status::IoError("cannot read standard input");
    }
    return parsed;
  }
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    return Status::IoError("cannot read " + file + ": is a directory");
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return Status::IoError("cannot open " + file + ": " + std::strerror(errno));
  }
  UrlFile parsed = ParseUrlFile(in, limits);
  if (in.bad()) return Status::IoError("cannot read " + file);
  return parsed;
}

// Names the bad lines on stderr. Returns the exit code so far (bad lines
// skipped or not), or why nothing is to be submitted.
Result<int> CheckLines(const UrlFile& parsed, const std::string& shown_name,
                       bool strict) {
  for (size_t i = 0; i < parsed.bad.size() && i < kMaxBadLinesShown; ++i) {
    const BadLine& bad = parsed.bad[i];
    std::cerr << shown_name << ":" << bad.line_no << ": " << bad.reason << "\n";
  }
  if (parsed.bad.size() > kMaxBadLinesShown) {
    const size_t more = parsed.bad.size() - kMaxBadLinesShown;
    std::cerr << shown_name << ": " << more << " more bad line"
              << (more == 1 ? "" : "s") << " not shown\n";
  }
  int exit_code = kExitOk;
  if (!parsed.bad.empty()) {
    if (strict) {
      return Status::InvalidArgument(std::to_string(parsed.bad.size()) +
                                     " bad line" +
                                     (parsed.bad.size() == 1 ? "" : "s") +
                                     "; nothing submitted (--strict)");
    }
    exit_code = kExitBadLines;
  }
  if (parsed.urls.empty()) {
    return Status::InvalidArgument("no URLs to submit in " + shown_name);
  }
  return exit_code;
}

// Names the items the broker refused and says what was queued: the batch id
// on stdout (stderr with --wait, where stdout carries the results). Returns
// the exit code so far.
int ReportReceipt(const SubmitReceipt& receipt, const UrlFile& parsed,
                  const std::string& shown_name, const SubmitFlags& flags,
                  int exit_code) {
  for (const auto& e : receipt.errors) {
    std::cerr << shown_name << ":" << parsed.urls[e.url_index].line_no << ": "
              << e.reason << " (queue " << e.queue << ")\n";
    exit_code = std::max(exit_code, kExitBadLines);
  }
  const uint64_t held = receipt.accepted + receipt.duplicates;
  if (flags.wait) {
    if (!flags.quiet) {
      std::cerr << "batch " << receipt.batch_id << ": " << held
                << " tasks queued\n";
    }
  } else {
    std::cout << receipt.batch_id << std::endl;
  }
  if (!flags.quiet) {
    // Lines the file repeats count as duplicates too, queued once.
    const uint64_t in_file = flags.allow_duplicates ? 0 : parsed.duplicates;
    std::cerr << "submitted " << held << " tasks ("
              << receipt.duplicates + in_file << " duplicates) in batch "
              << receipt.batch_id << "\n";
    if (parsed.duplicates > 0) {
      std::cerr << shown_name << ": " << parsed.duplicates << " duplicate line"
                << (parsed.duplicates == 1 ? "" : "s")
                << (flags.allow_duplicates
                        ? " queued again (--allow-duplicates)"
                        : " queued once (--allow-duplicates queues each)")
                << "\n";
    }
  }
  return exit_code;
}

// Tasks on a queue no connected worker serves only wait: say so. Best
// effort: a failed query is only logged.
void WarnUnservedQueues(Client& client,
                        const std::vector<std::string>& queues) {
  auto listed = client.Queues();
  if (!listed.ok()) {
    spdlog::debug("cannot list queues: {}", listed.status().message());
    return;
  }
  for (const auto& queue : queues) {
    uint32_t workers = 0;
    for (const auto& q : *listed) {
      if (q.name == queue) workers = q.workers;
    }
    if (workers == 0) {
      Fail("warning: no connected worker serves queue " + queue +
           "; its tasks wait until one does");
    }
  }
}

// --wait: streams the batch's results as JSON lines (and, with --out, into
// files) until every task is finished or --timeout. Returns the exit code.
int WaitForBatch(Client& client, const std::string& batch_id,
                 const SubmitFlags& flags, ConnectionNotices& notices,
                 int exit_code) {
  const bool draw = !flags.quiet && isatty(STDERR_FILENO);
  const OutLayout layout = *ParseOutLayout(flags.layout);
  const std::string resume = ResumeCommand(batch_id, flags);
  const std::string hint =
      std::string(kProgram) +
      ": interrupted; the batch goes on (resume with: " + resume + ")\n";
  g_interrupt_hint_len = std::min(hint.size(), sizeof g_interrupt_hint);
  std::memcpy(g_interrupt_hint, hint.data(), g_interrupt_hint_len);
  ProgressBar bar(draw, isatty(STDOUT_FILENO));
  notices.Attach(&bar);
  uint64_t failed = 0;
  uint64_t failed_outcomes = 0;  // done, with an outcome --fail-on names
  BatchProgress last;
  const milliseconds deadline =
      flags.timeout_s > 0 ? SecondsToMs(flags.timeout_s) : kForever;
  const Clock::time_point wait_end = Clock::now() + deadline;
  Status waited = client.WaitForResults(
      batch_id,
      [&](const TaskResult& r) {
        bar.MakeRoomForStdout();
        std::cout << ToJsonLine(r) << std::endl;  // flushed per line
        if (!flags.out_dir.empty()) {
          if (Status s = WriteResult(flags.out_dir, layout, r); !s.ok()) {
            Fail(s.message());
            exit_code = std::max(exit_code, kExitTasksFailed);
          }
        }
        if (r.state != "done" || !r.ok) ++failed;
        if (r.state == "done" && flags.fail_on.count(r.outcome) > 0) {
          ++failed_outcomes;
        }
        return true;
      },
      [&](const BatchProgress& p) {
        last = p;
        bar.Update(p);
      },
      deadline, /*with_files=*/!flags.out_dir.empty());
  bar.Clear();
  notices.Attach(nullptr);
  g_interrupt_hint_len = 0;
  if (failed > 0 || failed_outcomes > 0)
    exit_code = std::max(exit_code, kExitTasksFailed);
  if (!waited.ok()) {
    if (Clock::now() >= wait_end) {
      char shown[32];
      snprintf(shown, sizeof shown, "%g", flags.timeout_s);
      Fail(std::string("gave up waiting after ") + shown +
           " s: " + std::to_string(last.total - last.finished()) + " of " +
           std::to_string(last.total) +
           " tasks unfinished (resume with: " + resume + ")");
      return std::max(exit_code, kExitTasksFailed);
    }
    Fail("waiting for results failed: " + waited.message() +
         " (the batch is kept: resume with: " + resume + ")");
    return std::max(exit_code, waited.code() == Status::Code::kNotFound
                                   ? kExitNotFound
                                   : kExitBroker);
  }
  if (!flags.quiet) {
    std::cerr << "batch " << batch_id << ": " << FormatBatchSummary(last)
              << "\n";
  }
  return exit_code;
}

int Run(const SubmitFlags& flags) {
  if (Status s = SetupLogging(kProgram, flags.log_level); !s.ok()) {
    return Usage(s);
  }
  if (Status s = ValidateSubmitFlags(flags); !s.ok()) return Usage(s);
  // Key files are read before the URLs, which may be a long stdin.
  Result<ClientOptions> client_options = ClientOptionsFromFlags(flags);
  if (!client_options.ok()) return Usage(client_options.status());
  ConnectionNotices notices;
  client_options->on_connection = [&notices](const ConnectionEvent& e) {
    notices.On(e);
  };
  if (flags.file.empty()) {  // --batch-id ID --wait: resume waiting
    auto client = Client::Connect(*client_options);
    if (!client.ok()) return Usage(client.status());
    return WaitForBatch(**client, flags.batch_id, flags, notices, kExitOk);
  }
  const std::string shown_name = flags.file == "-" ? "<stdin>" : flags.file;
  UrlFileLimits limits;
  limits.allow_duplicates = flags.allow_duplicates;
  Result<UrlFile> parsed = ReadUrls(flags.file, limits);
  if (!parsed.ok()) return Usage(parsed.status());
  if (!parsed->status.ok()) {  // over the input limits
    Fail(shown_name + " " + parsed->status.message() + "; nothing submitted");
    return kExitUsage;
  }
  Result<int> exit_code = CheckLines(*parsed, shown_name, flags.strict);
  if (!exit_code.ok()) return Usage(exit_code.status());
  Result<SubmitOptions> options = SubmitOptionsFromFlags(flags);
  if (!options.ok()) return Usage(options.status());
  std::vector<std::string> urls;
  urls.reserve(parsed->urls.size());
  for (const auto& line : parsed->urls) urls.push_back(line.url);

  auto client = Client::Connect(*client_options);
  // A malformed endpoint is a usage error.
  if (!client.ok()) return Usage(client.status());
  auto receipt = (*client)->Submit(urls, *options);
  if (!receipt.ok()) {
    Fail("submit failed: " + receipt.status().message() +
         " (re-running with --batch-id " + options->batch_id +
         " resumes without duplicates)");
    return kExitBroker;
  }
  const int submitted =
      ReportReceipt(*receipt, *parsed, shown_name, flags, *exit_code);
  WarnUnservedQueues(**client, options->queues);
  if (!flags.wait || receipt->accepted + receipt->duplicates == 0) {
    return submitted;
  }
  return WaitForBatch(**client, receipt->batch_id, flags, notices, submitted);
}

}  // namespace
}  // namespace tq

int main(int argc, char** argv) {
  tq::SubmitFlags flags;
  CLI::App app{
      "Queue every URL of FILE (one per line; '-' for standard input) as one "
      "batch and print its id. With --wait, stream each result as a JSON "
      "line instead."};
  tq::AddSubmitFlags(app, &flags);
  app.set_version_flag("--version", tq::VersionText("tq-submit"));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? tq::kExitOk : tq::kExitUsage;
  }
  if (auto fail_on = tq::ParseFailOn(flags.fail_on_list); fail_on.ok()) {
    flags.fail_on = std::move(*fail_on);  // else Run reports the usage error
  }
  return tq::Run(flags);
}
