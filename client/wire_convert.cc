#include "client/wire_convert.h"

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
  p.ok = counts.ok();
  p.unreachable = counts.unreachable();
  p.http_error = counts.http_error();
  p.timeout = counts.timeout();
  return p;
}

QueueSummary ToQueueSummary(const wire::QueueInfo& info) {
  QueueSummary q;
  q.name = info.name();
  q.counts = ToBatchProgress(info.counts());
  q.workers = info.workers();
  q.paused = info.paused();
  return q;
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
  w.succeeded = info.succeeded();
  w.failed = info.failed();
  w.retried = info.retried();
  w.timed_out = info.timed_out();
  w.consecutive_failures = info.consecutive_failures();
  w.last_failure = info.last_failure();
  w.first_seen_ms = info.first_seen_ms();
  w.session_start_ms = info.session_start_ms();
  w.state = info.state().empty() ? "active" : info.state();
  w.state_reason = info.state_reason();
  w.key_name = info.key_name();
  for (const auto& a : info.current()) w.current.push_back(ToRunningTask(a));
  w.offline = info.offline();
  w.last_seen_ms = info.last_seen_ms();
  return w;
}

RunningTask ToRunningTask(const wire::ActiveTask& task) {
  RunningTask r;
  r.task_id = task.task_id();
  r.url = task.url();
  r.queue = task.queue();
  r.batch_id = task.batch_id();
  r.worker = task.worker();
  r.since_ms = task.since_ms();
  r.attempt = task.attempt();
  return r;
}

}  // namespace tq
