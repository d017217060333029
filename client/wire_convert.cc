#include "client/wire_convert.h"

#include "common/task_state.h"

namespace tq {

BatchProgress ToBatchProgress(const wire::BatchCounts& counts) {
  BatchProgress p;
  p.total = counts.total();
  p.queued = counts.queued();
  p.leased = counts.leased();
  p.retry_wait = counts.retry_wait();
  p.done = counts.done();
  p.dead = counts.dead();
  p.cancelled = counts.cancelled();
  return p;
}

TaskResult ToTaskResult(const wire::TaskInfo& info) {
  TaskResult r;
  r.task_id = info.task_id();
  r.batch_id = info.batch_id();
  r.index = info.index();
  r.url = info.url();
  r.queue = info.queue();
  // Out-of-range values (a newer broker) show as "unknown".
  r.state = std::string(TaskStateName(static_cast<TaskState>(info.state())));
  r.attempts = info.attempts();
  r.worker = info.worker();
  r.ok = info.ok();
  r.output = info.output();
  r.output_truncated = info.output_truncated();
  r.error = info.error();
  r.exit_code = info.exit_code();
  r.stderr_tail = info.stderr_tail();
  r.duration_ms = info.duration_ms();
  r.submitted_ms = info.submitted_ms();
  r.finished_ms = info.finished_ms();
  r.finish_seq = info.finish_seq();
  for (const auto& f : info.files()) {
    ResultFile& file = r.files.emplace_back();
    file.name = f.name();
    file.sha256 = f.sha256();
    file.size = f.size();
    file.content = f.content();
  }
  return r;
}

QueueSummary ToQueueSummary(const wire::QueueInfo& info) {
  QueueSummary q;
  q.name = info.name();
  q.counts = ToBatchProgress(info.counts());
  q.workers = info.workers();
  return q;
}

BrokerCounters ToBrokerCounters(const wire::BrokerStats& stats) {
  BrokerCounters c;
  c.messages_in = stats.messages_in();
  c.messages_out = stats.messages_out();
  c.bad_messages = stats.bad_messages();
  c.commits = stats.commits();
  c.commit_failures = stats.commit_failures();
  c.redeliveries = stats.redeliveries();
  c.store_ok = stats.store_ok();
  c.store_error = stats.store_error();
  return c;
}

WorkerSummary ToWorkerSummary(const wire::WorkerInfo& info) {
  WorkerSummary w;
  w.worker_id = info.worker_id();
  w.country = info.country();
  w.country_source = info.country_source();
  w.queues.assign(info.queues().begin(), info.queues().end());
  w.concurrency = info.concurrency();
  w.credit = info.credit();
  w.in_flight = info.in_flight();
  w.last_seen_ms_ago = info.last_seen_ms_ago();
  w.hostname = info.hostname();
  w.tasks_done = info.tasks_done();
  w.peer_address = info.peer_address();
  return w;
}

}  // namespace tq
