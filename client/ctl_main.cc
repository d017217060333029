// tq-ctl: look at and steer a tq broker (queues, workers, batches).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "client/ctl_flags.h"
#include "client/exit_codes.h"
#include "client/result_files.h"
#include "client/table.h"
#include "common/log.h"
#include "common/version.h"
#include "tq/client.h"

namespace tq {
namespace {

using nlohmann::ordered_json;

constexpr const char* kProgram = "tq-ctl";
constexpr uint32_t kResultPageLimit = 1000;

void Fail(const std::string& message) {
  std::cerr << kProgram << ": " << message << "\n";
}

int Usage(const Status& s) {
  Fail(s.message());
  return kExitUsage;
}

int ExitFor(const Status& s) {
  Fail(s.message());
  return s.code() == Status::Code::kNotFound ? kExitNotFound : kExitBroker;
}

std::string Dump(const ordered_json& j) {
  return j.dump(2, ' ', false, ordered_json::error_handler_t::replace);
}

// "0.4s ago", "42s ago", "7m ago", "3h ago".
std::string FormatAgo(uint64_t ms) {
  char buf[32];
  if (ms < 10'000) {
    snprintf(buf, sizeof buf, "%.1fs ago", static_cast<double>(ms) / 1000.0);
  } else if (ms < 120'000) {
    snprintf(buf, sizeof buf, "%llus ago",
             static_cast<unsigned long long>(ms / 1000));
  } else if (ms < 2 * 3'600'000) {
    snprintf(buf, sizeof buf, "%llum ago",
             static_cast<unsigned long long>(ms / 60'000));
  } else {
    snprintf(buf, sizeof buf, "%lluh ago",
             static_cast<unsigned long long>(ms / 3'600'000));
  }
  return buf;
}

std::string Join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += items[i];
  }
  return out;
}

ordered_json CountsJson(const BatchProgress& p) {
  ordered_json j;
  j["total"] = p.total;
  j["queued"] = p.queued;
  j["leased"] = p.leased;
  j["retry_wait"] = p.retry_wait;
  j["done"] = p.done;
  j["dead"] = p.dead;
  j["cancelled"] = p.cancelled;
  ordered_json outcomes;
  outcomes["ok"] = p.ok;
  outcomes["unreachable"] = p.unreachable;
  outcomes["http_error"] = p.http_error;
  outcomes["timeout"] = p.timeout;
  j["outcomes"] = std::move(outcomes);
  return j;
}

// "3d 4h", "2h 5m", "7m", "42s": a worker's uptime.
std::string FormatUptime(int64_t ms) {
  if (ms < 0) ms = 0;
  const int64_t s = ms / 1000;
  char buf[32];
  if (s >= 86400) {
    snprintf(buf, sizeof buf, "%lldd %lldh", (long long)(s / 86400),
             (long long)(s / 3600 % 24));
  } else if (s >= 3600) {
    snprintf(buf, sizeof buf, "%lldh %lldm", (long long)(s / 3600),
             (long long)(s / 60 % 60));
  } else if (s >= 60) {
    snprintf(buf, sizeof buf, "%lldm", (long long)(s / 60));
  } else {
    snprintf(buf, sizeof buf, "%llds", (long long)s);
  }
  return buf;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int ShowQueues(Client& client, bool json) {
  BrokerStats counters;
  auto queues = client.Queues(&counters);
  if (!queues.ok()) return ExitFor(queues.status());
  if (json) {
    ordered_json list = ordered_json::array();
    for (const auto& q : *queues) {
      ordered_json j;
      j["name"] = q.name;
      j.update(CountsJson(q.counts));
      j["workers"] = q.workers;
      list.push_back(std::move(j));
    }
    ordered_json broker;
    broker["messages_in"] = counters.messages_in;
    broker["messages_out"] = counters.messages_out;
    broker["bad_messages"] = counters.bad_messages;
    broker["commits"] = counters.commits;
    broker["commit_failures"] = counters.commit_failures;
    broker["redeliveries"] = counters.redeliveries;
    broker["store_ok"] = counters.store_ok;
    broker["store_error"] = counters.store_error;
    ordered_json doc;
    doc["queues"] = std::move(list);
    doc["broker"] = std::move(broker);
    std::cout << Dump(doc) << "\n";
    return kExitOk;
  }
  Table t;
  t.header = {"QUEUE", "QUEUED",      "LEASED",     "RETRY_WAIT",
              "DONE",  "DEAD",        "CANCELLED",  "WORKERS",
              "OK",    "UNREACHABLE", "HTTP_ERROR", "TIMEOUT"};
  t.right_align = {false, true, true, true, true, true,
                   true,  true, true, true, true, true};
  for (const auto& q : *queues) {
    const auto& c = q.counts;
    t.rows.push_back({q.name, std::to_string(c.queued),
                      std::to_string(c.leased), std::to_string(c.retry_wait),
                      std::to_string(c.done), std::to_string(c.dead),
                      std::to_string(c.cancelled), std::to_string(q.workers),
                      std::to_string(c.ok), std::to_string(c.unreachable),
                      std::to_string(c.http_error), std::to_string(c.timeout)});
  }
  std::cout << FormatTable(t);
  std::cout << "broker: " << counters.messages_in << " messages in, "
            << counters.messages_out << " out, " << counters.bad_messages
            << " bad; " << counters.commits << " commits ("
            << counters.commit_failures << " failed); " << counters.redeliveries
            << " redeliveries; store "
            << (counters.store_ok ? "ok" : "FAILED: " + counters.store_error)
            << "\n";
  return kExitOk;
}

int ShowWorkers(Client& client, bool json) {
  auto workers = client.Workers();
  if (!workers.ok()) return ExitFor(workers.status());
  const int64_t now_ms = NowMs();
  if (json) {
    ordered_json list = ordered_json::array();
    for (const auto& w : *workers) {
      ordered_json j;
      j["worker_id"] = w.worker_id;
      j["country"] = w.country;
      j["country_source"] = w.country_source;
      j["queues"] = w.queues;
      j["concurrency"] = w.concurrency;
      j["credit"] = w.credit;
      j["in_flight"] = w.in_flight;
      j["last_seen_ms_ago"] = w.last_seen_ms_ago;
      j["tasks_done"] = w.tasks_done;
      j["hostname"] = w.hostname;
      j["peer_address"] = w.peer_address;
      j["state"] = w.state;
      if (!w.state_reason.empty()) j["state_reason"] = w.state_reason;
      j["succeeded"] = w.succeeded;
      j["failed"] = w.failed;
      j["retried"] = w.retried;
      j["timed_out"] = w.timed_out;
      j["consecutive_failures"] = w.consecutive_failures;
      j["last_failure"] = w.last_failure;
      j["first_seen_ms"] = w.first_seen_ms;
      j["session_start_ms"] = w.session_start_ms;
      j["uptime_ms"] = std::max<int64_t>(0, now_ms - w.session_start_ms);
      j["key_name"] = w.key_name;
      list.push_back(std::move(j));
    }
    ordered_json doc;
    doc["workers"] = std::move(list);
    std::cout << Dump(doc) << "\n";
    return kExitOk;
  }
  Table t;
  t.header = {"ID",     "COUNTRY",   "SOURCE",    "QUEUES",
              "SLOTS",  "IN-FLIGHT", "LAST SEEN", "TASKS DONE",
              "FAILED", "RETRIED",   "TIMED OUT", "IN A ROW",
              "UPTIME", "STATE",     "HOST",      "KEY"};
  t.right_align = {false, false, false, false, true, true,  true,  true,
                   true,  true,  true,  true,  true, false, false, false};
  std::vector<std::string> notes;
  for (const auto& w : *workers) {
    t.rows.push_back(
        {w.worker_id, w.country.empty() ? "-" : w.country,
         w.country_source.empty() ? "-" : w.country_source, Join(w.queues, ","),
         std::to_string(w.concurrency), std::to_string(w.in_flight),
         FormatAgo(w.last_seen_ms_ago), std::to_string(w.tasks_done),
         std::to_string(w.failed), std::to_string(w.retried),
         std::to_string(w.timed_out), std::to_string(w.consecutive_failures),
         FormatUptime(now_ms - w.session_start_ms), w.state,
         w.hostname.empty() ? "-" : w.hostname,
         w.key_name.empty() ? "-" : w.key_name});
    if (w.state == "quarantined") {
      notes.push_back(
          w.worker_id + " quarantined: " + w.state_reason +
          (w.last_failure.empty() ? "" : "; last failure: " + w.last_failure) +
          " (tq-ctl release " + w.worker_id + ")");
    }
  }
  std::cout << FormatTable(t);
  for (const std::string& n : notes) std::cout << n << "\n";
  return kExitOk;
}

int ShowBatch(Client& client, const std::string& batch_id, bool json) {
  auto p = client.Progress(batch_id);
  if (!p.ok()) return ExitFor(p.status());
  if (json) {
    ordered_json j;
    j["batch_id"] = batch_id;
    j.update(CountsJson(*p));
    j["complete"] = p->complete();
    std::cout << Dump(j) << "\n";
    return kExitOk;
  }
  Table t;
  t.right_align = {false, true};
  t.rows = {{"total", std::to_string(p->total)},
            {"queued", std::to_string(p->queued)},
            {"leased", std::to_string(p->leased)},
            {"retry_wait", std::to_string(p->retry_wait)},
            {"done", std::to_string(p->done)},
            {"dead", std::to_string(p->dead)},
            {"cancelled", std::to_string(p->cancelled)},
            {"  ok", std::to_string(p->ok)},
            {"  unreachable", std::to_string(p->unreachable)},
            {"  http_error", std::to_string(p->http_error)},
            {"  timeout", std::to_string(p->timeout)}};
  std::cout << "batch " << batch_id << ": "
            << (p->complete() ? "complete" : "in progress") << "\n";
  std::cout << FormatTable(t);
  return kExitOk;
}

int ShowResults(Client& client, const std::string& batch_id,
                const std::string& out_dir, OutLayout layout) {
  uint64_t cursor = 0;
  const bool with_files = !out_dir.empty();
  int exit_code = kExitOk;
  for (;;) {
    auto page = client.FetchResults(batch_id, cursor, kResultPageLimit,
                                    std::chrono::milliseconds(0), with_files);
    if (!page.ok()) return ExitFor(page.status());
    for (const auto& r : page->results) {
      std::cout << ToJsonLine(r) << "\n";
      if (!with_files) continue;
      if (Status s = WriteResult(out_dir, layout, r); !s.ok()) {
        std::cerr << "tq-ctl: " << s.message() << "\n";
        exit_code = kExitOutput;
      }
    }
    // Stop on an empty page, or if the cursor would not move (a broker bug
    // must not loop us forever).
    if (page->results.empty() || page->cursor <= cursor) break;
    cursor = page->cursor;
  }
  std::cout.flush();
  return exit_code;
}

int PrintCount(bool json, const char* key, uint64_t n,
               const std::string& human) {
  if (json) {
    ordered_json j;
    j[key] = n;
    std::cout << Dump(j) << "\n";
  } else {
    std::cout << human << "\n";
  }
  return kExitOk;
}

Status CheckBatchKnown(Client& client, const std::string& batch_id) {
  auto p = client.Progress(batch_id);
  return p.ok() ? Status::Ok() : p.status();
}

Status CheckQueueKnown(Client& client, const std::string& queue) {
  auto queues = client.Queues();
  if (!queues.ok()) return queues.status();
  for (const auto& q : *queues) {
    if (q.name == queue) return Status::Ok();
  }
  return Status::NotFound("no such queue: " + queue);
}

// Asks on the terminal; "y" or "yes" goes on.
bool Confirm(const std::string& question) {
  std::cerr << question << " [y/N] " << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  std::transform(answer.begin(), answer.end(), answer.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return answer == "y" || answer == "yes";
}

// reload-keys: what changed, a line per kind, or "no change".
int ReloadKeys(Client& client, bool json) {
  auto reload = client.ReloadKeys();
  if (!reload.ok()) return ExitFor(reload.status());
  const KeysReload& r = *reload;
  if (json) {
    ordered_json j;
    j["keys"] = r.keys;
    j["added"] = r.added;
    j["removed"] = r.removed;
    j["changed"] = r.changed;
    j["revoked"] = r.revoked;
    j["sessions_closed"] = r.sessions_ended;
    j["problems"] = r.problems;
    std::cout << Dump(j) << "\n";
    return kExitOk;
  }
  std::cout << "reloaded the authorized keys: " << r.keys << " admitted\n";
  const bool same = r.added.empty() && r.removed.empty() && r.changed.empty();
  if (same) std::cout << "no change\n";
  if (!r.added.empty()) std::cout << "added: " << Join(r.added, ", ") << "\n";
  if (!r.removed.empty()) {
    std::cout << "removed: " << Join(r.removed, ", ") << "\n";
  }
  for (const std::string& c : r.changed) std::cout << "changed: " << c << "\n";
  if (!r.revoked.empty()) {
    std::cout << "sessions closed: " << r.sessions_ended << " (keys "
              << Join(r.revoked, ", ") << ")\n";
  } else {
    std::cout << "sessions closed: 0\n";
  }
  for (const std::string& p : r.problems) std::cout << "skipped: " << p << "\n";
  return kExitOk;
}

// The subcommand's request and its answer on stdout.
int RunCommand(Client& client, const CtlFlags& flags) {
  switch (flags.command) {
    case CtlCommand::kQueues:
      return ShowQueues(client, flags.json);
    case CtlCommand::kWorkers:
      return ShowWorkers(client, flags.json);
    case CtlCommand::kBatch:
      return ShowBatch(client, flags.batch_id, flags.json);
    case CtlCommand::kResults:
      return ShowResults(client, flags.batch_id, flags.out_dir,
                         *ParseOutLayout(flags.layout));
    case CtlCommand::kCancel: {
      auto n = client.Cancel(flags.batch_id);
      if (!n.ok()) return ExitFor(n.status());
      return PrintCount(flags.json, "cancelled", *n,
                        "cancelled " + std::to_string(*n) + " tasks of batch " +
                            flags.batch_id);
    }
    case CtlCommand::kRetry: {
      // The broker requeues nothing for a batch or queue it does not know;
      // say so like `batch` and `cancel` do.
      Status known = flags.batch_id.empty()
                         ? CheckQueueKnown(client, flags.queue)
                         : CheckBatchKnown(client, flags.batch_id);
      if (!known.ok()) return ExitFor(known);
      auto n = client.RetryDead(flags.batch_id, flags.queue);
      if (!n.ok()) return ExitFor(n.status());
      std::string scope = flags.batch_id.empty() ? "queue " + flags.queue
                                                 : "batch " + flags.batch_id;
      return PrintCount(flags.json, "requeued", *n,
                        "queued " + std::to_string(*n) + " dead tasks of " +
                            scope + " again");
    }
    case CtlCommand::kPurge: {
      if (Status s = CheckQueueKnown(client, flags.queue); !s.ok()) {
        return ExitFor(s);
      }
      if (!flags.yes && !Confirm("purge every queued and retry-waiting task "
                                 "of queue " +
                                 flags.queue + "?")) {
        Fail("not purged");
        return kExitDeclined;
      }
      auto n = client.Purge(flags.queue);
      if (!n.ok()) return ExitFor(n.status());
      return PrintCount(
          flags.json, "purged", *n,
          "purged " + std::to_string(*n) + " tasks from queue " + flags.queue);
    }
    case CtlCommand::kRelease: {
      Status released = client.ReleaseWorker(flags.worker_id);
      if (!released.ok()) return ExitFor(released);
      return PrintCount(flags.json, "released", 1,
                        "released worker " + flags.worker_id);
    }
    case CtlCommand::kReloadKeys:
      return ReloadKeys(client, flags.json);
    case CtlCommand::kNone:
      break;
  }
  return kExitUsage;  // unreachable: a subcommand is required
}

int Run(const CtlFlags& flags) {
  if (Status s = SetupLogging(kProgram, flags.log_level); !s.ok()) {
    return Usage(s);
  }
  // Malformed ids and names exit 2 (usage), not 4.
  if (Status s = ValidateCtlFlags(flags); !s.ok()) return Usage(s);
  // Asked before anything is sent, so a script without --yes changes nothing.
  if (flags.command == CtlCommand::kPurge && !flags.yes &&
      !isatty(STDIN_FILENO)) {
    return Usage(Status::InvalidArgument(
        "purge deletes queued tasks: pass --yes (standard input is not a "
        "terminal to ask on)"));
  }
  // So are unusable key files.
  Result<ClientOptions> options = ClientOptionsFromFlags(flags);
  if (!options.ok()) return Usage(options.status());
  options->on_connection = [](const ConnectionEvent& e) {
    if (e.kind != ConnectionEvent::Kind::kConnected) Fail(e.message);
  };
  auto connected = Client::Connect(*options);
  if (!connected.ok()) return Usage(connected.status());
  return RunCommand(**connected, flags);
}

}  // namespace
}  // namespace tq

int main(int argc, char** argv) {
  tq::CtlFlags flags;
  CLI::App app{"Look at and steer a tq broker."};
  tq::AddCtlFlags(app, &flags);
  app.set_version_flag("--version", tq::VersionText("tq-ctl"));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? tq::kExitOk : tq::kExitUsage;
  }
  if (tq::Status s = tq::CheckCtlCommand(flags, app.remaining()); !s.ok()) {
    std::cerr << "tq-ctl: " << s.message() << "\n";
    return tq::kExitUsage;
  }
  return tq::Run(flags);
}
