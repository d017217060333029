#include "broker/worker_sessions.h"

#include <algorithm>

namespace tq {

WorkerSession& WorkerSessions::Add(WorkerSession s) {
  const SessionId id = next_id_++;
  s.id = id;
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
  const uint32_t room = s.concurrency - uint32_t(s.in_flight.size());
  s.credit = uint32_t(std::min<uint64_t>(uint64_t(s.credit) + grant, room));
  if (s.credit > 0) JoinRing(s);
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
    if (s.credit > 0 && s.state == WorkerState::kActive) JoinRing(s);
  }
}

WorkerSession* WorkerSessions::PopRing() {
  while (!ring_.empty()) {
    WorkerSession* s = Find(ring_.front());
    ring_.pop_front();
    if (s == nullptr) continue;
    s->in_ready_ring = false;
    if (s->credit > 0 && s->state == WorkerState::kActive) return s;
  }
  return nullptr;
}

void WorkerSessions::Requeue(WorkerSession& s) {
  if (s.credit > 0) JoinRing(s);
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
