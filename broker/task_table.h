// The broker's in-memory view of its tasks: every task not yet finished, the
// ready lanes of each queue, the counts per batch and per queue by state, and
// the deadlines of leases and retries. No I/O: the Broker writes the store
// first, then tells the table. Every change of a task's state goes through
// one of the transitions below, which keep counts, lanes and deadlines in
// step; "a lease expires" is PopExpiredLease, and nowhere else.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/task_store.h"
#include "common/clock.h"
#include "common/outcome.h"
#include "common/task_state.h"
#include "tq.pb.h"

namespace tq {

using SessionId = uint64_t;

// Per-state task counts, for a batch or a queue.
struct Counts {
  uint64_t by_state[6] = {0, 0, 0, 0, 0, 0};
  // Done tasks by tq::Outcome (common/outcome.h).
  uint64_t by_outcome[kOutcomeCount] = {0, 0, 0, 0};
  void AddOutcome(int outcome, int64_t n) {
    if (outcome >= 0 && outcome < kOutcomeCount) by_outcome[outcome] += n;
  }
  uint64_t total() const;
  uint64_t pending() const;  // queued + leased + retry_wait
  void ToWire(wire::BatchCounts* out) const;
};

// Tasks ready to run in one queue at one priority. Fresh submissions arrive
// in id order and go to the back of a deque (8 bytes each, a million queued
// tasks are cheap); tasks that come back (lost, released, retried) go to an
// ordered set. The next task is the lower id of the two fronts, so a task
// that comes back runs before newer work. Removal from the deque is lazy:
// the task's in_fresh_lane flag says whether its entry there still counts.
struct ReadyLane {
  std::deque<uint64_t> fresh;
  std::set<uint64_t> returned;
};

struct QueueState {
  std::map<int64_t, ReadyLane> lanes;  // by -priority: highest first
  Counts counts;
  bool paused = false;  // leases nothing (tq-ctl pause); still accepts tasks
};

using QueueEntry = std::map<std::string, QueueState>::value_type;
using BatchEntry = std::unordered_map<std::string, Counts>::value_type;

// Kept small: a million queued tasks are a million of these. The URL and
// options stay in the store until the task is leased (MarkLeased returns
// them); batch and queue point into the table's maps, whose nodes do not
// move.
struct TaskEntry {
  uint64_t id = 0;
  uint64_t token = 0;  // of the live or last lease; 0: never leased
  // Leased: when the lease expires; retry_wait: when it may run again.
  TimePoint deadline{};
  BatchEntry* batch = nullptr;
  QueueEntry* queue = nullptr;
  SessionId holder = 0;  // 0 while leased to nobody (after a restart)
  uint32_t time_limit_ms = 0;
  int32_t priority = 0;
  uint16_t attempts = 0;
  uint16_t max_attempts = 0;
  TaskState state = TaskState::kQueued;
  bool in_fresh_lane = false;
  // Leases lost with a session that never finished a task: not attempts, up
  // to BrokerOptions::max_unproven_losses (in memory only).
  uint8_t unproven_losses = 0;

  const std::string& queue_name() const { return queue->first; }
  const std::string& batch_id() const { return batch->first; }
  bool waiting() const {
    return state == TaskState::kQueued || state == TaskState::kRetryWait;
  }
};

class TaskTable {
 public:
  // Forgets every task and count (before a reload from the store).
  void Clear();

  // Adds a task the store holds in state queued, leased or retry_wait, and
  // counts it. A queued task becomes ready; the caller sets a leased or
  // retry-waiting one's deadline (HoldLease, WaitForRetry).
  TaskEntry& Add(const PendingTask& p);
  TaskEntry* Find(uint64_t id);
  size_t size() const { return tasks_.size(); }

  // Finished tasks are not held, only counted: loaded at start-up, dropped by
  // the retention sweep, moved back to the table by RetryDead.
  // `outcome`: a done task's tq::Outcome, -1 for none.
  void CountFinished(const std::string& batch_id, const std::string& queue,
                     TaskState state, uint64_t n, int outcome = -1);
  void UncountFinished(const std::string& batch_id, const std::string& queue,
                       TaskState state, int outcome = -1);

  // --- transitions ---

  // Back to queued, ahead of newer work (lost, released, retry due).
  void MakeReady(TaskEntry& t);
  // queued -> leased to `holder` under a new token; the attempt counts.
  void Lease(TaskEntry& t, SessionId holder, uint64_t token, TimePoint expiry);
  // A lease held without a new attempt: reclaimed by its worker's Hello, or,
  // with holder 0, kept for its worker after a broker restart.
  void HoldLease(TaskEntry& t, SessionId holder, TimePoint expiry);
  // leased -> retry_wait until `when`.
  void WaitForRetry(TaskEntry& t, TimePoint when);
  // -> done, dead or cancelled: the task leaves the table (and its batch has
  // news for parked fetches).
  void Finish(TaskEntry& t, TaskState final_state, int outcome = -1);

  // --- time ---

  // The next task whose lease ran out by `now` (stale heap entries skipped),
  // or null. The caller ends the lease.
  TaskEntry* PopExpiredLease(TimePoint now);
  // The next retry-waiting task due by `now`, or null.
  TaskEntry* PopDueRetry(TimePoint now);
  std::optional<TimePoint> NextDeadline() const;

  // --- dispatch ---

  // The next ready task of `queue` (highest priority, then oldest), or null.
  TaskEntry* NextReady(const std::string& queue);
  // Like NextReady, passing over the tasks `skip` names (a retry waiting
  // for a worker that has not failed it); looks at most `max_checks` of
  // them, then takes what NextReady would.
  TaskEntry* NextReadyExcept(const std::string& queue,
                             const std::function<bool(const TaskEntry&)>& skip,
                             int max_checks);
  // Whether tasks became ready since the last call.
  bool TakeWorkAdded();
  // Pauses or resumes `queue` (made if unknown): a paused queue's tasks stay
  // ready but NextReady passes them over. Returns whether that changed.
  bool SetPaused(const std::string& queue, bool paused);
  bool IsPaused(const std::string& queue) const;

  // --- reads ---

  const Counts* BatchCounts(const std::string& batch_id) const;
  const std::unordered_map<std::string, Counts>& batches() const {
    return batches_;
  }
  const std::map<std::string, QueueState>& queues() const { return queues_; }
  // Ids of the queued and retry-waiting tasks `matches` selects, in id order.
  std::vector<uint64_t> WaitingIds(
      const std::function<bool(const TaskEntry&)>& matches) const;
  // Batches whose tasks finished since the last call.
  std::unordered_set<std::string> TakeBatchesWithNews();
  bool HasNews(const std::string& batch_id) const {
    return batches_with_news_.count(batch_id) > 0;
  }
  // The leased tasks (after a reload: which ones a session still holds).
  template <typename Fn>
  void ForEachLeased(Fn&& fn) {
    for (auto& [id, t] : tasks_) {
      if (t.state == TaskState::kLeased) fn(t);
    }
  }

 private:
  using Deadline = std::pair<TimePoint, uint64_t>;  // (when, task id)
  using MinHeap = std::priority_queue<Deadline, std::vector<Deadline>,
                                      std::greater<Deadline>>;

  QueueEntry& Queue(const std::string& name);
  BatchEntry& Batch(const std::string& id);
  void SetState(TaskEntry& t, TaskState next);
  void PushReady(TaskEntry& t);
  void RemoveReady(TaskEntry& t);
  void DropStaleFront(std::deque<uint64_t>& fresh) const;
  TaskEntry* PopDue(MinHeap& heap, TaskState state, TimePoint now);

  std::unordered_map<uint64_t, TaskEntry> tasks_;  // non-terminal tasks only
  std::map<std::string, QueueState> queues_;
  std::unordered_map<std::string, Counts> batches_;
  MinHeap lease_deadlines_;  // lazily pruned: entries may be stale
  MinHeap retry_deadlines_;
  std::unordered_set<std::string> batches_with_news_;
  bool work_added_ = false;
};

}  // namespace tq
