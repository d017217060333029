#include "client/ctl_flags.h"

#include <CLI/CLI.hpp>
#include <algorithm>

#include "common/endpoint.h"
#include "common/queue_name.h"
#include "tq/client.h"

namespace tq {
namespace {

constexpr const char* kExitCodesHelp =
    "Exit codes: 0 ok, 1 purge declined at the prompt, 2 usage error, 4 "
    "broker unreachable or error, 5 no such batch, task, queue or worker, 6 "
    "results --out could not write a file.";

CLI::App* AddCommand(CLI::App& app, const char* name, const char* help,
                     CtlCommand command, CtlFlags* flags) {
  CLI::App* sub = app.add_subcommand(name, help);
  sub->callback([flags, command] { flags->command = command; });
  return sub;
}

// cancel TASK_ID [--terminate] | cancel --batch ID (| cancel BATCH_ID).
void AddCancelCommand(CLI::App& app, CtlFlags* flags) {
  CLI::App* cancel = AddCommand(
      app, "cancel",
      "cancel one task (TASK_ID: queued, waiting or running), or a batch's "
      "queued and retry-waiting tasks (--batch ID)",
      CtlCommand::kCancel, flags);
  auto* target = cancel->add_option(
      "TASK_ID", flags->cancel_target,
      "task id (a batch id here still cancels the batch, as before)");
  auto* batch = cancel->add_option("--batch", flags->batch_id,
                                   "cancel this batch's waiting tasks");
  target->excludes(batch);
  cancel
      ->add_flag("--terminate", flags->terminate,
                 "the task is running: have its worker kill the handler now "
                 "(else it runs on and its result is discarded)")
      ->excludes(batch);
}

void AddEventsCommand(CLI::App& app, CtlFlags* flags) {
  CLI::App* events = AddCommand(
      app, "events",
      "follow the cluster live, one JSON object per line, until Ctrl-C",
      CtlCommand::kEvents, flags);
  events->add_option("--batch", flags->batch_id,
                     "only this batch's events (a submit key must name one "
                     "of its batches)");
  events->add_option("--queue", flags->queue, "only this queue's events");
  events->add_option("--worker", flags->worker_filter,
                     "only this worker's events");
}

void AddPauseCommands(CLI::App& app, CtlFlags* flags) {
  CLI::App* pause = AddCommand(
      app, "pause",
      "stop leasing a queue's tasks (it still takes submissions; survives "
      "a broker restart)",
      CtlCommand::kPause, flags);
  pause->add_option("QUEUE", flags->queue, "queue name")->required();
  CLI::App* resume =
      AddCommand(app, "resume", "lease a paused queue's tasks again",
                 CtlCommand::kResume, flags);
  resume->add_option("QUEUE", flags->queue, "queue name")->required();
}

// The views (#19): queues, workers, status, batches, task, active.
void AddViewCommands(CLI::App& app, CtlFlags* flags) {
  CLI::App* queues = AddCommand(app, "queues", "task counts per queue",
                                CtlCommand::kQueues, flags);
  queues->add_flag("--all", flags->all,
                   "also the queues with nothing to do that no connected "
                   "worker serves");
  AddCommand(app, "workers",
             "connected workers, what each runs now, and the ones that left "
             "within the last hour (offline)",
             CtlCommand::kWorkers, flags);
  AddCommand(app, "status",
             "the broker: version, uptime, pid, memory, database, "
             "addresses, workers, task totals",
             CtlCommand::kStatus, flags);
  CLI::App* batches =
      AddCommand(app, "batches", "every batch, newest first, with its counts",
                 CtlCommand::kBatches, flags);
  batches->add_option("--limit", flags->limit, "batches per page")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  batches->add_option("--before", flags->before,
                      "older batches: the number the previous page named");
  CLI::App* task =
      AddCommand(app, "task", "one task: state, every attempt, the result",
                 CtlCommand::kTask, flags);
  task->add_option("ID", flags->task_id, "task id")
      ->required()
      ->check(CLI::PositiveNumber);
  CLI::App* active = AddCommand(app, "active", "the tasks running now",
                                CtlCommand::kActive, flags);
  active->add_option("--batch", flags->batch_id, "only this batch's");
  active->add_option("--queue", flags->queue, "only this queue's");
  active->add_option("--worker", flags->worker, "only this worker's");
}

void AddReloadKeysCommand(CLI::App& app, CtlFlags* flags) {
  AddCommand(app, "reload-keys",
             "have a keyed broker read its --authorized-keys again (like "
             "SIGHUP; admin role): prints the keys added, removed and "
             "changed, and the sessions closed",
             CtlCommand::kReloadKeys, flags);
}

}  // namespace

void AddCtlFlags(CLI::App& app, CtlFlags* flags) {
  app.add_option("--broker", flags->broker, "broker endpoint")
      ->envname(kBrokerEnvVar)
      ->capture_default_str();
  app.add_flag("--json", flags->json,
               "one JSON document instead of columns (every command but "
               "results)");
  app.add_option("--timeout", flags->request_timeout_s,
                 "seconds to wait for each broker reply (3 attempts)")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  app.add_option("--log-level", flags->log_level,
                 "trace, debug, info, warn, error, off")
      ->capture_default_str();
  AddCurveFlags(app, &flags->curve);
  app.footer(kExitCodesHelp);
  // At most one; none, or an unknown word, is reported by tq-ctl itself so
  // it can name the valid commands (CLI11 would only say one is required).
  app.require_subcommand(0, 1);
  // Global flags may also follow the subcommand: `tq-ctl queues --json`.
  app.fallthrough();

  AddViewCommands(app, flags);
  CLI::App* batch = AddCommand(app, "batch", "progress of a batch",
                               CtlCommand::kBatch, flags);
  batch->add_option("ID", flags->batch_id, "batch id")->required();
  CLI::App* results = AddCommand(
      app, "results", "every result of a batch so far, as JSON lines",
      CtlCommand::kResults, flags);
  results->add_option("ID", flags->batch_id, "batch id")->required();
  results->add_option("--out", flags->out_dir,
                      "also write each result and its files under DIR: "
                      "DIR/<task-id>/result.json and DIR/<task-id>/files/");
  results
      ->add_option("--layout", flags->layout,
                   "with --out: 'tasks', or 'thug' for Thug's log tree "
                   "DIR/<md5(url)>/<timestamp>/analysis/json/analysis.json")
      ->check(CLI::IsMember({"tasks", "thug"}))
      ->capture_default_str();
  AddCancelCommand(app, flags);
  CLI::App* retry =
      AddCommand(app, "retry", "queue dead tasks again, with fresh attempts",
                 CtlCommand::kRetry, flags);
  auto* retry_batch =
      retry->add_option("--batch", flags->batch_id, "dead tasks of this batch");
  auto* retry_queue =
      retry->add_option("--queue", flags->queue, "dead tasks of this queue");
  retry_batch->excludes(retry_queue);
  retry->require_option(1);
  CLI::App* purge = AddCommand(
      app, "purge", "cancel every queued and retry-waiting task of a queue",
      CtlCommand::kPurge, flags);
  purge->add_option("QUEUE", flags->queue, "queue name")->required();
  CLI::App* release = AddCommand(
      app, "release",
      "end a quarantined worker's quarantine now (it takes tasks again)",
      CtlCommand::kRelease, flags);
  release->add_option("WORKER", flags->worker_id, "worker id")->required();
  AddReloadKeysCommand(app, flags);
  purge->add_flag("--yes,-y", flags->yes,
                  "do not ask (needed when standard input is not a terminal)");
  AddEventsCommand(app, flags);
  AddPauseCommands(app, flags);
  // Extra words at the top level are the unknown command tq-ctl names; a
  // subcommand keeps refusing its own.
  for (CLI::App* sub : app.get_subcommands({})) sub->allow_extras(false);
  app.allow_extras(true);
}

std::string CtlCommandNames() {
  CLI::App app;
  CtlFlags flags;
  AddCtlFlags(app, &flags);
  std::string names;
  for (const CLI::App* sub : app.get_subcommands({})) {
    if (!names.empty()) names += ", ";
    names += sub->get_name();
  }
  return names;
}

Status CheckCtlCommand(const CtlFlags& flags,
                       const std::vector<std::string>& remaining) {
  if (flags.command == CtlCommand::kNone) {
    return Status::InvalidArgument(
        (remaining.empty() ? std::string("a command is required")
                           : "unknown command '" + remaining.front() + "'") +
        " (commands: " + CtlCommandNames() + ")");
  }
  if (!remaining.empty()) {
    return Status::InvalidArgument("unexpected argument '" + remaining.front() +
                                   "'");
  }
  return Status::Ok();
}

Status ResolveCancelTarget(CtlFlags* flags) {
  if (flags->command != CtlCommand::kCancel) return Status::Ok();
  const std::string& t = flags->cancel_target;
  if (t.empty()) {
    if (flags->batch_id.empty()) {
      return Status::InvalidArgument("cancel needs TASK_ID or --batch ID");
    }
    if (flags->terminate) {
      return Status::InvalidArgument("--terminate goes with a task id");
    }
    return Status::Ok();  // --batch ID
  }
  const bool digits = t.size() <= 19 &&
                      std::all_of(t.begin(), t.end(),
                                  [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) {
    if (flags->terminate) {
      return Status::InvalidArgument("--terminate goes with a task id, not '" +
                                     t + "'");
    }
    flags->batch_id = t;  // the older `cancel BATCH_ID`
    return Status::Ok();
  }
  flags->task_id = std::stoull(t);
  if (flags->task_id == 0) {
    return Status::InvalidArgument("task ids start at 1");
  }
  flags->command = CtlCommand::kCancelTask;
  return Status::Ok();
}

Status ValidateCtlFlags(const CtlFlags& flags) {
  if (Status s = CheckEndpoint(flags.broker, EndpointUse::kConnect, "--broker");
      !s.ok()) {
    return s;
  }
  if (flags.command == CtlCommand::kRetry && flags.batch_id.empty() &&
      flags.queue.empty()) {
    return Status::InvalidArgument("retry needs --batch ID or --queue QUEUE");
  }
  if (!flags.batch_id.empty()) {
    if (Status s = ValidateBatchId(flags.batch_id); !s.ok()) return s;
  }
  if (!flags.queue.empty()) {
    if (Status s = ValidateQueueName(flags.queue); !s.ok()) return s;
  }
  return ValidateCurveFlags(flags.curve);
}

Result<ClientOptions> ClientOptionsFromFlags(const CtlFlags& flags) {
  ClientOptions options;
  options.endpoint = flags.broker;
  options.request_timeout = std::chrono::milliseconds(
      static_cast<int64_t>(flags.request_timeout_s * 1000.0 + 0.5));
  auto curve = CurveKeysFromFlags(flags.curve);
  if (!curve.ok()) return curve.status();
  options.curve = std::move(curve).value();
  return options;
}

}  // namespace tq
