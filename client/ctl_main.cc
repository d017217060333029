// tq-ctl: look at and steer a tq broker (queues, workers, batches).
#include <signal.h>
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
#include "common/time_format.h"
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

ordered_json StatsJson(const BrokerStats& s) {
  ordered_json j;
  j["messages_in"] = s.messages_in;
  j["messages_out"] = s.messages_out;
  j["bad_messages"] = s.bad_messages;
  j["commits"] = s.commits;
  j["commit_failures"] = s.commit_failures;
  j["redeliveries"] = s.redeliveries;
  j["store_ok"] = s.store_ok;
  j["store_error"] = s.store_error;
  return j;
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

// A queue with nothing queued, running or waiting to retry that no
// connected worker serves: left out unless --all.
bool IsIdleUnserved(const QueueSummary& q) {
  const BatchProgress& c = q.counts;
  return q.workers == 0 && c.queued + c.leased + c.retry_wait == 0;
}

int ShowQueues(Client& client, bool json, bool all) {
  BrokerStats counters;
  auto queues = client.Queues(&counters);
  if (!queues.ok()) return ExitFor(queues.status());
  if (!all) std::erase_if(*queues, IsIdleUnserved);
  if (json) {
    ordered_json list = ordered_json::array();
    for (const auto& q : *queues) {
      ordered_json j;
      j["name"] = q.name;
      j.update(CountsJson(q.counts));
      j["workers"] = q.workers;
      j["paused"] = q.paused;
      list.push_back(std::move(j));
    }
    ordered_json doc;
    doc["queues"] = std::move(list);
    doc["broker"] = StatsJson(counters);
    std::cout << Dump(doc) << "\n";
    return kExitOk;
  }
  Table t;
  t.header = {"QUEUE",      "QUEUED",    "LEASED",  "RETRY_WAIT", "DONE",
              "DEAD",       "CANCELLED", "WORKERS", "OK",         "UNREACHABLE",
              "HTTP_ERROR", "TIMEOUT",   "STATE"};
  t.right_align = {false, true, true, true, true, true, true,
                   true,  true, true, true, true, false};
  for (const auto& q : *queues) {
    const auto& c = q.counts;
    t.rows.push_back({q.name, std::to_string(c.queued),
                      std::to_string(c.leased), std::to_string(c.retry_wait),
                      std::to_string(c.done), std::to_string(c.dead),
                      std::to_string(c.cancelled), std::to_string(q.workers),
                      std::to_string(c.ok), std::to_string(c.unreachable),
                      std::to_string(c.http_error), std::to_string(c.timeout),
                      q.paused ? "paused" : "active"});
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

ordered_json RunningJson(const RunningTask& r) {
  ordered_json j;
  j["task_id"] = r.task_id;
  j["url"] = r.url;
  j["queue"] = r.queue;
  j["batch_id"] = r.batch_id;
  j["worker"] = r.worker;
  j["since"] = FormatUtcMs(r.since_ms);
  j["since_ms"] = r.since_ms;
  j["attempt"] = r.attempt;
  return j;
}

std::string TaskIds(const std::vector<RunningTask>& tasks) {
  std::vector<std::string> ids;
  for (const RunningTask& r : tasks) ids.push_back(std::to_string(r.task_id));
  return ids.empty() ? "-" : Join(ids, ",");
}

int ShowWorkers(Client& client, bool json) {
  auto workers = client.Workers(/*include_offline=*/true);
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
      j["uptime_ms"] =
          w.offline ? 0 : std::max<int64_t>(0, now_ms - w.session_start_ms);
      j["key_name"] = w.key_name;
      j["offline"] = w.offline;
      j["last_seen"] = FormatUtcMs(w.last_seen_ms);
      j["last_seen_ms"] = w.last_seen_ms;
      ordered_json current = ordered_json::array();
      for (const RunningTask& r : w.current) current.push_back(RunningJson(r));
      j["current"] = std::move(current);
      list.push_back(std::move(j));
    }
    ordered_json doc;
    doc["workers"] = std::move(list);
    std::cout << Dump(doc) << "\n";
    return kExitOk;
  }
  Table t;
  t.header = {"ID",        "COUNTRY",   "SOURCE",     "QUEUES", "SLOTS",
              "IN-FLIGHT", "LAST SEEN", "TASKS DONE", "FAILED", "RETRIED",
              "TIMED OUT", "IN A ROW",  "UPTIME",     "STATE",  "HOST",
              "KEY",       "RUNNING"};
  t.right_align = {false, false, false, false, true,  true,  true,  true, true,
                   true,  true,  true,  true,  false, false, false, false};
  std::vector<std::string> notes, running;
  for (const auto& w : *workers) {
    t.rows.push_back(
        {w.worker_id, w.country.empty() ? "-" : w.country,
         w.country_source.empty() ? "-" : w.country_source,
         w.queues.empty() ? "-" : Join(w.queues, ","),
         std::to_string(w.concurrency), std::to_string(w.in_flight),
         FormatAgo(w.last_seen_ms_ago), std::to_string(w.tasks_done),
         std::to_string(w.failed), std::to_string(w.retried),
         std::to_string(w.timed_out), std::to_string(w.consecutive_failures),
         w.offline ? "-" : FormatUptime(now_ms - w.session_start_ms), w.state,
         w.hostname.empty() ? "-" : w.hostname,
         w.key_name.empty() ? "-" : w.key_name, TaskIds(w.current)});
    for (const RunningTask& r : w.current) {
      running.push_back(w.worker_id + " runs task " +
                        std::to_string(r.task_id) + " (attempt " +
                        std::to_string(r.attempt) + ", since " +
                        FormatUtcMs(r.since_ms) + "): " + r.url);
    }
    if (w.state == "quarantined") {
      notes.push_back(
          w.worker_id + " quarantined: " + w.state_reason +
          (w.last_failure.empty() ? "" : "; last failure: " + w.last_failure) +
          " (tq-ctl release " + w.worker_id + ")");
    }
  }
  std::cout << FormatTable(t);
  for (const std::string& r : running) std::cout << r << "\n";
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

// cancel TASK_ID [--terminate].
int CancelOneTask(Client& client, const CtlFlags& flags) {
  Status s = client.CancelTask(flags.task_id, flags.terminate);
  if (!s.ok()) return ExitFor(s);
  const std::string id = std::to_string(flags.task_id);
  return PrintCount(flags.json, "cancelled", 1,
                    "cancelled task " + id +
                        (flags.terminate ? " (its handler, if running, is "
                                           "being terminated)"
                                         : ""));
}

int PauseOrResume(Client& client, const CtlFlags& flags, bool pause) {
  auto changed = client.PauseQueue(flags.queue, pause);
  if (!changed.ok()) return ExitFor(changed.status());
  if (flags.json) {
    ordered_json j;
    j["queue"] = flags.queue;
    j["paused"] = pause;
    j["changed"] = *changed;
    std::cout << Dump(j) << "\n";
    return kExitOk;
  }
  const char* state = pause ? "paused" : "resumed";
  if (*changed) {
    std::cout << state << " queue " << flags.queue << "\n";
  } else {
    std::cout << "queue " << flags.queue << " was "
              << (pause ? "paused" : "not paused") << " already\n";
  }
  return kExitOk;
}

// ------------------------------------------------------------ views (#19)

// 1536 -> "1.5 KiB": sizes for people (--json has the bytes).
std::string FormatBytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  } else {
    snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  }
  return buf;
}

// "3 of 4 (75%)": a batch's finished tasks.
std::string FormatProgress(const BatchProgress& p) {
  const uint64_t pct = p.total == 0 ? 0 : p.finished() * 100 / p.total;
  return std::to_string(p.finished()) + " of " + std::to_string(p.total) +
         " (" + std::to_string(pct) + "%)";
}

std::string CountsLine(const BatchProgress& c) {
  return std::to_string(c.total) + " (queued " + std::to_string(c.queued) +
         ", leased " + std::to_string(c.leased) + ", retry_wait " +
         std::to_string(c.retry_wait) + ", done " + std::to_string(c.done) +
         ", dead " + std::to_string(c.dead) + ", cancelled " +
         std::to_string(c.cancelled) + ")";
}

int ShowStatus(Client& client, bool json) {
  auto st = client.GetStatus();
  if (!st.ok()) return ExitFor(st.status());
  if (json) {
    ordered_json j;
    j["version"] = st->version;
    j["pid"] = st->pid;
    j["started"] = FormatUtcMs(st->started_ms);
    j["started_ms"] = st->started_ms;
    j["uptime_ms"] = st->uptime_ms;
    j["rss_bytes"] = st->rss_bytes;
    j["db_path"] = st->db_path;
    j["db_bytes"] = st->db_bytes;
    j["wal_bytes"] = st->wal_bytes;
    j["listen"] = st->listen;
    j["workers"] = st->workers;
    j["batches"] = st->batches;
    j["totals"] = CountsJson(st->totals);
    j["broker"] = StatsJson(st->stats);
    std::cout << Dump(j) << "\n";
    return kExitOk;
  }
  const BrokerStats& s = st->stats;
  Table t;
  t.rows = {
      {"version", st->version},
      {"pid", std::to_string(st->pid)},
      {"started", FormatUtcMs(st->started_ms)},
      {"uptime", FormatUptime(int64_t(st->uptime_ms))},
      {"memory", FormatBytes(st->rss_bytes) + " resident"},
      {"database", st->db_path.empty() ? "-" : st->db_path},
      {"database size",
       FormatBytes(st->db_bytes) + ", WAL " + FormatBytes(st->wal_bytes)},
      {"listening on", Join(st->listen, ", ")},
      {"workers", std::to_string(st->workers)},
      {"batches", std::to_string(st->batches)},
      {"tasks", CountsLine(st->totals)},
      {"store", s.store_ok ? "ok" : "FAILED: " + s.store_error},
      {"messages", std::to_string(s.messages_in) + " in, " +
                       std::to_string(s.messages_out) + " out, " +
                       std::to_string(s.bad_messages) + " bad"},
      {"commits", std::to_string(s.commits) + " (" +
                      std::to_string(s.commit_failures) + " failed)"},
  };
  std::cout << FormatTable(t);
  return kExitOk;
}

int ShowBatches(Client& client, bool json, uint32_t limit, uint64_t before) {
  auto listing = client.Batches(limit, before);
  if (!listing.ok()) return ExitFor(listing.status());
  if (json) {
    ordered_json list = ordered_json::array();
    for (const BatchOverview& b : listing->batches) {
      ordered_json j;
      j["batch_id"] = b.batch_id;
      j["created"] = FormatUtcMs(b.created_ms);
      j["created_ms"] = b.created_ms;
      j["submitter"] = b.submitter;
      j.update(CountsJson(b.counts));
      j["finished"] = b.counts.finished();
      j["complete"] = b.counts.complete();
      j["seq"] = b.seq;
      list.push_back(std::move(j));
    }
    ordered_json doc;
    doc["batches"] = std::move(list);
    doc["total"] = listing->total;
    doc["next_before"] = listing->next_before;
    std::cout << Dump(doc) << "\n";
    return kExitOk;
  }
  Table t;
  t.header = {"BATCH",  "CREATED",   "SUBMITTER",  "TOTAL",
              "QUEUED", "LEASED",    "RETRY_WAIT", "DONE",
              "DEAD",   "CANCELLED", "PROGRESS"};
  t.right_align = {false, false, false, true, true, true,
                   true,  true,  true,  true, true};
  for (const BatchOverview& b : listing->batches) {
    const BatchProgress& c = b.counts;
    t.rows.push_back({b.batch_id, FormatUtcMs(b.created_ms),
                      b.submitter.empty() ? "-" : b.submitter,
                      std::to_string(c.total), std::to_string(c.queued),
                      std::to_string(c.leased), std::to_string(c.retry_wait),
                      std::to_string(c.done), std::to_string(c.dead),
                      std::to_string(c.cancelled), FormatProgress(c)});
  }
  std::cout << FormatTable(t);
  std::cout << listing->batches.size() << " of " << listing->total
            << " batches";
  if (listing->next_before != 0) {
    std::cout << "; older ones: tq-ctl batches --before "
              << listing->next_before;
  }
  std::cout << "\n";
  return kExitOk;
}

// The handler's output as tq-submit --wait shows it: a JSON object or
// array embedded, else text (the result line's "result" field).
ordered_json EmbeddedResult(const TaskResult& r) {
  ordered_json line = ordered_json::parse(ToJsonLine(r), nullptr, false);
  if (line.is_discarded() || !line.contains("result")) return nullptr;
  return line["result"];
}

ordered_json AttemptJson(const AttemptRecord& a) {
  ordered_json j;
  j["attempt"] = a.attempt;
  j["worker"] = a.worker;
  j["started"] = FormatUtcMs(a.started_ms);
  j["started_ms"] = a.started_ms;
  j["ended"] = FormatUtcMs(a.ended_ms);
  j["ended_ms"] = a.ended_ms;
  j["ok"] = a.ok;
  j["outcome"] = a.outcome;
  j["error"] = a.error;
  return j;
}

int ShowTask(Client& client, uint64_t task_id, bool json) {
  auto report = client.Task(task_id);
  if (!report.ok()) return ExitFor(report.status());
  const TaskResult& r = report->task;
  ordered_json options =
      ordered_json::parse(report->options_json, nullptr, false);
  if (options.is_discarded()) options = report->options_json;
  if (json) {
    ordered_json j;
    j["task_id"] = r.task_id;
    j["batch_id"] = r.batch_id;
    j["index"] = r.index;
    j["url"] = r.url;
    j["queue"] = r.queue;
    j["state"] = r.state;
    j["attempts"] = r.attempts;
    j["max_attempts"] = report->max_attempts;
    j["priority"] = report->priority;
    j["time_limit_ms"] = report->time_limit_ms;
    j["options"] = options;
    j["submitted"] = FormatUtcMs(r.submitted_ms);
    j["submitted_ms"] = r.submitted_ms;
    j["finished"] = FormatUtcMs(r.finished_ms);
    j["finished_ms"] = r.finished_ms;
    if (report->not_before_ms != 0) {
      j["retry_at"] = FormatUtcMs(report->not_before_ms);
    }
    j["lease"] = report->leased ? RunningJson(report->lease) : ordered_json();
    ordered_json history = ordered_json::array();
    for (const AttemptRecord& a : r.history) history.push_back(AttemptJson(a));
    j["history"] = std::move(history);
    if (report->finished) {
      j["ok"] = r.ok;
      j["worker"] = r.worker;
      j["outcome"] = r.outcome;
      j["error"] = r.error;
      j["exit_code"] = r.exit_code;
      j["duration_ms"] = r.duration_ms;
      j["result"] = EmbeddedResult(r);
    } else {
      j["error"] = r.error;
      j["result"] = nullptr;
    }
    std::cout << Dump(j) << "\n";
    return kExitOk;
  }
  Table t;
  t.rows = {
      {"task", std::to_string(r.task_id)},
      {"batch", r.batch_id + " (item " + std::to_string(r.index) + ")"},
      {"url", r.url},
      {"queue", r.queue},
      {"state", r.state},
      {"attempts", std::to_string(r.attempts) + " of " +
                       std::to_string(report->max_attempts)},
      {"priority", std::to_string(report->priority)},
      {"time limit", std::to_string(report->time_limit_ms) + " ms"},
      {"options", options.dump()},
      {"submitted", FormatUtcMs(r.submitted_ms)},
  };
  if (report->finished) {
    t.rows.push_back({"finished", FormatUtcMs(r.finished_ms)});
  }
  if (report->not_before_ms != 0) {
    t.rows.push_back({"retry at", FormatUtcMs(report->not_before_ms)});
  }
  if (report->leased) {
    t.rows.push_back(
        {"running", "on " + report->lease.worker + " since " +
                        FormatUtcMs(report->lease.since_ms) + " (attempt " +
                        std::to_string(report->lease.attempt) + ")"});
  }
  if (report->finished) {
    t.rows.push_back({"outcome", r.outcome.empty() ? "-" : r.outcome});
  }
  if (!r.error.empty()) t.rows.push_back({"error", r.error});
  std::cout << FormatTable(t);
  Table a;
  a.header = {"ATTEMPT", "WORKER", "STARTED", "ENDED", "OUTCOME", "ERROR"};
  a.right_align = {true};
  for (const AttemptRecord& h : r.history) {
    const std::string outcome =
        h.ok ? (h.outcome.empty() ? "ok" : h.outcome) : "failed";
    a.rows.push_back({std::to_string(h.attempt),
                      h.worker.empty() ? "-" : h.worker,
                      h.started_ms ? FormatUtcMs(h.started_ms) : "-",
                      h.ended_ms ? FormatUtcMs(h.ended_ms) : "-", outcome,
                      h.error.empty() ? "-" : h.error});
  }
  if (a.rows.empty()) {
    std::cout << "\nno attempt has ended yet\n";
  } else {
    std::cout << "\n" << FormatTable(a);
  }
  if (report->finished) {
    std::cout << "\nresult:\n" << Dump(EmbeddedResult(r)) << "\n";
  }
  return kExitOk;
}

volatile sig_atomic_t g_stop_events = 0;

void StopEvents(int) { g_stop_events = 1; }

// Follows the cluster until SIGINT, SIGTERM or SIGPIPE (the reader went
// away); stdout is flushed after every line so a pipe sees each at once.
int FollowEvents(Client& client, const CtlFlags& flags) {
  struct sigaction sa = {};
  sa.sa_handler = StopEvents;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGPIPE}) sigaction(sig, &sa, nullptr);
  EventFilter filter{flags.batch_id, flags.queue, flags.worker_filter};
  Status s = client.FollowEvents(
      filter,
      [](const ClusterEvent& e) {
        std::cout << ToJsonLine(e) << "\n" << std::flush;
        return bool(std::cout);
      },
      [] { return g_stop_events != 0; },
      [] {
        Fail(
            "the broker had forgotten this subscription (restarted?): "
            "subscribed again; events in between are missed");
      });
  if (!s.ok()) return ExitFor(s);
  return kExitOk;
}

int ShowActive(Client& client, const CtlFlags& flags) {
  auto tasks = client.Active(flags.batch_id, flags.queue, flags.worker);
  if (!tasks.ok()) return ExitFor(tasks.status());
  if (flags.json) {
    ordered_json list = ordered_json::array();
    for (const RunningTask& r : *tasks) list.push_back(RunningJson(r));
    ordered_json doc;
    doc["tasks"] = std::move(list);
    std::cout << Dump(doc) << "\n";
    return kExitOk;
  }
  Table t;
  t.header = {"TASK", "URL", "QUEUE", "BATCH", "WORKER", "SINCE", "ATTEMPT"};
  t.right_align = {true, false, false, false, false, false, true};
  for (const RunningTask& r : *tasks) {
    t.rows.push_back({std::to_string(r.task_id), r.url, r.queue, r.batch_id,
                      r.worker, FormatUtcMs(r.since_ms),
                      std::to_string(r.attempt)});
  }
  std::cout << FormatTable(t);
  return kExitOk;
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
      return ShowQueues(client, flags.json, flags.all);
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
    case CtlCommand::kCancelTask:
      return CancelOneTask(client, flags);
    case CtlCommand::kEvents:
      return FollowEvents(client, flags);
    case CtlCommand::kPause:
      return PauseOrResume(client, flags, /*pause=*/true);
    case CtlCommand::kResume:
      return PauseOrResume(client, flags, /*pause=*/false);
    case CtlCommand::kStatus:
      return ShowStatus(client, flags.json);
    case CtlCommand::kBatches:
      return ShowBatches(client, flags.json, flags.limit, flags.before);
    case CtlCommand::kTask:
      return ShowTask(client, flags.task_id, flags.json);
    case CtlCommand::kActive:
      return ShowActive(client, flags);
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
  if (tq::Status s = tq::ResolveCancelTarget(&flags); !s.ok()) {
    std::cerr << "tq-ctl: " << s.message() << "\n";
    return tq::kExitUsage;
  }
  return tq::Run(flags);
}
