#include "common/result_wire.h"

#include "common/task_state.h"

namespace tq {
namespace {

// wire::Result and wire::TaskInfo carry the attempt's fields under the same
// names: one copy each way serves both.
template <typename Wire>
void AttemptToWire(AttemptResult&& r, Wire* out) {
  out->set_ok(r.ok);
  out->set_output(std::move(r.output));
  out->set_output_truncated(r.output_truncated);
  out->set_error(std::move(r.error));
  out->set_exit_code(r.exit_code);
  out->set_stderr_tail(std::move(r.stderr_tail));
  out->set_duration_ms(r.duration_ms);
  for (ResultFile& f : r.files) {
    wire::File* file = out->add_files();
    file->set_name(std::move(f.name));
    file->set_sha256(std::move(f.sha256));
    file->set_size(f.size);
    file->set_content(std::move(f.content));
  }
  out->set_outcome(std::move(r.outcome));
  out->set_outcome_reason(std::move(r.outcome_reason));
}

template <typename Wire>
void AttemptFromWire(const Wire& w, AttemptResult* r) {
  r->ok = w.ok();
  r->output = w.output();
  r->output_truncated = w.output_truncated();
  r->error = w.error();
  r->exit_code = w.exit_code();
  r->stderr_tail = w.stderr_tail();
  r->duration_ms = w.duration_ms();
  r->files.reserve(w.files_size());
  for (const wire::File& f : w.files()) {
    r->files.push_back({f.name(), f.sha256(), f.size(), f.content()});
  }
  r->outcome = w.outcome();
  r->outcome_reason = w.outcome_reason();
}

TaskState StateNamed(const std::string& name) {
  for (int s = 0; s <= int(TaskState::kCancelled); ++s) {
    if (TaskStateName(TaskState(s)) == name) return TaskState(s);
  }
  return TaskState::kDone;
}

}  // namespace

void ToWire(AttemptResult&& result, wire::Result* out) {
  AttemptToWire(std::move(result), out);
}

AttemptResult FromWire(const wire::Result& result) {
  AttemptResult r;
  AttemptFromWire(result, &r);
  return r;
}

void ToWire(TaskResult&& t, wire::TaskInfo* out) {
  out->set_task_id(t.task_id);
  out->set_batch_id(std::move(t.batch_id));
  out->set_index(t.index);
  out->set_url(std::move(t.url));
  out->set_queue(std::move(t.queue));
  out->set_state(ToWire(StateNamed(t.state)));
  out->set_attempts(t.attempts);
  out->set_worker(std::move(t.worker));
  out->set_submitted_ms(t.submitted_ms);
  out->set_finished_ms(t.finished_ms);
  out->set_finish_seq(t.finish_seq);
  for (AttemptRecord& a : t.history) {
    wire::Attempt* w = out->add_history();
    w->set_attempt(a.attempt);
    w->set_worker(std::move(a.worker));
    w->set_ok(a.ok);
    w->set_outcome(std::move(a.outcome));
    w->set_error(std::move(a.error));
    w->set_started_ms(a.started_ms);
    w->set_ended_ms(a.ended_ms);
  }
  AttemptToWire(std::move(t), out);
}

TaskResult FromWire(const wire::TaskInfo& info) {
  TaskResult r;
  AttemptFromWire(info, &r);
  r.task_id = info.task_id();
  r.batch_id = info.batch_id();
  r.index = info.index();
  r.url = info.url();
  r.queue = info.queue();
  r.state = std::string(TaskStateName(static_cast<TaskState>(info.state())));
  r.attempts = info.attempts();
  r.worker = info.worker();
  r.submitted_ms = info.submitted_ms();
  r.finished_ms = info.finished_ms();
  r.finish_seq = info.finish_seq();
  r.history.reserve(info.history_size());
  for (const wire::Attempt& a : info.history()) {
    r.history.push_back({a.attempt(), a.worker(), a.ok(), a.outcome(),
                         a.error(), a.started_ms(), a.ended_ms()});
  }
  return r;
}

namespace {

void HistogramToWire(const LatencyBuckets& h, wire::LatencyHistogram* out) {
  for (double b : h.upper_bounds_s) out->add_upper_bounds_seconds(b);
  for (uint64_t c : h.counts) out->add_counts(c);
  out->set_sum_seconds(h.sum_s);
  out->set_count(h.count);
}

LatencyBuckets HistogramFromWire(const wire::LatencyHistogram& w) {
  LatencyBuckets h;
  h.upper_bounds_s.assign(w.upper_bounds_seconds().begin(),
                          w.upper_bounds_seconds().end());
  h.counts.assign(w.counts().begin(), w.counts().end());
  h.sum_s = w.sum_seconds();
  h.count = w.count();
  return h;
}

}  // namespace

void ToWire(const BrokerStats& s, wire::BrokerStats* out) {
  out->set_messages_in(s.messages_in);
  out->set_messages_out(s.messages_out);
  out->set_bad_messages(s.bad_messages);
  out->set_commits(s.commits);
  out->set_commit_failures(s.commit_failures);
  out->set_redeliveries(s.redeliveries);
  out->set_store_ok(s.store_ok);
  out->set_store_error(s.store_error);
  out->set_tasks_submitted(s.tasks_submitted);
  out->set_tasks_done(s.tasks_done);
  out->set_attempts_failed(s.attempts_failed);
  out->set_tasks_dead(s.tasks_dead);
  out->set_tasks_cancelled(s.tasks_cancelled);
  out->set_permission_denied(s.permission_denied);
  out->set_rate_limited(s.rate_limited);
  if (!s.commit_latency.counts.empty()) {
    HistogramToWire(s.commit_latency, out->mutable_commit_latency());
  }
  if (!s.sync_latency.counts.empty()) {
    HistogramToWire(s.sync_latency, out->mutable_sync_latency());
  }
}

BrokerStats FromWire(const wire::BrokerStats& w) {
  BrokerStats s;
  s.messages_in = w.messages_in();
  s.messages_out = w.messages_out();
  s.bad_messages = w.bad_messages();
  s.commits = w.commits();
  s.commit_failures = w.commit_failures();
  s.redeliveries = w.redeliveries();
  s.store_ok = w.store_ok();
  s.store_error = w.store_error();
  s.tasks_submitted = w.tasks_submitted();
  s.tasks_done = w.tasks_done();
  s.attempts_failed = w.attempts_failed();
  s.tasks_dead = w.tasks_dead();
  s.tasks_cancelled = w.tasks_cancelled();
  s.permission_denied = w.permission_denied();
  s.rate_limited = w.rate_limited();
  if (w.has_commit_latency()) {
    s.commit_latency = HistogramFromWire(w.commit_latency());
  }
  if (w.has_sync_latency())
    s.sync_latency = HistogramFromWire(w.sync_latency());
  return s;
}

}  // namespace tq
