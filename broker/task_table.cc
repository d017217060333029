#include "broker/task_table.h"

#include <algorithm>

#include "common/defaults.h"
#include "common/queue_name.h"

namespace tq {

uint64_t Counts::total() const {
  uint64_t n = 0;
  for (uint64_t c : by_state) n += c;
  return n;
}

uint64_t Counts::pending() const {
  return by_state[int(TaskState::kQueued)] + by_state[int(TaskState::kLeased)] +
         by_state[int(TaskState::kRetryWait)];
}

void Counts::ToWire(wire::BatchCounts* out) const {
  out->set_total(total());
  out->set_queued(by_state[int(TaskState::kQueued)]);
  out->set_leased(by_state[int(TaskState::kLeased)]);
  out->set_retry_wait(by_state[int(TaskState::kRetryWait)]);
  out->set_done(by_state[int(TaskState::kDone)]);
  out->set_dead(by_state[int(TaskState::kDead)]);
  out->set_cancelled(by_state[int(TaskState::kCancelled)]);
  out->set_ok(by_outcome[int(Outcome::kOk)]);
  out->set_unreachable(by_outcome[int(Outcome::kUnreachable)]);
  out->set_http_error(by_outcome[int(Outcome::kHttpError)]);
  out->set_timeout(by_outcome[int(Outcome::kTimeout)]);
}

void TaskTable::Clear() {
  tasks_.clear();
  queues_.clear();
  batches_.clear();
  lease_deadlines_ = MinHeap();
  retry_deadlines_ = MinHeap();
  batches_with_news_.clear();
  Queue(kGenericQueue);  // always listed
  work_added_ = true;
}

QueueEntry& TaskTable::Queue(const std::string& name) {
  return *queues_.try_emplace(name).first;
}

BatchEntry& TaskTable::Batch(const std::string& id) {
  return *batches_.try_emplace(id).first;
}

TaskEntry& TaskTable::Add(const PendingTask& p) {
  TaskEntry& t = tasks_[p.id];
  t.id = p.id;
  t.token = p.token;
  t.batch = &Batch(p.batch_id);
  t.queue = &Queue(p.queue);
  t.time_limit_ms = p.time_limit_ms;
  t.priority = p.priority;
  t.attempts = static_cast<uint16_t>(p.attempts);
  t.max_attempts = static_cast<uint16_t>(p.max_attempts);
  t.state = p.state;
  ++t.queue->second.counts.by_state[int(t.state)];
  ++t.batch->second.by_state[int(t.state)];
  if (t.state == TaskState::kQueued) PushReady(t);
  return t;
}

TaskEntry* TaskTable::Find(uint64_t id) {
  auto it = tasks_.find(id);
  return it == tasks_.end() ? nullptr : &it->second;
}

void TaskTable::CountFinished(const std::string& batch_id,
                              const std::string& queue, TaskState state,
                              uint64_t n, int outcome) {
  Counts& b = Batch(batch_id).second;
  Counts& q = Queue(queue).second.counts;
  b.by_state[int(state)] += n;
  q.by_state[int(state)] += n;
  b.AddOutcome(outcome, int64_t(n));
  q.AddOutcome(outcome, int64_t(n));
}

void TaskTable::UncountFinished(const std::string& batch_id,
                                const std::string& queue, TaskState state,
                                int outcome) {
  --Queue(queue).second.counts.by_state[int(state)];
  Queue(queue).second.counts.AddOutcome(outcome, -1);
  auto b = batches_.find(batch_id);
  if (b == batches_.end()) return;
  --b->second.by_state[int(state)];
  b->second.AddOutcome(outcome, -1);
  if (b->second.total() == 0) batches_.erase(b);
}

void TaskTable::SetState(TaskEntry& t, TaskState next) {
  auto& qc = t.queue->second.counts.by_state;
  auto& bc = t.batch->second.by_state;
  --qc[int(t.state)];
  --bc[int(t.state)];
  ++qc[int(next)];
  ++bc[int(next)];
  t.state = next;
}

void TaskTable::MakeReady(TaskEntry& t) {
  if (t.state == TaskState::kQueued) return;
  SetState(t, TaskState::kQueued);
  PushReady(t);
}

void TaskTable::Lease(TaskEntry& t, SessionId holder, uint64_t token,
                      TimePoint expiry) {
  ++t.attempts;
  t.token = token;
  HoldLease(t, holder, expiry);
}

void TaskTable::HoldLease(TaskEntry& t, SessionId holder, TimePoint expiry) {
  if (t.state == TaskState::kQueued) RemoveReady(t);
  if (t.state != TaskState::kLeased) SetState(t, TaskState::kLeased);
  t.holder = holder;
  t.deadline = expiry;
  lease_deadlines_.emplace(expiry, t.id);
}

void TaskTable::WaitForRetry(TaskEntry& t, TimePoint when) {
  if (t.state == TaskState::kQueued) RemoveReady(t);
  t.holder = 0;
  t.deadline = when;
  retry_deadlines_.emplace(when, t.id);
  SetState(t, TaskState::kRetryWait);
}

void TaskTable::Finish(TaskEntry& t, TaskState final_state, int outcome) {
  if (t.state == TaskState::kQueued) RemoveReady(t);
  SetState(t, final_state);
  t.queue->second.counts.AddOutcome(outcome, 1);
  t.batch->second.AddOutcome(outcome, 1);
  batches_with_news_.insert(t.batch_id());
  tasks_.erase(t.id);
}

TaskEntry* TaskTable::PopDue(MinHeap& heap, TaskState state, TimePoint now) {
  while (!heap.empty() && heap.top().first <= now) {
    auto [when, id] = heap.top();
    heap.pop();
    TaskEntry* t = Find(id);
    // Stale: the task moved on since this deadline was set.
    if (t == nullptr || t->state != state || t->deadline != when) continue;
    return t;
  }
  return nullptr;
}

TaskEntry* TaskTable::PopExpiredLease(TimePoint now) {
  return PopDue(lease_deadlines_, TaskState::kLeased, now);
}

TaskEntry* TaskTable::PopDueRetry(TimePoint now) {
  return PopDue(retry_deadlines_, TaskState::kRetryWait, now);
}

std::optional<TimePoint> TaskTable::NextDeadline() const {
  std::optional<TimePoint> next;
  if (!lease_deadlines_.empty()) next = lease_deadlines_.top().first;
  if (!retry_deadlines_.empty()) {
    next =
        std::min(next.value_or(TimePoint::max()), retry_deadlines_.top().first);
  }
  return next;
}

void TaskTable::PushReady(TaskEntry& t) {
  ReadyLane& lane = t.queue->second.lanes[-int64_t(t.priority)];
  // Ids only grow, so the deque stays sorted; an older task that comes back
  // goes to the set.
  if (lane.fresh.empty() || t.id > lane.fresh.back()) {
    lane.fresh.push_back(t.id);
    t.in_fresh_lane = true;
  } else {
    lane.returned.insert(t.id);
    t.in_fresh_lane = false;
  }
  work_added_ = true;
}

// Pops deque entries whose task has left the lane (lazy removal).
void TaskTable::DropStaleFront(std::deque<uint64_t>& fresh) const {
  while (!fresh.empty()) {
    auto it = tasks_.find(fresh.front());
    if (it != tasks_.end() && it->second.in_fresh_lane) return;
    fresh.pop_front();
  }
}

void TaskTable::RemoveReady(TaskEntry& t) {
  auto& lanes = t.queue->second.lanes;
  auto lane = lanes.find(-int64_t(t.priority));
  if (lane == lanes.end()) return;
  if (t.in_fresh_lane) {
    t.in_fresh_lane = false;
    DropStaleFront(lane->second.fresh);
  } else {
    lane->second.returned.erase(t.id);
  }
  if (lane->second.fresh.empty() && lane->second.returned.empty()) {
    lanes.erase(lane);
  }
}

TaskEntry* TaskTable::NextReadyExcept(
    const std::string& queue, const std::function<bool(const TaskEntry&)>& skip,
    int max_checks) {
  TaskEntry* first = NextReady(queue);  // also drops empty lanes
  if (first == nullptr || !skip(*first)) return first;
  auto& lanes = queues_.at(queue).lanes;
  int checks = 1;
  for (auto& [priority, lane] : lanes) {
    // Candidates in id order: the returned set, then the fresh deque (whose
    // stale entries are skipped).
    uint64_t best = 0;
    for (uint64_t id : lane.returned) {
      if (checks++ >= max_checks) return first;
      TaskEntry& t = tasks_.at(id);
      if (&t != first && !skip(t)) {
        best = id;
        break;
      }
    }
    for (uint64_t id : lane.fresh) {
      if (best != 0 && id > best) break;
      if (checks++ >= max_checks) return first;
      auto it = tasks_.find(id);
      if (it == tasks_.end() || !it->second.in_fresh_lane) continue;
      if (&it->second != first && !skip(it->second)) {
        best = id;
        break;
      }
    }
    if (best != 0) return &tasks_.at(best);
  }
  return nullptr;  // everything ready here waits for another worker
}

TaskEntry* TaskTable::NextReady(const std::string& queue) {
  auto qit = queues_.find(queue);
  if (qit == queues_.end() || qit->second.paused) return nullptr;
  auto& lanes = qit->second.lanes;
  while (!lanes.empty()) {
    auto lane = lanes.begin();
    ReadyLane& l = lane->second;
    DropStaleFront(l.fresh);
    if (l.fresh.empty() && l.returned.empty()) {
      lanes.erase(lane);
      continue;
    }
    uint64_t id = 0;
    if (l.fresh.empty()) {
      id = *l.returned.begin();
    } else if (l.returned.empty()) {
      id = l.fresh.front();
    } else {
      id = std::min(l.fresh.front(), *l.returned.begin());
    }
    return &tasks_.at(id);
  }
  return nullptr;
}

bool TaskTable::TakeWorkAdded() {
  const bool added = work_added_;
  work_added_ = false;
  return added;
}

bool TaskTable::SetPaused(const std::string& queue, bool paused) {
  QueueState& q = Queue(queue).second;
  if (q.paused == paused) return false;
  q.paused = paused;
  if (!paused && !q.lanes.empty()) work_added_ = true;  // dispatch again
  return true;
}

bool TaskTable::IsPaused(const std::string& queue) const {
  auto it = queues_.find(queue);
  return it != queues_.end() && it->second.paused;
}

const Counts* TaskTable::BatchCounts(const std::string& batch_id) const {
  auto it = batches_.find(batch_id);
  return it == batches_.end() ? nullptr : &it->second;
}

std::vector<uint64_t> TaskTable::WaitingIds(
    const std::function<bool(const TaskEntry&)>& matches) const {
  std::vector<uint64_t> ids;
  for (const auto& [id, t] : tasks_) {
    if (t.waiting() && matches(t)) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::unordered_set<std::string> TaskTable::TakeBatchesWithNews() {
  std::unordered_set<std::string> news;
  news.swap(batches_with_news_);
  return news;
}

}  // namespace tq
