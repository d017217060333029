#include "broker/worker_sessions.h"

#include <algorithm>

namespace tq {
namespace {

// A quarantined worker takes nothing but its one probe task.
bool CanTakeTask(const WorkerSession& s) {
  if (s.quarantined() && !(s.health->probe_open && s.in_flight.empty())) {
    return false;
  }
  return s.credit > 0 && s.state == WorkerState::kActive &&
         s.in_flight.size() < s.window();
}

constexpr size_t kMaxFailedTasksTracked = 256;

}  // namespace

WorkerSession& WorkerSessions::Add(WorkerSession s) {
  const SessionId id = next_id_++;
  s.id = id;
  if (s.health == nullptr) s.health = &Health(s.worker_id, 0);
  by_worker_[s.worker_id] = id;
  by_peer_[s.peer] = id;
  return sessions_.emplace(id, std::move(s)).first->second;
}

std::optional<WorkerSession> WorkerSessions::Remove(SessionId id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  WorkerSession s = std::move(it->second);
  sessions_.erase(it);
  if (auto p = by_peer_.find(s.peer); p != by_peer_.end() && p->second == id) {
    by_peer_.erase(p);
  }
  if (auto w = by_worker_.find(s.worker_id);
      w != by_worker_.end() && w->second == id) {
    by_worker_.erase(w);
  }
  return s;
}

WorkerSession* WorkerSessions::Find(SessionId id) {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : &it->second;
}

WorkerSession* WorkerSessions::ForPeer(const std::string& peer) {
  auto it = by_peer_.find(peer);
  return it == by_peer_.end() ? nullptr : Find(it->second);
}

WorkerSession* WorkerSessions::ForWorker(const std::string& worker_id) {
  auto it = by_worker_.find(worker_id);
  return it == by_worker_.end() ? nullptr : Find(it->second);
}

uint32_t WorkerSessions::CountServing(const std::string& queue) const {
  uint32_t serving = 0;
  for (const auto& [id, s] : sessions_) {
    if (std::find(s.queues.begin(), s.queues.end(), queue) != s.queues.end()) {
      ++serving;
    }
  }
  return serving;
}

void WorkerSessions::Grant(WorkerSession& s, uint32_t grant) {
  if (grant == 0 || s.state == WorkerState::kDraining) return;
  // Credit is what the worker asked for, within its slots; the slow-start
  // window limits what it gets, not what it asked.
  const uint32_t room = s.concurrency - uint32_t(s.in_flight.size());
  s.credit = uint32_t(std::min<uint64_t>(uint64_t(s.credit) + grant, room));
  if (CanTakeTask(s)) JoinRing(s);
}

void WorkerSessions::Drain(WorkerSession& s) {
  s.state = WorkerState::kDraining;
  s.credit = 0;
}

void WorkerSessions::Assign(WorkerSession& s, uint64_t task_id,
                            uint64_t token) {
  s.in_flight.emplace(task_id, token);
  --s.credit;
}

void WorkerSessions::Hold(WorkerSession& s, uint64_t task_id, uint64_t token) {
  s.in_flight.emplace(task_id, token);
}

void WorkerSessions::Refund(WorkerSession& s, uint32_t n) { s.credit += n; }

void WorkerSessions::Forget(SessionId id, uint64_t task_id) {
  if (WorkerSession* s = Find(id)) s->in_flight.erase(task_id);
}

void WorkerSessions::JoinRing(WorkerSession& s) {
  if (s.in_ready_ring) return;
  s.in_ready_ring = true;
  ring_.push_back(s.id);
}

void WorkerSessions::RingAllWithCredit() {
  for (auto& [id, s] : sessions_) {
    if (CanTakeTask(s)) JoinRing(s);
  }
}

WorkerSession* WorkerSessions::PopRing() {
  while (!ring_.empty()) {
    WorkerSession* s = Find(ring_.front());
    ring_.pop_front();
    if (s == nullptr) continue;
    s->in_ready_ring = false;
    // One at its slow-start window comes back with its next result.
    if (CanTakeTask(*s)) return s;
  }
  return nullptr;
}

void WorkerSessions::Requeue(WorkerSession& s) {
  if (CanTakeTask(s)) JoinRing(s);
}

void WorkerSessions::LoadRecords(std::vector<WorkerRecord> records) {
  for (WorkerRecord& r : records) {
    WorkerHealth& h = health_[r.worker_id];
    h.run_failures = r.consecutive_failures;
    h.record = std::move(r);
  }
}

WorkerHealth& WorkerSessions::Health(const std::string& worker_id,
                                     int64_t wall_now_ms) {
  auto [it, added] = health_.try_emplace(worker_id);
  if (added) {
    it->second.record.worker_id = worker_id;
    it->second.record.first_seen_ms = wall_now_ms;
  }
  return it->second;
}

WorkerHealth* WorkerSessions::FindHealth(const std::string& worker_id) {
  auto it = health_.find(worker_id);
  return it == health_.end() ? nullptr : &it->second;
}

std::vector<std::string> WorkerSessions::NoteSuccess(
    WorkerHealth& h, uint64_t task_id,
    const std::vector<std::string>& failed_by, TimePoint now) {
  ++h.record.succeeded;
  h.record.consecutive_failures = 0;
  h.run_failures = 0;
  h.failed_tasks.clear();
  h.proven = 0;
  std::vector<std::string> to_quarantine;
  for (const std::string& other : failed_by) {
    WorkerHealth* o = FindHealth(other);
    if (o == nullptr || o == &h) continue;
    auto f = o->failed_tasks.find(task_id);
    if (f == o->failed_tasks.end()) continue;
    const bool in_window = now - f->second <= health_options_.quarantine_window;
    o->failed_tasks.erase(f);
    if (!in_window) continue;
    ++o->proven;
    if (ShouldQuarantine(*o)) to_quarantine.push_back(other);
  }
  return to_quarantine;
}

bool WorkerSessions::NoteFailure(WorkerHealth& h, uint64_t task_id,
                                 const std::string& error, bool retried,
                                 bool timed_out, TimePoint now) {
  ++h.record.failed;
  if (timed_out) ++h.record.timed_out;
  if (retried) ++h.record.retried;
  ++h.record.consecutive_failures;
  h.record.last_failure = error.substr(0, 500);
  ++h.run_failures;
  if (h.failed_tasks.size() >= kMaxFailedTasksTracked) {
    // Keep the newest: drop the oldest entry.
    auto oldest = std::min_element(
        h.failed_tasks.begin(), h.failed_tasks.end(),
        [](const auto& a, const auto& b) { return a.second < b.second; });
    h.failed_tasks.erase(oldest);
  }
  h.failed_tasks[task_id] = now;
  return ShouldQuarantine(h);
}

bool WorkerSessions::ShouldQuarantine(const WorkerHealth& h) const {
  return !h.quarantined && h.proven > 0 &&
         h.run_failures >=
             std::max<uint32_t>(1, health_options_.quarantine_after);
}

void WorkerSessions::Quarantine(WorkerHealth& h, std::string reason,
                                TimePoint now) {
  h.quarantined = true;
  h.reason = std::move(reason);
  h.backoff = health_options_.probe_backoff;
  h.probe_at = now + h.backoff;
  h.probe_open = false;
  h.probe_task = 0;
}

void WorkerSessions::Release(WorkerHealth& h) {
  h.quarantined = false;
  h.reason.clear();
  h.probe_open = false;
  h.probe_task = 0;
  h.run_failures = 0;
  h.failed_tasks.clear();
  h.proven = 0;
  for (auto& [id, s] : sessions_) {
    if (s.health == &h && CanTakeTask(s)) JoinRing(s);
  }
}

void WorkerSessions::ProbeFailed(WorkerHealth& h, TimePoint now) {
  h.probe_task = 0;
  h.probe_open = false;
  h.backoff = std::min(h.backoff * 2, health_options_.max_probe_backoff);
  h.probe_at = now + h.backoff;
}

std::optional<TimePoint> WorkerSessions::OpenDueProbes(TimePoint now) {
  std::optional<TimePoint> next;
  for (auto& [id, s] : sessions_) {
    WorkerHealth& h = *s.health;
    if (!h.quarantined || h.probe_task != 0) continue;
    if (!h.probe_open && now >= h.probe_at) h.probe_open = true;
    if (h.probe_open) {
      if (CanTakeTask(s)) JoinRing(s);
    } else {
      next = next ? std::min(*next, h.probe_at) : h.probe_at;
    }
  }
  return next;
}

uint32_t WorkerSessions::NoteUnprovenLoss(const std::string& key, TimePoint now,
                                          Millis window) {
  constexpr size_t kMaxTracked = 10'000;
  if (losses_.size() >= kMaxTracked && !losses_.count(key)) {
    std::erase_if(
        losses_, [&](const auto& e) { return now - e.second.since >= window; });
    if (losses_.size() >= kMaxTracked) losses_.clear();
  }
  LossRecord& r = losses_[key];
  if (r.sessions == 0 || now - r.since >= window) r = {0, now};
  return ++r.sessions;
}

uint32_t WorkerSessions::UnprovenLosses(const std::string& key, TimePoint now,
                                        Millis window) const {
  auto it = losses_.find(key);
  if (it == losses_.end() || now - it->second.since >= window) return 0;
  return it->second.sessions;
}

WorkerSessions::LivenessScan WorkerSessions::ScanLiveness(
    TimePoint now, Millis interval, Millis silence_limit) {
  LivenessScan scan;
  scan.next = now + interval;
  for (auto& [id, s] : sessions_) {
    if (now - s.last_seen >= silence_limit) {
      scan.silent.emplace_back(
          id, std::chrono::duration_cast<Millis>(now - s.last_seen));
      continue;
    }
    if (now - s.last_sent >= interval) {
      scan.heartbeat_due.push_back(s.peer);
      s.last_sent = now;
    }
    scan.next = std::min(
        {scan.next, s.last_sent + interval, s.last_seen + silence_limit});
  }
  return scan;
}

}  // namespace tq
