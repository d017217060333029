// The broker core's side of worker health (#18): each task's attempts with
// their workers, per-worker accounting, quarantine and its probes, and the
// dispatch rule that sends a retry to a worker that has not failed it. The
// rule itself lives in WorkerSessions; docs/lifecycle.md describes it.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "broker/broker.h"

namespace tq {
namespace {

// Ready tasks a worker's dispatch looks past before it takes the head.
constexpr int kMaxSkippedRetries = 64;

const char* StateName(const WorkerSession& s) {
  if (s.quarantined()) return "quarantined";
  return s.state == WorkerState::kDraining ? "draining" : "active";
}

}  // namespace

void Broker::RecordAttempt(uint64_t id, uint32_t attempt,
                           const std::string& worker, bool ok,
                           const std::string& outcome,
                           const std::string& error) {
  std::vector<AttemptRecord>& h = history_[id];
  // Bounded: attempts are, but unproven losses and RetryDead are not.
  constexpr size_t kMaxHistory = 32;
  if (h.size() >= kMaxHistory) h.erase(h.begin());
  int64_t started_ms = 0;
  if (auto live = live_leases_.find(id); live != live_leases_.end()) {
    started_ms = live->second.since_ms;
    live->second.since_ms = 0;  // the URL stays for the task's next events
  }
  h.push_back({attempt, worker, ok, outcome, error.substr(0, 500), started_ms,
               clock_.WallMs()});
}

std::vector<std::string> Broker::FailedBy(uint64_t id,
                                          const std::string& except) const {
  std::vector<std::string> workers;
  auto it = history_.find(id);
  if (it == history_.end()) return workers;
  for (const AttemptRecord& a : it->second) {
    if (a.ok || a.worker.empty() || a.worker == except) continue;
    if (std::find(workers.begin(), workers.end(), a.worker) == workers.end()) {
      workers.push_back(a.worker);
    }
  }
  return workers;
}

void Broker::AccountResult(WorkerSession& s, uint64_t id, bool ok, bool retried,
                           const std::string& error,
                           const std::vector<std::string>& failed_by) {
  WorkerHealth& h = *s.health;
  const TimePoint now = clock_.Now();
  MarkDirty(h);
  const bool probe = h.quarantined && h.probe_task == id;
  if (ok) {
    std::vector<std::string> blamed =
        sessions_.NoteSuccess(h, id, failed_by, now);
    for (const std::string& w : blamed) {
      if (WorkerHealth* other = sessions_.FindHealth(w)) {
        QuarantineWorker(*other,
                         fmt::format("{} failed attempts in a row; task {} "
                                     "failed there and succeeded on {}",
                                     other->run_failures, id, s.worker_id));
      }
    }
    if (probe) {
      spdlog::info("worker {}: probe task {} succeeded, quarantine over",
                   s.worker_id, id);
      sessions_.Release(h);
    }
    return;
  }
  const bool quarantine =
      sessions_.NoteFailure(h, id, error, retried, /*timed_out=*/false, now);
  if (probe) {
    sessions_.ProbeFailed(h, now);
    spdlog::warn("worker {}: probe task {} failed ({}); next probe in {}",
                 s.worker_id, id, error, FormatSeconds(h.backoff));
  } else if (quarantine) {
    QuarantineWorker(h, fmt::format("{} failed attempts in a row, some of "
                                    "whose tasks succeeded on other workers",
                                    h.run_failures));
  }
}

void Broker::AccountLoss(WorkerSession& s, uint64_t id, bool retried,
                         bool timed_out, const std::string& reason) {
  WorkerHealth& h = *s.health;
  const TimePoint now = clock_.Now();
  MarkDirty(h);
  const bool probe = h.quarantined && h.probe_task == id;
  const bool quarantine =
      sessions_.NoteFailure(h, id, reason, retried, timed_out, now);
  if (probe) {
    sessions_.ProbeFailed(h, now);
  } else if (quarantine) {
    QuarantineWorker(h, fmt::format("{} failed attempts in a row, some of "
                                    "whose tasks succeeded on other workers",
                                    h.run_failures));
  }
}

void Broker::QuarantineWorker(WorkerHealth& h, const std::string& why) {
  if (h.quarantined) return;
  sessions_.Quarantine(h, why, clock_.Now());
  WorkerSession* s = sessions_.ForWorker(h.record.worker_id);
  size_t given_back = 0;
  if (s != nullptr) {
    std::vector<uint64_t> held;
    for (const auto& [task_id, token] : s->in_flight) held.push_back(task_id);
    std::sort(held.begin(), held.end());
    for (uint64_t task_id : held) {
      TaskEntry* t = tasks_.Find(task_id);
      if (t == nullptr || t->holder != s->id) continue;
      Requeue(*t,
              "given back: worker " + h.record.worker_id + " was quarantined");
      ++given_back;
    }
  }
  spdlog::warn(
      "worker {} (host {}, key {}) quarantined: {}; last error: {}; {} tasks "
      "given back; probe in {} (or tq-ctl release {})",
      h.record.worker_id, s != nullptr ? s->hostname : "?",
      s != nullptr && !s->key_name.empty() ? s->key_name : "none", why,
      h.record.last_failure, given_back, FormatSeconds(h.backoff),
      h.record.worker_id);
}

void Broker::HandleReleaseWorker(const std::string& peer, uint64_t seq,
                                 const wire::ReleaseWorker& req) {
  WorkerHealth* h = sessions_.FindHealth(req.worker_id());
  if (h == nullptr || !h->quarantined) {
    SendError(
        peer, seq, wire::NOT_FOUND,
        "worker '" + req.worker_id().substr(0, 128) + "' is not quarantined");
    return;
  }
  spdlog::info("worker {}: quarantine ended by tq-ctl release",
               h->record.worker_id);
  sessions_.Release(*h);
  wire::Envelope env;
  env.set_seq(seq);
  env.mutable_admin_ack()->set_affected(1);
  Send(peer, std::move(env));
}

TaskEntry* Broker::NextTaskFor(const WorkerSession& s,
                               const std::string& queue) {
  if (history_.empty()) return tasks_.NextReady(queue);
  auto skip = [&](const TaskEntry& t) {
    auto it = history_.find(t.id);
    if (it == history_.end()) return false;
    const std::vector<AttemptRecord>& h = it->second;
    auto failed = [&](const std::string& w) {
      return std::any_of(h.begin(), h.end(), [&](const AttemptRecord& a) {
        return !a.ok && a.worker == w;
      });
    };
    if (!failed(s.worker_id)) return false;
    // Wait for another worker only if one could take it: active, not
    // quarantined, serving the queue, and not among those that failed it.
    for (const auto& [id, other] : sessions_.all()) {
      if (other.id == s.id || other.quarantined() ||
          other.state != WorkerState::kActive) {
        continue;
      }
      if (std::find(other.queues.begin(), other.queues.end(), queue) ==
          other.queues.end()) {
        continue;
      }
      if (!failed(other.worker_id)) return true;
    }
    return false;
  };
  return tasks_.NextReadyExcept(queue, skip, kMaxSkippedRetries);
}

void Broker::SaveDirtyWorkers() {
  if (dirty_workers_.empty()) return;
  if (store_ok()) {
    for (const std::string& id : dirty_workers_) {
      WorkerHealth* h = sessions_.FindHealth(id);
      if (h == nullptr) continue;
      if (Status st = store_.SaveWorker(h->record); !st.ok()) {
        OnStoreFailure(st);
        break;
      }
    }
  }
  dirty_workers_.clear();
}

void Broker::FillHealth(const WorkerSession& s, wire::WorkerInfo* w) const {
  const WorkerRecord& r = s.health->record;
  w->set_tasks_done(r.succeeded);
  w->set_succeeded(r.succeeded);
  w->set_failed(r.failed);
  w->set_retried(r.retried);
  w->set_timed_out(r.timed_out);
  w->set_consecutive_failures(r.consecutive_failures);
  w->set_last_failure(r.last_failure);
  w->set_first_seen_ms(r.first_seen_ms);
  w->set_session_start_ms(r.session_start_ms);
  w->set_state(StateName(s));
  if (s.quarantined()) {
    const WorkerHealth& h = *s.health;
    w->set_state_reason(
        h.reason + (h.probe_task != 0
                        ? fmt::format(" (probe task {} running)", h.probe_task)
                        : ""));
  }
}

}  // namespace tq
