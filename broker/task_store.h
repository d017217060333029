// Durable task storage behind a small interface. The broker core calls it; the
// SQLite implementation lives in sqlite_task_store.cc and a fault-injecting
// wrapper in tests/support. No SQLite types leak through here.
//
// Transactions: every write joins one open transaction, begun implicitly by
// the first write after a Commit(). Commit() makes them all durable at once
// (group commit: one fsync per broker loop turn). Reads see the writes of the
// open transaction. After a failed Commit() the store has rolled back: what
// is on disk is the state as of the last successful Commit().
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/task_detail.h"
#include "common/status.h"
#include "common/task_state.h"
#include "tq/task_result.h"

namespace tq {

struct NewTask {
  std::string batch_id;
  uint32_t index = 0;  // (batch_id, index) is unique
  std::string queue;
  std::string url;
  int32_t priority = 0;
  uint32_t max_attempts = 0;
  uint32_t time_limit_ms = 0;
  std::string options_json;  // submitter's per-task options, a JSON object
  int64_t submitted_ms = 0;  // wall clock
};

// A task not yet in a terminal state as loaded at start-up (or a dead one,
// for RetryDead): what the broker keeps in memory. The URL and options stay
// in the store until the task is leased; MarkLeased returns them.
struct PendingTask {
  uint64_t id = 0;
  std::string batch_id;
  std::string queue;
  int32_t priority = 0;
  uint32_t max_attempts = 0;
  uint32_t time_limit_ms = 0;
  TaskState state = TaskState::kQueued;  // queued, leased or retry_wait
  uint32_t attempts = 0;
  uint64_t token = 0;         // last lease token (0: never leased)
  int64_t not_before_ms = 0;  // wall clock; for retry_wait
};

// What a worker needs of a task beyond what the broker keeps in memory.
struct LeasePayload {
  std::string url;
  std::string options_json;
};

// A finished task old enough for the retention sweep.
struct ExpiredTask {
  uint64_t id = 0;
  std::string batch_id;
  std::string queue;
  TaskState state = TaskState::kDone;
  int outcome = -1;  // a done task's tq::Outcome, -1 for none
};

// Counts of tasks per (batch, queue, state, outcome), loaded at start-up.
struct StateCount {
  std::string batch_id;
  std::string queue;
  TaskState state = TaskState::kQueued;
  uint64_t count = 0;
  int outcome = -1;  // a done task's tq::Outcome, -1 for none
};

// One worker's accounting, kept by worker id across sessions and restarts
// (WorkerSessions holds it in memory; see docs/lifecycle.md).
struct WorkerRecord {
  std::string worker_id;
  uint64_t succeeded = 0;  // accepted ok results
  uint64_t failed = 0;     // failed attempts it reported
  uint64_t retried = 0;    // of those, the ones given another attempt
  uint64_t timed_out = 0;  // leases that expired in its hands
  uint64_t consecutive_failures = 0;  // failed attempts since its last success
  std::string last_failure;
  int64_t first_seen_ms = 0;     // wall clock
  int64_t session_start_ms = 0;  // wall clock, of its current session
  int64_t last_seen_ms = 0;      // wall clock, when its last session ended
};

// What start-up needs to know of the finished tasks.
struct FinishedSummary {
  std::vector<StateCount> counts;  // terminal states only
  uint64_t max_finish_seq = 0;     // 0 if none
};

class TaskStore {
 public:
  virtual ~TaskStore() = default;

  // --- writes (join the open transaction) ---

  // Returns the new task id, or nullopt if (batch_id, index) already exists
  // (a re-submitted batch: nothing is written).
  virtual Result<std::optional<uint64_t>> Insert(const NewTask& task) = 0;
  // state := leased, with the new token and attempt count; returns the
  // task's URL and options for the assignment.
  virtual Result<LeasePayload> MarkLeased(uint64_t id, uint64_t token,
                                          uint32_t attempts,
                                          const std::string& worker,
                                          int64_t now_ms) = 0;
  // state := queued or retry_wait (not_before_ms for the latter); keeps the
  // token so a result from the last lease can still be matched. Clears any
  // stored outcome and finish_seq (RetryDead brings dead tasks back this way).
  // `last_error`: why the last attempt ended; nullopt keeps the stored one.
  virtual Status MarkWaiting(uint64_t id, TaskState state, uint32_t attempts,
                             int64_t not_before_ms,
                             std::optional<std::string> last_error) = 0;
  // state := done, dead or cancelled, storing the outcome (its files, each
  // PutFile'd before, by reference: their content is not read here).
  // finish_seq orders results for FetchResults cursors.
  // `history`: the task's ended attempts (kept with the result; an
  // AttemptResult's outcome is parsed with ParseOutcome, unknown names are
  // kept as none).
  virtual Status MarkFinished(
      uint64_t id, TaskState state, uint32_t attempts, uint64_t finish_seq,
      const AttemptResult& outcome, int64_t now_ms,
      const std::vector<AttemptRecord>& history = {}) = 0;
  // Inserts or replaces a worker's accounting.
  virtual Status SaveWorker(const WorkerRecord& worker) = 0;

  // Records the CURVE key name that submitted `batch_id`, unless one is
  // recorded already (the first submitter owns the batch).
  virtual Status SetBatchOwner(const std::string& batch_id,
                               const std::string& key_name) = 0;

  // Records that `queue` is paused (leases nothing) or resumed; durable
  // across restarts (docs/lifecycle.md, "Pausing a queue").
  virtual Status SetQueuePaused(const std::string& queue, bool paused,
                                int64_t now_ms) = 0;
  // Records a batch's creation (its first submit), unless recorded; the
  // order of these calls is the batches' creation order.
  virtual Status AddBatch(const std::string& batch_id, int64_t created_ms) = 0;

  // Deletes finished tasks and their file references; returns the digests
  // those references named (candidates for RemoveUnreferencedFiles).
  virtual Result<std::vector<std::string>> DeleteFinished(
      const std::vector<uint64_t>& ids) = 0;

  // --- files (outside the transaction) ---

  // Stores `content` under its digest durably (written to a temp file,
  // synced, renamed) unless that digest is stored already. Call it before
  // the MarkFinished that references the file, so the file is on disk
  // before the commit. A file whose referencing commit fails stays,
  // unreferenced.
  virtual Status PutFile(const std::string& sha256,
                         std::string_view content) = 0;
  // The content stored under `sha256`; NotFound if there is none.
  virtual Result<std::string> GetFile(const std::string& sha256) = 0;
  // Removes the stored files among `sha256s` that no task references (as
  // the database says now, open transaction included); returns how many.
  virtual Result<uint64_t> RemoveUnreferencedFiles(
      const std::vector<std::string>& sha256s) = 0;

  // Makes every write since the last Commit() durable. On failure nothing of
  // them is kept and the error says why (e.g. "database or disk is full").
  virtual Status Commit() = 0;
  // Discards every write since the last Commit() (no-op if none).
  virtual void Abort() = 0;
  // Whether writes wait for a Commit().
  virtual bool HasUncommitted() const = 0;
  // Writes and commits a marker row: tells whether the store takes writes
  // again after a failure. Must not be called with a transaction open.
  virtual Status Probe() = 0;

  // --- reads ---

  // Calls `each` for every task in state queued, leased or retry_wait, in id
  // order. Streamed: a million queued tasks never sit in a vector.
  virtual Status LoadPending(
      const std::function<void(const PendingTask&)>& each) = 0;
  // Calls `each(batch_id, key_name)` for every recorded batch owner.
  virtual Status LoadBatchOwners(
      const std::function<void(const std::string&, const std::string&)>&
          each) = 0;
  // Calls `each(queue)` for every paused queue.
  virtual Status LoadPausedQueues(
      const std::function<void(const std::string&)>& each) = 0;
  // Calls `each(batch_id, seq, created_ms)` for every recorded batch, in
  // creation order (seq ascending).
  virtual Status LoadBatches(
      const std::function<void(const std::string&, uint64_t, int64_t)>&
          each) = 0;
  // One task as tq-ctl task and the console show it (no file content);
  // NotFound for an unknown id. A point read by primary key.
  virtual Result<TaskDetail> ReadTask(uint64_t id) = 0;
  // Counts of the terminal tasks and the largest finish_seq.
  virtual Result<FinishedSummary> LoadFinishedSummary() = 0;
  // Terminal tasks of a batch with finish_seq > after, in finish_seq order.
  virtual Result<std::vector<TaskResult>> ReadFinished(
      const std::string& batch_id, uint64_t after, uint32_t limit) = 0;
  // Up to `limit` terminal tasks finished before `finished_before_ms`,
  // oldest first.
  virtual Result<std::vector<ExpiredTask>> LoadExpired(
      int64_t finished_before_ms, uint32_t limit) = 0;
  // Every worker's accounting, at start-up.
  virtual Result<std::vector<WorkerRecord>> LoadWorkers() = 0;
  // Dead tasks of a batch (batch_id non-empty) or of a queue, for RetryDead.
  virtual Result<std::vector<PendingTask>> LoadDead(
      const std::string& batch_id, const std::string& queue) = 0;
};

}  // namespace tq
